//! The CLI as a newcomer and a script meet it: environment defaults and their precedence,
//! the FIFO example from `--help`, `recv --sink`, and `dcsend bench` end to end with its
//! exports. Real processes on 127.0.0.1.

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    LOOPBACK, Proc, Tokens, WAIT, dcsend, files_in, one_case_bench, random_bytes, receiver, sender,
};

/// Sends `payload` with `tweak` applied to the sender; returns the sender's NDJSON summary.
fn send_with(dir: &Path, payload: &[u8], tweak: impl FnOnce(&mut Command)) -> serde_json::Value {
    let src = dir.join("payload.bin");
    std::fs::write(&src, payload).unwrap();
    let t = Tokens::in_dir(dir);
    let mut rx = receiver(&t);
    rx.arg("--sink");
    let mut recv = Proc::spawn("recv", rx, dir);
    let mut tx = sender(&[&src], &t);
    tx.arg("--stats").arg(dir.join("stats.ndjson"));
    tweak(&mut tx);
    let mut send = Proc::spawn("send", tx, dir);
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    let stats = std::fs::read_to_string(dir.join("stats.ndjson")).unwrap();
    let last = stats.lines().last().expect("a summary line");
    serde_json::from_str(last).unwrap()
}

#[test]
fn environment_sets_defaults_and_flags_beat_it() {
    let payload = random_bytes(256 * 1024, 7);
    let dir = tempfile::tempdir().unwrap();
    let summary = send_with(dir.path(), &payload, |c| {
        c.env("DCSEND_THRESHOLD", "256K");
    });
    assert_eq!(summary["threshold_bytes"], 262144, "{summary}");
    assert_eq!(summary["verified"], true);

    let dir = tempfile::tempdir().unwrap();
    let summary = send_with(dir.path(), &payload, |c| {
        c.env("DCSEND_THRESHOLD", "256K").args(["--threshold", "1.5M"]);
    });
    assert_eq!(summary["threshold_bytes"], 1_572_864, "{summary}");
}

#[test]
fn a_bad_environment_value_names_the_flag_and_a_good_value() {
    let out = dcsend().env("DCSEND_CHUNK_SIZE", "lots").arg("x.bin").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--chunk-size") && err.contains("64K"), "{err}");
    assert!(out.stdout.is_empty());

    let out = dcsend().env("DCSEND_CONNECT_TIMEOUT", "soon").arg("x.bin").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--connect-timeout") && err.contains("10s"), "{err}");
}

#[cfg(unix)]
#[test]
fn tokens_through_fifos_as_in_the_help() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tokens { offer: dir.path().join("offer"), answer: dir.path().join("answer") };
    for fifo in [&t.offer, &t.answer] {
        nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    }
    let payload = random_bytes(1 << 20, 11);
    let src = dir.path().join("f.bin");
    std::fs::write(&src, &payload).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();

    let mut send = Proc::spawn("send", sender(&[&src], &t), dir.path());
    let mut rx = receiver(&t);
    rx.arg("-o").arg(format!("{}/", out.display()));
    let mut recv = Proc::spawn("recv", rx, dir.path());
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    assert_eq!(std::fs::read(out.join("f.bin")).unwrap(), payload);
}

#[test]
fn recv_sink_verifies_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(before.is_empty());
    let summary = send_with(dir.path(), &random_bytes(300_000, 3), |_| {});
    assert_eq!(summary["bytes"], 300_000);
    assert_eq!(summary["verified"], true);
    let recv_out = std::fs::read(dir.path().join("recv.stdout")).unwrap();
    assert!(recv_out.is_empty(), "--sink wrote {} bytes to stdout", recv_out.len());
    let names = files_in(dir.path());
    // Only what the test itself made: no file and no .part from the receiver.
    assert_eq!(
        names,
        [
            "answer.tok",
            "offer.tok",
            "payload.bin",
            "recv.stderr",
            "recv.stdout",
            "send.stderr",
            "send.stdout",
            "stats.ndjson"
        ]
    );
}

#[test]
fn bench_sweeps_and_exports_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let (json, csv, md) =
        (dir.path().join("r.json"), dir.path().join("r.csv"), dir.path().join("r.md"));
    let mut cmd = dcsend();
    cmd.args(["bench", "--threshold", "64K,1M", "--chunk-size", "16K", "--size", "2M"])
        .args(["--runs", "2", "--warmup", "0", "--baseline", "tcp", "--progress", "never"])
        .arg("--export-json")
        .arg(&json)
        .arg("--export-csv")
        .arg(&csv)
        .arg("--export-markdown")
        .arg(&md);
    let mut bench = Proc::spawn("bench", cmd, dir.path());
    bench.expect_code(0, WAIT);

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["complete"], true);
    let cases = report["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for (case, threshold) in cases.iter().zip([65536, 1 << 20]) {
        assert_eq!(case["transport"], "webrtc");
        assert_eq!(case["threshold_bytes"], threshold);
        assert_eq!(case["chunk_bytes"], 16384);
        assert_eq!(case["runs"], 2);
        assert_eq!(case["bytes"], 2 << 20);
        assert_eq!(case["verified"], true);
        assert!(case["mb_per_s"]["median"].as_f64().unwrap() > 0.0);
        // The threshold sender kept the buffered amount to threshold + one message.
        let peak = case["peak_buffered_bytes"].as_u64().unwrap();
        assert!(peak > 0 && peak <= threshold + 16384, "peak {peak} for threshold {threshold}");
        assert!(case["tcp_ratio"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(report["baseline"][0]["transport"], "tcp");

    let csv = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("schema_version,transport,threshold_bytes,chunk_bytes"));
    assert_eq!(lines.len(), 1 + 3, "{csv}");
    let md = std::fs::read_to_string(&md).unwrap();
    assert_eq!(md.lines().count(), 2 + 3, "{md}");

    // The human table went to stdout, as results do; stderr stayed quiet.
    let stdout = String::from_utf8(bench.stdout_bytes()).unwrap();
    assert!(stdout.contains("| webrtc") && stdout.contains("best: "), "{stdout}");
    assert!(bench.stderr_text().is_empty(), "{}", bench.stderr_text());
}

#[test]
fn bench_export_to_stdout_moves_the_table_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = one_case_bench();
    cmd.args(["--export-csv", "-"]);
    let mut bench = Proc::spawn("bench", cmd, dir.path());
    bench.expect_code(0, WAIT);
    let stdout = String::from_utf8(bench.stdout_bytes()).unwrap();
    assert!(stdout.starts_with("schema_version,"), "stdout is only the CSV: {stdout}");
    assert_eq!(stdout.lines().count(), 2);
    assert!(bench.stderr_text().contains("| webrtc"), "{}", bench.stderr_text());
}

#[test]
fn bench_refuses_two_exports_to_stdout() {
    let out = dcsend()
        .args(["bench", "--export-json", "-", "--export-csv", "-"])
        .args(LOOPBACK[2..].iter())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdout"));
}

#[cfg(unix)]
#[test]
fn ctrl_c_during_bench_keeps_what_was_measured() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut cmd = dcsend();
    // Two cases of about a second each (the size is never reached); the live view is
    // forced so that stderr says when the first case is done.
    cmd.args(["bench", "--threshold", "1M,4M", "--chunk-size", "64K", "--size", "100G"])
        .args(["--duration", "1500ms", "--runs", "1", "--warmup", "0", "--progress", "always"])
        .arg("--export-json")
        .arg(&json);
    let mut bench = Proc::spawn("bench", cmd, dir.path());
    common::wait_until(WAIT, "the first case's result line", || {
        bench.stderr_text().contains("[1/2] webrtc threshold 1MiB chunk 64KiB:")
    });
    bench.signal(nix::sys::signal::Signal::SIGINT);
    bench.expect_code(130, WAIT);

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["complete"], false);
    let cases = report["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "only the finished case: {report}");
    assert_eq!(cases[0]["threshold_bytes"], 1 << 20);
    assert_eq!(cases[0]["verified"], true);
    let stdout = String::from_utf8(bench.stdout_bytes()).unwrap();
    assert!(stdout.contains("| webrtc") && stdout.contains("interrupted"), "{stdout}");
}
