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
//!
//! Features (docs/features.md): `cli` (default) builds the `incept` binary and turns on
//! `image`, which adds image decoding to [`preprocess`]. Without default features the
//! library runs models, imports ONNX and safetensors and reads model files, and needs
//! none of those crates.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod error;
pub mod exec;
pub mod format;
pub mod graph;
pub mod import;
pub mod interpret;
pub mod labels;
pub mod lower;
mod model;
pub mod models;
pub mod plan;
pub mod preprocess;
pub mod weights;

pub use error::{Error, Result};
pub use exec::{ProfileClock, Session, SessionOptions};
pub use lower::Precision;
pub use model::{Model, SYNTHETIC_SEED};
