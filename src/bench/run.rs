//! One measured run: a sending and a receiving side, each on its own thread and runtime,
//! connected over loopback (a WebRTC pair, or a TCP socket for the baseline).
//!
//! The transfer is timed by the sender, from handing over the first byte to receiving the
//! acknowledgement that every byte arrived with the right SHA-256, as `dcsend` itself
//! reports it. CPU is sampled over the same interval on both sides.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::generated;
use super::report::Sample;
use super::sys::{self, CpuClock};
use super::{Case, Transport};
use crate::error::TransferError;
use crate::peer::{IceConfig, Outbound, Peer, PeerOptions};
use crate::progress::meter::Meter;
use crate::signal::codec::SessionDesc;
use crate::transfer::pump::FEED_CAPACITY;
use crate::transfer::recv::{Destination, RecvOptions, receive};
use crate::transfer::send::{SendOptions, send};
use crate::transfer::sink::{Sink, SinkTarget};
use crate::transfer::source::{self, Item, ItemSent};

/// How long a side may take to connect before the run fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the receiver may take to confirm once everything is sent.
const FINISH_TIMEOUT: Duration = Duration::from_secs(30);
/// Worker threads per side: what the CLI's runtime has on a 2-core machine.
const WORKERS_PER_SIDE: usize = 2;
/// Name of the generated item.
const ITEM_NAME: &str = "bench.bin";

/// One run's parameters.
#[derive(Debug, Clone)]
pub struct RunSetup {
    /// Transport, threshold, message size.
    pub case: Case,
    /// Bytes to send.
    pub size_bytes: u64,
    /// Stop sending after this long.
    pub duration: Option<Duration>,
    /// UDP socket buffer for the peers.
    pub socket_buffer_bytes: usize,
}

/// What the sending side measured.
struct SendSide {
    connect: Duration,
    transfer: Duration,
    cpu: (Option<Duration>, Option<Duration>),
    sent: ItemSent,
    peak_buffered_bytes: u64,
    /// The receiver's own byte count and digest (WebRTC: from its outcome; TCP: its reply).
    confirmed: bool,
}

/// What the receiving side got: bytes and digest of the one item, and whether it checked.
struct RecvSide {
    bytes: u64,
    sha256: String,
    verified: bool,
}

/// Runs one transfer of `setup` and measures it. `meter` follows the sender's progress
/// (for a live view); `cancel` stops the run with [`TransferError::Interrupted`].
pub async fn run_once(
    setup: &RunSetup,
    meter: Arc<Meter>,
    cancel: &CancellationToken,
) -> anyhow::Result<Sample> {
    let clocks = (CpuClock::default(), CpuClock::default());
    let stop = cancel.child_token();
    let first_error = Arc::new(Mutex::new(None::<anyhow::Error>));
    sys::reset_peak_rss();
    let (send_rx, recv_rx) = match setup.case.transport {
        Transport::Webrtc => {
            let (offer_tx, offer_rx) = oneshot::channel();
            let (answer_tx, answer_rx) = oneshot::channel();
            let opts = peer_options(setup);
            let (o, s, c) = (opts.clone(), stop.clone(), clocks.clone());
            let (su, m) = (setup.clone(), meter.clone());
            let sender = side("send", clocks.0.clone(), &stop, &first_error, move || {
                webrtc_send(o, su, offer_tx, answer_rx, m, c, s)
            })?;
            let s = stop.clone();
            let receiver = side("recv", clocks.1.clone(), &stop, &first_error, move || {
                webrtc_recv(opts, offer_rx, answer_tx, s)
            })?;
            (sender, receiver)
        }
        Transport::Tcp => {
            let (addr_tx, addr_rx) = oneshot::channel();
            let (su, m, c, s) = (setup.clone(), meter.clone(), clocks.clone(), stop.clone());
            let sender = side("send", clocks.0.clone(), &stop, &first_error, move || {
                tcp_send(su, addr_rx, m, c, s)
            })?;
            let (chunk, s) = (setup.case.chunk_bytes, stop.clone());
            let receiver = side("recv", clocks.1.clone(), &stop, &first_error, move || {
                tcp_recv(chunk, addr_tx, s)
            })?;
            (sender, receiver)
        }
    };
    let (sent, got) = tokio::join!(send_rx, recv_rx);
    if cancel.is_cancelled() {
        // Whatever each side made of being stopped (one may only see the other vanish).
        return Err(TransferError::Interrupted.into());
    }
    if let Some(e) = first_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(e);
    }
    let sent = sent.map_err(|_| anyhow!("the sending side vanished"))??;
    let got = got.map_err(|_| anyhow!("the receiving side vanished"))??;
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    Ok(Sample {
        bytes: sent.sent.bytes,
        seconds: sent.transfer.as_secs_f64(),
        connect_seconds: sent.connect.as_secs_f64(),
        send_cpu_seconds: secs(sent.cpu.0),
        recv_cpu_seconds: secs(sent.cpu.1),
        peak_buffered_bytes: sent.peak_buffered_bytes,
        peak_rss_bytes: sys::peak_rss_bytes(),
        verified: sent.confirmed
            && got.verified
            && got.bytes == sent.sent.bytes
            && got.sha256 == sent.sent.sha256,
    })
}

/// Runs `make()` on a new thread with its own runtime whose threads `clock` counts. The
/// first side to fail records its error and stops the other.
fn side<T, F, Fut>(
    name: &'static str,
    clock: CpuClock,
    stop: &CancellationToken,
    first_error: &Arc<Mutex<Option<anyhow::Error>>>,
    make: F,
) -> anyhow::Result<oneshot::Receiver<anyhow::Result<T>>>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let (stop, first_error) = (stop.clone(), first_error.clone());
    std::thread::Builder::new()
        .name(format!("bench-{name}"))
        .spawn(move || {
            let result = (|| {
                let rt = clock
                    .install(&mut tokio::runtime::Builder::new_multi_thread())
                    .worker_threads(WORKERS_PER_SIDE)
                    .thread_name(format!("bench-{name}"))
                    .enable_all()
                    .build()?;
                let out = rt.block_on(async move { tokio::spawn(make()).await });
                rt.shutdown_timeout(Duration::from_secs(5));
                out.map_err(|e| anyhow!("the {name} side panicked: {e}"))?
            })();
            let result = match result {
                Err(e) if !stop.is_cancelled() => {
                    let mut first = first_error.lock().unwrap_or_else(|e| e.into_inner());
                    if first.is_none() {
                        *first = Some(e.context(format!("bench: the {name} side failed")));
                    }
                    stop.cancel();
                    Err(anyhow!("stopped"))
                }
                other => other,
            };
            let _ = tx.send(result);
        })
        .context("starting a bench thread")?;
    Ok(rx)
}

fn peer_options(setup: &RunSetup) -> PeerOptions {
    PeerOptions {
        bind: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))],
        ice: IceConfig::default(),
        socket_buffer_bytes: setup.socket_buffer_bytes,
        liveness_timeout: Duration::from_secs(8),
    }
}

fn item(setup: &RunSetup) -> Item {
    generated::item(ITEM_NAME, setup.size_bytes, setup.duration.map(|d| Instant::now() + d))
}

fn cpu_now(clocks: &(CpuClock, CpuClock)) -> (Option<Duration>, Option<Duration>) {
    (clocks.0.used(), clocks.1.used())
}

fn cpu_between(
    a: (Option<Duration>, Option<Duration>),
    b: (Option<Duration>, Option<Duration>),
) -> (Option<Duration>, Option<Duration>) {
    let diff = |x: Option<Duration>, y: Option<Duration>| Some(y?.saturating_sub(x?));
    (diff(a.0, b.0), diff(a.1, b.1))
}

async fn webrtc_send(
    opts: PeerOptions,
    setup: RunSetup,
    offer_tx: oneshot::Sender<SessionDesc>,
    answer_rx: oneshot::Receiver<SessionDesc>,
    meter: Arc<Meter>,
    clocks: (CpuClock, CpuClock),
    stop: CancellationToken,
) -> anyhow::Result<SendSide> {
    let mut peer = Peer::new(&opts).await?;
    let started = Instant::now();
    let offer = peer.offer().await?;
    offer_tx.send(offer).map_err(|_| anyhow!("the receiving side is gone"))?;
    let answer = until(&stop, answer_rx).await?.context("the receiving side is gone")?;
    peer.accept_answer(&answer).await?;
    let (channel, events) = until(&stop, peer.open_channel(CONNECT_TIMEOUT)).await??;
    let connect = started.elapsed();

    let send_opts = SendOptions {
        threshold: setup.case.threshold,
        chunk_bytes: setup.case.chunk_bytes,
        raw: false,
        compress: false,
        finish_timeout: FINISH_TIMEOUT,
    };
    let cpu0 = cpu_now(&clocks);
    let t0 = Instant::now();
    let out = send(channel.clone(), events, vec![item(&setup)], &send_opts, meter, stop).await;
    let transfer = t0.elapsed();
    let cpu = cpu_between(cpu0, cpu_now(&clocks));
    channel.close().await;
    peer.close(Duration::from_secs(2)).await;
    let out = out?;
    let sent = out.items.into_iter().next().context("nothing was sent")?;
    Ok(SendSide {
        connect,
        transfer,
        cpu,
        sent,
        peak_buffered_bytes: out.pump.peak_buffered_bytes,
        confirmed: out.verified,
    })
}

async fn webrtc_recv(
    opts: PeerOptions,
    offer_rx: oneshot::Receiver<SessionDesc>,
    answer_tx: oneshot::Sender<SessionDesc>,
    stop: CancellationToken,
) -> anyhow::Result<RecvSide> {
    let mut peer = Peer::new(&opts).await?;
    let offer = until(&stop, offer_rx).await?.context("the sending side is gone")?;
    let answer = peer.answer(&offer).await?;
    answer_tx.send(answer).map_err(|_| anyhow!("the sending side is gone"))?;
    let (channel, events) = until(&stop, peer.open_channel(CONNECT_TIMEOUT)).await??;
    let recv_opts = RecvOptions {
        dest: Destination::Discard,
        force: false,
        linger: Duration::from_secs(2),
        resume: false,
    };
    let out = receive(channel.clone(), events, &recv_opts, Arc::new(Meter::new(None)), stop).await;
    channel.close().await;
    peer.close(Duration::from_secs(2)).await;
    let out = out?;
    let [one] = out.items.as_slice() else {
        bail!("expected one item, received {}", out.items.len());
    };
    Ok(RecvSide { bytes: one.bytes, sha256: one.sha256.clone(), verified: out.verified })
}

async fn tcp_send(
    setup: RunSetup,
    addr_rx: oneshot::Receiver<SocketAddr>,
    meter: Arc<Meter>,
    clocks: (CpuClock, CpuClock),
    stop: CancellationToken,
) -> anyhow::Result<SendSide> {
    let addr = until(&stop, addr_rx).await?.context("the receiving side is gone")?;
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.context("connecting over TCP")?;
    let connect = started.elapsed();

    let cpu0 = cpu_now(&clocks);
    let t0 = Instant::now();
    let (feed, mut payloads) = mpsc::channel(FEED_CAPACITY);
    let reader =
        source::spawn(vec![item(&setup)], setup.case.chunk_bytes, true, feed, stop.clone());
    let pump = async {
        while let Some(msg) = payloads.recv().await {
            if let Outbound::Binary(data) = msg {
                stream.write_all(&data).await?;
                meter.add_bytes(data.len() as u64);
            }
        }
        stream.shutdown().await?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await?;
        anyhow::Ok(reply)
    };
    let reply = until(&stop, pump).await??;
    let transfer = t0.elapsed();
    let cpu = cpu_between(cpu0, cpu_now(&clocks));
    let sent = reader.await??.into_iter().next().context("nothing was sent")?;
    let confirmed = reply.trim() == format!("{} {}", sent.bytes, sent.sha256);
    Ok(SendSide { connect, transfer, cpu, sent, peak_buffered_bytes: 0, confirmed })
}

async fn tcp_recv(
    chunk_bytes: usize,
    addr_tx: oneshot::Sender<SocketAddr>,
    stop: CancellationToken,
) -> anyhow::Result<RecvSide> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    addr_tx.send(listener.local_addr()?).map_err(|_| anyhow!("the sending side is gone"))?;
    let (mut stream, _) = until(&stop, listener.accept()).await??;
    let sink = Sink::open(SinkTarget::Discard)?;
    let copy = async {
        loop {
            let mut buf = BytesMut::with_capacity(chunk_bytes);
            if stream.read_buf(&mut buf).await? == 0 {
                break;
            }
            sink.write(buf.freeze()).await?;
        }
        anyhow::Ok(())
    };
    until(&stop, copy).await??;
    let written = sink.finish().await?;
    stream.write_all(format!("{} {}\n", written.bytes, written.sha256).as_bytes()).await?;
    stream.shutdown().await?;
    Ok(RecvSide { bytes: written.bytes, sha256: written.sha256, verified: true })
}

/// `fut`, unless `stop` fires first.
async fn until<T>(stop: &CancellationToken, fut: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::select! {
        biased;
        () = stop.cancelled() => Err(TransferError::Interrupted.into()),
        out = fut => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::autotune::Threshold;

    fn setup(transport: Transport, size_bytes: u64) -> RunSetup {
        RunSetup {
            case: Case {
                transport,
                threshold: Threshold::Fixed(256 * 1024),
                chunk_bytes: 16 * 1024,
            },
            size_bytes,
            duration: None,
            socket_buffer_bytes: 1 << 20,
        }
    }

    async fn run(setup: RunSetup) -> Sample {
        let meter = Arc::new(Meter::new(None));
        let cancel = CancellationToken::new();
        let run = run_once(&setup, meter.clone(), &cancel);
        let sample = tokio::time::timeout(Duration::from_secs(30), run).await.unwrap().unwrap();
        assert_eq!(meter.bytes(), sample.bytes, "the meter followed the sender");
        sample
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webrtc_run_delivers_verified_bytes_under_the_threshold() {
        let s = run(setup(Transport::Webrtc, 4 << 20)).await;
        assert_eq!(s.bytes, 4 << 20);
        assert!(s.verified);
        assert!(s.seconds > 0.0 && s.connect_seconds > 0.0);
        // At most threshold + one message in flight.
        assert!(s.peak_buffered_bytes > 0);
        assert!(s.peak_buffered_bytes <= 256 * 1024 + 16 * 1024, "{}", s.peak_buffered_bytes);
        #[cfg(target_os = "linux")]
        {
            assert!(s.send_cpu_seconds.unwrap() > 0.0 && s.recv_cpu_seconds.unwrap() > 0.0);
            assert!(s.peak_rss_bytes.unwrap() > 0);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tcp_run_delivers_verified_bytes() {
        let s = run(setup(Transport::Tcp, 3 << 20)).await;
        assert_eq!(s.bytes, 3 << 20);
        assert!(s.verified);
        assert_eq!(s.peak_buffered_bytes, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_duration_ends_the_run_early_and_it_still_verifies() {
        let mut su = setup(Transport::Webrtc, u64::MAX / 2);
        su.duration = Some(Duration::from_millis(300));
        let s = run(su).await;
        assert!(s.verified);
        assert!(s.bytes > 0 && s.bytes < u64::MAX / 2);
        assert!(s.seconds < 10.0, "{}", s.seconds);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelling_stops_a_run() {
        let cancel = CancellationToken::new();
        let setup = setup(Transport::Webrtc, u64::MAX / 2);
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            c.cancel();
        });
        let run = run_once(&setup, Arc::new(Meter::new(None)), &cancel);
        let err = tokio::time::timeout(Duration::from_secs(20), run).await.unwrap().unwrap_err();
        assert!(matches!(err.downcast_ref(), Some(TransferError::Interrupted)), "{err:#}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelling_while_connecting_is_an_interruption_too() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let setup = setup(Transport::Webrtc, 1 << 20);
        let run = run_once(&setup, Arc::new(Meter::new(None)), &cancel);
        let err = tokio::time::timeout(Duration::from_secs(20), run).await.unwrap().unwrap_err();
        assert!(matches!(err.downcast_ref(), Some(TransferError::Interrupted)), "{err:#}");
    }
}
