//! The media path end to end (R6, C1): Xvfb shows a known pattern; the real agent joins by
//! link, is asked for consent on its terminal, then captures, encodes H.264 and streams
//! over WebRTC; the rep and a second customer, both in headless Chromium, decode it.
//! Decoded pixels must match the pattern's colours, and frames must keep coming.
//! Screenshots: target/e2e-artifacts/agent/.

use std::time::Duration;

use tandem_tests::nat_scene::{decoded_pixel, near, sees_the_pattern};
use tandem_tests::{AgentProcess, Browser, Chromedriver, PatternDisplay, Server};

/// Every test's stage: the pattern on Xvfb, the server, Chromium, and a rep who has
/// logged in and started a session whose join link is `link`.
struct Scene {
    screen: PatternDisplay,
    server: Server,
    chrome: Chromedriver,
    rep: Browser,
    link: String,
}

impl Scene {
    async fn start(name: &str, width: u16, height: u16) -> anyhow::Result<Scene> {
        let screen = PatternDisplay::start(width, height)?;
        let server = Server::start().await?;
        server
            .create_rep("rita", "Rita Rep", "rita-password")
            .await?;
        let chrome = Chromedriver::start(name).await?;
        let rep = chrome.media_browser("rep").await?;
        rep.log_in(&server.base, "rita", "rita-password").await?;
        let (_, link) = rep.start_session(false).await?;
        Ok(Scene {
            screen,
            server,
            chrome,
            rep,
            link,
        })
    }
}

/// No decode errors: a decoder that fails asks for a keyframe (PLI) to recover, so none
/// was asked for, and no frame came out corrupt. (Frames dropped for being late to the
/// display are not decode errors; a loaded machine may drop one.)
async fn decodes_cleanly(viewer: &Browser) -> anyhow::Result<()> {
    let health = viewer
        .client
        .execute(
            "const d = document.querySelector('figure.tile').dataset;
             return [Number(d.keyframeRequests || 0), Number(d.corruptFrames || 0)];",
            vec![],
        )
        .await?;
    let n = |i: usize| health[i].as_u64().unwrap_or(u64::MAX);
    anyhow::ensure!(
        (n(0), n(1)) == (0, 0),
        "{}: keyframe requests, corrupt frames = {health}",
        viewer.person
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_streams_the_customers_screen_to_every_participant() -> anyhow::Result<()> {
    let Scene {
        screen,
        server: _server,
        chrome,
        rep,
        link,
    } = Scene::start("agent", 640, 480).await?;
    let mut agent = AgentProcess::spawn(&screen.display, &["join", &link, "--name", "Ann"])?;
    rep.wait_text("#participants li[data-name=Ann]", "agent")
        .await?;
    // C1: nothing is shared before the customer answers at the agent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    anyhow::ensure!(
        rep.client
            .find_all(fantoccini::Locator::Css("figure.tile"))
            .await?
            .is_empty(),
        "shared before consent"
    );
    agent.answer("y").await?;

    sees_the_pattern(&rep).await?;
    decodes_cleanly(&rep).await?;
    rep.screenshot("01-rep-sees-agent").await?;

    // Another customer joins later and sees it too: one capture, one encode, two viewers.
    let bea = chrome.media_browser("bea").await?;
    bea.join(&link, "Bea").await?;
    sees_the_pattern(&bea).await?;
    decodes_cleanly(&bea).await?;
    bea.screenshot("02-customer-sees-agent").await?;

    agent.kill();
    for browser in [rep, bea] {
        browser.close().await?;
    }
    Ok(())
}

/// C1: with consent refused nothing is captured, and the rep sees that the customer
/// declined. The customer's page shows the command that attaches an agent to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_shares_nothing_and_the_rep_sees_declined() -> anyhow::Result<()> {
    let Scene {
        screen,
        server,
        chrome,
        rep,
        link,
    } = Scene::start("agent-declined", 320, 240).await?;

    // The customer joins in the browser; the page shows the attach command.
    let ann = chrome.media_browser("ann").await?;
    ann.join(&link, "Ann").await?;
    // The command for a terminal is folded under "Advanced" (the download needs none).
    let token = ann.attach_command_token().await?;
    ann.wait_text("#agent-command", "./tandem-agent attach --server")
        .await?;
    ann.screenshot("01-agent-command").await?;

    let mut agent = AgentProcess::spawn(
        &screen.display,
        &["attach", "--server", &server.base, "--token", &token],
    )?;
    rep.wait_text("#participants li[data-name=Ann]", "agent")
        .await?;
    agent.answer("n").await?;
    rep.wait_text("#notices", "Ann declined to share their screen")
        .await?;
    // Longer than the agent's 2-second status line, which any capture would print.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    anyhow::ensure!(
        rep.client
            .find_all(fantoccini::Locator::Css("figure.tile"))
            .await?
            .is_empty(),
        "nothing may be shared after a refusal"
    );
    anyhow::ensure!(
        !agent.output().contains(" fps · "),
        "the agent captured after a refusal: {}",
        agent.output()
    );
    rep.screenshot("02-declined").await?;
    agent.kill();
    for browser in [rep, ann] {
        browser.close().await?;
    }
    Ok(())
}

/// Keyframe recovery: the agent withholds the viewer's first keyframe (a test switch), so
/// the browser decodes only once its PLI has reached the encoder and a keyframe followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_lost_the_first_keyframe_recovers_through_pli() -> anyhow::Result<()> {
    let Scene {
        screen,
        server: _server,
        chrome: _chrome,
        rep,
        link,
    } = Scene::start("agent-pli", 640, 480).await?;
    let mut agent = AgentProcess::spawn_with_env(
        &screen.display,
        &["join", &link, "--name", "Ann"],
        &[("TANDEM_AGENT_TEST_DROP_FIRST_KEYFRAME", "1")],
    )?;
    agent.answer("y").await?;
    sees_the_pattern(&rep).await?;
    // The browser asked for the keyframe it never got. The tile's counter is read from the
    // connection's statistics every so often, so it may trail the picture a little.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let plis = rep
            .client
            .execute(
                "return Number(document.querySelector('figure.tile').dataset.keyframeRequests || 0)",
                vec![],
            )
            .await?;
        if plis.as_u64().unwrap_or(0) > 0 {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no PLI was sent: {plis}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    agent.kill();
    rep.close().await?;
    Ok(())
}

/// Window share: the shared window is half covered by another; viewers see only the
/// shared window's own pixels, none of the cover's, and follow a resize.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_window_shows_its_own_pixels_and_follows_a_resize() -> anyhow::Result<()> {
    const MAGENTA: u32 = 0xff00ff;
    const CYAN: u32 = 0x00ffff;
    let Scene {
        screen,
        server: _server,
        chrome: _chrome,
        rep,
        link,
    } = Scene::start("agent-window", 640, 480).await?;
    let invoice = screen.window(MAGENTA, 40, 40, 200, 160, "Invoice 2026-11")?;
    screen.window(CYAN, 140, 80, 200, 160, "Cover")?;
    let mut agent = AgentProcess::spawn(
        &screen.display,
        &["join", &link, "--name", "Ann", "--window", "Invoice"],
    )?;
    agent.answer("y").await?;
    rep.wait_text("figure.tile figcaption", "Ann's screen · 200×160")
        .await?;
    for x in (10..200).step_by(30) {
        for y in (10..160).step_by(30) {
            let got = decoded_pixel(&rep, x, y).await?;
            anyhow::ensure!(
                near(got, MAGENTA),
                "({x},{y}) decoded {got:06x}: not the window's own magenta"
            );
        }
    }
    rep.screenshot("01-window").await?;

    screen.resize(invoice, 240, 120)?;
    rep.wait_text("figure.tile figcaption", "Ann's screen · 240×120")
        .await?;
    let got = decoded_pixel(&rep, 230, 110).await?;
    anyhow::ensure!(
        near(got, MAGENTA),
        "after the resize (230,110) decoded {got:06x}"
    );
    rep.screenshot("02-resized").await?;
    agent.kill();
    rep.close().await?;
    Ok(())
}

/// protocol.md §4.8 "A join sent again": the agent's attach goes through and uses the
/// one-time token, but its answer is lost with the connection (a proxy holds it back and
/// drops the connection, as a poor link does). The agent tries again with the same token
/// and its `join_key`, and is back in the place the first attach made: one agent for Ann,
/// asking her consent (C1), and no new download needed. The same for a customer's own
/// join with `tandem-agent join`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_whose_attach_answer_was_lost_is_attached_once() -> anyhow::Result<()> {
    use tandem_tests::join_cutter::JoinCutter;
    let Scene {
        screen,
        server,
        chrome,
        rep,
        link,
    } = Scene::start("agent-attach-lost", 320, 240).await?;
    let ann = chrome.browser("ann").await?;
    ann.join(&link, "Ann").await?;
    let token = ann.attach_command_token().await?;

    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse()?;
    let cutter = JoinCutter::start(addr, "attach_agent").await?;
    let through = format!("http://127.0.0.1:{}", cutter.port);
    let mut agent = AgentProcess::spawn(
        &screen.display,
        &["attach", "--server", &through, "--token", &token],
    )?;
    cutter.join_forwarded().await?;
    // The server took the attach (the token is used): the rep sees Ann's agent.
    rep.wait_text("#participants li[data-name=Ann]", "agent")
        .await?;
    cutter.cut();

    agent.answer("n").await?;
    // Asked only once attached: the answer goes over the second connection.
    rep.wait_text("#notices", "Ann declined to share their screen")
        .await?;
    let row = rep.text("#participants li[data-name=Ann]").await?;
    anyhow::ensure!(row.contains("agent"), "Ann's row: {row}");

    // `tandem-agent join` likewise: Bo's own join goes through and its answer is lost; he
    // is in once, with his agent.
    let cutter = JoinCutter::start(addr, "join_by_link").await?;
    let bo_link = link.replace(&addr.to_string(), &format!("127.0.0.1:{}", cutter.port));
    let mut bo = AgentProcess::spawn(&screen.display, &["join", &bo_link, "--name", "Bo"])?;
    cutter.join_forwarded().await?;
    rep.wait_text("#participants", "Bo").await?;
    cutter.cut();
    // His agent attaches after the join: the customer's connection the join made.
    rep.wait_text("#participants li[data-name=Bo]", "agent")
        .await?;
    bo.wait_for("Connected to support session").await?;
    let bos = rep
        .client
        .find_all(fantoccini::Locator::Css("#participants li[data-name^=Bo]"))
        .await?
        .len();
    anyhow::ensure!(bos == 1, "the rep sees {bos} of Bo");
    agent.kill();
    bo.kill();
    for browser in [rep, ann] {
        browser.close().await?;
    }
    Ok(())
}
