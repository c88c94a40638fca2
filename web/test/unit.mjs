// The page's pure parts under node: the wire protocol's messages and checks (src/wire.js; the
// cases shared with the Rust side are in test/wire-vectors.mjs) and the threshold sender
// (src/sender.js) against a fake data channel. Run by tests/web_interop.rs
// (`node test/unit.mjs`); exits non-zero on the first failed check.

import assert from 'node:assert/strict';
import * as wire from '../src/wire.js';
import { Fifo } from '../src/fifo.js';
import { ThresholdSender, clampThreshold, chunkSize, BROWSER_QUEUE_LIMIT } from '../src/sender.js';
import { size, rate, sentSummary, receivedSummary } from '../src/format.js';
import { MovableSink, FolderSink } from '../src/sinks.js';
import { fakeFolder, listing } from './fake-folder.mjs';
import { walk, byteOrder } from '../src/tree.js';
import { announce, itemOf } from '../src/session.js';

let checks = 0;
function check(name, fn) {
  fn();
  checks += 1;
  console.log(`ok ${name}`);
}

// ---- wire -----------------------------------------------------------------------------------

check('messages encode as dcsend writes them', () => {
  assert.equal(
    wire.encode(wire.hello('send')),
    '{"t":"hello","v":1,"role":"send","app":"dcsend-web/0.1.0","resume":false}',
  );
  assert.equal(
    wire.encode(wire.hello('recv', 32768)),
    '{"t":"hello","v":1,"role":"recv","app":"dcsend-web/0.1.0","resume":false,"threshold":32768}',
  );
  assert.equal(wire.encode(wire.file('a.txt', 3)), '{"t":"file","name":"a.txt","size":3,"resume":false}');
  assert.equal(wire.encode(wire.ack(3, true)), '{"t":"ack","bytes":3,"ok":true}');
  assert.equal(wire.encode(wire.dir('photos/empty')), '{"t":"dir","name":"photos/empty"}');
  assert.equal(wire.encode(wire.done()), '{"t":"done"}');
});

check('the tree extension: hello fields written only when set, dir and file fields read', () => {
  assert.equal(
    wire.encode(wire.hello('send', null, { tree: true, files: 2, bytes: 1048579 })),
    '{"t":"hello","v":1,"role":"send","app":"dcsend-web/0.1.0","resume":false,"tree":true,"files":2,"bytes":1048579}',
  );
  assert.equal(
    wire.encode(wire.hello('recv', 32768, { tree: false })),
    '{"t":"hello","v":1,"role":"recv","app":"dcsend-web/0.1.0","resume":false,"threshold":32768,"tree":false}',
  );
  const hello = wire.decode('{"t":"hello","v":1,"role":"send","app":"dcsend/0.1.0","tree":true,"files":2,"bytes":9}');
  assert.deepEqual([hello.tree, hello.files, hello.bytes], [true, 2, 9]);
  assert.deepEqual(wire.decode('{"t":"dir","name":"photos/empty","mtime":981173106123456789}'), {
    t: 'dir',
    name: 'photos/empty',
    mtime: 981173106123456789,
  });
  const f = wire.decode('{"t":"file","name":"photos/run.sh","size":17,"resume":false,"exec":true,"mtime":5}');
  assert.deepEqual([f.name, f.exec, f.mtime], ['photos/run.sh', true, 5]);
  assert.throws(() => wire.decode('{"t":"dir"}'), /missing field `name` in dir/);
  assert.throws(() => wire.decode('{"t":"hello","v":1,"role":"send","app":"","tree":1}'), /`tree` of hello is not a bool/);
});

check('tree paths: every component by the name rules, no empty component, at most 64 deep', () => {
  assert.deepEqual(wire.checkPath('photos/2024/a b.jpg'), ['photos', '2024', 'a b.jpg']);
  assert.deepEqual(wire.checkPath('notes.txt'), ['notes.txt']);
  assert.deepEqual(wire.checkPath('фото/ü.txt'), ['фото', 'ü.txt']);
  const refused = [
    ['../x', /"\.\.": it names a directory/],
    ['a/../../x', /"\.\.": it names a directory/],
    ['a/./b', /"\.": it names a directory/],
    ['/etc/passwd', /empty component/],
    ['a//b', /empty component/],
    ['a/', /empty component/],
    ['a\\b/c', /path separator/],
    ['a/b\u0000', /control character/],
    ['C:/x', /drive prefix|Windows does not allow ':'/],
    ['a/CON/b', /reserved Windows device name/],
    ['a/b./c', /ends in '\.' or ' '/],
    [Array(65).fill('d').join('/'), /over 64 folders deep/],
  ];
  for (const [path, why] of refused) {
    assert.throws(() => wire.checkPath(path), (e) => e instanceof wire.ProtocolError && why.test(e.message), path);
  }
  assert.equal(wire.checkPath(Array(64).fill('d').join('/')).length, 64);
});

check('the digest is SHA-256 in lowercase hex, across updates', () => {
  const d = new wire.Digest();
  d.update(new TextEncoder().encode('a'));
  d.update(new TextEncoder().encode('bc'));
  assert.equal(d.hex(), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(new wire.Digest().hex(), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

check('dcsend messages decode; unknown fields are ignored, absent optionals are null', () => {
  assert.deepEqual(wire.decode('{"t":"hello","v":1,"role":"recv","app":"dcsend/0.1.0","resume":true,"x":[1]}'), {
    t: 'hello',
    v: 1,
    role: 'recv',
    app: 'dcsend/0.1.0',
    resume: true,
    threshold: null,
    tree: null,
    files: null,
    bytes: null,
  });
  assert.deepEqual(wire.decode('{"t":"file","name":null}'), {
    t: 'file',
    name: null,
    size: null,
    resume: false,
    exec: null,
    mtime: null,
  });
  const eof = '{"t":"eof","bytes":3,"sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}';
  assert.equal(wire.decode(eof).bytes, 3);
});

check('malformed and oversized control messages are protocol errors', () => {
  const bad = [
    ['[1]', /not a JSON object/],
    ['{"v":1}', /no string field `t`/],
    ['{"t":"nope"}', /unknown message type "nope"/],
    ['{"t":"eof","bytes":3,"sha256":"ABC"}', /64 lowercase hex/],
    ['{"t":"eof","bytes":-1,"sha256":"' + 'a'.repeat(64) + '"}', /not a u64/],
    ['{"t":"ack","bytes":1.5,"ok":true}', /not a u64/],
    ['{"t":"hello","v":1,"role":"both","app":""}', /"send" or "recv"/],
    ['{"t":"abort"}', /missing field `reason`/],
    ['{', /malformed control message/],
  ];
  for (const [text, why] of bad) assert.throws(() => wire.decode(text), (e) => e instanceof wire.ProtocolError && why.test(e.message), text);
  const big = JSON.stringify({ t: 'abort', reason: 'x'.repeat(16384) });
  assert.throws(() => wire.decode(big), /control message is 16409 bytes, over the 16384-byte limit/);
  const long = `{"t":"${'y'.repeat(5000)}"}`;
  assert.throws(() => wire.decode(long), (e) => e.message.length < 300);
});

// Abort reasons and file names: every case is in wire-vectors.mjs, against the Rust side's answers.

check('the fifo keeps order across its compaction', () => {
  const q = new Fifo();
  let next = 0;
  for (let i = 0; i < 5000; i += 1) {
    q.push(i);
    if (i % 3 !== 0) assert.equal(q.take(), next++);
  }
  assert.equal(q.length, 5000 - next);
  assert.equal(q.peek(), next);
  assert.deepEqual(q.toArray(), Array.from({ length: 5000 - next }, (_, k) => next + k));
  while (q.length > 0) assert.equal(q.take(), next++);
  assert.equal(q.take(), undefined);
});

// ---- the threshold sender -------------------------------------------------------------------

/** A data channel whose network releases bytes only when told; enforces Chrome's queue limit. */
class FakeChannel {
  constructor() {
    this.bufferedAmount = 0;
    this.bufferedAmountLowThreshold = 0;
    this.sent = [];
    this.peak = 0;
    this.listeners = [];
  }
  send(p) {
    const n = typeof p === 'string' ? Buffer.byteLength(p) : p.byteLength;
    if (this.bufferedAmount + n > BROWSER_QUEUE_LIMIT) throw new Error('OperationError: send queue is full');
    this.bufferedAmount += n;
    this.peak = Math.max(this.peak, this.bufferedAmount);
    this.sent.push(p);
  }
  addEventListener(type, fn) {
    if (type === 'bufferedamountlow') this.listeners.push(fn);
  }
  removeEventListener(type, fn) {
    this.listeners = this.listeners.filter((f) => f !== fn);
  }
  /** The network acknowledges `n` bytes; the event fires on crossing down to the threshold. */
  release(n) {
    const before = this.bufferedAmount;
    this.bufferedAmount = Math.max(0, before - n);
    if (before > this.bufferedAmountLowThreshold && this.bufferedAmount <= this.bufferedAmountLowThreshold) {
      for (const fn of this.listeners) fn();
    }
  }
}

const tick = () => new Promise((r) => setImmediate(r));

await (async () => {
  const ch = new FakeChannel();
  const threshold = 1000;
  const sender = new ThresholdSender(ch, { threshold, queueMessages: 8 });
  assert.equal(ch.bufferedAmountLowThreshold, threshold);
  const payloads = Array.from({ length: 200 }, (_, i) => (i % 10 === 0 ? `{"t":"n","i":${i}}` : new Uint8Array(100).fill(i)));
  let produced = 0;
  const producer = (async () => {
    for (const p of payloads) {
      await sender.enqueue(p);
      produced += 1;
    }
  })();
  for (let i = 0; i < 10_000 && ch.sent.length < payloads.length; i += 1) {
    await tick();
    // Paused over the threshold: nothing more may go until the network releases.
    if (ch.bufferedAmount > threshold) {
      const n = ch.sent.length;
      await tick();
      assert.equal(ch.sent.length, n, 'sent while over the threshold');
    }
    // The producer is held back by the bounded queue.
    assert.ok(sender.queued <= 8, `queue grew to ${sender.queued}`);
    ch.release(250);
  }
  await producer;
  assert.equal(produced, payloads.length);
  assert.deepEqual(ch.sent, payloads, 'everything, in order');
  assert.ok(ch.peak <= threshold + 100, `peak ${ch.peak} over threshold + one message`);
  assert.deepEqual(sender.close(), { messages: 0, bytes: 0 });
  checks += 1;
  console.log('ok the sender keeps the buffered amount under threshold + one message, in order');
})();

await (async () => {
  const ch = new FakeChannel();
  const sender = new ThresholdSender(ch, { threshold: 0, queueMessages: 100 });
  await sender.enqueue(new Uint8Array(10));
  await sender.enqueue(new Uint8Array(20));
  await sender.enqueue('abc');
  assert.equal(ch.sent.length, 1, 'one message at a time at threshold 0');
  assert.deepEqual(sender.close(), { messages: 2, bytes: 23 }, 'close reports what was left unsent');
  ch.release(10);
  assert.equal(ch.sent.length, 1, 'nothing is sent after close');
  await assert.rejects(sender.enqueue('x'), /closed/);
  checks += 1;
  console.log('ok close ends the sender and reports what was left unsent');
})();

await (async () => {
  // A send that throws (the channel closed) ends the sender with that error.
  const ch = new FakeChannel();
  ch.send = () => {
    throw new Error('InvalidStateError: the channel is closing');
  };
  const sender = new ThresholdSender(ch, { threshold: 1000 });
  await assert.rejects(sender.enqueue('x'), /closing/);
  checks += 1;
  console.log('ok a failed send ends the sender with its error');
})();

check("the threshold leaves room for one message in Chrome's 16 MiB queue", () => {
  assert.equal(clampThreshold(4 << 20, 65536), 4 << 20);
  assert.equal(clampThreshold(64 << 20, 65536), BROWSER_QUEUE_LIMIT - 65536);
  assert.equal(chunkSize(65536, 262144), 65536);
  assert.equal(chunkSize(65536, 16384), 16384);
  assert.equal(chunkSize(65536, 0), 65536);
  assert.equal(chunkSize(65536, null), 65536);
});

await (async () => {
  // With the clamped threshold, a full 16 MiB-capped channel never throws.
  const ch = new FakeChannel();
  const sender = new ThresholdSender(ch, { threshold: clampThreshold(1 << 30, 65536) });
  for (let i = 0; i < 300; i += 1) {
    const pending = sender.enqueue(new Uint8Array(65536));
    if (i % 50 === 49) ch.release(8 << 20);
    await pending;
  }
  assert.equal(sender.error, null);
  assert.ok(ch.peak <= BROWSER_QUEUE_LIMIT);
  checks += 1;
  console.log('ok a clamped threshold never overflows the browser queue');
})();

// ---- format ---------------------------------------------------------------------------------

check('sizes and rates are in powers of 1024, as dcsend prints them', () => {
  assert.equal(size(1000), '1000 B');
  assert.equal(size(1536), '1.5 KiB');
  assert.equal(size(32 << 20), '32.0 MiB');
  assert.equal(rate(12.5 * 1024 ** 2), '12.5 MiB/s');
});

check('the closing lines read right for one file and for several', () => {
  assert.equal(sentSummary(1, 5), 'Done: 1 file (5 B) delivered, and the receiver confirmed its SHA-256.');
  assert.equal(
    sentSummary(2, 3072),
    "Done: 2 files (3.0 KiB) delivered, and the receiver confirmed each one's SHA-256.",
  );
  assert.equal(receivedSummary(1, false), 'Done: received 1 file, its SHA-256 verified. Save it with the link below.');
  assert.equal(
    receivedSummary(2, false),
    'Done: received 2 files, each SHA-256 verified. Save them with the links below.',
  );
  assert.equal(receivedSummary(2, true), 'Done: received 2 files, each SHA-256 verified.');
});

// ---- sinks ----------------------------------------------------------------------------------

await (async () => {
  // A folder chosen while an item is under way takes what arrived so far, then the rest.
  const dir = fakeFolder();
  const sink = new MovableSink('a.bin');
  sink.write(new Uint8Array([1, 2]));
  sink.write(new Uint8Array([3]));
  const moving = sink.moveTo(dir);
  sink.write(new Uint8Array([4])); // arrives while the file is being made
  await moving;
  sink.write(new Uint8Array([5, 6]));
  assert.equal(await sink.finish(), null, 'saved into the folder: no download link');
  assert.deepEqual(Buffer.concat(dir.files.get('a.bin')), Buffer.from([1, 2, 3, 4, 5, 6]));
  // Without a folder it stays a download.
  const kept = new MovableSink('b.bin');
  kept.write(new Uint8Array([7]));
  assert.match(await kept.finish(), /^blob:/);
  checks += 1;
  console.log('ok a folder chosen mid-item takes the bytes so far and the rest, in order');
})();

await (async () => {
  // A tree path makes its folders (as getDirectoryHandle({create: true}) does) and the file in the last.
  const top = fakeFolder('out');
  const sink = await FolderSink.open(top, 'photos/2024/a.txt');
  sink.write(new TextEncoder().encode('abc'));
  assert.equal(await sink.finish(), null);
  const again = await FolderSink.open(top, 'photos/b.txt');
  await again.finish();
  assert.deepEqual(listing(top), { 'photos/': '', 'photos/b.txt': '', 'photos/2024/': '', 'photos/2024/a.txt': 'abc' });
  await assert.rejects(FolderSink.open(top, 'photos/2024/a.txt'), /a\.txt already exists in the folder "2024"/);
  checks += 1;
  console.log('ok a tree path is saved into its folders, made as needed; an existing file is kept');
})();

// ---- a dropped folder -------------------------------------------------------------------------

/** A FileSystemEntry of the Entries API: a folder (`children`) or a file (`text`). */
function entry(name, children, text) {
  if (children === undefined) return { name, isFile: true, isDirectory: false, file: (ok) => ok(new Blob([text])) };
  return {
    name,
    isFile: false,
    isDirectory: true,
    createReader() {
      // Chromium hands out at most 100 entries per readEntries call, then an empty batch.
      let at = 0;
      return {
        readEntries(ok) {
          const batch = children.slice(at, at + 100);
          at += batch.length;
          setTimeout(() => ok(batch), 0);
        },
      };
    },
  };
}

await (async () => {
  const many = Array.from({ length: 150 }, (_, i) => entry(`f${String(i).padStart(3, '0')}`, undefined, 'x'));
  const dropped = [
    entry('photos', [entry('ü.txt', undefined, 'ü'), entry('empty', []), entry('Z', undefined, 'z'), entry('2024', [entry('a b.jpg', undefined, 'abc')])]),
    entry('notes.txt', undefined, ''),
    entry('many', many),
  ];
  const items = await walk(dropped);
  const paths = items.map((i) => `${i.path}${i.blob === null ? '/' : ''}`);
  assert.deepEqual(paths.slice(0, 3), ['many/', 'many/f000', 'many/f001'], 'every batch of a big folder is read');
  assert.equal(paths.filter((p) => p.startsWith('many/f')).length, 150);
  assert.deepEqual(paths.slice(151), ['notes.txt', 'photos/', 'photos/2024/', 'photos/2024/a b.jpg', 'photos/Z', 'photos/empty/', 'photos/ü.txt']);
  assert.equal(await items.find((i) => i.path === 'photos/2024/a b.jpg').blob.text(), 'abc');
  assert.ok(byteOrder('Z', 'a') < 0 && byteOrder('z', 'ü') < 0 && byteOrder('a', 'ab') < 0);
  // The sender's hello counts files, not folders; a File from a folder input goes by its path.
  assert.deepEqual(announce(items), { tree: true, files: 154, bytes: 150 + 2 + 3 + 1 });
  assert.deepEqual(announce([new File(['ab'], 'a.txt')]), { tree: null, files: 1, bytes: 2 });
  const fromInput = new File(['x'], 'a.txt');
  Object.defineProperty(fromInput, 'webkitRelativePath', { value: 'photos/a.txt' });
  assert.equal(itemOf(fromInput).name, 'photos/a.txt');
  assert.equal(announce([fromInput]).tree, true);
  checks += 1;
  console.log('ok a dropped folder: every entry read, folders first, byte order, counts for the hello');
})();

console.log(`${checks} checks passed`);
