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
//! | `Add(x, y)`, `Add(x, Mul(y, c))` with a scalar constant `c` | `residual_add(x, y, c)` |
//! | `Gemm` (alpha = beta = 1, any `transB`), `MatMul` + `Add(bias)` | `linear` |
//! | `Flatten`, `Reshape` to `[N, C*H*W]` | no-ops in front of a linear layer |
//! | `Dropout`, `Identity` | aliases; `Constant` | a constant |
//!
//! Anything else, and any attribute outside what the engine computes, is an
//! [`Error::Import`] naming the node (index, name, operator) and what is missing.
//! Clip (ReLU6) is among them: the engine has no ReLU6 yet.
//!
//! Parameters are named `{prefix}.weight`, `{prefix}.bias` (convolutions and linear
//! layers) and `{prefix}.weight`, `.bias`, `.running_mean`, `.running_var`
//! (BatchNorm), where the prefix is the weight initializer's name without its
//! `.weight` suffix when it has one (`fc.weight` -> `fc`), and otherwise the node's
//! name with `/` turned into `.` and the trailing operator dropped
//! (`/Mixed_5b/branch1x1/conv/Conv` -> `Mixed_5b.branch1x1.conv`, the built-in
//! model's own name); a repeated prefix gets `_1`, `_2`, ... in node order.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use prost::Message;
use prost::bytes::Bytes;

use crate::error::{Error, Result};
use crate::graph::{Activation, ConvGeometry, ConvSpec, Dims, Graph, GraphBuilder, Padding, PoolGeometry, ValueId};
use crate::weights::{Tensor, Weights};

/// The messages of `onnx.proto` the importer reads, decoded by `prost`. Only the
/// fields used are declared, with the schema's field numbers; the decoder skips the
/// others. Presence-only fields (`sparse_initializer`, `external_data`) are read as
/// raw bytes.
mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ModelProto {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<GraphProto>,
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<OperatorSetIdProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OperatorSetIdProto {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(int64, tag = "2")]
        pub version: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GraphProto {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<NodeProto>,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<TensorProto>,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfoProto>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfoProto>,
        #[prost(bytes = "vec", repeated, tag = "15")]
        pub sparse_initializer: Vec<Vec<u8>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NodeProto {
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub op_type: String,
        #[prost(message, repeated, tag = "5")]
        pub attribute: Vec<AttributeProto>,
        #[prost(string, tag = "7")]
        pub domain: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AttributeProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(float, tag = "2")]
        pub f: f32,
        #[prost(int64, tag = "3")]
        pub i: i64,
        #[prost(bytes = "vec", tag = "4")]
        pub s: Vec<u8>,
        #[prost(message, optional, tag = "5")]
        pub t: Option<TensorProto>,
        #[prost(float, repeated, tag = "7")]
        pub floats: Vec<f32>,
        #[prost(int64, repeated, tag = "8")]
        pub ints: Vec<i64>,
        /// `AttributeType`: 1 float, 2 int, 3 string, 4 tensor, 6 floats, 7 ints.
        #[prost(int32, tag = "20")]
        pub r#type: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        /// `DataType`: 1 float, 6 int32, 7 int64, 9 bool, ...
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(float, repeated, tag = "4")]
        pub float_data: Vec<f32>,
        #[prost(int32, repeated, tag = "5")]
        pub int32_data: Vec<i32>,
        #[prost(int64, repeated, tag = "7")]
        pub int64_data: Vec<i64>,
        #[prost(string, tag = "8")]
        pub name: String,
        #[prost(bytes = "bytes", tag = "9")]
        pub raw_data: prost::bytes::Bytes,
        #[prost(bytes = "vec", repeated, tag = "13")]
        pub external_data: Vec<Vec<u8>>,
        /// 0 default, 1 external.
        #[prost(int32, tag = "14")]
        pub data_location: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfoProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub r#type: Option<TypeProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeProto {
        /// The `tensor_type` case of the `value` oneof (the others are not tensors).
        #[prost(message, optional, tag = "1")]
        pub tensor_type: Option<TypeProtoTensor>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeProtoTensor {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<TensorShapeProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorShapeProto {
        #[prost(message, repeated, tag = "1")]
        pub dim: Vec<Dimension>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(int64, optional, tag = "1")]
        pub dim_value: Option<i64>,
        #[prost(string, optional, tag = "2")]
        pub dim_param: Option<String>,
    }
}

use proto::{AttributeProto, NodeProto, TensorProto};

const FLOAT: i32 = 1;
const INT32: i32 = 6;
const INT64: i32 = 7;
const BOOL: i32 = 9;

/// Largest window, stride or padding accepted from an attribute: keeps size
/// arithmetic far from overflow on hostile files.
const MAX_ATTR: i64 = 1 << 20;

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
struct Ctx(String);

impl Ctx {
    fn node(idx: usize, node: &NodeProto) -> Ctx {
        if node.name.is_empty() {
            Ctx(format!("node {idx} ({})", node.op_type))
        } else {
            Ctx(format!("node {idx} '{}' ({})", node.name, node.op_type))
        }
    }

    fn err(&self, msg: impl std::fmt::Display) -> Error {
        Error::Import(format!("{}: {msg}", self.0))
    }
}

/// A tensor computed by the graph, as the importer holds it.
#[derive(Clone, Debug)]
enum Binding {
    /// An engine value. ONNX `rank` 4 is `[N, C, H, W]`; rank 2 is `[N, C*H*W]` (the
    /// output of a linear layer, or a flattened map that only a linear layer may read).
    Value { id: ValueId, rank: u8, conv: bool },
    /// `c * id` from a `Mul` by a scalar constant: only a residual `Add` may read it.
    Scaled { id: ValueId, scale: f32, by: String },
    /// `id` zero-padded by a `Pad` node: only a `Conv` or a counting `AveragePool` may read it.
    Padded { id: ValueId, pad: Padding, by: String },
    /// `id @ W` from a `MatMul`, not yet built: an `Add` of a bias makes it a linear
    /// layer with bias, any other reader one without. `weight` is `[out, in]`.
    MatMul { id: ValueId, weight: Vec<f32>, out: usize, name: String },
}

/// An engine value with its ONNX rank and whether a convolution (possibly followed
/// by a BatchNorm) produced it.
#[derive(Clone, Copy, Debug)]
struct Val {
    id: ValueId,
    rank: u8,
    conv: bool,
}

struct Importer<'a> {
    nodes: &'a [NodeProto],
    outputs: Vec<&'a str>,
    opset: i64,
    /// The input's static batch size, when it has one (accepted in `Reshape` shapes).
    batch: Option<i64>,
    b: GraphBuilder,
    weights: Weights,
    inits: HashMap<&'a str, &'a TensorProto>,
    /// Outputs of `Constant` nodes (and `Identity` of a constant).
    consts: HashMap<String, TensorProto>,
    vals: HashMap<String, Binding>,
    /// Nodes reading each tensor.
    consumers: HashMap<&'a str, Vec<usize>>,
    /// `Relu` nodes folded into the residual `Add` before them.
    fused_relu: HashSet<usize>,
    prefixes: HashSet<String>,
}

impl<'a> Importer<'a> {
    fn new(g: &'a proto::GraphProto, opset: i64) -> Result<Self> {
        if !g.sparse_initializer.is_empty() {
            return Err(Error::Import("sparse initializers are not supported".into()));
        }
        let inits: HashMap<&str, &TensorProto> = g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
        let inputs: Vec<_> = g.input.iter().filter(|i| !inits.contains_key(i.name.as_str())).collect();
        let [input] = inputs[..] else {
            let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(Error::Import(format!(
                "the engine runs graphs with exactly one input, this one has {} ({names:?})",
                names.len()
            )));
        };
        let cx = Ctx(format!("graph input '{}'", input.name));
        let tensor = input.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
        let Some(tensor) = tensor.filter(|t| t.elem_type == FLOAT) else {
            return Err(cx.err("must be a float32 tensor"));
        };
        let dims = tensor.shape.as_ref().map(|s| s.dim.as_slice()).unwrap_or_default();
        let chw: Vec<usize> = dims
            .iter()
            .skip(1)
            .filter_map(|d| d.dim_value.filter(|&v| v > 0 && v <= MAX_ATTR).map(|v| v as usize))
            .collect();
        if dims.len() != 4 || chw.len() != 3 {
            return Err(cx.err("must be [N, C, H, W] with static C, H and W"));
        }
        let name = if g.name.is_empty() { "onnx" } else { g.name.as_str() };
        let b = GraphBuilder::new(name, Dims::new(chw[0], chw[1], chw[2]));
        let mut vals = HashMap::new();
        vals.insert(input.name.clone(), Binding::Value { id: b.input(), rank: 4, conv: false });
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in g.node.iter().enumerate() {
            for x in n.input.iter().filter(|x| !x.is_empty()) {
                let c = consumers.entry(x.as_str()).or_default();
                if !c.contains(&i) {
                    c.push(i);
                }
            }
        }
        Ok(Importer {
            nodes: &g.node,
            outputs: g.output.iter().map(|o| o.name.as_str()).collect(),
            opset,
            batch: dims[0].dim_value,
            b,
            weights: Weights::new(),
            inits,
            consts: HashMap::new(),
            vals,
            consumers,
            fused_relu: HashSet::new(),
            prefixes: HashSet::new(),
        })
    }

    fn run(mut self) -> Result<(Graph, Weights)> {
        let nodes = self.nodes;
        for (idx, node) in nodes.iter().enumerate() {
            let cx = Ctx::node(idx, node);
            if !(node.domain.is_empty() || node.domain == "ai.onnx") {
                return Err(cx.err(format!("operator domain '{}' is not supported", node.domain)));
            }
            if node.output.first().is_none_or(|o| o.is_empty()) {
                return Err(cx.err("the node has no output"));
            }
            self.node(&cx, idx, node)?;
        }
        let [out] = self.outputs[..] else {
            return Err(Error::Import(format!(
                "the engine runs graphs with exactly one output, this one has {} ({:?})",
                self.outputs.len(),
                self.outputs
            )));
        };
        let y = self.value(&Ctx(format!("graph output '{out}'")), out)?;
        let graph = self.b.finish(y.id)?;
        Ok((graph, self.weights))
    }

    fn node(&mut self, cx: &Ctx, idx: usize, n: &'a NodeProto) -> Result<()> {
        match n.op_type.as_str() {
            "Conv" => self.conv(cx, idx, n),
            "BatchNormalization" => self.batch_norm(cx, idx, n),
            "Relu" => {
                check_attrs(cx, n, &[])?;
                let x = input(cx, n, 0)?;
                if self.fused_relu.contains(&idx) {
                    let b = self.binding(cx, x)?;
                    return self.define(cx, &n.output[0], b);
                }
                let x = self.value(cx, x)?;
                let y = self.b.relu(x.id);
                self.define(cx, &n.output[0], Binding::Value { id: y, rank: x.rank, conv: false })
            }
            "MaxPool" | "AveragePool" => self.pool(cx, n),
            "GlobalAveragePool" => {
                check_attrs(cx, n, &[])?;
                let x = self.map(cx, input(cx, n, 0)?)?;
                let y = self.b.global_avg_pool(x.id);
                self.define(cx, &n.output[0], Binding::Value { id: y, rank: 4, conv: false })
            }
            "Concat" => self.concat(cx, n),
            "Add" => self.add(cx, idx, n),
            "Mul" => self.mul(cx, n),
            "LRN" => {
                check_attrs(cx, n, &["alpha", "beta", "bias", "size"])?;
                let size = attr_int(cx, n, "size", 0)?;
                if size <= 0 || size % 2 == 0 || size > MAX_ATTR {
                    return Err(cx.err(format!(
                        "attribute size={size} is not supported (an odd window size is required: \
                         ONNX and the engine centre even windows differently)"
                    )));
                }
                let (alpha, beta) = (attr_float(cx, n, "alpha", 1e-4)?, attr_float(cx, n, "beta", 0.75)?);
                let k = attr_float(cx, n, "bias", 1.0)?;
                let x = self.map(cx, input(cx, n, 0)?)?;
                let y = self.b.lrn(x.id, size as usize, alpha, beta, k);
                self.define(cx, &n.output[0], Binding::Value { id: y, rank: 4, conv: false })
            }
            "Gemm" => self.gemm(cx, idx, n),
            "MatMul" => self.matmul(cx, idx, n),
            "Flatten" => self.flatten(cx, n),
            "Reshape" => self.reshape(cx, n),
            "Softmax" => self.softmax(cx, n),
            "Dropout" => self.dropout(cx, n),
            "Identity" => {
                check_attrs(cx, n, &[])?;
                let x = input(cx, n, 0)?;
                if self.is_const(x) {
                    let t = self.const_proto(cx, x)?.clone();
                    self.define_const(cx, &n.output[0], t)
                } else {
                    let b = self.binding(cx, x)?;
                    self.define(cx, &n.output[0], b)
                }
            }
            "Constant" => self.constant(cx, n),
            "Pad" => self.pad(cx, n),
            "Clip" => Err(cx.err(
                "unsupported operator Clip (ReLU6 = Clip(0, 6) is not implemented by the engine yet; \
                 only Relu is)",
            )),
            other => Err(cx.err(format!("unsupported operator {other}"))),
        }
    }

    // ---- tensors and bindings ----

    fn is_const(&self, name: &str) -> bool {
        !self.vals.contains_key(name) && (self.consts.contains_key(name) || self.inits.contains_key(name))
    }

    fn const_proto(&self, cx: &Ctx, name: &str) -> Result<&TensorProto> {
        if let Some(t) = self.consts.get(name) {
            return Ok(t);
        }
        match self.inits.get(name) {
            Some(t) if !self.vals.contains_key(name) => Ok(t),
            _ => Err(cx.err(format!("input '{name}' must be a constant (an initializer or a Constant node)"))),
        }
    }

    fn const_f32(&self, cx: &Ctx, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        decode_f32(cx, name, self.const_proto(cx, name)?)
    }

    fn const_i64(&self, cx: &Ctx, name: &str) -> Result<Vec<i64>> {
        decode_i64(cx, name, self.const_proto(cx, name)?)
    }

    /// The binding of a computed tensor, whatever its kind.
    fn binding(&self, cx: &Ctx, name: &str) -> Result<Binding> {
        match self.vals.get(name) {
            Some(b) => Ok(b.clone()),
            None if self.is_const(name) => Err(cx.err(format!(
                "input '{name}' is a constant; the engine takes constants only as weights, biases and scales"
            ))),
            None => Err(cx.err(format!(
                "input '{name}' is not produced by any earlier node (the graph must be topologically sorted)"
            ))),
        }
    }

    /// A computed tensor as an engine value; a pending `MatMul` becomes a linear
    /// layer without bias here.
    fn value(&mut self, cx: &Ctx, name: &str) -> Result<Val> {
        match self.binding(cx, name)? {
            Binding::Value { id, rank, conv } => Ok(Val { id, rank, conv }),
            Binding::Scaled { by, .. } => Err(cx.err(format!(
                "reads '{name}' from {by}: a Mul by a constant is only supported as the scaled branch \
                 of a residual Add (x + c * y)"
            ))),
            Binding::Padded { by, .. } => Err(cx.err(format!(
                "reads '{name}' from {by}: a Pad is only supported in front of a Conv, or of an \
                 AveragePool with ceil_mode=0 and count_include_pad=1 (or no pads of its own)"
            ))),
            Binding::MatMul { id, weight, out, name: prefix } => {
                let y = self.b.linear(id, &prefix, out, false);
                let k = weight.len() / out;
                self.weights.insert(format!("{prefix}.weight"), Tensor { shape: vec![out, k], data: weight });
                let b = Binding::Value { id: y, rank: 2, conv: false };
                self.vals.insert(name.to_string(), b);
                Ok(Val { id: y, rank: 2, conv: false })
            }
        }
    }

    /// A 4-D `[N, C, H, W]` value.
    fn map(&mut self, cx: &Ctx, name: &str) -> Result<Val> {
        let v = self.value(cx, name)?;
        if v.rank != 4 {
            return Err(cx.err(format!(
                "input '{name}' is 2-D but a 4-D [N, C, H, W] tensor is needed (Flatten and Reshape are \
                 only supported in front of Gemm / MatMul)"
            )));
        }
        Ok(v)
    }

    fn define(&mut self, cx: &Ctx, name: &str, b: Binding) -> Result<()> {
        if self.vals.contains_key(name) || self.is_const(name) {
            return Err(cx.err(format!("output '{name}' is defined twice")));
        }
        self.vals.insert(name.to_string(), b);
        Ok(())
    }

    fn define_const(&mut self, cx: &Ctx, name: &str, t: TensorProto) -> Result<()> {
        if self.vals.contains_key(name) || self.is_const(name) {
            return Err(cx.err(format!("output '{name}' is defined twice")));
        }
        self.consts.insert(name.to_string(), t);
        Ok(())
    }

    /// Outputs past `from` (indices, masks, training statistics) must be unused.
    fn extra_outputs_unused(&self, cx: &Ctx, n: &NodeProto, from: usize) -> Result<()> {
        for (i, o) in n.output.iter().enumerate().skip(from) {
            if !o.is_empty() && (self.consumers.contains_key(o.as_str()) || self.outputs.contains(&o.as_str())) {
                return Err(cx.err(format!("output {i} ('{o}') is used, which is not supported")));
            }
        }
        Ok(())
    }

    fn single_consumer(&self, tensor: &str) -> Option<usize> {
        match self.consumers.get(tensor).map(Vec::as_slice) {
            Some(&[c]) if !self.outputs.contains(&tensor) => Some(c),
            _ => None,
        }
    }

    /// A unique, deterministic parameter prefix for a node (see the module docs).
    fn prefix(&mut self, idx: usize, n: &NodeProto, weight: &str) -> String {
        let base = match weight.strip_suffix(".weight").filter(|s| !s.is_empty()) {
            Some(w) => w.to_string(),
            None => {
                let name = n.name.trim_start_matches('/').replace('/', ".");
                let name = name.strip_suffix(&format!(".{}", n.op_type)).unwrap_or(&name);
                if name.is_empty() { format!("{}_{idx}", n.op_type.to_lowercase()) } else { name.to_string() }
            }
        };
        let mut name = base.clone();
        let mut k = 1;
        while !self.prefixes.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        name
    }

    // ---- operators ----

    fn conv(&mut self, cx: &Ctx, idx: usize, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])?;
        let group = attr_int(cx, n, "group", 1)?;
        if group != 1 {
            return Err(cx.err(format!(
                "attribute group={group} is not supported (grouped / depthwise convolution; only group=1)"
            )));
        }
        ones(cx, n, "dilations")?;
        let xname = input(cx, n, 0)?;
        let (x, extra) = match self.binding(cx, xname)? {
            Binding::Padded { id, pad, .. } => (Val { id, rank: 4, conv: false }, pad),
            _ => (self.map(cx, xname)?, Padding::default()),
        };
        let wname = input(cx, n, 1)?;
        let (shape, w) = self.const_f32(cx, wname)?;
        let &[o, ci, kh, kw] = &shape[..] else {
            return Err(cx.err(format!("weight '{wname}' has shape {shape:?}; only 2-D convolutions are supported")));
        };
        if let Some(k) = attr_ints(cx, n, "kernel_shape")?
            && k != [kh as i64, kw as i64]
        {
            return Err(cx.err(format!("attribute kernel_shape={k:?} does not match the weight's {kh}x{kw}")));
        }
        let d = self.b.dims(x.id);
        if ci != d.c {
            return Err(cx.err(format!("weight '{wname}' takes {ci} input channels, the input has {}", d.c)));
        }
        let (sh, sw) = strides(cx, n)?;
        let padded = (d.h + extra.top + extra.bottom, d.w + extra.left + extra.right);
        let p = window_pads(cx, n, (kh, kw), (sh, sw), padded)?;
        let pad = Padding {
            top: p.top + extra.top,
            left: p.left + extra.left,
            bottom: p.bottom + extra.bottom,
            right: p.right + extra.right,
        };
        let geom = ConvGeometry { kh, kw, stride_h: sh, stride_w: sw, pad };
        if o == 0 || geom.output_hw(d.h, d.w).is_none() {
            return Err(cx.err(format!(
                "a {kh}x{kw} window with {o} outputs, stride {sh}x{sw} and padding {pad:?} does not fit the \
                 {}x{} input",
                d.h, d.w
            )));
        }
        let bias = match n.input.get(2).filter(|s| !s.is_empty()) {
            Some(bname) => Some(self.vector(cx, bname, o)?),
            None => None,
        };
        let name = self.prefix(idx, n, wname);
        let mut spec = ConvSpec::rect(o, kh, kw).padding(pad);
        (spec.geom.stride_h, spec.geom.stride_w) = (sh, sw);
        if bias.is_some() {
            spec = spec.bias();
        }
        let y = self.b.conv(x.id, &name, spec);
        self.weights.insert(format!("{name}.weight"), Tensor { shape, data: w });
        if let Some(b) = bias {
            self.weights.insert(format!("{name}.bias"), Tensor { shape: vec![o], data: b });
        }
        self.define(cx, &n.output[0], Binding::Value { id: y, rank: 4, conv: true })
    }

    /// A constant float vector of `len` values (any shape with that many elements).
    fn vector(&self, cx: &Ctx, name: &str, len: usize) -> Result<Vec<f32>> {
        let (shape, v) = self.const_f32(cx, name)?;
        if v.len() != len {
            return Err(cx.err(format!("'{name}' has shape {shape:?}, {len} values are needed")));
        }
        Ok(v)
    }

    fn batch_norm(&mut self, cx: &Ctx, idx: usize, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["epsilon", "momentum", "training_mode", "spatial", "is_test"])?;
        if attr_int(cx, n, "training_mode", 0)? != 0 {
            return Err(cx.err("attribute training_mode=1 is not supported (inference only)"));
        }
        if attr_int(cx, n, "spatial", 1)? != 1 {
            return Err(cx.err("attribute spatial=0 is not supported (per-channel statistics only)"));
        }
        self.extra_outputs_unused(cx, n, 1)?;
        let x = self.value(cx, input(cx, n, 0)?)?;
        let d = self.b.dims(x.id);
        if x.rank == 2 && (d.h, d.w) != (1, 1) {
            return Err(cx.err("BatchNormalization of a flattened feature map is not supported"));
        }
        let eps = attr_float(cx, n, "epsilon", 1e-5)?;
        let mut params = Vec::with_capacity(4);
        for i in 1..5 {
            params.push(self.vector(cx, input(cx, n, i)?, d.c)?);
        }
        if params[3].iter().any(|&v| v < 0.0) {
            return Err(cx.err("the running variance has a negative value"));
        }
        let name = self.prefix(idx, n, input(cx, n, 1)?);
        let y = self.b.batch_norm(x.id, &name, eps);
        for (suffix, data) in ["weight", "bias", "running_mean", "running_var"].into_iter().zip(params) {
            self.weights.insert(format!("{name}.{suffix}"), Tensor { shape: vec![d.c], data });
        }
        self.define(cx, &n.output[0], Binding::Value { id: y, rank: x.rank, conv: x.conv })
    }

    fn pool(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        let max = n.op_type == "MaxPool";
        if max {
            check_attrs(
                cx,
                n,
                &["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"],
            )?;
            self.extra_outputs_unused(cx, n, 1)?;
        } else {
            check_attrs(
                cx,
                n,
                &["auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"],
            )?;
        }
        ones(cx, n, "dilations")?;
        let k = attr_ints(cx, n, "kernel_shape")?.unwrap_or_default();
        let &[kh, kw] = &k[..] else {
            return Err(cx.err(format!("attribute kernel_shape={k:?} must give 2 window sizes")));
        };
        let (kh, kw) = (to_size(cx, "kernel_shape", kh)?, to_size(cx, "kernel_shape", kw)?);
        let ceil_mode = flag(cx, n, "ceil_mode", 0)?;
        let count_include_pad = !max && flag(cx, n, "count_include_pad", 0)?;
        let xname = input(cx, n, 0)?;
        let (x, extra) = match self.binding(cx, xname)? {
            Binding::Padded { id, pad, by } if !max => {
                let pool_pads = attr_ints(cx, n, "pads")?.is_some_and(|p| p.iter().any(|&v| v != 0));
                if ceil_mode || (pool_pads && !count_include_pad) {
                    return Err(cx.err(format!(
                        "reads '{xname}' from {by}: a Pad is only folded into an AveragePool with \
                         count_include_pad=1 (or no pads of its own) and ceil_mode=0"
                    )));
                }
                (Val { id, rank: 4, conv: false }, pad)
            }
            _ => (self.map(cx, xname)?, Padding::default()),
        };
        let d = self.b.dims(x.id);
        let (sh, sw) = strides(cx, n)?;
        let padded = (d.h + extra.top + extra.bottom, d.w + extra.left + extra.right);
        let p = window_pads(cx, n, (kh, kw), (sh, sw), padded)?;
        let pad = Padding {
            top: p.top + extra.top,
            left: p.left + extra.left,
            bottom: p.bottom + extra.bottom,
            right: p.right + extra.right,
        };
        if pad.top.max(pad.bottom) >= kh || pad.left.max(pad.right) >= kw {
            return Err(cx.err(format!("padding {pad:?} must be smaller than the {kh}x{kw} window")));
        }
        let geom = PoolGeometry { window: ConvGeometry { kh, kw, stride_h: sh, stride_w: sw, pad }, ceil_mode };
        if geom.output_hw(d.h, d.w).is_none() {
            return Err(cx.err(format!("a {kh}x{kw} window does not fit the {}x{} input", d.h, d.w)));
        }
        // Zeros added by a Pad node are real pixels to the pool: they count.
        let counted = count_include_pad || extra != Padding::default();
        let y = if max { self.b.max_pool(x.id, geom) } else { self.b.avg_pool(x.id, geom, counted) };
        self.define(cx, &n.output[0], Binding::Value { id: y, rank: 4, conv: false })
    }

    fn concat(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["axis"])?;
        let Some(axis) = attr(n, "axis") else {
            return Err(cx.err("attribute axis is missing"));
        };
        let axis = typed(cx, axis, 2)?.i;
        if n.input.is_empty() || n.input.iter().any(|i| i.is_empty()) {
            return Err(cx.err("needs at least one input"));
        }
        let mut xs = Vec::with_capacity(n.input.len());
        for name in &n.input {
            xs.push(self.value(cx, name)?);
        }
        let rank = xs[0].rank;
        let dims0 = self.b.dims(xs[0].id);
        for (x, name) in xs.iter().zip(&n.input) {
            let d = self.b.dims(x.id);
            if x.rank != rank || (d.h, d.w) != (dims0.h, dims0.w) || (rank == 2 && (d.h, d.w) != (1, 1)) {
                return Err(cx.err(format!(
                    "input '{name}' ({d:?}, rank {}) does not concatenate along channels with the first \
                     ({dims0:?}, rank {rank})",
                    x.rank
                )));
            }
        }
        let norm = if axis < 0 { axis + rank as i64 } else { axis };
        if norm != 1 {
            return Err(cx.err(format!("attribute axis={axis} is not supported (only the channel axis, 1)")));
        }
        let ids: Vec<ValueId> = xs.iter().map(|x| x.id).collect();
        let y = self.b.concat(&ids);
        self.define(cx, &n.output[0], Binding::Value { id: y, rank, conv: false })
    }

    fn add(&mut self, cx: &Ctx, idx: usize, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &[])?;
        let (a, b) = (input(cx, n, 0)?, input(cx, n, 1)?);
        const SUPPORTED: &str = "Add is only supported as a residual shortcut (x + y, or x + c * y with c a \
                                 scalar constant) or as the bias of a MatMul";
        match (self.is_const(a), self.is_const(b)) {
            (true, true) => Err(cx.err(format!("both inputs are constants; {SUPPORTED}"))),
            (false, true) | (true, false) => {
                let (v, c) = if self.is_const(b) { (a, b) } else { (b, a) };
                let Binding::MatMul { id, weight, out, name } = self.binding(cx, v)? else {
                    return Err(cx.err(format!("adds the constant '{c}'; {SUPPORTED}")));
                };
                if self.single_consumer(v) != Some(idx) {
                    return Err(cx.err(format!("the MatMul output '{v}' has other readers; {SUPPORTED}")));
                }
                let bias = self.vector(cx, c, out)?;
                let y = self.b.linear(id, &name, out, true);
                let k = weight.len() / out;
                self.weights.insert(format!("{name}.weight"), Tensor { shape: vec![out, k], data: weight });
                self.weights.insert(format!("{name}.bias"), Tensor { shape: vec![out], data: bias });
                self.define(cx, &n.output[0], Binding::Value { id: y, rank: 2, conv: false })
            }
            (false, false) => {
                let (x, y, scale) = match (self.binding(cx, a)?, self.binding(cx, b)?) {
                    (Binding::Scaled { .. }, Binding::Scaled { .. }) => {
                        return Err(cx.err(format!("both inputs are scaled; {SUPPORTED}")));
                    }
                    (Binding::Scaled { id, scale, .. }, _) => (self.map(cx, b)?.id, id, scale),
                    (_, Binding::Scaled { id, scale, .. }) => (self.map(cx, a)?.id, id, scale),
                    _ => {
                        let (va, vb) = (self.map(cx, a)?, self.map(cx, b)?);
                        // x + y = y + x exactly: put the convolution second, where the
                        // planner fuses the sum into its store.
                        if va.conv && !vb.conv { (vb.id, va.id, 1.0) } else { (va.id, vb.id, 1.0) }
                    }
                };
                let (dx, dy) = (self.b.dims(x), self.b.dims(y));
                if dx != dy {
                    return Err(
                        cx.err(format!("the inputs have shapes {dx:?} and {dy:?}; broadcasting is not supported"))
                    );
                }
                // A Relu that is the sum's only reader becomes the residual's activation.
                let act = match self.single_consumer(&n.output[0]) {
                    Some(r) if self.nodes[r].op_type == "Relu" && self.nodes[r].domain.is_empty() => {
                        self.fused_relu.insert(r);
                        Activation::Relu
                    }
                    _ => Activation::None,
                };
                let out = self.b.residual_add(x, y, scale, act);
                self.define(cx, &n.output[0], Binding::Value { id: out, rank: 4, conv: false })
            }
        }
    }

    fn mul(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &[])?;
        let (a, b) = (input(cx, n, 0)?, input(cx, n, 1)?);
        const SUPPORTED: &str = "Mul is only supported by a scalar constant, as the scaled branch of a residual \
                                 Add (x + c * y)";
        let (v, c) = match (self.is_const(a), self.is_const(b)) {
            (false, true) => (a, b),
            (true, false) => (b, a),
            _ => return Err(cx.err(SUPPORTED)),
        };
        let (shape, data) = self.const_f32(cx, c)?;
        let &[scale] = &data[..] else {
            return Err(cx.err(format!("the constant '{c}' has shape {shape:?}; {SUPPORTED}")));
        };
        let x = self.map(cx, v)?;
        let by = cx.0.clone();
        self.define(cx, &n.output[0], Binding::Scaled { id: x.id, scale, by })
    }

    /// The `[N, K]` input of a linear layer and `K`.
    fn linear_input(&mut self, cx: &Ctx, name: &str) -> Result<(ValueId, usize)> {
        let x = self.value(cx, name)?;
        if x.rank != 2 {
            return Err(cx.err(format!("input '{name}' must be 2-D [N, K] (insert a Flatten)")));
        }
        Ok((x.id, self.b.dims(x.id).volume()))
    }

    fn gemm(&mut self, cx: &Ctx, idx: usize, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["alpha", "beta", "transA", "transB"])?;
        for a in ["alpha", "beta"] {
            let v = attr_float(cx, n, a, 1.0)?;
            if v != 1.0 {
                return Err(cx.err(format!("attribute {a}={v} is not supported (only 1)")));
            }
        }
        if attr_int(cx, n, "transA", 0)? != 0 {
            return Err(cx.err("attribute transA=1 is not supported"));
        }
        let trans_b = flag(cx, n, "transB", 0)?;
        let (x, k) = self.linear_input(cx, input(cx, n, 0)?)?;
        let wname = input(cx, n, 1)?;
        let (shape, w) = self.const_f32(cx, wname)?;
        let (w, out) = match (&shape[..], trans_b) {
            (&[out, kk], true) if kk == k && out > 0 => (w, out),
            (&[kk, out], false) if kk == k && out > 0 => (transpose(&w, k, out), out),
            _ => {
                return Err(cx.err(format!(
                    "weight '{wname}' has shape {shape:?} (transB={}), the input has {k} features",
                    trans_b as u8
                )));
            }
        };
        let bias = match n.input.get(2).filter(|s| !s.is_empty()) {
            Some(c) => {
                let (cshape, v) = self.const_f32(cx, c)?;
                match v.len() {
                    1 => Some(vec![v[0]; out]),
                    l if l == out && cshape.iter().rev().skip(1).all(|&d| d == 1) => Some(v),
                    _ => return Err(cx.err(format!("bias '{c}' has shape {cshape:?}, {out} values are needed"))),
                }
            }
            None => None,
        };
        let name = self.prefix(idx, n, wname);
        let y = self.b.linear(x, &name, out, bias.is_some());
        self.weights.insert(format!("{name}.weight"), Tensor { shape: vec![out, k], data: w });
        if let Some(b) = bias {
            self.weights.insert(format!("{name}.bias"), Tensor { shape: vec![out], data: b });
        }
        self.define(cx, &n.output[0], Binding::Value { id: y, rank: 2, conv: false })
    }

    fn matmul(&mut self, cx: &Ctx, idx: usize, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &[])?;
        let (x, k) = self.linear_input(cx, input(cx, n, 0)?)?;
        let wname = input(cx, n, 1)?;
        let (shape, w) = self.const_f32(cx, wname)?;
        let &[kk, out] = &shape[..] else {
            return Err(cx.err(format!("weight '{wname}' has shape {shape:?}; a 2-D [K, out] constant is needed")));
        };
        if kk != k || out == 0 {
            return Err(cx.err(format!("weight '{wname}' has shape {shape:?}, the input has {k} features")));
        }
        let name = self.prefix(idx, n, wname);
        let weight = transpose(&w, k, out);
        self.define(cx, &n.output[0], Binding::MatMul { id: x, weight, out, name })
    }

    fn flatten(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["axis"])?;
        let axis = attr_int(cx, n, "axis", 1)?;
        let x = self.value(cx, input(cx, n, 0)?)?;
        if !(axis == 1 || axis == 1 - x.rank as i64) {
            return Err(cx.err(format!("attribute axis={axis} is not supported (only 1: [N, C*H*W])")));
        }
        self.define(cx, &n.output[0], Binding::Value { id: x.id, rank: 2, conv: false })
    }

    fn reshape(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["allowzero"])?;
        let allowzero = flag(cx, n, "allowzero", 0)?;
        let x = self.value(cx, input(cx, n, 0)?)?;
        let shape = self.const_i64(cx, input(cx, n, 1)?)?;
        let k = self.b.dims(x.id).volume() as i64;
        let batch_ok = |v: i64| v == -1 || v == 1 || (v == 0 && !allowzero) || Some(v) == self.batch;
        let ok = match shape[..] {
            [-1, f] => f == k,
            [nb, f] => batch_ok(nb) && (f == k || f == -1),
            _ => false,
        };
        if !ok {
            return Err(cx.err(format!(
                "shape {shape:?} is not supported: only a reshape to [N, C*H*W] = [N, {k}] in front of a linear \
                 layer is"
            )));
        }
        self.define(cx, &n.output[0], Binding::Value { id: x.id, rank: 2, conv: false })
    }

    fn softmax(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["axis"])?;
        let x = self.value(cx, input(cx, n, 0)?)?;
        let axis = attr_int(cx, n, "axis", if self.opset < 13 { 1 } else { -1 })?;
        let axis = if axis < 0 { axis + x.rank as i64 } else { axis };
        let d = self.b.dims(x.id);
        let pixel = (d.h, d.w) == (1, 1);
        // The engine's softmax runs over channels at each pixel. Before opset 13, ONNX's
        // axis 1 on a 4-D tensor means over C*H*W jointly: the same only for 1x1 maps.
        let ok = axis == 1 && (pixel || (x.rank == 4 && self.opset >= 13));
        if !ok {
            return Err(cx.err(format!(
                "softmax over axis {axis} of a rank-{} {d:?} tensor is not supported (only over channels)",
                x.rank
            )));
        }
        let y = self.b.softmax(x.id);
        self.define(cx, &n.output[0], Binding::Value { id: y, rank: x.rank, conv: false })
    }

    fn dropout(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["ratio", "seed", "is_test"])?;
        self.extra_outputs_unused(cx, n, 1)?;
        if let Some(t) = n.input.get(2).filter(|s| !s.is_empty()) {
            let tp = self.const_proto(cx, t)?;
            if decode_bool(cx, t, tp)?.iter().any(|&b| b) {
                return Err(cx.err("training_mode=true is not supported (inference only)"));
            }
        }
        let b = self.binding(cx, input(cx, n, 0)?)?;
        self.define(cx, &n.output[0], b)
    }

    fn constant(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        let [a] = &n.attribute[..] else {
            return Err(cx.err("needs exactly one value attribute"));
        };
        let t = match a.name.as_str() {
            "value" => typed(cx, a, 4)?.t.clone().ok_or_else(|| cx.err("attribute value holds no tensor"))?,
            "value_float" => {
                TensorProto { data_type: FLOAT, float_data: vec![typed(cx, a, 1)?.f], ..Default::default() }
            }
            "value_floats" => TensorProto {
                dims: vec![a.floats.len() as i64],
                data_type: FLOAT,
                float_data: typed(cx, a, 6)?.floats.clone(),
                ..Default::default()
            },
            "value_int" => TensorProto { data_type: INT64, int64_data: vec![typed(cx, a, 2)?.i], ..Default::default() },
            "value_ints" => TensorProto {
                dims: vec![a.ints.len() as i64],
                data_type: INT64,
                int64_data: typed(cx, a, 7)?.ints.clone(),
                ..Default::default()
            },
            other => return Err(cx.err(format!("attribute {other} is not supported"))),
        };
        self.define_const(cx, &n.output[0], t)
    }

    fn pad(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["mode", "pads", "value"])?;
        let mode = attr_string(cx, n, "mode", "constant")?;
        if mode != "constant" {
            return Err(cx.err(format!("attribute mode='{mode}' is not supported (only constant zeros)")));
        }
        let (pads, value) = if self.opset < 11 {
            let p = attr_ints(cx, n, "pads")?.ok_or_else(|| cx.err("attribute pads is missing"))?;
            (p, attr_float(cx, n, "value", 0.0)?)
        } else {
            let p = self.const_i64(cx, input(cx, n, 1)?)?;
            let v = match n.input.get(2).filter(|s| !s.is_empty()) {
                Some(c) => match self.const_f32(cx, c)?.1[..] {
                    [v] => v,
                    _ => return Err(cx.err(format!("constant_value '{c}' must be a scalar"))),
                },
                None => 0.0,
            };
            (p, v)
        };
        if value != 0.0 {
            return Err(cx.err(format!("constant value {value} is not supported (only zero padding)")));
        }
        // Begin/end pads per axis, for the 4 axes N, C, H, W.
        let mut begin = [0i64; 4];
        let mut end = [0i64; 4];
        let axes = match n.input.get(3).filter(|s| !s.is_empty()) {
            Some(a) => self.const_i64(cx, a)?,
            None => (0..4).collect(),
        };
        if pads.len() != 2 * axes.len() {
            return Err(cx.err(format!("pads {pads:?} do not match {} axes", axes.len())));
        }
        for (i, &a) in axes.iter().enumerate() {
            let a = if a < 0 { a + 4 } else { a };
            if !(0..4).contains(&a) {
                return Err(cx.err(format!("axis {a} is out of range for a 4-D tensor")));
            }
            (begin[a as usize], end[a as usize]) = (pads[i], pads[i + axes.len()]);
        }
        if begin[..2].iter().chain(&end[..2]).any(|&p| p != 0) {
            return Err(cx.err(format!("pads {pads:?} are not supported: only H and W may be padded")));
        }
        if begin.iter().chain(&end).any(|&p| !(0..=MAX_ATTR).contains(&p)) {
            return Err(cx.err(format!("pads {pads:?} are not supported: negative pads crop")));
        }
        let xname = input(cx, n, 0)?;
        let (id, base) = match self.binding(cx, xname)? {
            Binding::Padded { id, pad, .. } => (id, pad),
            _ => (self.map(cx, xname)?.id, Padding::default()),
        };
        let pad = Padding {
            top: base.top + begin[2] as usize,
            left: base.left + begin[3] as usize,
            bottom: base.bottom + end[2] as usize,
            right: base.right + end[3] as usize,
        };
        let by = cx.0.clone();
        self.define(cx, &n.output[0], Binding::Padded { id, pad, by })
    }
}

// ---- attributes ----

fn input<'n>(cx: &Ctx, n: &'n NodeProto, i: usize) -> Result<&'n str> {
    match n.input.get(i) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(cx.err(format!("input {i} is missing"))),
    }
}

fn check_attrs(cx: &Ctx, n: &NodeProto, allowed: &[&str]) -> Result<()> {
    match n.attribute.iter().find(|a| !allowed.contains(&a.name.as_str())) {
        Some(a) => Err(cx.err(format!("attribute {} is not supported", a.name))),
        None => Ok(()),
    }
}

fn attr<'n>(n: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

/// The attribute, if its declared type is `ty` (or undeclared, as in old files).
fn typed<'n>(cx: &Ctx, a: &'n AttributeProto, ty: i32) -> Result<&'n AttributeProto> {
    if a.r#type == ty || a.r#type == 0 {
        Ok(a)
    } else {
        Err(cx.err(format!("attribute {} has type {}, expected {ty}", a.name, a.r#type)))
    }
}

fn attr_int(cx: &Ctx, n: &NodeProto, name: &str, default: i64) -> Result<i64> {
    attr(n, name).map_or(Ok(default), |a| Ok(typed(cx, a, 2)?.i))
}

fn attr_float(cx: &Ctx, n: &NodeProto, name: &str, default: f32) -> Result<f32> {
    attr(n, name).map_or(Ok(default), |a| Ok(typed(cx, a, 1)?.f))
}

fn attr_ints(cx: &Ctx, n: &NodeProto, name: &str) -> Result<Option<Vec<i64>>> {
    attr(n, name).map_or(Ok(None), |a| Ok(Some(typed(cx, a, 7)?.ints.clone())))
}

fn attr_string(cx: &Ctx, n: &NodeProto, name: &str, default: &str) -> Result<String> {
    match attr(n, name) {
        None => Ok(default.to_string()),
        Some(a) => String::from_utf8(typed(cx, a, 3)?.s.clone())
            .map_err(|_| cx.err(format!("attribute {name} is not valid UTF-8"))),
    }
}

/// A 0/1 attribute.
fn flag(cx: &Ctx, n: &NodeProto, name: &str, default: i64) -> Result<bool> {
    match attr_int(cx, n, name, default)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(cx.err(format!("attribute {name}={v} must be 0 or 1"))),
    }
}

/// An attribute list that must be all ones when present (dilations).
fn ones(cx: &Ctx, n: &NodeProto, name: &str) -> Result<()> {
    match attr_ints(cx, n, name)? {
        Some(v) if v.iter().any(|&d| d != 1) => {
            Err(cx.err(format!("attribute {name}={v:?} is not supported (only 1)")))
        }
        _ => Ok(()),
    }
}

fn to_size(cx: &Ctx, what: &str, v: i64) -> Result<usize> {
    if (0..=MAX_ATTR).contains(&v) {
        Ok(v as usize)
    } else {
        Err(cx.err(format!("attribute {what} has the value {v}, out of range")))
    }
}

fn strides(cx: &Ctx, n: &NodeProto) -> Result<(usize, usize)> {
    match attr_ints(cx, n, "strides")?.as_deref() {
        None => Ok((1, 1)),
        Some(&[h, w]) if h > 0 && w > 0 => Ok((to_size(cx, "strides", h)?, to_size(cx, "strides", w)?)),
        Some(s) => Err(cx.err(format!("attribute strides={s:?} must be 2 positive values"))),
    }
}

/// The window's padding from `pads` or `auto_pad`, for an `h x w` input.
fn window_pads(
    cx: &Ctx,
    n: &NodeProto,
    (kh, kw): (usize, usize),
    (sh, sw): (usize, usize),
    (h, w): (usize, usize),
) -> Result<Padding> {
    let auto = attr_string(cx, n, "auto_pad", "NOTSET")?;
    // TF-style SAME: the output is ceil(in / stride); the odd pixel goes after
    // (SAME_UPPER) or before (SAME_LOWER).
    let same = |size: usize, k: usize, s: usize, upper: bool| {
        let out = size.div_ceil(s);
        let total = ((out.max(1) - 1) * s + k).saturating_sub(size);
        let (small, big) = (total / 2, total - total / 2);
        if upper { (small, big) } else { (big, small) }
    };
    match auto.as_str() {
        "NOTSET" | "" => match attr_ints(cx, n, "pads")?.as_deref() {
            None => Ok(Padding::default()),
            Some(&[t, l, b, r]) => Ok(Padding {
                top: to_size(cx, "pads", t)?,
                left: to_size(cx, "pads", l)?,
                bottom: to_size(cx, "pads", b)?,
                right: to_size(cx, "pads", r)?,
            }),
            Some(p) => Err(cx.err(format!("attribute pads={p:?} must give 4 values"))),
        },
        "VALID" => Ok(Padding::default()),
        "SAME_UPPER" | "SAME_LOWER" => {
            let upper = auto == "SAME_UPPER";
            let ((top, bottom), (left, right)) = (same(h, kh, sh, upper), same(w, kw, sw, upper));
            Ok(Padding { top, left, bottom, right })
        }
        other => Err(cx.err(format!("attribute auto_pad='{other}' is not supported"))),
    }
}

// ---- tensor data ----

fn numel(cx: &Ctx, name: &str, t: &TensorProto) -> Result<(Vec<usize>, usize)> {
    if t.data_location == 1 || !t.external_data.is_empty() {
        return Err(cx.err(format!("tensor '{name}' keeps its data in an external file, which is not supported")));
    }
    let mut shape = Vec::with_capacity(t.dims.len());
    let mut n: usize = 1;
    for &d in &t.dims {
        let d = usize::try_from(d).map_err(|_| cx.err(format!("tensor '{name}' has a negative dimension")))?;
        n = n.checked_mul(d).ok_or_else(|| cx.err(format!("tensor '{name}' is impossibly large")))?;
        shape.push(d);
    }
    Ok((shape, n))
}

fn dtype_name(t: i32) -> &'static str {
    match t {
        1 => "float32",
        2 => "uint8",
        3 => "int8",
        6 => "int32",
        7 => "int64",
        9 => "bool",
        10 => "float16",
        11 => "float64",
        16 => "bfloat16",
        _ => "other",
    }
}

/// Little-endian raw bytes of `n` elements of `size` bytes, or the typed field.
fn raw<'t>(
    cx: &Ctx,
    name: &str,
    t: &'t TensorProto,
    n: usize,
    size: usize,
    typed_len: usize,
) -> Result<Option<&'t [u8]>> {
    if !t.raw_data.is_empty() {
        if Some(t.raw_data.len()) != n.checked_mul(size) {
            return Err(cx.err(format!(
                "tensor '{name}' holds {} bytes of data, its shape {:?} needs {n} values of {size} bytes",
                t.raw_data.len(),
                t.dims
            )));
        }
        return Ok(Some(&t.raw_data));
    }
    if typed_len != n {
        return Err(cx.err(format!("tensor '{name}' holds {typed_len} values, its shape {:?} needs {n}", t.dims)));
    }
    Ok(None)
}

fn decode_f32(cx: &Ctx, name: &str, t: &TensorProto) -> Result<(Vec<usize>, Vec<f32>)> {
    if t.data_type != FLOAT {
        return Err(cx.err(format!(
            "tensor '{name}' is {} (data type {}); only float32 weights are supported",
            dtype_name(t.data_type),
            t.data_type
        )));
    }
    let (shape, n) = numel(cx, name, t)?;
    let data = match raw(cx, name, t, n, 4, t.float_data.len())? {
        Some(bytes) => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        None => t.float_data.clone(),
    };
    Ok((shape, data))
}

fn decode_i64(cx: &Ctx, name: &str, t: &TensorProto) -> Result<Vec<i64>> {
    let (_, n) = numel(cx, name, t)?;
    match t.data_type {
        INT64 => Ok(match raw(cx, name, t, n, 8, t.int64_data.len())? {
            Some(bytes) => bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect(),
            None => t.int64_data.clone(),
        }),
        INT32 => Ok(match raw(cx, name, t, n, 4, t.int32_data.len())? {
            Some(bytes) => {
                bytes.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as i64).collect()
            }
            None => t.int32_data.iter().map(|&v| v as i64).collect(),
        }),
        other => Err(cx.err(format!("tensor '{name}' is {} (data type {other}); int64 is needed", dtype_name(other)))),
    }
}

fn decode_bool(cx: &Ctx, name: &str, t: &TensorProto) -> Result<Vec<bool>> {
    if t.data_type != BOOL {
        return Err(cx.err(format!("tensor '{name}' is {}; bool is needed", dtype_name(t.data_type))));
    }
    let (_, n) = numel(cx, name, t)?;
    Ok(match raw(cx, name, t, n, 1, t.int32_data.len())? {
        Some(bytes) => bytes.iter().map(|&b| b != 0).collect(),
        None => t.int32_data.iter().map(|&v| v != 0).collect(),
    })
}

/// `[rows, cols]` -> `[cols, rows]`.
fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}
