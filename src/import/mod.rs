//! Importing networks from other frameworks' files into a [`Graph`](crate::graph::Graph)
//! and [`Weights`](crate::weights::Weights).
//!
//! - [`onnx`]: ONNX models (`.onnx`), the operators of the Inception family.
//! - [`safetensors`]: PyTorch state dicts (`.safetensors`), weights for a built-in graph.

pub mod onnx;
pub mod safetensors;

pub use onnx::load_onnx;
pub use safetensors::load_safetensors;
