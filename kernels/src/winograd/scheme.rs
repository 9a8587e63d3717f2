//! The Winograd schemes ([`Scheme`]): which windows each computes, its tiles and
//! transform positions.

use crate::geometry::ConvGeometry;
use crate::layout::BLOCK;

/// Most transform positions of any scheme (F(4x4, 3x3)'s 6 x 6).
pub const MAX_POSITIONS: usize = 36;

/// Every scheme, for each window it computes.
pub const ALL_SCHEMES: [Scheme; 10] = [
    Scheme::F2x2,
    Scheme::F4x4,
    Scheme::F2 { vertical: false, taps: 3 },
    Scheme::F2 { vertical: true, taps: 3 },
    Scheme::F2 { vertical: false, taps: 7 },
    Scheme::F2 { vertical: true, taps: 7 },
    Scheme::Line6 { vertical: false, taps: 3 },
    Scheme::Line6 { vertical: true, taps: 3 },
    Scheme::Line6 { vertical: false, taps: 7 },
    Scheme::Line6 { vertical: true, taps: 7 },
];

/// A Winograd algorithm and the windows it computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// F(2x2, 3x3), for 3x3 windows: 2x2 output tiles, 16 positions.
    F2x2,
    /// F(4x4, 3x3), for 3x3 windows: 4x4 output tiles, 36 positions.
    F4x4,
    /// F(2, 3) along the width (1x3, 1x7) or, when `vertical`, the height (3x1,
    /// 7x1): tiles of two pixels, 4 positions; `taps` is 3 or 7.
    F2 {
        /// Along the height (3x1, 7x1) rather than the width.
        vertical: bool,
        /// Taps of the window: 3 or 7.
        taps: usize,
    },
    /// The 6-point schemes along the width or, when `vertical`, the height
    /// (interpolation points 0, 1, -1, 1/2, -2, ∞, F(4x4, 3x3)'s): F(4, 3) for a
    /// 1x3 (tiles of 4 pixels) and, for a 1x7, F(3, 4) on taps 0-3 plus F(3, 3) on
    /// taps 4-6 summed in the same positions (tiles of 3 pixels); 6 positions.
    Line6 {
        /// Along the height (3x1, 7x1) rather than the width.
        vertical: bool,
        /// Taps of the window: 3 or 7.
        taps: usize,
    },
}

impl Scheme {
    /// The two-point-output scheme that computes a `kh x kw` window, if any
    /// (F(2x2, 3x3) for 3x3 windows; [`Scheme::F4x4`] computes them too).
    pub const fn for_window(kh: usize, kw: usize) -> Option<Scheme> {
        match (kh, kw) {
            (3, 3) => Some(Scheme::F2x2),
            (1, 3) | (1, 7) => Some(Scheme::F2 { vertical: false, taps: kw }),
            (3, 1) | (7, 1) => Some(Scheme::F2 { vertical: true, taps: kh }),
            _ => None,
        }
    }

    /// Transform positions.
    pub const fn positions(self) -> usize {
        match self {
            Scheme::F2x2 => 16,
            Scheme::F4x4 => 36,
            Scheme::F2 { .. } => 4,
            Scheme::Line6 { .. } => 6,
        }
    }

    /// Output rows and columns of a tile.
    pub(crate) const fn tile(self) -> (usize, usize) {
        match self {
            Scheme::F2x2 => (2, 2),
            Scheme::F4x4 => (4, 4),
            Scheme::F2 { vertical: true, .. } => (2, 1),
            Scheme::F2 { vertical: false, .. } => (1, 2),
            Scheme::Line6 { vertical, taps } => {
                let m = if taps == 3 { 4 } else { 3 };
                if vertical { (m, 1) } else { (1, m) }
            }
        }
    }

    /// Input pixels along the line a tile of a 1-D scheme reads: its outputs plus
    /// the taps, less one (0 for the 3x3 schemes).
    pub(crate) const fn span(self) -> usize {
        let (th, tw) = self.tile();
        match self {
            Scheme::F2x2 | Scheme::F4x4 => 0,
            Scheme::F2 { taps, .. } | Scheme::Line6 { taps, .. } => taps + th * tw - 1,
        }
    }

    /// Depth of position `p`'s GEMM, in input channels per input channel of the
    /// layer: one per F(2, 3) the window splits into, and one more at positions 0
    /// and 3 for a 1x7's last tap; for a 6-point 1x7, 2 (its F(3, 4) and F(3, 3))
    /// but at ∞ (position 5), where the F(3, 3)'s zero-padded fourth tap is 0.
    // Not inlined: inlined into a loop over the positions, LLVM reads `taps` of an
    // F(2x2)/F(4x4) value (a variant without it) ahead of the variant check, which
    // discards it; valgrind, in CI, counts that as a branch on uninitialised memory.
    #[inline(never)]
    pub const fn depth(self, p: usize) -> usize {
        match self {
            Scheme::F2x2 | Scheme::F4x4 => 1,
            Scheme::F2 { taps, .. } => taps / 3 + if p == 0 || p == 3 { taps % 3 } else { 0 },
            Scheme::Line6 { taps, .. } => {
                if taps == 7 && p < 5 {
                    2
                } else {
                    1
                }
            }
        }
    }

    /// The sum of [`depth`](Self::depth) over the positions: multiplies per tile and
    /// input channel.
    pub const fn total_depth(self) -> usize {
        let mut sum = 0;
        let mut p = 0;
        while p < self.positions() {
            sum += self.depth(p);
            p += 1;
        }
        sum
    }

    /// A short name: `F(2x2,3x3)`, `F(4x4,3x3)`, `F(2,3)`, `F(4,3)` or
    /// `F(3,4+3)` (the 6-point 1x7).
    pub const fn name(self) -> &'static str {
        match self {
            Scheme::F2x2 => "F(2x2,3x3)",
            Scheme::F4x4 => "F(4x4,3x3)",
            Scheme::F2 { .. } => "F(2,3)",
            Scheme::Line6 { taps: 3, .. } => "F(4,3)",
            Scheme::Line6 { .. } => "F(3,4+3)",
        }
    }

    /// The `kh x kw` window the scheme computes (a 1-D one only with 3 or 7 taps:
    /// see [`Scheme::for_window`]).
    pub const fn window(self) -> (usize, usize) {
        match self {
            Scheme::F2x2 | Scheme::F4x4 => (3, 3),
            Scheme::F2 { vertical: true, taps } | Scheme::Line6 { vertical: true, taps } => (taps, 1),
            Scheme::F2 { vertical: false, taps } | Scheme::Line6 { vertical: false, taps } => (1, taps),
        }
    }

    /// Whether this scheme computes a convolution of `ci` input channels with
    /// `geom`: stride 1 and its window, any padding for a 3x3, none across the line
    /// and whole 16-channel input blocks for a 1xn or nx1.
    pub fn computes(self, geom: &ConvGeometry, ci: usize) -> bool {
        let (p, window) = (geom.pad, (geom.kh, geom.kw));
        let fits = match self {
            Scheme::F2x2 | Scheme::F4x4 => true,
            Scheme::F2 { vertical: false, .. } | Scheme::Line6 { vertical: false, .. } => {
                p.top == 0 && p.bottom == 0 && ci.is_multiple_of(BLOCK)
            }
            Scheme::F2 { vertical: true, .. } | Scheme::Line6 { vertical: true, .. } => {
                p.left == 0 && p.right == 0 && ci.is_multiple_of(BLOCK)
            }
        };
        let window_ok = window == self.window() && Scheme::for_window(geom.kh, geom.kw).is_some();
        (geom.stride_h, geom.stride_w) == (1, 1) && window_ok && fits
    }
}

/// The two-point Winograd scheme ([`Scheme::for_window`]) that computes a
/// convolution of `ci` input channels with `geom`, if any (see [`Scheme::computes`]).
pub fn winograd_scheme(geom: &ConvGeometry, ci: usize) -> Option<Scheme> {
    Scheme::for_window(geom.kh, geom.kw).filter(|s| s.computes(geom, ci))
}

/// Whether a Winograd scheme computes a convolution of `ci` input channels with
/// `geom` (see [`winograd_scheme`]).
pub fn winograd_applies(geom: &ConvGeometry, ci: usize) -> bool {
    winograd_scheme(geom, ci).is_some()
}
