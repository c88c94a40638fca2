// A folder as the File System Access API gives it (FileSystemDirectoryHandle), in memory, for
// the node tests of the sinks and of receiving a tree: `files` maps a name to its written
// parts, `dirs` a name to the folder inside.

export function fakeFolder(name = 'fake') {
  const files = new Map();
  const dirs = new Map();
  return {
    files,
    dirs,
    name,
    async getFileHandle(file, { create = false } = {}) {
      if (dirs.has(file)) throw new DOMException('a folder', 'TypeMismatchError');
      if (!files.has(file)) {
        if (!create) throw new DOMException('no such file', 'NotFoundError');
        files.set(file, []);
      }
      return {
        createWritable: async () => ({
          write: async (part) => files.get(file).push(new Uint8Array(await new Blob([part]).arrayBuffer())),
          close: async () => {},
          abort: async () => {},
        }),
      };
    },
    async getDirectoryHandle(dir, { create = false } = {}) {
      if (files.has(dir)) throw new DOMException('a file', 'TypeMismatchError');
      if (!dirs.has(dir)) {
        if (!create) throw new DOMException('no such folder', 'NotFoundError');
        dirs.set(dir, fakeFolder(dir));
      }
      return dirs.get(dir);
    },
    async removeEntry(entry) {
      files.delete(entry);
    },
  };
}

/** Every file under `folder` by its `/` path, and every folder with a trailing `/`. */
export function listing(folder, prefix = '') {
  const out = {};
  for (const [name, parts] of folder.files) out[`${prefix}${name}`] = Buffer.concat(parts).toString();
  for (const [name, dir] of folder.dirs) {
    out[`${prefix}${name}/`] = '';
    Object.assign(out, listing(dir, `${prefix}${name}/`));
  }
  return out;
}
