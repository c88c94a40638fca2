// The page `dcsend signal` serves, in a real headless Chromium; driven by tests/web_browser.rs.
// One run is one browser, one fresh profile, one page:
//
//   node test/browser.mjs send URL FILE SCREENSHOT
//       Opens URL (a room a `dcsend recv --peer BASE` made) in a phone-sized window, waits for
//       the page to know it sends, picks FILE with the keyboard alone (Tab to `#pick`, Space,
//       the file chooser) and waits for phase `done`; then checks the page needs no sideways
//       scrolling. Saves SCREENSHOT while the transfer is under way.
//   node test/browser.mjs recv URL OUTDIR SCREENSHOT
//       Opens URL (a room a `dcsend FILE --peer BASE` made), prints the boxes shown once the
//       page knows it receives, and waits for phase `done`; then
//       activates every `#received a[download]` with the keyboard (Tab, Enter) and saves each
//       download as OUTDIR/data-name.
//       Saves SCREENSHOT while the transfer is under way.
//   node test/browser.mjs sendfolder URL DIR
//       Opens URL (a room a `dcsend recv -o OUT/ --peer BASE` made), waits for the page to know
//       it sends, sets DIR on the folder input `#pick-folder` (webkitdirectory; what CDP's
//       DOM.setFileInputFiles does) and waits for phase `done`.
//   node test/browser.mjs recvtree URL
//       Opens URL (a room a `dcsend DIR --peer BASE` made) with `showDirectoryPicker` answering
//       the origin private file system's root (headless Chromium has no picker a script can
//       fill), waits for the page to ask for a folder, clicks "Save into a folder…", waits for
//       phase `done`, then prints what the folder holds: `tree-dir PATH` and
//       `tree-file PATH BYTES SHA256`, in byte order of paths.
//   node test/browser.mjs recvnofolder URL
//       Opens URL (a room a `dcsend DIR --peer BASE` made) in a browser without
//       `showDirectoryPicker` (removed before the page loads) and waits for phase `failed`.
//   node test/browser.mjs leave URL
//       Opens URL (a room a `dcsend FILE --peer BASE` made), waits for phase `connecting` (the
//       secret checked, the descriptions not swapped yet) and closes the tab, as a person
//       closing it would (`pagehide` runs): prints `closed the tab`.
//   node test/browser.mjs fail URL
//       Opens URL and waits for phase `failed` (a wrong secret, say); reaching `done` is a
//       failure.
//   node test/browser.mjs open BASE SCREENSHOT FILE...
//       Opens the server's bare address BASE, which opens a room: prints `invite URL` (the
//       address the page shows), the boxes shown before any peer came, and saves SCREENSHOT
//       of that. Then (once a `dcsend recv --peer URL` joined) waits for the role, prints the
//       boxes shown, picks the FILEs and waits for phase `done`.
//
// Prints one line per event on stdout: `picked with the keyboard`, `fits W of V px`, `role R`, `phase P`, `screenshot at BYTES of TOTAL`
// (`#stats[data-bytes]` read just before the capture; TOTAL is `data-total`),
// `saved NAME BYTES SHA256` (the link's data-name, data-bytes and data-sha256), `error TEXT`
// (`#error` once failed), `boxes WHEN send=V folder=V` (whether `#send-box` and `#folder-box`
// are shown; `folder=-` where the browser cannot save into a folder), and at `done`,
// `status TEXT` and `numbers TEXT` (`#status`, `#numbers`). The page's console errors and uncaught exceptions go to stderr.
// Exits 0 when the page reached the phase the mode wants, 1 otherwise, with the reason on stderr.
//
// Environment:
//   DCSEND_CHROMIUM      the browser to launch (default /usr/bin/chromium)
//   DCSEND_NODE_MODULES  a node_modules folder holding playwright-core (default web/node_modules)
//   DCSEND_DEADLINE_MS   the whole run's bound (default 110000); the browser is closed, and the
//                        run fails, when it passes. tests/web_browser.rs waits a little longer.

import { createRequire } from 'node:module';
import { networkInterfaces } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const modules = process.env.DCSEND_NODE_MODULES || fileURLToPath(new URL('../node_modules', import.meta.url));
const { chromium } = createRequire(join(modules, 'resolve-from-here.js'))('playwright-core');

const executablePath = process.env.DCSEND_CHROMIUM || '/usr/bin/chromium';
const DEADLINE_MS = Number(process.env.DCSEND_DEADLINE_MS || 110_000);
/** Bound on any one browser operation (launch, navigation, click, a download, a screenshot). */
const STEP_MS = 30_000;
/** How often the page's state is read (for the mid-transfer screenshot, too). */
const POLL_MS = 20;
/** Kept from the whole run's bound for closing the browser after a wait gave up. */
const CLOSE_MS = 5_000;

const ARGS = [
  // Also among Playwright's defaults; listed so the flags this suite relies on are in one place.
  '--headless',
  // The suite runs as root in CI containers, where Chromium's sandbox cannot start.
  '--no-sandbox',
  // No GPU on a CI machine: software rendering (the screenshots), no GPU process probing.
  '--disable-gpu',
  // No component updates, safe browsing or other traffic of its own: the machine may be offline.
  '--disable-background-networking',
  // Let WebRTC gather on the loopback interface, which Chromium leaves out by default. dcsend
  // binds 127.0.0.1 only. On a machine with another interface Chromium reaches it even without
  // this (its checks leave a socket of that interface and arrive from 127.0.0.1), but on one
  // whose only interface is `lo` it gathers nothing without it.
  '--allow-loopback-in-peer-connection',
  // Not --disable-features=WebRtcHideLocalIpsWithMdns (but see below): a real user's Chromium
  // hides its host addresses behind random `.local` names, and so does this one. dcsend cannot
  // resolve those, and does not need to: Chromium's connectivity checks reach dcsend's
  // 127.0.0.1 candidate, and dcsend learns the browser's address from them (peer-reflexive).
];
// Except on a machine whose only interface is loopback (a network namespace, a sandbox): there
// Chromium, hiding addresses behind mDNS names that it cannot announce without a multicast
// interface, never finishes gathering nor starts its checks, and the page cannot connect.
// No real user is on such a machine, so there the suite shows its addresses. (This comes after
// Playwright's own --disable-features list, and takes effect.)
const loopbackOnly = !Object.values(networkInterfaces()).flat().some((a) => !a.internal);
if (loopbackOnly) ARGS.push('--disable-features=WebRtcHideLocalIpsWithMdns');

const [mode, url, ...rest] = process.argv.slice(2);
const started = Date.now();
const left = () => DEADLINE_MS - (Date.now() - started);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** @type {import('playwright-core').Browser | undefined} */
let browser;
let closing;
/** Closes the browser once, whatever happened; bounded, and the process exits anyway. */
function closeBrowser() {
  closing ??= browser ? Promise.race([browser.close().catch(() => {}), sleep(STEP_MS)]) : Promise.resolve();
  return closing;
}

class Failure extends Error {}
const fail = (what) => {
  throw new Failure(what);
};

// The whole run's bound: even a wait that forgot its own timeout ends here.
const deadline = setTimeout(async () => {
  console.error(`browser.mjs: gave up after ${DEADLINE_MS} ms (${mode} ${url})`);
  await closeBrowser();
  process.exit(1);
}, DEADLINE_MS);
deadline.unref();

/** Reads the page's state in one round trip. */
async function state(page) {
  return page.evaluate(() => {
    const stats = document.getElementById('stats');
    const error = document.getElementById('error');
    return {
      phase: document.body?.dataset.phase ?? '',
      bytes: Number(stats?.dataset.bytes || 0),
      total: stats?.dataset.total ? Number(stats.dataset.total) : null,
      error: error?.textContent?.trim() ?? '',
    };
  });
}

/**
 * Waits for phase `done` or `failed` (whichever `want` is; the other fails the run), and takes
 * the screenshot on the way when `shot` is set: at the first reading with data-bytes between
 * 20% and 80% of data-total, or, if the transfer jumps past that window between two readings,
 * at the first reading strictly between 0 and the total.
 */
async function follow(page, want, shot) {
  let taken = !shot;
  for (;;) {
    if (left() < CLOSE_MS) {
      const s = await state(page);
      const where = `it is in phase ${s.phase}, ${s.bytes} of ${s.total} bytes`;
      fail(`the page did not reach phase ${want} in ${DEADLINE_MS - CLOSE_MS} ms; ${where}`);
    }
    const s = await state(page);
    if (!taken && s.total && s.bytes > 0 && s.bytes < s.total) {
      const inWindow = s.bytes >= 0.2 * s.total && s.bytes <= 0.8 * s.total;
      if (inWindow || s.bytes > 0.8 * s.total) {
        await page.screenshot({ path: shot, timeout: STEP_MS });
        console.log(`screenshot at ${s.bytes} of ${s.total}`);
        taken = true;
      }
    }
    if (s.phase === 'failed') {
      console.log(`error ${s.error}`);
      if (want !== 'failed') fail(`the page failed: ${s.error || '(no text in #error)'}`);
      return s;
    }
    if (s.phase === 'done') {
      if (want !== 'done') fail('the page reached phase done');
      if (!taken) fail(`the transfer was never seen under way (${s.bytes} of ${s.total} bytes at the end)`);
      return s;
    }
    await sleep(POLL_MS);
  }
}

/**
 * Moves the keyboard focus with Tab until `selector` has it (at most 30 presses), as a person
 * without a mouse would.
 */
async function tabTo(page, selector) {
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((sel) => document.activeElement?.matches(sel) ?? false, selector)) return;
  }
  fail(`30 presses of Tab never focused ${selector}`);
}

/** Fails when the page is wider than the window: a phone would need to scroll sideways. */
async function checkNoSidewaysScroll(page) {
  const [content, view] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  if (content > view) fail(`the page is ${content} px wide in a ${view} px window`);
  console.log(`fits ${content} of ${view} px`);
}

async function send(page, file, shot) {
  // Keyboard only: Tab to the file input, open the chooser with Space, pick the file there.
  // The page shows the file input once it knows it sends (the receiver said hello), and sends
  // what is chosen at once.
  // Wait for the chooser *before* the key presses: Playwright turns on Chromium's file-chooser
  // interception when the first listener is added, asynchronously; a Space that overtook it
  // opened no (interceptable) chooser, and the run timed out (2 runs in 9 here).
  await roleKnown(page);
  const chooser = page.waitForEvent('filechooser', { timeout: STEP_MS });
  await tabTo(page, '#pick');
  await page.keyboard.press('Space');
  await (await chooser).setFiles(file, { timeout: STEP_MS });
  console.log('picked with the keyboard');
  const s = await follow(page, 'done', shot);
  await checkNoSidewaysScroll(page);
  console.log(`sent ${s.bytes}`);
}

async function recv(page, outdir, shot) {
  await roleKnown(page);
  await boxes(page, 'with-role');
  await follow(page, 'done', shot);
  await printClosing(page);
  const links = page.locator('#received a[download]');
  const n = await links.count();
  if (n === 0) fail('phase done but no #received a[download]');
  for (let i = 0; i < n; i++) {
    const link = links.nth(i);
    const [name, bytes, sha256] = await Promise.all(
      ['data-name', 'data-bytes', 'data-sha256'].map((a) => link.getAttribute(a, { timeout: STEP_MS })),
    );
    // The name comes from the other side: it must be a plain name before it becomes a path.
    if (!name || name !== basename(name) || name === '.' || name === '..') {
      fail(`unsafe data-name ${JSON.stringify(name)}`);
    }
    // Keyboard only: Tab to the link, Enter.
    await tabTo(page, `#received li:nth-child(${i + 1}) a[download]`);
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: STEP_MS }),
      page.keyboard.press('Enter'),
    ]);
    const broken = await download.failure();
    if (broken) fail(`downloading ${name} failed: ${broken}`);
    await download.saveAs(join(outdir, name));
    console.log(`saved ${name} ${bytes} ${sha256}`);
  }
}

/** Prints which of the role's controls are shown. */
async function boxes(page, when) {
  const [send, folder, can] = await page.evaluate(() => [
    !document.getElementById('send-box').hidden,
    !document.getElementById('folder-box').hidden,
    'showDirectoryPicker' in window,
  ]);
  console.log(`boxes ${when} send=${send} folder=${can ? folder : '-'}`);
}

/** Prints the closing status line and the numbers. */
async function printClosing(page) {
  const [status, numbers] = await page.evaluate(() =>
    ['status', 'numbers'].map((id) => document.getElementById(id).textContent.trim()),
  );
  console.log(`status ${status}`);
  console.log(`numbers ${numbers}`);
}

/**
 * Waits until the page knows which end it is. A page that fails first (it could not connect,
 * say) never will: that ends the run at once, with the page's reason, not at the deadline.
 */
async function roleKnown(page) {
  const timeout = Math.max(left() - CLOSE_MS, 1);
  const known = () => document.body.dataset.role !== undefined || document.body.dataset.phase === 'failed';
  await page.waitForFunction(known, null, { timeout });
  const s = await state(page);
  if (s.phase === 'failed') {
    console.log(`error ${s.error}`);
    fail(`the page failed before it knew its role: ${s.error || '(no text in #error)'}`);
  }
}

async function open(page, shot, files) {
  const invite = page.locator('#invite[data-url^="http"]');
  await invite.waitFor({ timeout: STEP_MS });
  console.log(`invite ${await invite.getAttribute('data-url')}`);
  await boxes(page, 'before-peer');
  await page.screenshot({ path: shot, timeout: STEP_MS });
  await roleKnown(page);
  await boxes(page, 'with-role');
  await page.setInputFiles('#pick', files, { timeout: STEP_MS });
  await follow(page, 'done', null);
  await printClosing(page);
}

async function sendFolder(page, dir) {
  await roleKnown(page);
  await page.setInputFiles('#pick-folder', dir, { timeout: STEP_MS });
  await follow(page, 'done', null);
  await printClosing(page);
}

async function recvTree(page) {
  // The page asks for a folder before it says hello (and so before its role is known).
  await page.locator('#folder-box:not([hidden])').waitFor({ timeout: STEP_MS });
  await page.click('#folder', { timeout: STEP_MS });
  await follow(page, 'done', null);
  await printClosing(page);
  const listed = await page.evaluate(async () => {
    const hex = (/** @type {ArrayBuffer} */ b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
    const out = [];
    async function walk(dir, prefix) {
      for await (const [name, h] of dir.entries()) {
        const path = `${prefix}${name}`;
        if (h.kind === 'directory') {
          out.push(`tree-dir ${path}`);
          await walk(h, `${path}/`);
        } else {
          const f = await h.getFile();
          out.push(`tree-file ${path} ${f.size} ${hex(await crypto.subtle.digest('SHA-256', await f.arrayBuffer()))}`);
        }
      }
    }
    await walk(await navigator.storage.getDirectory(), '');
    return out;
  });
  const bytes = (s) => Buffer.from(s.replace(/^tree-(dir|file) /, ''));
  for (const line of listed.sort((a, b) => Buffer.compare(bytes(a), bytes(b)))) console.log(line);
}

async function leave(page) {
  await page.waitForFunction(() => document.body?.dataset.phase === 'connecting', null, { timeout: STEP_MS });
  await page.close({ runBeforeUnload: true });
  // runBeforeUnload: close() returns before the page is gone; wait until it is.
  await Promise.race([new Promise((resolve) => page.once('close', resolve)), sleep(STEP_MS)]);
  console.log('closed the tab');
}

async function expectFailure(page) {
  await follow(page, 'failed', null);
  const n = await page.locator('#received a[download]').count();
  if (n !== 0) fail(`phase failed, yet ${n} received file(s) are offered`);
}

async function main() {
  const usage =
    'usage: browser.mjs send URL FILE SCREENSHOT | recv URL OUTDIR SCREENSHOT | fail URL | open BASE SCREENSHOT FILE... ' +
    '| sendfolder URL DIR | recvtree URL | recvnofolder URL | leave URL';
  const arity = { send: 2, recv: 2, fail: 0, sendfolder: 1, recvtree: 0, recvnofolder: 0, leave: 0 }[mode];
  const ok = mode === 'open' ? rest.length >= 2 : arity !== undefined && rest.length === arity;
  if (!url || !ok) fail(usage);

  // A launched browser gets a new temporary profile (user-data-dir), deleted on close, and a
  // new context in it starts with no cookies, storage or permissions: every run starts fresh.
  if (loopbackOnly) console.log('mdns off: this machine has no network interface but loopback');
  browser = await chromium.launch({ executablePath, headless: true, args: ARGS, timeout: STEP_MS });
  // The sending page runs in a phone-sized window (an iPhone 12's CSS pixels, touch): the
  // screenshot shows what a phone shows, and the page must not need sideways scrolling.
  const phone = mode === 'send';
  const context = await browser.newContext({
    acceptDownloads: true,
    ...(phone ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true } : {}),
  });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('console', (m) => {
    if (m.type() === 'error') console.error(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => console.error(`page error: ${e.stack || e}`));
  page.on('crash', () => console.error('page crashed'));
  // Every change of body[data-phase] and body[data-role], in order, as it happens.
  await page.exposeFunction('__dcsendEvent', (line) => console.log(line));
  await page.addInitScript(() => {
    const seen = { phase: undefined, role: undefined };
    const report = () => {
      for (const key of ['role', 'phase']) {
        const value = document.body?.dataset[key];
        if (value !== undefined && value !== seen[key]) {
          seen[key] = value;
          window.__dcsendEvent(`${key} ${value}`);
        }
      }
    };
    new MutationObserver(report).observe(document, {
      subtree: true,
      childList: true,
      attributes: true,
      attributeFilter: ['data-phase', 'data-role'],
    });
  });
  if (mode === 'recvtree') {
    await page.addInitScript(() => {
      window.showDirectoryPicker = async () => navigator.storage.getDirectory();
    });
  } else if (mode === 'recvnofolder') {
    await page.addInitScript(() => {
      delete window.showDirectoryPicker;
      delete Window.prototype.showDirectoryPicker;
    });
  }
  const response = await page.goto(url, { timeout: STEP_MS });
  if (!response || !response.ok()) fail(`GET ${url} answered ${response?.status()}`);

  if (mode === 'send') await send(page, rest[0], rest[1]);
  else if (mode === 'recv') await recv(page, rest[0], rest[1]);
  else if (mode === 'open') await open(page, rest[0], rest.slice(1));
  else if (mode === 'sendfolder') await sendFolder(page, rest[0]);
  else if (mode === 'recvtree') await recvTree(page);
  else if (mode === 'leave') await leave(page);
  else await expectFailure(page);
}

let code = 0;
try {
  await main();
} catch (e) {
  console.error(e instanceof Failure ? `browser.mjs: ${e.message}` : e);
  code = 1;
} finally {
  await closeBrowser();
  clearTimeout(deadline);
}
console.log(`closed after ${Date.now() - started} ms`);
process.exit(code);
