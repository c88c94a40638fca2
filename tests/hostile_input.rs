//! Property tests for every parser that reads what another party sent: the copy-paste token
//! (Pion's form and the compact one), the control messages of the wire protocol, the `--peer`
//! URL, the signaling envelopes and sealed boxes, the server's room table, and the server's
//! HTTP parsing over a real socket.
//!
//! `cargo fuzz` needs a nightly toolchain, which the build machines do not have, so these run
//! under proptest instead, in `cargo test`: each property gets its case budget (256 by default;
//! `PROPTEST_CASES=N` raises it), and a failure prints the shrunk input that reproduces it.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::http_exchange;

use dcsend::signal::codec::{self, SdpKind, SessionDesc};
use dcsend::signal::compact;
use dcsend::signal::rooms::{Limits, REMEMBER_GONE, Rooms, Take};
use dcsend::signal::seal::{Envelope, Handshake, Side};
use dcsend::signal::url::PeerUrl;
use dcsend::transfer::wire::{Control, MAX_CONTROL_BYTES, Role};
use proptest::prelude::*;

const SDP: &str = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n";

proptest! {
    #[test]
    fn token_decoder_never_panics(text in any::<String>()) {
        let _ = codec::decode(&text, SdpKind::Offer);
    }

    #[test]
    fn token_decoder_never_panics_on_base64_of_near_json(
        kind in prop::sample::select(vec!["offer", "answer", "pranswer", "", "\u{0}"]),
        sdp in any::<String>(),
        junk in any::<String>(),
    ) {
        let json = format!(r#"{{"type":"{kind}","sdp":{},"x":{:?}}}"#, serde_json::Value::from(sdp), junk);
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(json);
        let _ = codec::decode(&token, SdpKind::Answer);
    }

    #[test]
    fn tokens_round_trip(extra in "(a=[a-z-]{1,12}:[ -~]{0,40}\r\n){0,8}") {
        let desc = SessionDesc { kind: SdpKind::Answer, sdp: format!("{SDP}{extra}") };
        prop_assert_eq!(codec::decode(&codec::encode(&desc), SdpKind::Answer).unwrap(), desc);
    }

    #[test]
    fn control_decoder_never_panics(text in any::<String>()) {
        let _ = Control::decode(&text);
    }

    #[test]
    fn control_decoder_never_panics_on_near_messages(
        tag in prop::sample::select(
            vec!["hello", "file", "have", "skip", "eof", "ack", "done", "abort", "x"]
        ),
        fields in prop::collection::vec(
            (prop_oneof![
                "[a-z0-9]{1,8}",
                // The fields the messages really have, so typed checks are reached.
                prop::sample::select(vec!["v", "role", "app", "resume", "name", "size", "bytes",
                    "sha256", "ok", "reason"]).prop_map(String::from),
            ], prop_oneof![
                any::<i64>().prop_map(serde_json::Value::from),
                any::<u64>().prop_map(serde_json::Value::from),
                any::<f64>().prop_map(|f| serde_json::json!(f)),
                any::<String>().prop_map(serde_json::Value::from),
                any::<bool>().prop_map(serde_json::Value::from),
                Just(serde_json::Value::Null),
            ]),
            0..6,
        ),
    ) {
        let mut obj = serde_json::Map::new();
        obj.insert("t".into(), tag.into());
        for (k, v) in fields {
            obj.insert(k, v);
        }
        let text = serde_json::Value::Object(obj).to_string();
        // Whatever gets through carries a well-formed digest.
        if let Ok(Control::Eof { sha256, .. } | Control::Have { sha256, .. }) = Control::decode(&text) {
            prop_assert!(
                sha256.len() == 64 && sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{text}"
            );
        }
    }

    #[test]
    fn control_messages_round_trip(
        name in prop::option::of(any::<String>()),
        size in prop::option::of(any::<u64>()),
        bytes in any::<u64>(),
        ok in any::<bool>(),
        reason in ".{0,200}",
        sha in "[0-9a-f]{64}",
        resume in any::<bool>(),
    ) {
        for msg in [
            Control::Hello { v: 1, role: Role::Send, app: "dcsend/0".into(), resume, threshold: None, tree: None, files: None, bytes: None, zstd: false },
            Control::File { name: name.clone(), size, resume, exec: false, mtime: None, zstd: false },
            Control::Have { bytes, sha256: sha.clone() },
            Control::Skip { bytes },
            Control::Eof { bytes, sha256: sha.clone() },
            Control::Ack { bytes, ok },
            Control::Done,
            Control::Abort { reason: reason.clone() },
        ] {
            let text = msg.encode();
            if text.len() <= MAX_CONTROL_BYTES {
                prop_assert_eq!(Control::decode(&text).unwrap(), msg);
            }
        }
    }

    #[test]
    fn peer_url_parser_never_panics(text in any::<String>()) {
        let _ = PeerUrl::parse(&text);
    }

    #[test]
    fn peer_urls_round_trip(
        // Not `xn--...`: that prefix marks a punycode label, which must then decode (the URL
        // parser rightly refuses `xn--` alone or `xn--z-`).
        host in "[a-z][a-z0-9-]{0,20}".prop_filter("an IDNA ACE label", |h| !h.starts_with("xn--")),
        port in 1u16..,
        prefix in "(/[a-z0-9]{1,8}){0,2}",
        room in "[A-Za-z0-9_-]{1,64}",
        secret in "[a-z]{1,10}-[a-z]{1,10}-[0-9]{2}",
    ) {
        let text = format!("https://{host}:{port}{prefix}/{room}#{secret}");
        let url = PeerUrl::parse(&text).unwrap();
        prop_assert_eq!(url.room.as_deref(), Some(room.as_str()));
        prop_assert_eq!(url.secret.as_deref(), Some(secret.as_str()));
        prop_assert_eq!(PeerUrl::parse(&url.to_string()).unwrap(), url.clone());
        // The secret is never part of a request URL.
        prop_assert!(!url.endpoint(&["tok"]).as_str().contains(&secret));
    }

    #[test]
    fn envelopes_and_sealed_boxes_never_panic(body in any::<Vec<u8>>(), text in any::<String>()) {
        let _ = Envelope::from_json(&body);
        let (a, _) = Handshake::start("s", "r", Side::A);
        let (_, b_msg) = Handshake::start("s", "r", Side::B);
        let Envelope::Pake { msg } = b_msg else { unreachable!() };
        let mut sealer = a.finish(&msg).unwrap();
        prop_assert!(sealer.open(&text).is_err());
        let (a, _) = Handshake::start("s", "r", Side::A);
        let _ = a.finish(&text);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Join(u8, u8),
    Post(u8),
    Take(u8),
    Leave(u8),
    Wait(u16),
    Sweep,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6, 0u8..3).prop_map(|(r, c)| Op::Join(r, c)),
        (0u8..8).prop_map(Op::Post),
        (0u8..8).prop_map(Op::Take),
        (0u8..8).prop_map(Op::Leave),
        (0u16..2000).prop_map(Op::Wait),
        Just(Op::Sweep),
    ]
}

proptest! {
    /// Any sequence of requests keeps the table within its limits, never panics, and leaves
    /// nothing behind once everything has expired and been forgotten.
    #[test]
    fn room_table_stays_within_its_limits(ops in prop::collection::vec(op(), 1..200)) {
        let limits = Limits {
            max_rooms: 4,
            max_rooms_per_client: 3,
            idle_ttl: Duration::from_secs(1),
            claim_timeout: Duration::from_millis(500),
            max_queued: 3,
            ..Limits::default()
        };
        let mut rooms = Rooms::new(limits);
        let mut now = Instant::now();
        let mut peers: Vec<(String, String)> = Vec::new();
        // The last token given each seat: (room, side) -> token.
        let mut holders: std::collections::HashMap<(u8, bool), String> = Default::default();
        let client = |c: u8| std::net::IpAddr::from([10, 0, 0, c]);
        let peer = |peers: &Vec<(String, String)>, p: u8| peers.get(p as usize).cloned();
        for op in ops {
            match op {
                Op::Join(r, c) => {
                    let room = format!("room{r}");
                    if let Ok(j) = rooms.join(&room, client(c), now) {
                        // Never a third peer: a seat is given again only once its last holder
                        // is out (it left, stayed silent past the claim bound, or the room ended).
                        if let Some(prev) = holders.insert((r, j.side == Side::A), j.peer.clone()) {
                            prop_assert!(rooms.take(&room, &prev, now).is_err(), "two holders of {:?}", j.side);
                        }
                        peers.push((room, j.peer));
                    }
                }
                Op::Post(p) => {
                    if let Some((room, token)) = peer(&peers, p) {
                        let _ = rooms.post(&room, &token, bytes::Bytes::from_static(b"m"), now);
                    }
                }
                Op::Take(p) => {
                    if let Some((room, token)) = peer(&peers, p) {
                        let _ = rooms.take(&room, &token, now);
                    }
                }
                Op::Leave(p) => {
                    if let Some((room, token)) = peer(&peers, p) {
                        let _ = rooms.leave(&room, &token, now);
                    }
                }
                Op::Wait(ms) => now += Duration::from_millis(ms.into()),
                Op::Sweep => {
                    rooms.sweep(now);
                }
            }
            // No inbox grows past its bound.
            for (room, token) in &peers {
                let mut queued = 0;
                while let Ok(Take::Message { .. }) = rooms.take(room, token, now) {
                    queued += 1;
                }
                prop_assert!(queued <= limits.max_queued);
            }
        }
        let later = now + REMEMBER_GONE + Duration::from_secs(10);
        rooms.sweep(later);
        prop_assert!(rooms.is_empty());
    }
}

/// A `dcsend signal` server in this process, on an OS-chosen loopback port.
struct InProcessServer {
    addr: SocketAddr,
    stop: tokio_util::sync::CancellationToken,
    runtime: Option<tokio::runtime::Runtime>,
}

impl InProcessServer {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let conns = dcsend::signal::server::ConnLimits::default();
        runtime.spawn(dcsend::signal::server::serve(
            listener,
            Limits::default(),
            conns,
            stop.clone(),
        ));
        Self { addr, stop, runtime: Some(runtime) }
    }

    /// The status of the answer to `raw` (see [`http_exchange`]).
    fn send(&self, raw: &[u8], half_close: bool) -> Option<u16> {
        http_exchange(self.addr, raw, half_close).map(|(status, _)| status)
    }

    fn healthy(&self) -> bool {
        let ok = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        self.send(ok, false) == Some(200)
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn request_line() -> impl Strategy<Value = Vec<u8>> {
    let method = prop::sample::select(vec!["GET", "POST", "DELETE", "PUT", "HEAD", "X", ""]);
    let path = prop_oneof![
        Just("/healthz".to_owned()),
        "/[a-z0-9._%-]{0,70}".prop_map(|p| p),
        "/[a-z0-9]{1,8}/[a-f0-9]{0,40}(\\?wait=[0-9a-z-]{0,5})?".prop_map(|p| p),
        any::<String>().prop_map(|p| format!("/{p}")),
    ];
    let headers = prop::collection::vec("[A-Za-z-]{1,20}: [ -~]{0,60}", 0..5);
    let body = prop::collection::vec(any::<u8>(), 0..300);
    (method, path, headers, body, any::<bool>()).prop_map(|(m, p, h, b, lie)| {
        // Sometimes a Content-Length that lies about the body.
        let len = if lie { b.len() + 17 } else { b.len() };
        let mut raw =
            format!("{m} {p} HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n").into_bytes();
        for line in h {
            raw.extend_from_slice(line.as_bytes());
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(&b);
        raw
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Whatever bytes arrive, the server answers with a 2xx or 4xx status (or closes), never a
    /// 5xx, and the next client is served.
    #[test]
    fn server_answers_arbitrary_requests_with_4xx_and_keeps_serving(
        raw in prop_oneof![request_line(), prop::collection::vec(any::<u8>(), 0..2048)],
    ) {
        thread_local! {
            static SERVER: InProcessServer = InProcessServer::start();
        }
        SERVER.with(|server| {
            if let Some(status) = server.send(&raw, true) {
                prop_assert!((200..500).contains(&status), "status {status} for {raw:?}");
            }
            prop_assert!(server.healthy());
            Ok(())
        })?;
    }
}

/// A flood of requests from one client (many rooms, many bad requests, on many connections at
/// once) does not stop the server from serving another.
#[test]
fn a_flood_from_one_client_does_not_starve_another() {
    let server = InProcessServer::start();
    let addr = server.addr;
    let flood: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..150 {
                    let req = match i % 3 {
                        0 => format!("POST /flood-{t}-{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                        1 => "GARBAGE\r\n\r\n".to_owned(),
                        _ => format!("GET /flood-{t}-0/nope?wait=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                    };
                    http_exchange(addr, req.as_bytes(), false);
                }
            })
        })
        .collect();
    // Meanwhile another client keeps getting answers, each well within a second.
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    while flood.iter().any(|f| !f.is_finished()) && started.elapsed() < Duration::from_secs(60) {
        let t = Instant::now();
        assert!(server.healthy());
        slowest = slowest.max(t.elapsed());
    }
    for f in flood {
        f.join().unwrap();
    }
    assert!(slowest < Duration::from_secs(1), "slowest answer during the flood: {slowest:?}");
    assert!(server.healthy());
}

proptest! {
    /// The compact form (`DC1` + base32) behind the same entry point: any body, any case.
    #[test]
    fn compact_token_decoder_never_panics(body in "[A-Za-z2-7 \r\n]{0,400}") {
        let _ = codec::decode(&format!("DC1{body}"), SdpKind::Offer);
    }

    /// Any description with the fields the compact form carries survives it: ICE credentials,
    /// fingerprint, role, and 0-8 candidates of any type, address family and priority.
    #[test]
    fn compact_tokens_round_trip(
        ufrag in "[A-Za-z0-9+/]{4,32}",
        pwd in "[A-Za-z0-9+/]{22,64}",
        digest in prop::collection::vec(any::<u8>(), 32),
        answer in any::<bool>(),
        candidates in prop::collection::vec(
            (any::<std::net::IpAddr>(), any::<u16>(), any::<u32>(), 0usize..4), 0..8),
    ) {
        let kind = if answer { SdpKind::Answer } else { SdpKind::Offer };
        let setup = if answer { "active" } else { "actpass" };
        let fingerprint: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
        let mut sdp = format!(
            "{SDP}a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\na=fingerprint:sha-256 {}\r\n\
             a=setup:{setup}\r\na=mid:0\r\na=sctp-port:5000\r\n",
            fingerprint.join(":")
        );
        let types = ["host", "srflx", "prflx", "relay"];
        let mut want = Vec::new();
        for (i, (ip, port, priority, t)) in candidates.iter().enumerate() {
            let line = format!("{priority} {ip} {port} typ {}", types[*t]);
            sdp.push_str(&format!("a=candidate:{i} 1 udp {line}\r\n"));
            want.push(line);
        }
        let desc = SessionDesc { kind, sdp };
        let token = compact::pack(&desc).unwrap();
        let back = codec::decode(&token, kind).unwrap();
        let got: Vec<String> = back
            .sdp
            .lines()
            .filter_map(|l| l.strip_prefix("a=candidate:"))
            .filter(|l| l.split_whitespace().nth(1) == Some("1"))
            .map(|l| l.split_whitespace().skip(3).take(5).collect::<Vec<_>>().join(" "))
            .collect();
        prop_assert_eq!(got, want);
        for attr in ["ice-ufrag", "ice-pwd", "fingerprint", "setup"] {
            prop_assert_eq!(codec::attribute(&back.sdp, attr), codec::attribute(&desc.sdp, attr));
        }
        prop_assert_eq!(compact::pack(&back).unwrap(), token);
    }
}
