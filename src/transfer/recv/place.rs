//! Where a received item goes: stdout, nowhere, or a folder, where it is written to
//! `NAME.part` ([`PartFile::of`]) and renamed to `NAME` once verified. The refusals live here:
//! a bad remote name, an existing `NAME` without `--force`, a folder at `NAME`, a name or
//! `NAME.part` this run already stored, and data without a name where only named items may go
//! (stdout is a terminal).
//!
//! Must not import: webrtc, indicatif, `cli`.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::Destination;
use crate::error::TransferError;
use crate::transfer::names;
use crate::transfer::sink::{Entry, Folder, PartFile, SinkTarget};

/// Name used in a folder for a stream that came without one (stdin, a plain peer).
const UNNAMED: &str = "stream";

/// Why nameless data is refused with [`Destination::NamedOnly`]: stdout is a terminal, so
/// there is no other place to put it. Says what to run instead (curl's "Binary output can
/// mess up your terminal" refusal).
pub(super) const NAMELESS_ON_A_TERMINAL: &str = "the sender's data has no name (stdin, --raw or a \
plain WebRTC peer) and stdout is a terminal, so there is nowhere to save it: run `dcsend recv \
-o FILE`, or pipe the output (`dcsend recv > FILE`, `dcsend recv | tar x`); `-o -` writes it to \
the terminal anyway";

/// Where one item goes.
#[derive(Debug, Clone)]
pub(super) struct Placement {
    /// Where the payload is written first.
    pub target: SinkTarget,
    /// In a folder: the `.part` and the final name (`None`: stdout or discard).
    pub placed: Option<Placed>,
}

/// An item stored in a folder: written to `part`, renamed to `name` once verified.
#[derive(Debug, Clone)]
pub(super) struct Placed {
    /// The `NAME.part` it is written to.
    pub part: PartFile,
    /// The final name in the folder.
    pub name: OsString,
}

impl Placed {
    /// The final path, for messages and the outcome.
    pub fn path(&self) -> PathBuf {
        self.part.folder.show(&self.name)
    }
}

/// What the receiver writes to, opened once before the first item.
enum Output {
    /// Stdout or discard: no names, nothing to refuse.
    Stream(SinkTarget),
    /// `-o DIR/`: each item under its (checked) name; `named_only`: data without a name is
    /// refused instead of being stored as [`UNNAMED`].
    Dir {
        /// The folder.
        folder: Folder,
        /// See [`Destination::NamedOnly`].
        named_only: bool,
    },
    /// `-o FILE`: exactly one item, under this name in the folder.
    File(Folder, OsString),
}

/// Places the items of one run.
pub(super) struct Placer {
    output: Output,
    /// `--force`: replace an existing `NAME` (never one stored in this run).
    force: bool,
    /// Names this run has stored in the folder: neither is overwritten later in the run,
    /// by an item of the same name or by another item's `NAME.part`.
    stored: HashSet<OsString>,
}

impl Placer {
    /// Opens the output folder (for `-o DIR/`, or the folder of `-o FILE`). Blocking, quick.
    pub fn open(dest: &Destination, force: bool) -> Result<Self, TransferError> {
        let refused = |e: std::io::Error| TransferError::Refused(e.to_string());
        let output = match dest {
            Destination::Stdout => Output::Stream(SinkTarget::Stdout),
            Destination::Discard => Output::Stream(SinkTarget::Discard),
            Destination::Dir(dir) => {
                Output::Dir { folder: Folder::open(dir).map_err(refused)?, named_only: false }
            }
            Destination::NamedOnly(dir) => {
                Output::Dir { folder: Folder::open(dir).map_err(refused)?, named_only: true }
            }
            Destination::File(path) => {
                let Some(file) = path.file_name() else {
                    return Err(TransferError::Refused(format!(
                        "-o {} does not name a file",
                        path.display()
                    )));
                };
                // `-o copy.bin`: the parent is "" (the current folder), and messages say
                // `copy.bin`.
                let dir = path.parent().unwrap_or(Path::new(""));
                Output::File(Folder::open(dir).map_err(refused)?, file.to_owned())
            }
        };
        Ok(Self { output, force, stored: HashSet::new() })
    }

    /// Where an item named `name` (by the sender; `None`: a nameless stream) goes; see the
    /// module docs for what is refused. Touches nothing but a look at the folder's entry.
    pub fn place(&self, name: Option<&str>) -> Result<Placement, TransferError> {
        let (folder, file) = match &self.output {
            Output::Stream(target) => {
                return Ok(Placement { target: target.clone(), placed: None });
            }
            // Only `-o FILE` stores a name it was not sent, so a second item meets it here.
            Output::File(..) if !self.stored.is_empty() => {
                return Err(TransferError::Refused(
                    "the sender sends several files but -o names one file; use -o DIR/".into(),
                ));
            }
            Output::File(folder, file) => (folder, file.clone()),
            Output::Dir { folder, named_only } => {
                let name = match name {
                    Some(n) => names::sanitize(n)
                        .map_err(|e| TransferError::Protocol(format!("refused file name: {e}")))?,
                    None if *named_only => {
                        return Err(TransferError::Refused(NAMELESS_ON_A_TERMINAL.into()));
                    }
                    None => UNNAMED.to_owned(),
                };
                (folder, OsString::from(name))
            }
        };
        let placed = Placed { part: PartFile::of(folder, &file), name: file };
        let path = placed.path();
        if self.stored.contains(&placed.name) {
            return Err(TransferError::Refused(format!(
                "{} was already received in this run: the sender sends two files of that name; \
                 not overwriting it",
                path.display()
            )));
        }
        if self.stored.contains(&placed.part.name) {
            return Err(TransferError::Refused(format!(
                "{}: its temporary file {} is a file received earlier in this run; not \
                 overwriting it (send these two files in two runs, or to two folders)",
                path.display(),
                placed.part.show().display()
            )));
        }
        let entry =
            folder.entry(&placed.name).map_err(|e| TransferError::Refused(e.to_string()))?;
        match entry {
            Entry::Missing => {}
            Entry::Other(what @ "a folder") => {
                return Err(TransferError::Refused(format!(
                    "{} exists and is {what}; dcsend does not replace folders",
                    path.display()
                )));
            }
            _ if self.force => {}
            Entry::File { .. } => {
                return Err(TransferError::Refused(format!(
                    "{} exists (use --force to overwrite)",
                    path.display()
                )));
            }
            Entry::Other(what) => {
                return Err(TransferError::Refused(format!(
                    "{} exists and is {what} (use --force to replace it; its target is never \
                     written)",
                    path.display()
                )));
            }
        }
        Ok(Placement { target: SinkTarget::Part(placed.part.clone()), placed: Some(placed) })
    }

    /// Renames the verified `NAME.part` to `NAME` and syncs the folder, off the async
    /// threads; from then on this run never overwrites `NAME`.
    pub async fn commit(&mut self, placed: &Placed) -> Result<(), TransferError> {
        let (folder, from, to) =
            (placed.part.folder.clone(), placed.part.name.clone(), placed.name.clone());
        tokio::task::spawn_blocking(move || folder.rename(&from, &to))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|e| TransferError::Refused(e.to_string()))?;
        self.stored.insert(placed.name.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where only named items may go (stdout is a terminal), nameless data is refused with
    /// what to run; a folder given with `-o DIR/` stores it as `stream`.
    #[test]
    fn nameless_data_is_refused_only_where_names_are_required() {
        let dir = tempfile::tempdir().unwrap();
        let named_only = Placer::open(&Destination::NamedOnly(dir.path().into()), false).unwrap();
        let err = named_only.place(None).unwrap_err();
        assert!(matches!(err, TransferError::Refused(_)), "{err:?}");
        assert!(err.to_string().contains("`dcsend recv -o FILE`"), "{err}");
        let placed = named_only.place(Some("photo.jpg")).unwrap().placed.unwrap();
        assert_eq!(placed.path(), dir.path().join("photo.jpg"));

        let dir_output = Placer::open(&Destination::Dir(dir.path().into()), false).unwrap();
        let placed = dir_output.place(None).unwrap().placed.unwrap();
        assert_eq!(placed.name, UNNAMED);
    }
}
