//! System packages and commands: what the tasks need from Debian, installed on demand.

use std::process::Command;

use anyhow::{Context, bail};

/// Install the Debian packages that are not installed yet, with apt-get.
pub fn ensure_packages(packages: &[&str]) -> anyhow::Result<()> {
    let missing = missing(packages);
    if missing.is_empty() {
        return Ok(());
    }
    println!("xtask: installing Debian packages: {}", missing.join(" "));
    apt_update_once()?;
    exec(&mut install(&missing)).with_context(|| by_hand(&missing))
}

/// Start installing the packages that are not installed yet, in the background (apt-get
/// downloads and unpacks while cargo compiles); `None` when nothing is missing.
/// [`Background::wait`] before anything uses them, or runs apt-get again.
pub fn install_packages_in_background(
    packages: &[&str],
    log: &std::path::Path,
) -> anyhow::Result<Option<Background>> {
    let missing = missing(packages);
    if missing.is_empty() {
        return Ok(None);
    }
    println!(
        "xtask: installing Debian packages in the background: {}",
        missing.join(" ")
    );
    apt_update_once()?;
    spawn(&install(&missing), log, Priority::Normal).map(Some)
}

fn missing<'a>(packages: &[&'a str]) -> Vec<&'a str> {
    let mut missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !is_installed(p))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    missing
}

fn by_hand(missing: &[&str]) -> String {
    format!(
        "could not install {}; install them by hand with `sudo apt-get install {}`",
        missing.join(" "),
        missing.join(" ")
    )
}

/// `apt-get update`, once per run: each asks every mirror again (seconds on CI's network).
fn apt_update_once() -> anyhow::Result<()> {
    static UPDATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if UPDATED.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    if is_ci() {
        // A machine used once: man-db need not index every new manual page (seconds per
        // transaction). Debian's own way to say so; without it apt only takes longer.
        let _ = as_root("sh")
            .args([
                "-c",
                "echo 'man-db man-db/auto-update boolean false' | debconf-set-selections",
            ])
            .status();
    }
    exec(&mut apt_get(&["update", "-qq"])).context("apt-get update failed")?;
    UPDATED.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

fn install(missing: &[&str]) -> Command {
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(missing);
    apt_get(&args)
}

/// apt-get, through sudo unless xtask is root, never asking questions (sudo would drop
/// the environment variable that says so: `env` sets it on the far side).
fn apt_get(args: &[&str]) -> Command {
    let mut cmd = as_root("env");
    cmd.args(["DEBIAN_FRONTEND=noninteractive", "apt-get"]);
    if is_ci() {
        // A machine used once: dpkg need not sync every file it unpacks to disk.
        cmd.args(["-o", "Dpkg::Options::=--force-unsafe-io"]);
    }
    cmd.args(args);
    cmd
}

/// Whether this is a CI run (`CI` set, and not to "false").
pub fn is_ci() -> bool {
    std::env::var_os("CI").is_some_and(|ci| !ci.is_empty() && ci != "false")
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
    let started = std::time::Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    let took = started.elapsed();
    println!("xtask: {:.0} s: {shown}", took.as_secs_f64());
    TIMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((shown.clone(), took));
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

/// A command running in the background, its output going to a log shown when it fails.
/// At [`Priority::Idle`] (`SCHED_IDLE`) it gets only the CPU the foreground leaves, so it
/// can share the machine with tests that measure time. Dropped without [`Self::wait`] (an
/// earlier step failed), it is still waited for: nothing is left running after xtask,
/// least of all an apt-get holding dpkg's lock.
#[derive(Debug)]
pub struct Background {
    child: Option<std::process::Child>,
    shown: String,
    log: std::path::PathBuf,
    started: std::time::Instant,
}

/// How a [`Background`] command shares the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// `SCHED_IDLE`: only what the foreground leaves.
    Idle,
    /// As the foreground (apt-get, which mostly waits on the network and the disk).
    Normal,
}

/// Start `cmd` as a [`Background`] command writing to `log`.
pub fn spawn(
    cmd: &Command,
    log: &std::path::Path,
    priority: Priority,
) -> anyhow::Result<Background> {
    let shown = format!("{cmd:?}").replace('"', "");
    // chrt (util-linux, in every Debian) sets the policy, which the command's children
    // (cargo's rustc and cc processes) inherit.
    let mut idle = Command::new("chrt");
    match priority {
        Priority::Idle => idle.args(["--idle", "0"]),
        Priority::Normal => idle.args(["--other", "0"]),
    };
    idle.arg(cmd.get_program()).args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => idle.env(key, value),
            None => idle.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        idle.current_dir(dir);
    }
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    // Nothing can answer a question in the background: a prompt fails instead of waiting.
    idle.stdin(std::process::Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    println!(
        "xtask: in the background ({priority:?} priority, output in {}): {shown}",
        log.display()
    );
    let child = idle
        .spawn()
        .with_context(|| format!("could not start {shown}"))?;
    Ok(Background {
        child: Some(child),
        shown,
        log: log.to_path_buf(),
        started: std::time::Instant::now(),
    })
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            println!(
                "xtask: waiting for {} (in the background) to end before stopping",
                self.shown
            );
            let _ = child.wait();
        }
    }
}

impl Background {
    /// Wait for the command; its time goes to the list `print_times` prints. On failure its
    /// whole output is printed.
    pub fn wait(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = child.wait()?;
        let took = self.started.elapsed();
        let (shown, log) = (
            std::mem::take(&mut self.shown),
            std::mem::take(&mut self.log),
        );
        println!(
            "xtask: {:.0} s (in the background): {shown}",
            took.as_secs_f64()
        );
        TIMES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((format!("(background) {shown}"), took));
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        if !status.success() {
            println!("{output}");
            bail!(
                "{shown} failed ({status}); its output is above and in {}",
                log.display()
            );
        }
        // Warnings and the summary; not the list of crates compiled.
        for line in output
            .lines()
            .filter(|l| !l.trim_start().starts_with("Compiling "))
        {
            println!("{line}");
        }
        Ok(())
    }
}

/// Every command `exec` ran, with how long it took.
static TIMES: std::sync::Mutex<Vec<(String, std::time::Duration)>> =
    std::sync::Mutex::new(Vec::new());

/// Where the time went: each command `exec` ran, longest first, each cut to one line.
pub fn print_times() {
    let mut times = TIMES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    times.sort_by_key(|t| std::cmp::Reverse(t.1));
    let total: f64 = times.iter().map(|(_, d)| d.as_secs_f64()).sum();
    println!("xtask: where the {total:.0} s of commands went:");
    for (command, took) in times {
        let short: String = command.chars().take(110).collect();
        println!("xtask: {:>6.0} s  {short}", took.as_secs_f64());
    }
}

/// openh264's build script quietly leaves its assembly (the SIMD paths) out when nasm is
/// missing, and cargo keeps that build: a tree first built before nasm was installed
/// encodes with plain C from then on, several times slower. Once nasm is installed, such
/// builds are cleaned here so the next build has the assembly.
pub fn ensure_openh264_assembly() -> anyhow::Result<()> {
    // Only builds made before nasm was installed: one that failed with nasm present
    // (too old a nasm, say) would fail again, and be cleaned at every run.
    let Ok(installed) =
        std::fs::metadata("/var/lib/dpkg/info/nasm.list").and_then(|m| m.modified())
    else {
        return Ok(());
    };
    let target = target_dir();
    let windows = crate::windows::TARGET;
    let builds: [(std::path::PathBuf, Vec<&str>); 4] = [
        (target.join("debug"), vec![]),
        (target.join("release"), vec!["--release"]),
        (
            target.join(windows).join("debug"),
            vec!["--target", windows],
        ),
        (
            target.join(windows).join("release"),
            vec!["--target", windows, "--release"],
        ),
    ];
    for (dir, args) in builds {
        let Ok(entries) = std::fs::read_dir(dir.join("build")) else {
            continue;
        };
        let without = entries.flatten().any(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("openh264-sys2-")
                && std::fs::read_to_string(entry.path().join("output"))
                    .is_ok_and(|output| output.contains("Failed to compile NASM files"))
                && std::fs::metadata(entry.path().join("output"))
                    .and_then(|m| m.modified())
                    .is_ok_and(|built| built < installed)
        });
        if without {
            println!(
                "xtask: openh264 in {} was built without its assembly (nasm was missing \
                 then); cleaning it so it is built again with it",
                dir.display()
            );
            exec(
                cargo()
                    .args(["clean", "--package", "openh264-sys2"])
                    .args(&args),
            )?;
        }
    }
    Ok(())
}

/// Where cargo builds: `CARGO_TARGET_DIR`, or `target/` in the workspace.
pub fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// `cargo`, as the one that started xtask.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // A CI run builds once from a clean clone: incremental state would only fill its disk.
    if is_ci() {
        command.env("CARGO_INCREMENTAL", "0");
    }
    if let Some(driver) = LINTING.get() {
        command
            .env("RUSTC_WORKSPACE_WRAPPER", driver)
            .env("CLIPPY_ARGS", CLIPPY_ARGS);
    }
    command
}

/// Clippy's lints, with warnings as errors, in every build `cargo()` runs from now on.
///
/// This is what `cargo clippy -- -D warnings` does (it runs clippy's driver as the
/// workspace's compiler), but in the builds the tests need anyway instead of a check of
/// its own: `cargo clippy` type-checks every dependency once more and builds every proc
/// macro again, which made a clean `cargo xtask test` about a quarter longer. The
/// dependencies are compiled by plain rustc as always; the workspace's crates are
/// compiled by the driver, which lints them as it compiles them. Every later cargo
/// command of the run sets the same (cargo fingerprints the wrapper), so nothing is
/// built twice.
pub fn lint_while_building() -> anyhow::Result<()> {
    let found = Command::new("rustup")
        .args(["which", "clippy-driver"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|path| path.is_file());
    let Some(driver) = found else {
        bail!(
            "clippy's driver was not found (`rustup which clippy-driver`); install clippy \
             with `rustup component add clippy`"
        );
    };
    let _ = LINTING.set(driver);
    Ok(())
}

/// clippy's driver (see [`lint_while_building`]), once set.
static LINTING: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// The arguments `cargo clippy -- -D warnings` hands its driver, in the form it uses
/// (each followed by `__CLIPPY_HACKERY__`).
const CLIPPY_ARGS: &str = "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__";

/// Run a command for its output, failing on a non-zero exit.
pub fn capture(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}").replace('"', "");
    let output = cmd
        .output()
        .with_context(|| format!("could not start {shown}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{shown} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The workspace root (xtask's parent folder).
pub fn root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}
