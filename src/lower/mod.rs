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
mod evaluate;
mod fuse;
mod packing;
mod precision;
mod recipe;
mod reorder;
mod step;
mod store;

pub use algorithm::{Algorithm, winograd_for};
pub use evaluate::Bf16Operands;
pub use packing::Packing;
pub use precision::{IMAGE_BF16_MIN_SHARE, Precision, bf16_for, with_precision};
pub use recipe::{Fold, TensorId, TensorRecipe, TensorRole};
pub use step::{Kernel, Step};
pub use store::{SharedBytes, Source, TensorStore};

use incept_kernels::bf16::bf16;

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
    /// The precision it was lowered for: which convolutions run on BF16 operands.
    pub precision: Precision,
}

impl Program {
    /// Lowers `graph` with `weights` (checked against the graph first) at float32.
    pub fn lower(graph: &Graph, weights: &Weights) -> Result<Program> {
        Program::lower_at(graph, weights, Precision::F32)
    }

    /// Lowers `graph` with `weights` at `precision`.
    pub fn lower_at(graph: &Graph, weights: &Weights, precision: Precision) -> Result<Program> {
        weights.check(graph)?;
        let graph = Program::graph_for(graph);
        let (steps, recipes) = Program::structure_at(&graph, precision);
        let tensors = recipes.iter().map(|r| r.pack(&r.compute_plain(&graph, weights), r.native_packing())).collect();
        Ok(Program { graph, steps, recipes, tensors: TensorStore::owned(tensors), precision })
    }

    /// The steps and tensor recipes of `graph` at float32, with no weights: what a
    /// model file of this graph must contain.
    pub fn structure(graph: &Graph) -> (Vec<Step>, Vec<TensorRecipe>) {
        fuse::fuse(graph)
    }

    /// [`structure`](Program::structure) at `precision`.
    pub fn structure_at(graph: &Graph, precision: Precision) -> (Vec<Step>, Vec<TensorRecipe>) {
        let (steps, recipes) = fuse::fuse(graph);
        with_precision(graph, &steps, &recipes, precision)
    }

    /// The graph a program of `graph` runs: the same function, its operators
    /// reordered where that saves work (average pools after their 1x1 projection,
    /// see `reorder.rs`). Every constructor of a [`Program`] lowers this graph.
    pub fn graph_for(graph: &Graph) -> Graph {
        reorder::pools_after_projections(graph)
    }

    /// This float32 program at `precision` (BF16 or BF16x3) without its graph's
    /// weights: the direct convolutions become BF16, their weights rounded (or
    /// split) from this program's (unpacking the blocked packing is exact; packed
    /// once, onto the heap), every other tensor shared with it. The Winograd layers
    /// stay float32 Winograd: their weights are stored transformed, which cannot be
    /// undone exactly; lowering from the weights ([`lower_at`](Program::lower_at))
    /// makes them BF16 too.
    pub fn to_reduced(&self, precision: Precision) -> Program {
        assert_eq!(self.precision, Precision::F32, "to_reduced: the program is not float32");
        assert_ne!(precision, Precision::F32, "to_reduced: not a reduced precision");
        let exact =
            |r: &TensorRecipe| matches!(r.role, TensorRole::ConvWeight { .. } | TensorRole::ConvWeightImage { .. });
        let (steps, recipes) = precision::converted(&self.graph, &self.steps, &self.recipes, precision, exact);
        let replaced = (self.recipes.iter().zip(&recipes).enumerate())
            .filter(|(_, (old, new))| old.role != new.role)
            .map(|(i, (old, new))| (i, new.repack(self.tensors.get(i), old.native_packing(), new.native_packing())))
            .collect();
        let tensors = self.tensors.with_replaced(replaced);
        Program { graph: self.graph.clone(), steps, recipes, tensors, precision }
    }

    /// Tensor `id`, in the kernels' layout.
    pub fn tensor(&self, id: TensorId) -> &[f32] {
        self.tensors.get(id.0)
    }

    /// BF16 tensor `id` (a [`TensorRole::ConvWeightBf16`],
    /// [`TensorRole::ConvWeightBf16x3`] or [`TensorRole::ConvWeightBf16Image`]), in
    /// the kernels' layout.
    pub fn tensor_bf16(&self, id: TensorId) -> &[bf16] {
        // Stored two values to a float32 slot in memory order, so the bytes are the
        // BF16 values in order; `bf16` is `Pod` and needs less alignment than `f32`.
        bytemuck::cast_slice(self.tensors.get(id.0))
    }
}
