//! What `dcsend doctor` measures about this machine's network, and the verdict drawn from it.
//!
//! - the local candidates ICE would offer (a real peer connection gathers them, with the
//!   same STUN/TURN servers a transfer would use);
//! - each STUN server's answer from one UDP socket: the mapped (public) address and the
//!   round-trip time;
//! - whether the NAT keeps one public port for two destinations (endpoint-independent
//!   mapping, RFC 4787 §4.1): the same socket asks two STUN servers (or one server on two
//!   ports, e.g. `dcsend signal --stun 0.0.0.0:3478 --stun 0.0.0.0:3479`) and compares the ports;
//! - whether each TURN server grants an allocation ([`super::turn_probe`]).
//!
//! [`verdict`] is pure. The servers come in an [`IceConfig`], with those a signaling server
//! hands out (`dcsend doctor --peer URL`) among them.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::net::UdpSocket;

use super::stun::{binding_request, mapped_address};
use super::turn_probe::{self, Credentials, Verdict as TurnVerdict};
use super::{IceConfig, Peer, PeerOptions};

/// Retransmissions of a Binding request, as offsets from the first send.
const RETRANSMIT_AT: [Duration; 4] = [
    Duration::from_millis(0),
    Duration::from_millis(250),
    Duration::from_millis(750),
    Duration::from_millis(1500),
];

/// One STUN server's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StunAnswer {
    /// The URL as given.
    pub url: String,
    /// The address it resolved to, when it did.
    pub server: Option<SocketAddr>,
    /// Our address as the server saw it; `None` when it did not answer.
    pub mapped: Option<SocketAddr>,
    /// Round-trip time of the answered request, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Why there is no answer.
    pub error: Option<String>,
}

/// Whether one local port kept one public port toward two destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mapping {
    /// Not measured: fewer than two STUN servers (or ports) answered.
    Unknown,
    /// The mapped address is our own: no NAT on the way.
    NoNat,
    /// The same public address and port for both destinations (a "cone" NAT).
    EndpointIndependent,
    /// A different public port (or address) per destination (a "symmetric" NAT).
    EndpointDependent,
}

/// One TURN server's answer to an Allocate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TurnAnswer {
    /// The URL as given.
    pub url: String,
    /// Whether it granted an allocation.
    pub allocates: bool,
    /// What it said otherwise.
    pub detail: String,
}

/// The one-line conclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outlook {
    /// Direct connections are likely.
    DirectLikely,
    /// A relay will be needed (and one answered).
    RelayNeeded,
    /// A relay will be needed, and none allocated.
    RelayNeededNoneWorks,
    /// Not enough was measured to tell.
    Unknown,
}

impl Outlook {
    /// The sentence doctor prints.
    pub fn sentence(self) -> &'static str {
        match self {
            Outlook::DirectLikely => "direct connections are likely",
            Outlook::RelayNeeded => "a relay will be needed (the TURN server works)",
            Outlook::RelayNeededNoneWorks => {
                "a relay will be needed, and no TURN server allocated one (give --turn)"
            }
            Outlook::Unknown => {
                "cannot tell: give two STUN servers (or one on two ports) to test the NAT"
            }
        }
    }
}

/// Everything doctor found; serialises as its `--json` output.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Candidates ICE would offer, as `kind address` (`host 192.168.1.2:40000`); only the
    /// host ones when gathering with the servers failed.
    pub candidates: Vec<String>,
    /// Why gathering with the servers failed, when it did.
    pub gathering_error: Option<String>,
    /// The STUN answers, in the order given.
    pub stun: Vec<StunAnswer>,
    /// The NAT's mapping behaviour.
    pub mapping: Mapping,
    /// The TURN answers.
    pub turn: Vec<TurnAnswer>,
    /// The conclusion.
    pub outlook: Outlook,
    /// [`Outlook::sentence`].
    pub verdict: &'static str,
}

/// The mapping behaviour from the answers of one socket bound to `local` (pure).
pub fn mapping(local: SocketAddr, answers: &[StunAnswer]) -> Mapping {
    let mut mapped = answers.iter().filter_map(|a| Some((a.server?, a.mapped?)));
    let Some((first_server, first)) = mapped.next() else { return Mapping::Unknown };
    if first.ip() == local.ip() && (local.port() == 0 || first.port() == local.port()) {
        return Mapping::NoNat;
    }
    // A second answer from a different destination (address or port).
    match mapped.find(|(server, _)| *server != first_server) {
        None => Mapping::Unknown,
        Some((_, other)) if other == first => Mapping::EndpointIndependent,
        Some(_) => Mapping::EndpointDependent,
    }
}

/// The conclusion from the mapping and the TURN answers (pure).
pub fn verdict(mapping: Mapping, turn: &[TurnAnswer]) -> Outlook {
    match mapping {
        Mapping::NoNat | Mapping::EndpointIndependent => Outlook::DirectLikely,
        Mapping::EndpointDependent if turn.iter().any(|t| t.allocates) => Outlook::RelayNeeded,
        Mapping::EndpointDependent => Outlook::RelayNeededNoneWorks,
        Mapping::Unknown => Outlook::Unknown,
    }
}

/// `stun:HOST[:PORT]` -> (host, port), by webrtc-rs's own ICE URL parser.
fn stun_server(url: &str) -> Option<(String, u16)> {
    use rtc_ice::url::{SchemeType, Url};
    let url = Url::parse_url(url).ok()?;
    (url.scheme == SchemeType::Stun && !url.host.is_empty())
        .then(|| (url.host.trim_start_matches('[').trim_end_matches(']').to_owned(), url.port))
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let mut addrs = tokio::net::lookup_host((host, port)).await.map_err(|e| e.to_string())?;
    // IPv4 first: the socket below is an IPv4 one.
    let all: Vec<SocketAddr> = addrs.by_ref().collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| format!("{host} has no address"))
}

/// One Binding request from `sock` to `server`, retransmitted; the mapped address and RTT.
async fn binding(sock: &UdpSocket, server: SocketAddr) -> Option<(SocketAddr, Duration)> {
    let (id, req) = binding_request();
    let start = tokio::time::Instant::now();
    let mut buf = vec![0u8; 1500];
    for i in 0..RETRANSMIT_AT.len() - 1 {
        tokio::time::sleep_until(start + RETRANSMIT_AT[i]).await;
        let sent = tokio::time::Instant::now();
        sock.send_to(&req, server).await.ok()?;
        let until = start + RETRANSMIT_AT[i + 1];
        while let Ok(Ok((n, from))) = tokio::time::timeout_at(until, sock.recv_from(&mut buf)).await
        {
            if from == server
                && let Some(mapped) = mapped_address(&buf[..n], id)
            {
                return Some((mapped, sent.elapsed()));
            }
        }
    }
    None
}

/// Asks every STUN server of `ice` (flags' and handed out) from one socket bound to `bind`.
async fn ask_stun(bind: SocketAddr, ice: &IceConfig) -> (SocketAddr, Vec<StunAnswer>) {
    let urls = ice.stun_servers();
    let sock = match UdpSocket::bind(bind).await {
        Ok(sock) => sock,
        Err(e) => {
            let error = Some(format!("binding {bind}: {e}"));
            let answers = urls.iter().map(|url| StunAnswer {
                url: url.clone(),
                server: None,
                mapped: None,
                rtt_ms: None,
                error: error.clone(),
            });
            return (bind, answers.collect());
        }
    };
    let local = sock.local_addr().unwrap_or(bind);
    let mut answers = Vec::new();
    for url in &urls {
        let mut answer =
            StunAnswer { url: url.clone(), server: None, mapped: None, rtt_ms: None, error: None };
        match stun_server(url) {
            None => answer.error = Some("not a stun:HOST[:PORT] URL".into()),
            Some((host, port)) => match resolve(&host, port).await {
                Err(e) => answer.error = Some(format!("resolving {host}: {e}")),
                Ok(server) => {
                    answer.server = Some(server);
                    match binding(&sock, server).await {
                        Some((mapped, rtt)) => {
                            answer.mapped = Some(mapped);
                            answer.rtt_ms = Some(rtt.as_secs_f64() * 1e3);
                        }
                        None => answer.error = Some("no answer within 1.5 s".into()),
                    }
                }
            },
        }
        answers.push(answer);
    }
    (local, answers)
}

/// Asks every TURN server of `ice` (flags' and handed out, each with its credentials) for an
/// allocation.
async fn ask_turn(ice: &IceConfig) -> Vec<TurnAnswer> {
    let mut answers = Vec::new();
    for turn in ice.turn_servers() {
        let url = &turn.url;
        let (allocates, detail) = match turn_probe::udp_server(url) {
            None => (false, "only turn: over UDP is probed".to_owned()),
            Some((host, port)) => match resolve(&host, port).await {
                Err(e) => (false, format!("resolving {host}: {e}")),
                Ok(server) => {
                    let creds = Credentials { user: &turn.user, password: &turn.password };
                    match turn_probe::probe(server, &creds).await {
                        Ok(TurnVerdict::Granted) => (true, "allocation granted".to_owned()),
                        Ok(TurnVerdict::NoAnswer) => (false, "no answer".to_owned()),
                        Ok(TurnVerdict::Refused { code: 401, .. }) => {
                            (false, "401: the user name or password was refused".to_owned())
                        }
                        Ok(TurnVerdict::Refused { code, reason }) => {
                            (false, format!("refused: {code} {reason}"))
                        }
                        Err(e) => (false, e),
                    }
                }
            },
        };
        answers.push(TurnAnswer { url: url.clone(), allocates, detail });
    }
    answers
}

/// The candidates a peer connection with `opts` gathers, as `kind address`, and why the
/// gathering went on without some server, if it did.
async fn candidates(opts: &PeerOptions) -> Result<(Vec<String>, Option<String>), super::PeerError> {
    let mut peer = Peer::new(opts).await?;
    let offer = peer.offer().await;
    let cut = peer.gathering_cut().map(str::to_owned);
    peer.close(Duration::from_secs(1)).await;
    Ok((candidate_lines(&offer?.sdp), cut))
}

/// `a=candidate:` lines as `kind address:port`, component 1 only (pure).
pub fn candidate_lines(sdp: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in sdp.lines().filter_map(|l| l.trim().strip_prefix("a=candidate:")) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // foundation component transport priority address port "typ" kind ...
        if f.len() >= 8 && f[1] == "1" && f[6] == "typ" {
            let item = format!("{} {}:{} ({})", f[7], f[4], f[5], f[2].to_lowercase());
            if !out.contains(&item) {
                out.push(item);
            }
        }
    }
    out
}

/// Runs every probe with the servers in `opts.ice` and draws the verdict.
pub async fn examine(opts: &PeerOptions) -> Result<Report, super::PeerError> {
    let bind = opts.bind.first().copied().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    let ((local, stun), turn, candidates) =
        tokio::join!(ask_stun(bind, &opts.ice), ask_turn(&opts.ice), candidates(opts));
    let mapping = mapping(local, &stun);
    let outlook = verdict(mapping, &turn);
    // A server that does not answer is left out of the gathering after a quiet while (or,
    // relay-only, stops it): the probes above say which; list at least the host candidates.
    let (candidates, gathering_error) = match candidates {
        Ok(found) => found,
        Err(e) => {
            let bare = PeerOptions { ice: IceConfig::default(), ..opts.clone() };
            (self::candidates(&bare).await?.0, Some(e.to_string()))
        }
    };
    Ok(Report {
        candidates,
        gathering_error,
        stun,
        mapping,
        turn,
        outlook,
        verdict: outlook.sentence(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(server: &str, mapped: Option<&str>) -> StunAnswer {
        StunAnswer {
            url: format!("stun:{server}"),
            server: Some(server.parse().unwrap()),
            mapped: mapped.map(|m| m.parse().unwrap()),
            rtt_ms: mapped.map(|_| 1.0),
            error: None,
        }
    }

    #[test]
    fn the_mapping_is_judged_from_two_destinations() {
        let local: SocketAddr = "192.168.1.2:40000".parse().unwrap();
        let a = |m| answer("10.0.0.1:3478", m);
        let b = |m| answer("10.0.0.1:3479", m);
        let cone = [a(Some("10.0.0.2:40000")), b(Some("10.0.0.2:40000"))];
        assert_eq!(mapping(local, &cone), Mapping::EndpointIndependent);
        let sym = [a(Some("10.0.0.2:10814")), b(Some("10.0.0.2:64545"))];
        assert_eq!(mapping(local, &sym), Mapping::EndpointDependent);
        assert_eq!(mapping(local, &[a(Some("10.0.0.2:40000"))]), Mapping::Unknown);
        assert_eq!(mapping(local, &[a(Some("10.0.0.2:1")), b(None)]), Mapping::Unknown);
        let same_server = [a(Some("10.0.0.2:1")), a(Some("10.0.0.2:2"))];
        assert_eq!(mapping(local, &same_server), Mapping::Unknown, "one destination twice");
        let public = [a(Some("192.168.1.2:40000"))];
        assert_eq!(mapping(local, &public), Mapping::NoNat);
        assert_eq!(mapping(local, &[]), Mapping::Unknown);
    }

    #[test]
    fn the_verdict_follows_the_mapping_and_the_relay() {
        let turn = |allocates| TurnAnswer { url: "turn:x".into(), allocates, detail: "".into() };
        assert_eq!(verdict(Mapping::EndpointIndependent, &[]), Outlook::DirectLikely);
        assert_eq!(verdict(Mapping::NoNat, &[turn(false)]), Outlook::DirectLikely);
        assert_eq!(verdict(Mapping::EndpointDependent, &[turn(true)]), Outlook::RelayNeeded);
        assert_eq!(
            verdict(Mapping::EndpointDependent, &[turn(false)]),
            Outlook::RelayNeededNoneWorks
        );
        assert_eq!(verdict(Mapping::Unknown, &[turn(true)]), Outlook::Unknown);
    }

    #[test]
    fn candidates_are_listed_once_per_address() {
        let sdp = "v=0\r\n\
            a=candidate:1 1 udp 2130706431 192.168.1.2 40000 typ host\r\n\
            a=candidate:1 2 udp 2130706431 192.168.1.2 40000 typ host\r\n\
            a=candidate:2 1 UDP 1694498815 10.0.0.2 40000 typ srflx raddr 0.0.0.0 rport 40000\r\n";
        assert_eq!(
            candidate_lines(sdp),
            ["host 192.168.1.2:40000 (udp)", "srflx 10.0.0.2:40000 (udp)"]
        );
    }
}
