//! File transfer throughput over loopback (issue 20): the rep's console sends a file to the
//! customer's agent, and the agent sends one the rep asked for, over the agent's
//! `tandem-files` data channel, each timed from the customer's answer at the agent to the
//! end a person sees (the console's "Delivered", after the agent checked the SHA-256 and
//! named the file; the console's "Received", after it checked the SHA-256).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::live::Stack;
use crate::report::{Figure, Report};
use crate::step;

pub async fn section(exe: &Path, smoke: bool, report: &mut Report) {
    let mb = if smoke { 4 } else { 64 };
    step(&format!("file transfer, {mb} MB each way over loopback"));
    match measure(exe, mb).await {
        Ok((to_customer, from_customer)) => {
            report.add(
                format!("file transfer rep → customer, {mb} MB, loopback"),
                "MB/s",
                Figure::Value(to_customer),
            );
            report.add(
                format!("file transfer customer → rep, {mb} MB, loopback"),
                "MB/s",
                Figure::Value(from_customer),
            );
        }
        Err(e) => {
            report.add("file transfer", "—", Figure::Missing(format!("{e:#}")));
        }
    }
}

/// Both ways' throughput in MB/s (10⁶ bytes), from the customer's answer to the end.
async fn measure(exe: &Path, mb: usize) -> anyhow::Result<(f64, f64)> {
    let home = tempfile::tempdir()?;
    let home_dir = home.path().display().to_string();
    let mut stack = Stack::start_with_agent_env(
        exe,
        "static",
        640,
        480,
        &[("HOME", home_dir.as_str()), ("XDG_DOWNLOAD_DIR", "")],
    )
    .await?;
    let size = mb * 1_000_000;
    let result = async {
        // Rep → customer: a file made in the page (the bytes differ, so nothing along the
        // way can make light of them).
        stack.rep.find("figure.tile .files button.send-file").await?;
        stack
            .rep
            .client
            .execute(
                "const [n] = arguments; const bytes = new Uint8Array(n);
                 for (let i = 0; i < n; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
                 document.querySelector('figure.tile').filePanel.sendFile(new File([bytes], 'bench.bin'));",
                vec![json!(size)],
            )
            .await?;
        stack.agent.wait_for("wants to send you the file").await?;
        let started = Instant::now();
        stack.agent.answer("y").await?;
        until_state(&stack, "delivered").await?;
        let to_customer = size as f64 / 1e6 / started.elapsed().as_secs_f64();

        // Customer → rep: the rep asks, the customer types the path.
        let outbox = tempfile::tempdir()?;
        let path = outbox.path().join("bench-log.bin");
        let content: Vec<u8> = (0..size).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        std::fs::write(&path, content)?;
        stack
            .rep
            .find("figure.tile .files button.ask-file")
            .await?
            .click()
            .await?;
        stack
            .agent
            .wait_for("(just Enter: send nothing):")
            .await?;
        let started = Instant::now();
        stack.agent.type_line(&path.display().to_string()).await?;
        until_state(&stack, "received").await?;
        let from_customer = size as f64 / 1e6 / started.elapsed().as_secs_f64();
        anyhow::Ok((to_customer, from_customer))
    }
    .await;
    let _ = stack.close().await;
    result
}

/// Wait (up to two minutes) until the tile's file panel is in `wanted`; a failure or a
/// refusal on the way ends the wait with what the panel says.
async fn until_state(stack: &Stack, wanted: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = stack
            .rep
            .client
            .execute(
                "const p = document.querySelector('figure.tile .files');
                 return [p?.dataset.state || '', p?.querySelector('.file-status')?.textContent || ''];",
                vec![],
            )
            .await?;
        let state = now[0].as_str().unwrap_or_default();
        if state == wanted {
            return Ok(());
        }
        if matches!(state, "failed" | "refused" | "cancelled") || Instant::now() > deadline {
            anyhow::bail!("the file panel is {state:?}, not {wanted:?}: {}", now[1]);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
