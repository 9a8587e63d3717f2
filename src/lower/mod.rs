//! Lowering: graph -> program. Folds BatchNorm into the preceding convolution or
//! linear layer, fuses ReLU and Inception-ResNet's scaled shortcut into the
//! producer's store, decides the [`Algorithm`] of every convolution, and computes
//! the weights the steps need.
//!
//! Fusion decides only the structure: which steps run and how each of their
//! tensors is made from the graph's parameters ([`TensorRecipe`]). Computing the
//! tensors is a second pass, so a model file that already holds them is checked
//! against the structure and mapped, never recomputed.

mod algorithm;
mod fuse;
mod packing;
mod recipe;
mod step;
mod store;

pub use algorithm::{Algorithm, winograd_for};
pub use packing::Packing;
pub use recipe::{Fold, TensorId, TensorRecipe, TensorRole};
pub use step::{Kernel, Step};
pub use store::{SharedBytes, Source, TensorStore};

use crate::error::Result;
use crate::graph::Graph;
use crate::weights::Weights;

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
        let (steps, recipes) = fuse::fuse(graph);
        let tensors = recipes.iter().map(|r| r.pack(&r.compute_plain(graph, weights), r.native_packing())).collect();
        Ok(Program { graph: graph.clone(), steps, recipes, tensors: TensorStore::owned(tensors) })
    }

    /// The steps and tensor recipes of `graph`, with no weights: what a model file
    /// of this graph must contain.
    pub fn structure(graph: &Graph) -> (Vec<Step>, Vec<TensorRecipe>) {
        fuse::fuse(graph)
    }

    /// Tensor `id`, in the kernels' layout.
    pub fn tensor(&self, id: TensorId) -> &[f32] {
        self.tensors.get(id.0)
    }
}
