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

/// Every plane one window row down.
macro_rules! next_row {
    () => {
        "add {p0}, {rb}\nadd {p1}, {rb}\nadd {p2}, {rb}\n"
    };
}

/// A 3x3 window's 27 lanes in the folded order (window row, column, channel), in
/// one chunk.
#[rustfmt::skip]
macro_rules! window_3x3 {
    () => { concat!(
        plane_lane!(0, 0, 0), plane_lane!(1, 0, 1), plane_lane!(2, 0, 2), plane_lane!(0, 1, 3),
        plane_lane!(1, 1, 4), plane_lane!(2, 1, 5), plane_lane!(0, 2, 6), plane_lane!(1, 2, 7),
        plane_lane!(2, 2, 8), next_row!(),
        plane_lane!(0, 0, 9), plane_lane!(1, 0, 10), plane_lane!(2, 0, 11), plane_lane!(0, 1, 12),
        plane_lane!(1, 1, 13), plane_lane!(2, 1, 14), plane_lane!(0, 2, 15), plane_lane!(1, 2, 16),
        plane_lane!(2, 2, 17), next_row!(),
        plane_lane!(0, 0, 18), plane_lane!(1, 0, 19), plane_lane!(2, 0, 20), plane_lane!(0, 1, 21),
        plane_lane!(1, 1, 22), plane_lane!(2, 1, 23), plane_lane!(0, 2, 24), plane_lane!(1, 2, 25),
        plane_lane!(2, 2, 26), next_row!(),
    ) };
}

/// A chunk's end before window column `$kx` of the window row `{ky}` when it is
/// row `$kx` (a 7x7 window's chunks of 48 lanes end at lanes 48, 96 and 144: row
/// and column 2, 4 and 6, channel 0): the partial sums at `{o}` added, stored, and
/// the accumulators zeroed for the next chunk.
#[rustfmt::skip]
macro_rules! chunk_end_7x7 {
    ($kx:literal) => { concat!(
        "cmp {ky}, ", $kx, "\n", "jne 2", $kx, "f\n",
        each_px_1xn!(6, add_o_px), each_px_1xn!(6, store_px), each_px_1xn!(6, zero_px),
        "2", $kx, ":\n",
    ) };
}

/// A 7x7 window's row `{ky}` (21 lanes: column, channel; weights from `{w}`), with
/// the chunk ends that fall in it.
#[rustfmt::skip]
macro_rules! window_row_7x7 {
    () => { concat!(
        plane_lane!(0, 0, 0), plane_lane!(1, 0, 1), plane_lane!(2, 0, 2),
        plane_lane!(0, 1, 3), plane_lane!(1, 1, 4), plane_lane!(2, 1, 5), chunk_end_7x7!(2),
        plane_lane!(0, 2, 6), plane_lane!(1, 2, 7), plane_lane!(2, 2, 8),
        plane_lane!(0, 3, 9), plane_lane!(1, 3, 10), plane_lane!(2, 3, 11), chunk_end_7x7!(4),
        plane_lane!(0, 4, 12), plane_lane!(1, 4, 13), plane_lane!(2, 4, 14),
        plane_lane!(0, 5, 15), plane_lane!(1, 5, 16), plane_lane!(2, 5, 17), chunk_end_7x7!(6),
        plane_lane!(0, 6, 18), plane_lane!(1, 6, 19), plane_lane!(2, 6, 20),
    ) };
}

/// Stores the bias (ymm12..13) into a pixel's output.
#[rustfmt::skip]
macro_rules! bias_px { ($a0:literal, $a1:literal, $at:literal, $at2:literal) => {
    concat!("vmovups [{o} + ", $at, "], ymm12\n", "vmovups [{o} + ", $at2, "], ymm13\n")
} }

/// The tiles of an [`ImageRow`], 1 output block x 6 pixels each, in one asm block:
/// `$window` (a tile's lanes over its `$rows` window rows, the planes ending that
/// many rows down, the sums at the end in the accumulators with the bias added),
/// the clamp and the store in `store`'s order, `$rewind` (the weights back up, if
/// the window moved them), and the planes back up and on to the next tile; `$extra`
/// are the window's own operands.
macro_rules! image_rows_asm {
    ($r:expr, $rows:literal, $window:expr, $rewind:expr, [$($extra:tt)*]) => {{
        let r = $r;
        let [p0, p1, p2] = r.planes;
        std::arch::asm!(
            "3:",
            $window,
            "test {relu}, {relu}",
            "jz 6f",
            "vxorps ymm12, ymm12, ymm12",
            each_px_1xn!(6, relu_px),
            "6:",
            each_px_1xn!(6, store_px),
            $rewind,
            "sub {p0}, {rbk}",
            "sub {p1}, {rbk}",
            "sub {p2}, {rbk}",
            "add {p0}, 48",
            "add {p1}, 48",
            "add {p2}, 48",
            "add {o}, 384",
            "dec {n}",
            "jnz 3b",
            p0 = inout(reg) p0 => _,
            p1 = inout(reg) p1 => _,
            p2 = inout(reg) p2 => _,
            rb = in(reg) r.row * 4,
            rbk = in(reg) r.row * 4 * $rows,
            o = inout(reg) r.output => _,
            b = in(reg) r.bias,
            n = inout(reg) r.tiles => _,
            relu = in(reg) r.relu as usize,
            $($extra)*
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _, out("ymm5") _,
            out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
            out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
            options(nostack),
        )
    }};
}

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
        image_rows_asm!(
            r,
            3,
            concat!(each_px_1xn!(6, zero_px), window_3x3!(), each_px_1xn!(6, add_b_px)),
            "",
            [w = in(reg) r.weights,]
        )
    }
}

/// A 7x7 tile's window for [`image_rows_asm`]: the bias stored in the tile's
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
    unsafe { image_rows_asm!(r, 7, window_7x7!(), "sub {w}, 9408", [w = inout(reg) r.weights => _, ky = out(reg) _,]) }
}
