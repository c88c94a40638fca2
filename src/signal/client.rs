//! The HTTP client side of the signaling protocol: join a room, post and long-poll messages,
//! leave. Implements [`Mailbox`] for `signal::rendezvous`.
//!
//! The secret in the URL's fragment never reaches this module's requests: every request URL
//! comes from [`PeerUrl::endpoint`], which has no fragment.
//!
//! Every request can be repeated safely, so a request that fails on the way (a `502`/`504` from
//! a balancer whose instance died, a `503` with `Retry-After` from an instance whose room store
//! is briefly down, a connection reset after we reached the server) is sent again for up to
//! [`RETRY_FOR`]: the join carries a random key (the same key gets the same seat), each message
//! its number (`?seq=`, queued once), and each read the number of the next message we want
//! (`?next=`, so a message whose answer was lost is read again, never skipped).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use tokio::time::Instant;

use crate::signal::ice::IceServer;
use crate::signal::rendezvous::{Mailbox, SignalError};
use crate::signal::rooms::{PEER_LEFT, SEAT_FREED};
use crate::signal::seal::{Envelope, Side};
use crate::signal::server::{MAX_MESSAGE_BYTES, MAX_WAIT_SECS, NOTICE_HEADER, SEQ_HEADER};
use crate::signal::url::PeerUrl;

/// Bound on connecting to the server and on any request that is not a long poll.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Times a join is tried again when the server says the room's other seat is held by a client
/// that has not spoken yet (`409` with `Retry-After`). A silent holder is removed within the
/// server's claim bound (10 s by default), so one retry is the rule; a squatter that rejoins
/// as soon as it is removed gets a few more before we give up.
const SEAT_RETRIES: usize = 4;

/// Longest `Retry-After` we wait for; longer ones are refusals.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How long a request that failed on the way is tried again (see the module's docs).
pub const RETRY_FOR: Duration = Duration::from_secs(15);

/// A failure worth sending the same request again for: the server (or the balancer in front
/// of it) says so, or the connection broke after we had reached the server.
fn transient(result: &Result<reqwest::Response, reqwest::Error>, reached: bool) -> bool {
    match result {
        Ok(r) => match r.status() {
            StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => true,
            StatusCode::SERVICE_UNAVAILABLE => {
                r.headers().contains_key(reqwest::header::RETRY_AFTER)
            }
            _ => false,
        },
        Err(e) => reached && !e.is_builder(),
    }
}

/// Sends the request `build` makes, again while it fails in a [`transient`] way, for up to
/// [`RETRY_FOR`]. `reached`: we have talked to this server before, so a connection error is
/// an outage to wait out rather than a wrong URL.
async fn with_retries(
    build: impl Fn() -> reqwest::RequestBuilder,
    reached: bool,
) -> Result<reqwest::Response, reqwest::Error> {
    let give_up = Instant::now() + RETRY_FOR;
    let mut pause = Duration::from_millis(100);
    loop {
        let result = build().send().await;
        if !transient(&result, reached) || Instant::now() + pause > give_up {
            return result;
        }
        match &result {
            Ok(r) => tracing::debug!(status = %r.status(), "signaling request failed; again"),
            Err(e) => tracing::debug!("signaling request failed ({e}); again"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// What the server told us about our room, one line for a person (see [`Client::join`]).
pub type OnNotice = Box<dyn Fn(&str) + Send + Sync>;

/// A joined room.
pub struct Client {
    http: reqwest::Client,
    url: PeerUrl,
    peer: String,
    side: Side,
    ice_servers: Vec<IceServer>,
    on_notice: OnNotice,
    intruders: AtomicUsize,
    /// Messages we have sent: the number of the next one.
    sent: AtomicU64,
    /// The number of the next message we want from the other peer.
    next: AtomicU64,
    /// What a long poll got while we were busy (see [`Client::present_while`]), for the next
    /// [`Mailbox::recv`].
    stash: Mutex<Option<Received>>,
}

/// What one [`Mailbox::recv`] returns.
type Received = Result<Option<Envelope>, SignalError>;

#[derive(Deserialize)]
struct JoinAnswer {
    peer: String,
    side: Side,
    /// Absent from servers older than the field, and empty from one started without any.
    #[serde(default)]
    ice_servers: Vec<IceServer>,
}

fn unreachable(url: &PeerUrl, err: &reqwest::Error) -> SignalError {
    // reqwest's Display is "error sending request for url (...)"; the cause says why.
    let mut reason = String::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        reason = cause.to_string();
        source = cause.source();
    }
    if err.is_timeout() {
        reason = format!("no answer within {}", humantime::format_duration(REQUEST_TIMEOUT));
    }
    if reason.is_empty() {
        reason = err.to_string();
    }
    SignalError::Unreachable { url: url.base().to_string(), reason }
}

fn not_signaling(url: &PeerUrl, what: impl Into<String>) -> SignalError {
    SignalError::NotSignaling { url: url.base().to_string(), what: what.into() }
}

/// A `Retry-After` in seconds, if the response has one we are willing to wait for.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let secs = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    Some(Duration::from_secs(secs.trim().parse().ok()?)).filter(|d| *d <= MAX_RETRY_AFTER)
}

/// Reads a refusal's one line of text (capped), or names the status.
async fn refusal(status: StatusCode, response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() || line.len() > 300 { format!("HTTP {status}") } else { line.to_owned() }
}

impl Client {
    /// Joins the room of `url` (which must name one: see [`PeerUrl::completed`]). What the
    /// server tells us about the room meanwhile (a silent client in the other seat, now or
    /// later while we wait) goes to `on_notice`.
    pub async fn join(url: &PeerUrl, on_notice: OnNotice) -> Result<Self, SignalError> {
        let http = Self::http().map_err(|e| unreachable(url, &e))?;
        Self::join_with(http, url, on_notice).await
    }

    /// The HTTP client [`Client::join`] makes. Building one loads the system's root
    /// certificates (milliseconds), so a program that joins many rooms (the load generator,
    /// `benches/signal_load.rs`) makes one and shares it through [`Client::join_with`].
    pub fn http() -> Result<reqwest::Client, reqwest::Error> {
        // reqwest is built without its own crypto provider; use ring, which webrtc already has.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .connect_timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("dcsend/", env!("CARGO_PKG_VERSION")))
            .build()
    }

    /// [`Client::join`] through an HTTP client of the caller's (see [`Client::http`]).
    pub async fn join_with(
        http: reqwest::Client,
        url: &PeerUrl,
        on_notice: OnNotice,
    ) -> Result<Self, SignalError> {
        let key: [u8; 16] = rand::random();
        let key = hex::encode(key);
        let mut retries = 0;
        loop {
            let mut endpoint = url.endpoint(&[]);
            endpoint.set_query(Some(&format!("key={key}")));
            let post = || http.post(endpoint.clone()).timeout(REQUEST_TIMEOUT);
            let response = with_retries(post, false).await.map_err(|e| unreachable(url, &e))?;
            let status = response.status();
            if status == StatusCode::CREATED {
                let body = response.bytes().await.map_err(|e| unreachable(url, &e))?;
                let answer: JoinAnswer = serde_json::from_slice(&body).map_err(|_| {
                    not_signaling(url, "its answer to a join is not {\"peer\":...,\"side\":...}")
                })?;
                let (peer, side, ice_servers) = (answer.peer, answer.side, answer.ice_servers);
                return Ok(Self {
                    http,
                    url: url.clone(),
                    peer,
                    side,
                    ice_servers,
                    on_notice,
                    intruders: AtomicUsize::new(0),
                    sent: AtomicU64::new(0),
                    next: AtomicU64::new(0),
                    stash: Mutex::new(None),
                });
            }
            let retry_after = retry_after(&response).filter(|_| status == StatusCode::CONFLICT);
            match status.as_u16() {
                409 if retries < SEAT_RETRIES && retry_after.is_some() => {
                    let wait = retry_after.unwrap_or_default();
                    let reason = refusal(status, response).await;
                    on_notice(&format!("{reason}; trying again in {}s", wait.as_secs()));
                    tokio::time::sleep(wait + Duration::from_millis(100)).await;
                    retries += 1;
                }
                400 | 409 | 410 | 429 | 503 => {
                    return Err(SignalError::Refused(refusal(status, response).await));
                }
                _ => return Err(not_signaling(url, format!("HTTP {status} to a join"))),
            }
        }
    }

    /// A (joined first, offers) or B (answers).
    pub fn side(&self) -> Side {
        self.side
    }

    /// The STUN and TURN servers the server handed us with our seat (see `signal::ice`).
    pub fn ice_servers(&self) -> &[IceServer] {
        &self.ice_servers
    }

    /// Leaves the room (best effort: the room expires anyway).
    pub async fn leave(&self) {
        let req =
            self.http.delete(self.url.endpoint(&[&self.peer])).timeout(Duration::from_secs(2));
        if let Err(e) = req.send().await {
            tracing::debug!("leaving the room: {e}");
        }
    }

    /// Runs `work` with a long poll open, so that the server sees us present while we are busy
    /// between requests (gathering ICE candidates can take seconds with STUN and TURN servers,
    /// longer than the server's presence bound). What the poll gets (the peer giving up, a
    /// notice that it left) is kept for the next [`Mailbox::recv`].
    pub async fn present_while<T>(&self, work: impl Future<Output = T>) -> T {
        let hold = async {
            let got = self.poll(Instant::now() + Duration::from_secs(24 * 3600)).await;
            *self.stash.lock().unwrap_or_else(|p| p.into_inner()) = Some(got);
            std::future::pending::<T>().await
        };
        tokio::select! {
            out = work => out,
            never = hold => never,
        }
    }

    /// Long-polls until a message arrives, the other side left, or `deadline` passes.
    async fn poll(&self, deadline: Instant) -> Received {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // Round up so a short remaining wait still waits; the server caps it.
            let wait = left.as_secs_f64().ceil().min(MAX_WAIT_SECS as f64) as u64;
            let next = self.next.load(Ordering::Relaxed);
            let mut url = self.url.endpoint(&[&self.peer]);
            url.set_query(Some(&format!("wait={wait}&next={next}")));
            let timeout = Duration::from_secs(wait) + REQUEST_TIMEOUT;
            let get = || self.http.get(url.clone()).timeout(timeout);
            let response = tokio::select! {
                r = with_retries(get, true) => r.map_err(|e| unreachable(&self.url, &e))?,
                () = tokio::time::sleep_until(deadline) => return Ok(None),
            };
            let response = self.check(response).await?;
            if let Some(notice) = response.headers().get(NOTICE_HEADER) {
                // `KIND: TEXT`, printable ASCII from our server; anything else is shown escaped.
                let notice = String::from_utf8_lossy(notice.as_bytes()).escape_debug().to_string();
                let (kind, text) = notice.split_once(": ").unwrap_or(("", &notice));
                match kind {
                    // The rendezvous decides what to say: it starts over, or gives up.
                    PEER_LEFT => return Err(SignalError::PeerLeft(text.to_owned())),
                    SEAT_FREED => {
                        self.intruders.fetch_add(1, Ordering::Relaxed);
                        (self.on_notice)(text);
                    }
                    _ => (self.on_notice)(text),
                }
            }
            if response.status() == StatusCode::NO_CONTENT {
                continue;
            }
            let seq: Option<u64> =
                response.headers().get(SEQ_HEADER).and_then(|v| v.to_str().ok()?.parse().ok());
            let body = response.bytes().await.map_err(|e| unreachable(&self.url, &e))?;
            // Acknowledged by the next read. Messages come in order and without gaps, so the
            // count we received is the next number; the server's header (which a proxy may
            // drop) only confirms it.
            self.next.store(seq.map_or(next, |seq| u64::max(next, seq)) + 1, Ordering::Relaxed);
            if body.len() > MAX_MESSAGE_BYTES {
                return Err(SignalError::OutOfOrder("a message larger than the server allows"));
            }
            return match Envelope::from_json(&body) {
                Some(env) => Ok(Some(env)),
                None => Err(not_signaling(
                    &self.url,
                    "it relayed a message that is not dcsend signaling",
                )),
            };
        }
    }

    async fn check(&self, response: reqwest::Response) -> Result<reqwest::Response, SignalError> {
        let status = response.status();
        if status.is_success() {
            Ok(response)
        } else if status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE {
            Err(SignalError::Refused(refusal(status, response).await))
        } else {
            Err(not_signaling(&self.url, format!("HTTP {status}")))
        }
    }
}

impl Mailbox for Client {
    async fn send(&self, msg: &Envelope) -> Result<(), SignalError> {
        // A poll held while we were busy heard that the other side left: what we were about to
        // send was meant for it, and must not reach whoever takes its seat next.
        {
            let mut stash = self.stash.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(*stash, Some(Err(SignalError::PeerLeft(_)))) {
                return stash.take().expect("matched").map(|_| ());
            }
        }
        let seq = self.sent.load(Ordering::Relaxed);
        let mut endpoint = self.url.endpoint(&[&self.peer]);
        endpoint.set_query(Some(&format!("seq={seq}")));
        let body = msg.to_json();
        let post = || {
            self.http
                .post(endpoint.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .timeout(REQUEST_TIMEOUT)
        };
        let response = with_retries(post, true).await.map_err(|e| unreachable(&self.url, &e))?;
        self.check(response).await?;
        self.sent.store(seq + 1, Ordering::Relaxed);
        Ok(())
    }

    async fn recv(&self, deadline: Instant) -> Result<Option<Envelope>, SignalError> {
        if let Some(got) = self.stash.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return got;
        }
        self.poll(deadline).await
    }

    fn intruders(&self) -> usize {
        self.intruders.load(Ordering::Relaxed)
    }
}
