// Numbers and errors in words, as dcsend prints them. Pure: used by the session (its summaries)
// and the view (the live numbers).

/** @param {number} n bytes, in binary units as dcsend prints them */
export function size(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** @param {number} bytesPerSec in MiB/s, as dcsend's live view and summaries */
export const rate = (bytesPerSec) => `${(bytesPerSec / 1024 ** 2).toFixed(1)} MiB/s`;

/** @param {number} n @param {string} one */
export const plural = (n, one) => `${n} ${one}${n === 1 ? '' : 's'}`;

/**
 * The sender's closing line. @param {number} count files @param {number} bytes in all
 */
export function sentSummary(count, bytes) {
  const confirmed = count === 1 ? 'its SHA-256' : "each one's SHA-256";
  return `Done: ${plural(count, 'file')} (${size(bytes)}) delivered, and the receiver confirmed ${confirmed}.`;
}

/**
 * The receiver's closing line. @param {number} count files @param {boolean} inFolder saved
 * into a folder (else offered as links to save)
 */
export function receivedSummary(count, inFolder) {
  if (count === 0) return 'Done: the sender sent no files.';
  const verified = count === 1 ? 'its SHA-256 verified' : 'each SHA-256 verified';
  const save = count === 1 ? ' Save it with the link below.' : ' Save them with the links below.';
  return `Done: received ${plural(count, 'file')}, ${verified}.${inFolder ? '' : save}`;
}

/** @param {unknown} e */
export const message = (e) => (e instanceof Error ? e.message : String(e));
