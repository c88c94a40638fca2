//! Nobody waits forever, whatever blocks; inputs are checked before connecting. Real dcsend
//! processes on loopback, fed and drained by pipes that the test holds open and never serves:
//!
//! - a sender whose producer never yields (`tail -f | dcsend`) exits 3 within the liveness
//!   bound when the receiver is killed, and 130/143 at once on SIGINT/SIGTERM, telling the
//!   receiver why;
//! - a receiver whose consumer never reads (`dcsend recv | (sleep 20; ...)`) stops the same
//!   way, on a killed sender and on SIGINT/SIGTERM;
//! - inputs that cannot all be sent (two with one base name, one unreadable) and a token file
//!   of 2 GiB are refused before anything is sent; a token that never comes says so.
//!
//! The bounds are generous (2 shared cores): they tell "stops" from "hangs", not fast from slow.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

/// The liveness timeout both peers get here.
const LIVENESS: &str = "3s";
/// How long a process may take to exit once it should: the liveness timeout or the stop,
/// plus slack for a slow machine. Without the fixes each case below waits for the pipe,
/// which never comes.
const STOPS_WITHIN: Duration = Duration::from_secs(20);
/// What the producer writes before going silent.
const HEAD: usize = 3 << 20;

/// A sender of stdin and a receiver to stdout, both with a short liveness timeout.
fn pair(dir: &Path) -> (Command, Command) {
    let t = Tokens::in_dir(dir);
    let mut tx = sender(&[], &t);
    tx.arg("-").args(["--liveness-timeout", LIVENESS]);
    let mut rx = receiver(&t);
    rx.args(["--liveness-timeout", LIVENESS]);
    (tx, rx)
}

/// `(head -c 3M; sleep forever) | dcsend -`: a sender whose stdin gets [`HEAD`] bytes and then
/// stays open and silent, and a receiver to a file. Returns once the receiver has stored
/// (nearly) all of them, so the sender's reading thread is blocked in `read`; the returned pipe keeps
/// the producer's end open.
fn silent_producer(dir: &Path) -> (Proc, Proc, ChildStdin) {
    let (mut tx, rx) = pair(dir);
    tx.stdin(Stdio::piped());
    let recv = Proc::spawn("recv", rx, dir);
    let mut send = Proc::spawn("send", tx, dir);
    let mut stdin = send.child.stdin.take().unwrap();
    let writer =
        std::thread::spawn(move || stdin.write_all(&random_bytes(HEAD, 61)).map(|()| stdin));
    let received = recv.stdout.clone();
    // Less a little: the receiver's stdout keeps a line (up to its last newline) buffered.
    wait_until(WAIT, "the head of the stream on the receiver", || {
        std::fs::metadata(&received).map_or(0, |m| m.len()) >= (HEAD - (64 << 10)) as u64
    });
    let stdin = writer.join().unwrap().expect("the sender read the head");
    (send, recv, stdin)
}

/// `dcsend recv | (sleep forever)`: a receiver whose consumer reads the first 64 KiB of a
/// 32 MiB file and then nothing, keeping the pipe open (returned). Returns after a pause
/// that lets the pipe and the receiver's queue fill, so its writer is blocked in `write`.
fn silent_consumer(dir: &Path) -> (Proc, Proc, ChildStdout) {
    let src = dir.join("payload.bin");
    std::fs::write(&src, random_bytes(32 << 20, 62)).unwrap();
    let t = Tokens::in_dir(dir);
    let mut tx = sender(&[&src], &t);
    tx.args(["--liveness-timeout", LIVENESS]);
    let mut rx = receiver(&t);
    rx.args(["--liveness-timeout", LIVENESS]);
    // Proc sends stdout to a file; this one needs a pipe.
    let stderr = dir.join("recv.stderr");
    rx.stdout(Stdio::piped()).stderr(std::fs::File::create(&stderr).unwrap());
    let mut child = rx.spawn().expect("spawn dcsend");
    let mut pipe = child.stdout.take().unwrap();
    let recv = Proc { name: "recv", child, stdout: dir.join("unused"), stderr };
    let send = Proc::spawn("send", tx, dir);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut head = vec![0u8; 64 << 10];
        let _ = done_tx.send(pipe.read_exact(&mut head).map(|()| pipe));
    });
    let pipe = done_rx.recv_timeout(WAIT).expect("64 KiB on the receiver's stdout in time");
    let pipe = pipe.expect("read the head of the stream");
    // Not a measurement: time for the rest to pile up in front of the silent consumer.
    std::thread::sleep(Duration::from_secs(2));
    (send, recv, pipe)
}

#[test]
fn a_sender_blocked_on_its_producer_notices_a_killed_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let (mut send, mut recv, _producer) = silent_producer(dir.path());
    recv.signal(Signal::SIGKILL);
    recv.wait(WAIT);
    send.expect_code(3, STOPS_WITHIN);
    let err = send.stderr_text();
    assert!(err.contains("bytes delivered and confirmed"), "{err}");
}

#[test]
fn a_receiver_blocked_on_its_consumer_notices_a_killed_sender() {
    let dir = tempfile::tempdir().unwrap();
    let (mut send, mut recv, _consumer) = silent_consumer(dir.path());
    send.signal(Signal::SIGKILL);
    send.wait(WAIT);
    recv.expect_code(3, STOPS_WITHIN);
    let err = recv.stderr_text();
    assert!(err.contains("while the output was not being read"), "{err}");
}

fn stop_a_sender_blocked_on_its_producer(sig: Signal, code: i32, reason: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (mut send, mut recv, _producer) = silent_producer(dir.path());
    send.signal(sig);
    send.expect_code(code, STOPS_WITHIN);
    assert!(send.stderr_text().contains(reason), "{}", send.stderr_text());
    recv.expect_code(3, STOPS_WITHIN);
    let err = recv.stderr_text();
    assert!(err.contains(&format!("the peer aborted: the sender was {reason}")), "{err}");
}

#[test]
fn ctrl_c_stops_a_sender_blocked_on_its_producer() {
    stop_a_sender_blocked_on_its_producer(Signal::SIGINT, 130, "interrupted (SIGINT)");
}

#[test]
fn sigterm_stops_a_sender_blocked_on_its_producer() {
    stop_a_sender_blocked_on_its_producer(Signal::SIGTERM, 143, "terminated (SIGTERM)");
}

fn stop_a_receiver_blocked_on_its_consumer(sig: Signal, code: i32, reason: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (mut send, mut recv, _consumer) = silent_consumer(dir.path());
    recv.signal(sig);
    recv.expect_code(code, STOPS_WITHIN);
    assert!(recv.stderr_text().contains(reason), "{}", recv.stderr_text());
    send.expect_code(3, STOPS_WITHIN);
    let err = send.stderr_text();
    assert!(err.contains(&format!("the peer aborted: the receiver was {reason}")), "{err}");
    assert!(err.contains("bytes delivered and confirmed"), "{err}");
}

#[test]
fn ctrl_c_stops_a_receiver_blocked_on_its_consumer() {
    stop_a_receiver_blocked_on_its_consumer(Signal::SIGINT, 130, "interrupted (SIGINT)");
}

#[test]
fn sigterm_stops_a_receiver_blocked_on_its_consumer() {
    stop_a_receiver_blocked_on_its_consumer(Signal::SIGTERM, 143, "terminated (SIGTERM)");
}

/// A sender of `files` that would write its offer to `offer.tok` and wait 2 s for an answer
/// nobody writes: when it is refused first, no offer exists.
fn refused_before_connecting(dir: &Path, files: &[&Path]) -> (Option<i32>, String) {
    let t = Tokens::in_dir(dir);
    let mut tx = sender(files, &t);
    tx.args(["--connect-timeout", "2s"]);
    let mut send = Proc::spawn("send", tx, dir);
    let status = send.wait(WAIT);
    assert!(!t.offer.exists(), "an offer was written: it connected");
    (status.code(), send.stderr_text())
}

#[test]
fn two_inputs_with_one_base_name_are_refused_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let (d1, d2) = (dir.path().join("d1"), dir.path().join("d2"));
    for d in [&d1, &d2] {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join("same"), b"x").unwrap();
    }
    let (code, err) = refused_before_connecting(dir.path(), &[&d1.join("same"), &d2.join("same")]);
    assert_eq!(code, Some(2), "{err}");
    let both = format!("{} and {}", d1.join("same").display(), d2.join("same").display());
    assert!(err.contains(&both), "{err}");
}

#[test]
fn an_unreadable_input_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&a, b"a").unwrap();
    std::fs::write(&b, b"b").unwrap();
    // Unreadable even by root (the tests may run as root): sysctl files keep their mode.
    let locked = Path::new("/proc/sys/vm/drop_caches");
    let (code, err) = refused_before_connecting(dir.path(), &[&a, &b, locked]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("/proc/sys/vm/drop_caches: Permission denied"), "{err}");
}

/// A 2 GiB token file (sparse) is refused by its size: bad input, exit 2, without reading it
/// (it took 2.1 GB of memory).
#[test]
fn a_2_gib_token_file_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f");
    std::fs::write(&src, b"data").unwrap();
    let t = Tokens::in_dir(dir.path());
    std::fs::File::create(&t.answer).unwrap().set_len(2 << 30).unwrap();
    let mut send = Proc::spawn("send", sender(&[&src], &t), dir.path());
    send.expect_code(2, WAIT);
    let err = send.stderr_text();
    assert!(err.contains("is longer than 1048576 bytes"), "{err}");
    // The largest resident set of any child this test process has waited for (the dcsend
    // processes of the other tests in this file are a few tens of MiB).
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN);
    let peak_kib = usage.unwrap().max_rss();
    assert!(peak_kib < 512 << 10, "a child peaked at {peak_kib} KiB");
}

#[test]
fn a_token_that_never_comes_is_not_called_a_network_problem() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f");
    std::fs::write(&src, b"data").unwrap();
    let t = Tokens::in_dir(dir.path());
    let mut tx = sender(&[&src], &t);
    tx.args(["--connect-timeout", "1s"]);
    let mut send = Proc::spawn("send", tx, dir.path());
    send.expect_code(3, WAIT);
    let err = send.stderr_text();
    assert!(err.contains("waiting for the peer's token in"), "{err}");
    assert!(err.contains("the other side's token never came"), "{err}");
    assert!(!err.contains("UDP") && !err.contains("--stun"), "a network hint:\n{err}");
}
