//! `cargo xtask package`: the Debian packages, assembled by `deb.rs` with Debian's own
//! tools (dpkg-deb, dpkg-shlibdeps).
//!
//! - `tandem-signaling`: the server, its systemd unit, `/etc/tandem/tandem.toml`, the
//!   `tandem` system user and `/var/lib/tandem` (signaling/debian/), and the agent that
//!   customers download from the server.
//! - `tandem-agent`: the Linux agent in /usr/bin.

use std::path::{Path, PathBuf};

use crate::deb;
use crate::system::{cargo, ensure_packages, exec, target_dir};

/// What building the packages needs beyond the Rust toolchain: openh264's assembler,
/// `strip` for the binaries, dpkg-deb and dpkg-shlibdeps.
pub const PACKAGES: &[&str] = &[
    "pkg-config",
    "nasm",
    "libfontconfig-dev",
    "binutils",
    "dpkg",
    "dpkg-dev",
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
    fn dir(self) -> PathBuf {
        target_dir().join(match self {
            Profile::Release => "release",
            Profile::Dev => "debug",
        })
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
    println!(
        "xtask: building the server and the agent (release; the first build takes a few minutes)"
    );
    // One build for both packages: separate builds of each package could unify
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
    for spec in [&deb::SERVER, &deb::AGENT] {
        built.push(deb::build(spec, &Profile::Release.dir(), &out, false)?);
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
    deb::build(&deb::SERVER, &profile.dir(), out, true)
}
