//! Pure codec for the copy-paste signaling token.
//!
//! Pion's format, which [`encode`] writes, is standard base64 (padded, one line) of the JSON
//! `{"type":"offer"|"answer","sdp":"..."}`, so dcsend pairs with the Pion and webrtc-rs examples
//! and browser demos out of the box. [`decode`] also accepts that JSON bare, a bare SDP, and
//! dcsend's compact form (`DC1...`, `signal::compact`), with whatever whitespace and line breaks
//! a terminal added.
//!
//! Data flow: `SessionDesc` --[`encode`]--> token text --(paste)--> [`decode`] --> `SessionDesc`.
//!
//! Boundaries: this module does no I/O. It must not import `tokio`, `webrtc`, `std::fs`/`std::io`
//! or anything else from dcsend but `signal::compact` (pure too); it depends only on `base64`,
//! `serde`, `serde_json` and `thiserror`. Reading and writing tokens lives in `signal::paste`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use serde::{Deserialize, Serialize};

use crate::signal::compact;

/// Which side of the offer/answer exchange a description is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpKind {
    Offer,
    Answer,
}

impl fmt::Display for SdpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SdpKind::Offer => "offer",
            SdpKind::Answer => "answer",
        })
    }
}

/// A session description as carried in the token: the JSON `{"type":...,"sdp":...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDesc {
    #[serde(rename = "type")]
    pub kind: SdpKind,
    pub sdp: String,
}

/// Why a pasted token could not be decoded. Each message is one line saying what is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    #[error("the token is empty")]
    Empty,
    #[error("the token is not base64 (nor JSON, nor an SDP)")]
    NotBase64,
    /// Carries serde_json's message, flattened to one line.
    #[error("the token's JSON is invalid: {0}")]
    NotJson(String),
    #[error("the token's JSON has no sdp field")]
    MissingSdp,
    /// Carries the `type` value as found (e.g. `pranswer`, `rollback`).
    #[error("unknown description type {0:?}")]
    UnknownType(String),
    #[error("expected an {expected}, got an {got}")]
    WrongKind { expected: SdpKind, got: SdpKind },
    #[error("the token's sdp is not an SDP (it must start with v=0)")]
    NotSdp,
    #[error("the SDP has no data channel section (m=application ... webrtc-datachannel)")]
    NoDataChannel,
    /// The text ends before the token does: a paste that lost its end. Carries (characters
    /// pasted, characters of the whole token) when the form says how long it is.
    #[error("this looks cut off{}", shown_length(*.0))]
    Truncated(Option<(usize, usize)>),
    /// The peer's token is this side's own description pasted back (same ICE ufrag and DTLS
    /// fingerprint): `kind` is ours.
    #[error("this is your own {0}, not the peer's")]
    OwnToken(SdpKind),
    /// A compact token of a version this build does not read (carries the version character).
    #[error(
        "this compact token is of version {0}, which this dcsend does not read: update dcsend, \
         or run the other side with --long-token"
    )]
    UnknownVersion(String),
    #[error("the compact token has characters other than A-Z and 2-7")]
    NotBase32,
    /// The compact token's checksum does not match: a character changed on the way.
    #[error("the token is damaged (its checksum does not match)")]
    Damaged,
    /// The compact token's fields contradict its layout (names the field). Checksummed, so
    /// this is a bug in the dcsend that made it, or a forgery, not a copying mistake.
    #[error("the compact token is malformed ({0})")]
    Malformed(&'static str),
}

fn shown_length(chars: Option<(usize, usize)>) -> String {
    match chars {
        Some((got, want)) => format!(" ({got} of its {want} characters)"),
        None => String::new(),
    }
}

/// Longest serde_json message kept in [`TokenError::NotJson`], in characters.
const MAX_JSON_ERROR_CHARS: usize = 200;

/// Encodes `desc` as a Pion token: standard padded base64 of the JSON, on one line.
pub fn encode(desc: &SessionDesc) -> String {
    // Cannot fail: the struct is two strings' worth of plain data with derived Serialize.
    let json = serde_json::to_string(desc).expect("SessionDesc always serializes");
    STANDARD.encode(json)
}

/// Decodes a pasted token into a description of kind `expect`.
///
/// Accepts: the compact token, the base64 token, the bare JSON, or a bare SDP (its kind is then
/// `expect`), with any whitespace or line breaks a terminal added. The form is chosen on the
/// trimmed input: `DC` and a digit means compact ([`compact::unpack`]), `{` means JSON, `v=`
/// means SDP, anything else is base64 (all whitespace is removed before decoding;
/// missing `=` padding is tolerated). For the bare forms the SDP's lines are trimmed, blank lines
/// dropped and line endings normalised to `\r\n`; the base64 form returns the SDP byte for byte.
///
/// Errors: [`TokenError`] says which check failed: empty input, a token cut off (base64 of JSON
/// at a length base64 cannot have, or JSON that stops before its end), not base64/JSON, no
/// `sdp`, an unknown `type`, a kind other than `expect`, an `sdp` not starting with `v=0`, or
/// no `m=application` section. Never panics, whatever the input.
pub fn decode(input: &str, expect: SdpKind) -> Result<SessionDesc, TokenError> {
    decode_from_peer(input, expect, None)
}

/// [`decode`], and also [`TokenError::OwnToken`] when the token is `ours` pasted back: its ICE
/// ufrag and DTLS fingerprint are those of `ours` (both are fresh for every connection, so a
/// peer's token never has them). That check comes before the kind check, so that our own offer
/// pasted where the answer belongs is named as such, not as "an offer".
pub fn decode_from_peer(
    input: &str,
    expect: SdpKind,
    ours: Option<&SessionDesc>,
) -> Result<SessionDesc, TokenError> {
    let desc = decode_unchecked(input, expect)?;
    if let Some(ours) = ours
        && same_endpoint(&desc.sdp, &ours.sdp)
    {
        return Err(TokenError::OwnToken(ours.kind));
    }
    validate(&desc, expect)?;
    Ok(desc)
}

/// True when both SDPs carry the same ICE ufrag and the same DTLS fingerprint.
fn same_endpoint(a: &str, b: &str) -> bool {
    let ufrag = |sdp| attribute(sdp, "ice-ufrag");
    let fingerprint = |sdp| attribute(sdp, "fingerprint");
    ufrag(a).is_some() && ufrag(a) == ufrag(b) && fingerprint(a) == fingerprint(b)
}

/// The value of the first `a=NAME:VALUE` line of `sdp`, at any level.
pub fn attribute<'a>(sdp: &'a str, name: &str) -> Option<&'a str> {
    sdp.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("a=")?.strip_prefix(name)?.strip_prefix(':')?;
        Some(rest.trim())
    })
}

/// Decodes any form without checking the kind.
fn decode_unchecked(input: &str, expect: SdpKind) -> Result<SessionDesc, TokenError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(TokenError::Empty);
    }
    let desc = if compact::is_compact(trimmed) {
        compact::unpack(trimmed)?
    } else if trimmed.starts_with('{') {
        let mut desc = parse_json(trimmed, expect)?;
        desc.sdp = normalize_sdp(&desc.sdp);
        desc
    } else if trimmed.starts_with("v=") {
        SessionDesc { kind: expect, sdp: normalize_sdp(trimmed) }
    } else {
        let joined: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = match STANDARD_PAD_INDIFFERENT.decode(&joined) {
            Ok(bytes) => bytes,
            Err(_) if cut_base64_json(&joined) => {
                return Err(TokenError::Truncated(None));
            }
            Err(_) => return Err(TokenError::NotBase64),
        };
        let text = String::from_utf8(bytes).map_err(|_| TokenError::NotBase64)?;
        let text = text.trim();
        if text.starts_with("v=") {
            // Someone base64'd the bare SDP; take it as such rather than failing on JSON.
            SessionDesc { kind: expect, sdp: normalize_sdp(text) }
        } else {
            parse_json(text, expect)?
        }
    };
    Ok(desc)
}

/// True when `b64` (which the base64 decoder refused) is base64 of JSON cut short: base64
/// characters only, no padding, and its whole 4-character groups decode to JSON that stops
/// before its end. Cut anywhere, a token leaves a length or final bits the decoder refuses.
fn cut_base64_json(b64: &str) -> bool {
    if !b64.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/') {
        return false;
    }
    // ASCII only (checked above), so any index is a char boundary.
    let whole = &b64[..b64.len() / 4 * 4];
    let Ok(bytes) = STANDARD_PAD_INDIFFERENT.decode(whole) else { return false };
    bytes.starts_with(b"{")
        && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err_and(|e| e.is_eof())
}

/// Value of `a=max-message-size:N` in the SDP's `m=application` section, if any.
///
/// Per RFC 8841 §6 the attribute is media-level and `0` means "no limit"; that is returned as
/// `Some(0)` for the caller to interpret. Attributes in other media sections, at session level,
/// or with an unparsable value are ignored.
pub fn max_message_size(sdp: &str) -> Option<usize> {
    let mut in_application = false;
    for line in sdp.lines().map(str::trim) {
        if let Some(media) = line.strip_prefix("m=") {
            in_application = media.starts_with("application");
        } else if in_application
            && let Some(value) = line.strip_prefix("a=max-message-size:")
            && let Ok(size) = value.trim().parse()
        {
            return Some(size);
        }
    }
    None
}

/// The JSON as found, before its fields are checked one by one.
#[derive(Deserialize)]
struct RawDesc {
    #[serde(rename = "type")]
    kind: Option<String>,
    sdp: Option<String>,
}

/// Parses the token JSON. A missing `type` is taken as `expect` (some demos send only the SDP).
fn parse_json(text: &str, expect: SdpKind) -> Result<SessionDesc, TokenError> {
    // Raw CR, LF and TAB are invalid inside JSON strings and mere whitespace outside them, so a
    // line break a terminal put in the middle of the sdp string can be dropped safely.
    let text: String = text.chars().filter(|c| !matches!(c, '\r' | '\n' | '\t')).collect();
    let raw: RawDesc = serde_json::from_str(&text).map_err(|e| {
        if e.is_eof() {
            // The JSON stops in the middle: the paste lost its end.
            TokenError::Truncated(None)
        } else {
            TokenError::NotJson(one_line(&e.to_string()))
        }
    })?;
    let sdp = raw.sdp.ok_or(TokenError::MissingSdp)?;
    let kind = match raw.kind.as_deref().map(str::trim) {
        None => expect,
        Some(t) if t.eq_ignore_ascii_case("offer") => SdpKind::Offer,
        Some(t) if t.eq_ignore_ascii_case("answer") => SdpKind::Answer,
        Some(t) => return Err(TokenError::UnknownType(t.to_owned())),
    };
    Ok(SessionDesc { kind, sdp })
}

fn validate(desc: &SessionDesc, expect: SdpKind) -> Result<(), TokenError> {
    if desc.kind != expect {
        return Err(TokenError::WrongKind { expected: expect, got: desc.kind });
    }
    if !desc.sdp.starts_with("v=0") {
        return Err(TokenError::NotSdp);
    }
    if !desc.sdp.lines().any(|l| l.trim_start().starts_with("m=application")) {
        return Err(TokenError::NoDataChannel);
    }
    Ok(())
}

/// Trims each line, drops blank ones and joins them with `\r\n` (RFC 8866 line endings).
fn normalize_sdp(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len() + 64);
    for line in sdp.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()) {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

/// Flattens a message to one line and caps its length so errors stay readable.
fn one_line(msg: &str) -> String {
    let flat: String = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(MAX_JSON_ERROR_CHARS) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A hand-written answer in the shape webrtc-rs and browsers produce for a data channel
    /// (shared with benches/hot_path.rs).
    const SDP: &str = include_str!("sample.sdp");

    fn offer() -> SessionDesc {
        SessionDesc { kind: SdpKind::Offer, sdp: SDP.to_owned() }
    }

    fn json_of(kind: &str, sdp: &str) -> String {
        serde_json::json!({ "type": kind, "sdp": sdp }).to_string()
    }

    /// Inserts `sep` every `every` characters, like a terminal hard-wrapping a long line.
    fn wrap(text: &str, every: usize, sep: &str) -> String {
        let chars: Vec<char> = text.chars().collect();
        chars.chunks(every).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join(sep)
    }

    #[test]
    fn kind_displays_lowercase() {
        assert_eq!(SdpKind::Offer.to_string(), "offer");
        assert_eq!(SdpKind::Answer.to_string(), "answer");
    }

    #[test]
    fn encode_is_pion_format() {
        let token = encode(&offer());
        assert!(!token.contains(['\n', '\r', ' ']), "one line");
        assert_eq!(token.len() % 4, 0, "padded");
        let json = STANDARD.decode(&token).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["type"], "offer");
        assert_eq!(value["sdp"], SDP);
        // Pion writes `type` first; keep the same field order.
        assert!(String::from_utf8(json).unwrap().starts_with(r#"{"type":"offer","sdp":"v=0"#));
    }

    #[test]
    fn round_trip_both_kinds() {
        for kind in [SdpKind::Offer, SdpKind::Answer] {
            let desc = SessionDesc { kind, sdp: SDP.to_owned() };
            assert_eq!(decode(&encode(&desc), kind), Ok(desc));
        }
    }

    #[test]
    fn round_trip_keeps_sdp_bytes_exactly() {
        // The base64 form must not touch the SDP, even odd line endings.
        let sdp = SDP.replace("\r\n", "\n");
        let desc = SessionDesc { kind: SdpKind::Answer, sdp };
        assert_eq!(decode(&encode(&desc), SdpKind::Answer), Ok(desc));
    }

    #[test]
    fn accepts_bare_json() {
        let json = json_of("offer", SDP);
        assert_eq!(decode(&json, SdpKind::Offer), Ok(offer()));
        assert_eq!(decode(&format!("\n  {json}  \n"), SdpKind::Offer), Ok(offer()));
    }

    #[test]
    fn accepts_bare_json_wrapped_by_terminal() {
        let json = json_of("offer", SDP);
        for sep in ["\n", "\r\n"] {
            assert_eq!(decode(&wrap(&json, 64, sep), SdpKind::Offer), Ok(offer()), "sep {sep:?}");
        }
    }

    #[test]
    fn bare_json_sdp_line_endings_are_normalised() {
        let json = json_of("offer", &SDP.replace("\r\n", "\n"));
        assert_eq!(decode(&json, SdpKind::Offer), Ok(offer()));
    }

    #[test]
    fn bare_json_without_type_takes_expected_kind() {
        let json = serde_json::json!({ "sdp": SDP }).to_string();
        assert_eq!(decode(&json, SdpKind::Offer), Ok(offer()));
    }

    #[test]
    fn accepts_bare_sdp_with_any_line_endings() {
        let variants = [
            SDP.to_owned(),
            SDP.replace("\r\n", "\n"),
            SDP.replace("\r\n", "\r"),
            format!("\n\n{}\n\n", SDP.replace("\r\n", "  \n\n")),
        ];
        for input in variants {
            assert_eq!(decode(&input, SdpKind::Offer), Ok(offer()), "input {input:?}");
        }
    }

    #[test]
    fn accepts_base64_of_bare_sdp() {
        assert_eq!(decode(&STANDARD.encode(SDP), SdpKind::Offer), Ok(offer()));
    }

    #[test]
    fn accepts_token_with_whitespace_anywhere() {
        let token = encode(&offer());
        let inputs = [
            wrap(&token, 64, "\n"),
            wrap(&token, 64, "\r\n"),
            wrap(&token, 76, "\r\n"),
            wrap(&token, 7, " \t "),
            format!("\n\n   {}\r\n\r\n", wrap(&token, 80, "\r\n")),
        ];
        for input in inputs {
            assert_eq!(decode(&input, SdpKind::Offer), Ok(offer()));
        }
    }

    #[test]
    fn accepts_token_without_padding() {
        let desc = SessionDesc { kind: SdpKind::Offer, sdp: format!("{SDP}a=x\r\n") };
        let token = encode(&desc);
        assert!(token.ends_with('='), "fixture must need padding");
        assert_eq!(decode(token.trim_end_matches('='), SdpKind::Offer), Ok(desc));
    }

    #[test]
    fn error_empty() {
        for input in ["", "   ", "\r\n\t\n"] {
            assert_eq!(decode(input, SdpKind::Offer), Err(TokenError::Empty));
        }
    }

    #[test]
    fn error_not_base64() {
        for input in ["hello world!", "not*base64", "abc", "////"] {
            assert_eq!(decode(input, SdpKind::Offer), Err(TokenError::NotBase64), "{input:?}");
        }
    }

    #[test]
    fn error_not_json() {
        let token = STANDARD.encode("this is not json");
        assert!(matches!(decode(&token, SdpKind::Offer), Err(TokenError::NotJson(_))));
        assert!(matches!(decode("{\"type\": nope}", SdpKind::Offer), Err(TokenError::NotJson(_))));
        let err = decode(r#"{"type":"offer","sdp":5}"#, SdpKind::Offer).unwrap_err();
        assert!(matches!(err, TokenError::NotJson(ref m) if m.contains("invalid type")), "{err}");
    }

    #[test]
    fn error_missing_sdp() {
        let json = r#"{"type":"offer"}"#;
        assert_eq!(decode(json, SdpKind::Offer), Err(TokenError::MissingSdp));
        assert_eq!(decode(&STANDARD.encode(json), SdpKind::Offer), Err(TokenError::MissingSdp));
    }

    #[test]
    fn error_unknown_type() {
        let err = decode(&json_of("pranswer", SDP), SdpKind::Answer).unwrap_err();
        assert_eq!(err, TokenError::UnknownType("pranswer".into()));
        assert_eq!(err.to_string(), "unknown description type \"pranswer\"");
    }

    #[test]
    fn error_wrong_kind() {
        let err = decode(&encode(&offer()), SdpKind::Answer).unwrap_err();
        assert_eq!(err, TokenError::WrongKind { expected: SdpKind::Answer, got: SdpKind::Offer });
        assert_eq!(err.to_string(), "expected an answer, got an offer");
    }

    #[test]
    fn error_not_sdp() {
        let desc = SessionDesc { kind: SdpKind::Offer, sdp: "hello".into() };
        assert_eq!(decode(&encode(&desc), SdpKind::Offer), Err(TokenError::NotSdp));
        assert_eq!(decode(&json_of("offer", "v=1\r\n"), SdpKind::Offer), Err(TokenError::NotSdp));
    }

    #[test]
    fn error_no_data_channel() {
        let audio =
            SDP.replace("m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "m=audio 9 x 0");
        let desc = SessionDesc { kind: SdpKind::Offer, sdp: audio.clone() };
        assert_eq!(decode(&encode(&desc), SdpKind::Offer), Err(TokenError::NoDataChannel));
        assert_eq!(decode(&audio, SdpKind::Offer), Err(TokenError::NoDataChannel));
    }

    #[test]
    fn a_cut_token_is_named_as_such_in_every_form() {
        let token = encode(&offer());
        // Every cut of the base64 form: a length the decoder refuses, or JSON that stops.
        let last = token.trim_end_matches('=').len() - 1; // a missing `=` is tolerated, not a cut
        for cut in [12, 13, 14, 15, token.len() / 2, token.len() - 5, last] {
            let err = decode(&token[..cut], SdpKind::Offer).unwrap_err();
            assert_eq!(err, TokenError::Truncated(None), "cut at {cut} of {}", token.len());
        }
        let json = json_of("offer", SDP);
        let err = decode(&json[..json.len() - 10], SdpKind::Offer).unwrap_err();
        assert_eq!(err, TokenError::Truncated(None));
        assert_eq!(err.to_string(), "this looks cut off");
        let counted = TokenError::Truncated(Some((80, 120)));
        assert_eq!(counted.to_string(), "this looks cut off (80 of its 120 characters)");
    }

    #[test]
    fn base64_of_something_else_is_not_called_cut() {
        assert_eq!(
            decode(&STANDARD.encode("hello, world")[..9], SdpKind::Offer),
            Err(TokenError::NotBase64)
        );
    }

    #[test]
    fn our_own_token_pasted_back_is_named() {
        let ours = offer();
        let err = decode_from_peer(&encode(&ours), SdpKind::Answer, Some(&ours)).unwrap_err();
        assert_eq!(err, TokenError::OwnToken(SdpKind::Offer));
        assert_eq!(err.to_string(), "this is your own offer, not the peer's");
        // Any form of it.
        let err = decode_from_peer(SDP, SdpKind::Answer, Some(&ours)).unwrap_err();
        assert_eq!(err, TokenError::OwnToken(SdpKind::Offer));
        // Another peer's offer is "an offer", and its answer is taken.
        let theirs = SDP.replace("EsAwrZVvRdaNHqsF", "OtherUfragOther1");
        let err =
            decode_from_peer(&json_of("offer", &theirs), SdpKind::Answer, Some(&ours)).unwrap_err();
        assert_eq!(err, TokenError::WrongKind { expected: SdpKind::Answer, got: SdpKind::Offer });
        let answer = SessionDesc { kind: SdpKind::Answer, sdp: normalize_sdp(&theirs) };
        assert_eq!(decode_from_peer(&encode(&answer), SdpKind::Answer, Some(&ours)), Ok(answer));
    }

    #[test]
    fn attribute_reads_the_first_value() {
        assert_eq!(attribute(SDP, "ice-ufrag"), Some("EsAwrZVvRdaNHqsF"));
        assert_eq!(attribute(SDP, "setup"), Some("actpass"));
        assert_eq!(attribute(SDP, "ice"), None, "a prefix of a name is not the name");
        assert_eq!(attribute("", "mid"), None);
    }

    #[test]
    fn error_messages_are_one_line() {
        let errors = [
            TokenError::Empty,
            TokenError::NotBase64,
            TokenError::NotJson("x".into()),
            TokenError::MissingSdp,
            TokenError::UnknownType("a\nb".into()),
            TokenError::WrongKind { expected: SdpKind::Offer, got: SdpKind::Answer },
            TokenError::NotSdp,
            TokenError::NoDataChannel,
            TokenError::Truncated(Some((1, 2))),
            TokenError::OwnToken(SdpKind::Offer),
        ];
        for err in errors {
            let msg = err.to_string();
            assert!(!msg.is_empty() && !msg.contains(['\n', '\r']), "{msg:?}");
        }
    }

    #[test]
    fn not_json_message_is_flattened_and_capped() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        let long = "x ".repeat(1000);
        assert_eq!(one_line(&long).chars().count(), MAX_JSON_ERROR_CHARS + 3);
    }

    #[test]
    fn garbage_never_panics() {
        // Deterministic, so a failure reproduces.
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x9E37_79B9_7F4A_7C15);
        let mut next = move || rng.next_u64();
        let token = encode(&offer());
        for round in 0..2000 {
            let len = (next() % 512) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = decode(&String::from_utf8_lossy(&bytes), SdpKind::Offer);
            // Also corrupt a valid token: flip one char, truncate, or prefix a form marker.
            let mut chars: Vec<char> = token.chars().collect();
            let at = (next() as usize) % chars.len();
            chars[at] = char::from(next() as u8 & 0x7f);
            let corrupted: String = chars.into_iter().collect();
            let _ = decode(&corrupted, SdpKind::Answer);
            let _ = decode(&token[..round % token.len()], SdpKind::Offer);
            let _ = decode(&format!("{{{}", &corrupted[..at]), SdpKind::Offer);
            let _ = decode(&format!("v={}", &corrupted[..at]), SdpKind::Offer);
        }
    }

    #[test]
    fn huge_input_never_panics() {
        let huge = "A".repeat(8 << 20);
        assert!(matches!(decode(&huge, SdpKind::Offer), Err(TokenError::NotJson(_))));
        let huge_json = format!("{{\"sdp\":\"{}", "v".repeat(4 << 20));
        assert_eq!(decode(&huge_json, SdpKind::Offer), Err(TokenError::Truncated(None)));
        let huge_sdp = format!("v=0\r\n{}", "a=x\r\n".repeat(1 << 20));
        assert_eq!(decode(&huge_sdp, SdpKind::Offer), Err(TokenError::NoDataChannel));
    }

    #[test]
    fn max_message_size_reads_application_section() {
        assert_eq!(max_message_size(SDP), Some(262_144));
        assert_eq!(max_message_size(&SDP.replace("\r\n", "\n")), Some(262_144));
        assert_eq!(max_message_size(&SDP.replace("262144", "0")), Some(0));
    }

    #[test]
    fn max_message_size_absent_or_elsewhere() {
        let without = SDP.replace("a=max-message-size:262144\r\n", "");
        assert_eq!(max_message_size(&without), None);
        // Session level (before any m= line) and other media sections do not count.
        let session_level = without.replace("t=0 0\r\n", "t=0 0\r\na=max-message-size:1024\r\n");
        assert_eq!(max_message_size(&session_level), None);
        let audio = format!("{without}m=audio 9 RTP/AVP 0\r\na=max-message-size:1024\r\n");
        assert_eq!(max_message_size(&audio), None);
        assert_eq!(max_message_size(&SDP.replace("262144", "lots")), None);
        assert_eq!(max_message_size(""), None);
    }
}
