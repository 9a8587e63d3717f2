//! The fuzz targets' checks on plain `cargo test` (stable): each target's check runs
//! over its checked-in seeds (`fuzz/seeds/<target>/`, decoded exactly as libFuzzer
//! decodes them) and over a few thousand inputs decoded from a fixed pseudo-random
//! byte stream. The checks themselves live in `fuzz_cases/checks.rs`, which the
//! cargo-fuzz targets include too; see `fuzz/README.md`.

#[path = "fuzz_cases/checks.rs"]
mod checks;

use arbitrary::{Arbitrary, Unstructured};

/// Decodes an input the way `fuzz_target!` does.
fn decode<T: for<'a> Arbitrary<'a>>(bytes: &[u8]) -> T {
    T::arbitrary_take_rest(Unstructured::new(bytes)).expect("every input decodes")
}

/// `n` inputs of `len` bytes from a fixed SplitMix64 stream.
fn random_inputs<T: for<'a> Arbitrary<'a>>(seed: u64, n: usize, len: usize) -> Vec<T> {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..n).map(|_| decode(&(0..len).map(|_| next() as u8).collect::<Vec<u8>>())).collect()
}

/// The checked-in seeds of `target`.
fn seeds<T: for<'a> Arbitrary<'a>>(target: &str) -> Vec<T> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| f.expect("directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files.iter().map(|f| decode(&std::fs::read(f).expect("seed file"))).collect()
}

#[test]
fn conv_tiers_match_the_reference() {
    let cases = seeds("conv").into_iter().chain(random_inputs(1, 4000, 32));
    cases.for_each(|c| checks::conv::check(&c));
}

#[test]
fn bf16_conv_tiers_match_the_bf16_reference() {
    use incept_kernels::bf16::{Bf16Kernels, Bf16Tier};
    let mut kernels: Vec<_> = Bf16Tier::available().into_iter().filter_map(Bf16Kernels::new).collect();
    kernels.push(Bf16Kernels::amx_emulated());
    let names: Vec<_> = kernels.iter().map(|k| k.conv_name()).collect();
    let cases = seeds("conv").into_iter().chain(random_inputs(4, 1500, 32));
    cases.for_each(|c| assert_eq!(checks::conv_bf16::check(&c), names, "the BF16 kernels run"));
    eprintln!("BF16 kernels checked: {names:?}");
}

#[test]
fn pooling_and_epilogues_agree_across_layouts() {
    let cases = seeds("pool").into_iter().chain(random_inputs(2, 3000, 32));
    cases.for_each(|c| checks::pool::check(&c));
}

#[test]
fn planned_graphs_match_the_interpreter_and_keep_live_buffers_apart() {
    let cases = seeds("planner").into_iter().chain(random_inputs(3, 3000, 64));
    cases.for_each(|c| checks::planner::check(&c));
}

/// The raw seed files of a byte-level target.
fn seed_bytes(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|f| f.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// Each seed, and `n` copies of it with one to four bytes changed or cut short,
/// from a fixed xorshift stream.
fn mutated(seeds: Vec<Vec<u8>>, n: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    seeds.into_iter().flat_map(move |seed| {
        let mut cases = vec![seed.clone()];
        for _ in 0..n {
            let mut b = seed.clone();
            for _ in 0..1 + next() % 4 {
                // Mostly the structural bytes at the front, where the checks are.
                let span = if next() % 4 == 0 { b.len() } else { b.len().min(4096) };
                let i = (next() as usize) % span.max(1);
                match next() % 8 {
                    0 => b.truncate(i),
                    1 => b[i] = b[i].wrapping_add(1),
                    _ => b[i] = next() as u8,
                }
                if b.is_empty() {
                    break;
                }
            }
            cases.push(b);
        }
        cases
    })
}

/// Mutations per seed: fewer under emulation (`INCEPT_TEST_MODELS=small`).
fn mutations() -> usize {
    if std::env::var("INCEPT_TEST_MODELS").as_deref() == Ok("small") { 50 } else { 400 }
}

#[test]
fn model_files_from_mutated_bytes_load_or_fail_cleanly() {
    mutated(seed_bytes("model_file"), mutations()).for_each(|b| checks::files::model_file(&b));
}

#[test]
fn onnx_files_from_mutated_bytes_import_or_fail_cleanly() {
    mutated(seed_bytes("onnx"), mutations()).for_each(|b| checks::files::onnx(&b));
}

#[test]
fn safetensors_files_from_mutated_bytes_load_or_fail_like_the_reference_reader() {
    mutated(seed_bytes("safetensors"), mutations()).for_each(|b| checks::files::safetensors(&b));
}

/// Found by the planner target: a value placed in a concatenation and copied into
/// an enclosing one (`concat([concat([a, c]), a])`) made `Session::run` panic ("plan
/// bug: step 'copy a -> concat_3@32' reads 0..256, which overlaps what it writes")
/// while the copy's output view was the whole outer concat, which holds the inner
/// one, although the channels read (0..16) and written (32..48) are disjoint.
#[test]
fn nested_concat_copy() {
    use incept::graph::{ConvSpec, Dims, GraphBuilder};
    use incept::interpret::interpret;
    use incept::{Model, SessionOptions, weights::Weights};
    let mut b = GraphBuilder::new("nested_concat_copy", Dims::new(3, 4, 4));
    let x = b.input();
    let a = b.conv(x, "a", ConvSpec::new(16, 1));
    let c = b.conv(x, "c", ConvSpec::new(16, 1));
    let inner = b.concat(&[a, c]);
    let outer = b.concat(&[inner, a]);
    let graph = b.finish(outer).unwrap();
    let weights = Weights::synthetic(&graph, 1);
    let mut session = Model::new(&graph, &weights).unwrap().session(SessionOptions::default()).unwrap();
    let input = vec![0.5; session.input_len()];
    let mut y = vec![0.0; session.output_len()];
    session.run(&input, &mut y).unwrap();
    let want = interpret(&graph, &weights, &input, 1).unwrap();
    assert!(y.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-5 * (1.0 + b.abs())));
}
