//! Writes one received item on a blocking thread: to stdout, or to `NAME.part` which the
//! receiver renames once the digest matches. Hashes as it writes, off the async threads.
//!
//! For a resume, [`Partial::open`] hashes what an existing `NAME.part` holds (on a blocking
//! thread too) without changing it; once the sender has answered, [`Partial::keep`] appends
//! to it with the digest carried over, or [`Partial::discard`] empties it.
//!
//! Must not import: webrtc, indicatif, `cli`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::wire::Digest;

/// Where one item's bytes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkTarget {
    /// Standard output.
    Stdout,
    /// A `.part` file (created or truncated).
    Part(PathBuf),
    /// Nowhere: the bytes are counted and hashed, then dropped (`recv --sink`, `bench`).
    Discard,
}

/// What a sink wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Bytes written.
    pub bytes: u64,
    /// Hex SHA-256 of them.
    pub sha256: String,
}

/// A running writer. Feed it with [`Sink::write`], end it with [`Sink::finish`].
#[derive(Debug)]
pub struct Sink {
    tx: mpsc::Sender<Bytes>,
    task: tokio::task::JoinHandle<io::Result<Written>>,
}

/// Chunks that may wait for the disk; past this the channel reader waits too, and SCTP's
/// receive window pushes back on the sender.
const SINK_QUEUE: usize = 16;

impl Sink {
    /// Opens the target and starts the writer thread.
    pub fn open(target: SinkTarget) -> io::Result<Self> {
        let out: Box<dyn Write + Send> =
            match &target {
                SinkTarget::Stdout => Box::new(io::stdout()),
                SinkTarget::Discard => Box::new(io::sink()),
                SinkTarget::Part(path) => Box::new(
                    OpenOptions::new().write(true).create(true).truncate(true).open(path).map_err(
                        |e| io::Error::new(e.kind(), format!("{}: {e}", path.display())),
                    )?,
                ),
            };
        Ok(Self::start(out, target, 0, Digest::new()))
    }

    /// Starts the writer thread on `out`, counting and hashing on from `bytes` and `digest`
    /// (a kept prefix).
    fn start(
        mut out: Box<dyn Write + Send>,
        target: SinkTarget,
        mut bytes: u64,
        mut digest: Digest,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<Bytes>(SINK_QUEUE);
        let task = tokio::task::spawn_blocking(move || {
            while let Some(chunk) = rx.blocking_recv() {
                out.write_all(&chunk)?;
                digest.update(&chunk);
                bytes += chunk.len() as u64;
            }
            out.flush()?;
            drop(out);
            // The ack promises the bytes are on disk, not only in the page cache.
            if let SinkTarget::Part(path) = &target {
                File::open(path)?.sync_all()?;
            }
            Ok(Written { bytes, sha256: digest.finish() })
        });
        Self { tx, task }
    }

    /// Queues a chunk; waits while the writer is behind.
    pub async fn write(&self, chunk: Bytes) -> io::Result<()> {
        if self.tx.send(chunk).await.is_ok() {
            return Ok(());
        }
        // The writer stopped: its error says why.
        Err(io::Error::other("the writer stopped"))
    }

    /// Flushes and closes; returns the count and digest, or the first write error.
    pub async fn finish(self) -> io::Result<Written> {
        drop(self.tx);
        self.task.await.map_err(io::Error::other)?
    }
}

/// Reads of this size hash a prefix.
const HASH_CHUNK: usize = 1 << 20;

/// An existing `NAME.part` (or none), hashed and left as it was until the sender answers.
#[derive(Debug)]
pub struct Partial {
    path: PathBuf,
    /// The open file, positioned after the prefix; `None` when there was no file.
    file: Option<File>,
    /// Bytes on disk.
    on_disk: u64,
    /// The prefix on offer: `on_disk`, or 0 when that is over the item's size.
    usable: u64,
    /// Digest of the `usable` bytes.
    digest: Digest,
}

impl Partial {
    /// Looks at `path` for the start of an item of `size` bytes: opens it without changing
    /// it and hashes it, unless it is longer than `size` (then it offers nothing). A missing
    /// file offers nothing. Refuses anything but a regular file (a symlink, a folder, a FIFO).
    /// Blocking: run it with `spawn_blocking`. Stops with `Interrupted` when `cancel` fires.
    pub fn open(path: &Path, size: u64, cancel: &CancellationToken) -> io::Result<Self> {
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let nothing = |on_disk| Partial {
            path: path.to_owned(),
            file: None,
            on_disk,
            usable: 0,
            digest: Digest::new(),
        };
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(nothing(0)),
            Err(e) => return Err(named(e)),
            Ok(meta) if !meta.file_type().is_file() => {
                return Err(io::Error::other(format!(
                    "{} exists and is not a regular file",
                    path.display()
                )));
            }
            Ok(meta) if meta.len() > size => return Ok(nothing(meta.len())),
            Ok(_) => {}
        }
        let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(named)?;
        let (mut digest, mut usable) = (Digest::new(), 0u64);
        let mut buf = vec![0u8; HASH_CHUNK];
        loop {
            if cancel.is_cancelled() {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
            }
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(named(e)),
            };
            digest.update(&buf[..n]);
            usable += n as u64;
            if usable > size {
                // It grew while we read it: not ours to resume.
                return Ok(nothing(usable));
            }
        }
        Ok(Partial { path: path.to_owned(), file: Some(file), on_disk: usable, usable, digest })
    }

    /// Bytes the file held (0 when there was none).
    pub fn on_disk(&self) -> u64 {
        self.on_disk
    }

    /// The prefix to offer in `have`: its length and hex SHA-256.
    pub fn offer(&self) -> (u64, String) {
        (self.usable, self.digest.peek())
    }

    /// The sender confirmed the prefix: append after it, counting and hashing on from it.
    pub fn keep(self) -> io::Result<Sink> {
        let Some(mut file) = self.file else {
            // Nothing to keep: the same as starting over.
            return Sink::open(SinkTarget::Part(self.path));
        };
        file.seek(SeekFrom::Start(self.usable))?;
        Ok(Sink::start(Box::new(file), SinkTarget::Part(self.path), self.usable, self.digest))
    }

    /// The sender starts over: empty the file and write from its start.
    pub fn discard(self) -> io::Result<Sink> {
        drop(self.file);
        Sink::open(SinkTarget::Part(self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_part_offers_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = Partial::open(&dir.path().join("x.part"), 10, &CancellationToken::new()).unwrap();
        assert_eq!(p.offer(), (0, Digest::of(b"")));
        assert_eq!(p.on_disk(), 0);
    }

    #[test]
    fn a_part_longer_than_the_item_offers_nothing_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.part");
        std::fs::write(&path, b"0123456789").unwrap();
        let p = Partial::open(&path, 9, &CancellationToken::new()).unwrap();
        assert_eq!(p.offer(), (0, Digest::of(b"")));
        assert_eq!(p.on_disk(), 10);
        drop(p);
        assert_eq!(std::fs::read(&path).unwrap(), b"0123456789");
    }

    #[test]
    fn not_a_regular_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.part");
        std::fs::create_dir(&path).unwrap();
        let err = Partial::open(&path, 9, &CancellationToken::new()).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        #[cfg(unix)]
        {
            let link = dir.path().join("l.part");
            std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
            assert!(Partial::open(&link, 9, &CancellationToken::new()).is_err());
        }
    }

    #[tokio::test]
    async fn keep_appends_and_the_digest_covers_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.part");
        std::fs::write(&path, b"ab").unwrap();
        let p = Partial::open(&path, 3, &CancellationToken::new()).unwrap();
        assert_eq!(p.offer(), (2, Digest::of(b"ab")));
        let sink = p.keep().unwrap();
        sink.write(Bytes::from_static(b"c")).await.unwrap();
        let w = sink.finish().await.unwrap();
        assert_eq!(w, Written { bytes: 3, sha256: Digest::of(b"abc") });
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
    }

    #[tokio::test]
    async fn discard_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.part");
        std::fs::write(&path, b"zz").unwrap();
        let sink = Partial::open(&path, 3, &CancellationToken::new()).unwrap().discard().unwrap();
        sink.write(Bytes::from_static(b"abc")).await.unwrap();
        let w = sink.finish().await.unwrap();
        assert_eq!(w, Written { bytes: 3, sha256: Digest::of(b"abc") });
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
    }

    #[test]
    fn a_cancelled_hash_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.part");
        std::fs::write(&path, b"ab").unwrap();
        let cancel = CancellationToken::new();
        cancel.cancel();
        let err = Partial::open(&path, 3, &cancel).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Interrupted);
    }
}
