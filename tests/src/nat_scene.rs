//! One stage for tests of the media path across routers (R6, C1): a [`Topology`], the
//! real server binary in `srv` (with its embedded STUN/TURN service, an external coturn,
//! or no relay at all), a rep in Chromium in `rep` who has logged in and started a
//! session, and the real agent in `cust`, joined by the session's link, showing the test
//! pattern of a display started here, after the customer said yes at its prompt.
//!
//! The in-process [`crate::Server`] listens on this namespace's loopback, which no host of
//! a topology can reach: here the server is its own process, reached by this process
//! over the management link at `http://<server_ip>:8080`, as the rep's browser and the
//! agent reach it across their routers.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::netns::{Host, Topology, TopologySpec};
use crate::{AgentProcess, Browser, Chromedriver, PatternDisplay, QUADRANTS};

/// Long enough for anything a person would wait for, on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(60);
/// The server's HTTP port inside `srv`.
pub const HTTP_PORT: u16 = 8080;
/// The embedded STUN/TURN service's port (the server's default).
pub const EMBEDDED_TURN_PORT: u16 = 3478;
/// An external coturn's port: not the embedded service's, so a test can tell them apart.
pub const COTURN_PORT: u16 = 3479;
/// The pattern's size.
pub const WIDTH: u16 = 640;
pub const HEIGHT: u16 = 480;

/// What relays media for participants who cannot reach each other directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMode {
    /// The default install: the server's embedded STUN/TURN service on its own address.
    Embedded,
    /// Debian's coturn in `srv` on [`COTURN_PORT`] with coturn's `use-auth-secret`; the
    /// server hands out its URLs and credentials made with `secret`, and runs no TURN of
    /// its own.
    External { secret: String },
    /// Neither STUN nor TURN: `--no-embedded-turn` and no `--ice-server`.
    NoTurn,
}

/// How the rep's Chromium shows its own addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RepChromium {
    /// Real host addresses in its candidates (the harness's usual flag).
    #[default]
    RealHostAddresses,
    /// Chromium's default: host addresses hidden behind `<uuid>.local` mDNS names.
    MdnsHidden,
}

/// What else a stage may differ in.
#[derive(Debug, Clone, Default)]
pub struct SceneOptions {
    pub rep_chromium: RepChromium,
    /// More environment for the agent (its test switches).
    pub agent_env: Vec<(String, String)>,
    /// The customer's screen size [default: `WIDTH`×`HEIGHT`].
    pub screen: Option<(u16, u16)>,
    /// The rep's Chromium takes the server's plain-HTTP address as a secure origin (as
    /// an HTTPS site is), for what the console does only there (hashing files).
    pub server_as_secure_origin: bool,
}

/// The stage; see the module documentation. Fields drop in order: the topology last,
/// which kills whatever still runs in its namespaces.
#[derive(Debug)]
pub struct NatScene {
    /// The rep (`rita`, shown as "Rita Rep") on the session page.
    pub rep: Browser,
    /// The customer's agent ("Ann"), sharing after its consent prompt was answered.
    pub agent: AgentProcess,
    /// The session's join link.
    pub link: String,
    /// `http://<server_ip>:8080`.
    pub server_base: String,
    pub server: Logged,
    pub coturn: Option<Logged>,
    pub screen: PatternDisplay,
    _chrome: Chromedriver,
    _data: tempfile::TempDir,
    pub topology: Topology,
}

impl NatScene {
    /// The stage with a rep's Chromium that shows its real host addresses.
    pub async fn start(name: &str, spec: TopologySpec, mode: ServerMode) -> anyhow::Result<Self> {
        Self::start_with_options(name, spec, mode, SceneOptions::default()).await
    }

    pub async fn start_with_options(
        name: &str,
        spec: TopologySpec,
        mode: ServerMode,
        options: SceneOptions,
    ) -> anyhow::Result<Self> {
        let (width, height) = options.screen.unwrap_or((WIDTH, HEIGHT));
        let screen = PatternDisplay::start(width, height)?;
        let topology = Topology::build(spec)?;
        let ip = topology.server_ip();
        let data = tempfile::tempdir()?;

        let coturn = match &mode {
            ServerMode::External { secret } => {
                let mut coturn = start_coturn(&topology, secret, data.path())?;
                wait_for_stun(&topology, COTURN_PORT, &mut coturn).await?;
                Some(coturn)
            }
            _ => None,
        };

        let mut server = topology.command(Host::Srv, crate::server_binary()?);
        server
            .arg("--bind")
            .arg(ip.to_string())
            .args(["--port", &HTTP_PORT.to_string()])
            .args(["--admin-password", crate::ADMIN_PASSWORD])
            .arg("--data-dir")
            .arg(data.path().join("server"));
        match &mode {
            ServerMode::Embedded => {
                server.args(["--turn-public-ip", &ip.to_string()]);
            }
            ServerMode::External { secret } => {
                server
                    .args(["--ice-server", &format!("stun:{ip}:{COTURN_PORT}")])
                    .args([
                        "--ice-server",
                        &format!("turn:{ip}:{COTURN_PORT}?transport=udp"),
                    ])
                    .args(["--turn-secret", secret]);
            }
            ServerMode::NoTurn => {
                server.arg("--no-embedded-turn");
            }
        }
        let mut server = Logged::spawn("server", server)?;
        let server_base = format!("http://{ip}:{HTTP_PORT}");
        server_ready(&server_base, &mut server).await?;
        if mode == ServerMode::Embedded {
            wait_for_stun(&topology, EMBEDDED_TURN_PORT, &mut server).await?;
        }
        let http = reqwest::Client::builder().no_proxy().build()?;
        crate::create_rep_at(&http, &server_base, "rita", "Rita Rep", "rita-password").await?;

        let chrome = Chromedriver::start_in(name, &topology, Host::Rep).await?;
        let secure: Vec<String> = if options.server_as_secure_origin {
            vec![format!(
                "--unsafely-treat-insecure-origin-as-secure={server_base}"
            )]
        } else {
            Vec::new()
        };
        let rep = match options.rep_chromium {
            RepChromium::RealHostAddresses => chrome.media_browser_with("rep", &secure).await?,
            RepChromium::MdnsHidden => {
                chrome
                    .media_browser_hiding_local_ips("rep", &secure)
                    .await?
            }
        };
        rep.log_in(&server_base, "rita", "rita-password").await?;
        let (_, link) = rep.start_session(false).await?;

        let mut agent = topology.command(Host::Cust, crate::agent_binary()?);
        agent
            .args(["join", &link, "--name", "Ann", "--display", &screen.display])
            .arg("--cli")
            // Each step of a viewer's connection, timed, in the test's output.
            .env("TANDEM_AGENT_TRACE", "1")
            .envs(options.agent_env);
        let mut agent = AgentProcess::spawn_command(agent)?;
        // C1: the agent asks before anything is captured; the customer says yes.
        agent.wait_for_within("[y/N]", PATIENCE).await?;
        agent.type_line("y").await?;
        Ok(Self {
            rep,
            agent,
            link,
            server_base,
            server,
            coturn,
            screen,
            _chrome: chrome,
            _data: data,
            topology,
        })
    }

    /// What `ss <args>` lists in `host`'s namespace, e.g. `-Htn state established`: one
    /// line per TCP connection, `Recv-Q Send-Q Local:Port Peer:Port`.
    pub async fn ss(&self, host: Host, args: &[&str]) -> anyhow::Result<String> {
        let out = self
            .topology
            .command(host, "ss")
            .args(args)
            .output()
            .await
            .context("could not run ss (Debian package iproute2)")?;
        anyhow::ensure!(
            out.status.success(),
            "ss {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// A process of the stage whose output (stdout and stderr) is kept, and echoed with its
/// name for the test's log. Killed on drop.
#[derive(Debug)]
pub struct Logged {
    name: &'static str,
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Logged {
    fn spawn(name: &'static str, mut command: Command) -> anyhow::Result<Self> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("could not start the {name}"))?;
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().context("stdout piped")?;
        let stderr = child.stderr.take().context("stderr piped")?;
        tokio::spawn(collect(name, stdout, output.clone()));
        tokio::spawn(collect(name, stderr, output.clone()));
        Ok(Self {
            name,
            child,
            output,
        })
    }

    /// Its process id (e.g. to read its CPU time from /proc).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// An error when it has ended, with what it printed.
    fn still_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("the {} ended ({status}): {}", self.name, self.output());
        }
        Ok(())
    }
}

async fn collect(
    name: &'static str,
    mut from: impl tokio::io::AsyncRead + Unpin,
    into: Arc<Mutex<String>>,
) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buf[..n]);
        eprint!("[{name}] {text}");
        into.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_str(&text);
    }
}

/// coturn in `srv`, in the foreground, logging to stdout, its files in `dir`.
fn start_coturn(
    topology: &Topology,
    secret: &str,
    dir: &std::path::Path,
) -> anyhow::Result<Logged> {
    let ip = topology.server_ip().to_string();
    // Its own (empty) configuration: Debian's /etc/turnserver.conf sends the log to syslog.
    let config = dir.join("turnserver.conf");
    std::fs::write(&config, "")?;
    // Line-buffered, or a killed coturn leaves its log unwritten.
    let mut coturn = topology.command(Host::Srv, "stdbuf");
    coturn
        .args(["-oL", "-eL", "turnserver", "-c"])
        .arg(&config)
        .args([
            "--use-auth-secret",
            &format!("--static-auth-secret={secret}"),
        ])
        .args(["--realm", "tandem"])
        .args(["--listening-ip", &ip, "--relay-ip", &ip])
        .args(["--listening-port", &COTURN_PORT.to_string()])
        .args(["--no-tls", "--no-dtls", "--no-cli"])
        // Each allocation in the log, where a test finds it.
        .arg("--verbose")
        .args(["--log-file", "stdout"])
        .arg("--userdb")
        .arg(dir.join("turndb"))
        .arg("--pidfile")
        .arg(dir.join("turnserver.pid"));
    Logged::spawn("coturn", coturn).context(
        "could not start coturn's turnserver (Debian package coturn; cargo xtask test installs it)",
    )
}

/// Wait until the server answers `/healthz`.
async fn server_ready(base: &str, server: &mut Logged) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;
    let ready = eventually("the server answers /healthz", PATIENCE, async || {
        server.still_running()?;
        Ok(match http.get(format!("{base}/healthz")).send().await {
            Ok(r) if r.status().is_success() => Check::Done(()),
            Ok(r) => Check::NotYet(format!("it answered {}", r.status())),
            Err(e) => Check::NotYet(format!("{e}")),
        })
    })
    .await;
    ready.with_context(|| format!("server output: {}", server.output()))
}

/// Wait until a STUN Binding request from this process to `srv`'s `port` (over the
/// management link) gets a Binding success response.
async fn wait_for_stun(topology: &Topology, port: u16, process: &mut Logged) -> anyhow::Result<()> {
    let socket = tokio::net::UdpSocket::bind("0.0.0.0:0").await?;
    let to = std::net::SocketAddr::from((topology.server_ip(), port));
    let answered = eventually(&format!("STUN answers on {to}"), PATIENCE, async || {
        process.still_running()?;
        let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        request.extend_from_slice(b"tandemprobe1");
        socket.send_to(&request, to).await?;
        let mut buf = [0u8; 1500];
        match tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await {
            Ok(Ok((n, _)))
                if n >= 20 && buf[..2] == [0x01, 0x01] && buf[8..20] == request[8..20] =>
            {
                Ok(Check::Done(()))
            }
            Ok(Ok((n, _))) => Ok(Check::NotYet(format!(
                "an answer of {n} bytes that is no Binding success"
            ))),
            Ok(Err(e)) => Ok(Check::NotYet(e.to_string())),
            Err(_) => Ok(Check::NotYet("no answer".into())),
        }
    })
    .await;
    answered.with_context(|| format!("{} output: {}", process.name, process.output()))
}

/// What a condition found when it looked.
#[derive(Debug)]
pub enum Check<T> {
    Done(T),
    /// Not yet; what there is instead (said if the deadline passes).
    NotYet(String),
}

/// Look at `check` until it is done or `within` has passed (then fail, saying what it
/// saw last). An error from `check` ends the wait at once.
pub async fn eventually<T>(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> anyhow::Result<Check<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + within;
    loop {
        match check().await? {
            Check::Done(t) => return Ok(t),
            Check::NotYet(seen) if Instant::now() > deadline => {
                bail!("{what}: not within {within:?}; last seen: {seen}")
            }
            Check::NotYet(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The candidate pair a viewer's Chromium has selected for its (first) peer connection,
/// from `getStats()`: the transport's `selectedCandidatePairId`, its local and remote
/// candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedPair {
    /// `candidateType` of each end: host, srflx, prflx or relay.
    pub local: String,
    pub remote: String,
    /// The local candidate's `address:port` and, for a relay, how Chromium reaches the
    /// relay (`relayProtocol`) and the TURN URL it came from.
    pub local_address: String,
    pub local_relay_protocol: Option<String>,
    pub local_url: Option<String>,
    pub remote_address: String,
}

impl SelectedPair {
    pub fn involves_relay(&self) -> bool {
        self.local == "relay" || self.remote == "relay"
    }
}

impl std::fmt::Display for SelectedPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "local {} {} (relay protocol {:?}, url {:?}) ↔ remote {} {}",
            self.local,
            self.local_address,
            self.local_relay_protocol,
            self.local_url,
            self.remote,
            self.remote_address
        )
    }
}

/// The viewer's selected pair now, if one is selected.
pub async fn selected_pair(viewer: &Browser) -> anyhow::Result<Option<SelectedPair>> {
    let found = viewer
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             (async () => {
               const peers = window.tandem ? [...window.tandem.shares.peers.values()] : [];
               for (const peer of peers) {
                 const stats = await peer.pc.getStats();
                 let pair = null;
                 stats.forEach((r) => {
                   if (r.type === 'transport' && r.selectedCandidatePairId) {
                     pair = stats.get(r.selectedCandidatePairId);
                   }
                 });
                 if (!pair) continue;
                 const l = stats.get(pair.localCandidateId);
                 const r = stats.get(pair.remoteCandidateId);
                 if (!l || !r) continue;
                 return done({
                   local: l.candidateType, remote: r.candidateType,
                   localAddress: `${l.address}:${l.port}`,
                   relayProtocol: l.relayProtocol || null, url: l.url || null,
                   remoteAddress: `${r.address}:${r.port}`,
                 });
               }
               done(null);
             })().catch((e) => done({ error: String(e) }));",
            vec![],
        )
        .await?;
    if found.is_null() {
        return Ok(None);
    }
    if let Some(e) = found.get("error") {
        bail!("{}: getStats failed: {e}", viewer.person);
    }
    let text = |k: &str| found[k].as_str().unwrap_or_default().to_owned();
    let maybe = |k: &str| found[k].as_str().map(str::to_owned);
    Ok(Some(SelectedPair {
        local: text("local"),
        remote: text("remote"),
        local_address: text("localAddress"),
        local_relay_protocol: maybe("relayProtocol"),
        local_url: maybe("url"),
        remote_address: text("remoteAddress"),
    }))
}

/// Every candidate and candidate pair of the viewer's connections, one line each, from
/// `getStats()`: what a failure message shows of how ICE went.
pub async fn ice_summary(viewer: &Browser) -> anyhow::Result<String> {
    let lines = viewer
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             (async () => {
               const out = [];
               const peers = window.tandem ? [...window.tandem.shares.peers.values()] : [];
               for (const peer of peers) {
                 const stats = await peer.pc.getStats();
                 const kind = (id) => { const c = stats.get(id); return c ? c.candidateType : '?'; };
                 stats.forEach((r) => {
                   if (r.type === 'local-candidate' || r.type === 'remote-candidate') {
                     out.push(`${r.type} ${r.candidateType} ${r.protocol} ${r.address}:${r.port}` +
                       (r.relayProtocol ? ` relay over ${r.relayProtocol}` : '') + (r.url ? ` ${r.url}` : ''));
                   } else if (r.type === 'candidate-pair') {
                     out.push(`pair ${kind(r.localCandidateId)} → ${kind(r.remoteCandidateId)} ` +
                       `${r.state}${r.nominated ? ' nominated' : ''} requests ${r.requestsSent}/${r.requestsReceived} ` +
                       `responses ${r.responsesReceived}/${r.responsesSent}`);
                   }
                 });
               }
               done(out);
             })().catch((e) => done([String(e)]));",
            vec![],
        )
        .await?;
    Ok(lines
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join("\n"))
}

/// The round trip of the viewer's selected candidate pair now (ICE's own measure, in
/// milliseconds), if it has one.
pub async fn round_trip_ms(viewer: &Browser) -> Option<f64> {
    let rtt = viewer
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             (async () => {
               const peers = window.tandem ? [...window.tandem.shares.peers.values()] : [];
               for (const peer of peers) {
                 const stats = await peer.pc.getStats();
                 let rtt = null;
                 stats.forEach((r) => {
                   const pair = r.type === 'transport' && stats.get(r.selectedCandidatePairId);
                   if (pair && pair.currentRoundTripTime !== undefined) rtt = pair.currentRoundTripTime;
                 });
                 if (rtt !== null) return done(rtt * 1000);
               }
               done(null);
             })().catch(() => done(null));",
            vec![],
        )
        .await
        .ok()?;
    rtt.as_f64()
}

/// The host candidates the viewer's Chromium offers (from its local descriptions): each
/// one's address, a `….local` name where Chromium hides the real one.
pub async fn offered_host_addresses(viewer: &Browser) -> anyhow::Result<Vec<String>> {
    let found = viewer
        .client
        .execute(
            "const out = [];
             const peers = window.tandem ? [...window.tandem.shares.peers.values()] : [];
             for (const peer of peers) {
               const sdp = (peer.pc.localDescription || {}).sdp || '';
               for (const line of sdp.match(/^a=candidate:.*$/gm) || []) {
                 const w = line.split(' ');
                 if (w[7] === 'host') out.push(w[4]);
               }
             }
             return out;",
            vec![],
        )
        .await?;
    Ok(found
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect())
}

/// The viewer's first tile as the console shows it: `data-connection`, `data-path` and
/// the caption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tile {
    pub connection: String,
    pub path: String,
    pub caption: String,
}

pub async fn tile(viewer: &Browser) -> anyhow::Result<Option<Tile>> {
    let v = viewer
        .client
        .execute(
            "const t = document.querySelector('figure.tile');
             if (!t) return null;
             const c = t.querySelector('figcaption');
             return [t.dataset.connection || '', t.dataset.path || '', c ? c.textContent : ''];",
            vec![],
        )
        .await?;
    let Some(v) = v.as_array() else {
        return Ok(None);
    };
    let text = |i: usize| v[i].as_str().unwrap_or_default().to_owned();
    Ok(Some(Tile {
        connection: text(0),
        path: text(1),
        caption: text(2),
    }))
}

/// The colour the viewer decodes at (x, y) of the shared screen, as 0xRRGGBB.
pub async fn decoded_pixel(viewer: &Browser, x: u32, y: u32) -> anyhow::Result<u32> {
    let rgb = viewer
        .client
        .execute(
            "const v = document.querySelector('figure.tile video');
             const c = document.createElement('canvas');
             c.width = v.videoWidth; c.height = v.videoHeight;
             const g = c.getContext('2d'); g.drawImage(v, 0, 0);
             const d = g.getImageData(arguments[0], arguments[1], 1, 1).data;
             return (d[0] << 16) | (d[1] << 8) | d[2];",
            vec![json!(x), json!(y)],
        )
        .await?;
    Ok(rgb.as_u64().unwrap_or(0) as u32)
}

/// Within H.264's loss of colour detail.
pub fn near(got: u32, want: u32) -> bool {
    (0..3).all(|i| {
        let (g, w) = ((got >> (8 * i)) & 0xff, (want >> (8 * i)) & 0xff);
        g.abs_diff(w) <= 48
    })
}

/// The viewer's tile is connected and shows Ann's screen: the pattern's size in the
/// caption, each quadrant's colour decoded where it is, and frames that keep coming, the
/// pattern's own frame counter moving on in them.
pub async fn sees_the_pattern(viewer: &Browser) -> anyhow::Result<Tile> {
    let size = format!("Ann's screen · {WIDTH}×{HEIGHT}");
    let shown = eventually(
        &format!("{}: a connected tile captioned {size:?}", viewer.person),
        PATIENCE,
        async || {
            Ok(match tile(viewer).await? {
                Some(t) if t.connection == "connected" && t.caption.starts_with(&size) => {
                    Check::Done(t)
                }
                other => Check::NotYet(format!("{other:?}")),
            })
        },
    )
    .await;
    let shown = match shown {
        Ok(t) => t,
        Err(e) => {
            let shot = viewer.screenshot("failure").await.ok();
            return Err(e.context(format!("screenshot {shot:?}")));
        }
    };
    let (w, h) = (u32::from(WIDTH), u32::from(HEIGHT));
    let spots = [
        (w / 4, h / 4),
        (3 * w / 4, h / 4),
        (w / 4, 3 * h / 4),
        (3 * w / 4, 3 * h / 4),
    ];
    eventually(
        &format!("{}: the quadrants' colours decoded", viewer.person),
        PATIENCE,
        async || {
            let mut got = Vec::new();
            for (x, y) in spots {
                got.push(decoded_pixel(viewer, x, y).await?);
            }
            Ok(
                if got.iter().zip(QUADRANTS).all(|(&g, want)| near(g, want)) {
                    Check::Done(())
                } else {
                    let got: Vec<String> = got.iter().map(|g| format!("{g:06x}")).collect();
                    Check::NotYet(format!("decoded {got:?} at {spots:?}"))
                },
            )
        },
    )
    .await?;
    let before = frames(viewer).await?;
    let counted = counter(viewer).await?;
    eventually(
        &format!("{}: more frames, the counter moving on", viewer.person),
        PATIENCE,
        async || {
            let (now, count) = (frames(viewer).await?, counter(viewer).await?);
            Ok(if now > before && count != counted {
                Check::Done(())
            } else {
                Check::NotYet(format!(
                    "frames {before} → {now}, counter {counted} → {count}"
                ))
            })
        },
    )
    .await?;
    Ok(shown)
}

/// Frames decoded, as the tile counts them.
pub async fn frames(viewer: &Browser) -> anyhow::Result<u64> {
    let n = viewer
        .client
        .execute(
            "const t = document.querySelector('figure.tile'); return t ? Number(t.dataset.frames || 0) : 0",
            vec![],
        )
        .await?;
    Ok(n.as_u64().unwrap_or(0))
}

/// The pattern's frame counter as the viewer decodes it.
async fn counter(viewer: &Browser) -> anyhow::Result<u32> {
    let (x, y) = crate::counter_origin(WIDTH, HEIGHT);
    let mut n = 0;
    for bit in 0..crate::COUNTER_BITS {
        let cx = x + bit * crate::COUNTER_CELL + crate::COUNTER_CELL / 2;
        let px = decoded_pixel(viewer, cx, y + crate::COUNTER_CELL / 2).await?;
        if px & 0xff > 0x80 {
            n |= 1 << bit;
        }
    }
    Ok(n)
}

/// The selected pair once the viewer's connection has one.
pub async fn wait_for_selected_pair(viewer: &Browser) -> anyhow::Result<SelectedPair> {
    eventually(
        &format!("{}: a selected candidate pair", viewer.person),
        PATIENCE,
        async || {
            Ok(match selected_pair(viewer).await? {
                Some(pair) => Check::Done(pair),
                None => Check::NotYet("none".into()),
            })
        },
    )
    .await
}
