//! The receiving side: reassembles items from the channel's messages, writes each to
//! stdout or `NAME.part`, checks size and SHA-256 at `eof`, renames, and acknowledges.
//!
//! A peer that never says `hello` is a plain WebRTC peer: its binary messages are one
//! stream and the channel closing is its end, reported as unverified.
//!
//! This file is the message loop ([`receive`]) and the `Receiver`'s handlers for one
//! item's life: `file`, data, `eof`, `ack`. Beside it: `place` decides where an item goes
//! (the output folder, `NAME.part`, the final name, and what is refused), `batch` makes the
//! files verified since the last batch durable together before their acks, and `resume`
//! answers a resuming `file` with `have` and the sender's `skip` (`recv --resume`).
//!
//! Must not import: webrtc, indicatif, `cli`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod batch;
mod place;
mod resume;

use self::batch::Batch;
use self::place::{Placed, Placement, Placer};
use super::codec;
use super::session::{self, send_abort};
use super::sink::{FileMeta, Held, HeldFile, Partial, Sink, SinkTarget};
use super::wire::{Control, Role};
use crate::error::{Stop, TransferError};
use crate::peer::{ChannelEvent, ChannelPort, Outbound, PeerError};
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
    /// As [`Destination::Dir`], but data without a name (stdin, a plain peer) is refused
    /// rather than stored as `stream`: what `recv` does when stdout is a terminal and there
    /// is no `-o` (the current folder, as croc and magic-wormhole save).
    NamedOnly(PathBuf),
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
    /// After `done`, once the last acks have reached the sender, how long to wait for it to
    /// close before leaving anyway.
    pub linger: Duration,
    /// Offer the sender what an existing `NAME.part` holds (`recv --resume`); not for
    /// [`Destination::Stdout`] and [`Destination::Discard`].
    pub resume: bool,
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
    /// A prefix kept from `NAME.part` (verified by the sender), included in `bytes`.
    pub resumed_bytes: u64,
    /// Bytes of an earlier `NAME.part` thrown away because the sender's file differs.
    pub discarded_bytes: u64,
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
    out: Out,
    size: Option<u64>,
    bytes: u64,
    /// Where it is stored (`None`: stdout or discard).
    placed: Option<Placed>,
    resumed: u64,
    discarded: u64,
    /// What the stored file keeps of the sender's (tree extension).
    meta: FileMeta,
    /// Its binary messages are framed, and may be compressed (compression extension).
    framed: bool,
}

/// Where the current item's payload goes.
enum Out {
    /// Writing.
    Sink(Sink),
    /// A small file, kept in memory until it is verified; its batch writes it.
    Held(Held),
    /// `have` sent: no payload until the sender's `skip` says where it starts.
    AwaitingSkip {
        /// Where the payload goes when the sender starts over.
        target: SinkTarget,
        /// The `NAME.part` on offer; `None` when `have` offered nothing.
        partial: Option<Box<Partial>>,
    },
}

/// After `done`, how long the last acks get to reach the sender (SCTP has them acknowledged)
/// before the receiver leaves anyway. Under heavy loss their retransmissions back off to
/// seconds apart; leaving before they arrive made the sender report a failure for a
/// transfer the receiver had verified and kept.
const ACKS_OUT: Duration = Duration::from_secs(30);

/// Receives until the sender is done; see the module docs.
pub async fn receive<P: ChannelPort>(
    port: P,
    mut events: mpsc::Receiver<ChannelEvent>,
    opts: &RecvOptions,
    meter: Arc<Meter>,
    cancel: CancellationToken,
) -> Result<RecvOutcome, TransferError> {
    let resume = opts.resume && !matches!(opts.dest, Destination::Stdout | Destination::Discard);
    let placer = match Placer::open(&opts.dest, opts.force) {
        Ok(placer) => placer,
        Err(e) => {
            send_abort(&port, &e.to_string()).await;
            return Err(e);
        }
    };
    let says = session::Says {
        resume,
        tree: Some(placer.takes_trees()),
        zstd: true,
        ..Default::default()
    };
    port.send(session::hello(Role::Recv, says)).await.map_err(|e| peer_gone(e, 0))?;

    let mut r = Receiver {
        resume,
        meter,
        placer,
        items: Vec::new(),
        current: None,
        peer_is_dcsend: false,
        announced_total: false,
        batch: Batch::new(),
        stored_bytes: 0,
        cancel: cancel.clone(),
    };
    let mut done = false;
    let linger = tokio::time::sleep(Duration::MAX);
    tokio::pin!(linger);
    // Polled once `done` has come: resolves when the peer has acknowledged all we sent.
    let acks_out = port.drained_to(0);
    tokio::pin!(acks_out);
    let mut acks_waiting = false;
    loop {
        let ev = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                // What was verified is kept, and confirmed, before the abort.
                r.keep_held().await;
                r.flush_acks(&port).await.ok();
                send_abort(&port, &format!("the receiver was {}", Stop::shown())).await;
                return Err(TransferError::Interrupted);
            }
            () = &mut linger => return Ok(r.outcome(true)),
            _ = &mut acks_out, if acks_waiting => {
                // The sender has our last acks: now it gets `linger` to close.
                acks_waiting = false;
                linger.as_mut().reset(tokio::time::Instant::now() + opts.linger);
                continue;
            }
            () = sleep_until(r.batch.deadline()) => {
                if let Err(e) = r.flush_acks(&port).await {
                    send_abort(&port, &e.to_string()).await;
                    return Err(e);
                }
                continue;
            }
            ev = events.recv() => ev,
        };
        let step = match ev {
            Some(ChannelEvent::Text(text)) => match Control::decode(&text) {
                Ok(Control::Done) if r.current.is_some() => {
                    Err(TransferError::Protocol("done inside an item (no eof)".into()))
                }
                Ok(Control::Done) => {
                    // The last files are made durable and acknowledged; then a tree's
                    // folders get their times, once nothing more is written in them.
                    let finished = match r.flush_acks(&port).await {
                        Ok(()) => match r.placer.finish_folders() {
                            Ok(true) => r.placer.sync().await,
                            Ok(false) => Ok(()),
                            Err(e) => Err(e),
                        },
                        Err(e) => Err(e),
                    };
                    if let Err(e) = finished {
                        send_abort(&port, &e.to_string()).await;
                        return Err(e);
                    }
                    done = true;
                    acks_waiting = true;
                    linger.as_mut().reset(tokio::time::Instant::now() + ACKS_OUT);
                    Ok(())
                }
                Ok(Control::Abort { reason }) => {
                    let confirmed_bytes = r.confirmed();
                    return Err(TransferError::PeerAborted { reason, confirmed_bytes });
                }
                Ok(_) if done => Err(TransferError::Protocol("a message after done".into())),
                Ok(msg) => r.on_control(&port, msg).await,
                Err(e) => Err(TransferError::Protocol(e.to_string())),
            },
            Some(ChannelEvent::Binary(_)) if done => {
                Err(TransferError::Protocol("data after done".into()))
            }
            Some(ChannelEvent::Binary(data)) => r.on_data(&port, data).await,
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
        let step = match step {
            Ok(()) if r.batch.due() => r.flush_acks(&port).await,
            step => step,
        };
        if let Err(e) = step {
            r.keep_held().await;
            // What was verified before is kept, and confirmed before the abort if it can be.
            if matches!(e, TransferError::PeerGone { .. }) {
                r.commit().await.ok();
            } else {
                r.flush_acks(&port).await.ok();
            }
            let reason = match e {
                // Ctrl-C or SIGTERM while a write waited for the output.
                TransferError::Interrupted => format!("the receiver was {}", Stop::shown()),
                // The consumer of our stdout exited (`dcsend recv | tar x`, tar failed).
                TransferError::Output(ref io) if io.kind() == std::io::ErrorKind::BrokenPipe => {
                    "the receiver's output was closed before the end of the data".to_owned()
                }
                _ => e.to_string(),
            };
            if !matches!(e, TransferError::PeerGone { .. }) {
                send_abort(&port, &reason).await;
            }
            return Err(e);
        }
    }
}

struct Receiver {
    /// We asked for resume in our `hello`.
    resume: bool,
    cancel: CancellationToken,
    meter: Arc<Meter>,
    /// Where items go.
    placer: Placer,
    items: Vec<Received>,
    current: Option<Current>,
    peer_is_dcsend: bool,
    /// The sender's `hello` announced the total size: the live view's total is not set per
    /// item.
    announced_total: bool,
    /// The files verified but not yet durable nor acknowledged: they are made durable
    /// together, then acknowledged ([`Receiver::flush_acks`]).
    batch: Batch,
    /// The sum of `items`' bytes.
    stored_bytes: u64,
}

impl Receiver {
    /// Bytes of the items stored so far (kept as a sum: it is asked for every message, and
    /// summing the items each time made a run of many files quadratic).
    fn confirmed(&self) -> u64 {
        self.stored_bytes
    }

    /// Records a stored item.
    fn stored(&mut self, item: Received) {
        // Saturating: the sizes come from the peer.
        self.stored_bytes = self.stored_bytes.saturating_add(item.bytes);
        self.items.push(item);
    }

    /// Whether a wait on the output gives up when the connection fails, and the bytes
    /// confirmed so far. Only with a dcsend sender: it keeps the connection until our last
    /// `ack`, so a failed connection means it is gone. A plain peer closes once SCTP has
    /// delivered everything, and what we still hold must reach the output however slowly.
    fn watch_peer(&self) -> Option<u64> {
        self.peer_is_dcsend.then(|| self.confirmed())
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
            Control::Hello { v, tree, files, bytes, .. } => {
                session::check_version(v).map_err(TransferError::Protocol)?;
                self.peer_is_dcsend = true;
                if tree == Some(true) && !self.placer.takes_trees() {
                    let n = files.map_or(String::new(), |n| format!(" ({n} files)"));
                    return Err(TransferError::Refused(format!(
                        "the sender sends a folder{n}, and {}",
                        self.placer.why_no_tree()
                    )));
                }
                if let Some(files) = files {
                    self.meter.set_files_total(files);
                }
                if let Some(bytes) = bytes {
                    self.meter.set_total(Some(bytes));
                    self.announced_total = true;
                }
                Ok(())
            }
            Control::File { .. } | Control::Dir { .. } if self.current.is_some() => {
                Err(TransferError::Protocol("a file header inside an item (no eof)".into()))
            }
            Control::Dir { name, mtime } => self.placer.make_dir(&name, mtime),
            Control::File { name, size, resume: true, exec, mtime, zstd } => {
                let meta = FileMeta { exec, mtime_ns: mtime };
                self.open_resuming(port, name.as_deref(), size, meta).await?;
                self.set_framed(zstd);
                Ok(())
            }
            Control::File { name, size, resume: false, exec, mtime, zstd } => {
                self.open(name.as_deref(), size, FileMeta { exec, mtime_ns: mtime })?;
                self.set_framed(zstd);
                Ok(())
            }
            Control::Skip { bytes } => self.on_skip(bytes),
            Control::Eof { bytes, sha256 } => self.on_eof(port, bytes, &sha256).await,
            other => {
                tracing::debug!("ignoring {other:?} from the sender");
                Ok(())
            }
        }
    }

    /// The compression extension: this item's messages are framed ([`codec`]).
    fn set_framed(&mut self, zstd: bool) {
        if let Some(cur) = self.current.as_mut() {
            cur.framed = zstd;
        }
    }

    fn open(
        &mut self,
        name: Option<&str>,
        size: Option<u64>,
        meta: FileMeta,
    ) -> Result<(), TransferError> {
        let Placement { target, placed } = self.placer.place(name, None)?;
        if let Some(placed) = &placed {
            self.say_why_not_resumed(name, size, &placed.part);
        }
        let out = match (target, size) {
            (SinkTarget::Part(part), Some(size)) if size <= Held::MAX_BYTES => {
                Held::new(part).map(Out::Held)
            }
            (target, _) => Sink::open(target).map(Out::Sink),
        };
        let out = out.map_err(|e| TransferError::Refused(e.to_string()))?;
        self.start(out, name, size, placed, meta);
        Ok(())
    }

    /// Starts item `name` (the sender's name for it), stored as `placed`.
    fn start(
        &mut self,
        out: Out,
        name: Option<&str>,
        size: Option<u64>,
        placed: Option<Placed>,
        meta: FileMeta,
    ) {
        // The live view shows the name it is saved under, else the sender's; a nameless
        // item keeps the label the view started with (where the data goes). Several files
        // announced together keep that label too: the view names the current one beside
        // the files done/total.
        if self.meter.files_total().is_none_or(|n| n <= 1) {
            match (&placed, name) {
                (Some(p), _) => self.meter.set_label(p.name.to_string_lossy().into_owned()),
                (None, Some(name)) => self.meter.set_label(name.to_owned()),
                (None, None) => {}
            }
        }
        if !self.announced_total {
            // Saturating: the size comes from the peer and may be u64::MAX (= unknown total).
            self.meter.set_total(size.map(|s| s.saturating_add(self.meter.bytes())));
        }
        if let Some(name) = name {
            self.meter.set_current(name);
        }
        self.current = Some(Current {
            out,
            size,
            bytes: 0,
            placed,
            resumed: 0,
            discarded: 0,
            meta,
            framed: false,
        });
    }

    async fn on_data<P: ChannelPort>(
        &mut self,
        port: &P,
        data: Bytes,
    ) -> Result<(), TransferError> {
        let watch = self.watch_peer();
        if self.current.is_none() {
            if self.peer_is_dcsend || !self.items.is_empty() {
                return Err(TransferError::Protocol("data outside a file (no file header)".into()));
            }
            self.open(None, None, FileMeta::default())?;
        }
        let cur = self.current.as_mut().expect("opened above");
        if let Out::AwaitingSkip { .. } = cur.out {
            return Err(TransferError::Protocol("payload before the sender's skip".into()));
        }
        // Bounded: at most `codec::MAX_UNPACKED` bytes come out of one message.
        let data = match cur.framed {
            true => codec::unpack(&data).map_err(|e| TransferError::Protocol(e.to_string()))?,
            false => data,
        };
        let len = data.len() as u64;
        if cur.size.is_some_and(|size| cur.bytes + len > size) {
            return Err(TransferError::Protocol(
                "more bytes than the file header announced".into(),
            ));
        }
        cur.bytes += len;
        let sink = match &mut cur.out {
            Out::Held(held) => {
                held.push(data);
                self.meter.add_bytes(len);
                return Ok(());
            }
            Out::Sink(sink) => sink,
            Out::AwaitingSkip { .. } => unreachable!("refused above"),
        };
        let written = stoppable(port, &self.cancel, watch, sink.write(data)).await?;
        if written.is_err() {
            let Some(Current { out: Out::Sink(sink), .. }) = self.current.take() else {
                unreachable!("a sink above")
            };
            let err = sink.finish().await.err();
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
        let (written, held) = match cur.out {
            Out::Sink(sink) => {
                let finish = sink.finish_with(cur.meta);
                let written = stoppable(port, &self.cancel, self.watch_peer(), finish).await?;
                (written.map_err(|e| write_error(Some(e)))?, None)
            }
            Out::Held(held) => {
                let (written, file) = held.finish(cur.meta);
                (written, Some(file))
            }
            Out::AwaitingSkip { .. } => {
                return Err(TransferError::Protocol("eof before the sender's skip".into()));
            }
        };
        let path = cur.placed.as_ref().map(Placed::path);
        let label = path.as_ref().map_or("stdout".into(), |p| p.display().to_string());
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
            // What arrived is left in its `.part`, as a streamed file's is.
            if let Some(file) = held {
                write_held(file).await.ok();
            }
            // The acks of the files before come first.
            self.flush_acks(port).await?;
            let nack = Control::Ack { bytes: written.bytes, ok: false };
            port.send(Outbound::Text(nack.encode())).await.ok();
            return Err(TransferError::Integrity { name: label, detail });
        }
        let rename = cur.placed.as_ref().and_then(|placed| self.placer.commit(placed));
        // Durable and acknowledged with the next batch (see [`Receiver::flush_acks`]).
        self.batch.add(bytes, held, rename);
        // Verified: it counts as received even if the ack cannot reach the sender.
        self.meter.file_done();
        self.stored(Received {
            path,
            bytes,
            sha256: written.sha256,
            resumed_bytes: cur.resumed,
            discarded_bytes: cur.discarded,
        });
        Ok(())
    }

    /// Makes the files verified since the last batch durable, in the order `batch.rs` gives
    /// (write the files held in memory, sync, rename, sync), off the async threads, then
    /// acknowledges each, in order. A file counts as received once verified, whether or not
    /// its ack reaches the sender.
    async fn flush_acks<P: ChannelPort>(&mut self, port: &P) -> Result<(), TransferError> {
        for bytes in self.commit().await? {
            let ack = Control::Ack { bytes, ok: true };
            port.send(Outbound::Text(ack.encode()))
                .await
                .map_err(|e| peer_gone(e, self.confirmed()))?;
        }
        Ok(())
    }

    /// The durable half of [`Receiver::flush_acks`]: returns the acks to send.
    async fn commit(&mut self) -> Result<Vec<u64>, TransferError> {
        if self.batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut commit = self.batch.take();
        let acks = std::mem::take(&mut commit.acks);
        tokio::task::spawn_blocking(move || commit.run())
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(TransferError::Output)?;
        Ok(acks)
    }

    /// A failed run leaves what arrived of a small file cut short in its `.part`, as a
    /// streamed file's is (best effort: the run has failed already).
    async fn keep_held(&mut self) {
        if let Some(Current { out: Out::Held(held), .. }) = self.current.take() {
            write_held(held.finish(FileMeta::default()).1).await.ok();
        }
    }

    /// A plain peer closed its channel: keep what arrived, unverified.
    async fn finish_plain(&mut self) -> Result<(), TransferError> {
        let Some(cur) = self.current.take() else {
            // A plain peer that sent nothing: an empty stream.
            self.open(None, None, FileMeta::default())?;
            return Box::pin(self.finish_plain()).await;
        };
        let Out::Sink(sink) = cur.out else {
            // A plain peer announces no size, so nothing of it is held.
            return Err(TransferError::Protocol(
                "the channel closed before the sender's skip".into(),
            ));
        };
        let written = sink.finish().await.map_err(|e| write_error(Some(e)))?;
        let rename = cur.placed.as_ref().and_then(|placed| self.placer.commit(placed));
        self.batch.add(written.bytes, None, rename);
        self.commit().await?;
        self.stored(Received {
            path: cur.placed.as_ref().map(Placed::path),
            bytes: written.bytes,
            sha256: written.sha256,
            resumed_bytes: 0,
            discarded_bytes: 0,
        });
        Ok(())
    }
}

/// Runs `work`, a wait on the output, unless Ctrl-C/SIGTERM comes first, or (with
/// `watch` = the bytes confirmed so far) the connection fails: a consumer that does not read
/// holds a write for as long as it likes, and neither a signal nor a vanished sender may
/// wait for it (the events that report the latter are not read meanwhile).
async fn stoppable<P: ChannelPort, T>(
    port: &P,
    cancel: &CancellationToken,
    watch: Option<u64>,
    work: impl Future<Output = T>,
) -> Result<T, TransferError> {
    let failed = async {
        match watch {
            Some(confirmed_bytes) => {
                port.failed().await;
                confirmed_bytes
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(TransferError::Interrupted),
        confirmed_bytes = failed => Err(TransferError::PeerGone {
            reason: "the connection failed (no packets from the peer for several seconds) while \
                     the output was not being read"
                .into(),
            confirmed_bytes,
        }),
        res = work => Ok(res),
    }
}

/// Writes `file` to its `.part` off the async threads.
async fn write_held(file: HeldFile) -> Result<(), TransferError> {
    tokio::task::spawn_blocking(move || file.write())
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(TransferError::Output)
}

/// Sleeps until `at`; forever when `None`.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A message to the sender could not be sent: the channel is gone, and so is the sender.
fn peer_gone(err: PeerError, confirmed_bytes: u64) -> TransferError {
    TransferError::PeerGone { reason: err.to_string(), confirmed_bytes }
}

fn write_error(err: Option<std::io::Error>) -> TransferError {
    TransferError::Output(err.unwrap_or_else(|| std::io::Error::other("the writer stopped")))
}

#[cfg(test)]
mod tests;
