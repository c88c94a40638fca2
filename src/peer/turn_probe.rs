//! Why a TURN server gave no relayed candidate: one Allocate exchange of our own.
//!
//! webrtc 0.21 only logs a failed allocation (`TURN allocation failed ...: (error 401:
//! Unauthorized)` at error level) and finishes gathering without a relayed candidate; no event
//! or API reports it (`on_ice_candidate_error` is never fired). With `--relay-only` that leaves
//! dcsend with nothing to say but "no relayed candidate". So, only then, [`probe`] repeats the
//! allocation itself (RFC 8656 §7.1, long-term credentials of RFC 8489 §9.2) and reports what
//! the server answered: no answer, an error code (401 = the credentials were refused), or a
//! granted allocation (released again at once).
//!
//! The messages are built and parsed with the STUN/TURN crates of webrtc-rs itself
//! (`rtc-stun`, `rtc-turn`), the same code that webrtc's own allocation runs; MD5 and
//! HMAC-SHA1 come from the crypto provider webrtc re-exports.

use std::net::SocketAddr;
use std::time::Duration;

use rtc_stun::attributes::{ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
use rtc_stun::error_code::ErrorCodeAttribute;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, Getter, METHOD_ALLOCATE,
    METHOD_REFRESH, Message, MessageType, Setter, TransactionId,
};
use rtc_stun::textattrs::TextAttribute;
use rtc_turn::proto::PROTO_UDP;
use rtc_turn::proto::lifetime::Lifetime;
use rtc_turn::proto::reqtrans::RequestedTransport;
use tokio::net::UdpSocket;
use webrtc::peer_connection::crypto;

/// Retransmissions of one request, as offsets from its first send (RFC 8489 §6.2.1 uses
/// 500 ms doubling; a probe that a person waits for is kept shorter): given up at the last.
const RETRANSMIT_AT: [Duration; 4] = [
    Duration::from_millis(0),
    Duration::from_millis(250),
    Duration::from_millis(750),
    Duration::from_millis(1500),
];

/// What the TURN server answered to an Allocate with the configured credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No response within the probe's time.
    NoAnswer,
    /// An error response: 401 means the user name or password is wrong.
    Refused {
        /// The STUN error code (e.g. 401, 403, 486).
        code: u16,
        /// The server's reason phrase.
        reason: String,
    },
    /// The allocation was granted (and released again).
    Granted,
}

/// Long-term credentials (RFC 8489 §9.2).
pub struct Credentials<'a> {
    /// The user name.
    pub user: &'a str,
    /// The password (never logged or shown).
    pub password: &'a str,
}

/// The parts of a response the probe looks at.
#[derive(Debug, PartialEq, Eq)]
struct Response {
    typ: MessageType,
    error: Option<(u16, String)>,
    realm: Option<String>,
    nonce: Option<String>,
}

/// Parses a STUN message; `None` when it is not one.
fn parse(raw: &[u8]) -> Option<(TransactionId, Response)> {
    let mut m = Message::new();
    m.raw = raw.to_vec();
    m.decode().ok()?;
    let mut code = ErrorCodeAttribute::default();
    let error = code
        .get_from(&m)
        .ok()
        .map(|()| (code.code.0, String::from_utf8_lossy(&code.reason).into_owned()));
    let text = |attr| TextAttribute::get_from_as(&m, attr).ok().map(|t| t.text);
    let resp = Response { typ: m.typ, error, realm: text(ATTR_REALM), nonce: text(ATTR_NONCE) };
    Some((m.transaction_id, resp))
}

/// Builds a request of `method` with a fresh transaction id.
fn request(
    method: rtc_stun::message::Method,
    attrs: Vec<Box<dyn Setter + '_>>,
) -> Result<Message, String> {
    let mut setters: Vec<Box<dyn Setter>> =
        vec![Box::new(TransactionId::new()), Box::new(MessageType::new(method, CLASS_REQUEST))];
    setters.extend(attrs);
    let mut m = Message::new();
    m.build(&setters).map_err(|e| e.to_string())?;
    Ok(m)
}

/// Sends `req` to `server` and waits for the response with the same transaction id,
/// retransmitting on the [`RETRANSMIT_AT`] schedule. `None` when nothing came back.
async fn exchange(sock: &UdpSocket, server: SocketAddr, req: &Message) -> Option<Response> {
    let (txid, req) = (req.transaction_id, req.raw.as_slice());
    let start = tokio::time::Instant::now();
    let mut buf = vec![0u8; 1500];
    for (i, at) in RETRANSMIT_AT.iter().enumerate() {
        if i + 1 == RETRANSMIT_AT.len() {
            break;
        }
        tokio::time::sleep_until(start + *at).await;
        if sock.send_to(req, server).await.is_err() {
            return None;
        }
        let until = start + RETRANSMIT_AT[i + 1];
        while let Ok(Ok((n, from))) = tokio::time::timeout_at(until, sock.recv_from(&mut buf)).await
        {
            match parse(&buf[..n]) {
                Some((id, resp)) if from == server && id == txid => return Some(resp),
                _ => {}
            }
        }
    }
    None
}

/// Asks `server` for an allocation with `creds`, the way a TURN client does: first without
/// credentials (to learn the realm and nonce), then with them. A granted allocation is
/// released at once (Refresh with LIFETIME 0). Takes at most a few seconds.
pub async fn probe(server: SocketAddr, creds: &Credentials<'_>) -> Result<Verdict, String> {
    let any: SocketAddr = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().unwrap();
    let sock = UdpSocket::bind(any).await.map_err(|e| e.to_string())?;
    let transport = || Box::new(RequestedTransport { protocol: PROTO_UDP }) as Box<dyn Setter>;
    let Some(first) = exchange(&sock, server, &request(METHOD_ALLOCATE, vec![transport()])?).await
    else {
        return Ok(Verdict::NoAnswer);
    };
    let success = MessageType::new(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE);
    let failure = MessageType::new(METHOD_ALLOCATE, CLASS_ERROR_RESPONSE);
    let not_turn = || Verdict::Refused { code: 0, reason: "not a TURN response".into() };
    let (mut realm, mut nonce) = match first {
        Response { typ, .. } if typ == success => return Ok(Verdict::Granted),
        Response { error: Some((401, _)), realm: Some(r), nonce: Some(n), .. } => (r, n),
        Response { typ, error: Some((code, reason)), .. } if typ == failure => {
            return Ok(Verdict::Refused { code, reason });
        }
        _ => return Ok(not_turn()),
    };
    let provider = crypto::default_provider().map_err(|e| e.to_string())?;
    // One retry for a stale nonce (438), which carries a fresh one.
    for _ in 0..2 {
        let integrity = MessageIntegrity::new_long_term_integrity_with_provider(
            creds.user.to_owned(),
            realm.clone(),
            creds.password.to_owned(),
            provider.crypto(),
        )
        .map_err(|e| e.to_string())?;
        let signed = |method, first: Box<dyn Setter>| {
            request(
                method,
                vec![
                    first,
                    Box::new(TextAttribute::new(ATTR_USERNAME, creds.user.to_owned())),
                    Box::new(TextAttribute::new(ATTR_REALM, realm.clone())),
                    Box::new(TextAttribute::new(ATTR_NONCE, nonce.clone())),
                    Box::new(integrity.clone()),
                ],
            )
        };
        let Some(resp) = exchange(&sock, server, &signed(METHOD_ALLOCATE, transport())?).await
        else {
            return Ok(Verdict::NoAnswer);
        };
        match resp {
            Response { typ, .. } if typ == success => {
                // Release it at once: Refresh with LIFETIME 0.
                let release = signed(METHOD_REFRESH, Box::new(Lifetime(Duration::ZERO)))?;
                let _ = exchange(&sock, server, &release).await;
                return Ok(Verdict::Granted);
            }
            Response { error: Some((438, _)), realm: Some(r), nonce: Some(n), .. } => {
                (realm, nonce) = (r, n);
            }
            Response { typ, error: Some((code, reason)), .. } if typ == failure => {
                return Ok(Verdict::Refused { code, reason });
            }
            _ => return Ok(not_turn()),
        }
    }
    Ok(Verdict::Refused { code: 438, reason: "Stale Nonce".into() })
}

/// The address in a `turn:` URL (`turn:host[:port][?transport=udp]`, port 3478 by default),
/// parsed by webrtc-rs's own ICE URL parser, or `None` for what the probe (like webrtc 0.21)
/// does not speak: `turns:` and TCP.
pub fn udp_server(url: &str) -> Option<(String, u16)> {
    use rtc_ice::url::{ProtoType, SchemeType, Url};
    let url = Url::parse_url(url).ok()?;
    (url.scheme == SchemeType::Turn && url.proto == ProtoType::Udp && !url.host.is_empty())
        .then(|| (url.host.trim_start_matches('[').trim_end_matches(']').to_owned(), url.port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocate_with<'a>(txid: [u8; 12], attrs: Vec<Box<dyn Setter + 'a>>) -> Message {
        let mut setters: Vec<Box<dyn Setter + 'a>> = vec![
            Box::new(TransactionId(txid)),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
        ];
        setters.extend(attrs);
        let mut m = Message::new();
        m.build(&setters).unwrap();
        m
    }

    #[test]
    fn an_allocate_request_is_laid_out_as_rfc_8489_says() {
        let transport = Box::new(RequestedTransport { protocol: PROTO_UDP });
        let req = allocate_with([7; 12], vec![transport]).raw;
        assert_eq!(req.len(), 28);
        assert_eq!(&req[..4], &[0x00, 0x03, 0x00, 0x08], "type Allocate, 8 bytes of attributes");
        assert_eq!(&req[4..8], &0x2112_A442u32.to_be_bytes(), "magic cookie");
        assert_eq!(&req[8..20], &[7; 12]);
        assert_eq!(&req[20..], &[0x00, 0x19, 0x00, 0x04, 17, 0, 0, 0]);
    }

    /// The integrity covers the header with its final length and everything before the
    /// attribute; the expected MAC was computed independently, with Python's hmac/hashlib on
    /// the same bytes and key MD5("alice:dcsend.test:secret").
    #[test]
    fn message_integrity_is_hmac_sha1_with_the_md5_key() {
        let provider = crypto::default_provider().unwrap();
        let integrity = MessageIntegrity::new_long_term_integrity_with_provider(
            "alice".into(),
            "dcsend.test".into(),
            "secret".into(),
            provider.crypto(),
        )
        .unwrap();
        let user = Box::new(TextAttribute::new(ATTR_USERNAME, "alice".into()));
        let req = allocate_with([1; 12], vec![user, Box::new(integrity)]).raw;
        assert_eq!(req.len(), 20 + 12 + 24);
        assert_eq!(&req[2..4], &[0, 36], "the length counts MESSAGE-INTEGRITY");
        assert_eq!(&req[32..36], &[0x00, 0x08, 0x00, 0x14]);
        assert_eq!(hex::encode(&req[36..]), "b53ca06bce9c885923ef3fcc84595477a39aaa41");
    }

    #[test]
    fn an_error_response_yields_code_reason_realm_and_nonce() {
        let mut m = Message::new();
        m.build(&[
            Box::new(TransactionId([9; 12])),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_ERROR_RESPONSE)),
            Box::new(ErrorCodeAttribute {
                code: rtc_stun::error_code::ErrorCode(401),
                reason: b"Unauthorized".to_vec(),
            }),
            Box::new(TextAttribute::new(ATTR_NONCE, "n0nce".into())),
            Box::new(TextAttribute::new(ATTR_REALM, "dcsend.test".into())),
        ])
        .unwrap();
        let (id, resp) = parse(&m.raw).unwrap();
        assert_eq!(id, TransactionId([9; 12]));
        assert_eq!(resp.typ, MessageType::new(METHOD_ALLOCATE, CLASS_ERROR_RESPONSE));
        assert_eq!(resp.error, Some((401, "Unauthorized".into())));
        assert_eq!(resp.realm.as_deref(), Some("dcsend.test"));
        assert_eq!(resp.nonce.as_deref(), Some("n0nce"));
        // Cut short, or not STUN: refused without a panic.
        assert_eq!(parse(&m.raw[..m.raw.len() - 3]), None);
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), None);
        assert_eq!(parse(&[]), None);
    }

    #[test]
    fn turn_urls_give_host_and_port() {
        let ok = |u: &str, h: &str, p: u16| assert_eq!(udp_server(u), Some((h.into(), p)), "{u}");
        ok("turn:127.0.0.1:34780", "127.0.0.1", 34780);
        ok("turn:turn.example.org", "turn.example.org", 3478);
        ok("turn:turn.example.org:3479?transport=udp", "turn.example.org", 3479);
        ok("turn:[::1]:3478", "::1", 3478);
        for no in ["turns:turn.example.org", "turn:h:3478?transport=tcp", "stun:h:3478", "turn:"] {
            assert_eq!(udp_server(no), None, "{no}");
        }
    }
}
