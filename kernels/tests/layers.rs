//! The crate's modules form layers: every `crate::` (and `super::`, and a child
//! module's) path in a source file points to a file below it, so that no two files
//! import each other, directly or through others. Also: no source file is longer
//! than [`MAX_LINES`] lines, its unit tests excluded.
//!
//! Each file of `src/` is a node; a path in its code (comments and `#[cfg(test)]`
//! modules left out) is an edge to the longest module prefix of that path that is a
//! file. `lib.rs`'s `mod` declarations are not edges, its re-exports are: a module
//! that imports through the crate root (`crate::BLOCK`) closes a cycle with it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest source file, in lines, tests excluded.
const MAX_LINES: usize = 600;

/// A module path (`["conv", "tiles"]`; the crate root is empty) and its file.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.file_stem().is_some_and(|s| s == "tests") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src");
            let mut segs: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            let last = segs.pop().expect("a file name");
            match last.as_str() {
                "lib.rs" | "mod.rs" => {}
                name => segs.push(name.trim_end_matches(".rs").to_string()),
            }
            out.insert(segs, path);
        }
    }
    out
}

/// The code of a file: comments, string literals and `#[cfg(test)]` modules
/// removed.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") && lines.peek().is_some_and(|l| l.trim_start().starts_with("mod tests"))
        {
            // A test module: skip it to the closing brace at its indentation (or its `;`).
            let open = lines.next().expect("peeked");
            if open.trim_end().ends_with(';') {
                continue;
            }
            let indent = open.len() - open.trim_start().len();
            for l in lines.by_ref() {
                if l.len() - l.trim_start().len() == indent && l.trim() == "}" {
                    break;
                }
            }
            continue;
        }
        let line = line.split("//").next().unwrap_or("");
        // String literals hold no paths worth counting (and may hold "//").
        let mut in_str = false;
        for c in line.chars() {
            if c == '"' {
                in_str = !in_str;
            } else if !in_str {
                out.push(c);
            }
        }
        out.push('\n');
    }
    out
}

/// The paths a use tree starting at `rest` names, each with `prefix` in front:
/// `a::b`, `a::{b, c::d}`, `{a, b}`.
fn use_tree(prefix: &[String], rest: &str, out: &mut Vec<Vec<String>>) {
    let rest = rest.trim_start();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    use_tree(prefix, &inner[start..i], out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    use_tree(prefix, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return;
    }
    let ident: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    if ident.is_empty() {
        out.push(prefix.to_vec());
        return;
    }
    let mut path = prefix.to_vec();
    path.push(ident.clone());
    match rest[ident.len()..].strip_prefix("::") {
        Some(more) => use_tree(&path, more, out),
        None => out.push(path),
    }
}

/// Every absolute module path the code of module `module` names.
fn paths(module: &[String], code: &str, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let boundary =
        |i: usize| i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b'$');
    for (i, _) in code.match_indices("crate::") {
        if boundary(i) {
            use_tree(&[], &code[i + "crate::".len()..], &mut out);
        }
    }
    for (i, _) in code.match_indices("super::") {
        if boundary(i) && !module.is_empty() {
            use_tree(&module[..module.len() - 1], &code[i + "super::".len()..], &mut out);
        }
    }
    // `use child::...` relative to this module.
    for (i, _) in code.match_indices("use ") {
        if boundary(i) {
            let rest = &code[i + 4..];
            let ident: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if children.contains(&ident) {
                use_tree(module, rest, &mut out);
            }
        }
    }
    out
}

#[test]
fn imports_point_down_and_files_stay_small() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut long = Vec::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).expect("read");
        let code = code(&text);
        let lines = code.lines().count();
        if lines > MAX_LINES {
            long.push(format!("{} ({lines} lines)", file.display()));
        }
        let children: BTreeSet<String> = modules
            .keys()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
            .map(|m| m[module.len()].clone())
            .collect();
        let targets = edges.entry(module.clone()).or_default();
        for path in paths(module, &code, &children) {
            // The longest prefix that is a file.
            let target = (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains_key(p));
            if let Some(target) = target.filter(|t| t != module) {
                targets.insert(target);
            }
        }
    }
    assert!(long.is_empty(), "source files over {MAX_LINES} lines: {long:?}");

    // Depth-first search for a cycle; the order files finish in is a layering.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks: BTreeMap<&Vec<String>, Mark> = edges.keys().map(|m| (m, Mark::New)).collect();
    let mut order = Vec::new();
    fn visit<'a>(
        m: &'a Vec<String>,
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        marks: &mut BTreeMap<&'a Vec<String>, Mark>,
        stack: &mut Vec<&'a Vec<String>>,
        order: &mut Vec<&'a Vec<String>>,
    ) {
        match marks[m] {
            Mark::Done => return,
            Mark::Open => {
                let at = stack.iter().position(|s| *s == m).expect("on the stack");
                let cycle: Vec<String> =
                    stack[at..].iter().chain([&m]).map(|s| format!("crate::{}", s.join("::"))).collect();
                panic!("modules import each other: {}", cycle.join(" -> "));
            }
            Mark::New => {}
        }
        marks.insert(m, Mark::Open);
        stack.push(m);
        for t in &edges[m] {
            visit(t, edges, marks, stack, order);
        }
        stack.pop();
        marks.insert(m, Mark::Done);
        order.push(m);
    }
    for m in edges.keys() {
        visit(m, &edges, &mut marks, &mut Vec::new(), &mut order);
    }
    let names: Vec<String> = order.iter().map(|m| if m.is_empty() { "lib".into() } else { m.join("::") }).collect();
    eprintln!("modules, each above the ones it imports:\n  {}", names.join("\n  "));
    assert!(edges.len() > 20, "too few modules found: {}", edges.len());
}
