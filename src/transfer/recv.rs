//! The receiving side: reassembles items from the channel's messages, writes each to
//! stdout or `NAME.part`, checks size and SHA-256 at `eof`, renames, and acknowledges.
//!
//! A peer that never says `hello` is a plain WebRTC peer: its binary messages are one
//! stream and the channel closing is its end, reported as unverified.
//!
//! Must not import: webrtc, indicatif, `cli`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::names;
use super::send::{app, send_abort};
use super::sink::{Sink, SinkTarget};
use super::wire::{Control, PROTOCOL_VERSION, Role};
use crate::error::TransferError;
use crate::peer::{ChannelEvent, ChannelPort, Outbound};
use crate::progress::meter::Meter;

/// Where received items go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// All items to stdout, one after the other.
    Stdout,
    /// Exactly one item, to this path.
    File(PathBuf),
    /// Items into this folder under their (sanitised) names.
    Dir(PathBuf),
    /// Nowhere: items are verified, then dropped (`recv --sink`, `bench`).
    Discard,
}

/// How a receive runs.
#[derive(Debug, Clone)]
pub struct RecvOptions {
    /// Destination.
    pub dest: Destination,
    /// Overwrite existing files.
    pub force: bool,
    /// After `done`, how long to wait for the sender to close before leaving anyway.
    pub linger: Duration,
}

/// One received item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Where it went (`None`: stdout).
    pub path: Option<PathBuf>,
    /// Bytes.
    pub bytes: u64,
    /// Hex SHA-256.
    pub sha256: String,
}

/// What a successful receive got.
#[derive(Debug, Clone)]
pub struct RecvOutcome {
    /// The items.
    pub items: Vec<Received>,
    /// Every item was checked against the sender's digest (false for a plain peer).
    pub verified: bool,
}

struct Current {
    sink: Sink,
    size: Option<u64>,
    bytes: u64,
    part: Option<PathBuf>,
    path: Option<PathBuf>,
}

/// Name used in a folder for a stream that came without one (stdin, a plain peer).
const UNNAMED: &str = "stream";

/// Receives until the sender is done; see the module docs.
pub async fn receive<P: ChannelPort>(
    port: P,
    mut events: mpsc::Receiver<ChannelEvent>,
    opts: &RecvOptions,
    meter: Arc<Meter>,
    cancel: CancellationToken,
) -> anyhow::Result<RecvOutcome> {
    let hello = Control::Hello { v: PROTOCOL_VERSION, role: Role::Recv, app: app() };
    port.send(Outbound::Text(hello.encode())).await?;

    let mut r = Receiver { opts, meter, items: Vec::new(), current: None, peer_is_dcsend: false };
    let mut done = false;
    let linger = tokio::time::sleep(Duration::MAX);
    tokio::pin!(linger);
    loop {
        let ev = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                send_abort(&port, "the receiver was interrupted").await;
                return Err(TransferError::Interrupted.into());
            }
            () = &mut linger => return Ok(r.outcome(true)),
            ev = events.recv() => ev,
        };
        let step = match ev {
            Some(ChannelEvent::Text(text)) => match Control::decode(&text) {
                Ok(Control::Done) if r.current.is_some() => {
                    Err(TransferError::Protocol("done inside an item (no eof)".into()))
                }
                Ok(Control::Done) => {
                    done = true;
                    linger.as_mut().reset(tokio::time::Instant::now() + opts.linger);
                    Ok(())
                }
                Ok(Control::Abort { reason }) => {
                    return Err(TransferError::PeerAborted(reason).into());
                }
                Ok(_) if done => Err(TransferError::Protocol("a message after done".into())),
                Ok(msg) => r.on_control(&port, msg).await,
                Err(e) => Err(TransferError::Protocol(e.to_string())),
            },
            Some(ChannelEvent::Binary(_)) if done => {
                Err(TransferError::Protocol("data after done".into()))
            }
            Some(ChannelEvent::Binary(data)) => r.on_data(data).await,
            Some(ChannelEvent::Closed | ChannelEvent::PeerGone(_)) | None if done => {
                return Ok(r.outcome(true));
            }
            Some(ChannelEvent::Closed) | None if !r.peer_is_dcsend => {
                // A plain peer: the channel closing ends its one stream.
                r.finish_plain().await?;
                return Ok(r.outcome(false));
            }
            Some(ChannelEvent::Closed) | None => Err(TransferError::PeerGone {
                reason: "the sender closed the channel before the end of the data".into(),
                confirmed_bytes: r.confirmed(),
            }),
            Some(ChannelEvent::PeerGone(reason)) => {
                Err(TransferError::PeerGone { reason, confirmed_bytes: r.confirmed() })
            }
        };
        if let Err(e) = step {
            let reason = e.to_string();
            if !matches!(e, TransferError::PeerGone { .. }) {
                send_abort(&port, &reason).await;
            }
            return Err(e.into());
        }
    }
}

struct Receiver<'a> {
    opts: &'a RecvOptions,
    meter: Arc<Meter>,
    items: Vec<Received>,
    current: Option<Current>,
    peer_is_dcsend: bool,
}

impl Receiver<'_> {
    fn confirmed(&self) -> u64 {
        self.items.iter().map(|i| i.bytes).sum()
    }

    fn outcome(&self, verified: bool) -> RecvOutcome {
        RecvOutcome { items: self.items.clone(), verified }
    }

    async fn on_control<P: ChannelPort>(
        &mut self,
        port: &P,
        msg: Control,
    ) -> Result<(), TransferError> {
        match msg {
            Control::Hello { v, .. } if v != PROTOCOL_VERSION => Err(TransferError::Protocol(
                format!("unsupported protocol version {v} (we speak {PROTOCOL_VERSION})"),
            )),
            Control::Hello { .. } => {
                self.peer_is_dcsend = true;
                Ok(())
            }
            Control::File { .. } if self.current.is_some() => {
                Err(TransferError::Protocol("a file header inside an item (no eof)".into()))
            }
            Control::File { name, size } => self.open(name.as_deref(), size),
            Control::Eof { bytes, sha256 } => self.on_eof(port, bytes, &sha256).await,
            other => {
                tracing::debug!("ignoring {other:?} from the sender");
                Ok(())
            }
        }
    }

    fn open(&mut self, name: Option<&str>, size: Option<u64>) -> Result<(), TransferError> {
        let path = match &self.opts.dest {
            Destination::Stdout | Destination::Discard => None,
            Destination::File(_) if !self.items.is_empty() => {
                return Err(TransferError::Refused(
                    "the sender sends several files but -o names one file; use -o DIR/".into(),
                ));
            }
            Destination::File(p) => Some(p.clone()),
            Destination::Dir(dir) => {
                let name = match name {
                    Some(n) => names::sanitize(n)
                        .map_err(|e| TransferError::Protocol(format!("refused file name: {e}")))?,
                    None => UNNAMED.to_owned(),
                };
                Some(dir.join(name))
            }
        };
        let (target, part) = match &path {
            None if self.opts.dest == Destination::Discard => (SinkTarget::Discard, None),
            None => (SinkTarget::Stdout, None),
            Some(p) => {
                if p.exists() && !self.opts.force {
                    return Err(TransferError::Refused(format!(
                        "{} exists (use --force to overwrite)",
                        p.display()
                    )));
                }
                let part = part_path(p);
                (SinkTarget::Part(part.clone()), Some(part))
            }
        };
        let sink = Sink::open(target).map_err(|e| TransferError::Refused(e.to_string()))?;
        // Saturating: the size comes from the peer and may be u64::MAX (= unknown total).
        self.meter.set_total(size.map(|s| s.saturating_add(self.confirmed())));
        self.current = Some(Current { sink, size, bytes: 0, part, path });
        Ok(())
    }

    async fn on_data(&mut self, data: Bytes) -> Result<(), TransferError> {
        if self.current.is_none() {
            if self.peer_is_dcsend || !self.items.is_empty() {
                return Err(TransferError::Protocol("data outside a file (no file header)".into()));
            }
            self.open(None, None)?;
        }
        let cur = self.current.as_mut().expect("opened above");
        let len = data.len() as u64;
        if cur.size.is_some_and(|size| cur.bytes + len > size) {
            return Err(TransferError::Protocol(
                "more bytes than the file header announced".into(),
            ));
        }
        cur.bytes += len;
        if cur.sink.write(data).await.is_err() {
            let cur = self.current.take().expect("present");
            let err = cur.sink.finish().await.err();
            return Err(write_error(err));
        }
        self.meter.add_bytes(len);
        Ok(())
    }

    async fn on_eof<P: ChannelPort>(
        &mut self,
        port: &P,
        bytes: u64,
        sha256: &str,
    ) -> Result<(), TransferError> {
        let cur = self
            .current
            .take()
            .ok_or_else(|| TransferError::Protocol("eof without a file header".into()))?;
        let written = cur.sink.finish().await.map_err(|e| write_error(Some(e)))?;
        let label = cur.path.as_ref().map_or("stdout".into(), |p| p.display().to_string());
        let mismatch = if written.bytes != bytes || cur.size.is_some_and(|s| s != bytes) {
            Some(format!(
                "got {} bytes, the sender announced {} and sent {bytes}",
                written.bytes,
                cur.size.map_or("an unknown size".into(), |s| s.to_string())
            ))
        } else if written.sha256 != sha256 {
            Some(format!("SHA-256 is {}, the sender's is {sha256}", written.sha256))
        } else {
            None
        };
        if let Some(detail) = mismatch {
            let nack = Control::Ack { bytes: written.bytes, ok: false };
            port.send(Outbound::Text(nack.encode())).await.ok();
            return Err(TransferError::Integrity { name: label, detail });
        }
        if let (Some(part), Some(path)) = (&cur.part, &cur.path) {
            std::fs::rename(part, path).map_err(|e| {
                TransferError::Refused(format!(
                    "renaming {} to {}: {e}",
                    part.display(),
                    path.display()
                ))
            })?;
        }
        let ack = Control::Ack { bytes, ok: true };
        port.send(Outbound::Text(ack.encode())).await.map_err(|e| TransferError::PeerGone {
            reason: e.to_string(),
            confirmed_bytes: self.confirmed(),
        })?;
        self.items.push(Received { path: cur.path, bytes, sha256: written.sha256 });
        Ok(())
    }

    /// A plain peer closed its channel: keep what arrived, unverified.
    async fn finish_plain(&mut self) -> anyhow::Result<()> {
        let Some(cur) = self.current.take() else {
            // A plain peer that sent nothing: an empty stream.
            self.open(None, None)?;
            return Box::pin(self.finish_plain()).await;
        };
        let written = cur.sink.finish().await.map_err(|e| write_error(Some(e)))?;
        if let (Some(part), Some(path)) = (&cur.part, &cur.path) {
            std::fs::rename(part, path)?;
        }
        self.items.push(Received { path: cur.path, bytes: written.bytes, sha256: written.sha256 });
        Ok(())
    }
}

fn write_error(err: Option<std::io::Error>) -> TransferError {
    TransferError::Output(err.unwrap_or_else(|| std::io::Error::other("the writer stopped")))
}

fn part_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(names::PART_SUFFIX);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    //! The real receiver against a scripted hostile sender (a fake channel): whatever the
    //! peer sends, the receiver answers with `abort` and an error, never a panic, and never
    //! writes outside its folder.
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::peer::PeerError;

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
        async fn drained(&self) -> Result<(), PeerError> {
            Ok(())
        }
    }

    fn text(c: Control) -> ChannelEvent {
        ChannelEvent::Text(c.encode())
    }

    fn hello() -> ChannelEvent {
        text(Control::Hello { v: PROTOCOL_VERSION, role: Role::Send, app: "test".into() })
    }

    /// A dcsend sender's opening: `hello`, a `file` header, then `data` as one message.
    fn item(name: &str, size: u64, data: &'static [u8]) -> Vec<ChannelEvent> {
        vec![
            hello(),
            text(Control::File { name: Some(name.into()), size: Some(size) }),
            ChannelEvent::Binary(Bytes::from_static(data)),
        ]
    }

    /// Feeds `script` to a receiver writing into a fresh folder; returns the error text,
    /// what the receiver sent back, and the folder's entries.
    async fn run_script(script: Vec<ChannelEvent>) -> (String, Vec<Outbound>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let (tx, rx) = mpsc::channel(script.len() + 1);
        for ev in script {
            tx.send(ev).await.unwrap();
        }
        drop(tx);
        let port = Recorder::default();
        let opts = RecvOptions {
            dest: Destination::Dir(out.clone()),
            force: false,
            linger: Duration::from_millis(10),
        };
        let meter = Arc::new(Meter::new(None));
        let res = tokio::time::timeout(
            Duration::from_secs(10),
            receive(port.clone(), rx, &opts, meter, CancellationToken::new()),
        )
        .await
        .expect("receiver hung");
        let err = format!("{:#}", res.expect_err("a hostile script must fail"));
        let mut entries: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        // Nothing may appear next to the output folder.
        let outside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(outside.len(), 1, "something was written outside the output folder");
        let sent = port.0.lock().unwrap().clone();
        (err, sent, entries)
    }

    fn aborted_with(sent: &[Outbound], needle: &str) -> bool {
        sent.iter()
            .any(|m| matches!(m, Outbound::Text(t) if t.contains("abort") && t.contains(needle)))
    }

    #[tokio::test]
    async fn traversal_names_are_refused_with_an_abort() {
        for name in ["../evil", "/etc/passwd", "a/b", "..", "C:\\x", "nul.txt", "x\0y"] {
            let (err, sent, entries) = run_script(item(name, 1, b"x")).await;
            assert!(err.contains("refused file name"), "{name:?}: {err}");
            assert!(aborted_with(&sent, "refus"), "{name:?}: no abort sent: {sent:?}");
            assert!(entries.is_empty(), "{name:?}: wrote {entries:?}");
        }
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
        script.push(text(Control::File { name: Some("b".into()), size: Some(u64::MAX) }));
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
}
