//! Where a received item goes: stdout, nowhere, or a folder, where it is written to
//! `NAME.part` ([`PartFile::of`]) and renamed to `NAME` once verified. The refusals live here:
//! a bad remote name, an existing `NAME` without `--force`, a folder at `NAME`, a name or
//! `NAME.part` this run already stored, and data without a name where only named items may go
//! (stdout is a terminal).
//!
//! Must not import: webrtc, indicatif, `cli`.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::Destination;
use super::batch::Rename;
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
    /// A resume found a regular file of the item's size at `name`: it is offered as the whole
    /// item, and kept as it is (no `.part`, no rename) if the sender's file hashes the same.
    pub whole: bool,
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
    /// Paths this run has stored: neither is overwritten later in the run, by an item of the
    /// same name or by another item's `NAME.part`.
    stored: HashSet<PathBuf>,
    /// Folders of a tree (tree extension) with the modification time to give them once every
    /// item is in (writing into a folder changes its time): relative components.
    folders: Vec<(Vec<String>, u64)>,
    /// The folder the last item went to, by its components, kept open.
    last_folder: Option<(Vec<String>, Folder)>,
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
        Ok(Self { output, force, stored: HashSet::new(), folders: Vec::new(), last_folder: None })
    }

    /// `--force`: an existing file may be replaced.
    pub fn force(&self) -> bool {
        self.force
    }

    /// Whether the output can hold a tree (tree extension): a folder, or nowhere (`--sink`).
    pub fn takes_trees(&self) -> bool {
        matches!(self.output, Output::Dir { .. } | Output::Stream(SinkTarget::Discard))
    }

    /// Why the output cannot hold a tree, for the refusal.
    pub fn why_no_tree(&self) -> &'static str {
        match self.output {
            Output::File(..) => "-o names one file, which cannot hold a folder: use -o DIR/",
            _ => "stdout cannot hold a folder: receive it with `dcsend recv -o DIR/`",
        }
    }

    /// The folder `path` of a tree (a `dir` message): checks every component, creates what is
    /// missing through [`Folder::subfolder`] (never following a link), and remembers `mtime`
    /// for [`Placer::finish_folders`]. Nothing for `--sink`.
    pub fn make_dir(&mut self, path: &str, mtime: Option<u64>) -> Result<(), TransferError> {
        let Output::Dir { folder: base, .. } = &self.output else {
            if self.takes_trees() {
                return Ok(());
            }
            return Err(TransferError::Refused(format!(
                "the sender sends a folder, and {}",
                self.why_no_tree()
            )));
        };
        let parts = names::sanitize_path(path).map_err(refused_name)?;
        walk(base, &parts)?;
        if let Some(mtime) = mtime {
            self.folders.push((parts, mtime));
        }
        Ok(())
    }

    /// Gives the folders of a tree their modification times, deepest first (setting a
    /// folder's time does not change its parent's). Blocking: once, at the end of a run,
    /// after the last files are in place. Returns whether it set any (to be synced).
    pub fn finish_folders(&mut self) -> Result<bool, TransferError> {
        let Output::Dir { folder: base, .. } = &self.output else { return Ok(false) };
        let set_any = !self.folders.is_empty();
        let mut folders = std::mem::take(&mut self.folders);
        folders.sort_by_key(|(parts, _)| std::cmp::Reverse(parts.len()));
        for (parts, mtime) in folders {
            let mut folder = base.clone();
            for part in &parts {
                folder = folder.subfolder(OsStr::new(part), false).map_err(refused)?;
            }
            folder.set_mtime(mtime).map_err(refused)?;
        }
        Ok(set_any)
    }

    /// Where an item named `name` (by the sender; `None`: a nameless stream) goes; see the
    /// module docs for what is refused. Touches nothing but a look at the folder's entry.
    ///
    /// `resuming`: the item's size, for a resume; a regular file of that size at the final
    /// name is then not refused but offered whole ([`Placed::whole`]).
    pub fn place(
        &mut self,
        name: Option<&str>,
        resuming: Option<u64>,
    ) -> Result<Placement, TransferError> {
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
            Output::File(folder, file) => (folder.clone(), file.clone()),
            Output::Dir { folder: base, named_only } => match name {
                // A path of the tree extension: its folders are made on the way.
                Some(n) => {
                    let mut parts = names::sanitize_path(n).map_err(refused_name)?;
                    let file = parts.pop().expect("a checked path has a component");
                    let folder = match &self.last_folder {
                        // Files of one folder follow each other: it is walked once.
                        Some((at, folder)) if *at == parts => folder.clone(),
                        _ => {
                            let folder = walk(base, &parts)?;
                            self.last_folder = Some((parts, folder.clone()));
                            folder
                        }
                    };
                    (folder, OsString::from(file))
                }
                None if *named_only => {
                    return Err(TransferError::Refused(NAMELESS_ON_A_TERMINAL.into()));
                }
                None => (base.clone(), OsString::from(UNNAMED)),
            },
        };
        let folder = &folder;
        let mut placed = Placed { part: PartFile::of(folder, &file), name: file, whole: false };
        let path = placed.path();
        if self.stored.contains(&path) {
            return Err(TransferError::Refused(format!(
                "{} was already received in this run: the sender sends two files of that name; \
                 not overwriting it",
                path.display()
            )));
        }
        if self.stored.contains(&placed.part.show()) {
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
            Entry::File { len } if resuming == Some(len) => placed.whole = true,
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

    /// Makes everything written in the output folder's file system so far durable (see
    /// [`Folder::sync_all_written`]), off the async threads: the folders' times that
    /// [`Placer::finish_folders`] set. Nothing to do for stdout or discard.
    pub async fn sync(&self) -> Result<(), TransferError> {
        let folder = match &self.output {
            Output::Stream(_) => return Ok(()),
            Output::Dir { folder, .. } | Output::File(folder, _) => folder.clone(),
        };
        tokio::task::spawn_blocking(move || folder.sync_all_written())
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(TransferError::Output)
    }

    /// Records the verified `placed` as stored: from then on this run never overwrites its
    /// `NAME`. Returns the rename of its `NAME.part` to `NAME`, which the receiver's batch
    /// does once the file's data is on disk (`None`: a resume found it whole in place).
    pub fn commit(&mut self, placed: &Placed) -> Option<Rename> {
        self.stored.insert(placed.path());
        (!placed.whole).then(|| Rename {
            folder: placed.part.folder.clone(),
            from: placed.part.name.clone(),
            to: placed.name.clone(),
        })
    }
}

/// The folder at `parts` under `base`, created component by component where missing, never
/// through a link ([`Folder::subfolder`]). Blocking, quick.
fn walk(base: &Folder, parts: &[String]) -> Result<Folder, TransferError> {
    let mut folder = base.clone();
    for part in parts {
        folder = folder.subfolder(OsStr::new(part), true).map_err(refused)?;
    }
    Ok(folder)
}

fn refused(e: std::io::Error) -> TransferError {
    TransferError::Refused(e.to_string())
}

fn refused_name(e: names::NameError) -> TransferError {
    TransferError::Protocol(format!("refused file name: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where only named items may go (stdout is a terminal), nameless data is refused with
    /// what to run; a folder given with `-o DIR/` stores it as `stream`.
    #[test]
    fn nameless_data_is_refused_only_where_names_are_required() {
        let dir = tempfile::tempdir().unwrap();
        let mut named_only =
            Placer::open(&Destination::NamedOnly(dir.path().into()), false).unwrap();
        let err = named_only.place(None, None).unwrap_err();
        assert!(matches!(err, TransferError::Refused(_)), "{err:?}");
        assert!(err.to_string().contains("`dcsend recv -o FILE`"), "{err}");
        let placed = named_only.place(Some("photo.jpg"), None).unwrap().placed.unwrap();
        assert_eq!(placed.path(), dir.path().join("photo.jpg"));

        let mut dir_output = Placer::open(&Destination::Dir(dir.path().into()), false).unwrap();
        let placed = dir_output.place(None, None).unwrap().placed.unwrap();
        assert_eq!(placed.name, UNNAMED);
    }
}
