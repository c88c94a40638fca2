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
//! The STUN codec here is the minimum for that exchange: a request with USERNAME, REALM,
//! NONCE, REQUESTED-TRANSPORT and MESSAGE-INTEGRITY; a response's ERROR-CODE, REALM and NONCE.
//! MD5 and HMAC-SHA1 come from the crypto provider webrtc re-exports (no extra dependency).

use std::net::SocketAddr;
use std::time::Duration;

use rand::RngExt as _;
use tokio::net::UdpSocket;
use webrtc::peer_connection::crypto::{self, HashAlgorithm, HmacAlgorithm};

const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER_LEN: usize = 20;

const ALLOCATE_REQUEST: u16 = 0x0003;
const ALLOCATE_SUCCESS: u16 = 0x0103;
const ALLOCATE_ERROR: u16 = 0x0113;
const REFRESH_REQUEST: u16 = 0x0004;

const ATTR_USERNAME: u16 = 0x0006;
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const ATTR_ERROR_CODE: u16 = 0x0009;
const ATTR_LIFETIME: u16 = 0x000D;
const ATTR_REALM: u16 = 0x0014;
const ATTR_NONCE: u16 = 0x0015;
const ATTR_REQUESTED_TRANSPORT: u16 = 0x0019;
/// REQUESTED-TRANSPORT value: UDP (protocol 17) and three reserved bytes.
const TRANSPORT_UDP: [u8; 4] = [17, 0, 0, 0];

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

/// One STUN request being built.
struct Request {
    buf: Vec<u8>,
}

impl Request {
    fn new(typ: u16, txid: [u8; 12]) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&typ.to_be_bytes());
        buf.extend_from_slice(&0u16.to_be_bytes());
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&txid);
        Self { buf }
    }

    fn attr(mut self, typ: u16, value: &[u8]) -> Self {
        self.buf.extend_from_slice(&typ.to_be_bytes());
        self.buf.extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(self.buf.len().next_multiple_of(4), 0);
        self.set_length(self.buf.len() - HEADER_LEN);
        self
    }

    fn set_length(&mut self, len: usize) {
        self.buf[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    }

    /// Appends MESSAGE-INTEGRITY: HMAC-SHA1 over the message so far, its length field already
    /// counting the 24-byte attribute (RFC 8489 §14.5).
    fn integrity(mut self, key: &[u8]) -> Result<Vec<u8>, String> {
        self.set_length(self.buf.len() - HEADER_LEN + 24);
        let mut mac = hmac_sha1(key, &self.buf)?;
        let mut out = self.buf;
        out.extend_from_slice(&ATTR_MESSAGE_INTEGRITY.to_be_bytes());
        out.extend_from_slice(&20u16.to_be_bytes());
        out.append(&mut mac);
        Ok(out)
    }

    fn finish(self) -> Vec<u8> {
        self.buf
    }
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    let provider = crypto::default_provider().map_err(|e| e.to_string())?;
    let mut mac =
        provider.crypto().new_hmac(HmacAlgorithm::Sha1, key).map_err(|e| e.to_string())?;
    let mut out = vec![0; 20];
    mac.sign(&[data], &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// The long-term credential key: MD5(user ":" realm ":" password).
fn long_term_key(user: &str, realm: &str, password: &str) -> Result<Vec<u8>, String> {
    let provider = crypto::default_provider().map_err(|e| e.to_string())?;
    provider
        .crypto()
        .hash(HashAlgorithm::Md5, format!("{user}:{realm}:{password}").as_bytes())
        .map_err(|e| e.to_string())
}

/// The parts of a response the probe looks at.
#[derive(Debug, Default, PartialEq, Eq)]
struct Response {
    typ: u16,
    txid: [u8; 12],
    error: Option<(u16, String)>,
    realm: Option<Vec<u8>>,
    nonce: Option<Vec<u8>>,
}

/// Parses a STUN message; `None` when it is not one (or is cut short).
fn parse(msg: &[u8]) -> Option<Response> {
    let header = msg.get(..HEADER_LEN)?;
    let typ = u16::from_be_bytes([header[0], header[1]]);
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if u32::from_be_bytes(header[4..8].try_into().ok()?) != MAGIC_COOKIE {
        return None;
    }
    let mut out = Response { typ, txid: header[8..20].try_into().ok()?, ..Default::default() };
    let mut rest = msg.get(HEADER_LEN..HEADER_LEN + len)?;
    while rest.len() >= 4 {
        let at = u16::from_be_bytes([rest[0], rest[1]]);
        let alen = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let value = rest.get(4..4 + alen)?;
        match at {
            ATTR_ERROR_CODE if alen >= 4 => {
                let code = u16::from(value[2] & 0x7) * 100 + u16::from(value[3]);
                out.error = Some((code, String::from_utf8_lossy(&value[4..]).into_owned()));
            }
            ATTR_REALM => out.realm = Some(value.to_vec()),
            ATTR_NONCE => out.nonce = Some(value.to_vec()),
            _ => {}
        }
        rest = rest.get((4 + alen).next_multiple_of(4)..).unwrap_or_default();
    }
    Some(out)
}

/// Sends `req` to `server` and waits for the response with the same transaction id,
/// retransmitting on the [`RETRANSMIT_AT`] schedule. `None` when nothing came back.
async fn exchange(sock: &UdpSocket, server: SocketAddr, req: &[u8]) -> Option<Response> {
    let txid: [u8; 12] = req[8..20].try_into().ok()?;
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
                Some(resp) if from == server && resp.txid == txid => return Some(resp),
                _ => {}
            }
        }
    }
    None
}

fn txid() -> [u8; 12] {
    rand::rng().random()
}

fn allocate(txid: [u8; 12]) -> Request {
    Request::new(ALLOCATE_REQUEST, txid).attr(ATTR_REQUESTED_TRANSPORT, &TRANSPORT_UDP)
}

/// Asks `server` for an allocation with `creds`, the way a TURN client does: first without
/// credentials (to learn the realm and nonce), then with them. A granted allocation is
/// released at once (Refresh with LIFETIME 0). Takes at most a few seconds.
pub async fn probe(server: SocketAddr, creds: &Credentials<'_>) -> Result<Verdict, String> {
    let any: SocketAddr = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().unwrap();
    let sock = UdpSocket::bind(any).await.map_err(|e| e.to_string())?;
    let Some(first) = exchange(&sock, server, &allocate(txid()).finish()).await else {
        return Ok(Verdict::NoAnswer);
    };
    let (mut realm, mut nonce) = match first {
        Response { typ: ALLOCATE_SUCCESS, .. } => return Ok(Verdict::Granted),
        Response { error: Some((401, _)), realm: Some(r), nonce: Some(n), .. } => (r, n),
        Response { error: Some((code, reason)), .. } => {
            return Ok(Verdict::Refused { code, reason });
        }
        _ => return Ok(Verdict::Refused { code: 0, reason: "not a TURN response".into() }),
    };
    // One retry for a stale nonce (438), which carries a fresh one.
    for _ in 0..2 {
        let realm_text = String::from_utf8_lossy(&realm).into_owned();
        let key = long_term_key(creds.user, &realm_text, creds.password)?;
        let signed = |r: Request| {
            r.attr(ATTR_USERNAME, creds.user.as_bytes())
                .attr(ATTR_REALM, &realm)
                .attr(ATTR_NONCE, &nonce)
                .integrity(&key)
        };
        let Some(resp) = exchange(&sock, server, &signed(allocate(txid()))?).await else {
            return Ok(Verdict::NoAnswer);
        };
        match resp {
            Response { typ: ALLOCATE_SUCCESS, .. } => {
                let release = Request::new(REFRESH_REQUEST, txid()).attr(ATTR_LIFETIME, &[0; 4]);
                let _ = exchange(&sock, server, &signed(release)?).await;
                return Ok(Verdict::Granted);
            }
            Response { error: Some((438, _)), realm: Some(r), nonce: Some(n), .. } => {
                (realm, nonce) = (r, n);
            }
            Response { typ: ALLOCATE_ERROR, error: Some((code, reason)), .. } => {
                return Ok(Verdict::Refused { code, reason });
            }
            _ => return Ok(Verdict::Refused { code: 0, reason: "not a TURN response".into() }),
        }
    }
    Ok(Verdict::Refused { code: 438, reason: "Stale Nonce".into() })
}

/// The address in a `turn:` URL (`turn:host[:port][?transport=udp]`, port 3478 by default),
/// or `None` for what the probe (like webrtc 0.21) does not speak: `turns:` and TCP.
pub fn udp_server(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("turn:")?;
    let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !query.is_empty() && query != "transport=udp" {
        return None;
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && (h.starts_with('[') || !h.contains(':')) => {
            (h, p.parse().ok()?)
        }
        _ => (hostport, 3478),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocate_request_is_laid_out_as_rfc_8489_says() {
        let req = allocate([7; 12]).finish();
        assert_eq!(req.len(), 28);
        assert_eq!(&req[..4], &[0x00, 0x03, 0x00, 0x08], "type Allocate, 8 bytes of attributes");
        assert_eq!(&req[4..8], &MAGIC_COOKIE.to_be_bytes());
        assert_eq!(&req[8..20], &[7; 12]);
        assert_eq!(&req[20..], &[0x00, 0x19, 0x00, 0x04, 17, 0, 0, 0]);
    }

    #[test]
    fn attributes_are_padded_to_four_bytes() {
        let req = Request::new(ALLOCATE_REQUEST, [0; 12]).attr(ATTR_USERNAME, b"alice").finish();
        assert_eq!(req.len(), HEADER_LEN + 4 + 8);
        assert_eq!(&req[2..4], &[0, 12]);
        assert_eq!(&req[22..24], &[0, 5], "the length is unpadded");
        assert_eq!(&req[24..], b"alice\0\0\0");
    }

    /// The integrity covers the header with its final length and everything before the
    /// attribute; the expected MAC comes from Python's hmac/hashlib on the same bytes.
    #[test]
    fn message_integrity_is_hmac_sha1_with_the_md5_key() {
        let key = long_term_key("alice", "dcsend.test", "secret").unwrap();
        assert_eq!(hex::encode(&key), "940f35d22ca800715ccde86da168b593");
        let req = Request::new(ALLOCATE_REQUEST, [1; 12])
            .attr(ATTR_USERNAME, b"alice")
            .integrity(&key)
            .unwrap();
        assert_eq!(req.len(), HEADER_LEN + 12 + 24);
        assert_eq!(&req[2..4], &[0, 36], "the length counts MESSAGE-INTEGRITY");
        assert_eq!(&req[32..36], &[0x00, 0x08, 0x00, 0x14]);
        assert_eq!(hex::encode(&req[36..]), "b53ca06bce9c885923ef3fcc84595477a39aaa41");
    }

    #[test]
    fn an_error_response_yields_code_reason_realm_and_nonce() {
        let mut msg = Request::new(ALLOCATE_ERROR, [9; 12])
            .attr(ATTR_ERROR_CODE, b"\0\0\x04\x01Unauthorized")
            .attr(ATTR_NONCE, b"n0nce")
            .attr(ATTR_REALM, b"dcsend.test")
            .finish();
        let resp = parse(&msg).unwrap();
        assert_eq!(resp.typ, ALLOCATE_ERROR);
        assert_eq!(resp.txid, [9; 12]);
        assert_eq!(resp.error, Some((401, "Unauthorized".into())));
        assert_eq!(resp.realm.as_deref(), Some(&b"dcsend.test"[..]));
        assert_eq!(resp.nonce.as_deref(), Some(&b"n0nce"[..]));
        // Cut short, or not STUN: refused without a panic.
        msg.truncate(msg.len() - 3);
        assert_eq!(parse(&msg), None);
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
        ok("turn:[::1]", "::1", 3478);
        for no in ["turns:turn.example.org", "turn:h:3478?transport=tcp", "stun:h:3478", "turn:"] {
            assert_eq!(udp_server(no), None, "{no}");
        }
    }
}
