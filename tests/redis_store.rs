//! One suite, two stores: every test here runs against the in-memory store and against the
//! Redis store (a real `redis-server` on loopback, started and killed by the test). The Redis
//! runs use two store instances on the same server and alternate between them, as two
//! `dcsend signal` instances behind a balancer would; for memory both "instances" are the one
//! store. Then the faults only Redis has: killed, restarted, stopped.
//!
//! Without redis-server the Redis runs skip (`common::skip`), unless
//! `DCSEND_TEST_REQUIRE_REDIS=1`.

mod common;
mod redis_support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dcsend::signal::rooms::{Departure, Joined, Limits, PrefixLens, RoomError};
use dcsend::signal::seal::Side;
use dcsend::signal::store::memory::MemoryStore;
use dcsend::signal::store::redis::{COMMAND_TIMEOUT, RedisStore};
use dcsend::signal::store::{Received, Store, StoreError};
use redis_support::RedisServer;

const ME: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const CLAIM: Duration = Duration::from_millis(700);
const TTL: Duration = Duration::from_millis(1500);
const PRESENCE: Duration = Duration::from_millis(1000);

fn limits() -> Limits {
    Limits {
        max_rooms: 3,
        max_rooms_per_client: 2,
        prefix: PrefixLens::default(),
        idle_ttl: Duration::from_secs(30),
        claim_timeout: Duration::from_secs(30),
        max_queued: 2,
        presence_timeout: Duration::from_secs(30),
    }
}

/// Two handles on one set of rooms: the same memory store twice, or two Redis stores (two
/// instances) on one redis-server.
struct Pair {
    one: Arc<dyn Store>,
    two: Arc<dyn Store>,
    _redis: Option<(RedisServer, tempfile::TempDir)>,
}

impl Pair {
    /// Alternates: the `i`-th request goes to instance `i % 2`.
    fn at(&self, i: usize) -> &dyn Store {
        if i.is_multiple_of(2) { &*self.one } else { &*self.two }
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Memory,
    Redis,
}

fn pair(kind: Kind, limits: Limits) -> Option<Pair> {
    match kind {
        Kind::Memory => {
            let store: Arc<dyn Store> = Arc::new(MemoryStore::new(limits));
            Some(Pair { one: store.clone(), two: store, _redis: None })
        }
        Kind::Redis => {
            let dir = tempfile::tempdir().unwrap();
            let Some(server) = RedisServer::start(dir.path()) else {
                common::skip(
                    "REDIS",
                    "redis-server is not installed (apt-get install redis-server)",
                );
                return None;
            };
            let one = Arc::new(RedisStore::open(&server.url(), limits).unwrap());
            let two = Arc::new(RedisStore::open(&server.url(), limits).unwrap());
            Some(Pair { one, two, _redis: Some((server, dir)) })
        }
    }
}

/// Runs `case` against both stores, and the Redis fault cases, under
/// [`common::skippable_tests!`]'s harness: without redis-server the Redis cases count as ignored.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                pub fn $name() {
                    super::block_on(super::$name(super::Kind::Memory))
                }
            )*
        }
        mod redis {
            $(
                pub fn $name() {
                    super::block_on(super::$name(super::Kind::Redis))
                }
            )*
        }
        fn main() -> std::process::ExitCode {
            let tests: Vec<(&'static str, fn())> = vec![
                $((concat!("memory::", stringify!($name)), memory::$name as fn()),)*
                $((concat!("redis::", stringify!($name)), redis::$name as fn()),)*
                (
                    "redis_down_is_unavailable_and_a_restarted_redis_serves_again",
                    || block_on(redis_down_is_unavailable_and_a_restarted_redis_serves_again()),
                ),
                (
                    "a_stopped_redis_answers_unavailable_within_the_command_bound_then_recovers",
                    || block_on(a_stopped_redis_answers_unavailable_within_the_command_bound_then_recovers()),
                ),
            ];
            common::run_skippable(tests)
        }
    };
}

/// Polls `case` on this thread (where [`common::skip`] must run) with two worker threads.
fn block_on(case: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(case)
}

both!(
    two_peers_exchange_in_order_across_instances_and_a_third_is_refused,
    a_long_poll_wakes_on_a_message_posted_through_the_other_instance,
    repeated_posts_and_reads_are_idempotent,
    a_join_repeated_with_its_key_gets_the_same_seat,
    concurrent_joins_through_both_instances_fill_exactly_two_seats,
    a_room_closes_when_both_left_and_stays_finished,
    idle_rooms_expire_on_access_and_on_sweep,
    a_silent_second_seat_is_freed_and_the_waiting_side_is_told,
    a_room_nobody_spoke_in_closes_after_the_claim_bound_and_is_not_remembered,
    limits_per_network_in_all_and_per_inbox,
    the_last_tenth_is_kept_for_light_networks,
    a_peer_that_leaves_mid_rendezvous_frees_its_seat_and_the_other_side_starts_over,
    a_lost_peer_frees_its_seat_and_the_waiting_side_is_told,
    open_long_polls_hold_their_seats_past_the_presence_bound,
    a_long_poll_whose_client_went_away_frees_the_seat_after_the_bound,
);

/// A notice for `token`, read without waiting.
async fn notice(s: &dyn Store, room: &str, token: &str, next: Option<u64>) -> String {
    match s.receive(room, token, next, Duration::ZERO).await.unwrap() {
        Received::Notice(n) => n,
        other => panic!("wanted a notice, got {other:?}"),
    }
}

async fn post_n(s: &dyn Store, room: &str, token: &str, seq: u64, body: &'static [u8]) {
    s.post(room, token, Bytes::from_static(body), Some(seq)).await.unwrap();
}

/// Reads without waiting; `None` when nothing is there.
async fn read(s: &dyn Store, room: &str, token: &str, next: Option<u64>) -> Option<(u64, Bytes)> {
    match s.receive(room, token, next, Duration::ZERO).await.unwrap() {
        Received::Message { seq, body } => Some((seq, body)),
        Received::Notice(n) => panic!("unexpected notice {n}"),
        Received::Nothing => None,
    }
}

async fn post(s: &dyn Store, room: &str, token: &str, body: &'static [u8]) {
    s.post(room, token, Bytes::from_static(body), None).await.unwrap();
}

fn room_err<T: std::fmt::Debug>(r: Result<T, StoreError>) -> RoomError {
    match r {
        Err(StoreError::Room(e)) => e,
        other => panic!("wanted a refusal, got {other:?}"),
    }
}

async fn two_peers_exchange_in_order_across_instances_and_a_third_is_refused(kind: Kind) {
    let Some(p) = pair(kind, limits()) else { return };
    let a = p.at(0).join("r", ME, None).await.unwrap();
    assert_eq!(a.side, Side::A);
    // A may speak before B arrives.
    post(p.at(1), "r", &a.peer, b"1").await;
    post(p.at(0), "r", &a.peer, b"2").await;
    let b = p.at(1).join("r", OTHER, None).await.unwrap();
    assert_eq!(b.side, Side::B);
    assert_ne!(a.peer, b.peer);
    // B reads only once it spoke.
    assert_eq!(read(p.at(0), "r", &b.peer, None).await, None);
    post(p.at(1), "r", &b.peer, b"3").await;
    assert_eq!(room_err(p.at(0).join("r", OTHER, None).await), RoomError::Full("r".into()));
    assert_eq!(read(p.at(0), "r", &b.peer, None).await, Some((0, Bytes::from_static(b"1"))));
    assert_eq!(read(p.at(1), "r", &b.peer, None).await, Some((1, Bytes::from_static(b"2"))));
    assert_eq!(read(p.at(0), "r", &b.peer, None).await, None);
    assert_eq!(read(p.at(1), "r", &a.peer, None).await, Some((0, Bytes::from_static(b"3"))));
    assert_eq!(read(p.at(0), "r", &a.peer, None).await, None);
    assert_eq!(room_err(p.at(1).receive("r", "guess", None, Duration::ZERO).await).status(), 404);
    assert_eq!(room_err(p.at(1).join("../etc", ME, None).await), RoomError::BadRoom);
}

async fn a_long_poll_wakes_on_a_message_posted_through_the_other_instance(kind: Kind) {
    let Some(p) = pair(kind, limits()) else { return };
    let a = p.at(0).join("r", ME, None).await.unwrap();
    post(p.at(0), "r", &a.peer, b"pake-a").await;
    let b = p.at(1).join("r", ME, None).await.unwrap();
    post(p.at(1), "r", &b.peer, b"pake-b").await;
    assert_eq!(read(p.at(0), "r", &a.peer, None).await.unwrap().1, &b"pake-b"[..]);
    // A waits on instance one; B posts through instance two a moment later. The wait is
    // shorter than the store's own periodic re-read, so only the wake-up can deliver it.
    let one = p.one.clone();
    let peer = a.peer.clone();
    let waiting =
        tokio::spawn(
            async move { one.receive("r", &peer, None, Duration::from_millis(3500)).await },
        );
    tokio::time::sleep(Duration::from_millis(300)).await;
    post(p.at(1), "r", &b.peer, b"offer").await;
    let got = waiting.await.unwrap().unwrap();
    assert_eq!(got, Received::Message { seq: 1, body: Bytes::from_static(b"offer") });
}

async fn repeated_posts_and_reads_are_idempotent(kind: Kind) {
    let Some(p) = pair(kind, Limits { max_queued: 4, ..limits() }) else { return };
    let a = p.at(0).join("r", ME, None).await.unwrap();
    let b = p.at(1).join("r", ME, None).await.unwrap();
    post(p.at(0), "r", &b.peer, b"b speaks").await;
    // A's message 0 arrives at both instances (the first answer was lost): queued once.
    for i in 0..3 {
        p.at(i).post("r", &a.peer, Bytes::from_static(b"m0"), Some(0)).await.unwrap();
    }
    p.at(1).post("r", &a.peer, Bytes::from_static(b"m1"), Some(1)).await.unwrap();
    let gap = p.at(0).post("r", &a.peer, Bytes::from_static(b"m5"), Some(5)).await;
    assert_eq!(room_err(gap), RoomError::OutOfOrder { got: 5, expected: 2 });
    assert_eq!(RoomError::OutOfOrder { got: 5, expected: 2 }.status(), 400);
    // B reads message 0 twice (the first answer was lost), then acknowledges it.
    assert_eq!(read(p.at(0), "r", &b.peer, Some(0)).await, Some((0, Bytes::from_static(b"m0"))));
    assert_eq!(read(p.at(1), "r", &b.peer, Some(0)).await, Some((0, Bytes::from_static(b"m0"))));
    assert_eq!(read(p.at(0), "r", &b.peer, Some(1)).await, Some((1, Bytes::from_static(b"m1"))));
    assert_eq!(read(p.at(1), "r", &b.peer, Some(2)).await, None);
    // A message posted again after it was read and acknowledged is not delivered twice.
    p.at(0).post("r", &a.peer, Bytes::from_static(b"m1"), Some(1)).await.unwrap();
    assert_eq!(read(p.at(1), "r", &b.peer, Some(2)).await, None);
    // Reads without numbers still take the front at once.
    p.at(0).post("r", &a.peer, Bytes::from_static(b"m2"), Some(2)).await.unwrap();
    assert_eq!(read(p.at(1), "r", &b.peer, None).await, Some((2, Bytes::from_static(b"m2"))));
    assert_eq!(read(p.at(0), "r", &b.peer, None).await, None);
}

async fn a_join_repeated_with_its_key_gets_the_same_seat(kind: Kind) {
    let Some(p) = pair(kind, limits()) else { return };
    let a = p.at(0).join("r", ME, Some("k1")).await.unwrap();
    let again = p.at(1).join("r", ME, Some("k1")).await.unwrap();
    assert_eq!(again, a);
    post(p.at(0), "r", &a.peer, b"pake-a").await;
    let b = p.at(0).join("r", OTHER, Some("k2")).await.unwrap();
    assert_eq!(b.side, Side::B);
    assert_eq!(p.at(1).join("r", OTHER, Some("k2")).await.unwrap(), b);
    post(p.at(1), "r", &b.peer, b"pake-b").await;
    // Another key is a third peer.
    assert_eq!(room_err(p.at(0).join("r", OTHER, Some("k3")).await), RoomError::Full("r".into()));
    // A peer that left is not given its seat back: its seat is free, and it joins anew.
    p.at(1).leave("r", &a.peer).await.unwrap();
    let back = p.at(0).join("r", ME, Some("k1")).await.unwrap();
    assert_eq!(back.side, Side::A);
    assert_ne!(back.peer, a.peer);
}

async fn concurrent_joins_through_both_instances_fill_exactly_two_seats(kind: Kind) {
    let Some(p) = pair(kind, Limits { max_rooms_per_client: 100, ..limits() }) else { return };
    let joins = (0..16).map(|i| {
        let s = if i % 2 == 0 { p.one.clone() } else { p.two.clone() };
        tokio::spawn(async move { s.join("race", ME, None).await })
    });
    let mut sides = Vec::new();
    for j in joins {
        match j.await.unwrap() {
            Ok(joined) => sides.push(joined.side),
            Err(e) => assert_eq!(e.status(), 409, "{e}"),
        }
    }
    sides.sort_by_key(|s| *s == Side::B);
    assert_eq!(sides, vec![Side::A, Side::B]);
}

async fn a_room_closes_when_both_left_and_stays_finished(kind: Kind) {
    let Some(p) = pair(kind, limits()) else { return };
    let a = p.at(0).join("r", ME, None).await.unwrap();
    post(p.at(0), "r", &a.peer, b"pake").await;
    let b = p.at(1).join("r", ME, None).await.unwrap();
    post(p.at(1), "r", &b.peer, b"answer").await;
    p.at(0).leave("r", &b.peer).await.unwrap();
    // B is gone but A can still read what B sent.
    assert_eq!(read(p.at(1), "r", &a.peer, None).await.unwrap().1, &b"answer"[..]);
    p.at(1).leave("r", &a.peer).await.unwrap();
    let err = room_err(p.at(0).join("r", ME, None).await);
    assert_eq!((err.status(), err), (410, RoomError::Finished("r".into())));
    // Its network's unit is free again: two new rooms fit.
    p.at(0).join("s", ME, None).await.unwrap();
    p.at(1).join("t", ME, None).await.unwrap();
}

async fn idle_rooms_expire_on_access_and_on_sweep(kind: Kind) {
    let Some(p) = pair(kind, Limits { idle_ttl: TTL, ..limits() }) else { return };
    let a = p.at(0).join("r", ME, None).await.unwrap();
    post(p.at(0), "r", &a.peer, b"pake").await;
    let s = p.at(1).join("s", ME, None).await.unwrap();
    post(p.at(1), "s", &s.peer, b"pake").await;
    // Activity keeps a room alive: a read at half the TTL.
    tokio::time::sleep(TTL / 2 + Duration::from_millis(200)).await;
    assert_eq!(read(p.at(1), "s", &s.peer, None).await, None);
    tokio::time::sleep(TTL / 2 + Duration::from_millis(200)).await;
    assert_eq!(room_err(p.at(1).join("r", OTHER, None).await), RoomError::Expired("r".into()));
    assert_eq!(p.at(0).sweep().await.unwrap().expired, Vec::<String>::new());
    tokio::time::sleep(TTL / 2).await;
    assert_eq!(p.at(0).sweep().await.unwrap().expired, vec!["s".to_owned()]);
    let err = room_err(p.at(1).receive("s", &s.peer, None, Duration::ZERO).await);
    assert_eq!((err.status(), err), (410, RoomError::Expired("s".into())));
    // Both networks' units are back.
    p.at(0).join("u", ME, None).await.unwrap();
    p.at(0).join("v", ME, None).await.unwrap();
}

async fn a_silent_second_seat_is_freed_and_the_waiting_side_is_told(kind: Kind) {
    let Some(p) = pair(kind, Limits { claim_timeout: CLAIM, ..limits() }) else { return };
    let a = p.at(0).join("r", ME, None).await.unwrap();
    post(p.at(0), "r", &a.peer, b"pake").await;
    let squatter = p.at(1).join("r", OTHER, None).await.unwrap();
    // The squatter cannot take A's PAKE message away from the real peer.
    assert_eq!(read(p.at(0), "r", &squatter.peer, None).await, None);
    // The real peer is told when to come back.
    let err = room_err(p.at(1).join("r", ME, None).await);
    assert!(matches!(err, RoomError::SeatPending { .. }), "{err:?}");
    assert_eq!((err.status(), err.retry_after()), (409, Some(Duration::from_secs(1))));
    // A waits through one instance; the other's sweep frees the seat once the bound passed,
    // and A hears what happened.
    let two = p.two.clone();
    let peer = a.peer.clone();
    let waiting = tokio::spawn(async move { two.receive("r", &peer, None, CLAIM * 4).await });
    tokio::time::sleep(CLAIM + Duration::from_millis(200)).await;
    let swept = p.at(0).sweep().await.unwrap();
    assert_eq!(swept.evicted.len(), 1, "{swept:?}");
    assert_eq!((swept.evicted[0].side, swept.evicted[0].client), (Side::B, OTHER));
    let got = waiting.await.unwrap().unwrap();
    let Received::Notice(notice) = got else { panic!("wanted a notice, got {got:?}") };
    assert!(notice.starts_with("seat-freed: "), "{notice}");
    assert!(notice.contains("room r "), "{notice}");
    assert_eq!(read(p.at(0), "r", &a.peer, None).await, None);
    let gone = p.at(1).post("r", &squatter.peer, Bytes::new(), None).await;
    assert_eq!(room_err(gone).status(), 404);
    // The real peer takes the seat and gets A's PAKE message.
    let b = p.at(0).join("r", ME, None).await.unwrap();
    assert_eq!(b.side, Side::B);
    post(p.at(1), "r", &b.peer, b"pake-b").await;
    assert_eq!(read(p.at(0), "r", &b.peer, None).await.unwrap().1, &b"pake"[..]);
    assert_eq!(read(p.at(1), "r", &a.peer, None).await.unwrap().1, &b"pake-b"[..]);
}

async fn a_room_nobody_spoke_in_closes_after_the_claim_bound_and_is_not_remembered(kind: Kind) {
    let Some(p) = pair(kind, Limits { claim_timeout: CLAIM, ..limits() }) else { return };
    p.at(0).join("quiet", OTHER, None).await.unwrap();
    p.at(1).join("other", OTHER, None).await.unwrap();
    assert_eq!(p.at(0).sweep().await.unwrap().evicted, vec![], "not before the bound");
    tokio::time::sleep(CLAIM + Duration::from_millis(200)).await;
    let swept = p.at(1).sweep().await.unwrap();
    assert_eq!(swept.evicted.len(), 2, "{swept:?}");
    assert!(swept.evicted.iter().all(|e| e.room_closed && e.client == OTHER), "{swept:?}");
    assert!(swept.expired.is_empty());
    // The network's rooms are free again, and the id is not "gone".
    assert_eq!(p.at(0).join("quiet", OTHER, None).await.unwrap().side, Side::A);
    p.at(1).join("third", OTHER, None).await.unwrap();
}

async fn limits_per_network_in_all_and_per_inbox(kind: Kind) {
    let Some(p) = pair(kind, limits()) else { return };
    let a = p.at(0).join("a", ME, None).await.unwrap();
    let b = p.at(1).join("b", ME, None).await.unwrap();
    let mine = PrefixLens::default().of(ME);
    assert_eq!(room_err(p.at(0).join("c", ME, None).await), RoomError::ClientFull(mine, 2));
    p.at(1).join("c", OTHER, None).await.unwrap();
    assert_eq!(room_err(p.at(0).join("d", OTHER, None).await), RoomError::ServerFull(3));
    assert_eq!(RoomError::ServerFull(3).status(), 503);
    // Joining an existing room is not creating one.
    p.at(1).join("a", ME, None).await.unwrap();
    for i in 0..2 {
        p.at(i).post("a", &a.peer, Bytes::new(), None).await.unwrap();
    }
    let full = p.at(0).post("a", &a.peer, Bytes::new(), None).await;
    assert_eq!(room_err(full), RoomError::InboxFull(2));
    // Its only peer leaving closes a room and frees its owner's unit.
    p.at(0).leave("b", &b.peer).await.unwrap();
    assert_eq!(p.at(1).join("e", ME, None).await.unwrap().side, Side::A);
}

async fn the_last_tenth_is_kept_for_light_networks(kind: Kind) {
    // 20 rooms, 8 per network: the last 2 only for networks holding fewer than 2.
    let l = Limits { max_rooms: 20, max_rooms_per_client: 8, ..limits() };
    let Some(p) = pair(kind, l) else { return };
    let net = |i: u8| IpAddr::V4(Ipv4Addr::new(10, 0, i, 1));
    let mut n = 0;
    for i in 0..2 {
        for _ in 0..8 {
            p.at(n).join(&format!("r{n}"), net(i), None).await.unwrap();
            n += 1;
        }
    }
    p.at(n).join(&format!("r{n}"), net(2), None).await.unwrap();
    n += 1;
    p.at(n).join(&format!("r{n}"), net(2), None).await.unwrap();
    n += 1;
    // 18 open: the reserve is left, and network 2 holds 2.
    let heavy = PrefixLens::default().of(net(2));
    let err = room_err(p.at(n).join("x", net(2), None).await);
    assert_eq!((err.status(), err), (503, RoomError::Reserved(heavy, 2)));
    p.at(0).join("y", net(3), None).await.unwrap();
    p.at(1).join("z", net(4), None).await.unwrap();
    assert_eq!(room_err(p.at(0).join("w", net(5), None).await), RoomError::ServerFull(20));
}

// Faults only a shared store has.

async fn redis_pair(limits: Limits) -> Option<(RedisStore, RedisServer, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = RedisServer::start(dir.path()) else {
        common::skip("REDIS", "redis-server is not installed (apt-get install redis-server)");
        return None;
    };
    let store = RedisStore::open(&server.url(), limits).unwrap();
    Some((store, server, dir))
}

fn unavailable<T: std::fmt::Debug>(r: Result<T, StoreError>) -> StoreError {
    match r {
        Err(e @ StoreError::Unavailable(_)) => {
            assert_eq!((e.status(), e.retry_after()), (503, Some(Duration::from_secs(1))));
            e
        }
        other => panic!("wanted the store to be unavailable, got {other:?}"),
    }
}

async fn redis_down_is_unavailable_and_a_restarted_redis_serves_again() {
    let Some((store, mut server, _dir)) = redis_pair(limits()).await else { return };
    store.join("before", ME, None).await.unwrap();
    server.kill();
    unavailable(store.join("r", ME, None).await);
    unavailable(store.receive("before", "x", None, Duration::from_secs(1)).await);
    unavailable(store.sweep().await);
    server.restart();
    // The connection comes back by itself (within a few retries' backoff).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let joined = loop {
        match store.join("r", ME, None).await {
            Ok(j) => break j,
            Err(StoreError::Unavailable(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("after the restart: {e}"),
        }
    };
    assert_eq!(joined.side, Side::A);
    // The restarted server is empty (no persistence in this test): the old room is unknown.
    assert_eq!(room_err(store.leave("before", "x").await).status(), 404);
}

async fn a_stopped_redis_answers_unavailable_within_the_command_bound_then_recovers() {
    let Some((store, server, _dir)) = redis_pair(limits()).await else { return };
    let a = store.join("r", ME, None).await.unwrap();
    server.pause();
    let started = tokio::time::Instant::now();
    unavailable(store.post("r", &a.peer, Bytes::from_static(b"m"), Some(0)).await);
    // Bounded: the request does not hang on a Redis that stopped answering.
    assert!(started.elapsed() < COMMAND_TIMEOUT * 3, "{:?}", started.elapsed());
    server.resume();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match store.post("r", &a.peer, Bytes::from_static(b"m"), Some(0)).await {
            Ok(()) => break,
            Err(StoreError::Unavailable(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("after resuming: {e}"),
        }
    }
}

async fn a_peer_that_leaves_mid_rendezvous_frees_its_seat_and_the_other_side_starts_over(
    kind: Kind,
) {
    let Some(p) = pair(kind, Limits { max_queued: 4, ..limits() }) else { return };
    let a = p.at(0).join("r", ME, None).await.unwrap();
    post_n(p.at(0), "r", &a.peer, 0, b"a-pake").await;
    let b = p.at(1).join("r", OTHER, None).await.unwrap();
    post_n(p.at(1), "r", &b.peer, 0, b"b-pake").await;
    post_n(p.at(1), "r", &b.peer, 1, b"b-hello").await;
    assert_eq!(read(p.at(0), "r", &a.peer, Some(0)).await.unwrap().1, &b"b-pake"[..]);
    p.at(1).leave("r", &b.peer).await.unwrap();
    // The seat is free at once, and the one who left is no peer any more.
    let c = p.at(0).join("r", OTHER, None).await.unwrap();
    assert_eq!(c.side, Side::B);
    assert_eq!(room_err(p.at(1).post("r", &b.peer, Bytes::new(), Some(2)).await).status(), 404);
    // A posts before it has heard: meant for B, so nobody gets it.
    post_n(p.at(1), "r", &a.peer, 1, b"a-hello").await;
    post_n(p.at(0), "r", &c.peer, 0, b"c-pake").await;
    // A gets what B sent, then the notice, then C's messages; its numbers go on.
    assert_eq!(
        read(p.at(1), "r", &a.peer, Some(1)).await,
        Some((1, Bytes::from_static(b"b-hello")))
    );
    let told = notice(p.at(0), "r", &a.peer, Some(2)).await;
    assert_eq!(told, "peer-left: the other side of room r left; waiting for someone to join again");
    // C never sees the old exchange: it gets A's new PAKE message, as its message 0.
    assert_eq!(read(p.at(1), "r", &c.peer, Some(0)).await, None);
    post_n(p.at(0), "r", &a.peer, 2, b"a-pake-2").await;
    assert_eq!(
        read(p.at(1), "r", &c.peer, Some(0)).await,
        Some((0, Bytes::from_static(b"a-pake-2")))
    );
    assert_eq!(
        read(p.at(0), "r", &a.peer, Some(2)).await,
        Some((2, Bytes::from_static(b"c-pake")))
    );
}

/// A in room "r" through instance one and B through instance two, each having read the other's
/// PAKE message: a rendezvous under way.
async fn both_spoke(p: &Pair) -> (Joined, Joined) {
    let a = p.at(0).join("r", ME, None).await.unwrap();
    post(p.at(0), "r", &a.peer, b"pake").await;
    let b = p.at(1).join("r", OTHER, None).await.unwrap();
    post(p.at(1), "r", &b.peer, b"pake").await;
    assert!(read(p.at(1), "r", &b.peer, Some(0)).await.is_some());
    assert!(read(p.at(0), "r", &a.peer, Some(0)).await.is_some());
    (a, b)
}

async fn a_lost_peer_frees_its_seat_and_the_waiting_side_is_told(kind: Kind) {
    let Some(p) = pair(kind, Limits { presence_timeout: PRESENCE, ..limits() }) else { return };
    let (a, b) = both_spoke(&p).await;
    // A waits through instance two, far longer than the bound; B sends nothing more.
    let two = p.two.clone();
    let peer = a.peer.clone();
    let waiting = tokio::spawn(async move { two.receive("r", &peer, Some(1), PRESENCE * 5).await });
    tokio::time::sleep(PRESENCE + Duration::from_millis(300)).await;
    // The sweep frees the seat, unless A's poll reading again (Redis) found it lost first.
    let swept = p.at(0).sweep().await.unwrap();
    let freed: Vec<_> = swept.evicted.iter().map(|e| (e.side, e.why, e.room_closed)).collect();
    assert!(freed.iter().all(|f| *f == (Side::B, Departure::Lost, false)), "{swept:?}");
    let got = waiting.await.unwrap().unwrap();
    let Received::Notice(told) = got else { panic!("wanted a notice, got {got:?}") };
    assert!(told.starts_with("peer-left: the other side of room r stopped answering"), "{told}");
    assert_eq!(
        room_err(p.at(1).receive("r", &b.peer, Some(1), Duration::ZERO).await).status(),
        404
    );
    // A kept its seat; the next peer takes B's.
    assert_eq!(p.at(1).join("r", OTHER, None).await.unwrap().side, Side::B);
}

async fn open_long_polls_hold_their_seats_past_the_presence_bound(kind: Kind) {
    let Some(p) = pair(kind, Limits { presence_timeout: PRESENCE, ..limits() }) else { return };
    let (a, b) = both_spoke(&p).await;
    let wait = PRESENCE * 3;
    let poll = |store: Arc<dyn Store>, peer: String| {
        tokio::spawn(async move { store.receive("r", &peer, Some(1), wait).await })
    };
    // Both wait, each through its own instance; nothing else happens for three bounds.
    let (pa, pb) = (poll(p.one.clone(), a.peer.clone()), poll(p.two.clone(), b.peer.clone()));
    for _ in 0..5 {
        tokio::time::sleep(wait / 6).await;
        assert_eq!(p.at(0).sweep().await.unwrap().evicted, vec![]);
    }
    for got in [pa.await.unwrap().unwrap(), pb.await.unwrap().unwrap()] {
        assert_eq!(got, Received::Nothing);
    }
    assert_eq!(room_err(p.at(0).join("r", ME, None).await), RoomError::Full("r".into()));
}

async fn a_long_poll_whose_client_went_away_frees_the_seat_after_the_bound(kind: Kind) {
    let Some(p) = pair(kind, Limits { presence_timeout: PRESENCE, ..limits() }) else { return };
    let (a, b) = both_spoke(&p).await;
    // A waits all along, and keeps its seat.
    let one = p.one.clone();
    let peer = a.peer.clone();
    let waiting = tokio::spawn(async move { one.receive("r", &peer, Some(1), PRESENCE * 8).await });
    // B's long poll is dropped mid-wait, as the server drops it when its connection closes.
    let two = p.two.clone();
    let peer = b.peer.clone();
    let gone = tokio::spawn(async move { two.receive("r", &peer, Some(1), PRESENCE * 30).await });
    tokio::time::sleep(PRESENCE * 2).await;
    assert_eq!(p.at(0).sweep().await.unwrap().evicted, vec![], "held while the poll is open");
    gone.abort();
    let _ = gone.await;
    tokio::time::sleep(PRESENCE / 2).await;
    assert_eq!(p.at(0).sweep().await.unwrap().evicted, vec![], "not before the bound");
    tokio::time::sleep(PRESENCE / 2 + Duration::from_millis(300)).await;
    let swept = p.at(1).sweep().await.unwrap();
    let freed: Vec<_> = swept.evicted.iter().map(|e| (e.side, e.why)).collect();
    assert!(freed.iter().all(|f| *f == (Side::B, Departure::Lost)), "{swept:?}");
    let got = waiting.await.unwrap().unwrap();
    assert!(matches!(&got, Received::Notice(n) if n.starts_with("peer-left: ")), "{got:?}");
    assert_eq!(
        room_err(p.at(0).receive("r", &b.peer, Some(1), Duration::ZERO).await).status(),
        404
    );
}
