// One transfer over an open `dcsend` data channel, as the browser's end: who sends is decided
// by the peer's `hello` (a receiver makes us the sender, a sender makes us the receiver), then
// the wire protocol of docs/protocol.md (./wire.js): `file` / payload / `eof` (SHA-256) / `ack`
// per file, then `done`. Sending goes through the threshold sender (./sender.js); received
// bytes go into sinks the page provides (./sinks.js).
//
// No DOM and no RTCPeerConnection: a session sees the channel (anything with `send`,
// `readyState`, `bufferedAmount`, `bufferedAmountLowThreshold`, `close` and the `message`,
// `close` and `bufferedamountlow` events), tells the person what happens through a `Ui`, and
// counts bytes in a `Progress` the view draws. So node runs it against a fake channel
// (web/test/session.mjs). The mirror of src/transfer/{send,recv}.rs.

import * as wire from './wire.js';
import { ThresholdSender, clampThreshold, chunkSize, DEFAULT_CHUNK } from './sender.js';
import { Fifo } from './fifo.js';
import { plural, message, sentSummary, receivedSummary } from './format.js';

/** A dcsend peer says `hello` as soon as the channel opens. */
export const HELLO_TIMEOUT_MS = 30_000;
/** The sender's finish rule (docs/protocol.md): 2 minutes without progress. */
export const FINISH_IDLE_MS = 120_000;
/** How much of a file is read from disk at once; it is cut into messages of the chunk size. */
const READ_BLOCK = 1 << 20;
/**
 * What the page asks a sender to keep buffered at most (`hello.threshold`). A browser reads
 * UDP through a socket with the system's default receive buffer (212 KiB on Linux), and drops
 * what overflows it; webrtc-rs's SCTP then waits a retransmission timeout of at least 1 s for
 * each loss. With 32 KiB nothing was dropped on loopback, with 64 KiB 167 datagrams per 32 MiB (see
 * BENCHMARKS.md, "dcsend to a browser").
 */
export const RECEIVE_THRESHOLD = 32 * 1024;
/** Once `done` was seen or sent, how long to let the last messages drain before closing. */
const LINGER_MS = 1_000;

const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// What the session reports.

/**
 * Bytes moved and the channel's buffered amount, for the view to draw; the session updates it.
 * `onChange` (set by the view) hears `start` and `stop`.
 */
export class Progress {
  constructor() {
    this.bytes = 0;
    /** @type {number | null} bytes at the end of the current item; null while unknown */
    this.total = null;
    /** @type {number | null} the send threshold; null when receiving */
    this.threshold = null;
    /** @type {(() => number) | null} reads the channel's buffered amount */
    this.probe = null;
    this.label = '';
    /** @type {number | null} */ this.started = null;
    /** @type {number | null} */ this.ended = null;
    /** @type {[number, number][]} (time, bytes) over the last seconds */
    this.samples = [];
    /** @type {(event: 'start' | 'stop') => void} */
    this.onChange = () => {};
  }

  /** @param {{ total: number | null, threshold: number | null, probe: (() => number) | null }} what */
  start({ total, threshold, probe }) {
    Object.assign(this, { total, threshold, probe, started: performance.now() });
    this.onChange('start');
  }

  stop() {
    if (this.started === null || this.ended !== null) return;
    this.ended = performance.now();
    this.onChange('stop');
  }

  /** The channel's buffered amount now (0 when receiving). */
  buffered() {
    return this.probe ? this.probe() : 0;
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
}

/**
 * What the session tells the person, and the view shows.
 * @typedef {object} Ui
 * @property {(phase: string, text?: string) => void} phase ready, sending, receiving
 * @property {(text: string) => void} say a new status line
 * @property {(role: 'send' | 'recv') => void} role which end this page is, once known
 * @property {(item: { name: string, bytes: number, sha256: string, href: string | null }) => void} received
 *   an item verified (`sha256`, '' when the peer sent none) and stored: a download (`href`) or
 *   saved into a folder (`href` null)
 */

/**
 * Where received items go.
 * @typedef {object} Sinks
 * @property {(name: string, size: number | null) => Promise<import('./sinks.js').Sink>} open
 *   a sink for one item (rejects when it cannot be kept: too large, or the name is taken)
 * @property {() => import('./sinks.js').MemorySink} stream a sink for a plain peer's stream
 * @property {() => boolean} inFolder whether items are saved into a folder (no links to save)
 * @property {(files: number | null) => Promise<true | string>} [forTree] a sender announced a
 *   folder (`files` files): `true` when the items can now go into a folder (one is chosen, or
 *   the person chose one when asked), else why not (absent: `NO_FOLDER_HERE`)
 * @property {(path: string) => Promise<void>} [makeDir] makes a folder of a tree (a `dir`)
 */

/**
 * The files to send.
 * @typedef {object} Choice
 * @property {() => Chosen[]} now those chosen so far (empty: none yet)
 * @property {() => Promise<Chosen[]>} next those chosen so far, or else the next choice
 */

/**
 * One thing chosen to send: a `File` (named by its `webkitRelativePath` when it came from a
 * folder input, else by its name), or an `Entry` of a dropped folder.
 * @typedef {File | Entry} Chosen
 */

/**
 * An item of a tree, by its relative path (`/` between components): a file (`blob`) or a
 * folder (`blob` null), which is sent as a `dir` so that empty folders arrive too.
 * @typedef {{ path: string, blob: Blob | null }} Entry
 */

/** What goes on the wire for one chosen thing. @typedef {{ name: string, size: number, blob: Blob | null }} Item */

/** @param {Chosen} c @returns {Item} */
export function itemOf(c) {
  if ('path' in c) return { name: c.path, size: c.blob?.size ?? 0, blob: c.blob };
  return { name: c.webkitRelativePath || c.name, size: c.size, blob: c };
}

/**
 * The sender's `hello` fields for `chosen` (docs/protocol.md, "Trees"): `tree` when it holds a
 * folder (a `dir`, or a file with a path), and always how many files and bytes follow.
 * @param {Chosen[]} chosen
 */
export function announce(chosen) {
  const items = chosen.map(itemOf);
  const files = items.filter((i) => i.blob !== null);
  return {
    tree: items.some((i) => i.blob === null || i.name.includes('/')) ? true : null,
    files: files.length,
    bytes: files.reduce((n, i) => n + i.size, 0),
  };
}

/** What the page says when it cannot receive a folder. */
export const NO_FOLDER_HERE = 'this browser cannot save a folder; receive with `dcsend recv -o DIR/`';

// ---------------------------------------------------------------------------------------------
// The channel's messages.

export const CLOSED = Symbol('closed');

/** The channel's messages in order, pulled one at a time; `CLOSED` once it closed or failed. */
export class Inbox {
  /**
   * @param {EventTarget} dc the data channel
   * @param {EventTarget & { connectionState: string }} [pc] its connection: a failed or closed
   *   connection ends the inbox even when the channel's `close` event does not come
   */
  constructor(dc, pc) {
    /** @type {Fifo<string | ArrayBuffer>} */ this.items = new Fifo();
    this.closed = false;
    /** @type {(() => void) | null} */ this.wake = null;
    dc.addEventListener('message', (e) => {
      this.items.push(/** @type {MessageEvent} */ (e).data);
      this.notify();
    });
    const end = () => {
      this.closed = true;
      this.notify();
    };
    dc.addEventListener('close', end);
    pc?.addEventListener('connectionstatechange', () => {
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
      /** @type {ReturnType<typeof setTimeout> | undefined} */
      let timer;
      await new Promise((resolve) => {
        this.wake = () => resolve(undefined);
        if (left !== Infinity) timer = setTimeout(() => resolve(undefined), left);
      });
      clearTimeout(timer);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Errors.

/** The peer said `abort`. */
export class PeerAborted extends Error {
  /** @param {string} reason as the peer sent it */
  constructor(reason) {
    super(`the peer aborted: ${wire.shownReason(reason)}`);
    this.name = 'PeerAborted';
  }
}

/** What the page tells the other side when it stops because of `e`. @param {unknown} e */
export function abortReason(e) {
  if (e instanceof wire.ProtocolError) return e.message;
  return `the browser page stopped: ${message(e)}`;
}

// ---------------------------------------------------------------------------------------------
// The session.

/**
 * @typedef {{ send(p: string | ArrayBuffer | ArrayBufferView): void, close(): void,
 *   readyState: string, bufferedAmount: number, bufferedAmountLowThreshold: number,
 *   addEventListener(type: string, fn: (e: any) => void, o?: any): void,
 *   removeEventListener(type: string, fn: (e: any) => void): void }} Channel
 */

export class Session {
  /**
   * @param {Channel} dc the open `dcsend` channel, `binaryType` 'arraybuffer'
   * @param {{ inbox: Inbox, ui: Ui, progress: Progress, choice: Choice, sinks: Sinks,
   *   threshold: () => number, maxMessageSize?: () => number | null | undefined,
   *   helloTimeoutMs?: number }} options
   *   read when sending starts: `threshold`, the send threshold wanted (clamped to the
   *   browser's queue), and `maxMessageSize`, the peer's `a=max-message-size`
   *   (RTCSctpTransport.maxMessageSize; absent or 0: no limit)
   */
  constructor(dc, { inbox, ui, progress, choice, sinks, threshold, maxMessageSize = () => null, helloTimeoutMs = HELLO_TIMEOUT_MS }) {
    this.dc = dc;
    this.inbox = inbox;
    this.ui = ui;
    this.progress = progress;
    this.choice = choice;
    this.sinks = sinks;
    this.threshold = threshold;
    this.maxMessageSize = maxMessageSize;
    this.helloTimeoutMs = helloTimeoutMs;
    /** @type {'send' | 'recv' | null} the role this page announced */
    this.role = null;
  }

  /**
   * Agrees on who sends, transfers, and lets the last messages leave. Resolves with the summary
   * for the person; rejects with why it stopped, after telling the peer (`abort`) unless the
   * peer aborted. Either way the channel is closed at the end.
   */
  async run() {
    let summary;
    try {
      summary = await this.transfer();
    } catch (e) {
      if (!(e instanceof PeerAborted)) this.abort(abortReason(e));
      await this.linger();
      throw e;
    }
    // Our last messages (the last ack) leave before the channel closes, and the close reaches
    // the peer, before the page says done: a person (or a test) closing the tab at "Done" must
    // not cut them off.
    await this.linger();
    await sleep(100);
    return summary;
  }

  /** Tells the peer we stop (best effort: the channel may be going away). @param {string} reason */
  abort(reason) {
    if (this.dc.readyState !== 'open') return;
    try {
      this.dc.send(wire.encode(wire.abort(reason)));
    } catch {
      // the channel is going away anyway
    }
  }

  /**
   * @private @param {'send' | 'recv'} role
   * @param {{ tree?: boolean | null, files?: number | null, bytes?: number | null }} [extension]
   */
  speak(role, extension = {}) {
    this.role = role;
    this.ui.role(role);
    const fields = role === 'send' && this.choice.now().length > 0 ? announce(this.choice.now()) : extension;
    this.dc.send(wire.encode(wire.hello(role, role === 'recv' ? RECEIVE_THRESHOLD : null, fields)));
  }

  /** @private */
  async transfer() {
    // Files chosen before the channel opened: say hello as a sender at once (two pages can meet).
    if (this.choice.now().length > 0) this.speak('send');
    this.ui.phase('ready', 'Connected; waiting for the other side to say hello…');
    const first = await this.firstMessage();
    if (first === null) {
      throw new Error(`the other side said nothing for ${this.helloTimeoutMs / 1000}s after connecting (is it dcsend?)`);
    }
    if (first === CLOSED) throw new Error('the other side closed the connection before saying hello');
    if (typeof first !== 'string') {
      if (this.role === 'send') throw new wire.ProtocolError('data from the receiver');
      return this.receivePlain(first);
    }
    const hello = wire.decode(first);
    if (hello.t === 'abort') throw new PeerAborted(hello.reason);
    if (hello.t !== 'hello') throw new wire.ProtocolError(`a ${hello.t} message before hello`);
    if (hello.v !== wire.VERSION) {
      throw new wire.ProtocolError(`unsupported protocol version ${hello.v} (we speak ${wire.VERSION})`);
    }
    if (hello.role === 'recv') {
      if (this.role === null) this.speak('send');
      const chosen = this.choice.now().length > 0;
      this.ui.phase('ready', chosen ? 'Connected.' : 'Connected to a receiver: choose the files to send.');
      return this.send(await this.choice.next(), hello.tree === true);
    }
    if (this.role === 'send') throw new wire.ProtocolError('both ends want to send');
    // A folder goes only into a folder the person chose (tree: true), else it is refused, here
    // and by a dcsend sender, which sees tree: false.
    /** @type {true | string} */
    let why = 'no folder was announced';
    if (hello.tree === true) why = this.sinks.forTree ? await this.sinks.forTree(hello.files) : NO_FOLDER_HERE;
    const tree = why === true;
    this.speak('recv', { tree });
    if (hello.tree === true && !tree) {
      const n = hello.files === null ? '' : ` (${plural(hello.files, 'file')})`;
      throw new Error(`the sender sends a folder${n}, and ${why}`);
    }
    return this.receive(tree);
  }

  /**
   * The peer's first message, or null after the hello timeout. A dcsend peer says hello at once;
   * another page says nothing until its person chooses files, so meanwhile files chosen here
   * make this page the sender. (The inbox is read in short slices: an abandoned read could
   * take a message from under the next one.)
   * @private @returns {Promise<string | ArrayBuffer | typeof CLOSED | null>}
   */
  async firstMessage() {
    const deadline = performance.now() + this.helloTimeoutMs;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) return null;
      const m = await this.inbox.next(Math.min(left, 200));
      if (m !== null) return m;
      if (this.role === null && this.choice.now().length > 0) this.speak('send');
    }
  }

  // -------------------------------------------------------------------------------------------
  // Sending.

  /**
   * Sends what was chosen (hello already exchanged), then waits for an `ack` of each file.
   * @private @param {Chosen[]} chosen @param {boolean} peerTakesTrees the receiver said `tree: true`
   */
  async send(chosen, peerTakesTrees) {
    const { dc, inbox, progress } = this;
    const items = chosen.map(itemOf);
    const files = items.filter((i) => i.blob !== null);
    if (announce(chosen).tree && !peerTakesTrees) {
      throw new Error(
        'the receiver cannot hold a folder (a dcsend writing to stdout or one file, or an older one, or a page ' +
          'without a folder to save into): receive with `dcsend recv -o DIR/`, or choose files instead of a folder',
      );
    }
    const chunk = chunkSize(DEFAULT_CHUNK, this.maxMessageSize());
    const threshold = clampThreshold(this.threshold(), chunk);
    const total = files.reduce((n, f) => n + f.size, 0);
    let lastProgress = performance.now();
    let lowest = Infinity;
    const sender = new ThresholdSender(dc, {
      threshold,
      onSent: (payload) => {
        if (typeof payload !== 'string') progress.bytes += payload.byteLength;
      },
    });
    this.ui.phase('sending', `Sending ${plural(files.length, 'file')}…`);
    progress.start({ total, threshold, probe: () => dc.bufferedAmount });

    let acked = 0;
    let finishing = false;
    // The receiver's messages, read while we send: one `ack` per `eof`, in order.
    const acks = (async () => {
      if (files.length === 0) return; // only empty folders
      for (;;) {
        const m = await inbox.next(1000);
        if (m === null) {
          // Progress is an ack or the buffered amount falling (SCTP acknowledged bytes).
          if (dc.bufferedAmount < lowest) {
            lowest = dc.bufferedAmount;
            lastProgress = performance.now();
          }
          if (finishing && performance.now() - lastProgress > FINISH_IDLE_MS) {
            throw new Error(
              `the receiver confirmed ${acked} of ${files.length} files and then nothing for ${FINISH_IDLE_MS / 60000} minutes`,
            );
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
        if (msg.t === 'abort') throw new PeerAborted(msg.reason);
        if (msg.t !== 'ack') continue;
        const f = files[acked];
        if (f === undefined) {
          throw new wire.ProtocolError(`more acks than items: ack ${acked + 1} of ${files.length}`);
        }
        if (!msg.ok) {
          throw new wire.ProtocolError(
            `the receiver could not verify ${f.name} (it has ${msg.bytes} of ${f.size} bytes)`,
            { integrity: true },
          );
        }
        acked += 1;
        lastProgress = performance.now();
        if (acked === files.length) return;
      }
    })();

    const payload = (async () => {
      let i = 0;
      for (const f of items) {
        if (f.blob === null) {
          await sender.enqueue(wire.encode(wire.dir(f.name)));
          continue;
        }
        const blob = f.blob;
        i += 1;
        progress.label = files.length > 1 ? `file ${i} of ${files.length}: ${f.name}` : f.name;
        await sender.enqueue(wire.encode(wire.file(f.name, f.size)));
        const digest = new wire.Digest();
        let offset = 0;
        while (offset < f.size) {
          const block = new Uint8Array(await blob.slice(offset, offset + READ_BLOCK).arrayBuffer());
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
      this.ui.say(`Sent; waiting for the receiver to confirm…`);
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
    progress.stop();
    return sentSummary(files.length, total);
  }

  // -------------------------------------------------------------------------------------------
  // Receiving.

  /**
   * Receives items until `done` (hello already exchanged).
   * @private @param {boolean} tree whether we said `tree: true` (paths and `dir` are accepted)
   */
  async receive(tree) {
    const { dc, inbox, progress } = this;
    this.ui.phase('receiving', 'Connected; receiving…');
    progress.start({ total: null, threshold: null, probe: null });
    /** @type {{ name: string, size: number | null, bytes: number, digest: wire.Digest, sink: import('./sinks.js').Sink } | null} */
    let item = null;
    let count = 0;
    try {
      for (;;) {
        const m = await inbox.next();
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
          progress.bytes += bytes.length;
          continue;
        }
        const msg = wire.decode(m);
        switch (msg.t) {
          case 'file': {
            if (item !== null) throw new wire.ProtocolError('a file header inside an item');
            if (msg.resume) throw new wire.ProtocolError('a file to resume, which this receiver did not ask for');
            const name = msg.name === null ? 'stream' : this.checkedName(msg.name, tree);
            const sink = await this.sinks.open(name, msg.size);
            item = { name, size: msg.size, bytes: 0, digest: new wire.Digest(), sink };
            // The session's bytes so far, and where they will be at the end of this item.
            progress.total = msg.size === null ? null : progress.bytes + msg.size;
            progress.label = name;
            this.ui.say(`Receiving ${name}…`);
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
            this.ui.received({ name: item.name, bytes: item.bytes, sha256: digest, href });
            dc.send(wire.encode(wire.ack(item.bytes, true)));
            count += 1;
            item = null;
            break;
          }
          case 'done': {
            if (item !== null) throw new wire.ProtocolError('done inside an item');
            progress.stop();
            return receivedSummary(count, this.sinks.inFolder());
          }
          case 'dir': {
            if (item !== null) throw new wire.ProtocolError('a file header inside an item (no eof)');
            const name = this.checkedName(msg.name, tree, true);
            if (!this.sinks.makeDir) throw new Error(`the sender sends a folder, and ${NO_FOLDER_HERE}`);
            await this.sinks.makeDir(name);
            break;
          }
          case 'abort':
            throw new PeerAborted(msg.reason);
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

  /**
   * `name` checked as a file name, or, when we said `tree: true`, as a path whose every component
   * is a valid name; a folder we cannot hold is refused with what to do.
   * @private @param {string} name @param {boolean} tree @param {boolean} [isDir]
   */
  checkedName(name, tree, isDir = false) {
    if (!tree && (isDir || name.includes('/'))) {
      // An invalid path is refused as a name (the name rules' words); a valid one as a folder.
      try {
        wire.checkPath(name);
      } catch {
        wire.checkName(name);
      }
      throw new Error(`the sender sends a folder, and ${NO_FOLDER_HERE}`);
    }
    return tree ? wire.checkPath(name).join('/') : wire.checkName(name);
  }

  /**
   * A plain peer (binary before any `hello`): one unnamed stream, ended by the channel closing.
   * @private @param {ArrayBuffer} first
   */
  async receivePlain(first) {
    const { inbox, progress } = this;
    this.ui.phase('receiving', 'Receiving a stream from a plain WebRTC peer (no size or checksum)…');
    progress.start({ total: null, threshold: null, probe: null });
    const sink = this.sinks.stream();
    /** @type {string | ArrayBuffer | typeof CLOSED | null} */
    let m = first;
    for (;;) {
      if (m === CLOSED) break;
      if (m instanceof ArrayBuffer) {
        sink.write(new Uint8Array(m));
        progress.bytes += m.byteLength;
      }
      m = await inbox.next();
    }
    this.ui.received({ name: 'stream', bytes: sink.bytes, sha256: '', href: await sink.finish() });
    progress.stop();
    return 'Done: the peer closed the channel (unverified).';
  }

  /** Until the channel's buffer is empty or it closed, at most `LINGER_MS`; then closes it. @private */
  async linger() {
    const dc = this.dc;
    const end = performance.now() + LINGER_MS;
    while (dc.readyState === 'open' && performance.now() < end) {
      if (dc.bufferedAmount === 0) {
        await sleep(100);
        if (dc.bufferedAmount === 0) break;
      }
      await sleep(20);
    }
    dc.close();
  }
}
