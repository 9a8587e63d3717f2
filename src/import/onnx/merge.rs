//! Operators joining branches: `Concat`, the residual `Add` (its scaled branch is a
//! `Mul`, see `affine`) and `Sum`.

use super::Ctx;
use super::attrs::{attr, check_attrs, input, typed};
use super::importer::{Binding, Importer};
use super::proto::NodeProto;
use crate::error::Result;
use crate::graph::{Activation, ValueId};
use crate::weights::Tensor;

impl<'a> Importer<'a> {
    pub(super) fn concat(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["axis"])?;
        let Some(axis) = attr(n, "axis") else {
            return Err(cx.err("attribute axis is missing"));
        };
        let axis = typed(cx, axis, 2)?.i;
        if n.input.is_empty() || n.input.iter().any(|i| i.is_empty()) {
            return Err(cx.err("needs at least one input"));
        }
        let mut xs = Vec::with_capacity(n.input.len());
        for name in &n.input {
            xs.push(self.value(cx, name)?);
        }
        let rank = xs[0].rank;
        let dims0 = self.b.dims(xs[0].id);
        for (x, name) in xs.iter().zip(&n.input) {
            let d = self.b.dims(x.id);
            if x.rank != rank || (d.h, d.w) != (dims0.h, dims0.w) || (rank == 2 && (d.h, d.w) != (1, 1)) {
                return Err(cx.err(format!(
                    "input '{name}' ({d:?}, rank {}) does not concatenate along channels with the first \
                     ({dims0:?}, rank {rank})",
                    x.rank
                )));
            }
        }
        let norm = if axis < 0 { axis + rank as i64 } else { axis };
        if norm != 1 {
            return Err(cx.err(format!("attribute axis={axis} is not supported (only the channel axis, 1)")));
        }
        let ids: Vec<ValueId> = xs.iter().map(|x| x.id).collect();
        let y = self.b.concat(&ids);
        self.define(cx, &n.output[0], Binding::Value { id: y, rank, conv: false })
    }

    pub(super) fn add(&mut self, cx: &Ctx, idx: usize, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &[])?;
        let (a, b) = (input(cx, n, 0)?, input(cx, n, 1)?);
        match (self.is_const(a), self.is_const(b)) {
            (true, true) => Err(cx.err("both inputs are constants (not folded)")),
            (false, true) | (true, false) => {
                let (v, c) = if self.is_const(b) { (a, b) } else { (b, a) };
                match self.binding(cx, v)? {
                    Binding::MatMul { id, weight, out, name } if self.single_consumer(v) == Some(idx) => {
                        let bias = self.vector(cx, c, out)?;
                        let y = self.b.linear(id, &name, out, true);
                        let k = weight.len() / out;
                        self.weights.insert(format!("{name}.weight"), Tensor { shape: vec![out, k], data: weight });
                        self.weights.insert(format!("{name}.bias"), Tensor { shape: vec![out], data: bias });
                        self.define(cx, &n.output[0], Binding::Value { id: y, rank: 2, conv: false })
                    }
                    _ => {
                        let x = self.value(cx, v)?;
                        let shift = self.channel_const(cx, x, c)?;
                        let y = self.affine(cx, idx, x, vec![1.0; shift.len()], shift)?;
                        self.define(cx, &n.output[0], Binding::Value { id: y.id, rank: y.rank, conv: y.conv })
                    }
                }
            }
            (false, false) => self.residual(cx, n, a, b, 1.0),
        }
    }

    /// `act(x + scale * y)` of two computed tensors of one shape.
    pub(super) fn residual(&mut self, cx: &Ctx, n: &NodeProto, a: &str, b: &str, scale: f32) -> Result<()> {
        const SUPPORTED: &str = "a sum of two tensors is supported as x + y or x + c * y with c a scalar constant";
        let (x, y, scale) = match (self.binding(cx, a)?, self.binding(cx, b)?) {
            (Binding::Scaled { .. }, Binding::Scaled { .. }) => {
                return Err(cx.err(format!("both inputs are scaled; {SUPPORTED}")));
            }
            (Binding::Scaled { id, scale: s, .. }, _) if scale == 1.0 => (self.map(cx, b)?.id, id, s),
            (_, Binding::Scaled { id, scale: s, .. }) => (self.map(cx, a)?.id, id, s * scale),
            _ => {
                let (va, vb) = (self.map(cx, a)?, self.map(cx, b)?);
                // x + y = y + x exactly: put the convolution second, where the
                // planner fuses the sum into its store.
                if va.conv && !vb.conv && scale == 1.0 { (vb.id, va.id, 1.0) } else { (va.id, vb.id, scale) }
            }
        };
        let (dx, dy) = (self.b.dims(x), self.b.dims(y));
        if dx != dy {
            return Err(cx.err(format!("the inputs have shapes {dx:?} and {dy:?}; broadcasting is not supported")));
        }
        // A Relu that is the sum's only reader becomes the residual's activation.
        let act = match self.single_consumer(&n.output[0]) {
            Some(r) if self.nodes[r].op_type == "Relu" && self.nodes[r].domain.is_empty() => {
                self.fused_relu.insert(r);
                Activation::Relu
            }
            _ => Activation::None,
        };
        let out = self.b.residual_add(x, y, scale, act);
        self.define(cx, &n.output[0], Binding::Value { id: out, rank: 4, conv: false })
    }

    /// `Sum` of one or more tensors of one shape: a chain of residual adds.
    pub(super) fn sum(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &[])?;
        if n.input.is_empty() || n.input.iter().any(|i| i.is_empty() || self.is_const(i)) {
            return Err(cx.err("only a Sum of one or more computed tensors is supported (no constants)"));
        }
        let mut acc = self.map(cx, &n.input[0])?.id;
        for name in &n.input[1..] {
            let y = self.map(cx, name)?.id;
            let (dx, dy) = (self.b.dims(acc), self.b.dims(y));
            if dx != dy {
                return Err(cx.err(format!("the inputs have shapes {dx:?} and {dy:?}; broadcasting is not supported")));
            }
            acc = self.b.residual_add(acc, y, 1.0, Activation::None);
        }
        self.define(cx, &n.output[0], Binding::Value { id: acc, rank: 4, conv: false })
    }
}
