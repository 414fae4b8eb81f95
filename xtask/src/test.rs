//! `cargo xtask test`: what CI runs. Formatting, lints with warnings as errors (clippy, in
//! the builds themselves), then every test of the workspace. Test runners print their own
//! summary line.

use crate::system::{cargo, ensure_packages, exec};

/// Debian packages the tests need: nasm for openh264's fast paths, Xvfb for capture,
/// Debian's Chromium for the browser end-to-end tests, and the bench's peers (ffmpeg,
/// x11vnc, noVNC) for its smoke run.
pub fn run(extra: &[String]) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let result = steps(extra);
    crate::system::print_times();
    println!(
        "xtask: cargo xtask test took {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    result
}

fn steps(extra: &[String]) -> anyhow::Result<()> {
    ensure_packages(crate::bench::PACKAGES)?;
    crate::system::ensure_openh264_assembly()?;
    // Pebble, the ACME test server the signaling server's ACME test orders from.
    ensure_packages(&["pebble"])?;
    // PostgreSQL, which the store's tests (signaling/tests/store.rs) and the restart and
    // two-server tests run as a real server of their own in a temporary directory; nginx,
    // the proxy in front of two servers with docs/self-hosting.md's configuration.
    ensure_packages(&["postgresql", "nginx"])?;
    // The network-namespace tests (tests/src/netns.rs): routers' rules, their traffic,
    // kill and sysctl, and an X client that checks the display from inside a namespace;
    // coturn, the external TURN server the NAT tests run beside the embedded one.
    ensure_packages(&["nftables", "socat", "procps", "x11-utils", "coturn"])?;
    // The agent's window: xdotool clicks it as a customer would, ImageMagick's `import`
    // photographs it for target/e2e-artifacts.
    // The libraries winit opens at run time on X11 are the window's only system needs.
    ensure_packages(&["xdotool", "imagemagick"])?;
    ensure_packages(crate::AGENT_WINDOW_LIBRARIES)?;
    // The Windows agent, cross-built, and the Wine its end-to-end tests run it under.
    crate::windows::ensure_toolchain()?;
    ensure_packages(crate::windows::WINE)?;
    exec(cargo().args(["fmt", "--all", "--check"]))?;
    // `cargo clippy --all-targets -- -D warnings`, for Linux, Windows and the macOS check:
    // every build below lints the workspace's crates as it compiles them.
    crate::system::lint_while_building()?;
    // The seam a macOS agent would plug into stays portable: the platform-neutral crates
    // type-check for macOS (no macOS backend exists yet).
    crate::windows::ensure_rust_target("aarch64-apple-darwin")?;
    exec(cargo().args([
        "check",
        "--target",
        "aarch64-apple-darwin",
        "--package",
        "tandem-protocol",
        "--package",
        "tandem-session",
        "--package",
        "tandem-capture",
        "--package",
        "tandem-input",
    ]))?;
    // The console's JavaScript against the protocol's golden fixtures.
    if !has_node() {
        ensure_packages(&["nodejs"])?;
    }
    exec(std::process::Command::new("node").args(["--test", "signaling/web/tests/"]))?;
    ensure_aiosmtpd()?;
    // Build every target once, the agent binary included: the end-to-end tests run it,
    // and building it inside a test would take minutes on this machine. Linted as it is
    // built (see above): this is `cargo clippy --workspace --all-targets`.
    exec(cargo().args(["build", "--workspace", "--all-targets"]))?;
    // The Windows agent and the Wine tests' window, linted as they are built too: the
    // code only Windows compiles (capture, input and the agent's Windows backends).
    exec(&mut crate::windows::cargo_for_windows(&[
        "build",
        "--package",
        "tandem-agent",
        "--package",
        "tandem-wine-window",
    ])?)?;
    if has_nextest() {
        exec(
            cargo()
                .args(["nextest", "run", "--workspace", "--no-fail-fast"])
                .env("TANDEM_TEST_PREBUILT", "1")
                .args(extra),
        )?;
    } else {
        println!("xtask: cargo-nextest not found; using cargo test");
        exec(
            cargo()
                .args(["test", "--workspace", "--no-fail-fast"])
                .env("TANDEM_TEST_PREBUILT", "1")
                .args(extra),
        )?;
    }
    // The server's .deb from this debug build: install, run as its user, log in, purge.
    crate::package_check::run()?;
    crate::bench::smoke()
}

/// The invitation tests run a real SMTP server: Python's aiosmtpd, from PyPI (or Debian).
fn ensure_aiosmtpd() -> anyhow::Result<()> {
    let importable = || {
        std::process::Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if importable() {
        return Ok(());
    }
    println!("xtask: installing aiosmtpd for the SMTP tests");
    let pip = exec(
        std::process::Command::new("python3").args(["-m", "pip", "install", "--quiet", "aiosmtpd"]),
    );
    if pip.is_err() || !importable() {
        ensure_packages(&["python3-aiosmtpd"])?;
    }
    if importable() {
        Ok(())
    } else {
        anyhow::bail!("python3 cannot import aiosmtpd even after installing it")
    }
}

fn has_node() -> bool {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}
