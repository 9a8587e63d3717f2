//! Where each value is stored: in its own buffer or in a slice of a concatenation
//! (its root), in bands of rows or whole, and in which layout.

use incept_kernels::{Dims, Layout, RowSplit};

use super::{Action, View};
use crate::graph::{Graph, ValueId};
use crate::lower::{Kernel, Program};

/// A value and a first channel: where in a concatenation a value goes.
type Slice = (ValueId, usize);

/// The values' storage, decided before any offset is.
pub(super) struct Storage<'a> {
    graph: &'a Graph,
    /// The activations' layout.
    pub(super) layout: Layout,
    /// Whether the network input stays NCHW (see [`image_input`]).
    image_input: bool,
    /// `parent[v]`: the concatenation `v` is placed in, and its first channel there.
    parent: Vec<Option<Slice>>,
    /// Per program step: the concat inputs copied into its output instead, each
    /// with its first channel there.
    pub(super) copies: Vec<Vec<Slice>>,
    /// Per root: kept in one band.
    whole: Vec<bool>,
    /// Bands a root not kept whole is split into.
    bands: usize,
}

impl<'a> Storage<'a> {
    /// Places `program`'s concatenations and splits the roots of maps of at least
    /// `band_min_pixels` pixels into `bands` bands.
    pub(super) fn new(program: &'a Program, layout: Layout, bands: usize, band_min_pixels: usize) -> Self {
        let (parent, copies) = place_concats(program, layout);
        let mut storage = Storage {
            graph: &program.graph,
            layout,
            image_input: image_input(program),
            parent,
            copies,
            whole: Vec::new(),
            bands,
        };
        storage.whole = storage.whole_roots(program, band_min_pixels);
        storage
    }

    /// The buffer `v` is stored in (itself, or the outermost concatenation holding
    /// it) and `v`'s first channel there.
    pub(super) fn root_of(&self, mut v: ValueId) -> (ValueId, usize) {
        let mut off = 0;
        while let Some((p, o)) = self.parent[v.0] {
            off += o;
            v = p;
        }
        (v, off)
    }

    /// The shape of one image of `v`.
    pub(super) fn dims(&self, v: ValueId) -> Dims {
        self.graph.dims(v)
    }

    /// The layout `v` is stored in.
    pub(super) fn layout_of(&self, v: ValueId) -> Layout {
        if self.image_input && v == self.graph.input { Layout::Nchw } else { self.layout }
    }

    /// The bands `v` is split into (its root's).
    pub(super) fn split_of(&self, v: ValueId) -> RowSplit {
        let r = self.root_of(v).0;
        RowSplit::even(self.graph.dims(r).h, if self.whole[r.0] { 1 } else { self.bands })
    }

    /// A root's largest band: each arena holds that much of it per image.
    pub(super) fn image_len(&self, v: ValueId) -> usize {
        let split = self.split_of(v);
        let dims = self.graph.dims(v);
        (0..split.bands()).map(|t| self.layout_of(v).image_len(split.band_dims(dims, t))).max().unwrap_or(0)
    }

    /// The view of `v` when its root buffer starts at `root_offset`.
    pub(super) fn view(&self, v: ValueId, root_offset: usize) -> View {
        let (r, c0) = self.root_of(v);
        let (image_stride, split) = (self.image_len(r), self.split_of(r));
        View { offset: root_offset, image_stride, c0, dims: self.graph.dims(v), layout: self.layout_of(r), split }
    }

    /// Per root: whether it is kept in one band. A root of a large map is split into
    /// bands of rows, others (and one a kernel needs whole: a fully connected layer
    /// on a map) not, and then not wherever it shares a step with such a root whose
    /// bands it must match (elementwise operators, a residual, a copy into a
    /// concatenation).
    fn whole_roots(&self, program: &Program, band_min_pixels: usize) -> Vec<bool> {
        let g = self.graph;
        let pixels = |v: ValueId| g.dims(v).h * g.dims(v).w;
        let mut whole: Vec<bool> = (0..g.values.len()).map(|v| pixels(ValueId(v)) < band_min_pixels).collect();
        for s in &program.steps {
            if matches!(s.kernel, Kernel::Linear { .. }) && pixels(s.inputs[0]) > 1 {
                whole[self.root_of(s.inputs[0]).0.0] = true;
            }
        }
        let matched: Vec<Vec<ValueId>> = program
            .steps
            .iter()
            .filter_map(|s| match &s.kernel {
                Kernel::Conv { residual: true, .. } => Some(vec![s.inputs[1], s.output]),
                Kernel::Conv { .. } | Kernel::Linear { .. } => None,
                Kernel::MaxPool(_) | Kernel::AvgPool(..) | Kernel::GlobalAvgPool => None,
                _ => Some(s.inputs.iter().copied().chain([s.output]).collect()),
            })
            .collect();
        loop {
            let mut changed = false;
            for group in &matched {
                if group.iter().any(|&v| whole[self.root_of(v).0.0]) {
                    for &v in group {
                        changed |= !std::mem::replace(&mut whole[self.root_of(v).0.0], true);
                    }
                }
            }
            if !changed {
                return whole;
            }
        }
    }
}

/// Whether the network input stays NCHW in the arena: when lowering has its
/// readers read it as an image ([`FromImage`](crate::lower::Algorithm::FromImage),
/// whose input layout it is).
fn image_input(program: &Program) -> bool {
    let input = program.graph.input;
    program.steps.iter().any(|s| {
        s.inputs[0] == input
            && matches!(s.kernel, Kernel::Conv { algorithm, .. } if algorithm.input_layout() == Layout::Nchw)
    })
}

/// Concatenation in place: each concat input that can be is placed in its channel
/// slice of the output (returned as `parent[v] = (container, first channel)`); the
/// others are listed per step, to be copied.
fn place_concats(program: &Program, layout: Layout) -> (Vec<Option<Slice>>, Vec<Vec<Slice>>) {
    let g = &program.graph;
    let mut parent: Vec<Option<Slice>> = vec![None; g.values.len()];
    let mut copies: Vec<Vec<Slice>> = vec![Vec::new(); program.steps.len()];
    for (i, s) in program.steps.iter().enumerate() {
        if s.kernel != Kernel::Concat {
            continue;
        }
        let whole = g.dims(s.output);
        let mut c0 = 0;
        for (j, &v) in s.inputs.iter().enumerate() {
            let c = g.dims(v).c;
            let last = j + 1 == s.inputs.len();
            let offset = layout.channel_slice_offset(whole, c0);
            let fits = offset.is_some() && (last || layout.padded_channels(c) == c);
            let placeable = fits
                && parent[v.0].is_none()
                && v != g.input
                && v != g.output
                && !s.inputs[..j].contains(&v)
                && !s.inputs[j + 1..].contains(&v);
            match placeable {
                true => parent[v.0] = Some((s.output, c0)),
                false => copies[i].push((v, c0)),
            }
            c0 += c;
        }
    }
    (parent, copies)
}

/// The part of concat view `whole` that channels `c0..c0 + c` occupy: from the
/// start of the block holding channel `c0` to the end of the block holding the last
/// channel (or to the end of the concat). Returns that view and the copy action
/// with `c0` relative to it.
pub(super) fn copy_target(layout: Layout, whole: View, c: usize, c0: usize) -> (View, Action) {
    let (first, end) = (c0 - c0 % layout.block(), (c0 + c).next_multiple_of(layout.block()).min(whole.dims.c));
    let dims = Dims::new(end - first, whole.dims.h, whole.dims.w);
    (View { c0: whole.c0 + first, dims, ..whole }, Action::Copy { c0: c0 - first })
}
