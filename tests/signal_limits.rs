//! `dcsend signal` against one host that tries to take it down for everyone, as real processes
//! on loopback. Every client of these tests picks its source address in 127.0.0.0/8 (Linux
//! routes all of it to `lo`), so one test process plays many hosts and networks:
//!
//! - rooms: 54 addresses of one /24 and 20 more networks try to fill the room table. Since
//!   limits count per network and the last tenth of the table is kept for networks holding
//!   little, a newcomer can still open a room, and a real transfer goes through. Catches a
//!   regression to per-address limits (54 addresses x 5 rooms fill 100 rooms) or a lost
//!   reserve. Rooms nobody spoke in close after `--claim-timeout`, not the room TTL, and
//!   their ids are not remembered as ended.
//! - connections: under a lowered file-descriptor limit (`RLIMIT_NOFILE` 200, set in the child
//!   before exec), hundreds of idle connections and slowloris clients (a header byte every
//!   300 ms) do not make `accept` fail: `/healthz` answers, the server closes them within its
//!   header/idle timeouts, a long poll longer than the idle timeout is not cut, and a real
//!   transfer through the same server succeeds while the flood is kept up.
//! - squatting: a client that takes the second seat of a room and never speaks is removed
//!   within `--claim-timeout`; the real receiver, told to retry, joins; the transfer succeeds;
//!   the waiting sender printed what happened.
//!
//! Every wait is bounded; every child is killed by its handle on drop; every thread stops by a
//! flag or a bounded socket timeout.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

fn v4(a: u8, b: u8, c: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, a, b, c))
}

/// `POST /ROOM` from `src`; the status (0 when the server closed without one).
fn join_from(src: IpAddr, addr: SocketAddr, room: &str) -> (u16, String) {
    let raw = format!(
        "POST /{room} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    http_exchange_from(src, addr, raw.as_bytes()).unwrap_or((0, String::new()))
}

fn get_from(src: IpAddr, addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    http_exchange_from(src, addr, raw.as_bytes())
}

/// A 1 MiB file from a real sender to a real receiver through the server at `addr` (both
/// from 127.0.0.1), the sender opening the room. Panics unless both exit 0 with the bytes
/// intact.
fn transfer_through(addr: SocketAddr, dir: &Path, seed: u64) {
    let data = random_bytes(1 << 20, seed);
    let src = dir.join(format!("payload-{seed}.bin"));
    std::fs::write(&src, &data).unwrap();
    let out = dir.join(format!("out-{seed}"));
    std::fs::create_dir(&out).unwrap();
    let mut send = dcsend();
    send.arg(&src).args(LOOPBACK).args(["--peer", &format!("http://{addr}/")]);
    let mut send = Proc::spawn("send", send, dir);
    let url = invite(&send);
    let mut recv = dcsend();
    recv.args(["recv", "-o"]).arg(&out).args(LOOPBACK).args(["--peer", &url]);
    let mut recv = Proc::spawn("recv", recv, dir);
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    let got = std::fs::read(out.join(src.file_name().unwrap())).unwrap();
    assert!(got == data, "the received file differs");
}

#[test]
fn many_addresses_and_networks_cannot_fill_the_rooms_for_everyone() {
    let dir = tempfile::tempdir().unwrap();
    // The default --claim-timeout (10 s) outlasts the flood even on a slow machine.
    let (_server, addr) =
        signal_server(dir.path(), &["--max-rooms", "100", "--max-rooms-per-client", "5"]);
    // The attack as reported: 127.0.2.2-55 (one /24), five rooms each; then 20 more networks.
    let mut opened = 0;
    let mut hosts: Vec<IpAddr> = (2..=55).map(|h| v4(0, 2, h)).collect();
    hosts.extend((10..30).map(|n| v4(0, n, 1)));
    for (i, &host) in hosts.iter().enumerate() {
        for k in 0..5 {
            let (status, body) = join_from(host, addr, &format!("flood-{i}-{k}"));
            match status {
                201 => opened += 1,
                429 | 503 => {}
                _ => panic!("{host}: {status} {body}"),
            }
        }
    }
    // 5 for 127.0.2.0/24, 5 for each of 17 more networks (90 in all: the reserve starts), then
    // one each for the 3 networks left that held none.
    assert_eq!(opened, 93, "rooms the flood opened");
    let (status, body) = join_from(v4(0, 2, 99), addr, "one-more");
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("127.0.2.0/24"), "the refusal names the network: {body}");
    // A newcomer from another network still gets a room, and a real transfer goes through.
    assert_eq!(join_from(v4(0, 1, 1), addr, "newcomer").0, 201);
    transfer_through(addr, dir.path(), 1);
}

#[test]
fn a_room_nobody_spoke_in_closes_after_the_claim_timeout_not_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) =
        signal_server(dir.path(), &["--max-rooms-per-client", "1", "--claim-timeout", "1s"]);
    let squatter = v4(0, 2, 2);
    assert_eq!(join_from(squatter, addr, "unused").0, 201);
    assert_eq!(join_from(squatter, addr, "second").0, 429, "one room per network");
    let opened = Instant::now();
    // Nobody spoke in it: it closes after the claim bound (1 s, swept every 250 ms), not the
    // 10-minute TTL, and its network may open a room again.
    wait_until(WAIT, "the unused room to close", || join_from(squatter, addr, "second").0 == 201);
    let took = opened.elapsed();
    assert!(took < Duration::from_secs(4), "closed after {took:?}");
    // Its id is not remembered as ended: nothing happened in it.
    assert_eq!(join_from(v4(0, 1, 1), addr, "unused").0, 201);
    assert!(server.stderr_text().contains("freed a seat"), "{}", server.stderr_text());
}

/// `dcsend signal` with `RLIMIT_NOFILE` (soft and hard) at `fds`, so raising the soft limit
/// at start gains nothing.
fn server_with_fd_limit(dir: &Path, fds: u64, extra: &[&str]) -> (Proc, SocketAddr) {
    let mut cmd = dcsend();
    cmd.args(["signal", "--listen", "127.0.0.1:0"]).args(extra);
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, fds, fds)
                .map_err(std::io::Error::from)
        });
    }
    spawn_signal_server(dir, cmd)
}

/// Lets this test process hold a few hundred sockets.
fn raise_own_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(soft >= 1024, "this test needs 1024 descriptors, has {soft}");
}

/// Opens `per_net` idle connections from each of `nets` networks (127.0.NET.x), sending
/// nothing.
fn idle_flood(addr: SocketAddr, nets: std::ops::Range<u8>, per_net: u8) -> Vec<TcpStream> {
    let mut socks = Vec::new();
    for net in nets {
        for host in 1..=per_net {
            socks.push(connect_from(v4(0, net, host), addr));
        }
    }
    socks
}

/// Waits until the server closed `s` (EOF or reset), at most `limit`; returns how long that
/// took, or `None` when it stayed open. Reads and discards whatever the server sent first.
fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 512];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None;
            }
            Err(_) => return Some(started.elapsed()),
        }
    }
}

/// Slowloris: a request head written one byte every 300 ms, never finished, from `src`.
/// Returns when the server closed the connection (the time from connecting), or `None` when
/// `limit` passed first.
fn slowloris(src: IpAddr, addr: SocketAddr, limit: Duration) -> Option<Duration> {
    let mut s = connect_from(src, addr);
    let started = Instant::now();
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    let mut bytes = head.iter().copied().chain(std::iter::repeat(b'z'));
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut buf = [0u8; 512];
    while started.elapsed() < limit {
        if s.write_all(&[bytes.next().unwrap()]).is_err() {
            return Some(started.elapsed());
        }
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

const TIMEOUTS: [&str; 4] = ["--header-timeout", "2s", "--idle-timeout", "2s"];

#[test]
fn idle_and_slow_connections_under_a_low_fd_limit_are_closed_and_healthz_answers() {
    raise_own_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let mut extra = vec!["--max-connections-per-client", "32"];
    extra.extend(TIMEOUTS);
    let (server, addr) = server_with_fd_limit(dir.path(), 200, &extra);
    // The default --max-connections (4096) cannot fit 200 descriptors: lowered, and said so.
    wait_until(WAIT, "the warning about the descriptor limit", || {
        server.stderr_text().contains("does not fit the file-descriptor limit; using 136")
    });
    // 30 slowloris clients from one network, 3 networks of 100 idle connections: 330, far
    // more than the 200 descriptors the server has.
    let slow: Vec<_> =
        (1..=30).map(|h| std::thread::spawn(move || slowloris(v4(0, 80, h), addr, WAIT))).collect();
    let mut idle = idle_flood(addr, 50..53, 100);
    let flooded = Instant::now();
    // The server still answers, from another network, at once.
    let (status, body) = get_from(v4(0, 1, 1), addr, "/healthz").expect("an answer to /healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    // A long poll longer than the idle timeout is a request in flight, not idleness.
    let (status, body) = join_from(v4(0, 1, 2), addr, "polling");
    assert_eq!(status, 201, "{body}");
    let token = body.split("\"peer\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let call = |raw: String| http_exchange_from(v4(0, 1, 2), addr, raw.as_bytes()).unwrap().0;
    let post = format!(
        "POST /polling/{token} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Length: 2\r\n\r\n{{}}"
    );
    assert_eq!(call(post), 204);
    let asked = Instant::now();
    let poll = format!(
        "GET /polling/{token}?wait=4 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(call(poll), 204, "the long poll was cut");
    assert!(asked.elapsed() >= Duration::from_secs(3), "answered after {:?}", asked.elapsed());
    // Every idle connection is closed within the timeouts (2 s) and some slack; those over the
    // limits at once.
    let bound = Duration::from_secs(6);
    for (i, s) in idle.iter_mut().enumerate() {
        let left = bound.saturating_sub(flooded.elapsed()) + Duration::from_millis(1);
        assert!(closed_within(s, left).is_some(), "idle connection {i} still open after {bound:?}");
    }
    for (i, t) in slow.into_iter().enumerate() {
        let took = t.join().unwrap();
        assert!(
            took.is_some_and(|d| d < bound),
            "slowloris {i}: server closed it after {took:?} (bound {bound:?})"
        );
    }
    let log = server.stderr_text();
    assert!(!log.contains("accept failed"), "accept failed:\n{log}");
    assert!(log.contains("refusing connections"), "{log}");
}

#[test]
fn a_transfer_succeeds_while_a_flood_of_idle_connections_is_kept_up() {
    raise_own_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let mut extra = vec!["--max-connections-per-client", "32"];
    extra.extend(TIMEOUTS);
    let (server, addr) = server_with_fd_limit(dir.path(), 200, &extra);
    // An attacker that reconnects as soon as the server closes: 3 networks, 100 connections
    // each, topped up every 250 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut open: Vec<(IpAddr, TcpStream)> = Vec::new();
            let mut made = 0usize;
            while !stop.load(Ordering::Relaxed) {
                open.retain(|(_, s)| {
                    s.set_nonblocking(true).unwrap();
                    let mut b = [0u8; 256];
                    matches!(s.peek(&mut b), Err(e) if e.kind() == ErrorKind::WouldBlock)
                });
                for net in 50..53 {
                    for host in 1..=100 {
                        let src = v4(0, net, host);
                        if !open.iter().any(|(a, _)| *a == src) {
                            open.push((src, connect_from(src, addr)));
                            made += 1;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            made
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    transfer_through(addr, dir.path(), 2);
    let (status, _) = get_from(v4(0, 1, 1), addr, "/healthz").expect("an answer to /healthz");
    assert_eq!(status, 200);
    stop.store(true, Ordering::Relaxed);
    let made = flooder.join().unwrap();
    assert!(made >= 300, "the flood opened only {made} connections");
    let log = server.stderr_text();
    assert!(log.contains("refusing connections"), "the flood never reached a limit:\n{log}");
    assert!(!log.contains("accept failed"), "accept failed:\n{log}");
}

/// A sender opens a room, a client (curl, say) takes its second seat and stays silent.
fn sender_and_squatter(dir: &Path, extra: &[&str]) -> (Proc, Proc, SocketAddr, String, String) {
    let (server, addr) = signal_server(dir, extra);
    let src = dir.join("payload.bin");
    std::fs::write(&src, random_bytes(1 << 20, 7)).unwrap();
    let mut send = dcsend();
    send.arg(&src).args(LOOPBACK).args(["--peer", &format!("http://{addr}/"), "-v"]);
    let send = Proc::spawn("send", send, dir);
    let url = invite(&send);
    let room = url.rsplit('/').next().unwrap().split('#').next().unwrap().to_owned();
    let (status, body) = join_from(v4(0, 0, 1), addr, &room);
    assert_eq!(status, 201, "{body}");
    assert!(body.contains("\"side\":\"b\""), "{body}");
    let squatter = body.split("\"peer\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    (server, send, addr, url, format!("/{room}/{squatter}"))
}

#[test]
fn a_squatter_in_the_second_seat_is_removed_and_the_real_receiver_gets_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut send, addr, url, squatter) =
        sender_and_squatter(dir.path(), &["--claim-timeout", "1s"]);
    let seated = Instant::now();
    // The real receiver comes while the squatter holds the seat: it is told to come back.
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut recv = dcsend();
    recv.args(["recv", "-o"]).arg(&out).args(LOOPBACK).args(["--peer", &url]);
    let mut recv = Proc::spawn("recv", recv, dir.path());
    // The squatter loses its seat within the bound (1 s, swept every 250 ms).
    wait_until(WAIT, "the squatter's seat to be freed", || {
        let raw =
            format!("GET {squatter}?wait=0 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        http_exchange_from(v4(0, 0, 1), addr, raw.as_bytes()).is_some_and(|(s, _)| s == 404)
    });
    assert!(seated.elapsed() < Duration::from_secs(4), "freed after {:?}", seated.elapsed());
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    assert!(
        std::fs::read(out.join("payload.bin")).unwrap() == random_bytes(1 << 20, 7),
        "the received file differs"
    );
    let said = send.stderr_text();
    assert!(said.contains("dcsend: a client took the other seat of room"), "{said}");
    assert!(said.contains("sent no PAKE message within 1s"), "{said}");
    let heard = recv.stderr_text();
    assert!(heard.contains("full for now") && heard.contains("trying again in"), "{heard}");
    assert!(server.stderr_text().contains("freed a seat"), "{}", server.stderr_text());
}

#[test]
fn after_a_squatter_the_join_timeout_says_what_came() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = signal_server(dir.path(), &["--claim-timeout", "1s"]);
    let mut send = dcsend();
    send.args(["recv"]).args(LOOPBACK).args(["--peer", &format!("http://{addr}/")]);
    send.args(["--join-timeout", "4s"]);
    let mut waiting = Proc::spawn("waiting", send, dir.path());
    let url = invite(&waiting);
    let room = url.rsplit('/').next().unwrap().split('#').next().unwrap().to_owned();
    assert_eq!(join_from(v4(0, 0, 1), addr, &room).0, 201);
    waiting.expect_code(3, WAIT);
    let err = waiting.stderr_text();
    assert!(err.contains("no peer with the secret joined room"), "{err}");
    assert!(err.contains("removed 1 client(s) that took the other seat"), "{err}");
    drop(server);
}

#[test]
fn bad_limits_are_usage_errors_that_name_the_flag() {
    for (args, needle) in [
        (&["--max-connections", "0"][..], "--max-connections"),
        (&["--max-connections-per-client", "0"], "--max-connections-per-client"),
        (&["--claim-timeout", "0s"], "--claim-timeout"),
        (&["--header-timeout", "1ms"], "--header-timeout"),
        (&["--idle-timeout", "soon"], "--idle-timeout"),
        (&["--client-prefix-v4", "33"], "--client-prefix-v4"),
        (&["--client-prefix-v6", "129"], "--client-prefix-v6"),
    ] {
        let out = dcsend().args(["signal", "--listen", "127.0.0.1:0"]).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let out = dcsend().args(["signal", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--claim-timeout", "--max-connections-per-client", "--idle-timeout"] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}
