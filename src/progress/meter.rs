//! Live counters shared between the transfer tasks (writers) and the progress ticker
//! (reader). Lock-free: the hot path only does relaxed atomic adds. Rare notices for the
//! user (typed facts, [`Notice`]; a mutex, off the hot path) travel the same way, so the ticker
//! can word them and print them above the live view.
//!
//! Must not import: indicatif, webrtc, `cli`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::notice::Notice;

const UNKNOWN: u64 = u64::MAX;

/// Byte counters of one transfer.
#[derive(Debug)]
pub struct Meter {
    bytes: AtomicU64,
    total: AtomicU64,
    buffered: AtomicU64,
    peak_buffered: AtomicU64,
    threshold: AtomicU64,
    resumed: AtomicU64,
    notices: Mutex<Vec<Notice>>,
    label: Mutex<Option<String>>,
    /// Files of the transfer (announced by the sender), [`UNKNOWN`] until known.
    files_total: AtomicU64,
    /// Files delivered and verified.
    files_done: AtomicU64,
    /// The file being transferred, as labelled (a path in a tree).
    current: Mutex<Option<String>>,
}

impl Meter {
    /// A meter for a transfer of `total` bytes (`None`: unknown, e.g. stdin).
    pub fn new(total: Option<u64>) -> Self {
        Self {
            bytes: AtomicU64::new(0),
            total: AtomicU64::new(total.unwrap_or(UNKNOWN)),
            buffered: AtomicU64::new(0),
            peak_buffered: AtomicU64::new(0),
            threshold: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
            notices: Mutex::new(Vec::new()),
            label: Mutex::new(None),
            files_total: AtomicU64::new(UNKNOWN),
            files_done: AtomicU64::new(0),
            current: Mutex::new(None),
        }
    }

    /// Names the item in progress for the live view's label (a file name as it came, even
    /// from a peer: the view escapes it). Off the hot path: once per item.
    pub fn set_label(&self, label: String) {
        *self.label.lock().unwrap_or_else(|e| e.into_inner()) = Some(label);
    }

    /// Takes the label set since the last call, if any.
    pub fn take_label(&self) -> Option<String> {
        self.label.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Counts `n` bytes that a resume kept and that need not travel: they leave the total.
    pub fn add_resumed(&self, n: u64) {
        self.resumed.fetch_add(n, Relaxed);
        let _ = self
            .total
            .fetch_update(Relaxed, Relaxed, |t| (t != UNKNOWN).then(|| t.saturating_sub(n)));
    }

    /// Bytes kept by resumes so far.
    pub fn resumed(&self) -> u64 {
        self.resumed.load(Relaxed)
    }

    /// Queues a notice for the user (worded by [`Notice`]'s `Display`, printed on stderr
    /// above the live view).
    pub fn notice(&self, notice: Notice) {
        self.notices.lock().unwrap_or_else(|e| e.into_inner()).push(notice);
    }

    /// Takes the queued notices, oldest first.
    pub fn take_notices(&self) -> Vec<Notice> {
        std::mem::take(&mut *self.notices.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Counts `n` more payload bytes done.
    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Relaxed);
    }

    /// Payload bytes done so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }

    /// Sets the expected total.
    pub fn set_total(&self, total: Option<u64>) {
        self.total.store(total.unwrap_or(UNKNOWN), Relaxed);
    }

    /// The expected total, if known.
    pub fn total(&self) -> Option<u64> {
        Some(self.total.load(Relaxed)).filter(|&t| t != UNKNOWN)
    }

    /// Records the current buffered amount (and the peak).
    pub fn set_buffered(&self, n: u64) {
        self.buffered.store(n, Relaxed);
        self.note_peak(n);
    }

    /// Raises the recorded peak to at least `n`.
    pub fn note_peak(&self, n: u64) {
        self.peak_buffered.fetch_max(n, Relaxed);
    }

    /// Records the sender's current threshold (it moves in the adaptive mode).
    pub fn set_threshold(&self, n: u64) {
        self.threshold.store(n, Relaxed);
    }

    /// The sender's current threshold; 0 when none was recorded (a receiver).
    pub fn threshold(&self) -> u64 {
        self.threshold.load(Relaxed)
    }

    /// The current buffered amount.
    pub fn buffered(&self) -> u64 {
        self.buffered.load(Relaxed)
    }

    /// Sets how many files the transfer has.
    pub fn set_files_total(&self, n: u64) {
        self.files_total.store(n, Relaxed);
    }

    /// How many files the transfer has, if known.
    pub fn files_total(&self) -> Option<u64> {
        Some(self.files_total.load(Relaxed)).filter(|&t| t != UNKNOWN)
    }

    /// Counts one more file delivered and verified.
    pub fn file_done(&self) {
        self.files_done.fetch_add(1, Relaxed);
    }

    /// Files delivered and verified so far.
    pub fn files_done(&self) -> u64 {
        self.files_done.load(Relaxed)
    }

    /// Records the file now being transferred (once per file: off the hot path).
    pub fn set_current(&self, label: &str) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(label.to_owned());
    }

    /// The file now being transferred, if any was recorded.
    pub fn current(&self) -> Option<String> {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The largest buffered amount recorded.
    pub fn peak_buffered(&self) -> u64 {
        self.peak_buffered.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_peaks() {
        let m = Meter::new(None);
        assert_eq!(m.total(), None);
        m.add_bytes(5);
        m.add_bytes(7);
        m.set_buffered(100);
        m.set_buffered(30);
        m.set_total(Some(12));
        assert_eq!(m.threshold(), 0);
        m.set_threshold(4096);
        assert_eq!(m.threshold(), 4096);
        assert_eq!(
            (m.bytes(), m.buffered(), m.peak_buffered(), m.total()),
            (12, 30, 100, Some(12))
        );
    }

    #[test]
    fn files_are_counted_and_the_current_one_named() {
        let m = Meter::new(None);
        assert_eq!((m.files_total(), m.files_done(), m.current()), (None, 0, None));
        m.set_files_total(3);
        m.set_current("photos/a b.jpg");
        m.file_done();
        assert_eq!(
            (m.files_total(), m.files_done(), m.current().as_deref()),
            (Some(3), 1, Some("photos/a b.jpg"))
        );
    }

    #[test]
    fn resumed_bytes_leave_a_known_total() {
        let m = Meter::new(Some(100));
        m.add_resumed(30);
        assert_eq!((m.resumed(), m.total()), (30, Some(70)));
        m.add_resumed(500);
        assert_eq!(m.total(), Some(0), "clamped, never wraps");
        let unknown = Meter::new(None);
        unknown.add_resumed(5);
        assert_eq!((unknown.resumed(), unknown.total()), (5, None));
    }

    #[test]
    fn a_label_comes_out_once_and_the_latest_wins() {
        let m = Meter::new(None);
        assert_eq!(m.take_label(), None);
        m.set_label("a".into());
        m.set_label("b".into());
        assert_eq!(m.take_label().as_deref(), Some("b"));
        assert_eq!(m.take_label(), None);
    }

    #[test]
    fn notices_come_out_once_in_order() {
        let m = Meter::new(None);
        m.notice(Notice::PartMismatch { part: "a.part".into() });
        m.notice(Notice::RemotePartMismatch { item: "b".into(), part_bytes: 1 });
        assert_eq!(
            m.take_notices(),
            vec![
                Notice::PartMismatch { part: "a.part".into() },
                Notice::RemotePartMismatch { item: "b".into(), part_bytes: 1 }
            ]
        );
        assert!(m.take_notices().is_empty());
    }
}
