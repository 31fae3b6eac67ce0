//! The module map has no import circle: at every level of `src/`, the
//! sibling modules (files and folders under one parent) that refer to each
//! other (`use`, or a `crate::`/`super::` path in code) form no cycle, so
//! each can be read after the ones it uses. The product's adapters sit
//! above the application layer: `serve` and `eval` use nothing of `cli`.
//! Test modules (`#[cfg(test)] mod tests`) are left out: they may use
//! anything.

use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// Every module of the crate and its file (`a/mod.rs` is `a`).
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    walkdir::WalkDir::new(src)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| {
            let rel = p.strip_prefix(src).unwrap().with_extension("");
            let mut m: Module = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
            if m.last().is_some_and(|l| l == "mod") || m == ["lib"] || m == ["main"] {
                m.pop();
            }
            (m, p)
        })
        .collect()
}

/// The modules each module refers to (outside its tests).
fn references(mods: &BTreeMap<Module, PathBuf>) -> BTreeMap<Module, BTreeSet<Module>> {
    let path = Regex::new(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)").unwrap();
    let group = Regex::new(r"use\s+(crate|super)::\{([^}]*)\}").unwrap();
    let comment = Regex::new(r"//[^\n]*").unwrap();
    let tests = Regex::new(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+tests\s*\{").unwrap();
    let longest = |p: &[String]| (1..=p.len()).rev().map(|k| p[..k].to_vec()).find(|k| mods.contains_key(k));
    mods.iter()
        .map(|(m, file)| {
            let text = std::fs::read_to_string(file).unwrap();
            let text = comment.replace_all(&text, "");
            let code = match tests.find(&text) {
                Some(t) => &text[..t.start()],
                None => &text[..],
            };
            let parent: Module = m.iter().take(m.len().saturating_sub(1)).cloned().collect();
            let base = |head: &str| if head == "crate" { vec![] } else { parent.clone() };
            let mut out = BTreeSet::new();
            for c in path.captures_iter(code) {
                let mut p = base(&c[1]);
                p.extend(c[2].split("::").skip(1).filter(|s| *s != "super").map(String::from));
                out.extend(longest(&p));
            }
            for c in group.captures_iter(code) {
                for item in c[2].split(',') {
                    let name = item.trim().split([':', ' ']).next().unwrap_or("");
                    let mut p = base(&c[1]);
                    p.push(name.to_string());
                    out.extend(longest(&p));
                }
            }
            out.remove(m);
            (m.clone(), out)
        })
        .collect()
}

/// Strongly connected components with more than one member (Tarjan).
fn cycles(nodes: &BTreeSet<Module>, edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct T<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        out: Vec<Vec<Module>>,
    }
    fn visit(t: &mut T, v: &Module) {
        let i = t.index.len();
        t.index.insert(v.clone(), i);
        t.low.insert(v.clone(), i);
        t.stack.push(v.clone());
        for w in t.edges.get(v).cloned().unwrap_or_default() {
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let l = t.low[v].min(t.low[&w]);
                t.low.insert(v.clone(), l);
            } else if t.stack.contains(&w) {
                let l = t.low[v].min(t.index[&w]);
                t.low.insert(v.clone(), l);
            }
        }
        if t.low[v] == t.index[v] {
            let at = t.stack.iter().position(|x| x == v).unwrap();
            let comp = t.stack.split_off(at);
            if comp.len() > 1 {
                t.out.push(comp);
            }
        }
    }
    let mut t = T { edges, index: BTreeMap::new(), low: BTreeMap::new(), stack: vec![], out: vec![] };
    for v in nodes {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// Per parent module: its children, and which child refers to which (a
/// reference from anywhere inside a child counts for that child).
fn sibling_graphs(
    mods: &BTreeMap<Module, PathBuf>,
    refs: &BTreeMap<Module, BTreeSet<Module>>,
) -> BTreeMap<Module, BTreeMap<Module, BTreeSet<Module>>> {
    let mut graphs: BTreeMap<Module, BTreeMap<Module, BTreeSet<Module>>> = BTreeMap::new();
    for m in mods.keys().filter(|m| !m.is_empty()) {
        let parent = m[..m.len() - 1].to_vec();
        graphs.entry(parent).or_default().entry(m.clone()).or_default();
    }
    for (from, targets) in refs {
        for to in targets {
            // The deepest common parent, and the child of it on each side.
            let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
            if common >= from.len() || common >= to.len() {
                continue; // a module and its own ancestor or descendant
            }
            let parent = from[..common].to_vec();
            let (a, b) = (from[..=common].to_vec(), to[..=common].to_vec());
            graphs.entry(parent).or_default().entry(a).or_default().insert(b);
        }
    }
    graphs
}

#[test]
fn no_import_circle_and_the_adapters_sit_above_the_app_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    let refs = references(&mods);
    let mut found = Vec::new();
    for (parent, graph) in sibling_graphs(&mods, &refs) {
        let nodes: BTreeSet<Module> = graph.keys().cloned().collect();
        for c in cycles(&nodes, &graph) {
            let names: Vec<String> = c.iter().map(|m| m.join("/")).collect();
            let at = if parent.is_empty() { "src".to_string() } else { format!("src/{}", parent.join("/")) };
            found.push(format!("{at}: {}", names.join(" <-> ")));
        }
    }
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
    for adapter in ["serve", "eval"] {
        let bad: Vec<String> = refs
            .iter()
            .filter(|(m, to)| m.first().is_some_and(|f| f == adapter) && to.iter().any(|t| t.first().is_some_and(|f| f == "cli")))
            .map(|(m, _)| m.join("/"))
            .collect();
        assert!(bad.is_empty(), "{adapter} uses cli in {bad:?}");
    }
}
