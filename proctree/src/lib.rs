//! proctree: being built (issue tracker); this library exposes `command()` and `run()`.

use clap::{CommandFactory, Parser};
use common::Status;
use common::error::Result;

/// The name messages start with.
pub const TOOL: &str = "proctree";

/// proctree (under construction).
#[derive(Debug, Parser)]
#[command(name = "proctree", version, about)]
pub struct Cli {}

/// The clap definition, for man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

pub fn run(_cli: &Cli) -> Result<Status> {
    Ok(Status::default())
}
