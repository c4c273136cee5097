//! The crate's dependency rule, checked on the source: `protocol` depends on nothing of ours,
//! `observe` (metric hooks, health, trace context) on `protocol` at most, `context` only on
//! `protocol`, `error` on `protocol`, `context` and `observe`, `store` on those four, and each
//! layer folder on those five, never on another layer folder (see the guide in the crate docs).
//! Only `lib.rs` sees everything.
//!
//! The check reads every `.rs` file under `src/`, ignores comments (intra-doc links do not make
//! a dependency) and unit-test modules (tests may compose layers), and collects each `crate::<module>` path and each `super::` path that leaves
//! the file's top-level module.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules that are not layers, with what each may import.
const FOUNDATION: &[(&str, &[&str])] = &[
    ("protocol", &[]),
    ("observe", &["protocol"]),
    ("context", &["protocol"]),
    ("error", &["protocol", "context", "observe"]),
    ("store", &["protocol", "context", "error", "observe"]),
];

/// What a layer folder may import.
const LAYER_MAY_IMPORT: &[&str] = &["protocol", "context", "error", "store", "observe"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without comments (line comments, doc comments, block comments); string literals
/// are kept, which is harmless for this check.
fn strip_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while !rest.is_empty() {
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            rest = &rest[end..];
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            rest = &rest[end..];
        } else if rest.starts_with('"') {
            // Skip string literals so that "//" inside them is not a comment.
            let bytes = rest.as_bytes();
            let mut i = 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            let end = (i + 1).min(rest.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else {
            let ch = rest.chars().next().unwrap();
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
    }
    out
}

/// The code without its unit-test module (`#[cfg(test)] mod tests`, at the bottom of a file by
/// the crate's habit): tests may compose layers, the library may not.
fn library_code(code: &str) -> String {
    match code.find("#[cfg(test)]\nmod ") {
        Some(at) => code[..at].to_owned(),
        None => code.to_owned(),
    }
}

/// `crate::xxx` paths, including those inside `use crate::{a, b::c}` groups.
fn crate_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `mcp_edge_crate::` or `$crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found
}

#[test]
fn the_import_graph_has_only_the_allowed_arrows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let foundation: BTreeMap<&str, &[&str]> = FOUNDATION.iter().copied().collect();

    let mut layers = BTreeSet::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if name != "lib" && name != "docs" && !foundation.contains_key(name.as_str()) {
            layers.insert(name);
        }
    }

    let mut violations = Vec::new();
    let mut arrows = BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || top == "docs" {
            continue;
        }
        let code = library_code(&strip_comments(&fs::read_to_string(file).unwrap()));
        // `super::super::…` out of the top-level module is as much an import as `crate::`.
        let depth = relative.components().count() - 1;
        let is_mod_file = relative.file_name().is_some_and(|n| n == "mod.rs");
        let max_super = if is_mod_file { depth - 1 } else { depth };
        if code.contains(&"super::".repeat(max_super + 1)) && depth > 0 {
            // Only inside `mod tests` nested modules is deeper `super` legitimate; those stay
            // inside the file's own folder, which the count above already allows for one level.
            let deeper = "super::".repeat(max_super + 2);
            if code.contains(&deeper) {
                violations.push(format!(
                    "{}: `super::` leaves its module",
                    relative.display()
                ));
            }
        }
        let allowed: BTreeSet<&str> = match foundation.get(top.as_str()) {
            Some(allowed) => allowed.iter().copied().collect(),
            None => LAYER_MAY_IMPORT.iter().copied().collect(),
        };
        for module in crate_modules(&code) {
            if module == top {
                continue;
            }
            arrows.insert(format!("{top} → {module}"));
            if !allowed.contains(module.as_str()) {
                violations.push(format!(
                    "{}: `crate::{module}` ({top} may import only {allowed:?})",
                    relative.display()
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "forbidden imports:\n{}\n(all arrows: {arrows:?})",
        violations.join("\n")
    );
    // The check found the modules it is about.
    assert!(
        layers.contains("guard") && layers.contains("session"),
        "{layers:?}"
    );
}

#[test]
fn comments_and_groups_are_read_correctly() {
    let code = strip_comments(
        "/// [`X`](crate::guard::X)\nuse crate::{protocol::A, context::B};\nlet s = \"//\"; crate::error::C;",
    );
    let found = crate_modules(&code);
    assert_eq!(
        found,
        ["context", "error", "protocol"].map(String::from).into()
    );
}
