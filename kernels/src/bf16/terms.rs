//! How a BF16 convolution makes its BF16 operands from float32 ones: rounded, one
//! product per multiply-add (`bf16`), or split into two BF16 terms each, three
//! products per multiply-add (`bf16x3`, near float32).
//!
//! The split: `hi` is `x` rounded to the nearest BF16 and `lo` the remainder
//! `x - hi` (exact in float32) rounded likewise, so `x = hi + lo + e` with
//! `|e| <= 2^-16 |x|` (each rounding is within 2^-8 of its value, and the
//! remainder within 2^-8 of `x`). A product `x * w` becomes
//! `hi_x hi_w + lo_x hi_w + hi_x lo_w`: `lo_x lo_w` (about 2^-16 of the product)
//! is dropped, so each product is within about 3 x 2^-16 of itself (derived in
//! `docs/bf16-kernels.md`, "bf16x3"), where rounding alone is within 2^-7.
//!
//! A split convolution is a BF16 convolution over three times the input channels:
//! the input staged as three groups of whole channel blocks `[x_hi | x_lo | x_hi]`
//! and the weights packed as `[w_hi | w_hi | w_lo]` along the input channels
//! ([`Bf16Terms::reduction_shape`]), so every tile and tier runs it unchanged. The
//! padding lanes of each group's last block hold zeros, in both operands.

use super::convert::{bf16, round_to_bf16, to_bf16};
use crate::geometry::ConvShape;
use crate::layout::{BLOCK, Dims, Image};

/// How a BF16 convolution's operands are made from float32 values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Bf16Terms {
    /// Each rounded to the nearest BF16: one product per multiply-add.
    #[default]
    Rounded,
    /// Each split into `hi + lo` BF16 terms: three products per multiply-add,
    /// `hi * hi + lo * hi + hi * lo`.
    Split3,
}

/// One BF16 term of a float32 value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Term {
    /// The value rounded to the nearest BF16, ties to even.
    Hi,
    /// The remainder after [`Term::Hi`], rounded likewise.
    Lo,
}

impl Term {
    /// This term of `x`.
    #[inline]
    pub fn of(self, x: f32) -> bf16 {
        match self {
            Term::Hi => to_bf16(x),
            Term::Lo => to_bf16(x - round_to_bf16(x)),
        }
    }
}

impl Bf16Terms {
    /// Groups of input channels the reduction runs over: 1, or 3 for a split.
    pub const fn groups(self) -> usize {
        match self {
            Bf16Terms::Rounded => 1,
            Bf16Terms::Split3 => 3,
        }
    }

    /// The activations' term in channel group `g`: `[hi | lo | hi]` for a split.
    pub const fn input_term(self, g: usize) -> Term {
        if g == 1 { Term::Lo } else { Term::Hi }
    }

    /// The weights' term in channel group `g`: `[hi | hi | lo]` for a split.
    pub const fn weight_term(self, g: usize) -> Term {
        if g == 2 { Term::Lo } else { Term::Hi }
    }

    /// The shape of the BF16 convolution that computes one of `shape` with these
    /// terms: for a split, input channels in three groups of `shape.ci_blocks()`
    /// whole blocks each (the last group's last block as partial as `shape`'s).
    pub const fn reduction_shape(self, shape: ConvShape) -> ConvShape {
        let ci = (self.groups() - 1) * shape.ci_blocks() * BLOCK + shape.ci;
        ConvShape { ci, ..shape }
    }

    /// Input channel `c` of the reduction of [`reduction_shape`](Self::reduction_shape)
    /// as (group, channel of `shape`); a channel past `shape.ci` in its group is padding.
    pub const fn channel(self, shape: ConvShape, c: usize) -> (usize, usize) {
        let group = shape.ci_blocks() * BLOCK;
        (c / group, c % group)
    }

    /// OIHW `weights` of `shape` as the OIHW weights of the
    /// [`reduction_shape`](Self::reduction_shape): in group `g` the
    /// [`weight_term`](Self::weight_term) of each weight (exactly, as float32),
    /// padding channels zero.
    pub fn reduction_weights(self, weights: &[f32], shape: ConvShape) -> Vec<f32> {
        let ConvShape { co, ci, kh, kw } = shape;
        assert_eq!(weights.len(), co * ci * kh * kw, "reduction_weights: weights are not OIHW of {shape:?}");
        let (wide, plane) = (self.reduction_shape(shape).ci, kh * kw);
        let mut out = vec![0.0; co * wide * plane];
        for (c, row) in out.chunks_exact_mut(plane).enumerate() {
            let (o, (g, i)) = (c / wide, self.channel(shape, c % wide));
            if i < ci {
                let w = &weights[(o * ci + i) * plane..][..plane];
                row.iter_mut().zip(w).for_each(|(r, &w)| *r = self.weight_term(g).of(w).to_f32());
            }
        }
        out
    }

    /// `input` (any layout) as the NCHW input of the
    /// [`reduction_shape`](Self::reduction_shape) of a convolution of its
    /// channels: in group `g` the [`input_term`](Self::input_term) of each value
    /// (exactly, as float32), padding channels zero; and its shape.
    pub fn reduction_input(self, input: Image) -> (Vec<f32>, Dims) {
        let d = input.dims;
        let shape = ConvShape { co: 1, ci: d.c, kh: 1, kw: 1 };
        let wide = Dims::new(self.reduction_shape(shape).ci, d.h, d.w);
        let mut out = vec![0.0; wide.volume()];
        for (n, v) in out.iter_mut().enumerate() {
            let (c, y, x) = (n / (d.h * d.w), n / d.w % d.h, n % d.w);
            let (g, i) = self.channel(shape, c);
            if i < d.c {
                *v = self.input_term(g).of(input.at(i, y, x)).to_f32();
            }
        }
        (out, wide)
    }
}

/// `src` as term `term` into `dst` (of the same length), for a split's staging:
/// the same bits on every tier.
pub(super) fn terms_row(term: Term, src: &[f32], dst: &mut [bf16]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = term.of(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// hi + lo recovers x to within 2^-16 of it, and lo is at most about 2^-8 of it.
    #[test]
    fn the_split_keeps_sixteen_bits() {
        let mut worst = 0f64;
        for n in 0..20000u32 {
            let x =
                f32::from_bits(0x3000_0000 + n.wrapping_mul(2_654_435_761) % 0x1800_0000) * [1.0, -1.0][n as usize % 2];
            let (hi, lo) = (Term::Hi.of(x).to_f32(), Term::Lo.of(x).to_f32());
            assert_eq!(hi, round_to_bf16(x));
            assert!(lo.abs() as f64 <= (2f64.powi(-8) + 2f64.powi(-16)) * x.abs() as f64, "{x}: lo {lo}");
            let e = ((x as f64) - (hi as f64 + lo as f64)).abs() / x.abs() as f64;
            assert!(e <= 2f64.powi(-16), "{x}: hi {hi} lo {lo}, error {e:e}");
            worst = worst.max(e);
        }
        // The bound is within a factor of 4 of what happens: it is not loose.
        assert!(worst > 2f64.powi(-18), "{worst:e}");
        assert_eq!((Term::Hi.of(1.0), Term::Lo.of(1.0)), (bf16::ONE, bf16::ZERO));
    }

    #[test]
    fn a_split_triples_whole_blocks_of_input_channels() {
        let s = ConvShape { co: 5, ci: 19, kh: 3, kw: 1 };
        assert_eq!(Bf16Terms::Rounded.reduction_shape(s), s);
        let r = Bf16Terms::Split3.reduction_shape(s);
        assert_eq!((r.ci, r.ci_blocks(), r.co, r.kh, r.kw), (64 + 19, 6, 5, 3, 1));
        assert_eq!(Bf16Terms::Split3.channel(s, 32 + 18), (1, 18));
        assert_eq!(Bf16Terms::Split3.channel(s, 64 + 3), (2, 3));
        let split = Bf16Terms::Split3;
        let pairs: Vec<_> = (0..3).map(|g| (split.input_term(g), split.weight_term(g))).collect();
        assert_eq!(pairs, [(Term::Hi, Term::Hi), (Term::Lo, Term::Hi), (Term::Hi, Term::Lo)]);
    }
}
