//! ONNX import: maps an ONNX model onto the engine's graph, node by node, through
//! the validating [`GraphBuilder`].
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
//! | any node whose inputs are all constants (`Shape` of a computed tensor too) | folded at import (see `fold`) |
//!
//! Anything else, and any attribute outside what the engine computes, is an
//! [`Error::Import`] naming the node (index, name, operator), the opset and what is
//! missing. Clip with other bounds (ReLU6) is among them: the engine has no ReLU6 yet.
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
mod pool;
mod proto;
mod reshape;
mod tensor;

use std::path::Path;

use prost::Message;
use prost::bytes::Bytes;

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::weights::Weights;

use importer::Importer;
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
    let model = proto::ModelProto::decode(bytes)
        .map_err(|e| Error::Import(format!("not a valid ONNX file (protobuf: {e})")))?;
    let graph = model.graph.as_ref().ok_or_else(|| Error::Import("the file holds no ONNX graph".into()))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| Error::Import("the model imports no default-domain (ai.onnx) opset".into()))?;
    Importer::new(graph, opset)?.run()
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
