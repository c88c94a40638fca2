// The connection: the rendezvous server, PAKE and sealing as dcsend does them (./signal.js),
// then one RTCPeerConnection and its ordered `dcsend` data channel. Browser-only (WebRTC), no
// DOM: progress goes to the `ui` it is given.

import { Client, SignalError, authenticate, sendDescription, recvDescription } from './signal.js';

/** @typedef {import('./signal.js').PeerUrl} PeerUrl */

/** How long the page waits for the other side to join the room (dcsend's --join-timeout). */
const JOIN_TIMEOUT_MS = 10 * 60_000;
/** ICE + DTLS + SCTP, once both descriptions are set (dcsend's --connect-timeout). */
const CONNECT_TIMEOUT_MS = 30_000;
/** Host candidates gather at once; with no STUN server there is nothing slow to wait for. */
const GATHER_TIMEOUT_MS = 5_000;

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

/**
 * Signaling, then WebRTC: returns the connection and its open `dcsend` channel.
 * @param {PeerUrl} url
 * @param {{ phase(phase: string, text?: string): void, say(text: string): void }} ui
 * @returns {Promise<{ pc: RTCPeerConnection, dc: RTCDataChannel }>}
 */
export async function connect(url, ui) {
  ui.phase('signaling', `Joining room ${url.room}…`);
  const client = await Client.join(url, (notice) => ui.say(notice));
  window.addEventListener('pagehide', () => client.leave({ keepalive: true }), { once: true });
  // The STUN and TURN servers the signaling server handed out with our seat (none from a
  // server started without them: host candidates, enough on a LAN or this machine).
  const pc = new RTCPeerConnection({ iceServers: client.iceServers });
  /** @type {Promise<RTCDataChannel>} */
  const channel =
    client.side === 'a'
      ? Promise.resolve(pc.createDataChannel('dcsend', { ordered: true }))
      : new Promise((resolve) => {
          pc.addEventListener('datachannel', (e) => {
            if (e.channel.label === 'dcsend') resolve(e.channel);
          });
        });
  ui.say(client.side === 'a' ? 'Waiting for the other side to join…' : 'Checking the secret…');
  try {
    // When the other side leaves before the descriptions are swapped, start over with
    // whoever joins next: a new PAKE (the offer, made once, goes to the next peer too).
    for (;;) {
      try {
        await rendezvous(client, url, pc, ui);
        break;
      } catch (e) {
        if (!(e instanceof SignalError && e.kind === 'peer-left')) throw e;
        // "the other side of room R left; waiting for someone to join again"
        ui.phase('signaling', e.message);
      }
    }
  } finally {
    client.leave();
  }
  const dc = await opened(pc, channel);
  dc.binaryType = 'arraybuffer';
  return { pc, dc };
}

/**
 * One rendezvous with the peer in the other seat: authenticate, then swap descriptions.
 * Throws a `peer-left` `SignalError` when that peer leaves first.
 * @param {Client} client @param {PeerUrl} url @param {RTCPeerConnection} pc
 * @param {{ phase(phase: string, text?: string): void, say(text: string): void }} ui
 */
async function rendezvous(client, url, pc, ui) {
  const room = /** @type {string} */ (url.room);
  const { sealer } = await authenticate(client, /** @type {string} */ (url.secret), room, client.side, {
    joinTimeoutMs: JOIN_TIMEOUT_MS,
  });
  ui.phase('connecting', 'Connecting…');
  if (client.side === 'a') {
    if (pc.localDescription === null) {
      await pc.setLocalDescription(await pc.createOffer());
      // Gathering may take seconds: the poll keeps our seat meanwhile.
      await client.presentWhile(gathered(pc));
    }
    const offer = /** @type {RTCSessionDescription} */ (pc.localDescription);
    await sendDescription(client, sealer, { type: 'offer', sdp: offer.sdp });
    await pc.setRemoteDescription(await recvDescription(client, sealer, 'answer'));
    return;
  }
  await pc.setRemoteDescription(await recvDescription(client, sealer, 'offer'));
  await pc.setLocalDescription(await pc.createAnswer());
  await client.presentWhile(gathered(pc));
  const answer = /** @type {RTCSessionDescription} */ (pc.localDescription);
  await sendDescription(client, sealer, { type: 'answer', sdp: answer.sdp });
}
