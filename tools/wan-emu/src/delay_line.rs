//! The delay line: pure logic, no sockets and no clock of its own, so tests drive it with
//! made-up times.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::rng::SplitMix64;

/// What to tell the kernel about queued packets, in the order to say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let every packet still held by the kernel with an id up to and including this one go
    /// (one `NFQNL_MSG_VERDICT_BATCH`).
    AcceptThrough(u32),
    /// Drop this packet.
    Drop(u32),
}

/// One packet waiting in the line.
#[derive(Debug, Clone, Copy)]
struct Held {
    due: Instant,
    id: u32,
    drop: bool,
}

/// Counters of one line, for the summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LineStats {
    pub packets: u64,
    pub bytes: u64,
    /// Packets dropped at random.
    pub dropped: u64,
    /// The most packets held at once.
    pub most_held: usize,
}

/// Holds each packet for `delay` from the moment it was admitted, drops a `loss` fraction of
/// them, and releases them in the order they came.
#[derive(Debug)]
pub struct DelayLine {
    delay: Duration,
    loss: f64,
    rng: SplitMix64,
    held: VecDeque<Held>,
    stats: LineStats,
}

impl DelayLine {
    /// `loss` is a fraction in [0, 1]; `seed` picks the drop pattern.
    pub fn new(delay: Duration, loss: f64, seed: u64) -> Self {
        assert!((0.0..=1.0).contains(&loss), "loss {loss} is not a fraction");
        Self {
            delay,
            loss,
            rng: SplitMix64::new(seed),
            held: VecDeque::new(),
            stats: <_>::default(),
        }
    }

    /// Takes packet `id` (`len` bytes) that arrived at `now`. Whether it will be dropped is
    /// decided here, so the drop pattern follows the arrival order and the seed only.
    pub fn admit(&mut self, now: Instant, id: u32, len: u32) {
        let drop = self.loss > 0.0 && self.rng.next_f64() < self.loss;
        self.held.push_back(Held { due: now + self.delay, id, drop });
        self.stats.packets += 1;
        self.stats.bytes += u64::from(len);
        self.stats.dropped += u64::from(drop);
        self.stats.most_held = self.stats.most_held.max(self.held.len());
    }

    /// When the oldest packet is due, if any is held.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.front().map(|h| h.due)
    }

    /// Releases every packet due by `now`, in arrival order: each run of accepted packets as
    /// one [`Verdict::AcceptThrough`], each dropped packet as its own [`Verdict::Drop`].
    pub fn release(&mut self, now: Instant, mut verdict: impl FnMut(Verdict)) {
        let mut accept_through = None;
        while let Some(h) = self.held.front().copied().filter(|h| h.due <= now) {
            self.held.pop_front();
            if h.drop {
                if let Some(id) = accept_through.take() {
                    verdict(Verdict::AcceptThrough(id));
                }
                verdict(Verdict::Drop(h.id));
            } else {
                accept_through = Some(h.id);
            }
        }
        if let Some(id) = accept_through {
            verdict(Verdict::AcceptThrough(id));
        }
    }

    pub fn held(&self) -> usize {
        self.held.len()
    }

    pub fn stats(&self) -> LineStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn released(line: &mut DelayLine, now: Instant) -> Vec<Verdict> {
        let mut out = Vec::new();
        line.release(now, |v| out.push(v));
        out
    }

    #[test]
    fn holds_each_packet_for_the_delay_and_releases_in_order() {
        let t0 = Instant::now();
        let mut line = DelayLine::new(ms(10), 0.0, 1);
        line.admit(t0, 1, 100);
        line.admit(t0 + ms(3), 2, 100);
        line.admit(t0 + ms(4), 3, 100);
        assert_eq!(line.next_due(), Some(t0 + ms(10)));
        assert_eq!(released(&mut line, t0 + ms(9)), []);
        assert_eq!(released(&mut line, t0 + ms(10)), [Verdict::AcceptThrough(1)]);
        assert_eq!(line.next_due(), Some(t0 + ms(13)));
        // A late wake-up releases everything due as one batch.
        assert_eq!(released(&mut line, t0 + ms(20)), [Verdict::AcceptThrough(3)]);
        assert_eq!(line.next_due(), None);
        assert_eq!(line.held(), 0);
    }

    #[test]
    fn zero_delay_releases_at_once() {
        let t0 = Instant::now();
        let mut line = DelayLine::new(Duration::ZERO, 0.0, 1);
        line.admit(t0, 7, 1);
        assert_eq!(released(&mut line, t0), [Verdict::AcceptThrough(7)]);
    }

    #[test]
    fn a_drop_splits_the_batch_and_keeps_the_order() {
        let t0 = Instant::now();
        // Loss 1.0 drops everything; admit with it, then accept the rest with loss 0.
        let mut line = DelayLine::new(ms(1), 0.0, 1);
        line.admit(t0, 1, 10);
        line.admit(t0, 2, 10);
        line.loss = 1.0;
        line.admit(t0, 3, 10);
        line.loss = 0.0;
        line.admit(t0, 4, 10);
        line.loss = 1.0;
        line.admit(t0, 5, 10);
        let v = released(&mut line, t0 + ms(1));
        use Verdict::*;
        assert_eq!(v, [AcceptThrough(2), Drop(3), AcceptThrough(4), Drop(5)]);
        assert_eq!(line.stats(), LineStats { packets: 5, bytes: 50, dropped: 2, most_held: 5 });
    }

    #[test]
    fn drops_about_the_loss_fraction_and_the_seed_fixes_which() {
        let t0 = Instant::now();
        let pattern = |seed| {
            let mut line = DelayLine::new(ms(1), 0.01, seed);
            let mut dropped = Vec::new();
            for id in 0..100_000 {
                line.admit(t0, id, 1200);
                line.release(t0 + ms(1), |v| {
                    if let Verdict::Drop(id) = v {
                        dropped.push(id)
                    }
                });
            }
            dropped
        };
        let (a, b, c) = (pattern(1), pattern(1), pattern(2));
        assert!((800..1200).contains(&a.len()), "{} dropped of 100000 at 1%", a.len());
        assert_eq!(a, b, "the same seed drops the same packets");
        assert_ne!(a, c, "another seed drops others");
    }

    #[test]
    #[should_panic(expected = "not a fraction")]
    fn loss_above_one_is_refused() {
        DelayLine::new(ms(1), 1.5, 1);
    }
}
