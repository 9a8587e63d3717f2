//! Weight values, by parameter name, and deterministic synthetic weights.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::graph::{Graph, ParamKind};

/// A named collection of `f32` tensors (a state dict).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Weights {
    tensors: HashMap<String, Tensor>,
}

/// A dense `f32` tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

impl Weights {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a tensor.
    pub fn insert(&mut self, name: impl Into<String>, tensor: Tensor) {
        self.tensors.insert(name.into(), tensor);
    }

    /// The tensor with this name.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Checks that every parameter of `graph` is present with the right shape and
    /// finite values. Extra tensors are allowed (auxiliary heads, counters).
    pub fn check(&self, graph: &Graph) -> Result<()> {
        for p in &graph.params {
            let t = self
                .get(&p.name)
                .ok_or_else(|| Error::Weights(format!("missing tensor '{}' (shape {:?})", p.name, p.shape)))?;
            if t.shape != p.shape || t.data.len() != p.len() {
                return Err(Error::Weights(format!(
                    "tensor '{}' has shape {:?}, the graph needs {:?}",
                    p.name, t.shape, p.shape
                )));
            }
            if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
                return Err(Error::Weights(format!("tensor '{}' holds a non-finite value at index {i}", p.name)));
            }
            if p.kind == ParamKind::BnVar && t.data.iter().any(|&v| v < 0.0) {
                return Err(Error::Weights(format!("tensor '{}' holds a negative variance", p.name)));
            }
        }
        Ok(())
    }

    /// Deterministic synthetic weights for every parameter of `graph`.
    ///
    /// Each tensor is drawn from its own stream, seeded by `seed` and its name, so
    /// values do not depend on declaration order. Convolution and linear weights use
    /// He-uniform scaling (variance `2 / fan_in`), which keeps activations at a
    /// steady scale through deep ReLU stacks; BatchNorm statistics are far from the
    /// identity so that any mistake in folding them shows in the output.
    pub fn synthetic(graph: &Graph, seed: u64) -> Weights {
        let mut w = Weights::new();
        for p in &graph.params {
            let mut rng = SplitMix64::new(seed ^ fnv1a(p.name.as_bytes()));
            let (lo, hi) = match p.kind {
                ParamKind::Weight => {
                    let fan_in: usize = p.shape[1..].iter().product();
                    let a = (6.0 / fan_in as f32).sqrt();
                    (-a, a)
                }
                ParamKind::Bias => (-0.1, 0.1),
                ParamKind::BnGamma => (0.6, 1.4),
                ParamKind::BnBeta => (-0.2, 0.2),
                ParamKind::BnMean => (-0.2, 0.2),
                ParamKind::BnVar => (0.5, 1.5),
            };
            let data = (0..p.len()).map(|_| lo + (hi - lo) * rng.next_f32()).collect();
            w.insert(p.name.clone(), Tensor { shape: p.shape.clone(), data });
        }
        w
    }
}

/// 64-bit FNV-1a, to turn a parameter name into a seed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever, so the
/// synthetic weights never change between versions.
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}
