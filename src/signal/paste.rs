//! Token I/O for copy-paste negotiation: print our token, read the peer's.
//!
//! Our token goes to stderr (stdout may carry the payload) or to `--sdp-out FILE`; the peer's is
//! read from `/dev/tty` (stdin may be the payload), stdin, or `--sdp-in FILE`. This module moves
//! raw text only; `signal::codec` turns it into a session description. Mapping `-` to
//! stdin/stderr is the CLI's job.
//!
//! Boundaries: must not import `webrtc`, `indicatif`, `cli`, or anything else from dcsend
//! but `atomic` (token files are written whole; not even `codec`); it depends only on `tokio`
//! and `nix` (`term`, `fs` features).
//!
//! Blocking work (opening a FIFO, reading stdin or the terminal) runs off the async runtime in a
//! way that survives cancellation: a timed-out or dropped [`read_token`] never leaves the terminal
//! in non-canonical mode and never makes runtime shutdown wait for a read that may never end.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices, Termios};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::atomic;

/// Where our token is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSink {
    Stderr,
    File(PathBuf),
}

/// Where the peer's token is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Tty,
    Stdin,
    File(PathBuf),
}

/// Largest token accepted, in bytes. A data-channel SDP is a few KiB; this only stops a wrong
/// file or an endless stream from filling memory.
pub const MAX_TOKEN_BYTES: usize = 1 << 20;

/// How often a `--sdp-in FILE` that does not exist yet is polled.
const FILE_POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Terminal read timeout (`VTIME`, in tenths of a second): how often the TTY reader checks for
/// cancellation, and how long input must pause after a line before the paste counts as complete.
const TTY_VTIME_DECISECONDS: u8 = 1;

/// Writes `token` to `sink`.
///
/// `Stderr`: prints `label` (one human line, e.g. "offer token (paste it into the other
/// terminal):") and then the token on its own line, so the token is the last line of stderr.
/// An empty `label` prints the token alone.
///
/// `File`: if PATH is a FIFO, opens it and writes `token` + `\n` (this waits for a reader to
/// open the FIFO; wrap the call in a timeout if that may never happen). Otherwise writes a
/// temporary file in the same directory with mode 0600 (the token carries ICE credentials) and
/// renames it over PATH, so a reader never sees a partial token.
pub async fn write_token(sink: &TokenSink, label: &str, token: &str) -> io::Result<()> {
    match sink {
        TokenSink::Stderr => {
            let text =
                if label.is_empty() { format!("{token}\n") } else { format!("{label}\n{token}\n") };
            let mut stderr = tokio::io::stderr();
            stderr.write_all(text.as_bytes()).await?;
            stderr.flush().await
        }
        TokenSink::File(path) => {
            let path = path.clone();
            let line = format!("{token}\n");
            let is_fifo = match tokio::fs::metadata(&path).await {
                Ok(meta) => meta.file_type().is_fifo(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(with_path(e, "cannot inspect", &path)),
            };
            if is_fifo {
                // Opening a FIFO for writing blocks until a reader shows up.
                off_runtime(move || {
                    let mut fifo = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|e| with_path(e, "cannot open", &path))?;
                    fifo.write_all(line.as_bytes()).map_err(|e| with_path(e, "cannot write", &path))
                })
                .await
            } else {
                // 0600: the token carries ICE credentials.
                tokio::task::spawn_blocking(move || {
                    atomic::write(&path, line.as_bytes(), 0o600)
                        .map_err(|e| with_path(e, "cannot write the token to", &path))
                })
                .await
                .map_err(io::Error::other)?
            }
        }
    }
}

/// Reads the peer's token from `src` and returns the raw text (not decoded).
///
/// `timeout` bounds the whole wait; on expiry the error has kind [`io::ErrorKind::TimedOut`] and
/// names what was awaited ("timed out after 30s waiting for the peer's token in /tmp/x").
///
/// - `File`: polls every 25 ms until PATH exists. A FIFO is opened and read to EOF. A regular
///   file that is empty counts as not yet written; a non-empty one is taken once it ends with a
///   newline or is unchanged for one more poll (so a writer without atomic rename is tolerated).
/// - `Stdin`: reads stdin to EOF.
/// - `Tty`: prints `prompt` to stderr, then reads `/dev/tty` in non-canonical mode, because
///   canonical mode truncates a line at 4095 bytes (Linux) or 1024 (macOS, aiortc#111). Returns
///   once a line with non-whitespace content has ended and input has paused for 0.1 s, so a
///   multi-line paste (a bare SDP, or a token the terminal wrapped) arrives whole; lines of only
///   whitespace are skipped. The original terminal settings are restored on every exit path,
///   including timeout and cancellation (within 0.1 s); a `std::process::exit` while this future
///   is still alive skips that, so drop it first.
///
/// Errors: no `/dev/tty` (the message suggests `--sdp-in FILE`), I/O errors (with the path),
/// input over [`MAX_TOKEN_BYTES`], or text that is not UTF-8 ([`io::ErrorKind::InvalidData`]).
///
/// Cancel-safe in the sense that dropping the future abandons the read; a blocked FIFO open or
/// stdin read is left in a detached thread that does not delay process exit.
pub async fn read_token(src: &TokenSource, prompt: &str, timeout: Duration) -> io::Result<String> {
    let read = async {
        match src {
            TokenSource::File(path) => read_file_when_ready(path).await,
            TokenSource::Stdin => {
                off_runtime(|| read_capped(io::stdin().lock(), "stdin".to_owned())).await
            }
            TokenSource::Tty => read_tty(prompt).await,
        }
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_) => {
            let place = match src {
                TokenSource::File(path) => format!("in {}", path.display()),
                TokenSource::Stdin => "on stdin".to_owned(),
                TokenSource::Tty => "on the terminal".to_owned(),
            };
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("timed out after {timeout:?} waiting for the peer's token {place}"),
            ))
        }
    }
}

/// Runs blocking `f` on a detached thread and awaits its result.
///
/// Not `spawn_blocking`: tokio's shutdown waits for every blocking task, so a FIFO open or a
/// stdin read that never completes would hang the process after a timeout. A detached thread
/// dies with the process instead.
async fn off_runtime<T, F>(f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("dcsend-token-io".to_owned()).spawn(move || {
        // The receiver is gone if the caller timed out; nobody wants the result then.
        let _ = tx.send(f());
    })?;
    rx.await.map_err(|_| io::Error::other("the token I/O thread panicked"))?
}

/// Polls `path` until it holds a token (see [`read_token`]) and returns its text.
async fn read_file_when_ready(path: &Path) -> io::Result<String> {
    let mut previous: Option<String> = None;
    loop {
        match tokio::fs::metadata(path).await {
            Ok(meta) if meta.file_type().is_fifo() => {
                let path = path.to_owned();
                return off_runtime(move || {
                    let fifo = File::open(&path).map_err(|e| with_path(e, "cannot open", &path))?;
                    read_capped(fifo, path.display().to_string())
                })
                .await;
            }
            Ok(meta) if meta.len() > MAX_TOKEN_BYTES as u64 => {
                // Refused unread: a token file the size of a disk image is not worth reading.
                return Err(too_long(&path.display().to_string()));
            }
            Ok(meta) if meta.len() > 0 => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| with_path(e, "cannot read", path))?;
                // At most one byte over the cap: the file may have grown since.
                let mut bytes = Vec::new();
                file.take(MAX_TOKEN_BYTES as u64 + 1)
                    .read_to_end(&mut bytes)
                    .await
                    .map_err(|e| with_path(e, "cannot read", path))?;
                let text = bytes_to_token(bytes, &path.display().to_string())?;
                if text.ends_with('\n') || previous.as_deref() == Some(text.as_str()) {
                    return Ok(text);
                }
                previous = Some(text);
            }
            Ok(_) => previous = None,
            Err(e) if e.kind() == io::ErrorKind::NotFound => previous = None,
            Err(e) => return Err(with_path(e, "cannot inspect", path)),
        }
        tokio::time::sleep(FILE_POLL_INTERVAL).await;
    }
}

/// Reads `source` to EOF, up to [`MAX_TOKEN_BYTES`], as UTF-8. `what` names it in errors.
fn read_capped(source: impl Read, what: String) -> io::Result<String> {
    let mut bytes = Vec::new();
    source.take(MAX_TOKEN_BYTES as u64 + 1).read_to_end(&mut bytes)?;
    bytes_to_token(bytes, &what)
}

fn bytes_to_token(bytes: Vec<u8>, what: &str) -> io::Result<String> {
    if bytes.len() > MAX_TOKEN_BYTES {
        return Err(too_long(what));
    }
    String::from_utf8(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the peer's token in {what} is not text"),
        )
    })
}

/// The error for a token over [`MAX_TOKEN_BYTES`] in `what`.
fn too_long(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the peer's token in {what} is longer than {MAX_TOKEN_BYTES} bytes"),
    )
}

/// Adds `path` to an I/O error's message, keeping its kind.
fn with_path(err: io::Error, action: &str, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{action} {}: {err}", path.display()))
}

/// Sets its flag when dropped, telling the blocking TTY reader to stop.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

async fn read_tty(prompt: &str) -> io::Result<String> {
    let tty = OpenOptions::new().read(true).write(true).open("/dev/tty").map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "there is no terminal to read the peer's token from ({e}); \
                 use --sdp-in FILE to read it from a file"
            ),
        )
    })?;
    if !prompt.is_empty() {
        let mut stderr = tokio::io::stderr();
        stderr.write_all(format!("{prompt}\n").as_bytes()).await?;
        stderr.flush().await?;
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let _cancel_on_drop = CancelOnDrop(Arc::clone(&cancel));
    // spawn_blocking (not a detached thread) so that runtime shutdown waits the <= 0.1 s the
    // reader needs to notice cancellation and restore the terminal settings.
    tokio::task::spawn_blocking(move || read_tty_blocking(tty, &cancel))
        .await
        .map_err(io::Error::other)?
}

/// Restores the terminal settings it was created with when dropped (also on error or panic).
struct TermiosGuard {
    tty: File,
    original: Termios,
}

impl TermiosGuard {
    /// Puts `tty` into non-canonical mode: ICANON cleared, ECHO and ISIG kept (Ctrl-C still
    /// works), `VMIN=0`, `VTIME=1`. Canonical mode would cut a long pasted line; `VMIN=0` with a
    /// read timeout (rather than `VMIN=1, VTIME=0`) lets the reader poll for cancellation.
    fn non_canonical(tty: File) -> io::Result<Self> {
        let original = termios::tcgetattr(&tty)?;
        let mut raw = original.clone();
        raw.local_flags.remove(LocalFlags::ICANON);
        raw.control_chars[SpecialCharacterIndices::VMIN as usize] = 0;
        raw.control_chars[SpecialCharacterIndices::VTIME as usize] = TTY_VTIME_DECISECONDS;
        termios::tcsetattr(&tty, SetArg::TCSANOW, &raw)?;
        Ok(Self { tty, original })
    }
}

impl Drop for TermiosGuard {
    fn drop(&mut self) {
        // Nothing useful to do if this fails; the terminal is likely gone.
        let _ = termios::tcsetattr(&self.tty, SetArg::TCSANOW, &self.original);
    }
}

/// Reads the terminal until a line with content has ended and input pauses, or `cancel` is set.
fn read_tty_blocking(tty: File, cancel: &AtomicBool) -> io::Result<String> {
    let guard = TermiosGuard::non_canonical(tty)?;
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    // True once a newline has ended a line with content; the next quiet read completes the paste.
    let mut line_done = false;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "terminal read cancelled"));
        }
        let n = match (&guard.tty).read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            // VTIME expired with no input (ICANON is off, so Ctrl-D is not EOF here).
            if line_done {
                break;
            }
            continue;
        }
        for &byte in &buf[..n] {
            if byte == b'\n' || byte == b'\r' {
                if text.iter().all(u8::is_ascii_whitespace) {
                    // A line with only whitespace: skip it, do not count it as the token.
                    text.clear();
                    continue;
                }
                line_done = true;
            }
            text.push(byte);
        }
        if text.len() > MAX_TOKEN_BYTES {
            break;
        }
    }
    drop(guard);
    bytes_to_token(text, "the terminal")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::fd::OwnedFd;

    /// Bound for every await in these tests.
    const LIMIT: Duration = Duration::from_secs(10);

    async fn within<T>(fut: impl Future<Output = T>) -> T {
        tokio::time::timeout(LIMIT, fut).await.expect("test step timed out")
    }

    fn sink(path: &Path) -> TokenSink {
        TokenSink::File(path.to_owned())
    }

    fn source(path: &Path) -> TokenSource {
        TokenSource::File(path.to_owned())
    }

    #[tokio::test]
    async fn atomic_write_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offer.txt");
        within(write_token(&sink(&path), "ignored label", "first")).await.unwrap();
        within(write_token(&sink(&path), "ignored label", "TOKEN==")).await.unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "TOKEN==\n");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(names, vec![path.clone()], "no temporary file is left behind");
        let got = within(read_token(&source(&path), "", LIMIT)).await.unwrap();
        assert_eq!(got, "TOKEN==\n");
    }

    #[tokio::test]
    async fn write_to_missing_directory_fails_with_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("offer.txt");
        let err = within(write_token(&sink(&path), "", "T")).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("offer.txt"), "{err}");
    }

    #[tokio::test]
    async fn read_waits_for_file_created_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("answer.txt");
        let writer = {
            let path = path.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                write_token(&TokenSink::File(path), "", "LATE").await
            })
        };
        let got = within(read_token(&source(&path), "", LIMIT)).await.unwrap();
        assert_eq!(got, "LATE\n");
        within(writer).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn read_takes_unterminated_file_once_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("answer.txt");
        fs::write(&path, "NO-NEWLINE").unwrap();
        let got = within(read_token(&source(&path), "", LIMIT)).await.unwrap();
        assert_eq!(got, "NO-NEWLINE");
    }

    #[tokio::test]
    async fn read_fifo_written_by_another_task() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipe");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let writer = {
            let path = path.clone();
            tokio::spawn(async move { write_token(&TokenSink::File(path), "", "FIFO").await })
        };
        let got = within(read_token(&source(&path), "", LIMIT)).await.unwrap();
        assert_eq!(got, "FIFO\n");
        within(writer).await.unwrap().unwrap();
        assert!(fs::metadata(&path).unwrap().file_type().is_fifo(), "FIFO not replaced");
    }

    #[tokio::test]
    async fn timeout_fires_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("never");
        let wait = Duration::from_millis(100);
        let err = within(read_token(&source(&path), "", wait)).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let expected =
            format!("timed out after 100ms waiting for the peer's token in {}", path.display());
        assert_eq!(err.to_string(), expected);
    }

    #[tokio::test]
    async fn timeout_on_fifo_without_writer() {
        // The blocked open() must not keep the test (or a runtime shutdown) waiting.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipe");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err =
            within(read_token(&source(&path), "", Duration::from_millis(100))).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn empty_file_is_not_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("answer.txt");
        fs::write(&path, "").unwrap();
        let err =
            within(read_token(&source(&path), "", Duration::from_millis(150))).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // Once written it is taken.
        let reader = {
            let path = path.clone();
            tokio::spawn(async move { read_token(&TokenSource::File(path), "", LIMIT).await })
        };
        tokio::time::sleep(Duration::from_millis(60)).await;
        fs::write(&path, "NOW\n").unwrap();
        assert_eq!(within(reader).await.unwrap().unwrap(), "NOW\n");
    }

    /// A token file of 2 GiB (sparse: it costs no disk) is refused by its size, unread: the
    /// whole of it in memory took 2.1 GB before.
    #[tokio::test]
    async fn a_huge_file_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge");
        File::create(&path).unwrap().set_len(2 << 30).unwrap();
        let err = within(read_token(&source(&path), "", LIMIT)).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("longer than 1048576 bytes"), "{err}");
    }

    #[tokio::test]
    async fn oversized_file_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        fs::write(&path, vec![b'A'; MAX_TOKEN_BYTES + 1]).unwrap();
        let err = within(read_token(&source(&path), "", LIMIT)).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    /// A pseudo-terminal pair: (master, slave as the "tty"), slave echo off so the test need not
    /// drain the master's output.
    fn pty() -> Option<(File, File)> {
        let pair = nix::pty::openpty(None, None).ok()?;
        let mut attrs = termios::tcgetattr(&pair.slave).ok()?;
        attrs.local_flags.remove(LocalFlags::ECHO);
        termios::tcsetattr(&pair.slave, SetArg::TCSANOW, &attrs).ok()?;
        let to_file = |fd: OwnedFd| File::from(fd);
        Some((to_file(pair.master), to_file(pair.slave)))
    }

    fn is_canonical(tty: &File) -> bool {
        termios::tcgetattr(tty).unwrap().local_flags.contains(LocalFlags::ICANON)
    }

    #[tokio::test]
    async fn tty_reads_long_line_skips_blank_lines_and_restores_termios() {
        let Some((mut master, slave)) = pty() else {
            eprintln!("skipped: no pseudo-terminal available");
            return;
        };
        let probe = slave.try_clone().unwrap();
        assert!(is_canonical(&probe));
        // 6000 bytes: longer than the 4095-byte canonical line limit on Linux.
        let token = "Q".repeat(6000);
        let input = format!("\n   \r{token}\r");
        let writer = std::thread::spawn(move || master.write_all(input.as_bytes()).map(|_| master));
        let cancel = AtomicBool::new(false);
        let got = within(tokio::task::spawn_blocking(move || read_tty_blocking(slave, &cancel)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.trim(), token);
        assert!(is_canonical(&probe), "original termios restored");
        drop(writer.join().unwrap().unwrap());
    }

    #[tokio::test]
    async fn tty_keeps_reading_a_multi_line_paste() {
        let Some((mut master, slave)) = pty() else {
            eprintln!("skipped: no pseudo-terminal available");
            return;
        };
        master.write_all(b"v=0\no=- 1 2 IN IP4 127.0.0.1\ns=-\n").unwrap();
        let cancel = AtomicBool::new(false);
        let got = within(tokio::task::spawn_blocking(move || read_tty_blocking(slave, &cancel)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, "v=0\no=- 1 2 IN IP4 127.0.0.1\ns=-\n");
    }

    #[tokio::test]
    async fn tty_cancel_stops_reader_and_restores_termios() {
        let Some((_master, slave)) = pty() else {
            eprintln!("skipped: no pseudo-terminal available");
            return;
        };
        let probe = slave.try_clone().unwrap();
        let cancel = Arc::new(AtomicBool::new(false));
        let reader = {
            let cancel = Arc::clone(&cancel);
            tokio::task::spawn_blocking(move || read_tty_blocking(slave, &cancel))
        };
        within(async {
            while is_canonical(&probe) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        drop(CancelOnDrop(cancel));
        let err = within(reader).await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Interrupted);
        assert!(is_canonical(&probe), "original termios restored");
    }
}
