//! A reference evaluation of a program: its steps on the reference kernels, one NCHW
//! buffer per value, the tensors computed from the weights in their plain layout. It
//! is slow and allocates freely; it is the oracle for the planned executor at BF16
//! (tests) and tells the error sources of BF16 apart (`examples/bf16_error_sources.rs`).

use incept_kernels::bf16::reference as bf16_reference;
use incept_kernels::bf16::terms::Term;
use incept_kernels::bf16::{Bf16Terms, bf16};
use incept_kernels::{Image, ImageMut, Layout, reference as k};

use super::{Algorithm, Kernel, Program, TensorId};
use crate::error::{Error, Result};
use crate::weights::Weights;

/// Which operands of the program's BF16 convolutions are rounded to BF16 (round to
/// nearest even), or at BF16x3 split (each the sum of its two BF16 terms);
/// everything else is float32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bf16Operands {
    /// The weights.
    pub weights: bool,
    /// The input activations.
    pub activations: bool,
}

impl Bf16Operands {
    /// Both, as the BF16 kernels do.
    pub const BOTH: Bf16Operands = Bf16Operands { weights: true, activations: true };
}

impl Program {
    /// Evaluates the program on one NCHW image with the reference kernels, its BF16
    /// convolutions on the `rounded` operands (the kernels'
    /// `incept_kernels::bf16::reference` when both are); `weights` are the graph's
    /// (checked against it).
    pub fn evaluate_reference(&self, weights: &Weights, input: &[f32], rounded: Bf16Operands) -> Result<Vec<f32>> {
        let g = &self.graph;
        weights.check(g)?;
        if input.len() != g.dims(g.input).volume() {
            return Err(Error::BufferSize { what: "input", got: input.len(), expected: g.dims(g.input).volume() });
        }
        let plain = |id: TensorId| self.recipes[id.0].compute_plain(g, weights);
        // An operand as a BF16 convolution of `terms` sees it: rounded, or hi + lo.
        let round = |v: Vec<f32>, terms: Option<Bf16Terms>| match terms {
            None => v,
            Some(Bf16Terms::Rounded) => v.into_iter().map(|x| bf16::from_f32(x).to_f32()).collect(),
            Some(Bf16Terms::Split3) => {
                v.into_iter().map(|x| Term::Hi.of(x).to_f32() + Term::Lo.of(x).to_f32()).collect()
            }
        };
        let nchw = Layout::Nchw;
        let mut vals: Vec<Option<Vec<f32>>> = vec![None; g.values.len()];
        vals[g.input.0] = Some(input.to_vec());
        for s in &self.steps {
            let d = g.dims(s.output);
            let mut out = vec![0.0; d.volume()];
            let img = |i: usize| {
                let v = s.inputs[i];
                Image::new(vals[v.0].as_deref().expect("steps in order"), g.dims(v), nchw)
            };
            let mut o = ImageMut::new(&mut out, d, nchw);
            match &s.kernel {
                Kernel::Conv { weight, bias, geom, act, residual, algorithm, .. } => {
                    let terms = algorithm.precision().bf16_terms();
                    let (b, r) = (plain(*bias), residual.then(|| img(1)));
                    if *algorithm == Algorithm::Bf16FromImage && rounded == Bf16Operands::BOTH {
                        // The image kind's own order (the kernels', bit for bit).
                        bf16_reference::conv2d_image(img(0), &plain(*weight), &b, geom, r, *act, &mut o)
                    } else if let Some(terms) = terms.filter(|_| rounded == Bf16Operands::BOTH) {
                        bf16_reference::conv2d_terms(img(0), &plain(*weight), Some(&b), geom, r, *act, &mut o, terms)
                    } else {
                        let w = round(plain(*weight), terms.filter(|_| rounded.weights));
                        let x = round(img(0).data.to_vec(), terms.filter(|_| rounded.activations));
                        k::conv2d(Image::new(&x, g.dims(s.inputs[0]), nchw), &w, Some(&b), geom, r, *act, &mut o)
                    }
                }
                Kernel::Linear { weight, bias, act } => {
                    k::linear(img(0), &plain(*weight), Some(&plain(*bias)), *act, &mut o)
                }
                Kernel::BatchNorm { params: [ga, be, m, v], eps } => {
                    k::batch_norm(img(0), &plain(*ga), &plain(*be), &plain(*m), &plain(*v), *eps, &mut o)
                }
                Kernel::Relu => k::relu(img(0), &mut o),
                Kernel::MaxPool(geom) => k::max_pool(img(0), geom, &mut o),
                Kernel::AvgPool(geom, count_include_pad, pad, act) => {
                    match pad {
                        Some(pad) => k::avg_pool_padded(img(0), geom, &plain(*pad)[..o.dims.c], &mut o),
                        None => k::avg_pool(img(0), geom, *count_include_pad, &mut o),
                    }
                    o.data.iter_mut().for_each(|v| *v = act.apply(*v));
                }
                Kernel::GlobalAvgPool => k::global_avg_pool(img(0), &mut o),
                Kernel::Concat => {
                    let mut at = 0;
                    for i in 0..s.inputs.len() {
                        let src = img(i).data;
                        out[at..at + src.len()].copy_from_slice(src);
                        at += src.len();
                    }
                }
                Kernel::ResidualAdd(scale, act) => k::residual_add(img(0), img(1), *scale, *act, &mut o),
                Kernel::Lrn { size, alpha, beta, k: bias } => k::lrn(img(0), *size, *alpha, *beta, *bias, &mut o),
                Kernel::Softmax => k::softmax(img(0), &mut o),
                Kernel::Pointwise(f) => k::pointwise(img(0), |v| f.apply(v), &mut o),
            }
            vals[s.output.0] = Some(out);
        }
        Ok(vals[g.output.0].take().expect("output computed"))
    }
}
