//! HTTPS in the browser (issue 14): the server serves HTTPS itself with a certificate made
//! at test time, which Chromium trusts through its key's hash; at a real host name (not
//! localhost) the rep's page is a secure context, so sharing their screen works and a
//! customer decodes it. The same console over plain HTTP at that name is not a secure
//! context: the browser offers no screen capture and no microphone, and the console says
//! why. Screenshots: target/e2e-artifacts/https/ and https-refused/.

use std::time::Duration;

use tandem_tests::{AgentProcess, Browser, Chromedriver, PatternDisplay, Server};

const WAIT: Duration = Duration::from_secs(30);

async fn script(browser: &Browser, code: &str) -> anyhow::Result<serde_json::Value> {
    Ok(browser.client.execute(code, vec![]).await?)
}

/// Wait until this page decodes `owner`'s screen and its frames keep advancing.
async fn sees_share(viewer: &Browser, owner: &str) -> anyhow::Result<()> {
    viewer
        .wait_text("figure.tile figcaption", &format!("{owner}'s screen · "))
        .await?;
    let frames = "const t = document.querySelector('figure.tile'); \
                  return t ? Number(t.dataset.frames || 0) : 0";
    let first = script(viewer, frames).await?.as_u64().unwrap_or(0);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = script(viewer, frames).await?.as_u64().unwrap_or(0);
        if now > first + 5 {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            let shot = viewer.screenshot("failure").await.ok();
            anyhow::bail!(
                "{}: frames stopped at {first} → {now} (screenshot {shot:?})",
                viewer.person
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_the_reps_screen_share_reaches_a_customer() -> anyhow::Result<()> {
    let server = Server::start_https().await?;
    anyhow::ensure!(server.base.starts_with("https://tandem.test:"));
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    let chrome = Chromedriver::start("https").await?;
    let flags = server.chromium_flags();
    let rep = chrome.media_browser_with("rep", &flags).await?;
    rep.log_in(&server.base, "rita", "rita-password").await?;
    let page = script(
        &rep,
        "return [location.protocol, window.isSecureContext, \
         Boolean(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia)]",
    )
    .await?;
    anyhow::ensure!(
        page == serde_json::json!(["https:", true, true]),
        "the console over HTTPS is not a secure context with screen capture: {page}"
    );
    let (_, link) = rep.start_session(false).await?;
    anyhow::ensure!(
        link.starts_with(&format!("{}/j/", server.base)),
        "the join link is not on HTTPS: {link}"
    );

    let customer = chrome.media_browser_with("ann", &flags).await?;
    customer.join(&link, "Ann").await?;
    customer.find("#in-session").await?;
    rep.wait_text("#participants", "Ann").await?;

    rep.click("#share-screen").await?;
    rep.find("#stop-share:not([hidden])").await?;
    sees_share(&customer, "Rita Rep").await?;
    rep.screenshot("01-sharing-over-https").await?;
    customer.screenshot("01-sees-rep-screen").await?;
    rep.click("#stop-share").await?;

    // The agent joins over wss:// too, trusting the certificate as a system CA would be
    // (SSL_CERT_FILE); it has no host-resolver rules, so it uses the address.
    let screen = PatternDisplay::start(640, 480)?;
    let cert = server
        .cert_file
        .as_ref()
        .and_then(|p| p.to_str())
        .ok_or_else(|| anyhow::anyhow!("no certificate file"))?;
    let agent_link = link.replacen("tandem.test", "127.0.0.1", 1);
    let mut bob = AgentProcess::spawn_with_env(
        &screen.display,
        &["join", &agent_link, "--name", "Bob"],
        &[("SSL_CERT_FILE", cert)],
    )?;
    rep.wait_text("#participants li[data-name=Bob]", "agent")
        .await?;
    rep.click("#participants li[data-name=Bob] button.select")
        .await?;
    bob.answer("y").await?;
    sees_share(&rep, "Bob").await?;
    rep.screenshot("02-agent-over-wss").await?;
    for browser in [customer, rep] {
        browser.close().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_plain_http_away_from_loopback_the_console_says_sharing_needs_https()
-> anyhow::Result<()> {
    let server = Server::start().await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    let base = server.base_at_test_host();
    let chrome = Chromedriver::start("https-refused").await?;
    let rep = chrome
        .media_browser_with("rep", &server.chromium_flags())
        .await?;
    rep.log_in(&base, "rita", "rita-password").await?;
    let page = script(&rep, "return [location.protocol, window.isSecureContext]").await?;
    anyhow::ensure!(
        page == serde_json::json!(["http:", false]),
        "expected a plain-HTTP page that is not a secure context: {page}"
    );
    rep.start_session(false).await?;

    rep.click("#share-screen").await?;
    rep.wait_text(
        "#notices",
        "Screen sharing needs a secure (HTTPS) connection",
    )
    .await?;
    rep.wait_text("#notices", "tandem.test").await?;
    anyhow::ensure!(
        rep.is_shown("#share-screen").await? && !rep.is_shown("#stop-share").await?,
        "the share must not have started"
    );
    rep.screenshot("01-share-refused").await?;

    rep.click("#start-call").await?;
    rep.wait_text("#notices", "A call needs a secure (HTTPS) connection")
        .await?;
    rep.wait_text("#call-status", "No call.").await?;
    rep.screenshot("02-call-refused").await?;
    rep.close().await?;
    Ok(())
}
