//! The in-memory store: the pure [`Rooms`] table behind a mutex.

use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use crate::signal::rooms::{Joined, Limits, Rooms, Swept, Take};
use crate::signal::store::{Received, Store, StoreError};

/// Rooms in this process's memory (the default store).
pub struct MemoryStore {
    rooms: Mutex<Rooms>,
    limits: Limits,
}

impl MemoryStore {
    pub fn new(limits: Limits) -> Self {
        Self { rooms: Mutex::new(Rooms::new(limits)), limits }
    }

    fn rooms(&self) -> MutexGuard<'_, Rooms> {
        // A panic while holding the lock would be a bug in pure bookkeeping; keep serving.
        self.rooms.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A long poll in progress (see [`Rooms::poll_started`]).
struct Poll<'a> {
    store: &'a MemoryStore,
    room: &'a str,
    token: &'a str,
    held: bool,
}

impl<'a> Poll<'a> {
    fn start(store: &'a MemoryStore, room: &'a str, token: &'a str) -> Self {
        let held = store.rooms().poll_started(room, token);
        Self { store, room, token, held }
    }
}

impl Drop for Poll<'_> {
    fn drop(&mut self) {
        if self.held {
            self.store.rooms().poll_ended(self.room, self.token, Instant::now());
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn limits(&self) -> Limits {
        self.limits
    }

    async fn join(
        &self,
        room: &str,
        client: IpAddr,
        key: Option<&str>,
    ) -> Result<Joined, StoreError> {
        Ok(self.rooms().join_with(room, client, key, Instant::now())?)
    }

    async fn post(
        &self,
        room: &str,
        token: &str,
        body: Bytes,
        seq: Option<u64>,
    ) -> Result<(), StoreError> {
        // A body that arrived in one read is a slice of the connection's read buffer (8 KiB
        // and more); a copy keeps only its own bytes alive while it waits in the inbox.
        let body = Bytes::copy_from_slice(&body);
        Ok(self.rooms().post_seq(room, token, body, seq, Instant::now())?)
    }

    async fn receive(
        &self,
        room: &str,
        token: &str,
        next: Option<u64>,
        wait: Duration,
    ) -> Result<Received, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        // The seat is held while this poll is open; if the client goes away (its connection
        // closes and hyper drops this future), the guard starts the presence bound.
        let _poll = Poll::start(self, room, token);
        loop {
            let taken = self.rooms().take_acked(room, token, next, Instant::now())?;
            let waker = match taken {
                Take::Message { seq, body } => return Ok(Received::Message { seq, body }),
                Take::Notice(notice) => return Ok(Received::Notice(notice)),
                Take::Empty(waker) => waker,
            };
            // `Notify::notify_one` keeps a permit when nobody waits yet, so a message posted
            // between the take and this wait is not missed.
            tokio::select! {
                () = waker.notified() => {}
                () = tokio::time::sleep_until(deadline) => return Ok(Received::Nothing),
            }
        }
    }

    async fn leave(&self, room: &str, token: &str) -> Result<(), StoreError> {
        Ok(self.rooms().leave(room, token, Instant::now())?)
    }

    async fn sweep(&self) -> Result<Swept, StoreError> {
        Ok(self.rooms().sweep(Instant::now()))
    }

    async fn shutdown(&self) {
        self.rooms().close_all(Instant::now());
    }
}
