//! The threshold-based sender as a task: LiveKit's `DataChannelSender::run` on the webrtc
//! crate. Fed by a bounded mpsc of [`Outbound`] payloads, it keeps a [`SendQueue`], hands
//! payloads to the channel while the buffered amount is at or under the threshold, resumes
//! on the channel's buffered-amount events ([`ChannelPort::drained_to`]), stops when the
//! cancel token fires, and reports what was left unsent.
//!
//! Differences from LiveKit, each for a reason:
//! - it stops pulling from the mpsc while its own queue is full, so a fast producer (a file
//!   read) is slowed down instead of growing the queue: memory stays flat for any size;
//! - it ends by itself once the producer hangs up and everything was handed over;
//! - it reconciles its count with the channel's `outstanding_bytes()` (see `queue.rs`);
//! - a receiver may ask for a lower threshold (`hello.threshold`, see [`Pump::threshold_cap`]);
//!   the pump asks the port to drain to whatever its threshold is now
//!   ([`ChannelPort::drained_to`]), so the port, not the pump, owns the drain event;
//! - in the adaptive mode ([`Threshold::Auto`]) the threshold follows the path: the pump
//!   feeds an [`Autotune`] with the bytes the peer acknowledged (handed minus buffered) and
//!   the time it waited on the drain with a payload ready, and uses the level it returns.
//!
//! Must not import: webrtc, indicatif, `cli`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::autotune::{Autotune, Threshold};
use super::queue::SendQueue;
use crate::peer::{ChannelPort, Outbound, PeerError};
use crate::progress::meter::Meter;

/// Capacity of the mpsc that feeds the pump, in payloads. With 64 KiB chunks this is
/// 1 MiB waiting in the channel, on top of the queue.
pub const FEED_CAPACITY: usize = 16;

/// How many payload bytes the pump's own queue holds before it stops pulling from the mpsc.
const MAX_QUEUED_BYTES: u64 = 256 * 1024;

/// What the pump did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PumpReport {
    /// Binary payload bytes handed to the channel.
    pub sent_bytes: u64,
    /// Bytes (payload and control) still queued when the pump stopped.
    pub unsent_bytes: u64,
    /// The largest buffered amount seen.
    pub peak_buffered_bytes: u64,
    /// True when the producer finished and everything was handed over; false when the
    /// pump was cancelled.
    pub finished: bool,
}

/// The sender task. Build with [`Pump::new`], spawn [`Pump::run`].
pub struct Pump<P> {
    feed: mpsc::Receiver<Outbound>,
    port: P,
    queue: SendQueue,
    close: CancellationToken,
    meter: Arc<Meter>,
    /// A lower threshold a receiver asked for; `u64::MAX` for none.
    cap: Arc<AtomicU64>,
    /// The fixed threshold, or the controller that moves it.
    mode: Mode,
}

enum Mode {
    Fixed(u64),
    Auto(Autotune),
}

impl<P: ChannelPort> Pump<P> {
    /// Creates a pump over `port` with the given low-water `threshold`.
    ///
    /// Returns a tuple containing the pump itself, to be spawned by the caller (see
    /// [`Pump::run`]), and the sender that feeds it. Dropping every sender means "no more
    /// payloads": the pump then finishes once all are handed over.
    pub fn new(
        port: P,
        threshold: Threshold,
        meter: Arc<Meter>,
        close: CancellationToken,
    ) -> (Self, mpsc::Sender<Outbound>) {
        let (tx, feed) = mpsc::channel(FEED_CAPACITY);
        let queue = SendQueue::new(threshold.initial_bytes(), MAX_QUEUED_BYTES);
        let cap = Arc::new(AtomicU64::new(u64::MAX));
        let mode = match threshold {
            Threshold::Fixed(n) => Mode::Fixed(n),
            Threshold::Auto { max_bytes } => Mode::Auto(Autotune::new(max_bytes)),
        };
        meter.set_threshold(threshold.initial_bytes());
        (Self { feed, port, queue, close, meter, cap, mode }, tx)
    }

    /// Where to store a lower threshold while the pump runs (a receiver's `hello.threshold`);
    /// the pump applies it before its next send. It never raises the threshold.
    pub fn threshold_cap(&self) -> Arc<AtomicU64> {
        self.cap.clone()
    }

    /// Runs until the producer hangs up and the queue is empty, or until `close` fires.
    ///
    /// Errors only when the channel refuses a send or its figures (the channel closed).
    pub async fn run(mut self) -> Result<PumpReport, PeerError> {
        let mut input_open = true;
        let mut sent_bytes = 0u64;
        // For the adaptive mode: every byte handed over (data and control, as the buffered
        // amount counts both) and the time spent waiting on the drain with a payload ready.
        let (started, mut handed_bytes, mut waited) = (Instant::now(), 0u64, Duration::ZERO);
        loop {
            let level = match &mut self.mode {
                Mode::Fixed(n) => *n,
                Mode::Auto(tune) => {
                    let acked = handed_bytes.saturating_sub(self.queue.buffered());
                    tune.update(started.elapsed(), acked, waited)
                }
            };
            let level = level.min(self.cap.load(Ordering::Relaxed));
            if level != self.queue.threshold() {
                tracing::debug!(level, "threshold");
                self.queue.set_threshold(level);
                self.meter.set_threshold(level);
            }
            // LiveKit's send_until_threshold.
            while let Some(payload) = self.queue.next_to_send() {
                let (len, is_data) = (payload.len() as u64, matches!(payload, Outbound::Binary(_)));
                self.port.send(payload).await?;
                handed_bytes += len;
                if is_data {
                    sent_bytes += len;
                    self.meter.add_bytes(len);
                }
            }
            self.meter.set_buffered(self.queue.buffered());
            if !input_open && self.queue.is_empty() {
                break;
            }
            // The threshold is the limit right now: a payload is ready and may not go.
            let limited = matches!(self.mode, Mode::Auto(_))
                && !self.queue.can_send()
                && !self.queue.is_empty();
            let wait_started = limited.then(Instant::now);
            tokio::select! {
                biased;
                () = self.close.cancelled() => break,
                // Paused over the threshold: wait for the channel to drain, then take its
                // figure. Cancel-safe: `drained_to` only waits.
                drained = self.port.drained_to(self.queue.threshold()), if !self.queue.can_send() => {
                    drained?;
                    self.queue.on_buffered(self.port.buffered_amount().await?);
                }
                // Cancel-safe: `recv` loses nothing when another branch wins.
                payload = self.feed.recv(), if input_open && self.queue.has_room() => match payload {
                    Some(p) => self.queue.push(p),
                    None => input_open = false,
                },
            }
            if let Some(at) = wait_started {
                waited += at.elapsed();
            }
        }
        let report = PumpReport {
            sent_bytes,
            unsent_bytes: self.queue.unsent_bytes(),
            peak_buffered_bytes: self.queue.peak_buffered(),
            finished: !input_open && self.queue.is_empty(),
        };
        self.meter.note_peak(report.peak_buffered_bytes);
        if report.unsent_bytes > 0 {
            tracing::info!("{} byte(s) remain in the send queue", report.unsent_bytes);
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    //! Properties of the pump against a fake channel that releases bytes only when the test
    //! says so. Each would catch a regression:
    //! - the fake's outstanding bytes never exceed threshold + one payload (the bound that
    //!   keeps memory flat is the product's promise);
    //! - the pump pauses (stops sending) while over the threshold, and resumes on drain;
    //! - everything the producer sent arrives, in order (totals balance);
    //! - a cancel while paused returns promptly and reports the unsent bytes.
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;
    use bytes::Bytes;
    use tokio::sync::Notify;

    use super::*;

    #[derive(Default)]
    struct FakeState {
        outstanding: u64,
        peak: u64,
        received: Vec<Outbound>,
        /// The levels the pump asked to drain to.
        levels: Vec<u64>,
    }

    #[derive(Clone)]
    struct FakePort {
        state: Arc<Mutex<FakeState>>,
        released: Arc<Notify>,
    }

    impl FakePort {
        fn new() -> Self {
            Self { state: Default::default(), released: Arc::new(Notify::new()) }
        }
        /// The "network" acknowledges `n` bytes.
        fn release(&self, n: u64) {
            let mut s = self.state.lock().unwrap();
            s.outstanding = s.outstanding.saturating_sub(n);
            drop(s);
            self.released.notify_waiters();
        }
        fn outstanding(&self) -> u64 {
            self.state.lock().unwrap().outstanding
        }
    }

    #[async_trait]
    impl ChannelPort for FakePort {
        async fn send(&self, msg: Outbound) -> Result<(), PeerError> {
            let mut s = self.state.lock().unwrap();
            s.outstanding += msg.len() as u64;
            s.peak = s.peak.max(s.outstanding);
            s.received.push(msg);
            Ok(())
        }
        async fn buffered_amount(&self) -> Result<u64, PeerError> {
            Ok(self.outstanding())
        }
        async fn drained_to(&self, level: u64) -> Result<(), PeerError> {
            self.state.lock().unwrap().levels.push(level);
            loop {
                let notified = self.released.notified();
                if self.outstanding() <= level {
                    return Ok(());
                }
                notified.await;
            }
        }
    }

    const T: Duration = Duration::from_secs(5);

    /// The producer: `count` payloads of `size` bytes, then it hangs up.
    fn produce(tx: mpsc::Sender<Outbound>, count: u8, size: usize) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            for i in 0..count {
                tx.send(chunk(i, size)).await.unwrap();
            }
        })
    }

    fn chunk(i: u8, n: usize) -> Outbound {
        Outbound::Binary(Bytes::from(vec![i; n]))
    }

    /// A receiver's lower threshold (`hello.threshold`) holds: the pump asks the port to
    /// drain to the lowered level, never to the one it was built with, and still delivers
    /// everything.
    #[tokio::test]
    async fn a_lowered_threshold_bounds_the_buffer() {
        let (base, cap, size, count) = (100_000u64, 1000u64, 100usize, 100u8);
        let port = FakePort::new();
        let meter = Arc::new(Meter::new(None));
        let (pump, tx) =
            Pump::new(port.clone(), Threshold::Fixed(base), meter, CancellationToken::new());
        pump.threshold_cap().store(cap, Ordering::Relaxed);
        let task = tokio::spawn(pump.run());
        let producer = produce(tx, count, size);
        let net = port.clone();
        let network = tokio::spawn(async move {
            while net.state.lock().unwrap().received.len() < count as usize {
                tokio::time::sleep(Duration::from_millis(2)).await;
                net.release(300);
            }
        });
        let report = tokio::time::timeout(T, task).await.unwrap().unwrap().unwrap();
        tokio::time::timeout(T, producer).await.unwrap().unwrap();
        tokio::time::timeout(T, network).await.unwrap().unwrap();
        let s = port.state.lock().unwrap();
        assert!(s.peak <= cap + size as u64, "peak {} over the lowered bound", s.peak);
        assert!(!s.levels.is_empty() && s.levels.iter().all(|&l| l == cap), "{:?}", s.levels);
        assert_eq!(report.sent_bytes, size as u64 * count as u64);
        assert!(report.finished);
    }

    /// The adaptive mode keeps the bound it is given (`--max-buffer` under the 4 MiB start:
    /// the controller cannot leave it), shows its level on the meter, and delivers
    /// everything.
    #[tokio::test]
    async fn auto_mode_stays_within_its_bound() {
        let (max, size, count) = (1000u64, 100usize, 100u8);
        let port = FakePort::new();
        let meter = Arc::new(Meter::new(None));
        let auto = Threshold::Auto { max_bytes: max };
        let (pump, tx) = Pump::new(port.clone(), auto, meter.clone(), CancellationToken::new());
        assert_eq!(meter.threshold(), max);
        let task = tokio::spawn(pump.run());
        let producer = produce(tx, count, size);
        let net = port.clone();
        let network = tokio::spawn(async move {
            while net.state.lock().unwrap().received.len() < count as usize {
                tokio::time::sleep(Duration::from_millis(1)).await;
                net.release(300);
            }
        });
        let report = tokio::time::timeout(T, task).await.unwrap().unwrap().unwrap();
        tokio::time::timeout(T, producer).await.unwrap().unwrap();
        tokio::time::timeout(T, network).await.unwrap().unwrap();
        let s = port.state.lock().unwrap();
        assert!(s.peak <= max + size as u64, "peak {} over the bound", s.peak);
        assert!(s.levels.iter().all(|&l| l == max), "{:?}", s.levels);
        assert_eq!(report.sent_bytes, size as u64 * count as u64);
        assert_eq!(meter.threshold(), max);
    }

    #[tokio::test]
    async fn bounded_buffer_and_totals_balance() {
        let (threshold, size, count) = (1000u64, 100usize, 200u8);
        let port = FakePort::new();
        let meter = Arc::new(Meter::new(None));
        let (pump, tx) = Pump::new(
            port.clone(),
            Threshold::Fixed(threshold),
            meter.clone(),
            CancellationToken::new(),
        );
        let task = tokio::spawn(pump.run());
        let producer = produce(tx, count, size);
        // The network: release a little at a time until everything arrived.
        let net = port.clone();
        let network = tokio::spawn(async move {
            loop {
                tokio::task::yield_now().await;
                if net.outstanding() > threshold {
                    // While over the threshold the pump must not add more.
                    let before = net.state.lock().unwrap().received.len();
                    tokio::task::yield_now().await;
                    assert_eq!(
                        net.state.lock().unwrap().received.len(),
                        before,
                        "sent while paused"
                    );
                }
                net.release(250);
                if net.state.lock().unwrap().received.len() == count as usize {
                    break;
                }
            }
        });
        let report = tokio::time::timeout(T, task).await.unwrap().unwrap().unwrap();
        tokio::time::timeout(T, producer).await.unwrap().unwrap();
        tokio::time::timeout(T, network).await.unwrap().unwrap();

        let s = port.state.lock().unwrap();
        assert!(s.peak <= threshold + size as u64, "peak {} over bound", s.peak);
        assert_eq!(report.sent_bytes, size as u64 * count as u64);
        assert_eq!(meter.bytes(), report.sent_bytes);
        assert_eq!(report.unsent_bytes, 0);
        assert!(report.finished);
        let order: Vec<u8> = s
            .received
            .iter()
            .map(|m| match m {
                Outbound::Binary(b) => b[0],
                Outbound::Text(_) => unreachable!(),
            })
            .collect();
        assert_eq!(order, (0..count).collect::<Vec<_>>(), "payloads reordered");
    }

    #[tokio::test]
    async fn close_while_paused_reports_unsent() {
        let port = FakePort::new();
        let close = CancellationToken::new();
        let (pump, tx) = Pump::new(
            port.clone(),
            Threshold::Fixed(10),
            Arc::new(Meter::new(None)),
            close.clone(),
        );
        let task = tokio::spawn(pump.run());
        for i in 0..3 {
            tx.send(chunk(i, 20)).await.unwrap();
        }
        // Nothing is ever released: the pump sends one payload (0 <= 10), then pauses.
        tokio::time::timeout(T, async {
            while port.state.lock().unwrap().received.is_empty() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        close.cancel();
        let report = tokio::time::timeout(T, task).await.unwrap().unwrap().unwrap();
        assert_eq!(port.state.lock().unwrap().received.len(), 1);
        assert_eq!(report.sent_bytes, 20);
        assert_eq!(report.unsent_bytes, 40);
        assert!(!report.finished);
    }

    #[tokio::test]
    async fn text_and_binary_keep_their_order() {
        let port = FakePort::new();
        let (pump, tx) = Pump::new(
            port.clone(),
            Threshold::Fixed(1 << 20),
            Arc::new(Meter::new(None)),
            CancellationToken::new(),
        );
        let task = tokio::spawn(pump.run());
        let msgs =
            vec![Outbound::Text("a".into()), chunk(1, 3), Outbound::Text("b".into()), chunk(2, 0)];
        for m in msgs.clone() {
            tx.send(m).await.unwrap();
        }
        drop(tx);
        let report = tokio::time::timeout(T, task).await.unwrap().unwrap().unwrap();
        assert_eq!(port.state.lock().unwrap().received, msgs);
        assert_eq!(report.sent_bytes, 3);
    }
}
