//! `dcsend completions SHELL` and `dcsend man [DIR]`: generated from the clap definition,
//! so they cannot drift from it. The generated files are committed in `completions/` and
//! `man/`; `tests/generated.rs` fails when they are stale.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use roff::{Roff, bold, roman};

use crate::cli::{Cli, examples, exit_code_table, exit_codes, notes, units};

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "dcsend", &mut out);
    std::io::stdout().write_all(&out)?;
    Ok(())
}

/// Writes `dcsend.1` and `dcsend-SUBCOMMAND.1` into `dir`; lists them on stderr.
pub fn man(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let mut pages = vec![(None, root.clone())];
    for sub in root.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.push((Some(sub.get_name().to_owned()), sub.clone()));
    }
    for (name, cmd) in pages {
        let man = clap_mangen::Man::new(cmd.clone());
        let path = dir.join(man.get_filename());
        let mut page = Vec::new();
        render(&man, &cmd, name.as_deref(), &mut page)?;
        std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("{}", path.display());
    }
    Ok(())
}

/// clap_mangen's sections, then EXAMPLES, ENVIRONMENT, FILES and EXIT STATUS of our own
/// (instead of its catch-all EXTRA section).
fn render(
    man: &clap_mangen::Man,
    cmd: &clap::Command,
    name: Option<&str>,
    w: &mut dyn Write,
) -> std::io::Result<()> {
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(w)?;
    }
    let mut roff = Roff::default();
    if let Some(text) = examples(name) {
        roff.control("SH", ["EXAMPLES"]);
        preformatted(&mut roff, text.trim_start_matches("Examples:\n"));
    }
    if let Some(text) = notes(name) {
        roff.control("SH", ["NOTES"]);
        roff.text([roman(text)]);
    }
    if let Some(text) = units(name) {
        roff.control("SH", ["UNITS"]);
        roff.text([roman(text.trim_start_matches("Units:\n").replace("\n  ", " ").trim())]);
    }
    let env = environment(cmd);
    if !env.is_empty() {
        roff.control("SH", ["ENVIRONMENT"]);
        for (var, what) in env {
            roff.control("TP", []).text([bold(var)]).text([roman(what)]);
        }
    }
    if matches!(name, None | Some("send" | "recv")) {
        roff.control("SH", ["FILES"]);
        roff.text([roman(FILES)]);
    }
    if let Some(table) = exit_code_table(name) {
        roff.control("SH", ["EXIT STATUS"]);
        preformatted(&mut roff, exit_codes(table).trim_start_matches("Exit codes:\n"));
    }
    roff.control("SH", ["VERSION"]);
    roff.text([roman(format!("dcsend {}", crate::cli::version()))]);
    roff.to_writer(w)
}

const FILES: &str = "dcsend reads no configuration file: per-machine settings come from \
the environment (see ENVIRONMENT). recv writes each file as NAME.part next to its \
destination and renames it to NAME only once its size and SHA-256 match; a NAME.part left \
behind is an incomplete transfer. --sdp-out PATH is written atomically (a FIFO directly).";

/// Text kept as written (examples, tables).
fn preformatted(roff: &mut Roff, text: &str) {
    roff.control("nf", []);
    for line in text.lines() {
        roff.text([roman(line)]);
        roff.control("br", []);
    }
    roff.control("fi", []);
}

/// Every environment variable `cmd` reads, with the flag it stands for, plus those read
/// outside clap.
fn environment(cmd: &clap::Command) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = cmd
        .get_arguments()
        .filter_map(|a| {
            let var = a.get_env()?.to_string_lossy().into_owned();
            Some((var, format!("Default for --{}.", a.get_long()?)))
        })
        .collect();
    if cmd.get_arguments().any(|a| a.get_id() == "turn_password_file") {
        vars.push((
            "DCSEND_TURN_PASSWORD".into(),
            "TURN password, when --turn-password-file is not given.".into(),
        ));
    }
    vars.push(("RUST_LOG".into(), "Log filter (tracing's EnvFilter syntax); beats -v.".into()));
    vars.push(("NO_COLOR".into(), "dcsend never prints colour; honoured by construction.".into()));
    vars.push((
        "TERM".into(),
        "With TERM=dumb the live view stays off (as when stderr is not a terminal).".into(),
    ));
    vars
}
