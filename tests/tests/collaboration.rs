//! Rep collaboration end to end (R8, R9, C1, C3): Rita starts the session and Ann shares
//! with the real agent; Sam joins from his dashboard by the session number as an
//! assistant without control; Rita gives him control of Ann's desktop and Sam's click
//! arrives in the X client; Rita takes it back; then the session's control moves to Sam
//! and back, and each rep's page offers exactly the features of their role.
//! Screenshots: target/e2e-artifacts/collaboration/.

use std::time::Duration;

use fantoccini::Locator;
use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use tandem_tests::{
    AgentProcess, Browser, Chromedriver, InputRecorder, PatternDisplay, Server, XInput,
};

/// Wait until `css` is shown (true) or not (false).
async fn until_shown(browser: &Browser, css: &str, want: bool) -> anyhow::Result<()> {
    for _ in 0..100 {
        if browser.is_shown(css).await? == want {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shot = browser.screenshot("failure").await.ok();
    anyhow::bail!(
        "{}: {css} should {}be shown (screenshot {shot:?})",
        browser.person,
        if want { "" } else { "not " }
    )
}

/// Click on the video tile at the screen pixel (px, py) of a 640×480 share.
/// Click the video at the screen pixel (px, py); returns the pixel of the shared screen
/// under the click point as the viewer shows it (the video's place on the page can be a
/// fraction of a pixel, and the pointer goes to whole ones).
async fn click_video(viewer: &Browser, px: f64, py: f64) -> anyhow::Result<(i16, i16)> {
    let r = viewer
        .client
        .execute(
            "const v = document.querySelector('figure.tile video'); v.scrollIntoView({ block: 'center' });
             const r = v.getBoundingClientRect(); return [r.left, r.top, r.width, r.height];",
            vec![],
        )
        .await?;
    let n = |i: usize| r[i].as_f64().unwrap_or(0.0);
    let (x, y) = (
        (n(0) + px * n(2) / 640.0).ceil(),
        (n(1) + py * n(3) / 480.0).ceil(),
    );
    let click = MouseActions::new("mouse".into())
        .then(PointerAction::MoveTo {
            duration: None,
            x,
            y,
        })
        .then(PointerAction::Down { button: 0 })
        .then(PointerAction::Up { button: 0 });
    viewer.client.perform_actions(click).await?;
    Ok((
        ((x - n(0)) * 640.0 / n(2)).floor() as i16,
        ((y - n(1)) * 480.0 / n(3)).floor() as i16,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r8_r9_an_assistant_is_given_control_and_the_session_moves_between_reps()
-> anyhow::Result<()> {
    let screen = PatternDisplay::start(640, 480)?;
    let recorder = InputRecorder::start(&screen.display, 0x808080, 0, 0, 640, 480)?;
    let server = Server::start().await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    server
        .create_rep("sam", "Sam Support", "sam-password")
        .await?;
    let chrome = Chromedriver::start("collaboration").await?;
    let rita = chrome.media_browser("rita").await?;
    rita.log_in(&server.base, "rita", "rita-password").await?;
    let (number, link) = rita.start_session(false).await?;
    let mut agent = AgentProcess::spawn(&screen.display, &["join", &link, "--name", "Ann"])?;
    agent.answer("y").await?;
    rita.wait_text("figure.tile figcaption", "Ann's screen · 640×480")
        .await?;

    // R8: Sam assists by typing the number on his dashboard; he sees Ann's screen and has
    // no control, and no controlling feature of the primary.
    let sam = chrome.media_browser("sam").await?;
    sam.log_in(&server.base, "sam", "sam-password").await?;
    sam.fill("#assist-number", &number).await?;
    sam.click("#assist-button").await?;
    sam.wait_text("figure.tile figcaption", "Ann's screen · 640×480")
        .await?;
    sam.wait_text("#participants li[data-name='Sam Support']", "Assistant")
        .await?;
    for css in [
        "#request-control",
        "#release-control",
        "#end",
        "button.give-control",
        "button.transfer",
    ] {
        until_shown(&sam, css, false).await?;
    }
    rita.wait_text("#participants", "Sam Support").await?;
    sam.screenshot("01-assisting").await?;

    // The primary gives Sam control; Ann allows it at her agent (C1).
    rita.click("#participants li[data-name='Sam Support'] button.give-control")
        .await?;
    agent
        .wait_for("Sam Support asks to control your mouse and keyboard")
        .await?;
    agent.answer("y").await?;
    // Ann is told who holds her mouse and keyboard, by name (not her primary rep's).
    agent
        .wait_for("Sam Support now controls your mouse and keyboard")
        .await?;
    sam.wait_text("#control-state", "You are in control of Ann's computer")
        .await?;
    rita.wait_text(
        "#control-state",
        "Sam Support is in control of Ann's computer",
    )
    .await?;
    until_shown(&rita, "#release-control", true).await?;
    sam.find("figure.tile.controlling").await?;
    recorder.clear();
    let mut at = (200, 150);
    for _ in 0..50 {
        at = click_video(&sam, 200.0, 150.0).await?;
        if recorder
            .presses()
            .iter()
            .any(|e| matches!(e, XInput::ButtonPress { .. }))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    recorder
        .wait_until("Sam's click", |e| {
            e.iter().any(|e| {
                matches!(
                    e,
                    XInput::ButtonPress { button: 1, x, y } if (*x, *y) == at
                )
            })
        })
        .await?;
    sam.screenshot("02-in-control").await?;

    // The primary takes control back: Sam's clicks reach nothing any more.
    rita.click("#release-control").await?;
    sam.wait_text("#notices", "Control was released").await?;
    anyhow::ensure!(
        sam.client
            .find_all(Locator::Css("figure.tile.controlling"))
            .await?
            .is_empty(),
        "Sam's tile still captures input"
    );
    recorder.clear();
    click_video(&sam, 300.0, 300.0).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    anyhow::ensure!(
        recorder.presses().is_empty(),
        "input after control was taken back: {:?}",
        recorder.presses()
    );

    // R9: Rita transfers the session's control to Sam. Rita observes: she still sees the
    // share, but every controlling feature is gone; Sam has them.
    rita.client
        .execute("window.confirm = () => true", vec![])
        .await?;
    rita.click("#participants li[data-name='Sam Support'] button.transfer")
        .await?;
    sam.wait_text("#notices", "You now have the session's control")
        .await?;
    // The customer's agent names the rep who now leads the session.
    agent
        .wait_for("Sam Support is now your support rep")
        .await?;
    rita.wait_text("#participants li[data-name='Rita Rep']", "Observer")
        .await?;
    until_shown(&rita, "#observer", true).await?;
    for css in [
        "#request-control",
        "#share-screen",
        "#invite",
        "#end",
        "button.give-control",
        "button.transfer",
    ] {
        until_shown(&rita, css, false).await?;
    }
    rita.wait_text("figure.tile figcaption", "Ann's screen")
        .await?;
    until_shown(&sam, "#request-control", true).await?;
    until_shown(
        &sam,
        "#participants li[data-name='Rita Rep'] button.transfer",
        true,
    )
    .await?;
    rita.screenshot("03-observing").await?;
    sam.screenshot("03-primary").await?;

    // The new primary hands it back at any time.
    sam.client
        .execute("window.confirm = () => true", vec![])
        .await?;
    sam.click("#participants li[data-name='Rita Rep'] button.transfer")
        .await?;
    rita.wait_text("#notices", "You now have the session's control")
        .await?;
    agent.wait_for("Rita Rep is now your support rep").await?;
    until_shown(&rita, "#request-control", true).await?;
    until_shown(&rita, "#observer", false).await?;
    sam.wait_text("#participants li[data-name='Sam Support']", "Observer")
        .await?;
    until_shown(&sam, "#request-control", false).await?;

    // C3: every one of these changes is in the audit log.
    server.state.flush().await;
    let audit = server
        .admin_call(
            "GET",
            &format!("/api/admin/audit?session={}", number.replace(' ', "")),
            serde_json::Value::Null,
        )
        .await?;
    let actions: Vec<String> = audit
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["action"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for wanted in [
        "joined",
        "control_requested",
        "control_granted",
        "control_ended",
        "primary_transferred",
    ] {
        anyhow::ensure!(
            actions.iter().any(|a| a == wanted),
            "{wanted} missing from the audit log: {actions:?}"
        );
    }

    agent.kill();
    rita.close().await?;
    sam.close().await?;
    Ok(())
}
