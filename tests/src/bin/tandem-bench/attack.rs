//! The attacker of the `abuse` section: `tandem-bench attack`, a process of its own so the
//! server's memory (the bench process) is not mixed with the attacker's. For a bounded time
//! it does what an attacker does, each client from its own loopback address 127.<block>.x.y
//! so per-address limits meet it as they would meet many machines, and counts what the
//! server did about it. A refused or closed connection is an outcome to count, never an
//! error of the bench. At the end it prints the counts as one JSON line and exits, which
//! closes every socket it held.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::tungstenite::Message;

use crate::signaling::{Ws, connect_from, hello, send};

/// How much of each kind of abuse, for how long.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub seconds: f64,
    /// WebSockets that join by number, then send requests that produce replies and never read.
    pub slow_readers: u32,
    /// What each slow reader sends at most.
    pub slow_bytes: usize,
    /// TCP connections that never send anything, all from one address.
    pub idle_one_address: u32,
    /// TCP connections that never send anything, one per address.
    pub idle_spread: u32,
    /// HTTP requests whose headers never end.
    pub half_sent: u32,
    /// Connections guessing session numbers, and the fastest each guesses.
    pub guessers: u32,
    pub guesses_per_second: f64,
    /// Customers joined by the session's link who flood its chat, and how fast.
    pub flooders: u32,
    pub chats_per_second: f64,
    /// GETs of the agent download whose body is never read, from ten addresses.
    pub downloads: u32,
}

impl Sizes {
    pub fn new(smoke: bool) -> Sizes {
        if smoke {
            Sizes {
                seconds: 5.0,
                slow_readers: 40,
                slow_bytes: 1 << 20,
                idle_one_address: 300,
                idle_spread: 300,
                half_sent: 100,
                guessers: 6,
                guesses_per_second: 200.0,
                flooders: 1,
                chats_per_second: 100.0,
                downloads: 30,
            }
        } else {
            Sizes {
                seconds: 20.0,
                slow_readers: 200,
                slow_bytes: 2 << 20,
                idle_one_address: 400,
                idle_spread: 2000,
                half_sent: 500,
                guessers: 16,
                guesses_per_second: 200.0,
                flooders: 2,
                chats_per_second: 200.0,
                downloads: 60,
            }
        }
    }

    /// Sockets the attacker holds at most, for the open-files limit of both processes.
    pub fn sockets(&self) -> u64 {
        u64::from(
            self.slow_readers
                + self.idle_one_address
                + self.idle_spread
                + self.half_sent
                + self.guessers
                + self.flooders
                + self.downloads,
        )
    }
}

/// What the attacker knows: the server's address, the live session's number and join
/// link secret, and a rep account of its own (an insider, or a stolen password).
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub number: String,
    pub secret: String,
    pub username: String,
    pub password: String,
}

/// Outcome → how many times, per kind of abuse.
pub type Tallies = BTreeMap<String, BTreeMap<String, u64>>;

/// The second octet of each kind's source addresses (127.<block>.x.y).
mod block {
    pub const SLOW: u8 = 101;
    pub const IDLE_ONE: u8 = 102;
    pub const IDLE_SPREAD: u8 = 103;
    pub const HALF_SENT: u8 = 104;
    pub const GUESS: u8 = 105;
    pub const FLOOD: u8 = 106;
    pub const DOWNLOAD: u8 = 107;
}

/// The i-th address of a block, never ending in .0 or .255.
fn source(block: u8, i: u32) -> Ipv4Addr {
    let i = i % (254 * 250);
    Ipv4Addr::new(127, block, (i / 254) as u8 + 1, (i % 254) as u8 + 1)
}

const CONNECT_WAIT: Duration = Duration::from_secs(5);
const REPLY_WAIT: Duration = Duration::from_secs(5);

/// `tandem-bench attack`: run every kind of abuse at once until `sizes.seconds` have passed,
/// then print the tallies.
pub async fn run(target: Target, sizes: Sizes) -> anyhow::Result<()> {
    // Best effort: without a higher limit the attack is smaller, and the counts say so.
    if let Err(e) = rlimit::increase_nofile_limit(sizes.sockets() + 1024) {
        eprintln!("tandem-bench attack: open-files limit not raised: {e}");
    }
    let deadline = Instant::now() + Duration::from_secs_f64(sizes.seconds);
    let mut tallies = Tallies::new();

    // The flooders join first, so the waiting room filling up cannot keep them out.
    let mut flooders = Vec::new();
    let mut flood_tally = BTreeMap::<String, u64>::new();
    for i in 0..sizes.flooders {
        match join_by_link(&target, i).await {
            Ok(ws) => flooders.push(ws),
            Err(outcome) => *flood_tally.entry(outcome).or_default() += 1,
        }
    }
    let account = log_in(&target).await;
    if let Err(outcome) = &account {
        tallies
            .entry("guesses".into())
            .or_default()
            .insert(format!("attacker's login: {outcome}"), 1);
    }

    let t = &target;
    let slow = many(sizes.slow_readers, |i| {
        slow_reader(t, i, sizes.slow_bytes, deadline)
    });
    let idle_one = many(sizes.idle_one_address, |_| {
        idle(t.addr, source(block::IDLE_ONE, 0), None, deadline)
    });
    let idle_spread = many(sizes.idle_spread, |i| {
        idle(t.addr, source(block::IDLE_SPREAD, i), None, deadline)
    });
    let half_sent = many(sizes.half_sent, |i| {
        let head = format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nUser-Agent: tandem-bench\r\n",
            t.addr
        );
        idle(t.addr, source(block::HALF_SENT, i), Some(head), deadline)
    });
    let guesses = async {
        let cookie = account.as_ref().ok().map(String::as_str);
        let runs =
            (0..sizes.guessers).map(|i| guesser(t, i, cookie, sizes.guesses_per_second, deadline));
        merge(futures_util::future::join_all(runs).await)
    };
    let flood = async {
        let runs = flooders
            .into_iter()
            .enumerate()
            .map(|(i, ws)| flood(ws, i, sizes.chats_per_second, deadline));
        merge(futures_util::future::join_all(runs).await)
    };
    let downloads = many(sizes.downloads, |i| {
        download(t.addr, source(block::DOWNLOAD, i % 10), deadline)
    });
    // Everything ends by the deadline; the margin only guards against a bug here.
    let all = async {
        futures_util::join!(
            slow,
            idle_one,
            idle_spread,
            half_sent,
            guesses,
            flood,
            downloads
        )
    };
    let (slow, idle_one, idle_spread, half_sent, guesses, mut flood, downloads) =
        timeout_at(deadline + Duration::from_secs(15), all)
            .await
            .map_err(|_| anyhow::anyhow!("the attack did not stop by its deadline"))?;
    for (outcome, n) in flood_tally {
        *flood.entry(outcome).or_default() += n;
    }
    for (kind, tally) in [
        ("slow readers", slow),
        ("idle, one address", idle_one),
        ("idle, many addresses", idle_spread),
        ("half-sent requests", half_sent),
        ("guesses", guesses),
        ("chat flood", flood),
        ("downloads", downloads),
    ] {
        let entry = tallies.entry(kind.into()).or_default();
        for (outcome, n) in tally {
            *entry.entry(outcome).or_default() += n;
        }
    }
    println!("{}", serde_json::to_string(&tallies)?);
    Ok(())
}

/// `n` connections of one kind at once, each ending in one outcome.
async fn many<F, Fut>(n: u32, each: F) -> BTreeMap<String, u64>
where
    F: Fn(u32) -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let outcomes = futures_util::future::join_all((0..n).map(each)).await;
    let mut tally = BTreeMap::new();
    for outcome in outcomes {
        *tally.entry(outcome).or_default() += 1;
    }
    tally
}

fn merge(tallies: Vec<BTreeMap<String, u64>>) -> BTreeMap<String, u64> {
    let mut all = BTreeMap::new();
    for tally in tallies {
        for (outcome, n) in tally {
            *all.entry(outcome).or_default() += n;
        }
    }
    all
}

/// A TCP connection from `from`; a small receive buffer for the clients that never read,
/// so the server, not this side's kernel, is left holding what they do not read.
async fn tcp_from(
    addr: SocketAddr,
    from: Ipv4Addr,
    small_buffer: bool,
) -> Result<TcpStream, String> {
    let socket = TcpSocket::new_v4().map_err(|e| format!("no local socket: {e}"))?;
    // Best effort: the kernel's default buffer only makes the test gentler.
    let _small = small_buffer && socket.set_recv_buffer_size(4096).is_ok();
    socket
        .bind(SocketAddr::from((from, 0)))
        .map_err(|e| format!("no local address: {e}"))?;
    match timeout(CONNECT_WAIT, socket.connect(addr)).await {
        Err(_) => Err("connect timed out".into()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Err("connection refused".into())
        }
        Ok(Err(e)) => Err(format!("connect failed: {:?}", e.kind())),
        Ok(Ok(stream)) => Ok(stream),
    }
}

/// The status code at the start of an HTTP response, if the bytes are one.
fn status_of(bytes: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(bytes.get(..12)?).ok()?;
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// A connection that sends nothing (or `head`, an HTTP request whose headers never end)
/// and waits: does the server close it, answer it, or hold it until the end?
async fn idle(addr: SocketAddr, from: Ipv4Addr, head: Option<String>, deadline: Instant) -> String {
    let mut stream = match tcp_from(addr, from, false).await {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let opened = Instant::now();
    if let Some(head) = head {
        if let Err(e) = stream.write_all(head.as_bytes()).await {
            return format!("write failed: {:?}", e.kind());
        }
    }
    let mut status = None;
    let mut buf = [0u8; 1024];
    loop {
        match timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => {
                return match status {
                    Some(code) => format!("answered {code}, open at the end"),
                    None => "open at the end".into(),
                };
            }
            Ok(Ok(0)) | Ok(Err(_)) => {
                let after = closed_after(opened);
                return match status {
                    Some(code) => format!("answered {code}, closed by the server {after}"),
                    None => format!("closed by the server {after}"),
                };
            }
            Ok(Ok(n)) => {
                if status.is_none() {
                    status = Some(status_of(&buf[..n]).map_or("?".into(), |c| c.to_string()));
                }
            }
        }
    }
}

/// "within 1 s", "after 1–5 s", "after 5 s": when the server gave up on a connection.
fn closed_after(opened: Instant) -> &'static str {
    match opened.elapsed().as_secs_f64() {
        s if s < 1.0 => "within 1 s",
        s if s < 5.0 => "after 1–5 s",
        _ => "after 5 s",
    }
}

/// A client WebSocket text frame. Client frames must be masked; a zero key leaves the
/// payload as it is.
fn frame(text: &str) -> Vec<u8> {
    let payload = text.as_bytes();
    let mut f = vec![0x81];
    match u16::try_from(payload.len()) {
        Ok(n) if n < 126 => f.push(0x80 | n as u8),
        Ok(n) => {
            f.push(0x80 | 126);
            f.extend(n.to_be_bytes());
        }
        Err(_) => {
            f.push(0x80 | 127);
            f.extend((payload.len() as u64).to_be_bytes());
        }
    }
    f.extend([0, 0, 0, 0]);
    f.extend(payload);
    f
}

/// The WebSocket upgrade by hand, so the socket stays ours to never read from.
async fn upgrade(stream: &mut TcpStream, addr: SocketAddr) -> Result<(), String> {
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("upgrade not sent: {:?}", e.kind()))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match timeout(REPLY_WAIT, stream.read(&mut buf)).await {
            Err(_) => return Err("upgrade not answered".into()),
            Ok(Ok(0)) | Ok(Err(_)) => return Err("closed before the upgrade".into()),
            Ok(Ok(n)) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 8192 {
            return Err("upgrade answer too long".into());
        }
    }
    match status_of(&head) {
        Some(101) => Ok(()),
        Some(code) => Err(format!("upgrade refused with {code}")),
        None => Err("upgrade answered with something else".into()),
    }
}

/// A WebSocket that joins the waiting room by number, then sends requests that each
/// produce a reply (hello → welcome, chat → error) and never reads one.
async fn slow_reader(target: &Target, i: u32, most: usize, deadline: Instant) -> String {
    let mut stream = match tcp_from(target.addr, source(block::SLOW, i), true).await {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    if let Err(outcome) = upgrade(&mut stream, target.addr).await {
        return outcome;
    }
    let opened = Instant::now();
    let hello = frame(
        &json!({"type": "hello", "protocol_version": 1, "client": "customer", "software": "x"})
            .to_string(),
    );
    let chat = frame(&json!({"type": "chat", "text": "let me in"}).to_string());
    let mut start = hello.clone();
    start.extend(frame(
        &json!({"type": "join_by_number", "number": target.number, "name": format!("Slow {i}")})
            .to_string(),
    ));
    let mut batch = Vec::new();
    for _ in 0..64 {
        batch.extend_from_slice(&hello);
        batch.extend_from_slice(&chat);
    }
    let mut sent = 0;
    let mut blocked = false;
    let mut next = start;
    loop {
        if sent >= most {
            // All sent (much of it may still sit in the server's socket buffer): keep
            // sending a little, still never reading, which also tells when the server
            // has closed the connection.
            tokio::time::sleep_until((Instant::now() + Duration::from_millis(250)).min(deadline))
                .await;
            if Instant::now() >= deadline {
                return if blocked {
                    "sent everything (writes blocked at times), open at the end".into()
                } else {
                    "sent everything, open at the end".into()
                };
            }
            next.clone_from(&hello);
        }
        let began = Instant::now();
        match timeout_at(deadline, stream.write_all(&next)).await {
            Err(_) => {
                return if blocked || began.elapsed() > Duration::from_secs(1) {
                    "server stopped reading it, open at the end".into()
                } else {
                    "open at the end".into()
                };
            }
            Ok(Err(_)) => return format!("closed by the server {}", closed_after(opened)),
            Ok(Ok(())) => {
                sent += next.len();
                blocked |= began.elapsed() > Duration::from_secs(1);
                next.clone_from(&batch);
            }
        }
    }
}

async fn ws_from(target: &Target, from: Ipv4Addr, cookie: Option<&str>) -> Result<Ws, String> {
    match timeout(CONNECT_WAIT, connect_from(target.addr, from, cookie)).await {
        Err(_) => Err("connect timed out".into()),
        Ok(Err(e)) => Err(format!("connect failed: {}", first_line(&format!("{e:#}")))),
        Ok(Ok(ws)) => Ok(ws),
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").chars().take(80).collect()
}

/// The next text message, as JSON; Err is the outcome (closed, silent).
async fn next_message(ws: &mut Ws, wait: Duration) -> Result<Value, String> {
    loop {
        match timeout(wait, ws.next()).await {
            Err(_) => return Err(format!("no reply in {} s", wait.as_secs())),
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => {
                return Err("closed by the server".into());
            }
            Ok(Some(Ok(Message::Text(text)))) => {
                return serde_json::from_str(&text).map_err(|_| "not JSON".into());
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// How a reply reads in the tallies: `error: rate_limited`, `waiting`, `joined`, …
fn reply_kind(v: &Value) -> String {
    match v["type"].as_str() {
        Some("error") => format!("error: {}", v["code"].as_str().unwrap_or("?")),
        Some(kind) => kind.to_owned(),
        None => "not a message".into(),
    }
}

/// A customer in the session by its join link (what the session's own customers have).
async fn join_by_link(target: &Target, i: u32) -> Result<Ws, String> {
    let mut ws = ws_from(target, source(block::FLOOD, i), None).await?;
    match timeout(REPLY_WAIT, hello(&mut ws, "customer")).await {
        Err(_) => return Err("hello unanswered".into()),
        Ok(Err(e)) => return Err(format!("hello failed: {}", first_line(&format!("{e:#}")))),
        Ok(Ok(())) => {}
    }
    let join =
        json!({"type": "join_by_link", "secret": target.secret, "name": format!("Flood {i}")});
    match timeout(REPLY_WAIT, send(&mut ws, join)).await {
        Ok(Ok(())) => {}
        _ => return Err("join not sent".into()),
    }
    loop {
        let v = next_message(&mut ws, REPLY_WAIT).await?;
        match v["type"].as_str() {
            Some("joined") => return Ok(ws),
            Some("error") => return Err(format!("join refused: {}", reply_kind(&v))),
            _ => {}
        }
    }
}

/// The attacker's own rep account: a cookie, for guessing with assist and open_session.
async fn log_in(target: &Target) -> Result<String, String> {
    let http = reqwest::Client::builder()
        .local_address(std::net::IpAddr::V4(source(block::GUESS, 250 * 254 - 1)))
        .timeout(REPLY_WAIT)
        .build()
        .map_err(|e| format!("no HTTP client: {e}"))?;
    let login = http
        .post(format!("http://{}/api/login", target.addr))
        .json(&json!({"username": target.username, "password": target.password}))
        .send()
        .await
        .map_err(|e| format!("failed: {e}"))?;
    let status = login.status();
    login
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| format!("refused with {status}"))
}

/// A small, seedable random source; the guesses need no better.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Guess session numbers as fast as the server answers (at most `rate` a second):
/// join_by_number, or with the account's cookie assist and open_session. A closed
/// connection is counted and opened again.
async fn guesser(
    target: &Target,
    i: u32,
    cookie: Option<&str>,
    rate: f64,
    deadline: Instant,
) -> BTreeMap<String, u64> {
    let mut tally = BTreeMap::new();
    let mut count = |outcome: String| *tally.entry(outcome).or_default() += 1;
    let as_rep = i % 2 == 1;
    let cookie = if as_rep { cookie } else { None };
    let from = source(block::GUESS, i);
    let mut random =
        XorShift(0x9e37_79b9_7f4a_7c15 ^ (u64::from(i) + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let gap = Duration::from_secs_f64(1.0 / rate);
    while Instant::now() < deadline {
        let mut ws = match ws_from(target, from, cookie).await {
            Ok(ws) => ws,
            Err(outcome) => {
                count(outcome);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match timeout_at(deadline, hello(&mut ws, "customer")).await {
            Err(_) => break,
            Ok(Err(_)) => {
                count("hello refused or unanswered".into());
                continue;
            }
            Ok(Ok(())) => {}
        }
        let mut next = Instant::now();
        while Instant::now() < deadline {
            tokio::time::sleep_until(next).await;
            next += gap;
            let number = format!("{:09}", random.next() % 1_000_000_000);
            let (kind, guess) = match (as_rep, random.next() % 2) {
                (false, _) => (
                    "join_by_number",
                    json!({"type": "join_by_number", "number": number, "name": "Guess"}),
                ),
                (true, 0) => ("assist", json!({"type": "assist", "number": number})),
                (true, _) => (
                    "open_session",
                    json!({"type": "open_session", "number": number}),
                ),
            };
            match timeout_at(deadline, send(&mut ws, guess)).await {
                Err(_) => break,
                Ok(Err(_)) => {
                    count("closed by the server".into());
                    break;
                }
                Ok(Ok(())) => {}
            }
            count(format!("{kind} sent"));
            match next_message(&mut ws, REPLY_WAIT).await {
                Ok(reply) => {
                    let answer = reply_kind(&reply);
                    let hit = !answer.starts_with("error");
                    count(format!("{kind} → {answer}"));
                    if hit {
                        // A guess that found a session: that connection is spent.
                        break;
                    }
                }
                Err(outcome) => {
                    count(outcome);
                    break;
                }
            }
        }
        // Already closed by the server, or not answering: either was counted above.
        let _closed = timeout(Duration::from_secs(1), ws.close(None)).await;
    }
    tally
}

/// Chat lines as fast as `rate`, while reading what comes back: how many the session took
/// (the sender gets each accepted line back) and how many it refused.
async fn flood(ws: Ws, i: usize, rate: f64, deadline: Instant) -> BTreeMap<String, u64> {
    let (mut sink, mut stream) = ws.split();
    let mark = format!("flood{i}:");
    let reader = async {
        let mut tally = BTreeMap::<String, u64>::new();
        loop {
            match timeout_at(deadline + Duration::from_secs(1), stream.next()).await {
                Err(_) => break,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => {
                    *tally.entry("closed by the server".into()).or_default() += 1;
                    break;
                }
                Ok(Some(Ok(Message::Text(text)))) => {
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let outcome = match v["type"].as_str() {
                        Some("chat")
                            if v["text"].as_str().is_some_and(|t| t.starts_with(&mark)) =>
                        {
                            "accepted (came back)".to_owned()
                        }
                        Some("error") => reply_kind(&v),
                        _ => continue,
                    };
                    *tally.entry(outcome).or_default() += 1;
                }
                Ok(Some(Ok(_))) => {}
            }
        }
        tally
    };
    let writer = async {
        let filler = "x".repeat(100);
        let gap = Duration::from_secs_f64(1.0 / rate);
        let mut next = Instant::now();
        let mut sent = 0u64;
        while Instant::now() < deadline {
            tokio::time::sleep_until(next).await;
            next += gap;
            let line = json!({"type": "chat", "text": format!("{mark}{sent} {filler}")});
            let sending = sink.send(Message::text(line.to_string()));
            match timeout_at(deadline, sending).await {
                Ok(Ok(())) => sent += 1,
                Ok(Err(_)) | Err(_) => break,
            }
        }
        // The server may have closed it first, or stopped reading.
        let _closed = timeout(Duration::from_secs(1), sink.close()).await;
        sent
    };
    let (mut tally, sent) = futures_util::join!(reader, writer);
    tally.insert("sent".into(), sent);
    tally
}

/// A GET of the agent download that reads the status line and never the body.
async fn download(addr: SocketAddr, from: Ipv4Addr, deadline: Instant) -> String {
    let mut stream = match tcp_from(addr, from, true).await {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let request = format!(
        "GET /download/tandem-agent HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: tandem-bench\r\n\r\n"
    );
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return format!("request not sent: {:?}", e.kind());
    }
    let mut buf = [0u8; 256];
    let status = match timeout(REPLY_WAIT, stream.read(&mut buf)).await {
        Err(_) => return "no answer in 5 s".into(),
        Ok(Ok(0)) | Ok(Err(_)) => return "closed before answering".into(),
        Ok(Ok(n)) => status_of(&buf[..n]).map_or("?".into(), |c| c.to_string()),
    };
    tokio::time::sleep_until(deadline).await;
    // Without reading: a reset from the server shows as the socket's pending error.
    match stream.take_error() {
        Ok(Some(_)) => format!("answered {status}, then reset by the server"),
        _ => format!("answered {status}, body unread at the end"),
    }
}
