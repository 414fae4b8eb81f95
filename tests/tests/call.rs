//! The voice and video call (R11) in headless Chromium with fake microphone and camera:
//! the rep starts it, a customer joins with her camera, each hears (and sees) the other
//! over their own peer connection; mute shows; leaving closes the tiles; ending it ends
//! it for everyone. Screenshots: target/e2e-artifacts/call/.

use std::time::Duration;

use tandem_tests::{Browser, Chromedriver, Server};

/// Bytes of `kind` media this page has received from the other call member so far.
async fn received(browser: &Browser, kind: &str) -> anyhow::Result<u64> {
    let n = browser
        .client
        .execute_async(
            "const [kind] = arguments; const done = arguments[arguments.length - 1];
             (async () => {
               let bytes = 0;
               for (const peer of window.tandem.call.peers.values()) {
                 (await peer.pc.getStats()).forEach((r) => {
                   if (r.type === 'inbound-rtp' && r.kind === kind) bytes += r.bytesReceived;
                 });
               }
               done(bytes);
             })();",
            vec![serde_json::json!(kind)],
        )
        .await?;
    Ok(n.as_u64().unwrap_or(0))
}

async fn until_received(browser: &Browser, kind: &str) -> anyhow::Result<()> {
    let first = received(browser, kind).await?;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if received(browser, kind).await? > first.max(1000) {
            return Ok(());
        }
    }
    anyhow::bail!("{}: no {kind} arrives from the call", browser.person)
}

async fn call_tiles(browser: &Browser) -> anyhow::Result<u64> {
    let n = browser
        .client
        .execute(
            "return document.querySelectorAll('figure.call-tile').length",
            vec![],
        )
        .await?;
    Ok(n.as_u64().unwrap_or(99))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r11_a_call_with_voice_and_camera_mute_leave_and_end() -> anyhow::Result<()> {
    let server = Server::start().await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    let chrome = Chromedriver::start("call").await?;
    let rep = chrome.media_browser("rep").await?;
    rep.log_in(&server.base, "rita", "rita-password").await?;
    let (_, link) = rep.start_session(false).await?;
    let ann = chrome.media_browser("ann").await?;
    ann.join(&link, "Ann").await?;
    ann.find("#in-session").await?;
    ann.wait_text("#call-status", "No call").await?;
    anyhow::ensure!(
        ann.client
            .find_all(fantoccini::Locator::Css("#start-call"))
            .await?
            .is_empty(),
        "a customer cannot start a call"
    );

    rep.click("#start-call").await?;
    ann.wait_text("#call-status", "Call started by Rita Rep · 1 in the call")
        .await?;
    ann.click("#join-call-video").await?;
    rep.wait_text("#call-status", "2 in the call").await?;
    rep.wait_text("#call-status", "Ann (camera)").await?;

    // Each hears the other; the rep sees Ann's camera.
    until_received(&rep, "audio").await?;
    until_received(&ann, "audio").await?;
    until_received(&rep, "video").await?;
    let width = rep
        .client
        .execute("const v = document.querySelector('figure.call-tile video'); return v ? v.videoWidth : 0", vec![])
        .await?;
    anyhow::ensure!(
        width.as_u64().unwrap_or(0) > 0,
        "Ann's camera is not decoded: {width}"
    );
    rep.screenshot("01-in-call").await?;

    // Mute shows for the others.
    rep.click("#mute").await?;
    ann.wait_text("#call-status", "Rita Rep (muted)").await?;
    ann.wait_text("figure.call-tile figcaption", "muted")
        .await?;
    rep.wait_text("#mute", "Unmute").await?;

    // Ann leaves: her tile closes for the rep; the call goes on.
    ann.click("#leave-call").await?;
    rep.wait_text("#call-status", "1 in the call").await?;
    for _ in 0..50 {
        if call_tiles(&rep).await? == 0 && call_tiles(&ann).await? == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::ensure!(
        call_tiles(&rep).await? == 0 && call_tiles(&ann).await? == 0,
        "call tiles stayed"
    );

    // She comes back; the rep ends the call for everyone.
    ann.click("#join-call").await?;
    rep.wait_text("#call-status", "2 in the call").await?;
    until_received(&ann, "audio").await?;
    rep.click("#end-call").await?;
    for browser in [&rep, &ann] {
        browser.wait_text("#call-status", "No call").await?;
    }
    anyhow::ensure!(
        call_tiles(&rep).await? == 0 && call_tiles(&ann).await? == 0,
        "call tiles stayed after the end"
    );
    ann.screenshot("02-ended").await?;
    rep.close().await?;
    ann.close().await?;
    Ok(())
}
