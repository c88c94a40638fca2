//! Orchestration: each subcommand wires the parts together and owns the cancellation
//! token that Ctrl-C fires. anyhow context is added here, not in the core.

mod bench;
mod connect;
mod docs;
mod recv;
mod send;
mod signal;

use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command};

/// Runs the parsed command line to completion.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        watch_ctrl_c(cancel.clone());
        match cli.command {
            Some(Command::Recv(args)) => recv::run(args.try_into()?, cancel).await,
            Some(Command::Send(args)) => send::run(args.try_into()?, cancel).await,
            Some(Command::Bench(args)) => bench::run(args.try_into()?, cancel).await,
            Some(Command::Signal(args)) => signal::run(args.try_into()?, cancel).await,
            Some(Command::Completions(args)) => docs::completions(args.shell),
            Some(Command::Man(args)) => docs::man(&args.dir),
            None => send::run(cli.send.try_into()?, cancel).await,
        }
    })
}

/// First Ctrl-C: cancel (abort the peer, clean up, exit 130). Second: exit at once.
fn watch_ctrl_c(cancel: CancellationToken) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}

/// The digest to report for a run: that of its only item, if it had exactly one.
fn single_sha<'a>(mut shas: impl Iterator<Item = &'a str>) -> Option<String> {
    match (shas.next(), shas.next()) {
        (Some(one), None) => Some(one.to_owned()),
        _ => None,
    }
}

/// "; resumed at 20.0 MiB (WHY)" when a resume kept `bytes` (in all, over several files),
/// else nothing.
fn resume_tail(bytes: u64, why: &str) -> String {
    if bytes == 0 {
        return String::new();
    }
    format!("; resumed at {:.1} MiB ({why})", bytes as f64 / 1048576.0)
}
