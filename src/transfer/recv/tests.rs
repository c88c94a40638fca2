//! The real receiver against a scripted hostile sender (a fake channel): whatever the
//! peer sends, the receiver answers with `abort` and an error, never a panic, and never
//! writes outside its folder.
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::peer::PeerError;
use crate::transfer::wire::{Digest, PROTOCOL_VERSION};

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Outbound>>>);

#[async_trait]
impl ChannelPort for Recorder {
    async fn send(&self, msg: Outbound) -> Result<(), PeerError> {
        self.0.lock().unwrap().push(msg);
        Ok(())
    }
    async fn buffered_amount(&self) -> Result<u64, PeerError> {
        Ok(0)
    }
    async fn drained_to(&self, _level: u64) -> Result<(), PeerError> {
        Ok(())
    }
}

fn text(c: Control) -> ChannelEvent {
    ChannelEvent::Text(c.encode())
}

fn hello() -> ChannelEvent {
    text(Control::Hello {
        v: PROTOCOL_VERSION,
        role: Role::Send,
        app: "test".into(),
        resume: true,
        threshold: None,
        tree: None,
        files: None,
        bytes: None,
        zstd: false,
    })
}

/// A dcsend sender's opening: `hello`, a `file` header, then `data` as one message.
fn item(name: &str, size: u64, data: &'static [u8]) -> Vec<ChannelEvent> {
    vec![
        hello(),
        text(Control::File {
            name: Some(name.into()),
            size: Some(size),
            resume: false,
            exec: false,
            mtime: None,
            zstd: false,
        }),
        ChannelEvent::Binary(Bytes::from_static(data)),
    ]
}

/// Feeds `script` to a receiver writing into a fresh folder; returns the error text,
/// what the receiver sent back, and the folder's entries.
async fn run_script(script: Vec<ChannelEvent>) -> (String, Vec<Outbound>, Vec<String>) {
    let run = run_resuming(script, false, None).await;
    let err = run.result.expect_err("a hostile script must fail");
    (err, run.sent, run.entries)
}

/// What [`run_resuming`] saw.
struct Run {
    result: Result<RecvOutcome, String>,
    sent: Vec<Outbound>,
    entries: Vec<String>,
    /// The output folder (kept alive by `_dir`).
    out: PathBuf,
    _dir: tempfile::TempDir,
}

/// Feeds `script` to a receiver (with `resume` as `recv --resume`) writing into a fresh
/// folder that holds `f.part` = `part` beforehand, if given.
async fn run_resuming(script: Vec<ChannelEvent>, resume: bool, part: Option<&[u8]>) -> Run {
    run_with(script, resume, part, false).await
}

/// [`run_resuming`], with `force` as `recv --force`.
async fn run_with(
    script: Vec<ChannelEvent>,
    resume: bool,
    part: Option<&[u8]>,
    force: bool,
) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    if let Some(part) = part {
        std::fs::write(out.join("f.part"), part).unwrap();
    }
    let (tx, rx) = mpsc::channel(script.len() + 1);
    for ev in script {
        tx.send(ev).await.unwrap();
    }
    drop(tx);
    let port = Recorder::default();
    let opts = RecvOptions {
        dest: Destination::Dir(out.clone()),
        force,
        linger: Duration::from_millis(10),
        resume,
    };
    let meter = Arc::new(Meter::new(None));
    let res = tokio::time::timeout(
        Duration::from_secs(10),
        receive(port.clone(), rx, &opts, meter, CancellationToken::new()),
    )
    .await
    .expect("receiver hung");
    let mut entries: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    // Nothing may appear next to the output folder.
    let outside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(outside.len(), 1, "something was written outside the output folder");
    let sent = port.0.lock().unwrap().clone();
    Run { result: res.map_err(|e| format!("{e:#}")), sent, entries, out, _dir: dir }
}

/// A resuming sender's `file` for `f` (`size` bytes), then `events`.
fn resumed(size: u64, events: Vec<ChannelEvent>) -> Vec<ChannelEvent> {
    let file = Control::File {
        name: Some("f".into()),
        size: Some(size),
        resume: true,
        exec: false,
        mtime: None,
        zstd: false,
    };
    [vec![hello(), text(file)], events].concat()
}

fn data(d: &'static [u8]) -> ChannelEvent {
    ChannelEvent::Binary(Bytes::from_static(d))
}

fn texts(sent: &[Outbound]) -> Vec<String> {
    sent.iter()
        .filter_map(|m| match m {
            Outbound::Text(t) => Some(t.clone()),
            Outbound::Binary(_) => None,
        })
        .collect()
}

#[tokio::test]
async fn a_kept_prefix_is_offered_continued_and_verified_whole() {
    let script = resumed(
        6,
        vec![
            text(Control::Skip { bytes: 3 }),
            data(b"def"),
            text(Control::Eof { bytes: 6, sha256: Digest::of(b"abcdef") }),
            text(Control::Done),
        ],
    );
    let run = run_resuming(script, true, Some(b"abc")).await;
    let outcome = run.result.unwrap();
    let sent = texts(&run.sent);
    assert!(sent[0].contains("\"resume\":true"), "hello asks for resume: {sent:?}");
    let have = Control::Have { bytes: 3, sha256: Digest::of(b"abc") }.encode();
    assert_eq!(sent[1], have);
    assert_eq!(sent[2], Control::Ack { bytes: 6, ok: true }.encode());
    assert_eq!(std::fs::read(run.out.join("f")).unwrap(), b"abcdef");
    assert_eq!(run.entries, vec!["f".to_string()], "no .part left");
    assert_eq!((outcome.items[0].resumed_bytes, outcome.items[0].discarded_bytes), (3, 0));
}

#[tokio::test]
async fn skip_zero_starts_over_and_a_longer_part_offers_nothing() {
    for part in [&b"xyz"[..], b"abcdefgh"] {
        let script = resumed(
            6,
            vec![
                text(Control::Skip { bytes: 0 }),
                data(b"abcdef"),
                text(Control::Eof { bytes: 6, sha256: Digest::of(b"abcdef") }),
                text(Control::Done),
            ],
        );
        let run = run_resuming(script, true, Some(part)).await;
        run.result.unwrap();
        let sent = texts(&run.sent);
        if part.len() > 6 {
            let have = Control::Have { bytes: 0, sha256: Digest::of(b"") }.encode();
            assert_eq!(sent[1], have, "a .part longer than the file is no prefix");
        }
        assert_eq!(std::fs::read(run.out.join("f")).unwrap(), b"abcdef");
        assert_eq!(run.entries, vec!["f".to_string()]);
    }
}

#[tokio::test]
async fn without_resume_a_resume_file_gets_an_empty_have_and_the_part_is_not_read() {
    let script = resumed(
        3,
        vec![
            text(Control::Skip { bytes: 0 }),
            data(b"abc"),
            text(Control::Eof { bytes: 3, sha256: Digest::of(b"abc") }),
            text(Control::Done),
        ],
    );
    let run = run_resuming(script, false, Some(b"ab")).await;
    run.result.unwrap();
    let sent = texts(&run.sent);
    assert!(sent[0].contains("\"resume\":false"), "{sent:?}");
    assert_eq!(sent[1], Control::Have { bytes: 0, sha256: Digest::of(b"") }.encode());
    assert_eq!(std::fs::read(run.out.join("f")).unwrap(), b"abc");
}

/// A sender that breaks the resume rules gets an abort, and `f.part` stays as it was.
#[tokio::test]
async fn a_lying_sender_leaves_the_part_untouched() {
    let cases: Vec<(Vec<ChannelEvent>, &str)> = vec![
        (vec![text(Control::Skip { bytes: 2 })], "skips 2 bytes but we have 3"),
        (vec![text(Control::Skip { bytes: 4 })], "skips 4 bytes but we have 3"),
        (vec![data(b"def")], "payload before the sender's skip"),
        (
            vec![text(Control::Eof { bytes: 3, sha256: Digest::of(b"abc") })],
            "eof before the sender's skip",
        ),
        (vec![text(Control::Done)], "done inside an item"),
        (
            vec![text(Control::Skip { bytes: 3 }), text(Control::Skip { bytes: 3 })],
            "a skip without a have",
        ),
        (
            vec![text(Control::Skip { bytes: 3 }), data(b"defg")],
            "more bytes than the file header announced",
        ),
        (vec![ChannelEvent::Closed], "closed the channel"),
    ];
    for (events, want) in cases {
        let run = run_resuming(resumed(6, events), true, Some(b"abc")).await;
        let err = run.result.expect_err(want);
        assert!(err.contains(want), "{want}: {err}");
        assert_eq!(run.entries, vec!["f.part".to_string()], "{want}");
        let part = std::fs::read(run.out.join("f.part")).unwrap();
        assert!(part.starts_with(b"abc"), "{want}: the prefix is gone: {part:?}");
    }
    // A skip with no item at all.
    let run = run_resuming(vec![hello(), text(Control::Skip { bytes: 0 })], true, None).await;
    assert!(run.result.unwrap_err().contains("a skip without a have"));
}

fn aborted_with(sent: &[Outbound], needle: &str) -> bool {
    sent.iter().any(|m| matches!(m, Outbound::Text(t) if t.contains("abort") && t.contains(needle)))
}

#[tokio::test]
async fn traversal_names_are_refused_with_an_abort() {
    let names =
        ["../evil", "/etc/passwd", "a/../../b", "a//b", "a/", "a\\b", "..", "C:\\x", "x\0y"];
    for name in names {
        let (err, sent, entries) = run_script(item(name, 1, b"x")).await;
        assert!(err.contains("refused file name"), "{name:?}: {err}");
        assert!(aborted_with(&sent, "refus"), "{name:?}: no abort sent: {sent:?}");
        assert!(entries.is_empty(), "{name:?}: wrote {entries:?}");
    }
}

/// One item, whole: `file`, the data, `eof`.
fn whole(name: &str, data: &'static [u8]) -> Vec<ChannelEvent> {
    vec![
        text(Control::File {
            name: Some(name.into()),
            size: Some(data.len() as u64),
            resume: false,
            exec: false,
            mtime: None,
            zstd: false,
        }),
        data_of(data),
        text(Control::Eof { bytes: data.len() as u64, sha256: Digest::of(data) }),
    ]
}

fn data_of(d: &'static [u8]) -> ChannelEvent {
    ChannelEvent::Binary(Bytes::from_static(d))
}

/// `movie` and `movie.part` in one run, in either order: both are valid names. When
/// `movie.part` comes first, `movie`'s temporary file would be it: `movie` is refused
/// (with the reason), and the stored `movie.part` is left as it was.
#[tokio::test]
async fn a_name_ending_in_part_never_clobbers_and_is_never_clobbered() {
    let script =
        [vec![hello()], whole("movie", b"M"), whole("movie.part", b"P"), vec![text(Control::Done)]]
            .concat();
    let run = run_resuming(script, false, None).await;
    run.result.unwrap();
    assert_eq!(run.entries, ["movie", "movie.part"]);
    assert_eq!(std::fs::read(run.out.join("movie")).unwrap(), b"M");
    assert_eq!(std::fs::read(run.out.join("movie.part")).unwrap(), b"P");

    let script = [vec![hello()], whole("movie.part", b"P"), whole("movie", b"M")].concat();
    let run = run_resuming(script, false, None).await;
    let err = run.result.unwrap_err();
    assert!(err.contains("its temporary file") && err.contains("movie.part"), "{err}");
    assert!(aborted_with(&run.sent, "received earlier in this run"), "{:?}", run.sent);
    assert_eq!(run.entries, ["movie.part"]);
    assert_eq!(std::fs::read(run.out.join("movie.part")).unwrap(), b"P");
}

/// Two items of one name in a run: the second never overwrites the first, even with
/// `--force` (which is about files that were there before the run).
#[tokio::test]
async fn a_name_received_twice_in_a_run_is_refused() {
    let script = [vec![hello()], whole("same", b"1"), whole("same", b"2")].concat();
    let run = run_with(script, false, None, true).await;
    let err = run.result.unwrap_err();
    assert!(err.contains("already received in this run"), "{err}");
    assert_eq!(std::fs::read(run.out.join("same")).unwrap(), b"1");
}

#[tokio::test]
async fn a_header_that_lies_about_the_size_is_refused() {
    let (err, sent, entries) = run_script(item("f", 2, b"abc")).await;
    assert!(err.contains("more bytes than the file header announced"), "{err}");
    assert!(aborted_with(&sent, "more bytes"));
    assert!(!entries.contains(&"f".to_string()), "a complete-looking file: {entries:?}");
}

#[tokio::test]
async fn a_wrong_digest_leaves_only_the_part_file_and_nacks() {
    let mut script = item("f", 3, b"abc");
    script.push(text(Control::Eof { bytes: 3, sha256: "0".repeat(64) }));
    let (err, sent, entries) = run_script(script).await;
    assert!(err.contains("integrity check failed"), "{err}");
    assert!(sent.iter().any(|m| matches!(m, Outbound::Text(t) if t.contains("\"ok\":false"))));
    assert_eq!(entries, vec!["f.part".to_string()]);
}

fn sha(data: &[u8]) -> String {
    let mut d = crate::transfer::wire::Digest::new();
    d.update(data);
    d.finish()
}

#[tokio::test]
async fn a_size_of_u64_max_after_an_item_does_not_overflow() {
    let mut script = item("a", 1, b"x");
    script.push(text(Control::Eof { bytes: 1, sha256: sha(b"x") }));
    script.push(text(Control::File {
        name: Some("b".into()),
        size: Some(u64::MAX),
        resume: false,
        exec: false,
        mtime: None,
        zstd: false,
    }));
    script.push(text(Control::Eof { bytes: 0, sha256: sha(b"") }));
    let (err, _, entries) = run_script(script).await;
    assert!(err.contains("integrity check failed"), "{err}");
    assert_eq!(entries, vec!["a".to_string(), "b.part".to_string()]);
}

#[tokio::test]
async fn data_before_a_header_and_after_done_are_refused() {
    let (err, _, _) =
        run_script(vec![hello(), ChannelEvent::Binary(Bytes::from_static(b"x"))]).await;
    assert!(err.contains("data outside a file"), "{err}");
    let (err, _, _) = run_script(vec![
        hello(),
        text(Control::Done),
        ChannelEvent::Binary(Bytes::from_static(b"x")),
    ])
    .await;
    assert!(err.contains("data after done"), "{err}");
}

#[tokio::test]
async fn a_malformed_control_message_is_refused() {
    let (err, sent, _) =
        run_script(vec![hello(), ChannelEvent::Text("{\"t\":\"nope\"}".into())]).await;
    assert!(err.contains("malformed control message"), "{err}");
    assert!(aborted_with(&sent, "malformed"));
}

#[tokio::test]
async fn the_sender_going_away_mid_item_is_peer_gone() {
    let mut script = item("f", 10, b"abc");
    script.push(ChannelEvent::PeerGone("the connection failed".into()));
    let (err, _, entries) = run_script(script).await;
    assert!(err.contains("the connection failed"), "{err}");
    assert_eq!(entries, vec!["f.part".to_string()]);
}

/// A channel that is already gone: every send fails.
struct Gone;

#[async_trait]
impl ChannelPort for Gone {
    async fn send(&self, _msg: Outbound) -> Result<(), PeerError> {
        Err(PeerError::ChannelClosed("the peer connection is closed".into()))
    }
    async fn buffered_amount(&self) -> Result<u64, PeerError> {
        Ok(0)
    }
    async fn drained_to(&self, _level: u64) -> Result<(), PeerError> {
        Ok(())
    }
}

/// A channel gone before our `hello` is the peer gone (exit 3, as the channel error it
/// replaces), with nothing confirmed; the error is typed, for `cmd` to give context.
#[tokio::test]
async fn a_channel_gone_before_hello_is_peer_gone() {
    let (_tx, rx) = mpsc::channel(1);
    let opts = RecvOptions {
        dest: Destination::Discard,
        force: false,
        linger: Duration::from_millis(10),
        resume: false,
    };
    let meter = Arc::new(Meter::new(None));
    let err = receive(Gone, rx, &opts, meter, CancellationToken::new()).await.unwrap_err();
    let TransferError::PeerGone { reason, confirmed_bytes: 0 } = &err else {
        panic!("not PeerGone: {err:?}");
    };
    assert!(reason.contains("the data channel closed"), "{reason}");
    assert_eq!(crate::error::exit_code(&err.into()), std::process::ExitCode::from(3));
}

/// A channel whose sent data the peer acknowledges only at `acked_at`: the last acks on a
/// lossy path, retransmitted seconds apart. `None`: never.
struct SlowAcks {
    sent: Recorder,
    acked_at: Option<tokio::time::Instant>,
}

#[async_trait]
impl ChannelPort for SlowAcks {
    async fn send(&self, msg: Outbound) -> Result<(), PeerError> {
        self.sent.send(msg).await
    }
    async fn buffered_amount(&self) -> Result<u64, PeerError> {
        Ok(u64::from(self.acked_at.is_none_or(|t| tokio::time::Instant::now() < t)))
    }
    async fn drained_to(&self, _level: u64) -> Result<(), PeerError> {
        match self.acked_at {
            Some(t) => tokio::time::sleep_until(t).await,
            None => std::future::pending().await,
        }
        Ok(())
    }
}

/// Receives one whole file and `done` from a sender that never closes; returns how long the
/// receiver stayed after `done`, and what it sent.
async fn linger_after_done(acked_after: Option<Duration>) -> (Duration, Vec<Outbound>) {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel(8);
    let mut script = item("f", 3, b"abc");
    script.push(text(Control::Eof { bytes: 3, sha256: Digest::of(b"abc") }));
    script.push(text(Control::Done));
    for ev in script {
        tx.send(ev).await.unwrap();
    }
    let start = tokio::time::Instant::now();
    let port = SlowAcks { sent: Recorder::default(), acked_at: acked_after.map(|d| start + d) };
    let sent = port.sent.clone();
    let opts = RecvOptions {
        dest: Destination::Dir(dir.path().to_owned()),
        force: false,
        linger: Duration::from_millis(10),
        resume: false,
    };
    let meter = Arc::new(Meter::new(None));
    let outcome = receive(port, rx, &opts, meter, CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.items.len(), 1);
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"abc");
    drop(tx); // the sender never closed while the receiver waited
    let sent = sent.0.lock().unwrap().clone();
    (start.elapsed(), sent)
}

/// After `done` the receiver waits for its last acks to reach the sender, then `linger`
/// for the sender to close. It used to start `linger` at once: on a lossy path it left
/// while its acks were still being retransmitted, and the sender, which never got them,
/// reported a failure for a file the receiver had verified and kept.
#[tokio::test(start_paused = true)]
async fn the_receiver_stays_until_its_last_acks_are_delivered() {
    let (stayed, sent) = linger_after_done(Some(Duration::from_secs(4))).await;
    assert!(
        stayed >= Duration::from_millis(4010) && stayed < Duration::from_secs(5),
        "left {stayed:?} after the start; the acks arrived at 4 s, linger 10 ms"
    );
    assert!(texts(&sent).iter().any(|t| t.contains("\"t\":\"ack\"")), "{:?}", texts(&sent));
}

/// Acks that never get through: the receiver still leaves, after `ACKS_OUT`, with its file.
#[tokio::test(start_paused = true)]
async fn acks_that_never_arrive_hold_the_receiver_for_a_bound() {
    let (stayed, _) = linger_after_done(None).await;
    assert!(stayed >= ACKS_OUT && stayed < ACKS_OUT + Duration::from_secs(1), "{stayed:?}");
}
