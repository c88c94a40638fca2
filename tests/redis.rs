//! Two `dcsend signal --store redis://...` instances and one real `redis-server` on loopback,
//! with real dcsend peers: a balancer may send each request of a peer to either instance, or
//! each peer to its own instance, and the rooms behave as with one server. An instance killed
//! in the middle of a rendezvous does not end it: the peers' next requests reach the other
//! instance (the client retries idempotently). Redis going away gives 503 and one log line,
//! and the instances serve again when it is back.
//!
//! The balancer is a small round-robin HTTP proxy inside the test: request `i` goes to
//! instance `i % 2`, and a request to an instance that does not answer gets `502`, as from
//! nginx or HAProxy. Without redis-server the tests skip (`common::skip`), unless
//! `DCSEND_TEST_REQUIRE_REDIS=1`.

mod common;
mod redis_support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use redis_support::RedisServer;

/// redis-server, or a skip.
fn redis(dir: &Path) -> Option<RedisServer> {
    let server = RedisServer::start(dir);
    if server.is_none() {
        skip("REDIS", "redis-server is not installed (apt-get install redis-server)");
    }
    server
}

/// `dcsend signal --store URL EXTRA...`, once it printed its address.
fn instance(dir: &Path, redis: &RedisServer, extra: &[&str]) -> (Proc, SocketAddr) {
    let mut cmd = dcsend();
    cmd.args(["signal", "--listen", "127.0.0.1:0", "--store", &redis.url()]).args(extra);
    spawn_signal_server(dir, cmd)
}

fn base(addr: SocketAddr) -> String {
    format!("http://{addr}/")
}

/// One raw `METHOD PATH` request (`Connection: close`): the status and the body.
fn call(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    http_exchange(addr, raw.as_bytes(), false).expect("an HTTP answer")
}

/// Sends an 8 MiB file from a sender at `send_base` to a receiver that joins at the printed
/// URL rewritten by `for_receiver`; checks it arrived byte for byte.
fn transfer(dir: &Path, send_base: &str, for_receiver: impl Fn(&str) -> String) {
    let data = random_bytes(8 << 20, 20);
    let src = dir.join("payload.bin");
    std::fs::write(&src, &data).unwrap();
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let mut send = Proc::spawn("send", peer(&[src.to_str().unwrap()], send_base), dir);
    let url = for_receiver(&invite(&send));
    let mut recv = Proc::spawn("recv", peer(&["recv", "-o", out.to_str().unwrap()], &url), dir);
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    assert_eq!(files_in(&out), ["payload.bin"]);
    assert!(std::fs::read(out.join("payload.bin")).unwrap() == data, "the bytes differ");
}

fn an_8_mib_file_arrives_intact_when_requests_alternate_between_instances() {
    let dir = tempfile::tempdir().unwrap();
    let Some(redis) = redis(dir.path()) else { return };
    let (_one, a1) = instance(dir.path(), &redis, &[]);
    let (_two, a2) = instance(dir.path(), &redis, &[]);
    let lb = balancer::Balancer::start(vec![a1, a2]);
    transfer(dir.path(), &base(lb.addr), |url| url.to_owned());
    let served = lb.served();
    // Each peer's requests went to both (join, messages, reads, leave: a dozen or more).
    assert!(served.iter().all(|&n| n >= 6), "requests per instance: {served:?}");
}

fn an_8_mib_file_arrives_intact_when_each_peer_sticks_to_its_own_instance() {
    let dir = tempfile::tempdir().unwrap();
    let Some(redis) = redis(dir.path()) else { return };
    let (_one, a1) = instance(dir.path(), &redis, &[]);
    let (_two, a2) = instance(dir.path(), &redis, &[]);
    transfer(dir.path(), &base(a1), |url| url.replace(&a1.to_string(), &a2.to_string()));
}

fn a_third_peer_is_refused_by_either_instance() {
    let dir = tempfile::tempdir().unwrap();
    let Some(redis) = redis(dir.path()) else { return };
    // Both seats taken by hand, one through each instance; each speaks, so its seat is its
    // own, and the presence bound outlasts the test, so neither is taken for gone.
    let hold = ["--presence-timeout", "10m"];
    let (_one, a1) = instance(dir.path(), &redis, &hold);
    let (_two, a2) = instance(dir.path(), &redis, &hold);
    let room = "two-taken";
    for addr in [a1, a2] {
        let (status, body) = call(addr, "POST", &format!("/{room}"));
        assert_eq!(status, 201, "{body}");
        let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["peer"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(call(addr, "POST", &format!("/{room}/{token}")).0, 204);
    }
    for addr in [a1, a2] {
        let url = format!("{}{room}#some-code-12", base(addr));
        let mut third = Proc::spawn("third", peer(&["recv"], &url), dir.path());
        third.expect_code(3, WAIT);
        let err = third.stderr_text();
        assert!(err.contains(&format!("room {room} is full")), "{err}");
        assert_eq!(call(addr, "POST", &format!("/{room}")).0, 409);
    }
}

/// TURN credentials need no shared state: two instances with the same secret file, the
/// room's two seats taken through each, and both join answers carry a credential that is the
/// HMAC of its user name under the secret (what coturn checks; tests/turn.rs checks it
/// against coturn itself).
fn either_instance_hands_out_valid_turn_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let Some(redis) = redis(dir.path()) else { return };
    let secret = "one secret for every instance";
    let file = dir.path().join("turn.secret");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let turn =
        ["--turn", "turn:relay.example.org:3478", "--turn-secret-file", file.to_str().unwrap()];
    let (_one, a1) = instance(dir.path(), &redis, &turn);
    let (_two, a2) = instance(dir.path(), &redis, &turn);
    let mac = dcsend::signal::ice::TurnSecret::from_file_text(secret).unwrap();
    let mut users = Vec::new();
    for addr in [a1, a2] {
        let (status, body) = call(addr, "POST", "/shared-turn");
        assert_eq!(status, 201, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let entry = &v["ice_servers"][0];
        assert_eq!(entry["urls"][0], "turn:relay.example.org:3478", "{body}");
        let user = entry["username"].as_str().unwrap().to_owned();
        assert_eq!(entry["credential"], serde_json::json!(mac.password(&user)), "{body}");
        users.push(user);
    }
    assert_ne!(users[0], users[1], "each seat gets its own user name");
}

fn an_expired_room_is_refused_by_either_instance() {
    let dir = tempfile::tempdir().unwrap();
    let Some(redis) = redis(dir.path()) else { return };
    let (one, a1) = instance(dir.path(), &redis, &["--room-ttl", "1s"]);
    let (two, a2) = instance(dir.path(), &redis, &["--room-ttl", "1s"]);
    let (status, body) = call(a1, "POST", "/stale-room");
    assert_eq!(status, 201, "{body}");
    std::thread::sleep(Duration::from_millis(2500));
    for addr in [a2, a1] {
        let url = format!("{}stale-room#some-code-11", base(addr));
        let mut late = Proc::spawn("late", peer(&["recv"], &url), dir.path());
        late.expect_code(3, WAIT);
        let err = late.stderr_text();
        assert!(err.contains("room stale-room has expired"), "{err}");
    }
    // One of the two sweeps expired it (whichever ran first), and says so.
    let said = |p: &Proc| p.stderr_text().contains("room expired");
    assert!(said(&one) || said(&two));
}

fn an_instance_killed_mid_rendezvous_the_rendezvous_completes_through_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let Some(redis) = redis(dir.path()) else { return };
    let (mut one, a1) = instance(dir.path(), &redis, &[]);
    let (two, a2) = instance(dir.path(), &redis, &[]);
    let lb = balancer::Balancer::start(vec![a1, a2]);
    // Instance one dies when the first sealed message arrives: both peers have joined and
    // sent their PAKE messages, the hellos, offer and answer are still to come, and a long
    // poll may be open on it.
    lb.kill_on_first_sealed(one.child.id() as i32);
    transfer(dir.path(), &base(lb.addr), |url| url.to_owned());
    assert!(lb.killed(), "the instance was never killed");
    assert!(one.wait(WAIT).code().is_none(), "instance one was killed by a signal");
    let served = lb.served();
    assert!(served[1] >= 6, "the rest went to instance two: {served:?}");
    assert!(!two.stderr_text().contains("panicked"));
}

fn redis_down_gives_503_and_one_log_line_and_the_instance_serves_again_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut redis) = redis(dir.path()) else { return };
    let (server, addr) = instance(dir.path(), &redis, &[]);
    assert_eq!(call(addr, "POST", "/before").0, 201);
    redis.kill();
    for i in 0..5 {
        let (status, body) = call(addr, "POST", &format!("/down-{i}"));
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("room store is unavailable"), "{body}");
    }
    // Nothing else stops: the health check (the instance is alive; Redis is not its health).
    assert_eq!(call(addr, "GET", "/healthz"), (200, "ok\n".to_owned()));
    let lines =
        |p: &Proc| p.stderr_lines().iter().filter(|l| l.contains("Redis is unreachable")).count();
    assert_eq!(lines(&server), 1, "one line, not one per request:\n{}", server.stderr_text());
    redis.restart();
    let mut status = 0;
    wait_until(WAIT, "a join after Redis came back", || {
        status = call(addr, "POST", "/after").0;
        status == 201
    });
    wait_until(WAIT, "the 'answers again' line", || {
        server.stderr_text().contains("Redis answers again")
    });
    assert!(!server.stderr_text().contains("panicked"), "{}", server.stderr_text());
}

fn a_stopped_redis_gives_503_within_the_command_bound_and_the_instance_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let Some(redis) = redis(dir.path()) else { return };
    let (server, addr) = instance(dir.path(), &redis, &[]);
    assert_eq!(call(addr, "POST", "/first").0, 201);
    redis.pause();
    let started = Instant::now();
    let (status, body) = call(addr, "POST", "/second");
    let took = started.elapsed();
    redis.resume();
    assert_eq!(status, 503, "{body}");
    // Bounded by the per-command timeout (2 s), not by Redis.
    assert!(took < Duration::from_secs(8), "a request waited {took:?} on a stopped Redis");
    wait_until(WAIT, "a join after Redis continued", || call(addr, "POST", "/third").0 == 201);
    assert!(!server.stderr_text().contains("panicked"));
}

/// A round-robin HTTP balancer: request `i` goes to backend `i % n`; a backend that does not
/// answer gets the client a `502`.
mod balancer {
    use super::*;

    use axum::extract::{Request, State};
    use axum::response::{IntoResponse, Response};
    use bytes::Bytes;

    pub struct Balancer {
        pub addr: SocketAddr,
        ctx: Ctx,
        _runtime: tokio::runtime::Runtime,
    }

    #[derive(Clone)]
    struct Ctx {
        backends: Arc<Vec<SocketAddr>>,
        next: Arc<AtomicUsize>,
        served: Arc<Vec<AtomicUsize>>,
        http: reqwest::Client,
        /// A pid to SIGKILL when the first sealed message comes by (0: none; -1: done).
        kill: Arc<AtomicI32>,
    }

    impl Balancer {
        pub fn start(backends: Vec<SocketAddr>) -> Balancer {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let ctx = Ctx {
                served: Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect()),
                backends: Arc::new(backends),
                next: Arc::new(AtomicUsize::new(0)),
                http: reqwest::Client::new(),
                kill: Arc::new(AtomicI32::new(0)),
            };
            let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
            let addr = listener.local_addr().unwrap();
            let app = axum::Router::new().fallback(relay).with_state(ctx.clone());
            runtime.spawn(async move { axum::serve(listener, app).await });
            Balancer { addr, ctx, _runtime: runtime }
        }

        /// Requests answered by each backend.
        pub fn served(&self) -> Vec<usize> {
            self.ctx.served.iter().map(|n| n.load(Ordering::SeqCst)).collect()
        }

        pub fn kill_on_first_sealed(&self, pid: i32) {
            self.ctx.kill.store(pid, Ordering::SeqCst);
        }

        pub fn killed(&self) -> bool {
            self.ctx.kill.load(Ordering::SeqCst) == -1
        }
    }

    async fn relay(State(ctx): State<Ctx>, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
        if body.windows(8).any(|w| w == b"\"sealed\"") {
            let pid = ctx.kill.load(Ordering::SeqCst);
            if pid > 0
                && ctx.kill.compare_exchange(pid, -1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
            {
                let pid = nix::unistd::Pid::from_raw(pid);
                nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
            }
        }
        let i = ctx.next.fetch_add(1, Ordering::SeqCst) % ctx.backends.len();
        let url = format!("http://{}{}", ctx.backends[i], parts.uri);
        let mut headers = parts.headers;
        for hop in ["host", "content-length", "connection", "transfer-encoding"] {
            headers.remove(hop);
        }
        let upstream = ctx.http.request(parts.method, url).headers(headers).body(body).send().await;
        match upstream {
            Ok(r) => {
                ctx.served[i].fetch_add(1, Ordering::SeqCst);
                let status = r.status();
                let headers = r.headers().clone();
                let bytes = r.bytes().await.unwrap_or_default();
                let mut response = (status, bytes).into_response();
                for (name, value) in &headers {
                    if name != "content-length" && name != "transfer-encoding" {
                        response.headers_mut().insert(name, value.clone());
                    }
                }
                response
            }
            Err(e) => {
                (axum::http::StatusCode::BAD_GATEWAY, Bytes::from(e.to_string())).into_response()
            }
        }
    }
}

crate::skippable_tests!(
    either_instance_hands_out_valid_turn_credentials,
    an_8_mib_file_arrives_intact_when_requests_alternate_between_instances,
    an_8_mib_file_arrives_intact_when_each_peer_sticks_to_its_own_instance,
    a_third_peer_is_refused_by_either_instance,
    an_expired_room_is_refused_by_either_instance,
    an_instance_killed_mid_rendezvous_the_rendezvous_completes_through_the_other,
    redis_down_gives_503_and_one_log_line_and_the_instance_serves_again_when_it_is_back,
    a_stopped_redis_gives_503_within_the_command_bound_and_the_instance_recovers,
);
