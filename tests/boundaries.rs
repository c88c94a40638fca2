//! The layering rules of `src/`, checked: each module's header says what it must not import,
//! and this test holds the rules that keep the house in shape, so that a change that breaks
//! one fails here instead of in a reviewer's memory.
//!
//! - only `src/peer/` touches the webrtc crates (LiveKit's "sole import site" rule);
//! - only `src/progress/render.rs` touches indicatif;
//! - nothing below `cmd` reaches up into `cli` or `cmd`;
//! - `cli/mod.rs` (the clap definition) imports no part of the core;
//! - the pure leaves (wire format, name rules, stats) import nothing else of dcsend.
//!
//! Comments are skipped, so a header may name what it must not import.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, as (path relative to `src/`, code lines without comments).
fn sources() -> Vec<(String, Vec<String>)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text
                .lines()
                .map(|l| l.split("//").next().unwrap_or("").to_owned())
                .filter(|l| !l.trim().is_empty())
                .collect();
            (rel, code)
        })
        .collect()
}

/// Whether a code line uses `path` as a Rust path: `path::...` or `use path;` (a word that
/// merely reads the same, in a string or a variable name, does not count).
fn names(line: &str, path: &str) -> bool {
    line.match_indices(path).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let rest = &line[at + path.len()..];
        let starts = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '"'));
        let as_path = rest.starts_with("::")
            || (line.trim_start().starts_with("use ") && rest.starts_with(';'));
        starts && as_path
    })
}

/// Every (file, line) that breaks `forbidden` in the files `applies` selects.
fn breaches(applies: impl Fn(&str) -> bool, forbidden: &[&str]) -> Vec<String> {
    breaches_but(applies, forbidden, &[])
}

/// The same, where a line that names one of `allowed` is fine.
fn breaches_but(
    applies: impl Fn(&str) -> bool,
    forbidden: &[&str],
    allowed: &[&str],
) -> Vec<String> {
    let mut found = Vec::new();
    for (file, lines) in sources() {
        if !applies(&file) {
            continue;
        }
        for line in &lines {
            if allowed.iter().any(|a| line.contains(a)) {
                continue;
            }
            if let Some(what) = forbidden.iter().find(|f| names(line, f)) {
                found.push(format!("src/{file}: names `{what}`: {}", line.trim()));
            }
        }
    }
    found
}

#[track_caller]
fn assert_none(found: Vec<String>) {
    assert!(found.is_empty(), "layering rules broken:\n{}", found.join("\n"));
}

#[test]
fn only_peer_touches_webrtc() {
    let webrtc = ["webrtc", "rtc_ice", "rtc_stun", "rtc_turn"];
    assert_none(breaches(|f| !f.starts_with("peer/"), &webrtc));
}

#[test]
fn only_the_renderer_touches_indicatif() {
    assert_none(breaches(|f| f != "progress/render.rs", &["indicatif"]));
}

#[test]
fn nothing_below_cmd_reaches_up() {
    let top = |f: &str| f.starts_with("cmd/") || f.starts_with("cli/") || f == "main.rs";
    assert_none(breaches(|f| !top(f), &["crate::cli", "crate::cmd"]));
}

#[test]
fn the_clap_definition_imports_no_core() {
    let core =
        ["crate::transfer", "crate::peer", "crate::signal", "crate::progress", "crate::bench"];
    assert_none(breaches(|f| f == "cli/mod.rs", &core));
}

#[test]
fn the_pure_leaves_import_nothing_else_of_dcsend() {
    let leaves = ["transfer/wire.rs", "transfer/names.rs"];
    assert_none(breaches(|f| leaves.contains(&f), &["crate", "tokio"]));
    // The stats take the candidate pair's plain types, nothing else.
    let stats = |f: &str| f == "progress/stats.rs";
    assert_none(breaches_but(stats, &["crate", "tokio"], &["crate::peer::path::"]));
}

#[test]
fn the_rules_see_a_breach() {
    // The checker itself: a rule that can never fire would make every test above pass.
    assert!(names("use webrtc::data_channel::DataChannel;", "webrtc"));
    assert!(names("    crate::cli::version()", "crate::cli"));
    assert!(!names("format!(\"{} (webrtc {})\", a, b)", "webrtc"));
    assert!(!names("use crate::client;", "crate::cli"));
    assert!(!names("let rtc_ice_x = 1;", "rtc_ice"));
    assert!(!names("let webrtc = true;", "webrtc"));
    assert!(names("use tokio;", "tokio"));
}

#[test]
fn the_version_string_names_the_pinned_webrtc_line() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    let want = format!("webrtc = \"{}\"", dcsend::WEBRTC_VERSION);
    assert!(manifest.unwrap().lines().any(|l| l.trim() == want), "Cargo.toml has no `{want}`");
}
