//! The classifier head: `Gemm`, `MatMul`, `Softmax`.

use super::Ctx;
use super::attrs::{attr_float, attr_int, check_attrs, flag, input};
use super::importer::{Binding, Importer};
use super::proto::NodeProto;
use crate::error::Result;
use crate::graph::ValueId;
use crate::weights::Tensor;

impl<'a> Importer<'a> {
    /// The `[N, K]` input of a linear layer and `K`.
    pub(super) fn linear_input(&mut self, cx: &Ctx, name: &str) -> Result<(ValueId, usize)> {
        let x = self.value(cx, name)?;
        if x.rank != 2 {
            return Err(cx.err(format!("input '{name}' must be 2-D [N, K] (insert a Flatten)")));
        }
        Ok((x.id, self.b.dims(x.id).volume()))
    }

    pub(super) fn gemm(&mut self, cx: &Ctx, idx: usize, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["alpha", "beta", "transA", "transB"])?;
        for a in ["alpha", "beta"] {
            let v = attr_float(cx, n, a, 1.0)?;
            if v != 1.0 {
                return Err(cx.err(format!("attribute {a}={v} is not supported (only 1)")));
            }
        }
        if attr_int(cx, n, "transA", 0)? != 0 {
            return Err(cx.err("attribute transA=1 is not supported"));
        }
        let trans_b = flag(cx, n, "transB", 0)?;
        let (x, k) = self.linear_input(cx, input(cx, n, 0)?)?;
        let wname = input(cx, n, 1)?;
        let (shape, w) = self.const_f32(cx, wname)?;
        let (w, out) = match (&shape[..], trans_b) {
            (&[out, kk], true) if kk == k && out > 0 => (w, out),
            (&[kk, out], false) if kk == k && out > 0 => (transpose(&w, k, out), out),
            _ => {
                return Err(cx.err(format!(
                    "weight '{wname}' has shape {shape:?} (transB={}), the input has {k} features",
                    trans_b as u8
                )));
            }
        };
        let bias = match n.input.get(2).filter(|s| !s.is_empty()) {
            Some(c) => {
                let (cshape, v) = self.const_f32(cx, c)?;
                match v.len() {
                    1 => Some(vec![v[0]; out]),
                    l if l == out && cshape.iter().rev().skip(1).all(|&d| d == 1) => Some(v),
                    _ => return Err(cx.err(format!("bias '{c}' has shape {cshape:?}, {out} values are needed"))),
                }
            }
            None => None,
        };
        let name = self.prefix(idx, n, wname);
        let y = self.b.linear(x, &name, out, bias.is_some());
        self.weights.insert(format!("{name}.weight"), Tensor { shape: vec![out, k], data: w });
        if let Some(b) = bias {
            self.weights.insert(format!("{name}.bias"), Tensor { shape: vec![out], data: b });
        }
        self.define(cx, &n.output[0], Binding::Value { id: y, rank: 2, conv: false })
    }

    pub(super) fn matmul(&mut self, cx: &Ctx, idx: usize, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &[])?;
        let (x, k) = self.linear_input(cx, input(cx, n, 0)?)?;
        let wname = input(cx, n, 1)?;
        let (shape, w) = self.const_f32(cx, wname)?;
        let &[kk, out] = &shape[..] else {
            return Err(cx.err(format!("weight '{wname}' has shape {shape:?}; a 2-D [K, out] constant is needed")));
        };
        if kk != k || out == 0 {
            return Err(cx.err(format!("weight '{wname}' has shape {shape:?}, the input has {k} features")));
        }
        let name = self.prefix(idx, n, wname);
        let weight = transpose(&w, k, out);
        self.define(cx, &n.output[0], Binding::MatMul { id: x, weight, out, name })
    }

    pub(super) fn softmax(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["axis"])?;
        let x = self.value(cx, input(cx, n, 0)?)?;
        let axis = attr_int(cx, n, "axis", if self.opset < 13 { 1 } else { -1 })?;
        let axis = if axis < 0 { axis + x.rank as i64 } else { axis };
        let d = self.b.dims(x.id);
        let pixel = (d.h, d.w) == (1, 1);
        // The engine's softmax runs over channels at each pixel. Before opset 13, ONNX's
        // axis 1 on a 4-D tensor means over C*H*W jointly: the same only for 1x1 maps.
        let ok = axis == 1 && (pixel || (x.rank == 4 && self.opset >= 13));
        if !ok {
            return Err(cx.err(format!(
                "softmax over axis {axis} of a rank-{} {d:?} tensor is not supported (only over channels)",
                x.rank
            )));
        }
        let y = self.b.softmax(x.id);
        self.define(cx, &n.output[0], Binding::Value { id: y, rank: x.rank, conv: false })
    }
}

/// `[rows, cols]` -> `[cols, rows]`.
fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}
