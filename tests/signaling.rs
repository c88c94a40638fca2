//! `dcsend signal` and `--peer URL` as real processes on loopback: a server, a sender and a
//! receiver, ports from the OS. The server is also driven by hand over raw HTTP/1.1, as curl
//! would, to check its refusals and that garbage does not hurt it. Every wait is bounded and
//! every child is killed by its handle on drop.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// A running `dcsend signal` and its base URL (`http://127.0.0.1:PORT/`).
struct Server {
    proc: Proc,
    addr: SocketAddr,
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        let (proc, addr) = signal_server(dir, extra);
        Server { proc, addr }
    }

    fn base(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn request(&self, raw: &[u8]) -> (u16, String) {
        request(self.addr, raw)
    }

    fn call(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        call(self.addr, method, path, body)
    }

    /// Joins `room` by hand; returns the peer token and side.
    fn join(&self, room: &str) -> (String, String) {
        let (status, body) = self.call("POST", &format!("/{room}"), b"");
        assert_eq!(status, 201, "join {room}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        (v["peer"].as_str().unwrap().to_owned(), v["side"].as_str().unwrap().to_owned())
    }

    fn healthy(&self) -> bool {
        self.call("GET", "/healthz", b"") == (200, "ok\n".to_owned())
    }
}

/// One raw request to `addr` (`Connection: close`); returns the status and the body.
fn request(addr: SocketAddr, raw: &[u8]) -> (u16, String) {
    http_exchange(addr, raw, false).unwrap_or_else(|| {
        panic!("no HTTP status in the answer to {:?}", String::from_utf8_lossy(raw))
    })
}

/// `METHOD PATH` with `body`, as curl would send it.
fn call(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    request(addr, &raw)
}

/// The room of a printed URL (`.../ROOM#SECRET`).
fn room_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().split('#').next().unwrap().to_owned()
}

#[derive(Clone, Copy, Debug)]
enum First {
    Sender,
    Receiver,
}

/// A 64 MiB file through the server, into a folder.
fn file_through_server(first: First) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let data = random_bytes(64 << 20, 3);
    let src = dir.path().join("payload.bin");
    std::fs::write(&src, &data).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let src = src.to_str().unwrap();
    let out_arg = out.to_str().unwrap();
    let (mut send, mut recv) = match first {
        First::Sender => {
            let send = Proc::spawn("send", peer(&[src], &server.base()), dir.path());
            let url = invite(&send);
            (send, Proc::spawn("recv", peer(&["recv", "-o", out_arg], &url), dir.path()))
        }
        First::Receiver => {
            let recv =
                Proc::spawn("recv", peer(&["recv", "-o", out_arg], &server.base()), dir.path());
            let url = invite(&recv);
            (Proc::spawn("send", peer(&[src], &url), dir.path()), recv)
        }
    };
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    assert_eq!(files_in(&out), ["payload.bin"]);
    assert!(std::fs::read(out.join("payload.bin")).unwrap() == data, "{first:?}: bytes differ");
    assert!(server.healthy());
}

#[test]
fn a_64_mib_file_arrives_intact_when_the_sender_starts_first() {
    file_through_server(First::Sender);
}

#[test]
fn a_64_mib_file_arrives_intact_when_the_receiver_starts_first() {
    file_through_server(First::Receiver);
}

/// A stdin pipe (fed by a writer thread, like `cat x |`) to the receiver's stdout.
fn pipe_through_server(first: First) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let data = random_bytes(64 << 20, 4);
    let spawn_send = |url: &str| spawn_fed("send", peer(&[], url), dir.path(), data.clone());
    let ((mut send, feeder), mut recv) = match first {
        First::Sender => {
            let (send, feeder) = spawn_send(&server.base());
            let url = invite(&send);
            ((send, feeder), Proc::spawn("recv", peer(&["recv"], &url), dir.path()))
        }
        First::Receiver => {
            let recv = Proc::spawn("recv", peer(&["recv"], &server.base()), dir.path());
            let url = invite(&recv);
            (spawn_send(&url), recv)
        }
    };
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    let _ = feeder.join().unwrap();
    assert!(recv.stdout_bytes() == data, "{first:?}: stdout differs from what was piped in");
}

#[test]
fn a_stdin_pipe_arrives_intact_when_the_sender_starts_first() {
    pipe_through_server(First::Sender);
}

#[test]
fn a_stdin_pipe_arrives_intact_when_the_receiver_starts_first() {
    pipe_through_server(First::Receiver);
}

#[test]
fn a_third_peer_is_refused_with_the_servers_reason() {
    let dir = tempfile::tempdir().unwrap();
    // Both seats taken by hand, as curl would; each speaks, so its seat is its own, and the
    // presence bound outlasts the test, so neither is taken for gone.
    let server = Server::start(dir.path(), &["--presence-timeout", "10m"]);
    let room = "two-taken";
    for want in ["a", "b"] {
        let (token, side) = server.join(room);
        assert_eq!(side, want);
        assert_eq!(server.call("POST", &format!("/{room}/{token}"), b"{}").0, 204);
    }
    let url = format!("{}{room}#some-code-12", server.base());
    let mut third = Proc::spawn("third", peer(&["recv"], &url), dir.path());
    third.expect_code(3, WAIT);
    let err = third.stderr_text();
    assert!(err.contains(&format!("room {room} is full")), "{err}");
    assert!(third.stdout_bytes().is_empty());
    // The same refusal, as an HTTP status.
    assert_eq!(server.call("POST", &format!("/{room}"), b"").0, 409);
}

#[test]
fn an_expired_room_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--room-ttl", "1s"]);
    let (token, side) = server.join("stale-room");
    assert_eq!(side, "a");
    std::thread::sleep(Duration::from_millis(2500));
    let mut late = Proc::spawn(
        "late",
        peer(&["recv"], &format!("{}stale-room#some-code-11", server.base())),
        dir.path(),
    );
    late.expect_code(3, WAIT);
    let err = late.stderr_text();
    assert!(err.contains("room stale-room has expired"), "{err}");
    // The first peer is told too.
    assert_eq!(server.call("GET", &format!("/stale-room/{token}?wait=0"), b"").0, 410);
    assert!(server.proc.stderr_text().contains("room expired"));
}

#[test]
fn a_wrong_secret_fails_fast_on_both_sides_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let payload = dir.path().join("secret.bin");
    std::fs::write(&payload, random_bytes(1 << 20, 9)).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut send =
        Proc::spawn("send", peer(&[payload.to_str().unwrap()], &server.base()), dir.path());
    let url = invite(&send);
    let (room_url, secret) = url.split_once('#').unwrap();
    let wrong = format!("{room_url}#not-{secret}");
    let started = Instant::now();
    let mut recv =
        Proc::spawn("recv", peer(&["recv", "-o", out.to_str().unwrap()], &wrong), dir.path());
    recv.expect_code(3, WAIT);
    send.expect_code(3, WAIT);
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    let err = recv.stderr_text();
    assert!(err.contains("could not authenticate the peer"), "{err}");
    let err = send.stderr_text();
    assert!(
        err.contains("authentication failed") || err.contains("could not authenticate"),
        "{err}"
    );
    assert!(!err.contains("sent "), "{err}");
    assert!(files_in(&out).is_empty(), "nothing may arrive: {:?}", files_in(&out));
}

/// A signaling server in the middle that alters the sealed offer where the DTLS fingerprint
/// sits. It cannot read or rewrite the SDP, so the closest it gets to swapping the fingerprint
/// is flipping the bytes that carry it; the receiver must refuse, and so must the sender.
#[test]
fn a_server_that_tampers_with_the_offer_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let proxy = tamper::Proxy::start(server.addr);
    let base = format!("http://{}/", proxy.addr);
    let payload = dir.path().join("p.bin");
    std::fs::write(&payload, random_bytes(100_000, 5)).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut send = Proc::spawn("send", peer(&[payload.to_str().unwrap()], &base), dir.path());
    let url = invite(&send);
    let mut recv =
        Proc::spawn("recv", peer(&["recv", "-o", out.to_str().unwrap()], &url), dir.path());
    recv.expect_code(3, WAIT);
    send.expect_code(3, WAIT);
    assert!(proxy.tampered() >= 1, "the proxy never saw the offer");
    let err = recv.stderr_text();
    assert!(err.contains("could not authenticate the peer"), "{err}");
    assert!(files_in(&out).is_empty());
}

#[test]
fn garbage_and_oversized_requests_get_4xx_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let big = vec![b'x'; 1 << 20];
    let long_header = format!("GET /healthz HTTP/1.1\r\nX-Junk: {}\r\n\r\n", "y".repeat(1 << 20));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not HTTP at all", b"GARBAGE\r\n\r\n".to_vec()),
        ("binary noise", (0u8..=255).cycle().take(4096).collect()),
        ("a 1 MiB header", long_header.into_bytes()),
    ];
    for (what, raw) in cases {
        let (status, _) = server.request(&raw);
        assert!((400..500).contains(&status), "{what}: {status}");
        assert!(server.healthy(), "after {what}");
    }
    let (token, _) = server.join("busy-room");
    let calls: Vec<(&str, &str, String, &[u8], u16)> = vec![
        ("a 1 MiB message", "POST", format!("/busy-room/{token}"), &big, 413),
        ("a room id with a dot", "POST", "/a.b".into(), b"", 400),
        ("a room id too long", "POST", format!("/{}", "r".repeat(65)), b"", 400),
        ("a guessed peer token", "GET", "/busy-room/0123?wait=0".into(), b"", 404),
        ("a bad wait", "GET", format!("/busy-room/{token}?wait=soon"), b"", 400),
        ("an unknown endpoint", "GET", "/a/b/c".into(), b"", 404),
        ("a wrong method", "PUT", "/busy-room".into(), b"", 405),
    ];
    for (what, method, path, body, want) in calls {
        let (status, text) = server.call(method, &path, body);
        assert_eq!(status, want, "{what}: {text}");
        assert!(server.healthy(), "after {what}");
    }
    // Inbox limit: a peer nobody reads cannot queue without bound.
    let mut last = 0;
    for _ in 0..20 {
        last = server.call("POST", &format!("/busy-room/{token}"), b"{}").0;
    }
    assert_eq!(last, 429);
    // And the next client is served normally.
    let (_, side) = server.join("next-room");
    assert_eq!(side, "a");
}

#[test]
fn rooms_per_client_are_limited() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-rooms-per-client", "2"]);
    server.join("r1");
    server.join("r2");
    let (status, body) = server.call("POST", "/r3", b"");
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("rooms open"), "{body}");
    let mut p =
        Proc::spawn("recv", peer(&["recv"], &format!("{}r4#x-y-10", server.base())), dir.path());
    p.expect_code(3, WAIT);
    assert!(p.stderr_text().contains("the signaling server refused"), "{}", p.stderr_text());
}

#[test]
fn connection_errors_are_one_line_and_exit_3_and_bad_urls_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on a port we just closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut p =
        Proc::spawn("nobody", peer(&["recv"], &format!("http://127.0.0.1:{port}/")), dir.path());
    p.expect_code(3, WAIT);
    let err = p.stderr_text();
    assert!(err.contains("cannot reach the signaling server at http://127.0.0.1:"), "{err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("dcsend:")).count(), 1, "{err}");

    // Something that speaks HTTP but not this protocol.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other_addr = other.local_addr().unwrap();
    let answerer = std::thread::spawn(move || {
        let (mut s, _) = other.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let _ =
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
    });
    let mut p = Proc::spawn("web", peer(&["recv"], &format!("http://{other_addr}/")), dir.path());
    p.expect_code(3, WAIT);
    assert!(
        p.stderr_text().contains("does not answer like a dcsend signaling server"),
        "{}",
        p.stderr_text()
    );
    answerer.join().unwrap();

    for bad in ["ftp://127.0.0.1/", "http://127.0.0.1:1/room", "http://h/x?y=1"] {
        let mut p = Proc::spawn("bad", peer(&["recv"], bad), dir.path());
        p.expect_code(2, WAIT);
        assert!(p.stderr_text().contains("--peer"), "{bad}: {}", p.stderr_text());
    }
}

#[test]
fn nobody_joining_times_out_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut cmd = peer(&["recv"], &server.base());
    cmd.args(["--join-timeout", "1s"]);
    let mut p = Proc::spawn("alone", cmd, dir.path());
    p.expect_code(3, WAIT);
    assert!(p.stderr_text().contains("nobody joined room"), "{}", p.stderr_text());
}

#[test]
fn ctrl_c_while_waiting_for_the_other_side_exits_130_and_closes_the_room() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut recv = Proc::spawn("recv", peer(&["recv"], &server.base()), dir.path());
    let url = invite(&recv);
    let room = room_of(&url);
    recv.signal(nix::sys::signal::Signal::SIGINT);
    recv.expect_code(130, WAIT);
    // It left on the way out: its room is finished, not waiting for a sender that would
    // never be answered.
    let (status, body) = server.call("POST", &format!("/{room}"), b"");
    assert_eq!(status, 410, "{body}");
    assert!(body.contains("finished"), "{body}");
}

/// A receiver that goes away in the middle of its rendezvous (between the PAKE and its
/// answer) frees its seat: the sender is told within the server's presence bound (5 s by
/// default) instead of waiting for the TTL, starts over with whoever joins next, and a second receiver gets the
/// file byte-exact.
///
/// What holds the first receiver in the middle, honestly: a STUN server that never answers (a
/// UDP socket of this test's, on loopback). The receiver gathers its candidates for the
/// answer after it authenticated the sender and got its offer; its first binding request says
/// it is there, and the signal goes out at once.
fn a_receiver_gone_mid_rendezvous(sig: nix::sys::signal::Signal, told: &str) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let data = random_bytes(4 << 20, 21);
    let src = dir.path().join("again.bin");
    std::fs::write(&src, &data).unwrap();
    let (out1, out2) = (dir.path().join("out1"), dir.path().join("out2"));
    std::fs::create_dir(&out1).unwrap();
    std::fs::create_dir(&out2).unwrap();
    let mut send = Proc::spawn("send", peer(&[src.to_str().unwrap()], &server.base()), dir.path());
    let url = invite(&send);
    let stun = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    stun.set_read_timeout(Some(WAIT)).unwrap();
    let mut cmd = peer(&["recv", "-o", out1.to_str().unwrap()], &url);
    cmd.args(["--stun", &format!("stun:{}", stun.local_addr().unwrap())]);
    let mut first = Proc::spawn("recv1", cmd, dir.path());
    let mut buf = [0u8; 1500];
    let asked = stun.recv_from(&mut buf);
    assert!(asked.is_ok(), "the receiver never gathered; stderr:\n{}", first.stderr_text());
    first.signal(sig);
    let _ = first.wait(WAIT);
    let stopped = Instant::now();
    wait_until(WAIT, "the sender's notice that the receiver left", || {
        send.stderr_text().contains(told)
    });
    eprintln!("{sig}: the sender was told {:?} after the receiver stopped", stopped.elapsed());
    let mut second =
        Proc::spawn("recv2", peer(&["recv", "-o", out2.to_str().unwrap()], &url), dir.path());
    second.expect_code(0, WAIT);
    send.expect_code(0, WAIT);
    assert!(std::fs::read(out2.join("again.bin")).unwrap() == data, "bytes differ");
    assert!(files_in(&out1).is_empty(), "{:?}", files_in(&out1));
    let err = send.stderr_text();
    assert!(err.contains("waiting for someone to join again"), "{err}");
}

#[test]
fn a_receiver_killed_mid_rendezvous_frees_its_seat_and_another_one_gets_the_file() {
    let told = "stopped answering (nothing from it for 5s); waiting for someone to join again";
    a_receiver_gone_mid_rendezvous(nix::sys::signal::Signal::SIGKILL, told);
}

#[test]
fn a_receiver_interrupted_mid_rendezvous_leaves_and_another_one_gets_the_file() {
    let told = "left; waiting for someone to join again";
    a_receiver_gone_mid_rendezvous(nix::sys::signal::Signal::SIGINT, told);
}

/// A receiver busy between two requests for longer than the presence bound (gathering its
/// candidates for the answer, with a STUN server that answers only after three bounds) keeps
/// its seat, since it holds a long poll meanwhile; the server does not take it for gone, and
/// the sender does not start over.
#[test]
fn a_receiver_gathering_longer_than_the_presence_bound_keeps_its_seat() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--presence-timeout", "1s"]);
    let data = random_bytes(1 << 20, 22);
    let src = dir.path().join("slow.bin");
    std::fs::write(&src, &data).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut send = Proc::spawn("send", peer(&[src.to_str().unwrap()], &server.base()), dir.path());
    let url = invite(&send);
    let stun = HeldStun::start();
    let mut cmd = peer(&["recv", "-o", out.to_str().unwrap()], &url);
    cmd.args(["--stun", &format!("stun:{}", stun.addr)]);
    let mut recv = Proc::spawn("recv", cmd, dir.path());
    stun.wait_for_request(WAIT);
    // Deliberately long: the point is a pause of three presence bounds.
    std::thread::sleep(Duration::from_secs(3));
    stun.release();
    recv.expect_code(0, WAIT);
    send.expect_code(0, WAIT);
    assert!(std::fs::read(out.join("slow.bin")).unwrap() == data, "bytes differ");
    let err = send.stderr_text();
    assert!(!err.contains("join again"), "the sender took the receiver for gone: {err}");
}

/// The server is only needed until the channel is open: killing it mid-transfer changes
/// nothing for the peers.
#[test]
fn the_transfer_completes_when_the_server_dies_after_the_channel_opened() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let data = random_bytes(8 << 20, 12);
    let mut cmd = peer(&["-v"], &server.base());
    cmd.stdin(Stdio::piped());
    let mut send = Proc::spawn("send", cmd, dir.path());
    let mut stdin = send.child.stdin.take().unwrap();
    let url = invite(&send);
    let mut recv = Proc::spawn("recv", peer(&["recv"], &url), dir.path());
    wait_until(WAIT, "the sender's channel to open", || {
        send.stderr_text().contains("data channel open")
    });
    server.proc.child.kill().unwrap();
    server.proc.wait(WAIT);
    // Only now does the payload start to flow.
    stdin.write_all(&data).unwrap();
    drop(stdin);
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    assert!(recv.stdout_bytes() == data, "the stream differs");
}

#[test]
fn json_logs_are_one_object_per_line_with_the_room_and_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--log-format", "json"]);
    server.join("logged-room");
    assert_eq!(server.call("POST", "/logged-room/nobody", b"{}").0, 404);
    let mut events = Vec::new();
    wait_until(WAIT, "the join and the refusal in the log", || {
        events = server
            .proc
            .stderr_lines()
            .iter()
            .filter(|l| !l.starts_with("listening on "))
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON log line"))
            .collect();
        events.len() >= 3
    });
    let joined = events.iter().find(|e| e["fields"]["message"] == "joined").unwrap();
    assert_eq!(joined["fields"]["room"], "logged-room");
    assert_eq!(joined["fields"]["client"], "127.0.0.1");
    let refused = events.iter().find(|e| e["fields"]["message"] == "refused").unwrap();
    assert_eq!(refused["fields"]["status"], 404);
}

#[test]
fn sigterm_stops_the_server_gracefully_even_with_a_long_poll_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let (token, _) = server.join("waiting");
    let addr = server.addr;
    let poll =
        std::thread::spawn(move || call(addr, "GET", &format!("/waiting/{token}?wait=30"), b"").0);
    std::thread::sleep(Duration::from_millis(300));
    server.proc.signal(nix::sys::signal::Signal::SIGTERM);
    let started = Instant::now();
    server.proc.expect_code(0, WAIT);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(poll.join().unwrap(), 503);
    assert!(server.proc.stderr_text().contains("shutting down"));
}

mod tamper {
    //! An HTTP proxy in front of the real server that rewrites bytes of the sealed offer it
    //! relays and passes everything else through.

    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::body::Bytes;
    use axum::extract::{Request, State};
    use axum::response::{IntoResponse, Response};
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    pub struct Proxy {
        pub addr: SocketAddr,
        tampered: Arc<AtomicUsize>,
        _runtime: tokio::runtime::Runtime,
    }

    #[derive(Clone)]
    struct Ctx {
        upstream: SocketAddr,
        http: reqwest::Client,
        seen: Arc<AtomicUsize>,
        tampered: Arc<AtomicUsize>,
    }

    impl Proxy {
        pub fn start(upstream: SocketAddr) -> Proxy {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let seen = Arc::new(AtomicUsize::new(0));
            let tampered = Arc::new(AtomicUsize::new(0));
            let ctx = Ctx {
                upstream,
                http: reqwest::Client::new(),
                seen: seen.clone(),
                tampered: tampered.clone(),
            };
            let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
            let addr = listener.local_addr().unwrap();
            let app = axum::Router::new().fallback(relay).with_state(ctx);
            runtime.spawn(async move { axum::serve(listener, app).await });
            Proxy { addr, tampered, _runtime: runtime }
        }

        pub fn tampered(&self) -> usize {
            self.tampered.load(Ordering::SeqCst)
        }
    }

    async fn relay(State(ctx): State<Ctx>, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
        let body = match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(mut v) if v["type"] == "sealed" => {
                let mut sealed = STANDARD.decode(v["box"].as_str().unwrap()).unwrap();
                // The first large box is the offer (a hello is under 100 bytes, and the answer
                // only comes after the offer). ChaCha20 is a stream cipher: XOR on the
                // ciphertext is XOR on the SDP at the same place, which is how a server that
                // guessed the layout would rewrite the fingerprint. Poly1305 must catch it.
                if sealed.len() > 200 && ctx.seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    let mid = sealed.len() / 2;
                    for b in &mut sealed[mid..mid + 32] {
                        *b ^= 0x5a;
                    }
                    v["box"] = STANDARD.encode(sealed).into();
                    ctx.tampered.fetch_add(1, Ordering::SeqCst);
                }
                Bytes::from(serde_json::to_vec(&v).unwrap())
            }
            _ => body,
        };
        let url = format!("http://{}{}", ctx.upstream, parts.uri);
        let upstream = ctx.http.request(parts.method, url).body(body).send().await;
        match upstream {
            Ok(r) => {
                let status = r.status();
                let bytes = r.bytes().await.unwrap_or_default();
                (status, bytes).into_response()
            }
            Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        }
    }
}

/// The browser page: `/` and `/ROOM` answer with the same HTML, whose script and stylesheet
/// come from this server and match the committed files; a Content-Security-Policy allows
/// nothing from anywhere else (the page must work on a LAN without internet), and nothing in
/// the HTML or CSS points elsewhere. A path that cannot be a room is not the page.
#[test]
fn the_browser_page_and_its_assets_come_from_the_server_alone() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let get = |path: &str| -> (String, Vec<u8>) {
        let mut s = std::net::TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", server.addr);
        s.write_all(req.as_bytes()).unwrap();
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).unwrap();
        let at = reply.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer");
        (String::from_utf8_lossy(&reply[..at]).to_lowercase(), reply[at + 4..].to_vec())
    };
    let web = |path: &str| std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();

    let (head, page) = get("/");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/html; charset=utf-8"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'"),
        "{head}"
    );
    assert!(head.contains("referrer-policy: no-referrer"), "{head}");
    assert_eq!(page, web("web/static/index.html"));
    let (head, in_room) = get("/k7f3q9x2mb");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(in_room, page);

    let html = String::from_utf8(page).unwrap();
    for (path, file, kind) in [
        ("/dcsend-page.js", "web/dist/dcsend-page.js", "text/javascript"),
        ("/dcsend.css", "web/static/dcsend.css", "text/css"),
    ] {
        assert!(html.contains(&format!("\"{path}\"")), "the page does not load {path}");
        let (head, body) = get(path);
        assert!(head.starts_with("http/1.1 200"), "{path}: {head}");
        assert!(head.contains(&format!("content-type: {kind}")), "{path}: {head}");
        assert!(head.contains("x-content-type-options: nosniff"), "{path}: {head}");
        assert_eq!(body, web(file), "{path} is not {file}");
    }
    let css = String::from_utf8(web("web/static/dcsend.css")).unwrap();
    for text in [&html, &css] {
        assert!(!text.contains("http:") && !text.contains("https:") && !text.contains("//cdn"));
        assert!(!text.contains("@import") && !text.contains("url("));
    }
    let (head, _) = get("/not.a.room");
    assert!(head.starts_with("http/1.1 404"), "{head}");
}

/// A secret file as an operator writes it (`chmod 600`), in `dir`.
fn secret_file(dir: &Path, secret: &str, mode: u32) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join("turn.secret");
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The join answer names the server's own STUN port at the host the client reached it by,
/// and a TURN server with a user name that expires after --turn-ttl and the HMAC of it; the
/// secret is in no answer and no log line.
#[test]
fn a_join_answer_carries_stun_and_turn_credentials_but_never_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "north-wind-secret-4711";
    let file = secret_file(dir.path(), secret, 0o600);
    let turn = "turn:relay.example.org:3478";
    let args = ["--stun", "127.0.0.1:0", "--turn", turn, "--turn-secret-file", &file];
    let server = Server::start(dir.path(), &[&args[..], &["--turn-ttl", "2h", "-v"]].concat());
    let stun_port: u16 = server
        .proc
        .stderr_lines()
        .iter()
        .find_map(|l| l.strip_prefix("answering STUN on udp://"))
        .map(|a| a.trim().parse::<SocketAddr>().unwrap().port())
        .expect("the STUN line");
    // By hand, as a browser behind a reverse proxy would come: its Host is the public name.
    let raw = "POST /ice-room HTTP/1.1\r\nHost: signal.example.org:8443\r\n\
               Connection: close\r\nContent-Length: 0\r\n\r\n";
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let (status, body) = server.request(raw.as_bytes());
    assert_eq!(status, 201, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let servers = answer["ice_servers"].as_array().expect("ice_servers");
    assert_eq!(servers.len(), 2, "{body}");
    assert_eq!(
        servers[0],
        serde_json::json!({"urls": [format!("stun:signal.example.org:{stun_port}")]})
    );
    assert_eq!(servers[1]["urls"], serde_json::json!([turn]));
    let user = servers[1]["username"].as_str().unwrap();
    let (expiry, tag) = user.split_once(':').unwrap();
    let expiry: u64 = expiry.parse().unwrap();
    let want = before.as_secs() + 2 * 3600;
    assert!((want..want + 5).contains(&expiry), "expiry {expiry}, want about {want}");
    assert!(!tag.is_empty() && !tag.contains("ice-room"), "the tag names no room: {user}");
    // The password is coturn's HMAC of the user name (checked against a known vector in
    // `signal::ice`'s unit tests; here against the same function, to tie the two together).
    let mac = dcsend::signal::ice::TurnSecret::from_file_text(secret).unwrap().password(user);
    assert_eq!(servers[1]["credential"], serde_json::json!(mac));
    // A second join gets its own user name.
    let (_, again) = server.request(raw.as_bytes());
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_ne!(again["ice_servers"][1]["username"].as_str().unwrap(), user);
    assert!(!body.contains(secret));
    server.proc.signal(nix::sys::signal::Signal::SIGTERM);
    let mut proc = server.proc;
    proc.expect_code(0, WAIT);
    let log = proc.stderr_text();
    assert!(log.contains("handing out TURN credentials"), "{log}");
    assert!(!log.contains(secret), "the secret is in the log:\n{log}");
}

/// An empty secret file is refused (exit 2); one that others can read is used with a warning.
#[test]
fn the_turn_secret_file_must_not_be_empty_and_should_be_private() {
    let dir = tempfile::tempdir().unwrap();
    let empty = secret_file(dir.path(), "", 0o600);
    let mut cmd = dcsend();
    cmd.args(["signal", "--listen", "127.0.0.1:0", "--turn", "turn:a:3478"]);
    cmd.args(["--turn-secret-file", &empty]);
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--turn-secret-file") && err.contains("empty"), "{err}");

    let shared = secret_file(dir.path(), "s3cret-value", 0o644);
    let turn = ["--turn", "turn:a:3478", "--turn-secret-file", &shared];
    let server = Server::start(dir.path(), &turn);
    let log = server.proc.stderr_text();
    assert!(log.contains("can be read by other users") && log.contains("chmod 600"), "{log}");
    assert!(!log.contains("s3cret-value"), "{log}");
    // --turn alone is a usage error: the credentials need the secret.
    let mut cmd = dcsend();
    cmd.args(["signal", "--listen", "127.0.0.1:0", "--turn", "turn:a:3478"]);
    assert_eq!(cmd.stdin(Stdio::null()).output().unwrap().status.code(), Some(2));
}
