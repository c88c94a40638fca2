//! Negotiation: build the peer, exchange descriptions (copy-paste tokens through the terminal
//! or files, or sealed messages through a signaling server), and wait for the channel to open.

use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use tokio::time::Instant;

use crate::cli::config::{ConnectConfig, Negotiation, Role};
use crate::error::{TransferError, UsageError};
use crate::peer::{Channel, ChannelEvent, Path, Peer};
use crate::progress::Reporter;
use crate::progress::stats::Summary;
use crate::signal::client::Client;
use crate::signal::codec::{self, SdpKind, SessionDesc};
use crate::signal::paste::{self, TokenSink, TokenSource};
use crate::signal::rendezvous::{self, SignalError};
use crate::signal::seal::Side;
use crate::signal::url::PeerUrl;

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
    /// The selected candidate pair (host, srflx, prflx or relay on each side), when known.
    pub path: Option<Path>,
}

/// A person pasting takes as long as they take; a script's file is bounded by the
/// connect timeout.
const HUMAN_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Negotiates and opens the channel; Ctrl-C aborts with [`TransferError::Interrupted`].
pub async fn connect(cfg: &ConnectConfig, cancel: &CancellationToken) -> anyhow::Result<Connected> {
    let mut peer = Peer::new(&cfg.peer).await?;
    // When the connection could start: the peer's token in hand (copy-paste), or both peers
    // in the room (URL). From there to the open channel is ICE, DTLS and SCTP: the setup time.
    let (remote, ready) = match &cfg.how {
        Negotiation::Paste { role, sink, source } => {
            let exchange = paste_exchange(&mut peer, *role, sink, source, cfg.connect_timeout);
            let remote = cancellable(cancel, exchange).await?;
            (remote, Instant::now())
        }
        Negotiation::Url { url, join_timeout, we_send } => {
            let url = UrlRun { url, join_timeout: *join_timeout, we_send: *we_send };
            url.exchange(&mut peer, cfg.connect_timeout, cancel).await?
        }
    };
    let remote_max_message = codec::max_message_size(&remote.sdp);
    let (channel, events) =
        cancellable(cancel, async { Ok(peer.open_channel(cfg.connect_timeout).await?) }).await?;
    let path = peer.path().await;
    let shown = path.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into());
    tracing::info!(
        setup_ms = ready.elapsed().as_millis() as u64,
        path = shown,
        "data channel open (setup_ms: since the peer's token arrived or both peers were in the room)"
    );
    Ok(Connected { peer, channel, events, remote_max_message, path })
}

async fn cancellable<T>(
    cancel: &CancellationToken,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(TransferError::Interrupted.into()),
        res = work => res,
    }
}

/// Copy-paste: our token out, the peer's in; returns the peer's description.
async fn paste_exchange(
    peer: &mut Peer,
    role: Role,
    sink: &TokenSink,
    source: &TokenSource,
    connect_timeout: Duration,
) -> anyhow::Result<SessionDesc> {
    let wait = match source {
        TokenSource::File(_) => connect_timeout,
        _ => HUMAN_TIMEOUT,
    };
    Ok(match role {
        Role::Offerer => {
            let offer = peer.offer().await?;
            paste::write_token(
                sink,
                "offer token (paste it into the other terminal):",
                &codec::encode(&offer),
            )
            .await
            .context("writing our offer token")?;
            let text = paste::read_token(source, "paste the answer token: ", wait)
                .await
                .map_err(token_wait_error)
                .context("reading the peer's answer token")?;
            let answer = codec::decode(&text, SdpKind::Answer)?;
            peer.accept_answer(&answer).await?;
            answer
        }
        Role::Answerer => {
            let text = paste::read_token(source, "paste the offer token: ", wait)
                .await
                .map_err(token_wait_error)
                .context("reading the peer's offer token")?;
            let offer = codec::decode(&text, SdpKind::Offer)?;
            let answer = peer.answer(&offer).await?;
            paste::write_token(
                sink,
                "answer token (paste it into the other terminal):",
                &codec::encode(&answer),
            )
            .await
            .context("writing our answer token")?;
            offer
        }
    })
}

/// A signaling-server run (`--peer URL`).
struct UrlRun<'a> {
    url: &'a PeerUrl,
    join_timeout: Duration,
    we_send: bool,
}

impl UrlRun<'_> {
    /// Joins the room (making it and printing the other side's command when the URL names
    /// none), authenticates the peer, and swaps sealed descriptions. Returns the peer's
    /// description and when both peers were present.
    async fn exchange(
        &self,
        peer: &mut Peer,
        step: Duration,
        cancel: &CancellationToken,
    ) -> anyhow::Result<(SessionDesc, Instant)> {
        let url = self.url.completed();
        let on_notice = Box::new(|notice: &str| eprintln!("dcsend: {notice}"));
        let client =
            cancellable(cancel, async { Ok(Client::join(&url, on_notice).await?) }).await?;
        let room = url.room.as_deref().unwrap_or_default();
        if self.url.room.is_none() {
            let other = if self.we_send { "dcsend recv" } else { "dcsend FILE..." };
            // The second line is for a person; `dcsend signal` serves a page at that URL.
            eprintln!(
                "dcsend: room {room} is open; on the other side run:\n  {other} --peer '{url}'\n\
                 or open {url} in a web browser"
            );
        }
        let secret = url.secret.as_deref().unwrap_or_default();
        let side = client.side();
        let work = async {
            let join_deadline = Instant::now() + self.join_timeout;
            let (mut sealer, both_present) = rendezvous::authenticate(
                &client,
                secret,
                room,
                side,
                join_deadline,
                self.join_timeout,
                step,
            )
            .await?;
            tracing::info!(room, ?side, "peer authenticated");
            let remote = match side {
                Side::A => {
                    let offer = peer.offer().await?;
                    rendezvous::send_description(&client, &mut sealer, &offer).await?;
                    let answer =
                        rendezvous::recv_description(&client, &mut sealer, SdpKind::Answer, step)
                            .await?;
                    peer.accept_answer(&answer).await?;
                    answer
                }
                Side::B => {
                    let offer =
                        rendezvous::recv_description(&client, &mut sealer, SdpKind::Offer, step)
                            .await?;
                    let answer = peer.answer(&offer).await?;
                    rendezvous::send_description(&client, &mut sealer, &answer).await?;
                    offer
                }
            };
            Ok((remote, both_present))
        };
        let res = cancellable(cancel, work).await;
        client.leave().await;
        res
    }
}

/// A peer whose token never came is a connection failure (exit 3), not an I/O error, and
/// not a network one either: nothing was tried yet. A token that is too long or not text is
/// bad input (exit 2).
fn token_wait_error(e: std::io::Error) -> anyhow::Error {
    match e.kind() {
        std::io::ErrorKind::TimedOut => SignalError::NoToken(e.to_string()).into(),
        std::io::ErrorKind::InvalidData => UsageError(e.to_string()).into(),
        _ => e.into(),
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
