//! Shape-only operators on computed tensors: `Reshape`, `Flatten`, `Squeeze` and
//! `Unsqueeze` change no data, only how ONNX sees it, so they are metadata, never a
//! step. The engine models a value as `[N, C, H, W]` (ONNX rank 4) or `[N, C*H*W]`
//! (rank 2); a reshape to anything else (rank 3, or reordering a feature map into
//! new channels) is an error.

use super::Ctx;
use super::attrs::{attr_int, attr_ints, check_attrs, input};
use super::fold::{SYMBOLIC_BATCH, norm_axis, reshape_dims, squeeze_dims, unsqueeze_dims};
use super::importer::{Binding, Importer, Val};
use super::proto::NodeProto;
use crate::error::Result;

impl<'a> Importer<'a> {
    /// The per-image ONNX shape of a value: `[C, H, W]` or `[C*H*W]`.
    fn image_shape(&self, x: Val) -> Vec<usize> {
        let d = self.b.dims(x.id);
        if x.rank == 4 { vec![d.c, d.h, d.w] } else { vec![d.volume()] }
    }

    /// Binds `out` to `x` seen with the per-image shape `to`, if the engine can.
    fn rebind(&mut self, cx: &Ctx, out: &str, x: Val, to: &[usize]) -> Result<()> {
        let d = self.b.dims(x.id);
        let rank = match to {
            [k] if *k == d.volume() => 2,
            [c, h, w] if (*c, *h, *w) == (d.c, d.h, d.w) => 4,
            // A feature vector ([N, C] with C channels of 1x1) seen as [N, C, 1, 1].
            [c, 1, 1] if (*c, d.h, d.w) == (d.c, 1, 1) || (x.rank == 2 && *c == d.volume()) => {
                if (d.h, d.w) != (1, 1) {
                    return Err(
                        cx.err(format!("a reshape of the flattened {d:?} map to [N, {c}, 1, 1] is not supported"))
                    );
                }
                4
            }
            _ => {
                return Err(cx.err(format!(
                    "a reshape of the {} {d:?} value to [N, {}] is not supported: the engine models \
                     [N, C, H, W] maps and [N, C*H*W] vectors, and reshapes only between them",
                    if x.rank == 4 { "[N, C, H, W]" } else { "[N, C*H*W]" },
                    to.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
                )));
            }
        };
        self.define(cx, out, Binding::Value { id: x.id, rank, conv: x.conv && rank == x.rank })
    }

    pub(super) fn reshape(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["allowzero", "shape"])?;
        let allowzero = attr_int(cx, n, "allowzero", 0)? != 0;
        let x = self.value(cx, input(cx, n, 0)?)?;
        let shape = match attr_ints(cx, n, "shape")? {
            Some(s) if self.opset < 5 => s,
            _ => self.const_i64(cx, input(cx, n, 1)?)?,
        };
        let Some((&nb, rest)) = shape.split_first() else {
            return Err(cx.err("a reshape to a scalar is not supported"));
        };
        // The batch stays first: -1 (inferred from the rest), 0 (copied), the input's
        // batch size or 1 (what a batch-1 export writes).
        let batch_ok = nb == -1 || nb == 1 || nb == SYMBOLIC_BATCH || (nb == 0 && !allowzero) || Some(nb) == self.batch;
        if !batch_ok || rest.contains(&SYMBOLIC_BATCH) {
            return Err(cx.err(format!("shape {shape:?} does not keep the batch as the first dimension")));
        }
        let from = self.image_shape(x);
        let to = if nb == -1 {
            let to = reshape_dims(cx, &from, rest, allowzero)?;
            (to.iter().product::<usize>() == from.iter().product::<usize>())
                .then_some(to)
                .ok_or_else(|| cx.err(format!("shape {shape:?} does not keep the batch as the first dimension")))?
        } else {
            reshape_dims(cx, &from, rest, allowzero)?
        };
        self.rebind(cx, &n.output[0], x, &to)
    }

    pub(super) fn flatten(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["axis"])?;
        let axis = attr_int(cx, n, "axis", 1)?;
        let x = self.value(cx, input(cx, n, 0)?)?;
        if !(axis == 1 || axis == 1 - x.rank as i64) {
            return Err(cx.err(format!("attribute axis={axis} is not supported (only 1: [N, C*H*W])")));
        }
        let k = self.b.dims(x.id).volume();
        self.rebind(cx, &n.output[0], x, &[k])
    }

    /// `Squeeze` and `Unsqueeze` (axes an attribute before opset 13, an input from 13).
    pub(super) fn squeeze(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["axes"])?;
        let x = self.value(cx, input(cx, n, 0)?)?;
        let axes = match n.input.get(1).filter(|s| !s.is_empty()) {
            Some(a) if self.opset >= 13 => Some(self.const_i64(cx, a)?),
            _ => attr_ints(cx, n, "axes")?,
        };
        let from = self.image_shape(x);
        let rank = 1 + from.len();
        let squeeze = n.op_type == "Squeeze";
        let out_rank = if squeeze { rank } else { rank + axes.as_ref().map_or(0, Vec::len) };
        // Axes of the per-image shape: the batch axis must stay.
        let image_axes = match &axes {
            Some(axes) => {
                let mut v = Vec::with_capacity(axes.len());
                for &a in axes {
                    match norm_axis(cx, a, out_rank)? {
                        0 => return Err(cx.err(format!("axes {axes:?} include the batch axis"))),
                        a => v.push(a as i64 - 1),
                    }
                }
                Some(v)
            }
            // Without axes every 1 goes, and a batch of 1 with them.
            None if squeeze && self.batch.is_some_and(|b| b > 1) => None,
            None if squeeze => return Err(cx.err("a Squeeze without axes would also squeeze a batch of 1")),
            None => return Err(cx.err("axes are missing")),
        };
        let to = if squeeze {
            squeeze_dims(cx, &from, image_axes.as_deref())?
        } else {
            unsqueeze_dims(cx, &from, image_axes.as_deref().unwrap_or_default())?
        };
        self.rebind(cx, &n.output[0], x, &to)
    }
}
