//! Orchestration: each subcommand wires the parts together and owns the cancellation
//! token that Ctrl-C and SIGTERM fire. anyhow context is added here, not in the core.

mod bench;
mod connect;
mod docs;
mod doctor;
mod recv;
mod send;
mod signal;

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command};
use crate::error::{Stop, stopped_by};

/// How long the runtime's shutdown waits for blocking threads once the run is over.
///
/// Reads and writes run on blocking threads, and one can stay blocked for good: a producer
/// that never writes (`tail -f | dcsend`), a consumer that never reads, a FIFO. Dropping a
/// tokio runtime waits for every such thread, so the process would outlive the run by as long
/// as the pipe stays silent. After the run nothing they do matters (a successful run has
/// joined its own), so they are left to die with the process.
const SHUTDOWN_WAIT: Duration = Duration::from_millis(100);

/// After SIGINT or SIGTERM, how long the run has to tell the peer, clean up and return
/// before the process exits anyway. The orderly path takes well under a second (the `abort`
/// waits at most 0.5 s, closing the connection a little more); this bounds a step that blocks
/// a runtime thread instead of awaiting.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Runs the parsed command line to completion.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(async move {
        let cancel = CancellationToken::new();
        watch_signals(cancel.clone())?;
        match cli.command {
            Some(Command::Recv(args)) => recv::run(args.try_into()?, cancel).await,
            Some(Command::Send(args)) => send::run(args.try_into()?, cancel).await,
            Some(Command::Bench(args)) => bench::run(args.try_into()?, cancel).await,
            Some(Command::Signal(args)) => signal::run(args.try_into()?, cancel).await,
            Some(Command::Doctor(args)) => doctor::run(args).await,
            Some(Command::Completions(args)) => docs::completions(args.shell),
            Some(Command::Man(args)) => docs::man(&args.dir),
            None => send::run(cli.send.try_into()?, cancel).await,
        }
    });
    runtime.shutdown_timeout(SHUTDOWN_WAIT);
    result
}

/// SIGINT (Ctrl-C) and SIGTERM stop the run the same way: the first one is noted (for the
/// exit status and the reason sent to the peer) and cancels the run, which tells the peer
/// with an `abort` and returns; if that has not happened within [`STOP_GRACE`], or a second
/// signal comes, the process exits at once with 130 or 143.
fn watch_signals(cancel: CancellationToken) -> std::io::Result<()> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        let stop = tokio::select! {
            Some(()) = int.recv() => Stop::Interrupt,
            Some(()) = term.recv() => Stop::Terminate,
            else => return,
        };
        stopped_by(stop);
        cancel.cancel();
        let status = i32::from(stop.exit_status());
        // A plain thread: it must fire even when every runtime thread is stuck.
        std::thread::spawn(move || {
            std::thread::sleep(STOP_GRACE);
            eprintln!("dcsend: {}; still stopping after {STOP_GRACE:?}, exiting", Stop::shown());
            std::process::exit(status);
        });
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        std::process::exit(status);
    });
    Ok(())
}

/// Tells the peer why we stop when the run cannot: if `cancel` fired and the transfer has
/// not returned [`STOP_GRACE_ABORT`] later, a step is blocking its runtime thread (an `open`
/// on a FIFO), so this task sends the `abort` itself before the watchdog in [`watch_signals`]
/// ends the process. Abort the returned handle once the transfer has returned: it sent its
/// own `abort` then, if one was due.
fn abort_if_stuck(
    channel: crate::peer::Channel,
    side: &'static str,
    cancel: CancellationToken,
) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        cancel.cancelled().await;
        tokio::time::sleep(STOP_GRACE_ABORT).await;
        let reason = format!("the {side} was {}", Stop::shown());
        crate::transfer::session::send_abort(&channel, &reason).await;
    })
    .abort_handle()
}

/// When [`abort_if_stuck`] steps in: early enough that its `abort` (which waits at most
/// 0.5 s to leave) is out before [`STOP_GRACE`] ends the process.
const STOP_GRACE_ABORT: Duration = STOP_GRACE.saturating_sub(Duration::from_millis(700));

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
