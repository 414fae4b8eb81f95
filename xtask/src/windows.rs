//! The Windows agent, cross-built here for x86_64-pc-windows-gnu with mingw-w64, and the
//! Wine the tests run it under.
//!
//! The .exe is linked with a static C runtime and a static libstdc++ (openh264 is C++), so
//! it needs only DLLs every Windows has. The same settings are in
//! tests/src/wine.rs (`windows_build_env`), which builds it when a test runs on its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::system::{cargo, ensure_packages, exec, target_dir};

pub const TARGET: &str = "x86_64-pc-windows-gnu";
/// The cross compilers: C for the linker and openh264's C parts, C++ for the rest.
pub const PACKAGES: &[&str] = &["gcc-mingw-w64-x86-64", "g++-mingw-w64-x86-64"];
/// Wine for the end-to-end tests (64-bit only; no i386 architecture needed).
pub const WINE: &[&str] = &["wine", "wine64"];

/// The mingw compilers and the Rust standard library for the Windows target.
pub fn ensure_toolchain() -> anyhow::Result<()> {
    ensure_packages(PACKAGES)?;
    ensure_rust_target(TARGET)
}

/// The Rust standard library for `target`, added with rustup when missing.
pub fn ensure_rust_target(target: &str) -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .with_context(|| format!("rustup is needed to add the Rust target {target}"))?;
    if !String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|t| t.trim() == target)
    {
        println!("xtask: adding the Rust target {target}");
        exec(Command::new("rustup").args(["target", "add", target]))?;
    }
    Ok(())
}

/// `cargo <args>` for the Windows target, with the linker settings.
pub fn cargo_for_windows(args: &[&str]) -> anyhow::Result<Command> {
    let link_dir = target_dir().join("windows-link");
    let libstdcxx = ["12-win32", "12-posix", "12"]
        .iter()
        .map(|v| PathBuf::from(format!("/usr/lib/gcc/x86_64-w64-mingw32/{v}/libstdc++.a")))
        .find(|p| p.is_file())
        .context("mingw's libstdc++.a is missing (Debian package g++-mingw-w64-x86-64)")?;
    // A directory with libstdc++.a alone, so the linker cannot pick the DLL's import library.
    // Copied once (and replaced only by a rename): a running build may be linking with it.
    let copy = link_dir.join("libstdc++.a");
    let size = std::fs::metadata(&libstdcxx)?.len();
    if !std::fs::metadata(&copy).is_ok_and(|m| m.len() == size) {
        std::fs::create_dir_all(&link_dir)?;
        let partial = link_dir.join("libstdc++.a.partial");
        std::fs::copy(&libstdcxx, &partial)?;
        std::fs::rename(&partial, &copy)?;
    }
    // `--target` right after the subcommand: `args` may end with `-- <flags for rustc>`.
    let (subcommand, rest) = args.split_first().context("no cargo subcommand")?;
    let mut command = cargo();
    command
        .arg(subcommand)
        .args(["--target", TARGET])
        .args(rest)
        .env(
            "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER",
            "x86_64-w64-mingw32-gcc",
        )
        .env(
            "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUSTFLAGS",
            rustflags(&link_dir),
        );
    Ok(command)
}

fn rustflags(link_dir: &Path) -> String {
    format!(
        "-C target-feature=+crt-static -L native={}",
        link_dir.display()
    )
}

/// The release Windows agent, built now (with the toolchain it needs).
pub fn release_agent() -> anyhow::Result<PathBuf> {
    ensure_toolchain()?;
    exec(&mut cargo_for_windows(&[
        "build",
        "--release",
        "--package",
        "tandem-agent",
    ])?)?;
    Ok(out_dir("release").join("tandem-agent.exe"))
}

/// Where cargo puts the Windows build of `profile` ("debug", "release").
pub fn out_dir(profile: &str) -> PathBuf {
    target_dir().join(TARGET).join(profile)
}
