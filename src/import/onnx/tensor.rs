//! Decoding `TensorProto` data into plain vectors.

use super::proto::TensorProto;
use super::{BOOL, Ctx, FLOAT, INT32, INT64};
use crate::error::Result;

pub(super) fn numel(cx: &Ctx, name: &str, t: &TensorProto) -> Result<(Vec<usize>, usize)> {
    if t.data_location == 1 || !t.external_data.is_empty() {
        return Err(cx.err(format!("tensor '{name}' keeps its data in an external file, which is not supported")));
    }
    let mut shape = Vec::with_capacity(t.dims.len());
    let mut n: usize = 1;
    for &d in &t.dims {
        let d = usize::try_from(d).map_err(|_| cx.err(format!("tensor '{name}' has a negative dimension")))?;
        n = n.checked_mul(d).ok_or_else(|| cx.err(format!("tensor '{name}' is impossibly large")))?;
        shape.push(d);
    }
    Ok((shape, n))
}

pub(super) fn dtype_name(t: i32) -> &'static str {
    match t {
        1 => "float32",
        2 => "uint8",
        3 => "int8",
        6 => "int32",
        7 => "int64",
        9 => "bool",
        10 => "float16",
        11 => "float64",
        16 => "bfloat16",
        _ => "other",
    }
}

/// Little-endian raw bytes of `n` elements of `size` bytes, or the typed field.
pub(super) fn raw<'t>(
    cx: &Ctx,
    name: &str,
    t: &'t TensorProto,
    n: usize,
    size: usize,
    typed_len: usize,
) -> Result<Option<&'t [u8]>> {
    if !t.raw_data.is_empty() {
        if Some(t.raw_data.len()) != n.checked_mul(size) {
            return Err(cx.err(format!(
                "tensor '{name}' holds {} bytes of data, its shape {:?} needs {n} values of {size} bytes",
                t.raw_data.len(),
                t.dims
            )));
        }
        return Ok(Some(&t.raw_data));
    }
    if typed_len != n {
        return Err(cx.err(format!("tensor '{name}' holds {typed_len} values, its shape {:?} needs {n}", t.dims)));
    }
    Ok(None)
}

pub(super) fn decode_f32(cx: &Ctx, name: &str, t: &TensorProto) -> Result<(Vec<usize>, Vec<f32>)> {
    if t.data_type != FLOAT {
        return Err(cx.err(format!(
            "tensor '{name}' is {} (data type {}); only float32 weights are supported",
            dtype_name(t.data_type),
            t.data_type
        )));
    }
    let (shape, n) = numel(cx, name, t)?;
    let data = match raw(cx, name, t, n, 4, t.float_data.len())? {
        Some(bytes) => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        None => t.float_data.clone(),
    };
    Ok((shape, data))
}

pub(super) fn decode_i64(cx: &Ctx, name: &str, t: &TensorProto) -> Result<Vec<i64>> {
    let (_, n) = numel(cx, name, t)?;
    match t.data_type {
        INT64 => Ok(match raw(cx, name, t, n, 8, t.int64_data.len())? {
            Some(bytes) => bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect(),
            None => t.int64_data.clone(),
        }),
        INT32 => Ok(match raw(cx, name, t, n, 4, t.int32_data.len())? {
            Some(bytes) => {
                bytes.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as i64).collect()
            }
            None => t.int32_data.iter().map(|&v| v as i64).collect(),
        }),
        other => Err(cx.err(format!("tensor '{name}' is {} (data type {other}); int64 is needed", dtype_name(other)))),
    }
}

pub(super) fn decode_bool(cx: &Ctx, name: &str, t: &TensorProto) -> Result<Vec<bool>> {
    if t.data_type != BOOL {
        return Err(cx.err(format!("tensor '{name}' is {}; bool is needed", dtype_name(t.data_type))));
    }
    let (_, n) = numel(cx, name, t)?;
    Ok(match raw(cx, name, t, n, 1, t.int32_data.len())? {
        Some(bytes) => bytes.iter().map(|&b| b != 0).collect(),
        None => t.int32_data.iter().map(|&v| v != 0).collect(),
    })
}
