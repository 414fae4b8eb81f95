//! The clipboard's text end to end (docs/protocol.md "Clipboard", C1): the rep in headless
//! Chromium and the customer's real agent sharing an Xvfb display, over the agent's
//! `tandem-clipboard` data channel. Text the customer copies in the X session (with xclip,
//! as any X program copies) appears in the rep's console, and text the rep pastes into the
//! console lands on the X session's clipboard, non-ASCII characters intact, but only while
//! the rep holds control: before the grant and after it ends nothing flows either way, and
//! what was on the clipboard before the grant is never sent. Screenshots:
//! target/e2e-artifacts/clipboard/.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use tandem_tests::{AgentProcess, Browser, Chromedriver, PatternDisplay, Server};

/// Copy `text` on `display` as an X program does: xclip owns the clipboard and serves it
/// (in the background, until another client takes the clipboard).
fn copy_in_x(display: &str, text: &str) -> anyhow::Result<()> {
    let mut xclip = Command::new("xclip")
        .args(["-selection", "clipboard", "-i"])
        .env("DISPLAY", display)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("could not run xclip (cargo xtask test installs it)")?;
    xclip
        .stdin
        .take()
        .context("xclip's stdin")?
        .write_all(text.as_bytes())?;
    // The foreground xclip ends once its background copy holds the clipboard.
    let status = xclip.wait()?;
    anyhow::ensure!(status.success(), "xclip -i failed: {status}");
    Ok(())
}

/// What an X program pasting on `display` gets.
fn paste_in_x(display: &str) -> anyhow::Result<String> {
    let output = Command::new("xclip")
        .args(["-selection", "clipboard", "-o"])
        .env("DISPLAY", display)
        .output()
        .context("could not run xclip")?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Wait until an X program pasting on `display` gets `wanted`.
async fn wait_x_clipboard(display: &str, wanted: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = paste_in_x(display)?;
        if now == wanted {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the X clipboard holds {now:?}, not {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The rep pastes `text` into the tile's clipboard box and sends it.
async fn rep_pastes(rep: &Browser, text: &str) -> anyhow::Result<()> {
    let box_ = rep.find("figure.tile .clipboard textarea").await?;
    box_.clear().await?;
    box_.send_keys(text).await?;
    rep.click("figure.tile .clipboard-send").await
}

/// What the tile shows the customer copied (empty: nothing).
async fn copied_shown(rep: &Browser) -> anyhow::Result<String> {
    rep.text("figure.tile .clipboard-copied").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c1_clipboard_text_goes_both_ways_only_while_the_rep_holds_control() -> anyhow::Result<()> {
    let screen = PatternDisplay::start(640, 480)?;
    let display = screen.display.clone();
    let server = Server::start().await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    let chrome = Chromedriver::start("clipboard").await?;
    let rep = chrome.media_browser("rep").await?;
    rep.log_in(&server.base, "rita", "rita-password").await?;
    let (_, link) = rep.start_session(false).await?;
    // The agent's clipboard is its session's ($DISPLAY), as for any X program.
    let mut agent = AgentProcess::spawn_with_env(
        &display,
        &["join", &link, "--name", "Ann"],
        &[("DISPLAY", display.as_str()), ("TANDEM_AGENT_TRACE", "1")],
    )?;
    agent.answer("y").await?;
    rep.wait_text("figure.tile figcaption", "Ann's screen · 640×480")
        .await?;
    rep.find("figure.tile .clipboard").await?;

    // Before control: the rep's text is refused and the customer's clipboard keeps what
    // she copied; what she copied does not reach the console.
    let private = "password: hunter2 (copied before any grant)";
    copy_in_x(&display, private)?;
    rep_pastes(&rep, "not yet").await?;
    rep.wait_text(
        "figure.tile .clipboard-status",
        "The clipboard works only while you control Ann's computer.",
    )
    .await?;
    anyhow::ensure!(paste_in_x(&display)? == private, "the refused text landed");

    // C1: control, clipboard included, once the customer allows it.
    rep.click("#request-control").await?;
    agent
        .wait_for("Rita Rep asks to control your mouse and keyboard, and to pass text")
        .await?;
    agent.answer("y").await?;
    rep.wait_text("#control-state", "You are in control of Ann's computer")
        .await?;
    agent.wait_for("clipboard: watching for viewer").await?;

    // The customer copies: the rep's console shows it, exactly.
    let from_ann = "Grüße aus Oslo – æøå ✓ 日本語\nsecond line";
    copy_in_x(&display, from_ann)?;
    rep.wait_text("figure.tile .clipboard-status", "Ann copied:")
        .await?;
    let shown = copied_shown(&rep).await?;
    anyhow::ensure!(
        shown == from_ann,
        "the console shows {shown:?}, not what Ann copied"
    );
    anyhow::ensure!(
        !agent
            .output()
            .contains(&format!("copied {} bytes", private.len())),
        "what was on the clipboard before the grant was sent"
    );
    rep.screenshot("01-copied-by-ann").await?;

    // The rep pastes: an X program on the customer's side gets it, exactly.
    let from_rita = "Hälsningar från Rita — ñ € ☺";
    rep_pastes(&rep, from_rita).await?;
    rep.wait_text(
        "figure.tile .clipboard-status",
        "The text is on Ann's clipboard.",
    )
    .await?;
    wait_x_clipboard(&display, from_rita).await?;
    // Stored by the agent, it is not sent back as if Ann had copied it: for two seconds
    // (several of the agent's reads) the console still shows what Ann copied...
    for _ in 0..10 {
        anyhow::ensure!(
            copied_shown(&rep).await? == from_ann,
            "the rep's own text came back as Ann's"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ...and what she copies next is the next thing the agent reports copied.
    let next = "Ticket #4711 ✓";
    copy_in_x(&display, next)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while copied_shown(&rep).await? != next {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "Ann's next copy never reached the console"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = agent.output();
    let reported: Vec<&str> = output
        .lines()
        .filter_map(|l| l.split_once("] clipboard: copied ").map(|(_, n)| n))
        .collect();
    let wanted = [
        format!("{} bytes", from_ann.len()),
        format!("{} bytes", next.len()),
    ];
    anyhow::ensure!(
        reported == wanted,
        "the agent reported copies of {reported:?}, not only Ann's two ({wanted:?})"
    );
    rep.screenshot("02-pasted-to-ann").await?;

    // Control given back: nothing flows either way.
    rep.click("#release-control").await?;
    agent.wait_for("clipboard: not watching").await?;
    copy_in_x(&display, "after control")?;
    rep_pastes(&rep, "too late").await?;
    rep.wait_text(
        "figure.tile .clipboard-status",
        "The clipboard works only while you control Ann's computer.",
    )
    .await?;
    anyhow::ensure!(
        paste_in_x(&display)? == "after control",
        "text from the rep landed after control ended"
    );
    anyhow::ensure!(
        copied_shown(&rep).await? == next,
        "what Ann copied after control ended reached the console"
    );
    rep.screenshot("03-after-control").await?;
    Ok(())
}
