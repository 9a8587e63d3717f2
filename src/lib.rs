//! incept: a CPU inference engine for the Inception family of convolutional networks.
#![deny(missing_docs)]

pub mod error;
pub mod graph;
pub mod models;
pub mod weights;

pub use error::{Error, Result};
