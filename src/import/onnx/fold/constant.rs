//! The folder's plain tensors: a shape, row-major elements, an ONNX data type.

use super::super::proto::TensorProto;
use super::super::tensor::{decode_bool, decode_f32, decode_i64, dtype_name};
use super::super::{BOOL, Ctx, FLOAT, INT32, INT64};
use super::DOUBLE;
use crate::error::Result;

/// A constant's elements.
#[derive(Clone, Debug, PartialEq)]
pub(in crate::import::onnx) enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// A constant tensor: shape, elements in row-major order, and ONNX data type.
#[derive(Clone, Debug, PartialEq)]
pub(in crate::import::onnx) struct Const {
    pub(in crate::import::onnx) shape: Vec<usize>,
    pub(in crate::import::onnx) data: Data,
    pub(in crate::import::onnx) dtype: i32,
}

impl Const {
    pub(in crate::import::onnx) fn f32(shape: Vec<usize>, v: Vec<f32>) -> Const {
        Const { shape, data: Data::F32(v), dtype: FLOAT }
    }

    pub(in crate::import::onnx) fn i64(shape: Vec<usize>, v: Vec<i64>) -> Const {
        Const { shape, data: Data::I64(v), dtype: INT64 }
    }

    pub(in crate::import::onnx) fn len(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    /// Decodes a `TensorProto` of a supported type.
    pub(in crate::import::onnx) fn decode(cx: &Ctx, name: &str, t: &TensorProto) -> Result<Const> {
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
                dtype_name(other)
            ))),
        }
    }

    /// The `TensorProto` holding this constant.
    pub(in crate::import::onnx) fn encode(&self) -> TensorProto {
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

    pub(in crate::import::onnx) fn ints(&self, cx: &Ctx, what: &str) -> Result<&[i64]> {
        match &self.data {
            Data::I64(v) => Ok(v),
            Data::F32(_) => Err(cx.err(format!("{what} must be an integer tensor"))),
        }
    }

    /// The same elements gathered by `index` (flat source positions).
    pub(in crate::import::onnx) fn pick(&self, shape: Vec<usize>, index: &[usize]) -> Const {
        let data = match &self.data {
            Data::F32(v) => Data::F32(index.iter().map(|&i| v[i]).collect()),
            Data::I64(v) => Data::I64(index.iter().map(|&i| v[i]).collect()),
        };
        Const { shape, data, dtype: self.dtype }
    }

    pub(in crate::import::onnx) fn reshaped(&self, shape: Vec<usize>) -> Const {
        Const { shape, data: self.data.clone(), dtype: self.dtype }
    }
}

fn dims(cx: &Ctx, t: &TensorProto) -> Result<Vec<usize>> {
    t.dims.iter().map(|&d| usize::try_from(d).map_err(|_| cx.err("a constant has a negative dimension"))).collect()
}
