//! `dcsend signal`: the rendezvous server, an axum app over [`Rooms`].
//!
//! The protocol is plain HTTP that curl can drive (see `docs/signaling.md`):
//!
//! | request                     | answer                                                    |
//! |-----------------------------|-----------------------------------------------------------|
//! | `GET /healthz`              | `200 ok`                                                  |
//! | `GET /`, `GET /ROOM`        | the browser page (`signal::page`)                         |
//! | `POST /ROOM`                | `201 {"room":ROOM,"peer":TOKEN,"side":"a"\|"b","ice_servers":[..]}` (join) |
//! | `POST /ROOM/TOKEN` + body   | `204`: queued for the other peer                          |
//! | `GET /ROOM/TOKEN?wait=SECS` | `200` + the oldest message for us, or `204` after `wait`  |
//! | `DELETE /ROOM/TOKEN`        | `204`: we leave; the room ends when both have left        |
//!
//! `ice_servers` are the STUN and TURN servers the peers should use ([`IceAdvert`]; empty when
//! the server was started without any), with fresh TURN credentials in every join answer.
//!
//! Refusals are a status (see [`RoomError::status`]) with one line of text. Bodies are opaque to
//! the server: dcsend peers seal what matters (`signal::seal`), so the server only relays.
//!
//! The rooms live in a [`Store`]: this process's memory, or Redis shared with other instances
//! (`signal::store`). Three optional query parameters make a client's retries idempotent, so a
//! request whose answer was lost (an instance killed, a balancer's connection reset) can be sent
//! again, to any instance: `POST /ROOM?key=K` (the same key gets the same seat), `POST
//! /ROOM/TOKEN?seq=N` (the peer's N-th message, queued once) and `GET /ROOM/TOKEN?next=N` (the
//! peer has messages 0..N; the answer carries the message's number in [`SEQ_HEADER`] and keeps
//! it until a later read acknowledges it).
//!
//! Connections are served by hyper's HTTP/1 connection builder in our own accept loop rather
//! than `axum::serve`, which has no knob for what a hostile client can hold: every connection
//! takes a unit of a [`Quota`] (a total and a share per client network) before hyper sees it,
//! a request head must arrive within [`ConnLimits::header_timeout`] (hyper's
//! `header_read_timeout`, which also bounds a kept-alive connection's wait for its next
//! request), and a connection on which no request is being handled for
//! [`ConnLimits::idle_timeout`] is closed. A long poll is a request being handled, so it is never
//! idle. Over the limits a connection is answered `503`/`429` and closed at once, so the
//! descriptors stay below the process's limit and `accept` keeps working.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::signal::ice::{IceAdvert, IceServer};
use crate::signal::page;
use crate::signal::rooms::{Joined, Limits, Prefix, Quota, QuotaRefusal};
use crate::signal::seal::Side;
use crate::signal::store::memory::MemoryStore;
use crate::signal::store::{Received, Store, StoreError};

/// The response header of a `204` long poll that carries a notice from the server about the
/// peer's room (one line of ASCII), e.g. that a silent client lost the other seat. Clients that
/// do not know it see a plain `204` and poll again.
pub const NOTICE_HEADER: &str = "dcsend-notice";

/// The response header of a `200` long poll that carries the message's number (0, 1, ... per
/// sender), which the client acknowledges with `?next=`.
pub const SEQ_HEADER: &str = "dcsend-seq";

/// How long open connections get to finish at shutdown before they are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// At most one log line per this period about refused connections or failing `accept`s, so
/// a flood does not also flood the log.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What one client can hold of the server's connections and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections open at once, over all clients. Keep it below the process's file-descriptor
    /// limit (`cmd::signal` clamps it), so `accept` never fails for want of one.
    pub max_connections: usize,
    /// Connections open at once from one client network.
    pub max_connections_per_client: usize,
    /// A request's head must arrive within this; a kept-alive connection waiting for its next
    /// request is closed after it too.
    pub header_timeout: Duration,
    /// A connection on which no request is being handled for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_client: 64,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Largest message body accepted, in bytes. A sealed data-channel offer is about 2 KiB.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Longest long poll, in seconds: below common proxy timeouts (60 s).
pub const MAX_WAIT_SECS: u64 = 30;

struct Shared {
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
    /// Bounds the arrival of a message's body, as `header_timeout` bounds its head.
    body_timeout: Duration,
    /// The ICE servers handed out with every join.
    ice: IceAdvert,
}

/// Serves rooms kept in memory on `listener` until `shutdown` is cancelled (see [`serve_with`]).
pub async fn serve(
    listener: TcpListener,
    limits: Limits,
    conns: ConnLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let store = Arc::new(MemoryStore::new(limits));
    serve_with(listener, store, conns, IceAdvert::default(), shutdown).await
}

/// Serves the rooms of `store` on `listener` until `shutdown` is cancelled, then ends every
/// long poll and returns. Every join is answered with the ICE servers of `ice`.
pub async fn serve_with(
    listener: TcpListener,
    store: Arc<dyn Store>,
    conns: ConnLimits,
    ice: IceAdvert,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits = store.limits();
    let shared = Arc::new(Shared {
        store,
        shutdown: shutdown.clone(),
        body_timeout: conns.header_timeout,
        ice,
    });
    let sweeper = tokio::spawn(sweep(shared.clone()));
    let app = router(shared.clone());
    let quota =
        Arc::new(Mutex::new(Quota::new(conns.max_connections, conns.max_connections_per_client)));
    let tracker = TaskTracker::new();
    let mut refused = Tally::default();
    let mut failed = Tally::default();
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, client) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE/ENFILE (out of descriptors) or a connection reset before we took it.
                // Back off a little: descriptors come back as connections close.
                if let Some(n) = failed.count() {
                    tracing::warn!(error = %e, failures = n, "accept failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let prefix = limits.prefix.of(client.ip());
        let taken = lock(&quota).try_acquire(prefix);
        if let Err(why) = taken {
            turn_away(&stream, why);
            if let Some(n) = refused.count() {
                let open = lock(&quota).used();
                tracing::warn!(
                    refused = n, open, last_client = %client.ip(), network = %prefix,
                    "refusing connections: over the limit per network or in total"
                );
            }
            continue;
        }
        let slot = Slot { quota: quota.clone(), prefix };
        tracker.spawn(connection(stream, client, app.clone(), conns, shutdown.clone(), slot));
    }
    tracing::info!("shutting down: finishing the requests in flight");
    drop(listener);
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await.is_err() {
        tracing::warn!(open = tracker.len(), "closing the connections still open");
    }
    sweeper.abort();
    shared.store.shutdown().await;
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock would be a bug in pure bookkeeping; keep serving.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts events and says when to log them: the first at once, then at most one line per
/// [`LOG_EVERY`] with the count since the last line.
#[derive(Default)]
struct Tally {
    since_logged: u64,
    logged_at: Option<tokio::time::Instant>,
}

impl Tally {
    fn count(&mut self) -> Option<u64> {
        self.since_logged += 1;
        let now = tokio::time::Instant::now();
        if self.logged_at.is_some_and(|at| now.duration_since(at) < LOG_EVERY) {
            return None;
        }
        self.logged_at = Some(now);
        Some(std::mem::take(&mut self.since_logged))
    }
}

/// One connection's unit of the connection quota, given back when the connection ends.
struct Slot {
    quota: Arc<Mutex<Quota>>,
    prefix: Prefix,
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.quota).release(self.prefix);
    }
}

/// Answers a connection over the limits and closes it, without waiting for anything: one
/// non-blocking write (a fresh socket's buffer takes it), then the socket is dropped.
fn turn_away(stream: &TcpStream, why: QuotaRefusal) {
    let (status, line) = match why {
        QuotaRefusal::PrefixFull => (
            "429 Too Many Requests",
            "too many connections from your network; close some and try again",
        ),
        QuotaRefusal::Full | QuotaRefusal::Reserved => {
            ("503 Service Unavailable", "the server has too many connections open; try again later")
        }
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{line}\n",
        line.len() + 1
    );
    let _ = stream.try_write(answer.as_bytes());
}

/// Requests being handled on one connection; the guard counts one down when dropped.
struct InFlight(Arc<watch::Sender<usize>>);

impl InFlight {
    fn enter(busy: &Arc<watch::Sender<usize>>) -> Self {
        busy.send_modify(|n| *n += 1);
        Self(busy.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Serves one connection until the client closes it, it errs, it stays idle past
/// `limits.idle_timeout`, or the server shuts down (after the request in flight).
async fn connection(
    stream: TcpStream,
    client: SocketAddr,
    app: Router,
    limits: ConnLimits,
    shutdown: CancellationToken,
    _slot: Slot,
) {
    let _ = stream.set_nodelay(true);
    let busy = Arc::new(watch::Sender::new(0usize));
    let mut busy_rx = busy.subscribe();
    let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(client));
        let in_flight = InFlight::enter(&busy);
        let call = app.clone().oneshot(req);
        async move {
            let response = call.await;
            drop(in_flight);
            response.map_err(|never: Infallible| match never {})
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let mut idle_since = Some(tokio::time::Instant::now());
    let mut closing = false;
    loop {
        let idle_deadline = idle_since.map(|t| t + limits.idle_timeout);
        tokio::select! {
            biased;
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(client = %client.ip(), "connection ended: {e}");
                }
                return;
            }
            () = shutdown.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            Ok(()) = busy_rx.changed() => {
                let handling = *busy_rx.borrow_and_update();
                idle_since = (handling == 0).then(tokio::time::Instant::now);
            }
            () = sleep_until(idle_deadline), if idle_deadline.is_some() => {
                tracing::debug!(client = %client.ip(), "closing an idle connection");
                return;
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/", get(page::index))
        .route(page::SCRIPT_PATH, get(page::script))
        .route(page::STYLE_PATH, get(page::style))
        .route("/{room}", post(join).get(page::room))
        .route("/{room}/{peer}", post(send).get(receive).delete(leave))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .with_state(shared)
}

/// Frees silent seats and expires idle rooms in the background.
async fn sweep(shared: Arc<Shared>) {
    let limits = shared.store.limits();
    let period = (limits.idle_ttl.min(limits.claim_timeout).min(limits.presence_timeout) / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(30));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        // Freed seats are logged by the store itself, a store that fails by `Store::sweep`.
        let Ok(swept) = shared.store.sweep().await else { continue };
        for room in swept.expired {
            tracing::info!(room, "room expired");
        }
    }
}

/// A one-line text answer.
fn text(status: StatusCode, line: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{line}\n"))
        .into_response()
}

fn refusal(err: &StoreError, client: IpAddr) -> Response {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
    // An unavailable store is logged once by the store, not once per request.
    if let StoreError::Room(err) = err {
        tracing::info!(%client, status = status.as_u16(), reason = %err, "refused");
    }
    let mut response = text(status, &err.to_string());
    if let Some(wait) = err.retry_after() {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
    }
    response
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok")
}

pub(super) async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "no such endpoint; see docs/signaling.md")
}

#[derive(Serialize)]
struct JoinAnswer<'a> {
    room: &'a str,
    peer: &'a str,
    side: Side,
    ice_servers: Vec<IceServer>,
}

/// `?key=K` on a join: a client-chosen idempotency key (see the module's docs).
#[derive(Deserialize)]
struct JoinKey {
    key: Option<String>,
}

/// `?seq=N` on a post: the message's number.
#[derive(Deserialize)]
struct Seq {
    seq: Option<u64>,
}

async fn join(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(room): Path<String>,
    Query(JoinKey { key }): Query<JoinKey>,
    headers: axum::http::HeaderMap,
) -> Response {
    // A key is any short token; a long one is refused rather than stored.
    let key = key.filter(|k| !k.is_empty() && k.len() <= 64);
    let joined = shared.store.join(&room, client.ip(), key.as_deref()).await;
    match joined {
        Ok(Joined { peer, side }) => {
            tracing::info!(room, ?side, client = %client.ip(), "joined");
            // The STUN host is the one the client reached us by (a reverse proxy keeps the
            // Host header); the TURN user name is tagged with a random id, not the room's.
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
            let tag = hex::encode(rand::random::<[u8; 4]>());
            let ice_servers = shared.ice.servers(host, std::time::SystemTime::now(), &tag);
            let body = JoinAnswer { room: &room, peer: &peer, side, ice_servers };
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Err(e) => refusal(&e, client.ip()),
    }
}

async fn send(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((room, peer)): Path<(String, String)>,
    Query(Seq { seq }): Query<Seq>,
    request: Request,
) -> Response {
    // A body trickled in a byte at a time would hold the connection (and count as a request
    // in flight, so never idle): bound it like the head.
    let body =
        match tokio::time::timeout(shared.body_timeout, Bytes::from_request(request, &())).await {
            Ok(Ok(body)) => body,
            Ok(Err(rejection)) => return rejection.into_response(),
            Err(_) => {
                let wait = humantime::format_duration(shared.body_timeout);
                return text(
                    StatusCode::REQUEST_TIMEOUT,
                    &format!("the body did not arrive within {wait}"),
                );
            }
        };
    let posted = shared.store.post(&room, &peer, body, seq).await;
    match posted {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refusal(&e, client.ip()),
    }
}

#[derive(Deserialize)]
struct Wait {
    /// Seconds to wait for a message (0 = answer at once); capped at [`MAX_WAIT_SECS`].
    wait: Option<u64>,
    /// The number of the first message the peer has not received: the ones before it are
    /// acknowledged, and the one returned is kept until a later read acknowledges it.
    next: Option<u64>,
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((room, peer)): Path<(String, String)>,
    Query(Wait { wait, next }): Query<Wait>,
) -> Response {
    // Never more than half the TTL, so a waiting peer keeps its room alive; never 0, so a
    // client cannot be made to spin.
    let cap = MAX_WAIT_SECS.min(shared.store.limits().idle_ttl.as_secs() / 2).max(1);
    let wait = Duration::from_secs(wait.unwrap_or(cap).min(cap));
    let received = tokio::select! {
        r = shared.store.receive(&room, &peer, next, wait) => r,
        () = shared.shutdown.cancelled() => {
            return text(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down");
        }
    };
    match received {
        Ok(Received::Message { seq, body }) => {
            let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body)
                .into_response();
            response.headers_mut().insert(SEQ_HEADER, HeaderValue::from(seq));
            response
        }
        Ok(Received::Notice(notice)) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            if let Ok(value) = HeaderValue::from_str(&notice) {
                response.headers_mut().insert(NOTICE_HEADER, value);
            }
            response
        }
        Ok(Received::Nothing) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refusal(&e, client.ip()),
    }
}

async fn leave(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((room, peer)): Path<(String, String)>,
) -> Response {
    let left = shared.store.leave(&room, &peer).await;
    match left {
        // Logged by the store, with the side.
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refusal(&e, client.ip()),
    }
}
