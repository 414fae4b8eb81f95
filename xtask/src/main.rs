//! `cargo xtask <task>`: the project's own commands, so a fresh Debian machine with the
//! Rust toolchain needs nothing installed by hand.
//!
//! - `run`: install what is missing, build (the Windows agent too), start the server, print
//!   the console URL.
//! - `test`: formatting, lints and every test, as CI runs them.
//! - `bench`: the figures, beside the peers', in target/bench/report.{json,md}.
//! - `package`: the Debian packages (server with its systemd unit, agent), in target/debian.

mod bench;
mod deb;
mod junit;
mod package;
mod package_check;
mod run;
mod system;
mod test;
mod windows;

use std::process::ExitCode;

/// What the agent's window (winit on X11) opens at run time: Xlib, the cursor, RandR and
/// XInput libraries, and xkbcommon's X11 keymap. The .deb declares them too.
pub const AGENT_WINDOW_LIBRARIES: &[&str] = &[
    "libx11-6",
    "libx11-xcb1",
    "libxcursor1",
    "libxrandr2",
    "libxi6",
    "libxkbcommon-x11-0",
    "libfontconfig1",
];

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  run     build and start Tandem (the signaling server and web console);
          flags after it go to the server: --bind, --port, --data-dir, --reset-admin-password
  test    check formatting and lints, then run every test (what CI runs)
  bench   measure latency, cost, fan-out and signaling beside ffmpeg and x11vnc;
          writes target/bench/report.json and report.md
  package build the .deb packages tandem-signaling (server, systemd unit) and tandem-agent
          (release) into target/debian; --check installs the server package on this
          machine, runs it as its service user, logs in and purges it (part of test)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Every task works from the workspace root, wherever cargo was started.
    if let Err(e) = std::env::set_current_dir(system::root()) {
        eprintln!("xtask: error: cannot enter the workspace root: {e}");
        return ExitCode::FAILURE;
    }
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("run") => run::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("package") => package::run(&args[1..]),
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
