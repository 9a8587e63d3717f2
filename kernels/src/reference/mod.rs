//! Naive reference kernels: the oracle for every optimised tier.
//!
//! Each function computes one image, reads and writes through [`Image`](crate::layout::Image) views of
//! any [`Layout`](crate::layout::Layout) (so input and output may differ in layout), and
//! favours the plainest loop that is obviously right. Shapes are the caller's
//! contract: the kernels assert it, they do not validate user input.
//!
//! In the blocked layout every kernel zeroes the padding lanes of its output.

mod conv;
mod elementwise;
mod pool;

pub use conv::{conv2d, linear};
pub use elementwise::{batch_norm, copy, copy_channels, lrn, pointwise, relu, residual_add, softmax};
pub use pool::{avg_pool, avg_pool_padded, global_avg_pool, max_pool};

#[cfg(test)]
mod tests;
