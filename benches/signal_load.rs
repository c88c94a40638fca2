//! Load generator for `dcsend signal`: N concurrent rendezvous with the real client code
//! (`signal::client` and `signal::rendezvous`: join, SPAKE2, sealed hellos, a sealed offer
//! and answer of a real data-channel SDP, leave; no WebRTC), against servers it starts or
//! URLs it is given. Reports rendezvous/s, latency per rendezvous (p50/p99/max), errors, and
//! the CPU and RSS of every process involved (read from /proc).
//!
//! ```text
//! cargo build --release
//! cargo bench --bench signal_load -- --store memory --concurrency 1,10,100,1000
//! cargo bench --bench signal_load -- --store redis --instances 2 --concurrency 100
//! cargo bench --bench signal_load -- --store memory --open-rooms 10000     # memory per room
//! cargo bench --bench signal_load -- --pid 1234 http://10.0.0.5:8080/ http://10.0.0.6:8080/
//! ```
//!
//! With `--store`, it starts `--instances` `dcsend signal` processes (`--dcsend`, the release
//! build by default) with limits raised out of the way, and for `redis` one `redis-server` on
//! a free loopback port without persistence; all are killed at the end. Rendezvous `i` joins
//! its first peer through URL `i % n` and its second through URL `(i + 1) % n`, so with two
//! instances every room spans both.

use std::fs::File;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use dcsend::signal::client::Client;
use dcsend::signal::codec::{SdpKind, SessionDesc};
use dcsend::signal::rendezvous::{self, Mailbox};
use dcsend::signal::seal::{Handshake, Side};
use dcsend::signal::url::{PeerUrl, new_room_id, new_secret};

const SDP: &str = include_str!("../src/signal/sample.sdp");

/// Per step of a rendezvous, as a dcsend peer waits.
const STEP: Duration = Duration::from_secs(30);

#[derive(Parser)]
#[command(about = "N concurrent rendezvous against dcsend signal servers")]
struct Args {
    /// Server URLs (`http://HOST:PORT/`), when not started here.
    urls: Vec<String>,
    /// Start the servers here, keeping rooms in memory or in Redis.
    #[arg(long, value_enum)]
    store: Option<Store>,
    /// Servers to start (with --store).
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Concurrent rendezvous, one run per value.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    concurrency: Vec<usize>,
    /// Length of each run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Runs before the measured ones, to warm up connections and allocators.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Instead of rendezvous: open this many rooms (one peer each, which speaks once) and
    /// report the memory each takes.
    #[arg(long)]
    open_rooms: Option<usize>,
    /// Server processes to watch (CPU, RSS) when given URLs.
    #[arg(long)]
    pid: Vec<u32>,
    /// The dcsend binary to start (with --store).
    #[arg(long, default_value = "target/release/dcsend")]
    dcsend: PathBuf,
    /// Pass `-q` to the servers (warnings only) instead of their default info log.
    #[arg(long)]
    quiet: bool,
    /// Instead of rendezvous: run the cryptography of this many rendezvous (both sides' SPAKE2,
    /// hellos, sealed offer and answer) on one thread, without the network, and report the CPU
    /// time each takes: the generator's share that no server can remove.
    #[arg(long)]
    crypto_only: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Store {
    Memory,
    Redis,
}

/// A child process killed when dropped.
struct Kid {
    child: Child,
    name: String,
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_redis(dir: &Path) -> (Kid, String) {
    let port = free_port();
    let log = File::create(dir.join("redis.log")).unwrap();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("redis-server (apt-get install redis-server)");
    let url = format!("redis://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Kid { child, name: "redis-server".into() }, url)
}

fn start_server(
    dcsend: &Path,
    dir: &Path,
    i: usize,
    store: Option<&str>,
    quiet: bool,
) -> (Kid, String) {
    let log = dir.join(format!("signal-{i}.log"));
    let mut cmd = Command::new(dcsend);
    cmd.args(["signal", "--listen", "127.0.0.1:0"])
        .args(["--max-rooms", "1000000", "--max-rooms-per-client", "1000000"])
        .args(["--max-connections", "1000000", "--max-connections-per-client", "1000000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap());
    if let Some(url) = store {
        cmd.args(["--store", url]);
    }
    if quiet {
        cmd.arg("-q");
    }
    let child = cmd.spawn().unwrap_or_else(|e| panic!("{}: {e}", dcsend.display()));
    let kid = Kid { child, name: format!("dcsend signal #{i}") };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(addr) = text.lines().find_map(|l| l.strip_prefix("listening on ")) {
            return (kid, format!("{}/", addr.trim()));
        }
        assert!(Instant::now() < deadline, "the server did not start:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CPU seconds (user + system) and RSS bytes of a process, from /proc.
fn usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) close with ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // /proc counts in USER_HZ, which is 100 on Linux whatever the kernel's own tick.
    let ticks = 100.0;
    let cpu = (f[11].parse::<f64>().ok()? + f[12].parse::<f64>().ok()?) / ticks;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((cpu, kb * 1024))
}

/// Processes whose CPU and memory are reported.
struct Watched {
    procs: Vec<(String, u32)>,
}

impl Watched {
    fn snapshot(&self) -> Vec<(f64, u64)> {
        self.procs.iter().map(|(_, pid)| usage(*pid).unwrap_or((0.0, 0))).collect()
    }
}

/// One rendezvous from join to leave; its duration. Both peers share `http` (one connection
/// pool for the whole generator): building an HTTP client loads the root certificates, a cost
/// of starting a dcsend process, not of a rendezvous.
async fn rendezvous(http: &reqwest::Client, first: &str, second: &str) -> Result<Duration, String> {
    let room = new_room_id();
    let secret = new_secret();
    let url = |base: &str| PeerUrl::parse(&format!("{base}{room}#{secret}")).unwrap();
    let (u1, u2) = (url(first), url(second));
    let started = Instant::now();
    let quiet = || -> dcsend::signal::client::OnNotice { Box::new(|_| {}) };
    let one = Client::join_with(http.clone(), &u1, quiet()).await.map_err(|e| e.to_string())?;
    let two = Client::join_with(http.clone(), &u2, quiet()).await.map_err(|e| e.to_string())?;
    let offer = SessionDesc { kind: SdpKind::Offer, sdp: SDP.to_owned() };
    let answer = SessionDesc { kind: SdpKind::Answer, sdp: SDP.to_owned() };
    let (r1, r2) = tokio::join!(
        side(&one, &secret, &room, &offer, &answer),
        side(&two, &secret, &room, &offer, &answer)
    );
    r1.and(r2).map_err(|e| e.to_string())?;
    Ok(started.elapsed())
}

/// One peer's part: the PAKE and hellos, the offer or the answer, then leave.
async fn side(
    c: &Client,
    secret: &str,
    room: &str,
    offer: &SessionDesc,
    answer: &SessionDesc,
) -> Result<(), rendezvous::SignalError> {
    let deadline = tokio::time::Instant::now() + STEP;
    let (mut sealer, _) =
        rendezvous::authenticate(c, secret, room, c.side(), deadline, STEP, STEP).await?;
    if c.side() == Side::A {
        rendezvous::send_description(c, &mut sealer, offer).await?;
        rendezvous::recv_description(c, &mut sealer, SdpKind::Answer, STEP).await?;
    } else {
        rendezvous::recv_description(c, &mut sealer, SdpKind::Offer, STEP).await?;
        rendezvous::send_description(c, &mut sealer, answer).await?;
    }
    c.leave().await;
    Ok(())
}

#[derive(Default)]
struct Run {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

async fn run(
    http: &reqwest::Client,
    urls: Arc<Vec<String>>,
    concurrency: usize,
    length: Duration,
) -> (Run, Duration) {
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let end = started + length;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (urls, counter, http) = (urls.clone(), counter.clone(), http.clone());
            tokio::spawn(async move {
                let mut run = Run::default();
                while Instant::now() < end {
                    let i = counter.fetch_add(1, Ordering::Relaxed) as usize;
                    let (a, b) = (&urls[i % urls.len()], &urls[(i + 1) % urls.len()]);
                    match rendezvous(&http, a, b).await {
                        Ok(d) => run.latencies.push(d),
                        Err(e) => {
                            run.errors += 1;
                            run.first_error.get_or_insert(e);
                        }
                    }
                }
                run
            })
        })
        .collect();
    let mut all = Run::default();
    for w in workers {
        let r = w.await.unwrap();
        all.latencies.extend(r.latencies);
        all.errors += r.errors;
        if all.first_error.is_none() {
            all.first_error = r.first_error;
        }
    }
    (all, started.elapsed())
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Memory per open room: RSS of the servers and Redis's `used_memory` before and after.
async fn open_rooms(
    http: &reqwest::Client,
    urls: &[String],
    n: usize,
    watched: &Watched,
    redis: Option<&str>,
) {
    let rss = |w: &Watched| w.snapshot().iter().map(|(_, rss)| *rss).sum::<u64>();
    let redis_used = || async {
        let url = redis?;
        let client = redis::Client::open(url).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let info: String = redis::cmd("INFO").arg("memory").query_async(&mut conn).await.ok()?;
        info.lines().find_map(|l| l.strip_prefix("used_memory:")?.trim().parse::<u64>().ok())
    };
    let (rss0, redis0) = (rss(watched), redis_used().await);
    let urls = Arc::new(urls.to_vec());
    let next = Arc::new(AtomicU64::new(0));
    let held = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..50)
        .map(|_| {
            let (urls, next, held, http) = (urls.clone(), next.clone(), held.clone(), http.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= n {
                        return;
                    }
                    let room = new_room_id();
                    let url = PeerUrl::parse(&format!("{}{room}#a-b-1", urls[i % urls.len()]));
                    let client = Client::join_with(http.clone(), &url.unwrap(), Box::new(|_| {}))
                        .await
                        .unwrap();
                    // A PAKE message, as a dcsend peer sends at once (the seat is claimed).
                    let (_, pake) = Handshake::start("a-b-1", &room, client.side());
                    client.send(&pake).await.unwrap();
                    held.lock().await.push(client);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss1, redis1) = (rss(watched), redis_used().await);
    let per = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / n as f64;
    println!(
        "| {n} rooms open | servers' RSS {:.1} -> {:.1} MB: {:.0} bytes per room |",
        rss0 as f64 / 1e6,
        rss1 as f64 / 1e6,
        per(rss0, rss1)
    );
    if let (Some(a), Some(b)) = (redis0, redis1) {
        println!(
            "| {n} rooms open | Redis used_memory {:.1} -> {:.1} MB: {:.0} bytes per room |",
            a as f64 / 1e6,
            b as f64 / 1e6,
            per(a, b)
        );
    }
}

/// Both sides' cryptography of one rendezvous, as `signal::rendezvous` runs it.
fn crypto_of_one_rendezvous(offer: &SessionDesc, answer: &SessionDesc) {
    use dcsend::signal::seal::{Envelope, Inner};
    let (room, secret) = ("bench-room", "tidy-otter-42");
    let (ha, pa) = Handshake::start(secret, room, Side::A);
    let (hb, pb) = Handshake::start(secret, room, Side::B);
    let msg = |e: &Envelope| match e {
        Envelope::Pake { msg } => msg.clone(),
        _ => unreachable!(),
    };
    let sealed = |e: &Envelope| match e {
        Envelope::Sealed { sealed } => sealed.clone(),
        _ => unreachable!(),
    };
    let mut a = ha.finish(&msg(&pb)).unwrap();
    let mut b = hb.finish(&msg(&pa)).unwrap();
    let (hello_a, hello_b) = (a.hello(), b.hello());
    b.check_hello(&sealed(&hello_a)).unwrap();
    a.check_hello(&sealed(&hello_b)).unwrap();
    let o = a.seal(&Inner::Description { desc: offer.clone() });
    b.open(&sealed(&Envelope::from_json(&o.to_json()).unwrap())).unwrap();
    let r = b.seal(&Inner::Description { desc: answer.clone() });
    a.open(&sealed(&Envelope::from_json(&r.to_json()).unwrap())).unwrap();
}

fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

fn main() {
    // `cargo bench` passes --bench; it means nothing here.
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let args = Args::parse_from(args);
    raise_fd_limit();
    if let Some(n) = args.crypto_only {
        let offer = SessionDesc { kind: SdpKind::Offer, sdp: SDP.to_owned() };
        let answer = SessionDesc { kind: SdpKind::Answer, sdp: SDP.to_owned() };
        let cpu0 = usage(std::process::id()).map_or(0.0, |u| u.0);
        let started = Instant::now();
        for _ in 0..n {
            crypto_of_one_rendezvous(&offer, &answer);
        }
        let took = started.elapsed();
        let cpu = usage(std::process::id()).map_or(0.0, |u| u.0) - cpu0;
        println!(
            "crypto of {n} rendezvous: {:.0} us wall, {:.0} us CPU each (at most {:.0}/s per core)",
            took.as_secs_f64() / n as f64 * 1e6,
            cpu / n as f64 * 1e6,
            n as f64 / cpu.max(1e-9)
        );
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut kids = Vec::new();
    let mut urls = args.urls.clone();
    let mut redis_url = None;
    let mut watched = Watched { procs: Vec::new() };
    if let Some(store) = args.store {
        let store_url = (store == Store::Redis).then(|| {
            let (kid, url) = start_redis(dir.path());
            watched.procs.push((kid.name.clone(), kid.child.id()));
            kids.push(kid);
            url
        });
        for i in 0..args.instances {
            let (kid, url) =
                start_server(&args.dcsend, dir.path(), i, store_url.as_deref(), args.quiet);
            watched.procs.push((kid.name.clone(), kid.child.id()));
            kids.push(kid);
            urls.push(url);
        }
        redis_url = store_url;
    }
    for pid in &args.pid {
        watched.procs.push((format!("pid {pid}"), *pid));
    }
    watched.procs.push(("generator".into(), std::process::id()));
    assert!(!urls.is_empty(), "give server URLs or --store");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let http = Client::http().expect("an HTTP client");
    let store = match args.store {
        Some(Store::Memory) => format!("memory x{}", args.instances),
        Some(Store::Redis) => format!("Redis, {} instance(s)", args.instances),
        None => format!("{} URL(s)", urls.len()),
    };
    if let Some(n) = args.open_rooms {
        runtime.block_on(open_rooms(&http, &urls, n, &watched, redis_url.as_deref()));
        return;
    }
    let names: Vec<&str> = watched.procs.iter().map(|(n, _)| n.as_str()).collect();
    println!(
        "| store | concurrency | rendezvous | rendezvous/s | p50 ms | p99 ms | max ms | errors | CPU % ({0}) | CPU ms per rendezvous ({0}) | RSS MB (servers) |",
        names.join(", ")
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|");
    let urls = Arc::new(urls);
    for &c in &args.concurrency {
        if !args.warmup.is_zero() {
            runtime.block_on(run(&http, urls.clone(), c, args.warmup));
        }
        let before = watched.snapshot();
        let (mut r, took) = runtime.block_on(run(&http, urls.clone(), c, args.duration));
        let after = watched.snapshot();
        r.latencies.sort();
        let cpu: Vec<String> = before
            .iter()
            .zip(&after)
            .map(|((c0, _), (c1, _))| format!("{:.0}", (c1 - c0) / took.as_secs_f64() * 100.0))
            .collect();
        let done = r.latencies.len().max(1) as f64;
        let per: Vec<String> = before
            .iter()
            .zip(&after)
            .map(|((c0, _), (c1, _))| format!("{:.2}", (c1 - c0) / done * 1e3))
            .collect();
        let servers = watched.procs.iter().zip(&after);
        let rss: u64 = servers.filter(|((n, _), _)| n != "generator").map(|(_, (_, r))| r).sum();
        println!(
            "| {store} | {c} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {:.1} |",
            r.latencies.len(),
            r.latencies.len() as f64 / took.as_secs_f64(),
            ms(percentile(&r.latencies, 0.5)),
            ms(percentile(&r.latencies, 0.99)),
            ms(r.latencies.last().copied().unwrap_or_default()),
            r.errors,
            cpu.join(" / "),
            per.join(" / "),
            rss as f64 / 1e6,
        );
        if let Some(e) = r.first_error {
            eprintln!("first error at concurrency {c}: {e}");
        }
        let _ = std::io::stdout().flush();
    }
    drop(kids);
}
