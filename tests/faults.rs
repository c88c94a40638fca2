//! Faults mid-transfer, as a user meets them: one peer SIGKILLed at a random point of a
//! four-file transfer (either side), and Ctrl-C on the receiver. What must hold whatever the
//! point:
//!
//! - the survivor exits within a bounded time, 0 only if everything was delivered, else 3;
//! - a sender that fails says how many bytes the receiver confirmed, and the files making up
//!   that count are in the output folder, byte-exact (plus at most the one whose ack the kill
//!   cut off); a receiver that fails counts exactly the files it stored;
//! - the output folder never holds a complete-looking file that is not byte-exact: anything
//!   unfinished is a `NAME.part`.
//!
//! The kill points come from a seed printed on stderr; `DCSEND_FAULT_SEED=N` replays one.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;
use rand::{RngExt, SeedableRng};

/// Files per transfer and the size of each: acks come per file, so "bytes confirmed" has
/// several possible values.
const FILES: usize = 4;
const FILE_SIZE: usize = 4 << 20;
/// Kill points per direction.
const POINTS: usize = 4;
/// How long the survivor may take to notice (liveness timeout 3 s, plus slack for 2 cores).
const NOTICE: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Victim {
    Sender,
    Receiver,
}

struct Run {
    _dir: tempfile::TempDir,
    out: PathBuf,
    files: Vec<(PathBuf, Vec<u8>)>,
    send: Proc,
    recv: Proc,
}

/// A sender of [`FILES`] random files and a receiver into `out/`, both with a 3 s liveness
/// timeout, started together.
fn start(seed: u64) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let files: Vec<(PathBuf, Vec<u8>)> = (0..FILES)
        .map(|i| {
            let path = dir.path().join(format!("part{i}.bin"));
            let data = random_bytes(FILE_SIZE, seed.wrapping_add(i as u64));
            std::fs::write(&path, &data).unwrap();
            (path, data)
        })
        .collect();
    let t = Tokens::in_dir(dir.path());
    let mut rx = receiver(&t);
    rx.arg("-o").arg(format!("{}/", out.display())).args(["--liveness-timeout", "3s"]);
    let paths: Vec<&Path> = files.iter().map(|(p, _)| p.as_path()).collect();
    let mut tx = sender(&paths, &t);
    tx.args(["--liveness-timeout", "3s"]);
    let recv = Proc::spawn("recv", rx, dir.path());
    let send = Proc::spawn("send", tx, dir.path());
    Run { _dir: dir, out, files, send, recv }
}

/// Bytes in the output folder, finished or not.
fn bytes_in(out: &Path) -> u64 {
    std::fs::read_dir(out)
        .map(|rd| rd.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// `(N bytes confirmed by the peer)` from a failure message.
fn confirmed_bytes(stderr: &str) -> Option<u64> {
    let (before, _) = stderr.split_once(" bytes delivered and confirmed")?;
    before.rsplit(['(', ' ']).next()?.parse().ok()
}

/// The folder holds only byte-exact files of this run and at most one `.part`; returns the
/// names of the finished ones.
fn check_folder(run: &Run, context: &str) -> Vec<String> {
    let mut finished = Vec::new();
    let mut parts = 0;
    for entry in std::fs::read_dir(&run.out).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".part") {
            parts += 1;
            continue;
        }
        let (_, want) = run
            .files
            .iter()
            .find(|(p, _)| p.file_name().unwrap().to_str() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{context}: unexpected file {name} in the output"));
        let got = std::fs::read(run.out.join(&name)).unwrap();
        assert!(got == *want, "{context}: {name} looks complete but is not byte-exact");
        finished.push(name);
    }
    assert!(parts <= 1, "{context}: {parts} .part files");
    finished.sort();
    finished
}

/// One run: kill `victim` once `at` bytes have reached the folder (or when the transfer
/// finishes first), then check the survivor and the folder.
fn kill_at(victim: Victim, at: u64, seed: u64) {
    let context = format!("{victim:?} killed at {at} bytes (seed {seed})");
    let mut run = start(seed);
    let started = Instant::now();
    // Wait for the kill point, or for either process to end on its own.
    loop {
        let ended = run.send.child.try_wait().unwrap().is_some()
            || run.recv.child.try_wait().unwrap().is_some();
        if ended || bytes_in(&run.out) >= at {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "{context}: no progress; sender:\n{}\nreceiver:\n{}",
            run.send.stderr_text(),
            run.recv.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let (dead, survivor) = match victim {
        Victim::Sender => (&mut run.send, &mut run.recv),
        Victim::Receiver => (&mut run.recv, &mut run.send),
    };
    let _ = dead.child.kill(); // may have exited already
    let _ = dead.child.wait();
    let killed = Instant::now();
    let status = survivor.wait(NOTICE);
    let noticed = killed.elapsed();
    let stderr = survivor.stderr_text();
    let code = status.code();
    assert!(code == Some(0) || code == Some(3), "{context}: survivor exited {status}; {stderr}");
    assert!(!stderr.contains("panicked"), "{context}: {stderr}");
    let finished = check_folder(&run, &context);
    let total = (FILES * FILE_SIZE) as u64;
    match (victim, code) {
        (_, Some(0)) => assert_eq!(finished.len(), FILES, "{context}: exit 0 but {finished:?}"),
        (Victim::Receiver, _) => {
            // What the sender counts as confirmed is on disk: whole files, in order. The disk
            // may hold one more: stored and verified, but killed before its ack got out.
            let n = confirmed_bytes(&stderr).unwrap_or_else(|| panic!("{context}: {stderr}"));
            assert!(n < total, "{context}: exit 3 with everything confirmed: {stderr}");
            let want: Vec<String> =
                (0..(n as usize / FILE_SIZE)).map(|i| format!("part{i}.bin")).collect();
            assert_eq!(n as usize % FILE_SIZE, 0, "{context}: {n} is not whole files");
            assert!(
                finished.starts_with(&want) && finished.len() <= want.len() + 1,
                "{context}: sender said {n} bytes confirmed, the folder has {finished:?}"
            );
        }
        (Victim::Sender, _) => {
            let n = confirmed_bytes(&stderr).unwrap_or_else(|| panic!("{context}: {stderr}"));
            assert_eq!(n as usize, finished.len() * FILE_SIZE, "{context}: {stderr}");
        }
    }
    eprintln!(
        "{context}: survivor exit {code:?} after {:.1} s, {} of {FILES} files finished",
        noticed.as_secs_f64(),
        finished.len()
    );
}

/// The seed of this run: `DCSEND_FAULT_SEED`, else the clock.
fn seed() -> u64 {
    let seed =
        std::env::var("DCSEND_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
                as u64
        });
    eprintln!("fault points from seed {seed} (replay: DCSEND_FAULT_SEED={seed})");
    seed
}

/// Kill points: the channel just opened, then random points over the whole transfer.
fn points(seed: u64) -> Vec<u64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let total = (FILES * FILE_SIZE) as u64;
    let mut at = vec![1];
    at.extend((1..POINTS).map(|_| rng.random_range(1..total)));
    at
}

#[test]
fn sender_killed_at_random_points() {
    let seed = seed();
    for (i, at) in points(seed).into_iter().enumerate() {
        kill_at(Victim::Sender, at, seed.wrapping_add(i as u64));
    }
}

#[test]
fn receiver_killed_at_random_points() {
    let seed = seed().wrapping_add(1);
    for (i, at) in points(seed).into_iter().enumerate() {
        kill_at(Victim::Receiver, at, seed.wrapping_add(i as u64));
    }
}

#[test]
fn ctrl_c_on_the_receiver_aborts_the_sender() {
    let mut run = start(7);
    wait_until(WAIT, "4 MiB in the output folder", || bytes_in(&run.out) >= 4 << 20);
    run.recv.signal(Signal::SIGINT);
    run.recv.expect_code(130, WAIT);
    run.send.expect_code(3, WAIT);
    let err = run.send.stderr_text();
    assert!(err.contains("the peer aborted: the receiver was interrupted (SIGINT)"), "{err}");
    // A failed sender always says how much the receiver confirmed, after an abort too.
    assert!(confirmed_bytes(&err).is_some(), "{err}");
    let finished = check_folder(&run, "Ctrl-C on the receiver");
    assert!(finished.len() < FILES, "{finished:?}");
}

#[test]
fn confirmed_bytes_parses_the_failure_message() {
    let msg = "dcsend: the peer went away (8388608 bytes delivered and confirmed)\n";
    assert_eq!(confirmed_bytes(msg), Some(8 << 20));
    assert_eq!(confirmed_bytes("dcsend: something else"), None);
}
