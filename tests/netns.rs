//! Packet loss and slow links: the sender and the receiver each in their own network
//! namespace, joined by a veth pair made (and removed) by the test. Loss is made with
//! nftables (`numgen random` drop on each side's input, so both directions lose packets) and
//! the bandwidth is capped with `tc ... tbf` (no netem here). Each case sends a file and
//! checks exit codes, the bytes, a time bound and that the live view (`--stats` NDJSON) kept
//! updating, and prints the throughput on stderr (`cargo test --test netns -- --nocapture`).
//!
//! Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN) and `ip`, `nft`, `tc` (Debian: iproute2,
//! nftables). Where namespaces cannot be made or a tool is missing each test counts as
//! ignored, with the reason; `DCSEND_TEST_REQUIRE_NETNS=1` turns that skip into a failure.
//! The cases run one at a time (a lock), so their figures do not disturb each other.
//! `benches/lossy.sh` runs the same cases on a release build.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::netns::{dcsend_in, in_ns, ip, require_tools, run, summary_seconds};
use common::*;

/// One case at a time: each pushes two processes flat out on a 2-core machine.
static SERIAL: Mutex<()> = Mutex::new(());
/// Numbers the links made by this process: namespace names and the /30 subnet.
static NEXT_LINK: AtomicU32 = AtomicU32::new(0);

/// The bandwidth cap of the tbf cases, each direction (40 Mbit/s = 5 MB/s).
const RATE: &str = "40mbit";
/// The size every case sends (the figure).
const SIZE: usize = 32 << 20;
/// Progress lines come every 250 ms; a longer silence than this fails the live-view check.
const MAX_LINE_GAP: Duration = Duration::from_secs(2);

/// Two namespaces `dcs-PID-N-a` / `-b` joined by a veth pair (10.77.N.1/30 and .2);
/// everything is removed on drop, panic or not.
struct Link {
    ns: [String; 2],
    veth: [String; 2],
    addr: [String; 2],
}

impl Link {
    /// Makes the namespaces; `Err` (the reason to skip) only when they cannot be made.
    fn new() -> Result<Link, String> {
        require_tools(&[("ip", "-V"), ("nft", "--version"), ("tc", "-V")], "iproute2 nftables")?;
        let n = NEXT_LINK.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let link = Link {
            ns: [format!("dcs-{pid}-{n}-a"), format!("dcs-{pid}-{n}-b")],
            // At most 15 bytes: "dcs" + 7-digit pid + "-" + n + side.
            veth: [format!("dcs{pid}-{n}a"), format!("dcs{pid}-{n}b")],
            addr: [format!("10.77.{}.1", n % 256), format!("10.77.{}.2", n % 256)],
        };
        ip(&["netns", "add", &link.ns[0]])
            .map_err(|e| format!("cannot create network namespaces (not root?): {e}"))?;
        ip(&["netns", "add", &link.ns[1]])
            .map_err(|e| format!("cannot create network namespaces (not root?): {e}"))?;
        link.wire().unwrap_or_else(|e| panic!("setting up {}: {e}", link.ns[0]));
        Ok(link)
    }

    fn wire(&self) -> Result<(), String> {
        let [va, vb] = &self.veth;
        // gso_max_segs 1: the kernel splits UDP GSO batches into single datagrams before the
        // veth. Otherwise a veth passes a batch of up to 64 KB on as one skb, so one "packet"
        // dropped by nft is a burst of datagrams and tbf shapes batches.
        ip(&["link", "add", va, "gso_max_segs", "1", "type", "veth", "peer", "name", vb])?;
        ip(&["link", "set", vb, "gso_max_segs", "1"])?;
        for i in 0..2 {
            let (ns, dev) = (&self.ns[i], &self.veth[i]);
            ip(&["link", "set", dev, "netns", ns])?;
            ip(&["-n", ns, "addr", "add", &format!("{}/30", self.addr[i]), "dev", dev])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            // No default route and no multicast route, on purpose: dcsend must start on a
            // host like that (webrtc-rs's mDNS join fails there; `peer::mdns_mode`).
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(())
    }

    /// Drops `percent`% of the packets arriving on each side's veth: both directions lose.
    fn lose(&self, percent: u32) {
        for i in 0..2 {
            let rules = format!(
                "table inet dcsend_loss {{\n  chain input {{\n    \
                 type filter hook input priority 0; policy accept;\n    \
                 iifname \"{}\" numgen random mod 100 < {percent} counter drop;\n  }}\n}}\n",
                self.veth[i]
            );
            let mut nft = in_ns(&self.ns[i], "nft");
            nft.args(["-f", "-"]).stdin(Stdio::piped()).stderr(Stdio::piped());
            let mut child = nft.spawn().expect("spawn nft");
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), rules.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "nft: {}", String::from_utf8_lossy(&out.stderr));
        }
    }

    /// Packets dropped so far by [`Link::lose`], per receiving side (a, b).
    fn dropped(&self) -> [u64; 2] {
        [0, 1].map(|i| {
            let out = in_ns(&self.ns[i], "nft")
                .args(["list", "table", "inet", "dcsend_loss"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            text.split("counter packets ")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        })
    }

    /// Caps what each side sends at `rate` with a token bucket.
    fn cap(&self, rate: &str) {
        for i in 0..2 {
            let mut tc = in_ns(&self.ns[i], "tc");
            tc.args(["qdisc", "add", "dev", &self.veth[i], "root", "tbf", "rate", rate]);
            tc.args(["burst", "32kbit", "latency", "50ms"]);
            run(&mut tc).unwrap();
        }
    }

    /// `dcsend [SUBCOMMAND]` run inside namespace `side` (0 = a, 1 = b), environment
    /// scrubbed like [`dcsend`], bound to that side's veth address, no live view on stderr.
    fn dcsend(&self, side: usize, subcommand: &[&str]) -> Command {
        dcsend_in(&self.ns[side], &self.addr[side], subcommand)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and with it the pair.
        for ns in &self.ns {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["link", "del", &self.veth[0]]); // if it never moved into its namespace
    }
}

/// `{"t":"progress",...}` lines of a `--stats` file: (elapsed_s, bytes).
fn progress_lines(path: &Path) -> Vec<(f64, u64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["t"] == "progress")
        .map(|v| (v["elapsed_s"].as_f64().unwrap(), v["bytes"].as_u64().unwrap()))
        .collect()
}

/// Checks a `--stats` file kept updating: lines no further apart than [`MAX_LINE_GAP`],
/// bytes never going back and reaching `total`. Returns the longest time the byte count
/// stood still before reaching `total`, in seconds.
fn check_live_view(who: &str, path: &Path, total: u64) -> f64 {
    let lines = progress_lines(path);
    assert!(lines.len() >= 2, "{who}: {} progress lines in {}", lines.len(), path.display());
    let (mut stall, mut since) = (0.0f64, lines[0]);
    for w in lines.windows(2) {
        let ((t0, b0), (t1, b1)) = (w[0], w[1]);
        assert!(
            t1 - t0 <= MAX_LINE_GAP.as_secs_f64(),
            "{who}: no progress line from {t0:.2} s to {t1:.2} s"
        );
        assert!(b1 >= b0, "{who}: bytes went back from {b0} to {b1} at {t1:.2} s");
        if b1 > since.1 || b1 >= total {
            since = (t1, b1);
        }
        stall = stall.max(t1 - since.0);
    }
    let last = lines.last().unwrap().1;
    let summary = std::fs::read_to_string(path).unwrap();
    assert!(summary.contains("\"t\":\"summary\""), "{who}: no summary line");
    assert!(last <= total, "{who}: {last} bytes counted of {total}");
    stall
}

/// Waits for both peers (or the first failure), polling so the wait is bounded by `limit`
/// from `start` and the sender's stats file is seen growing (by the wall clock) while the
/// transfer runs. Returns the longest wall-clock time the file did not grow.
fn wait_both(
    send: &mut Proc,
    recv: &mut Proc,
    stats: &Path,
    start: Instant,
    limit: Duration,
) -> f64 {
    let (mut last_len, mut last_growth, mut longest) = (0u64, Instant::now(), 0.0f64);
    let mut send_done = None;
    loop {
        if send_done.is_none() {
            send_done = send.child.try_wait().unwrap();
            let len = std::fs::metadata(stats).map(|m| m.len()).unwrap_or(0);
            if len > last_len {
                longest = longest.max(last_growth.elapsed().as_secs_f64());
                (last_len, last_growth) = (len, Instant::now());
            }
        }
        let recv_done = recv.child.try_wait().unwrap();
        let failed = [send_done, recv_done].iter().flatten().any(|s| !s.success());
        if failed || (send_done.is_some() && recv_done.is_some()) {
            break;
        }
        assert!(
            start.elapsed() < limit,
            "the transfer did not finish within {limit:?}; sender stderr:\n{}\nreceiver stderr:\n{}",
            send.stderr_text(),
            recv.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    longest
}

/// What one case does to the link.
struct Case {
    name: &'static str,
    loss_percent: u32,
    rate: Option<&'static str>,
    size: usize,
    /// Bound on the whole transfer, both processes started to both exited.
    limit: Duration,
}

fn transfer(case: Case) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let link = match Link::new() {
        Ok(link) => link,
        Err(why) => return skip("NETNS", &format!("netns case {}: {why}", case.name)),
    };
    if case.loss_percent > 0 {
        link.lose(case.loss_percent);
    }
    if let Some(rate) = case.rate {
        link.cap(rate);
    }

    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(case.size, 0x1055 + case.loss_percent as u64);
    let src = dir.path().join("payload.bin");
    std::fs::write(&src, &data).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let t = Tokens::in_dir(dir.path());
    let (send_stats, recv_stats): (PathBuf, PathBuf) =
        (dir.path().join("send.ndjson"), dir.path().join("recv.ndjson"));

    let mut rx = link.dcsend(1, &["recv"]);
    rx.arg("-o").arg(format!("{}/", out.display()));
    rx.arg("--sdp-in")
        .arg(&t.offer)
        .arg("--sdp-out")
        .arg(&t.answer)
        .arg("--stats")
        .arg(&recv_stats);
    let mut tx = link.dcsend(0, &[]);
    tx.arg(&src).arg("--sdp-out").arg(&t.offer).arg("--sdp-in").arg(&t.answer);
    tx.arg("--stats").arg(&send_stats);

    let start = Instant::now();
    let mut recv = Proc::spawn("recv", rx, dir.path());
    let mut send = Proc::spawn("send", tx, dir.path());
    let silent = wait_both(&mut send, &mut recv, &send_stats, start, case.limit);
    let wall = start.elapsed();
    send.expect_code(0, WAIT);
    recv.expect_code(0, WAIT);

    let got = std::fs::read(out.join("payload.bin")).unwrap();
    assert!(got.len() == data.len() && got == data, "{}: the received file differs", case.name);
    let total = data.len() as u64;
    let send_stall = check_live_view("sender", &send_stats, total);
    let recv_stall = check_live_view("receiver", &recv_stats, total);
    assert!(silent < 3.0, "{}: the sender's stats file did not grow for {silent:.1} s", case.name);
    let dropped = link.dropped();
    if case.loss_percent > 0 {
        assert!(dropped.iter().all(|&d| d > 0), "{}: nft dropped {dropped:?}", case.name);
    }

    let secs = summary_seconds(&send_stats);
    eprintln!(
        "netns {:<10} {:>3} MiB: {:>6.2} MB/s (transfer {:.2} s; wall {:.2} s, {:.2} MB/s) \
         | loss {}%, rate {}, dropped a<-b {} b<-a {} | longest stall: sender {send_stall:.1} s, \
         receiver {recv_stall:.1} s",
        case.name,
        case.size >> 20,
        total as f64 / secs / 1e6,
        secs,
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64() / 1e6,
        case.loss_percent,
        case.rate.unwrap_or("-"),
        dropped[0],
        dropped[1],
    );
}

fn clean_link() {
    let limit = Duration::from_secs(30);
    transfer(Case { name: "clean", loss_percent: 0, rate: None, size: SIZE, limit });
}

fn one_percent_loss() {
    let limit = Duration::from_secs(90);
    transfer(Case { name: "loss1", loss_percent: 1, rate: None, size: SIZE, limit });
}

fn tbf_40_mbit() {
    // 32 MiB at 5 MB/s is 6.7 s at best.
    let limit = Duration::from_secs(30);
    transfer(Case { name: "tbf", loss_percent: 0, rate: Some(RATE), size: SIZE, limit });
}

fn one_percent_loss_and_tbf_40_mbit() {
    let limit = Duration::from_secs(90);
    transfer(Case { name: "loss1+tbf", loss_percent: 1, rate: Some(RATE), size: SIZE, limit });
}

/// The slowest case: at 5% loss each way many chunks are recovered by the retransmission
/// timer (200 ms at the least with the vendored rtc-sctp; published rtc-sctp waits 1 s, and
/// this case took 7 minutes), so it runs for tens of seconds (42 s measured in a debug
/// build). It exercises the sender's finish deadline, which counts time without progress, not
/// time since the last byte entered the channel (a fixed 30 s there failed this case while
/// data still arrived).
fn five_percent_loss() {
    let limit = Duration::from_secs(300);
    transfer(Case { name: "loss5", loss_percent: 5, rate: None, size: SIZE, limit });
}

/// Setting up a session on a link that loses 10% of the packets each way, [`SESSIONS`] times
/// in a row: every one must connect and deliver. Each session only sends a few bytes, so what
/// is tested is the setup: ICE checks, the DTLS handshake and the SCTP association, all under
/// loss. The published rtc-dtls 0.21.1 failed about one setup in five here (its handshake
/// stopped retransmitting a lost flight once the peer repeated its own; see
/// vendor/rtc-dtls/PATCHES.md), so it failed this test most of the time; TCP, and browsers,
/// connect at this loss. (At 15% the published crate fails more often still, but a session
/// then also risks its last acknowledgement outliving the receiver's 5 s linger, which is not
/// what this test is about.) Each session is bounded by `--connect-timeout`; prints the setup
/// times (`-- --nocapture`).
fn sessions_set_up_under_heavy_loss() {
    /// Sessions set up, one after the other.
    const SESSIONS: usize = 12;
    const LOSS_PERCENT: u32 = 10;
    /// Bound on one session's setup: well above the slowest measured at this loss (12 s in 140
    /// sessions; DTLS alone: 6 s in 1000 simulated handshakes).
    const CONNECT_TIMEOUT: &str = "20s";
    let limit = Duration::from_secs(30);

    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let link = match Link::new() {
        Ok(link) => link,
        Err(why) => return skip("NETNS", &format!("netns setup under loss: {why}")),
    };
    link.lose(LOSS_PERCENT);
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(4096, 0x5e70);
    let src = dir.path().join("hello.bin");
    std::fs::write(&src, &data).unwrap();

    let mut times = vec![];
    for session in 0..SESSIONS {
        let sub = dir.path().join(format!("session{session}"));
        let out = sub.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let t = Tokens::in_dir(&sub);
        let mut rx = link.dcsend(1, &["recv"]);
        rx.arg("-o").arg(format!("{}/", out.display()));
        rx.arg("--sdp-in").arg(&t.offer).arg("--sdp-out").arg(&t.answer);
        rx.args(["--connect-timeout", CONNECT_TIMEOUT, "-v"]);
        let mut tx = link.dcsend(0, &[]);
        tx.arg(&src).arg("--sdp-out").arg(&t.offer).arg("--sdp-in").arg(&t.answer);
        tx.args(["--connect-timeout", CONNECT_TIMEOUT, "-v"]);

        let start = Instant::now();
        let mut recv = Proc::spawn("recv", rx, &sub);
        let mut send = Proc::spawn("send", tx, &sub);
        let (sent, received) = (send.wait(limit), recv.wait(limit));
        let took = start.elapsed();
        assert!(
            sent.success() && received.success(),
            "session {session} of {SESSIONS} at {LOSS_PERCENT}% loss failed after {took:.1?} \
             (sender {sent}, receiver {received}); sender stderr:\n{}\nreceiver stderr:\n{}",
            send.stderr_text(),
            recv.stderr_text()
        );
        let got = std::fs::read(out.join("hello.bin")).unwrap();
        assert!(got == data, "session {session}: the received file differs");
        times.push(took.as_secs_f64());
    }
    let dropped = link.dropped();
    assert!(dropped.iter().all(|&d| d > 0), "nft dropped {dropped:?}");
    eprintln!(
        "netns setup      {SESSIONS} sessions at {LOSS_PERCENT}% loss each way, all connected: \
         {} s (wall, per session) | dropped a<-b {} b<-a {}",
        times.iter().map(|t| format!("{t:.1}")).collect::<Vec<_>>().join(" "),
        dropped[0],
        dropped[1],
    );
}

crate::skippable_tests!(
    clean_link,
    one_percent_loss,
    tbf_40_mbit,
    one_percent_loss_and_tbf_40_mbit,
    five_percent_loss,
    sessions_set_up_under_heavy_loss,
);
