//! The architecture's rules, checked on the source: no import cycle between
//! modules (each file is a module; `crate::`, `super::`, `self::` paths, grouped
//! `use` items, re-exports and references to declared child modules count as
//! edges), none between top-level modules either, and layers point down: nothing
//! below the API imports `api`, `state` or `server`. This is the suite's equivalent
//! of `cargo modules dependencies --acyclic`, without a rust-analyzer build.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules below the HTTP API: they may not import `api`, `state` or `server`.
const LOWER: &[&str] = &["accounts", "arweave", "auth", "civil", "clients", "config", "demo", "gun", "http", "indexer", "limits", "media", "memory", "oip", "proc", "publish", "records", "store", "tasks", "voice"];
const UPPER: &[&str] = &["api", "state", "server"];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `a::b` of `src/a/b.rs` or `src/a/b/mod.rs`; `""` for lib.rs and main.rs.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        parts.clear();
    }
    parts.join("::")
}

/// The source without comments, string literals' contents and unit-test modules.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn resolve(modules: &BTreeSet<String>, current: &str, path: &[&str]) -> Option<String> {
    let mut base: Vec<String> = Vec::new();
    let mut rest = path;
    match rest.first() {
        Some(&"crate") => rest = &rest[1..],
        Some(&"super") | Some(&"self") => {
            base = if current.is_empty() { Vec::new() } else { current.split("::").map(str::to_owned).collect() };
            while let Some(&seg) = rest.first() {
                match seg {
                    "super" => {
                        base.pop();
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    for n in (0..=rest.len()).rev() {
        let mut cand = base.clone();
        cand.extend(rest[..n].iter().map(|s| s.to_string()));
        let c = cand.join("::");
        if modules.contains(&c) {
            return Some(c);
        }
    }
    None
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let modules: BTreeSet<String> = all.iter().map(|f| module_of(&src, f)).collect();
    let path_re = regex::Regex::new(r"\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)").unwrap();
    let group_re = regex::Regex::new(r"\buse\s+((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^}]*)\}").unwrap();
    let mod_re = regex::Regex::new(r"(?m)^\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+([a-z_0-9]+)\s*;").unwrap();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &all {
        let m = module_of(&src, f);
        let text = code(&std::fs::read_to_string(f).unwrap());
        let mut targets = BTreeSet::new();
        for c in path_re.captures_iter(&text) {
            let segs: Vec<&str> = c[1].split("::").collect();
            targets.extend(resolve(&modules, &m, &segs));
        }
        for c in group_re.captures_iter(&text) {
            for item in c[2].split(',') {
                let item = item.split_whitespace().next().unwrap_or("");
                if item.is_empty() || item == "self" {
                    continue;
                }
                let p = format!("{}::{item}", &c[1]);
                let segs: Vec<&str> = p.split("::").collect();
                targets.extend(resolve(&modules, &m, &segs));
            }
        }
        // Declared children referred to by name (`child::item`, `use child::…`).
        for c in mod_re.captures_iter(&text) {
            let child = if m.is_empty() { c[1].to_string() } else { format!("{m}::{}", &c[1]) };
            let used = text.lines().any(|l| {
                let t = l.trim_start();
                !mod_re.is_match(l)
                    && (t.contains(&format!(" {}::", &c[1]))
                        || t.contains(&format!("({}::", &c[1]))
                        || t.contains(&format!("!{}::", &c[1]))
                        || t.starts_with(&format!("{}::", &c[1]))
                        || t.contains(&format!("use {}::", &c[1])))
            });
            if used && modules.contains(&child) {
                targets.insert(child);
            }
        }
        targets.remove(&m);
        targets.remove("");
        edges.entry(m).or_default().extend(targets);
    }
    edges
}

/// Strongly connected components with more than one member.
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        if let Some(ws) = t.g.get(v) {
            for w in ws {
                if !t.index.contains_key(w.as_str()) {
                    visit(t, w);
                    let lw = t.low[w.as_str()];
                    let lv = t.low[v];
                    t.low.insert(v, lv.min(lw));
                } else if t.on.contains(w.as_str()) {
                    let iw = t.index[w.as_str()];
                    let lv = t.low[v];
                    t.low.insert(v, lv.min(iw));
                }
            }
        }
        if t.low[v] == t.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                scc.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                t.out.push(scc);
            }
        }
    }
    let mut t = T { g, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), on: BTreeSet::new(), out: Vec::new() };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn top(m: &str) -> &str {
    m.split("::").next().unwrap_or(m)
}

#[test]
fn no_module_imports_form_a_cycle() {
    let g = graph();
    assert!(g.len() > 40, "the scan found too few modules: {}", g.len());
    // the checker sees real edges (it would pass vacuously otherwise)
    assert!(g["api::records"].contains("records::service"), "{:?}", g["api::records"]);
    assert!(g["store::sqlite::store"].contains("store::sqlite::read"));
    let c = cycles(&g);
    assert!(c.is_empty(), "import cycles between modules: {c:?}");

    let mut tops: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, ts) in &g {
        for t in ts {
            if !m.is_empty() && top(m) != top(t) {
                tops.entry(top(m).to_owned()).or_default().insert(top(t).to_owned());
            }
        }
    }
    let c = cycles(&tops);
    assert!(c.is_empty(), "import cycles between top-level modules: {c:?}\n{tops:#?}");
}

#[test]
fn layers_point_down() {
    let g = graph();
    let mut bad = Vec::new();
    for (m, ts) in &g {
        if !LOWER.contains(&top(m)) {
            continue;
        }
        for t in ts {
            if UPPER.contains(&top(t)) {
                bad.push(format!("{m} -> {t}"));
            }
        }
    }
    assert!(bad.is_empty(), "lower layers import the API layer: {bad:#?}");
    // and the checker would notice one
    assert!(g["api::records"].iter().any(|t| top(t) == "state"));
}

#[test]
fn a_cycle_is_detected() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    g.entry("c".into()).or_default().insert("a".into());
    g.entry("d".into()).or_default().insert("a".into());
    assert_eq!(cycles(&g), vec![vec!["a".to_string(), "b".into(), "c".into()]]);
}
