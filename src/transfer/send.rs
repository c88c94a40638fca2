//! The sending side of a transfer: `hello`, the items through the threshold sender, then
//! wait for the receiver's `ack` of every item (or, with `--raw`, for the channel to drain
//! completely before closing it).
//!
//! Must not import: webrtc, indicatif, `cli`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::autotune::Threshold;
use super::pump::{Pump, PumpReport};
use super::session::{self, send_abort};
use super::source::{self, Item, ItemSent, PeerLink, PeerNote, SourceError};
use super::wire::{Control, Role};
use crate::error::{Stop, TransferError};
use crate::peer::{ChannelEvent, ChannelPort};
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
) -> anyhow::Result<SendOutcome> {
    let expected_acks = items.len();
    let (notes, link) = std::sync::mpsc::sync_channel(source::PEER_NOTES);
    let link = PeerLink { notes: link, meter: meter.clone() };
    let (pump, feed) = Pump::new(port.clone(), opts.threshold, meter, cancel.child_token());
    let threshold_cap = pump.threshold_cap();
    if !opts.raw {
        feed.send(session::hello(Role::Send, true)).await.ok();
    }
    let mut reader =
        source::spawn_linked(items, opts.chunk_bytes, opts.raw, feed, Some(link), cancel.clone());
    let mut pump_task = tokio::spawn(pump.run());

    let mut pump_report: Option<PumpReport> = None;
    let mut sent: Option<Vec<ItemSent>> = None;
    let (mut acks, mut confirmed_bytes, mut peer_is_dcsend) = (0usize, 0u64, false);
    // The last sign of progress: once everything is in the channel, the finish deadline is
    // this plus `finish_window`.
    let mut progress_at = tokio::time::Instant::now();
    let mut drain = Drain::new();
    let mut drain_tick = tokio::time::interval(DRAIN_POLL);

    // Every failure below says how much got through: those without their own count get it
    // added on the way out.
    let result: anyhow::Result<SendOutcome> = async {
    loop {
        if let (Some(report), Some(items)) = (&pump_report, &sent) {
            if opts.raw {
                drain_completely(&port, opts.finish_timeout).await?;
                return Ok(SendOutcome {
                    items: items.clone(),
                    verified: false,
                    pump: report.clone(),
                });
            }
            if acks == expected_acks {
                return Ok(SendOutcome {
                    items: items.clone(),
                    verified: true,
                    pump: report.clone(),
                });
            }
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => {
                send_abort(&port, &format!("the sender was {}", Stop::shown())).await;
                return Err(TransferError::Interrupted.into());
            }
            res = &mut reader, if sent.is_none() => match res? {
                Ok(items) => sent = Some(items),
                Err(SourceError::NoAnswer(reason)) => {
                    send_abort(&port, &reason).await;
                    return Err(TransferError::PeerGone { reason, confirmed_bytes }.into());
                }
                Err(SourceError::Io(e)) => {
                    send_abort(&port, &format!("the sender failed: {e}")).await;
                    return Err(e.into());
                }
            },
            res = &mut pump_task, if pump_report.is_none() => {
                let report = res?.map_err(|e| TransferError::PeerGone {
                    reason: e.to_string(),
                    confirmed_bytes,
                })?;
                // Everything is in the channel (at most threshold + one message still
                // buffered): from now on the receiver must keep making progress.
                progress_at = tokio::time::Instant::now();
                pump_report = Some(report);
            }
            _ = drain_tick.tick(), if pump_report.is_some() => {
                let buffered = port.buffered_amount().await.map_err(|e| TransferError::PeerGone {
                    reason: e.to_string(),
                    confirmed_bytes,
                })?;
                if drain.shrank(buffered) {
                    progress_at = tokio::time::Instant::now();
                }
            }
            () = tokio::time::sleep_until(progress_at + finish_window(opts, peer_is_dcsend)),
                if pump_report.is_some() => {
                let why = if peer_is_dcsend || opts.raw {
                    format!(
                        "the receiver did not confirm delivery: no progress for {}",
                        humantime::format_duration(finish_window(opts, peer_is_dcsend))
                    )
                } else {
                    "the peer never said hello: it is not dcsend (use --raw for plain receivers)".into()
                };
                return Err(TransferError::PeerGone { reason: why, confirmed_bytes }.into());
            }
            ev = events.recv() => match ev {
                Some(ChannelEvent::Text(text)) => match Control::decode(&text) {
                    Ok(Control::Hello { v, resume, threshold, .. }) => {
                        if let Err(reason) = session::check_version(v) {
                            send_abort(&port, &reason).await;
                            return Err(TransferError::Protocol(reason).into());
                        }
                        peer_is_dcsend = true;
                        if let Some(wanted) = threshold {
                            tracing::info!(wanted, "the receiver asks for a lower threshold");
                            threshold_cap.fetch_min(wanted, Ordering::Relaxed);
                        }
                        progress_at = tokio::time::Instant::now();
                        if let Err(reason) = source::forward(&notes, PeerNote::Hello { resume }) {
                            send_abort(&port, &reason).await;
                            return Err(TransferError::Protocol(reason).into());
                        }
                    }
                    Ok(Control::Have { bytes, sha256 }) => {
                        if let Err(reason) = source::forward(&notes, PeerNote::Have { bytes, sha256 }) {
                            send_abort(&port, &reason).await;
                            return Err(TransferError::Protocol(reason).into());
                        }
                    }
                    Ok(Control::Ack { .. }) if acks == expected_acks => {
                        let reason = format!("more acks than items: all {expected_acks} were acknowledged already");
                        send_abort(&port, &reason).await;
                        return Err(TransferError::Protocol(reason).into());
                    }
                    Ok(Control::Ack { bytes, ok: true }) => {
                        acks += 1;
                        // Saturating: the count comes from the peer.
                        confirmed_bytes = confirmed_bytes.saturating_add(bytes);
                        progress_at = tokio::time::Instant::now();
                    }
                    Ok(Control::Ack { bytes, ok: false }) => {
                        return Err(TransferError::Integrity {
                            name: format!("item {}", acks + 1),
                            detail: format!("the receiver got {bytes} bytes whose SHA-256 did not match"),
                        }
                        .into());
                    }
                    Ok(Control::Abort { reason }) => {
                        return Err(TransferError::PeerAborted { reason, confirmed_bytes }.into());
                    }
                    Ok(other) => tracing::debug!("ignoring {other:?} from the receiver"),
                    Err(e) => tracing::warn!("ignoring a control message from the receiver: {e}"),
                },
                Some(ChannelEvent::Binary(b)) => {
                    tracing::debug!("ignoring {} bytes of data from the receiver", b.len());
                }
                Some(ChannelEvent::Closed) if opts.raw => {
                    return Err(TransferError::PeerGone {
                        reason: "the receiver closed the channel".into(),
                        confirmed_bytes,
                    }
                    .into());
                }
                Some(ChannelEvent::Closed) | None => {
                    return Err(TransferError::PeerGone {
                        reason: "the receiver closed the channel before confirming delivery".into(),
                        confirmed_bytes,
                    }
                    .into());
                }
                Some(ChannelEvent::PeerGone(reason)) => {
                    return Err(TransferError::PeerGone { reason, confirmed_bytes }.into());
                }
            },
        }
    }
    }
    .await;
    result.map_err(|e| with_confirmed(e, confirmed_bytes))
}

/// Adds the bytes the receiver confirmed to a failure that does not carry them (Ctrl-C, an
/// input that fails to read, a protocol or integrity error): a failed sender always says
/// what got through.
fn with_confirmed(err: anyhow::Error, confirmed_bytes: u64) -> anyhow::Error {
    let counted = err.chain().any(|c| {
        matches!(
            c.downcast_ref::<TransferError>(),
            Some(TransferError::PeerGone { .. } | TransferError::PeerAborted { .. })
        )
    });
    if counted {
        return err;
    }
    err.context(format!("after {confirmed_bytes} bytes delivered and confirmed"))
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
async fn drain_completely<P: ChannelPort>(port: &P, stall: Duration) -> anyhow::Result<()> {
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
            }
            .into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_says_what_got_through_once() {
        let shown = |e: anyhow::Error| format!("{:#}", with_confirmed(e, 42));
        assert_eq!(
            shown(TransferError::Interrupted.into()),
            "after 42 bytes delivered and confirmed: interrupted"
        );
        let gone = TransferError::PeerGone { reason: "gone".into(), confirmed_bytes: 42 };
        assert_eq!(shown(gone.into()), "gone (42 bytes delivered and confirmed)");
        // The exit status still comes from the error underneath.
        let e = with_confirmed(
            TransferError::Integrity { name: "a".into(), detail: "b".into() }.into(),
            1,
        );
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
