//! Constant folding: a node whose inputs are all constants is evaluated at import on
//! plain tensors (a shape and a vector) and its outputs become constants, so shape
//! arithmetic (`Shape -> Gather -> Concat -> Reshape`) and weight preprocessing
//! (`Unsqueeze`, `Transpose`, `Mul` of initializers) never reach the engine.
//!
//! Semantics are ONNX's (numpy's): multidirectional broadcasting, negative axes
//! counted from the end, `Reshape`'s `0` (copy) and `-1` (infer) unless `allowzero`,
//! `Slice` clamping. Integers are held as `i64` (int32 and bool too), floats as `f32`.

use super::attrs::{attr, attr_int, attr_ints, check_attrs, typed};
use super::proto::{NodeProto, TensorProto};
use super::tensor::{decode_bool, decode_f32, decode_i64};
use super::{BOOL, Ctx, FLOAT, INT32, INT64};
use crate::error::Result;

const DOUBLE: i32 = 11;

/// Largest tensor folding may create (`ConstantOfShape`, `Expand`): 256 Mi values.
const MAX_FOLDED: usize = 1 << 28;

/// The size of the batch dimension when it is symbolic, in a folded `Shape`: it may
/// be moved around (`Gather`, `Concat`, `Unsqueeze`, ...) and read by a `Reshape`,
/// but arithmetic on it is refused.
pub(super) const SYMBOLIC_BATCH: i64 = i64::MIN + 7;

/// The operators folded when all their inputs are constants.
pub(super) const FOLDABLE: &[&str] = &[
    "Add",
    "Cast",
    "Concat",
    "ConstantOfShape",
    "Div",
    "Expand",
    "Flatten",
    "Gather",
    "Identity",
    "Mul",
    "Neg",
    "Pow",
    "Range",
    "Reciprocal",
    "Reshape",
    "Shape",
    "Slice",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Transpose",
    "Unsqueeze",
];

/// A constant's elements.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// A constant tensor: shape, elements in row-major order, and ONNX data type.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Const {
    pub(super) shape: Vec<usize>,
    pub(super) data: Data,
    pub(super) dtype: i32,
}

impl Const {
    pub(super) fn f32(shape: Vec<usize>, v: Vec<f32>) -> Const {
        Const { shape, data: Data::F32(v), dtype: FLOAT }
    }

    pub(super) fn i64(shape: Vec<usize>, v: Vec<i64>) -> Const {
        Const { shape, data: Data::I64(v), dtype: INT64 }
    }

    fn len(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    /// Decodes a `TensorProto` of a supported type.
    pub(super) fn decode(cx: &Ctx, name: &str, t: &TensorProto) -> Result<Const> {
        match t.data_type {
            FLOAT => {
                let (shape, v) = decode_f32(cx, name, t)?;
                Ok(Const::f32(shape, v))
            }
            INT64 | INT32 => {
                let v = decode_i64(cx, name, t)?;
                Ok(Const { shape: dims(cx, t)?, data: Data::I64(v), dtype: t.data_type })
            }
            BOOL => {
                let v = decode_bool(cx, name, t)?.into_iter().map(i64::from).collect();
                Ok(Const { shape: dims(cx, t)?, data: Data::I64(v), dtype: BOOL })
            }
            DOUBLE if t.raw_data.len() == 8 * dims(cx, t)?.iter().product::<usize>() => {
                let v = t.raw_data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8")) as f32);
                Ok(Const { shape: dims(cx, t)?, data: Data::F32(v.collect()), dtype: FLOAT })
            }
            other => Err(cx.err(format!(
                "constant '{name}' has data type {other} ({}), which is not supported",
                super::tensor::dtype_name(other)
            ))),
        }
    }

    /// The `TensorProto` holding this constant.
    pub(super) fn encode(&self) -> TensorProto {
        let dims = self.shape.iter().map(|&d| d as i64).collect();
        match (&self.data, self.dtype) {
            (Data::F32(v), _) => TensorProto { dims, data_type: FLOAT, float_data: v.clone(), ..Default::default() },
            (Data::I64(v), BOOL) => TensorProto {
                dims,
                data_type: BOOL,
                int32_data: v.iter().map(|&x| x as i32).collect(),
                ..Default::default()
            },
            (Data::I64(v), _) => TensorProto { dims, data_type: INT64, int64_data: v.clone(), ..Default::default() },
        }
    }

    fn ints(&self, cx: &Ctx, what: &str) -> Result<&[i64]> {
        match &self.data {
            Data::I64(v) => Ok(v),
            Data::F32(_) => Err(cx.err(format!("{what} must be an integer tensor"))),
        }
    }

    /// The same elements gathered by `index` (flat source positions).
    fn pick(&self, shape: Vec<usize>, index: &[usize]) -> Const {
        let data = match &self.data {
            Data::F32(v) => Data::F32(index.iter().map(|&i| v[i]).collect()),
            Data::I64(v) => Data::I64(index.iter().map(|&i| v[i]).collect()),
        };
        Const { shape, data, dtype: self.dtype }
    }

    fn reshaped(&self, shape: Vec<usize>) -> Const {
        Const { shape, data: self.data.clone(), dtype: self.dtype }
    }
}

fn dims(cx: &Ctx, t: &TensorProto) -> Result<Vec<usize>> {
    t.dims.iter().map(|&d| usize::try_from(d).map_err(|_| cx.err("a constant has a negative dimension"))).collect()
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// `axis` in `-rank..rank` as an index.
pub(super) fn norm_axis(cx: &Ctx, axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    if (-r..r).contains(&axis) {
        Ok(if axis < 0 { axis + r } else { axis } as usize)
    } else {
        Err(cx.err(format!("axis {axis} is out of range for rank {rank}")))
    }
}

fn checked_len(cx: &Ctx, shape: &[usize]) -> Result<usize> {
    let mut n: usize = 1;
    for &d in shape {
        n = n.checked_mul(d).filter(|&n| n <= MAX_FOLDED).ok_or_else(|| {
            cx.err(format!("folding would create a constant of shape {shape:?}, more than {MAX_FOLDED} values"))
        })?;
    }
    Ok(n)
}

fn to_dim(cx: &Ctx, v: i64) -> Result<usize> {
    if v == SYMBOLIC_BATCH {
        return Err(cx.err("the shape depends on the symbolic batch size, which folding cannot compute with"));
    }
    usize::try_from(v).map_err(|_| cx.err(format!("dimension {v} is negative")))
}

/// Evaluates node `n` on constant inputs (`None` for an omitted optional input).
pub(super) fn eval(cx: &Ctx, n: &NodeProto, opset: i64, x: &[Option<Const>]) -> Result<Vec<Const>> {
    let arg = |i: usize| x.get(i).and_then(Option::as_ref).ok_or_else(|| cx.err(format!("input {i} is missing")));
    let a = arg(0);
    let out = match n.op_type.as_str() {
        "Identity" => {
            check_attrs(cx, n, &[])?;
            a?.clone()
        }
        "Add" | "Sub" | "Mul" | "Div" | "Pow" => {
            check_attrs(cx, n, &[])?;
            binary(cx, &n.op_type, a?, arg(1)?)?
        }
        "Neg" | "Sqrt" | "Reciprocal" => {
            check_attrs(cx, n, &[])?;
            unary(cx, &n.op_type, a?)?
        }
        "Cast" => {
            check_attrs(cx, n, &["to", "saturate"])?;
            cast(cx, a?, attr_int(cx, n, "to", 0)?)?
        }
        "Reshape" => {
            check_attrs(cx, n, &["allowzero", "shape"])?;
            let a = a?;
            let shape = if opset < 5 {
                attr_ints(cx, n, "shape")?.ok_or_else(|| cx.err("attribute shape is missing"))?
            } else {
                arg(1)?.ints(cx, "the shape")?.to_vec()
            };
            let shape = reshape_dims(cx, &a.shape, &shape, attr_int(cx, n, "allowzero", 0)? != 0)?;
            a.reshaped(shape)
        }
        "Flatten" => {
            check_attrs(cx, n, &["axis"])?;
            let a = a?;
            let axis = attr_int(cx, n, "axis", 1)?;
            let r = a.shape.len() as i64;
            let axis = if axis < 0 { axis + r } else { axis };
            if !(0..=r).contains(&axis) {
                return Err(cx.err(format!("axis {axis} is out of range for rank {r}")));
            }
            let (outer, inner) = a.shape.split_at(axis as usize);
            a.reshaped(vec![outer.iter().product(), inner.iter().product()])
        }
        "Squeeze" | "Unsqueeze" => {
            check_attrs(cx, n, &["axes"])?;
            let a = a?;
            let axes = if opset < 13 {
                attr_ints(cx, n, "axes")?
            } else {
                x.get(1).and_then(Option::as_ref).map(|t| t.ints(cx, "axes").map(<[i64]>::to_vec)).transpose()?
            };
            let shape = if n.op_type == "Squeeze" {
                squeeze_dims(cx, &a.shape, axes.as_deref())?
            } else {
                unsqueeze_dims(cx, &a.shape, axes.as_deref().ok_or_else(|| cx.err("axes are missing"))?)?
            };
            a.reshaped(shape)
        }
        "Transpose" => {
            check_attrs(cx, n, &["perm"])?;
            let a = a?;
            let perm = attr_ints(cx, n, "perm")?.unwrap_or_else(|| (0..a.shape.len() as i64).rev().collect());
            transpose(cx, a, &perm)?
        }
        "Concat" => {
            check_attrs(cx, n, &["axis"])?;
            let axis = attr(n, "axis").ok_or_else(|| cx.err("attribute axis is missing"))?;
            let parts: Vec<&Const> = (0..n.input.len()).map(arg).collect::<Result<_>>()?;
            concat(cx, &parts, typed(cx, axis, 2)?.i)?
        }
        "Gather" => {
            check_attrs(cx, n, &["axis"])?;
            gather(cx, a?, arg(1)?, attr_int(cx, n, "axis", 0)?)?
        }
        "Slice" => {
            check_attrs(cx, n, &["starts", "ends", "axes"])?;
            let a = a?;
            let (starts, ends, axes, steps) = if opset < 10 {
                let get = |k: &str| attr_ints(cx, n, k);
                (get("starts")?.unwrap_or_default(), get("ends")?.unwrap_or_default(), get("axes")?, None)
            } else {
                let opt = |i: usize| -> Result<Option<Vec<i64>>> {
                    x.get(i)
                        .and_then(Option::as_ref)
                        .map(|t| t.ints(cx, "a slice input").map(<[i64]>::to_vec))
                        .transpose()
                };
                (arg(1)?.ints(cx, "starts")?.to_vec(), arg(2)?.ints(cx, "ends")?.to_vec(), opt(3)?, opt(4)?)
            };
            slice(cx, a, &starts, &ends, axes, steps)?
        }
        "Shape" => {
            check_attrs(cx, n, &["start", "end"])?;
            let shape: Vec<i64> = a?.shape.iter().map(|&d| d as i64).collect();
            shape_slice(cx, n, shape)?
        }
        "ConstantOfShape" => {
            check_attrs(cx, n, &["value"])?;
            let shape: Vec<usize> = a?.ints(cx, "the shape")?.iter().map(|&d| to_dim(cx, d)).collect::<Result<_>>()?;
            let len = checked_len(cx, &shape)?;
            let value = match attr(n, "value") {
                Some(v) => {
                    let t = typed(cx, v, 4)?.t.as_ref().ok_or_else(|| cx.err("attribute value holds no tensor"))?;
                    Const::decode(cx, "value", t)?
                }
                None => Const::f32(vec![1], vec![0.0]),
            };
            if value.len() != 1 {
                return Err(cx.err("attribute value must hold one element"));
            }
            value.pick(shape, &vec![0; len])
        }
        "Expand" => {
            check_attrs(cx, n, &[])?;
            let a = a?;
            let target: Vec<usize> =
                arg(1)?.ints(cx, "the shape")?.iter().map(|&d| to_dim(cx, d)).collect::<Result<_>>()?;
            let shape = broadcast_shape(cx, &a.shape, &target)?;
            checked_len(cx, &shape)?;
            let index = broadcast_index(&a.shape, &shape);
            a.pick(shape, &index)
        }
        "Range" => {
            check_attrs(cx, n, &[])?;
            range(cx, a?, arg(1)?, arg(2)?)?
        }
        other => return Err(cx.err(format!("operator {other} is not folded"))),
    };
    Ok(vec![out])
}

pub(super) fn shape_slice(cx: &Ctx, n: &NodeProto, shape: Vec<i64>) -> Result<Const> {
    let r = shape.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(attr_int(cx, n, "start", 0)?);
    let end = clamp(attr_int(cx, n, "end", r)?).max(start);
    let v = shape[start..end].to_vec();
    Ok(Const::i64(vec![v.len()], v))
}

/// The output shape of broadcasting `a` and `b` (numpy rules).
pub(super) fn broadcast_shape(cx: &Ctx, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let r = a.len().max(b.len());
    let at = |s: &[usize], i: usize| if i + s.len() >= r { s[i + s.len() - r] } else { 1 };
    (0..r)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y || y == 1 => Ok(x),
            (1, y) => Ok(y),
            _ => Err(cx.err(format!("shapes {a:?} and {b:?} do not broadcast"))),
        })
        .collect()
}

/// For each element of `out`, the flat index of the element of `shape` broadcast to it.
fn broadcast_index(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let src = strides(shape);
    let off = out.len() - shape.len();
    let total: usize = out.iter().product();
    let mut index = Vec::with_capacity(total);
    let mut pos = vec![0usize; out.len()];
    for _ in 0..total {
        let mut i = 0;
        for (k, (&d, &s)) in shape.iter().zip(&src).enumerate() {
            if d != 1 {
                i += pos[k + off] * s;
            }
        }
        index.push(i);
        for k in (0..out.len()).rev() {
            pos[k] += 1;
            if pos[k] < out[k] {
                break;
            }
            pos[k] = 0;
        }
    }
    index
}

fn binary(cx: &Ctx, op: &str, a: &Const, b: &Const) -> Result<Const> {
    let shape = broadcast_shape(cx, &a.shape, &b.shape)?;
    checked_len(cx, &shape)?;
    let (ia, ib) = (broadcast_index(&a.shape, &shape), broadcast_index(&b.shape, &shape));
    let data = match (&a.data, &b.data) {
        (Data::F32(x), Data::F32(y)) => {
            let f = |p: f32, q: f32| match op {
                "Add" => p + q,
                "Sub" => p - q,
                "Mul" => p * q,
                "Div" => p / q,
                _ => p.powf(q),
            };
            Data::F32(ia.iter().zip(&ib).map(|(&i, &j)| f(x[i], y[j])).collect())
        }
        (Data::I64(x), Data::I64(y)) => {
            if x.iter().chain(y).any(|&v| v == SYMBOLIC_BATCH) {
                return Err(cx.err("arithmetic on the symbolic batch size cannot be folded"));
            }
            let f = |p: i64, q: i64| -> Option<i64> {
                match op {
                    "Add" => p.checked_add(q),
                    "Sub" => p.checked_sub(q),
                    "Mul" => p.checked_mul(q),
                    "Div" => p.checked_div(q),
                    _ => u32::try_from(q).ok().and_then(|q| p.checked_pow(q)),
                }
            };
            let v: Option<Vec<i64>> = ia.iter().zip(&ib).map(|(&i, &j)| f(x[i], y[j])).collect();
            Data::I64(v.ok_or_else(|| cx.err(format!("integer {op} overflows or divides by zero")))?)
        }
        _ => return Err(cx.err(format!("{op} of a float and an integer tensor"))),
    };
    Ok(Const { shape, data, dtype: a.dtype })
}

fn unary(cx: &Ctx, op: &str, a: &Const) -> Result<Const> {
    let data = match &a.data {
        Data::F32(v) => Data::F32(
            v.iter()
                .map(|&p| match op {
                    "Neg" => -p,
                    "Sqrt" => p.sqrt(),
                    _ => 1.0 / p,
                })
                .collect(),
        ),
        Data::I64(v) if op == "Neg" => Data::I64(v.iter().map(|&p| p.wrapping_neg()).collect()),
        Data::I64(_) => return Err(cx.err(format!("{op} of an integer tensor is not supported"))),
    };
    Ok(Const { shape: a.shape.clone(), data, dtype: a.dtype })
}

fn cast(cx: &Ctx, a: &Const, to: i64) -> Result<Const> {
    let to = i32::try_from(to).unwrap_or(0);
    let data = match (&a.data, to) {
        (Data::F32(v), FLOAT | DOUBLE) => Data::F32(v.clone()),
        (Data::I64(v), FLOAT | DOUBLE) => Data::F32(v.iter().map(|&p| p as f32).collect()),
        (Data::F32(v), INT64 | INT32) => Data::I64(v.iter().map(|&p| p as i64).collect()),
        (Data::F32(v), BOOL) => Data::I64(v.iter().map(|&p| i64::from(p != 0.0)).collect()),
        (Data::I64(v), INT64) => Data::I64(v.clone()),
        (Data::I64(v), INT32) => Data::I64(v.iter().map(|&p| p as i32 as i64).collect()),
        (Data::I64(v), BOOL) => Data::I64(v.iter().map(|&p| i64::from(p != 0)).collect()),
        _ => return Err(cx.err(format!("Cast to data type {to} is not supported"))),
    };
    let dtype = if to == DOUBLE { FLOAT } else { to };
    Ok(Const { shape: a.shape.clone(), data, dtype })
}

/// `Reshape`'s target: `0` copies the input's dimension (unless `allowzero`), one
/// `-1` is inferred.
pub(super) fn reshape_dims(cx: &Ctx, from: &[usize], shape: &[i64], allowzero: bool) -> Result<Vec<usize>> {
    let total: usize = from.iter().product();
    let mut out = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &d) in shape.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(
                *from.get(i).ok_or_else(|| cx.err(format!("shape {shape:?} copies dimension {i} the input lacks")))?,
            ),
            d => out.push(to_dim(cx, d).map_err(|_| cx.err(format!("shape {shape:?} is not a valid reshape")))?),
        }
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(cx.err(format!("cannot reshape {from:?} to {shape:?}")));
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(cx.err(format!("cannot reshape {from:?} ({total} values) to {shape:?}")));
    }
    Ok(out)
}

/// `Squeeze`'s output: the listed axes (which must be 1), or every 1.
pub(super) fn squeeze_dims(cx: &Ctx, from: &[usize], axes: Option<&[i64]>) -> Result<Vec<usize>> {
    let drop: Vec<usize> = match axes {
        Some(axes) => axes.iter().map(|&a| norm_axis(cx, a, from.len())).collect::<Result<_>>()?,
        None => (0..from.len()).filter(|&i| from[i] == 1).collect(),
    };
    if let Some(&i) = drop.iter().find(|&&i| from[i] != 1) {
        return Err(cx.err(format!("cannot squeeze axis {i} of size {}", from[i])));
    }
    Ok(from.iter().enumerate().filter(|(i, _)| !drop.contains(i)).map(|(_, &d)| d).collect())
}

/// `Unsqueeze`'s output: 1s inserted at `axes` of the output.
pub(super) fn unsqueeze_dims(cx: &Ctx, from: &[usize], axes: &[i64]) -> Result<Vec<usize>> {
    let rank = from.len() + axes.len();
    let mut at: Vec<usize> = axes.iter().map(|&a| norm_axis(cx, a, rank)).collect::<Result<_>>()?;
    at.sort_unstable();
    if at.windows(2).any(|w| w[0] == w[1]) {
        return Err(cx.err(format!("axes {axes:?} repeat")));
    }
    let mut src = from.iter();
    Ok((0..rank).map(|i| if at.contains(&i) { 1 } else { *src.next().expect("rank counted") }).collect())
}

fn transpose(cx: &Ctx, a: &Const, perm: &[i64]) -> Result<Const> {
    let r = a.shape.len();
    let mut seen = vec![false; r];
    let perm: Vec<usize> = perm
        .iter()
        .map(|&p| match usize::try_from(p) {
            Ok(p) if p < r && !std::mem::replace(&mut seen[p], true) => Ok(p),
            _ => Err(cx.err(format!("perm {perm:?} is not a permutation of {r} axes"))),
        })
        .collect::<Result<_>>()?;
    if perm.len() != r {
        return Err(cx.err(format!("perm {perm:?} is not a permutation of {r} axes")));
    }
    let shape: Vec<usize> = perm.iter().map(|&p| a.shape[p]).collect();
    let src = strides(&a.shape);
    let moved: Vec<usize> = perm.iter().map(|&p| src[p]).collect();
    let index = walk(&shape, &moved, 0);
    Ok(a.pick(shape, &index))
}

/// Flat source indices of every position of `shape`, with source `strides` per axis.
fn walk(shape: &[usize], strides: &[usize], base: usize) -> Vec<usize> {
    let mut out = vec![base];
    for (&d, &s) in shape.iter().zip(strides) {
        out = out.iter().flat_map(|&b| (0..d).map(move |i| b + i * s)).collect();
    }
    out
}

fn concat(cx: &Ctx, parts: &[&Const], axis: i64) -> Result<Const> {
    let first = parts.first().ok_or_else(|| cx.err("needs at least one input"))?;
    let r = first.shape.len();
    let axis = norm_axis(cx, axis, r)?;
    let mut shape = first.shape.clone();
    shape[axis] = 0;
    for p in parts {
        let same = p.shape.len() == r && (0..r).all(|i| i == axis || p.shape[i] == first.shape[i]);
        if !same || std::mem::discriminant(&p.data) != std::mem::discriminant(&first.data) {
            return Err(cx.err(format!("inputs of shapes {:?} and {:?} do not concatenate", first.shape, p.shape)));
        }
        shape[axis] += p.shape[axis];
    }
    let outer: usize = shape[..axis].iter().product();
    let mut data = first.data.clone();
    match &mut data {
        Data::F32(v) => v.clear(),
        Data::I64(v) => v.clear(),
    }
    for o in 0..outer {
        for p in parts {
            let chunk: usize = p.shape[axis..].iter().product();
            match (&mut data, &p.data) {
                (Data::F32(d), Data::F32(s)) => d.extend_from_slice(&s[o * chunk..(o + 1) * chunk]),
                (Data::I64(d), Data::I64(s)) => d.extend_from_slice(&s[o * chunk..(o + 1) * chunk]),
                _ => unreachable!("data kinds checked above"),
            }
        }
    }
    Ok(Const { shape, data, dtype: first.dtype })
}

fn gather(cx: &Ctx, a: &Const, idx: &Const, axis: i64) -> Result<Const> {
    let axis = norm_axis(cx, axis, a.shape.len())?;
    let d = a.shape[axis] as i64;
    let ids: Vec<usize> = idx
        .ints(cx, "the indices")?
        .iter()
        .map(|&i| match i {
            i if (-d..d).contains(&i) => Ok(if i < 0 { i + d } else { i } as usize),
            _ => Err(cx.err(format!("index {i} is out of range for an axis of size {d}"))),
        })
        .collect::<Result<_>>()?;
    let outer: usize = a.shape[..axis].iter().product();
    let inner: usize = a.shape[axis + 1..].iter().product();
    let mut index = Vec::with_capacity(outer * ids.len() * inner);
    for o in 0..outer {
        for &i in &ids {
            index.extend((0..inner).map(|k| (o * a.shape[axis] + i) * inner + k));
        }
    }
    let shape = [&a.shape[..axis], &idx.shape[..], &a.shape[axis + 1..]].concat();
    Ok(a.pick(shape, &index))
}

fn slice(
    cx: &Ctx,
    a: &Const,
    starts: &[i64],
    ends: &[i64],
    axes: Option<Vec<i64>>,
    steps: Option<Vec<i64>>,
) -> Result<Const> {
    let r = a.shape.len();
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(cx.err("starts, ends, axes and steps differ in length"));
    }
    // Per axis: first index, step, count.
    let mut plan: Vec<(i64, i64, usize)> = a.shape.iter().map(|&d| (0, 1, d)).collect();
    for i in 0..starts.len() {
        let ax = norm_axis(cx, axes[i], r)?;
        let d = a.shape[ax] as i64;
        let step = steps[i];
        if step == 0 {
            return Err(cx.err("a slice step of 0"));
        }
        let fix = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
        let (s, e) = (fix(starts[i]), fix(ends[i]));
        let (s, e) = if step > 0 { (s.clamp(0, d), e.clamp(0, d)) } else { (s.clamp(-1, d - 1), e.clamp(-1, d - 1)) };
        let (span, by) = if step > 0 { ((e - s).max(0), step) } else { ((s - e).max(0), -step) };
        let count = (span + by - 1) / by;
        plan[ax] = (s, step, count as usize);
    }
    let src = strides(&a.shape);
    let shape: Vec<usize> = plan.iter().map(|p| p.2).collect();
    let base: i64 = plan.iter().zip(&src).map(|(p, &s)| p.0 * s as i64).sum();
    let mut index = vec![base];
    for (p, &s) in plan.iter().zip(&src) {
        index = index.iter().flat_map(|&b| (0..p.2 as i64).map(move |i| b + i * p.1 * s as i64)).collect();
    }
    let index: Vec<usize> = index.into_iter().map(|i| i as usize).collect();
    Ok(a.pick(shape, &index))
}

fn range(cx: &Ctx, start: &Const, limit: &Const, delta: &Const) -> Result<Const> {
    match (&start.data, &limit.data, &delta.data) {
        (Data::I64(s), Data::I64(l), Data::I64(d)) if s.len() == 1 && l.len() == 1 && d.len() == 1 && d[0] != 0 => {
            let n = ((l[0] - s[0]) as f64 / d[0] as f64).ceil().max(0.0) as usize;
            checked_len(cx, &[n])?;
            Ok(Const {
                shape: vec![n],
                data: Data::I64((0..n as i64).map(|i| s[0] + i * d[0]).collect()),
                ..start.clone()
            })
        }
        (Data::F32(s), Data::F32(l), Data::F32(d)) if s.len() == 1 && l.len() == 1 && d.len() == 1 && d[0] != 0.0 => {
            let n = ((l[0] - s[0]) / d[0]).ceil().max(0.0) as usize;
            checked_len(cx, &[n])?;
            Ok(Const::f32(vec![n], (0..n).map(|i| s[0] + i as f32 * d[0]).collect()))
        }
        _ => Err(cx.err("Range needs three scalars of one type and a non-zero delta")),
    }
}

#[cfg(test)]
mod tests;
