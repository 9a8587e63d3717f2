//! Where a program's tensors live: on the heap (built-in and imported models) or in
//! a mapped model file (zero-copy: the kernels read the file's pages).
//!
//! Heap tensors are gathered into one anonymous mapping that asks Linux for 2 MiB
//! pages (`MADV_HUGEPAGE`): a run streams every weight once, and with 4 KiB pages
//! about half of what the weights' arriving from memory costs is page walks
//! (`docs/kernels.md`, "Cold weights"). Where the mapping or the advice is refused,
//! the tensors stay as they are.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use incept_kernels::AlignedVec;
use memmap2::MmapMut;

use crate::error::{Error, Result};

/// Bytes shared by every program that borrows tensors from them (a mapped file).
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// The tensors of a program, indexed by `TensorId`. Cloning is cheap: clones share
/// the tensors.
#[derive(Clone)]
pub struct TensorStore {
    bytes: Option<SharedBytes>,
    /// The heap tensors gathered by [`TensorStore::owned`].
    heap: Option<Arc<MmapMut>>,
    slots: Vec<Slot>,
}

#[derive(Clone)]
enum Slot {
    Owned(Arc<AlignedVec>),
    /// A byte range of `bytes`, checked at construction to be `f32`-aligned.
    Mapped(Range<usize>),
    /// A byte range of `heap`, starting at a multiple of 64 bytes.
    Heap(Range<usize>),
}

/// One tensor of a store being assembled: owned values, or a byte range of the
/// shared bytes.
pub enum Source {
    /// Values on the heap.
    Owned(AlignedVec),
    /// Little-endian `f32` values in the shared bytes.
    Mapped(Range<usize>),
}

impl TensorStore {
    /// A store of heap tensors, gathered into one mapping of huge pages (each
    /// moved there and freed in turn, so the heap holds them only once).
    pub fn owned(tensors: Vec<AlignedVec>) -> Self {
        // Each tensor from a 64-byte boundary, as `AlignedVec` places it.
        let starts: Vec<usize> = tensors
            .iter()
            .scan(0, |end, t| Some(std::mem::replace(end, (*end + t.len() * 4).next_multiple_of(64))))
            .collect();
        let len = starts.last().zip(tensors.last()).map_or(0, |(s, t)| s + t.len() * 4);
        let Some(mut heap) = (len > 0).then(|| MmapMut::map_anon(len).ok()).flatten() else {
            return TensorStore {
                bytes: None,
                heap: None,
                slots: tensors.into_iter().map(|v| Slot::Owned(Arc::new(v))).collect(),
            };
        };
        // Advice only: where it is refused the pages are 4 KiB ones.
        #[cfg(target_os = "linux")]
        let _ = heap.advise(memmap2::Advice::HugePage);
        let mut slots = Vec::with_capacity(tensors.len());
        for (t, start) in tensors.into_iter().zip(starts) {
            let range = start..start + t.len() * 4;
            heap[range.clone()].copy_from_slice(bytemuck::cast_slice(t.as_slice()));
            slots.push(Slot::Heap(range));
        }
        TensorStore { bytes: None, heap: Some(Arc::new(heap)), slots }
    }

    /// A store whose `Mapped` tensors borrow from `bytes`. Every range must lie in
    /// `bytes` and be `f32`-aligned (the kernels want more, 64 bytes, for speed only).
    pub fn mapped(bytes: SharedBytes, sources: Vec<Source>) -> Result<Self> {
        let all = (*bytes).as_ref();
        let mut slots = Vec::with_capacity(sources.len());
        for (i, s) in sources.into_iter().enumerate() {
            slots.push(match s {
                Source::Owned(v) => Slot::Owned(Arc::new(v)),
                Source::Mapped(r) => {
                    let ok = all.get(r.clone()).is_some_and(|b| bytemuck::try_cast_slice::<u8, f32>(b).is_ok());
                    if !ok || !cfg!(target_endian = "little") {
                        return Err(Error::ModelFile(format!(
                            "tensor {i}: bytes {r:?} cannot be read as f32 in place"
                        )));
                    }
                    Slot::Mapped(r)
                }
            });
        }
        Ok(TensorStore { bytes: Some(bytes), heap: None, slots })
    }

    /// Tensor `i`.
    pub fn get(&self, i: usize) -> &[f32] {
        match &self.slots[i] {
            Slot::Owned(v) => v.as_slice(),
            // Checked in `mapped`: in range and aligned, so the cast cannot fail.
            Slot::Mapped(r) => {
                bytemuck::cast_slice(&self.bytes.as_deref().expect("mapped slots have bytes").as_ref()[r.clone()])
            }
            // Page-aligned mapping, 64-byte-aligned start: the cast cannot fail.
            Slot::Heap(r) => bytemuck::cast_slice(&self.heap.as_deref().expect("heap slots have a heap")[r.clone()]),
        }
    }

    /// A store sharing this one's tensors but for `replaced`, each a tensor index
    /// and its new values (on the heap).
    pub fn with_replaced(&self, replaced: Vec<(usize, AlignedVec)>) -> TensorStore {
        let mut store = self.clone();
        for (i, v) in replaced {
            store.slots[i] = Slot::Owned(Arc::new(v));
        }
        store
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bytes of tensor data, on the heap and mapped.
    pub fn bytes(&self) -> usize {
        self.owned_bytes() + self.mapped_bytes()
    }

    /// Bytes of tensor data read in place from the shared bytes.
    pub fn mapped_bytes(&self) -> usize {
        self.slots.iter().map(|s| if let Slot::Mapped(r) = s { r.len() } else { 0 }).sum()
    }

    /// Bytes of tensor data on the heap.
    pub fn owned_bytes(&self) -> usize {
        let bytes = |s: &Slot| match s {
            Slot::Owned(v) => v.len() * 4,
            Slot::Heap(r) => r.len(),
            Slot::Mapped(_) => 0,
        };
        self.slots.iter().map(bytes).sum()
    }

    /// Bytes of heap tensors gathered into the store's own mapping (outside the
    /// allocator: a heap tally misses them).
    pub fn gathered_bytes(&self) -> usize {
        self.slots.iter().map(|s| if let Slot::Heap(r) = s { r.len() } else { 0 }).sum()
    }

    /// The shared bytes the mapped tensors live in, if any.
    pub fn shared_bytes(&self) -> Option<&SharedBytes> {
        self.bytes.as_ref()
    }
}

impl fmt::Debug for TensorStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TensorStore")
            .field("tensors", &self.slots.len())
            .field("owned_bytes", &self.owned_bytes())
            .field("mapped_bytes", &self.mapped_bytes())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gathered heap tensors keep their values, start on 64-byte boundaries and
    /// count as heap bytes; a store of empty tensors has no mapping.
    #[test]
    fn owned_tensors_gather_into_one_mapping() {
        let values = |n: usize, k: f32| (0..n).map(|i| i as f32 * k).collect::<Vec<f32>>();
        let lens = [5, 0, 16, 1, 1000, 3];
        let tensors: Vec<AlignedVec> =
            lens.iter().enumerate().map(|(i, &n)| AlignedVec::from_slice(&values(n, i as f32 + 0.5))).collect();
        let store = TensorStore::owned(tensors);
        assert!(store.heap.is_some());
        for (i, &n) in lens.iter().enumerate() {
            assert_eq!(store.get(i), values(n, i as f32 + 0.5).as_slice(), "tensor {i}");
            assert_eq!(store.get(i).as_ptr() as usize % 64, 0, "tensor {i}");
        }
        let bytes = lens.iter().sum::<usize>() * 4;
        assert_eq!((store.owned_bytes(), store.gathered_bytes(), store.mapped_bytes()), (bytes, bytes, 0));

        let empty = TensorStore::owned(vec![AlignedVec::zeroed(0), AlignedVec::zeroed(0)]);
        assert!(empty.heap.is_none());
        assert_eq!((empty.len(), empty.get(1).len(), empty.bytes()), (2, 0, 0));
    }
}
