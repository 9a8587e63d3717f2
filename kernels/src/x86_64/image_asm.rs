//! The asm text of both x86 tiers' image rows
//! ([`ImageRow`](crate::image_stage::ImageRow)): the windows' walks and the loop
//! over a row's tiles. Each tier's `image` module defines, for its registers and
//! tile, the two macros these expand to: `plane_lane!(c, kx, l)` (lane `l` of the
//! folded window for all of a tile's pixels: channel `c`'s plane `{p<c>}`, window
//! column `kx`, weights from `{w}`) and `chunk_end_7x7!(kx)` (a 7x7 window's chunk
//! end before column `kx` of window row `{ky}`).

/// Every plane one window row down.
macro_rules! next_row {
    () => {
        "add {p0}, {rb}\nadd {p1}, {rb}\nadd {p2}, {rb}\n"
    };
}

/// A 3x3 window's 27 lanes in the folded order (window row, column, channel), in
/// one chunk, the planes ending 3 rows down.
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

/// A 7x7 window's row `{ky}` (21 lanes: column, channel; weights from `{w}`), with
/// the chunk ends that fall in it (a 7x7 window's chunks of 48 lanes end at lanes
/// 48, 96 and 144: row and column 2, 4 and 6, channel 0).
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

/// The tiles of an [`ImageRow`](crate::image_stage::ImageRow) (6 pixels each) in
/// one asm block: `$window` (a tile's lanes over its `$rows` window rows, the
/// planes ending that many rows down, the sums at the end in the accumulators with
/// the bias added), `$clamp` (if `relu`), `$store`, `$rewind` (the weights back
/// up, if the window moved them), and the planes back up and on to the next tile.
/// `$operands`: the tier's own operands (weights, bias, scratch registers) and its
/// clobbers.
macro_rules! image_rows_asm {
    ($r:expr, $rows:literal, $window:expr, $clamp:expr, $store:expr, $rewind:expr, [$($operands:tt)*]) => {{
        let r = $r;
        let [p0, p1, p2] = r.planes;
        std::arch::asm!(
            "3:",
            $window,
            "test {relu}, {relu}",
            "jz 6f",
            $clamp,
            "6:",
            $store,
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
            n = inout(reg) r.tiles => _,
            relu = in(reg) r.relu as usize,
            $($operands)*
            options(nostack),
        )
    }};
}
