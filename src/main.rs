use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = dcsend::cli::Cli::parse(); // clap exits 2 on usage errors
    let verbose = match &cli.command {
        Some(dcsend::cli::Command::Recv(a)) => a.output.verbose,
        Some(dcsend::cli::Command::Send(a)) => a.output.verbose,
        None => cli.send.output.verbose,
    };
    dcsend::logging::init(verbose);
    match dcsend::cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
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
