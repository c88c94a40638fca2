// A dropped folder as the items of a tree (docs/protocol.md, "Trees"): the File and Directory
// Entries API (`DataTransferItem.webkitGetAsEntry`) read into `Entry`s named by their relative
// paths, each folder before what it holds (so empty folders arrive), depth first in byte order
// of names, as dcsend sends a folder. No DOM beyond the entries it is given, so node tests it
// with fake entries (web/test/unit.mjs).

const utf8 = new TextEncoder();

/** Byte order of UTF-8, as dcsend sorts a tree. @param {string} a @param {string} b */
export function byteOrder(a, b) {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i += 1) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/**
 * The dropped entries as a tree: each folder (empty ones too) before what it holds, then its
 * files, depth first in byte order of names, as dcsend sends a folder.
 * @param {FileSystemEntry[]} entries @param {string} [prefix]
 * @returns {Promise<import('./session.js').Chosen[]>}
 */
export async function walk(entries, prefix = '') {
  /** @type {import('./session.js').Chosen[]} */
  const out = [];
  for (const en of [...entries].sort((a, b) => byteOrder(a.name, b.name))) {
    const path = `${prefix}${en.name}`;
    if (en.isDirectory) {
      out.push({ path, blob: null });
      const reader = /** @type {FileSystemDirectoryEntry} */ (en).createReader();
      /** @type {FileSystemEntry[]} */
      const inside = [];
      for (;;) {
        // readEntries gives a batch at a time (100 in Chromium), then an empty one.
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (batch.length === 0) break;
        inside.push(...batch);
      }
      out.push(...(await walk(inside, `${path}/`)));
    } else if (en.isFile) {
      const blob = await new Promise((resolve, reject) => /** @type {FileSystemFileEntry} */ (en).file(resolve, reject));
      out.push({ path, blob });
    }
  }
  return out;
}
