//! `dcsend recv --resume`: real sender and receiver processes on loopback, negotiating through
//! token files. A transfer broken by killing the sender leaves `NAME.part`; a second run with
//! `--resume` sends only the rest, after the sender verified the prefix. Altered and
//! oversized `.part` files start over; stdin is not resumable and says so; `--resume` without
//! a place for a `.part` is a usage error. Every wait is bounded; every child is killed by its
//! handle on drop.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Token files for one run, in their own folder so runs do not share them.
fn tokens(dir: &Path, run: &str) -> Tokens {
    let d = dir.join(run);
    std::fs::create_dir(&d).unwrap();
    Tokens::in_dir(&d)
}

/// The last `--stats` line (the summary) of `path`.
fn stats_summary(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    let last = text.lines().last().expect("a summary line");
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["t"], "summary", "{last}");
    v
}

/// What a finished run reported.
struct Done {
    send: Proc,
    recv: Proc,
    send_stats: serde_json::Value,
    recv_stats: serde_json::Value,
}

/// Sends `src` to a `recv --resume -o TARGET`; both must exit 0.
fn resume_run(dir: &Path, run: &str, src: &Path, target: &str) -> Done {
    let t = tokens(dir, run);
    let (send_stats, recv_stats) =
        (dir.join(format!("{run}.send.ndjson")), dir.join(format!("{run}.recv.ndjson")));
    let mut rx = receiver(&t);
    rx.args(["--resume", "-o", target]).arg("--stats").arg(&recv_stats);
    let mut recv = Proc::spawn("recv", rx, dir);
    let mut tx = sender(&[src], &t);
    tx.arg("--stats").arg(&send_stats);
    let mut send = Proc::spawn("send", tx, dir);
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    Done {
        send_stats: stats_summary(&send_stats),
        recv_stats: stats_summary(&recv_stats),
        send,
        recv,
    }
}

fn folder(dir: &Path) -> (PathBuf, String) {
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let arg = format!("{}/", out.display());
    (out, arg)
}

#[test]
fn a_transfer_broken_by_killing_the_sender_resumes_where_it_stopped() {
    const SIZE: usize = 32 << 20;
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(SIZE, 32);
    let src = dir.path().join("big.bin");
    std::fs::write(&src, &data).unwrap();
    let (out, out_arg) = folder(dir.path());
    let (part, whole) = (out.join("big.bin.part"), out.join("big.bin"));

    // Run 1: kill the sender (SIGKILL: no abort, no goodbye) once a few MiB arrived. Small
    // messages under a small threshold keep the transfer slow enough to catch mid-way.
    let t = tokens(dir.path(), "run1");
    let mut rx = receiver(&t);
    rx.args(["-o", &out_arg, "--liveness-timeout", "3s"]);
    let mut recv = Proc::spawn("recv1", rx, dir.path());
    let mut tx = sender(&[&src], &t);
    tx.args(["--chunk-size", "16K", "--threshold", "64K", "--liveness-timeout", "3s"]);
    let mut send = Proc::spawn("send1", tx, dir.path());
    wait_until(WAIT, "the receiver's .part to pass 4 MiB", || {
        whole.exists() || std::fs::metadata(&part).is_ok_and(|m| m.len() >= 4 << 20)
    });
    send.child.kill().unwrap();
    send.wait(WAIT);
    assert!(!whole.exists(), "the transfer finished before the sender could be killed");
    let status = recv.wait(WAIT);
    assert!(!status.success(), "the receiver must fail: {}", recv.stderr_text());
    assert_eq!(files_in(&out), vec!["big.bin.part"], "only the .part, nothing complete-looking");
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept >= 4 << 20 && kept < SIZE as u64, "{kept}");
    assert!(std::fs::read(&part).unwrap() == data[..kept as usize], "the .part is a prefix");

    // Run 2: resume.
    let done = resume_run(dir.path(), "run2", &src, &out_arg);
    let err = done.send.stderr_text();
    assert!(err.contains("resumed at") && err.contains("(prefix verified)"), "{err}");
    assert_eq!(done.send_stats["resumed_bytes"], kept, "{}", done.send_stats);
    let wire = done.send_stats["bytes"].as_u64().unwrap();
    assert_eq!(wire + kept, SIZE as u64, "only the rest travelled: {}", done.send_stats);
    assert_eq!(done.send_stats["verified"], true);
    assert_eq!(done.recv_stats["resumed_bytes"], kept, "{}", done.recv_stats);
    assert_eq!(done.recv_stats["bytes"], wire, "{}", done.recv_stats);
    assert!(done.recv.stderr_text().contains("resumed at"), "{}", done.recv.stderr_text());
    assert_eq!(files_in(&out), vec!["big.bin"], "no .part left");
    assert!(std::fs::read(&whole).unwrap() == data, "the resumed file differs");
}

#[test]
fn an_altered_prefix_is_detected_and_the_file_is_sent_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(3 << 20, 2);
    let src = dir.path().join("f.bin");
    std::fs::write(&src, &data).unwrap();
    let (out, out_arg) = folder(dir.path());
    let mut prefix = data[..1 << 20].to_vec();
    prefix[777_777] ^= 0x01;
    std::fs::write(out.join("f.bin.part"), &prefix).unwrap();

    let done = resume_run(dir.path(), "run", &src, &out_arg);
    let err = done.send.stderr_text();
    let said: Vec<&str> = err.lines().filter(|l| l.contains("does not match")).collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(said[0].contains("f.bin") && said[0].contains("from the start"), "{err}");
    assert!(!err.contains("resumed at"), "{err}");
    assert_eq!(done.send_stats["resumed_bytes"], 0);
    assert_eq!(done.send_stats["bytes"], data.len(), "everything travelled");
    let rerr = done.recv.stderr_text();
    assert!(rerr.contains("does not match the sender's file"), "{rerr}");
    assert_eq!(files_in(&out), vec!["f.bin"]);
    assert!(std::fs::read(out.join("f.bin")).unwrap() == data, "the file differs");
}

#[test]
fn a_part_longer_than_the_file_starts_over_with_o_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(1 << 20, 3);
    let src = dir.path().join("f.bin");
    std::fs::write(&src, &data).unwrap();
    let copy = dir.path().join("copy.bin");
    // The whole file and then some: a prefix it cannot be.
    let mut longer = data.clone();
    longer.extend_from_slice(&random_bytes(1000, 4));
    std::fs::write(dir.path().join("copy.bin.part"), &longer).unwrap();

    let done = resume_run(dir.path(), "run", &src, copy.to_str().unwrap());
    let rerr = done.recv.stderr_text();
    assert!(rerr.contains("is longer than the sender's file"), "{rerr}");
    assert_eq!(done.send_stats["resumed_bytes"], 0);
    assert_eq!(done.send_stats["bytes"], data.len());
    assert!(std::fs::read(&copy).unwrap() == data, "the file differs");
    assert!(!dir.path().join("copy.bin.part").exists(), "no .part left");
}

#[test]
fn a_complete_part_is_verified_and_nothing_travels() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(1 << 20, 5);
    let src = dir.path().join("f.bin");
    std::fs::write(&src, &data).unwrap();
    let (out, out_arg) = folder(dir.path());
    std::fs::write(out.join("f.bin.part"), &data).unwrap();

    let done = resume_run(dir.path(), "run", &src, &out_arg);
    assert_eq!(done.send_stats["resumed_bytes"], data.len());
    assert_eq!(done.send_stats["bytes"], 0);
    assert_eq!(done.send_stats["verified"], true);
    assert_eq!(files_in(&out), vec!["f.bin"]);
    assert!(std::fs::read(out.join("f.bin")).unwrap() == data);
}

#[test]
fn stdin_is_not_resumable_says_so_and_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(1 << 20, 6);
    let (out, out_arg) = folder(dir.path());
    // A stale stream.part must not be taken for a prefix.
    std::fs::write(out.join("stream.part"), &data[..1000]).unwrap();
    let t = tokens(dir.path(), "run");
    let mut rx = receiver(&t);
    rx.args(["--resume", "-o", &out_arg]);
    let mut recv = Proc::spawn("recv", rx, dir.path());
    let (mut send, writer) = spawn_fed("send", sender(&[], &t), dir.path(), data.clone());
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    writer.join().unwrap().unwrap();
    let err = recv.stderr_text();
    let said: Vec<&str> = err.lines().filter(|l| l.contains("cannot be resumed")).collect();
    assert_eq!(said.len(), 1, "one clear line: {err}");
    assert!(said[0].contains("stdin") && said[0].contains("from the start"), "{err}");
    assert_eq!(files_in(&out), vec!["stream"]);
    assert!(std::fs::read(out.join("stream")).unwrap() == data, "stdin differs");
}

#[test]
fn resume_without_a_place_for_the_part_is_a_usage_error() {
    let out = dcsend().args(["recv", "--resume"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--resume") && err.contains("-o DIR/"), "{err}");
    assert!(out.stdout.is_empty());

    let out = dcsend().args(["recv", "--resume", "--sink"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--resume") && err.contains("--sink"), "{err}");
}

#[test]
fn without_resume_an_old_part_is_overwritten_and_dcsend_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(1 << 20, 7);
    let src = dir.path().join("f.bin");
    std::fs::write(&src, &data).unwrap();
    let (out, out_arg) = folder(dir.path());
    std::fs::write(out.join("f.bin.part"), &data[..5000]).unwrap();
    let t = tokens(dir.path(), "run");
    let mut rx = receiver(&t);
    rx.args(["-o", &out_arg]);
    let mut recv = Proc::spawn("recv", rx, dir.path());
    let mut send = Proc::spawn("send", sender(&[&src], &t), dir.path());
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    let err = recv.stderr_text();
    assert!(err.contains("overwriting") && err.contains("recv --resume"), "{err}");
    assert!(!send.stderr_text().contains("resumed"), "{}", send.stderr_text());
    assert_eq!(files_in(&out), vec!["f.bin"]);
    assert!(std::fs::read(out.join("f.bin")).unwrap() == data);
}
