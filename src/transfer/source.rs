//! Reads the inputs (files or stdin) on a blocking thread and feeds the pump: for each item
//! a `file` header, the payload as binary messages of at most `chunk_bytes`, and an `eof`
//! with the byte count and SHA-256; `done` after the last item. In raw mode only the
//! payload. Hashing happens here, off the async threads.
//!
//! Back-pressure: `blocking_send` into the pump's bounded feed waits while the pump is
//! paused, so the read slows to the channel's pace and memory stays flat.
//!
//! Must not import: webrtc, indicatif, `cli`.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use bytes::BytesMut;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::wire::{Control, Digest};
use crate::peer::Outbound;

/// One thing to send.
#[derive(Debug, Clone)]
pub struct Item {
    /// The file, or `None` for stdin.
    pub path: Option<PathBuf>,
    /// The name announced to the receiver (`None` for stdin).
    pub name: Option<String>,
    /// The size announced to the receiver, when known.
    pub size: Option<u64>,
}

impl Item {
    /// Describes `path` (or stdin), reading its size and name.
    pub fn open(path: Option<PathBuf>) -> io::Result<Self> {
        let Some(path) = path else { return Ok(Self { path: None, name: None, size: None }) };
        let meta = std::fs::metadata(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        // A FIFO or a character device has no meaningful size.
        let size = meta.is_file().then_some(meta.len());
        Ok(Self { path: Some(path), name, size })
    }

    /// A printable label.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| "stdin".into())
    }
}

/// What was read from one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemSent {
    /// The item's label.
    pub label: String,
    /// Payload bytes read.
    pub bytes: u64,
    /// Hex SHA-256 of those bytes.
    pub sha256: String,
}

/// Reads every item in order into `feed`. Returns one [`ItemSent`] per item.
///
/// Stops early (without error) when `cancel` fires or the pump hangs up.
pub fn spawn(
    items: Vec<Item>,
    chunk_bytes: usize,
    raw: bool,
    feed: mpsc::Sender<Outbound>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<io::Result<Vec<ItemSent>>> {
    tokio::task::spawn_blocking(move || {
        let mut sent = Vec::with_capacity(items.len());
        let push = |msg: Outbound| -> bool { feed.blocking_send(msg).is_ok() };
        for item in items {
            if cancel.is_cancelled() {
                break;
            }
            if !raw {
                let header = Control::File { name: item.name.clone(), size: item.size };
                if !push(Outbound::Text(header.encode())) {
                    break;
                }
            }
            let mut reader: Box<dyn Read> = match &item.path {
                Some(p) => Box::new(
                    File::open(p)
                        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?,
                ),
                None => Box::new(io::stdin()),
            };
            let (mut bytes, mut digest) = (0u64, Digest::new());
            loop {
                if cancel.is_cancelled() {
                    return Ok(sent);
                }
                let mut buf = BytesMut::zeroed(chunk_bytes);
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("reading {}: {e}", item.label()),
                        ));
                    }
                };
                buf.truncate(n);
                digest.update(&buf);
                bytes += n as u64;
                if let Some(size) = item.size
                    && bytes > size
                {
                    return Err(io::Error::other(format!(
                        "{} grew while it was being sent",
                        item.label()
                    )));
                }
                if !push(Outbound::Binary(buf.freeze())) {
                    return Ok(sent);
                }
            }
            if let Some(size) = item.size
                && bytes != size
            {
                return Err(io::Error::other(format!(
                    "{} shrank while it was being sent ({bytes} of {size} bytes)",
                    item.label()
                )));
            }
            let sha256 = digest.finish();
            if !raw
                && !push(Outbound::Text(Control::Eof { bytes, sha256: sha256.clone() }.encode()))
            {
                break;
            }
            sent.push(ItemSent { label: item.label(), bytes, sha256 });
        }
        if !raw && !cancel.is_cancelled() {
            push(Outbound::Text(Control::Done.encode()));
        }
        Ok(sent)
    })
}
