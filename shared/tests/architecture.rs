//! Rules of the house, checked on the source tree of every crate in the
//! workspace: no module imports, directly or through others, a module that
//! imports it back.
//!
//! A module is a file (`a/b.rs` and `a/b/mod.rs` are `a::b`); an edge is a
//! `crate::…` or `super::…` path outside comments. A module and its own
//! ancestors or descendants are one room (a parent declares its children,
//! children use what their parent shares), so those edges do not count.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every crate's source root, from the workspace's manifest.
fn crate_roots() -> Vec<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let manifest = std::fs::read_to_string(workspace.join("Cargo.toml")).unwrap();
    let members = manifest.split("members = [").nth(1).unwrap().split(']').next().unwrap();
    let roots: Vec<PathBuf> = members
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .map(|m| workspace.join(m).join("src"))
        .collect();
    assert!(roots.len() >= 5 && roots.iter().all(|r| r.is_dir()), "crate roots: {roots:?}");
    roots
}

/// `module path → source` for every `.rs` file under `root`.
fn modules(root: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).unwrap().with_extension("");
                let mut parts: Vec<String> =
                    relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
                if parts.last().is_some_and(|p| p == "mod") {
                    parts.pop();
                }
                out.insert(parts.join("::"), std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The source without comments, so a doc link or an example is no import.
fn code_of(source: &str) -> String {
    source
        .lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn related(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
}

/// Which modules each module uses.
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<&str, BTreeSet<&str>> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (module, source) in modules {
        let code = code_of(source);
        let mut used = BTreeSet::new();
        for (prefix, base) in [("crate::", String::new()), ("super::", parent(module))] {
            for (at, _) in code.match_indices(prefix) {
                let path: String =
                    code[at + prefix.len()..].chars().take_while(|c| ident(*c)).collect();
                let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
                // The longest prefix of the path that names a module.
                let target = (1..=parts.len()).rev().find_map(|n| {
                    let name = parts[..n].join("::");
                    let name = if base.is_empty() { name } else { format!("{base}::{name}") };
                    modules.get_key_value(&name).map(|(k, _)| k.as_str())
                });
                if let Some(target) = target.filter(|t| !related(module, t)) {
                    used.insert(target);
                }
            }
        }
        edges.insert(module, used);
    }
    edges
}

fn parent(module: &str) -> String {
    module.rsplit_once("::").map(|(p, _)| p.to_owned()).unwrap_or_default()
}

/// A cycle through `start`, if any, as the path that closes it.
fn cycle_from<'a>(
    start: &'a str,
    edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
) -> Option<Vec<&'a str>> {
    let mut stack = vec![(start, vec![start])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for &next in edges.get(at).into_iter().flatten() {
            if next == start {
                return Some([path.clone(), vec![start]].concat());
            }
            if seen.insert(next) {
                stack.push((next, [path.clone(), vec![next]].concat()));
            }
        }
    }
    None
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let mut cycles = Vec::new();
    let mut counted = 0;
    for root in crate_roots() {
        let modules = modules(&root);
        let edges = imports(&modules);
        counted += edges.values().map(BTreeSet::len).sum::<usize>();
        let mut reported = BTreeSet::new();
        for module in modules.keys() {
            if let Some(cycle) = cycle_from(module, &edges)
                && reported.insert(cycle.iter().copied().collect::<BTreeSet<_>>())
            {
                cycles.push(format!("{}: {}", root.display(), cycle.join(" → ")));
            }
        }
    }
    assert!(counted > 50, "only {counted} imports found: is the parser reading the tree?");
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_check_sees_a_cycle_and_ignores_comments_and_children() {
    let modules: BTreeMap<String, String> = [
        ("a", "use crate::b::Thing;\n// see crate::c\n"),
        ("b", "pub fn f() { crate::a::g() }"),
        ("c", "/// crate::a in a doc comment\nuse super::c::inner::X;"),
        ("c::inner", "use super::Y; use crate::c::Z;"),
    ]
    .into_iter()
    .map(|(m, s)| (m.to_owned(), s.to_owned()))
    .collect();
    let edges = imports(&modules);
    assert_eq!(cycle_from("a", &edges), Some(vec!["a", "b", "a"]));
    assert_eq!(cycle_from("c", &edges), None);
    assert!(edges["c"].is_empty() && edges["c::inner"].is_empty());
}

/// Where a module builds or reads a table key by hand: the records layer's
/// key scheme, an item key made from strings, or a key prefix literal.
fn key_building(code: &str) -> Vec<&'static str> {
    const SIGNS: [&str; 10] = [
        "keys::",
        "ItemKey::new(",
        "\"USER#",
        "\"CLUSTER#",
        "\"PODS#",
        "\"PODHIST#",
        "\"HIST#",
        "\"CODE#",
        "\"WL#",
        "\"SEEN#",
    ];
    SIGNS.into_iter().filter(|sign| code.contains(sign)).collect()
}

#[test]
fn keys_are_built_only_in_the_records_layer_and_the_store() {
    let mut outside = Vec::new();
    let mut scanned = 0;
    for root in crate_roots() {
        let shared = root.parent().is_some_and(|c| c.ends_with("shared"));
        for (module, source) in modules(&root) {
            scanned += 1;
            let home = ["records", "store"]
                .iter()
                .any(|layer| module == *layer || module.starts_with(&format!("{layer}::")));
            if shared && home {
                continue;
            }
            let signs = key_building(&code_of(&source));
            if !signs.is_empty() {
                outside.push(format!("{}: {module}: {signs:?}", root.display()));
            }
        }
    }
    assert!(scanned > 50, "only {scanned} modules read");
    assert!(outside.is_empty(), "keys built outside the records layer:\n{}", outside.join("\n"));
}

#[test]
fn the_key_check_sees_hand_built_keys_and_not_comments() {
    assert_eq!(
        key_building(r#"ItemKey::new(pk, format!("CODE#{x}"))"#),
        ["ItemKey::new(", "\"CODE#"]
    );
    assert_eq!(key_building("let q = keys::cluster_pk(c);"), ["keys::"]);
    assert!(key_building(&code_of("// keys::cluster_pk in a comment\nlet a = 1;")).is_empty());
    assert!(key_building("records::workload::query(&cluster, None)").is_empty());
}
