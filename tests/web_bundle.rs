//! The committed browser bundles (`web/dist/dcsend-signal.js`, `web/dist/dcsend-page.js`) must
//! be what `npm ci && npm run build` makes from `web/src/` and the locked dependencies, so that
//! `cargo build` never needs node and the shipped files are never hand-edited or stale. The build runs in a copy of `web/`
//! in a temporary folder (the worktree's `node_modules/` is not used). When they differ this
//! fails and says how to regenerate:
//!
//!     DCSEND_BLESS=1 cargo test --test web_bundle
//!
//! It then runs `npm test` there: `web/test/unit.mjs` (the page's wire messages and threshold
//! sender), `web/test/wire-vectors.mjs` (the wire and name cases the Rust side answered),
//! `web/test/session.mjs` (the page's session over fake channels) and the known answers of
//! `web/test/vectors.mjs`.
//!
//! Needs `npm` and the npm registry; counts as ignored, with the reason, without npm, unless
//! `DCSEND_TEST_REQUIRE_NODE=1`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Proc, skip, web};

const BLESS: &str = "DCSEND_BLESS=1 cargo test --test web_bundle";
/// What `npm run build` makes: the signaling library (for node and other pages) and the page
/// `dcsend signal` serves (embedded by `src/signal/page.rs`).
const BUNDLES: [&str; 2] = ["dist/dcsend-signal.js", "dist/dcsend-page.js"];
/// `npm ci` downloads esbuild's binary; bounded, but generous for a slow registry.
const NPM_WAIT: Duration = Duration::from_secs(300);

fn npm_works() -> bool {
    Command::new("npm")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn npm(args: &[&str], dir: &Path, logs: &Path) {
    let mut cmd = Command::new("npm");
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    let name = match args[0] {
        "ci" => "npm-ci",
        "test" => "npm-test",
        _ => "npm-build",
    };
    let mut p = Proc::spawn(name, cmd, logs);
    let status = p.wait(NPM_WAIT);
    assert!(
        status.success(),
        "npm {} failed ({status}):\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&p.stdout_bytes()),
        p.stderr_text()
    );
}

fn the_committed_bundle_is_what_npm_builds() {
    if !web("package.json").is_file() {
        return skip("NODE", "no web/package.json here (a packaged crate)");
    }
    if !npm_works() {
        return skip("NODE", "`npm --version` does not run (install Node.js 20 or newer)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let build = tmp.path().join("web");
    std::fs::create_dir(&build).unwrap();
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(web(file), build.join(file)).unwrap();
    }
    copy_tree(&web("src"), &build.join("src"));
    copy_tree(&web("test"), &build.join("test"));
    npm(&["ci", "--no-audit", "--no-fund"], &build, tmp.path());
    npm(&["run", "build"], &build, tmp.path());
    // The page's parts that need no browser (the wire messages and name rules against the Rust
    // side's answers, the threshold sender and the session over fake channels) and the
    // signaling known answers, against the sources and the fresh bundle.
    npm(&["test"], &build, tmp.path());

    let bless = std::env::var_os("DCSEND_BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for bundle in BUNDLES {
        let fresh = std::fs::read(build.join(bundle)).unwrap();
        let committed_path = web(bundle);
        if std::fs::read(&committed_path).ok() == Some(fresh.clone()) {
            continue;
        }
        if bless {
            std::fs::create_dir_all(committed_path.parent().unwrap()).unwrap();
            std::fs::write(&committed_path, fresh).unwrap();
        } else {
            stale.push(committed_path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "{} stale or missing: not what `npm ci && npm run build` makes from web/src.\n\
         Regenerate with:\n    {BLESS}\n(or `cd web && npm ci && npm run build`)",
        stale.join(" and ")
    );
}

crate::skippable_tests!(the_committed_bundle_is_what_npm_builds,);
