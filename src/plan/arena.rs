//! The arena: the step list over values, the buffers' lifetimes, and their offsets.

use std::cmp::Reverse;

use incept_kernels::BLOCK;
use incept_kernels::bf16::{conv2d_bf16_bands_scratch_len, conv2d_bf16_image_scratch_len};
use incept_kernels::conv::{conv2d_bands_scratch_len, conv2d_image_scratch_len};
use incept_kernels::winograd::winograd_scratch_len;

use super::storage::{Storage, copy_target};
use super::{Action, PlannedStep, WORKER_SLOT_ALIGN};
use crate::error::{Error, Result};
use crate::graph::ValueId;
use crate::lower::{Algorithm, Kernel, Program};

/// A step before its values have offsets.
pub(super) struct Use {
    action: Action,
    inputs: Vec<ValueId>,
    output: ValueId,
    name: String,
    /// Scratch of its own, in arena 0.
    scratch: usize,
    /// Scratch split into one slot per worker (kept apart from everything else).
    worker_scratch: usize,
}

/// The step list over values, in order: `Input`, kernels and copies, `Output`,
/// each with the scratch it needs on `threads` threads.
pub(super) fn list_uses(program: &Program, storage: &Storage, threads: usize) -> Vec<Use> {
    let g = &program.graph;
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
            for &(v, c0) in &storage.copies[i] {
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
            Kernel::Conv { geom, algorithm, .. } => {
                let input = g.dims(s.inputs[0]);
                match *algorithm {
                    Algorithm::Direct => {
                        let splits = (storage.split_of(s.inputs[0]), storage.split_of(s.output));
                        let (own, per_thread) = conv2d_bands_scratch_len(input, splits.0, geom, splits.1);
                        (own, per_thread * threads)
                    }
                    Algorithm::FromImage => (0, conv2d_image_scratch_len(input, geom, threads)),
                    Algorithm::Winograd(scheme) => (0, winograd_scratch_len(input, geom, scheme, threads)),
                    // The BF16 copy of the input (or of each band's windows), two values
                    // to a float32.
                    Algorithm::Bf16Direct | Algorithm::Bf16x3Direct => {
                        let (out_split, terms) = (storage.split_of(s.output), algorithm.precision().bf16_terms());
                        let terms = terms.expect("a BF16 algorithm");
                        (0, conv2d_bf16_bands_scratch_len(input, geom, terms, out_split, threads).div_ceil(2))
                    }
                    // The image's BF16 copy, two values to a float32.
                    Algorithm::Bf16FromImage => (0, conv2d_bf16_image_scratch_len(input, geom).div_ceil(2)),
                }
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
    uses
}

/// Length of the workers' scratch: one slot per thread, each a whole number of
/// [`WORKER_SLOT_ALIGN`], large enough for any step's share.
pub(super) fn worker_scratch_len(uses: &[Use], threads: usize) -> Result<usize> {
    let slot = uses.iter().map(|u| u.worker_scratch).max().unwrap_or(0).div_ceil(threads);
    threads
        .checked_mul(slot.next_multiple_of(WORKER_SLOT_ALIGN))
        .ok_or_else(|| Error::Options(format!("{threads} threads: their scratch would overflow the address space")))
}

/// The error for a batch whose arena no address space holds.
fn too_large(batch: usize) -> Error {
    Error::Options(format!("batch {batch}: the arena would need more than {} bytes", isize::MAX))
}

/// The arena's buffers: one per root value (`0..nv`), living from the first write
/// to the last read of any value stored in it, and one per step's scratch (`nv + t`),
/// living during that step only (it serves the images one after another). The
/// workers' scratch is a buffer of its own, apart from these.
pub(super) struct Buffers {
    /// Number of values (the first scratch buffer).
    values: usize,
    /// First and last step each buffer is alive in (`usize::MAX`, 0 for an unused one).
    first: Vec<usize>,
    last: Vec<usize>,
    /// Length in `f32`.
    sizes: Vec<usize>,
    /// The buffers in use.
    used: Vec<usize>,
    steps: usize,
}

impl Buffers {
    /// The buffers of `uses` for `batch` images in `bands` arenas; an error when
    /// they could not fit the address space.
    pub(super) fn new(uses: &[Use], storage: &Storage, values: usize, batch: usize, bands: usize) -> Result<Buffers> {
        let nb = values + uses.len();
        let (mut first, mut last, mut sizes) = (vec![usize::MAX; nb], vec![0; nb], vec![0; nb]);
        for (t, u) in uses.iter().enumerate() {
            for &v in u.inputs.iter().chain([&u.output]) {
                let r = storage.root_of(v).0;
                first[r.0] = first[r.0].min(t);
                last[r.0] = last[r.0].max(t);
                sizes[r.0] = batch.checked_mul(storage.image_len(r)).ok_or_else(|| too_large(batch))?;
            }
            if u.scratch > 0 {
                (first[values + t], last[values + t], sizes[values + t]) = (t, t, u.scratch);
            }
        }
        // No arena is larger than all buffers side by side: if that fits the address
        // space, no offset overflows.
        sizes
            .iter()
            .try_fold(0usize, |sum, s| sum.checked_add(s.checked_next_multiple_of(BLOCK)?))
            .and_then(|floats| floats.checked_mul(4 * bands))
            .filter(|&bytes| bytes <= isize::MAX as usize)
            .ok_or_else(|| too_large(batch))?;
        let used = (0..nb).filter(|&r| first[r] != usize::MAX).collect();
        Ok(Buffers { values, first, last, sizes, used, steps: uses.len() })
    }

    fn size(&self, r: usize) -> usize {
        self.sizes[r].next_multiple_of(BLOCK)
    }

    fn overlaps(&self, a: usize, b: usize) -> bool {
        self.first[a] <= self.last[b] && self.first[b] <= self.last[a]
    }

    /// Offsets: places the buffers one by one at the lowest offset clear of every
    /// placed buffer alive at the same time. The order matters and no single one
    /// wins everywhere, so this tries a few (largest first, longest-lived first,
    /// earliest first) and keeps the smallest arena. Returns its length and the
    /// offset of every buffer.
    pub(super) fn assign_offsets(&self) -> (usize, Vec<usize>) {
        let (first, last) = (&self.first, &self.last);
        let (mut by_size, mut by_life, mut by_start) = (self.used.clone(), self.used.clone(), self.used.clone());
        by_size.sort_by_key(|&r| (Reverse(self.size(r)), first[r]));
        by_life.sort_by_key(|&r| (Reverse(last[r] - first[r]), Reverse(self.size(r))));
        by_start.sort_by_key(|&r| (first[r], Reverse(self.size(r))));
        [by_size, by_life, by_start]
            .iter()
            .map(|order| self.place(order))
            .min_by_key(|(len, _)| *len)
            .expect("at least one order")
    }

    /// Places the buffers in `order`: the arena length and the offsets.
    fn place(&self, order: &[usize]) -> (usize, Vec<usize>) {
        let mut offset = vec![0; self.sizes.len()];
        let mut placed: Vec<usize> = Vec::with_capacity(order.len());
        for &r in order {
            let mut busy: Vec<(usize, usize)> = placed
                .iter()
                .filter(|&&p| self.overlaps(p, r))
                .map(|&p| (offset[p], offset[p] + self.size(p)))
                .collect();
            busy.sort_unstable();
            let mut at = 0;
            for (s, e) in busy {
                if at + self.size(r) <= s {
                    break;
                }
                at = at.max(e);
            }
            offset[r] = at;
            placed.push(r);
        }
        let len = self.used.iter().map(|&r| offset[r] + self.size(r)).max().unwrap_or(0);
        (len, offset)
    }

    /// The largest total of buffers alive at once: no assignment of offsets can
    /// use less.
    pub(super) fn lower_bound(&self) -> usize {
        (0..self.steps)
            .map(|t| {
                let alive = self.used.iter().filter(|&&r| self.first[r] <= t && t <= self.last[r]);
                alive.map(|&r| self.size(r)).sum::<usize>()
            })
            .max()
            .unwrap_or(0)
    }

    /// The planned steps: `uses` on the views the offsets give.
    pub(super) fn planned_steps(&self, uses: Vec<Use>, storage: &Storage, offset: &[usize]) -> Vec<PlannedStep> {
        let view = |v: ValueId| storage.view(v, offset[storage.root_of(v).0.0]);
        let scratch_at = |t: usize| offset[self.values + t];
        uses.into_iter()
            .enumerate()
            .map(|(t, u)| {
                let (output, action) = match u.action {
                    Action::Copy { c0 } => copy_target(storage.layout, view(u.output), storage.dims(u.inputs[0]).c, c0),
                    action => (view(u.output), action),
                };
                PlannedStep {
                    inputs: u.inputs.iter().map(|&v| view(v)).collect(),
                    output,
                    scratch: scratch_at(t)..scratch_at(t) + u.scratch,
                    worker_scratch: u.worker_scratch > 0,
                    action,
                    name: u.name,
                }
            })
            .collect()
    }
}
