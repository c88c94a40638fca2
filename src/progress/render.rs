//! The live view on stderr: the only module that touches indicatif. It draws snapshots it
//! is given; it computes no figures. No colours, so `NO_COLOR` and `TERM=dumb` are honoured
//! by construction.
//!
//! The line is composed here, by [`frame`], to fit the terminal's width: indicatif only
//! draws it. A line wider than the terminal wraps, and the view then redraws over its own
//! second half: what matters must be in the first `width` columns.

use std::fmt::Write as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::stats::Snapshot;
use crate::error::shown_reason;

/// Redraws per second.
const HZ: u8 = 8;

/// The widest label shown; a longer file name is cut with `…`.
const LABEL_MAX_COLUMNS: usize = 32;
/// The bar's width inside its brackets, at most and at least: below the minimum it says
/// too little to be worth the room.
const BAR_MAX_INNER: usize = 24;
const BAR_MIN_INNER: usize = 8;

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
    label: String,
    show_buffer: bool,
    widest: Widest,
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
        // The style before the bar meets its target: the first frame is ours, not
        // indicatif's default template.
        let style = ProgressStyle::with_template("{msg}").expect("the template is valid");
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
            .with_style(style)
            .with_message(shown_reason(label));
        bar.set_draw_target(target);
        Self { bar, label: shown_reason(label), show_buffer, widest: Widest::default() }
    }

    /// Relabels the view (the item in progress). The label may come from a peer: control
    /// characters and bidi overrides are escaped.
    pub fn set_label(&mut self, label: &str) {
        self.label = shown_reason(label);
    }

    /// Redraws from a snapshot, fitted to the terminal's current width (80 columns when
    /// stderr is not a terminal, as with `--progress always` into a file).
    pub fn update(&mut self, s: &Snapshot) {
        if self.bar.is_hidden() {
            return;
        }
        let width = console::Term::stderr().size().1 as usize;
        self.bar.set_message(frame(&self.label, s, self.show_buffer, width, &mut self.widest));
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

/// The parts of a frame, in the order they are given up when the terminal is too narrow:
/// the first goes first. The rate and `buf X/Y` (the buffered amount against the threshold:
/// what a threshold sender is about) are the headline and go last; the ETA and the bytes
/// answer "how long, how far"; the label, the files done/total with the current file (several
/// files only) and the path say what and how; the average only repeats the rate over a longer
/// time. The bar is not in the list: it comes after all of them, drawn only when every part
/// fits and at least [`BAR_MIN_INNER`] columns are left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Average,
    Path,
    Files,
    Label,
    Bytes,
    Eta,
    Buffer,
    Rate,
}

impl Part {
    /// How many parts there are (`Rate` is the last), the size of per-part tables.
    const COUNT: usize = Part::Rate as usize + 1;

    /// A figure, whose width changes from frame to frame (see [`Widest`]).
    fn is_figure(self) -> bool {
        !matches!(self, Part::Label | Part::Path | Part::Files)
    }
}

/// The widest each figure has been in one view. The layout (which parts fit, how wide the
/// bar is) is decided with each figure at that width, so it does not flicker from frame to
/// frame as "7.1 MiB" becomes "7 MiB": it changes only when a figure is wider than ever
/// before, which settles within the first frames. The text itself is not padded.
#[derive(Debug, Default, Clone)]
pub struct Widest([usize; Part::COUNT]);

impl Widest {
    /// Records `text` as `part`'s; returns the columns to reserve for it.
    fn note(&mut self, part: Part, text: &str) -> usize {
        let widest = &mut self.0[part as usize];
        *widest = (*widest).max(columns(text));
        *widest
    }
}

/// One frame of the live view, at most `width` columns; at 120 columns a sender shows
///
/// `payload.bin [=====>                  ] 12.3 MiB/50 MiB  310 MiB/s (avg 290 MiB/s)  ETA 9s
/// buf 4.1 MiB/4 MiB  host/relay` (one line), and at 80
///
/// `payload.bin  12.3 MiB/50 MiB  310 MiB/s  ETA 9s  buf 4.1 MiB/4 MiB  host/relay`
///
/// (`buf` only with `show_buffer`; the path, the selected candidate pair's local/remote
/// kinds, once known). Parts that do not fit are left out in [`Part`]'s order; if even the
/// rate does not, the line is cut.
pub fn frame(
    label: &str,
    s: &Snapshot,
    show_buffer: bool,
    width: usize,
    widest: &mut Widest,
) -> String {
    let label = console::truncate_str(label, LABEL_MAX_COLUMNS, "…");
    let mut parts = vec![
        (Part::Label, label.into_owned()),
        (
            Part::Bytes,
            match s.total_bytes {
                Some(t) => format!("{}/{}", size(s.bytes), size(t)),
                None => size(s.bytes),
            },
        ),
        (Part::Rate, rate(s.rate_bps)),
        (Part::Average, format!("(avg {})", rate(s.avg_bps))),
    ];
    if let Some(eta_s) = s.eta_s {
        parts.push((Part::Eta, format!("ETA {}", eta(eta_s))));
    }
    if show_buffer {
        parts.push((
            Part::Buffer,
            format!("buf {}/{}", size(s.buffered_bytes), size(s.threshold_bytes)),
        ));
    }
    if let Some(path) = &s.path {
        parts.push((Part::Path, path.short()));
    }
    if let Some(files) = &s.files {
        let mut text = format!("{}/{} files", files.done, files.total);
        if let Some(current) = &files.current {
            // A name from the peer: shown escaped, like every name it sends.
            text += "  ";
            text += &shown_name(current);
        }
        parts.push((Part::Files, text));
    }
    // Columns each part may grow to beyond its text (see `Widest`).
    let mut slack = [0; Part::COUNT];
    for (part, text) in &parts {
        if part.is_figure() {
            slack[*part as usize] = widest.note(*part, text) - columns(text);
        }
    }
    let measure = |parts: &[(Part, String)], line: &str| {
        columns(line) + parts.iter().map(|(p, _)| slack[*p as usize]).sum::<usize>()
    };
    let all = parts.len();
    while parts.len() > 1 && measure(&parts, &join(&parts, None)) > width {
        let least = parts.iter().map(|(p, _)| *p).min().expect("not empty");
        parts.retain(|(p, _)| *p != least);
    }
    let line = join(&parts, None);
    // The bar comes after every part: only when none was left out, in the room left.
    let line = match s.total_bytes {
        Some(total) if parts.len() == all => {
            // What an empty bar "[]" and the space around it cost.
            let cost = columns(&join(&parts, Some(bar(0, total, 0)))) - columns(&line);
            match width.checked_sub(measure(&parts, &line) + cost) {
                Some(room) if room >= BAR_MIN_INNER => {
                    join(&parts, Some(bar(s.bytes, total, room.min(BAR_MAX_INNER))))
                }
                _ => line,
            }
        }
        _ => line,
    };
    console::truncate_str(&line, width, "").into_owned()
}

/// The parts in screen order: label, the bar (if any), bytes, the rate with its average,
/// ETA, buf, path. Two spaces between figures, one within "label [bar]" and "rate (avg)".
fn join(parts: &[(Part, String)], bar: Option<String>) -> String {
    let get = |want: Part| parts.iter().find(|(p, _)| *p == want).map(|(_, text)| text.as_str());
    // Each piece with the gap before it (not used before the first).
    let mut pieces: Vec<(&str, &str)> = Vec::new();
    if let Some(label) = get(Part::Label) {
        pieces.push(("", label));
    }
    if let Some(bar) = &bar {
        pieces.push((" ", bar));
    }
    if let Some(bytes) = get(Part::Bytes) {
        pieces.push((if bar.is_some() { " " } else { "  " }, bytes));
    }
    for part in [Part::Rate, Part::Average, Part::Eta, Part::Buffer, Part::Path, Part::Files] {
        if let Some(text) = get(part) {
            pieces.push((if part == Part::Average { " " } else { "  " }, text));
        }
    }
    let mut out = String::new();
    for (i, (gap, text)) in pieces.into_iter().enumerate() {
        if i > 0 {
            out.push_str(gap);
        }
        out.push_str(text);
    }
    out
}

fn columns(text: &str) -> usize {
    console::measure_text_width(text)
}

/// `[=====>      ]` with `inner` columns inside the brackets.
fn bar(bytes: u64, total: u64, inner: usize) -> String {
    let done = if total == 0 || inner == 0 {
        inner
    } else {
        ((bytes.min(total) as u128 * inner as u128) / total as u128) as usize
    };
    let mut out = String::with_capacity(inner + 2);
    out.push('[');
    out.extend(std::iter::repeat_n('=', done));
    if done < inner {
        out.push('>');
        out.extend(std::iter::repeat_n(' ', inner - done - 1));
    }
    out.push(']');
    out
}

/// A size in the binary unit that suits its magnitude: `512 B`, `300 KiB`, `4 MiB`,
/// `4.1 MiB`, `1.5 GiB`. A whole number of the unit is shown without decimals (a threshold
/// of 4 MiB is `4 MiB`, so `buf 4.1 MiB/4 MiB` reads as 0.1 MiB over it, not as a rounding);
/// otherwise one decimal below 100 of the unit and none from 100 on.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    while unit + 1 < UNITS.len() && bytes >= 1u64 << (10 * (unit + 1)) {
        unit += 1;
    }
    let scale = 1u64 << (10 * unit);
    let value = bytes as f64 / scale as f64;
    let mut out = String::new();
    if bytes.is_multiple_of(scale) || value >= 100.0 {
        let _ = write!(out, "{:.0} {}", value, UNITS[unit]);
    } else {
        let _ = write!(out, "{:.1} {}", value, UNITS[unit]);
    }
    out
}

/// A rate in bytes/s as [`size`] shows sizes: `310 MiB/s`, `850 KiB/s`.
pub fn rate(bytes_per_s: f64) -> String {
    let bytes = if bytes_per_s.is_finite() && bytes_per_s > 0.0 { bytes_per_s as u64 } else { 0 };
    format!("{}/s", size(bytes))
}

/// Time left, rounded up: `9s`, `4m05s`, `2h03m`.
fn eta(seconds: f64) -> String {
    let s = if seconds.is_finite() && seconds > 0.0 { seconds.ceil() as u64 } else { 0 };
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
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

    const MIB: u64 = 1 << 20;

    #[test]
    fn sizes_pick_their_unit_and_whole_numbers_drop_the_decimal() {
        let cases = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1 KiB"),
            (256 << 10, "256 KiB"),
            (300 << 10, "300 KiB"),
            (307_300, "300 KiB"),
            (1536, "1.5 KiB"),
            (4 * MIB, "4 MiB"),
            (4 * MIB + 100 * 1024, "4.1 MiB"),
            (4 * MIB + 10, "4.0 MiB"),
            (12_900_000, "12.3 MiB"),
            (150 * MIB + 7, "150 MiB"),
            (3 << 30, "3 GiB"),
            ((3 << 30) + (512 << 20), "3.5 GiB"),
            (u64::MAX, "16777216 TiB"),
        ];
        for (bytes, want) in cases {
            assert_eq!(size(bytes), want, "{bytes} bytes");
        }
        assert_eq!(rate(310.4 * MIB as f64), "310 MiB/s");
        assert_eq!(rate(850.0 * 1024.0), "850 KiB/s");
        assert_eq!(rate(f64::NAN), "0 B/s");
        assert_eq!(rate(-1.0), "0 B/s");
    }

    /// The two readings the issue calls out: over the threshold is visibly over, and a
    /// 256 KiB threshold is shown as itself.
    #[test]
    fn buf_reads_as_what_it_is() {
        let buf = |b, t| format!("buf {}/{}", size(b), size(t));
        assert_eq!(buf(4 * MIB + 100 * 1024, 4 * MIB), "buf 4.1 MiB/4 MiB");
        assert_eq!(buf(300 << 10, 256 << 10), "buf 300 KiB/256 KiB");
    }

    #[test]
    fn eta_counts_minutes_and_hours() {
        assert_eq!(eta(0.2), "1s");
        assert_eq!(eta(59.0), "59s");
        assert_eq!(eta(245.0), "4m05s");
        assert_eq!(eta(7380.0), "2h03m");
        assert_eq!(eta(f64::INFINITY), "0s");
    }

    /// A sender's snapshot: 12.3 of 50 MiB at 310 MiB/s (290 on average), 4.1 MiB buffered
    /// against 4 MiB, relayed.
    fn sending() -> Snapshot {
        Snapshot {
            t: "progress",
            elapsed_s: 1.0,
            bytes: 12_900_000,
            total_bytes: Some(50 * MIB),
            rate_bps: 310.0 * MIB as f64,
            avg_bps: 290.0 * MIB as f64,
            eta_s: Some(8.2),
            buffered_bytes: 4 * MIB + 100 * 1024,
            threshold_bytes: 4 * MIB,
            peak_buffered_bytes: 0,
            path: Some(Path {
                local: CandidateKind::Host,
                remote: CandidateKind::Relay,
                protocol: Protocol::Udp,
                relayed: None,
            }),
            files: None,
        }
    }

    /// What the sender's view shows at common widths: the least important parts go first
    /// (the bar, the average, the path, the label, the bytes, the ETA), and `buf` with the
    /// rate stay; at 120 columns nothing is lost.
    #[test]
    fn the_sender_s_line_fits_each_width() {
        let s = sending();
        let cases = [
            (
                200,
                "payload.bin [=====>                  ] 12.3 MiB/50 MiB  310 MiB/s (avg 290 MiB/s)  \
                 ETA 9s  buf 4.1 MiB/4 MiB  host/relay",
            ),
            (
                120,
                "payload.bin [=====>                  ] 12.3 MiB/50 MiB  310 MiB/s (avg 290 MiB/s)  \
                 ETA 9s  buf 4.1 MiB/4 MiB  host/relay",
            ),
            (
                100,
                "payload.bin  12.3 MiB/50 MiB  310 MiB/s (avg 290 MiB/s)  ETA 9s  buf 4.1 MiB/4 MiB  \
                 host/relay",
            ),
            (80, "payload.bin  12.3 MiB/50 MiB  310 MiB/s  ETA 9s  buf 4.1 MiB/4 MiB  host/relay"),
            (60, "12.3 MiB/50 MiB  310 MiB/s  ETA 9s  buf 4.1 MiB/4 MiB"),
            (40, "310 MiB/s  ETA 9s  buf 4.1 MiB/4 MiB"),
            (20, "310 MiB/s"),
            (5, "310 M"),
        ];
        for (width, want) in cases {
            let line = frame("payload.bin", &s, true, width, &mut Widest::default());
            assert_eq!(line, want, "at {width} columns");
            assert!(columns(&line) <= width, "{} columns at {width}", columns(&line));
        }
    }

    #[test]
    fn the_receiver_s_line_fits_each_width() {
        let mut s = sending();
        s.path = None;
        let cases = [
            (
                120,
                "photo.jpg [=====>                  ] 12.3 MiB/50 MiB  310 MiB/s (avg 290 MiB/s)  ETA 9s",
            ),
            (
                80,
                "photo.jpg [====>            ] 12.3 MiB/50 MiB  310 MiB/s (avg 290 MiB/s)  ETA 9s",
            ),
            (60, "photo.jpg  12.3 MiB/50 MiB  310 MiB/s  ETA 9s"),
            (40, "12.3 MiB/50 MiB  310 MiB/s  ETA 9s"),
            (20, "310 MiB/s  ETA 9s"),
        ];
        for (width, want) in cases {
            assert_eq!(
                frame("photo.jpg", &s, false, width, &mut Widest::default()),
                want,
                "at {width} columns"
            );
        }
    }

    #[test]
    fn a_stream_has_no_bar_and_no_eta() {
        let mut s = sending();
        (s.total_bytes, s.eta_s, s.path) = (None, None, None);
        assert_eq!(
            frame("stdin", &s, true, 200, &mut Widest::default()),
            "stdin  12.3 MiB  310 MiB/s (avg 290 MiB/s)  buf 4.1 MiB/4 MiB"
        );
    }

    /// A long name is cut to [`LABEL_MAX_COLUMNS`]; wide characters count as two columns.
    #[test]
    fn a_long_or_wide_label_is_measured_in_columns() {
        let mut s = sending();
        s.path = None;
        let long = "a-very-long-file-name-that-goes-on-and-on.tar.gz";
        let line = frame(long, &s, false, 200, &mut Widest::default());
        assert!(line.starts_with("a-very-long-file-name-that-goes… ["), "{line}");
        for width in [40, 60, 80] {
            let line = frame(
                "写真の名前がとても長いファイル.jpg",
                &s,
                false,
                width,
                &mut Widest::default(),
            );
            assert!(columns(&line) <= width, "{line:?} at {width}");
        }
    }

    /// Figures that get narrower ("12.3 MiB" to "13 MiB", "ETA 1m05s" to "ETA 4s") keep
    /// their room in one view: the same parts show and the bar keeps its width.
    #[test]
    fn the_layout_holds_still_as_figures_get_narrower() {
        let mut widest = Widest::default();
        let mut s = sending();
        (s.path, s.eta_s) = (None, Some(65.0));
        let first = frame("photo.jpg", &s, false, 80, &mut widest);
        assert_eq!(
            first,
            "photo.jpg [===>          ] 12.3 MiB/50 MiB  310 MiB/s (avg 290 MiB/s)  ETA 1m05s"
        );
        (s.bytes, s.eta_s) = (13 * MIB, Some(4.0));
        let held = frame("photo.jpg", &s, false, 80, &mut widest);
        assert_eq!(
            held,
            "photo.jpg [===>          ] 13 MiB/50 MiB  310 MiB/s (avg 290 MiB/s)  ETA 4s"
        );
        let fresh = frame("photo.jpg", &s, false, 80, &mut Widest::default());
        assert_ne!(fresh, held, "without the memory the bar would grow");
    }

    #[test]
    fn the_bar_fills_with_the_bytes() {
        assert_eq!(bar(0, 100, 10), "[>         ]");
        assert_eq!(bar(50, 100, 10), "[=====>    ]");
        assert_eq!(bar(100, 100, 10), "[==========]");
        assert_eq!(bar(500, 100, 4), "[====]", "clamped");
        assert_eq!(bar(0, 0, 4), "[====]", "an empty file is complete");
    }

    #[test]
    fn a_transfer_of_several_files_shows_files_done_and_the_current_one() {
        use crate::progress::stats::{Files, Stats};
        let line =
            |snap: &Snapshot, buffer| frame("many", snap, buffer, 200, &mut Widest::default());
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
