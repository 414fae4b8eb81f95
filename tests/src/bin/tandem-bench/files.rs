//! File transfer throughput over loopback (issue 20): the rep's console sends a file to the
//! customer's agent, and the agent sends one the rep asked for, over the agent's
//! `tandem-files` data channel, each timed from the customer's answer at the agent to the
//! end a person sees (the console's "Delivered", after the agent checked the SHA-256 and
//! named the file; the console's "Received", after it checked the SHA-256).
//!
//! Then the same both ways through two of the network section's links, set on the
//! customer's side of a network-namespace scene (the customer behind NAT, 80 ms round
//! trip): the lossy one (2 Mbit/s, 2 % loss) and a clean 10 Mbit/s one, each beside the
//! share's own video on the same link. Its figures are MB/s and the share of the link's
//! rate the file got.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use tandem_tests::nat_scene::{self, NatScene, SceneOptions, ServerMode};
use tandem_tests::netns::{Host, Impairment, Nat, TopologySpec};

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
    step("file transfer through the network profiles' links");
    match through_links(smoke).await {
        Ok(figures) => {
            for (link, kbit, mb, to_customer, from_customer) in figures {
                for (way, rate) in [
                    ("rep → customer", to_customer),
                    ("customer → rep", from_customer),
                ] {
                    report.add(
                        format!("file transfer {way}, {mb} MB, {link}"),
                        "MB/s",
                        Figure::Value(rate),
                    );
                    report.add(
                        format!("file transfer {way}, {link}: share of the link's rate"),
                        "%",
                        Figure::Value(100.0 * rate * 8000.0 / f64::from(kbit)),
                    );
                }
            }
        }
        Err(e) => {
            report.add(
                "file transfer through the network profiles",
                "—",
                Figure::Missing(format!("{e:#}")),
            );
        }
    }
}

/// Both ways' throughput (MB/s) through each link: its name, its rate (kbit/s), the file's
/// size (MB), rep → customer, customer → rep.
async fn through_links(smoke: bool) -> anyhow::Result<Vec<(&'static str, u32, f64, f64, f64)>> {
    let home = tempfile::tempdir()?;
    let spec = TopologySpec {
        customer: Nat::PortPreserving,
        rep: Nat::None,
        customer_delay_line: true,
        ..TopologySpec::default()
    };
    let options = SceneOptions {
        agent_env: vec![
            ("HOME".into(), home.path().display().to_string()),
            ("XDG_DOWNLOAD_DIR".into(), String::new()),
        ],
        server_as_secure_origin: true,
        ..SceneOptions::default()
    };
    let mut scene =
        NatScene::start_with_options("bench-files", spec, ServerMode::Embedded, options).await?;
    nat_scene::sees_the_pattern(&scene.rep).await?;
    scene
        .rep
        .find("figure.tile .files button.send-file")
        .await?;
    let links: [(&str, Impairment, f64); 2] = [
        (
            "2 Mbit/s, 80 ms RTT, 2 % loss",
            Impairment {
                rate_kbit: Some(2000),
                loss_pct: 2.0,
                delay_ms: 40,
            },
            if smoke { 0.25 } else { 2.0 },
        ),
        (
            "10 Mbit/s, 80 ms RTT",
            Impairment {
                rate_kbit: Some(10_000),
                ..Impairment::default()
            },
            if smoke { 1.0 } else { 8.0 },
        ),
    ];
    let outbox = tempfile::tempdir()?;
    let mut figures = Vec::new();
    for (n, (link, impairment, mb)) in links.into_iter().enumerate() {
        let kbit = impairment.rate_kbit.unwrap_or(0);
        scene.topology.impair(Host::Cust, impairment)?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let size = (mb * 1e6) as usize;
        let content: Vec<u8> = (0..size)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(n) >> 13) as u8)
            .collect();

        let to = outbox.path().join(format!("to-customer-{n}.bin"));
        std::fs::write(&to, &content)?;
        scene
            .rep
            .find("figure.tile input.file-picker")
            .await?
            .send_keys(&to.display().to_string())
            .await?;
        scene
            .agent
            .wait_for(&format!("the file “to-customer-{n}.bin”"))
            .await?;
        let started = Instant::now();
        scene.agent.answer("y").await?;
        until_panel(&scene.rep, "delivered", Duration::from_secs(300)).await?;
        let to_customer = mb / started.elapsed().as_secs_f64();

        let from = outbox.path().join(format!("from-customer-{n}.bin"));
        std::fs::write(&from, &content)?;
        scene
            .rep
            .find("figure.tile .files button.ask-file")
            .await?
            .click()
            .await?;
        scene.agent.wait_for("(just Enter: send nothing):").await?;
        let started = Instant::now();
        scene.agent.type_line(&from.display().to_string()).await?;
        until_panel(&scene.rep, "received", Duration::from_secs(300)).await?;
        let from_customer = mb / started.elapsed().as_secs_f64();
        figures.push((link, kbit, mb, to_customer, from_customer));
    }
    scene.topology.clear_impairment(Host::Cust)?;
    Ok(figures)
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
    until_panel(&stack.rep, wanted, Duration::from_secs(120)).await
}

async fn until_panel(
    rep: &tandem_tests::Browser,
    wanted: &str,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let now = rep
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
