//! `incept-tract-bench`: tract as a peer in `scripts/peers.py`.
//!
//! Mirrors `incept bench MODEL.onnx --json` for the fields peers.py reads (`load_ms`,
//! `median_ms`, `min_ms`, `threads`): loads the .onnx file with tract-onnx, fixes the
//! input to float32 [1, 3, H, W], optimises it, warms up once, times `--runs` runs and
//! prints JSON (or one line) with the output checksum. With `--input x.npy --check
//! ref.npy` it also reports tract's error against a reference output (float32 or
//! float64): max |out - ref| and max |ref|.
//!
//! Build (minutes on 2 cores; not part of the engine's workspace or CI):
//!
//! ```sh
//! cargo build --release --manifest-path peers/tract/Cargo.toml
//! peers/tract/target/release/incept-tract-bench target/models/googlenet.onnx --runs 10 --json
//! ```

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use serde_json::json;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::{TractErrorContext, bail, ensure};
use tract_onnx::tract_core::runtime::RunOptions;
use tract_onnx::tract_core::tract_linalg::multithread::Executor;
use tract_onnx::tract_hir::infer::Factoid;

/// The tract-onnx version this binary was built against (Cargo.lock pins it).
const TRACT_VERSION: &str = "0.23.9";

#[derive(Parser)]
#[command(about = "Benchmark an .onnx model under tract, like `incept bench --json`")]
struct Args {
    /// The .onnx file.
    model: PathBuf,
    /// Timed runs after one warm-up run.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Threads. 1 is tract's default (single-threaded); more sets tract's opt-in
    /// executor (`RunOptions::executor`, tract-linalg's `multithread-mm`): a rayon pool
    /// of that size for matrix products (so convolutions), packing, max pooling and
    /// element-wise ops; the rest of the graph stays on the calling thread.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Input shape N,C,H,W (default: the model's input shape, batch 1).
    #[arg(long, value_delimiter = ',', value_name = "N,C,H,W")]
    input_shape: Option<Vec<usize>>,
    /// Input .npy (float32); default: incept bench's deterministic input pattern.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Reference output .npy (float32 or float64) to compare with; needs --input.
    #[arg(long, requires = "input")]
    check: Option<PathBuf>,
    /// Print JSON instead of one line.
    #[arg(long)]
    json: bool,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> TractResult<()> {
    ensure!(args.runs >= 1, "--runs must be at least 1");
    ensure!(args.threads >= 1, "--threads must be at least 1");
    let input_npy = args.input.as_deref().map(read_npy).transpose()?;

    let t0 = Instant::now();
    let model = tract_onnx::onnx()
        .model_for_path(&args.model)
        .with_context(|| format!("tract cannot load {}", args.model.display()))?;
    let shape: Vec<usize> = match (&args.input_shape, &input_npy) {
        (Some(s), _) => s.clone(),
        (None, Some((s, _))) => s.clone(),
        (None, None) => model_input_shape(&model)?,
    };
    ensure!(shape.len() == 4 && shape[0] == 1, "input shape {shape:?} is not [1, C, H, W]; give --input-shape 1,3,H,W");
    if let Some((s, _)) = &input_npy {
        ensure!(*s == shape, "--input holds shape {s:?}, not {shape:?}");
    }
    let model = model.with_input_fact(0, f32::fact(&shape).into())?.into_optimized()?;
    let options =
        RunOptions { executor: (args.threads > 1).then(|| Executor::multithread(args.threads)), ..Default::default() };
    let plan = model.into_runnable_with_options(&options)?;
    let mut state = plan.spawn()?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;

    let n: usize = shape.iter().product();
    let values = match input_npy {
        Some((_, v)) => v.into_iter().map(|x| x as f32).collect(),
        // The same pattern as `incept bench`.
        None => (0..n).map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0).collect::<Vec<f32>>(),
    };
    let input = Tensor::from_shape(&shape, &values)?.into_tvalue();

    let mut outputs = state.run(tvec!(input.clone()))?;
    let mut times = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let t = Instant::now();
        outputs = state.run(tvec!(input.clone()))?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let r = args.runs;
    let median = if r % 2 == 1 { times[r / 2] } else { (times[r / 2 - 1] + times[r / 2]) / 2.0 };

    let out = outputs[0].cast_to::<f32>()?;
    let out_shape: Vec<usize> = out.shape().to_vec();
    let out: Vec<f32> = out.to_plain_array_view::<f32>()?.iter().copied().collect();
    let checksum: f64 = out.iter().map(|&x| x as f64).sum();

    let check = match &args.check {
        Some(path) => {
            let (ref_shape, reference) = read_npy(path)?;
            ensure!(
                ref_shape.iter().product::<usize>() == out.len(),
                "{} holds shape {ref_shape:?}, tract's output is {out_shape:?}",
                path.display()
            );
            let max_abs_err = out.iter().zip(&reference).map(|(&y, &r)| (y as f64 - r).abs()).fold(0.0, f64::max);
            let ref_max_abs = reference.iter().map(|r| r.abs()).fold(0.0, f64::max);
            Some((path.display().to_string(), max_abs_err, ref_max_abs))
        }
        None => None,
    };

    let name = args.model.display().to_string();
    if args.json {
        let mut v = json!({
            "model": name, "engine": "tract", "tract_version": TRACT_VERSION,
            "threads": args.threads, "batch": 1, "runs": r, "tier": "tract",
            "input_shape": shape, "output_shape": out_shape,
            "load_ms": load_ms, "median_ms": median, "min_ms": times[0],
            "checksum": checksum,
        });
        if let Some((path, err, ref_max)) = &check {
            v["check"] = json!({
                "reference": path, "max_abs_err": err, "ref_max_abs": ref_max, "rel_err": err / ref_max,
            });
        }
        println!("{v:#}");
    } else {
        println!(
            "{name}: tract {TRACT_VERSION}, load {load_ms:.1} ms, median {median:.2} ms, min {:.2} ms over {r} runs, \
             {} thread(s), input {shape:?}, output {out_shape:?}, checksum {checksum:.6}",
            times[0], args.threads
        );
        if let Some((path, err, ref_max)) = &check {
            println!("vs {path}: max abs error {err:.3e}, max |ref| {ref_max:.3e}, ratio {:.3e}", err / ref_max);
        }
    }
    Ok(())
}

/// The model's first input as [1, C, H, W]: a symbolic or missing batch dimension
/// becomes 1; C, H and W must be fixed in the file.
fn model_input_shape(model: &InferenceModel) -> TractResult<Vec<usize>> {
    let fact = model.input_fact(0)?;
    let dims: Vec<Option<usize>> = fact
        .shape
        .dims()
        .map(|d| d.concretize().and_then(|d| d.as_i64()).and_then(|d| usize::try_from(d).ok()))
        .collect();
    match dims.as_slice() {
        [_, Some(c), Some(h), Some(w)] => Ok(vec![1, *c, *h, *w]),
        _ => bail!("the model's input shape is {:?}; give --input-shape 1,3,H,W", fact.shape),
    }
}

/// A C-ordered float32 or float64 .npy file: its shape and values as f64.
fn read_npy(path: &Path) -> TractResult<(Vec<usize>, Vec<f64>)> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let npy = npyz::NpyFile::new(BufReader::new(file))
        .with_context(|| format!("{} is not a valid .npy file", path.display()))?;
    ensure!(npy.order() == npyz::Order::C, "{} is in Fortran order", path.display());
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let descr = npy.dtype().descr();
    let values: Vec<f64> = match descr.trim_matches('\'') {
        "<f4" => npy.into_vec::<f32>()?.into_iter().map(f64::from).collect(),
        "<f8" => npy.into_vec::<f64>()?,
        _ => bail!("{} holds {descr} values; expected float32 or float64", path.display()),
    };
    ensure!(
        values.len() == shape.iter().product::<usize>(),
        "{}: shape {shape:?} does not match its {} values",
        path.display(),
        values.len()
    );
    Ok((shape, values))
}
