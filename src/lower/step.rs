//! The program IR: the steps lowering leaves, each a fused operator on graph values.

use incept_kernels::pack::ConvShape;
use incept_kernels::{Activation, ConvGeometry, PoolGeometry};

use super::algorithm::Algorithm;
use super::recipe::TensorId;
use crate::graph::{Pointwise, ValueId};

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
        /// How it is computed; for a Winograd scheme the weight is a
        /// [`TensorRole::WinogradWeight`](super::TensorRole::WinogradWeight).
        algorithm: Algorithm,
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
    /// Average pooling (`count_include_pad`), the padding taking the tensor's
    /// values per channel if it has one (a moved pool's: its projection's bias,
    /// padded to whole blocks), then the activation.
    AvgPool(PoolGeometry, bool, Option<TensorId>, Activation),
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

impl Step {
    /// The algorithm computing it, for a convolution.
    pub fn algorithm(&self) -> Option<Algorithm> {
        match self.kernel {
            Kernel::Conv { algorithm, .. } => Some(algorithm),
            _ => None,
        }
    }
}
