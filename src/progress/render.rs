//! The live view on stderr: the only module that touches indicatif. It draws snapshots it
//! is given; it computes nothing. No colours, so `NO_COLOR` and `TERM=dumb` are honoured by
//! construction.

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::stats::Snapshot;

const TEMPLATE_KNOWN: &str = "{prefix} [{bar:24}] {msg}";
const TEMPLATE_STREAM: &str = "{prefix} {spinner} {msg}";
/// Redraws per second.
const HZ: u8 = 8;

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("the templates are valid").progress_chars("=> ")
}

/// Whether and how the live view draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draw {
    /// Not at all.
    Never,
    /// On stderr when it is a terminal (indicatif's own check).
    IfTerminal,
    /// On stderr whatever it is (`--progress always`): a file or pipe gets the frames too.
    Always,
}

impl Draw {
    /// Anything is drawn (or may be).
    pub fn is_on(self) -> bool {
        self != Self::Never
    }
}

/// A live progress line on stderr (hidden when disabled).
#[derive(Debug)]
pub struct Live {
    bar: ProgressBar,
    show_buffer: bool,
}

impl Live {
    /// A view labelled `label`; `show_buffer` adds "buf X/THRESHOLD" (the sender's view).
    pub fn new(draw: Draw, label: &str, show_buffer: bool) -> Self {
        let target = match draw {
            Draw::Never => ProgressDrawTarget::hidden(),
            Draw::IfTerminal => ProgressDrawTarget::stderr_with_hz(HZ),
            Draw::Always => {
                ProgressDrawTarget::term_like_with_hz(Box::new(console::Term::stderr()), HZ)
            }
        };
        // Style and prefix before the bar meets its target: the first frame is ours, not
        // indicatif's default template.
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
            .with_style(style(TEMPLATE_STREAM))
            .with_prefix(label.to_owned());
        bar.set_draw_target(target);
        Self { bar, show_buffer }
    }

    /// Redraws from a snapshot.
    pub fn update(&self, s: &Snapshot) {
        // Style first: set_length draws, and must draw with the right template.
        match s.total_bytes {
            Some(total) => {
                self.bar.set_style(style(TEMPLATE_KNOWN));
                self.bar.set_length(total.max(1));
            }
            None => self.bar.set_style(style(TEMPLATE_STREAM)),
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

/// "12.0 MiB/3.0 GiB  310.2 MiB/s (avg 290.0 MiB/s)  ETA 9s  buf 0.8/1.0 MiB  host/relay"
/// (the last part: the selected candidate pair's local/remote kinds, when known).
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
    if let Some(path) = &s.path {
        out += &format!("  {}", path.short());
    }
    if let Some(files) = &s.files {
        out += &format!("  {}/{} files", files.done, files.total);
        if let Some(current) = &files.current {
            // A name from the peer: shown escaped, like every name it sends.
            out += &format!("  {}", shown_name(current));
        }
    }
    out
}

/// A file name for the live view: control characters escaped (the name may come from the
/// peer), and a long one cut to its last 40 characters, where the file's own name is.
fn shown_name(name: &str) -> String {
    const KEEP: usize = 40;
    let escaped: String = name
        .chars()
        .flat_map(|c| match c.is_control() {
            true => c.escape_default().collect::<Vec<_>>(),
            false => vec![c],
        })
        .collect();
    let count = escaped.chars().count();
    match count > KEEP {
        true => format!("…{}", escaped.chars().skip(count - KEEP).collect::<String>()),
        false => escaped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::path::{CandidateKind, Path, Protocol};
    use crate::progress::stats::Stats;

    #[test]
    fn the_line_ends_with_the_path_once_known() {
        let mut stats = Stats::new(Some(4 << 20), 1 << 20);
        stats.on_bytes(1 << 20);
        let snap = stats.tick(std::time::Duration::from_secs(1));
        assert_eq!(
            line(&snap, true),
            "1.00 MiB/4.00 MiB  1.00 MiB/s (avg 1.00 MiB/s)  ETA 3s  buf 0.0/1.0 MiB"
        );
        stats.set_path(Some(Path {
            local: CandidateKind::Relay,
            remote: CandidateKind::Srflx,
            protocol: Protocol::Udp,
        }));
        let snap = stats.tick(std::time::Duration::from_secs(2));
        assert!(line(&snap, false).ends_with("  relay/srflx"), "{}", line(&snap, false));
    }

    #[test]
    fn a_transfer_of_several_files_shows_files_done_and_the_current_one() {
        use crate::progress::stats::Files;
        let mut stats = Stats::new(Some(4 << 20), 1 << 20);
        let files = |total, current: &str| {
            Some(Files { done: 2, total, current: Some(current.to_owned()) })
        };
        stats.set_files(files(1, "one.bin"));
        let snap = stats.tick(std::time::Duration::from_secs(1));
        assert!(!line(&snap, false).contains("files"), "one file: {}", line(&snap, false));
        stats.set_files(files(10, "photos/2024/\u{1b}[2J a.jpg"));
        let snap = stats.tick(std::time::Duration::from_secs(2));
        assert!(
            line(&snap, false).ends_with("  2/10 files  photos/2024/\\u{1b}[2J a.jpg"),
            "{}",
            line(&snap, false)
        );
        let long = format!("{}/end.jpg", "d".repeat(100));
        stats.set_files(files(10, &long));
        let snap = stats.tick(std::time::Duration::from_secs(3));
        assert!(line(&snap, false).ends_with(&format!("  …{}/end.jpg", "d".repeat(32))));
    }
}
