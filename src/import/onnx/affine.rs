//! `Mul`, `Add`, `Sub` and `Div` of a computed tensor and a scalar or per-channel
//! constant: an affine step `y = a * x + b` per channel, built as an inference
//! BatchNorm with mean 0 and variance 1 (so the planner folds it into the
//! convolution before it, as any BatchNorm). A scalar `Mul` stays pending first: a
//! residual `Add` reading it takes it as its branch scale instead.

use super::Ctx;
use super::attrs::{check_attrs, input};
use super::importer::{Binding, Importer, Val};
use super::proto::NodeProto;
use crate::error::Result;
use crate::weights::Tensor;

/// The BatchNorm epsilon of an affine step: `1 + EPS == 1` in f32, so the divisor
/// `sqrt(var + eps)` is exactly 1.
const EPS: f32 = f32::MIN_POSITIVE;

impl<'a> Importer<'a> {
    /// The per-channel values of constant `c` broadcast against `x` (`[N, C, H, W]`
    /// or `[N, K]`): a scalar, or one value per channel (`[C, 1, 1]`, `[1, C, 1, 1]`,
    /// `[K]`, ...). A constant that varies over pixels, or adds dimensions, is refused.
    pub(super) fn channel_const(&self, cx: &Ctx, x: Val, c: &str) -> Result<Vec<f32>> {
        let (shape, v) = self.const_f32(cx, c)?;
        let d = self.b.dims(x.id);
        let rank = x.rank as usize;
        // The channel axis: 1 of [N, C, H, W]; of [N, K], 1 when K is channels (1x1 maps).
        let channels = if x.rank == 4 || (d.h, d.w) == (1, 1) { d.c } else { 0 };
        let lead = rank.checked_sub(shape.len());
        let per_channel =
            lead.is_some_and(|lead| shape.iter().enumerate().all(|(i, &s)| s == 1 || (i + lead == 1 && s == channels)));
        if !per_channel {
            return Err(cx.err(format!(
                "the constant '{c}' of shape {shape:?} is not a scalar or per-channel value for the \
                 rank-{rank} {d:?} input (only those are supported)"
            )));
        }
        let c = if x.rank == 4 { d.c } else { d.volume() };
        Ok(if v.len() == 1 { vec![v[0]; c] } else { v })
    }

    /// `scale * x + shift` per channel, as a BatchNorm named after node `idx`.
    pub(super) fn affine(&mut self, cx: &Ctx, idx: usize, x: Val, scale: Vec<f32>, shift: Vec<f32>) -> Result<Val> {
        let c = self.b.dims(x.id).c;
        if scale.len() != c || shift.len() != c {
            return Err(cx.err("an affine step on a flattened map must be the same for every feature"));
        }
        let n = &self.nodes[idx];
        let name = self.prefix(idx, n, "");
        let y = self.b.batch_norm(x.id, &name, EPS);
        for (suffix, data) in
            [("weight", scale), ("bias", shift), ("running_mean", vec![0.0; c]), ("running_var", vec![1.0; c])]
        {
            self.weights.insert(format!("{name}.{suffix}"), Tensor { shape: vec![c], data });
        }
        Ok(Val { id: y, rank: x.rank, conv: x.conv })
    }

    /// `Mul`, `Sub` and `Div` (`Add` is in `merge`).
    pub(super) fn mul(&mut self, cx: &Ctx, idx: usize, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &[])?;
        let op = n.op_type.as_str();
        let (a, b) = (input(cx, n, 0)?, input(cx, n, 1)?);
        let (v, c, const_first) = match (self.is_const(a), self.is_const(b)) {
            (true, true) => return Err(cx.err("both inputs are constants (not folded)")),
            (false, false) if op == "Sub" => return self.residual(cx, n, a, b, -1.0),
            (false, false) => {
                return Err(cx.err(format!(
                    "{op} of two computed tensors is not supported (only by a scalar or per-channel constant)"
                )));
            }
            (false, true) => (a, b, false),
            (true, false) => (b, a, true),
        };
        let x = self.value(cx, v)?;
        let k = self.channel_const(cx, x, c)?;
        if op == "Mul" && x.rank == 4 && self.const_f32(cx, c)?.1.len() == 1 {
            return self.define(cx, &n.output[0], Binding::Scaled { id: x.id, scale: k[0], node: idx });
        }
        let ones = vec![1.0; k.len()];
        let (scale, shift) = match (op, const_first) {
            ("Div", false) => (k.iter().map(|&s| 1.0 / s).collect(), vec![0.0; k.len()]),
            ("Div", true) => return Err(cx.err("division by a computed tensor is not supported")),
            ("Sub", false) => (ones, k.iter().map(|&s| -s).collect()),
            ("Sub", true) => (vec![-1.0; k.len()], k),
            _ => (k, vec![0.0; ones.len()]),
        };
        let y = self.affine(cx, idx, x, scale, shift)?;
        self.define(cx, &n.output[0], Binding::Value { id: y.id, rank: y.rank, conv: y.conv })
    }
}
