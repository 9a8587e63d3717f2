//! The fuzz cases: input structures and the checks they drive.
//!
//! One file, two users: the cargo-fuzz targets in `fuzz/fuzz_targets/` include it
//! with `#[path]` and feed it libFuzzer's inputs; `tests/fuzz_cases.rs` includes it
//! and feeds it a few thousand inputs decoded from a fixed pseudo-random byte
//! stream, so plain `cargo test` on stable runs the same checks. Every input
//! decodes to a valid case (raw fields are mapped into range, never rejected), so
//! no fuzzing time is lost on rejected inputs.
//!
//! - [`conv`]: every available tier's `conv2d` against `reference::conv2d`,
//!   within the rounding error bound of the dot products (as in
//!   `kernels/tests/conv_tiers.rs`).
//! - [`conv_bf16`]: every available BF16 tier (and the AMX tier's logic on its
//!   emulated tiles) against the BF16 reference, whole and in bands of rows.
//! - [`pool`]: the reference pooling and convolution epilogues in NCHW against
//!   NCHW16c (and mixed) layouts, bit for bit; every tier's blocked pooling against
//!   the reference.
//! - [`planner`]: random graphs planned and run against the unplanned interpreter,
//!   and the plan's arena checked for overlaps, by interval and by a shadow
//!   simulation of which value owns every arena element.
#![allow(dead_code)]

use incept_kernels::{Dims, Image, ImageMut, Layout, reference};

/// xorshift64: the data of a case, seeded from its input bytes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// Uniform in [-1, 1).
    pub fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

/// Written around every output slice; compared bit for bit.
const SENTINEL: f32 = -7.654_321e33;

/// An NCHW image converted to `layout` (blocked padding lanes zero).
fn to_layout(x: &[f32], d: Dims, layout: Layout) -> Vec<f32> {
    let mut out = vec![f32::NAN; layout.image_len(d)];
    reference::copy(Image::new(x, d, Layout::Nchw), &mut ImageMut::new(&mut out, d, layout));
    out
}

/// A buffer of `before + layout.image_len(d) + after` sentinels; the image is the middle.
fn canvas(d: Dims, layout: Layout, before: usize, after: usize) -> Vec<f32> {
    vec![SENTINEL; before + layout.image_len(d) + after]
}

/// Panics unless everything outside `[before, len - after)` is still a sentinel.
fn check_sentinels(buf: &[f32], before: usize, after: usize, what: &dyn std::fmt::Display) {
    let tail = buf.len() - after;
    for (i, v) in buf[..before].iter().enumerate().chain(buf[tail..].iter().enumerate().map(|(i, v)| (tail + i, v))) {
        assert!(v.to_bits() == SENTINEL.to_bits(), "{what}: wrote {v} at {i}, outside its slice");
    }
}

/// Panics unless the padding lanes of a blocked image are zero.
fn check_padding_lanes(data: &[f32], d: Dims, layout: Layout, what: &dyn std::fmt::Display) {
    for c in d.c..layout.padded_channels(d.c) {
        for y in 0..d.h {
            for x in 0..d.w {
                let v = data[layout.index(d, c, y, x)];
                assert!(v == 0.0, "{what}: padding lane {c} at ({y}, {x}) is {v}");
            }
        }
    }
}

/// Claims three threads, so the kernels split their work in three, and runs the
/// parts on this thread in reverse order.
struct SplitInThree;

thread_local! {
    /// The worker [`SplitInThree`] reports: the task it runs, modulo three.
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

// SAFETY: one call per task, one at a time, so any worker index below three is
// unshared.
unsafe impl incept_kernels::parallel::ParallelFor for SplitInThree {
    fn threads(&self) -> usize {
        3
    }
    fn run(&self, n: usize, task: &(dyn Fn(usize) + Sync)) {
        (0..n).rev().for_each(|i| {
            WORKER.set(i % 3);
            task(i)
        })
    }
    fn worker(&self) -> usize {
        WORKER.get()
    }
}

pub mod conv {
    //! Every available tier against the reference convolution.

    use arbitrary::Arbitrary;
    use incept_kernels::conv::{
        Conv2d, PackedConv, conv2d, conv2d_image, conv2d_image_scratch_len, conv2d_scratch_len,
    };
    use incept_kernels::pack::{
        ConvShape, pack_bias, pack_conv_weights, pack_conv_weights_image, pack_winograd_weights,
    };
    use incept_kernels::parallel::Sequential;
    use incept_kernels::winograd::{ALL_SCHEMES, Scheme, conv2d_winograd, winograd_scheme, winograd_scratch_len};
    use incept_kernels::{Activation, ConvGeometry, Dims, Image, ImageMut, Kernels, Layout, Padding, Tier, reference};

    use super::{Rng, SplitInThree, canvas, check_padding_lanes, check_sentinels, to_layout};

    /// Multiply-adds one case may cost: keeps the naive reference fast.
    pub const MAX_MACS: usize = 250_000;

    /// A convolution kernel under test: input, residual, output, scratch.
    type RunConv<'a> = dyn Fn(Image, Option<Image>, &mut ImageMut, &mut [f32]) + 'a;

    /// Raw fields, mapped into range by [`ConvCase::decode`].
    #[derive(Arbitrary, Clone, Debug)]
    pub struct ConvCase {
        /// Kernel height and width: `raw % 7 + 1`, or 11 for raw >= 250.
        pub kh: u8,
        pub kw: u8,
        /// `raw % 4 + 1`.
        pub stride_h: u8,
        pub stride_w: u8,
        /// Top, left, bottom, right: `raw % min(4, kernel)`.
        pub pad: [u8; 4],
        /// `raw % 40 + 1`, or 16, 32 or 48 for `raw >= 224`.
        pub ci: u8,
        pub co: u8,
        /// `raw % 20 + 1`, raised to fit the window, then shrunk to [`MAX_MACS`].
        pub h: u8,
        pub w: u8,
        pub residual: bool,
        pub relu: bool,
        /// Where the input and output images start in their buffers (`raw % 64`).
        pub in_offset: u8,
        pub out_offset: u8,
        /// Seeds the values.
        pub seed: u64,
    }

    /// A decoded case.
    #[derive(Clone, Copy, Debug)]
    pub struct Conv {
        pub ci: usize,
        pub co: usize,
        pub h: usize,
        pub w: usize,
        pub geom: ConvGeometry,
        pub residual: bool,
        pub act: Activation,
        pub in_offset: usize,
        pub out_offset: usize,
    }

    fn kernel(raw: u8) -> usize {
        if raw >= 250 { 11 } else { raw as usize % 7 + 1 }
    }

    impl ConvCase {
        pub fn decode(&self) -> Conv {
            let (kh, kw) = (kernel(self.kh), kernel(self.kw));
            let p = |raw: u8, k: usize| raw as usize % k.min(4);
            let pad = Padding {
                top: p(self.pad[0], kh),
                left: p(self.pad[1], kw),
                bottom: p(self.pad[2], kh),
                right: p(self.pad[3], kw),
            };
            let geom = ConvGeometry {
                kh,
                kw,
                stride_h: self.stride_h as usize % 4 + 1,
                stride_w: self.stride_w as usize % 4 + 1,
                pad,
            };
            let min_h = kh.saturating_sub(pad.top + pad.bottom).max(1);
            let min_w = kw.saturating_sub(pad.left + pad.right).max(1);
            // Whole blocks of input channels from one raw value in eight, so that the
            // Winograd 1-D windows (1x3, 1x7, 3x1, 7x1) come up too.
            let ci = if self.ci >= 224 { 16 * (self.ci as usize % 3 + 1) } else { self.ci as usize % 40 + 1 };
            let (mut ci, mut co) = (ci, self.co as usize % 40 + 1);
            let (mut h, mut w) = ((self.h as usize % 20 + 1).max(min_h), (self.w as usize % 20 + 1).max(min_w));
            let macs = |ci: usize, co: usize, h: usize, w: usize| {
                let (oh, ow) = geom.output_hw(h, w).expect("the window fits");
                ci * co * kh * kw * oh * ow
            };
            while macs(ci, co, h, w) > MAX_MACS {
                if h > min_h && h >= w {
                    h = (h / 2).max(min_h);
                } else if w > min_w {
                    w = (w / 2).max(min_w);
                } else if h > min_h {
                    h = (h / 2).max(min_h);
                } else if co >= ci {
                    co = co.div_ceil(2);
                } else {
                    ci = ci.div_ceil(2);
                }
            }
            Conv {
                ci,
                co,
                h,
                w,
                geom,
                residual: self.residual,
                act: if self.relu { Activation::Relu } else { Activation::None },
                in_offset: self.in_offset as usize % 64,
                out_offset: self.out_offset as usize % 64,
            }
        }
    }

    /// A case's shapes and operands (NCHW input and residual, OIHW weights, bias),
    /// drawn from its seed.
    pub struct Operands {
        pub din: Dims,
        pub dout: Dims,
        pub shape: ConvShape,
        pub x: Vec<f32>,
        pub wt: Vec<f32>,
        pub bias: Vec<f32>,
        pub res: Vec<f32>,
    }

    impl Conv {
        pub fn operands(&self, seed: u64) -> Operands {
            let Conv { ci, co, h, w, geom, .. } = *self;
            let mut rng = Rng::new(seed);
            let din = Dims::new(ci, h, w);
            let (oh, ow) = geom.output_hw(h, w).expect("decode keeps the window inside");
            let dout = Dims::new(co, oh, ow);
            let shape = ConvShape { co, ci, kh: geom.kh, kw: geom.kw };
            let (x, wt, bias, res) =
                (rng.vec(din.volume()), rng.vec(co * ci * geom.kh * geom.kw), rng.vec(co), rng.vec(dout.volume()));
            Operands { din, dout, shape, x, wt, bias, res }
        }
    }

    /// NCHW `x` in NCHW16c from `offset` on in a buffer of NaN: a kernel reading
    /// past the image poisons its output.
    pub fn blocked_in_nan(x: &[f32], d: Dims, offset: usize) -> Vec<f32> {
        let blk = Layout::Nchw16c;
        let len = blk.image_len(d);
        let mut buf = vec![f32::NAN; offset + len + 64];
        buf[offset..offset + len].copy_from_slice(&to_layout(x, d, blk));
        buf
    }

    /// Runs `case` on every available tier and checks each output element against
    /// the reference within the rounding error bound of a K-term float32 dot
    /// product, `|fast - ref| <= 2 K u sum|w x|` (u = 2^-24, both sides rounding in
    /// any order), that padding lanes are zero, and that nothing outside the output
    /// slice was written. When a Winograd scheme computes the window, the same for
    /// every scheme that does (F(4x4, 3x3) for a 3x3, the 6-point one for a 1-D
    /// window), its work split in three, within the
    /// bound of `kernels/tests/winograd_tiers.rs` with its magnitude `W` bounded by
    /// `s sum|w| max|x|`: through the transforms' entries each weight meets at most
    /// `s` inputs' worth, `(max_k Σ_r c(k, r))^2` with `c(k, r) = Σ_ξ |A^T_iξ| |G_ξk|
    /// |B^T_ξr|`: 4^2 = 16 for F(2x2, 3x3) and F(2, 3), (254/15)^2 < 287 for F(4x4,
    /// 3x3), 254/15 < 17 for the 6-point 1-D schemes. An input of at most 16 channels also runs from its NCHW image (`conv2d_image`, split in three, the whole window folded into the channels): within the same bound.
    pub fn check(case: &ConvCase) {
        let cv = case.decode();
        let Conv { ci, co, geom, residual, act, in_offset, out_offset, .. } = cv;
        let Operands { din, dout, shape, x, wt, bias, res } = cv.operands(case.seed);
        let (oh, ow) = (dout.h, dout.w);

        // The reference, and its magnitude twin (all operands made positive) for the bound.
        let nchw = Layout::Nchw;
        let run_ref = |x: &[f32], wt: &[f32], bias: &[f32], res: &[f32], act| {
            let mut out = vec![0.0; dout.volume()];
            let r = residual.then(|| Image::new(res, dout, nchw));
            let mut o = ImageMut::new(&mut out, dout, nchw);
            reference::conv2d(Image::new(x, din, nchw), wt, Some(bias), &geom, r, act, &mut o);
            out
        };
        let want = run_ref(&x, &wt, &bias, &res, act);
        let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
        let mag = run_ref(&abs(&x), &abs(&wt), &abs(&bias), &abs(&res), Activation::None);
        let k = (ci * geom.kh * geom.kw + 2) as f32;

        let blk = Layout::Nchw16c;
        let (mut packed, mut pbias) = (Vec::new(), Vec::new());
        pack_conv_weights(&wt, shape, &mut packed);
        let mut packed_image = Vec::new();
        pack_conv_weights_image(&wt, shape, &mut packed_image);
        pack_bias(&bias, &mut pbias);
        let w = PackedConv { shape, weights: &packed, bias: &pbias };
        let (xbuf, in_len) = (blocked_in_nan(&x, din, in_offset), blk.image_len(din));
        let rin = to_layout(&res, dout, blk);
        let (before, after) = (out_offset, 64 - out_offset);
        let out_len = blk.image_len(dout);
        // Compares an output with the reference within `tol(i)` for NCHW index i.
        let compare = |out: &[f32], what: &str, tol: &dyn Fn(usize) -> f32| {
            check_padding_lanes(out, dout, blk, &what);
            for c in 0..co {
                for y in 0..oh {
                    for xx in 0..ow {
                        let got = out[blk.index(dout, c, y, xx)];
                        let i = (c * oh + y) * ow + xx;
                        assert!(
                            (got - want[i]).abs() <= tol(i),
                            "{what}: at (c={c}, y={y}, x={xx}) got {got}, want {}, tolerance {:e}",
                            want[i],
                            tol(i)
                        );
                    }
                }
            }
        };
        // Runs a kernel on the NCHW16c input (the NCHW one for `image`), the residual
        // and scratch of `scratch_len`, into the output slice between sentinels; checks
        // the sentinels and returns the whole buffer.
        let input = Image::new(&xbuf[in_offset..in_offset + in_len], din, blk);
        let run = |what: &str, image: bool, scratch_len: usize, f: &RunConv| {
            let mut buf = canvas(dout, blk, before, after);
            let mut scratch = vec![f32::NAN; scratch_len];
            let x_in = if image { Image::new(&x, din, Layout::Nchw) } else { input };
            let res = residual.then(|| Image::new(&rin, dout, blk));
            f(x_in, res, &mut ImageMut::new(&mut buf[before..before + out_len], dout, blk), &mut scratch);
            check_sentinels(&buf, before, after, &what);
            buf
        };
        for tier in Tier::available() {
            let kernels = Kernels::new(tier).expect("available");
            let what = format!("{} {cv:?}", kernels.conv_name());
            let buf = run(&what, false, conv2d_scratch_len(din, &geom), &|x, r, o, s| {
                let op = Conv2d { input: x.into(), weights: w, geom, residual: r.map(Into::into), act };
                conv2d(&kernels, &op, &mut o.into(), s, &Sequential)
            });
            compare(&buf[before..before + out_len], &what, &|i| k * f32::EPSILON * mag[i] + f32::MIN_POSITIVE);
            // An input of one block, read from its NCHW image (the whole window
            // folded into the channels, weights in the image packing): within the
            // same bound.
            if ci <= 16 {
                let w = PackedConv { weights: &packed_image, ..w };
                let from_image = run(&what, true, conv2d_image_scratch_len(din, &geom, 3), &|x, r, o, s| {
                    let op = Conv2d { input: x.into(), weights: w, geom, residual: r.map(Into::into), act };
                    conv2d_image(&kernels, &op, &mut o.into(), s, &SplitInThree)
                });
                let what = format!("{what} conv2d_image");
                compare(&from_image[before..before + out_len], &what, &|i| {
                    k * f32::EPSILON * mag[i] + f32::MIN_POSITIVE
                });
            }
        }

        if winograd_scheme(&geom, ci).is_none() {
            return;
        }
        let gamma =
            |n: usize| n as f64 * f64::from(f32::EPSILON) / 2.0 / (1.0 - n as f64 * f64::from(f32::EPSILON) / 2.0);
        let max_x = x.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
        let taps = ci * geom.kh * geom.kw;
        let w_sum: Vec<f64> = (0..co).map(|o| wt[o * taps..][..taps].iter().map(|v| v.abs() as f64).sum()).collect();
        for scheme in ALL_SCHEMES.into_iter().filter(|s| s.computes(&geom, ci)) {
            let mut packed = Vec::new();
            pack_winograd_weights(&wt, shape, scheme, &mut packed);
            let w = PackedConv { shape, weights: &packed, bias: &pbias };
            let depth = (0..scheme.positions()).map(|p| scheme.depth(p)).max().expect("positions");
            let (roundings, spread) = match scheme {
                Scheme::F4x4 => (15, 287.0),
                Scheme::Line6 { .. } => (9, 17.0),
                _ => (9, 16.0),
            };
            let tol = |i: usize| {
                let o = i / (oh * ow);
                let extra = (bias[o].abs() + if residual { res[i].abs() } else { 0.0 }) as f64;
                let wino = gamma(depth * ci + roundings) * (spread * w_sum[o] * max_x + extra);
                (wino + gamma(taps + 2) * mag[i] as f64) as f32 + f32::MIN_POSITIVE
            };
            for tier in Tier::available() {
                let kernels = Kernels::new(tier).expect("available");
                let what = format!("winograd {scheme:?} {} {cv:?}", kernels.conv_name());
                let buf = run(&what, false, winograd_scratch_len(din, &geom, scheme, 3), &|x, r, o, s| {
                    let op = Conv2d { input: x.into(), weights: w, geom, residual: r.map(Into::into), act };
                    conv2d_winograd(&kernels, &op, scheme, &mut o.into(), s, &SplitInThree)
                });
                compare(&buf[before..before + out_len], &what, &tol);
            }
        }
    }
}

pub mod conv_bf16 {
    //! Every available BF16 tier against the BF16 reference, on the cases of [`conv`].

    use incept_kernels::bands::{Bands, BandsMut, RowSplit, join_bands, split_image};
    use incept_kernels::bf16::convert::{bf16, to_bf16};
    use incept_kernels::bf16::pack::{pack_conv_weights_bf16_image, pack_conv_weights_bf16_terms};
    use incept_kernels::bf16::{
        BF16_TIERS, Bf16Kernels, Bf16Terms, Bf16Tier, PackedConvBf16, conv2d_bf16, conv2d_bf16_bands_scratch_len,
        conv2d_bf16_image, conv2d_bf16_image_scratch_len, conv2d_bf16_par, conv2d_bf16_scratch_len,
    };
    use incept_kernels::pack::pack_bias;
    use incept_kernels::{Activation, Dims, Image, ImageMut, Layout, reference};

    use super::conv::{Conv, ConvCase, Operands, blocked_in_nan};
    use super::{SplitInThree, canvas, check_padding_lanes, check_sentinels, to_layout};

    /// Runs `case` on every BF16 tier this CPU runs (`conv2d_bf16_par`, its work split
    /// in three) and checks each output element: within the float32 rounding bound of
    /// a K-term dot product of the BF16 reference (`2 K u sum|w x|`, u = 2^-24),
    /// within BF16's rounding of the operands of the float32 reference (each
    /// product off by at most 2^-7 + 2^-16 of itself), padding lanes zero, nothing
    /// written outside the output slice. Tiers that sum in the documented order
    /// (all but AMX's instructions, whose internal rounding Intel does not specify,
    /// and NEON BF16's `BFDOT`, which rounds to odd)
    /// give the portable tier's bits, and so does each tier with its input and output
    /// cut into bands of rows (`conv2d_bf16`; 1 to 3 bands each, from the seed).
    /// The AMX tier's logic runs on its emulated instructions as well, on every
    /// host. An input of at most 16 channels also runs from its NCHW image
    /// (`conv2d_bf16_image`, the first layer's kernel), which must give the bits of
    /// its documented order (`bf16::reference::conv2d_image`) on every tier. Then
    /// all of it again with split operands (`Bf16Terms::Split3`, precision
    /// `bf16x3`) against the split reference (`bf16::reference::conv2d_terms`, the
    /// bound over its three times as many terms) and the float32 reference (each
    /// product off by at most 3.01 x 2^-16 of itself, `bf16::terms`), the image
    /// kind aside. Returns the names of the kernels it ran.
    pub fn check(case: &ConvCase) -> Vec<&'static str> {
        let cv = case.decode();
        let Conv { ci, geom, residual, act, .. } = cv;
        let ops = cv.operands(case.seed);
        let Operands { din, dout, shape, ref x, ref wt, ref bias, ref res } = ops;

        let nchw = Layout::Nchw;
        let r = residual.then(|| Image::new(res, dout, nchw));
        let want_f32 =
            out_nchw(dout, &|o| reference::conv2d(Image::new(x, din, nchw), wt, Some(bias), &geom, r, act, o));
        let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
        let (ba, ra) = (abs(bias), abs(res));
        let ra = residual.then(|| Image::new(&ra, dout, nchw));
        // Sum |w x| (and |bias|, |residual|) over the terms of `x` (NCHW, `d`) and `w`.
        let mag_of = |x: &[f32], d, w: &[f32]| {
            let (xa, wa) = (abs(x), abs(w));
            let conv = |o: &mut ImageMut| {
                reference::conv2d(Image::new(&xa, d, nchw), &wa, Some(&ba), &geom, ra, Activation::None, o)
            };
            out_nchw(dout, &conv)
        };
        let mag = mag_of(x, din, wt);
        let mut ran: Option<Vec<&'static str>> = None;
        for terms in [Bf16Terms::Rounded, Bf16Terms::Split3] {
            let want = out_nchw(dout, &|o| {
                let x = Image::new(x, din, nchw);
                incept_kernels::bf16::reference::conv2d_terms(x, wt, Some(bias), &geom, r, act, o, terms)
            });
            // The BF16 operands and their count: three groups of channels for a split.
            let (xw, dw) = terms.reduction_input(Image::new(x, din, nchw));
            let k = (terms.reduction_shape(shape).ci * geom.kh * geom.kw + 2) as f32;
            // Each product of the operands' terms against the exact one; and the
            // float32 reference's own sums, beside a split's bound (rounding's 2^-7
            // has always covered them).
            let (mag_terms, product, k32) = match terms {
                Bf16Terms::Rounded => (mag.clone(), 2f32.powi(-7) + 2f32.powi(-16), 0.0),
                Bf16Terms::Split3 => (
                    mag_of(&xw, dw, &terms.reduction_weights(wt, shape)),
                    3.01 * 2f32.powi(-16),
                    (ci * geom.kh * geom.kw + 2) as f32,
                ),
            };
            let names = check_terms(case, &cv, &ops, terms, (&want, &want_f32, &mag, &mag_terms), (k, k32, product));
            assert_eq!(*ran.get_or_insert_with(|| names.clone()), names, "the same kernels at {terms:?}");
        }
        ran.expect("two passes")
    }

    /// A new NCHW image of shape `d`, written by `f`.
    fn out_nchw(d: Dims, f: &dyn Fn(&mut ImageMut)) -> Vec<f32> {
        let mut out = vec![0.0; d.volume()];
        f(&mut ImageMut::new(&mut out, d, Layout::Nchw));
        out
    }

    /// [`check`] with the operands `ops` made as `terms`: `want` the reference at
    /// `terms`, `mag` and `mag_terms` the sums of |terms| of the float32 and the BF16
    /// products, `k` their counts, `product` the bound on a product's error.
    #[allow(clippy::type_complexity)]
    fn check_terms(
        case: &ConvCase,
        cv: &Conv,
        ops: &Operands,
        terms: Bf16Terms,
        (want, want_f32, mag, mag_terms): (&[f32], &[f32], &[f32], &[f32]),
        (k, k32, product): (f32, f32, f32),
    ) -> Vec<&'static str> {
        let Conv { ci, co, geom, residual, act, in_offset, out_offset, .. } = *cv;
        let Operands { din, dout, shape, ref x, ref wt, ref bias, ref res } = *ops;
        let (oh, ow) = (dout.h, dout.w);
        let nchw = Layout::Nchw;
        let r = residual.then(|| Image::new(res, dout, nchw));
        let blk = Layout::Nchw16c;
        let (mut packed, mut pbias) = (Vec::new(), Vec::new());
        pack_conv_weights_bf16_terms(wt, shape, terms, &mut packed);
        pack_bias(bias, &mut pbias);
        let weights = PackedConvBf16 { shape, terms, weights: &packed, bias: &pbias };
        let (xbuf, in_len) = (blocked_in_nan(x, din, in_offset), blk.image_len(din));
        let input = Image::new(&xbuf[in_offset..in_offset + in_len], din, blk);
        let rin = to_layout(res, dout, blk);
        let (before, after) = (out_offset, 64 - out_offset);
        let out_len = blk.image_len(dout);

        // The image kind: its weights packing, and its documented order.
        let (mut image_packed, image) = (Vec::new(), ci <= 16 && terms == Bf16Terms::Rounded);
        let image_order = image.then(|| {
            pack_conv_weights_bf16_image(wt, shape, &mut image_packed);
            let x = Image::new(x, din, nchw);
            out_nchw(dout, &|o| incept_kernels::bf16::reference::conv2d_image(x, wt, bias, &geom, r, act, o))
        });
        // Runs a kernel into the output slice between sentinels, with `scratch_len`
        // values of NaN scratch (the driver must overwrite every value it reads);
        // checks the sentinels and the padding lanes and returns the output.
        let run = |what: &str, scratch_len: usize, f: &dyn Fn(&mut ImageMut, &mut [bf16])| {
            let mut buf = canvas(dout, blk, before, after);
            let mut scratch = vec![to_bf16(f32::NAN); scratch_len];
            f(&mut ImageMut::new(&mut buf[before..before + out_len], dout, blk), &mut scratch);
            check_sentinels(&buf, before, after, &what);
            let out = buf[before..before + out_len].to_vec();
            check_padding_lanes(&out, dout, blk, &what);
            out
        };
        let (mut portable, mut ran): (Option<Vec<f32>>, _) = (None, Vec::new());
        // The AMX tier's tile logic on its emulated instructions too (on any host):
        // within the bounds, but in `TDPBF16PS`'s order, not the portable one's.
        let emulated = std::iter::once(Bf16Kernels::amx_emulated());
        for kernels in BF16_TIERS.into_iter().filter_map(Bf16Kernels::new).chain(emulated) {
            let tier = kernels.tier();
            let documented_order = tier != Bf16Tier::Amx && tier != Bf16Tier::NeonBf16;
            ran.push(kernels.conv_name());
            let what = format!("{} {terms:?} {cv:?}", kernels.conv_name());
            let out = &run(&what, conv2d_bf16_scratch_len(din, &geom, terms), &|o, scratch| {
                let r = residual.then(|| Image::new(&rin, dout, blk));
                conv2d_bf16_par(&kernels, input, &weights, &geom, r, act, o, scratch, &SplitInThree)
            });
            for c in 0..co {
                for y in 0..oh {
                    for xx in 0..ow {
                        let (got, i) = (out[blk.index(dout, c, y, xx)], (c * oh + y) * ow + xx);
                        let tol = k * f32::EPSILON * mag_terms[i] + f32::MIN_POSITIVE;
                        let at = format!("{what}: at (c={c}, y={y}, x={xx}) got {got}");
                        assert!((got - want[i]).abs() <= tol, "{at}, BF16 reference {}, tolerance {tol:e}", want[i]);
                        let tol_f32 = product * mag[i] + tol + k32 * f32::EPSILON * mag[i];
                        assert!((got - want_f32[i]).abs() <= tol_f32, "{at}, float32 reference {}", want_f32[i]);
                    }
                }
            }
            if documented_order {
                let first = portable.get_or_insert_with(|| out.to_vec());
                let same = first.iter().zip(out).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{what}: not the portable tier's bits");
            }

            // The same layer with input and output in bands of rows: the same bits.
            let bands = |raw: u64, rows: usize| RowSplit::even(rows, (raw % 3 + 1) as usize);
            let (in_split, out_split) = (bands(case.seed >> 8, din.h), bands(case.seed >> 16, oh));
            let in_parts = split_image(input, in_split);
            let in_refs: Vec<&[f32]> = in_parts.iter().map(|p| &p[..]).collect();
            let res_parts = split_image(Image::new(&rin, dout, blk), out_split);
            let res_refs: Vec<&[f32]> = res_parts.iter().map(|p| &p[..]).collect();
            let mut out_parts: Vec<Vec<f32>> =
                (0..out_split.bands()).map(|t| vec![f32::NAN; blk.image_len(out_split.band_dims(dout, t))]).collect();
            let mut banded = BandsMut::new(out_parts.iter_mut().map(|p| &mut p[..]), dout, blk, out_split);
            let len = conv2d_bf16_bands_scratch_len(din, &geom, terms, out_split, 3);
            let mut scratch = vec![to_bf16(f32::NAN); len];
            conv2d_bf16(
                &kernels,
                Bands::new(&in_refs, din, blk, in_split),
                &weights,
                &geom,
                residual.then(|| Bands::new(&res_refs, dout, blk, out_split)),
                act,
                &mut banded,
                &mut scratch,
                &SplitInThree,
            );
            let got = join_bands(banded.as_bands());
            let same = got.iter().zip(out).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{what}: bands {in_split:?} -> {out_split:?} differ from the whole images");

            let Some(image_order) = &image_order else { continue };
            let what = format!("{what} from its image");
            let out = &run(&what, conv2d_bf16_image_scratch_len(din, &geom), &|o, scratch| {
                let (x, w) = (
                    Image::new(x, din, nchw),
                    PackedConvBf16 { shape, terms: Bf16Terms::Rounded, weights: &image_packed, bias: &pbias },
                );
                let r = residual.then(|| Image::new(&rin, dout, blk).into());
                conv2d_bf16_image(&kernels, x.into(), &w, &geom, r, act, &mut o.into(), scratch, &SplitInThree)
            });
            for c in 0..co {
                for y in 0..oh {
                    for xx in 0..ow {
                        let (got, want) = (out[blk.index(dout, c, y, xx)], image_order[(c * oh + y) * ow + xx]);
                        assert!(got.to_bits() == want.to_bits(), "{what}: at ({c}, {y}, {xx}) got {got}, want {want}");
                    }
                }
            }
        }
        ran
    }
}

pub mod pool {
    //! The reference pooling and convolution epilogues must not depend on the layout:
    //! NCHW, NCHW16c and mixed in/out layouts agree bit for bit. Then every tier's
    //! blocked pooling (`pool::pool`, `pool::global_avg_pool`) against
    //! the reference: max pooling exactly, averages within their rounding bound.

    use arbitrary::Arbitrary;
    use incept_kernels::pool::{PoolKind, global_avg_pool, pool};
    use incept_kernels::{
        Activation, ConvGeometry, Dims, Image, ImageMut, Kernels, Layout, Padding, PoolGeometry, Tier, reference,
    };

    use super::{Rng, SplitInThree, canvas, check_padding_lanes, check_sentinels, to_layout};

    /// Multiply-adds the epilogue convolution may cost.
    pub const MAX_MACS: usize = 60_000;

    /// Raw fields, mapped into range by [`PoolCase::window`] and friends.
    #[derive(Arbitrary, Clone, Debug)]
    pub struct PoolCase {
        /// Window `raw % 8 + 1`, stride `raw % 4 + 1`, padding `raw % min(4, window)`
        /// (pooling padding must be smaller than the window).
        pub kh: u8,
        pub kw: u8,
        pub stride_h: u8,
        pub stride_w: u8,
        pub pad: [u8; 4],
        pub ceil_mode: bool,
        /// Channels `raw % 40 + 1`; height and width `raw % 24 + 1`, raised to fit.
        pub c: u8,
        pub h: u8,
        pub w: u8,
        /// Output slice offset, `raw % 64`.
        pub out_offset: u8,
        /// The epilogue convolution (same window): output channels `raw % 24 + 1`.
        pub co: u8,
        pub relu: bool,
        /// Scale of the residual add: `(raw as i8) / 64`.
        pub scale: u8,
        pub seed: u64,
    }

    const LAYOUTS: [(Layout, Layout); 4] = [
        (Layout::Nchw, Layout::Nchw),
        (Layout::Nchw16c, Layout::Nchw16c),
        (Layout::Nchw, Layout::Nchw16c),
        (Layout::Nchw16c, Layout::Nchw),
    ];

    impl PoolCase {
        /// The window and the input shape it fits.
        pub fn window(&self) -> (PoolGeometry, Dims) {
            let (kh, kw) = (self.kh as usize % 8 + 1, self.kw as usize % 8 + 1);
            let p = |raw: u8, k: usize| raw as usize % k.min(4);
            let pad = Padding {
                top: p(self.pad[0], kh),
                left: p(self.pad[1], kw),
                bottom: p(self.pad[2], kh),
                right: p(self.pad[3], kw),
            };
            let window = ConvGeometry {
                kh,
                kw,
                stride_h: self.stride_h as usize % 4 + 1,
                stride_w: self.stride_w as usize % 4 + 1,
                pad,
            };
            let h = (self.h as usize % 24 + 1).max(kh.saturating_sub(pad.top + pad.bottom)).max(1);
            let w = (self.w as usize % 24 + 1).max(kw.saturating_sub(pad.left + pad.right)).max(1);
            (PoolGeometry { window, ceil_mode: self.ceil_mode }, Dims::new(self.c as usize % 40 + 1, h, w))
        }
    }

    /// Runs `f(input, out)` with the input in every layout of [`LAYOUTS`] and the
    /// output written into a sentinel-guarded slice; returns each output read back in
    /// NCHW order, after checking sentinels and padding lanes.
    fn each_layout(
        x: &[f32],
        din: Dims,
        dout: Dims,
        before: usize,
        what: &str,
        mut f: impl FnMut(Image, &mut ImageMut),
    ) -> Vec<(Layout, Layout, Vec<f32>)> {
        LAYOUTS
            .iter()
            .map(|&(li, lo)| {
                let xin = to_layout(x, din, li);
                let after = 64 - before;
                let mut buf = canvas(dout, lo, before, after);
                let len = lo.image_len(dout);
                f(Image::new(&xin, din, li), &mut ImageMut::new(&mut buf[before..before + len], dout, lo));
                let label = format!("{what} {li:?} -> {lo:?}");
                check_sentinels(&buf, before, after, &label);
                check_padding_lanes(&buf[before..before + len], dout, lo, &label);
                let out = Image::new(&buf[before..before + len], dout, lo);
                let mut nchw = vec![0.0; dout.volume()];
                reference::copy(out, &mut ImageMut::new(&mut nchw, dout, Layout::Nchw));
                (li, lo, nchw)
            })
            .collect()
    }

    /// Panics unless every layout's result equals the first (NCHW) bit for bit.
    fn same_bits(results: &[(Layout, Layout, Vec<f32>)], what: &str) {
        let base = &results[0].2;
        for (li, lo, r) in &results[1..] {
            for (i, (a, b)) in base.iter().zip(r).enumerate() {
                assert!(a.to_bits() == b.to_bits(), "{what}: {li:?} -> {lo:?} gives {b} at {i}, NCHW gives {a}");
            }
        }
    }

    /// Max and average pooling (both divisor conventions), a convolution with a
    /// residual and the case's activation, a residual add and a ReLU, each in every
    /// layout pair; the results must agree bit for bit. Pooling results must also be
    /// finite (no window may lie wholly in the padding) and no larger than the input
    /// (an average: but for its rounding).
    pub fn check(case: &PoolCase) {
        let (geom, din) = case.window();
        let mut rng = Rng::new(case.seed);
        let x = rng.vec(din.volume());
        let (oh, ow) = geom.output_hw(din.h, din.w).expect("window fits");
        let dout = Dims::new(din.c, oh, ow);
        let before = case.out_offset as usize % 64;
        let what = format!("{case:?} ({geom:?} on {din:?})");
        let max_in = x.iter().fold(0f32, |m, v| m.max(v.abs()));

        let pad = pad_values(&x, din.c);
        // `None`: max pooling; `Some(count_include_pad)`: average pooling; `Some(None)`:
        // average pooling padded with `pad`.
        for avg in [None, Some(Some(true)), Some(Some(false)), Some(None)] {
            let what = format!("{} {what}", pool_name(avg));
            let results = each_layout(&x, din, dout, before, &what, |i, o| match avg {
                None => reference::max_pool(i, &geom, o),
                Some(Some(p)) => reference::avg_pool(i, &geom, p, o),
                Some(None) => reference::avg_pool_padded(i, &geom, &pad, o),
            });
            same_bits(&results, &what);
            // A max is one of its inputs; a mean of an n-value window within `max_in`
            // may round above it: its sum, the padding's product, 1/n and the final
            // product round at most n + 3 times, by u = ε/2 each, under (n + 1) ε.
            let n = (geom.window.kh * geom.window.kw) as f32;
            let bound = if avg.is_none() { max_in } else { max_in * (1.0 + (n + 1.0) * f32::EPSILON) };
            for (i, v) in results[0].2.iter().enumerate() {
                assert!(v.is_finite() && v.abs() <= bound, "{what}: output {i} is {v}, inputs are within {max_in}");
            }
        }

        // Convolution epilogue: the same window as a convolution, channels shrunk to budget.
        let g = geom.window;
        let (coh, cow) = g.output_hw(din.h, din.w).expect("a pooling window that fits fits a convolution");
        let (mut ci, mut co) = (din.c, case.co as usize % 24 + 1);
        while ci * co * g.kh * g.kw * coh * cow > MAX_MACS && (ci > 1 || co > 1) {
            if ci >= co { ci = ci.div_ceil(2) } else { co = co.div_ceil(2) }
        }
        let (cin, cout) = (Dims::new(ci, din.h, din.w), Dims::new(co, coh, cow));
        let (cx, wt, bias, res) =
            (rng.vec(cin.volume()), rng.vec(co * ci * g.kh * g.kw), rng.vec(co), rng.vec(cout.volume()));
        let act = if case.relu { Activation::Relu } else { Activation::None };
        let what = format!("conv2d epilogue {case:?} ({ci} -> {co}, {g:?})");
        for lr in [Layout::Nchw, Layout::Nchw16c] {
            let r = to_layout(&res, cout, lr);
            let results = each_layout(&cx, cin, cout, before, &what, |i, o| {
                reference::conv2d(i, &wt, Some(&bias), &g, Some(Image::new(&r, cout, lr)), act, o)
            });
            same_bits(&results, &format!("{what}, residual {lr:?}"));
        }

        // The elementwise epilogues on the pooled shape.
        let (a, y) = (rng.vec(dout.volume()), rng.vec(dout.volume()));
        let scale = case.scale as i8 as f32 / 64.0;
        for ly in [Layout::Nchw, Layout::Nchw16c] {
            let yl = to_layout(&y, dout, ly);
            let what = format!("residual_add {case:?}, y {ly:?}");
            let results = each_layout(&a, dout, dout, before, &what, |i, o| {
                reference::residual_add(i, Image::new(&yl, dout, ly), scale, act, o)
            });
            same_bits(&results, &what);
        }
        let results = each_layout(&x, din, din, before, "relu", reference::relu);
        same_bits(&results, &format!("relu {case:?}"));

        check_tiers(case, &x, geom, din, before);
    }

    /// Padding values per channel for average pooling: inputs, so that the averages
    /// stay within the inputs' range.
    fn pad_values(x: &[f32], c: usize) -> Vec<f32> {
        (0..c).map(|i| x[i * 7 % x.len()]).collect()
    }

    /// The name of a pooling in [`check`]'s and [`check_tiers`]' loops.
    fn pool_name(avg: Option<Option<bool>>) -> String {
        match avg {
            None => "max_pool".into(),
            Some(Some(p)) => format!("avg_pool count_include_pad={p}"),
            Some(None) => "avg_pool padded with values".into(),
        }
    }

    /// Every tier's blocked pooling on NCHW16c, split in three parts, the input inside NaN (a read past it
    /// poisons an average), the output inside sentinels: max pooling equals the
    /// reference exactly; an average of `n` terms is within `(n + 2) eps mean|x|` of it, with
    /// `mean|x|` the same average over the magnitudes (both sides round a sum of `n`
    /// terms in their own order, then divide).
    fn check_tiers(case: &PoolCase, x: &[f32], geom: PoolGeometry, din: Dims, before: usize) {
        let blk = Layout::Nchw16c;
        let (oh, ow) = geom.output_hw(din.h, din.w).expect("window fits");
        let (dout, dgap) = (Dims::new(din.c, oh, ow), Dims::new(din.c, 1, 1));
        let in_len = blk.image_len(din);
        let mut xbuf = vec![f32::NAN; before + in_len + 64];
        xbuf[before..before + in_len].copy_from_slice(&to_layout(x, din, blk));
        let xin = Image::new(&xbuf[before..before + in_len], din, blk);
        let abs: Vec<f32> = x.iter().map(|v| v.abs()).collect();
        let (xn, an) = (Image::new(x, din, Layout::Nchw), Image::new(&abs, din, Layout::Nchw));
        let pad = pad_values(x, din.c);
        let pad_abs: Vec<f32> = pad.iter().map(|v| v.abs()).collect();
        // `Some(avg)`: pooling as in [`check`]; `None`: global average pooling.
        for op in [Some(None), Some(Some(Some(true))), Some(Some(Some(false))), Some(Some(None)), None] {
            let (name, d, terms) = match op {
                Some(avg) => (pool_name(avg), dout, avg.map(|_| geom.window.kh * geom.window.kw)),
                None => ("global_avg_pool".to_string(), dgap, Some(din.h * din.w)),
            };
            let slow = |i: Image, o: &mut ImageMut, pad: &[f32]| match op {
                Some(None) => reference::max_pool(i, &geom, o),
                Some(Some(Some(p))) => reference::avg_pool(i, &geom, p, o),
                Some(Some(None)) => reference::avg_pool_padded(i, &geom, pad, o),
                None => reference::global_avg_pool(i, o),
            };
            let fast = |k: &Kernels, i: Image, o: &mut ImageMut| match op {
                Some(None) => pool(k, i.into(), &geom, PoolKind::Max, &mut o.into(), &SplitInThree),
                Some(Some(avg)) => {
                    let kind = match avg {
                        Some(p) => PoolKind::Avg { count_include_pad: p, relu: false },
                        None => PoolKind::AvgPadded { pad: &pad, relu: false },
                    };
                    pool(k, i.into(), &geom, kind, &mut o.into(), &SplitInThree)
                }
                None => global_avg_pool(k, i.into(), o, &SplitInThree),
            };
            let (mut want, mut mag) = (vec![0.0; d.volume()], vec![0.0; d.volume()]);
            slow(xn, &mut ImageMut::new(&mut want, d, Layout::Nchw), &pad);
            slow(an, &mut ImageMut::new(&mut mag, d, Layout::Nchw), &pad_abs);
            for tier in Tier::available() {
                let k = Kernels::new(tier).expect("available");
                let what = format!("{tier:?} {name} {case:?} ({geom:?} on {din:?})");
                let after = 64 - before;
                let mut buf = canvas(d, blk, before, after);
                let len = blk.image_len(d);
                fast(&k, xin, &mut ImageMut::new(&mut buf[before..before + len], d, blk));
                check_sentinels(&buf, before, after, &what);
                let out = &buf[before..before + len];
                check_padding_lanes(out, d, blk, &what);
                for c in 0..d.c {
                    for y in 0..d.h {
                        for xx in 0..d.w {
                            let i = (c * d.h + y) * d.w + xx;
                            let got = out[blk.index(d, c, y, xx)];
                            let tol = terms.map_or(0.0, |n| (n + 2) as f32 * f32::EPSILON * mag[i]);
                            assert!(
                                (got - want[i]).abs() <= tol || got.to_bits() == want[i].to_bits(),
                                "{what}: at (c={c}, y={y}, x={xx}) got {got}, want {}, tolerance {tol:e}",
                                want[i]
                            );
                        }
                    }
                }
            }
        }
    }
}

pub mod planner {
    //! Random valid graphs: planned and run against the interpreter, and the plan's
    //! arena checked for overlaps.

    use arbitrary::Arbitrary;
    use incept::graph::{
        Activation, ConvGeometry, ConvSpec, Dims, Graph, GraphBuilder, Padding, PoolGeometry, ValueId,
    };
    use incept::interpret::interpret;
    use incept::lower::Kernel;
    use incept::plan::{Action, Plan, View};
    use incept::weights::Weights;
    use incept::{Model, SessionOptions};
    use incept_kernels::{Layout, Tier};

    use super::Rng;

    /// Normalised error allowed between the session and the interpreter: largest
    /// absolute difference over the largest value of the magnitude evaluation (see
    /// [`magnitudes`]), which bounds the terms every output was summed from.
    pub const TOL: f32 = 1e-4;

    /// The graph evaluated on magnitudes: `|x|`, convolution and linear weights and
    /// biases `|w|`, BatchNorm as `|gamma| x / sqrt(var + eps) + |beta| + |gamma mean| / sqrt(var + eps)`,
    /// residual scales `|s|`. Every value bounds the sum of the absolute terms its
    /// counterpart in the real graph is computed from, so rounding errors are small
    /// relative to it even where an output cancels to nearly zero (a single-class
    /// head whose bias and products cancel: the fuzzer found one with |y| = 8e-5).
    fn magnitudes(graph: &Graph, weights: &Weights, x: &[f32], batch: usize) -> Vec<f32> {
        use incept::graph::{Op, ParamKind};
        use incept::weights::Tensor;
        let mut g = graph.clone();
        for n in &mut g.nodes {
            if let Op::ResidualAdd { scale, .. } = &mut n.op {
                *scale = scale.abs();
            }
        }
        let mut w = Weights::new();
        for p in &graph.params {
            let t = weights.get(&p.name).expect("weights of the graph");
            let data = match p.kind {
                ParamKind::BnMean => vec![0.0; t.data.len()],
                ParamKind::BnBeta => {
                    let bn = p.name.trim_end_matches("bias");
                    let get = |s: &str| &weights.get(&format!("{bn}{s}")).expect("BatchNorm parameters").data;
                    let eps = graph
                        .nodes
                        .iter()
                        .find_map(|n| match n.op {
                            Op::BatchNorm { beta, eps, .. } if graph.params[beta.0].name == p.name => Some(eps),
                            _ => None,
                        })
                        .expect("a BatchNorm reads its shift");
                    let (gamma, mean, var) = (get("weight"), get("running_mean"), get("running_var"));
                    (0..t.data.len())
                        .map(|i| t.data[i].abs() + (gamma[i] * mean[i]).abs() / (var[i] + eps).sqrt())
                        .collect()
                }
                _ => t.data.iter().map(|v| v.abs()).collect(),
            };
            w.insert(p.name.clone(), Tensor { shape: t.shape.clone(), data });
        }
        let ax: Vec<f32> = x.iter().map(|v| v.abs()).collect();
        interpret(&g, &w, &ax, batch).expect("interpret magnitudes")
    }

    /// Operations a graph is built from.
    pub const MAX_OPS: usize = 10;

    /// Channel counts: unaligned (3, 5, 13, 17, 20), aligned (16, 32) and small.
    const CHANNELS: [usize; 8] = [5, 13, 16, 20, 32, 3, 8, 17];

    /// Convolution windows of the family, and two asymmetric paddings.
    const GEOMETRIES: [ConvGeometry; 12] = [
        ConvGeometry::new(1, 1, 1, Padding::uniform(0)),
        ConvGeometry::new(3, 3, 1, Padding::uniform(1)),
        ConvGeometry::new(3, 3, 2, Padding::uniform(0)),
        ConvGeometry::new(3, 3, 2, Padding::uniform(1)),
        ConvGeometry::new(1, 7, 1, Padding::symmetric(0, 3)),
        ConvGeometry::new(7, 1, 1, Padding::symmetric(3, 0)),
        ConvGeometry::new(5, 5, 1, Padding::uniform(2)),
        ConvGeometry::new(1, 3, 1, Padding::symmetric(0, 1)),
        ConvGeometry::new(3, 1, 1, Padding::symmetric(1, 0)),
        ConvGeometry::new(3, 3, 1, Padding::uniform(0)),
        ConvGeometry::new(3, 3, 2, Padding { top: 0, left: 0, bottom: 1, right: 1 }),
        ConvGeometry { kh: 2, kw: 4, stride_h: 1, stride_w: 2, pad: Padding { top: 1, left: 0, bottom: 0, right: 2 } },
    ];

    /// Residual scales: Inception-ResNet's, one, and a negative one.
    const SCALES: [f32; 4] = [0.17, 1.0, 0.1, -0.5];

    /// Raw fields; see [`GraphCase::build`] for how they become a graph.
    #[derive(Arbitrary, Clone, Debug)]
    pub struct GraphCase {
        /// Input channels `raw % 8 + 1`, height and width `raw % 10 + 3`.
        pub c: u8,
        pub h: u8,
        pub w: u8,
        /// `raw % 3 + 1`.
        pub batch: u8,
        /// Index into the available tiers.
        pub tier: u8,
        /// `raw % 4`: 0, 1 global pool + linear on the last value; 2 global pool of
        /// every unread value, concatenated, + linear; 3 no head. Classes
        /// `raw / 4 % 10 + 1`.
        pub head: u8,
        pub seed: u32,
        /// `raw % (MAX_OPS + 1)` of `ops` are used.
        pub n_ops: u8,
        pub ops: [OpCode; MAX_OPS],
    }

    /// One operation: `kind % 8` picks what, `a`..`d` its operands (a value is picked
    /// as `raw % values so far`).
    #[derive(Arbitrary, Clone, Copy, Debug)]
    pub struct OpCode {
        pub kind: u8,
        pub a: u8,
        pub b: u8,
        pub c: u8,
        pub d: u8,
    }

    /// A graph under construction, with the values built so far.
    struct Gen {
        b: GraphBuilder,
        values: Vec<ValueId>,
        read: Vec<ValueId>,
        names: usize,
    }

    impl Gen {
        fn dims(&self, v: ValueId) -> Dims {
            self.b.dims(v)
        }

        fn pick(&self, raw: u8) -> ValueId {
            self.values[raw as usize % self.values.len()]
        }

        /// Values of the same height and width as `x` (`x` included).
        fn same_hw(&self, x: ValueId) -> Vec<ValueId> {
            let d = self.dims(x);
            self.values.iter().copied().filter(|&v| (self.dims(v).h, self.dims(v).w) == (d.h, d.w)).collect()
        }

        fn name(&mut self, what: &str) -> String {
            self.names += 1;
            format!("{what}{}", self.names)
        }

        fn add(&mut self, v: ValueId, inputs: &[ValueId]) -> ValueId {
            self.read.extend_from_slice(inputs);
            self.values.push(v);
            v
        }

        /// A convolution (1x1 when the window does not fit), then optionally
        /// BatchNorm and ReLU (`flags` bits 0 bias, 1 BatchNorm, 2 ReLU).
        fn conv(&mut self, x: ValueId, out: usize, geom: ConvGeometry, flags: u8) -> ValueId {
            let d = self.dims(x);
            let geom = if geom.output_hw(d.h, d.w).is_some() { geom } else { GEOMETRIES[0] };
            let mut spec = ConvSpec { out_channels: out, geom, bias: false };
            if flags & 1 != 0 {
                spec = spec.bias();
            }
            let name = self.name("conv");
            let mut y = self.b.conv(x, &name, spec);
            self.read.push(x);
            if flags & 2 != 0 {
                let bn = format!("{name}.bn");
                let z = self.b.batch_norm(y, &bn, 1e-3);
                self.read.push(y);
                y = z;
            }
            if flags & 4 != 0 {
                let z = self.b.relu(y);
                self.read.push(y);
                y = z;
            }
            self.values.push(y);
            y
        }

        fn concat(&mut self, inputs: &[ValueId]) -> ValueId {
            let y = self.b.concat(inputs);
            self.add(y, inputs)
        }

        /// A pooling window if it fits `x` (`max`, else average with `count_include_pad`).
        fn pool(&mut self, x: ValueId, g: PoolGeometry, max: bool, count_include_pad: bool) -> Option<ValueId> {
            let d = self.dims(x);
            g.output_hw(d.h, d.w)?;
            let y = if max { self.b.max_pool(x, g) } else { self.b.avg_pool(x, g, count_include_pad) };
            Some(self.add(y, &[x]))
        }

        fn op(&mut self, op: OpCode) {
            let OpCode { kind, a, b, c, d } = op;
            let ch = |raw: u8| CHANNELS[raw as usize % CHANNELS.len()];
            match kind % 8 {
                // A convolution with any of the windows, BatchNorm, ReLU.
                0 => {
                    let x = self.pick(a);
                    self.conv(x, ch(c), GEOMETRIES[b as usize % GEOMETRIES.len()], d);
                }
                // An Inception module: 2..=4 branches from one value, concatenated.
                1 => {
                    let x = self.pick(a);
                    let mut branches = Vec::new();
                    for i in 0..2 + b as usize % 3 {
                        let (kind, out) = ((c >> (2 * i)) & 3, ch(d.rotate_left(3 * i as u32)));
                        let y = match kind {
                            0 => self.conv(x, out, GEOMETRIES[0], 6),
                            1 => {
                                let m = self.conv(x, ch(d.wrapping_add(i as u8)), GEOMETRIES[0], 6);
                                self.conv(m, out, GEOMETRIES[1], 6)
                            }
                            2 => {
                                let m = self.conv(x, ch(d ^ i as u8), GEOMETRIES[0], 6);
                                let m = self.conv(m, out, GEOMETRIES[4], 6);
                                self.conv(m, out, GEOMETRIES[5], 6)
                            }
                            _ => {
                                let p = self
                                    .pool(x, PoolGeometry::new(3, 1, 1, false), i % 2 == 0, c & 1 != 0)
                                    .expect("3x3/1 padded fits any input");
                                self.conv(p, out, GEOMETRIES[0], 6)
                            }
                        };
                        branches.push(y);
                    }
                    self.concat(&branches);
                }
                // A concat of 2..=4 values of one size: repeats, the graph input,
                // other concats (nesting) and unaligned channel counts all happen.
                2 => {
                    let x = self.pick(a);
                    let same = self.same_hw(x);
                    let n = same.len();
                    let picks = [x, same[c as usize % n], same[d as usize % n], same[(c as usize + d as usize) % n]];
                    self.concat(&picks[..2 + b as usize % 3]);
                }
                // A scaled residual add: x + s * conv1x1(y) (fused), the operands
                // swapped (not fusable), or two existing values of one shape.
                3 => {
                    let x = self.pick(a);
                    let dx = self.dims(x);
                    let (scale, act) = (
                        SCALES[d as usize % SCALES.len()],
                        if d & 4 != 0 { Activation::Relu } else { Activation::None },
                    );
                    let (p, q) = match b % 3 {
                        0 | 1 => {
                            let same = self.same_hw(x);
                            let src = same[c as usize % same.len()];
                            let y = self.conv(src, dx.c, GEOMETRIES[0], 1);
                            if b % 3 == 0 { (x, y) } else { (y, x) }
                        }
                        _ => {
                            let same: Vec<ValueId> =
                                self.values.iter().copied().filter(|&v| self.dims(v) == dx).collect();
                            (x, same[c as usize % same.len()])
                        }
                    };
                    let y = self.b.residual_add(p, q, scale, act);
                    self.add(y, &[p, q]);
                }
                // Pooling: 3x3/2 (ceil or floor), 3x3/1 padded, average both ways.
                4 => {
                    let x = self.pick(a);
                    let (g, max) = match b % 4 {
                        0 => (PoolGeometry::new(3, 2, 0, c & 1 != 0), true),
                        1 => (PoolGeometry::new(3, 1, 1, false), true),
                        2 => (PoolGeometry::new(3, 1, 1, false), false),
                        _ => (PoolGeometry::new(3, 2, 1, c & 1 != 0), false),
                    };
                    self.pool(x, g, max, d & 1 != 0);
                }
                // A ReLU on its own (fused only when it follows a private convolution).
                5 => {
                    let x = self.pick(a);
                    let y = self.b.relu(x);
                    self.add(y, &[x]);
                }
                // A BatchNorm on its own (folded only into a private convolution).
                6 => {
                    let x = self.pick(a);
                    let name = self.name("bn");
                    let y = self.b.batch_norm(x, &name, 1e-3);
                    self.add(y, &[x]);
                }
                // A grid reduction: 3x3/2 convolution and 3x3/2 max pool, concatenated.
                _ => {
                    let x = self.pick(a);
                    let dx = self.dims(x);
                    let g = GEOMETRIES[2];
                    let Some((oh, ow)) = g.output_hw(dx.h, dx.w) else { return };
                    let y = self.conv(x, ch(c), g, 6);
                    let ceil = PoolGeometry::new(3, 2, 0, true);
                    let pg = if ceil.output_hw(dx.h, dx.w) == Some((oh, ow)) && b & 1 != 0 {
                        ceil
                    } else {
                        PoolGeometry::new(3, 2, 0, false)
                    };
                    let p = self.pool(x, pg, true, false).expect("same window as the convolution");
                    self.concat(&[y, p]);
                }
            }
        }
    }

    impl GraphCase {
        /// The graph the case describes; always valid.
        pub fn build(&self) -> Graph {
            let input = Dims::new(self.c as usize % 8 + 1, self.h as usize % 10 + 3, self.w as usize % 10 + 3);
            let b = GraphBuilder::new("fuzz", input);
            let x = b.input();
            let mut g = Gen { b, values: vec![x], read: Vec::new(), names: 0 };
            for &op in &self.ops[..self.n_ops as usize % (MAX_OPS + 1)] {
                g.op(op);
            }
            let last = *g.values.last().expect("the input at least");
            let classes = (self.head / 4) as usize % 10 + 1;
            let out = match self.head % 4 {
                0 | 1 => {
                    let p = g.b.global_avg_pool(last);
                    g.b.linear(p, "fc", classes, true)
                }
                2 => {
                    let unread: Vec<ValueId> = g.values.iter().copied().filter(|v| !g.read.contains(v)).collect();
                    let pooled: Vec<ValueId> = unread.iter().map(|&v| g.b.global_avg_pool(v)).collect();
                    let c = if pooled.len() == 1 { pooled[0] } else { g.b.concat(&pooled) };
                    g.b.linear(c, "fc", classes, true)
                }
                _ if last == x => g.b.relu(x),
                _ => last,
            };
            g.b.finish(out).unwrap_or_else(|e| panic!("{self:?} builds an invalid graph: {e}"))
        }
    }

    /// Builds the case's graph, runs it planned on one tier and unplanned, compares,
    /// checks the plan's arena, and demands the same bits from two or three threads.
    pub fn check(case: &GraphCase) {
        let graph = case.build();
        let weights = Weights::synthetic(&graph, case.seed as u64);
        let model = Model::new(&graph, &weights).unwrap_or_else(|e| panic!("{case:?}: lowering failed: {e}"));
        let tiers = Tier::available();
        let tier = tiers[case.tier as usize % tiers.len()];
        let batch = case.batch as usize % 3 + 1;
        let options = SessionOptions { batch, threads: 1, tier: Some(tier), ..Default::default() };
        let mut session = model.session(options).unwrap_or_else(|e| panic!("{case:?}: planning failed: {e}"));
        check_arena(&model, session.plan(), case);

        let x = Rng::new(case.seed as u64 ^ 0x5eed).vec(session.input_len());
        let mut y = vec![f32::NAN; session.output_len()];
        session.run(&x, &mut y).expect("run");
        let want = interpret(&graph, &weights, &x, batch).expect("interpret");
        let scale = magnitudes(&graph, &weights, &x, batch).iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = y.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            err <= TOL * scale.max(f32::MIN_POSITIVE) && y.iter().all(|v| v.is_finite()),
            "{case:?} on {tier:?}, batch {batch}: max error {err:e} against max |y| {scale:e}\n{graph:#?}"
        );
        // A second run gives the same bits: no state leaks between runs.
        let mut again = vec![0.0; y.len()];
        session.run(&x, &mut again).expect("run");
        assert!(y.iter().zip(&again).all(|(a, b)| a.to_bits() == b.to_bits()), "{case:?}: second run differs");
        // Split over two or three threads, every map in bands of rows, every kernel
        // still computes each output in the same order: the same bits.
        let threads = 2 + case.seed as usize % 2;
        let options = SessionOptions { batch, threads, tier: Some(tier), band_min_pixels: 0, ..Default::default() };
        let mut threaded =
            model.session(options).unwrap_or_else(|e| panic!("{case:?}: planning for {threads} threads failed: {e}"));
        check_arena(&model, threaded.plan(), case);
        let mut yt = vec![f32::NAN; y.len()];
        threaded.run(&x, &mut yt).expect("threaded run");
        assert!(
            y.iter().zip(&yt).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{case:?} on {tier:?}, batch {batch}: {threads} threads differ from one"
        );
    }

    /// What one planned step reads and writes, in graph values.
    struct StepValues {
        inputs: Vec<ValueId>,
        output: ValueId,
        /// For a copy: the first channel written, within the step's output view.
        copy_c0: Option<usize>,
    }

    /// The graph values of every plan step, matched against the program the plan was
    /// made from: `Input`, then per program step its kernel, or for a concat the copies
    /// of the inputs that could not be placed, then `Output`.
    fn step_values(model: &Model, plan: &Plan) -> Vec<StepValues> {
        let program = model.program();
        let g = &program.graph;
        let mut out = vec![StepValues { inputs: vec![], output: g.input, copy_c0: None }];
        let mut t = 1;
        for s in &program.steps {
            if s.kernel == Kernel::Concat {
                let mut c0 = 0;
                for &v in &s.inputs {
                    let copy = format!("copy {} -> {}@{c0}", g.values[v.0].name, g.values[s.output.0].name);
                    if let Action::Copy { c0 } = plan.steps[t].action
                        && plan.steps[t].name == copy
                    {
                        out.push(StepValues { inputs: vec![v], output: s.output, copy_c0: Some(c0) });
                        t += 1;
                    }
                    c0 += g.dims(v).c;
                }
                continue;
            }
            let p = &plan.steps[t];
            assert!(
                p.action == Action::Kernel(s.kernel.clone()) && p.name == s.name,
                "plan step {t} ({}) does not match program step {}",
                p.name,
                s.name
            );
            out.push(StepValues { inputs: s.inputs.clone(), output: s.output, copy_c0: None });
            t += 1;
        }
        assert!(plan.steps[t].action == Action::Output && t + 1 == plan.steps.len(), "plan has unmatched steps");
        out.push(StepValues { inputs: vec![], output: g.output, copy_c0: None });
        for (p, sv) in plan.steps.iter().zip(&out) {
            let (want, got) = (g.dims(sv.output), p.output.dims);
            if let Some(c0) = sv.copy_c0 {
                // A copy's view is the part of the concat its channels fall in.
                assert!((got.h, got.w) == (want.h, want.w) && c0 + g.dims(sv.inputs[0]).c <= got.c, "{}", p.name);
            } else {
                assert_eq!(got, want, "{}: output view shape", p.name);
            }
            for (view, &v) in p.inputs.iter().zip(&sv.inputs) {
                assert_eq!(view.dims, g.dims(v), "{}: input view shape", p.name);
            }
        }
        out
    }

    /// Elements of arena `t` a copy step writes for image `n`: its channels of the
    /// output view's band `t`, and the view's padding lanes (`copy_channels` zeroes
    /// them).
    fn copy_writes(plan: &Plan, step: usize, c0: usize, c: usize, n: usize, t: usize) -> Vec<usize> {
        let (layout, view) = (plan.layout, plan.steps[step].output);
        let d = view.split.band_dims(view.dims, t);
        let base = view.band_range(n, t).start;
        let channels = (c0..c0 + c).chain(d.c..layout.padded_channels(d.c));
        channels.flat_map(|ch| (0..d.h * d.w).map(move |p| base + layout.index(d, ch, p / d.w, p % d.w))).collect()
    }

    fn overlaps(a: &std::ops::Range<usize>, b: &std::ops::Range<usize>) -> bool {
        a.start < b.end && b.start < a.end && !a.is_empty() && !b.is_empty()
    }

    /// Band `t` of image `n` of `view` in its arena, if the view has that band.
    fn band(view: &View, n: usize, t: usize) -> Option<std::ops::Range<usize>> {
        (t < view.split.bands()).then(|| view.band_range(n, t))
    }

    /// Checks the plan's arenas: every view and scratch inside them; within a step,
    /// what it writes (every image, and its scratch) never overlaps what it reads
    /// (every image); and, simulating the run arena by arena, every element a step
    /// reads was last written by the value it reads (or a part of it, for a
    /// concatenation) and not since overwritten by another value or a scratch.
    fn check_arena(model: &Model, plan: &Plan, case: &GraphCase) {
        let g = &model.program().graph;
        let layout = plan.layout;
        assert_eq!(layout, Layout::Nchw16c);
        assert!(plan.arena_len >= plan.lower_bound, "{case:?}: arena below its lower bound");
        let values = step_values(model, plan);
        let batch = plan.batch;
        let no_scratch = 0..0;

        // 1. Intervals, step by step, arena by arena (the scratch is in arena 0).
        for (i, (s, sv)) in plan.steps.iter().zip(&values).enumerate() {
            let what = || format!("{case:?}: step {i} '{}'", s.name);
            assert!(s.scratch.end <= plan.arena_len, "{}: scratch {:?} outside the arena", what(), s.scratch);
            for v in s.inputs.iter().chain([&s.output]) {
                assert!(v.split.bands() <= plan.bands && v.split.height() == v.dims.h, "{}: bands", what());
            }
            for t in 0..plan.bands {
                let scratch = if t == 0 { &s.scratch } else { &no_scratch };
                for n in 0..batch {
                    let out = band(&s.output, n, t).unwrap_or(0..0);
                    assert!(out.end <= plan.arena_len, "{}: output {out:?} outside arena {t}", what());
                    for v in &s.inputs {
                        let r = band(v, n, t).unwrap_or(0..0);
                        assert!(r.end <= plan.arena_len, "{}: input outside arena {t}", what());
                    }
                }
                if matches!(s.action, Action::Input | Action::Output) {
                    continue;
                }
                for n in 0..batch {
                    let out = band(&s.output, n, t).unwrap_or(0..0);
                    assert!(!overlaps(&out, scratch), "{}: output {out:?} overlaps scratch {scratch:?}", what());
                    for (k, v) in s.inputs.iter().enumerate() {
                        for m in 0..batch {
                            let r = band(v, m, t).unwrap_or(0..0);
                            assert!(!overlaps(&r, scratch), "{}: input {k} overlaps the scratch", what());
                            let hit = match sv.copy_c0 {
                                None => overlaps(&out, &r),
                                Some(c0) => {
                                    !out.is_empty()
                                        && copy_writes(plan, i, c0, v.dims.c, n, t).iter().any(|e| r.contains(e))
                                }
                            };
                            assert!(!hit, "{}: writing image {n} overlaps input {k} of image {m}", what());
                        }
                    }
                }
            }
        }

        // 2. Shadow run: which value last wrote each element of each arena.
        const NONE: usize = usize::MAX;
        const SCRATCH: usize = usize::MAX - 1;
        let nv = g.values.len();
        // parts[u][w]: w's data lives in u's buffer (w == u, or w a concatenated part of u).
        let mut parts = vec![vec![false; nv]; nv];
        for (u, row) in parts.iter_mut().enumerate() {
            row[u] = true;
        }
        for s in &model.program().steps {
            if s.kernel == Kernel::Concat {
                for &v in &s.inputs {
                    let sub = parts[v.0].clone();
                    parts[s.output.0].iter_mut().zip(sub).for_each(|(p, q)| *p |= q);
                }
            }
        }
        let mut owners = vec![vec![NONE; plan.arena_len]; plan.bands];
        for (i, (s, sv)) in plan.steps.iter().zip(&values).enumerate() {
            // `Output` reads the view it names.
            let reads: Vec<_> = if s.action == Action::Output {
                vec![(&s.output, sv.output)]
            } else {
                s.inputs.iter().zip(sv.inputs.iter().copied()).collect()
            };
            for (t, owner) in owners.iter_mut().enumerate() {
                for n in 0..batch {
                    for &(view, v) in &reads {
                        for e in band(view, n, t).unwrap_or(0..0) {
                            let o = owner[e];
                            assert!(
                                o != NONE && o != SCRATCH && parts[v.0][o],
                                "{case:?}: step {i} '{}' reads '{}' (image {n}) at element {e} of arena {t}, last written by {}",
                                s.name,
                                g.values[v.0].name,
                                match o {
                                    NONE => "nothing".to_string(),
                                    SCRATCH => "a scratch".to_string(),
                                    _ => format!("'{}'", g.values[o].name),
                                }
                            );
                        }
                    }
                    if s.action == Action::Output {
                        continue;
                    }
                    if t == 0 {
                        owner[s.scratch.clone()].fill(SCRATCH);
                    }
                    match sv.copy_c0 {
                        None => owner[band(&s.output, n, t).unwrap_or(0..0)].fill(sv.output.0),
                        Some(c0) if t < s.output.split.bands() => {
                            for e in copy_writes(plan, i, c0, s.inputs[0].dims.c, n, t) {
                                owner[e] = sv.inputs[0].0;
                            }
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
}

pub mod files {
    //! Model files, ONNX and safetensors files from arbitrary bytes: an error or a
    //! model, never a panic; a model that loads is planned and run (when small enough
    //! to be quick).

    use std::sync::Arc;

    use incept::lower::Program;
    use incept::{Session, SessionOptions};

    /// The largest network a case runs: multiply-adds and values per activation.
    const MAX_MACS: u64 = 20_000_000;
    const MAX_VALUES: usize = 1 << 20;

    /// Bytes in an `f32`-aligned buffer, as a mapping would be.
    struct Aligned(Vec<u64>, usize);

    impl AsRef<[u8]> for Aligned {
        fn as_ref(&self) -> &[u8] {
            &bytemuck::cast_slice(&self.0)[..self.1]
        }
    }

    fn aligned(bytes: &[u8]) -> Arc<Aligned> {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Arc::new(Aligned(words, bytes.len()))
    }

    /// The bytes with the prelude's and the header's checksums recomputed (when the
    /// header length is in range), so mutations get past them to the header parser
    /// and the tensor table.
    pub fn with_checksums_fixed(bytes: &[u8]) -> Vec<u8> {
        let mut b = bytes.to_vec();
        if b.len() >= 64 {
            let header_len = u64::from_le_bytes(b[24..32].try_into().unwrap());
            if let Some(json) = usize::try_from(header_len).ok().and_then(|n| b.get(64..64usize.checked_add(n)?)) {
                let crc = crc32fast::hash(json);
                b[48..52].copy_from_slice(&crc.to_le_bytes());
            }
            let crc = crc32fast::hash(&b[..52]);
            b[52..56].copy_from_slice(&crc.to_le_bytes());
        }
        b
    }

    /// A model file's bytes, as given and with their checksums fixed, loaded with and
    /// without verification.
    pub fn model_file(bytes: &[u8]) {
        for b in [bytes.to_vec(), with_checksums_fixed(bytes)] {
            for verify in [false, true] {
                if let Ok((program, _)) = incept::format::read(aligned(&b), verify) {
                    run(program);
                }
            }
        }
    }

    /// An ONNX file's bytes.
    pub fn onnx(bytes: &[u8]) {
        if let Ok((graph, weights)) = incept::import::onnx::from_bytes(bytes)
            && small(&graph)
            && let Ok(program) = Program::lower(&graph, &weights)
        {
            run(program);
        }
    }

    /// The graph the `safetensors` target loads weights onto (as the seeds hold):
    /// a 3x3 convolution with bias, BatchNorm, a global pool and a linear layer, and
    /// an ignored `aux.` prefix; the graph of the unit tests in
    /// `src/import/safetensors.rs`, which this crate cannot reach.
    pub fn safetensors_graph() -> incept::graph::Graph {
        use incept::graph::{ConvSpec, Dims, GraphBuilder};
        let mut b = GraphBuilder::new("tiny", Dims::new(3, 6, 6));
        let x = b.input();
        let y = b.conv(x, "stem.conv", ConvSpec::new(4, 3).pad(1).bias());
        let y = b.batch_norm(y, "stem.bn", 1e-3);
        let y = b.relu(y);
        let y = b.global_avg_pool(y);
        let y = b.linear(y, "fc", 5, true);
        b.ignore_params("aux.");
        b.finish(y).expect("a valid graph")
    }

    /// A safetensors file's bytes onto [`safetensors_graph`]: weights or an error,
    /// never a panic; weights that load run. The importer's own parser rejects what
    /// the format's reference reader (the `safetensors` crate) rejects, and accepts
    /// what it accepts, except a key given twice (which that reader takes the last of).
    pub fn safetensors(bytes: &[u8]) {
        let graph = safetensors_graph();
        let ours = incept::import::safetensors::from_bytes(bytes, &graph, "f");
        let invalid = match &ours {
            Err(incept::Error::Import(m)) if m.starts_with("f: not a valid safetensors file (") => Some(m),
            _ => None,
        };
        match (::safetensors::SafeTensors::deserialize(bytes), invalid) {
            (Err(e), None) => panic!("the reference reader rejects ({e}), the importer does not: {ours:?}"),
            (Ok(_), Some(m)) if !m.contains("appears twice") => panic!("the reference reader accepts: {m}"),
            _ => {}
        }
        if let Ok(weights) = ours {
            let mut s = incept::Model::new(&graph, &weights)
                .expect("checked weights make a model")
                .session(SessionOptions::default())
                .expect("a small model plans");
            let x = vec![0.5; s.input_len()];
            let mut y = vec![0.0; s.output_len()];
            s.run(&x, &mut y).expect("buffers of the session's sizes");
        }
    }

    fn small(graph: &incept::graph::Graph) -> bool {
        graph.macs() <= MAX_MACS && graph.values.iter().all(|v| v.dims.volume() <= MAX_VALUES)
    }

    fn run(program: Program) {
        if !small(&program.graph) {
            return;
        }
        let mut s = Session::new(Arc::new(program), SessionOptions::default()).expect("a loaded model plans");
        let x = vec![0.5; s.input_len()];
        let mut y = vec![0.0; s.output_len()];
        s.run(&x, &mut y).expect("buffers of the session's sizes");
    }
}
