//! safetensors import: the weights of a built-in graph from a PyTorch state dict
//! saved as `.safetensors` (`safetensors.torch.save_file(model.state_dict(), ...)`).
//!
//! The file supplies weights only; the architecture is the [`Graph`] it is loaded
//! onto (a built-in model, whose parameter names follow the reference state-dict
//! keys). Every key of the file must be accounted for:
//!
//! - a parameter of the graph: taken, with exactly the parameter's shape;
//! - a key under one of the graph's [`ignored_prefixes`](Graph::ignored_prefixes)
//!   (training-only auxiliary heads such as `aux1.`, `AuxLogits.`), or BatchNorm's
//!   `num_batches_tracked` counter: skipped, whatever its dtype;
//! - anything else is an error naming the keys: a checkpoint of another
//!   architecture (or of a model wrapped in `nn.DataParallel`, whose keys start
//!   with `module.`) fails loudly instead of loading partly. There is deliberately
//!   no lenient mode: the graphs already list what the reference models may carry
//!   beyond the inference network, and a state dict with other extra keys can be
//!   filtered in Python before saving.
//!
//! Element types: `F32` is taken as is; `F16` and `BF16` widen to `f32` exactly;
//! `F64` rounds to the nearest `f32` (values beyond the `f32` range become
//! infinite, which the final [`Weights::check`] rejects, as it rejects NaNs of any
//! type). Other types (integers, booleans, 8-bit and smaller floats, complex) are
//! an error naming the tensor and its type. All types are read little-endian, as
//! the format stores them, on any host.
//!
//! Errors: bytes that are not a valid safetensors file (truncated, corrupt header,
//! offsets that do not tile the data) and unconvertible element types are
//! [`Error::Import`]; a file that does not fit the graph (missing tensors,
//! unexpected keys, wrong shapes, non-finite values) is [`Error::Weights`]. All
//! messages start with the file name, and list every problem of their kind at once
//! (the first ten names, then a count).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;
use serde::de::{Deserializer, Error as _, MapAccess, Visitor};

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::weights::{Tensor, Weights};

/// How many names an error message lists before it only counts.
const LISTED: usize = 10;

/// The longest header read, as the format's reference implementation: 100 MB.
const MAX_HEADER: u64 = 100_000_000;

/// The format's element types: the name its header gives and the size in bits.
const DTYPES: [(&str, usize); 22] = [
    ("BOOL", 8),
    ("F4", 4),
    ("F6_E2M3", 6),
    ("F6_E3M2", 6),
    ("U8", 8),
    ("I8", 8),
    ("F8_E5M2", 8),
    ("F8_E4M3", 8),
    ("F8_E8M0", 8),
    ("F8_E4M3FNUZ", 8),
    ("F8_E5M2FNUZ", 8),
    ("I16", 16),
    ("U16", 16),
    ("F16", 16),
    ("BF16", 16),
    ("I32", 32),
    ("U32", 32),
    ("F32", 32),
    ("C64", 64),
    ("F64", 64),
    ("I64", 64),
    ("U64", 64),
];

/// One tensor of a safetensors file: its element type (a name from [`DTYPES`]),
/// shape and bytes.
struct TensorView<'a> {
    dtype: &'static str,
    shape: Vec<usize>,
    data: &'a [u8],
}

/// A tensor's entry in the JSON header.
#[derive(Deserialize)]
struct TensorInfo {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (usize, usize),
}

/// The JSON header: the tensors' entries in the order written. `__metadata__`
/// (string to string) is checked and dropped; a key given twice is an error.
struct Header(Vec<(String, TensorInfo)>);

impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Header;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of tensors")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Header, A::Error> {
                let (mut tensors, mut keys) = (Vec::new(), HashSet::new());
                while let Some(key) = map.next_key::<String>()? {
                    if !keys.insert(key.clone()) {
                        return Err(A::Error::custom(format!("'{key}' appears twice")));
                    }
                    if key == "__metadata__" {
                        map.next_value::<Option<HashMap<String, String>>>()?;
                    } else {
                        tensors.push((key, map.next_value()?));
                    }
                }
                Ok(Header(tensors))
            }
        }
        d.deserialize_map(Entries)
    }
}

/// The tensors of a safetensors file by name, with every check of the format: an
/// 8-byte little-endian header length within the file, a UTF-8 JSON header of
/// known element types, and data offsets that tile the rest of the file exactly
/// (in order, contiguous, each tensor's bytes its shape times its element size,
/// computed without overflow). The error says which check failed.
fn parse(bytes: &[u8]) -> std::result::Result<BTreeMap<String, TensorView<'_>>, String> {
    let (len, rest) = bytes.split_first_chunk::<8>().ok_or("shorter than its 8-byte header length")?;
    let len = u64::from_le_bytes(*len);
    if len > MAX_HEADER {
        return Err(format!("header length {len} over the limit of {MAX_HEADER} bytes"));
    }
    let (header, data) = rest
        .split_at_checked(len as usize)
        .ok_or_else(|| format!("header length {len} beyond the {} bytes that follow it", rest.len()))?;
    let header = std::str::from_utf8(header).map_err(|e| format!("header is not UTF-8: {e}"))?;
    let Header(mut entries) = serde_json::from_str(header).map_err(|e| format!("invalid JSON header: {e}"))?;

    // Entries in data order, each starting where the one before ended.
    entries.sort_by_key(|(_, info)| info.data_offsets);
    let mut tensors = BTreeMap::new();
    let mut end = 0;
    for (name, info) in entries {
        let (first, last) = info.data_offsets;
        if first != end || last < first {
            return Err(format!("tensor '{name}': data_offsets [{first}, {last}] do not continue at byte {end}"));
        }
        end = last;
        let &(dtype, bits) = DTYPES
            .iter()
            .find(|(n, _)| *n == info.dtype)
            .ok_or_else(|| format!("tensor '{name}': unknown element type '{}'", info.dtype))?;
        let size = info
            .shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .and_then(|n| n.checked_mul(bits))
            .ok_or_else(|| format!("tensor '{name}': shape {:?} of {dtype} overflows", info.shape))?;
        if size % 8 != 0 || size / 8 != last - first {
            return Err(format!(
                "tensor '{name}': {:?} of {dtype} is {size} bits, data_offsets [{first}, {last}] hold {} bytes",
                info.shape,
                last - first
            ));
        }
        let data = data.get(first..last).ok_or_else(|| {
            format!("tensor '{name}': data_offsets [{first}, {last}] beyond the {} bytes of data", data.len())
        })?;
        tensors.insert(name, TensorView { dtype, shape: info.shape, data });
    }
    if end != data.len() {
        return Err(format!("the tensors cover {end} of the {} bytes of data", data.len()));
    }
    Ok(tensors)
}

/// Weights for `graph` from a safetensors file (a PyTorch state dict).
///
/// The file is memory-mapped read-only and never modified; only the tensors the
/// graph needs are converted. See the [module documentation](self) for which keys
/// are accepted and how element types convert.
pub fn load_safetensors(path: &Path, graph: &Graph) -> Result<Weights> {
    let what = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::Import(format!("{what}: {e}")))?;
    // SAFETY: the mapping is read-only and private to this call, and the bytes are
    // only read through the returned slice while `map` lives. As with any file
    // mapping, another process truncating or rewriting the file meanwhile is outside
    // what the program can guard against (a truncation shows as SIGBUS).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::Import(format!("{what}: cannot map: {e}")))?;
    from_bytes(&map, graph, &what)
}

/// Weights for `graph` from the bytes of a safetensors file; `what` names the file
/// in error messages. [`load_safetensors`] without the file.
pub fn from_bytes(bytes: &[u8], graph: &Graph, what: &str) -> Result<Weights> {
    let file = parse(bytes).map_err(|e| Error::Import(format!("{what}: not a valid safetensors file ({e})")))?;

    // Sort the file's keys into the graph's, the ignored and the unexpected.
    let wanted: HashSet<&str> = graph.params.iter().map(|p| p.name.as_str()).collect();
    let mut present = HashSet::new();
    let mut unexpected = Vec::new();
    for name in file.keys().map(String::as_str) {
        if wanted.contains(name) {
            present.insert(name);
        } else if !is_ignored(name, graph) {
            unexpected.push(name);
        }
    }
    unexpected.sort_unstable();
    let missing: Vec<_> = graph.params.iter().filter(|p| !present.contains(p.name.as_str())).collect();

    let mut problems = Vec::new();
    if !missing.is_empty() {
        let names = list(missing.iter().map(|p| format!("'{}' {:?}", p.name, p.shape)));
        problems.push(format!("{} of the graph's {} tensors missing: {names}", missing.len(), graph.params.len()));
    }
    if !unexpected.is_empty() {
        let names = list(unexpected.iter().map(|n| format!("'{n}'")));
        let mut msg = format!("{} unexpected tensors: {names}", unexpected.len());
        if missing.is_empty() {
        } else if let Some(prefix) = prefix_hint(&unexpected, &wanted, graph) {
            let _ = write!(msg, " (keys carry a prefix '{prefix}' that the graph's names do not have)");
        } else {
            let _ = write!(msg, " (is the file for a different model than '{}'?)", graph.name);
        }
        problems.push(msg);
    }
    // Shapes, then element types, of the tensors that are there.
    let views: Vec<_> = graph.params.iter().filter_map(|p| Some((p, file.get(&p.name)?))).collect();
    let misshaped: Vec<_> = views.iter().filter(|(p, v)| v.shape != p.shape).collect();
    if !misshaped.is_empty() {
        let names = list(
            misshaped.iter().map(|(p, v)| format!("'{}' is {:?}, the graph needs {:?}", p.name, v.shape, p.shape)),
        );
        problems.push(format!("{} tensors have the wrong shape: {names}", misshaped.len()));
    }
    if !problems.is_empty() {
        return Err(Error::Weights(format!("{what} does not fit '{}': {}", graph.name, problems.join("; "))));
    }
    let untyped: Vec<_> = views.iter().filter(|(_, v)| !converts(v.dtype)).collect();
    if !untyped.is_empty() {
        let names = list(untyped.iter().map(|(p, v)| format!("'{}' is {}", p.name, v.dtype)));
        return Err(Error::Import(format!(
            "{what}: {} tensors have an element type that does not convert to f32 (F32, F16, BF16, F64 do): {names}",
            untyped.len()
        )));
    }

    let mut weights = Weights::new();
    for (p, v) in &views {
        let data = to_f32(v).expect("element type checked above");
        weights.insert(p.name.clone(), Tensor { shape: p.shape.clone(), data });
    }
    weights.check(graph).map_err(|e| match e {
        Error::Weights(m) => Error::Weights(format!("{what}: {m}")),
        e => e,
    })?;
    Ok(weights)
}

/// Keys the graph does not need and that are skipped silently: the training-only
/// heads under its ignored prefixes, and BatchNorm's `num_batches_tracked` counters.
fn is_ignored(name: &str, graph: &Graph) -> bool {
    name == "num_batches_tracked"
        || name.ends_with(".num_batches_tracked")
        || graph.ignored_prefixes.iter().any(|p| name.starts_with(p.as_str()))
}

/// `"a, b, c"` for at most [`LISTED`] items, then `", ... (N more)"`.
fn list(items: impl ExactSizeIterator<Item = String>) -> String {
    let n = items.len();
    let mut s = items.take(LISTED).collect::<Vec<_>>().join(", ");
    if n > LISTED {
        let _ = write!(s, ", ... ({} more)", n - LISTED);
    }
    s
}

/// When the first unexpected key is `{prefix}{name}` for a key `name` the graph
/// takes or ignores, and `prefix` ends with a dot (as `nn.DataParallel`'s `module.`
/// does), the shortest such prefix.
fn prefix_hint<'a>(unexpected: &[&'a str], wanted: &HashSet<&str>, graph: &Graph) -> Option<&'a str> {
    let key = unexpected.first()?;
    key.match_indices('.')
        .map(|(i, _)| i + 1)
        .find(|&i| wanted.contains(&key[i..]) || is_ignored(&key[i..], graph))
        .map(|i| &key[..i])
}

fn converts(dtype: &str) -> bool {
    matches!(dtype, "F32" | "F16" | "BF16" | "F64")
}

/// The tensor's values as `f32`, row-major (safetensors stores tensors C-contiguous,
/// little-endian); `None` for an element type that does not convert.
fn to_f32(v: &TensorView<'_>) -> Option<Vec<f32>> {
    let data = v.data;
    Some(match v.dtype {
        "F32" => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        "F16" => data.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
        "BF16" => {
            data.chunks_exact(2).map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)).collect()
        }
        "F64" => data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32).collect(),
        _ => return None,
    })
}

/// IEEE 754 binary16 to binary32, exactly (every half is a float): subnormals,
/// infinities and NaNs (payload kept) included.
fn f16_to_f32(h: u16) -> f32 {
    let negative = h & 0x8000 != 0;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let magnitude = match exp {
        // Zero and subnormals: man * 2^-24, exact in f32.
        0 => man as f32 * f32::from_bits(0x3380_0000),
        0x1f => f32::from_bits(0x7f80_0000 | (man << 13)),
        // Rebias the exponent from 15 to 127.
        _ => f32::from_bits(((exp + 112) << 23) | (man << 13)),
    };
    if negative { -magnitude } else { magnitude }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{ConvSpec, Dims, GraphBuilder};
    use safetensors::Dtype;

    /// A small graph: conv (weight, bias), BatchNorm, linear; aux head ignored.
    fn graph() -> Graph {
        let mut b = GraphBuilder::new("tiny", Dims::new(3, 6, 6));
        let x = b.input();
        let y = b.conv(x, "stem.conv", ConvSpec::new(4, 3).pad(1).bias());
        let y = b.batch_norm(y, "stem.bn", 1e-3);
        let y = b.relu(y);
        let y = b.global_avg_pool(y);
        let y = b.linear(y, "fc", 5, true);
        b.ignore_params("aux.");
        b.finish(y).unwrap()
    }

    /// A raw tensor for `safetensors::serialize`.
    struct Raw {
        dtype: Dtype,
        shape: Vec<usize>,
        bytes: Vec<u8>,
    }

    impl safetensors::View for &Raw {
        fn dtype(&self) -> Dtype {
            self.dtype
        }
        fn shape(&self) -> &[usize] {
            &self.shape
        }
        fn data(&self) -> std::borrow::Cow<'_, [u8]> {
            (&self.bytes[..]).into()
        }
        fn data_len(&self) -> usize {
            self.bytes.len()
        }
    }

    fn f32_raw(t: &Tensor) -> Raw {
        Raw { dtype: Dtype::F32, shape: t.shape.clone(), bytes: t.data.iter().flat_map(|v| v.to_le_bytes()).collect() }
    }

    /// The synthetic weights of [`graph`] as F32 tensors, plus a counter and an aux tensor.
    fn tensors(g: &Graph) -> Vec<(String, Raw)> {
        let w = Weights::synthetic(g, 7);
        let mut t: Vec<(String, Raw)> =
            g.params.iter().map(|p| (p.name.clone(), f32_raw(w.get(&p.name).unwrap()))).collect();
        t.push(("stem.bn.num_batches_tracked".into(), Raw { dtype: Dtype::I64, shape: vec![], bytes: vec![0; 8] }));
        t.push(("aux.fc.weight".into(), Raw { dtype: Dtype::I8, shape: vec![2], bytes: vec![1, 2] }));
        t
    }

    fn serialize(t: &[(String, Raw)]) -> Vec<u8> {
        safetensors::serialize(t.iter().map(|(n, r)| (n.as_str(), r)), None).unwrap()
    }

    fn error(bytes: &[u8], g: &Graph) -> String {
        match from_bytes(bytes, g, "t.safetensors") {
            Ok(_) => panic!("loaded without error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn loads_the_graph_tensors_and_skips_counters_and_aux_heads() {
        let g = graph();
        let w = from_bytes(&serialize(&tensors(&g)), &g, "t").unwrap();
        assert_eq!(w, Weights::synthetic(&g, 7));
    }

    #[test]
    fn every_problem_is_listed_by_name() {
        let g = graph();
        let mut t = tensors(&g);
        t.retain(|(n, _)| n != "fc.bias" && n != "stem.bn.running_var");
        t.iter_mut().find(|(n, _)| n == "fc.weight").unwrap().1.shape = vec![4, 5];
        t.push(("head.weight".into(), f32_raw(&Tensor { shape: vec![1], data: vec![0.0] })));
        let e = error(&serialize(&t), &g);
        for needle in [
            "weights: t.safetensors does not fit 'tiny': ",
            "2 of the graph's 8 tensors missing: 'stem.bn.running_var' [4], 'fc.bias' [5]",
            "1 unexpected tensors: 'head.weight' (is the file for a different model than 'tiny'?)",
            "1 tensors have the wrong shape: 'fc.weight' is [4, 5], the graph needs [5, 4]",
        ] {
            assert!(e.contains(needle), "'{needle}' not in: {e}");
        }
    }

    #[test]
    fn long_lists_are_cut_and_prefixed_keys_get_a_hint() {
        let g = graph();
        let t: Vec<_> = tensors(&g).into_iter().map(|(n, r)| (format!("module.{n}"), r)).collect();
        let e = error(&serialize(&t), &g);
        assert!(e.contains("8 of the graph's 8 tensors missing"), "{e}");
        assert!(e.contains("9 unexpected tensors: 'module.aux.fc.weight', 'module.fc.bias',"), "{e}");
        assert!(e.contains("(keys carry a prefix 'module.' that the graph's names do not have)"), "{e}");
        let many: Vec<String> = (0..25).map(|i| format!("'k{i}'")).collect();
        assert_eq!(list(many.into_iter()), "'k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', 'k9', ... (15 more)");
    }

    #[test]
    fn element_types_convert_or_are_named() {
        let g = graph();
        let want = Weights::synthetic(&g, 7);
        let narrow = |name: &str, dtype: Dtype, enc: fn(f32) -> Vec<u8>| {
            let mut t = tensors(&g);
            let (_, r) = t.iter_mut().find(|(n, _)| n == name).unwrap();
            r.dtype = dtype;
            r.bytes = want.get(name).unwrap().data.iter().flat_map(|&v| enc(v)).collect();
            from_bytes(&serialize(&t), &g, "t.safetensors")
        };
        // F64 rounds to the same f32 it came from.
        let w = narrow("stem.conv.weight", Dtype::F64, |v| (v as f64).to_le_bytes().to_vec()).unwrap();
        assert_eq!(w, want);
        // BF16 and F16: the truncated values come back exactly.
        let w = narrow("fc.weight", Dtype::BF16, |v| ((v.to_bits() >> 16) as u16).to_le_bytes().to_vec()).unwrap();
        let got = &w.get("fc.weight").unwrap().data;
        assert!(
            got.iter().zip(&want.get("fc.weight").unwrap().data).all(|(a, b)| a.to_bits() == b.to_bits() & !0xffff)
        );
        let e = narrow("stem.bn.running_mean", Dtype::I32, |v| (v as i32).to_le_bytes().to_vec()).err().unwrap();
        let msg = e.to_string();
        assert!(matches!(e, Error::Import(_)), "{msg}");
        assert!(
            msg.contains("t.safetensors: 1 tensors have an element type")
                && msg.contains("'stem.bn.running_mean' is I32"),
            "{msg}"
        );
        // A half-precision tensor holding a NaN is refused by the final check.
        let e = narrow("fc.bias", Dtype::F16, |_| 0x7e00u16.to_le_bytes().to_vec()).err().unwrap().to_string();
        assert!(e.contains("t.safetensors: tensor 'fc.bias' holds a non-finite value at index 0"), "{e}");
    }

    /// A file of `header` (its length first) and `data` zero bytes.
    fn file(header: &str, data: usize) -> Vec<u8> {
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend(header.as_bytes());
        b.resize(b.len() + data, 0);
        b
    }

    /// Every check of the format, each with its message; the reference reader
    /// rejects each file too, except the repeated keys (it keeps the last).
    #[test]
    fn malformed_files_are_named_errors() {
        let t = |dtype: &str, shape: &str, offsets: &str| {
            format!(r#"{{"t":{{"dtype":"{dtype}","shape":{shape},"data_offsets":{offsets}}}}}"#)
        };
        let mut huge = (MAX_HEADER + 1).to_le_bytes().to_vec();
        huge.extend(b"{}");
        let mut cut = file(&t("F32", "[2]", "[0,8]"), 8);
        cut.truncate(cut.len() - 12);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"\x02\x00\x00".to_vec(), "shorter than its 8-byte header length"),
            (huge, "header length 100000001 over the limit of 100000000 bytes"),
            (cut, "beyond the"),
            (
                file("{\"\u{ff}\":1}", 0).iter().map(|&b| if b == 0xc3 { 0xff } else { b }).collect(),
                "header is not UTF-8",
            ),
            (file("{", 0), "invalid JSON header"),
            (file("[]", 0), "invalid JSON header: invalid type: sequence, expected an object of tensors"),
            (file("{} x", 0), "invalid JSON header: trailing characters"),
            (
                file(r#"{"__metadata__":{"a":1}}"#, 0),
                "invalid JSON header: invalid type: integer `1`, expected a string",
            ),
            (file(r#"{"t":{"dtype":"F32","shape":[1]}}"#, 4), "missing field `data_offsets`"),
            (
                file(r#"{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, 4),
                "invalid JSON header: invalid value",
            ),
            (
                file(r#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#, 4),
                "invalid JSON header: trailing characters",
            ),
            (file(&t("Q8", "[1]", "[0,1]"), 1), "tensor 't': unknown element type 'Q8'"),
            (file(&t("F32", "[1]", "[4,8]"), 8), "tensor 't': data_offsets [4, 8] do not continue at byte 0"),
            (file(&t("F32", "[1]", "[4,0]"), 4), "tensor 't': data_offsets [4, 0] do not continue at byte 0"),
            (
                file(
                    r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}"#,
                    3,
                ),
                "tensor 'b': data_offsets [1, 3] do not continue at byte 2",
            ),
            (
                file(&t("F32", "[2,3]", "[0,20]"), 20),
                "tensor 't': [2, 3] of F32 is 192 bits, data_offsets [0, 20] hold 20 bytes",
            ),
            (file(&t("F4", "[3]", "[0,1]"), 1), "tensor 't': [3] of F4 is 12 bits"),
            (
                file(&t("F32", "[4294967296,4294967296]", "[0,0]"), 0),
                "tensor 't': shape [4294967296, 4294967296] of F32 overflows",
            ),
            (file(&t("U8", "[8]", "[0,8]"), 4), "tensor 't': data_offsets [0, 8] beyond the 4 bytes of data"),
            (file(&t("U8", "[4]", "[0,4]"), 5), "the tensors cover 4 of the 5 bytes of data"),
        ];
        for (bytes, want) in &cases {
            let e = parse(bytes).err().unwrap_or_else(|| panic!("accepted; want '{want}'"));
            assert!(e.contains(want), "'{want}' not in: {e}");
            assert!(safetensors::SafeTensors::deserialize(bytes).is_err(), "the reference reader accepts: {want}");
        }
        for (header, key) in [
            (
                r#"{"t":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"t":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}"#,
                "t",
            ),
            (r#"{"__metadata__":{},"__metadata__":null}"#, "__metadata__"),
        ] {
            let e = parse(&file(header, 0)).err().expect("accepted");
            assert!(e.contains(&format!("invalid JSON header: '{key}' appears twice")), "{e}");
        }
    }

    /// Files the format allows: tensors in any order in the header, empty (also
    /// with a huge dimension beside the zero) and scalar tensors, sub-byte types in
    /// whole bytes, metadata, unknown fields, a header padded with spaces; each as
    /// the reference reader reads it.
    #[test]
    fn well_formed_files_read_as_the_reference_reader_reads_them() {
        let header = r#"{"b":{"dtype":"F4","shape":[2,3],"data_offsets":[5,8]},"__metadata__":{"format":"pt"},
            "a":{"dtype":"I32","shape":[],"data_offsets":[1,5]},"e":{"dtype":"F32","shape":[0,7],"data_offsets":[0,0]},
            "c":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"ignored":true},
            "z":{"dtype":"F64","shape":[1152921504606846976,0],"data_offsets":[8,8]}}   "#;
        let mut bytes = file(header, 8);
        let n = bytes.len();
        bytes[n - 8..].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let ours = parse(&bytes).unwrap();
        let theirs = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(ours.keys().collect::<Vec<_>>(), ["a", "b", "c", "e", "z"]);
        assert_eq!(theirs.len(), ours.len());
        for (name, v) in &ours {
            let t = theirs.tensor(name).unwrap();
            assert_eq!((v.dtype, &v.shape[..], v.data), (&t.dtype().to_string()[..], t.shape(), t.data()), "{name}");
        }
        assert_eq!(ours["a"].data, [2, 3, 4, 5]);
        assert!(parse(&file("{}", 0)).unwrap().is_empty());
    }

    #[test]
    fn half_precision_widens_exactly() {
        for (h, f) in [
            (0x0000u16, 0.0f32),
            (0x3c00, 1.0),
            (0xc000, -2.0),
            (0x3555, 0.333_251_95),
            (0x7bff, 65504.0),
            (0x0400, 1.0 / 16_384.0),
            (0x0001, 1.0 / 16_777_216.0),
            (0x83ff, -1023.0 / 16_777_216.0),
            (0x7c00, f32::INFINITY),
            (0xfc00, f32::NEG_INFINITY),
        ] {
            assert_eq!(f16_to_f32(h), f, "{h:#06x}");
        }
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
        assert!(f16_to_f32(0x7e00).is_nan() && f16_to_f32(0xfc01).is_nan());
        // Every finite half round-trips through f32 -> f64 -> the nearest half.
        for h in 0..=u16::MAX {
            let f = f16_to_f32(h);
            if f.is_finite() {
                assert_eq!(f as f64 as f32, f);
                assert!((f.abs() as f64) <= 65504.0, "{h:#06x}");
            }
        }
    }

    /// Truncations and header corruptions give an error or weights, never a panic.
    #[test]
    fn truncated_and_corrupt_bytes_are_errors_not_panics() {
        let g = graph();
        let bytes = serialize(&tensors(&g));
        assert!(from_bytes(&bytes, &g, "t").is_ok());
        for len in 0..bytes.len() {
            let e = error(&bytes[..len], &g);
            assert!(e.starts_with("cannot import model: t.safetensors: not a valid safetensors file ("), "{e}");
        }
        let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let mut state = 0x2545_f491_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        // Every header byte set to a few values, including digits and JSON punctuation.
        for i in 0..header_end {
            for v in [0u8, 0xff, b'9', b'"', b'{', b',', bytes[i] ^ 1, bytes[i].wrapping_add(1)] {
                let mut b = bytes.clone();
                b[i] = v;
                let _ = from_bytes(&b, &g, "t");
            }
        }
        // Random multi-byte changes, and garbage.
        for _ in 0..3000 {
            let mut b = bytes.clone();
            for _ in 0..1 + next() % 4 {
                let i = next() as usize % header_end;
                b[i] = next() as u8;
            }
            let _ = from_bytes(&b, &g, "t");
        }
        for junk in [
            &b""[..],
            &[0xff; 64][..],
            &b"\x02\x00\x00\x00\x00\x00\x00\x00{}"[..],
            &b"\x02\x00\x00\x00\x00\x00\x00\x00{}x"[..],
        ] {
            let _ = from_bytes(junk, &g, "t");
        }
        // An empty but valid file lists every tensor as missing.
        let e = error(b"\x02\x00\x00\x00\x00\x00\x00\x00{}", &g);
        assert!(e.contains("8 of the graph's 8 tensors missing"), "{e}");
    }
}
