//! The receiving side: reassembles items from the channel's messages, writes each to
//! stdout or `NAME.part`, checks size and SHA-256 at `eof`, renames, and acknowledges.
//!
//! A peer that never says `hello` is a plain WebRTC peer: its binary messages are one
//! stream and the channel closing is its end, reported as unverified.
//!
//! With `resume` (`recv --resume`) the `hello` asks for resume; a `file` with `resume: true`
//! is answered with `have` (what `NAME.part` already holds, hashed off the async threads),
//! and the payload waits for the sender's `skip`: keep that prefix, or start over.
//!
//! Must not import: webrtc, indicatif, `cli`.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::names;
use super::session::{self, send_abort};
use super::sink::{Entry, Folder, PartFile, Partial, Sink, SinkTarget};
use super::wire::{Control, Digest, Role};
use crate::error::{Stop, TransferError};
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
    /// Offer the sender what an existing `NAME.part` holds (`recv --resume`); only for
    /// [`Destination::Dir`] and [`Destination::File`].
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
}

/// An item stored in a folder: written to `part`, renamed to `name` once verified.
#[derive(Debug, Clone)]
struct Placed {
    part: PartFile,
    /// The final name in the folder.
    name: OsString,
}

impl Placed {
    fn path(&self) -> PathBuf {
        self.part.folder.show(&self.name)
    }

    /// Renames the verified `NAME.part` to `NAME` and syncs the folder, off the async threads.
    async fn commit(&self) -> Result<(), TransferError> {
        let (folder, from, to) =
            (self.part.folder.clone(), self.part.name.clone(), self.name.clone());
        tokio::task::spawn_blocking(move || folder.rename(&from, &to))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|e| TransferError::Refused(e.to_string()))
    }
}

/// Where the current item's payload goes.
enum Out {
    /// Writing.
    Sink(Sink),
    /// `have` sent: no payload until the sender's `skip` says where it starts.
    AwaitingSkip {
        /// Where the payload goes when the sender starts over.
        target: SinkTarget,
        /// The `NAME.part` on offer; `None` when `have` offered nothing.
        partial: Option<Box<Partial>>,
    },
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
    let resume = opts.resume && matches!(opts.dest, Destination::Dir(_) | Destination::File(_));
    let folder = match open_folder(&opts.dest) {
        Ok(folder) => folder,
        Err(e) => {
            send_abort(&port, &e.to_string()).await;
            return Err(e.into());
        }
    };
    port.send(session::hello(Role::Recv, resume)).await?;

    let mut r = Receiver {
        opts,
        resume,
        meter,
        folder,
        stored: HashSet::new(),
        items: Vec::new(),
        current: None,
        peer_is_dcsend: false,
        cancel: cancel.clone(),
    };
    let mut done = false;
    let linger = tokio::time::sleep(Duration::MAX);
    tokio::pin!(linger);
    loop {
        let ev = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                send_abort(&port, &format!("the receiver was {}", Stop::shown())).await;
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
                    let confirmed_bytes = r.confirmed();
                    return Err(TransferError::PeerAborted { reason, confirmed_bytes }.into());
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
        if let Err(e) = step {
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
            return Err(e.into());
        }
    }
}

struct Receiver<'a> {
    opts: &'a RecvOptions,
    /// We asked for resume in our `hello`.
    resume: bool,
    cancel: CancellationToken,
    meter: Arc<Meter>,
    /// The output folder (for `-o DIR/`, or the folder of `-o FILE`) and, for `-o FILE`, the
    /// file's name in it.
    folder: Option<(Folder, Option<OsString>)>,
    /// Names this run has stored in the folder: neither is overwritten later in the run,
    /// by an item of the same name or by another item's `NAME.part`.
    stored: HashSet<OsString>,
    items: Vec<Received>,
    current: Option<Current>,
    peer_is_dcsend: bool,
}

impl Receiver<'_> {
    fn confirmed(&self) -> u64 {
        self.items.iter().map(|i| i.bytes).sum()
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
            Control::Hello { v, .. } => {
                session::check_version(v).map_err(TransferError::Protocol)?;
                self.peer_is_dcsend = true;
                Ok(())
            }
            Control::File { .. } if self.current.is_some() => {
                Err(TransferError::Protocol("a file header inside an item (no eof)".into()))
            }
            Control::File { name, size, resume: true } => {
                self.open_resuming(port, name.as_deref(), size).await
            }
            Control::File { name, size, resume: false } => self.open(name.as_deref(), size),
            Control::Skip { bytes } => self.on_skip(bytes),
            Control::Eof { bytes, sha256 } => self.on_eof(port, bytes, &sha256).await,
            other => {
                tracing::debug!("ignoring {other:?} from the sender");
                Ok(())
            }
        }
    }

    fn open(&mut self, name: Option<&str>, size: Option<u64>) -> Result<(), TransferError> {
        let (target, placed) = self.place(name)?;
        if let Some(placed) = &placed {
            self.say_why_not_resumed(name, size, &placed.part);
        }
        let sink = Sink::open(target).map_err(|e| TransferError::Refused(e.to_string()))?;
        self.start(Out::Sink(sink), size, placed);
        Ok(())
    }

    /// Under `--resume`, a `file` without `resume: true` is received from the start: say why,
    /// in one line. Without it, say so when this empties an earlier `NAME.part`.
    fn say_why_not_resumed(&self, name: Option<&str>, size: Option<u64>, part: &PartFile) {
        let why = match (name, size) {
            _ if !self.resume => {
                // The entry itself: a link is refused, and its target's size is nobody's
                // business.
                let held = match part.folder.entry(&part.name) {
                    Ok(Entry::File { len }) => len,
                    _ => 0,
                };
                if held > 0 {
                    let hint = if name.is_some() && size.is_some() {
                        "; recv --resume would continue it"
                    } else {
                        ""
                    };
                    self.meter.notice(format!(
                        "dcsend: overwriting {} ({held} bytes left by an earlier transfer{hint})",
                        part.show().display()
                    ));
                }
                return;
            }
            _ if !self.peer_is_dcsend => {
                "the peer is not dcsend (no names, no sizes), so its stream cannot be resumed"
                    .to_owned()
            }
            (None, _) => {
                "the sender streams stdin (no name, no size), which cannot be resumed".to_owned()
            }
            (Some(n), None) => format!("{n} has no known size (a pipe?), so it cannot be resumed"),
            (Some(n), Some(_)) => {
                format!("the sender did not offer to resume {n} (an older dcsend?)")
            }
        };
        self.meter.notice(format!("dcsend: --resume: {why}; receiving it from the start"));
    }

    /// A `file` with `resume: true`: offer what `NAME.part` holds in a `have`, then wait for
    /// the sender's `skip` (see [`Receiver::on_skip`]). The `.part` is not touched before.
    async fn open_resuming<P: ChannelPort>(
        &mut self,
        port: &P,
        name: Option<&str>,
        size: Option<u64>,
    ) -> Result<(), TransferError> {
        let (target, placed) = self.place(name)?;
        let partial = match (&placed, size) {
            (Some(Placed { part, .. }), Some(size)) if self.resume => {
                let (p, cancel) = (part.clone(), self.cancel.clone());
                let hashed =
                    tokio::task::spawn_blocking(move || Partial::open(&p, size, &cancel)).await;
                let partial = match hashed.map_err(std::io::Error::other) {
                    Ok(Ok(partial)) => partial,
                    Err(e) | Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                        return Err(TransferError::Interrupted);
                    }
                    Err(e) | Ok(Err(e)) => return Err(TransferError::Refused(e.to_string())),
                };
                if let Some(links) = partial.links() {
                    self.meter.notice(format!(
                        "dcsend: {} has {links} names (a hard link to another file?), so it is \
                         not read or resumed; receiving it from the start into a new file",
                        part.show().display(),
                    ));
                } else if partial.on_disk() > size {
                    self.meter.notice(format!(
                        "dcsend: {} ({} bytes) is longer than the sender's file ({size} bytes); \
                         receiving it from the start",
                        part.show().display(),
                        partial.on_disk()
                    ));
                }
                Some(Box::new(partial))
            }
            _ => None,
        };
        let (bytes, sha256) =
            partial.as_ref().map_or_else(|| (0, Digest::new().finish()), |p| p.offer());
        port.send(Outbound::Text(Control::Have { bytes, sha256 }.encode())).await.map_err(|e| {
            TransferError::PeerGone { reason: e.to_string(), confirmed_bytes: self.confirmed() }
        })?;
        self.start(Out::AwaitingSkip { target, partial }, size, placed);
        Ok(())
    }

    /// The sender's `skip`: keep the prefix we offered, or (0) start over. On a protocol
    /// error the `.part` is left as it was.
    fn on_skip(&mut self, skip: u64) -> Result<(), TransferError> {
        let Some(cur) = self.current.take() else {
            return Err(TransferError::Protocol("a skip without a have".into()));
        };
        let Out::AwaitingSkip { target, partial } = cur.out else {
            return Err(TransferError::Protocol("a skip without a have".into()));
        };
        let offered = partial.as_ref().map_or(0, |p| p.offer().0);
        if skip != 0 && skip != offered {
            return Err(TransferError::Protocol(format!(
                "the sender skips {skip} bytes but we have {offered}"
            )));
        }
        let mut discarded = 0;
        let opened = match partial {
            Some(p) if skip > 0 => p.keep(),
            Some(p) => {
                discarded = p.on_disk();
                // A longer `.part` offered nothing and was reported when it was found.
                if offered > 0 {
                    let part = cur
                        .placed
                        .as_ref()
                        .map_or_else(|| PathBuf::from("the partial copy"), |p| p.part.show());
                    self.meter.notice(format!(
                        "dcsend: {} does not match the sender's file; receiving it from the start",
                        part.display()
                    ));
                }
                p.discard()
            }
            None => Sink::open(target),
        };
        let sink = opened.map_err(|e| TransferError::Refused(e.to_string()))?;
        self.meter.add_resumed(skip);
        self.current =
            Some(Current { out: Out::Sink(sink), bytes: skip, resumed: skip, discarded, ..cur });
        Ok(())
    }

    fn start(&mut self, out: Out, size: Option<u64>, placed: Option<Placed>) {
        // Saturating: the size comes from the peer and may be u64::MAX (= unknown total).
        self.meter.set_total(size.map(|s| s.saturating_add(self.meter.bytes())));
        self.current = Some(Current { out, size, bytes: 0, placed, resumed: 0, discarded: 0 });
    }

    /// Where an item goes: the sink target and, in a folder, the `.part` and final names.
    /// Refuses a bad name, an existing `NAME` without `--force` (a link there counts, dangling
    /// or not), a folder at `NAME`, and a name or `NAME.part` this run already stored.
    fn place(&self, name: Option<&str>) -> Result<(SinkTarget, Option<Placed>), TransferError> {
        let (folder, file) = match (&self.opts.dest, &self.folder) {
            (Destination::Stdout, _) => return Ok((SinkTarget::Stdout, None)),
            (Destination::Discard, _) => return Ok((SinkTarget::Discard, None)),
            (Destination::File(_), _) if !self.items.is_empty() => {
                return Err(TransferError::Refused(
                    "the sender sends several files but -o names one file; use -o DIR/".into(),
                ));
            }
            (_, None) => unreachable!("a folder is opened for -o"),
            (_, Some((folder, Some(file)))) => (folder, file.clone()),
            (_, Some((folder, None))) => {
                let name = match name {
                    Some(n) => names::sanitize(n)
                        .map_err(|e| TransferError::Protocol(format!("refused file name: {e}")))?,
                    None => UNNAMED.to_owned(),
                };
                (folder, OsString::from(name))
            }
        };
        let mut part_name = file.clone();
        part_name.push(names::PART_SUFFIX);
        let placed =
            Placed { part: PartFile { folder: folder.clone(), name: part_name }, name: file };
        let path = placed.path();
        if self.stored.contains(&placed.name) {
            return Err(TransferError::Refused(format!(
                "{} was already received in this run: the sender sends two files of that name; \
                 not overwriting it",
                path.display()
            )));
        }
        if self.stored.contains(&placed.part.name) {
            return Err(TransferError::Refused(format!(
                "{}: its temporary file {} is a file received earlier in this run; not \
                 overwriting it (send these two files in two runs, or to two folders)",
                path.display(),
                placed.part.show().display()
            )));
        }
        let entry =
            folder.entry(&placed.name).map_err(|e| TransferError::Refused(e.to_string()))?;
        match entry {
            Entry::Missing => {}
            Entry::Other(what @ "a folder") => {
                return Err(TransferError::Refused(format!(
                    "{} exists and is {what}; dcsend does not replace folders",
                    path.display()
                )));
            }
            _ if self.opts.force => {}
            Entry::File { .. } => {
                return Err(TransferError::Refused(format!(
                    "{} exists (use --force to overwrite)",
                    path.display()
                )));
            }
            Entry::Other(what) => {
                return Err(TransferError::Refused(format!(
                    "{} exists and is {what} (use --force to replace it; its target is never \
                     written)",
                    path.display()
                )));
            }
        }
        Ok((SinkTarget::Part(placed.part.clone()), Some(placed)))
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
            self.open(None, None)?;
        }
        let cur = self.current.as_mut().expect("opened above");
        let Out::Sink(sink) = &cur.out else {
            return Err(TransferError::Protocol("payload before the sender's skip".into()));
        };
        let len = data.len() as u64;
        if cur.size.is_some_and(|size| cur.bytes + len > size) {
            return Err(TransferError::Protocol(
                "more bytes than the file header announced".into(),
            ));
        }
        cur.bytes += len;
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
        let Out::Sink(sink) = cur.out else {
            return Err(TransferError::Protocol("eof before the sender's skip".into()));
        };
        let written = stoppable(port, &self.cancel, self.watch_peer(), sink.finish()).await?;
        let written = written.map_err(|e| write_error(Some(e)))?;
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
            let nack = Control::Ack { bytes: written.bytes, ok: false };
            port.send(Outbound::Text(nack.encode())).await.ok();
            return Err(TransferError::Integrity { name: label, detail });
        }
        if let Some(placed) = &cur.placed {
            placed.commit().await?;
            self.stored.insert(placed.name.clone());
        }
        // Verified and stored: it counts as received even if the ack cannot reach the sender.
        self.items.push(Received {
            path,
            bytes,
            sha256: written.sha256,
            resumed_bytes: cur.resumed,
            discarded_bytes: cur.discarded,
        });
        let ack = Control::Ack { bytes, ok: true };
        port.send(Outbound::Text(ack.encode())).await.map_err(|e| TransferError::PeerGone {
            reason: e.to_string(),
            confirmed_bytes: self.confirmed(),
        })?;
        Ok(())
    }

    /// A plain peer closed its channel: keep what arrived, unverified.
    async fn finish_plain(&mut self) -> anyhow::Result<()> {
        let Some(cur) = self.current.take() else {
            // A plain peer that sent nothing: an empty stream.
            self.open(None, None)?;
            return Box::pin(self.finish_plain()).await;
        };
        let Out::Sink(sink) = cur.out else {
            return Err(TransferError::Protocol(
                "the channel closed before the sender's skip".into(),
            )
            .into());
        };
        let written = sink.finish().await.map_err(|e| write_error(Some(e)))?;
        if let Some(placed) = &cur.placed {
            placed.commit().await?;
        }
        self.items.push(Received {
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

fn write_error(err: Option<std::io::Error>) -> TransferError {
    TransferError::Output(err.unwrap_or_else(|| std::io::Error::other("the writer stopped")))
}

/// Opens the folder items are stored in, and for `-o FILE` the file's name in it; `None`
/// for stdout and discard.
fn open_folder(dest: &Destination) -> Result<Option<(Folder, Option<OsString>)>, TransferError> {
    let refused = |e: std::io::Error| TransferError::Refused(e.to_string());
    match dest {
        Destination::Stdout | Destination::Discard => Ok(None),
        Destination::Dir(dir) => Ok(Some((Folder::open(dir).map_err(refused)?, None))),
        Destination::File(path) => {
            let Some(file) = path.file_name() else {
                return Err(TransferError::Refused(format!(
                    "-o {} does not name a file",
                    path.display()
                )));
            };
            // `-o copy.bin`: the parent is "" (the current folder), and messages say `copy.bin`.
            let dir = path.parent().unwrap_or(Path::new(""));
            Ok(Some((Folder::open(dir).map_err(refused)?, Some(file.to_owned()))))
        }
    }
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
    use crate::transfer::wire::PROTOCOL_VERSION;

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
        })
    }

    /// A dcsend sender's opening: `hello`, a `file` header, then `data` as one message.
    fn item(name: &str, size: u64, data: &'static [u8]) -> Vec<ChannelEvent> {
        vec![
            hello(),
            text(Control::File { name: Some(name.into()), size: Some(size), resume: false }),
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
        let file = Control::File { name: Some("f".into()), size: Some(size), resume: true };
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
        sent.iter()
            .any(|m| matches!(m, Outbound::Text(t) if t.contains("abort") && t.contains(needle)))
    }

    #[tokio::test]
    async fn traversal_names_are_refused_with_an_abort() {
        for name in ["../evil", "/etc/passwd", "a/b", "..", "C:\\x", "x\0y"] {
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
        let script = [
            vec![hello()],
            whole("movie", b"M"),
            whole("movie.part", b"P"),
            vec![text(Control::Done)],
        ]
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
}
