//! The AMX tile operations the AMX BF16 tier uses, behind one small interface
//! with two implementations: [`AmxInstructions`], the instructions themselves in
//! `asm!` (their intrinsics are not stable Rust), and [`EmulatedTiles`], portable
//! code following the Intel SDM's description of the same instructions, so that
//! the tier's logic (tile configuration, loads, strides, the order of its sums)
//! is tested on every host and only the few `asm!` lines need an AMX host.
//!
//! A tile register holds up to 16 rows of up to 64 bytes; `LDTILECFG` gives each
//! of the 8 its rows and bytes per row (palette 1). `TDPBF16PS C, A, B` treats A
//! as rows of BF16 pairs and B as rows of pairs of BF16 columns:
//! `C[m][n] += A[m][2k] * B[k][2n] + A[m][2k+1] * B[k][2n+1]` for every pair `k`
//! of A's row, in float32.

#[cfg(any(test, feature = "amx-emulation-for-tests"))]
use super::convert::bf16;

/// A 64-byte palette-1 tile configuration, as `LDTILECFG` reads it: byte 0 the
/// palette, bytes 16.. the bytes per row of each tile (u16), bytes 48.. its rows.
/// A tile left at 0 rows and 0 bytes is unconfigured (using it faults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub(crate) struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 8],
    reserved2: [u8; 16],
    rows: [u8; 8],
    reserved3: [u8; 8],
}

/// Tile registers: 8, of at most 16 rows of 64 bytes.
pub(crate) const TILES: usize = 8;
/// Most rows of a tile.
pub(crate) const MAX_ROWS: usize = 16;
/// Most bytes in a tile row.
pub(crate) const MAX_COLSB: usize = 64;

impl TileConfig {
    /// Palette 1 with every tile unconfigured.
    pub(crate) const fn new() -> TileConfig {
        TileConfig {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            colsb: [0; 8],
            reserved2: [0; 16],
            rows: [0; 8],
            reserved3: [0; 8],
        }
    }

    /// This configuration with tile `t` of `rows` rows of `colsb` bytes.
    pub(crate) const fn with(mut self, t: usize, rows: usize, colsb: usize) -> TileConfig {
        assert!(t < TILES && rows <= MAX_ROWS && colsb <= MAX_COLSB && colsb.is_multiple_of(4));
        self.rows[t] = rows as u8;
        self.colsb[t] = colsb as u16;
        self
    }

    /// Rows and bytes per row of tile `t`.
    #[cfg(any(test, feature = "amx-emulation-for-tests"))]
    pub(crate) fn shape(&self, t: usize) -> (usize, usize) {
        (self.rows[t] as usize, self.colsb[t] as usize)
    }
}

/// The tile instructions, tile registers named by const parameters (`asm!` needs
/// them in the mnemonic).
///
/// # Safety (every method)
/// Tiles must be configured (after [`configure`](TileOps::configure), before
/// [`release`](TileOps::release)) and each operand valid for the configuration:
/// the CPU faults otherwise (the emulation panics). Loads and stores touch
/// `rows` rows of `colsb` bytes, `stride` bytes apart, from `base`: they must be
/// readable (writable for stores).
pub(crate) trait TileOps {
    /// `LDTILECFG`: configures the tiles, and zeroes them.
    unsafe fn configure(&mut self, cfg: &TileConfig);
    /// `TILEZERO tmmT`.
    unsafe fn zero<const T: u8>(&mut self);
    /// `TILELOADD tmmT, [base + stride]`: row `r` from `base + r * stride`.
    unsafe fn load<const T: u8>(&mut self, base: *const u8, stride: usize);
    /// `TDPBF16PS tmmC, tmmA, tmmB`.
    unsafe fn dpbf16ps<const C: u8, const A: u8, const B: u8>(&mut self);
    /// `TILESTORED [base + stride], tmmT`.
    unsafe fn store<const T: u8>(&mut self, base: *mut u8, stride: usize);
    /// `TILERELEASE`: back to the unconfigured state (the OS then need not save
    /// the tiles).
    unsafe fn release(&mut self);
}

/// The AMX instructions. Only for a CPU with AMX-TILE and AMX-BF16 whose OS has
/// granted this process the tile data state (`super::amx::amx_usable`).
#[cfg(target_arch = "x86_64")]
pub(crate) struct AmxInstructions;

#[cfg(target_arch = "x86_64")]
impl TileOps for AmxInstructions {
    #[inline(always)]
    unsafe fn configure(&mut self, cfg: &TileConfig) {
        // SAFETY: the caller's (an AMX CPU with the state granted); `cfg` is 64
        // readable bytes. The tiles are not Rust registers: nothing to clobber.
        unsafe { std::arch::asm!("ldtilecfg [{}]", in(reg) cfg, options(nostack, readonly, preserves_flags)) }
    }

    #[inline(always)]
    unsafe fn zero<const T: u8>(&mut self) {
        // SAFETY: the caller's.
        unsafe { std::arch::asm!("tilezero tmm{t}", t = const T, options(nostack, nomem, preserves_flags)) }
    }

    #[inline(always)]
    unsafe fn load<const T: u8>(&mut self, base: *const u8, stride: usize) {
        // SAFETY: the caller's: the rows read are readable.
        unsafe {
            std::arch::asm!(
                "tileloadd tmm{t}, [{base} + {stride} * 1]",
                t = const T, base = in(reg) base, stride = in(reg) stride,
                options(nostack, readonly, preserves_flags)
            )
        }
    }

    #[inline(always)]
    unsafe fn dpbf16ps<const C: u8, const A: u8, const B: u8>(&mut self) {
        // SAFETY: the caller's.
        unsafe {
            std::arch::asm!(
                "tdpbf16ps tmm{c}, tmm{a}, tmm{b}",
                c = const C, a = const A, b = const B,
                options(nostack, nomem, preserves_flags)
            )
        }
    }

    #[inline(always)]
    unsafe fn store<const T: u8>(&mut self, base: *mut u8, stride: usize) {
        // SAFETY: the caller's: the rows written are writable.
        unsafe {
            std::arch::asm!(
                "tilestored [{base} + {stride} * 1], tmm{t}",
                t = const T, base = in(reg) base, stride = in(reg) stride,
                options(nostack, preserves_flags)
            )
        }
    }

    #[inline(always)]
    unsafe fn release(&mut self) {
        // SAFETY: the caller's.
        unsafe { std::arch::asm!("tilerelease", options(nostack, nomem, preserves_flags)) }
    }
}

/// `v`, or a zero of its sign when subnormal: `TDPBF16PS` reads its operands and
/// writes its results so (DAZ, FTZ), whatever MXCSR says.
#[cfg(any(test, feature = "amx-emulation-for-tests"))]
fn flush(v: f32) -> f32 {
    if v.is_subnormal() { 0f32.copysign(v) } else { v }
}

/// The tile instructions in portable code, after the Intel SDM's pseudocode, for
/// tests only: a configuration must be valid (palette 1, reserved bytes zero),
/// each operand configured, and `TDPBF16PS`'s shapes must agree (C's rows are
/// A's, C's bytes per row B's, A's pairs B's rows), or it panics where the CPU
/// would fault. Loads zero the bytes past a tile's rows and columns, as the
/// instructions do. `TDPBF16PS` adds, for each row `m` of C, each pair `k` of A's
/// row in order and each column `n`, the even product `A[m][2k] * B[k][2n]` and
/// then the odd one `A[m][2k+1] * B[k][2n+1]`, each exact product added with one
/// rounding to nearest even, subnormal operands and results read and written as
/// zeros.
#[cfg(any(test, feature = "amx-emulation-for-tests"))]
pub(crate) struct EmulatedTiles {
    cfg: Option<TileConfig>,
    tiles: [[[u8; MAX_COLSB]; MAX_ROWS]; TILES],
}

#[cfg(any(test, feature = "amx-emulation-for-tests"))]
impl EmulatedTiles {
    /// Unconfigured tiles.
    pub(crate) fn new() -> EmulatedTiles {
        EmulatedTiles { cfg: None, tiles: [[[0; MAX_COLSB]; MAX_ROWS]; TILES] }
    }

    /// Rows and bytes per row of configured tile `t`.
    fn shape(&self, t: u8) -> (usize, usize) {
        let cfg = self.cfg.as_ref().expect("AMX emulation: tiles used before LDTILECFG");
        let (rows, colsb) = cfg.shape(t as usize);
        assert!(rows > 0 && colsb > 0, "AMX emulation: tmm{t} is not configured");
        (rows, colsb)
    }

    /// Float32 `n` of row `m` of tile `t`, or BF16 `n` (as float32, flushed).
    fn f32_at(&self, t: u8, m: usize, n: usize) -> f32 {
        f32::from_le_bytes(self.tiles[t as usize][m][4 * n..4 * n + 4].try_into().expect("4 bytes"))
    }
    fn bf16_at(&self, t: u8, m: usize, n: usize) -> f32 {
        let bits = u16::from_le_bytes(self.tiles[t as usize][m][2 * n..2 * n + 2].try_into().expect("2 bytes"));
        flush(bf16::from_bits(bits).to_f32())
    }
}

#[cfg(any(test, feature = "amx-emulation-for-tests"))]
impl TileOps for EmulatedTiles {
    unsafe fn configure(&mut self, cfg: &TileConfig) {
        assert_eq!(cfg.palette, 1, "AMX emulation: palette {} (only 1 is emulated)", cfg.palette);
        let reserved = cfg.reserved.iter().chain(&cfg.reserved2).chain(&cfg.reserved3);
        assert!(cfg.start_row == 0 && reserved.into_iter().all(|&b| b == 0), "AMX emulation: reserved bytes set");
        for t in 0..TILES {
            let (rows, colsb) = cfg.shape(t);
            assert!(rows <= MAX_ROWS && colsb <= MAX_COLSB, "AMX emulation: tmm{t} is {rows} x {colsb} bytes");
            assert!((rows == 0) == (colsb == 0), "AMX emulation: tmm{t} is {rows} x {colsb} bytes");
        }
        self.cfg = Some(*cfg);
        self.tiles = [[[0; MAX_COLSB]; MAX_ROWS]; TILES];
    }

    unsafe fn zero<const T: u8>(&mut self) {
        self.shape(T);
        self.tiles[T as usize] = [[0; MAX_COLSB]; MAX_ROWS];
    }

    unsafe fn load<const T: u8>(&mut self, base: *const u8, stride: usize) {
        let (rows, colsb) = self.shape(T);
        let tile = &mut self.tiles[T as usize];
        *tile = [[0; MAX_COLSB]; MAX_ROWS];
        for (r, row) in tile.iter_mut().enumerate().take(rows) {
            // SAFETY: the caller's: `colsb` bytes at `base + r * stride` are readable.
            let src = unsafe { std::slice::from_raw_parts(base.wrapping_add(r * stride), colsb) };
            row[..colsb].copy_from_slice(src);
        }
    }

    unsafe fn dpbf16ps<const C: u8, const A: u8, const B: u8>(&mut self) {
        let ((c_rows, c_colsb), (a_rows, a_colsb), (b_rows, b_colsb)) = (self.shape(C), self.shape(A), self.shape(B));
        assert!(C != A && C != B && A != B, "AMX emulation: TDPBF16PS tmm{C}, tmm{A}, tmm{B} repeats a tile");
        assert!(
            c_rows == a_rows && c_colsb == b_colsb && a_colsb == 4 * b_rows,
            "AMX emulation: TDPBF16PS shapes: C {c_rows}x{c_colsb}, A {a_rows}x{a_colsb}, B {b_rows}x{b_colsb} bytes"
        );
        for m in 0..c_rows {
            let mut row = [0f32; MAX_COLSB / 4];
            for (n, v) in row.iter_mut().enumerate().take(c_colsb / 4) {
                *v = flush(self.f32_at(C, m, n));
            }
            for k in 0..a_colsb / 4 {
                let (a0, a1) = (self.bf16_at(A, m, 2 * k), self.bf16_at(A, m, 2 * k + 1));
                for (n, v) in row.iter_mut().enumerate().take(c_colsb / 4) {
                    let (b0, b1) = (self.bf16_at(B, k, 2 * n), self.bf16_at(B, k, 2 * n + 1));
                    // Products of BF16 values are exact in float32, so one fused
                    // multiply-add is one rounded addition of the exact product.
                    *v = flush(a0.mul_add(b0, *v));
                    *v = flush(a1.mul_add(b1, *v));
                }
            }
            let out = &mut self.tiles[C as usize][m];
            for (n, v) in row.iter().enumerate().take(c_colsb / 4) {
                out[4 * n..4 * n + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
    }

    unsafe fn store<const T: u8>(&mut self, base: *mut u8, stride: usize) {
        let (rows, colsb) = self.shape(T);
        for (r, row) in self.tiles[T as usize].iter().enumerate().take(rows) {
            // SAFETY: the caller's: `colsb` bytes at `base + r * stride` are writable.
            let dst = unsafe { std::slice::from_raw_parts_mut(base.wrapping_add(r * stride), colsb) };
            dst.copy_from_slice(&row[..colsb]);
        }
    }

    unsafe fn release(&mut self) {
        self.cfg = None;
        self.tiles = [[[0; MAX_COLSB]; MAX_ROWS]; TILES];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bf16::convert::to_bf16;

    /// A 2x4 BF16 A, a 2-pair B of 3 columns, worked out by hand: the even product
    /// of a pair is added before the odd one, each addition rounded.
    #[test]
    fn emulated_tdpbf16ps_adds_even_then_odd_products_per_pair() {
        let e = 2f32.powi(-24);
        let cfg = TileConfig::new().with(0, 2, 12).with(1, 2, 8).with(2, 2, 12);
        // A: row 0 = pairs (1, 2^-24) and (3, -1); row 1 = (2^-24, -2^-24) and (0, 0).
        let a: [[bf16; 4]; 2] = [[1.0, e, 3.0, -1.0], [e, -e, 0.0, 0.0]].map(|r| r.map(to_bf16));
        // B: pair row k, column n holds (B[k][2n], B[k][2n+1]).
        let b: [[bf16; 6]; 2] =
            [[1.0, 1.0, 2.0, 0.0, 0.0, 1.0], [1.0, 1.0, 0.5, 2.0, 1.0, 0.0]].map(|r| r.map(to_bf16));
        let mut c = [[0.0f32, 10.0, e], [1.0, 0.0, 0.0]];
        let mut t = EmulatedTiles::new();
        // SAFETY: the tiles are configured for these shapes and the buffers hold them.
        unsafe {
            t.configure(&cfg);
            t.load::<0>(c.as_ptr().cast(), 12);
            t.load::<1>(a.as_ptr().cast(), 8);
            t.load::<2>(b.as_ptr().cast(), 12);
            t.dpbf16ps::<0, 1, 2>();
            t.store::<0>(c.as_mut_ptr().cast(), 12);
            t.release();
        }
        // Row 0, column 0: 0 + 1 = 1; + 2^-24 = 1 (a tie, to even); + 3 = 4; - 1 = 3.
        // Column 1: 10 + 2 + 0 + 1.5 - 2 = 11.5. Column 2: 2^-24 + 0 + 2^-24 = 2^-23;
        // + 3 = 3 (a tie, to even); + 0.
        // Row 1, column 0: 1 + 2^-24 = 1 (a tie), then - 2^-24 = 1 - 2^-24 (exact); the
        // odd product first would give 1 - 2^-24, then 1. Column 1: 2^-24 * 2 = 2^-23.
        // Column 2: 0 - 2^-24 * 1 = -2^-24.
        assert_eq!(c, [[3.0, 11.5, 3.0], [1.0 - e, 2.0 * e, -e]]);
    }

    /// Loads zero a tile's bytes past its rows and columns; stores write only its
    /// rows and columns; a fresh configuration zeroes every tile.
    #[test]
    fn emulated_loads_and_stores_touch_only_the_configured_bytes() {
        let mut t = EmulatedTiles::new();
        let src: Vec<u8> = (1..=255).collect();
        let mut dst = [0xffu8; 3 * 16];
        // SAFETY: rows of 8 bytes, 16 apart, inside `src` and `dst`.
        unsafe {
            t.configure(&TileConfig::new().with(3, 3, 8));
            t.load::<3>(src.as_ptr(), 16);
            t.store::<3>(dst.as_mut_ptr(), 16);
        }
        for r in 0..3 {
            assert_eq!(dst[r * 16..r * 16 + 8], src[r * 16..r * 16 + 8]);
            assert_eq!(dst[r * 16 + 8..r * 16 + 16], [0xff; 8]);
        }
        assert!(t.tiles[3][3..].iter().flatten().all(|&b| b == 0) && t.tiles[3][0][8..].iter().all(|&b| b == 0));
        // SAFETY: as above.
        unsafe { t.configure(&TileConfig::new().with(3, 3, 8)) };
        assert!(t.tiles.iter().flatten().flatten().all(|&b| b == 0));
    }

    /// Subnormal operands count as zero and subnormal results are flushed.
    #[test]
    fn emulated_tdpbf16ps_flushes_subnormals() {
        let cfg = TileConfig::new().with(0, 1, 4).with(1, 1, 4).with(2, 1, 4);
        let tiny = 2f32.powi(-130);
        let (a, b) = ([to_bf16(tiny), to_bf16(1.0)], [to_bf16(1.0), to_bf16(2f32.powi(-120))]);
        let mut c = [0f32];
        let mut t = EmulatedTiles::new();
        // SAFETY: 1x4-byte tiles over 4-byte buffers.
        unsafe {
            t.configure(&cfg);
            t.load::<1>(a.as_ptr().cast(), 4);
            t.load::<2>(b.as_ptr().cast(), 4);
            t.dpbf16ps::<0, 1, 2>();
            t.store::<0>(c.as_mut_ptr().cast(), 4);
        }
        // tiny * 1 is read as 0; 1 * 2^-120 is normal and stays.
        assert_eq!(c[0], 2f32.powi(-120));
    }

    #[test]
    #[should_panic(expected = "TDPBF16PS shapes")]
    fn emulated_tdpbf16ps_rejects_mismatched_shapes() {
        let mut t = EmulatedTiles::new();
        // SAFETY: no memory is touched; the emulation panics on the shapes.
        unsafe {
            t.configure(&TileConfig::new().with(0, 16, 64).with(1, 16, 64).with(2, 8, 64));
            t.dpbf16ps::<0, 1, 2>();
        }
    }

    #[test]
    fn the_config_is_the_64_byte_layout_ldtilecfg_reads() {
        let cfg = TileConfig::new().with(2, 7, 40);
        assert_eq!(std::mem::size_of::<TileConfig>(), 64);
        // SAFETY: a repr(C) struct of 64 bytes of integers, no padding.
        let bytes: [u8; 64] = unsafe { std::mem::transmute(cfg) };
        assert_eq!((bytes[0], bytes[16 + 4], bytes[16 + 5], bytes[48 + 2]), (1, 40, 0, 7));
        assert_eq!(bytes.iter().map(|&b| b as u32).sum::<u32>(), 1 + 40 + 7);
    }
}
