//! `dcsend [send] FILE...`

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::connect::{Connected, connect};
use super::{abort_if_stuck, resume_tail, single_sha};
use crate::cli::config::SendConfig;
use crate::progress::meter::Meter;
use crate::progress::{ReportOptions, Reporter, summary_line};
use crate::transfer::send::{SendOptions, send};
use crate::transfer::source::{Item, Skipped, Tree};

/// The largest message sent to a peer whose description states none. RFC 8841 makes that 64 KiB,
/// but Pion (3.x) reads each message into a buffer of 65,535 bytes and closes the channel when
/// one does not fit (found pairing dcsend with Pion, `tests/interop.rs`); one byte less costs
/// nothing measurable and works with both.
const UNSTATED_MAX_MESSAGE: usize = 65_535;

/// The size of our messages: `configured`, or less when the peer's `a=max-message-size`
/// (`stated`; 0 is "any size", RFC 8841) or its absence asks for less.
fn message_bytes(configured: usize, stated: Option<usize>) -> usize {
    match stated {
        Some(0) => configured,
        Some(max) => configured.min(max),
        None => configured.min(UNSTATED_MAX_MESSAGE),
    }
}

pub(super) async fn run(cfg: SendConfig, cancel: CancellationToken) -> anyhow::Result<()> {
    let items = inputs(&cfg)?;
    let files = items.iter().filter(|i| i.is_file()).count();
    let total: Option<u64> = items.iter().filter(|i| i.is_file()).map(|i| i.size).sum();
    let label = match items.as_slice() {
        [one] => one.label(),
        _ => format!("{files} files"),
    };

    let conn = connect(&cfg.connect, &cancel).await?;
    let chunk_bytes = message_bytes(cfg.chunk_bytes, conn.remote_max_message);
    if chunk_bytes < cfg.chunk_bytes {
        tracing::info!("the peer accepts messages of at most {chunk_bytes} bytes");
    }
    let meter = Arc::new(Meter::new(total));
    meter.set_files_total(files as u64);
    let reporter = Reporter::start(
        meter.clone(),
        ReportOptions {
            live: cfg.output.progress,
            stats: cfg.output.stats.clone(),
            label,
            threshold_bytes: cfg.threshold.initial_bytes(),
            show_buffer: true,
            path: conn.path,
        },
    )?;
    let opts = SendOptions {
        threshold: cfg.threshold,
        chunk_bytes,
        raw: cfg.raw,
        compress: cfg.compress,
        // Longer than webrtc-rs's SCTP backoff can stall a live association (its RTO doubles
        // from 1 s up to 60 s): a relay that drops bursts can go quiet for half a minute and
        // then deliver. A peer that is really gone is noticed by the liveness check first.
        finish_timeout: Duration::from_secs(120),
    };
    let stuck = abort_if_stuck(conn.channel.clone(), "sender", cancel.clone());
    let result =
        send(conn.channel.clone(), conn.events, items, &opts, meter.clone(), cancel.clone()).await;
    stuck.abort();
    let (sha, verified) = match &result {
        Ok(out) => (single_sha(out.items.iter().map(|i| i.sha256.as_str())), out.verified),
        Err(_) => (None, false),
    };
    let summary = Connected::hang_up(&conn.channel, &conn.peer, reporter, sha, verified).await;
    let out = result.context("sending")?;
    if cfg.output.summary {
        let mut tail = if out.verified {
            ", verified by the receiver (SHA-256)".to_owned()
        } else {
            ", acknowledged by the peer's SCTP stack (raw: not verified)".to_owned()
        };
        // A partial copy that did not match was announced when it happened.
        let resumed: u64 = out.items.iter().map(|i| i.resumed_bytes).sum();
        tail += &resume_tail(resumed, "prefix verified");
        let (payload, wire) = out
            .items
            .iter()
            .fold((0, 0), |(p, w), i| (p + i.bytes - i.resumed_bytes, w + i.wire_bytes));
        if cfg.compress && payload > 0 {
            tail += &format!(
                ", compressed to {:.0}% on the wire",
                wire as f64 * 100.0 / payload as f64
            );
        }
        let verb = if out.items.len() > 1 {
            format!("sent {} files,", out.items.len())
        } else {
            "sent".into()
        };
        // Payload bytes, not the fewer that travelled compressed.
        let bytes = if cfg.compress { payload } else { summary.bytes };
        eprintln!("{}", summary_line(&verb, bytes, summary.seconds, &tail, summary.path.as_ref()));
    }
    Ok(())
}

/// The items to send: each FILE, and each folder's tree (saying on stderr what in it is
/// skipped: links are not followed, devices and FIFOs not read).
fn inputs(cfg: &SendConfig) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    for input in &cfg.inputs {
        match input {
            Some(dir) if dir.is_dir() => {
                let tree = Tree::walk(dir).context("reading the folder")?;
                for Skipped { path, what } in &tree.skipped {
                    eprintln!("dcsend: skipping {}: {what}", path.display());
                }
                items.extend(tree.items);
            }
            input => items.push(Item::open(input.clone()).context("opening the input")?),
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_fit_what_the_peer_states_or_what_pion_reads_when_it_states_nothing() {
        let ours = 64 * 1024;
        assert_eq!(message_bytes(ours, Some(262_144)), ours);
        assert_eq!(message_bytes(ours, Some(16_384)), 16_384);
        assert_eq!(message_bytes(ours, Some(0)), ours);
        assert_eq!(message_bytes(ours, None), 65_535);
        assert_eq!(message_bytes(16_384, None), 16_384);
    }
}
