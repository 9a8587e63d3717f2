//! The JSON header of a model file: the graph as a list of operators (replayed
//! through [`GraphBuilder`] on load, so a file cannot describe an invalid graph)
//! and the tensor table.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::graph::{
    Activation, ConvGeometry, ConvSpec, Dims, Graph, GraphBuilder, InputLayout, Op, Padding, Pointwise, PoolGeometry,
    ValueId,
};
use crate::lower::Precision;

/// Everything between the fixed prelude and the tensor data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// What wrote the file (`incept 0.1.0`), for reports only.
    pub producer: String,
    /// The network.
    pub graph: GraphDesc,
    /// One entry per program tensor, in `TensorId` order.
    pub tensors: Vec<TensorEntry>,
    /// The precision the program was lowered for (`"bf16"`: its BF16 convolutions'
    /// weights are stored rounded); absent for float32 (files of float32 programs
    /// stay as they were).
    #[serde(default, skip_serializing_if = "is_f32")]
    pub precision: Precision,
}

fn is_f32(precision: &Precision) -> bool {
    *precision == Precision::F32
}

/// Where one tensor is, how it is laid out, and its checksum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorEntry {
    /// The tensor's name (the parameter it came from).
    pub name: String,
    /// Its layout (see [`Packing`](crate::lower::Packing) names).
    pub packing: String,
    /// Its shape in that layout.
    pub shape: Vec<usize>,
    /// Offset from the start of the data section, a multiple of 64.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
    /// CRC-32 (IEEE) of the bytes, as 8 hex digits (fixed width, so a header can be
    /// written before the checksums are known and patched afterwards).
    pub crc32: String,
}

/// A graph as the operators that build it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphDesc {
    /// The network's name.
    pub name: String,
    /// Input image shape `[c, h, w]`.
    pub input: [usize; 3],
    /// Operators in execution order. Inputs name values: 0 is the graph input,
    /// `k > 0` the output of node `k - 1`.
    pub nodes: Vec<NodeDesc>,
    /// The value the network returns.
    pub output: usize,
    /// Parameter name prefixes of training-only heads.
    pub ignored_prefixes: Vec<String>,
    /// The input's order; absent for NCHW (files of NCHW graphs stay as they were).
    #[serde(default, skip_serializing_if = "is_nchw")]
    pub input_layout: InputLayout,
}

fn is_nchw(layout: &InputLayout) -> bool {
    *layout == InputLayout::Nchw
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDesc {
    /// The node's name; parameters are named after it.
    pub name: String,
    /// The operator and its attributes.
    pub op: OpDesc,
    /// Input values.
    pub inputs: Vec<usize>,
}

/// An operator and the attributes that are not parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OpDesc {
    /// Convolution; parameters `{name}.weight` and, with `bias`, `{name}.bias`.
    Conv {
        /// Output channels.
        out_channels: usize,
        /// Window, stride, padding.
        window: WindowDesc,
        /// Whether the layer has a bias.
        bias: bool,
    },
    /// Inference BatchNorm (parameters `{name}.weight`, `.bias`, `.running_mean`, `.running_var`).
    BatchNorm {
        /// Added to the variance.
        eps: f32,
    },
    /// `max(x, 0)`.
    Relu,
    /// Max pooling.
    MaxPool {
        /// Window, stride, padding.
        window: WindowDesc,
        /// Round the output size up.
        ceil_mode: bool,
    },
    /// Average pooling.
    AvgPool {
        /// Window, stride, padding.
        window: WindowDesc,
        /// Round the output size up.
        ceil_mode: bool,
        /// Divide by the padded window rather than the real pixels.
        count_include_pad: bool,
        /// The padding takes the bias of the projection before it (see
        /// [`Op::AvgPool`]); absent when false, as in files written before it existed.
        #[serde(default, skip_serializing_if = "is_false")]
        pad_with_bias: bool,
    },
    /// Mean over the spatial dimensions.
    GlobalAvgPool,
    /// Concatenation along channels, in input order.
    Concat,
    /// `act(x + scale * y)`.
    ResidualAdd {
        /// Scale of the branch `y`.
        scale: f32,
        /// ReLU after the sum.
        relu: bool,
    },
    /// Local response normalisation across channels.
    Lrn {
        /// Channels in the window.
        size: usize,
        /// Scale.
        alpha: f32,
        /// Exponent.
        beta: f32,
        /// Offset.
        k: f32,
    },
    /// Fully connected layer on the flattened input.
    Linear {
        /// Output features.
        out_features: usize,
        /// Whether the layer has a bias.
        bias: bool,
    },
    /// Softmax over channels.
    Softmax,
    /// `min(max(x, min), max)`.
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `x` if `x >= 0`, else `alpha * x`.
    LeakyRelu {
        /// Slope below zero.
        alpha: f32,
    },
}

/// A window: `[kh, kw]`, `[stride_h, stride_w]`, padding `[top, left, bottom, right]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowDesc {
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[stride_h, stride_w]`.
    pub stride: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pad: [usize; 4],
}

impl From<ConvGeometry> for WindowDesc {
    fn from(g: ConvGeometry) -> Self {
        let p = g.pad;
        WindowDesc { kernel: [g.kh, g.kw], stride: [g.stride_h, g.stride_w], pad: [p.top, p.left, p.bottom, p.right] }
    }
}

impl From<WindowDesc> for ConvGeometry {
    fn from(w: WindowDesc) -> Self {
        let [top, left, bottom, right] = w.pad;
        ConvGeometry {
            kh: w.kernel[0],
            kw: w.kernel[1],
            stride_h: w.stride[0],
            stride_w: w.stride[1],
            pad: Padding { top, left, bottom, right },
        }
    }
}

impl GraphDesc {
    /// Describes `graph`.
    pub fn new(graph: &Graph) -> GraphDesc {
        // Value numbering of the description: 0 the input, k the output of node k-1.
        let mut index = vec![usize::MAX; graph.values.len()];
        index[graph.input.0] = 0;
        for (i, n) in graph.nodes.iter().enumerate() {
            index[n.output.0] = i + 1;
        }
        let nodes = graph
            .nodes
            .iter()
            .map(|n| {
                let out = graph.dims(n.output);
                let op = match &n.op {
                    Op::Conv { bias, geom, .. } => {
                        OpDesc::Conv { out_channels: out.c, window: (*geom).into(), bias: bias.is_some() }
                    }
                    Op::BatchNorm { eps, .. } => OpDesc::BatchNorm { eps: *eps },
                    Op::Relu => OpDesc::Relu,
                    Op::MaxPool(g) => OpDesc::MaxPool { window: g.window.into(), ceil_mode: g.ceil_mode },
                    Op::AvgPool { geom, count_include_pad, pad_with_bias } => OpDesc::AvgPool {
                        window: geom.window.into(),
                        ceil_mode: geom.ceil_mode,
                        count_include_pad: *count_include_pad,
                        pad_with_bias: *pad_with_bias,
                    },
                    Op::GlobalAvgPool => OpDesc::GlobalAvgPool,
                    Op::Concat => OpDesc::Concat,
                    Op::ResidualAdd { scale, act } => {
                        OpDesc::ResidualAdd { scale: *scale, relu: *act == Activation::Relu }
                    }
                    Op::Lrn { size, alpha, beta, k } => OpDesc::Lrn { size: *size, alpha: *alpha, beta: *beta, k: *k },
                    Op::Linear { bias, .. } => OpDesc::Linear { out_features: out.c, bias: bias.is_some() },
                    Op::Softmax => OpDesc::Softmax,
                    &Op::Pointwise(Pointwise::Clip { min, max }) => OpDesc::Clip { min, max },
                    Op::Pointwise(Pointwise::Sigmoid) => OpDesc::Sigmoid,
                    &Op::Pointwise(Pointwise::LeakyRelu { alpha }) => OpDesc::LeakyRelu { alpha },
                };
                NodeDesc { name: n.name.clone(), op, inputs: n.inputs.iter().map(|v| index[v.0]).collect() }
            })
            .collect();
        let d = graph.dims(graph.input);
        GraphDesc {
            name: graph.name.clone(),
            input: [d.c, d.h, d.w],
            nodes,
            output: index[graph.output.0],
            ignored_prefixes: graph.ignored_prefixes.clone(),
            input_layout: graph.input_layout,
        }
    }

    /// Rebuilds the graph through the validating builder.
    pub fn to_graph(&self) -> Result<Graph> {
        let [c, h, w] = self.input;
        let mut b = GraphBuilder::new(&self.name, Dims::new(c, h, w));
        let mut values: Vec<ValueId> = vec![b.input()];
        for (i, n) in self.nodes.iter().enumerate() {
            let bad = |msg: String| Error::ModelFile(format!("node {i} ('{}'): {msg}", n.name));
            let inputs: Vec<ValueId> = n
                .inputs
                .iter()
                .map(|&v| values.get(v).copied().ok_or_else(|| bad(format!("input {v} is not an earlier value"))))
                .collect::<Result<_>>()?;
            let arity = match n.op {
                OpDesc::Concat => 1..=usize::MAX,
                OpDesc::ResidualAdd { .. } => 2..=2,
                _ => 1..=1,
            };
            if !arity.contains(&inputs.len()) {
                return Err(bad(format!("{} inputs, the operator takes {arity:?}", inputs.len())));
            }
            let x = inputs[0];
            let window = |w: &WindowDesc| -> Result<ConvGeometry> {
                // Sizes beyond any real network: keeps shape arithmetic far from overflow.
                let all = w.kernel.iter().chain(&w.stride).chain(&w.pad);
                if all.into_iter().any(|&v| v > 1 << 16) {
                    return Err(bad(format!("window {w:?} is out of range")));
                }
                Ok((*w).into())
            };
            let y = match &n.op {
                &OpDesc::Conv { out_channels, window: ref w, bias } => {
                    let spec = ConvSpec { out_channels, geom: window(w)?, bias };
                    b.conv(x, &n.name, spec)
                }
                &OpDesc::BatchNorm { eps } => b.batch_norm(x, &n.name, eps),
                OpDesc::Relu => b.relu(x),
                &OpDesc::MaxPool { window: ref w, ceil_mode } => {
                    b.max_pool(x, PoolGeometry { window: window(w)?, ceil_mode })
                }
                &OpDesc::AvgPool { window: ref w, ceil_mode, count_include_pad, pad_with_bias } => {
                    let geom = PoolGeometry { window: window(w)?, ceil_mode };
                    match (pad_with_bias, count_include_pad) {
                        (false, _) => b.avg_pool(x, geom, count_include_pad),
                        (true, true) => b.avg_pool_padded_with_bias(x, geom),
                        (true, false) => return Err(bad("pad_with_bias needs count_include_pad".into())),
                    }
                }
                OpDesc::GlobalAvgPool => b.global_avg_pool(x),
                OpDesc::Concat => b.concat(&inputs),
                &OpDesc::ResidualAdd { scale, relu } => {
                    b.residual_add(x, inputs[1], scale, if relu { Activation::Relu } else { Activation::None })
                }
                &OpDesc::Lrn { size, alpha, beta, k } => b.lrn(x, size, alpha, beta, k),
                &OpDesc::Linear { out_features, bias } => b.linear(x, &n.name, out_features, bias),
                OpDesc::Softmax => b.softmax(x),
                &OpDesc::Clip { min, max } => b.pointwise(x, Pointwise::Clip { min, max }),
                OpDesc::Sigmoid => b.pointwise(x, Pointwise::Sigmoid),
                &OpDesc::LeakyRelu { alpha } => b.pointwise(x, Pointwise::LeakyRelu { alpha }),
            };
            values.push(y);
        }
        for p in &self.ignored_prefixes {
            b.ignore_params(p);
        }
        b.set_input_layout(self.input_layout);
        let output = *values
            .get(self.output)
            .ok_or_else(|| Error::ModelFile(format!("output value {} does not exist", self.output)))?;
        b.finish(output).map_err(|e| Error::ModelFile(format!("the file's graph is invalid: {e}")))
    }
}
