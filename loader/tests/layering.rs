//! The library's layering, checked on its sources: the pure object model
//! (`obj/`) uses nothing of rawbpf but `uapi`; no import circle among the
//! top-level modules (so the top-level error, which wraps every layer's,
//! is imported by none of them); no source file over 1,000 lines.
//! Failing here names the module and the reference that broke the rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file of the library (not the tests inside them).
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read loader/src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` tail.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names lib.rs re-exports at the crate root, with the module each
/// comes from (`pub use error::{Error, LoadError}` gives `LoadError` → `error`).
fn root_exports(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for line in code(lib).lines() {
        let Some(path) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let path = path.trim_end_matches(';');
        let (module, items) = path.split_once("::").unwrap_or((path, ""));
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let last = item.trim().rsplit("::").next().unwrap_or("").trim();
            if !last.is_empty() {
                names.insert(last.to_owned(), module.to_owned());
            }
        }
    }
    names
}

/// The top-level modules a piece of code names through `crate::`.
fn crate_refs(code: &str, root: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end]
                .split(',')
                .map(|s| s.trim().split("::").next().unwrap_or("").trim())
                .collect()
        } else {
            vec![rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("")]
        };
        for n in names {
            match n.chars().next() {
                Some(c) if c.is_ascii_lowercase() => {
                    refs.insert(n.to_owned());
                }
                // An item lib.rs re-exports (`crate::LoadError`): the module
                // it comes from.
                Some(_) => {
                    if let Some(m) = root.get(n) {
                        refs.insert(m.clone());
                    }
                }
                None => {}
            }
        }
    }
    refs
}

struct Module {
    refs: BTreeMap<String, PathBuf>,
}

fn modules() -> (BTreeMap<String, Module>, Vec<(PathBuf, usize)>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let root = root_exports(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut mods: BTreeMap<String, Module> = BTreeMap::new();
    let mut big = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_owned();
        if rel.starts_with("bin") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let lines = text.lines().count();
        if lines > 1000 {
            big.push((rel.clone(), lines));
        }
        if rel == Path::new("lib.rs") {
            continue;
        }
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = first.trim_end_matches(".rs").to_owned();
        let m = mods.entry(top.clone()).or_insert(Module {
            refs: BTreeMap::new(),
        });
        for r in crate_refs(&code(&text), &root) {
            if r != top {
                m.refs.entry(r).or_insert_with(|| rel.clone());
            }
        }
    }
    (mods, big)
}

#[test]
fn obj_uses_nothing_of_rawbpf_but_uapi() {
    let (mods, _) = modules();
    let obj = &mods["obj"];
    let outside: Vec<String> = obj
        .refs
        .iter()
        .filter(|(m, _)| m.as_str() != "uapi")
        .map(|(m, file)| format!("{} uses crate::{m}", file.display()))
        .collect();
    assert!(
        outside.is_empty(),
        "obj/ reaches outside the object model:\n{}",
        outside.join("\n")
    );
}

#[test]
fn no_import_circle_among_modules() {
    let (mods, _) = modules();
    // A circle exists when some module reaches itself through its references.
    let mut circles = Vec::new();
    for start in mods.keys() {
        let mut path = vec![start.clone()];
        if let Some(found) = reach(&mods, start, &mut path, &mut BTreeSet::new()) {
            circles.push(found.join(" -> "));
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

/// A path from the last module of `path` back to `start`, depth first.
fn reach(
    mods: &BTreeMap<String, Module>,
    start: &str,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    let here = path.last().unwrap().clone();
    for next in mods.get(&here).map(|m| m.refs.keys()).into_iter().flatten() {
        if next == start {
            let mut found = path.clone();
            found.push(next.clone());
            return Some(found);
        }
        if seen.insert(next.clone()) {
            path.push(next.clone());
            if let Some(found) = reach(mods, start, path, seen) {
                return Some(found);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn no_library_file_over_1000_lines() {
    let (_, big) = modules();
    let list: Vec<String> = big
        .iter()
        .map(|(f, n)| format!("{} ({n} lines)", f.display()))
        .collect();
    assert!(list.is_empty(), "split these files:\n{}", list.join("\n"));
}
