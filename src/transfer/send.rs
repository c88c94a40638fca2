//! The sending side of a transfer: `hello`, the items through the threshold sender, then
//! wait for the receiver's `ack` of every item (or, with `--raw`, for the channel to drain
//! completely before closing it).
//!
//! Must not import: webrtc, indicatif, `cli`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::autotune::Threshold;
use super::pump::{Pump, PumpReport};
use super::session::{self, send_abort};
use super::source::{self, Item, ItemSent, PeerLink, PeerNote, SourceError};
use super::wire::{Control, Role};
use crate::error::{Stop, TransferError};
use crate::peer::{ChannelEvent, ChannelPort, PeerError};
use crate::progress::meter::Meter;

/// How a send runs.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Low-water threshold: fixed or adaptive.
    pub threshold: Threshold,
    /// Message size, bytes.
    pub chunk_bytes: usize,
    /// Plain binary messages only.
    pub raw: bool,
    /// Compress messages with zstd where it pays, for a receiver that takes it.
    pub compress: bool,
    /// Once everything has been handed to the channel, how long the sender waits for the
    /// receiver's final `ack` (or, raw, for the drain) **without progress**: the deadline moves
    /// on whenever the peer acknowledges bytes (the buffered amount shrinks) or an `ack`
    /// arrives, so a slow link that still delivers is never cut off. A peer that has not said
    /// `hello` gets at most [`HELLO_TIMEOUT`] of it: it is probably not dcsend.
    pub finish_timeout: Duration,
}

/// What a successful send did.
#[derive(Debug, Clone)]
pub struct SendOutcome {
    /// Per item: bytes and digest.
    pub items: Vec<ItemSent>,
    /// The receiver confirmed every item's digest (false with `--raw`).
    pub verified: bool,
    /// The threshold sender's report.
    pub pump: PumpReport,
}

/// Sends `items` over the channel; see the module docs.
pub async fn send<P: ChannelPort + Clone + 'static>(
    port: P,
    mut events: mpsc::Receiver<ChannelEvent>,
    items: Vec<Item>,
    opts: &SendOptions,
    meter: Arc<Meter>,
    cancel: CancellationToken,
) -> Result<SendOutcome, TransferError> {
    let (notes, link) = std::sync::mpsc::sync_channel(source::PEER_NOTES);
    let link = PeerLink { notes: link, meter: meter.clone() };
    let (pump, feed) = Pump::new(port.clone(), opts.threshold, meter.clone(), cancel.child_token());
    let files = items.iter().filter(|i| i.is_file()).count();
    let mut s = Sender::new(port, opts, notes, pump.threshold_cap(), files, meter);
    if !opts.raw {
        let says = session::Says {
            resume: true,
            tree: items.iter().any(|i| !i.is_file()).then_some(true),
            files: Some(files as u64),
            bytes: items.iter().filter(|i| i.is_file()).map(|i| i.size).sum(),
            zstd: false,
        };
        feed.send(session::hello(Role::Send, says)).await.ok();
    }
    let how =
        source::Reads { chunk_bytes: opts.chunk_bytes, raw: opts.raw, compress: opts.compress };
    let mut reader = source::spawn_with(items, how, feed, Some(link), cancel.clone());
    let mut pump_task = tokio::spawn(pump.run());
    let mut drain_tick = tokio::time::interval(DRAIN_POLL);

    // Every failure below says how much got through: those without their own count get it
    // added on the way out.
    let result: Result<SendOutcome, TransferError> = async {
        loop {
            if let Some(outcome) = s.outcome().await? {
                return Ok(outcome);
            }
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(s.on_cancel().await),
                res = &mut reader, if s.sent.is_none() => {
                    let res = res.map_err(|e| TransferError::Internal(e.to_string()))?;
                    s.on_reader_done(res).await?;
                }
                res = &mut pump_task, if s.pump.is_none() => {
                    s.on_pump_done(res.map_err(|e| TransferError::Internal(e.to_string()))?)?;
                }
                _ = drain_tick.tick(), if s.pump.is_some() => s.on_drain_tick().await?,
                () = tokio::time::sleep_until(s.finish_deadline()), if s.pump.is_some() => {
                    return Err(s.on_finish_timeout());
                }
                ev = events.recv() => s.on_event(ev).await?,
            }
        }
    }
    .await;
    result.map_err(|e| with_confirmed(e, s.confirmed_bytes))
}

/// The send loop's state: what the reading thread, the pump and the receiver have done so far.
struct Sender<'a, P> {
    port: P,
    opts: &'a SendOptions,
    /// To the reading thread: the receiver's `hello` and `have` (for resume).
    notes: SyncSender<PeerNote>,
    /// The pump's threshold; a receiver's `hello` may lower it.
    threshold_cap: Arc<AtomicU64>,
    /// Counts the files acknowledged, for the live view.
    meter: Arc<Meter>,
    /// One `ack` per item.
    expected_acks: usize,
    acks: usize,
    /// Payload bytes of the items the receiver acknowledged.
    confirmed_bytes: u64,
    /// The receiver said `hello`.
    peer_is_dcsend: bool,
    /// The reading thread's items, once it has read them all.
    sent: Option<Vec<ItemSent>>,
    /// The pump's report, once everything is in the channel.
    pump: Option<PumpReport>,
    /// The last sign of progress: once everything is in the channel, the finish deadline is
    /// this plus [`finish_window`].
    progress_at: Instant,
    drain: Drain,
}

impl<'a, P: ChannelPort> Sender<'a, P> {
    fn new(
        port: P,
        opts: &'a SendOptions,
        notes: SyncSender<PeerNote>,
        threshold_cap: Arc<AtomicU64>,
        expected_acks: usize,
        meter: Arc<Meter>,
    ) -> Self {
        Self {
            port,
            opts,
            notes,
            threshold_cap,
            meter,
            expected_acks,
            acks: 0,
            confirmed_bytes: 0,
            peer_is_dcsend: false,
            sent: None,
            pump: None,
            progress_at: Instant::now(),
            drain: Drain::new(),
        }
    }

    /// The result once the send is over: everything read and in the channel, and then every
    /// item acknowledged (or, raw, the channel drained).
    async fn outcome(&self) -> Result<Option<SendOutcome>, TransferError> {
        let (Some(pump), Some(items)) = (&self.pump, &self.sent) else { return Ok(None) };
        let verified = if self.opts.raw {
            drain_completely(&self.port, self.opts.finish_timeout).await?;
            false
        } else if self.acks == self.expected_acks {
            true
        } else {
            return Ok(None);
        };
        Ok(Some(SendOutcome { items: items.clone(), verified, pump: pump.clone() }))
    }

    /// When the finish deadline passes; see [`SendOptions::finish_timeout`].
    fn finish_deadline(&self) -> Instant {
        self.progress_at + finish_window(self.opts, self.peer_is_dcsend)
    }

    fn gone(&self, reason: impl Into<String>) -> TransferError {
        TransferError::PeerGone { reason: reason.into(), confirmed_bytes: self.confirmed_bytes }
    }

    /// Ctrl-C or SIGTERM: tell the receiver.
    async fn on_cancel(&self) -> TransferError {
        send_abort(&self.port, &format!("the sender was {}", Stop::shown())).await;
        TransferError::Interrupted
    }

    /// The reading thread finished: every item read and handed to the pump, or a failure.
    async fn on_reader_done(
        &mut self,
        res: Result<Vec<ItemSent>, SourceError>,
    ) -> Result<(), TransferError> {
        match res {
            Ok(items) => {
                self.sent = Some(items);
                Ok(())
            }
            Err(SourceError::NoAnswer(reason)) => {
                send_abort(&self.port, &reason).await;
                Err(self.gone(reason))
            }
            Err(SourceError::Refused(reason)) => {
                send_abort(&self.port, &reason).await;
                Err(TransferError::Refused(reason))
            }
            Err(SourceError::Io(e)) => {
                send_abort(&self.port, &format!("the sender failed: {e}")).await;
                Err(TransferError::Input(e))
            }
        }
    }

    /// The pump finished: everything is in the channel (at most threshold + one message still
    /// buffered), so from now on the receiver must keep making progress.
    fn on_pump_done(&mut self, res: Result<PumpReport, PeerError>) -> Result<(), TransferError> {
        let report = res.map_err(|e| self.gone(e.to_string()))?;
        self.progress_at = Instant::now();
        self.pump = Some(report);
        Ok(())
    }

    /// While waiting for the end: the buffered amount shrinking is progress.
    async fn on_drain_tick(&mut self) -> Result<(), TransferError> {
        let buffered = self.port.buffered_amount().await.map_err(|e| self.gone(e.to_string()))?;
        if self.drain.shrank(buffered) {
            self.progress_at = Instant::now();
        }
        Ok(())
    }

    /// No progress for the finish window.
    fn on_finish_timeout(&self) -> TransferError {
        let why = if self.peer_is_dcsend || self.opts.raw {
            format!(
                "the receiver did not confirm delivery: no progress for {}",
                humantime::format_duration(finish_window(self.opts, self.peer_is_dcsend))
            )
        } else {
            "the peer never said hello: it is not dcsend (use --raw for plain receivers)".into()
        };
        self.gone(why)
    }

    async fn on_event(&mut self, ev: Option<ChannelEvent>) -> Result<(), TransferError> {
        match ev {
            Some(ChannelEvent::Text(text)) => match Control::decode(&text) {
                Ok(msg) => self.on_control(msg).await,
                Err(e) => {
                    tracing::warn!("ignoring a control message from the receiver: {e}");
                    Ok(())
                }
            },
            Some(ChannelEvent::Binary(b)) => {
                tracing::debug!("ignoring {} bytes of data from the receiver", b.len());
                Ok(())
            }
            Some(ChannelEvent::Closed) if self.opts.raw => {
                Err(self.gone("the receiver closed the channel"))
            }
            Some(ChannelEvent::Closed) | None => {
                Err(self.gone("the receiver closed the channel before confirming delivery"))
            }
            Some(ChannelEvent::PeerGone(reason)) => Err(self.gone(reason)),
        }
    }

    async fn on_control(&mut self, msg: Control) -> Result<(), TransferError> {
        match msg {
            Control::Hello { v, resume, threshold, tree, app, zstd, .. } => {
                self.on_hello(v, threshold, PeerNote::Hello { resume, tree, app, zstd }).await
            }
            Control::Have { bytes, sha256 } => self.forward(PeerNote::Have { bytes, sha256 }).await,
            Control::Ack { bytes, ok } => self.on_ack(bytes, ok).await,
            Control::Abort { reason } => {
                Err(TransferError::PeerAborted { reason, confirmed_bytes: self.confirmed_bytes })
            }
            other => {
                tracing::debug!("ignoring {other:?} from the receiver");
                Ok(())
            }
        }
    }

    /// The receiver is dcsend: check its version, take its threshold, tell the reading
    /// thread whether it resumes.
    async fn on_hello(
        &mut self,
        v: u32,
        threshold: Option<u64>,
        note: PeerNote,
    ) -> Result<(), TransferError> {
        if let Err(reason) = session::check_version(v) {
            send_abort(&self.port, &reason).await;
            return Err(TransferError::Protocol(reason));
        }
        self.peer_is_dcsend = true;
        if let Some(wanted) = threshold {
            tracing::info!(wanted, "the receiver asks for a lower threshold");
            self.threshold_cap.fetch_min(wanted, Ordering::Relaxed);
        }
        self.progress_at = Instant::now();
        self.forward(note).await
    }

    /// One item delivered (or, `ok: false`, delivered damaged).
    async fn on_ack(&mut self, bytes: u64, ok: bool) -> Result<(), TransferError> {
        if self.acks == self.expected_acks {
            let reason = format!(
                "more acks than items: all {} were acknowledged already",
                self.expected_acks
            );
            send_abort(&self.port, &reason).await;
            return Err(TransferError::Protocol(reason));
        }
        if !ok {
            return Err(TransferError::Integrity {
                name: format!("item {}", self.acks + 1),
                detail: format!("the receiver got {bytes} bytes whose SHA-256 did not match"),
            });
        }
        self.acks += 1;
        self.meter.file_done();
        // Saturating: the count comes from the peer.
        self.confirmed_bytes = self.confirmed_bytes.saturating_add(bytes);
        self.progress_at = Instant::now();
        Ok(())
    }

    /// Hands `note` to the reading thread; a receiver flooding it is aborted.
    async fn forward(&self, note: PeerNote) -> Result<(), TransferError> {
        if let Err(reason) = source::forward(&self.notes, note) {
            send_abort(&self.port, &reason).await;
            return Err(TransferError::Protocol(reason));
        }
        Ok(())
    }
}

/// Adds the bytes the receiver confirmed to a failure that does not carry them (Ctrl-C, an
/// input that fails to read, a protocol or integrity error): a failed sender always says
/// what got through.
fn with_confirmed(err: TransferError, confirmed_bytes: u64) -> TransferError {
    match err {
        TransferError::PeerGone { .. } | TransferError::PeerAborted { .. } => err,
        err => TransferError::AfterConfirmed { confirmed_bytes, source: Box::new(err) },
    }
}

/// Once everything is sent, how long a peer that has not said `hello` is waited for: a dcsend
/// receiver says it at once, so this is the hint to use `--raw` for plain receivers.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// The no-progress window of the finish deadline (see [`SendOptions::finish_timeout`]).
fn finish_window(opts: &SendOptions, peer_is_dcsend: bool) -> Duration {
    if peer_is_dcsend || opts.raw {
        opts.finish_timeout
    } else {
        opts.finish_timeout.min(HELLO_TIMEOUT)
    }
}

/// How often the sender looks at the buffered amount while it waits for the end.
const DRAIN_POLL: Duration = Duration::from_millis(100);

/// Watches the buffered amount while the channel drains: it only counts as progress when it
/// goes below its lowest value so far (new data never enters once the sender has finished).
#[derive(Debug)]
struct Drain {
    lowest: u64,
}

impl Drain {
    fn new() -> Self {
        Self { lowest: u64::MAX }
    }

    /// Records a reading; true when the peer acknowledged bytes since the lowest reading.
    fn shrank(&mut self, buffered: u64) -> bool {
        let shrank = buffered < self.lowest;
        self.lowest = self.lowest.min(buffered);
        shrank
    }
}

/// Raw mode: wait until SCTP has released every byte (the peer acknowledged them), so
/// closing the channel loses nothing (libp2p/specs#582). Fails after `stall` without
/// progress, however long the whole drain takes.
async fn drain_completely<P: ChannelPort>(port: &P, stall: Duration) -> Result<(), TransferError> {
    let mut drain = Drain::new();
    let mut since = tokio::time::Instant::now();
    loop {
        let buffered = port.buffered_amount().await?;
        if buffered == 0 {
            return Ok(());
        }
        if drain.shrank(buffered) {
            since = tokio::time::Instant::now();
        } else if since.elapsed() >= stall {
            return Err(TransferError::PeerGone {
                reason: format!(
                    "the peer acknowledged nothing for {} ({buffered} bytes unacknowledged)",
                    humantime::format_duration(stall)
                ),
                confirmed_bytes: 0,
            });
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_says_what_got_through_once() {
        let shown = |e| format!("{:#}", anyhow::Error::from(with_confirmed(e, 42)));
        assert_eq!(
            shown(TransferError::Interrupted),
            "after 42 bytes delivered and confirmed: interrupted"
        );
        let gone = TransferError::PeerGone { reason: "gone".into(), confirmed_bytes: 42 };
        assert_eq!(shown(gone), "gone (42 bytes delivered and confirmed)");
        // The exit status still comes from the error underneath.
        let e =
            with_confirmed(TransferError::Integrity { name: "a".into(), detail: "b".into() }, 1);
        let e = anyhow::Error::from(e).context("sending");
        assert_eq!(crate::error::exit_code(&e), std::process::ExitCode::from(4));
    }

    #[test]
    fn drain_counts_only_new_lows_as_progress() {
        let mut d = Drain::new();
        assert!(d.shrank(4 << 20), "the first reading is progress");
        assert!(!d.shrank(4 << 20), "standing still is not");
        assert!(d.shrank(3 << 20));
        assert!(!d.shrank(3 << 20));
        assert!(!d.shrank(5 << 20), "growing is not");
        assert!(!d.shrank(3 << 20), "back to an old low is not");
        assert!(d.shrank(0));
    }
}
