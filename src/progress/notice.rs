//! One-line notices for the user during a transfer, as facts: the core says what happened
//! (a path, sizes, why) with a [`Notice`], the meter carries it to the ticker, and its
//! `Display` here is the one place that words it. The ticker prints it on stderr above the
//! live view.
//!
//! Must not import: indicatif, webrtc, `cli`.

use std::fmt;
use std::path::PathBuf;

use crate::error::shown_reason;

/// Something the user should know about a transfer that goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// Receiving without `--resume`: a fresh item empties the `NAME.part` an earlier transfer
    /// left.
    OverwritingPart {
        /// The `NAME.part`.
        part: PathBuf,
        /// Bytes it held.
        held_bytes: u64,
        /// The item has a name and a size, so `recv --resume` would have continued it.
        resumable: bool,
    },
    /// Receiving with `--resume`, an item that cannot be resumed: it is received from the
    /// start.
    NotResumed(NotResumed),
    /// Receiving with `--resume`: the `NAME.part` has other names too (a hard link), so it is
    /// neither read nor resumed, and a new file replaces that name.
    PartShared {
        /// The `NAME.part`.
        part: PathBuf,
        /// How many names it has.
        links: u64,
    },
    /// Receiving with `--resume`: the `NAME.part` is longer than the sender's file, so it is
    /// no prefix of it.
    PartTooLong {
        /// The `NAME.part`.
        part: PathBuf,
        /// Bytes it holds.
        part_bytes: u64,
        /// The sender's file.
        size_bytes: u64,
    },
    /// Receiving with `--resume`: the sender found that the prefix offered from this
    /// `NAME.part` differs from its file.
    PartMismatch {
        /// The `NAME.part`.
        part: PathBuf,
    },
    /// Sending: the receiver's partial copy of an item differs from the file, which is sent
    /// from the start.
    RemotePartMismatch {
        /// The item, as the sender labels it.
        item: String,
        /// Bytes the receiver offered.
        part_bytes: u64,
    },
}

/// Why `--resume` receives an item from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotResumed {
    /// A plain WebRTC peer: no names, no sizes.
    PlainPeer,
    /// The sender streams stdin: no name, no size.
    Stdin,
    /// The item has no known size (a pipe?).
    UnknownSize {
        /// The sender's name for it, as sent (shown escaped).
        name: String,
    },
    /// The sender did not offer to resume it (an older dcsend?).
    NotOffered {
        /// The sender's name for it, as sent (shown escaped).
        name: String,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::OverwritingPart { part, held_bytes, resumable } => {
                let hint = if *resumable { "; recv --resume would continue it" } else { "" };
                write!(
                    f,
                    "dcsend: overwriting {} ({held_bytes} bytes left by an earlier transfer{hint})",
                    part.display()
                )
            }
            Notice::NotResumed(why) => {
                write!(f, "dcsend: --resume: {why}; receiving it from the start")
            }
            Notice::PartShared { part, links } => write!(
                f,
                "dcsend: {} has {links} names (a hard link to another file?), so it is not read \
                 or resumed; receiving it from the start into a new file",
                part.display()
            ),
            Notice::PartTooLong { part, part_bytes, size_bytes } => write!(
                f,
                "dcsend: {} ({part_bytes} bytes) is longer than the sender's file ({size_bytes} \
                 bytes); receiving it from the start",
                part.display()
            ),
            Notice::PartMismatch { part } => write!(
                f,
                "dcsend: {} does not match the sender's file; receiving it from the start",
                part.display()
            ),
            Notice::RemotePartMismatch { item, part_bytes } => write!(
                f,
                "dcsend: the receiver's partial copy of {item} ({part_bytes} bytes) does not \
                 match this file; sending it from the start"
            ),
        }
    }
}

impl fmt::Display for NotResumed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotResumed::PlainPeer => f.write_str(
                "the peer is not dcsend (no names, no sizes), so its stream cannot be resumed",
            ),
            NotResumed::Stdin => {
                f.write_str("the sender streams stdin (no name, no size), which cannot be resumed")
            }
            NotResumed::UnknownSize { name } => {
                let name = shown_reason(name);
                write!(f, "{name} has no known size (a pipe?), so it cannot be resumed")
            }
            NotResumed::NotOffered { name } => {
                let name = shown_reason(name);
                write!(f, "the sender did not offer to resume {name} (an older dcsend?)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wording, once: the integration tests match parts of these lines.
    #[test]
    fn each_notice_is_one_line_that_says_what_and_why() {
        let part = PathBuf::from("out/f.part");
        let cases = [
            (
                Notice::OverwritingPart { part: part.clone(), held_bytes: 3, resumable: true },
                "dcsend: overwriting out/f.part (3 bytes left by an earlier transfer; recv \
                 --resume would continue it)",
            ),
            (
                Notice::OverwritingPart { part: part.clone(), held_bytes: 3, resumable: false },
                "dcsend: overwriting out/f.part (3 bytes left by an earlier transfer)",
            ),
            (
                Notice::NotResumed(NotResumed::UnknownSize { name: "f".into() }),
                "dcsend: --resume: f has no known size (a pipe?), so it cannot be resumed; \
                 receiving it from the start",
            ),
            (
                Notice::NotResumed(NotResumed::Stdin),
                "dcsend: --resume: the sender streams stdin (no name, no size), which cannot be \
                 resumed; receiving it from the start",
            ),
            (
                Notice::PartShared { part: part.clone(), links: 2 },
                "dcsend: out/f.part has 2 names (a hard link to another file?), so it is not \
                 read or resumed; receiving it from the start into a new file",
            ),
            (
                Notice::PartTooLong { part: part.clone(), part_bytes: 9, size_bytes: 6 },
                "dcsend: out/f.part (9 bytes) is longer than the sender's file (6 bytes); \
                 receiving it from the start",
            ),
            (
                Notice::PartMismatch { part },
                "dcsend: out/f.part does not match the sender's file; receiving it from the \
                 start",
            ),
            (
                Notice::RemotePartMismatch { item: "f".into(), part_bytes: 3 },
                "dcsend: the receiver's partial copy of f (3 bytes) does not match this file; \
                 sending it from the start",
            ),
        ];
        for (notice, want) in cases {
            let line = notice.to_string();
            assert_eq!(line, want);
            assert!(!line.contains('\n'), "{line}");
        }
    }

    /// With `-o FILE` the sender's name for the item is not checked (it is not used), but
    /// the `--resume` notices quote it: it must not reach the terminal as escape sequences,
    /// line breaks or bidi overrides.
    #[test]
    fn a_remote_name_is_shown_escaped() {
        let name = "a\u{1b}[2J\nb\u{202e}c".to_owned();
        for why in [
            NotResumed::UnknownSize { name: name.clone() },
            NotResumed::NotOffered { name: name.clone() },
        ] {
            let line = Notice::NotResumed(why).to_string();
            assert!(line.contains(r"a\u{1b}[2J\u{a}b\u{202e}c"), "{line}");
            assert!(!line.chars().any(|c| c.is_control() || c == '\u{202e}'), "{line:?}");
        }
    }
}
