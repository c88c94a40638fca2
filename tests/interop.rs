//! dcsend against independent WebRTC stacks, each peer a real process on this machine:
//! werift (TypeScript, `tests/interop/werift-peer.mjs`), aiortc (Python,
//! `tests/interop/aiortc-peer.py`) and Pion (Go, `tests/interop/pion-peer/main.go`). Each pairs
//! with dcsend through copy-paste tokens in files (`--sdp-in`/`--sdp-out`) in both directions
//! (dcsend `--raw` sends, or `dcsend recv` receives from a plain sender) and with either side
//! offering, and the bytes must arrive exactly.
//!
//! These found three bugs: werift 0.25 never formed an SCTP association with dcsend (which end
//! sends the SCTP INIT is not negotiated, and webrtc-rs and werift chose by different rules;
//! `vendor/rtc/PATCHES.md`, `vendor/rtc-sctp/PATCHES.md`); dcsend closed the association before
//! the peer could answer its stream reset, so aiortc saw an abort instead of a closed channel
//! (checked in aiortc's SCTP log); and a plain sender's last message could be overtaken by the
//! channel's close event and lost (`peer::channel`, intermittent: seen under load). Pion then
//! found a fourth: it closed its channel at dcsend's first 64 KiB message, since it reads into
//! a buffer of 65,535 bytes and its description states no `max-message-size` (`cmd::send`).
//!
//! Needs `node` with werift installed by `npm ci` in `tests/interop`, a `python3` (or
//! `DCSEND_TEST_PYTHON`) that imports aiortc (`pip install -r tests/interop/requirements.txt`),
//! and Go with Debian's packaged Pion (`apt-get install golang-go
//! golang-github-pion-webrtc.v3-dev`; `tests/interop/pion-peer/build.sh` builds the peer
//! offline); each stack's cases skip with a message when it is missing, unless
//! `DCSEND_TEST_REQUIRE_INTEROP=1`. Every wait is bounded; every process is killed by its handle.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::*;

/// Bytes per transfer: enough for many SCTP windows' worth of packets and a few flow-control
/// pauses on either side, small enough for eight cases on two cores.
const SIZE: usize = 3 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
enum Stack {
    Werift,
    Aiortc,
    Pion,
}

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("interop")
}

fn runs(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The command that runs `stack`'s peer script, or `None` (with a message) when this machine
/// does not have the stack and the run does not require it.
fn peer_command(stack: Stack) -> Option<Command> {
    let dir = interop_dir();
    match stack {
        Stack::Werift => {
            if !runs(Command::new("node").arg("--version")) {
                skip("INTEROP", "`node --version` does not run (install Node.js 20 or newer)");
                return None;
            }
            if !dir.join("node_modules/werift/package.json").is_file() {
                skip("INTEROP", "werift is not installed: run `npm ci` in tests/interop");
                return None;
            }
            let mut cmd = Command::new("node");
            cmd.arg(dir.join("werift-peer.mjs"));
            Some(cmd)
        }
        Stack::Aiortc => {
            let python = std::env::var_os("DCSEND_TEST_PYTHON").unwrap_or_else(|| "python3".into());
            if !runs(Command::new(&python).args(["-c", "import aiortc"])) {
                skip(
                    "INTEROP",
                    &format!(
                        "{} cannot import aiortc: `python3 -m pip install -r \
                         tests/interop/requirements.txt` (or set DCSEND_TEST_PYTHON)",
                        python.to_string_lossy()
                    ),
                );
                return None;
            }
            let mut cmd = Command::new(python);
            cmd.arg(dir.join("aiortc-peer.py"));
            Some(cmd)
        }
        Stack::Pion => match pion_peer() {
            Ok(peer) => Some(Command::new(peer)),
            Err(why) => {
                skip("INTEROP", why);
                None
            }
        },
    }
}

/// The Pion peer, built once per run of this suite (a few seconds) from Debian's packaged Pion,
/// or why it cannot be.
fn pion_peer() -> Result<&'static Path, &'static str> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        if !runs(Command::new("go").arg("version")) {
            return Err("`go version` does not run (apt-get install golang-go)".into());
        }
        if !Path::new("/usr/share/gocode/src/github.com/pion/webrtc").is_dir() {
            return Err(
                "Pion is not installed (apt-get install golang-github-pion-webrtc.v3-dev)".into()
            );
        }
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pion-peer");
        let build = Command::new(interop_dir().join("pion-peer/build.sh"))
            .arg(&out)
            .stdin(Stdio::null())
            .output()
            .expect("running tests/interop/pion-peer/build.sh");
        if !build.status.success() {
            // Go and Pion are there: a failed build is a failure, not a reason to skip.
            panic!("building the Pion peer: {}", String::from_utf8_lossy(&build.stderr));
        }
        Ok(out)
    });
    built.as_ref().map(PathBuf::as_path).map_err(String::as_str)
}

/// Which side dcsend plays.
#[derive(Debug, Clone, Copy)]
struct Roles {
    dcsend_sends: bool,
    dcsend_offers: bool,
}

/// One transfer between dcsend and `stack`; returns the peer's stderr for more checks.
fn transfer(stack: Stack, roles: Roles) -> Option<String> {
    let mut peer = peer_command(stack)?;
    let dir = tempfile::tempdir().unwrap();
    let tokens = Tokens::in_dir(dir.path());
    let data = random_bytes(SIZE, 18);
    let input = dir.path().join("input.bin");
    let output = dir.path().join("output.bin");
    std::fs::write(&input, &data).unwrap();

    let mut ours = dcsend();
    if roles.dcsend_sends {
        ours.arg("--raw").arg(&input);
    } else {
        ours.arg("recv").arg("-o").arg(&output);
    }
    ours.args(LOOPBACK);
    let (ours_in, ours_out) = if roles.dcsend_offers {
        // A plain peer reads Pion's token form, not dcsend's compact one (docs/tokens.md);
        // answering, dcsend answers in the form the offer came in, with no flag.
        ours.arg("--offer").arg("--long-token");
        (&tokens.answer, &tokens.offer)
    } else {
        ours.arg("--answer");
        (&tokens.offer, &tokens.answer)
    };
    ours.arg("--sdp-in").arg(ours_in).arg("--sdp-out").arg(ours_out);

    peer.arg(if roles.dcsend_offers { "answer" } else { "offer" });
    peer.arg(if roles.dcsend_sends { "recv" } else { "send" });
    peer.arg(if roles.dcsend_sends { &output } else { &input });
    peer.arg(&tokens.offer).arg(&tokens.answer);

    let mut ours = Proc::spawn("dcsend", ours, dir.path());
    let mut theirs = Proc::spawn("peer", peer, dir.path());
    let ours_status = ours.wait(WAIT);
    let theirs_status = theirs.wait(WAIT);
    let both = || {
        format!(
            "{stack:?}, {roles:?}\n--- dcsend:\n{}\n--- {stack:?}:\n{}",
            ours.stderr_text(),
            theirs.stderr_text()
        )
    };
    assert!(ours_status.success(), "dcsend exited with {ours_status}: {}", both());
    assert!(theirs_status.success(), "the peer exited with {theirs_status}: {}", both());
    let got = std::fs::read(&output).unwrap_or_default();
    assert!(got == data, "{} of {SIZE} bytes arrived, or different ones: {}", got.len(), both());
    Some(theirs.stderr_text())
}

fn case(stack: Stack, dcsend_sends: bool, dcsend_offers: bool) {
    let Some(peer_log) = transfer(stack, Roles { dcsend_sends, dcsend_offers }) else { return };
    match stack {
        Stack::Aiortc => assert_closed_as_rfc_8831_says(&peer_log),
        // Pion logs what goes wrong in its stack, such as a reset sent on an association dcsend
        // had already torn down ("sending reset packet in non-established state").
        Stack::Pion => assert!(!peer_log.contains(" ERROR: "), "Pion logged an error:\n{peer_log}"),
        Stack::Werift => {}
    }
}

/// RFC 8831 §6.7: a data channel closes when both ends have reset their outgoing stream, and
/// only then may the association go. aiortc's peer logs its SCTP stream resets and the
/// association's end (`aiortc sctp:` lines): its own reset request must be answered before
/// dcsend ends the association. dcsend used to close the connection right after sending its
/// own reset request, so aiortc's request was never answered and dcsend's ABORT ended it.
fn assert_closed_as_rfc_8831_says(log: &str) {
    let sctp: Vec<&str> = log.lines().filter(|l| l.starts_with("aiortc sctp:")).collect();
    let own_request = sctp.iter().position(|l| l.contains(">> StreamResetOutgoingParam"));
    let Some(own_request) = own_request else {
        panic!("aiortc never reset its outgoing stream:\n{log}");
    };
    let answered = sctp[own_request..].iter().any(|l| l.contains("<< StreamResetResponseParam"));
    assert!(answered, "dcsend never answered aiortc's stream reset:\n{log}");
    assert!(
        !log.contains("aborted by remote party"),
        "dcsend aborted the association instead of closing the channel:\n{log}"
    );
}

fn werift_receives_from_dcsend_offering() {
    case(Stack::Werift, true, true);
}

fn werift_receives_from_dcsend_answering() {
    case(Stack::Werift, true, false);
}

fn werift_sends_to_dcsend_offering() {
    case(Stack::Werift, false, true);
}

fn werift_sends_to_dcsend_answering() {
    case(Stack::Werift, false, false);
}

fn aiortc_receives_from_dcsend_offering() {
    case(Stack::Aiortc, true, true);
}

fn aiortc_receives_from_dcsend_answering() {
    case(Stack::Aiortc, true, false);
}

fn aiortc_sends_to_dcsend_offering() {
    case(Stack::Aiortc, false, true);
}

fn aiortc_sends_to_dcsend_answering() {
    case(Stack::Aiortc, false, false);
}

fn pion_receives_from_dcsend_offering() {
    case(Stack::Pion, true, true);
}

fn pion_receives_from_dcsend_answering() {
    case(Stack::Pion, true, false);
}

fn pion_sends_to_dcsend_offering() {
    case(Stack::Pion, false, true);
}

fn pion_sends_to_dcsend_answering() {
    case(Stack::Pion, false, false);
}

crate::skippable_tests!(
    werift_receives_from_dcsend_offering,
    werift_receives_from_dcsend_answering,
    werift_sends_to_dcsend_offering,
    werift_sends_to_dcsend_answering,
    aiortc_receives_from_dcsend_offering,
    aiortc_receives_from_dcsend_answering,
    aiortc_sends_to_dcsend_offering,
    aiortc_sends_to_dcsend_answering,
    pion_receives_from_dcsend_offering,
    pion_receives_from_dcsend_answering,
    pion_sends_to_dcsend_offering,
    pion_sends_to_dcsend_answering,
);
