//! The dcsend wire protocol, version 1 (specified in `docs/protocol.md`): the control
//! messages and the payload digest. Pure: no I/O, no async.
//!
//! Data travels as plain binary data-channel messages holding payload bytes only (no
//! header). Control travels as text messages, each holding one JSON object tagged by `"t"`:
//! [`Control::encode`] produces one, [`Control::decode`] checks and parses one. Both ends
//! hash the payload of each item with [`Digest`] and compare the `eof` digests.
//!
//! The resume extension adds `resume` to `hello` and `file`, and two messages, [`Control::Have`]
//! and [`Control::Skip`], that a side sends only once the other asked for them.
//!
//! Must not import: webrtc, tokio, indicatif, `cli`, or anything else in dcsend.

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// The protocol version this build speaks, sent in [`Control::Hello`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest control message we accept (bytes); larger is a protocol error.
///
/// A control message carries at most a file name (≤ 255 bytes) and a few numbers, so 16 KiB
/// leaves ample room while bounding what a hostile peer can make us parse.
pub const MAX_CONTROL_BYTES: usize = 16 * 1024;

/// Length of a SHA-256 digest in lowercase hex.
const SHA256_HEX_LEN: usize = 64;

/// One control message. Serialised as a JSON object whose `"t"` field names the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum Control {
    /// First message from each side. `v` = protocol version; `role` "send"|"recv"; `app`
    /// e.g. "dcsend/0.1.0"; `resume`: the side takes part in resuming (a receiver then
    /// answers `File { resume: true }` with `Have`). `resume` absent or null is `false`.
    /// `threshold`, from a receiver: the largest threshold it wants the sender to use (a
    /// browser, whose UDP receive path drops bursts); dcsend never sends it (not even as null).
    ///
    /// The tree extension (`docs/protocol.md`, "Trees"): from a receiver, `tree` says whether
    /// its output can hold a folder (`Some(true)`: `-o DIR/`; `Some(false)`: stdout or one
    /// file; `None`: a peer that predates trees). From a sender, `tree: Some(true)` says that
    /// its items include paths in folders, and `files`/`bytes` announce the whole transfer
    /// (files to come and their total size; `bytes` is `None` when a stream's size is
    /// unknown). Each is written only when set.
    ///
    /// The compression extension: `zstd`, from a receiver, says it takes items whose binary
    /// messages are framed and may be zstd-compressed (see `codec`); written only when true.
    Hello {
        v: u32,
        role: Role,
        app: String,
        #[serde(default, deserialize_with = "null_is_false")]
        resume: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tree: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        files: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes: Option<u64>,
        #[serde(default, deserialize_with = "null_is_false", skip_serializing_if = "is_false")]
        zstd: bool,
    },
    /// Starts one item. `name`: `None` for a stream (stdin). `size`: `None` when unknown
    /// (stdin). Missing fields decode as `None`. `resume`: the sender waits for a `Have`
    /// and starts the payload with a `Skip` (absent or null is `false`).
    ///
    /// The tree extension: `name` may be a relative `/`-separated path (only to a receiver
    /// whose `hello` said `tree: true`); `exec`: the file is executable (written only when
    /// true); `mtime`: its modification time in nanoseconds since the Unix epoch (written
    /// only when known).
    ///
    /// The compression extension: `zstd` (only to a receiver whose `hello` said `zstd`): each
    /// binary message of this item starts with a one-byte tag, and may be compressed (see
    /// `codec`); written only when true.
    File {
        name: Option<String>,
        size: Option<u64>,
        #[serde(default, deserialize_with = "null_is_false")]
        resume: bool,
        #[serde(default, deserialize_with = "null_is_false", skip_serializing_if = "is_false")]
        exec: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mtime: Option<u64>,
        #[serde(default, deserialize_with = "null_is_false", skip_serializing_if = "is_false")]
        zstd: bool,
    },
    /// The tree extension, sender → receiver, between items: the folder `name` (a relative
    /// `/`-separated path) exists, with modification time `mtime` (nanoseconds since the Unix
    /// epoch, when known). Sent for every folder of a tree before the items in it, so an
    /// empty folder arrives too. Not acknowledged.
    Dir {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mtime: Option<u64>,
    },
    /// Receiver → sender, answering `File { resume: true }`: it holds the item's first
    /// `bytes` bytes (0: none), whose hex SHA-256 is `sha256`.
    Have { bytes: u64, sha256: String },
    /// Sender → receiver, answering `Have`: the payload that follows starts at byte `bytes`
    /// of the item, either the `Have`'s count (prefix verified) or 0 (start over).
    Skip { bytes: u64 },
    /// Ends the current item: its byte count and the hex SHA-256 of exactly those bytes
    /// (a prefix kept by `Skip` included).
    Eof { bytes: u64, sha256: String },
    /// Receiver → sender, after an `Eof`: it has `bytes` bytes and the digest matched
    /// (`ok = true`) or not (`ok = false`).
    Ack { bytes: u64, ok: bool },
    /// Sender → receiver: no more items follow; the receiver then closes, without an ack.
    Done,
    /// Either side: stop now, with a human reason.
    Abort { reason: String },
}

/// Which end of a transfer a peer is, as announced in [`Control::Hello`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sends items.
    Send,
    /// Receives items.
    Recv,
}

/// Why a text message is not a valid control message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The message exceeds [`MAX_CONTROL_BYTES`]; it was not parsed.
    #[error("control message is {len} bytes, over the {MAX_CONTROL_BYTES}-byte limit")]
    TooLarge { len: usize },
    /// Not a JSON object, an unknown `"t"` tag, or a missing or mistyped field. Holds the
    /// parser's message, which names the offending tag or field.
    #[error("malformed control message: {0}")]
    Malformed(String),
    /// An `eof` or `have` whose `sha256` is not 64 lowercase hex characters. Holds that
    /// value (shortened when long).
    #[error("sha256 is not {SHA256_HEX_LEN} lowercase hex characters: {0:?}")]
    BadDigest(String),
}

impl Control {
    /// Serialises to the one-line JSON text sent as a text data-channel message. Optional
    /// fields are written as `null`, never omitted.
    ///
    /// Does not enforce [`MAX_CONTROL_BYTES`]: callers keep `app` and `reason` short.
    pub fn encode(&self) -> String {
        // Cannot fail: every field is a string, number, bool or null, and every key a string.
        serde_json::to_string(self).expect("a Control always serialises to JSON")
    }

    /// Parses one text message. Unknown extra fields are ignored, so later versions can add
    /// fields without breaking this one.
    ///
    /// Returns [`WireError::TooLarge`] (checked before parsing) for more than
    /// [`MAX_CONTROL_BYTES`], [`WireError::BadDigest`] for an `eof` or `have` whose digest is
    /// not lowercase hex SHA-256, and [`WireError::Malformed`] for anything else that is not a
    /// control message, including an unknown `"t"`. Never panics.
    pub fn decode(text: &str) -> Result<Control, WireError> {
        if text.len() > MAX_CONTROL_BYTES {
            return Err(WireError::TooLarge { len: text.len() });
        }
        // Go through a `Value` first: serde's internally tagged enums would also accept a
        // JSON array whose first element is the tag (`["done"]`), which is not our format.
        let value: serde_json::Value = serde_json::from_str(text).map_err(malformed)?;
        if !value.is_object() {
            return Err(WireError::Malformed(format!(
                "expected a JSON object, got {}",
                json_kind(&value)
            )));
        }
        let msg: Control = serde_json::from_value(value).map_err(malformed)?;
        if let Control::Eof { sha256, .. } | Control::Have { sha256, .. } = &msg
            && !is_sha256_hex(sha256)
        {
            return Err(WireError::BadDigest(shorten(sha256, KEEP_VALUE_CHARS)));
        }
        Ok(msg)
    }
}

/// `resume` fields: absent (via `default`) and `null` both mean `false`, as the spec says of
/// every optional field.
fn null_is_false<'de, D: serde::Deserializer<'de>>(de: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(de)?.unwrap_or(false))
}

/// `skip_serializing_if` for flags written only when set.
fn is_false(b: &bool) -> bool {
    !*b
}

/// Names a JSON value's type for error messages.
fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// True for exactly 64 characters of `0-9a-f`.
fn is_sha256_hex(s: &str) -> bool {
    s.len() == SHA256_HEX_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// How much of a peer's value an error message quotes.
const KEEP_VALUE_CHARS: usize = 80;

/// How much of the parser's message an error keeps: it quotes the peer's text (an unknown
/// `t` of 16 KiB, say), and the error goes back to the peer in an `abort`, which must stay
/// under [`MAX_CONTROL_BYTES`], and to the terminal.
const KEEP_PARSER_CHARS: usize = 200;

/// The parser's message, shortened, with control characters (from the peer's text) escaped.
fn malformed(e: serde_json::Error) -> WireError {
    let mut text = String::new();
    for c in e.to_string().chars() {
        if c.is_control() {
            text.extend(c.escape_default());
        } else {
            text.push(c);
        }
    }
    WireError::Malformed(shorten(&text, KEEP_PARSER_CHARS))
}

/// Keeps error messages readable when a peer sends a long value.
fn shorten(s: &str, keep: usize) -> String {
    match s.char_indices().nth(keep) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// Incremental SHA-256 of an item's payload, finished as lowercase hex (the `eof` form).
#[derive(Debug, Clone, Default)]
pub struct Digest(sha2::Sha256);

impl Digest {
    /// A digest of no bytes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next payload bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// Returns the SHA-256 of everything fed so far as 64 lowercase hex characters.
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }

    /// The digest so far, leaving `self` to be fed on (a prefix's digest, then the whole).
    pub fn peek(&self) -> String {
        self.clone().finish()
    }

    /// The digest of `data` in one go (the tests' expected values).
    #[cfg(test)]
    pub fn of(data: &[u8]) -> String {
        let mut d = Self::new();
        d.update(data);
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// Every variant with its exact encoding. The wire format is a contract with other
    /// versions and with plain peers: a change here is a protocol change (bump the version).
    fn pinned() -> Vec<(Control, &'static str)> {
        vec![
            (
                Control::Hello {
                    v: 1,
                    role: Role::Send,
                    app: "dcsend/0.1.0".into(),
                    resume: true,
                    threshold: None,
                    tree: None,
                    files: None,
                    bytes: None,
                    zstd: false,
                },
                r#"{"t":"hello","v":1,"role":"send","app":"dcsend/0.1.0","resume":true}"#,
            ),
            (
                Control::Hello {
                    v: 1,
                    role: Role::Recv,
                    app: "dcsend/0.1.0".into(),
                    resume: false,
                    threshold: None,
                    tree: None,
                    files: None,
                    bytes: None,
                    zstd: false,
                },
                r#"{"t":"hello","v":1,"role":"recv","app":"dcsend/0.1.0","resume":false}"#,
            ),
            (
                Control::File {
                    name: Some("report.pdf".into()),
                    size: Some(1_048_576),
                    resume: false,
                    exec: false,
                    mtime: None,
                    zstd: false,
                },
                r#"{"t":"file","name":"report.pdf","size":1048576,"resume":false}"#,
            ),
            (
                Control::File {
                    name: None,
                    size: None,
                    resume: false,
                    exec: false,
                    mtime: None,
                    zstd: false,
                },
                r#"{"t":"file","name":null,"size":null,"resume":false}"#,
            ),
            (
                Control::File {
                    name: Some("big.iso".into()),
                    size: Some(33_554_432),
                    resume: true,
                    exec: false,
                    mtime: None,
                    zstd: false,
                },
                r#"{"t":"file","name":"big.iso","size":33554432,"resume":true}"#,
            ),
            (
                Control::Have { bytes: 3, sha256: ABC_SHA256.into() },
                r#"{"t":"have","bytes":3,"sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}"#,
            ),
            (
                Control::Have { bytes: 0, sha256: EMPTY_SHA256.into() },
                r#"{"t":"have","bytes":0,"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}"#,
            ),
            (Control::Skip { bytes: 20_971_520 }, r#"{"t":"skip","bytes":20971520}"#),
            (Control::Skip { bytes: 0 }, r#"{"t":"skip","bytes":0}"#),
            (
                Control::Eof { bytes: 3, sha256: ABC_SHA256.into() },
                r#"{"t":"eof","bytes":3,"sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}"#,
            ),
            (Control::Ack { bytes: 3, ok: true }, r#"{"t":"ack","bytes":3,"ok":true}"#),
            (Control::Ack { bytes: 0, ok: false }, r#"{"t":"ack","bytes":0,"ok":false}"#),
            (Control::Done, r#"{"t":"done"}"#),
            (
                Control::Dir { name: "photos/empty".into(), mtime: Some(981_173_106_123_456_789) },
                r#"{"t":"dir","name":"photos/empty","mtime":981173106123456789}"#,
            ),
            (Control::Dir { name: "a".into(), mtime: None }, r#"{"t":"dir","name":"a"}"#),
            (
                Control::File {
                    name: Some("photos/run.sh".into()),
                    size: Some(17),
                    resume: false,
                    exec: true,
                    mtime: Some(1),
                    zstd: false,
                },
                r#"{"t":"file","name":"photos/run.sh","size":17,"resume":false,"exec":true,"mtime":1}"#,
            ),
            (
                Control::Hello {
                    v: 1,
                    role: Role::Send,
                    app: "dcsend/0.1.0".into(),
                    resume: true,
                    threshold: None,
                    tree: Some(true),
                    files: Some(10_000),
                    bytes: Some(40_960_000),
                    zstd: false,
                },
                r#"{"t":"hello","v":1,"role":"send","app":"dcsend/0.1.0","resume":true,"tree":true,"files":10000,"bytes":40960000}"#,
            ),
            (
                Control::Hello {
                    v: 1,
                    role: Role::Recv,
                    app: "dcsend/0.1.0".into(),
                    resume: false,
                    threshold: None,
                    tree: Some(false),
                    files: None,
                    bytes: None,
                    zstd: false,
                },
                r#"{"t":"hello","v":1,"role":"recv","app":"dcsend/0.1.0","resume":false,"tree":false}"#,
            ),
            (
                Control::Abort { reason: "digest mismatch".into() },
                r#"{"t":"abort","reason":"digest mismatch"}"#,
            ),
        ]
    }

    #[test]
    fn encoding_is_pinned() {
        for (msg, json) in pinned() {
            assert_eq!(msg.encode(), json, "{msg:?}");
        }
    }

    #[test]
    fn every_variant_round_trips() {
        let extremes = [
            Control::File {
                name: Some("ünïcödé \"quoted\" \u{1F600}.txt".into()),
                size: Some(0),
                resume: true,
                exec: false,
                mtime: None,
                zstd: false,
            },
            Control::File {
                name: None,
                size: Some(u64::MAX),
                resume: false,
                exec: false,
                mtime: None,
                zstd: false,
            },
            Control::Eof { bytes: u64::MAX, sha256: EMPTY_SHA256.into() },
            Control::Have { bytes: u64::MAX, sha256: ABC_SHA256.into() },
            Control::Skip { bytes: u64::MAX },
            Control::Hello {
                v: u32::MAX,
                role: Role::Recv,
                app: String::new(),
                resume: true,
                threshold: None,
                tree: None,
                files: None,
                bytes: None,
                zstd: false,
            },
            Control::Abort { reason: "line\nbreak\ttab\u{0}nul".into() },
        ];
        for msg in pinned().into_iter().map(|(m, _)| m).chain(extremes) {
            let text = msg.encode();
            assert!(!text.contains('\n'), "one line: {text}");
            assert_eq!(Control::decode(&text).unwrap(), msg, "{text}");
        }
    }

    #[test]
    fn pinned_text_decodes() {
        for (msg, json) in pinned() {
            assert_eq!(Control::decode(json).unwrap(), msg, "{json}");
        }
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let cases = [
            (
                r#"{"t":"ack","bytes":3,"ok":true,"extra":{"x":[1,2]}}"#,
                Control::Ack { bytes: 3, ok: true },
            ),
            (r#"{"future":1,"t":"done"}"#, Control::Done),
            (
                r#"{"t":"hello","v":2,"role":"send","app":"dcsend/9","caps":["zstd"]}"#,
                Control::Hello {
                    v: 2,
                    role: Role::Send,
                    app: "dcsend/9".into(),
                    resume: false,
                    threshold: None,
                    tree: None,
                    files: None,
                    bytes: None,
                    zstd: false,
                },
            ),
            (r#"{"t":"skip","bytes":5,"why":"verified"}"#, Control::Skip { bytes: 5 }),
        ];
        for (json, want) in cases {
            assert_eq!(Control::decode(json).unwrap(), want, "{json}");
        }
    }

    #[test]
    fn missing_optional_fields_are_none() {
        assert_eq!(
            Control::decode(r#"{"t":"file"}"#).unwrap(),
            Control::File {
                name: None,
                size: None,
                resume: false,
                exec: false,
                mtime: None,
                zstd: false
            }
        );
        assert_eq!(
            Control::decode(r#"{"t":"file","name":"a"}"#).unwrap(),
            Control::File {
                name: Some("a".into()),
                size: None,
                resume: false,
                exec: false,
                mtime: None,
                zstd: false
            }
        );
    }

    /// What a v1 peer without resume writes still decodes, and `resume: null` is `false`.
    #[test]
    fn resume_fields_are_optional() {
        let cases = [
            (
                r#"{"t":"hello","v":1,"role":"recv","app":"dcsend/0.1.0"}"#,
                Control::Hello {
                    v: 1,
                    role: Role::Recv,
                    app: "dcsend/0.1.0".into(),
                    resume: false,
                    threshold: None,
                    tree: None,
                    files: None,
                    bytes: None,
                    zstd: false,
                },
            ),
            (
                r#"{"t":"hello","v":1,"role":"recv","app":"x","resume":null}"#,
                Control::Hello {
                    v: 1,
                    role: Role::Recv,
                    app: "x".into(),
                    resume: false,
                    threshold: None,
                    tree: None,
                    files: None,
                    bytes: None,
                    zstd: false,
                },
            ),
            (
                r#"{"t":"file","name":"a","size":1}"#,
                Control::File {
                    name: Some("a".into()),
                    size: Some(1),
                    resume: false,
                    exec: false,
                    mtime: None,
                    zstd: false,
                },
            ),
            (
                r#"{"t":"file","name":"a","size":1,"resume":null}"#,
                Control::File {
                    name: Some("a".into()),
                    size: Some(1),
                    resume: false,
                    exec: false,
                    mtime: None,
                    zstd: false,
                },
            ),
            (
                r#"{"t":"file","resume":true,"size":1,"name":"a"}"#,
                Control::File {
                    name: Some("a".into()),
                    size: Some(1),
                    resume: true,
                    exec: false,
                    mtime: None,
                    zstd: false,
                },
            ),
        ];
        for (json, want) in cases {
            assert_eq!(Control::decode(json).unwrap(), want, "{json}");
        }
    }

    #[test]
    fn whitespace_around_the_object_is_accepted() {
        assert_eq!(Control::decode(" \n{ \"t\" : \"done\" }\r\n").unwrap(), Control::Done);
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let cases = [
            "",
            " ",
            "not json",
            "{",
            "{\"t\":\"done\"",
            "null",
            "42",
            "true",
            "\"done\"",
            "[]",
            "[\"done\"]",
            "[\"eof\",3,\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"]",
            "{}",
            "{\"t\":null}",
            "{\"t\":5}",
            "{\"t\":\"\"}",
            "{\"t\":\"DONE\"}",
            "{\"type\":\"done\"}",
            "{\"t\":\"hello\",\"v\":1,\"role\":\"both\",\"app\":\"x\"}",
            "{\"t\":\"hello\",\"v\":-1,\"role\":\"send\",\"app\":\"x\"}",
            "{\"t\":\"hello\",\"role\":\"send\",\"app\":\"x\"}",
            "{\"t\":\"file\",\"name\":7,\"size\":null}",
            "{\"t\":\"file\",\"name\":null,\"size\":-1}",
            "{\"t\":\"file\",\"name\":null,\"size\":1.5}",
            "{\"t\":\"file\",\"name\":null,\"size\":18446744073709551616}",
            "{\"t\":\"eof\",\"bytes\":3}",
            "{\"t\":\"ack\",\"bytes\":3,\"ok\":\"yes\"}",
            "{\"t\":\"abort\"}",
            "{\"t\":\"hello\",\"v\":1,\"role\":\"recv\",\"app\":\"x\",\"resume\":1}",
            "{\"t\":\"hello\",\"v\":1,\"role\":\"recv\",\"app\":\"x\",\"resume\":\"true\"}",
            "{\"t\":\"file\",\"name\":\"a\",\"size\":1,\"resume\":\"yes\"}",
            "{\"t\":\"file\",\"name\":\"a\",\"size\":1,\"resume\":[]}",
            "{\"t\":\"have\",\"bytes\":3}",
            "{\"t\":\"have\",\"sha256\":\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}",
            "{\"t\":\"have\",\"bytes\":-1,\"sha256\":\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}",
            "{\"t\":\"have\",\"bytes\":3,\"sha256\":null}",
            "{\"t\":\"skip\"}",
            "{\"t\":\"skip\",\"bytes\":null}",
            "{\"t\":\"skip\",\"bytes\":-5}",
            "{\"t\":\"skip\",\"bytes\":1e3}",
            "{\"t\":\"skip\",\"bytes\":\"5\"}",
            "{\"t\":\"SKIP\",\"bytes\":5}",
            "{\"t\":\"done\"} {\"t\":\"done\"}",
            "{\"t\":\"done\"}x",
            "\u{feff}{\"t\":\"done\"}",
        ];
        for text in cases {
            match Control::decode(text) {
                Err(WireError::Malformed(why)) => assert!(!why.is_empty(), "{text:?}"),
                other => panic!("{text:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_tag_is_named() {
        let err = Control::decode(r#"{"t":"resume","offset":5}"#).unwrap_err();
        assert!(matches!(&err, WireError::Malformed(m) if m.contains("resume")), "{err}");
    }

    #[test]
    fn a_long_unknown_tag_is_quoted_shortened() {
        let text = format!(r#"{{"t":"{}"}}"#, "x".repeat(MAX_CONTROL_BYTES - 10));
        let err = Control::decode(&text).unwrap_err().to_string();
        assert!(err.starts_with("malformed control message: unknown variant `xxx"), "{err}");
        assert!(err.chars().count() < 250, "{} chars", err.chars().count());
    }

    #[test]
    fn control_characters_in_a_tag_are_escaped() {
        let err = Control::decode(r#"{"t":"\u001b[2J\n"}"#).unwrap_err().to_string();
        assert!(err.contains(r"unknown variant `\u{1b}[2J\n`"), "{err}");
        assert!(!err.contains(char::is_control), "{err:?}");
    }

    #[test]
    fn non_object_says_what_it_got() {
        let err = Control::decode("[\"done\"]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed control message: expected a JSON object, got an array"
        );
    }

    #[test]
    fn size_limit_is_checked_before_parsing() {
        let pad = |len: usize| {
            let body = r#"{"t":"abort","reason":""}"#;
            let mut text = " ".repeat(len - body.len());
            text.push_str(body);
            text
        };
        let at_limit = pad(MAX_CONTROL_BYTES);
        assert_eq!(Control::decode(&at_limit).unwrap(), Control::Abort { reason: String::new() });

        let over = pad(MAX_CONTROL_BYTES + 1);
        let err = Control::decode(&over).unwrap_err();
        assert!(matches!(err, WireError::TooLarge { len } if len == over.len()), "{err}");

        // Garbage over the limit is TooLarge, not Malformed: it is never parsed.
        let huge = "\u{0}".repeat(10 * MAX_CONTROL_BYTES);
        assert!(matches!(Control::decode(&huge), Err(WireError::TooLarge { .. })));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for open in ["[", "{\"a\":"] {
            let text = open.repeat(MAX_CONTROL_BYTES / open.len());
            assert!(matches!(Control::decode(&text), Err(WireError::Malformed(_))));
        }
    }

    #[test]
    fn digests_must_be_lowercase_hex_sha256() {
        let bad = [
            String::new(),
            ABC_SHA256.to_uppercase(),
            ABC_SHA256[..63].to_owned(),
            format!("{ABC_SHA256}0"),
            format!("{}g", &ABC_SHA256[..63]),
            format!(" {}", &ABC_SHA256[..63]),
            "é".repeat(32),
            "0".repeat(1000),
        ];
        for t in ["eof", "have"] {
            for digest in &bad {
                let text = format!(r#"{{"t":"{t}","bytes":3,"sha256":"{digest}"}}"#);
                match Control::decode(&text) {
                    Err(WireError::BadDigest(shown)) => {
                        assert!(shown.chars().count() <= 81, "{shown}")
                    }
                    other => panic!("{t} {digest:?} gave {other:?}"),
                }
            }
            let ok = format!(r#"{{"t":"{t}","bytes":0,"sha256":"{EMPTY_SHA256}"}}"#);
            assert!(Control::decode(&ok).is_ok(), "{t}");
        }
    }

    #[test]
    fn error_messages_are_readable() {
        assert_eq!(
            WireError::TooLarge { len: 20_000 }.to_string(),
            "control message is 20000 bytes, over the 16384-byte limit"
        );
        let err = Control::decode(r#"{"t":"eof","bytes":3,"sha256":"ABC"}"#).unwrap_err();
        assert_eq!(err.to_string(), r#"sha256 is not 64 lowercase hex characters: "ABC""#);
    }

    /// A cheap stand-in for the fuzzer: mutate valid messages byte by byte (deterministic
    /// xorshift) and check decode answers without panicking.
    #[test]
    fn mutated_messages_never_panic() {
        // Deterministic, so a failure reproduces.
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x9E37_79B9_7F4A_7C15);
        let mut next = move || rng.next_u64();
        const ALPHABET: &[u8] =
            b"{}[]\":,.-+0123456789eEtfnul\\ abcdefghijklmnopqrstuvwxyz\x00\xff";
        for (_, json) in pinned() {
            for _ in 0..2_000 {
                let mut bytes = json.as_bytes().to_vec();
                for _ in 0..(1 + next() % 4) {
                    let at = (next() % bytes.len() as u64) as usize;
                    let with = ALPHABET[(next() % ALPHABET.len() as u64) as usize];
                    match next() % 3 {
                        0 => bytes[at] = with,
                        1 => bytes.insert(at, with),
                        _ if bytes.len() > 1 => drop(bytes.remove(at)),
                        _ => {}
                    }
                }
                let text = String::from_utf8_lossy(&bytes);
                if let Ok(Control::Eof { sha256, .. } | Control::Have { sha256, .. }) =
                    Control::decode(&text)
                {
                    assert!(is_sha256_hex(&sha256), "{text}");
                }
            }
        }
    }

    #[test]
    fn digest_matches_known_vectors() {
        let mut d = Digest::new();
        d.update(b"abc");
        assert_eq!(d.finish(), ABC_SHA256);
        assert_eq!(Digest::new().finish(), EMPTY_SHA256);
    }

    #[test]
    fn peek_gives_the_prefix_digest_and_feeding_goes_on() {
        let mut d = Digest::new();
        d.update(b"ab");
        let mut ab = Digest::new();
        ab.update(b"ab");
        assert_eq!(d.peek(), ab.finish());
        d.update(b"c");
        assert_eq!(d.finish(), ABC_SHA256);
    }

    #[test]
    fn digest_is_independent_of_chunking() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut whole = Digest::new();
        whole.update(&data);
        let mut pieces = Digest::new();
        for chunk in data.chunks(97) {
            pieces.update(chunk);
        }
        pieces.update(&[]);
        let whole = whole.finish();
        assert_eq!(whole, pieces.finish());
        assert!(is_sha256_hex(&whole));
    }

    #[test]
    fn a_receivers_threshold_is_read_and_never_written_when_absent() {
        let page = r#"{"t":"hello","v":1,"role":"recv","app":"dcsend-web/0.1.0","resume":false,"threshold":65536}"#;
        let Control::Hello { threshold, role, .. } = Control::decode(page).unwrap() else {
            panic!("not a hello");
        };
        assert_eq!((threshold, role), (Some(65536), Role::Recv));
        let ours = Control::Hello {
            v: 1,
            role: Role::Recv,
            app: "dcsend/0.1.0".into(),
            resume: false,
            threshold: None,
            tree: None,
            files: None,
            bytes: None,
            zstd: false,
        };
        assert!(!ours.encode().contains("threshold"), "{}", ours.encode());
        let null = r#"{"t":"hello","v":1,"role":"recv","app":"x","threshold":null}"#;
        assert!(matches!(Control::decode(null).unwrap(), Control::Hello { threshold: None, .. }));
    }
}
