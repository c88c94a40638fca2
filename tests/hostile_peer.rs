//! A hostile remote peer over a real WebRTC connection against a real `dcsend` process: a
//! scripted peer (tests/hostile/mod.rs, built from dcsend's own library) sends oversized or
//! malformed control messages, headers that lie about the size, data where none belongs and
//! dangerous names. The process must answer with an `abort` that gives a reason and exit
//! non-zero: never a panic, a hang, or a write outside its output folder (docs/protocol.md,
//! "Receiver checks" and "Names").
//!
//! Layout of each receiver case, so that a write anywhere near the output folder shows:
//! `TMP/logs/` (tokens, stdout, stderr), `TMP/work/` (the process's working directory) and
//! `TMP/work/out/` (its `-o` folder). `../x` from the folder lands in `work/`, `../../x` in
//! `TMP`, and the whole of `TMP` is checked.

mod common;
mod hostile;

use std::path::{Path, PathBuf};

use common::*;
use dcsend::transfer::wire::{Control, MAX_CONTROL_BYTES, Role};
use hostile::*;

/// What one run against `dcsend recv -o DIR` left.
struct RecvRun {
    tmp: tempfile::TempDir,
    code: Option<i32>,
    stderr: String,
    aborts: Vec<String>,
    controls: Vec<Control>,
}

/// Starts `dcsend recv -o TMP/work/out` (cwd `TMP/work`), connects to it as the offering side,
/// runs `script`, records what dcsend sends until it closes, and waits for it to exit.
fn against_recv(script: impl AsyncFnOnce(&mut Hostile)) -> RecvRun {
    against_recv_with(&["-o", "out"], script)
}

/// [`against_recv`] with `args` (`-o` relative to `TMP/work`) instead of `-o out`.
fn against_recv_with(args: &[&str], script: impl AsyncFnOnce(&mut Hostile)) -> RecvRun {
    against_recv_in(args, |_| {}, script)
}

/// [`against_recv_with`], first running `prepare` on `TMP/work/out`.
fn against_recv_in(
    args: &[&str],
    prepare: impl FnOnce(&Path),
    script: impl AsyncFnOnce(&mut Hostile),
) -> RecvRun {
    let tmp = tempfile::tempdir().unwrap();
    let (logs, work) = (tmp.path().join("logs"), tmp.path().join("work"));
    std::fs::create_dir_all(work.join("out")).unwrap();
    std::fs::create_dir(&logs).unwrap();
    prepare(&work.join("out"));
    let t = Tokens::in_dir(&logs);
    let mut cmd = receiver(&t);
    cmd.args(args).current_dir(&work);
    let mut recv = Proc::spawn("recv", cmd, &logs);
    let (aborts, controls) = block_on(async {
        let mut h = Hostile::offer(&t).await;
        script(&mut h).await;
        h.until_closed().await;
        let seen = (h.aborts(), h.controls());
        h.hang_up().await;
        seen
    });
    let code = exit_code(&mut recv);
    RecvRun { tmp, code, stderr: recv.stderr_text(), aborts, controls }
}

impl RecvRun {
    fn out(&self) -> PathBuf {
        self.tmp.path().join("work/out")
    }

    /// The process exited with `code`, sent an `abort` whose reason contains `needle`, said
    /// the same on stderr without panicking, wrote nothing outside its folder, and left in it
    /// exactly `files`.
    fn expect_abort(&self, code: i32, needle: &str, files: &[&str]) {
        assert_eq!(self.code, Some(code), "exit code; stderr:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "a panic:\n{}", self.stderr);
        let [reason] = self.aborts.as_slice() else {
            panic!("expected one abort, got {:?}; stderr:\n{}", self.aborts, self.stderr)
        };
        assert!(reason.contains(needle), "abort reason {reason:?} lacks {needle:?}");
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", self.stderr);
        self.expect_only(files);
    }

    /// Nothing but the logs, the working directory and the output folder holding `files`.
    fn expect_only(&self, files: &[&str]) {
        let mut want: Vec<String> = ["logs/", "work/", "work/out/"].map(String::from).to_vec();
        for f in ["answer.tok", "offer.tok", "recv.stderr", "recv.stdout"] {
            want.push(format!("logs/{f}"));
        }
        want.extend(files.iter().map(|f| format!("work/out/{f}")));
        want.sort();
        assert_eq!(tree(self.tmp.path()), want, "files around the output folder");
    }
}

/// A 3-byte item's data.
const ABC: &[u8] = b"abc";

#[test]
fn a_control_message_over_the_limit_is_refused_unparsed() {
    // A message that would be a valid `file` header but for its padding.
    let body = r#"{"t":"file","name":"big","size":1}"#;
    let text = format!("{}{body}", " ".repeat(MAX_CONTROL_BYTES + 1 - body.len()));
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.text(text).await;
    });
    run.expect_abort(1, "control message is 16385 bytes, over the 16384-byte limit", &[]);
}

#[test]
fn malformed_json_is_refused() {
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.text(r#"{"t":"file","name":"#).await;
    });
    run.expect_abort(1, "malformed control message", &[]);
}

#[test]
fn an_unknown_message_type_is_refused_and_named() {
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.text(r#"{"t":"resume","offset":5}"#).await;
    });
    run.expect_abort(1, "resume", &[]);
}

#[test]
fn an_unknown_type_as_long_as_the_limit_still_gets_a_readable_abort() {
    // The parser's message quotes the tag: the abort must stay a valid control message.
    let tag = "x".repeat(MAX_CONTROL_BYTES - 20);
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.text(format!(r#"{{"t":"{tag}"}}"#)).await;
    });
    run.expect_abort(1, "malformed control message", &[]);
    assert!(run.stderr.len() < 4096, "stderr is {} bytes", run.stderr.len());
}

#[test]
fn an_unknown_type_with_a_terminal_escape_is_printed_escaped() {
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.text("{\"t\":\"\\u001b[2J\\u001b]0;owned\\u0007\"}").await;
    });
    run.expect_abort(1, "unknown variant", &[]);
    assert!(!run.stderr.contains(['\u{1b}', '\u{7}']), "{:?}", run.stderr);
}

#[test]
fn more_data_than_the_header_announced_is_refused() {
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.header("x", 3).await;
        h.binary(b"0123456789").await;
    });
    run.expect_abort(1, "more bytes than the file header announced", &["x.part"]);
}

#[test]
fn less_data_than_the_header_announced_fails_integrity_at_eof() {
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.header("x", 10).await;
        h.binary(ABC).await;
        h.control(Control::Eof { bytes: 3, sha256: sha256(ABC) }).await;
    });
    run.expect_abort(4, "integrity check failed", &["x.part"]);
    assert!(run.aborts[0].contains("announced 10"), "{:?}", run.aborts);
    assert!(run.controls.contains(&Control::Ack { bytes: 3, ok: false }), "{:?}", run.controls);
}

#[test]
fn a_wrong_digest_at_eof_is_nacked_and_the_part_file_kept() {
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.header("x", 3).await;
        h.binary(ABC).await;
        h.control(Control::Eof { bytes: 3, sha256: sha256(b"abd") }).await;
    });
    run.expect_abort(4, "integrity check failed", &["x.part"]);
    assert!(run.controls.contains(&Control::Ack { bytes: 3, ok: false }), "{:?}", run.controls);
}

#[test]
fn data_between_eof_and_the_next_file_is_refused() {
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.item("a", ABC).await;
        h.binary(b"stray").await;
    });
    // `a` was complete and verified before the stray data: it stays, and was acknowledged.
    run.expect_abort(1, "data outside a file (no file header)", &["a"]);
    assert!(run.controls.contains(&Control::Ack { bytes: 3, ok: true }), "{:?}", run.controls);
    assert_eq!(std::fs::read(run.out().join("a")).unwrap(), ABC);
}

#[test]
fn a_message_after_done_is_refused() {
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.control(Control::Done).await;
        h.header("late", 0).await;
    });
    run.expect_abort(1, "a message after done", &[]);
}

#[test]
fn data_after_done_is_refused() {
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.control(Control::Done).await;
        h.binary(b"late").await;
    });
    run.expect_abort(1, "data after done", &[]);
}

#[test]
fn eof_without_a_file_is_refused() {
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.control(Control::Eof { bytes: 0, sha256: sha256(b"") }).await;
    });
    run.expect_abort(1, "eof without a file header", &[]);
}

#[test]
fn a_file_header_inside_an_item_is_refused() {
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.header("x", 3).await;
        h.binary(b"ab").await;
        h.header("y", 3).await;
    });
    run.expect_abort(1, "a file header inside an item (no eof)", &["x.part"]);
}

#[test]
fn done_inside_an_item_is_refused() {
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.header("x", 3).await;
        h.control(Control::Done).await;
    });
    run.expect_abort(1, "done inside an item (no eof)", &["x.part"]);
}

#[test]
fn a_second_item_with_the_same_name_does_not_overwrite_the_first() {
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.item("a", ABC).await;
        h.item("a", b"evil").await;
    });
    run.expect_abort(1, "already received in this run", &["a"]);
    assert_eq!(std::fs::read(run.out().join("a")).unwrap(), ABC);
}

/// Sends one 3-byte item named `name`; the receiver must refuse the name (docs/protocol.md,
/// "Names": it never repairs one) before it creates anything.
fn refuses_name(name: &str, why: &str) -> RecvRun {
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.item(name, ABC).await;
    });
    run.expect_abort(1, "refused file name", &[]);
    assert!(run.aborts[0].contains(why), "{name:?}: {:?}", run.aborts);
    run
}

#[test]
fn name_dot_dot_slash_is_refused() {
    refuses_name("../evil", "names a directory");
}

#[test]
fn an_absolute_name_is_refused() {
    refuses_name("/etc/evil", "it is absolute");
    assert!(!Path::new("/etc/evil").exists());
}

#[test]
fn an_absolute_name_under_the_temp_dir_is_refused() {
    // An absolute path where the process could write, were it followed.
    let target = std::env::temp_dir().join(format!("dcsend-hostile-evil-{}", std::process::id()));
    refuses_name(target.to_str().unwrap(), "it is absolute");
    assert!(!target.exists());
}

#[test]
fn a_name_climbing_out_through_a_folder_is_refused() {
    refuses_name("a/../../evil", "names a directory");
}

#[test]
fn a_backslash_name_is_refused() {
    refuses_name("..\\evil", "path separator");
}

// ---- Trees (docs/protocol.md, "Trees"): paths, every component checked ----

#[test]
fn a_path_with_a_dot_dot_component_is_refused() {
    refuses_name("a/..", "names a directory");
}

#[test]
fn a_path_with_an_empty_component_is_refused() {
    refuses_name("a//b", "it is empty");
    refuses_name("a/", "it is empty");
}

#[test]
fn a_path_with_backslashes_is_refused() {
    refuses_name("a/..\\..\\evil", "path separator");
}

#[test]
fn a_path_with_nul_in_a_folder_is_refused() {
    refuses_name("a\0b/evil", "control character");
}

/// A `dir` that climbs out is refused before anything is created.
#[test]
fn a_folder_climbing_out_is_refused() {
    for name in ["../evil", "a/../../evil", "/tmp/evil", "a/./b", "a\\..\\..\\evil"] {
        let run = against_recv(async |h| {
            h.hello(Role::Send).await;
            h.control(Control::Dir { name: name.into(), mtime: None }).await;
        });
        run.expect_abort(1, "refused file name", &[]);
    }
}

/// A link in the output folder is never walked through: a path whose folder is a symlink
/// (here to the folder above) is refused, and nothing is written where it points.
#[test]
fn a_path_through_a_symlinked_folder_is_refused() {
    let run = against_recv_in(
        &["-o", "out"],
        |out| std::os::unix::fs::symlink("..", out.join("up")).unwrap(),
        async |h| {
            h.hello(Role::Send).await;
            h.item("up/evil", ABC).await;
        },
    );
    run.expect_abort(1, "is a symbolic link, not a folder", &["up"]);
    assert!(!run.tmp.path().join("work/evil").exists());
}

/// The same through a `dir`: the receiver does not set times or create folders through it.
#[test]
fn a_folder_through_a_symlink_is_refused() {
    let run = against_recv_in(
        &["-o", "out"],
        |out| std::os::unix::fs::symlink("..", out.join("up")).unwrap(),
        async |h| {
            h.hello(Role::Send).await;
            h.control(Control::Dir { name: "up/made".into(), mtime: Some(0) }).await;
        },
    );
    run.expect_abort(1, "is a symbolic link, not a folder", &["up"]);
    assert!(!run.tmp.path().join("work/made").exists());
}

/// A nested path is made folder by folder inside `-o`, and nowhere else.
#[test]
fn a_nested_path_lands_inside_the_folder() {
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.control(Control::Dir { name: "t".into(), mtime: None }).await;
        h.control(Control::Dir { name: "t/empty".into(), mtime: None }).await;
        h.item("t/a/b/c.txt", ABC).await;
        h.control(Control::Done).await;
        h.wait_for("the ack", |c| matches!(c, Control::Ack { ok: true, .. })).await;
        h.close_channel().await;
    });
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    run.expect_only(&["t/", "t/a/", "t/a/b/", "t/a/b/c.txt", "t/empty/"]);
}

/// A sender that says it sends a tree, to `dcsend recv` writing to stdout: refused at its
/// hello, with what to do.
#[test]
fn a_tree_to_stdout_is_refused_at_the_hello() {
    let run = against_recv_with(&[], async |h| {
        h.control(Control::Hello {
            v: 1,
            role: Role::Send,
            app: "dcsend/9".into(),
            resume: false,
            threshold: None,
            tree: Some(true),
            files: Some(2),
            bytes: Some(6),
            zstd: false,
        })
        .await;
    });
    run.expect_abort(1, "stdout cannot hold a folder", &[]);
    assert!(run.aborts[0].contains("-o DIR/"), "{:?}", run.aborts);
}

/// A `dir` to a receiver writing to stdout (a sender that did not announce its tree).
#[test]
fn a_folder_to_stdout_is_refused() {
    let run = against_recv_with(&[], async |h| {
        h.hello(Role::Send).await;
        h.control(Control::Dir { name: "t".into(), mtime: None }).await;
    });
    run.expect_abort(1, "stdout cannot hold a folder", &[]);
}

#[test]
fn name_dot_dot_is_refused() {
    refuses_name("..", "names a directory");
}

#[test]
fn a_name_with_nul_is_refused() {
    refuses_name("evil\0.txt", "control character");
}

#[test]
fn an_empty_name_is_refused() {
    refuses_name("", "it is empty");
}

#[test]
fn a_10_kb_name_is_refused_and_shown_shortened() {
    let run = refuses_name(&"n".repeat(10 * 1024), "10240 bytes long");
    // The name is quoted shortened, not 10 KB of it.
    assert!(run.aborts[0].len() < 512, "abort reason is {} bytes", run.aborts[0].len());
    assert!(run.stderr.len() < 4096, "stderr is {} bytes", run.stderr.len());
}

#[test]
fn another_protocol_version_is_refused() {
    let run = against_recv(async |h| {
        h.control(Control::Hello {
            v: 2,
            role: Role::Send,
            app: "future/2".into(),
            resume: false,
            threshold: None,
            tree: None,
            files: None,
            bytes: None,
            zstd: false,
        })
        .await;
    });
    run.expect_abort(1, "unsupported protocol version 2 (we speak 1)", &[]);
}

#[test]
fn a_size_of_u64_max_after_an_item_neither_panics_nor_preallocates() {
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        h.item("first", ABC).await;
        h.header("huge", u64::MAX).await;
        h.binary(&[7; 1024]).await;
        h.control(Control::Eof { bytes: 1024, sha256: sha256(&[7; 1024]) }).await;
    });
    run.expect_abort(4, "integrity check failed", &["first", "huge.part"]);
    let part = std::fs::metadata(run.out().join("huge.part")).unwrap();
    assert_eq!(part.len(), 1024, "only the bytes that came, nothing reserved");
}

/// Many items, each checked, synced and acknowledged on its own; the peer closes once it has
/// every ack, like a dcsend sender.
#[test]
fn many_tiny_items_are_all_received() {
    const N: usize = 1000;
    let names: Vec<String> = (0..N).map(|i| format!("f{i}")).collect();
    let run = against_recv(async |h| {
        h.hello(Role::Send).await;
        for (i, name) in names.iter().enumerate() {
            h.item(name, &[i as u8]).await;
        }
        h.control(Control::Done).await;
        for _ in 0..N {
            h.wait_for("every ack", |c| matches!(c, Control::Ack { ok: true, .. })).await;
        }
        h.close_channel().await;
    });
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert!(run.aborts.is_empty(), "{:?}", run.aborts);
    let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
    want.sort();
    run.expect_only(&want);
    assert_eq!(std::fs::read(run.out().join("f999")).unwrap(), [999usize as u8]);
}

/// With `-o FILE` the sender's name is not used, so not checked either; but `--resume` says
/// why it cannot resume the item, quoting that name: escape sequences in it must reach the
/// terminal escaped.
#[test]
fn a_name_in_a_resume_notice_is_printed_escaped() {
    let name = "\u{1b}[2J\u{1b}]0;owned\u{7}";
    let run = against_recv_with(&["-o", "out/copy", "--resume"], async |h| {
        h.hello(Role::Send).await;
        h.item(name, ABC).await;
        h.control(Control::Done).await;
        h.wait_for("the ack", |c| matches!(c, Control::Ack { ok: true, .. })).await;
        h.close_channel().await;
    });
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("did not offer to resume \\u{1b}[2J"), "{:?}", run.stderr);
    assert!(!run.stderr.contains(['\u{1b}', '\u{7}']), "{:?}", run.stderr);
    run.expect_only(&["copy"]);
}

// ---- The hostile peer as the receiver, against `dcsend FILE` ----

/// What one run against `dcsend FILE` left.
struct SendRun {
    code: Option<i32>,
    stderr: String,
    aborts: Vec<String>,
}

/// The payload the sender sends in every case: a few messages' worth.
const PAYLOAD: usize = 100_000;

/// Starts `dcsend FILE` (a [`PAYLOAD`]-byte file), answers its offer, runs `script`, records
/// what it sends until it closes, and waits for it to exit.
fn against_send(script: impl AsyncFnOnce(&mut Hostile)) -> SendRun {
    against_send_with(PAYLOAD, &[], script)
}

/// [`against_send`] with a `len`-byte file and extra sender flags.
fn against_send_with(len: usize, args: &[&str], script: impl AsyncFnOnce(&mut Hostile)) -> SendRun {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("payload.bin");
    std::fs::write(&src, random_bytes(len, 3)).unwrap();
    let t = Tokens::in_dir(tmp.path());
    let mut cmd = sender(&[&src], &t);
    cmd.args(args);
    let mut send = Proc::spawn("send", cmd, tmp.path());
    let aborts = block_on(async {
        let mut h = Hostile::answer(&t).await;
        script(&mut h).await;
        h.until_closed().await;
        let aborts = h.aborts();
        h.hang_up().await;
        aborts
    });
    let code = exit_code(&mut send);
    let stderr = send.stderr_text();
    assert!(!stderr.contains("panicked"), "a panic:\n{stderr}");
    SendRun { code, stderr, aborts }
}

/// `dcsend DIR` (a folder holding one file) against a receiver that says `hello` without the
/// tree extension, as a dcsend that predates trees does: the sender refuses before it sends
/// anything of the tree, saying what to do.
#[test]
fn sender_refuses_a_tree_to_a_receiver_that_predates_trees() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("photos");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.jpg"), ABC).unwrap();
    let t = Tokens::in_dir(tmp.path());
    let mut send = Proc::spawn("send", sender(&[&dir], &t), tmp.path());
    let (aborts, controls) = block_on(async {
        let mut h = Hostile::answer(&t).await;
        h.hello(Role::Recv).await;
        h.until_closed().await;
        let seen = (h.aborts(), h.controls());
        h.hang_up().await;
        seen
    });
    let code = exit_code(&mut send);
    let stderr = send.stderr_text();
    assert_eq!(code, Some(1), "stderr:\n{stderr}");
    let [reason] = aborts.as_slice() else { panic!("aborts: {aborts:?}") };
    assert!(reason.contains("(hostile/0) cannot receive folders"), "{reason}");
    assert!(reason.contains("up-to-date `dcsend recv -o DIR/`"), "{reason}");
    assert!(stderr.contains("cannot receive folders"), "{stderr}");
    let sent_tree =
        controls.iter().any(|c| matches!(c, Control::File { .. } | Control::Dir { .. }));
    assert!(!sent_tree, "the sender sent part of the tree: {controls:?}");
}

// ---- Compression (docs/protocol.md, "Compression") ----

/// A compressed message that unpacks to more than one message may hold (a decompression
/// bomb: 16 MiB of zeros in a few hundred bytes) is refused without being unpacked.
#[test]
fn a_decompression_bomb_is_refused() {
    use dcsend::transfer::codec;
    for framed_size_known in [true, false] {
        let zeros = vec![0u8; 16 << 20];
        let frame = match framed_size_known {
            true => zstd::bulk::compress(&zeros, 19).unwrap(),
            false => zstd::stream::encode_all(&zeros[..], 19).unwrap(),
        };
        let mut msg = vec![codec::ZSTD];
        msg.extend(frame);
        assert!(msg.len() < 4096, "{} bytes", msg.len());
        let run = against_recv(async |h| {
            h.hello(Role::Send).await;
            h.control(Control::File {
                name: Some("bomb".into()),
                size: Some(16 << 20),
                resume: false,
                exec: false,
                mtime: None,
                zstd: true,
            })
            .await;
            h.binary(&msg).await;
        });
        run.expect_abort(1, "a compressed message holds more than 262144 bytes", &["bomb.part"]);
        let part = std::fs::metadata(run.out().join("bomb.part")).unwrap();
        assert_eq!(part.len(), 0, "nothing of it written");
    }
}

/// `--compress` to a receiver that does not say it takes compressed items (an older dcsend,
/// the page): the items go as they are, and the transfer works.
#[test]
fn sender_compresses_nothing_for_a_receiver_that_does_not_take_it() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("log.txt");
    let data = b"the same line again\n".repeat(10_000);
    std::fs::write(&src, &data).unwrap();
    let t = Tokens::in_dir(tmp.path());
    let mut cmd = sender(&[&src], &t);
    cmd.arg("--compress");
    let mut send = Proc::spawn("send", cmd, tmp.path());
    let (controls, got) = block_on(async {
        let mut h = Hostile::answer(&t).await;
        h.hello(Role::Recv).await;
        let bytes = eof_bytes(&mut h).await;
        h.control(Control::Ack { bytes, ok: true }).await;
        h.until_closed().await;
        let seen = (h.controls(), h.binary_bytes);
        h.hang_up().await;
        seen
    });
    let code = exit_code(&mut send);
    assert_eq!(code, Some(0), "stderr:\n{}", send.stderr_text());
    let file = controls.iter().find(|c| matches!(c, Control::File { .. })).unwrap();
    assert!(matches!(file, Control::File { zstd: false, .. }), "{file:?}");
    assert_eq!(got, data.len() as u64, "the payload is not the file's bytes as they are");
}

/// Waits for the sender's `eof` and returns the bytes it announced.
async fn eof_bytes(h: &mut Hostile) -> u64 {
    match h.wait_for("eof", |c| matches!(c, Control::Eof { .. })).await {
        Control::Eof { bytes, .. } => bytes,
        _ => unreachable!(),
    }
}

#[test]
fn sender_told_the_digest_did_not_match_fails_integrity() {
    let run = against_send(async |h| {
        h.hello(Role::Recv).await;
        let bytes = eof_bytes(h).await;
        h.control(Control::Ack { bytes, ok: false }).await;
    });
    assert_eq!(run.code, Some(4), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("integrity check failed"), "{}", run.stderr);
}

#[test]
fn sender_refuses_an_ack_for_an_item_it_never_sent() {
    // 8 MiB through a 64 KiB threshold to a peer that reads nothing: the sender is still
    // sending its one item when both acks arrive, so it cannot have finished before the second.
    let run = against_send_with(8 << 20, &["--threshold", "64K"], async |h| {
        h.hello(Role::Recv).await;
        h.control(Control::Ack { bytes: u64::MAX, ok: true }).await;
        h.control(Control::Ack { bytes: u64::MAX, ok: true }).await;
    });
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    let [reason] = run.aborts.as_slice() else { panic!("aborts: {:?}", run.aborts) };
    assert!(reason.contains("ack"), "{reason}");
    assert!(run.stderr.contains(reason.as_str()), "{}", run.stderr);
}

#[test]
fn sender_ignores_oversized_and_malformed_control_messages() {
    // docs/protocol.md: "A v1 sender ignores malformed or unexpected control messages from
    // the receiver, logging them." The transfer completes; the log stays short.
    let big = format!(r#"{{"t":"abort","reason":"{}"}}"#, "B".repeat(20_000));
    let run = against_send(async |h| {
        h.hello(Role::Recv).await;
        h.text(big).await;
        h.text("{not json").await;
        h.text(format!(r#"{{"t":"{}"}}"#, "u".repeat(10_000))).await;
        let bytes = eof_bytes(h).await;
        h.control(Control::Ack { bytes, ok: true }).await;
    });
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert!(run.stderr.len() < 4096, "stderr is {} bytes", run.stderr.len());
}

#[test]
fn sender_ignores_data_from_the_receiver() {
    let run = against_send(async |h| {
        h.hello(Role::Recv).await;
        for _ in 0..4 {
            h.binary(&[0x55; 64 * 1024]).await;
        }
        let bytes = eof_bytes(h).await;
        h.control(Control::Ack { bytes, ok: true }).await;
    });
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
}

#[test]
fn sender_refuses_another_protocol_version() {
    let run = against_send(async |h| {
        h.control(Control::Hello {
            v: 7,
            role: Role::Recv,
            app: "future/7".into(),
            resume: false,
            threshold: None,
            tree: None,
            files: None,
            bytes: None,
            zstd: false,
        })
        .await;
    });
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    let [reason] = run.aborts.as_slice() else { panic!("aborts: {:?}", run.aborts) };
    assert!(reason.contains("unsupported protocol version 7 (we speak 1)"), "{reason}");
}

#[test]
fn an_abort_as_large_as_a_message_can_be_is_not_printed() {
    // dcsend accepts messages up to 64 KiB (its a=max-message-size; the webrtc stack refuses
    // to send a larger one), so 1 MB cannot be one message: send the largest there is. Over
    // the control limit it is not a valid abort and is ignored; the peer then goes away.
    let reason = "A".repeat(64 * 1024 - r#"{"t":"abort","reason":""}"#.len());
    let huge = Control::Abort { reason }.encode();
    assert_eq!(huge.len(), 64 * 1024);
    let run = against_send(async |h| {
        h.hello(Role::Recv).await;
        h.text(huge).await;
        h.close_channel().await;
    });
    assert_eq!(run.code, Some(3), "stderr:\n{}", run.stderr);
    assert!(run.stderr.len() < 4096, "stderr is {} bytes", run.stderr.len());
}

#[test]
fn an_abort_reason_at_the_limit_is_printed_shortened_and_without_control_characters() {
    // The largest valid abort, with a terminal escape sequence and line breaks in it.
    let mut reason = "\u{1b}[2J\u{1b}]0;owned\u{7}line\nbreak\r".to_owned();
    let body = Control::Abort { reason: reason.clone() }.encode().len();
    reason.push_str(&"R".repeat(MAX_CONTROL_BYTES - body));
    let msg = Control::Abort { reason }.encode();
    assert_eq!(msg.len(), MAX_CONTROL_BYTES);
    let run = against_send(async |h| {
        h.hello(Role::Recv).await;
        h.text(msg).await;
    });
    assert_eq!(run.code, Some(3), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("the peer aborted: "), "{}", run.stderr);
    assert!(run.stderr.len() < 1024, "stderr is {} bytes", run.stderr.len());
    assert!(!run.stderr.contains(['\u{1b}', '\u{7}', '\r']), "{:?}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "one line: {:?}", run.stderr);
}
