use crate::geometry::PoolGeometry;
use crate::layout::{Image, ImageMut};

/// The input rows (or columns) a window starting at output index `o` covers:
/// `(start, end)` clamped to the image, and the size of the window clamped to the
/// padded image (PyTorch's divisor when padding counts).
fn window(o: usize, k: usize, stride: usize, before: usize, after: usize, size: usize) -> (usize, usize, usize) {
    let start = (o * stride) as isize - before as isize;
    let end = (start + k as isize).min((size + after) as isize);
    let padded = (end - start) as usize;
    (start.max(0) as usize, end.min(size as isize) as usize, padded)
}

fn check(input: &Image, geom: &PoolGeometry, out: &ImageMut) {
    assert_eq!(input.dims.c, out.dims.c, "pool: channel count");
    assert_eq!(geom.output_hw(input.dims.h, input.dims.w), Some((out.dims.h, out.dims.w)), "pool: output size");
}

/// Max pooling; padding never wins.
pub fn max_pool(input: Image, geom: &PoolGeometry, out: &mut ImageMut) {
    check(&input, geom, out);
    let (g, d) = (&geom.window, input.dims);
    for c in 0..d.c {
        for oy in 0..out.dims.h {
            let (y0, y1, _) = window(oy, g.kh, g.stride_h, g.pad.top, g.pad.bottom, d.h);
            for ox in 0..out.dims.w {
                let (x0, x1, _) = window(ox, g.kw, g.stride_w, g.pad.left, g.pad.right, d.w);
                let mut m = f32::NEG_INFINITY;
                for y in y0..y1 {
                    for x in x0..x1 {
                        m = m.max(input.at(c, y, x));
                    }
                }
                out.set(c, oy, ox, m);
            }
        }
    }
    out.zero_padding_lanes();
}

/// Average pooling. `count_include_pad` divides by the window clipped to the padded
/// image (torchvision); otherwise by the number of real pixels (TF, timm's v4).
pub fn avg_pool(input: Image, geom: &PoolGeometry, count_include_pad: bool, out: &mut ImageMut) {
    avg_pool_with(input, geom, count_include_pad, None, out);
}

/// Average pooling dividing by the window clipped to the padded image, each of its
/// positions in the padding taking `pad[c]` in channel `c` (an average pool moved
/// after a 1x1 projection pads with the projection's output at zero input).
pub fn avg_pool_padded(input: Image, geom: &PoolGeometry, pad: &[f32], out: &mut ImageMut) {
    assert_eq!(pad.len(), input.dims.c, "pool: one padding value per channel");
    avg_pool_with(input, geom, true, Some(pad), out);
}

fn avg_pool_with(input: Image, geom: &PoolGeometry, count_include_pad: bool, pad: Option<&[f32]>, out: &mut ImageMut) {
    check(&input, geom, out);
    let (g, d) = (&geom.window, input.dims);
    for c in 0..d.c {
        for oy in 0..out.dims.h {
            let (y0, y1, ph) = window(oy, g.kh, g.stride_h, g.pad.top, g.pad.bottom, d.h);
            for ox in 0..out.dims.w {
                let (x0, x1, pw) = window(ox, g.kw, g.stride_w, g.pad.left, g.pad.right, d.w);
                let mut sum = 0.0;
                for y in y0..y1 {
                    for x in x0..x1 {
                        sum += input.at(c, y, x);
                    }
                }
                let inside = (y1 - y0) * (x1 - x0);
                if let Some(pad) = pad.filter(|_| ph * pw > inside) {
                    sum += (ph * pw - inside) as f32 * pad[c];
                }
                let count = if count_include_pad { ph * pw } else { inside };
                out.set(c, oy, ox, sum / count as f32);
            }
        }
    }
    out.zero_padding_lanes();
}

/// Global average pooling to `c x 1 x 1`.
pub fn global_avg_pool(input: Image, out: &mut ImageMut) {
    let d = input.dims;
    assert_eq!((out.dims.c, out.dims.h, out.dims.w), (d.c, 1, 1), "global_avg_pool: output shape");
    for c in 0..d.c {
        let mut sum = 0.0;
        for y in 0..d.h {
            for x in 0..d.w {
                sum += input.at(c, y, x);
            }
        }
        out.set(c, 0, 0, sum / (d.h * d.w) as f32);
    }
    out.zero_padding_lanes();
}
