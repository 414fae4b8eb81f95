//! Signaling under load: a load client (this binary, `tandem-bench load`, in a process of
//! its own) holds many idle WebSocket connections that said hello; the server's memory
//! per connection and the latency of a customer's join are measured meanwhile.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tandem_tests::Server;
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::Message;

use crate::report::rss_kib;

pub(crate) type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A WebSocket to the server from the loopback address 127.0.<a>.<b>, so the per-address
/// join limits apply to each client on its own, as for real customers.
async fn connect(addr: SocketAddr, from: u32) -> anyhow::Result<Ws> {
    connect_with(addr, from, None).await
}

async fn connect_with(addr: SocketAddr, from: u32, cookie: Option<&str>) -> anyhow::Result<Ws> {
    let source = Ipv4Addr::new(127, 0, (from >> 8) as u8 + 1, (from & 0xff) as u8 | 1);
    connect_from(addr, source, cookie).await
}

/// A WebSocket to the server from the loopback address `source`.
pub(crate) async fn connect_from(
    addr: SocketAddr,
    source: Ipv4Addr,
    cookie: Option<&str>,
) -> anyhow::Result<Ws> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{addr}/ws"
        ))?;
    if let Some(cookie) = cookie {
        request.headers_mut().insert("cookie", cookie.parse()?);
    }
    let (ws, _) = tokio_tungstenite::client_async(request, stream).await?;
    Ok(ws)
}

pub(crate) async fn send(ws: &mut Ws, message: Value) -> anyhow::Result<()> {
    ws.send(Message::text(message.to_string())).await?;
    Ok(())
}

pub(crate) async fn recv_type(ws: &mut Ws, kind: &str) -> anyhow::Result<Value> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .with_context(|| format!("no {kind} in time"))?
            .context("closed")??;
        if let Message::Text(text) = message {
            let v: Value = serde_json::from_str(&text)?;
            if v["type"] == kind {
                return Ok(v);
            }
            anyhow::ensure!(v["type"] != "error", "the server refused: {v}");
        }
    }
}

pub(crate) async fn hello(ws: &mut Ws, client: &str) -> anyhow::Result<()> {
    send(ws, json!({"type": "hello", "protocol_version": 1, "client": client, "software": "tandem-bench"})).await?;
    recv_type(ws, "welcome").await?;
    Ok(())
}

/// `tandem-bench load`: hold `n` connections that said hello; print `ready <n>`, then wait
/// until stdin closes.
pub async fn load(addr: SocketAddr, n: u32) -> anyhow::Result<()> {
    let _ = rlimit::increase_nofile_limit(u64::from(n) + 1024);
    let mut held = Vec::with_capacity(n as usize);
    let mut tasks = futures_util::stream::iter((0..n).map(|i| async move {
        let mut ws = connect(addr, i).await?;
        hello(&mut ws, "customer").await?;
        anyhow::Ok(ws)
    }))
    .buffer_unordered(64);
    while let Some(ws) = tasks.next().await {
        let mut ws = ws?;
        // An idle page still reads its socket, and so answers the server's pings (the
        // server closes connections it hears nothing from).
        held.push(tokio::spawn(async move {
            while let Some(Ok(_)) = ws.next().await {}
        }));
    }
    println!("ready {}", held.len());
    tokio::task::spawn_blocking(|| for _ in std::io::stdin().lines() {}).await?;
    for task in held {
        task.abort();
    }
    Ok(())
}

/// Log in as `username` at `base`: the login cookie (`name=value`).
pub(crate) async fn log_in(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    let login = http
        .post(format!("{base}/api/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await?;
    let status = login.status();
    Ok(login
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .with_context(|| format!("a login cookie for {username} at {base} ({status})"))?
        .to_owned())
}

/// Start a session at `base` with the login `cookie`: its number and link secret.
pub(crate) async fn start_session(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
) -> anyhow::Result<(String, String)> {
    let session: Value = http
        .post(format!("{base}/api/sessions"))
        .header("cookie", cookie)
        .json(&json!({"email_invite": false}))
        .send()
        .await?
        .json()
        .await?;
    let number = session["number"].as_str().context("number")?.to_owned();
    let secret = session["link"]
        .as_str()
        .and_then(|l| l.rsplit('/').next())
        .context("link")?
        .to_owned();
    Ok((number, secret))
}

/// A load client (`tandem-bench load`, a process of its own) holding `connections` idle
/// connections to `addr`, once they are all open; with how many it holds. It lets go
/// when its stdin closes or it is dropped.
pub(crate) async fn start_load(
    exe: &std::path::Path,
    addr: SocketAddr,
    connections: u32,
) -> anyhow::Result<(tokio::process::Child, u32)> {
    let mut client = tokio::process::Command::new(exe)
        .args(["load", "--addr", &addr.to_string()])
        .args(["--connections", &connections.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut out = tokio::io::BufReader::new(client.stdout.take().context("stdout")?).lines();
    let ready = tokio::time::timeout(Duration::from_secs(300), out.next_line())
        .await
        .context("the load client took too long")??
        .context("the load client ended")?;
    let held = ready
        .strip_prefix("ready ")
        .and_then(|n| n.parse().ok())
        .context("the load client's count")?;
    Ok((client, held))
}

#[derive(Debug)]
pub struct Figures {
    pub connections: u32,
    pub kib_per_connection: f64,
    pub join_ms: Vec<f64>,
}

pub async fn measure(
    exe: &std::path::Path,
    connections: u32,
    joins: u32,
) -> anyhow::Result<Figures> {
    let _ = rlimit::increase_nofile_limit(u64::from(connections) + 4096);
    let server = Server::start().await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    server.set_limits(50, false).await?;
    let addr: SocketAddr = server.base.trim_start_matches("http://").parse()?;
    // The rep logs in and opens a session.
    let http = reqwest::Client::new();
    let cookie = log_in(&http, &server.base, "rita", "rita-password").await?;
    let (number, secret) = start_session(&http, &server.base, &cookie).await?;
    let mut page = connect_with(addr, 0xef00, Some(&cookie)).await?;
    hello(&mut page, "console").await?;
    send(&mut page, json!({"type": "open_session", "number": number})).await?;
    recv_type(&mut page, "joined").await?;

    // Quiet before: the server's memory without the load.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib();
    let (mut client, held) = start_load(exe, addr, connections).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib();

    // Customers join one after another while the load is held.
    let mut join_ms = Vec::new();
    for i in 0..joins {
        let mut ws = connect(addr, 60_000 + i).await?;
        hello(&mut ws, "customer").await?;
        let t0 = Instant::now();
        send(
            &mut ws,
            json!({"type": "join_by_link", "secret": secret, "name": format!("Customer {i}")}),
        )
        .await?;
        recv_type(&mut ws, "joined").await?;
        join_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        send(&mut ws, json!({"type": "leave"})).await?;
    }
    drop(client.stdin.take());
    let _ = client.kill().await;
    Ok(Figures {
        connections: held,
        kib_per_connection: (after - before) / f64::from(held.max(1)),
        join_ms,
    })
}

/// What a burst of chat across many sessions at once cost (see [`burst`]).
#[derive(Debug)]
pub struct Burst {
    pub sessions: u32,
    pub lines: u32,
    pub lines_per_s: f64,
    /// From a customer's send to its rep's receipt, per line.
    pub line_ms: Vec<f64>,
    /// The sessions' own locks: held time (summed over sessions, which hold theirs side
    /// by side) over the burst's time, the mean time one take was held and waited for,
    /// and takes per line.
    pub sessions_lock: LockFigures,
    /// The same for the one lock over what spans sessions (a chat line should not need it).
    pub site_lock: LockFigures,
}

/// How much a kind of the registry's locks was used during a burst.
#[derive(Debug)]
pub struct LockFigures {
    pub busy: f64,
    pub hold_us: f64,
    pub wait_us: f64,
    pub takes_per_line: f64,
}

impl LockFigures {
    fn between(
        before: tandem_signaling::live::LockUse,
        after: tandem_signaling::live::LockUse,
        took: std::time::Duration,
        lines: u32,
    ) -> Self {
        let taken = (after.taken - before.taken) as f64;
        let held = (after.held - before.held).as_secs_f64();
        LockFigures {
            busy: held / took.as_secs_f64(),
            hold_us: held * 1e6 / taken.max(1.0),
            wait_us: (after.waited - before.waited).as_secs_f64() * 1e6 / taken.max(1.0),
            takes_per_line: taken / f64::from(lines),
        }
    }
}

/// `sessions` live sessions (a rep and a customer each, reps with up to 25 sessions of
/// their own, each connection from its own address), then every customer sends its
/// connection's whole chat allowance (the limit's burst) at once. Measured: the lines
/// a second the server carried to the reps, each line's trip, and how much of that time
/// the registry's locks were held (`Registry::lock_use`: the sessions' own, and the
/// site's), and waited for.
pub async fn burst(sessions: u32) -> anyhow::Result<Burst> {
    use tandem_signaling::limits::defaults::CHAT_BURST;
    const SESSIONS_PER_REP: u32 = 25;
    let server = Server::start().await?;
    server.set_limits(SESSIONS_PER_REP, true).await?;
    let addr: SocketAddr = server.base.trim_start_matches("http://").parse()?;
    let http = reqwest::Client::new();
    let mut pairs = Vec::new();
    let mut cookie = String::new();
    for i in 0..sessions {
        if i % SESSIONS_PER_REP == 0 {
            let name = format!("rep{}", i / SESSIONS_PER_REP);
            server.create_rep(&name, &name, "rep-password").await?;
            cookie = log_in(&http, &server.base, &name, "rep-password").await?;
        }
        let (number, secret) = start_session(&http, &server.base, &cookie).await?;
        let mut page = connect_with(addr, 0x1000 + i, Some(&cookie)).await?;
        hello(&mut page, "console").await?;
        send(&mut page, json!({"type": "open_session", "number": number})).await?;
        recv_type(&mut page, "joined").await?;
        let mut customer = connect(addr, 0x2000 + i).await?;
        hello(&mut customer, "customer").await?;
        send(
            &mut customer,
            json!({"type": "join_by_link", "secret": secret, "name": format!("Customer {i}")}),
        )
        .await?;
        recv_type(&mut customer, "joined").await?;
        recv_type(&mut page, "participant_joined").await?;
        pairs.push((page, customer));
    }

    let before = server.state.registry.lock_use();
    let start = Instant::now();
    let mut reps = tokio::task::JoinSet::new();
    let mut customers = tokio::task::JoinSet::new();
    for (mut page, mut customer) in pairs {
        reps.spawn(async move {
            let mut trips = Vec::new();
            while trips.len() < CHAT_BURST as usize {
                let chat = recv_type(&mut page, "chat").await?;
                let sent: f64 = chat["text"].as_str().unwrap_or_default().parse()?;
                trips.push(start.elapsed().as_secs_f64() * 1000.0 - sent);
            }
            anyhow::Ok((trips, page))
        });
        customers.spawn(async move {
            for _ in 0..CHAT_BURST {
                let at = start.elapsed().as_secs_f64() * 1000.0;
                send(
                    &mut customer,
                    json!({"type": "chat", "text": format!("{at:.3}")}),
                )
                .await?;
            }
            anyhow::Ok(customer)
        });
    }
    let mut line_ms = Vec::new();
    let mut kept = Vec::new();
    while let Some(done) = reps.join_next().await {
        let (trips, page) = done??;
        line_ms.extend(trips);
        kept.push(page);
    }
    let took = start.elapsed();
    let after = server.state.registry.lock_use();
    while let Some(done) = customers.join_next().await {
        done??;
    }
    let lines = sessions * CHAT_BURST;
    Ok(Burst {
        sessions,
        lines,
        lines_per_s: f64::from(lines) / took.as_secs_f64(),
        line_ms,
        sessions_lock: LockFigures::between(before.sessions, after.sessions, took, lines),
        site_lock: LockFigures::between(before.site, after.site, took, lines),
    })
}
