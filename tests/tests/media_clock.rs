//! The media clock (docs/protocol.md, "Media"): the RTP timestamp of every frame the
//! rep's Chromium presents is the instant the agent captured it, on the 90 kHz clock —
//! across an idle gap too, where the agent used to claim 33 ms whatever the real time.
//! A receiver's jitter estimate and playout timing are built on these timestamps.
//!
//! The test changes the customer's screen (Xvfb) at instants it notes, with a still
//! screen of a few seconds between the changes, and reads each presented frame's RTP
//! timestamp and arrival time in the page (`requestVideoFrameCallback`'s metadata).

use std::time::{Duration, Instant};

use tandem_tests::{AgentProcess, Browser, Chromedriver, PatternDisplay, Server};

const WIDTH: u16 = 320;
const HEIGHT: u16 = 240;
const RED: u32 = 0xff0000;
const BLUE: u32 = 0x0000ff;
/// The agent captures a change as soon as the X server reports it; on a loaded machine
/// its thread may start a little late. A frame stamped by the old rule (33 ms after the
/// previous one) is off by seconds here.
const TOLERANCE_MS: f64 = 25.0;

/// Records, in the page, every frame the tile presents: its RTP timestamp, when it was
/// received (ms, the page's clock) and the colour a quarter of the way in (the pointer
/// sits at the centre).
const RECORD: &str = "
  const v = document.querySelector('figure.tile video');
  const c = document.createElement('canvas'); c.width = 1; c.height = 1;
  const g = c.getContext('2d', { willReadFrequently: true });
  window.clockFrames = [];
  const step = (now, meta) => {
    g.drawImage(v, v.videoWidth / 4, v.videoHeight / 4, 1, 1, 0, 0, 1, 1);
    const d = g.getImageData(0, 0, 1, 1).data;
    window.clockFrames.push({
      rtp: meta.rtpTimestamp, received: meta.receiveTime, rgb: (d[0] << 16) | (d[1] << 8) | d[2],
    });
    v.requestVideoFrameCallback(step);
  };
  v.requestVideoFrameCallback(step);";

#[derive(Debug, Clone, Copy)]
struct Presented {
    rtp: u32,
    received_ms: f64,
    rgb: u32,
}

async fn presented(rep: &Browser) -> anyhow::Result<Vec<Presented>> {
    let frames = rep
        .client
        .execute("return window.clockFrames", vec![])
        .await?;
    let mut out = Vec::new();
    for f in frames.as_array().cloned().unwrap_or_default() {
        let rtp = f["rtp"].as_u64().ok_or_else(|| {
            anyhow::anyhow!("the browser gave no rtpTimestamp for a presented frame: {f}")
        })?;
        out.push(Presented {
            rtp: u32::try_from(rtp)?,
            received_ms: f["received"].as_f64().unwrap_or(f64::NAN),
            rgb: f["rgb"].as_u64().unwrap_or(0) as u32,
        });
    }
    Ok(out)
}

fn near(got: u32, want: u32) -> bool {
    (0..3).all(|i| ((got >> (8 * i)) & 0xff).abs_diff((want >> (8 * i)) & 0xff) <= 48)
}

/// Wait until a presented frame shows `rgb` where the page looks; returns its index.
async fn first_showing(rep: &Browser, rgb: u32) -> anyhow::Result<(usize, Presented)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let frames = presented(rep).await?;
        if let Some(found) = frames.iter().position(|f| near(f.rgb, rgb)) {
            return Ok((found, frames[found]));
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no presented frame showed {rgb:06x} in 30 s ({} frames: {frames:?})",
            frames.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The rep's inbound video: frames decoded, keyframes decoded, keyframe requests sent.
const DECODE_STATS: &str = "
  const pc = window.tandem && [...window.tandem.shares.peers.values()][0];
  if (!pc) return null;
  return pc.pc.getStats().then((stats) => {
    let r = null;
    stats.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') r = s; });
    return r && [r.framesDecoded || 0, r.keyFramesDecoded || 0, (r.pliCount || 0) + (r.firCount || 0)];
  });";

async fn decode_stats(rep: &Browser) -> anyhow::Result<[u64; 3]> {
    let value = rep.client.execute(DECODE_STATS, vec![]).await?;
    let n = |i: usize| value.get(i).and_then(serde_json::Value::as_u64);
    match (n(0), n(1), n(2)) {
        (Some(a), Some(b), Some(c)) => Ok([a, b, c]),
        _ => anyhow::bail!("the rep's page has no inbound video stats: {value}"),
    }
}

/// 90 kHz ticks between two RTP timestamps, in milliseconds (RTP's clock wraps).
fn rtp_ms(from: u32, to: u32) -> f64 {
    f64::from(to.wrapping_sub(from)) / 90.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtp_timestamps_follow_the_capture_clock_across_an_idle_gap() -> anyhow::Result<()> {
    let screen = PatternDisplay::bare(WIDTH, HEIGHT)?;
    let server = Server::start().await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    let chrome = Chromedriver::start("media-clock").await?;
    let rep = chrome.media_browser("rep").await?;
    rep.log_in(&server.base, "rita", "rita-password").await?;
    let (_, link) = rep.start_session(false).await?;
    let mut agent = AgentProcess::spawn(&screen.display, &["join", &link, "--name", "Ann"])?;
    agent.answer("y").await?;
    rep.wait_text("figure.tile figcaption", &format!("{WIDTH}×{HEIGHT}"))
        .await?;
    rep.client.execute(RECORD, vec![]).await?;

    // The first change, then a still screen (heartbeats only), then the second change.
    let red_at = Instant::now();
    screen.window(RED, 0, 0, WIDTH, HEIGHT, "red")?;
    let (red_index, red) = first_showing(&rep, RED).await?;
    // A second for the picture to be sharpened (docs/agent.md), then 2.5 s of heartbeats.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before = decode_stats(&rep).await?;
    // The still screen's heartbeats (a skipped-macroblock P frame each second, see
    // crates/codec/src/repeat.rs) are decoded like any frame, and never make Chromium
    // ask for a keyframe.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut still = decode_stats(&rep).await?;
    while still[0] < before[0] + 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        still = decode_stats(&rep).await?;
    }
    anyhow::ensure!(
        still[0] >= before[0] + 2 && still[1] == before[1] && still[2] == before[2],
        "on a still screen the rep decoded {} frames in 20 s ({} keyframes) and asked for \
         {} keyframes; a heartbeat a second should be decoded, with no keyframe",
        still[0] - before[0],
        still[1] - before[1],
        still[2] - before[2]
    );
    let blue_at = Instant::now();
    screen.window(BLUE, 0, 0, WIDTH, HEIGHT, "blue")?;
    let (blue_index, blue) = first_showing(&rep, BLUE).await?;
    rep.screenshot("01-blue-after-the-gap").await?;

    let real = blue_at.duration_since(red_at).as_secs_f64() * 1000.0;
    let stamped = rtp_ms(red.rtp, blue.rtp);
    anyhow::ensure!(
        (stamped - real).abs() <= TOLERANCE_MS,
        "the changes were {real:.1} ms apart on the customer's screen, and their frames' \
         RTP timestamps {stamped:.1} ms apart"
    );

    // Every frame in between (the heartbeats of the still screen) is stamped on the same
    // clock: RTP time and arrival time advance together, never by a fixed 33 ms.
    let frames = presented(&rep).await?;
    let between = &frames[red_index..=blue_index];
    for pair in between.windows(2) {
        let stamped = rtp_ms(pair[0].rtp, pair[1].rtp);
        let arrived = pair[1].received_ms - pair[0].received_ms;
        anyhow::ensure!(
            arrived.is_nan() || (stamped - arrived).abs() <= 100.0,
            "consecutive frames arrived {arrived:.1} ms apart, stamped {stamped:.1} ms apart: \
             {pair:?}"
        );
    }
    agent.kill();
    rep.close().await?;
    Ok(())
}
