//! Full against factorized convolutions on the papers' real shapes (Szegedy et al.,
//! "Rethinking the Inception Architecture", 2015, sections 3.1 and 3.2): each pair
//! maps the same input to the same output shape, one way with a large window and
//! the other with a chain of smaller ones, on the widest tier this CPU runs,
//! through `conv::conv2d` on NCHW16c buffers, every layer with a fused ReLU.
//!
//! Throughput is in floating-point operations (two per multiply-add), so criterion's
//! `Gelem/s` reads as GFLOP/s. After criterion, one line per pair compares medians
//! of a plain timing loop alternating the two sides: `pair: full X ms, factorized Y ms, speed-up S (arithmetic
//! ratio R)`, where R is the ratio of floating-point operations, the speed-up a
//! kernel running every shape at the same GFLOP/s would show.
//!
//! `cargo bench --bench factorized`

mod common;

use common::{Chain, ConvLayer, chain_flops, paired_medians_ms};
use criterion::{Criterion, SamplingMode, Throughput};
use incept_kernels::{ConvGeometry, Kernels, Padding, Tier};

/// A `kh x kw` window, stride `s`, `ph` rows and `pw` columns of padding per side.
const fn g(kh: usize, kw: usize, s: usize, ph: usize, pw: usize) -> ConvGeometry {
    ConvGeometry::new(kh, kw, s, Padding::symmetric(ph, pw))
}

/// One input and output shape computed by a large window (`full`) and by one or
/// more factorizations of it.
struct Family {
    /// Criterion group name.
    id: &'static str,
    /// The full convolution, for the report.
    name: &'static str,
    full: Vec<ConvLayer>,
    /// `(bench id, description, layers)`.
    factorized: Vec<(&'static str, &'static str, Vec<ConvLayer>)>,
}

fn families() -> Vec<Family> {
    let l = ConvLayer::new;
    let seven = |c7| vec![l(768, c7, (17, 17), g(1, 7, 1, 0, 3)), l(c7, 192, (17, 17), g(7, 1, 1, 3, 0))];
    vec![
        // Mixed_6b..e (17x17): the 7x7 branch goes 768 -> c7 -> 192 through 1x7 then
        // 7x1, with c7 = 128 (6b), 160 (6c, 6d), 192 (6e); a full 7x7 maps 768 -> 192.
        Family {
            id: "7x7_17x17_768-192",
            name: "7x7 768-192",
            full: vec![l(768, 192, (17, 17), g(7, 7, 1, 3, 3))],
            factorized: vec![
                ("1x7_7x1_mid128", "1x7+7x1 768-128-192 (Mixed_6b)", seven(128)),
                ("1x7_7x1_mid160", "1x7+7x1 768-160-192 (Mixed_6c, 6d)", seven(160)),
                ("1x7_7x1_mid192", "1x7+7x1 768-192-192 (Mixed_6e)", seven(192)),
            ],
        },
        // Mixed_5b..d (35x35). No real layer pair shares both ends, so two pairings,
        // each keeping the input and output channels: the 5x5 branch's real layer
        // (48 -> 64) against two 3x3 with the same channels (the paper's figure 1),
        // and the double-3x3 branch's real layers (64 -> 96 -> 96) against one 5x5
        // 64 -> 96.
        Family {
            id: "5x5_35x35_48-64",
            name: "5x5 48-64",
            full: vec![l(48, 64, (35, 35), g(5, 5, 1, 2, 2))],
            factorized: vec![(
                "3x3_3x3",
                "3x3+3x3 48-64-64 (Mixed_5 branch5x5)",
                vec![l(48, 64, (35, 35), g(3, 3, 1, 1, 1)), l(64, 64, (35, 35), g(3, 3, 1, 1, 1))],
            )],
        },
        Family {
            id: "5x5_35x35_64-96",
            name: "5x5 64-96",
            full: vec![l(64, 96, (35, 35), g(5, 5, 1, 2, 2))],
            factorized: vec![(
                "3x3_3x3",
                "3x3+3x3 64-96-96 (Mixed_5 branch3x3dbl)",
                vec![l(64, 96, (35, 35), g(3, 3, 1, 1, 1)), l(96, 96, (35, 35), g(3, 3, 1, 1, 1))],
            )],
        },
        // Mixed_7b/c (8x8): 3x3 as 1x3 then 3x1, 384 -> 384 -> 384 (the 384-wide
        // branches of the expanded-filter-bank module, chained here).
        Family {
            id: "3x3_8x8_384-384",
            name: "3x3 384-384",
            full: vec![l(384, 384, (8, 8), g(3, 3, 1, 1, 1))],
            factorized: vec![(
                "1x3_3x1",
                "1x3+3x1 384-384-384 (Mixed_7)",
                vec![l(384, 384, (8, 8), g(1, 3, 1, 0, 1)), l(384, 384, (8, 8), g(3, 1, 1, 1, 0))],
            )],
        },
        // The stem: v3's three 3x3 (3 -> 32 stride 2, 32 -> 32, 32 -> 64 padded) take
        // 299x299 to 64 x 147x147; a single 7x7/2 without padding gives the same shape
        // (GoogLeNet's 7x7/2 pads 3, which would give 150x150).
        Family {
            id: "stem_299_3-64",
            name: "7x7/2 3-64 (stem)",
            full: vec![l(3, 64, (299, 299), g(7, 7, 2, 0, 0))],
            factorized: vec![(
                "3x3s2_3x3_3x3",
                "3x3/2+3x3+3x3 3-32-32-64 (v3 stem)",
                vec![
                    l(3, 32, (299, 299), g(3, 3, 2, 0, 0)),
                    l(32, 32, (149, 149), g(3, 3, 1, 0, 0)),
                    l(32, 64, (147, 147), g(3, 3, 1, 1, 1)),
                ],
            )],
        },
    ]
}

fn bench(c: &mut Criterion, kernels: Kernels, families: &[Family]) {
    for f in families {
        let mut group = c.benchmark_group(format!("factorized/{}", f.id));
        group.sample_size(10).sampling_mode(SamplingMode::Flat);
        group.warm_up_time(std::time::Duration::from_millis(500));
        group.measurement_time(std::time::Duration::from_secs(2));
        let sides = std::iter::once(("full", &f.full)).chain(f.factorized.iter().map(|(id, _, l)| (*id, l)));
        for (name, layers) in sides {
            let mut chain = Chain::new(kernels, layers, 1);
            group.throughput(Throughput::Elements(chain_flops(layers)));
            group.bench_function(name, |b| b.iter(|| chain.run()));
            std::hint::black_box(chain.output());
        }
        group.finish();
    }
}

/// Prints one line per pair from the medians of a plain timing loop that alternates
/// the two sides.
fn report(kernels: Kernels, families: &[Family]) {
    println!("\nfactorized vs full, {} kernels (median of a timing loop):", kernels.conv_name());
    for f in families {
        let mut full = Chain::new(kernels, &f.full, 1);
        for (_, name, layers) in &f.factorized {
            let mut fact = Chain::new(kernels, layers, 1);
            let (full_ms, fact_ms) = paired_medians_ms(|| full.run(), || fact.run());
            let ratio = chain_flops(&f.full) as f64 / chain_flops(layers) as f64;
            println!(
                "{} vs {name} at {}x{}: full {full_ms:.3} ms, factorized {fact_ms:.3} ms, speed-up {:.2} (arithmetic ratio {ratio:.2})",
                f.name,
                f.full[0].h,
                f.full[0].w,
                full_ms / fact_ms
            );
        }
    }
}

fn main() {
    let kernels = Kernels::new(Tier::best()).expect("the best tier is available");
    let families = families();
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, kernels, &families);
    c.final_summary();
    // `--list` and `--test` (what `cargo test --benches` passes) run no timing.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--list" || a == "--test") {
        report(kernels, &families);
    }
}
