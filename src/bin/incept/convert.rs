//! `incept convert SRC -o DST`: an ONNX file, or a safetensors checkpoint of a
//! built-in architecture, to an incept model file (weights folded and packed).

use std::path::{Path, PathBuf};
use std::time::Instant;

use incept::format::{self, WritePacking};
use incept::{Model, Precision, import, models};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `incept convert`.
#[derive(clap::Args)]
pub struct Args {
    /// A .onnx file, or a .safetensors state dict (with --arch).
    src: PathBuf,
    /// The model file to write.
    #[arg(short, long)]
    output: PathBuf,
    /// The built-in architecture a .safetensors checkpoint is for (see `incept models`).
    #[arg(long)]
    arch: Option<String>,
    /// Tensor layout: `native` (the kernels', mapped in place) or `plain` (row-major,
    /// repacked when loaded).
    #[arg(long, default_value = "native", value_parser = ["native", "plain"])]
    packing: String,
    /// Precision the file is lowered for: `f32`, `bf16` (the direct convolutions'
    /// weights stored rounded to BF16, half their bytes) or `bf16x3` (split into two
    /// BF16 terms, 1.5 times their bytes); the file then runs only at that
    /// precision, see docs/bf16.md.
    #[arg(long, default_value = "f32")]
    precision: Precision,
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(args: &Args) -> Result<(), String> {
    let same = |a: &Path, b: &Path| a.canonicalize().ok().zip(b.canonicalize().ok()).is_some_and(|(a, b)| a == b);
    if same(&args.src, &args.output) {
        return Err(format!("refusing to overwrite the source file {}", args.src.display()));
    }
    if args.output.exists() && !args.force {
        return Err(format!("{} exists (pass --force to replace it)", args.output.display()));
    }
    let t0 = Instant::now();
    let ext = args.src.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    let (graph, weights) = match (ext.as_deref(), &args.arch) {
        (Some("safetensors"), Some(arch)) => {
            let graph = models::build(arch).map_err(|e| e.to_string())?;
            let weights = import::load_safetensors(&args.src, &graph).map_err(|e| e.to_string())?;
            (graph, weights)
        }
        (Some("safetensors"), None) => {
            return Err("a .safetensors checkpoint needs --arch NAME (see `incept models`)".into());
        }
        (Some("onnx"), _) => import::load_onnx(&args.src).map_err(|e| e.to_string())?,
        _ => return Err(format!("{}: convert reads .onnx and .safetensors files", args.src.display())),
    };
    let packing = if args.packing == "plain" { WritePacking::Plain } else { WritePacking::Native };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("writing {}", args.output.display()));
    let info = format::write_at(&graph, &weights, &args.output, packing, args.precision, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    // Read back what was written, checksums included, before saying it worked.
    Model::open_verified(&args.output).map_err(|e| format!("the written file does not verify: {e}"))?;
    println!(
        "{}: {} tensors, {:.1} MB, {} packing, precision {}, checked ({:.2} s)",
        args.output.display(),
        info.tensors,
        info.bytes as f64 / 1e6,
        args.packing,
        args.precision,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
