//! The `incept` binary: every built-in model end to end through `incept run`, and
//! one-line errors with a non-zero exit for bad input.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

fn incept(args: &[&str]) -> Output {
    common::incept_command().args(args).output().expect("the incept binary runs")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("incept-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A minimal float32 .npy writer, independent of the one under test.
fn write_npy(path: &Path, shape: &[usize], values: &[f32]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

/// Reads back a float32 .npy written by the tool: the shape text and the values.
fn read_npy(path: &Path) -> (String, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8(bytes[10..10 + len].to_vec()).unwrap();
    assert!(header.contains("'descr': '<f4'"), "{header}");
    let shape = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape = format!("({})", shape.trim_end_matches([',', ' ']));
    let values = bytes[10 + len..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    (shape, values)
}

fn assert_clean_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, got success");
    assert!(stderr.starts_with("error: ") && stderr.lines().count() == 1, "not a one-line error: {stderr}");
    assert!(stderr.contains(needle), "'{needle}' not in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn every_model_runs_end_to_end_and_matches_the_library() {
    for m in incept::models::BUILTIN {
        let model = incept::Model::builtin(m.name).unwrap();
        if !common::model_fits_test_budget(model.graph().macs()) {
            continue;
        }
        let mut session = model.session(Default::default()).unwrap();
        let [_, c, h, w] = session.input_shape();
        let x = common::input(c * h * w, 3);
        let mut want = vec![0.0; session.output_len()];
        session.run(&x, &mut want).unwrap();

        let (input, output) = (tmp(&format!("{}-in.npy", m.name)), tmp(&format!("{}-out.npy", m.name)));
        write_npy(&input, &[1, c, h, w], &x);
        let out = incept(&["run", m.name, "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap()]);
        assert!(out.status.success(), "{}: {}", m.name, String::from_utf8_lossy(&out.stderr));
        let (shape, y) = read_npy(&output);
        assert_eq!(shape, format!("({}, {})", 1, want.len()), "{}", m.name);
        assert_eq!(y, want, "{}", m.name);
    }
}

#[test]
fn info_reports_reference_counts() {
    for (name, params) in [
        ("nin_cifar10", 966_986),
        ("googlenet", 6_624_904),
        ("inception_v3", 23_834_568),
        ("inception_v4", 42_679_816),
        ("inception_resnet_v2", 55_843_464),
    ] {
        let out = incept(&["info", name, "--json"]);
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["params"], params, "{name}");
        assert!(v["macs"].as_u64().unwrap() > 0 && v["arena_bytes"].as_u64().unwrap() > 0);
        assert_eq!(v["concat_copies"], 0);
    }
}

/// `incept peak MODEL --l2-kib KIB --json`: each distinct convolution layer but the
/// image's, as lowered, timed with the drivers assuming the L2 the CPU reports and
/// assuming KIB.
#[test]
fn peak_compares_the_l2_the_drivers_assume() {
    let out = incept(&["peak", "googlenet", "--l2-kib", "8", "--rounds", "1", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["assumed_l2_kib"], 8);
    assert!(v["reported_l2_kib"].as_u64().unwrap() > 0);
    let layers = v["layers"].as_array().unwrap();
    // GoogLeNet's convolutions, counted with their repeats, but the 7x7/2 stem's.
    let count: u64 = layers.iter().map(|l| l["count"].as_u64().unwrap()).sum();
    assert_eq!(count, 56);
    let lowered = |how: &str| layers.iter().filter(|l| l["lowered"] == how).count();
    assert!(lowered("direct") > 0 && lowered("direct") < layers.len(), "some layers by Winograd");
    for l in layers {
        assert!(l["ms_reported_l2"].as_f64().unwrap() > 0.0 && l["ms_assumed_l2"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn info_lists_each_step_with_its_algorithm() {
    let out = incept(&["info", "inception_v3", "--json", "--steps"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = v["step_list"].as_array().unwrap();
    assert_eq!(list.len() as u64, v["steps"].as_u64().unwrap());
    let algorithm = |i: usize| list[i]["algorithm"].as_str().unwrap().to_string();
    // The stem reads the RGB input as an image; 3x3 layers of 64+ channels by Winograd.
    assert_eq!(
        (list[1]["name"].as_str().unwrap(), algorithm(1).as_str()),
        ("Conv2d_1a_3x3.conv+Conv2d_1a_3x3.bn+relu_2", "from_image")
    );
    let count = |a: &str| (0..list.len()).filter(|&i| algorithm(i).starts_with(a)).count();
    assert_eq!(count("from_image"), 1);
    assert!(count("winograd") > 0 && count("direct") > 0);
    assert_eq!(count("from_image") + count("winograd") + count("direct"), v["ops"]["conv"].as_u64().unwrap() as usize);
}

#[test]
fn bench_reports_json() {
    let out = incept(&["bench", "nin_cifar10", "--runs", "3", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["load_ms", "median_ms", "min_ms"] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}");
    }
    assert!(v["min_ms"].as_f64() <= v["median_ms"].as_f64());
}

/// The latency keys of `bench --json`, in the order they must hold.
const PERCENTILES: [&str; 5] = ["min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"];

fn assert_latency_distribution(v: &serde_json::Value) {
    let values: Vec<f64> = PERCENTILES.iter().map(|k| v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"))).collect();
    assert!(values[0] > 0.0, "{v}");
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "not ordered min <= p50 <= p90 <= p99 <= max: {v}");
    assert_eq!(v["p50_ms"], v["median_ms"]);
    assert!(v["first_ms"].as_f64().unwrap() > 0.0, "{v}");
}

#[test]
fn bench_reports_latency_percentiles_back_to_back() {
    let out = incept(&["bench", "nin_cifar10", "--runs", "20", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_latency_distribution(&v);
    assert!(v["interval_ms"].is_null() && v["overruns"].is_null(), "{v}");

    let out = incept(&["bench", "nin_cifar10", "--runs", "20"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("p50") && text.contains("p99") && text.contains("back to back"), "{text}");
}

#[test]
fn bench_paces_runs_by_the_interval() {
    let (runs, interval_ms) = (6, 25.0);
    let start = std::time::Instant::now();
    let out = incept(&["bench", "nin_cifar10", "--runs", &runs.to_string(), "--interval-ms", "25", "--json"]);
    let elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_latency_distribution(&v);
    assert_eq!(v["interval_ms"].as_f64(), Some(interval_ms));
    assert!(v["overruns"].as_u64().is_some_and(|n| n <= runs), "{v}");
    // The timed runs start one interval apart, the first one interval after the warm-up.
    assert!(elapsed_ms >= runs as f64 * interval_ms, "{runs} runs paced at {interval_ms} ms took {elapsed_ms:.0} ms");

    let out = incept(&["bench", "nin_cifar10", "--runs", "3", "--interval-ms", "10"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("frame-paced, a run starting every 10 ms"), "{text}");
}

#[test]
fn bench_profiles_steps_by_the_clock_asked_for() {
    let out = incept(&["bench", "nin_cifar10", "--runs", "2", "--profile", "--clock", "thread-cpu"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let clock = if cfg!(any(target_os = "linux", target_os = "macos")) { "thread_cpu" } else { "wall" };
    assert!(text.contains(&format!("steps timed by the {clock} clock")) && text.contains("slowest steps"), "{text}");
    // `--clock` means nothing without `--profile`.
    let out = incept(&["bench", "nin_cifar10", "--runs", "1", "--clock", "thread-cpu"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--profile"), "{stderr}");
}

/// `--json --profile`: one JSON document, the profile's tables under `profile`, the
/// steps of its kinds adding up to the plan's.
#[test]
fn bench_json_carries_the_profile() {
    let out = incept(&["bench", "nin_cifar10", "--runs", "2", "--json", "--profile", "--clock", "thread-cpu"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_latency_distribution(&v);
    let profile = &v["profile"];
    let clock = if cfg!(any(target_os = "linux", target_os = "macos")) { "thread_cpu" } else { "wall" };
    assert_eq!(profile["clock"], clock, "{profile}");
    let kinds = profile["kinds"].as_array().unwrap_or_else(|| panic!("kinds in {profile}"));
    for kind in kinds {
        for key in ["kind", "steps", "ms", "percent", "gflops"] {
            assert!(!kind[key].is_null(), "{key} in {kind}");
        }
    }
    let info = incept(&["info", "nin_cifar10", "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let steps: u64 = kinds.iter().map(|k| k["steps"].as_u64().unwrap()).sum();
    assert_eq!(steps, plan["steps"].as_u64().unwrap(), "{profile}");
    let slowest = profile["slowest_steps"].as_array().unwrap_or_else(|| panic!("slowest_steps in {profile}"));
    assert!(!slowest.is_empty() && slowest.len() as u64 <= steps, "{profile}");
    for step in slowest {
        for key in ["name", "kind", "ms", "gflops"] {
            assert!(!step[key].is_null(), "{key} in {step}");
        }
    }
    let ms: Vec<f64> = slowest.iter().map(|s| s["ms"].as_f64().unwrap()).collect();
    assert!(ms.windows(2).all(|w| w[0] >= w[1]), "slowest first: {ms:?}");
    // Frame-paced: every step after the gap against straight after, in plan order.
    let out = incept(&["bench", "nin_cifar10", "--runs", "2", "--interval-ms", "5", "--json", "--profile"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    let paced = v["profile"]["steps"].as_array().unwrap_or_else(|| panic!("steps in {v}"));
    assert_eq!(paced.len() as u64, steps, "{v}");
    assert_eq!((paced[0]["kind"].as_str(), v["profile"]["pairs"].as_u64()), (Some("input"), Some(2)), "{v}");
    for key in ["name", "idle_ms", "warm_ms", "diff_ms", "cum_diff_ms"] {
        assert!(paced.iter().all(|s| s[key].is_number() || s[key].is_string()), "{key} in {v}");
    }
    // Without `--profile`, no profile key.
    let out = incept(&["bench", "nin_cifar10", "--runs", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.get("profile").is_none(), "{v}");
}

#[test]
fn bench_rejects_a_bad_interval() {
    for bad in ["0", "-33", "abc", "1e9"] {
        let out = incept(&["bench", "nin_cifar10", "--runs", "1", "--interval-ms", bad]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--interval-ms {bad} was accepted");
        assert!(stderr.starts_with("error: ") && stderr.contains("--interval-ms"), "{bad}: {stderr}");
        assert!(!stderr.contains("panicked") && out.stdout.is_empty(), "{bad}: {stderr}");
    }
}

#[test]
fn idle_worker_threads_sleep() {
    let out = incept(&["bench", "googlenet", "--runs", "3", "--threads", "2", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // A spinning pool burns ~1 core per thread; sleeping threads burn ~0. Ticks are
    // 10 ms, so 0.1 over 500 ms allows a few ticks of noise.
    let idle = v["idle_cpu_fraction"].as_f64().expect("measured on Linux");
    assert!(idle < 0.1, "the process used {idle:.2} of a core while idle");
}

#[test]
fn bad_input_is_a_one_line_error() {
    assert_clean_error(&incept(&["info", "inception_v9"]), "unknown model 'inception_v9'");
    assert_clean_error(&incept(&["bench", "nin_cifar10", "--runs", "0"]), "--runs");
    assert_clean_error(&incept(&["bench", "nin_cifar10", "--threads", "0"]), "threads");
    assert_clean_error(&incept(&["info", "nin_cifar10", "--batch", "0"]), "batch");

    let missing = tmp("does-not-exist.npy");
    let out = tmp("never-written.npy");
    let run = |input: &Path| {
        incept(&["run", "nin_cifar10", "--input", input.to_str().unwrap(), "--output", out.to_str().unwrap()])
    };
    assert_clean_error(&run(&missing), "cannot open");

    let wrong_shape = tmp("wrong-shape.npy");
    write_npy(&wrong_shape, &[1, 3, 31, 32], &vec![0.0; 3 * 31 * 32]);
    assert_clean_error(&run(&wrong_shape), "takes [N, 3, 32, 32]");

    let garbage = tmp("garbage.npy");
    std::fs::write(&garbage, b"this is not an npy file").unwrap();
    assert_clean_error(&run(&garbage), "not a valid .npy");

    let truncated = tmp("truncated.npy");
    write_npy(&truncated, &[1, 3, 32, 32], &vec![0.0; 3 * 32 * 32]);
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    assert_clean_error(&run(&truncated), "truncated");
    assert!(!out.exists(), "no output is written when the run fails");

    // The input is never overwritten.
    let input = tmp("keep-me.npy");
    write_npy(&input, &[1, 3, 32, 32], &vec![0.25; 3 * 32 * 32]);
    let before = std::fs::read(&input).unwrap();
    let same = input.to_str().unwrap();
    assert_clean_error(&incept(&["run", "nin_cifar10", "--input", same, "--output", same]), "refusing to overwrite");
    assert_eq!(std::fs::read(&input).unwrap(), before);
}

#[test]
fn convert_writes_a_model_file_that_run_info_and_bench_accept() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let onnx = fixtures.join("inception_module.onnx");
    let input = fixtures.join("inception_module.input.npy");
    let (onnx, input) = (onnx.to_str().unwrap(), input.to_str().unwrap());
    let converted = tmp("inception_module.incept");
    let _ = std::fs::remove_file(&converted);
    let file = converted.to_str().unwrap();

    let out = incept(&["convert", onnx, "-o", file]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("checked"));

    // The converted file gives exactly what the .onnx gives.
    let (from_onnx, from_file) = (tmp("from-onnx.npy"), tmp("from-file.npy"));
    for (model, output) in [(onnx, &from_onnx), (file, &from_file)] {
        let out = incept(&["run", model, "--input", input, "--output", output.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(read_npy(&from_onnx), read_npy(&from_file));

    let out = incept(&["info", file, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["checksums_verified"], true);
    assert!(v["mapped_weight_bytes"].as_u64().unwrap() > 0);
    assert_eq!(v["mapped_weight_bytes"], v["weight_bytes"]);

    let out = incept(&["bench", file, "--runs", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["load_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(v["mapped_weight_bytes"], v["weight_bytes"]);

    // An existing file is kept unless --force; the source is never overwritten.
    let before = std::fs::read(&converted).unwrap();
    assert_clean_error(&incept(&["convert", onnx, "-o", file, "--packing", "plain"]), "exists (pass --force");
    assert_eq!(std::fs::read(&converted).unwrap(), before);
    assert_clean_error(&incept(&["convert", file, "-o", file, "--force"]), "refusing to overwrite the source");
    let out = incept(&["convert", onnx, "-o", file, "--packing", "plain", "--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = incept(&["run", file, "--input", input, "--output", from_file.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("repacked"), "a note says the file was repacked");
    assert_eq!(read_npy(&from_onnx), read_npy(&from_file));

    // A damaged file is a one-line error naming it.
    let mut bytes = std::fs::read(&converted).unwrap();
    bytes.truncate(bytes.len() - 1);
    std::fs::write(&converted, bytes).unwrap();
    assert_clean_error(&incept(&["info", file]), "truncated");
    assert_clean_error(&incept(&["convert", onnx, "-o", file, "--arch", "x"]), "exists");
    let st = tmp("weights.safetensors");
    std::fs::write(&st, b"").unwrap();
    let st_out = tmp("st.incept");
    assert_clean_error(&incept(&["convert", st.to_str().unwrap(), "-o", st_out.to_str().unwrap()]), "--arch");
    let out = incept(&["convert", st.to_str().unwrap(), "-o", st_out.to_str().unwrap(), "--arch", "googlenet"]);
    assert_clean_error(&out, "weights.safetensors");
    assert!(!st_out.exists(), "nothing is written when the source cannot be read");
}

#[test]
fn batches_no_arena_can_hold_are_errors_naming_the_bytes() {
    for batch in ["100000000", "18446744073709551615"] {
        let out = incept(&["bench", "nin_cifar10", "--batch", batch, "--runs", "1"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "batch {batch}: {err}");
        assert!(err.starts_with("error: ") && err.contains(" bytes") && !err.contains("panicked"), "{err}");
        assert!(err.contains(&format!("batch {batch}")), "{err}");
    }
}

#[test]
fn more_threads_than_cores_run_with_a_note() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores + 2).to_string();
    let out = incept(&["bench", "nin_cifar10", "--runs", "1", "--threads", &threads]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("note: ") && l.contains("cores")).count(), 1, "{err}");
}

#[test]
fn info_ops_lists_every_operator_and_every_refusal() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/unsupported_group.onnx");
    let out = incept(&["info", "--ops", "--json", model.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["nodes"], 4);
    assert_eq!(v["ops"]["Conv"], serde_json::json!({"supported": 1, "unsupported": 1}));
    assert_eq!(v["ops"]["GlobalAveragePool"], serde_json::json!({"after an unsupported node": 1}));
    let refusals = v["unsupported"].as_array().unwrap();
    assert_eq!(refusals.len(), 1);
    assert!(refusals[0].as_str().unwrap().contains("'dw_conv' (Conv) at opset 17: attribute group=2"), "{refusals:?}");
}

#[test]
fn nhwc_models_show_their_layout_and_run_on_their_own_input_shape() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exports");
    let model = dir.join("keras_inception_v3_small_nhwc.onnx");
    let out = incept(&["info", model.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("input        [1, 35, 35, 3] NHWC"));
    let (input, output) = (dir.join("keras_inception_v3_small_nhwc.input.npy"), tmp("nhwc-out.npy"));
    let out = incept(&[
        "run",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read_npy(&output).0, "(1, 10)");
    let nchw = tmp("nchw-in.npy");
    write_npy(&nchw, &[1, 3, 35, 35], &vec![0.0; 3 * 35 * 35]);
    let out = incept(&[
        "run",
        model.to_str().unwrap(),
        "--input",
        nchw.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("takes [N, 35, 35, 3] (NHWC)"), "{err}");
}

#[test]
fn precision_bf16_runs_the_direct_convolutions_in_bf16_and_matches_the_library() {
    let out = incept(&["info", "nin_cifar10", "--json", "--steps", "--precision", "bf16"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["precision"], "bf16");
    let list = v["step_list"].as_array().unwrap();
    for s in list {
        let bf16 = s["algorithm"] == "bf16 direct" || s["algorithm"] == "bf16 from_image";
        assert_eq!(s["precision"], if bf16 { "bf16" } else { "f32" }, "{s}");
    }
    assert_eq!(list[1]["algorithm"], "bf16 from_image", "the image convolution by its BF16 kernel");
    assert!(list.iter().filter(|s| s["precision"] == "bf16").count() > 0);

    let model = incept::Model::builtin("nin_cifar10").unwrap();
    let options = incept::SessionOptions { precision: Some(incept::Precision::Bf16), ..Default::default() };
    let mut session = model.session(options).unwrap();
    let [_, c, h, w] = session.input_shape();
    let x = common::input(c * h * w, 9);
    let mut want = vec![0.0; session.output_len()];
    session.run(&x, &mut want).unwrap();
    let (input, output) = (tmp("bf16-in.npy"), tmp("bf16-out.npy"));
    write_npy(&input, &[1, c, h, w], &x);
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
    let out = incept(&["run", "nin_cifar10", "--input", i, "--output", o, "--precision", "bf16"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read_npy(&output).1, want);

    let out = incept(&["bench", "nin_cifar10", "--runs", "2", "--json", "--precision", "bf16"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["precision"], "bf16");
    assert!(v["bf16_tier"].is_string());
    let out = incept(&["run", "nin_cifar10", "--input", i, "--output", o, "--precision", "f16"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("unknown precision 'f16' (f32, bf16, bf16x3)"), "{stderr}");
}

#[test]
fn convert_at_bf16_writes_a_file_that_runs_at_bf16_only() {
    convert_writes_a_file_that_runs_only_at("bf16");
}

#[test]
fn convert_at_bf16x3_writes_a_file_that_runs_at_bf16x3_only() {
    convert_writes_a_file_that_runs_only_at("bf16x3");
}

/// `incept convert --precision p`: the file runs at `p` by default, as the .onnx
/// asked for `p` does, maps all its weights, and refuses float32.
fn convert_writes_a_file_that_runs_only_at(p: &str) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let (onnx, input) = (fixtures.join("inception_module.onnx"), fixtures.join("inception_module.input.npy"));
    let (onnx, input) = (onnx.to_str().unwrap(), input.to_str().unwrap());
    let converted = tmp(&format!("inception_module.{p}.incept"));
    let _ = std::fs::remove_file(&converted);
    let file = converted.to_str().unwrap();
    let out = incept(&["convert", onnx, "-o", file, "--precision", p]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("precision {p}, checked")));

    // The file runs at its precision by default, exactly as the .onnx does when asked for it.
    let (from_onnx, from_file) = (tmp(&format!("{p}-from-onnx.npy")), tmp(&format!("{p}-from-file.npy")));
    let out = incept(&["run", onnx, "--input", input, "--output", from_onnx.to_str().unwrap(), "--precision", p]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = incept(&["run", file, "--input", input, "--output", from_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read_npy(&from_onnx), read_npy(&from_file));

    let out = incept(&["info", file, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["precision"], p);
    assert_eq!(v["mapped_weight_bytes"], v["weight_bytes"]);
    let f32_out = tmp(&format!("{p}-as-f32.npy"));
    let out = incept(&["run", file, "--input", input, "--output", f32_out.to_str().unwrap(), "--precision", "f32"]);
    assert_clean_error(&out, &format!("runs only at precision {p}"));
    assert!(!f32_out.exists());
}

#[test]
fn precision_bf16x3_splits_the_convolutions_bf16_rounds_but_the_image() {
    let out = incept(&["info", "nin_cifar10", "--json", "--steps", "--precision", "bf16x3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["precision"], "bf16x3");
    let list = v["step_list"].as_array().unwrap();
    for s in list {
        let split = s["algorithm"] == "bf16x3 direct";
        assert_eq!(s["precision"], if split { "bf16x3" } else { "f32" }, "{s}");
    }
    assert_eq!(list[1]["algorithm"], "from_image", "the image convolution stays float32");
    assert!(list.iter().filter(|s| s["precision"] == "bf16x3").count() > 0);
}

/// `incept ... | head -1` once `head` has its line: every subcommand that prints, with
/// its stdout a pipe whose reader has gone, ends by SIGPIPE as `cat` or `seq` do,
/// without a panic or an error message (`run` prints nothing: it writes a file).
#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_every_printing_subcommand_by_sigpipe_quietly() {
    use std::os::unix::process::ExitStatusExt;

    let onnx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inception_module.onnx");
    let onnx = onnx.to_str().unwrap();
    let image = tmp("pipe.png");
    image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 99])).save(&image).unwrap();
    let converted = tmp("pipe.incept");
    let commands: [&[&str]; 8] = [
        &["models"],
        &["info", "nin_cifar10", "--steps"],
        &["info", "nin_cifar10", "--json"],
        &["info", onnx, "--ops"],
        &["bench", "nin_cifar10", "--runs", "2"],
        &["peak", "nin_cifar10", "--rounds", "1"],
        &["classify", image.to_str().unwrap(), "--model", "nin_cifar10"],
        &["convert", onnx, "-o", converted.to_str().unwrap(), "--force"],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = common::incept_command().args(args).stdout(writer).output().expect("the incept binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{args:?}: {}; stderr: {stderr}", out.status);
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}
