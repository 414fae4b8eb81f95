//! Invitations (R1, R3) in headless Chromium against a real SMTP server (aiosmtpd):
//! the email arrives with what the invitee needs and its link gets them in; a failed
//! one says why and can be retried; bad addresses are refused clearly.
//! Screenshots: target/e2e-artifacts/invitations-*/.

use serde_json::{Value, json};
use tandem_tests::{Chromedriver, Server, SmtpSink};

async fn server_with_rep(smtp_port: Option<u16>) -> anyhow::Result<Server> {
    let server = Server::start().await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    if let Some(port) = smtp_port {
        server
            .admin_call(
                "PUT",
                "/api/admin/mail",
                json!({"host": "127.0.0.1", "port": port, "tls": "none",
                       "from": "Tandem Support <support@example.com>"}),
            )
            .await?;
    }
    Ok(server)
}

fn text(message: &Value, field: &str) -> String {
    message[field].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emailed_customer_follows_the_link_into_the_session() -> anyhow::Result<()> {
    let smtp = SmtpSink::start(SmtpSink::free_port()?).await?;
    let server = server_with_rep(Some(smtp.port)).await?;
    let chrome = Chromedriver::start("invitations-email").await?;
    let rep = chrome.browser("rep").await?;
    rep.log_in(&server.base, "rita", "rita-password").await?;

    // R1: with "Email" ticked the invite dialog opens by itself; R3: Customer, address, OK.
    let (number, link) = rep.start_session(true).await?;
    rep.find("#invite-dialog[open]").await?;
    rep.click("input[name=invitee][value=customer]").await?;
    rep.fill("#invite-address", "ann@example.com").await?;
    rep.screenshot("01-invite-dialog").await?;
    rep.click("#invite-ok").await?;
    rep.wait_text("#invitations", "sent").await?;
    rep.screenshot("02-sent").await?;

    let mail = smtp.message(1).await?;
    assert_eq!(mail["recipients"], json!(["ann@example.com"]));
    assert_eq!(
        text(&mail, "subject"),
        "Rita Rep invites you to a support session"
    );
    assert!(text(&mail, "from").contains("support@example.com"));
    for part in ["text", "html"] {
        let body = text(&mail, part);
        assert!(body.contains("Rita Rep"), "{part}: {body}");
        assert!(
            body.contains(&number),
            "{part} has the number {number}: {body}"
        );
        assert!(body.contains(&link), "{part} has the link: {body}");
        assert!(
            body.contains(&format!("{}/join", server.base)),
            "{part}: {body}"
        );
    }

    // The customer opens the link from the email and is in.
    let emailed_link = text(&mail, "text")
        .lines()
        .find(|l| l.contains("/j/"))
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let ann = chrome.browser("ann").await?;
    ann.join(&emailed_link, "Ann").await?;
    ann.find("#in-session").await?;
    rep.wait_text("#participants", "Ann").await?;
    ann.screenshot("03-joined-from-email").await?;

    // A rep invitation leads through login to Assist Session.
    rep.click("#invite").await?;
    rep.click("input[name=invitee][value=support_rep]").await?;
    rep.fill("#invite-address", "sam@example.com").await?;
    rep.click("#invite-ok").await?;
    let mail = smtp.message(2).await?;
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    assert!(text(&mail, "subject").contains(&number), "{mail}");
    assert!(
        text(&mail, "text").contains(&format!("{}/session/{digits}?assist=1", server.base)),
        "{mail}"
    );

    for browser in [rep, ann] {
        browser.close().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_invitation_says_why_and_a_retry_succeeds() -> anyhow::Result<()> {
    let port = SmtpSink::free_port()?; // nothing listens there yet
    let server = server_with_rep(Some(port)).await?;
    let chrome = Chromedriver::start("invitations-retry").await?;
    let rep = chrome.browser("rep").await?;
    rep.log_in(&server.base, "rita", "rita-password").await?;
    rep.start_session(false).await?;

    // Bad addresses are refused with a clear message.
    for address in ["ann", "ann@localhost", "ann@example.com, eve@example.com"] {
        rep.click("#invite").await?;
        rep.fill("#invite-address", address).await?;
        rep.click("#invite-ok").await?;
        if !address.contains('@') {
            rep.wait_text("#invite-error", "Type an email address")
                .await?;
            rep.click("#invite-cancel").await?;
        } else {
            rep.wait_text("#notices", "is not an email address").await?;
        }
    }
    rep.screenshot("01-bad-address").await?;

    rep.click("#invite").await?;
    rep.fill("#invite-address", "ann@example.com").await?;
    rep.click("#invite-ok").await?;
    let failed = rep.wait_text("#invitations", "failed").await?;
    assert!(
        failed.contains(&format!("127.0.0.1:{port}")),
        "the reason names the server: {failed}"
    );
    rep.screenshot("02-failed").await?;

    let smtp = SmtpSink::start(port).await?;
    rep.click("#invitations button.retry").await?;
    rep.wait_text("#invitations", "sent").await?;
    rep.screenshot("03-retried").await?;
    let mail = smtp.message(1).await?;
    assert_eq!(mail["recipients"], json!(["ann@example.com"]));
    assert_eq!(smtp.messages()?.len(), 1, "exactly one message: the retry");

    // Nothing is lost: the page lists the invitation after a reload of its data.
    let stored = server
        .admin_call("GET", "/api/admin/audit?limit=50", json!(null))
        .await?;
    assert!(
        stored
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["action"] == "invited")),
        "the invitation is audited"
    );
    rep.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_mail_server_the_dialog_offers_the_other_ways() -> anyhow::Result<()> {
    let server = server_with_rep(None).await?;
    let chrome = Chromedriver::start("invitations-no-mail").await?;
    let rep = chrome.browser("rep").await?;
    rep.log_in(&server.base, "rita", "rita-password").await?;
    rep.start_session(true).await?;
    rep.find("#invite-dialog[open]").await?;
    rep.wait_text("#invite-no-mail", "no mail server").await?;
    assert!(
        rep.find("#invite-own").await?.is_selected().await?,
        "own email program is offered"
    );
    rep.screenshot("01-no-mail").await?;

    // The hand-offs to the desktop (mail program, clipboard) are recorded instead of run:
    // a headless browser has neither.
    rep.client
        .execute(
            "window.__opened = []; window.__copied = [];
             HTMLAnchorElement.prototype.click = function () { window.__opened.push(this.href); };
             navigator.clipboard.writeText = async (t) => { window.__copied.push(t); };",
            vec![],
        )
        .await?;
    rep.fill("#invite-address", "ann@example.com").await?;
    rep.click("#invite-ok").await?;
    rep.wait_text("#notices", "opened in your email program")
        .await?;
    let opened = rep
        .client
        .execute("return window.__opened[0]", vec![])
        .await?;
    let mailto = opened.as_str().unwrap_or_default();
    assert!(
        mailto.starts_with("mailto:ann@example.com?subject="),
        "{mailto}"
    );
    assert!(mailto.contains("Rita%20Rep%20invites%20you"), "{mailto}");
    assert!(
        mailto.contains("%2Fj%2F"),
        "the join link is in the body: {mailto}"
    );

    // R3's instant-message path: Copy link gives a ready-to-paste message.
    let link = rep
        .find("#link")
        .await?
        .prop("value")
        .await?
        .unwrap_or_default();
    rep.click("#copy").await?;
    rep.wait_text("#copied", "Copied").await?;
    let copied = rep
        .client
        .execute("return window.__copied[0]", vec![])
        .await?;
    let copied = copied.as_str().unwrap_or_default();
    assert!(copied.starts_with("Join my support session: "), "{copied}");
    assert!(
        copied.contains(&link) && copied.contains("/join"),
        "{copied}"
    );
    rep.close().await?;
    Ok(())
}
