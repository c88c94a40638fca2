// Where a received item's bytes go: memory (a Blob, up to a cap, offered as a download) or a
// file in a folder the person chose (the File System Access API, Chromium's). No DOM: the
// session writes into a sink and the view shows what `finish` returns.

import { size } from './format.js';

/** Largest file kept in memory (when no folder is chosen). */
export const MEMORY_CAP = 2 * 1024 ** 3;
/** Received parts are gathered into a Blob every this many bytes, which the browser may page to disk. */
const BLOB_BATCH = 16 * 1024 * 1024;

/** @typedef {MemorySink | FolderSink} Sink */

/** Keeps an item in memory; `finish` makes it a Blob URL to download. */
export class MemorySink {
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
  /** What it holds so far, in order, handed over (it then holds nothing). @returns {(Blob | Uint8Array)[]} */
  take() {
    const held = [...this.blobs, ...this.parts];
    this.parts = [];
    this.blobs = [];
    this.pending = 0;
    return held;
  }
}

/**
 * An item kept in memory until a folder is chosen (`moveTo`): then what it holds is written into
 * the folder first, and the rest follows it there.
 */
export class MovableSink {
  /** @param {string} name */
  constructor(name) {
    this.name = name;
    this.memory = new MemorySink();
    /** @type {FolderSink | null} */ this.folder = null;
    this.finished = false;
  }
  /** @param {Uint8Array} bytes */
  write(bytes) {
    (this.folder ?? this.memory).write(bytes);
  }
  /** @param {FileSystemDirectoryHandle} dir */
  async moveTo(dir) {
    if (this.folder !== null || this.finished) return;
    const folder = await FolderSink.open(dir, this.name);
    if (this.finished) {
      // It ended while the file was being made: it stays a download.
      await folder.abort();
      return;
    }
    for (const part of this.memory.take()) folder.write(part);
    this.folder = folder;
  }
  /** @returns {Promise<string | null>} a download URL, or null once saved into the folder */
  async finish() {
    this.finished = true;
    return this.folder !== null ? this.folder.finish() : this.memory.finish();
  }
  async abort() {
    this.finished = true;
    await (this.folder ?? this.memory).abort();
  }
}

/**
 * The folder at `parts` under `top`, made where missing (a tree's `dir`, or a file's folders).
 * @param {FileSystemDirectoryHandle} top @param {string[]} parts checked names
 */
export async function folderAt(top, parts) {
  let dir = top;
  for (const part of parts) dir = await dir.getDirectoryHandle(part, { create: true });
  return dir;
}

/** Writes an item into the chosen folder; the browser makes it appear only on `finish`. */
export class FolderSink {
  /**
   * @param {FileSystemDirectoryHandle} top @param {string} path a name, or a checked tree path
   *   (`/` between components), whose folders are made as needed
   */
  static async open(top, path) {
    const parts = path.split('/');
    const name = /** @type {string} */ (parts.pop());
    const dir = await folderAt(top, parts);
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
  /** @param {Uint8Array | Blob} bytes */
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
