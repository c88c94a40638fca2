//! Logging to stderr, never stdout (stdout may carry the payload).

use tracing_subscriber::EnvFilter;

/// Installs the subscriber: `default` filter unless `RUST_LOG` is set; text without colour, or
/// one JSON object per line.
pub fn init(default: &str, json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
