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

/** @param {number} bytesPerSec */
export const rate = (bytesPerSec) => `${(bytesPerSec / 1e6).toFixed(1)} MB/s`;

/** @param {number} n @param {string} one */
export const plural = (n, one) => `${n} ${one}${n === 1 ? '' : 's'}`;

/** @param {unknown} e */
export const message = (e) => (e instanceof Error ? e.message : String(e));
