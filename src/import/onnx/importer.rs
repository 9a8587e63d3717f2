//! The importer's state: the engine graph being built, the ONNX tensors bound so far,
//! and the dispatch of nodes to their translation.

use std::collections::{HashMap, HashSet};

use super::attrs::{attr_float, attr_int, check_attrs, input};
use super::fold::{self, Const, FOLDABLE, SYMBOLIC_BATCH};
use super::proto::{self, NodeProto, TensorProto};
use super::tensor::{decode_f32, decode_i64};
use super::{Ctx, FLOAT, MAX_ATTR, nhwc};
use crate::error::{Error, Result};
use crate::graph::{Dims, Graph, GraphBuilder, InputLayout, Padding, ValueId};
use crate::weights::{Tensor, Weights};

/// A tensor computed by the graph, as the importer holds it.
#[derive(Clone, Debug)]
pub(super) enum Binding {
    /// An engine value. ONNX `rank` 4 is `[N, C, H, W]`; rank 2 is `[N, C*H*W]` (the
    /// output of a linear layer, or a flattened map that only a linear layer may read).
    Value { id: ValueId, rank: u8, conv: bool },
    /// `c * id` from `Mul` node `node` by a scalar constant: a residual `Add` folds it,
    /// any other reader makes it an affine step.
    Scaled { id: ValueId, scale: f32, node: usize },
    /// `id` zero-padded by a `Pad` node: only a `Conv` or a counting `AveragePool` may read it.
    Padded { id: ValueId, pad: Padding, by: String },
    /// `id @ W` from a `MatMul`, not yet built: an `Add` of a bias makes it a linear
    /// layer with bias, any other reader one without. `weight` is `[out, in]`.
    MatMul { id: ValueId, weight: Vec<f32>, out: usize, name: String },
}

/// An engine value with its ONNX rank and whether a convolution (possibly followed
/// by a BatchNorm) produced it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Val {
    pub(super) id: ValueId,
    pub(super) rank: u8,
    pub(super) conv: bool,
}

pub(super) struct Importer<'a> {
    /// The `Transpose` of an NHWC input, which the engine's input reorder does.
    pub(super) input_transpose: Option<usize>,
    pub(super) nodes: &'a [NodeProto],
    pub(super) outputs: Vec<&'a str>,
    pub(super) opset: i64,
    /// The input's static batch size, when it has one (accepted in `Reshape` shapes).
    pub(super) batch: Option<i64>,
    pub(super) b: GraphBuilder,
    pub(super) weights: Weights,
    pub(super) inits: HashMap<&'a str, &'a TensorProto>,
    /// Outputs of `Constant` nodes (and `Identity` of a constant).
    pub(super) consts: HashMap<String, TensorProto>,
    pub(super) vals: HashMap<String, Binding>,
    /// Nodes reading each tensor.
    pub(super) consumers: HashMap<&'a str, Vec<usize>>,
    /// `Relu` nodes folded into the residual `Add` before them.
    pub(super) fused_relu: HashSet<usize>,
    pub(super) prefixes: HashSet<String>,
}

impl<'a> Importer<'a> {
    pub(super) fn new(g: &'a proto::GraphProto, opset: i64) -> Result<Self> {
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
        let mut chw: Vec<usize> = dims
            .iter()
            .skip(1)
            .filter_map(|d| d.dim_value.filter(|&v| v > 0 && v <= MAX_ATTR).map(|v| v as usize))
            .collect();
        if dims.len() != 4 || chw.len() != 3 {
            return Err(cx.err("must be [N, C, H, W] (or [N, H, W, C] transposed) with static C, H and W"));
        }
        let nhwc = nhwc::input_transpose(&g.node, &input.name);
        if nhwc.is_some() {
            chw.rotate_right(1);
        }
        let name = if g.name.is_empty() { "onnx" } else { g.name.as_str() };
        let mut b = GraphBuilder::new(name, Dims::new(chw[0], chw[1], chw[2]));
        let mut vals = HashMap::new();
        let x = Binding::Value { id: b.input(), rank: 4, conv: false };
        match nhwc {
            Some(t) => {
                b.set_input_layout(InputLayout::Nhwc);
                vals.insert(g.node[t].output[0].clone(), x);
            }
            None => _ = vals.insert(input.name.clone(), x),
        }
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
            input_transpose: nhwc,
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

    pub(super) fn run(mut self) -> Result<(Graph, Weights)> {
        let nodes = self.nodes;
        for (idx, node) in nodes.iter().enumerate() {
            let cx = Ctx::node(idx, node, self.opset);
            if !(node.domain.is_empty() || node.domain == "ai.onnx") {
                return Err(cx.err(format!("operator domain '{}' is not supported", node.domain)));
            }
            if node.output.first().is_none_or(|o| o.is_empty()) {
                return Err(cx.err("the node has no output"));
            }
            if self.input_transpose != Some(idx) {
                self.node(&cx, idx, node)?;
            }
        }
        let [out] = self.outputs[..] else {
            return Err(Error::Import(format!(
                "the engine runs graphs with exactly one output, this one has {} ({:?})",
                self.outputs.len(),
                self.outputs
            )));
        };
        let y = self.value(&Ctx(format!("graph output '{out}'")), out)?;
        if y.id == self.b.input() {
            let last = nodes.iter().rposition(|n| n.output.iter().any(|o| o == out));
            let cx = match last {
                Some(i) => Ctx::node(i, &nodes[i], self.opset),
                None => Ctx(format!("graph output '{out}'")),
            };
            return Err(cx.err("the graph's output is its input (only shape-only operators): nothing to run"));
        }
        let graph = self.b.finish(y.id)?;
        Ok((graph, self.weights))
    }

    pub(super) fn node(&mut self, cx: &Ctx, idx: usize, n: &'a NodeProto) -> Result<()> {
        if self.fold(cx, n)? {
            return Ok(());
        }
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
            "Mul" => self.mul(cx, idx, n),
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
            "Squeeze" | "Unsqueeze" => self.squeeze(cx, n),
            "ReduceMean" => self.reduce_mean(cx, n),
            "Sum" => self.sum(cx, n),
            "Sub" | "Div" => self.mul(cx, idx, n),
            "Softmax" => self.softmax(cx, n),
            "Dropout" => self.dropout(cx, n),
            "Identity" => {
                check_attrs(cx, n, &[])?;
                let b = self.binding(cx, input(cx, n, 0)?)?;
                self.define(cx, &n.output[0], b)
            }
            "Constant" => self.constant(cx, n),
            "Pad" => self.pad(cx, n),
            "Clip" => self.clip(cx, n),
            "Sigmoid" | "LeakyRelu" => self.activation(cx, n),
            other => Err(cx
                .err(format!("unsupported operator {other} (opset {}): the engine does not implement it", self.opset))),
        }
    }

    // ---- tensors and bindings ----

    /// Folds `n` into constants when it is foldable and its inputs are constants (or,
    /// for `Shape`, a value of known shape). Returns whether it did.
    fn fold(&mut self, cx: &Ctx, n: &NodeProto) -> Result<bool> {
        if !FOLDABLE.contains(&n.op_type.as_str()) {
            return Ok(false);
        }
        if n.op_type == "Shape" && self.vals.contains_key(input(cx, n, 0)?) {
            // The shape of a computed tensor: static but for a symbolic batch.
            let shape = self.shape_of(cx, input(cx, n, 0)?)?;
            self.define_const(cx, &n.output[0], fold::shape_slice(cx, n, shape)?.encode())?;
            return Ok(true);
        }
        let mut args = Vec::with_capacity(n.input.len());
        for name in &n.input {
            if name.is_empty() {
                args.push(None);
            } else if self.is_const(name) {
                args.push(Some(Const::decode(cx, name, self.const_proto(cx, name)?)?));
            } else {
                return Ok(false);
            }
        }
        let outs = fold::eval(cx, n, self.opset, &args)?;
        for (name, y) in n.output.iter().zip(outs) {
            if !name.is_empty() {
                self.define_const(cx, name, y.encode())?;
            }
        }
        Ok(true)
    }

    /// The ONNX shape of a computed tensor, `[N, C, H, W]` or `[N, C*H*W]`, as an
    /// int64 vector (the batch is [`SYMBOLIC_BATCH`] when the input's is symbolic).
    fn shape_of(&mut self, cx: &Ctx, name: &str) -> Result<Vec<i64>> {
        let x = self.value(cx, name)?;
        let d = self.b.dims(x.id);
        let batch = self.batch.unwrap_or(SYMBOLIC_BATCH);
        Ok(if x.rank == 4 { vec![batch, d.c as i64, d.h as i64, d.w as i64] } else { vec![batch, d.volume() as i64] })
    }

    pub(super) fn is_const(&self, name: &str) -> bool {
        !self.vals.contains_key(name) && (self.consts.contains_key(name) || self.inits.contains_key(name))
    }

    pub(super) fn const_proto(&self, cx: &Ctx, name: &str) -> Result<&TensorProto> {
        if let Some(t) = self.consts.get(name) {
            return Ok(t);
        }
        match self.inits.get(name) {
            Some(t) if !self.vals.contains_key(name) => Ok(t),
            _ => Err(cx.err(format!("input '{name}' must be a constant (an initializer or a Constant node)"))),
        }
    }

    pub(super) fn const_f32(&self, cx: &Ctx, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        decode_f32(cx, name, self.const_proto(cx, name)?)
    }

    pub(super) fn const_i64(&self, cx: &Ctx, name: &str) -> Result<Vec<i64>> {
        decode_i64(cx, name, self.const_proto(cx, name)?)
    }

    /// The binding of a computed tensor, whatever its kind.
    pub(super) fn binding(&self, cx: &Ctx, name: &str) -> Result<Binding> {
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
    pub(super) fn value(&mut self, cx: &Ctx, name: &str) -> Result<Val> {
        match self.binding(cx, name)? {
            Binding::Value { id, rank, conv } => Ok(Val { id, rank, conv }),
            Binding::Scaled { id, scale, node } => {
                let x = Val { id, rank: 4, conv: false };
                let c = self.b.dims(id).c;
                let y = self.affine(cx, node, x, vec![scale; c], vec![0.0; c])?;
                self.vals.insert(name.to_string(), Binding::Value { id: y.id, rank: 4, conv: y.conv });
                Ok(y)
            }
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
    pub(super) fn map(&mut self, cx: &Ctx, name: &str) -> Result<Val> {
        let v = self.value(cx, name)?;
        if v.rank != 4 {
            return Err(cx.err(format!(
                "input '{name}' is 2-D but a 4-D [N, C, H, W] tensor is needed (Flatten and Reshape are \
                 only supported in front of Gemm / MatMul)"
            )));
        }
        Ok(v)
    }

    pub(super) fn define(&mut self, cx: &Ctx, name: &str, b: Binding) -> Result<()> {
        if self.vals.contains_key(name) || self.is_const(name) {
            return Err(cx.err(format!("output '{name}' is defined twice")));
        }
        self.vals.insert(name.to_string(), b);
        Ok(())
    }

    pub(super) fn define_const(&mut self, cx: &Ctx, name: &str, t: TensorProto) -> Result<()> {
        if self.vals.contains_key(name) || self.is_const(name) {
            return Err(cx.err(format!("output '{name}' is defined twice")));
        }
        self.consts.insert(name.to_string(), t);
        Ok(())
    }

    /// Outputs past `from` (indices, masks, training statistics) must be unused.
    pub(super) fn extra_outputs_unused(&self, cx: &Ctx, n: &NodeProto, from: usize) -> Result<()> {
        for (i, o) in n.output.iter().enumerate().skip(from) {
            if !o.is_empty() && (self.consumers.contains_key(o.as_str()) || self.outputs.contains(&o.as_str())) {
                return Err(cx.err(format!("output {i} ('{o}') is used, which is not supported")));
            }
        }
        Ok(())
    }

    pub(super) fn single_consumer(&self, tensor: &str) -> Option<usize> {
        match self.consumers.get(tensor).map(Vec::as_slice) {
            Some(&[c]) if !self.outputs.contains(&tensor) => Some(c),
            _ => None,
        }
    }

    /// A unique, deterministic parameter prefix for a node (see the module docs).
    pub(super) fn prefix(&mut self, idx: usize, n: &NodeProto, weight: &str) -> String {
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
}
