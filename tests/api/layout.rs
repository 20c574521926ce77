//! The server's layers, checked from the source: `src/` holds `main.rs`, `lib.rs` and the four
//! layer folders; `service/` never touches axum; no file imports from a layer above its own
//! (`app` → `http`, `cli` → `service`; `http` and `cli` side by side); and no two files or
//! folders depend on each other in a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// How high a layer sits: a file may use its own layer and the ones below.
fn rank(layer: &str) -> Option<u8> {
    match layer {
        "app" => Some(3),
        "http" | "cli" => Some(2),
        "service" => Some(1),
        _ => None,
    }
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `dir`, as module paths (`["http", "tickets"]` for
/// `src/http/tickets/mod.rs`) with their text.
fn modules(dir: &Path) -> BTreeMap<Vec<String>, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(dir).unwrap();
                let mut segs: Vec<String> = rel
                    .iter()
                    .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
                    .collect();
                if matches!(
                    segs.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    segs.pop();
                }
                out.insert(segs, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// The text of a file without its `#[cfg(test)]` module and without comments.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a file names: `crate::a::b::c`, `super::x` and `child::x` (for its `mod child;`),
/// made absolute.
fn referenced_paths(module: &[String], code: &str) -> Vec<Vec<String>> {
    let children: BTreeSet<String> = code
        .lines()
        .filter_map(|l| {
            let l = l.trim().trim_start_matches("pub ");
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect();
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if is_ident(bytes[i]) && (i == 0 || !is_ident(bytes[i - 1]) && bytes[i - 1] != b':') {
            let start = i;
            while i < bytes.len() && (is_ident(bytes[i]) || bytes[i] == b':') {
                i += 1;
            }
            let path: Vec<&str> = code[start..i].split("::").collect();
            if path.len() < 2 {
                continue;
            }
            let mut abs: Vec<String> = match path[0] {
                "crate" => Vec::new(),
                "super" => module[..module.len().saturating_sub(1)].to_vec(),
                first if children.contains(first) => {
                    let mut m = module.to_vec();
                    m.push(first.to_string());
                    m
                }
                _ => continue,
            };
            let skip = usize::from(matches!(path[0], "crate" | "super"));
            abs.extend(
                path[skip..]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .map(|s| s.to_string()),
            );
            out.push(abs);
        } else {
            i += 1;
        }
    }
    out
}

/// The longest module that `path` starts with.
fn owner(known: &BTreeMap<Vec<String>, String>, path: &[String]) -> Vec<String> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| known.contains_key(p))
        .unwrap_or_default()
}

/// Module → the modules it uses (itself and its ancestors excluded: a child naming its
/// parent's items through `super` is how Rust modules nest, not a layer step).
fn graph(known: &BTreeMap<Vec<String>, String>) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    known
        .iter()
        .map(|(m, text)| {
            let deps = referenced_paths(m, &code_of(text))
                .iter()
                .map(|p| owner(known, p))
                .filter(|d| d != m && !m.starts_with(d))
                .collect();
            (m.clone(), deps)
        })
        .collect()
}

/// The circles of a graph (strongly connected components of more than one node).
fn circles<N: Ord + Clone>(g: &BTreeMap<N, BTreeSet<N>>) -> Vec<Vec<N>> {
    // Kosaraju: finish order on g, then components on the reversed graph.
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for start in g.keys() {
        if seen.contains(start) {
            continue;
        }
        let mut stack = vec![(start.clone(), false)];
        while let Some((n, done)) = stack.pop() {
            if done {
                order.push(n);
                continue;
            }
            if !seen.insert(n.clone()) {
                continue;
            }
            stack.push((n.clone(), true));
            for m in g.get(&n).into_iter().flatten() {
                if !seen.contains(m) {
                    stack.push((m.clone(), false));
                }
            }
        }
    }
    let mut reverse: BTreeMap<N, BTreeSet<N>> = BTreeMap::new();
    for (n, ms) in g {
        for m in ms {
            reverse.entry(m.clone()).or_default().insert(n.clone());
        }
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for n in order.into_iter().rev() {
        if assigned.contains(&n) {
            continue;
        }
        let mut component = Vec::new();
        let mut stack = vec![n];
        while let Some(x) = stack.pop() {
            if !assigned.insert(x.clone()) {
                continue;
            }
            component.push(x.clone());
            stack.extend(reverse.get(&x).into_iter().flatten().cloned());
        }
        if component.len() > 1 {
            out.push(component);
        }
    }
    out
}

#[test]
fn src_holds_main_lib_and_the_four_layers() {
    let mut entries: Vec<String> = std::fs::read_dir(src_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        ["app", "cli", "http", "lib.rs", "main.rs", "service"]
    );
}

#[test]
fn no_service_file_uses_axum() {
    let offenders: Vec<String> = modules(&src_dir().join("service"))
        .into_iter()
        .filter(|(_, text)| code_of(text).contains("axum"))
        .map(|(m, _)| format!("service/{}", m.join("/")))
        .collect();
    assert!(offenders.is_empty(), "axum used in {offenders:?}");
}

#[test]
fn no_file_imports_from_a_layer_above_its_own() {
    let known = modules(&src_dir());
    let mut violations = Vec::new();
    for (m, deps) in graph(&known) {
        let Some(own) = m.first().and_then(|l| rank(l)) else {
            continue;
        };
        for d in deps {
            let Some(layer) = d.first() else { continue };
            let Some(theirs) = rank(layer) else { continue };
            let sideways = theirs == own && layer != &m[0];
            if theirs > own || sideways {
                violations.push(format!("{} uses {}", m.join("::"), d.join("::")));
            }
        }
    }
    assert!(violations.is_empty(), "upward imports: {violations:#?}");
}

#[test]
fn no_files_or_folders_depend_on_each_other_in_a_circle() {
    let known = modules(&src_dir());
    let files = graph(&known);
    let file_circles = circles(&files);
    assert!(
        file_circles.is_empty(),
        "files in a circle: {file_circles:#?}"
    );
    // Folders: a module and everything below it, against its siblings.
    let mut folders: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (m, deps) in &files {
        for depth in 1..=m.len() {
            let from = m[..depth].to_vec();
            for d in deps {
                if d.len() >= depth && d[..depth - 1] == from[..depth - 1] && d[..depth] != from[..]
                {
                    folders
                        .entry(from.clone())
                        .or_default()
                        .insert(d[..depth].to_vec());
                }
            }
        }
    }
    let folder_circles = circles(&folders);
    assert!(
        folder_circles.is_empty(),
        "folders in a circle: {folder_circles:#?}"
    );
}

#[test]
fn the_checks_see_a_violation() {
    // The checks above must be able to fail: a made-up service file naming axum and the
    // http layer is caught by both.
    let mut known = BTreeMap::new();
    known.insert(
        vec!["service".to_string(), "x".to_string()],
        "use crate::http::state::AppState;\nuse crate::service::y::f;".to_string(),
    );
    known.insert(
        vec!["service".to_string(), "y".to_string()],
        "use crate::service::x::g;".to_string(),
    );
    known.insert(vec!["http".to_string(), "state".to_string()], String::new());
    let g = graph(&known);
    assert!(g[&vec!["service".to_string(), "x".to_string()]]
        .contains(&vec!["http".to_string(), "state".to_string()]));
    assert_eq!(circles(&g).len(), 1);
}
