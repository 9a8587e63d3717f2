//! A model: a validated graph with its weights, lowered once and shared by sessions.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::exec::{Session, SessionOptions};
use crate::format::{self, LoadInfo};
use crate::graph::Graph;
use crate::import;
use crate::lower::{Precision, Program};
use crate::models;
use crate::weights::Weights;

/// Seed of the synthetic weights of built-in models.
pub const SYNTHETIC_SEED: u64 = 0x1ce9_7000;

/// Makes a model's graph and weights again (from its built-in name or its file).
type Source = Arc<dyn Fn() -> Result<(Graph, Weights)> + Send + Sync>;

/// A network ready to be planned into sessions. Cloning is cheap: clones share the
/// program and its weights (and a model file's mapping).
#[derive(Clone)]
pub struct Model {
    program: Arc<Program>,
    /// The BF16 and BF16x3 programs of a float32 model, each made by the first
    /// session at its precision and shared by every later one (and by clones).
    reduced: Arc<Mutex<Vec<Arc<Program>>>>,
    /// Where the weights came from, when they can be read again to lower the model
    /// at another precision.
    source: Option<Source>,
    load_info: Option<LoadInfo>,
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
        let make = |name: &str| -> Result<(Graph, Weights)> {
            let graph = models::build(name)?;
            let weights = Weights::synthetic(&graph, SYNTHETIC_SEED);
            Ok((graph, weights))
        };
        let (graph, weights) = make(name)?;
        let name = name.to_string();
        Model::new(&graph, &weights).map(|m| m.with_source(Arc::new(move || make(&name))))
    }

    /// A model from a file: an incept model file (recognised by its first bytes;
    /// memory-mapped, its weights used in place, see [`format`](mod@crate::format)) or an `.onnx` file
    /// (see [`import::onnx`]). Model files are checked structurally; see
    /// [`open_verified`](Model::open_verified) to check their weights' checksums too.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("incept-doc-open-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("nin.incept");
    /// let graph = incept::models::build("nin_cifar10")?;
    /// let weights = incept::weights::Weights::synthetic(&graph, 1);
    /// incept::format::write(&graph, &weights, &path, Default::default(), &mut |_, _| {})?;
    /// let model = incept::Model::open(&path)?;
    /// assert!(model.load_info().unwrap().mapped_bytes > 0);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Model> {
        Model::open_checked(path.as_ref(), false)
    }

    /// Like [`open`](Model::open), and for model files also checks every tensor's
    /// checksum and that its values are finite (reading all the weights once).
    pub fn open_verified(path: impl AsRef<Path>) -> Result<Model> {
        Model::open_checked(path.as_ref(), true)
    }

    fn open_checked(path: &Path, verify: bool) -> Result<Model> {
        if starts_with_magic(path) {
            let (program, info) = format::open(path, verify)?;
            return Ok(Model { load_info: Some(info), ..Model::of(program) });
        }
        let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("onnx") => {
                let (graph, weights) = import::load_onnx(path)?;
                let path = path.to_path_buf();
                Model::new(&graph, &weights).map(|m| m.with_source(Arc::new(move || import::load_onnx(&path))))
            }
            _ if !path.exists() => Err(Error::Import(format!("{}: no such file", path.display()))),
            _ => Err(Error::Import(format!(
                "{}: unsupported model file (supported: incept model files, .onnx)",
                path.display()
            ))),
        }
    }

    /// A built-in architecture (see [`models::BUILTIN`]) with the weights of a
    /// PyTorch state dict saved as safetensors (see [`import::safetensors`]).
    pub fn from_safetensors(path: impl AsRef<Path>, arch: &str) -> Result<Model> {
        let make = |path: &Path, arch: &str| -> Result<(Graph, Weights)> {
            let graph = models::build(arch)?;
            let weights = import::load_safetensors(path, &graph)?;
            Ok((graph, weights))
        };
        let (graph, weights) = make(path.as_ref(), arch)?;
        let (path, arch) = (path.as_ref().to_path_buf(), arch.to_string());
        Model::new(&graph, &weights).map(|m| m.with_source(Arc::new(move || make(&path, &arch))))
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
        Ok(Model::of(Program::lower(graph, weights)?))
    }

    /// [`new`](Model::new) at `precision`: at BF16 the weights of the BF16
    /// convolutions are rounded from `weights` directly, and float32 sessions
    /// cannot be made.
    pub fn new_at(graph: &Graph, weights: &Weights, precision: Precision) -> Result<Model> {
        Ok(Model::of(Program::lower_at(graph, weights, precision)?))
    }

    fn of(program: Program) -> Model {
        Model { program: Arc::new(program), reduced: Arc::default(), source: None, load_info: None }
    }

    fn with_source(self, source: Source) -> Model {
        Model { source: Some(source), ..self }
    }

    /// The graph before fusion: the source's, with its operators reordered where
    /// that saves work and changes nothing else (see [`Program::graph_for`]).
    pub fn graph(&self) -> &Graph {
        &self.program.graph
    }

    /// The fused program sessions run at the model's own precision.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The model's own precision: float32, or BF16 for a model file converted to
    /// BF16 (see [`format`](mod@crate::format)).
    pub fn precision(&self) -> Precision {
        self.program.precision
    }

    /// The program sessions at `precision` run: the model's own, or for BF16 or
    /// BF16x3 on a float32 model, one made once and shared by every session at that
    /// precision: lowered from the weights read again for a built-in model, an
    /// `.onnx` file or a safetensors checkpoint; for a float32 model file or a model
    /// made by [`new`](Model::new), [`Program::to_reduced`] (its Winograd layers stay
    /// float32: convert the file at that precision or use [`new_at`](Model::new_at)
    /// to have them BF16). A BF16 or BF16x3 model has no float32 weights: asking it
    /// for another precision is an error.
    pub fn program_at(&self, precision: Precision) -> Result<Arc<Program>> {
        match (self.program.precision, precision) {
            (own, p) if own == p => Ok(self.program.clone()),
            (Precision::F32, p) => {
                let mut cached = self.reduced.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(program) = cached.iter().find(|c| c.precision == p) {
                    return Ok(program.clone());
                }
                let program = match &self.source {
                    Some(source) => {
                        let (graph, weights) = source()?;
                        if Program::graph_for(&graph) != self.program.graph {
                            return Err(Error::Import("the model's source changed since it was loaded".into()));
                        }
                        Program::lower_at(&graph, &weights, p)?
                    }
                    None => self.program.to_reduced(p),
                };
                cached.push(Arc::new(program));
                Ok(cached.last().expect("pushed above").clone())
            }
            (own, p) => Err(Error::Options(format!(
                "this model holds {own} weights and runs only at precision {own}, not {p} \
                 (convert the original model again at {p})"
            ))),
        }
    }

    /// How the model file was loaded (mapped bytes, repacked tensors); `None` for
    /// built-in and imported models, whose weights are on the heap.
    pub fn load_info(&self) -> Option<&LoadInfo> {
        self.load_info.as_ref()
    }

    /// Plans a session: fixes the batch size and precision, allocates the arena.
    pub fn session(&self, options: SessionOptions) -> Result<Session> {
        let program = self.program_at(options.precision.unwrap_or(self.precision()))?;
        Session::new(program, options)
    }
}

/// Whether the file at `path` starts with the model-file magic.
fn starts_with_magic(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; format::MAGIC.len()];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && format::is_model_file(&head)
}
