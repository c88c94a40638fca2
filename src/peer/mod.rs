//! The WebRTC peer: builds the `RTCPeerConnection`, runs the offer/answer exchange with
//! complete (non-trickle) ICE gathering, and hands out the open data channel.
//!
//! `peer` is the **only** module that imports the `webrtc` crate (pinned to the 0.21 line,
//! the `poll()` event API). Nothing webrtc-typed leaves it: descriptions go out as
//! [`SessionDesc`], the channel as [`Channel`] + [`ChannelEvent`].

mod channel;
pub mod doctor;
pub mod path;
mod runtime;
pub mod stun;
pub mod turn_probe;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rtc::peer_connection::transport::RTCDtlsTransportState;
use rtc_ice::mdns::MulticastDnsMode;
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::{
    DataChannel, DataChannelEvent, RTCDataChannelInit, RTCDataChannelState,
};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateType, RTCIceConnectionState, RTCIceGatheringState,
    RTCIceProtocol, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnectionState,
    RTCSessionDescription, SettingEngineBuilder,
};

pub use channel::{Channel, ChannelEvent, ChannelPort, Outbound};
pub use path::{CandidateKind, Path, Protocol, Relayed};

use crate::signal::codec::{SdpKind, SessionDesc};
use crate::signal::ice::IceServer;

/// The label of the one data channel dcsend opens.
pub const CHANNEL_LABEL: &str = "dcsend";

/// ICE servers and policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceConfig {
    /// `stun:host:port` URLs.
    pub stun: Vec<String>,
    /// `turn:host:port` URLs; they share the credentials below.
    pub turn: Vec<String>,
    /// TURN user name.
    pub turn_user: Option<String>,
    /// TURN password (never from argv alone; see `cli`).
    pub turn_password: Option<String>,
    /// Use only relayed candidates.
    pub relay_only: bool,
    /// Servers handed out by a signaling server, each with its own credentials; used
    /// besides the ones above.
    pub servers: Vec<IceServer>,
}

impl IceConfig {
    /// The STUN servers given: `stun`, then the `stun:` URLs of `servers`, each once.
    pub fn stun_servers(&self) -> Vec<String> {
        let mut urls = self.stun.clone();
        for url in self.servers.iter().flat_map(|s| &s.urls) {
            if (url.starts_with("stun:") || url.starts_with("stuns:")) && !urls.contains(url) {
                urls.push(url.clone());
            }
        }
        urls
    }

    /// Every TURN server with the credentials to use it: `turn` with `turn_user`, then the
    /// `turn:`/`turns:` URLs of `servers` with theirs.
    pub fn turn_servers(&self) -> Vec<TurnServer> {
        let ours = self.turn.iter().map(|url| TurnServer {
            url: url.clone(),
            user: self.turn_user.clone().unwrap_or_default(),
            password: self.turn_password.clone().unwrap_or_default(),
        });
        let given = self.servers.iter().flat_map(|s| {
            s.urls.iter().filter(|u| u.starts_with("turn:") || u.starts_with("turns:")).map(|url| {
                TurnServer {
                    url: url.clone(),
                    user: s.username.clone().unwrap_or_default(),
                    password: s.credential.clone().unwrap_or_default(),
                }
            })
        });
        ours.chain(given).collect()
    }
}

/// A TURN server and the credentials to use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnServer {
    /// `turn:HOST:PORT` (or `turns:`).
    pub url: String,
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

/// Everything needed to build a peer.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// Local UDP addresses to bind (`0.0.0.0:0` = every non-loopback interface).
    pub bind: Vec<SocketAddr>,
    /// STUN/TURN servers.
    pub ice: IceConfig,
    /// Kernel send/receive buffer to ask for on each UDP socket (0 = kernel default).
    pub socket_buffer_bytes: usize,
    /// Silence from the peer after which the connection is declared failed.
    pub liveness_timeout: Duration,
}

/// Errors of the peer layer. Exit code 3 except [`PeerError::BadRemote`] (2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The WebRTC stack could not be set up locally.
    #[error("could not set up WebRTC: {0}")]
    Setup(String),
    /// The peer's description was refused by the WebRTC stack.
    #[error("the peer's {kind} was refused: {reason}")]
    BadRemote {
        /// offer or answer
        kind: SdpKind,
        /// why
        reason: String,
    },
    /// ICE/DTLS/SCTP did not come up.
    #[error("could not connect to the peer: {0}")]
    Connect(String),
    /// ICE connected, and the DTLS handshake on top of it failed.
    #[error("the secure connection (DTLS) could not be set up: {0}")]
    Handshake(String),
    /// ICE connected, then failed before the data channel opened.
    #[error("lost the peer while connecting: {0}")]
    Lost(String),
    /// `--relay-only`, and no TURN server gave a relayed candidate: why, per server.
    #[error("no relayed candidate with --relay-only: {0}")]
    NoRelay(String),
    /// The channel or connection is gone.
    #[error("the data channel closed: {0}")]
    ChannelClosed(String),
}

/// Connection state as dcsend cares about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Not connected yet.
    Connecting,
    /// ICE + DTLS are up.
    Connected,
    /// Temporarily no traffic.
    Disconnected,
    /// Gave up.
    Failed,
    /// Closed.
    Closed,
}

/// Why the connection failed, in words: which step failed.
///
/// The peer connection fails when ICE or DTLS does. A DTLS transport that failed means the
/// handshake did, once ICE had connected: a certificate that does not match the fingerprint in
/// the peer's description (a description altered on its way: an attack, or a broken copy), a
/// fatal alert from the peer (which refused ours), or handshake packets that were never
/// answered. webrtc 0.21 does not hand out the handshake's own reason (its log has it, `-v`).
/// Otherwise ICE failed: never connected, it found no working path; connected, it lost the
/// peer.
fn connect_failure(dtls_failed: bool, ice_connected: bool) -> PeerError {
    if dtls_failed {
        PeerError::Handshake(
            "the peers reached each other, but the handshake failed: a certificate did not match \
             the fingerprint in a token (altered on its way, by a broken copy or by someone \
             intercepting), or the handshake's packets were lost; -v shows which"
                .into(),
        )
    } else if ice_connected {
        PeerError::Lost(
            "the peers reached each other (ICE connected), then the other side stopped \
             answering: it may have given up, or the network between you went down"
                .into(),
        )
    } else {
        PeerError::Connect(
            "ICE failed: no candidate pair works (both peers behind NAT? try --stun or --turn)"
                .into(),
        )
    }
}

struct Handler {
    state: watch::Sender<PeerState>,
    /// Whether ICE has connected at some point.
    ice_connected: watch::Sender<bool>,
    gathered: watch::Sender<bool>,
    remote_channels: mpsc::Sender<Arc<dyn DataChannel>>,
}

// webrtc callbacks do no work: they only publish into channels (STYLE §4).
#[async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        tracing::debug!("ICE connection state: {state}");
        if matches!(state, RTCIceConnectionState::Connected | RTCIceConnectionState::Completed) {
            self.ice_connected.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!("peer connection state: {state}");
        let ours = match state {
            RTCPeerConnectionState::Connected => PeerState::Connected,
            RTCPeerConnectionState::Disconnected => PeerState::Disconnected,
            RTCPeerConnectionState::Failed => PeerState::Failed,
            RTCPeerConnectionState::Closed => PeerState::Closed,
            _ => PeerState::Connecting,
        };
        self.state.send_replace(ours);
    }

    async fn on_data_channel(&self, data_channel: Arc<dyn DataChannel>) {
        if self.remote_channels.try_send(data_channel).is_err() {
            tracing::warn!("ignoring an extra data channel opened by the peer");
        }
    }
}

/// One side of the connection.
pub struct Peer {
    pc: Arc<dyn PeerConnection>,
    state: watch::Receiver<PeerState>,
    /// Whether ICE has connected at some point, for [`connect_failure`].
    ice_connected: watch::Receiver<bool>,
    gathered: watch::Receiver<bool>,
    remote_channels: mpsc::Receiver<Arc<dyn DataChannel>>,
    local_channel: Option<Arc<dyn DataChannel>>,
    /// The STUN/TURN servers asked for, and whether only relayed candidates may be used.
    ice: IceConfig,
    /// Why the last description went out before gathering completed, if it did.
    gathering_cut: Option<String>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer").field("state", &*self.state.borrow()).finish()
    }
}

fn setup<E: std::fmt::Display>(e: E) -> PeerError {
    PeerError::Setup(e.to_string())
}

/// The SCTP receive window dcsend asks for, when the UDP receive buffer can hold it: 16 MiB.
///
/// The window bounds the bytes in flight, so a path runs at most window / RTT: webrtc-rs's
/// default 1 MiB caps 20 ms at 52 MB/s and 60 ms at 17.5 MB/s (measured 41 and 15.0 MB/s on an
/// emulated WAN, against TCP's 109-123 and 41-43). 16 MiB keeps 100 MB/s up to 160 ms. Memory:
/// the receiver's SCTP stack may hold up to one window of out-of-order or unread data.
pub const RECEIVE_WINDOW_BYTES: usize = 16 * 1024 * 1024;

/// webrtc-rs's own window (rtc-sctp's `INITIAL_RECV_BUF_SIZE`), the floor: dcsend never
/// advertises less than it did before it sized the window.
const DEFAULT_RECEIVE_WINDOW_BYTES: usize = 1024 * 1024;

/// The SCTP receive window for a UDP receive buffer of `granted_bytes` (as asked, see
/// `runtime::granted_receive_buffer`): no larger than the buffer, so that a window's worth
/// of datagrams arriving in one burst fits in the socket instead of being dropped (each drop
/// costs a retransmission timeout), and within `DEFAULT_RECEIVE_WINDOW_BYTES ..=
/// RECEIVE_WINDOW_BYTES`.
pub fn receive_window_for(granted_bytes: usize) -> usize {
    granted_bytes.clamp(DEFAULT_RECEIVE_WINDOW_BYTES, RECEIVE_WINDOW_BYTES)
}

/// Logs, once per process, that the kernel capped the UDP buffer and so the SCTP window.
fn hint_capped_window(asked: usize, granted: usize, window: usize) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing::info!(
            "the kernel granted a {granted}-byte UDP receive buffer of the {asked} asked for \
             (net.core.rmem_max), so the SCTP receive window is {window} bytes: at most \
             {:.0} MB/s at 50 ms RTT. For long fast paths raise the limits, e.g. `sysctl -w \
             net.core.rmem_max=33554432 net.core.wmem_max=33554432`",
            window as f64 / 0.05 / 1e6
        );
    });
}

/// Log filter directives for webrtc-rs messages that are no error to a user, added to the
/// default filter (`logging::init`; -v and RUST_LOG show them). The peer-connection driver
/// logs every failed send at ERROR ("Failed to write packet ... Network is unreachable"),
/// one line per unroutable candidate pair per check: ICE failing single pairs is normal, and
/// a connection that fails as a whole is reported by dcsend itself.
pub const QUIET_LOG_DIRECTIVES: &[&str] = &["webrtc::peer_connection::driver=off"];

/// How long ICE gathering may take. Host candidates take milliseconds; STUN/TURN may
/// need a round trip or two.
const GATHER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long gathering may go without a new candidate before the description goes out with
/// the candidates it has, when only STUN servers are asked: a STUN answer is one round trip.
/// A STUN server that never answers (a machine offline, a LAN with no way out, a firewall
/// that drops UDP) otherwise holds the description until `GATHER_TIMEOUT`, so the LAN peer
/// next door would wait 10 s (and dcsend then gave up). A server slower than this is left
/// out; the host candidates, and the other servers' answers, still go.
const GATHER_QUIET_STUN: Duration = Duration::from_millis(500);

/// [`GATHER_QUIET_STUN`] when TURN servers are asked too: an allocation takes two round trips
/// or more (the 401 challenge, then the authenticated request), and a relay is what a peer
/// behind a symmetric NAT cannot do without.
const GATHER_QUIET_TURN: Duration = Duration::from_millis(1500);

/// How often gathering is looked at for new candidates while it runs.
const GATHER_POLL: Duration = Duration::from_millis(20);

/// How the wait for gathering ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gathering {
    /// Every server answered or gave up.
    Complete,
    /// No new candidate for the quiet window: going on with what there is.
    Quiet(Duration),
    /// [`GATHER_TIMEOUT`] passed.
    TimedOut,
}

/// The quiet window after which gathering with `ice`'s servers goes on without the servers
/// that have not answered; `None` to wait for all of them: without servers (host candidates
/// only, which never wait on the network) and with `--relay-only`, which has nothing to go on
/// with until a TURN server answers.
fn quiet_window(ice: &IceConfig) -> Option<Duration> {
    let turn = !ice.turn_servers().is_empty();
    if ice.relay_only {
        None
    } else if turn {
        Some(GATHER_QUIET_TURN)
    } else if !stun_urls(ice).is_empty() {
        Some(GATHER_QUIET_STUN)
    } else {
        None
    }
}

/// Pace of ICE connectivity checks. The crate's default (200 ms) costs about three
/// intervals before the pair is nominated, 600 ms of connection setup even on loopback.
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// Checks per candidate pair: 28 x 50 ms keeps the crate's 1.4 s budget per pair.
const ICE_BINDING_REQUESTS: u16 = 28;

/// How often [`kick_driver`] wakes the webrtc driver between "connected" and the open channel.
const KICK_INTERVAL: Duration = Duration::from_millis(2);

/// Wakes the webrtc driver so that it sends the packets it has queued.
///
/// webrtc 0.21's driver loop drains the core's writes *before* it handles the core's events,
/// then sleeps until its next timer or packet. The SCTP INIT (queued when the DTLS handshake
/// completes) and the DCEP DATA_CHANNEL_OPEN (queued when the SCTP association comes up) are
/// both queued while an event is handled, so each waits for the ICE agent's next tick, 200 ms
/// once connected: 400 ms of a ~450 ms setup on loopback.
///
/// Re-applying the current configuration changes nothing (same certificates, servers and
/// policy), but it is the one `PeerConnection` call that posts an event to the driver without
/// a data channel (the answerer has none until DCEP opens one). The event wakes the driver,
/// and its next loop iteration sends what was queued.
async fn kick_driver(pc: &dyn PeerConnection) {
    let config = pc.get_configuration().await;
    if let Err(e) = pc.set_configuration(config).await {
        tracing::trace!("waking the webrtc driver: {e}");
    }
}

/// Multicast DNS resolves the `NAME.local` host candidates that browsers hand out. webrtc-rs
/// joins 224.0.0.251 when the peer connection starts and fails the whole connection when it
/// cannot, which happens on a host with no multicast route (no default route, a bare network
/// namespace: ENODEV). There, mDNS could not work anyway, so it is turned off instead; a
/// `.local` candidate is then ignored and ICE falls back to peer-reflexive candidates.
fn mdns_mode() -> MulticastDnsMode {
    const MDNS_GROUP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(224, 0, 0, 251);
    let probe = std::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| s.join_multicast_v4(&MDNS_GROUP, &std::net::Ipv4Addr::UNSPECIFIED));
    match probe {
        Ok(()) => MulticastDnsMode::QueryOnly,
        Err(e) => {
            tracing::debug!("multicast DNS is off: cannot join {MDNS_GROUP}: {e}");
            MulticastDnsMode::Disabled
        }
    }
}

/// The STUN servers to ask: `ice.stun`, then (unless relay-only) a `stun:` URL for each UDP
/// `turn:` URL not already among them. A TURN server answers Binding requests on its port
/// (RFC 8656 §2: a TURN server is a STUN server), and webrtc-rs does not make a server-
/// reflexive candidate out of the mapped address of the TURN Allocate response (browsers do):
/// without this `--turn` alone has only host and relay candidates, and two peers behind
/// cone NATs pair relay/relay where a direct path exists.
///
/// The `stun:` URLs a signaling server handed out (`ice.servers`) come after `ice.stun`.
pub fn stun_urls(ice: &IceConfig) -> Vec<String> {
    let mut urls = ice.stun_servers();
    if ice.relay_only {
        return urls;
    }
    for url in ice.turn_servers().into_iter().filter_map(|t| stun_for_turn(&t.url)) {
        if !urls.contains(&url) {
            urls.push(url);
        }
    }
    urls
}

/// `turn:HOST[:PORT][?transport=udp]` -> `stun:HOST[:PORT]`; `None` for `turns:` and for
/// TURN over TCP (whose port may not answer UDP at all).
fn stun_for_turn(url: &str) -> Option<String> {
    let rest = url.strip_prefix("turn:")?;
    let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
    let udp = query.split('&').all(|kv| !kv.starts_with("transport=") || kv == "transport=udp");
    (udp && !hostport.is_empty()).then(|| format!("stun:{hostport}"))
}

impl Peer {
    /// Builds a peer connection bound to `opts.bind`.
    pub async fn new(opts: &PeerOptions) -> Result<Self, PeerError> {
        let (state_tx, state) = watch::channel(PeerState::Connecting);
        let (ice_tx, ice_connected) = watch::channel(false);
        let (gathered_tx, gathered) = watch::channel(false);
        let (channels_tx, remote_channels) = mpsc::channel(4);

        let mut servers = Vec::new();
        let stun = stun_urls(&opts.ice);
        if !stun.is_empty() {
            servers.push(RTCIceServer { urls: stun, ..Default::default() });
        }
        for turn in opts.ice.turn_servers() {
            servers.push(RTCIceServer {
                urls: vec![turn.url],
                username: turn.user,
                credential: turn.password,
            });
        }
        let mut config = RTCConfigurationBuilder::new().with_ice_servers(servers);
        if opts.ice.relay_only {
            config = config.with_ice_transport_policy(RTCIceTransportPolicy::Relay);
        }
        // Half the liveness budget to "disconnected", the other half to "failed".
        let half = opts.liveness_timeout / 2;
        // The window follows the socket buffer the kernel really grants (read back on a probe
        // socket: the ones webrtc opens get the same request and the same limits).
        let granted = runtime::granted_receive_buffer(opts.socket_buffer_bytes);
        let window = receive_window_for(granted);
        if granted < opts.socket_buffer_bytes.min(RECEIVE_WINDOW_BYTES) {
            hint_capped_window(opts.socket_buffer_bytes, granted, window);
        }
        tracing::debug!("UDP receive buffer {granted} bytes, SCTP receive window {window} bytes");
        let settings = SettingEngineBuilder::new()
            .with_sctp_max_receive_buffer_size(window as u32)
            .with_ice_timeouts(Some(half), Some(half), Some(Duration::from_millis(500)))
            .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_BINDING_REQUESTS))
            .with_multicast_dns_mode(mdns_mode())
            .build();
        let bind: Vec<String> = opts.bind.iter().map(|a| a.to_string()).collect();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(config.build())
            .with_media_engine(MediaEngine::default())
            .with_setting_engine(settings)
            .with_handler(Arc::new(Handler {
                state: state_tx,
                ice_connected: ice_tx,
                gathered: gathered_tx,
                remote_channels: channels_tx,
            }))
            .with_runtime(Arc::new(runtime::BufferedRuntime::new(opts.socket_buffer_bytes)))
            .with_udp_addrs(bind)
            .build()
            .await
            .map_err(setup)?;
        Ok(Self {
            pc: Arc::new(pc),
            state,
            ice_connected,
            gathered,
            remote_channels,
            local_channel: None,
            ice: opts.ice.clone(),
            gathering_cut: None,
        })
    }

    /// Creates the data channel and an offer; returns it once ICE gathering is complete.
    pub async fn offer(&mut self) -> Result<SessionDesc, PeerError> {
        // Reliable and ordered (the defaults): end-of-data is a message, so order matters.
        let init = RTCDataChannelInit { ordered: true, ..Default::default() };
        let dc = self.pc.create_data_channel(CHANNEL_LABEL, Some(init)).await.map_err(setup)?;
        self.local_channel = Some(dc);
        let offer = self.pc.create_offer(None).await.map_err(setup)?;
        self.pc.set_local_description(offer).await.map_err(setup)?;
        self.local_description().await
    }

    /// Applies the peer's offer and returns our answer once ICE gathering is complete.
    pub async fn answer(&mut self, offer: &SessionDesc) -> Result<SessionDesc, PeerError> {
        let remote = to_rtc(offer)?;
        self.pc
            .set_remote_description(remote)
            .await
            .map_err(|e| PeerError::BadRemote { kind: SdpKind::Offer, reason: e.to_string() })?;
        let answer = self.pc.create_answer(None).await.map_err(setup)?;
        self.pc.set_local_description(answer).await.map_err(setup)?;
        self.local_description().await
    }

    /// Applies the peer's answer to our offer.
    pub async fn accept_answer(&mut self, answer: &SessionDesc) -> Result<(), PeerError> {
        let remote = to_rtc(answer)?;
        self.pc
            .set_remote_description(remote)
            .await
            .map_err(|e| PeerError::BadRemote { kind: SdpKind::Answer, reason: e.to_string() })
    }

    /// Waits for ICE gathering: until it completes, until no new candidate has come for the
    /// [`quiet_window`] (with at least one candidate), or until [`GATHER_TIMEOUT`].
    async fn gather(&mut self) -> Gathering {
        let quiet = quiet_window(&self.ice);
        let start = tokio::time::Instant::now();
        let (mut seen, mut last_new) = (0, start);
        loop {
            // (The watch guard is dropped at once: holding it across an await is not Send.)
            let step = quiet.map_or(GATHER_TIMEOUT, |_| GATHER_POLL);
            if tokio::time::timeout(step, self.gathered.wait_for(|g| *g)).await.is_ok() {
                return Gathering::Complete;
            }
            let now = tokio::time::Instant::now();
            if now - start >= GATHER_TIMEOUT {
                return Gathering::TimedOut;
            }
            let Some(quiet) = quiet else { continue };
            let sdp = self.pc.local_description().await.map(|d| d.sdp).unwrap_or_default();
            let count = sdp.matches("a=candidate:").count();
            if count > seen {
                (seen, last_new) = (count, now);
            }
            if seen > 0 && now - last_new >= quiet {
                return Gathering::Quiet(quiet);
            }
        }
    }

    /// Why the last description went out before every STUN/TURN server had answered (a
    /// server that did not answer within the quiet window), if it did.
    pub fn gathering_cut(&self) -> Option<&str> {
        self.gathering_cut.as_deref()
    }

    /// Every STUN and TURN server gathering asks, by URL, for messages.
    fn server_urls(&self) -> Vec<String> {
        let turn = self.ice.turn_servers().into_iter().map(|t| t.url);
        stun_urls(&self.ice).into_iter().chain(turn).collect()
    }

    async fn local_description(&mut self) -> Result<SessionDesc, PeerError> {
        // Tokens do not trickle: wait until every candidate is in the description, or until
        // the servers that answer have answered.
        let gathering = self.gather().await;
        if let Gathering::Quiet(quiet) = gathering {
            let servers = self.server_urls();
            let why = format!(
                "ICE candidate gathering was still waiting after {} without a new candidate; \
                 going on without the servers that have not answered (of {})",
                humantime::format_duration(quiet),
                servers.join(", ")
            );
            tracing::info!("{why}");
            self.gathering_cut = Some(why);
        }
        if gathering == Gathering::TimedOut {
            let servers = self.server_urls();
            return Err(if servers.is_empty() {
                PeerError::Setup(format!(
                    "ICE candidate gathering did not finish within {GATHER_TIMEOUT:?}"
                ))
            } else {
                PeerError::Connect(format!(
                    "ICE candidate gathering did not finish within {GATHER_TIMEOUT:?}: no answer \
                     from {} (is the address right and the server up?)",
                    servers.join(", ")
                ))
            });
        }
        let desc = self
            .pc
            .local_description()
            .await
            .ok_or_else(|| PeerError::Setup("no local description".into()))?;
        if self.ice.relay_only && !desc.sdp.contains(" typ relay") {
            return Err(PeerError::NoRelay(self.why_no_relay().await));
        }
        let kind = match desc.sdp_type.to_string().as_str() {
            "offer" => SdpKind::Offer,
            _ => SdpKind::Answer,
        };
        Ok(SessionDesc { kind, sdp: desc.sdp })
    }

    /// Explains a gathering without a relayed candidate: asks each TURN server for an
    /// allocation ourselves ([`turn_probe`]), since webrtc only logs why its own failed.
    /// Names servers and the user, never the password.
    async fn why_no_relay(&self) -> String {
        let mut reasons = Vec::new();
        for turn in self.ice.turn_servers() {
            let (url, user) = (&turn.url, &turn.user);
            let creds = turn_probe::Credentials { user, password: &turn.password };
            let Some((host, port)) = turn_probe::udp_server(url) else {
                reasons
                    .push(format!("{url} is not supported (TURN over UDP only: turn:HOST:PORT)"));
                continue;
            };
            let server = match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(mut addrs) => addrs.next(),
                Err(e) => {
                    reasons.push(format!("{url}: cannot resolve {host}: {e}"));
                    continue;
                }
            };
            let Some(server) = server else {
                reasons.push(format!("{url}: {host} has no address"));
                continue;
            };
            reasons.push(match turn_probe::probe(server, &creds).await {
                Ok(turn_probe::Verdict::Refused { code: 401, .. }) => format!(
                    "the TURN server {url} refused the credentials of user {user:?} (401 \
                     Unauthorized): check --turn-user and the password (DCSEND_TURN_PASSWORD or \
                     --turn-password-file)"
                ),
                Ok(turn_probe::Verdict::Refused { code, reason }) => format!(
                    "the TURN server {url} refused an allocation for user {user:?}: {code} {reason}"
                ),
                Ok(turn_probe::Verdict::NoAnswer) => {
                    format!("no answer from the TURN server {url} (is the address right and the server up?)")
                }
                Ok(turn_probe::Verdict::Granted) => format!(
                    "the TURN server {url} grants user {user:?} an allocation, yet none was \
                     gathered (run with -v for webrtc's log)"
                ),
                Err(e) => format!("{url}: could not ask for an allocation: {e}"),
            });
        }
        reasons.join("; ")
    }

    /// Waits until the data channel is open, the connection fails, or `timeout` passes.
    pub async fn open_channel(
        &mut self,
        timeout: Duration,
    ) -> Result<(Channel, mpsc::Receiver<ChannelEvent>), PeerError> {
        let state = self.state.clone();
        // From "connected" (DTLS up) until the channel is open, wake the driver every few ms so
        // the SCTP and DCEP packets it queues go out at once (see `kick_driver`). Bounded by
        // this function: it stops when the channel opens, the connection fails, or time is up.
        let kick = {
            let pc = self.pc.clone();
            let mut state = self.state.clone();
            async move {
                if state.wait_for(|s| *s == PeerState::Connected).await.is_ok() {
                    loop {
                        kick_driver(&*pc).await;
                        tokio::time::sleep(KICK_INTERVAL).await;
                    }
                }
                std::future::pending::<()>().await;
            }
        };
        let wait = async {
            let dc = match self.local_channel.clone() {
                Some(dc) => dc,
                None => self.remote_channels.recv().await.ok_or_else(|| {
                    PeerError::Connect(
                        "the connection ended before the peer opened a channel".into(),
                    )
                })?,
            };
            if dc.ready_state().await.ok() != Some(RTCDataChannelState::Open) {
                loop {
                    match dc.poll().await {
                        Some(DataChannelEvent::OnOpen) => break,
                        Some(DataChannelEvent::OnClose) | None => {
                            return Err(PeerError::Connect(
                                "the data channel closed before it opened".into(),
                            ));
                        }
                        Some(_) => {}
                    }
                }
            }
            Ok(dc)
        };
        let failed = async {
            let mut state = state;
            let _ = state.wait_for(|s| matches!(s, PeerState::Failed | PeerState::Closed)).await;
        };
        let dc = tokio::select! {
            dc = wait => dc?,
            () = kick => unreachable!("the kick loop ends only when dropped"),
            // The core reports the connection's state before the ICE state that caused it, so
            // the transports are asked which of them failed.
            () = failed => {
                let dtls_failed = self.dtls_state().await == Some(RTCDtlsTransportState::Failed);
                return Err(connect_failure(dtls_failed, *self.ice_connected.borrow()));
            }
            () = tokio::time::sleep(timeout) => {
                return Err(PeerError::Connect(format!(
                    "the data channel did not open within {}s (connection state: {:?})",
                    timeout.as_secs_f32(),
                    *self.state.borrow()
                )));
            }
        };
        Ok(Channel::start(dc, self.state.clone()))
    }

    /// The DTLS transport's state; `None` before it exists.
    async fn dtls_state(&self) -> Option<RTCDtlsTransportState> {
        self.pc.sctp().await?.transport().state().await.ok()
    }

    /// The selected candidate pair's kinds, once ICE has selected one (after
    /// [`Peer::open_channel`]); `None` before, or if a side's kind is unknown.
    ///
    /// Read from the ICE transport (`sctp -> dtls -> ice`), not from `get_stats()`: in
    /// webrtc 0.21 the stats report keys candidates as `RTCLocalIceCandidate_<id>` while the
    /// pair refers to the bare `<id>`, and peer-reflexive remote candidates (learnt from a
    /// check, not from the SDP) never get a stats entry at all.
    pub async fn path(&self) -> Option<Path> {
        let ice = self.pc.sctp().await?.transport().ice_transport();
        let pair = match ice.get_selected_candidate_pair().await {
            Ok(pair) => pair?,
            Err(e) => {
                tracing::debug!("reading the selected candidate pair: {e}");
                return None;
            }
        };
        tracing::debug!("selected candidate pair: {} <-> {}", pair.local(), pair.remote());
        let protocol = match pair.local().protocol {
            RTCIceProtocol::Tcp => Protocol::Tcp,
            _ => Protocol::Udp,
        };
        let mut path = Path {
            local: candidate_kind(pair.local().typ)?,
            remote: candidate_kind(pair.remote().typ)?,
            protocol,
            relayed: None,
        };
        // Why it is relayed, from what the peer offered (see `Relayed::explain`).
        let remote = ice.get_remote_candidates().await.unwrap_or_default();
        let offered: Vec<CandidateKind> =
            remote.iter().filter_map(|c| candidate_kind(c.typ)).collect();
        path.relayed = Relayed::explain(&path, self.ice.relay_only, &offered);
        Some(path)
    }

    /// Closes the connection; waits at most `timeout`.
    pub async fn close(&self, timeout: Duration) {
        match tokio::time::timeout(timeout, self.pc.close()).await {
            Ok(Err(e)) => tracing::debug!("closing the peer connection: {e}"),
            Err(_) => tracing::debug!("closing the peer connection timed out"),
            Ok(Ok(())) => {}
        }
    }
}

fn candidate_kind(typ: RTCIceCandidateType) -> Option<CandidateKind> {
    match typ {
        RTCIceCandidateType::Host => Some(CandidateKind::Host),
        RTCIceCandidateType::Srflx => Some(CandidateKind::Srflx),
        RTCIceCandidateType::Prflx => Some(CandidateKind::Prflx),
        RTCIceCandidateType::Relay => Some(CandidateKind::Relay),
        _ => None,
    }
}

fn to_rtc(desc: &SessionDesc) -> Result<RTCSessionDescription, PeerError> {
    let parsed = match desc.kind {
        SdpKind::Offer => RTCSessionDescription::offer(desc.sdp.clone()),
        SdpKind::Answer => RTCSessionDescription::answer(desc.sdp.clone()),
    };
    parsed.map_err(|e| PeerError::BadRemote { kind: desc.kind, reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each way a connection fails names its own step: no working path (NAT), a failed
    /// handshake once the peers reached each other (DTLS), a peer lost after both were up.
    #[test]
    fn a_failure_names_the_step_that_failed() {
        let text =
            |dtls_failed, ice_connected| connect_failure(dtls_failed, ice_connected).to_string();
        let never = text(false, false);
        assert!(never.contains("ICE failed") && never.contains("NAT"), "{never}");
        let dtls = text(true, true);
        assert!(dtls.starts_with("the secure connection (DTLS) could not be set up"), "{dtls}");
        assert!(dtls.contains("fingerprint") && !dtls.contains("NAT"), "{dtls}");
        let lost = text(false, true);
        assert!(lost.contains("(ICE connected), then") && !lost.contains("NAT"), "{lost}");
    }

    #[test]
    fn a_udp_turn_server_is_also_asked_for_stun() {
        let ice = |stun: &[&str], turn: &[&str], relay_only| IceConfig {
            stun: stun.iter().map(|s| s.to_string()).collect(),
            turn: turn.iter().map(|s| s.to_string()).collect(),
            relay_only,
            ..Default::default()
        };
        let turn = ["turn:relay.example:3478", "turn:10.0.0.1?transport=udp"];
        assert_eq!(
            super::stun_urls(&ice(&["stun:s.example"], &turn, false)),
            ["stun:s.example", "stun:relay.example:3478", "stun:10.0.0.1"]
        );
        // Not twice, not for TCP or TLS, not when only the relay may be used.
        let tcp = ["turn:a:3478", "turn:b:3478?transport=tcp", "turns:c:5349"];
        assert_eq!(super::stun_urls(&ice(&["stun:a:3478"], &tcp, false)), ["stun:a:3478"]);
        assert!(super::stun_urls(&ice(&[], &turn, true)).is_empty());
    }

    /// A signaling server's servers come after the flags' own, each TURN URL with its own
    /// credentials; its TURN server is asked for STUN too, unless relay-only.
    #[test]
    fn servers_from_a_signaling_server_add_to_the_flags() {
        let mut ice = IceConfig {
            stun: vec!["stun:mine:3478".into()],
            turn: vec!["turn:mine:3478".into()],
            turn_user: Some("me".into()),
            turn_password: Some("pw".into()),
            servers: vec![
                IceServer { urls: vec!["stun:sig:3478".into()], username: None, credential: None },
                IceServer {
                    urls: vec!["turn:relay:3478".into(), "turns:relay:5349".into()],
                    username: Some("1700000000:ab".into()),
                    credential: Some("mac=".into()),
                },
            ],
            ..Default::default()
        };
        assert_eq!(stun_urls(&ice), ["stun:mine:3478", "stun:sig:3478", "stun:relay:3478"]);
        let turn = ice.turn_servers();
        let urls: Vec<_> = turn.iter().map(|t| (t.url.as_str(), t.user.as_str())).collect();
        assert_eq!(
            urls,
            [
                ("turn:mine:3478", "me"),
                ("turn:relay:3478", "1700000000:ab"),
                ("turns:relay:5349", "1700000000:ab")
            ]
        );
        assert_eq!(turn[2].password, "mac=");
        ice.relay_only = true;
        assert_eq!(stun_urls(&ice), ["stun:mine:3478", "stun:sig:3478"]);
    }

    #[test]
    fn the_window_follows_the_granted_buffer_within_bounds() {
        // Never below webrtc-rs's default (a kernel default buffer, or none asked for).
        assert_eq!(receive_window_for(0), 1 << 20);
        assert_eq!(receive_window_for(212_992), 1 << 20);
        // A capped grant (rmem_max 4 MiB): the window shrinks with it, so a burst fits.
        assert_eq!(receive_window_for(4 << 20), 4 << 20);
        // A full grant: the window that keeps 100 MB/s up to 160 ms, and no more.
        assert_eq!(receive_window_for(16 << 20), 16 << 20);
        assert_eq!(receive_window_for(64 << 20), 16 << 20);
    }
}
