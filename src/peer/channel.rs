//! The data channel as the rest of dcsend sees it: a [`ChannelPort`] to send through, and a
//! stream of [`ChannelEvent`]s (messages in, channel closed, peer gone).
//!
//! This file and its siblings in `peer` are the only places that import `webrtc`. The
//! [`ChannelPort`] trait carries no webrtc types, so the threshold sender in
//! `transfer::pump` is unit-tested against a fake port without a network.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, watch};
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

    /// Resolves once the buffered amount is at or under the threshold the port was built
    /// with. Cancel-safe: dropping the future loses nothing.
    async fn drained(&self) -> Result<(), PeerError>;

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
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").field("id", &self.dc.id()).finish()
    }
}

/// How many incoming events may wait for the reader. When it is full the forwarder stops
/// polling the channel, and SCTP's receive window pushes back on the remote sender.
const EVENT_QUEUE: usize = 64;

/// How long [`Channel::close`] waits.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

impl Channel {
    /// Starts forwarding the channel's events; returns the port and the event stream.
    ///
    /// The forwarder ends after `Closed`/`PeerGone`, or when the receiver is dropped.
    pub(super) fn start(
        dc: Arc<dyn DataChannel>,
        mut state: watch::Receiver<PeerState>,
    ) -> (Self, mpsc::Receiver<ChannelEvent>) {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let state_for_port = state.clone();
        let poll_dc = dc.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    biased;
                    ev = poll_dc.poll() => match ev {
                        Some(DataChannelEvent::OnMessage(msg)) if msg.is_string => {
                            ChannelEvent::Text(String::from_utf8_lossy(&msg.data).into_owned())
                        }
                        Some(DataChannelEvent::OnMessage(msg)) => {
                            ChannelEvent::Binary(msg.data.freeze())
                        }
                        Some(DataChannelEvent::OnClose) | None => ChannelEvent::Closed,
                        Some(other) => {
                            tracing::trace!("data channel event {other:?}");
                            continue;
                        }
                    },
                    changed = state.changed() => {
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
                if tx.send(event).await.is_err() || last {
                    break;
                }
            }
        });
        (Self { dc, state: state_for_port }, rx)
    }

    /// Closes the channel (best effort; the connection close that follows ends it anyway).
    ///
    /// Bounded: when the peer has vanished (killed, unplugged), webrtc-rs's close can wait
    /// forever on a connection that will never answer, and the process would hang instead of
    /// reporting the failure.
    pub async fn close(&self) {
        match tokio::time::timeout(CLOSE_TIMEOUT, self.dc.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!("closing the data channel: {e}"),
            Err(_) => tracing::debug!("closing the data channel timed out"),
        }
    }
}

impl Channel {
    /// Runs `op` (a send or a wait for capacity) unless the connection fails first.
    ///
    /// webrtc-rs blocks a send while the channel's outstanding bytes are at the send-buffer
    /// limit, and only a channel close releases it: when the peer vanishes (SIGKILL, cable)
    /// with bytes unacknowledged, the connection goes to `failed` but the send would wait
    /// forever. (The receiver's limit is 1 byte, so one unacknowledged `ack` is enough.)
    async fn unless_failed<T>(
        &self,
        op: impl std::future::Future<Output = webrtc::error::Result<T>>,
    ) -> Result<T, PeerError> {
        let mut state = self.state.clone();
        tokio::select! {
            res = op => res.map_err(|e| PeerError::ChannelClosed(e.to_string())),
            _ = state.wait_for(|s| matches!(s, PeerState::Failed | PeerState::Closed)) => {
                Err(PeerError::ChannelClosed("the connection failed".into()))
            }
        }
    }
}

#[async_trait]
impl ChannelPort for Channel {
    async fn send(&self, msg: Outbound) -> Result<(), PeerError> {
        match msg {
            // Zero-copy when the Bytes is unique, which is the case for chunks read by
            // `transfer::source`.
            Outbound::Binary(b) => self.unless_failed(self.dc.send(BytesMut::from(b))).await,
            Outbound::Text(t) => self.unless_failed(self.dc.send_text(&t)).await,
        }
    }

    async fn buffered_amount(&self) -> Result<u64, PeerError> {
        self.dc
            .outstanding_bytes()
            .await
            .map(|n| n as u64)
            .map_err(|e| PeerError::ChannelClosed(e.to_string()))
    }

    async fn failed(&self) {
        let mut state = self.state.clone();
        // An error means the connection is gone: failed all the same.
        let _ = state.wait_for(|s| matches!(s, PeerState::Failed | PeerState::Closed)).await;
    }

    async fn drained(&self) -> Result<(), PeerError> {
        // The connection is built with a send-buffer limit of threshold + 1, so `writable`
        // resolves exactly when outstanding bytes <= threshold. The driver wakes it each
        // time SCTP releases acknowledged bytes: this is the buffered-amount event.
        self.unless_failed(self.dc.writable()).await
    }
}
