//! The BF16 microkernel contract: what a BF16 tier's convolution tile computes and
//! in which order it sums. Crate-private in spirit: the tiers implement it, the
//! driver (`bf16::conv`) calls it.

use super::convert::bf16;

use crate::BLOCK;

/// One output tile of a BF16 convolution, in elements (BF16 for the input and
/// weights, float32 for the rest).
///
/// For output block `b < ob`, pixel `p < px`, input block `ib`, tap `(ky, kx)` and
/// pair `j` of input lanes `(2j, 2j + 1)`, the microkernel multiplies
/// `input[ib * in_block + ky * in_row + kx * BLOCK + p * in_pixel + 2j + h]` by
/// `weights[b * w_block + t * BLOCK * BLOCK + j * 2 * BLOCK + lane * 2 + h]` for
/// `h` in 0, 1 (`t = (ib * kh + ky) * kw + kx`; the pair-interleaved packing of
/// [`crate::bf16::pack`]) and sums the products into
/// `output[b * out_block + p * BLOCK + lane]`, with `bias`, `residual` (if not null)
/// and ReLU (if asked) as the float32 microkernel contract (`microkernel::TileArgs`) does.
///
/// The order of the sum is fixed, the same on every tier: chunks of `chunk` taps
/// ([`crate::bf16::conv::chunk_taps_bf16`]), each from zero, added to the partial sum in
/// `output` (the first to the bias; the last then adds the residual and applies
/// the activation). Within a chunk the taps go in order, within a tap the pairs,
/// and each pair adds its lane `2j + 1` product and then its lane `2j` product, each
/// addition of an exact product rounded to nearest even: `VDPBF16PS`'s order. As
/// that instruction does, the chunk sums read a subnormal operand or accumulator
/// as zero and flush a subnormal result to zero (values below 1.2e-38, which
/// convolutions of real images do not produce).
///
/// The AMX tier keeps the chunks but not the order within a pair: `TDPBF16PS`
/// adds the even lane's product first (in the SDM's pseudocode, which its
/// emulation follows bit for bit), and the hardware's internal rounding is not
/// specified, so its sums are only within float32 rounding of this order's.
#[derive(Clone, Copy, Debug)]
pub struct Bf16TileArgs {
    /// BF16 input at (block 0, first tap row, first pixel's first tap column).
    /// Read only when `input_f32` is null.
    pub input: *const bf16,
    /// Or, when not null, the float32 input at the same position (the same
    /// offsets): the kernel rounds each value it reads to BF16 as
    /// [`Bf16Microkernel::to_bf16`] does, all 16 lanes of a pixel at once, so
    /// no pass over the input has to convert it first. For layers that read each
    /// input value in few tiles (a pointwise layer with few output blocks).
    pub input_f32: *const f32,
    /// Step between output pixels (stride x 16).
    pub in_pixel: usize,
    /// Step between tap rows (input width x 16).
    pub in_row: usize,
    /// Step between input channel blocks.
    pub in_block: usize,
    /// Input channel blocks.
    pub ci_blocks: usize,
    /// Real lanes in the last input block (1..=16); lanes past it hold zeros, and a
    /// kernel reads the pairs that hold a real lane.
    pub ci_tail: usize,
    /// Tap rows.
    pub kh: usize,
    /// Tap columns.
    pub kw: usize,
    /// Taps per chunk of the sum (at least 1).
    pub chunk: usize,
    /// Packed BF16 weights of the tile's first output block.
    pub weights: *const bf16,
    /// Step between output blocks in the packed weights.
    pub w_block: usize,
    /// Bias of the tile's first output block (16 per block).
    pub bias: *const f32,
    /// Shortcut to add before the activation, or null.
    pub residual: *const f32,
    /// Output at (first block, first pixel).
    pub output: *mut f32,
    /// Step between output blocks (output height x width x 16).
    pub out_block: usize,
    /// Apply ReLU in the store.
    pub relu: bool,
}

impl Bf16TileArgs {
    /// Pairs of lanes a kernel reads of input block `ib`: 8, or those of the last
    /// block's real lanes.
    #[inline(always)]
    pub(crate) fn pairs(&self, ib: usize) -> usize {
        if ib + 1 < self.ci_blocks { BLOCK / 2 } else { self.ci_tail.div_ceil(2) }
    }

    /// Offset in the input of tap `t`'s first element, from tap `t`'s position
    /// `(ib, ky, kx)`.
    #[inline(always)]
    pub(crate) fn tap_offset(&self, (ib, ky, kx): (usize, usize, usize)) -> usize {
        ib * self.in_block + ky * self.in_row + kx * BLOCK
    }

    /// The position `(ib, ky, kx)` after `pos`, taps numbered as in the contract.
    #[inline(always)]
    pub(crate) fn next_tap(&self, (ib, ky, kx): (usize, usize, usize)) -> (usize, usize, usize) {
        if kx + 1 < self.kw {
            (ib, ky, kx + 1)
        } else if ky + 1 < self.kh {
            (ib, ky + 1, 0)
        } else {
            (ib + 1, 0, 0)
        }
    }

    /// Adds one chunk's sums of an `ob x px` tile (`sums[b][p][lane]`) to the bias
    /// (the `first` chunk) or to the partial sum in the output, then (the `last`
    /// chunk) the residual and ReLU, as the contract says: the epilogue of the tiers
    /// that keep their chunk sums in memory (portable, AMX).
    ///
    /// # Safety
    /// The contract's bounds for bias, residual and output of an `ob x px` tile.
    #[inline(always)]
    pub(crate) unsafe fn add_chunk(&self, sums: &ChunkSums, (ob, px): (usize, usize), first: bool, last: bool) {
        for (b, sums_b) in sums.iter().enumerate().take(ob) {
            for (p, sums_p) in sums_b.iter().enumerate().take(px) {
                for (lane, &s) in sums_p.iter().enumerate() {
                    let off = b * self.out_block + p * BLOCK + lane;
                    // SAFETY: element (b, p, lane) of the tile, inside bias, residual and
                    // output by the contract.
                    unsafe {
                        let mut v = s + if first { *self.bias.add(b * BLOCK + lane) } else { *self.output.add(off) };
                        if last {
                            if !self.residual.is_null() {
                                v += *self.residual.add(off);
                            }
                            if self.relu {
                                v = v.max(0.0);
                            }
                        }
                        *self.output.add(off) = v;
                    }
                }
            }
        }
    }
}

impl From<&Bf16TileArgs> for crate::microkernel::TileSums {
    #[inline]
    fn from(a: &Bf16TileArgs) -> Self {
        crate::microkernel::TileSums {
            output: a.output,
            out_block: a.out_block,
            bias: a.bias,
            residual: a.residual,
            relu: a.relu,
        }
    }
}

/// One chunk's float32 sums of a tile of up to 4 output blocks x 16 pixels, by
/// block, pixel and lane.
pub(crate) type ChunkSums = [[[f32; BLOCK]; 16]; 4];

/// A BF16 tier's convolution microkernel and its largest tile.
#[derive(Clone, Copy, Debug)]
pub struct Bf16Microkernel {
    /// Name: op, tile and ISA.
    pub name: &'static str,
    /// Largest number of pixels per tile for each number of output blocks, as in
    /// the float32 `microkernel::ConvMicrokernel::max_px`.
    pub max_px: [usize; 5],
    /// Computes one tile of `ob` blocks and `px <= max_px[ob]` pixels.
    ///
    /// # Safety
    /// Every address the [`Bf16TileArgs`] formula reaches must be in bounds
    /// (read-only for inputs, writable for `output`), and the CPU must support the
    /// tier.
    pub tile: unsafe fn(args: &Bf16TileArgs, ob: usize, px: usize),
    /// Computes one tile of `ob` blocks and `px <= max_px[ob]` pixels of a
    /// convolution of a BF16 NCHW image (`bf16::image`), the arguments read so:
    /// `input` at (channel 0, first window row, first pixel's first tap column) of
    /// the zero-padded image, `in_pixel` the stride (values), `in_row` the padded
    /// width, `in_block` the padded plane, `ci_blocks` the channels, `kw` the pair
    /// columns (the window's width halved, rounded up), `chunk` window rows per
    /// chunk (`bf16::image::chunk_rows_image`), `weights` in the image packing
    /// (`bf16::pack::pack_conv_weights_bf16_image`), `w_block` its step between
    /// output blocks; `input_f32` and `ci_tail` unused. Window row
    /// `r = c * kh + ky`, pair column `q`, multiplies
    /// `input[c * in_block + ky * in_row + 2q + p * in_pixel + h]` (taps `2q + h`,
    /// two neighbouring pixels of one row) by
    /// `weights[b * w_block + (r * kw + q) * 32 + lane * 2 + h]`; rows and pairs go
    /// in order, in chunks of `chunk` rows, each pair adding its `h = 1` product
    /// then its `h = 0` one: the order and epilogue of [`Bf16TileArgs`] with a
    /// window row as a tap and its pair columns as its pairs.
    ///
    /// # Safety
    /// As for `tile`, with these formulas.
    pub image_tile: unsafe fn(args: &Bf16TileArgs, ob: usize, px: usize),
    /// Rounds `src` to BF16 into `dst` (of the same length), as
    /// [`to_bf16_slice`](super::convert::to_bf16_slice) does, except that a
    /// subnormal may become a zero of its sign (which the tiles read alike).
    ///
    /// # Safety
    /// The CPU must support the tier.
    pub to_bf16: unsafe fn(src: &[f32], dst: &mut [bf16]),
}
