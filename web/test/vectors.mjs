// The browser library against the Rust implementation's known answers (vectors.json, written by
// `DCSEND_BLESS=1 cargo test --lib web_vectors`) and the spake2 crate's own published vectors,
// plus the URL rules of src/signal/url.rs and the tamper cases of src/signal/seal.rs.
//
//   node test/vectors.mjs [MODULE]     (MODULE defaults to the committed bundle, dist/dcsend-signal.js)

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const here = new URL('.', import.meta.url);
const modulePath = process.argv[2]
  ? pathToFileURL(process.argv[2]).href
  : new URL('../dist/dcsend-signal.js', here).href;
const lib = await import(modulePath);
const { Handshake, Sealer, PeerUrl, Unauthentic, SignalError } = lib;

const hexToBytes = (h) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
const bytesToHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const utf8 = new TextEncoder();

let passed = 0;
function test(name, fn) {
  try {
    fn();
    passed += 1;
  } catch (e) {
    console.error(`FAIL ${name}`);
    throw e;
  }
}

const { vectors } = JSON.parse(readFileSync(new URL('vectors.json', here), 'utf8'));
assert.ok(vectors.length >= 3);

for (const v of vectors) {
  test(`known answers for room ${v.room}`, () => {
    const a = Handshake.startWithRandom(v.secret, v.room, 'a', hexToBytes(v.random_a));
    const b = Handshake.startWithRandom(v.secret, v.room, 'b', hexToBytes(v.random_b));
    assert.equal(lib.envelopeToJson(a.envelope), v.pake_a, 'A pake message');
    assert.equal(lib.envelopeToJson(b.envelope), v.pake_b, 'B pake message');
    const pakeB = lib.envelopeFromJson(v.pake_b).msg;
    const pakeA = lib.envelopeFromJson(v.pake_a).msg;
    assert.equal(bytesToHex(a.handshake.finishKey(pakeB)), v.key, 'A key');
    assert.equal(bytesToHex(b.handshake.finishKey(pakeA)), v.key, 'B key');
    const sa = a.handshake.finish(pakeB);
    const sb = b.handshake.finish(pakeA);
    // Sealing is deterministic: the boxes must be the Rust side's, byte for byte.
    assert.equal(lib.envelopeToJson(sa.hello()), v.hello_a, 'A hello');
    assert.equal(lib.envelopeToJson(sb.hello()), v.hello_b, 'B hello');
    assert.equal(lib.envelopeToJson(sa.seal({ type: 'description', desc: v.offer })), v.offer_a);
    assert.equal(lib.envelopeToJson(sb.seal({ type: 'description', desc: v.answer })), v.answer_b);
    // And the Rust side's boxes open here.
    const rb = new Sealer(hexToBytes(v.key), 'b', v.room);
    const ra = new Sealer(hexToBytes(v.key), 'a', v.room);
    rb.checkHello(lib.envelopeFromJson(v.hello_a).box);
    ra.checkHello(lib.envelopeFromJson(v.hello_b).box);
    assert.deepEqual(rb.open(lib.envelopeFromJson(v.offer_a).box), { type: 'description', desc: v.offer });
    assert.deepEqual(ra.open(lib.envelopeFromJson(v.answer_b).box), { type: 'description', desc: v.answer });
  });
}

// The spake2 crate's own vectors (its tests, taken from python-spake2).
test('password to scalar (spake2 crate test_password_to_scalar)', () => {
  assert.equal(
    lib.passwordScalar(utf8.encode('password')),
    3515301705789368674385125653994241092664323519848410154015274772661223168839n,
  );
});
test('symmetric transcript hash (spake2 crate test_hash_symmetric)', () => {
  const [x, y, k] = ['X', 'Y', 'K'].map((c) => utf8.encode(c.repeat(32)));
  const want = 'b0b31e4401aae37d91a9a8bf6fbb1298cafc005ff9142e3ffc5b9799fb11128b';
  assert.equal(bytesToHex(lib.hashSymmetric(utf8.encode('pw'), utf8.encode('idSymmetric'), x, y, k)), want);
  // Symmetric: the order the messages come in does not matter.
  assert.equal(bytesToHex(lib.hashSymmetric(utf8.encode('pw'), utf8.encode('idSymmetric'), y, x, k)), want);
});

test('fresh handshakes agree, and a wrong secret or room does not open', () => {
  const pair = (sa, sb, ra, rb) => {
    const a = Handshake.start(sa, ra, 'a');
    const b = Handshake.start(sb, rb, 'b');
    return [a.handshake.finish(b.envelope.msg), b.handshake.finish(a.envelope.msg)];
  };
  const [a, b] = pair('tidy-otter-42', ' tidy-otter-42\n', 'r1', 'r1');
  b.checkHello(a.hello().box);
  a.checkHello(b.hello().box);
  for (const [sa, sb, ra, rb] of [['code-a-1', 'code-b-1', 'r', 'r'], ['same', 'same', 'r1', 'r2']]) {
    const [x, y] = pair(sa, sb, ra, rb);
    assert.throws(() => y.checkHello(x.hello().box), Unauthentic);
  }
});

test('tampering, reflection, reordering and replay do not open', () => {
  const fresh = () => {
    const a = Handshake.start('s', 'r', 'a');
    const b = Handshake.start('s', 'r', 'b');
    return [a.handshake.finish(b.envelope.msg), b.handshake.finish(a.envelope.msg)];
  };
  let [a, b] = fresh();
  const bytes = lib.fromBase64(a.hello().box);
  bytes[3] ^= 1;
  assert.throws(() => b.checkHello(lib.toBase64(bytes)), Unauthentic);
  [a, b] = fresh();
  const hello = a.hello();
  assert.throws(() => a.checkHello(hello.box), Unauthentic, 'reflection');
  a.seal({ type: 'hello', side: 'a' });
  const third = a.seal({ type: 'hello', side: 'a' });
  assert.throws(() => b.open(third.box), Unauthentic, 'reordering');
  [a, b] = fresh();
  const h = a.hello();
  b.checkHello(h.box);
  assert.throws(() => b.open(h.box), Unauthentic, 'replay');
  // Both told they are side a.
  const x = Handshake.start('s', 'r', 'a');
  const y = Handshake.start('s', 'r', 'a');
  const sx = x.handshake.finish(y.envelope.msg);
  const sy = y.handshake.finish(x.envelope.msg);
  assert.throws(() => sy.checkHello(sx.hello().box), Unauthentic);
});

test('garbage pake messages are unauthentic', () => {
  const { handshake } = Handshake.start('s', 'r', 'a');
  assert.throws(() => handshake.finish('not base64!'), Unauthentic);
  assert.throws(() => handshake.finish(lib.toBase64(new Uint8Array(5).fill(7))), Unauthentic);
  // Right length, wrong side byte ('A' instead of 'S').
  const msg = lib.fromBase64(Handshake.start('s', 'r', 'b').envelope.msg);
  msg[0] = 0x41;
  assert.throws(() => handshake.finish(lib.toBase64(msg)), Unauthentic);
});

test('envelopes are plain JSON', () => {
  const e = { type: 'abort', reason: 'wrong secret' };
  assert.equal(lib.envelopeToJson(e), '{"type":"abort","reason":"wrong secret"}');
  assert.deepEqual(lib.envelopeFromJson(lib.envelopeToJson(e)), e);
  assert.equal(lib.envelopeFromJson('{"type":"nope"}'), null);
  assert.equal(lib.envelopeFromJson('[1]'), null);
});

// src/signal/url.rs's tests, in JavaScript.
test('URLs: bare server, room and secret, endpoints', () => {
  let u = PeerUrl.parse('http://127.0.0.1:8080/');
  assert.equal(u.room, null);
  assert.equal(u.secret, null);
  assert.equal(u.base, 'http://127.0.0.1:8080/');
  assert.deepEqual(PeerUrl.parse('http://127.0.0.1:8080'), u);
  const text = 'https://example.org/dcsend/k7f3#tulip-orbit-42';
  u = PeerUrl.parse(text);
  assert.equal(u.room, 'k7f3');
  assert.equal(u.secret, 'tulip-orbit-42');
  assert.equal(u.base, 'https://example.org/dcsend/');
  assert.equal(u.toString(), text);
  u = PeerUrl.parse('http://h:1/p/room1#secret-words-10');
  assert.equal(u.endpoint(), 'http://h:1/p/room1');
  assert.equal(u.endpoint('tok'), 'http://h:1/p/room1/tok');
  // The fragment as the Rust url crate gives it: percent-encoded, then trimmed.
  assert.equal(PeerUrl.parse('http://h/r#café 1').secret, 'caf%C3%A9%201');
});

test('URLs: refusals', () => {
  const kind = (text) => {
    try {
      PeerUrl.parse(text);
      return 'ok';
    } catch (e) {
      assert.ok(e instanceof SignalError && e.kind === 'url');
      return e.message;
    }
  };
  assert.match(kind('http://h/room'), /names a room but has no secret/);
  assert.match(kind('http://h/room#  '), /names a room but has no secret/);
  assert.match(kind('host:8080'), /scheme must be http or https/);
  assert.match(kind('not a url'), /is not a URL/);
  assert.match(kind('ftp://h/'), /scheme/);
  assert.match(kind('http://h/?x=1'), /no query string/);
  assert.match(kind('http://h/?'), /no query string/);
  assert.match(kind('http://h/a.b#s'), /not a valid room id/);
  assert.match(kind(`http://h/${'a'.repeat(65)}#s`), /not a valid room id/);
});

test('URLs: completed fills in a room and a secret', () => {
  const given = PeerUrl.parse('http://h/#my-own-code').completed();
  assert.equal(given.secret, 'my-own-code');
  assert.ok(lib.validRoom(given.room) && given.room.length === 10);
  const fresh = PeerUrl.parse('http://h/').completed();
  assert.deepEqual(PeerUrl.parse(fresh.toString()), fresh);
  assert.notEqual(lib.newSecret(), lib.newSecret());
});

test('ICE servers: a join answer\'s list goes to RTCPeerConnection as it came, malformed entries dropped', () => {
  // The shape `dcsend signal` sends (src/signal/ice.rs): a STUN entry, a TURN entry with credentials.
  const sent = [
    { urls: ['stun:signal.example.org:3478'] },
    { urls: ['turn:relay.example.org:3478'], username: '1700000000:5f3a91c2', credential: 'I11aVvEwHF7zGgDNXqk8e1jlh4E=' },
  ];
  assert.deepEqual(lib.iceServersOf(sent), sent);
  assert.deepEqual(lib.iceServersOf(JSON.parse(JSON.stringify(sent))), sent);
  // A single URL as a string is the other form RTCIceServer allows.
  assert.deepEqual(lib.iceServersOf([{ urls: 'stun:a:1' }]), [{ urls: ['stun:a:1'] }]);
  // An older server sends no field; garbage never reaches the peer connection.
  assert.deepEqual(lib.iceServersOf(undefined), []);
  assert.deepEqual(lib.iceServersOf('stun:a:1'), []);
  const junk = [null, 7, { urls: [] }, { urls: [1] }, { urls: ['turn:x'], username: 5 }, { urls: ['stun:ok:1'] }];
  assert.deepEqual(lib.iceServersOf(junk), [{ urls: ['stun:ok:1'] }]);
});

console.log(`ok: ${passed} tests (${modulePath})`);
