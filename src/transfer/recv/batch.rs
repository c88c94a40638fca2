//! The receiver's group commit: the files verified since the last batch are made durable
//! together, then acknowledged in order. Many small files share two `syncfs` calls instead of
//! paying two `fsync`s each (about 6 ms on a virtio disk, which capped 4 KiB files at 300 a
//! second).
//!
//! A batch holds, in the order the files were verified:
//! - small files received whole in memory ([`HeldFile`]): nothing of them is on disk yet;
//! - verified `NAME.part` files to rename to `NAME` ([`Rename`]);
//! - one ack per file (its bytes).
//!
//! [`Batch::commit`] runs on a blocking thread, in this order:
//! 1. it writes each held file's `NAME.part` (created afresh, as [`Folder::create`] does), with
//!    its mode and time;
//! 2. `syncfs` of each file system the batch renames in: every `NAME.part`'s data is on disk;
//! 3. it renames each `NAME.part` to `NAME`;
//! 4. `syncfs` again: the new names are on disk.
//!
//! Then the receiver sends the acks. A power cut at any point leaves each file of the batch
//! either as `NAME.part` or as a whole `NAME`, never a `NAME` whose data did not reach the
//! disk: a rename that came before the first sync could reach the journal before the data
//! (ext4's delayed allocation), leaving an empty or partial file under the final name. An ack
//! still means "on disk".
//!
//! Where `syncfs` is missing ([`BATCHED_SYNC`] is false), each file is `fsync`ed as it is
//! written and its folder after each rename, and steps 2 and 4 do nothing.
//!
//! Must not import: webrtc, indicatif, `cli`.

use std::ffi::OsString;
use std::io;
use std::time::Duration;

use tokio::time::Instant;

use crate::transfer::sink::{BATCHED_SYNC, Folder, HeldFile};

/// At most one batch (two syncs of the file system) per this long: many small files share a
/// batch, and a lone file is acknowledged at once.
pub(super) const ACK_BATCH: Duration = Duration::from_millis(100);

/// A batch goes as soon as this many files wait, however soon after the last.
const MAX_FILES: usize = 4096;

/// ... or as soon as the files waiting hold this many bytes: batching is for small files; a
/// larger one is synced and acknowledged at once, as a lone file is. This also bounds the
/// memory that held files take.
const MAX_BYTES: u64 = 1 << 20;

/// A verified `NAME.part` to rename to `NAME` in `folder`.
#[derive(Debug)]
pub(super) struct Rename {
    /// The folder of both names.
    pub folder: Folder,
    /// `NAME.part`.
    pub from: OsString,
    /// `NAME`.
    pub to: OsString,
}

/// The files stored since the last commit, not yet durable nor acknowledged.
#[derive(Debug)]
pub(super) struct Batch {
    /// Small files to write first.
    held: Vec<HeldFile>,
    /// Then to rename, between the two syncs.
    renames: Vec<Rename>,
    /// The bytes of each file, for its ack, in order.
    acks: Vec<u64>,
    /// Their sum.
    bytes: u64,
    /// When the last batch was made durable.
    last_commit: Instant,
}

/// What [`Batch::take`] hands over: the work for a blocking thread, and the acks to send once
/// it is done.
#[derive(Debug)]
pub(super) struct Commit {
    held: Vec<HeldFile>,
    renames: Vec<Rename>,
    /// The bytes of each file, for its ack, in order.
    pub acks: Vec<u64>,
}

impl Batch {
    pub fn new() -> Self {
        let last_commit = Instant::now().checked_sub(ACK_BATCH).unwrap_or_else(Instant::now);
        Self { held: Vec::new(), renames: Vec::new(), acks: Vec::new(), bytes: 0, last_commit }
    }

    /// Adds a verified file of `bytes` bytes: `held` to write first (a small file received in
    /// memory), `rename` to give it its name (`None`: already in place, or not in a folder).
    pub fn add(&mut self, bytes: u64, held: Option<HeldFile>, rename: Option<Rename>) {
        self.held.extend(held);
        self.renames.extend(rename);
        self.acks.push(bytes);
        // Saturating: the sizes come from the peer.
        self.bytes = self.bytes.saturating_add(bytes);
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.acks.is_empty()
    }

    /// Whether the batch should be committed now: the first file at once, then at most one
    /// batch per [`ACK_BATCH`], or as soon as [`MAX_FILES`] files or [`MAX_BYTES`] wait (a
    /// file that large is acknowledged on its own, at once).
    pub fn due(&self) -> bool {
        !self.is_empty()
            && (self.acks.len() >= MAX_FILES
                || self.bytes >= MAX_BYTES
                || self.last_commit.elapsed() >= ACK_BATCH)
    }

    /// When the batch is due at the latest (the receiver's loop wakes for it); `None` when
    /// nothing waits.
    pub fn deadline(&self) -> Option<Instant> {
        (!self.is_empty()).then(|| self.last_commit + ACK_BATCH)
    }

    /// Empties the batch into a [`Commit`], starting the clock for the next one.
    pub fn take(&mut self) -> Commit {
        self.last_commit = Instant::now();
        self.bytes = 0;
        Commit {
            held: std::mem::take(&mut self.held),
            renames: std::mem::take(&mut self.renames),
            acks: std::mem::take(&mut self.acks),
        }
    }
}

impl Commit {
    /// Makes the files durable, in the order the module docs give: write the held files, sync,
    /// rename, sync. Blocking: run it with `spawn_blocking`. Stops at the first error; the
    /// files not yet renamed stay `NAME.part`.
    pub fn run(self) -> io::Result<()> {
        self.run_with(&mut |folder| folder.sync_all_written())
    }

    /// [`Commit::run`] with `sync` in place of `syncfs` (the tests watch the order).
    fn run_with(self, sync: &mut dyn FnMut(&Folder) -> io::Result<()>) -> io::Result<()> {
        for file in self.held {
            file.write()?;
        }
        if self.renames.is_empty() {
            return Ok(());
        }
        // One sync per file system: a tree's folders are nearly always on one.
        let mut filesystems: Vec<&Folder> = Vec::new();
        for r in &self.renames {
            if !filesystems.iter().any(|f| f.device() == r.folder.device()) {
                filesystems.push(&r.folder);
            }
        }
        let sync_all = |sync: &mut dyn FnMut(&Folder) -> io::Result<()>| {
            filesystems.iter().try_for_each(|f| if BATCHED_SYNC { sync(f) } else { Ok(()) })
        };
        sync_all(sync)?;
        for r in &self.renames {
            r.folder.rename(&r.from, &r.to)?;
        }
        sync_all(sync)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::path::Path;

    use bytes::Bytes;

    use super::*;
    use crate::transfer::sink::{FileMeta, Held, PartFile};

    /// What the folder holds, by name, with each file's bytes.
    fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut all: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())
            })
            .collect();
        all.sort();
        all
    }

    fn held(folder: &Folder, name: &str, data: &'static [u8]) -> (HeldFile, Rename) {
        let part = PartFile::of(folder, name.as_ref());
        let mut h = Held::new(part.clone()).unwrap();
        h.push(Bytes::from_static(data));
        let (_, file) = h.finish(FileMeta::default());
        (file, Rename { folder: folder.clone(), from: part.name, to: name.into() })
    }

    /// The power-cut order: at the first sync every file of the batch is written, and only
    /// under its `NAME.part`; at the second every one has its name. A rename before the
    /// first sync (the order before) fails this.
    #[test]
    fn data_is_synced_before_the_renames_and_names_after() {
        let dir = tempfile::tempdir().unwrap();
        let folder = Folder::open(dir.path()).unwrap();
        let mut batch = Batch::new();
        for (name, data) in [("a", &b"alpha"[..]), ("b", b"")] {
            let (file, rename) = held(&folder, name, data);
            batch.add(data.len() as u64, Some(file), Some(rename));
        }
        // A large file streamed to its `.part` earlier, verified, waiting for its name.
        std::fs::write(dir.path().join("c.part"), b"gamma").unwrap();
        let rename = Rename { folder: folder.clone(), from: "c.part".into(), to: "c".into() };
        batch.add(5, None, Some(rename));
        let seen = RefCell::new(Vec::new());
        batch
            .take()
            .run_with(&mut |_| {
                seen.borrow_mut().push(listing(dir.path()));
                Ok(())
            })
            .unwrap();
        let part = |n: &str, d: &[u8]| (n.to_owned(), d.to_vec());
        let seen = seen.into_inner();
        assert_eq!(
            seen,
            [
                vec![part("a.part", b"alpha"), part("b.part", b""), part("c.part", b"gamma")],
                vec![part("a", b"alpha"), part("b", b""), part("c", b"gamma")],
            ]
        );
    }

    /// A batch of files already in place (a resume's whole files) or outside a folder has
    /// nothing to sync; its acks still go.
    #[test]
    fn nothing_to_rename_needs_no_sync() {
        let mut batch = Batch::new();
        batch.add(7, None, None);
        let commit = batch.take();
        assert_eq!(commit.acks, [7]);
        commit.run_with(&mut |_| panic!("synced for nothing")).unwrap();
        assert!(batch.is_empty());
    }

    /// The first file is due at once, the next only after [`ACK_BATCH`] or at the limits.
    #[test]
    fn batches_are_due_at_most_every_ack_batch_or_at_the_limits() {
        let mut batch = Batch::new();
        assert!(!batch.due() && batch.deadline().is_none());
        batch.add(1, None, None);
        assert!(batch.due(), "a lone file is acknowledged at once");
        batch.take();
        batch.add(1, None, None);
        assert!(!batch.due(), "committed just now");
        assert_eq!(batch.deadline(), Some(batch.last_commit + ACK_BATCH));
        // As if the last commit were ACK_BATCH ago (the clock is not paused in unit tests).
        batch.last_commit -= ACK_BATCH;
        assert!(batch.due());
        batch.take();
        batch.add(MAX_BYTES, None, None);
        assert!(batch.due(), "a large file goes at once");
        batch.take();
        for _ in 0..MAX_FILES {
            assert!(!batch.due());
            batch.add(0, None, None);
        }
        assert!(batch.due());
    }
}
