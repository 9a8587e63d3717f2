//! Reduced precision: which convolutions of a program run on BF16 operands.

use std::fmt;
use std::str::FromStr;

use super::algorithm::Algorithm;
use super::recipe::{TensorRecipe, TensorRole};
use super::step::{Kernel, Step};

/// The arithmetic a program's convolutions use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Float32 throughout (the default).
    #[default]
    F32,
    /// The direct convolutions on BF16 operands with float32 sums (see
    /// [`bf16_for`]); every other step, and every stored activation, stays float32.
    Bf16,
}

impl Precision {
    /// Lower-case name: `f32`, `bf16`.
    pub const fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = String;

    /// `f32` or `bf16`.
    fn from_str(s: &str) -> Result<Precision, String> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(format!("unknown precision '{s}' (f32, bf16)")),
        }
    }
}

/// Whether a convolution lowered to `algorithm` at float32 runs on BF16 operands
/// in a BF16 program: the direct and the Winograd ones on blocked activations (the
/// BF16 direct kernel beats float32 Winograd on this family's Winograd layers:
/// measurements in `docs/bf16.md`), and the one reading the network's image (its
/// own kernel, on a BF16 NCHW copy of the image: `docs/bf16.md`, "The first
/// convolution").
pub fn bf16_for(algorithm: Algorithm) -> bool {
    matches!(algorithm, Algorithm::Direct | Algorithm::Winograd(_) | Algorithm::FromImage)
}

/// The steps and recipes of a program at `precision`, from its float32 ones: at
/// BF16, the convolutions [`bf16_for`] picks become [`Algorithm::Bf16Direct`] and
/// their weights [`TensorRole::ConvWeightBf16`], or for the image's,
/// [`Algorithm::Bf16FromImage`] and [`TensorRole::ConvWeightBf16Image`]. Tensor ids
/// stay the same.
pub fn with_precision(
    steps: &[Step],
    recipes: &[TensorRecipe],
    precision: Precision,
) -> (Vec<Step>, Vec<TensorRecipe>) {
    converted(steps, recipes, precision, |_| true)
}

/// [`with_precision`], converting only the convolutions whose float32 weight
/// recipe `pick` accepts.
pub(super) fn converted(
    steps: &[Step],
    recipes: &[TensorRecipe],
    precision: Precision,
    pick: impl Fn(&TensorRecipe) -> bool,
) -> (Vec<Step>, Vec<TensorRecipe>) {
    let (mut steps, mut recipes) = (steps.to_vec(), recipes.to_vec());
    if precision == Precision::Bf16 {
        for s in &mut steps {
            if let Kernel::Conv { weight, algorithm, .. } = &mut s.kernel
                && bf16_for(*algorithm)
                && pick(&recipes[weight.0])
            {
                let r = &mut recipes[weight.0];
                if let TensorRole::ConvWeight { param, shape } | TensorRole::WinogradWeight { param, shape, .. } =
                    r.role
                {
                    (r.role, *algorithm) = match *algorithm {
                        Algorithm::FromImage => {
                            (TensorRole::ConvWeightBf16Image { param, shape }, Algorithm::Bf16FromImage)
                        }
                        _ => (TensorRole::ConvWeightBf16 { param, shape }, Algorithm::Bf16Direct),
                    };
                }
            }
        }
    }
    (steps, recipes)
}
