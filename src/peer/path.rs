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

/// The selected candidate pair, as kinds. Serialises as
/// `{"local":"relay","remote":"host","protocol":"udp"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Path {
    /// Our side of the pair.
    pub local: CandidateKind,
    /// The peer's side of the pair.
    pub remote: CandidateKind,
    /// The pair's transport.
    pub protocol: Protocol,
}

impl Path {
    /// The compact form the live view shows: `relay/host` (local/remote).
    pub fn short(&self) -> String {
        format!("{}/{}", self.local, self.remote)
    }
}

/// "local relay, remote host (udp)": the form the summary line ends with.
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "local {}, remote {} ({})", self.local, self.remote, self.protocol)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELAY_HOST: Path =
        Path { local: CandidateKind::Relay, remote: CandidateKind::Host, protocol: Protocol::Udp };

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
