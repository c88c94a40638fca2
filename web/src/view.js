// What the person sees and does on the page (web/static/index.html): the status line, the live
// numbers, the received files, the invitation, and the controls (files to send, a folder to
// save into). DOM only: it holds no transfer state; ./page.js connects it to a session.
//
// For tests and scripts the page exposes its state on the DOM: `body[data-phase]` (idle,
// signaling, connecting, ready, sending, receiving, done, failed), `body[data-role]`,
// `#stats[data-bytes|data-total|data-buffered|data-threshold]`, the received files as
// `#received a[download][data-name][data-bytes][data-sha256]`, and `#error`.

import { size, rate, plural, message } from './format.js';
import { MEMORY_CAP } from './sinks.js';
import { announce, NO_FOLDER_HERE } from './session.js';
import { walk } from './tree.js';

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** Whether this browser can save into a folder (Chromium's File System Access API). */
export const canSaveToFolder = () => 'showDirectoryPicker' in window;

/** @returns {string} */
export const phase = () => document.body.dataset.phase ?? '';
/** @returns {string} */
export const role = () => document.body.dataset.role ?? '';

/**
 * How long a connected page waits for the other side's hello before it offers to send: a dcsend
 * peer says hello at once, another page only once its person chose files.
 */
const QUIET_PEER_MS = 1500;

/** @param {string} next @param {string} [text] */
export function setPhase(next, text) {
  document.body.dataset.phase = next;
  if (text !== undefined) say(text);
  if (next === 'sending') {
    /** @type {HTMLInputElement} */ ($('pick')).disabled = true;
    /** @type {HTMLInputElement} */ ($('pick-folder')).disabled = true;
  }
  if (next === 'done' || next === 'failed') {
    $('folder-box').hidden = true;
    if (role() !== 'send') $('send-box').hidden = true;
  }
  if (next === 'ready' && role() === '') {
    window.setTimeout(() => {
      if (phase() !== 'ready' || role() !== '') return;
      say('Connected. The other side waits for a sender too: choose files to send them.');
      $('send-box').hidden = false;
    }, QUIET_PEER_MS);
  }
}

/** @param {string} text */
export function say(text) {
  $('status').textContent = text;
}

/**
 * Shows the controls of this page's role, once it is known: the files to send, or the folder to
 * save into (where the browser can).
 * @param {'send' | 'recv'} r
 */
export function showRole(r) {
  document.body.dataset.role = r;
  $('send-box').hidden = r !== 'send';
  $('folder-box').hidden = r !== 'recv' || !canSaveToFolder();
}

/** Whether files can be chosen now (the box is shown: this page sends, or may). */
export const canChoose = () => !$('send-box').hidden;

/** @param {import('./session.js').Chosen[]} chosen */
export function showChosen(chosen) {
  const { tree, files, bytes } = announce(chosen);
  say(`${plural(files, 'file')}${tree ? ' in a folder' : ''} chosen (${size(bytes)}).`);
}

/** The send threshold chosen in the settings, in bytes. */
export function wantedThreshold() {
  return Number(/** @type {HTMLSelectElement} */ ($('threshold')).value);
}

/** @param {unknown} e */
export function showError(e) {
  setPhase('failed', 'Stopped.');
  const text = $('error');
  text.hidden = false;
  text.textContent = message(e);
}

// ---------------------------------------------------------------------------------------------
// The live numbers.

/**
 * Draws a session's `Progress` every 250 ms between its start and its stop: bytes moved, the
 * rate, and the channel's buffered amount against the threshold.
 * @param {import('./session.js').Progress} progress
 */
export function watchProgress(progress) {
  /** @type {number | undefined} */
  let timer;
  progress.onChange = (event) => {
    if (event === 'start') {
      $('stats').hidden = false;
      $('buffer-line').hidden = progress.threshold === null;
      timer = window.setInterval(() => render(progress), 250);
    } else {
      window.clearInterval(timer);
    }
    render(progress);
  };
}

/** @param {import('./session.js').Progress} p */
function render(p) {
  const buffered = p.buffered();
  const stats = $('stats');
  stats.dataset.bytes = String(p.bytes);
  stats.dataset.total = p.total === null ? '' : String(p.total);
  stats.dataset.buffered = String(buffered);
  stats.dataset.threshold = p.threshold === null ? '' : String(p.threshold);
  const of = p.total === null ? '' : ` of ${size(p.total)}`;
  const speed = p.ended === null ? rate(p.currentRate()) : `${rate(p.averageRate())} on average`;
  $('numbers').textContent = `${size(p.bytes)}${of} · ${speed}${p.label ? ` · ${p.label}` : ''}`;
  const bar = /** @type {HTMLProgressElement} */ ($('bar'));
  if (p.total) {
    bar.max = p.total;
    bar.value = Math.min(p.bytes, p.total);
  } else if (p.total === 0 || p.ended !== null) {
    bar.max = 1;
    bar.value = 1;
  } else {
    bar.removeAttribute('value'); // indeterminate: the size is not known
  }
  if (p.threshold !== null) {
    const meter = /** @type {HTMLMeterElement} */ ($('buffer'));
    // The amount may pass the threshold by up to one message.
    meter.max = Math.max(p.threshold, 1) * 1.05;
    meter.high = Math.max(p.threshold, 1);
    meter.value = buffered;
    $('buffer-text').textContent = `${size(buffered)} / ${size(p.threshold)} threshold`;
  }
}

// ---------------------------------------------------------------------------------------------
// The controls.

/**
 * Calls `onFiles` with what was chosen in the file inputs or dropped on the page: files, or a
 * folder's files named by their relative paths.
 * @param {(files: import('./session.js').Chosen[]) => void} onFiles
 */
export function watchChoices(onFiles) {
  const pick = /** @type {HTMLInputElement} */ ($('pick'));
  pick.addEventListener('change', () => onFiles(Array.from(pick.files ?? [])));
  // A folder input gives its files with `webkitRelativePath` ("photos/2024/a.jpg"), but not its
  // empty folders: those arrive only from a dropped folder (below).
  const pickFolder = /** @type {HTMLInputElement} */ ($('pick-folder'));
  pickFolder.addEventListener('change', () => onFiles(Array.from(pickFolder.files ?? [])));
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    document.body.classList.add('dragging');
  });
  document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    document.body.classList.remove('dragging');
    const items = Array.from(e.dataTransfer?.items ?? []);
    // The entries must be taken during the event; the folders are read afterwards.
    const entries = items.map((i) => i.webkitGetAsEntry?.() ?? null);
    if (!entries.some((en) => en?.isDirectory)) {
      onFiles(Array.from(e.dataTransfer?.files ?? []));
      return;
    }
    walk(/** @type {FileSystemEntry[]} */ (entries.filter((en) => en !== null))).then(onFiles, (err) => {
      say(`Could not read the dropped folder: ${message(err)}`);
    });
  });
}

/**
 * Wires "Save into a folder" where the browser can (shown once this page turns out to receive);
 * calls `onFolder` with each folder picked.
 * @param {(folder: FileSystemDirectoryHandle) => Promise<void>} onFolder
 */
export function offerFolder(onFolder) {
  if (!canSaveToFolder()) return;
  $('cap').textContent = size(MEMORY_CAP);
  $('folder').addEventListener('click', async () => {
    try {
      // @ts-ignore: Chromium's File System Access API
      const folder = await window.showDirectoryPicker({ mode: 'readwrite' });
      $('folder-name').textContent = `Files are saved into the folder "${folder.name}".`;
      await onFolder(folder);
    } catch (e) {
      if (!(e instanceof DOMException && e.name === 'AbortError')) $('folder-name').textContent = message(e);
    }
  });
}

/**
 * A sender announced a folder: asks for a folder to save it into.
 * @param {number | null} files
 */
export function askForTreeFolder(files) {
  $('folder-box').hidden = false;
  const n = files === null ? '' : ` (${plural(files, 'file')})`;
  $('folder-name').textContent = `The sender sends a folder${n}: choose a folder to save it into.`;
  say(`The sender sends a folder${n}: choose a folder to save it into.`);
}

/** A sender announced a folder, and this browser cannot save one. */
export function cannotSaveTree() {
  say(`The sender sends a folder, and ${NO_FOLDER_HERE}.`);
}

/** Says that `name` (`bytes`) is too large for memory and asks for a folder. @param {string} name @param {number} bytes */
export function askForFolder(name, bytes) {
  $('folder-name').textContent =
    `${name} is ${size(bytes)}, more than this page keeps in memory (${size(MEMORY_CAP)}): ` +
    'choose a folder to save it into.';
}

// ---------------------------------------------------------------------------------------------
// What was received, and the invitation.

/**
 * Shows a received item: a download link, or where it was saved (`href` null).
 * @param {{ name: string, bytes: number, sha256: string, href: string | null }} item
 *   `sha256` '' when unverified
 * @param {string | undefined} folderName
 */
export function showReceived({ name, bytes, sha256, href }, folderName) {
  const li = document.createElement('li');
  const check = sha256 ? 'SHA-256 verified' : 'unverified: the peer sent no checksum';
  const detail = ` (${size(bytes)}, ${check})`;
  if (href === null) {
    li.textContent = `${name} saved into "${folderName}"${detail}`;
  } else {
    const a = document.createElement('a');
    a.href = href;
    a.download = name;
    a.textContent = `Save ${name}`;
    Object.assign(a.dataset, { name, bytes: String(bytes), sha256 });
    li.append(a, detail);
  }
  $('received').append(li);
}

/** @param {string} url the room's address, secret included */
export function showInvite(url) {
  $('invite-box').hidden = false;
  $('invite').textContent = url;
  $('invite').dataset.url = url;
  $('cmd-recv').textContent = `dcsend recv --peer '${url}' -o .`;
  $('cmd-send').textContent = `dcsend FILE... --peer '${url}'`;
  const copy = $('copy');
  if (!navigator.clipboard) {
    copy.hidden = true;
    return;
  }
  copy.addEventListener('click', () => {
    navigator.clipboard.writeText(url).then(
      () => ($('copied').textContent = 'Copied.'),
      () => ($('copied').textContent = 'Could not copy; select the address below.'),
    );
  });
}

export function hideInvite() {
  $('invite-box').hidden = true;
}
