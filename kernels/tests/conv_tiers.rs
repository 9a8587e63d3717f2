//! Every convolution tier this CPU runs against the reference kernel, over shape
//! families: 1x1, 3x3, 1xn / nx1, 5x5, large strided stems; channel counts off,
//! under and over the 16-lane block; widths around the pixel tile; stride 2; every
//! padding side; a residual; output into a slice of a larger buffer; reductions
//! long enough for many chunks, with a short last one; every tile shape of each
//! tier's menu (asserted to have run), and the hand-scheduled one on a 1x1 layer's
//! middle chunks; 3x1 and 7x1 windows as one long row (asserted). Besides the error
//! bound, every output must equal, bit for bit, the documented summation order
//! (chunks of [`chunk_taps`] taps) replayed in scalar code: the same order on every
//! tier. Inputs of one block also run from their NCHW image (`conv2d_image`, the
//! whole window folded into the channels): within the same bound, and bit for bit
//! the direct convolution of the folded window.

mod support;

use incept_kernels::bands::split_image;
use incept_kernels::conv::{
    Conv2d, PackedConv, chunk_taps, conv2d, conv2d_bands_scratch_len, conv2d_image, conv2d_image_scratch_len,
    conv2d_scratch_len, k_block_taps,
};
use incept_kernels::dispatch::TIERS;
use incept_kernels::pack::{ConvShape, image_folded_shape, pack_bias, pack_conv_weights, pack_conv_weights_image};
use incept_kernels::parallel::{ParallelFor, Sequential};
use incept_kernels::{
    Activation, ConvGeometry, Dims, Image, Kernels, Layout, Padding, Tier, image_chunk_calls, image_row_calls,
    long_row_calls, next_tile_asm_chunks, next_window_asm_chunks, panel_calls, prefetched_asm_chunks,
    raster_asm_chunks, tier_calls, tile_calls, window_asm_chunks, window_piece_asm_chunks,
};
use support::{
    Case, Rng, ThreeThreads, band_splits, each_output, geometries, magnitude, reference_conv, sum_tolerance, to_layout,
    view_bands, window, write_bands, write_between_sentinels,
};

/// The documented summation order of the microkernels (`TileArgs`), one output
/// at a time: taps `(ib, ky, kx)` in order, 16 lanes each (channels past `ci` are
/// zeros and change nothing), in chunks of `chunk_taps` taps that each start from
/// zero; the first chunk is added to the bias, each later one to the partial sum,
/// then the residual and the activation. `fused`: the products are fused into the
/// additions (FMA), as on the ISA-specific tiers; the portable tier rounds them first.
#[allow(clippy::too_many_arguments)]
fn replay(
    x: &[f32],
    din: Dims,
    wt: &[f32],
    shape: ConvShape,
    bias: &[f32],
    geom: &ConvGeometry,
    residual: Option<f32>,
    act: Activation,
    (o, oy, ox): (usize, usize, usize),
    fused: bool,
) -> f32 {
    let ConvShape { ci, kh, kw, .. } = shape;
    let taps = ci.div_ceil(16) * kh * kw;
    let chunk = chunk_taps(shape);
    let mut partial = 0.0f32;
    for t0 in (0..taps).step_by(chunk) {
        let mut acc = 0.0f32;
        for t in t0..(t0 + chunk).min(taps) {
            let (ib, ky, kx) = (t / (kh * kw), t / kw % kh, t % kw);
            for i in ib * 16..(ib * 16 + 16).min(ci) {
                let y = (oy * geom.stride_h + ky) as isize - geom.pad.top as isize;
                let xx = (ox * geom.stride_w + kx) as isize - geom.pad.left as isize;
                if y < 0 || xx < 0 || y >= din.h as isize || xx >= din.w as isize {
                    continue; // padding: a zero input, which adds nothing
                }
                let v = x[(i * din.h + y as usize) * din.w + xx as usize];
                let w = wt[((o * ci + i) * kh + ky) * kw + kx];
                acc = if fused { v.mul_add(w, acc) } else { acc + v * w };
            }
        }
        partial = if t0 == 0 { acc + bias[o] } else { partial + acc };
    }
    if let Some(r) = residual {
        partial += r;
    }
    if act == Activation::Relu { partial.max(0.0) } else { partial }
}

/// Runs `case` on `kernels` and checks it against the reference, element by element,
/// within the rounding error bound of a K-term float32 dot product:
/// |fast - ref| <= 2 K u sum|w x| (u = 2^-24; both sides round, in any order), and
/// for exact equality with [`replay`].
fn check(kernels: &Kernels, case: Case, rng: &mut Rng, par: &dyn ParallelFor) {
    let Case { ci, co, h, w, geom, residual, act } = case;
    let din = Dims::new(ci, h, w);
    let Some((oh, ow)) = geom.output_hw(h, w) else { return };
    let dout = Dims::new(co, oh, ow);
    let shape = ConvShape { co, ci, kh: geom.kh, kw: geom.kw };
    let [x, wt, bias, res] = rng.conv_operands(din, &geom, dout);

    // Reference, and its magnitude twin for the error bound.
    let r = residual.then_some(&res[..]);
    let want = reference_conv(&x, din, &wt, Some(&bias), &geom, r, act, dout);
    let mag = magnitude(&x, din, &wt, &bias, &geom, r, dout);
    let k = ci * geom.kh * geom.kw + 2;

    // Fast path, writing into the middle of a larger buffer full of sentinels.
    let blk = Layout::Nchw16c;
    let mut packed = Vec::new();
    pack_conv_weights(&wt, shape, &mut packed);
    let mut pbias = Vec::new();
    pack_bias(&bias, &mut pbias);
    let xin = to_layout(&x, din, blk);
    let rin = to_layout(&res, dout, blk);
    let mut scratch = vec![f32::NAN; conv2d_scratch_len(din, &geom)];
    let out = &write_between_sentinels(dout, blk, &case, |out| {
        let op = Conv2d {
            input: Image::new(&xin, din, blk).into(),
            weights: PackedConv { shape, weights: &packed, bias: &pbias },
            geom,
            residual: residual.then(|| Image::new(&rin, dout, blk).into()),
            act,
        };
        conv2d(kernels, &op, &mut out.into(), &mut scratch, par)
    });
    // In bands of rows (input and output split alike, or the input into one band
    // more): each band computed on its own, the same tiles and sums, so the same bits.
    let w = PackedConv { shape, weights: &packed, bias: &pbias };
    let same = |got: &[f32], what: &str| {
        assert!(
            got.iter().zip(out).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{} {case:?}: {what} differs from one band",
            kernels.conv_name()
        )
    };
    for (in_split, out_split) in band_splits(h, oh) {
        let in_bands = split_image(Image::new(&xin, din, blk), in_split);
        let res_bands = split_image(Image::new(&rin, dout, blk), out_split);
        let (own, per_thread) = conv2d_bands_scratch_len(din, in_split, &geom, out_split);
        let mut scratch = vec![f32::NAN; own.max(per_thread * par.threads())];
        let got = write_bands(dout, blk, out_split, |out| {
            let input = view_bands(&in_bands, din, blk, in_split);
            let res = residual.then(|| view_bands(&res_bands, dout, blk, out_split));
            conv2d(kernels, &Conv2d { input, weights: w, geom, residual: res, act }, out, &mut scratch, par)
        });
        same(&got, &format!("conv2d in {in_split:?} -> {out_split:?}"));
    }
    let fused = kernels.tier() != Tier::Portable;
    each_output(out, dout, &case, |(c, y, xx), i, got| {
        let tol = sum_tolerance(k, mag[i]);
        assert!(
            (got - want[i]).abs() <= tol,
            "{} {case:?}: at (c={c}, y={y}, x={xx}) got {got}, want {}, tolerance {tol:e}",
            kernels.conv_name(),
            want[i]
        );
        let r = residual.then(|| res[i]);
        let order = replay(&x, din, &wt, shape, &bias, &geom, r, act, (c, y, xx), fused);
        assert!(
            got == order,
            "{} {case:?}: at (c={c}, y={y}, x={xx}) got {got}, but the documented order gives {order}",
            kernels.conv_name()
        );
    });
    if ci <= 16 {
        check_image(kernels, case, [&x, &wt, &bias, &res], par);
    }
}

/// The image of `din` staged as `conv2d_image` folds it: pixel `(y, x)` of the
/// output's shape holds input `[c][y * sh + ky - pad_top][x * sw + kx - pad_left]`
/// (zero outside) in channel `(ky * kw + kx) * ci + c`, in NCHW.
fn folded_image(x: &[f32], din: Dims, geom: &ConvGeometry, (oh, ow): (usize, usize)) -> Vec<f32> {
    let (ci, kh, kw) = (din.c, geom.kh, geom.kw);
    let mut out = vec![0.0; kh * kw * ci * oh * ow];
    for ky in 0..kh {
        for kx in 0..kw {
            for c in 0..ci {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let iy = (oy * geom.stride_h + ky) as isize - geom.pad.top as isize;
                        let ix = (ox * geom.stride_w + kx) as isize - geom.pad.left as isize;
                        if iy >= 0 && (iy as usize) < din.h && ix >= 0 && (ix as usize) < din.w {
                            let lane = (ky * kw + kx) * ci + c;
                            out[(lane * oh + oy) * ow + ox] = x[(c * din.h + iy as usize) * din.w + ix as usize];
                        }
                    }
                }
            }
        }
    }
    out
}

/// An input of one block from its NCHW image (`conv2d_image`, weights in the
/// image packing): within the reference's rounding bound; bit for bit `conv2d` of
/// the folded window (1x1) over the folded image, with the folded weights packed
/// as a direct convolution's (so the folding ran); and the same bits in every band
/// split.
fn check_image(kernels: &Kernels, case: Case, [x, wt, bias, res]: [&[f32]; 4], par: &dyn ParallelFor) {
    let Case { ci, co, h, w, geom, residual, act } = case;
    let din = Dims::new(ci, h, w);
    let Some((oh, ow)) = geom.output_hw(h, w) else { return };
    let dout = Dims::new(co, oh, ow);
    let shape = ConvShape { co, ci, kh: geom.kh, kw: geom.kw };
    let r = residual.then_some(res);
    let want = reference_conv(x, din, wt, Some(bias), &geom, r, act, dout);
    let mag = magnitude(x, din, wt, bias, &geom, r, dout);
    let k = ci * geom.kh * geom.kw + 2;
    let blk = Layout::Nchw16c;
    let (mut packed, mut pbias) = (Vec::new(), Vec::new());
    pack_conv_weights_image(wt, shape, &mut packed);
    pack_bias(bias, &mut pbias);
    let w = PackedConv { shape, weights: &packed, bias: &pbias };
    let rin = to_layout(res, dout, blk);
    let mut scratch = vec![f32::NAN; conv2d_image_scratch_len(din, &geom, par.threads())];
    let out = &write_between_sentinels(dout, blk, &case, |out| {
        let op = Conv2d {
            input: Image::new(x, din, Layout::Nchw).into(),
            weights: w,
            geom,
            residual: residual.then(|| Image::new(&rin, dout, blk).into()),
            act,
        };
        conv2d_image(kernels, &op, &mut out.into(), &mut scratch, par)
    });
    let name = kernels.conv_name();
    each_output(out, dout, &case, |(c, y, xx), i, got| {
        let tol = sum_tolerance(k, mag[i]);
        assert!(
            (got - want[i]).abs() <= tol,
            "{name} {case:?}: conv2d_image at (c={c}, y={y}, x={xx}) got {got}, want {}, tolerance {tol:e}",
            want[i]
        );
    });

    // The folded convolution, as a direct one on the folded image.
    let fshape = image_folded_shape(shape);
    let fdin = Dims::new(fshape.ci, oh, ow);
    let fgeom = window(1, 1, 1, Padding::uniform(0));
    let fx = to_layout(&folded_image(x, din, &geom, (oh, ow)), fdin, blk);
    let mut fw = vec![0.0; wt.len()];
    for (n, &v) in wt.iter().enumerate() {
        let (o, c, ky, kx) =
            (n / (ci * geom.kh * geom.kw), n / (geom.kh * geom.kw) % ci, n / geom.kw % geom.kh, n % geom.kw);
        fw[o * fshape.ci + (ky * geom.kw + kx) * ci + c] = v;
    }
    let mut fpacked = Vec::new();
    pack_conv_weights(&fw, fshape, &mut fpacked);
    let mut fscratch = vec![f32::NAN; conv2d_scratch_len(fdin, &fgeom)];
    let direct = write_between_sentinels(dout, blk, &case, |out| {
        let op = Conv2d {
            input: Image::new(&fx, fdin, blk).into(),
            weights: PackedConv { shape: fshape, weights: &fpacked, bias: &pbias },
            geom: fgeom,
            residual: residual.then(|| Image::new(&rin, dout, blk).into()),
            act,
        };
        conv2d(kernels, &op, &mut out.into(), &mut fscratch, &Sequential)
    });
    assert!(
        direct.iter().zip(out).all(|(a, b)| a.to_bits() == b.to_bits()),
        "{name} {case:?}: conv2d_image differs from conv2d of the folded window"
    );

    // In bands of rows: each band computed on its own, the same bits.
    for (in_split, out_split) in band_splits(h, oh) {
        let image_bands = split_image(Image::new(x, din, Layout::Nchw), in_split);
        let res_bands = split_image(Image::new(&rin, dout, blk), out_split);
        let mut scratch = vec![f32::NAN; conv2d_image_scratch_len(din, &geom, par.threads())];
        let got = write_bands(dout, blk, out_split, |out| {
            let input = view_bands(&image_bands, din, Layout::Nchw, in_split);
            let res = residual.then(|| view_bands(&res_bands, dout, blk, out_split));
            conv2d_image(kernels, &Conv2d { input, weights: w, geom, residual: res, act }, out, &mut scratch, par)
        });
        assert!(
            got.iter().zip(out).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name} {case:?}: conv2d_image in {in_split:?} -> {out_split:?} differs from one band"
        );
    }
}

/// The shared families, and 3x3 valid, 1x3 / 3x1, the 11x11/4 stem, and a
/// stride and padding that differ between the axes.
fn conv_geometries() -> Vec<ConvGeometry> {
    let mut geometries = geometries();
    geometries.extend([
        window(3, 3, 1, Padding::uniform(0)),
        window(1, 3, 1, Padding::symmetric(0, 1)),
        window(3, 1, 1, Padding::symmetric(1, 0)),
        window(11, 11, 4, Padding::uniform(2)),
        ConvGeometry { kh: 3, kw: 1, stride_h: 2, stride_w: 1, pad: Padding { top: 2, left: 1, bottom: 0, right: 0 } },
    ]);
    geometries
}

fn sweep(kernels: &Kernels, par: &dyn ParallelFor) {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut cases = 0;
    for geom in conv_geometries() {
        for &(ci, co) in &[(1, 1), (3, 32), (16, 16), (17, 15), (32, 80), (48, 64), (7, 100)] {
            for &(h, w) in &[(1, 1), (2, 9), (5, 7), (8, 8), (13, 17), (12, 25)] {
                let residual = (ci + h) % 2 == 0;
                let act = if (co + w) % 3 == 0 { Activation::None } else { Activation::Relu };
                check(kernels, Case { ci, co, h, w, geom, residual, act }, &mut rng, par);
                cases += 1;
            }
        }
    }
    assert!(cases > 500);
}

/// Reductions of hundreds to thousands of terms: many chunks, and (asserted) some
/// with a shorter last chunk, some split inside a block's window, some reaching
/// the partial last input block, some on maps small enough that the tiles sum
/// their taps in several blocks ([`k_block_taps`]), with a shorter last block.
fn long_reductions(kernels: &Kernels, par: &dyn ParallelFor) {
    let mut rng = Rng(0x2545f4914f6cdd1d);
    let g = |kh, kw, ph, pw| ConvGeometry { kh, kw, stride_h: 1, stride_w: 1, pad: Padding::symmetric(ph, pw) };
    let cases = [
        (1000, 40, 5, 7, g(1, 1, 0, 0)),
        (4100, 17, 2, 3, g(1, 1, 0, 0)),
        (448, 64, 6, 9, g(3, 3, 1, 1)),
        (160, 48, 7, 8, g(1, 7, 0, 3)),
        (200, 33, 9, 4, g(7, 1, 3, 0)),
        (300, 20, 4, 5, g(5, 5, 2, 2)),
        // 7x1 and 5x5 in whole blocks: chunks of 3 taps that are pieces of the
        // window's columns and rows (the AVX2 tier's asm walk).
        (192, 20, 9, 5, g(7, 1, 3, 0)),
        (96, 24, 6, 7, g(5, 5, 2, 2)),
        (33, 16, 8, 8, g(3, 3, 1, 1)),
        // 1x1 in 64-channel tiles (the AVX-512 tier's hand-scheduled 4x6 shape; the
        // AVX2 tier's 1x6 per block): many middle chunks, on a large map (asserted
        // to run the hand-scheduled shape) and on a small one (blocks of taps).
        (1000, 64, 21, 22, g(1, 1, 0, 0)),
        (512, 128, 7, 9, g(1, 1, 0, 0)),
        // Long rows of 1x1 windows (418 and 437 pixels, no blocks of taps) ending in a
        // tile of 4 and of 5 pixels on the AVX2 tier, which runs those in asm too.
        (1000, 24, 22, 19, g(1, 1, 0, 0)),
        (1000, 20, 23, 19, g(1, 1, 0, 0)),
        // Small maps of rows of 7 and 8 pixels in whole blocks whose chunks are
        // window rows: one row of all the pixels, in raster tiles of 6 that cross
        // the row ends (the AVX2 tier's asm walk; asserted): 3x3/2 onto 8x8, 3x3 on
        // 7x7, 1x3 on 8x8.
        (32, 24, 17, 17, ConvGeometry { stride_h: 2, stride_w: 2, ..g(3, 3, 0, 0) }),
        (64, 20, 7, 7, g(3, 3, 1, 1)),
        (48, 16, 8, 8, g(1, 3, 0, 1)),
        // Outputs of 2 x 1 pixels: a tile of 2 would cross the row end, so no
        // raster tiles (a fuzz case's).
        (
            32,
            39,
            5,
            2,
            ConvGeometry {
                kh: 2,
                kw: 3,
                stride_h: 3,
                stride_w: 4,
                pad: Padding { top: 0, left: 1, bottom: 1, right: 1 },
            },
        ),
    ];
    let (mut short_last, mut blocked, mut short_block) = (0, 0, 0);
    let (tier, hand) = (kernels.tier(), kernels.hand_scheduled());
    let hand_calls = || hand.map_or(0, |(ob, px)| tile_calls(tier, ob, px));
    let mut hand_middle_chunks = 0;
    let short_calls = || [tile_calls(tier, 1, 4), tile_calls(tier, 1, 5)];
    let short_before = short_calls();
    for (n, &(ci, co, h, w, geom)) in cases.iter().enumerate() {
        let shape = ConvShape { co, ci, kh: geom.kh, kw: geom.kw };
        let (taps, chunk) = (ci.div_ceil(16) * geom.kh * geom.kw, chunk_taps(shape));
        assert!(taps >= 3 * chunk, "{shape:?}: {taps} taps in chunks of {chunk}");
        short_last += (taps % chunk != 0) as usize;
        let k = k_block_taps(taps, chunk, h * w).unwrap_or(taps);
        blocked += (k < taps) as usize;
        short_block += (k < taps && taps % k != 0) as usize;
        let act = if n % 2 == 0 { Activation::Relu } else { Activation::None };
        let before = hand_calls();
        check(kernels, Case { ci, co, h, w, geom, residual: n % 3 == 1, act }, &mut rng, par);
        // A 1x1 window summed in one call per tile: the hand-scheduled tile runs its
        // middle chunks in one asm block (unless it prefetches per tap).
        hand_middle_chunks += (geom.kh * geom.kw == 1 && k == taps && hand_calls() > before) as usize;
    }
    // The AVX2 tier's 1x4 and 1x5 tiles in asm, middle chunks included.
    if hand == Some((1, 6)) {
        let after = short_calls();
        assert!(after[0] > short_before[0] && after[1] > short_before[1], "no 1x4 or 1x5 tile ran a long row");
    }
    assert!(short_last >= 2, "too few cases end in a short chunk");
    assert!(blocked >= 3 && short_block >= 2, "too few cases sum in blocks of taps");
    // On one thread (more prefetch the next tile's input per tap) the AVX2 tier's
    // 1x6 tile runs a small map's blocks of taps, which prefetch the next block's
    // weights, through the same asm block.
    if hand == Some((1, 6)) && par.threads() == 1 {
        assert!(prefetched_asm_chunks(), "no k-blocked 1x1 layer's middle chunks ran in asm");
        // The 3x3 layer's chunks are its window rows: one asm block per tile.
        assert!(window_asm_chunks(), "no window's chunks ran in asm");
        // The 1x7, 7x1 and 5x5 layers' chunks are pieces of window rows or columns.
        assert!(window_piece_asm_chunks(), "no window's pieces of runs ran in asm");
        // The small maps' rows of 7 and 8 pixels in raster tiles.
        assert!(raster_asm_chunks(), "no small map's window ran in raster tiles");
    }
    // On several threads, its 1x1 layers' chunks run in asm too, prefetching the
    // next tile's input.
    if hand == Some((1, 6)) && par.threads() > 1 {
        assert!(next_tile_asm_chunks(), "no 1x1 layer's chunks ran in asm prefetching the next tile");
    }
    assert!(
        hand.is_none() || hand_middle_chunks >= 1,
        "{}: the hand-scheduled tile {hand:?} summed no 1x1 layer's middle chunks",
        kernels.conv_name()
    );
}

/// One layer per tile shape of the tier's menu, a tile of that shape covering its
/// output exactly (`ob` blocks of output channels, a row of `px` pixels), checked
/// like the others; then every shape must have run.
fn every_tile_shape(kernels: &Kernels) {
    let mut rng = Rng(0x5851f42d4c957f2d);
    let tier = kernels.tier();
    let shapes: Vec<(usize, usize)> = kernels.tile_shapes().collect();
    assert!(!shapes.is_empty(), "{tier:?}: an empty tile menu");
    let before: Vec<u64> = shapes.iter().map(|&(ob, px)| tile_calls(tier, ob, px)).collect();
    for &(ob, px) in &shapes {
        let geom = ConvGeometry { kh: 1, kw: 1, stride_h: 1, stride_w: 1, pad: Padding::uniform(0) };
        let case = Case { ci: 19, co: 16 * ob, h: 1, w: px, geom, residual: px % 2 == 0, act: Activation::Relu };
        check(kernels, case, &mut rng, &Sequential);
    }
    for (&(ob, px), before) in shapes.iter().zip(before) {
        assert!(tile_calls(tier, ob, px) > before, "{}: tile {ob}x{px} did not run", kernels.conv_name());
    }
}

#[test]
fn every_available_tier_matches_the_reference() {
    let tiers = Tier::available();
    assert!(tiers.contains(&Tier::Portable));
    for tier in tiers {
        let kernels = Kernels::new(tier).unwrap();
        let (before, before_long) = (tier_calls(tier), long_row_calls(tier));
        sweep(&kernels, &Sequential);
        long_reductions(&kernels, &Sequential);
        assert!(tier_calls(tier) > before, "{tier:?} did not run");
        // 3x1 and 7x1 windows without horizontal padding, as one long row.
        assert!(long_row_calls(tier) > before_long, "{tier:?}: no window one tap wide ran as one long row");
        every_tile_shape(&kernels);
        eprintln!("{}: ok", kernels.conv_name());
    }
}

/// The direct driver's panel walk (an input larger than half the L2, in panels
/// that each fit it, every group in turn) on a core assumed to have an 8 KiB L2, so
/// that the sweep's larger inputs take it: the same tiles and sums, so the same
/// bits as the documented order, on one thread and three.
#[test]
fn panels_match_the_reference() {
    for tier in Tier::available() {
        let kernels = Kernels::new(tier).unwrap().with_l2_bytes(8 << 10);
        let before = panel_calls(tier);
        sweep(&kernels, &Sequential);
        long_reductions(&kernels, &ThreeThreads);
        assert!(panel_calls(tier) > before, "{tier:?}: no convolution walked in panels");
    }
}

#[test]
fn tiles_spread_over_threads_match_the_reference() {
    let tier = Tier::best();
    sweep(&Kernels::new(tier).unwrap(), &ThreeThreads);
    long_reductions(&Kernels::new(tier).unwrap(), &ThreeThreads);
}

/// Images of every channel count up to 5 (the image staging interleaves 1 to 4
/// channels pixel by pixel, more channel by channel), from their NCHW image
/// (folded) and as blocks, over every geometry of the sweep (7x7/2, 3x3/2, 3x3/1,
/// 5x5, one-sided padding...), on each tier this CPU runs, on one thread and three;
/// then stems of the networks' shapes on smaller images (a 7x7/2 from 3 channels
/// to 64, a 3x3/2 to 32), large enough for several tasks' rows, and one whose rows
/// are staged in several chunks (asserted).
#[test]
fn images_of_few_channels_match_the_reference() {
    let mut rng = Rng(0xbf58476d1ce4e5b9);
    for tier in TIERS {
        let Some(kernels) = Kernels::new(tier) else {
            eprintln!("SKIPPED: this CPU cannot run the {} tier", tier.name());
            continue;
        };
        for (n, geom) in conv_geometries().into_iter().enumerate() {
            for ci in 1..=5 {
                let case = Case { ci, co: 20, h: 11, w: 23, geom, residual: ci == 2, act: Activation::Relu };
                let par: &dyn ParallelFor = if (n + ci) % 2 == 0 { &Sequential } else { &ThreeThreads };
                check(&kernels, case, &mut rng, par);
            }
        }
        let stems = [(64, window(7, 7, 2, Padding::uniform(3))), (32, window(3, 3, 2, Padding::uniform(0)))];
        for (co, geom) in stems {
            for (par, residual) in [(&Sequential as &dyn ParallelFor, false), (&ThreeThreads, true)] {
                let case = Case { ci: 3, co, h: 45, w: 38, geom, residual, act: Activation::Relu };
                check(&kernels, case, &mut rng, par);
            }
        }
        // The 3x3 and 7x7 stride-2 windows of 3 channels without a residual, which
        // the AVX2 and AVX-512 tiers compute from the image's planes (asserted for
        // each) in tiles of 6 pixels (of one output block, or two): rows of one tile
        // (6 pixels), whole tiles (18) and not (19, 20), narrower than a tile (5,
        // staged), in one band and spread over three threads; an even and an odd
        // count of output blocks (a kernel of two computes the odd one twice); and
        // a tall image.
        for (_, geom) in stems {
            let before = image_row_calls(tier);
            // Input widths of 6, 18, 19 and 20 output pixels, and of 5.
            let widths = if geom.kh == 3 { [13, 37, 39, 41, 11] } else { [12, 36, 38, 40, 10] };
            for (i, w) in widths.into_iter().enumerate() {
                for co in [32, 40] {
                    let par: &dyn ParallelFor = if (i + co) % 3 == 0 { &ThreeThreads } else { &Sequential };
                    let case = Case { ci: 3, co, h: 13, w, geom, residual: false, act: Activation::Relu };
                    check(&kernels, case, &mut rng, par);
                }
            }
            let case = Case { ci: 3, co: 16, h: 9, w: 15, geom, residual: false, act: Activation::None };
            check(&kernels, case, &mut rng, &Sequential);
            // Tall enough that a task (of two a thread) makes its padded copy of window
            // rows more than once (a 7x7 copy holds 194 output rows at this width).
            let case = Case { ci: 3, co: 16, h: 800, w: 15, geom, residual: false, act: Activation::Relu };
            check(&kernels, case, &mut rng, &Sequential);
            if matches!(tier, Tier::Avx2 | Tier::Avx512) {
                let k = geom.kh;
                assert!(image_row_calls(tier) > before, "{tier:?}: no {k}x{k} image convolution from its planes");
            }
        }
        // Output rows wider than one chunk of staged pixels.
        let before = image_chunk_calls(tier);
        let case = Case { ci: 3, co: 24, h: 9, w: 400, geom: stems[0].1, residual: true, act: Activation::Relu };
        check(&kernels, case, &mut rng, &ThreeThreads);
        assert!(image_chunk_calls(tier) > before, "{tier:?}: no image row staged in chunks");
    }
}

/// A strided window on an input larger than any core's L2 (two blocks of 160x160,
/// 3.3 MB): the tiles then walk the output row-major and the x86 tiers' tiles
/// prefetch their next tile's input on one thread too, which must change nothing;
/// on one thread and spread over three. In whole input blocks (32 channels), the
/// AVX2 tier's tiles run the window rows in one asm block each, prefetching
/// (asserted).
#[test]
fn strided_window_on_a_large_map_matches_the_reference() {
    let mut rng = Rng(0x94d049bb133111eb);
    let geom = ConvGeometry { kh: 3, kw: 3, stride_h: 2, stride_w: 2, pad: Padding::uniform(1) };
    for ci in [17, 32] {
        let case = Case { ci, co: 40, h: 160, w: 160, geom, residual: true, act: Activation::Relu };
        for tier in Tier::available() {
            check(&Kernels::new(tier).unwrap(), case, &mut rng, &Sequential);
        }
        check(&Kernels::new(Tier::best()).unwrap(), case, &mut rng, &ThreeThreads);
    }
    if Tier::available().iter().any(|&t| Kernels::new(t).unwrap().hand_scheduled() == Some((1, 6))) {
        assert!(next_window_asm_chunks(), "no stride-2 window's chunks ran in asm prefetching the next tile");
    }
}

/// The tiers a machine of this architecture is expected to have: CI fails loudly if
/// detection breaks instead of silently testing only the portable tier.
#[test]
fn expected_tiers_are_detected() {
    #[cfg(target_arch = "x86_64")]
    assert!(Tier::available().contains(&Tier::Avx2), "x86-64 CI machines have AVX2");
    #[cfg(target_arch = "aarch64")]
    assert!(Tier::available().contains(&Tier::Neon));
    if std::env::var("INCEPT_EXPECT_AVX512").is_ok() {
        assert!(Tier::available().contains(&Tier::Avx512));
    }
}
