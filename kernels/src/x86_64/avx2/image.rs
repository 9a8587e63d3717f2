//! The AVX2 tier's rows of a 3x3 stride-2 convolution of a 3-channel image, read
//! straight from the image's channel planes (see [`ImageRow`]).

use crate::image_stage::ImageRow;

/// The 27 lanes of a 1 x 6 tile, in the folded window's order (window row, column,
/// channel): each lane's weight row into ymm12..13, then each pixel's input value
/// (channel `c`'s plane at `{pc}`, window row `ky` `{rb}` bytes apart, column
/// `kx`, pixels 2 columns apart) broadcast into ymm14 or ymm15 by turns and its two
/// FMAs into accumulators ymm(2 * pixel + half).
#[rustfmt::skip]
macro_rules! window_lanes {
    () => { concat!(
        // lane 0: window row 0, column 0, channel 0
        "vmovups ymm12, [{w} + 0]\n", "vmovups ymm13, [{w} + 32]\n",
        "vbroadcastss ymm14, dword ptr [{p0} + 0]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + 8]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + 16]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + 24]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + 32]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + 40]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 1: window row 0, column 0, channel 1
        "vmovups ymm12, [{w} + 64]\n", "vmovups ymm13, [{w} + 96]\n",
        "vbroadcastss ymm14, dword ptr [{p1} + 0]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + 8]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + 16]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + 24]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + 32]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + 40]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 2: window row 0, column 0, channel 2
        "vmovups ymm12, [{w} + 128]\n", "vmovups ymm13, [{w} + 160]\n",
        "vbroadcastss ymm14, dword ptr [{p2} + 0]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + 8]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + 16]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + 24]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + 32]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + 40]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 3: window row 0, column 1, channel 0
        "vmovups ymm12, [{w} + 192]\n", "vmovups ymm13, [{w} + 224]\n",
        "vbroadcastss ymm14, dword ptr [{p0} + 4]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + 12]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + 20]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + 28]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + 36]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + 44]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 4: window row 0, column 1, channel 1
        "vmovups ymm12, [{w} + 256]\n", "vmovups ymm13, [{w} + 288]\n",
        "vbroadcastss ymm14, dword ptr [{p1} + 4]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + 12]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + 20]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + 28]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + 36]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + 44]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 5: window row 0, column 1, channel 2
        "vmovups ymm12, [{w} + 320]\n", "vmovups ymm13, [{w} + 352]\n",
        "vbroadcastss ymm14, dword ptr [{p2} + 4]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + 12]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + 20]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + 28]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + 36]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + 44]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 6: window row 0, column 2, channel 0
        "vmovups ymm12, [{w} + 384]\n", "vmovups ymm13, [{w} + 416]\n",
        "vbroadcastss ymm14, dword ptr [{p0} + 8]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + 16]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + 24]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + 32]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + 40]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + 48]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 7: window row 0, column 2, channel 1
        "vmovups ymm12, [{w} + 448]\n", "vmovups ymm13, [{w} + 480]\n",
        "vbroadcastss ymm14, dword ptr [{p1} + 8]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + 16]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + 24]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + 32]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + 40]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + 48]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 8: window row 0, column 2, channel 2
        "vmovups ymm12, [{w} + 512]\n", "vmovups ymm13, [{w} + 544]\n",
        "vbroadcastss ymm14, dword ptr [{p2} + 8]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + 16]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + 24]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + 32]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + 40]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + 48]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 9: window row 1, column 0, channel 0
        "vmovups ymm12, [{w} + 576]\n", "vmovups ymm13, [{w} + 608]\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb} + 0]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb} + 8]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb} + 16]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb} + 24]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb} + 32]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb} + 40]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 10: window row 1, column 0, channel 1
        "vmovups ymm12, [{w} + 640]\n", "vmovups ymm13, [{w} + 672]\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb} + 0]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb} + 8]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb} + 16]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb} + 24]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb} + 32]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb} + 40]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 11: window row 1, column 0, channel 2
        "vmovups ymm12, [{w} + 704]\n", "vmovups ymm13, [{w} + 736]\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb} + 0]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb} + 8]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb} + 16]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb} + 24]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb} + 32]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb} + 40]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 12: window row 1, column 1, channel 0
        "vmovups ymm12, [{w} + 768]\n", "vmovups ymm13, [{w} + 800]\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb} + 4]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb} + 12]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb} + 20]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb} + 28]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb} + 36]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb} + 44]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 13: window row 1, column 1, channel 1
        "vmovups ymm12, [{w} + 832]\n", "vmovups ymm13, [{w} + 864]\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb} + 4]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb} + 12]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb} + 20]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb} + 28]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb} + 36]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb} + 44]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 14: window row 1, column 1, channel 2
        "vmovups ymm12, [{w} + 896]\n", "vmovups ymm13, [{w} + 928]\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb} + 4]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb} + 12]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb} + 20]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb} + 28]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb} + 36]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb} + 44]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 15: window row 1, column 2, channel 0
        "vmovups ymm12, [{w} + 960]\n", "vmovups ymm13, [{w} + 992]\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb} + 8]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb} + 16]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb} + 24]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb} + 32]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb} + 40]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb} + 48]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 16: window row 1, column 2, channel 1
        "vmovups ymm12, [{w} + 1024]\n", "vmovups ymm13, [{w} + 1056]\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb} + 8]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb} + 16]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb} + 24]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb} + 32]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb} + 40]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb} + 48]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 17: window row 1, column 2, channel 2
        "vmovups ymm12, [{w} + 1088]\n", "vmovups ymm13, [{w} + 1120]\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb} + 8]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb} + 16]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb} + 24]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb} + 32]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb} + 40]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb} + 48]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 18: window row 2, column 0, channel 0
        "vmovups ymm12, [{w} + 1152]\n", "vmovups ymm13, [{w} + 1184]\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb}*2 + 0]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb}*2 + 8]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb}*2 + 16]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb}*2 + 24]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb}*2 + 32]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb}*2 + 40]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 19: window row 2, column 0, channel 1
        "vmovups ymm12, [{w} + 1216]\n", "vmovups ymm13, [{w} + 1248]\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb}*2 + 0]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb}*2 + 8]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb}*2 + 16]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb}*2 + 24]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb}*2 + 32]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb}*2 + 40]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 20: window row 2, column 0, channel 2
        "vmovups ymm12, [{w} + 1280]\n", "vmovups ymm13, [{w} + 1312]\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb}*2 + 0]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb}*2 + 8]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb}*2 + 16]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb}*2 + 24]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb}*2 + 32]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb}*2 + 40]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 21: window row 2, column 1, channel 0
        "vmovups ymm12, [{w} + 1344]\n", "vmovups ymm13, [{w} + 1376]\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb}*2 + 4]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb}*2 + 12]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb}*2 + 20]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb}*2 + 28]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb}*2 + 36]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb}*2 + 44]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 22: window row 2, column 1, channel 1
        "vmovups ymm12, [{w} + 1408]\n", "vmovups ymm13, [{w} + 1440]\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb}*2 + 4]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb}*2 + 12]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb}*2 + 20]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb}*2 + 28]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb}*2 + 36]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb}*2 + 44]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 23: window row 2, column 1, channel 2
        "vmovups ymm12, [{w} + 1472]\n", "vmovups ymm13, [{w} + 1504]\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb}*2 + 4]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb}*2 + 12]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb}*2 + 20]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb}*2 + 28]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb}*2 + 36]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb}*2 + 44]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 24: window row 2, column 2, channel 0
        "vmovups ymm12, [{w} + 1536]\n", "vmovups ymm13, [{w} + 1568]\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb}*2 + 8]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb}*2 + 16]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb}*2 + 24]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb}*2 + 32]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p0} + {rb}*2 + 40]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p0} + {rb}*2 + 48]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 25: window row 2, column 2, channel 1
        "vmovups ymm12, [{w} + 1600]\n", "vmovups ymm13, [{w} + 1632]\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb}*2 + 8]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb}*2 + 16]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb}*2 + 24]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb}*2 + 32]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p1} + {rb}*2 + 40]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p1} + {rb}*2 + 48]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
        // lane 26: window row 2, column 2, channel 2
        "vmovups ymm12, [{w} + 1664]\n", "vmovups ymm13, [{w} + 1696]\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb}*2 + 8]\n", "vfmadd231ps ymm0, ymm12, ymm14\n", "vfmadd231ps ymm1, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb}*2 + 16]\n", "vfmadd231ps ymm2, ymm12, ymm15\n", "vfmadd231ps ymm3, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb}*2 + 24]\n", "vfmadd231ps ymm4, ymm12, ymm14\n", "vfmadd231ps ymm5, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb}*2 + 32]\n", "vfmadd231ps ymm6, ymm12, ymm15\n", "vfmadd231ps ymm7, ymm13, ymm15\n",
        "vbroadcastss ymm14, dword ptr [{p2} + {rb}*2 + 40]\n", "vfmadd231ps ymm8, ymm12, ymm14\n", "vfmadd231ps ymm9, ymm13, ymm14\n",
        "vbroadcastss ymm15, dword ptr [{p2} + {rb}*2 + 48]\n", "vfmadd231ps ymm10, ymm12, ymm15\n", "vfmadd231ps ymm11, ymm13, ymm15\n",
    ) };
}

/// [`ImageRow`] in tiles of 1 output block x 6 pixels, each tile's 27 lanes in one
/// chunk from zero, then the bias and the clamp, in the staged path's order (so the
/// same bits), all the row's tiles in one asm block.
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
    let [p0, p1, p2] = r.planes;
    // SAFETY: every read is inside the planes' rows, weights and bias the caller
    // vouches for (tile t reads bytes 48 t..48 t + 52 of each row, weights bytes
    // < 1728, the bias 64 bytes), every write inside its tile's 384 bytes of output.
    unsafe {
        std::arch::asm!(
            "3:",
            each_px_1xn!(6, zero_px),
            window_lanes!(),
            each_px_1xn!(6, add_b_px),
            "test {relu}, {relu}",
            "jz 6f",
            "vxorps ymm12, ymm12, ymm12",
            each_px_1xn!(6, relu_px),
            "6:",
            each_px_1xn!(6, store_px),
            "add {p0}, 48",
            "add {p1}, 48",
            "add {p2}, 48",
            "add {o}, 384",
            "dec {n}",
            "jnz 3b",
            w = in(reg) r.weights,
            p0 = inout(reg) p0 => _,
            p1 = inout(reg) p1 => _,
            p2 = inout(reg) p2 => _,
            rb = in(reg) r.row * 4,
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
