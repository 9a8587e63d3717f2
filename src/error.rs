//! The engine's error type.

use thiserror::Error;

/// Everything that can go wrong building, loading, planning or running a model.
#[derive(Debug, Error)]
pub enum Error {
    /// A graph is malformed: shapes that do not fit, unknown values, bad parameters.
    #[error("invalid graph: {0}")]
    Graph(String),
    /// A weight is missing or has the wrong shape.
    #[error("weights: {0}")]
    Weights(String),
    /// No built-in model has this name.
    #[error("unknown model '{name}' (built-in models: {known})")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The built-in names, comma separated.
        known: String,
    },
    /// A buffer passed to a session has the wrong length.
    #[error("{what} has {got} values, expected {expected}")]
    BufferSize {
        /// Which buffer.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The length the plan needs.
        expected: usize,
    },
    /// A model file cannot be read or imported: unreadable or corrupt bytes, an
    /// unsupported operator or attribute (the message names the node).
    #[error("cannot import model: {0}")]
    Import(String),
    /// A model file is unreadable, truncated, corrupt, or does not match its graph.
    #[error("model file: {0}")]
    ModelFile(String),
    /// Invalid session options.
    #[error("invalid option: {0}")]
    Options(String),
}

/// `Result` with the engine's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;
