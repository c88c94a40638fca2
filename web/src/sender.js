// The threshold-based sender, in the browser: the same semantics as src/transfer/queue.rs and
// LiveKit's `DataChannelSender`. Messages (text and binary, in order) wait in a queue; they go
// to the data channel only while its `bufferedAmount` is at or under the threshold
// ("send until threshold"); the `bufferedamountlow` event, which fires when the amount falls to
// `bufferedAmountLowThreshold` (= the threshold), resumes sending. The queue is bounded: a
// producer awaits `enqueue` when it is full, so reading a file never runs ahead of the network.
// `close()` ends it and reports what was left unsent.
//
// Browsers put a hard cap on what one channel may buffer: Chrome's `send()` throws once
// `bufferedAmount` would pass 16 MiB ("send queue is full") and then closes the channel. Since a
// message is only sent while the amount is at or under the threshold, the amount never passes
// threshold + one message: `clampThreshold` keeps that under the cap.
//
// Pure apart from the channel it is given (anything with `bufferedAmount`,
// `bufferedAmountLowThreshold`, `send` and `addEventListener('bufferedamountlow')`), so node
// tests it with a fake channel (web/test/unit.mjs).

import { Fifo } from './fifo.js';

/** Chrome's limit on a data channel's buffered amount (`kMaxQueuedSendDataBytes`). */
export const BROWSER_QUEUE_LIMIT = 16 * 1024 * 1024;
/** dcsend's default threshold (src/cli/config.rs). */
export const DEFAULT_THRESHOLD = 4 * 1024 * 1024;
/** dcsend's default message size, and the largest every browser accepts. */
export const DEFAULT_CHUNK = 64 * 1024;
/** Messages the queue holds before `enqueue` makes the producer wait (the reference's 128). */
export const QUEUE_MESSAGES = 128;

/**
 * The threshold to use so that threshold + one message stays within the browser's queue.
 * @param {number} threshold @param {number} chunk
 */
export function clampThreshold(threshold, chunk) {
  return Math.max(0, Math.min(threshold, BROWSER_QUEUE_LIMIT - chunk));
}

/**
 * The message size: ours, but never above what the peer accepts (`a=max-message-size`, which
 * the browser exposes as `RTCSctpTransport.maxMessageSize`; 0 or absent means no limit).
 * @param {number} wanted @param {number | null | undefined} peerMax
 */
export function chunkSize(wanted, peerMax) {
  return peerMax && peerMax > 0 ? Math.min(wanted, peerMax) : wanted;
}

/** @typedef {string | ArrayBuffer | ArrayBufferView} Payload */

/** Size of a message in the channel's accounting: bytes for binary, UTF-8 bytes for text. */
const encoder = new TextEncoder();
/** @param {Payload} p */
export function payloadBytes(p) {
  return typeof p === 'string' ? encoder.encode(p).length : p.byteLength;
}

export class ThresholdSender {
  /**
   * @param {{ bufferedAmount: number, bufferedAmountLowThreshold: number, send(p: Payload): void,
   *   addEventListener(type: string, fn: () => void): void,
   *   removeEventListener(type: string, fn: () => void): void }} channel
   * @param {{ threshold: number, queueMessages?: number, onSent?: (payload: Payload) => void }} options
   *   `onSent` sees each message as it goes to the channel
   */
  constructor(channel, { threshold, queueMessages = QUEUE_MESSAGES, onSent }) {
    this.channel = channel;
    this.threshold = threshold;
    this.capacity = queueMessages;
    this.onSent = onSent ?? (() => {});
    /** @type {Fifo<Payload>} */
    this.queue = new Fifo();
    /** @type {(() => void)[]} producers waiting for room */
    this.waiting = [];
    this.closed = false;
    /** @type {unknown} the error `send` threw, which ends the sender */
    this.error = null;
    channel.bufferedAmountLowThreshold = threshold;
    this.onLow = () => this.sendUntilThreshold();
    channel.addEventListener('bufferedamountlow', this.onLow);
  }

  /** Messages waiting in the queue. */
  get queued() {
    return this.queue.length;
  }

  /**
   * Queues `payload` and sends what the threshold allows. Resolves once the queue has room for
   * the next message (like sending into a bounded mpsc); rejects if the sender ended.
   * @param {Payload} payload
   */
  async enqueue(payload) {
    if (this.closed) throw this.error ?? new Error('the sender is closed');
    this.queue.push(payload);
    this.sendUntilThreshold();
    while (this.queued >= this.capacity && !this.closed) {
      await new Promise((resolve) => this.waiting.push(() => resolve(undefined)));
    }
    if (this.error) throw this.error;
  }

  /** Sends from the queue while the channel's buffered amount is at or under the threshold. */
  sendUntilThreshold() {
    if (this.closed) return;
    while (this.queued > 0 && this.channel.bufferedAmount <= this.threshold) {
      const payload = /** @type {Payload} */ (this.queue.peek());
      try {
        this.channel.send(payload);
      } catch (e) {
        // The channel closed, or (a bug) the browser's queue is full: nothing more can go, and
        // the payload stays queued, counted as unsent.
        this.error = e;
        this.close();
        return;
      }
      this.queue.take();
      this.onSent(payload);
    }
    if (this.queued < this.capacity) this.wake();
  }

  /** @private */
  wake() {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }

  /**
   * Ends the sender (the reference's watch channel): nothing more is sent. Returns how many
   * messages and bytes were left unsent.
   */
  close() {
    if (!this.closed) {
      this.closed = true;
      this.channel.removeEventListener('bufferedamountlow', this.onLow);
      this.wake();
    }
    const left = this.queue.toArray();
    return { messages: left.length, bytes: left.reduce((n, p) => n + payloadBytes(p), 0) };
  }
}
