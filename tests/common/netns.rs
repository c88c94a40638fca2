//! Helpers of the suites that build network namespaces (`tests/netns.rs`, `tests/wan.rs`):
//! running `ip` and friends, and dcsend inside a namespace.

use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `cmd`, returning its stderr as the error when it cannot start or exits non-zero.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?}: {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

pub fn ip(args: &[&str]) -> Result<(), String> {
    run(Command::new("ip").args(args))
}

/// `ip netns exec NS PROGRAM ARGS...`
pub fn in_ns(ns: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, program]);
    cmd
}

/// Checks that each `(tool, version flag)` runs; the error says which Debian packages to add.
pub fn require_tools(tools: &[(&str, &str)], packages: &str) -> Result<(), String> {
    for (tool, arg) in tools {
        run(Command::new(tool).arg(arg)).map_err(|e| {
            format!("`{tool}` is not usable (Debian: apt-get install {packages}): {e}")
        })?;
    }
    Ok(())
}

/// `dcsend [SUBCOMMAND]` run inside namespace `ns`, environment scrubbed like
/// [`super::dcsend`], bound to `addr` (port 0), no live view on stderr.
pub fn dcsend_in(ns: &str, addr: &str, subcommand: &[&str]) -> Command {
    let mut cmd = in_ns(ns, env!("CARGO_BIN_EXE_dcsend"));
    cmd.args(subcommand);
    super::scrub_env(&mut cmd);
    cmd.args(["--bind", &format!("{addr}:0"), "--progress", "never"]);
    cmd.stdin(Stdio::null());
    cmd
}

/// The sender's own clock for the transfer (channel open to final ack), from the summary of
/// its `--stats` file; panics unless the summary says verified.
pub fn summary_seconds(path: &Path) -> f64 {
    let text = std::fs::read_to_string(path).unwrap();
    let line = text.lines().find(|l| l.contains("\"t\":\"summary\"")).expect("a summary line");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["verified"], true, "summary: {line}");
    v["seconds"].as_f64().unwrap()
}
