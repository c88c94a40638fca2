//! Turns raw clap arguments into validated configs (ripgrep's low/high args, fd's
//! `Opts` -> `Config`). Cross-flag checks live here and name the flags involved.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    Baseline, BenchArgs, ConnectArgs, OutputArgs, ProgressWhen, QrWhen, RecvArgs, SendArgs,
    SignalArgs, ThresholdArg, ViewArgs, dumb_terminal,
};
use crate::bench::Plan;
use crate::error::UsageError;
use crate::peer::{IceConfig, PeerOptions};
use crate::progress::render::Draw;
use crate::signal::ice::{TurnAdvert, TurnSecret};
use crate::signal::paste::{TokenSink, TokenSource};
use crate::signal::rooms::{Limits, PrefixLens};
use crate::signal::server::ConnLimits;
use crate::signal::url::PeerUrl;
use crate::transfer::autotune::{self, Threshold};

/// The fixed threshold dcsend used before `auto`, and where `auto` starts: 4 MiB. On a short
/// path a larger threshold buys only a queue in the SCTP layer that does not run dry
/// between two buffered-amount events: in `dcsend bench` (BENCHMARKS.md) 4 MiB beat 1 MiB by
/// 9-14% at 64 KiB messages, 16 MiB gained nothing more and cost 12 MiB of RSS. A long path
/// needs threshold >= bandwidth x RTT, which `auto` finds (`transfer::autotune`).
pub const DEFAULT_THRESHOLD_BYTES: u64 = autotune::FLOOR_BYTES;

/// Parses a `--threshold`: `auto` or a size (see [`parse_size_arg`]).
pub fn parse_threshold_arg(s: &str) -> Result<ThresholdArg, String> {
    if s.trim().eq_ignore_ascii_case("auto") {
        return Ok(ThresholdArg::Auto);
    }
    parse_size_arg(s).map(ThresholdArg::Bytes).map_err(|e| format!("not auto, nor a size: {e}"))
}

/// The threshold mode of a `--threshold` (none: auto) bounded by `--max-buffer`.
fn threshold_mode(
    arg: Option<ThresholdArg>,
    max_buffer: Option<u64>,
) -> Result<Threshold, UsageError> {
    let max_bytes = max_buffer.unwrap_or(autotune::DEFAULT_MAX_BYTES);
    if max_bytes == 0 {
        return Err(UsageError("--max-buffer must be above zero; 32M is a good value".into()));
    }
    Ok(match arg {
        None | Some(ThresholdArg::Auto) => Threshold::Auto { max_bytes },
        Some(ThresholdArg::Bytes(n)) => Threshold::Fixed(n),
    })
}

/// Default message size: 64 KiB, the default a=max-message-size (RFC 8841) and the size at
/// which webrtc-rs reaches its best throughput (fewer, larger SCTP messages).
pub const DEFAULT_CHUNK_BYTES: usize = 64 * 1024;

/// Kernel buffer per UDP socket; see `peer/runtime.rs` for why. As large as the SCTP receive
/// window dcsend wants (`peer::RECEIVE_WINDOW_BYTES`), since the window follows the buffer.
pub const DEFAULT_SOCKET_BUFFER_BYTES: usize = crate::peer::RECEIVE_WINDOW_BYTES;

/// Largest message size we accept on the command line (the webrtc crate's ceiling).
pub const MAX_CHUNK_BYTES: u64 = 256 * 1024;

/// Parses a size: a number with an optional unit K, M, G (or KiB, MiB, GiB, or KB, MB, GB).
/// Every unit is a power of 1024, and fractions work: `64K` = 65536, `1.5M` = 1572864.
pub fn parse_size_arg(s: &str) -> Result<u64, String> {
    parse_size::Config::new()
        .with_binary()
        .parse_size(s)
        .map_err(|e| format!("{e} (try e.g. 65536, 64K, 64KiB or 1.5M; units are powers of 1024)"))
}

/// Parses a duration such as `500ms`, `10s`, `2m`.
pub fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (try e.g. 500ms, 10s or 2m)"))
}

/// Which side makes the offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We create the data channel and the offer.
    Offerer,
    /// We answer the peer's offer.
    Answerer,
}

/// How the session descriptions travel.
#[derive(Debug)]
pub enum Negotiation {
    /// Copy-paste tokens (or token files).
    Paste {
        /// Who offers.
        role: Role,
        /// Where our token goes.
        sink: TokenSink,
        /// Where the peer's token comes from.
        source: TokenSource,
        /// True when we send: the other side then runs `recv` (named when a paste is wrong).
        we_send: bool,
        /// Print our token in Pion's long form even where the compact one would do.
        long_token: bool,
    },
    /// A signaling server (`--peer URL`); the first peer in the room offers.
    Url {
        /// The URL as given (room and secret may still be missing).
        url: PeerUrl,
        /// How long to wait for the other side to join.
        join_timeout: Duration,
        /// What the other side runs, printed when we open the room.
        other_side: OtherSide,
        /// Draw the page URL as a QR code when we open the room (`--qr`, resolved).
        qr: bool,
    },
}

/// The command the other side runs to meet us, printed with `--peer 'URL'` when we open a
/// room. It must be right to run as printed: a receiver on a terminal saves named files in
/// its current folder but refuses data without a name, so nameless data asks for `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherSide {
    /// We receive: `dcsend FILE...`.
    Send,
    /// We send named files: `dcsend recv`.
    Recv,
    /// We send one stream without a name (stdin, `--raw`): `dcsend recv -o FILE`.
    RecvToFile,
    /// We send files and stdin: `dcsend recv -o DIR/` (stdin arrives as `stream`).
    RecvToDir,
}

impl OtherSide {
    /// What the other side sends or receives, for [`OtherSide`] of a sender of `inputs`
    /// (`None`: stdin), with `--raw` or not.
    fn of_sender(inputs: &[Option<PathBuf>], raw: bool) -> Self {
        match inputs {
            _ if raw => Self::RecvToFile,
            [None] => Self::RecvToFile,
            many if many.contains(&None) => Self::RecvToDir,
            _ => Self::Recv,
        }
    }

    /// The command, without `--peer 'URL'`.
    pub fn command(self) -> &'static str {
        match self {
            Self::Send => "dcsend FILE...",
            Self::Recv => "dcsend recv",
            Self::RecvToFile => "dcsend recv -o FILE",
            Self::RecvToDir => "dcsend recv -o DIR/",
        }
    }

    /// A line that says what the placeholder in [`OtherSide::command`] is for, if any.
    pub fn note(self) -> Option<&'static str> {
        match self {
            Self::Send | Self::Recv => None,
            Self::RecvToFile => Some(
                "(the data has no name, so choose FILE; or leave out -o FILE and pipe the output)",
            ),
            Self::RecvToDir => Some("(stdin has no name: it is saved as DIR/stream)"),
        }
    }
}

/// How the two peers find each other.
#[derive(Debug)]
pub struct ConnectConfig {
    /// Copy-paste or a signaling server.
    pub how: Negotiation,
    /// Peer construction.
    pub peer: PeerOptions,
    /// Bound on waiting for a token file and for the channel to open.
    pub connect_timeout: Duration,
}

/// What to show.
#[derive(Debug, Clone)]
pub struct OutputConfig {
    /// The live view on stderr.
    pub progress: Draw,
    /// Print the one-line summary at the end.
    pub summary: bool,
    /// NDJSON stats destination (`-` = stderr).
    pub stats: Option<PathBuf>,
}

/// A validated `send`.
#[derive(Debug)]
pub struct SendConfig {
    /// Inputs, in order; `None` is stdin.
    pub inputs: Vec<Option<PathBuf>>,
    /// Plain binary messages only.
    pub raw: bool,
    /// Compress messages with zstd where it pays (negotiated with the receiver).
    pub compress: bool,
    /// Low-water threshold: fixed, or adaptive within a bound.
    pub threshold: Threshold,
    /// Message size in bytes (before clamping to the peer's maximum).
    pub chunk_bytes: usize,
    /// Connection.
    pub connect: ConnectConfig,
    /// Output.
    pub output: OutputConfig,
}

/// Where `recv` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecvTarget {
    /// Everything to stdout.
    Stdout,
    /// One file at this path.
    File(PathBuf),
    /// Files into this folder, under the sender's names.
    Dir(PathBuf),
    /// No `-o` and stdout is a terminal: files into the current folder under the sender's
    /// names, as croc and magic-wormhole save, never payload onto the screen; data without a
    /// name is refused, as curl refuses binary output to a terminal.
    Here,
    /// Nowhere (`--sink`): verified, then dropped.
    Discard,
}

/// A validated `recv`.
#[derive(Debug)]
pub struct RecvConfig {
    /// Destination.
    pub target: RecvTarget,
    /// Overwrite existing files.
    pub force: bool,
    /// Continue from an existing `NAME.part` (`-o DIR` or `-o FILE` only).
    pub resume: bool,
    /// Connection.
    pub connect: ConnectConfig,
    /// Output.
    pub output: OutputConfig,
}

impl TryFrom<SendArgs> for SendConfig {
    type Error = UsageError;

    fn try_from(args: SendArgs) -> Result<Self, UsageError> {
        let mut inputs: Vec<Option<PathBuf>> = args
            .files
            .iter()
            .map(|f| if f.as_os_str() == "-" { None } else { Some(f.clone()) })
            .collect();
        if inputs.is_empty() {
            // Bare `dcsend` at a prompt would wait for typed data; say how to use it instead.
            if std::io::stdin().is_terminal() {
                return Err(UsageError(NOTHING_TO_SEND.into()));
            }
            inputs.push(None);
        }
        if let [Some(lone)] = inputs.as_slice()
            && std::fs::symlink_metadata(lone).is_err()
            && let Some(sub) = lone.to_str().and_then(near_subcommand)
        {
            return Err(UsageError(format!(
                "{lone}: no such file; did you mean `dcsend {sub}`?",
                lone = lone.display()
            )));
        }
        let stdin_inputs = inputs.iter().filter(|i| i.is_none()).count();
        if stdin_inputs > 1 {
            return Err(UsageError("stdin (\"-\") can be sent only once".into()));
        }
        if args.raw && inputs.len() > 1 {
            return Err(UsageError(
                "--raw sends one stream: give at most one FILE (plain receivers see no file boundaries)"
                    .into(),
            ));
        }
        if args.raw
            && let Some(dir) = inputs.iter().flatten().find(|p| p.is_dir())
        {
            return Err(UsageError(format!(
                "{} is a folder, and --raw sends one plain stream: drop --raw (a dcsend \
                 receiver takes folders), or send a tar stream (`tar c DIR | dcsend --raw`)",
                dir.display()
            )));
        }
        check_distinct_names(inputs.iter().flatten())?;
        let threshold = threshold_mode(args.threshold, args.max_buffer)?;
        let chunk = check_chunk(args.chunk_size.unwrap_or(DEFAULT_CHUNK_BYTES as u64))?;
        let reads_stdin = stdin_inputs == 1;
        let other_side = OtherSide::of_sender(&inputs, args.raw);
        let connect = connect_config(args.connect, Role::Offerer, reads_stdin, other_side)?;
        Ok(Self {
            inputs,
            raw: args.raw,
            compress: args.compress,
            threshold,
            chunk_bytes: chunk,
            connect,
            output: output_config(args.output),
        })
    }
}

/// What bare `dcsend` says when stdin is a terminal (nothing piped in, no FILE).
const NOTHING_TO_SEND: &str = "nothing to send: give files (`dcsend FILE...`) or pipe data in \
(`tar c DIR | dcsend`); to receive, run `dcsend recv`; `dcsend -` sends what you type; \
see `dcsend --help`";

/// The subcommand a word was probably meant to be (`recieve` -> `recv`), for a lone FILE
/// argument that is not a file. Words people use for each, compared with Jaro-Winkler.
fn near_subcommand(word: &str) -> Option<&'static str> {
    const WORDS: [(&str, &str); 9] = [
        ("recv", "recv"),
        ("receive", "recv"),
        ("get", "recv"),
        ("bench", "bench"),
        ("benchmark", "bench"),
        ("signal", "signal"),
        ("server", "signal"),
        ("completions", "completions"),
        ("man", "man"),
    ];
    let word = word.to_ascii_lowercase();
    WORDS
        .iter()
        .map(|&(w, sub)| (strsim::jaro_winkler(&word, w), sub))
        .filter(|&(score, _)| score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, sub)| sub)
}

/// The receiver stores each file under its base name only, so two inputs with the same one
/// would land on the same path there: the second would be refused mid-run, or with `--force`
/// silently replace the first. Refused before connecting, naming both.
fn check_distinct_names<'a>(paths: impl Iterator<Item = &'a PathBuf>) -> Result<(), UsageError> {
    let mut seen: std::collections::HashMap<&std::ffi::OsStr, &PathBuf> = Default::default();
    for path in paths {
        let Some(name) = path.file_name() else { continue };
        if let Some(first) = seen.insert(name, path) {
            return Err(UsageError(format!(
                "{} and {} would both arrive as {:?} (the receiver keeps base names only); \
                 rename one, or send them as one stream (`tar c ... | dcsend`)",
                first.display(),
                path.display(),
                name.to_string_lossy()
            )));
        }
    }
    Ok(())
}

fn check_chunk(chunk: u64) -> Result<usize, UsageError> {
    if chunk == 0 || chunk > MAX_CHUNK_BYTES {
        return Err(UsageError(format!(
            "--chunk-size must be between 1 and 256KiB (got {chunk}); 64K is a good value"
        )));
    }
    Ok(chunk as usize)
}

/// Where an export goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// `--export-json`.
    Json,
    /// `--export-csv`.
    Csv,
    /// `--export-markdown`.
    Markdown,
}

/// A validated `bench`.
#[derive(Debug)]
pub struct BenchConfig {
    /// The sweep.
    pub plan: Plan,
    /// Exports: format and path (`-` = stdout).
    pub exports: Vec<(ExportFormat, PathBuf)>,
    /// Where the human table goes: stdout, unless an export took it (then stderr).
    pub table_on_stdout: bool,
    /// Print the table at all (not with `-q` when it would go to stderr, nor when a Markdown
    /// export on stdout already shows it on the terminal).
    pub table: bool,
    /// The live view on stderr.
    pub progress: Draw,
}

impl TryFrom<BenchArgs> for BenchConfig {
    type Error = UsageError;

    fn try_from(args: BenchArgs) -> Result<Self, UsageError> {
        let chunk_sizes =
            args.chunk_size.iter().map(|&c| check_chunk(c)).collect::<Result<_, _>>()?;
        if args.size == 0 {
            return Err(UsageError("--size must be at least 1 byte; 128M is a good value".into()));
        }
        if args.duration.is_some_and(|d| d.is_zero()) {
            return Err(UsageError("--duration must be above zero, e.g. 10s".into()));
        }
        let exports: Vec<(ExportFormat, PathBuf)> = [
            (ExportFormat::Json, args.export_json),
            (ExportFormat::Csv, args.export_csv),
            (ExportFormat::Markdown, args.export_markdown),
        ]
        .into_iter()
        .filter_map(|(f, p)| Some((f, p?)))
        .collect();
        let to_stdout = exports.iter().filter(|(_, p)| p.as_os_str() == "-").count();
        if to_stdout > 1 {
            return Err(UsageError(
                "only one --export-* can write to stdout (\"-\"); give the others a file".into(),
            ));
        }
        let socket_buffer =
            args.socket_buffer.unwrap_or(DEFAULT_SOCKET_BUFFER_BYTES as u64).min(1 << 30) as usize;
        let table_on_stdout = to_stdout == 0;
        // `--export-markdown -` on a terminal: the export is the table, and a second copy on
        // stderr would show on the same screen.
        let markdown_on_terminal = std::io::stdout().is_terminal()
            && exports.iter().any(|(f, p)| *f == ExportFormat::Markdown && p.as_os_str() == "-");
        Ok(Self {
            plan: Plan {
                thresholds: args
                    .threshold
                    .into_iter()
                    .map(|t| threshold_mode(Some(t), args.max_buffer))
                    .collect::<Result<_, _>>()?,
                chunk_sizes,
                size_bytes: args.size,
                duration: args.duration,
                runs: args.runs,
                warmup: args.warmup,
                baseline_tcp: args.baseline == Some(Baseline::Tcp),
                socket_buffer_bytes: socket_buffer,
            },
            exports,
            table_on_stdout,
            table: table_on_stdout || !(args.view.quiet || markdown_on_terminal),
            progress: progress_wanted(&args.view),
        })
    }
}

impl TryFrom<RecvArgs> for RecvConfig {
    type Error = UsageError;

    fn try_from(args: RecvArgs) -> Result<Self, UsageError> {
        let target = match args.output_path {
            None if args.sink => RecvTarget::Discard,
            None if std::io::stdout().is_terminal() => RecvTarget::Here,
            None => RecvTarget::Stdout,
            // `-o -`: stdout whatever it is (curl's `--output -`), for text on a terminal.
            Some(p) if p.as_os_str() == "-" => RecvTarget::Stdout,
            Some(p) if p.is_dir() || p.as_os_str().to_string_lossy().ends_with('/') => {
                RecvTarget::Dir(p)
            }
            Some(p) => RecvTarget::File(p),
        };
        if args.resume && matches!(target, RecvTarget::Stdout | RecvTarget::Discard) {
            return Err(UsageError(
                "--resume continues a NAME.part in a folder or file: give -o DIR/ (or -o FILE); \
                 stdout cannot be resumed"
                    .into(),
            ));
        }
        let connect = connect_config(args.connect, Role::Answerer, false, OtherSide::Send)?;
        Ok(Self {
            target,
            force: args.force,
            resume: args.resume,
            connect,
            output: output_config(args.output),
        })
    }
}

fn paste_negotiation(
    args: &ConnectArgs,
    default_role: Role,
    payload_on_stdin: bool,
) -> Result<Negotiation, UsageError> {
    let role = if args.offer {
        Role::Offerer
    } else if args.answer {
        Role::Answerer
    } else {
        default_role
    };
    let source = match &args.sdp_in {
        Some(p) if p.as_os_str() == "-" => {
            if payload_on_stdin {
                return Err(UsageError(
                    "--sdp-in - reads the token from stdin, but stdin carries the data to send; \
                     use --sdp-in FILE or the terminal"
                        .into(),
                ));
            }
            TokenSource::Stdin
        }
        Some(p) => TokenSource::File(p.clone()),
        // The terminal when stdin is busy with data or is itself the terminal; a piped
        // stdin otherwise (`echo TOKEN | dcsend recv`).
        None if payload_on_stdin || std::io::stdin().is_terminal() => TokenSource::Tty,
        None => TokenSource::Stdin,
    };
    let sink = match &args.sdp_out {
        Some(p) => TokenSink::File(p.clone()),
        None => TokenSink::Stderr,
    };
    let we_send = default_role == Role::Offerer;
    Ok(Negotiation::Paste { role, sink, source, we_send, long_token: args.long_token })
}

fn connect_config(
    args: ConnectArgs,
    default_role: Role,
    payload_on_stdin: bool,
    other_side: OtherSide,
) -> Result<ConnectConfig, UsageError> {
    let how = match &args.peer {
        Some(url) => Negotiation::Url {
            url: PeerUrl::parse(url).map_err(|e| UsageError(format!("--peer: {e}")))?,
            join_timeout: args.join_timeout,
            other_side,
            qr: match args.qr {
                None => false,
                Some(QrWhen::Auto) => std::io::stderr().is_terminal(),
                Some(QrWhen::Always) => true,
            },
        },
        None => paste_negotiation(&args, default_role, payload_on_stdin)?,
    };
    let turn_password = turn_password(args.turn_password_file.as_deref()).map_err(UsageError)?;
    if args.relay_only && args.turn.is_empty() && args.peer.is_none() {
        return Err(UsageError(
            "--relay-only needs a TURN server: --turn, or --peer with a signaling server that \
             hands one out"
                .into(),
        ));
    }
    if !args.turn.is_empty() && (args.turn_user.is_none() || turn_password.is_none()) {
        return Err(UsageError(
            "--turn needs credentials: --turn-user (or DCSEND_TURN_USER) and DCSEND_TURN_PASSWORD \
             (or --turn-password-file)"
                .into(),
        ));
    }
    let bind =
        if args.bind.is_empty() { vec![SocketAddr::from(([0, 0, 0, 0], 0))] } else { args.bind };
    let socket_buffer_bytes =
        args.socket_buffer.map(|b| b as usize).unwrap_or(DEFAULT_SOCKET_BUFFER_BYTES);
    Ok(ConnectConfig {
        how,
        peer: PeerOptions {
            bind,
            ice: IceConfig {
                stun: args.stun,
                turn: args.turn,
                turn_user: args.turn_user,
                turn_password,
                relay_only: args.relay_only,
                servers: Vec::new(),
            },
            socket_buffer_bytes,
            liveness_timeout: args.liveness_timeout,
        },
        connect_timeout: args.connect_timeout,
    })
}

/// The TURN password: the contents of `file` (`--turn-password-file`) without the final line
/// break, else `DCSEND_TURN_PASSWORD`, else none; the error names the flag and the file. Shared
/// by the transfer's options and `dcsend doctor`.
pub fn turn_password(file: Option<&Path>) -> Result<Option<String>, String> {
    match file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned())),
            Err(e) => Err(format!("--turn-password-file {}: {e}", path.display())),
        },
        None => Ok(std::env::var("DCSEND_TURN_PASSWORD").ok()),
    }
}

fn output_config(args: OutputArgs) -> OutputConfig {
    OutputConfig {
        progress: progress_wanted(&args.view),
        summary: !args.view.quiet,
        stats: args.stats,
    }
}

/// The live view: never with -q or `TERM=dumb`; by default only on a terminal; `always`
/// draws into whatever stderr is (like `pv -f`).
fn progress_wanted(view: &ViewArgs) -> Draw {
    // A dumb terminal cannot erase a line: no view, whatever was asked.
    match view.progress {
        _ if view.quiet || dumb_terminal() => Draw::Never,
        ProgressWhen::Never => Draw::Never,
        ProgressWhen::Always => Draw::Always,
        ProgressWhen::Auto if std::io::stderr().is_terminal() => Draw::IfTerminal,
        ProgressWhen::Auto => Draw::Never,
    }
}

/// The TURN servers of `dcsend signal --turn` with the secret read from `path`: refused when
/// the file is empty, with a warning when other users may read it.
fn turn_advert(urls: &[String], path: &Path, ttl: Duration) -> Result<TurnAdvert, UsageError> {
    for url in urls {
        if !url.starts_with("turn:") && !url.starts_with("turns:") {
            return Err(UsageError(format!(
                "--turn {url}: not a TURN URL; use turn:HOST:PORT (or turns:HOST:PORT)"
            )));
        }
    }
    if ttl < Duration::from_secs(60) {
        return Err(UsageError("--turn-ttl must be at least 1m".into()));
    }
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("--turn-secret-file {shown}: {e}")))?;
    let secret = TurnSecret::from_file_text(&text)
        .map_err(|e| UsageError(format!("--turn-secret-file {shown}: {e}")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                "--turn-secret-file {shown} can be read by other users (mode {:o}); anyone who \
                 reads it can use the TURN server: chmod 600 it",
                meta.permissions().mode() & 0o777
            );
        }
    }
    Ok(TurnAdvert { urls: urls.to_vec(), secret, ttl })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_near_subcommand_is_suggested_and_a_file_name_is_not() {
        assert_eq!(super::near_subcommand("recieve"), Some("recv"));
        assert_eq!(super::near_subcommand("Receive"), Some("recv"));
        assert_eq!(super::near_subcommand("rcv"), Some("recv"));
        assert_eq!(super::near_subcommand("singal"), Some("signal"));
        assert_eq!(super::near_subcommand("benhc"), Some("bench"));
        for name in ["photo.jpg", "notes.txt", "backup.tar", "big.iso", "data"] {
            assert_eq!(super::near_subcommand(name), None, "{name}");
        }
    }

    use super::*;

    #[test]
    fn sizes_are_powers_of_1024() {
        assert_eq!(parse_size_arg("64K"), Ok(65536));
        assert_eq!(parse_size_arg("64KiB"), Ok(65536));
        assert_eq!(parse_size_arg("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size_arg("1.5M"), Ok(1_572_864));
        assert_eq!(parse_size_arg("16384"), Ok(16384));
        assert!(parse_size_arg("-1").unwrap_err().contains("64K"));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration_arg("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration_arg("10s"), Ok(Duration::from_secs(10)));
        assert!(parse_duration_arg("soon").unwrap_err().contains("10s"));
    }

    #[test]
    fn stdin_twice_is_refused() {
        let args = SendArgs { files: vec!["-".into(), "-".into()], ..Default::default() };
        assert!(SendConfig::try_from(args).unwrap_err().0.contains("only once"));
    }

    #[test]
    fn two_inputs_with_one_base_name_are_refused_naming_both() {
        let files = vec!["d1/same".into(), "d2/same".into()];
        let err = SendConfig::try_from(SendArgs { files, ..Default::default() }).unwrap_err().0;
        assert!(err.contains("d1/same and d2/same would both arrive as \"same\""), "{err}");
        let files = vec!["d1/same".into(), "d2/other".into(), "-".into()];
        assert!(SendConfig::try_from(SendArgs { files, ..Default::default() }).is_ok());
    }

    #[test]
    fn sdp_in_stdin_conflicts_with_stdin_payload() {
        let mut args = SendArgs::default();
        args.connect.sdp_in = Some("-".into());
        assert!(SendConfig::try_from(args).unwrap_err().0.contains("stdin carries the data"));
    }

    #[test]
    fn chunk_size_is_bounded() {
        let args = SendArgs { chunk_size: Some(1 << 20), ..Default::default() };
        assert!(SendConfig::try_from(args).unwrap_err().0.contains("--chunk-size"));
    }

    #[test]
    fn raw_takes_one_input() {
        let args =
            SendArgs { raw: true, files: vec!["a".into(), "b".into()], ..Default::default() };
        assert!(SendConfig::try_from(args).unwrap_err().0.contains("--raw"));
    }

    #[test]
    fn peer_url_selects_the_signaling_server_and_bad_urls_are_usage_errors() {
        let mut args = SendArgs::default();
        args.connect.peer = Some("http://127.0.0.1:1/".into());
        let cfg = SendConfig::try_from(args).unwrap();
        assert!(matches!(cfg.connect.how, Negotiation::Url { .. }));
        let mut args = SendArgs::default();
        args.connect.peer = Some("http://127.0.0.1:1/room".into());
        let err = SendConfig::try_from(args).unwrap_err().0;
        assert!(err.starts_with("--peer:") && err.contains("secret"), "{err}");
    }

    /// `--relay-only` needs a TURN server: from `--turn`, or from the signaling server.
    #[test]
    fn relay_only_needs_turn_or_a_signaling_server() {
        let mut args = SendArgs::default();
        args.connect.relay_only = true;
        let err = SendConfig::try_from(args).unwrap_err().0;
        assert!(err.contains("--relay-only") && err.contains("--peer"), "{err}");
        let mut args = SendArgs::default();
        args.connect.relay_only = true;
        args.connect.peer = Some("http://127.0.0.1:1/".into());
        assert!(SendConfig::try_from(args).unwrap().connect.peer.ice.relay_only);
    }

    /// The command a sender prints for the other side runs as printed: a receiver on a
    /// terminal refuses data without a name, so stdin and `--raw` ask for `-o`.
    #[test]
    fn the_printed_command_for_the_receiver_fits_what_is_sent() {
        let other_side = |files: &[&str], raw: bool| {
            let mut args = SendArgs {
                files: files.iter().map(PathBuf::from).collect(),
                raw,
                ..Default::default()
            };
            args.connect.peer = Some("http://127.0.0.1:1/".into());
            match SendConfig::try_from(args).unwrap().connect.how {
                Negotiation::Url { other_side, .. } => other_side,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(other_side(&["a.txt", "b.txt"], false).command(), "dcsend recv");
        assert_eq!(other_side(&["-"], false).command(), "dcsend recv -o FILE");
        assert_eq!(other_side(&["a.txt"], true).command(), "dcsend recv -o FILE");
        assert_eq!(other_side(&["a.txt", "-"], false).command(), "dcsend recv -o DIR/");
        assert!(other_side(&["-"], false).note().unwrap().contains("pipe"));
        assert_eq!(other_side(&["a.txt"], false).note(), None);
    }

    #[test]
    fn threshold_defaults_to_auto_bounded_by_max_buffer() {
        assert_eq!(parse_threshold_arg(" Auto "), Ok(ThresholdArg::Auto));
        assert_eq!(parse_threshold_arg("4M"), Ok(ThresholdArg::Bytes(4 << 20)));
        assert!(parse_threshold_arg("fast").unwrap_err().contains("auto"));
        let cfg = SendConfig::try_from(SendArgs::default()).unwrap();
        assert_eq!(cfg.threshold, Threshold::Auto { max_bytes: autotune::DEFAULT_MAX_BYTES });
        let args = SendArgs { max_buffer: Some(8 << 20), ..Default::default() };
        assert_eq!(
            SendConfig::try_from(args).unwrap().threshold,
            Threshold::Auto { max_bytes: 8 << 20 }
        );
        // A fixed size keeps its exact meaning; --max-buffer does not touch it.
        let args = SendArgs {
            threshold: Some(ThresholdArg::Bytes(100)),
            max_buffer: Some(1),
            ..Default::default()
        };
        assert_eq!(SendConfig::try_from(args).unwrap().threshold, Threshold::Fixed(100));
        let args = SendArgs { max_buffer: Some(0), ..Default::default() };
        assert!(SendConfig::try_from(args).unwrap_err().0.contains("--max-buffer"));
    }
}

/// The signaling server's settings.
#[derive(Debug)]
pub struct SignalConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where to answer STUN Binding requests (UDP).
    pub stun: Vec<SocketAddr>,
    /// Room limits.
    pub limits: Limits,
    /// Connection limits.
    pub conns: ConnLimits,
    /// The Redis URL of a shared room store; `None` keeps rooms in memory.
    pub store: Option<String>,
    /// STUN URLs to hand out instead of `stun` (`--stun-url`).
    pub stun_urls: Vec<String>,
    /// TURN servers to hand out with credentials (`--turn`, `--turn-secret-file`,
    /// `--turn-ttl`).
    pub turn: Option<TurnAdvert>,
}

impl TryFrom<SignalArgs> for SignalConfig {
    type Error = UsageError;

    fn try_from(args: SignalArgs) -> Result<Self, UsageError> {
        if args.room_ttl < Duration::from_secs(1) {
            return Err(UsageError("--room-ttl must be at least 1s".into()));
        }
        if args.max_rooms == 0 || args.max_rooms_per_client == 0 {
            return Err(UsageError(
                "--max-rooms and --max-rooms-per-client must be at least 1".into(),
            ));
        }
        if args.max_connections == 0 || args.max_connections_per_client == 0 {
            return Err(UsageError(
                "--max-connections and --max-connections-per-client must be at least 1".into(),
            ));
        }
        for (flag, value) in [
            ("--claim-timeout", args.claim_timeout),
            ("--presence-timeout", args.presence_timeout),
            ("--header-timeout", args.header_timeout),
            ("--idle-timeout", args.idle_timeout),
        ] {
            if value < Duration::from_millis(100) {
                return Err(UsageError(format!("{flag} must be at least 100ms")));
            }
        }
        if let Some(url) = &args.store
            && !["redis://", "rediss://", "redis+unix://", "unix://"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
        {
            return Err(UsageError(format!(
                "--store {url}: not a Redis URL; use redis://HOST:PORT/DB (or rediss://)"
            )));
        }
        for url in &args.stun_url {
            if !url.starts_with("stun:") && !url.starts_with("stuns:") {
                return Err(UsageError(format!(
                    "--stun-url {url}: not a STUN URL; use stun:HOST:PORT"
                )));
            }
        }
        let turn = match &args.turn_secret_file {
            None => None,
            Some(path) => Some(turn_advert(&args.turn, path, args.turn_ttl)?),
        };
        Ok(Self {
            store: args.store,
            listen: args.listen,
            stun: args.stun,
            stun_urls: args.stun_url,
            turn,
            limits: Limits {
                max_rooms: args.max_rooms,
                max_rooms_per_client: args.max_rooms_per_client,
                prefix: PrefixLens { v4: args.client_prefix_v4, v6: args.client_prefix_v6 },
                idle_ttl: args.room_ttl,
                claim_timeout: args.claim_timeout,
                presence_timeout: args.presence_timeout,
                ..Limits::default()
            },
            conns: ConnLimits {
                max_connections: args.max_connections,
                max_connections_per_client: args.max_connections_per_client,
                header_timeout: args.header_timeout,
                idle_timeout: args.idle_timeout,
            },
        })
    }
}
