//! The `incept` command-line tool: inspect, run and benchmark models.

mod bench;
mod classify;
mod convert;
mod heap;
mod npy;
mod peak;
mod peak_bf16;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use incept::plan::PlannedStep;
use incept::{Model, Precision, Session, SessionOptions, models};
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
        /// Also list every planned step with its algorithm and precision.
        #[arg(long)]
        steps: bool,
        /// Convolution precision: `f32`, `bf16` (BF16 operands, float32 sums) or
        /// `bf16x3` (split operands, near float32; see docs/bf16.md). Default: the
        /// model's own (f32, or that of a model file converted at another).
        #[arg(long)]
        precision: Option<Precision>,
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
        /// Convolution precision: `f32`, `bf16` (BF16 operands, float32 sums) or
        /// `bf16x3` (split operands, near float32; see docs/bf16.md). Default: the
        /// model's own (f32, or that of a model file converted at another).
        #[arg(long)]
        precision: Option<Precision>,
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
        /// Interleaved rounds per layer (the fastest are reported): default 8, or 31
        /// with `--winograd`.
        #[arg(long)]
        rounds: Option<usize>,
        /// Instead, time each layer by the direct kernel twice, interleaved: with the
        /// drivers assuming the L2 the CPU reports, and assuming this many KiB.
        #[arg(long, value_name = "KIB")]
        l2_kib: Option<usize>,
        /// Instead, time each layer on the best BF16 and float32 tiers (direct, one
        /// thread, thread CPU time), as shares of the BF16 and FMA peaks.
        #[arg(long)]
        bf16: bool,
    },
    /// Measure load time and latency (p50, p90, p99, max) on a synthetic input, back to
    /// back or frame-paced.
    Bench(bench::Args),
    /// Classify JPEG/PNG images: print each one's top classes and probabilities.
    Classify(classify::Args),
    /// Convert a .onnx file or a .safetensors checkpoint to an incept model file.
    Convert(convert::Args),
}

fn main() -> ExitCode {
    die_quietly_on_a_closed_stdout();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `incept info ... | head -3`: once the reader has gone, the next write ends the
/// process by SIGPIPE (the shell reports 141), as it ends `cat`, `seq` or `yes`: no
/// message, no work nobody reads, and `set -o pipefail` still sees that the output
/// was cut short. Rust starts programs with SIGPIPE ignored, which turns that write
/// into an error and `println!` into a panic.
#[cfg(unix)]
fn die_quietly_on_a_closed_stdout() {
    // SAFETY: the first thing `main` does, before any other thread exists; SIG_DFL is
    // a valid disposition for SIGPIPE and no handler of ours is replaced.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

#[cfg(not(unix))]
fn die_quietly_on_a_closed_stdout() {}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Models => {
            for m in models::BUILTIN {
                println!("{:<22} {}", m.name, m.summary);
            }
            Ok(())
        }
        Command::Info { model, ops: true, json, .. } => onnx_ops(&model, json),
        Command::Info { model, batch, json, steps, precision, .. } => info(&model, batch, json, steps, precision),
        Command::Peak { model, all_tiers, json, winograd, rounds, l2_kib, bf16 } => {
            let graph = models::build(&model).map_err(|e| e.to_string())?;
            if let Some(kib) = l2_kib {
                peak::compare_l2(&graph, rounds.unwrap_or(15), kib, json)
            } else if bf16 {
                peak_bf16::run(&graph, json)
            } else if winograd {
                peak::compare_winograd(&graph, rounds.unwrap_or(31), json)
            } else {
                peak::run(&graph, all_tiers, rounds.unwrap_or(peak::PEAK_ROUNDS), json)
            }
        }
        Command::Run { model, input, output, threads, precision } => {
            run_model(&model, &input, &output, threads, precision)
        }
        Command::Bench(args) => bench::run(&args),
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

fn session(model: &Model, batch: usize, threads: usize, precision: Option<Precision>) -> Result<Session, String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads > cores {
        eprintln!("note: {threads} threads on {cores} cores: threads will share cores");
    }
    model.session(SessionOptions { batch, threads, precision, ..Default::default() }).map_err(|e| e.to_string())
}

/// The precision a session runs at and, for BF16, its tier: `f32`, `bf16 (avx512bf16)`.
fn precision_name(s: &Session) -> String {
    match s.bf16_tier() {
        Some(tier) => format!("{} ({})", s.precision(), tier.name()),
        None => s.precision().to_string(),
    }
}

/// `len` floats for a buffer the user sized (by `--batch`): an error naming the
/// bytes when the allocator refuses, not an abort.
fn buffer(len: usize, what: &str) -> Result<Vec<f32>, String> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| format!("cannot allocate {} bytes for the {what}", len.saturating_mul(4)))?;
    v.resize(len, 0.0);
    Ok(v)
}

fn info(name: &str, batch: usize, as_json: bool, list_steps: bool, precision: Option<Precision>) -> Result<(), String> {
    let model = load(name, true)?;
    let s = session(&model, batch, 1, precision)?;
    let program = model.program_at(s.precision()).map_err(|e| e.to_string())?;
    let weights = &program.tensors;
    let weight_bytes = weights.bytes();
    let (g, plan) = (model.graph(), s.plan());
    let ops: serde_json::Map<String, serde_json::Value> =
        g.op_counts().into_iter().map(|(k, n)| (k.to_string(), json!(n))).collect();
    let algorithm = |s: &PlannedStep| s.algorithm().map_or_else(String::new, |a| a.to_string());
    // Every step but a BF16 convolution computes in float32.
    let step_precision = |s: &PlannedStep| s.algorithm().map_or(Precision::F32, |a| a.precision());
    if as_json {
        let mut v = json!({
            "model": name,
            "params": g.param_count(),
            "macs": g.macs(),
            "batch": batch,
            "input_shape": s.input_shape(),
            "input_layout": s.input_layout().name(),
            "output_shape": s.output_shape(),
            "precision": s.precision().name(),
            "bf16_tier": s.bf16_tier().map(|t| t.name()),
            "arena_bytes": plan.arena_bytes(),
            "arena_lower_bound_bytes": plan.lower_bound_bytes(),
            "steps": plan.steps.len(),
            "concat_copies": plan.copies(),
            "weight_bytes": weight_bytes,
            "mapped_weight_bytes": weights.mapped_bytes(),
            "checksums_verified": model.load_info().is_some_and(|i| i.verified),
            "ops": ops,
        });
        if list_steps {
            let list = plan.steps.iter().map(|s| {
                json!({"name": s.name, "kind": s.kind_name(), "algorithm": algorithm(s), "precision": step_precision(s).name()})
            });
            v["step_list"] = list.collect();
        }
        println!("{v:#}");
    } else {
        let mib = |b: usize| b as f64 / (1 << 20) as f64;
        println!("model        {name}");
        println!("params       {}", g.param_count());
        println!("macs         {:.3} G per image", g.macs() as f64 / 1e9);
        println!("input        {:?} {}", s.input_shape(), s.input_layout().name());
        println!("output       {:?}", s.output_shape());
        println!("precision    {}", precision_name(&s));
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
        for s in plan.steps.iter().filter(|_| list_steps) {
            println!("  {:<22} {:<22} {:<5} {}", s.kind_name(), algorithm(s), step_precision(s).name(), s.name);
        }
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

fn run_model(
    name: &str,
    input: &Path,
    output: &Path,
    threads: usize,
    precision: Option<Precision>,
) -> Result<(), String> {
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
    let mut s = session(&model, batch, threads, precision)?;
    let mut y = buffer(s.output_len(), "output")?;
    s.run(&x, &mut y).map_err(|e| e.to_string())?;
    npy::write_f32(output, &s.output_shape(), &y)
}
