use crate::geometry::{Activation, ConvGeometry};
use crate::layout::{Image, ImageMut};

/// Direct convolution: `out = act(conv(input, weights) + bias + residual)`.
///
/// `weights` are `[out.c, input.c, kh, kw]` (OIHW), `bias` is `[out.c]`, and
/// `residual` (Inception-ResNet's shortcut, with the block scale already folded
/// into `weights` and `bias`) has the output's shape.
pub fn conv2d(
    input: Image,
    weights: &[f32],
    bias: Option<&[f32]>,
    geom: &ConvGeometry,
    residual: Option<Image>,
    act: Activation,
    out: &mut ImageMut,
) {
    let (ci, co) = (input.dims.c, out.dims.c);
    let (kh, kw) = (geom.kh, geom.kw);
    assert_eq!(weights.len(), co * ci * kh * kw, "conv2d: weights are not [out, in, kh, kw]");
    assert_eq!(geom.output_hw(input.dims.h, input.dims.w), Some((out.dims.h, out.dims.w)), "conv2d: output size");
    if let Some(b) = bias {
        assert_eq!(b.len(), co, "conv2d: bias length");
    }
    if let Some(r) = &residual {
        assert_eq!(r.dims, out.dims, "conv2d: residual shape");
    }
    let (di, dout) = (input.dims, out.dims);
    let (ps_in, ps_out) = (input.layout.pixel_stride(), out.layout.pixel_stride());
    for o in 0..co {
        let ob = out.layout.channel_base(dout, o);
        let at = |oy: usize, ox: usize| ob + (oy * dout.w + ox) * ps_out;
        for oy in 0..dout.h {
            for ox in 0..dout.w {
                out.data[at(oy, ox)] = bias.map_or(0.0, |b| b[o]);
            }
        }
        // Accumulate one tap at a time over the whole output plane; taps that fall
        // in the padding are skipped.
        for i in 0..ci {
            let ib = input.layout.channel_base(di, i);
            for ky in 0..kh {
                for kx in 0..kw {
                    let wv = weights[((o * ci + i) * kh + ky) * kw + kx];
                    for oy in 0..dout.h {
                        let Some(iy) = (oy * geom.stride_h + ky).checked_sub(geom.pad.top).filter(|&y| y < di.h) else {
                            continue;
                        };
                        for ox in 0..dout.w {
                            let Some(ix) = (ox * geom.stride_w + kx).checked_sub(geom.pad.left).filter(|&x| x < di.w)
                            else {
                                continue;
                            };
                            out.data[at(oy, ox)] += wv * input.data[ib + (iy * di.w + ix) * ps_in];
                        }
                    }
                }
            }
        }
        for oy in 0..dout.h {
            for ox in 0..dout.w {
                let r = residual.as_ref().map_or(0.0, |r| r.at(o, oy, ox));
                out.data[at(oy, ox)] = act.apply(out.data[at(oy, ox)] + r);
            }
        }
    }
    out.zero_padding_lanes();
}

/// Fully connected layer: `out = act(weights * flatten(input) + bias)`.
///
/// `input` is flattened in `C, H, W` order (PyTorch's `flatten(1)`), `weights` are
/// `[out.c, input.c * h * w]`, and `out` is `out.c x 1 x 1`.
pub fn linear(input: Image, weights: &[f32], bias: Option<&[f32]>, act: Activation, out: &mut ImageMut) {
    let d = input.dims;
    let k = d.volume();
    assert_eq!((out.dims.h, out.dims.w), (1, 1), "linear: output must be c x 1 x 1");
    assert_eq!(weights.len(), out.dims.c * k, "linear: weights are not [out, in]");
    for o in 0..out.dims.c {
        let mut sum = bias.map_or(0.0, |b| b[o]);
        for c in 0..d.c {
            for y in 0..d.h {
                for x in 0..d.w {
                    sum += weights[o * k + (c * d.h + y) * d.w + x] * input.at(c, y, x);
                }
            }
        }
        out.set(o, 0, 0, act.apply(sum));
    }
    out.zero_padding_lanes();
}
