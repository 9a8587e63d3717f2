//! NHWC graph inputs: a graph whose input is read only by a `Transpose` to NCHW
//! (TensorFlow exports through tf2onnx) takes its input in NHWC; the engine reads
//! that order directly (see [`InputLayout`](crate::graph::InputLayout)) and the
//! `Transpose` becomes the input itself.

use super::Ctx;
use super::attrs::attr_ints;
use super::proto::NodeProto;

/// The index of the node that transposes graph input `input` from NHWC to NCHW,
/// when it is the input's only reader.
pub(super) fn input_transpose(nodes: &[NodeProto], input: &str) -> Option<usize> {
    let mut readers = nodes.iter().enumerate().filter(|(_, n)| n.input.iter().any(|x| x == input));
    let (idx, n) = readers.next()?;
    let perm = attr_ints(&Ctx(String::new()), n, "perm").ok()??;
    (readers.next().is_none() && n.op_type == "Transpose" && perm == [0, 3, 1, 2] && n.output.len() == 1).then_some(idx)
}
