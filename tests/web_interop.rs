//! The browser library (`web/dist/dcsend-signal.js`, the committed bundle) against real dcsend
//! processes, run by node through a real `dcsend signal` on loopback. Node has no WebRTC, so the
//! library relays: it joins the room a `dcsend recv` made, authenticates (SPAKE2, both `hello`s)
//! and opens the receiver's sealed offer, then makes a second room where a `dcsend FILE` joins,
//! hands it the offer and brings its sealed answer back. The two dcsend processes then connect
//! and transfer a file, byte-exact: every description they acted on was opened and sealed by
//! the JavaScript. A wrong secret on the JavaScript side makes dcsend exit 3.
//!
//! Also runs `web/test/vectors.mjs`: the JavaScript against known answers the Rust code wrote
//! (`web/test/vectors.json`, checked fresh by `cargo test --lib web_vectors`).
//!
//! Needs `node` (20 or later); counts as ignored, with the reason, without it, unless
//! `DCSEND_TEST_REQUIRE_NODE=1`. Every wait is bounded; every process is killed by its handle.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// `node`, or `None` (with a message) when this machine has none and the run does not require it.
fn node() -> Option<Command> {
    if !web("dist/dcsend-signal.js").is_file() {
        skip("NODE", "no web/dist/dcsend-signal.js here (a packaged crate)");
        return None;
    }
    let works = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        skip("NODE", "`node --version` does not run (install Node.js 20 or newer)");
        return None;
    }
    let mut cmd = Command::new("node");
    cmd.env_remove("DCSEND_WEB_MODULE").stdin(Stdio::null());
    Some(cmd)
}

fn interop(node: Command, mode: &str, url: &str, dir: &Path) -> Proc {
    let mut cmd = node;
    cmd.arg(web("test/interop.mjs")).args([mode, url]);
    Proc::spawn("node", cmd, dir)
}

fn the_javascript_gives_the_rust_known_answers() {
    let Some(mut node) = node() else { return };
    let dir = tempfile::tempdir().unwrap();
    node.arg(web("test/vectors.mjs"));
    let mut p = Proc::spawn("vectors", node, dir.path());
    p.expect_code(0, WAIT);
    assert!(p.stdout_text().starts_with("ok: "), "{}", p.stdout_text());
}

fn two_dcsend_peers_connect_through_descriptions_the_javascript_relayed() {
    relay_between_two_dcsend_peers(None);
}

/// The library's requests fail on the way (a lost answer, a balancer's 502, a refused
/// connection: every third request): it sends each again, and the server's `?key`, `?seq` and
/// `?next` make the repeats harmless, so the relay still works, every message once and in order.
fn the_javascript_relays_through_failing_requests() {
    let log = relay_between_two_dcsend_peers(Some(3));
    for mode in ["lost-answer: POST", "lost-answer: GET", "bad-gateway", "refused"] {
        assert!(log.contains(&format!("injected {mode}")), "no {mode} was injected:\n{log}");
    }
}

/// Runs the relay (see the module's docs), with every `flaky`th request of the library failing;
/// returns the relay's output.
fn relay_between_two_dcsend_peers(flaky: Option<u32>) -> String {
    let Some(mut node) = node() else { return String::new() };
    if let Some(n) = flaky {
        node.env("DCSEND_TEST_FLAKY", n.to_string());
    }
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = signal_server(dir.path(), &[]);
    let base = format!("http://{addr}/");
    let data = random_bytes(4 << 20, 71);
    let src = dir.path().join("payload.bin");
    std::fs::write(&src, &data).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();

    let mut recv =
        Proc::spawn("recv", peer(&["recv", "-o", out.to_str().unwrap()], &base), dir.path());
    let url1 = invite(&recv);
    let mut js = interop(node, "relay", &url1, dir.path());
    let mut url2 = None;
    wait_until(WAIT, "the relay's second room", || {
        url2 = js.stdout_text().lines().find_map(|l| l.strip_prefix("invite ").map(str::to_owned));
        url2.is_some()
    });
    let url2 = url2.unwrap();
    assert_ne!(url1, url2);
    let mut send = Proc::spawn("send", peer(&[src.to_str().unwrap()], &url2), dir.path());

    js.expect_code(0, WAIT);
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    let log = js.stdout_text();
    for step in ["room 1 authenticated", "offer ok", "room 2 authenticated", "answer ok", "relayed"]
    {
        assert!(log.contains(step), "no {step:?} in the relay's output:\n{log}");
    }
    assert!(std::fs::read(out.join("payload.bin")).unwrap() == data, "the bytes differ");
    assert!(recv.stderr_text().contains("SHA-256 verified"), "{}", recv.stderr_text());
    log
}

fn a_wrong_secret_in_the_javascript_makes_dcsend_exit_3() {
    let Some(node) = node() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = signal_server(dir.path(), &[]);
    let base = format!("http://{addr}/");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut recv =
        Proc::spawn("recv", peer(&["recv", "-o", out.to_str().unwrap()], &base), dir.path());
    let url = invite(&recv);
    let mut js = interop(node, "wrong", &url, dir.path());
    js.expect_code(0, WAIT);
    assert_eq!(js.stdout_text().trim(), "unauthentic");
    recv.expect_code(3, WAIT);
    let err = recv.stderr_text();
    assert!(err.contains("could not authenticate the peer"), "{err}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

crate::skippable_tests!(
    the_javascript_gives_the_rust_known_answers,
    two_dcsend_peers_connect_through_descriptions_the_javascript_relayed,
    the_javascript_relays_through_failing_requests,
    a_wrong_secret_in_the_javascript_makes_dcsend_exit_3,
);
