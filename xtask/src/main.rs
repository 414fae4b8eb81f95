//! `cargo xtask <task>`: the project's own commands, so a fresh Debian machine with the
//! Rust toolchain needs nothing installed by hand.
//!
//! - `run`: install what is missing, build, start the server, print the console URL.
//! - `test`: formatting, lints and every test, as CI runs them.

mod system;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  run     build and start Tandem (the signaling server and web console)
  test    check formatting and lints, then run every test (what CI runs)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("run") => Err(anyhow::anyhow!(
            "the signaling server does not exist yet; `cargo xtask run` arrives with it \
             (issue 3). Until then, `cargo xtask test` is the one command that works."
        )),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(anyhow::anyhow!("unknown task {other:?}\n\n{USAGE}")),
        None => Err(anyhow::anyhow!("no task given\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
