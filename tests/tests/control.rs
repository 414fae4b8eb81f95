//! Remote control end to end (C1, R8, §5): Xvfb runs a small X client that records every
//! key, button and motion event it receives; the real agent shares the display; the rep
//! in headless Chromium requests control, the customer allows it at the agent's
//! terminal, and the rep clicks and types over the video tile. The X client must see
//! exactly those clicks at exactly those points, and exactly that text. A participant
//! without control reaches nothing; after the customer revokes, nothing reaches the
//! desktop and no key stays held. Screenshots: target/e2e-artifacts/control/.

use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions, MouseActions, PointerAction};
use fantoccini::key::Key;
use serde_json::json;
use tandem_tests::{
    AgentProcess, Browser, Chromedriver, InputRecorder, PatternDisplay, Server, XInput,
};

/// Where the recording window sits on the 640×480 display.
const WINDOW: (i16, i16, u16, u16) = (40, 30, 560, 420);

/// Click with `button` (0 left, 2 right) on the video at the screen pixel (px, py); returns
/// the pixel of the shared screen under the click point, as the viewer shows it.
async fn click_at(viewer: &Browser, px: u32, py: u32, button: u64) -> anyhow::Result<(i16, i16)> {
    let (left, top, width, height) = viewer.video_rect().await?;
    let (x, y) = (
        (left + f64::from(px) * width / 640.0).ceil(),
        (top + f64::from(py) * height / 480.0).ceil(),
    );
    let mouse = MouseActions::new("mouse".into())
        .then(PointerAction::MoveTo {
            duration: Some(Duration::from_millis(50)),
            x,
            y,
        })
        .then(PointerAction::Down { button })
        .then(PointerAction::Pause {
            duration: Duration::from_millis(30),
        })
        .then(PointerAction::Up { button });
    viewer.client.perform_actions(mouse).await?;
    // The pixel under that point of the picture.
    let sx = ((x - left) * 640.0 / width).floor() as i16;
    let sy = ((y - top) * 480.0 / height).floor() as i16;
    Ok((sx, sy))
}

async fn wait_dropped(agent: &AgentProcess, at_least: u64) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while agent.dropped() < at_least {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the agent counted {} dropped input events, expected at least {at_least}",
            agent.dropped()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c1_the_rep_in_control_clicks_and_types_on_the_customers_desktop() -> anyhow::Result<()> {
    let screen = PatternDisplay::start(640, 480)?;
    let (wx, wy, ww, wh) = WINDOW;
    let recorder = InputRecorder::start(&screen.display, 0x808080, wx, wy, ww, wh)?;
    let server = Server::start().await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    let chrome = Chromedriver::start("control").await?;
    let rep = chrome.media_browser("rep").await?;
    rep.log_in(&server.base, "rita", "rita-password").await?;
    let (_, link) = rep.start_session(false).await?;

    let mut agent = AgentProcess::spawn(&screen.display, &["join", &link, "--name", "Ann"])?;
    agent.answer("y").await?;
    rep.wait_text("figure.tile figcaption", "Ann's screen · 640×480")
        .await?;

    // A second customer watches too; her page has an input channel like everyone's.
    let bea = chrome.media_browser("bea").await?;
    bea.join(&link, "Bea").await?;
    bea.wait_text("figure.tile figcaption", "640×480").await?;

    // C1: before the customer allows it, nothing the rep does reaches the desktop.
    let (_, _) = click_at(&rep, 320, 240, 0).await?;
    rep.click("#request-control").await?;
    agent
        .wait_for("Rita Rep asks to control your mouse and keyboard")
        .await?;
    // The rep reads that the request waits for Ann, until she answers.
    const WAITING: &str = "#notices [data-key='control']";
    rep.wait_text(
        WAITING,
        "Waiting for Ann to allow Rita Rep to take control.",
    )
    .await?;
    agent.answer("y").await?;
    rep.wait_text("#control-state", "You are in control of Ann's computer")
        .await?;
    rep.wait_gone(WAITING).await?;
    let notices = rep.text("#notices").await?;
    anyhow::ensure!(
        !notices.contains("Waiting for"),
        "the request's notice outlived the grant: {notices:?}"
    );
    rep.find("figure.tile.controlling").await?;
    rep.screenshot("01-in-control").await?;
    agent
        .wait_for("now controls your mouse and keyboard")
        .await?;
    anyhow::ensure!(
        recorder.presses().is_empty(),
        "input reached the desktop before consent: {:?}",
        recorder.presses()
    );

    // The input channel opens with the peer connection: move until the X client sees it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !recorder
        .events()
        .iter()
        .any(|e| matches!(e, XInput::Motion { .. }))
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no pointer motion ever arrived"
        );
        let (left, top, _, _) = rep.video_rect().await?;
        let wiggle = MouseActions::new("mouse".into())
            .then(PointerAction::MoveTo {
                duration: None,
                x: left + 200.0,
                y: top + 200.0,
            })
            .then(PointerAction::MoveTo {
                duration: None,
                x: left + 210.0,
                y: top + 205.0,
            });
        rep.client.perform_actions(wiggle).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    recorder.clear();

    // Clicks land exactly where the rep clicked on the picture.
    let (ax, ay) = click_at(&rep, 100, 80, 0).await?;
    let (bx, by) = click_at(&rep, 500, 400, 2).await?;
    let want = vec![
        XInput::ButtonPress {
            button: 1,
            x: ax - wx,
            y: ay - wy,
        },
        XInput::ButtonRelease {
            button: 1,
            x: ax - wx,
            y: ay - wy,
        },
        XInput::ButtonPress {
            button: 3,
            x: bx - wx,
            y: by - wy,
        },
        XInput::ButtonRelease {
            button: 3,
            x: bx - wx,
            y: by - wy,
        },
    ];
    recorder
        .wait_until("both clicks", |e| {
            e.iter()
                .filter(|e| !matches!(e, XInput::Motion { .. }))
                .count()
                >= 4
        })
        .await?;
    anyhow::ensure!(
        recorder.presses() == want,
        "clicks: got {:?}, want {want:?}",
        recorder.presses()
    );
    let last_motion = recorder
        .events()
        .into_iter()
        .rev()
        .find(|e| matches!(e, XInput::Motion { .. }));
    anyhow::ensure!(
        last_motion
            == Some(XInput::Motion {
                x: bx - wx,
                y: by - wy
            }),
        "the pointer should rest where the last click was: {last_motion:?}"
    );

    // Typing: letters, shifted characters and a character with no key on a US layout.
    recorder.clear();
    let text = "Hi, Ann! é";
    rep.find("figure.tile.controlling .keyboard-sink")
        .await?
        .send_keys(text)
        .await?;
    recorder
        .wait_until("the typed text", |e| {
            e.iter()
                .filter(|e| matches!(e, XInput::KeyPress { text: Some(_), .. }))
                .count()
                >= text.chars().count()
        })
        .await?;
    anyhow::ensure!(
        recorder.typed() == text,
        "typed {:?}, want {text:?}",
        recorder.typed()
    );
    recorder
        .wait_until("every key released", |_| recorder.held_keys().is_empty())
        .await?;
    rep.screenshot("02-typed").await?;

    // A participant who does not hold control reaches nothing; the agent counts it.
    recorder.clear();
    let before = agent.dropped();
    let forged = json!([
        {"type": "button", "button": "left", "down": true, "x": 0.5, "y": 0.5},
        {"type": "button", "button": "left", "down": false, "x": 0.5, "y": 0.5},
        {"type": "key", "code": "KeyX", "down": true},
        {"type": "key", "code": "KeyX", "down": false},
    ]);
    bea.send_input_raw(forged.clone()).await?;
    wait_dropped(&agent, before + 4).await?;
    anyhow::ensure!(
        recorder.presses().is_empty(),
        "a non-holder reached the desktop: {:?}",
        recorder.presses()
    );

    // The rep holds Shift down; the customer takes control back at the agent.
    let hold = KeyActions::new("keyboard".into()).then(KeyAction::Down {
        value: Key::Shift.into(),
    });
    rep.client.perform_actions(hold).await?;
    recorder
        .wait_until("Shift held", |e| {
            e.iter()
                .any(|e| matches!(e, XInput::KeyPress { keycode: 50, .. }))
        })
        .await?;
    agent.type_line("r").await?;
    agent.wait_for("You took back control").await?;
    rep.wait_text("#notices", "Ann took back control").await?;
    rep.wait_text("#request-control", "Request control").await?;
    anyhow::ensure!(
        rep.client
            .find_all(fantoccini::Locator::Css("figure.tile.controlling"))
            .await?
            .is_empty(),
        "the tile still captures input after the revoke"
    );
    recorder
        .wait_until("Shift released", |_| recorder.held_keys().is_empty())
        .await?;
    rep.screenshot("03-revoked").await?;
    rep.client.release_actions().await?;

    // After the revoke, events from the former holder reach nothing.
    recorder.clear();
    let before = agent.dropped();
    rep.send_input_raw(forged).await?;
    wait_dropped(&agent, before + 4).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    anyhow::ensure!(
        recorder.presses().is_empty(),
        "input after the revoke: {:?}",
        recorder.presses()
    );
    anyhow::ensure!(
        recorder.held_keys().is_empty(),
        "keys left held: {:?}",
        recorder.held_keys()
    );

    agent.kill();
    rep.close().await?;
    bea.close().await?;
    Ok(())
}
