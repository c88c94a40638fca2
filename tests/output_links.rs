//! The receiver never writes through a link, never opens a FIFO or a device, and never
//! replaces something at `NAME` it was not asked to: real `dcsend` processes on loopback,
//! with an output folder the test prepared the way an archive or an attacker could
//! (README, "What dcsend guarantees"; `src/transfer/sink.rs`, "Never through a link").
//!
//! Each case puts a file the receiver must not touch outside the output folder
//! (`TMP/elsewhere`) and checks its bytes afterwards. A case that hung in `open()` would fail
//! at the bounded wait, never block the suite. Every child is killed by its handle on drop.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::*;

/// The bytes of the file outside the folder that no case may change.
const PRECIOUS: &[u8] = b"precious: not to be overwritten";

/// A test folder: `src/` (the sender's files), `out/` (the receiver's folder) and
/// `elsewhere` (the outside file).
struct Setup {
    tmp: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("src")).unwrap();
        std::fs::create_dir(tmp.path().join("out")).unwrap();
        std::fs::write(tmp.path().join("elsewhere"), PRECIOUS).unwrap();
        Setup { tmp }
    }

    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    fn elsewhere(&self) -> PathBuf {
        self.tmp.path().join("elsewhere")
    }

    /// Writes a file `name` of `len` bytes for the sender; returns its path and bytes.
    fn source(&self, name: &str, len: usize, seed: u64) -> (PathBuf, Vec<u8>) {
        let path = self.tmp.path().join("src").join(name);
        let data = random_bytes(len, seed);
        std::fs::write(&path, &data).unwrap();
        (path, data)
    }

    /// Runs `dcsend FILES...` against `dcsend recv RECV_ARGS...` and waits for both.
    fn run(&self, files: &[&Path], recv_args: &[&str]) -> Ran {
        let logs = tempfile::tempdir_in(self.tmp.path()).unwrap();
        let t = Tokens::in_dir(logs.path());
        let mut rx = receiver(&t);
        rx.args(recv_args);
        let mut recv = Proc::spawn("recv", rx, logs.path());
        let mut send = Proc::spawn("send", sender(files, &t), logs.path());
        let (send_code, recv_code) = (send.wait(WAIT).code(), recv.wait(WAIT).code());
        Ran { send, recv, send_code, recv_code, _logs: logs }
    }

    /// The outside file is as it was.
    fn expect_elsewhere_untouched(&self) {
        let meta = std::fs::symlink_metadata(self.elsewhere()).unwrap();
        assert!(meta.file_type().is_file() && meta.len() == PRECIOUS.len() as u64);
        assert_eq!(std::fs::read(self.elsewhere()).unwrap(), PRECIOUS, "the outside file changed");
    }
}

struct Ran {
    send: Proc,
    recv: Proc,
    send_code: Option<i32>,
    recv_code: Option<i32>,
    _logs: tempfile::TempDir,
}

impl Ran {
    /// Both exited with these codes (stderr shown otherwise).
    fn expect_codes(&self, send: i32, recv: i32) {
        assert_eq!(
            (self.send_code, self.recv_code),
            (Some(send), Some(recv)),
            "exit codes (send, recv); sender stderr:\n{}\nreceiver stderr:\n{}",
            self.send.stderr_text(),
            self.recv.stderr_text()
        );
    }

    /// The receiver refused, saying `needle`; the sender was told why (in the peer's abort).
    fn expect_refused(&self, needle: &str) {
        self.expect_codes(3, 1);
        let (recv, send) = (self.recv.stderr_text(), self.send.stderr_text());
        assert!(recv.contains(needle), "receiver stderr lacks {needle:?}:\n{recv}");
        assert!(send.contains(needle), "sender stderr lacks {needle:?}:\n{send}");
        assert!(!recv.contains("panicked"), "{recv}");
    }
}

fn symlink_at(link: &Path, target: &Path) {
    symlink(target, link).unwrap();
}

fn is_link_to(link: &Path, target: &Path) -> bool {
    std::fs::read_link(link).is_ok_and(|t| t == target)
}

/// `out/NAME.part -> elsewhere`: with and without `--force` and `--resume`, the receiver
/// refuses the item, names what is in the way, writes nothing through the link, and says
/// nothing about the link's target (not its size either).
fn a_symlinked_part_in_the_folder_is_refused_and_its_target_untouched() {
    for extra in [&[][..], &["--force"], &["--resume"], &["--force", "--resume"]] {
        let s = Setup::new();
        let (src, _) = s.source("payload.bin", 100_000, 1);
        let part = s.out().join("payload.bin.part");
        symlink_at(&part, &s.elsewhere());
        let out = format!("{}/", s.out().display());
        let args = [&["-o", out.as_str()][..], extra].concat();
        let ran = s.run(&[&src], &args);
        ran.expect_refused("is a symbolic link, not a regular file");
        s.expect_elsewhere_untouched();
        assert!(is_link_to(&part, &s.elsewhere()), "{extra:?}: the link was changed");
        assert_eq!(files_in(&s.out()), ["payload.bin.part"], "{extra:?}");
        let stderr = ran.recv.stderr_text();
        let size = format!("{} bytes", PRECIOUS.len());
        assert!(!stderr.contains(&size), "{extra:?}: the target's size leaked:\n{stderr}");
        assert!(!stderr.contains("overwriting"), "{extra:?}: {stderr}");
    }
}

/// `-o out/FILE` with `out/FILE.part -> elsewhere`: the same.
fn a_symlinked_part_next_to_an_output_file_is_refused() {
    for extra in [&[][..], &["--force"]] {
        let s = Setup::new();
        let (src, _) = s.source("payload.bin", 10_000, 2);
        let part = s.out().join("copy.bin.part");
        symlink_at(&part, &s.elsewhere());
        let file = s.out().join("copy.bin");
        let args = [&["-o", file.to_str().unwrap()][..], extra].concat();
        let ran = s.run(&[&src], &args);
        ran.expect_refused("copy.bin.part is a symbolic link");
        s.expect_elsewhere_untouched();
        assert_eq!(files_in(&s.out()), ["copy.bin.part"], "{extra:?}");
    }
}

/// A FIFO at `NAME.part` (fresh and resumed): refused at once, never opened (an open would
/// block until someone opens the other end).
fn a_fifo_at_the_part_is_refused_without_hanging() {
    for extra in [&[][..], &["--resume"]] {
        let s = Setup::new();
        let (src, _) = s.source("payload.bin", 10_000, 3);
        let fifo = s.out().join("payload.bin.part");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let out = format!("{}/", s.out().display());
        let args = [&["-o", out.as_str()][..], extra].concat();
        let ran = s.run(&[&src], &args);
        ran.expect_refused("is a FIFO (named pipe), not a regular file");
        let meta = std::fs::symlink_metadata(&fifo).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()), "{extra:?}");
    }
}

/// `NAME.part` hard-linked to the outside file: a fresh transfer replaces the name (the
/// outside file keeps its bytes); a resume does not read or append to it either.
fn a_hard_linked_part_never_changes_the_other_file() {
    for extra in [&[][..], &["--resume"]] {
        let s = Setup::new();
        let (src, data) = s.source("payload.bin", 200_000, 4);
        std::fs::hard_link(s.elsewhere(), s.out().join("payload.bin.part")).unwrap();
        let out = format!("{}/", s.out().display());
        let args = [&["-o", out.as_str()][..], extra].concat();
        let ran = s.run(&[&src], &args);
        ran.expect_codes(0, 0);
        s.expect_elsewhere_untouched();
        assert!(std::fs::read(s.out().join("payload.bin")).unwrap() == data, "{extra:?}");
        assert_eq!(files_in(&s.out()), ["payload.bin"], "{extra:?}");
        if !extra.is_empty() {
            let stderr = ran.recv.stderr_text();
            assert!(stderr.contains("has 2 names"), "--resume says why not:\n{stderr}");
        }
    }
}

/// A dangling symlink at `NAME` exists: refused without `--force` (its target is not
/// created); with `--force` the link itself is replaced by the file.
fn a_dangling_symlink_at_the_name_counts_as_existing() {
    let s = Setup::new();
    let (src, data) = s.source("payload.bin", 10_000, 5);
    let nowhere = s.tmp.path().join("nowhere");
    let name = s.out().join("payload.bin");
    symlink_at(&name, &nowhere);
    let out = format!("{}/", s.out().display());
    let ran = s.run(&[&src], &["-o", &out]);
    ran.expect_refused("exists and is a symbolic link (use --force to replace it");
    assert!(is_link_to(&name, &nowhere), "the link was changed");
    assert!(!nowhere.exists(), "the link's target was created");
    assert_eq!(files_in(&s.out()), ["payload.bin"]);

    let ran = s.run(&[&src], &["-o", &out, "--force"]);
    ran.expect_codes(0, 0);
    let meta = std::fs::symlink_metadata(&name).unwrap();
    assert!(meta.file_type().is_file(), "the link was not replaced by the file");
    assert!(std::fs::read(&name).unwrap() == data);
    assert!(!nowhere.exists(), "the link's target was created");
}

/// `-o FILE` where FILE is a dangling symlink: refused before connecting (no answer token is
/// written), like an existing file.
fn an_output_file_that_is_a_dangling_symlink_is_refused_before_connecting() {
    let s = Setup::new();
    let file = s.out().join("copy.bin");
    let nowhere = s.tmp.path().join("nowhere");
    symlink_at(&file, &nowhere);
    let t = Tokens::in_dir(s.tmp.path());
    std::fs::write(&t.offer, "not read").unwrap();
    let mut rx = receiver(&t);
    rx.arg("-o").arg(&file);
    let mut recv = Proc::spawn("recv", rx, s.tmp.path());
    recv.expect_code(1, WAIT);
    let stderr = recv.stderr_text();
    assert!(stderr.contains("exists (a symbolic link) (use --force to overwrite)"), "{stderr}");
    assert!(!t.answer.exists(), "it connected before refusing");
    assert!(!nowhere.exists());
    assert!(is_link_to(&file, &nowhere));
}

/// Names valid on Linux arrive under their names, in one run: one ending in `.part` (next to
/// the file whose temporary name it is) and a Windows device name.
fn movie_part_and_con_txt_arrive_on_linux() {
    let s = Setup::new();
    let sources: Vec<(PathBuf, Vec<u8>)> = ["movie", "movie.part", "con.txt", "nul"]
        .iter()
        .enumerate()
        .map(|(i, n)| s.source(n, 1000 * (i + 1), 10 + i as u64))
        .collect();
    let files: Vec<&Path> = sources.iter().map(|(p, _)| p.as_path()).collect();
    let out = format!("{}/", s.out().display());
    let ran = s.run(&files, &["-o", &out]);
    ran.expect_codes(0, 0);
    assert_eq!(files_in(&s.out()), ["con.txt", "movie", "movie.part", "nul"]);
    for (path, data) in &sources {
        let got = std::fs::read(s.out().join(path.file_name().unwrap())).unwrap();
        assert!(got == *data, "{} differs", path.display());
    }
}

/// `movie.part` first, then `movie`: `movie`'s temporary file would be the `movie.part` just
/// received, so `movie` is refused with that reason and `movie.part` stays whole.
fn movie_after_movie_part_never_clobbers_it() {
    let s = Setup::new();
    let (first, data) = s.source("movie.part", 50_000, 20);
    let (second, _) = s.source("movie", 60_000, 21);
    let out = format!("{}/", s.out().display());
    let ran = s.run(&[&first, &second], &["-o", &out]);
    ran.expect_refused("is a file received earlier in this run");
    assert_eq!(files_in(&s.out()), ["movie.part"]);
    assert!(std::fs::read(s.out().join("movie.part")).unwrap() == data);
}

/// The ack promises the file survives a power cut, and a power cut never leaves a `NAME`
/// whose data did not reach the disk: the receiver syncs its file system (`syncfs`, one for a
/// batch of files) after writing each verified `NAME.part` and before renaming it to `NAME`,
/// and again after the rename, before the ack. A power cut cannot be simulated here, so this
/// watches the system calls with `strace` (ignored without it, unless
/// `DCSEND_TEST_REQUIRE_STRACE=1`), for a small file (held in memory until verified, then
/// written by its batch) and a larger one (streamed to its `.part` as it arrives): between
/// the creation of each `NAME.part` and its rename a `syncfs`, and another after the rename.
fn data_is_synced_before_the_rename_and_the_name_after() {
    let have_strace = std::process::Command::new("strace")
        .arg("-V")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_strace {
        return skip("STRACE", "strace is not installed (Debian: strace)");
    }
    let s = Setup::new();
    let (small, small_data) = s.source("small.txt", 3_000, 31);
    let (large, large_data) = s.source("payload.bin", 100_000, 30);
    let trace = s.tmp.path().join("recv.strace");
    let t = Tokens::in_dir(s.tmp.path());
    let mut rx = std::process::Command::new("strace");
    rx.args(["-f", "-qq", "-e", "trace=openat,fsync,fdatasync,syncfs,rename,renameat,renameat2"]);
    rx.arg("-o").arg(&trace).arg(env!("CARGO_BIN_EXE_dcsend"));
    rx.arg("recv").args(LOOPBACK).arg("--sdp-in").arg(&t.offer).arg("--sdp-out").arg(&t.answer);
    rx.arg("-o").arg(format!("{}/", s.out().display()));
    rx.stdin(std::process::Stdio::null());
    let mut recv = Proc::spawn("recv", rx, s.tmp.path());
    let mut send = Proc::spawn("send", sender(&[&small, &large], &t), s.tmp.path());
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);
    assert!(std::fs::read(s.out().join("small.txt")).unwrap() == small_data);
    assert!(std::fs::read(s.out().join("payload.bin")).unwrap() == large_data);
    let calls = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    let find = |what: &str, pred: &dyn Fn(&str) -> bool| {
        lines.iter().position(|l| pred(l)).unwrap_or_else(|| panic!("no {what} in:\n{calls}"))
    };
    for name in ["small.txt", "payload.bin"] {
        let part = format!("\"{name}.part\"");
        let created = find("creation", &|l| {
            l.contains("openat(") && l.contains(&part) && l.contains("O_CREAT")
        });
        let renamed = find("rename", &|l| l.contains("rename") && l.contains(&part));
        assert!(created < renamed, "{name}: renamed before it was created:\n{calls}");
        assert!(
            lines[created..renamed].iter().any(|l| l.contains("syncfs(")),
            "{name}: no syncfs between writing its .part and renaming it:\n{calls}"
        );
        assert!(
            lines[renamed..].iter().any(|l| l.contains("syncfs(")),
            "{name}: no syncfs after the rename:\n{calls}"
        );
    }
}

crate::skippable_tests!(
    a_symlinked_part_in_the_folder_is_refused_and_its_target_untouched,
    a_symlinked_part_next_to_an_output_file_is_refused,
    a_fifo_at_the_part_is_refused_without_hanging,
    a_hard_linked_part_never_changes_the_other_file,
    a_dangling_symlink_at_the_name_counts_as_existing,
    an_output_file_that_is_a_dangling_symlink_is_refused_before_connecting,
    movie_part_and_con_txt_arrive_on_linux,
    movie_after_movie_part_never_clobbers_it,
    data_is_synced_before_the_rename_and_the_name_after,
);
