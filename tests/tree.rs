//! Folders sent whole (docs/protocol.md, "Trees"): two real `dcsend` processes on loopback.
//! A tree arrives byte-exact with its executable bits and modification times, empty folders
//! included; links and FIFOs inside it are skipped and listed; a receiver that cannot hold a
//! folder refuses it with what to do.

mod common;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::*;

/// One entry of a tree, as compared.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    /// Its path from the tree's root.
    path: String,
    kind: String,
    /// A file's bytes.
    data: Option<Vec<u8>>,
    exec: bool,
    /// Modification time, nanoseconds since the Unix epoch.
    mtime: i128,
}

/// What a tree holds, as a comparable list, sorted by path.
fn listing(root: &Path) -> Vec<Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<Entry>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = path.symlink_metadata().unwrap();
            let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
            let exec = meta.permissions().mode() & 0o111 != 0;
            let ft = meta.file_type();
            let (kind, data) = if ft.is_dir() {
                ("folder".into(), None)
            } else if ft.is_file() {
                ("file".into(), Some(std::fs::read(&path).unwrap()))
            } else {
                (format!("{ft:?}"), None)
            };
            out.push(Entry { path: rel, kind, data, exec, mtime });
            if ft.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Sets `path`'s modification time (without following a link).
fn set_mtime(path: &Path, secs: u64, nanos: u32) {
    let at = SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
    std::fs::File::open(path)
        .unwrap()
        .set_times(std::fs::FileTimes::new().set_modified(at))
        .unwrap();
}

/// `TMP/src/photos`: nested folders, an empty one, an executable, spaces and non-ASCII,
/// 0-byte files, a symlink to a file outside, a FIFO; fixed odd mtimes on files and folders
/// (set last, deepest first, so writing the tree does not change them).
fn photos(tmp: &Path) -> PathBuf {
    let root = tmp.join("src/photos");
    for d in ["2024/summer trip", "2024/ünïcödé", "empty", "deep/a/b/c"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let files: [(&str, Vec<u8>); 7] = [
        ("2024/summer trip/beach 1.jpg", random_bytes(200_000, 1)),
        ("2024/summer trip/zero.bin", Vec::new()),
        ("2024/ünïcödé/😀 smile.txt", b"smile\n".to_vec()),
        ("deep/a/b/c/leaf", random_bytes(70_000, 2)),
        ("deep/empty-file", Vec::new()),
        ("run.sh", b"#!/bin/sh\necho hi\n".to_vec()),
        ("notes.txt", random_bytes(3, 3)),
    ];
    for (path, data) in &files {
        std::fs::write(root.join(path), data).unwrap();
    }
    let exec = root.join("run.sh");
    std::fs::set_permissions(&exec, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(tmp.join("secret"), b"outside the tree").unwrap();
    std::os::unix::fs::symlink(tmp.join("secret"), root.join("2024/link-to-secret")).unwrap();
    nix::unistd::mkfifo(&root.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    for (i, (path, _)) in files.iter().enumerate() {
        set_mtime(&root.join(path), 1_000_000_000 + i as u64 * 1000, 123_456_789 + i as u32);
    }
    for (i, d) in
        ["deep/a/b/c", "deep/a/b", "deep/a", "deep", "empty", "2024/ünïcödé", "2024/summer trip"]
            .iter()
            .enumerate()
    {
        set_mtime(&root.join(d), 900_000_000 + i as u64, 987_654_321);
    }
    set_mtime(&root.join("2024"), 800_000_000, 5);
    set_mtime(&root, 700_000_000, 7);
    root
}

/// A run of `dcsend SRC...` into `dcsend recv RECV_ARGS...`, both in `tmp`.
fn run(tmp: &Path, srcs: &[&Path], recv_args: &[&str]) -> (Proc, Proc) {
    let t = Tokens::in_dir(tmp);
    let mut rx = receiver(&t);
    rx.args(recv_args).current_dir(tmp);
    let recv = Proc::spawn("recv", rx, tmp);
    let send = Proc::spawn("send", sender(srcs, &t), tmp);
    (send, recv)
}

#[test]
fn a_tree_arrives_byte_exact_with_modes_and_mtimes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = photos(tmp.path());
    let loose = tmp.path().join("src/loose file.txt");
    std::fs::write(&loose, b"next to the folder").unwrap();
    let out = tmp.path().join("out");
    let (mut send, mut recv) = run(tmp.path(), &[&src, &loose], &["-o", "out/"]);
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);

    let mut want = listing(&src);
    want.retain(|e| e.path != "fifo" && e.path != "2024/link-to-secret");
    assert_eq!(listing(&out.join("photos")), want, "the tree differs");
    // The folder itself keeps its time too.
    let mtime = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.mtime(), m.mtime_nsec())
    };
    assert_eq!(mtime(&out.join("photos")), mtime(&src));
    assert_eq!(std::fs::read(out.join("loose file.txt")).unwrap(), b"next to the folder");
    assert_eq!(files_in(&out), ["loose file.txt", "photos"], "no .part left, nothing else");

    let err = send.stderr_text();
    assert!(err.contains("photos/2024/link-to-secret: a symbolic link (not followed)"), "{err}");
    assert!(err.contains("photos/fifo: a FIFO"), "{err}");
    assert!(err.contains("sent 8 files"), "{err}");
    assert!(recv.stderr_text().contains("received 8 files"), "{}", recv.stderr_text());
}

/// Both sides refuse at the other's `hello`, each on its own: each exits 1 (its own refusal)
/// or 3 (the other's abort came first), and both say why.
fn refused_on_both_sides(send: &mut Proc, recv: &mut Proc) {
    for p in [send, recv] {
        let code = p.wait(WAIT).code();
        assert!(matches!(code, Some(1 | 3)), "exit {code:?}:\n{}", p.stderr_text());
    }
}

#[test]
fn a_receiver_writing_to_stdout_refuses_a_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let src = photos(tmp.path());
    let (mut send, mut recv) = run(tmp.path(), &[&src], &[]);
    refused_on_both_sides(&mut send, &mut recv);
    assert!(recv.stdout_bytes().is_empty(), "something reached stdout");
    for err in [send.stderr_text(), recv.stderr_text()] {
        assert!(err.contains("cannot hold a folder"), "{err}");
        assert!(err.contains("dcsend recv -o DIR/"), "{err}");
    }
}

#[test]
fn a_receiver_writing_one_file_refuses_a_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let src = photos(tmp.path());
    let (mut send, mut recv) = run(tmp.path(), &[&src], &["-o", "copy.bin"]);
    refused_on_both_sides(&mut send, &mut recv);
    assert!(recv.stderr_text().contains("-o names one file"), "{}", recv.stderr_text());
    assert!(!tmp.path().join("copy.bin").exists() && !tmp.path().join("copy.bin.part").exists());
}

/// The last `--stats` line (the summary) of `path`.
fn stats_summary(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(v["t"], "summary", "{text}");
    v
}

/// A tree broken by killing the sender mid-way, then the same command again with
/// `recv --resume`: the files already there whole are not sent again, the one cut short
/// continues from its `.part`, and the rest follows; the result is byte-exact.
#[test]
fn a_tree_killed_mid_way_moves_only_what_is_missing_when_run_again() {
    const FILES: usize = 8;
    const SIZE: usize = 2 << 20;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src/t");
    std::fs::create_dir_all(src.join("empty")).unwrap();
    std::fs::create_dir_all(src.join("sub")).unwrap();
    for i in 0..FILES {
        std::fs::write(src.join(format!("sub/f{i}")), random_bytes(SIZE, 100 + i as u64)).unwrap();
    }
    std::fs::write(src.join("zero"), b"").unwrap();
    let total = (FILES * SIZE) as u64;
    std::fs::create_dir(tmp.path().join("out")).unwrap();
    let landed = |i: usize| tmp.path().join(format!("out/t/sub/f{i}"));

    // Run 1: slow enough to catch mid-way (small messages under a small threshold); killed
    // (SIGKILL: no abort) once three files are whole.
    let d1 = tmp.path().join("run1");
    std::fs::create_dir(&d1).unwrap();
    let t = Tokens::in_dir(&d1);
    let mut rx = receiver(&t);
    rx.args(["-o", "out/", "--liveness-timeout", "3s"]).current_dir(tmp.path());
    let mut recv = Proc::spawn("recv1", rx, &d1);
    let mut tx = sender(&[&src], &t);
    tx.args(["--chunk-size", "16K", "--threshold", "64K", "--liveness-timeout", "3s"]);
    let mut send = Proc::spawn("send1", tx, &d1);
    wait_until(WAIT, "three whole files", || landed(2).exists());
    send.child.kill().unwrap();
    send.wait(WAIT);
    assert!(!landed(FILES - 1).exists(), "the tree finished before the sender could be killed");
    assert!(!recv.wait(WAIT).success(), "the receiver must fail: {}", recv.stderr_text());

    // Run 2: the same command, the receiver with --resume.
    let d2 = tmp.path().join("run2");
    std::fs::create_dir(&d2).unwrap();
    let t = Tokens::in_dir(&d2);
    let (send_stats, recv_stats) = (d2.join("send.ndjson"), d2.join("recv.ndjson"));
    let mut rx = receiver(&t);
    rx.args(["--resume", "-o", "out/"]).arg("--stats").arg(&recv_stats).current_dir(tmp.path());
    let mut recv = Proc::spawn("recv2", rx, &d2);
    let mut tx = sender(&[&src], &t);
    tx.arg("--stats").arg(&send_stats);
    let mut send = Proc::spawn("send2", tx, &d2);
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);

    let stats = stats_summary(&send_stats);
    let (resumed, wire) =
        (stats["resumed_bytes"].as_u64().unwrap(), stats["bytes"].as_u64().unwrap());
    assert!(resumed >= 3 * SIZE as u64, "the three whole files were sent again: {stats}");
    assert_eq!(resumed + wire, total, "only what was missing travelled: {stats}");
    assert_eq!(stats_summary(&recv_stats)["resumed_bytes"], resumed);
    assert_eq!(
        listing(&tmp.path().join("out/t")),
        listing(&src),
        "the tree (bytes, modes, times) differs after the second run"
    );
}

/// `--resume` keeps a file already there only when the sender's hashes the same: one of the
/// same size but other bytes is neither kept nor overwritten (without `--force`).
#[test]
fn resume_refuses_a_different_file_of_the_same_size_and_leaves_it() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("a.bin");
    std::fs::write(&src, random_bytes(10_000, 1)).unwrap();
    std::fs::create_dir(tmp.path().join("out")).unwrap();
    let theirs = random_bytes(10_000, 2);
    std::fs::write(tmp.path().join("out/a.bin"), &theirs).unwrap();
    let (mut send, mut recv) = run(tmp.path(), &[&src], &["--resume", "-o", "out/"]);
    recv.expect_code(1, WAIT);
    let code = send.wait(WAIT).code();
    assert!(matches!(code, Some(1 | 3)), "sender exit {code:?}");
    let err = recv.stderr_text();
    assert!(err.contains("exists and differs from the sender's file (use --force"), "{err}");
    assert_eq!(std::fs::read(tmp.path().join("out/a.bin")).unwrap(), theirs, "it was changed");
    assert_eq!(files_in(&tmp.path().join("out")), ["a.bin"]);
}
