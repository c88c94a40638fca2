// A werift peer for tests/interop.rs: one data channel, copy-paste tokens through files.
//
//   node werift-peer.mjs offer|answer send|recv FILE OFFER_TOKEN ANSWER_TOKEN
//
// offer: opens the channel, writes the offer token, waits for the answer token.
// answer: waits for the offer token, writes the answer token, takes the peer's channel.
// send: sends FILE as binary messages, waits until every byte left (bufferedAmount 0),
//       closes the channel and waits for it to be closed.
// recv: writes every binary message to FILE until the channel closes.
// Tokens are dcsend's (and Pion's): base64 of the JSON {"type","sdp"}, written to a temporary
// name and renamed. Exit 0 on success, 1 on any error; progress and werift's state on stderr.
import { readFileSync, writeFileSync, renameSync, existsSync } from "node:fs";
import { RTCPeerConnection } from "werift";

const [role, mode, file, offerPath, answerPath] = process.argv.slice(2);
if (!["offer", "answer"].includes(role) || !["send", "recv"].includes(mode) || !answerPath) {
  console.error("usage: werift-peer.mjs offer|answer send|recv FILE OFFER_TOKEN ANSWER_TOKEN");
  process.exit(2);
}
const CHUNK = 16 * 1024;
const HIGH_WATER = 1024 * 1024;
const log = (msg) => console.error(`werift: ${msg}`);

const encode = (desc) => Buffer.from(JSON.stringify({ type: desc.type, sdp: desc.sdp })).toString("base64");
const decode = (token) => JSON.parse(Buffer.from(token.trim(), "base64").toString("utf8"));

function writeToken(path, desc) {
  writeFileSync(`${path}.tmp`, encode(desc) + "\n");
  renameSync(`${path}.tmp`, path);
}

async function readToken(path) {
  while (!existsSync(path)) await new Promise((r) => setTimeout(r, 25));
  return decode(readFileSync(path, "utf8"));
}

async function gathered(pc) {
  while (pc.iceGatheringState !== "complete") {
    await new Promise((resolve) => pc.iceGatheringStateChange.subscribe(resolve));
  }
}

function send(dc) {
  const data = readFileSync(file);
  let offset = 0;
  dc.bufferedAmountLowThreshold = HIGH_WATER / 2;
  const low = dc.bufferedAmountLow.subscribe(() => pump());
  const pump = () => {
    while (offset < data.length && dc.bufferedAmount <= HIGH_WATER) {
      dc.send(data.subarray(offset, offset + CHUNK));
      offset += CHUNK;
    }
    if (offset < data.length) return;
    low.unSubscribe();
    const drained = setInterval(() => {
      if (dc.bufferedAmount === 0) {
        clearInterval(drained);
        log(`sent ${data.length} bytes; closing the channel`);
        dc.close();
      }
    }, 10);
  };
  pump();
}

function receive(dc, done) {
  const parts = [];
  dc.onMessage.subscribe((msg) => {
    if (typeof msg === "string") {
      log(`unexpected text message from a --raw sender: ${msg.slice(0, 80)}`);
      process.exit(1);
    }
    parts.push(Buffer.from(msg));
  });
  dc.stateChanged.subscribe((state) => {
    if (state !== "closed") return;
    const data = Buffer.concat(parts);
    writeFileSync(file, data);
    log(`received ${data.length} bytes`);
    done();
  });
}

const pc = new RTCPeerConnection({ iceServers: [] });
pc.connectionStateChange.subscribe((s) => {
  log(`connection ${s}`);
  if (s === "failed") process.exit(1);
});
pc.sctpTransport?.sctp?.stateChanged?.connected?.subscribe?.(() => log("sctp connected"));

const finished = new Promise((resolve) => {
  const use = (dc) => {
    dc.stateChanged.subscribe((s) => log(`channel ${s}`));
    if (mode === "recv") receive(dc, resolve);
    else {
      // A dcsend receiver greets with a control message; a plain sender ignores it.
      dc.onMessage.subscribe((msg) => log(`ignoring a message: ${String(msg).slice(0, 80)}`));
      dc.stateChanged.subscribe((s) => s === "closed" && resolve());
    }
    const start = () => mode === "send" && send(dc);
    if (dc.readyState === "open") start();
    else dc.stateChanged.subscribe((s) => s === "open" && start());
  };
  if (role === "offer") use(pc.createDataChannel("interop"));
  else pc.onDataChannel.subscribe(use);
});

if (role === "offer") {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  writeToken(offerPath, pc.localDescription);
  await pc.setRemoteDescription(await readToken(answerPath));
} else {
  await pc.setRemoteDescription(await readToken(offerPath));
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered(pc);
  writeToken(answerPath, pc.localDescription);
}
await finished;
await pc.close();
process.exit(0);
