//! Negotiation: build the peer, exchange descriptions (copy-paste tokens through the terminal
//! or files, or sealed messages through a signaling server), and wait for the channel to open.

use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use tokio::time::Instant;

use crate::cli::config::{ConnectConfig, Negotiation, OtherSide, Role};
use crate::error::{TransferError, UsageError};
use crate::peer::{Channel, ChannelEvent, Path, Peer, PeerError, PeerOptions};
use crate::progress::Reporter;
use crate::progress::stats::Summary;
use crate::signal::client::Client;
use crate::signal::codec::{self, SdpKind, SessionDesc, TokenError};
use crate::signal::compact;
use crate::signal::ice::IceServer;
use crate::signal::paste::{self, TokenSink, TokenSource};
use crate::signal::qr;
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
    // When the connection could start: the peer's token in hand (copy-paste), or both peers
    // in the room (URL). From there to the open channel is ICE, DTLS and SCTP: the setup time.
    let (mut peer, remote, ready) = match &cfg.how {
        Negotiation::Paste { role, sink, source, we_send, long_token } => {
            let mut peer = Peer::new(&cfg.peer).await?;
            let paste =
                Paste { role: *role, sink, source, we_send: *we_send, long_token: *long_token };
            let exchange = paste.exchange(&mut peer, cfg.connect_timeout);
            let remote = cancellable(cancel, exchange).await?;
            (peer, remote, Instant::now())
        }
        Negotiation::Url { url, join_timeout, other_side, qr } => {
            let url = UrlRun { url, join_timeout: *join_timeout, other_side: *other_side, qr: *qr };
            url.exchange(&cfg.peer, cfg.connect_timeout, cancel).await?
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

/// A copy-paste run: tokens through the terminal or files.
struct Paste<'a> {
    role: Role,
    sink: &'a TokenSink,
    source: &'a TokenSource,
    we_send: bool,
    long_token: bool,
}

impl Paste<'_> {
    /// Our token out, the peer's in; returns the peer's description.
    async fn exchange(
        &self,
        peer: &mut Peer,
        connect_timeout: Duration,
    ) -> anyhow::Result<SessionDesc> {
        let wait = match self.source {
            TokenSource::File(_) => connect_timeout,
            _ => HUMAN_TIMEOUT,
        };
        Ok(match self.role {
            Role::Offerer => {
                let offer = peer.offer().await?;
                paste::write_token(
                    self.sink,
                    "offer token (paste it into the other terminal):",
                    &token_text(&offer, !self.long_token),
                )
                .await
                .context("writing our offer token")?;
                let (answer, _) = self.read_peer_token(SdpKind::Answer, Some(&offer), wait).await?;
                peer.accept_answer(&answer).await?;
                answer
            }
            Role::Answerer => {
                let (offer, compact_offer) =
                    self.read_peer_token(SdpKind::Offer, None, wait).await?;
                let answer = peer.answer(&offer).await?;
                // A long offer comes from Pion, a browser demo or an older dcsend: they read
                // only the long form.
                let compact = compact_offer && !self.long_token;
                paste::write_token(
                    self.sink,
                    "answer token (paste it into the other terminal):",
                    &token_text(&answer, compact),
                )
                .await
                .context("writing our answer token")?;
                offer
            }
        })
    }

    /// Reads and decodes the peer's token of kind `expect` (`ours`: the token we printed, to
    /// recognise it pasted back); returns it and whether it came in the compact form. On a
    /// terminal, a token that cannot be used is explained and asked for again; from a file or
    /// a pipe it ends the run (exit 2), since nobody is there to paste another.
    async fn read_peer_token(
        &self,
        expect: SdpKind,
        ours: Option<&SessionDesc>,
        wait: Duration,
    ) -> anyhow::Result<(SessionDesc, bool)> {
        let prompt = format!("paste the {expect} token: ");
        loop {
            let text = paste::read_token(self.source, &prompt, wait)
                .await
                .map_err(token_wait_error)
                .with_context(|| format!("reading the peer's {expect} token"))?;
            match codec::decode_from_peer(&text, expect, ours) {
                Ok(desc) => return Ok((desc, compact::is_compact(&text))),
                Err(e) if *self.source == TokenSource::Tty => {
                    eprintln!("dcsend: {}", advice(&e, expect, &self.peer_command()));
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("the peer's {expect} token {}", self.source_name())));
                }
            }
        }
    }

    /// The command the other side runs, as a person would type it.
    fn peer_command(&self) -> String {
        match (self.we_send, self.role) {
            (true, Role::Offerer) => "dcsend recv".into(),
            (true, Role::Answerer) => "dcsend recv --offer".into(),
            (false, Role::Answerer) => "dcsend FILE".into(),
            (false, Role::Offerer) => "dcsend FILE --answer".into(),
        }
    }

    fn source_name(&self) -> String {
        match self.source {
            TokenSource::File(path) => format!("in {}", path.display()),
            TokenSource::Stdin => "on stdin".into(),
            TokenSource::Tty => "on the terminal".into(),
        }
    }
}

/// Our token for `desc`: the compact form when `compact` and the description fits it, else
/// Pion's long form.
fn token_text(desc: &SessionDesc, compact: bool) -> String {
    if compact {
        match compact::pack(desc) {
            Ok(token) => return token,
            Err(e) => tracing::info!("printing the long token: {e}"),
        }
    }
    codec::encode(desc)
}

/// What to tell a person who pasted a token that cannot be used (`err`), where the token of
/// kind `expect` printed by `peer` (the other side's command) belongs: what is wrong, in
/// words, and what to paste instead.
fn advice(err: &TokenError, expect: SdpKind, peer: &str) -> String {
    let whole_line = format!("the whole line `{peer}` printed below \"{expect} token\"");
    match err {
        TokenError::Truncated(_) => format!("{err}: paste the whole token, {whole_line}"),
        TokenError::OwnToken(_) => format!("{err}: paste the token `{peer}` printed"),
        TokenError::WrongKind { got: SdpKind::Offer, .. } => format!(
            "this is an offer, and this side made the offer too: run `{peer}` on the other \
             side, paste this side's offer into it, then paste its answer here"
        ),
        TokenError::WrongKind { got: SdpKind::Answer, .. } => format!(
            "this is an answer, and this side makes the answer: paste the offer token \
             `{peer}` printed"
        ),
        TokenError::Empty => format!("nothing was pasted: paste {whole_line}"),
        _ => format!("{err}: paste {whole_line}"),
    }
}

/// A signaling-server run (`--peer URL`).
struct UrlRun<'a> {
    url: &'a PeerUrl,
    join_timeout: Duration,
    other_side: OtherSide,
    /// Draw the URL as a QR code for a phone when we open the room.
    qr: bool,
}

impl UrlRun<'_> {
    /// Joins the room (making it and printing the other side's command when the URL names
    /// none), builds the peer with the ICE servers the server handed out besides `opts`'
    /// own, authenticates the other peer, and swaps sealed descriptions. Returns our peer, the
    /// other's description and when both peers were present.
    async fn exchange(
        &self,
        opts: &PeerOptions,
        step: Duration,
        cancel: &CancellationToken,
    ) -> anyhow::Result<(Peer, SessionDesc, Instant)> {
        let url = self.url.completed();
        let on_notice = Box::new(|notice: &str| eprintln!("dcsend: {notice}"));
        let client =
            cancellable(cancel, async { Ok(Client::join(&url, on_notice).await?) }).await?;
        let room = url.room.as_deref().unwrap_or_default();
        if self.url.room.is_none() {
            let other = self.other_side.command();
            let note = self.other_side.note().map(|n| format!("  {n}\n")).unwrap_or_default();
            // The last line is for a person; `dcsend signal` serves a page at that URL.
            eprintln!(
                "dcsend: room {room} is open; on the other side run:\n  {other} --peer '{url}'\n\
                 {note}or open {url} in a web browser"
            );
            if self.qr {
                match qr::render(&url.to_string()) {
                    Some(code) => eprintln!("{code}"),
                    None => tracing::warn!("the URL is too long for a QR code"),
                }
            }
        }
        let built = async { Ok(Peer::new(&with_servers(opts, client.ice_servers())?).await?) };
        let mut peer = match cancellable(cancel, built).await {
            Ok(peer) => peer,
            Err(e) => {
                client.leave().await;
                return Err(e);
            }
        };
        let meeting = Meeting {
            client: &client,
            secret: url.secret.as_deref().unwrap_or_default(),
            room,
            join_timeout: self.join_timeout,
            step,
        };
        let work = async {
            // Side A's offer is made once: a peer that comes after one that left gets it too.
            let mut offer = None;
            loop {
                match meeting.attempt(&mut peer, &mut offer).await {
                    Err(e) => match e.downcast::<SignalError>() {
                        Ok(SignalError::PeerLeft(notice)) => eprintln!("dcsend: {notice}"),
                        Ok(e) => return Err(e.into()),
                        Err(e) => return Err(e),
                    },
                    done => return done,
                }
            }
        };
        let res = cancellable(cancel, work).await;
        client.leave().await;
        let (remote, both_present) = res?;
        Ok((peer, remote, both_present))
    }
}

/// `opts` with the ICE servers a signaling server handed out added to its own (flags add to
/// the server's servers, never replace them). With `--relay-only` there must be a TURN server
/// among them.
fn with_servers(opts: &PeerOptions, servers: &[IceServer]) -> Result<PeerOptions, PeerError> {
    let mut opts = opts.clone();
    opts.ice.servers = servers.to_vec();
    let urls: Vec<&str> = servers.iter().flat_map(|s| &s.urls).map(String::as_str).collect();
    tracing::debug!(?urls, "ICE servers from the signaling server");
    if opts.ice.relay_only && opts.ice.turn_servers().is_empty() {
        return Err(PeerError::NoRelay(
            "the signaling server hands out no TURN server; name one with --turn".into(),
        ));
    }
    Ok(opts)
}

/// A joined room and what a rendezvous in it needs.
struct Meeting<'a> {
    client: &'a Client,
    secret: &'a str,
    room: &'a str,
    /// The wait for a peer, from the start of each attempt.
    join_timeout: Duration,
    /// The wait for each later message.
    step: Duration,
}

impl Meeting<'_> {
    /// One rendezvous with the peer in the other seat: authenticate, then swap descriptions.
    /// Fails with [`SignalError::PeerLeft`] when that peer leaves before the swap; the next
    /// attempt runs with whoever joins after it. `offer`: side A's, once made.
    async fn attempt(
        &self,
        peer: &mut Peer,
        offer: &mut Option<SessionDesc>,
    ) -> anyhow::Result<(SessionDesc, Instant)> {
        let (client, room, side, step) = (self.client, self.room, self.client.side(), self.step);
        let join_deadline = Instant::now() + self.join_timeout;
        let (mut sealer, both_present) = rendezvous::authenticate(
            client,
            self.secret,
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
                let ours = match offer {
                    Some(ours) => ours.clone(),
                    // Gathering may take seconds: the poll keeps our seat meanwhile.
                    None => offer.insert(client.present_while(peer.offer()).await?).clone(),
                };
                rendezvous::send_description(client, &mut sealer, &ours).await?;
                let answer =
                    rendezvous::recv_description(client, &mut sealer, SdpKind::Answer, step)
                        .await?;
                peer.accept_answer(&answer).await?;
                answer
            }
            Side::B => {
                let offer =
                    rendezvous::recv_description(client, &mut sealer, SdpKind::Offer, step).await?;
                let answer = client.present_while(peer.answer(&offer)).await?;
                rendezvous::send_description(client, &mut sealer, &answer).await?;
                offer
            }
        };
        Ok((remote, both_present))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_says_what_is_wrong_and_what_to_paste() {
        let answer = SdpKind::Answer;
        let cut = advice(&TokenError::Truncated(Some((80, 120))), answer, "dcsend recv");
        assert_eq!(
            cut,
            "this looks cut off (80 of its 120 characters): paste the whole token, the whole \
             line `dcsend recv` printed below \"answer token\""
        );
        let own = advice(&TokenError::OwnToken(SdpKind::Offer), answer, "dcsend recv");
        assert_eq!(
            own,
            "this is your own offer, not the peer's: paste the token `dcsend recv` printed"
        );
        let wrong = TokenError::WrongKind { expected: SdpKind::Offer, got: SdpKind::Answer };
        assert!(advice(&wrong, SdpKind::Offer, "dcsend FILE").ends_with("`dcsend FILE` printed"));
        let garbage = advice(&TokenError::NotBase64, answer, "dcsend recv");
        assert!(garbage.starts_with("the token is not base64"), "{garbage}");
        for err in [TokenError::Empty, TokenError::NoDataChannel, wrong] {
            assert!(!advice(&err, answer, "x").contains('\n'));
        }
    }

    #[test]
    fn the_other_side_is_named_by_its_command() {
        let (sink, source) = (TokenSink::Stderr, TokenSource::Tty);
        let named = |role, we_send| {
            Paste { role, sink: &sink, source: &source, we_send, long_token: false }.peer_command()
        };
        assert_eq!(named(Role::Offerer, true), "dcsend recv");
        assert_eq!(named(Role::Answerer, false), "dcsend FILE");
        assert_eq!(named(Role::Answerer, true), "dcsend recv --offer");
        assert_eq!(named(Role::Offerer, false), "dcsend FILE --answer");
    }
}
