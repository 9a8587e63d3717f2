//! The asm text of the AVX2 tier's 1 x 4, 5 and 6 tiles ([`super::AsmTile`]):
//! the lane, the loop over taps, and the chunk loop with its adds and stores.

/// One input lane of a 1 x `$px` tile (`$px` 4, 5 or 6) at byte offsets `$w` and
/// `$w2` (`$w` + 32) into the weights and `$x` into the input, each pixel's input
/// where `$at` (a pixel addressing: [`px_strided`] or [`px_offsets`]) says: the
/// lane's weight row into ymm12..13, then each pixel's input lane broadcast into
/// ymm14 or ymm15 (alternately, so that one pixel's broadcast need not wait for the
/// previous pixel's FMAs) and its two FMAs into accumulators ymm(2 * pixel + half).
#[rustfmt::skip]
macro_rules! lane_1xn {
    (6, $at:ident, $w:literal, $w2:literal, $x:literal) => {
        concat!(lane_1xn!(5, $at, $w, $w2, $x), pixel_1xn!(10, 11, 15, $at, 5, $x))
    };
    (5, $at:ident, $w:literal, $w2:literal, $x:literal) => {
        concat!(lane_1xn!(4, $at, $w, $w2, $x), pixel_1xn!(8, 9, 14, $at, 4, $x))
    };
    (4, $at:ident, $w:literal, $w2:literal, $x:literal) => {
        concat!(
            "vmovups ymm12, [{w} + ", $w, "]\n",
            "vmovups ymm13, [{w} + ", $w2, "]\n",
            pixel_1xn!(0, 1, 14, $at, 0, $x),
            pixel_1xn!(2, 3, 15, $at, 1, $x),
            pixel_1xn!(4, 5, 14, $at, 2, $x),
            pixel_1xn!(6, 7, 15, $at, 3, $x),
        )
    };
}

/// One pixel of [`lane_1xn`]: pixel `$i`'s input lane at `[$at!($i) + $x]`
/// broadcast into ymm`$b`, times the weight row's halves into accumulators `$a0`
/// and `$a1`.
#[rustfmt::skip]
macro_rules! pixel_1xn {
    ($a0:literal, $a1:literal, $b:literal, $at:ident, $i:tt, $x:literal) => {
        concat!(
            "vbroadcastss ymm", $b, ", dword ptr [", $at!($i), " + ", $x, "]\n",
            "vfmadd231ps ymm", $a0, ", ymm12, ymm", $b, "\n",
            "vfmadd231ps ymm", $a1, ", ymm13, ymm", $b, "\n",
        )
    };
}

/// The pixel addressing of a tile whose pixels are `{xp}` bytes apart: pixel `$i`'s
/// input from `{x}`, or from `{x3}` (`{x}` + 3 `{xp}`) for pixels 3 to 5 (an index
/// scales by 1, 2, 4 or 8 only); `step` moves both on by a tap's `{step}` bytes.
#[rustfmt::skip]
macro_rules! px_strided {
    (0) => { "{x}" }; (1) => { "{x} + {xp}" }; (2) => { "{x} + {xp}*2" };
    (3) => { "{x3}" }; (4) => { "{x3} + {xp}" }; (5) => { "{x3} + {xp}*2" };
    (step) => { "add {x}, {step}\nadd {x3}, {step}\n" };
}

/// The pixel addressing of a raster tile, whose pixels may cross output row ends
/// (so are not evenly apart): pixel `$i`'s input `{d$i}` bytes from `{x}`, pixel
/// 0's; `step` moves `{x}` on by a tap's `{step}` bytes.
#[rustfmt::skip]
macro_rules! px_offsets {
    (0) => { "{x}" }; (1) => { "{x} + {d1}" }; (2) => { "{x} + {d2}" };
    (3) => { "{x} + {d3}" }; (4) => { "{x} + {d4}" }; (5) => { "{x} + {d5}" };
    (step) => { "add {x}, {step}\n" };
}

/// Prefetches (T0) a tap's input for the next tile along a long row of a 1 x
/// `$px` tile: pixels `$px..2 * $px` on from `{x}`, 64 bytes apart (a stride-1
/// 1x1 window's pixels, one 16-float block each).
#[rustfmt::skip]
macro_rules! next_tile_1xn {
    (6) => { "prefetcht0 [{x} + 384]\nprefetcht0 [{x} + 448]\nprefetcht0 [{x} + 512]\nprefetcht0 [{x} + 576]\nprefetcht0 [{x} + 640]\nprefetcht0 [{x} + 704]\n" };
    (5) => { "prefetcht0 [{x} + 320]\nprefetcht0 [{x} + 384]\nprefetcht0 [{x} + 448]\nprefetcht0 [{x} + 512]\nprefetcht0 [{x} + 576]\n" };
    (4) => { "prefetcht0 [{x} + 256]\nprefetcht0 [{x} + 320]\nprefetcht0 [{x} + 384]\nprefetcht0 [{x} + 448]\n" };
}

/// Prefetches (T0) a tap's input for the next tile along a row of a 1 x `$px`
/// tile at stride 2: pixels `$px..2 * $px` on from `{x}`, 128 bytes apart (a
/// stride-2 window's pixels, two 16-float blocks each).
#[rustfmt::skip]
macro_rules! next_tile_s2_1xn {
    (6) => { "prefetcht0 [{x} + 768]\nprefetcht0 [{x} + 896]\nprefetcht0 [{x} + 1024]\nprefetcht0 [{x} + 1152]\nprefetcht0 [{x} + 1280]\nprefetcht0 [{x} + 1408]\n" };
    (5) => { "prefetcht0 [{x} + 640]\nprefetcht0 [{x} + 768]\nprefetcht0 [{x} + 896]\nprefetcht0 [{x} + 1024]\nprefetcht0 [{x} + 1152]\n" };
    (4) => { "prefetcht0 [{x} + 512]\nprefetcht0 [{x} + 640]\nprefetcht0 [{x} + 768]\nprefetcht0 [{x} + 896]\n" };
}

/// The loop over `{n}` taps of a 1 x `$px` tile, its pixels addressed by `$at`:
/// `$pre` (prefetches, or nothing), 16 lanes of [`lane_1xn`], then the input on by
/// `{step}` bytes (`$at!(step)`) and the weights (`{w}`) by a tap's 16 x 16 floats.
#[rustfmt::skip]
macro_rules! taps_loop {
    ($px:tt, $at:ident) => { taps_loop!($px, $at, "") };
    ($px:tt, $at:ident, $pre:expr) => {
        concat!(
            "2:\n",
            $pre,
            lane_1xn!($px, $at, 0, 32, 0), lane_1xn!($px, $at, 64, 96, 4),
            lane_1xn!($px, $at, 128, 160, 8), lane_1xn!($px, $at, 192, 224, 12),
            lane_1xn!($px, $at, 256, 288, 16), lane_1xn!($px, $at, 320, 352, 20),
            lane_1xn!($px, $at, 384, 416, 24), lane_1xn!($px, $at, 448, 480, 28),
            lane_1xn!($px, $at, 512, 544, 32), lane_1xn!($px, $at, 576, 608, 36),
            lane_1xn!($px, $at, 640, 672, 40), lane_1xn!($px, $at, 704, 736, 44),
            lane_1xn!($px, $at, 768, 800, 48), lane_1xn!($px, $at, 832, 864, 52),
            lane_1xn!($px, $at, 896, 928, 56), lane_1xn!($px, $at, 960, 992, 60),
            $at!(step), "add {w}, 1024\n",
            "dec {n}\n", "jnz 2b\n",
        )
    };
}

/// The asm block of [`AsmTile::taps`] for `$px` pixels: the accumulators `$a` in
/// registers `$r` (pixel halves from ymm0 on), the rest up to ymm11 (`$u`) unused.
macro_rules! taps_asm {
    ($px:tt, $w:expr, $x:expr, $in_pixel:expr, $step:expr, $n:expr, [$($r:tt => $a:expr),*], [$($u:tt),*]) => {
        std::arch::asm!(
            taps_loop!($px, px_strided),
            w = inout(reg) $w => _,
            x = inout(reg) $x => _,
            xp = in(reg) $in_pixel * 4,
            x3 = inout(reg) $x.wrapping_add(3 * $in_pixel) => _,
            step = in(reg) $step * 4,
            n = inout(reg) $n => _,
            $(inout($r) *$a,)*
            $(out($u) _,)*
            out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
            options(nostack, readonly),
        )
    };
}

/// `$op` (a macro of a pixel's two accumulators and their two byte offsets) for
/// each pixel of a 1 x `$px` tile.
#[rustfmt::skip]
macro_rules! each_px_1xn {
    (6, $op:ident) => { concat!(each_px_1xn!(5, $op), $op!(10, 11, 320, 352)) };
    (5, $op:ident) => { concat!(each_px_1xn!(4, $op), $op!(8, 9, 256, 288)) };
    (4, $op:ident) => {
        concat!($op!(0, 1, 0, 32), $op!(2, 3, 64, 96), $op!(4, 5, 128, 160), $op!(6, 7, 192, 224))
    };
}

/// Operations of [`each_px_1xn`]: zero by FALSE_OQ compares (all bits clear);
/// add the partial sums at `{o}`, the bias at `{b}`, the residual at `{n}` (free
/// once the taps are done); clamp at zero (ymm12); store at `{o}`.
#[rustfmt::skip]
macro_rules! zero_px { ($a0:literal, $a1:literal, $at:literal, $at2:literal) => {
    concat!("vcmpps ymm", $a0, ", ymm", $a0, ", ymm", $a0, ", 11\n", "vcmpps ymm", $a1, ", ymm", $a1, ", ymm", $a1, ", 11\n")
} }
#[rustfmt::skip]
macro_rules! add_o_px { ($a0:literal, $a1:literal, $at:literal, $at2:literal) => {
    concat!("vaddps ymm", $a0, ", ymm", $a0, ", [{o} + ", $at, "]\n", "vaddps ymm", $a1, ", ymm", $a1, ", [{o} + ", $at2, "]\n")
} }
#[rustfmt::skip]
macro_rules! add_b_px { ($a0:literal, $a1:literal, $at:literal, $at2:literal) => {
    concat!("vaddps ymm", $a0, ", ymm", $a0, ", [{b}]\n", "vaddps ymm", $a1, ", ymm", $a1, ", [{b} + 32]\n")
} }
#[rustfmt::skip]
macro_rules! add_r_px { ($a0:literal, $a1:literal, $at:literal, $at2:literal) => {
    concat!("vaddps ymm", $a0, ", ymm", $a0, ", [{n} + ", $at, "]\n", "vaddps ymm", $a1, ", ymm", $a1, ", [{n} + ", $at2, "]\n")
} }
#[rustfmt::skip]
macro_rules! relu_px { ($a0:literal, $a1:literal, $at:literal, $at2:literal) => {
    concat!("vmaxps ymm", $a0, ", ymm", $a0, ", ymm12\n", "vmaxps ymm", $a1, ", ymm", $a1, ", ymm12\n")
} }
#[rustfmt::skip]
macro_rules! store_px { ($a0:literal, $a1:literal, $at:literal, $at2:literal) => {
    concat!("vmovups [{o} + ", $at, "], ymm", $a0, "\n", "vmovups [{o} + ", $at2, "], ymm", $a1, "\n")
} }

/// The first add of a chunk's store, in [`store`]'s order: the bias at `{b}` for
/// the first chunk (`{b}` then cleared), else the partial sums at `{o}`.
macro_rules! add_bias_or_sums_1xn {
    ($px:tt) => {
        concat!(
            "test {b}, {b}\n",
            "jz 4f\n",
            each_px_1xn!($px, add_b_px),
            "xor {b}, {b}\n",
            "jmp 5f\n",
            "4:\n",
            each_px_1xn!($px, add_o_px),
            "5:\n",
        )
    };
}

/// A chunk's clamp at zero, unless the flags of the test before say not (zero),
/// and its store at `{o}`; then the next chunk (label 3) while the test `$more`
/// (of the chunks left) says not zero.
macro_rules! clamp_store_1xn {
    ($px:tt, $more:expr) => {
        concat!(
            "jz 6f\n",
            "vxorps ymm12, ymm12, ymm12\n",
            each_px_1xn!($px, relu_px),
            "6:\n",
            each_px_1xn!($px, store_px),
            $more,
            "jnz 3b\n",
        )
    };
}

/// The end of a chunk read from the params at `{p}` (a chunk that is not the last
/// jumps to label 6): the residual at `[{p} + $r]` added unless null, the clamp at
/// zero unless `[{p} + $relu]` is zero, the store and the next chunk while `$more`,
/// as in [`clamp_store_1xn`].
#[rustfmt::skip]
macro_rules! residual_clamp_store_1xn {
    ($px:tt, $r:literal, $relu:literal, $more:expr) => {
        concat!(
            "mov {n}, [{p} + ", $r, "]\n",
            "test {n}, {n}\n",
            "jz 7f\n",
            each_px_1xn!($px, add_r_px),
            "7:\n",
            "cmp qword ptr [{p} + ", $relu, "], 0\n",
            clamp_store_1xn!($px, $more),
        )
    };
}

/// The asm block of [`AsmTile::chunks`] for `$px` pixels: per chunk, `{n}` =
/// min(`{c}`, taps left) taps from zero, then the adds of [`store`] in its order
/// (the bias or the partial sums; on the last chunk the residual, then the clamp).
/// The zeros are compares that wait for the previous chunk's sums: with
/// independent zeros (`vxorps`) the next chunk's FMAs crowd out its adds and
/// stores (figures: `docs/kernels.md`).
macro_rules! chunks_asm {
    ($px:tt, $pre:expr, $w:expr, $x:expr, $in_pixel:expr, $step:expr, $c:expr, $n:expr, $o:expr, $b:expr, $r:expr, $relu:expr) => {
        std::arch::asm!(
            "3:",
            each_px_1xn!($px, zero_px),
            "mov {n}, {c}",
            "cmp {left}, {c}",
            "cmovb {n}, {left}",
            "sub {left}, {n}",
            taps_loop!($px, px_strided, $pre),
            add_bias_or_sums_1xn!($px),
            "test {left}, {left}",
            "jnz 6f",
            "mov {n}, {r}",
            "test {n}, {n}",
            "jz 7f",
            each_px_1xn!($px, add_r_px),
            "7:",
            "test {relu}, {relu}",
            clamp_store_1xn!($px, "test {left}, {left}\n"),
            w = inout(reg) $w => _,
            x = inout(reg) $x => _,
            xp = in(reg) $in_pixel * 4,
            x3 = inout(reg) $x.wrapping_add(3 * $in_pixel) => _,
            step = in(reg) $step * 4,
            c = in(reg) $c,
            left = inout(reg) $n => _,
            n = out(reg) _,
            o = in(reg) $o,
            b = inout(reg) $b => _,
            r = in(reg) $r,
            relu = in(reg) $relu as usize,
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _, out("ymm5") _,
            out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
            out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
            options(nostack),
        )
    };
}

/// The asm block of [`AsmTile::runs`] for `$px` pixels, each at its own offset
/// `$d` from `{x}` (raster tiles cross output row ends; other tiles pass evenly
/// spaced offsets): per chunk, the `[0]` taps of one run of the window (a window
/// row, or a window column for a window one tap wide) from zero, `{step}` bytes
/// apart, then the input moved on to the next run (`{p}` `[8]`), and past the
/// block's last run also to the next block (`[16]`, every `[24]` runs, `[48]`
/// counting down); then the adds of [`store`] in its order, as in [`chunks_asm`];
/// each tap first runs `$pre` (prefetches, or nothing). The counters and the rarely
/// read values sit in the `RunParams` at `{p}` (`[32]` residual, `[40]` relu,
/// `[56]` chunks left), so that the 6 pixels' offsets fit the general registers.
macro_rules! runs_asm {
    ($px:tt, $pre:expr, $w:expr, $x:expr, $step:expr, $o:expr, $b:expr, $p:expr, [$($d:ident = $dv:expr),*]) => {
        std::arch::asm!(
            "3:",
            each_px_1xn!($px, zero_px),
            "mov {n}, [{p}]",
            taps_loop!($px, px_offsets, $pre),
            "add {x}, [{p} + 8]",
            "dec qword ptr [{p} + 48]",
            "jnz 8f",
            "add {x}, [{p} + 16]",
            "mov {n}, [{p} + 24]",
            "mov [{p} + 48], {n}",
            "8:",
            add_bias_or_sums_1xn!($px),
            "dec qword ptr [{p} + 56]",
            "jnz 6f",
            residual_clamp_store_1xn!($px, 32, 40, "cmp qword ptr [{p} + 56], 0\n"),
            w = inout(reg) $w => _,
            x = inout(reg) $x => _,
            $($d = in(reg) $dv,)*
            step = in(reg) $step * 4,
            n = out(reg) _,
            o = in(reg) $o,
            b = inout(reg) $b => _,
            p = in(reg) $p,
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _, out("ymm5") _,
            out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
            out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
            options(nostack),
        )
    };
}

/// The asm block of [`AsmTile::pieces`] for `$px` pixels: per chunk, `{cl}` =
/// min(`[0]`, taps left) taps from zero, walked in pieces of one run each (a
/// window row, or column for a window one tap wide, or what of it is left in the
/// chunk): `{n}` = min(taps left in the run `[24]`, `{cl}`) taps, then past a run's
/// last tap the input on to the next run (`[8]`, and past a block's last run, `[32]`
/// counting down from `[48]`, also `[40]`: the next block); then the adds of
/// [`store`] in its order, as in [`chunks_asm`]. The walk's counters live in the
/// `PieceParams` at `{p}` (`[16]` taps per run, `[56]` residual, `[64]` relu): they
/// change once a run, and the loop needs every general register.
macro_rules! pieces_asm {
    ($px:tt, $w:expr, $x:expr, $in_pixel:expr, $step:expr, $n:expr, $o:expr, $b:expr, $p:expr) => {
        std::arch::asm!(
            "3:",
            each_px_1xn!($px, zero_px),
            "mov {cl}, [{p}]",
            "cmp {left}, {cl}",
            "cmovb {cl}, {left}",
            "sub {left}, {cl}",
            "9:",
            "mov {n}, [{p} + 24]",
            "cmp {cl}, {n}",
            "cmovb {n}, {cl}",
            "sub [{p} + 24], {n}",
            "sub {cl}, {n}",
            taps_loop!($px, px_strided),
            "cmp qword ptr [{p} + 24], 0",
            "jnz 12f",
            "add {x}, [{p} + 8]",
            "add {x3}, [{p} + 8]",
            "mov {n}, [{p} + 16]",
            "mov [{p} + 24], {n}",
            "dec qword ptr [{p} + 32]",
            "jnz 12f",
            "add {x}, [{p} + 40]",
            "add {x3}, [{p} + 40]",
            "mov {n}, [{p} + 48]",
            "mov [{p} + 32], {n}",
            "12:",
            "test {cl}, {cl}",
            "jnz 9b",
            add_bias_or_sums_1xn!($px),
            "test {left}, {left}",
            "jnz 6f",
            residual_clamp_store_1xn!($px, 56, 64, "test {left}, {left}\n"),
            w = inout(reg) $w => _,
            x = inout(reg) $x => _,
            xp = in(reg) $in_pixel * 4,
            x3 = inout(reg) $x.wrapping_add(3 * $in_pixel) => _,
            step = in(reg) $step * 4,
            left = inout(reg) $n => _,
            cl = out(reg) _,
            n = out(reg) _,
            o = in(reg) $o,
            b = inout(reg) $b => _,
            p = in(reg) $p,
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _, out("ymm5") _,
            out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
            out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
            options(nostack),
        )
    };
}
