//! `cargo xtask run`: build the server in release mode and start it with embedded SQLite.
//! Flags after `run` go to the server (`--bind`, `--port`, `--data-dir`, …).

use crate::system::{cargo, ensure_packages, exec, root};

/// What building the server needs beyond the Rust toolchain.
// libfontconfig-dev: the agent window's font lookup (slint) links fontconfig.
const PACKAGES: &[&str] = &["pkg-config", "nasm", "libfontconfig-dev"];

pub fn run(server_args: &[String]) -> anyhow::Result<()> {
    ensure_packages(PACKAGES)?;
    crate::system::ensure_openh264_assembly()?;
    println!(
        "xtask: building the server and the agent (release; the first build takes a few minutes)"
    );
    exec(cargo().args([
        "build",
        "--release",
        "--package",
        "tandem-signaling",
        "--package",
        "tandem-agent",
    ]))?;
    let root = root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let binary = target.join("release").join("tandem-signaling");
    let mut server = std::process::Command::new(&binary);
    server.args(server_args);
    // Most customers are on Windows: their agent too, unless it cannot be built here (the
    // server then says on the join page that the Windows download is not set up).
    if !server_args
        .iter()
        .any(|a| a.starts_with("--agent-binary-windows"))
    {
        println!(
            "xtask: building the Windows agent (release; the first build takes a few minutes)"
        );
        match crate::windows::release_agent() {
            Ok(exe) => {
                server.arg("--agent-binary-windows").arg(exe);
            }
            Err(e) => println!(
                "xtask: the Windows agent could not be built, so only the Linux agent is offered: {e:#}"
            ),
        }
    }
    if !server_args.iter().any(|a| a.starts_with("--data-dir")) {
        server.arg("--data-dir").arg(root.join("data"));
    }
    // The server prints the console URL and, on first start, the admin login.
    exec(&mut server)
}
