// A first-in, first-out queue over an array: `take` is O(1) amortised (no `Array#shift`, which
// moves every element), for the sender's queue (./sender.js) and the session's inbox (./session.js).

/** @template T */
export class Fifo {
  constructor() {
    /** @type {(T | undefined)[]} */
    this.items = [];
    this.head = 0;
  }

  /** Items waiting. */
  get length() {
    return this.items.length - this.head;
  }

  /** @param {T} item */
  push(item) {
    this.items.push(item);
  }

  /** The oldest item, left in place; `undefined` when empty. */
  peek() {
    return /** @type {T | undefined} */ (this.items[this.head]);
  }

  /** Removes and returns the oldest item; `undefined` when empty. */
  take() {
    if (this.length === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined; // let it be collected
    this.head += 1;
    // Drop the taken slots once they are most of the array.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return /** @type {T} */ (item);
  }

  /** The items waiting, oldest first. @returns {T[]} */
  toArray() {
    return /** @type {T[]} */ (this.items.slice(this.head));
  }
}
