//! Writes one received item on a blocking thread: to stdout, or to `NAME.part` which the
//! receiver renames once the digest matches. Hashes as it writes, off the async threads.
//!
//! For a resume, [`Partial::open`] hashes what an existing `NAME.part` holds (on a blocking
//! thread too) without changing it; once the sender has answered, [`Partial::keep`] appends
//! to it with the digest carried over, or [`Partial::discard`] starts a fresh one.
//!
//! # Never through a link
//!
//! The peer chooses `NAME`, and the output folder may hold anything: a symlink
//! `NAME.part -> ~/.bashrc` left by an archive, a FIFO, a hard link to a file elsewhere. So
//! every file operation goes through a [`Folder`]: the output folder opened once, with each
//! entry reached by `openat`/`fstatat`/`unlinkat`/`renameat` relative to that descriptor,
//! never by a path that the kernel resolves again.
//!
//! - A fresh `NAME.part` is never opened if it exists: a regular file there is unlinked (which
//!   also cuts a hard link to a file elsewhere, leaving that file as it was), anything else
//!   (a symlink, a FIFO, a folder, a device, a socket) is refused with what it is, and the
//!   file is created with `O_CREAT | O_EXCL | O_NOFOLLOW`, so nothing that appeared in
//!   between is followed either.
//! - A `NAME.part` to resume is opened with `O_NOFOLLOW | O_NONBLOCK` (a FIFO cannot block
//!   the open) and checked with `fstat` on the open descriptor (what is read is what was
//!   checked): a regular file with one link, else it is not read.
//! - The final `renameat(NAME.part, NAME)` replaces a link at `NAME` itself, never its target.
//!   It comes after the file's data is synced, and is synced itself before the ack (the
//!   receiver's batches, `recv/batch.rs`), so an acknowledged file survives a power cut and
//!   a power cut never leaves a `NAME` whose data did not reach the disk.
//!
//! Small files of known size are not streamed: [`Held`] keeps one in memory as it arrives,
//! and the batch writes it whole to its `NAME.part` once it is verified.
//!
//! Why a folder descriptor rather than paths with `O_NOFOLLOW`: the names are single
//! components today, so `O_NOFOLLOW | O_EXCL` on a path would guard the last component just
//! as well; but the descriptor also pins the folder itself (a folder renamed or swapped for a
//! link mid-run does not redirect later items), it is what `fsync` of the folder needs
//! anyway, and it is the base that nested relative paths (folders sent whole) will need, one
//! `openat(O_DIRECTORY | O_NOFOLLOW)` per component.
//!
//! Must not import: webrtc, indicatif, `cli`.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, futimens, mkdirat};
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::names;
use super::prefix::hash_prefix;
use super::wire::Digest;

/// The output folder, opened once. Every entry is reached relative to its descriptor and
/// without following a link at the entry; see the module docs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Folder {
    fd: Arc<OwnedFd>,
    path: PathBuf,
    /// The file system it is on (`st_dev`): a batch syncs each file system once.
    dev: u64,
}

/// What an entry of a [`Folder`] is, seen without following a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Nothing has that name.
    Missing,
    /// A regular file of `len` bytes.
    File {
        /// Its size.
        len: u64,
    },
    /// Anything else, described for a message: "a symbolic link", "a FIFO (named pipe)", ...
    Other(&'static str),
}

impl Folder {
    /// Opens the folder at `path` (a link there is followed: the user chose that path); an
    /// empty path is the current folder, and messages then show bare names.
    pub fn open(path: &Path) -> io::Result<Self> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let at = if path.as_os_str().is_empty() { Path::new(".") } else { path };
        let fd = openat(nix::fcntl::AT_FDCWD, at, flags, Mode::empty())
            .map_err(|e| named(at, e.into()))?;
        Self::of(fd, path.to_owned())
    }

    fn of(fd: OwnedFd, path: PathBuf) -> io::Result<Self> {
        let dev = fstat(&fd).map_err(|e| named(&path, e.into()))?.st_dev;
        Ok(Self { fd: Arc::new(fd), path, dev })
    }

    /// The file system it is on (`st_dev`).
    pub fn device(&self) -> u64 {
        self.dev
    }

    /// The folder's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in the folder, for messages.
    pub fn show(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    /// What `name` is, without following a link there (`fstatat(AT_SYMLINK_NOFOLLOW)`).
    pub fn entry(&self, name: &OsStr) -> io::Result<Entry> {
        match fstatat(&*self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(entry_of(&st)),
            Err(Errno::ENOENT) => Ok(Entry::Missing),
            Err(e) => Err(named(&self.show(name), e.into())),
        }
    }

    /// Creates `name` afresh for writing, never opening what is there: a regular file is
    /// unlinked first, anything else is refused (see the module docs). Blocking.
    pub fn create(&self, name: &OsStr) -> io::Result<File> {
        match self.entry(name)? {
            Entry::Missing => {}
            Entry::File { .. } => match unlinkat(&*self.fd, name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(named(&self.show(name), e.into())),
            },
            Entry::Other(what) => return Err(self.not_a_file(name, what)),
        }
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        // 0o666 minus the umask, as `File::create`.
        let mode = Mode::from_bits_truncate(0o666);
        match openat(&*self.fd, name, flags, mode) {
            Ok(fd) => Ok(File::from(fd)),
            Err(Errno::EEXIST) => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} appeared while dcsend was creating it; not touching it",
                    self.show(name).display()
                ),
            )),
            Err(e) => Err(named(&self.show(name), e.into())),
        }
    }

    /// Opens an existing `name` to read and append, for a resume. `None` when there is
    /// nothing there. Refuses anything but a regular file; a regular file with more than one
    /// link is returned as [`Existing::Shared`] and not opened for use. Blocking.
    pub fn open_existing(&self, name: &OsStr) -> io::Result<Existing> {
        match self.entry(name)? {
            Entry::Missing => return Ok(Existing::Missing),
            Entry::Other(what) => return Err(self.not_a_file(name, what)),
            Entry::File { .. } => {}
        }
        // O_NONBLOCK: should a FIFO replace the file after the check above, the open still
        // returns at once, and the fstat below refuses it.
        let flags = OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = match openat(&*self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(Existing::Missing),
            Err(Errno::ELOOP) => return Err(self.not_a_file(name, "a symbolic link")),
            Err(e) => return Err(named(&self.show(name), e.into())),
        };
        let st = fstat(&fd).map_err(|e| named(&self.show(name), e.into()))?;
        match entry_of(&st) {
            Entry::File { len } if st.st_nlink > 1 => {
                Ok(Existing::Shared { len, links: st.st_nlink as u64 })
            }
            Entry::File { .. } => {
                // A regular file ignores O_NONBLOCK; clear it all the same.
                nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()))
                    .map_err(|e| named(&self.show(name), e.into()))?;
                Ok(Existing::File(File::from(fd)))
            }
            Entry::Other(what) => Err(self.not_a_file(name, what)),
            Entry::Missing => unreachable!("fstat of an open file"),
        }
    }

    /// Opens the sub-folder `name`, first creating it (mode 0o777 minus the umask) when
    /// `create` and it is missing. Never follows a link at `name` (`O_DIRECTORY |
    /// O_NOFOLLOW`): a symbolic link, a file or anything else there is refused with what it is.
    /// This is how a tree's paths are walked, one component at a time. Blocking, quick.
    pub fn subfolder(&self, name: &OsStr, create: bool) -> io::Result<Folder> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut made = false;
        loop {
            match openat(&*self.fd, name, flags, Mode::empty()) {
                Ok(fd) => return Self::of(fd, self.show(name)),
                Err(Errno::ENOENT) if create && !made => {
                    match mkdirat(&*self.fd, name, Mode::from_bits_truncate(0o777)) {
                        Ok(()) | Err(Errno::EEXIST) => made = true,
                        Err(e) => return Err(named(&self.show(name), e.into())),
                    }
                }
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    let what = match self.entry(name)? {
                        Entry::Other(what) => what,
                        Entry::File { .. } => "a file",
                        Entry::Missing => "gone",
                    };
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!(
                            "{} is {what}, not a folder; dcsend never writes through it: \
                             remove it or receive into another folder",
                            self.show(name).display()
                        ),
                    ));
                }
                Err(e) => return Err(named(&self.show(name), e.into())),
            }
        }
    }

    /// Sets the folder's own modification time to `mtime_ns` (nanoseconds since the Unix
    /// epoch), through its descriptor. Blocking, quick.
    pub fn set_mtime(&self, mtime_ns: u64) -> io::Result<()> {
        let mtime = nix::sys::time::TimeSpec::from_duration(Duration::from_nanos(mtime_ns));
        futimens(&*self.fd, &nix::sys::time::TimeSpec::UTIME_OMIT, &mtime)
            .map_err(|e| named(&self.path, e.into()))
    }

    /// Makes everything written in this folder's file system so far durable: on Linux one
    /// `syncfs(2)` for a whole batch of received files (once for their data, once for their
    /// new names), the group commit that lets many small files go fast; elsewhere each file
    /// and rename was synced as it happened ([`BATCHED_SYNC`]), and this does nothing.
    /// Blocking.
    pub fn sync_all_written(&self) -> io::Result<()> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        nix::unistd::syncfs(&*self.fd).map_err(|e| named(&self.path, e.into()))?;
        Ok(())
    }

    /// Renames `from` to `to` within the folder (a link at `to` is replaced, not followed);
    /// the new name is made durable by [`Folder::sync_all_written`] before the receiver
    /// acknowledges the file (where syncs are not batched, the folder is synced here).
    /// Blocking.
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        renameat(&*self.fd, from, &*self.fd, to).map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!(
                    "renaming {} to {}: {e}",
                    self.show(from).display(),
                    self.show(to).display()
                ),
            )
        })?;
        if BATCHED_SYNC {
            return Ok(());
        }
        fsync(&*self.fd).map_err(|e| named(&self.path, e.into()))
    }

    fn not_a_file(&self, name: &OsStr, what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} is {what}, not a regular file; dcsend never writes through it: \
                 remove it or receive into another folder",
                self.show(name).display()
            ),
        )
    }
}

/// An existing file looked at for a resume.
#[derive(Debug)]
pub enum Existing {
    /// Nothing there.
    Missing,
    /// A regular file with one link, open to read and write.
    File(File),
    /// A regular file with other names too (a hard link): not ours to read or append to.
    Shared {
        /// Its size.
        len: u64,
        /// How many names it has.
        links: u64,
    },
}

fn entry_of(st: &FileStat) -> Entry {
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    match kind {
        SFlag::S_IFREG => Entry::File { len: st.st_size as u64 },
        SFlag::S_IFLNK => Entry::Other("a symbolic link"),
        SFlag::S_IFIFO => Entry::Other("a FIFO (named pipe)"),
        SFlag::S_IFDIR => Entry::Other("a folder"),
        SFlag::S_IFCHR => Entry::Other("a character device"),
        SFlag::S_IFBLK => Entry::Other("a block device"),
        SFlag::S_IFSOCK => Entry::Other("a socket"),
        _ => Entry::Other("not a regular file"),
    }
}

fn named(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// A `NAME.part` in the output folder.
#[derive(Debug, Clone)]
pub struct PartFile {
    /// The folder.
    pub folder: Folder,
    /// Its name in the folder.
    pub name: OsString,
}

impl PartFile {
    /// The `NAME.part` in `folder` that an item stored as `name` is written to until it is
    /// verified ([`names::part_name`]).
    pub fn of(folder: &Folder, name: &OsStr) -> Self {
        Self { folder: folder.clone(), name: names::part_name(name) }
    }

    /// Its path, for messages.
    pub fn show(&self) -> PathBuf {
        self.folder.show(&self.name)
    }
}

/// Where one item's bytes go.
#[derive(Debug, Clone)]
pub enum SinkTarget {
    /// Standard output.
    Stdout,
    /// A `.part` file, created afresh ([`Folder::create`]).
    Part(PartFile),
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

/// Whether received files are made durable in batches, by [`Folder::sync_all_written`]
/// (`syncfs`: one before a batch's renames, one after) before their acks, rather than by two
/// `fsync`s each (the file, then its folder after the rename). Measured on ext4 (virtio
/// disk): two `fsync`s cost about 6 ms, which capped 4 KiB files at about 300 per second.
pub const BATCHED_SYNC: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// What a stored file keeps of the sender's (tree extension): set on the `.part` before it is
/// synced and renamed. Ignored for stdout and discard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileMeta {
    /// Executable: `x` is added wherever the file is readable (what `chmod +x` does under
    /// the umask).
    pub exec: bool,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: Option<u64>,
}

impl FileMeta {
    /// Applies it to the open file.
    fn apply(&self, f: &File) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        if self.exec {
            let mode = f.metadata()?.permissions().mode();
            f.set_permissions(std::fs::Permissions::from_mode(mode | ((mode & 0o444) >> 2)))?;
        }
        if let Some(ns) = self.mtime_ns {
            let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(ns);
            f.set_times(std::fs::FileTimes::new().set_modified(at))?;
        }
        Ok(())
    }
}

/// What the writer thread is given: the next bytes, then (last) what the file keeps.
#[derive(Debug)]
enum Chunk {
    Data(Bytes),
    Meta(FileMeta),
}

/// A running writer. Feed it with [`Sink::write`], end it with [`Sink::finish`].
#[derive(Debug)]
pub struct Sink {
    tx: mpsc::Sender<Chunk>,
    task: tokio::task::JoinHandle<io::Result<Written>>,
}

/// Chunks that may wait for the disk; past this the channel reader waits too, and SCTP's
/// receive window pushes back on the sender.
const SINK_QUEUE: usize = 16;

/// What the writer thread writes to.
enum Output {
    Stdout(io::Stdout),
    Discard,
    File(File),
}

impl Sink {
    /// Opens the target and starts the writer thread. Blocking for a `.part` (a create in a
    /// folder), which is quick; the file is never opened if it exists (see the module docs).
    pub fn open(target: SinkTarget) -> io::Result<Self> {
        let out = match target {
            SinkTarget::Stdout => Output::Stdout(io::stdout()),
            SinkTarget::Discard => Output::Discard,
            SinkTarget::Part(part) => Output::File(part.folder.create(&part.name)?),
        };
        Ok(Self::start(out, 0, Digest::new()))
    }

    /// Starts the writer thread on `out`, counting and hashing on from `bytes` and `digest`
    /// (a kept prefix).
    fn start(mut out: Output, mut bytes: u64, mut digest: Digest) -> Self {
        let (tx, mut rx) = mpsc::channel::<Chunk>(SINK_QUEUE);
        let task = tokio::task::spawn_blocking(move || {
            let mut meta = FileMeta::default();
            while let Some(chunk) = rx.blocking_recv() {
                let chunk = match chunk {
                    Chunk::Data(chunk) => chunk,
                    Chunk::Meta(m) => {
                        meta = m;
                        continue;
                    }
                };
                match &mut out {
                    Output::Stdout(o) => o.write_all(&chunk)?,
                    Output::Discard => {}
                    Output::File(f) => f.write_all(&chunk)?,
                }
                digest.update(&chunk);
                bytes += chunk.len() as u64;
            }
            match &mut out {
                Output::Stdout(o) => o.flush()?,
                Output::Discard => {}
                // The ack promises the bytes are on disk, not only in the page cache: with
                // batches, `Folder::sync_all_written` makes them so before the rename.
                Output::File(f) => {
                    meta.apply(f)?;
                    if !BATCHED_SYNC {
                        f.sync_all()?
                    }
                }
            }
            Ok(Written { bytes, sha256: digest.finish() })
        });
        Self { tx, task }
    }

    /// Queues a chunk; waits while the writer is behind.
    pub async fn write(&self, chunk: Bytes) -> io::Result<()> {
        if self.tx.send(Chunk::Data(chunk)).await.is_ok() {
            return Ok(());
        }
        // The writer stopped: its error says why.
        Err(io::Error::other("the writer stopped"))
    }

    /// Flushes and closes; returns the count and digest, or the first write error.
    pub async fn finish(self) -> io::Result<Written> {
        self.finish_with(FileMeta::default()).await
    }

    /// [`Sink::finish`], first giving a file what it keeps of the sender's (its executable
    /// bit, its modification time).
    pub async fn finish_with(self, meta: FileMeta) -> io::Result<Written> {
        if meta != FileMeta::default() {
            // Fails only when the writer stopped: its error is what the task returns.
            self.tx.send(Chunk::Meta(meta)).await.ok();
        }
        drop(self.tx);
        self.task.await.map_err(io::Error::other)?
    }
}

/// A small file of known size ([`Held::MAX_BYTES`] at most), kept in memory as it arrives and
/// hashed as it comes; written whole, once verified, when its batch is made durable
/// ([`HeldFile::write`]). Many small files then cost no writer thread each, no hand-off per
/// message, and no open file while they travel.
#[derive(Debug)]
pub struct Held {
    part: PartFile,
    chunks: Vec<Bytes>,
    bytes: u64,
    digest: Digest,
}

impl Held {
    /// Files of at most this many bytes are held; larger ones stream through a [`Sink`]. With
    /// the batch's bound on the bytes waiting for a sync (1 MiB), this bounds the memory held.
    pub const MAX_BYTES: u64 = 64 << 10;

    /// Starts holding a file for `part`. Refuses now, with what it is, anything at `part` but
    /// a regular file (which is replaced when the file is written): the check [`Folder::create`]
    /// makes again, without a race, when it writes. Blocking, quick (one `fstatat`).
    pub fn new(part: PartFile) -> io::Result<Self> {
        if let Entry::Other(what) = part.folder.entry(&part.name)? {
            return Err(part.folder.not_a_file(&part.name, what));
        }
        Ok(Self { part, chunks: Vec::new(), bytes: 0, digest: Digest::new() })
    }

    /// Takes the next bytes.
    pub fn push(&mut self, chunk: Bytes) {
        self.digest.update(&chunk);
        self.bytes += chunk.len() as u64;
        self.chunks.push(chunk);
    }

    /// The end of the file: what it holds, and the file to write with `meta` once verified.
    pub fn finish(self, meta: FileMeta) -> (Written, HeldFile) {
        let written = Written { bytes: self.bytes, sha256: self.digest.finish() };
        (written, HeldFile { part: self.part, chunks: self.chunks, meta })
    }
}

/// A verified [`Held`] file, to write to its `NAME.part`.
#[derive(Debug)]
pub struct HeldFile {
    part: PartFile,
    chunks: Vec<Bytes>,
    meta: FileMeta,
}

impl HeldFile {
    /// Writes the `NAME.part`, created afresh ([`Folder::create`]: never through a link), with
    /// the file's mode and time. Where syncs are not batched, it is synced too. Blocking.
    pub fn write(self) -> io::Result<()> {
        let mut f = self.part.folder.create(&self.part.name)?;
        let named = |e: io::Error| named(&self.part.show(), e);
        for chunk in &self.chunks {
            f.write_all(chunk).map_err(named)?;
        }
        self.meta.apply(&f).map_err(named)?;
        if !BATCHED_SYNC {
            f.sync_all().map_err(named)?;
        }
        Ok(())
    }
}

/// An existing `NAME.part` (or none), hashed and left as it was until the sender answers.
#[derive(Debug)]
pub struct Partial {
    part: PartFile,
    /// The open file, positioned after the prefix; `None` when there was none to offer.
    file: Option<File>,
    /// Bytes on disk.
    on_disk: u64,
    /// The prefix on offer: `on_disk`, or 0 when that is over the item's size.
    usable: u64,
    /// Digest of the `usable` bytes.
    digest: Digest,
    /// The file has this many names (a hard link): it was not read.
    links: Option<u64>,
}

impl Partial {
    /// Looks at `part` for the start of an item of `size` bytes: opens it without changing
    /// it and hashes it, unless it is longer than `size` or has other names too (a hard
    /// link); then it offers nothing. A missing file offers nothing. Refuses anything but a
    /// regular file (a symlink, a folder, a FIFO), without opening it for use.
    /// Blocking: run it with `spawn_blocking`. Stops with `Interrupted` when `cancel` fires.
    pub fn open(part: &PartFile, size: u64, cancel: &CancellationToken) -> io::Result<Self> {
        let named = |e| named(&part.show(), e);
        let nothing = |on_disk, links| Partial {
            part: part.clone(),
            file: None,
            on_disk,
            usable: 0,
            digest: Digest::new(),
            links,
        };
        let mut file = match part.folder.open_existing(&part.name)? {
            Existing::Missing => return Ok(nothing(0, None)),
            Existing::Shared { len, links } => return Ok(nothing(len, Some(links))),
            Existing::File(file) => file,
        };
        let len = file.metadata().map_err(named)?.len();
        if len > size {
            return Ok(nothing(len, None));
        }
        // One byte past `size` is enough to see it grew while we read it: not ours to resume.
        let mut digest = Digest::new();
        let Some(usable) =
            hash_prefix(&mut file, size.saturating_add(1), &mut digest, cancel).map_err(named)?
        else {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
        };
        if usable > size {
            return Ok(nothing(usable, None));
        }
        Ok(Partial {
            part: part.clone(),
            file: Some(file),
            on_disk: usable,
            usable,
            digest,
            links: None,
        })
    }

    /// Bytes the file held (0 when there was none).
    pub fn on_disk(&self) -> u64 {
        self.on_disk
    }

    /// How many names the file has, when it has more than one (a hard link): then it was
    /// not read, offers nothing, and a fresh file replaces this name.
    pub fn links(&self) -> Option<u64> {
        self.links
    }

    /// The prefix to offer in `have`: its length and hex SHA-256.
    pub fn offer(&self) -> (u64, String) {
        (self.usable, self.digest.peek())
    }

    /// The sender confirmed the prefix: append after it, counting and hashing on from it.
    pub fn keep(self) -> io::Result<Sink> {
        let Some(mut file) = self.file else {
            // Nothing to keep: the same as starting over.
            return Sink::open(SinkTarget::Part(self.part));
        };
        file.seek(SeekFrom::Start(self.usable))?;
        Ok(Sink::start(Output::File(file), self.usable, self.digest))
    }

    /// The sender starts over: a fresh file replaces this one.
    pub fn discard(self) -> io::Result<Sink> {
        drop(self.file);
        Sink::open(SinkTarget::Part(self.part))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn part_in(dir: &Path, name: &str) -> PartFile {
        PartFile { folder: Folder::open(dir).unwrap(), name: name.into() }
    }

    #[test]
    fn a_missing_part_offers_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let part = part_in(dir.path(), "x.part");
        let p = Partial::open(&part, 10, &CancellationToken::new()).unwrap();
        assert_eq!(p.offer(), (0, Digest::of(b"")));
        assert_eq!(p.on_disk(), 0);
    }

    #[test]
    fn a_part_longer_than_the_item_offers_nothing_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.part");
        std::fs::write(&path, b"0123456789").unwrap();
        let p =
            Partial::open(&part_in(dir.path(), "x.part"), 9, &CancellationToken::new()).unwrap();
        assert_eq!(p.offer(), (0, Digest::of(b"")));
        assert_eq!(p.on_disk(), 10);
        drop(p);
        assert_eq!(std::fs::read(&path).unwrap(), b"0123456789");
    }

    /// A folder, a symlink (to a file or dangling) and a FIFO are refused by name of what
    /// they are, for a resume and for a fresh file; the link's target is never touched.
    #[test]
    fn not_a_regular_file_is_refused_and_never_opened() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, b"precious").unwrap();
        std::fs::create_dir(dir.path().join("d.part")).unwrap();
        symlink(&target, dir.path().join("l.part")).unwrap();
        symlink(dir.path().join("nowhere"), dir.path().join("dangling.part")).unwrap();
        nix::unistd::mkfifo(&dir.path().join("f.part"), Mode::from_bits_truncate(0o600)).unwrap();
        let cases = [
            ("d.part", "is a folder"),
            ("l.part", "is a symbolic link"),
            ("dangling.part", "is a symbolic link"),
            ("f.part", "is a FIFO"),
        ];
        for (name, want) in cases {
            let part = part_in(dir.path(), name);
            let err = Partial::open(&part, 9, &CancellationToken::new()).unwrap_err();
            assert!(err.to_string().contains(want), "resume {name}: {err}");
            let err = Held::new(part.clone()).unwrap_err();
            assert!(err.to_string().contains(want), "held {name}: {err}");
            let err = Sink::open(SinkTarget::Part(part)).unwrap_err();
            assert!(err.to_string().contains(want), "fresh {name}: {err}");
            assert!(err.to_string().contains("remove it"), "says what to do: {err}");
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        assert!(!dir.path().join("nowhere").exists(), "a dangling link's target was created");
    }

    #[tokio::test]
    async fn a_fresh_part_replaces_a_regular_file_and_cuts_a_hard_link() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, b"precious").unwrap();
        std::fs::hard_link(&outside, dir.path().join("x.part")).unwrap();
        let sink = Sink::open(SinkTarget::Part(part_in(dir.path(), "x.part"))).unwrap();
        sink.write(Bytes::from_static(b"new")).await.unwrap();
        sink.finish().await.unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"precious");
        assert_eq!(std::fs::read(dir.path().join("x.part")).unwrap(), b"new");
    }

    /// A held file is hashed as it comes and written whole, with its mode and time, through
    /// [`Folder::create`]: a hard-linked `NAME.part` is cut, not written through.
    #[test]
    fn a_held_file_is_written_whole_with_its_meta_and_cuts_a_hard_link() {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, b"precious").unwrap();
        std::fs::hard_link(&outside, dir.path().join("x.part")).unwrap();
        let mut held = Held::new(part_in(dir.path(), "x.part")).unwrap();
        held.push(Bytes::from_static(b"ab"));
        held.push(Bytes::from_static(b"c"));
        let meta = FileMeta { exec: true, mtime_ns: Some(1_500_000_000_123_456_789) };
        let (written, file) = held.finish(meta);
        assert_eq!(written, Written { bytes: 3, sha256: Digest::of(b"abc") });
        assert!(std::fs::read(&outside).unwrap() == b"precious", "nothing before the write");
        file.write().unwrap();
        let path = dir.path().join("x.part");
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        let m = std::fs::metadata(&path).unwrap();
        assert_ne!(m.permissions().mode() & 0o100, 0, "executable");
        assert_eq!((m.mtime(), m.mtime_nsec()), (1_500_000_000, 123_456_789));
        assert_eq!(std::fs::read(&outside).unwrap(), b"precious");
    }

    #[tokio::test]
    async fn a_hard_linked_part_is_not_resumed_and_its_other_name_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, b"ab").unwrap();
        std::fs::hard_link(&outside, dir.path().join("x.part")).unwrap();
        let p =
            Partial::open(&part_in(dir.path(), "x.part"), 3, &CancellationToken::new()).unwrap();
        assert_eq!((p.offer(), p.links()), ((0, Digest::of(b"")), Some(2)));
        let sink = p.discard().unwrap();
        sink.write(Bytes::from_static(b"abc")).await.unwrap();
        sink.finish().await.unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"ab");
        assert_eq!(std::fs::read(dir.path().join("x.part")).unwrap(), b"abc");
    }

    #[test]
    fn rename_replaces_a_link_at_the_name_not_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"precious").unwrap();
        symlink(&target, dir.path().join("x")).unwrap();
        std::fs::write(dir.path().join("x.part"), b"new").unwrap();
        let folder = Folder::open(dir.path()).unwrap();
        folder.rename("x.part".as_ref(), "x".as_ref()).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        let meta = std::fs::symlink_metadata(dir.path().join("x")).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), b"new");
    }

    #[test]
    fn the_current_folder_shows_bare_names() {
        let folder = Folder::open(Path::new("")).unwrap();
        assert_eq!(folder.show("x.part".as_ref()), Path::new("x.part"));
        assert_eq!(
            Folder::open(Path::new("no-such-folder-of-dcsend")).map(|_| ()).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn keep_appends_and_the_digest_covers_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.part");
        std::fs::write(&path, b"ab").unwrap();
        let p =
            Partial::open(&part_in(dir.path(), "x.part"), 3, &CancellationToken::new()).unwrap();
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
        let sink = Partial::open(&part_in(dir.path(), "x.part"), 3, &CancellationToken::new())
            .unwrap()
            .discard()
            .unwrap();
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
        let err = Partial::open(&part_in(dir.path(), "x.part"), 3, &cancel).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Interrupted);
    }
}
