//! The customer's screen reaches the rep across real routers (R6): the server binary on a
//! public address, the agent behind the customer's router, the rep's Chromium behind
//! theirs (tests/src/netns.rs builds the network, tests/src/nat_scene.rs the stage). The
//! customer says yes at the agent's prompt first (C1). Each test checks the decoded
//! picture, the path Chromium's `getStats()` selected, and what each side tells its
//! person. Needs root, as the other network-namespace tests do. Screenshots:
//! target/e2e-artifacts/nat-*/.

use std::time::{Duration, Instant};

use anyhow::ensure;
use tandem_tests::nat_scene::{
    self, COTURN_PORT, Check, EMBEDDED_TURN_PORT, NatScene, PATIENCE, RepChromium, SceneOptions,
    ServerMode, eventually,
};
use tandem_tests::netns::{Host, Nat, TopologySpec};

/// What the agent says once the rep is connected: the sentence it prints when the
/// connection comes up (and its status lines after it).
async fn agent_says_connected(scene: &mut NatScene) -> anyhow::Result<String> {
    scene
        .agent
        .wait_for_within("Rita Rep is connected", PATIENCE)
        .await?;
    let output = scene.agent.output();
    let at = output.rfind("Rita Rep is connected").unwrap_or_default();
    Ok(output[at..].lines().next().unwrap_or_default().to_owned())
}

/// The picture goes through, over a pair that involves a relay, and both the console and
/// the agent say so.
async fn through_the_relay(scene: &mut NatScene) -> anyhow::Result<()> {
    // The scene starts once the customer has said yes.
    let started = Instant::now();
    let tile = nat_scene::sees_the_pattern(&scene.rep).await?;
    let pictured = started.elapsed();
    let pair = nat_scene::wait_for_selected_pair(&scene.rep).await?;
    eprintln!("nat: picture {pictured:?} after consent, on {pair}; tile {tile:?}");
    eprintln!(
        "nat: ICE as the rep saw it:\n{}",
        nat_scene::ice_summary(&scene.rep).await?
    );
    scene.rep.screenshot("01-connected").await?;
    ensure!(
        pair.involves_relay(),
        "no direct path exists here, yet Chromium selected {pair}"
    );
    ensure!(
        tile.path == "relay" && tile.caption.ends_with(" · via relay"),
        "the tile does not say the relay carries it: {tile:?}"
    );
    let said = agent_says_connected(scene).await?;
    ensure!(
        said.contains("through the relay"),
        "the agent told the customer {said:?} (Chromium selected {pair})"
    );
    scene
        .agent
        .wait_for_within("Rita Rep watching through the relay", PATIENCE)
        .await?;
    Ok(())
}

fn both_symmetric() -> TopologySpec {
    TopologySpec {
        customer: Nat::Symmetric,
        rep: Nat::Symmetric,
        ..TopologySpec::default()
    }
}

/// R6 across two symmetric NATs, where neither side's reflexive address is any use to
/// the other: only the relay connects them, and a default install has one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_behind_symmetric_nats_the_picture_goes_through_the_embedded_relay()
-> anyhow::Result<()> {
    let mut scene =
        NatScene::start("nat-symmetric", both_symmetric(), ServerMode::Embedded).await?;
    through_the_relay(&mut scene).await
}

/// R6 when the customer's firewall forwards TCP only: the agent reaches the relay over
/// TURN/TCP (its own tunnel), the rep over UDP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_whose_firewall_drops_udp_connects_over_turn_tcp() -> anyhow::Result<()> {
    let spec = TopologySpec {
        customer: Nat::PortPreserving,
        customer_udp_blocked: true,
        rep: Nat::Symmetric,
        ..TopologySpec::default()
    };
    let mut scene = NatScene::start("nat-udp-blocked", spec, ServerMode::Embedded).await?;
    through_the_relay(&mut scene).await?;
    // The agent can send no UDP at all: its end of the pair is its relay candidate…
    let pair = nat_scene::wait_for_selected_pair(&scene.rep).await?;
    ensure!(
        pair.remote == "relay",
        "the agent's end is not its relay candidate: {pair}"
    );
    // …which it holds over a TCP connection from the customer's public address to the
    // relay's port.
    let customer = scene.topology.public_ip(Host::Cust);
    let server = scene.topology.server_ip();
    let established = scene
        .ss(Host::Srv, &["-Htn", "state", "established"])
        .await?;
    let to_relay = format!("{server}:{EMBEDDED_TURN_PORT}");
    ensure!(
        established.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.len() >= 4
                && words[2] == to_relay
                && words[3].starts_with(&format!("{customer}:"))
        }),
        "no TCP connection from {customer} to {to_relay} in srv; established: {established}"
    );
    Ok(())
}

/// R6 with the server pointed at an external coturn (`use-auth-secret`): the server
/// hands out coturn's URLs and credentials made with the shared secret, and runs no TURN
/// of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_coturn_with_a_shared_secret_works_the_same() -> anyhow::Result<()> {
    let secret = "a-secret-shared-with-coturn".to_owned();
    let mut scene = NatScene::start(
        "nat-coturn",
        both_symmetric(),
        ServerMode::External { secret },
    )
    .await?;
    let udp = scene.ss(Host::Srv, &["-Hlun"]).await?;
    ensure!(
        !udp.contains(&format!(":{EMBEDDED_TURN_PORT} ")),
        "the embedded service runs beside coturn: {udp}"
    );
    through_the_relay(&mut scene).await?;
    let pair = nat_scene::wait_for_selected_pair(&scene.rep).await?;
    if pair.local == "relay" {
        let url = pair.local_url.clone().unwrap_or_default();
        ensure!(
            url.contains(&format!(":{COTURN_PORT}")),
            "the rep's relay candidate is not coturn's: {pair}"
        );
    }
    // coturn took the credentials the server made with the shared secret.
    let coturn = scene
        .coturn
        .as_ref()
        .map(|c| c.output())
        .unwrap_or_default();
    ensure!(
        coturn.contains("incoming packet ALLOCATE processed, success"),
        "coturn logged no successful allocation: {coturn}"
    );
    Ok(())
}

/// R6 with Chromium's defaults: a rep on a public address whose host candidates are
/// mDNS names that the agent cannot resolve still connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rep_on_a_public_address_with_mdns_hidden_host_candidates_connects() -> anyhow::Result<()>
{
    let spec = TopologySpec {
        customer: Nat::PortPreserving,
        rep: Nat::None,
        ..TopologySpec::default()
    };
    let options = SceneOptions {
        rep_chromium: RepChromium::MdnsHidden,
        ..SceneOptions::default()
    };
    let mut scene =
        NatScene::start_with_options("nat-mdns", spec, ServerMode::Embedded, options).await?;
    let started = Instant::now();
    let tile = nat_scene::sees_the_pattern(&scene.rep).await?;
    // What this test is about: the rep's browser gave out no host address of its own.
    let hosts = nat_scene::offered_host_addresses(&scene.rep).await?;
    ensure!(
        !hosts.is_empty() && hosts.iter().all(|h| h.ends_with(".local")),
        "the rep's Chromium offered host candidates {hosts:?}, not only mDNS names"
    );
    let pair = nat_scene::wait_for_selected_pair(&scene.rep).await?;
    eprintln!(
        "nat: mdns: picture after {:?} on {pair}; tile {tile:?}",
        started.elapsed()
    );
    scene.rep.screenshot("01-connected").await?;
    agent_says_connected(&mut scene).await?;
    Ok(())
}

/// R6's failure side: with no relay across two symmetric NATs nothing connects, and
/// both people are told why instead of watching a spinner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_relay_a_failure_says_why_on_both_sides() -> anyhow::Result<()> {
    let mut scene = NatScene::start("nat-no-relay", both_symmetric(), ServerMode::NoTurn).await?;
    let rep = &scene.rep;
    let started = Instant::now();
    // Every state the tile goes through, with when, for the failure message.
    let mut seen: Vec<String> = Vec::new();
    let tile = eventually(
        "the rep's tile says no path was found",
        Duration::from_secs(30),
        async || {
            let now = nat_scene::tile(rep).await?;
            let said = format!("{now:?}");
            if !seen.last().is_some_and(|last| last.ends_with(&said)) {
                seen.push(format!("at {:?}: {said}", started.elapsed()));
            }
            Ok(match now {
                Some(t)
                    if t.caption
                        .contains("no connection: no network path was found") =>
                {
                    Check::Done(t)
                }
                _ => Check::NotYet(format!("the tile went through\n  {}", seen.join("\n  "))),
            })
        },
    )
    .await?;
    rep.screenshot("01-failed").await?;
    eprintln!("nat: no relay: tile {tile:?}");
    ensure!(
        tile.connection == "failed",
        "the caption says it failed, data-connection says {:?}",
        tile.connection
    );
    ensure!(
        tile.caption.starts_with("Ann's screen · ")
            && tile
                .caption
                .contains("No relay (TURN) server is configured."),
        "the caption does not say whose screen, or why: {:?}",
        tile.caption
    );
    scene
        .agent
        .wait_for_within(
            "Rita Rep could not connect: no network path was found",
            PATIENCE,
        )
        .await?;
    scene
        .agent
        .wait_for("No relay (TURN) server is configured.")
        .await?;
    ensure!(
        !scene.agent.output().contains("Rita Rep is connected"),
        "the agent says the rep connected without any path: {}",
        scene.agent.output()
    );
    Ok(())
}
