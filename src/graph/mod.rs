//! The graph IR: values with static shapes, operator nodes, named parameters.
//!
//! A [`Graph`] is built with a [`GraphBuilder`], which checks every node as it is
//! added (shapes, channels, window sizes) so an invalid graph cannot be built.
//! Graphs hold no weight values: parameters are declared by name and shape, and a
//! [`Weights`](crate::weights::Weights) store supplies them.

mod builder;

pub use builder::{ConvSpec, GraphBuilder};
pub use incept_kernels::{Activation, ConvGeometry, Dims, Padding, PoolGeometry};

/// Index of a value in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub usize);

/// Index of a parameter in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(pub usize);

/// A tensor flowing between nodes: one image of `dims` per batch item.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// A readable name (the producing node's).
    pub name: String,
    /// Per-image shape.
    pub dims: Dims,
    /// The value is a feature vector (`[N, C]` to the user) rather than a map.
    pub flat: bool,
}

/// What a parameter is; decides how synthetic weights are drawn and whether it
/// counts as a trainable parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamKind {
    /// Convolution or linear weight.
    Weight,
    /// Convolution or linear bias.
    Bias,
    /// BatchNorm scale.
    BnGamma,
    /// BatchNorm shift.
    BnBeta,
    /// BatchNorm running mean (a buffer, not a trainable parameter).
    BnMean,
    /// BatchNorm running variance (a buffer, not a trainable parameter).
    BnVar,
}

/// A named, shaped parameter. Names follow the reference implementation's
/// state-dict keys so checkpoints map onto them.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// State-dict key, e.g. `Mixed_6b.branch7x7_2.conv.weight`.
    pub name: String,
    /// Shape, e.g. `[192, 128, 7, 1]`.
    pub shape: Vec<usize>,
    /// What the parameter is.
    pub kind: ParamKind,
}

impl Param {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True for a zero-sized parameter.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the parameter is trainable (counted in parameter totals).
    pub fn is_trainable(&self) -> bool {
        !matches!(self.kind, ParamKind::BnMean | ParamKind::BnVar)
    }
}

/// An operator and its attributes.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Convolution; weight `[out, in, kh, kw]`, optional bias `[out]`.
    Conv {
        /// Weight parameter.
        weight: ParamId,
        /// Optional bias parameter.
        bias: Option<ParamId>,
        /// Window, stride, padding.
        geom: ConvGeometry,
    },
    /// Inference BatchNorm with its own epsilon (0.001 in TF-derived models).
    BatchNorm {
        /// Scale.
        gamma: ParamId,
        /// Shift.
        beta: ParamId,
        /// Running mean.
        mean: ParamId,
        /// Running variance.
        var: ParamId,
        /// Added to the variance.
        eps: f32,
    },
    /// `max(x, 0)`.
    Relu,
    /// Max pooling.
    MaxPool(PoolGeometry),
    /// Average pooling.
    AvgPool {
        /// Window and rounding.
        geom: PoolGeometry,
        /// Divide by the padded window (torchvision) or by the real pixels (TF, timm).
        count_include_pad: bool,
        /// With `count_include_pad`: the padding takes, per channel, the value the
        /// input's producer gives an all-zero input instead of zero. The producer is a
        /// convolution and the BatchNorms after it ([`Graph::projection_of`]), so the
        /// value is its bias through the BatchNorms. Set by lowering's reorder, which
        /// moves such a pool after its 1x1 projection.
        pad_with_bias: bool,
    },
    /// Mean over the spatial dimensions.
    GlobalAvgPool,
    /// Concatenation along channels, in input order.
    Concat,
    /// `act(x + scale * y)` for inputs `[x, y]` (Inception-ResNet shortcuts).
    ResidualAdd {
        /// Scale applied to the residual branch `y`.
        scale: f32,
        /// Activation after the sum.
        act: Activation,
    },
    /// Local response normalisation across channels.
    Lrn {
        /// Channels in the window.
        size: usize,
        /// Scale (divided by `size`, as in Caffe and PyTorch).
        alpha: f32,
        /// Exponent.
        beta: f32,
        /// Offset.
        k: f32,
    },
    /// Fully connected layer on the flattened input; weight `[out, in]`.
    Linear {
        /// Weight parameter.
        weight: ParamId,
        /// Optional bias parameter.
        bias: Option<ParamId>,
    },
    /// Softmax over channels.
    Softmax,
    /// An elementwise activation without parameter tensors.
    Pointwise(Pointwise),
}

/// The elementwise activations with no parameter tensors (imported ONNX `Clip`,
/// `Sigmoid`, `LeakyRelu`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pointwise {
    /// `min(max(x, min), max)`; ReLU6 is `Clip { min: 0, max: 6 }`.
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

impl Pointwise {
    /// Applies the function to one value.
    #[inline]
    pub fn apply(self, v: f32) -> f32 {
        match self {
            Pointwise::Clip { min, max } => v.max(min).min(max),
            Pointwise::Sigmoid => 1.0 / (1.0 + (-v).exp()),
            Pointwise::LeakyRelu { alpha } => {
                if v >= 0.0 {
                    v
                } else {
                    alpha * v
                }
            }
        }
    }
}

impl Op {
    /// A short lower-case name for reports.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Op::Conv { .. } => "conv",
            Op::BatchNorm { .. } => "batch_norm",
            Op::Relu => "relu",
            Op::MaxPool(_) => "max_pool",
            Op::AvgPool { .. } => "avg_pool",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::Concat => "concat",
            Op::ResidualAdd { .. } => "residual_add",
            Op::Lrn { .. } => "lrn",
            Op::Linear { .. } => "linear",
            Op::Softmax => "softmax",
            Op::Pointwise(Pointwise::Clip { .. }) => "clip",
            Op::Pointwise(Pointwise::Sigmoid) => "sigmoid",
            Op::Pointwise(Pointwise::LeakyRelu { .. }) => "leaky_relu",
        }
    }
}

/// One operator applied to its inputs, producing one value.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// A readable name (the module path, e.g. `Mixed_6b.branch7x7_2`).
    pub name: String,
    /// The operator.
    pub op: Op,
    /// Input values, in the operator's order.
    pub inputs: Vec<ValueId>,
    /// The value it produces.
    pub output: ValueId,
}

/// One convolution problem: input shape, output channels, window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvLayer {
    /// Input image shape.
    pub input: Dims,
    /// Output channels.
    pub out_channels: usize,
    /// Window, stride, padding.
    pub geom: ConvGeometry,
    /// How many layers of the graph have exactly this problem.
    pub count: usize,
}

impl ConvLayer {
    /// Output image shape.
    pub fn output(&self) -> Dims {
        let (h, w) = self.geom.output_hw(self.input.h, self.input.w).expect("validated by the builder");
        Dims::new(self.out_channels, h, w)
    }

    /// Multiply-adds per image.
    pub fn macs(&self) -> u64 {
        (self.output().volume() * self.input.c * self.geom.kh * self.geom.kw) as u64
    }

    /// `"3x3/2"`-style window description.
    pub fn window(&self) -> String {
        format!("{}x{}/{}", self.geom.kh, self.geom.kw, self.geom.stride_h)
    }
}

/// A validated network: one input, one output, nodes in a topological order.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    /// The network's name.
    pub name: String,
    /// Every value; `ValueId` indexes this.
    pub values: Vec<Value>,
    /// Every node, each after the producers of its inputs.
    pub nodes: Vec<Node>,
    /// Every parameter; `ParamId` indexes this.
    pub params: Vec<Param>,
    /// The graph input (`[N, C, H, W]`).
    pub input: ValueId,
    /// The graph output.
    pub output: ValueId,
    /// Name prefixes of parameters that belong to the training definition only
    /// (auxiliary classifiers): accepted and ignored when loading checkpoints.
    pub ignored_prefixes: Vec<String>,
    /// The order of the input's values (the network computes in NCHW either way).
    pub input_layout: InputLayout,
}

/// The order of a graph input's values. An NHWC input (a TensorFlow export's) is read
/// directly by the pass that reorders every input into the arena: no extra pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputLayout {
    /// `[N, C, H, W]`.
    #[default]
    Nchw,
    /// `[N, H, W, C]`.
    Nhwc,
}

impl InputLayout {
    /// The input shape of `batch` images of `dims` in this order.
    pub fn shape(self, batch: usize, dims: Dims) -> [usize; 4] {
        match self {
            InputLayout::Nchw => [batch, dims.c, dims.h, dims.w],
            InputLayout::Nhwc => [batch, dims.h, dims.w, dims.c],
        }
    }

    /// `"NCHW"` or `"NHWC"`.
    pub fn name(self) -> &'static str {
        match self {
            InputLayout::Nchw => "NCHW",
            InputLayout::Nhwc => "NHWC",
        }
    }
}

impl Graph {
    /// The shape of a value.
    pub fn dims(&self, v: ValueId) -> Dims {
        self.values[v.0].dims
    }

    /// Trainable parameter count (BatchNorm running statistics excluded), as
    /// PyTorch's `sum(p.numel() for p in model.parameters())` reports it.
    pub fn param_count(&self) -> usize {
        self.params.iter().filter(|p| p.is_trainable()).map(Param::len).sum()
    }

    /// Multiply-adds of one image through the convolutions and linear layers.
    pub fn macs(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| {
                let out = self.dims(n.output);
                match &n.op {
                    Op::Conv { geom, .. } => {
                        let ci = self.dims(n.inputs[0]).c;
                        (out.volume() * ci * geom.kh * geom.kw) as u64
                    }
                    Op::Linear { .. } => (out.c * self.dims(n.inputs[0]).volume()) as u64,
                    _ => 0,
                }
            })
            .sum()
    }

    /// How many nodes of each operator kind, sorted by kind.
    pub fn op_counts(&self) -> Vec<(&'static str, usize)> {
        let mut counts = std::collections::BTreeMap::new();
        for n in &self.nodes {
            *counts.entry(n.op.kind_name()).or_insert(0) += 1;
        }
        counts.into_iter().collect()
    }

    /// The nodes producing `v` as a convolution followed by BatchNorms, each value
    /// between them read only by the next (so the BatchNorms fold into the
    /// convolution): `[conv, batch norms...]`, or `None` if `v` is not made so.
    pub fn projection_of(&self, v: ValueId) -> Option<Vec<usize>> {
        let consumers = self.consumers();
        let producer = |v: ValueId| self.nodes.iter().position(|n| n.output == v);
        let mut chain = vec![producer(v)?];
        loop {
            let node = &self.nodes[chain[0]];
            match node.op {
                Op::Conv { .. } => return Some(chain),
                Op::BatchNorm { .. } => {
                    let x = node.inputs[0];
                    if consumers[x.0].len() != 1 || x == self.output {
                        return None;
                    }
                    chain.insert(0, producer(x)?);
                }
                _ => return None,
            }
        }
    }

    /// The nodes reading each value.
    pub fn consumers(&self) -> Vec<Vec<usize>> {
        let mut c = vec![Vec::new(); self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for v in &n.inputs {
                if !c[v.0].contains(&i) {
                    c[v.0].push(i);
                }
            }
        }
        c
    }

    /// The distinct convolution problems of the graph, in first-use order, with how
    /// often each occurs: what kernel benchmarks run.
    pub fn conv_layers(&self) -> Vec<ConvLayer> {
        let mut layers: Vec<ConvLayer> = Vec::new();
        for n in &self.nodes {
            if let Op::Conv { geom, .. } = &n.op {
                let layer = ConvLayer {
                    input: self.dims(n.inputs[0]),
                    out_channels: self.dims(n.output).c,
                    geom: *geom,
                    count: 1,
                };
                match layers
                    .iter_mut()
                    .find(|l| (l.input, l.out_channels, l.geom) == (layer.input, layer.out_channels, layer.geom))
                {
                    Some(l) => l.count += 1,
                    None => layers.push(layer),
                }
            }
        }
        layers
    }

    /// The parameter with this name.
    pub fn param_by_name(&self, name: &str) -> Option<ParamId> {
        self.params.iter().position(|p| p.name == name).map(ParamId)
    }
}
