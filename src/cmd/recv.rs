//! `dcsend recv`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::connect::{Connected, connect};
use super::{abort_if_stuck, resume_tail, single_sha};
use crate::cli::config::{RecvConfig, RecvTarget};
use crate::error::{UsageError, shown_reason};
use crate::progress::meter::Meter;
use crate::progress::{ReportOptions, Reporter, summary_line};
use crate::transfer::recv::{Destination, Received, RecvOptions, receive};

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
            label: first_label(&cfg.target),
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
        let verb = received_what(&cfg.target, &out.items);
        eprintln!(
            "{}",
            summary_line(&verb, summary.bytes, summary.seconds, &tail, summary.path.as_ref())
        );
    }
    Ok(())
}

/// The label the live view starts with, before the sender names an item: where the data
/// goes.
fn first_label(target: &RecvTarget) -> String {
    match target {
        RecvTarget::Stdout => "stdout".into(),
        RecvTarget::File(p) => p.file_name().map_or("recv".into(), |n| n.to_string_lossy().into()),
        RecvTarget::Dir(_) | RecvTarget::Here | RecvTarget::Discard => "recv".into(),
    }
}

/// The summary's opening, up to the figures: what was received and where it is now, e.g.
/// "received 'photo.jpg':", "received 3 files into 'downloads/':", "received to stdout:".
/// Names may come from the peer, so every path is quoted with control characters and bidi
/// overrides escaped ([`shown_reason`]).
fn received_what(target: &RecvTarget, items: &[Received]) -> String {
    let quoted = |p: &Path| format!("'{}'", shown_reason(&p.to_string_lossy()));
    let files = match items.len() {
        1 => String::new(),
        n => format!("{n} files "),
    };
    match (target, items) {
        (RecvTarget::Stdout, _) => format!("received {files}to stdout:"),
        (RecvTarget::Discard, _) => format!("received {files}and discarded (--sink):"),
        (_, [Received { path: Some(path), .. }]) => format!("received {}:", quoted(path)),
        (RecvTarget::Dir(dir), _) => format!("received {files}into {}:", quoted(dir)),
        (RecvTarget::Here, _) => format!("received {files}into the current folder:"),
        (RecvTarget::File(path), _) => format!("received {files}into {}:", quoted(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(path: Option<&str>) -> Received {
        Received {
            path: path.map(PathBuf::from),
            bytes: 1,
            sha256: String::new(),
            resumed_bytes: 0,
            discarded_bytes: 0,
        }
    }

    #[test]
    fn the_summary_names_what_was_saved_and_where() {
        let one = [item(Some("downloads/photo.jpg"))];
        let two = [item(Some("a")), item(Some("b"))];
        let dir = RecvTarget::Dir("downloads/".into());
        assert_eq!(received_what(&dir, &one), "received 'downloads/photo.jpg':");
        assert_eq!(received_what(&dir, &two), "received 2 files into 'downloads/':");
        assert_eq!(
            received_what(&RecvTarget::Here, &[item(Some("photo.jpg"))]),
            "received 'photo.jpg':"
        );
        assert_eq!(
            received_what(&RecvTarget::Here, &two),
            "received 2 files into the current folder:"
        );
        let file = RecvTarget::File("copy of x.bin".into());
        assert_eq!(
            received_what(&file, &[item(Some("copy of x.bin"))]),
            "received 'copy of x.bin':"
        );
        assert_eq!(received_what(&RecvTarget::Stdout, &[item(None)]), "received to stdout:");
        assert_eq!(received_what(&RecvTarget::Stdout, &two), "received 2 files to stdout:");
        assert_eq!(
            received_what(&RecvTarget::Discard, &[item(None)]),
            "received and discarded (--sink):"
        );
    }

    /// A peer's name reaches the terminal escaped: no escape sequence, line break or bidi
    /// override ("gpj.exe" shown as "exe.jpg") survives.
    #[test]
    fn a_peer_s_name_in_the_summary_is_escaped() {
        let name = "a\u{1b}[2Jb\u{202e}gpj.exe";
        let line = received_what(&RecvTarget::Here, &[item(Some(name))]);
        assert_eq!(line, r"received 'a\u{1b}[2Jb\u{202e}gpj.exe':");
        assert!(!line.chars().any(|c| c.is_control() || c == '\u{202e}'), "{line:?}");
    }

    #[test]
    fn the_live_view_starts_labelled_with_where_the_data_goes() {
        assert_eq!(first_label(&RecvTarget::Stdout), "stdout");
        assert_eq!(first_label(&RecvTarget::File("out/copy.bin".into())), "copy.bin");
        assert_eq!(first_label(&RecvTarget::Here), "recv");
    }
}
