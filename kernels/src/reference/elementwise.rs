use crate::{Activation, Image, ImageMut};

fn for_each_pixel(out: &mut ImageMut, mut f: impl FnMut(usize, usize, usize) -> f32) {
    let d = out.dims;
    for c in 0..d.c {
        for y in 0..d.h {
            for x in 0..d.w {
                let v = f(c, y, x);
                out.set(c, y, x, v);
            }
        }
    }
    out.zero_padding_lanes();
}

/// Copies `input` into `out` (same shape); converts between layouts.
pub fn copy(input: Image, out: &mut ImageMut) {
    assert_eq!(input.dims, out.dims, "copy: shape");
    for_each_pixel(out, |c, y, x| input.at(c, y, x));
}

/// Copies `input` into channels `c0..c0 + input.c` of `out` (a concatenation),
/// leaving the other channels as they are.
pub fn copy_channels(input: Image, c0: usize, out: &mut ImageMut) {
    let d = input.dims;
    assert!(c0 + d.c <= out.dims.c && (d.h, d.w) == (out.dims.h, out.dims.w), "copy_channels: shape");
    for c in 0..d.c {
        for y in 0..d.h {
            for x in 0..d.w {
                out.set(c0 + c, y, x, input.at(c, y, x));
            }
        }
    }
    out.zero_padding_lanes();
}

/// `max(x, 0)`.
pub fn relu(input: Image, out: &mut ImageMut) {
    assert_eq!(input.dims, out.dims, "relu: shape");
    for_each_pixel(out, |c, y, x| input.at(c, y, x).max(0.0));
}

/// `f(x)` per element: the pointwise activations with no parameter tensors (clip,
/// sigmoid, leaky ReLU), each one step over the image.
pub fn pointwise(input: Image, f: impl Fn(f32) -> f32, out: &mut ImageMut) {
    assert_eq!(input.dims, out.dims, "pointwise: shape");
    for_each_pixel(out, |c, y, x| f(input.at(c, y, x)));
}

/// Inference BatchNorm: `(x - mean) / sqrt(var + eps) * gamma + beta`, per channel.
pub fn batch_norm(input: Image, gamma: &[f32], beta: &[f32], mean: &[f32], var: &[f32], eps: f32, out: &mut ImageMut) {
    let c = input.dims.c;
    assert_eq!(input.dims, out.dims, "batch_norm: shape");
    assert!([gamma.len(), beta.len(), mean.len(), var.len()].iter().all(|&n| n == c), "batch_norm: parameter length");
    for_each_pixel(out, |c, y, x| (input.at(c, y, x) - mean[c]) / (var[c] + eps).sqrt() * gamma[c] + beta[c]);
}

/// Scaled residual addition: `act(x + scale * y)`.
pub fn residual_add(x: Image, y: Image, scale: f32, act: Activation, out: &mut ImageMut) {
    assert!(x.dims == out.dims && y.dims == out.dims, "residual_add: shape");
    for_each_pixel(out, |c, r, s| act.apply(x.at(c, r, s) + scale * y.at(c, r, s)));
}

/// Local response normalisation across channels (Caffe / PyTorch):
/// `x / (k + alpha / size * sum(x^2 over the window))^beta`, where the window spans
/// channels `c - size/2 ..= c + (size-1)/2`, clipped to the image.
pub fn lrn(input: Image, size: usize, alpha: f32, beta: f32, k: f32, out: &mut ImageMut) {
    assert_eq!(input.dims, out.dims, "lrn: shape");
    let n = input.dims.c;
    for_each_pixel(out, |c, y, x| {
        let lo = c.saturating_sub(size / 2);
        let hi = (c + (size - 1) / 2).min(n - 1);
        let sq: f32 = (lo..=hi).map(|j| input.at(j, y, x).powi(2)).sum();
        input.at(c, y, x) / (k + alpha / size as f32 * sq).powf(beta)
    });
}

/// Softmax over channels, independently at every pixel.
pub fn softmax(input: Image, out: &mut ImageMut) {
    assert_eq!(input.dims, out.dims, "softmax: shape");
    let d = input.dims;
    for y in 0..d.h {
        for x in 0..d.w {
            let max = (0..d.c).map(|c| input.at(c, y, x)).fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = (0..d.c).map(|c| (input.at(c, y, x) - max).exp()).sum();
            for c in 0..d.c {
                out.set(c, y, x, (input.at(c, y, x) - max).exp() / sum);
            }
        }
    }
    out.zero_padding_lanes();
}
