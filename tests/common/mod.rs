//! Shared helpers for the process-level tests: a scrubbed `dcsend` command, spawned
//! children that are killed when dropped, and bounded waits.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

pub mod browser;
pub mod netns;

/// Every wait in these tests is bounded by this (CI machines have 2 cores).
pub const WAIT: Duration = Duration::from_secs(60);

/// `dcsend` with the environment scrubbed (bat `tests/utils/command.rs`).
pub fn dcsend() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dcsend"));
    scrub_env(&mut cmd);
    cmd.stdin(Stdio::null());
    cmd
}

/// Removes what would change dcsend's behaviour from `cmd`'s environment: `DCSEND_*`,
/// `RUST_LOG`, `NO_COLOR`.
pub fn scrub_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("DCSEND_") || k == "RUST_LOG" || k == "NO_COLOR" {
            cmd.env_remove(&key);
        }
    }
}

/// Flags every networked test adds: loopback only, no live view.
pub const LOOPBACK: [&str; 4] = ["--bind", "127.0.0.1:0", "--progress", "never"];

/// `dcsend bench` with one small case (1 MiB at 1 MiB / 64 KiB, one run, no warm-up): for
/// tests of where its output goes, not of its figures.
pub fn one_case_bench() -> Command {
    let mut cmd = dcsend();
    cmd.args(["bench", "--threshold", "1M", "--chunk-size", "64K", "--size", "1M"])
        .args(["--runs", "1", "--warmup", "0"]);
    cmd
}

/// A dcsend peer on loopback that meets the other side through the signaling server at `url`.
pub fn peer(args: &[&str], url: &str) -> Command {
    let mut cmd = dcsend();
    cmd.args(args).args(LOOPBACK).args(["--peer", url]);
    cmd
}

/// A path inside the repository's `web/` folder.
pub fn web(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web").join(path)
}

/// The first file called `name` on the `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// A suite that needs something outside the crate (root, coturn, node, Chromium) calls this
/// when it is missing, then returns: with `DCSEND_TEST_REQUIRE_<what>=1` (as CI sets) that is
/// a failure, otherwise the test says why it did not run. Under [`skippable_tests!`] the test
/// then counts as ignored, with `why`, in cargo test's summary (call this on the test's own
/// thread); under the built-in harness it passes. One rule for every suite.
pub fn skip(what: &str, why: &str) {
    let var = format!("DCSEND_TEST_REQUIRE_{what}");
    let required = std::env::var_os(&var).is_some_and(|v| v == "1");
    assert!(!required, "{var}=1 but {why}");
    let why = format!("{why}; {var}=1 makes this a failure");
    SKIPPED.with(|s| match &mut *s.borrow_mut() {
        Some(skipped) => *skipped = Some(why),
        None => eprintln!("SKIPPED: {why}"),
    });
}

thread_local! {
    /// `Some` while a test of [`run_skippable`] runs on this thread: then why it skipped, if
    /// it did ([`skip`]).
    static SKIPPED: std::cell::RefCell<Option<Option<String>>> =
        const { std::cell::RefCell::new(None) };
}

/// The `main` of a suite whose tests may [`skip`] (its `[[test]]` in Cargo.toml says
/// `harness = false`): runs the named functions as tests with libtest-mimic, which takes the
/// same arguments as the built-in harness (filters, `--exact`, `--test-threads`, `--list`)
/// and reports a skipped test as `ignored (why)`, counted in the summary's "ignored".
#[macro_export]
macro_rules! skippable_tests {
    ($($test:ident),+ $(,)?) => {
        fn main() -> std::process::ExitCode {
            common::run_skippable(vec![$((stringify!($test), $test as fn())),+])
        }
    };
}

/// Runs `tests` (name, function) under libtest-mimic; see [`skippable_tests!`].
pub fn run_skippable(tests: Vec<(&'static str, fn())>) -> std::process::ExitCode {
    use libtest_mimic::{Arguments, Completion, Trial};
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            Trial::ignorable_test(name, move || {
                SKIPPED.with(|s| *s.borrow_mut() = Some(None));
                test();
                Ok(match SKIPPED.with(|s| s.borrow_mut().take()).flatten() {
                    Some(why) => Completion::ignored_with(why),
                    None => Completion::Completed,
                })
            })
        })
        .collect();
    libtest_mimic::run(&Arguments::from_args(), trials).exit_code()
}

/// A child process killed (by its own handle) when dropped; its output goes to files.
pub struct Proc {
    pub name: &'static str,
    pub child: Child,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdout/stderr redirected into `dir`.
    pub fn spawn(name: &'static str, mut cmd: Command, dir: &Path) -> Proc {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        cmd.stdout(File::create(&stdout).unwrap()).stderr(File::create(&stderr).unwrap());
        let child = cmd.spawn().expect("spawn dcsend");
        Proc { name, child, stdout, stderr }
    }

    /// Waits for exit, at most `limit`; panics (after killing) on timeout.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        match self.child.wait_timeout(limit).unwrap() {
            Some(status) => status,
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not exit within {limit:?}; stderr:\n{}",
                    self.name,
                    self.stderr_text()
                );
            }
        }
    }

    /// Sends `sig` to the child (SIGINT is Ctrl-C).
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The lines of stderr written so far, each one whole: a line still being written (no
    /// newline yet) is left out, so a reader polling this never parses half a line.
    pub fn stderr_lines(&self) -> Vec<String> {
        let text = self.stderr_text();
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole.lines().map(str::to_owned).collect()
    }

    /// Everything the child wrote to stdout, as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout_bytes()).into_owned()
    }

    pub fn stdout_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.stdout).unwrap_or_default()
    }

    /// Exit code, panicking with stderr when it is not `want`.
    pub fn expect_code(&mut self, want: i32, limit: Duration) {
        let status = self.wait(limit);
        assert_eq!(
            status.code(),
            Some(want),
            "{} exited with {status}, wanted {want}; stderr:\n{}",
            self.name,
            self.stderr_text()
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `raw` to `addr` on a fresh connection and reads the answer until the server closes
/// (at most [`WAIT`]). With `half_close`, ends our side after `raw`, so a request that promised
/// more body than it sent ends too. Returns the status and the body; `None` when the server
/// closed without a status line. A failed write is not an error: the server may close while
/// an oversized request is still being written, and what it answered before counts.
pub fn http_exchange(addr: SocketAddr, raw: &[u8], half_close: bool) -> Option<(u16, String)> {
    exchange_on(TcpStream::connect(addr).unwrap(), raw, half_close)
}

/// [`http_exchange`] from the source address `src` (any of 127.0.0.0/8 works on Linux: all of
/// it is routed to `lo`), as a client on another host would connect.
pub fn http_exchange_from(src: IpAddr, addr: SocketAddr, raw: &[u8]) -> Option<(u16, String)> {
    exchange_on(connect_from(src, addr), raw, false)
}

fn exchange_on(mut s: TcpStream, raw: &[u8], half_close: bool) -> Option<(u16, String)> {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let _ = s.write_all(raw);
    if half_close {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    let status = reply.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

/// A TCP connection to `to` from the source address `src` (port from the OS), connecting
/// within [`WAIT`].
pub fn connect_from(src: IpAddr, to: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::for_address(to), socket2::Type::STREAM, None)
        .expect("a socket");
    sock.bind(&SocketAddr::new(src, 0).into()).unwrap_or_else(|e| panic!("binding {src}: {e}"));
    sock.connect_timeout(&to.into(), WAIT).unwrap_or_else(|e| panic!("connecting from {src}: {e}"));
    sock.into()
}

/// Polls `cond` every 10 ms until it holds, at most `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Deterministic pseudo-random bytes, so a failure reproduces.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    use rand::{Rng, SeedableRng};
    let mut out = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut out);
    out
}

/// Token file paths for one pair: the offer and the answer.
pub struct Tokens {
    pub offer: PathBuf,
    pub answer: PathBuf,
}

impl Tokens {
    pub fn in_dir(dir: &Path) -> Tokens {
        Tokens { offer: dir.join("offer.tok"), answer: dir.join("answer.tok") }
    }
}

/// A sender command that offers: `dcsend FILES... --sdp-out offer --sdp-in answer`.
pub fn sender(files: &[&Path], t: &Tokens) -> Command {
    let mut cmd = dcsend();
    cmd.args(files).args(LOOPBACK);
    cmd.arg("--sdp-out").arg(&t.offer).arg("--sdp-in").arg(&t.answer);
    cmd
}

/// A receiver command that answers: `dcsend recv --sdp-in offer --sdp-out answer`.
pub fn receiver(t: &Tokens) -> Command {
    let mut cmd = dcsend();
    cmd.arg("recv").args(LOOPBACK);
    cmd.arg("--sdp-in").arg(&t.offer).arg("--sdp-out").arg(&t.answer);
    cmd
}

/// The names in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Spawns `cmd` with its stdin fed `data` by a writer thread (like `cat x |`); the thread
/// returns the write's result (an error when the process stopped reading).
pub fn spawn_fed(
    name: &'static str,
    mut cmd: Command,
    dir: &Path,
    data: Vec<u8>,
) -> (Proc, std::thread::JoinHandle<std::io::Result<()>>) {
    cmd.stdin(Stdio::piped());
    let mut p = Proc::spawn(name, cmd, dir);
    let mut stdin = p.child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    (p, writer)
}

/// `dcsend signal --listen 127.0.0.1:0 EXTRA...`, returned once it printed its address.
pub fn signal_server(dir: &Path, extra: &[&str]) -> (Proc, SocketAddr) {
    let mut cmd = dcsend();
    cmd.args(["signal", "--listen", "127.0.0.1:0"]).args(extra);
    spawn_signal_server(dir, cmd)
}

/// Spawns a `dcsend signal ...` command and waits for its `listening on` line.
pub fn spawn_signal_server(dir: &Path, cmd: Command) -> (Proc, SocketAddr) {
    let proc = Proc::spawn("signal", cmd, dir);
    let mut addr = None;
    wait_until(WAIT, "the server's 'listening on' line", || {
        addr = proc
            .stderr_lines()
            .iter()
            .find_map(|l| l.strip_prefix("listening on http://"))
            .map(|a| a.trim().parse().unwrap());
        addr.is_some()
    });
    (proc, addr.unwrap())
}

/// The URL a dcsend peer printed for the other side (`... --peer 'URL'`).
pub fn invite(p: &Proc) -> String {
    let mut url = None;
    wait_until(WAIT, "the printed command for the other side", || {
        url = p.stderr_lines().iter().find_map(|l| {
            let (_, rest) = l.split_once("--peer '")?;
            Some(rest.trim_end().trim_end_matches('\'').to_owned())
        });
        url.is_some()
    });
    url.unwrap()
}

/// A STUN server on loopback that holds every Binding request until [`HeldStun::release`],
/// then answers them all (a bare RFC 8489 success with XOR-MAPPED-ADDRESS): a peer gathering
/// with it waits in the middle of its rendezvous for as long as a test needs, and goes on.
pub struct HeldStun {
    pub addr: std::net::SocketAddr,
    released: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl HeldStun {
    pub fn start() -> HeldStun {
        use std::sync::atomic::Ordering::Relaxed;
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let addr = sock.local_addr().unwrap();
        let released = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (r, s, count) = (released.clone(), stop.clone(), requests.clone());
        std::thread::spawn(move || {
            let mut held: Vec<([u8; 12], std::net::SocketAddr)> = Vec::new();
            let mut buf = [0u8; 1500];
            while !s.load(Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf)
                    && n >= 20
                    && buf[..2] == [0x00, 0x01]
                {
                    held.push((buf[8..20].try_into().unwrap(), from));
                    count.fetch_add(1, Relaxed);
                }
                if r.load(Relaxed) {
                    for (txid, from) in held.drain(..) {
                        let _ = sock.send_to(&stun_success(txid, from), from);
                    }
                }
            }
        });
        HeldStun { addr, released, stop, requests }
    }

    /// Waits until a Binding request came (a peer started gathering), at most `limit`.
    pub fn wait_for_request(&self, limit: Duration) {
        wait_until(limit, "a STUN Binding request", || {
            self.requests.load(std::sync::atomic::Ordering::Relaxed) > 0
        });
    }

    pub fn release(&self) {
        self.released.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for HeldStun {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A Binding success response to transaction `txid` from `from` (IPv4).
fn stun_success(txid: [u8; 12], from: std::net::SocketAddr) -> Vec<u8> {
    const COOKIE: u32 = 0x2112_A442;
    let std::net::IpAddr::V4(ip) = from.ip() else { panic!("IPv4 only") };
    let mut out = vec![0x01, 0x01, 0x00, 12];
    out.extend_from_slice(&COOKIE.to_be_bytes());
    out.extend_from_slice(&txid);
    // XOR-MAPPED-ADDRESS: type, length 8, family IPv4, port and address XORed with the cookie.
    out.extend_from_slice(&[0x00, 0x20, 0x00, 0x08, 0x00, 0x01]);
    out.extend_from_slice(&(from.port() ^ (COOKIE >> 16) as u16).to_be_bytes());
    out.extend_from_slice(&(u32::from(ip) ^ COOKIE).to_be_bytes());
    out
}
