//! Importing networks from other frameworks' files into a [`Graph`](crate::graph::Graph)
//! and [`Weights`](crate::weights::Weights).
//!
//! - [`onnx`]: ONNX models (`.onnx`), the operators of the Inception family.

pub mod onnx;

pub use onnx::load_onnx;
