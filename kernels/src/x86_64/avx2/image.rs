//! The AVX2 tier's rows of a 3x3 and a 7x7 stride-2 convolution of a 3-channel
//! image, read straight from the image's channel planes (see [`ImageRow`]).

use crate::image_stage::ImageRow;

/// One lane of a 1 x 6 tile: lane `$l`'s weight row into ymm12..13, then each
/// pixel's input value (channel `$c`'s plane at `{p$c}`, window column `$kx`,
/// pixels 2 columns apart) broadcast into ymm14 or ymm15 by turns, and its two FMAs
/// into accumulators ymm(2 * pixel + half).
#[rustfmt::skip]
macro_rules! plane_lane {
    ($c:literal, $kx:literal, $l:literal) => { concat!(
        "vmovups ymm12, [{w} + ", $l, " * 64]\n",
        "vmovups ymm13, [{w} + ", $l, " * 64 + 32]\n",
        plane_px!(0, 1, 14, $c, $kx, 0), plane_px!(2, 3, 15, $c, $kx, 8), plane_px!(4, 5, 14, $c, $kx, 16),
        plane_px!(6, 7, 15, $c, $kx, 24), plane_px!(8, 9, 14, $c, $kx, 32), plane_px!(10, 11, 15, $c, $kx, 40),
    ) };
}

/// One pixel of [`plane_lane`].
#[rustfmt::skip]
macro_rules! plane_px {
    ($a0:literal, $a1:literal, $b:literal, $c:literal, $kx:literal, $p:literal) => { concat!(
        "vbroadcastss ymm", $b, ", dword ptr [{p", $c, "} + ", $kx, " * 4 + ", $p, "]\n",
        "vfmadd231ps ymm", $a0, ", ymm12, ymm", $b, "\n",
        "vfmadd231ps ymm", $a1, ", ymm13, ymm", $b, "\n",
    ) };
}

/// A 7x7 window's chunk end before window column `$kx` of the window row `{ky}`
/// when it is row `$kx` (see `window_row_7x7!`): the partial sums at `{o}` added,
/// stored, and the accumulators zeroed for the next chunk.
#[rustfmt::skip]
macro_rules! chunk_end_7x7 {
    ($kx:literal) => { concat!(
        "cmp {ky}, ", $kx, "\n", "jne 2", $kx, "f\n",
        each_px_1xn!(6, add_o_px), each_px_1xn!(6, store_px), each_px_1xn!(6, zero_px),
        "2", $kx, ":\n",
    ) };
}

/// `image_rows_asm!` of 1 x 6 tiles: the clamp (zero in ymm12) and the store,
/// the bias (`{b}`), the clobbers; `$w`, the window's operands.
macro_rules! rows_1x6 {
    ($r:expr, $rows:literal, $window:expr, $rewind:expr, [$($w:tt)*]) => {
        image_rows_asm!(
            $r,
            $rows,
            $window,
            concat!("vxorps ymm12, ymm12, ymm12\n", each_px_1xn!(6, relu_px)),
            each_px_1xn!(6, store_px),
            $rewind,
            [
                $($w)*
                b = in(reg) $r.bias,
                out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _, out("ymm5") _,
                out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
                out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
            ]
        )
    };
}

/// Stores the bias (ymm12..13) into a pixel's output.
#[rustfmt::skip]
macro_rules! bias_px { ($a0:literal, $a1:literal, $at:literal, $at2:literal) => {
    concat!("vmovups [{o} + ", $at, "], ymm12\n", "vmovups [{o} + ", $at2, "], ymm13\n")
} }

/// [`ImageRow`] of a 3x3 stride-2 window in tiles of 1 output block x 6 pixels,
/// each tile's 27 lanes in one chunk from zero, then the bias and the clamp: the
/// staged path's order, so the same bits.
///
/// # Safety
/// The CPU has AVX2 and FMA; each of `r.planes` holds 3 rows `r.row` floats apart
/// of at least `12 * r.tiles + 1` values (tile t reads values `12 t..12 t + 13`
/// of each), the weights 27 x 16 values and the bias 16, and the output holds
/// `96 * r.tiles` writable values.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn image3x3s2_c3_16oc_x6px_avx2(r: &ImageRow) {
    if r.tiles == 0 {
        return;
    }
    // SAFETY: every read is inside the planes' rows, weights and bias the caller
    // vouches for (tile t reads bytes 48 t..48 t + 52 of each row, weights bytes
    // < 1728, the bias 64 bytes), every write inside its tile's 384 bytes of output.
    unsafe {
        rows_1x6!(
            r,
            3,
            concat!(each_px_1xn!(6, zero_px), window_3x3!(), each_px_1xn!(6, add_b_px)),
            "",
            [w = in(reg) r.weights,]
        )
    }
}

/// A 7x7 tile's window for `image_rows_asm!`: the bias stored in the tile's
/// output, then a loop over the 7 window rows (21 lanes each unrolled, the chunk
/// ends in them adding the partial sums at the output: the first adds the bias, as
/// `store` does), and the last chunk's add.
#[rustfmt::skip]
macro_rules! window_7x7 {
    () => { concat!(
        "vmovups ymm12, [{b}]\n", "vmovups ymm13, [{b} + 32]\n",
        each_px_1xn!(6, bias_px), each_px_1xn!(6, zero_px),
        "xor {ky}, {ky}\n",
        "5:\n", window_row_7x7!(), next_row!(),
        "add {w}, 1344\n", "inc {ky}\n", "cmp {ky}, 7\n", "jne 5b\n",
        each_px_1xn!(6, add_o_px),
    ) };
}

/// [`ImageRow`] of a 7x7 stride-2 window in tiles of 1 output block x 6 pixels:
/// the staged path's chunks (lanes 0..48, 48..96, 96..144, 144..147, each from
/// zero, added to the bias or the sums before, then the clamp), so the same bits;
/// the window rows a loop, so that the tile's code stays small.
///
/// # Safety
/// The CPU has AVX2 and FMA; each of `r.planes` holds 7 rows `r.row` floats apart
/// of at least `12 * r.tiles + 5` values (tile t reads values `12 t..12 t + 17`
/// of each), the weights 147 x 16 values and the bias 16, and the output holds
/// `96 * r.tiles` writable values.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn image7x7s2_c3_16oc_x6px_avx2(r: &ImageRow) {
    if r.tiles == 0 {
        return;
    }
    // SAFETY: every read is inside the planes' rows, weights and bias the caller
    // vouches for (tile t reads bytes 48 t..48 t + 68 of each row, weights bytes
    // < 9408, the bias 64 bytes), every write inside its tile's 384 bytes of output.
    unsafe { rows_1x6!(r, 7, window_7x7!(), "sub {w}, 9408", [w = inout(reg) r.weights => _, ky = out(reg) _,]) }
}
