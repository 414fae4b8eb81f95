//! Shares in the browser (R6, R7): the rep shares a screen from Chromium (fake capture
//! source); every customer's page decodes it over WebRTC through the server's relay;
//! switching the active customer ends it and closes every tile; so does Stop sharing.
//! Screenshots: target/e2e-artifacts/shares/.

use tandem_tests::{AgentProcess, Browser, Chromedriver, PatternDisplay, Server};

/// Wait until this page decodes a share from `owner` at `size` with frames advancing.
async fn sees_share(viewer: &Browser, owner: &str, size: &str) -> anyhow::Result<()> {
    viewer
        .wait_text(
            "figure.tile figcaption",
            &format!("{owner}'s screen · {size}"),
        )
        .await?;
    let frames = |v: &Browser| {
        let client = v.client.clone();
        async move {
            let n = client
                .execute("const t = document.querySelector('figure.tile'); return t ? Number(t.dataset.frames || 0) : 0", vec![])
                .await?;
            anyhow::Ok(n.as_u64().unwrap_or(0))
        }
    };
    let first = frames(viewer).await?;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let later = frames(viewer).await?;
    anyhow::ensure!(
        later > first,
        "{}: frames stopped at {first} → {later}",
        viewer.person
    );
    Ok(())
}

async fn tiles(browser: &Browser) -> anyhow::Result<u64> {
    let n = browser
        .client
        .execute(
            "return document.querySelectorAll('figure.tile').length",
            vec![],
        )
        .await?;
    Ok(n.as_u64().unwrap_or(99))
}

async fn until_no_tiles(browser: &Browser) -> anyhow::Result<()> {
    for _ in 0..100 {
        if tiles(browser).await? == 0 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("{}: the tile never closed", browser.person)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reps_screen_reaches_every_customer_and_a_switch_ends_it() -> anyhow::Result<()> {
    let server = Server::start().await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    server.set_limits(3, false).await?;
    let chrome = Chromedriver::start("shares").await?;
    let rep = chrome.media_browser("rep").await?;
    rep.log_in(&server.base, "rita", "rita-password").await?;
    let (_, link) = rep.start_session(false).await?;
    let mut customers = vec![];
    for name in ["Ann", "Bea"] {
        let customer = chrome.media_browser(&name.to_lowercase()).await?;
        customer.join(&link, name).await?;
        customer.find("#in-session").await?;
        rep.wait_text("#participants", name).await?;
        customers.push(customer);
    }

    // R6: the rep's screen, seen and decoded by every customer.
    rep.click("#share-screen").await?;
    rep.find("#stop-share:not([hidden])").await?;
    for customer in &customers {
        sees_share(customer, "Rita Rep", "800×450").await?;
        customer.screenshot("01-sees-rep-screen").await?;
    }

    // R7: switching the active customer ends every share at once, in every browser.
    rep.click("#participants li[data-name=Bea] button.select")
        .await?;
    for customer in &customers {
        until_no_tiles(customer).await?;
    }
    rep.find("#share-screen:not([hidden])").await?;
    customers[0].screenshot("02-after-switch").await?;

    // Shared again, then stopped by the rep: the tiles close again.
    rep.click("#share-screen").await?;
    sees_share(&customers[1], "Rita Rep", "800×450").await?;
    rep.click("#stop-share").await?;
    for customer in &customers {
        until_no_tiles(customer).await?;
    }
    for browser in customers.into_iter().chain([rep]) {
        browser.close().await?;
    }
    Ok(())
}

/// R4, R5, R7 with real agents: Ann and Bob each run the agent on their own X display.
/// The rep views Ann, then selects Bob: Ann's agent stops capturing and says so, Ann's
/// tile closes in every browser, and Bob's screen can be viewed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r7_switching_customers_stops_the_first_agent_and_shows_the_second() -> anyhow::Result<()> {
    let ann_screen = PatternDisplay::start(640, 480)?;
    let bob_screen = PatternDisplay::start(320, 240)?;
    let server = Server::start().await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    server.set_limits(3, false).await?;
    let chrome = Chromedriver::start("switch-agents").await?;
    let rep = chrome.media_browser("rep").await?;
    rep.log_in(&server.base, "rita", "rita-password").await?;
    let (_, link) = rep.start_session(false).await?;

    // Ann comes first and is the active customer: her agent asks, she shares.
    let mut ann = AgentProcess::spawn(&ann_screen.display, &["join", &link, "--name", "Ann"])?;
    ann.answer("y").await?;
    sees_share(&rep, "Ann", "640×480").await?;
    // Bob's agent waits its turn and captures nothing.
    let mut bob = AgentProcess::spawn(&bob_screen.display, &["join", &link, "--name", "Bob"])?;
    bob.wait_for("helping another customer now").await?;
    // A third customer watches from her browser.
    let cara = chrome.media_browser("cara").await?;
    cara.join(&link, "Cara").await?;
    sees_share(&cara, "Ann", "640×480").await?;
    rep.screenshot("01-viewing-ann").await?;

    rep.click("#participants li[data-name=Bob] button.select")
        .await?;
    ann.wait_for(
        "Sharing stopped: the support rep turned to another customer. Nothing is captured now.",
    )
    .await?;
    for browser in [&rep, &cara] {
        until_no_tiles(browser).await?;
    }
    // No more frames leave Ann's agent: its status line (every 2 s while capturing) stops.
    let after_stop = ann.output().len();
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    let later = ann.output()[after_stop..].to_owned();
    anyhow::ensure!(
        !later.contains(" fps · "),
        "Ann's agent still reports frames after the switch: {later}"
    );

    bob.wait_for("It is your turn").await?;
    bob.answer("y").await?;
    for browser in [&rep, &cara] {
        sees_share(browser, "Bob", "320×240").await?;
    }
    rep.screenshot("02-viewing-bob").await?;
    anyhow::ensure!(
        tiles(&rep).await? == 1,
        "only Bob's screen is shown after the switch"
    );

    ann.kill();
    bob.kill();
    rep.close().await?;
    cara.close().await?;
    Ok(())
}
