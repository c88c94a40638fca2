//! Copy-paste negotiation: build the peer, exchange tokens through the terminal or files,
//! and wait for the data channel to open.

use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::config::{ConnectConfig, Role};
use crate::error::TransferError;
use crate::peer::{Channel, ChannelEvent, Peer, PeerError};
use crate::progress::Reporter;
use crate::progress::stats::Summary;
use crate::signal::codec::{self, SdpKind};
use crate::signal::paste::{self, TokenSource};

/// A connected peer with its open channel.
pub struct Connected {
    /// The connection (close it at the end).
    pub peer: Peer,
    /// The open data channel.
    pub channel: Channel,
    /// Its events.
    pub events: mpsc::Receiver<ChannelEvent>,
    /// The peer's a=max-message-size, when it gave one.
    pub remote_max_message: Option<usize>,
}

/// A person pasting takes as long as they take; a script's file is bounded by the
/// connect timeout.
const HUMAN_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Negotiates and opens the channel; Ctrl-C aborts with [`TransferError::Interrupted`].
pub async fn connect(cfg: &ConnectConfig, cancel: &CancellationToken) -> anyhow::Result<Connected> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(TransferError::Interrupted.into()),
        res = negotiate(cfg) => res,
    }
}

async fn negotiate(cfg: &ConnectConfig) -> anyhow::Result<Connected> {
    let mut peer = Peer::new(&cfg.peer).await?;
    let wait = match cfg.source {
        TokenSource::File(_) => cfg.connect_timeout,
        _ => HUMAN_TIMEOUT,
    };
    let remote = match cfg.role {
        Role::Offerer => {
            let offer = peer.offer().await?;
            paste::write_token(
                &cfg.sink,
                "offer token (paste it into the other terminal):",
                &codec::encode(&offer),
            )
            .await
            .context("writing our offer token")?;
            let text = paste::read_token(&cfg.source, "paste the answer token: ", wait)
                .await
                .map_err(token_wait_error)
                .context("reading the peer's answer token")?;
            let answer = codec::decode(&text, SdpKind::Answer)?;
            peer.accept_answer(&answer).await?;
            answer
        }
        Role::Answerer => {
            let text = paste::read_token(&cfg.source, "paste the offer token: ", wait)
                .await
                .map_err(token_wait_error)
                .context("reading the peer's offer token")?;
            let offer = codec::decode(&text, SdpKind::Offer)?;
            let answer = peer.answer(&offer).await?;
            paste::write_token(
                &cfg.sink,
                "answer token (paste it into the other terminal):",
                &codec::encode(&answer),
            )
            .await
            .context("writing our answer token")?;
            offer
        }
    };
    let remote_max_message = codec::max_message_size(&remote.sdp);
    let (channel, events) = peer.open_channel(cfg.connect_timeout).await?;
    tracing::info!("data channel open");
    Ok(Connected { peer, channel, events, remote_max_message })
}

/// A peer whose token never came is a connection failure (exit 3), not an I/O error.
fn token_wait_error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::TimedOut {
        PeerError::Connect(e.to_string()).into()
    } else {
        e.into()
    }
}

impl Connected {
    /// Ends a run: stops the reporter (writing the summary to `--stats`), then closes the
    /// channel and the connection. `sha256` is reported when the run had a single item.
    pub async fn hang_up(
        channel: &Channel,
        peer: &Peer,
        reporter: Reporter,
        sha256: Option<String>,
        verified: bool,
    ) -> Summary {
        let summary = reporter.finish(sha256, Some(verified)).await;
        channel.close().await;
        peer.close(Duration::from_secs(2)).await;
        summary
    }
}
