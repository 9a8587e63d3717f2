//! safetensors import onto the built-in graphs: round trips of synthetic weights
//! written with the `safetensors` crate, error messages naming the tensors, and the
//! real PyTorch exports of `scripts/export_models.py` when they are there.
//!
//! The real exports are looked for in `$INCEPT_MODELS_DIR`, or else `target/models`
//! (the script's default output, as for the ONNX test); each model is skipped, with
//! a note, when its files are absent. Their tolerance is the ONNX test's: max
//! |incept - float64| / max |ref| < 1e-4, and no more than ONNX Runtime's own float32
//! error on the same input (`{name}.ort.npy`, 1e-6 to 5e-6) when that file is there.

mod common;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use incept::graph::{Graph, ParamKind};
use incept::import::load_safetensors;
use incept::weights::{Tensor, Weights};
use incept::{Error, Model, SessionOptions, models};
use safetensors::{Dtype, View};

/// A tensor as the safetensors crate writes it.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl Raw {
    fn f32(t: &Tensor) -> Raw {
        Raw { dtype: Dtype::F32, shape: t.shape.clone(), bytes: t.data.iter().flat_map(|v| v.to_le_bytes()).collect() }
    }

    fn i64(shape: Vec<usize>, values: &[i64]) -> Raw {
        Raw { dtype: Dtype::I64, shape, bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect() }
    }
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// A state dict: the weights of every parameter of `graph`, in declaration order.
fn state_dict(graph: &Graph, weights: &Weights) -> Vec<(String, Raw)> {
    graph.params.iter().map(|p| (p.name.clone(), Raw::f32(weights.get(&p.name).unwrap()))).collect()
}

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn write(tag: &str, tensors: &[(String, Raw)]) -> TempFile {
        let bytes = safetensors::serialize(tensors.iter().map(|(n, r)| (n.as_str(), r)), None).unwrap();
        TempFile::write_bytes(tag, &bytes)
    }

    fn write_bytes(tag: &str, bytes: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("incept-st-{}-{tag}.safetensors", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        std::fs::remove_file(&self.0).ok();
    }
}

/// Runs `weights` on `graph` for one deterministic input.
fn run(graph: &Graph, weights: &Weights, input: &[f32]) -> Vec<f32> {
    let mut s = Model::new(graph, weights).unwrap().session(SessionOptions::default()).unwrap();
    let mut y = vec![0.0; s.output_len()];
    s.run(input, &mut y).unwrap();
    y
}

/// Writes `tensors`, loads them onto `graph` and checks the weights are exactly the
/// synthetic ones and run to bit-identical outputs.
fn round_trip(graph: &Graph, synthetic: &Weights, tensors: &[(String, Raw)]) {
    let file = TempFile::write(&graph.name, tensors);
    let loaded = load_safetensors(&file.0, graph).unwrap();
    assert_eq!(loaded.len(), graph.params.len());
    assert_eq!(&loaded, synthetic);
    let d = graph.dims(graph.input);
    let x = common::input(d.c * d.h * d.w, 3);
    let (want, got) = (run(graph, synthetic, &x), run(graph, &loaded, &x));
    assert!(want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()), "{}: outputs differ", graph.name);
}

#[test]
fn nin_round_trips_exactly() {
    let graph = models::build("nin_cifar10").unwrap();
    let synthetic = Weights::synthetic(&graph, 11);
    round_trip(&graph, &synthetic, &state_dict(&graph, &synthetic));
}

/// torchvision's googlenet state dict also has a `num_batches_tracked` counter per
/// BatchNorm and, with `aux_logits=True`, the heads `aux1.*`, `aux2.*`: skipped.
#[test]
fn googlenet_round_trips_and_skips_counters_and_aux_heads() {
    let graph = models::build("googlenet").unwrap();
    let synthetic = Weights::synthetic(&graph, 12);
    let mut tensors = state_dict(&graph, &synthetic);
    let counters: Vec<String> = graph
        .params
        .iter()
        .filter(|p| p.kind == ParamKind::BnVar)
        .map(|p| p.name.replace(".running_var", ".num_batches_tracked"))
        .collect();
    assert_eq!(counters.len(), 57);
    tensors.extend(counters.into_iter().map(|n| (n, Raw::i64(vec![], &[123]))));
    let aux = Tensor { shape: vec![128, 512, 1, 1], data: vec![0.25; 128 * 512] };
    tensors.push(("aux1.conv.conv.weight".into(), Raw::f32(&aux)));
    tensors.push(("aux2.fc2.bias".into(), Raw::i64(vec![2], &[1, 2])));
    round_trip(&graph, &synthetic, &tensors);
}

/// Loads `tensors` onto `graph` expecting an error; returns its message.
fn load_error(graph: &Graph, tag: &str, tensors: &[(String, Raw)]) -> (Error, String) {
    let file = TempFile::write(tag, tensors);
    let e = load_safetensors(&file.0, graph).err().unwrap_or_else(|| panic!("{tag}: loaded without error"));
    let msg = e.to_string();
    assert!(msg.contains(&file.0.display().to_string()), "{tag}: the file is not named: {msg}");
    (e, msg)
}

fn assert_contains(msg: &str, needles: &[&str]) {
    for needle in needles {
        assert!(msg.contains(needle), "'{needle}' not in: {msg}");
    }
}

#[test]
fn missing_misshaped_unexpected_and_mistyped_tensors_are_named() {
    let graph = models::build("nin_cifar10").unwrap();
    let synthetic = Weights::synthetic(&graph, 13);
    let good = || state_dict(&graph, &synthetic);

    let mut t = good();
    t.retain(|(n, _)| n != "classifier.20.bias" && n != "classifier.8.weight");
    let (e, msg) = load_error(&graph, "missing", &t);
    assert!(matches!(e, Error::Weights(_)));
    assert_contains(
        &msg,
        &["2 of the graph's 18 tensors missing: 'classifier.8.weight' [192, 96, 5, 5], 'classifier.20.bias' [10]"],
    );

    let mut t = good();
    t[0].1 = Raw::f32(&Tensor { shape: vec![192, 3, 3, 3], data: vec![0.0; 192 * 27] });
    let (e, msg) = load_error(&graph, "misshaped", &t);
    assert!(matches!(e, Error::Weights(_)));
    assert_contains(&msg, &["'classifier.0.weight' is [192, 3, 3, 3], the graph needs [192, 3, 5, 5]"]);

    let mut t = good();
    t.push(("classifier.22.weight".into(), Raw::f32(&Tensor { shape: vec![10], data: vec![0.0; 10] })));
    t.push(("classifier.0.num_batches_tracked".into(), Raw::i64(vec![], &[0])));
    let (e, msg) = load_error(&graph, "unexpected", &t);
    assert!(matches!(e, Error::Weights(_)));
    assert_contains(&msg, &["1 unexpected tensors: 'classifier.22.weight'"]);
    assert!(!msg.contains("missing") && !msg.contains("num_batches_tracked"), "{msg}");

    let mut t = good();
    t.iter_mut().find(|(n, _)| n == "classifier.2.bias").unwrap().1 = Raw::i64(vec![160], &[1; 160]);
    let (e, msg) = load_error(&graph, "dtype", &t);
    assert!(matches!(e, Error::Import(_)));
    assert_contains(&msg, &["'classifier.2.bias' is I64", "does not convert to f32"]);

    // Non-finite values are caught by the final check, named with the file.
    let mut t = good();
    let mut w = synthetic.get("classifier.4.weight").unwrap().clone();
    w.data[5] = f32::NAN;
    t.iter_mut().find(|(n, _)| n == "classifier.4.weight").unwrap().1 = Raw::f32(&w);
    let (_, msg) = load_error(&graph, "nan", &t);
    assert_contains(&msg, &["tensor 'classifier.4.weight' holds a non-finite value at index 5"]);
}

/// A checkpoint of another architecture fails loudly, naming both sides.
#[test]
fn another_architecture_is_refused() {
    let googlenet = models::build("googlenet").unwrap();
    let t = state_dict(&googlenet, &Weights::synthetic(&googlenet, 14));
    let v3 = models::build("inception_v3").unwrap();
    let (e, msg) = load_error(&v3, "arch", &t);
    assert!(matches!(e, Error::Weights(_)));
    assert_contains(
        &msg,
        &[
            "does not fit 'inception_v3'",
            "tensors missing: 'Conv2d_1a_3x3.conv.weight' [32, 3, 3, 3]",
            "unexpected tensors: 'conv1.bn.bias'",
            "(is the file for a different model than 'inception_v3'?)",
            "... (",
        ],
    );
}

#[test]
fn unreadable_truncated_and_empty_files_are_import_errors() {
    let graph = models::build("nin_cifar10").unwrap();
    let missing = std::env::temp_dir().join("incept-st-no-such-file.safetensors");
    let e = load_safetensors(&missing, &graph).err().unwrap();
    assert!(matches!(e, Error::Import(_)) && e.to_string().contains("incept-st-no-such-file.safetensors"), "{e}");

    let t = state_dict(&graph, &Weights::synthetic(&graph, 15));
    let bytes = safetensors::serialize(t.iter().map(|(n, r)| (n.as_str(), r)), None).unwrap();
    for (tag, b) in [("truncated", &bytes[..bytes.len() - 1]), ("header-only", &bytes[..100]), ("empty", &[][..])] {
        let file = TempFile::write_bytes(tag, b);
        let e = load_safetensors(&file.0, &graph).err().unwrap();
        let msg = e.to_string();
        assert!(matches!(e, Error::Import(_)), "{tag}: {msg}");
        assert_contains(&msg, &[&file.0.display().to_string(), "not a valid safetensors file ("]);
    }
    // The input file is only read.
    let file = TempFile::write_bytes("read-only", &bytes);
    load_safetensors(&file.0, &graph).unwrap();
    assert_eq!(std::fs::read(&file.0).unwrap(), bytes);
}

/// The four reference models of `scripts/export_models.py`.
const EXPORTS: [&str; 4] = ["googlenet", "inception_v3", "inception_v4", "inception_resnet_v2"];

fn exports_dir() -> PathBuf {
    match std::env::var_os("INCEPT_MODELS_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/models"),
    }
}

/// The export of `name`, when it is there.
fn export(name: &str) -> Option<PathBuf> {
    let path = exports_dir().join(format!("{name}.safetensors"));
    if path.exists() {
        Some(path)
    } else {
        println!("{name}: no {} (set INCEPT_MODELS_DIR), skipped", path.display());
        None
    }
}

/// The built-in graphs' parameters are the reference state dicts' keys, with the
/// same shapes; the state dicts hold nothing else but BatchNorm counters and keys
/// under the graphs' ignored prefixes. Lists every difference.
#[test]
fn builtin_parameter_names_are_the_reference_keys() {
    for name in EXPORTS {
        let Some(path) = export(name) else { continue };
        let graph = models::build(name).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: a read-only mapping of a file that nothing writes meanwhile.
        let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
        let st = safetensors::SafeTensors::deserialize(&map).unwrap();
        let mut problems = Vec::new();
        for p in &graph.params {
            match st.tensor(&p.name) {
                Ok(t) if t.shape() != p.shape.as_slice() => {
                    problems.push(format!("'{}': file {:?}, graph {:?}", p.name, t.shape(), p.shape))
                }
                Ok(_) => {}
                Err(_) => problems.push(format!("'{}' {:?}: not in the file", p.name, p.shape)),
            }
        }
        let mut names = st.names();
        names.sort_unstable();
        let mut skipped = 0;
        for key in names {
            if graph.param_by_name(key).is_some() {
                continue;
            }
            if key.ends_with(".num_batches_tracked") || graph.ignored_prefixes.iter().any(|p| key.starts_with(p)) {
                skipped += 1;
            } else {
                problems.push(format!("'{key}': in the file, not in the graph"));
            }
        }
        println!("{name}: {} parameters match the file's keys; {skipped} keys skipped", graph.params.len());
        assert!(problems.is_empty(), "{name}: {} differences:\n{}", problems.len(), problems.join("\n"));
    }
}

fn read_npy<T: npyz::Deserialize>(path: &Path) -> Vec<T> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    npyz::NpyFile::new(&bytes[..]).unwrap().into_vec::<T>().unwrap()
}

/// max |got - want| / max |want|, in float64.
fn rel_err_f64(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    got.iter().zip(want).fold(0f64, |m, (&a, b)| m.max((a as f64 - b).abs())) / scale
}

/// The real exports loaded onto the built-in graphs, against their float64 PyTorch
/// reference, with the ONNX test's bound. Skipped when the files are absent.
#[test]
fn real_exports_match_the_float64_reference() {
    let dir = exports_dir();
    for name in EXPORTS {
        let Some(path) = export(name) else { continue };
        let reference = dir.join(format!("{name}.ref_f64.npy"));
        if !reference.exists() {
            println!("{name}: no {}, skipped", reference.display());
            continue;
        }
        let graph = models::build(name).unwrap();
        if !common::model_fits_test_budget(graph.macs()) {
            continue;
        }
        let weights = load_safetensors(&path, &graph).unwrap();
        let x: Vec<f32> = read_npy(&dir.join(format!("{name}.input.npy")));
        let want: Vec<f64> = read_npy(&reference);
        let y = run(&graph, &weights, &x);
        let err = rel_err_f64(&y, &want);
        let ort = dir.join(format!("{name}.ort.npy"));
        let ort_err = ort.exists().then(|| rel_err_f64(&read_npy::<f32>(&ort), &want));
        match ort_err {
            Some(o) => println!(
                "{name}: max |incept - float64| / max |ref| = {err:.2e} (ONNX Runtime: {o:.2e}, ratio {:.2})",
                err / o
            ),
            None => println!("{name}: max |incept - float64| / max |ref| = {err:.2e}"),
        }
        assert!(err < 1e-4, "{name}: {err:.2e}");
        if let Some(o) = ort_err {
            assert!(err <= o, "{name}: {err:.2e}, further from float64 than ONNX Runtime ({o:.2e})");
        }
    }
}

/// A real checkpoint loaded onto another built-in architecture is refused.
#[test]
fn a_real_inception_v4_checkpoint_does_not_load_as_inception_v3() {
    let Some(path) = export("inception_v4") else { return };
    let v3 = models::build("inception_v3").unwrap();
    let e = load_safetensors(&path, &v3).err().unwrap().to_string();
    assert_contains(
        &e,
        &["does not fit 'inception_v3'", "tensors missing", "unexpected tensors: 'features.0.bn.bias'"],
    );
}
