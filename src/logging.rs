//! Logging to stderr, never stdout (stdout may carry the payload).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// Installs the subscriber: `default` filter unless `RUST_LOG` is set; text without colour, or
/// one JSON object per line.
pub fn init(default: &str, json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// `default`, and when it shows no more than warnings, without the webrtc messages that are
/// no error to a user ([`crate::peer::QUIET_LOG_DIRECTIVES`]); -v shows them again.
fn default_filter(default: &str) -> EnvFilter {
    let mut filter = EnvFilter::new(default);
    if filter.max_level_hint().is_some_and(|l| l <= LevelFilter::WARN) {
        for directive in crate::peer::QUIET_LOG_DIRECTIVES {
            filter = filter.add_directive(directive.parse().expect("a valid directive"));
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ice_send_errors_are_hidden_only_at_the_default_level() {
        let quiet = crate::peer::QUIET_LOG_DIRECTIVES[0];
        assert!(default_filter("dcsend=warn,error").to_string().contains(quiet));
        assert!(!default_filter("dcsend=info,warn").to_string().contains(quiet));
        assert!(!default_filter("trace").to_string().contains(quiet));
    }
}
