//! End-to-end harness: the real signaling server on port 0, real chromedriver and headless
//! Debian Chromium (one browser process per person, each with its own fresh profile), and
//! screenshots of every step under `target/e2e-artifacts/`.

mod agent_process;
pub mod agent_window;
pub mod delay_line;
pub mod join_cutter;
pub mod media_stats;
pub mod nat_scene;
pub mod netns;
pub mod network_profiles;
mod server_process;
pub mod wine;
mod x_input;
pub mod xdnd;

pub use agent_process::AgentProcess;
pub use server_process::{ServerProcess, server_log};
pub use x_input::{InputRecorder, XInput};

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tandem_signaling::{AppState, Config};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

pub const ADMIN_PASSWORD: &str = "admin-password";
const WAIT: Duration = Duration::from_secs(15);
/// A name for this machine that is not "localhost" (browsers started with
/// [`Server::chromium_flags`] resolve it to 127.0.0.1): a page there is a secure context
/// only over HTTPS, as on a real server.
pub const TEST_HOST: &str = "tandem.test";

/// The signaling server, in this process, on a free port.
#[derive(Debug)]
pub struct Server {
    pub base: String,
    pub state: AppState,
    /// Over HTTPS: the base64 SHA-256 of the certificate's public key (SPKI), which
    /// Chromium trusts through `--ignore-certificate-errors-spki-list`.
    pub spki_sha256: Option<String>,
    /// Over HTTPS: the certificate's PEM file (what the agent trusts via SSL_CERT_FILE).
    pub cert_file: Option<PathBuf>,
    port: u16,
    http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// The server with some settings changed from the tests' defaults.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut config = Config::for_tests(dir.path());
        configure(&mut config);
        Self::serve(dir, config, None).await
    }

    /// The server over HTTPS only, with a self-signed certificate made now for
    /// [`TEST_HOST`], 127.0.0.1 and localhost; `base` is `https://tandem.test:<port>`.
    pub async fn start_https() -> anyhow::Result<Self> {
        use base64::Engine as _;
        use rcgen::PublicKeyData as _;
        use sha2::Digest as _;
        let dir = tempfile::tempdir()?;
        let key = rcgen::KeyPair::generate()?;
        let cert = rcgen::CertificateParams::new(vec![
            TEST_HOST.to_owned(),
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])?
        .self_signed(&key)?;
        let files = tandem_signaling::tls::TlsFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        std::fs::write(&files.cert, cert.pem())?;
        std::fs::write(&files.key, key.serialize_pem())?;
        let spki = base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(key.subject_public_key_info()));
        let mut config = Config::for_tests(dir.path());
        config.tls = Some(files.clone());
        let mut server = Self::serve(dir, config, Some((cert.pem(), spki))).await?;
        server.cert_file = Some(files.cert);
        Ok(server)
    }

    async fn serve(
        dir: tempfile::TempDir,
        config: Config,
        tls: Option<(String, String)>,
    ) -> anyhow::Result<Self> {
        let (state, _) = tandem_signaling::build(config).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (base, http, spki_sha256) = match tls {
            None => (format!("http://{addr}"), reqwest::Client::new(), None),
            Some((cert_pem, spki)) => {
                let http = reqwest::Client::builder()
                    .use_rustls_tls()
                    .tls_built_in_root_certs(false)
                    .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes())?)
                    .resolve(TEST_HOST, addr)
                    .build()?;
                let base = format!("https://{TEST_HOST}:{}", addr.port());
                (base, http, Some(spki))
            }
        };
        let (tx, rx) = oneshot::channel::<()>();
        let served = state.clone();
        tokio::spawn(async move {
            let stopped = tandem_signaling::run(listener, served, async {
                let _ = rx.await;
            });
            if let Err(e) = stopped.await {
                eprintln!("test server failed: {e}");
            }
        });
        Ok(Self {
            base,
            state,
            spki_sha256,
            cert_file: None,
            port: addr.port(),
            http,
            shutdown: Some(tx),
            _dir: dir,
        })
    }

    /// This server at [`TEST_HOST`] instead of 127.0.0.1 (for a plain-HTTP server: an
    /// address where browsers refuse screen capture, as on a real server without HTTPS).
    pub fn base_at_test_host(&self) -> String {
        let scheme = if self.spki_sha256.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{TEST_HOST}:{}", self.port)
    }

    /// What Chromium needs to reach this server at [`TEST_HOST`] and, over HTTPS, to
    /// trust exactly its certificate's key.
    pub fn chromium_flags(&self) -> Vec<String> {
        let mut flags = vec![format!("--host-resolver-rules=MAP {TEST_HOST} 127.0.0.1")];
        if let Some(spki) = &self.spki_sha256 {
            flags.push(format!("--ignore-certificate-errors-spki-list={spki}"));
        }
        flags
    }

    /// The site's limits (R4): customers one rep helps at once, and whether a rep may run
    /// several sessions.
    pub async fn set_limits(
        &self,
        max_customers: u32,
        multiple_sessions: bool,
    ) -> anyhow::Result<()> {
        self.admin_call(
            "PUT",
            "/api/admin/settings",
            json!({"max_customers_per_rep": max_customers, "allow_multiple_sessions": multiple_sessions}),
        )
        .await?;
        Ok(())
    }

    /// Every account's id by username, from the admin API (one admin login: logins are
    /// rate-limited per address).
    pub async fn account_ids(&self) -> anyhow::Result<std::collections::HashMap<String, i64>> {
        let reps = self
            .admin_call("GET", "/api/admin/reps", Value::Null)
            .await?;
        Ok(reps
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| Some((a["username"].as_str()?.to_owned(), a["id"].as_i64()?)))
            .collect())
    }

    /// Create a rep account through the admin API.
    pub async fn create_rep(
        &self,
        username: &str,
        name: &str,
        password: &str,
    ) -> anyhow::Result<()> {
        create_rep_at(&self.http, &self.base, username, name, password).await
    }

    /// An admin API call (setup that the test is not about).
    pub async fn admin_call(&self, method: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        admin_call_at(&self.http, &self.base, method, path, body).await
    }
}

/// [`Server::create_rep`] on any server, e.g. the binary running in a network namespace.
pub async fn create_rep_at(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    name: &str,
    password: &str,
) -> anyhow::Result<()> {
    let body = json!({"username": username, "display_name": name, "password": password});
    admin_call_at(http, base, "POST", "/api/admin/reps", body).await?;
    Ok(())
}

/// [`Server::admin_call`] on any server, logged in as `admin` with [`ADMIN_PASSWORD`]. The
/// login is kept per server, so a test's setup spends one of the address's logins a minute,
/// not one per call (the server allows ten).
pub async fn admin_call_at(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    static COOKIES: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());
    let known = |base: &str| {
        COOKIES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(b, _)| b == base)
            .map(|(_, c)| c.clone())
    };
    let method = reqwest::Method::from_bytes(method.as_bytes())?;
    for fresh in [false, true] {
        let cookie = match known(base).filter(|_| !fresh) {
            Some(cookie) => cookie,
            None => {
                let login = http
                    .post(format!("{base}/api/login"))
                    .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
                    .send()
                    .await?;
                let cookie = login
                    .headers()
                    .get("set-cookie")
                    .with_context(|| format!("no login cookie ({})", login.status()))?
                    .to_str()?
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let mut cookies = COOKIES.lock().unwrap_or_else(|e| e.into_inner());
                cookies.retain(|(b, _)| b != base);
                cookies.push((base.to_owned(), cookie.clone()));
                cookie
            }
        };
        let response = http
            .request(method.clone(), format!("{base}{path}"))
            .header("cookie", cookie)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED && !fresh {
            continue; // the server restarted or the login expired: log in again
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path} answered {status}: {body}");
        }
        return Ok(body);
    }
    bail!("{path}: the admin login was refused")
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A chromedriver process; each `browser()` is a separate headless Chromium.
#[derive(Debug)]
pub struct Chromedriver {
    url: String,
    child: Child,
    artifacts: PathBuf,
    /// Inside a network namespace: this process's way in.
    _forward: Option<netns::PortForward>,
}

impl Chromedriver {
    /// Start chromedriver on a free port. `test` names the artifacts folder.
    pub async fn start(test: &str) -> anyhow::Result<Self> {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?.port()
        };
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context(
                "could not start chromedriver: install Debian's chromium and chromium-driver \
                 (`cargo xtask test` does)",
            )?;
        Self::ready(test, format!("http://127.0.0.1:{port}"), child, None).await
    }

    /// chromedriver, and every Chromium it starts, inside `host`'s network namespace of
    /// `topology`; this process drives it through [`netns::Topology::forward`], which
    /// gives `host` no network path it would not have otherwise.
    pub async fn start_in(
        test: &str,
        topology: &netns::Topology,
        host: netns::Host,
    ) -> anyhow::Result<Self> {
        // The namespace's loopback is its own: no other chromedriver can hold this port.
        const PORT: u16 = 9515;
        let child = topology
            .command(host, "chromedriver")
            .arg(format!("--port={PORT}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("could not start chromedriver in a network namespace")?;
        let forward = topology.forward(host, PORT).await?;
        let url = format!("http://{}", forward.addr());
        Self::ready(test, url, child, Some(forward)).await
    }

    /// Wait until the chromedriver at `url` answers.
    async fn ready(
        test: &str,
        url: String,
        child: Child,
        forward: Option<netns::PortForward>,
    ) -> anyhow::Result<Self> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let ready = reqwest::get(format!("{url}/status"))
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("chromedriver did not answer on {url}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let artifacts = target_dir().join("e2e-artifacts").join(test);
        std::fs::create_dir_all(&artifacts)?;
        Ok(Self {
            url,
            child,
            artifacts,
            _forward: forward,
        })
    }

    /// A new headless Chromium with an empty profile, as one person.
    pub async fn browser(&self, person: &str) -> anyhow::Result<Browser> {
        self.browser_with(person, &[]).await
    }

    /// Chromium with fake camera, microphone and screen, answering media prompts itself.
    pub async fn media_browser(&self, person: &str) -> anyhow::Result<Browser> {
        self.media_browser_with(person, &[]).await
    }

    /// [`Chromedriver::media_browser`] with more flags (e.g. [`Server::chromium_flags`]).
    pub async fn media_browser_with(
        &self,
        person: &str,
        more: &[String],
    ) -> anyhow::Result<Browser> {
        let mut flags = vec![
            // Peers on one machine must see each other's real host addresses, not mDNS
            // names that nothing here resolves.
            "--disable-features=WebRtcHideLocalIpsWithMdns".to_owned(),
        ];
        flags.extend(more.iter().cloned());
        self.media_browser_hiding_local_ips(person, &flags).await
    }

    /// [`Chromedriver::media_browser_with`] that keeps Chromium's default of hiding its
    /// host addresses behind mDNS names (as a real rep's browser does).
    pub async fn media_browser_hiding_local_ips(
        &self,
        person: &str,
        more: &[String],
    ) -> anyhow::Result<Browser> {
        let mut flags = vec![
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            "--auto-select-desktop-capture-source=Entire screen",
        ];
        flags.extend(more.iter().map(String::as_str));
        self.browser_with(person, &flags).await
    }

    async fn browser_with(&self, person: &str, extra: &[&str]) -> anyhow::Result<Browser> {
        let profile = tempfile::tempdir()?;
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": "/usr/bin/chromium", "args": args}),
        );
        caps.insert("unhandledPromptBehavior".into(), json!("accept"));
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .with_context(|| format!("could not start Chromium for {person}"))?;
        Ok(Browser {
            client,
            person: person.to_owned(),
            artifacts: self.artifacts.clone(),
            _profile: profile,
        })
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A real SMTP server (Python's aiosmtpd) that keeps every message it accepts.
#[derive(Debug)]
pub struct SmtpSink {
    pub port: u16,
    child: Child,
    folder: tempfile::TempDir,
}

impl SmtpSink {
    /// A free port with nothing listening on it (yet).
    pub fn free_port() -> anyhow::Result<u16> {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        Ok(probe.local_addr()?.port())
    }

    pub async fn start(port: u16) -> anyhow::Result<Self> {
        use tokio::io::AsyncBufReadExt;
        let folder = tempfile::tempdir()?;
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(folder.path())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("could not start python3 for the SMTP server")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(WAIT, lines.next_line()).await;
        match ready {
            Ok(Ok(Some(line))) if line == "ready" => {}
            other => bail!(
                "the SMTP server did not start ({other:?}); it needs aiosmtpd \
                 (`python3 -m pip install aiosmtpd`, which `cargo xtask test` does)"
            ),
        }
        Ok(Self {
            port,
            child,
            folder,
        })
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> anyhow::Result<Vec<Value>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.folder.path())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| Ok(serde_json::from_str(&std::fs::read_to_string(p)?)?))
            .collect()
    }

    /// Wait for the `n`th message (1-based).
    pub async fn message(&self, n: usize) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(m) = self.messages()?.into_iter().nth(n - 1) {
                return Ok(m);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("message {n} never arrived at the SMTP server");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// An Xvfb display showing the test pattern: four coloured quadrants and, in the middle,
/// a frame counter that counts ten times a second, so frames keep coming and a viewer can
/// tell one frame from the next.
pub struct PatternDisplay {
    pub display: String,
    conn: std::sync::Arc<x11rb::rust_connection::RustConnection>,
    root: u32,
    xvfb: std::process::Child,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for PatternDisplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatternDisplay")
            .field("display", &self.display)
            .finish()
    }
}

/// The pattern's frame counter: this many cells, each this many pixels square.
pub const COUNTER_BITS: u32 = 8;
pub const COUNTER_CELL: u32 = 16;

/// Where the frame counter's first cell is on a `width`×`height` pattern.
pub fn counter_origin(width: u16, height: u16) -> (u32, u32) {
    (
        u32::from(width) / 2 - COUNTER_BITS * COUNTER_CELL / 2,
        u32::from(height) / 2 - COUNTER_CELL / 2,
    )
}

/// The quadrant colours, top-left, top-right, bottom-left, bottom-right (0xRRGGBB).
pub const QUADRANTS: [u32; 4] = [0xff0000, 0x00ff00, 0x0000ff, 0xffff00];

impl PatternDisplay {
    /// An Xvfb of this size with nothing drawn on it (for content the caller draws).
    pub fn bare(width: u16, height: u16) -> anyhow::Result<Self> {
        use std::io::BufRead;
        use x11rb::connection::Connection;
        let screen = format!("{width}x{height}x24");
        let mut xvfb = std::process::Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &screen,
                "-nolisten",
                "tcp",
                "-br",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("could not start Xvfb (Debian package xvfb; cargo xtask test installs it)")?;
        let mut line = String::new();
        std::io::BufReader::new(xvfb.stdout.take().context("no stdout")?).read_line(&mut line)?;
        let display = format!(":{}", line.trim());
        let (conn, n) = x11rb::rust_connection::RustConnection::connect(Some(&display))?;
        let root = conn.setup().roots[n].root;
        Ok(Self {
            display,
            conn: std::sync::Arc::new(conn),
            root,
            xvfb,
            stop: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    pub fn start(width: u16, height: u16) -> anyhow::Result<Self> {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::{
            ConnectionExt as _, CreateGCAux, CreateWindowAux, Rectangle, WindowClass,
        };
        let this = Self::bare(width, height)?;
        let (conn, root) = (this.conn.clone(), this.root);
        let (w, h) = (width / 2, height / 2);
        let spots = [(0, 0), (w, 0), (0, h), (w, h)];
        for (rgb, (x, y)) in QUADRANTS.into_iter().zip(spots) {
            let id = conn.generate_id()?;
            let aux = CreateWindowAux::new().background_pixel(rgb);
            conn.create_window(
                0,
                id,
                root,
                x as i16,
                y as i16,
                w,
                h,
                0,
                WindowClass::INPUT_OUTPUT,
                0,
                &aux,
            )?;
            conn.map_window(id)?;
        }
        // The frame counter: COUNTER_BITS cells of COUNTER_CELL×COUNTER_CELL pixels in a row
        // at the centre, white for a one, black for a zero, counting ten times a second.
        let counter = conn.generate_id()?;
        let (cx, cy) = counter_origin(width, height);
        let cell = COUNTER_CELL as u16;
        conn.create_window(
            0,
            counter,
            root,
            cx as i16,
            cy as i16,
            cell * COUNTER_BITS as u16,
            cell,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &CreateWindowAux::new().background_pixel(0x000000),
        )?;
        conn.map_window(counter)?;
        let gc = conn.generate_id()?;
        conn.create_gc(gc, counter, &CreateGCAux::new().foreground(0xffffff))?;
        conn.warp_pointer(
            x11rb::NONE,
            root,
            0,
            0,
            0,
            0,
            width as i16 - 1,
            height as i16 - 1,
        )?;
        conn.flush()?;
        let stop = this.stop.clone();
        let stopped = stop.clone();
        let painter = conn.clone();
        std::thread::spawn(move || {
            let conn = painter;
            let mut n = 0u32;
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                n = (n + 1) % (1 << COUNTER_BITS);
                let ones: Vec<Rectangle> = (0..COUNTER_BITS)
                    .filter(|bit| n >> bit & 1 == 1)
                    .map(|bit| Rectangle {
                        x: (bit * COUNTER_CELL) as i16,
                        y: 0,
                        width: cell,
                        height: cell,
                    })
                    .collect();
                if conn.clear_area(false, counter, 0, 0, 0, 0).is_err()
                    || conn.poly_fill_rectangle(counter, gc, &ones).is_err()
                    || conn.flush().is_err()
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Ok(this)
    }

    /// Another plain window of one colour, with a title; returns its id once it shows.
    pub fn window(
        &self,
        rgb: u32,
        x: i16,
        y: i16,
        w: u16,
        h: u16,
        title: &str,
    ) -> anyhow::Result<u32> {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::{
            AtomEnum, ConnectionExt as _, CreateWindowAux, PropMode, WindowClass,
        };
        use x11rb::wrapper::ConnectionExt as _;
        let id = self.conn.generate_id()?;
        let aux = CreateWindowAux::new().background_pixel(rgb);
        self.conn.create_window(
            0,
            id,
            self.root,
            x,
            y,
            w,
            h,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &aux,
        )?;
        self.conn.change_property8(
            PropMode::REPLACE,
            id,
            AtomEnum::WM_NAME,
            AtomEnum::STRING,
            title.as_bytes(),
        )?;
        self.conn.map_window(id)?;
        self.conn.get_input_focus()?.reply()?;
        Ok(id)
    }

    /// Split the screen into RandR monitors, as a desk of several screens has them:
    /// (name, x, y, width, height, primary) each.
    pub fn monitors(&self, monitors: &[(&str, i16, i16, u16, u16, bool)]) -> anyhow::Result<()> {
        use x11rb::protocol::randr::{ConnectionExt as _, MonitorInfo};
        use x11rb::protocol::xproto::ConnectionExt as _;
        self.conn.randr_query_version(1, 5)?.reply()?;
        for &(name, x, y, width, height, primary) in monitors {
            let name = self.conn.intern_atom(false, name.as_bytes())?.reply()?.atom;
            let monitor = MonitorInfo {
                name,
                primary,
                automatic: false,
                x,
                y,
                width,
                height,
                // About 96 dpi.
                width_in_millimeters: u32::from(width) * 254 / 960,
                height_in_millimeters: u32::from(height) * 254 / 960,
                outputs: Vec::new(),
            };
            self.conn.randr_set_monitor(self.root, monitor)?.check()?;
        }
        Ok(())
    }

    pub fn resize(&self, id: u32, w: u32, h: u32) -> anyhow::Result<()> {
        use x11rb::protocol::xproto::{ConfigureWindowAux, ConnectionExt as _};
        self.conn
            .configure_window(id, &ConfigureWindowAux::new().width(w).height(h))?;
        self.conn.get_input_focus()?.reply()?;
        Ok(())
    }
}

impl Drop for PatternDisplay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.xvfb.kill();
        let _ = self.xvfb.wait();
    }
}

/// The `tandem-agent` binary of this workspace, built now so a test never runs a stale one
/// (cargo does not build another package's binary for these tests by itself).
pub fn agent_binary() -> anyhow::Result<PathBuf> {
    // The bench names the (release) agent it measures.
    if let Some(binary) = std::env::var_os("TANDEM_AGENT_BINARY") {
        return Ok(PathBuf::from(binary));
    }
    workspace_binary("tandem-agent")
}

/// The `tandem-signaling` binary of this workspace, built now as [`agent_binary`] is (for
/// tests that run the server as its own process, e.g. inside a network namespace).
pub fn server_binary() -> anyhow::Result<PathBuf> {
    // `cargo xtask bench` names its release build.
    if let Some(binary) = std::env::var_os("TANDEM_SERVER_BINARY") {
        return Ok(PathBuf::from(binary));
    }
    workspace_binary("tandem-signaling")
}

fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let binary = target_dir().join("debug").join(name);
    // `cargo xtask test` built everything just before and says so: building again from
    // inside the test runner's environment would recompile for minutes.
    if std::env::var_os("TANDEM_TEST_PREBUILT").is_some() && binary.is_file() {
        return Ok(binary);
    }
    let cargo = std::env::var("CARGO")
        .ok()
        .or(option_env!("CARGO").map(str::to_owned))
        .unwrap_or_else(|| "cargo".into());
    // The same build as `cargo xtask test` runs first: with the same targets the features
    // resolve the same, so this is a no-op there, and a real rebuild only after an edit.
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--workspace", "--all-targets"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .with_context(|| format!("could not run cargo to build {name}"))?;
    anyhow::ensure!(status.success(), "could not build {name}");
    Ok(binary)
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// One person's browser, with helpers that wait for what a person would wait for.
#[derive(Debug)]
pub struct Browser {
    pub client: Client,
    pub person: String,
    artifacts: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client.goto(url).await?;
        Ok(())
    }

    /// Wait for an element, through page loads (a navigation aborts a single wait).
    pub async fn find(&self, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => return Ok(element),
                Err(e) if tokio::time::Instant::now() > deadline => {
                    return Err(e).with_context(|| format!("{}: no element {css}", self.person));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        self.on_fresh(css, |input| async move {
            input.clear().await?;
            input.send_keys(text).await
        })
        .await
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.on_fresh(css, |element| async move { element.click().await })
            .await
    }

    /// Find `css` and act on it; if the page replaced the element in between (a
    /// re-render, a translation applied), find it again, until the deadline.
    async fn on_fresh<F, Fut>(&self, css: &str, act: F) -> anyhow::Result<()>
    where
        F: Fn(fantoccini::elements::Element) -> Fut,
        Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
    {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match act(self.find(css).await?).await {
                Ok(()) => return Ok(()),
                Err(e)
                    if e.to_string().contains("stale element")
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("{}: acting on {css}", self.person));
                }
            }
        }
    }

    /// Is the element there and shown (not `hidden`, and laid out)?
    pub async fn is_shown(&self, css: &str) -> anyhow::Result<bool> {
        let v = self
            .client
            .execute(
                "const e = document.querySelector(arguments[0]); return Boolean(e && !e.hidden && e.offsetParent !== null);",
                vec![json!(css)],
            )
            .await?;
        Ok(v.as_bool().unwrap_or(false))
    }

    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match self.find(css).await?.text().await {
                Ok(text) => return Ok(text),
                Err(e)
                    if e.to_string().contains("stale element")
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Send input events straight down the page's first open input channel to a share's
    /// owner, as a modified console would: the agent alone decides whether they count.
    /// Waits for the channel to open (it opens with the peer connection, after the tile).
    pub async fn send_input_raw(&self, events: serde_json::Value) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let sent = self
                .client
                .execute(
                    "for (const view of window.tandem.shares.viewing.values()) {
                       if (view.input && view.input.readyState === 'open') {
                         for (const e of arguments[0]) view.input.send(JSON.stringify(e));
                         return true;
                       }
                     }
                     return false;",
                    vec![events.clone()],
                )
                .await?;
            if sent.as_bool() == Some(true) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{}: no input channel of this page ever opened", self.person);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until no element matches `css` (a tile closed, a mark removed).
    pub async fn wait_gone(&self, css: &str) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let there = self
                .client
                .execute(
                    "return document.querySelector(arguments[0]) !== null;",
                    vec![json!(css)],
                )
                .await?;
            if there.as_bool() == Some(false) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                let shot = self.screenshot("failure").await.ok();
                bail!(
                    "{}: {css} is still there (screenshot {shot:?})",
                    self.person
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until the element's text contains `wanted`; the error shows what was there.
    pub async fn wait_text(&self, css: &str, wanted: &str) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(el) => el.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(wanted) {
                return Ok(text);
            }
            if tokio::time::Instant::now() > deadline {
                let shot = self.screenshot("failure").await.ok();
                bail!(
                    "{}: {css} never contained {wanted:?}; it had {text:?} (screenshot {shot:?})",
                    self.person
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Join a session as a customer by its link, with this name.
    pub async fn join(&self, link: &str, name: &str) -> anyhow::Result<()> {
        self.goto(link).await?;
        self.fill("#name", name).await?;
        self.click("#join-button").await
    }

    /// The agent token in the attach command a joined customer's page shows (folded under
    /// "Advanced" when the page offers a download first: opened here).
    /// The help is rebuilt when the token or the downloads change (a fresh, closed fold):
    /// opened again until the command shows.
    pub async fn attach_command_token(&self) -> anyhow::Result<String> {
        const FOLD: &str = "details:not([open]):has(#agent-command) > summary";
        self.find("#agent-command").await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(summary) = self.client.find(Locator::Css(FOLD)).await {
                // A fold replaced in between is found again on the next round.
                let _ = summary.click().await;
            }
            let command = self.text("#agent-command").await.unwrap_or_default();
            if let Some(token) = command
                .contains("attach --server")
                .then(|| command.rsplit(' ').next().unwrap_or_default())
                .filter(|token| token.starts_with("agt_"))
            {
                return Ok(token.to_owned());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{}: no attach command shown; it had {command:?}",
                    self.person
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first video tile's place in the page, scrolled into view: (left, top, width,
    /// height) in CSS pixels.
    pub async fn video_rect(&self) -> anyhow::Result<(f64, f64, f64, f64)> {
        let r = self
            .client
            .execute(
                "const v = document.querySelector('figure.tile video');
                 v.scrollIntoView({ block: 'center' });
                 const r = v.getBoundingClientRect();
                 return [r.left, r.top, r.width, r.height];",
                vec![],
            )
            .await?;
        let n = |i: usize| r[i].as_f64().unwrap_or(0.0);
        Ok((n(0), n(1), n(2), n(3)))
    }

    /// Log in on the console (from any page that needs it).
    pub async fn log_in(&self, base: &str, username: &str, password: &str) -> anyhow::Result<()> {
        self.goto(&format!("{base}/login")).await?;
        self.fill("#username", username).await?;
        self.fill("#password", password).await?;
        self.click("#submit").await?;
        self.find("#start-button").await?;
        Ok(())
    }

    /// Start a session from the dashboard; returns (number as shown, join link).
    pub async fn start_session(&self, email: bool) -> anyhow::Result<(String, String)> {
        let checkbox = self.find("#email").await?;
        if checkbox.is_selected().await? != email {
            checkbox.click().await?;
        }
        self.click("#start-button").await?;
        let number = self.wait_text("#number", " ").await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let link = self
                .find("#link")
                .await?
                .prop("value")
                .await?
                .unwrap_or_default();
            if !link.is_empty() {
                return Ok((number, link));
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{}: the join link never appeared", self.person);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Save a PNG of what this person sees now.
    pub async fn screenshot(&self, step: &str) -> anyhow::Result<PathBuf> {
        let png = self.client.screenshot().await?;
        let path = self.artifacts.join(format!("{step}-{}.png", self.person));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    pub async fn close(self) -> anyhow::Result<()> {
        self.client.close().await?;
        Ok(())
    }
}
