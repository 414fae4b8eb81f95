//! `tandem-bench`: Tandem's figures on this machine, side by side with its peers measured
//! in the same run (ffmpeg x11grab + libx264; x11vnc + noVNC). Run by `cargo xtask bench`,
//! which installs what it needs and writes target/bench/report.{json,md}; `cargo xtask
//! test` runs it with `--smoke` (a few seconds per figure) so it cannot rot. The bench
//! never fails on a figure: a figure it cannot take is reported as missing, with why.

mod abuse;
mod attack;
mod cluster;
mod content;
mod files;
mod launch;
mod live;
mod network;
mod recording;
mod report;
mod signaling;
mod stages;
mod wine;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use report::{Figure, Report};
use tandem_tests::PatternDisplay;

struct Plan {
    smoke: bool,
    /// Only this section (stages, latency, idle, fanout, signaling, files, recording, abuse, network,
    /// cluster, launch, wine), or all.
    only: Option<String>,
    /// Every section but this one (`--skip`).
    skip: Option<String>,
    stage_seconds: f64,
    sizes: Vec<(u16, u16)>,
    kinds: Vec<&'static str>,
    live_sizes: Vec<(u16, u16)>,
    sample_seconds: f64,
    clicks: usize,
    viewers: Vec<usize>,
    connections: u32,
    joins: u32,
    /// Sessions whose customers all chat at once.
    burst_sessions: u32,
}

impl Plan {
    fn new(smoke: bool) -> Plan {
        if smoke {
            Plan {
                smoke,
                only: None,
                skip: None,
                stage_seconds: 1.0,
                sizes: vec![(640, 360)],
                kinds: vec!["office", "video"],
                live_sizes: vec![(640, 480)],
                sample_seconds: 1.0,
                clicks: 3,
                viewers: vec![1, 2],
                connections: 300,
                joins: 3,
                burst_sessions: 5,
            }
        } else {
            Plan {
                smoke,
                only: None,
                skip: None,
                stage_seconds: 8.0,
                sizes: vec![(1280, 720), (1920, 1080)],
                kinds: vec!["office", "scroll", "video"],
                live_sizes: vec![(1280, 720), (1920, 1080)],
                sample_seconds: 10.0,
                clicks: 30,
                viewers: vec![1, 2, 4],
                connections: 10_000,
                joins: 50,
                burst_sessions: 100,
            }
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let result = match args.first().map(String::as_str) {
        Some("content") => content::run(
            &flag("--display").unwrap_or_default(),
            &flag("--kind").unwrap_or_default(),
        ),
        Some("load") => runtime().and_then(|rt| {
            rt.block_on(signaling::load(
                flag("--addr").unwrap_or_default().parse()?,
                flag("--connections")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(100),
            ))
        }),
        Some("attack") => runtime().and_then(|rt| {
            let target = attack::Target {
                addr: flag("--addr").unwrap_or_default().parse()?,
                number: flag("--number").unwrap_or_default(),
                secret: flag("--secret").unwrap_or_default(),
                username: flag("--username").unwrap_or_default(),
                password: flag("--password").unwrap_or_default(),
            };
            let sizes = attack::Sizes::new(args.iter().any(|a| a == "--smoke"));
            rt.block_on(attack::run(target, sizes))
        }),
        _ => {
            let smoke = args.iter().any(|a| a == "--smoke");
            let out = flag("--out").map_or_else(|| PathBuf::from("target/bench"), PathBuf::from);
            let plan = Plan {
                only: flag("--only"),
                skip: flag("--skip"),
                ..Plan::new(smoke)
            };
            runtime().and_then(|rt| rt.block_on(bench(&out, plan)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tandem-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

pub(crate) fn step(what: &str) {
    eprintln!("tandem-bench: {what}");
}

/// Keep a figure even when taking it failed: the report says why.
fn figure(result: anyhow::Result<Vec<f64>>) -> Figure {
    match result {
        Ok(samples) => Figure::of(&samples),
        Err(e) => Figure::Missing(format!("{e:#}")),
    }
}

fn value(result: anyhow::Result<f64>) -> Figure {
    match result {
        Ok(v) => Figure::Value(v),
        Err(e) => Figure::Missing(format!("{e:#}")),
    }
}

/// How long each section took, printed as it ends: what a shorter run would have to cut.
struct Lap(std::time::Instant);

impl Lap {
    fn done(&mut self, section: &str) {
        println!(
            "tandem-bench: the {section} section took {:.0} s",
            self.0.elapsed().as_secs_f64()
        );
        self.0 = std::time::Instant::now();
    }
}

async fn bench(out: &Path, plan: Plan) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("this binary's path")?;
    let mut report = Report::default();
    let run = |section: &str| {
        plan.only.as_deref().is_none_or(|only| only == section)
            && plan.skip.as_deref() != Some(section)
    };
    let mut lap = Lap(std::time::Instant::now());
    if run("stages") {
        stage_costs(&exe, &plan, &mut report).await;
        lap.done("stages");
    }
    if run("latency") {
        latency(&exe, &plan, &mut report).await;
        lap.done("latency");
    }
    if run("idle") {
        idle(&exe, &plan, &mut report).await;
        lap.done("idle");
    }
    if run("fanout") {
        fan_out(&exe, &plan, &mut report).await;
        lap.done("fanout");
    }
    if run("signaling") {
        signaling(&exe, &plan, &mut report).await;
        lap.done("signaling");
    }
    if run("files") {
        files::section(&exe, plan.smoke, &mut report).await;
        lap.done("files");
    }
    if run("recording") {
        recording::section(&exe, plan.smoke, &mut report).await;
        lap.done("recording");
    }
    if run("abuse") {
        abuse::section(&exe, plan.smoke, &mut report).await;
        lap.done("abuse");
    }
    if run("network") {
        network::section(&exe, plan.smoke, &mut report).await;
        lap.done("network");
    }
    if run("cluster") {
        cluster::section(&exe, plan.smoke, &mut report).await;
        lap.done("cluster");
    }
    if run("launch") {
        launch::section(plan.smoke, &mut report).await;
        lap.done("launch");
    }
    if run("wine") {
        wine::section(&exe, plan.smoke, &mut report).await;
        lap.done("wine");
    }

    let md = report.write(out, plan.smoke)?;
    println!("{md}");
    println!(
        "tandem-bench: report written to {}",
        out.join("report.md").display()
    );
    Ok(())
}

async fn signaling(exe: &Path, plan: &Plan, report: &mut Report) {
    step("signaling under load");
    match signaling::measure(exe, plan.connections, plan.joins).await {
        Ok(f) => {
            report
                .add(
                    "idle WebSocket connections held",
                    "connections",
                    Figure::Value(f64::from(f.connections)),
                )
                .target("≥ 10,000");
            report
                .add(
                    "server memory per idle connection",
                    "KiB",
                    Figure::Value(f.kib_per_connection),
                )
                .target("≤ 16 KiB");
            report.add(
                format!("join latency with {} idle connections", f.connections),
                "ms",
                Figure::of(&f.join_ms),
            );
        }
        Err(e) => {
            report.add(
                "signaling under load",
                "—",
                Figure::Missing(format!("{e:#}")),
            );
        }
    }
    step("chat across many sessions at once");
    match signaling::burst(plan.burst_sessions).await {
        Ok(b) => {
            let what = format!(
                "{} sessions' customers sending {} chat lines at once",
                b.sessions, b.lines
            );
            report.add(
                format!("{what}: lines carried"),
                "lines/s",
                Figure::Value(b.lines_per_s),
            );
            report.add(
                format!("{what}: a line's trip, customer to rep"),
                "ms",
                Figure::of(&b.line_ms),
            );
            for (lock, figures) in [
                ("the sessions' own locks (summed)", &b.sessions_lock),
                ("the site's lock", &b.site_lock),
            ] {
                report.add(
                    format!(
                        "{what}: {lock}, time held over the burst's time \
                         ({:.2} takes a line, {:.1} µs held and {:.1} µs waited a take)",
                        figures.takes_per_line, figures.hold_us, figures.wait_us
                    ),
                    "% of a core",
                    Figure::Value(figures.busy * 100.0),
                );
            }
        }
        Err(e) => {
            report.add(
                "chat across many sessions at once",
                "—",
                Figure::Missing(format!("{e:#}")),
            );
        }
    }
}

/// A display showing `kind`, drawn by this binary in its own process.
fn show(
    exe: &Path,
    kind: &str,
    w: u16,
    h: u16,
) -> anyhow::Result<(PatternDisplay, std::process::Child)> {
    let screen = PatternDisplay::bare(w, h)?;
    let content = std::process::Command::new(exe)
        .args(["content", "--display", &screen.display, "--kind", kind])
        .spawn()?;
    std::thread::sleep(Duration::from_millis(1000));
    Ok((screen, content))
}

async fn stage_costs(exe: &Path, plan: &Plan, report: &mut Report) {
    for &(w, h) in &plan.sizes {
        for &kind in &plan.kinds {
            step(&format!("per-stage cost: {kind} at {w}×{h}"));
            let (screen, mut content) = match show(exe, kind, w, h) {
                Ok(shown) => shown,
                Err(e) => {
                    report.add(
                        format!("{kind} {w}×{h}"),
                        "—",
                        Figure::Missing(format!("{e:#}")),
                    );
                    continue;
                }
            };
            let display = screen.display.clone();
            let seconds = plan.stage_seconds;
            let settings = tandem_codec::EncoderSettings::default();
            let ours =
                tokio::task::spawn_blocking(move || stages::measure(&display, seconds, settings))
                    .await
                    .map_err(anyhow::Error::from)
                    .and_then(|r| r);

            let display = screen.display.clone();
            let peer = tokio::task::spawn_blocking(move || stages::ffmpeg(&display, w, h, seconds))
                .await
                .map_err(anyhow::Error::from)
                .and_then(|r| r);
            let _ = content.kill();
            let _ = content.wait();
            let label = format!("{kind} {h}p");
            let office_1080 = kind == "office" && h == 1080;
            match ours {
                Ok(s) => {
                    let m = report.add(
                        format!("capture, {label}"),
                        "ms/frame",
                        Figure::of(&s.capture_ms),
                    );
                    if office_1080 {
                        m.target("≤ 1 ms");
                    }
                    let m = report.add(
                        format!("BGRA→I420, {label}"),
                        "ms/frame",
                        Figure::of(&s.convert_ms),
                    );
                    if office_1080 {
                        m.target("≤ 1 ms");
                    }
                    report.add(
                        format!("encode, {label}"),
                        "ms/frame",
                        Figure::of(&s.encode_ms),
                    );
                    let m = report.add(
                        format!("capture + convert + encode, {label}"),
                        "ms/frame",
                        Figure::of(&s.total_ms),
                    );
                    if office_1080 {
                        m.target("p50 ≤ 12 ms");
                    }

                    let cpu = report.add(
                        format!("CPU per frame interval, {label}"),
                        "ms of one core",
                        Figure::Value(s.cpu_ms_per_frame),
                    );
                    match &peer {
                        Ok(p) => cpu.peer("ffmpeg x264", Figure::Value(p.cpu_ms_per_frame)),
                        Err(e) => cpu.peer("ffmpeg x264", Figure::Missing(format!("{e:#}"))),
                    }
                    .target("below the peer");
                    let rate = report.add(
                        format!("bitrate, {label}"),
                        "kbit/s",
                        Figure::Value(s.kbit_per_s()),
                    );
                    if let Ok(p) = &peer {
                        rate.peer("ffmpeg x264", Figure::Value(p.kbit_per_s));
                    }
                }
                Err(e) => {
                    report.add(
                        format!("pipeline, {label}"),
                        "—",
                        Figure::Missing(format!("{e:#}")),
                    );
                }
            }
            drop(screen);
        }
    }
}

async fn latency(exe: &Path, plan: &Plan, report: &mut Report) {
    for (i, &(w, h)) in plan.live_sizes.iter().enumerate() {
        step(&format!(
            "glass-to-glass and time to first frame at {w}×{h}"
        ));
        let mut stack = match live::Stack::start(exe, "clock", w, h).await {
            Ok(s) => s,
            Err(e) => {
                report.add(
                    format!("live stack {h}p"),
                    "—",
                    Figure::Missing(format!("{e:#}")),
                );
                continue;
            }
        };
        report
            .add(
                format!("time to first frame after consent, {h}p"),
                "ms",
                value(stack.first_frame_ms.context("not recorded")),
            )
            .target("< 500 ms");
        tokio::time::sleep(Duration::from_secs(2)).await;
        report
            .add(
                format!("glass-to-glass, {h}p"),
                "ms",
                figure(stack.glass_to_glass(plan.sample_seconds).await),
            )
            .target(if h >= 1080 {
                "p50 ≤ 40, p95 ≤ 60"
            } else {
                "p50 ≤ 30, p95 ≤ 45"
            });
        // Click-to-photon at the first size, with the peer on the same display.
        if i == 0 {
            step(&format!("click-to-photon at {w}×{h}"));
            let taken = stack.take_control().await;
            let before = stack.bytes_received().await.unwrap_or(0.0);
            let ours = match taken {
                Ok(()) => stack.click_to_photon(plan.clicks).await,
                Err(e) => Err(e),
            };
            let ours_bytes = stack.bytes_received().await.unwrap_or(0.0) - before;
            step("x11vnc + noVNC on the same display");
            let (peer, peer_bytes) = match live::Vnc::start(&stack).await {
                Ok(vnc) => {
                    let before = vnc.bytes_sent();
                    let samples = vnc.click_to_photon(&stack, plan.clicks).await;
                    let bytes = vnc.bytes_sent() - before;
                    vnc.close().await;
                    (samples, Ok(bytes))
                }
                Err(e) => (Err(anyhow::anyhow!("{e:#}")), Err(e)),
            };
            report
                .add(format!("click-to-photon, {h}p"), "ms", figure(ours))
                .peer("x11vnc + noVNC", figure(peer))
                .target("p50 ≤ 0.8 × the peer's, p95 ≤ the peer's");
            for (stage, samples) in stack.click_stages() {
                report.add(
                    format!("click-to-photon {h}p, stage: {stage}"),
                    "ms",
                    if samples.is_empty() {
                        Figure::Missing("no click could be traced through the agent".into())
                    } else {
                        Figure::of(&samples)
                    },
                );
            }
            report
                .add(
                    format!("bytes sent during the clicks, {h}p"),
                    "KiB",
                    Figure::Value(ours_bytes / 1024.0),
                )
                .peer("x11vnc + noVNC", value(peer_bytes.map(|b| b / 1024.0)));
        }
        let _ = stack.close().await;
    }
    if !plan.smoke {
        old_media_clock(exe, plan, report).await;
    }
}

/// What the capture clock in the RTP timestamps changes on its own: the same 720p
/// glass-to-glass and click-to-photon with the agent stamping every frame 33 ms after
/// the one before, as it did before (a test switch of the agent).
async fn old_media_clock(exe: &Path, plan: &Plan, report: &mut Report) {
    let Some(&(w, h)) = plan.live_sizes.first() else {
        return;
    };
    step(&format!("the old 33 ms media clock at {w}×{h}"));
    let started = live::Stack::start_with_agent_env(
        exe,
        "clock",
        w,
        h,
        &[("TANDEM_AGENT_TEST_33MS_CLOCK", "1")],
    )
    .await;
    let mut stack = match started {
        Ok(s) => s,
        Err(e) => {
            report.add(
                "the old 33 ms media clock",
                "—",
                Figure::Missing(format!("{e:#}")),
            );
            return;
        }
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    report.add(
        format!("glass-to-glass, {h}p, old 33 ms media clock"),
        "ms",
        figure(stack.glass_to_glass(plan.sample_seconds).await),
    );
    let clicks = match stack.take_control().await {
        Ok(()) => stack.click_to_photon(plan.clicks).await,
        Err(e) => Err(e),
    };
    report.add(
        format!("click-to-photon, {h}p, old 33 ms media clock"),
        "ms",
        figure(clicks),
    );
    let _ = stack.close().await;
}

async fn idle(exe: &Path, plan: &Plan, report: &mut Report) {
    let &(w, h) = plan.live_sizes.last().unwrap_or(&(640, 480));
    step(&format!("idle at {w}×{h}"));
    let stack = match live::Stack::start(exe, "static", w, h).await {
        Ok(s) => s,
        Err(e) => {
            report.add("idle", "—", Figure::Missing(format!("{e:#}")));
            return;
        }
    };
    tokio::time::sleep(Duration::from_secs(if plan.smoke { 1 } else { 3 })).await;
    let before = stack.bytes_received().await.unwrap_or(0.0);
    let cpu = stack.agent_cpu(plan.sample_seconds).await;
    let bytes = stack.bytes_received().await.unwrap_or(0.0) - before;
    let display = stack.screen.display.clone();
    let seconds = plan.stage_seconds;
    let peer = tokio::task::spawn_blocking(move || stages::ffmpeg(&display, w, h, seconds))
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r);
    let rate = report.add(
        format!("idle bitrate, unchanged screen {h}p"),
        "kbit/s",
        Figure::Value(bytes * 8.0 / 1000.0 / plan.sample_seconds),
    );
    rate.target("< 5 kbit/s");
    if let Ok(p) = &peer {
        rate.peer("ffmpeg x264", Figure::Value(p.kbit_per_s));
    }
    report.add(format!("idle agent CPU, {h}p"), "% of one core", value(cpu));
    let _ = stack.close().await;
}

async fn fan_out(exe: &Path, plan: &Plan, report: &mut Report) {
    let &(w, h) = plan.live_sizes.first().unwrap_or(&(640, 480));
    step(&format!("fan-out at {w}×{h}, scrolling text"));
    let mut stack = match live::Stack::start(exe, "scroll", w, h).await {
        Ok(s) => s,
        Err(e) => {
            report.add("fan-out", "—", Figure::Missing(format!("{e:#}")));
            return;
        }
    };
    let mut by_count = Vec::new();
    let mut viewers = 1;
    for &want in &plan.viewers {
        while viewers < want {
            if let Err(e) = stack.add_viewer().await {
                report.add(
                    format!("fan-out, {want} viewers"),
                    "—",
                    Figure::Missing(format!("{e:#}")),
                );
                let _ = stack.close().await;
                return;
            }
            viewers += 1;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let cpu = stack.agent_cpu(plan.sample_seconds).await;
        if let Ok(c) = &cpu {
            by_count.push((want, *c));
        }
        report.add(
            format!("agent CPU with {want} viewer(s), {h}p scrolling"),
            "% of one core",
            value(cpu),
        );
    }
    if let (Some(first), Some(last)) = (by_count.first(), by_count.last()) {
        if last.0 > first.0 {
            report
                .add(
                    "each added viewer",
                    "% of one core",
                    Figure::Value((last.1 - first.1) / (last.0 - first.0) as f64),
                )
                .target("≤ 2 %");
        }
    }
    let _ = stack.close().await;
}
