//! Builders for every network of the Inception family.
//!
//! Each builder returns the inference graph (auxiliary heads dropped, their
//! parameter prefixes recorded as ignored) with parameter names following the
//! reference implementation's state-dict keys.

mod blocks;
mod nin;

use crate::error::{Error, Result};
use crate::graph::Graph;

/// A built-in model: its name, what it is, and its builder.
pub struct BuiltinModel {
    /// The name used on the command line and in `Model::builtin`.
    pub name: &'static str,
    /// One line on what it is and which reference it matches.
    pub summary: &'static str,
    /// Builds the inference graph.
    pub build: fn() -> Result<Graph>,
}

/// Every built-in model.
pub const BUILTIN: &[BuiltinModel] = &[BuiltinModel {
    name: "nin_cifar10",
    summary: "Network-in-Network for CIFAR-10 (Lin et al. 2014), 32x32",
    build: nin::nin_cifar10,
}];

/// Builds the built-in model called `name`.
pub fn build(name: &str) -> Result<Graph> {
    match BUILTIN.iter().find(|m| m.name == name) {
        Some(m) => (m.build)(),
        None => Err(Error::UnknownModel { name: name.to_string(), known: names().join(", ") }),
    }
}

/// The names of the built-in models.
pub fn names() -> Vec<&'static str> {
    BUILTIN.iter().map(|m| m.name).collect()
}
