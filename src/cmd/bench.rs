//! `dcsend bench`: runs the sweep case by case with a live view, folds the runs, prints the
//! table and writes the exports. Ctrl-C stops the sweep; what was measured so far is still
//! printed and exported (marked `"complete": false`), then dcsend exits 130.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::bench::report::{self, CaseReport, Machine, Report, SCHEMA_VERSION, Settings};
use crate::bench::run::{RunSetup, run_once};
use crate::bench::{Case, Transport};
use crate::cli::config::{BenchConfig, DEFAULT_CHUNK_BYTES, ExportFormat};
use crate::error::TransferError;
use crate::progress::meter::Meter;
use crate::progress::{ReportOptions, Reporter};
use crate::transfer::autotune::Threshold;

pub(super) async fn run(cfg: BenchConfig, cancel: CancellationToken) -> anyhow::Result<()> {
    let plan = &cfg.plan;
    let cases = plan.cases();
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        dcsend_version: env!("CARGO_PKG_VERSION").into(),
        webrtc_version: crate::WEBRTC_VERSION.into(),
        machine: Machine {
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
        },
        settings: Settings {
            size_bytes: plan.size_bytes,
            duration_seconds: plan.duration.map(|d| d.as_secs_f64()),
            runs: plan.runs,
            warmup: plan.warmup,
            socket_buffer_bytes: plan.socket_buffer_bytes as u64,
        },
        complete: false,
        cases: Vec::new(),
        baseline: Vec::new(),
    };

    let mut stopped: Option<anyhow::Error> = None;
    'sweep: for (i, &case) in cases.iter().enumerate() {
        let mut samples = Vec::new();
        for k in 0..plan.warmup + plan.runs {
            let what = match k.checked_sub(plan.warmup) {
                None => format!("warm-up {}/{}", k + 1, plan.warmup),
                Some(r) => format!("run {}/{}", r + 1, plan.runs),
            };
            let label = format!("[{}/{}] {} {what}", i + 1, cases.len(), describe(case));
            match one_run(&cfg, case, label, &cancel).await {
                Ok(sample) if k >= plan.warmup => samples.push(sample),
                Ok(_) => {}
                Err(e) => {
                    stopped = Some(e.context(format!("bench case {}", describe(case))));
                    fold(&mut report, case, samples);
                    break 'sweep;
                }
            }
        }
        let folded = fold(&mut report, case, samples);
        if cfg.progress.is_on()
            && let Some(c) = folded
        {
            eprintln!(
                "[{}/{}] {}: {:.1} MB/s (min {:.1}, max {:.1})",
                i + 1,
                cases.len(),
                describe(case),
                c.mb_per_s.median,
                c.mb_per_s.min,
                c.mb_per_s.max
            );
        }
    }
    report.complete = stopped.is_none();
    report.link_baseline();

    if cfg.table {
        let text = format!("{}{}", report.to_markdown(), verdict(&report));
        if cfg.table_on_stdout {
            std::io::stdout().write_all(text.as_bytes())?;
        } else {
            eprint!("{text}");
        }
    }
    for (format, path) in &cfg.exports {
        let text = match format {
            ExportFormat::Json => report.to_json(),
            ExportFormat::Csv => report.to_csv(),
            ExportFormat::Markdown => report.to_markdown(),
        };
        export(path, &text)?;
    }
    if let Some(e) = stopped {
        return Err(e);
    }
    if let Some(bad) = report.cases.iter().chain(&report.baseline).find(|c| !c.verified) {
        return Err(TransferError::Integrity {
            name: format!("bench case {}", describe_report(bad)),
            detail: "a run's bytes did not arrive intact".into(),
        }
        .into());
    }
    Ok(())
}

/// One run with its live view.
async fn one_run(
    cfg: &BenchConfig,
    case: Case,
    label: String,
    cancel: &CancellationToken,
) -> anyhow::Result<report::Sample> {
    let plan = &cfg.plan;
    let total = plan.duration.is_none().then_some(plan.size_bytes);
    let meter = Arc::new(Meter::new(total));
    let webrtc = case.transport == Transport::Webrtc;
    let reporter = Reporter::start(
        meter.clone(),
        ReportOptions {
            live: cfg.progress,
            stats: None,
            label,
            threshold_bytes: if webrtc { case.threshold.initial_bytes() } else { 0 },
            show_buffer: webrtc,
            path: None,
        },
    )?;
    let setup = RunSetup {
        case,
        size_bytes: plan.size_bytes,
        duration: plan.duration,
        socket_buffer_bytes: plan.socket_buffer_bytes,
    };
    let result = run_once(&setup, meter, cancel).await;
    reporter.finish(None, None).await;
    result
}

/// Adds the case to the report if it has samples; returns it.
fn fold(report: &mut Report, case: Case, samples: Vec<report::Sample>) -> Option<&CaseReport> {
    let folded = CaseReport::new(case, samples)?;
    let list = match case.transport {
        Transport::Webrtc => &mut report.cases,
        Transport::Tcp => &mut report.baseline,
    };
    list.push(folded);
    list.last()
}

fn describe(case: Case) -> String {
    match case.transport {
        Transport::Webrtc => format!(
            "webrtc threshold {} chunk {}",
            threshold_label(case.threshold),
            report::size(case.chunk_bytes as u64)
        ),
        Transport::Tcp => format!("tcp chunk {}", report::size(case.chunk_bytes as u64)),
    }
}

fn threshold_label(t: Threshold) -> String {
    match t {
        Threshold::Fixed(n) => report::size(n),
        Threshold::Auto { .. } => "auto".into(),
    }
}

fn describe_report(c: &CaseReport) -> String {
    let threshold = match (c.auto_threshold, c.threshold_bytes) {
        (true, _) => Threshold::default(),
        (false, n) => Threshold::Fixed(n.unwrap_or(0)),
    };
    describe(Case { transport: c.transport, threshold, chunk_bytes: c.chunk_bytes as usize })
}

/// The lines under the table: the best case, and how the defaults compare to it.
fn verdict(report: &Report) -> String {
    let Some(best) = report.best() else { return "no case finished\n".into() };
    let mut out = format!(
        "\nbest: {} at {:.1} MB/s ({:.0} Mbit/s)",
        describe_report(best),
        best.mb_per_s.median,
        best.mbit_per_s.median
    );
    if let Some(r) = best.tcp_ratio {
        out += &format!(", {r:.2} x TCP");
    }
    out.push('\n');
    let default = report
        .cases
        .iter()
        .find(|c| c.auto_threshold && c.chunk_bytes == DEFAULT_CHUNK_BYTES as u64);
    if let Some(d) = default
        && best.mb_per_s.median > 0.0
    {
        let pct = 100.0 * (1.0 - d.mb_per_s.median / best.mb_per_s.median);
        out += &format!(
            "defaults (threshold auto, chunk {}): {:.1} MB/s, {pct:.1}% below the best\n",
            report::size(DEFAULT_CHUNK_BYTES as u64),
            d.mb_per_s.median
        );
    }
    if !report.complete {
        out += "interrupted: the table holds the cases finished so far\n";
    }
    out
}

/// Writes an export atomically to a file, or to stdout for "-".
fn export(path: &Path, text: &str) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(());
    }
    crate::atomic::write(path, text.as_bytes(), 0o666)
        .with_context(|| format!("writing {}", path.display()))
}
