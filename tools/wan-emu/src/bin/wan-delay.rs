//! Holds every packet of the given NFQUEUE queues for a one-way delay and drops a seeded
//! random fraction, until SIGINT or SIGTERM; then prints a JSON summary on stdout.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use wan_emu::delay_line::DelayLine;
use wan_emu::nfqueue::NfQueue;

/// Delay and lose the packets of NFQUEUE queues (a WAN path without netem).
///
/// Send each direction of a path to its own queue, e.g. in a router namespace:
///   iptables -t mangle -A FORWARD -i veth-a -j NFQUEUE --queue-num 0
///   iptables -t mangle -A FORWARD -i veth-b -j NFQUEUE --queue-num 1
///   wan-delay --queue 0 --queue 1 --delay-ms 10 --loss 1
/// gives a 20 ms round trip with 1% loss each way. Packets leave in the order they came.
/// Prints "wan-delay: ready" on stderr once the queues are bound (before that, queued
/// packets are dropped), and a JSON summary on stdout when stopped with SIGINT or SIGTERM.
/// Needs CAP_NET_ADMIN.
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// A queue to serve (repeat for more; each is its own delay line).
    #[arg(long = "queue", required = true)]
    queues: Vec<u16>,
    /// One-way delay in milliseconds (fractions allowed; 0 passes packets at once).
    #[arg(long, default_value_t = 0.0, value_parser = milliseconds)]
    delay_ms: f64,
    /// Percentage of packets to drop, in each queue.
    #[arg(long, default_value_t = 0.0, value_parser = percent)]
    loss: f64,
    /// Seed of the drop pattern (queue N uses seed + N).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Packets the kernel may hold per queue before it drops.
    #[arg(long, default_value_t = 1 << 17)]
    max_len: u32,
    /// Receive buffer of the netlink socket, bytes.
    #[arg(long, default_value_t = 64 << 20)]
    rcvbuf: usize,
    /// Real-time priority (SCHED_FIFO 1-99) so busy endpoints do not delay the line's
    /// wake-ups; 0 keeps the normal scheduler. Needs CAP_SYS_NICE; without it, a warning.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(0..=99))]
    priority: i32,
}

fn milliseconds(s: &str) -> Result<f64, String> {
    let ms: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if ms.is_finite() && ms >= 0.0 { Ok(ms) } else { Err("must be 0 or more".into()) }
}

fn percent(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=100.0).contains(&p) { Ok(p) } else { Err("must be from 0 to 100".into()) }
}

/// Packets taken per wake-up before the lines are served again, so a flood of arrivals
/// cannot hold back packets that are due.
const RECV_BATCH: usize = 256;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wan-delay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> std::io::Result<()> {
    // SIGINT and SIGTERM stay blocked except inside ppoll (the pselect pattern): one that
    // comes between the STOP check and the wait still ends the wait.
    // SAFETY: the handler only stores to an atomic; the sigsets are initialised before use.
    let waiting_mask = unsafe {
        let (mut stop_signals, mut old) = (std::mem::zeroed(), std::mem::zeroed());
        libc::sigemptyset(&mut stop_signals);
        for sig in [libc::SIGINT, libc::SIGTERM] {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
            libc::sigaddset(&mut stop_signals, sig);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &stop_signals, &mut old);
        old
    };
    // Wake-ups within 10 µs of the due time instead of the default 50 µs slack.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 10_000) };
    if args.priority > 0 {
        let param = libc::sched_param { sched_priority: args.priority };
        // SAFETY: a valid sched_param for this process. The line sleeps between packets, and
        // the kernel's real-time throttling keeps a runaway from taking every core.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } < 0 {
            let e = std::io::Error::last_os_error();
            eprintln!("wan-delay: warning: no real-time priority ({e}); wake-ups may be late");
        }
    }

    let delay = Duration::from_secs_f64(args.delay_ms / 1e3);
    let mut q = NfQueue::open(args.rcvbuf)
        .map_err(|e| with_context(e, "cannot open a netfilter netlink socket (root?)"))?;
    let mut lines = Vec::new();
    for &n in &args.queues {
        q.bind(n).map_err(|e| with_context(e, &format!("cannot bind queue {n}")))?;
        q.set_max_len(n, args.max_len)?;
        lines.push((n, DelayLine::new(delay, args.loss / 100.0, args.seed.wrapping_add(n.into()))));
    }
    let list: Vec<String> = args.queues.iter().map(u16::to_string).collect();
    eprintln!(
        "wan-delay: ready: queues {} held {} ms each way, {}% loss (seed {})",
        list.join(", "),
        args.delay_ms,
        args.loss,
        args.seed
    );

    let start = Instant::now();
    let mut verdicts = Vec::new();
    while !STOP.load(Ordering::Relaxed) {
        let now = Instant::now();
        for (n, line) in &mut lines {
            line.release(now, |v| verdicts.push(v));
            for v in verdicts.drain(..) {
                q.verdict(*n, v)?;
            }
        }
        let next = lines.iter().filter_map(|(_, l)| l.next_due()).min();
        let timeout = next.map(|t| t.saturating_duration_since(Instant::now()));
        if timeout != Some(Duration::ZERO) {
            q.wait(timeout, &waiting_mask)?;
        }
        // Only the queues bound above deliver packets to this socket.
        q.recv(RECV_BATCH, |p| {
            if let Some((_, line)) = lines.iter_mut().find(|(n, _)| *n == p.queue) {
                line.admit(Instant::now(), p.id, p.len);
            }
        })?;
    }
    let wall = start.elapsed();
    // Let whatever is still held go: the path is being taken down, not cut.
    for (n, line) in &mut lines {
        line.release(Instant::now() + delay, |v| verdicts.push(v));
        for v in verdicts.drain(..) {
            q.verdict(*n, v)?;
        }
    }
    print_summary(&lines, wall);
    Ok(())
}

fn with_context(e: std::io::Error, what: &str) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// One JSON line: each queue's counters (ours, and the kernel's drops from
/// /proc/self/net/netfilter/nfnetlink_queue), and the CPU this process used.
fn print_summary(lines: &[(u16, DelayLine)], wall: Duration) {
    let kernel =
        std::fs::read_to_string("/proc/self/net/netfilter/nfnetlink_queue").unwrap_or_default();
    let queues: Vec<String> = lines
        .iter()
        .map(|(n, line)| {
            let s = line.stats();
            // queue_number peer_portid queue_total copy_mode copy_range queue_dropped
            // user_dropped id_sequence 1
            let fields: Vec<u64> = kernel
                .lines()
                .map(|l| l.split_whitespace().filter_map(|f| f.parse().ok()).collect::<Vec<u64>>())
                .find(|f| f.len() >= 7 && f[0] == u64::from(*n))
                .unwrap_or_default();
            let field = |i: usize| fields.get(i).copied().unwrap_or(0);
            format!(
                "{{\"queue\":{n},\"packets\":{},\"bytes\":{},\"dropped\":{},\"most_held\":{},\
                 \"kernel_queue_full\":{},\"kernel_socket_full\":{}}}",
                s.packets,
                s.bytes,
                s.dropped,
                s.most_held,
                field(5),
                field(6)
            )
        })
        .collect();
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    println!(
        "{{\"queues\":[{}],\"cpu_s\":{:.3},\"wall_s\":{:.3}}}",
        queues.join(","),
        secs(ru.ru_utime) + secs(ru.ru_stime),
        wall.as_secs_f64()
    );
}
