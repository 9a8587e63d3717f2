//! Static planning: from a fused [`Program`] and a batch size to a list of kernel
//! calls on one preallocated arena.
//!
//! - Concatenation is planned in place: each input's producer writes straight into
//!   its channel slice of the concat output (nested concats resolve to the
//!   outermost buffer). An input that cannot be placed (a value feeding two
//!   concats, the graph input, a blocked-layout slice not on a 16-channel boundary)
//!   gets a copy step instead; the Inception family never needs one.
//! - Every remaining buffer (a "root") lives from its first write to its last read;
//!   roots whose lifetimes overlap get disjoint offsets, others share memory
//!   (greedy by size, largest first).
//! - On several threads every root is split into bands of rows, one per thread
//!   (see [`incept_kernels::bands`]): band `t` of every root lives in arena `t`,
//!   at the root's offset, and thread `t` computes band `t` of every step's
//!   output, so that each thread writes only its own arena.

mod lower;
mod store;

pub use lower::{Fold, Kernel, Packing, Program, Step, TensorId, TensorRecipe, TensorRole, winograd_for};
pub use store::{SharedBytes, Source, TensorStore};

use incept_kernels::bands::MAX_BANDS;
use incept_kernels::conv::{conv2d_bands_scratch_len, conv2d_image_scratch_len};
use incept_kernels::winograd::{Scheme, winograd_scratch_len};
use incept_kernels::{BLOCK, Dims, Layout, RowSplit};

use crate::error::{Error, Result};
use crate::graph::ValueId;

/// Where one value lives: band `t` of image `n` occupies
/// [`band_range(n, t)`](Self::band_range) of arena `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    /// Offset of image 0 of the root buffer (the value, or the concatenation it is
    /// a slice of) in every arena, in `f32`.
    pub offset: usize,
    /// Distance between consecutive images (the root buffer's largest band).
    pub image_stride: usize,
    /// The value's first channel within its root (a multiple of the layout's block).
    pub c0: usize,
    /// Shape of one image.
    pub dims: Dims,
    /// Its layout: the plan's, or NCHW for a network input that only convolutions
    /// read (see [`Plan::new`]).
    pub layout: Layout,
    /// Its bands (its root's).
    pub split: RowSplit,
}

impl View {
    /// The range of band `t` of image `n` in arena `t`.
    pub fn band_range(&self, n: usize, t: usize) -> std::ops::Range<usize> {
        let d = self.split.band_dims(self.dims, t);
        let start = self.offset + n * self.image_stride + self.c0 * d.h * d.w;
        start..start + self.layout.image_len(d)
    }

    /// The arena range of image `n` of a value in one band.
    pub fn range(&self, n: usize) -> std::ops::Range<usize> {
        assert_eq!(self.split.bands(), 1, "range of a value in bands");
        self.band_range(n, 0)
    }
}

/// What a planned step does.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Copy the caller's NCHW input into the arena.
    Input,
    /// Copy the result from the arena into the caller's NCHW output.
    Output,
    /// Copy a concat input that could not be placed in its slice into the concat
    /// output. The output view covers just the 16-channel blocks the input's
    /// channels fall in (so it never overlaps what the copy reads, even when the
    /// source lives elsewhere in the same concat); `c0` is the first channel written
    /// within that view.
    Copy {
        /// First channel written, within the output view.
        c0: usize,
    },
    /// Run a fused kernel.
    Kernel(Kernel),
}

/// One step of the plan: an action on arena views.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedStep {
    /// What to do.
    pub action: Action,
    /// Views read (empty for `Input`).
    pub inputs: Vec<View>,
    /// View written (for `Output`, the value read).
    pub output: View,
    /// Scratch the kernel may use (a padded input copy), as a range of arena 0.
    pub scratch: std::ops::Range<usize>,
    /// Whether the kernel takes the workers' scratch (a Winograd convolution's
    /// transforms, an image convolution's rows) instead of `scratch`.
    pub worker_scratch: bool,
    /// Name, for reports and profiles.
    pub name: String,
}

impl PlannedStep {
    /// Multiply-adds per image (convolutions and linear layers).
    pub fn macs(&self) -> u64 {
        match &self.action {
            Action::Kernel(Kernel::Conv { shape, .. }) => {
                (self.output.dims.h * self.output.dims.w * shape.co * shape.ci * shape.kh * shape.kw) as u64
            }
            Action::Kernel(Kernel::Linear { .. }) => (self.output.dims.c * self.inputs[0].dims.volume()) as u64,
            _ => 0,
        }
    }

    /// A short description: the operator and, for convolutions, the window.
    pub fn kind_name(&self) -> String {
        match &self.action {
            Action::Input => "input".into(),
            Action::Output => "output".into(),
            Action::Copy { .. } => "copy".into(),
            Action::Kernel(Kernel::Conv { geom, residual, winograd, .. }) => format!(
                "conv {}x{}/{}{}{}",
                geom.kh,
                geom.kw,
                geom.stride_h,
                match winograd {
                    Some(Scheme::F4x4) => " winograd4",
                    Some(_) => " winograd",
                    None => "",
                },
                if *residual { " +residual" } else { "" }
            ),
            Action::Kernel(k) => format!("{k:?}").split(['(', ' ', '{']).next().unwrap_or("").to_lowercase(),
        }
    }
}

/// The smallest map (in pixels) whose values are split into bands of rows on
/// several threads. Banded, each thread reads all of a layer's weights instead of
/// its share of the output channels; that pays where the activations outweigh the
/// weights. Measured on inception_v3 at 2 threads, layer by layer, against the
/// split by output channels: the stem's and the 35x35 modules' layers are faster
/// in bands (most when the two vCPUs sit far apart: Conv2d_4a 1.82 -> 1.68 ms,
/// Conv2d_3b 0.22 -> 0.13 ms), the 17x17 ones 15-25% slower (1x7 and 7x1 layers
/// of 1 MB of weights on 220 KB of input).
pub const BAND_MIN_PIXELS: usize = 32 * 32;

/// Floats the workers' scratch slots are sized and aligned to: 2 MiB, a large
/// page, so that no page holds two workers' scratch. Measured on the 2-vCPU
/// machine when its vCPUs sit far apart: slots in pages of their own run
/// inception_v3 at 2 threads 2% faster than slots that share a page.
pub const WORKER_SLOT_ALIGN: usize = (2 << 20) / 4;

/// The error for a batch whose arena no address space holds.
fn too_large(batch: usize) -> Error {
    Error::Options(format!("batch {batch}: the arena would need more than {} bytes", isize::MAX))
}

/// A complete static plan for one batch size and layout.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Images per run.
    pub batch: usize,
    /// Activation layout.
    pub layout: Layout,
    /// Threads the steps' scratch is sized for.
    pub threads: usize,
    /// Arenas: one per band the values are split into (see [`View`]).
    pub bands: usize,
    /// Steps in execution order, starting with `Input` and ending with `Output`.
    pub steps: Vec<PlannedStep>,
    /// Length of each arena in `f32`.
    pub arena_len: usize,
    /// The largest total of simultaneously live buffers, in `f32`: no assignment of
    /// offsets can use less, so `arena_len - lower_bound` is the planner's waste.
    pub lower_bound: usize,
    /// Length of the workers' scratch in `f32`: a buffer apart from the arena, so
    /// that no value ever shares its lines and each worker's slot stays in that
    /// worker's cache (a line another core has read must be taken back from that
    /// core before it can be written, which is slow when the cores are far apart).
    /// One slot per thread, each a whole number of [`WORKER_SLOT_ALIGN`].
    pub worker_scratch_len: usize,
}

impl Plan {
    /// Size of all arenas in bytes.
    pub fn arena_bytes(&self) -> usize {
        self.arena_len * self.bands * 4
    }

    /// Lower bound on the size of all arenas, in bytes.
    pub fn lower_bound_bytes(&self) -> usize {
        self.lower_bound * self.bands * 4
    }

    /// Number of copy steps (zero for every model of the Inception family).
    pub fn copies(&self) -> usize {
        self.steps.iter().filter(|s| matches!(s.action, Action::Copy { .. })).count()
    }

    /// Plans `program` for `batch` images, activations in NCHW16c, with scratch for
    /// kernels spread over `threads` threads (and on several, the values of maps of
    /// at least [`BAND_MIN_PIXELS`] pixels in bands of rows).
    pub fn new(program: &Program, batch: usize, threads: usize) -> Result<Plan> {
        Plan::with_bands(program, batch, threads, BAND_MIN_PIXELS)
    }

    /// [`Plan::new`] with the values of maps of at least `band_min_pixels` pixels in
    /// bands of rows.
    pub fn with_bands(program: &Program, batch: usize, threads: usize, band_min_pixels: usize) -> Result<Plan> {
        let layout = Layout::Nchw16c;
        if batch == 0 {
            return Err(Error::Options("batch size must be at least 1".into()));
        }
        if threads == 0 {
            return Err(Error::Options("threads must be at least 1".into()));
        }
        let g = &program.graph;
        let nv = g.values.len();
        // A network input of one block (an RGB image) that only direct convolutions
        // read stays NCHW in the arena: they expand it row by row
        // (`conv2d_image_par`) instead of reading a copy 16/3 times its size.
        let image_input = g.dims(g.input).c <= BLOCK
            && g.input != g.output
            && program.steps.iter().any(|s| s.inputs.contains(&g.input))
            && program.steps.iter().all(|s| {
                !s.inputs.contains(&g.input)
                    || (matches!(s.kernel, Kernel::Conv { winograd: None, .. })
                        && s.inputs[0] == g.input
                        && !s.inputs[1..].contains(&g.input))
            });
        let layout_of = |v: ValueId| if image_input && v == g.input { Layout::Nchw } else { layout };
        let bands = if threads > 1 { threads.min(MAX_BANDS) } else { 1 };

        // 1. Concat in place: parent[v] = (container, first channel within it).
        let mut parent: Vec<Option<(ValueId, usize)>> = vec![None; nv];
        // Per step: the values copied into a concat output (inputs that could not be placed).
        let mut copies: Vec<Vec<(ValueId, usize)>> = vec![Vec::new(); program.steps.len()];
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
        let root_of = |mut v: ValueId| {
            let mut off = 0;
            while let Some((p, o)) = parent[v.0] {
                off += o;
                v = p;
            }
            (v, off)
        };

        // Bands: a root of a large map in `bands` bands of rows, others (and one a
        // kernel needs whole: a fully connected layer on a map) in one, and then in
        // one wherever it shares a step with such a root whose bands it must match
        // (elementwise operators, a residual, a copy into a concatenation).
        let mut whole: Vec<bool> =
            (0..nv).map(|v| g.dims(ValueId(v)).h * g.dims(ValueId(v)).w < band_min_pixels).collect();
        for s in &program.steps {
            if matches!(s.kernel, Kernel::Linear { .. }) && g.dims(s.inputs[0]).h * g.dims(s.inputs[0]).w > 1 {
                whole[root_of(s.inputs[0]).0.0] = true;
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
                if group.iter().any(|&v| whole[root_of(v).0.0]) {
                    for &v in group {
                        changed |= !std::mem::replace(&mut whole[root_of(v).0.0], true);
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let split_of = |v: ValueId| {
            let r = root_of(v).0;
            RowSplit::even(g.dims(r).h, if whole[r.0] { 1 } else { bands })
        };
        // A root's largest band: each arena holds that much per image.
        let image_len = |v: ValueId| {
            let split = split_of(v);
            (0..split.bands()).map(|t| layout_of(v).image_len(split.band_dims(g.dims(v), t))).max().unwrap_or(0)
        };

        // 2. The step list over values, in order: Input, kernels and copies, Output.
        struct Use {
            action: Action,
            inputs: Vec<ValueId>,
            output: ValueId,
            name: String,
            scratch: usize,
            /// Scratch split into one slot per worker (kept apart from everything else).
            worker_scratch: usize,
        }
        let io = |action, v: ValueId, name: &str| Use {
            action,
            inputs: vec![],
            output: v,
            name: name.into(),
            scratch: 0,
            worker_scratch: 0,
        };
        let mut uses = vec![io(Action::Input, g.input, "input")];
        for (i, s) in program.steps.iter().enumerate() {
            if s.kernel == Kernel::Concat {
                // The copied inputs land in a view of the concat output at their channel offset.
                for &(v, c0) in &copies[i] {
                    uses.push(Use {
                        action: Action::Copy { c0 },
                        inputs: vec![v],
                        output: s.output,
                        name: format!("copy {} -> {}@{c0}", g.values[v.0].name, g.values[s.output.0].name),
                        scratch: 0,
                        worker_scratch: 0,
                    });
                }
                continue;
            }
            let (scratch, worker_scratch) = match &s.kernel {
                Kernel::Conv { geom, winograd: Some(scheme), .. } => {
                    (0, winograd_scratch_len(g.dims(s.inputs[0]), geom, *scheme, threads))
                }
                Kernel::Conv { geom, .. } if layout_of(s.inputs[0]) == Layout::Nchw => {
                    (0, conv2d_image_scratch_len(g.dims(s.inputs[0]), geom, threads))
                }
                Kernel::Conv { geom, .. } => {
                    let (input, splits) = (g.dims(s.inputs[0]), (split_of(s.inputs[0]), split_of(s.output)));
                    let (own, per_thread) = conv2d_bands_scratch_len(input, splits.0, geom, splits.1);
                    (own, per_thread * threads)
                }
                _ => (0, 0),
            };
            uses.push(Use {
                action: Action::Kernel(s.kernel.clone()),
                inputs: s.inputs.clone(),
                output: s.output,
                name: s.name.clone(),
                scratch,
                worker_scratch,
            });
        }
        uses.push(io(Action::Output, g.output, "output"));

        // 3. Buffers: one per root value (`0..nv`), living from the first write to the
        // last read of any value stored in it, and one per step's scratch (`nv + t`),
        // living during that step only (it serves the images one after another). The
        // workers' scratch is a buffer of its own.
        let nb = nv + uses.len();
        let mut first = vec![usize::MAX; nb];
        let mut last = vec![0; nb];
        let mut sizes = vec![0; nb];
        let worker_slot = uses.iter().map(|u| u.worker_scratch).max().unwrap_or(0).div_ceil(threads);
        let worker_scratch_len =
            threads.checked_mul(worker_slot.next_multiple_of(WORKER_SLOT_ALIGN)).ok_or_else(|| {
                Error::Options(format!("{threads} threads: their scratch would overflow the address space"))
            })?;
        for (t, u) in uses.iter().enumerate() {
            for &v in u.inputs.iter().chain([&u.output]) {
                let r = root_of(v).0;
                first[r.0] = first[r.0].min(t);
                last[r.0] = last[r.0].max(t);
                sizes[r.0] = batch.checked_mul(image_len(r)).ok_or_else(|| too_large(batch))?;
            }
            if u.scratch > 0 {
                (first[nv + t], last[nv + t], sizes[nv + t]) = (t, t, u.scratch);
            }
        }
        // No arena is larger than all buffers side by side: if that fits the address
        // space, no offset below overflows.
        sizes
            .iter()
            .try_fold(0usize, |sum, s| sum.checked_add(s.checked_next_multiple_of(BLOCK)?))
            .and_then(|floats| floats.checked_mul(4 * bands))
            .filter(|&bytes| bytes <= isize::MAX as usize)
            .ok_or_else(|| too_large(batch))?;
        let roots: Vec<usize> = (0..nb).filter(|&r| first[r] != usize::MAX).collect();
        let size = |r: usize| sizes[r].next_multiple_of(BLOCK);
        let overlaps = |a: usize, b: usize| first[a] <= last[b] && first[b] <= last[a];

        // 4. Offsets: place roots one by one at the lowest offset clear of every placed
        // root alive at the same time. The order matters and no single one wins
        // everywhere, so try a few (largest first, longest-lived first, earliest
        // first) and keep the smallest arena.
        let place = |order: &[usize]| {
            let mut offset = vec![0; nb];
            let mut placed: Vec<usize> = Vec::with_capacity(order.len());
            for &r in order {
                let mut busy: Vec<(usize, usize)> =
                    placed.iter().filter(|&&p| overlaps(p, r)).map(|&p| (offset[p], offset[p] + size(p))).collect();
                busy.sort_unstable();
                let mut at = 0;
                for (s, e) in busy {
                    if at + size(r) <= s {
                        break;
                    }
                    at = at.max(e);
                }
                offset[r] = at;
                placed.push(r);
            }
            let len = roots.iter().map(|&r| offset[r] + size(r)).max().unwrap_or(0);
            (len, offset)
        };
        use std::cmp::Reverse;
        let (mut by_size, mut by_life, mut by_start) = (roots.clone(), roots.clone(), roots.clone());
        by_size.sort_by_key(|&r| (Reverse(size(r)), first[r]));
        by_life.sort_by_key(|&r| (Reverse(last[r] - first[r]), Reverse(size(r))));
        by_start.sort_by_key(|&r| (first[r], Reverse(size(r))));
        let (arena_len, offset) = [by_size, by_life, by_start]
            .iter()
            .map(|order| place(order))
            .min_by_key(|(len, _)| *len)
            .expect("at least one order");
        let lower_bound = (0..uses.len())
            .map(|t| roots.iter().filter(|&&r| first[r] <= t && t <= last[r]).map(|&r| size(r)).sum::<usize>())
            .max()
            .unwrap_or(0);

        // 5. Views.
        let view = |v: ValueId| {
            let (r, c0) = root_of(v);
            let (image_stride, split) = (image_len(r), split_of(r));
            View { offset: offset[r.0], image_stride, c0, dims: g.dims(v), layout: layout_of(r), split }
        };
        let steps = uses
            .into_iter()
            .enumerate()
            .map(|(t, u)| {
                let (output, action) = match u.action {
                    Action::Copy { c0 } => copy_target(layout, view(u.output), g.dims(u.inputs[0]).c, c0),
                    action => (view(u.output), action),
                };
                PlannedStep {
                    inputs: u.inputs.iter().map(|&v| view(v)).collect(),
                    output,
                    scratch: offset[nv + t]..offset[nv + t] + u.scratch,
                    worker_scratch: u.worker_scratch > 0,
                    action,
                    name: u.name,
                }
            })
            .collect();
        Ok(Plan { batch, layout, threads, bands, steps, arena_len, lower_bound, worker_scratch_len })
    }
}

/// The part of concat view `whole` that channels `c0..c0 + c` occupy: from the
/// start of the block holding channel `c0` to the end of the block holding the last
/// channel (or to the end of the concat). Returns that view and the copy action
/// with `c0` relative to it.
fn copy_target(layout: Layout, whole: View, c: usize, c0: usize) -> (View, Action) {
    let (first, end) = (c0 - c0 % layout.block(), (c0 + c).next_multiple_of(layout.block()).min(whole.dims.c));
    let dims = Dims::new(end - first, whole.dims.h, whole.dims.w);
    (View { c0: whole.c0 + first, dims, ..whole }, Action::Copy { c0: c0 - first })
}
