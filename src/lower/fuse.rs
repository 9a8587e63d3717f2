//! Fusion: which steps run, and how each of their tensors is made.

use incept_kernels::pack::ConvShape;
use incept_kernels::{Activation, BLOCK};

use super::algorithm::Algorithm;
use super::recipe::{Fold, TensorId, TensorRecipe, TensorRole};
use super::step::{Kernel, Step};
use crate::graph::{Graph, Node, Op, ParamId, ValueId};

/// Fusion: decides the steps and how each of their tensors is computed.
pub(super) fn fuse(graph: &Graph) -> (Vec<Step>, Vec<TensorRecipe>) {
    let consumers = graph.consumers();
    // A value can be fused away only if exactly one node reads it and it is not the output.
    let private = |v: ValueId| consumers[v.0].len() == 1 && v != graph.output;
    let mut recipes: Vec<TensorRecipe> = Vec::new();
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
        // An average pool with no activation yet, read only here: a ReLU fuses into it.
        let pool = producer[x.0].filter(|&p| {
            private(x)
                && matches!(steps[p].as_ref().map(|s| &s.kernel), Some(Kernel::AvgPool(_, _, _, Activation::None)))
        });
        let fused = match (&node.op, fusable.or(pool)) {
            (&Op::BatchNorm { gamma, beta, mean, var, eps }, Some(p)) if fusable.is_some() => {
                let s = take_for_fusion(&mut steps, p, node);
                let (w, bias) = weight_and_bias(&s.kernel);
                for t in [w, bias] {
                    recipes[t.0].folds.push(Fold::BatchNorm { gamma, beta, mean, var, eps });
                }
                Some(s)
            }
            (Op::Relu, Some(p)) => {
                let mut s = take_for_fusion(&mut steps, p, node);
                if let Kernel::Conv { act, .. } | Kernel::Linear { act, .. } | Kernel::AvgPool(_, _, _, act) =
                    &mut s.kernel
                {
                    *act = Activation::Relu;
                }
                Some(s)
            }
            // The shortcut add fuses into the convolution producing its branch.
            (&Op::ResidualAdd { scale, act }, _) => {
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
                        recipes[t.0].folds.push(Fold::Scale(scale));
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
            None => {
                let mut kernel = kernel_for(graph, node, &mut recipes);
                if let (Op::AvgPool { pad_with_bias: true, .. }, Kernel::AvgPool(_, _, pad, _)) =
                    (&node.op, &mut kernel)
                {
                    *pad = Some(projection_bias(&steps, producer[x.0]));
                }
                Step { kernel, inputs: node.inputs.clone(), output: node.output, name: node.name.clone() }
            }
        };
        steps.push(Some(step));
        producer[node.output.0] = Some(steps.len() - 1);
    }
    let mut steps: Vec<Step> = steps.into_iter().flatten().collect();
    read_input_as_image(graph, &mut steps, &mut recipes);
    (steps, recipes)
}

/// Gives the convolutions reading the network input [`Algorithm::FromImage`] when
/// they can all read it as an NCHW image: an input of one 16-channel block (an RGB
/// image), read only by direct convolutions, as their main input. Their weights
/// become [`TensorRole::ConvWeightImage`], the image kernel's packing.
fn read_input_as_image(graph: &Graph, steps: &mut [Step], recipes: &mut [TensorRecipe]) {
    let input = graph.input;
    let mut readers = steps.iter().filter(|s| s.inputs.contains(&input)).peekable();
    let image = graph.dims(input).c <= BLOCK
        && input != graph.output
        && readers.peek().is_some()
        && readers.all(|s| {
            matches!(s.kernel, Kernel::Conv { algorithm: Algorithm::Direct, .. })
                && s.inputs[0] == input
                && !s.inputs[1..].contains(&input)
        });
    if !image {
        return;
    }
    for s in steps.iter_mut().filter(|s| s.inputs[0] == input) {
        if let Kernel::Conv { algorithm, weight, .. } = &mut s.kernel {
            *algorithm = Algorithm::FromImage;
            let role = &mut recipes[weight.0].role;
            if let TensorRole::ConvWeight { param, shape } = *role {
                *role = TensorRole::ConvWeightImage { param, shape };
            }
        }
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

fn push(recipes: &mut Vec<TensorRecipe>, name: String, role: TensorRole) -> TensorId {
    recipes.push(TensorRecipe { name, role, folds: Vec::new() });
    TensorId(recipes.len() - 1)
}

/// The unfused kernel for `node`, with recipes for its tensors.
fn kernel_for(graph: &Graph, node: &Node, t: &mut Vec<TensorRecipe>) -> Kernel {
    let out_c = graph.dims(node.output).c;
    let name = |p: ParamId| graph.params[p.0].name.clone();
    let bias_name = |b: Option<ParamId>| b.map_or_else(|| format!("{}.bias", node.name), name);
    match &node.op {
        &Op::Conv { weight, bias, geom } => {
            let shape = ConvShape { co: out_c, ci: graph.dims(node.inputs[0]).c, kh: geom.kh, kw: geom.kw };
            let out = graph.dims(node.output);
            let algorithm = Algorithm::for_conv(&geom, shape.ci, shape.co, (out.h, out.w));
            let role = match algorithm {
                Algorithm::Winograd(scheme) => TensorRole::WinogradWeight { param: weight, shape, scheme },
                Algorithm::Direct => TensorRole::ConvWeight { param: weight, shape },
                Algorithm::FromImage => TensorRole::ConvWeightImage { param: weight, shape },
                Algorithm::Bf16Direct => TensorRole::ConvWeightBf16 { param: weight, shape },
                Algorithm::Bf16x3Direct => TensorRole::ConvWeightBf16x3 { param: weight, shape },
                Algorithm::Bf16FromImage => TensorRole::ConvWeightBf16Image { param: weight, shape },
            };
            Kernel::Conv {
                weight: push(t, name(weight), role),
                bias: push(t, bias_name(bias), TensorRole::ConvBias { param: bias, co: out_c }),
                shape,
                geom,
                act: Activation::None,
                residual: false,
                algorithm,
            }
        }
        &Op::Linear { weight, bias } => Kernel::Linear {
            weight: push(t, name(weight), TensorRole::LinearWeight(weight)),
            bias: push(t, bias_name(bias), TensorRole::LinearBias { param: bias, len: out_c }),
            act: Activation::None,
        },
        &Op::BatchNorm { gamma, beta, mean, var, eps } => {
            Kernel::BatchNorm { params: [gamma, beta, mean, var].map(|p| push(t, name(p), TensorRole::Param(p))), eps }
        }
        Op::Relu => Kernel::Relu,
        Op::MaxPool(g) => Kernel::MaxPool(*g),
        Op::AvgPool { geom, count_include_pad, .. } => {
            Kernel::AvgPool(*geom, *count_include_pad, None, Activation::None)
        }
        Op::GlobalAvgPool => Kernel::GlobalAvgPool,
        Op::Concat => Kernel::Concat,
        Op::ResidualAdd { scale, act } => Kernel::ResidualAdd(*scale, *act),
        Op::Lrn { size, alpha, beta, k } => Kernel::Lrn { size: *size, alpha: *alpha, beta: *beta, k: *k },
        Op::Softmax => Kernel::Softmax,
        Op::Pointwise(f) => Kernel::Pointwise(*f),
    }
}

/// The bias of the convolution step `p`, its BatchNorms folded: what it gives an
/// all-zero input, which a pool padded with bias reads (the graph builder checks
/// that such a pool reads a convolution whose BatchNorms fold into it).
fn projection_bias(steps: &[Option<Step>], p: Option<usize>) -> TensorId {
    match p.and_then(|p| steps[p].as_ref()).map(|s| &s.kernel) {
        Some(&Kernel::Conv { bias, act: Activation::None, residual: false, .. }) => bias,
        k => unreachable!("a pool padded with bias reads {k:?}, not a convolution"),
    }
}

fn weight_and_bias(k: &Kernel) -> (TensorId, TensorId) {
    match k {
        Kernel::Conv { weight, bias, .. } | Kernel::Linear { weight, bias, .. } => (*weight, *bias),
        _ => unreachable!("only convolutions and linear layers carry weights"),
    }
}

#[cfg(test)]
mod tests {
    use incept_kernels::PoolGeometry;
    use incept_kernels::winograd::Scheme;

    use super::*;
    use crate::graph::{ConvSpec, Dims, GraphBuilder};

    fn algorithms(graph: &Graph) -> Vec<Algorithm> {
        let conv = |s: &Step| match s.kernel {
            Kernel::Conv { algorithm, .. } => Some(algorithm),
            _ => None,
        };
        fuse(graph).0.iter().filter_map(conv).collect()
    }

    /// The convolutions reading an RGB input read it as an image, unless something
    /// else reads it too; the rest are direct or Winograd by the rule.
    #[test]
    fn each_convolution_gets_one_algorithm() {
        let mut b = GraphBuilder::new("t", Dims::new(3, 20, 20));
        let x = b.input();
        let a = b.conv(x, "a", ConvSpec::new(64, 3).pad(1));
        let c = b.conv(x, "c", ConvSpec::new(64, 1));
        let y = b.concat(&[a, c]);
        let y = b.conv(y, "w", ConvSpec::new(64, 3).pad(1));
        let g = b.finish(y).unwrap();
        let winograd = Algorithm::Winograd(Scheme::F2x2);
        assert_eq!(algorithms(&g), [Algorithm::FromImage, Algorithm::FromImage, winograd]);

        let mut b = GraphBuilder::new("t", Dims::new(3, 20, 20));
        let x = b.input();
        let a = b.conv(x, "a", ConvSpec::new(16, 3).pad(1));
        let p = b.max_pool(x, PoolGeometry::new(3, 1, 1, false));
        let g = b.concat(&[a, p]);
        let g = b.finish(g).unwrap();
        assert_eq!(algorithms(&g), [Algorithm::Direct]);
    }

    /// A ReLU fuses into the average pool before it; a BatchNorm does not (it has
    /// no weights to fold into), nor does the ReLU after that BatchNorm.
    #[test]
    fn a_relu_fuses_into_an_average_pool_and_a_batch_norm_does_not() {
        let geom = PoolGeometry::new(3, 1, 1, false);
        let kinds = |g: &Graph| fuse(g).0.into_iter().map(|s| s.kernel).collect::<Vec<_>>();
        let mut b = GraphBuilder::new("t", Dims::new(16, 8, 8));
        let p = b.avg_pool(b.input(), geom, false);
        let y = b.relu(p);
        let g = b.finish(y).unwrap();
        assert_eq!(kinds(&g), [Kernel::AvgPool(geom, false, None, Activation::Relu)]);

        let mut b = GraphBuilder::new("t", Dims::new(16, 8, 8));
        let p = b.avg_pool(b.input(), geom, true);
        let n = b.batch_norm(p, "bn", 1e-3);
        let y = b.relu(n);
        let g = b.finish(y).unwrap();
        let k = kinds(&g);
        assert_eq!(k[0], Kernel::AvgPool(geom, true, None, Activation::None));
        assert!(matches!(k[1], Kernel::BatchNorm { .. }) && k[2] == Kernel::Relu, "{k:?}");
    }
}
