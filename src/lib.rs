//! incept: a CPU inference engine for the Inception family of convolutional networks.
//!
//! ```
//! use incept::{Model, SessionOptions};
//! let model = Model::builtin("nin_cifar10")?;
//! let mut session = model.session(SessionOptions::default())?;
//! let mut logits = vec![0.0; session.output_len()];
//! session.run(&vec![0.0; session.input_len()], &mut logits)?;
//! # Ok::<(), incept::Error>(())
//! ```
#![deny(missing_docs)]

pub mod capi;
pub mod error;
pub mod exec;
pub mod format;
pub mod graph;
pub mod import;
pub mod labels;
pub mod lower;
mod model;
pub mod models;
pub mod plan;
pub mod preprocess;
pub mod weights;

pub use error::{Error, Result};
pub use exec::{Session, SessionOptions};
pub use model::{Model, SYNTHETIC_SEED};
