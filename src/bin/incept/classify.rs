//! `incept classify IMAGE... --model M`: decode JPEG/PNG images, preprocess them for
//! the model (`incept::preprocess`), run them in batches and print the top classes
//! (or, for an embedding model, the embedding's norm and first values).

use std::io::Write;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageReader};
use incept::preprocess::{OutputKind, PRESETS, Preprocess};
use incept::{Model, Session, SessionOptions, labels};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `incept classify`.
#[derive(clap::Args)]
pub struct Args {
    /// JPEG or PNG images.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// A built-in model name (see `incept models`) or a .onnx file.
    #[arg(long)]
    model: String,
    /// Classes to print per image.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Images per run.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Convolution precision: `f32`, `bf16` or `bf16x3` (default: the model's own).
    #[arg(long)]
    precision: Option<incept::Precision>,
    /// Preprocessing of a built-in model to use for a model file (default: chosen by
    /// the file's input size).
    #[arg(long)]
    preprocess: Option<String>,
}

pub fn run(args: &Args) -> Result<(), String> {
    if args.top == 0 {
        return Err("--top must be at least 1".into());
    }
    if args.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    let model = Model::load(&args.model).map_err(|e| e.to_string())?;
    let g = model.graph();
    let input = g.dims(g.input);
    let preset = preset_for(&args.model, args.preprocess.as_deref(), input.h)?;
    if (input.c, input.h, input.w) != (3, preset.size as usize, preset.size as usize) {
        return Err(format!(
            "{} takes [{}, {}, {}] input; the {} preprocessing makes [3, {}, {}]",
            args.model, input.c, input.h, input.w, preset.model, preset.size, preset.size
        ));
    }
    let batch = args.batch.min(args.images.len());
    let mut session = model
        .session(SessionOptions { batch, threads: args.threads, precision: args.precision, ..Default::default() })
        .map_err(|e| e.to_string())?;
    let per_image = preset.input_len();
    let classes = session.output_len() / batch;
    let mut x = vec![0.0; session.input_len()];
    let mut y = vec![0.0; session.output_len()];

    let progress = if args.images.len() > batch {
        let bar = ProgressBar::new(args.images.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} images, {elapsed} elapsed, eta {eta}")
                .expect("a valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut failed = 0;
    // The files of the images in the batch so far, in slot order.
    let mut pending: Vec<&Path> = Vec::with_capacity(batch);
    for path in &args.images {
        match decode(path) {
            Ok(image) => {
                preset.apply_into(&image, &mut x[pending.len() * per_image..(pending.len() + 1) * per_image]);
                pending.push(path);
            }
            Err(e) => {
                progress.suspend(|| eprintln!("error: {}: {e}", path.display()));
                progress.inc(1);
                failed += 1;
            }
        }
        if pending.len() == batch {
            flush(&mut session, preset, &x, &mut y, classes, &mut pending, args.top, &progress)?;
        }
    }
    if !pending.is_empty() {
        // A partial last batch: zero the unused slots (their outputs are ignored).
        x[pending.len() * per_image..].fill(0.0);
        flush(&mut session, preset, &x, &mut y, classes, &mut pending, args.top, &progress)?;
    }
    progress.finish_and_clear();
    if failed > 0 {
        return Err(format!("{failed} of {} images could not be read", args.images.len()));
    }
    Ok(())
}

/// The preprocessing for `model`: its own preset for a built-in model, `--preprocess`,
/// or for a file the built-in preset of its input size.
fn preset_for(model: &str, choice: Option<&str>, input_side: usize) -> Result<&'static Preprocess, String> {
    let names = || PRESETS.iter().map(|p| p.model).collect::<Vec<_>>().join(", ");
    match choice {
        Some(name) => {
            Preprocess::for_model(name).ok_or_else(|| format!("unknown preprocessing '{name}' (known: {})", names()))
        }
        None => Preprocess::for_model(model).or_else(|| Preprocess::for_input_size(input_side)).ok_or_else(|| {
            format!("no preprocessing for {input_side}x{input_side} input; choose one with --preprocess ({})", names())
        }),
    }
}

/// Decodes an image, recognising its format by its bytes.
fn decode(path: &Path) -> Result<DynamicImage, String> {
    let reader = ImageReader::open(path).map_err(|e| e.to_string())?;
    let reader = reader.with_guessed_format().map_err(|e| e.to_string())?;
    reader.decode().map_err(|e| e.to_string())
}

/// Runs the batch and prints one result per pending image.
#[allow(clippy::too_many_arguments)]
fn flush(
    session: &mut Session,
    preset: &Preprocess,
    x: &[f32],
    y: &mut [f32],
    classes: usize,
    pending: &mut Vec<&Path>,
    top: usize,
    progress: &ProgressBar,
) -> Result<(), String> {
    session.run(x, y).map_err(|e| e.to_string())?;
    let mut text = String::new();
    for (p, out) in pending.iter().zip(y.chunks_exact(classes)) {
        text += &format!("{}\n", p.display());
        match preset.output {
            OutputKind::Logits => {
                for (i, prob) in labels::top_classes(out, top) {
                    let label = labels::class_name(classes, i).map_or_else(|| format!("class {i}"), str::to_string);
                    text += &format!("  {:>7.3}%  {label} ({i})\n", 100.0 * prob);
                }
            }
            OutputKind::Embedding => {
                let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt();
                let first: Vec<String> = out.iter().take(8).map(|v| format!("{v:.4}")).collect();
                text += &format!("  embedding: {classes} values, L2 norm {norm:.4}, first [{}]\n", first.join(", "));
            }
        }
    }
    let written = progress.suspend(|| {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes()).and_then(|()| out.flush())
    });
    progress.inc(pending.len() as u64);
    pending.clear();
    written.map_err(|e| format!("writing the results: {e}"))
}
