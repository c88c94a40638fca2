//! The compact copy-paste token: only what the peer needs to connect a data channel, packed
//! into bytes and written in base32, so that a description Pion's form spells in 888-924
//! characters takes 167 (one host candidate; about 11 more per IPv4 candidate). The full SDP
//! is rebuilt on the other side.
//!
//! A compact token is `DC1` (the form and its version: a later layout takes another digit)
//! followed by RFC 4648 base32 (`A-Z`, `2-7`, no padding) of the packed bytes. Letters and
//! digits only: a double click selects all of it in any terminal, and it may be retyped in
//! either case. Decoding ignores whitespace (terminals wrap long lines).
//!
//! Packed layout, version 1 (integers big-endian; "str" is a length byte and that many
//! bytes). Spec and measured sizes: `docs/tokens.md`.
//!
//! ```text
//! flags    u8   bit 0 kind (0 offer, 1 answer); bits 1-2 setup (0 actpass, 1 active,
//!               2 passive); bit 3 max-message-size present; bit 4 sctp-port present
//!               (absent: 5000); bit 5 mid present (absent: "0"); bits 6-7 zero
//! length   u16  bytes of the whole packed token, checksum included (tells a cut token)
//! ufrag    str  ICE ufrag
//! pwd      str  ICE password
//! hash     u8   fingerprint hash: 1 sha-256, 2 sha-384, 3 sha-512, 4 sha-1; the digest
//!               follows, its length given by the hash (32, 48, 64, 20)
//! [port]   u16  sctp-port            [mms] u32  max-message-size       [mid] str
//! count    u8   candidates (component 1 only, UDP only), at most MAX_CANDIDATES, each:
//!   kind   u8   bits 0-1 type (host, srflx, prflx, relay); bits 2-3 address (0 IPv4,
//!               1 IPv6, 2 a host name such as mDNS's NAME.local); bit 4 priority present
//!               (absent: RFC 8445's formula with local preference 65535); bits 5-7 zero
//!   addr        4 or 16 bytes, or str
//!   port   u16
//!   [prio] u32
//! check    4    the first 4 bytes of SHA-256 of everything before
//! ```
//!
//! Left out, because a data channel does not need them or they can be rebuilt: the session
//! id and version, component-2 candidates (webrtc-rs lists every candidate twice, once per
//! component, same address and priority), foundations (rebuilt one per candidate), related
//! addresses (diagnostic only), and attributes such as `msid-semantic`. The rebuilt SDP has the
//! shape webrtc-rs writes: each candidate for components 1 and 2, `extmap-allow-mixed`,
//! `a=sendrecv`. A
//! description the layout cannot carry (TCP candidates, ICE lite, several media sections, an
//! unknown hash) is not packed: [`pack`] says why and the caller prints Pion's form instead.
//!
//! Boundaries: pure, like `codec` (no I/O, no `webrtc`); depends on `codec`'s types and `sha2`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sha2::{Digest, Sha256};

use crate::signal::codec::{SdpKind, SessionDesc, TokenError};

/// What every compact token starts with: the form and its version.
pub const PREFIX: &str = "DC1";

/// Most candidates a compact token carries; a description with more is not packed.
pub const MAX_CANDIDATES: usize = 32;

/// Bytes of the checksum at the end.
const CHECK_BYTES: usize = 4;

/// The flags, length and count fields around the variable parts.
const HEADER_BYTES: usize = 3;

/// ICE's default local preference (RFC 8445 §5.1.2.1: one address per type), which webrtc-rs
/// uses for UDP candidates: a priority from it is left out of the token.
const DEFAULT_LOCAL_PREFERENCE: u32 = 65535;

/// The port webrtc-rs and browsers use for SCTP (RFC 8841 §5: 5000 when absent).
const DEFAULT_SCTP_PORT: u16 = 5000;

/// Why a description was not packed (the caller falls back to Pion's form).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the description has no compact form: {0}")]
pub struct NotPackable(pub String);

fn cannot<T>(why: impl Into<String>) -> Result<T, NotPackable> {
    Err(NotPackable(why.into()))
}

/// True when `text` (as pasted: whitespace around it allowed) is in the compact form of any
/// version: `DC` and a digit, in either case.
pub fn is_compact(text: &str) -> bool {
    let b = text.trim_start().as_bytes();
    b.len() >= 3 && b[..2].eq_ignore_ascii_case(b"DC") && b[2].is_ascii_digit()
}

/// Candidate types, in the order of their two-bit code.
const TYPES: [&str; 4] = ["host", "srflx", "prflx", "relay"];
/// ICE type preferences of [`TYPES`] (RFC 8445 §5.1.2.2, as webrtc-rs uses them).
const TYPE_PREFERENCES: [u32; 4] = [126, 100, 110, 0];
/// DTLS setup roles, in the order of their two-bit code.
const SETUPS: [&str; 3] = ["actpass", "active", "passive"];
/// Fingerprint hashes by code (code 0 is unused) and their digest lengths.
const HASHES: [(&str, usize); 5] =
    [("", 0), ("sha-256", 32), ("sha-384", 48), ("sha-512", 64), ("sha-1", 20)];

/// The priority a candidate of type `code` on component 1 gets by RFC 8445's formula.
fn default_priority(code: usize) -> u32 {
    (TYPE_PREFERENCES[code] << 24) + (DEFAULT_LOCAL_PREFERENCE << 8) + 255
}

/// Packs `desc` into a compact token (`DC1...`).
///
/// Errors: [`NotPackable`] when the SDP has something the layout cannot carry or lacks what a
/// peer needs (see the module's documentation).
pub fn pack(desc: &SessionDesc) -> Result<String, NotPackable> {
    let parts = Parts::read(&desc.sdp)?;
    let mut out = Vec::with_capacity(160);
    let mut flags = match desc.kind {
        SdpKind::Offer => 0,
        SdpKind::Answer => 1,
    };
    flags |= (parts.setup as u8) << 1;
    flags |= u8::from(parts.max_message_size.is_some()) << 3;
    flags |= u8::from(parts.sctp_port != DEFAULT_SCTP_PORT) << 4;
    flags |= u8::from(parts.mid != "0") << 5;
    out.push(flags);
    out.extend([0, 0]); // the length, once known
    put_str(&mut out, parts.ufrag, "ice-ufrag")?;
    put_str(&mut out, parts.pwd, "ice-pwd")?;
    out.push(parts.hash as u8);
    out.extend(&parts.digest);
    if parts.sctp_port != DEFAULT_SCTP_PORT {
        out.extend(parts.sctp_port.to_be_bytes());
    }
    if let Some(size) = parts.max_message_size {
        out.extend(size.to_be_bytes());
    }
    if parts.mid != "0" {
        put_str(&mut out, parts.mid, "mid")?;
    }
    out.push(parts.candidates.len() as u8);
    for c in &parts.candidates {
        let explicit = c.priority != default_priority(c.kind);
        let (form, addr): (u8, Vec<u8>) = match c.address {
            Address::Ip(IpAddr::V4(ip)) => (0, ip.octets().to_vec()),
            Address::Ip(IpAddr::V6(ip)) => (1, ip.octets().to_vec()),
            Address::Name(name) => {
                let mut v = Vec::new();
                put_str(&mut v, name, "a candidate's host name")?;
                (2, v)
            }
        };
        out.push(c.kind as u8 | form << 2 | u8::from(explicit) << 4);
        out.extend(addr);
        out.extend(c.port.to_be_bytes());
        if explicit {
            out.extend(c.priority.to_be_bytes());
        }
    }
    let len = out.len() + CHECK_BYTES;
    let Ok(len16) = u16::try_from(len) else {
        return cannot(format!("it would take {len} bytes"));
    };
    out[1..3].copy_from_slice(&len16.to_be_bytes());
    let check = checksum(&out);
    out.extend(check);
    Ok(format!("{PREFIX}{}", base32_encode(&out)))
}

/// Unpacks a compact token into a full description that webrtc-rs (and browsers) accept.
///
/// `text` may carry whitespace anywhere and be in either case. Errors, as [`TokenError`]:
/// another version ([`TokenError::UnknownVersion`]), characters outside base32
/// ([`TokenError::NotBase32`]), fewer bytes than the token's length field says
/// ([`TokenError::Truncated`] with the characters got and needed), a checksum that does not
/// match ([`TokenError::Damaged`]), or fields that contradict the layout
/// ([`TokenError::Malformed`]). Never panics, whatever the input.
pub fn unpack(text: &str) -> Result<SessionDesc, TokenError> {
    let joined: String =
        text.chars().filter(|c| !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
    let Some(body) = joined.strip_prefix(PREFIX) else {
        let version = joined.get(2..3).unwrap_or("?").to_owned();
        return Err(TokenError::UnknownVersion(version));
    };
    let bytes = base32_decode(body).ok_or(TokenError::NotBase32)?;
    let got = joined.chars().count();
    if bytes.len() < HEADER_BYTES {
        return Err(TokenError::Truncated(None));
    }
    let want = usize::from(u16::from_be_bytes([bytes[1], bytes[2]]));
    if bytes.len() < want {
        return Err(TokenError::Truncated(Some((got, PREFIX.len() + base32_len(want)))));
    }
    if bytes.len() > want || want < HEADER_BYTES + CHECK_BYTES {
        return Err(TokenError::Damaged);
    }
    let (packed, check) = bytes.split_at(want - CHECK_BYTES);
    if checksum(packed) != check {
        return Err(TokenError::Damaged);
    }
    let sdp = Reader { bytes: packed, at: HEADER_BYTES }.rebuild(packed[0], check)?;
    let kind = if packed[0] & 1 == 0 { SdpKind::Offer } else { SdpKind::Answer };
    Ok(SessionDesc { kind, sdp })
}

fn checksum(bytes: &[u8]) -> [u8; CHECK_BYTES] {
    let digest = Sha256::digest(bytes);
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Appends `s` as a length byte and its bytes; it must be what [`Reader::str`] accepts back
/// (1-255 bytes of printable ASCII without spaces).
fn put_str(out: &mut Vec<u8>, s: &str, what: &str) -> Result<(), NotPackable> {
    let Ok(len) = u8::try_from(s.len()) else {
        return cannot(format!("{what} is longer than 255 bytes"));
    };
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return cannot(format!("{what} {s:?} is empty or not printable ASCII"));
    }
    out.push(len);
    out.extend(s.as_bytes());
    Ok(())
}

/// A candidate's address as the token carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Address<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

#[derive(Debug)]
struct Candidate<'a> {
    /// Index into [`TYPES`].
    kind: usize,
    address: Address<'a>,
    port: u16,
    priority: u32,
}

/// What the compact form keeps of an SDP.
#[derive(Debug)]
struct Parts<'a> {
    ufrag: &'a str,
    pwd: &'a str,
    /// Index into [`HASHES`].
    hash: usize,
    digest: Vec<u8>,
    /// Index into [`SETUPS`].
    setup: usize,
    mid: &'a str,
    sctp_port: u16,
    max_message_size: Option<u32>,
    candidates: Vec<Candidate<'a>>,
}

impl<'a> Parts<'a> {
    fn read(sdp: &'a str) -> Result<Self, NotPackable> {
        let (mut ufrag, mut pwd, mut fingerprint, mut setup, mut mid) =
            (None, None, None, None, None);
        let (mut sctp_port, mut max_message_size) = (None, None);
        let mut candidates = Vec::new();
        let mut media = 0;
        for line in sdp.lines().map(str::trim) {
            if let Some(m) = line.strip_prefix("m=") {
                media += 1;
                if !(m.starts_with("application ") && m.ends_with("webrtc-datachannel")) {
                    return cannot(format!("a media section other than a data channel ({m})"));
                }
                continue;
            }
            let Some(attr) = line.strip_prefix("a=") else { continue };
            let (name, value) = attr.split_once(':').unwrap_or((attr, ""));
            let value = value.trim();
            match name {
                "ice-ufrag" => ufrag = Some(value),
                "ice-pwd" => pwd = Some(value),
                "fingerprint" => fingerprint = Some(value),
                "setup" => setup = Some(value),
                "mid" => mid = Some(value),
                "sctp-port" => sctp_port = Some(value),
                "max-message-size" => max_message_size = Some(value),
                "ice-lite" => return cannot("the peer is ICE lite"),
                "candidate" => {
                    if let Some(c) = read_candidate(value)? {
                        candidates.push(c);
                    }
                }
                _ => {}
            }
        }
        if media != 1 {
            return cannot(format!("{media} media sections, not one data channel"));
        }
        let (Some(ufrag), Some(pwd)) = (ufrag, pwd) else {
            return cannot("no ICE ufrag or password");
        };
        let (hash, digest) = read_fingerprint(fingerprint.unwrap_or_default())?;
        let Some(setup) = SETUPS.iter().position(|s| Some(*s) == setup) else {
            return cannot(format!("DTLS setup {setup:?}"));
        };
        let sctp_port = match sctp_port {
            Some(p) => p.parse().map_err(|_| NotPackable(format!("sctp-port {p}")))?,
            None => return cannot("no sctp-port (an SDP of the old sctpmap draft)"),
        };
        let max_message_size = match max_message_size {
            Some(s) => Some(s.parse().map_err(|_| NotPackable(format!("max-message-size {s}")))?),
            None => None,
        };
        if candidates.len() > MAX_CANDIDATES {
            return cannot(format!("{} candidates (at most {MAX_CANDIDATES})", candidates.len()));
        }
        let mid = mid.unwrap_or("0");
        Ok(Parts { ufrag, pwd, hash, digest, setup, mid, sctp_port, max_message_size, candidates })
    }
}

/// `sha-256 AB:CD:...` into its hash code and digest.
fn read_fingerprint(value: &str) -> Result<(usize, Vec<u8>), NotPackable> {
    let (hash, hex) = value.split_once(' ').unwrap_or((value, ""));
    let Some(code) = HASHES.iter().skip(1).position(|(h, _)| h.eq_ignore_ascii_case(hash)) else {
        return cannot(format!("fingerprint hash {hash:?}"));
    };
    let code = code + 1;
    let digest: Option<Vec<u8>> = hex
        .trim()
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).ok().filter(|_| b.len() == 2))
        .collect();
    match digest {
        Some(d) if d.len() == HASHES[code].1 => Ok((code, d)),
        _ => cannot(format!("fingerprint {value:?}")),
    }
}

/// One `a=candidate:` value; `None` for the components and transports the token leaves out.
fn read_candidate(value: &str) -> Result<Option<Candidate<'_>>, NotPackable> {
    let f: Vec<&str> = value.split_whitespace().collect();
    let bad = || NotPackable(format!("candidate {value:?}"));
    if f.len() < 8 || f[6] != "typ" {
        return Err(bad());
    }
    if f[1] != "1" {
        return Ok(None); // component 2 (RTCP) is never used by a bundled data channel
    }
    if !f[2].eq_ignore_ascii_case("udp") {
        return cannot(format!("a {} candidate (UDP only)", f[2]));
    }
    let priority = f[3].parse().map_err(|_| bad())?;
    let address = match f[4].parse() {
        Ok(ip) => Address::Ip(ip),
        Err(_) if is_host_name(f[4]) => Address::Name(f[4]),
        Err(_) => return Err(bad()),
    };
    let port = f[5].parse().map_err(|_| bad())?;
    let kind = TYPES.iter().position(|t| *t == f[7]).ok_or_else(bad)?;
    Ok(Some(Candidate { kind, address, port, priority }))
}

/// A DNS name as candidates carry them (mDNS `UUID.local`): letters, digits, `-` and `.`.
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Reads the packed fields after the header; every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], TokenError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(TokenError::Malformed(what))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, TokenError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, TokenError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, TokenError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A length-prefixed string of printable ASCII without spaces (it lands in an SDP line).
    fn str(&mut self, what: &'static str) -> Result<&'a str, TokenError> {
        let len = usize::from(self.u8(what)?);
        let b = self.take(len, what)?;
        if b.is_empty() || !b.iter().all(u8::is_ascii_graphic) {
            return Err(TokenError::Malformed(what));
        }
        std::str::from_utf8(b).map_err(|_| TokenError::Malformed(what))
    }

    /// Writes the SDP the fields describe (`flags`: the first byte; `check`: the checksum,
    /// which seeds the session id).
    fn rebuild(mut self, flags: u8, check: &[u8]) -> Result<String, TokenError> {
        if flags & 0xC0 != 0 {
            return Err(TokenError::Malformed("flags"));
        }
        let setup =
            *SETUPS.get(usize::from(flags >> 1 & 3)).ok_or(TokenError::Malformed("setup"))?;
        let ufrag = self.str("ice-ufrag")?;
        let pwd = self.str("ice-pwd")?;
        let hash = usize::from(self.u8("fingerprint")?);
        let (hash_name, digest_len) = match HASHES.get(hash) {
            Some(&(name, len)) if hash > 0 => (name, len),
            _ => return Err(TokenError::Malformed("fingerprint")),
        };
        let digest = self.take(digest_len, "fingerprint")?;
        let sctp_port =
            if flags & 1 << 4 != 0 { self.u16("sctp-port")? } else { DEFAULT_SCTP_PORT };
        let max_message_size =
            if flags & 1 << 3 != 0 { Some(self.u32("max-message-size")?) } else { None };
        let mid = if flags & 1 << 5 != 0 { self.str("mid")? } else { "0" };
        let count = usize::from(self.u8("candidates")?);
        if count > MAX_CANDIDATES {
            return Err(TokenError::Malformed("candidates"));
        }

        let session_id = u32::from_be_bytes([check[0], check[1], check[2], check[3]]);
        let fingerprint: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
        let mut sdp = String::with_capacity(700);
        // (write! to a String cannot fail.)
        let _ = write!(
            sdp,
            "v=0\r\no=- {session_id} 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
             a=fingerprint:{hash_name} {}\r\na=extmap-allow-mixed\r\na=group:BUNDLE {mid}\r\n\
             m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
             a=setup:{setup}\r\na=mid:{mid}\r\na=sendrecv\r\na=sctp-port:{sctp_port}\r\n",
            fingerprint.join(":")
        );
        if let Some(size) = max_message_size {
            let _ = write!(sdp, "a=max-message-size:{size}\r\n");
        }
        let _ = write!(sdp, "a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n");
        for foundation in 1..=count {
            let kind = self.u8("candidate")?;
            if kind & 0xE0 != 0 {
                return Err(TokenError::Malformed("candidate"));
            }
            let code = usize::from(kind & 3);
            let address = match kind >> 2 & 3 {
                0 => {
                    let b = self.take(4, "candidate")?;
                    Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()
                }
                1 => {
                    let b: [u8; 16] = self
                        .take(16, "candidate")?
                        .try_into()
                        .map_err(|_| TokenError::Malformed("candidate"))?;
                    Ipv6Addr::from(b).to_string()
                }
                2 => {
                    let name = self.str("candidate")?;
                    if !is_host_name(name) {
                        return Err(TokenError::Malformed("candidate"));
                    }
                    name.to_owned()
                }
                _ => return Err(TokenError::Malformed("candidate")),
            };
            let port = self.u16("candidate")?;
            let priority =
                if kind & 1 << 4 != 0 { self.u32("candidate")? } else { default_priority(code) };
            let typ = TYPES[code];
            // Listed for components 1 and 2 with one priority, as webrtc-rs writes its own.
            for component in [1, 2] {
                let _ = write!(
                    sdp,
                    "a=candidate:{foundation} {component} udp {priority} {address} {port} typ {typ}"
                );
                if code != 0 {
                    // Related address withheld, as browsers do; ICE does not use it.
                    sdp.push_str(" raddr 0.0.0.0 rport 0");
                }
                sdp.push_str("\r\n");
            }
        }
        sdp.push_str("a=end-of-candidates\r\n");
        if self.at != self.bytes.len() {
            return Err(TokenError::Malformed("length"));
        }
        Ok(sdp)
    }
}

/// RFC 4648 base32 alphabet.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Characters base32 takes for `bytes` bytes, without padding.
fn base32_len(bytes: usize) -> usize {
    (bytes * 8).div_ceil(5)
}

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(base32_len(bytes.len()));
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = acc << 8 | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[(acc >> bits & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE32[(acc << (5 - bits) & 31) as usize]));
    }
    out
}

/// Decodes unpadded base32 (upper case); `None` on a character outside the alphabet. Extra
/// bits at the end (a length base32 never produces) are dropped: the length field and the
/// checksum catch what that hides.
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = BASE32.iter().position(|&a| a == c)? as u32;
        acc = acc << 5 | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::codec;
    use rand::{Rng, SeedableRng};

    /// An offer as webrtc-rs 0.21 writes it for dcsend (every candidate twice, components 1
    /// and 2), with a second host candidate on IPv6, a server-reflexive and a relayed one.
    const OFFER: &str = "v=0\r\no=- 8241867214700096880 288827393 IN IP4 0.0.0.0\r\ns=-\r\n\
        t=0 0\r\na=fingerprint:sha-256 4B:5E:44:56:00:F6:14:67:53:A5:CB:F0:24:8B:80:4B:F2:3E:\
        33:D6:B8:78:FE:F1:27:4A:9F:B4:9C:1D:BA:8A\r\na=extmap-allow-mixed\r\na=group:BUNDLE 0\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
        a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=sctp-port:5000\r\n\
        a=max-message-size:65536\r\na=ice-ufrag:GdrLGCKISXkmaBCA\r\n\
        a=ice-pwd:PYBVDDagbViCRzWlxXoBtVdCydRpBjWj\r\n\
        a=candidate:607854466 1 udp 2130706431 192.0.2.2 47035 typ host\r\n\
        a=candidate:607854466 2 udp 2130706431 192.0.2.2 47035 typ host\r\n\
        a=candidate:1335018000 1 udp 2130706431 fd00::2 47036 typ host\r\n\
        a=candidate:1335018000 2 udp 2130706431 fd00::2 47036 typ host\r\n\
        a=candidate:2887410102 1 udp 1694498815 203.0.113.7 61000 typ srflx raddr 192.0.2.2 rport 47035\r\n\
        a=candidate:2887410102 2 udp 1694498815 203.0.113.7 61000 typ srflx raddr 192.0.2.2 rport 47035\r\n\
        a=candidate:9 1 udp 16777215 198.51.100.9 3478 typ relay raddr 203.0.113.7 rport 61000\r\n\
        a=end-of-candidates\r\n";

    fn offer() -> SessionDesc {
        SessionDesc { kind: SdpKind::Offer, sdp: OFFER.to_owned() }
    }

    /// The fields of `sdp` a peer connects with, in order: what must survive a round trip.
    fn essentials(sdp: &str) -> Vec<String> {
        let keep = ["ice-ufrag", "ice-pwd", "fingerprint", "setup", "mid", "sctp-port"];
        let mut out: Vec<String> = sdp
            .lines()
            .filter_map(|l| l.trim().strip_prefix("a="))
            .filter(|a| keep.iter().any(|k| a.starts_with(k)) || a.starts_with("max-message"))
            .map(str::to_owned)
            .collect();
        out.sort();
        // Candidates: component 1, address, port, type and priority (not foundation, raddr).
        for line in sdp.lines().filter_map(|l| l.trim().strip_prefix("a=candidate:")) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f[1] == "1" {
                out.push(format!("{} {} {} {} {}", f[2], f[3], f[4], f[5], f[7]));
            }
        }
        out
    }

    #[test]
    fn round_trip_keeps_what_a_peer_connects_with() {
        let token = pack(&offer()).unwrap();
        let back = unpack(&token).unwrap();
        assert_eq!(back.kind, SdpKind::Offer);
        assert_eq!(essentials(&back.sdp), essentials(OFFER));
        // Packing the rebuilt description gives the same token.
        assert_eq!(pack(&back).unwrap(), token);
        // The token carries component 1 only; the SDP lists each for components 1 and 2 again,
        // as webrtc-rs writes its own.
        assert_eq!(back.sdp.matches("a=candidate:").count(), 8, "{}", back.sdp);
        assert_eq!(back.sdp.matches(" 2 udp ").count(), 4, "{}", back.sdp);
    }

    #[test]
    fn the_token_is_short_and_plain() {
        let one_host = OFFER
            .lines()
            .filter(|l| !l.contains("fd00") && !l.contains("srflx") && !l.contains("relay"))
            .map(|l| format!("{l}\n"))
            .collect::<String>();
        let short = pack(&SessionDesc { kind: SdpKind::Offer, sdp: one_host }).unwrap();
        let long = pack(&offer()).unwrap();
        // One host candidate, as on a LAN; four of every kind. Pion's form: 880-920.
        assert_eq!(short.len(), 167, "{short}");
        assert_eq!(long.len(), 219, "{long}");
        for t in [&short, &long] {
            assert!(t.starts_with(PREFIX) && t.bytes().all(|b| b.is_ascii_alphanumeric()), "{t}");
        }
    }

    #[test]
    fn answers_and_other_roles_survive() {
        let sdp = OFFER
            .replace("setup:actpass", "setup:active")
            .replace("mid:0", "mid:data")
            .replace("sctp-port:5000", "sctp-port:5001")
            .replace("a=max-message-size:65536\r\n", "");
        let desc = SessionDesc { kind: SdpKind::Answer, sdp };
        let back = unpack(&pack(&desc).unwrap()).unwrap();
        assert_eq!(back.kind, SdpKind::Answer);
        assert_eq!(essentials(&back.sdp), essentials(&desc.sdp));
        assert!(back.sdp.contains("a=group:BUNDLE data\r\n"));
    }

    #[test]
    fn decode_accepts_it_wrapped_and_in_lower_case() {
        let token = pack(&offer()).unwrap();
        let wrapped: String = token
            .to_lowercase()
            .chars()
            .enumerate()
            .flat_map(|(i, c)| if i % 40 == 39 { vec![c, '\r', '\n'] } else { vec![c] })
            .collect();
        let desc = codec::decode(&format!("  {wrapped}\n"), SdpKind::Offer).unwrap();
        assert_eq!(essentials(&desc.sdp), essentials(OFFER));
        let err = codec::decode(&token, SdpKind::Answer).unwrap_err();
        assert_eq!(err, TokenError::WrongKind { expected: SdpKind::Answer, got: SdpKind::Offer });
    }

    #[test]
    fn a_cut_token_says_how_much_is_missing() {
        let token = pack(&offer()).unwrap();
        for cut in [PREFIX.len() + 8, token.len() / 2, token.len() - 1] {
            let err = unpack(&token[..cut]).unwrap_err();
            assert_eq!(err, TokenError::Truncated(Some((cut, token.len()))), "cut {cut}");
        }
        assert_eq!(unpack(&token[..PREFIX.len() + 2]), Err(TokenError::Truncated(None)));
        assert_eq!(unpack(PREFIX), Err(TokenError::Truncated(None)));
    }

    #[test]
    fn a_changed_character_is_damage() {
        let token = pack(&offer()).unwrap();
        for at in [PREFIX.len() + 10, token.len() / 2, token.len() - 2] {
            let mut t = token.clone().into_bytes();
            t[at] = if t[at] == b'A' { b'B' } else { b'A' };
            let err = unpack(std::str::from_utf8(&t).unwrap()).unwrap_err();
            assert_eq!(err, TokenError::Damaged, "at {at}");
        }
        // Pasted twice over: more bytes than the length says.
        assert_eq!(unpack(&format!("{token}{}", &token[3..])), Err(TokenError::Damaged));
    }

    #[test]
    fn other_versions_and_alphabets_are_named() {
        let token = pack(&offer()).unwrap();
        assert_eq!(
            unpack(&token.replacen("DC1", "DC2", 1)),
            Err(TokenError::UnknownVersion("2".into()))
        );
        assert_eq!(unpack(&format!("{token}1")), Err(TokenError::NotBase32));
        assert_eq!(unpack(&token.replace('A', "=")), Err(TokenError::NotBase32));
    }

    /// Repacks `body` (no checksum yet) with a correct length and checksum, so the parser
    /// behind them is reached.
    fn sealed(mut body: Vec<u8>) -> String {
        let len = (body.len() + CHECK_BYTES) as u16;
        body[1..3].copy_from_slice(&len.to_be_bytes());
        let check = checksum(&body);
        body.extend(check);
        format!("{PREFIX}{}", base32_encode(&body))
    }

    #[test]
    fn lying_fields_behind_a_good_checksum_are_malformed() {
        let mut ok = vec![0u8, 0, 0, 4];
        ok.extend(b"abcd");
        ok.push(22);
        ok.extend([b'p'; 22]);
        ok.push(1);
        ok.extend([7u8; 32]);
        let with = |tail: &[u8]| {
            let mut b = ok.clone();
            b.extend(tail);
            unpack(&sealed(b))
        };
        assert!(with(&[0]).is_ok(), "no candidates is a valid (if useless) token");
        // Counts and lengths beyond the bytes there are, or beyond the limits.
        assert_eq!(with(&[1]), Err(TokenError::Malformed("candidate")));
        assert_eq!(with(&[255]), Err(TokenError::Malformed("candidates")));
        assert_eq!(with(&[1, 0b1000, 200, b'x']), Err(TokenError::Malformed("candidate")));
        assert_eq!(with(&[1, 0b1100, 1, 2, 3, 4, 0, 9]), Err(TokenError::Malformed("candidate")));
        assert_eq!(with(&[1, 0b100000, 1, 2, 3, 4, 0, 9]), Err(TokenError::Malformed("candidate")));
        assert_eq!(with(&[0, 0]), Err(TokenError::Malformed("length")));
        // A host name that would break the SDP line.
        assert_eq!(
            with(&[1, 0b1000, 3, b'a', b' ', b'b', 0, 9]),
            Err(TokenError::Malformed("candidate"))
        );
        let mut bad_hash = ok.clone();
        bad_hash[3 + 5 + 23] = 9;
        bad_hash.push(0);
        assert_eq!(unpack(&sealed(bad_hash)), Err(TokenError::Malformed("fingerprint")));
        let mut bad_flags = ok.clone();
        bad_flags[0] = 0x80;
        bad_flags.push(0);
        assert_eq!(unpack(&sealed(bad_flags)), Err(TokenError::Malformed("flags")));
        let mut bad_setup = ok.clone();
        bad_setup[0] = 0b110;
        bad_setup.push(0);
        assert_eq!(unpack(&sealed(bad_setup)), Err(TokenError::Malformed("setup")));
        let mut bad_ufrag = ok.clone();
        bad_ufrag[4] = b'\n';
        bad_ufrag.push(0);
        assert_eq!(unpack(&sealed(bad_ufrag)), Err(TokenError::Malformed("ice-ufrag")));
        // A length field shorter than the header and checksum.
        assert_eq!(
            unpack(&format!("{PREFIX}{}", base32_encode(&[0, 0, 2, 0, 0]))),
            Err(TokenError::Damaged)
        );
    }

    #[test]
    fn what_the_layout_cannot_carry_is_not_packed() {
        let cases = [
            OFFER.replace("typ host\r\n", "typ host tcptype passive\r\n").replace(" udp ", " tcp "),
            OFFER.replace("a=extmap-allow-mixed", "a=ice-lite"),
            OFFER.replace("sha-256", "md5"),
            OFFER.replace("a=sctp-port:5000\r\n", ""),
            OFFER.replace("a=ice-pwd:PYBVDDagbViCRzWlxXoBtVdCydRpBjWj\r\n", ""),
            format!("{OFFER}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"),
            OFFER.replace("192.0.2.2 47035", "bad_name! 47035"),
            OFFER.replace("a=ice-ufrag:GdrLGCKISXkmaBCA", "a=ice-ufrag:"),
            OFFER.replace("a=mid:0", "a=mid:é"),
            OFFER.replace(
                "a=ice-ufrag:GdrLGCKISXkmaBCA",
                &format!("a=ice-ufrag:{}", "u".repeat(300)),
            ),
        ];
        for sdp in cases {
            assert!(
                pack(&SessionDesc { kind: SdpKind::Offer, sdp: sdp.clone() }).is_err(),
                "{sdp}"
            );
        }
        let many: String = (0..=MAX_CANDIDATES)
            .map(|i| format!("a=candidate:{i} 1 udp 1 10.0.0.{i} 9 typ host\r\n"))
            .collect();
        let sdp = OFFER.replace("a=end-of-candidates", &format!("{many}a=end-of-candidates"));
        assert!(pack(&SessionDesc { kind: SdpKind::Offer, sdp }).is_err());
    }

    #[test]
    fn mdns_names_and_odd_priorities_survive() {
        let sdp = OFFER.replace(
            "192.0.2.2 47035 typ host\r\na=candidate:607854466 2",
            "4b5e4456-00f6-1467.local 47035 typ host\r\na=candidate:607854466 2",
        );
        let sdp = sdp.replace("1694498815", "1694498816");
        let desc = SessionDesc { kind: SdpKind::Offer, sdp };
        let back = unpack(&pack(&desc).unwrap()).unwrap();
        assert_eq!(essentials(&back.sdp), essentials(&desc.sdp));
    }

    #[test]
    fn base32_matches_rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, coded) in vectors {
            assert_eq!(base32_encode(plain.as_bytes()), coded);
            assert_eq!(base32_decode(coded).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0xDC1);
        let token = pack(&offer()).unwrap();
        for _ in 0..3000 {
            let len = (rng.next_u64() % 300) as usize;
            let body: Vec<u8> = (0..len).map(|_| BASE32[(rng.next_u64() % 32) as usize]).collect();
            let _ = unpack(&format!("{PREFIX}{}", String::from_utf8(body).unwrap()));
            // A valid token with bytes changed behind a recomputed checksum.
            let mut bytes = base32_decode(&token[3..]).unwrap();
            bytes.truncate(bytes.len() - CHECK_BYTES);
            let at = 3 + (rng.next_u64() as usize) % (bytes.len() - 3);
            bytes[at] = rng.next_u64() as u8;
            let _ = unpack(&sealed(bytes));
        }
    }
}
