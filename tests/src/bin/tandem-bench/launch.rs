//! From double-click to the consent question on screen (issue 17): the customer's Chromium
//! joins, downloads the agent from the join page (the download carries the session), and
//! the file is started with no arguments, as a double-click does. The figure runs from
//! that start to the agent's window showing "… asks to see your screen": the program's
//! start, reading the session from its own file, the WebSocket attach, the window opening
//! and the question. The agent traces the moment from its UI thread right after it maps
//! the window with the question (it is drawn on that turn of the event loop).

use std::time::Duration;

use anyhow::Context;
use tandem_tests::agent_window::{self, Desk};
use tandem_tests::{AgentProcess, PatternDisplay};

use crate::live::now_ms;
use crate::report::{Figure, Report};
use crate::step;

/// The epoch milliseconds of the agent's "question shown" trace, once it is there.
fn question_shown(agent: &AgentProcess) -> Option<f64> {
    agent
        .output()
        .lines()
        .find(|l| l.ends_with("] window question shown"))
        .and_then(|l| l.strip_prefix("[trace "))
        .and_then(|l| l.split(']').next())
        .and_then(|ms| ms.parse().ok())
}

async fn measure(runs: usize) -> anyhow::Result<Vec<f64>> {
    let screen = PatternDisplay::start(1280, 720)?;
    // Customers who left stay counted for their grace period: room for every run.
    let (desk, rep) = Desk::open("bench-launch", Some(8)).await?;
    let chrome = &desk.chrome;

    let mut samples = Vec::new();
    for run in 0..runs {
        let customer = chrome.browser(&format!("customer-{run}")).await?;
        customer
            .join(&desk.link, &format!("Customer {run}"))
            .await?;
        let dir = desk.downloads.path().join(format!("run-{run}"));
        std::fs::create_dir_all(&dir)?;
        let file = agent_window::download_from_join_page(
            &customer,
            &desk.server.base,
            &dir,
            "#agent-download",
        )
        .await?;
        let mut command = tokio::process::Command::new(&file);
        command.env("DISPLAY", &screen.display);
        let started = now_ms();
        let mut agent = agent_window::double_click(command)?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let shown = loop {
            if let Some(ms) = question_shown(&agent) {
                break ms;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the downloaded agent never showed its question:\n{}",
                agent.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        samples.push(shown - started);
        // The customer leaves: the next run is a new customer with a new download.
        agent.kill();
        let _ = agent.wait().await;
        customer
            .close()
            .await
            .context("closing the customer's browser")?;
    }
    rep.close().await?;
    Ok(samples)
}

pub async fn section(smoke: bool, report: &mut Report) {
    step("from double-click to the consent question");
    let runs = if smoke { 1 } else { 5 };
    let figure = match measure(runs).await {
        Ok(samples) => Figure::of(&samples),
        Err(e) => Figure::Missing(format!("{e:#}")),
    };
    report.add(
        "double-click (downloaded agent started) to the consent question on screen",
        "ms",
        figure,
    );
}
