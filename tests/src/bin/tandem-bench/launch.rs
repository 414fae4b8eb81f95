//! From double-click to the consent question on screen (issue 17): the customer's Chromium
//! joins, downloads the agent from the join page (the download carries the session), and
//! the file is started with no arguments, as a double-click does. The figures run from
//! that start to the agent's window showing "… asks to see your screen": the program's
//! start, reading the session from its own file, the WebSocket attach, the window opening
//! and the question.
//!
//! - "question set": the agent traces the moment from its UI thread right after it maps
//!   the window with the question;
//! - "painted": the bench watches the X server itself. It sees the agent's window mapped
//!   (a `MapNotify` on the root) and then reads rows of that window's pixels off the screen
//!   every few milliseconds until one holds the dialog: text and buttons, several colours
//!   that the test pattern under the window does not have (an unpainted window shows its
//!   background, or what was under it).

use std::time::Duration;

use anyhow::Context;
use tandem_tests::agent_window::{self, Desk};
use tandem_tests::{AgentProcess, PatternDisplay};

use crate::live::now_ms;
use crate::report::{Figure, Report};
use crate::step;

/// The epoch milliseconds of the agent's "question shown" trace, once it is there.
fn question_shown(agent: &AgentProcess) -> Option<f64> {
    agent
        .output()
        .lines()
        .find(|l| l.ends_with("] window question shown"))
        .and_then(|l| l.strip_prefix("[trace "))
        .and_then(|l| l.split(']').next())
        .and_then(|ms| ms.parse().ok())
}

/// How many distinct colours that the test pattern lacks a row of the agent's window must
/// hold to count as drawn: anti-aliased text alone has more.
const PAINTED_COLOURS: usize = 4;

/// The pattern's colours (its quadrants, and the counter's black and white), 0xRRGGBB.
fn in_pattern(rgb: u32) -> bool {
    rgb == 0 || rgb == 0xffffff || tandem_tests::QUADRANTS.contains(&rgb)
}

/// Watches `display`: the epoch milliseconds at which the first top-level window mapped
/// after `ready` is sent (over 100×50 pixels) shows painted rows. Gives up after a minute.
fn first_paint(display: &str, ready: std::sync::mpsc::Sender<()>) -> anyhow::Result<f64> {
    use x11rb::connection::Connection;
    use x11rb::protocol::Event;
    use x11rb::protocol::xproto::{
        ChangeWindowAttributesAux, ConnectionExt, EventMask, ImageFormat,
    };

    let (conn, n) = x11rb::rust_connection::RustConnection::connect(Some(display))?;
    let root = conn.setup().roots[n].root;
    conn.change_window_attributes(
        root,
        &ChangeWindowAttributesAux::new().event_mask(EventMask::SUBSTRUCTURE_NOTIFY),
    )?
    .check()?;
    let _ = ready.send(());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut window = None;
    while std::time::Instant::now() < deadline {
        if window.is_none() {
            while let Some(event) = conn.poll_for_event()? {
                if let Event::MapNotify(mapped) = event {
                    let g = conn.get_geometry(mapped.window)?.reply()?;
                    if g.width > 100 && g.height > 50 {
                        window = Some(g);
                        break;
                    }
                }
            }
        }
        if let Some(g) = &window {
            // Every eighth of the window's height: one of them crosses the question's text
            // or the buttons.
            for row in (1..8).map(|eighth| g.height * eighth / 8) {
                let image = conn
                    .get_image(
                        ImageFormat::Z_PIXMAP,
                        root,
                        g.x,
                        g.y.saturating_add(i16::try_from(row).unwrap_or(0)),
                        g.width,
                        1,
                        !0,
                    )?
                    .reply()?;
                // Z-pixmap rows at depth 24: blue, green, red, padding.
                let colours: std::collections::HashSet<u32> = image
                    .data
                    .chunks_exact(4)
                    .map(|p| u32::from(p[2]) << 16 | u32::from(p[1]) << 8 | u32::from(p[0]))
                    .filter(|&rgb| !in_pattern(rgb))
                    .collect();
                if colours.len() >= PAINTED_COLOURS {
                    return Ok(now_ms());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    anyhow::bail!("no window was mapped and painted on {display} within a minute")
}

async fn measure(runs: usize) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let screen = PatternDisplay::start(1280, 720)?;
    // Customers who left stay counted for their grace period: room for every run.
    let (desk, rep) = Desk::open("bench-launch", Some(8)).await?;
    let chrome = &desk.chrome;

    let mut samples = Vec::new();
    let mut painted = Vec::new();
    for run in 0..runs {
        let customer = chrome.browser(&format!("customer-{run}")).await?;
        customer
            .join(&desk.link, &format!("Customer {run}"))
            .await?;
        let dir = desk.downloads.path().join(format!("run-{run}"));
        std::fs::create_dir_all(&dir)?;
        let file = agent_window::download_from_join_page(
            &customer,
            &desk.server.base,
            &dir,
            "#agent-download",
        )
        .await?;
        let mut command = tokio::process::Command::new(&file);
        command.env("DISPLAY", &screen.display);
        let (ready, watching) = std::sync::mpsc::channel();
        let watcher = {
            let display = screen.display.clone();
            std::thread::spawn(move || first_paint(&display, ready))
        };
        // The watcher has selected its events before the agent can map anything (or it
        // failed, and says why when joined).
        let _ = tokio::task::spawn_blocking(move || watching.recv()).await?;
        let started = now_ms();
        let mut agent = agent_window::double_click(command)?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let shown = loop {
            if let Some(ms) = question_shown(&agent) {
                break ms;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the downloaded agent never showed its question:\n{}",
                agent.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        samples.push(shown - started);
        let paint = tokio::task::spawn_blocking(move || watcher.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the paint watcher panicked"))?
            .context("watching for the question on screen")?;
        painted.push(paint - started);
        // The customer leaves: the next run is a new customer with a new download.
        agent.kill();
        let _ = agent.wait().await;
        customer
            .close()
            .await
            .context("closing the customer's browser")?;
    }
    rep.close().await?;
    Ok((samples, painted))
}

pub async fn section(smoke: bool, report: &mut Report) {
    step("from double-click to the consent question");
    let runs = if smoke { 1 } else { 5 };
    let (set, painted) = match measure(runs).await {
        Ok((set, painted)) => (Figure::of(&set), Figure::of(&painted)),
        Err(e) => (
            Figure::Missing(format!("{e:#}")),
            Figure::Missing(format!("{e:#}")),
        ),
    };
    report.add(
        "double-click (downloaded agent started) to the consent question set in the window",
        "ms",
        set,
    );
    report.add(
        "double-click (downloaded agent started) to the consent question painted on screen",
        "ms",
        painted,
    );
}
