//! The live view on stderr: the only module that touches indicatif. It draws snapshots it
//! is given; it computes nothing. No colours, so `NO_COLOR` and `TERM=dumb` are honoured by
//! construction.

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::stats::Snapshot;

const TEMPLATE_KNOWN: &str = "{prefix} [{bar:24}] {msg}";
const TEMPLATE_STREAM: &str = "{prefix} {spinner} {msg}";

/// A live progress line on stderr (hidden when disabled).
#[derive(Debug)]
pub struct Live {
    bar: ProgressBar,
    show_buffer: bool,
}

impl Live {
    /// A view labelled `label`; `show_buffer` adds "buf X/THRESHOLD" (the sender's view).
    pub fn new(enabled: bool, label: &str, show_buffer: bool) -> Self {
        let target = if enabled {
            ProgressDrawTarget::stderr_with_hz(8)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_prefix(label.to_owned());
        Self { bar, show_buffer }
    }

    /// Redraws from a snapshot.
    pub fn update(&self, s: &Snapshot) {
        let style = match s.total_bytes {
            Some(total) => {
                self.bar.set_length(total.max(1));
                ProgressStyle::with_template(TEMPLATE_KNOWN)
            }
            None => ProgressStyle::with_template(TEMPLATE_STREAM),
        };
        if let Ok(style) = style {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_position(s.bytes);
        self.bar.set_message(line(s, self.show_buffer));
    }

    /// Removes the line (the caller prints a summary instead).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Prints a line above the bar without tearing it.
    pub fn println(&self, text: &str) {
        if self.bar.is_hidden() {
            eprintln!("{text}");
        } else {
            self.bar.println(text);
        }
    }
}

/// "12.0 MiB/3.0 GiB  310.2 MiB/s (avg 290.0 MiB/s)  ETA 9s  buf 0.8/1.0 MiB"
pub fn line(s: &Snapshot, show_buffer: bool) -> String {
    let mut out = match s.total_bytes {
        Some(t) => format!("{}/{}", HumanBytes(s.bytes), HumanBytes(t)),
        None => format!("{}", HumanBytes(s.bytes)),
    };
    out +=
        &format!("  {}/s (avg {}/s)", HumanBytes(s.rate_bps as u64), HumanBytes(s.avg_bps as u64));
    if let Some(eta) = s.eta_s {
        out += &format!("  ETA {}s", eta.ceil() as u64);
    }
    if show_buffer {
        out += &format!(
            "  buf {:.1}/{:.1} MiB",
            s.buffered_bytes as f64 / 1048576.0,
            s.threshold_bytes as f64 / 1048576.0
        );
    }
    out
}
