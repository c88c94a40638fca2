//! Progress: pure counters and rates (`meter`, `stats`), the user's notices and their wording
//! (`notice`), the indicatif view (`render`), and the ticker task that samples the meter
//! several times a second and feeds both the view and the NDJSON `--stats` stream.

pub mod meter;
pub mod notice;
pub mod render;
pub mod stats;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::peer::path::Path;
use meter::Meter;
use render::Live;
use stats::{Files, Stats, Summary};

/// How often the view and the NDJSON stream are refreshed.
pub const TICK: Duration = Duration::from_millis(250);

/// Where and how to report.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Whether to draw the live view.
    pub live: render::Draw,
    /// NDJSON destination (`-` = stderr).
    pub stats: Option<PathBuf>,
    /// Label shown before the bar, until the meter names an item
    /// ([`Meter::set_label`](meter::Meter::set_label)).
    pub label: String,
    /// The sender's threshold (0 on the receiving side).
    pub threshold_bytes: u64,
    /// Show the buffered amount against the threshold.
    pub show_buffer: bool,
    /// The connection's selected candidate pair, when known.
    pub path: Option<Path>,
}

/// Where `--stats` lines go.
type NdjsonOut = Box<dyn Write + Send>;

/// The running ticker.
pub struct Reporter {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<(Stats, Live, Option<NdjsonOut>)>,
    meter: Arc<Meter>,
    started: Instant,
    path: Option<Path>,
}

impl Reporter {
    /// Starts sampling `meter`. Fails only when the `--stats` file cannot be created.
    pub fn start(meter: Arc<Meter>, opts: ReportOptions) -> std::io::Result<Self> {
        let mut ndjson: Option<NdjsonOut> = match &opts.stats {
            None => None,
            Some(p) if p.as_os_str() == "-" => Some(Box::new(std::io::stderr())),
            Some(p) => {
                Some(Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("--stats {}: {e}", p.display()))
                })?)))
            }
        };
        let mut live = Live::new(opts.live, &opts.label, opts.show_buffer);
        let path = opts.path;
        let started = Instant::now();
        let (stop, mut stopped) = oneshot::channel();
        let m = meter.clone();
        let task = tokio::spawn(async move {
            let mut stats = Stats::new(m.total(), opts.threshold_bytes);
            stats.set_path(opts.path);
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut last_bytes = 0;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {}
                }
                for notice in m.take_notices() {
                    live.println(&notice.to_string());
                }
                if let Some(label) = m.take_label() {
                    live.set_label(&label);
                }
                let bytes = m.bytes();
                stats.on_bytes(bytes - last_bytes);
                last_bytes = bytes;
                stats.set_total(m.total());
                stats.set_files(m.files_total().map(|total| Files {
                    done: m.files_done(),
                    total,
                    current: m.current(),
                }));
                stats.on_buffered(m.buffered());
                if m.threshold() > 0 {
                    stats.set_threshold(m.threshold());
                }
                let snap = stats.tick(started.elapsed());
                live.update(&snap);
                if let Some(w) = ndjson.as_mut() {
                    // Stats are best effort: a full disk must not stop the transfer.
                    let _ = writeln!(w, "{}", snap.to_ndjson()).and_then(|_| w.flush());
                }
            }
            for notice in m.take_notices() {
                live.println(&notice.to_string());
            }
            let bytes = m.bytes();
            stats.on_bytes(bytes - last_bytes);
            stats.on_buffered(m.peak_buffered());
            (stats, live, ndjson)
        });
        Ok(Self { stop, task, meter, started, path })
    }

    /// Stops the ticker, clears the view, writes the summary to the NDJSON stream and
    /// returns it.
    pub async fn finish(self, sha256: Option<String>, verified: Option<bool>) -> Summary {
        let _ = self.stop.send(());
        let elapsed = self.started.elapsed();
        match self.task.await {
            Ok((stats, live, mut ndjson)) => {
                live.finish();
                let mut summary = stats.summary(elapsed, sha256, verified);
                summary.resumed_bytes = self.meter.resumed();
                if let Some(w) = ndjson.as_mut() {
                    let _ = writeln!(w, "{}", summary.to_ndjson()).and_then(|_| w.flush());
                }
                summary
            }
            Err(_) => {
                for notice in self.meter.take_notices() {
                    eprintln!("{notice}");
                }
                let mut stats = Stats::new(self.meter.total(), 0);
                stats.on_bytes(self.meter.bytes());
                stats.set_path(self.path);
                let mut summary = stats.summary(elapsed, sha256, verified);
                summary.resumed_bytes = self.meter.resumed();
                summary
            }
        }
    }
}

/// The closing line: "dcsend: sent 64.0 MiB in 0.52 s (123.1 MiB/s), verified ...; path: local
/// host, remote host (udp)". The path is left out when unknown.
pub fn summary_line(
    verb: &str,
    bytes: u64,
    seconds: f64,
    tail: &str,
    path: Option<&Path>,
) -> String {
    let mib = bytes as f64 / 1048576.0;
    let rate = if seconds > 0.0 { mib / seconds } else { 0.0 };
    let path = path.map(|p| format!("; path: {p}")).unwrap_or_default();
    format!("dcsend: {verb} {mib:.1} MiB in {seconds:.2} s ({rate:.1} MiB/s){tail}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::path::{CandidateKind, Protocol};

    #[test]
    fn summary_line_ends_with_the_path_when_known() {
        let path = Path {
            local: CandidateKind::Host,
            remote: CandidateKind::Relay,
            protocol: Protocol::Udp,
            relayed: None,
        };
        assert_eq!(
            summary_line("sent", 3 << 20, 2.0, ", verified", Some(&path)),
            "dcsend: sent 3.0 MiB in 2.00 s (1.5 MiB/s), verified; path: local host, remote relay (udp)"
        );
        assert_eq!(
            summary_line("received", 0, 0.0, "", None),
            "dcsend: received 0.0 MiB in 0.00 s (0.0 MiB/s)"
        );
    }
}
