//! The BF16 convolution of a network's NCHW input image ([`conv2d_bf16_image`]).
//!
//! A blocked copy of a 3-channel image would be 16/3 of its bytes, and its pairs of
//! input channels half padding. Instead the image is rounded once per call into a
//! BF16 NCHW copy (the same layout, half the bytes) with a zero border of the
//! padding, and the tiles pair neighbouring taps of a window row: taps `kx` and
//! `kx + 1` read pixels `ix` and `ix + 1`, which lie side by side in a row at any
//! stride, so one 32-bit broadcast feeds a `VDPBF16PS` against the weights
//! `(w[kx], w[kx + 1])` of 16 output channels (packed by
//! [`pack_conv_weights_bf16_image`](super::pack::pack_conv_weights_bf16_image)).
//! An odd window width pairs each row's last tap with a zero weight, and the copy
//! has one more zero column on the right for it to read. Outputs are NCHW16c
//! float32, as for every other convolution.

use super::conv::{BF16_CHUNK_TERMS, Bf16Kernels, PackedConvBf16, Tiles, record_call};
use super::convert::bf16;
use super::microkernel::Bf16TileArgs;
use super::pack::image_packed_len;
use super::stage::{TASKS_PER_THREAD, fill_rows};
use super::terms::Bf16Terms;
use crate::bands::{Bands, BandsMut, MAX_BANDS};
use crate::geometry::{Activation, ConvGeometry, ConvShape};
use crate::layout::{BLOCK, Dims, ImageMut, Layout};
use crate::microkernel::TileShapes;
use crate::parallel::ParallelFor;

/// Window rows (of one channel) per chunk of the sum of a BF16 image convolution
/// of `shape`: at least [`BF16_CHUNK_TERMS`] products (a row is `kw` rounded up to
/// even), the `ci * kh` rows split into chunks as even as whole rows allow. Whole
/// rows, so that a tile's inner loop is one row's pairs. Depends on the shape only,
/// so every tier sums in the same order.
pub fn chunk_rows_image(shape: ConvShape) -> usize {
    let (rows, per) = (shape.ci * shape.kh, (BF16_CHUNK_TERMS / shape.kw.next_multiple_of(2)).max(1));
    rows.div_ceil(rows.div_ceil(per).max(1)).max(1)
}

/// Rows and width of the BF16 copy of an image of shape `input`: padded, plus a
/// zero column for an odd window's last pair.
fn padded_image(input: Dims, geom: &ConvGeometry) -> (usize, usize) {
    let p = geom.pad;
    (input.h + p.top + p.bottom, input.w + p.left + p.right + geom.kw % 2)
}

/// BF16 scratch values [`conv2d_bf16_image`] needs for an image of shape `input`:
/// its padded BF16 copy.
pub fn conv2d_bf16_image_scratch_len(input: Dims, geom: &ConvGeometry) -> usize {
    let (h, w) = padded_image(input, geom);
    input.c * h * w
}

/// `out = act(conv(bf16(input), w) + bias + residual)` of an NCHW image `input`
/// (in bands, as a network's input may be) into NCHW16c `out` (in bands; `residual`
/// in `out`'s), with weights in the image packing, over `par`'s threads. The image
/// is rounded (to nearest even) into `scratch`, which must hold
/// [`conv2d_bf16_image_scratch_len`] values, in rows spread over the threads; then
/// the tiles in runs of (group of output blocks, output row) units. Sums in
/// float32 in the order of
/// [`Bf16Microkernel::image_tile`](super::microkernel::Bf16Microkernel::image_tile),
/// the same at any thread count and band split.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_bf16_image(
    kernels: &Bf16Kernels,
    input: Bands,
    w: &PackedConvBf16,
    geom: &ConvGeometry,
    residual: Option<Bands>,
    act: Activation,
    out: &mut BandsMut,
    scratch: &mut [bf16],
    par: &dyn ParallelFor,
) {
    let (din, dout, split, s) = (input.dims, out.dims, out.split, w.shape);
    assert!(input.layout == Layout::Nchw && out.layout == Layout::Nchw16c, "conv2d_bf16_image: layouts");
    assert!(din.c == s.ci && dout.c == s.co && (geom.kh, geom.kw) == (s.kh, s.kw), "conv2d_bf16_image: shape");
    assert_eq!(geom.output_hw(din.h, din.w), Some((dout.h, dout.w)), "conv2d_bf16_image: size");
    assert!(
        w.terms == Bf16Terms::Rounded && w.weights.len() == image_packed_len(s) && w.bias.len() == s.packed_bias_len(),
        "conv2d_bf16_image: packing (rounded operands only)"
    );
    if let Some(r) = residual {
        assert!(r.dims == dout && r.split == split && r.layout == out.layout, "conv2d_bf16_image: residual");
    }
    let len = conv2d_bf16_image_scratch_len(din, geom);
    assert!(scratch.len() >= len, "conv2d_bf16_image: scratch holds {} of {len} values", scratch.len());
    record_call(kernels);

    // The BF16 copy: row r is row r % h - pad.top of channel r / h, zero outside
    // the image, with pad.left zeros before and the rest of the row zero after.
    let (h, width) = padded_image(din, geom);
    let (p, to_bf16) = (geom.pad, kernels.mk_to_bf16());
    let staged = &mut scratch[..len];
    fill_rows(staged, width, par, &|r, row| {
        let (c, y) = (r / h, (r % h) as isize - p.top as isize);
        if y < 0 || y as usize >= din.h {
            row.fill(bf16::ZERO);
            return;
        }
        let (band, y) = input.row(y as usize);
        let plane = band.dims.h * din.w;
        row[..p.left].fill(bf16::ZERO);
        // SAFETY: `to_bf16` comes from a `Bf16Kernels`, which proves the tier runs here.
        unsafe { to_bf16(&band.data[c * plane + y * din.w..][..din.w], &mut row[p.left..][..din.w]) };
        row[p.left + din.w..].fill(bf16::ZERO);
    });
    let staged: &[bf16] = staged;

    let tiles: [Option<Tiles>; MAX_BANDS] = std::array::from_fn(|t| {
        (t < split.bands()).then(|| {
            let res = residual.map(|r| r.band(t).data);
            Tiles::for_image(kernels, w, geom, act, res, &mut out.band(t))
        })
    });
    let tiling = tiles[0].as_ref().expect("one band at least").tiling(dout.w);
    let strides = (h * width, width);
    // Units: (group of output blocks, output row), group-major, in even runs per task.
    let units = tiling.groups * dout.h;
    let tasks = (TASKS_PER_THREAD * par.threads()).min(units).max(1);
    par.run(tasks, &|task| {
        let mut shapes = TileShapes::default();
        for unit in task * units / tasks..(task + 1) * units / tasks {
            let ((ob0, ob), oy) = (tiling.group(unit / dout.h), unit % dout.h);
            let band = split.band_of(oy);
            let band_tiles = tiles[band].as_ref().expect("a tiling per band");
            let out_row = oy - split.rows(band).start;
            let step = tiling.px[ob];
            for ox0 in (0..dout.w).step_by(step) {
                let px = step.min(dout.w - ox0);
                let in_off = oy * geom.stride_h * width + ox0 * geom.stride_w;
                // SAFETY: the tile reads channels < ci, rows oy*sh .. oy*sh + kh - 1 < h
                // and columns up to (ox0+px-1)*sw + 2 * ceil(kw/2) - 1 < width of the
                // copy (the output size was checked against the geometry, and the copy
                // has a column more for an odd window), all written above. The tile
                // lies in its band of the output; units are disjoint and each belongs
                // to one task.
                unsafe {
                    band_tiles.run(
                        (staged[in_off..].as_ptr(), std::ptr::null()),
                        strides,
                        (ob0, ob),
                        (out_row * dout.w + ox0, px),
                        &mut shapes,
                    )
                };
            }
        }
        // Every band's tiles count their shapes alike.
        tiles[0].as_ref().expect("one band at least").record(shapes);
    });
}

impl<'a> Tiles<'a> {
    /// The tiles of a convolution of a BF16 NCHW image with weights `w` in the
    /// image packing ([`super::pack::pack_conv_weights_bf16_image`]) into `out`
    /// (as [`new`](Self::new)): the tier's image tile, with the arguments it reads
    /// ([`Bf16Microkernel::image_tile`](super::microkernel::Bf16Microkernel::image_tile)).
    fn for_image(
        kernels: &'a Bf16Kernels,
        w: &PackedConvBf16,
        geom: &ConvGeometry,
        act: Activation,
        residual: Option<&'a [f32]>,
        out: &mut ImageMut,
    ) -> Self {
        let s = w.shape;
        let mut tiles = Tiles::new(kernels, w, geom, act, residual, out);
        let pairs = s.kw.div_ceil(2);
        tiles.tile = kernels.image_tile();
        tiles.template = Bf16TileArgs {
            in_pixel: geom.stride_w,
            ci_blocks: s.ci,
            kw: pairs,
            chunk: chunk_rows_image(s),
            w_block: s.ci * s.kh * pairs * 2 * BLOCK,
            ..tiles.template
        };
        tiles
    }
}
