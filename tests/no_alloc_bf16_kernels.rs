//! The BF16 direct convolution allocates nothing, on every path of its driver
//! (input rounded whole first, or by the tiles) and every BF16 tier this CPU runs
//! (and the AMX tier's tiles on their emulation): proven with a counting global
//! allocator.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use incept_kernels::bf16::pack::pack_conv_weights_bf16;
use incept_kernels::bf16::{
    Bf16Kernels, Bf16Terms, Bf16Tier, PackedConvBf16, bf16, conv2d_bf16_par, conv2d_bf16_scratch_len,
};
use incept_kernels::pack::{ConvShape, pack_bias};
use incept_kernels::parallel::Sequential;
use incept_kernels::{Activation, ConvGeometry, Dims, Image, ImageMut, Layout, Padding};

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

#[test]
fn bf16_convolution_allocates_nothing() {
    // The counter works.
    assert!(counting_alloc::on_this_thread(|| drop(std::hint::black_box(vec![0u8; 64]))) > 0);
    let g = |k: usize, pad| ConvGeometry { kh: k, kw: k, stride_h: 1, stride_w: 1, pad: Padding::uniform(pad) };
    // A 3x3 padded layer (rounded whole first) and a 1x1 one (rounded in the tiles).
    for (ci, co, geom) in [(20, 40, g(3, 1)), (40, 70, g(1, 0))] {
        let (din, l) = (Dims::new(ci, 6, 7), Layout::Nchw16c);
        let (oh, ow) = geom.output_hw(din.h, din.w).unwrap();
        let dout = Dims::new(co, oh, ow);
        let shape = ConvShape { co, ci, kh: geom.kh, kw: geom.kw };
        let (mut w, mut b) = (Vec::new(), Vec::new());
        pack_conv_weights_bf16(&vec![0.25; co * ci * geom.kh * geom.kw], shape, &mut w);
        pack_bias(&vec![0.5; co], &mut b);
        let x = vec![1.0; l.image_len(din)];
        let mut y = vec![0.0; l.image_len(dout)];
        let mut scratch = vec![bf16::ZERO; conv2d_bf16_scratch_len(din, &geom, Bf16Terms::Rounded)];
        // Every tier this CPU runs, and the AMX tier's tiles on emulated instructions
        // (the same tile code as its hardware path, on any host).
        let emulated = std::iter::once(Bf16Kernels::amx_emulated());
        for kernels in Bf16Tier::available().into_iter().map(|t| Bf16Kernels::new(t).unwrap()).chain(emulated) {
            let packed = PackedConvBf16 { shape, terms: Bf16Terms::Rounded, weights: &w, bias: &b };
            let allocations = counting_alloc::on_this_thread(|| {
                let out = &mut ImageMut::new(&mut y, dout, l);
                let input = Image::new(&x, din, l);
                conv2d_bf16_par(&kernels, input, &packed, &geom, None, Activation::Relu, out, &mut scratch, &Sequential)
            });
            assert_eq!(allocations, 0, "{} {geom:?}", kernels.conv_name());
            // 0.25 x 1.0 x (ci x taps) + 0.5, except at the padded border: the centre pixel.
            let centre = l.index(dout, 0, oh / 2, ow / 2);
            assert_eq!(y[centre], 0.25 * (ci * geom.kh * geom.kw) as f32 + 0.5, "{}", kernels.conv_name());
        }
    }
}
