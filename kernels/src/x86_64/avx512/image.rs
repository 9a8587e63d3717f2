//! The AVX-512F tier's rows of a 3x3 and a 7x7 stride-2 convolution of a
//! 3-channel image, read straight from the image's channel planes (see
//! [`ImageRow`]), two output blocks a tile.

use std::arch::x86_64::*;

use crate::image_stage::ImageRow;

/// One lane of a 2 x 6 tile: lane `$l`'s weight rows of both blocks into zmm12
/// and zmm13, then each pixel's two FMAs into accumulators zmm(pixel) and zmm(6 +
/// pixel), each broadcasting the pixel's input value (channel `$c`'s plane at
/// `{p$c}`, window column `$kx`, pixels 2 columns apart) from memory itself (on
/// Zen 4 faster than one `vbroadcastss` a pixel: `docs/kernels.md`).
#[rustfmt::skip]
macro_rules! plane_lane {
    ($c:literal, $kx:literal, $l:literal) => { concat!(
        "vmovups zmm12, [{w} + ", $l, " * 64]\n",
        "vmovups zmm13, [{w} + {wb} + ", $l, " * 64]\n",
        plane_px_2x6!(0, 6, $c, $kx, 0), plane_px_2x6!(1, 7, $c, $kx, 8),
        plane_px_2x6!(2, 8, $c, $kx, 16), plane_px_2x6!(3, 9, $c, $kx, 24),
        plane_px_2x6!(4, 10, $c, $kx, 32), plane_px_2x6!(5, 11, $c, $kx, 40),
    ) };
}

/// One pixel of [`plane_lane`].
#[rustfmt::skip]
macro_rules! plane_px_2x6 {
    ($a0:literal, $a1:literal, $c:literal, $kx:literal, $p:literal) => { concat!(
        "vfmadd231ps zmm", $a0, ", zmm12, dword ptr [{p", $c, "} + ", $kx, " * 4 + ", $p, "]{{1to16}}\n",
        "vfmadd231ps zmm", $a1, ", zmm13, dword ptr [{p", $c, "} + ", $kx, " * 4 + ", $p, "]{{1to16}}\n",
    ) };
}

/// `$op` (a macro of a pixel's accumulators in the two blocks and its byte offset)
/// for each pixel of a 2 x 6 tile.
#[rustfmt::skip]
macro_rules! each_px_2x6 {
    ($op:ident) => { concat!(
        $op!(0, 6, 0), $op!(1, 7, 64), $op!(2, 8, 128), $op!(3, 9, 192), $op!(4, 10, 256), $op!(5, 11, 320),
    ) };
}

/// Operations of [`each_px_2x6`]: zero; add the partial sums at `{o}` and `{o} +
/// {ob}`, or the biases (zmm15, zmm16); clamp at zero (zmm14); store the sums, or
/// the biases, at `{o}` and `{o} + {ob}`. A tile adds all its pixels before it
/// stores any, so that a block computed twice (`{ob}` zero) adds its partial sums
/// once.
#[rustfmt::skip]
macro_rules! zero_px_2x6 { ($a0:literal, $a1:literal, $at:literal) => {
    concat!("vpxord zmm", $a0, ", zmm", $a0, ", zmm", $a0, "\n", "vpxord zmm", $a1, ", zmm", $a1, ", zmm", $a1, "\n")
} }
#[rustfmt::skip]
macro_rules! add_o_px_2x6 { ($a0:literal, $a1:literal, $at:literal) => {
    concat!("vaddps zmm", $a0, ", zmm", $a0, ", [{o} + ", $at, "]\n", "vaddps zmm", $a1, ", zmm", $a1, ", [{o} + {ob} + ", $at, "]\n")
} }
#[rustfmt::skip]
macro_rules! add_b_px_2x6 { ($a0:literal, $a1:literal, $at:literal) => {
    concat!("vaddps zmm", $a0, ", zmm", $a0, ", zmm15\n", "vaddps zmm", $a1, ", zmm", $a1, ", zmm16\n")
} }
#[rustfmt::skip]
macro_rules! relu_px_2x6 { ($a0:literal, $a1:literal, $at:literal) => {
    concat!("vmaxps zmm", $a0, ", zmm", $a0, ", zmm14\n", "vmaxps zmm", $a1, ", zmm", $a1, ", zmm14\n")
} }
#[rustfmt::skip]
macro_rules! store_px_2x6 { ($a0:literal, $a1:literal, $at:literal) => {
    concat!("vmovups [{o} + ", $at, "], zmm", $a0, "\n", "vmovups [{o} + {ob} + ", $at, "], zmm", $a1, "\n")
} }
#[rustfmt::skip]
macro_rules! bias_px_2x6 { ($a0:literal, $a1:literal, $at:literal) => {
    concat!("vmovups [{o} + ", $at, "], zmm15\n", "vmovups [{o} + {ob} + ", $at, "], zmm16\n")
} }

/// A 7x7 window's chunk end before window column `$kx` of the window row `{ky}`
/// when it is row `$kx` (see `window_row_7x7!`): the partial sums at `{o}` and
/// `{o} + {ob}` added, stored, and the accumulators zeroed for the next chunk.
#[rustfmt::skip]
macro_rules! chunk_end_7x7 {
    ($kx:literal) => { concat!(
        "cmp {ky}, ", $kx, "\n", "jne 2", $kx, "f\n",
        each_px_2x6!(add_o_px_2x6), each_px_2x6!(store_px_2x6), each_px_2x6!(zero_px_2x6),
        "2", $kx, ":\n",
    ) };
}

/// `image_rows_asm!` of 2 x 6 tiles: the clamp (zero in zmm14) and the store of
/// both blocks, the second block's offsets (`{ob}`, `{wb}`), the biases in zmm15
/// and zmm16, the clobbers; `$w`, the window's operands.
macro_rules! rows_2x6 {
    ($r:expr, $rows:literal, $window:expr, $rewind:expr, [$($w:tt)*]) => {
        image_rows_asm!(
            $r,
            $rows,
            $window,
            concat!("vpxord zmm14, zmm14, zmm14\n", each_px_2x6!(relu_px_2x6)),
            each_px_2x6!(store_px_2x6),
            $rewind,
            [
                $($w)*
                ob = in(reg) $r.next.output * 4,
                wb = in(reg) $r.next.weights * 4,
                in("zmm15") _mm512_loadu_ps($r.bias),
                in("zmm16") _mm512_loadu_ps($r.bias.add($r.next.bias)),
                out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _, out("zmm5") _,
                out("zmm6") _, out("zmm7") _, out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
                out("zmm12") _, out("zmm13") _, out("zmm14") _,
            ]
        )
    };
}

/// A 7x7 tile's window: the biases stored in the tile's output, then a loop over
/// the 7 window rows (21 lanes each unrolled, the chunk ends in them adding the
/// partial sums at the output: the first adds the bias, as the staged path's
/// store does), and the last chunk's add.
#[rustfmt::skip]
macro_rules! window_7x7 {
    () => { concat!(
        each_px_2x6!(bias_px_2x6), each_px_2x6!(zero_px_2x6),
        "xor {ky}, {ky}\n",
        "5:\n", window_row_7x7!(), next_row!(),
        "add {w}, 1344\n", "inc {ky}\n", "cmp {ky}, 7\n", "jne 5b\n",
        each_px_2x6!(add_o_px_2x6),
    ) };
}

/// [`ImageRow`] of a 3x3 stride-2 window in tiles of 2 output blocks x 6 pixels,
/// each tile's 27 lanes in one chunk from zero, then the bias and the clamp: the
/// staged path's order, so the same bits.
///
/// # Safety
/// The CPU has AVX-512F; each of `r.planes` holds 3 rows `r.row` floats apart of
/// at least `12 * r.tiles + 1` values (tile t reads values `12 t..12 t + 13` of
/// each), the weights 27 x 16 values from `r.weights` and from `r.weights +
/// r.next.weights`, the bias 16 from `r.bias` and from `r.bias + r.next.bias`, and
/// the output `96 * r.tiles` writable values from `r.output` and from `r.output +
/// r.next.output`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn image3x3s2_c3_32oc_x6px_avx512f(r: &ImageRow) {
    if r.tiles == 0 {
        return;
    }
    // SAFETY: every read is inside the planes' rows, weights and biases the caller
    // vouches for (tile t reads bytes 48 t..48 t + 52 of each row, each block's
    // weights bytes < 1728, its bias 64 bytes), every write inside its tile's 384
    // bytes of each block's output.
    unsafe {
        rows_2x6!(
            r,
            3,
            concat!(each_px_2x6!(zero_px_2x6), window_3x3!(), each_px_2x6!(add_b_px_2x6)),
            "",
            [w = in(reg) r.weights,]
        )
    }
}

/// [`ImageRow`] of a 7x7 stride-2 window in tiles of 2 output blocks x 6 pixels:
/// the staged path's chunks (lanes 0..48, 48..96, 96..144, 144..147, each from
/// zero, added to the bias or the sums before, then the clamp), so the same bits;
/// the window rows a loop, so that the tile's code stays small.
///
/// # Safety
/// The CPU has AVX-512F; each of `r.planes` holds 7 rows `r.row` floats apart of
/// at least `12 * r.tiles + 5` values (tile t reads values `12 t..12 t + 17` of
/// each), the weights 147 x 16 values from `r.weights` and from `r.weights +
/// r.next.weights`, the bias 16 from `r.bias` and from `r.bias + r.next.bias`, and
/// the output `96 * r.tiles` writable values from `r.output` and from `r.output +
/// r.next.output`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn image7x7s2_c3_32oc_x6px_avx512f(r: &ImageRow) {
    if r.tiles == 0 {
        return;
    }
    // SAFETY: every read is inside the planes' rows, weights and biases the caller
    // vouches for (tile t reads bytes 48 t..48 t + 68 of each row, each block's
    // weights bytes < 9408, its bias 64 bytes), every write inside its tile's 384
    // bytes of each block's output.
    unsafe { rows_2x6!(r, 7, window_7x7!(), "sub {w}, 9408", [w = inout(reg) r.weights => _, ky = out(reg) _,]) }
}
