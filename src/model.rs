//! A model: a validated graph with its weights, lowered once and shared by sessions.

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::exec::{Session, SessionOptions};
use crate::graph::Graph;
use crate::import;
use crate::models;
use crate::plan::Program;
use crate::weights::Weights;

/// Seed of the synthetic weights of built-in models.
pub const SYNTHETIC_SEED: u64 = 0x1ce9_7000;

/// A network ready to be planned into sessions.
pub struct Model {
    program: Arc<Program>,
}

impl Model {
    /// A built-in network (see [`models::BUILTIN`]) with deterministic synthetic weights.
    ///
    /// ```
    /// let model = incept::Model::builtin("nin_cifar10").unwrap();
    /// let mut session = model.session(Default::default()).unwrap();
    /// let input = vec![0.5; session.input_len()];
    /// let mut logits = vec![0.0; session.output_len()];
    /// session.run(&input, &mut logits).unwrap();
    /// assert_eq!(session.output_shape(), [1, 10]);
    /// ```
    pub fn builtin(name: &str) -> Result<Model> {
        let graph = models::build(name)?;
        let weights = Weights::synthetic(&graph, SYNTHETIC_SEED);
        Model::new(&graph, &weights)
    }

    /// A model from a file, by extension: `.onnx` (see [`import::onnx`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("onnx") => {
                let (graph, weights) = import::load_onnx(path)?;
                Model::new(&graph, &weights)
            }
            _ => Err(Error::Import(format!("{}: unsupported model file (supported: .onnx)", path.display()))),
        }
    }

    /// A built-in model by name (see [`models::BUILTIN`]), or else a model file
    /// (see [`open`](Model::open)) when the argument looks like a path.
    pub fn load(name_or_path: &str) -> Result<Model> {
        let builtin = models::BUILTIN.iter().any(|m| m.name == name_or_path);
        let path = Path::new(name_or_path);
        if !builtin && (path.extension().is_some() || name_or_path.contains(std::path::is_separator) || path.exists()) {
            Model::open(path)
        } else {
            Model::builtin(name_or_path)
        }
    }

    /// A model from a graph and weights for every one of its parameters.
    pub fn new(graph: &Graph, weights: &Weights) -> Result<Model> {
        Ok(Model { program: Arc::new(Program::lower(graph, weights)?) })
    }

    /// The graph (before fusion).
    pub fn graph(&self) -> &Graph {
        &self.program.graph
    }

    /// The fused program every session runs.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Plans a session: fixes the batch size, allocates the arena.
    pub fn session(&self, options: SessionOptions) -> Result<Session> {
        Session::new(self.program.clone(), options)
    }
}
