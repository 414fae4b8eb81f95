//! The Windows agent under Wine, for end-to-end tests and the bench: an Xvfb display with a
//! Wine virtual desktop on it, Windows test windows (tests/wine/window) that print every
//! click and typed character, and the Windows `tandem-agent.exe` run with its terminal in
//! the test's hands ([`AgentProcess`]).
//!
//! Three things make Wine 8 run the agent; only the first is a test-environment shim:
//! - `bcryptprimitives.dll` (tests/wine/bcryptprimitives.c) gives Rust's standard library
//!   the `ProcessPrng` real Windows has and Wine 8 lacks; it is built into the prefix here.
//! - the agent is linked with a static C runtime and libstdc++ (`windows_build_env`), so it
//!   needs only system DLLs, as on a customer's machine;
//! - quinn-udp is patched to ask IPV6_V6ONLY of IPv6 sockets only (Cargo.toml).
//!
//! A Wine prefix takes ~10 s of `wineboot` and ~700 MB, so each test's prefix is made once
//! and kept under `target/wine/<name>`; one test uses one prefix at a time.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{AgentProcess, PatternDisplay};

pub const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";
/// The Wine virtual desktop's size, and the Xvfb it is shown on.
pub const DESKTOP: (u16, u16) = (1280, 720);

/// The environment a build for the Windows target needs: the mingw linker, and a static C
/// runtime and libstdc++ (openh264 is C++), so the .exe needs only system DLLs. `link_dir`
/// gets a copy of mingw's `libstdc++.a`, alone, so the linker cannot pick the DLL's import
/// library. `cargo xtask` uses the same settings.
pub fn windows_build_env(link_dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let libstdcxx = ["12-win32", "12-posix", "12"]
        .iter()
        .map(|v| PathBuf::from(format!("/usr/lib/gcc/x86_64-w64-mingw32/{v}/libstdc++.a")))
        .find(|p| p.is_file())
        .context("mingw's libstdc++.a is missing (Debian package g++-mingw-w64-x86-64)")?;
    copy_once(&libstdcxx, &link_dir.join("libstdc++.a"))?;
    Ok(vec![
        (
            "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER".into(),
            "x86_64-w64-mingw32-gcc".into(),
        ),
        (
            "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUSTFLAGS".into(),
            format!(
                "-C target-feature=+crt-static -L native={}",
                link_dir.display()
            ),
        ),
    ])
}

/// Copy `from` to `to` unless the same size is there already: another build may be
/// linking with it, so it is replaced only through a rename.
fn copy_once(from: &Path, to: &Path) -> anyhow::Result<()> {
    let size = std::fs::metadata(from)?.len();
    if std::fs::metadata(to).is_ok_and(|m| m.len() == size) {
        return Ok(());
    }
    let dir = to.parent().context("a directory")?;
    std::fs::create_dir_all(dir)?;
    let temporary = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::copy(from, temporary.path())?;
    temporary.persist(to)?;
    Ok(())
}

/// The Windows agent and the test window, built now (a no-op when `cargo xtask test`
/// built them just before). `TANDEM_WINDOWS_AGENT` names another agent (the bench's
/// release build).
pub fn windows_binaries() -> anyhow::Result<(PathBuf, PathBuf)> {
    let target = crate::target_dir();
    let dir = target.join(WINDOWS_TARGET).join("debug");
    let named = std::env::var_os("TANDEM_WINDOWS_AGENT").map(PathBuf::from);
    let agent = named
        .clone()
        .unwrap_or_else(|| dir.join("tandem-agent.exe"));
    let window = dir.join("tandem-wine-window.exe");
    if std::env::var_os("TANDEM_TEST_PREBUILT").is_some() && agent.is_file() && window.is_file() {
        return Ok((agent, window));
    }
    let packages: &[&str] = if named.is_some() {
        &["-p", "tandem-wine-window"]
    } else {
        &["-p", "tandem-agent", "-p", "tandem-wine-window"]
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--target", WINDOWS_TARGET])
        .args(packages)
        .envs(windows_build_env(&target.join("windows-link"))?)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .context("could not run cargo to build the Windows agent")?;
    anyhow::ensure!(status.success(), "could not build the Windows agent");
    Ok((agent, window))
}

/// A Wine prefix with a 1280×720 virtual desktop and the `ProcessPrng` shim, made once.
fn prefix(name: &str) -> anyhow::Result<PathBuf> {
    let root = crate::target_dir().join("wine");
    let prefix = root.join(name);
    let ready = prefix.join(".tandem-ready");
    if ready.is_file() {
        return Ok(prefix);
    }
    let _ = std::fs::remove_dir_all(&prefix);
    std::fs::create_dir_all(&prefix)?;
    // Built for this prefix alone: tests making their prefixes at once never share it.
    let shim = prefix.join("bcryptprimitives.dll");
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("wine");
    let built = std::process::Command::new("x86_64-w64-mingw32-gcc")
        .args(["-shared", "-O2", "-o"])
        .arg(&shim)
        .arg(source.join("bcryptprimitives.c"))
        .arg(source.join("bcryptprimitives.def"))
        .arg("-ladvapi32")
        .status()
        .context("could not run x86_64-w64-mingw32-gcc (Debian package gcc-mingw-w64-x86-64)")?;
    anyhow::ensure!(built.success(), "could not build the ProcessPrng shim");
    // wineboot wants a display for its first start; a private one, gone afterwards.
    let screen = PatternDisplay::bare(DESKTOP.0, DESKTOP.1)?;
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let status = std::process::Command::new("wine")
            .args(args)
            .envs(wine_env(&prefix, &screen.display))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("could not run wine (Debian packages wine and wine64)")?;
        anyhow::ensure!(status.success(), "wine {args:?} failed: {status}");
        Ok(())
    };
    run(&["wineboot", "-i"])?;
    // A virtual desktop: Wine draws every window inside one X window of this size, GDI
    // capture sees a real desktop, and the programs keep their stdout (unlike
    // `explorer /desktop=`).
    let size = format!("{}x{}", DESKTOP.0, DESKTOP.1);
    run(&[
        "reg",
        "add",
        r"HKCU\Software\Wine\Explorer",
        "/v",
        "Desktop",
        "/d",
        "Default",
        "/f",
    ])?;
    run(&[
        "reg",
        "add",
        r"HKCU\Software\Wine\Explorer\Desktops",
        "/v",
        "Default",
        "/d",
        &size,
        "/f",
    ])?;
    wineserver(&prefix, "-w");
    std::fs::copy(
        &shim,
        prefix.join("drive_c/windows/system32/bcryptprimitives.dll"),
    )?;
    std::fs::write(&ready, b"")?;
    Ok(prefix)
}

fn wine_env(prefix: &Path, display: &str) -> Vec<(String, String)> {
    vec![
        ("WINEPREFIX".into(), prefix.display().to_string()),
        ("DISPLAY".into(), display.into()),
        ("WINEDEBUG".into(), "-all".into()),
        // No Mono or Gecko installers: nothing here needs .NET or a browser engine.
        ("WINEDLLOVERRIDES".into(), "mscoree,mshtml=".into()),
    ]
}

fn wineserver(prefix: &Path, flag: &str) {
    let _ = std::process::Command::new("wineserver")
        .arg(flag)
        .env("WINEPREFIX", prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Xvfb with a Wine virtual desktop on it; Wine's processes end with it.
pub struct WineDesktop {
    pub screen: PatternDisplay,
    prefix: PathBuf,
    agent: PathBuf,
    window: PathBuf,
}

impl std::fmt::Debug for WineDesktop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WineDesktop")
            .field("display", &self.screen.display)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl WineDesktop {
    /// `name` names the test's own prefix.
    pub fn start(name: &str) -> anyhow::Result<Self> {
        let (agent, window) = windows_binaries()?;
        let prefix = prefix(name)?;
        // A former run's Wine processes (a killed test) would hold the prefix's desktop.
        wineserver(&prefix, "-k");
        let screen = PatternDisplay::bare(DESKTOP.0, DESKTOP.1)?;
        Ok(Self {
            screen,
            prefix,
            agent,
            window,
        })
    }

    /// `wine <program>` in this desktop.
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new("wine");
        command
            .arg(program)
            .envs(wine_env(&self.prefix, &self.screen.display))
            .kill_on_drop(true);
        command
    }

    /// The Windows agent with these arguments, its terminal in the test's hands.
    pub fn agent(&self, args: &[&str]) -> anyhow::Result<AgentProcess> {
        let mut command = self.command(&self.agent);
        command.args(args).arg("--cli");
        AgentProcess::spawn_command(command)
    }

    /// The Windows agent this desktop runs.
    pub fn agent_exe(&self) -> &Path {
        &self.agent
    }

    /// A test window of one colour (0xRRGGBB) at (x, y) on the desktop, once it shows.
    pub async fn window(
        &self,
        title: &str,
        rgb: u32,
        place: (i32, i32, i32, i32),
    ) -> anyhow::Result<TestWindow> {
        self.window_with(title, rgb, place, &[]).await
    }

    /// The same with the window's options (`--scroll`: text scrolling 30 times a second).
    pub async fn window_with(
        &self,
        title: &str,
        rgb: u32,
        (x, y, width, height): (i32, i32, i32, i32),
        options: &[&str],
    ) -> anyhow::Result<TestWindow> {
        let mut command = self.command(&self.window);
        command
            .args([title, &format!("{rgb:06x}")])
            .args([x, y, width, height].map(|n| n.to_string()))
            .args(options)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().context("could not start the test window")?;
        let stdout = child.stdout.take().context("stdout piped")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let collected = lines.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                collected
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line);
            }
        });
        let window = TestWindow {
            _child: child,
            lines,
            client: (0, 0),
        };
        // Wine's first program starts the desktop: generous.
        let ready = window
            .wait_for("the window to show", Duration::from_secs(120), |lines| {
                lines
                    .iter()
                    .find_map(|l| l.strip_prefix("ready ").map(str::to_owned))
            })
            .await?;
        let numbers: Vec<i32> = ready
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        let [_, cx, cy] = numbers[..] else {
            bail!("the test window said {ready:?}");
        };
        Ok(TestWindow {
            client: (cx, cy),
            ..window
        })
    }
}

impl Drop for WineDesktop {
    fn drop(&mut self) {
        wineserver(&self.prefix, "-k");
    }
}

/// A running test window and what it printed.
#[derive(Debug)]
pub struct TestWindow {
    _child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// Where its client area's top-left corner is on the desktop.
    pub client: (i32, i32),
}

impl TestWindow {
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Left clicks it received, in client pixels.
    pub fn clicks(&self) -> Vec<(i32, i32)> {
        self.lines()
            .iter()
            .filter_map(|l| {
                let mut n = l.strip_prefix("click ")?.split(' ');
                Some((n.next()?.parse().ok()?, n.next()?.parse().ok()?))
            })
            .collect()
    }

    /// The characters typed into it.
    pub fn typed(&self) -> String {
        self.lines()
            .iter()
            .filter_map(|l| l.strip_prefix("char ")?.parse::<u32>().ok())
            .filter_map(char::from_u32)
            .collect()
    }

    /// Wait until `found` finds something in what the window printed.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        within: Duration,
        found: impl Fn(&[String]) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let lines = self.lines();
            if let Some(t) = found(&lines) {
                return Ok(t);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("waited {within:?} for {what}; the window printed {lines:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
