//! The data channel as the rest of dcsend sees it: a [`ChannelPort`] to send through, and a
//! stream of [`ChannelEvent`]s (messages in, channel closed, peer gone).
//!
//! This file and its siblings in `peer` are the only places that import `webrtc`. The
//! [`ChannelPort`] trait carries no webrtc types, so the threshold sender in
//! `transfer::pump` is unit-tested against a fake port without a network.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::sync::{Notify, mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent};

use super::{PeerError, PeerState};

/// One message to hand to the data channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// Payload bytes, sent as a binary message.
    Binary(Bytes),
    /// A control message, sent as a text message.
    Text(String),
}

impl Outbound {
    /// Size in bytes as the channel's buffered amount counts it.
    pub fn len(&self) -> usize {
        match self {
            Outbound::Binary(b) => b.len(),
            Outbound::Text(t) => t.len(),
        }
    }

    /// Whether the message carries no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the channel reports to whoever reads its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// A text message (dcsend control messages are text).
    Text(String),
    /// A binary message (payload bytes).
    Binary(Bytes),
    /// The channel closed (the remote closed it, or the connection ended cleanly).
    Closed,
    /// The connection failed or was closed underneath the channel; the text says how.
    PeerGone(String),
}

/// The sending side of a data channel, as the threshold sender needs it.
#[async_trait]
pub trait ChannelPort: Send + Sync {
    /// Hands one message to the channel. Returns once it is queued, not when delivered.
    async fn send(&self, msg: Outbound) -> Result<(), PeerError>;

    /// The channel's own count of bytes handed to it and not yet acknowledged by the peer
    /// (webrtc-rs `outstanding_bytes`: unlike `bufferedAmount` it also counts bytes not yet
    /// packetized, so it is the figure that bounds memory).
    async fn buffered_amount(&self) -> Result<u64, PeerError>;

    /// Resolves once the buffered amount is at or under `level`: the channel's drain
    /// event, for whatever level the caller wants now (a threshold, a lowered one, 0).
    /// Cancel-safe: dropping the future loses nothing.
    async fn drained_to(&self, level: u64) -> Result<(), PeerError>;

    /// Resolves once the connection has failed or closed (the liveness timeout fired), for a
    /// wait that reads no events meanwhile: a write to a consumer that does not read. The
    /// default never resolves (a port without a connection).
    async fn failed(&self) {
        std::future::pending::<()>().await
    }
}

/// A data channel that is open. Cheap to clone: clones share the channel.
#[derive(Clone)]
pub struct Channel {
    dc: Arc<dyn DataChannel>,
    state: watch::Receiver<PeerState>,
    drain: Arc<Drain>,
    /// Set by the forwarder when the channel's close event comes: both ends have reset
    /// their outgoing stream.
    closed: watch::Receiver<bool>,
}

/// The channel's buffered-amount-low event as [`ChannelPort::drained_to`] uses it.
#[derive(Debug)]
struct Drain {
    /// Woken by the forwarder on each `OnBufferedAmountLow`.
    low: Notify,
    /// The low threshold set on the channel (its initial value is 0).
    level: AtomicU32,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").field("id", &self.dc.id()).finish()
    }
}

/// How many incoming events may wait for the reader. When it is full the forwarder stops
/// polling the channel, and SCTP's receive window pushes back on the remote sender.
const EVENT_QUEUE: usize = 64;

/// How often [`ChannelPort::drained_to`] reads the buffered amount while it waits for the
/// drain event anyway. The event fires when the SCTP stream's buffered amount crosses the
/// level; the figure the port reports (`outstanding_bytes`) also counts bytes not yet
/// packetized, so an event can come while that figure is still over the level. The next
/// event then comes with the next release, but the bound costs nothing and rules out a stall.
const DRAIN_RECHECK: Duration = Duration::from_millis(20);

/// How long the channel keeps delivering messages after its close event, counted from the
/// close event or the last message after it.
///
/// webrtc 0.21's driver hands the application the core's events (`OnClose`) before the
/// data-channel messages the same step produced, and leaves messages in the core while the
/// channel's event queue is full: a peer that closes right after its last message (werift,
/// aiortc, a browser; the close is a plain sender's end of stream) had its last messages
/// overtaken by the close and dropped (16 KiB short in 3 of 16 werift runs on a loaded
/// machine). The messages are already in the core when `OnClose` comes out, so they follow
/// within a driver iteration, or the next one when the queue was full: the driver wakes for
/// its next timer at the latest (ICE's 200 ms tick once connected). On a starved CPU that
/// took longer, and a sender's `abort` written just before its close was lost; the vendored
/// rtc now holds a channel's `OnClose` back until its messages are read (`vendor/rtc`,
/// PATCHES.md, patch 5), so the close no longer overtakes them. The grace stays for a build
/// against the published crate.
const CLOSE_GRACE: Duration = Duration::from_millis(250);

/// How long [`Channel::close`] waits for the channel to close: for our stream reset to be
/// answered by the peer's (a round trip once the data is acknowledged), at most.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

impl Channel {
    /// Starts forwarding the channel's events; returns the port and the event stream.
    ///
    /// The forwarder ends after `Closed`/`PeerGone`. Once the event receiver is dropped it
    /// drops the events, and keeps watching for the close that [`Channel::close`] waits for.
    pub(super) fn start(
        dc: Arc<dyn DataChannel>,
        mut state: watch::Receiver<PeerState>,
    ) -> (Self, mpsc::Receiver<ChannelEvent>) {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let state_for_port = state.clone();
        let poll_dc = dc.clone();
        let drain = Arc::new(Drain { low: Notify::new(), level: AtomicU32::new(0) });
        let on_low = drain.clone();
        let (closed_tx, closed) = watch::channel(false);
        tokio::spawn(async move {
            // Set by `OnClose`: the channel is closed, but messages that arrived before the
            // close may still come (see `CLOSE_GRACE`). `Closed` is reported when it passes.
            let mut closed_at: Option<tokio::time::Instant> = None;
            let mut late = 0usize;
            loop {
                let grace = async {
                    match closed_at {
                        Some(at) => tokio::time::sleep_until(at + CLOSE_GRACE).await,
                        None => std::future::pending().await,
                    }
                };
                let event = tokio::select! {
                    biased;
                    ev = poll_dc.poll() => match ev {
                        Some(DataChannelEvent::OnMessage(msg)) => {
                            if closed_at.is_some() {
                                late += 1;
                                closed_at = Some(tokio::time::Instant::now());
                            }
                            if msg.is_string {
                                ChannelEvent::Text(String::from_utf8_lossy(&msg.data).into_owned())
                            } else {
                                ChannelEvent::Binary(msg.data.freeze())
                            }
                        }
                        Some(DataChannelEvent::OnClose) if closed_at.is_none() => {
                            closed_at = Some(tokio::time::Instant::now());
                            closed_tx.send_replace(true);
                            continue;
                        }
                        Some(DataChannelEvent::OnClose) | None => ChannelEvent::Closed,
                        Some(DataChannelEvent::OnBufferedAmountLow) => {
                            on_low.low.notify_waiters();
                            continue;
                        }
                        Some(other) => {
                            tracing::trace!("data channel event {other:?}");
                            continue;
                        }
                    },
                    () = grace => {
                        if late > 0 {
                            tracing::debug!("{late} messages arrived after the channel's close event");
                        }
                        ChannelEvent::Closed
                    }
                    // Once the channel has closed, the connection ending too (the peer closes
                    // it next) changes nothing: the grace still lets the last messages through.
                    changed = state.changed(), if closed_at.is_none() => {
                        let now = *state.borrow_and_update();
                        match (changed, now) {
                            (Err(_), _) => ChannelEvent::PeerGone("the connection was dropped".into()),
                            (Ok(()), PeerState::Failed) => ChannelEvent::PeerGone(
                                "the connection failed (no packets from the peer for several seconds)".into(),
                            ),
                            (Ok(()), PeerState::Closed) => {
                                ChannelEvent::PeerGone("the connection was closed".into())
                            }
                            (Ok(()), s) => {
                                tracing::debug!("connection state {s:?}");
                                continue;
                            }
                        }
                    }
                };
                let last = matches!(event, ChannelEvent::Closed | ChannelEvent::PeerGone(_));
                // A dropped receiver (the transfer is over) drops the event.
                let _ = tx.send(event).await;
                if last {
                    closed_tx.send_replace(true);
                    break;
                }
            }
        });
        (Self { dc, state: state_for_port, drain, closed }, rx)
    }

    /// Closes the channel the way RFC 8831 §6.7 has it: resets our outgoing stream, then waits
    /// until the peer has reset its own (the channel's close event, which the vendored rtc
    /// reports only then), so that the connection close that follows does not cut the exchange
    /// short. Before, the association was torn down within microseconds of our reset request,
    /// and a peer answering it with its own found it gone (Pion: "sending reset packet in
    /// non-established state").
    ///
    /// Bounded by [`CLOSE_TIMEOUT`], and over at once when the connection has failed or
    /// closed: a peer that vanished (killed, unplugged) never answers, and the process would
    /// hang instead of reporting the failure.
    pub async fn close(&self) {
        let mut closed = self.closed.clone();
        let mut state = self.state.clone();
        let close = async {
            if let Err(e) = self.dc.close().await {
                tracing::debug!("closing the data channel: {e}");
            }
            tokio::select! {
                _ = closed.wait_for(|c| *c) => tracing::debug!("the data channel closed"),
                _ = state.wait_for(|s| matches!(s, PeerState::Failed | PeerState::Closed)) => {
                    tracing::debug!("the connection ended before the data channel closed");
                }
            }
        };
        if tokio::time::timeout(CLOSE_TIMEOUT, close).await.is_err() {
            tracing::debug!(
                "the peer did not close its side of the data channel within {CLOSE_TIMEOUT:?}"
            );
        }
    }
}

#[async_trait]
impl ChannelPort for Channel {
    async fn send(&self, msg: Outbound) -> Result<(), PeerError> {
        match msg {
            // Zero-copy when the Bytes is unique, which is the case for chunks read by
            // `transfer::source`.
            // Never blocks: the connection has no send-buffer limit (the pump is the limit).
            Outbound::Binary(b) => self.dc.send(BytesMut::from(b)).await,
            Outbound::Text(t) => self.dc.send_text(&t).await,
        }
        .map_err(|e| PeerError::ChannelClosed(e.to_string()))
    }

    async fn buffered_amount(&self) -> Result<u64, PeerError> {
        self.dc
            .outstanding_bytes()
            .await
            .map(|n| n as u64)
            .map_err(|e| PeerError::ChannelClosed(e.to_string()))
    }

    async fn drained_to(&self, level: u64) -> Result<(), PeerError> {
        // webrtc-rs keeps the low threshold as a u32 per channel; a larger level leaves the
        // event at u32::MAX and the recheck below does the rest.
        let wanted = u32::try_from(level).unwrap_or(u32::MAX);
        if self.drain.level.swap(wanted, Ordering::Relaxed) != wanted {
            self.dc
                .set_buffered_amount_low_threshold(wanted)
                .await
                .map_err(|e| PeerError::ChannelClosed(e.to_string()))?;
        }
        loop {
            // Registered before the reading, so an event between the two is not lost.
            let low = self.drain.low.notified();
            tokio::pin!(low);
            low.as_mut().enable();
            if self.buffered_amount().await? <= level {
                return Ok(());
            }
            tokio::select! {
                () = low => {}
                () = tokio::time::sleep(DRAIN_RECHECK) => {}
                // A peer that vanished (SIGKILL, cable) acknowledges nothing again: the
                // connection failing is the only event left.
                () = self.failed() => {
                    return Err(PeerError::ChannelClosed("the connection failed".into()));
                }
            }
        }
    }

    async fn failed(&self) {
        let mut state = self.state.clone();
        // An error means the connection is gone: failed all the same.
        let _ = state.wait_for(|s| matches!(s, PeerState::Failed | PeerState::Closed)).await;
    }
}
