//! The AMX BF16 tier: `TDPBF16PS` multiplies a tile of 16 pixels x K input
//! channels by a tile of K input channels x 16 output channels into a 16 x 16
//! float32 tile, 16 times the pairs of one `VDPBF16PS` (Intel Sapphire Rapids and
//! later).
//!
//! The tile contract ([`Bf16TileArgs`]) maps onto the tiles without a layout of
//! its own: the rows of A are the tile's pixels (up to 16), the columns of C an
//! output block's 16 channels, one C tile per output block (tmm0 to tmm3). K runs
//! over the taps: the staged BF16 input (NCHW16c, 16 channels per pixel) holds tap
//! `kx`'s 16 channels of a pixel directly followed by tap `kx + 1`'s, so one A row
//! of 64 bytes (32 BF16, K = 32) covers two neighbouring taps of a row, `in_pixel`
//! apart from the next pixel's; and the packed weights ([`crate::bf16::pack`]) hold
//! a tap as 8 rows of 64 bytes, (pair of input channels) x (16 output channels x
//! 2), the B layout `TDPBF16PS` reads, the two taps' blocks one after the other:
//! one B tile of 16 rows. A tap without a neighbour in its row or chunk (1x1 and
//! nx1 windows, odd widths) is a step of K = 16 on tmm6 and tmm7. So the weights
//! and the staged input are the other tiers' and model files stay valid. The
//! last input block's pairs past its real channels are read too: they are zeros
//! in both operands.
//!
//! The sums follow the contract's chunks (each chunk's C tiles start from zero,
//! then are stored and added to the bias or partial sum with the residual and
//! ReLU), but within a pair `TDPBF16PS` adds the even lane's product first (the
//! SDM's pseudocode), where `VDPBF16PS` adds the odd one first, and the hardware
//! need not follow the pseudocode's rounding at all: its results are checked
//! against the BF16 reference within float32 rounding, while the emulation
//! ([`super::amx_tiles::EmulatedTiles`]) replays the pseudocode bit for bit.
//!
//! Linux hands out tile state only on request, once per process
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`); without it, or
//! without AMX-TILE and AMX-BF16 in CPUID, the tier is unavailable and the BF16
//! kernels fall back to AVX512-BF16. Each tile call configures the tiles and
//! releases them, so any thread may run one.

use super::amx_tiles::{MAX_COLSB, MAX_ROWS, TileConfig, TileOps};
use super::convert::bf16;
use super::microkernel::{Bf16Microkernel, Bf16TileArgs, ChunkSums};
use crate::BLOCK;

/// The AMX tier's microkernel: up to 4 output blocks (4 C tiles) x 16 pixels (the
/// rows of a tile).
#[cfg(target_arch = "x86_64")]
pub(crate) const CONV: Bf16Microkernel = Bf16Microkernel {
    name: "conv_bf16_nchw16c_64oc_x16px__amx",
    max_px: [0, 16, 16, 16, 16],
    tile: conv_tile,
    // No AMX version of the image kind: its 3-channel steps would fill few rows
    // of K; the AVX512-BF16 tile runs it.
    image_tile: super::avx512::CONV.image_tile,
    to_bf16: super::avx512::CONV.to_bf16,
};

/// The same tier on [`super::amx_tiles::EmulatedTiles`], for tests on any host:
/// never a tier of its own (see [`crate::bf16::Bf16Kernels::amx_emulated`]).
#[cfg(any(test, feature = "amx-emulation-for-tests"))]
pub(crate) const CONV_EMULATED: Bf16Microkernel = Bf16Microkernel {
    name: "conv_bf16_nchw16c_64oc_x16px__amx_emulated",
    max_px: [0, 16, 16, 16, 16],
    tile: conv_tile_emulated,
    image_tile: super::portable::CONV.image_tile,
    to_bf16: super::convert::to_bf16_slice,
};

/// Tiles of a step over two taps (K = 32 BF16 per A row).
const A2: u8 = 4;
const B2: u8 = 5;
/// Tiles of a step over one tap (K = 16).
const A1: u8 = 6;
const B1: u8 = 7;

/// The tiles of an `ob x px` tile: C (tmm0..ob) and A `px` rows of 64 bytes
/// (float32 sums, two taps' BF16); B2 16 rows of 64 bytes (two taps' 16 pairs of
/// 16 output channels); A1 `px` rows of 32 bytes and B1 8 rows (one tap).
fn config(ob: usize, px: usize) -> TileConfig {
    let mut cfg = TileConfig::new();
    for c in 0..ob {
        cfg = cfg.with(c, px, MAX_COLSB);
    }
    cfg.with(A2 as usize, px, MAX_COLSB).with(B2 as usize, BLOCK, MAX_COLSB).with(A1 as usize, px, BLOCK * 2).with(
        B1 as usize,
        BLOCK / 2,
        MAX_COLSB,
    )
}

/// Hardware tile: the AMX instructions, AVX-512 for the rounding of a float32
/// input and for the epilogue.
///
/// # Safety
/// The [`Bf16TileArgs`] contract; the CPU runs the tier ([`amx_usable`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn conv_tile(a: &Bf16TileArgs, ob: usize, px: usize) {
    // SAFETY: forwarded; AMX with tile state granted is the caller's.
    unsafe { conv_tile_on(&mut super::amx_tiles::AmxInstructions, a, ob, px, CONV.to_bf16) }
}

/// # Safety
/// The [`Bf16TileArgs`] contract.
#[cfg(any(test, feature = "amx-emulation-for-tests"))]
unsafe fn conv_tile_emulated(a: &Bf16TileArgs, ob: usize, px: usize) {
    let mut tiles = super::amx_tiles::EmulatedTiles::new();
    // SAFETY: forwarded; the emulation runs anywhere.
    unsafe { conv_tile_on(&mut tiles, a, ob, px, CONV_EMULATED.to_bf16) }
}

/// `$body` with `$c` the const tile index of output block `$b` (0..4).
macro_rules! on_c {
    ($b:expr, $c:ident => $body:expr) => {
        match $b {
            0 => {
                const $c: u8 = 0;
                $body
            }
            1 => {
                const $c: u8 = 1;
                $body
            }
            2 => {
                const $c: u8 = 2;
                $body
            }
            _ => {
                const $c: u8 = 3;
                $body
            }
        }
    };
}

/// One `ob x px` tile of the contract on `ops`' tile instructions; `to_bf16`
/// rounds a float32 input (one pixel's 16 lanes at a time).
///
/// # Safety
/// The [`Bf16TileArgs`] contract for an `ob x px` tile, `1 <= ob <= 4`,
/// `1 <= px <= 16`, and `ops` usable on this CPU.
#[inline(always)]
unsafe fn conv_tile_on<T: TileOps>(
    ops: &mut T,
    a: &Bf16TileArgs,
    ob: usize,
    px: usize,
    to_bf16: unsafe fn(&[f32], &mut [bf16]),
) {
    assert!((1..=4).contains(&ob) && (1..=MAX_ROWS).contains(&px), "AMX tile {ob}x{px}");
    let n = a.ci_blocks * a.kh * a.kw;
    let in_stride = a.in_pixel * size_of::<bf16>();
    let w_block = a.w_block * size_of::<bf16>();
    let mut staged = [[bf16::ZERO; BLOCK]; MAX_ROWS];
    let mut sums: ChunkSums = [[[0f32; BLOCK]; MAX_ROWS]; 4];
    let mut pos = (0, 0, 0);
    // SAFETY: the tiles are configured below for the shapes every load, product
    // and store uses; every address is one the contract keeps in bounds: an A row
    // of two taps reads tap kx's 16 lanes and tap kx + 1's (kx + 1 < kw), a B tile
    // one or two taps' weights of block b < ob, C stores go to `sums`, and
    // `add_chunk` writes the `ob x px` tile the contract bounds.
    unsafe {
        ops.configure(&config(ob, px));
        for t0 in (0..n).step_by(a.chunk) {
            let t1 = (t0 + a.chunk).min(n);
            for b in 0..ob {
                on_c!(b, C => ops.zero::<C>());
            }
            let mut t = t0;
            while t < t1 {
                let x = a.input.wrapping_add(a.tap_offset(pos)).cast::<u8>();
                let w = a.weights.wrapping_add(t * BLOCK * BLOCK).cast::<u8>();
                if a.input_f32.is_null() && pos.2 + 1 < a.kw && t + 1 < t1 {
                    ops.load::<A2>(x, in_stride);
                    for b in 0..ob {
                        ops.load::<B2>(w.add(b * w_block), MAX_COLSB);
                        on_c!(b, C => ops.dpbf16ps::<C, A2, B2>());
                    }
                    (pos, t) = (a.next_tap(a.next_tap(pos)), t + 2);
                    continue;
                }
                if a.input_f32.is_null() {
                    ops.load::<A1>(x, in_stride);
                } else {
                    let x = a.input_f32.add(a.tap_offset(pos));
                    for (p, s) in staged.iter_mut().enumerate().take(px) {
                        to_bf16(std::slice::from_raw_parts(x.add(p * a.in_pixel), BLOCK), s);
                    }
                    ops.load::<A1>(staged.as_ptr().cast(), BLOCK * size_of::<bf16>());
                }
                for b in 0..ob {
                    ops.load::<B1>(w.add(b * w_block), MAX_COLSB);
                    on_c!(b, C => ops.dpbf16ps::<C, A1, B1>());
                }
                (pos, t) = (a.next_tap(pos), t + 1);
            }
            for (b, s) in sums.iter_mut().enumerate().take(ob) {
                on_c!(b, C => ops.store::<C>(s.as_mut_ptr().cast(), BLOCK * size_of::<f32>()));
            }
            a.add_chunk(&sums, (ob, px), t0 == 0, t1 == n);
        }
        ops.release();
    }
}

/// Whether this process may run the AMX tier: `Ok` when CPUID reports AMX-TILE,
/// AMX-BF16, AVX-512F and AVX512-BF16 (for the conversions) and Linux granted
/// the tile data state; else why not. Asked once per process; a refusal on a
/// CPU that has AMX is reported once on stderr, as the tier then falls back.
#[cfg(target_arch = "x86_64")]
pub(crate) fn amx_usable() -> &'static Result<(), String> {
    static USABLE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    USABLE.get_or_init(|| {
        let state = request_amx();
        if let Err(why) = &state
            && why.starts_with("Linux")
        {
            eprintln!("incept: {why}; BF16 convolutions use AVX512-BF16 instead of AMX");
        }
        state
    })
}

#[cfg(target_arch = "x86_64")]
fn request_amx() -> Result<(), String> {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    // SAFETY: CPUID exists on every x86-64 CPU; leaf 7 is read only when reported.
    // (Safe functions in newer Rust, unsafe in the oldest this crate supports.)
    #[allow(unused_unsafe)]
    let amx = unsafe { __cpuid(0).eax >= 7 && (__cpuid_count(7, 0).edx >> 22) & 0b101 == 0b101 };
    if !amx {
        return Err("this CPU has no AMX-BF16 (CPUID.7.0:EDX bits 22 and 24)".into());
    }
    if !(is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16")) {
        return Err("this CPU has AMX but not AVX512-BF16".into());
    }
    request_tile_data()
}

/// Asks Linux for the tile data state (`ARCH_REQ_XCOMP_PERM`, `XFEATURE_XTILEDATA`).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn request_tile_data() -> Result<(), String> {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with this code only changes the process's permitted
    // XSAVE features; it reads and writes no memory of ours.
    let r = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) };
    match r {
        0 => Ok(()),
        _ => Err(format!(
            "Linux refused the AMX tile data state (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA): {})",
            std::io::Error::last_os_error()
        )),
    }
}

#[cfg(all(target_arch = "x86_64", not(target_os = "linux")))]
fn request_tile_data() -> Result<(), String> {
    Err("AMX tile data is requested only on Linux".into())
}

/// FLOPs per iteration of [`tdpbf16ps_loop`]: 4 `TDPBF16PS` of 16 x 16 outputs x
/// 32 products, a multiply and an add each.
#[cfg(target_arch = "x86_64")]
pub(crate) const TDPBF16PS_LOOP_FLOPS: u64 = 4 * 16 * 16 * 32 * 2;

/// `TDPBF16PS` throughput: 2 A tiles x 2 B tiles into 4 independent C tiles per
/// iteration, full 16 x 64-byte tiles; returns one sum so the loop is kept.
///
/// # Safety
/// The CPU runs the tier ([`amx_usable`]).
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn tdpbf16ps_loop(iters: u64) -> f32 {
    // SAFETY: forwarded.
    unsafe { peak_loop_on(&mut super::amx_tiles::AmxInstructions, iters) }
}

/// [`tdpbf16ps_loop`] on `ops`.
///
/// # Safety
/// `ops` usable on this CPU.
#[cfg(any(target_arch = "x86_64", test))]
#[inline(always)]
unsafe fn peak_loop_on<T: TileOps>(ops: &mut T, iters: u64) -> f32 {
    // Pairs of 1.0 and of about 1e-3 (0x3a83), opaque to the compiler.
    let a = [std::hint::black_box(bf16::from_bits(0x3f80)); 2 * 16 * 32];
    let b = [std::hint::black_box(bf16::from_bits(0x3a83)); 2 * 16 * 32];
    let mut c = [[0f32; 16]; 16];
    let mut cfg = TileConfig::new();
    for t in 0..8 {
        cfg = cfg.with(t, 16, MAX_COLSB);
    }
    let (a, b) = (a.as_ptr().cast::<u8>(), b.as_ptr().cast::<u8>());
    // SAFETY: every tile is 16 rows of 64 bytes; A and B hold two such tiles each.
    unsafe {
        ops.configure(&cfg);
        ops.load::<4>(a, MAX_COLSB);
        ops.load::<5>(a.add(1024), MAX_COLSB);
        ops.load::<6>(b, MAX_COLSB);
        ops.load::<7>(b.add(1024), MAX_COLSB);
        for _ in 0..iters {
            ops.dpbf16ps::<0, 4, 6>();
            ops.dpbf16ps::<1, 4, 7>();
            ops.dpbf16ps::<2, 5, 6>();
            ops.dpbf16ps::<3, 5, 7>();
        }
        ops.store::<3>(c.as_mut_ptr().cast(), MAX_COLSB);
        ops.release();
    }
    c[15][15]
}

#[cfg(test)]
mod tests {
    use super::super::amx_tiles::EmulatedTiles;
    use super::*;

    /// The peak loop's tiles are a valid configuration and it computes what it says.
    #[test]
    fn the_peak_loop_runs_on_the_emulation() {
        // SAFETY: the emulation runs anywhere.
        let s = unsafe { peak_loop_on(&mut EmulatedTiles::new(), 3) };
        let w = bf16::from_bits(0x3a83).to_f32();
        // 3 iterations x 32 products of 1 * w, added one at a time.
        let want = (0..96).fold(0f32, |acc, _| acc + w);
        assert_eq!(s, want);
    }

    /// Every tile shape's configuration is valid and its operands agree.
    #[test]
    fn every_tile_configuration_is_valid() {
        for ob in 1..=4 {
            for px in 1..=16 {
                let cfg = config(ob, px);
                let mut t = EmulatedTiles::new();
                // SAFETY: no memory is touched; the emulation checks the shapes.
                unsafe {
                    t.configure(&cfg);
                    t.dpbf16ps::<0, A2, B2>();
                    t.dpbf16ps::<0, A1, B1>();
                }
                assert_eq!(cfg.shape(ob), if ob < 4 { (0, 0) } else { (px, MAX_COLSB) });
            }
        }
    }

    /// One full `TDPBF16PS` (16 x 16 outputs, 32 products each) on `ops`, from
    /// pseudo-random operands; returns C.
    ///
    /// # Safety
    /// `ops` usable on this CPU.
    #[cfg(target_arch = "x86_64")]
    unsafe fn one_product_on<T: TileOps>(ops: &mut T, seed: u32) -> [[f32; 16]; 16] {
        let mut r = seed;
        let mut next = || {
            r = r.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (r >> 8) as f32 / (1 << 24) as f32 * 4.0 - 2.0
        };
        let a: Vec<bf16> = (0..16 * 32).map(|_| crate::bf16::convert::to_bf16(next())).collect();
        let b: Vec<bf16> = (0..16 * 32).map(|_| crate::bf16::convert::to_bf16(next())).collect();
        let mut c = [[0f32; 16]; 16];
        c.iter_mut().flatten().for_each(|v| *v = next());
        let cfg = TileConfig::new().with(0, 16, 64).with(1, 16, 64).with(2, 16, 64);
        // SAFETY: three 16 x 64-byte tiles over buffers of 1024 bytes each.
        unsafe {
            ops.configure(&cfg);
            ops.load::<0>(c.as_ptr().cast(), 64);
            ops.load::<1>(a.as_ptr().cast(), 64);
            ops.load::<2>(b.as_ptr().cast(), 64);
            ops.dpbf16ps::<0, 1, 2>();
            ops.store::<0>(c.as_mut_ptr().cast(), 64);
            ops.release();
        }
        c
    }

    /// The instructions against the emulation, where the host has AMX: within
    /// twice the float32 rounding bound of a 33-term sum (each side within 2 x 33 u
    /// of the exact value times the sum of magnitudes, at most 2 x 33 x 2^-24 x 66
    /// here), since Intel leaves the hardware's internal rounding unspecified.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn hardware_tdpbf16ps_agrees_with_the_emulation() {
        if let Err(why) = amx_usable() {
            eprintln!("SKIPPED (AMX hardware): {why}");
            return;
        }
        let tol = 2.0 * 2.0 * 33.0 * 2f32.powi(-24) * 66.0;
        for seed in 0..20 {
            // SAFETY: AMX is usable (checked above); the emulation runs anywhere.
            let (hw, emu) = unsafe {
                (
                    one_product_on(&mut super::super::amx_tiles::AmxInstructions, seed),
                    one_product_on(&mut EmulatedTiles::new(), seed),
                )
            };
            for (h, e) in hw.iter().flatten().zip(emu.iter().flatten()) {
                assert!((h - e).abs() <= tol, "seed {seed}: hardware {h}, emulation {e}");
            }
        }
    }

    /// On this host: either the tier is usable, or the reason names what is missing.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn availability_says_why_not() {
        match amx_usable() {
            Ok(()) => eprintln!("AMX usable on this host"),
            Err(why) => {
                assert!(why.contains("AMX"), "{why}");
                eprintln!("SKIPPED (AMX hardware): {why}");
            }
        }
    }
}
