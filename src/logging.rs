//! Logging to stderr, never stdout (stdout may carry the payload).

use tracing_subscriber::EnvFilter;

/// `-v` count to a filter; `RUST_LOG` wins when set.
pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "dcsend=warn,error",
        1 => "dcsend=info,warn",
        2 => "dcsend=debug,info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
