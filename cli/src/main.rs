//! `ec2-backup`: the command-line tool for the people on call. It parses the command line and
//! hands over to `commands`; see `ec2-backup --help`.

mod cli;
mod commands;
mod output;

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match commands::run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ec2-backup: {e}");
            ExitCode::from(2)
        }
    }
}
