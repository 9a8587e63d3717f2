//! `Conv`, `BatchNormalization` and `Pad` (folded into the next window).

use super::attrs::{attr_float, attr_int, attr_ints, attr_string, check_attrs, input, ones, strides, window_pads};
use super::importer::{Binding, Importer, Val};
use super::proto::NodeProto;
use super::{Ctx, MAX_ATTR};
use crate::error::Result;
use crate::graph::{ConvGeometry, ConvSpec, Padding};
use crate::weights::Tensor;

impl<'a> Importer<'a> {
    pub(super) fn conv(&mut self, cx: &Ctx, idx: usize, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])?;
        let group = attr_int(cx, n, "group", 1)?;
        if group != 1 {
            return Err(cx.err(format!(
                "attribute group={group} is not supported (grouped / depthwise convolution; only group=1)"
            )));
        }
        ones(cx, n, "dilations")?;
        let xname = input(cx, n, 0)?;
        let (x, extra) = match self.binding(cx, xname)? {
            Binding::Padded { id, pad, .. } => (Val { id, rank: 4, conv: false }, pad),
            _ => (self.map(cx, xname)?, Padding::default()),
        };
        let wname = input(cx, n, 1)?;
        let (shape, w) = self.const_f32(cx, wname)?;
        let &[o, ci, kh, kw] = &shape[..] else {
            return Err(cx.err(format!("weight '{wname}' has shape {shape:?}; only 2-D convolutions are supported")));
        };
        if let Some(k) = attr_ints(cx, n, "kernel_shape")?
            && k != [kh as i64, kw as i64]
        {
            return Err(cx.err(format!("attribute kernel_shape={k:?} does not match the weight's {kh}x{kw}")));
        }
        let d = self.b.dims(x.id);
        if ci != d.c {
            return Err(cx.err(format!("weight '{wname}' takes {ci} input channels, the input has {}", d.c)));
        }
        let (sh, sw) = strides(cx, n)?;
        let padded = (d.h + extra.top + extra.bottom, d.w + extra.left + extra.right);
        let p = window_pads(cx, n, (kh, kw), (sh, sw), padded)?;
        let pad = Padding {
            top: p.top + extra.top,
            left: p.left + extra.left,
            bottom: p.bottom + extra.bottom,
            right: p.right + extra.right,
        };
        let geom = ConvGeometry { kh, kw, stride_h: sh, stride_w: sw, pad };
        if o == 0 || geom.output_hw(d.h, d.w).is_none() {
            return Err(cx.err(format!(
                "a {kh}x{kw} window with {o} outputs, stride {sh}x{sw} and padding {pad:?} does not fit the \
                 {}x{} input",
                d.h, d.w
            )));
        }
        let bias = match n.input.get(2).filter(|s| !s.is_empty()) {
            Some(bname) => Some(self.vector(cx, bname, o)?),
            None => None,
        };
        let name = self.prefix(idx, n, wname);
        let mut spec = ConvSpec::rect(o, kh, kw).padding(pad);
        (spec.geom.stride_h, spec.geom.stride_w) = (sh, sw);
        if bias.is_some() {
            spec = spec.bias();
        }
        let y = self.b.conv(x.id, &name, spec);
        self.weights.insert(format!("{name}.weight"), Tensor { shape, data: w });
        if let Some(b) = bias {
            self.weights.insert(format!("{name}.bias"), Tensor { shape: vec![o], data: b });
        }
        self.define(cx, &n.output[0], Binding::Value { id: y, rank: 4, conv: true })
    }

    /// A constant float vector of `len` values (any shape with that many elements).
    pub(super) fn vector(&self, cx: &Ctx, name: &str, len: usize) -> Result<Vec<f32>> {
        let (shape, v) = self.const_f32(cx, name)?;
        if v.len() != len {
            return Err(cx.err(format!("'{name}' has shape {shape:?}, {len} values are needed")));
        }
        Ok(v)
    }

    pub(super) fn batch_norm(&mut self, cx: &Ctx, idx: usize, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["epsilon", "momentum", "training_mode", "spatial", "is_test"])?;
        if attr_int(cx, n, "training_mode", 0)? != 0 {
            return Err(cx.err("attribute training_mode=1 is not supported (inference only)"));
        }
        if attr_int(cx, n, "spatial", 1)? != 1 {
            return Err(cx.err("attribute spatial=0 is not supported (per-channel statistics only)"));
        }
        self.extra_outputs_unused(cx, n, 1)?;
        let x = self.value(cx, input(cx, n, 0)?)?;
        let d = self.b.dims(x.id);
        if x.rank == 2 && (d.h, d.w) != (1, 1) {
            return Err(cx.err("BatchNormalization of a flattened feature map is not supported"));
        }
        let eps = attr_float(cx, n, "epsilon", 1e-5)?;
        let mut params = Vec::with_capacity(4);
        for i in 1..5 {
            params.push(self.vector(cx, input(cx, n, i)?, d.c)?);
        }
        if params[3].iter().any(|&v| v < 0.0) {
            return Err(cx.err("the running variance has a negative value"));
        }
        let name = self.prefix(idx, n, input(cx, n, 1)?);
        let y = self.b.batch_norm(x.id, &name, eps);
        for (suffix, data) in ["weight", "bias", "running_mean", "running_var"].into_iter().zip(params) {
            self.weights.insert(format!("{name}.{suffix}"), Tensor { shape: vec![d.c], data });
        }
        self.define(cx, &n.output[0], Binding::Value { id: y, rank: x.rank, conv: x.conv })
    }

    pub(super) fn pad(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["mode", "pads", "value"])?;
        let mode = attr_string(cx, n, "mode", "constant")?;
        if mode != "constant" {
            return Err(cx.err(format!("attribute mode='{mode}' is not supported (only constant zeros)")));
        }
        let (pads, value) = if self.opset < 11 {
            let p = attr_ints(cx, n, "pads")?.ok_or_else(|| cx.err("attribute pads is missing"))?;
            (p, attr_float(cx, n, "value", 0.0)?)
        } else {
            let p = self.const_i64(cx, input(cx, n, 1)?)?;
            let v = match n.input.get(2).filter(|s| !s.is_empty()) {
                Some(c) => match self.const_f32(cx, c)?.1[..] {
                    [v] => v,
                    _ => return Err(cx.err(format!("constant_value '{c}' must be a scalar"))),
                },
                None => 0.0,
            };
            (p, v)
        };
        if value != 0.0 {
            return Err(cx.err(format!("constant value {value} is not supported (only zero padding)")));
        }
        // Begin/end pads per axis, for the 4 axes N, C, H, W.
        let mut begin = [0i64; 4];
        let mut end = [0i64; 4];
        let axes = match n.input.get(3).filter(|s| !s.is_empty()) {
            Some(a) => self.const_i64(cx, a)?,
            None => (0..4).collect(),
        };
        if pads.len() != 2 * axes.len() {
            return Err(cx.err(format!("pads {pads:?} do not match {} axes", axes.len())));
        }
        for (i, &a) in axes.iter().enumerate() {
            let a = if a < 0 { a + 4 } else { a };
            if !(0..4).contains(&a) {
                return Err(cx.err(format!("axis {a} is out of range for a 4-D tensor")));
            }
            (begin[a as usize], end[a as usize]) = (pads[i], pads[i + axes.len()]);
        }
        if begin[..2].iter().chain(&end[..2]).any(|&p| p != 0) {
            return Err(cx.err(format!("pads {pads:?} are not supported: only H and W may be padded")));
        }
        if begin.iter().chain(&end).any(|&p| !(0..=MAX_ATTR).contains(&p)) {
            return Err(cx.err(format!("pads {pads:?} are not supported: negative pads crop")));
        }
        let xname = input(cx, n, 0)?;
        let (id, base) = match self.binding(cx, xname)? {
            Binding::Padded { id, pad, .. } => (id, pad),
            _ => (self.map(cx, xname)?.id, Padding::default()),
        };
        let pad = Padding {
            top: base.top + begin[2] as usize,
            left: base.left + begin[3] as usize,
            bottom: base.bottom + end[2] as usize,
            right: base.right + end[3] as usize,
        };
        let by = cx.0.clone();
        self.define(cx, &n.output[0], Binding::Padded { id, pad, by })
    }
}
