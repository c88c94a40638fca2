//! Command-line definition (clap derive). Raw arguments only: `config.rs` turns them into
//! validated configs. The doc comment of each field is its help text: the first line shows
//! in `-h`, the rest in `--help`.
//!
//! Must not import the core (`transfer`, `peer`, `signal`, `progress`).

pub mod config;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// An exit-code table (`--help`, man pages): [`crate::error::EXIT_CODES`], or
/// [`crate::error::BENCH_EXIT_CODES`] for `bench`. Each row fits 80 columns, so clap never
/// wraps one (it would indent the continuation under the code, not under the meaning).
pub fn exit_codes(table: &[(u8, &str)]) -> String {
    let rows: Vec<String> =
        table.iter().map(|(code, meaning)| format!("  {code:<4} {meaning}")).collect();
    format!("Exit codes:\n{}", rows.join("\n"))
}

/// `--help` text after the options of a subcommand (`None` = the top level): its example
/// blocks, its notes (prose, one line per paragraph: clap wraps it to the terminal), the
/// units and its exit codes. Examples, units and exit codes are printed as written: each of
/// their lines fits 80 columns (`tests/cli.rs` checks that clap never breaks one).
fn long_help(subcommand: Option<&str>) -> String {
    let exit = exit_code_table(subcommand).map(exit_codes);
    let parts = [examples(subcommand), notes(subcommand), units(subcommand), exit.as_deref()];
    parts.into_iter().flatten().collect::<Vec<_>>().join("\n\n")
}

const SEND_EXAMPLES: &str = "\
Examples:
  Through a signaling server (dcsend signal); the sender says what to run:
    A$ dcsend big.iso --peer http://host:8080/
       dcsend: room k7f3q9x2mb is open; on the other side run:
         dcsend recv --peer 'http://host:8080/k7f3q9x2mb#tidy-otter-42'
       or open http://host:8080/k7f3q9x2mb#tidy-otter-42 in a web browser
    B$ dcsend recv --peer 'http://host:8080/k7f3q9x2mb#tidy-otter-42' \\
         -o downloads/

  Two terminals, copy-paste negotiation (no server needed):
    A$ dcsend big.iso               # prints an offer, asks for the answer
    B$ dcsend recv -o downloads/    # asks for the offer, prints the answer

  A pipe (the token is read from the terminal, not from stdin):
    A$ tar c dir | dcsend
    B$ dcsend recv | tar x

  A script, tokens through files (both sides may start at once):
    dcsend f.bin --sdp-out offer.tok --sdp-in answer.tok &
    dcsend recv -o out/ --sdp-in offer.tok --sdp-out answer.tok

  A script, tokens through FIFOs (the tokens never touch the disk):
    mkfifo offer answer
    dcsend f.bin --sdp-out offer --sdp-in answer &
    dcsend recv -o out/ --sdp-in offer --sdp-out answer

  Measure, then set a machine's defaults in the environment:
    dcsend bench --threshold 256K,1M,4M --chunk-size 64K
    export DCSEND_THRESHOLD=1M";

/// How sizes, durations and rates are written (`--help`, man pages): one sentence a line,
/// each short enough for 80 columns.
const UNITS: &str = "\
Units:
  A size is bytes or a number with K, M or G (or KiB, MiB, GiB, KB, MB, GB).
  Each is a power of 1024: 64K = 64KiB = 64KB = 65536, 1.5M = 1572864.
  A duration is like 500ms, 10s or 2m. A flag beats its DCSEND_* variable.
  dcsend shows sizes in KiB, MiB, GiB and rates in MiB/s; bench, in MB/s.";

/// Send files or stdin to a peer over a WebRTC data channel.
///
/// Without --peer the two sides negotiate by copy-paste: each prints a token (one line,
/// DC1...; Pion's base64 with --long-token) on stderr and reads the other's from the terminal.
/// Data only goes to stdout (`recv`); tokens, prompts, progress and logs go to stderr.
#[derive(Debug, Parser)]
#[command(name = "dcsend", version = version(), args_conflicts_with_subcommands = true,
    after_help = "Run `dcsend --help` for examples and exit codes.",
    after_long_help = long_help(None))]
pub struct Cli {
    /// `send` (the default) or `recv`.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Arguments of the default action, `send`.
    #[command(flatten)]
    pub send: SendArgs,
}

impl Cli {
    /// Parses the process's arguments; on bad usage prints clap's message and exits 2.
    ///
    /// clap colours its messages on a terminal and, in CI, even when `TERM=dumb`; a dumb
    /// terminal gets none (`NO_COLOR` clap honours itself).
    pub fn parse_args() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let mut cmd = Self::command();
        if dumb_terminal() {
            cmd = cmd.color(clap::ColorChoice::Never);
        }
        let matches = cmd.get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    /// The default log filter of whichever subcommand runs (`RUST_LOG` replaces it), and
    /// whether log lines are JSON.
    pub fn log_settings(&self) -> (&'static str, bool) {
        // At the default, other crates log errors only, and `logging::init` also hides the
        // ICE errors that are no error (`peer::QUIET_LOG_DIRECTIVES`).
        let transfer = |verbose: u8| match verbose {
            0 => "dcsend=warn,error",
            1 => "dcsend=info,warn",
            2 => "dcsend=debug,info",
            _ => "trace",
        };
        match &self.command {
            None => (transfer(self.send.output.view.verbose), false),
            Some(Command::Send(a)) => (transfer(a.output.view.verbose), false),
            Some(Command::Recv(a)) => (transfer(a.output.view.verbose), false),
            Some(Command::Bench(a)) => (transfer(a.view.verbose), false),
            // A server logs what it does by default.
            Some(Command::Signal(a)) => {
                let filter = match (a.quiet, a.verbose) {
                    (true, _) => "dcsend=warn,error",
                    (false, 0) => "dcsend=info,warn",
                    (false, 1) => "dcsend=debug,info",
                    _ => "trace",
                };
                (filter, a.log_format == LogFormat::Json)
            }
            Some(Command::Completions(_) | Command::Man(_) | Command::Doctor(_)) => {
                (transfer(0), false)
            }
        }
    }
}

/// `TERM=dumb`: a terminal that can neither colour nor erase a line.
pub(crate) fn dumb_terminal() -> bool {
    std::env::var_os("TERM").is_some_and(|t| t == "dumb")
}

/// The examples of a subcommand (`None` = the top level), for the man pages.
pub fn examples(subcommand: Option<&str>) -> Option<&'static str> {
    match subcommand {
        None | Some("send") => Some(SEND_EXAMPLES),
        Some("recv") => Some(RECV_EXAMPLES),
        Some("bench") => Some(BENCH_EXAMPLES),
        Some("signal") => Some(SIGNAL_EXAMPLES),
        Some("doctor") => Some(DOCTOR_EXAMPLES),
        Some("completions") => Some(COMPLETIONS_EXAMPLES),
        _ => None,
    }
}

/// The prose after a subcommand's examples, for `--help` and the man pages.
pub fn notes(subcommand: Option<&str>) -> Option<&'static str> {
    match subcommand {
        Some("bench") => Some(BENCH_NOTES),
        Some("signal") => Some(SIGNAL_NOTES),
        _ => None,
    }
}

/// How sizes, durations and rates are written, for the subcommands that take or show them.
pub fn units(subcommand: Option<&str>) -> Option<&'static str> {
    match subcommand {
        None | Some("send" | "recv" | "bench" | "signal") => Some(UNITS),
        _ => None,
    }
}

/// The exit codes a subcommand documents (`None` = the top level): `bench` has its own
/// table; `signal`, `completions` and `man` document none.
pub fn exit_code_table(subcommand: Option<&str>) -> Option<&'static [(u8, &'static str)]> {
    match subcommand {
        None | Some("send" | "recv") => Some(&crate::error::EXIT_CODES),
        Some("bench") => Some(&crate::error::BENCH_EXIT_CODES),
        _ => None,
    }
}

/// "0.1.0 (webrtc 0.21)": `--version` and the man pages.
pub fn version() -> String {
    format!("{} (webrtc {})", env!("CARGO_PKG_VERSION"), crate::WEBRTC_VERSION)
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send files or stdin (the default action).
    #[command(after_long_help = long_help(Some("send")))]
    Send(SendArgs),
    /// Receive into stdout, a file or a folder.
    #[command(after_long_help = long_help(Some("recv")))]
    Recv(RecvArgs),
    /// Measure throughput over a loopback pair for a sweep of thresholds and message sizes.
    #[command(after_long_help = long_help(Some("bench")))]
    Bench(BenchArgs),
    /// Run the signaling server that `--peer URL` connects through.
    #[command(after_long_help = long_help(Some("signal")))]
    Signal(SignalArgs),
    /// Check what this machine's network allows: public address, NAT type, TURN.
    #[command(after_long_help = long_help(Some("doctor")))]
    Doctor(DoctorArgs),
    /// Print a shell completion script to stdout.
    #[command(after_long_help = long_help(Some("completions")))]
    Completions(CompletionsArgs),
    /// Write man pages (dcsend.1 and one per subcommand) into a folder.
    Man(ManArgs),
}

const DOCTOR_EXAMPLES: &str = "\
Examples:
  dcsend doctor --peer https://signal.example.org/
  dcsend doctor --stun stun:stun.example.org:3478 --stun stun:stun.example.org:3479
  dcsend doctor --stun stun:a.example.org --stun stun:b.example.org --json
  DCSEND_TURN_PASSWORD=... dcsend doctor --stun stun:a.example.org \\
      --turn turn:relay.example.org:3478 --turn-user alice";

const BENCH_EXAMPLES: &str = "\
Examples:
  dcsend bench                      # the default sweep, a table on stdout
  dcsend bench --threshold 64K,256K,1M,4M,16M --size 256M --runs 5
  dcsend bench --threshold 1M --duration 10s --baseline tcp
  # JSON and CSV into files, the Markdown table on stdout (\"-\"):
  dcsend bench --export-json r.json --export-csv r.csv --export-markdown -";

/// What `bench` measures and in which units (prose: clap wraps it).
const BENCH_NOTES: &str = "\
Each run connects a fresh pair of peers in this process over UDP on 127.0.0.1 and sends generated bytes through the real sender and receiver (threshold sender, wire protocol, SHA-256 on both sides, eof/ack), discarding them at the receiver. Rates are in MB/s (10^6 bytes per second) and Mbit/s; CPU is per side; RSS is the whole process.";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  dcsend completions bash > ~/.local/share/bash-completion/completions/dcsend
  dcsend completions fish > ~/.config/fish/completions/dcsend.fish
  # zsh, with fpath+=(~/.zfunc) before compinit in ~/.zshrc:
  dcsend completions zsh > ~/.zfunc/_dcsend";

const RECV_EXAMPLES: &str = "\
Examples:
  dcsend recv -o downloads/         # files keep the names the sender gives
  dcsend recv > out.bin             # one stream to stdout
  dcsend recv -o copy.iso --force   # one file, overwrite it if it exists
  dcsend recv --sink                # verify and discard: measure a path
  # Through a signaling server (prints the command for the sender):
  dcsend recv --peer http://host:8080/ -o downloads/
  # Continue from the NAME.part files a broken run left:
  dcsend recv -o downloads/ --resume
  # From a script, tokens through files:
  dcsend recv --sdp-in offer.tok --sdp-out answer.tok -o out/";

/// A `--threshold` value: the adaptive mode or a fixed size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdArg {
    /// `auto`.
    Auto,
    /// A size, bytes.
    Bytes(u64),
}

/// Arguments of `send`.
#[derive(Debug, Args, Default)]
pub struct SendArgs {
    /// Files to send, in order; none sends piped stdin, "-" sends stdin even from a terminal.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Send only plain binary messages, then close the channel, for receivers that are not
    /// dcsend (a browser, a Pion example).
    ///
    /// No file names, no end-of-data message, no digest: the receiver cannot verify what it
    /// got, and dcsend can only confirm that every byte was acknowledged by the peer's SCTP
    /// stack before it closes.
    #[arg(long)]
    pub raw: bool,

    /// Compress each message with zstd when that makes it at least 1/16 smaller (text, logs,
    /// source trees); a receiver that does not take compressed data gets it as it is.
    ///
    /// The SHA-256 stays over the original bytes. Off by default: on loopback it costs time,
    /// and data that does not compress (media, archives) gains nothing; see BENCHMARKS.md.
    #[arg(long, env = "DCSEND_COMPRESS")]
    pub compress: bool,

    /// Low-water threshold of the threshold-based sender: auto or a size [default: auto].
    ///
    /// dcsend hands data to the channel while its buffered amount (bytes not yet
    /// acknowledged by the peer) is at or under the threshold, so at most threshold + one
    /// message waits in the channel, and a path moves at most threshold / round-trip time.
    /// "auto" starts at 4MiB and follows the path: it doubles the threshold while the
    /// delivery rate grows with it and halves it when a smaller one delivers as much, never
    /// above --max-buffer. A size (e.g. 16M) fixes it: larger keeps a long fast path busier,
    /// smaller bounds memory and latency. `dcsend bench --threshold auto,1M,4M,16M` compares
    /// them on a machine.
    #[arg(long, value_name = "auto|SIZE", env = "DCSEND_THRESHOLD", value_parser = config::parse_threshold_arg)]
    pub threshold: Option<ThresholdArg>,

    /// Memory bound of --threshold auto: the most it may let wait in the channel [default: 32MiB].
    ///
    /// Twice the 16MiB SCTP receive window: more cannot be in flight, so a larger threshold
    /// would only queue. Ignored with a fixed --threshold SIZE.
    #[arg(long, value_name = "SIZE", env = "DCSEND_MAX_BUFFER", hide_short_help = true,
        value_parser = config::parse_size_arg)]
    pub max_buffer: Option<u64>,

    /// Size of each data message [default: 64KiB].
    ///
    /// Never above the peer's advertised a=max-message-size.
    #[arg(long, value_name = "SIZE", env = "DCSEND_CHUNK_SIZE", value_parser = config::parse_size_arg)]
    pub chunk_size: Option<u64>,

    #[command(flatten)]
    pub connect: ConnectArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `recv`.
#[derive(Debug, Args)]
pub struct RecvArgs {
    /// Write to this file, or into this folder when it ends with "/" or is a folder.
    ///
    /// Without -o, received bytes go to stdout; when stdout is a terminal, files are saved in
    /// the current folder under the sender's names instead, and data without a name (stdin)
    /// is refused. "-o -" is stdout, even a terminal. A folder named with a trailing "/" that
    /// does not exist yet is made (with its parents). Files are written as NAME.part and renamed
    /// once their SHA-256 matches.
    #[arg(short, long, value_name = "PATH")]
    pub output_path: Option<PathBuf>,

    /// Overwrite existing files.
    #[arg(short, long)]
    pub force: bool,

    /// Continue a broken transfer from the NAME.part it left (needs -o).
    ///
    /// For each file the sender offers with a name and a size, dcsend tells it how much of
    /// NAME.part it already has and that prefix's SHA-256. The sender hashes the same prefix
    /// of its file: if they match it sends only the rest, else everything (NAME.part is
    /// emptied). Either way the whole file's SHA-256 is checked before NAME.part becomes
    /// NAME. Stdin and pipes cannot be resumed, nor can anything from a sender that does not
    /// know resume: those arrive from the start, and dcsend says so.
    #[arg(long)]
    pub resume: bool,

    /// Verify what arrives, then discard it (nothing is written): for measuring a path.
    #[arg(long, conflicts_with_all = ["output_path", "force", "resume"])]
    pub sink: bool,

    #[command(flatten)]
    pub connect: ConnectArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Low-water thresholds to sweep, comma-separated: sizes, or "auto" for the adaptive mode.
    #[arg(long, value_name = "auto|SIZE,...", value_delimiter = ',',
        default_value = "auto,64K,256K,1M,4M,16M", value_parser = config::parse_threshold_arg)]
    pub threshold: Vec<ThresholdArg>,

    /// Memory bound of the "auto" threshold [default: 32MiB].
    #[arg(long, value_name = "SIZE", hide_short_help = true, value_parser = config::parse_size_arg)]
    pub max_buffer: Option<u64>,

    /// Message sizes to sweep, comma-separated.
    #[arg(long, value_name = "SIZE,...", value_delimiter = ',', default_value = "16K,64K",
        value_parser = config::parse_size_arg)]
    pub chunk_size: Vec<u64>,

    /// Bytes to send in each run.
    #[arg(long, value_name = "SIZE", default_value = "128MiB", value_parser = config::parse_size_arg)]
    pub size: u64,

    /// End each run after this long, even if --size is not reached.
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration_arg)]
    pub duration: Option<std::time::Duration>,

    /// Measured runs per case.
    #[arg(long, value_name = "N", default_value_t = 3,
        value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: u32,

    /// Unmeasured runs before the measured ones, per case.
    #[arg(long, value_name = "N", default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(0..=100))]
    pub warmup: u32,

    /// Also move the same bytes over a loopback TCP socket and report each case as a
    /// ratio of it.
    ///
    /// The baseline does the same work apart from the transport (the same generated bytes,
    /// SHA-256 on both sides), so the ratio is the cost of WebRTC (DTLS, SCTP, UDP) on this
    /// machine and carries over between machines better than MB/s.
    #[arg(long, value_enum, value_name = "KIND")]
    pub baseline: Option<Baseline>,

    /// Write the results as JSON to PATH ("-" = stdout).
    #[arg(long, value_name = "PATH|-", help_heading = "Export")]
    pub export_json: Option<PathBuf>,

    /// Write the results as CSV (one row per case, with a header) to PATH ("-" = stdout).
    #[arg(long, value_name = "PATH|-", help_heading = "Export")]
    pub export_csv: Option<PathBuf>,

    /// Write the results as a Markdown table to PATH ("-" = stdout).
    #[arg(long, value_name = "PATH|-", help_heading = "Export")]
    pub export_markdown: Option<PathBuf>,

    /// Kernel buffer to ask for on each UDP socket [default: 16MiB].
    #[arg(long, value_name = "SIZE", env = "DCSEND_SOCKET_BUFFER", hide_short_help = true,
        value_parser = config::parse_size_arg)]
    pub socket_buffer: Option<u64>,

    #[command(flatten)]
    pub view: ViewArgs,
}

/// A baseline transport for `bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Baseline {
    /// A TCP connection over 127.0.0.1.
    Tcp,
}

/// Arguments of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// STUN server to ask for this machine's public address (repeatable).
    ///
    /// Two servers, or one server on two ports (`dcsend signal --stun 0.0.0.0:3478 --stun 0.0.0.0:3479`),
    /// show whether the NAT keeps one public port for two destinations, which is what
    /// decides whether two peers behind NATs can connect directly.
    #[arg(long, value_name = "URL", env = "DCSEND_STUN", value_delimiter = ',')]
    pub stun: Vec<String>,

    /// TURN server to ask for an allocation (repeatable); credentials as for sending.
    #[arg(long, value_name = "URL", env = "DCSEND_TURN", value_delimiter = ',')]
    pub turn: Vec<String>,

    /// TURN user name.
    #[arg(long, value_name = "USER", env = "DCSEND_TURN_USER")]
    pub turn_user: Option<String>,

    /// File holding the TURN password (else DCSEND_TURN_PASSWORD is used).
    #[arg(long, value_name = "PATH", env = "DCSEND_TURN_PASSWORD_FILE")]
    pub turn_password_file: Option<PathBuf>,

    /// Check the STUN and TURN servers a signaling server hands out, e.g. https://signal.example.org/
    ///
    /// doctor joins a throwaway room there (credentials are only handed to a peer in a room),
    /// leaves it at once, and checks the servers of the join answer as it checks --stun and
    /// --turn, which add to them. A server answering STUN on two ports (`dcsend signal --stun
    /// 0.0.0.0:3478 --stun 0.0.0.0:3479`) lets doctor test the NAT with nothing else.
    #[arg(long, value_name = "URL", env = "DCSEND_PEER")]
    pub peer: Option<String>,

    /// Local UDP address to probe from [default: 0.0.0.0:0].
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<std::net::SocketAddr>,

    /// Print the findings as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Folder to write the pages into (created if missing).
    #[arg(value_name = "DIR", default_value = "man")]
    pub dir: PathBuf,
}

const SIGNAL_EXAMPLES: &str = "\
Examples:
  On a LAN (the peers then use --peer http://THIS-HOST:8080/):
    dcsend signal --listen 0.0.0.0:8080

  On the internet, behind a TLS reverse proxy (see docs/signaling.md):
    dcsend signal --listen 127.0.0.1:8080 --log-format json

  Handing peers STUN and TURN (coturn, use-auth-secret):
    dcsend signal --listen 0.0.0.0:8080 --stun 0.0.0.0:3478 \\
        --turn turn:relay.example.org:3478 \\
        --turn-secret-file /etc/dcsend/turn.secret

  On any free port (the last line on stderr is \"listening on http://ADDR\"):
    dcsend signal --listen 127.0.0.1:0";

/// What the server can see and how it stops (prose: clap wraps it).
const SIGNAL_NOTES: &str = "\
The server relays sealed messages between the two peers of a room; it never sees the secret after '#' and cannot read or alter the session descriptions. Stop it with Ctrl-C or SIGTERM: it finishes the requests in flight and exits 0.";

/// Arguments of `signal`.
#[derive(Debug, Args)]
pub struct SignalArgs {
    /// Address to listen on (port 0 = any free port).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        env = "DCSEND_SIGNAL_LISTEN"
    )]
    pub listen: std::net::SocketAddr,

    /// Keep rooms in Redis (redis://HOST:PORT/DB) instead of this process's memory.
    ///
    /// Every instance started with the same store serves the same rooms, so a load balancer
    /// may spread a peer's requests over them and an instance may restart without ending a
    /// room. While Redis is unreachable requests are answered 503 (Retry-After: 1).
    #[arg(long, value_name = "URL", env = "DCSEND_SIGNAL_STORE")]
    pub store: Option<String>,

    /// Also answer STUN Binding requests on this UDP address (repeatable).
    ///
    /// Peers behind a NAT learn their public address from it (`--stun stun:HOST:PORT` on
    /// their side). Each source IP gets at most 20 answers a second. Two ports let
    /// `dcsend doctor --stun stun:HOST:P1 --stun stun:HOST:P2` see whether a NAT keeps one
    /// public port for two destinations.
    #[arg(long, value_name = "ADDR", env = "DCSEND_SIGNAL_STUN", value_delimiter = ',')]
    pub stun: Vec<std::net::SocketAddr>,

    /// The STUN server handed to peers, instead of this server's own --stun (repeatable).
    ///
    /// Every join answer names the STUN servers the peers should use. By default they are this
    /// server's --stun ports at the host name the client reached the server by (the request's
    /// Host header, which a reverse proxy keeps): `stun:signal.example.org:3478`. Name them
    /// here when that is wrong (a proxy on another host, a public name the server cannot know)
    /// or to hand out an external STUN server, e.g. --stun-url stun:stun.example.org:3478.
    #[arg(long, value_name = "URL", env = "DCSEND_SIGNAL_STUN_URL", value_delimiter = ',')]
    pub stun_url: Vec<String>,

    /// A TURN server handed to peers with short-lived credentials (repeatable).
    ///
    /// e.g. --turn turn:relay.example.org:3478. Every join answer carries a user name that
    /// expires after --turn-ttl and its password, made with the secret of --turn-secret-file
    /// the way coturn's `use-auth-secret` checks them. The secret itself never leaves this server.
    #[arg(
        long,
        value_name = "URL",
        env = "DCSEND_SIGNAL_TURN",
        value_delimiter = ',',
        requires = "turn_secret_file"
    )]
    pub turn: Vec<String>,

    /// File holding the TURN servers' shared secret (coturn's static-auth-secret).
    ///
    /// Read once at start; its first line is the secret. Keep the file readable by this
    /// server's user only (chmod 600): dcsend warns when others can read it.
    #[arg(long, value_name = "PATH", env = "DCSEND_SIGNAL_TURN_SECRET_FILE", requires = "turn")]
    pub turn_secret_file: Option<PathBuf>,

    /// How long the TURN credentials of a join answer are valid.
    ///
    /// A peer allocates its relay when both peers are in the room, so this must cover the wait
    /// for the other side (--join-timeout on the peers, 5m by default).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = config::parse_duration_arg, requires = "turn")]
    pub turn_ttl: std::time::Duration,

    /// A room with no request from either peer for this long expires.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = config::parse_duration_arg)]
    pub room_ttl: std::time::Duration,

    /// Rooms open at once, over all clients.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_rooms: usize,

    /// Rooms open at once that one client network created.
    ///
    /// A client network is the client's address cut to --client-prefix-v4/-v6 bits (a /24 or
    /// a /64 by default), since one host can have many addresses. Whatever this limit, the last
    /// tenth of --max-rooms goes only to networks holding less than a quarter of it.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_rooms_per_client: usize,

    /// A peer that sends no message this long after joining loses its seat.
    ///
    /// A dcsend peer sends its PAKE message right after joining. Anyone who knows a room id can
    /// take its second seat; a holder that stays silent is removed and the peer waiting in the
    /// room is told, and the real peer, refused meanwhile with a Retry-After, joins. A room
    /// nobody has spoken in closes after this long instead of --room-ttl.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = config::parse_duration_arg)]
    pub claim_timeout: std::time::Duration,

    /// A peer with no request open and none for this long has left: its seat is freed.
    ///
    /// A waiting peer always has a long poll open, and a dcsend peer keeps one open while it
    /// gathers its ICE candidates, so this only bounds how soon a peer that is gone (killed, a
    /// closed browser tab, a lost network) frees its seat; the peer waiting in the room is
    /// told and starts over with whoever joins next. Raise it if clients sit behind networks
    /// that stall for longer.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = config::parse_duration_arg, hide_short_help = true)]
    pub presence_timeout: std::time::Duration,

    /// Connections open at once, over all clients.
    ///
    /// Lowered, with a warning, to fit the file-descriptor limit (the server raises its soft
    /// limit to the hard one at start), so that accepting never fails for want of descriptors.
    #[arg(long, value_name = "N", default_value_t = 4096, hide_short_help = true)]
    pub max_connections: usize,

    /// Connections open at once from one client network (see --max-rooms-per-client).
    ///
    /// Behind a reverse proxy every connection comes from the proxy: raise this to
    /// --max-connections there and limit clients in the proxy.
    #[arg(long, value_name = "N", default_value_t = 64, hide_short_help = true)]
    pub max_connections_per_client: usize,

    /// A request's head must arrive within this (and a kept-alive connection's next request).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = config::parse_duration_arg, hide_short_help = true)]
    pub header_timeout: std::time::Duration,

    /// A connection with no request being handled for this long is closed.
    ///
    /// A long poll (GET ...?wait=30) is a request being handled: it is never cut.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = config::parse_duration_arg, hide_short_help = true)]
    pub idle_timeout: std::time::Duration,

    /// Bits of an IPv4 address that name the client's network (0-32).
    #[arg(long, value_name = "LEN", default_value_t = 24, value_parser = clap::value_parser!(u8).range(0..=32), hide_short_help = true)]
    pub client_prefix_v4: u8,

    /// Bits of an IPv6 address that name the client's network (0-128).
    #[arg(long, value_name = "LEN", default_value_t = 64, value_parser = clap::value_parser!(u8).range(0..=128), hide_short_help = true)]
    pub client_prefix_v6: u8,

    /// Log lines as text or as JSON objects (one per line), on stderr.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log less (warnings and errors only).
    #[arg(short, long)]
    pub quiet: bool,

    /// Log more (-v debug, -vv trace). RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line per event: time, level, module, message, then key=value fields.
    Text,
    /// One JSON object per line.
    Json,
}

/// How to reach the peer (shared by send and recv).
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Connection")]
pub struct ConnectArgs {
    /// Connect through a signaling server (`dcsend signal`) instead of copy-paste.
    ///
    /// http://HOST:PORT/ makes a room and prints the URL for the other side, with a fresh
    /// secret after '#'; http://HOST:PORT/ROOM#SECRET joins one. The secret never leaves this
    /// machine: both peers prove they know it (SPAKE2) and seal their session descriptions
    /// with the key it gives, so the server can neither read nor alter them.
    #[arg(long, value_name = "URL", env = "DCSEND_PEER",
        conflicts_with_all = ["offer", "answer", "sdp_in", "sdp_out"])]
    pub peer: Option<String>,

    /// With --peer: show the page URL as a QR code, for a phone's browser.
    ///
    /// Printed on stderr below the URL when this side opens the room. --qr (or --qr=auto)
    /// draws it when stderr is a terminal; --qr=always draws it into whatever stderr is.
    #[arg(long, value_enum, value_name = "WHEN", num_args = 0..=1, require_equals = true,
        default_missing_value = "auto", requires = "peer")]
    pub qr: Option<QrWhen>,

    /// With --peer: how long to wait for the other side to join the room.
    #[arg(long, value_name = "DURATION", default_value = "5m", env = "DCSEND_JOIN_TIMEOUT",
        value_parser = config::parse_duration_arg)]
    pub join_timeout: std::time::Duration,

    /// Make the offer (the sender's default).
    #[arg(long, conflicts_with = "answer")]
    pub offer: bool,

    /// Wait for the peer's offer and answer it (the receiver's default).
    #[arg(long)]
    pub answer: bool,

    /// Write our token to PATH (atomically; a FIFO is written directly) instead of stderr.
    #[arg(long, value_name = "PATH")]
    pub sdp_out: Option<PathBuf>,

    /// Read the peer's token from PATH ("-" = stdin) instead of the terminal.
    ///
    /// dcsend waits for PATH to appear, up to --connect-timeout.
    #[arg(long, value_name = "PATH|-")]
    pub sdp_in: Option<PathBuf>,

    /// Print our token in Pion's long form, for a peer that is not dcsend.
    ///
    /// dcsend prints a compact token (DC1..., about 170 characters) that any dcsend reads. The
    /// long form (base64 of {"type":...,"sdp":...}, about 900) is what Pion's and webrtc-rs's
    /// examples and browser demos read. dcsend reads both, and answers a long offer in the
    /// long form without this flag.
    #[arg(long, conflicts_with = "peer")]
    pub long_token: bool,

    /// STUN server, e.g. stun:stun.example.org:3478 (repeatable).
    ///
    /// None by default: host candidates work on a LAN and loopback. With --peer, the
    /// signaling server may hand out STUN and TURN servers (`dcsend signal --stun`, --turn):
    /// they are used without any flag, and --stun and --turn add to them.
    #[arg(long, value_name = "URL", env = "DCSEND_STUN", value_delimiter = ',')]
    pub stun: Vec<String>,

    /// TURN server, e.g. turn:turn.example.org:3478 (repeatable).
    ///
    /// Credentials come from --turn-user (or DCSEND_TURN_USER) and DCSEND_TURN_PASSWORD or
    /// --turn-password-file, never from a command-line password. The server of a turn: URL
    /// over UDP is also asked for the public address (as a STUN server, which every TURN
    /// server is), so peers behind ordinary NATs still get a direct path; the relay is for
    /// when none works (or always, with --relay-only).
    #[arg(long, value_name = "URL", env = "DCSEND_TURN", value_delimiter = ',')]
    pub turn: Vec<String>,

    /// TURN user name.
    #[arg(long, value_name = "USER", env = "DCSEND_TURN_USER")]
    pub turn_user: Option<String>,

    /// File holding the TURN password (else DCSEND_TURN_PASSWORD is used).
    #[arg(long, value_name = "PATH", env = "DCSEND_TURN_PASSWORD_FILE")]
    pub turn_password_file: Option<PathBuf>,

    /// Use only TURN-relayed candidates.
    ///
    /// Needs a TURN server: --turn, or, with --peer, one the signaling server hands out.
    #[arg(long, env = "DCSEND_RELAY_ONLY")]
    pub relay_only: bool,

    /// Give up if the channel is not open this long after the peer's token arrived; also
    /// bounds the wait for --sdp-in PATH to appear.
    #[arg(long, value_name = "DURATION", default_value = "30s", env = "DCSEND_CONNECT_TIMEOUT",
        value_parser = config::parse_duration_arg)]
    pub connect_timeout: std::time::Duration,

    /// Local UDP address to bind (repeatable) [default: 0.0.0.0:0, every interface].
    #[arg(long, value_name = "ADDR", hide_short_help = true)]
    pub bind: Vec<std::net::SocketAddr>,

    /// Kernel buffer to ask for on each UDP socket [default: 16MiB].
    ///
    /// Linux caps it at net.core.rmem_max / wmem_max unless dcsend may override the cap
    /// (root); below about 1 MiB a fast path drops datagrams and slows to a crawl. The SCTP
    /// receive window follows what the kernel grants (1-16 MiB), and a path runs at most
    /// window / RTT: raise net.core.rmem_max for long fast paths (-v says when it is capped).
    #[arg(long, value_name = "SIZE", hide_short_help = true, env = "DCSEND_SOCKET_BUFFER",
        value_parser = config::parse_size_arg)]
    pub socket_buffer: Option<u64>,

    /// Declare the peer gone after this much silence once connected.
    #[arg(long, value_name = "DURATION", default_value = "8s", hide_short_help = true,
        env = "DCSEND_LIVENESS_TIMEOUT", value_parser = config::parse_duration_arg)]
    pub liveness_timeout: std::time::Duration,
}

/// What dcsend shows on stderr and how much it logs (every subcommand that runs).
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Output")]
pub struct ViewArgs {
    /// Show no progress and no summary on stderr (errors still go there; results and
    /// exports on stdout or in files are still written).
    #[arg(short, long)]
    pub quiet: bool,

    /// More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// When to show the live view on stderr.
    #[arg(long, value_enum, default_value_t = ProgressWhen::Auto, value_name = "WHEN",
        env = "DCSEND_PROGRESS")]
    pub progress: ProgressWhen,
}

/// What a transfer shows and logs.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    #[command(flatten)]
    pub view: ViewArgs,

    /// Write progress and a final summary as NDJSON to PATH ("-" = stderr).
    ///
    /// One {"t":"progress",...} object per interval, then one {"t":"summary",...}.
    #[arg(long, value_name = "PATH|-")]
    pub stats: Option<PathBuf>,
}

/// When to draw the QR code (`--qr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QrWhen {
    /// When stderr is a terminal.
    Auto,
    /// Always, into whatever stderr is.
    Always,
}

/// When to draw the live view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ProgressWhen {
    /// When stderr is a terminal.
    #[default]
    Auto,
    /// Always, into whatever stderr is (a file or pipe gets the frames too); never with
    /// TERM=dumb.
    Always,
    /// Never.
    Never,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_debug_assert() {
        Cli::command().debug_assert();
    }

    #[test]
    fn default_action_is_send() {
        let cli = Cli::try_parse_from(["dcsend", "a.bin", "b.bin", "--raw"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.send.files, vec![PathBuf::from("a.bin"), PathBuf::from("b.bin")]);
        assert!(cli.send.raw);
    }

    #[test]
    fn recv_parses_output_and_force() {
        let cli = Cli::try_parse_from(["dcsend", "recv", "-o", "d/", "--force"]).unwrap();
        let Some(Command::Recv(r)) = cli.command else { panic!("not recv") };
        assert_eq!(r.output_path, Some(PathBuf::from("d/")));
        assert!(r.force);
    }

    #[test]
    fn offer_and_answer_conflict() {
        assert!(Cli::try_parse_from(["dcsend", "--offer", "--answer"]).is_err());
    }

    #[test]
    fn qr_takes_an_optional_when_and_needs_a_peer() {
        let peer = ["--peer", "http://127.0.0.1:1/"];
        let parse = |extra: &[&str]| {
            let args = ["dcsend"].iter().chain(&peer).chain(extra).copied();
            Cli::try_parse_from(args).map(|c| c.send.connect.qr)
        };
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(parse(&["--qr"]).unwrap(), Some(QrWhen::Auto));
        assert_eq!(parse(&["--qr=always"]).unwrap(), Some(QrWhen::Always));
        // Not a value: `dcsend --qr FILE` sends FILE.
        let cli = Cli::try_parse_from(["dcsend", "--qr", "f.bin", "--peer", "http://h/"]).unwrap();
        assert_eq!(cli.send.connect.qr, Some(QrWhen::Auto));
        assert!(Cli::try_parse_from(["dcsend", "--qr"]).is_err(), "needs --peer");
    }

    #[test]
    fn long_token_is_for_copy_paste_only() {
        let cli = Cli::try_parse_from(["dcsend", "recv", "--long-token"]).unwrap();
        let Some(Command::Recv(r)) = cli.command else { panic!("not recv") };
        assert!(r.connect.long_token);
        assert!(!Cli::try_parse_from(["dcsend"]).unwrap().send.connect.long_token);
        let url = ["dcsend", "--long-token", "--peer", "http://127.0.0.1:1/"];
        assert!(Cli::try_parse_from(url).is_err());
    }

    #[test]
    fn sizes_and_durations_parse() {
        let cli = Cli::try_parse_from([
            "dcsend",
            "--threshold",
            "1.5M",
            "--chunk-size",
            "16384",
            "--connect-timeout",
            "500ms",
        ])
        .unwrap();
        assert_eq!(cli.send.threshold, Some(ThresholdArg::Bytes(1_572_864)));
        assert_eq!(cli.send.chunk_size, Some(16384));
        assert_eq!(cli.send.connect.connect_timeout, std::time::Duration::from_millis(500));
        let err = Cli::try_parse_from(["dcsend", "--threshold", "lots"]).unwrap_err();
        assert!(err.to_string().contains("64KiB"), "{err}");
    }

    #[test]
    fn threshold_is_auto_or_a_size_and_max_buffer_a_size() {
        let cli =
            Cli::try_parse_from(["dcsend", "--threshold", "AUTO", "--max-buffer", "8M"]).unwrap();
        assert_eq!(cli.send.threshold, Some(ThresholdArg::Auto));
        assert_eq!(cli.send.max_buffer, Some(8 << 20));
        assert_eq!(Cli::try_parse_from(["dcsend"]).unwrap().send.threshold, None);
        let cli = Cli::try_parse_from(["dcsend", "bench", "--threshold", "auto,256K,4M"]).unwrap();
        let Some(Command::Bench(b)) = cli.command else { panic!("not bench") };
        use ThresholdArg::*;
        assert_eq!(b.threshold, vec![Auto, Bytes(256 << 10), Bytes(4 << 20)]);
        let cli = Cli::try_parse_from(["dcsend", "bench"]).unwrap();
        let Some(Command::Bench(b)) = cli.command else { panic!("not bench") };
        assert_eq!(b.threshold[0], Auto, "the default sweep starts with the default");
    }
}
