//! Tensor recipes: how each tensor a step reads is computed from the graph's
//! parameters (which parameter, which folds), decided before any weight is read.

use incept_kernels::pack::ConvShape;
use incept_kernels::winograd::Scheme;

use crate::graph::{Graph, ParamId};
use crate::weights::Weights;

/// Index of a tensor in [`Program::recipes`](super::Program::recipes) and
/// [`Program::tensors`](super::Program::tensors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorId(pub usize);

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
    /// The weights of a convolution of the network's image, stored packed for the
    /// image kernel: the whole window folded into the input channels (see
    /// `incept_kernels::pack::pack_conv_weights_image`).
    ConvWeightImage {
        /// The OIHW parameter.
        param: ParamId,
        /// Its shape.
        shape: ConvShape,
    },
    /// Convolution weights rounded to BF16 (round to nearest even), stored packed
    /// for the BF16 direct kernel (see `incept_kernels::bf16::pack`).
    ConvWeightBf16 {
        /// The OIHW parameter.
        param: ParamId,
        /// Its shape.
        shape: ConvShape,
    },
    /// Convolution weights split into two BF16 terms each (`w_hi`, `w_lo`), stored
    /// packed for the BF16 direct kernel as `[w_hi | w_hi | w_lo]` along the input
    /// channels (see `incept_kernels::bf16::terms`).
    ConvWeightBf16x3 {
        /// The OIHW parameter.
        param: ParamId,
        /// Its shape.
        shape: ConvShape,
    },
    /// The weights of a convolution of the network's image rounded to BF16 (round
    /// to nearest even), stored packed for the BF16 image kernel, taps `kx` and
    /// `kx + 1` of a window row paired (see
    /// `incept_kernels::bf16::pack::pack_conv_weights_bf16_image`).
    ConvWeightBf16Image {
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

impl TensorRole {
    /// A convolution's weight shape, for the roles of convolution weights.
    pub fn conv_shape(&self) -> Option<ConvShape> {
        match *self {
            TensorRole::ConvWeight { shape, .. }
            | TensorRole::ConvWeightImage { shape, .. }
            | TensorRole::ConvWeightBf16 { shape, .. }
            | TensorRole::ConvWeightBf16x3 { shape, .. }
            | TensorRole::ConvWeightBf16Image { shape, .. }
            | TensorRole::WinogradWeight { shape, .. } => Some(shape),
            _ => None,
        }
    }
}

impl TensorRecipe {
    /// The tensor's shape before packing.
    pub fn shape(&self, graph: &Graph) -> Vec<usize> {
        match self.role {
            TensorRole::ConvWeight { shape, .. }
            | TensorRole::ConvWeightImage { shape, .. }
            | TensorRole::ConvWeightBf16 { shape, .. }
            | TensorRole::ConvWeightBf16x3 { shape, .. }
            | TensorRole::ConvWeightBf16Image { shape, .. }
            | TensorRole::WinogradWeight { shape, .. } => vec![shape.co, shape.ci, shape.kh, shape.kw],
            TensorRole::ConvBias { co, .. } => vec![co],
            TensorRole::LinearBias { len, .. } => vec![len],
            TensorRole::LinearWeight(p) | TensorRole::Param(p) => graph.params[p.0].shape.clone(),
        }
    }

    /// Computes the tensor in its plain layout from `weights` (already checked
    /// against `graph`).
    pub fn compute_plain(&self, graph: &Graph, weights: &Weights) -> Vec<f32> {
        let get = |p: ParamId| weights.get(&graph.params[p.0].name).expect("weights checked against the graph");
        let (mut w, is_bias) = match self.role {
            TensorRole::ConvWeight { param, .. }
            | TensorRole::ConvWeightImage { param, .. }
            | TensorRole::ConvWeightBf16 { param, .. }
            | TensorRole::ConvWeightBf16x3 { param, .. }
            | TensorRole::ConvWeightBf16Image { param, .. }
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
}
