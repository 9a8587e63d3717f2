//! What the convolution benches share: a layer shape, and a convolution ready to run
//! on NCHW16c buffers the way a session runs it (packed weights, 64-byte aligned
//! activations, fused ReLU).
#![allow(dead_code)]

use incept_kernels::conv::{Conv2d, PackedConv, conv2d, conv2d_scratch_len};
use incept_kernels::pack::{ConvShape, pack_bias, pack_conv_weights};
use incept_kernels::parallel::Sequential;
use incept_kernels::{Activation, AlignedVec, ConvGeometry, Dims, Image, ImageMut, Kernels, Layout};

/// One convolution layer: input `ci x h x w`, `co` outputs, window `geom`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvLayer {
    pub ci: usize,
    pub co: usize,
    pub h: usize,
    pub w: usize,
    pub geom: ConvGeometry,
}

impl ConvLayer {
    /// `ci -> co` channels on an `h x w` input.
    pub const fn new(ci: usize, co: usize, (h, w): (usize, usize), geom: ConvGeometry) -> Self {
        ConvLayer { ci, co, h, w, geom }
    }

    pub fn input(&self) -> Dims {
        Dims::new(self.ci, self.h, self.w)
    }

    pub fn output(&self) -> Dims {
        let (oh, ow) = self.geom.output_hw(self.h, self.w).expect("the window fits the input");
        Dims::new(self.co, oh, ow)
    }

    /// Floating-point operations: two per multiply-add.
    pub fn flops(&self) -> u64 {
        2 * (self.output().volume() * self.ci * self.geom.kh * self.geom.kw) as u64
    }
}

/// Total floating-point operations of a chain of layers.
pub fn chain_flops(layers: &[ConvLayer]) -> u64 {
    layers.iter().map(ConvLayer::flops).sum()
}

/// Deterministic values in [-1, 1).
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// A 64-byte aligned NCHW16c activation of shape `d` with values in [-1, 1)
/// (padding lanes zero, as the kernels leave them).
pub fn activation(d: Dims, seed: u64) -> AlignedVec {
    let mut buf = AlignedVec::zeroed(Layout::Nchw16c.image_len(d));
    let x = values(d.volume(), seed);
    incept_kernels::reference::copy(
        Image::new(&x, d, Layout::Nchw),
        &mut ImageMut::new(buf.as_mut_slice(), d, Layout::Nchw16c),
    );
    buf
}

/// He-scaled random OIHW weights and a small bias for `layer`.
pub fn layer_params(layer: ConvLayer, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let ConvLayer { ci, co, geom, .. } = layer;
    let scale = (6.0 / (ci * geom.kh * geom.kw) as f32).sqrt();
    let w = values(co * ci * geom.kh * geom.kw, seed).iter().map(|v| v * scale).collect();
    let b = values(co, seed ^ 0xb1a5).iter().map(|v| v * 0.1).collect();
    (w, b)
}

/// A packed convolution with its scratch, ready to run with one tier's kernels.
pub struct Conv {
    pub layer: ConvLayer,
    kernels: Kernels,
    shape: ConvShape,
    weights: AlignedVec,
    bias: AlignedVec,
    scratch: AlignedVec,
}

impl Conv {
    /// He-scaled random weights and a small bias, packed.
    pub fn new(kernels: Kernels, layer: ConvLayer, seed: u64) -> Self {
        let ConvLayer { ci, co, geom, .. } = layer;
        let shape = ConvShape { co, ci, kh: geom.kh, kw: geom.kw };
        let (w, b) = layer_params(layer, seed);
        let (mut pw, mut pb) = (Vec::new(), Vec::new());
        pack_conv_weights(&w, shape, &mut pw);
        pack_bias(&b, &mut pb);
        Conv {
            layer,
            kernels,
            shape,
            weights: AlignedVec::from_slice(&pw),
            bias: AlignedVec::from_slice(&pb),
            scratch: AlignedVec::zeroed(conv2d_scratch_len(layer.input(), &geom)),
        }
    }

    /// `out = relu(conv(input) + bias)`, both NCHW16c.
    pub fn run(&mut self, input: &[f32], out: &mut [f32]) {
        let op = Conv2d {
            input: Image::new(input, self.layer.input(), Layout::Nchw16c).into(),
            weights: PackedConv { shape: self.shape, weights: self.weights.as_slice(), bias: self.bias.as_slice() },
            geom: self.layer.geom,
            residual: None,
            act: Activation::Relu,
        };
        let out = &mut ImageMut::new(out, self.layer.output(), Layout::Nchw16c);
        conv2d(&self.kernels, &op, &mut out.into(), self.scratch.as_mut_slice(), &Sequential);
    }
}

/// A chain of convolutions, each reading the previous one's output, with its
/// input and intermediate buffers.
pub struct Chain {
    convs: Vec<Conv>,
    /// `bufs[0]` is the input, `bufs[i + 1]` the output of `convs[i]`.
    bufs: Vec<AlignedVec>,
}

impl Chain {
    pub fn new(kernels: Kernels, layers: &[ConvLayer], seed: u64) -> Self {
        for pair in layers.windows(2) {
            assert_eq!(pair[0].output(), pair[1].input(), "chain: {pair:?} do not connect");
        }
        let convs = layers.iter().enumerate().map(|(i, &l)| Conv::new(kernels, l, seed + i as u64)).collect();
        let mut bufs = vec![activation(layers[0].input(), seed ^ 0x1a7e)];
        bufs.extend(layers.iter().map(|l| AlignedVec::zeroed(Layout::Nchw16c.image_len(l.output()))));
        Chain { convs, bufs }
    }

    pub fn run(&mut self) {
        for (i, conv) in self.convs.iter_mut().enumerate() {
            let (done, rest) = self.bufs.split_at_mut(i + 1);
            conv.run(done[i].as_slice(), rest[0].as_mut_slice());
        }
    }

    /// The last output.
    pub fn output(&self) -> &[f32] {
        self.bufs.last().expect("a chain has an input").as_slice()
    }
}

/// Median wall times of `a` and `b` in milliseconds, run alternately (so that load
/// from elsewhere on the machine slows both alike), over at least 11 runs each and
/// 1 s in all (at most 200 runs each), after one warm-up call of each.
pub fn paired_medians_ms(mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64) {
    let time = |f: &mut dyn FnMut()| {
        let t = std::time::Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1e3
    };
    a();
    b();
    let start = std::time::Instant::now();
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    while ta.len() < 11 || (start.elapsed().as_secs_f64() < 1.0 && ta.len() < 200) {
        ta.push(time(&mut a));
        tb.push(time(&mut b));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(ta), median(tb))
}
