//! Kernels for incept: convolution, pooling and elementwise operators over one image.
//!
//! This crate knows nothing of graphs, threads or files. Every kernel works on a
//! single image (`C x H x W`) described by an [`Image`] view whose [`Layout`] is
//! either plain `NCHW` or the channel-blocked `NCHW16c` the engine runs on.
//!
//! The modules form layers, each importing only from the ones below it (a test,
//! `tests/layers.rs`, checks it):
//!
//! 1. leaves: [`layout`], [`geometry`], [`bands`], [`parallel`],
//!    [`reference`](mod@reference) (naive, obviously correct implementations of
//!    every operator: the oracle the optimised tiers are tested and fuzzed
//!    against);
//! 2. the microkernel contract (`microkernel`: what a tier's convolution
//!    microkernel computes and in which order it sums), the bodies written once
//!    over 16-lane blocks ([`blocked`], the Winograd [`winograd::Scheme`]s and
//!    transforms), weight packing ([`pack`]);
//! 3. one file per ISA tier (`portable`, `x86_64::avx2`, `x86_64::avx512`,
//!    `aarch64::neon`), each its microkernel, its instances of the shared bodies
//!    and its peak loop, described by one `ops::TierOps`;
//! 4. [`dispatch`]: the tier table, detection and `INCEPT_TIER`, and the
//!    [`Kernels`] proof token;
//! 5. the ISA-neutral drivers, free functions taking `&Kernels`: [`conv`] (direct
//!    convolution and the NCHW image stem), [`winograd`] (F(2x2, 3x3), F(4x4, 3x3)
//!    and F(2, 3), F(4, 3), F(3, 4+3) for 3x3, 1x3/3x1 and 1x7/7x1 stride-1 convolutions, whose GEMMs
//!    run on the same microkernels), [`pool`], [`linear`], [`peak`].

#![deny(missing_docs)]

pub mod bands;
pub mod geometry;
pub mod layout;
pub mod nhwc;
pub mod parallel;
pub mod reference;

pub mod blocked;
mod image_stage;
mod microkernel;
pub mod pack;
pub mod winograd;

#[cfg(target_arch = "aarch64")]
mod aarch64;
mod ops;
mod portable;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub mod dispatch;

pub mod conv;
pub mod linear;
pub mod peak;
pub mod pool;

pub mod bf16;

pub use bands::{Bands, BandsMut, RowSplit};
pub use dispatch::{
    Kernels, TIER_ENV, Tier, image_chunk_calls, image_row_calls, long_row_calls, next_tile_asm_chunks,
    next_window_asm_chunks, panel_calls, prefetched_asm_chunks, raster_asm_chunks, tier_calls, tile_calls,
    window_asm_chunks, window_piece_asm_chunks,
};
pub use geometry::{Activation, ConvGeometry, ConvShape, Padding, PoolGeometry};
pub use layout::{AlignedVec, BLOCK, Dims, Image, ImageMut, Layout};
