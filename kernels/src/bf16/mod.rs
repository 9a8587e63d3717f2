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
//! - [`pack`]: weights in the pair-interleaved layout `VDPBF16PS` reads.
//! - [`conv`]: the direct convolution driver on NCHW16c float32 images, its tile
//!   contract and the BF16 tiers ([`Bf16Kernels`]).
//! - `neon`: the NEON BF16 tier (AArch64 `BFDOT`).
//! - `amx`, `amx_tiles`: the AMX tier, on the tile instructions or (in tests) an
//!   emulation of them.
//! - [`terms`]: operands rounded (`bf16`) or split into two BF16 terms each,
//!   three products per multiply-add (`bf16x3`): a BF16 convolution over three
//!   groups of input channels.
//! - `stage`: the pass that rounds (or splits) the float32 input into the BF16
//!   copy the tiles read.
//! - [`bands`]: the same on images in bands of rows, one band per thread.
//! - [`image`](mod@image): the first convolution, on the network's NCHW image rounded to a
//!   BF16 NCHW copy, neighbouring taps of a window row paired.

// The AMX tier: compiled for x86-64, and on other targets for the tests of its
// emulated tiles.
#[cfg(any(target_arch = "x86_64", test, feature = "amx-emulation-for-tests"))]
mod amx;
#[cfg(any(target_arch = "x86_64", test, feature = "amx-emulation-for-tests"))]
mod amx_tiles;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod bands;
pub mod conv;
pub mod convert;
pub mod image;
pub mod microkernel;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod pack;
mod portable;
pub mod reference;
mod stage;
pub mod terms;

pub use bands::{conv2d_bf16, conv2d_bf16_bands_scratch_len};
pub use conv::{
    BF16_TIER_ENV, BF16_TIERS, Bf16Kernels, Bf16Tier, PackedConvBf16, bf16_tier_calls, bf16_tile_calls,
    conv2d_bf16_par, conv2d_bf16_scratch_len,
};
pub use convert::bf16;
pub use image::{conv2d_bf16_image, conv2d_bf16_image_scratch_len};
pub use terms::Bf16Terms;
