//! An emulated WAN: the sender and the receiver in two network namespaces joined through a
//! third, the router, whose forwarding path sends each direction to its own NFQUEUE queue,
//! served by `wan-delay` (tools/wan-emu): a user-space delay line with seeded random loss
//! (this kernel has no netem). The veths have GSO/GRO/TSO off, so each packet the delay line
//! sees, and may drop, is one datagram.
//!
//! The cases check that the path delays (ping round trips at or above the setting), that
//! dcsend and the bench's TCP baseline deliver byte-exact across a 20 ms round trip, that
//! dcsend does under 1% loss each way at 2 ms with drops in both directions, and through a
//! bottleneck whose full queue drops bursts of packets. Bounds are generous and nothing
//! asserts a speed: `benches/wan.sh` measures, on a release build.
//!
//! Needs root and `ip`, `iptables` (with the NFQUEUE target), `ethtool`, `ping` (Debian:
//! iproute2, iptables, ethtool, iputils-ping). The tools crate is built with cargo on first
//! use. Where namespaces cannot be made or a tool is missing each test counts as ignored,
//! with the reason; `DCSEND_TEST_REQUIRE_WAN=1` turns that skip into a failure. One case at a time.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::netns::{dcsend_in, in_ns, ip, require_tools, run, summary_seconds};
use common::*;

/// One case at a time: each pushes two processes and the delay line on a 2-core machine.
static SERIAL: Mutex<()> = Mutex::new(());
/// Numbers the paths made by this process (namespace and veth names).
static NEXT_PATH: AtomicU32 = AtomicU32::new(0);

/// The endpoints' addresses: A on the router's first link, B on its second.
const ADDR: [&str; 2] = ["10.78.1.1", "10.78.2.1"];
/// The delay line's queue for packets from side 0 and from side 1.
const QUEUE: [u16; 2] = [0, 1];
/// Seed of the drop pattern: queue 0 first drops its 99th packet, queue 1 its 43rd, so a
/// transfer of a few hundred packets each way sees loss in both directions.
const SEED: u64 = 1;

/// The tools crate's binaries (`wan-delay`, `tcp-bulk`), built once per test process with the
/// cargo that runs the tests. They are a workspace member, not part of dcsend, so
/// `cargo test` does not build them by itself.
fn tool(name: &str) -> PathBuf {
    static BUILT: OnceLock<Vec<PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
        cmd.args(["build", "-p", "wan-emu", "--bins", "--message-format=json-render-diagnostics"]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let out = cmd.stderr(Stdio::inherit()).output().expect("run cargo build -p wan-emu");
        assert!(out.status.success(), "cargo build -p wan-emu failed: {}", out.status);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["executable"].as_str().map(PathBuf::from))
            .collect()
    });
    built
        .iter()
        .find(|p| p.file_name().is_some_and(|f| f == name))
        .unwrap_or_else(|| panic!("cargo built no {name}: {built:?}"))
        .clone()
}

/// What the delay line counted, from its summary.
#[derive(Debug)]
struct EmuSummary {
    /// Packets through each queue (from side 0, from side 1).
    packets: [u64; 2],
    /// Packets it dropped at random, per queue.
    dropped: [u64; 2],
    /// Packets the kernel dropped because the queue or the socket was full: must be 0.
    kernel_dropped: u64,
}

/// A path A <-> router <-> B with the delay line running in the router; all of it removed
/// on drop, panic or not.
struct Wan {
    /// a, router, b
    ns: [String; 3],
    emu: Option<Proc>,
    dir: tempfile::TempDir,
    /// The veths: A's end, the router's end towards A, B's end, the router's end towards B.
    veths: [String; 4],
}

impl Wan {
    /// `rtt_ms` is the round trip the delay line adds (half each way); `loss_percent` is
    /// dropped in each direction. `Err` (the reason to skip) only when the namespaces cannot
    /// be made or a tool is missing.
    fn new(rtt_ms: f64, loss_percent: f64) -> Result<Wan, String> {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/wan-emu");
        if !crate_dir.exists() {
            return Err(format!("{} is not here (a packaged crate?)", crate_dir.display()));
        }
        require_tools(
            &[("ip", "-V"), ("iptables", "-V"), ("ethtool", "--version"), ("ping", "-V")],
            "iproute2 iptables ethtool iputils-ping",
        )?;
        let n = NEXT_PATH.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let ns = ["a", "r", "b"].map(|s| format!("dcw-{pid}-{n}-{s}"));
        ip(&["netns", "add", &ns[0]])
            .map_err(|e| format!("cannot create network namespaces (not root?): {e}"))?;
        // At most 15 bytes: "dcw" + 7-digit pid + "-" + n + side.
        let veths = ["a", "ra", "b", "rb"].map(|s| format!("dcw{pid}-{n}{s}"));
        let mut wan = Wan { ns, emu: None, dir: tempfile::tempdir().unwrap(), veths };
        wan.wire().unwrap_or_else(|e| panic!("setting up {}: {e}", wan.ns[1]));
        wan.start_emulator(rtt_ms / 2.0, loss_percent);
        Ok(wan)
    }

    fn wire(&self) -> Result<(), String> {
        let [a, r, b] = &self.ns;
        ip(&["netns", "add", r])?;
        ip(&["netns", "add", b])?;
        let [va, vra, vb, vrb] = &self.veths;
        ip(&["link", "add", va, "netns", a, "type", "veth", "peer", "name", vra, "netns", r])?;
        ip(&["link", "add", vb, "netns", b, "type", "veth", "peer", "name", vrb, "netns", r])?;
        ip(&["-n", a, "addr", "add", &format!("{}/24", ADDR[0]), "dev", va])?;
        ip(&["-n", r, "addr", "add", "10.78.1.254/24", "dev", vra])?;
        ip(&["-n", b, "addr", "add", &format!("{}/24", ADDR[1]), "dev", vb])?;
        ip(&["-n", r, "addr", "add", "10.78.2.254/24", "dev", vrb])?;
        for (ns, dev) in [(a, va), (r, vra), (r, vrb), (b, vb)] {
            // No segmentation offloads: the delay line sees (and drops) single datagrams.
            run(in_ns(ns, "ethtool").args(["-K", dev, "gso", "off", "gro", "off", "tso", "off"]))?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        ip(&["-n", a, "route", "add", "default", "via", "10.78.1.254"])?;
        ip(&["-n", b, "route", "add", "default", "via", "10.78.2.254"])?;
        run(in_ns(r, "sysctl").args(["-qw", "net.ipv4.ip_forward=1"]))?;
        for (dev, queue) in [(vra, QUEUE[0]), (vrb, QUEUE[1])] {
            let mut rule = in_ns(r, "iptables");
            rule.args(["-t", "mangle", "-A", "FORWARD", "-i", dev, "-j", "NFQUEUE"]);
            run(rule.args(["--queue-num", &queue.to_string()]))?;
        }
        Ok(())
    }

    fn start_emulator(&mut self, one_way_ms: f64, loss_percent: f64) {
        let mut cmd = in_ns(&self.ns[1], tool("wan-delay").to_str().unwrap());
        for q in QUEUE {
            cmd.args(["--queue", &q.to_string()]);
        }
        cmd.args(["--delay-ms", &one_way_ms.to_string(), "--loss", &loss_percent.to_string()]);
        cmd.args(["--seed", &SEED.to_string()]).stdin(Stdio::null());
        let emu = Proc::spawn("wan-delay", cmd, self.dir.path());
        wait_until(Duration::from_secs(10), "wan-delay's ready line", || {
            let lines = emu.stderr_lines();
            assert!(
                !lines.iter().any(|l| l.starts_with("wan-delay:") && !l.contains("ready")),
                "wan-delay failed: {lines:?}"
            );
            lines.iter().any(|l| l.contains("ready"))
        });
        self.emu = Some(emu);
    }

    /// The router's veth ends: towards A, towards B.
    fn router_devs(&self) -> [&String; 2] {
        [&self.veths[1], &self.veths[3]]
    }

    /// A bottleneck of `mbit` Mbit/s each way at the router (tc tbf), its drop-tail queue
    /// holding `queue_ms` of that rate: a sender that outruns it loses bursts of packets.
    fn bottleneck(&self, mbit: u32, queue_ms: u32) {
        for dev in self.router_devs() {
            let mut tbf = in_ns(&self.ns[1], "tc");
            tbf.args(["qdisc", "add", "dev", dev, "root", "tbf", "rate", &format!("{mbit}mbit")]);
            tbf.args(["burst", "64kb", "limit", &(mbit * 125 * queue_ms).to_string()]);
            run(&mut tbf).unwrap_or_else(|e| panic!("tbf on {dev}: {e}"));
        }
    }

    /// Packets the bottleneck's queues dropped so far, both ways.
    fn queue_drops(&self) -> u64 {
        self.router_devs()
            .into_iter()
            .map(|dev| {
                let out = in_ns(&self.ns[1], "tc")
                    .args(["-s", "qdisc", "show", "dev", dev])
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout);
                let dropped = text.split("dropped ").nth(1).and_then(|t| {
                    t.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u64>().ok()
                });
                dropped.unwrap_or_else(|| panic!("no drop count from tc for {dev}: {text}"))
            })
            .sum()
    }

    /// Stops the delay line and reads its summary.
    fn stop_emulator(&mut self) -> EmuSummary {
        let mut emu = self.emu.take().expect("the delay line runs");
        emu.signal(nix::sys::signal::Signal::SIGTERM);
        emu.expect_code(0, WAIT);
        let text = String::from_utf8(emu.stdout_bytes()).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("wan-delay's summary {text:?}: {e}"));
        let queue = |i: usize, key: &str| v["queues"][i][key].as_u64().unwrap();
        EmuSummary {
            packets: [0, 1].map(|i| queue(i, "packets")),
            dropped: [0, 1].map(|i| queue(i, "dropped")),
            kernel_dropped: (0..2)
                .map(|i| queue(i, "kernel_queue_full") + queue(i, "kernel_socket_full"))
                .sum(),
        }
    }

    /// Round trips of `count` pings from A to B, in ms.
    fn ping(&self, count: u32) -> Vec<f64> {
        let out = in_ns(&self.ns[0], "ping")
            .args(["-n", "-c", &count.to_string(), "-i", "0.05", "-W", "2", ADDR[1]])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "ping A -> B failed: {text}");
        text.lines()
            .filter_map(|l| l.split("time=").nth(1)?.split_whitespace().next()?.parse().ok())
            .collect()
    }

    /// `dcsend [SUBCOMMAND]` on side 0 (A) or 1 (B).
    fn dcsend(&self, side: usize, subcommand: &[&str]) -> Command {
        dcsend_in(&self.ns[side * 2], ADDR[side], subcommand)
    }

    /// `tcp-bulk ARGS...` on side 0 (A) or 1 (B).
    fn tcp_bulk(&self, side: usize) -> Command {
        let mut cmd = in_ns(&self.ns[side * 2], tool("tcp-bulk").to_str().unwrap());
        cmd.stdin(Stdio::null());
        cmd
    }
}

impl Drop for Wan {
    fn drop(&mut self) {
        drop(self.emu.take()); // killed by its handle
        for ns in &self.ns {
            let _ = ip(&["netns", "del", ns]); // takes the veth ends in it along
        }
    }
}

/// The path for a case, or `None` (after saying why) when it cannot be made here.
fn path_or_skip(case: &str, rtt_ms: f64, loss_percent: f64) -> Option<Wan> {
    match Wan::new(rtt_ms, loss_percent) {
        Ok(wan) => Some(wan),
        Err(why) => {
            skip("WAN", &format!("wan case {case}: {why}"));
            None
        }
    }
}

/// Sends `size` pseudo-random bytes from A to B with dcsend (file -> `recv -o DIR`, token
/// files), within `limit`; checks both exit codes and the bytes. Returns MB/s over the
/// sender's transfer clock.
fn dcsend_transfer(wan: &Wan, size: usize, limit: Duration) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(size, 0x3a7 + size as u64);
    let src = dir.path().join("payload.bin");
    std::fs::write(&src, &data).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let t = Tokens::in_dir(dir.path());
    let stats = dir.path().join("send.ndjson");

    let mut rx = wan.dcsend(1, &["recv"]);
    rx.arg("-o").arg(format!("{}/", out.display()));
    rx.arg("--sdp-in").arg(&t.offer).arg("--sdp-out").arg(&t.answer);
    let mut tx = wan.dcsend(0, &[]);
    tx.arg(&src).arg("--sdp-out").arg(&t.offer).arg("--sdp-in").arg(&t.answer);
    tx.arg("--stats").arg(&stats);
    let mut recv = Proc::spawn("recv", rx, dir.path());
    let mut send = Proc::spawn("send", tx, dir.path());
    send.expect_code(0, limit);
    recv.expect_code(0, WAIT);

    let got = std::fs::read(out.join("payload.bin")).unwrap();
    assert!(got.len() == data.len() && got == data, "the received file differs");
    data.len() as f64 / summary_seconds(&stats) / 1e6
}

/// Sends `size` bytes from A to B with the bench's TCP baseline (`tcp-bulk`, CUBIC set on the
/// socket), within `limit`; checks the exit codes, the congestion control and the bytes.
/// Returns MB/s over the sender's clock.
fn tcp_transfer(wan: &Wan, size: usize, limit: Duration) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(size, 0x7c9 + size as u64);
    let src = dir.path().join("payload.bin");
    std::fs::write(&src, &data).unwrap();
    let dst = dir.path().join("out.bin");
    let listen = format!("{}:5201", ADDR[1]);

    let mut rx = wan.tcp_bulk(1);
    rx.args(["recv", "--listen", &listen, "-o"]).arg(&dst);
    let mut recv = Proc::spawn("tcp-recv", rx, dir.path());
    let mut tx = wan.tcp_bulk(0);
    tx.args(["send", "--cc", "cubic", "--to", &listen]).arg(&src);
    let mut send = Proc::spawn("tcp-send", tx, dir.path());
    send.expect_code(0, limit);
    recv.expect_code(0, WAIT);

    assert_eq!(std::fs::read(&dst).unwrap(), data, "TCP: the received file differs");
    let v: serde_json::Value = serde_json::from_slice(&send.stdout_bytes()).unwrap();
    assert_eq!(v["cc"], "cubic", "the sender's socket runs {}", v["cc"]);
    assert_eq!(v["bytes"].as_u64(), Some(size as u64));
    size as f64 / v["seconds"].as_f64().unwrap() / 1e6
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn the_path_delays_by_the_setting() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for rtt in [2.0, 60.0] {
        let Some(mut wan) = path_or_skip("ping", rtt, 0.0) else { return };
        let mut rtts = wan.ping(10);
        assert_eq!(rtts.len(), 10, "ping answered {rtts:?}");
        let (min, med) = (rtts.iter().copied().fold(f64::MAX, f64::min), median(&mut rtts));
        eprintln!("wan ping at {rtt} ms: min {min:.2} ms, median {med:.2} ms");
        assert!(min >= rtt, "a round trip of {min} ms under a {rtt} ms setting: {rtts:?}");
        // Generous: a busy 2-core machine wakes the delay line late now and then.
        assert!(med < rtt + 20.0, "median round trip {med} ms at a {rtt} ms setting: {rtts:?}");
        let emu = wan.stop_emulator();
        assert!(emu.packets.iter().all(|&p| p >= 10), "the delay line saw {emu:?}");
        assert_eq!((emu.dropped, emu.kernel_dropped), ([0, 0], 0), "{emu:?}");
    }
}

fn clean_20_ms_dcsend_and_tcp() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut wan) = path_or_skip("clean 20 ms", 20.0, 0.0) else { return };
    let start = Instant::now();
    let dcsend = dcsend_transfer(&wan, 8 << 20, Duration::from_secs(60));
    let tcp = tcp_transfer(&wan, 8 << 20, Duration::from_secs(60));
    let emu = wan.stop_emulator();
    eprintln!(
        "wan 20 ms, 0%, 8 MiB: dcsend {dcsend:.1} MB/s, TCP {tcp:.1} MB/s ({:.1} s) | {emu:?}",
        start.elapsed().as_secs_f64()
    );
    assert_eq!((emu.dropped, emu.kernel_dropped), ([0, 0], 0), "{emu:?}");
}

fn one_percent_loss_at_2_ms() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut wan) = path_or_skip("2 ms 1%", 2.0, 1.0) else { return };
    let start = Instant::now();
    // webrtc-rs 0.21's SCTP waits at least 1 s for each loss fast retransmit misses: a
    // small file, a bound with room for many of those.
    let dcsend = dcsend_transfer(&wan, 2 << 20, Duration::from_secs(90));
    let emu = wan.stop_emulator();
    eprintln!(
        "wan 2 ms, 1%, 2 MiB: dcsend {dcsend:.2} MB/s ({:.1} s) | {emu:?}",
        start.elapsed().as_secs_f64()
    );
    assert!(emu.dropped.iter().all(|&d| d > 0), "no loss in one direction: {emu:?}");
    assert_eq!(emu.kernel_dropped, 0, "{emu:?}");
}

/// A sender that outruns a bottleneck fills its queue, which then drops a burst of packets:
/// every one of them must be repaired, without a stall (fast retransmission used to repair
/// one per round trip). 20 Mbit/s is well below what a debug build sends, even on a loaded
/// machine, so the queue does fill.
fn full_bottleneck_queue_at_20_ms() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut wan) = path_or_skip("bottleneck", 20.0, 0.0) else { return };
    wan.bottleneck(20, 40);
    let start = Instant::now();
    let dcsend = dcsend_transfer(&wan, 8 << 20, Duration::from_secs(60));
    let drops = wan.queue_drops();
    let emu = wan.stop_emulator();
    eprintln!(
        "wan 20 ms, 20 Mbit/s, 8 MiB: dcsend {dcsend:.2} MB/s ({:.1} s), {drops} dropped \
         by the full queue | {emu:?}",
        start.elapsed().as_secs_f64()
    );
    assert!(drops > 0, "the queue never filled: the case did not test a burst of losses");
    assert_eq!((emu.dropped, emu.kernel_dropped), ([0, 0], 0), "{emu:?}");
}

/// The suite's own paths are gone once a case ends (no namespace left behind).
fn leaves_no_namespace_behind() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(wan) = path_or_skip("cleanup", 0.0, 0.0) else { return };
    let names = wan.ns.clone();
    drop(wan);
    let listed = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    for ns in names {
        assert!(!listed.contains(&ns), "{ns} is still there: {listed}");
    }
}

crate::skippable_tests!(
    the_path_delays_by_the_setting,
    clean_20_ms_dcsend_and_tcp,
    one_percent_loss_at_2_ms,
    full_bottleneck_queue_at_20_ms,
    leaves_no_namespace_behind,
);
