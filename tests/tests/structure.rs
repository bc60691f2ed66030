//! The architecture as a test: dependencies point only down the crate map of
//! `docs/architecture.md`, no crate's modules import each other in a cycle,
//! and no source file (tests aside) grows past about a thousand lines. A
//! newcomer should be able to say from the folder tree where a change
//! belongs; this keeps it so.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Each crate's layer: a crate may depend (normal or dev) only on crates of
/// a lower layer.
const LAYERS: &[(&str, u8)] = &[
    ("causeway-net", 0),
    ("causeway-cache", 0),
    ("causeway-wire", 1),
    ("causeway-pop3", 1),
    ("causeway-imap", 1),
    ("causeway-proto", 2),
    ("causeway-store", 2),
    ("causeway-mailserver", 2),
    ("causeway-upstream", 3),
    ("causeway-client", 4),
    ("causeway-edge", 4),
    ("causeway-relay", 4),
    ("causeway", 5),
    ("causeway-tests", 6),
    ("causeway-sim", 6),
    ("causeway-bench", 7),
];

/// Longest source file allowed outside tests.
const MAX_LINES: usize = 1000;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// (crate name, its directory), for every crate of the workspace.
fn crates() -> Vec<(String, PathBuf)> {
    let root = root();
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = fs::read_dir(root.join("crates"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.push(root.join("sim"));
    dirs.push(root.join("tests"));
    dirs.sort();
    for d in dirs {
        let Ok(toml) = fs::read_to_string(d.join("Cargo.toml")) else {
            continue;
        };
        let name = toml
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_owned())
            .expect("a package name");
        out.push((name, d));
    }
    out
}

/// The Causeway crates a manifest depends on, in any dependency table.
fn causeway_deps(manifest: &str) -> BTreeSet<String> {
    let mut deps = BTreeSet::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_deps = l.ends_with("dependencies]");
            continue;
        }
        if !in_deps {
            continue;
        }
        let name = l.split(['=', '.', ' ']).next().unwrap_or("");
        if name == "causeway" || name.starts_with("causeway-") {
            deps.insert(name.to_owned());
        }
    }
    deps
}

#[test]
fn dependencies_point_down_the_crate_map() {
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    for (name, dir) in crates() {
        let Some(&mine) = layer.get(name.as_str()) else {
            wrong.push(format!(
                "{name} is not on the crate map (add it to LAYERS and docs/architecture.md)"
            ));
            continue;
        };
        let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        for dep in causeway_deps(&manifest) {
            match layer.get(dep.as_str()) {
                Some(&theirs) if theirs < mine => {}
                _ => wrong.push(format!("{name} depends on {dep}, which is not below it")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_edge_does_not_depend_on_the_relay() {
    let manifest = fs::read_to_string(root().join("crates/edge/Cargo.toml")).unwrap();
    assert!(!causeway_deps(&manifest).contains("causeway-relay"));
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` tail.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level module a file belongs to (`""` for the crate root).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    let first = first.trim_end_matches(".rs");
    match first {
        "lib" | "main" => String::new(),
        m => m.to_owned(),
    }
}

/// Every cycle among a crate's top-level modules (`crate::a` used in `b`
/// and `crate::b` in `a`, or longer).
fn cycles(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mods: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        // A module's own tests (`x/tests.rs`) may reach anything.
        if f.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let from = module_of(src, f);
        let text = code(&fs::read_to_string(f).unwrap());
        for (i, _) in text.match_indices("crate::") {
            let to: String = text[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if to != from && mods.contains(&to) && !from.is_empty() {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    let mut found = Vec::new();
    for start in edges.keys() {
        // Depth-first from `start`, looking for a way back to it.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((m, path)) = stack.pop() {
            for next in edges.get(&m).into_iter().flatten() {
                if next == start {
                    found.push(format!("{} -> {start}", path.join(" -> ")));
                } else if seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    found
}

#[test]
fn no_module_imports_its_importer() {
    let mut wrong = Vec::new();
    for (name, dir) in crates() {
        for c in cycles(&dir.join("src")) {
            wrong.push(format!("{name}: {c}"));
        }
    }
    assert!(wrong.is_empty(), "module cycles:\n{}", wrong.join("\n"));
}

#[test]
fn no_source_file_is_over_a_thousand_lines() {
    let mut wrong = Vec::new();
    for (name, dir) in crates() {
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for f in files {
            if f.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let n = fs::read_to_string(&f).unwrap().lines().count();
            if n > MAX_LINES {
                wrong.push(format!("{name}: {} has {n} lines", f.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "split these:\n{}", wrong.join("\n"));
}
