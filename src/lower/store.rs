//! Where a program's tensors live: on the heap (built-in and imported models) or in
//! a mapped model file (zero-copy: the kernels read the file's pages).

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use incept_kernels::AlignedVec;

use crate::error::{Error, Result};

/// Bytes shared by every program that borrows tensors from them (a mapped file).
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// The tensors of a program, indexed by `TensorId`. Cloning is cheap: clones share
/// the tensors.
#[derive(Clone)]
pub struct TensorStore {
    bytes: Option<SharedBytes>,
    slots: Vec<Slot>,
}

#[derive(Clone)]
enum Slot {
    Owned(Arc<AlignedVec>),
    /// A byte range of `bytes`, checked at construction to be `f32`-aligned.
    Mapped(Range<usize>),
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
    /// A store of heap tensors.
    pub fn owned(tensors: Vec<AlignedVec>) -> Self {
        TensorStore { bytes: None, slots: tensors.into_iter().map(|v| Slot::Owned(Arc::new(v))).collect() }
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
        Ok(TensorStore { bytes: Some(bytes), slots })
    }

    /// Tensor `i`.
    pub fn get(&self, i: usize) -> &[f32] {
        match &self.slots[i] {
            Slot::Owned(v) => v.as_slice(),
            // Checked in `mapped`: in range and aligned, so the cast cannot fail.
            Slot::Mapped(r) => {
                bytemuck::cast_slice(&self.bytes.as_deref().expect("mapped slots have bytes").as_ref()[r.clone()])
            }
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
        self.slots.iter().map(|s| if let Slot::Owned(v) = s { v.len() * 4 } else { 0 }).sum()
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
