//! Copy-paste negotiation as a person meets it, with real processes on loopback: a token that
//! cannot be used (cut off, our own pasted back, garbage, the wrong role) is explained in words
//! and asked for again on a terminal, and ends the run with exit 2 and the same words from a
//! file or a pipe, where nobody can paste another.
//!
//! The terminal is a pseudo-terminal that the child gets as its controlling terminal (a new
//! session), so dcsend reads `/dev/tty` from it exactly as at a shell. Every wait is bounded and
//! every child is killed by its handle on drop.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use common::*;
use dcsend::signal::codec::{self, SdpKind, SessionDesc};

/// A child whose stdin, stderr and controlling terminal are a pseudo-terminal; the test types into
/// it and reads what it shows.
struct Terminal {
    proc: Proc,
    keyboard: File,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    /// `None` when no pseudo-terminal can be opened here.
    fn spawn(name: &'static str, mut cmd: Command, dir: &Path) -> Option<Terminal> {
        use nix::fcntl::{FcntlArg, FdFlag, fcntl};
        use std::os::unix::process::CommandExt;
        let pty = nix::pty::openpty(None, None).ok()?;
        for fd in [&pty.master, &pty.slave] {
            // Children spawned at the same time by other tests must not inherit them.
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).ok()?;
        }
        let mut master = File::from(pty.master);
        let keyboard = master.try_clone().ok()?;
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        // stdin and stderr on the terminal, as at a shell; stdout a file (the payload's place).
        cmd.stdin(Stdio::from(pty.slave.try_clone().ok()?));
        cmd.stdout(File::create(&stdout).unwrap());
        cmd.stderr(Stdio::from(pty.slave));
        // SAFETY: setsid and ioctl are async-signal-safe and touch no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                // A session of its own, with the terminal on stderr as its controlling one.
                nix::unistd::setsid()?;
                if nix::libc::ioctl(2, nix::libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn dcsend");
        drop(cmd); // our copy of the slave: the child must hold the only one
        let screen = Arc::new(Mutex::new(Vec::new()));
        let shown = Arc::clone(&screen);
        // Ends with EIO once the child (the only holder of the slave) is gone; detached.
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Some(Terminal { proc: Proc { name, child, stdout, stderr }, keyboard, screen })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Waits until `needle` has been shown `times` times.
    fn wait_for(&self, needle: &str, times: usize) {
        let what = format!("{needle:?} x{times} on {}'s terminal", self.proc.name);
        let limit = std::time::Instant::now() + WAIT;
        while self.text().matches(needle).count() < times {
            assert!(
                std::time::Instant::now() < limit,
                "timed out waiting for {what}:\n{}",
                self.text()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Types `line` and Enter.
    fn type_line(&mut self, line: &str) {
        self.keyboard.write_all(format!("{line}\r").as_bytes()).unwrap();
    }
}

/// Waits for `path` to hold a whole token (a line ending in a newline) and returns it.
fn token_in(path: &Path) -> String {
    let mut token = String::new();
    wait_until(WAIT, &format!("a token in {}", path.display()), || {
        token = std::fs::read_to_string(path).unwrap_or_default();
        token.ends_with('\n')
    });
    token.trim().to_owned()
}

/// A description that decodes as an offer with a data channel, from nobody in particular.
fn stranger(kind: SdpKind) -> String {
    let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\n\
        a=mid:0\r\na=sctp-port:5000\r\n";
    codec::encode(&SessionDesc { kind, sdp: sdp.into() })
}

/// The sender reads the answer from its terminal: its own offer, a cut-off answer, garbage and
/// another offer are each explained and asked for again; then the real answer is taken and the
/// file arrives byte for byte. (Before, the first bad paste ended the run with a JSON error.)
#[test]
fn a_wrong_paste_on_a_terminal_is_explained_and_asked_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(300_000, 61);
    let src = dir.path().join("payload.bin");
    std::fs::write(&src, &data).unwrap();
    let t = Tokens::in_dir(dir.path());
    let mut tx = dcsend();
    tx.arg(&src).args(LOOPBACK).arg("--sdp-out").arg(&t.offer);
    let Some(mut send) = Terminal::spawn("send", tx, dir.path()) else {
        skip("PTY", "no pseudo-terminal available");
        return;
    };
    let offer = token_in(&t.offer);
    let mut rx = receiver(&t);
    rx.arg("-o").arg(dir.path().join("out/"));
    let mut recv = Proc::spawn("recv", rx, dir.path());
    let answer = token_in(&t.answer);
    let prompt = "paste the answer token";
    send.wait_for(prompt, 1);

    send.type_line(&offer);
    send.wait_for(
        "this is your own offer, not the peer's: paste the token `dcsend recv` printed",
        1,
    );
    send.wait_for(prompt, 2);

    send.type_line(&answer[..answer.len() * 2 / 3]);
    send.wait_for("this looks cut off", 1);
    send.wait_for("paste the whole token", 1);
    send.wait_for(prompt, 3);

    send.type_line("hello, is this the token?");
    send.wait_for("not base64", 1);
    send.wait_for(prompt, 4);

    send.type_line(&stranger(SdpKind::Offer));
    send.wait_for("this is an offer, and this side made the offer too", 1);
    send.wait_for(prompt, 5);

    send.type_line(&answer);
    send.proc.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    let got = std::fs::read(dir.path().join("out/payload.bin")).unwrap();
    assert!(got == data, "received {} bytes, not the {} sent", got.len(), data.len());
    assert_eq!(send.text().matches(prompt).count(), 5, "{}", send.text());
}

/// The receiver at a terminal, given an answer where the offer belongs, says so and asks again.
#[test]
fn an_answer_pasted_into_the_receiver_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let mut rx = dcsend();
    rx.arg("recv").args(LOOPBACK).arg("-o").arg(dir.path().join("out/"));
    let Some(mut recv) = Terminal::spawn("recv", rx, dir.path()) else {
        skip("PTY", "no pseudo-terminal available");
        return;
    };
    recv.wait_for("paste the offer token", 1);
    recv.type_line(&stranger(SdpKind::Answer));
    recv.wait_for("this is an answer, and this side makes the answer", 1);
    recv.wait_for("paste the offer token `dcsend FILE` printed", 1);
    recv.wait_for("paste the offer token", 3);
    // Still waiting, not gone.
    assert!(recv.proc.child.try_wait().unwrap().is_none(), "{}", recv.text());
}

/// From a file, the sender's own offer where the answer belongs ends the run with exit 2 and
/// says what happened (before: "expected an answer, got an offer").
#[test]
fn own_offer_in_the_answer_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f.bin");
    std::fs::write(&src, b"payload").unwrap();
    let t = Tokens::in_dir(dir.path());
    let mut send = Proc::spawn("send", sender(&[&src], &t), dir.path());
    let offer = token_in(&t.offer);
    std::fs::write(&t.answer, format!("{offer}\n")).unwrap();
    send.expect_code(2, WAIT);
    let err = send.stderr_text();
    assert!(
        err.contains(&format!(
            "the peer's answer token in {}: this is your own offer, not the peer's",
            t.answer.display()
        )),
        "{err}"
    );
}

/// From a pipe, a cut-off token ends the run with exit 2 and "looks cut off" (before: "the
/// token's JSON is invalid: EOF while parsing a string").
#[test]
fn a_cut_off_token_on_stdin_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let token = stranger(SdpKind::Offer);
    for cut in [token.len() / 2, token.len() / 2 + 1, token.len() - 3] {
        let mut rx = dcsend();
        rx.arg("recv").args(LOOPBACK).args(["--sdp-in", "-", "--connect-timeout", "5s"]);
        let (mut recv, writer) =
            spawn_fed("recv", rx, dir.path(), format!("{}\n", &token[..cut]).into_bytes());
        recv.expect_code(2, WAIT);
        writer.join().unwrap().unwrap();
        let err = recv.stderr_text();
        assert!(err.contains("the peer's offer token on stdin: this looks cut off"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line expected:\n{err}");
    }
}

/// Runs a sender of 1 MiB and a receiver through token files, `extra` added to the sender;
/// returns (offer, answer) as written, after checking the file arrived byte for byte.
fn transfer_with_tokens(extra: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(1 << 20, 62);
    let src = dir.path().join("payload.bin");
    std::fs::write(&src, &data).unwrap();
    let t = Tokens::in_dir(dir.path());
    let mut rx = receiver(&t);
    rx.arg("-o").arg(dir.path().join("out/"));
    let mut recv = Proc::spawn("recv", rx, dir.path());
    let mut tx = sender(&[&src], &t);
    tx.args(extra);
    let mut send = Proc::spawn("send", tx, dir.path());
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    let got = std::fs::read(dir.path().join("out/payload.bin")).unwrap();
    assert!(got == data, "received {} bytes, not the {} sent", got.len(), data.len());
    let read = |p: &Path| std::fs::read_to_string(p).unwrap().trim().to_owned();
    (read(&t.offer), read(&t.answer))
}

/// Two dcsend processes exchange compact tokens (a few hundred characters where Pion's form
/// takes 880-920) and the file arrives byte for byte: the SDP rebuilt from the compact form is
/// one webrtc-rs accepts, on both sides.
#[test]
fn compact_tokens_connect_two_dcsends() {
    let (offer, answer) = transfer_with_tokens(&[]);
    for (name, token) in [("offer", &offer), ("answer", &answer)] {
        assert!(token.starts_with("DC1"), "{name} is not compact: {token}");
        assert!(token.len() <= 300, "{name} is {} characters: {token}", token.len());
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()), "{name}: {token}");
    }
    eprintln!("compact offer {} characters, answer {}", offer.len(), answer.len());
}

/// `--long-token` prints Pion's form, and the receiver, given a long offer (as from Pion or a
/// browser demo, which read only that form), answers in the long form too.
#[test]
fn a_long_offer_gets_a_long_answer() {
    let (offer, answer) = transfer_with_tokens(&["--long-token"]);
    for (name, token, kind) in
        [("offer", &offer, SdpKind::Offer), ("answer", &answer, SdpKind::Answer)]
    {
        assert!(token.starts_with("eyJ"), "{name} is not Pion's base64 JSON: {token}");
        assert!(codec::decode(token, kind).is_ok(), "{name}");
    }
    eprintln!("long offer {} characters, answer {}", offer.len(), answer.len());
}

// ---------------------------------------------------------------------------------------
// --qr: the page URL as a QR code for a phone

/// The QR code drawn in half blocks in `text`, decoded; `None` until one is there whole.
fn qr_in(text: &str) -> Option<String> {
    let rows: Vec<Vec<char>> = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.contains('█') && l.chars().all(|c| matches!(c, '█' | '▀' | '▄' | ' ')))
        .map(|l| l.chars().collect())
        .collect();
    let width = rows.first()?.len();
    // Each character is two modules, top and bottom; a block is a light module. Scaled up so
    // the decoder sees modules, not pixels.
    let scale = 4;
    let light = |x: usize, y: usize| {
        let c = rows[y / 2].get(x).copied().unwrap_or(' ');
        if y.is_multiple_of(2) { matches!(c, '█' | '▀') } else { matches!(c, '█' | '▄') }
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(
        width * scale,
        rows.len() * 2 * scale,
        |x, y| if light(x / scale, y / scale) { 255 } else { 0 },
    );
    let grids = img.detect_grids();
    grids.first()?.decode().ok().map(|(_, content)| content)
}

/// `--qr=always` draws the URL printed for the other side into stderr even when it is a file,
/// and a phone's decoder reads back exactly that URL (secret included).
#[test]
fn qr_always_draws_the_room_url_into_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = signal_server(dir.path(), &[]);
    let cmd = peer(&["recv", "--qr=always"], &format!("http://{addr}/"));
    let recv = Proc::spawn("recv", cmd, dir.path());
    let url = invite(&recv);
    let mut seen = None;
    wait_until(WAIT, "a QR code on stderr", || {
        seen = qr_in(&recv.stderr_text());
        seen.is_some()
    });
    assert_eq!(seen.unwrap(), url);
    assert!(url.contains('#'), "the secret is in the URL: {url}");
}

/// `--qr` draws on a terminal.
#[test]
fn qr_draws_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = signal_server(dir.path(), &[]);
    let cmd = peer(&["recv", "--qr"], &format!("http://{addr}/"));
    let Some(recv) = Terminal::spawn("recv", cmd, dir.path()) else {
        skip("PTY", "no pseudo-terminal available");
        return;
    };
    let mut seen = None;
    wait_until(WAIT, "a QR code on the terminal", || {
        seen = qr_in(&recv.text());
        seen.is_some()
    });
    let url = seen.unwrap();
    assert!(recv.text().contains(&format!("--peer '{url}'")), "{}", recv.text());
}

/// `--qr` into a file draws nothing (the file gets the URL, which a script can use), and
/// without `--qr` nothing is drawn on a terminal either. Checked after a whole transfer, so
/// that a code drawn late would be there.
#[test]
fn qr_is_not_drawn_unless_asked_and_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = signal_server(dir.path(), &[]);
    let data = random_bytes(100_000, 63);
    let src = dir.path().join("payload.bin");
    std::fs::write(&src, &data).unwrap();
    let mut recv =
        Proc::spawn("recv", peer(&["recv", "--qr"], &format!("http://{addr}/")), dir.path());
    let url = invite(&recv);
    let mut send = Proc::spawn("send", peer(&[src.to_str().unwrap()], &url), dir.path());
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    assert!(recv.stdout_bytes() == data);
    assert!(!recv.stderr_text().contains('█'), "{}", recv.stderr_text());

    let opener = peer(&[src.to_str().unwrap()], &format!("http://{addr}/"));
    let Some(term) = Terminal::spawn("opener", opener, dir.path()) else {
        skip("PTY", "no pseudo-terminal available");
        return;
    };
    term.wait_for("on the other side run", 1);
    let url =
        term.text().split("--peer '").nth(1).and_then(|r| r.split('\'').next()).unwrap().to_owned();
    let mut join = Proc::spawn("join", peer(&["recv"], &url), dir.path());
    join.expect_code(0, WAIT);
    assert!(join.stdout_bytes() == data);
    let mut term = term;
    term.proc.expect_code(0, WAIT);
    assert!(!term.text().contains('█'), "{}", term.text());
}

// ---------------------------------------------------------------------------------------
// A token altered on the way

/// The offer's DTLS fingerprint altered on its way to the receiver (one hex digit, as a
/// man in the middle who swaps in their own certificate would): the handshake fails, and both
/// sides say so at once, in words, with the exit code of a failed connection (3). Before,
/// webrtc-rs never marked the DTLS transport failed, so both waited their 30 s connect timeout
/// and reported "the data channel did not open within 30s (connection state: Connecting)".
#[test]
fn a_tampered_fingerprint_fails_the_secure_connection_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f.bin");
    std::fs::write(&src, random_bytes(100_000, 64)).unwrap();
    let t = Tokens::in_dir(dir.path());
    let altered = Tokens { offer: dir.path().join("altered-offer.tok"), answer: t.answer.clone() };
    let mut send = Proc::spawn("send", sender(&[&src], &t), dir.path());
    let offer = codec::decode(&token_in(&t.offer), SdpKind::Offer).unwrap();
    let fingerprint = codec::attribute(&offer.sdp, "fingerprint").expect("a=fingerprint");
    // "sha-256 AB:CD:...": change the last hex digit.
    let last = fingerprint.chars().last().unwrap();
    let other = if last == '0' { '1' } else { '0' };
    let forged = format!("{}{other}", &fingerprint[..fingerprint.len() - 1]);
    let sdp = offer.sdp.replace(fingerprint, &forged);
    assert_ne!(sdp, offer.sdp);
    let token = codec::encode(&SessionDesc { kind: SdpKind::Offer, sdp });
    std::fs::write(&altered.offer, format!("{token}\n")).unwrap();
    let mut recv = Proc::spawn("recv", receiver(&altered), dir.path());
    // Both peers use the default 30 s connect timeout: ending well within it is the fix.
    let limit = std::time::Duration::from_secs(20);
    let started = std::time::Instant::now();
    recv.expect_code(3, limit);
    send.expect_code(3, limit);
    eprintln!("both ended {:.2} s after the receiver started", started.elapsed().as_secs_f64());
    for (name, p) in [("recv", &recv), ("send", &send)] {
        let err = p.stderr_text();
        assert!(err.contains("the secure connection (DTLS) could not be set up"), "{name}: {err}");
        assert!(err.contains("did not match the fingerprint in a token"), "{name}: {err}");
        assert!(!err.contains("NAT"), "{name}: {err}");
    }
}
