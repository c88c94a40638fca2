//! dcsend moves bytes between two machines over a WebRTC data channel.
//!
//! A run flows through these stages:
//!
//! ```text
//! Cli (clap) -> cli::config::{Send,Recv}Config      validated flags
//!   -> cmd::connect: signal::paste + signal::codec   copy-paste tokens (Pion's base64 JSON)
//!   -> peer::Peer -> peer::Channel                   the only webrtc-aware code
//!   -> transfer::send: source -> pump(queue) -> Channel     threshold-based sender
//!      transfer::recv: Channel -> sink (.part, SHA-256) -> ack
//!   -> progress: meter -> stats -> render (indicatif) / --stats NDJSON
//!   -> error::exit_code
//!
//! bench: two sides of one process run the real sender and receiver over loopback
//!   -> bench::run (a run) -> bench::report (cases, JSON/CSV/Markdown)
//! ```

/// The webrtc crate line this build pins in `Cargo.toml` (`--version`, bench reports); kept
/// here so that `cli` can say it without importing `peer`.
pub const WEBRTC_VERSION: &str = "0.21";

pub mod atomic;
pub mod bench;
pub mod cli;
pub mod cmd;
pub mod error;
pub mod logging;
pub mod peer;
pub mod progress;
pub mod signal;
pub mod transfer;
