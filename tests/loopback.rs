//! Two real `dcsend` processes on loopback, negotiating through token files, exactly as a
//! script would. Every wait is bounded and every child is killed by its handle on drop.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Sends `data` as a file and receives it into a folder; returns the received bytes.
fn round_trip_file(data: &[u8]) -> Vec<u8> {
    round_trip_into(data, &["out"], true).0
}

/// Sends `data` as `payload.bin` into `-o DIR/`, DIR being `folder` under a fresh temporary
/// folder (made first when `make`); checks that only the final file is there, and returns
/// its bytes and what the receiver said on stderr.
fn round_trip_into(data: &[u8], folder: &[&str], make: bool) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("payload.bin");
    std::fs::write(&src, data).unwrap();
    let out = folder.iter().fold(dir.path().to_path_buf(), |p, c| p.join(c));
    if make {
        std::fs::create_dir(&out).unwrap();
    }
    let t = Tokens::in_dir(dir.path());
    let mut rx = receiver(&t);
    rx.arg("-o").arg(format!("{}/", out.display()));
    let mut recv = Proc::spawn("recv", rx, dir.path());
    let mut send = Proc::spawn("send", sender(&[&src], &t), dir.path());
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    let entries: Vec<_> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("payload.bin")], "only the final file");
    (std::fs::read(out.join("payload.bin")).unwrap(), recv.stderr_text())
}

#[test]
fn sizes_around_message_boundaries_arrive_byte_exact() {
    for (i, len) in [0usize, 1, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 65535, 65536, 65537]
        .into_iter()
        .enumerate()
    {
        let data = random_bytes(len, 7 + i as u64);
        assert!(round_trip_file(&data) == data, "{len} bytes differ after the trip");
    }
}

#[test]
fn a_64_mib_random_file_arrives_byte_exact() {
    let data = random_bytes(64 << 20, 64);
    assert!(round_trip_file(&data) == data, "64 MiB differ after the trip");
}

/// `-o downloads/` (a trailing slash) that does not exist yet is made, as the README's first
/// example needs, and the receiver says so; the file lands in it.
#[test]
fn a_missing_output_folder_named_with_a_slash_is_made() {
    let data = random_bytes(100_000, 11);
    let (got, err) = round_trip_into(&data, &["downloads", "today"], false);
    assert!(got == data, "the file differs");
    assert!(err.contains("created the folder"), "no word of the new folder:\n{err}");
}

#[test]
fn three_files_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["a.txt", "b.bin", "c.dat"];
    let datas: Vec<Vec<u8>> = [100_000usize, 0, 300_001]
        .iter()
        .enumerate()
        .map(|(i, &n)| random_bytes(n, i as u64))
        .collect();
    let paths: Vec<_> = names.iter().map(|n| dir.path().join(n)).collect();
    for (p, d) in paths.iter().zip(&datas) {
        std::fs::write(p, d).unwrap();
    }
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let t = Tokens::in_dir(dir.path());
    let mut rx = receiver(&t);
    rx.arg("-o").arg(&out);
    let mut recv = Proc::spawn("recv", rx, dir.path());
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let mut send = Proc::spawn("send", sender(&refs, &t), dir.path());
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    for (n, d) in names.iter().zip(&datas) {
        assert!(std::fs::read(out.join(n)).unwrap() == *d, "{n} differs");
    }
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 3, "no .part left behind");
}

#[test]
fn stdin_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(3 << 20, 99);
    let t = Tokens::in_dir(dir.path());
    let mut recv = Proc::spawn("recv", receiver(&t), dir.path());
    let (mut send, writer) = spawn_fed("send", sender(&[], &t), dir.path(), data.clone());
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    writer.join().unwrap().unwrap();
    assert!(recv.stdout_bytes() == data, "stdout differs from stdin");
    assert!(recv.stderr_text().contains("SHA-256 verified"), "{}", recv.stderr_text());
}

#[test]
fn raw_sender_into_dcsend_recv_is_received_unverified() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(1 << 20, 5);
    let src = dir.path().join("raw.bin");
    std::fs::write(&src, &data).unwrap();
    let t = Tokens::in_dir(dir.path());
    let mut recv = Proc::spawn("recv", receiver(&t), dir.path());
    let mut tx = sender(&[&src], &t);
    tx.arg("--raw");
    let mut send = Proc::spawn("send", tx, dir.path());
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    assert!(recv.stdout_bytes() == data, "raw stream differs");
    assert!(recv.stderr_text().contains("unverified"), "{}", recv.stderr_text());
}

#[test]
fn receiver_offers_and_sender_answers() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(200_000, 11);
    let src = dir.path().join("x.bin");
    std::fs::write(&src, &data).unwrap();
    let t = Tokens::in_dir(dir.path());
    // The receiver writes the offer; the sender reads it and writes the answer.
    let mut rx = dcsend();
    rx.args(["recv", "--offer"]).args(LOOPBACK);
    rx.arg("--sdp-out").arg(&t.offer).arg("--sdp-in").arg(&t.answer);
    let mut recv = Proc::spawn("recv", rx, dir.path());
    let mut tx = dcsend();
    tx.arg(&src).arg("--answer").args(LOOPBACK);
    tx.arg("--sdp-in").arg(&t.offer).arg("--sdp-out").arg(&t.answer);
    let mut send = Proc::spawn("send", tx, dir.path());
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    assert!(recv.stdout_bytes() == data);
}

/// Peers that share no address family (one on 127.0.0.1 only, the other on ::1 only) have no
/// candidate pair at all: both must give up at --connect-timeout, with exit 3 and the hint.
#[test]
fn ice_that_can_never_connect_fails_within_the_connect_timeout() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipping: this machine has no IPv6 loopback (::1), needed for a second family");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("x.bin");
    std::fs::write(&src, b"never sent").unwrap();
    let t = Tokens::in_dir(dir.path());
    let timeout = ["--connect-timeout", "3s", "--progress", "never"];
    let mut tx = dcsend();
    tx.arg(&src).args(["--bind", "127.0.0.1:0"]).args(timeout);
    tx.arg("--sdp-out").arg(&t.offer).arg("--sdp-in").arg(&t.answer);
    let mut rx = dcsend();
    rx.args(["recv", "--bind", "[::1]:0"]).args(timeout);
    rx.arg("--sdp-in").arg(&t.offer).arg("--sdp-out").arg(&t.answer);
    let started = Instant::now();
    let mut send = Proc::spawn("send", tx, dir.path());
    let mut recv = Proc::spawn("recv", rx, dir.path());
    recv.expect_code(3, WAIT);
    send.expect_code(3, WAIT);
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(3) && took < Duration::from_secs(10), "took {took:?}");
    for p in [&send, &recv] {
        let err = p.stderr_text();
        assert!(err.contains("did not open within 3s") && err.contains("hint:"), "{err}");
    }
    assert!(recv.stdout_bytes().is_empty());
}

/// A TURN server that never answers, with --relay-only: no candidate can be gathered, so the
/// sender gives up after the 10 s gathering bound with exit 3, naming the server.
#[test]
fn an_unreachable_turn_server_is_named_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("x.bin");
    std::fs::write(&src, b"never sent").unwrap();
    let t = Tokens::in_dir(dir.path());
    // A UDP port that is bound and silent: requests go nowhere.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let turn = format!("turn:{}", silent.local_addr().unwrap());
    let mut tx = sender(&[&src], &t);
    tx.args(["--turn", &turn, "--turn-user", "u", "--relay-only"]);
    tx.env("DCSEND_TURN_PASSWORD", "p");
    let started = Instant::now();
    let mut send = Proc::spawn("send", tx, dir.path());
    send.expect_code(3, WAIT);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    let err = send.stderr_text();
    assert!(err.contains(&format!("no answer from {turn}")), "{err}");
    assert!(!t.offer.exists(), "no offer may be written without a candidate");
}

/// Starts a sender whose stdin is an open pipe we feed 1 MiB at a time, never closing it,
/// so the transfer is mid-way for as long as the test wants.
fn endless_pair(dir: &Path, recv_args: &[&str]) -> (Proc, Proc, std::thread::JoinHandle<()>) {
    let t = Tokens::in_dir(dir);
    let mut rx = receiver(&t);
    rx.args(recv_args).args(["--liveness-timeout", "3s"]);
    let recv = Proc::spawn("recv", rx, dir);
    let mut tx = sender(&[], &t);
    tx.args(["--liveness-timeout", "3s"]).stdin(Stdio::piped());
    let mut send = Proc::spawn("send", tx, dir);
    let mut stdin = send.child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let chunk = random_bytes(1 << 20, 3);
        let start = Instant::now();
        while start.elapsed() < WAIT && stdin.write_all(&chunk).is_ok() {
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    (send, recv, feeder)
}

/// An [`endless_pair`] receiving into `DIR/out/`, returned once 4 MiB have reached
/// `out/stream.part`. Returns the sender, the receiver, the feeder and the folder.
fn mid_transfer_into_folder(
    dir: &Path,
) -> (Proc, Proc, std::thread::JoinHandle<()>, std::path::PathBuf) {
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let out_arg = format!("{}/", out.display());
    let (send, recv, feeder) = endless_pair(dir, &["-o", &out_arg]);
    let part = out.join("stream.part");
    wait_until(WAIT, "the receiver to write 4 MiB", || {
        std::fs::metadata(&part).map(|m| m.len() >= 4 << 20).unwrap_or(false)
    });
    (send, recv, feeder, out)
}

#[test]
fn receiver_killed_mid_transfer_sender_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let (mut send, mut recv, feeder, _) = mid_transfer_into_folder(dir.path());
    recv.child.kill().unwrap();
    let killed = Instant::now();
    send.expect_code(3, WAIT);
    assert!(killed.elapsed() < Duration::from_secs(20), "sender took {:?}", killed.elapsed());
    assert!(send.stderr_text().contains("confirmed"), "{}", send.stderr_text());
    drop(send);
    feeder.join().unwrap();
}

#[test]
fn sender_killed_mid_transfer_receiver_exits_3_and_keeps_only_part() {
    let dir = tempfile::tempdir().unwrap();
    let (mut send, mut recv, feeder, out) = mid_transfer_into_folder(dir.path());
    send.child.kill().unwrap();
    let killed = Instant::now();
    recv.expect_code(3, WAIT);
    assert!(killed.elapsed() < Duration::from_secs(20), "receiver took {:?}", killed.elapsed());
    let entries: Vec<_> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("stream.part")]);
    drop(send);
    feeder.join().unwrap();
}

#[test]
fn ctrl_c_on_the_sender_aborts_the_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let (mut send, mut recv, feeder) = endless_pair(dir.path(), &[]);
    wait_until(WAIT, "payload on the receiver's stdout", || {
        std::fs::metadata(&recv.stdout).map(|m| m.len() >= 4 << 20).unwrap_or(false)
    });
    send.signal(nix::sys::signal::Signal::SIGINT);
    send.expect_code(130, WAIT);
    recv.expect_code(3, WAIT);
    assert!(recv.stderr_text().contains("the sender was interrupted"), "{}", recv.stderr_text());
    drop(send);
    feeder.join().unwrap();
}
