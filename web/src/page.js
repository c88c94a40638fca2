// The page `dcsend signal` serves (web/static/index.html): one end of a dcsend transfer in a
// browser. It meets the other end (dcsend, or another page) through the same rendezvous server,
// PAKE and sealing as dcsend (./connect.js, ./signal.js), then runs one session over the
// `dcsend` data channel (./session.js: who sends, the wire protocol, the threshold sender) and
// shows it (./view.js). It receives into memory (a Blob, up to a cap) or, where the browser has
// the File System Access API, straight into a folder the person picks (./sinks.js).
//
// This module only wires them together and owns what the person chose: the files to send and
// the folder to save into, each offered once the page knows which end it is (a dcsend peer
// says so as soon as the channel opens).

import { PeerUrl } from './signal.js';
import { connect } from './connect.js';
import { Session, Inbox, Progress, NO_FOLDER_HERE } from './session.js';
import { MemorySink, FolderSink, MovableSink, MEMORY_CAP, folderAt } from './sinks.js';
import { size } from './format.js';
import * as view from './view.js';

/**
 * How long the page waits for the person to pick a folder when a sender announces one: a dcsend
 * sender waits 30 s for the receiver's hello.
 */
const TREE_FOLDER_WAIT_MS = 25_000;

/** @typedef {import('./session.js').Chosen} Chosen */

/** What the person chose: files to send, a folder to save into. */
class Choices {
  constructor() {
    /** @type {Chosen[]} */ this.files = [];
    /** @type {((files: Chosen[]) => void) | null} */ this.waiting = null;
    /** @type {((picked: boolean) => void) | null} a sender's folder waits for a folder */
    this.folderWaiting = null;
    /** @type {FileSystemDirectoryHandle | null} */ this.folder = null;
    /** @type {MovableSink | null} the item being received into memory, while no folder is chosen */
    this.inMemory = null;
  }

  /** @param {Chosen[]} files */
  choose(files) {
    if (files.length === 0 || !view.canChoose()) return;
    if (view.phase() === 'sending' || view.phase() === 'done') return;
    this.files = files;
    view.showChosen(files);
    if (this.waiting) this.waiting(files);
  }

  /**
   * Saves into `folder` from now on, the item under way included.
   * @param {FileSystemDirectoryHandle} folder
   */
  async chooseFolder(folder) {
    this.folder = folder;
    this.folderWaiting?.(true);
    await this.inMemory?.moveTo(folder);
  }

  /** The files to send: those already chosen, or the next choice. @returns {Promise<Chosen[]>} */
  next() {
    if (this.files.length > 0) return Promise.resolve(this.files);
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  /** Where a received item goes. @type {import('./session.js').Sinks} */
  get sinks() {
    return {
      open: async (name, bytes) => {
        if (this.folder !== null) return FolderSink.open(this.folder, name);
        if (name.includes('/')) throw new Error('no folder was chosen to save the sent folder into');
        if (!view.canSaveToFolder()) {
          if (bytes !== null && bytes > MEMORY_CAP) {
            throw new Error(
              `${name} is ${size(bytes)}, more than this page keeps in memory (${size(MEMORY_CAP)}); ` +
                'receive it with dcsend recv, or in a browser that can save into a folder',
            );
          }
          return new MemorySink();
        }
        // In memory until a folder is chosen, which then takes what arrived so far too.
        if (bytes !== null && bytes > MEMORY_CAP) view.askForFolder(name, bytes);
        this.inMemory = new MovableSink(name);
        return this.inMemory;
      },
      stream: () => new MemorySink(),
      inFolder: () => this.folder !== null,
      forTree: async (files) => {
        if (this.folder !== null) return true;
        if (!view.canSaveToFolder()) {
          view.cannotSaveTree();
          return NO_FOLDER_HERE;
        }
        view.askForTreeFolder(files);
        /** @type {ReturnType<typeof setTimeout> | undefined} */
        let timer;
        const picked = await new Promise((resolve) => {
          this.folderWaiting = resolve;
          timer = setTimeout(() => resolve(false), TREE_FOLDER_WAIT_MS);
        });
        clearTimeout(timer);
        this.folderWaiting = null;
        return (
          picked ||
          `no folder was chosen to save it into within ${TREE_FOLDER_WAIT_MS / 1000} s: choose one sooner, ` +
            'or receive with `dcsend recv -o DIR/`'
        );
      },
      makeDir: async (path) => {
        if (this.folder === null) throw new Error('no folder was chosen to save the sent folder into');
        await folderAt(this.folder, path.split('/'));
      },
    };
  }
}

/** Connects, runs the session, and shows how it ended. @param {PeerUrl} url @param {Choices} choices */
async function run(url, choices) {
  const ui = { phase: view.setPhase, say: view.say };
  const progress = new Progress();
  view.watchProgress(progress);
  try {
    const { pc, dc } = await connect(url, ui);
    const session = new Session(dc, {
      inbox: new Inbox(dc, pc),
      ui: {
        ...ui,
        role: view.showRole,
        received: (item) => view.showReceived(item, choices.folder?.name),
      },
      progress,
      choice: { now: () => choices.files, next: () => choices.next() },
      sinks: choices.sinks,
      threshold: view.wantedThreshold,
      maxMessageSize: () => pc.sctp?.maxMessageSize,
    });
    const stopOnHide = () => session.abort('the browser page was closed');
    window.addEventListener('pagehide', stopOnHide);
    let summary;
    try {
      summary = await session.run();
    } finally {
      window.removeEventListener('pagehide', stopOnHide);
      pc.close();
    }
    view.setPhase('done', summary);
  } catch (e) {
    progress.stop();
    view.showError(e);
    console.error('dcsend:', e);
  }
}

async function main() {
  const choices = new Choices();
  view.watchChoices((files) => choices.choose(files));
  view.offerFolder((folder) => choices.chooseFolder(folder));
  let url;
  try {
    url = PeerUrl.parse(location.href);
  } catch (e) {
    view.showError(e);
    console.error('dcsend:', e);
    return;
  }
  // The server's bare address: open a room at once and show what to run on the other side.
  if (url.room === null) {
    url = url.completed();
    history.replaceState(null, '', url.toString());
    view.showInvite(url.toString());
  }
  await run(url, choices);
  view.hideInvite();
}

main();
