// The page `dcsend signal` serves (web/static/index.html): one end of a dcsend transfer in a
// browser. It meets the other end (dcsend, or another page) through the same rendezvous server,
// PAKE and sealing as dcsend (./signal.js), connects one WebRTC data channel, and speaks the
// wire protocol of docs/protocol.md (./wire.js): `hello`, then `file` / payload / `eof`
// (SHA-256) / `ack` per file, then `done`. The page sends through the threshold sender
// (./sender.js) and receives into memory (a Blob, up to a cap) or, where the browser has the
// File System Access API, straight into a folder the user picks.
//
// Which way the files go is decided by the peer's `hello`: a receiver makes this page the
// sender, a sender makes it the receiver. Files chosen before the channel opens make the page
// say `hello` as a sender at once (so two pages can meet, too).
//
// For tests and scripts the page exposes its state on the DOM: `body[data-phase]` (idle,
// signaling, connecting, ready, sending, receiving, done, failed), `body[data-role]`,
// `#stats[data-bytes|data-total|data-buffered|data-threshold]`, the received files as
// `#received a[download][data-name][data-bytes][data-sha256]`, and `#error`.

import { PeerUrl, Client, authenticate, sendDescription, recvDescription } from './signal.js';
import * as wire from './wire.js';
import { ThresholdSender, clampThreshold, chunkSize, DEFAULT_CHUNK } from './sender.js';
import { Fifo } from './fifo.js';

/** How long the page waits for the other side to join the room (dcsend's --join-timeout). */
const JOIN_TIMEOUT_MS = 10 * 60_000;
/** ICE + DTLS + SCTP, once both descriptions are set (dcsend's --connect-timeout). */
const CONNECT_TIMEOUT_MS = 30_000;
/** Host candidates gather at once; with no STUN server there is nothing slow to wait for. */
const GATHER_TIMEOUT_MS = 5_000;
/** A dcsend peer says `hello` as soon as the channel opens. */
const HELLO_TIMEOUT_MS = 30_000;
/** The sender's finish rule (docs/protocol.md): 2 minutes without progress. */
const FINISH_IDLE_MS = 120_000;
/** How much of a file is read from disk at once; it is cut into messages of the chunk size. */
const READ_BLOCK = 1 << 20;
/** Largest file kept in memory (when no folder is chosen). */
const MEMORY_CAP = 2 * 1024 ** 3;
/** Received parts are gathered into a Blob every this many bytes, which the browser may page to disk. */
const BLOB_BATCH = 16 * 1024 * 1024;
/**
 * What the page asks a sender to keep buffered at most (`hello.threshold`). A browser reads
 * UDP through a socket with the system's default receive buffer (212 KiB on Linux), and drops
 * what overflows it; webrtc-rs's SCTP then waits a retransmission timeout of at least 1 s for
 * each loss. With 32 KiB nothing was dropped on loopback, with 64 KiB 167 datagrams per 32 MiB (see
 * BENCHMARKS.md, "dcsend to a browser").
 */
const RECEIVE_THRESHOLD = 32 * 1024;
/** Once `done` was seen or sent, how long to let the last messages drain before closing. */
const LINGER_MS = 1_000;

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

// ---------------------------------------------------------------------------------------------
// Formatting, as dcsend prints it.

/** @param {number} n */
function size(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** @param {number} bytesPerSec */
const rate = (bytesPerSec) => `${(bytesPerSec / 1e6).toFixed(1)} MB/s`;

/** @param {number} n @param {string} one */
const plural = (n, one) => `${n} ${one}${n === 1 ? '' : 's'}`;

/** @param {unknown} e */
const message = (e) => (e instanceof Error ? e.message : String(e));

// ---------------------------------------------------------------------------------------------
// What the person sees.

/** @param {string} phase @param {string} [text] */
function setPhase(phase, text) {
  document.body.dataset.phase = phase;
  if (text !== undefined) $('status').textContent = text;
}

/** @param {string} text */
function say(text) {
  $('status').textContent = text;
}

/** Bytes moved, the rate, and the channel's buffered amount against the threshold; live. */
class LiveView {
  constructor() {
    this.bytes = 0;
    /** @type {number | null} */ this.total = null;
    this.buffered = 0;
    /** @type {number | null} */ this.threshold = null;
    this.label = '';
    /** @type {[number, number][]} (time, bytes) over the last seconds */
    this.samples = [];
    /** @type {number | null} */ this.started = null;
    /** @type {number | null} */ this.ended = null;
    /** @type {(() => number) | null} reads the channel's buffered amount */
    this.probe = null;
    /** @type {number | undefined} */ this.timer = undefined;
  }

  /** @param {{ total: number | null, threshold: number | null, probe: (() => number) | null }} what */
  start({ total, threshold, probe }) {
    this.total = total;
    this.threshold = threshold;
    this.probe = probe;
    this.started = performance.now();
    $('stats').hidden = false;
    $('buffer-line').hidden = threshold === null;
    this.timer = window.setInterval(() => this.render(), 250);
    this.render();
  }

  stop() {
    this.ended = performance.now();
    window.clearInterval(this.timer);
    this.render();
  }

  /** Bytes per second over the last 2 s (or since the start). */
  currentRate() {
    const now = performance.now();
    this.samples.push([now, this.bytes]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 2000) this.samples.shift();
    const [t0, b0] = this.samples[0];
    return now > t0 ? ((this.bytes - b0) * 1000) / (now - t0) : 0;
  }

  averageRate() {
    const end = this.ended ?? performance.now();
    return this.started !== null && end > this.started ? (this.bytes * 1000) / (end - this.started) : 0;
  }

  render() {
    if (this.probe) this.buffered = this.probe();
    const stats = $('stats');
    stats.dataset.bytes = String(this.bytes);
    stats.dataset.total = this.total === null ? '' : String(this.total);
    stats.dataset.buffered = String(this.buffered);
    stats.dataset.threshold = this.threshold === null ? '' : String(this.threshold);
    const of = this.total === null ? '' : ` of ${size(this.total)}`;
    const speed = this.ended === null ? rate(this.currentRate()) : `${rate(this.averageRate())} on average`;
    $('numbers').textContent = `${size(this.bytes)}${of} · ${speed}${this.label ? ` · ${this.label}` : ''}`;
    const bar = /** @type {HTMLProgressElement} */ ($('bar'));
    if (this.total) {
      bar.max = this.total;
      bar.value = Math.min(this.bytes, this.total);
    } else if (this.total === 0 || this.ended !== null) {
      bar.max = 1;
      bar.value = 1;
    } else {
      bar.removeAttribute('value'); // indeterminate: the size is not known
    }
    if (this.threshold !== null) {
      const meter = /** @type {HTMLMeterElement} */ ($('buffer'));
      // The amount may pass the threshold by up to one message.
      meter.max = Math.max(this.threshold, 1) * 1.05;
      meter.high = Math.max(this.threshold, 1);
      meter.value = this.buffered;
      $('buffer-text').textContent = `${size(this.buffered)} / ${size(this.threshold)} threshold`;
    }
  }
}

const view = new LiveView();

// ---------------------------------------------------------------------------------------------
// Files chosen to send: from the file input or dropped on the page, before or after connecting.

/** @type {File[]} */
let chosen = [];
/** @type {((files: File[]) => void) | null} */
let onChosen = null;

/** @param {File[]} files */
function choose(files) {
  if (files.length === 0 || document.body.dataset.role === 'recv') return;
  if (document.body.dataset.phase === 'sending' || document.body.dataset.phase === 'done') return;
  chosen = files;
  say(`${plural(files.length, 'file')} chosen (${size(files.reduce((n, f) => n + f.size, 0))}).`);
  if (onChosen) onChosen(files);
}

function watchChoices() {
  const pick = /** @type {HTMLInputElement} */ ($('pick'));
  pick.addEventListener('change', () => choose(Array.from(pick.files ?? [])));
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    document.body.classList.add('dragging');
  });
  document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    document.body.classList.remove('dragging');
    choose(Array.from(e.dataTransfer?.files ?? []));
  });
}

/** The files to send: those already chosen, or the next choice. @returns {Promise<File[]>} */
function filesToSend() {
  if (chosen.length > 0) return Promise.resolve(chosen);
  return new Promise((resolve) => {
    onChosen = resolve;
  });
}

// ---------------------------------------------------------------------------------------------
// Where received files go.

/** @type {FileSystemDirectoryHandle | null} */
let folder = null;

function offerFolder() {
  if (!('showDirectoryPicker' in window)) return;
  $('folder-box').hidden = false;
  $('cap').textContent = size(MEMORY_CAP);
  $('folder').addEventListener('click', async () => {
    try {
      // @ts-ignore: Chromium's File System Access API
      folder = await window.showDirectoryPicker({ mode: 'readwrite' });
      $('folder-name').textContent = `Files are saved into the folder "${folder?.name}".`;
    } catch (e) {
      if (!(e instanceof DOMException && e.name === 'AbortError')) $('folder-name').textContent = message(e);
    }
  });
}

/** Keeps an item in memory; `finish` makes it a Blob URL to download. */
class MemorySink {
  constructor() {
    /** @type {Uint8Array[]} */ this.parts = [];
    /** @type {Blob[]} */ this.blobs = [];
    this.pending = 0;
    this.bytes = 0;
  }
  /** @param {Uint8Array} bytes */
  write(bytes) {
    this.bytes += bytes.length;
    if (this.bytes > MEMORY_CAP) {
      throw new Error(`the item is over ${size(MEMORY_CAP)}, more than this page keeps in memory`);
    }
    this.parts.push(bytes);
    this.pending += bytes.length;
    if (this.pending >= BLOB_BATCH) {
      this.blobs.push(new Blob(this.parts));
      this.parts = [];
      this.pending = 0;
    }
  }
  async finish() {
    const blob = new Blob([...this.blobs, ...this.parts], { type: 'application/octet-stream' });
    this.parts = [];
    this.blobs = [];
    return URL.createObjectURL(blob);
  }
  async abort() {
    this.parts = [];
    this.blobs = [];
  }
}

/** Writes an item into the chosen folder; the browser makes it appear only on `finish`. */
class FolderSink {
  /** @param {FileSystemDirectoryHandle} dir @param {string} name */
  static async open(dir, name) {
    const exists = await dir.getFileHandle(name).then(
      () => true,
      (e) => (e instanceof DOMException && e.name === 'NotFoundError' ? false : Promise.reject(e)),
    );
    if (exists) throw new Error(`${name} already exists in the folder "${dir.name}"; not overwriting it`);
    const handle = await dir.getFileHandle(name, { create: true });
    // @ts-ignore: createWritable is Chromium's
    return new FolderSink(dir, name, await handle.createWritable());
  }
  /** @param {FileSystemDirectoryHandle} dir @param {string} name @param {any} writable */
  constructor(dir, name, writable) {
    this.dir = dir;
    this.name = name;
    this.writable = writable;
    /** @type {Promise<void>} */ this.chain = Promise.resolve();
    /** @type {unknown} */ this.error = null;
  }
  /** @param {Uint8Array} bytes */
  write(bytes) {
    if (this.error) throw this.error;
    this.chain = this.chain.then(() => this.writable.write(bytes)).catch((e) => {
      this.error = e;
    });
  }
  async finish() {
    await this.chain;
    if (this.error) throw this.error;
    await this.writable.close();
    return null;
  }
  async abort() {
    await this.chain;
    await this.writable.abort().catch(() => {});
    await this.dir.removeEntry(this.name).catch(() => {});
  }
}

/**
 * Shows a received item: a download link, or where it was saved (`href` null).
 * @param {string} name @param {number} bytes @param {string} digest ('' when unverified)
 * @param {string | null} href
 */
function showReceived(name, bytes, digest, href) {
  const li = document.createElement('li');
  const check = digest ? 'SHA-256 verified' : 'unverified: the peer sent no checksum';
  const detail = ` (${size(bytes)}, ${check})`;
  if (href === null) {
    li.textContent = `${name} saved into "${folder?.name}"${detail}`;
  } else {
    const a = document.createElement('a');
    a.href = href;
    a.download = name;
    a.textContent = `Save ${name}`;
    Object.assign(a.dataset, { name, bytes: String(bytes), sha256: digest });
    li.append(a, detail);
  }
  $('received').append(li);
}

// ---------------------------------------------------------------------------------------------
// Errors.

/** The peer said `abort`. */
class PeerAborted extends Error {}

/** What the page tells the other side when it stops because of `e`. @param {unknown} e */
function abortReason(e) {
  if (e instanceof wire.ProtocolError) return e.message;
  return `the browser page stopped: ${message(e)}`;
}

/** @param {unknown} e */
function fail(e) {
  view.stop();
  $('folder-box').hidden = true;
  setPhase('failed', 'Stopped.');
  const text = $('error');
  text.hidden = false;
  text.textContent = message(e);
  console.error('dcsend:', e);
}

// ---------------------------------------------------------------------------------------------
// The connection.

/**
 * @template T
 * @param {Promise<T>} promise @param {number} ms @param {string} what
 * @returns {Promise<T>}
 */
function within(promise, ms, what) {
  /** @type {number | undefined} */
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = window.setTimeout(() => reject(new Error(what)), ms);
  });
  return /** @type {Promise<T>} */ (Promise.race([promise, timeout]).finally(() => window.clearTimeout(timer)));
}

/** Resolves when ICE gathering is complete (dcsend's signaling does not trickle). @param {RTCPeerConnection} pc */
function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  const complete = new Promise((resolve) => {
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve(undefined);
    });
  });
  // Past the bound, send what was gathered: host candidates come first.
  return within(complete, GATHER_TIMEOUT_MS, 'gathering').catch(() => {});
}

/** @param {RTCPeerConnection} pc @param {Promise<RTCDataChannel>} channel */
async function opened(pc, channel) {
  const failed = new Promise((_, reject) => {
    pc.addEventListener('connectionstatechange', () => {
      if (pc.connectionState === 'failed') {
        reject(new Error('could not connect to the other side: no network path between the two (ICE failed)'));
      }
    });
  });
  const open = channel.then(
    (dc) =>
      dc.readyState === 'open'
        ? dc
        : new Promise((resolve) => dc.addEventListener('open', () => resolve(dc), { once: true })),
  );
  return /** @type {Promise<RTCDataChannel>} */ (
    within(Promise.race([open, failed]), CONNECT_TIMEOUT_MS, `could not connect to the other side within ${CONNECT_TIMEOUT_MS / 1000}s`)
  );
}

/** Signaling, then WebRTC: returns the open `dcsend` channel. @param {PeerUrl} url */
async function connect(url) {
  setPhase('signaling', `Joining room ${url.room}…`);
  const client = await Client.join(url, (notice) => say(notice));
  window.addEventListener('pagehide', () => client.leave({ keepalive: true }), { once: true });
  say(client.side === 'a' ? 'Waiting for the other side to join…' : 'Checking the secret…');
  const room = /** @type {string} */ (url.room);
  const { sealer } = await authenticate(client, /** @type {string} */ (url.secret), room, client.side, {
    joinTimeoutMs: JOIN_TIMEOUT_MS,
  });
  setPhase('connecting', 'Connecting…');
  // No STUN or TURN server: host candidates, as dcsend's default (a LAN, or this machine).
  const pc = new RTCPeerConnection({ iceServers: [] });
  /** @type {Promise<RTCDataChannel>} */
  let channel;
  try {
    if (client.side === 'a') {
      channel = Promise.resolve(pc.createDataChannel('dcsend', { ordered: true }));
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const offer = /** @type {RTCSessionDescription} */ (pc.localDescription);
      await sendDescription(client, sealer, { type: 'offer', sdp: offer.sdp });
      await pc.setRemoteDescription(await recvDescription(client, sealer, 'answer'));
    } else {
      channel = new Promise((resolve) => {
        pc.addEventListener('datachannel', (e) => {
          if (e.channel.label === 'dcsend') resolve(e.channel);
        });
      });
      await pc.setRemoteDescription(await recvDescription(client, sealer, 'offer'));
      await pc.setLocalDescription(await pc.createAnswer());
      await gathered(pc);
      const answer = /** @type {RTCSessionDescription} */ (pc.localDescription);
      await sendDescription(client, sealer, { type: 'answer', sdp: answer.sdp });
    }
  } finally {
    client.leave();
  }
  const dc = await opened(pc, channel);
  dc.binaryType = 'arraybuffer';
  return { pc, dc };
}

const CLOSED = Symbol('closed');

/** The channel's messages in order, pulled one at a time; `CLOSED` once it closed or failed. */
class Inbox {
  /** @param {RTCPeerConnection} pc @param {RTCDataChannel} dc */
  constructor(pc, dc) {
    /** @type {Fifo<string | ArrayBuffer>} */ this.items = new Fifo();
    this.closed = false;
    /** @type {(() => void) | null} */ this.wake = null;
    dc.addEventListener('message', (e) => {
      this.items.push(e.data);
      this.notify();
    });
    const end = () => {
      this.closed = true;
      this.notify();
    };
    dc.addEventListener('close', end);
    pc.addEventListener('connectionstatechange', () => {
      if (pc.connectionState === 'failed' || pc.connectionState === 'closed') end();
    });
  }
  /** @private */
  notify() {
    const wake = this.wake;
    this.wake = null;
    if (wake) wake();
  }
  /**
   * The next message; `null` after `ms` without one.
   * @param {number} [ms] @returns {Promise<string | ArrayBuffer | typeof CLOSED | null>}
   */
  async next(ms) {
    const deadline = ms === undefined ? Infinity : performance.now() + ms;
    for (;;) {
      if (this.items.length > 0) return /** @type {string | ArrayBuffer} */ (this.items.take());
      if (this.closed) return CLOSED;
      const left = deadline - performance.now();
      if (left <= 0) return null;
      /** @type {number | undefined} */
      let timer;
      await new Promise((resolve) => {
        this.wake = () => resolve(undefined);
        if (left !== Infinity) timer = window.setTimeout(() => resolve(undefined), left);
      });
      window.clearTimeout(timer);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Sending.

/**
 * Sends `files` (hello already exchanged), then waits for an `ack` of each.
 * @param {RTCPeerConnection} pc @param {RTCDataChannel} dc @param {Inbox} inbox @param {File[]} files
 */
async function send(pc, dc, inbox, files) {
  const chunk = chunkSize(DEFAULT_CHUNK, pc.sctp?.maxMessageSize);
  const wanted = Number(/** @type {HTMLSelectElement} */ ($('threshold')).value);
  const threshold = clampThreshold(wanted, chunk);
  const total = files.reduce((n, f) => n + f.size, 0);
  let lastProgress = performance.now();
  let lowest = Infinity;
  const sender = new ThresholdSender(dc, {
    threshold,
    onSent: (payload) => {
      if (typeof payload !== 'string') view.bytes += payload.byteLength;
    },
  });
  /** @type {HTMLInputElement} */ ($('pick')).disabled = true;
  setPhase('sending', `Sending ${plural(files.length, 'file')}…`);
  view.start({ total, threshold, probe: () => dc.bufferedAmount });

  let acked = 0;
  let finishing = false;
  // The receiver's messages, read while we send: one `ack` per `eof`, in order.
  const acks = (async () => {
    for (;;) {
      const m = await inbox.next(1000);
      if (m === null) {
        // Progress is an ack or the buffered amount falling (SCTP acknowledged bytes).
        if (dc.bufferedAmount < lowest) {
          lowest = dc.bufferedAmount;
          lastProgress = performance.now();
        }
        if (finishing && performance.now() - lastProgress > FINISH_IDLE_MS) {
          throw new Error(`the receiver confirmed ${acked} of ${files.length} files and then nothing for ${FINISH_IDLE_MS / 60000} minutes`);
        }
        continue;
      }
      if (m === CLOSED) {
        throw new Error(`the connection closed after ${acked} of ${plural(files.length, 'file')} were confirmed`);
      }
      if (typeof m !== 'string') continue; // the spec: a sender ignores data from the receiver
      let msg;
      try {
        msg = wire.decode(m);
      } catch (e) {
        console.warn('dcsend: ignoring a malformed message from the receiver:', message(e));
        continue;
      }
      if (msg.t === 'abort') throw new PeerAborted(`the peer aborted: ${wire.shownReason(msg.reason)}`);
      if (msg.t !== 'ack') continue;
      const f = files[acked];
      if (f === undefined) {
        throw new wire.ProtocolError(`more acks than items: ack ${acked + 1} of ${files.length}`);
      }
      if (!msg.ok) {
        throw new wire.ProtocolError(`the receiver could not verify ${f.name} (it has ${msg.bytes} of ${f.size} bytes)`, {
          integrity: true,
        });
      }
      acked += 1;
      lastProgress = performance.now();
      if (acked === files.length) return;
    }
  })();

  const payload = (async () => {
    for (const [i, f] of files.entries()) {
      view.label = files.length > 1 ? `file ${i + 1} of ${files.length}: ${f.name}` : f.name;
      await sender.enqueue(wire.encode(wire.file(f.name, f.size)));
      const digest = new wire.Digest();
      let offset = 0;
      while (offset < f.size) {
        const block = new Uint8Array(await f.slice(offset, offset + READ_BLOCK).arrayBuffer());
        if (block.length === 0) throw new Error(`${f.name} got shorter while it was being read`);
        digest.update(block);
        for (let at = 0; at < block.length; at += chunk) {
          await sender.enqueue(block.subarray(at, at + chunk));
        }
        offset += block.length;
      }
      await sender.enqueue(wire.encode(wire.eof(offset, digest.hex())));
    }
    await sender.enqueue(wire.encode(wire.done()));
    finishing = true;
    lowest = Infinity;
    lastProgress = performance.now();
    say(`Sent; waiting for the receiver to confirm…`);
  })();
  payload.catch(() => {}); // reported through Promise.all below; never unhandled

  try {
    await Promise.all([payload, acks]);
  } catch (e) {
    const left = sender.close();
    if (left.messages > 0) console.info(`dcsend: ${left.messages} messages (${left.bytes} bytes) left unsent`);
    throw e;
  }
  sender.close();
  view.stop();
  return `Done: ${plural(files.length, 'file')} (${size(total)}) delivered, and the receiver confirmed each one's SHA-256.`;
}

// ---------------------------------------------------------------------------------------------
// Receiving.

/**
 * Receives items until `done` (hello already exchanged).
 * @param {RTCDataChannel} dc @param {Inbox} inbox @param {string | ArrayBuffer | null} first
 *   a message already read
 */
async function receive(dc, inbox, first) {
  setPhase('receiving', 'Connected; receiving…');
  view.start({ total: null, threshold: null, probe: null });
  /** @type {{ name: string, size: number | null, bytes: number, digest: wire.Digest, sink: MemorySink | FolderSink } | null} */
  let item = null;
  let count = 0;
  let pending = first;
  try {
    for (;;) {
      const m = pending ?? (await inbox.next());
      pending = null;
      if (m === null) continue;
      if (m === CLOSED) {
        throw new Error(
          item ? `the connection closed in the middle of ${item.name}` : 'the connection closed before the sender said it was done',
        );
      }
      if (typeof m !== 'string') {
        if (item === null) throw new wire.ProtocolError('data outside a file (no file header)');
        const bytes = new Uint8Array(m);
        item.bytes += bytes.length;
        if (item.size !== null && item.bytes > item.size) {
          throw new wire.ProtocolError('more bytes than the file header announced');
        }
        item.digest.update(bytes);
        item.sink.write(bytes);
        view.bytes += bytes.length;
        continue;
      }
      const msg = wire.decode(m);
      switch (msg.t) {
        case 'file': {
          if (item !== null) throw new wire.ProtocolError('a file header inside an item');
          if (msg.resume) throw new wire.ProtocolError('a file to resume, which this receiver did not ask for');
          const name = msg.name === null ? 'stream' : wire.checkName(msg.name);
          if (folder === null && msg.size !== null && msg.size > MEMORY_CAP) {
            throw new Error(
              `${name} is ${size(msg.size)}, more than this page keeps in memory (${size(MEMORY_CAP)}); ` +
                ('showDirectoryPicker' in window ? 'choose "Save into a folder" first, or ' : '') +
                'receive it with dcsend recv',
            );
          }
          const sink = folder === null ? new MemorySink() : await FolderSink.open(folder, name);
          item = { name, size: msg.size, bytes: 0, digest: new wire.Digest(), sink };
          // The session's bytes so far, and where they will be at the end of this item.
          view.total = msg.size === null ? null : view.bytes + msg.size;
          view.label = name;
          say(`Receiving ${name}…`);
          break;
        }
        case 'eof': {
          if (item === null) throw new wire.ProtocolError('eof without a file header');
          const digest = item.digest.hex();
          const sizeOk = item.size === null || item.size === item.bytes;
          if (msg.bytes !== item.bytes || msg.sha256 !== digest || !sizeOk) {
            dc.send(wire.encode(wire.ack(item.bytes, false)));
            throw new wire.ProtocolError(
              `integrity check failed for ${item.name}: received ${item.bytes} bytes with SHA-256 ${digest}, ` +
                `the sender says ${msg.bytes} bytes with ${msg.sha256}`,
              { integrity: true },
            );
          }
          const href = await item.sink.finish();
          showReceived(item.name, item.bytes, digest, href);
          dc.send(wire.encode(wire.ack(item.bytes, true)));
          count += 1;
          item = null;
          break;
        }
        case 'done': {
          if (item !== null) throw new wire.ProtocolError('done inside an item');
          view.stop();
          $('folder-box').hidden = true;
          return `Done: received ${plural(count, 'file')}, each SHA-256 verified.${folder ? '' : ' Save them with the links below.'}`;
        }
        case 'abort':
          throw new PeerAborted(`the peer aborted: ${wire.shownReason(msg.reason)}`);
        case 'hello':
          break; // said once already; a repeat changes nothing
        default:
          throw new wire.ProtocolError(`a ${msg.t} message from the sender`);
      }
    }
  } catch (e) {
    if (item !== null) await item.sink.abort();
    throw e;
  }
}

/** A plain peer (binary before any `hello`): one unnamed stream, ended by the channel closing. */
async function receivePlain(inbox, /** @type {ArrayBuffer} */ first) {
  setPhase('receiving', 'Receiving a stream from a plain WebRTC peer (no size or checksum)…');
  view.start({ total: null, threshold: null, probe: null });
  const sink = new MemorySink();
  /** @type {string | ArrayBuffer | typeof CLOSED | null} */
  let m = first;
  for (;;) {
    if (m === CLOSED) break;
    if (m instanceof ArrayBuffer) {
      sink.write(new Uint8Array(m));
      view.bytes += m.byteLength;
    }
    m = await inbox.next();
  }
  showReceived('stream', sink.bytes, '', await sink.finish());
  view.stop();
  return 'Done: the peer closed the channel (unverified).';
}

// ---------------------------------------------------------------------------------------------
// A session: connect, agree on who sends, transfer.

/** @param {PeerUrl} url */
async function session(url) {
  const { pc, dc } = await connect(url);
  const inbox = new Inbox(pc, dc);
  /** @type {'send' | 'recv' | null} */
  let role = null;
  let summary = '';
  const speak = (/** @type {'send' | 'recv'} */ r) => {
    role = r;
    document.body.dataset.role = r;
    dc.send(wire.encode(wire.hello(r, r === 'recv' ? RECEIVE_THRESHOLD : null)));
    $('send-box').hidden = r !== 'send';
    $('folder-box').hidden = r !== 'recv' || !('showDirectoryPicker' in window);
  };
  const stopOnHide = () => {
    if (dc.readyState === 'open') dc.send(wire.encode(wire.abort('the browser page was closed')));
  };
  window.addEventListener('pagehide', stopOnHide);
  try {
    if (chosen.length > 0) speak('send');
    setPhase('ready', 'Connected; waiting for the other side to say hello…');
    const first = await inbox.next(HELLO_TIMEOUT_MS);
    if (first === null) throw new Error(`the other side said nothing for ${HELLO_TIMEOUT_MS / 1000}s after connecting (is it dcsend?)`);
    if (first === CLOSED) throw new Error('the other side closed the connection before saying hello');
    if (typeof first !== 'string') {
      if (role === 'send') throw new wire.ProtocolError('data from the receiver');
      summary = await receivePlain(inbox, first);
    } else {
      const hello = wire.decode(first);
      if (hello.t === 'abort') throw new PeerAborted(`the peer aborted: ${wire.shownReason(hello.reason)}`);
      if (hello.t !== 'hello') throw new wire.ProtocolError(`a ${hello.t} message before hello`);
      if (hello.v !== wire.VERSION) {
        throw new wire.ProtocolError(`unsupported protocol version ${hello.v} (we speak ${wire.VERSION})`);
      }
      if (hello.role === 'recv') {
        if (role === null) speak('send');
        setPhase('ready', chosen.length > 0 ? 'Connected.' : 'Connected to a receiver: choose the files to send.');
        summary = await send(pc, dc, inbox, await filesToSend());
      } else {
        if (role === 'send') throw new wire.ProtocolError('both ends want to send');
        speak('recv');
        summary = await receive(dc, inbox, null);
      }
    }
  } catch (e) {
    if (!(e instanceof PeerAborted) && dc.readyState === 'open') {
      try {
        dc.send(wire.encode(wire.abort(abortReason(e))));
      } catch {
        // the channel is going away anyway
      }
    }
    await linger(dc);
    pc.close();
    throw e;
  } finally {
    window.removeEventListener('pagehide', stopOnHide);
  }
  // Our last messages (the last ack) leave before the channel closes, and the close reaches
  // the peer, before the page says done: a person (or a test) closing the tab at "Done" must
  // not cut them off.
  await linger(dc);
  await new Promise((r) => window.setTimeout(r, 100));
  pc.close();
  setPhase('done', summary);
}

/** Until the channel's buffer is empty or it closed, at most `LINGER_MS`. @param {RTCDataChannel} dc */
async function linger(dc) {
  const end = performance.now() + LINGER_MS;
  while (dc.readyState === 'open' && performance.now() < end) {
    if (dc.bufferedAmount === 0) {
      await new Promise((r) => window.setTimeout(r, 100));
      if (dc.bufferedAmount === 0) break;
    }
    await new Promise((r) => window.setTimeout(r, 20));
  }
  dc.close();
}

/** @param {PeerUrl} url */
function showInvite(url) {
  const text = url.toString();
  $('invite-box').hidden = false;
  $('invite').textContent = text;
  $('invite').dataset.url = text;
  $('cmd-recv').textContent = `dcsend recv --peer '${text}' -o .`;
  $('cmd-send').textContent = `dcsend FILE... --peer '${text}'`;
  const copy = $('copy');
  if (!navigator.clipboard) {
    copy.hidden = true;
    return;
  }
  copy.addEventListener('click', () => {
    navigator.clipboard.writeText(text).then(
      () => ($('copied').textContent = 'Copied.'),
      () => ($('copied').textContent = 'Could not copy; select the address below.'),
    );
  });
}

async function main() {
  watchChoices();
  // Before connecting, a folder can be chosen: a dcsend sender starts at once.
  offerFolder();
  let url;
  try {
    url = PeerUrl.parse(location.href);
  } catch (e) {
    fail(e);
    return;
  }
  $('send-box').hidden = false;
  if (url.room === null) {
    setPhase('idle', 'Open a room to start.');
    $('landing').hidden = false;
    await new Promise((resolve) => $('open-room').addEventListener('click', resolve, { once: true }));
    $('landing').hidden = true;
    url = url.completed();
    history.replaceState(null, '', url.toString());
    showInvite(url);
  }
  try {
    await session(url);
  } catch (e) {
    fail(e);
  }
  $('invite-box').hidden = true;
}

main();
