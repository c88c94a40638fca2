//! Pure transfer statistics: byte counters, an EWMA rate, the average rate, the ETA and the
//! peak buffered amount, turned into [`Snapshot`]s for the live view and `--stats` NDJSON
//! and into a final [`Summary`].
//!
//! No clock reads: every method that needs the time takes `now`, the [`Duration`] since the
//! transfer started, so tests inject times and the math is deterministic (hyperfine's
//! `MockExecutor` idea). The caller owns the clock and calls [`Stats::tick`] periodically.
//!
//! Must not import: webrtc, tokio, indicatif, `cli`, or anything else in dcsend but the plain
//! [`Path`] value (`peer::path` imports nothing from webrtc).

use std::time::Duration;

use serde::Serialize;

use crate::peer::path::Path;

/// Time constant of the instantaneous rate's EWMA: a step change in throughput shows up as
/// 63% after 1 s and 99% after 5 s, smooth enough to read yet quick to follow a stall.
pub const RATE_TIME_CONSTANT: Duration = Duration::from_secs(1);

/// Counters and rate state of one transfer.
#[derive(Debug, Clone)]
pub struct Stats {
    total_bytes: Option<u64>,
    threshold_bytes: u64,
    bytes: u64,
    buffered_bytes: u64,
    peak_buffered_bytes: u64,
    /// Time and byte count at the last tick that advanced the clock (start: zero, zero).
    last_tick: (Duration, u64),
    /// The EWMA rate in bytes/s; `None` until the first tick with elapsed time.
    rate_bps: Option<f64>,
    /// The selected candidate pair, once known.
    path: Option<Path>,
    /// Progress in files, for a transfer of several.
    files: Option<Files>,
}

/// The state of a transfer at one tick. Serialises as one `--stats` NDJSON line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Always `"progress"`.
    pub t: &'static str,
    /// Seconds since the transfer started.
    pub elapsed_s: f64,
    /// Payload bytes done so far.
    pub bytes: u64,
    /// Payload bytes expected in all, when known.
    pub total_bytes: Option<u64>,
    /// Instantaneous rate in bytes/s (EWMA, time constant [`RATE_TIME_CONSTANT`]).
    pub rate_bps: f64,
    /// Average rate since the start in bytes/s (0 at time zero).
    pub avg_bps: f64,
    /// Seconds left at the current rate; `None` when the total is unknown or the rate is 0.
    pub eta_s: Option<f64>,
    /// The data channel's buffered amount at the last report, in bytes.
    pub buffered_bytes: u64,
    /// The buffered-amount threshold the sender works to at this tick, in bytes (it moves
    /// with `--threshold auto`).
    pub threshold_bytes: u64,
    /// The largest buffered amount seen, in bytes.
    pub peak_buffered_bytes: u64,
    /// The selected ICE candidate pair (`{"local":"host","remote":"relay","protocol":"udp"}`),
    /// `null` when unknown.
    pub path: Option<Path>,
    /// Files verified, of how many, and the current one: only for a transfer of several
    /// files (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Files>,
}

/// Progress in files, for a transfer of several (a tree).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Files {
    /// Files delivered and verified.
    pub done: u64,
    /// Files in the transfer.
    pub total: u64,
    /// The file being transferred (its path in a tree), when known.
    pub current: Option<String>,
}

/// The end-of-transfer report. Serialises as the last `--stats` NDJSON line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Always `"summary"`.
    pub t: &'static str,
    /// Payload bytes done.
    pub bytes: u64,
    /// Seconds since the transfer started.
    pub seconds: f64,
    /// Average rate in bytes/s (0 when no time elapsed).
    pub avg_bps: f64,
    /// The largest buffered amount seen, in bytes.
    pub peak_buffered_bytes: u64,
    /// The buffered-amount threshold the sender worked to at the end, in bytes.
    pub threshold_bytes: u64,
    /// Lowercase hex SHA-256 of the payload, when computed.
    pub sha256: Option<String>,
    /// Whether the peer confirmed the digest; `None` when unverified (raw mode, plain peer).
    pub verified: Option<bool>,
    /// Bytes a resume kept (a verified prefix the receiver already had): not in `bytes`,
    /// which counts what travelled.
    pub resumed_bytes: u64,
    /// The selected ICE candidate pair, `null` when unknown.
    pub path: Option<Path>,
}

impl Stats {
    /// Stats for a transfer of `total_bytes` (`None`: unknown, e.g. stdin) by a sender that
    /// keeps the channel's buffered amount around `threshold_bytes`.
    pub fn new(total_bytes: Option<u64>, threshold_bytes: u64) -> Self {
        Self {
            total_bytes,
            threshold_bytes,
            bytes: 0,
            buffered_bytes: 0,
            peak_buffered_bytes: 0,
            last_tick: (Duration::ZERO, 0),
            rate_bps: None,
            path: None,
            files: None,
        }
    }

    /// Records progress in files (only a transfer of several files shows it).
    pub fn set_files(&mut self, files: Option<Files>) {
        self.files = files.filter(|f| f.total > 1);
    }

    /// Records the sender's threshold now (the adaptive mode moves it).
    pub fn set_threshold(&mut self, threshold_bytes: u64) {
        self.threshold_bytes = threshold_bytes;
    }

    /// Records the connection's path (the selected candidate pair).
    pub fn set_path(&mut self, path: Option<Path>) {
        self.path = path;
    }

    /// Counts `n` more payload bytes done: handed to the channel on the send side, written
    /// on the receive side. Saturates instead of overflowing.
    pub fn on_bytes(&mut self, n: u64) {
        self.bytes = self.bytes.saturating_add(n);
    }

    /// Records the channel's current buffered amount, in bytes, and tracks its peak.
    pub fn on_buffered(&mut self, buffered: u64) {
        self.buffered_bytes = buffered;
        self.peak_buffered_bytes = self.peak_buffered_bytes.max(buffered);
    }

    /// Sets or clears the expected total (e.g. when a `file` header arrives).
    pub fn set_total(&mut self, total: Option<u64>) {
        self.total_bytes = total;
    }

    /// Updates the instantaneous rate and returns a snapshot at `now` (time since start).
    ///
    /// The rate is an EWMA of per-tick samples (bytes since the previous tick / time since
    /// it) weighted by `1 - exp(-dt / RATE_TIME_CONSTANT)`, so irregular tick intervals are
    /// handled; the first sample is taken as is. A tick with no elapsed time since the
    /// previous one (or a clock going backwards) leaves the rate unchanged and lets its
    /// bytes count toward the next sample.
    pub fn tick(&mut self, now: Duration) -> Snapshot {
        let (last_at, last_bytes) = self.last_tick;
        if let Some(dt) = now.checked_sub(last_at).filter(|dt| !dt.is_zero()) {
            let dt_s = dt.as_secs_f64();
            let sample = self.bytes.saturating_sub(last_bytes) as f64 / dt_s;
            self.rate_bps = Some(match self.rate_bps {
                None => sample,
                Some(rate) => {
                    let alpha = 1.0 - (-dt_s / RATE_TIME_CONSTANT.as_secs_f64()).exp();
                    rate + alpha * (sample - rate)
                }
            });
            self.last_tick = (now, self.bytes);
        }
        let rate_bps = self.rate_bps.unwrap_or(0.0);
        let eta_s = match self.total_bytes {
            Some(total) if rate_bps > 0.0 => {
                Some(total.saturating_sub(self.bytes) as f64 / rate_bps)
            }
            _ => None,
        };
        Snapshot {
            t: "progress",
            elapsed_s: now.as_secs_f64(),
            bytes: self.bytes,
            total_bytes: self.total_bytes,
            rate_bps,
            avg_bps: average(self.bytes, now),
            eta_s,
            buffered_bytes: self.buffered_bytes,
            threshold_bytes: self.threshold_bytes,
            peak_buffered_bytes: self.peak_buffered_bytes,
            path: self.path,
            files: self.files.clone(),
        }
    }

    /// The final report at `now` (time since start), with the payload digest if computed and
    /// whether the peer confirmed it.
    pub fn summary(
        &self,
        now: Duration,
        sha256: Option<String>,
        verified: Option<bool>,
    ) -> Summary {
        Summary {
            t: "summary",
            bytes: self.bytes,
            seconds: now.as_secs_f64(),
            avg_bps: average(self.bytes, now),
            peak_buffered_bytes: self.peak_buffered_bytes,
            threshold_bytes: self.threshold_bytes,
            sha256,
            verified,
            resumed_bytes: 0,
            path: self.path,
        }
    }
}

/// `bytes / elapsed` in bytes/s, or 0 when no time elapsed.
fn average(bytes: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() { 0.0 } else { bytes as f64 / elapsed.as_secs_f64() }
}

impl Snapshot {
    /// One JSON object on one line, without the trailing newline.
    pub fn to_ndjson(&self) -> String {
        // Cannot fail: plain numbers, strings and options (non-finite floats become null).
        serde_json::to_string(self).expect("a Snapshot always serialises to JSON")
    }
}

impl Summary {
    /// One JSON object on one line, without the trailing newline.
    pub fn to_ndjson(&self) -> String {
        // Cannot fail: plain numbers, strings and options.
        serde_json::to_string(self).expect("a Summary always serialises to JSON")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1.0)
    }

    #[test]
    fn constant_rate_is_exact_from_the_first_tick() {
        let mut s = Stats::new(None, 1024);
        for i in 1..=50 {
            s.on_bytes(1_000);
            let snap = s.tick(ms(100 * i));
            assert!(close(snap.rate_bps, 10_000.0, 1e-9), "tick {i}: {}", snap.rate_bps);
            assert!(close(snap.avg_bps, 10_000.0, 1e-9), "tick {i}: {}", snap.avg_bps);
            assert_eq!(snap.bytes, 1_000 * i);
        }
    }

    #[test]
    fn one_step_follows_the_ewma_formula() {
        let mut s = Stats::new(None, 0);
        s.on_bytes(10_000);
        assert_eq!(s.tick(ms(1_000)).rate_bps, 10_000.0);
        s.on_bytes(20_000);
        let rate = s.tick(ms(2_000)).rate_bps;
        let want = 10_000.0 + (1.0 - (-1.0f64).exp()) * 10_000.0;
        assert!(close(rate, want, 1e-12), "{rate} vs {want}");
    }

    #[test]
    fn ewma_converges_to_a_new_constant_rate() {
        let mut s = Stats::new(None, 0);
        let mut now = 0;
        for _ in 0..20 {
            now += 100;
            s.on_bytes(1_000); // 10 kB/s
            s.tick(ms(now));
        }
        let mut rates = Vec::new();
        for _ in 0..50 {
            now += 100;
            s.on_bytes(5_000); // 50 kB/s
            rates.push(s.tick(ms(now)).rate_bps);
        }
        assert!(rates.windows(2).all(|w| w[0] < w[1]), "rises monotonically: {rates:?}");
        assert!(rates[0] > 10_000.0 && rates[0] < 20_000.0, "smoothed: {}", rates[0]);
        // After 1 s (one time constant) about 63% of the step, after 5 s within 1%.
        let after_1s = (rates[9] - 10_000.0) / 40_000.0;
        assert!(close(after_1s, 1.0 - (-1.0f64).exp(), 1e-9), "{after_1s}");
        assert!(close(rates[49], 50_000.0, 0.01), "{}", rates[49]);
    }

    #[test]
    fn irregular_ticks_converge_too() {
        let mut s = Stats::new(None, 0);
        let mut now = 0;
        for step in [7, 130, 33, 250, 1, 90, 400, 12, 60, 300].iter().cycle().take(200) {
            now += step;
            s.on_bytes(step * 8); // 8 bytes per ms = 8000 B/s
            s.tick(ms(now));
        }
        assert!(close(s.tick(ms(now)).rate_bps, 8_000.0, 1e-9));
    }

    #[test]
    fn a_stall_decays_the_rate_but_not_to_zero_at_once() {
        let mut s = Stats::new(Some(1_000_000), 0);
        s.on_bytes(10_000);
        s.tick(ms(1_000));
        let stalled = s.tick(ms(2_000));
        assert!(close(stalled.rate_bps, 10_000.0 * (-1.0f64).exp(), 1e-9), "{}", stalled.rate_bps);
        assert_eq!(stalled.avg_bps, 5_000.0);
        assert!(stalled.eta_s.unwrap() > 99.0);
    }

    #[test]
    fn zero_elapsed_has_no_rates_and_no_eta() {
        let mut s = Stats::new(Some(100), 64);
        s.on_bytes(50);
        let snap = s.tick(Duration::ZERO);
        assert_eq!(
            (snap.elapsed_s, snap.rate_bps, snap.avg_bps, snap.eta_s),
            (0.0, 0.0, 0.0, None)
        );
        assert_eq!(snap.bytes, 50);
        let sum = s.summary(Duration::ZERO, None, None);
        assert_eq!((sum.seconds, sum.avg_bps), (0.0, 0.0));
    }

    #[test]
    fn same_time_twice_keeps_the_rate_and_carries_the_bytes() {
        let mut s = Stats::new(None, 0);
        s.on_bytes(1_000);
        assert_eq!(s.tick(ms(100)).rate_bps, 10_000.0);
        s.on_bytes(1_000);
        let again = s.tick(ms(100));
        assert_eq!(again.rate_bps, 10_000.0);
        assert!(again.rate_bps.is_finite() && again.avg_bps.is_finite());
        // The 1000 bytes of the zero-length tick count in the next sample: 2000 B / 0.1 s.
        s.on_bytes(1_000);
        let rate = s.tick(ms(200)).rate_bps;
        let want = 10_000.0 + (1.0 - (-0.1f64).exp()) * (20_000.0 - 10_000.0);
        assert!(close(rate, want, 1e-12), "{rate} vs {want}");
    }

    #[test]
    fn clock_going_backwards_does_not_panic() {
        let mut s = Stats::new(Some(10), 0);
        s.on_bytes(5);
        s.tick(ms(500));
        let snap = s.tick(ms(100));
        assert!(snap.rate_bps.is_finite() && snap.rate_bps >= 0.0);
        assert_eq!(snap.elapsed_s, 0.1);
    }

    #[test]
    fn eta_needs_a_total_and_a_rate() {
        let mut s = Stats::new(None, 0);
        assert_eq!(s.tick(ms(1_000)).eta_s, None, "no total, no rate");
        s.set_total(Some(100_000));
        assert_eq!(s.tick(ms(2_000)).eta_s, None, "no bytes yet: rate 0");

        let mut s = Stats::new(Some(100_000), 0);
        s.on_bytes(10_000);
        assert_eq!(s.tick(ms(1_000)).eta_s, Some(9.0), "90 kB left at 10 kB/s");
        s.set_total(None);
        assert_eq!(s.tick(ms(1_000)).eta_s, None, "total cleared");
        s.set_total(Some(5_000));
        assert_eq!(s.tick(ms(1_000)).eta_s, Some(0.0), "more than the total: nothing left");
    }

    #[test]
    fn peak_buffered_is_tracked() {
        let mut s = Stats::new(None, 1_000);
        for b in [10, 900, 1_500, 200, 0] {
            s.on_buffered(b);
        }
        let snap = s.tick(ms(1));
        assert_eq!((snap.buffered_bytes, snap.peak_buffered_bytes), (0, 1_500));
        assert_eq!(snap.threshold_bytes, 1_000);
        assert_eq!(s.summary(ms(1), None, None).peak_buffered_bytes, 1_500);
    }

    #[test]
    fn byte_counter_saturates() {
        let mut s = Stats::new(None, 0);
        s.on_bytes(u64::MAX);
        s.on_bytes(1);
        let snap = s.tick(ms(1_000));
        assert_eq!(snap.bytes, u64::MAX);
        assert!(snap.rate_bps.is_finite());
    }

    #[test]
    fn snapshot_ndjson_is_pinned() {
        let mut s = Stats::new(Some(4_000), 1_024);
        s.on_bytes(3_000);
        s.on_buffered(512);
        s.on_buffered(256);
        let line = s.tick(ms(2_000)).to_ndjson();
        assert_eq!(
            line,
            r#"{"t":"progress","elapsed_s":2.0,"bytes":3000,"total_bytes":4000,"rate_bps":1500.0,"avg_bps":1500.0,"eta_s":0.6666666666666666,"buffered_bytes":256,"threshold_bytes":1024,"peak_buffered_bytes":512,"path":null}"#
        );
        let line = Stats::new(None, 0).tick(Duration::ZERO).to_ndjson();
        assert_eq!(
            line,
            r#"{"t":"progress","elapsed_s":0.0,"bytes":0,"total_bytes":null,"rate_bps":0.0,"avg_bps":0.0,"eta_s":null,"buffered_bytes":0,"threshold_bytes":0,"peak_buffered_bytes":0,"path":null}"#
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn summary_ndjson_is_pinned() {
        let mut s = Stats::new(Some(3), 1_024);
        s.on_bytes(3);
        s.on_buffered(3);
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let line = s.summary(ms(500), Some(sha.into()), Some(true)).to_ndjson();
        assert_eq!(
            line,
            r#"{"t":"summary","bytes":3,"seconds":0.5,"avg_bps":6.0,"peak_buffered_bytes":3,"threshold_bytes":1024,"sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","verified":true,"resumed_bytes":0,"path":null}"#
        );
        let line = s.summary(ms(500), None, None).to_ndjson();
        assert_eq!(
            line,
            r#"{"t":"summary","bytes":3,"seconds":0.5,"avg_bps":6.0,"peak_buffered_bytes":3,"threshold_bytes":1024,"sha256":null,"verified":null,"resumed_bytes":0,"path":null}"#
        );
    }

    #[test]
    fn the_path_reaches_snapshots_and_the_summary() {
        use crate::peer::path::{CandidateKind, Protocol};
        let mut s = Stats::new(Some(10), 0);
        assert_eq!(s.tick(ms(1)).path, None);
        let path = Path {
            local: CandidateKind::Relay,
            remote: CandidateKind::Relay,
            protocol: Protocol::Udp,
            relayed: None,
        };
        s.set_path(Some(path));
        let line = s.tick(ms(2)).to_ndjson();
        assert!(
            line.ends_with(r#","path":{"local":"relay","remote":"relay","protocol":"udp"}}"#),
            "{line}"
        );
        let line = s.summary(ms(3), None, Some(true)).to_ndjson();
        assert!(
            line.ends_with(r#","path":{"local":"relay","remote":"relay","protocol":"udp"}}"#),
            "{line}"
        );
    }
}
