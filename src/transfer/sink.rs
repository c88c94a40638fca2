//! Writes one received item on a blocking thread: to stdout, or to `NAME.part` which the
//! receiver renames once the digest matches. Hashes as it writes, off the async threads.
//!
//! Must not import: webrtc, indicatif, `cli`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

use bytes::Bytes;
use tokio::sync::mpsc;

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
        let mut out: Box<dyn Write + Send> =
            match &target {
                SinkTarget::Stdout => Box::new(io::stdout()),
                SinkTarget::Discard => Box::new(io::sink()),
                SinkTarget::Part(path) => Box::new(
                    OpenOptions::new().write(true).create(true).truncate(true).open(path).map_err(
                        |e| io::Error::new(e.kind(), format!("{}: {e}", path.display())),
                    )?,
                ),
            };
        let (tx, mut rx) = mpsc::channel::<Bytes>(SINK_QUEUE);
        let task = tokio::task::spawn_blocking(move || {
            let (mut bytes, mut digest) = (0u64, Digest::new());
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
        Ok(Self { tx, task })
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
