//! A second, independent evaluation of a graph: no plan, no arena, no fusion.
//!
//! Every value gets its own NCHW buffer, BatchNorm runs unfolded, concatenation
//! copies. It is slow and allocates freely; it exists to check the planned
//! executor (tests, fuzzing) and to compute activation statistics.

use incept_kernels::{Image, ImageMut, Layout, reference as k};

use crate::error::{Error, Result};
use crate::graph::{Dims, Graph, InputLayout, Op, ParamId, ValueId};
use crate::weights::Weights;

/// Evaluates `graph` on a batch of `batch` images (in the graph's
/// [`input_layout`](Graph::input_layout)) and returns the output, `batch x C x H x W`
/// in NCHW order.
pub fn interpret(graph: &Graph, weights: &Weights, input: &[f32], batch: usize) -> Result<Vec<f32>> {
    weights.check(graph)?;
    let din = graph.dims(graph.input);
    if input.len() != batch * din.volume() {
        return Err(Error::BufferSize { what: "input", got: input.len(), expected: batch * din.volume() });
    }
    let p = |id: ParamId| weights.get(&graph.params[id.0].name).expect("checked above").data.as_slice();
    let nchw = Layout::Nchw;
    let mut vals: Vec<Option<Vec<f32>>> = vec![None; graph.values.len()];
    vals[graph.input.0] = Some(match graph.input_layout {
        InputLayout::Nchw => input.to_vec(),
        InputLayout::Nhwc => {
            let (c, h, w) = (din.c, din.h, din.w);
            let mut nchw = vec![0.0; input.len()];
            for (i, v) in input.iter().enumerate() {
                let (n, y, x, ch) = (i / (h * w * c), i / (w * c) % h, i / c % w, i % c);
                nchw[((n * c + ch) * h + y) * w + x] = *v;
            }
            nchw
        }
    });
    for node in &graph.nodes {
        let dout = graph.dims(node.output);
        let mut out = vec![0.0; batch * dout.volume()];
        for n in 0..batch {
            let img = |i: usize| {
                let v = node.inputs[i];
                let d = graph.dims(v);
                Image::new(&vals[v.0].as_ref().expect("topological order")[n * d.volume()..][..d.volume()], d, nchw)
            };
            let mut o = ImageMut::new(&mut out[n * dout.volume()..][..dout.volume()], dout, nchw);
            match &node.op {
                Op::Conv { weight, bias, geom } => {
                    k::conv2d(img(0), p(*weight), bias.map(p), geom, None, Default::default(), &mut o)
                }
                Op::BatchNorm { gamma, beta, mean, var, eps } => {
                    k::batch_norm(img(0), p(*gamma), p(*beta), p(*mean), p(*var), *eps, &mut o)
                }
                Op::Relu => k::relu(img(0), &mut o),
                Op::MaxPool(g) => k::max_pool(img(0), g, &mut o),
                Op::AvgPool { geom, pad_with_bias: true, .. } => {
                    k::avg_pool_padded(img(0), geom, &projection_at_zero(graph, weights, node.inputs[0]), &mut o)
                }
                Op::AvgPool { geom, count_include_pad, .. } => k::avg_pool(img(0), geom, *count_include_pad, &mut o),
                Op::GlobalAvgPool => k::global_avg_pool(img(0), &mut o),
                Op::Concat => {
                    let mut at = 0;
                    for i in 0..node.inputs.len() {
                        let src = img(i);
                        o.data[at..at + src.data.len()].copy_from_slice(src.data);
                        at += src.data.len();
                    }
                }
                Op::ResidualAdd { scale, act } => k::residual_add(img(0), img(1), *scale, *act, &mut o),
                Op::Lrn { size, alpha, beta, k: bias } => k::lrn(img(0), *size, *alpha, *beta, *bias, &mut o),
                Op::Linear { weight, bias } => k::linear(img(0), p(*weight), bias.map(p), Default::default(), &mut o),
                Op::Softmax => k::softmax(img(0), &mut o),
                Op::Pointwise(f) => k::pointwise(img(0), |v| f.apply(v), &mut o),
            }
        }
        vals[node.output.0] = Some(out);
    }
    Ok(vals[graph.output.0].take().expect("output computed"))
}

/// What the convolution and BatchNorms producing `v` (see [`Graph::projection_of`])
/// give an all-zero input, per channel: the convolution's bias (zeros without one)
/// through the BatchNorms.
fn projection_at_zero(graph: &Graph, weights: &Weights, v: ValueId) -> Vec<f32> {
    let p = |id: ParamId| weights.get(&graph.params[id.0].name).expect("checked by the caller").data.as_slice();
    let chain = graph.projection_of(v).expect("the graph builder checks pools padded with bias");
    let d = Dims::new(graph.dims(v).c, 1, 1);
    let mut at_zero = match graph.nodes[chain[0]].op {
        Op::Conv { bias: Some(b), .. } => p(b).to_vec(),
        _ => vec![0.0; d.c],
    };
    for &n in &chain[1..] {
        let Op::BatchNorm { gamma, beta, mean, var, eps } = graph.nodes[n].op else { unreachable!("a projection") };
        let x = at_zero.clone();
        let out = &mut ImageMut::new(&mut at_zero, d, Layout::Nchw);
        k::batch_norm(Image::new(&x, d, Layout::Nchw), p(gamma), p(beta), p(mean), p(var), eps, out);
    }
    at_zero
}
