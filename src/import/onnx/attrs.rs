//! Reading node attributes and inputs, and the window geometry they describe.

use super::proto::{AttributeProto, NodeProto};
use super::{Ctx, MAX_ATTR};
use crate::error::Result;
use crate::graph::Padding;

pub(super) fn input<'n>(cx: &Ctx, n: &'n NodeProto, i: usize) -> Result<&'n str> {
    match n.input.get(i) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(cx.err(format!("input {i} is missing"))),
    }
}

pub(super) fn check_attrs(cx: &Ctx, n: &NodeProto, allowed: &[&str]) -> Result<()> {
    match n.attribute.iter().find(|a| !allowed.contains(&a.name.as_str())) {
        Some(a) => Err(cx.err(format!("attribute {} is not supported", a.name))),
        None => Ok(()),
    }
}

pub(super) fn attr<'n>(n: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

/// The attribute, if its declared type is `ty` (or undeclared, as in old files).
pub(super) fn typed<'n>(cx: &Ctx, a: &'n AttributeProto, ty: i32) -> Result<&'n AttributeProto> {
    if a.r#type == ty || a.r#type == 0 {
        Ok(a)
    } else {
        Err(cx.err(format!("attribute {} has type {}, expected {ty}", a.name, a.r#type)))
    }
}

pub(super) fn attr_int(cx: &Ctx, n: &NodeProto, name: &str, default: i64) -> Result<i64> {
    attr(n, name).map_or(Ok(default), |a| Ok(typed(cx, a, 2)?.i))
}

pub(super) fn attr_float(cx: &Ctx, n: &NodeProto, name: &str, default: f32) -> Result<f32> {
    attr(n, name).map_or(Ok(default), |a| Ok(typed(cx, a, 1)?.f))
}

pub(super) fn attr_ints(cx: &Ctx, n: &NodeProto, name: &str) -> Result<Option<Vec<i64>>> {
    attr(n, name).map_or(Ok(None), |a| Ok(Some(typed(cx, a, 7)?.ints.clone())))
}

pub(super) fn attr_string(cx: &Ctx, n: &NodeProto, name: &str, default: &str) -> Result<String> {
    match attr(n, name) {
        None => Ok(default.to_string()),
        Some(a) => String::from_utf8(typed(cx, a, 3)?.s.clone())
            .map_err(|_| cx.err(format!("attribute {name} is not valid UTF-8"))),
    }
}

/// A 0/1 attribute.
pub(super) fn flag(cx: &Ctx, n: &NodeProto, name: &str, default: i64) -> Result<bool> {
    match attr_int(cx, n, name, default)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(cx.err(format!("attribute {name}={v} must be 0 or 1"))),
    }
}

/// An attribute list that must be all ones when present (dilations).
pub(super) fn ones(cx: &Ctx, n: &NodeProto, name: &str) -> Result<()> {
    match attr_ints(cx, n, name)? {
        Some(v) if v.iter().any(|&d| d != 1) => {
            Err(cx.err(format!("attribute {name}={v:?} is not supported (only 1)")))
        }
        _ => Ok(()),
    }
}

pub(super) fn to_size(cx: &Ctx, what: &str, v: i64) -> Result<usize> {
    if (0..=MAX_ATTR).contains(&v) {
        Ok(v as usize)
    } else {
        Err(cx.err(format!("attribute {what} has the value {v}, out of range")))
    }
}

pub(super) fn strides(cx: &Ctx, n: &NodeProto) -> Result<(usize, usize)> {
    match attr_ints(cx, n, "strides")?.as_deref() {
        None => Ok((1, 1)),
        Some(&[h, w]) if h > 0 && w > 0 => Ok((to_size(cx, "strides", h)?, to_size(cx, "strides", w)?)),
        Some(s) => Err(cx.err(format!("attribute strides={s:?} must be 2 positive values"))),
    }
}

/// The window's padding from `pads` or `auto_pad`, for an `h x w` input.
pub(super) fn window_pads(
    cx: &Ctx,
    n: &NodeProto,
    (kh, kw): (usize, usize),
    (sh, sw): (usize, usize),
    (h, w): (usize, usize),
) -> Result<Padding> {
    let auto = attr_string(cx, n, "auto_pad", "NOTSET")?;
    // TF-style SAME: the output is ceil(in / stride); the odd pixel goes after
    // (SAME_UPPER) or before (SAME_LOWER).
    let same = |size: usize, k: usize, s: usize, upper: bool| {
        let out = size.div_ceil(s);
        let total = ((out.max(1) - 1) * s + k).saturating_sub(size);
        let (small, big) = (total / 2, total - total / 2);
        if upper { (small, big) } else { (big, small) }
    };
    match auto.as_str() {
        "NOTSET" | "" => match attr_ints(cx, n, "pads")?.as_deref() {
            None => Ok(Padding::default()),
            Some(&[t, l, b, r]) => Ok(Padding {
                top: to_size(cx, "pads", t)?,
                left: to_size(cx, "pads", l)?,
                bottom: to_size(cx, "pads", b)?,
                right: to_size(cx, "pads", r)?,
            }),
            Some(p) => Err(cx.err(format!("attribute pads={p:?} must give 4 values"))),
        },
        "VALID" => Ok(Padding::default()),
        "SAME_UPPER" | "SAME_LOWER" => {
            let upper = auto == "SAME_UPPER";
            let ((top, bottom), (left, right)) = (same(h, kh, sh, upper), same(w, kw, sw, upper));
            Ok(Padding { top, left, bottom, right })
        }
        other => Err(cx.err(format!("attribute auto_pad='{other}' is not supported"))),
    }
}
