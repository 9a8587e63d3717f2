//! `MaxPool` and `AveragePool`.

use super::Ctx;
use super::attrs::{attr_ints, check_attrs, flag, input, ones, strides, to_size, window_pads};
use super::fold::norm_axis;
use super::importer::{Binding, Importer, Val};
use super::proto::NodeProto;
use crate::error::Result;
use crate::graph::{ConvGeometry, Padding, PoolGeometry};

impl<'a> Importer<'a> {
    pub(super) fn pool(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        let max = n.op_type == "MaxPool";
        if max {
            check_attrs(
                cx,
                n,
                &["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"],
            )?;
            self.extra_outputs_unused(cx, n, 1)?;
        } else {
            check_attrs(
                cx,
                n,
                &["auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"],
            )?;
        }
        ones(cx, n, "dilations")?;
        let k = attr_ints(cx, n, "kernel_shape")?.unwrap_or_default();
        let &[kh, kw] = &k[..] else {
            return Err(cx.err(format!("attribute kernel_shape={k:?} must give 2 window sizes")));
        };
        let (kh, kw) = (to_size(cx, "kernel_shape", kh)?, to_size(cx, "kernel_shape", kw)?);
        let ceil_mode = flag(cx, n, "ceil_mode", 0)?;
        let count_include_pad = !max && flag(cx, n, "count_include_pad", 0)?;
        let xname = input(cx, n, 0)?;
        let (x, extra) = match self.binding(cx, xname)? {
            Binding::Padded { id, pad, by } if !max => {
                let pool_pads = attr_ints(cx, n, "pads")?.is_some_and(|p| p.iter().any(|&v| v != 0));
                if ceil_mode || (pool_pads && !count_include_pad) {
                    return Err(cx.err(format!(
                        "reads '{xname}' from {by}: a Pad is only folded into an AveragePool with \
                         count_include_pad=1 (or no pads of its own) and ceil_mode=0"
                    )));
                }
                (Val { id, rank: 4, conv: false }, pad)
            }
            _ => (self.map(cx, xname)?, Padding::default()),
        };
        let d = self.b.dims(x.id);
        let (sh, sw) = strides(cx, n)?;
        let padded = (d.h + extra.top + extra.bottom, d.w + extra.left + extra.right);
        let p = window_pads(cx, n, (kh, kw), (sh, sw), padded)?;
        let pad = Padding {
            top: p.top + extra.top,
            left: p.left + extra.left,
            bottom: p.bottom + extra.bottom,
            right: p.right + extra.right,
        };
        if pad.top.max(pad.bottom) >= kh || pad.left.max(pad.right) >= kw {
            return Err(cx.err(format!("padding {pad:?} must be smaller than the {kh}x{kw} window")));
        }
        let geom = PoolGeometry { window: ConvGeometry { kh, kw, stride_h: sh, stride_w: sw, pad }, ceil_mode };
        if geom.output_hw(d.h, d.w).is_none() {
            return Err(cx.err(format!("a {kh}x{kw} window does not fit the {}x{} input", d.h, d.w)));
        }
        // Zeros added by a Pad node are real pixels to the pool: they count.
        let counted = count_include_pad || extra != Padding::default();
        let y = if max { self.b.max_pool(x.id, geom) } else { self.b.avg_pool(x.id, geom, counted) };
        self.define(cx, &n.output[0], Binding::Value { id: y, rank: 4, conv: false })
    }

    /// `ReduceMean` over H and W: a global average pool (`keepdims` 1 keeps
    /// `[N, C, 1, 1]`, 0 gives `[N, C]`). Axes are an attribute before opset 18, an
    /// input from 18.
    pub(super) fn reduce_mean(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["axes", "keepdims", "noop_with_empty_axes"])?;
        let keep = flag(cx, n, "keepdims", 1)?;
        let axes = match n.input.get(1).filter(|s| !s.is_empty()) {
            Some(a) if self.opset >= 18 => Some(self.const_i64(cx, a)?),
            _ => attr_ints(cx, n, "axes")?,
        };
        let x = self.map(cx, input(cx, n, 0)?)?;
        let mut axes = match axes {
            Some(a) if !a.is_empty() => a.iter().map(|&a| norm_axis(cx, a, 4)).collect::<Result<Vec<_>>>()?,
            _ => return Err(cx.err("a ReduceMean over all axes is not supported (only over H and W)")),
        };
        axes.sort_unstable();
        if axes != [2, 3] {
            return Err(cx.err(format!("a ReduceMean over axes {axes:?} is not supported (only over H and W: [2, 3])")));
        }
        let y = self.b.global_avg_pool(x.id);
        self.define(cx, &n.output[0], Binding::Value { id: y, rank: if keep { 4 } else { 2 }, conv: false })
    }
}
