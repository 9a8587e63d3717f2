//! The AVX2 tier's rows of a 3x3 stride-2 convolution of a 3-channel image, read
//! straight from the image's interleaved rows (see [`ImageRow`]).

use crate::image_stage::ImageRow;

/// The 9 lanes of window row `ky` (lanes `9 * ky..9 * ky + 9` of the folded window)
/// of a 1 x 6 tile from the interleaved input row at `{x}`: a pixel's window row
/// is 9 consecutive values (3 columns of 3 channels), the next pixel's 6 values
/// (2 columns) on, so `{xp}` is 24 bytes and `{x3}` 72.
#[rustfmt::skip]
macro_rules! window_row {
    (0) => { concat!(lane_1xn!(6, 0, 32, 0), lane_1xn!(6, 64, 96, 4), lane_1xn!(6, 128, 160, 8), lane_1xn!(6, 192, 224, 12), lane_1xn!(6, 256, 288, 16), lane_1xn!(6, 320, 352, 20), lane_1xn!(6, 384, 416, 24), lane_1xn!(6, 448, 480, 28), lane_1xn!(6, 512, 544, 32)) };
    (1) => { concat!(lane_1xn!(6, 576, 608, 0), lane_1xn!(6, 640, 672, 4), lane_1xn!(6, 704, 736, 8), lane_1xn!(6, 768, 800, 12), lane_1xn!(6, 832, 864, 16), lane_1xn!(6, 896, 928, 20), lane_1xn!(6, 960, 992, 24), lane_1xn!(6, 1024, 1056, 28), lane_1xn!(6, 1088, 1120, 32)) };
    (2) => { concat!(lane_1xn!(6, 1152, 1184, 0), lane_1xn!(6, 1216, 1248, 4), lane_1xn!(6, 1280, 1312, 8), lane_1xn!(6, 1344, 1376, 12), lane_1xn!(6, 1408, 1440, 16), lane_1xn!(6, 1472, 1504, 20), lane_1xn!(6, 1536, 1568, 24), lane_1xn!(6, 1600, 1632, 28), lane_1xn!(6, 1664, 1696, 32)) };
}

/// [`ImageRow`] in tiles of 1 output block x 6 pixels, each tile's 27 lanes in one
/// chunk from zero, then the bias and the clamp, in the staged path's order (so the
/// same bits), all the row's tiles in one asm block.
///
/// # Safety
/// The CPU has AVX2 and FMA; `r.rows[ky]` hold `36 * r.tiles + 3` values (each
/// tile reads 39 from `36 * tile`), the weights 27 x 16 and the bias 16, and the
/// output `96 * r.tiles` writable values.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn image3x3s2_c3_16oc_x6px_avx2(r: &ImageRow) {
    if r.tiles == 0 {
        return;
    }
    let [r0, r1, r2] = r.rows;
    // SAFETY: every read is inside the rows, weights and bias the caller vouches
    // for (tile t reads row bytes 144 t .. 144 t + 156, weights bytes < 1728, the
    // bias 64 bytes), every write inside the 384 bytes of output of its tile.
    unsafe {
        std::arch::asm!(
            "3:",
            each_px_1xn!(6, zero_px),
            "mov {x}, {r0}",
            "lea {x3}, [{r0} + 72]",
            window_row!(0),
            "mov {x}, {r1}",
            "lea {x3}, [{r1} + 72]",
            window_row!(1),
            "mov {x}, {r2}",
            "lea {x3}, [{r2} + 72]",
            window_row!(2),
            each_px_1xn!(6, add_b_px),
            "test {relu}, {relu}",
            "jz 6f",
            "vxorps ymm12, ymm12, ymm12",
            each_px_1xn!(6, relu_px),
            "6:",
            each_px_1xn!(6, store_px),
            "add {r0}, 144",
            "add {r1}, 144",
            "add {r2}, 144",
            "add {o}, 384",
            "dec {n}",
            "jnz 3b",
            w = in(reg) r.weights,
            x = out(reg) _,
            x3 = out(reg) _,
            xp = in(reg) 24usize,
            r0 = inout(reg) r0 => _,
            r1 = inout(reg) r1 => _,
            r2 = inout(reg) r2 => _,
            o = inout(reg) r.output => _,
            b = in(reg) r.bias,
            n = inout(reg) r.tiles => _,
            relu = in(reg) r.relu as usize,
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _, out("ymm5") _,
            out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
            out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
            options(nostack),
        )
    }
}
