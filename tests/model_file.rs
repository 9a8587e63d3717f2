//! The model file format: round trips (native and plain packing), sharing the mapped
//! weights between sessions and threads, and corrupt files: truncated at many
//! offsets, a byte flipped in every region, and hand-made inconsistencies, each a
//! clear error and never a panic.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use incept::format::{self, WritePacking};
use incept::graph::{Graph, Op};
use incept::weights::Weights;
use incept::{Error, Model, SessionOptions, models};

/// A file in a fresh per-test directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        let dir = std::env::temp_dir().join(format!("incept-model-file-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempFile(dir.join(format!("{name}.incept")))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

/// File bytes in an `f32`-aligned buffer, as a mapping would be.
struct Aligned {
    words: Vec<u64>,
    len: usize,
}

impl Aligned {
    fn new(bytes: &[u8]) -> Arc<Aligned> {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Arc::new(Aligned { words, len: bytes.len() })
    }
}

impl AsRef<[u8]> for Aligned {
    fn as_ref(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len]
    }
}

fn read(bytes: &[u8], verify: bool) -> incept::Result<(incept::lower::Program, format::LoadInfo)> {
    format::read(Aligned::new(bytes), verify)
}

fn model_error(r: incept::Result<impl Sized>) -> String {
    match r {
        Err(Error::ModelFile(m)) => m,
        Err(e) => panic!("expected a model-file error, got: {e}"),
        Ok(_) => panic!("expected a model-file error, the file loaded"),
    }
}

fn written(graph: &Graph, weights: &Weights, name: &str, packing: WritePacking) -> TempFile {
    let file = TempFile::new(name);
    format::write(graph, weights, &file.0, packing, &mut |_, _| {}).unwrap();
    file
}

fn outputs(model: &Model, x: &[f32]) -> Vec<f32> {
    let mut s = model.session(SessionOptions::default()).unwrap();
    let mut y = vec![0.0; s.output_len()];
    s.run(x, &mut y).unwrap();
    y
}

fn nin() -> (Graph, Weights) {
    let graph = models::build("nin_cifar10").unwrap();
    let weights = Weights::synthetic(&graph, 7);
    (graph, weights)
}

fn onnx_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(format!("{name}.onnx"))
}

#[test]
fn a_written_file_runs_exactly_like_the_model_it_came_from() {
    let mut cases = vec![("nin_cifar10", nin())];
    for name in ["inception_module", "resnet_block", "same_pool_lrn"] {
        cases.push((name, incept::import::load_onnx(&onnx_fixture(name)).unwrap()));
    }
    let graph = models::build("googlenet").unwrap();
    cases.push(("googlenet", (graph.clone(), Weights::synthetic(&graph, 3))));
    for (name, (graph, weights)) in cases {
        let direct = Model::new(&graph, &weights).unwrap();
        let x = common::input(direct.session(SessionOptions::default()).unwrap().input_len(), 5);
        let want = outputs(&direct, &x);
        let total: usize = direct.program().tensors.owned_bytes();

        let native = written(&graph, &weights, &format!("{name}-native"), WritePacking::Native);
        let model = Model::open(&native.0).unwrap();
        let info = model.load_info().unwrap();
        assert_eq!((info.mapped_bytes, info.repacked.len(), info.verified), (total, 0, false), "{name}");
        assert_eq!(model.program().tensors.owned_bytes(), 0, "{name}: no weight on the heap");
        assert_eq!(outputs(&model, &x), want, "{name}: native packing");
        assert_eq!(model.graph().params, graph.params, "{name}: the graph round-trips");

        let plain = written(&graph, &weights, &format!("{name}-plain"), WritePacking::Plain);
        let model = Model::open_verified(&plain.0).unwrap();
        let info = model.load_info().unwrap();
        let convs = direct.program().steps.iter().filter(|s| matches!(s.kernel, incept::lower::Kernel::Conv { .. }));
        assert_eq!(info.repacked.len(), 2 * convs.count(), "{name}: conv weights and biases repacked");
        assert!(info.verified);
        assert_eq!(outputs(&model, &x), want, "{name}: plain packing, repacked at load");
    }
}

#[test]
fn sessions_in_two_threads_share_the_mapped_weights() {
    let (graph, weights) = nin();
    let file = written(&graph, &weights, "shared", WritePacking::Native);
    let before = std::fs::read(&file.0).unwrap();
    let model = Model::open(&file.0).unwrap();
    let x = common::input(model.session(SessionOptions::default()).unwrap().input_len(), 9);
    let want = outputs(&Model::new(&graph, &weights).unwrap(), &x);
    let runs: Vec<Vec<f32>> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..2).map(|_| s.spawn(|| outputs(&model, &x))).collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(runs.iter().all(|y| *y == want));
    // Every tensor the sessions read lies inside the one mapping of the file.
    let program = model.program();
    let mapping = (**program.tensors.shared_bytes().expect("a mapped model")).as_ref().as_ptr_range();
    for i in 0..program.tensors.len() {
        let t = program.tensors.get(i).as_ptr_range();
        assert!(mapping.start <= t.start.cast() && t.end.cast() <= mapping.end, "tensor {i} is not in the mapping");
    }
    // A second model on the same file maps it too (the OS shares the pages).
    let again = Model::open(&file.0).unwrap();
    assert_eq!(again.load_info().unwrap().mapped_bytes, model.load_info().unwrap().mapped_bytes);
    drop((model, again));
    assert_eq!(std::fs::read(&file.0).unwrap(), before, "loading never writes the file");
}

/// The byte ranges of a file's parts: prelude, header, padding, tensor data.
fn regions(bytes: &[u8]) -> Vec<(&'static str, std::ops::Range<usize>)> {
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    let (header_end, data) = (64 + word(24), word(32));
    vec![("prelude", 0..64), ("header", 64..header_end), ("padding", header_end..data), ("data", data..bytes.len())]
}

#[test]
fn truncated_files_are_rejected_at_every_offset() {
    let (graph, weights) = nin();
    let file = written(&graph, &weights, "truncated", WritePacking::Native);
    let bytes = std::fs::read(&file.0).unwrap();
    let mut cuts: Vec<usize> = (0..=80).collect();
    for (_, r) in regions(&bytes) {
        cuts.extend((r.start..r.end).step_by((r.len() / 97).max(1)));
        cuts.push(r.end - 1);
    }
    for &cut in &cuts {
        let m = model_error(read(&bytes[..cut], false));
        assert!(m.contains("truncated") || m.contains("not an incept model file"), "cut at {cut}: {m}");
    }
    // Through the file system too: the message names the file.
    std::fs::write(&file.0, &bytes[..bytes.len() / 2]).unwrap();
    let m = model_error(Model::open(&file.0).map(|_| ()));
    assert!(m.contains(&file.0.display().to_string()) && m.contains("truncated"), "{m}");
}

#[test]
fn a_flipped_byte_anywhere_is_caught_by_verification_and_never_panics() {
    let (graph, weights) = nin();
    let file = written(&graph, &weights, "flipped", WritePacking::Native);
    let bytes = std::fs::read(&file.0).unwrap();
    let x = common::input(3 * 32 * 32, 1);
    for (region, r) in regions(&bytes) {
        let step = if region == "data" { r.len() / 1500 } else { 1 };
        let mut positions: Vec<usize> = (r.start..r.end).step_by(step.max(1)).collect();
        positions.push(r.end - 1);
        for at in positions {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            assert!(
                matches!(read(&bad, true), Err(Error::ModelFile(_))),
                "{region} byte {at}: a flip passed verification"
            );
            // Unverified loading still checks every structural byte; a damaged weight
            // only changes numbers.
            match read(&bad, false) {
                Ok((program, _)) => {
                    assert!(region == "data" || region == "padding", "{region} byte {at} loaded unverified");
                    if at % 16 == 0 {
                        let model_out = run_program(program, &x);
                        assert_eq!(model_out.len(), 10);
                    }
                }
                Err(Error::ModelFile(_)) => assert!(region == "prelude" || region == "header", "{region} byte {at}"),
                Err(e) => panic!("{region} byte {at}: {e}"),
            }
        }
    }
}

fn run_program(program: incept::lower::Program, x: &[f32]) -> Vec<f32> {
    let mut s = incept::Session::new(Arc::new(program), SessionOptions::default()).unwrap();
    let mut y = vec![0.0; s.output_len()];
    s.run(x, &mut y).unwrap();
    y
}

/// A file's header JSON and its data section.
fn parts(bytes: &[u8]) -> (serde_json::Value, &[u8]) {
    let header_len = u64::from_le_bytes(bytes[24..32].try_into().unwrap()) as usize;
    let data = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    (serde_json::from_slice(&bytes[64..64 + header_len]).unwrap(), &bytes[data..])
}

/// A file of `bytes`' prelude with `header` and `data`, every length, offset and
/// checksum of the prelude fixed.
fn assembled(bytes: &[u8], header: &serde_json::Value, data: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(header).unwrap();
    let new_data = (64 + json.len()).next_multiple_of(64);
    let mut out = bytes[..64].to_vec();
    out.extend_from_slice(&json);
    out.resize(new_data, 0);
    out.extend_from_slice(data);
    out[24..32].copy_from_slice(&(json.len() as u64).to_le_bytes());
    out[32..40].copy_from_slice(&(new_data as u64).to_le_bytes());
    out[40..48].copy_from_slice(&(data.len() as u64).to_le_bytes());
    out[48..52].copy_from_slice(&crc32fast::hash(&json).to_le_bytes());
    let crc = crc32fast::hash(&out[..52]);
    out[52..56].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Rewrites a file's header JSON with `edit` and fixes every checksum, so only the
/// edit is wrong.
fn with_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let (mut header, data) = parts(bytes);
    edit(&mut header);
    assembled(bytes, &header, data)
}

/// The file `graph` and `weights` write now (native packing), with the tensors
/// `older` picks rewritten as an older writer stored them: `older(role, packing
/// written now, plain values)` gives their values, packing name and shape; also how
/// many it picked.
fn with_older_packing(
    graph: &Graph,
    weights: &Weights,
    name: &str,
    mut older: impl FnMut(
        &incept::lower::TensorRole,
        &serde_json::Value,
        &[f32],
    ) -> Option<(Vec<f32>, &'static str, serde_json::Value)>,
) -> (Vec<u8>, usize) {
    let native = std::fs::read(&written(graph, weights, &format!("{name}-native"), WritePacking::Native).0).unwrap();
    let plain = std::fs::read(&written(graph, weights, &format!("{name}-plain"), WritePacking::Plain).0).unwrap();
    let ((mut header, native_data), (plain_header, plain_data)) = (parts(&native), parts(&plain));
    let (_, recipes) = incept::lower::Program::structure(graph);
    let (mut data, mut count) = (Vec::new(), 0);
    let tensors = header["tensors"].as_array_mut().unwrap();
    for ((entry, plain_entry), recipe) in
        tensors.iter_mut().zip(plain_header["tensors"].as_array().unwrap()).zip(&recipes)
    {
        let range = |e: &serde_json::Value| {
            let at = e["offset"].as_u64().unwrap() as usize;
            at..at + e["length"].as_u64().unwrap() as usize
        };
        let mut raw = native_data[range(entry)].to_vec();
        let values: Vec<f32> =
            plain_data[range(plain_entry)].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        if let Some((packed, packing, shape)) = older(&recipe.role, &entry["packing"], &values) {
            raw = packed.iter().flat_map(|v| v.to_le_bytes()).collect();
            entry["packing"] = packing.into();
            entry["shape"] = shape;
            count += 1;
        }
        data.resize(data.len().next_multiple_of(64), 0);
        entry["offset"] = data.len().into();
        entry["length"] = raw.len().into();
        entry["crc32"] = format!("{:08x}", crc32fast::hash(&raw)).into();
        data.extend_from_slice(&raw);
    }
    (assembled(&native, &header, &data), count)
}

/// A file written when the 1-D layers were lowered to F(2, 3), their weights stored
/// as `winograd_f2_3_blocked16` (made here from a native and a plain file: the plain
/// weights packed for F(2, 3)), loads, verified: those weights are repacked to the
/// 6-point schemes', and the outputs match the model's within the rounding of the
/// middle taps.
#[test]
fn a_file_with_f2_3_weights_loads_repacked() {
    use incept::lower::TensorRole;
    use incept_kernels::pack::pack_winograd_weights;
    use incept_kernels::winograd::Scheme;

    let graph = models::build("inception_v3").unwrap();
    let weights = Weights::synthetic(&graph, 3);
    let (file, older) = with_older_packing(&graph, &weights, "f2-3", |role, _, values| {
        let TensorRole::WinogradWeight { shape, scheme: Scheme::Line6 { vertical, taps }, .. } = *role else {
            return None;
        };
        let (old, mut packed) = (Scheme::F2 { vertical, taps }, Vec::new());
        pack_winograd_weights(values, shape, old, &mut packed);
        let dims = serde_json::json!([old.total_depth(), shape.co_blocks(), shape.ci_blocks(), 16, 16]);
        Some((packed, "winograd_f2_3_blocked16", dims))
    });
    assert!(older >= 8, "inception_v3 has 1-D layers lowered to the 6-point schemes");
    let (program, info) = read(&file, true).unwrap();
    assert_eq!(info.repacked.len(), older, "the F(2, 3) weights, and only they, are repacked");
    let model = Model::new(&graph, &weights).unwrap();
    let x = common::input(model.session(SessionOptions::default()).unwrap().input_len(), 5);
    let (want, got) = (outputs(&model, &x), run_program(program, &x));
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-4 * scale, "{g} vs {w} (largest output {scale})");
    }
}

/// A file written before the image convolution's whole window was folded, its
/// weights stored as `oihw_image_kx_folded16` (the window's columns folded) or,
/// older still, `oihw_blocked16` (made here from a plain file's weights), loads,
/// verified: those weights, and only they, are repacked to
/// `oihw_image_window_folded16` (exactly), and the outputs are the model's, bit for
/// bit. A file written now stores them folded.
#[test]
fn a_file_with_older_image_weights_loads_repacked() {
    use incept::lower::TensorRole;
    use incept_kernels::pack::{image_kx_folded_shape, pack_conv_weights, pack_conv_weights_image_kx};

    let graph = models::build("googlenet").unwrap();
    let weights = Weights::synthetic(&graph, 3);
    for older in ["oihw_image_kx_folded16", "oihw_blocked16"] {
        let (file, count) = with_older_packing(&graph, &weights, older, |role, packing, values| {
            let TensorRole::ConvWeightImage { shape, .. } = *role else { return None };
            assert_eq!(packing, "oihw_image_window_folded16");
            let mut packed = Vec::new();
            let dims = if older == "oihw_blocked16" {
                pack_conv_weights(values, shape, &mut packed);
                serde_json::json!([shape.co_blocks(), shape.ci_blocks(), shape.kh, shape.kw, 16, 16])
            } else {
                pack_conv_weights_image_kx(values, shape, &mut packed);
                let f = image_kx_folded_shape(shape);
                serde_json::json!([f.co_blocks(), f.ci_blocks(), f.kh, 16, 16])
            };
            Some((packed, older, dims))
        });
        assert_eq!(count, 1, "googlenet's first convolution reads the image");
        let (program, info) = read(&file, true).unwrap();
        assert_eq!(info.repacked.len(), count, "{older}: the image convolution's weights, and only they, are repacked");
        let model = Model::new(&graph, &weights).unwrap();
        let x = common::input(model.session(SessionOptions::default()).unwrap().input_len(), 5);
        let (want, got) = (outputs(&model, &x), run_program(program, &x));
        assert!(got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits()), "{older}: the same bits");
    }
}

#[test]
fn inconsistent_headers_get_errors_that_name_the_problem() {
    let (graph, weights) = nin();
    let file = written(&graph, &weights, "inconsistent", WritePacking::Native);
    let bytes = std::fs::read(&file.0).unwrap();
    assert!(read(&with_header(&bytes, |_| {}), true).is_ok(), "the rewriting itself is sound");
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("unknown variant `gelu`", Box::new(|h| h["graph"]["nodes"][1]["op"] = "gelu".into())),
        ("is not a multiple of 64", Box::new(|h| h["tensors"][1]["offset"] = 4.into())),
        ("overlaps the previous tensor", Box::new(|h| h["tensors"][2]["offset"] = 0.into())),
        ("lie outside the", Box::new(|h| h["tensors"][1]["offset"] = (1u64 << 40).into())),
        ("lie outside the", Box::new(|h| h["tensors"][1]["offset"] = (u64::MAX - 63).into())),
        ("does not match the graph's", Box::new(|h| h["tensors"][0]["shape"][0] = 7.into())),
        ("unknown packing 'nhwc'", Box::new(|h| h["tensors"][0]["packing"] = "nhwc".into())),
        ("expected tensor 'classifier.0.bias' here", Box::new(|h| h["tensors"].as_array_mut().unwrap().swap(1, 2))),
        ("the graph's program needs", Box::new(|h| _ = h["tensors"].as_array_mut().unwrap().pop())),
        ("length", Box::new(|h| h["tensors"][0]["length"] = 4.into())),
        ("not 8 hex digits", Box::new(|h| h["tensors"][0]["crc32"] = "xyz".into())),
        ("checksum mismatch", Box::new(|h| h["tensors"][0]["crc32"] = "00000000".into())),
        ("does not fit", Box::new(|h| h["graph"]["input"] = serde_json::json!([3, 2, 2]))),
        ("input 99 is not an earlier value", Box::new(|h| h["graph"]["nodes"][0]["inputs"][0] = 99.into())),
        (
            "out of range",
            Box::new(|h| h["graph"]["nodes"][0]["op"]["conv"]["window"]["stride"][0] = (1u64 << 40).into()),
        ),
        ("larger than", Box::new(|h| h["graph"]["input"] = serde_json::json!([1u64 << 30, 1 << 20, 1 << 20]))),
        ("larger than", Box::new(|h| h["graph"]["nodes"][0]["op"]["conv"]["out_channels"] = (1u64 << 40).into())),
    ];
    for (needle, edit) in cases {
        let m = model_error(read(&with_header(&bytes, edit), true));
        assert!(m.contains(needle), "expected '{needle}' in: {m}");
    }
    // Prelude fields, with the prelude checksum fixed.
    let prelude = |at: usize, value: &[u8]| {
        let mut b = bytes.clone();
        b[at..at + value.len()].copy_from_slice(value);
        let crc = crc32fast::hash(&b[..52]);
        b[52..56].copy_from_slice(&crc.to_le_bytes());
        model_error(read(&b, false))
    };
    assert!(prelude(0, b"GGUF").contains("not an incept model file"));
    assert!(prelude(8, &2u32.to_le_bytes()).contains("format version 2 is not supported"));
    assert!(prelude(12, &0x0403_0201u32.to_le_bytes()).contains("byte-order mark"));
    assert!(
        prelude(32, &65u64.to_le_bytes()).contains("runs into the data")
            || prelude(32, &65u64.to_le_bytes()).contains("multiple of 64")
    );
    assert!(prelude(24, &u64::MAX.to_le_bytes()).contains("runs into the data"));
    assert!(prelude(40, &u64::MAX.to_le_bytes()).contains("out of range"));
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 64]);
    assert!(model_error(read(&longer, false)).contains("unexpected bytes after the data"));
}

#[test]
fn files_that_are_not_models_get_a_clear_error() {
    let file = TempFile::new("not-a-model");
    std::fs::write(&file.0, b"hello").unwrap();
    let e = Model::open(&file.0).err().expect("not a model").to_string();
    assert!(e.contains("unsupported model file"), "{e}");
    let e = Model::open(file.0.with_file_name("missing.incept")).err().expect("missing").to_string();
    assert!(e.contains("no such file"), "{e}");
    std::fs::write(&file.0, format::MAGIC).unwrap();
    let e = Model::open(&file.0).err().expect("just a magic").to_string();
    assert!(e.contains("truncated"), "{e}");
}

/// The header JSON of a model file.
fn header_of(bytes: &[u8]) -> serde_json::Value {
    let header_len = u64::from_le_bytes(bytes[24..32].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[64..64 + header_len]).unwrap()
}

/// A model written at float32 and at a reduced precision, the second opened verified.
struct Converted {
    /// The file at float32, and the one at the reduced precision (kept while mapped).
    f32_file: TempFile,
    _file: TempFile,
    f32_bytes: Vec<u8>,
    bytes: Vec<u8>,
    model: Model,
    x: Vec<f32>,
    /// The outputs of the model lowered at the file's precision.
    want: Vec<f32>,
}

/// What every file converted at a reduced precision must do: `name`'s model (synthetic
/// weights) written at float32 and at `precision`, each tensor's header entries side
/// by side: those `converted` says it converted (it counts them; at least one), the
/// others unchanged; the file's header names its precision; opened verified, it is at
/// `precision`, its weights mapped and none repacked, and gives the outputs of the
/// model lowered at `precision`; written plain, it is converted when loaded, with the
/// same outputs; a session at `other` is refused, naming both precisions.
fn converted(
    name: &str,
    precision: incept::Precision,
    other: incept::Precision,
    converted: impl Fn(&serde_json::Value, &serde_json::Value) -> bool,
) -> Converted {
    let graph = models::build(name).unwrap();
    let weights = Weights::synthetic(&graph, 3);
    let f32_file = written(&graph, &weights, &format!("{name}-f32"), WritePacking::Native);
    let write = |suffix: &str, packing| {
        let file = TempFile::new(&format!("{name}-{precision}{suffix}"));
        format::write_at(&graph, &weights, &file.0, packing, precision, &mut |_, _| {}).unwrap();
        file
    };
    let file = write("", WritePacking::Native);
    let (f32_bytes, bytes) = (std::fs::read(&f32_file.0).unwrap(), std::fs::read(&file.0).unwrap());
    let (f32_header, header) = (header_of(&f32_bytes), header_of(&bytes));
    assert_eq!(header["precision"], precision.name());
    let mut n = 0;
    for (a, b) in f32_header["tensors"].as_array().unwrap().iter().zip(header["tensors"].as_array().unwrap()) {
        if converted(a, b) {
            n += 1;
        } else {
            assert_eq!((&a["packing"], &a["length"]), (&b["packing"], &b["length"]), "{}", b["name"]);
        }
    }
    assert!(n > 0, "{name} at {precision}: no tensor converted");

    let model = Model::open_verified(&file.0).unwrap();
    assert_eq!(model.precision(), precision);
    let info = model.load_info().unwrap();
    assert!(info.repacked.is_empty() && info.mapped_bytes > 0);
    let x = common::input(graph.dims(graph.input).volume(), 2);
    let want = outputs(&Model::new_at(&graph, &weights, precision).unwrap(), &x);
    assert_eq!(outputs(&model, &x), want);
    let plain = write("-plain", WritePacking::Plain);
    assert_eq!(outputs(&Model::open_verified(&plain.0).unwrap(), &x), want);

    let options = SessionOptions { precision: Some(other), ..Default::default() };
    let err = model.session(options).err().expect("a file runs only at its precision").to_string();
    assert!(
        err.contains(&format!("holds {precision} weights and runs only at precision {precision}, not {other}")),
        "{err}"
    );
    Converted { f32_file, _file: file, f32_bytes, bytes, model, x, want }
}

#[test]
fn bf16_files_hold_half_size_weights_map_them_and_run_at_bf16_only() {
    use incept::Precision;
    let (bf16, halved) = (Precision::Bf16, std::cell::Cell::new(0));
    let c = converted("googlenet", bf16, Precision::F32, |a, b| {
        if b["packing"] != "oihw_blocked16_bf16_pairs" && b["packing"] != "oihw_image_bf16_tap_pairs" {
            return false;
        }
        // A direct layer's float32 weights take twice the bytes; a Winograd layer's
        // (transformed) more. The image's take exactly twice per value, but pad
        // less: the float32 window's 147 lanes to 160 per output, the BF16 pairs'
        // 7 taps of a row to 8 (168).
        let (a_len, b_len) = (a["length"].as_u64().unwrap(), b["length"].as_u64().unwrap());
        if b["packing"] == "oihw_image_bf16_tap_pairs" {
            assert!(a_len * 168 >= 2 * b_len * 160, "{}", b["name"]);
        } else {
            assert!(a_len >= 2 * b_len, "{}", b["name"]);
        }
        halved.set(halved.get() + (a["packing"] == "oihw_blocked16") as usize);
        true
    });
    assert!(header_of(&c.f32_bytes).get("precision").is_none(), "float32 files are unchanged");
    assert!(halved.get() > 0 && c.bytes.len() < c.f32_bytes.len());
    assert_eq!(c.model.program().tensors.owned_bytes(), 0, "no weight on the heap");
    // A float32 file runs at BF16 too, its Winograd layers in float32.
    let bf16_steps = |p: &incept::lower::Program| {
        p.steps.iter().filter(|s| s.algorithm().is_some_and(|a| a.precision() == bf16)).count()
    };
    let partial = Model::open(&c.f32_file.0).unwrap().program_at(bf16).unwrap();
    assert!(0 < bf16_steps(&partial) && bf16_steps(&partial) < bf16_steps(c.model.program()));
}

/// A file converted at BF16x3 holds the split weights (three BF16 terms a weight,
/// 1.5 times the float32 bytes), maps them, runs as the model lowered at BF16x3
/// does, and only at BF16x3; written plain, it is split when loaded.
#[test]
fn bf16x3_files_hold_split_weights_and_run_at_bf16x3_only() {
    use incept::Precision;
    let (x3, split) = (Precision::Bf16x3, std::cell::Cell::new(0));
    let c = converted("nin_cifar10", x3, Precision::Bf16, |a, b| {
        if b["packing"] != "oihw_blocked16_bf16x3_pairs" {
            return false;
        }
        // Three groups of whole input blocks, two bytes a value: 1.5 times a direct
        // layer's float32 packing (a Winograd layer's is transformed).
        let (a_len, b_len) = (a["length"].as_u64().unwrap(), b["length"].as_u64().unwrap());
        if a["packing"] == "oihw_blocked16" {
            assert_eq!(2 * b_len, 3 * a_len, "{}", b["name"]);
            split.set(split.get() + 1);
        }
        true
    });
    assert!(split.get() > 0);
    // A float32 file runs at BF16x3 too (its Winograd layers, if any, float32):
    // near float32 either way.
    let f32_model = Model::open(&c.f32_file.0).unwrap();
    let partial = f32_model.program_at(x3).unwrap();
    assert!(partial.steps.iter().any(|s| s.algorithm().is_some_and(|a| a.precision() == x3)));
    let mut s = f32_model.session(SessionOptions { precision: Some(x3), ..Default::default() }).unwrap();
    let mut y = vec![0.0; s.output_len()];
    s.run(&c.x, &mut y).unwrap();
    assert!(common::rel_max_err(&y, &c.want) < 1e-4, "{}", common::rel_max_err(&y, &c.want));
}

/// A model whose average pools moved after their projection, padded with its bias,
/// round-trips: written from the moved graph, its header marks the pools
/// (`pad_with_bias`); written from the graph as built (as a file from before the
/// mark), it is moved again at load; both run as the model does. A mark on a pool
/// that does not count padding, or that reads no projection, is refused.
#[test]
fn pools_padded_with_bias_round_trip() {
    let graph = common::pool_branches_graph();
    let weights = Weights::synthetic(&graph, 3);
    let direct = Model::new(&graph, &weights).unwrap();
    let x = common::input(graph.dims(graph.input).volume(), 5);
    let want = outputs(&direct, &x);
    let marked = |h: &serde_json::Value| {
        let nodes = h["graph"]["nodes"].as_array().unwrap();
        nodes.iter().filter(|n| n["op"]["avg_pool"]["pad_with_bias"] == true).count()
    };
    for (name, g, marks) in [("moved", direct.graph(), 3), ("as-built", &graph, 0)] {
        let file = written(g, &weights, name, WritePacking::Native);
        let bytes = std::fs::read(&file.0).unwrap();
        assert_eq!(marked(&parts(&bytes).0), marks, "{name}");
        let model = Model::open(&file.0).unwrap();
        let moved =
            |g: &Graph| g.nodes.iter().filter(|n| matches!(n.op, Op::AvgPool { pad_with_bias: true, .. })).count();
        assert_eq!(moved(model.graph()), 3, "{name}");
        assert_eq!(outputs(&model, &x), want, "{name}");
    }

    let file = written(direct.graph(), &weights, "bad-marks", WritePacking::Native);
    let bytes = std::fs::read(&file.0).unwrap();
    let pool = |h: &serde_json::Value| {
        let nodes = h["graph"]["nodes"].as_array().unwrap();
        nodes.iter().position(|n| n["op"]["avg_pool"]["pad_with_bias"] == true).unwrap()
    };
    let (header, _) = parts(&bytes);
    let at = pool(&header);
    let no_divisor =
        with_header(&bytes, |h| h["graph"]["nodes"][at]["op"]["avg_pool"]["count_include_pad"] = false.into());
    assert!(model_error(read(&no_divisor, true)).contains("pad_with_bias needs count_include_pad"));
    // The pool made to read the network input, which no projection made.
    let no_projection = with_header(&bytes, |h| h["graph"]["nodes"][at]["inputs"][0] = 0.into());
    let e = model_error(read(&no_projection, true));
    assert!(e.contains("must count the padding and read a convolution"), "{e}");
}
