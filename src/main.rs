use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = dcsend::cli::Cli::parse_args(); // clap exits 2 on usage errors
    let (log_filter, json) = cli.log_settings();
    dcsend::logging::init(log_filter, json);
    match dcsend::cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // `dcsend completions bash | head`: the reader had what it wanted. (A receiver whose
        // stdout closes early is a failure, exit 141: see error::BROKEN_PIPE.)
        Err(e) if dcsend::error::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dcsend: {e:#}");
            if let Some(hint) = dcsend::error::hint(&e) {
                eprintln!("{hint}");
            }
            dcsend::error::exit_code(&e)
        }
    }
}
