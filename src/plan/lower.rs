//! Lowering: graph -> program. Folds BatchNorm into the preceding convolution or
//! linear layer, fuses ReLU and Inception-ResNet's scaled shortcut into the
//! producer's store, and copies the weights the steps need.

use incept_kernels::pack::{ConvShape, pack_bias, pack_conv_weights};
use incept_kernels::{Activation, AlignedVec, ConvGeometry, PoolGeometry};

use crate::error::Result;
use crate::graph::{Graph, Node, Op, ParamId, ValueId};
use crate::weights::Weights;

/// Index of a tensor in [`Program::tensors`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorId(pub usize);

/// An operator after fusion.
#[derive(Clone, Debug, PartialEq)]
pub enum Kernel {
    /// `act(conv(x) + bias [+ residual])`, BatchNorm and residual scale folded.
    Conv {
        /// Weights, packed for the blocked kernels (see `incept_kernels::pack`).
        weight: TensorId,
        /// Bias padded to whole blocks, zeros when the layer had none.
        bias: TensorId,
        /// Shape of the weights.
        shape: ConvShape,
        /// Window.
        geom: ConvGeometry,
        /// Fused activation.
        act: Activation,
        /// Whether the second input is a shortcut added before the activation.
        residual: bool,
    },
    /// `act(W x + bias)`.
    Linear {
        /// `[out, in]`.
        weight: TensorId,
        /// `[out]`.
        bias: TensorId,
        /// Fused activation.
        act: Activation,
    },
    /// A BatchNorm with no layer to fold into.
    BatchNorm {
        /// Scale, shift, mean, variance.
        params: [TensorId; 4],
        /// Epsilon.
        eps: f32,
    },
    /// `max(x, 0)`.
    Relu,
    /// Max pooling.
    MaxPool(PoolGeometry),
    /// Average pooling.
    AvgPool(PoolGeometry, bool),
    /// Global average pooling.
    GlobalAvgPool,
    /// Channel concatenation; the planner turns it into aliasing (or copies).
    Concat,
    /// `act(x + scale * y)` when it could not be fused into a convolution.
    ResidualAdd(f32, Activation),
    /// Local response normalisation.
    Lrn {
        /// Window.
        size: usize,
        /// Scale.
        alpha: f32,
        /// Exponent.
        beta: f32,
        /// Offset.
        k: f32,
    },
    /// Softmax over channels.
    Softmax,
}

/// A fused operator with its input and output values.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// What to compute.
    pub kernel: Kernel,
    /// Inputs (graph value ids); for a residual convolution, `[x, shortcut]`.
    pub inputs: Vec<ValueId>,
    /// Output value.
    pub output: ValueId,
    /// The graph node names fused into this step, for reports.
    pub name: String,
}

/// A graph after fusion, with the weights its steps read. Batch-independent and
/// shared by every session of a model.
#[derive(Debug)]
pub struct Program {
    /// The graph it came from (for shapes and names).
    pub graph: Graph,
    /// Steps in execution order.
    pub steps: Vec<Step>,
    /// Folded weights and biases, 64-byte aligned; convolutions' packed.
    pub tensors: Vec<AlignedVec>,
}

impl Program {
    /// Lowers `graph` with `weights` (checked against the graph first).
    pub fn lower(graph: &Graph, weights: &Weights) -> Result<Program> {
        weights.check(graph)?;
        let get = |p: ParamId| weights.get(&graph.params[p.0].name).expect("checked").data.clone();
        let consumers = graph.consumers();
        // A value can be fused away only if exactly one node reads it and it is not the output.
        let private = |v: ValueId| consumers[v.0].len() == 1 && v != graph.output;
        let mut tensors: Vec<Vec<f32>> = Vec::new();
        let mut steps: Vec<Option<Step>> = Vec::with_capacity(graph.nodes.len());
        // Which entry of `steps` currently produces each value.
        let mut producer: Vec<Option<usize>> = vec![None; graph.values.len()];

        for node in &graph.nodes {
            let x = node.inputs[0];
            // A convolution or linear layer with nothing fused after it yet, read only here.
            let fusable = producer[x.0].filter(|&p| {
                private(x)
                    && matches!(
                        steps[p].as_ref().map(|s| &s.kernel),
                        Some(
                            Kernel::Conv { act: Activation::None, residual: false, .. }
                                | Kernel::Linear { act: Activation::None, .. }
                        )
                    )
            });
            let linear_producer = fusable.is_some();
            let fused = match &node.op {
                Op::BatchNorm { gamma, beta, mean, var, eps } if linear_producer => {
                    let (g, b, m, v) = (get(*gamma), get(*beta), get(*mean), get(*var));
                    let s = take_for_fusion(&mut steps, fusable.unwrap(), node);
                    let (w, bias) = weight_and_bias(&s.kernel);
                    let row = tensors[w.0].len() / g.len();
                    for o in 0..g.len() {
                        let scale = g[o] / (v[o] + eps).sqrt();
                        tensors[w.0][o * row..(o + 1) * row].iter_mut().for_each(|x| *x *= scale);
                        tensors[bias.0][o] = (tensors[bias.0][o] - m[o]) * scale + b[o];
                    }
                    Some(s)
                }
                Op::Relu if linear_producer => {
                    let mut s = take_for_fusion(&mut steps, fusable.unwrap(), node);
                    if let Kernel::Conv { act, .. } | Kernel::Linear { act, .. } = &mut s.kernel {
                        *act = Activation::Relu;
                    }
                    Some(s)
                }
                // The shortcut add fuses into the convolution producing its branch.
                &Op::ResidualAdd { scale, act } => {
                    let (shortcut, y) = (node.inputs[0], node.inputs[1]);
                    let conv = producer[y.0].filter(|&p| {
                        private(y)
                            && shortcut != y
                            && matches!(
                                steps[p].as_ref().map(|s| &s.kernel),
                                Some(Kernel::Conv { act: Activation::None, residual: false, .. })
                            )
                    });
                    conv.map(|p| {
                        let mut s = take_for_fusion(&mut steps, p, node);
                        let (w, bias) = weight_and_bias(&s.kernel);
                        for t in [w, bias] {
                            tensors[t.0].iter_mut().for_each(|x| *x *= scale);
                        }
                        if let Kernel::Conv { act: a, residual, .. } = &mut s.kernel {
                            *a = act;
                            *residual = true;
                        }
                        s.inputs.push(shortcut);
                        s
                    })
                }
                _ => None,
            };
            let step = match fused {
                Some(s) => s,
                None => Step {
                    kernel: kernel_for(graph, node, &get, &mut tensors),
                    inputs: node.inputs.clone(),
                    output: node.output,
                    name: node.name.clone(),
                },
            };
            steps.push(Some(step));
            producer[node.output.0] = Some(steps.len() - 1);
        }
        let steps: Vec<Step> = steps.into_iter().flatten().collect();
        // Pack convolution weights for the blocked kernels, now that folding is done.
        for s in &steps {
            if let Kernel::Conv { weight, bias, shape, .. } = s.kernel {
                let mut packed = Vec::with_capacity(shape.packed_len());
                pack_conv_weights(&tensors[weight.0], shape, &mut packed);
                tensors[weight.0] = packed;
                let mut padded = Vec::with_capacity(shape.packed_bias_len());
                pack_bias(&tensors[bias.0], &mut padded);
                tensors[bias.0] = padded;
            }
        }
        let tensors = tensors.iter().map(|t| AlignedVec::from_slice(t)).collect();
        Ok(Program { graph: graph.clone(), steps, tensors })
    }
}

/// Takes the step at `p` out so it can absorb `node`; it moves to `node`'s position,
/// which comes after everything either of them reads.
fn take_for_fusion(steps: &mut [Option<Step>], p: usize, node: &Node) -> Step {
    let mut s = steps[p].take().expect("producer present");
    s.name = format!("{}+{}", s.name, node.name);
    s.output = node.output;
    s
}

fn push(tensors: &mut Vec<Vec<f32>>, t: Vec<f32>) -> TensorId {
    tensors.push(t);
    TensorId(tensors.len() - 1)
}

/// The unfused kernel for `node`, with copies of its weights.
fn kernel_for(graph: &Graph, node: &Node, get: &dyn Fn(ParamId) -> Vec<f32>, t: &mut Vec<Vec<f32>>) -> Kernel {
    let out_c = graph.dims(node.output).c;
    let bias_or_zeros = |b: Option<ParamId>| b.map_or_else(|| vec![0.0; out_c], get);
    match &node.op {
        Op::Conv { weight, bias, geom } => Kernel::Conv {
            weight: push(t, get(*weight)),
            bias: push(t, bias_or_zeros(*bias)),
            shape: ConvShape { co: out_c, ci: graph.dims(node.inputs[0]).c, kh: geom.kh, kw: geom.kw },
            geom: *geom,
            act: Activation::None,
            residual: false,
        },
        Op::Linear { weight, bias } => {
            Kernel::Linear { weight: push(t, get(*weight)), bias: push(t, bias_or_zeros(*bias)), act: Activation::None }
        }
        Op::BatchNorm { gamma, beta, mean, var, eps } => Kernel::BatchNorm {
            params: [push(t, get(*gamma)), push(t, get(*beta)), push(t, get(*mean)), push(t, get(*var))],
            eps: *eps,
        },
        Op::Relu => Kernel::Relu,
        Op::MaxPool(g) => Kernel::MaxPool(*g),
        Op::AvgPool { geom, count_include_pad } => Kernel::AvgPool(*geom, *count_include_pad),
        Op::GlobalAvgPool => Kernel::GlobalAvgPool,
        Op::Concat => Kernel::Concat,
        Op::ResidualAdd { scale, act } => Kernel::ResidualAdd(*scale, *act),
        Op::Lrn { size, alpha, beta, k } => Kernel::Lrn { size: *size, alpha: *alpha, beta: *beta, k: *k },
        Op::Softmax => Kernel::Softmax,
    }
}

fn weight_and_bias(k: &Kernel) -> (TensorId, TensorId) {
    match k {
        Kernel::Conv { weight, bias, .. } | Kernel::Linear { weight, bias, .. } => (*weight, *bias),
        _ => unreachable!("only convolutions and linear layers carry weights"),
    }
}
