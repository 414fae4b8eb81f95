//! The network section: the poor-network profiles of tests/src/network_profiles.rs, each
//! with the agent's adaptation on (ours) and off (`TANDEM_AGENT_NO_ADAPTATION`, in the
//! peer column, so the ratio is the gain), and what the embedded relay costs: the round
//! trip it adds and the server's CPU per Mbit/s it relays. Real namespaces, routers, the
//! server binary, the agent and Chromium (tests/src/nat_scene.rs); needs root.

use std::path::Path;
use std::time::Duration;

use tandem_tests::nat_scene::{self, NatScene, SceneOptions, ServerMode};
use tandem_tests::netns::{Host, Impairment, Nat, TopologySpec};
use tandem_tests::network_profiles::{Outcome, Run, start_content, start_video};

use crate::report::{Figure, Report, cpu_seconds_of};
use crate::step;

/// The three profiles' outcomes for one agent setting.
struct Profiles {
    lossy: Outcome,
    drop: Outcome,
    /// Back to 10 Mbit/s after the drop: how long until the full-motion rate arrives.
    climb: Outcome,
    blackout: Outcome,
    /// Glass-to-glass samples (ms) on the lossy link and on the 1 Mbit/s one.
    lossy_glass: anyhow::Result<Vec<f64>>,
    drop_glass: anyhow::Result<Vec<f64>>,
}

async fn profiles(exe: &Path, smoke: bool, adaptive: bool) -> anyhow::Result<Profiles> {
    let spec = TopologySpec {
        customer: Nat::PortPreserving,
        rep: Nat::None,
        // The 80 ms round trip, on a kernel without netem too.
        customer_delay_line: true,
        ..TopologySpec::default()
    };
    let options = SceneOptions {
        agent_env: if adaptive {
            Vec::new()
        } else {
            vec![("TANDEM_AGENT_NO_ADAPTATION".into(), "1".into())]
        },
        ..SceneOptions::default()
    };
    let name = if adaptive {
        "bench-network"
    } else {
        "bench-network-fixed"
    };
    let scene = NatScene::start_with_options(name, spec, ServerMode::Embedded, options).await?;
    nat_scene::sees_the_pattern(&scene.rep).await?;
    let mut video = start_video(exe, &scene)?;
    // The clock code over the video: the video loads the link, the strip is timed.
    let mut clock = start_content(exe, &scene, "clock-strip")?;
    // The smoke run (in `cargo xtask test`) only keeps the section from rotting: each
    // step for a few seconds, its figures meaningless.
    let glass_seconds = if smoke { 1.0 } else { 6.0 };
    let seconds = |full: u64| Duration::from_secs(if smoke { full.min(3) } else { full });
    let mut run = Run::new();
    run.watch(&scene, Duration::from_secs(5)).await;
    // What the video needs on an open link (90 % of it counts as back, for the climb),
    // after the start's keyframe.
    let unshaped = run
        .timeline
        .bitrate(Duration::from_secs(2), Duration::from_secs(5))
        .unwrap_or(1_500_000.0);
    let lossy = run
        .shaped(
            &scene,
            Impairment {
                rate_kbit: Some(2000),
                loss_pct: 2.0,
                delay_ms: 40,
            },
            seconds(20),
        )
        .await?;
    // Still on the lossy link.
    let lossy_glass = crate::live::glass_to_glass(&scene.rep, glass_seconds).await;
    let fast = Impairment {
        rate_kbit: Some(10_000),
        ..Impairment::default()
    };
    run.shaped(&scene, fast, seconds(8)).await?;
    let slow = Impairment {
        rate_kbit: Some(1000),
        ..Impairment::default()
    };
    let drop = run.shaped(&scene, slow, seconds(16)).await?;
    let drop_glass = crate::live::glass_to_glass(&scene.rep, glass_seconds).await;
    let climb = run
        .widened(&scene, fast, seconds(20), 0.9 * unshaped)
        .await?;
    scene.topology.clear_impairment(Host::Cust)?;
    run.watch(&scene, Duration::from_secs(3)).await;
    let blackout = run
        .blackout(&scene, Duration::from_secs(3), seconds(12))
        .await?;
    for content in [&mut video, &mut clock] {
        let _ = content.kill();
        let _ = content.wait();
    }
    Ok(Profiles {
        lossy,
        drop,
        climb,
        blackout,
        lossy_glass,
        drop_glass,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn opt(v: Option<f64>, why: &str) -> Figure {
    v.map_or_else(|| Figure::Missing(why.into()), Figure::Value)
}

pub async fn section(exe: &Path, smoke: bool, report: &mut Report) {
    step("network: poor-link profiles, adaptation on");
    let on = profiles(exe, smoke, true).await;
    // The smoke run's figures mean nothing and the switch is one environment variable:
    // it runs the profiles once, with adaptation on.
    let off = if smoke {
        None
    } else {
        step("network: poor-link profiles, adaptation off");
        Some(profiles(exe, smoke, false).await)
    };
    let (on, off) = match (on, off.transpose()) {
        (Ok(on), Ok(off)) => (on, off),
        (on, off) => {
            let why = [on.err(), off.err()]
                .into_iter()
                .flatten()
                .map(|e| format!("{e:#}"))
                .collect::<Vec<_>>()
                .join("; ");
            report.add("network profiles", "—", Figure::Missing(why));
            return;
        }
    };
    let off_name = "adaptation off";
    // The same figure without adaptation, where it was measured.
    let without = |figure: &dyn Fn(&Profiles) -> Figure| {
        off.as_ref().map_or_else(
            || Figure::Missing("not run in the smoke run".into()),
            figure,
        )
    };
    type Pick = fn(&Profiles) -> &Outcome;
    let profiles: [(&str, Pick); 3] = [
        ("2 Mbit/s, 80 ms RTT, 2 % loss", |p| &p.lossy),
        ("10 → 1 Mbit/s", |p| &p.drop),
        ("3 s blackout", |p| &p.blackout),
    ];
    for (profile, pick) in profiles {
        report
            .add(
                format!("network {profile}: longest stall (after 5 s / after recovery)"),
                "ms",
                Figure::Value(ms(pick(&on).longest_stall)),
            )
            .peer(
                off_name,
                without(&|p| Figure::Value(ms(pick(p).longest_stall))),
            )
            .target("≤ 1000");
        let freeze = |o: &Outcome| opt(o.freezes.map(|(_, s)| s * 1000.0), "no getStats freezes");
        report
            .add(
                format!("network {profile}: Chromium freeze time"),
                "ms",
                freeze(pick(&on)),
            )
            .peer(off_name, without(&|p| freeze(pick(p))));
    }
    for (profile, cap, pick) in [
        ("2 Mbit/s, 80 ms RTT, 2 % loss", 2.0, profiles[0].1),
        ("10 → 1 Mbit/s", 1.0, profiles[1].1),
    ] {
        let mean = |o: &Outcome| opt(o.mean_sent_mbit(), "no status lines");
        report
            .add(
                format!("network {profile}: encoder rate from 5 s on (cap {cap} Mbit/s)"),
                "Mbit/s",
                mean(pick(&on)),
            )
            .peer(off_name, without(&|p| mean(pick(p))))
            .target("≤ the cap");
        let got = |o: &Outcome| opt(o.received_bps.map(|b| b / 1e6), "no readings");
        report
            .add(
                format!("network {profile}: received by the rep"),
                "Mbit/s",
                got(pick(&on)),
            )
            .peer(off_name, without(&|p| got(pick(p))));
    }
    let recovery = |o: &Outcome| {
        opt(
            o.recovery.map(ms),
            "no frame decoded in the time watched after the blackout",
        )
    };
    report
        .add(
            "network 3 s blackout: picture back after the link",
            "ms",
            recovery(&on.blackout),
        )
        .peer(off_name, without(&|p| recovery(&p.blackout)))
        .target("≤ 5000");
    let climb = |o: &Outcome| {
        opt(
            o.recovery.map(ms),
            "the full-motion rate did not arrive in the time watched",
        )
    };
    report
        .add(
            "network 1 → 10 Mbit/s: full-motion rate back at the rep (90 % of unshaped)",
            "ms",
            climb(&on.climb),
        )
        .peer(off_name, without(&|p| climb(&p.climb)));
    type PickGlass = fn(&Profiles) -> &anyhow::Result<Vec<f64>>;
    let glasses: [(&str, PickGlass); 2] = [
        ("2 Mbit/s, 80 ms RTT, 2 % loss", |p| &p.lossy_glass),
        ("10 → 1 Mbit/s, at 1", |p| &p.drop_glass),
    ];
    for (profile, pick) in glasses {
        let glass = |g: &anyhow::Result<Vec<f64>>| match g {
            Ok(samples) => Figure::of(samples),
            Err(e) => Figure::Missing(format!("{e:#}")),
        };
        report
            .add(
                format!("network {profile}: glass-to-glass (video under a clock strip)"),
                "ms",
                glass(pick(&on)),
            )
            .peer(off_name, without(&|p| glass(pick(p))));
    }
    report.notes.push(
        "network: the customer's access link is a delay line in the bench's process (tap \
         devices; this kernel has no netem), 40 ms each way on the 2 Mbit/s profile; rates \
         are tbf with a 200 ms queue, loss and blackouts nftables drop rules on that link."
            .into(),
    );
    relay(exe, smoke, report).await;
}

/// The relay's cost: both sides behind symmetric NATs, so the picture goes through the
/// embedded TURN service.
async fn relay(exe: &Path, smoke: bool, report: &mut Report) {
    step("network: through the relay");
    let measured = async {
        let spec = TopologySpec {
            customer: Nat::Symmetric,
            rep: Nat::Symmetric,
            ..TopologySpec::default()
        };
        let direct_rtt = direct_rtt().await;
        let scene = NatScene::start("bench-relay", spec, ServerMode::Embedded).await?;
        nat_scene::sees_the_pattern(&scene.rep).await?;
        let pair = nat_scene::wait_for_selected_pair(&scene.rep).await?;
        anyhow::ensure!(
            pair.involves_relay(),
            "the path did not go through the relay: {pair:?}"
        );
        let mut video = start_video(exe, &scene)?;
        let mut run = Run::new();
        run.watch(&scene, Duration::from_secs(2)).await;
        let pid = scene.server.pid().unwrap_or(0);
        let cpu_before = cpu_seconds_of(pid);
        let from = Duration::from_secs(2);
        run.watch(&scene, Duration::from_secs(if smoke { 4 } else { 15 }))
            .await;
        let to = from + Duration::from_secs(if smoke { 4 } else { 15 });
        let cpu = cpu_seconds_of(pid) - cpu_before;
        let mbit = run.timeline.bitrate(from, to).unwrap_or(0.0) / 1e6;
        let relay_rtt = nat_scene::round_trip_ms(&scene.rep).await;
        let _ = video.kill();
        let _ = video.wait();
        anyhow::Ok((
            cpu / (to - from).as_secs_f64() * 100.0,
            mbit,
            relay_rtt,
            direct_rtt,
        ))
    }
    .await;
    match measured {
        Ok((cpu_pct, mbit, relay_rtt, direct_rtt)) => {
            report.add(
                "relay: server CPU per Mbit/s relayed",
                "% of a core",
                if mbit > 0.0 {
                    Figure::Value(cpu_pct / mbit)
                } else {
                    Figure::Missing("nothing relayed".into())
                },
            );
            report.add("relay: media relayed", "Mbit/s", Figure::Value(mbit));
            report
                .add(
                    "relay: round trip through the relay",
                    "ms",
                    opt(relay_rtt, "no RTT in getStats"),
                )
                .peer("direct path", opt(direct_rtt, "no RTT in getStats"));
        }
        Err(e) => {
            report.add("relay", "—", Figure::Missing(format!("{e:#}")));
        }
    }
}

/// The round trip on a direct path between the same two kinds of site, for comparison.
async fn direct_rtt() -> Option<f64> {
    let spec = TopologySpec {
        customer: Nat::PortPreserving,
        rep: Nat::None,
        ..TopologySpec::default()
    };
    let scene = NatScene::start("bench-direct", spec, ServerMode::Embedded)
        .await
        .ok()?;
    nat_scene::sees_the_pattern(&scene.rep).await.ok()?;
    // Chromium reports a round trip once its first STUN consent check is answered.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(rtt) = nat_scene::round_trip_ms(&scene.rep).await {
            return Some(rtt);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
