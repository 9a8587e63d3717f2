//! Reduced precision: convolutions on bfloat16 operands with float32 sums.
//!
//! BF16 keeps float32's exponent and 8 of its 24 significand bits, so a product of
//! two BF16 values is exact in float32 and only the operands lose precision. The
//! BF16 path rounds weights (once, when packing) and activations (as a convolution
//! reads them) to BF16 with round-to-nearest-even; everything else (bias,
//! residual, the sums, the stored outputs) stays float32.
//!
//! - [`convert`]: float32 <-> BF16, round to nearest even.
//! - [`reference`](mod@reference): the oracle: the float32 reference convolution on BF16-rounded
//!   operands.
//! - [`pack`]: weights in the pair-interleaved layout `VDPBF16PS` (and AMX's
//!   `TDPBF16PS`) reads.

pub mod convert;
pub mod pack;
pub mod reference;

pub use half::bf16;
