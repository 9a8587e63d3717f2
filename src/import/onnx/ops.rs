//! What the importer makes of every node of a file, so that a user sees all that
//! blocks a model at once (`incept info --ops`), not only the first refusal.

use prost::Message;

use super::importer::Importer;
use super::{Ctx, proto};
use crate::error::{Error, Result};

/// What the importer does with one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeStatus {
    /// Becomes (part of) an engine step, or an alias of a value.
    Supported,
    /// Evaluated at import into a constant (its inputs are all constants).
    Folded,
    /// Refused, with the importer's message.
    Unsupported(String),
    /// Reads the output of a refused node, so was not tried.
    NotReached,
}

/// One node of the file with its status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeReport {
    /// Index in the graph.
    pub index: usize,
    /// The node's name (may be empty).
    pub name: String,
    /// The operator.
    pub op_type: String,
    /// What the importer does with it.
    pub status: NodeStatus,
}

/// Every node of the ONNX model `bytes` with what the importer makes of it. A file
/// the importer cannot start on (no graph, several inputs) is an error.
pub fn node_report(bytes: &[u8]) -> Result<Vec<NodeReport>> {
    let model = proto::ModelProto::decode(bytes)
        .map_err(|e| Error::Import(format!("not a valid ONNX file (protobuf: {e})")))?;
    let g = model.graph.as_ref().ok_or_else(|| Error::Import("the file holds no ONNX graph".into()))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| Error::Import("the model imports no default-domain (ai.onnx) opset".into()))?;
    let mut im = Importer::new(g, opset)?;
    let mut refused: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut report = Vec::with_capacity(g.node.len());
    for (index, n) in g.node.iter().enumerate() {
        let status = if im.input_transpose == Some(index) {
            NodeStatus::Supported
        } else if n.input.iter().any(|x| refused.contains(x.as_str())) {
            NodeStatus::NotReached
        } else {
            let cx = Ctx::node(index, n, opset);
            match im.node(&cx, index, n) {
                Ok(()) if n.output.iter().all(|o| o.is_empty() || im.is_const(o)) => NodeStatus::Folded,
                Ok(()) => NodeStatus::Supported,
                Err(e) => NodeStatus::Unsupported(e.to_string()),
            }
        };
        if matches!(status, NodeStatus::Unsupported(_) | NodeStatus::NotReached) {
            refused.extend(n.output.iter().map(String::as_str));
        }
        report.push(NodeReport { index, name: n.name.clone(), op_type: n.op_type.clone(), status });
    }
    Ok(report)
}
