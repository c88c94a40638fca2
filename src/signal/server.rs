//! `dcsend signal`: the rendezvous server, an axum app over [`Rooms`].
//!
//! The protocol is plain HTTP that curl can drive (see `docs/signaling.md`):
//!
//! | request                     | answer                                                    |
//! |-----------------------------|-----------------------------------------------------------|
//! | `GET /healthz`              | `200 ok`                                                  |
//! | `GET /`, `GET /ROOM`        | the browser page (`signal::page`)                         |
//! | `POST /ROOM`                | `201 {"room":ROOM,"peer":TOKEN,"side":"a"\|"b"}` (join)   |
//! | `POST /ROOM/TOKEN` + body   | `204`: queued for the other peer                          |
//! | `GET /ROOM/TOKEN?wait=SECS` | `200` + the oldest message for us, or `204` after `wait`  |
//! | `DELETE /ROOM/TOKEN`        | `204`: we leave; the room ends when both have left        |
//!
//! Refusals are a status (see [`RoomError::status`]) with one line of text. Bodies are opaque to
//! the server: dcsend peers seal what matters (`signal::seal`), so the server only relays.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::signal::page;
use crate::signal::rooms::{Joined, Limits, RoomError, Rooms, Take};
use crate::signal::seal::Side;

/// Largest message body accepted, in bytes. A sealed data-channel offer is about 2 KiB.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Longest long poll, in seconds: below common proxy timeouts (60 s).
pub const MAX_WAIT_SECS: u64 = 30;

struct Shared {
    rooms: Mutex<Rooms>,
    shutdown: CancellationToken,
}

impl Shared {
    fn rooms(&self) -> MutexGuard<'_, Rooms> {
        // A panic while holding the lock would be a bug in `Rooms`; keep serving with its state.
        self.rooms.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Serves on `listener` until `shutdown` is cancelled, then ends every long poll and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    limits: Limits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let shared =
        Arc::new(Shared { rooms: Mutex::new(Rooms::new(limits)), shutdown: shutdown.clone() });
    let sweeper = tokio::spawn(sweep(shared.clone()));
    let app = router(shared.clone());
    let res = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            tracing::info!("shutting down: finishing the requests in flight");
        })
        .await;
    sweeper.abort();
    shared.rooms().close_all(Instant::now());
    res
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

/// Expires idle rooms in the background.
async fn sweep(shared: Arc<Shared>) {
    let ttl = shared.rooms().limits().idle_ttl;
    let period = (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        for room in shared.rooms().sweep(Instant::now()) {
            tracing::info!(room, "room expired");
        }
    }
}

/// A one-line text answer.
fn text(status: StatusCode, line: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{line}\n"))
        .into_response()
}

fn refusal(err: &RoomError, client: IpAddr) -> Response {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
    tracing::info!(%client, status = status.as_u16(), reason = %err, "refused");
    text(status, &err.to_string())
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
}

async fn join(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(room): Path<String>,
) -> Response {
    let joined = shared.rooms().join(&room, client.ip(), Instant::now());
    match joined {
        Ok(Joined { peer, side }) => {
            tracing::info!(room, ?side, client = %client.ip(), "joined");
            let body = JoinAnswer { room: &room, peer: &peer, side };
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Err(e) => refusal(&e, client.ip()),
    }
}

async fn send(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((room, peer)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let posted = shared.rooms().post(&room, &peer, body, Instant::now());
    match posted {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refusal(&e, client.ip()),
    }
}

#[derive(Deserialize)]
struct Wait {
    /// Seconds to wait for a message (0 = answer at once); capped at [`MAX_WAIT_SECS`].
    wait: Option<u64>,
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((room, peer)): Path<(String, String)>,
    Query(Wait { wait }): Query<Wait>,
) -> Response {
    // Never more than half the TTL, so a waiting peer keeps its room alive; never 0, so a
    // client cannot be made to spin.
    let cap = MAX_WAIT_SECS.min(shared.rooms().limits().idle_ttl.as_secs() / 2).max(1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait.unwrap_or(cap).min(cap));
    loop {
        let taken = shared.rooms().take(&room, &peer, Instant::now());
        let waker = match taken {
            Ok(Take::Message(msg)) => {
                return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], msg)
                    .into_response();
            }
            Ok(Take::Empty(waker)) => waker,
            Err(e) => return refusal(&e, client.ip()),
        };
        tokio::select! {
            () = waker.notified() => {}
            () = tokio::time::sleep_until(deadline) => return StatusCode::NO_CONTENT.into_response(),
            () = shared.shutdown.cancelled() => {
                return text(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down");
            }
        }
    }
}

async fn leave(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((room, peer)): Path<(String, String)>,
) -> Response {
    let left = shared.rooms().leave(&room, &peer, Instant::now());
    match left {
        Ok(()) => {
            tracing::info!(room, client = %client.ip(), "left");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => refusal(&e, client.ip()),
    }
}
