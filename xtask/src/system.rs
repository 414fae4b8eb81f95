//! System packages and commands: what the tasks need from Debian, installed on demand.

use std::process::Command;

use anyhow::{Context, bail};

/// Install the Debian packages that are not installed yet, with apt-get.
pub fn ensure_packages(packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !is_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("xtask: installing Debian packages: {}", missing.join(" "));
    let sudo = !is_root();
    let apt = |args: &[&str]| -> anyhow::Result<()> {
        let mut cmd = if sudo {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        } else {
            Command::new("apt-get")
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        exec(&mut cmd)
    };
    apt(&["update", "-qq"]).context("apt-get update failed")?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&missing);
    apt(&install).with_context(|| {
        format!(
            "could not install {}; install them by hand with `sudo apt-get install {}`",
            missing.join(" "),
            missing.join(" ")
        )
    })
}

fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// A command run as root: directly when xtask is root (as in CI), else through sudo.
pub fn as_root(program: &str) -> Command {
    if is_root() {
        Command::new(program)
    } else {
        let mut cmd = Command::new("sudo");
        cmd.arg(program);
        cmd
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Run a command, echoing it, and fail with its exit status.
pub fn exec(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}").replace('"', "");
    println!("xtask: $ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

/// `cargo`, as the one that started xtask.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // A CI run builds once from a clean clone: incremental state would only fill its disk.
    if std::env::var_os("CI").is_some_and(|ci| !ci.is_empty() && ci != "false") {
        command.env("CARGO_INCREMENTAL", "0");
    }
    command
}

/// The workspace root (xtask's parent folder).
pub fn root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}
