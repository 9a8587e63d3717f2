//! AArch64 tiers: NEON (Advanced SIMD), which every AArch64 CPU has.

pub(crate) mod neon;

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
