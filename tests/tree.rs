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
