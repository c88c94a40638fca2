//! Output discipline, with real processes on loopback: stdout carries only the payload
//! (`recv`) or what was asked for (`--help`, `--version`); tokens, progress, summaries and
//! logs go to stderr; `NO_COLOR` and `TERM=dumb` are honoured; a closed pipe on stdout is a
//! clean exit. Every wait is bounded and every child is killed by its handle on drop.

mod common;

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// Loopback only, without LOOPBACK's `--progress never` (clap refuses a flag given twice).
const BIND: [&str; 2] = [LOOPBACK[0], LOOPBACK[1]];

/// Writes `len` pseudo-random bytes to `DIR/payload.bin`; returns the path and the bytes.
fn payload(dir: &Path, len: usize, seed: u64) -> (PathBuf, Vec<u8>) {
    let data = random_bytes(len, seed);
    let path = dir.join("payload.bin");
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

/// A sender of `src` and a receiver to stdout, negotiating through token files in `dir`,
/// both with `--progress WHEN`.
fn pair(dir: &Path, src: &Path, progress: &str) -> (Command, Command) {
    let t = Tokens::in_dir(dir);
    let mut tx = dcsend();
    tx.arg(src).args(BIND).args(["--progress", progress]);
    tx.arg("--sdp-out").arg(&t.offer).arg("--sdp-in").arg(&t.answer);
    let mut rx = dcsend();
    rx.arg("recv").args(BIND).args(["--progress", progress]);
    rx.arg("--sdp-in").arg(&t.offer).arg("--sdp-out").arg(&t.answer);
    (tx, rx)
}

/// Runs a pair to completion (both must exit 0); returns (sender, receiver).
fn run_pair(dir: &Path, tx: Command, rx: Command) -> (Proc, Proc) {
    let mut recv = Proc::spawn("recv", rx, dir);
    let mut send = Proc::spawn("send", tx, dir);
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    (send, recv)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every escape sequence in `bytes`: a CSI (`ESC [ params final`) whole, anything else as
/// ESC plus the next byte; rendered with `escape_ascii` so a report can show them.
fn escapes(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != 0x1b {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        if bytes.get(i) == Some(&b'[') {
            i += 1;
            while i < bytes.len() && !(0x40..=0x7e).contains(&bytes[i]) {
                i += 1;
            }
        }
        i = (i + 1).min(bytes.len());
        out.push(bytes[start..i].escape_ascii().to_string());
    }
    out
}

/// The colour (SGR) sequences among [`escapes`]: `ESC [ ... m`.
fn colours(bytes: &[u8]) -> Vec<String> {
    escapes(bytes).into_iter().filter(|e| e.starts_with("\\x1b[") && e.ends_with('m')).collect()
}

/// Distinct escapes, for failure messages and `--nocapture` reports.
fn distinct(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

// ---------------------------------------------------------------------------------------
// stdout carries only the payload; logs and stats go to stderr

/// `recv` to stdout with logs, the live view and NDJSON stats all on: stdout is the payload
/// byte for byte, and stderr proves the logs and stats were produced (so they could have
/// corrupted stdout, and did not).
fn recv_to_stdout_with_noise(extra: &[&str], env: &[(&str, &str)], log_needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (src, data) = payload(dir.path(), 1 << 20, 21);
    let (tx, mut rx) = pair(dir.path(), &src, "always");
    rx.args(extra).args(["--stats", "-"]).envs(env.iter().copied());
    let (send, recv) = run_pair(dir.path(), tx, rx);
    let out = recv.stdout_bytes();
    assert!(out == data, "recv stdout is {} bytes, not the {} sent", out.len(), data.len());
    let err = recv.stderr_text();
    assert!(err.lines().any(|l| l.contains(log_needle)), "no {log_needle} log line:\n{err}");
    // (With --progress always the frames share the file: a line may start with escapes.)
    assert!(err.lines().any(|l| l.contains(r#"{"t":"summary""#)), "no NDJSON summary:\n{err}");
    assert!(err.contains("received to stdout:"), "the summary does not say stdout:\n{err}");
    assert!(err.contains("SHA-256 verified"), "no closing summary line:\n{err}");
    assert!(!contains(err.as_bytes(), &data[..64]), "payload bytes leaked into stderr");
    assert!(send.stdout_bytes().is_empty(), "sender stdout: {:?}", send.stdout_bytes());
}

#[test]
fn recv_stdout_is_only_the_payload_with_vv_progress_and_stats() {
    recv_to_stdout_with_noise(&["-vv"], &[], "DEBUG");
}

#[test]
fn recv_stdout_is_only_the_payload_with_rust_log_trace() {
    recv_to_stdout_with_noise(&[], &[("RUST_LOG", "trace")], "TRACE");
}

#[test]
fn sender_stdout_is_empty_with_vv_progress_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let (src, data) = payload(dir.path(), 1 << 20, 22);
    let (mut tx, rx) = pair(dir.path(), &src, "always");
    tx.args(["-vv", "--stats", "-"]);
    let (send, recv) = run_pair(dir.path(), tx, rx);
    assert!(send.stdout_bytes().is_empty(), "sender stdout: {:?}", send.stdout_bytes());
    let err = send.stderr_text();
    assert!(err.lines().any(|l| l.contains("DEBUG")), "no DEBUG log line:\n{err}");
    assert!(err.lines().any(|l| l.contains(r#"{"t":"progress""#)), "no NDJSON progress:\n{err}");
    // (With --progress always the frames share the file: a line may start with escapes.)
    assert!(err.lines().any(|l| l.contains(r#"{"t":"summary""#)), "no NDJSON summary:\n{err}");
    assert!(err.contains("dcsend: sent 1.0 MiB"), "no closing summary line:\n{err}");
    assert!(recv.stdout_bytes() == data);
}

/// Issue 19: the receiver's summary named no file ("received 50.0 MiB ..."). It names the
/// saved file, and the folder when there are several.
#[test]
fn the_receiver_s_summary_names_the_saved_file_or_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (src, data) = payload(dir.path(), 100_000, 24);
    let src = src.as_path();
    let other = dir.path().join("other.bin");
    std::fs::write(&other, b"other").unwrap();
    let out = dir.path().join("out");
    for (run, (files, want)) in [
        (&[src][..], format!("dcsend: received '{}':", out.join("payload.bin").display())),
        (&[src, &other], format!("dcsend: received 2 files into '{}/':", out.display())),
    ]
    .into_iter()
    .enumerate()
    {
        let _ = std::fs::remove_dir_all(&out);
        // Fresh token files per run: a pair must not read the last run's.
        let run_dir = dir.path().join(format!("run{run}"));
        std::fs::create_dir(&run_dir).unwrap();
        let t = Tokens::in_dir(&run_dir);
        let mut rx = receiver(&t);
        rx.arg("-o").arg(format!("{}/", out.display()));
        let (_, recv) = run_pair(&run_dir, sender(files, &t), rx);
        let err = recv.stderr_text();
        assert!(err.contains(&want), "wanted {want:?} in:\n{err}");
        assert!(std::fs::read(out.join("payload.bin")).unwrap() == data);
    }
}

/// The first line of `text` that looks like a token (compact `DC1...` or long base64,
/// newline-terminated).
fn token_line(text: &str) -> Option<String> {
    let complete = &text[..text.rfind('\n')? + 1];
    complete
        .lines()
        .find(|l| {
            (l.starts_with("DC1") || l.len() > 200)
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        })
        .map(str::to_owned)
}

/// Waits for `p` to print a token on stderr, then writes it atomically to `to`.
fn relay_token(p: &Proc, to: &Path) {
    let mut token = None;
    wait_until(WAIT, &format!("a token on {}'s stderr", p.name), || {
        token = token_line(&p.stderr_text());
        token.is_some()
    });
    let tmp = to.with_extension("tmp");
    std::fs::write(&tmp, format!("{}\n", token.unwrap())).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

#[test]
fn tokens_printed_on_stderr_leave_stdout_to_the_payload() {
    let dir = tempfile::tempdir().unwrap();
    let (src, data) = payload(dir.path(), 300_000, 23);
    let t = Tokens::in_dir(dir.path());
    // No --sdp-out on either side: each prints its token on stderr, as for a human.
    let mut tx = dcsend();
    tx.arg(&src).args(LOOPBACK).arg("--sdp-in").arg(&t.answer);
    let mut rx = dcsend();
    rx.arg("recv").args(LOOPBACK).arg("--sdp-in").arg(&t.offer);
    let mut send = Proc::spawn("send", tx, dir.path());
    relay_token(&send, &t.offer);
    let mut recv = Proc::spawn("recv", rx, dir.path());
    relay_token(&recv, &t.answer);
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    assert!(recv.stdout_bytes() == data, "stdout is not exactly the payload");
    assert!(send.stdout_bytes().is_empty(), "sender stdout: {:?}", send.stdout_bytes());
    assert!(recv.stderr_text().contains("answer token"), "{}", recv.stderr_text());
}

// ---------------------------------------------------------------------------------------
// NO_COLOR and TERM=dumb; what a stderr that is a file receives

/// Runs a 1 MiB pair with `-v` and `--progress PROGRESS` on both sides and `env` set,
/// stderr redirected to files. Neither stderr may hold a colour code (dcsend draws none,
/// tracing is built without ANSI). With `frames`, the sender's live view must have drawn
/// into the file (`--progress always`); without, no escape sequence at all may appear.
fn stderr_files(progress: &str, env: &[(&str, &str)], frames: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (src, data) = payload(dir.path(), 1 << 20, 31);
    let (mut tx, mut rx) = pair(dir.path(), &src, progress);
    for cmd in [&mut tx, &mut rx] {
        cmd.arg("-v").env_remove("TERM").envs(env.iter().copied());
    }
    let (send, recv) = run_pair(dir.path(), tx, rx);
    assert!(recv.stdout_bytes() == data);
    for p in [&send, &recv] {
        let err = std::fs::read(&p.stderr).unwrap();
        assert!(!err.is_empty(), "{}: nothing on stderr (no summary?)", p.name);
        let seen = distinct(escapes(&err));
        eprintln!("{} stderr with {progress} {env:?}: escapes {seen:?}", p.name);
        assert!(colours(&err).is_empty(), "{}: colour codes {seen:?}", p.name);
        if !frames {
            assert!(seen.is_empty(), "{}: escapes in a non-terminal stderr {seen:?}", p.name);
        }
    }
    if frames {
        let err = std::fs::read(&send.stderr).unwrap();
        assert!(
            self::frames(&err).iter().any(|f| f.starts_with("payload.bin ") && f.contains("buf ")),
            "no frame drawn:\n{}",
            err.escape_ascii()
        );
    }
}

#[test]
fn no_color_forced_view_draws_no_colour() {
    stderr_files("always", &[("NO_COLOR", "1"), ("TERM", "xterm-256color")], true);
}

#[test]
fn term_dumb_leaves_stderr_free_of_escapes() {
    stderr_files("auto", &[("TERM", "dumb")], false);
}

#[test]
fn auto_into_a_file_leaves_stderr_free_of_escapes() {
    stderr_files("auto", &[("TERM", "xterm-256color")], false);
}

#[test]
fn progress_always_into_a_file_draws_frames_without_colour() {
    stderr_files("always", &[("TERM", "xterm-256color")], true);
}

/// A child whose stderr is a pseudo-terminal, read by a thread until the child has exited
/// and the terminal has stayed silent for a while (fds leaked into concurrently spawned
/// children must not keep the reader waiting for EOF).
/// Which other streams [`OnPty::spawn_with`] puts on the terminal besides stderr.
#[derive(Default, Clone, Copy)]
struct Also {
    stdin: bool,
    stdout: bool,
    /// Stdout a pipe the test reads (`proc.child.stdout`), instead of a file.
    stdout_pipe: bool,
    /// The terminal's width; 0: 100 columns.
    cols: u16,
}

struct OnPty {
    proc: Proc,
    exited: Arc<AtomicBool>,
    reader: std::thread::JoinHandle<Vec<u8>>,
}

impl OnPty {
    /// `None` when no pseudo-terminal can be opened here.
    fn spawn(name: &'static str, cmd: Command, dir: &Path) -> Option<OnPty> {
        Self::spawn_with(name, cmd, dir, Also::default())
    }

    /// As [`OnPty::spawn`], with `also` of stdin and stdout on the same terminal (what a
    /// person at a shell has); the others stay as `cmd` has them (stdout: a file).
    fn spawn_with(name: &'static str, mut cmd: Command, dir: &Path, also: Also) -> Option<OnPty> {
        use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
        let cols = if also.cols == 0 { 100 } else { also.cols };
        let size = nix::pty::Winsize { ws_row: 24, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = nix::pty::openpty(&size, None).ok()?;
        for fd in [&pty.master, &pty.slave] {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).ok()?;
        }
        fcntl(&pty.master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).ok()?;
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        if also.stdout {
            cmd.stdout(Stdio::from(pty.slave.try_clone().ok()?));
        } else if also.stdout_pipe {
            cmd.stdout(Stdio::piped());
        } else {
            cmd.stdout(File::create(&stdout).unwrap());
        }
        if also.stdin {
            cmd.stdin(Stdio::from(pty.slave.try_clone().ok()?));
        }
        cmd.stderr(Stdio::from(pty.slave));
        let child = cmd.spawn().expect("spawn dcsend");
        drop(cmd); // our copy of the slave: the child must hold the only one
        let exited = Arc::new(AtomicBool::new(false));
        let done = exited.clone();
        let mut master = File::from(pty.master);
        let reader = std::thread::spawn(move || {
            let (mut out, mut buf, mut quiet) = (Vec::new(), [0u8; 8192], 0);
            let start = Instant::now();
            while start.elapsed() < WAIT + WAIT {
                match master.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        out.extend_from_slice(&buf[..n]);
                        quiet = 0;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        if done.load(Ordering::SeqCst) {
                            quiet += 1;
                            if quiet >= 10 {
                                break;
                            }
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => break, // EIO: every slave closed
                }
            }
            out
        });
        Some(OnPty { proc: Proc { name, child, stdout, stderr }, exited, reader })
    }

    /// Waits for exit (at most `limit`), then returns the status and what the terminal got.
    fn finish(mut self, limit: Duration) -> (ExitStatus, Vec<u8>) {
        let status = self.proc.wait(limit);
        self.exited.store(true, Ordering::SeqCst);
        let seen = self.reader.join().unwrap();
        std::fs::write(&self.proc.stderr, &seen).unwrap();
        (status, seen)
    }
}

/// A 4 MiB pair with both stderrs on pseudo-terminals and `env` set; returns what each
/// terminal showed, (sender, receiver). `None` when no pseudo-terminal is available.
fn pair_on_ptys(progress: &str, env: &[(&str, &str)]) -> Option<(Vec<u8>, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let (src, data) = payload(dir.path(), 4 << 20, 41);
    let (mut tx, mut rx) = pair(dir.path(), &src, progress);
    for cmd in [&mut tx, &mut rx] {
        cmd.arg("-v").env_remove("TERM").envs(env.iter().copied());
    }
    let recv = OnPty::spawn("recv", rx, dir.path())?;
    let send = OnPty::spawn("send", tx, dir.path())?;
    let recv_stdout = recv.proc.stdout.clone();
    let (send_status, send_tty) = send.finish(WAIT);
    let (recv_status, recv_tty) = recv.finish(WAIT);
    let show = |b: &[u8]| b.escape_ascii().to_string();
    assert!(send_status.success(), "send: {send_status}; tty:\n{}", show(&send_tty));
    assert!(recv_status.success(), "recv: {recv_status}; tty:\n{}", show(&recv_tty));
    assert!(std::fs::read(recv_stdout).unwrap() == data, "stdout is not the payload");
    for (name, tty) in [("send", &send_tty), ("recv", &recv_tty)] {
        eprintln!(
            "{name} tty with --progress {progress} {env:?}: escapes {:?}",
            distinct(escapes(tty))
        );
    }
    Some((send_tty, recv_tty))
}

#[test]
fn on_a_terminal_the_live_view_draws_no_colour() {
    let Some((send, recv)) = pair_on_ptys("always", &[("TERM", "xterm-256color")]) else {
        eprintln!("skipped: no pseudo-terminal available");
        return;
    };
    for (name, tty) in [("send", &send), ("recv", &recv)] {
        assert!(colours(tty).is_empty(), "{name}: colour codes {:?}", distinct(colours(tty)));
        // The view was really drawn (so the assertion above means something): it moves
        // the cursor / clears the line.
        assert!(!escapes(tty).is_empty(), "{name}: no view drawn on a terminal");
    }
}

/// U+2591, indicatif's default progress character; dcsend's own templates draw "=> ".
const DEFAULT_STYLE_BAR: char = '\u{2591}';

#[test]
fn on_a_terminal_every_frame_uses_dcsend_s_template() {
    let Some((send, recv)) = pair_on_ptys("always", &[("TERM", "xterm-256color")]) else {
        eprintln!("skipped: no pseudo-terminal available");
        return;
    };
    for (name, tty) in [("send", &send), ("recv", &recv)] {
        let text = String::from_utf8_lossy(tty);
        assert!(!text.contains(DEFAULT_STYLE_BAR), "{name}: default-style frame:\n{text:?}");
    }
}

#[test]
fn on_a_terminal_no_color_draws_no_colour() {
    let env = [("TERM", "xterm-256color"), ("NO_COLOR", "1")];
    let Some((send, recv)) = pair_on_ptys("always", &env) else {
        eprintln!("skipped: no pseudo-terminal available");
        return;
    };
    for (name, tty) in [("send", &send), ("recv", &recv)] {
        assert!(colours(tty).is_empty(), "{name}: colour codes {:?}", distinct(colours(tty)));
    }
}

#[test]
fn on_a_terminal_term_dumb_draws_no_escapes_at_all() {
    for progress in ["auto", "always"] {
        let Some((send, recv)) = pair_on_ptys(progress, &[("TERM", "dumb")]) else {
            eprintln!("skipped: no pseudo-terminal available");
            return;
        };
        for (name, tty) in [("send", &send), ("recv", &recv)] {
            let seen = distinct(escapes(tty));
            assert!(seen.is_empty(), "{name} --progress {progress}: escapes {seen:?}");
            assert!(
                String::from_utf8_lossy(tty).contains("dcsend: "),
                "{name}: no summary on the terminal"
            );
        }
    }
}

#[test]
fn usage_error_on_a_terminal_honours_no_color_and_term_dumb() {
    let run = |env: &[(&str, &str)]| {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = dcsend();
        cmd.arg("--no-such-flag").env_remove("TERM").envs(env.iter().copied());
        let p = OnPty::spawn("usage", cmd, dir.path())?;
        let (status, tty) = p.finish(WAIT);
        assert_eq!(status.code(), Some(2), "{}", tty.escape_ascii());
        assert!(String::from_utf8_lossy(&tty).contains("--no-such-flag"));
        Some(tty)
    };
    let Some(coloured) = run(&[("TERM", "xterm-256color")]) else {
        eprintln!("skipped: no pseudo-terminal available");
        return;
    };
    eprintln!("clap usage error on a tty: escapes {:?}", distinct(escapes(&coloured)));
    let quiet: [&[(&str, &str)]; 2] =
        [&[("TERM", "xterm-256color"), ("NO_COLOR", "1")], &[("TERM", "dumb")]];
    for env in quiet {
        let tty = run(env).unwrap();
        assert!(colours(&tty).is_empty(), "{env:?}: {:?}", distinct(colours(&tty)));
    }
}

/// The live view's frames in what a terminal got: escape sequences removed, split where
/// the view returns to the line's start, trailing padding trimmed; only lines with a rate
/// ("/s"), so summaries and notices are left out.
fn frames(tty: &[u8]) -> Vec<String> {
    let mut plain = Vec::new();
    let mut i = 0;
    while i < tty.len() {
        if tty[i] == 0x1b {
            // Skip ESC [ params final, or ESC and one byte.
            i += 1;
            if tty.get(i) == Some(&b'[') {
                i += 1;
                while i < tty.len() && !(0x40..=0x7e).contains(&tty[i]) {
                    i += 1;
                }
            }
            i += 1;
            plain.push(b'\r');
            continue;
        }
        plain.push(tty[i]);
        i += 1;
    }
    String::from_utf8_lossy(&plain)
        .split(['\r', '\n'])
        .map(|l| l.trim_end().to_owned())
        .filter(|l| l.contains("/s") && !l.starts_with("dcsend"))
        .collect()
}

/// A sender and a receiver of 8 MiB with their stderrs on pseudo-terminals `cols` wide,
/// `--progress always`; the receiver's stdout is a pipe the test drains at about 4 MiB/s, so
/// the transfer lasts long enough for the views to show a rate and an ETA whatever the
/// machine's speed. Returns what each terminal showed, (sender, receiver); `None` when no
/// pseudo-terminal is available.
fn slow_pair_on_ptys(cols: u16) -> Option<(Vec<u8>, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let (src, data) = payload(dir.path(), 8 << 20, 71);
    let (mut tx, mut rx) = pair(dir.path(), &src, "always");
    for cmd in [&mut tx, &mut rx] {
        cmd.env("TERM", "xterm-256color");
    }
    let on_pty = Also { cols, ..Also::default() };
    let mut recv = OnPty::spawn_with("recv", rx, dir.path(), Also { stdout_pipe: true, ..on_pty })?;
    let send = OnPty::spawn_with("send", tx, dir.path(), on_pty)?;
    let mut pipe = recv.proc.child.stdout.take().unwrap();
    let drain = std::thread::spawn(move || {
        let (mut got, mut buf) = (Vec::new(), vec![0u8; 64 << 10]);
        let start = Instant::now();
        while start.elapsed() < WAIT {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            std::thread::sleep(Duration::from_millis(16));
        }
        got
    });
    let (send_status, send_tty) = send.finish(WAIT);
    let (recv_status, recv_tty) = recv.finish(WAIT);
    let got = drain.join().unwrap();
    let show = |b: &[u8]| b.escape_ascii().to_string();
    assert!(send_status.success(), "send: {send_status}; tty:\n{}", show(&send_tty));
    assert!(recv_status.success(), "recv: {recv_status}; tty:\n{}", show(&recv_tty));
    assert!(got == data, "the receiver's stdout is not the payload");
    Some((send_tty, recv_tty))
}

/// Issue 19: the receiver's live view was labelled `recv`; it shows the file's name.
#[test]
fn on_a_terminal_the_receiver_s_view_is_labelled_with_the_file_name() {
    let Some((_, recv)) = slow_pair_on_ptys(100) else {
        eprintln!("SKIPPED: no pseudo-terminal here");
        return;
    };
    let frames = frames(&recv);
    assert!(
        frames.iter().any(|f| f.starts_with("payload.bin ")),
        "no frame labelled with the file name: {frames:#?}"
    );
}

/// Issue 19: at 80 columns the view was cut after the average rate, losing the ETA, `buf X/Y`
/// (the headline) and the path. Every frame now fits the terminal, and the sender's shows
/// `buf` and the ETA.
#[test]
fn at_80_columns_every_frame_fits_and_the_sender_s_shows_buf_and_the_eta() {
    let Some((send, recv)) = slow_pair_on_ptys(80) else {
        eprintln!("SKIPPED: no pseudo-terminal here");
        return;
    };
    let (send, recv) = (frames(&send), frames(&recv));
    eprintln!("sender frames at 80 columns: {send:#?}\nreceiver frames: {recv:#?}");
    for (name, frames) in [("send", &send), ("recv", &recv)] {
        assert!(!frames.is_empty(), "{name}: no frame drawn");
        for f in frames.iter() {
            assert!(f.chars().count() <= 80, "{name}: {} columns: {f:?}", f.chars().count());
        }
    }
    assert!(
        send.iter().any(|f| f.contains("buf ") && f.contains("ETA ")),
        "no sender frame with buf and ETA: {send:#?}"
    );
    assert!(recv.iter().any(|f| f.contains("ETA ")), "no receiver frame with an ETA: {recv:#?}");
}

// ---------------------------------------------------------------------------------------
// Broken pipe on the receiver's stdout

struct BrokenPipeRun {
    recv_status: ExitStatus,
    recv_stderr: String,
    send_status: ExitStatus,
    send_stderr: String,
    /// From closing the pipe to the sender's exit.
    send_after: Duration,
}

/// `dcsend recv | head -c 64K` while a 32 MiB file is sent: the test reads 64 KiB from the
/// receiver's stdout, then closes the pipe.
fn broken_pipe_run() -> BrokenPipeRun {
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = payload(dir.path(), 32 << 20, 51);
    let (tx, mut rx) = pair(dir.path(), &src, "never");
    let stderr = dir.path().join("recv.stderr");
    rx.stdout(Stdio::piped()).stderr(File::create(&stderr).unwrap());
    let mut child = rx.spawn().expect("spawn dcsend");
    let mut pipe = child.stdout.take().unwrap();
    let mut recv = Proc { name: "recv", child, stdout: dir.path().join("unused"), stderr };
    let mut send = Proc::spawn("send", tx, dir.path());

    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut head = vec![0u8; 64 << 10];
        let res = pipe.read_exact(&mut head);
        let _ = done_tx.send(res.map(|_| pipe)); // the pipe is closed when the receiver drops it
    });
    let read = done_rx.recv_timeout(WAIT).expect("64 KiB on the receiver's stdout in time");
    drop(read.expect("read the head of the stream"));
    let closed = Instant::now();

    let send_status = send.wait(WAIT);
    let send_after = closed.elapsed();
    let recv_status = recv.wait(WAIT);
    BrokenPipeRun {
        recv_status,
        recv_stderr: recv.stderr_text(),
        send_status,
        send_stderr: send.stderr_text(),
        send_after,
    }
}

/// The consumer stopped before the end (`dcsend recv | tar x`, tar died): not a success.
/// 141 is what the shell reports for a process killed by SIGPIPE.
#[test]
fn broken_pipe_on_recv_stdout_exits_141_and_says_so() {
    let r = broken_pipe_run();
    eprintln!("recv: {}; stderr:\n{}", r.recv_status, r.recv_stderr);
    assert_eq!(
        r.recv_status.code(),
        Some(141),
        "recv exited {} (a signal would be no code); stderr:\n{}",
        r.recv_status,
        r.recv_stderr
    );
    assert!(!r.recv_stderr.contains("panicked"), "{}", r.recv_stderr);
    assert!(
        r.recv_stderr.contains("exited before the end of the data"),
        "says nothing:\n{}",
        r.recv_stderr
    );
}

#[test]
fn broken_pipe_on_recv_stdout_fails_the_sender_promptly_without_panics() {
    let r = broken_pipe_run();
    eprintln!("recv: {}; stderr:\n{}", r.recv_status, r.recv_stderr);
    eprintln!("send: {} after {:?}; stderr:\n{}", r.send_status, r.send_after, r.send_stderr);
    assert!(r.recv_status.code().is_some(), "recv killed by a signal: {}", r.recv_status);
    for (name, err) in [("recv", &r.recv_stderr), ("send", &r.send_stderr)] {
        assert!(!err.contains("panicked") && !err.contains("backtrace"), "{name}:\n{err}");
    }
    // The receiver gave up: exit 3, "the peer went away or aborted", with its reason.
    assert_eq!(
        r.send_status.code(),
        Some(3),
        "send: {}; stderr:\n{}",
        r.send_status,
        r.send_stderr
    );
    assert!(
        r.send_stderr.contains("the receiver's output was closed before the end of the data"),
        "send names no reason:\n{}",
        r.send_stderr
    );
    assert!(r.send_after < Duration::from_secs(10), "sender took {:?} to fail", r.send_after);
}

// ---------------------------------------------------------------------------------------
// --help / --version on stdout; usage errors on stderr

/// Runs `dcsend ARGS` (no network: these exit before connecting); returns (code, out, err).
fn run_quick(args: &[&str]) -> (Option<i32>, Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = dcsend();
    cmd.args(args);
    let mut p = Proc::spawn("dcsend", cmd, dir.path());
    let status = p.wait(WAIT);
    (status.code(), p.stdout_bytes(), p.stderr_text())
}

#[test]
fn help_and_version_go_to_stdout_and_exit_0() {
    for args in [
        &["--version"][..],
        &["-V"],
        &["--help"],
        &["-h"],
        &["recv", "--help"],
        &["recv", "-h"],
        &["send", "--help"],
    ] {
        let (code, out, err) = run_quick(args);
        assert_eq!(code, Some(0), "{args:?}: stderr {err}");
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("dcsend ") || out.contains("Usage:"), "{args:?}: stdout {out:?}");
        assert!(err.is_empty(), "{args:?}: stderr {err:?}");
        assert!(escapes(out.as_bytes()).is_empty(), "{args:?}: escapes in a non-tty stdout");
    }
}

#[test]
fn usage_errors_go_to_stderr_exit_2_and_leave_stdout_empty() {
    for (args, needle) in [
        (&["--no-such-flag"][..], "--no-such-flag"),
        (&["recv", "--bogus"], "--bogus"),
        (&["--progress", "sometimes"], "sometimes"),
        (&["--offer", "--answer"], "--answer"),
        (&["-", "-"], "only once"),
        (&["recv", "-o", "/proc/dcsend-no-such-dir/"], "cannot create the folder"),
    ] {
        let (code, out, err) = run_quick(args);
        assert_eq!(code, Some(2), "{args:?}: stderr {err}");
        assert!(out.is_empty(), "{args:?}: stdout {:?}", String::from_utf8_lossy(&out));
        assert!(err.contains(needle), "{args:?}: stderr lacks {needle:?}:\n{err}");
        assert!(escapes(err.as_bytes()).is_empty(), "{args:?}: escapes in a non-tty stderr");
    }
}

/// `dcsend bench --export-markdown -` at a shell: the export on stdout is the table, so the
/// human copy on stderr would show it twice on the one terminal; it is shown once.
#[test]
fn a_markdown_export_to_a_terminal_shows_the_table_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = one_case_bench();
    cmd.args(["--progress", "never", "--export-markdown", "-"]);
    let also = Also { stdout: true, ..Also::default() };
    let Some(p) = OnPty::spawn_with("bench", cmd, dir.path(), also) else {
        eprintln!("SKIPPED: no pseudo-terminal here");
        return;
    };
    let (status, tty) = p.finish(WAIT);
    let text = String::from_utf8_lossy(&tty);
    assert!(status.success(), "bench: {status}\n{text}");
    assert_eq!(text.matches("| transport |").count(), 1, "the table is not shown once:\n{text}");
}

/// Bare `dcsend` at a prompt (stdin a terminal, no FILE) says how to use it, exit 2, instead
/// of silently sending whatever is typed.
#[test]
fn bare_dcsend_at_a_prompt_prints_the_short_usage() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = dcsend();
    cmd.args(["--connect-timeout", "5s"]);
    let also = Also { stdin: true, ..Also::default() };
    let Some(p) = OnPty::spawn_with("bare", cmd, dir.path(), also) else {
        eprintln!("SKIPPED: no pseudo-terminal here");
        return;
    };
    let (status, tty) = p.finish(WAIT);
    let text = String::from_utf8_lossy(&tty);
    assert_eq!(status.code(), Some(2), "{text}");
    assert!(text.contains("nothing to send") && text.contains("dcsend recv"), "{text}");
}

// ---------------------------------------------------------------------------------------
// `dcsend recv` at a shell: stdout is a terminal

/// `len` pseudo-random bytes with no `\n` or `\r`, so a terminal's line discipline (`\n` ->
/// `\r\n`) cannot hide them: any window of them on the terminal is payload that leaked.
fn no_newlines(len: usize, seed: u64) -> Vec<u8> {
    let mut data = random_bytes(len, seed);
    for b in &mut data {
        if *b == b'\n' || *b == b'\r' {
            *b = b'x';
        }
    }
    data
}

/// Panics when any of a few 32-byte windows of `data` shows on `tty`.
fn assert_no_payload_on(tty: &[u8], data: &[u8]) {
    for at in [0, data.len() / 3, data.len() / 2, data.len() - 32] {
        assert!(!contains(tty, &data[at..at + 32]), "payload bytes (at {at}) reached the terminal");
    }
}

/// A receiver at a shell, as a person runs it: stdin, stdout and stderr one pseudo-terminal,
/// working in `cwd`, `extra` flags added, against `tx` (negotiating through token files in
/// `dir`). Returns the receiver's status and what its terminal showed, and the sender.
/// `None` when no pseudo-terminal is available.
fn recv_at_a_shell(
    dir: &Path,
    cwd: &Path,
    tx: Command,
    extra: &[&str],
) -> Option<(ExitStatus, Vec<u8>, Proc)> {
    let t = Tokens::in_dir(dir);
    let mut rx = dcsend();
    // As a person runs it: the live view is on (`--progress auto`, stderr is the terminal).
    rx.arg("recv").args(BIND).args(extra).current_dir(cwd);
    rx.arg("--sdp-in").arg(&t.offer).arg("--sdp-out").arg(&t.answer);
    let also = Also { stdin: true, stdout: true, ..Also::default() };
    let recv = OnPty::spawn_with("recv", rx, dir, also)?;
    let send = Proc::spawn("send", tx, dir);
    let (status, tty) = recv.finish(WAIT);
    Some((status, tty, send))
}

/// Issue 19: `dcsend recv` as printed, with stdout a terminal, put 50 MiB of binary on the
/// screen. Now it saves the file in the current folder under the sender's name, says so, and
/// writes no payload to the terminal.
#[test]
fn recv_on_a_terminal_saves_the_file_under_its_name_and_not_on_the_screen() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("here");
    std::fs::create_dir(&cwd).unwrap();
    let data = no_newlines(1 << 20, 61);
    let src = dir.path().join("payload.bin");
    std::fs::write(&src, &data).unwrap();
    let tx = sender(&[&src], &Tokens::in_dir(dir.path()));
    let Some((status, tty, mut send)) = recv_at_a_shell(dir.path(), &cwd, tx, &[]) else {
        eprintln!("SKIPPED: no pseudo-terminal here");
        return;
    };
    let text = String::from_utf8_lossy(&tty).into_owned();
    assert!(status.success(), "recv: {status}; tty:\n{}", tty.escape_ascii());
    send.expect_code(0, WAIT);
    assert_no_payload_on(&tty, &data);
    assert!(tty.len() < 64 << 10, "{} bytes on the terminal", tty.len());
    assert_eq!(files_in(&cwd), ["payload.bin"]);
    assert!(std::fs::read(cwd.join("payload.bin")).unwrap() == data, "saved file differs");
    assert!(text.contains("current folder"), "does not say where:\n{text}");
    assert!(text.contains("received 'payload.bin':"), "the summary does not name it:\n{text}");
}

/// Data without a name (the sender's stdin) has nowhere to go when stdout is a terminal:
/// refused, as curl refuses binary output to a terminal, with what to run instead; nothing
/// written to the screen or the folder, and the sender is told.
#[test]
fn recv_on_a_terminal_refuses_data_without_a_name_and_says_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("here");
    std::fs::create_dir(&cwd).unwrap();
    let data = no_newlines(1 << 20, 62);
    let t = Tokens::in_dir(dir.path());
    // `dcsend - < stdin.bin`: stdin, so no name.
    let input = dir.path().join("stdin.bin");
    std::fs::write(&input, &data).unwrap();
    let mut tx = dcsend();
    tx.arg("-").args(LOOPBACK).arg("--sdp-out").arg(&t.offer).arg("--sdp-in").arg(&t.answer);
    tx.stdin(File::open(&input).unwrap());
    let Some((status, tty, mut send)) = recv_at_a_shell(dir.path(), &cwd, tx, &[]) else {
        eprintln!("SKIPPED: no pseudo-terminal here");
        return;
    };
    let text = String::from_utf8_lossy(&tty).into_owned();
    assert_eq!(status.code(), Some(1), "recv: {status}; tty:\n{text}");
    assert!(text.contains("has no name") && text.contains("-o FILE"), "{text}");
    assert_no_payload_on(&tty, &data);
    assert!(files_in(&cwd).is_empty(), "written: {:?}", files_in(&cwd));
    send.expect_code(3, WAIT);
    assert!(send.stderr_text().contains("-o FILE"), "sender not told:\n{}", send.stderr_text());
}

/// An existing file in the current folder is never overwritten (magic-wormhole refuses too):
/// exit 1 with what to do, the file as it was.
#[test]
fn recv_on_a_terminal_never_overwrites_a_file_in_the_current_folder() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("here");
    std::fs::create_dir(&cwd).unwrap();
    std::fs::write(cwd.join("payload.bin"), b"mine").unwrap();
    let (src, _) = payload(dir.path(), 100_000, 63);
    let tx = sender(&[&src], &Tokens::in_dir(dir.path()));
    let Some((status, tty, mut send)) = recv_at_a_shell(dir.path(), &cwd, tx, &[]) else {
        eprintln!("SKIPPED: no pseudo-terminal here");
        return;
    };
    let text = String::from_utf8_lossy(&tty).into_owned();
    assert_eq!(status.code(), Some(1), "recv: {status}; tty:\n{text}");
    assert!(text.contains("payload.bin exists (use --force to overwrite)"), "{text}");
    assert_eq!(std::fs::read(cwd.join("payload.bin")).unwrap(), b"mine");
    assert_eq!(files_in(&cwd), ["payload.bin"]);
    send.expect_code(3, WAIT);
}

/// `-o -` is stdout even on a terminal (curl's `--output -`): text sent from a pipe shows.
#[test]
fn recv_dash_o_dash_writes_to_the_terminal_anyway() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("note.txt");
    std::fs::write(&src, "hello from dcsend\n").unwrap();
    let t = Tokens::in_dir(dir.path());
    let mut tx = dcsend();
    tx.arg("-").args(LOOPBACK).arg("--sdp-out").arg(&t.offer).arg("--sdp-in").arg(&t.answer);
    tx.stdin(File::open(&src).unwrap());
    let Some((status, tty, mut send)) = recv_at_a_shell(dir.path(), dir.path(), tx, &["-o", "-"])
    else {
        eprintln!("SKIPPED: no pseudo-terminal here");
        return;
    };
    let text = String::from_utf8_lossy(&tty).into_owned();
    assert!(status.success(), "recv: {status}; tty:\n{text}");
    send.expect_code(0, WAIT);
    assert!(text.contains("hello from dcsend"), "{text}");
    assert!(!dir.path().join("-").exists(), "-o - made a file called -");
}
