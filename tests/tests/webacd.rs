//! WebACD end to end in headless Chromium (R10, R11, C3): Rita, a WebACD agent, helps Ann
//! and has a call with her; she transfers the session to the queue Printers with a
//! personal message of exactly 345 characters (the counter says so, and refuses 346).
//! Sam, available in that queue, sees the session waiting on his dashboard with the
//! message, accepts it, and reads the message in the session; Rita is out of the session
//! and the call she started has ended for Ann. Nora, who is no WebACD agent, never sees
//! the option. Screenshots: target/e2e-artifacts/webacd/.

use std::time::Duration;

use serde_json::json;
use tandem_tests::{Chromedriver, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r10_a_transfer_to_a_queue_reaches_the_available_agent_with_the_message()
-> anyhow::Result<()> {
    let server = Server::start().await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    server
        .create_rep("sam", "Sam Support", "sam-password")
        .await?;
    server
        .create_rep("nora", "Nora Novice", "nora-password")
        .await?;
    let ids = server.account_ids().await?;
    for agent in ["rita", "sam"] {
        let id = ids.get(agent).copied().unwrap_or_default();
        server
            .admin_call(
                "PATCH",
                &format!("/api/admin/reps/{id}"),
                json!({"is_webacd": true}),
            )
            .await?;
    }
    let queue = server
        .admin_call("POST", "/api/admin/queues", json!({"name": "Printers"}))
        .await?;
    server
        .admin_call(
            "PUT",
            &format!("/api/admin/queues/{}/members", queue["id"]),
            json!({"members": [ids.get("sam").copied().unwrap_or_default()]}),
        )
        .await?;

    let chrome = Chromedriver::start("webacd").await?;
    // Sam is available for transferred sessions.
    let sam = chrome.media_browser("sam").await?;
    sam.log_in(&server.base, "sam", "sam-password").await?;
    sam.find("#webacd:not([hidden])").await?;
    sam.click("#available").await?;
    sam.wait_text("#agents li[data-agent=sam]", "available")
        .await?;

    // Rita helps Ann, with a call.
    let rita = chrome.media_browser("rita").await?;
    rita.log_in(&server.base, "rita", "rita-password").await?;
    let (_, link) = rita.start_session(false).await?;
    let ann = chrome.media_browser("ann").await?;
    ann.join(&link, "Ann").await?;
    ann.find("#in-session").await?;
    rita.click("#start-call").await?;
    ann.click("#join-call").await?;
    rita.wait_text("#call-status", "2 in the call").await?;
    sam.wait_text("#agents li[data-agent=rita]", "1 session(s)")
        .await?;

    // Nora is no WebACD agent: no transfer option.
    let nora = chrome.browser("nora").await?;
    nora.log_in(&server.base, "nora", "nora-password").await?;
    nora.start_session(false).await?;
    nora.find("#participants li").await?;
    anyhow::ensure!(
        !nora.is_shown("#webacd-transfer").await?,
        "Nora sees the WebACD transfer"
    );
    anyhow::ensure!(
        !nora.is_shown("#webacd").await?,
        "no WebACD on Nora's pages"
    );

    // The counter counts characters as people do; 346 is refused.
    rita.find("#webacd-transfer:not([hidden])")
        .await?
        .click()
        .await?;
    rita.find("#transfer-dialog[open]").await?;
    rita.wait_text("#transfer-queue", "Printers").await?;
    let message = format!(
        "{}é",
        "Printer jams on floor 3. "
            .repeat(14)
            .chars()
            .take(344)
            .collect::<String>()
    );
    anyhow::ensure!(message.chars().count() == 345);
    rita.find("#transfer-message")
        .await?
        .send_keys(&format!("{message}!"))
        .await?;
    rita.wait_text("#transfer-count", "346").await?;
    rita.click("#transfer-ok").await?;
    rita.wait_text("#transfer-error", "346 characters; at most 345")
        .await?;
    rita.screenshot("01-too-long").await?;
    rita.find("#transfer-message")
        .await?
        .send_keys("\u{E003}")
        .await?; // Backspace
    rita.wait_text("#transfer-count", "345").await?;
    rita.click("#transfer-ok").await?;
    rita.wait_text("#transferred h1", "You transferred the session")
        .await?;
    rita.wait_text("#transferred", "the queue Printers").await?;
    rita.screenshot("02-transferred").await?;

    // Ann: Rita is gone and so is the call she started.
    ann.wait_text("#call-status", "No call").await?;
    for _ in 0..50 {
        if !ann.text("#participants").await?.contains("Rita Rep") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::ensure!(
        !ann.text("#participants").await?.contains("Rita Rep"),
        "Rita is still in the session"
    );

    // Sam sees it waiting with the message, and takes it.
    let waiting = sam
        .wait_text(
            "#waiting li[data-number]",
            "from Rita Rep to queue Printers",
        )
        .await?;
    anyhow::ensure!(
        waiting.contains(&message),
        "the message is not shown in full: {waiting}"
    );
    sam.screenshot("03-waiting").await?;
    sam.click("#waiting li[data-number] button.accept").await?;
    sam.wait_text("#transfer-note", &message).await?;
    sam.wait_text("#participants li[data-name='Sam Support']", "Rep")
        .await?;
    sam.find("#end:not([hidden])").await?;
    ann.wait_text("#participants", "Sam Support").await?;
    sam.screenshot("04-accepted").await?;

    for browser in [rita, sam, ann, nora] {
        browser.close().await?;
    }
    Ok(())
}
