//! Reading and writing float32 `.npy` files, with errors a user can act on.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use npyz::WriterBuilder;

/// Reads a C-ordered float32 array: its shape and values.
pub fn read_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>), String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let npy = npyz::NpyFile::new(BufReader::new(file))
        .map_err(|e| format!("{} is not a valid .npy file: {e}", path.display()))?;
    if npy.order() != npyz::Order::C {
        return Err(format!("{} is in Fortran order; save it C-contiguous (np.ascontiguousarray)", path.display()));
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let dtype = npy.dtype().descr();
    let data = npy
        .try_data::<f32>()
        .map_err(|_| format!("{} holds {dtype} values; incept expects float32 ('<f4')", path.display()))?;
    let values: Vec<f32> = data
        .collect::<std::io::Result<_>>()
        .map_err(|e| format!("{} is truncated or unreadable: {e}", path.display()))?;
    if values.len() != shape.iter().product::<usize>() {
        return Err(format!("{}: shape {shape:?} does not match its {} values", path.display(), values.len()));
    }
    Ok((shape, values))
}

/// Writes a float32 array atomically: a temporary file renamed into place, so an
/// existing file is only replaced by a complete one.
pub fn write_f32(path: &Path, shape: &[usize], values: &[f32]) -> Result<(), String> {
    let tmp = path.with_extension("npy.partial");
    let result = (|| -> std::io::Result<()> {
        let mut w = BufWriter::new(File::create(&tmp)?);
        let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let mut npy = npyz::WriteOptions::<f32>::new().default_dtype().shape(&shape).writer(&mut w).begin_nd()?;
        npy.extend(values.iter().copied())?;
        npy.finish()?;
        w.flush()?;
        drop(w);
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}
