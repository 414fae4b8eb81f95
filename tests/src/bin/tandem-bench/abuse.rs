//! Soak under abuse: while a real session streams (the agent on Xvfb to the rep's Chromium,
//! a customer in the chat), `tandem-bench attack` (attack.rs, a process of its own) floods
//! the same server for a bounded time. This side measures what the people in the session
//! would notice — chat round-trip, decoded frame rate, before and during — and the server's
//! memory (the server runs in this process), and reports what the server did about each
//! kind of abuse.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tandem_tests::Server;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

use crate::attack::{Sizes, Tallies};
use crate::live::Stack;
use crate::report::{Figure, Report, rss_kib};
use crate::signaling::{connect_from, hello, recv_type, send};
use crate::step;

/// The attacker's own rep account (an insider, or a stolen password).
const ATTACKER: (&str, &str) = ("mallory", "mallory-password");

/// The size of the file the download storm asks for: about the release agent's.
const DOWNLOAD_BYTES: usize = 16 << 20;

/// A chat ping from the rep every this often (a person's pace, under any chat limit).
const PING_GAP_MS: u64 = 600;

/// The section: a live session, the attack beside it, and the report's rows.
pub async fn section(exe: &Path, smoke: bool, report: &mut Report) {
    let sizes = Sizes::new(smoke);
    let (w, h) = if smoke { (640, 480) } else { (1280, 720) };
    step(&format!(
        "abuse: {} s of attack beside a live session at {w}×{h}",
        sizes.seconds
    ));
    match measure(exe, smoke, w, h).await {
        Ok(f) => rows(&f, &sizes, report),
        Err(e) => {
            report.add("abuse soak", "—", Figure::Missing(format!("{e:#}")));
        }
    }
}

/// What the chat and the video looked like to the rep over a stretch of time.
#[derive(Debug)]
struct Window {
    /// Rep → customer → rep, per ping that came back.
    rtt_ms: Vec<f64>,
    /// Pings that did not come back within 3 s.
    lost: u64,
    /// Frames the rep's browser decoded per second.
    fps: f64,
}

#[derive(Debug)]
struct Figures {
    rss_before_mib: f64,
    rss_peak_mib: f64,
    rss_after_mib: f64,
    before: Window,
    during: anyhow::Result<Window>,
    /// New customers joining by link during the storm: their join times, and outcomes.
    newcomers: (Vec<f64>, BTreeMap<String, u64>),
    after: anyhow::Result<Window>,
    tallies: anyhow::Result<Tallies>,
    /// The rep page's connection status at the end.
    rep_status: String,
}

async fn measure(exe: &Path, smoke: bool, w: u16, h: u16) -> anyhow::Result<Figures> {
    let sizes = Sizes::new(smoke);
    // The server's side of every attacking socket is in this process.
    if let Err(e) = rlimit::increase_nofile_limit(sizes.sockets() + 4096) {
        eprintln!("tandem-bench: open-files limit not raised: {e}");
    }
    let server = Server::start().await?;
    server.create_rep(ATTACKER.0, "Mallory", ATTACKER.1).await?;
    let door = Door::open(&server).await?;
    let mut stack = Stack::start_on(exe, "scroll", w, h, server, door.base.clone(), &[]).await?;
    let result = storm(exe, smoke, &door, &mut stack).await;
    if let Err(e) = stack.close().await {
        eprintln!("tandem-bench: closing the live session: {e:#}");
    }
    door.close().await;
    result
}

async fn storm(exe: &Path, smoke: bool, door: &Door, stack: &mut Stack) -> anyhow::Result<Figures> {
    let sizes = Sizes::new(smoke);
    let secret = stack
        .link
        .rsplit('/')
        .next()
        .context("the join link's secret")?
        .to_owned();
    let number: String = stack.number.chars().filter(char::is_ascii_digit).collect();
    let customer = Customer::join(door.addr, &secret).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let quiet = if smoke { 2.5 } else { 8.0 };
    let before = window(stack, quiet, "before")
        .await
        .context("before the storm")?;

    let rss_before_mib = rss_kib() / 1024.0;
    let peak = RssPeak::start();
    let mut command = tokio::process::Command::new(exe);
    command
        .args([
            "attack",
            "--addr",
            &door.addr.to_string(),
            "--number",
            &number,
        ])
        .args([
            "--secret",
            &secret,
            "--username",
            ATTACKER.0,
            "--password",
            ATTACKER.1,
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    if smoke {
        command.arg("--smoke");
    }
    let attacker = command.spawn().context("the attacker did not start")?;
    let ramp = if smoke { 1.0 } else { 2.0 };
    tokio::time::sleep(Duration::from_secs_f64(ramp)).await;
    let span = sizes.seconds - ramp - 0.5;
    let (during, newcomers) = tokio::join!(
        window(stack, span, "during"),
        newcomers(door.addr, &secret, if smoke { 2 } else { 6 }, span)
    );
    // The attacker stops by itself; if it does not, dropping it kills it.
    let finished = tokio::time::timeout(
        Duration::from_secs_f64(sizes.seconds + 30.0),
        attacker.wait_with_output(),
    )
    .await;
    let rss_peak_mib = peak.finish() / 1024.0;
    let tallies = match finished {
        Err(_) => Err(anyhow::anyhow!("the attacker did not finish in time")),
        Ok(Err(e)) => Err(anyhow::Error::from(e).context("the attacker")),
        Ok(Ok(out)) => {
            let text = String::from_utf8_lossy(&out.stdout);
            serde_json::from_str::<Tallies>(text.trim()).with_context(|| {
                format!("the attacker ({}) printed no counts: {text:?}", out.status)
            })
        }
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = window(stack, if smoke { 1.5 } else { 5.0 }, "after").await;
    let rss_after_mib = rss_kib() / 1024.0;
    let rep_status = stack
        .rep
        .text("#connection")
        .await
        .unwrap_or_else(|e| format!("unreadable: {e:#}"));
    drop(customer);
    Ok(Figures {
        rss_before_mib,
        rss_peak_mib,
        rss_after_mib,
        before,
        during,
        newcomers,
        after,
        tallies,
        rep_status,
    })
}

/// Chat pings from the rep's page, answered by the customer, and the frames the page
/// decoded meanwhile; all timed in the page.
async fn window(stack: &Stack, seconds: f64, tag: &str) -> anyhow::Result<Window> {
    let v = stack
        .rep
        .client
        .execute_async(
            "const [ms, gap, tag] = arguments; const done = arguments[arguments.length - 1];
             const box = document.querySelector('#messages');
             const input = document.querySelector('#chat-text');
             const form = document.querySelector('#chat');
             const decoded = async () => {
               let frames = 0;
               for (const [, peer] of window.tandem.shares.peers) {
                 (await peer.pc.getStats()).forEach((r) => {
                   if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
                 });
               }
               return frames;
             };
             const ping = (id) => new Promise((res) => {
               const t0 = performance.now();
               const seen = new MutationObserver((records) => {
                 for (const r of records) for (const n of r.addedNodes) {
                   if ((n.textContent || '').includes('pong ' + id)) {
                     clearTimeout(lost); seen.disconnect(); res(performance.now() - t0); return;
                   }
                 }
               });
               const lost = setTimeout(() => { seen.disconnect(); res(null); }, 3000);
               seen.observe(box, { childList: true });
               input.value = 'ping ' + id;
               form.requestSubmit();
             });
             (async () => {
               const rtt = []; let lost = 0;
               const f0 = await decoded(); const t0 = performance.now();
               for (let i = 0; performance.now() - t0 < ms; i++) {
                 const next = performance.now() + gap;
                 const took = await ping(tag + '-' + i);
                 if (took === null) lost++; else rtt.push(took);
                 await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
               }
               const f1 = await decoded(); const t1 = performance.now();
               done({ rtt, lost, fps: (f1 - f0) * 1000 / (t1 - t0) });
             })();",
            vec![json!(seconds * 1000.0), json!(PING_GAP_MS), json!(tag)],
        )
        .await
        .with_context(|| format!("the rep's page, {tag}"))?;
    Ok(Window {
        rtt_ms: v["rtt"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default(),
        lost: v["lost"].as_u64().unwrap_or(0),
        fps: v["fps"].as_f64().context("no frame rate")?,
    })
}

/// `n` new customers, spread over `seconds`, each joining by the link from an address of its
/// own and leaving again: can people still come in while the storm goes on?
async fn newcomers(
    addr: SocketAddr,
    secret: &str,
    n: u32,
    seconds: f64,
) -> (Vec<f64>, BTreeMap<String, u64>) {
    let gap = Duration::from_secs_f64(seconds / f64::from(n + 1));
    let mut join_ms = Vec::new();
    let mut outcomes = BTreeMap::new();
    for i in 0..n {
        tokio::time::sleep(gap).await;
        let from = Ipv4Addr::new(127, 0, 97, 1 + i as u8);
        let started = std::time::Instant::now();
        let joined = tokio::time::timeout(Duration::from_secs(10), async {
            let mut ws = connect_from(addr, from, None).await?;
            hello(&mut ws, "customer").await?;
            let join =
                json!({"type": "join_by_link", "secret": secret, "name": format!("Newcomer {i}")});
            send(&mut ws, join).await?;
            recv_type(&mut ws, "joined").await?;
            let took = started.elapsed().as_secs_f64() * 1000.0;
            send(&mut ws, json!({"type": "leave"})).await?;
            anyhow::Ok(took)
        })
        .await;
        let outcome = match joined {
            Ok(Ok(ms)) => {
                join_ms.push(ms);
                "joined".to_owned()
            }
            Ok(Err(e)) => format!("{e:#}").chars().take(100).collect(),
            Err(_) => "no answer in 10 s".to_owned(),
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    (join_ms, outcomes)
}

/// The session's customer in the chat, from its own address: answers each "ping X" from
/// the rep with "pong X".
struct Customer {
    task: tokio::task::JoinHandle<()>,
}

impl Customer {
    async fn join(addr: SocketAddr, secret: &str) -> anyhow::Result<Customer> {
        let mut ws = connect_from(addr, Ipv4Addr::new(127, 0, 98, 1), None).await?;
        hello(&mut ws, "customer").await?;
        send(
            &mut ws,
            json!({"type": "join_by_link", "secret": secret, "name": "Carl Customer"}),
        )
        .await?;
        recv_type(&mut ws, "joined")
            .await
            .context("the chat's customer could not join")?;
        let task = tokio::spawn(async move {
            while let Some(Ok(message)) = ws.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let Some(id) = v["text"].as_str().and_then(|t| t.strip_prefix("ping ")) else {
                    continue;
                };
                let pong = json!({"type": "chat", "text": format!("pong {id}")});
                if send(&mut ws, pong).await.is_err() {
                    break;
                }
            }
        });
        Ok(Customer { task })
    }
}

impl Drop for Customer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The same server (sessions, accounts, limits) behind a second listener whose settings
/// serve an agent download, which the test harness's server leaves unset. Everyone in the
/// section, the session and the attacker alike, comes in through this door.
struct Door {
    base: String,
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<()>,
    _download: tempfile::TempDir,
}

impl Door {
    async fn open(server: &Server) -> anyhow::Result<Door> {
        let dir = tempfile::tempdir()?;
        let file: PathBuf = dir.path().join("tandem-agent");
        std::fs::write(&file, vec![0x7f; DOWNLOAD_BYTES])?;
        let mut state = server.state.clone();
        let mut config = (*state.config).clone();
        config.agent_binary = Some(file);
        state.config = Arc::new(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            // Stops when told, or when the door is dropped.
            let run = tandem_signaling::run(listener, state, async move {
                let _told = stopped.await;
            });
            if let Err(e) = run.await {
                eprintln!("tandem-bench: the abuse section's listener failed: {e}");
            }
        });
        Ok(Door {
            base: format!("http://{addr}"),
            addr,
            stop,
            serving,
            _download: dir,
        })
    }

    async fn close(self) {
        // An error means it stopped already.
        let _stopped = self.stop.send(());
        let mut serving = self.serving;
        if tokio::time::timeout(Duration::from_secs(5), &mut serving)
            .await
            .is_err()
        {
            serving.abort();
        }
    }
}

/// The largest resident size of this process (the server's) while it runs, sampled on a
/// thread of its own so a busy runtime cannot skip the peak.
struct RssPeak {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl RssPeak {
    fn start() -> RssPeak {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_kib() as u64));
        let thread = std::thread::spawn({
            let (stop, peak) = (stop.clone(), peak.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib() as u64, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        });
        RssPeak { stop, peak, thread }
    }

    /// The peak, in KiB.
    fn finish(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        if self.thread.join().is_err() {
            eprintln!("tandem-bench: the memory sampler panicked");
        }
        self.peak.load(Ordering::Relaxed) as f64
    }
}

/// How many outcomes of a kind match.
fn count(tally: Option<&BTreeMap<String, u64>>, matches: impl Fn(&str) -> bool) -> u64 {
    tally
        .into_iter()
        .flatten()
        .filter(|(outcome, _)| matches(outcome))
        .map(|(_, n)| n)
        .sum()
}

/// An attempt the server turned away or cut off.
fn refused(outcome: &str) -> bool {
    outcome.contains("closed by the server")
        || outcome.contains("reset by the server")
        || outcome.contains("rate_limited")
        || outcome.contains("refused")
        || outcome.contains("timed out")
        || outcome.contains("answered 429")
        || outcome.contains("answered 503")
        || outcome.contains("answered 408")
}

fn rows(f: &Figures, sizes: &Sizes, report: &mut Report) {
    let t = &f.tallies;
    report.add(
        "server memory before the storm",
        "MiB RSS",
        Figure::Value(f.rss_before_mib),
    );
    report
        .add(
            "server peak memory during the storm",
            "MiB RSS",
            Figure::Value(f.rss_peak_mib),
        )
        .target("< 300 MiB");
    report.add(
        "server memory after the storm",
        "MiB RSS",
        Figure::Value(f.rss_after_mib),
    );
    let before_rtt = Figure::of(&f.before.rtt_ms);
    let during = f.during.as_ref();
    report
        .add(
            "chat round-trip rep→customer→rep during the storm",
            "ms",
            during.map_or_else(
                |e| Figure::Missing(format!("{e:#}")),
                |w| Figure::of(&w.rtt_ms),
            ),
        )
        .peer("before the storm", before_rtt)
        .target("ratio ≤ 2");
    report
        .add(
            "chat pings lost (no answer in 3 s) during the storm",
            "pings",
            during.map_or_else(
                |e| Figure::Missing(format!("{e:#}")),
                |w| Figure::Value(w.lost as f64),
            ),
        )
        .peer("before the storm", Figure::Value(f.before.lost as f64))
        .target("0");
    report
        .add(
            "viewer's decoded frame rate during the storm",
            "frames/s",
            during.map_or_else(
                |e| Figure::Missing(format!("{e:#}")),
                |w| Figure::Value(w.fps),
            ),
        )
        .peer("before the storm", Figure::Value(f.before.fps))
        .target("ratio ≥ 0.9");
    report
        .add(
            "viewer's decoded frame rate after the storm",
            "frames/s",
            f.after.as_ref().map_or_else(
                |e| Figure::Missing(format!("{e:#}")),
                |w| Figure::Value(w.fps),
            ),
        )
        .peer("before the storm", Figure::Value(f.before.fps))
        .target("ratio ≥ 0.9");
    let (join_ms, outcomes) = &f.newcomers;
    let attempts: u64 = outcomes.values().sum();
    report
        .add(
            format!(
                "a new customer's join by link during the storm ({} of {attempts} joined)",
                join_ms.len()
            ),
            "ms",
            Figure::of(join_ms),
        )
        .target("all join");
    if join_ms.len() as u64 != attempts {
        let all: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o} ×{n}")).collect();
        report
            .notes
            .push(format!("abuse, new customers' joins: {}", all.join("; ")));
    }
    let tallies = match t {
        Ok(t) => t,
        Err(e) => {
            report.add("abusive attempts", "—", Figure::Missing(format!("{e:#}")));
            report.notes.push(format!(
                "abuse: the rep's page said {:?} at the end",
                f.rep_status
            ));
            return;
        }
    };
    let kind = |k: &str| tallies.get(k);
    let value = |n: u64| Figure::Value(n as f64);
    report
        .add(
            format!(
                "slow readers disconnected by the server (of {})",
                sizes.slow_readers
            ),
            "connections",
            value(count(kind("slow readers"), |o| {
                o.contains("closed by the server")
            })),
        )
        .target("all");
    report
        .add(
            format!(
                "idle connections from one address refused or closed (of {})",
                sizes.idle_one_address
            ),
            "connections",
            value(count(kind("idle, one address"), refused)),
        )
        .target("all but a per-address cap");
    report
        .add(
            format!(
                "idle connections from many addresses closed (of {}, {} s)",
                sizes.idle_spread, sizes.seconds
            ),
            "connections",
            value(count(kind("idle, many addresses"), refused)),
        )
        .target("all once the first-message time is up");
    report
        .add(
            format!(
                "half-sent HTTP requests closed (of {}, {} s)",
                sizes.half_sent, sizes.seconds
            ),
            "connections",
            value(count(kind("half-sent requests"), refused)),
        )
        .target("all once the header-read time is up");
    let guesses = kind("guesses");
    let sent = count(guesses, |o| o.ends_with(" sent"));
    report
        .add(
            format!("session-number guesses refused as rate-limited (of {sent})"),
            "guesses",
            value(count(guesses, |o| o.contains("rate_limited"))),
        )
        .target("all but a few per address and account");
    report
        .add(
            "guesses that found a session",
            "guesses",
            value(count(guesses, |o| {
                o.contains("→ waiting") || o.contains("→ joined")
            })),
        )
        .target("0");
    let flood = kind("chat flood");
    report
        .add(
            format!(
                "flooded chat lines accepted (of {} sent)",
                count(flood, |o| o == "sent")
            ),
            "lines",
            value(count(flood, |o| o.starts_with("accepted"))),
        )
        .target("a person's pace (per-participant rate)");
    report
        .add(
            format!(
                "downloads refused (429/503, closed or unanswered; of {}, body never read)",
                sizes.downloads
            ),
            "requests",
            value(count(kind("downloads"), |o| {
                refused(o) || o.contains("no answer") || o.contains("closed before")
            })),
        )
        .target("— (memory: the file is streamed)");
    let total: u64 = tallies
        .values()
        .map(|tally| count(Some(tally), refused))
        .sum();
    report.add(
        "abusive attempts refused or cut off, in all",
        "attempts",
        value(total),
    );
    report.notes.push(format!(
        "abuse: {} s of attack; the download storm asked for a {} MiB file; the rep's page \
         said {:?} at the end",
        sizes.seconds,
        DOWNLOAD_BYTES >> 20,
        f.rep_status
    ));
    for (kind, tally) in tallies {
        let outcomes: Vec<String> = tally.iter().map(|(o, n)| format!("{o} ×{n}")).collect();
        report
            .notes
            .push(format!("abuse, {kind}: {}", outcomes.join("; ")));
    }
}
