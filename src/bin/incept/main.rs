//! The `incept` command-line tool: inspect, run and benchmark models.

mod classify;
mod convert;
mod heap;
mod npy;
mod peak;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use incept::{Model, Session, SessionOptions, models};
use serde_json::json;

// Counts heap bytes, so `bench` can report what a loaded model keeps on the heap.
#[global_allocator]
static HEAP: heap::Tracking = heap::Tracking;

#[derive(Parser)]
#[command(name = "incept", version, about = "Run the Inception family of CNNs on the CPU")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the built-in models.
    Models,
    /// Parameters, multiply-adds, arena size and operator counts of a model.
    Info {
        /// A built-in model name (see `incept models`), a model file or a .onnx file.
        model: String,
        /// Images per run the arena is planned for.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// For a .onnx file: every operator with supported / folded / unsupported
        /// (all that blocks the model at once, not only the first refusal).
        #[arg(long)]
        ops: bool,
    },
    /// Run a model on a float32 .npy input and write the output as .npy.
    Run {
        /// A built-in model name, a model file or a .onnx file.
        model: String,
        /// Input: float32 in the model's input shape (`incept info`), `[N, C, H, W]`
        /// or `[N, H, W, C]` (without N for one image).
        #[arg(long)]
        input: PathBuf,
        /// Output file; written only when the run succeeds.
        #[arg(long)]
        output: PathBuf,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Measure the FMA peak per core and each convolution layer's share of it.
    Peak {
        /// A built-in model whose convolution layers to time.
        #[arg(default_value = "inception_v3")]
        model: String,
        /// Time the layers on every tier, not only the widest.
        #[arg(long)]
        all_tiers: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Instead, time each layer a Winograd scheme computes (3x3, 1x3, 3x1, 1x7, 7x1
        /// stride 1) by the direct kernel and by Winograd, interleaved, on the widest tier (or `INCEPT_TIER`).
        #[arg(long)]
        winograd: bool,
        /// Interleaved rounds per layer with `--winograd` (the fastest are reported).
        #[arg(long, default_value_t = 31)]
        rounds: usize,
    },
    /// Measure load time and latency on a synthetic input.
    Bench {
        /// A built-in model name, a model file or a .onnx file.
        #[arg(default_value = "inception_v3")]
        model: String,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Timed runs (after one warm-up run).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Images per run.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Also time every step and print where the time goes.
        #[arg(long)]
        profile: bool,
    },
    /// Classify JPEG/PNG images: print each one's top classes and probabilities.
    Classify(classify::Args),
    /// Convert a .onnx file or a .safetensors checkpoint to an incept model file.
    Convert(convert::Args),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Models => {
            for m in models::BUILTIN {
                println!("{:<22} {}", m.name, m.summary);
            }
            Ok(())
        }
        Command::Info { model, ops: true, json, .. } => onnx_ops(&model, json),
        Command::Info { model, batch, json, .. } => info(&model, batch, json),
        Command::Peak { model, all_tiers, json, winograd, rounds } => {
            let graph = models::build(&model).map_err(|e| e.to_string())?;
            if winograd { peak::compare_winograd(&graph, rounds, json) } else { peak::run(&graph, all_tiers, json) }
        }
        Command::Run { model, input, output, threads } => run_model(&model, &input, &output, threads),
        Command::Bench { model, threads, runs, batch, json, profile } => {
            bench(&model, threads, runs, batch, json, profile)
        }
        Command::Classify(args) => classify::run(&args),
        Command::Convert(args) => convert::run(&args),
    }
}

/// A built-in model or a model file; a file's tensors that had to be repacked are
/// reported on stderr (`incept convert` writes the packing the kernels read).
fn load(name: &str, verify: bool) -> Result<Model, String> {
    let model = if verify && Path::new(name).is_file() { Model::open_verified(name) } else { Model::load(name) };
    let model = model.map_err(|e| e.to_string())?;
    if let Some(info) = model.load_info().filter(|i| !i.repacked.is_empty()) {
        eprintln!(
            "note: {name}: repacked {} tensors stored in another packing than the kernels' \
             (`incept convert` writes the native packing)",
            info.repacked.len()
        );
    }
    Ok(model)
}

fn session(model: &Model, batch: usize, threads: usize) -> Result<Session, String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads > cores {
        eprintln!("note: {threads} threads on {cores} cores: threads will share cores");
    }
    model.session(SessionOptions { batch, threads, ..Default::default() }).map_err(|e| e.to_string())
}

/// `len` floats for a buffer the user sized (by `--batch`): an error naming the
/// bytes when the allocator refuses, not an abort.
fn buffer(len: usize, what: &str) -> Result<Vec<f32>, String> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| format!("cannot allocate {} bytes for the {what}", len.saturating_mul(4)))?;
    v.resize(len, 0.0);
    Ok(v)
}

fn info(name: &str, batch: usize, as_json: bool) -> Result<(), String> {
    let model = load(name, true)?;
    let weights = &model.program().tensors;
    let weight_bytes = weights.bytes();
    let s = session(&model, batch, 1)?;
    let (g, plan) = (model.graph(), s.plan());
    let ops: serde_json::Map<String, serde_json::Value> =
        g.op_counts().into_iter().map(|(k, n)| (k.to_string(), json!(n))).collect();
    if as_json {
        let v = json!({
            "model": name,
            "params": g.param_count(),
            "macs": g.macs(),
            "batch": batch,
            "input_shape": s.input_shape(),
            "input_layout": s.input_layout().name(),
            "output_shape": s.output_shape(),
            "arena_bytes": plan.arena_bytes(),
            "arena_lower_bound_bytes": plan.lower_bound_bytes(),
            "steps": plan.steps.len(),
            "concat_copies": plan.copies(),
            "weight_bytes": weight_bytes,
            "mapped_weight_bytes": weights.mapped_bytes(),
            "checksums_verified": model.load_info().is_some_and(|i| i.verified),
            "ops": ops,
        });
        println!("{v:#}");
    } else {
        let mib = |b: usize| b as f64 / (1 << 20) as f64;
        println!("model        {name}");
        println!("params       {}", g.param_count());
        println!("macs         {:.3} G per image", g.macs() as f64 / 1e9);
        println!("input        {:?} {}", s.input_shape(), s.input_layout().name());
        println!("output       {:?}", s.output_shape());
        println!(
            "arena        {:.2} MiB (lower bound {:.2} MiB) for batch {batch}",
            mib(plan.arena_bytes()),
            mib(plan.lower_bound_bytes())
        );
        println!("steps        {} ({} concat copies)", plan.steps.len(), plan.copies());
        match model.load_info() {
            Some(i) => println!(
                "weights      {:.2} MiB, {:.2} MiB mapped from the file, checksums {}",
                mib(weight_bytes),
                mib(i.mapped_bytes),
                if i.verified { "verified" } else { "not checked" }
            ),
            None => println!("weights      {:.2} MiB on the heap", mib(weight_bytes)),
        }
        let ops: Vec<String> = g.op_counts().iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!("ops          {}", ops.join(", "));
    }
    Ok(())
}

/// `incept info --ops`: per operator, how many nodes the importer supports, folds
/// or refuses (and those after a refusal), then every refusal's message.
fn onnx_ops(path: &str, as_json: bool) -> Result<(), String> {
    use incept::import::onnx::{NodeStatus, node_report};
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let report = node_report(&bytes).map_err(|e| format!("{path}: {e}"))?;
    let kind = |s: &NodeStatus| match s {
        NodeStatus::Supported => "supported",
        NodeStatus::Folded => "folded",
        NodeStatus::Unsupported(_) => "unsupported",
        NodeStatus::NotReached => "after an unsupported node",
    };
    let mut ops: std::collections::BTreeMap<&str, std::collections::BTreeMap<&str, usize>> = Default::default();
    for r in &report {
        *ops.entry(&r.op_type).or_default().entry(kind(&r.status)).or_default() += 1;
    }
    let refusals: Vec<&str> = report
        .iter()
        .filter_map(|r| match &r.status {
            NodeStatus::Unsupported(m) => Some(m.strip_prefix("cannot import model: ").unwrap_or(m)),
            _ => None,
        })
        .collect();
    if as_json {
        println!("{:#}", json!({ "model": path, "nodes": report.len(), "ops": ops, "unsupported": refusals }));
        return Ok(());
    }
    println!("{path}: {} nodes", report.len());
    for (op, counts) in &ops {
        let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        println!("  {op:<22} {}", counts.join(", "));
    }
    if refusals.is_empty() {
        println!("every node is supported or folded");
    }
    for m in refusals {
        println!("unsupported: {m}");
    }
    Ok(())
}

fn run_model(name: &str, input: &Path, output: &Path, threads: usize) -> Result<(), String> {
    if input.canonicalize().ok() == output.canonicalize().ok() && output.exists() {
        return Err(format!("refusing to overwrite the input file {}", input.display()));
    }
    let model = load(name, false)?;
    let (shape, x) = npy::read_f32(input)?;
    let g = model.graph();
    let [_, a, b, c] = g.input_layout.shape(1, g.dims(g.input));
    let batch = match shape[..] {
        [n, ..] if shape[1..] == [a, b, c] && n > 0 => n,
        _ if shape == [a, b, c] => 1,
        _ => {
            return Err(format!(
                "{} has shape {shape:?}; {name} takes [N, {a}, {b}, {c}] ({})",
                input.display(),
                g.input_layout.name()
            ));
        }
    };
    let mut s = session(&model, batch, threads)?;
    let mut y = buffer(s.output_len(), "output")?;
    s.run(&x, &mut y).map_err(|e| e.to_string())?;
    npy::write_f32(output, &s.output_shape(), &y)
}

fn bench(name: &str, threads: usize, runs: usize, batch: usize, as_json: bool, profile: bool) -> Result<(), String> {
    if runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let heap_before = heap::live_bytes();
    let t0 = Instant::now();
    let model = load(name, false)?;
    let mut s = session(&model, batch, threads)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let heap_after_load = heap::live_bytes().saturating_sub(heap_before);
    let heap_peak = heap::peak_bytes();
    let weights = &model.program().tensors;
    let (weight_bytes, mapped_bytes) = (weights.bytes(), weights.mapped_bytes());
    let mut x = buffer(s.input_len(), "input")?;
    for (i, x) in x.iter_mut().enumerate() {
        *x = ((i * 7919) % 2001) as f32 / 1000.0 - 1.0;
    }
    let mut y = buffer(s.output_len(), "output")?;
    let t1 = Instant::now();
    s.run(&x, &mut y).map_err(|e| e.to_string())?;
    let first_run_ms = t1.elapsed().as_secs_f64() * 1e3;
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            s.run(&x, &mut y).map(|()| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    times.sort_by(f64::total_cmp);
    let median = if runs % 2 == 1 { times[runs / 2] } else { (times[runs / 2 - 1] + times[runs / 2]) / 2.0 };
    let gmacs = model.graph().macs() as f64 * batch as f64 / 1e9;
    let idle = idle_cpu_fraction(std::time::Duration::from_millis(500));
    if as_json {
        let v = json!({
            "model": name, "threads": threads, "batch": batch, "runs": runs, "tier": s.tier().name(),
            "load_ms": load_ms, "first_run_ms": first_run_ms, "median_ms": median, "min_ms": times[0],
            "heap_after_load_bytes": heap_after_load, "heap_peak_bytes": heap_peak, "arena_bytes": s.plan().arena_bytes(),
            "weight_bytes": weight_bytes, "mapped_weight_bytes": mapped_bytes,
            "gflops_median": 2.0 * gmacs / (median / 1e3),
            "idle_cpu_fraction": idle,
        });
        println!("{v:#}");
    } else {
        println!(
            "{name}: load {load_ms:.1} ms, median {median:.2} ms, min {:.2} ms over {runs} runs ({:.1} GFLOP/s), batch {batch}, {threads} thread(s), {} kernels",
            times[0],
            2.0 * gmacs / (median / 1e3),
            s.tier().name()
        );
        let mib = |b: usize| b as f64 / (1 << 20) as f64;
        println!(
            "memory: heap after load {:.1} MiB (arena {:.1} MiB); weights {:.1} MiB, {:.1} MiB of them mapped; first run {first_run_ms:.1} ms",
            mib(heap_after_load),
            mib(s.plan().arena_bytes()),
            mib(weight_bytes),
            mib(mapped_bytes)
        );
        if let Some(idle) = idle {
            println!("idle between runs: the process used {:.1}% of one core", 100.0 * idle);
        }
    }
    if profile {
        print_profile(&mut s, &x, &mut y, runs)?;
    }
    Ok(())
}

/// CPU time the whole process burns while the session sits idle for `wait`, as a
/// fraction of one core (a spinning worker pool would show ~1 per thread). Linux only.
fn idle_cpu_fraction(wait: std::time::Duration) -> Option<f64> {
    fn cpu_seconds() -> Option<f64> {
        // utime and stime, fields 14 and 15 of /proc/self/stat, in clock ticks (100 Hz).
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
        let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    }
    let before = cpu_seconds()?;
    std::thread::sleep(wait);
    Some((cpu_seconds()? - before) / wait.as_secs_f64())
}

/// Runs `runs` more times with per-step timing and prints time by operator kind and
/// the slowest steps, with their GFLOP/s.
fn print_profile(s: &mut Session, x: &[f32], y: &mut [f32], runs: usize) -> Result<(), String> {
    s.set_profiling(true);
    for _ in 0..runs {
        s.run(x, y).map_err(|e| e.to_string())?;
    }
    let steps = s.profile();
    s.set_profiling(false);
    let total: f64 = steps.iter().map(|p| p.seconds).sum();
    let gflops = |macs: u64, secs: f64| if secs > 0.0 { 2.0 * macs as f64 / secs / 1e9 } else { 0.0 };
    let mut kinds: Vec<(String, f64, u64, usize)> = Vec::new();
    for p in &steps {
        match kinds.iter_mut().find(|k| k.0 == p.kind) {
            Some(k) => (k.1, k.2, k.3) = (k.1 + p.seconds, k.2 + p.macs, k.3 + 1),
            None => kinds.push((p.kind.clone(), p.seconds, p.macs, 1)),
        }
    }
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("\n{:<28} {:>6} {:>9} {:>6} {:>8}", "kind", "steps", "ms", "%", "GFLOP/s");
    for (kind, secs, macs, n) in &kinds {
        println!("{kind:<28} {n:>6} {:>9.3} {:>5.1}% {:>8.1}", secs * 1e3, 100.0 * secs / total, gflops(*macs, *secs));
    }
    let mut slow: Vec<_> = steps.iter().collect();
    slow.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    println!("\n{:<48} {:<20} {:>9} {:>8}", "slowest steps", "kind", "ms", "GFLOP/s");
    for p in slow.iter().take(15) {
        println!("{:<48} {:<20} {:>9.3} {:>8.1}", p.name, p.kind, p.seconds * 1e3, gflops(p.macs, p.seconds));
    }
    Ok(())
}
