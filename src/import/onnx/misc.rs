//! Aliases and constants: `Dropout`, `Constant`.

use super::attrs::{attr_float, check_attrs, input, typed};
use super::importer::{Binding, Importer};
use super::proto::{NodeProto, TensorProto};
use super::tensor::decode_bool;
use super::{Ctx, FLOAT, INT64};
use crate::error::Result;
use crate::graph::Pointwise;

impl<'a> Importer<'a> {
    pub(super) fn dropout(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["ratio", "seed", "is_test"])?;
        self.extra_outputs_unused(cx, n, 1)?;
        if let Some(t) = n.input.get(2).filter(|s| !s.is_empty()) {
            let tp = self.const_proto(cx, t)?;
            if decode_bool(cx, t, tp)?.iter().any(|&b| b) {
                return Err(cx.err("training_mode=true is not supported (inference only)"));
            }
        }
        let b = self.binding(cx, input(cx, n, 0)?)?;
        self.define(cx, &n.output[0], b)
    }

    pub(super) fn constant(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        let t = constant_tensor(cx, n)?;
        self.define_const(cx, &n.output[0], t)
    }

    /// `Clip` (min/max attributes before opset 11, inputs from 11): `Clip(0, +inf)` is
    /// a `relu` (which the planner fuses), any other a `clip` step.
    pub(super) fn clip(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        check_attrs(cx, n, &["min", "max"])?;
        let bound = |i: usize, attr: &str, default: f32| -> Result<f32> {
            if self.opset < 11 {
                return attr_float(cx, n, attr, default);
            }
            match n.input.get(i).filter(|s| !s.is_empty()) {
                None => Ok(default),
                Some(c) => match self.const_f32(cx, c)?.1[..] {
                    [v] => Ok(v),
                    _ => Err(cx.err(format!("{attr} '{c}' must be a scalar"))),
                },
            }
        };
        let (lo, hi) = (bound(1, "min", f32::MIN)?, bound(2, "max", f32::MAX)?);
        let x = self.value(cx, input(cx, n, 0)?)?;
        let y = if lo == 0.0 && hi == f32::MAX {
            self.b.relu(x.id)
        } else {
            self.b.pointwise(x.id, Pointwise::Clip { min: lo, max: hi })
        };
        self.define(cx, &n.output[0], Binding::Value { id: y, rank: x.rank, conv: false })
    }

    /// `Sigmoid` and `LeakyRelu`.
    pub(super) fn activation(&mut self, cx: &Ctx, n: &NodeProto) -> Result<()> {
        let f = if n.op_type == "Sigmoid" {
            check_attrs(cx, n, &[])?;
            Pointwise::Sigmoid
        } else {
            check_attrs(cx, n, &["alpha"])?;
            Pointwise::LeakyRelu { alpha: attr_float(cx, n, "alpha", 0.01)? }
        };
        let x = self.value(cx, input(cx, n, 0)?)?;
        let y = self.b.pointwise(x.id, f);
        self.define(cx, &n.output[0], Binding::Value { id: y, rank: x.rank, conv: false })
    }
}

/// The tensor of a `Constant` node.
pub(super) fn constant_tensor(cx: &Ctx, n: &NodeProto) -> Result<TensorProto> {
    let [a] = &n.attribute[..] else {
        return Err(cx.err("needs exactly one value attribute"));
    };
    let t = match a.name.as_str() {
        "value" => typed(cx, a, 4)?.t.clone().ok_or_else(|| cx.err("attribute value holds no tensor"))?,
        "value_float" => TensorProto { data_type: FLOAT, float_data: vec![typed(cx, a, 1)?.f], ..Default::default() },
        "value_floats" => TensorProto {
            dims: vec![a.floats.len() as i64],
            data_type: FLOAT,
            float_data: typed(cx, a, 6)?.floats.clone(),
            ..Default::default()
        },
        "value_int" => TensorProto { data_type: INT64, int64_data: vec![typed(cx, a, 2)?.i], ..Default::default() },
        "value_ints" => TensorProto {
            dims: vec![a.ints.len() as i64],
            data_type: INT64,
            int64_data: typed(cx, a, 7)?.ints.clone(),
            ..Default::default()
        },
        other => return Err(cx.err(format!("attribute {other} is not supported"))),
    };
    Ok(t)
}
