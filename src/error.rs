//! Typed errors of the core and the exit-code table ([`EXIT_CODES`]). The core returns these;
//! `cmd/*` adds context with anyhow; `main` prints `dcsend: {err:#}` and maps the chain to an
//! exit code ([`exit_code`]).

use std::process::ExitCode;
use std::sync::OnceLock;

use crate::peer::PeerError;
use crate::signal::codec::TokenError;
use crate::signal::rendezvous::SignalError;

/// Every exit status dcsend uses and what it means: the one table behind `--help`, the man
/// pages and [`exit_code`] (the README's table is checked against it by `tests/cli.rs`). Each
/// meaning fits one line of an 80-column help screen.
pub const EXIT_CODES: [(u8, &str); 8] = [
    (0, "delivered and verified (--raw or a plain peer: delivered, unverified)"),
    (1, "other error (I/O, refused to overwrite, the peer broke the protocol)"),
    (2, "bad usage or bad input (a flag, a token, a --peer URL)"),
    (3, "could not connect (signaling, ICE, authentication) or the peer left"),
    (4, "integrity failure (size or SHA-256 mismatch)"),
    (130, "interrupted (Ctrl-C, SIGINT); the peer is told"),
    (BROKEN_PIPE, "the receiver's stdout closed before the end of the data"),
    (143, "terminated (SIGTERM), handled like Ctrl-C"),
];

/// The exit statuses of `dcsend bench` (its `--help` and man page), each one of
/// [`EXIT_CODES`] in the meaning it has for a sweep: there is no remote peer to tell and no
/// receiver's stdout (an export reader that stops early is not an error, as for any report).
pub const BENCH_EXIT_CODES: [(u8, &str); 7] = [
    (0, "every case ran and every run's bytes arrived intact"),
    (1, "other error (I/O, an export that cannot be written)"),
    (2, "bad usage (a flag)"),
    (3, "the two loopback peers of a run could not connect"),
    (4, "integrity failure: a run's bytes did not arrive intact"),
    (130, "interrupted (Ctrl-C, SIGINT); what was measured is still reported"),
    (143, "terminated (SIGTERM), handled like Ctrl-C"),
];

/// A flag combination or value that cannot work. Exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Errors of a transfer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// Ctrl-C or SIGTERM (see [`stopped_by`]).
    #[error("{}", Stop::shown())]
    Interrupted,
    /// The peer disappeared mid-transfer.
    #[error("{reason} ({confirmed_bytes} bytes delivered and confirmed)")]
    PeerGone {
        /// What happened.
        reason: String,
        /// Payload bytes of the items that were delivered whole and verified before it went:
        /// for a sender, the items the receiver acknowledged; for a receiver, the items it
        /// verified and stored.
        confirmed_bytes: u64,
    },
    /// The peer sent `abort`. The reason is shown shortened and with control characters
    /// escaped: it comes from the remote peer and goes to a terminal.
    #[error("the peer aborted: {} ({confirmed_bytes} bytes delivered and confirmed)", shown_reason(.reason))]
    PeerAborted {
        /// The peer's reason, as sent.
        reason: String,
        /// As in [`TransferError::PeerGone`].
        confirmed_bytes: u64,
    },
    /// A size or digest mismatch.
    #[error("integrity check failed for {name}: {detail}")]
    Integrity {
        /// Which item.
        name: String,
        /// What did not match.
        detail: String,
    },
    /// The peer broke the wire protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// We refused something locally (e.g. overwriting a file).
    #[error("{0}")]
    Refused(String),
    /// Writing the received bytes failed; a closed pipe is kept recognisable (see
    /// [`is_broken_pipe`]).
    #[error("writing the output: {0}")]
    Output(std::io::Error),
    /// Reading an input failed, or it changed size while being sent (the error names it).
    #[error("{0}")]
    Input(std::io::Error),
    /// The connection failed under a transfer; exits as the [`PeerError`] does.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// A task of the transfer died (a bug: it panicked).
    #[error("{0}")]
    Internal(String),
    /// A failure that does not say how much got through, with the count added: a failed
    /// sender always says it. Exits as `source` does.
    #[error("after {confirmed_bytes} bytes delivered and confirmed")]
    AfterConfirmed {
        /// As in [`TransferError::PeerGone`].
        confirmed_bytes: u64,
        /// The failure.
        #[source]
        source: Box<TransferError>,
    },
}

/// The signal that stopped the run. Signals are process-wide, and so is this record: the
/// handler in `cmd` notes the first one with [`stopped_by`] before it cancels the run, and the
/// core reads it back for the `abort` reason and the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT (Ctrl-C): exit 130.
    Interrupt,
    /// SIGTERM (`kill`, `timeout`, systemd, docker): exit 143.
    Terminate,
}

static STOPPED_BY: OnceLock<Stop> = OnceLock::new();

/// Records the first signal that stopped the run; later ones do not change it.
pub fn stopped_by(stop: Stop) {
    let _ = STOPPED_BY.set(stop);
}

impl Stop {
    /// The signal that stopped the run, if one did.
    pub fn current() -> Option<Stop> {
        STOPPED_BY.get().copied()
    }

    /// The conventional exit status: 128 + the signal's number.
    pub fn exit_status(self) -> u8 {
        match self {
            Stop::Interrupt => 130,
            Stop::Terminate => 143,
        }
    }

    /// "interrupted (SIGINT)", "terminated (SIGTERM)", or "interrupted" when the run was
    /// cancelled without a signal.
    pub fn shown() -> &'static str {
        match Stop::current() {
            Some(Stop::Interrupt) => "interrupted (SIGINT)",
            Some(Stop::Terminate) => "terminated (SIGTERM)",
            None => "interrupted",
        }
    }
}

/// Most characters of a peer's abort reason that are printed.
const MAX_REASON_CHARS: usize = 300;

/// A peer's text (an abort reason, a file name) made safe for one terminal line: at most
/// [`MAX_REASON_CHARS`] characters (then `…`), control characters (escape sequences, line
/// breaks) and bidirectional overrides escaped as `\u{..}`.
pub(crate) fn shown_reason(reason: &str) -> String {
    let mut out = String::new();
    for (i, c) in reason.chars().enumerate() {
        if i == MAX_REASON_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// The exit code for an error chain.
pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<TransferError>() {
            return ExitCode::from(transfer_code(e));
        }
        if let Some(e) = cause.downcast_ref::<PeerError>() {
            return ExitCode::from(peer_code(e));
        }
        if cause.is::<SignalError>() {
            return ExitCode::from(3);
        }
        if cause.is::<TokenError>() || cause.is::<UsageError>() {
            return ExitCode::from(2);
        }
    }
    ExitCode::FAILURE
}

/// The exit code for a [`TransferError`].
fn transfer_code(e: &TransferError) -> u8 {
    match e {
        TransferError::AfterConfirmed { source, .. } => transfer_code(source),
        TransferError::Interrupted => Stop::current().map_or(130, Stop::exit_status),
        TransferError::PeerGone { .. } | TransferError::PeerAborted { .. } => 3,
        TransferError::Integrity { .. } => 4,
        TransferError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => BROKEN_PIPE,
        TransferError::Peer(e) => peer_code(e),
        _ => 1,
    }
}

/// The exit code for a [`PeerError`].
fn peer_code(e: &PeerError) -> u8 {
    match e {
        PeerError::BadRemote { .. } => 2,
        PeerError::Setup(_) => 1,
        _ => 3,
    }
}

/// The exit status of a receiver whose stdout closed before the end of the data: the shell
/// reports a process killed by SIGPIPE as 141 (128 + 13). Not 0: the consumer did not get
/// everything (`dcsend recv | tar x` where tar died part-way).
pub const BROKEN_PIPE: u8 = 141;

/// Whether the error is a broken pipe on stdout outside a transfer (`dcsend completions bash |
/// head`): the reader had what it wanted, so exit quietly with 0, like ripgrep. A receiver's
/// closed stdout is not that: it exits [`BROKEN_PIPE`].
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    let transfer = err.chain().any(|c| c.is::<TransferError>());
    !transfer
        && err.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        })
}

/// A hint printed after the error line, when one helps.
pub fn hint(err: &anyhow::Error) -> Option<&'static str> {
    err.chain().find_map(|c| {
        if let Some(TransferError::Output(e)) = c.downcast_ref::<TransferError>()
            && e.kind() == std::io::ErrorKind::BrokenPipe
        {
            return Some(
                "hint: the program reading dcsend's output exited before the end of the data; \
                 the sender was told",
            );
        }
        if let Some(PeerError::Connect(_)) = c.downcast_ref::<PeerError>() {
            return Some(
                "hint: both peers must reach each other over UDP; across NATs add --stun, or --turn for a relay",
            );
        }
        if let Some(PeerError::Handshake(_)) = c.downcast_ref::<PeerError>() {
            return Some(
                "hint: the fingerprints in the tokens are what proves who is on the other side; \
                 if a token may have been altered, exchange new ones over a channel you trust, \
                 or connect with --peer (its secret seals them)",
            );
        }
        match c.downcast_ref::<SignalError>() {
            Some(SignalError::Unreachable { .. }) => Some(
                "hint: start one with `dcsend signal --listen ADDR` (it listens on 127.0.0.1:8080 by default)",
            ),
            Some(SignalError::NoToken(_)) => Some(
                "hint: nothing was sent and no connection was tried: the other side's token never \
                 came; is it running, and does its --sdp-out name this file?",
            ),
            Some(SignalError::Unauthentic) => Some(
                "hint: both sides need the whole URL one of them printed, secret after '#' included; if they had it, do not trust that server",
            ),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(e: anyhow::Error) -> ExitCode {
        exit_code(&e)
    }

    #[test]
    fn bench_documents_only_codes_of_the_main_table() {
        for (code, _) in BENCH_EXIT_CODES {
            assert!(EXIT_CODES.iter().any(|(c, _)| *c == code), "{code} is not in EXIT_CODES");
        }
        assert!(!BENCH_EXIT_CODES.iter().any(|(c, _)| *c == BROKEN_PIPE), "bench has no receiver");
    }

    #[test]
    fn table() {
        // No signal was noted in this process: a cancelled run is an interrupt.
        assert_eq!(code(TransferError::Interrupted.into()), ExitCode::from(130));
        let gone = TransferError::PeerGone { reason: "x".into(), confirmed_bytes: 0 };
        assert_eq!(code(anyhow::Error::from(gone).context("sending")), ExitCode::from(3));
        let bad = TransferError::Integrity { name: "a".into(), detail: "b".into() };
        assert_eq!(code(bad.into()), ExitCode::from(4));
        assert_eq!(code(TokenError::Empty.into()), ExitCode::from(2));
        assert_eq!(code(UsageError("u".into()).into()), ExitCode::from(2));
        assert_eq!(code(PeerError::Connect("c".into()).into()), ExitCode::from(3));
        assert_eq!(code(PeerError::NoRelay("r".into()).into()), ExitCode::from(3));
        assert_eq!(code(PeerError::Handshake("h".into()).into()), ExitCode::from(3));
        assert_eq!(code(PeerError::Lost("l".into()).into()), ExitCode::from(3));
        assert_eq!(code(anyhow::anyhow!("other")), ExitCode::FAILURE);
        // Typed wrappers exit as what they wrap.
        let closed = PeerError::ChannelClosed("c".into());
        assert_eq!(code(TransferError::Peer(closed).into()), ExitCode::from(3));
        let setup = PeerError::Setup("s".into());
        assert_eq!(code(TransferError::Peer(setup).into()), ExitCode::from(1));
        let bad = TransferError::Integrity { name: "a".into(), detail: "b".into() };
        let after = TransferError::AfterConfirmed { confirmed_bytes: 1, source: Box::new(bad) };
        assert_eq!(code(after.into()), ExitCode::from(4));
    }

    #[test]
    fn a_peer_abort_reason_is_shown_on_one_short_line() {
        let shown = |r: &str| {
            let e = TransferError::PeerAborted { reason: r.into(), confirmed_bytes: 7 };
            e.to_string()
        };
        let tail = " (7 bytes delivered and confirmed)";
        assert_eq!(shown("disk full"), format!("the peer aborted: disk full{tail}"));
        assert_eq!(
            shown("a\nb\u{1b}[2J\u{202e}c"),
            format!("the peer aborted: a\\u{{a}}b\\u{{1b}}[2J\\u{{202e}}c{tail}")
        );
        let long = shown(&"é".repeat(20_000));
        let long = long.strip_suffix(tail).unwrap();
        assert_eq!(long.chars().count(), "the peer aborted: ".len() + MAX_REASON_CHARS + 1);
        assert!(long.ends_with("é…"), "{long}");
    }

    #[test]
    fn broken_pipe_is_quiet_outside_a_transfer_and_141_in_one() {
        let e = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("writing stdout");
        assert!(is_broken_pipe(&e));
        // What the receiver really returns when its stdout is closed: not success.
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let e = anyhow::Error::from(TransferError::Output(pipe)).context("receiving");
        assert!(!is_broken_pipe(&e));
        assert_eq!(exit_code(&e), ExitCode::from(141));
        assert!(hint(&e).is_some_and(|h| h.contains("exited before the end")));
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        let e = anyhow::Error::from(TransferError::Output(full));
        assert!(!is_broken_pipe(&e));
        assert_eq!(exit_code(&e), ExitCode::from(1));
    }
}
