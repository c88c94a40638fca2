// The browser library against real dcsend processes, through a real `dcsend signal`; driven by
// tests/web_interop.rs. Node has no WebRTC, so the library relays between two dcsend peers:
//
//   node test/interop.mjs relay URL1   URL1: a room a `dcsend recv --peer BASE` made (we are B).
//       Authenticates there and opens the receiver's sealed offer; makes a second room on the same
//       server and prints `invite URL2` (a `dcsend FILE --peer URL2` joins it as B); sends it the
//       offer, opens its sealed answer, and sends that back to the receiver. The two dcsend
//       processes then connect to each other: every description they used went through this
//       library's PAKE, sealing and opening.
//   node test/interop.mjs wrong URL1   Joins with a wrong secret; prints `unauthentic` when the
//       library refuses the peer's hello (and the peer, told by our abort or by its own check,
//       exits 3).
//
// Prints progress lines on stdout; exits 0 on success, 1 on a failed check, 3 on a SignalError.
// MODULE (env DCSEND_WEB_MODULE) defaults to the committed bundle.
//
// With DCSEND_TEST_FLAKY=N, every Nth GET and every Nth POST the library makes fails on the
// way, in turn: its answer is lost after the server handled it, a balancer answers 502 without
// passing it on, or the connection is refused. (A join only gets the 502: a client that never
// reached the server must not mistake a wrong URL for an outage.) Each is printed as
// `injected MODE: METHOD PATH`.

import { pathToFileURL } from 'node:url';

const modulePath = process.env.DCSEND_WEB_MODULE
  ? pathToFileURL(process.env.DCSEND_WEB_MODULE).href
  : new URL('../dist/dcsend-signal.js', import.meta.url).href;
const { PeerUrl, Client, authenticate, sendDescription, recvDescription, SignalError } = await import(modulePath);

const flaky = Number(process.env.DCSEND_TEST_FLAKY ?? 0);
if (flaky > 0) {
  const realFetch = globalThis.fetch;
  const modes = ['lost-answer', 'bad-gateway', 'refused'];
  // Per method, so that reads and posts each get every mode.
  const count = { GET: 0, POST: 0 };
  const injected = { GET: 0, POST: 0 };
  globalThis.fetch = async (input, init) => {
    const method = init?.method ?? 'GET';
    if (!(method in count) || ++count[method] % flaky !== 0) return realFetch(input, init);
    const url = new URL(String(input));
    const mode = url.searchParams.has('key') ? 'bad-gateway' : modes[injected[method]++ % modes.length];
    console.log(`injected ${mode}: ${method} ${url.pathname}${url.search}`);
    if (mode === 'bad-gateway') return new Response('bad gateway', { status: 502 });
    if (mode === 'refused') throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED (injected)') });
    const response = await realFetch(input, init);
    await response.arrayBuffer();
    throw new TypeError('fetch failed', { cause: new Error('socket hang up (injected)') });
  };
}

const STEP_MS = 30_000;
const JOIN_MS = 60_000;

function fail(what) {
  console.error(`check failed: ${what}`);
  process.exit(1);
}

/** Checks that `desc` is a WebRTC data-channel SDP of `kind` as webrtc-rs writes it. */
function checkSdp(desc, kind) {
  if (desc.type !== kind) fail(`expected an ${kind}, got ${desc.type}`);
  const lines = desc.sdp.split('\r\n');
  if (lines[0] !== 'v=0') fail(`SDP does not start with v=0: ${JSON.stringify(desc.sdp.slice(0, 40))}`);
  if (lines.pop() !== '') fail('SDP does not end with CRLF');
  const bad = lines.find((l) => !/^[a-z]=\S/.test(l));
  if (bad !== undefined) fail(`not an SDP line: ${JSON.stringify(bad)}`);
  const has = (re) => lines.some((l) => re.test(l));
  const need = {
    'm=application ... webrtc-datachannel': /^m=application \d+ UDP\/DTLS\/SCTP webrtc-datachannel$/,
    'a=fingerprint:sha-256': /^a=fingerprint:sha-256 [0-9A-F]{2}(:[0-9A-F]{2}){31}$/,
    'a=ice-ufrag': /^a=ice-ufrag:\S+$/,
    'a=ice-pwd': /^a=ice-pwd:\S+$/,
    'a=setup': kind === 'offer' ? /^a=setup:actpass$/ : /^a=setup:(active|passive)$/,
    'a=candidate on loopback': /^a=candidate:\S+ \d+ udp \d+ 127\.0\.0\.1 \d+ typ host/,
  };
  for (const [name, re] of Object.entries(need)) if (!has(re)) fail(`${kind} has no ${name} line`);
  console.log(`${kind} ok: ${lines.length} SDP lines`);
}

async function join(text, wantSide) {
  const url = PeerUrl.parse(text);
  const client = await Client.join(url);
  if (client.side !== wantSide) fail(`joined ${url.room} as side ${client.side}, expected ${wantSide}`);
  return { url, client };
}

async function relay(text) {
  const one = await join(text, 'b');
  const a = await authenticate(one.client, one.url.secret, one.url.room, 'b', { joinTimeoutMs: JOIN_MS, stepMs: STEP_MS });
  console.log('room 1 authenticated');
  const offer = await recvDescription(one.client, a.sealer, 'offer', STEP_MS);
  checkSdp(offer, 'offer');

  const url2 = new PeerUrl(one.url.base, null, null).completed();
  if (url2.base !== one.url.base) fail('the second room is on another server');
  const two = await join(url2.toString(), 'a');
  console.log(`invite ${url2}`);
  const b = await authenticate(two.client, url2.secret, url2.room, 'a', { joinTimeoutMs: JOIN_MS, stepMs: STEP_MS });
  console.log('room 2 authenticated');
  await sendDescription(two.client, b.sealer, offer);
  const answer = await recvDescription(two.client, b.sealer, 'answer', STEP_MS);
  checkSdp(answer, 'answer');
  await sendDescription(one.client, a.sealer, answer);
  await Promise.all([one.client.leave(), two.client.leave()]);
  console.log('relayed');
}

async function wrong(text) {
  const given = PeerUrl.parse(text);
  const { url, client } = await join(new PeerUrl(given.base, given.room, `not-${given.secret}`).toString(), 'b');
  try {
    await authenticate(client, url.secret, url.room, 'b', { joinTimeoutMs: JOIN_MS, stepMs: STEP_MS });
  } catch (e) {
    if (e instanceof SignalError && e.kind === 'unauthentic') {
      console.log('unauthentic');
      await client.leave();
      return;
    }
    throw e;
  }
  fail('a wrong secret authenticated');
}

const [mode, url] = process.argv.slice(2);
try {
  if (mode === 'relay') await relay(url);
  else if (mode === 'wrong') await wrong(url);
  else fail(`usage: interop.mjs relay|wrong URL`);
} catch (e) {
  console.error(e instanceof SignalError ? `error ${e.kind}: ${e.message}` : e);
  process.exit(e instanceof SignalError ? 3 : 1);
}
