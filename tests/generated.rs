//! The committed shell completions (`completions/`) and man pages (`man/`) must be what the
//! current CLI definition generates. When they drift, this fails and says how to
//! regenerate them:
//!
//!     DCSEND_BLESS=1 cargo test --test generated

mod common;

use std::path::{Path, PathBuf};

use common::{WAIT, dcsend};

const BLESS: &str = "DCSEND_BLESS=1 cargo test --test generated";

/// Each shell and the file name its completion script is committed under (the name each
/// shell looks for).
const SHELLS: [(&str, &str); 5] = [
    ("bash", "dcsend.bash"),
    ("zsh", "_dcsend"),
    ("fish", "dcsend.fish"),
    ("elvish", "dcsend.elv"),
    ("powershell", "_dcsend.ps1"),
];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn blessing() -> bool {
    std::env::var_os("DCSEND_BLESS").is_some_and(|v| v == "1")
}

/// Compares a generated file with the committed one; rewrites it when blessing.
/// Returns a complaint when they differ.
fn check(committed: &Path, generated: &[u8]) -> Option<String> {
    let current = std::fs::read(committed).ok();
    if current.as_deref() == Some(generated) {
        return None;
    }
    if blessing() {
        std::fs::create_dir_all(committed.parent().unwrap()).unwrap();
        std::fs::write(committed, generated).unwrap();
        return None;
    }
    let what = if current.is_none() { "missing" } else { "stale" };
    Some(format!("{} is {what}", committed.display()))
}

fn fail_on(complaints: Vec<String>) {
    assert!(
        complaints.is_empty(),
        "{}\nThe CLI definition changed; regenerate with:\n    {BLESS}",
        complaints.join("\n")
    );
}

#[test]
fn completions_are_fresh() {
    let mut complaints = Vec::new();
    for (shell, file) in SHELLS {
        let out = dcsend().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "completions {shell}: {out:?}");
        assert!(!out.stdout.is_empty(), "completions {shell} printed nothing");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("threshold"),
            "completions {shell} do not know --threshold"
        );
        complaints.extend(check(&repo("completions").join(file), &out.stdout));
    }
    fail_on(complaints);
}

#[test]
fn man_pages_are_fresh() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = common::Proc::spawn("man", dcsend_man(tmp.path()), tmp.path());
    assert!(child.wait(WAIT).success(), "dcsend man: {}", child.stderr_text());

    let mut generated: Vec<PathBuf> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "1"))
        .collect();
    generated.sort();
    let names: Vec<String> =
        generated.iter().map(|p| p.file_name().unwrap().to_string_lossy().into()).collect();
    for page in ["dcsend.1", "dcsend-send.1", "dcsend-recv.1", "dcsend-bench.1"] {
        assert!(names.iter().any(|n| n == page), "no {page} among {names:?}");
    }
    let main = std::fs::read_to_string(tmp.path().join("dcsend.1")).unwrap();
    for section in [".SH EXAMPLES", ".SH ENVIRONMENT", ".SH FILES", ".SH \"EXIT STATUS\""] {
        assert!(main.contains(section), "dcsend.1 has no {section}");
    }
    assert!(main.contains("DCSEND_THRESHOLD"), "dcsend.1 does not list DCSEND_THRESHOLD");

    let mut complaints = Vec::new();
    for (path, name) in generated.iter().zip(&names) {
        complaints.extend(check(&repo("man").join(name), &std::fs::read(path).unwrap()));
    }
    // A page whose subcommand is gone must go too.
    for entry in std::fs::read_dir(repo("man")).into_iter().flatten() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".1") && !names.contains(&name) {
            if blessing() {
                std::fs::remove_file(repo("man").join(&name)).unwrap();
            } else {
                complaints.push(format!("man/{name} is no longer generated"));
            }
        }
    }
    fail_on(complaints);
}

fn dcsend_man(dir: &Path) -> std::process::Command {
    let mut cmd = dcsend();
    cmd.arg("man").arg(dir);
    cmd
}
