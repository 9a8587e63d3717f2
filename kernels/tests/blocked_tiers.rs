//! Pooling and the fully connected layer on every tier against the reference:
//! windows with padding on any side, ceil mode, both divisor conventions and
//! padding with a value per channel, channel
//! counts off the 16-lane block; each on one thread and split over three.

mod support;

use incept_kernels::bands::split_image;
use incept_kernels::linear::linear;
use incept_kernels::parallel::{ParallelFor, Sequential};
use incept_kernels::pool::{PoolKind, global_avg_pool, pool};
use support::{ThreeThreads, band_splits, to_layout, view_bands, write_bands};

use incept_kernels::{
    Activation, ConvGeometry, Dims, Image, ImageMut, Kernels, Layout, Padding, PoolGeometry, RowSplit, Tier, reference,
    tier_calls,
};

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Runs `fast` and `reference` (both given NCHW16c views) and compares every lane,
/// padding lanes included, within `tol(reference value, lane index)`.
fn compare(
    din: Dims,
    dout: Dims,
    x: &[f32],
    fast: impl Fn(Image, &mut ImageMut),
    slow: impl Fn(Image, &mut ImageMut),
    tol: impl Fn(usize) -> f32,
    what: &str,
) {
    let l = Layout::Nchw16c;
    let xb = to_layout(x, din, Layout::Nchw16c);
    let (mut a, mut b) = (vec![f32::NAN; l.image_len(dout)], vec![f32::NAN; l.image_len(dout)]);
    fast(Image::new(&xb, din, l), &mut ImageMut::new(&mut a, dout, l));
    slow(Image::new(&xb, din, l), &mut ImageMut::new(&mut b, dout, l));
    for (i, (u, v)) in a.iter().zip(&b).enumerate() {
        assert!((u - v).abs() <= tol(i), "{what}: element {i}: fast {u}, reference {v}");
    }
}

#[test]
fn pooling_and_linear_on_every_tier() {
    let geoms = pool_geometries();
    let pars: [&dyn ParallelFor; 2] = [&Sequential, &ThreeThreads];
    for (tier, par) in Tier::available().into_iter().flat_map(|t| pars.map(|p| (t, p))) {
        let k = Kernels::new(tier).unwrap();
        let calls = tier_calls(tier);
        for (gi, g) in geoms.iter().enumerate() {
            for &(c, h, w) in &[(1, 1, 1), (16, 5, 7), (19, 8, 8), (48, 17, 17), (35, 6, 13)] {
                let din = Dims::new(c, h, w);
                let Some((oh, ow)) = g.output_hw(h, w) else { continue };
                let dout = Dims::new(c, oh, ow);
                let x = data(din.volume(), (gi * 131 + c * 7 + h) as u64);
                let what = format!("{tier:?} {g:?} {din:?} on {} thread(s)", par.threads());
                compare(
                    din,
                    dout,
                    &x,
                    |i, o| pool(&k, i.into(), g, PoolKind::Max, &mut o.into(), par),
                    |i, o| reference::max_pool(i, g, o),
                    |_| 0.0,
                    &what,
                );
                for (cip, relu) in [(true, false), (false, false), (true, true), (false, true)] {
                    // Sums of at most 25 values in [-1, 1] in another order, then one division.
                    let tol = |_| 27.0 * f32::EPSILON;
                    let kind = PoolKind::Avg { count_include_pad: cip, relu };
                    let fast = |i: Image, o: &mut ImageMut| pool(&k, i.into(), g, kind, &mut o.into(), par);
                    let slow = |i: Image, o: &mut ImageMut| {
                        reference::avg_pool(i, g, cip, o);
                        if relu {
                            o.data.iter_mut().for_each(|v| *v = v.max(0.0));
                        }
                    };
                    compare(din, dout, &x, fast, slow, tol, &what);
                }
                // Padding with a value per channel, in [-2, 2]: sums of at most 25
                // values, one of them the padding's multiple, then one division.
                let pad: Vec<f32> = data(c, c as u64 + 5).iter().map(|v| 2.0 * v).collect();
                for relu in [false, true] {
                    let tol = |_| 27.0 * 2.0 * f32::EPSILON;
                    let kind = PoolKind::AvgPadded { pad: &pad, relu };
                    let fast = |i: Image, o: &mut ImageMut| pool(&k, i.into(), g, kind, &mut o.into(), par);
                    let slow = |i: Image, o: &mut ImageMut| {
                        reference::avg_pool_padded(i, g, &pad, o);
                        if relu {
                            o.data.iter_mut().for_each(|v| *v = v.max(0.0));
                        }
                    };
                    compare(din, dout, &x, fast, slow, tol, &format!("{what} padded with values"));
                }
            }
        }
        for &(c, h, w) in &[(1, 1, 1), (20, 3, 5), (2048, 8, 8)] {
            let din = Dims::new(c, h, w);
            let x = data(din.volume(), c as u64);
            let tol = |_| (h * w + 2) as f32 * f32::EPSILON;
            let what = format!("{tier:?} gap {din:?} on {} thread(s)", par.threads());
            compare(
                din,
                Dims::new(c, 1, 1),
                &x,
                |i, o| global_avg_pool(&k, i.into(), o, par),
                reference::global_avg_pool,
                tol,
                &what,
            );
        }
        for &(ci, co) in &[(1, 1), (17, 5), (2048, 1000), (1536, 33)] {
            let din = Dims::new(ci, 1, 1);
            let (x, wt, b) = (data(ci, 1), data(ci * co, 2), data(co, 3));
            let tol = |_| (ci + 2) as f32 * f32::EPSILON;
            for act in [Activation::None, Activation::Relu] {
                let what = format!("{tier:?} linear {ci}->{co} {act:?} on {} thread(s)", par.threads());
                let fast = |i: Image, o: &mut ImageMut| linear(&k, i, &wt, &b, act, o, par);
                let slow = |i: Image, o: &mut ImageMut| reference::linear(i, &wt, Some(&b), act, o);
                compare(din, Dims::new(co, 1, 1), &x, fast, slow, tol, &what);
            }
        }
        assert!(tier_calls(tier) > calls, "{tier:?} did not run");
    }
}

/// The pools' geometries: padding on any side, ceil mode, strides 1 to 3.
fn pool_geometries() -> Vec<PoolGeometry> {
    vec![
        PoolGeometry::new(3, 1, 1, false),
        PoolGeometry::new(3, 2, 0, false),
        PoolGeometry::new(3, 2, 0, true),
        PoolGeometry::new(2, 2, 1, true),
        PoolGeometry::new(5, 3, 2, true),
        PoolGeometry {
            window: ConvGeometry {
                kh: 3,
                kw: 2,
                stride_h: 2,
                stride_w: 1,
                pad: Padding { top: 1, left: 0, bottom: 0, right: 1 },
            },
            ceil_mode: true,
        },
    ]
}

/// Pooling, global pooling and reordering of images in bands (input and output
/// split alike, or the input into one band more) give the same bits as one band:
/// the same sums in the same order.
#[test]
fn bands_match_one_band_on_every_tier() {
    let l = Layout::Nchw16c;
    let pars: [&dyn ParallelFor; 2] = [&Sequential, &ThreeThreads];
    for (tier, par) in Tier::available().into_iter().flat_map(|t| pars.map(|p| (t, p))) {
        let k = Kernels::new(tier).unwrap();
        for (gi, g) in pool_geometries().iter().enumerate() {
            for &(c, h, w) in &[(16, 5, 7), (19, 8, 8), (48, 17, 17), (35, 6, 13), (3, 2, 4)] {
                let din = Dims::new(c, h, w);
                let Some((oh, ow)) = g.output_hw(h, w) else { continue };
                let dout = Dims::new(c, oh, ow);
                let xb = to_layout(&data(din.volume(), (gi * 131 + c * 7 + h) as u64), din, Layout::Nchw16c);
                let pad: Vec<f32> = data(c, c as u64 + 5);
                let kinds = [
                    PoolKind::Max,
                    PoolKind::Avg { count_include_pad: true, relu: false },
                    PoolKind::Avg { count_include_pad: false, relu: true },
                    PoolKind::AvgPadded { pad: &pad, relu: true },
                ];
                for kind in kinds {
                    let mut want = vec![f32::NAN; l.image_len(dout)];
                    pool(
                        &k,
                        Image::new(&xb, din, l).into(),
                        g,
                        kind,
                        &mut (&mut ImageMut::new(&mut want, dout, l)).into(),
                        par,
                    );
                    for (in_split, out_split) in band_splits(h, oh) {
                        let parts = split_image(Image::new(&xb, din, l), in_split);
                        let got = write_bands(dout, l, out_split, |out| {
                            pool(&k, view_bands(&parts, din, l, in_split), g, kind, out, par)
                        });
                        let what = format!("{tier:?} {g:?} {kind:?} {din:?} in {in_split:?} -> {out_split:?}");
                        assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{what}");
                    }
                }
                let mut want = vec![f32::NAN; l.image_len(Dims::new(c, 1, 1))];
                let out = &mut ImageMut::new(&mut want, Dims::new(c, 1, 1), l);
                global_avg_pool(&k, Image::new(&xb, din, l).into(), out, par);
                for (in_split, _) in band_splits(h, 1) {
                    let parts = split_image(Image::new(&xb, din, l), in_split);
                    let mut got = vec![f32::NAN; want.len()];
                    let out = &mut ImageMut::new(&mut got, Dims::new(c, 1, 1), l);
                    global_avg_pool(&k, view_bands(&parts, din, l, in_split), out, par);
                    assert!(
                        got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{tier:?} gap {in_split:?}"
                    );
                }
            }
        }
    }
    // Reordering: NCHW to blocked and back, between any splits.
    for &(c, h, w) in &[(3, 5, 7), (16, 2, 3), (35, 4, 4), (3, 9, 9)] {
        let d = Dims::new(c, h, w);
        let x = data(d.volume(), c as u64);
        let want = to_layout(&x, d, Layout::Nchw16c);
        for (in_split, out_split) in band_splits(h, h).into_iter().chain([(RowSplit::whole(h), RowSplit::even(h, 2))]) {
            let parts = split_image(Image::new(&x, d, Layout::Nchw), in_split);
            let got = write_bands(d, l, out_split, |out| {
                incept_kernels::blocked::reorder_bands(
                    view_bands(&parts, d, Layout::Nchw, in_split),
                    out,
                    &ThreeThreads,
                )
            });
            assert_eq!(got, want, "to blocked, {d:?} in {in_split:?} -> {out_split:?}");
            let parts = split_image(Image::new(&want, d, l), out_split);
            let back = write_bands(d, Layout::Nchw, in_split, |out| {
                incept_kernels::blocked::reorder_bands(view_bands(&parts, d, l, out_split), out, &ThreeThreads)
            });
            assert_eq!(back, x, "back to NCHW, {d:?} in {out_split:?} -> {in_split:?}");
        }
    }
}

#[test]
fn fma_peak_is_measurable_on_every_tier() {
    for tier in Tier::available() {
        let k = Kernels::new(tier).unwrap();
        let g = incept_kernels::peak::fma_peak_gflops(&k, 0.05);
        eprintln!("{tier:?}: {g:.1} GFLOP/s");
        assert!(g > 0.5 && g < 1e5, "{tier:?}: implausible peak {g}");
    }
}

#[test]
fn reorder_matches_the_reference_copy_both_ways() {
    let pars: [&dyn ParallelFor; 2] = [&Sequential, &ThreeThreads];
    for (&(c, h, w), par) in
        [(1, 1, 1), (3, 5, 7), (16, 2, 3), (35, 4, 4), (3, 9, 9)].iter().flat_map(|s| pars.map(|p| (s, p)))
    {
        let d = Dims::new(c, h, w);
        let x = data(d.volume(), c as u64);
        let want = to_layout(&x, d, Layout::Nchw16c);
        let mut got = vec![f32::NAN; Layout::Nchw16c.image_len(d)];
        let src = Image::new(&x, d, Layout::Nchw);
        incept_kernels::blocked::reorder(src, &mut ImageMut::new(&mut got, d, Layout::Nchw16c), par);
        assert_eq!(got, want, "to blocked, {d:?} (padding lanes included)");
        let mut back = vec![f32::NAN; d.volume()];
        incept_kernels::blocked::reorder(
            Image::new(&got, d, Layout::Nchw16c),
            &mut ImageMut::new(&mut back, d, Layout::Nchw),
            par,
        );
        assert_eq!(back, x, "back to NCHW, {d:?}");
    }
}
