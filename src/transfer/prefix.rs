//! Hashing the start of a file, for resume: the sender checks a receiver's `have` against its
//! input ([`super::source`]), the receiver hashes the `NAME.part` it offers ([`super::sink`]).
//! One loop, so both sides read and hash a prefix the same way. Blocking.
//!
//! Must not import: webrtc, indicatif, `cli`.

use std::io::{self, Read};

use tokio_util::sync::CancellationToken;

use super::wire::Digest;

/// Reads of this size hash a prefix.
const HASH_CHUNK: usize = 1 << 20;

/// Feeds `digest` with at most `limit` bytes of `reader`, fewer if it ends first. Returns how
/// many bytes were hashed, or `None` when `cancel` fired (checked before every read).
pub fn hash_prefix(
    reader: &mut impl Read,
    limit: u64,
    digest: &mut Digest,
    cancel: &CancellationToken,
) -> io::Result<Option<u64>> {
    let mut buf = vec![0u8; HASH_CHUNK];
    let mut hashed = 0u64;
    while hashed < limit {
        if cancel.is_cancelled() {
            return Ok(None);
        }
        let want = buf.len().min((limit - hashed).try_into().unwrap_or(usize::MAX));
        let n = match reader.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        digest.update(&buf[..n]);
        hashed += n as u64;
    }
    Ok(Some(hashed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashed(data: &[u8], limit: u64) -> (u64, String, Vec<u8>) {
        let mut reader = data;
        let mut digest = Digest::new();
        let n = hash_prefix(&mut reader, limit, &mut digest, &CancellationToken::new()).unwrap();
        (n.unwrap(), digest.finish(), reader.to_vec())
    }

    #[test]
    fn hashes_up_to_the_limit_and_leaves_the_rest() {
        assert_eq!(hashed(b"abcdef", 3), (3, Digest::of(b"abc"), b"def".to_vec()));
        assert_eq!(hashed(b"abcdef", 0), (0, Digest::of(b""), b"abcdef".to_vec()));
    }

    #[test]
    fn a_short_input_ends_early() {
        assert_eq!(hashed(b"abc", 10), (3, Digest::of(b"abc"), Vec::new()));
        assert_eq!(hashed(b"abc", u64::MAX), (3, Digest::of(b"abc"), Vec::new()));
    }

    #[test]
    fn a_prefix_longer_than_one_read_is_whole() {
        let data = vec![7u8; HASH_CHUNK * 2 + 5];
        let (n, sha, rest) = hashed(&data, HASH_CHUNK as u64 + 1);
        assert_eq!((n, sha), (HASH_CHUNK as u64 + 1, Digest::of(&data[..HASH_CHUNK + 1])));
        assert_eq!(rest.len(), HASH_CHUNK + 4);
    }

    #[test]
    fn cancel_stops_before_reading() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let got = hash_prefix(&mut &b"abc"[..], 3, &mut Digest::new(), &cancel).unwrap();
        assert_eq!(got, None);
    }
}
