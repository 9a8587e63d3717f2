//! The incept model file: a network with its weights folded and packed the way the
//! kernels read them, laid out to be memory-mapped and used in place.
//!
//! ```text
//! offset  size  field (little-endian)
//!      0     8  magic "\x89INCEPT\n" (the high byte and newline catch 7-bit and text-mode transfers)
//!      8     4  format version (1)
//!     12     4  byte-order mark 0x01020304
//!     16     8  header offset (64)
//!     24     8  header length in bytes
//!     32     8  data offset (a multiple of 64, after the header)
//!     40     8  data length in bytes (the file ends there)
//!     48     4  CRC-32 of the header
//!     52     4  CRC-32 of bytes 0..52
//!     56     8  zero
//!     64        header: JSON (see [`header::Header`]): the graph as the operators that
//!               build it, then one entry per tensor: name, packing, shape, offset,
//!               length, CRC-32
//!   data        tensors, each at a multiple of 64 bytes from the data offset
//! ```
//!
//! The tensors are the lowered program's: BatchNorm folded, residual scales applied,
//! convolution weights in the blocked packing (`oihw_blocked16`; the image's
//! with its whole window folded into the channels, `oihw_image_window_folded16`,
//! which loads from `oihw_image_kx_folded16` (the window's columns folded) and
//! `oihw_blocked16` too, repacked), or for the layers
//! lowered to Winograd, transformed (`winograd_f2x2_3x3_blocked16` or
//! `winograd_f4x4_3x3_blocked16` for 3x3 windows, `winograd_line6_blocked16` for 1-D
//! ones; such a layer stored as `oihw_blocked16`, an F(4x4, 3x3) one as
//! `winograd_f2x2_3x3_blocked16`, or a 1-D one as `winograd_f2_3_blocked16` (files
//! written before the 6-point schemes), is repacked at load). Loading maps the
//! file, checks the prelude, the header and every tensor entry against the graph the
//! header describes (so no offset, length, shape or packing is used unchecked), and
//! points the program at the mapped bytes: no weight is copied or even read. A file
//! written with the `plain` packing loads too, repacked once onto the heap.
//!
//! Tensor checksums (and the zero padding between the parts) are not read by a plain [`open`]: that would touch every page
//! of the weights and cost more than the rest of loading. [`open`] with `verify`
//! checks them (and that every value is finite); `incept info` and `incept convert`
//! do. A damaged weight byte that is not checked gives wrong numbers, never unsafe
//! behaviour: every structural field is always checked.

pub mod header;

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use header::{GraphDesc, Header, TensorEntry};

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::lower::{Packing, Precision, Program, SharedBytes, Source, TensorStore};
use crate::weights::Weights;

/// The first eight bytes of every model file.
pub const MAGIC: [u8; 8] = *b"\x89INCEPT\n";
/// The format version this build reads and writes.
pub const VERSION: u32 = 1;
/// Bytes before the header.
const PRELUDE: usize = 64;
const BYTE_ORDER_MARK: u32 = 0x0102_0304;
/// Alignment of the data section and of every tensor in it (a cache line, and the
/// widest vector load).
pub const ALIGN: usize = 64;

/// Whether `bytes` starts like a model file.
pub fn is_model_file(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// How a file was loaded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadInfo {
    /// Bytes of weights used in place from the mapping.
    pub mapped_bytes: usize,
    /// Tensors stored in another packing than the kernels', repacked onto the heap.
    pub repacked: Vec<String>,
    /// Whether the tensor checksums were verified.
    pub verified: bool,
}

/// Maps the model file at `path` and makes a program of it; with `verify`, also
/// checks every tensor's checksum and that its values are finite.
pub fn open(path: &Path, verify: bool) -> Result<(Program, LoadInfo)> {
    let named = |e: Error| match e {
        Error::ModelFile(m) => Error::ModelFile(format!("{}: {m}", path.display())),
        e => e,
    };
    let io = |e: std::io::Error| Error::ModelFile(format!("{}: {e}", path.display()));
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len < PRELUDE as u64 {
        return Err(named(truncated(len as usize, PRELUDE)));
    }
    // SAFETY: the mapping is read-only (shared with every other reader of the file,
    // which is the point); the program reads it as plain bytes and floats, for which
    // every bit pattern is valid. The one hazard is another process truncating or
    // rewriting the file while it is mapped (a SIGBUS, or weights changing under the
    // reader), which no file-backed loader can rule out; `incept convert` never
    // rewrites a file in place, it renames a finished one over it.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
    read(Arc::new(map), verify).map_err(named)
}

fn truncated(len: usize, needed: usize) -> Error {
    Error::ModelFile(format!("truncated: the file is {len} bytes, its layout needs {needed}"))
}

/// The fixed fields at the start of a file.
struct Prelude {
    header: std::ops::Range<usize>,
    header_crc: u32,
    data: std::ops::Range<usize>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn read_prelude(all: &[u8]) -> Result<Prelude> {
    let bad = |m: String| Err(Error::ModelFile(m));
    if all.len() < PRELUDE {
        return Err(truncated(all.len(), PRELUDE));
    }
    if !is_model_file(all) {
        return bad(format!("not an incept model file (the first bytes are {:02x?})", &all[..8]));
    }
    let version = u32_at(all, 8);
    if version != VERSION {
        return bad(format!("format version {version} is not supported (this build reads version {VERSION})"));
    }
    if u32_at(all, 12) != BYTE_ORDER_MARK {
        return bad(format!("byte-order mark {:#010x} is not 0x01020304", u32_at(all, 12)));
    }
    if all[56..64] != [0; 8] {
        return bad(format!("reserved bytes 56..64 are {:02x?}, not zero", &all[56..64]));
    }
    let crc = crc32fast::hash(&all[..52]);
    if crc != u32_at(all, 52) {
        return bad(format!("the prelude's checksum is {:08x}, it says {:08x}: corrupt", crc, u32_at(all, 52)));
    }
    let (header_offset, header_len, data_offset, data_len) =
        (u64_at(all, 16), u64_at(all, 24), u64_at(all, 32), u64_at(all, 40));
    if header_offset != PRELUDE as u64 {
        return bad(format!("header offset {header_offset} is not {PRELUDE}"));
    }
    let header_end = header_offset.checked_add(header_len).filter(|&e| e <= data_offset);
    let Some(header_end) = header_end else {
        return bad(format!(
            "the header ({header_len} bytes from {header_offset}) runs into the data at {data_offset}"
        ));
    };
    if data_offset % ALIGN as u64 != 0 {
        return bad(format!("data offset {data_offset} is not a multiple of {ALIGN}"));
    }
    let data_end = data_offset.checked_add(data_len).filter(|&e| usize::try_from(e).is_ok());
    let Some(data_end) = data_end else {
        return bad(format!("data length {data_len} from {data_offset} is out of range"));
    };
    let file_len = all.len() as u64;
    if data_end > file_len {
        return Err(truncated(all.len(), data_end as usize));
    }
    if data_end < file_len {
        return bad(format!("{} unexpected bytes after the data, which ends at {data_end}", file_len - data_end));
    }
    Ok(Prelude {
        header: header_offset as usize..header_end as usize,
        header_crc: u32_at(all, 48),
        data: data_offset as usize..data_end as usize,
    })
}

/// Makes a program of a model file's bytes (a mapping, or any buffer whose start is
/// aligned for `f32`).
pub fn read(bytes: SharedBytes, verify: bool) -> Result<(Program, LoadInfo)> {
    let all = (*bytes).as_ref();
    let prelude = read_prelude(all)?;
    let header_bytes = &all[prelude.header.clone()];
    let crc = crc32fast::hash(header_bytes);
    if crc != prelude.header_crc {
        return Err(Error::ModelFile(format!(
            "the header's checksum is {crc:08x}, the prelude says {:08x}: corrupt",
            prelude.header_crc
        )));
    }
    let header: Header = serde_json::from_slice(header_bytes).map_err(|e| Error::ModelFile(format!("header: {e}")))?;
    let graph = Program::graph_for(&header.graph.to_graph()?);
    let precision = header.precision;
    let (steps, recipes) = Program::structure_at(&graph, precision);
    if header.tensors.len() != recipes.len() {
        return Err(Error::ModelFile(format!(
            "the header lists {} tensors, the graph's program needs {}",
            header.tensors.len(),
            recipes.len()
        )));
    }
    let data = &all[prelude.data.clone()];
    let mut info = LoadInfo { verified: verify, ..LoadInfo::default() };
    let mut sources = Vec::with_capacity(recipes.len());
    let mut end = 0u64;
    for (i, (entry, recipe)) in header.tensors.iter().zip(&recipes).enumerate() {
        let bad = |m: String| Error::ModelFile(format!("tensor {i} ('{}'): {m}", entry.name));
        if entry.name != recipe.name {
            return Err(bad(format!("expected tensor '{}' here", recipe.name)));
        }
        let packing =
            Packing::from_name(&entry.packing).ok_or_else(|| bad(format!("unknown packing '{}'", entry.packing)))?;
        let shape = recipe
            .packed_shape(&graph, packing)
            .ok_or_else(|| bad(format!("a {:?} cannot be stored as '{}'", recipe.role, entry.packing)))?;
        if entry.shape != shape {
            return Err(bad(format!(
                "shape {:?} does not match the graph's {:?} ('{}')",
                entry.shape, shape, entry.packing
            )));
        }
        let bytes_needed = (shape.iter().product::<usize>() * packing.value_bytes()) as u64;
        if entry.length != bytes_needed {
            return Err(bad(format!("length {} bytes, its shape needs {bytes_needed}", entry.length)));
        }
        if entry.offset % ALIGN as u64 != 0 {
            return Err(bad(format!("offset {} is not a multiple of {ALIGN}", entry.offset)));
        }
        if entry.offset < end {
            return Err(bad(format!("offset {} overlaps the previous tensor, which ends at {end}", entry.offset)));
        }
        end = match entry.offset.checked_add(entry.length).filter(|&e| e <= data.len() as u64) {
            Some(e) => e,
            None => {
                let (at, n) = (entry.offset, data.len());
                return Err(bad(format!("{} bytes at {at} lie outside the {n}-byte data section", entry.length)));
            }
        };
        let crc = u32::from_str_radix(&entry.crc32, 16)
            .ok()
            .filter(|_| entry.crc32.len() == 8)
            .ok_or_else(|| bad(format!("checksum '{}' is not 8 hex digits", entry.crc32)))?;
        let range = entry.offset as usize..end as usize;
        let raw = &data[range.clone()];
        if verify {
            let got = crc32fast::hash(raw);
            if got != crc {
                return Err(bad(format!("checksum mismatch: the data hashes to {got:08x}, the header says {crc:08x}")));
            }
            if let Some(j) = first_non_finite(raw, packing) {
                return Err(bad(format!("value {j} is not finite")));
            }
        }
        let file_range = prelude.data.start + range.start..prelude.data.start + range.end;
        if packing == recipe.native_packing() {
            info.mapped_bytes += raw.len();
            sources.push(Source::Mapped(file_range));
        } else {
            let stored: Vec<f32> = raw.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            sources.push(Source::Owned(recipe.repack(&stored, packing, recipe.native_packing())));
            info.repacked.push(entry.name.clone());
        }
    }
    if verify {
        // Nothing is hidden between the parts: padding is zeros.
        let mut gaps = Vec::with_capacity(header.tensors.len() + 2);
        gaps.push(prelude.header.end..prelude.data.start);
        let mut at = prelude.data.start;
        for e in &header.tensors {
            let start = prelude.data.start + e.offset as usize;
            gaps.push(at..start);
            at = start + e.length as usize;
        }
        gaps.push(at..prelude.data.end);
        if let Some(g) = gaps.into_iter().find(|g| all[g.clone()].iter().any(|&b| b != 0)) {
            return Err(Error::ModelFile(format!("padding bytes {g:?} are not zero")));
        }
    }
    let tensors = TensorStore::mapped(bytes, sources)?;
    Ok((Program { graph, steps, recipes, tensors, precision }, info))
}

/// The index of the first value of `raw` (little-endian values stored in `packing`)
/// that is not finite.
fn first_non_finite(raw: &[u8], packing: Packing) -> Option<usize> {
    match packing.value_bytes() {
        // BF16: the upper half of a float32, whose exponent is all ones for
        // infinities and NaNs.
        2 => raw.chunks_exact(2).position(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7f80 == 0x7f80),
        _ => raw.chunks_exact(4).position(|b| !f32::from_le_bytes(b.try_into().unwrap()).is_finite()),
    }
}

/// How [`write()`] lays tensors out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WritePacking {
    /// The kernels' layout: loading maps it in place (the default).
    #[default]
    Native,
    /// Every tensor row-major as its parameter: portable, repacked when loaded.
    Plain,
}

/// What [`write()`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteInfo {
    /// File size in bytes.
    pub bytes: u64,
    /// Tensors written.
    pub tensors: usize,
}

/// Writes `graph` with `weights` (folded and packed) to `path`. The file is written
/// beside `path` under a temporary name and renamed over it when complete, so a
/// failure never leaves a partial file and a reader of an old file at `path` keeps
/// its bytes. `progress(done, total)` is called with bytes of tensor data written.
pub fn write(
    graph: &Graph,
    weights: &Weights,
    path: &Path,
    packing: WritePacking,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<WriteInfo> {
    write_at(graph, weights, path, packing, Precision::F32, progress)
}

/// [`write()`] of the program lowered at `precision` (see the [module](self) docs
/// for BF16 files).
pub fn write_at(
    graph: &Graph,
    weights: &Weights,
    path: &Path,
    packing: WritePacking,
    precision: Precision,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<WriteInfo> {
    weights.check(graph)?;
    let (_, recipes) = Program::structure_at(graph, precision);
    let mut entries = Vec::with_capacity(recipes.len());
    let mut offset = 0u64;
    for r in &recipes {
        let p = if packing == WritePacking::Native { r.native_packing() } else { Packing::Plain };
        let shape = r.packed_shape(graph, p).expect("every tensor has its native and plain packings");
        let length = (shape.iter().product::<usize>() * p.value_bytes()) as u64;
        entries.push(TensorEntry {
            name: r.name.clone(),
            packing: p.name().into(),
            shape,
            offset,
            length,
            crc32: "00000000".into(),
        });
        offset = (offset + length).next_multiple_of(ALIGN as u64);
    }
    let data_len = entries.last().map_or(0, |e| e.offset + e.length);
    let mut header = Header {
        producer: concat!("incept ", env!("CARGO_PKG_VERSION")).into(),
        graph: GraphDesc::new(graph),
        tensors: entries,
        precision,
    };
    let header_len = serde_json::to_vec(&header).expect("a header serialises").len();
    let data_offset = (PRELUDE + header_len).next_multiple_of(ALIGN) as u64;

    let tmp = temporary_path(path);
    let io = |e: std::io::Error| Error::ModelFile(format!("{}: {e}", tmp.display()));
    let result = (|| -> Result<u64> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(io)?);
        out.seek(SeekFrom::Start(data_offset)).map_err(io)?;
        let mut written = 0u64;
        for (r, e) in recipes.iter().zip(&mut header.tensors) {
            let p = Packing::from_name(&e.packing).expect("written above");
            let values = r.pack(&r.compute_plain(graph, weights), p);
            let bytes = le_bytes(values.as_slice(), p);
            e.crc32 = format!("{:08x}", crc32fast::hash(&bytes));
            out.seek(SeekFrom::Start(data_offset + e.offset)).map_err(io)?;
            out.write_all(&bytes).map_err(io)?;
            written += e.length;
            progress(written, data_len);
        }
        // Checksums are fixed-width: the header keeps the length it was planned with.
        let json = serde_json::to_vec(&header).expect("a header serialises");
        assert_eq!(json.len(), header_len, "header length changed");
        let mut prelude = [0u8; PRELUDE];
        prelude[..8].copy_from_slice(&MAGIC);
        prelude[8..12].copy_from_slice(&VERSION.to_le_bytes());
        prelude[12..16].copy_from_slice(&BYTE_ORDER_MARK.to_le_bytes());
        prelude[16..24].copy_from_slice(&(PRELUDE as u64).to_le_bytes());
        prelude[24..32].copy_from_slice(&(header_len as u64).to_le_bytes());
        prelude[32..40].copy_from_slice(&data_offset.to_le_bytes());
        prelude[40..48].copy_from_slice(&data_len.to_le_bytes());
        prelude[48..52].copy_from_slice(&crc32fast::hash(&json).to_le_bytes());
        let crc = crc32fast::hash(&prelude[..52]);
        prelude[52..56].copy_from_slice(&crc.to_le_bytes());
        out.seek(SeekFrom::Start(0)).map_err(io)?;
        out.write_all(&prelude).map_err(io)?;
        out.write_all(&json).map_err(io)?;
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        // The data section ends the file, even when its last tensor is empty.
        file.set_len(data_offset + data_len).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(data_offset + data_len)
    })();
    match result {
        Ok(bytes) => {
            std::fs::rename(&tmp, path).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                Error::ModelFile(format!("{}: {e}", path.display()))
            })?;
            Ok(WriteInfo { bytes, tensors: recipes.len() })
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// `dir/.name.partial-PID` beside `path`.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// The values of a tensor packed as `packing` as little-endian bytes (BF16 values
/// are held two to a float32 slot, in memory order: see [`TensorRecipe::pack`]).
///
/// [`TensorRecipe::pack`]: crate::lower::TensorRecipe::pack
fn le_bytes(values: &[f32], packing: Packing) -> std::borrow::Cow<'_, [u8]> {
    use incept_kernels::bf16::bf16;
    if cfg!(target_endian = "little") {
        std::borrow::Cow::Borrowed(bytemuck::cast_slice(values))
    } else if packing.value_bytes() == 2 {
        let halves: &[bf16] = bytemuck::cast_slice(values);
        std::borrow::Cow::Owned(halves.iter().flat_map(|v| v.to_bits().to_le_bytes()).collect())
    } else {
        std::borrow::Cow::Owned(values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
}
