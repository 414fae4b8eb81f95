//! The whole path, measured as a person would see it: Xvfb shows the content, the real
//! agent streams it, the rep's headless Chromium decodes it, all on this machine with one
//! clock. And the peer for control: x11vnc with noVNC in the same Chromium.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::json;
use tandem_tests::{AgentProcess, Browser, Chromedriver, PatternDisplay, Server};

use crate::content::{CLOCK_BITS, CLOCK_BLOCK};
use crate::report::cpu_seconds_of;

pub fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Records, in the page, when the first frame of the first tile is shown.
const FIRST_FRAME: &str = "
  window.benchFirstFrame = null;
  const hook = () => {
    const v = document.querySelector('figure.tile video');
    if (v && !v.dataset.benchHooked) {
      v.dataset.benchHooked = '1';
      v.requestVideoFrameCallback(() => { window.benchFirstFrame = Date.now(); });
    }
  };
  new MutationObserver(hook).observe(document.body, { childList: true, subtree: true });
  hook();";

pub struct Stack {
    pub screen: PatternDisplay,
    content: std::process::Child,
    pub server: Server,
    pub chrome: Chromedriver,
    pub rep: Browser,
    pub link: String,
    /// The session's number, as the rep's page shows it.
    pub number: String,
    pub agent: AgentProcess,
    pub width: u16,
    pub height: u16,
    /// From the customer's "y" to the first decoded frame in the rep's browser.
    pub first_frame_ms: Option<f64>,
    customers: Vec<Browser>,
    /// The page's record of each click of the last click-to-photon run.
    clicks: Vec<serde_json::Value>,
}

impl Stack {
    pub async fn start(exe: &Path, kind: &str, width: u16, height: u16) -> anyhow::Result<Stack> {
        Stack::start_with_agent_env(exe, kind, width, height, &[]).await
    }

    /// The same, with test switches for the agent (e.g. the old media clock).
    pub async fn start_with_agent_env(
        exe: &Path,
        kind: &str,
        width: u16,
        height: u16,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Stack> {
        let server = Server::start().await?;
        let base = server.base.clone();
        Stack::start_on(exe, kind, width, height, server, base, env).await
    }

    /// The same, with the people reaching `server` at `base` (another listener of it),
    /// and test switches for the agent.
    pub async fn start_on(
        exe: &Path,
        kind: &str,
        width: u16,
        height: u16,
        server: Server,
        base: String,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Stack> {
        let screen = PatternDisplay::bare(width, height)?;
        let content = std::process::Command::new(exe)
            .args(["content", "--display", &screen.display, "--kind", kind])
            .spawn()
            .context("could not start the content")?;
        tokio::time::sleep(Duration::from_millis(700)).await;
        server
            .create_rep("rita", "Rita Rep", "rita-password")
            .await?;
        // The bench's limits, keeping whatever else the caller set (e.g. recording).
        let mut settings = server
            .admin_call("GET", "/api/admin/settings", serde_json::Value::Null)
            .await?;
        settings["max_customers_per_rep"] = 8.into();
        settings["allow_multiple_sessions"] = false.into();
        server
            .admin_call("PUT", "/api/admin/settings", settings)
            .await?;
        let chrome = Chromedriver::start(&format!("bench-{kind}-{height}")).await?;
        let rep = chrome.media_browser("rep").await?;
        rep.log_in(&base, "rita", "rita-password").await?;
        let (number, link) = rep.start_session(false).await?;
        rep.client.execute(FIRST_FRAME, vec![]).await?;
        // The latency stack's agent traces each frame and input event, for the stages of
        // a click-to-photon (`Stack::click_stages`); the others stay quiet.
        let mut env = env.to_vec();
        if kind == "clock" {
            env.push(("TANDEM_AGENT_TRACE", "1"));
        }
        let mut agent =
            AgentProcess::spawn_with_env(&screen.display, &["join", &link, "--name", "Ann"], &env)?;
        agent.wait_for("[y/N]").await?;
        let consent = now_ms();
        agent.type_line("y").await?;
        rep.wait_text("figure.tile figcaption", &format!("{width}×{height}"))
            .await?;
        let first = rep
            .client
            .execute("return window.benchFirstFrame", vec![])
            .await?;
        let first_frame_ms = first.as_f64().map(|t| t - consent);
        Ok(Stack {
            screen,
            content,
            server,
            chrome,
            rep,
            link,
            number,
            agent,
            width,
            height,
            first_frame_ms,
            customers: Vec::new(),
            clicks: Vec::new(),
        })
    }

    /// The agent's CPU over `seconds`, in percent of one core.
    pub async fn agent_cpu(&self, seconds: f64) -> anyhow::Result<f64> {
        let pid = self.agent.pid().context("the agent is running")?;
        let before = cpu_seconds_of(pid);
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        Ok((cpu_seconds_of(pid) - before) * 100.0 / seconds)
    }

    /// Video bytes the rep's browser received so far.
    pub async fn bytes_received(&self) -> anyhow::Result<f64> {
        let n = self
            .rep
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 (async () => {
                   let bytes = 0;
                   for (const view of window.tandem.shares.viewing.values()) {
                     for (const [key, peer] of window.tandem.shares.peers) {
                       if (!key.startsWith(view.tile.dataset.share + ':')) continue;
                       (await peer.pc.getStats()).forEach((r) => {
                         if (r.type === 'inbound-rtp' && r.kind === 'video') bytes += r.bytesReceived;
                       });
                     }
                   }
                   done(bytes);
                 })();",
                vec![],
            )
            .await?;
        Ok(n.as_f64().unwrap_or(0.0))
    }

    /// Glass-to-glass: every decoded frame's clock code against the browser's clock.
    pub async fn glass_to_glass(&self, seconds: f64) -> anyhow::Result<Vec<f64>> {
        glass_to_glass(&self.rep, seconds).await
    }

    /// Ask for control and have the customer allow it at the agent.
    pub async fn take_control(&mut self) -> anyhow::Result<()> {
        self.rep.click("#request-control").await?;
        self.agent.wait_for("asks to control").await?;
        self.agent.answer("y").await?;
        self.rep
            .wait_text("#control-state", "You are in control")
            .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(())
    }

    /// Click-to-photon: a click on the tile's square, until the decoded square flips.
    pub async fn click_to_photon(&mut self, clicks: usize) -> anyhow::Result<Vec<f64>> {
        let (sx, sy) = (self.width / 2, self.height / 2);
        let samples = self
            .rep
            .client
            .execute_async(
                &format!("{CLICKS}
                 const v = document.querySelector('figure.tile video');
                 const c = document.createElement('canvas'); c.width = 1; c.height = 1;
                 const g = c.getContext('2d', {{ willReadFrequently: true }});
                 const bright = () => {{ g.drawImage(v, sx - PROBE, sy - PROBE, 1, 1, 0, 0, 1, 1); return g.getImageData(0, 0, 1, 1).data[0] > 128; }};
                 const next = (f) => v.requestVideoFrameCallback(f);
                 clicks(v, v, bright, next, n, sx / W, sy / H).then(done);"),
                vec![json!(clicks), json!(sx), json!(sy), json!(self.width), json!(self.height)],
            )
            .await?;
        if std::env::var_os("TANDEM_BENCH_DEBUG").is_some() {
            eprintln!(
                "click-to-photon raw: {samples}\nagent: {}",
                self.agent.output()
            );
        }
        self.clicks = samples.as_array().cloned().unwrap_or_default();
        Ok(plausible(&clicked_ms(&samples)))
    }

    /// The last click-to-photon run split into its stages, from the page's timings and
    /// the agent's trace (both in ms since the Unix epoch, on this machine's one clock):
    /// each stage's samples, in the order a click goes through them.
    pub fn click_stages(&self) -> Vec<(&'static str, Vec<f64>)> {
        stages_of(&self.clicks, &self.agent.output())
    }

    /// Another customer who views the share from a browser.
    pub async fn add_viewer(&mut self) -> anyhow::Result<()> {
        let name = format!("viewer{}", self.customers.len() + 2);
        let b = self.chrome.media_browser(&name).await?;
        b.join(&self.link, &name).await?;
        b.wait_text(
            "figure.tile figcaption",
            &format!("{}×{}", self.width, self.height),
        )
        .await?;
        self.customers.push(b);
        Ok(())
    }

    pub async fn close(mut self) -> anyhow::Result<()> {
        self.agent.kill();
        for b in self.customers.drain(..) {
            let _ = b.close().await;
        }
        let _ = self.content.kill();
        let _ = self.content.wait();
        self.rep.close().await?;
        Ok(())
    }
}

/// Shared by both products: click `n` times on `target` at (fx, fy) of `surface`, each
/// time waiting (frame by frame, with `next`) until `bright()` flips.
/// The colour is read this far up and left of the click: the pointer itself, drawn into
/// the picture where the click was, must not be mistaken for the square.
const CLICKS: &str = "
  const PROBE = 30;
  const [n, sx, sy, W, H] = arguments; const done = arguments[arguments.length - 1];
  async function clicks(target, surface, bright, next, n, fx, fy) {
    const out = [];
    for (let i = 0; i < n; i++) {
      const before = bright();
      const r = surface.getBoundingClientRect();
      const at = { bubbles: true, button: 0, clientX: r.left + fx * r.width, clientY: r.top + fy * r.height };
      const t0 = performance.now();
      target.dispatchEvent(new MouseEvent('mousedown', at));
      target.dispatchEvent(new MouseEvent('mouseup', { ...at, buttons: 0 }));
      const shown = await new Promise((res) => {
        const give_up = setTimeout(() => res(null), 3000);
        const f = (_, meta) => {
          if (bright() !== before) { clearTimeout(give_up); res({ meta }); } else next(f);
        };
        next(f);
      });
      if (shown) {
        const origin = performance.timeOrigin;
        const m = shown.meta;
        out.push({
          ms: performance.now() - t0,
          clicked: origin + t0,
          // requestVideoFrameCallback's metadata (not for noVNC's canvas)
          rtp: m ? m.rtpTimestamp : null,
          arrived: m && m.receiveTime !== undefined ? origin + m.receiveTime : null,
          decoding: m && m.processingDuration !== undefined ? m.processingDuration * 1000 : null,
          // when the page saw the new pixel: the callback's own time is that of the
          // rendering step (it can be before the frame even arrived), and the metadata's
          // expectedDisplayTime is an estimate that lies after this
          presented: origin + performance.now(),
        });
      }
      await new Promise((res) => setTimeout(res, 250));
    }
    return out;
  }";

/// Each click's time to photon, from the page's records.
fn clicked_ms(samples: &serde_json::Value) -> serde_json::Value {
    samples
        .as_array()
        .map(|a| a.iter().map(|click| click["ms"].clone()).collect())
        .unwrap_or_default()
}

/// One number after `key` in a trace line (`… key 123.456 …`).
fn field(line: &str, key: &str) -> Option<f64> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == key)?;
    words.next()?.parse().ok()
}

/// Each click's path, stage by stage: the page clicked; the agent received the input
/// and injected it; the agent captured the frame that showed the change, encoded it and
/// sent it (matched by the RTP timestamp the page presented); the page received it,
/// decoded it, presented it.
fn stages_of(clicks: &[serde_json::Value], trace: &str) -> Vec<(&'static str, Vec<f64>)> {
    let lines: Vec<&str> = trace.lines().filter(|l| l.contains("[trace ")).collect();
    let times = |key: &str, word: &str| -> Vec<f64> {
        lines
            .iter()
            .filter(|l| l.contains(key))
            .filter_map(|l| field(l, word))
            .collect()
    };
    let received = times("input received", "received");
    let injected = times("input injected", "injected");
    let mut out: Vec<(&'static str, Vec<f64>)> = [
        "page → agent (data channel)",
        "agent: inject",
        "app draws, damage, capture begins",
        "capture + convert + encode",
        "packetize + send",
        "network + frame assembly",
        "decode",
        "to the page (compositor frame, pixel read)",
    ]
    .into_iter()
    .map(|name| (name, Vec::new()))
    .collect();
    for click in clicks {
        let (Some(clicked), Some(rtp), Some(arrived), Some(presented)) = (
            click["clicked"].as_f64(),
            click["rtp"].as_u64(),
            click["arrived"].as_f64(),
            click["presented"].as_f64(),
        ) else {
            continue;
        };
        let sent_line = lines
            .iter()
            .find(|l| l.contains(" sent ") && field(l, "rtp").is_some_and(|t| t as u64 == rtp));
        let Some(sent_line) = sent_line else { continue };
        let (Some(frame), Some(sent)) = (field(sent_line, "frame"), field(sent_line, "sent"))
        else {
            continue;
        };
        let frame_line = lines
            .iter()
            .find(|l| l.contains(&format!("frame {frame}: captured")));
        let Some(frame_line) = frame_line else {
            continue;
        };
        let (Some(captured), Some(encoded)) =
            (field(frame_line, "captured"), field(frame_line, "encoded"))
        else {
            continue;
        };
        let Some(&got) = received.iter().find(|&&t| t >= clicked - 1.0) else {
            continue;
        };
        let Some(&put) = injected.iter().find(|&&t| t >= got) else {
            continue;
        };
        let decoded = arrived + click["decoding"].as_f64().unwrap_or(0.0);
        let points = [
            clicked, got, put, captured, encoded, sent, arrived, decoded, presented,
        ];
        for (stage, pair) in out.iter_mut().zip(points.windows(2)) {
            stage.1.push(pair[1] - pair[0]);
        }
    }
    out
}

/// Glass-to-glass as `viewer` sees it: every decoded frame's clock code (the `clock` or
/// `clock-strip` content, top-left) against the browser's clock, for `seconds`.
pub async fn glass_to_glass(viewer: &Browser, seconds: f64) -> anyhow::Result<Vec<f64>> {
    let samples = viewer
        .client
        .execute_async(
            "const [bits, block, ms] = arguments; const done = arguments[arguments.length - 1];
             const v = document.querySelector('figure.tile video');
             const c = document.createElement('canvas'); c.width = bits * block; c.height = block;
             const g = c.getContext('2d', { willReadFrequently: true });
             const out = []; const end = Date.now() + ms;
             const step = () => {
               const t = Date.now();
               g.drawImage(v, 0, 0, bits * block, block, 0, 0, bits * block, block);
               const d = g.getImageData(0, 0, bits * block, block).data;
               let code = 0;
               for (let i = 0; i < bits; i++) {
                 const p = ((block / 2) * c.width + i * block + block / 2) * 4;
                 if (d[p] > 128) code += 2 ** i;
               }
               const wrap = 2 ** bits;
               out.push((((t % wrap) - code) % wrap + wrap) % wrap);
               if (t < end) v.requestVideoFrameCallback(step); else done(out);
             };
             v.requestVideoFrameCallback(step);",
            vec![
                json!(CLOCK_BITS),
                json!(CLOCK_BLOCK),
                json!(seconds * 1000.0),
            ],
        )
        .await?;
    if std::env::var_os("TANDEM_BENCH_DEBUG").is_some() {
        eprintln!("glass-to-glass raw: {samples}");
    }
    Ok(plausible(&samples))
}

fn plausible(samples: &serde_json::Value) -> Vec<f64> {
    samples
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(serde_json::Value::as_f64)
                .filter(|ms| (0.0..5000.0).contains(ms))
                .collect()
        })
        .unwrap_or_default()
}

/// x11vnc + websockify + noVNC in Chromium on the same display: click-to-photon and the
/// bytes x11vnc sent meanwhile.
pub struct Vnc {
    x11vnc: std::process::Child,
    websockify: std::process::Child,
    rfb_port: u16,
    pub viewer: Browser,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Vnc {
    pub async fn start(stack: &Stack) -> anyhow::Result<Vnc> {
        let rfb_port = free_port()?;
        let x11vnc = std::process::Command::new("x11vnc")
            .args([
                "-display",
                &stack.screen.display,
                "-rfbport",
                &rfb_port.to_string(),
            ])
            .args([
                "-localhost",
                "-shared",
                "-forever",
                "-nopw",
                "-quiet",
                "-noxdamage",
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("x11vnc runs (Debian package x11vnc; cargo xtask bench installs it)")?;
        let web_port = free_port()?;
        let websockify = std::process::Command::new("websockify")
            .args(["--web", "/usr/share/novnc", &web_port.to_string()])
            .arg(format!("127.0.0.1:{rfb_port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("websockify runs (Debian packages novnc, websockify)")?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let viewer = stack.chrome.browser("vnc").await?;
        viewer
            .goto(&format!(
                "http://127.0.0.1:{web_port}/vnc.html?autoconnect=true&host=127.0.0.1&port={web_port}&path=websockify&resize=off&quality=6"
            ))
            .await?;
        viewer.find("#noVNC_container canvas").await?;
        // Connected once the canvas has the screen's size.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let w = viewer
                .client
                .execute("const c = document.querySelector('#noVNC_container canvas'); return c ? c.width : 0", vec![])
                .await?;
            if w.as_u64() == Some(u64::from(stack.width)) {
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "noVNC never connected"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(Vnc {
            x11vnc,
            websockify,
            rfb_port,
            viewer,
        })
    }

    pub async fn click_to_photon(&self, stack: &Stack, clicks: usize) -> anyhow::Result<Vec<f64>> {
        let (sx, sy) = (stack.width / 2, stack.height / 2);
        let samples = self
            .viewer
            .client
            .execute_async(
                &format!(
                    "{CLICKS}
                 const c = document.querySelector('#noVNC_container canvas');
                 const g = c.getContext('2d');
                 const bright = () => g.getImageData(sx - PROBE, sy - PROBE, 1, 1).data[0] > 128;
                 const next = (f) => requestAnimationFrame(f);
                 clicks(c, c, bright, next, n, sx / W, sy / H).then(done);"
                ),
                vec![
                    json!(clicks),
                    json!(sx),
                    json!(sy),
                    json!(stack.width),
                    json!(stack.height),
                ],
            )
            .await?;
        Ok(plausible(&clicked_ms(&samples)))
    }

    /// Bytes x11vnc has sent to its viewer so far (from the kernel's TCP counters).
    pub fn bytes_sent(&self) -> f64 {
        let out = std::process::Command::new("ss")
            .args(["-tinH", "state", "established"])
            .arg(format!("( sport = :{} )", self.rfb_port))
            .output();
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        text.split_whitespace()
            .filter_map(|w| w.strip_prefix("bytes_sent:"))
            .filter_map(|n| n.parse::<f64>().ok())
            .sum()
    }

    pub async fn close(mut self) {
        let _ = self.viewer.close().await;
        let _ = self.x11vnc.kill();
        let _ = self.websockify.kill();
        let _ = self.x11vnc.wait();
        let _ = self.websockify.wait();
    }
}
