//! The Windows agent under Wine beside the Linux agent, on the same content: a Wine
//! virtual desktop (1280×720, on Xvfb) whose window scrolls text 30 times a second. Each
//! agent runs its own hidden `measure-stages` on the whole desktop: the Windows one
//! captures with GDI inside Wine, the Linux one the same pixels from the X server. These
//! are Wine figures: GDI under Wine is not GDI on Windows, and Desktop Duplication (what a
//! real Windows desktop uses) is not measured here at all.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;
use tandem_tests::wine::{DESKTOP, WineDesktop};

use crate::report::{Figure, Report};
use crate::step;

struct Stages {
    backend: String,
    capture_ms: Vec<f64>,
    convert_ms: Vec<f64>,
    encode_ms: Vec<f64>,
    kbit_per_s: f64,
}

fn parse(output: &std::process::Output, who: &str) -> anyhow::Result<Stages> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "{who} measure-stages failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("{who} printed no figures: {stdout}"))?;
    let v: Value = serde_json::from_str(line)?;
    let samples = |key: &str| -> Vec<f64> {
        v[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    Ok(Stages {
        backend: v["backend"].as_str().unwrap_or_default().to_owned(),
        capture_ms: samples("capture_ms"),
        convert_ms: samples("convert_ms"),
        encode_ms: samples("encode_ms"),
        kbit_per_s: v["kbit_per_s"].as_f64().unwrap_or(0.0),
    })
}

async fn measure(seconds: f64) -> anyhow::Result<(Stages, Stages)> {
    let desktop = WineDesktop::start("bench")?;
    let (w, h) = (i32::from(DESKTOP.0), i32::from(DESKTOP.1));
    let _content = desktop
        .window_with("Quarterly report", 0xffffff, (0, 0, w, h), &["--scroll"])
        .await?;
    let seconds = format!("{seconds}");
    let windows = desktop
        .command(desktop.agent_exe())
        .args(["measure-stages", "--seconds", &seconds])
        .output()
        .await
        .context("could not run the Windows agent under Wine")?;
    let windows = parse(&windows, "the Windows agent")?;
    let linux = tokio::process::Command::new(tandem_tests::agent_binary()?)
        .args(["measure-stages", "--seconds", &seconds])
        .args(["--display", &desktop.screen.display])
        .output()
        .await
        .context("could not run the Linux agent")?;
    let linux = parse(&linux, "the Linux agent")?;
    Ok((windows, linux))
}

pub async fn section(_exe: &Path, smoke: bool, report: &mut Report) {
    step("the Windows agent under Wine beside the Linux agent");
    let label = format!("scrolling text {}p", DESKTOP.1);
    match measure(if smoke { 2.0 } else { 10.0 }).await {
        Ok((windows, linux)) => {
            let ours = format!("{} agent under Wine", windows.backend);
            let peer = "Linux agent (X11), same pixels";
            for (stage, w, l) in [
                ("capture", &windows.capture_ms, &linux.capture_ms),
                ("BGRA→I420", &windows.convert_ms, &linux.convert_ms),
                ("encode", &windows.encode_ms, &linux.encode_ms),
            ] {
                report
                    .add(
                        format!("{stage}, {ours}, {label}"),
                        "ms/frame",
                        Figure::of(w),
                    )
                    .peer(peer, Figure::of(l));
            }
            report
                .add(
                    format!("bitrate, {ours}, {label}"),
                    "kbit/s",
                    Figure::Value(windows.kbit_per_s),
                )
                .peer(peer, Figure::Value(linux.kbit_per_s));
        }
        Err(e) => {
            report.add(
                "the Windows agent under Wine",
                "—",
                Figure::Missing(format!("{e:#}")),
            );
        }
    }
}
