//! A scripted malicious peer built from dcsend's own library: the real WebRTC stack
//! (`dcsend::peer`), the real token codec and the real control messages, so whatever it sends
//! reaches a `dcsend` process exactly as a hostile program's would. Every await is bounded.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dcsend::peer::{Channel, ChannelEvent, ChannelPort, IceConfig, Outbound, Peer, PeerOptions};
use dcsend::signal::codec::{self, SdpKind};
use dcsend::signal::paste::{TokenSink, TokenSource, read_token, write_token};
use dcsend::transfer::wire::{Control, Digest, PROTOCOL_VERSION, Role};
use tokio::sync::mpsc;

use crate::common::{Proc, Tokens, WAIT};

/// Bound on one step of a script (negotiation, one send, one awaited message).
pub const STEP: Duration = Duration::from_secs(20);

/// Runs `fut` to completion on a fresh single-threaded runtime.
pub fn block_on<T>(fut: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(fut)
}

/// Awaits `fut`, at most [`STEP`]; panics naming `what` on timeout.
pub async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP, fut).await {
        Ok(v) => v,
        Err(_) => panic!("hostile peer: timed out after {STEP:?} waiting for {what}"),
    }
}

/// The hostile end of one connection.
pub struct Hostile {
    peer: Peer,
    channel: Channel,
    events: mpsc::Receiver<ChannelEvent>,
    /// Every text message the dcsend process sent us, in order.
    pub texts: Vec<String>,
    /// Payload bytes the dcsend process sent us.
    pub binary_bytes: u64,
}

fn options() -> PeerOptions {
    PeerOptions {
        bind: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        ice: IceConfig::default(),
        socket_buffer_bytes: 0,
        liveness_timeout: Duration::from_secs(10),
    }
}

async fn write(path: &Path, token: &str) {
    bounded("writing our token", write_token(&TokenSink::File(path.to_owned()), "", token))
        .await
        .expect("write our token");
}

async fn read(path: &Path) -> String {
    read_token(&TokenSource::File(PathBuf::from(path)), "", STEP)
        .await
        .expect("read dcsend's token")
}

impl Hostile {
    /// Plays the sender's part of the negotiation: writes the offer, reads the answer.
    pub async fn offer(t: &Tokens) -> Hostile {
        let mut peer = bounded("a peer", Peer::new(&options())).await.expect("peer");
        let offer = bounded("our offer", peer.offer()).await.expect("offer");
        write(&t.offer, &codec::encode(&offer)).await;
        let answer = codec::decode(&read(&t.answer).await, SdpKind::Answer).expect("answer token");
        bounded("accepting the answer", peer.accept_answer(&answer)).await.expect("accept");
        Self::open(peer).await
    }

    /// Plays the receiver's part: reads the offer, writes the answer.
    pub async fn answer(t: &Tokens) -> Hostile {
        let mut peer = bounded("a peer", Peer::new(&options())).await.expect("peer");
        let offer = codec::decode(&read(&t.offer).await, SdpKind::Offer).expect("offer token");
        let answer = bounded("our answer", peer.answer(&offer)).await.expect("answer");
        write(&t.answer, &codec::encode(&answer)).await;
        Self::open(peer).await
    }

    async fn open(mut peer: Peer) -> Hostile {
        let (channel, events) = peer.open_channel(STEP).await.expect("the channel opens");
        Hostile { peer, channel, events, texts: Vec::new(), binary_bytes: 0 }
    }

    /// Sends raw text as a control message (well-formed or not).
    pub async fn text(&self, text: impl Into<String>) {
        self.send(Outbound::Text(text.into())).await;
    }

    /// Sends a well-formed control message.
    pub async fn control(&self, msg: Control) {
        self.text(msg.encode()).await;
    }

    /// Sends payload bytes as one binary message.
    pub async fn binary(&self, data: &[u8]) {
        self.send(Outbound::Binary(bytes::Bytes::copy_from_slice(data))).await;
    }

    /// Hands `msg` to the channel. A refusal is not an error: dcsend may have closed the
    /// channel already, having refused something sent before (what it sent says why).
    async fn send(&self, msg: Outbound) {
        if let Err(e) = bounded("a send", self.channel.send(msg)).await {
            eprintln!("hostile peer: the channel refused a message: {e}");
        }
    }

    /// `hello` as a dcsend `role` would say it.
    pub async fn hello(&self, role: Role) {
        self.control(Control::Hello {
            v: PROTOCOL_VERSION,
            role,
            app: "hostile/0".into(),
            resume: false,
            threshold: None,
            tree: None,
            files: None,
            bytes: None,
            zstd: false,
        })
        .await;
    }

    /// A plain `file` header: `name`, `size`, nothing else set.
    pub async fn header(&self, name: &str, size: u64) {
        self.control(Control::File {
            name: Some(name.into()),
            size: Some(size),
            resume: false,
            exec: false,
            mtime: None,
            zstd: false,
        })
        .await;
    }

    /// A complete, honest item: `file`, the data, `eof`.
    pub async fn item(&self, name: &str, data: &[u8]) {
        self.header(name, data.len() as u64).await;
        if !data.is_empty() {
            self.binary(data).await;
        }
        self.control(Control::Eof { bytes: data.len() as u64, sha256: sha256(data) }).await;
    }

    /// The next event, recording what it carried; `None` once the channel is gone.
    async fn next(&mut self) -> Option<ChannelEvent> {
        let ev = bounded("an event from dcsend", self.events.recv()).await?;
        match &ev {
            ChannelEvent::Text(t) => self.texts.push(t.clone()),
            ChannelEvent::Binary(b) => self.binary_bytes += b.len() as u64,
            ChannelEvent::Closed | ChannelEvent::PeerGone(_) => return None,
        }
        Some(ev)
    }

    /// Waits for the next control message that `want` accepts (skipping data and others);
    /// panics if the channel ends first.
    pub async fn wait_for(&mut self, what: &str, want: impl Fn(&Control) -> bool) -> Control {
        loop {
            match self.next().await {
                Some(ChannelEvent::Text(t)) => match Control::decode(&t) {
                    Ok(c) if want(&c) => return c,
                    _ => {}
                },
                Some(_) => {}
                None => panic!("the channel ended before {what}; got {:?}", self.texts),
            }
        }
    }

    /// Records everything until dcsend closes the channel.
    pub async fn until_closed(&mut self) {
        while self.next().await.is_some() {}
    }

    /// The `abort` reasons dcsend sent. A text that is not a valid control message (e.g.
    /// over the size limit) counts as no abort.
    pub fn aborts(&self) -> Vec<String> {
        self.texts
            .iter()
            .filter_map(|t| match Control::decode(t) {
                Ok(Control::Abort { reason }) => Some(reason),
                _ => None,
            })
            .collect()
    }

    /// The decoded control messages dcsend sent (invalid ones left out).
    pub fn controls(&self) -> Vec<Control> {
        self.texts.iter().filter_map(|t| Control::decode(t).ok()).collect()
    }

    /// Closes the data channel (the connection stays up), as a peer that is done would.
    pub async fn close_channel(&self) {
        self.channel.close().await;
    }

    /// Closes the connection, as a peer that goes away would.
    pub async fn hang_up(self) {
        self.channel.close().await;
        self.peer.close(Duration::from_secs(2)).await;
    }
}

/// Lowercase hex SHA-256, as `eof` carries it.
pub fn sha256(data: &[u8]) -> String {
    let mut d = Digest::new();
    d.update(data);
    d.finish()
}

/// Every path under `root`, relative, sorted (directories too, with a trailing `/`).
pub fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if path.symlink_metadata().unwrap().is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Waits for `proc` to exit (bounded) and returns its code (`None`: killed by a signal).
pub fn exit_code(proc: &mut Proc) -> Option<i32> {
    proc.wait(WAIT).code()
}
