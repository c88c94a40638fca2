//! `dcsend signal`: bind, announce the address, serve until Ctrl-C or SIGTERM.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::cli::config::SignalConfig;
use crate::signal::server;

/// Runs the server; `cancel` is fired by Ctrl-C, and SIGTERM fires it too.
pub async fn run(cfg: SignalConfig, cancel: CancellationToken) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let on_term = cancel.clone();
    tokio::spawn(async move {
        if term.recv().await.is_some() {
            on_term.cancel();
        }
    });
    let limits = cfg.limits;
    tracing::info!(
        %addr,
        room_ttl = %humantime::format_duration(limits.idle_ttl),
        max_rooms = limits.max_rooms,
        max_rooms_per_client = limits.max_rooms_per_client,
        "signaling server started"
    );
    // The last line on stderr until a client comes: scripts wait for it (port 0 works).
    eprintln!("listening on http://{addr}");
    server::serve(listener, limits, cancel).await.context("serving")?;
    tracing::info!("stopped");
    Ok(())
}
