//! `dcsend signal`: raise the descriptor limit, bind, announce the address, serve until Ctrl-C
//! or SIGTERM.

use anyhow::Context;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use crate::cli::config::SignalConfig;
use crate::signal::ice::IceAdvert;
use crate::signal::store::Store;
use crate::signal::store::memory::MemoryStore;
use crate::signal::store::redis::RedisStore;
use crate::signal::{server, stun};

/// Descriptors kept for everything that is not a client connection: the listener, the log,
/// the runtime's epoll and wakers, a connection being turned away. Generous on purpose.
const FD_HEADROOM: u64 = 64;

/// Runs the server until `cancel` fires (Ctrl-C or SIGTERM: `cmd::run` watches both).
pub async fn run(cfg: SignalConfig, cancel: CancellationToken) -> anyhow::Result<()> {
    let mut conns = cfg.conns;
    let fds = raise_fd_limit();
    let fit = usize::try_from(fds.saturating_sub(FD_HEADROOM)).unwrap_or(usize::MAX).max(1);
    if conns.max_connections > fit {
        tracing::warn!(
            fd_limit = fds,
            "--max-connections {} does not fit the file-descriptor limit; using {fit} \
             (raise the hard limit, e.g. `ulimit -Hn` or systemd's LimitNOFILE, for more)",
            conns.max_connections
        );
        conns.max_connections = fit;
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let limits = cfg.limits;
    tracing::info!(
        %addr,
        room_ttl = %humantime::format_duration(limits.idle_ttl),
        claim_timeout = %humantime::format_duration(limits.claim_timeout),
        presence_timeout = %humantime::format_duration(limits.presence_timeout),
        max_rooms = limits.max_rooms,
        max_rooms_per_client = limits.max_rooms_per_client,
        client_prefix = %format_args!("/{} /{}", limits.prefix.v4, limits.prefix.v6),
        max_connections = conns.max_connections,
        max_connections_per_client = conns.max_connections_per_client,
        header_timeout = %humantime::format_duration(conns.header_timeout),
        idle_timeout = %humantime::format_duration(conns.idle_timeout),
        fd_limit = fds,
        "signaling server started"
    );
    let store: Arc<dyn Store> = match &cfg.store {
        None => Arc::new(MemoryStore::new(limits)),
        Some(url) => {
            let store = RedisStore::open(url, limits).context("--store")?;
            match store.ping().await {
                Ok(()) => tracing::info!(store = %redacted(url), "rooms are kept in Redis"),
                Err(e) => tracing::warn!(
                    store = %redacted(url),
                    "{e}: serving 503 until Redis answers (the store connects when it can)"
                ),
            }
            Arc::new(store)
        }
    };
    let mut stun_sockets = Vec::new();
    for want in &cfg.stun {
        let sock = tokio::net::UdpSocket::bind(want)
            .await
            .with_context(|| format!("answering STUN on {want} (--stun)"))?;
        let bound = sock.local_addr().context("reading the bound STUN address")?;
        tracing::info!(%bound, "answering STUN Binding requests");
        eprintln!("answering STUN on udp://{bound}");
        stun_sockets.push(sock);
    }
    let ice = IceAdvert {
        stun_urls: cfg.stun_urls.clone(),
        stun_ports: stun_sockets
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .map(|a| a.port())
            .collect(),
        turn: cfg.turn.clone(),
    };
    if let Some(turn) = &ice.turn {
        // The URLs and the lifetime, never the secret.
        tracing::info!(
            urls = ?turn.urls,
            ttl = %humantime::format_duration(turn.ttl),
            "handing out TURN credentials"
        );
    }
    let stun = (!stun_sockets.is_empty()).then(|| {
        tokio::spawn(stun::serve(stun_sockets, stun::RateLimitConfig::default(), cancel.clone()))
    });
    // The last line on stderr until a client comes: scripts wait for it (port 0 works).
    eprintln!("listening on http://{addr}");
    let served =
        server::serve_with(listener, store, conns, ice, cancel.clone()).await.context("serving");
    cancel.cancel();
    if let Some(stun) = stun {
        stun.await.context("the STUN responder")?.context("answering STUN")?;
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Raises the soft limit on open files to the hard limit (a common soft limit is 1024, which
/// a thousand idle connections exhaust) and returns the limit now in force.
fn raise_fd_limit() -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft >= hard {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => hard,
        Err(e) => {
            tracing::debug!("raising the open-file limit from {soft} to {hard}: {e}");
            soft
        }
    }
}

/// A store URL without its password, for the log.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}
