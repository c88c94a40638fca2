//! The adaptive threshold (`--threshold auto`, the default): a pure controller that grows the
//! sender's threshold while the path delivers more for it and brings it back when it does
//! not, always within `[floor, ceiling]` (`--max-buffer`).
//!
//! Why the threshold must follow the path: the data channel's buffered amount counts every
//! byte not yet acknowledged by the peer, those on the wire included. A path moves at most
//! threshold / RTT, so a fixed 4 MiB caps 100 ms at 42 MB/s, while on loopback 4 MiB is
//! already more than the path holds and a larger one only costs memory.
//!
//! The signal is the **delivery rate** (bytes the peer acknowledged per second: handed to
//! the channel minus still buffered), counted only while the threshold was the limit (the
//! pump had a payload ready and waited for the channel to drain). When the source is the
//! limit (a slow pipe, a slow disk) nothing is learnt and nothing changes. The controller
//! climbs a ladder of levels, doubling or halving:
//! - **probe up**: double the level; if the rate rose by at least [`GAIN`], keep it and probe
//!   again, else go back down (the extra bytes were only a queue);
//! - **hold**: keep the level, follow the rate; every [`REPROBE_EPOCHS`] limited epochs
//!   probe up again (the path may have got faster);
//! - **probe down**: when the rate stays under [`DROP`] of what the level delivered, halve
//!   the level while the rate holds, then stop one step above where it fell.
//!
//! Each level is given time to show its effect: a settle epoch that is not measured, then a
//! measured one. An epoch lasts two turnovers of the buffer (`2 x level / rate`, the time the
//! new level takes to fill and drain once, which is at least two round trips once the level
//! is the limit), within [`MIN_EPOCH`]..=[`MAX_EPOCH`]. No clock: the caller passes `now`
//! and cumulative counters, like `progress::stats`.
//!
//! Must not import: tokio, webrtc, indicatif, `cli`.

use std::time::Duration;

/// The lowest level the controller uses: 4 MiB, the fixed default it replaces, so that a
/// short fast path (loopback, LAN) keeps today's figures (BENCHMARKS.md).
pub const FLOOR_BYTES: u64 = 4 * 1024 * 1024;

/// Default memory bound (`--max-buffer`): 32 MiB, twice the SCTP receive window
/// (`peer::RECEIVE_WINDOW_BYTES`). Past the window the peer cannot take more in flight, so a
/// larger threshold would only be a queue; 32 MiB leaves room for the unsent bytes that keep
/// the window full between two drain events.
pub const DEFAULT_MAX_BYTES: u64 = 32 * 1024 * 1024;

/// A higher level is kept only if it delivered at least this much more (10%): less is
/// noise, or a path already full.
pub const GAIN: f64 = 0.10;

/// A lower level is kept if it delivered at least this share of the higher one's rate.
pub const HOLD: f64 = 0.90;

/// Two measured epochs in a row under this share of the level's rate start a probe down.
pub const DROP: f64 = 0.70;

/// Limited epochs at a level before probing up again.
pub const REPROBE_EPOCHS: u32 = 10;

/// The shortest epoch: a few round trips of a LAN, many of a loopback, and long enough to
/// average over the drain events (several per millisecond at full speed).
pub const MIN_EPOCH: Duration = Duration::from_millis(200);

/// The longest epoch, whatever the turnover time says (a stalled path).
pub const MAX_EPOCH: Duration = Duration::from_secs(2);

/// An epoch counts as threshold-limited when the pump waited on the drain for at least this
/// share of it.
pub const LIMITED_SHARE: f64 = 0.5;

/// How the sender's threshold is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// `--threshold N`: always N bytes (LiveKit's rule as is).
    Fixed(u64),
    /// `--threshold auto`: follows the path, up to `max_bytes`.
    Auto {
        /// The memory bound (`--max-buffer`).
        max_bytes: u64,
    },
}

impl Default for Threshold {
    fn default() -> Self {
        Self::Auto { max_bytes: DEFAULT_MAX_BYTES }
    }
}

impl Threshold {
    /// The level the sender starts with.
    pub fn initial_bytes(self) -> u64 {
        match self {
            Self::Fixed(n) => n,
            Self::Auto { max_bytes } => FLOOR_BYTES.min(max_bytes),
        }
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fixed(n) => write!(f, "{n}"),
            Self::Auto { .. } => f.write_str("auto"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// The first level: measure it, then probe up if it is the limit.
    Start,
    /// Doubled from `from`, which delivered `from_rate`: is the new level better?
    Up { from: u64, from_rate: f64 },
    /// Halved from `from`, which delivered `from_rate`: does the new level hold the rate?
    Down { from: u64, from_rate: f64 },
    /// Settled; `rate` is what the level delivers (smoothed), `epochs` how long it held,
    /// `low` how many epochs in a row fell under [`DROP`] of `rate`.
    Hold { rate: f64, epochs: u32, low: u32 },
}

/// Where the current epoch started: time and the cumulative counters then.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: Duration,
    acked_bytes: u64,
    waited: Duration,
}

/// The adaptive threshold controller. Feed it with [`Autotune::update`]; read
/// [`Autotune::threshold`].
#[derive(Debug, Clone)]
pub struct Autotune {
    level: u64,
    floor: u64,
    ceiling: u64,
    phase: Phase,
    /// The current epoch only settles the last change (not measured).
    settling: bool,
    mark: Option<Mark>,
    /// The last measured rate, bytes/s (sizes the next epoch).
    last_rate: Option<f64>,
}

impl Autotune {
    /// A controller bounded by `max_bytes` (`--max-buffer`). It starts at [`FLOOR_BYTES`]
    /// (or `max_bytes` when lower) and never goes under it.
    pub fn new(max_bytes: u64) -> Self {
        let ceiling = max_bytes.max(1);
        let floor = FLOOR_BYTES.min(ceiling);
        Self {
            level: floor,
            floor,
            ceiling,
            phase: Phase::Start,
            settling: false,
            mark: None,
            last_rate: None,
        }
    }

    /// The threshold to use now, in bytes.
    pub fn threshold(&self) -> u64 {
        self.level
    }

    /// How long the current epoch lasts: two turnovers of the buffer at the last rate.
    fn epoch(&self) -> Duration {
        match self.last_rate {
            Some(rate) if rate > 0.0 => {
                let turnover = 2.0 * self.level as f64 / rate;
                Duration::from_secs_f64(turnover.min(MAX_EPOCH.as_secs_f64()))
                    .clamp(MIN_EPOCH, MAX_EPOCH)
            }
            Some(_) => MAX_EPOCH,
            None => MIN_EPOCH,
        }
    }

    /// Takes the counters at `now` (time since the transfer started) and returns the
    /// threshold to use from now on.
    ///
    /// `acked_bytes`: bytes the peer acknowledged so far (handed to the channel minus still
    /// buffered); `waited`: total time the pump spent with a payload ready, waiting for the
    /// buffer to drain under the threshold. Both are cumulative; a counter that goes back
    /// (a coarse buffered figure) counts as no progress. Cheap: call it as often as you like,
    /// it decides once per epoch.
    pub fn update(&mut self, now: Duration, acked_bytes: u64, waited: Duration) -> u64 {
        let here = Mark { at: now, acked_bytes, waited };
        let Some(mark) = self.mark else {
            self.mark = Some(here);
            return self.level;
        };
        let Some(span) = now.checked_sub(mark.at).filter(|d| *d >= self.epoch()) else {
            return self.level;
        };
        self.mark = Some(here);
        let secs = span.as_secs_f64();
        let rate = acked_bytes.saturating_sub(mark.acked_bytes) as f64 / secs;
        let limited = waited.saturating_sub(mark.waited).as_secs_f64() >= LIMITED_SHARE * secs;
        self.last_rate = Some(rate);
        if std::mem::take(&mut self.settling) {
            return self.level;
        }
        self.decide(rate, limited);
        self.level
    }

    /// One decision at the end of a measured epoch that delivered `rate` bytes/s.
    fn decide(&mut self, rate: f64, limited: bool) {
        let hold = |rate| Phase::Hold { rate, epochs: 0, low: 0 };
        match self.phase {
            Phase::Start if limited && self.level < self.ceiling => self.up(rate),
            Phase::Start => self.phase = hold(rate),
            Phase::Up { from, from_rate } => {
                if rate >= from_rate * (1.0 + GAIN) {
                    if limited && self.level < self.ceiling {
                        self.up(rate);
                    } else {
                        self.phase = hold(rate);
                    }
                } else {
                    // The higher level bought nothing: back to where it was.
                    self.set_level(from);
                    self.phase = hold(from_rate);
                }
            }
            Phase::Down { from, from_rate } => {
                if rate >= from_rate * HOLD {
                    if limited && self.level > self.floor {
                        self.down(rate);
                    } else {
                        self.phase = hold(rate);
                    }
                } else {
                    // Too low: one step up, where the rate was.
                    self.set_level(from);
                    self.phase = hold(from_rate);
                }
            }
            Phase::Hold { rate: level_rate, epochs, low } => {
                if !limited {
                    // The source is the limit: the level is not in question.
                    return;
                }
                let low = if rate < level_rate * DROP { low + 1 } else { 0 };
                if low >= 2 && self.level > self.floor {
                    self.down(rate);
                } else if epochs + 1 >= REPROBE_EPOCHS && self.level < self.ceiling {
                    self.up(rate);
                } else {
                    // Follow the rate slowly, so a drift does not look like a drop.
                    let smoothed = level_rate + 0.25 * (rate - level_rate);
                    self.phase = Phase::Hold { rate: smoothed, epochs: epochs + 1, low };
                }
            }
        }
    }

    fn up(&mut self, rate: f64) {
        let from = self.level;
        self.set_level(from.saturating_mul(2).min(self.ceiling));
        self.phase = Phase::Up { from, from_rate: rate };
    }

    fn down(&mut self, rate: f64) {
        let from = self.level;
        self.set_level((from / 2).max(self.floor));
        self.phase = Phase::Down { from, from_rate: rate };
    }

    fn set_level(&mut self, level: u64) {
        self.settling = level != self.level;
        self.level = level;
    }
}

#[cfg(test)]
mod tests {
    //! The controller against a simulated path whose delivery rate is
    //! `min(capacity, in flight / rtt)`, with in flight = the threshold while the sender is
    //! threshold-limited (a fast source). Each property would catch a regression:
    //! - it converges near the bandwidth-delay product (rate close to the capacity, level no
    //!   more than one doubling above the BDP): the point of the mode;
    //! - it never leaves `[floor, max]`: the memory bound is a promise;
    //! - it comes back down when the capacity drops: memory follows the path both ways;
    //! - on a short fast path (loopback) it stays at the 4 MiB floor, today's figures;
    //! - a slow source (not threshold-limited) never makes it grow.
    use super::*;

    const MIB: u64 = 1024 * 1024;
    const STEP: Duration = Duration::from_millis(5);

    /// A path and a sender driving the controller in `STEP`s.
    struct Sim {
        tune: Autotune,
        now: Duration,
        acked: f64,
        waited: Duration,
        /// The highest and lowest levels ever returned.
        max_seen: u64,
        min_seen: u64,
        /// Share of the last `run`'s time spent at the floor.
        at_floor: f64,
    }

    impl Sim {
        fn new(max_bytes: u64) -> Self {
            let tune = Autotune::new(max_bytes);
            let level = tune.threshold();
            Self {
                tune,
                now: Duration::ZERO,
                acked: 0.0,
                waited: Duration::ZERO,
                max_seen: level,
                min_seen: level,
                at_floor: 0.0,
            }
        }

        /// Runs `secs` of a path of `capacity` bytes/s and `rtt`. A `source` rate (bytes/s)
        /// below what the threshold allows makes the sender source-limited; `noise` (0..1)
        /// scales each step's delivery by a deterministic wobble of that amplitude.
        fn run(&mut self, secs: f64, capacity: f64, rtt: Duration, source: f64, noise: f64) {
            let steps = (secs / STEP.as_secs_f64()) as u64;
            let mut floor_steps = 0;
            for i in 0..steps {
                let level = self.tune.threshold();
                let path = capacity.min(level as f64 / rtt.as_secs_f64());
                let rate = path.min(source);
                let wobble = 1.0 + noise * ((i * 7919 % 13) as f64 / 6.0 - 1.0);
                self.acked += rate * wobble * STEP.as_secs_f64();
                if source > path {
                    self.waited += STEP;
                }
                self.now += STEP;
                let t = self.tune.update(self.now, self.acked as u64, self.waited);
                self.max_seen = self.max_seen.max(t);
                self.min_seen = self.min_seen.min(t);
                floor_steps += u64::from(t == FLOOR_BYTES);
            }
            self.at_floor = floor_steps as f64 / steps as f64;
        }

        fn rate_now(&self, capacity: f64, rtt: Duration) -> f64 {
            capacity.min(self.tune.threshold() as f64 / rtt.as_secs_f64())
        }
    }

    const FAST: f64 = f64::INFINITY;

    #[test]
    fn converges_near_the_bdp_of_a_long_fast_path() {
        for (capacity, rtt_ms) in [(100e6, 100), (100e6, 60), (40e6, 200), (250e6, 50)] {
            let rtt = Duration::from_millis(rtt_ms);
            let bdp = capacity * rtt.as_secs_f64();
            let mut sim = Sim::new(64 * MIB);
            sim.run(20.0, capacity, rtt, FAST, 0.0);
            let level = sim.tune.threshold() as f64;
            assert!(
                sim.rate_now(capacity, rtt) >= capacity * (1.0 - GAIN),
                "{capacity} B/s at {rtt_ms} ms: level {level} leaves the path underused"
            );
            assert!(
                level <= (2.0 * bdp).max(FLOOR_BYTES as f64),
                "{capacity} B/s at {rtt_ms} ms: level {level} is over twice the BDP {bdp}"
            );
        }
    }

    #[test]
    fn never_exceeds_the_bound_nor_goes_under_the_floor() {
        let rtt = Duration::from_millis(300);
        let mut sim = Sim::new(10 * MIB);
        sim.run(30.0, 1e9, rtt, FAST, 0.05);
        assert_eq!(sim.max_seen, 10 * MIB, "the bound is reached on a path that wants more");
        assert!(sim.min_seen >= FLOOR_BYTES);
        // A bound under the floor is the floor too: effectively fixed.
        let mut small = Sim::new(MIB);
        small.run(10.0, 1e9, rtt, FAST, 0.0);
        assert_eq!((small.min_seen, small.max_seen), (MIB, MIB));
    }

    #[test]
    fn comes_back_down_when_the_capacity_drops() {
        let rtt = Duration::from_millis(100);
        let mut sim = Sim::new(64 * MIB);
        sim.run(20.0, 100e6, rtt, FAST, 0.0);
        assert!(sim.tune.threshold() >= 8 * MIB, "grew first: {}", sim.tune.threshold());
        // The path slows to 10 MB/s (BDP 1 MB): the extra levels are only a queue now.
        sim.run(10.0, 10e6, rtt, FAST, 0.0);
        // Back at the floor, save for a probe up every REPROBE_EPOCHS (two epochs at 8 MiB,
        // each twice as long as one at 4 MiB: at 10 MB/s, 3.4 s of every 11.8).
        sim.run(20.0, 10e6, rtt, FAST, 0.0);
        assert!(sim.at_floor > 0.6, "{} of the time at the floor", sim.at_floor);
        // And it goes up again when the capacity returns.
        sim.run(30.0, 100e6, rtt, FAST, 0.0);
        assert!(sim.rate_now(100e6, rtt) >= 100e6 * (1.0 - GAIN), "{}", sim.tune.threshold());
    }

    #[test]
    fn stays_at_the_floor_on_loopback_even_with_noise() {
        let rtt = Duration::from_micros(200);
        let mut sim = Sim::new(DEFAULT_MAX_BYTES);
        sim.run(30.0, 300e6, rtt, FAST, 0.04);
        assert_eq!(sim.min_seen, FLOOR_BYTES, "never under today's default");
        assert_eq!(sim.max_seen, 2 * FLOOR_BYTES, "probes up one step at most: no gain");
        assert!(sim.at_floor > 0.75, "{} of the time at the floor", sim.at_floor);
    }

    #[test]
    fn a_slow_source_never_makes_it_grow() {
        let rtt = Duration::from_millis(100);
        let mut sim = Sim::new(DEFAULT_MAX_BYTES);
        // A 5 MB/s pipe on a path that would take 100 MB/s at a bigger threshold.
        sim.run(30.0, 100e6, rtt, 5e6, 0.0);
        assert_eq!(sim.max_seen, FLOOR_BYTES);
    }

    #[test]
    fn epochs_follow_the_buffer_turnover_within_bounds() {
        let mut t = Autotune::new(DEFAULT_MAX_BYTES);
        assert_eq!(t.epoch(), MIN_EPOCH, "nothing measured yet");
        t.last_rate = Some(8.0 * MIB as f64); // 4 MiB at 8 MiB/s: turns over in 0.5 s
        assert_eq!(t.epoch(), Duration::from_secs(1));
        t.last_rate = Some(1e12);
        assert_eq!(t.epoch(), MIN_EPOCH);
        t.last_rate = Some(0.0);
        assert_eq!(t.epoch(), MAX_EPOCH, "a stalled path");
    }

    #[test]
    fn fixed_and_auto_start_where_they_should() {
        assert_eq!(Threshold::Fixed(123).initial_bytes(), 123);
        assert_eq!(Threshold::default().initial_bytes(), FLOOR_BYTES);
        assert_eq!(Threshold::Auto { max_bytes: MIB }.initial_bytes(), MIB);
        assert_eq!(Threshold::default().to_string(), "auto");
    }
}
