//! `incept._incept`: the native half of the `incept` Python package (PyO3 + numpy).
//!
//! Rules every function keeps:
//! - Engine errors become Python exceptions with the engine's message: bad arguments
//!   (unknown model, wrong sizes, bad options) a `ValueError`, anything else
//!   `incept.InceptError`.
//! - The GIL is released around everything slow (loading, planning, decoding, running),
//!   and numpy memory is only touched while it is held: `Session.run` copies the input
//!   into the session's own buffer first, so other Python threads may do anything to
//!   their arrays meanwhile.
//! - A session is used by one thread at a time; a second thread gets a `RuntimeError`
//!   instead of waiting (a silent wait would hide a design error in the caller).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, TryLockError};

use image::{DynamicImage, GrayImage, ImageReader, RgbImage, RgbaImage};
use incept::format::{self, WritePacking};
use incept::plan::Plan;
use incept::preprocess::{OutputKind, PRESETS, Preprocess};
use incept::weights::Weights;
use incept::{Error, Precision, SYNTHETIC_SEED, SessionOptions, import, labels, models};
use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{
    IntoPyArray, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray,
    PyUntypedArrayMethods, dtype,
};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

create_exception!(
    incept,
    InceptError,
    PyException,
    "An engine error: a model file that cannot be read or imported, a malformed graph, weights that do not fit."
);

/// The engine's error as a Python exception (see the module comment).
fn py_err(e: Error) -> PyErr {
    match e {
        Error::UnknownModel { .. } | Error::BufferSize { .. } | Error::Options(_) => {
            PyValueError::new_err(e.to_string())
        }
        Error::Graph(_) | Error::Weights(_) | Error::Import(_) | Error::ModelFile(_) => {
            InceptError::new_err(e.to_string())
        }
    }
}

/// A path argument as UTF-8 (the engine takes names and paths as `&str`).
fn utf8(path: &Path) -> PyResult<&str> {
    path.to_str().ok_or_else(|| PyValueError::new_err(format!("{}: not a UTF-8 path", path.display())))
}

fn shape_text(shape: &[usize]) -> String {
    let items: Vec<String> = shape.iter().map(usize::to_string).collect();
    if items.len() == 1 { format!("({},)", items[0]) } else { format!("({})", items.join(", ")) }
}

/// A network ready to run: a built-in model (synthetic weights), an incept model file
/// (memory-mapped: every session of it, in any thread, shares the mapped weights) or a
/// `.onnx` file. Cheap to share between threads; plan a `Session` per thread.
#[pyclass(frozen, module = "incept")]
struct Model {
    inner: incept::Model,
    /// What it was opened as: a built-in name or the path given.
    source: String,
}

#[pymethods]
impl Model {
    /// Opens a built-in model by name (`incept.builtin_models()`), an incept model file
    /// written by `incept convert` / `incept.convert` (memory-mapped), or a `.onnx` file.
    #[new]
    fn new(py: Python<'_>, name_or_path: PathBuf) -> PyResult<Model> {
        let source = utf8(&name_or_path)?.to_string();
        let inner = py.detach(|| incept::Model::load(&source)).map_err(py_err)?;
        Ok(Model { inner, source })
    }

    /// A built-in architecture with the weights of a PyTorch state dict saved as
    /// safetensors.
    #[staticmethod]
    fn from_safetensors(py: Python<'_>, path: PathBuf, arch: &str) -> PyResult<Model> {
        let source = utf8(&path)?.to_string();
        let inner = py.detach(|| incept::Model::from_safetensors(&path, arch)).map_err(py_err)?;
        Ok(Model { inner, source })
    }

    /// The built-in name or the path the model was opened from.
    #[getter]
    fn source(&self) -> &str {
        &self.source
    }

    /// The input of one image, `(C, H, W)` (NCHW without the batch).
    #[getter]
    fn input_shape(&self) -> (usize, usize, usize) {
        let d = self.inner.graph().dims(self.inner.graph().input);
        (d.c, d.h, d.w)
    }

    /// Parameters, multiply-adds per image, input and output shapes and layout, arena
    /// and weight bytes, for sessions planned for `batch` images.
    #[pyo3(signature = (batch = 1))]
    fn info<'py>(&self, py: Python<'py>, batch: usize) -> PyResult<Bound<'py, PyDict>> {
        let program = self.inner.program();
        let plan = py.detach(|| Plan::new(program, batch, 1)).map_err(py_err)?;
        let g = self.inner.graph();
        let (input, output) = (g.dims(g.input), g.dims(g.output));
        let output_shape =
            if g.values[g.output.0].flat { vec![batch, output.c] } else { vec![batch, output.c, output.h, output.w] };
        let d = PyDict::new(py);
        d.set_item("model", &self.source)?;
        d.set_item("params", g.param_count())?;
        d.set_item("macs", g.macs())?;
        d.set_item("batch", batch)?;
        d.set_item("input_shape", (batch, input.c, input.h, input.w))?;
        d.set_item("input_layout", "NCHW")?;
        d.set_item("input_dtype", "float32")?;
        d.set_item("output_shape", pyo3::types::PyTuple::new(py, output_shape)?)?;
        d.set_item("arena_bytes", plan.arena_bytes())?;
        d.set_item("weight_bytes", program.tensors.bytes())?;
        d.set_item("mapped_weight_bytes", program.tensors.mapped_bytes())?;
        Ok(d)
    }

    /// Plans a session for `batch` images per run on `threads` worker threads (1: the
    /// calling thread) and allocates its arena, at `precision` (`"f32"`, `"bf16"` or
    /// `"bf16x3"`; `None`: the model's own). Sessions share the model's weights (and
    /// its BF16 or BF16x3 weights, packed by its first session at that precision).
    #[pyo3(signature = (threads = 1, batch = 1, precision = None))]
    fn session(&self, py: Python<'_>, threads: usize, batch: usize, precision: Option<&str>) -> PyResult<Session> {
        if batch == 0 {
            return Err(PyValueError::new_err("batch must be at least 1"));
        }
        let precision = precision.map(str::parse::<Precision>).transpose().map_err(PyValueError::new_err)?;
        let options = SessionOptions { batch, threads, precision, ..Default::default() };
        let session = py.detach(|| self.inner.session(options)).map_err(py_err)?;
        Ok(Session::new(session))
    }

    fn __repr__(&self) -> String {
        let (c, h, w) = self.input_shape();
        format!("incept.Model({:?}, input (N, {c}, {h}, {w}))", self.source)
    }
}

/// A model planned for a batch size, with its own arena and its own input and output
/// buffers. One thread at a time: create one per thread.
#[pyclass(frozen, module = "incept")]
struct Session {
    run: Mutex<Run>,
    input_shape: [usize; 4],
    output_shape: Vec<usize>,
    threads: usize,
    tier: &'static str,
    precision: &'static str,
    arena_bytes: usize,
}

/// What a run mutates: the engine's session and the full-batch buffers it reads and
/// writes (a partial batch is padded with zeros; the padding's outputs are dropped).
struct Run {
    session: incept::Session,
    x: Vec<f32>,
    y: Vec<f32>,
}

impl Session {
    fn new(session: incept::Session) -> Session {
        Session {
            input_shape: session.input_shape(),
            output_shape: session.output_shape(),
            threads: session.options().threads,
            tier: session.tier().name(),
            precision: session.precision().name(),
            arena_bytes: session.plan().arena_bytes(),
            run: Mutex::new(Run { x: vec![0.0; session.input_len()], y: vec![0.0; session.output_len()], session }),
        }
    }

    /// `(n, ...)`: `shape` with the batch replaced.
    fn with_batch(shape: &[usize], n: usize) -> Vec<usize> {
        std::iter::once(n).chain(shape[1..].iter().copied()).collect()
    }

    /// What a run of `n` images expects of `name`, for error messages.
    fn expected(&self, shape: &[usize]) -> String {
        let rest: Vec<String> = shape[1..].iter().map(usize::to_string).collect();
        let n = self.input_shape[0];
        let batch = if n == 1 { "1".to_string() } else { format!("n <= {n}") };
        format!("a C-contiguous float32 array of shape ({batch}, {})", rest.join(", "))
    }
}

/// Checks that `array` is a C-contiguous float32 ndarray; returns it typed.
fn float32_array<'py>(array: &Bound<'py, PyAny>, name: &str, expected: &str) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let py = array.py();
    let untyped = array.cast::<PyUntypedArray>().map_err(|_| {
        let type_name = array.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
        PyValueError::new_err(format!("{name}: expected {expected}, got a {type_name}, not a numpy array"))
    })?;
    if !untyped.dtype().is_equiv_to(&dtype::<f32>(py)) {
        return Err(PyValueError::new_err(format!(
            "{name}: expected {expected}, got dtype {} (convert with .astype(numpy.float32))",
            untyped.dtype()
        )));
    }
    if !untyped.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "{name}: expected {expected}, got a non-C-contiguous array (use numpy.ascontiguousarray)"
        )));
    }
    Ok(untyped.cast::<PyArrayDyn<f32>>()?.clone())
}

#[pymethods]
impl Session {
    /// Runs the model on `x`, float32 `(n, C, H, W)` (NCHW, C-contiguous) with
    /// `1 <= n <= batch`. Returns a new `(n, classes)` array (`(n, C, H, W)` for a
    /// spatial output), or writes it into `out` (float32, C-contiguous, that shape) and
    /// returns `out`. The GIL is released while the model runs.
    #[pyo3(signature = (x, out = None))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        out: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let x = float32_array(x, "x", &self.expected(&self.input_shape))?;
        let shape = x.shape().to_vec();
        let n = shape.first().copied().unwrap_or(0);
        if shape.len() != 4 || shape[1..] != self.input_shape[1..] || n == 0 || n > self.input_shape[0] {
            return Err(PyValueError::new_err(format!(
                "x: expected {}, got shape {}",
                self.expected(&self.input_shape),
                shape_text(&shape)
            )));
        }
        let out_shape = Session::with_batch(&self.output_shape, n);
        let out = match out {
            None => None,
            Some(o) => {
                let expected = format!("{} (the output)", self.expected(&out_shape));
                let o = float32_array(o, "out", &expected)?;
                if o.shape() != out_shape.as_slice() {
                    return Err(PyValueError::new_err(format!(
                        "out: expected shape {}, got {}",
                        shape_text(&out_shape),
                        shape_text(o.shape())
                    )));
                }
                Some(o)
            }
        };

        let mut guard = match self.run.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::WouldBlock) => {
                return Err(PyRuntimeError::new_err(
                    "this session is running in another thread: a session runs one call at a time \
                     (create one session per thread: model.session())",
                ));
            }
            Err(TryLockError::Poisoned(_)) => {
                return Err(PyRuntimeError::new_err("this session failed in an earlier run; create a new one"));
            }
        };
        let run: &mut Run = &mut guard;
        let (x_len, y_len) = (x.len(), out_shape.iter().product::<usize>());
        let borrowed = x.try_readonly().map_err(|e| PyValueError::new_err(format!("x: {e}")))?;
        run.x[..x_len].copy_from_slice(borrowed.as_slice()?);
        drop(borrowed);
        run.x[x_len..].fill(0.0);
        py.detach(|| run.session.run(&run.x, &mut run.y)).map_err(py_err)?;
        let y = &run.y[..y_len];
        match out {
            Some(o) => {
                let mut written = o.try_readwrite().map_err(|e| PyValueError::new_err(format!("out: {e}")))?;
                written.as_slice_mut()?.copy_from_slice(y);
                drop(written);
                Ok(o)
            }
            None => {
                let array = ArrayD::from_shape_vec(IxDyn(&out_shape), y.to_vec())
                    .expect("the output length is the product of its shape");
                Ok(array.into_pyarray(py))
            }
        }
    }

    /// `(batch, C, H, W)`: the largest input a run takes.
    #[getter]
    fn input_shape(&self) -> (usize, usize, usize, usize) {
        let [n, c, h, w] = self.input_shape;
        (n, c, h, w)
    }

    /// The output of a full batch: `(batch, classes)` or `(batch, C, H, W)`.
    #[getter]
    fn output_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
        pyo3::types::PyTuple::new(py, &self.output_shape)
    }

    /// Images per run the session was planned for.
    #[getter]
    fn batch(&self) -> usize {
        self.input_shape[0]
    }

    /// Worker threads.
    #[getter]
    fn threads(&self) -> usize {
        self.threads
    }

    /// The ISA tier its kernels run on (`avx512`, `avx2`, `neon`, ...).
    #[getter]
    fn tier(&self) -> &'static str {
        self.tier
    }

    /// The precision of its convolutions: `"f32"`, `"bf16"` or `"bf16x3"`.
    #[getter]
    fn precision(&self) -> &'static str {
        self.precision
    }

    /// Bytes of the session's arena (its own memory beside the shared weights).
    #[getter]
    fn arena_bytes(&self) -> usize {
        self.arena_bytes
    }

    fn __repr__(&self) -> String {
        format!(
            "incept.Session(input {}, {} thread(s), {} kernels)",
            shape_text(&self.input_shape),
            self.threads,
            self.tier
        )
    }
}

/// The preprocessing `incept classify` uses for `model`: `preset` if given (a built-in
/// model's name), else the model's own (a built-in model) or the built-in preset of its
/// input size (a model file).
fn preset_for(model: &Model, preset: Option<&str>) -> PyResult<&'static Preprocess> {
    let names = || PRESETS.iter().map(|p| p.model).collect::<Vec<_>>().join(", ");
    let (c, h, w) = model.input_shape();
    let p = match preset {
        Some(name) => Preprocess::for_model(name)
            .ok_or_else(|| PyValueError::new_err(format!("unknown preprocessing '{name}' (known: {})", names())))?,
        None => Preprocess::for_model(&model.source).or_else(|| Preprocess::for_input_size(h)).ok_or_else(|| {
            PyValueError::new_err(format!("no preprocessing for {h}x{w} input; choose one with preset= ({})", names()))
        })?,
    };
    if (c, h, w) != (3, p.size as usize, p.size as usize) {
        return Err(PyValueError::new_err(format!(
            "{} takes [{c}, {h}, {w}] input; the {} preprocessing makes [3, {}, {}]",
            model.source, p.model, p.size, p.size
        )));
    }
    Ok(p)
}

/// Turns an image into the model's input, as `incept classify` does: a path (decoded
/// by its bytes, JPEG or PNG), the bytes of an encoded image, or a uint8 pixel array
/// `(H, W)` grey, `(H, W, 3)` RGB or `(H, W, 4)` RGBA. Returns float32 `(1, 3, S, S)`.
#[pyfunction]
#[pyo3(signature = (image, model, preset = None))]
fn preprocess<'py>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    model: &Model,
    preset: Option<&str>,
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let p = preset_for(model, preset)?;
    let decoded = if let Ok(bytes) = image.cast::<PyBytes>() {
        let bytes = bytes.as_bytes();
        py.detach(|| decode_bytes(bytes)).map_err(|e| PyValueError::new_err(format!("image bytes: {e}")))?
    } else if let Ok(pixels) = image.cast::<PyUntypedArray>() {
        from_pixels(pixels)?
    } else {
        let path: PathBuf = image.extract().map_err(|_| {
            PyValueError::new_err("image: expected a path, the bytes of an encoded image, or a uint8 pixel array")
        })?;
        py.detach(|| decode_file(&path)).map_err(|e| PyValueError::new_err(format!("{}: {e}", path.display())))?
    };
    let size = p.size as usize;
    let mut x = vec![0.0; p.input_len()];
    py.detach(|| p.apply_into(&decoded, &mut x));
    let array = ArrayD::from_shape_vec(IxDyn(&[1, 3, size, size]), x).expect("3 x size x size values");
    Ok(array.into_pyarray(py))
}

/// Decodes a file as `incept classify` does: the format recognised by its bytes.
fn decode_file(path: &Path) -> Result<DynamicImage, String> {
    let reader = ImageReader::open(path).map_err(|e| e.to_string())?;
    let reader = reader.with_guessed_format().map_err(|e| e.to_string())?;
    reader.decode().map_err(|e| e.to_string())
}

fn decode_bytes(bytes: &[u8]) -> Result<DynamicImage, String> {
    let reader = ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    reader.decode().map_err(|e| e.to_string())
}

/// A uint8 `(H, W)`, `(H, W, 1)`, `(H, W, 3)` or `(H, W, 4)` array as an image.
fn from_pixels(pixels: &Bound<'_, PyUntypedArray>) -> PyResult<DynamicImage> {
    let expected = "a uint8 pixel array of shape (H, W), (H, W, 3) or (H, W, 4)";
    if !pixels.dtype().is_equiv_to(&dtype::<u8>(pixels.py())) {
        return Err(PyValueError::new_err(format!("image: expected {expected}, got dtype {}", pixels.dtype())));
    }
    let shape = pixels.shape().to_vec();
    let bad_shape = || PyValueError::new_err(format!("image: expected {expected}, got shape {}", shape_text(&shape)));
    let (h, w, channels) = match shape[..] {
        [h, w] | [h, w, 1] => (h, w, 1),
        [h, w, c @ (3 | 4)] => (h, w, c),
        _ => return Err(bad_shape()),
    };
    let (h32, w32) = (u32::try_from(h).map_err(|_| bad_shape())?, u32::try_from(w).map_err(|_| bad_shape())?);
    if h == 0 || w == 0 {
        return Err(bad_shape());
    }
    // Any strides: ndarray's iteration gathers them in row-major order.
    let typed: PyReadonlyArrayDyn<'_, u8> = pixels.cast::<PyArrayDyn<u8>>()?.readonly();
    let data: Vec<u8> = typed.as_array().iter().copied().collect();
    let image = match channels {
        1 => GrayImage::from_raw(w32, h32, data).map(DynamicImage::ImageLuma8),
        3 => RgbImage::from_raw(w32, h32, data).map(DynamicImage::ImageRgb8),
        _ => RgbaImage::from_raw(w32, h32, data).map(DynamicImage::ImageRgba8),
    };
    image.ok_or_else(bad_shape)
}

/// Whether `model` outputs class logits (`"logits"`) or an embedding (`"embedding"`),
/// by the preprocessing preset `incept classify` would choose.
#[pyfunction]
#[pyo3(signature = (model, preset = None))]
fn output_kind(model: &Model, preset: Option<&str>) -> PyResult<&'static str> {
    Ok(match preset_for(model, preset)?.output {
        OutputKind::Logits => "logits",
        OutputKind::Embedding => "embedding",
    })
}

/// The `top` most probable classes of each row of float32 `(n, classes)` logits, as
/// `incept classify` computes them (softmax in float32; ties: lower index first):
/// a list per row of `(index, probability)`.
#[pyfunction]
fn top_classes(logits: PyReadonlyArrayDyn<'_, f32>, top: usize) -> PyResult<Vec<Vec<(usize, f32)>>> {
    let shape = logits.shape();
    if shape.len() != 2 || shape[1] == 0 {
        return Err(PyValueError::new_err(format!("logits: expected shape (n, classes), got {}", shape_text(shape))));
    }
    let classes = shape[1];
    let values: Vec<f32> = logits.as_array().iter().copied().collect();
    Ok(values.chunks_exact(classes).map(|row| labels::top_classes(row, top)).collect())
}

/// The name of class `index` of a classifier with `classes` outputs, as `incept
/// classify` prints it: ImageNet-1k for 1000 (1001: after a `background` class),
/// CIFAR-10 for 10; `None` otherwise.
#[pyfunction]
fn class_name(classes: usize, index: usize) -> Option<&'static str> {
    labels::class_name(classes, index)
}

/// The 1000 ImageNet-1k class names in index order.
#[pyfunction]
fn imagenet_labels() -> Vec<&'static str> {
    labels::imagenet().to_vec()
}

/// The 10 CIFAR-10 class names in index order.
#[pyfunction]
fn cifar10_labels() -> Vec<&'static str> {
    labels::CIFAR10.to_vec()
}

/// The built-in model names.
#[pyfunction]
fn builtin_models() -> Vec<&'static str> {
    models::names()
}

/// Writes an incept model file (weights folded and packed, memory-mapped when opened)
/// from a `.onnx` file, a `.safetensors` state dict with `arch`, or a built-in model
/// name (its synthetic weights), at `precision` (`"f32"`, or `"bf16"` or `"bf16x3"`:
/// a file that runs only at that precision), and checks it by reading it back. Refuses to replace `output`
/// unless `force`.
#[pyfunction]
#[pyo3(signature = (src, output, arch = None, force = false, precision = "f32"))]
fn convert(
    py: Python<'_>,
    src: PathBuf,
    output: PathBuf,
    arch: Option<&str>,
    force: bool,
    precision: &str,
) -> PyResult<()> {
    let name = utf8(&src)?;
    let precision = precision.parse::<Precision>().map_err(PyValueError::new_err)?;
    if output.exists() && !force {
        return Err(PyValueError::new_err(format!("{} exists (pass force=True to replace it)", output.display())));
    }
    if src.canonicalize().ok().is_some_and(|s| output.canonicalize().ok() == Some(s)) {
        return Err(PyValueError::new_err(format!("refusing to overwrite the source file {}", src.display())));
    }
    let ext = src.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    py.detach(|| {
        let (graph, weights) = match (ext.as_deref(), arch) {
            (Some("safetensors"), Some(arch)) => {
                let graph = models::build(arch)?;
                let weights = import::load_safetensors(&src, &graph)?;
                (graph, weights)
            }
            (Some("safetensors"), None) => {
                return Err(Error::Options("a .safetensors checkpoint needs arch= (see builtin_models())".into()));
            }
            (Some("onnx"), _) => import::load_onnx(&src)?,
            _ if !src.exists() => {
                let graph = models::build(name)?;
                let weights = Weights::synthetic(&graph, SYNTHETIC_SEED);
                (graph, weights)
            }
            _ => {
                return Err(Error::Import(format!(
                    "{}: convert reads .onnx and .safetensors files and built-in names",
                    src.display()
                )));
            }
        };
        format::write_at(&graph, &weights, &output, WritePacking::Native, precision, &mut |_, _| {})?;
        incept::Model::open_verified(&output).map(drop)
    })
    .map_err(py_err)
}

/// The native module; `incept/__init__.py` re-exports it.
#[pymodule]
fn _incept(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("InceptError", m.py().get_type::<InceptError>())?;
    m.add_class::<Model>()?;
    m.add_class::<Session>()?;
    m.add_function(wrap_pyfunction!(preprocess, m)?)?;
    m.add_function(wrap_pyfunction!(output_kind, m)?)?;
    m.add_function(wrap_pyfunction!(top_classes, m)?)?;
    m.add_function(wrap_pyfunction!(class_name, m)?)?;
    m.add_function(wrap_pyfunction!(imagenet_labels, m)?)?;
    m.add_function(wrap_pyfunction!(cifar10_labels, m)?)?;
    m.add_function(wrap_pyfunction!(builtin_models, m)?)?;
    m.add_function(wrap_pyfunction!(convert, m)?)?;
    Ok(())
}
