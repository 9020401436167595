//! `ec2-backup`: the command-line tool for the people on call. `main` only wires: the command
//! line (`cli`, with its value parsers in `values`), one module per subcommand (`commands`), the
//! typed error (`error`) and the output helpers (`output`); see `ec2-backup --help`.

mod cli;
mod commands;
mod error;
mod output;
mod values;

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match commands::run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ec2-backup: {e}");
            if e.code()
                .is_some_and(|c| shared::codes::NOT_ALLOWED.contains(&c))
            {
                eprintln!(
                    "ec2-backup: these credentials may not do this; the EC2 actions the tool needs are listed in the README"
                );
            }
            ExitCode::from(2)
        }
    }
}
