//! The `tandem-signaling` binary as its own process, for tests that kill it and start it
//! again on the same port and data directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// A generous deadline for a loaded machine.
const START_WITHIN: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct ServerProcess {
    pub base: String,
    child: Child,
}

impl ServerProcess {
    /// Start the server on 127.0.0.1:`port` with its data in `data`, the admin's password
    /// [`crate::ADMIN_PASSWORD`], and its output appended to `log`; returns once
    /// `/healthz` answers.
    pub async fn start(data: &Path, port: u16, log: &Path) -> anyhow::Result<Self> {
        Self::start_with(data, port, log, &[]).await
    }

    /// [`ServerProcess::start`] with more arguments, e.g. `--postgres URL`.
    pub async fn start_with(
        data: &Path,
        port: u16,
        log: &Path,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("could not open {}", log.display()))?;
        let child = Command::new(crate::server_binary()?)
            .args(extra)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--no-embedded-turn",
                "--admin-password",
                crate::ADMIN_PASSWORD,
            ])
            .arg("--data-dir")
            .arg(data)
            .env_remove("TANDEM_CONFIG")
            .env("RUST_LOG", "info")
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("could not start tandem-signaling")?;
        let base = format!("http://127.0.0.1:{port}");
        let health = format!("{base}/healthz");
        let deadline = tokio::time::Instant::now() + START_WITHIN;
        loop {
            if reqwest::get(&health)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(Self { base, child });
            }
            if tokio::time::Instant::now() > deadline {
                bail!("tandem-signaling did not answer on {health}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGTERM (a restart for an upgrade), and wait until the process is gone.
    pub async fn terminate(&mut self) -> anyhow::Result<()> {
        let pid = self.child.id().context("the server has ended already")?;
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        anyhow::ensure!(sent.success(), "kill -TERM {pid} failed");
        tokio::time::timeout(START_WITHIN, self.child.wait())
            .await
            .context("the server did not stop after SIGTERM")??;
        Ok(())
    }

    /// SIGKILL, and wait until the process is gone.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}

/// Where a test's server log goes: target/e2e-artifacts/<test>/server.log.
pub fn server_log(test: &str) -> anyhow::Result<PathBuf> {
    let dir = crate::target_dir().join("e2e-artifacts").join(test);
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join("server.log"))
}
