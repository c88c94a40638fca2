//! The Redis store: rooms that any number of `dcsend signal` instances share.
//!
//! Every operation is one Lua script (`EVALSHA`, loaded again by the client after a Redis
//! restart), so it runs atomically on the Redis server with the same rules as the in-memory
//! [`Rooms`](crate::signal::rooms::Rooms): no two instances can give away the same seat or
//! take the same message, and the quotas stay exact. Time is Redis's own (`TIME`), so
//! instances on hosts with different clocks agree on expiry and claim bounds.
//!
//! Keys (all under `dcsend:`): `r:ROOM` (a hash: owner network, last activity, and per side
//! `a.`/`b.` the token, client, join time, spoke, join key, the number of the first message in
//! its inbox, the count of messages it posted, the end of its lease, and where a notice that the
//! other side left waits), `r:ROOM:in:a|b` (inboxes, lists), `r:ROOM:nt:a|b` (notices, as
//! codes), `rooms` (a sorted set by last activity, for expiry), `claims` (a sorted set by the
//! time the first silent seat's claim bound passes), `leases` (a sorted set by the time the
//! first seat's lease ends), `used` and `held` (the room quota, in all and per
//! network), `g:ROOM` (why a room ended, expiring after an hour) and `gone` (a sorted set that
//! bounds how many ended rooms are remembered). The scripts touch keys they compute, so this
//! needs a single Redis server (or a primary with replicas, e.g. under Sentinel), not Redis
//! Cluster.
//!
//! Presence: every request of a peer extends its lease by the presence bound, and a long poll,
//! which reads again at least every [`RECHECK`] (or half the presence bound, if shorter), holds
//! it for one such period more. A long poll whose connection closes ends its lease at once
//! plus the presence bound; an instance that dies leaves leases that run out by themselves.
//!
//! Long polls wake through Redis pub/sub: every change to a room publishes the room's id on
//! `dcsend:wake`; each instance holds one subscriber connection and wakes its own long polls of
//! that room, which then read again with the atomic script. Pub/sub suits this because the
//! wake-up carries no data: a wake-up lost (pub/sub is at most once, e.g. while the subscriber
//! reconnects) costs latency, never a message, and every long poll reads again at least every
//! [`RECHECK`] and as soon as the subscriber is back. Blocking list pops or stream reads
//! would need one Redis connection per waiting long poll (a blocked connection cannot be
//! shared), and could not express "only a peer that has spoken may read". (Pub/sub channels
//! are not per database: deployments sharing one Redis server in different databases wake
//! each other's long polls for nothing, which costs a read each and nothing else.)
//!
//! Faults: every command is bounded by [`COMMAND_TIMEOUT`]; when Redis is down, unreachable
//! or that slow, requests are answered `503` with `Retry-After: 1`, one line is logged when it
//! happens and one when it is back, and the connection is re-established in the background.
//! Requests of one instance share one multiplexed connection and no lock, so a slow command
//! for one room does not hold up others beyond Redis's own speed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, ScriptInvocation, Value};
use tokio::sync::Notify;

use crate::signal::rooms::{
    Departure, Evicted, Joined, Limits, REMEMBER_GONE, RoomError, Swept, peer_left_notice,
    retry_secs, seat_freed_notice,
};
use crate::signal::seal::Side;
use crate::signal::store::{Received, Store, StoreError};
use crate::signal::url::valid_room;

/// Every key this store uses starts with this.
pub const KEY_PREFIX: &str = "dcsend:";

/// The pub/sub channel on which changes to a room are announced (the payload is its id).
const WAKE_CHANNEL: &str = "dcsend:wake";

/// Bound on one Redis command (connecting included). Past it the request is answered `503`.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// A long poll reads again at least this often, whatever pub/sub says.
pub const RECHECK: Duration = Duration::from_secs(5);

/// Rooms a sweep handles per script call, so that one call never blocks Redis for long.
const SWEEP_BATCH: usize = 200;

/// Helpers every script starts with. `ARGV[1..7]` are the same for all scripts (see
/// [`common_args`]); a script's own arguments start at `ARGV[8]`.
const PRELUDE: &str = r"
local P = ARGV[1]
local TTL = tonumber(ARGV[2])
local CLAIM = tonumber(ARGV[3])
local MAX_GONE = tonumber(ARGV[4])
local REMEMBER = tonumber(ARGV[5])
local PRESENCE = tonumber(ARGV[6])
local HOLD = tonumber(ARGV[7])
local t = redis.call('TIME')
local NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local WAKE = P .. 'wake'
local SIDES = {'a', 'b'}

local function rk(room) return P .. 'r:' .. room end
local function other(s) if s == 'a' then return 'b' end return 'a' end
local function field(k, s, f) return redis.call('HGET', k, s .. '.' .. f) end
local function seated(k, s) return redis.call('HEXISTS', k, s .. '.tok') == 1 end
local function silent(k, s) return seated(k, s) and field(k, s, 'spoke') ~= '1' end
local function lost(k, s) return seated(k, s) and NOW > tonumber(field(k, s, 'until') or '0') end

local function touch(room, k)
  redis.call('HSET', k, 'last', NOW)
  redis.call('ZADD', P .. 'rooms', NOW, room)
end

local function side_of(k, token)
  for _, s in ipairs(SIDES) do
    if seated(k, s) and field(k, s, 'tok') == token then return s end
  end
  return nil
end

-- Keeps the room's entry in the sorted set `index` at the earliest time `due_of(k, s)` gives
-- for its seats (nil: none for that seat), or takes it out when no seat has one.
local function schedule(room, index, due_of)
  local k = rk(room)
  local due = nil
  for _, s in ipairs(SIDES) do
    local d = due_of(k, s)
    if d and (not due or d < due) then due = d end
  end
  if due then redis.call('ZADD', P .. index, due, room)
  else redis.call('ZREM', P .. index, room) end
end

-- Keeps the room's entry in `claims` at the time its first silent seat's bound passes.
local function reclaim(room)
  schedule(room, 'claims', function(k, s)
    if silent(k, s) then return tonumber(field(k, s, 'at')) + CLAIM end
  end)
end

-- Keeps the room's entry in `leases` at the time the first seat's lease ends.
local function relet(room)
  schedule(room, 'leases', function(k, s)
    if seated(k, s) then return tonumber(field(k, s, 'until') or '0') end
  end)
end

-- A request of side s arrived: its lease runs at least until `till`.
local function seen(room, k, s, till)
  if till > tonumber(field(k, s, 'until') or '0') then
    redis.call('HSET', k, s .. '.until', till)
    relet(room)
  end
end

-- The side whose seat is to be freed and why: silent past the claim bound, or lost.
local function to_free(k)
  for _, s in ipairs(SIDES) do
    if silent(k, s) and NOW - tonumber(field(k, s, 'at')) > CLAIM then return s, 'silent' end
    if lost(k, s) then return s, 'lost' end
  end
  return nil
end

local function release(owner)
  if redis.call('HINCRBY', P .. 'held', owner, -1) <= 0 then redis.call('HDEL', P .. 'held', owner) end
  redis.call('DECR', P .. 'used')
end

-- Removes every key of the room and gives its unit of the quota back.
local function drop(room)
  local k = rk(room)
  local owner = redis.call('HGET', k, 'owner')
  redis.call('DEL', k, k .. ':in:a', k .. ':in:b', k .. ':nt:a', k .. ':nt:b')
  redis.call('ZREM', P .. 'rooms', room)
  redis.call('ZREM', P .. 'claims', room)
  redis.call('ZREM', P .. 'leases', room)
  if owner then release(owner) end
  redis.call('PUBLISH', WAKE, room)
end

-- Ends the room and remembers why, at most MAX_GONE ids, oldest forgotten first.
local function close(room, why)
  drop(room)
  redis.call('SET', P .. 'g:' .. room, why, 'PX', REMEMBER)
  redis.call('ZADD', P .. 'gone', NOW, room)
  while redis.call('ZCARD', P .. 'gone') > MAX_GONE do
    local old = redis.call('ZPOPMIN', P .. 'gone')
    redis.call('DEL', P .. 'g:' .. old[1])
  end
end

-- Frees side s's seat (why: 'silent', 'left' or 'lost'), as `Rooms::depart` does: a holder
-- that never spoke leaves the other side's messages for the next one and a seat-freed notice
-- (the code `why`); one that spoke takes what was sent to it along, and the other side gets
-- the peer-left notice after the last message from it. An empty room closes, remembered if
-- its last peer left by itself or had spoken.
local function depart(room, s, why)
  local k = rk(room)
  local client = field(k, s, 'cli')
  local spoke = field(k, s, 'spoke') == '1'
  redis.call('HDEL', k, s .. '.tok', s .. '.cli', s .. '.at', s .. '.spoke', s .. '.key',
    s .. '.sent', s .. '.until', s .. '.pla', s .. '.plw')
  redis.call('DEL', k .. ':nt:' .. s)
  if spoke then
    redis.call('DEL', k .. ':in:' .. s)
    redis.call('HDEL', k, s .. '.first')
  end
  local o = other(s)
  local closed = 0
  if seated(k, o) then
    if not spoke then
      local nt = k .. ':nt:' .. o
      redis.call('RPUSH', nt, why)
      redis.call('LTRIM', nt, -4, -1)
    else
      local inbox = k .. ':in:' .. o
      local first = tonumber(field(k, o, 'first') or '0')
      local at = tonumber(field(k, o, 'pla') or '-1')
      if at < 0 then at = first + redis.call('LLEN', inbox) end
      if at <= first then redis.call('DEL', inbox) else redis.call('LTRIM', inbox, 0, at - first - 1) end
      redis.call('HSET', k, o .. '.pla', at, o .. '.plw', why)
    end
    reclaim(room)
    relet(room)
    redis.call('PUBLISH', WAKE, room)
  elseif why == 'left' then
    close(room, 'finished')
    closed = 1
  elseif spoke then
    close(room, 'expired')
    closed = 1
  else
    drop(room)
    closed = 1
  end
  return {room, s, client, closed, why}
end

-- Frees the seats of the room (key k) that `to_free` names, one after the other, as
-- `Rooms::free_due_seats` does; what each `depart` returned goes into `evicted`, if given.
local function free_due(room, k, evicted)
  local s, why = to_free(k)
  while s do
    local gone = depart(room, s, why)
    if evicted then table.insert(evicted, gone) end
    if redis.call('EXISTS', k) == 0 then break end
    s, why = to_free(k)
  end
end

-- The open room's key, after expiring it or freeing seats whose bounds passed; or nil and the
-- refusal.
local function open(room)
  local k = rk(room)
  if redis.call('EXISTS', k) == 1 then
    if NOW - tonumber(redis.call('HGET', k, 'last')) > TTL then
      close(room, 'expired')
    else
      free_due(room, k)
    end
  end
  local gone = redis.call('GET', P .. 'g:' .. room)
  if gone then return nil, {'err', gone} end
  if redis.call('EXISTS', k) == 0 then return nil, {'err', 'noroom'} end
  return k
end

-- The room of a peer's request (opened as above), and the peer's side in it, after noting the
-- room's activity; or nil, nil and the error to return.
local function peer_of(room, token)
  local k, err = open(room)
  if not k then return nil, nil, err end
  local s = side_of(k, token)
  if not s then return nil, nil, {'err', 'notpeer'} end
  touch(room, k)
  return k, s
end

local function seat(room, k, s, token, client, key)
  redis.call('HSET', k, s .. '.tok', token, s .. '.cli', client, s .. '.at', NOW,
    s .. '.spoke', '0', s .. '.sent', '0', s .. '.until', NOW + PRESENCE)
  if key ~= '' then redis.call('HSET', k, s .. '.key', key) end
  relet(room)
end
";

/// `ARGV[8..]`: room, token, client, network, join key or "", total rooms, rooms per network.
const JOIN: &str = r"
local room, token, client, prefix, key = ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local k, err = open(room)
if k then
  if key ~= '' then
    for _, s in ipairs(SIDES) do
      if seated(k, s) and field(k, s, 'key') == key then
        touch(room, k)
        seen(room, k, s, NOW + PRESENCE)
        return {'ok', s, field(k, s, 'tok')}
      end
    end
  end
  local free = nil
  for _, s in ipairs(SIDES) do
    if not free and not seated(k, s) then free = s end
  end
  if not free then
    local due = nil
    for _, s in ipairs(SIDES) do
      if silent(k, s) then
        local d = tonumber(field(k, s, 'at')) + CLAIM
        if not due or d < due then due = d end
      end
    end
    if due then return {'err', 'pending', tostring(due - NOW)} end
    return {'err', 'full'}
  end
  seat(room, k, free, token, client, key)
  touch(room, k)
  reclaim(room)
  return {'ok', free, token}
end
if err[2] ~= 'noroom' then return err end
local total, per = tonumber(ARGV[13]), tonumber(ARGV[14])
local used = tonumber(redis.call('GET', P .. 'used') or '0')
local held = tonumber(redis.call('HGET', P .. 'held', prefix) or '0')
if used >= total then return {'err', 'serverfull'} end
if held >= per then return {'err', 'clientfull'} end
if used >= total - math.floor(total / 10) and held >= math.max(math.floor(per / 4), 1) then
  return {'err', 'reserved', tostring(held)}
end
redis.call('INCR', P .. 'used')
redis.call('HINCRBY', P .. 'held', prefix, 1)
k = rk(room)
redis.call('HSET', k, 'owner', prefix)
seat(room, k, 'a', token, client, key)
touch(room, k)
reclaim(room)
return {'ok', 'a', token}
";

/// `ARGV[8..]`: room, token, body, message number or -1, inbox limit.
const POST: &str = r"
local room, token = ARGV[8], ARGV[9]
local k, s, err = peer_of(room, token)
if not k then return err end
seen(room, k, s, NOW + PRESENCE)
local inbox = k .. ':in:' .. other(s)
local expected = tonumber(field(k, s, 'sent') or '0')
local seq = tonumber(ARGV[11])
if seq >= 0 then
  if seq < expected then return {'ok'} end
  if seq > expected then return {'err', 'order', tostring(seq), tostring(expected)} end
end
-- While a notice that the other side left waits for us, what we post was meant for it.
if not field(k, s, 'pla') then
  if redis.call('LLEN', inbox) >= tonumber(ARGV[12]) then return {'err', 'inboxfull'} end
  redis.call('RPUSH', inbox, ARGV[10])
end
redis.call('HSET', k, s .. '.sent', expected + 1)
if field(k, s, 'spoke') ~= '1' then
  redis.call('HSET', k, s .. '.spoke', '1')
  reclaim(room)
end
redis.call('PUBLISH', WAKE, room)
return {'ok'}
";

/// `ARGV[8..]`: room, token, number of the first message not received yet or -1, 1 if a long
/// poll will read again (its seat is held for `HOLD`) or 0.
const TAKE: &str = r"
local room, token = ARGV[8], ARGV[9]
local k, s, err = peer_of(room, token)
if not k then return err end
if ARGV[11] == '1' then seen(room, k, s, NOW + HOLD) else seen(room, k, s, NOW + PRESENCE) end
local notice = redis.call('LPOP', k .. ':nt:' .. s)
if notice then return {'notice', notice} end
if field(k, s, 'spoke') ~= '1' then return {'empty'} end
local inbox = k .. ':in:' .. s
local first = tonumber(field(k, s, 'first') or '0')
local nxt = tonumber(ARGV[10])
local body
if nxt >= 0 then
  while first < nxt and redis.call('LPOP', inbox) do first = first + 1 end
  redis.call('HSET', k, s .. '.first', tostring(first))
end
-- The other side left: what it sent comes first, then the notice, then the next peer's.
local at = tonumber(field(k, s, 'pla') or '-1')
if at >= 0 and first >= at then
  local why = field(k, s, 'plw')
  redis.call('HDEL', k, s .. '.pla', s .. '.plw')
  return {'left', why}
end
if nxt >= 0 then
  body = redis.call('LINDEX', inbox, 0)
else
  body = redis.call('LPOP', inbox)
  if body then redis.call('HSET', k, s .. '.first', tostring(first + 1)) end
end
if body then return {'msg', tostring(first), body} end
return {'empty'}
";

/// `ARGV[8..]`: room, token.
const LEAVE: &str = r"
local room, token = ARGV[8], ARGV[9]
local k, s, err = peer_of(room, token)
if not k then return err end
local gone = depart(room, s, 'left')
return {'ok', s, gone[3], gone[4]}
";

/// `ARGV[8..]`: room, token. A long poll's connection closed: the lease ends after the
/// presence bound from now, unless another request extends it.
const POLL_ENDED: &str = r"
local room, token = ARGV[8], ARGV[9]
local k = rk(room)
if redis.call('EXISTS', k) == 0 then return {'ok'} end
local s = side_of(k, token)
if s then
  redis.call('HSET', k, s .. '.until', NOW + PRESENCE)
  relet(room)
end
return {'ok'}
";

/// `ARGV[8]`: how many rooms of each kind to handle. Returns {expired ids, evictions}.
const SWEEP: &str = r"
local limit = tonumber(ARGV[8])
local evicted = {}
local due = redis.call('ZRANGEBYSCORE', P .. 'claims', '-inf', '(' .. NOW, 'LIMIT', 0, limit)
local lapsed = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', '(' .. NOW, 'LIMIT', 0, limit)
for _, room in ipairs(lapsed) do table.insert(due, room) end
for _, room in ipairs(due) do
  local k = rk(room)
  free_due(room, k, evicted)
  if redis.call('EXISTS', k) == 1 then
    reclaim(room)
    relet(room)
  else
    redis.call('ZREM', P .. 'claims', room)
    redis.call('ZREM', P .. 'leases', room)
  end
end
local idle = redis.call('ZRANGEBYSCORE', P .. 'rooms', '-inf', '(' .. (NOW - TTL), 'LIMIT', 0, limit)
for _, room in ipairs(idle) do close(room, 'expired') end
redis.call('ZREMRANGEBYSCORE', P .. 'gone', '-inf', '(' .. (NOW - REMEMBER))
return {idle, evicted}
";

struct Scripts {
    join: Script,
    post: Script,
    take: Script,
    leave: Script,
    poll_ended: Script,
    sweep: Script,
}

impl Scripts {
    fn new() -> Self {
        let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        Self {
            join: with_prelude(JOIN),
            post: with_prelude(POST),
            take: with_prelude(TAKE),
            leave: with_prelude(LEAVE),
            poll_ended: with_prelude(POLL_ENDED),
            sweep: with_prelude(SWEEP),
        }
    }
}

/// The long polls of this instance waiting on each room, woken by the pub/sub listener.
#[derive(Default)]
struct Waiters {
    rooms: Mutex<HashMap<String, Arc<Notify>>>,
}

/// A registration in [`Waiters`], removed when the last long poll of the room ends.
struct Waiter<'a> {
    waiters: &'a Waiters,
    room: String,
    notify: Arc<Notify>,
}

impl Waiters {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.rooms.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn register(&self, room: &str) -> Waiter<'_> {
        let notify = self.lock().entry(room.to_owned()).or_default().clone();
        Waiter { waiters: self, room: room.to_owned(), notify }
    }

    fn wake(&self, room: &str) {
        if let Some(n) = self.lock().get(room) {
            n.notify_waiters();
        }
    }

    fn wake_all(&self) {
        for n in self.lock().values() {
            n.notify_waiters();
        }
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut rooms = self.waiters.lock();
        // The map's reference and ours: nobody else waits on this room.
        if rooms.get(&self.room).is_some_and(|n| Arc::strong_count(n) <= 2) {
            rooms.remove(&self.room);
        }
    }
}

/// Whether Redis answered last time: one log line when that changes, not one per request.
#[derive(Default)]
struct Health {
    down: AtomicBool,
}

impl Health {
    fn failed(&self, what: &str, reason: &str) {
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::error!(
                reason,
                "{what}: Redis is unreachable or too slow; answering 503 until it is back"
            );
        }
    }

    fn answered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::warn!("Redis answers again; serving rooms");
        }
    }
}

/// Rooms in Redis, shared by every instance that uses the same server and database.
pub struct RedisStore {
    conn: ConnectionManager,
    limits: Limits,
    scripts: Scripts,
    waiters: Arc<Waiters>,
    health: Arc<Health>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// A store URL that is not one: `redis://[USER:PASSWORD@]HOST[:PORT][/DB]` (or `rediss://`,
/// `redis+unix:///PATH`).
#[derive(Debug, thiserror::Error)]
#[error("not a Redis URL ({0}); use redis://HOST:PORT/DB")]
pub struct BadUrl(String);

impl RedisStore {
    /// A store on the Redis server at `url`. Does not wait for Redis: while it is unreachable
    /// requests get `503`, and the store connects as soon as it can (so an instance may start
    /// before Redis). Must be called inside a tokio runtime.
    pub fn open(url: &str, limits: Limits) -> Result<Self, BadUrl> {
        let client = redis::Client::open(url).map_err(|e| BadUrl(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| BadUrl(e.to_string()))?;
        let waiters = Arc::new(Waiters::default());
        let health = Arc::new(Health::default());
        let listener = tokio::spawn(listen(client, waiters.clone(), health.clone()));
        Ok(Self { conn, limits, scripts: Scripts::new(), waiters, health, listener })
    }

    /// Checks that Redis answers (`PING`), for a clear line at start.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let ping = redis::cmd("PING");
        match tokio::time::timeout(COMMAND_TIMEOUT, ping.query_async::<String>(&mut conn)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
            Err(_) => Err(StoreError::Unavailable(timed_out())),
        }
    }

    /// Runs `script` with the common arguments and then `args`.
    async fn invoke(
        &self,
        what: &str,
        script: &Script,
        args: &[&[u8]],
    ) -> Result<Vec<Value>, StoreError> {
        let mut call = script.prepare_invoke();
        common_args(&mut call, &self.limits, self.recheck());
        for a in args {
            call.arg(*a);
        }
        let mut conn = self.conn.clone();
        let answer = tokio::time::timeout(COMMAND_TIMEOUT, call.invoke_async::<Value>(&mut conn));
        let reason = match answer.await {
            Ok(Ok(Value::Array(items))) => {
                self.health.answered();
                return Ok(items);
            }
            Ok(Ok(other)) => format!("unexpected answer {other:?}"),
            Ok(Err(e)) => e.to_string(),
            Err(_) => timed_out(),
        };
        self.health.failed(what, &reason);
        Err(StoreError::Unavailable(reason))
    }
}

impl RedisStore {
    /// How often a long poll reads again: at least every [`RECHECK`], and twice per presence
    /// bound, so that its reads keep its seat.
    fn recheck(&self) -> Duration {
        RECHECK.min(self.limits.presence_timeout / 2).max(Duration::from_millis(50))
    }

    /// The text of a notice the scripts store as a code (see `depart` in the scripts).
    fn notice_text(&self, room: &str, kind: &str, code: &str) -> String {
        let why = departure(code);
        let l = &self.limits;
        match kind {
            "left" => peer_left_notice(room, why, l.presence_timeout),
            _ => seat_freed_notice(room, why, l.claim_timeout),
        }
    }
}

fn departure(code: &str) -> Departure {
    match code {
        "silent" => Departure::Silent,
        "lost" => Departure::Lost,
        _ => Departure::Left,
    }
}

/// A long poll in progress: if it is dropped before it answers (its client's connection
/// closed), its lease is cut to the presence bound from now, in the background.
struct Poll<'a> {
    store: &'a RedisStore,
    room: &'a str,
    token: &'a str,
    armed: bool,
}

impl Drop for Poll<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (limits, recheck) = (self.store.limits, self.store.recheck());
        let script = self.store.scripts.poll_ended.clone();
        let (room, token) = (self.room.to_owned(), self.token.to_owned());
        let mut conn = self.store.conn.clone();
        tokio::spawn(async move {
            let mut call = script.prepare_invoke();
            common_args(&mut call, &limits, recheck);
            call.arg(room).arg(token);
            let ended = call.invoke_async::<Value>(&mut conn);
            if tokio::time::timeout(COMMAND_TIMEOUT, ended).await.is_err() {
                tracing::debug!("ending a long poll's lease: no answer from Redis");
            }
        });
    }
}

/// `ARGV[1..7]` of every script (see [`PRELUDE`]): the key prefix, the limits in milliseconds,
/// and how long an open long poll holds its seat (it reads again every `recheck`).
fn common_args(call: &mut ScriptInvocation<'_>, l: &Limits, recheck: Duration) {
    call.arg(KEY_PREFIX)
        .arg(millis(l.idle_ttl))
        .arg(millis(l.claim_timeout))
        .arg(l.max_rooms.max(1))
        .arg(millis(REMEMBER_GONE))
        .arg(millis(l.presence_timeout))
        .arg(millis(recheck + l.presence_timeout));
}

fn timed_out() -> String {
    format!("no answer within {}", humantime::format_duration(COMMAND_TIMEOUT))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> String {
    v.and_then(bytes).map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
}

fn number(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
        other => text(other).parse().unwrap_or(0),
    }
}

fn side(v: Option<&Value>) -> Side {
    if text(v) == "b" { Side::B } else { Side::A }
}

/// Turns a script's `{'err', KIND, ...}` into the refusal the memory store gives.
fn refusal(items: &[Value], room: &str, limits: &Limits, client: Option<IpAddr>) -> StoreError {
    let kind = text(items.get(1));
    let room = room.to_owned();
    let prefix = client.map(|c| limits.prefix.of(c));
    let err = match kind.as_str() {
        "expired" => RoomError::Expired(room),
        "finished" => RoomError::Finished(room),
        "noroom" => RoomError::NoRoom(room),
        "notpeer" => RoomError::NotAPeer(room),
        "full" => RoomError::Full(room),
        "pending" => RoomError::SeatPending {
            room,
            retry_after: retry_secs(Duration::from_millis(number(items.get(2)))),
        },
        "serverfull" => RoomError::ServerFull(limits.max_rooms.max(1)),
        "clientfull" | "reserved" => match (kind.as_str(), prefix) {
            ("clientfull", Some(p)) => RoomError::ClientFull(p, limits.max_rooms_per_client.max(1)),
            (_, Some(p)) => RoomError::Reserved(p, number(items.get(2)) as usize),
            (_, None) => {
                return StoreError::Unavailable(format!("unexpected quota refusal ({kind})"));
            }
        },
        "inboxfull" => RoomError::InboxFull(limits.max_queued),
        "order" => {
            RoomError::OutOfOrder { got: number(items.get(2)), expected: number(items.get(3)) }
        }
        other => return StoreError::Unavailable(format!("unexpected answer from Redis: {other}")),
    };
    StoreError::Room(err)
}

fn is_err(items: &[Value]) -> bool {
    text(items.first()) == "err"
}

/// The seq argument of the scripts: a number, or -1 for none.
fn opt_number(n: Option<u64>) -> String {
    n.map_or_else(|| "-1".to_owned(), |n| n.to_string())
}

#[async_trait]
impl Store for RedisStore {
    fn limits(&self) -> Limits {
        self.limits
    }

    async fn join(
        &self,
        room: &str,
        client: IpAddr,
        key: Option<&str>,
    ) -> Result<Joined, StoreError> {
        if !valid_room(room) {
            return Err(RoomError::BadRoom.into());
        }
        let token = crate::signal::rooms::new_token();
        let client_s = client.to_canonical().to_string();
        let prefix = self.limits.prefix.of(client).to_string();
        let total = self.limits.max_rooms.max(1).to_string();
        let per = self.limits.max_rooms_per_client.max(1).to_string();
        let args: [&[u8]; 7] = [
            room.as_bytes(),
            token.as_bytes(),
            client_s.as_bytes(),
            prefix.as_bytes(),
            key.unwrap_or("").as_bytes(),
            total.as_bytes(),
            per.as_bytes(),
        ];
        let items = self.invoke("joining a room", &self.scripts.join, &args).await?;
        if is_err(&items) {
            return Err(refusal(&items, room, &self.limits, Some(client)));
        }
        Ok(Joined { side: side(items.get(1)), peer: text(items.get(2)) })
    }

    async fn post(
        &self,
        room: &str,
        token: &str,
        body: Bytes,
        seq: Option<u64>,
    ) -> Result<(), StoreError> {
        if !valid_room(room) {
            return Err(RoomError::BadRoom.into());
        }
        let seq = opt_number(seq);
        let max = self.limits.max_queued.to_string();
        let args: [&[u8]; 5] =
            [room.as_bytes(), token.as_bytes(), &body, seq.as_bytes(), max.as_bytes()];
        let items = self.invoke("posting a message", &self.scripts.post, &args).await?;
        if is_err(&items) {
            return Err(refusal(&items, room, &self.limits, None));
        }
        Ok(())
    }

    async fn receive(
        &self,
        room: &str,
        token: &str,
        next: Option<u64>,
        wait: Duration,
    ) -> Result<Received, StoreError> {
        if !valid_room(room) {
            return Err(RoomError::BadRoom.into());
        }
        let deadline = tokio::time::Instant::now() + wait;
        let waiter = self.waiters.register(room);
        let next = opt_number(next);
        let recheck = self.recheck();
        let mut poll = Poll { store: self, room, token, armed: true };
        let received = loop {
            // Registered before reading, so a wake-up published after the read is not missed.
            let notified = waiter.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let now = tokio::time::Instant::now();
            let more = if now + recheck < deadline { "1" } else { "0" };
            let args: [&[u8]; 4] =
                [room.as_bytes(), token.as_bytes(), next.as_bytes(), more.as_bytes()];
            let items = match self.invoke("reading a message", &self.scripts.take, &args).await {
                Ok(items) => items,
                Err(e) => break Err(e),
            };
            match text(items.first()).as_str() {
                "msg" => {
                    let body = Bytes::copy_from_slice(items.get(2).and_then(bytes).unwrap_or(&[]));
                    break Ok(Received::Message { seq: number(items.get(1)), body });
                }
                kind @ ("notice" | "left") => {
                    let notice = self.notice_text(room, kind, &text(items.get(1)));
                    break Ok(Received::Notice(notice));
                }
                "err" => break Err(refusal(&items, room, &self.limits, None)),
                _ => {}
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break Ok(Received::Nothing);
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep_until(deadline.min(now + recheck)) => {}
            }
        };
        poll.armed = false;
        received
    }

    async fn leave(&self, room: &str, token: &str) -> Result<(), StoreError> {
        if !valid_room(room) {
            return Err(RoomError::BadRoom.into());
        }
        let args: [&[u8]; 2] = [room.as_bytes(), token.as_bytes()];
        let items = self.invoke("leaving a room", &self.scripts.leave, &args).await?;
        if is_err(&items) {
            return Err(refusal(&items, room, &self.limits, None));
        }
        tracing::info!(
            room, side = ?side(items.get(1)), client = text(items.get(2)),
            room_closed = number(items.get(3)) == 1, "left"
        );
        Ok(())
    }

    async fn sweep(&self) -> Result<Swept, StoreError> {
        let mut swept = Swept::default();
        let batch = SWEEP_BATCH.to_string();
        loop {
            let items =
                self.invoke("sweeping rooms", &self.scripts.sweep, &[batch.as_bytes()]).await?;
            let list = |i: usize| match items.get(i) {
                Some(Value::Array(v)) => v.clone(),
                _ => Vec::new(),
            };
            let (idle, evicted) = (list(0), list(1));
            let full = idle.len() >= SWEEP_BATCH || evicted.len() >= SWEEP_BATCH;
            swept.expired.extend(idle.iter().map(|v| text(Some(v))));
            for e in evicted {
                let Value::Array(e) = e else { continue };
                let gone = Evicted {
                    room: text(e.first()),
                    side: side(e.get(1)),
                    client: text(e.get(2)).parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
                    room_closed: number(e.get(3)) == 1,
                    why: departure(&text(e.get(4))),
                };
                let what = match gone.why {
                    Departure::Lost => "freed a seat: its holder is gone (no request in time)",
                    _ => "freed a seat: its holder sent no message in time",
                };
                tracing::info!(
                    room = gone.room, side = ?gone.side, client = %gone.client,
                    room_closed = gone.room_closed, "{what}"
                );
                swept.evicted.push(gone);
            }
            if !full {
                return Ok(swept);
            }
        }
    }

    async fn shutdown(&self) {
        // The rooms belong to every instance: leave them to the others.
        self.waiters.wake_all();
    }
}

/// Holds the subscription to [`WAKE_CHANNEL`] and wakes this instance's long polls of the
/// rooms announced there; reconnects when the connection drops, waking every long poll then
/// (what was published meanwhile was lost).
async fn listen(client: redis::Client, waiters: Arc<Waiters>, health: Arc<Health>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(WAKE_CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(COMMAND_TIMEOUT, subscribed).await {
            Ok(Ok(pubsub)) => {
                backoff = Duration::from_millis(100);
                tracing::debug!("subscribed to {WAKE_CHANNEL}");
                waiters.wake_all();
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    if let Ok(room) = std::str::from_utf8(msg.get_payload_bytes()) {
                        waiters.wake(room);
                    }
                }
                health.failed("the wake-up subscription ended", "connection closed");
                waiters.wake_all();
            }
            Ok(Err(e)) => health.failed("subscribing to wake-ups", &e.to_string()),
            Err(_) => health.failed("subscribing to wake-ups", &timed_out()),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
