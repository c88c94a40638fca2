//! The compression extension's framing (docs/protocol.md, "Compression"): in an item whose
//! `file` said `zstd: true`, every binary message starts with a one-byte tag, [`RAW`] (the
//! payload bytes follow as they are) or [`ZSTD`] (one zstd frame follows whose content is
//! the payload bytes). The sender compresses each message on its own and keeps the result
//! only when it saves at least [`MIN_SAVING`] of it; the receiver decompresses into at most
//! [`MAX_UNPACKED`] bytes per message, so a hostile sender's decompression bomb is refused
//! without allocating more than that. Digests are always over the payload bytes, never over
//! what travelled. Pure: no I/O.
//!
//! Must not import: webrtc, tokio, indicatif, `cli`.

use bytes::{BufMut, Bytes, BytesMut};

/// Tag: the payload bytes follow as they are.
pub const RAW: u8 = 0;

/// Tag: a zstd frame follows.
pub const ZSTD: u8 = 1;

/// The most payload bytes one message may carry once decompressed: the largest
/// `--chunk-size`. A frame that says or turns out to hold more is refused.
pub const MAX_UNPACKED: usize = 256 * 1024;

/// A message is sent compressed only when that saves at least this fraction of it
/// (1/`MIN_SAVING`): a few percent saved is not worth the receiver's decompression.
pub const MIN_SAVING: usize = 16;

/// The zstd level: zstd's default, fast on both sides (see BENCHMARKS.md, "Compression").
pub const LEVEL: i32 = 3;

/// After this many messages in a row that did not shrink enough, the sender stops trying
/// for [`BACKOFF`] messages (sending them raw): incompressible data (media, archives) then
/// costs the compressor once in a while, not on every message.
const MISSES_BEFORE_BACKOFF: u32 = 4;

/// Messages sent raw without trying, after [`MISSES_BEFORE_BACKOFF`] misses.
const BACKOFF: u32 = 64;

/// Why a framed message was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// An empty binary message: it has no tag.
    #[error("an empty binary message in a compressed item (no tag)")]
    Empty,
    /// A tag other than [`RAW`] and [`ZSTD`].
    #[error("unknown message tag {0} in a compressed item")]
    Tag(u8),
    /// A frame whose content is larger than [`MAX_UNPACKED`] (a decompression bomb).
    #[error("a compressed message holds more than {MAX_UNPACKED} bytes (refused unpacked)")]
    TooLarge,
    /// Not a valid zstd frame.
    #[error("a compressed message is not a valid zstd frame: {0}")]
    Corrupt(String),
}

/// The sender's side: frames and, when it pays, compresses each message.
pub struct Packer {
    compressor: zstd::bulk::Compressor<'static>,
    misses: u32,
    skip: u32,
    /// Payload bytes in and message bytes out, for the summary.
    pub payload_bytes: u64,
    /// Bytes of the framed messages.
    pub wire_bytes: u64,
}

impl std::fmt::Debug for Packer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packer")
            .field("payload_bytes", &self.payload_bytes)
            .field("wire_bytes", &self.wire_bytes)
            .finish_non_exhaustive()
    }
}

impl Packer {
    /// A packer at [`LEVEL`].
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            compressor: zstd::bulk::Compressor::new(LEVEL)?,
            misses: 0,
            skip: 0,
            payload_bytes: 0,
            wire_bytes: 0,
        })
    }

    /// The message for `chunk` (at most [`MAX_UNPACKED`] bytes): compressed if that saves
    /// enough, else raw; tagged either way.
    pub fn pack(&mut self, chunk: &[u8]) -> Bytes {
        debug_assert!(chunk.len() <= MAX_UNPACKED);
        let packed = self.attempt(chunk);
        let msg = packed.unwrap_or_else(|| {
            let mut msg = BytesMut::with_capacity(chunk.len() + 1);
            msg.put_u8(RAW);
            msg.put_slice(chunk);
            msg.freeze()
        });
        self.payload_bytes += chunk.len() as u64;
        self.wire_bytes += msg.len() as u64;
        msg
    }

    /// `chunk` compressed, unless compression rests after misses or does not pay here.
    fn attempt(&mut self, chunk: &[u8]) -> Option<Bytes> {
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        self.try_compress(chunk)
    }

    /// [`Packer::pack`] for bytes read after one byte of room for the tag (`framed[1..]`):
    /// sent as they are, the buffer becomes the message without a copy.
    pub fn pack_framed(&mut self, mut framed: BytesMut) -> Bytes {
        let chunk = &framed[1..];
        debug_assert!(chunk.len() <= MAX_UNPACKED);
        let len = chunk.len() as u64;
        let packed = self.attempt(chunk);
        let msg = packed.unwrap_or_else(|| {
            framed[0] = RAW;
            framed.freeze()
        });
        self.payload_bytes += len;
        self.wire_bytes += msg.len() as u64;
        msg
    }

    fn try_compress(&mut self, chunk: &[u8]) -> Option<Bytes> {
        let enough = chunk.len() - chunk.len() / MIN_SAVING;
        // Room for the tag, and a frame up to the size worth sending: larger fails.
        let mut msg = vec![0u8; enough.max(1)];
        msg[0] = ZSTD;
        match self.compressor.compress_to_buffer(chunk, &mut msg[1..]) {
            Ok(n) if n + 1 < enough => {
                msg.truncate(n + 1);
                self.misses = 0;
                Some(msg.into())
            }
            _ => {
                self.misses += 1;
                if self.misses >= MISSES_BEFORE_BACKOFF {
                    (self.misses, self.skip) = (0, BACKOFF);
                }
                None
            }
        }
    }
}

/// The receiver's side: the payload bytes of one framed message, decompressed into at most
/// [`MAX_UNPACKED`] bytes.
pub fn unpack(msg: &Bytes) -> Result<Bytes, CodecError> {
    let (&tag, body) = msg.split_first().ok_or(CodecError::Empty)?;
    match tag {
        RAW => Ok(msg.slice(1..)),
        ZSTD => {
            // The frame's own claim first: a bomb that says its size is refused unread.
            match zstd::zstd_safe::get_frame_content_size(body) {
                Ok(Some(n)) if n > MAX_UNPACKED as u64 => return Err(CodecError::TooLarge),
                Err(_) => return Err(CodecError::Corrupt("no frame header".into())),
                _ => {}
            }
            let mut out = Vec::with_capacity(MAX_UNPACKED);
            let mut d =
                zstd::bulk::Decompressor::new().map_err(|e| CodecError::Corrupt(e.to_string()))?;
            // The output buffer is the bound: a frame that holds more fails here.
            match d.decompress_to_buffer(body, &mut out) {
                Ok(_) => Ok(out.into()),
                Err(e) if e.to_string().contains("Destination buffer is too small") => {
                    Err(CodecError::TooLarge)
                }
                Err(e) => Err(CodecError::Corrupt(e.to_string())),
            }
        }
        other => Err(CodecError::Tag(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(len: usize) -> Vec<u8> {
        b"2026-12-01T01:13:24Z INFO dcsend: sent 3 files, verified\n"
            .iter()
            .cycle()
            .take(len)
            .copied()
            .collect()
    }

    fn noise(len: usize) -> Vec<u8> {
        use rand::{Rng, SeedableRng};
        let mut out = vec![0u8; len];
        rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut out);
        out
    }

    #[test]
    fn compressible_messages_shrink_and_unpack_to_the_same_bytes() {
        let mut p = Packer::new().unwrap();
        let chunk = text(64 * 1024);
        let msg = p.pack(&chunk);
        assert_eq!(msg[0], ZSTD);
        assert!(msg.len() < chunk.len() / 10, "{} bytes", msg.len());
        assert_eq!(unpack(&msg).unwrap(), chunk);
        assert_eq!((p.payload_bytes, p.wire_bytes), (chunk.len() as u64, msg.len() as u64));
    }

    #[test]
    fn incompressible_messages_go_raw_and_the_packer_backs_off() {
        let mut p = Packer::new().unwrap();
        let chunk = noise(64 * 1024);
        for _ in 0..MISSES_BEFORE_BACKOFF {
            let msg = p.pack(&chunk);
            assert_eq!((msg[0], &msg[1..]), (RAW, &chunk[..]));
            assert_eq!(unpack(&msg).unwrap(), chunk);
        }
        assert_eq!(p.skip, BACKOFF, "backing off after the misses");
        // While backing off even compressible data goes raw; then it is tried again.
        for _ in 0..BACKOFF {
            assert_eq!(p.pack(&text(1000))[0], RAW);
        }
        assert_eq!(p.pack(&text(64 * 1024))[0], ZSTD);
    }

    #[test]
    fn packing_in_place_gives_the_same_messages() {
        for chunk in [text(64 * 1024), noise(64 * 1024), b"ab".to_vec()] {
            let (mut a, mut b) = (Packer::new().unwrap(), Packer::new().unwrap());
            let mut framed = BytesMut::zeroed(1);
            framed.extend_from_slice(&chunk);
            assert_eq!(a.pack(&chunk), b.pack_framed(framed));
            assert_eq!((a.payload_bytes, a.wire_bytes), (b.payload_bytes, b.wire_bytes));
        }
    }

    #[test]
    fn tiny_and_empty_chunks_are_framed() {
        let mut p = Packer::new().unwrap();
        for chunk in [&b""[..], b"a", b"ab"] {
            let msg = p.pack(chunk);
            assert_eq!(msg[0], RAW, "{chunk:?}");
            assert_eq!(unpack(&msg).unwrap(), chunk);
        }
    }

    #[test]
    fn a_bomb_that_says_its_size_is_refused() {
        let big = vec![0u8; MAX_UNPACKED + 1];
        let mut msg = vec![ZSTD];
        msg.extend(zstd::bulk::compress(&big, 19).unwrap());
        assert!(msg.len() < 1024, "{}", msg.len());
        assert_eq!(unpack(&msg.into()), Err(CodecError::TooLarge));
    }

    #[test]
    fn a_bomb_that_hides_its_size_is_refused_at_the_bound() {
        // A streamed frame has no content size in its header.
        let big = vec![0u8; 16 << 20];
        let mut msg = vec![ZSTD];
        msg.extend(zstd::stream::encode_all(&big[..], 19).unwrap());
        assert!(matches!(zstd::zstd_safe::get_frame_content_size(&msg[1..]), Ok(None)));
        assert_eq!(unpack(&msg.into()), Err(CodecError::TooLarge));
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(unpack(&Bytes::new()), Err(CodecError::Empty));
        assert_eq!(unpack(&Bytes::from_static(&[7, 1, 2])), Err(CodecError::Tag(7)));
        assert!(matches!(
            unpack(&Bytes::from_static(&[ZSTD, 1, 2, 3, 4, 5])),
            Err(CodecError::Corrupt(_))
        ));
    }
}
