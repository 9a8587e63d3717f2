//! `incept classify`: JPEG and PNG decoding, per-image results, batching, and an
//! unreadable image reported by name without stopping the others.

mod common;

use std::path::PathBuf;
use std::process::Output;

use image::{Rgb, RgbImage};

fn incept(args: &[&str]) -> Output {
    common::incept_command().args(args).output().expect("the incept binary runs")
}

/// A JPEG, a corrupt "JPEG" and a PNG, written to a temporary directory of the test's own.
fn images(test: &str) -> [String; 3] {
    let dir = std::env::temp_dir().join(format!("incept-classify-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| -> PathBuf { dir.join(name) };
    let gradient = RgbImage::from_fn(320, 240, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    gradient.save(path("gradient.jpg")).unwrap();
    let stripes = RgbImage::from_fn(50, 90, |x, _| if x % 10 < 5 { Rgb([250, 20, 20]) } else { Rgb([10, 10, 200]) });
    stripes.save(path("stripes.png")).unwrap();
    let mut corrupt = std::fs::read(path("gradient.jpg")).unwrap();
    corrupt.truncate(200);
    corrupt[150..].fill(0x5a);
    std::fs::write(path("corrupt.jpg"), corrupt).unwrap();
    ["gradient.jpg", "corrupt.jpg", "stripes.png"].map(|n| path(n).display().to_string())
}

/// The result blocks on stdout: (image line, its indented result lines).
fn results(out: &Output) -> Vec<(String, Vec<String>)> {
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        match line.strip_prefix("  ") {
            Some(r) => blocks.last_mut().expect("a result line after an image line").1.push(r.trim().to_string()),
            None => blocks.push((line.to_string(), Vec::new())),
        }
    }
    blocks
}

#[test]
fn classifies_the_readable_images_and_names_the_corrupt_one() {
    let [jpg, corrupt, png] = images("classify");
    let out = incept(&["classify", &jpg, &corrupt, &png, "--model", "googlenet", "--top", "3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a corrupt image must make the exit code non-zero");
    assert!(stderr.contains(&format!("error: {corrupt}:")), "{stderr}");
    assert!(!stderr.contains(&jpg) && !stderr.contains(&png), "{stderr}");
    assert!(stderr.contains("1 of 3 images could not be read"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let blocks = results(&out);
    assert_eq!(blocks.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(), [jpg.as_str(), png.as_str()]);
    let labels = incept::labels::imagenet();
    for (image, lines) in &blocks {
        assert_eq!(lines.len(), 3, "{image}: {lines:?}");
        let mut last = f64::INFINITY;
        for line in lines {
            // "12.345%  label (index)"
            let (pct, rest) = line.split_once("%  ").unwrap_or_else(|| panic!("{line}"));
            let pct: f64 = pct.trim().parse().unwrap();
            assert!((0.0..=100.0).contains(&pct) && pct <= last, "{line}");
            last = pct;
            let (label, index) = rest.rsplit_once(" (").unwrap();
            let index: usize = index.trim_end_matches(')').parse().unwrap();
            assert_eq!(labels[index], label);
        }
    }
}

#[test]
fn batches_give_the_same_results_as_single_images() {
    let [jpg, _, png] = images("batches");
    let single = incept(&["classify", &jpg, &png, &jpg, "--model", "nin_cifar10", "--top", "2"]);
    assert!(single.status.success(), "{}", String::from_utf8_lossy(&single.stderr));
    let batched = incept(&["classify", &jpg, &png, &jpg, "--model", "nin_cifar10", "--top", "2", "--batch", "2"]);
    assert!(batched.status.success(), "{}", String::from_utf8_lossy(&batched.stderr));
    assert_eq!(String::from_utf8_lossy(&single.stdout), String::from_utf8_lossy(&batched.stdout));
    let blocks = results(&single);
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[0], blocks[2]);
    for (_, lines) in &blocks {
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| incept::labels::CIFAR10.iter().any(|c| l.contains(&format!("  {c} (")))));
    }
}

#[test]
fn the_embedding_model_prints_its_norm() {
    let [_, _, png] = images("embedding");
    let out = incept(&["classify", &png, "--model", "inception_resnet_v1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let blocks = results(&out);
    assert_eq!(blocks.len(), 1);
    assert!(blocks[0].1[0].starts_with("embedding: 512 values, L2 norm "), "{:?}", blocks[0].1);
}

#[test]
fn a_missing_image_and_bad_options_are_errors() {
    let out = incept(&["classify", "/nonexistent/cat.jpg", "--model", "nin_cifar10"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("error: /nonexistent/cat.jpg: "), "{stderr}");
    let [jpg, _, _] = images("options");
    for (args, needle) in [
        (vec!["--model", "nope"], "unknown model 'nope'"),
        (vec!["--model", "nin_cifar10", "--top", "0"], "--top must be at least 1"),
        (vec!["--model", "nin_cifar10", "--preprocess", "vgg"], "unknown preprocessing 'vgg'"),
        (vec!["--model", "nin_cifar10", "--preprocess", "googlenet"], "takes [3, 32, 32] input"),
    ] {
        let out = incept(&[&["classify", jpg.as_str()], &args[..]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn a_converted_model_file_classifies_like_the_built_in_model() {
    let [jpg, corrupt, png] = images("converted");
    let file = std::path::Path::new(&jpg).with_file_name("googlenet.incept");
    let graph = incept::models::build("googlenet").unwrap();
    let weights = incept::weights::Weights::synthetic(&graph, incept::SYNTHETIC_SEED);
    incept::format::write(&graph, &weights, &file, Default::default(), &mut |_, _| {}).unwrap();
    let run = |model: &str| incept(&["classify", &jpg, &corrupt, &png, "--model", model, "--top", "5"]);
    let (builtin, converted) = (run("googlenet"), run(file.to_str().unwrap()));
    assert_eq!(results(&converted).len(), 2, "{}", String::from_utf8_lossy(&converted.stderr));
    assert_eq!(results(&converted), results(&builtin));
    assert!(!converted.status.success() && String::from_utf8_lossy(&converted.stderr).contains(&corrupt));
}

#[test]
fn classify_runs_at_bf16_and_rejects_an_unknown_precision() {
    let [jpg, _, png] = images("bf16");
    let args = ["classify", &jpg, &png, "--model", "nin_cifar10", "--top", "3", "--precision", "bf16"];
    let bf16 = incept(&args);
    assert!(bf16.status.success(), "{}", String::from_utf8_lossy(&bf16.stderr));
    let blocks = results(&bf16);
    assert_eq!(blocks.len(), 2);
    assert!(blocks.iter().all(|(_, lines)| lines.len() == 3));
    let bad = incept(&["classify", &jpg, "--model", "nin_cifar10", "--precision", "fp16"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("unknown precision 'fp16'"));
}
