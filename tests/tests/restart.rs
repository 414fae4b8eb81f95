//! A server restart is invisible to the people in a session (docs/rules.md, "Restarts"):
//! the real agent streams Xvfb's animated pattern to the rep's Chromium and to a second
//! customer's; control is granted (C1) and chat has gone both ways (R11). Then the server
//! process is killed with SIGKILL and started again on the same port and data directory.
//! Within 10 s everyone is back in the same session, control is still the rep's, chat goes
//! on, the audit log (C3) has everything from before and the comings back after, and
//! neither viewer's decoded-frame counter stood still: the media never went through the
//! server. Artifacts: target/e2e-artifacts/restart/.

use std::time::{Duration, Instant};

use serde_json::Value;
use tandem_tests::media_stats::Timeline;
use tandem_tests::{
    AgentProcess, Browser, Chromedriver, PatternDisplay, ServerProcess, SmtpSink, admin_call_at,
    create_rep_at, server_log,
};

/// The promise: everyone is back within this long of the new start.
const BACK_WITHIN: Duration = Duration::from_secs(10);

/// Everyone in: Rita's Chromium signed in at `rep_base` starts a session; Ann's agent
/// shares the pattern and Bea's Chromium views it, both coming by the link with its port
/// changed to `customers_port` when given; Rita is given control (C1) and a line of chat
/// goes each way (R11), the first saying "Before the `what`".
struct Scene {
    rep: Browser,
    bea: Browser,
    agent: AgentProcess,
    number: String,
}

async fn everyone_in(
    chrome: &Chromedriver,
    screen: &PatternDisplay,
    rep_base: &str,
    customers_port: Option<u16>,
    what: &str,
) -> anyhow::Result<Scene> {
    let rep = chrome.media_browser("rep").await?;
    rep.log_in(rep_base, "rita", "rita-password").await?;
    let (number, mut link) = rep.start_session(false).await?;
    if let Some(port) = customers_port {
        let rep_port = rep_base.rsplit(':').next().unwrap_or_default();
        link = link.replace(&format!(":{rep_port}/"), &format!(":{port}/"));
        anyhow::ensure!(link.contains(&format!(":{port}/")), "{link}");
    }
    let mut agent = AgentProcess::spawn(&screen.display, &["join", &link, "--name", "Ann"])?;
    agent.answer("y").await?;
    rep.wait_text("figure.tile figcaption", "Ann's screen · 640×480")
        .await?;
    let bea = chrome.media_browser("bea").await?;
    bea.join(&link, "Bea").await?;
    bea.wait_text("figure.tile figcaption", "640×480").await?;

    rep.click("#request-control").await?;
    agent
        .wait_for("Rita Rep asks to control your mouse and keyboard")
        .await?;
    agent.answer("y").await?;
    rep.wait_text("#control-state", "You are in control of Ann's computer")
        .await?;
    let before = format!("Before the {what}");
    rep.fill("#chat-text", &before).await?;
    rep.click("#chat-send").await?;
    bea.wait_text("#messages", &before).await?;
    bea.fill("#chat-text", "Bea says hi").await?;
    bea.click("#chat-send").await?;
    rep.wait_text("#messages", "Bea says hi").await?;
    rep.wait_text("#connection", "Connected").await?;
    rep.screenshot("01-before").await?;
    Ok(Scene {
        rep,
        bea,
        agent,
        number,
    })
}

/// After the `what`: control is still the rep's (C1), chat goes on (R11), and what was
/// said before is still on the rep's page.
async fn still_in_control_and_talking(
    rep: &Browser,
    bea: &Browser,
    what: &str,
) -> anyhow::Result<()> {
    rep.wait_text("#control-state", "You are in control of Ann's computer")
        .await?;
    let after = format!("After the {what}");
    bea.fill("#chat-text", &after).await?;
    bea.click("#chat-send").await?;
    rep.wait_text("#messages", &after).await?;
    let rep_chat = rep.text("#messages").await?;
    anyhow::ensure!(
        rep_chat.contains(&format!("Before the {what}")) && rep_chat.contains("Bea says hi"),
        "{rep_chat}"
    );
    Ok(())
}

/// The session's audit actions at `base`, oldest first (C3).
async fn audit_actions(
    http: &reqwest::Client,
    base: &str,
    number: &str,
) -> anyhow::Result<Vec<String>> {
    let path = format!("/api/admin/audit?session={number}&limit=1000");
    let entries = admin_call_at(http, base, "GET", &path, Value::Null).await?;
    let mut actions: Vec<String> = entries
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|e| e["action"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    actions.reverse(); // oldest first
    Ok(actions)
}

/// Neither viewer's picture stood still (2 s or more) from `lead` before the kill on.
fn no_stall(
    what: &str,
    timelines: [(&str, &Timeline); 2],
    from: Duration,
    to: Duration,
) -> anyhow::Result<()> {
    for (who, timeline) in timelines {
        let stall = timeline.longest_stall(from, to);
        eprintln!("{what}: {who}'s longest stall {stall:?}");
        anyhow::ensure!(
            timeline.readings.len() > 20,
            "{who}: too few readings ({})",
            timeline.readings.len()
        );
        anyhow::ensure!(
            stall < Duration::from_secs(2),
            "{who}'s picture stood still for {stall:?} around the {what}: {:?}",
            timeline.readings
        );
    }
    Ok(())
}

/// C3: the audit before the kill is all there, then the four comings back (rep, Ann, her
/// agent, Bea), and nobody left. The records of the returns are stored after the answers
/// went out: waited for, generously.
async fn audit_kept(
    http: &reqwest::Client,
    base: &str,
    number: &str,
    before: &[String],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let after = audit_actions(http, base, number).await?;
        let back = after[before.len().min(after.len())..]
            .iter()
            .filter(|a| *a == "reconnected")
            .count();
        if back >= 4 || Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    anyhow::ensure!(
        after.len() >= before.len() && after[..before.len()] == before[..],
        "the audit before the kill changed:\nbefore {before:?}\nafter {after:?}"
    );
    let back = after[before.len()..]
        .iter()
        .filter(|a| *a == "reconnected")
        .count();
    anyhow::ensure!(
        back == 4,
        "rep, Ann, her agent and Bea should each have reconnected once: {after:?}"
    );
    anyhow::ensure!(
        !after.iter().any(|a| a == "left" || a == "ended"),
        "nobody left: {after:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_goes_on_while_the_server_is_killed_and_started_again() -> anyhow::Result<()> {
    let screen = PatternDisplay::start(640, 480)?;
    let data = tempfile::tempdir()?;
    let port = SmtpSink::free_port()?;
    let log = server_log("restart")?;
    let _ = std::fs::remove_file(&log);
    let mut server = ServerProcess::start(data.path(), port, &log).await?;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    create_rep_at(&http, &base, "rita", "Rita Rep", "rita-password").await?;

    let chrome = Chromedriver::start("restart").await?;
    let Scene {
        rep,
        bea,
        mut agent,
        number,
    } = everyone_in(&chrome, &screen, &base, None, "restart").await?;
    let before = audit_actions(&http, &base, &number).await?;
    anyhow::ensure!(before.iter().any(|a| a == "control_granted"), "{before:?}");

    // Both viewers' decoded frames are read every 200 ms from before the kill until
    // everyone is back and a few seconds more.
    let start = Instant::now();
    let every = Duration::from_millis(200);
    let mut rep_timeline = Timeline::default();
    let mut bea_timeline = Timeline::default();
    let lead = Duration::from_secs(2);
    tokio::join!(
        rep_timeline.extend(&rep, every, lead, start),
        bea_timeline.extend(&bea, every, lead, start),
    );
    let killed_at = start.elapsed();
    server.kill().await?;
    let (second, (), ()) = tokio::join!(
        async {
            // Both pages notice, and say so.
            rep.wait_text("#connection", "reconnecting").await?;
            bea.wait_text("#connection", "reconnecting").await?;
            // The old server's sockets are gone with it; the port is free again.
            let second = ServerProcess::start(data.path(), port, &log).await?;
            let started = Instant::now();
            rep.wait_text("#connection", "Connected").await?;
            bea.wait_text("#connection", "Connected").await?;
            agent
                .wait_for_within("Reconnected to the support server.", BACK_WITHIN * 3)
                .await?;
            let back = started.elapsed();
            eprintln!("restart: everyone back {back:?} after the new start");
            anyhow::ensure!(
                back <= BACK_WITHIN,
                "everyone was back {back:?} after the new start, more than {BACK_WITHIN:?}"
            );
            anyhow::Ok(second)
        },
        rep_timeline.extend(&rep, every, Duration::from_secs(14), start),
        bea_timeline.extend(&bea, every, Duration::from_secs(14), start),
    );
    let second = second?;
    rep.screenshot("02-after").await?;

    // The picture never stopped: frames were decoded throughout, kill and restart included.
    no_stall(
        "restart",
        [("the rep", &rep_timeline), ("Bea", &bea_timeline)],
        killed_at.saturating_sub(lead),
        start.elapsed(),
    )?;

    still_in_control_and_talking(&rep, &bea, "restart").await?;
    rep.fill("#chat-text", "Still here").await?;
    rep.click("#chat-send").await?;
    bea.wait_text("#messages", "Still here").await?;

    audit_kept(&http, &second.base, &number, &before).await?;
    agent.kill();
    Ok(())
}

#[path = "../../signaling/tests/common/postgres.rs"]
mod postgres;
#[path = "../../signaling/tests/common/redis.rs"]
mod redis;

/// Wait until `/readyz` at `base` answers 200 with text starting `wanted`.
async fn until_ready(base: &str, wanted: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = reqwest::get(format!("{base}/readyz")).await
            && response.status() == 200
            && response
                .text()
                .await
                .unwrap_or_default()
                .starts_with(wanted)
        {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{base} never said {wanted:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Several servers on one site (docs/self-hosting.md, "Several servers"): on one
/// PostgreSQL, the first server serves (every live session runs on it) and nobody talks to
/// it directly; the rep's Chromium uses the second, the customer's agent and a second
/// customer's Chromium the third, which forward to it. The agent streams Xvfb's pattern
/// to both; control is granted (C1) and chat goes both ways (R11). The serving server is
/// killed with SIGKILL: within 15 s everyone is back in the session through the server
/// they use, one of which has taken the site over; control is still the rep's, the audit
/// (C3) is complete, and neither viewer's decoded-frame counter stood still. The servers
/// share one Redis (`--redis`), as the site does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_goes_on_when_the_server_that_serves_the_site_is_killed() -> anyhow::Result<()> {
    const BACK_WITHIN_FAILOVER: Duration = Duration::from_secs(15);
    let screen = PatternDisplay::start(640, 480)?;
    let db = tokio::task::spawn_blocking(postgres::Postgres::start)
        .await?
        .map_err(|e| anyhow::anyhow!("could not start PostgreSQL: {e}"))?;
    let redis = tokio::task::spawn_blocking(redis::Redis::start)
        .await?
        .map_err(|e| anyhow::anyhow!("could not start Redis: {e}"))?;
    let log = server_log("failover")?;
    let _ = std::fs::remove_file(&log);
    let dirs = [
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    ];
    let ports = [
        SmtpSink::free_port()?,
        SmtpSink::free_port()?,
        SmtpSink::free_port()?,
    ];
    let postgres = ["--postgres", db.url.as_str(), "--redis", redis.url.as_str()];
    let mut serving = ServerProcess::start_with(dirs[0].path(), ports[0], &log, &postgres).await?;
    until_ready(&serving.base, "ready\n").await?;
    let reps_server = ServerProcess::start_with(dirs[1].path(), ports[1], &log, &postgres).await?;
    let customers_server =
        ServerProcess::start_with(dirs[2].path(), ports[2], &log, &postgres).await?;
    for server in [&reps_server, &customers_server] {
        until_ready(&server.base, "ready: standby, forwarding").await?;
    }
    let http = reqwest::Client::new();
    create_rep_at(
        &http,
        &reps_server.base,
        "rita",
        "Rita Rep",
        "rita-password",
    )
    .await?;

    let chrome = Chromedriver::start("failover").await?;
    // The customers come by the third server.
    let Scene {
        rep,
        bea,
        mut agent,
        number,
    } = everyone_in(
        &chrome,
        &screen,
        &reps_server.base,
        Some(ports[2]),
        "failover",
    )
    .await?;
    let before = audit_actions(&http, &customers_server.base, &number).await?;
    anyhow::ensure!(before.iter().any(|a| a == "control_granted"), "{before:?}");

    let start = Instant::now();
    let every = Duration::from_millis(200);
    let mut rep_timeline = Timeline::default();
    let mut bea_timeline = Timeline::default();
    let lead = Duration::from_secs(2);
    tokio::join!(
        rep_timeline.extend(&rep, every, lead, start),
        bea_timeline.extend(&bea, every, lead, start),
    );
    let killed_at = start.elapsed();
    serving.kill().await?;
    let killed = Instant::now();
    let (back, (), ()) = tokio::join!(
        async {
            rep.wait_text("#connection", "Connected").await?;
            bea.wait_text("#connection", "Connected").await?;
            agent
                .wait_for_within(
                    "Reconnected to the support server.",
                    BACK_WITHIN_FAILOVER * 3,
                )
                .await?;
            anyhow::Ok(killed.elapsed())
        },
        rep_timeline.extend(&rep, every, Duration::from_secs(18), start),
        bea_timeline.extend(&bea, every, Duration::from_secs(18), start),
    );
    let back = back?;
    eprintln!("failover: everyone back {back:?} after the kill");
    anyhow::ensure!(
        back <= BACK_WITHIN_FAILOVER,
        "everyone was back {back:?} after the kill, more than {BACK_WITHIN_FAILOVER:?}"
    );
    rep.screenshot("02-after").await?;
    no_stall(
        "failover",
        [("the rep", &rep_timeline), ("Bea", &bea_timeline)],
        killed_at.saturating_sub(lead),
        start.elapsed(),
    )?;

    still_in_control_and_talking(&rep, &bea, "failover").await?;
    audit_kept(&http, &reps_server.base, &number, &before).await?;
    agent.kill();
    Ok(())
}

/// A customer who starts the agent while the server is down (an upgrade under way) is not
/// sent back for a new download: the agent says it is waiting for the server, tries again,
/// and attaches with the same one-time token once the server is back (the token is kept
/// across the restart, and only a join uses it). A customer who joins with the agent alone
/// (`tandem-agent join <link>`) meanwhile gets in the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_started_while_the_server_is_down_attaches_once_it_is_back() -> anyhow::Result<()>
{
    let screen = PatternDisplay::start(320, 240)?;
    let data = tempfile::tempdir()?;
    let port = SmtpSink::free_port()?;
    let log = server_log("restart-agent-waits")?;
    let _ = std::fs::remove_file(&log);
    let mut server = ServerProcess::start(data.path(), port, &log).await?;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    create_rep_at(&http, &base, "rita", "Rita Rep", "rita-password").await?;

    let chrome = Chromedriver::start("restart-agent-waits").await?;
    let rep = chrome.media_browser("rep").await?;
    rep.log_in(&base, "rita", "rita-password").await?;
    let (_number, link) = rep.start_session(false).await?;
    let ann = chrome.media_browser("ann").await?;
    ann.join(&link, "Ann").await?;
    let token = ann.attach_command_token().await?;

    server.kill().await?;
    let mut agent = AgentProcess::spawn(
        &screen.display,
        &["attach", "--server", &base, "--token", &token],
    )?;
    // Bo joins with the agent alone (`join`): his own join waits for the server too.
    let mut bo = AgentProcess::spawn(&screen.display, &["join", &link, "--name", "Bo"])?;
    agent.wait_for("Waiting for the support server").await?;
    bo.wait_for("Waiting for the support server").await?;
    let _second = ServerProcess::start(data.path(), port, &log).await?;
    rep.wait_text("#participants li[data-name=Bo]", "agent")
        .await?;
    rep.wait_text("#participants li[data-name=Ann]", "agent")
        .await?;
    agent.answer("n").await?;
    rep.wait_text("#notices", "Ann declined to share their screen")
        .await?;
    agent.kill();
    bo.kill();
    for browser in [rep, ann] {
        browser.close().await?;
    }
    Ok(())
}

/// A WebACD agent's dashboard has no resume token: after a restart (SIGTERM, which closes it
/// with 1012) it connects again by itself and sends `dashboard` again with the agent's
/// availability as it is now, so the agent keeps getting offers without reloading the page
/// (docs/protocol.md, "Server restarts").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webacd_dashboard_reconnects_by_itself_after_a_restart() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let port = SmtpSink::free_port()?;
    let log = server_log("restart-dashboard")?;
    let _ = std::fs::remove_file(&log);
    let mut server = ServerProcess::start(data.path(), port, &log).await?;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    for (username, name) in [("sam", "Sam Support"), ("rita", "Rita Rep")] {
        create_rep_at(
            &http,
            &base,
            username,
            name,
            &format!("{username}-password"),
        )
        .await?;
    }
    let reps = admin_call_at(&http, &base, "GET", "/api/admin/reps", Value::Null).await?;
    for rep in reps.as_array().into_iter().flatten() {
        if rep["username"] != "admin" {
            let path = format!("/api/admin/reps/{}", rep["id"]);
            let body = serde_json::json!({"is_webacd": true});
            admin_call_at(&http, &base, "PATCH", &path, body).await?;
        }
    }

    let chrome = Chromedriver::start("restart-dashboard").await?;
    let sam = chrome.browser("sam").await?;
    sam.log_in(&base, "sam", "sam-password").await?;
    sam.find("#webacd:not([hidden])").await?;
    // Available after the dashboard connected: what a reconnect sends must follow it.
    sam.wait_text("#agents li[data-agent=sam]", "away").await?;
    sam.click("#available").await?;
    sam.wait_text("#agents li[data-agent=sam]", "available")
        .await?;

    server.terminate().await?;
    let _second = ServerProcess::start(data.path(), port, &log).await?;
    // Rita comes and says she is available: Sam's dashboard hears it only over a live
    // connection, and still counts Sam available.
    let rita = chrome.browser("rita").await?;
    rita.log_in(&base, "rita", "rita-password").await?;
    rita.find("#webacd:not([hidden])").await?;
    rita.wait_text("#agents li[data-agent=rita]", "away")
        .await?;
    rita.click("#available").await?;
    sam.wait_text("#agents li[data-agent=rita]", "available")
        .await?;
    let sam_row = sam.text("#agents li[data-agent=sam]").await?;
    anyhow::ensure!(
        sam_row.contains("available"),
        "Sam after the restart: {sam_row}"
    );
    for browser in [sam, rita] {
        browser.close().await?;
    }
    Ok(())
}
