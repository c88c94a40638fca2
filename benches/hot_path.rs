//! Benchmarks for the pure pieces on dcsend's hot path, through the public API:
//!
//! - `queue`: [`SendQueue`] threshold logic, a burst of 64 KiB binary payloads pushed,
//!   drained with `next_to_send` and released one by one with `on_bytes_sent` +
//!   `on_buffered`, at thresholds of 64 KiB and 1 MiB (per-message cost);
//! - `wire`: [`Control`] encode/decode of `file`, `eof` and `ack`, and [`Digest`] SHA-256
//!   throughput over 64 KiB and 1 MiB buffers;
//! - `stats`: one [`Stats`] tick cycle (`on_bytes`/`on_buffered`/`tick`) and the NDJSON
//!   serialisation of a [`Snapshot`](dcsend::progress::stats::Snapshot) and a `Summary`;
//! - `token`: the copy-paste signaling token `encode`/`decode` of a typical data-channel SDP.
//!
//! Run with `cargo bench --bench hot_path` (add `-- --sample-count 10` for a quick pass, or
//! `-- queue` to filter by name).

use std::time::Duration;

use bytes::Bytes;
use dcsend::peer::Outbound;
use dcsend::progress::stats::Stats;
use dcsend::signal::codec::{self, SdpKind, SessionDesc};
use dcsend::transfer::queue::SendQueue;
use dcsend::transfer::wire::{Control, Digest};
use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};

fn main() {
    divan::main();
}

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
const SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

#[divan::bench_group]
mod queue {
    use super::*;

    const CHUNK: usize = 64 * KIB;
    const MESSAGES: usize = 1024;

    /// A burst of `MESSAGES` payloads through the queue while a simulated channel releases
    /// one payload's worth of bytes at a time and reports its absolute buffered figure.
    #[divan::bench(args = [64 * KIB as u64, MIB as u64])]
    fn cycle(bencher: Bencher, threshold: u64) {
        let payload = Bytes::from(vec![0u8; CHUNK]);
        bencher
            .counter(ItemsCount::new(MESSAGES))
            .with_inputs(|| SendQueue::new(threshold, u64::MAX))
            .bench_local_values(|mut q| {
                for _ in 0..MESSAGES {
                    q.push(Outbound::Binary(payload.clone()));
                }
                while !q.is_empty() {
                    while let Some(p) = q.next_to_send() {
                        black_box(p);
                    }
                    q.on_bytes_sent(CHUNK as u64);
                    q.on_buffered(black_box(q.buffered()));
                }
                q
            });
    }
}

#[divan::bench_group]
mod wire {
    use super::*;

    fn control(kind: &str) -> Control {
        match kind {
            "file" => Control::File {
                name: Some("holiday-photos.tar".into()),
                size: Some(1 << 30),
                resume: false,
                exec: false,
                mtime: None,
                zstd: false,
            },
            "eof" => Control::Eof { bytes: 1 << 30, sha256: SHA256.into() },
            "ack" => Control::Ack { bytes: 1 << 30, ok: true },
            _ => unreachable!("unknown control kind {kind}"),
        }
    }

    #[divan::bench(args = ["file", "eof", "ack"])]
    fn encode(bencher: Bencher, kind: &str) {
        let msg = control(kind);
        bencher.bench_local(|| black_box(&msg).encode());
    }

    #[divan::bench(args = ["file", "eof", "ack"])]
    fn decode(bencher: Bencher, kind: &str) {
        let text = control(kind).encode();
        bencher.bench_local(|| Control::decode(black_box(&text)).unwrap());
    }

    #[divan::bench(args = [64 * KIB, MIB])]
    fn digest(bencher: Bencher, len: usize) {
        let buf = vec![0xa5u8; len];
        let mut digest = Digest::new();
        bencher.counter(BytesCount::new(len)).bench_local(|| digest.update(black_box(&buf)));
        black_box(digest.finish());
    }
}

#[divan::bench_group]
mod stats {
    use super::*;

    /// What the reporter does every tick: count bytes, record the buffered amount, snapshot.
    #[divan::bench]
    fn tick(bencher: Bencher) {
        let mut stats = Stats::new(Some(1 << 40), MIB as u64);
        let mut now = Duration::ZERO;
        bencher.bench_local(|| {
            now += Duration::from_millis(250);
            stats.on_bytes(black_box(64 * KIB as u64));
            stats.on_buffered(black_box(MIB as u64));
            stats.tick(now)
        });
    }

    #[divan::bench]
    fn snapshot_ndjson(bencher: Bencher) {
        let mut stats = Stats::new(Some(1 << 30), MIB as u64);
        stats.on_bytes(300 * MIB as u64);
        stats.on_buffered(MIB as u64);
        let snap = stats.tick(Duration::from_millis(2_500));
        bencher.bench_local(|| black_box(&snap).to_ndjson());
    }

    #[divan::bench]
    fn summary_ndjson(bencher: Bencher) {
        let mut stats = Stats::new(Some(1 << 30), MIB as u64);
        stats.on_bytes(1 << 30);
        let summary = stats.summary(Duration::from_secs(9), Some(SHA256.into()), Some(true));
        bencher.bench_local(|| black_box(&summary).to_ndjson());
    }
}

#[divan::bench_group]
mod token {
    use super::*;

    /// The shape of answer webrtc-rs and browsers produce for a data channel.
    const SDP: &str = include_str!("../src/signal/sample.sdp");

    fn offer() -> SessionDesc {
        SessionDesc { kind: SdpKind::Offer, sdp: SDP.to_owned() }
    }

    #[divan::bench]
    fn encode(bencher: Bencher) {
        let desc = offer();
        bencher.bench_local(|| codec::encode(black_box(&desc)));
    }

    #[divan::bench]
    fn decode(bencher: Bencher) {
        let token = codec::encode(&offer());
        bencher.bench_local(|| codec::decode(black_box(&token), SdpKind::Offer).unwrap());
    }
}
