//! `dcsend doctor`: what this machine's network allows, in plain words or as JSON.
//!
//! The probes and the verdict live in `peer::doctor`; this file turns the flags into the
//! servers to ask and prints the report. The servers are an [`IceConfig`]: those a signaling
//! server hands out (`--peer URL`) are added to the flags' own without touching the probes.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

use crate::cli::{DoctorArgs, config};
use crate::error::UsageError;
use crate::peer::doctor::{self, Mapping, Report};
use crate::peer::{IceConfig, PeerOptions};
use crate::signal::client::Client;
use crate::signal::ice::IceServer;
use crate::signal::url::PeerUrl;

/// Runs every probe and prints the report: text on stdout, or one JSON object with --json.
pub async fn run(args: DoctorArgs) -> anyhow::Result<()> {
    let turn_password =
        config::turn_password(args.turn_password_file.as_deref()).map_err(anyhow::Error::msg)?;
    let servers = match &args.peer {
        Some(url) => handed_out(url).await?,
        None => Vec::new(),
    };
    if args.stun.is_empty() && args.turn.is_empty() && servers.is_empty() {
        eprintln!(
            "dcsend: no STUN or TURN server given: only local candidates are listed \
             (add --peer URL of a signaling server that hands them out, or --stun URL, twice to \
             test the NAT, and --turn URL)"
        );
    }
    let opts = PeerOptions {
        bind: vec![args.bind.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))],
        ice: IceConfig {
            stun: args.stun,
            turn: args.turn,
            turn_user: args.turn_user,
            turn_password,
            relay_only: false,
            servers,
        },
        socket_buffer_bytes: 0,
        liveness_timeout: Duration::from_secs(10),
    };
    let report = doctor::examine(&opts).await.context("gathering host candidates")?;
    if args.json {
        println!("{}", serde_json::to_string(&report).context("encoding the report")?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// The ICE servers the signaling server at `url` hands out: joins a throwaway room (a
/// signaling server gives TURN credentials only to a peer in a room) and leaves it.
async fn handed_out(url: &str) -> anyhow::Result<Vec<IceServer>> {
    let url = PeerUrl::parse(url).map_err(|e| UsageError(format!("--peer: {e}")))?;
    if url.room.is_some() {
        return Err(UsageError(
            "--peer: give the server's address without a room (doctor opens its own)".into(),
        )
        .into());
    }
    let on_notice = Box::new(|notice: &str| eprintln!("dcsend: {notice}"));
    let client = Client::join(&url.completed(), on_notice).await?;
    let servers = client.ice_servers().to_vec();
    client.leave().await;
    if servers.is_empty() {
        eprintln!("dcsend: {} hands out no STUN or TURN server", url.base());
    }
    Ok(servers)
}

/// The report as text, one finding per line, the verdict last.
fn render(r: &Report) -> String {
    let mut out = String::new();
    out.push_str("local candidates:\n");
    if r.candidates.is_empty() {
        out.push_str("  (none)\n");
    }
    for c in &r.candidates {
        out.push_str(&format!("  {c}\n"));
    }
    if let Some(e) = &r.gathering_error {
        out.push_str(&format!("  (not every server took part in gathering: {e})\n"));
    }
    for s in &r.stun {
        match (s.mapped, s.rtt_ms) {
            (Some(mapped), Some(rtt)) => {
                out.push_str(&format!("{}: public address {mapped}, {rtt:.1} ms\n", s.url))
            }
            _ => {
                out.push_str(&format!("{}: {}\n", s.url, s.error.as_deref().unwrap_or("no answer")))
            }
        }
    }
    let mapping = match r.mapping {
        Mapping::Unknown => "not tested (needs answers from two STUN servers or ports)",
        Mapping::NoNat => "no NAT (the public address is this machine's own)",
        Mapping::EndpointIndependent => {
            "one public port for both destinations (endpoint-independent, a \"cone\" NAT)"
        }
        Mapping::EndpointDependent => {
            "a new public port per destination (endpoint-dependent, a \"symmetric\" NAT)"
        }
    };
    out.push_str(&format!("NAT mapping: {mapping}\n"));
    for t in &r.turn {
        out.push_str(&format!("{}: {}\n", t.url, t.detail));
    }
    out.push_str(&format!("verdict: {}\n", r.verdict));
    out
}
