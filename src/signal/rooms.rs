//! The signaling server's room table: who is in which room, the messages waiting for each peer,
//! and every limit that keeps the server's memory bounded whatever clients send.
//!
//! A room holds at most two peers. The first to join is side A, the second side B; a third is
//! refused. Each side has an inbox of messages from the other, kept even before the other side
//! joins, so either may start first. A room ends when it has been idle for the TTL or when both
//! peers have left; its id is then remembered as gone (see [`REMEMBER_GONE`]), so a late or repeated
//! join is told "expired" or "finished" instead of silently starting a new room.
//!
//! One host must not be able to lock others out, so:
//! - clients are grouped by network ([`PrefixLens`]: IPv4 /24, IPv6 /64 by default), since one
//!   host often owns many addresses; limits count per network, not per address;
//! - a [`Quota`] caps what one network holds and keeps the last tenth of the capacity for
//!   networks that hold little, so a few networks cannot fill it (rooms here, connections in
//!   the server);
//! - a seat whose holder has not sent a message within [`Limits::claim_timeout`] is freed, and
//!   the peer waiting on the other seat is told: anyone who knows a room id can take its second
//!   seat (`curl -X POST`), but not keep it. A room nobody has spoken in thus closes after that
//!   bound rather than the TTL. A peer reads its inbox only after it spoke, so a squatter
//!   cannot consume the messages meant for the real peer.
//!
//! People leave: a peer that leaves (`DELETE`) or is lost (no request open and none for
//! [`Limits::presence_timeout`]: a killed process, a closed tab, a network gone) frees its seat
//! at once, so someone else can take it instead of finding the room "full" until the TTL.
//! What the other side had sent to it is dropped (nobody else may read the old exchange), and
//! the other side is told with a [`PEER_LEFT`] notice once it has read what the departed peer
//! had sent; until then what it posts is meant for the departed peer and is dropped too. It
//! then starts over (a new PAKE) with whoever joins next. A peer that leaves before it ever
//! spoke was a silent seat: the other side's messages stay for the next one.
//!
//! Pure bookkeeping: time comes in as `now`, nothing here does I/O. The server wraps it in a
//! mutex; each inbox carries a `Notify` so a long poll wakes when a message arrives.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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

/// Notices kept for one peer until it polls; older ones are dropped.
const MAX_NOTICES: usize = 4;

/// The kind of the notice a peer gets when the server freed the other seat. A notice is
/// `KIND: TEXT`, one line of ASCII: the kind for programs, the text for people.
pub const SEAT_FREED: &str = "seat-freed";

/// The kind of the notice a peer gets when the other side left or was lost after it spoke: the
/// exchange with it is over, and whoever joins next starts a new one.
pub const PEER_LEFT: &str = "peer-left";

/// How client addresses are grouped into networks: the leading bits that are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixLens {
    /// 0-32; 24 by default (one /24, the smallest block routed on the internet).
    pub v4: u8,
    /// 0-128; 64 by default (the block one IPv6 host is given, and can pick addresses from).
    pub v6: u8,
}

impl Default for PrefixLens {
    fn default() -> Self {
        Self { v4: 24, v6: 64 }
    }
}

impl PrefixLens {
    /// The network of `ip`. IPv4-mapped IPv6 addresses (a dual-stack listener) count as IPv4.
    pub fn of(self, ip: IpAddr) -> Prefix {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let len = self.v4.min(32);
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                Prefix { net: IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask)), len }
            }
            IpAddr::V6(v6) => {
                let len = self.v6.min(128);
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                Prefix { net: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)), len }
            }
        }
    }
}

/// A client's network: its address with the host bits cleared. Displays as `NET/LEN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    net: IpAddr,
    len: u8,
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.len)
    }
}

/// Why a [`Quota`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaRefusal {
    /// Everything is taken.
    Full,
    /// Only the reserve is left, and this network already holds a quarter of its own limit.
    Reserved,
    /// This network holds its limit.
    PrefixFull,
}

/// Counts what each network holds of a shared capacity (rooms, connections).
///
/// A network holds at most `per_prefix`. The last tenth of `total` (the reserve) goes only to
/// networks holding less than a quarter of `per_prefix`, so that filling the server takes many
/// networks: with 1000 rooms and 20 per network, 45 networks fill the first 900 and the last
/// 100 need 20 more networks, none of which held more than 4 rooms.
#[derive(Debug)]
pub struct Quota {
    total: usize,
    per_prefix: usize,
    reserve: usize,
    light: usize,
    used: usize,
    held: HashMap<Prefix, usize>,
}

impl Quota {
    /// A quota of `total` in all, `per_prefix` per network (both at least 1).
    pub fn new(total: usize, per_prefix: usize) -> Self {
        let (total, per_prefix) = (total.max(1), per_prefix.max(1));
        Self {
            total,
            per_prefix,
            reserve: total / 10,
            light: (per_prefix / 4).max(1),
            used: 0,
            held: HashMap::new(),
        }
    }

    /// Takes one unit for `prefix`, or says why not.
    pub fn try_acquire(&mut self, prefix: Prefix) -> Result<(), QuotaRefusal> {
        let held = self.held_by(prefix);
        if self.used >= self.total {
            return Err(QuotaRefusal::Full);
        }
        if held >= self.per_prefix {
            return Err(QuotaRefusal::PrefixFull);
        }
        if self.used >= self.total - self.reserve && held >= self.light {
            return Err(QuotaRefusal::Reserved);
        }
        self.used += 1;
        *self.held.entry(prefix).or_default() += 1;
        Ok(())
    }

    /// Gives back one unit of `prefix` (one it acquired; anything else is ignored).
    pub fn release(&mut self, prefix: Prefix) {
        let Some(n) = self.held.get_mut(&prefix) else {
            tracing::warn!(%prefix, "released a quota unit that was not held");
            return;
        };
        *n -= 1;
        if *n == 0 {
            self.held.remove(&prefix);
        }
        self.used -= 1;
    }

    /// Units held by `prefix`.
    pub fn held_by(&self, prefix: Prefix) -> usize {
        self.held.get(&prefix).copied().unwrap_or(0)
    }

    /// Units held in all.
    pub fn used(&self) -> usize {
        self.used
    }

    /// The total capacity.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The limit per network.
    pub fn per_prefix(&self) -> usize {
        self.per_prefix
    }
}

/// The server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rooms open at once, over all clients.
    pub max_rooms: usize,
    /// Rooms open at once that clients of one network ([`PrefixLens`]) created.
    pub max_rooms_per_client: usize,
    /// How clients are grouped into networks.
    pub prefix: PrefixLens,
    /// A room with no request from either peer for this long expires.
    pub idle_ttl: Duration,
    /// A peer that has sent no message this long after joining loses its seat (a dcsend peer
    /// sends its PAKE message at once); a room nobody has spoken in closes after this long.
    pub claim_timeout: Duration,
    /// Messages waiting in one inbox.
    pub max_queued: usize,
    /// A peer with no request open (a long poll holds its seat) and none for this long is lost:
    /// its seat is freed and the other side told. Bounds the pause between two requests of a
    /// live peer, so it must be well above a round trip.
    pub presence_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_rooms: 1000,
            max_rooms_per_client: 20,
            prefix: PrefixLens::default(),
            idle_ttl: Duration::from_secs(600),
            claim_timeout: Duration::from_secs(10),
            max_queued: 8,
            presence_timeout: Duration::from_secs(5),
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
    #[error(
        "the server is nearly full and keeps its last rooms for networks that hold few; \
         your network ({0}) holds {1}; try again later"
    )]
    Reserved(Prefix, usize),
    #[error("your network ({0}) has {1} rooms open, the limit per client; finish or wait for one")]
    ClientFull(Prefix, usize),
    #[error(
        "room {room} is full for now: its other seat was taken by a client that has not sent its \
         first message; the seat is freed in {}s if it stays silent", .retry_after.as_secs()
    )]
    SeatPending { room: String, retry_after: Duration },
    #[error("{0} messages are already waiting for the other peer; it is not reading them")]
    InboxFull(usize),
    #[error("message {got} came before message {expected}; send them in order")]
    OutOfOrder { got: u64, expected: u64 },
}

impl RoomError {
    /// The HTTP status that carries this error.
    pub fn status(&self) -> u16 {
        match self {
            RoomError::BadRoom | RoomError::OutOfOrder { .. } => 400,
            RoomError::NoRoom(_) | RoomError::NotAPeer(_) => 404,
            RoomError::Full(_) | RoomError::SeatPending { .. } => 409,
            RoomError::Expired(_) | RoomError::Finished(_) => 410,
            RoomError::ClientFull(..) | RoomError::InboxFull(_) => 429,
            RoomError::ServerFull(_) | RoomError::Reserved(..) => 503,
        }
    }

    /// How long to wait before trying again, when waiting helps.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RoomError::SeatPending { retry_after, .. } => Some(*retry_after),
            _ => None,
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
    /// The oldest waiting message and its number: the other side's messages are numbered 0, 1,
    /// ... in the order they were posted.
    Message { seq: u64, body: Bytes },
    /// Something the server tells this peer about its room: `KIND: TEXT` (see [`SEAT_FREED`]).
    Notice(String),
    /// Nothing yet: wait on this, then read again.
    Empty(Arc<Notify>),
}

/// Why a seat was freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// Its holder sent nothing within the claim bound.
    Silent,
    /// Its holder left (`DELETE`).
    Left,
    /// Its holder had no request open and none within the presence bound.
    Lost,
}

/// A seat freed without a `DELETE` (see [`Rooms::sweep`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evicted {
    pub room: String,
    pub side: Side,
    pub client: IpAddr,
    /// The room closed with it: nobody else was in it.
    pub room_closed: bool,
    /// [`Departure::Silent`] or [`Departure::Lost`].
    pub why: Departure,
}

/// What a sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Rooms closed for being idle past the TTL.
    pub expired: Vec<String>,
    /// Seats freed for silence or for a lost holder.
    pub evicted: Vec<Evicted>,
}

#[derive(Debug)]
struct Member {
    token: String,
    /// The join's idempotency key, if the client gave one: a join repeated with it (its answer
    /// was lost) gets this seat again instead of the other one.
    key: Option<String>,
    client: IpAddr,
    joined: Instant,
    /// It has posted a message: its seat is claimed.
    spoke: bool,
    /// Messages it has posted (the number its next one has, `?seq=`).
    posted: u64,
    /// Its seat is held until then, unless a long poll of its is open (see `polls`); every
    /// request moves it on.
    until: Instant,
    /// Its long polls open now.
    polls: u32,
    notices: VecDeque<String>,
    /// The other side left: the number of the first message in our inbox that is not from it,
    /// and the notice we get once we have read up to there. Until then what we post was meant
    /// for the peer that left, and is dropped.
    peer_left: Option<(u64, String)>,
}

impl Member {
    fn new(
        token: String,
        key: Option<&str>,
        client: IpAddr,
        now: Instant,
        lease: Duration,
    ) -> Self {
        let key = key.map(str::to_owned);
        Self {
            token,
            key,
            client,
            joined: now,
            spoke: false,
            posted: 0,
            until: now + lease,
            polls: 0,
            notices: VecDeque::new(),
            peer_left: None,
        }
    }

    /// A request of its arrived: its seat is held for `lease` more.
    fn seen(&mut self, now: Instant, lease: Duration) {
        self.until = self.until.max(now + lease);
    }

    fn lost(&self, now: Instant) -> bool {
        self.polls == 0 && now > self.until
    }

    fn tell(&mut self, notice: String) {
        if self.notices.len() >= MAX_NOTICES {
            self.notices.pop_front();
        }
        self.notices.push_back(notice);
    }
}

#[derive(Debug)]
struct Room {
    owner: Prefix,
    last_active: Instant,
    /// Indexed by side: A = 0, B = 1.
    members: [Option<Member>; 2],
    /// Messages waiting for each side, indexed like `members`.
    inboxes: [VecDeque<Bytes>; 2],
    /// The number of the message at the front of each inbox: the count of messages taken from
    /// it. The front's number plus the inbox's length is the number the next message gets.
    first: [u64; 2],
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
            .find(|&s| self.members[index(s)].as_ref().is_some_and(|m| m.token == token))
    }

    fn member(&mut self, side: Side) -> &mut Member {
        self.members[index(side)].as_mut().expect("side_of found this member")
    }

    fn wake_all(&self) {
        for w in &self.wakers {
            w.notify_one();
        }
    }

    /// The side of a member that has not spoken within `claim` of joining, or that is lost,
    /// if any, and why its seat is to be freed.
    fn to_free(&self, claim: Duration, now: Instant) -> Option<(Side, Departure)> {
        [Side::A, Side::B].into_iter().find_map(|s| {
            let m = self.members[index(s)].as_ref()?;
            if !m.spoke && now.duration_since(m.joined) > claim {
                Some((s, Departure::Silent))
            } else if m.lost(now) {
                Some((s, Departure::Lost))
            } else {
                None
            }
        })
    }
}

/// The room table.
#[derive(Debug)]
pub struct Rooms {
    limits: Limits,
    rooms: HashMap<String, Room>,
    quota: Quota,
    gone: HashMap<String, (Instant, Gone)>,
    gone_order: VecDeque<String>,
}

impl Rooms {
    /// An empty table.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            rooms: HashMap::new(),
            quota: Quota::new(limits.max_rooms, limits.max_rooms_per_client),
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
        self.free_due_seats(room, now);
        if let Some(err) = self.gone_error(room) {
            return Err(err);
        }
        self.rooms.get_mut(room).ok_or_else(|| RoomError::NoRoom(room.into()))
    }

    /// Joins `room` from `client`, creating it when it does not exist.
    pub fn join(&mut self, room: &str, client: IpAddr, now: Instant) -> Result<Joined, RoomError> {
        self.join_with(room, client, None, now)
    }

    /// [`Rooms::join`] with an idempotency `key`: if a present peer of the room joined with the
    /// same key, the answer is its seat again (the client is retrying a join whose answer it
    /// never got), not a second seat.
    pub fn join_with(
        &mut self,
        room: &str,
        client: IpAddr,
        key: Option<&str>,
        now: Instant,
    ) -> Result<Joined, RoomError> {
        let token = new_token();
        let (claim, lease) = (self.limits.claim_timeout, self.limits.presence_timeout);
        match self.open_room(room, now) {
            Ok(r) => {
                let again = [Side::A, Side::B].into_iter().find(|&s| {
                    r.members[index(s)]
                        .as_ref()
                        .is_some_and(|m| key.is_some() && m.key.as_deref() == key)
                });
                if let Some(side) = again {
                    r.last_active = now;
                    let me = r.member(side);
                    me.seen(now, lease);
                    return Ok(Joined { peer: me.token.clone(), side });
                }
                let Some(free) = r.members.iter().position(Option::is_none) else {
                    // A seat still within its claim bound will be freed if its holder stays
                    // silent: say when, so the real peer can come back.
                    let pending = r.members.iter().flatten().filter(|m| !m.spoke);
                    return Err(match pending.map(|m| m.joined + claim).min() {
                        Some(freed_at) => RoomError::SeatPending {
                            room: room.into(),
                            retry_after: retry_secs(freed_at.saturating_duration_since(now)),
                        },
                        None => RoomError::Full(room.into()),
                    });
                };
                r.members[free] = Some(Member::new(token.clone(), key, client, now, lease));
                r.last_active = now;
                let side = if free == 0 { Side::A } else { Side::B };
                Ok(Joined { peer: token, side })
            }
            Err(RoomError::NoRoom(_)) => {
                let owner = self.limits.prefix.of(client);
                self.quota.try_acquire(owner).map_err(|why| match why {
                    QuotaRefusal::Full => RoomError::ServerFull(self.quota.total()),
                    QuotaRefusal::Reserved => RoomError::Reserved(owner, self.quota.held_by(owner)),
                    QuotaRefusal::PrefixFull => {
                        RoomError::ClientFull(owner, self.quota.per_prefix())
                    }
                })?;
                self.rooms.insert(
                    room.to_owned(),
                    Room {
                        owner,
                        last_active: now,
                        members: [Some(Member::new(token.clone(), key, client, now, lease)), None],
                        inboxes: Default::default(),
                        first: [0, 0],
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
        self.post_seq(room, token, body, None, now)
    }

    /// [`Rooms::post`] with the message's number `seq` (0, 1, ... per peer), which makes a
    /// repeated post idempotent: a number already posted is accepted again without queueing a
    /// second copy, and one past the next is refused as out of order.
    ///
    /// While a notice that the other side left waits for this peer, what it posts was meant
    /// for the peer that left: it is accepted (and counted) but not queued.
    pub fn post_seq(
        &mut self,
        room: &str,
        token: &str,
        body: Bytes,
        seq: Option<u64>,
        now: Instant,
    ) -> Result<(), RoomError> {
        let (max_queued, lease) = (self.limits.max_queued, self.limits.presence_timeout);
        let r = self.open_room(room, now)?;
        let side = r.side_of(token).ok_or_else(|| RoomError::NotAPeer(room.into()))?;
        r.last_active = now;
        let to = index(side.other());
        let queued = r.inboxes[to].len();
        let me = r.member(side);
        me.seen(now, lease);
        let expected = me.posted;
        match seq {
            Some(got) if got < expected => return Ok(()),
            Some(got) if got > expected => return Err(RoomError::OutOfOrder { got, expected }),
            _ => {}
        }
        if me.peer_left.is_none() {
            if queued >= max_queued {
                return Err(RoomError::InboxFull(max_queued));
            }
            r.inboxes[to].push_back(body);
            r.wakers[to].notify_one();
        }
        let me = r.member(side);
        me.posted += 1;
        me.spoke = true;
        Ok(())
    }

    /// Takes the oldest message waiting for peer `token`.
    pub fn take(&mut self, room: &str, token: &str, now: Instant) -> Result<Take, RoomError> {
        self.take_acked(room, token, None, now)
    }

    /// Reads the oldest message waiting for peer `token`. Without `next` the message is taken
    /// off the inbox at once. With `next` (the number of the first message the peer has not
    /// received yet), the messages before it are dropped and the next one is returned but kept
    /// until a later read acknowledges it, so a read whose answer was lost can be repeated
    /// without losing the message.
    pub fn take_acked(
        &mut self,
        room: &str,
        token: &str,
        next: Option<u64>,
        now: Instant,
    ) -> Result<Take, RoomError> {
        let lease = self.limits.presence_timeout;
        let r = self.open_room(room, now)?;
        let side = r.side_of(token).ok_or_else(|| RoomError::NotAPeer(room.into()))?;
        r.last_active = now;
        let i = index(side);
        let me = r.members[i].as_mut().expect("side_of found this member");
        me.seen(now, lease);
        if let Some(notice) = me.notices.pop_front() {
            return Ok(Take::Notice(notice));
        }
        // Messages go only to a peer that has spoken: one that has not may be a squatter that
        // is about to lose its seat, and what it read would be lost to the real peer.
        if !me.spoke {
            return Ok(Take::Empty(r.wakers[i].clone()));
        }
        if let Some(next) = next {
            while r.first[i] < next && r.inboxes[i].pop_front().is_some() {
                r.first[i] += 1;
            }
        }
        let seq = r.first[i];
        // The other side left: what it sent comes first, then the notice, then the next peer's.
        let me = r.members[i].as_mut().expect("side_of found this member");
        if me.peer_left.as_ref().is_some_and(|(at, _)| seq >= *at) {
            let (_, notice) = me.peer_left.take().expect("checked");
            return Ok(Take::Notice(notice));
        }
        let ready = match next {
            Some(_) => r.inboxes[i].front().cloned(),
            None => r.inboxes[i].pop_front().inspect(|_| r.first[i] += 1),
        };
        Ok(match ready {
            Some(body) => Take::Message { seq, body },
            None => Take::Empty(r.wakers[i].clone()),
        })
    }

    /// Peer `token` leaves `room`, freeing its seat. The room closes when no peer is left in
    /// it. The other peer still reads what the one that left had sent, then a [`PEER_LEFT`]
    /// notice (or a [`SEAT_FREED`] one, if the peer that left never spoke).
    pub fn leave(&mut self, room: &str, token: &str, now: Instant) -> Result<(), RoomError> {
        let r = self.open_room(room, now)?;
        let side = r.side_of(token).ok_or_else(|| RoomError::NotAPeer(room.into()))?;
        r.last_active = now;
        self.depart(room, side, Departure::Left, now);
        Ok(())
    }

    /// A long poll of peer `token` starts: its seat is held until [`Rooms::poll_ended`].
    /// Returns false (and holds nothing) when `token` is not a peer of `room`.
    pub fn poll_started(&mut self, room: &str, token: &str) -> bool {
        let Some(r) = self.rooms.get_mut(room) else { return false };
        let Some(side) = r.side_of(token) else { return false };
        r.member(side).polls += 1;
        true
    }

    /// A long poll of peer `token` ended (answered, or its connection closed): its seat is held
    /// for the presence bound from `now` on, unless another of its polls is still open.
    pub fn poll_ended(&mut self, room: &str, token: &str, now: Instant) {
        let lease = self.limits.presence_timeout;
        let Some(r) = self.rooms.get_mut(room) else { return };
        let Some(side) = r.side_of(token) else { return };
        let me = r.member(side);
        me.polls = me.polls.saturating_sub(1);
        me.seen(now, lease);
    }

    /// Frees the seats of peers that have not spoken within [`Limits::claim_timeout`] or are
    /// lost ([`Limits::presence_timeout`]), telling the other side; expires idle rooms, and
    /// forgets gone rooms older than [`REMEMBER_GONE`].
    pub fn sweep(&mut self, now: Instant) -> Swept {
        let claim = self.limits.claim_timeout;
        let to_free: Vec<String> = self
            .rooms
            .iter()
            .filter(|(_, r)| r.to_free(claim, now).is_some())
            .map(|(id, _)| id.clone())
            .collect();
        let mut evicted = Vec::new();
        for id in to_free {
            evicted.extend(self.free_due_seats(&id, now));
        }
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
        Swept { expired: idle, evicted }
    }

    /// Frees the seats of `room` that [`Room::to_free`] names, one after the other; returns
    /// what was freed.
    fn free_due_seats(&mut self, room: &str, now: Instant) -> Vec<Evicted> {
        let claim = self.limits.claim_timeout;
        let mut evicted = Vec::new();
        while let Some((side, why)) = self.rooms.get(room).and_then(|r| r.to_free(claim, now)) {
            evicted.extend(self.depart(room, side, why, now));
        }
        evicted
    }

    /// Frees `side`'s seat in `room`. The other side, if present, is told; the room closes
    /// when nobody is left in it. Returns what happened, for a seat freed without a `DELETE`.
    ///
    /// A holder that never spoke read nothing: the other side's messages stay for whoever
    /// takes the seat next, and a room it leaves empty is not remembered unless it left by
    /// itself (nothing happened in it that a late peer should hear about). A holder that spoke took part in an exchange that
    /// is over: what the other side sent it is dropped, and the other side gets a
    /// [`PEER_LEFT`] notice after the last message the holder sent.
    fn depart(&mut self, room: &str, side: Side, why: Departure, now: Instant) -> Option<Evicted> {
        let (claim, lease) = (self.limits.claim_timeout, self.limits.presence_timeout);
        let r = self.rooms.get_mut(room)?;
        let (i, o) = (index(side), index(side.other()));
        let gone = r.members[i].take()?;
        r.wakers[i].notify_one();
        if gone.spoke {
            r.inboxes[i].clear();
            r.first[i] = 0;
        }
        let room_closed = r.members[o].is_none();
        let (first, queued) = (r.first[o], r.inboxes[o].len());
        if let Some(other) = r.members[o].as_mut() {
            if !gone.spoke {
                other.tell(seat_freed_notice(room, why, claim));
            } else {
                // Already told of an earlier peer and not read it yet: what came after that
                // notice was from this one, which is gone too.
                let at = match &other.peer_left {
                    Some((at, _)) => *at,
                    None => first + queued as u64,
                };
                r.inboxes[o].truncate(usize::try_from(at.saturating_sub(first)).unwrap_or(0));
                other.peer_left = Some((at, peer_left_notice(room, why, lease)));
            }
            r.wakers[o].notify_one();
        } else if why == Departure::Left {
            // A late peer hears that the room is over, not that it is new.
            self.close(room, Gone::Finished, now);
        } else if gone.spoke {
            self.close(room, Gone::Expired, now);
        } else {
            let r = self.rooms.remove(room)?;
            r.wake_all();
            self.quota.release(r.owner);
        }
        // Logged here, since a join or a poll frees a seat as well as the sweep does.
        match why {
            Departure::Left => {
                tracing::info!(room, ?side, client = %gone.client, room_closed, "left");
                return None;
            }
            Departure::Silent => tracing::info!(
                room, ?side, client = %gone.client, room_closed,
                "freed a seat: its holder sent no message in time"
            ),
            Departure::Lost => tracing::info!(
                room, ?side, client = %gone.client, room_closed,
                "freed a seat: its holder is gone (no request for {})",
                humantime::format_duration(lease)
            ),
        }
        Some(Evicted { room: room.to_owned(), side, client: gone.client, room_closed, why })
    }

    fn close(&mut self, room: &str, why: Gone, now: Instant) {
        let Some(r) = self.rooms.remove(room) else { return };
        r.wake_all();
        self.quota.release(r.owner);
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

/// The notice the peer waiting in `room` gets when the other seat's holder lost it before it
/// ever spoke (`why`: for silence, or it left or was lost).
pub fn seat_freed_notice(room: &str, why: Departure, claim: Duration) -> String {
    match why {
        Departure::Silent => format!(
            "{SEAT_FREED}: a client took the other seat of room {room} but sent no PAKE message \
             within {}s (not a dcsend peer with the secret); the server freed the seat, still \
             waiting for the real peer",
            claim.as_secs_f64()
        ),
        Departure::Left | Departure::Lost => format!(
            "{SEAT_FREED}: a client took the other seat of room {room} and left before sending \
             a PAKE message; still waiting for the real peer"
        ),
    }
}

/// The notice the peer in `room` gets when the other side, which had spoken, left (`why`).
pub fn peer_left_notice(room: &str, why: Departure, presence: Duration) -> String {
    let how = match why {
        Departure::Lost => format!(
            "stopped answering (nothing from it for {})",
            humantime::format_duration(presence)
        ),
        Departure::Left | Departure::Silent => "left".to_owned(),
    };
    format!("{PEER_LEFT}: the other side of room {room} {how}; waiting for someone to join again")
}

/// Whole seconds to wait, rounded up, at least 1: `Retry-After` counts in seconds.
pub(crate) fn retry_secs(left: Duration) -> Duration {
    Duration::from_secs(left.as_secs() + u64::from(left.subsec_nanos() > 0))
        .max(Duration::from_secs(1))
}

/// A peer token: 128 random bits, hex.
pub(crate) fn new_token() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    const CLAIM: Duration = Duration::from_secs(5);

    fn limits() -> Limits {
        Limits {
            max_rooms: 3,
            max_rooms_per_client: 2,
            prefix: PrefixLens::default(),
            idle_ttl: Duration::from_secs(10),
            claim_timeout: CLAIM,
            max_queued: 2,
            // Long, so that only the tests of presence see peers lost.
            presence_timeout: Duration::from_secs(60),
        }
    }

    fn message(rooms: &mut Rooms, room: &str, token: &str, now: Instant) -> Option<Bytes> {
        match rooms.take(room, token, now).unwrap() {
            Take::Message { body, .. } => Some(body),
            Take::Notice(n) => panic!("unexpected notice: {n}"),
            Take::Empty(_) => None,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Joins `room` and speaks at once, as a dcsend peer does (its PAKE message).
    fn join_and_speak(rooms: &mut Rooms, room: &str, client: IpAddr, now: Instant) -> Joined {
        let j = rooms.join(room, client, now).unwrap();
        rooms.post(room, &j.peer, Bytes::from_static(b"pake"), now).unwrap();
        j
    }

    #[test]
    fn prefixes_group_a_host_and_its_neighbours() {
        let lens = PrefixLens::default();
        assert_eq!(lens.of(ip("192.0.2.7")), lens.of(ip("192.0.2.250")));
        assert_ne!(lens.of(ip("192.0.2.7")), lens.of(ip("192.0.3.7")));
        assert_eq!(lens.of(ip("192.0.2.7")).to_string(), "192.0.2.0/24");
        // One IPv6 host picks any address in its /64.
        assert_eq!(lens.of(ip("2001:db8:1:2::1")), lens.of(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(lens.of(ip("2001:db8:1:2::1")), lens.of(ip("2001:db8:1:3::1")));
        assert_eq!(lens.of(ip("2001:db8:1:2:3:4:5:6")).to_string(), "2001:db8:1:2::/64");
        // A dual-stack listener sees IPv4 clients as mapped addresses.
        assert_eq!(lens.of(ip("::ffff:192.0.2.9")), lens.of(ip("192.0.2.7")));
        // Configurable, including the extremes (and lengths past the end are clamped).
        let exact = PrefixLens { v4: 32, v6: 128 };
        assert_ne!(exact.of(ip("192.0.2.7")), exact.of(ip("192.0.2.8")));
        assert_eq!(exact.of(ip("2001:db8::1")).to_string(), "2001:db8::1/128");
        let all = PrefixLens { v4: 0, v6: 0 };
        assert_eq!(all.of(ip("1.2.3.4")), all.of(ip("200.2.3.4")));
        assert_eq!(all.of(ip("1.2.3.4")).to_string(), "0.0.0.0/0");
        assert_eq!(PrefixLens { v4: 99, v6: 200 }.of(ip("1.2.3.4")).to_string(), "1.2.3.4/32");
    }

    #[test]
    fn quota_caps_each_network_and_keeps_a_reserve_for_light_ones() {
        let lens = PrefixLens::default();
        let net = |i: u8| lens.of(IpAddr::V4(Ipv4Addr::new(10, 0, i, 1)));
        // 100 in all, 20 per network: the last 10 only for networks holding fewer than 5.
        let mut q = Quota::new(100, 20);
        for i in 0..4 {
            for _ in 0..20 {
                q.try_acquire(net(i)).unwrap();
            }
            assert_eq!(q.try_acquire(net(i)), Err(QuotaRefusal::PrefixFull));
        }
        for _ in 0..10 {
            q.try_acquire(net(4)).unwrap();
        }
        assert_eq!(q.used(), 90);
        // Network 4 holds 10 (a heavy user): the reserve is not for it.
        assert_eq!(q.try_acquire(net(4)), Err(QuotaRefusal::Reserved));
        // Light networks get the reserve, each up to 5.
        for _ in 0..5 {
            q.try_acquire(net(5)).unwrap();
        }
        assert_eq!(q.try_acquire(net(5)), Err(QuotaRefusal::Reserved));
        for _ in 0..5 {
            q.try_acquire(net(6)).unwrap();
        }
        assert_eq!(q.try_acquire(net(7)), Err(QuotaRefusal::Full));
        // Releasing gives the unit back to everyone.
        q.release(net(0));
        assert_eq!(q.held_by(net(0)), 19);
        assert_eq!(q.try_acquire(net(7)), Ok(()));
        // A release of something never held changes nothing.
        q.release(net(9));
        assert_eq!(q.used(), 100);
    }

    #[test]
    fn a_small_quota_has_no_reserve_and_one_per_network_still_works() {
        let p = PrefixLens::default().of(ME);
        let mut q = Quota::new(3, 1);
        assert_eq!(q.try_acquire(p), Ok(()));
        assert_eq!(q.try_acquire(p), Err(QuotaRefusal::PrefixFull));
        let mut q = Quota::new(0, 0); // clamped to 1 and 1
        assert_eq!(q.try_acquire(p), Ok(()));
        assert_eq!(q.try_acquire(p), Err(QuotaRefusal::Full));
    }

    #[test]
    fn many_addresses_of_one_network_cannot_fill_the_rooms() {
        let t = Instant::now();
        let mut rooms = Rooms::new(Limits { max_rooms: 50, max_rooms_per_client: 5, ..limits() });
        let mut opened = 0;
        for host in 2..=55 {
            for n in 0..5 {
                let client = IpAddr::V4(Ipv4Addr::new(127, 0, 0, host));
                if rooms.join(&format!("r{host}x{n}"), client, t).is_ok() {
                    opened += 1;
                }
            }
        }
        assert_eq!(opened, 5, "127.0.0.2-55 are one network");
        let err = rooms.join("mine", ME, t).unwrap_err();
        assert_eq!(err.status(), 429);
        assert!(err.to_string().contains("127.0.0.0/24"), "{err}");
        assert!(rooms.join("yours", IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1)), t).is_ok());
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
        // B reads only once it spoke.
        assert_eq!(message(&mut rooms, "r", &b.peer, t), None);
        rooms.post("r", &b.peer, Bytes::from_static(b"3"), t).unwrap();
        assert_eq!(rooms.join("r", OTHER, t), Err(RoomError::Full("r".into())));
        assert_eq!(message(&mut rooms, "r", &b.peer, t).as_deref(), Some(&b"1"[..]));
        assert_eq!(message(&mut rooms, "r", &b.peer, t).as_deref(), Some(&b"2"[..]));
        assert_eq!(message(&mut rooms, "r", &b.peer, t), None);
        assert_eq!(message(&mut rooms, "r", &a.peer, t).as_deref(), Some(&b"3"[..]));
        assert_eq!(message(&mut rooms, "r", &a.peer, t), None);
        assert_eq!(rooms.take("r", "guess", t).unwrap_err().status(), 404);
    }

    #[test]
    fn room_closes_when_both_left_and_stays_gone() {
        let t = Instant::now();
        let mut rooms = Rooms::new(limits());
        let a = join_and_speak(&mut rooms, "r", ME, t);
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
        let a = join_and_speak(&mut rooms, "r", ME, t);
        join_and_speak(&mut rooms, "s", ME, t);
        let later = t + Duration::from_secs(11);
        assert_eq!(rooms.join("r", OTHER, later), Err(RoomError::Expired("r".into())));
        assert_eq!(rooms.take("r", &a.peer, later).unwrap_err(), RoomError::Expired("r".into()));
        assert_eq!(rooms.sweep(later).expired, vec!["s".to_owned()]);
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
        let a = join_and_speak(&mut rooms, "r", ME, t);
        for s in 1..5 {
            let now = t + Duration::from_secs(8 * s);
            assert!(matches!(rooms.take("r", &a.peer, now), Ok(Take::Empty(_))));
        }
        assert_eq!(rooms.sweep(t + Duration::from_secs(40)), Swept::default());
    }

    #[test]
    fn a_room_nobody_spoke_in_closes_after_the_claim_bound_and_is_not_remembered() {
        let t = Instant::now();
        let mut rooms = Rooms::new(limits());
        rooms.join("quiet", OTHER, t).unwrap();
        rooms.join("other", OTHER, t).unwrap();
        assert_eq!(rooms.sweep(t + CLAIM), Swept::default(), "not before the bound");
        let swept = rooms.sweep(t + CLAIM + Duration::from_millis(1));
        assert_eq!(swept.evicted.len(), 2);
        assert!(swept.evicted.iter().all(|e| e.room_closed && e.client == OTHER));
        assert!(swept.expired.is_empty());
        assert!(rooms.is_empty());
        // Its network's quota is free again, and the id is not "gone".
        assert_eq!(rooms.quota.used(), 0);
        assert_eq!(rooms.join("quiet", OTHER, t + CLAIM * 2).map(|j| j.side), Ok(Side::A));
    }

    #[test]
    fn a_silent_second_seat_is_freed_and_the_waiting_side_is_told() {
        let t = Instant::now();
        let mut rooms = Rooms::new(limits());
        let a = join_and_speak(&mut rooms, "r", ME, t);
        let squatter = rooms.join("r", OTHER, t + Duration::from_secs(1)).unwrap();
        // The squatter cannot take A's PAKE message away from the real peer.
        assert_eq!(message(&mut rooms, "r", &squatter.peer, t), None);
        // The real peer is told when to come back.
        let err = rooms.join("r", ME, t + Duration::from_secs(2)).unwrap_err();
        assert_eq!(
            err,
            RoomError::SeatPending { room: "r".into(), retry_after: Duration::from_secs(4) }
        );
        assert_eq!((err.status(), err.retry_after()), (409, Some(Duration::from_secs(4))));
        // A keeps waiting without a word until the bound passes...
        assert_eq!(message(&mut rooms, "r", &a.peer, t + CLAIM), None);
        let freed = t + Duration::from_secs(1) + CLAIM + Duration::from_millis(1);
        let swept = rooms.sweep(freed);
        assert_eq!(
            swept.evicted,
            vec![Evicted {
                room: "r".into(),
                side: Side::B,
                client: OTHER,
                room_closed: false,
                why: Departure::Silent
            }]
        );
        // ...then hears what happened, once.
        match rooms.take("r", &a.peer, freed).unwrap() {
            Take::Notice(n) => {
                assert!(n.starts_with("seat-freed: "), "{n}");
                assert!(n.contains("sent no PAKE message within 5s"), "{n}");
            }
            other => panic!("wanted a notice, got {other:?}"),
        }
        assert_eq!(message(&mut rooms, "r", &a.peer, freed), None);
        assert_eq!(rooms.post("r", &squatter.peer, Bytes::new(), freed).unwrap_err().status(), 404);
        // The real peer takes the seat and gets A's PAKE message.
        let b = join_and_speak(&mut rooms, "r", ME, freed);
        assert_eq!(b.side, Side::B);
        assert_eq!(message(&mut rooms, "r", &b.peer, freed).as_deref(), Some(&b"pake"[..]));
        assert_eq!(message(&mut rooms, "r", &a.peer, freed).as_deref(), Some(&b"pake"[..]));
    }

    #[test]
    fn a_silent_seat_is_freed_on_access_too() {
        let t = Instant::now();
        let mut rooms = Rooms::new(limits());
        join_and_speak(&mut rooms, "r", ME, t);
        rooms.join("r", OTHER, t).unwrap();
        // No sweep ran: the join itself frees the seat whose bound has passed.
        let later = t + CLAIM + Duration::from_secs(1);
        assert_eq!(rooms.join("r", ME, later).map(|j| j.side), Ok(Side::B));
    }

    #[test]
    fn limits_per_client_total_and_inbox() {
        let t = Instant::now();
        let mut rooms = Rooms::new(limits());
        let a = rooms.join("a", ME, t).unwrap();
        let b = rooms.join("b", ME, t).unwrap();
        let mine = PrefixLens::default().of(ME);
        assert_eq!(rooms.join("c", ME, t), Err(RoomError::ClientFull(mine, 2)));
        rooms.join("c", OTHER, t).unwrap();
        assert_eq!(rooms.join("d", OTHER, t), Err(RoomError::ServerFull(3)));
        // Joining an existing room is not creating one.
        rooms.join("a", ME, t).unwrap();
        for _ in 0..2 {
            rooms.post("a", &a.peer, Bytes::new(), t).unwrap();
        }
        assert_eq!(rooms.post("a", &a.peer, Bytes::new(), t), Err(RoomError::InboxFull(2)));
        // Its only peer leaving closes a room and frees its owner's quota.
        rooms.leave("b", &b.peer, t).unwrap();
        assert_eq!(rooms.join("e", ME, t).map(|j| j.side), Ok(Side::A));
        assert_eq!(RoomError::BadRoom, rooms.join("../etc", ME, t).unwrap_err());
    }

    #[test]
    fn numbered_posts_and_acknowledged_reads_can_be_repeated() {
        let t = Instant::now();
        let mut rooms = Rooms::new(Limits { max_queued: 3, ..limits() });
        let a = rooms.join_with("r", ME, Some("ka"), t).unwrap();
        assert_eq!(rooms.join_with("r", ME, Some("ka"), t).unwrap(), a, "same key, same seat");
        let b = join_and_speak(&mut rooms, "r", OTHER, t);
        for _ in 0..2 {
            rooms.post_seq("r", &a.peer, Bytes::from_static(b"m0"), Some(0), t).unwrap();
        }
        rooms.post_seq("r", &a.peer, Bytes::from_static(b"m1"), Some(1), t).unwrap();
        let gap = rooms.post_seq("r", &a.peer, Bytes::new(), Some(3), t);
        assert_eq!(gap, Err(RoomError::OutOfOrder { got: 3, expected: 2 }));
        let read = |rooms: &mut Rooms, next| match rooms.take_acked("r", &b.peer, next, t) {
            Ok(Take::Message { seq, body }) => Some((seq, body)),
            _ => None,
        };
        assert_eq!(read(&mut rooms, Some(0)), Some((0, Bytes::from_static(b"m0"))));
        assert_eq!(read(&mut rooms, Some(0)), Some((0, Bytes::from_static(b"m0"))));
        assert_eq!(read(&mut rooms, Some(1)), Some((1, Bytes::from_static(b"m1"))));
        assert_eq!(read(&mut rooms, Some(2)), None);
        // Both acknowledged: the inbox is empty, and a late repeat of m1 is not queued again.
        rooms.post_seq("r", &a.peer, Bytes::from_static(b"m1"), Some(1), t).unwrap();
        assert_eq!(read(&mut rooms, Some(2)), None);
    }

    fn notice(
        rooms: &mut Rooms,
        room: &str,
        token: &str,
        next: Option<u64>,
        now: Instant,
    ) -> String {
        match rooms.take_acked(room, token, next, now).unwrap() {
            Take::Notice(n) => n,
            other => panic!("wanted a notice, got {other:?}"),
        }
    }

    fn numbered(rooms: &mut Rooms, token: &str, next: u64, now: Instant) -> Option<(u64, Bytes)> {
        match rooms.take_acked("r", token, Some(next), now).unwrap() {
            Take::Message { seq, body } => Some((seq, body)),
            Take::Notice(n) => panic!("unexpected notice: {n}"),
            Take::Empty(_) => None,
        }
    }

    #[test]
    fn a_peer_that_leaves_frees_its_seat_and_the_other_side_starts_over() {
        let t = Instant::now();
        let mut rooms = Rooms::new(Limits { max_queued: 4, ..limits() });
        let a = rooms.join("r", ME, t).unwrap();
        rooms.post_seq("r", &a.peer, Bytes::from_static(b"a-pake"), Some(0), t).unwrap();
        let b = rooms.join("r", OTHER, t).unwrap();
        rooms.post_seq("r", &b.peer, Bytes::from_static(b"b-pake"), Some(0), t).unwrap();
        rooms.post_seq("r", &b.peer, Bytes::from_static(b"b-hello"), Some(1), t).unwrap();
        assert_eq!(numbered(&mut rooms, &b.peer, 0, t), Some((0, Bytes::from_static(b"a-pake"))));
        assert_eq!(numbered(&mut rooms, &a.peer, 0, t), Some((0, Bytes::from_static(b"b-pake"))));
        rooms.leave("r", &b.peer, t).unwrap();
        // The seat is free at once: the room is not "full".
        let c = rooms.join("r", OTHER, t).unwrap();
        assert_eq!(c.side, Side::B);
        // A posts before it has heard: that was meant for B, and nobody gets it.
        rooms.post_seq("r", &a.peer, Bytes::from_static(b"a-hello"), Some(1), t).unwrap();
        rooms.post_seq("r", &c.peer, Bytes::from_static(b"c-pake"), Some(0), t).unwrap();
        // A reads what B sent first, then hears that B left, then gets C's messages.
        assert_eq!(numbered(&mut rooms, &a.peer, 1, t), Some((1, Bytes::from_static(b"b-hello"))));
        let left = notice(&mut rooms, "r", &a.peer, Some(2), t);
        assert_eq!(
            left,
            "peer-left: the other side of room r left; waiting for someone to join again"
        );
        // C never sees the old exchange: its inbox starts with A's new PAKE message, at 0.
        assert_eq!(numbered(&mut rooms, &c.peer, 0, t), None);
        rooms.post_seq("r", &a.peer, Bytes::from_static(b"a-pake-2"), Some(2), t).unwrap();
        assert_eq!(numbered(&mut rooms, &c.peer, 0, t), Some((0, Bytes::from_static(b"a-pake-2"))));
        assert_eq!(numbered(&mut rooms, &a.peer, 2, t), Some((2, Bytes::from_static(b"c-pake"))));
        // The old token is no peer any more.
        assert_eq!(rooms.post("r", &b.peer, Bytes::new(), t).unwrap_err().status(), 404);
    }

    #[test]
    fn a_second_peer_gone_before_the_notice_was_read_takes_its_messages_along() {
        let t = Instant::now();
        let mut rooms = Rooms::new(limits());
        let a = join_and_speak(&mut rooms, "r", ME, t);
        let b = join_and_speak(&mut rooms, "r", OTHER, t);
        rooms.leave("r", &b.peer, t).unwrap();
        let c = join_and_speak(&mut rooms, "r", OTHER, t);
        rooms.leave("r", &c.peer, t).unwrap();
        // A gets B's message, one notice, and nothing of C's.
        assert_eq!(numbered(&mut rooms, &a.peer, 0, t), Some((0, Bytes::from_static(b"pake"))));
        assert!(notice(&mut rooms, "r", &a.peer, Some(1), t).starts_with("peer-left: "));
        assert_eq!(numbered(&mut rooms, &a.peer, 1, t), None);
    }

    #[test]
    fn a_lost_peer_frees_its_seat_but_an_open_long_poll_holds_it() {
        const PRESENCE: Duration = Duration::from_secs(3);
        let t = Instant::now();
        let mut rooms = Rooms::new(Limits { presence_timeout: PRESENCE, ..limits() });
        let a = join_and_speak(&mut rooms, "r", ME, t);
        let b = join_and_speak(&mut rooms, "r", OTHER, t);
        // A waits in a long poll far longer than the bound; B goes quiet.
        assert!(rooms.poll_started("r", &a.peer));
        assert_eq!(rooms.sweep(t + PRESENCE), Swept::default(), "not before the bound");
        let lost = t + PRESENCE + Duration::from_millis(1);
        let swept = rooms.sweep(lost);
        let why = swept.evicted.iter().map(|e| (e.side, e.why, e.room_closed)).collect::<Vec<_>>();
        assert_eq!(why, vec![(Side::B, Departure::Lost, false)]);
        assert_eq!(rooms.take("r", &b.peer, lost).unwrap_err().status(), 404);
        // A is still there well past the bound, told once its poll reads again.
        let later = t + Duration::from_secs(8);
        assert!(rooms.sweep(later).evicted.is_empty());
        rooms.poll_ended("r", &a.peer, later);
        let told = notice(&mut rooms, "r", &a.peer, Some(1), later);
        assert!(told.contains("stopped answering (nothing from it for 3s)"), "{told}");
        // A poll that ends (its connection closed) starts the bound: then A is lost too, and
        // the room ends as expired.
        let gone = later + PRESENCE + Duration::from_millis(1);
        assert_eq!(rooms.sweep(gone).evicted.len(), 1);
        assert!(rooms.is_empty());
        assert_eq!(rooms.join("r", ME, gone), Err(RoomError::Expired("r".into())));
    }

    #[test]
    fn a_silent_peer_that_leaves_leaves_the_other_sides_messages_for_the_next() {
        let t = Instant::now();
        let mut rooms = Rooms::new(limits());
        let a = join_and_speak(&mut rooms, "r", ME, t);
        let squatter = rooms.join("r", OTHER, t).unwrap();
        rooms.leave("r", &squatter.peer, t).unwrap();
        let told = notice(&mut rooms, "r", &a.peer, None, t);
        assert!(told.starts_with("seat-freed: ") && told.contains("left before"), "{told}");
        let b = join_and_speak(&mut rooms, "r", OTHER, t);
        assert_eq!(message(&mut rooms, "r", &b.peer, t).as_deref(), Some(&b"pake"[..]));
        // The last one out ends the room, remembered as finished.
        rooms.leave("r", &a.peer, t).unwrap();
        rooms.leave("r", &b.peer, t).unwrap();
        assert_eq!(rooms.join("r", ME, t), Err(RoomError::Finished("r".into())));
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
        assert_eq!(rooms.quota.used(), 0);
    }
}
