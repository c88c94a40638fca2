//! The wire protocol's and the name rules' cases for the browser page, written by the Rust
//! code itself into `web/test/wire-vectors.json`, which `web/test/wire-vectors.mjs` checks
//! `web/src/wire.js` against (run by `npm test`, so by `tests/web_bundle.rs`). The answers come
//! from dcsend's own functions (`Control::encode`/`decode`, `names::sanitize_for`, the shown form of
//! a peer's abort reason), so when a rule changes here the JavaScript fails until it follows:
//! the two sides cannot drift apart unnoticed.
//!
//! Fails when the committed file is stale; regenerate with
//!
//!     DCSEND_BLESS=1 cargo test --test web_vectors
//!
//! The signaling vectors (`web/test/vectors.json`) are a separate file, written by
//! `cargo test --lib web_vectors` from `src/signal/seal.rs`, which needs the crate's internals.

use std::path::Path;

use dcsend::error::TransferError;
use dcsend::transfer::names::{self, MAX_NAME_BYTES, Rules};
use dcsend::transfer::wire::{Control, MAX_CONTROL_BYTES, PROTOCOL_VERSION, Role, WireError};
use serde_json::{Value, json};

const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

/// Every message the page builds, as dcsend encodes it. `build` names the page's builder and
/// its arguments, so the page can rebuild each one and compare the text.
fn encodings() -> Vec<Value> {
    let app = "dcsend-web/0.1.0";
    let hello = |role, threshold| Control::Hello {
        v: PROTOCOL_VERSION,
        role,
        app: app.into(),
        resume: false,
        threshold,
        tree: None,
        files: None,
        bytes: None,
        zstd: false,
    };
    let file = |name: Option<&str>, size| Control::File {
        name: name.map(Into::into),
        size,
        resume: false,
        exec: false,
        mtime: None,
        zstd: false,
    };
    let cases: Vec<(Value, Control)> = vec![
        (json!(["hello", "send", null]), hello(Role::Send, None)),
        (json!(["hello", "recv", 32768]), hello(Role::Recv, Some(32768))),
        (json!(["file", "report.pdf", 1_048_576]), file(Some("report.pdf"), Some(1_048_576))),
        (
            json!(["file", "ünïcödé \"q\" \\ 😀.txt", 0]),
            file(Some("ünïcödé \"q\" \\ 😀.txt"), Some(0)),
        ),
        (json!(["file", null, null]), file(None, None)),
        (json!(["eof", 3, ABC]), Control::Eof { bytes: 3, sha256: ABC.into() }),
        (json!(["ack", 3, true]), Control::Ack { bytes: 3, ok: true }),
        (json!(["ack", 0, false]), Control::Ack { bytes: 0, ok: false }),
        (json!(["done"]), Control::Done),
        (json!(["abort", "disk full"]), Control::Abort { reason: "disk full".into() }),
        (
            json!(["abort", "a\nb\t\u{0}\u{1b}[2J\u{7f}\u{85}\u{202e}\u{2028}"]),
            Control::Abort { reason: "a\nb\t\u{0}\u{1b}[2J\u{7f}\u{85}\u{202e}\u{2028}".into() },
        ),
    ];
    cases.into_iter().map(|(build, msg)| json!({ "build": build, "text": msg.encode() })).collect()
}

/// A `done` whose unknown field nests `depth` arrays (the object itself is one more level).
fn nested(depth: usize) -> String {
    format!(r#"{{"t":"done","x":{}{}}}"#, "[".repeat(depth), "]".repeat(depth))
}

/// Text a peer may send, and what dcsend makes of it: the message (re-encoded, so optional
/// fields read as their defaults) or the kind of error.
fn decodings() -> Vec<Value> {
    let hex = ABC;
    let at_limit = {
        let body = r#"{"t":"abort","reason":""}"#;
        let reason = "x".repeat(MAX_CONTROL_BYTES - body.len());
        format!(r#"{{"t":"abort","reason":"{reason}"}}"#)
    };
    let over_limit = at_limit.replacen("\"x", "\"xx", 1);
    // Multi-byte: the limit counts UTF-8 bytes, not characters.
    let over_in_bytes =
        format!(r#"{{"t":"abort","reason":"{}"}}"#, "é".repeat(MAX_CONTROL_BYTES / 2));
    let texts: Vec<String> = [
        // Every message type, as dcsend and the page write them.
        r#"{"t":"hello","v":1,"role":"send","app":"dcsend/0.1.0","resume":true}"#,
        r#"{"t":"hello","v":1,"role":"recv","app":"dcsend-web/0.1.0","resume":false,"threshold":32768}"#,
        r#"{"t":"file","name":"report.pdf","size":1048576,"resume":false}"#,
        r#"{"t":"file","name":null,"size":null,"resume":false}"#,
        r#"{"t":"file","name":"big.iso","size":33554432,"resume":true}"#,
        &format!(r#"{{"t":"have","bytes":3,"sha256":"{hex}"}}"#),
        r#"{"t":"skip","bytes":20971520}"#,
        &format!(r#"{{"t":"eof","bytes":3,"sha256":"{hex}"}}"#),
        r#"{"t":"ack","bytes":3,"ok":true}"#,
        r#"{"t":"ack","bytes":0,"ok":false}"#,
        r#"{"t":"done"}"#,
        r#"{"t":"abort","reason":"digest mismatch"}"#,
        // Optional fields: absent or null read as their defaults; unknown fields are ignored.
        r#"{"t":"file"}"#,
        r#"{"t":"file","name":"a","size":1,"resume":null}"#,
        r#"{"t":"hello","v":1,"role":"recv","app":"x"}"#,
        r#"{"t":"hello","v":1,"role":"recv","app":"x","resume":null,"threshold":null}"#,
        r#"{"t":"hello","v":2,"role":"send","app":"dcsend/9","caps":["zstd"]}"#,
        r#"{"t":"hello","v":4294967295,"role":"send","app":""}"#,
        r#"{"future":1,"t":"done"}"#,
        r#"{"t":"ack","bytes":3,"ok":true,"extra":{"x":[1,2]}}"#,
        "  {\"t\":\"done\"}\n",
        r#"{"t":"eof","bytes":9007199254740991,"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}"#,
        // Not a control message.
        "",
        "{",
        "[1]",
        r#"["done"]"#,
        "null",
        "\"done\"",
        "42",
        r#"{"v":1}"#,
        r#"{"t":5}"#,
        r#"{"t":"nope"}"#,
        r#"{"t":"Done"}"#,
        r#"{"t":"hello","v":1,"role":"both","app":""}"#,
        r#"{"t":"hello","v":4294967296,"role":"send","app":""}"#,
        r#"{"t":"hello","v":-1,"role":"send","app":""}"#,
        r#"{"t":"hello","role":"send","app":""}"#,
        r#"{"t":"hello","v":1,"role":"send"}"#,
        r#"{"t":"hello","v":1,"role":"send","app":"","resume":"yes"}"#,
        r#"{"t":"hello","v":1,"role":"recv","app":"","threshold":-5}"#,
        r#"{"t":"file","name":5}"#,
        r#"{"t":"file","size":-1}"#,
        r#"{"t":"file","size":1.5}"#,
        r#"{"t":"file","size":"3"}"#,
        r#"{"t":"ack","bytes":1.5,"ok":true}"#,
        r#"{"t":"ack","bytes":3}"#,
        r#"{"t":"ack","bytes":3,"ok":1}"#,
        r#"{"t":"skip"}"#,
        r#"{"t":"abort"}"#,
        r#"{"t":"abort","reason":null}"#,
        r#"{"t":"abort","reason":7}"#,
        // Digests: 64 lowercase hex characters, nothing else.
        r#"{"t":"eof","bytes":3,"sha256":"ABC"}"#,
        &format!(r#"{{"t":"eof","bytes":3,"sha256":"{}"}}"#, hex.to_uppercase()),
        &format!(r#"{{"t":"eof","bytes":3,"sha256":"{hex}0"}}"#),
        &format!(r#"{{"t":"eof","bytes":3,"sha256":"{}"}}"#, &hex[1..]),
        &format!(r#"{{"t":"have","bytes":3,"sha256":"{}g"}}"#, &hex[1..]),
        r#"{"t":"eof","bytes":3}"#,
        // Deep nesting is an error, not a crash: serde_json stops at 128 levels.
        &nested(126),
        &nested(127),
        &nested(128),
        &nested(1000),
        // The size limit: checked on the UTF-8 bytes, before parsing.
        &at_limit,
        &over_limit,
        &over_in_bytes,
    ]
    .into_iter()
    .map(String::from)
    .collect();
    texts
        .into_iter()
        .map(|text| match Control::decode(&text) {
            Ok(msg) => json!({ "text": text, "ok": serde_json::to_value(&msg).unwrap() }),
            Err(e) => {
                let kind = match e {
                    WireError::TooLarge { .. } => "too_large",
                    WireError::BadDigest(_) => "bad_digest",
                    _ => "malformed",
                };
                json!({ "text": text, "error": kind, "message": e.to_string() })
            }
        })
        .collect()
}

/// A peer's abort reason as dcsend shows it: control characters and bidirectional overrides
/// escaped, cut to a few hundred characters.
fn reasons() -> Vec<Value> {
    let aborted = |reason: &str| {
        TransferError::PeerAborted { reason: reason.to_owned(), confirmed_bytes: 0 }.to_string()
    };
    // The reason stands between what dcsend says around an empty one.
    let around = aborted("");
    let (prefix, suffix) = around.split_at(around.find(" (").expect("the confirmed-bytes tail"));
    let mut cases: Vec<String> = [
        "disk full",
        "",
        "a\nb\r\tc\u{0}d",
        "\u{1b}[2J\u{1b}]0;title\u{7}",
        "del\u{7f} c1\u{80}\u{85}\u{9f} nbsp\u{a0}",
        // Bidirectional embeddings, overrides and isolates: U+202A..U+202E, U+2066..U+2069.
        "invoice\u{202e}fdp.exe",
        "\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}\u{2066}\u{2067}\u{2068}\u{2069}",
        // Neighbours that are not escaped: marks, separators, zero-width.
        "\u{200e}\u{200f}\u{2028}\u{2029}\u{200b}\u{2065}\u{206a}\u{2029}",
        "ünïcödé 😀 漢字",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    // The cut: characters (not bytes or UTF-16 units) of the reason as sent, before escaping.
    cases.push("x".repeat(300));
    cases.push("x".repeat(301));
    cases.push("é".repeat(20_000));
    cases.push("😀".repeat(400));
    cases.push(format!("{}\n\n\n", "y".repeat(298)));
    cases.push("\u{202e}".repeat(400));
    cases
        .into_iter()
        .map(|reason| {
            let shown = aborted(&reason);
            let shown = shown.strip_prefix(prefix).expect("the shown reason follows the prefix");
            let shown = shown.strip_suffix(suffix).expect("the confirmed-bytes tail follows it");
            json!({ "reason": reason, "shown": shown })
        })
        .collect()
}

/// Remote file names and the answer of `names::sanitize_for` under the Windows rules: the name
/// unchanged, or its refusal. The page applies the Windows rules wherever it runs, since it
/// cannot know where a download lands (the strictest set of names any receiver accepts).
fn name_cases() -> Vec<Value> {
    let longest = "a".repeat(MAX_NAME_BYTES);
    let too_long = "a".repeat(MAX_NAME_BYTES + 1);
    let too_long_multibyte = "é".repeat(MAX_NAME_BYTES / 2 + 1);
    let very_long = "x".repeat(1000);
    let long_quoted = format!("{}/", "ü".repeat(100));
    let names: Vec<&str> = vec![
        // Accepted.
        "a",
        "report.pdf",
        "archive.tar.gz",
        ".bashrc",
        "...x",
        "..x",
        "x..y",
        " leading space",
        "has space.txt",
        "-rf",
        "ünïcödé 😀.txt",
        "ab:c",
        "1:x",
        "console.log",
        "con_file",
        "nullable.rs",
        "com10",
        "lpt",
        "auxiliary",
        "COM1x.txt",
        "x.part2",
        "x.partial",
        "part",
        ".partx",
        "x.par",
        "con-job.txt",
        longest.as_str(),
        // Refused: empty, dots.
        "",
        ".",
        "..",
        // Control characters, escaped in the message.
        "a\0b",
        "\0",
        "line\nbreak",
        "cr\r",
        "tab\t",
        "esc\u{1b}[31m",
        "del\u{7f}",
        "c1\u{85}",
        // Separators: no directories at all.
        "../x",
        "..\\x",
        "/etc/passwd",
        "a/b",
        "a\\b",
        "dir/",
        "/",
        "C:\\x",
        "\\\\server\\share",
        "say \"hi\"/x",
        long_quoted.as_str(),
        // Drive prefixes.
        "C:",
        "c:x",
        "Z:file.txt",
        // Length, in UTF-8 bytes.
        too_long.as_str(),
        too_long_multibyte.as_str(),
        very_long.as_str(),
        // Windows device names, any case, with an extension.
        "CON",
        "con",
        "con.txt",
        "Con.tar.gz",
        "nul .txt",
        "NUL .tar.gz",
        "PRN",
        "aux.c",
        "com1",
        "COM9.log",
        "lpt1",
        "LPT9.txt",
        "com0",
        "COM¹",
        "com¹",
        "lpt³.txt",
        "conin$",
        "CONOUT$.x",
        // Trailing dot or space.
        "name.",
        "name ",
        "...",
        " ",
        // Our own suffix, any case: valid names.
        "x.part",
        ".part",
        "movie.mkv.PART",
    ];
    names
        .into_iter()
        .map(|name| match names::sanitize_for(name, Rules::Windows) {
            Ok(kept) => json!({ "name": name, "ok": kept }),
            Err(e) => json!({ "name": name, "error": e.to_string() }),
        })
        .collect()
}

#[test]
fn wire_vectors_are_fresh() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    if !web.is_dir() {
        eprintln!("skipped: no web/ here (a packaged crate)");
        return;
    }
    let vectors = json!({
        "about": "dcsend's wire protocol (src/transfer/wire.rs), abort-reason display \
                  (src/error.rs) and file-name rules (src/transfer/names.rs), as the Rust \
                  code answers them. Generated by `DCSEND_BLESS=1 cargo test --test \
                  web_vectors`; do not edit.",
        "version": PROTOCOL_VERSION,
        "max_control_bytes": MAX_CONTROL_BYTES,
        "max_name_bytes": MAX_NAME_BYTES,
        "encode": encodings(),
        "decode": decodings(),
        "reasons": reasons(),
        "names": name_cases(),
    });
    let generated = serde_json::to_string_pretty(&vectors).unwrap() + "\n";
    let path = web.join("test/wire-vectors.json");
    if std::fs::read_to_string(&path).ok().as_deref() == Some(generated.as_str()) {
        return;
    }
    if std::env::var_os("DCSEND_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, generated).unwrap();
        return;
    }
    panic!(
        "{} is stale or missing; regenerate with DCSEND_BLESS=1 cargo test --test web_vectors",
        path.display()
    );
}
