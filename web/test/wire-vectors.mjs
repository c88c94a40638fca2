// The page's wire protocol (src/wire.js) against the answers of the Rust code: every case in
// wire-vectors.json, written by `DCSEND_BLESS=1 cargo test --test web_vectors` from
// src/transfer/wire.rs, src/transfer/names.rs and src/error.rs. A rule changed on one side only
// fails here. Exits non-zero on the first case that differs.
//
//   node test/wire-vectors.mjs

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as wire from '../src/wire.js';

const vectors = JSON.parse(readFileSync(new URL('wire-vectors.json', import.meta.url), 'utf8'));

/** Shortens a case's text for a failure message. @param {string} s */
const label = (s) => JSON.stringify(s.length > 120 ? `${s.slice(0, 120)}…` : s);

let cases = 0;
/** @param {string} what @param {() => void} fn */
function each(what, fn) {
  try {
    fn();
  } catch (e) {
    console.error(`FAIL ${what}`);
    throw e;
  }
  cases += 1;
}

assert.equal(wire.VERSION, vectors.version, 'protocol version');
assert.equal(wire.MAX_CONTROL_BYTES, vectors.max_control_bytes, 'control message limit');
assert.equal(wire.MAX_NAME_BYTES, vectors.max_name_bytes, 'name length limit');

// Each message the page builds encodes to dcsend's text, byte for byte.
for (const { build, text } of vectors.encode) {
  each(`encode ${label(text)}`, () => {
    const [type, ...args] = build;
    assert.equal(wire.encode(wire[type](...args)), text);
  });
}

// What dcsend accepts the page accepts, with the same meaning; what it refuses the page refuses.
for (const c of vectors.decode) {
  each(`decode ${label(c.text)}`, () => {
    if (c.ok) {
      const got = wire.decode(c.text);
      for (const key of new Set([...Object.keys(got), ...Object.keys(c.ok)])) {
        // An absent optional field and a null one mean the same.
        assert.deepEqual(got[key] ?? null, c.ok[key] ?? null, `field ${key}`);
      }
      return;
    }
    assert.throws(
      () => wire.decode(c.text),
      (e) => e instanceof wire.ProtocolError && (c.error !== 'too_large' || e.message === c.message),
      `should be refused as ${c.error}: ${c.message.slice(0, 200)}`,
    );
  });
}

// An abort reason reads the same in the browser as in a terminal.
for (const { reason, shown } of vectors.reasons) {
  each(`abort reason ${label(reason)}`, () => assert.equal(wire.shownReason(reason), shown));
}

// The same names are kept, and refused with the same words.
for (const c of vectors.names) {
  each(`name ${label(c.name)}`, () => {
    if (c.ok !== undefined) {
      assert.equal(wire.checkName(c.name), c.ok);
      return;
    }
    assert.throws(
      () => wire.checkName(c.name),
      (e) => e instanceof wire.ProtocolError && e.message === `refused file name: ${c.error}`,
      c.error,
    );
  });
}

console.log(`ok: ${cases} wire, abort-reason and name cases agree with the Rust side`);
