//! The sending side of a transfer: `hello`, the items through the threshold sender, then
//! wait for the receiver's `ack` of every item (or, with `--raw`, for the channel to drain
//! completely before closing it).
//!
//! Must not import: webrtc, indicatif, `cli`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::pump::{Pump, PumpReport};
use super::source::{self, Item, ItemSent};
use super::wire::{Control, PROTOCOL_VERSION, Role};
use crate::error::TransferError;
use crate::peer::{ChannelEvent, ChannelPort, Outbound};
use crate::progress::meter::Meter;

/// How a send runs.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Low-water threshold, bytes.
    pub threshold_bytes: u64,
    /// Message size, bytes.
    pub chunk_bytes: usize,
    /// Plain binary messages only.
    pub raw: bool,
    /// How long to wait for the receiver's final `ack` (or, raw, for the drain) once
    /// everything has been handed to the channel.
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
    let (pump, feed) = Pump::new(port.clone(), opts.threshold_bytes, meter, cancel.child_token());
    if !opts.raw {
        let hello = Control::Hello { v: PROTOCOL_VERSION, role: Role::Send, app: app() };
        feed.send(Outbound::Text(hello.encode())).await.ok();
    }
    let mut reader = source::spawn(items, opts.chunk_bytes, opts.raw, feed, cancel.clone());
    let mut pump_task = tokio::spawn(pump.run());

    let mut pump_report: Option<PumpReport> = None;
    let mut sent: Option<Vec<ItemSent>> = None;
    let (mut acks, mut confirmed_bytes, mut peer_is_dcsend) = (0usize, 0u64, false);
    let finish_deadline = tokio::time::sleep(Duration::MAX);
    tokio::pin!(finish_deadline);

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
                send_abort(&port, "the sender was interrupted").await;
                return Err(TransferError::Interrupted.into());
            }
            res = &mut reader, if sent.is_none() => match res? {
                Ok(items) => sent = Some(items),
                Err(e) => {
                    send_abort(&port, &format!("the sender failed: {e}")).await;
                    return Err(e.into());
                }
            },
            res = &mut pump_task, if pump_report.is_none() => {
                let report = res?.map_err(|e| TransferError::PeerGone {
                    reason: e.to_string(),
                    confirmed_bytes,
                })?;
                // Everything is in the channel: from now on the receiver has a bounded time to
                // confirm (the data still buffered is at most threshold + one message).
                finish_deadline.as_mut().reset(tokio::time::Instant::now() + opts.finish_timeout);
                pump_report = Some(report);
            }
            () = &mut finish_deadline => {
                let why = if peer_is_dcsend || opts.raw {
                    format!("the receiver did not confirm delivery within {:?}", opts.finish_timeout)
                } else {
                    "the peer never said hello: it is not dcsend (use --raw for plain receivers)".into()
                };
                return Err(TransferError::PeerGone { reason: why, confirmed_bytes }.into());
            }
            ev = events.recv() => match ev {
                Some(ChannelEvent::Text(text)) => match Control::decode(&text) {
                    Ok(Control::Hello { v, .. }) if v != PROTOCOL_VERSION => {
                        let reason = format!("unsupported protocol version {v} (we speak {PROTOCOL_VERSION})");
                        send_abort(&port, &reason).await;
                        return Err(TransferError::Protocol(reason).into());
                    }
                    Ok(Control::Hello { .. }) => peer_is_dcsend = true,
                    Ok(Control::Ack { .. }) if acks == expected_acks => {
                        let reason = format!("more acks than items: all {expected_acks} were acknowledged already");
                        send_abort(&port, &reason).await;
                        return Err(TransferError::Protocol(reason).into());
                    }
                    Ok(Control::Ack { bytes, ok: true }) => {
                        acks += 1;
                        // Saturating: the count comes from the peer.
                        confirmed_bytes = confirmed_bytes.saturating_add(bytes);
                    }
                    Ok(Control::Ack { bytes, ok: false }) => {
                        return Err(TransferError::Integrity {
                            name: format!("item {}", acks + 1),
                            detail: format!("the receiver got {bytes} bytes whose SHA-256 did not match"),
                        }
                        .into());
                    }
                    Ok(Control::Abort { reason }) => return Err(TransferError::PeerAborted(reason).into()),
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

/// `dcsend/VERSION`, sent in `hello`.
pub fn app() -> String {
    format!("dcsend/{}", env!("CARGO_PKG_VERSION"))
}

/// Raw mode: wait until SCTP has released every byte (the peer acknowledged them), so
/// closing the channel loses nothing (libp2p/specs#582).
async fn drain_completely<P: ChannelPort>(port: &P, timeout: Duration) -> anyhow::Result<()> {
    match tokio::time::timeout(timeout, wait_empty(port)).await {
        Ok(res) => Ok(res?),
        Err(_) => Err(TransferError::PeerGone {
            reason: format!("the peer did not acknowledge the last bytes within {timeout:?}"),
            confirmed_bytes: 0,
        }
        .into()),
    }
}

/// Tells the peer why we stop, and gives the message a moment to leave. Best effort.
pub async fn send_abort<P: ChannelPort>(port: &P, reason: &str) {
    let msg = Outbound::Text(Control::Abort { reason: reason.to_owned() }.encode());
    let deliver = async {
        port.send(msg).await?;
        wait_empty(port).await
    };
    if tokio::time::timeout(Duration::from_millis(500), deliver).await.is_err() {
        tracing::debug!("the abort message may not have reached the peer");
    }
}

/// Resolves once the channel's buffered amount is 0: SCTP has released every byte.
/// (The channel's drain event fires at the threshold, not at 0, hence the short poll.)
async fn wait_empty<P: ChannelPort>(port: &P) -> Result<(), crate::peer::PeerError> {
    while port.buffered_amount().await? > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
