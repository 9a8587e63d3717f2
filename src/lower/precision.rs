//! Reduced precision: which convolutions of a program run on BF16 operands.

use std::fmt;
use std::str::FromStr;

use incept_kernels::bf16::Bf16Terms;

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
    /// Near float32: the same convolutions as [`Precision::Bf16`] but the image's,
    /// each operand split into two BF16 terms (`x = hi + lo`) and three BF16
    /// products per multiply-add (`hi hi + lo hi + hi lo`; see
    /// `incept_kernels::bf16::terms`), float32 sums. Three times BF16's work: it
    /// pays where BF16 runs far faster than float32 (AMX).
    Bf16x3,
}

impl Precision {
    /// Lower-case name: `f32`, `bf16`, `bf16x3`.
    pub const fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Bf16x3 => "bf16x3",
        }
    }

    /// Every precision, the default first.
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::Bf16, Precision::Bf16x3];

    /// How the BF16 convolutions of a program at this precision make their
    /// operands; `None` at float32.
    pub const fn bf16_terms(self) -> Option<Bf16Terms> {
        match self {
            Precision::F32 => None,
            Precision::Bf16 => Some(Bf16Terms::Rounded),
            Precision::Bf16x3 => Some(Bf16Terms::Split3),
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

    /// A name of [`Precision::ALL`]; the error lists them.
    fn from_str(s: &str) -> Result<Precision, String> {
        Precision::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Precision::ALL.iter().map(|p| p.name()).collect();
            format!("unknown precision '{s}' ({})", names.join(", "))
        })
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
/// [`Algorithm::Bf16FromImage`] and [`TensorRole::ConvWeightBf16Image`]. At
/// BF16x3 the same ones become [`Algorithm::Bf16x3Direct`] and
/// [`TensorRole::ConvWeightBf16x3`], but the image's stays float32: it has no split
/// kernel, and a near-float32 mode gains nothing by rounding its input. Tensor ids
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
    if precision != Precision::F32 {
        let split = precision == Precision::Bf16x3;
        let total = graph.macs().max(1) as f64;
        for s in &mut steps {
            let output = graph.dims(s.output);
            if let Kernel::Conv { weight, algorithm, .. } = &mut s.kernel
                && let Some(shape) = recipes[weight.0].role.conv_shape()
                && bf16_for(*algorithm, (output.volume() * shape.ci * shape.kh * shape.kw) as f64 / total)
                && pick(&recipes[weight.0])
                && !(split && *algorithm == Algorithm::FromImage)
            {
                let r = &mut recipes[weight.0];
                if let TensorRole::ConvWeight { param, shape }
                | TensorRole::ConvWeightImage { param, shape }
                | TensorRole::WinogradWeight { param, shape, .. } = r.role
                {
                    (r.role, *algorithm) = match *algorithm {
                        Algorithm::FromImage => {
                            (TensorRole::ConvWeightBf16Image { param, shape }, Algorithm::Bf16FromImage)
                        }
                        _ if split => (TensorRole::ConvWeightBf16x3 { param, shape }, Algorithm::Bf16x3Direct),
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

    /// The convolutions' algorithms of built-in model `name` at `precision`.
    fn algorithms(name: &str, precision: Precision) -> Vec<Algorithm> {
        let graph = Program::graph_for(&crate::models::build(name).unwrap());
        let (steps, _) = Program::structure_at(&graph, precision);
        steps.iter().filter_map(Step::algorithm).collect()
    }

    /// The first step's algorithm of built-in model `name` at BF16.
    fn first_at_bf16(name: &str) -> Algorithm {
        algorithms(name, Precision::Bf16)[0]
    }

    /// BF16x3 splits the convolutions BF16 rounds, but the image's.
    #[test]
    fn bf16x3_splits_what_bf16_rounds_but_the_image() {
        for name in ["googlenet", "inception_v3"] {
            let (bf16, x3) = (algorithms(name, Precision::Bf16), algorithms(name, Precision::Bf16x3));
            assert_eq!(bf16.len(), x3.len());
            for (a, b) in bf16.iter().zip(&x3) {
                let want = match a {
                    Algorithm::Bf16Direct => Algorithm::Bf16x3Direct,
                    Algorithm::Bf16FromImage => Algorithm::FromImage,
                    other => *other,
                };
                assert_eq!(*b, want, "{name}");
            }
            assert!(x3.iter().filter(|a| **a == Algorithm::Bf16x3Direct).count() > 10, "{name}");
        }
    }

    #[test]
    fn precisions_parse_by_name() {
        for p in Precision::ALL {
            assert_eq!(p.name().parse::<Precision>(), Ok(p));
        }
        assert!("bf16x2".parse::<Precision>().unwrap_err().contains("f32, bf16, bf16x3"));
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
