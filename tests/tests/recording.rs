//! Recording end to end (docs/rules.md "Recording"): the customer's real agent shares the
//! test pattern on Xvfb, the rep in headless Chromium records 30 seconds of it, and:
//! everyone (the rep, another customer's page, the agent) sees that it is being recorded;
//! the MP4 that comes out is read by ffprobe (an H.264 track, about 30 seconds long) and,
//! decoded by ffmpeg, shows the pattern's frame counter advancing as it did on the screen;
//! its text track has the chat; Chromium plays it on the admin page, and a frame painted
//! on a canvas shows the pattern; deleting it removes the file, and the audit log has all
//! of it. And a restart (SIGKILL) does not stop a recording: it goes on into a new file.
//! Screenshots: target/e2e-artifacts/recording/.

use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use tandem_tests::{
    ADMIN_PASSWORD, AgentProcess, Browser, COUNTER_BITS, COUNTER_CELL, Chromedriver,
    PatternDisplay, Server, ServerProcess, SmtpSink, admin_call_at, counter_origin, create_rep_at,
    server_log,
};

const WIDTH: u16 = 640;
const HEIGHT: u16 = 480;
/// How long the rep records.
const RECORDED: Duration = Duration::from_secs(30);

/// A rep's login cookie, for the API as the console uses it.
async fn log_in(server: &Server, username: &str, password: &str) -> anyhow::Result<String> {
    log_in_at(&server.base, username, password).await
}

async fn log_in_at(base: &str, username: &str, password: &str) -> anyhow::Result<String> {
    let login = reqwest::Client::new()
        .post(format!("{base}/api/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await?;
    Ok(login
        .headers()
        .get("set-cookie")
        .with_context(|| format!("no login cookie ({})", login.status()))?
        .to_str()?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned())
}

async fn get(server: &Server, cookie: &str, path: &str) -> anyhow::Result<reqwest::Response> {
    get_at(&server.base, cookie, path).await
}

async fn get_at(base: &str, cookie: &str, path: &str) -> anyhow::Result<reqwest::Response> {
    Ok(reqwest::Client::new()
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await?)
}

/// The recordings the account sees, once `done` holds for them (30 s at most).
async fn recordings_when(
    server: &Server,
    cookie: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> anyhow::Result<Vec<Value>> {
    recordings_at(&server.base, cookie, what, done).await
}

async fn recordings_at(
    base: &str,
    cookie: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> anyhow::Result<Vec<Value>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let list: Vec<Value> = get_at(base, cookie, "/api/recordings")
            .await?
            .json()
            .await?;
        if done(&list) {
            return Ok(list);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{what}: the recordings are {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn ffprobe(path: &std::path::Path) -> anyhow::Result<Value> {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .context("ffprobe runs (cargo xtask test installs ffmpeg)")?;
    anyhow::ensure!(
        output.status.success(),
        "ffprobe cannot read the recording: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// The pattern's frame counter in the recording's picture at `at` seconds, as ffmpeg
/// decodes it.
fn counter_at(path: &std::path::Path, at: f64) -> anyhow::Result<u32> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &format!("{at}"), "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .context("ffmpeg runs")?;
    anyhow::ensure!(
        output.status.success(),
        "ffmpeg cannot decode the recording at {at} s: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rgb = output.stdout;
    let width = usize::from(WIDTH);
    anyhow::ensure!(
        rgb.len() == width * usize::from(HEIGHT) * 3,
        "a {}-byte picture, not {WIDTH}×{HEIGHT}",
        rgb.len()
    );
    let pixel = |x: u32, y: u32| {
        let i = (y as usize * width + x as usize) * 3;
        (rgb[i], rgb[i + 1], rgb[i + 2])
    };
    // The top-left quadrant is red: the picture is the pattern, not something else.
    let (r, g, b) = pixel(40, 40);
    anyhow::ensure!(
        r > 0xc0 && g < 0x40 && b < 0x40,
        "the recording at {at} s is not the pattern: ({r}, {g}, {b}) top left"
    );
    let (x, y) = counter_origin(WIDTH, HEIGHT);
    let mut n = 0;
    for bit in 0..COUNTER_BITS {
        let (r, _, _) = pixel(
            x + bit * COUNTER_CELL + COUNTER_CELL / 2,
            y + COUNTER_CELL / 2,
        );
        if r > 0x80 {
            n |= 1 << bit;
        }
    }
    Ok(n)
}

/// The recording's sound decoded by ffmpeg (mono, 48 kHz): the loudness (RMS, 0–1) of
/// each 100 ms.
fn loudness(path: &std::path::Path) -> anyhow::Result<Vec<f64>> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-map", "0:a", "-ac", "1", "-ar", "48000", "-f", "s16le", "-",
        ])
        .output()
        .context("ffmpeg runs")?;
    anyhow::ensure!(
        output.status.success(),
        "ffmpeg cannot decode the recording's sound: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let samples: Vec<f64> = output
        .stdout
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    Ok(samples
        .chunks(4800)
        .map(|c| (c.iter().map(|s| s * s).sum::<f64>() / c.len() as f64).sqrt())
        .collect())
}

/// Wait until the rep's console sends the call's sound to the recorder.
async fn sound_connected(rep: &Browser) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let state = rep
            .client
            .execute(
                "const r = window.tandem.callRecording;
                 return r.pc ? r.pc.connectionState : 'no connection';",
                vec![],
            )
            .await?;
        if state == "connected" {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the console never sent the call's sound to the recorder: {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The admin plays the recording on the admin page; a frame is painted on a canvas and
/// its top-left pixel returned (0xRRGGBB), once the video plays.
async fn played_pixel(admin: &Browser, id: i64) -> anyhow::Result<u32> {
    admin
        .click(&format!("tr[data-recording='{id}'] button.play"))
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let state = admin
            .client
            .execute(
                "const v = document.querySelector('#recording-video');
                 if (!v) return 'no video element';
                 if (v.error) return 'error ' + v.error.code + ': ' + v.error.message;
                 if (v.readyState < 2 || v.currentTime < 1) return 'waiting: ' + v.readyState + ' at ' + v.currentTime;
                 const c = document.createElement('canvas');
                 c.width = v.videoWidth; c.height = v.videoHeight;
                 const g = c.getContext('2d');
                 g.drawImage(v, 0, 0);
                 const p = g.getImageData(40, 40, 1, 1).data;
                 return (p[0] << 16) | (p[1] << 8) | p[2];",
                vec![],
            )
            .await?;
        if let Some(rgb) = state.as_u64() {
            return Ok(u32::try_from(rgb)?);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline && !state.to_string().contains("error"),
            "the admin page does not play the recording: {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A server where reps may record, with the rep `rita` ("Rita Rep").
async fn recording_site() -> anyhow::Result<Server> {
    let server = Server::start().await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    server
        .admin_call(
            "PUT",
            "/api/admin/settings",
            json!({"max_customers_per_rep": 5, "allow_multiple_sessions": false,
                   "allow_recording": true, "recording_retention_days": 30}),
        )
        .await?;
    Ok(server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_session_plays_back_with_its_pattern_chat_and_audit() -> anyhow::Result<()> {
    let screen = PatternDisplay::start(WIDTH, HEIGHT)?;
    let server = recording_site().await?;
    let chrome = Chromedriver::start("recording").await?;
    let rep = chrome.media_browser("rep").await?;
    rep.log_in(&server.base, "rita", "rita-password").await?;
    let (_, link) = rep.start_session(false).await?;
    let mut agent = AgentProcess::spawn(&screen.display, &["join", &link, "--name", "Ann"])?;
    agent.answer("y").await?;
    rep.wait_text("figure.tile figcaption", "Ann's screen · 640×480")
        .await?;
    let bea = chrome.browser("bea").await?;
    bea.join(&link, "Bea").await?;
    anyhow::ensure!(
        !bea.is_shown("#recording").await?,
        "recording shown before it started"
    );
    // A call, with the rep's microphone (Chromium's fake one beeps).
    rep.click("#start-call").await?;
    rep.wait_text("#call-status", "1 in the call").await?;

    rep.click("#record").await?;
    rep.wait_text("#recording", "Recording").await?;
    sound_connected(&rep).await?;
    bea.wait_text("#recording", "Recording").await?;
    agent.wait_for("This session is being recorded").await?;
    rep.wait_text("#participants", "Recorder").await?;
    let cookie = log_in(&server, "rita", "rita-password").await?;
    let going = recordings_when(&server, &cookie, "the recording starts", |l| {
        l.len() == 1 && l[0]["state"] == "recording"
    })
    .await?;
    rep.fill("#chat-text", "hello from the recorded session")
        .await?;
    rep.click("#chat-send").await?;
    rep.client.execute("window.scrollTo(0, 0)", vec![]).await?;
    rep.screenshot("01-recording").await?;
    // The recording's length is what this test is about: 30 s of the pattern.
    tokio::time::sleep(RECORDED).await;

    rep.click("#stop-record").await?;
    rep.wait_gone("#recording:not([hidden])").await?;
    bea.wait_gone("#recording:not([hidden])").await?;
    agent
        .wait_for("The recording of this session stopped")
        .await?;
    let list = recordings_when(&server, &cookie, "the recording ends", |l| {
        l.len() == 1 && l[0]["state"] == "done"
    })
    .await?;
    let recording = &list[0];
    let id = recording["id"].as_i64().context("id")?;
    anyhow::ensure!(id == going[0]["id"].as_i64().context("id")?);
    anyhow::ensure!(
        recording["title"] == "Ann's computer: desktop",
        "{recording}"
    );
    anyhow::ensure!(recording["started_by_name"] == "Rita Rep", "{recording}");

    // The file, as the console downloads it.
    let video = get(&server, &cookie, &format!("/api/recordings/{id}/video")).await?;
    anyhow::ensure!(video.status() == 200, "download: {}", video.status());
    anyhow::ensure!(
        video.headers()["content-type"] == "video/mp4",
        "{:?}",
        video.headers()
    );
    let bytes = video.bytes().await?;
    anyhow::ensure!(
        recording["bytes"].as_u64() == Some(bytes.len() as u64),
        "the row says {} bytes, the download has {}",
        recording["bytes"],
        bytes.len()
    );
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("recording.mp4");
    std::fs::write(&path, &bytes)?;
    let probe = ffprobe(&path)?;
    let stream = &probe["streams"][0];
    anyhow::ensure!(stream["codec_name"] == "h264", "{probe}");
    anyhow::ensure!(
        (stream["width"].as_u64(), stream["height"].as_u64()) == (Some(640), Some(480)),
        "{probe}"
    );
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .context("a duration")?;
    anyhow::ensure!(
        (25.0..=40.0).contains(&duration),
        "the recording is {duration} s long, for 30 s recorded"
    );
    // The counter goes on ten times a second: 15 s later, about 150 on.
    let early = counter_at(&path, 5.0)?;
    let late = counter_at(&path, 20.0)?;
    let advanced = (late + 256 - early) % 256;
    anyhow::ensure!(
        (100..=200).contains(&advanced),
        "the counter went from {early} to {late} in 15 s of recording"
    );

    let events = get(&server, &cookie, &format!("/api/recordings/{id}/events"))
        .await?
        .text()
        .await?;
    anyhow::ensure!(events.starts_with("WEBVTT"), "{events}");
    anyhow::ensure!(
        events.contains("Rita Rep: hello from the recorded session"),
        "the chat is not in the text track: {events}"
    );

    // Chromium plays it on the admin page.
    let admin = chrome.media_browser("admin").await?;
    admin.log_in(&server.base, "admin", ADMIN_PASSWORD).await?;
    admin.goto(&format!("{}/admin", server.base)).await?;
    let rgb = played_pixel(&admin, id).await?;
    let (r, g, b) = (rgb >> 16 & 0xff, rgb >> 8 & 0xff, rgb & 0xff);
    anyhow::ensure!(
        r > 0xc0 && g < 0x40 && b < 0x40,
        "the played frame is not the pattern: #{rgb:06x} top left"
    );
    // The call's sound: its track, and the microphone's beeps in it.
    let sound = &probe["streams"][1];
    anyhow::ensure!(
        sound["codec_type"] == "audio" && sound["codec_name"] == "opus",
        "no sound track: {probe}"
    );
    let loud = loudness(&path)?;
    let beeps = loud.iter().filter(|&&rms| rms > 0.003).count();
    eprintln!("the call's sound: {beeps} loud 100 ms of {}", loud.len());
    anyhow::ensure!(
        beeps >= 10,
        "the call's sound is not in the recording: {beeps} loud 100 ms of {}",
        loud.len()
    );
    admin.screenshot("02-played-on-the-admin-page").await?;

    // Another rep sees nothing of it; its starter deletes it.
    server
        .create_rep("otto", "Otto Other", "otto-password")
        .await?;
    let otto = log_in(&server, "otto", "otto-password").await?;
    let theirs: Vec<Value> = get(&server, &otto, "/api/recordings").await?.json().await?;
    anyhow::ensure!(theirs.is_empty(), "another rep sees {theirs:?}");
    let refused = get(&server, &otto, &format!("/api/recordings/{id}/video")).await?;
    anyhow::ensure!(refused.status() == 404, "another rep: {}", refused.status());
    let refused = get(&server, &otto, &format!("/api/recordings/{id}/events")).await?;
    anyhow::ensure!(
        refused.status() == 404,
        "another rep's events: {}",
        refused.status()
    );
    let refused = reqwest::Client::new()
        .delete(format!("{}/api/recordings/{id}", server.base))
        .header("cookie", &otto)
        .send()
        .await?;
    anyhow::ensure!(
        refused.status() == 404,
        "another rep deletes: {}",
        refused.status()
    );
    let deleted = reqwest::Client::new()
        .delete(format!("{}/api/recordings/{id}", server.base))
        .header("cookie", &cookie)
        .send()
        .await?;
    anyhow::ensure!(deleted.status() == 204, "delete: {}", deleted.status());
    let gone = get(&server, &cookie, &format!("/api/recordings/{id}/video")).await?;
    anyhow::ensure!(gone.status() == 404, "after deleting: {}", gone.status());
    let left: Vec<_> = std::fs::read_dir(server.state.recordings.dir())?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    anyhow::ensure!(left.is_empty(), "files left after deleting: {left:?}");

    // A recording that cannot be written stops at once, for everyone, and the rep hears
    // why: here the recordings folder has become a file.
    let folder = server.state.recordings.dir().to_owned();
    std::fs::remove_dir_all(&folder)?;
    std::fs::write(&folder, b"not a folder")?;
    rep.click("#record").await?;
    rep.wait_text("#notices", "the server could not write it")
        .await?;
    rep.wait_gone("#recording:not([hidden])").await?;
    bea.wait_gone("#recording:not([hidden])").await?;
    anyhow::ensure!(
        rep.is_shown("#record").await?,
        "the rep cannot try again after a failed recording"
    );

    server.state.flush().await;
    let audit = server
        .admin_call("GET", "/api/admin/audit?limit=500", Value::Null)
        .await?;
    let actions: Vec<&str> = audit
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for wanted in [
        "recording_started",
        "recording_stopped",
        "recording_deleted",
    ] {
        anyhow::ensure!(actions.contains(&wanted), "no {wanted} in {actions:?}");
    }
    drop(agent);
    Ok(())
}

/// What ffprobe reads of a recording downloaded from `base`: its frames and duration.
async fn probe_download(base: &str, cookie: &str, recording: &Value) -> anyhow::Result<(u64, f64)> {
    let id = recording["id"].as_i64().context("id")?;
    let video = get_at(base, cookie, &format!("/api/recordings/{id}/video")).await?;
    anyhow::ensure!(video.status() == 200, "download {id}: {}", video.status());
    let bytes = video.bytes().await?;
    anyhow::ensure!(
        recording["bytes"].as_u64() == Some(bytes.len() as u64),
        "recording {id}: the row says {} bytes, the download has {}",
        recording["bytes"],
        bytes.len()
    );
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(format!("{id}.mp4"));
    std::fs::write(&path, &bytes)?;
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "ffprobe cannot read recording {id}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let probe: Value = serde_json::from_slice(&output.stdout)?;
    anyhow::ensure!(probe["streams"][0]["codec_name"] == "h264", "{probe}");
    let frames = probe["streams"][0]["nb_read_frames"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let duration = probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    Ok((frames, duration))
}

/// docs/rules.md "Recording": a restart does not stop it. The server process is killed
/// with SIGKILL while a rep records and started again on the same data: the file it was
/// writing plays up to its last second and is listed as `interrupted`, and the recording
/// goes on, with the badge still shown, into a new file that completes when the rep stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_goes_on_into_a_new_file_when_the_server_is_killed_and_started_again()
-> anyhow::Result<()> {
    let screen = PatternDisplay::start(WIDTH, HEIGHT)?;
    let data = tempfile::tempdir()?;
    let port = SmtpSink::free_port()?;
    let log = server_log("recording-restart")?;
    let _ = std::fs::remove_file(&log);
    let mut server = ServerProcess::start(data.path(), port, &log).await?;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    create_rep_at(&http, &base, "rita", "Rita Rep", "rita-password").await?;
    admin_call_at(
        &http,
        &base,
        "PUT",
        "/api/admin/settings",
        json!({"max_customers_per_rep": 5, "allow_multiple_sessions": false,
               "allow_recording": true}),
    )
    .await?;
    let chrome = Chromedriver::start("recording-restart").await?;
    let rep = chrome.media_browser("rep").await?;
    rep.log_in(&base, "rita", "rita-password").await?;
    let (_, link) = rep.start_session(false).await?;
    let mut agent = AgentProcess::spawn(&screen.display, &["join", &link, "--name", "Ann"])?;
    agent.answer("y").await?;
    rep.wait_text("figure.tile figcaption", "Ann's screen · 640×480")
        .await?;
    rep.click("#record").await?;
    rep.wait_text("#recording", "Recording").await?;
    let cookie = log_in_at(&base, "rita", "rita-password").await?;
    recordings_at(&base, &cookie, "the recording starts", |l| {
        l.len() == 1 && l[0]["state"] == "recording"
    })
    .await?;
    // Some seconds of the pattern in the first file: three fragments on disk.
    wait_fragments(&data.path().join("recordings"), 3).await?;

    server.kill().await?;
    rep.wait_text("#connection", "reconnecting").await?;
    let _second = ServerProcess::start(data.path(), port, &log).await?;
    rep.wait_text("#connection", "Connected").await?;
    agent
        .wait_for_within(
            "Reconnected to the support server.",
            Duration::from_secs(30),
        )
        .await?;
    anyhow::ensure!(
        rep.is_shown("#recording").await?,
        "the badge went with the restart"
    );
    let list = recordings_at(&base, &cookie, "a new file after the restart", |l| {
        l.len() == 2 && l.iter().any(|r| r["state"] == "recording")
    })
    .await?;
    let cut = list
        .iter()
        .find(|r| r["state"] == "interrupted")
        .with_context(|| format!("the first file is not interrupted: {list:?}"))?
        .clone();
    wait_fragments(&data.path().join("recordings"), 3).await?;
    rep.click("#stop-record").await?;
    rep.wait_gone("#recording:not([hidden])").await?;
    let list = recordings_at(&base, &cookie, "the second file completes", |l| {
        l.iter().any(|r| r["state"] == "done")
    })
    .await?;
    let done = list
        .iter()
        .find(|r| r["state"] == "done")
        .context("done")?
        .clone();

    anyhow::ensure!(
        cut["duration_ms"].as_i64().is_some_and(|ms| ms >= 2000),
        "the cut file's length is not kept: {cut}"
    );
    let (frames, duration) = probe_download(&base, &cookie, &cut).await?;
    anyhow::ensure!(
        frames >= 10 && duration >= 2.0,
        "the cut file has {frames} frames, {duration} s, for about 6 s recorded"
    );
    let (frames, duration) = probe_download(&base, &cookie, &done).await?;
    anyhow::ensure!(
        frames >= 10 && duration >= 2.0,
        "the file after the restart has {frames} frames, {duration} s"
    );
    agent.kill();
    Ok(())
}

/// Wait (up to a minute) until the newest recording in `dir` has `n` fragments written:
/// as much of the pattern as the checks after it need, however loaded the machine.
async fn wait_fragments(dir: &std::path::Path, n: usize) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let newest = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "mp4"))
            .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
        let fragments = newest
            .and_then(|e| std::fs::read(e.path()).ok())
            .map_or(0, |bytes| bytes.windows(4).filter(|w| w == b"moof").count());
        if fragments >= n {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the newest recording in {} has {fragments} fragments, not {n}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// docs/rules.md "Recording": a screen the rep shares from the console is recorded too,
/// in a file of its own. Chromium sends it to the recorder as H.264 (all the recorder
/// takes), and the MP4 has an H.264 track of the shared screen's size (Chromium's fake
/// capture, 800×450) whose frames ffprobe counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_the_rep_shares_from_the_console_is_recorded_too() -> anyhow::Result<()> {
    let server = recording_site().await?;
    let chrome = Chromedriver::start("recording-rep-screen").await?;
    let rep = chrome.media_browser("rep").await?;
    rep.log_in(&server.base, "rita", "rita-password").await?;
    let (_, link) = rep.start_session(false).await?;
    let ann = chrome.media_browser("ann").await?;
    ann.join(&link, "Ann").await?;
    rep.wait_text("#participants", "Ann").await?;

    rep.click("#record").await?;
    rep.wait_text("#recording", "Recording").await?;
    rep.click("#share-screen").await?;
    rep.find("#stop-share:not([hidden])").await?;
    let cookie = log_in(&server, "rita", "rita-password").await?;
    recordings_when(&server, &cookie, "the rep's screen is recorded", |l| {
        l.iter()
            .any(|r| r["title"] == "Rita Rep: screen" && r["state"] == "recording")
    })
    .await?;
    // A few seconds of the shared screen: four fragments (one every 1–2 s).
    wait_fragments(server.state.recordings.dir(), 4).await?;
    rep.click("#stop-record").await?;
    let list = recordings_when(&server, &cookie, "the recording ends", |l| {
        l.iter()
            .any(|r| r["title"] == "Rita Rep: screen" && r["state"] == "done")
    })
    .await?;
    let recording = list
        .iter()
        .find(|r| r["title"] == "Rita Rep: screen")
        .context("the screen's recording")?;
    let (frames, duration) = probe_download(&server.base, &cookie, recording).await?;
    anyhow::ensure!(
        frames >= 10 && duration >= 2.0,
        "the rep's screen recorded {frames} frames over {duration} s"
    );
    let id = recording["id"].as_i64().context("id")?;
    let bytes = get(&server, &cookie, &format!("/api/recordings/{id}/video"))
        .await?
        .bytes()
        .await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("screen.mp4");
    std::fs::write(&path, &bytes)?;
    let probe = ffprobe(&path)?;
    let video = &probe["streams"][0];
    anyhow::ensure!(
        video["width"] == 800 && video["height"] == 450,
        "the recorded screen is {}×{}",
        video["width"],
        video["height"]
    );
    eprintln!("recording: the rep's screen, {frames} frames over {duration:.1} s");
    drop(ann);
    Ok(())
}
