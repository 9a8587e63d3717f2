//! float32 <-> BF16 conversion.
//!
//! float32 to BF16 rounds to nearest, ties to even, as `VCVTNEPS2BF16` and every
//! framework do: the significand's low 16 bits are dropped, rounding up when they
//! exceed half an ulp, or equal it and the kept part is odd. Values past the
//! largest BF16 round to infinity, float32 subnormals to BF16 subnormals (the BF16
//! tiers then read those as zero, see [`crate::bf16::conv`]), and a NaN stays a NaN,
//! made quiet. BF16 to float32 is exact.

/// A bfloat16 value: the upper half of a float32's bits.
///
/// Own type rather than the `half` crate's: the kernels need only storage and
/// the two conversions, and `half` would add three crates (with a proc-macro)
/// to every embedder's build.
#[allow(non_camel_case_types)]
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct bf16(u16);

// SAFETY: `bf16` is `repr(transparent)` over a `u16`: no padding, and every bit
// pattern is a valid value.
unsafe impl bytemuck::Zeroable for bf16 {}
// SAFETY: as above; `u16` is `Pod` and the wrapper adds nothing.
unsafe impl bytemuck::Pod for bf16 {}

impl bf16 {
    /// +0.
    pub const ZERO: bf16 = bf16(0);
    /// 1.
    pub const ONE: bf16 = bf16(0x3f80);

    /// The value with these bits.
    #[inline]
    pub const fn from_bits(bits: u16) -> bf16 {
        bf16(bits)
    }

    /// The bits of the value.
    #[inline]
    pub const fn to_bits(self) -> u16 {
        self.0
    }

    /// `x` rounded to the nearest BF16, ties to even: add just under half an ulp
    /// plus the kept part's lowest bit (so a tie goes to even) and drop the low
    /// 16 bits; a NaN keeps its top bits and gets the quiet bit.
    #[inline]
    pub const fn from_f32(x: f32) -> bf16 {
        let b = x.to_bits();
        if x.is_nan() {
            return bf16((b >> 16) as u16 | 0x0040);
        }
        bf16(((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16)
    }

    /// The float32 value (exact).
    #[inline]
    pub const fn to_f32(self) -> f32 {
        f32::from_bits((self.0 as u32) << 16)
    }

    /// Whether the value is a NaN.
    #[inline]
    pub const fn is_nan(self) -> bool {
        self.0 & 0x7fff > 0x7f80
    }
}

/// `x` rounded to the nearest BF16, ties to even.
#[inline]
pub fn to_bf16(x: f32) -> bf16 {
    bf16::from_f32(x)
}

/// The float32 value of `b` (exact).
#[inline]
pub fn to_f32(b: bf16) -> f32 {
    b.to_f32()
}

/// `x` rounded to the nearest BF16 and back: the value a BF16 kernel computes with.
#[inline]
pub fn round_to_bf16(x: f32) -> f32 {
    to_f32(to_bf16(x))
}

/// `src` rounded to BF16 into `dst` (of the same length).
pub fn to_bf16_slice(src: &[f32], dst: &mut [bf16]) {
    assert_eq!(src.len(), dst.len(), "to_bf16_slice: lengths differ");
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = to_bf16(s);
    }
}

/// Checks a tier's conversion (a `Bf16Microkernel::to_bf16`) against [`to_bf16`] on
/// 37 values (ties, overflow, NaNs, infinities, signed zeros, subnormals; an odd
/// count, so a scalar tail runs too): equal on every value but subnormals, which
/// become zeros of their sign (always when `flushes`, else either way).
///
/// # Safety
/// The CPU must run `convert`.
#[cfg(test)]
pub(crate) unsafe fn check_tier_conversion(convert: unsafe fn(&[f32], &mut [bf16]), flushes: bool) {
    let mut src: Vec<f32> = [0x3f80_8000u32, 0x3f81_8000, 0x3f80_8001, 0x7f7f_ffff, 0x7f80_0001, 0xff80_0000]
        .into_iter()
        .map(f32::from_bits)
        .chain([f32::NAN, -0.0, 1e-40, -1e-40, f32::MIN_POSITIVE, 3.0e38, -1.5])
        .collect();
    src.extend((0..24).map(|i| (i as f32 * 0.731).sin() * 10f32.powi(i % 7 - 3)));
    let mut dst = vec![bf16::ZERO; src.len()];
    // SAFETY: the caller's.
    unsafe { convert(&src, &mut dst) };
    for (&s, d) in src.iter().zip(&dst) {
        let (exact, flushed) = (to_bf16(s).to_bits(), to_bf16(0f32.copysign(s)).to_bits());
        let ok = match s.is_subnormal() {
            true => d.to_bits() == flushed || (!flushes && d.to_bits() == exact),
            false => d.to_bits() == exact,
        };
        assert!(ok, "{s:e} ({:#010x}): got {:#06x}, rounded {exact:#06x}", s.to_bits(), d.to_bits());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arithmetic definition, independent of the bit trick: of the two BF16
    /// values around `x` (truncated, and one ulp further from zero), the nearer in
    /// float64, the even one on a tie; NaNs keep their top bits and get the quiet bit.
    fn by_bits(x: f32) -> u16 {
        let b = x.to_bits();
        if x.is_nan() {
            return (b >> 16) as u16 | 0x0040;
        }
        let down = (b >> 16) as u16;
        let up = down + 1; // one ulp further from zero
        // Rounding sees the step past the largest finite value as 2^128, though it is stored as infinity.
        let value = |h: u16| match h & 0x7fff {
            0x7f80 => 2f64.powi(128).copysign(x as f64),
            _ => f32::from_bits((h as u32) << 16) as f64,
        };
        let (dd, du) = ((x as f64 - value(down)).abs(), (value(up) - x as f64).abs());
        if b & 0xffff == 0 || dd < du || (dd == du && down.is_multiple_of(2)) { down } else { up }
    }

    #[test]
    fn ties_go_to_even() {
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7 (BF16's ulp at 1): even is 1.
        assert_eq!(to_bf16(1.0 + 2f32.powi(-8)).to_bits(), 0x3f80);
        // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
        assert_eq!(to_bf16(1.0 + 3.0 * 2f32.powi(-8)).to_bits(), 0x3f82);
        // Just above a tie rounds up, just below rounds down.
        assert_eq!(to_bf16(f32::from_bits(0x3f80_8001)).to_bits(), 0x3f81);
        assert_eq!(to_bf16(f32::from_bits(0x3f81_7fff)).to_bits(), 0x3f81);
        assert_eq!(to_bf16(-(1.0 + 2f32.powi(-8))).to_bits(), 0xbf80);
    }

    #[test]
    fn specials_and_subnormals() {
        assert_eq!(to_bf16(f32::INFINITY).to_bits(), 0x7f80);
        assert_eq!(to_bf16(f32::NEG_INFINITY).to_bits(), 0xff80);
        // The largest float32 is past BF16's largest finite value plus half an ulp.
        assert_eq!(to_bf16(f32::MAX).to_bits(), 0x7f80);
        assert_eq!(to_bf16(-0.0).to_bits(), 0x8000);
        // A NaN whose payload lies only in the dropped bits stays a NaN, quiet.
        let nan = to_bf16(f32::from_bits(0x7f80_0001));
        assert!(nan.is_nan() && nan.to_bits() & 0x0040 != 0);
        assert!(to_f32(to_bf16(f32::NAN)).is_nan());
        // Subnormals round like any other value: 2^-149 and half the smallest BF16
        // subnormal (2^-134, a tie, even is zero) go to zero; 2^-133 survives; 1.5
        // times it is a tie that goes to the even 2 x 2^-133; the largest float32
        // subnormal rounds up to the smallest normal.
        assert_eq!(to_bf16(f32::from_bits(1)).to_bits(), 0);
        assert_eq!(to_bf16(f32::from_bits(0x0001_0000)).to_bits(), 1);
        assert_eq!(to_bf16(f32::from_bits(0x0000_8000)).to_bits(), 0);
        assert_eq!(to_bf16(f32::from_bits(0x0001_8000)).to_bits(), 2);
        assert_eq!(to_bf16(f32::from_bits(0x007f_ffff)).to_bits(), 0x0080);
        assert_eq!(round_to_bf16(f32::from_bits(0x0042_0000)), f32::from_bits(0x0042_0000));
    }

    #[test]
    fn every_exponent_matches_the_bit_level_definition() {
        // Every exponent, both signs, and low halves around each rounding boundary,
        // over a spread of kept significands (odd and even).
        for hi in (0u32..=0xffff).step_by(7).chain([0x7f7f, 0x7f80, 0xff7f, 0x0000, 0x8000]) {
            for lo in [0u32, 1, 0x7ffe, 0x7fff, 0x8000, 0x8001, 0xfffe, 0xffff] {
                let x = f32::from_bits(hi << 16 | lo);
                let got = to_bf16(x).to_bits();
                assert_eq!(got, by_bits(x), "{:#010x}", x.to_bits());
                if !x.is_nan() {
                    assert_eq!(to_f32(to_bf16(x)).to_bits(), (got as u32) << 16, "exact widening");
                }
            }
        }
    }

    #[test]
    fn slices_round_every_value() {
        let src: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let mut dst = vec![bf16::ZERO; 100];
        to_bf16_slice(&src, &mut dst);
        assert!(src.iter().zip(&dst).all(|(&s, &d)| d.to_bits() == by_bits(s)));
    }
}
