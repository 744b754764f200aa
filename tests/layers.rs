//! The layer rules of ARCHITECTURE.md, checked on the source: which layer may use which, no
//! wire or Kubernetes types where they do not belong, no import circles between layers or
//! between the modules of one layer, and no module over 400 lines.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

const LAYERS: [&str; 9] = [
    "domain", "store", "engine", "ops", "github", "replay", "api", "config", "app",
];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a file belongs to (`src/engine/batcher.rs` → `engine`).
fn layer_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    Some(first.trim_end_matches(".rs").to_owned())
}

/// Code lines only (comments dropped), so prose may name anything.
fn code(file: &Path) -> String {
    fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules `text` names after `prefix` (`crate::engine::…` → `engine`; a group
/// `super::{a::X, b}` → `a`, `b`).
fn named_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices(prefix) {
        let rest = &text[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut start) = (0usize, 0usize);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        names.insert(ident(&group[start..j]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.insert(ident(&group[start..j]));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(ident(rest));
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

fn assert_acyclic(graph: &BTreeMap<String, BTreeSet<String>>, what: &str) {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        what: &str,
    ) {
        if done.contains(node) {
            return;
        }
        assert!(
            !path.iter().any(|p| p == node),
            "{what}: import circle {} -> {node}",
            path.join(" -> ")
        );
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done, what);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, graph, &mut Vec::new(), &mut done, what);
    }
}

#[test]
fn layers_use_only_the_layers_below_them_and_no_wire_types() {
    let forbidden: BTreeMap<&str, (&[&str], &[&str])> = BTreeMap::from([
        (
            "domain",
            (
                &["store", "engine", "ops", "github", "api", "config", "app"][..],
                &[
                    "tonic::",
                    "prost::",
                    "prost_types::",
                    "kube::",
                    "k8s_openapi::",
                ][..],
            ),
        ),
        (
            "store",
            (
                &["engine", "ops", "github", "api", "config", "app"][..],
                &["tonic::", "prost::", "prost_types::"][..],
            ),
        ),
        (
            "engine",
            (
                &["github", "api", "config", "app"][..],
                &[
                    "tonic::",
                    "prost::",
                    "prost_types::",
                    "kube::",
                    "k8s_openapi::",
                ][..],
            ),
        ),
        (
            "ops",
            (
                &[
                    "domain", "store", "engine", "github", "api", "config", "app",
                ][..],
                &["tonic::", "prost::"][..],
            ),
        ),
        (
            "replay",
            (
                &["engine", "ops", "github", "api", "config", "app"][..],
                &[
                    "tonic::",
                    "prost::",
                    "prost_types::",
                    "kube::",
                    "k8s_openapi::",
                ][..],
            ),
        ),
        (
            "github",
            (
                &["engine", "api", "config", "app"][..],
                &[
                    "tonic::",
                    "prost::",
                    "prost_types::",
                    "kube::",
                    "k8s_openapi::",
                ][..],
            ),
        ),
    ]);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src()) {
        let Some(layer) = layer_of(&file) else {
            continue;
        };
        let text = code(&file);
        let uses = named_after(&text, "crate::");
        if let Some((layers, crates)) = forbidden.get(layer.as_str()) {
            for used in &uses {
                assert!(
                    !layers.contains(&used.as_str()),
                    "{}: uses crate::{used}",
                    file.display()
                );
            }
            for krate in *crates {
                assert!(!text.contains(krate), "{}: uses {krate}", file.display());
            }
        }
        let edges = graph.entry(layer.clone()).or_default();
        edges.extend(
            uses.into_iter()
                .filter(|u| *u != layer && LAYERS.contains(&u.as_str())),
        );
    }
    assert_acyclic(&graph, "layers");
}

#[test]
fn modules_of_one_layer_import_no_circle_and_stay_small() {
    for layer in LAYERS {
        let dir = src().join(layer);
        if !dir.is_dir() {
            continue;
        }
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in rust_files(&dir) {
            let lines = fs::read_to_string(&file).unwrap().lines().count();
            assert!(lines <= 400, "{}: {lines} lines", file.display());
            let name = file.file_stem().unwrap().to_string_lossy().into_owned();
            if name == "mod" || file.parent() != Some(dir.as_path()) {
                continue;
            }
            let text = code(&file);
            let mut uses = named_after(&text, "super::");
            uses.extend(named_after(&text, &format!("crate::{layer}::")));
            uses.retain(|u| *u != name && dir.join(format!("{u}.rs")).exists());
            graph.entry(name).or_default().extend(uses);
        }
        assert_acyclic(&graph, layer);
    }
}
