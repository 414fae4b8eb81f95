//! The picture on a poor network (R6): the customer's access link is squeezed, made lossy
//! and cut while the agent shares full motion, and the rep's Chromium must keep decoding
//! (tests/src/network_profiles.rs has the profiles; the bench's network section measures
//! the same ones, with adaptation on and off). The customer's link is a delay line where
//! a profile needs delay (this machine's kernel has no netem).

use std::time::Duration;

use anyhow::{Context, ensure};
use tandem_tests::nat_scene::{
    self, Check, NatScene, PATIENCE, SceneOptions, ServerMode, eventually,
};
use tandem_tests::netns::{Impairment, Nat, TopologySpec};
use tandem_tests::network_profiles::{Run, start_content, start_video};

/// R6 on a poor link: 2 Mbit/s with an 80 ms round trip and 2 % loss; a drop from 10 to 1 Mbit/s mid-stream; a
/// 3-second blackout. Chromium keeps decoding (no stall over 1 s outside the blackout), the
/// encoder's rate comes down to the link within 5 s, and the picture is back by itself
/// after the link (within 9 s here; the bench measures it against its 5 s goal).
#[tokio::test(flavor = "multi_thread")]
async fn r6_the_picture_adapts_to_a_poor_link_and_comes_back_after_a_blackout() -> anyhow::Result<()>
{
    let spec = TopologySpec {
        customer: Nat::PortPreserving,
        rep: Nat::None,
        // The 80 ms round trip, on a kernel without netem too.
        customer_delay_line: true,
        ..TopologySpec::default()
    };
    let scene = NatScene::start("impairment", spec, ServerMode::Embedded).await?;
    nat_scene::sees_the_pattern(&scene.rep).await?;
    let mut video = start_video(env!("CARGO_BIN_EXE_tandem-bench").as_ref(), &scene)?;
    let mut run = Run::new();
    run.watch(&scene, Duration::from_secs(5)).await;
    let busy = run
        .timeline
        .bitrate(Duration::from_secs(1), Duration::from_secs(5));
    ensure!(
        busy.unwrap_or(0.0) > 1_000_000.0,
        "the test video should need more than the links below carry: {busy:?} bit/s"
    );

    // 1. 2 Mbit/s, 40 ms each way, 2 % loss. The 640×480 test video needs about 1.6 Mbit/s, so this
    //    checks decoding under loss (NACK); the rate drop below is what checks adaptation
    //    (without it the encoder keeps 1.6 Mbit/s into 1 Mbit/s and the check fails).
    let lossy = Impairment {
        rate_kbit: Some(2000),
        loss_pct: 2.0,
        delay_ms: 40,
    };
    let outcome = run.shaped(&scene, lossy, Duration::from_secs(20)).await?;
    ensure!(
        outcome.longest_stall <= Duration::from_secs(1),
        "at 2 Mbit/s with 80 ms RTT and 2 % loss the picture stalled: {outcome:?}"
    );
    let mean = outcome
        .mean_sent_mbit()
        .with_context(|| format!("no status lines from the agent: {outcome:?}"))?;
    ensure!(
        mean <= 2.0 * 1.1,
        "the encoder sent {mean:.2} Mbit/s into a 2 Mbit/s link: {outcome:?}"
    );

    // 2. 10 Mbit/s, then 1 Mbit/s mid-stream: within 5 s the encoder is down to it.
    let fast = Impairment {
        rate_kbit: Some(10_000),
        ..Impairment::default()
    };
    run.shaped(&scene, fast, Duration::from_secs(8)).await?;
    let slow = Impairment {
        rate_kbit: Some(1000),
        ..Impairment::default()
    };
    let outcome = run.shaped(&scene, slow, Duration::from_secs(16)).await?;
    ensure!(
        outcome.sent_mbit.len() >= 3,
        "too few status lines: {outcome:?}"
    );
    let worst = outcome.worst_sent_mbit().unwrap_or(f64::MAX);
    ensure!(
        worst <= 1.25,
        "5 s after the link fell to 1 Mbit/s the encoder still sent {worst:.2} Mbit/s: {outcome:?}"
    );
    ensure!(
        outcome.longest_stall <= Duration::from_secs(1),
        "at 1 Mbit/s the picture stalled: {outcome:?}"
    );

    // 3. A 3-second blackout on a clear link.
    scene
        .topology
        .clear_impairment(tandem_tests::netns::Host::Cust)?;
    run.watch(&scene, Duration::from_secs(4)).await;
    let outcome = run
        .blackout(&scene, Duration::from_secs(3), Duration::from_secs(12))
        .await?;
    let recovery = outcome
        .recovery
        .with_context(|| format!("no frame decoded in the 12 s after the blackout: {outcome:?}"))?;
    // The goal, back within 5 s, is the bench's figure (network section, target ≤ 5000
    // ms); here, on a loaded machine, the picture must come back by itself well inside
    // the watch (it took 5.8 to 5.9 s in two of four full runs on 2 busy cores).
    ensure!(
        recovery <= Duration::from_secs(9),
        "the picture came back {recovery:?} after the link did"
    );
    ensure!(
        outcome.longest_stall <= Duration::from_secs(1),
        "after the blackout the picture stalled again: {outcome:?}"
    );
    // The tile said so while nothing came: three seconds of nothing is past its two quiet
    // readings, whatever the browser's ICE thought of the connection.
    ensure!(
        outcome.tile_states.iter().any(|s| s == "reconnecting")
            && outcome.tile_states.last().map(String::as_str) == Some("connected"),
        "the tile across the blackout: {:?}",
        outcome.tile_states
    );
    eprintln!("impairment: the picture came back {recovery:?} after the blackout");
    let _ = video.kill();
    let _ = video.wait();
    Ok(())
}

/// R6, the last step of adaptation: a 1920×1080 screen that scrolls, on a 300 kbit/s link,
/// is too big for the rate even at 10 frames a second, so it goes out at half its width
/// and height (the rep's tile shows 960×540, the customer's agent says so); once the link
/// is fast again it goes out whole.
#[tokio::test(flavor = "multi_thread")]
async fn r6_a_big_screen_on_a_very_slow_link_goes_out_at_half_size_then_whole_again()
-> anyhow::Result<()> {
    let spec = TopologySpec {
        customer: Nat::PortPreserving,
        rep: Nat::None,
        ..TopologySpec::default()
    };
    let options = SceneOptions {
        screen: Some((1920, 1080)),
        ..SceneOptions::default()
    };
    let scene =
        NatScene::start_with_options("impairment-halved", spec, ServerMode::Embedded, options)
            .await?;
    let caption_within = async |want: &str, patience: Duration| {
        eventually(
            &format!("the rep's tile captioned {want}"),
            patience,
            async || {
                let tile = nat_scene::tile(&scene.rep).await?;
                Ok(match tile {
                    Some(t) if t.caption.contains(want) => Check::Done(()),
                    other => Check::NotYet(format!("{other:?}")),
                })
            },
        )
        .await
    };
    let caption = async |want: &str| caption_within(want, PATIENCE).await;
    caption("Ann's screen · 1920×1080").await?;
    let mut content = start_content(
        env!("CARGO_BIN_EXE_tandem-bench").as_ref(),
        &scene,
        "scroll",
    )?;

    let slow = Impairment {
        rate_kbit: Some(300),
        ..Impairment::default()
    };
    scene
        .topology
        .impair(tandem_tests::netns::Host::Cust, slow)?;
    caption("Ann's screen · 960×540").await?;
    ensure!(
        scene
            .agent
            .output()
            .contains("(sent at 960×540: the link is slow)"),
        "the agent tells the customer: {}",
        scene.agent.output()
    );
    scene.rep.screenshot("01-halved").await?;

    scene
        .topology
        .clear_impairment(tandem_tests::netns::Host::Cust)?;
    let lifted = std::time::Instant::now();
    // The rate climbs back on the frames' own evidence (`agent/src/rate.rs`, bursts that
    // arrive together), not at GCC's 8 % a second, which took 52 s here alone and over
    // 60 s in a full run. With frames of three packets or more the rate climbs on their
    // evidence in seconds (the bench's video: 2 s), but scrolling text at the floor rate
    // makes frames of two, so here it is still often GCC's pace: 6 to 80 s seen.
    caption_within("Ann's screen · 1920×1080", 3 * PATIENCE).await?;
    eprintln!(
        "impairment: the whole picture was back {:?} after the link",
        lifted.elapsed()
    );
    scene.rep.screenshot("02-whole-again").await?;
    let _ = content.kill();
    let _ = content.wait();
    Ok(())
}

/// Issue 15's reconnect: mid-share the customer's router gets a new public address (a
/// switch to another Wi-Fi, a new lease), so every NAT mapping is gone and the agent's
/// packets leave from a new address and port. The picture comes back by itself, nobody
/// doing anything, within 5 s; the rep's tile says what goes on meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn r6_a_new_address_for_the_customer_brings_the_picture_back_by_itself() -> anyhow::Result<()>
{
    let spec = TopologySpec {
        customer: Nat::PortPreserving,
        rep: Nat::None,
        ..TopologySpec::default()
    };
    renumbered("impairment-renumbered", spec).await
}

/// The same through the relay (both sides behind symmetric NATs): the agent's TURN
/// allocation belongs to its old address, so the relay path itself is gone and only an
/// ICE restart, with a new allocation, brings the picture back.
#[tokio::test(flavor = "multi_thread")]
async fn r6_a_new_address_for_a_relayed_customer_brings_the_picture_back_by_itself()
-> anyhow::Result<()> {
    let spec = TopologySpec {
        customer: Nat::Symmetric,
        rep: Nat::Symmetric,
        ..TopologySpec::default()
    };
    renumbered("impairment-renumbered-relay", spec).await
}

async fn renumbered(name: &str, spec: TopologySpec) -> anyhow::Result<()> {
    let scene = NatScene::start(name, spec, ServerMode::Embedded).await?;
    nat_scene::sees_the_pattern(&scene.rep).await?;
    let mut video = start_video(env!("CARGO_BIN_EXE_tandem-bench").as_ref(), &scene)?;
    let mut run = Run::new();
    run.watch(&scene, Duration::from_secs(4)).await;
    let mark = scene.agent.output().len();
    let outcome = run.renumbered(&scene, Duration::from_secs(25)).await?;
    let states = &outcome.tile_states;
    eprintln!("impairment: renumbered: {outcome:?}");
    scene.rep.screenshot("after").await?;
    ensure!(
        outcome.longest_stall <= Duration::from_secs(5),
        "after the new address the picture stalled for {:?} (tile states {states:?})",
        outcome.longest_stall
    );
    // Its keyframe requests went to the old address: the agent noticed the silence.
    let after = scene.agent.output();
    let after = after.get(mark..).unwrap_or_default();
    ensure!(
        after.contains("a keyframe unasked"),
        "the agent sent no keyframe unasked to the silent viewer"
    );
    // The agent's WebSocket died silently with the old address: its own ping meets a
    // reset and it resumes its seat.
    eventually(
        "the agent back on the server after the new address",
        PATIENCE,
        async || {
            let output = scene.agent.output();
            let after = output.get(mark..).unwrap_or_default();
            Ok(if after.contains("Reconnected to the support server.") {
                Check::Done(())
            } else {
                Check::NotYet(after.lines().rev().take(3).collect::<Vec<_>>().join(" | "))
            })
        },
    )
    .await?;
    ensure!(
        outcome.received_bps.unwrap_or(0.0) > 500_000.0,
        "the video did not flow after the new address: {outcome:?}"
    );
    ensure!(
        states.last().map(String::as_str) == Some("connected"),
        "the tile ended {states:?}"
    );
    let _ = video.kill();
    let _ = video.wait();
    Ok(())
}

/// The tile tells the truth about a connection that is up but carries no picture: the
/// customer's link lets only small packets through (ICE's checks and RTCP pass, whole
/// video frames do not), so Chromium's connection stays "connected"; the tile says
/// reconnecting until the picture flows again.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_carries_no_picture_is_shown_as_reconnecting() -> anyhow::Result<()> {
    let spec = TopologySpec {
        customer: Nat::PortPreserving,
        rep: Nat::None,
        ..TopologySpec::default()
    };
    let scene = NatScene::start("impairment-starved", spec, ServerMode::Embedded).await?;
    nat_scene::sees_the_pattern(&scene.rep).await?;
    let mut video = start_video(env!("CARGO_BIN_EXE_tandem-bench").as_ref(), &scene)?;
    let tile_is = async |want: &str| {
        eventually(&format!("the rep's tile {want}"), PATIENCE, async || {
            let tile = nat_scene::tile(&scene.rep).await?;
            Ok(match tile {
                Some(t) if t.connection == want => Check::Done(t),
                other => Check::NotYet(format!("{other:?}")),
            })
        })
        .await
    };
    tile_is("connected").await?;
    scene
        .topology
        .starve(tandem_tests::netns::Host::Cust, true)?;
    let starved = tile_is("reconnecting").await?;
    ensure!(
        starved.caption.contains("reconnecting"),
        "the caption says so: {starved:?}"
    );
    scene.rep.screenshot("starved").await?;
    scene
        .topology
        .starve(tandem_tests::netns::Host::Cust, false)?;
    // Connected again only once frames are decoded again.
    tile_is("connected").await?;
    let _ = video.kill();
    let _ = video.wait();
    Ok(())
}
