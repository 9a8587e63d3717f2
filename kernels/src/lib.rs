//! Kernels for incept: convolution, pooling and elementwise operators over one image.
//!
//! This crate knows nothing of graphs, threads or files. Every kernel works on a
//! single image (`C x H x W`) described by an [`Image`] view whose [`Layout`] is
//! either plain `NCHW` or the channel-blocked `NCHW16c` the engine runs on.
//!
//! - [`reference`]: naive, obviously correct implementations of every operator.
//!   They are the oracle the optimised tiers are tested and fuzzed against, and are
//!   never optimised themselves.

pub mod geometry;
pub mod layout;
pub mod reference;

pub use geometry::{Activation, ConvGeometry, Padding, PoolGeometry};
pub use layout::{BLOCK, Dims, Image, ImageMut, Layout};
