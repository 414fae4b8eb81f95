//! The Windows agent end to end under Wine (C1, R6, R7, R8): Xvfb shows a Wine virtual
//! desktop with Windows test windows of known colours; the real `tandem-agent.exe`, built
//! for x86_64-pc-windows-gnu, joins by link, asks consent on its terminal, captures with
//! GDI (Wine has no Desktop Duplication), encodes and streams; the rep and a second
//! customer in headless Chromium decode the right pixels. The rep, once allowed, clicks and
//! types into a Windows window, which reports exactly those client coordinates and that
//! text; after the customer takes control back nothing arrives, and a switch to another
//! customer stops the share as on Linux. Screenshots: target/e2e-artifacts/wine-*/.

use std::time::Duration;

use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use tandem_tests::agent_window;
use tandem_tests::nat_scene::{decoded_pixel, near};
use tandem_tests::wine::{DESKTOP, TestWindow, WineDesktop};
use tandem_tests::{AgentProcess, Browser, Chromedriver, Server};

const RED: u32 = 0xe02020;
const BLUE: u32 = 0x2040e0;
/// The test windows' places on the desktop: (x, y, width, height), outer frame.
const RED_AT: (i32, i32, i32, i32) = (80, 80, 480, 320);
const BLUE_AT: (i32, i32, i32, i32) = (700, 140, 400, 300);

/// Left-click on the video at the desktop pixel (px, py); returns the desktop pixel under
/// the click point as the page maps it.
async fn click_at(viewer: &Browser, px: i32, py: i32) -> anyhow::Result<(i32, i32)> {
    let (w, h) = (f64::from(DESKTOP.0), f64::from(DESKTOP.1));
    let (left, top, width, height) = viewer.video_rect().await?;
    let (x, y) = (
        (left + f64::from(px) * width / w).ceil(),
        (top + f64::from(py) * height / h).ceil(),
    );
    let mouse = MouseActions::new("mouse".into())
        .then(PointerAction::MoveTo {
            duration: Some(Duration::from_millis(50)),
            x,
            y,
        })
        .then(PointerAction::Down { button: 0 })
        .then(PointerAction::Pause {
            duration: Duration::from_millis(30),
        })
        .then(PointerAction::Up { button: 0 });
    viewer.client.perform_actions(mouse).await?;
    Ok((
        ((x - left) * w / width).floor() as i32,
        ((y - top) * h / height).floor() as i32,
    ))
}

/// The middle of a window's client area, on the desktop.
fn middle(window: &TestWindow, (_, _, w, h): (i32, i32, i32, i32)) -> (i32, i32) {
    (window.client.0 + w / 3, window.client.1 + h / 3)
}

async fn sees_colour(viewer: &Browser, (x, y): (i32, i32), want: u32) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = decoded_pixel(viewer, x as u32, y as u32).await?;
        if near(got, want) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            let shot = viewer.screenshot("failure").await.ok();
            anyhow::bail!(
                "{}: ({x},{y}) decoded {got:06x}, want {want:06x}; screenshot {shot:?}",
                viewer.person
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Send a left click at (x, y) of the shared surface straight down the page's input
/// channel, as a modified console could, until the agent counts it as dropped.
async fn drops_a_raw_click(
    viewer: &Browser,
    agent: &AgentProcess,
    (x, y): (f64, f64),
) -> anyhow::Result<()> {
    let before = agent.dropped();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while agent.dropped() <= before {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the agent never counted the click sent down the input channel as dropped: {}",
            agent.output()
        );
        viewer
            .client
            .execute(
                "for (const view of window.tandem.shares.viewing.values()) {
                   if (view.input && view.input.readyState === 'open') {
                     for (const down of [true, false]) {
                       view.input.send(JSON.stringify(
                         {type: 'button', button: 'left', down, x: arguments[0], y: arguments[1]}));
                     }
                   }
                 }",
                vec![serde_json::json!(x), serde_json::json!(y)],
            )
            .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

struct Stage {
    desktop: WineDesktop,
    red: TestWindow,
    blue: TestWindow,
    server: Server,
    chrome: Chromedriver,
    rep: Browser,
    link: String,
}

async fn stage(name: &str) -> anyhow::Result<Stage> {
    let desktop = WineDesktop::start(name)?;
    let red = desktop.window("Tandem Red", RED, RED_AT).await?;
    let blue = desktop.window("Tandem Blue", BLUE, BLUE_AT).await?;
    // The join page offers this Windows agent for download, the session attached.
    let exe = desktop.agent_exe().to_owned();
    let server = Server::start_with(|config| config.agent_binary_windows = Some(exe)).await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    let chrome = Chromedriver::start(name).await?;
    let rep = chrome.media_browser("rep").await?;
    rep.log_in(&server.base, "rita", "rita-password").await?;
    let (_, link) = rep.start_session(false).await?;
    Ok(Stage {
        desktop,
        red,
        blue,
        server,
        chrome,
        rep,
        link,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_windows_agent_shares_the_desktop_and_the_rep_controls_a_windows_window()
-> anyhow::Result<()> {
    let Stage {
        desktop,
        red,
        blue,
        server: _server,
        chrome,
        rep,
        link,
    } = stage("wine-desktop").await?;
    let mut agent = desktop.agent(&["join", &link, "--name", "Ann"])?;
    // C1: asked on the terminal, as on Linux; the agent says what it captures with.
    agent
        .wait_for_within(
            "Rita Rep asks to see your whole screen",
            Duration::from_secs(120),
        )
        .await?;
    anyhow::ensure!(
        agent.output().contains("This computer: Windows (GDI)."),
        "the agent did not say it captures with GDI under Wine: {}",
        agent.output()
    );
    agent.answer("y").await?;

    // R6: the rep and a second customer decode the Windows desktop's pixels.
    let size = format!("Ann's screen · {}×{}", DESKTOP.0, DESKTOP.1);
    rep.wait_text("figure.tile figcaption", &size).await?;
    sees_colour(&rep, middle(&red, RED_AT), RED).await?;
    sees_colour(&rep, middle(&blue, BLUE_AT), BLUE).await?;
    rep.screenshot("01-rep-sees-the-windows-desktop").await?;
    let bea = chrome.media_browser("bea").await?;
    bea.join(&link, "Bea").await?;
    bea.wait_text("figure.tile figcaption", &size).await?;
    sees_colour(&bea, middle(&red, RED_AT), RED).await?;
    sees_colour(&bea, middle(&blue, BLUE_AT), BLUE).await?;

    // C1: before the customer allows control, nothing reaches the window, not even clicks
    // a modified console sends straight down its input channel: the agent counts them.
    let target = middle(&red, RED_AT);
    let point = (
        f64::from(target.0) / f64::from(DESKTOP.0),
        f64::from(target.1) / f64::from(DESKTOP.1),
    );
    drops_a_raw_click(&rep, &agent, point).await?;
    anyhow::ensure!(
        red.clicks().is_empty(),
        "a click reached the window before consent: {:?}",
        red.clicks()
    );
    rep.click("#request-control").await?;
    agent
        .wait_for("Rita Rep asks to control your mouse and keyboard")
        .await?;
    agent.answer("y").await?;
    rep.wait_text("#control-state", "You are in control of Ann's computer")
        .await?;
    // The input channel opens with the peer connection: click until the window hears.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while red.clicks().is_empty() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no click reached the Windows window; agent said: {}",
            agent.output()
        );
        click_at(&rep, target.0, target.1).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A click lands at exactly the client pixel the rep clicked on the picture.
    let before = red.clicks().len();
    let (sx, sy) = click_at(&rep, red.client.0 + 37, red.client.1 + 53).await?;
    let want = (sx - red.client.0, sy - red.client.1);
    red.wait_for("the click", Duration::from_secs(20), |_| {
        (red.clicks().len() > before).then_some(())
    })
    .await?;
    anyhow::ensure!(
        red.clicks()[before..] == [want],
        "clicks {:?}, want {want:?}",
        &red.clicks()[before..]
    );

    // Typing: letters, shifted characters and one with no key on a US layout.
    let text = "Hi, Ann! é";
    rep.find("figure.tile.controlling .keyboard-sink")
        .await?
        .send_keys(text)
        .await?;
    red.wait_for("the typed text", Duration::from_secs(30), |_| {
        (red.typed() == text).then_some(())
    })
    .await
    .map_err(|e| e.context(format!("typed so far: {:?}", red.typed())))?;
    rep.screenshot("02-typed-into-the-windows-window").await?;

    // C1: the customer takes control back; nothing reaches the window any more.
    agent.type_line("r").await?;
    agent.wait_for("You took back control").await?;
    let clicks = red.clicks().len();
    drops_a_raw_click(&rep, &agent, point).await?;
    anyhow::ensure!(
        red.clicks().len() == clicks,
        "a click reached the window after the customer took control back: {:?}",
        red.clicks()
    );

    // R7: the rep turns to another customer; the Windows agent stops sharing and says why.
    rep.click("#participants li[data-name=Bea] button.select")
        .await?;
    agent
        .wait_for("Sharing stopped: the support rep turned to another customer.")
        .await?;
    // Every viewer's tile closes.
    for viewer in [&rep, &bea] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !viewer
            .client
            .find_all(fantoccini::Locator::Css("figure.tile"))
            .await?
            .is_empty()
        {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{}: the Windows agent's tile never closed after the switch",
                viewer.person
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // And no frames leave the agent: its status line (every 2 s while capturing) stops.
    // A negative, so it watches for two of its periods.
    let after_stop = agent.output().len();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let later = agent.output()[after_stop..].to_owned();
    anyhow::ensure!(
        !later.contains(" fps · "),
        "the agent still reports frames after the switch: {later}"
    );
    agent.kill();
    rep.close().await?;
    bea.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_windows_agent_shares_one_window_with_its_own_pixels() -> anyhow::Result<()> {
    let Stage {
        desktop,
        red,
        blue,
        server: _server,
        chrome,
        rep,
        link,
    } = stage("wine-window").await?;
    // A window over the blue one's left part. Wine cannot render another process's
    // window for us (PrintWindow draws nothing), so the agent copies the blue window from
    // the screen and blacks out what covers it: the cover's pixels are never shared.
    // (On Windows, PrintWindow renders the covered part itself.)
    let cover_at = (BLUE_AT.0 - 100, BLUE_AT.1 + 60, 220, 160);
    let _cover = desktop.window("Cover", RED, cover_at).await?;
    drop(red);
    let mut agent = desktop.agent(&["join", &link, "--name", "Ann", "--window", "Tandem Blue"])?;
    agent
        .wait_for_within("Rita Rep asks to see the window", Duration::from_secs(120))
        .await?;
    agent.answer("y").await?;
    let size = format!("Ann's screen · {}×{}", BLUE_AT.2, BLUE_AT.3);
    rep.wait_text("figure.tile figcaption", &size).await?;
    // Client pixels, in the window's own picture: the frame's border and title bar are
    // above and left of the client area.
    let (bx, by) = (blue.client.0 - BLUE_AT.0, blue.client.1 - BLUE_AT.1);
    for (x, y) in [(20, 20), (300, 200), (380, 250)] {
        sees_colour(&rep, (bx + x, by + y), BLUE)
            .await
            .map_err(|e| e.context(format!("client pixel ({x},{y}) of the shared window")))?;
    }
    // Where the cover is in front: black, never the cover's red.
    let covered = (cover_at.0 + 150 - BLUE_AT.0, cover_at.1 + 80 - BLUE_AT.1);
    sees_colour(&rep, covered, 0x000000)
        .await
        .map_err(|e| e.context("the covered part of the shared window"))?;
    rep.screenshot("01-one-windows-window").await?;
    let bea = chrome.media_browser("bea").await?;
    bea.join(&link, "Bea").await?;
    bea.wait_text("figure.tile figcaption", &size).await?;
    sees_colour(&bea, (bx + 300, by + 200), BLUE).await?;
    agent.kill();
    rep.close().await?;
    bea.close().await?;
    Ok(())
}

/// Issue 17 on Windows: the customer downloads the Windows agent from the join page and
/// starts it with no arguments, as a double-click does; its window (slint, under Wine)
/// asks, and the customer answers with the mouse. C1: Deny refuses and the rep sees it;
/// Allow shares (a blue frame); Allow on the control question gives Rita control (an
/// orange frame), and "Take back control" takes it back, the console saying so at once;
/// "Stop sharing" ends the share at once; choosing a window in the list shares only that
/// window; the end of the session closes the panel with a sentence saying why. The trace's button places are the
/// window's client area on the desktop (not its title bar's corner), so the clicks land.
/// Photographs: target/e2e-artifacts/wine-agent-window/.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c1_the_windows_customer_starts_the_download_and_answers_in_its_window()
-> anyhow::Result<()> {
    let Stage {
        desktop,
        red: _red,
        blue: _blue,
        server,
        chrome,
        rep,
        link,
    } = stage("wine-agent-window").await?;
    let photos = tandem_tests::target_dir()
        .join("e2e-artifacts")
        .join("wine-agent-window");
    let display = desktop.screen.display.clone();
    let photo = |name: &str| agent_window::photograph(&display, &photos, name);
    let ann = chrome.browser("ann").await?;
    ann.join(&link, "Ann").await?;
    let downloads = tempfile::tempdir()?;
    let file = agent_window::download_from_join_page(
        &ann,
        &server.base,
        downloads.path(),
        "#agent-download-windows",
    )
    .await?;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
    anyhow::ensure!(
        name.as_deref().is_some_and(|n| n.ends_with(".exe")),
        "the Windows download is named {name:?}"
    );
    let mut agent = agent_window::double_click(desktop.command(&file))?;

    let asked = agent_window::wait_mode(&agent, "ask").await?;
    agent
        .wait_for_within(
            "Rita Rep asks to see your whole screen",
            Duration::from_secs(60),
        )
        .await?;
    photo("01-asked-to-share")?;
    agent_window::click(&desktop.screen.display, asked.button("deny")?)?;
    rep.wait_text("#notices", "Ann declined to share their screen")
        .await?;
    agent_window::wait_mode(&agent, "status").await?;

    rep.click("#request-share").await?;
    let asked = agent_window::wait_mode(&agent, "ask").await?;
    agent_window::click(&desktop.screen.display, asked.button("allow")?)?;
    let size = format!("Ann's screen · {}×{}", DESKTOP.0, DESKTOP.1);
    rep.wait_text("figure.tile figcaption", &size).await?;
    let panel = agent_window::wait_mode(&agent, "panel").await?;
    // The blue frame on the shared screen's edges, there on the X display Wine draws on.
    let framed = agent_window::wait_frame(&agent, &desktop.screen.display, "shared").await?;
    anyhow::ensure!(
        framed == (0, 0, u32::from(DESKTOP.0), u32::from(DESKTOP.1)),
        "the frame is at {framed:?}, not on the {DESKTOP:?} screen's edges"
    );
    photo("02-sharing-panel")?;

    // Control, allowed with a click in the Windows window; the frame turns orange.
    rep.click("#request-control").await?;
    let asked = agent_window::wait_mode(&agent, "ask").await?;
    agent
        .wait_for("Rita Rep asks to control your mouse and keyboard")
        .await?;
    agent_window::click(&desktop.screen.display, asked.button("allow")?)?;
    rep.wait_text("#control-state", "You are in control of Ann's computer")
        .await?;
    let controlled = agent_window::wait_mode(&agent, "panel").await?;
    agent_window::wait_frame(&agent, &desktop.screen.display, "controlled").await?;
    photo("03-controlled-panel")?;
    // "Take back control" reaches the console at once; the frame is blue again.
    agent_window::click(&desktop.screen.display, controlled.button("take-back")?)?;
    rep.wait_gone("figure.tile.controlling").await?;
    agent.wait_for("You took back control").await?;
    agent_window::wait_frame(&agent, &desktop.screen.display, "shared").await?;

    agent_window::click(&desktop.screen.display, panel.button("stop")?)?;
    rep.wait_gone("figure.tile").await?;
    agent_window::wait_mode(&agent, "status").await?;
    agent.wait_for("You stopped sharing").await?;
    agent_window::wait_frame_gone(&agent, &desktop.screen.display, framed).await?;
    photo("04-stopped")?;

    // Asked again, Ann picks the red window in the list: only it is shared.
    rep.click("#request-share").await?;
    let asked = agent_window::wait_mode(&agent, "ask").await?;
    let index = agent_window::source_index(&agent, "Window: Tandem Red")?;
    agent_window::choose(&desktop.screen.display, &agent, &asked, index, || {
        photo("05-choice-open")
    })
    .await?;
    let asked = agent_window::wait_mode(&agent, "ask").await?;
    agent_window::click(&desktop.screen.display, asked.button("allow")?)?;
    let size = format!("Ann's screen · {}×{}", RED_AT.2, RED_AT.3);
    rep.wait_text("figure.tile figcaption", &size).await?;
    agent.wait_for("Sharing the window \"Tandem Red\"").await?;
    // Near the window's far corner: the agent's own window, always on top, covers its
    // top-left part, which the picture shows black (never another window's pixels).
    sees_colour(&rep, (RED_AT.2 - 40, RED_AT.3 - 40), RED).await?;
    let around = agent_window::wait_frame(&agent, &desktop.screen.display, "shared").await?;
    photo("06-window-shared")?;

    // The end of the session: the window says why, and the frame goes.
    agent_window::rep_ends_the_session(&rep, &mut agent).await?;
    agent_window::wait_frame_gone(&agent, &desktop.screen.display, around).await?;
    photo("07-ended")?;
    agent.kill();
    for browser in [rep, ann] {
        browser.close().await?;
    }
    Ok(())
}
