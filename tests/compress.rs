//! `--compress` between two real `dcsend` processes on loopback (docs/protocol.md,
//! "Compression"): what compresses travels smaller and arrives byte-exact; what does not
//! arrives byte-exact too. The refusals (a decompression bomb, a receiver that does not take
//! compressed items) are in tests/hostile_peer.rs.

mod common;

use std::path::Path;

use common::*;

/// Sends `files` with `--compress` into `-o out/`; returns the sender's stderr.
fn send_compressed(tmp: &Path, files: &[&Path]) -> String {
    let t = Tokens::in_dir(tmp);
    let mut rx = receiver(&t);
    rx.args(["-o", "out/"]).current_dir(tmp);
    let mut recv = Proc::spawn("recv", rx, tmp);
    let mut tx = sender(files, &t);
    tx.arg("--compress");
    let mut send = Proc::spawn("send", tx, tmp);
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    send.stderr_text()
}

/// The "compressed to N%" the sender's summary reports.
fn wire_percent(stderr: &str) -> u64 {
    let (_, rest) = stderr.split_once("compressed to ").expect(stderr);
    rest.split('%').next().unwrap().parse().unwrap()
}

#[test]
fn a_log_file_travels_compressed_and_arrives_byte_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let log: Vec<u8> = (0..200_000u32)
        .flat_map(|i| {
            format!("2026-12-01T01:{:02}:{:02}Z INFO request {i} served\n", i / 60 % 60, i % 60)
                .into_bytes()
        })
        .collect();
    let src = tmp.path().join("big.log");
    std::fs::write(&src, &log).unwrap();
    std::fs::create_dir(tmp.path().join("out")).unwrap();
    let err = send_compressed(tmp.path(), &[&src]);
    assert!(wire_percent(&err) < 25, "{err}");
    assert!(std::fs::read(tmp.path().join("out/big.log")).unwrap() == log, "the log differs");
}

#[test]
fn random_bytes_and_a_tree_arrive_byte_exact_uncompressed() {
    let tmp = tempfile::tempdir().unwrap();
    let noise = random_bytes(3 << 20, 9);
    let src = tmp.path().join("noise.bin");
    std::fs::write(&src, &noise).unwrap();
    let tree = tmp.path().join("t");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/a.txt"), b"hello hello hello hello hello\n".repeat(1000))
        .unwrap();
    std::fs::write(tree.join("empty"), b"").unwrap();
    std::fs::write(tree.join("one"), b"1").unwrap();
    std::fs::create_dir(tmp.path().join("out")).unwrap();
    let err = send_compressed(tmp.path(), &[&src, &tree]);
    // Random bytes do not shrink: they go as they are (plus a tag byte per message).
    assert!((95..=101).contains(&wire_percent(&err)), "{err}");
    assert!(std::fs::read(tmp.path().join("out/noise.bin")).unwrap() == noise);
    for f in ["sub/a.txt", "empty", "one"] {
        assert_eq!(
            std::fs::read(tmp.path().join("out/t").join(f)).unwrap(),
            std::fs::read(tree.join(f)).unwrap(),
            "{f}"
        );
    }
}
