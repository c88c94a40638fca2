//! The network path a connection took: the kinds of the selected ICE candidate pair's two
//! candidates and its transport. A plain value: it imports nothing from webrtc, so progress
//! (stats, live view, `--stats` JSON) can carry it without knowing the WebRTC stack.

use std::fmt;

use serde::Serialize;

/// How an ICE candidate's address was obtained (RFC 8445 §5.1.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CandidateKind {
    /// An address of a local interface: a direct path.
    Host,
    /// The address a NAT mapped us to, learnt from a STUN server.
    Srflx,
    /// An address a connectivity check revealed (a NAT mapping no STUN server reported).
    Prflx,
    /// An address on a TURN server that relays every packet.
    Relay,
}

impl CandidateKind {
    /// The name ICE uses in SDP (`typ host`) and the stats API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Srflx => "srflx",
            Self::Prflx => "prflx",
            Self::Relay => "relay",
        }
    }
}

impl fmt::Display for CandidateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport of a candidate pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// UDP (every pair dcsend makes today).
    Udp,
    /// TCP (ICE-TCP).
    Tcp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
        })
    }
}

/// Why a connection went through a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relayed {
    /// Only relayed candidates were allowed here (`--relay-only`).
    RelayOnly,
    /// The peer offered only relayed candidates (it runs with `--relay-only`, or has no
    /// other).
    PeerRelayOnly,
    /// Both sides offered direct candidates and ICE checked their pairs, but none succeeded
    /// before a relayed pair was chosen (a symmetric NAT or a firewall on the way).
    NoDirectPairSucceeded,
}

impl Relayed {
    /// Why `path` is relayed, if it is: `relay_only` is our own `--relay-only`, `remote` the
    /// kinds of the candidates the peer offered. ICE prefers every direct pair to a relayed
    /// one (RFC 8445 §5.1.2: relayed candidates get the lowest type preference) and checks
    /// them all, so a relayed pair is chosen only when no direct pair could be or succeeded.
    pub fn explain(path: &Path, relay_only: bool, remote: &[CandidateKind]) -> Option<Relayed> {
        if path.local != CandidateKind::Relay && path.remote != CandidateKind::Relay {
            return None;
        }
        Some(if relay_only {
            Relayed::RelayOnly
        } else if remote.iter().all(|k| *k == CandidateKind::Relay) {
            Relayed::PeerRelayOnly
        } else {
            Relayed::NoDirectPairSucceeded
        })
    }

    /// In words, for the summary line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RelayOnly => "relayed because of --relay-only",
            Self::PeerRelayOnly => "relayed: the peer offered only relayed candidates",
            Self::NoDirectPairSucceeded => "relayed: no direct pair succeeded",
        }
    }
}

/// The selected candidate pair, as kinds. Serialises as
/// `{"local":"relay","remote":"host","protocol":"udp","relayed":"no-direct-pair-succeeded"}`
/// (`relayed` only when the pair is relayed and the reason known).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Path {
    /// Our side of the pair.
    pub local: CandidateKind,
    /// The peer's side of the pair.
    pub remote: CandidateKind,
    /// The pair's transport.
    pub protocol: Protocol,
    /// Why the pair is relayed, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relayed: Option<Relayed>,
}

impl Path {
    /// The compact form the live view shows: `relay/host` (local/remote).
    pub fn short(&self) -> String {
        format!("{}/{}", self.local, self.remote)
    }
}

/// "local relay, remote host (udp)", then why it is relayed when it is: the form the summary
/// line ends with.
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "local {}, remote {} ({})", self.local, self.remote, self.protocol)?;
        match self.relayed {
            Some(why) => write!(f, ", {}", why.as_str()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELAY_HOST: Path = Path {
        local: CandidateKind::Relay,
        remote: CandidateKind::Host,
        protocol: Protocol::Udp,
        relayed: None,
    };

    #[test]
    fn a_relayed_path_says_why() {
        use CandidateKind::*;
        let direct = Path { local: Host, remote: Srflx, ..RELAY_HOST };
        assert_eq!(Relayed::explain(&direct, false, &[Host, Srflx]), None);
        assert_eq!(Relayed::explain(&direct, true, &[Relay]), None, "not relayed, whatever asked");
        let explain = |relay_only, remote: &[CandidateKind]| {
            Relayed::explain(&RELAY_HOST, relay_only, remote).unwrap()
        };
        assert_eq!(explain(true, &[Host, Relay]), Relayed::RelayOnly);
        assert_eq!(explain(false, &[Relay]), Relayed::PeerRelayOnly);
        assert_eq!(explain(false, &[Host, Srflx, Relay]), Relayed::NoDirectPairSucceeded);
        let why = Path { relayed: Some(Relayed::NoDirectPairSucceeded), ..RELAY_HOST };
        assert_eq!(
            why.to_string(),
            "local relay, remote host (udp), relayed: no direct pair succeeded"
        );
        assert_eq!(
            serde_json::to_string(&why).unwrap(),
            r#"{"local":"relay","remote":"host","protocol":"udp","relayed":"no-direct-pair-succeeded"}"#
        );
        let own = Path { relayed: Some(Relayed::RelayOnly), ..RELAY_HOST };
        assert!(own.to_string().ends_with("(udp), relayed because of --relay-only"));
    }

    #[test]
    fn displays_local_then_remote() {
        assert_eq!(RELAY_HOST.to_string(), "local relay, remote host (udp)");
        assert_eq!(RELAY_HOST.short(), "relay/host");
        let tcp = Path { protocol: Protocol::Tcp, ..RELAY_HOST };
        assert_eq!(tcp.to_string(), "local relay, remote host (tcp)");
    }

    #[test]
    fn kinds_use_the_ice_names() {
        let all =
            [CandidateKind::Host, CandidateKind::Srflx, CandidateKind::Prflx, CandidateKind::Relay];
        let names: Vec<String> = all.iter().map(|k| k.to_string()).collect();
        assert_eq!(names, ["host", "srflx", "prflx", "relay"]);
        for k in all {
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", k.as_str()));
        }
    }

    #[test]
    fn serialises_as_one_flat_object() {
        assert_eq!(
            serde_json::to_string(&RELAY_HOST).unwrap(),
            r#"{"local":"relay","remote":"host","protocol":"udp"}"#
        );
    }
}
