//! ONNX import: maps an ONNX model onto the engine's graph, node by node, through
//! the validating [`GraphBuilder`](crate::graph::GraphBuilder).
//!
//! Supported (default domain, any opset):
//!
//! | ONNX | engine |
//! |---|---|
//! | `Conv` (pads incl. asymmetric, `auto_pad`, strides; `group` 1, dilations 1) | `conv` |
//! | `Pad` (constant zeros on H/W) in front of a `Conv` or a counting `AveragePool` | folded into its padding |
//! | `BatchNormalization` (inference) | `batch_norm` with the file's epsilon |
//! | `Relu` | `relu` (fused into a preceding residual `Add`) |
//! | `MaxPool`, `AveragePool` (`ceil_mode`, `count_include_pad`, pads, strides) | `max_pool`, `avg_pool` |
//! | `GlobalAveragePool`, `Concat` (channels), `LRN` (odd size), `Softmax` (channels) | the same |
//! | `Add(x, y)`, `Sum`, `Sub(x, y)`; `Add(x, Mul(y, c))` with a scalar constant `c` | `residual_add(x, y, c)` |
//! | `Mul`/`Add`/`Sub`/`Div` by a scalar or per-channel constant | an affine `batch_norm` (folded into a conv before it) |
//! | `ReduceMean` over H and W (`keepdims` 0/1) | `global_avg_pool` |
//! | `Gemm` (alpha = beta = 1, any `transB`), `MatMul` + `Add(bias)` | `linear` |
//! | `Flatten`, `Reshape`, `Squeeze`, `Unsqueeze` between `[N, C, H, W]` and `[N, C*H*W]` | metadata, no step |
//! | `Dropout`, `Identity` | aliases; `Clip(0, +inf)` | `relu` |
//! | `Clip` (other bounds, e.g. ReLU6), `Sigmoid`, `LeakyRelu` | `pointwise` |
//! | any node whose inputs are all constants (`Shape` of a computed tensor too) | folded at import (see `fold`) |
//!
//! Anything else, and any attribute outside what the engine computes, is an
//! [`Error::Import`] naming the node (index, name, operator), the opset and what is
//! missing.
//! Opsets 7 to 22 are read (attributes that became inputs are taken either way);
//! every initializer may also be listed as a graph input (IR version 3); the batch
//! dimension may be symbolic.
//!
//! Parameters are named `{prefix}.weight`, `{prefix}.bias` (convolutions and linear
//! layers) and `{prefix}.weight`, `.bias`, `.running_mean`, `.running_var`
//! (BatchNorm), where the prefix is the weight initializer's name without its
//! `.weight` suffix when it has one (`fc.weight` -> `fc`), and otherwise the node's
//! name with `/` turned into `.` and the trailing operator dropped
//! (`/Mixed_5b/branch1x1/conv/Conv` -> `Mixed_5b.branch1x1.conv`, the built-in
//! model's own name); a repeated prefix gets `_1`, `_2`, ... in node order.

mod affine;
mod attrs;
mod conv;
mod fold;
mod head;
mod importer;
mod merge;
mod misc;
mod nhwc;
mod ops;
mod pool;
mod proto;
mod reshape;
mod tensor;

use std::collections::HashMap;
use std::path::Path;

use prost::Message;
use prost::bytes::Bytes;

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::weights::Weights;

use importer::Importer;
pub use ops::{NodeReport, NodeStatus, node_report};
use proto::NodeProto;

pub(super) const FLOAT: i32 = 1;
pub(super) const INT32: i32 = 6;
pub(super) const INT64: i32 = 7;
pub(super) const BOOL: i32 = 9;

/// Largest window, stride or padding accepted from an attribute: keeps size
/// arithmetic far from overflow on hostile files.
pub(super) const MAX_ATTR: i64 = 1 << 20;

/// Reads an ONNX model file. The graph is named after the file.
pub fn load_onnx(path: &Path) -> Result<(Graph, Weights)> {
    let bytes = std::fs::read(path).map_err(|e| Error::Import(format!("{}: {e}", path.display())))?;
    // Weight data is decoded as slices of the file's buffer, not copies.
    let (mut graph, weights) = import(Bytes::from(bytes)).map_err(|e| match e {
        Error::Import(m) => Error::Import(format!("{}: {m}", path.display())),
        e => e,
    })?;
    if let Some(stem) = path.file_stem() {
        graph.name = stem.to_string_lossy().into_owned();
    }
    Ok((graph, weights))
}

/// Maps a serialized ONNX `ModelProto` onto the engine's graph and weights.
pub fn from_bytes(bytes: &[u8]) -> Result<(Graph, Weights)> {
    import(Bytes::copy_from_slice(bytes))
}

fn import(bytes: Bytes) -> Result<(Graph, Weights)> {
    let (model, opset) = decode(bytes)?;
    let graph = model.graph.as_ref().expect("checked by decode");
    Importer::new(graph, opset)?.run()
}

/// The model and its default-domain opset.
fn decode(bytes: Bytes) -> Result<(proto::ModelProto, i64)> {
    let model = proto::ModelProto::decode(bytes)
        .map_err(|e| Error::Import(format!("not a valid ONNX file (protobuf: {e})")))?;
    if model.graph.is_none() {
        return Err(Error::Import("the file holds no ONNX graph".into()));
    }
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| Error::Import("the model imports no default-domain (ai.onnx) opset".into()))?;
    Ok((model, opset))
}

/// A folded output: its shape and values (integers as exact `f64`s).
pub type FoldedTensor = (Vec<usize>, Vec<f64>);

/// Evaluates a graph without runtime inputs (every input an initializer) by the
/// importer's constant folding alone and returns its outputs: what import does to
/// a graph's constant parts, exposed so the conformance suite can check it.
pub fn fold_constant_graph(bytes: &[u8]) -> Result<Vec<FoldedTensor>> {
    let (model, opset) = decode(Bytes::copy_from_slice(bytes))?;
    let g = model.graph.as_ref().expect("checked by decode");
    let inits: HashMap<&str, &proto::TensorProto> = g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut values: HashMap<&str, fold::Const> = HashMap::new();
    for (idx, n) in g.node.iter().enumerate() {
        let cx = Ctx::node(idx, n, opset);
        let outs = if n.op_type == "Constant" {
            vec![fold::Const::decode(&cx, &n.output[0], &misc::constant_tensor(&cx, n)?)?]
        } else if fold::FOLDABLE.contains(&n.op_type.as_str()) {
            let mut args = Vec::with_capacity(n.input.len());
            for x in &n.input {
                args.push(match x.as_str() {
                    "" => None,
                    x => Some(match (values.get(x), inits.get(x)) {
                        (Some(v), _) => v.clone(),
                        (None, Some(t)) => fold::Const::decode(&cx, x, t)?,
                        (None, None) => return Err(cx.err(format!("input '{x}' is not a constant"))),
                    }),
                });
            }
            fold::eval(&cx, n, opset, &args)?
        } else {
            return Err(cx.err(format!("operator {} is not folded", n.op_type)));
        };
        for (name, y) in n.output.iter().zip(outs) {
            values.insert(name, y);
        }
    }
    g.output
        .iter()
        .map(|o| {
            let y = values
                .get(o.name.as_str())
                .ok_or_else(|| Error::Import(format!("output '{}' is not computed", o.name)))?;
            let data = match &y.data {
                fold::Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
                fold::Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
            };
            Ok((y.shape.clone(), data))
        })
        .collect()
}

/// Where an error happened: a node, or a graph input/output.
pub(super) struct Ctx(pub(super) String);

impl Ctx {
    /// Names the node by index, name and operator, and the model's opset.
    pub(super) fn node(idx: usize, node: &NodeProto, opset: i64) -> Ctx {
        if node.name.is_empty() {
            Ctx(format!("node {idx} ({}) at opset {opset}", node.op_type))
        } else {
            Ctx(format!("node {idx} '{}' ({}) at opset {opset}", node.name, node.op_type))
        }
    }

    pub(super) fn err(&self, msg: impl std::fmt::Display) -> Error {
        Error::Import(format!("{}: {msg}", self.0))
    }
}
