//! Resume, the receiving half (`recv --resume`): a `file` with `resume: true` is answered
//! with `have` (what `NAME.part` already holds, hashed off the async threads), and the
//! payload waits for the sender's `skip`: keep that prefix, or start over. A `file` that
//! cannot be resumed is received from the start, with one line that says why.
//!
//! Must not import: webrtc, indicatif, `cli`.

use super::place::{Placed, Placement};
use super::{Current, Out, Receiver, peer_gone};
use crate::error::TransferError;
use crate::peer::{ChannelPort, Outbound};
use crate::progress::notice::{NotResumed, Notice};
use crate::transfer::sink::{Entry, FileMeta, PartFile, Partial, Sink};
use crate::transfer::wire::{Control, Digest};

impl Receiver {
    /// Under `--resume`, a `file` without `resume: true` is received from the start: say why,
    /// in one line. Without it, say so when this empties an earlier `NAME.part`.
    pub(super) fn say_why_not_resumed(
        &self,
        name: Option<&str>,
        size: Option<u64>,
        part: &PartFile,
    ) {
        let why = match (name, size) {
            _ if !self.resume => {
                // The entry itself: a link is refused, and its target's size is nobody's
                // business.
                let held_bytes = match part.folder.entry(&part.name) {
                    Ok(Entry::File { len }) => len,
                    _ => 0,
                };
                if held_bytes > 0 {
                    self.meter.notice(Notice::OverwritingPart {
                        part: part.show(),
                        held_bytes,
                        resumable: name.is_some() && size.is_some(),
                    });
                }
                return;
            }
            _ if !self.peer_is_dcsend => NotResumed::PlainPeer,
            (None, _) => NotResumed::Stdin,
            (Some(n), None) => NotResumed::UnknownSize { name: n.to_owned() },
            (Some(n), Some(_)) => NotResumed::NotOffered { name: n.to_owned() },
        };
        self.meter.notice(Notice::NotResumed(why));
    }

    /// A `file` with `resume: true`: offer what `NAME.part` holds in a `have`, then wait for
    /// the sender's `skip` (see [`Receiver::on_skip`]). The `.part` is not touched before.
    pub(super) async fn open_resuming<P: ChannelPort>(
        &mut self,
        port: &P,
        name: Option<&str>,
        size: Option<u64>,
        meta: FileMeta,
    ) -> Result<(), TransferError> {
        let resuming = size.filter(|_| self.resume);
        let Placement { target, placed } = self.placer.place(name, resuming)?;
        let partial = match (&placed, size) {
            (Some(placed @ Placed { part, .. }), Some(size)) if self.resume => {
                // A file already there whole is offered like a `.part` of all its bytes.
                let part = match placed.whole {
                    true => &PartFile { folder: part.folder.clone(), name: placed.name.clone() },
                    false => part,
                };
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
                    self.meter.notice(Notice::PartShared { part: part.show(), links });
                } else if partial.on_disk() > size {
                    self.meter.notice(Notice::PartTooLong {
                        part: part.show(),
                        part_bytes: partial.on_disk(),
                        size_bytes: size,
                    });
                }
                Some(Box::new(partial))
            }
            _ => None,
        };
        let (bytes, sha256) =
            partial.as_ref().map_or_else(|| (0, Digest::new().finish()), |p| p.offer());
        port.send(Outbound::Text(Control::Have { bytes, sha256 }.encode()))
            .await
            .map_err(|e| peer_gone(e, self.confirmed()))?;
        self.start(Out::AwaitingSkip { target, partial }, name, size, placed, meta);
        Ok(())
    }

    /// The sender's `skip`: keep the prefix we offered, or (0) start over. On a protocol
    /// error the `.part` is left as it was.
    pub(super) fn on_skip(&mut self, skip: u64) -> Result<(), TransferError> {
        let Some(mut cur) = self.current.take() else {
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
        // (An empty file cannot be offered as a prefix, so an empty one there is rewritten.)
        let differs = |p: &&mut Placed| p.whole && skip == 0 && cur.size != Some(0);
        if let Some(placed) = cur.placed.as_mut().filter(differs) {
            // The file there is not the sender's: it is replaced only with --force, through
            // a fresh `.part` like any item.
            if !self.placer.force() {
                return Err(TransferError::Refused(format!(
                    "{} exists and differs from the sender's file (use --force to overwrite)",
                    placed.path().display()
                )));
            }
            placed.whole = false;
            let sink = Sink::open(target).map_err(|e| TransferError::Refused(e.to_string()))?;
            self.current = Some(Current { out: Out::Sink(sink), bytes: 0, ..cur });
            return Ok(());
        }
        let opened = match partial {
            Some(p) if skip > 0 => p.keep(),
            Some(p) => {
                discarded = p.on_disk();
                // A longer `.part` offered nothing and was reported when it was found. A
                // partial is only ever opened for an item placed in a folder.
                if let (true, Some(placed)) = (offered > 0, &cur.placed) {
                    self.meter.notice(Notice::PartMismatch { part: placed.part.show() });
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
}
