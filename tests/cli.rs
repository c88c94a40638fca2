//! The command line as a user meets it: usage errors and bad tokens exit 2 with a message
//! that names the problem, and nothing is sent.

mod common;

use base64::Engine;
use common::*;

const SDP_WITH_CHANNEL: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\n";

fn token(kind: &str, sdp: &str) -> String {
    let json = serde_json::json!({ "type": kind, "sdp": sdp }).to_string();
    base64::engine::general_purpose::STANDARD.encode(json)
}

/// Runs `dcsend recv` on a bad offer token; asserts exit 2, the message, and no answer.
fn recv_rejects(bad: &str, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let t = Tokens::in_dir(dir.path());
    std::fs::write(&t.offer, bad).unwrap();
    let mut cmd = receiver(&t);
    cmd.args(["--connect-timeout", "5s"]);
    let mut p = Proc::spawn("recv", cmd, dir.path());
    p.expect_code(2, WAIT);
    let err = p.stderr_text();
    assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line expected:\n{err}");
    assert!(!t.answer.exists(), "an answer was written for a bad offer");
}

#[test]
fn bad_token_not_base64() {
    recv_rejects("!!! this is not a token !!!\n", "not base64");
}

#[test]
fn bad_token_not_json() {
    let b64 = base64::engine::general_purpose::STANDARD.encode("hello, world");
    recv_rejects(&b64, "JSON");
}

#[test]
fn bad_token_answer_where_offer_expected() {
    recv_rejects(&token("answer", SDP_WITH_CHANNEL), "expected an offer, got an answer");
}

#[test]
fn bad_token_sdp_without_data_channel() {
    let sdp =
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
    recv_rejects(&token("offer", sdp), "no data channel");
}

#[test]
fn bad_token_json_without_sdp() {
    let b64 = base64::engine::general_purpose::STANDARD.encode(r#"{"type":"offer"}"#);
    recv_rejects(&b64, "no sdp");
}

#[test]
fn sender_rejects_an_offer_where_an_answer_is_expected() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f.bin");
    std::fs::write(&src, b"payload").unwrap();
    let t = Tokens::in_dir(dir.path());
    std::fs::write(&t.answer, token("offer", SDP_WITH_CHANNEL)).unwrap();
    let mut p = Proc::spawn("send", sender(&[&src], &t), dir.path());
    p.expect_code(2, WAIT);
    assert!(p.stderr_text().contains("expected an answer, got an offer"), "{}", p.stderr_text());
}

#[test]
fn usage_errors_exit_2_and_name_the_flag() {
    let out = dcsend().args(["--chunk-size", "lots"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--chunk-size"));
    let out = dcsend().args(["-", "-"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only once"));
}

#[test]
fn sdp_in_file_that_never_appears_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tokens::in_dir(dir.path());
    let mut cmd = receiver(&t);
    cmd.args(["--connect-timeout", "1s"]);
    let mut p = Proc::spawn("recv", cmd, dir.path());
    p.expect_code(3, WAIT);
    assert!(p.stderr_text().contains("timed out"), "{}", p.stderr_text());
}

#[test]
fn help_teaches_examples_and_exit_codes() {
    let out = dcsend().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in ["Examples:", "dcsend recv -o downloads/", "Exit codes:", "130", "--threshold"] {
        assert!(help.contains(needle), "--help lacks {needle:?}");
    }
    let version = dcsend().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).contains("webrtc"));
}

/// The README's exit-code table lists exactly the codes of `error::EXIT_CODES` (the table
/// `--help` and the man pages are made from), in the same order.
#[test]
fn the_readme_lists_every_exit_code_and_no_other() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = readme.split("### Exit codes").nth(1).expect("README has an Exit codes section");
    let codes: Vec<u8> = table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.trim_start_matches('|').split('|').next()?.trim().parse().ok())
        .collect();
    let want: Vec<u8> = dcsend::error::EXIT_CODES.iter().map(|(code, _)| *code).collect();
    assert_eq!(codes, want, "README's exit codes differ from error::EXIT_CODES");
}

/// Every `--help` and `-h` screen at 80 and 120 columns (clap takes the width from `COLUMNS`
/// when no standard stream is a terminal, as here): no line wider than the screen, every
/// example and exit-code line printed whole (never split into something that looks like a
/// command), no paragraph broken except where clap wrapped it, and no word alone on a line in
/// the middle of a paragraph.
#[test]
fn help_fits_80_and_120_columns() {
    let subcommands = [None, Some("send"), Some("recv"), Some("bench"), Some("signal")];
    let subcommands = subcommands.into_iter().chain([Some("completions"), Some("man")]);
    let mut complaints = Vec::new();
    for sub in subcommands {
        for flag in ["--help", "-h"] {
            for width in [80, 120] {
                let mut cmd = dcsend();
                cmd.env("COLUMNS", width.to_string()).args(sub).arg(flag);
                let out = cmd.output().unwrap();
                assert!(out.status.success(), "{cmd:?}: {out:?}");
                let help = String::from_utf8(out.stdout).unwrap();
                let what = format!("dcsend {} {flag} at {width} columns", sub.unwrap_or(""));
                let whole = if flag == "--help" { verbatim_lines(sub) } else { Vec::new() };
                complaints.extend(
                    help_complaints(&help, width, &whole)
                        .into_iter()
                        .map(|c| format!("{what}: {c}")),
                );
            }
        }
    }
    assert!(complaints.is_empty(), "{}", complaints.join("\n"));
}

/// `bench --help` lists the exit codes a sweep can end with, not those of a transfer to a
/// remote peer or a receiver's stdout (141).
#[test]
fn bench_help_lists_only_the_exit_codes_of_bench() {
    let out = dcsend().args(["bench", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let table = help.split("Exit codes:\n").nth(1).expect("bench --help has exit codes");
    let codes: Vec<u8> =
        table.lines().filter_map(|l| l.split_whitespace().next()?.parse().ok()).collect();
    let want: Vec<u8> = dcsend::error::BENCH_EXIT_CODES.iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, want, "{table}");
    assert!(!codes.contains(&141), "{table}");
}

/// The lines a subcommand's `--help` must print as written: its examples, units and exit
/// codes.
fn verbatim_lines(sub: Option<&str>) -> Vec<String> {
    let examples = dcsend::cli::examples(sub).unwrap_or_default();
    let units = dcsend::cli::units(sub).unwrap_or_default();
    let exits = dcsend::cli::exit_code_table(sub).map(dcsend::cli::exit_codes).unwrap_or_default();
    [examples, units, &exits].iter().flat_map(|t| t.lines()).map(str::to_owned).collect()
}

/// What is wrong with `help` as printed at `width` columns, given the lines it must print
/// whole.
fn help_complaints(help: &str, width: usize, whole: &[String]) -> Vec<String> {
    let lines: Vec<&str> = help.lines().collect();
    let mut complaints = Vec::new();
    for line in &lines {
        if line.chars().count() > width {
            complaints.push(format!("{} columns: {line:?}", line.chars().count()));
        }
    }
    for want in whole {
        if !lines.contains(&want.as_str()) {
            complaints.push(format!("not printed whole: {want:?}"));
        }
    }
    // Prose: what follows the options (examples, notes, units), apart from the lines kept
    // whole. A break clap did not make is one where the next line's first word would have
    // fitted; a sentence (or a heading) may end a line anywhere.
    let after = lines.iter().position(|l| *l == "Examples:").unwrap_or(lines.len());
    let is_prose = |l: &str| !l.trim().is_empty() && !whole.iter().any(|w| w == l);
    for pair in lines[after..].windows(2) {
        let (this, next) = (pair[0], pair[1]);
        if !is_prose(this) || !is_prose(next) || this.ends_with(['.', ':']) {
            continue;
        }
        let indent = |l: &str| l.len() - l.trim_start().len();
        let first_word = next.split_whitespace().next().unwrap_or_default();
        if indent(this) == indent(next) && this.chars().count() + 1 + first_word.len() <= width {
            complaints.push(format!("a paragraph broken by hand: {this:?} / {next:?}"));
        }
    }
    // An orphan: one word on a line between two lines of the same paragraph (not an option,
    // an argument or the last word of a sentence).
    for triple in lines.windows(3) {
        let [before, this, after] = [triple[0], triple[1], triple[2]];
        let alone = this.split_whitespace().count() == 1
            && !this.trim().starts_with(['-', '[', '<'])
            && !this.ends_with('.');
        if alone && !before.trim().is_empty() && !before.ends_with(':') && !after.trim().is_empty()
        {
            complaints.push(format!("a word alone: {before:?} / {this:?} / {after:?}"));
        }
    }
    complaints
}

/// A folder that cannot be made (its parent is a file) is bad input: exit 2, the reason, and
/// nothing else happens.
#[test]
fn an_output_folder_that_cannot_be_made_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("afile"), b"x").unwrap();
    let t = Tokens::in_dir(dir.path());
    let mut cmd = receiver(&t);
    cmd.arg("-o").arg(format!("{}/afile/sub/", dir.path().display()));
    let mut p = Proc::spawn("recv", cmd, dir.path());
    p.expect_code(2, WAIT);
    let err = p.stderr_text();
    assert!(err.contains("cannot create the folder"), "{err}");
    assert!(!t.answer.exists(), "an answer was written");
}

/// A lone FILE that is not a file but reads like a subcommand gets the suggestion (exit 2),
/// not "opening the input: No such file" (exit 1); a plain missing file keeps that.
#[test]
fn a_misspelt_subcommand_is_suggested() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = dcsend();
    cmd.arg("recieve");
    let mut p = Proc::spawn("typo", cmd, dir.path());
    p.expect_code(2, WAIT);
    let err = p.stderr_text();
    assert!(err.contains("did you mean `dcsend recv`"), "{err}");
    let mut cmd = dcsend();
    cmd.arg(dir.path().join("holiday-photos.tar"));
    let mut p = Proc::spawn("missing", cmd, dir.path());
    p.expect_code(1, WAIT);
    assert!(!p.stderr_text().contains("did you mean"), "{}", p.stderr_text());
}
