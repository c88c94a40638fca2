// The page's session (src/session.js) under node, over fake data channels: two pages moving
// files to each other, and a scripted peer that breaks the rules (a wrong digest, an abort with
// bidirectional overrides, a refused name, silence, a plain stream). Each case checks what both
// ends see: the messages on the wire, the session's result, what the person is shown.
// Exits non-zero on the first failed check.
//
//   node test/session.mjs

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { resolveObjectURL } from 'node:buffer';
import * as wire from '../src/wire.js';
import { Session, Inbox, Progress, PeerAborted } from '../src/session.js';
import { MemorySink, FolderSink, folderAt } from '../src/sinks.js';
import { fakeFolder, listing } from './fake-folder.mjs';

const sha256 = (/** @type {Uint8Array} */ b) => createHash('sha256').update(b).digest('hex');
const tick = () => new Promise((r) => setImmediate(r));

/**
 * One end of an in-memory ordered channel. Sent messages count in `bufferedAmount` until the
 * event loop delivers them to the other end, which then fires `bufferedamountlow` as a browser
 * does. `close` reaches the other end after what was sent before it.
 */
class FakeChannel extends EventTarget {
  constructor() {
    super();
    this.readyState = 'open';
    this.bufferedAmount = 0;
    this.bufferedAmountLowThreshold = 0;
    this.binaryType = 'arraybuffer';
    /** @type {FakeChannel | null} */ this.peer = null;
    /** @type {(string | Uint8Array)[]} everything sent, in order (binary copied) */
    this.sent = [];
  }
  /** @param {string | ArrayBuffer | ArrayBufferView} p */
  send(p) {
    if (this.readyState !== 'open') throw new Error('InvalidStateError: the channel is not open');
    const copy = typeof p === 'string' ? p : new Uint8Array(ArrayBuffer.isView(p) ? p.buffer.slice(p.byteOffset, p.byteOffset + p.byteLength) : p.slice(0));
    const n = typeof copy === 'string' ? Buffer.byteLength(copy) : copy.byteLength;
    this.sent.push(copy);
    this.bufferedAmount += n;
    setImmediate(() => {
      const before = this.bufferedAmount;
      this.bufferedAmount -= n;
      if (this.peer?.readyState === 'open') {
        const data = typeof copy === 'string' ? copy : copy.buffer;
        this.peer.dispatchEvent(Object.assign(new Event('message'), { data }));
      }
      if (before > this.bufferedAmountLowThreshold && this.bufferedAmount <= this.bufferedAmountLowThreshold) {
        this.dispatchEvent(new Event('bufferedamountlow'));
      }
    });
  }
  close() {
    if (this.readyState === 'closed') return;
    this.readyState = 'closed';
    setImmediate(() => {
      this.dispatchEvent(new Event('close'));
      const peer = this.peer;
      if (peer && peer.readyState !== 'closed') {
        peer.readyState = 'closed';
        peer.dispatchEvent(new Event('close'));
      }
    });
  }
  /** The control messages sent, decoded. */
  controls() {
    return this.sent.filter((m) => typeof m === 'string').map((m) => wire.decode(m));
  }
}

function pair() {
  const a = new FakeChannel();
  const b = new FakeChannel();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** A session on `dc` with a recording ui; `files` chosen before the channel opened. */
function page(dc, { files = [], threshold = 64 * 1024, maxMessageSize = null, helloTimeoutMs, folder = null } = {}) {
  const shown = { phases: [], roles: [], received: [], lines: [] };
  const progress = new Progress();
  const sinks = folder
    ? {
        // A folder chosen (the File System Access API): items and trees go into it.
        open: async (name) => FolderSink.open(folder, name),
        stream: () => new MemorySink(),
        inFolder: () => true,
        forTree: async () => /** @type {true} */ (true),
        makeDir: async (path) => void (await folderAt(folder, path.split('/'))),
      }
    : { open: async () => new MemorySink(), stream: () => new MemorySink(), inFolder: () => false };
  const session = new Session(dc, {
    inbox: new Inbox(dc),
    ui: {
      phase: (p, text) => shown.phases.push(p) && text !== undefined && shown.lines.push(text),
      say: (text) => shown.lines.push(text),
      role: (r) => shown.roles.push(r),
      received: (item) => shown.received.push(item),
    },
    progress,
    choice: { now: () => files, next: async () => files },
    sinks,
    threshold: () => threshold,
    maxMessageSize: () => maxMessageSize,
    helloTimeoutMs,
  });
  return { session, shown, progress };
}

/** The bytes behind a received item's download link. */
async function downloaded(/** @type {string} */ href) {
  const blob = resolveObjectURL(href);
  assert.ok(blob, `no blob behind ${href}`);
  return new Uint8Array(await blob.arrayBuffer());
}

/** A scripted peer: sends what it is told, reads what the page sends. @param {FakeChannel} dc */
function peer(dc) {
  const inbox = new Inbox(dc);
  return {
    /** @param {object} msg */
    say: (msg) => dc.send(wire.encode(msg)),
    /** The page's next control message (skipping none). */
    async hear() {
      const m = await inbox.next(5000);
      assert.equal(typeof m, 'string', `expected a control message, got ${String(m)}`);
      return wire.decode(/** @type {string} */ (m));
    },
  };
}

let passed = 0;
/** @param {string} name @param {() => Promise<void>} fn */
async function test(name, fn) {
  try {
    await fn();
  } catch (e) {
    console.error(`FAIL ${name}`);
    throw e;
  }
  passed += 1;
  console.log(`ok ${name}`);
}

await test('two pages, nothing chosen yet: a file chosen after connecting makes that page the sender', async () => {
  const [a, b] = pair();
  const later = [];
  const sender = page(a, { files: later });
  const receiver = page(b);
  setTimeout(() => later.push(new File(['hello'], 'one.txt')), 300);
  const [sent, received] = await Promise.all([sender.session.run(), receiver.session.run()]);
  assert.equal(sent, 'Done: 1 file (5 B) delivered, and the receiver confirmed its SHA-256.');
  assert.equal(received, 'Done: received 1 file, its SHA-256 verified. Save it with the link below.');
  assert.deepEqual([sender.shown.roles, receiver.shown.roles], [['send'], ['recv']]);
  assert.deepEqual(await downloaded(receiver.shown.received[0].href), new TextEncoder().encode('hello'));
});

await test('two pages: files chosen first make a sender; every byte arrives, verified and acknowledged', async () => {
  const [a, b] = pair();
  const big = new Uint8Array(randomBytes(300_000));
  const files = [new File(['hello'], 'a.txt'), new File([big], 'big.bin'), new File([], 'empty')];
  // A small threshold and the peer's 16 KiB message limit: many messages, many pauses.
  const sender = page(a, { files, threshold: 40_000, maxMessageSize: 16384 });
  const receiver = page(b);
  const [sent, received] = await Promise.all([sender.session.run(), receiver.session.run()]);
  assert.equal(sent, "Done: 3 files (293.0 KiB) delivered, and the receiver confirmed each one's SHA-256.");
  assert.equal(received, 'Done: received 3 files, each SHA-256 verified. Save them with the links below.');
  assert.deepEqual([sender.shown.roles, receiver.shown.roles], [['send'], ['recv']]);
  assert.deepEqual(sender.shown.phases, ['ready', 'ready', 'sending']);
  assert.deepEqual(receiver.shown.phases, ['ready', 'receiving']);
  const want = [new TextEncoder().encode('hello'), big, new Uint8Array()];
  assert.equal(receiver.shown.received.length, 3);
  for (const [i, item] of receiver.shown.received.entries()) {
    assert.equal(item.name, files[i].name);
    assert.equal(item.sha256, sha256(want[i]));
    assert.deepEqual(await downloaded(item.href), want[i]);
  }
  // The receiver asked for its threshold; no message was over the peer's limit.
  assert.equal(b.controls()[0].threshold, 32 * 1024);
  assert.ok(a.sent.every((m) => typeof m === 'string' || m.byteLength <= 16384));
  assert.deepEqual(
    b.controls().slice(1).map((m) => [m.t, m.bytes, m.ok]),
    [['ack', 5, true], ['ack', 300_000, true], ['ack', 0, true]],
  );
  assert.equal(sender.progress.bytes, 300_005);
  assert.equal(receiver.progress.bytes, 300_005);
  assert.equal(a.readyState, 'closed');
});

await test('a wrong digest: ack not ok, then an abort that says why; nothing is offered', async () => {
  const [dc, other] = pair();
  const me = page(dc);
  const them = peer(other);
  const run = me.session.run();
  them.say(wire.hello('send'));
  assert.equal((await them.hear()).role, 'recv');
  them.say(wire.file('a.txt', 3));
  other.send(new TextEncoder().encode('abc'));
  them.say(wire.eof(3, sha256(new TextEncoder().encode('abd'))));
  await assert.rejects(run, (e) => e instanceof wire.ProtocolError && e.integrity && /integrity check failed for a\.txt/.test(e.message));
  assert.deepEqual(await them.hear(), { t: 'ack', bytes: 3, ok: false });
  const abort = await them.hear();
  assert.equal(abort.t, 'abort');
  assert.match(abort.reason, /^integrity check failed for a\.txt: received 3 bytes/);
  assert.deepEqual(me.shown.received, []);
});

await test("the peer's abort reason is shown escaped, as dcsend shows it, and not answered", async () => {
  const [dc, other] = pair();
  const me = page(dc, { files: [new File(['x'], 'x')] });
  const them = peer(other);
  const run = me.session.run();
  assert.equal((await them.hear()).role, 'send');
  them.say(wire.abort('invoice\u202efdp.exe\n\u001b[2J'));
  await assert.rejects(run, (e) => e instanceof PeerAborted && e.message === 'the peer aborted: invoice\\u{202e}fdp.exe\\u{a}\\u{1b}[2J');
  await tick();
  assert.deepEqual(dc.controls().map((m) => m.t), ['hello'], 'no abort sent back');
});

await test("a refused name stops the transfer with the name rules' words", async () => {
  const [dc, other] = pair();
  const me = page(dc);
  const them = peer(other);
  const run = me.session.run();
  them.say(wire.hello('send'));
  await them.hear();
  them.say(wire.file('../x', 1));
  await assert.rejects(run, wire.ProtocolError);
  const abort = await them.hear();
  assert.equal(abort.reason, `refused file name: refusing file name "../x": it contains a path separator ('/' or '\\')`);
});

/** A dropped folder's entries: folders before what they hold, an empty one too. */
const tree = () => [
  { path: 'photos', blob: null },
  { path: 'photos/2024', blob: null },
  { path: 'photos/2024/a b.txt', blob: new Blob(['abc']) },
  { path: 'photos/empty', blob: null },
  { path: 'photos/ü.txt', blob: new Blob(['x'.repeat(70_000)]) },
  { path: 'notes.txt', blob: new Blob([]) },
];

await test('a folder from one page to another with a folder chosen: paths, empty folders, every byte', async () => {
  const [a, b] = pair();
  const out = fakeFolder('out');
  const sender = page(a, { files: tree() });
  const receiver = page(b, { folder: out });
  const [sent, received] = await Promise.all([sender.session.run(), receiver.session.run()]);
  assert.equal(sent, "Done: 3 files (68.4 KiB) delivered, and the receiver confirmed each one's SHA-256.");
  assert.equal(received, 'Done: received 3 files, each SHA-256 verified.');
  const hello = a.controls()[0];
  assert.deepEqual([hello.tree, hello.files, hello.bytes], [true, 3, 70_003]);
  assert.equal(b.controls()[0].tree, true);
  assert.deepEqual(
    a.controls().filter((m) => m.t === 'dir' || m.t === 'file').map((m) => m.name),
    ['photos', 'photos/2024', 'photos/2024/a b.txt', 'photos/empty', 'photos/ü.txt', 'notes.txt'],
  );
  assert.deepEqual(listing(out), {
    'notes.txt': '',
    'photos/': '',
    'photos/2024/': '',
    'photos/2024/a b.txt': 'abc',
    'photos/empty/': '',
    'photos/ü.txt': 'x'.repeat(70_000),
  });
});

await test('a folder to a page that cannot hold one: tree false, and both sides say what to do', async () => {
  const [a, b] = pair();
  const sender = page(a, { files: tree() });
  const receiver = page(b);
  const [sent, received] = await Promise.allSettled([sender.session.run(), receiver.session.run()]);
  assert.equal(b.controls()[0].tree, false);
  assert.match(
    received.reason.message,
    /^the sender sends a folder \(3 files\), and this browser cannot save a folder; receive with `dcsend recv -o DIR\/`$/,
  );
  // The sender refuses on its side too, or reports the receiver's abort: either says why.
  assert.match(sent.reason.message, /cannot (hold|save) a folder/);
});

await test('a page sending a folder refuses a receiver without tree: true before sending any of it', async () => {
  const [dc, other] = pair();
  const me = page(dc, { files: tree() });
  const them = peer(other);
  const run = me.session.run();
  assert.equal((await them.hear()).tree, true);
  them.say(wire.hello('recv'));
  await assert.rejects(run, /the receiver cannot hold a folder .*receive with `dcsend recv -o DIR\/`/);
  const next = await them.hear();
  assert.equal(next.t, 'abort', 'no dir or file before the refusal');
});

await test('a dir or a path from a sender that did not announce a tree, to a page without a folder: refused', async () => {
  for (const msg of [wire.dir('photos'), wire.file('photos/a.txt', 1)]) {
    const [dc, other] = pair();
    const me = page(dc);
    const them = peer(other);
    const run = me.session.run();
    them.say(wire.hello('send'));
    assert.equal((await them.hear()).tree, false);
    them.say(msg);
    await assert.rejects(run, /the sender sends a folder, and this browser cannot save a folder/);
    assert.equal((await them.hear()).t, 'abort');
  }
});

await test('a hostile path into a chosen folder is refused, and nothing is made for it', async () => {
  for (const bad of ['../x', 'a/../../x', '/abs', 'a\\b/c', 'a//b']) {
    const [dc, other] = pair();
    const out = fakeFolder('out');
    const me = page(dc, { folder: out });
    const them = peer(other);
    const run = me.session.run();
    them.say(wire.hello('send', null, { tree: true, files: 1, bytes: 1 }));
    assert.equal((await them.hear()).tree, true);
    them.say(wire.file(bad, 1));
    await assert.rejects(run, (e) => e instanceof wire.ProtocolError && /^refused file name/.test(e.message), bad);
    assert.deepEqual(listing(out), {}, bad);
  }
});

await test('two senders: both ends want to send', async () => {
  const [a, b] = pair();
  const one = page(a, { files: [new File(['1'], '1')] });
  const two = page(b, { files: [new File(['2'], '2')] });
  const results = await Promise.allSettled([one.session.run(), two.session.run()]);
  for (const r of results) assert.match(/** @type {PromiseRejectedResult} */ (r).reason.message, /both ends want to send/);
});

await test('silence after connecting ends with a bounded wait', async () => {
  const [dc] = pair();
  const me = page(dc, { helloTimeoutMs: 50 });
  await assert.rejects(me.session.run(), /said nothing for 0.05s after connecting/);
});

await test('a plain peer: binary before any hello is one stream, ended by the channel closing', async () => {
  const [dc, other] = pair();
  const me = page(dc);
  const run = me.session.run();
  other.send(new Uint8Array([1, 2, 3]));
  other.send(new Uint8Array([4]));
  other.close();
  assert.equal(await run, 'Done: the peer closed the channel (unverified).');
  const [item] = me.shown.received;
  assert.deepEqual([item.name, item.bytes, item.sha256], ['stream', 4, '']);
  assert.deepEqual(await downloaded(item.href), new Uint8Array([1, 2, 3, 4]));
});

console.log(`ok: ${passed} session tests`);
