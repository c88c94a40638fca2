// dcsend's signaling, for the browser: the same URL, HTTP protocol, PAKE and sealing as the
// Rust client (src/signal/{url,client,seal,rendezvous}.rs), so a page and a dcsend process can
// meet in one room. See docs/signaling.md for the protocol.
//
//   A (joined first)                         B (joined second)
//   pake ------------------------------------> (either may send first; the server queues)
//        <------------------------------------ pake
//   sealed hello ----------------------------> check: wrong secret / tampering stops here
//        <------------------------------------ sealed hello
//   sealed offer ---------------------------->
//        <------------------------------------ sealed answer
//
// Every primitive comes from the noble libraries (audited, no dependencies): a page served over
// plain http on a LAN is not a "secure context", so `crypto.subtle` is missing there; only
// `crypto.getRandomValues` is used from the platform.

import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';

/** Protocol label mixed into the PAKE identity, the key derivation and the associated data. */
export const PROTOCOL = 'dcsend/1';
/** Longest room id the server accepts. */
export const MAX_ROOM_CHARS = 64;
/** The server's cap on one message, and on a long poll's wait. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
export const MAX_WAIT_SECS = 30;
/** Bound on any request that is not a long poll (as the Rust client). */
export const REQUEST_TIMEOUT_MS = 10_000;
/** Joins tried again while the room's other seat is held by a client that has not spoken. */
const SEAT_RETRIES = 4;
/** The response header of a `204` poll that carries a notice from the server (`KIND: TEXT`). */
const NOTICE_HEADER = 'dcsend-notice';
/** The response header that numbers a message read with `?next=` (docs/signaling.md). */
const SEQ_HEADER = 'dcsend-seq';
/** How long a request that failed on the way is sent again (src/signal/client.rs `RETRY_FOR`). */
const RETRY_FOR_MS = 15_000;
/** The notice kind that says the other side left (src/signal/rooms.rs `PEER_LEFT`). */
const PEER_LEFT = 'peer-left';

const ROOM_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const ROOM_ID_CHARS = 10;

/**
 * @typedef {'a' | 'b'} Side  A joined first and offers; B answers.
 * @typedef {{ type: 'offer' | 'answer', sdp: string }} SessionDesc
 * @typedef {{ type: 'pake', msg: string } | { type: 'sealed', box: string }
 *   | { type: 'abort', reason: string }} Envelope
 * @typedef {{ type: 'hello', side: Side } | { type: 'description', desc: SessionDesc }} Inner
 */

// ---------------------------------------------------------------------------------------------
// Errors: the same cases and messages as `SignalError` in src/signal/rendezvous.rs.

/**
 * Why signaling failed. `kind` is one of: `unreachable`, `refused`, `not-signaling`,
 * `nobody-came`, `silent`, `unauthentic`, `peer-aborted`, `peer-left` (the other side left
 * before the descriptions were swapped: start over with whoever joins next), `unconfirmed`,
 * `out-of-order`, `url`.
 */
export class SignalError extends Error {
  /** @param {string} kind @param {string} message */
  constructor(kind, message) {
    super(message);
    this.name = 'SignalError';
    this.kind = kind;
  }
}

const UNCONFIRMED_MESSAGE =
  'could not authenticate the peer: it left after its PAKE message without confirming the ' +
  'secret (a wrong secret, or a peer stopped at that moment); a session allows one guess of ' +
  'the secret, so it ends here and nothing was sent: start again with a new room';

const UNAUTHENTIC_MESSAGE =
  'could not authenticate the peer: the secret differs, or the signaling server tampered ' +
  'with the exchange; nothing was sent';

/** The message did not open with our key (wrong secret, tampering, replay, reordering). */
export class Unauthentic extends Error {
  constructor() {
    super('the message does not open with our key');
    this.name = 'Unauthentic';
  }
}

/** @param {number} ms */
function formatDuration(ms) {
  // humantime's style for the whole seconds and minutes the Rust client prints.
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

// ---------------------------------------------------------------------------------------------
// Bytes.

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** @param {Uint8Array} bytes */
export function toBase64(bytes) {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode.apply(null, Array.from(bytes.subarray(i, i + 0x8000)));
  }
  return btoa(bin);
}

/**
 * Strict standard base64 with padding, as the Rust side's `STANDARD` engine; `null` otherwise.
 * @param {string} text
 */
export function fromBase64(text) {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  try {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    // Non-canonical trailing bits are refused by the Rust engine too.
    return toBase64(out) === text ? out : null;
  } catch {
    return null;
  }
}

/** @param {Uint8Array} bytes little-endian */
function bytesToNumberLE(bytes) {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

/** @param {Uint8Array} bytes big-endian */
function bytesToNumberBE(bytes) {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

/** @param {...Uint8Array} parts */
function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Lexicographic byte order, as Rust's `<` on slices. @param {Uint8Array} a @param {Uint8Array} b */
function lessThan(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return a.length < b.length;
}

// Rust's `str::trim` (Unicode White_Space), which is not quite JavaScript's `trim`: it keeps
// U+FEFF and removes U+0085.
const RUST_WS = '[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const RUST_TRIM = new RegExp(`^${RUST_WS}+|${RUST_WS}+$`, 'gu');
/** @param {string} s */
export function rustTrim(s) {
  return s.replace(RUST_TRIM, '');
}

/** @param {number} n */
function randomBytes(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

// ---------------------------------------------------------------------------------------------
// The URL: `http(s)://HOST[:PORT][/PREFIX]/[ROOM][#SECRET]` (src/signal/url.rs).

/** @param {string} room */
export function validRoom(room) {
  return room.length >= 1 && room.length <= MAX_ROOM_CHARS && /^[A-Za-z0-9_-]+$/.test(room);
}

/** A fresh random room id: 10 characters of base32 (50 bits), as dcsend makes them. */
export function newRoomId() {
  // 256 is a multiple of 32: taking each byte mod 32 is uniform.
  return Array.from(randomBytes(ROOM_ID_CHARS), (b) => ROOM_ALPHABET[b % 32]).join('');
}

/**
 * A fresh secret: three groups of four base32 characters (60 bits), e.g. `k7f3-9xq2-m0ta`.
 * (dcsend's own secrets are words and a number; any text works, both ends only hash it.)
 */
export function newSecret() {
  const id = Array.from(randomBytes(12), (b) => ROOM_ALPHABET[b % 32]).join('');
  return `${id.slice(0, 4)}-${id.slice(4, 8)}-${id.slice(8)}`;
}

/** A parsed signaling URL. The secret is only ever read from the fragment, never sent. */
export class PeerUrl {
  /**
   * @param {string} base the server, ending in `/`, without fragment, query or room
   * @param {string | null} room
   * @param {string | null} secret
   */
  constructor(base, room, secret) {
    this.base = base;
    this.room = room;
    this.secret = secret;
  }

  /**
   * Parses and checks a URL (a page passes `location.href`). A URL that names a room must
   * carry its secret. Throws a `SignalError` of kind `url` with the Rust client's wording.
   * @param {string} input
   */
  static parse(input) {
    const text = rustTrim(input);
    const q = JSON.stringify(text);
    let url;
    try {
      url = new URL(text);
    } catch (e) {
      throw new SignalError('url', `${q} is not a URL (${e instanceof Error ? e.message : e}); expected e.g. http://host:8080/`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new SignalError('url', `${q}: the scheme must be http or https`);
    }
    // `search` is empty for a bare `?` too; the serialization keeps it (a `?` in a path is
    // always escaped).
    if (url.href.split('#')[0].includes('?')) {
      throw new SignalError('url', `${q}: a signaling URL has no query string`);
    }
    const fragment = rustTrim(url.hash.replace(/^#/, ''));
    const secret = fragment === '' ? null : fragment;
    const path = url.pathname;
    const cut = path.lastIndexOf('/');
    const prefix = cut < 0 ? '' : path.slice(0, cut);
    const last = cut < 0 ? path : path.slice(cut + 1);
    let room = null;
    if (last !== '') {
      if (!validRoom(last)) {
        throw new SignalError(
          'url',
          `room ${JSON.stringify(last)} is not a valid room id (1-${MAX_ROOM_CHARS} characters of a-z, A-Z, 0-9, - and _)`,
        );
      }
      room = last;
    }
    if (room !== null && secret === null) {
      throw new SignalError(
        'url',
        `${q} names a room but has no secret after '#'; use the whole URL the other side printed`,
      );
    }
    return new PeerUrl(`${url.origin}${prefix}/`, room, secret);
  }

  /** The URL with the room and the secret filled in, generating whichever is missing. */
  completed() {
    return new PeerUrl(this.base, this.room ?? newRoomId(), this.secret ?? newSecret());
  }

  /**
   * `BASE/ROOM[/rest]`: a request URL, never with the secret.
   * @param {...string} rest
   */
  endpoint(...rest) {
    const segments = this.room === null ? rest : [this.room, ...rest];
    return this.base + segments.map(encodeURIComponent).join('/');
  }

  /** The full URL, secret included: what one side shows the other. */
  toString() {
    return this.endpoint() + (this.secret === null ? '' : `#${this.secret}`);
  }
}

// ---------------------------------------------------------------------------------------------
// SPAKE2, symmetric mode, Ed25519 group: byte for byte what the `spake2` 0.4 crate does.

const Point = ed25519.Point;
const L = Point.Fn.ORDER;
/** The symmetric-mode blinding point S (the spake2 crate's and python-spake2's constant). */
const S = Point.fromHex('6f00dae87c1be1a73b5922ef431cd8f57879569c222d22b1cd71e8546ab8e6f1');
const SIDE_SYMMETRIC = 0x53; // 'S'

/**
 * The password as a scalar: HKDF-SHA256 (empty salt, info `SPAKE2 pw`) to 48 bytes, read as a
 * big-endian number, reduced mod L.
 * @param {Uint8Array} password
 */
export function passwordScalar(password) {
  const okm = hkdf(sha256, password, new Uint8Array(0), utf8.encode('SPAKE2 pw'), 48);
  return bytesToNumberBE(okm) % L;
}

/**
 * key = SHA256(SHA256(pw) || SHA256(id) || min(X, Y) || max(X, Y) || K).
 * @param {Uint8Array} password @param {Uint8Array} identity
 * @param {Uint8Array} msgU @param {Uint8Array} msgV @param {Uint8Array} k
 */
export function hashSymmetric(password, identity, msgU, msgV, k) {
  const [first, second] = lessThan(msgU, msgV) ? [msgU, msgV] : [msgV, msgU];
  return sha256(concat(sha256(password), sha256(identity), first, second, k));
}

/** The envelope JSON (the field order of the Rust side's serde output). @param {Envelope} e */
export function envelopeToJson(e) {
  switch (e.type) {
    case 'pake':
      return JSON.stringify({ type: 'pake', msg: e.msg });
    case 'sealed':
      return JSON.stringify({ type: 'sealed', box: e.box });
    case 'abort':
      return JSON.stringify({ type: 'abort', reason: e.reason });
    default:
      throw new TypeError('not an envelope');
  }
}

/**
 * Parses a relayed body; `null` when it is not an envelope.
 * @param {string} body
 * @returns {Envelope | null}
 */
export function envelopeFromJson(body) {
  let v;
  try {
    v = JSON.parse(body);
  } catch {
    return null;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
  if (v.type === 'pake' && typeof v.msg === 'string') return { type: 'pake', msg: v.msg };
  if (v.type === 'sealed' && typeof v.box === 'string') return { type: 'sealed', box: v.box };
  if (v.type === 'abort' && typeof v.reason === 'string') return { type: 'abort', reason: v.reason };
  return null;
}

/** @param {Inner} inner */
function innerToJson(inner) {
  if (inner.type === 'hello') return JSON.stringify({ type: 'hello', side: inner.side });
  const { type, sdp } = inner.desc;
  return JSON.stringify({ type: 'description', desc: { type, sdp } });
}

/** @param {Uint8Array} plain @returns {Inner} */
function innerFromBytes(plain) {
  let v;
  try {
    v = JSON.parse(utf8Strict.decode(plain));
  } catch {
    throw new Unauthentic();
  }
  if (v && v.type === 'hello' && (v.side === 'a' || v.side === 'b')) {
    return { type: 'hello', side: v.side };
  }
  const d = v && v.type === 'description' ? v.desc : null;
  if (d && (d.type === 'offer' || d.type === 'answer') && typeof d.sdp === 'string') {
    return { type: 'description', desc: { type: d.type, sdp: d.sdp } };
  }
  throw new Unauthentic();
}

/** @param {Side} side */
function otherSide(side) {
  return side === 'a' ? 'b' : 'a';
}

/** @param {Side} side */
function direction(side) {
  return utf8.encode(side === 'a' ? 'a->b' : 'b->a');
}

/** A PAKE in progress. */
export class Handshake {
  /**
   * Starts the PAKE for `side` in `room`.
   * @param {string} secret @param {string} room @param {Side} side
   * @returns {{ handshake: Handshake, envelope: Envelope }}
   */
  static start(secret, room, side) {
    return Handshake.startWithRandom(secret, room, side, randomBytes(64));
  }

  /**
   * As `start`, with the 64 random bytes given: the crate's `Scalar::random` reads 64 bytes
   * and reduces them (little-endian) mod L, so the same bytes give the same message. For tests.
   * @param {string} secret @param {string} room @param {Side} side @param {Uint8Array} random
   */
  static startWithRandom(secret, room, side, random) {
    if (random.length !== 64) throw new RangeError('64 random bytes');
    const password = utf8.encode(rustTrim(secret));
    const identity = utf8.encode(`${PROTOCOL} room=${room}`);
    const pw = passwordScalar(password);
    const x = bytesToNumberLE(random) % L;
    // X = B*x + S*pw
    const X = Point.BASE.multiply(x).add(S.multiply(pw)).toBytes();
    const msg = concat(Uint8Array.of(SIDE_SYMMETRIC), X);
    const handshake = new Handshake(password, identity, pw, x, X, side, room);
    return { handshake, envelope: { type: 'pake', msg: toBase64(msg) } };
  }

  /** @private */
  constructor(password, identity, pw, x, msg1, side, room) {
    this.password = password;
    this.identity = identity;
    this.pw = pw;
    this.x = x;
    this.msg1 = msg1;
    this.side = side;
    this.room = room;
  }

  /**
   * Finishes with the peer's PAKE message (base64). A malformed message throws `Unauthentic`;
   * a wrong secret is only found when the first sealed message fails to open.
   * @param {string} peerMsg
   */
  finish(peerMsg) {
    return new Sealer(this.finishKey(peerMsg), this.side, this.room);
  }

  /** The SPAKE2 key (32 bytes). @param {string} peerMsg */
  finishKey(peerMsg) {
    const msg = fromBase64(rustTrim(peerMsg));
    if (msg === null || msg.length !== 33 || msg[0] !== SIDE_SYMMETRIC) throw new Unauthentic();
    const Ybytes = msg.subarray(1);
    let Y;
    try {
      // zip215: accept what curve25519-dalek's decompress accepts.
      Y = Point.fromBytes(Ybytes, true);
    } catch {
      throw new Unauthentic();
    }
    // K = (Y - S*pw) * x
    const K = Y.add(S.multiply(this.pw).negate()).multiply(this.x).toBytes();
    return hashSymmetric(this.password, this.identity, this.msg1, Ybytes, K);
  }
}

/** @param {number} seq */
function nonce(seq) {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setBigUint64(4, BigInt(seq), false);
  return n;
}

/** Seals our messages and opens the peer's, in order (src/signal/seal.rs `Sealer`). */
export class Sealer {
  /** @param {Uint8Array} shared the SPAKE2 key @param {Side} side @param {string} room */
  constructor(shared, side, room) {
    const salt = utf8.encode(PROTOCOL);
    /** @private */ this.sendKey = hkdf(sha256, shared, salt, direction(side), 32);
    /** @private */ this.openKey = hkdf(sha256, shared, salt, direction(otherSide(side)), 32);
    /** @private */ this.sendSeq = 0;
    /** @private */ this.openSeq = 0;
    /** @private */ this.aad = utf8.encode(`${PROTOCOL} room=${room}`);
    /** @type {Side} */ this.side = side;
  }

  /** Seals `inner` as the next message of our direction. @param {Inner} inner @returns {Envelope} */
  seal(inner) {
    const plain = utf8.encode(innerToJson(inner));
    const sealed = chacha20poly1305(this.sendKey, nonce(this.sendSeq), this.aad).encrypt(plain);
    this.sendSeq += 1;
    return { type: 'sealed', box: toBase64(sealed) };
  }

  /** Opens the peer's next sealed message; throws `Unauthentic`. @param {string} box @returns {Inner} */
  open(box) {
    const bytes = fromBase64(rustTrim(box));
    if (bytes === null) throw new Unauthentic();
    let plain;
    try {
      plain = chacha20poly1305(this.openKey, nonce(this.openSeq), this.aad).decrypt(bytes);
    } catch {
      throw new Unauthentic();
    }
    this.openSeq += 1;
    return innerFromBytes(plain);
  }

  /** The `hello` we send first. */
  hello() {
    return this.seal({ type: 'hello', side: this.side });
  }

  /** Checks the peer's `hello`: it must open and come from the other side. @param {string} box */
  checkHello(box) {
    const inner = this.open(box);
    if (inner.type !== 'hello' || inner.side !== otherSide(this.side)) throw new Unauthentic();
  }
}

// ---------------------------------------------------------------------------------------------
// The HTTP client (src/signal/client.rs): join, send, long-poll, leave.

/**
 * `fetch` bounded by `ms` (and by `signal`, when given).
 * @param {string} url @param {RequestInit} init @param {number} ms @param {AbortSignal} [signal]
 */
async function fetchWithin(url, init, ms, signal) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new Error('timeout')), ms);
  const onAbort = () => ctl.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await fetch(url, { ...init, signal: ctl.signal, cache: 'no-store' });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * A response worth sending the same request again for: a balancer whose instance died (`502`,
 * `504`), or an instance whose room store is briefly down (`503` with `Retry-After`).
 * @param {Response} response
 */
function transient(response) {
  const s = response.status;
  return s === 502 || s === 504 || (s === 503 && response.headers.has('retry-after'));
}

/**
 * Sends the request `send` makes, again while it fails in a transient way, for up to
 * `RETRY_FOR_MS`: every request of this client can be repeated safely (the join carries a key,
 * each message its number, each read the number of the next message wanted), so a request whose
 * answer was lost is sent again, to whichever instance a balancer picks. `reached`: we have
 * talked to this server before, so a failed connection is an outage to wait out rather than a
 * wrong URL. Nothing is repeated once `stop` fired.
 * @param {() => Promise<Response>} send @param {boolean} reached @param {AbortSignal} [stop]
 * @returns {Promise<Response>}
 */
async function withRetries(send, reached, stop) {
  const giveUp = Date.now() + RETRY_FOR_MS;
  let pause = 100;
  for (;;) {
    /** @type {Response | undefined} */
    let response;
    let error;
    try {
      response = await send();
    } catch (e) {
      error = e;
    }
    const again = response !== undefined ? transient(response) : reached && !stop?.aborted;
    if (!again || Date.now() + pause > giveUp) {
      if (response === undefined) throw error;
      return response;
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 1000);
  }
}

/** @param {PeerUrl} url @param {unknown} err */
function unreachable(url, err) {
  let reason = err instanceof Error ? err.message : String(err);
  // Node and browsers say "fetch failed" / "Failed to fetch"; the cause says why, where given.
  let cause = err instanceof Error ? err.cause : undefined;
  while (cause instanceof Error) {
    reason = cause.message || reason;
    cause = cause.cause;
  }
  if (err instanceof Error && (err.name === 'AbortError' || err.message === 'timeout')) {
    reason = `no answer within ${formatDuration(REQUEST_TIMEOUT_MS)}`;
  }
  return new SignalError('unreachable', `cannot reach the signaling server at ${url.base}: ${reason}`);
}

/** @param {PeerUrl} url @param {string} what */
function notSignaling(url, what) {
  return new SignalError('not-signaling', `${url.base} does not answer like a dcsend signaling server (${what})`);
}

/** A refusal's one line of text (capped), or the status. @param {Response} response */
async function refusal(response) {
  const text = await response.text().catch(() => '');
  const line = (text.split(/\r?\n/)[0] ?? '').trim();
  return line === '' || line.length > 300 ? `HTTP ${response.status}` : line;
}

/**
 * The `ice_servers` of a join answer, for `new RTCPeerConnection({ iceServers })`: the server
 * sends the `RTCIceServer` shape already (docs/signaling.md, "STUN and TURN for the peers").
 * An entry that is not that shape is dropped rather than failing the connection, and a server
 * older than the field sends none.
 * @param {unknown} servers @returns {RTCIceServer[]}
 */
export function iceServersOf(servers) {
  if (!Array.isArray(servers)) return [];
  /** @type {RTCIceServer[]} */
  const out = [];
  for (const s of servers) {
    if (!s || typeof s !== 'object') continue;
    const urls = typeof s.urls === 'string' ? [s.urls] : s.urls;
    if (!Array.isArray(urls) || urls.length === 0 || !urls.every((u) => typeof u === 'string')) continue;
    const { username, credential } = s;
    if (![username, credential].every((v) => v === undefined || typeof v === 'string')) continue;
    out.push({
      urls,
      ...(username === undefined ? {} : { username }),
      ...(credential === undefined ? {} : { credential }),
    });
  }
  return out;
}

/** The mailbox the exchange runs over: messages in order, to and from the other peer. */
export class Client {
  /**
   * Joins the room of `url` (which must name one: see `PeerUrl.completed`). What the server
   * tells us about the room meanwhile (a silent client in the other seat, now or later while
   * we wait) goes to `onNotice`, one line for a person.
   * @param {PeerUrl} url
   * @param {(notice: string) => void} [onNotice]
   */
  static async join(url, onNotice = () => {}) {
    if (url.room === null) throw new TypeError('the URL names no room');
    // The same key gets the same seat, so a join whose answer was lost can be sent again.
    const key = [...randomBytes(16)].map((b) => b.toString(16).padStart(2, '0')).join('');
    for (let retries = 0; ; retries++) {
      let response;
      try {
        const join = () => fetchWithin(`${url.endpoint()}?key=${key}`, { method: 'POST' }, REQUEST_TIMEOUT_MS);
        response = await withRetries(join, false);
      } catch (e) {
        throw unreachable(url, e);
      }
      if (response.status === 201) {
        let v;
        try {
          v = JSON.parse(await response.text());
        } catch {
          v = null;
        }
        if (!v || typeof v.peer !== 'string' || (v.side !== 'a' && v.side !== 'b')) {
          throw notSignaling(url, 'its answer to a join is not {"peer":...,"side":...}');
        }
        const client = new Client(url, v.peer, v.side, onNotice);
        client.iceServers = iceServersOf(v.ice_servers);
        return client;
      }
      // The other seat's holder has not spoken yet: the server frees it within its claim
      // bound and says when (see docs/signaling.md, "Seats").
      const retryAfter = Number(response.headers.get('retry-after') ?? NaN);
      if (response.status === 409 && retries < SEAT_RETRIES && retryAfter >= 0 && retryAfter <= 60) {
        onNotice(`${await refusal(response)}; trying again in ${retryAfter}s`);
        await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000 + 100));
        continue;
      }
      if ([400, 409, 410, 429, 503].includes(response.status)) {
        throw new SignalError('refused', `the signaling server refused: ${await refusal(response)}`);
      }
      throw notSignaling(url, `HTTP ${response.status} to a join`);
    }
  }

  /**
   * @param {PeerUrl} url @param {string} peer @param {Side} side
   * @param {(notice: string) => void} [onNotice]
   */
  constructor(url, peer, side, onNotice = () => {}) {
    this.url = url;
    /** @private */ this.peer = peer;
    /** @private */ this.onNotice = onNotice;
    /** @type {Side} A (joined first, offers) or B (answers). */
    this.side = side;
    /** @type {RTCIceServer[]} The STUN and TURN servers the server handed out with the seat. */
    this.iceServers = [];
    /** @private What a poll got while we were busy (`presentWhile`), for the next `recv`. */
    this.stash = null;
    /** @private Messages we have sent: the number of the next one (`?seq=`). */
    this.sent = 0;
    /** @private The number of the next message we want from the other peer (`?next=`). */
    this.next = 0;
  }

  /**
   * Runs `work` with a long poll open, so that the server sees us present while we are busy
   * between requests (ICE gathering); what the poll gets is kept for the next `recv`.
   * @template T @param {Promise<T>} work @returns {Promise<T>}
   */
  async presentWhile(work) {
    const busy = new AbortController();
    const poll = this.recv(Date.now() + 24 * 3600_000, busy.signal).then(
      (got) => {
        // A message read as we stopped is kept too: the server counts it as read once we ask
        // for the next one.
        if (got !== null) this.stash = { got };
      },
      (err) => {
        if (!busy.signal.aborted) this.stash = { err };
      },
    );
    try {
      return await work;
    } finally {
      busy.abort(new Error('done'));
      // Settled at once by the abort; waiting for it keeps its message ahead of the next read.
      await poll;
    }
  }

  /**
   * Leaves the room (best effort: the room expires anyway). `keepalive` lets the request
   * outlive a page that is being closed.
   */
  async leave({ keepalive = false } = {}) {
    try {
      await fetchWithin(this.url.endpoint(this.peer), { method: 'DELETE', keepalive }, 2000);
    } catch {
      // best effort
    }
  }

  /** @private @param {Response} response */
  async check(response) {
    const s = response.status;
    if (s >= 200 && s < 300) return response;
    if ((s >= 400 && s < 500) || s === 503) {
      throw new SignalError('refused', `the signaling server refused: ${await refusal(response)}`);
    }
    throw notSignaling(this.url, `HTTP ${s}`);
  }

  /** Queues `msg` for the other peer. @param {Envelope} msg */
  async send(msg) {
    // A poll held while we were busy heard that the other side left: what we were about to
    // send was meant for it, and must not reach whoever takes its seat next.
    if (this.stash?.err instanceof SignalError && this.stash.err.kind === 'peer-left') {
      const { err } = this.stash;
      this.stash = null;
      throw err;
    }
    const seq = this.sent;
    const body = envelopeToJson(msg);
    const post = () =>
      fetchWithin(
        `${this.url.endpoint(this.peer)}?seq=${seq}`,
        { method: 'POST', headers: { 'content-type': 'application/json' }, body },
        REQUEST_TIMEOUT_MS,
      );
    let response;
    try {
      response = await withRetries(post, true);
    } catch (e) {
      throw unreachable(this.url, e);
    }
    await this.check(response);
    this.sent = seq + 1;
  }

  /**
   * The next message from the other peer; `null` when `deadline` (a `Date.now()` value)
   * passed first (or `stop` fired). Long-polls, at most 30 s per request. Throws a `peer-left`
   * `SignalError` when the server says the other side left.
   * @param {number} deadline @param {AbortSignal} [stop]
   * @returns {Promise<Envelope | null>}
   */
  async recv(deadline, stop) {
    if (this.stash !== null) {
      const { got, err } = this.stash;
      this.stash = null;
      if (err !== undefined) throw err;
      return got;
    }
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return null;
      // Round up so a short remaining wait still waits; the server caps it.
      const wait = Math.min(Math.ceil(left / 1000), MAX_WAIT_SECS);
      const next = this.next;
      const url = `${this.url.endpoint(this.peer)}?wait=${wait}&next=${next}`;
      const untilDeadline = new AbortController();
      const timer = setTimeout(() => untilDeadline.abort(new Error('deadline')), left);
      const onStop = () => untilDeadline.abort(new Error('stopped'));
      stop?.addEventListener('abort', onStop, { once: true });
      let response;
      try {
        if (stop?.aborted) return null;
        const get = () => fetchWithin(url, { method: 'GET' }, wait * 1000 + REQUEST_TIMEOUT_MS, untilDeadline.signal);
        response = await withRetries(get, true, untilDeadline.signal);
      } catch (e) {
        if (untilDeadline.signal.aborted) return null;
        throw unreachable(this.url, e);
      } finally {
        clearTimeout(timer);
        stop?.removeEventListener('abort', onStop);
      }
      await this.check(response);
      // `KIND: TEXT` from the server about our room; the text is for the person.
      const notice = response.headers.get(NOTICE_HEADER);
      if (notice) {
        const cut = notice.indexOf(': ');
        const [kind, text] = cut < 0 ? ['', notice] : [notice.slice(0, cut), notice.slice(cut + 2)];
        // The exchange decides what to say: it starts over, or gives up.
        if (kind === PEER_LEFT) throw new SignalError('peer-left', text);
        this.onNotice(text);
      }
      if (response.status === 204) continue;
      let body;
      try {
        body = new Uint8Array(await response.arrayBuffer());
      } catch (e) {
        // Not acknowledged (`next` is unchanged), so the server gives it again.
        throw unreachable(this.url, e);
      }
      if (body.length > MAX_MESSAGE_BYTES) {
        throw new SignalError('out-of-order', 'the peer sent a message out of order (a message larger than the server allows)');
      }
      let text;
      try {
        text = utf8Strict.decode(body);
      } catch {
        text = '';
      }
      // Acknowledged by the next read. Messages come in order and without gaps, so the count
      // we received is the next number; the server's header (which a proxy may drop) only
      // confirms it.
      const seq = Number.parseInt(response.headers.get(SEQ_HEADER) ?? '', 10);
      this.next = (Number.isSafeInteger(seq) ? Math.max(next, seq) : next) + 1;
      const envelope = envelopeFromJson(text);
      if (envelope === null) throw notSignaling(this.url, 'it relayed a message that is not dcsend signaling');
      return envelope;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The authenticated exchange (src/signal/rendezvous.rs), over any mailbox with `send(Envelope)`
// and `recv(deadline) -> Envelope | null`.

/**
 * @typedef {{ send(msg: Envelope): Promise<void>, recv(deadline: number): Promise<Envelope | null> }} Mailbox
 */

/** @param {Envelope} got @param {string} wanted */
function unexpected(got, wanted) {
  if (got.type === 'abort') return new SignalError('peer-aborted', `the peer gave up during signaling: ${got.reason}`);
  // A sealed message where a pake was due (or the reverse) is either a broken peer or a
  // server replaying messages; neither may go on.
  return new SignalError('out-of-order', `the peer sent a message out of order (${wanted})`);
}

/** Tells the peer (best effort) and returns the error to throw. @param {Mailbox} mailbox */
async function refuse(mailbox) {
  const reason = 'authentication failed (the secret differs, or the server tampered)';
  try {
    await mailbox.send({ type: 'abort', reason });
  } catch {
    // best effort: the server may drop it
  }
  return new SignalError('unauthentic', UNAUTHENTIC_MESSAGE);
}

/** @param {Mailbox} mailbox @param {number} stepMs */
async function expectSealed(mailbox, stepMs) {
  const got = await mailbox.recv(Date.now() + stepMs);
  if (got === null) {
    throw new SignalError('silent', `the peer stopped answering during signaling (waited ${formatDuration(stepMs)})`);
  }
  if (got.type !== 'sealed') throw unexpected(got, 'a sealed message');
  return got.box;
}

/**
 * Runs the PAKE and the key confirmation. The first wait (for the peer to join) is bounded by
 * `joinTimeoutMs`, every later one by `stepMs`.
 * @param {Mailbox} mailbox @param {string} secret @param {string} room @param {Side} side
 * @param {{ joinTimeoutMs?: number, stepMs?: number, random?: Uint8Array }} [options]
 * @returns {Promise<{ sealer: Sealer, bothPresent: number }>}
 */
export async function authenticate(mailbox, secret, room, side, options = {}) {
  const { joinTimeoutMs = 5 * 60_000, stepMs = 30_000 } = options;
  const joinDeadline = Date.now() + joinTimeoutMs;
  const { handshake, envelope } = options.random
    ? Handshake.startWithRandom(secret, room, side, options.random)
    : Handshake.start(secret, room, side);
  await mailbox.send(envelope);
  const peer = await mailbox.recv(joinDeadline);
  if (peer === null) {
    throw new SignalError('nobody-came', `nobody joined room ${room} within ${formatDuration(joinTimeoutMs)}`);
  }
  if (peer.type !== 'pake') throw unexpected(peer, 'a pake message');
  const bothPresent = Date.now();
  let sealer;
  try {
    sealer = handshake.finish(peer.msg);
  } catch {
    throw await refuse(mailbox);
  }
  await mailbox.send(sealer.hello());
  let hello;
  try {
    hello = await expectSealed(mailbox, stepMs);
  } catch (e) {
    // It may hold our key confirmation to test a guess of the secret offline: that was the
    // session's one guess (src/signal/rendezvous.rs).
    if (e instanceof SignalError && e.kind === 'peer-left') throw new SignalError('unconfirmed', UNCONFIRMED_MESSAGE);
    throw e;
  }
  try {
    sealer.checkHello(hello);
  } catch {
    throw await refuse(mailbox);
  }
  return { sealer, bothPresent };
}

/**
 * Sends our offer or answer, sealed.
 * @param {Mailbox} mailbox @param {Sealer} sealer @param {SessionDesc} desc
 */
export async function sendDescription(mailbox, sealer, desc) {
  await mailbox.send(sealer.seal({ type: 'description', desc }));
}

/**
 * Receives the peer's offer or answer (`kind`), sealed.
 * @param {Mailbox} mailbox @param {Sealer} sealer @param {'offer' | 'answer'} kind
 * @param {number} [stepMs]
 * @returns {Promise<SessionDesc>}
 */
export async function recvDescription(mailbox, sealer, kind, stepMs = 30_000) {
  const box = await expectSealed(mailbox, stepMs);
  let inner;
  try {
    inner = sealer.open(box);
  } catch {
    throw await refuse(mailbox);
  }
  if (inner.type !== 'description' || inner.desc.type !== kind) {
    throw new SignalError('out-of-order', 'the peer sent a message out of order (expected a session description)');
  }
  return inner.desc;
}
