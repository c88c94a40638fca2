//! The browser end of the suites that drive the page `dcsend signal` serves in a real headless
//! Chromium (`tests/web_browser.rs`, and the page behind a NAT in `tests/nat.rs`): finding
//! Chromium and Playwright (or saying why the test skips), and running `web/test/browser.mjs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{Proc, find_on_path, skip, web};

/// Bound on one browser run (Chromium's start, signaling, the transfer in a debug build of
/// dcsend on 2 busy cores, the download).
pub const BROWSER_WAIT: Duration = Duration::from_secs(120);
/// The driver's own bound, under [`BROWSER_WAIT`]: it closes Chromium and says what it was
/// waiting for, rather than being killed without a word.
pub const DRIVER_DEADLINE_MS: u64 = 110_000;
/// `npm ci` may download playwright-core (14 MB); bounded, but generous for a slow registry.
pub const NPM_WAIT: Duration = Duration::from_secs(300);
/// Written into the npm folder once `npm ci` succeeded there.
pub const STAMP: &str = "installed.ok";

/// `target/web-e2e/`, in the target folder this test binary was built into (it holds
/// `debug/dcsend`), so that `CARGO_TARGET_DIR` is honoured.
pub fn artifacts() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_dcsend"));
    let dir = bin.parent().and_then(Path::parent).expect("target/PROFILE/dcsend").join("web-e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Says why the suite cannot run; a failure instead when the run requires it.
pub fn unavailable(why: &str) -> Option<Browser> {
    skip("BROWSER", why);
    None
}

pub fn runs(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What a browser run needs: the Chromium to launch and the folder holding `node_modules/`.
pub struct Browser {
    pub chromium: PathBuf,
    pub npm_dir: PathBuf,
}

/// The browser tooling, or `None` (after saying why) when this machine lacks some of it.
pub fn browser() -> Option<Browser> {
    if !web("test/browser.mjs").is_file() {
        return unavailable("no web/test/browser.mjs here (a packaged crate)");
    }
    for tool in ["node", "npm"] {
        if !runs(tool) {
            return unavailable(&format!("`{tool} --version` does not run"));
        }
    }
    let chromium = match std::env::var_os("DCSEND_CHROMIUM") {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(path.is_file(), "DCSEND_CHROMIUM={} is not a file", path.display());
            path
        }
        None => match Some(PathBuf::from("/usr/bin/chromium"))
            .filter(|p| p.is_file())
            .or_else(|| find_on_path("chromium"))
        {
            Some(path) => path,
            None => {
                return unavailable(
                    "Chromium is not installed (`apt-get install chromium`, or set \
                     DCSEND_CHROMIUM to a Chromium or Chrome binary)",
                );
            }
        },
    };
    Some(Browser { chromium, npm_dir: playwright() })
}

/// The folder where `npm ci` installed `web/`'s locked dependencies (playwright-core among
/// them), installing them the first time in this process unless a previous run's install is
/// still current.
pub fn playwright() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = artifacts().join("node");
        if !current(&dir) {
            npm_ci(&dir);
        }
        dir
    })
    .clone()
}

/// `dir` holds a finished `npm ci` of the very package.json and lock in `web/`.
pub fn current(dir: &Path) -> bool {
    let same = |f: &str| {
        std::fs::read(web(f)).ok().is_some_and(|a| Some(a) == std::fs::read(dir.join(f)).ok())
    };
    same("package.json")
        && same("package-lock.json")
        && dir.join(STAMP).is_file()
        && dir.join("node_modules/playwright-core/package.json").is_file()
}

/// `npm ci` in a fresh folder beside `dir`, which then replaces `dir`.
pub fn npm_ci(dir: &Path) {
    let fresh = tempfile::Builder::new().prefix("node-").tempdir_in(artifacts()).unwrap();
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(web(file), fresh.path().join(file)).unwrap();
    }
    let mut cmd = Command::new("npm");
    cmd.args(["ci", "--no-audit", "--no-fund"]).current_dir(fresh.path()).stdin(Stdio::null());
    let mut p = Proc::spawn("npm-ci", cmd, fresh.path());
    let status = p.wait(NPM_WAIT);
    assert!(
        status.success(),
        "npm ci (of web/package-lock.json, for playwright-core) failed ({status}):\n{}\n{}",
        String::from_utf8_lossy(&p.stdout_bytes()),
        p.stderr_text()
    );
    std::fs::write(fresh.path().join(STAMP), b"").unwrap();
    let fresh = fresh.keep();
    let _ = std::fs::remove_dir_all(dir);
    if std::fs::rename(&fresh, dir).is_err() {
        // Another test process installed the same thing at the same moment: use ours, then.
        assert!(current(dir), "could not move {} to {}", fresh.display(), dir.display());
        let _ = std::fs::remove_dir_all(&fresh);
    }
}

/// `node web/test/browser.mjs ARGS...`, its output in `dir`.
pub fn drive(b: &Browser, args: &[&Path], dir: &Path) -> Proc {
    drive_with(b, Command::new("node"), args, dir)
}

/// [`drive`] with `node` as the command `node` (say `ip netns exec NS node`, which puts
/// Chromium, launched by the driver, in that namespace too).
pub fn drive_with(b: &Browser, mut node: Command, args: &[&Path], dir: &Path) -> Proc {
    node.arg(web("test/browser.mjs"))
        .args(args)
        .env("DCSEND_CHROMIUM", &b.chromium)
        .env("DCSEND_NODE_MODULES", b.npm_dir.join("node_modules"))
        .env("DCSEND_DEADLINE_MS", DRIVER_DEADLINE_MS.to_string())
        // Chromium's temporary profile and Playwright's download folder.
        .env("TMPDIR", dir)
        .stdin(Stdio::null());
    Proc::spawn("browser", node, dir)
}

/// Waits for the driver; panics with everything both sides said unless it exited 0.
pub fn driver_log(driver: &mut Proc, peer: &Proc) -> String {
    let status = driver.wait(BROWSER_WAIT);
    let log = driver.stdout_text();
    assert!(
        status.success(),
        "the browser run exited with {status}\n--- its stdout:\n{log}--- its stderr:\n{}\
         --- dcsend's stderr:\n{}",
        driver.stderr_text(),
        peer.stderr_text()
    );
    log
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A fresh path for a screenshot in `target/web-e2e/` (any older one is removed, so the file
/// found afterwards is this run's).
pub fn screenshot_path(name: &str) -> PathBuf {
    let path = artifacts().join(name);
    let _ = std::fs::remove_file(&path);
    path
}
