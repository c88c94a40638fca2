//! TURN against a real server: coturn (`turnserver`, Debian package `coturn`) started by each
//! test on 127.0.0.1 with a free port, one long-term-credential user, no TLS/DTLS, no CLI,
//! loopback peers allowed, logging into the test's temp dir, killed on drop.
//!
//! - 32 MiB through the relay with `--relay-only` on both sides arrives byte-exact, the summary
//!   line, the live view and the `--stats` JSON name the pair `relay`, and coturn's log shows
//!   the allocations (so the relay carried the bytes, not a direct path).
//! - Without TURN, the same summary and JSON name the pair `host`.
//! - A wrong password fails at once with exit 3 and says the server refused the user's
//!   credentials, never printing the password; the receiver writes no file.
//! - dcsend's own Allocate probe (used to explain that failure) is checked against coturn in
//!   both directions: granted with the right password, 401 with a wrong one.
//! - With coturn in `use-auth-secret` mode and `dcsend signal --turn .. --turn-secret-file ..`,
//!   two peers with only `--peer URL --relay-only` get their credentials from the signaling
//!   server and connect through the relay; a credential whose time has passed is refused by
//!   coturn.
//!
//! Without `turnserver` on the PATH each test counts as ignored, with the reason, unless
//! `DCSEND_TEST_REQUIRE_TURN=1` (CI), which makes its absence a failure.

mod common;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Proc, Tokens, WAIT, dcsend, find_on_path, random_bytes, skip, wait_until};
use dcsend::peer::turn_probe::{self, Credentials, Verdict};

const USER: &str = "dcsend-test";
const PASSWORD: &str = "correct horse battery staple";
const REALM: &str = "dcsend.test";

/// Bound on a 32 MiB transfer through the relay. Far above what it needs on a quiet machine
/// (a release build does it in 3 s), because a debug build on 2 busy cores starves coturn,
/// whose relay sockets have a 128 KiB receive buffer: the datagrams it drops cost webrtc-rs's
/// SCTP at least one 1 s retransmission timeout each.
const RELAY_WAIT: Duration = Duration::from_secs(300);

/// The shared secret of coturn's `use-auth-secret` mode in these tests.
const SECRET: &str = "the secret only coturn and dcsend signal know";

/// How coturn checks credentials.
#[derive(Clone, Copy)]
enum Auth {
    /// Long-term credentials: the one user [`USER`] with [`PASSWORD`].
    User,
    /// `use-auth-secret`: user names `EXPIRY:TAG`, passwords HMACs made with [`SECRET`].
    Secret,
}

/// A running coturn, killed (by its own handle) when dropped.
struct Coturn {
    proc: Proc,
    addr: SocketAddr,
    log: PathBuf,
}

impl Coturn {
    /// Starts coturn in `dir`, or returns `None` (after saying why) when `turnserver` is not
    /// installed and `DCSEND_TEST_REQUIRE_TURN` is not `1`.
    fn start(dir: &Path) -> Option<Coturn> {
        Self::start_with(dir, Auth::User)
    }

    /// [`Coturn::start`] with the given way of checking credentials.
    fn start_with(dir: &Path, auth: Auth) -> Option<Coturn> {
        let Some(bin) = find_on_path("turnserver") else {
            skip(
                "TURN",
                "turnserver (coturn) is not installed: `apt-get install coturn` to run the TURN tests",
            );
            return None;
        };
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = dir.join("turnserver.log");
        let mut cmd = Command::new(bin);
        cmd.arg("-n") // no configuration file: only these flags
            .args(["--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1"])
            .args(["--listening-port", &port.to_string()])
            .args(["--realm", REALM]);
        match auth {
            Auth::User => cmd.args(["--lt-cred-mech", "--user", &format!("{USER}:{PASSWORD}")]),
            Auth::Secret => cmd.args(["--use-auth-secret", "--static-auth-secret", SECRET]),
        };
        cmd.args(["--no-tls", "--no-dtls", "--no-cli", "--no-rfc5780"])
            // coturn refuses peers on 127.0.0.0/8 unless told otherwise.
            .arg("--allow-loopback-peers")
            .args(["--min-port", "49152", "--max-port", "65535"])
            .arg("--log-file")
            .arg(&log)
            .args(["--simple-log", "--verbose"])
            .arg("--db")
            .arg(dir.join("turndb"))
            .arg("--pidfile")
            .arg(dir.join("turnserver.pid"));
        let mut proc = Proc::spawn("turnserver", cmd, dir);
        // Ready when it answers a STUN Binding request on the port.
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let start = Instant::now();
        while !binding_answered(&probe, addr) {
            if let Ok(Some(status)) = proc.child.try_wait() {
                panic!("turnserver exited with {status}; log:\n{}", read(&log));
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "turnserver did not answer on {addr} within 15 s; log:\n{}",
                read(&log)
            );
        }
        Some(Coturn { proc, addr, log })
    }

    fn url(&self) -> String {
        format!("turn:{}", self.addr)
    }

    /// Its log so far.
    fn log(&self) -> String {
        read(&self.log)
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{} log:\n{}", self.proc.name, self.log());
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A port free on 127.0.0.1 for both TCP and UDP (coturn listens on both).
fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Sends one STUN Binding request (RFC 8489 §5) and waits up to the socket's read timeout
/// for the success response with the same transaction id.
fn binding_answered(sock: &UdpSocket, to: SocketAddr) -> bool {
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    req.extend_from_slice(&random_bytes(12, seed.as_nanos() as u64));
    if sock.send_to(&req, to).is_err() {
        std::thread::sleep(Duration::from_millis(100));
        return false;
    }
    // Read until the socket's timeout: on a loaded machine the answer to an earlier request
    // may arrive first, and stopping at it would leave every later answer one behind.
    let mut buf = [0u8; 1500];
    while let Ok((n, from)) = sock.recv_from(&mut buf) {
        if from == to && n >= 20 && buf[..2] == [0x01, 0x01] && buf[8..20] == req[8..20] {
            return true;
        }
    }
    false
}

/// `dcsend [recv]` through `turn` with `password`, relayed candidates only, loopback bind.
fn turn_cmd(recv: bool, turn: &str, password: &str) -> Command {
    let mut cmd = dcsend();
    if recv {
        cmd.arg("recv");
    }
    cmd.args(["--bind", "127.0.0.1:0", "--turn", turn, "--turn-user", USER, "--relay-only"]);
    cmd.env("DCSEND_TURN_PASSWORD", password);
    cmd
}

/// The last `--stats` line (the summary), parsed.
fn summary_json(path: &Path) -> serde_json::Value {
    let text = read(path);
    let last = text.lines().last().unwrap_or_else(|| panic!("{} is empty", path.display()));
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["t"], "summary", "{last}");
    v
}

fn assert_path(v: &serde_json::Value, kind: &str) {
    assert_eq!(v["path"]["local"], kind, "{v}");
    assert_eq!(v["path"]["remote"], kind, "{v}");
    assert_eq!(v["path"]["protocol"], "udp", "{v}");
}

fn thirty_two_mib_through_the_relay_arrive_intact_and_the_pair_is_relay() {
    let dir = tempfile::tempdir().unwrap();
    let Some(turn) = Coturn::start(dir.path()) else { return };
    let data = random_bytes(32 << 20, 7);
    let src = dir.path().join("payload.bin");
    std::fs::write(&src, &data).unwrap();
    let out = dir.path().join("out.bin");
    let t = Tokens::in_dir(dir.path());

    let mut tx = turn_cmd(false, &turn.url(), PASSWORD);
    tx.arg(&src).args(["--progress", "never", "--stats"]).arg(dir.path().join("send.ndjson"));
    // A 256 KiB threshold keeps what SCTP has in flight near what coturn's relay socket buffers
    // (128 KiB); the default 4 MiB makes bursts that coturn drops on a busy machine, and each
    // drop stalls webrtc-rs's SCTP for a 1 s retransmission timeout.
    tx.args(["--threshold", "256K"]);
    tx.arg("--sdp-out").arg(&t.offer).arg("--sdp-in").arg(&t.answer);
    let mut rx = turn_cmd(true, &turn.url(), PASSWORD);
    // The receiver draws its live view into its stderr file: the path must show there too.
    rx.args(["--progress", "always", "-o"]).arg(&out);
    rx.arg("--stats").arg(dir.path().join("recv.ndjson"));
    rx.arg("--sdp-in").arg(&t.offer).arg("--sdp-out").arg(&t.answer);

    let mut send = Proc::spawn("send", tx, dir.path());
    let mut recv = Proc::spawn("recv", rx, dir.path());
    recv.expect_code(0, RELAY_WAIT);
    send.expect_code(0, WAIT);

    assert!(std::fs::read(&out).unwrap() == data, "the output differs from the input");
    for p in [&send, &recv] {
        let err = p.stderr_text();
        let want = "path: local relay, remote relay (udp), relayed because of --relay-only";
        assert!(err.contains(want), "{}:\n{err}", p.name);
        assert!(!err.contains(PASSWORD), "{} printed the password", p.name);
    }
    assert!(recv.stderr_text().contains("relay/relay"), "no live view with the path");
    for name in ["send.ndjson", "recv.ndjson"] {
        assert_path(&summary_json(&dir.path().join(name)), "relay");
    }
    // Two allocations for our user (one per side), and the relay carried data both ways.
    let log = turn.log();
    let allocations = log
        .lines()
        .filter(|l| {
            l.contains(&format!("user <{USER}>")) && l.contains("ALLOCATE processed, success")
        })
        .count();
    assert_eq!(allocations, 2, "coturn log:\n{log}");
    assert!(log.contains("CREATE_PERMISSION processed, success"), "coturn log:\n{log}");
}

fn a_plain_loopback_transfer_reports_host() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(1 << 20, 8);
    let src = dir.path().join("payload.bin");
    std::fs::write(&src, &data).unwrap();
    let t = Tokens::in_dir(dir.path());
    let mut tx = common::sender(&[&src], &t);
    tx.arg("--stats").arg(dir.path().join("send.ndjson"));
    let mut rx = common::receiver(&t);
    rx.arg("-o").arg(dir.path().join("out.bin"));
    let mut send = Proc::spawn("send", tx, dir.path());
    let mut recv = Proc::spawn("recv", rx, dir.path());
    recv.expect_code(0, WAIT);
    send.expect_code(0, WAIT);
    assert!(std::fs::read(dir.path().join("out.bin")).unwrap() == data);
    for p in [&send, &recv] {
        let err = p.stderr_text();
        assert!(err.contains("path: local host, remote host (udp)"), "{}:\n{err}", p.name);
    }
    assert_path(&summary_json(&dir.path().join("send.ndjson")), "host");
}

fn a_wrong_password_is_refused_with_a_clear_message_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let Some(turn) = Coturn::start(dir.path()) else { return };
    let src = dir.path().join("x.bin");
    std::fs::write(&src, b"never sent").unwrap();
    let out = dir.path().join("out.bin");
    let t = Tokens::in_dir(dir.path());
    let wrong = "not-the-password";

    let mut tx = turn_cmd(false, &turn.url(), wrong);
    tx.arg(&src).args(["--progress", "never"]);
    tx.arg("--sdp-out").arg(&t.offer).arg("--sdp-in").arg(&t.answer);
    let mut rx = turn_cmd(true, &turn.url(), wrong);
    rx.args(["--progress", "never", "--connect-timeout", "5s", "-o"]).arg(&out);
    rx.arg("--sdp-in").arg(&t.offer).arg("--sdp-out").arg(&t.answer);

    let started = Instant::now();
    let mut send = Proc::spawn("send", tx, dir.path());
    let mut recv = Proc::spawn("recv", rx, dir.path());
    send.expect_code(3, WAIT);
    // Gathering takes one round trip to coturn, the explanation two more.
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    let err = send.stderr_text();
    let want = format!(
        "the TURN server {} refused the credentials of user \"{USER}\" (401 Unauthorized)",
        turn.url()
    );
    assert!(err.contains(&want), "wanted {want:?} in:\n{err}");
    assert!(!err.contains(wrong), "the password was printed:\n{err}");
    assert!(!t.offer.exists(), "no offer may be written without a relayed candidate");
    // The receiver never gets an offer: it gives up at its connect timeout.
    recv.expect_code(3, WAIT);
    assert!(!out.exists(), "an output file was written");
    assert!(!recv.stderr_text().contains(wrong), "the password was printed");
    assert!(turn.log().contains("401"), "coturn saw no refused request:\n{}", turn.log());
}

/// The probe that explains a refused allocation: against coturn it must get an allocation
/// with the right password (so its MESSAGE-INTEGRITY is computed right: a wrong one is a 401
/// too) and a 401 with a wrong one.
fn the_allocate_probe_is_granted_with_the_right_password_and_refused_with_a_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let Some(turn) = Coturn::start(dir.path()) else { return };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let probe = |password: &str| {
        let creds = Credentials { user: USER, password };
        rt.block_on(async {
            tokio::time::timeout(WAIT, turn_probe::probe(turn.addr, &creds)).await
        })
        .expect("the probe is bounded")
        .unwrap()
    };
    assert_eq!(probe(PASSWORD), Verdict::Granted);
    match probe("wrong") {
        Verdict::Refused { code: 401, .. } => {}
        other => panic!("wanted a 401, got {other:?}"),
    }
    // The granted allocation was released at once (a Refresh with lifetime 0).
    wait_until(Duration::from_secs(10), "coturn to log the release", || {
        turn.log().contains("lifetime=0")
    });
}

/// Credentials from the signaling server: coturn with `use-auth-secret`, `dcsend signal` with
/// the same secret, and two peers with nothing but `--peer URL` and `--relay-only` (so the
/// relay must be the server's): 4 MiB arrive byte-exact over a relayed path.
fn relay_only_peers_use_credentials_from_the_signaling_server() {
    let dir = tempfile::tempdir().unwrap();
    let Some(turn) = Coturn::start_with(dir.path(), Auth::Secret) else { return };
    let secret = dir.path().join("turn.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let mut server = dcsend();
    server.args(["signal", "--listen", "127.0.0.1:0", "--turn", &turn.url()]);
    server.arg("--turn-secret-file").arg(&secret);
    let (_server, addr) = common::spawn_signal_server(dir.path(), server);
    let data = random_bytes(4 << 20, 11);
    let src = dir.path().join("payload.bin");
    std::fs::write(&src, &data).unwrap();
    let out = dir.path().join("out.bin");
    let relayed = ["--relay-only", "--stats"];
    let mut tx = common::peer(&[src.to_str().unwrap()], &format!("http://{addr}/"));
    // A small threshold, as in the 32 MiB case above: bursts coturn would drop.
    tx.args(["--threshold", "256K"]).args(relayed).arg(dir.path().join("send.ndjson"));
    let mut send = Proc::spawn("send", tx, dir.path());
    let url = common::invite(&send);
    let mut rx = common::peer(&["recv", "-o", out.to_str().unwrap()], &url);
    rx.args(relayed).arg(dir.path().join("recv.ndjson"));
    let mut recv = Proc::spawn("recv", rx, dir.path());
    recv.expect_code(0, RELAY_WAIT);
    send.expect_code(0, WAIT);
    assert!(std::fs::read(&out).unwrap() == data, "the output differs from the input");
    for name in ["send.ndjson", "recv.ndjson"] {
        assert_path(&summary_json(&dir.path().join(name)), "relay");
    }
    // Both allocations were made with user names of the EXPIRY:TAG form that coturn accepted.
    let log = turn.log();
    let granted = log
        .lines()
        .filter(|l| l.contains("ALLOCATE processed, success") && l.contains(":"))
        .filter(|l| {
            let user = l.split("user <").nth(1).and_then(|u| u.split('>').next()).unwrap_or("");
            user.split_once(':').is_some_and(|(expiry, _)| expiry.parse::<u64>().is_ok())
        })
        .count();
    assert_eq!(granted, 2, "coturn log:\n{log}");
}

/// coturn refuses a credential of the scheme once its time has passed, and grants the same
/// kind of credential that is still valid: expiry is enforced by the TURN server, so a
/// credential a peer kept (or leaked) stops working.
fn an_expired_credential_is_refused_by_coturn() {
    let dir = tempfile::tempdir().unwrap();
    let Some(turn) = Coturn::start_with(dir.path(), Auth::Secret) else { return };
    let secret = dcsend::signal::ice::TurnSecret::from_file_text(SECRET).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let probe = |expires: u64| {
        let user = dcsend::signal::ice::turn_username(expires, "test");
        let password = secret.password(&user);
        let creds = Credentials { user: &user, password: &password };
        rt.block_on(async {
            tokio::time::timeout(WAIT, turn_probe::probe(turn.addr, &creds)).await
        })
        .expect("the probe is bounded")
        .unwrap()
    };
    assert_eq!(probe(now.as_secs() + 600), Verdict::Granted);
    match probe(now.as_secs() - 60) {
        Verdict::Refused { code: 401, .. } => {}
        other => panic!("wanted a 401 for an expired credential, got {other:?}"),
    }
}

crate::skippable_tests!(
    relay_only_peers_use_credentials_from_the_signaling_server,
    an_expired_credential_is_refused_by_coturn,
    thirty_two_mib_through_the_relay_arrive_intact_and_the_pair_is_relay,
    a_plain_loopback_transfer_reports_host,
    a_wrong_password_is_refused_with_a_clear_message_and_exit_3,
    the_allocate_probe_is_granted_with_the_right_password_and_refused_with_a_wrong_one,
);
