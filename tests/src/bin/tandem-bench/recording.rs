//! Recording (issue 20): what recording a session costs. The customer's agent shares
//! `office` (a page of text with someone typing), the rep records it, and the bench takes
//! the recording's disk use per hour (from the file and its length, as the server lists
//! them) and the recorder's CPU: this process's CPU while recording less the same while
//! not, since the server, and so its recorder, runs in this process (Chromium, the agent
//! and the content are processes of their own).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::live::Stack;
use crate::report::{Figure, Report, cpu_seconds_of};
use crate::step;

pub async fn section(exe: &Path, smoke: bool, report: &mut Report) {
    let sizes: &[(u16, u16)] = if smoke {
        &[(640, 480)]
    } else {
        &[(1280, 720), (1920, 1080)]
    };
    let seconds = if smoke { 3.0 } else { 60.0 };
    for &(width, height) in sizes {
        step(&format!(
            "recording office work at {width}×{height} for {seconds} s"
        ));
        match measure(exe, width, height, seconds).await {
            Ok(m) => {
                report.add(
                    format!("recording disk use, office work, {width}×{height}"),
                    "MB per hour",
                    Figure::Value(m.mb_per_hour),
                );
                report.add(
                    format!("recorder CPU per recorded stream, office work, {width}×{height}"),
                    "% of one core",
                    Figure::Value(m.recorder_cpu),
                );
            }
            Err(e) => {
                report.add(
                    format!("recording, {width}×{height}"),
                    "—",
                    Figure::Missing(format!("{e:#}")),
                );
            }
        }
    }
}

struct Measured {
    mb_per_hour: f64,
    recorder_cpu: f64,
}

/// This process's CPU over `seconds`, in percent of one core.
async fn own_cpu(seconds: f64) -> f64 {
    let me = std::process::id();
    let before = cpu_seconds_of(me);
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    (cpu_seconds_of(me) - before) * 100.0 / seconds
}

async fn recordings(stack: &Stack) -> anyhow::Result<Vec<Value>> {
    let list = stack
        .server
        .admin_call("GET", "/api/recordings", Value::Null)
        .await?;
    Ok(list.as_array().cloned().unwrap_or_default())
}

/// Wait (up to a minute) until the one recording is in `state`.
async fn until(stack: &Stack, state: &str) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let list = recordings(stack).await?;
        if let Some(r) = list.iter().find(|r| r["state"] == state) {
            return Ok(r.clone());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no recording is {state}: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn measure(exe: &Path, width: u16, height: u16, seconds: f64) -> anyhow::Result<Measured> {
    let server = tandem_tests::Server::start().await?;
    server
        .admin_call(
            "PUT",
            "/api/admin/settings",
            json!({"max_customers_per_rep": 8, "allow_multiple_sessions": false,
                   "allow_recording": true}),
        )
        .await?;
    let base = server.base.clone();
    let stack = Stack::start_on(exe, "office", width, height, server, base, &[]).await?;
    let result = async {
        let idle = own_cpu(seconds).await;
        stack.rep.click("#record").await?;
        until(&stack, "recording").await?;
        let recording = own_cpu(seconds).await;
        stack.rep.click("#stop-record").await?;
        let done = until(&stack, "done").await?;
        let bytes = done["bytes"].as_f64().context("bytes")?;
        let ms = done["duration_ms"].as_f64().context("duration")?;
        anyhow::ensure!(ms > 0.0, "an empty recording: {done}");
        anyhow::Ok(Measured {
            mb_per_hour: bytes / 1e6 / (ms / 3_600_000.0),
            recorder_cpu: (recording - idle).max(0.0),
        })
    }
    .await;
    let _ = stack.close().await;
    result
}
