//! Lowering: graph -> program. Folds BatchNorm into the preceding convolution or
//! linear layer, fuses ReLU and Inception-ResNet's scaled shortcut into the
//! producer's store, and computes the weights the steps need.
//!
//! Fusion decides only the structure: which steps run and how each of their
//! tensors is made from the graph's parameters ([`TensorRecipe`]). Computing the
//! tensors is a second pass, so a model file that already holds them is checked
//! against the structure and mapped, never recomputed.

use incept_kernels::pack::{
    ConvShape, pack_bias, pack_conv_weights, pack_winograd_weights, unpack_conv_weights, unpack_winograd_2x2_weights,
    winograd_packed_len,
};
use incept_kernels::winograd::{Scheme, winograd_scheme};
use incept_kernels::{Activation, AlignedVec, BLOCK, ConvGeometry, PoolGeometry};

use super::store::TensorStore;
use crate::error::Result;
use crate::graph::{Graph, Node, Op, ParamId, Pointwise, ValueId};
use crate::weights::Weights;

/// Index of a tensor in [`Program::recipes`] and [`Program::tensors`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorId(pub usize);

/// An operator after fusion.
#[derive(Clone, Debug, PartialEq)]
pub enum Kernel {
    /// `act(conv(x) + bias [+ residual])`, BatchNorm and residual scale folded.
    Conv {
        /// Weights, packed for the blocked kernels (see `incept_kernels::pack`).
        weight: TensorId,
        /// Bias padded to whole blocks, zeros when the layer had none.
        bias: TensorId,
        /// Shape of the weights.
        shape: ConvShape,
        /// Window.
        geom: ConvGeometry,
        /// Fused activation.
        act: Activation,
        /// Whether the second input is a shortcut added before the activation.
        residual: bool,
        /// The Winograd scheme computing it, if any (see [`winograd_for`]); the
        /// weight is then a [`TensorRole::WinogradWeight`].
        winograd: Option<Scheme>,
    },
    /// `act(W x + bias)`.
    Linear {
        /// `[out, in]`.
        weight: TensorId,
        /// `[out]`.
        bias: TensorId,
        /// Fused activation.
        act: Activation,
    },
    /// A BatchNorm with no layer to fold into.
    BatchNorm {
        /// Scale, shift, mean, variance.
        params: [TensorId; 4],
        /// Epsilon.
        eps: f32,
    },
    /// `max(x, 0)`.
    Relu,
    /// Max pooling.
    MaxPool(PoolGeometry),
    /// Average pooling.
    AvgPool(PoolGeometry, bool),
    /// Global average pooling.
    GlobalAvgPool,
    /// Channel concatenation; the planner turns it into aliasing (or copies).
    Concat,
    /// `act(x + scale * y)` when it could not be fused into a convolution.
    ResidualAdd(f32, Activation),
    /// Local response normalisation.
    Lrn {
        /// Window.
        size: usize,
        /// Scale.
        alpha: f32,
        /// Exponent.
        beta: f32,
        /// Offset.
        k: f32,
    },
    /// Softmax over channels.
    Softmax,
    /// An elementwise activation.
    Pointwise(Pointwise),
}

/// A fused operator with its input and output values.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// What to compute.
    pub kernel: Kernel,
    /// Inputs (graph value ids); for a residual convolution, `[x, shortcut]`.
    pub inputs: Vec<ValueId>,
    /// Output value.
    pub output: ValueId,
    /// The graph node names fused into this step, for reports.
    pub name: String,
}

/// How one fused transformation of a parameter folds into it, in order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fold {
    /// A BatchNorm after the layer: rows scaled by `gamma / sqrt(var + eps)`,
    /// the bias shifted to `(bias - mean) * scale + beta`.
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
    /// The residual scale of `act(x + s * conv(y))`: weights and bias times `s`.
    Scale(f32),
}

/// How a program tensor is computed from the graph's parameters. Lowering decides
/// these without reading a weight, so a model file's tensor table can be checked
/// against its graph before any tensor data is touched.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRecipe {
    /// A stable name: the parameter's (`Mixed_6b.branch7x7_2.conv.weight`), or for a
    /// bias the layer had not, `{layer}.bias`.
    pub name: String,
    /// What the tensor holds.
    pub role: TensorRole,
    /// Folds applied, in order.
    pub folds: Vec<Fold>,
}

/// What a program tensor is, which fixes its layout and length.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TensorRole {
    /// Convolution weights, stored packed (see `incept_kernels::pack`).
    ConvWeight {
        /// The OIHW parameter.
        param: ParamId,
        /// Its shape.
        shape: ConvShape,
    },
    /// Convolution weights transformed for a Winograd scheme (`G g G^T`, `G g`),
    /// stored packed per transform position (see `incept_kernels::pack`).
    WinogradWeight {
        /// The OIHW parameter.
        param: ParamId,
        /// Its shape.
        shape: ConvShape,
        /// The scheme.
        scheme: Scheme,
    },
    /// A convolution's bias (zeros if the layer had none), padded to whole blocks.
    ConvBias {
        /// The parameter, if the layer had a bias.
        param: Option<ParamId>,
        /// Output channels.
        co: usize,
    },
    /// Linear weights `[out, in]`, as they are.
    LinearWeight(ParamId),
    /// A linear layer's bias (zeros if it had none).
    LinearBias {
        /// The parameter, if the layer had a bias.
        param: Option<ParamId>,
        /// Output features.
        len: usize,
    },
    /// A parameter as it is (BatchNorm statistics with no layer to fold into).
    Param(ParamId),
}

/// The layouts a program tensor can be stored in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Packing {
    /// Row-major, as the parameter (OIHW for convolution weights).
    Plain,
    /// Convolution weights as `[out/16][in/16][kh][kw][16 in][16 out]`, zero padded.
    ConvBlocked16,
    /// A bias padded with zeros to a multiple of 16.
    Padded16,
    /// 3x3 weights as Winograd F(2x2, 3x3) `G g G^T`,
    /// `[16 positions][out/16][in/16][16 in][16 out]`, zero padded.
    Winograd2x2Blocked16,
    /// 3x3 weights as Winograd F(4x4, 3x3) `G g G^T`,
    /// `[36 positions][out/16][in/16][16 in][16 out]`, zero padded.
    Winograd4x4Blocked16,
    /// 1x3, 3x1, 1x7 or 7x1 weights as Winograd F(2, 3) `G g`, per position `p` of 4
    /// `[out/16][depth(p) * in/16][16 in][16 out]` (see
    /// `incept_kernels::pack::pack_winograd_weights`).
    WinogradF2Blocked16,
}

impl Packing {
    /// The name used in model files.
    pub fn name(self) -> &'static str {
        match self {
            Packing::Plain => "plain",
            Packing::ConvBlocked16 => "oihw_blocked16",
            Packing::Padded16 => "padded16",
            Packing::Winograd2x2Blocked16 => "winograd_f2x2_3x3_blocked16",
            Packing::Winograd4x4Blocked16 => "winograd_f4x4_3x3_blocked16",
            Packing::WinogradF2Blocked16 => "winograd_f2_3_blocked16",
        }
    }

    /// The packing named `name` in a model file.
    pub fn from_name(name: &str) -> Option<Packing> {
        [
            Packing::Plain,
            Packing::ConvBlocked16,
            Packing::Padded16,
            Packing::Winograd2x2Blocked16,
            Packing::Winograd4x4Blocked16,
            Packing::WinogradF2Blocked16,
        ]
        .into_iter()
        .find(|p| p.name() == name)
    }
}

impl TensorRecipe {
    /// The layout the kernels read this tensor in.
    pub fn native_packing(&self) -> Packing {
        match self.role {
            TensorRole::ConvWeight { .. } => Packing::ConvBlocked16,
            TensorRole::WinogradWeight { scheme, .. } => match scheme {
                Scheme::F2x2 => Packing::Winograd2x2Blocked16,
                Scheme::F4x4 => Packing::Winograd4x4Blocked16,
                Scheme::F2 { .. } => Packing::WinogradF2Blocked16,
            },
            TensorRole::ConvBias { .. } => Packing::Padded16,
            _ => Packing::Plain,
        }
    }

    /// The tensor's shape before packing.
    pub fn shape(&self, graph: &Graph) -> Vec<usize> {
        match self.role {
            TensorRole::ConvWeight { shape, .. } | TensorRole::WinogradWeight { shape, .. } => {
                vec![shape.co, shape.ci, shape.kh, shape.kw]
            }
            TensorRole::ConvBias { co, .. } => vec![co],
            TensorRole::LinearBias { len, .. } => vec![len],
            TensorRole::LinearWeight(p) | TensorRole::Param(p) => graph.params[p.0].shape.clone(),
        }
    }

    /// The tensor's shape stored in `packing`, or `None` if it cannot be stored so.
    pub fn packed_shape(&self, graph: &Graph, packing: Packing) -> Option<Vec<usize>> {
        match (self.role, packing) {
            (_, Packing::Plain) => Some(self.shape(graph)),
            // A Winograd layer's weights may also be stored as a direct convolution's
            // (a file written before the layer was lowered to Winograd).
            (
                TensorRole::ConvWeight { shape, .. } | TensorRole::WinogradWeight { shape, .. },
                Packing::ConvBlocked16,
            ) => Some(vec![shape.co_blocks(), shape.ci_blocks(), shape.kh, shape.kw, BLOCK, BLOCK]),
            (TensorRole::WinogradWeight { shape, scheme, .. }, p) if p == self.native_packing() => {
                let v = vec![scheme.total_depth(), shape.co_blocks(), shape.ci_blocks(), BLOCK, BLOCK];
                debug_assert_eq!(v.iter().product::<usize>(), winograd_packed_len(shape, scheme));
                Some(v)
            }
            // A 3x3 layer now lowered to F(4x4, 3x3) in a file written when it was
            // lowered to F(2x2, 3x3): undone at load (see `repack`).
            (TensorRole::WinogradWeight { shape, scheme: Scheme::F4x4, .. }, Packing::Winograd2x2Blocked16) => {
                Some(vec![Scheme::F2x2.total_depth(), shape.co_blocks(), shape.ci_blocks(), BLOCK, BLOCK])
            }
            (TensorRole::ConvBias { co, .. }, Packing::Padded16) => Some(vec![co.div_ceil(BLOCK) * BLOCK]),
            _ => None,
        }
    }

    /// Computes the tensor in its plain layout from `weights` (already checked
    /// against `graph`).
    pub fn compute_plain(&self, graph: &Graph, weights: &Weights) -> Vec<f32> {
        let get = |p: ParamId| weights.get(&graph.params[p.0].name).expect("weights checked against the graph");
        let (mut w, is_bias) = match self.role {
            TensorRole::ConvWeight { param, .. }
            | TensorRole::WinogradWeight { param, .. }
            | TensorRole::LinearWeight(param) => (get(param).data.clone(), false),
            TensorRole::ConvBias { param, co: len } | TensorRole::LinearBias { param, len } => {
                (param.map_or_else(|| vec![0.0; len], |p| get(p).data.clone()), true)
            }
            TensorRole::Param(p) => return get(p).data.clone(),
        };
        for fold in &self.folds {
            match *fold {
                Fold::BatchNorm { gamma, beta, mean, var, eps } => {
                    let (g, b, m, v) = (&get(gamma).data, &get(beta).data, &get(mean).data, &get(var).data);
                    let row = w.len() / g.len();
                    for o in 0..g.len() {
                        let scale = g[o] / (v[o] + eps).sqrt();
                        if is_bias {
                            w[o] = (w[o] - m[o]) * scale + b[o];
                        } else {
                            w[o * row..(o + 1) * row].iter_mut().for_each(|x| *x *= scale);
                        }
                    }
                }
                Fold::Scale(s) => w.iter_mut().for_each(|x| *x *= s),
            }
        }
        w
    }

    /// Converts `plain` (the tensor in its plain layout) to `packing`.
    pub fn pack(&self, plain: &[f32], packing: Packing) -> AlignedVec {
        let mut out = Vec::new();
        match (self.role, packing) {
            (
                TensorRole::ConvWeight { shape, .. } | TensorRole::WinogradWeight { shape, .. },
                Packing::ConvBlocked16,
            ) => pack_conv_weights(plain, shape, &mut out),
            (TensorRole::WinogradWeight { shape, scheme, .. }, p) if p == self.native_packing() => {
                pack_winograd_weights(plain, shape, scheme, &mut out)
            }
            (_, Packing::Padded16) => pack_bias(plain, &mut out),
            _ => return AlignedVec::from_slice(plain),
        }
        AlignedVec::from_slice(&out)
    }
}

impl TensorRecipe {
    /// Converts `data`, the tensor stored in `from` (one of its
    /// [`packed_shape`](Self::packed_shape)s), to `to`. Packings that only pad
    /// (biases) or transform (Winograd) are not undone, but for F(2x2, 3x3)'s
    /// (exactly invertible up to a rounding): a tensor is otherwise only ever stored
    /// in them as its native packing.
    pub fn repack(&self, data: &[f32], from: Packing, to: Packing) -> AlignedVec {
        let plain = match (self.role, from) {
            (
                TensorRole::ConvWeight { shape, .. } | TensorRole::WinogradWeight { shape, .. },
                Packing::ConvBlocked16,
            ) => unpack_conv_weights(data, shape),
            (TensorRole::WinogradWeight { shape, .. }, Packing::Winograd2x2Blocked16) => {
                unpack_winograd_2x2_weights(data, shape)
            }
            (_, Packing::Plain) => data.to_vec(),
            (_, Packing::Padded16) => data.to_vec(),
            _ => panic!("repack: {:?} stored as {} cannot be unpacked", self.role, from.name()),
        };
        self.pack(&plain, to)
    }
}

/// The Winograd scheme lowering computes a convolution of `ci` input and `co`
/// output channels by, if any (see `incept_kernels::winograd`): for a 3x3 stride-1
/// window with an output of at least 4x4, and at least 64 input channels, or 32
/// on maps of 35x35 and smaller or when they widen to 64 or more, F(4x4, 3x3) on
/// maps of 30x30 to 35x35 with 192 or more input channels, F(2x2, 3x3) elsewhere;
/// F(2, 3) for a 1x3, 3x1, 1x7 or 7x1 stride-1 window with at least 128 input
/// channels (whole 16-channel blocks) and 12 or more outputs along it.
///
/// F(4x4, 3x3) against F(2x2, 3x3) (`incept peak --winograd`, AVX-512, one thread,
/// inception_v3's layers): 1.5-1.6x faster on the 35x35 maps (96 channels 0.45 ->
/// 0.29 ms, 64 channels 0.31 -> 0.20 ms) and on the stem's 73x73 one (3.1 -> 2.0
/// ms), slower on the 8x8 ones (0.61 -> 0.82 ms: 4 tiles, and weights 36/16 as
/// large). Accuracy decides where it is used: its transformed terms are ~9x larger
/// against the outputs than F(2x2, 3x3)'s (`W / D` 63 against 7, see
/// `kernels/tests/winograd_tiers.rs`), and an error made early in the network
/// grows on the way to the logits. Mean over 8 random images of the max error
/// against a float64 evaluation, as a fraction of ONNX Runtime's on the same
/// images (googlenet, inception_v3, inception_v4, inception_resnet_v2): F(2x2,
/// 3x3) only 0.83, 0.83, 0.73, 0.80; F(4x4, 3x3) on every 3x3 of 12x12 to 35x35
/// maps 1.07, 1.00, 0.84, 0.85; on maps of 36x36 and larger (googlenet's 56x56
/// layer, the others' 73x73 stem layer) 1.42, 1.16, 1.00, 1.08; on the 35x35 maps
/// of 96+ channels -, 0.94, 0.78, 0.79, but inception_v3 then errs more than ONNX
/// Runtime on 3 of the 8 images and on the export's own (4.36e-6 against 4.11e-6);
/// as chosen here (192+ channels: inception_v4's Reduction-A 192 -> 224,
/// inception_resnet_v2's 256 -> 256, 1.5x and 1.1x faster) 0.83, 0.83, 0.74, 0.76.
///
/// F(2, 3) speed (`incept peak --winograd`, AVX-512, one thread): alone, the 17x17
/// 1x7/7x1 layers run 1.13x (128 input channels) to 1.23x (192) faster, 10
/// multiplies per output pair instead of 14 and a ninth pair for each 17-pixel
/// line, and the 8x8 1x3/3x1 layers 1.43x. Inside a model less: the weights are
/// 10/7 (4/3) the direct ones' and come from memory at every run. Whole models,
/// interleaved A/B against 192+ channels only: 128+ channels on 17x17 maps made
/// inception_v3 1.4% faster on one and on two threads and inception_resnet_v2 1.4%
/// and 1.9%. The 8x8 layers (each weight serves 32 output pairs) made
/// inception_resnet_v2 1.3% slower on one thread while the GEMMs waited on their
/// weights; since they prefetch the next position's while computing (see
/// `incept_kernels::winograd`), the 8x8 layers too: inception_v3 2.7% faster on one
/// thread and 2.6% on two, inception_v4 3.0% on one, inception_resnet_v2 the same on
/// one and 2.3% faster on two (outputs: 0.81, 0.81 and 0.82 of ONNX Runtime's error
/// over 16 images). Accuracy: the short
/// per-position sums keep the outputs as close to float64 (inception_v3 3.04e-6 ->
/// 3.09e-6, inception_v4 3.35e-6 -> 3.19e-6, inception_resnet_v2 0.72e-6 ->
/// 0.77e-6, against ONNX Runtime's 4.11e-6, 4.17e-6 and 1.09e-6).
///
/// F(2x2, 3x3) speed: measured on AVX-512 and AVX2 (`incept peak --winograd`), Winograd wins
/// 1.3-2x on every 3x3 stride-1 layer of the family with 16 or more input channels
/// and loses below that (3 or 8 input channels: the 16-lane blocks of the
/// transformed input are mostly padding) and on 1x1 and 2x2 maps (most of the 2x2
/// output tile is discarded).
///
/// Accuracy sets the channel bounds. The transforms sum products of about 7 times
/// the magnitude the direct sum adds up; on the stems' 32-channel layers (147x147
/// maps, the first features of the image) that error propagates through the whole
/// network. Mean over 8 random images (16 for inception_v3 and inception_v4) of the
/// max error against float64, as a fraction of ONNX Runtime's on the same images:
/// both stem layers by Winograd took inception_v3 to 1.07, inception_v4 to 0.90 and
/// inception_resnet_v2 to 0.84 (direct: 0.80, 0.76, 0.80); the first, Conv2d_2a
/// (32 -> 32), alone to 0.92, 0.81, 0.82 (errs more than ONNX Runtime on 2 images of
/// 8); the second, Conv2d_2b (32 -> 64, 3.4 -> 2.3 ms, 2.4% of inception_v3 on one
/// thread), alone to 0.81 (better than ONNX Runtime on 16 images of 16), 0.81 (13
/// of 16) and 0.80 (8 of 8). So a 32-channel layer on a larger map is computed by
/// Winograd only when it widens to 64+ channels. On the 32- and 48-channel layers
/// inside the modules (Inception-ResNet's 35x35 blocks, GoogLeNet's 3x3 branches)
/// it is the other way round: the short per-position sums round less than the
/// direct 288-term ones, and the outputs move closer (inception_resnet_v2 0.92e-6 -> 0.72e-6, googlenet 3.97e-6 -> 3.66e-6,
/// against ONNX Runtime's 1.09e-6 and 5.20e-6; inception_v3 3.04e-6 and inception_v4
/// 3.35e-6 unchanged). The rule depends on the graph only, never on the CPU, so a
/// model file's tensors are the same wherever it was written.
pub fn winograd_for(geom: &ConvGeometry, ci: usize, co: usize, out_hw: (usize, usize)) -> Option<Scheme> {
    let (oh, ow) = out_hw;
    match winograd_scheme(geom, ci)? {
        Scheme::F2x2 | Scheme::F4x4 => {
            let used = (ci >= 64 || (ci >= 32 && (co >= 64 || oh <= 35 && ow <= 35))) && oh >= 4 && ow >= 4;
            let four = ci >= 192 && (30..=35).contains(&oh) && (30..=35).contains(&ow);
            used.then_some(if four { Scheme::F4x4 } else { Scheme::F2x2 })
        }
        line @ Scheme::F2 { vertical, .. } => (ci >= 128 && (if vertical { oh } else { ow }) >= 8).then_some(line),
    }
}

/// A graph after fusion, with the weights its steps read. Batch-independent and
/// shared by every session of a model.
#[derive(Debug)]
pub struct Program {
    /// The graph it came from (for shapes and names).
    pub graph: Graph,
    /// Steps in execution order.
    pub steps: Vec<Step>,
    /// How each tensor is made from the graph's parameters; `TensorId` indexes this.
    pub recipes: Vec<TensorRecipe>,
    /// The tensors, in the kernels' layout: owned, or borrowed from a mapped file.
    pub tensors: TensorStore,
}

impl Program {
    /// Lowers `graph` with `weights` (checked against the graph first).
    pub fn lower(graph: &Graph, weights: &Weights) -> Result<Program> {
        weights.check(graph)?;
        let (steps, recipes) = fuse(graph);
        let tensors = recipes.iter().map(|r| r.pack(&r.compute_plain(graph, weights), r.native_packing())).collect();
        Ok(Program { graph: graph.clone(), steps, recipes, tensors: TensorStore::owned(tensors) })
    }

    /// The steps and tensor recipes of `graph`, with no weights: what a model file
    /// of this graph must contain.
    pub fn structure(graph: &Graph) -> (Vec<Step>, Vec<TensorRecipe>) {
        fuse(graph)
    }

    /// Tensor `id`, in the kernels' layout.
    pub fn tensor(&self, id: TensorId) -> &[f32] {
        self.tensors.get(id.0)
    }
}

/// Fusion: decides the steps and how each of their tensors is computed.
fn fuse(graph: &Graph) -> (Vec<Step>, Vec<TensorRecipe>) {
    let consumers = graph.consumers();
    // A value can be fused away only if exactly one node reads it and it is not the output.
    let private = |v: ValueId| consumers[v.0].len() == 1 && v != graph.output;
    let mut recipes: Vec<TensorRecipe> = Vec::new();
    let mut steps: Vec<Option<Step>> = Vec::with_capacity(graph.nodes.len());
    // Which entry of `steps` currently produces each value.
    let mut producer: Vec<Option<usize>> = vec![None; graph.values.len()];

    for node in &graph.nodes {
        let x = node.inputs[0];
        // A convolution or linear layer with nothing fused after it yet, read only here.
        let fusable = producer[x.0].filter(|&p| {
            private(x)
                && matches!(
                    steps[p].as_ref().map(|s| &s.kernel),
                    Some(
                        Kernel::Conv { act: Activation::None, residual: false, .. }
                            | Kernel::Linear { act: Activation::None, .. }
                    )
                )
        });
        let fused = match (&node.op, fusable) {
            (&Op::BatchNorm { gamma, beta, mean, var, eps }, Some(p)) => {
                let s = take_for_fusion(&mut steps, p, node);
                let (w, bias) = weight_and_bias(&s.kernel);
                for t in [w, bias] {
                    recipes[t.0].folds.push(Fold::BatchNorm { gamma, beta, mean, var, eps });
                }
                Some(s)
            }
            (Op::Relu, Some(p)) => {
                let mut s = take_for_fusion(&mut steps, p, node);
                if let Kernel::Conv { act, .. } | Kernel::Linear { act, .. } = &mut s.kernel {
                    *act = Activation::Relu;
                }
                Some(s)
            }
            // The shortcut add fuses into the convolution producing its branch.
            (&Op::ResidualAdd { scale, act }, _) => {
                let (shortcut, y) = (node.inputs[0], node.inputs[1]);
                let conv = producer[y.0].filter(|&p| {
                    private(y)
                        && shortcut != y
                        && matches!(
                            steps[p].as_ref().map(|s| &s.kernel),
                            Some(Kernel::Conv { act: Activation::None, residual: false, .. })
                        )
                });
                conv.map(|p| {
                    let mut s = take_for_fusion(&mut steps, p, node);
                    let (w, bias) = weight_and_bias(&s.kernel);
                    for t in [w, bias] {
                        recipes[t.0].folds.push(Fold::Scale(scale));
                    }
                    if let Kernel::Conv { act: a, residual, .. } = &mut s.kernel {
                        *a = act;
                        *residual = true;
                    }
                    s.inputs.push(shortcut);
                    s
                })
            }
            _ => None,
        };
        let step = match fused {
            Some(s) => s,
            None => Step {
                kernel: kernel_for(graph, node, &mut recipes),
                inputs: node.inputs.clone(),
                output: node.output,
                name: node.name.clone(),
            },
        };
        steps.push(Some(step));
        producer[node.output.0] = Some(steps.len() - 1);
    }
    (steps.into_iter().flatten().collect(), recipes)
}

/// Takes the step at `p` out so it can absorb `node`; it moves to `node`'s position,
/// which comes after everything either of them reads.
fn take_for_fusion(steps: &mut [Option<Step>], p: usize, node: &Node) -> Step {
    let mut s = steps[p].take().expect("producer present");
    s.name = format!("{}+{}", s.name, node.name);
    s.output = node.output;
    s
}

fn push(recipes: &mut Vec<TensorRecipe>, name: String, role: TensorRole) -> TensorId {
    recipes.push(TensorRecipe { name, role, folds: Vec::new() });
    TensorId(recipes.len() - 1)
}

/// The unfused kernel for `node`, with recipes for its tensors.
fn kernel_for(graph: &Graph, node: &Node, t: &mut Vec<TensorRecipe>) -> Kernel {
    let out_c = graph.dims(node.output).c;
    let name = |p: ParamId| graph.params[p.0].name.clone();
    let bias_name = |b: Option<ParamId>| b.map_or_else(|| format!("{}.bias", node.name), name);
    match &node.op {
        &Op::Conv { weight, bias, geom } => {
            let shape = ConvShape { co: out_c, ci: graph.dims(node.inputs[0]).c, kh: geom.kh, kw: geom.kw };
            let out = graph.dims(node.output);
            let winograd = winograd_for(&geom, shape.ci, shape.co, (out.h, out.w));
            let role = match winograd {
                Some(scheme) => TensorRole::WinogradWeight { param: weight, shape, scheme },
                None => TensorRole::ConvWeight { param: weight, shape },
            };
            Kernel::Conv {
                weight: push(t, name(weight), role),
                bias: push(t, bias_name(bias), TensorRole::ConvBias { param: bias, co: out_c }),
                shape,
                geom,
                act: Activation::None,
                residual: false,
                winograd,
            }
        }
        &Op::Linear { weight, bias } => Kernel::Linear {
            weight: push(t, name(weight), TensorRole::LinearWeight(weight)),
            bias: push(t, bias_name(bias), TensorRole::LinearBias { param: bias, len: out_c }),
            act: Activation::None,
        },
        &Op::BatchNorm { gamma, beta, mean, var, eps } => {
            Kernel::BatchNorm { params: [gamma, beta, mean, var].map(|p| push(t, name(p), TensorRole::Param(p))), eps }
        }
        Op::Relu => Kernel::Relu,
        Op::MaxPool(g) => Kernel::MaxPool(*g),
        Op::AvgPool { geom, count_include_pad } => Kernel::AvgPool(*geom, *count_include_pad),
        Op::GlobalAvgPool => Kernel::GlobalAvgPool,
        Op::Concat => Kernel::Concat,
        Op::ResidualAdd { scale, act } => Kernel::ResidualAdd(*scale, *act),
        Op::Lrn { size, alpha, beta, k } => Kernel::Lrn { size: *size, alpha: *alpha, beta: *beta, k: *k },
        Op::Softmax => Kernel::Softmax,
        Op::Pointwise(f) => Kernel::Pointwise(*f),
    }
}

fn weight_and_bias(k: &Kernel) -> (TensorId, TensorId) {
    match k {
        Kernel::Conv { weight, bias, .. } | Kernel::Linear { weight, bias, .. } => (*weight, *bias),
        _ => unreachable!("only convolutions and linear layers carry weights"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Winograd layer's weights stored plain or as a direct convolution's repack
    /// to exactly the Winograd packing computed from the plain weights.
    #[test]
    fn winograd_weights_repack_from_every_stored_packing() {
        // A 3x3 in F(2x2, 3x3)'s and F(4x4, 3x3)'s packings, and a 7x1 in F(2, 3)'s.
        let (square, line) = (ConvShape { co: 20, ci: 17, kh: 3, kw: 3 }, ConvShape { co: 20, ci: 32, kh: 7, kw: 1 });
        let cases = [
            (square, Scheme::F2x2, Packing::Winograd2x2Blocked16, "winograd_f2x2_3x3_blocked16"),
            (square, Scheme::F4x4, Packing::Winograd4x4Blocked16, "winograd_f4x4_3x3_blocked16"),
            (line, Scheme::F2 { vertical: true, taps: 7 }, Packing::WinogradF2Blocked16, "winograd_f2_3_blocked16"),
        ];
        for (shape, scheme, packing, name) in cases {
            let n = shape.co * shape.ci * shape.kh * shape.kw;
            let plain: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0).collect();
            let role = TensorRole::WinogradWeight { param: ParamId(0), shape, scheme };
            let r = TensorRecipe { name: "w".into(), role, folds: vec![] };
            assert_eq!(r.native_packing(), packing);
            let native = r.pack(&plain, packing);
            assert_eq!(native.as_slice().len(), winograd_packed_len(shape, scheme));
            let blocked = r.pack(&plain, Packing::ConvBlocked16);
            for (data, from) in [(&plain[..], Packing::Plain), (blocked.as_slice(), Packing::ConvBlocked16)] {
                assert_eq!(r.repack(data, from, packing).as_slice(), native.as_slice(), "{shape:?} from {from:?}");
            }
            assert_eq!(Packing::from_name(name), Some(packing));
        }
    }

    /// The lowering rule: 3x3 stride 1, at least 16 input channels, outputs of 4x4
    /// and more.
    /// A 3x3 layer now lowered to F(4x4, 3x3), stored in F(2x2, 3x3)'s packing (a
    /// file written before), loads: within a rounding of the weights.
    #[test]
    fn f2x2_weights_repack_to_f4x4() {
        let shape = ConvShape { co: 20, ci: 17, kh: 3, kw: 3 };
        let plain: Vec<f32> = (0..20 * 17 * 9).map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0).collect();
        let two = TensorRecipe {
            name: "w".into(),
            role: TensorRole::WinogradWeight { param: ParamId(0), shape, scheme: Scheme::F2x2 },
            folds: vec![],
        };
        let four = TensorRecipe {
            role: TensorRole::WinogradWeight { param: ParamId(0), shape, scheme: Scheme::F4x4 },
            ..two.clone()
        };
        let stored = two.pack(&plain, Packing::Winograd2x2Blocked16);
        let got = four.repack(stored.as_slice(), Packing::Winograd2x2Blocked16, Packing::Winograd4x4Blocked16);
        let want = four.pack(&plain, Packing::Winograd4x4Blocked16);
        let scale = plain.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (g, w) in got.as_slice().iter().zip(want.as_slice()) {
            assert!((g - w).abs() <= 4.0 * f32::EPSILON * scale, "{g} vs {w}");
        }
    }

    #[test]
    fn winograd_is_chosen_by_the_rule() {
        use incept_kernels::Padding;
        let g = |k, s| ConvGeometry::new(k, k, s, Padding::uniform(1));
        let (two, four) = (Some(Scheme::F2x2), Some(Scheme::F4x4));
        assert_eq!(winograd_for(&g(3, 1), 64, 96, (4, 4)), two);
        // The stem: 32 channels on a large map only when widened to 64+.
        assert_eq!(winograd_for(&g(3, 1), 32, 32, (147, 147)), None);
        assert_eq!(winograd_for(&g(3, 1), 32, 64, (147, 147)), two);
        assert_eq!(winograd_for(&g(3, 1), 16, 64, (147, 147)), None);
        assert_eq!(winograd_for(&g(3, 1), 448, 96, (8, 8)), two);
        assert_eq!(winograd_for(&g(3, 1), 8, 96, (56, 56)), None);
        assert_eq!(winograd_for(&g(3, 1), 256, 96, (2, 2)), None);
        assert_eq!(winograd_for(&g(3, 2), 64, 96, (28, 28)), None);
        assert_eq!(winograd_for(&g(1, 1), 64, 96, (28, 28)), None);
        // F(4x4, 3x3): 192+ input channels on 30x30 to 35x35 maps.
        assert_eq!(winograd_for(&g(3, 1), 192, 96, (35, 35)), four);
        assert_eq!(winograd_for(&g(3, 1), 256, 96, (30, 30)), four);
        assert_eq!(winograd_for(&g(3, 1), 96, 96, (35, 35)), two);
        assert_eq!(winograd_for(&g(3, 1), 256, 96, (17, 17)), two);
        assert_eq!(winograd_for(&g(3, 1), 64, 96, (35, 35)), two);
        assert_eq!(winograd_for(&g(3, 1), 96, 96, (28, 28)), two);
        assert_eq!(winograd_for(&g(3, 1), 80, 96, (71, 71)), two);
        assert_eq!(winograd_for(&g(3, 1), 192, 96, (71, 71)), two);
        let line = |kh, kw, pad: Padding| ConvGeometry { kh, kw, stride_h: 1, stride_w: 1, pad };
        let (across_w, across_h) =
            (Padding { top: 0, left: 3, bottom: 0, right: 3 }, Padding { top: 3, left: 0, bottom: 3, right: 0 });
        // 1-D windows: 128+ input channels in whole blocks, no padding across, 8+
        // outputs along.
        let (along_w, along_h) =
            (Some(Scheme::F2 { vertical: false, taps: 7 }), Some(Scheme::F2 { vertical: true, taps: 7 }));
        assert_eq!(winograd_for(&line(1, 7, across_w), 128, 96, (17, 17)), along_w);
        assert_eq!(winograd_for(&line(7, 1, across_h), 224, 96, (17, 17)), along_h);
        assert_eq!(winograd_for(&line(1, 7, across_w), 112, 96, (17, 17)), None);
        let along_w3 = Some(Scheme::F2 { vertical: false, taps: 3 });
        assert_eq!(
            winograd_for(&line(1, 3, Padding { top: 0, left: 1, bottom: 0, right: 1 }), 384, 96, (8, 8)),
            along_w3
        );
        assert_eq!(winograd_for(&line(1, 3, Padding { top: 0, left: 1, bottom: 0, right: 1 }), 384, 96, (8, 7)), None);
        assert_eq!(winograd_for(&line(1, 7, across_w), 200, 96, (17, 17)), None);
        assert_eq!(winograd_for(&line(1, 7, across_h), 192, 96, (17, 17)), None);
        assert_eq!(winograd_for(&line(7, 1, across_h), 192, 96, (7, 17)), None);
        assert_eq!(winograd_for(&line(1, 5, Padding::uniform(0)), 192, 96, (17, 17)), None);
    }
}
