//! Where the signaling server keeps its rooms: one interface, two implementations.
//!
//! - [`memory::MemoryStore`] (the default): the pure [`Rooms`] table behind a mutex, in this
//!   process. Fast, and gone when the process ends.
//! - [`redis::RedisStore`] (`--store redis://HOST:PORT/DB`): the same rooms, seats, inboxes,
//!   expiry and limits in a Redis server that any number of `dcsend signal` instances share, so
//!   a load balancer may send each request of a peer to a different instance, and an instance
//!   may restart without ending the rooms.
//!
//! Both keep the rules of [`crate::signal::rooms`] (two seats, a peer reads only once it spoke,
//! a silent seat is freed after the claim bound, per-network and global room quotas, ids of
//! ended rooms remembered) and the two idempotency handles a client retries with:
//! a join key (a repeated join gets the same seat), message numbers on posts (a repeated post
//! is not queued twice) and acknowledged reads (a repeated read gets the same message, which
//! is dropped only when a later read says it arrived). `tests/redis_store.rs` runs one suite
//! against both.
//!
//! [`Rooms`]: crate::signal::rooms::Rooms

pub mod memory;
pub mod redis;

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::signal::rooms::{Joined, Limits, RoomError, Swept};

/// Why a store could not serve a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The request itself is refused (the room is full, gone, over a limit...).
    #[error(transparent)]
    Room(#[from] RoomError),
    /// The store could not be asked: Redis is down, unreachable or too slow. Worth retrying.
    #[error("the room store is unavailable ({0}); try again shortly")]
    Unavailable(String),
}

impl StoreError {
    /// The HTTP status that carries this error.
    pub fn status(&self) -> u16 {
        match self {
            StoreError::Room(e) => e.status(),
            StoreError::Unavailable(_) => 503,
        }
    }

    /// How long to wait before trying again, when waiting helps.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            StoreError::Room(e) => e.retry_after(),
            StoreError::Unavailable(_) => Some(Duration::from_secs(1)),
        }
    }
}

/// What a long poll of an inbox got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A message from the other peer, and its number (0, 1, ... in the order it was posted).
    Message { seq: u64, body: Bytes },
    /// Something the server tells this peer about its room: `KIND: TEXT`.
    Notice(String),
    /// Nothing arrived within the wait.
    Nothing,
}

/// A room store. Every method but [`Store::limits`] may wait on I/O; none holds a lock across
/// an await, so a slow request for one room does not stall others.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The limits in force.
    fn limits(&self) -> Limits;

    /// Joins `room` from `client`, creating it when it does not exist. A join repeated with the
    /// same `key` gets the same seat (see [`crate::signal::rooms::Rooms::join_with`]).
    async fn join(
        &self,
        room: &str,
        client: IpAddr,
        key: Option<&str>,
    ) -> Result<Joined, StoreError>;

    /// Queues `body` from peer `token` for the other side; `seq` makes a repeat idempotent.
    async fn post(
        &self,
        room: &str,
        token: &str,
        body: Bytes,
        seq: Option<u64>,
    ) -> Result<(), StoreError>;

    /// Waits up to `wait` for a message (or notice) for peer `token`. `next` acknowledges the
    /// messages before it (see [`crate::signal::rooms::Rooms::take_acked`]); without it the
    /// message is taken at once.
    async fn receive(
        &self,
        room: &str,
        token: &str,
        next: Option<u64>,
        wait: Duration,
    ) -> Result<Received, StoreError>;

    /// Peer `token` leaves `room`; the room ends when both have left.
    async fn leave(&self, room: &str, token: &str) -> Result<(), StoreError>;

    /// Frees silent seats, expires idle rooms and forgets old gone rooms. Freed seats are
    /// logged by the store.
    async fn sweep(&self) -> Result<Swept, StoreError>;

    /// This instance stops serving. The memory store ends its rooms (nobody else has them);
    /// a shared store leaves them to the other instances.
    async fn shutdown(&self);
}
