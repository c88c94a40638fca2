//! The signaling server's room table: who is in which room, the messages waiting for each peer,
//! and every limit that keeps the server's memory bounded whatever clients send.
//!
//! A room holds at most two peers. The first to join is side A, the second side B; a third is
//! refused. Each side has an inbox of messages from the other, kept even before the other side
//! joins, so either may start first. A room ends when it has been idle for the TTL or when both
//! peers have left; its id is then remembered as gone (see [`REMEMBER_GONE`]), so a late or repeated
//! join is told "expired" or "finished" instead of silently starting a new room.
//!
//! Pure bookkeeping: time comes in as `now`, nothing here does I/O. The server wraps it in a
//! mutex; each inbox carries a `Notify` so a long poll wakes when a message arrives.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::RngExt as _;
use tokio::sync::Notify;

use crate::signal::seal::Side;
use crate::signal::url::valid_room;

/// How long the id of a finished or expired room is remembered (at most `max_rooms` of them),
/// so that a late peer hears why instead of waiting alone in a new room of the same name.
pub const REMEMBER_GONE: Duration = Duration::from_secs(3600);

/// The server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rooms open at once, over all clients.
    pub max_rooms: usize,
    /// Rooms open at once that one client address created.
    pub max_rooms_per_client: usize,
    /// A room with no request from either peer for this long expires.
    pub idle_ttl: Duration,
    /// Messages waiting in one inbox.
    pub max_queued: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_rooms: 1000,
            max_rooms_per_client: 20,
            idle_ttl: Duration::from_secs(600),
            max_queued: 8,
        }
    }
}

/// Why a room is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// Idle past the TTL.
    Expired,
    /// Both peers left (or one left before the other came).
    Finished,
}

/// A refused request. `status` gives its HTTP status; `Display` its one-line reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    #[error("not a valid room id (1-64 characters of a-z, A-Z, 0-9, - and _)")]
    BadRoom,
    #[error("room {0} is full: two peers are already in it")]
    Full(String),
    #[error("room {0} has expired (idle too long); start a new one")]
    Expired(String),
    #[error("room {0} is finished (both peers left); start a new one")]
    Finished(String),
    #[error("no such room: {0}")]
    NoRoom(String),
    #[error("not a peer of room {0}")]
    NotAPeer(String),
    #[error("the server has {0} rooms open, its limit; try again later")]
    ServerFull(usize),
    #[error("this address has {0} rooms open, the limit per client; finish or wait for one")]
    ClientFull(usize),
    #[error("{0} messages are already waiting for the other peer; it is not reading them")]
    InboxFull(usize),
}

impl RoomError {
    /// The HTTP status that carries this error.
    pub fn status(&self) -> u16 {
        match self {
            RoomError::BadRoom => 400,
            RoomError::NoRoom(_) | RoomError::NotAPeer(_) => 404,
            RoomError::Full(_) => 409,
            RoomError::Expired(_) | RoomError::Finished(_) => 410,
            RoomError::ClientFull(_) | RoomError::InboxFull(_) => 429,
            RoomError::ServerFull(_) => 503,
        }
    }
}

/// A successful join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The peer's token: its name in the room's URLs, known only to it.
    pub peer: String,
    /// A (first) or B (second).
    pub side: Side,
}

/// What a read of an inbox found.
#[derive(Debug)]
pub enum Take {
    /// The oldest waiting message.
    Message(Bytes),
    /// Nothing yet: wait on this, then read again.
    Empty(Arc<Notify>),
}

#[derive(Debug)]
struct Member {
    token: String,
    left: bool,
}

#[derive(Debug)]
struct Room {
    owner: IpAddr,
    last_active: Instant,
    /// Indexed by side: A = 0, B = 1.
    members: [Option<Member>; 2],
    /// Messages waiting for each side, indexed like `members`.
    inboxes: [VecDeque<Bytes>; 2],
    wakers: [Arc<Notify>; 2],
}

fn index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

impl Room {
    fn side_of(&self, token: &str) -> Option<Side> {
        [Side::A, Side::B]
            .into_iter()
            .find(|&s| self.members[index(s)].as_ref().is_some_and(|m| !m.left && m.token == token))
    }

    fn wake_all(&self) {
        for w in &self.wakers {
            w.notify_one();
        }
    }
}

/// The room table.
#[derive(Debug)]
pub struct Rooms {
    limits: Limits,
    rooms: HashMap<String, Room>,
    per_client: HashMap<IpAddr, usize>,
    gone: HashMap<String, (Instant, Gone)>,
    gone_order: VecDeque<String>,
}

impl Rooms {
    /// An empty table.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            rooms: HashMap::new(),
            per_client: HashMap::new(),
            gone: HashMap::new(),
            gone_order: VecDeque::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// True when no room is open.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    fn gone_error(&self, room: &str) -> Option<RoomError> {
        self.gone.get(room).map(|(_, why)| match why {
            Gone::Expired => RoomError::Expired(room.into()),
            Gone::Finished => RoomError::Finished(room.into()),
        })
    }

    /// Looks up an open room, expiring it first if its TTL has passed.
    fn open_room(&mut self, room: &str, now: Instant) -> Result<&mut Room, RoomError> {
        if !valid_room(room) {
            return Err(RoomError::BadRoom);
        }
        if self
            .rooms
            .get(room)
            .is_some_and(|r| now.duration_since(r.last_active) > self.limits.idle_ttl)
        {
            self.close(room, Gone::Expired, now);
        }
        if let Some(err) = self.gone_error(room) {
            return Err(err);
        }
        self.rooms.get_mut(room).ok_or_else(|| RoomError::NoRoom(room.into()))
    }

    /// Joins `room` from `client`, creating it when it does not exist.
    pub fn join(&mut self, room: &str, client: IpAddr, now: Instant) -> Result<Joined, RoomError> {
        let token = new_token();
        match self.open_room(room, now) {
            Ok(r) => {
                let Some(free) = r.members.iter().position(Option::is_none) else {
                    return Err(RoomError::Full(room.into()));
                };
                r.members[free] = Some(Member { token: token.clone(), left: false });
                r.last_active = now;
                let side = if free == 0 { Side::A } else { Side::B };
                Ok(Joined { peer: token, side })
            }
            Err(RoomError::NoRoom(_)) => {
                if self.rooms.len() >= self.limits.max_rooms {
                    return Err(RoomError::ServerFull(self.limits.max_rooms));
                }
                let mine = self.per_client.entry(client).or_default();
                if *mine >= self.limits.max_rooms_per_client {
                    return Err(RoomError::ClientFull(self.limits.max_rooms_per_client));
                }
                *mine += 1;
                self.rooms.insert(
                    room.to_owned(),
                    Room {
                        owner: client,
                        last_active: now,
                        members: [Some(Member { token: token.clone(), left: false }), None],
                        inboxes: Default::default(),
                        wakers: Default::default(),
                    },
                );
                Ok(Joined { peer: token, side: Side::A })
            }
            Err(e) => Err(e),
        }
    }

    /// Queues `body` from peer `token` for the other side of `room`.
    pub fn post(
        &mut self,
        room: &str,
        token: &str,
        body: Bytes,
        now: Instant,
    ) -> Result<(), RoomError> {
        let max_queued = self.limits.max_queued;
        let r = self.open_room(room, now)?;
        let side = r.side_of(token).ok_or_else(|| RoomError::NotAPeer(room.into()))?;
        let to = index(side.other());
        if r.inboxes[to].len() >= max_queued {
            return Err(RoomError::InboxFull(max_queued));
        }
        r.inboxes[to].push_back(body);
        r.last_active = now;
        r.wakers[to].notify_one();
        Ok(())
    }

    /// Takes the oldest message waiting for peer `token`.
    pub fn take(&mut self, room: &str, token: &str, now: Instant) -> Result<Take, RoomError> {
        let r = self.open_room(room, now)?;
        let side = r.side_of(token).ok_or_else(|| RoomError::NotAPeer(room.into()))?;
        r.last_active = now;
        let i = index(side);
        Ok(match r.inboxes[i].pop_front() {
            Some(msg) => Take::Message(msg),
            None => Take::Empty(r.wakers[i].clone()),
        })
    }

    /// Peer `token` leaves `room`. The room closes when no peer is left in it; messages already
    /// queued for a peer that is still there stay readable until it leaves too.
    pub fn leave(&mut self, room: &str, token: &str, now: Instant) -> Result<(), RoomError> {
        let r = self.open_room(room, now)?;
        let side = r.side_of(token).ok_or_else(|| RoomError::NotAPeer(room.into()))?;
        if let Some(m) = r.members[index(side)].as_mut() {
            m.left = true;
        }
        r.last_active = now;
        let anyone_left_in = r.members.iter().flatten().any(|m| !m.left);
        // A peer that leaves before the other joined ends the room: nobody would answer.
        if !anyone_left_in {
            self.close(room, Gone::Finished, now);
        } else {
            r.wake_all();
        }
        Ok(())
    }

    /// Expires idle rooms and forgets gone rooms older than [`REMEMBER_GONE`]. Returns the
    /// expired ids.
    pub fn sweep(&mut self, now: Instant) -> Vec<String> {
        let ttl = self.limits.idle_ttl;
        let idle: Vec<String> = self
            .rooms
            .iter()
            .filter(|(_, r)| now.duration_since(r.last_active) > ttl)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &idle {
            self.close(id, Gone::Expired, now);
        }
        while let Some(id) = self.gone_order.front() {
            match self.gone.get(id) {
                Some((at, _)) if now.duration_since(*at) <= REMEMBER_GONE => break,
                _ => {
                    let id = self.gone_order.pop_front().expect("front exists");
                    self.gone.remove(&id);
                }
            }
        }
        idle
    }

    fn close(&mut self, room: &str, why: Gone, now: Instant) {
        let Some(r) = self.rooms.remove(room) else { return };
        r.wake_all();
        if let Some(n) = self.per_client.get_mut(&r.owner) {
            *n -= 1;
            if *n == 0 {
                self.per_client.remove(&r.owner);
            }
        }
        // Remember at most as many gone rooms as open ones may exist, oldest forgotten first.
        if self.gone_order.len() >= self.limits.max_rooms.max(1)
            && let Some(old) = self.gone_order.pop_front()
        {
            self.gone.remove(&old);
        }
        if self.gone.insert(room.to_owned(), (now, why)).is_none() {
            self.gone_order.push_back(room.to_owned());
        }
    }

    /// Ends every room (server shutdown), waking every long poll.
    pub fn close_all(&mut self, now: Instant) {
        let ids: Vec<String> = self.rooms.keys().cloned().collect();
        for id in ids {
            self.close(&id, Gone::Expired, now);
        }
    }
}

/// A peer token: 128 random bits, hex.
fn new_token() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn limits() -> Limits {
        Limits {
            max_rooms: 3,
            max_rooms_per_client: 2,
            idle_ttl: Duration::from_secs(10),
            max_queued: 2,
        }
    }

    fn message(rooms: &mut Rooms, room: &str, token: &str, now: Instant) -> Option<Bytes> {
        match rooms.take(room, token, now).unwrap() {
            Take::Message(m) => Some(m),
            Take::Empty(_) => None,
        }
    }

    #[test]
    fn two_peers_exchange_in_order_and_a_third_is_refused() {
        let t = Instant::now();
        let mut rooms = Rooms::new(limits());
        let a = rooms.join("r", ME, t).unwrap();
        assert_eq!(a.side, Side::A);
        // A may speak before B arrives.
        rooms.post("r", &a.peer, Bytes::from_static(b"1"), t).unwrap();
        rooms.post("r", &a.peer, Bytes::from_static(b"2"), t).unwrap();
        let b = rooms.join("r", OTHER, t).unwrap();
        assert_eq!(b.side, Side::B);
        assert_ne!(a.peer, b.peer);
        assert_eq!(rooms.join("r", OTHER, t), Err(RoomError::Full("r".into())));
        assert_eq!(message(&mut rooms, "r", &b.peer, t).as_deref(), Some(&b"1"[..]));
        assert_eq!(message(&mut rooms, "r", &b.peer, t).as_deref(), Some(&b"2"[..]));
        assert_eq!(message(&mut rooms, "r", &b.peer, t), None);
        assert_eq!(message(&mut rooms, "r", &a.peer, t), None);
        assert_eq!(rooms.take("r", "guess", t).unwrap_err().status(), 404);
    }

    #[test]
    fn room_closes_when_both_left_and_stays_gone() {
        let t = Instant::now();
        let mut rooms = Rooms::new(limits());
        let a = rooms.join("r", ME, t).unwrap();
        let b = rooms.join("r", ME, t).unwrap();
        rooms.post("r", &b.peer, Bytes::from_static(b"answer"), t).unwrap();
        rooms.leave("r", &b.peer, t).unwrap();
        // B is gone but A can still read what B sent.
        assert_eq!(message(&mut rooms, "r", &a.peer, t).as_deref(), Some(&b"answer"[..]));
        rooms.leave("r", &a.peer, t).unwrap();
        assert!(rooms.is_empty());
        assert_eq!(rooms.join("r", ME, t), Err(RoomError::Finished("r".into())));
        assert_eq!(RoomError::Finished("r".into()).status(), 410);
    }

    #[test]
    fn idle_rooms_expire_on_access_and_on_sweep() {
        let t = Instant::now();
        let mut rooms = Rooms::new(limits());
        let a = rooms.join("r", ME, t).unwrap();
        rooms.join("s", ME, t).unwrap();
        let later = t + Duration::from_secs(11);
        assert_eq!(rooms.join("r", OTHER, later), Err(RoomError::Expired("r".into())));
        assert_eq!(rooms.take("r", &a.peer, later).unwrap_err(), RoomError::Expired("r".into()));
        assert_eq!(rooms.sweep(later), vec!["s".to_owned()]);
        assert!(rooms.is_empty());
        // Still gone well after the TTL, then forgotten: the id may be used again.
        let much_later = later + Duration::from_secs(60);
        rooms.sweep(much_later);
        assert_eq!(rooms.join("r", ME, much_later), Err(RoomError::Expired("r".into())));
        let forgotten = later + REMEMBER_GONE + Duration::from_secs(1);
        rooms.sweep(forgotten);
        assert!(rooms.join("r", ME, forgotten).is_ok());
    }

    #[test]
    fn activity_keeps_a_room_alive() {
        let t = Instant::now();
        let mut rooms = Rooms::new(limits());
        let a = rooms.join("r", ME, t).unwrap();
        for s in 1..5 {
            let now = t + Duration::from_secs(8 * s);
            assert!(matches!(rooms.take("r", &a.peer, now), Ok(Take::Empty(_))));
        }
        assert!(rooms.sweep(t + Duration::from_secs(40)).is_empty());
    }

    #[test]
    fn limits_per_client_total_and_inbox() {
        let t = Instant::now();
        let mut rooms = Rooms::new(limits());
        let a = rooms.join("a", ME, t).unwrap();
        let b = rooms.join("b", ME, t).unwrap();
        assert_eq!(rooms.join("c", ME, t), Err(RoomError::ClientFull(2)));
        rooms.join("c", OTHER, t).unwrap();
        assert_eq!(rooms.join("d", OTHER, t), Err(RoomError::ServerFull(3)));
        // Joining an existing room is not creating one.
        rooms.join("a", ME, t).unwrap();
        for _ in 0..2 {
            rooms.post("a", &a.peer, Bytes::new(), t).unwrap();
        }
        assert_eq!(rooms.post("a", &a.peer, Bytes::new(), t), Err(RoomError::InboxFull(2)));
        // Closing a room frees its owner's quota.
        // Its only peer leaving closes a room and frees its owner's quota.
        rooms.leave("b", &b.peer, t).unwrap();
        assert_eq!(rooms.join("e", ME, t).map(|j| j.side), Ok(Side::A));
        assert_eq!(RoomError::BadRoom, rooms.join("../etc", ME, t).unwrap_err());
    }

    #[test]
    fn gone_rooms_are_bounded() {
        let t = Instant::now();
        let mut rooms = Rooms::new(Limits { max_rooms_per_client: 100, ..limits() });
        for i in 0..50 {
            let id = format!("r{i}");
            let a = rooms.join(&id, ME, t).unwrap();
            rooms.leave(&id, &a.peer, t).unwrap();
        }
        assert!(rooms.gone.len() <= 3 && rooms.gone_order.len() <= 3);
        assert!(rooms.per_client.is_empty());
    }
}
