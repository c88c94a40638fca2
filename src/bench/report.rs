//! Results of a sweep: per-run samples folded into per-case figures, and the three export
//! formats (JSON, CSV, Markdown). Pure: no I/O, no clocks.
//!
//! The schemas are documented in BENCHMARKS.md ("Export schemas"); bump
//! [`SCHEMA_VERSION`] when a field changes meaning or disappears.

use serde::Serialize;

use super::{Case, Transport};
use crate::transfer::autotune::Threshold;

/// Version of the JSON document and of the CSV columns.
pub const SCHEMA_VERSION: u32 = 1;

/// What one run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Payload bytes that arrived and were checked.
    pub bytes: u64,
    /// From the first byte handed to the sender to the receiver's acknowledgement.
    pub seconds: f64,
    /// From the offer (or TCP connect) to the open channel.
    pub connect_seconds: f64,
    /// CPU seconds of the sending side during the transfer.
    pub send_cpu_seconds: Option<f64>,
    /// CPU seconds of the receiving side during the transfer.
    pub recv_cpu_seconds: Option<f64>,
    /// Largest buffered amount the threshold sender saw (0 for TCP).
    pub peak_buffered_bytes: u64,
    /// Peak resident set of the whole process during the run.
    pub peak_rss_bytes: Option<u64>,
    /// Byte count and SHA-256 matched on both sides.
    pub verified: bool,
}

impl Sample {
    /// Throughput in MB/s (10^6 bytes per second).
    pub fn mb_per_s(&self) -> f64 {
        if self.seconds > 0.0 { self.bytes as f64 / self.seconds / 1e6 } else { 0.0 }
    }
}

/// Median, minimum and maximum of a figure over the runs of a case.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Median (the mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; `None` when empty.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if !v.len().is_multiple_of(2) { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 };
        Some(Self { median, min: v[0], max: v[v.len() - 1] })
    }

    fn scaled(self, k: f64) -> Self {
        Self { median: self.median * k, min: self.min * k, max: self.max * k }
    }
}

/// The figures of one case (one transport, threshold and message size).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseReport {
    /// "webrtc" or "tcp".
    pub transport: Transport,
    /// Fixed low-water threshold (`null` for TCP and for the adaptive mode).
    pub threshold_bytes: Option<u64>,
    /// The adaptive threshold (`--threshold auto`); `peak_buffered_bytes` shows how far it went.
    pub auto_threshold: bool,
    /// Message size (write size for TCP).
    pub chunk_bytes: u64,
    /// Measured runs.
    pub runs: usize,
    /// Median payload bytes per run.
    pub bytes: u64,
    /// Throughput, MB/s (10^6 bytes/s).
    pub mb_per_s: Spread,
    /// Throughput, Mbit/s (10^6 bits/s).
    pub mbit_per_s: Spread,
    /// Median CPU seconds of the sending side during the transfer.
    pub send_cpu_seconds: Option<f64>,
    /// Median CPU use of the sending side, percent of one core.
    pub send_cpu_percent: Option<f64>,
    /// Median CPU seconds of the receiving side.
    pub recv_cpu_seconds: Option<f64>,
    /// Median CPU use of the receiving side, percent of one core.
    pub recv_cpu_percent: Option<f64>,
    /// Largest buffered amount over the runs.
    pub peak_buffered_bytes: u64,
    /// Largest process RSS over the runs.
    pub peak_rss_bytes: Option<u64>,
    /// Median time to open the channel, milliseconds.
    pub connect_ms: f64,
    /// Every run delivered every byte and the digests matched.
    pub verified: bool,
    /// Median throughput over the TCP baseline's with the same message size.
    pub tcp_ratio: Option<f64>,
    /// The runs, in order.
    pub samples: Vec<Sample>,
}

impl CaseReport {
    /// Folds the samples of `case`; `None` without samples.
    pub fn new(case: Case, samples: Vec<Sample>) -> Option<Self> {
        let mb = Spread::of(samples.iter().map(Sample::mb_per_s))?;
        let median = |f: &dyn Fn(&Sample) -> Option<f64>| -> Option<f64> {
            let v: Option<Vec<f64>> = samples.iter().map(f).collect();
            Spread::of(v?).map(|s| s.median)
        };
        let percent = |cpu: &dyn Fn(&Sample) -> Option<f64>| {
            median(&|s| Some(100.0 * cpu(s)? / s.seconds).filter(|p| p.is_finite()))
        };
        Some(Self {
            transport: case.transport,
            threshold_bytes: match (case.transport, case.threshold) {
                (Transport::Webrtc, Threshold::Fixed(n)) => Some(n),
                _ => None,
            },
            auto_threshold: case.transport == Transport::Webrtc
                && matches!(case.threshold, Threshold::Auto { .. }),
            chunk_bytes: case.chunk_bytes as u64,
            runs: samples.len(),
            bytes: median(&|s| Some(s.bytes as f64)).unwrap_or(0.0) as u64,
            mb_per_s: mb,
            mbit_per_s: mb.scaled(8.0),
            send_cpu_seconds: median(&|s| s.send_cpu_seconds),
            send_cpu_percent: percent(&|s| s.send_cpu_seconds),
            recv_cpu_seconds: median(&|s| s.recv_cpu_seconds),
            recv_cpu_percent: percent(&|s| s.recv_cpu_seconds),
            peak_buffered_bytes: samples.iter().map(|s| s.peak_buffered_bytes).max().unwrap_or(0),
            peak_rss_bytes: samples.iter().filter_map(|s| s.peak_rss_bytes).max(),
            connect_ms: median(&|s| Some(s.connect_seconds * 1e3)).unwrap_or(0.0),
            verified: samples.iter().all(|s| s.verified),
            tcp_ratio: None,
            samples,
        })
    }
}

/// The settings a sweep ran with, echoed in the JSON export.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// Bytes per run.
    pub size_bytes: u64,
    /// Time bound per run, seconds.
    pub duration_seconds: Option<f64>,
    /// Measured runs per case.
    pub runs: u32,
    /// Warm-up runs per case.
    pub warmup: u32,
    /// UDP socket buffer asked for.
    pub socket_buffer_bytes: u64,
}

/// The machine, echoed in the JSON export so figures are read in context.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    /// Logical CPUs available to the process.
    pub cpus: usize,
    /// `std::env::consts::OS`.
    pub os: String,
    /// `std::env::consts::ARCH`.
    pub arch: String,
}

/// The whole result of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// dcsend's version.
    pub dcsend_version: String,
    /// The webrtc crate's version.
    pub webrtc_version: String,
    /// Where it ran.
    pub machine: Machine,
    /// How it ran.
    pub settings: Settings,
    /// False when the sweep was interrupted: the cases are those finished so far.
    pub complete: bool,
    /// The WebRTC cases, in sweep order.
    pub cases: Vec<CaseReport>,
    /// The baseline cases (empty without `--baseline`).
    pub baseline: Vec<CaseReport>,
}

/// The CSV columns, in order (also the header line).
pub const CSV_COLUMNS: &[&str] = &[
    "schema_version",
    "transport",
    "threshold_bytes",
    "chunk_bytes",
    "runs",
    "bytes",
    "mb_per_s_median",
    "mb_per_s_min",
    "mb_per_s_max",
    "mbit_per_s_median",
    "send_cpu_seconds",
    "send_cpu_percent",
    "recv_cpu_seconds",
    "recv_cpu_percent",
    "peak_buffered_bytes",
    "peak_rss_bytes",
    "connect_ms",
    "verified",
    "tcp_ratio",
    "auto_threshold",
];

impl Report {
    /// Sets each WebRTC case's ratio to the TCP baseline with the same message size.
    pub fn link_baseline(&mut self) {
        for case in &mut self.cases {
            case.tcp_ratio = self
                .baseline
                .iter()
                .find(|b| b.chunk_bytes == case.chunk_bytes)
                .filter(|b| b.mb_per_s.median > 0.0)
                .map(|b| case.mb_per_s.median / b.mb_per_s.median);
        }
    }

    /// The WebRTC case with the highest median throughput.
    pub fn best(&self) -> Option<&CaseReport> {
        self.cases.iter().max_by(|a, b| a.mb_per_s.median.total_cmp(&b.mb_per_s.median))
    }

    /// The JSON document (pretty, one trailing newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a report always serialises");
        s.push('\n');
        s
    }

    /// One CSV row per case (WebRTC cases, then baseline), after a header.
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let write = |w: &mut csv::Writer<Vec<u8>>, fields: Vec<String>| {
            w.write_record(fields).expect("writing to memory");
        };
        write(&mut w, CSV_COLUMNS.iter().map(|c| (*c).to_owned()).collect());
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_default();
        for c in self.cases.iter().chain(&self.baseline) {
            write(
                &mut w,
                vec![
                    SCHEMA_VERSION.to_string(),
                    c.transport.to_string(),
                    c.threshold_bytes.map(|t| t.to_string()).unwrap_or_default(),
                    c.chunk_bytes.to_string(),
                    c.runs.to_string(),
                    c.bytes.to_string(),
                    format!("{:.3}", c.mb_per_s.median),
                    format!("{:.3}", c.mb_per_s.min),
                    format!("{:.3}", c.mb_per_s.max),
                    format!("{:.3}", c.mbit_per_s.median),
                    opt(c.send_cpu_seconds),
                    opt(c.send_cpu_percent),
                    opt(c.recv_cpu_seconds),
                    opt(c.recv_cpu_percent),
                    c.peak_buffered_bytes.to_string(),
                    c.peak_rss_bytes.map(|b| b.to_string()).unwrap_or_default(),
                    format!("{:.3}", c.connect_ms),
                    c.verified.to_string(),
                    opt(c.tcp_ratio),
                    c.auto_threshold.to_string(),
                ],
            );
        }
        String::from_utf8(w.into_inner().expect("flushing to memory")).expect("CSV of ASCII")
    }

    /// A Markdown table, columns padded so that it also reads well as plain text.
    pub fn to_markdown(&self) -> String {
        let mut rows: Vec<Vec<String>> = vec![
            [
                "transport",
                "threshold",
                "chunk",
                "MB/s median",
                "min",
                "max",
                "Mbit/s",
                "send CPU",
                "recv CPU",
                "peak buf",
                "peak RSS",
                "connect",
                "verified",
                "vs TCP",
            ]
            .map(String::from)
            .to_vec(),
        ];
        let pct = |p: Option<f64>| p.map(|p| format!("{p:.0}%")).unwrap_or_else(|| "?".into());
        for c in self.cases.iter().chain(&self.baseline) {
            rows.push(vec![
                c.transport.to_string(),
                match (c.auto_threshold, c.threshold_bytes) {
                    (true, _) => "auto".into(),
                    (false, t) => t.map(size).unwrap_or_else(|| "-".into()),
                },
                size(c.chunk_bytes),
                format!("{:.1}", c.mb_per_s.median),
                format!("{:.1}", c.mb_per_s.min),
                format!("{:.1}", c.mb_per_s.max),
                format!("{:.0}", c.mbit_per_s.median),
                pct(c.send_cpu_percent),
                pct(c.recv_cpu_percent),
                if c.transport == Transport::Tcp {
                    "-".into()
                } else {
                    size(c.peak_buffered_bytes)
                },
                c.peak_rss_bytes.map(size).unwrap_or_else(|| "?".into()),
                format!("{:.0} ms", c.connect_ms),
                if c.verified { "yes".into() } else { "NO".into() },
                c.tcp_ratio.map(|r| format!("{r:.2}")).unwrap_or_else(|| "-".into()),
            ]);
        }
        let widths: Vec<usize> = (0..rows[0].len())
            .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
            .collect();
        let line = |cells: &[String]| {
            let padded: Vec<String> =
                cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            format!("| {} |\n", padded.join(" | "))
        };
        let mut out = line(&rows[0]);
        out += &line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
        for r in &rows[1..] {
            out += &line(r);
        }
        out
    }
}

/// `65536` -> "64KiB", `1572864` -> "1.5MiB", `1000` -> "1000B".
pub fn size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, scale) in UNITS {
        if bytes >= scale {
            let v = bytes as f64 / scale as f64;
            return if bytes.is_multiple_of(scale) {
                format!("{}{unit}", bytes / scale)
            } else {
                format!("{v:.1}{unit}")
            };
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(bytes: u64, seconds: f64) -> Sample {
        Sample {
            bytes,
            seconds,
            connect_seconds: 0.05,
            send_cpu_seconds: Some(seconds / 2.0),
            recv_cpu_seconds: Some(seconds),
            peak_buffered_bytes: 1 << 20,
            peak_rss_bytes: Some(30 << 20),
            verified: true,
        }
    }

    fn case(transport: Transport, chunk: usize) -> Case {
        Case { transport, threshold: Threshold::Fixed(1 << 20), chunk_bytes: chunk }
    }

    #[test]
    fn spread_is_median_min_max() {
        let s = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = Spread::of([4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert_eq!(Spread::of([]), None);
    }

    #[test]
    fn case_folds_samples() {
        let runs =
            vec![sample(100_000_000, 1.0), sample(100_000_000, 0.5), sample(50_000_000, 1.0)];
        let c = CaseReport::new(case(Transport::Webrtc, 65536), runs).unwrap();
        assert_eq!(c.runs, 3);
        assert_eq!((c.mb_per_s.median, c.mb_per_s.min, c.mb_per_s.max), (100.0, 50.0, 200.0));
        assert_eq!(c.mbit_per_s.median, 800.0);
        assert_eq!(c.send_cpu_percent, Some(50.0));
        assert_eq!(c.recv_cpu_percent, Some(100.0));
        assert_eq!(c.threshold_bytes, Some(1 << 20));
        assert_eq!(c.connect_ms, 50.0);
        assert!(c.verified);
        assert!(CaseReport::new(case(Transport::Webrtc, 65536), vec![]).is_none());
    }

    #[test]
    fn one_failed_run_marks_the_case_unverified() {
        let mut bad = sample(10, 1.0);
        bad.verified = false;
        let c = CaseReport::new(case(Transport::Webrtc, 65536), vec![sample(10, 1.0), bad]);
        assert!(!c.unwrap().verified);
    }

    fn report() -> Report {
        let rtc = |chunk, secs| {
            CaseReport::new(case(Transport::Webrtc, chunk), vec![sample(300_000_000, secs)])
                .unwrap()
        };
        let tcp = CaseReport::new(case(Transport::Tcp, 65536), vec![sample(300_000_000, 0.5)]);
        let mut r = Report {
            schema_version: SCHEMA_VERSION,
            dcsend_version: "0.1.0".into(),
            webrtc_version: "0.21".into(),
            machine: Machine { cpus: 2, os: "linux".into(), arch: "x86_64".into() },
            settings: Settings {
                size_bytes: 300_000_000,
                duration_seconds: None,
                runs: 1,
                warmup: 0,
                socket_buffer_bytes: 4 << 20,
            },
            complete: true,
            cases: vec![rtc(16384, 2.0), rtc(65536, 1.0)],
            baseline: vec![tcp.unwrap()],
        };
        r.link_baseline();
        r
    }

    #[test]
    fn baseline_ratio_matches_by_message_size() {
        let r = report();
        assert_eq!(r.cases[0].tcp_ratio, None, "no 16 KiB baseline");
        assert_eq!(r.cases[1].tcp_ratio, Some(0.5));
        assert_eq!(r.best().unwrap().chunk_bytes, 65536);
    }

    #[test]
    fn json_has_version_and_round_trips_as_json() {
        let v: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
        assert_eq!(v["schema_version"], SCHEMA_VERSION);
        assert_eq!(v["cases"][1]["transport"], "webrtc");
        assert_eq!(v["cases"][1]["mb_per_s"]["median"], 300.0);
        assert_eq!(v["baseline"][0]["threshold_bytes"], serde_json::Value::Null);
        assert_eq!(v["cases"][0]["samples"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn csv_has_a_header_and_one_row_per_case() {
        let csv = report().to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 1 + 3);
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        assert!(
            lines[2].starts_with("1,webrtc,1048576,65536,1,300000000,300.000,"),
            "{}",
            lines[2]
        );
        assert!(lines[3].starts_with("1,tcp,,65536,"), "{}", lines[3]);
        for l in &lines {
            assert_eq!(l.split(',').count(), CSV_COLUMNS.len(), "{l}");
        }
    }

    #[test]
    fn markdown_is_an_aligned_table() {
        let md = report().to_markdown();
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), 2 + 3);
        assert!(lines[1].chars().all(|c| c == '|' || c == '-' || c == ' '));
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{md}");
        assert!(lines[3].contains("| 1MiB ") && lines[3].contains("| 0.50 "), "{md}");
    }

    #[test]
    fn sizes_read_like_the_flags() {
        assert_eq!(size(65536), "64KiB");
        assert_eq!(size(1572864), "1.5MiB");
        assert_eq!(size(1000), "1000B");
        assert_eq!(size(16 << 20), "16MiB");
    }
}
