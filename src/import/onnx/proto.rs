//! The messages of `onnx.proto` the importer reads, decoded by `prost`. Only the
//! fields used are declared, with the schema's field numbers; the decoder skips the
//! others. Presence-only fields (`sparse_initializer`, `external_data`) are read as
//! raw bytes.
//!
//! [`messages!`] declares each message and implements [`prost::Message`] for it with
//! prost's own encoding functions, as `#[derive(prost::Message)]` does (field by
//! field: the same function for each field kind, the same error path), without the
//! derive's four crates. A field reads `cardinality kind name: Type = tag`, where
//! the kind is the module of `prost::encoding` that reads it and the cardinality is
//! `single` (proto3: written when not the default), `optional` (`Option`),
//! `repeated` or `packed` (a repeated number; read packed or not).

use prost::DecodeError;
use prost::bytes::{Buf, BufMut};
use prost::encoding::{DecodeContext, WireType, skip_field};

/// Structs with `prost::Message` implementations; see the module documentation.
macro_rules! messages {
    ($($(#[$doc:meta])* pub struct $name:ident {
        $($(#[$field_doc:meta])* $card:ident $kind:ident $field:ident: $ty:ty = $tag:literal,)*
    })*) => {$(
        $(#[$doc])*
        #[derive(Clone, PartialEq, Debug, Default)]
        pub struct $name {
            $($(#[$field_doc])* pub $field: $ty,)*
        }

        impl prost::Message for $name {
            fn encode_raw(&self, buf: &mut impl BufMut) {
                $(field!(encode $card $kind, $tag, self.$field, buf);)*
            }

            fn merge_field(
                &mut self,
                tag: u32,
                wire_type: WireType,
                buf: &mut impl Buf,
                ctx: DecodeContext,
            ) -> Result<(), DecodeError> {
                match tag {
                    $($tag => field!(merge $card $kind, self.$field, wire_type, buf, ctx).map_err(|mut e| {
                        e.push(stringify!($name), stringify!($field));
                        e
                    }),)*
                    _ => skip_field(wire_type, tag, buf, ctx),
                }
            }

            fn encoded_len(&self) -> usize {
                0 $(+ field!(len $card $kind, $tag, self.$field))*
            }

            fn clear(&mut self) {
                *self = Self::default();
            }
        }
    )*};
}

/// A `single` field at its default value, which proto3 does not write.
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// One field's part of `encode_raw`, `merge_field` or `encoded_len`.
macro_rules! field {
    (encode single $kind:ident, $tag:literal, $f:expr, $buf:ident) => {
        if !is_default(&$f) {
            prost::encoding::$kind::encode($tag, &$f, $buf)
        }
    };
    (encode optional $kind:ident, $tag:literal, $f:expr, $buf:ident) => {
        if let Some(value) = &$f {
            prost::encoding::$kind::encode($tag, value, $buf)
        }
    };
    (encode repeated $kind:ident, $tag:literal, $f:expr, $buf:ident) => {
        prost::encoding::$kind::encode_repeated($tag, &$f, $buf)
    };
    (encode packed $kind:ident, $tag:literal, $f:expr, $buf:ident) => {
        prost::encoding::$kind::encode_packed($tag, &$f, $buf)
    };
    (merge single $kind:ident, $f:expr, $wire_type:ident, $buf:ident, $ctx:ident) => {
        prost::encoding::$kind::merge($wire_type, &mut $f, $buf, $ctx)
    };
    (merge optional $kind:ident, $f:expr, $wire_type:ident, $buf:ident, $ctx:ident) => {
        prost::encoding::$kind::merge($wire_type, $f.get_or_insert_with(Default::default), $buf, $ctx)
    };
    // `repeated` and `packed`: `merge_repeated` reads both encodings of numbers.
    (merge $card:ident $kind:ident, $f:expr, $wire_type:ident, $buf:ident, $ctx:ident) => {
        prost::encoding::$kind::merge_repeated($wire_type, &mut $f, $buf, $ctx)
    };
    (len single $kind:ident, $tag:literal, $f:expr) => {
        if !is_default(&$f) { prost::encoding::$kind::encoded_len($tag, &$f) } else { 0 }
    };
    (len optional $kind:ident, $tag:literal, $f:expr) => {
        $f.as_ref().map_or(0, |value| prost::encoding::$kind::encoded_len($tag, value))
    };
    (len repeated $kind:ident, $tag:literal, $f:expr) => {
        prost::encoding::$kind::encoded_len_repeated($tag, &$f)
    };
    (len packed $kind:ident, $tag:literal, $f:expr) => {
        prost::encoding::$kind::encoded_len_packed($tag, &$f)
    };
}

messages! {
    pub struct ModelProto {
        single int64 ir_version: i64 = 1,
        optional message graph: Option<GraphProto> = 7,
        repeated message opset_import: Vec<OperatorSetIdProto> = 8,
    }

    pub struct OperatorSetIdProto {
        single string domain: String = 1,
        single int64 version: i64 = 2,
    }

    pub struct GraphProto {
        repeated message node: Vec<NodeProto> = 1,
        single string name: String = 2,
        repeated message initializer: Vec<TensorProto> = 5,
        repeated message input: Vec<ValueInfoProto> = 11,
        repeated message output: Vec<ValueInfoProto> = 12,
        repeated bytes sparse_initializer: Vec<Vec<u8>> = 15,
    }

    pub struct NodeProto {
        repeated string input: Vec<String> = 1,
        repeated string output: Vec<String> = 2,
        single string name: String = 3,
        single string op_type: String = 4,
        repeated message attribute: Vec<AttributeProto> = 5,
        single string domain: String = 7,
    }

    pub struct AttributeProto {
        single string name: String = 1,
        single float f: f32 = 2,
        single int64 i: i64 = 3,
        single bytes s: Vec<u8> = 4,
        optional message t: Option<TensorProto> = 5,
        packed float floats: Vec<f32> = 7,
        packed int64 ints: Vec<i64> = 8,
        /// `AttributeType`: 1 float, 2 int, 3 string, 4 tensor, 6 floats, 7 ints.
        single int32 r#type: i32 = 20,
    }

    pub struct TensorProto {
        packed int64 dims: Vec<i64> = 1,
        /// `DataType`: 1 float, 6 int32, 7 int64, 9 bool, ...
        single int32 data_type: i32 = 2,
        packed float float_data: Vec<f32> = 4,
        packed int32 int32_data: Vec<i32> = 5,
        packed int64 int64_data: Vec<i64> = 7,
        single string name: String = 8,
        single bytes raw_data: prost::bytes::Bytes = 9,
        repeated bytes external_data: Vec<Vec<u8>> = 13,
        /// 0 default, 1 external.
        single int32 data_location: i32 = 14,
    }

    pub struct ValueInfoProto {
        single string name: String = 1,
        optional message r#type: Option<TypeProto> = 2,
    }

    pub struct TypeProto {
        /// The `tensor_type` case of the `value` oneof (the others are not tensors).
        optional message tensor_type: Option<TypeProtoTensor> = 1,
    }

    pub struct TypeProtoTensor {
        single int32 elem_type: i32 = 1,
        optional message shape: Option<TensorShapeProto> = 2,
    }

    pub struct TensorShapeProto {
        repeated message dim: Vec<Dimension> = 1,
    }

    pub struct Dimension {
        optional int64 dim_value: Option<i64> = 1,
        optional string dim_param: Option<String> = 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use prost::encoding::{int64, string};

    fn tensor() -> TensorProto {
        TensorProto {
            dims: vec![2, -1, 0],
            data_type: 1,
            float_data: vec![1.5, -0.0, f32::INFINITY],
            int32_data: vec![i32::MIN, 7],
            int64_data: vec![i64::MAX, -3],
            name: "w".into(),
            raw_data: vec![0u8, 1, 255].into(),
            external_data: vec![b"location".to_vec(), vec![]],
            data_location: 1,
        }
    }

    /// Every field of every message set, written and read back equal; cleared, the
    /// message is the default and writes nothing.
    #[test]
    fn every_field_round_trips() {
        let attribute = AttributeProto {
            name: "kernel_shape".into(),
            f: -2.5,
            i: -1,
            s: b"SAME_UPPER".to_vec(),
            t: Some(tensor()),
            floats: vec![0.5, 2.0],
            ints: vec![3, -3, i64::MIN],
            r#type: 7,
        };
        let dim = |v: Option<i64>, p: Option<&str>| Dimension { dim_value: v, dim_param: p.map(String::from) };
        let value = ValueInfoProto {
            name: "x".into(),
            r#type: Some(TypeProto {
                tensor_type: Some(TypeProtoTensor {
                    elem_type: 1,
                    shape: Some(TensorShapeProto {
                        dim: vec![dim(Some(0), None), dim(None, Some("")), dim(Some(299), Some("h"))],
                    }),
                }),
            }),
        };
        let mut model = ModelProto {
            ir_version: 8,
            graph: Some(GraphProto {
                node: vec![NodeProto {
                    input: vec!["x".into(), String::new()],
                    output: vec!["y".into()],
                    name: "conv".into(),
                    op_type: "Conv".into(),
                    attribute: vec![attribute, AttributeProto::default()],
                    domain: "ai.onnx".into(),
                }],
                name: "g".into(),
                initializer: vec![tensor(), TensorProto::default()],
                input: vec![value.clone(), ValueInfoProto::default()],
                output: vec![value],
                sparse_initializer: vec![vec![1, 2]],
            }),
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 13 }],
        };
        let bytes = model.encode_to_vec();
        assert_eq!(bytes.len(), model.encoded_len());
        assert_eq!(ModelProto::decode(&bytes[..]).unwrap(), model);
        model.clear();
        assert_eq!(model, ModelProto::default());
        assert!(model.encode_to_vec().is_empty());
    }

    /// Repeated numbers unpacked (as proto2 writers such as onnx's write them) read
    /// like packed ones; unknown fields are skipped; an error names the path.
    #[test]
    fn unpacked_numbers_unknown_fields_and_error_paths() {
        let mut bytes = Vec::new();
        int64::encode_repeated(8, &[4, -5], &mut bytes);
        string::encode(1, &"pads".to_string(), &mut bytes);
        string::encode(99, &"unknown".to_string(), &mut bytes);
        int64::encode_packed(8, &[6], &mut bytes);
        let a = AttributeProto::decode(&bytes[..]).unwrap();
        assert_eq!((a.name.as_str(), a.ints), ("pads", vec![4, -5, 6]));

        // Field 1 of the graph (`node`) as a varint, inside field 7 of the model; the
        // path is innermost first, as prost writes it.
        let e = ModelProto::decode(&[0x3a, 0x02, 0x08, 0x01][..]).unwrap_err().to_string();
        assert!(e.contains("GraphProto.node: ModelProto.graph: invalid wire type: Varint"), "{e}");
        let e = NodeProto::decode(&[0x22, 0x01, 0xff][..]).unwrap_err().to_string();
        assert!(e.contains("NodeProto.op_type: invalid string value: data is not UTF-8 encoded"), "{e}");
    }
}
