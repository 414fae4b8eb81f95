//! The admin page in headless Chromium: create a rep, mark them a WebACD agent, set the
//! site's limits, add a queue, and read the audit log; the new rep can then log in.
//! Screenshots: target/e2e-artifacts/admin/.

use tandem_tests::{ADMIN_PASSWORD, Chromedriver, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_up_reps_limits_and_queues() -> anyhow::Result<()> {
    let server = Server::start().await?;
    let chrome = Chromedriver::start("admin").await?;
    let admin = chrome.browser("admin").await?;
    admin.log_in(&server.base, "admin", ADMIN_PASSWORD).await?;
    admin.click("#admin-link").await?;

    admin.fill("#rep-username", "sam").await?;
    admin.fill("#rep-name", "Sam Senior").await?;
    admin.fill("#rep-password", "short").await?;
    admin.click("#create-rep").await?;
    admin.wait_text("#error", "at least 8 characters").await?;
    admin.fill("#rep-password", "sam-password").await?;
    admin.click("#rep-webacd").await?;
    admin.click("#create-rep").await?;
    admin.wait_text("#reps", "Sam Senior").await?;

    admin.fill("#max-customers", "3").await?;
    admin.click("#multiple").await?;
    admin.click("#save-settings").await?;
    admin.wait_text("#settings-saved", "Saved").await?;

    admin.fill("#queue-name", "Printers").await?;
    admin.click("#new-queue button").await?;
    admin.wait_text("#queues", "Printers").await?;
    admin.wait_text("#queues", "Sam Senior").await?; // a WebACD agent to put in it
    admin.screenshot("01-admin").await?;

    let settings = server
        .admin_call("GET", "/api/admin/settings", serde_json::json!(null))
        .await?;
    assert_eq!(settings["max_customers_per_rep"], 3);
    assert_eq!(settings["allow_multiple_sessions"], true);
    let reps = server
        .admin_call("GET", "/api/admin/reps", serde_json::json!(null))
        .await?;
    let sam = reps
        .as_array()
        .and_then(|r| r.iter().find(|a| a["username"] == "sam"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (sam["is_webacd"].as_bool(), sam["disabled"].as_bool()),
        (Some(true), Some(false))
    );

    // The new rep logs in and starts a session; the admin's audit log shows it.
    let sam_browser = chrome.browser("sam").await?;
    sam_browser
        .log_in(&server.base, "sam", "sam-password")
        .await?;
    let (number, _) = sam_browser.start_session(false).await?;
    server.state.flush().await;
    admin.goto(&format!("{}/admin", server.base)).await?;
    admin.wait_text("#audit", &number).await?;
    admin.wait_text("#audit", "Sam Senior (sam)").await?;
    // The site's own records too (C3): the account the admin made, and Sam's login.
    admin.wait_text("#audit", "account created: sam").await?;
    admin.wait_text("#audit", "logged in: sam").await?;
    admin.screenshot("02-audit").await?;

    // Disabling the rep ends their logins.
    let enabled = "tr[data-username=sam] td:nth-child(5) input";
    admin.click(enabled).await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Sam's browser still holds the cookie; the dashboard now sends Sam to the login page.
    sam_browser
        .goto(&format!("{}/dashboard", server.base))
        .await?;
    sam_browser.find("#username").await?;
    let url = sam_browser.client.current_url().await?;
    assert_eq!(url.path(), "/login", "{url}");
    let reps = server
        .admin_call("GET", "/api/admin/reps", serde_json::json!(null))
        .await?;
    assert!(
        reps.as_array().is_some_and(|r| r
            .iter()
            .any(|a| a["username"] == "sam" && a["disabled"] == true)),
        "{reps}"
    );
    for browser in [admin, sam_browser] {
        browser.close().await?;
    }
    Ok(())
}
