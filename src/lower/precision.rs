//! Reduced precision: which convolutions of a program run on BF16 operands.

use std::fmt;
use std::str::FromStr;

use super::algorithm::Algorithm;
use super::recipe::{TensorRecipe, TensorRole};
use super::step::{Kernel, Step};
use crate::graph::Graph;

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

/// Whether a convolution lowered to `algorithm` at float32, `share` of its
/// network's multiply-adds, runs on BF16 operands in a BF16 program: the direct
/// and the Winograd ones on blocked activations (the BF16 direct kernel beats
/// float32 Winograd on this family's Winograd layers: measurements in
/// `docs/bf16.md`), and the one reading the network's image (its own kernel, on a
/// BF16 NCHW copy of the image) when it is at least [`IMAGE_BF16_MIN_SHARE`] of
/// the work.
pub fn bf16_for(algorithm: Algorithm, share: f64) -> bool {
    match algorithm {
        Algorithm::Direct | Algorithm::Winograd(_) => true,
        Algorithm::FromImage => share >= IMAGE_BF16_MIN_SHARE,
        _ => false,
    }
}

/// The least share of its network's multiply-adds for which the convolution of
/// the image runs at BF16. Rounding the image adds an error that every later
/// layer carries, which pays where that layer is a large part of the work and
/// not where it is not: googlenet's 7x7 stem (8% of its multiply-adds) runs 7%
/// faster at BF16 for 8% more error; inception_v3's 3x3 (0.3%) gained nothing
/// measurable for 4% (`docs/bf16.md`, "The first convolution").
pub const IMAGE_BF16_MIN_SHARE: f64 = 0.02;

/// The steps and recipes of a program at `precision`, from its float32 ones: at
/// BF16, the convolutions [`bf16_for`] picks become [`Algorithm::Bf16Direct`] and
/// their weights [`TensorRole::ConvWeightBf16`], or for the image's,
/// [`Algorithm::Bf16FromImage`] and [`TensorRole::ConvWeightBf16Image`]. Tensor ids
/// stay the same.
pub fn with_precision(
    graph: &Graph,
    steps: &[Step],
    recipes: &[TensorRecipe],
    precision: Precision,
) -> (Vec<Step>, Vec<TensorRecipe>) {
    converted(graph, steps, recipes, precision, |_| true)
}

/// [`with_precision`], converting only the convolutions whose float32 weight
/// recipe `pick` accepts.
pub(super) fn converted(
    graph: &Graph,
    steps: &[Step],
    recipes: &[TensorRecipe],
    precision: Precision,
    pick: impl Fn(&TensorRecipe) -> bool,
) -> (Vec<Step>, Vec<TensorRecipe>) {
    let (mut steps, mut recipes) = (steps.to_vec(), recipes.to_vec());
    if precision == Precision::Bf16 {
        let total = graph.macs().max(1) as f64;
        for s in &mut steps {
            let output = graph.dims(s.output);
            if let Kernel::Conv { weight, algorithm, .. } = &mut s.kernel
                && let Some(shape) = recipes[weight.0].role.conv_shape()
                && bf16_for(*algorithm, (output.volume() * shape.ci * shape.kh * shape.kw) as f64 / total)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::Program;

    /// The first step's algorithm of built-in model `name` at BF16.
    fn first_at_bf16(name: &str) -> Algorithm {
        let graph = Program::graph_for(&crate::models::build(name).unwrap());
        let (steps, _) = Program::structure_at(&graph, Precision::Bf16);
        steps.iter().find_map(Step::algorithm).unwrap()
    }

    /// The image's convolution runs at BF16 where it is a large part of the work
    /// (googlenet's 7x7: 8%), and stays float32 where it is not (inception_v3's
    /// 3x3: 0.3%).
    #[test]
    fn the_image_convolution_runs_at_bf16_where_it_is_a_large_share() {
        assert_eq!(first_at_bf16("googlenet"), Algorithm::Bf16FromImage);
        assert_eq!(first_at_bf16("nin_cifar10"), Algorithm::Bf16FromImage);
        assert_eq!(first_at_bf16("inception_v3"), Algorithm::FromImage);
        assert_eq!(first_at_bf16("inception_resnet_v2"), Algorithm::FromImage);
    }
}
