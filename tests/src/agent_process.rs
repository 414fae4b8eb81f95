//! The real `tandem-agent` as a customer runs it: its terminal (stdin, stderr) in the
//! test's hands, so the test reads its questions and types the answers.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};

#[derive(Debug)]
pub struct AgentProcess {
    child: Child,
    stdin: ChildStdin,
    output: Arc<Mutex<String>>,
    /// How much of the output earlier waits consumed.
    seen: usize,
}

impl AgentProcess {
    /// Start `tandem-agent <args> --display <display> --cli` (in its terminal mode).
    pub fn spawn(display: &str, args: &[&str]) -> anyhow::Result<Self> {
        Self::spawn_with_env(display, args, &[])
    }

    /// The same, with extra environment variables (test switches of the agent).
    pub fn spawn_with_env(
        display: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(crate::agent_binary()?);
        command
            .args(args)
            .args(["--display", display, "--cli"])
            .envs(env.iter().copied());
        Self::spawn_command(command)
    }

    /// Start a prepared command line of the agent (e.g. one that runs it inside a network
    /// namespace, [`crate::netns::Topology::command`]), with its terminal in the test's
    /// hands.
    pub fn spawn_command(mut command: Command) -> anyhow::Result<Self> {
        let mut child = command
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("could not start tandem-agent")?;
        let stdin = child.stdin.take().context("stdin piped")?;
        let mut stderr = child.stderr.take().context("stderr piped")?;
        let output = Arc::new(Mutex::new(String::new()));
        let collected = output.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                eprint!("[agent] {text}");
                collected
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&text);
            }
        });
        Ok(Self {
            child,
            stdin,
            output,
            seen: 0,
        })
    }

    /// The agent's process id (to read its CPU time from /proc).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Everything the agent printed so far.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The agent's count of input events that reached nothing, from its latest status line.
    pub fn dropped(&self) -> u64 {
        self.output()
            .rsplit("injected, ")
            .next()
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// The injected events of the agent's last status line ("input 3 injected, 1 dropped").
    pub fn injected(&self) -> u64 {
        self.output()
            .rsplit(" injected, ")
            .nth(1)
            .and_then(|before| before.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Wait until the agent prints `text` after what earlier waits saw.
    pub async fn wait_for(&mut self, text: &str) -> anyhow::Result<()> {
        self.wait_for_within(text, Duration::from_secs(30)).await
    }

    /// [`AgentProcess::wait_for`] with a deadline of its own (a connection across
    /// routers may take longer than a prompt).
    pub async fn wait_for_within(&mut self, text: &str, within: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let output = self.output();
            if let Some(at) = output[self.seen..].find(text) {
                self.seen += at + text.len();
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the agent ended ({status}) before printing {text:?}: {output}");
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the agent never printed {text:?}; it printed: {output}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Type a line on the agent's terminal.
    pub async fn type_line(&mut self, line: &str) -> anyhow::Result<()> {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// Wait for the next yes/no question and answer it.
    pub async fn answer(&mut self, answer: &str) -> anyhow::Result<()> {
        self.wait_for("[y/N]").await?;
        self.type_line(answer).await
    }

    /// Wait for the agent to end by itself; its exit code.
    pub async fn wait(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        Ok(
            tokio::time::timeout(Duration::from_secs(30), self.child.wait())
                .await
                .context("the agent did not end")??,
        )
    }

    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }
}
