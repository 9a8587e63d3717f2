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
//!   (placed greedily in a few orders, the smallest arena kept).
//! - On several threads every root is split into bands of rows, one per thread
//!   (see [`incept_kernels::bands`]): band `t` of every root lives in arena `t`,
//!   at the root's offset, and thread `t` computes band `t` of every step's
//!   output, so that each thread writes only its own arena.
//! - Layouts and scratch follow each convolution's [`Algorithm`]: the network
//!   input stays NCHW when its readers read it `FromImage`.
//!
//! The phases: `storage.rs` (concat placement, bands, layouts), then `arena.rs`
//! (the step list, the buffers' lifetimes, their offsets, the views).

mod arena;
mod storage;

use incept_kernels::bands::MAX_BANDS;
use incept_kernels::winograd::Scheme;
use incept_kernels::{Dims, Layout, RowSplit};

use crate::error::{Error, Result};
use crate::lower::{Algorithm, Kernel, Program};
use arena::{Buffers, list_uses, worker_scratch_len};
use storage::Storage;

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
    /// transforms, an image convolution's rows, a BF16 convolution's input) instead
    /// of `scratch`.
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

    /// The algorithm computing it, for a convolution.
    pub fn algorithm(&self) -> Option<Algorithm> {
        match &self.action {
            Action::Kernel(Kernel::Conv { algorithm, .. }) => Some(*algorithm),
            _ => None,
        }
    }

    /// A short description: the operator and, for convolutions, the window.
    pub fn kind_name(&self) -> String {
        match &self.action {
            Action::Input => "input".into(),
            Action::Output => "output".into(),
            Action::Copy { .. } => "copy".into(),
            Action::Kernel(Kernel::Conv { geom, residual, algorithm, .. }) => format!(
                "conv {}x{}/{}{}{}",
                geom.kh,
                geom.kw,
                geom.stride_h,
                match algorithm {
                    Algorithm::Winograd(Scheme::F4x4) => " winograd4",
                    Algorithm::Winograd(_) => " winograd",
                    Algorithm::Bf16Direct | Algorithm::Bf16FromImage => " bf16",
                    Algorithm::Bf16x3Direct => " bf16x3",
                    Algorithm::Direct | Algorithm::FromImage => "",
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
/// weights (measurements in `docs/lowering.md`).
pub const BAND_MIN_PIXELS: usize = 28 * 28;

/// Floats the workers' scratch slots are sized and aligned to: 2 MiB, a large
/// page, so that no page holds two workers' scratch (a page shared by two cores
/// slows both; see `docs/lowering.md`).
pub const WORKER_SLOT_ALIGN: usize = (2 << 20) / 4;

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
        if batch == 0 {
            return Err(Error::Options("batch size must be at least 1".into()));
        }
        if threads == 0 {
            return Err(Error::Options("threads must be at least 1".into()));
        }
        let layout = Layout::Nchw16c;
        let bands = if threads > 1 { threads.min(MAX_BANDS) } else { 1 };
        let storage = Storage::new(program, layout, bands, band_min_pixels);
        let uses = list_uses(program, &storage, threads);
        let worker_scratch_len = worker_scratch_len(&uses, threads)?;
        let buffers = Buffers::new(&uses, &storage, program.graph.values.len(), batch, bands)?;
        let (arena_len, offset) = buffers.assign_offsets();
        let lower_bound = buffers.lower_bound();
        let steps = buffers.planned_steps(uses, &storage, &offset);
        Ok(Plan { batch, layout, threads, bands, steps, arena_len, lower_bound, worker_scratch_len })
    }
}
