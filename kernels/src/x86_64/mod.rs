//! x86-64 tiers: AVX2 + FMA and AVX-512F.

pub(crate) mod avx2;
pub(crate) mod avx512;

/// Expands to a `match` from a runtime pixel count to `$tile::<OB, PX>` instances.
macro_rules! match_px {
    ($tile:ident, $ob:tt, $a:expr, $px:expr, [$($p:literal),*]) => {
        match $px {
            $($p => $tile::<$ob, $p>($a),)*
            _ => unreachable!("pixel tile {} too wide", $px),
        }
    };
}
pub(crate) use match_px;
