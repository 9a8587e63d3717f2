//! Staging: the pass that rounds a float32 NCHW16c input into the BF16 copy the
//! tiles read, with the zero border of the window's padding, in rows spread over
//! the threads. For a split ([`Bf16Terms::Split3`]) the copy holds three groups
//! of the input's channel blocks, `[x_hi | x_lo | x_hi]` (see [`super::terms`]).

use super::convert::bf16;
use super::terms::{Bf16Terms, Term, terms_row};
use crate::BLOCK;
use crate::bands::Bands;
use crate::geometry::ConvGeometry;
use crate::parallel::{ParallelFor, SharedMut};

/// Tasks per thread: several, claimed as the threads come free, so that a thread
/// slowed by something else (a late start, a shared core) hands part of its share
/// to the others; a claim costs far less than a task.
pub(super) const TASKS_PER_THREAD: usize = 8;

/// Least number of values a conversion pass spreads over the pool's threads: a
/// smaller one converts in less time than a dispatch to the pool takes.
const STAGE_PAR_VALUES: usize = 16 * 1024;

/// Calls `fill(r, row)` for each row `r` of `row_len` values of `staged`, in runs
/// of rows spread over `par`'s threads ([`TASKS_PER_THREAD`] per thread) when
/// there are enough values to pay for the dispatch.
pub(super) fn fill_rows(
    staged: &mut [bf16],
    row_len: usize,
    par: &dyn ParallelFor,
    fill: &(dyn Fn(usize, &mut [bf16]) + Sync),
) {
    let rows = staged.len() / row_len;
    let tasks = (TASKS_PER_THREAD * par.threads()).min(staged.len() / STAGE_PAR_VALUES).min(rows).max(1);
    if tasks == 1 {
        for (r, row) in staged.chunks_exact_mut(row_len).enumerate() {
            fill(r, row);
        }
        return;
    }
    let base = SharedMut(staged.as_mut_ptr());
    par.run(tasks, &|task| {
        for r in task * rows / tasks..(task + 1) * rows / tasks {
            // SAFETY: row r of `rows` lies inside `staged`, and each row belongs to
            // exactly one task (the tasks' ranges are disjoint); nothing reads
            // `staged` until `run` returns.
            let row = unsafe { std::slice::from_raw_parts_mut(base.get().add(r * row_len), row_len) };
            fill(r, row);
        }
    });
}

/// Row `r` (counted over all channel blocks of every group of `terms`) of the
/// BF16 copy of `input`'s rows `window` (from `lo`, negative above the image, to
/// `hi`, past its end below) with `geom`'s left and right padding: zero outside the
/// image, inside the input rounded to BF16 (`to_bf16`, the tier's), or for a split
/// its group's term. The padding lanes of a partial block stay zero in every group:
/// the input's are zero, and so are both terms of zero.
#[allow(clippy::too_many_arguments)]
pub(super) fn stage_row(
    to_bf16: unsafe fn(&[f32], &mut [bf16]),
    terms: Bf16Terms,
    input: &Bands,
    geom: &ConvGeometry,
    (lo, hi): (isize, isize),
    r: usize,
    row: &mut [bf16],
) {
    let (din, p) = (input.dims, geom.pad);
    let n = (hi - lo) as usize;
    let (b, y) = (r / n, lo + (r % n) as isize);
    let blocks = din.c.div_ceil(BLOCK);
    if y < 0 || y as usize >= din.h {
        row.fill(bf16::ZERO);
        return;
    }
    let src = input.row_of(b % blocks, y as usize);
    row[..p.left * BLOCK].fill(bf16::ZERO);
    let dst = &mut row[p.left * BLOCK..][..din.w * BLOCK];
    match terms.input_term(b / blocks) {
        // SAFETY: `to_bf16` comes from a `Bf16Kernels`, which proves the tier runs here.
        Term::Hi => unsafe { to_bf16(src, dst) },
        term => terms_row(term, src, dst),
    }
    row[(p.left + din.w) * BLOCK..].fill(bf16::ZERO);
}
