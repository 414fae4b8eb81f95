//! `cargo xtask bench`: Tandem's figures on this machine beside its peers in the same run,
//! written to target/bench/report.json and report.md and printed. Flags after `bench` go
//! to the bench (`--only stages|latency|idle|fanout|signaling|files|abuse|network|wine`,
//! `--smoke`).

use crate::system::{cargo, ensure_openh264_assembly, ensure_packages, exec, target_dir};

/// What the bench runs: the test stack, and the peers from Debian's packages.
pub const PACKAGES: &[&str] = &[
    "pkg-config",
    "nasm",
    // the agent window's font lookup (slint) links fontconfig
    "libfontconfig-dev",
    "xvfb",
    "chromium",
    "chromium-driver",
    "ffmpeg",
    "x11vnc",
    "novnc",
    "websockify",
    "iproute2",
];

pub fn run(args: &[String]) -> anyhow::Result<()> {
    ensure_packages(PACKAGES)?;
    ensure_openh264_assembly()?;
    ensure_packages(crate::windows::WINE)?;
    println!(
        "xtask: building the agent and the bench (release; the first build takes a few minutes)"
    );
    exec(cargo().args([
        "build",
        "--release",
        "--package",
        "tandem-agent",
        "--package",
        "tandem-tests",
        "--package",
        "tandem-signaling",
        "--bin",
        "tandem-bench",
        "--bin",
        "tandem-agent",
        "--bin",
        "tandem-signaling",
    ]))?;
    let target = target_dir();
    let mut bench = std::process::Command::new(target.join("release").join("tandem-bench"));
    bench
        .args(["--out", &target.join("bench").to_string_lossy()])
        .args(args)
        .env(
            "TANDEM_AGENT_BINARY",
            target.join("release").join("tandem-agent"),
        )
        // The sections that run the server as a process of its own (cluster, network).
        .env(
            "TANDEM_SERVER_BINARY",
            target.join("release").join("tandem-signaling"),
        );
    // The Windows agent's figures under Wine, from its release build too; without it the
    // report says why that section is missing.
    match crate::windows::release_agent() {
        Ok(exe) => {
            bench.env("TANDEM_WINDOWS_AGENT", exe);
        }
        Err(e) => println!("xtask: no Windows agent for the bench: {e:#}"),
    }
    exec(&mut bench)
}

/// The smoke run of `cargo xtask test`: every section for a few seconds, on the debug
/// build the tests just used, so the bench cannot rot. It never fails on a figure.
/// `sections`: more flags (`--only wine`, `--skip wine`); its report goes to
/// `target/<out>`.
pub fn smoke(sections: &[&str], out: &str) -> anyhow::Result<()> {
    let target = target_dir();
    let mut bench = std::process::Command::new(target.join("debug").join("tandem-bench"));
    bench
        .args(["--smoke", "--out", &target.join(out).to_string_lossy()])
        .args(sections)
        .env(
            "TANDEM_AGENT_BINARY",
            target.join("debug").join("tandem-agent"),
        )
        // The Windows agent and test window `cargo xtask test` built just before: without
        // this the Wine section rebuilt them in a cargo call of its own, for minutes.
        .env("TANDEM_TEST_PREBUILT", "1");
    exec(&mut bench)
}
