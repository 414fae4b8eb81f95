//! The console end to end, in headless Chromium: a rep logs in and starts a session (R1);
//! a customer joins by link (C2); a second joins by number, waits and is admitted (C2);
//! chat goes both ways (R11); a third customer beyond the maximum is refused with the
//! message (R4); the rep closes the session page and both customers see that the session
//! ended (R2). Screenshots of each step: target/e2e-artifacts/console/.

use tandem_tests::{ADMIN_PASSWORD, Chromedriver, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rep_and_customers_in_the_browser() -> anyhow::Result<()> {
    let server = Server::start().await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    server.set_limits(2, false).await?;
    assert_ne!(ADMIN_PASSWORD, "rita-password");
    let chrome = Chromedriver::start("console").await?;
    let base = &server.base;

    // R1: the rep logs in and starts a session with "Email" ticked: the invite dialog opens.
    let rep = chrome.browser("rep").await?;
    rep.goto(&format!("{base}/dashboard")).await?;
    rep.fill("#username", "rita").await?; // sent to the login page first
    rep.fill("#password", "rita-password").await?;
    rep.click("#submit").await?;
    rep.wait_text("#me", "Rita Rep").await?;
    rep.screenshot("01-dashboard").await?;
    assert!(
        rep.find("#email").await?.is_selected().await?,
        "Email is on by default"
    );
    rep.click("#start-button").await?;
    rep.find("#invite-dialog[open]").await?;
    rep.screenshot("02-invite-dialog").await?;
    rep.click("#invite-cancel").await?;
    let number = rep.wait_text("#number", " ").await?;
    assert!(
        number.len() == 11 && number.chars().filter(char::is_ascii_digit).count() == 9,
        "{number:?}"
    );
    let link = rep
        .find("#link")
        .await?
        .prop("value")
        .await?
        .unwrap_or_default();
    assert!(link.starts_with(&format!("{base}/j/")), "{link}");
    rep.screenshot("03-session-started").await?;

    // C2: the first customer follows the link and is in at once.
    let ann = chrome.browser("ann").await?;
    ann.join(&link, "Ann").await?;
    ann.find("#in-session").await?;
    rep.wait_text("#participants", "Ann").await?;
    ann.screenshot("04-joined-by-link").await?;

    // C2: the second types the number and waits until the rep admits her.
    let bea = chrome.browser("bea").await?;
    bea.goto(&format!("{base}/join")).await?;
    bea.fill("#number", &number).await?;
    bea.fill("#name", "Bea").await?;
    bea.click("#join-button").await?;
    bea.wait_text("#waiting", "let you into the session")
        .await?;
    bea.screenshot("05-waiting").await?;
    rep.wait_text("#participants", "waiting").await?;
    rep.screenshot("05-waiting").await?;
    rep.click("#participants button.admit").await?;
    bea.find("#in-session").await?;
    bea.wait_text("#participants", "Rita Rep").await?;
    rep.screenshot("06-admitted").await?;

    // R11: chat both ways.
    rep.fill("#chat-text", "Hello from Rita").await?;
    rep.click("#chat-send").await?;
    ann.wait_text("#messages", "Hello from Rita").await?;
    bea.wait_text("#messages", "Hello from Rita").await?;
    ann.fill("#chat-text", "Hi Rita, my printer is broken")
        .await?;
    ann.click("#chat-send").await?;
    rep.wait_text("#messages", "Hi Rita, my printer is broken")
        .await?;
    bea.wait_text("#messages", "my printer is broken").await?;
    rep.screenshot("07-chat").await?;
    ann.screenshot("07-chat").await?;

    // R4: a third customer is one too many; the message says why, and the rep is told.
    let cid = chrome.browser("cid").await?;
    cid.join(&link, "Cid").await?;
    let refusal = cid.wait_text("#join-error", "2 customers").await?;
    assert!(refusal.contains("the most this site allows"), "{refusal}");
    let kept = cid.find("#name").await?.prop("value").await?;
    assert_eq!(
        kept.as_deref(),
        Some("Cid"),
        "what the customer typed is kept"
    );
    cid.screenshot("08-refused").await?;
    rep.wait_text("#notices", "Cid tried to join").await?;
    cid.close().await?;

    // R2: the rep closes the session page (another tab stays open), ending the session.
    let session_tab = rep.client.window().await?;
    let other = rep.client.new_window(true).await?;
    rep.client.switch_to_window(session_tab).await?;
    rep.client.close_window().await?;
    rep.client.switch_to_window(other.handle).await?;
    for customer in [&ann, &bea] {
        customer
            .wait_text("#ended", "The session has ended")
            .await?;
        let reason = customer.text("#ended-reason").await?;
        assert_eq!(reason, "The support rep closed the session.");
        customer.wait_text("#connection", "Session ended").await?;
        customer.screenshot("09-session-ended").await?;
    }
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while server.state.registry.live_count() != 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await?;

    for browser in [rep, ann, bea] {
        browser.close().await?;
    }
    Ok(())
}

/// R2, protocol.md §4.8 "A join sent again": a customer's join goes through to the server
/// but its answer is lost with the connection (a proxy holds it back and then drops the
/// connection, as a poor link does). The join page sends the same join again with its
/// `join_key` and is back in the place the first one made: she is in the session, and the
/// rep sees one Ann, not two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_whose_join_answer_was_lost_is_in_once() -> anyhow::Result<()> {
    use tandem_tests::join_cutter::JoinCutter;
    let server = Server::start().await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    let chrome = Chromedriver::start("console-join-lost").await?;
    let base = &server.base;
    let rep = chrome.browser("rep").await?;
    rep.log_in(base, "rita", "rita-password").await?;
    let (_, link) = rep.start_session(false).await?;

    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse()?;
    let cutter = JoinCutter::start(addr, "join_by_link").await?;
    let through = link.replace(&addr.to_string(), &format!("127.0.0.1:{}", cutter.port));
    anyhow::ensure!(through != link, "{link}");
    let ann = chrome.browser("ann").await?;
    ann.join(&through, "Ann").await?;
    cutter.join_forwarded().await?;
    // The server carried the join out: the rep sees Ann, whose page heard nothing.
    rep.wait_text("#participants", "Ann").await?;
    cutter.cut();

    ann.find("#in-session").await?;
    rep.wait_gone("#participants li[data-name='Ann'] .tag.lost")
        .await?;
    let anns: Vec<String> = rep
        .client
        .execute(
            "return [...document.querySelectorAll('#participants li[data-name]')]
                .map((li) => li.dataset.name).filter((name) => name.startsWith('Ann'));",
            vec![],
        )
        .await?
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    anyhow::ensure!(anns == ["Ann"], "the rep sees {anns:?}");
    ann.screenshot("in-once").await?;
    for browser in [rep, ann] {
        browser.close().await?;
    }
    Ok(())
}
