// dcsend's wire protocol v1 (docs/protocol.md), for the browser: the control messages, their
// checks, and the receiver's file-name rules. Pure: no DOM, no WebRTC, so node tests it
// (web/test/unit.mjs, and web/test/wire-vectors.mjs against the Rust side's own answers).
// Mirrors src/transfer/{wire,names}.rs; the wording of refusals is the same.

import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

export const VERSION = 1;
/** Largest control message, in bytes (`MAX_CONTROL_BYTES`). */
export const MAX_CONTROL_BYTES = 16384;
/** What the page says it is in its `hello` (informative). */
export const APP = 'dcsend-web/0.1.0';
/** Longest abort reason shown to a person, in characters. */
const MAX_REASON_CHARS = 300;

/** A violation of the protocol by the peer; `integrity` for a size or digest mismatch. */
export class ProtocolError extends Error {
  /** @param {string} message @param {{ integrity?: boolean }} [options] */
  constructor(message, { integrity = false } = {}) {
    super(message);
    this.name = 'ProtocolError';
    this.integrity = integrity;
  }
}

const utf8 = new TextEncoder();

/** An incremental SHA-256 that reports lowercase hex, as `eof.sha256` needs. */
export class Digest {
  constructor() {
    this.h = sha256.create();
  }
  /** @param {Uint8Array} bytes */
  update(bytes) {
    this.h.update(bytes);
  }
  hex() {
    return bytesToHex(this.h.digest());
  }
}

// ---------------------------------------------------------------------------------------------
// Building messages: the fields in the order the spec shows, `null` for absent values.

/**
 * `threshold`: a receiver's request that the sender keep at most this much buffered (the
 * sender uses the lower of it and its own threshold); left out when `null`. The tree extension
 * (docs/protocol.md, "Trees"): `tree`, from a receiver whether it can hold a folder, from a
 * sender whether its items include folders; `files` and `bytes`, from a sender, what follows.
 * Each is left out when `null`.
 * @param {'send' | 'recv'} role @param {number | null} [threshold]
 * @param {{ tree?: boolean | null, files?: number | null, bytes?: number | null }} [extension]
 */
export const hello = (role, threshold = null, { tree = null, files = null, bytes = null } = {}) => ({
  t: 'hello',
  v: VERSION,
  role,
  app: APP,
  resume: false,
  ...(threshold === null ? {} : { threshold }),
  ...(tree === null ? {} : { tree }),
  ...(files === null ? {} : { files }),
  ...(bytes === null ? {} : { bytes }),
});
/**
 * `mtime`: nanoseconds since the Unix epoch, left out when `null`.
 * @param {string | null} name @param {number | null} size @param {number | null} [mtime]
 */
export const file = (name, size, mtime = null) => ({
  t: 'file',
  name,
  size,
  resume: false,
  ...(mtime === null ? {} : { mtime }),
});
/** A folder of a tree. @param {string} name @param {number | null} [mtime] */
export const dir = (name, mtime = null) => ({ t: 'dir', name, ...(mtime === null ? {} : { mtime }) });
/** @param {number} bytes @param {string} sha256hex */
export const eof = (bytes, sha256hex) => ({ t: 'eof', bytes, sha256: sha256hex });
/** @param {number} bytes @param {boolean} ok */
export const ack = (bytes, ok) => ({ t: 'ack', bytes, ok });
export const done = () => ({ t: 'done' });
/** @param {string} reason */
export const abort = (reason) => ({ t: 'abort', reason });

/** The text message for `msg`. @param {object} msg */
export function encode(msg) {
  return JSON.stringify(msg);
}

// ---------------------------------------------------------------------------------------------
// Reading messages.

/** @param {unknown} v */
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
/** Non-negative integer (u64 as far as JavaScript numbers go). @param {unknown} v */
const isU64 = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0;
/** @param {unknown} v */
const isHex64 = (v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);

/** @param {string} s @param {number} max */
function cut(s, max) {
  const chars = Array.from(s);
  return chars.length <= max ? s : `${chars.slice(0, max).join('')}…`;
}

/** @param {string} what */
function malformed(what) {
  return new ProtocolError(`malformed control message: ${cut(what, 200)}`);
}

/** Deepest nesting of arrays and objects dcsend's parser (serde_json) accepts. */
const MAX_NESTING = 127;

/** How deep arrays and objects nest in `json` (valid JSON). @param {string} json */
function nesting(json) {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < json.length; i += 1) {
    const c = json[i];
    if (inString) {
      if (c === '\\') i += 1;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
    } else if (c === '[' || c === '{') {
      depth += 1;
      deepest = Math.max(deepest, depth);
    } else if (c === ']' || c === '}') {
      depth -= 1;
    }
  }
  return deepest;
}

/**
 * Checks one field. @param {Record<string, unknown>} m @param {string} key
 * @param {(v: unknown) => boolean} ok @param {string} type @param {boolean} [optional]
 */
function field(m, key, ok, type, optional = false) {
  const v = m[key];
  if (v === undefined || v === null) {
    if (optional) return null;
    throw malformed(`missing field \`${key}\` in ${m.t}`);
  }
  if (!ok(v)) throw malformed(`field \`${key}\` of ${m.t} is not ${type}`);
  return v;
}

/**
 * Parses and checks one text message from the peer. Unknown fields are ignored; an absent
 * optional field reads as `null`.
 * @param {string} text
 * @returns {{ t: string, [k: string]: any }}
 */
export function decode(text) {
  const size = utf8.encode(text).length;
  if (size > MAX_CONTROL_BYTES) {
    throw new ProtocolError(`control message is ${size} bytes, over the ${MAX_CONTROL_BYTES}-byte limit`);
  }
  let m;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw malformed(e instanceof Error ? e.message : String(e));
  }
  if (!isObject(m)) throw malformed('not a JSON object');
  if (nesting(text) > MAX_NESTING) throw malformed('recursion limit exceeded');
  if (typeof m.t !== 'string') throw malformed('no string field `t`');
  const bool = (/** @type {unknown} */ v) => typeof v === 'boolean';
  const str = (/** @type {unknown} */ v) => typeof v === 'string';
  switch (m.t) {
    case 'hello':
      return {
        t: 'hello',
        v: field(m, 'v', (v) => isU64(v) && /** @type {number} */ (v) <= 0xffffffff, 'a u32'),
        role: field(m, 'role', (v) => v === 'send' || v === 'recv', '"send" or "recv"'),
        app: field(m, 'app', str, 'a string'),
        resume: field(m, 'resume', bool, 'a bool', true) ?? false,
        threshold: field(m, 'threshold', isU64, 'a u64', true),
        tree: field(m, 'tree', bool, 'a bool', true),
        files: field(m, 'files', isU64, 'a u64', true),
        bytes: field(m, 'bytes', isU64, 'a u64', true),
      };
    case 'file':
      return {
        t: 'file',
        name: field(m, 'name', str, 'a string', true),
        size: field(m, 'size', isU64, 'a u64', true),
        resume: field(m, 'resume', bool, 'a bool', true) ?? false,
        exec: field(m, 'exec', bool, 'a bool', true),
        mtime: field(m, 'mtime', isU64, 'a u64', true),
      };
    case 'dir':
      return { t: 'dir', name: field(m, 'name', str, 'a string'), mtime: field(m, 'mtime', isU64, 'a u64', true) };
    case 'eof':
      return {
        t: 'eof',
        bytes: field(m, 'bytes', isU64, 'a u64'),
        sha256: field(m, 'sha256', isHex64, '64 lowercase hex characters'),
      };
    case 'ack':
      return { t: 'ack', bytes: field(m, 'bytes', isU64, 'a u64'), ok: field(m, 'ok', bool, 'a bool') };
    case 'have':
      return {
        t: 'have',
        bytes: field(m, 'bytes', isU64, 'a u64'),
        sha256: field(m, 'sha256', isHex64, '64 lowercase hex characters'),
      };
    case 'skip':
      return { t: 'skip', bytes: field(m, 'bytes', isU64, 'a u64') };
    case 'done':
      return { t: 'done' };
    case 'abort':
      return { t: 'abort', reason: field(m, 'reason', str, 'a string') };
    default:
      throw malformed(`unknown message type ${JSON.stringify(cut(m.t, 40))}`);
  }
}

/**
 * Characters a peer's text must not bring to the screen as they are: control characters
 * (Unicode Cc: escape sequences, line breaks, NUL, DEL, C1) and the bidirectional embeddings,
 * overrides and isolates (U+202A..U+202E, U+2066..U+2069), which can make a reason read
 * backwards. Rust's `char::is_control` plus the same two ranges (src/error.rs).
 */
// eslint-disable-next-line no-control-regex
const UNSAFE_IN_REASON = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;

/**
 * A peer's abort reason as one safe line for a person, as dcsend prints it: at most
 * `MAX_REASON_CHARS` characters of the reason (then `…`), each unsafe one escaped as `\u{..}`.
 * @param {string} reason
 */
export function shownReason(reason) {
  let out = '';
  let i = 0;
  for (const c of reason) {
    if (i === MAX_REASON_CHARS) return `${out}…`;
    out += UNSAFE_IN_REASON.test(c) ? `\\u{${/** @type {number} */ (c.codePointAt(0)).toString(16)}}` : c;
    i += 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Names (src/transfer/names.rs): the peer's name is used as one file name, unchanged, or refused.
// The page cannot know where its download lands, so it applies the Rust side's Windows rules
// (`Rules::Windows`): the portable set. A name ending in `.part` is valid (the page writes no
// temporary files).

/** Longest name in UTF-8 bytes: 255 minus `.part`. */
export const MAX_NAME_BYTES = 250;

const RESERVED = new Set([
  'CON', 'PRN', 'AUX', 'NUL', 'CONIN$', 'CONOUT$',
  ...['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '¹', '²', '³'].flatMap((d) => [`COM${d}`, `LPT${d}`]),
]);

/** What Rust's `{:?}` escapes besides quotes and backslashes: all but printable characters. */
const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;
/** @type {Record<string, string>} */
const DEBUG_ESCAPES = { '"': '\\"', '\\': '\\\\', '\0': '\\0', '\t': '\\t', '\r': '\\r', '\n': '\\n' };

/**
 * `s` quoted as Rust's `{:?}` quotes a string, so that a refusal reads the same on both sides.
 * @param {string} s
 */
function quoted(s) {
  let out = '"';
  for (const c of s) {
    if (c in DEBUG_ESCAPES) out += DEBUG_ESCAPES[c];
    else if (c !== ' ' && NOT_PRINTABLE.test(c)) out += `\\u{${/** @type {number} */ (c.codePointAt(0)).toString(16)}}`;
    else out += c;
  }
  return `${out}"`;
}

/**
 * The name to save an item under, or a `ProtocolError` saying why it is refused.
 * @param {string} name
 */
export function checkName(name) {
  const q = quoted(cut(name, 64));
  const refuse = (/** @type {string} */ why) => new ProtocolError(`refused file name: refusing file name ${q}: ${why}`);
  if (name === '') throw refuse('it is empty');
  if (name === '.' || name === '..') throw refuse('it names a directory');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) throw refuse('it contains a control character');
  if (/[/\\]/.test(name)) throw refuse("it contains a path separator ('/' or '\\')");
  const len = utf8.encode(name).length;
  if (len > MAX_NAME_BYTES) throw refuse(`it is ${len} bytes long, over the ${MAX_NAME_BYTES}-byte limit`);
  if (/^[A-Za-z]:/.test(name)) throw refuse('it starts with a drive prefix');
  const forbidden = /[<>:"|?*]/.exec(name);
  if (forbidden) throw refuse(`Windows does not allow '${forbidden[0]}' in a name`);
  const stem = name.split('.')[0].replace(/ +$/, '');
  // ASCII case folding only, as the Rust side (`eq_ignore_ascii_case`).
  if (RESERVED.has(stem.replace(/[a-z]/g, (c) => c.toUpperCase()))) throw refuse('it is a reserved Windows device name');
  if (/[. ]$/.test(name)) throw refuse("it ends in '.' or ' '");
  return name;
}

/** Deepest path the receiver accepts, in components (src/transfer/names.rs). */
export const MAX_PATH_DEPTH = 64;

/**
 * The components of a tree path (`file.name` or `dir.name`, `/` between components), each
 * checked by `checkName`; a `ProtocolError` for an empty component (`a//b`, `a/`, a leading
 * `/`), `.`, `..`, a backslash, or a path over `MAX_PATH_DEPTH` components.
 * @param {string} path @returns {string[]}
 */
export function checkPath(path) {
  const parts = path.split('/');
  if (parts.length > MAX_PATH_DEPTH) {
    throw new ProtocolError(
      `refused file name: refusing path ${quoted(cut(path, 64))}: over ${MAX_PATH_DEPTH} folders deep`,
    );
  }
  if (parts.length > 1 && parts.some((c) => c === '')) {
    throw new ProtocolError(`refused file name: refusing path ${quoted(cut(path, 64))}: it has an empty component`);
  }
  return parts.map(checkName);
}
