//! `keyferry`: the binary is a thin shell over the library's CLI.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    keyferry::cli::Cli::parse().run()
}
