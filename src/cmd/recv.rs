//! `dcsend recv`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::connect::{Connected, connect};
use super::{abort_if_stuck, resume_tail, single_sha};
use crate::cli::config::{RecvConfig, RecvTarget};
use crate::error::UsageError;
use crate::progress::meter::Meter;
use crate::progress::{ReportOptions, Reporter, summary_line};
use crate::transfer::recv::{Destination, RecvOptions, receive};

pub(super) async fn run(cfg: RecvConfig, cancel: CancellationToken) -> anyhow::Result<()> {
    let dest = match &cfg.target {
        RecvTarget::Stdout => Destination::Stdout,
        RecvTarget::File(p) => Destination::File(p.clone()),
        RecvTarget::Dir(p) => Destination::Dir(p.clone()),
        // The empty path: the current folder, and messages show bare names.
        RecvTarget::Here => Destination::NamedOnly(PathBuf::new()),
        RecvTarget::Discard => Destination::Discard,
    };
    if cfg.target == RecvTarget::Here && cfg.output.summary {
        eprintln!(
            "dcsend: stdout is a terminal, so files are saved in the current folder under the \
             sender's names (-o or a pipe puts them elsewhere)"
        );
    }
    // `-o downloads/` names a folder: made if missing, as `mkdir -p` would (croc and
    // magic-wormhole save into a folder of their own too), before connecting.
    if let Destination::Dir(dir) = &dest
        && !dir.is_dir()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            UsageError(format!("-o {}: cannot create the folder: {e}", dir.display()))
        })?;
        if cfg.output.summary {
            eprintln!("dcsend: created the folder {}", dir.display());
        }
    }
    // Refuse before connecting, so nothing is sent for nothing. `symlink_metadata`: a link
    // at FILE counts as existing even when it dangles (the receiver checks again, without
    // following it, when the item arrives).
    if let Destination::File(p) = &dest
        && let Ok(meta) = std::fs::symlink_metadata(p)
        && !cfg.force
    {
        let what = if meta.file_type().is_symlink() { " (a symbolic link)" } else { "" };
        anyhow::bail!(crate::error::TransferError::Refused(format!(
            "{} exists{what} (use --force to overwrite)",
            p.display()
        )));
    }
    let conn = connect(&cfg.connect, &cancel).await?;
    let meter = Arc::new(Meter::new(None));
    let reporter = Reporter::start(
        meter.clone(),
        ReportOptions {
            live: cfg.output.progress,
            stats: cfg.output.stats.clone(),
            label: "recv".into(),
            threshold_bytes: 0,
            show_buffer: false,
            path: conn.path,
        },
    )?;
    let opts =
        RecvOptions { dest, force: cfg.force, linger: Duration::from_secs(5), resume: cfg.resume };
    let stuck = abort_if_stuck(conn.channel.clone(), "receiver", cancel.clone());
    let result = receive(conn.channel.clone(), conn.events, &opts, meter, cancel).await;
    stuck.abort();
    let (sha, verified) = match &result {
        Ok(out) => (single_sha(out.items.iter().map(|i| i.sha256.as_str())), out.verified),
        Err(_) => (None, false),
    };
    let summary = Connected::hang_up(&conn.channel, &conn.peer, reporter, sha, verified).await;
    let out = result.context("receiving")?;
    if cfg.output.summary {
        let mut tail = if out.verified {
            ", SHA-256 verified".to_owned()
        } else {
            ", unverified (the peer is not dcsend: no digest to check)".to_owned()
        };
        // A .part that did not match was announced when it happened.
        let resumed: u64 = out.items.iter().map(|i| i.resumed_bytes).sum();
        tail += &resume_tail(resumed, "prefix verified by the sender");
        let verb = match out.items.len() {
            1 => "received".to_owned(),
            n => format!("received {n} files,"),
        };
        eprintln!(
            "{}",
            summary_line(&verb, summary.bytes, summary.seconds, &tail, summary.path.as_ref())
        );
    }
    Ok(())
}
