//! `cargo xtask package`: the Debian packages, built by cargo-deb from the
//! `[package.metadata.deb]` tables of `signaling/Cargo.toml` and `agent/Cargo.toml`.
//!
//! - `tandem-signaling`: the server, its systemd unit, `/etc/tandem/tandem.toml`, the
//!   `tandem` system user and `/var/lib/tandem` (signaling/debian/), and the agent that
//!   customers download from the server.
//! - `tandem-agent`: the Linux agent in /usr/bin.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::system::{cargo, ensure_packages, exec};

/// cargo-deb's minor line: 3.8 builds from the dev profile with a warning that a later
/// release will refuse, and the CI package check depends on that (see `server_deb`).
const CARGO_DEB_VERSION: &str = "~3.8";

/// What building the packages needs beyond the Rust toolchain: openh264's assembler,
/// `strip` for the binaries, and dpkg, which cargo-deb asks for the libraries' packages.
pub const PACKAGES: &[&str] = &[
    "pkg-config",
    "nasm",
    "libfontconfig-dev",
    "binutils",
    "dpkg",
];

/// Which build the packages are made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// For people: optimised binaries.
    Release,
    /// For the package check in CI: the debug build `cargo xtask test` made anyway
    /// (dependencies at opt-level 2), so CI does not build the agent's WebRTC stack twice.
    Dev,
}

impl Profile {
    fn cargo_name(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Dev => "dev",
        }
    }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        None => build_release(),
        Some("--check") => {
            // The check packages the debug build: make sure it is there and current, with
            // the same command as `cargo xtask test` so nothing is rebuilt after a test run.
            ensure_packages(PACKAGES)?;
            exec(cargo().args(["build", "--workspace", "--all-targets"]))?;
            crate::package_check::run()
        }
        Some(other) => anyhow::bail!(
            "unknown argument {other:?} for package: without one it builds the release \
             packages; --check installs the server package here, tries it, and removes it"
        ),
    }
}

fn build_release() -> anyhow::Result<()> {
    ensure_packages(PACKAGES)?;
    crate::system::ensure_openh264_assembly()?;
    ensure_cargo_deb()?;
    println!(
        "xtask: building the server and the agent (release; the first build takes a few minutes)"
    );
    // One build for both packages: separate cargo-deb builds of each package could unify
    // dependency features differently and compile the shared dependencies twice.
    exec(cargo().args([
        "build",
        "--release",
        "--package",
        "tandem-signaling",
        "--package",
        "tandem-agent",
    ]))?;
    let out = target_dir().join("debian");
    let mut built = Vec::new();
    for package in ["tandem-signaling", "tandem-agent"] {
        built.push(cargo_deb(package, Profile::Release, &out, false)?);
    }
    println!();
    for deb in &built {
        println!("  {}", deb.display());
    }
    println!();
    println!("  Install on Debian 12 or later: sudo apt install ./<file>.deb");
    println!("  See docs/self-hosting.md, \"Install from the .deb\".");
    Ok(())
}

/// The server package from the given profile, written to `out`; returns its path.
/// Nothing is built: the binaries of that profile must exist.
pub fn server_deb(profile: Profile, out: &Path) -> anyhow::Result<PathBuf> {
    ensure_packages(PACKAGES)?;
    ensure_cargo_deb()?;
    cargo_deb("tandem-signaling", profile, out, true)
}

/// Run cargo-deb on built binaries; it prints the path of the package it wrote.
fn cargo_deb(package: &str, profile: Profile, out: &Path, fast: bool) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("could not create {}", out.display()))?;
    let mut cmd = cargo();
    cmd.args(["deb", "--no-build", "--package", package, "--profile"])
        .arg(profile.cargo_name())
        .arg("--output")
        .arg(out);
    if fast {
        cmd.arg("--fast");
    }
    let shown = format!("{cmd:?}").replace('"', "");
    println!("xtask: $ {shown}");
    let output = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("could not start {shown}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    anyhow::ensure!(
        output.status.success(),
        "{shown} failed ({})",
        output.status
    );
    let path = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| line.ends_with(".deb"))
        .with_context(|| format!("{shown} did not say where it wrote the package"))?;
    Ok(PathBuf::from(path))
}

/// Install cargo-deb from crates.io when it is missing, as apt packages are.
fn ensure_cargo_deb() -> anyhow::Result<()> {
    let Some(mut install) = cargo_deb_install() else {
        return Ok(());
    };
    println!("xtask: installing cargo-deb {CARGO_DEB_VERSION} from crates.io (about two minutes)");
    exec(&mut install).context(CARGO_DEB_BY_HAND)
}

/// What to do when installing cargo-deb failed.
pub const CARGO_DEB_BY_HAND: &str =
    "could not install cargo-deb; install it by hand with `cargo install cargo-deb --locked`";

/// The command that installs cargo-deb, when it is missing.
pub fn cargo_deb_install() -> Option<Command> {
    let present = cargo()
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return None;
    }
    let mut install = cargo();
    // cargo-deb is not ours to lint: a run's clippy driver (`lint_while_building`) would
    // lint it as the workspace it builds, with warnings as errors.
    install
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS");
    install.args([
        "install",
        "cargo-deb",
        "--locked",
        "--version",
        CARGO_DEB_VERSION,
    ]);
    Some(install)
}

/// Cargo's target directory, as cargo-deb and `cargo xtask run` find it.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::system::root().join("target"))
}
