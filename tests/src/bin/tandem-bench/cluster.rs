//! Several servers on one site (docs/self-hosting.md, "Several servers"): three
//! `tandem-signaling` processes on one PostgreSQL and one Redis (`--redis`: the cap on
//! connections per address held across them, one Redis round trip per connection
//! opened), A serving and B and C forwarding to it.
//! Measured: sessions spread over the three (rep, console and customer each on another),
//! the serving server's memory, idle connections held across the three, a customer's join
//! and a chat line's trip on one server against across servers (through a forwarding
//! one), customers joining every session at once (how long each join takes, and in how
//! many PostgreSQL transactions the serving server writes them: the changes that come in
//! during one write go together in the next), and the takeover after the serving one is
//! SIGKILLed (until a survivor serves, and until a customer who was on a survivor is back
//! in the session).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tandem_tests::{ServerProcess, server_log};
use tokio_tungstenite::tungstenite::Message;

use crate::report::{Figure, Report};
use crate::signaling::{
    Ws, connect_from, hello, log_in, recv_type, send, start_load, start_session,
};

#[path = "../../../../signaling/tests/common/postgres.rs"]
mod postgres;
#[path = "../../../../signaling/tests/common/redis.rs"]
mod redis;

/// How long a server may take to become ready, or a site to be served again.
const WITHIN: Duration = Duration::from_secs(60);

struct Sizes {
    sessions: u32,
    idle_per_server: u32,
    joins: u32,
    lines: u32,
    /// Customers joining each session in the burst.
    burst_per_session: u32,
}

#[derive(Debug, Default)]
struct Figures {
    sessions: u32,
    serving_rss_before_mib: f64,
    serving_rss_mib: f64,
    held: u32,
    join_one_ms: Vec<f64>,
    join_across_ms: Vec<f64>,
    line_one_ms: Vec<f64>,
    line_across_ms: Vec<f64>,
    burst_join_ms: Vec<f64>,
    burst_all_ms: f64,
    burst_writes: f64,
    burst_joins: u32,
    served_again_ms: f64,
    back_ms: f64,
}

pub async fn section(exe: &Path, smoke: bool, report: &mut Report) {
    crate::step("several servers on one site");
    let sizes = if smoke {
        Sizes {
            sessions: 3,
            idle_per_server: 50,
            joins: 5,
            lines: 10,
            burst_per_session: 1,
        }
    } else {
        Sizes {
            sessions: 30,
            idle_per_server: 1000,
            joins: 50,
            lines: 60,
            burst_per_session: 4,
        }
    };
    let per_session = sizes.burst_per_session;
    match measure(exe, &sizes).await {
        Ok(f) => {
            report.add(
                "cluster: live sessions, each with its rep, customer and their servers all different",
                "sessions",
                Figure::Value(f64::from(f.sessions)),
            );
            report
                .add(
                    "cluster: the serving server's memory with them and the idle connections",
                    "MiB",
                    Figure::Value(f.serving_rss_mib),
                )
                .peer("before", Figure::Value(f.serving_rss_before_mib));
            report.add(
                "cluster: idle WebSocket connections held across three servers",
                "connections",
                Figure::Value(f64::from(f.held)),
            );
            report
                .add(
                    "cluster: a customer's join (connect to joined) through a forwarding server",
                    "ms",
                    Figure::of(&f.join_across_ms),
                )
                .peer("on the serving one", Figure::of(&f.join_one_ms));
            report
                .add(
                    "cluster: a chat line, customer on a forwarding server to rep on the serving one",
                    "ms",
                    Figure::of(&f.line_across_ms),
                )
                .peer("both on the serving one", Figure::of(&f.line_one_ms));
            report.add(
                format!("cluster: {per_session} customers join every session, all at once, on the serving server: each join"),
                "ms",
                Figure::of(&f.burst_join_ms),
            );
            report.add(
                "cluster: … until the last of them is in",
                "ms",
                Figure::Value(f.burst_all_ms),
            );
            report
                .add(
                    "cluster: … PostgreSQL transactions that wrote the changes of those joins (changes that come in during a write go together in the next)",
                    "transactions",
                    Figure::Value(f.burst_writes),
                )
                .peer("joins", Figure::Value(f64::from(f.burst_joins)));
            report.add(
                "cluster: SIGKILL of the serving server until a survivor serves",
                "ms",
                Figure::Value(f.served_again_ms),
            );
            report
                .add(
                    "cluster: SIGKILL of the serving server until a customer is back in the session",
                    "ms",
                    Figure::Value(f.back_ms),
                )
                .target("≤ 15,000");
        }
        Err(e) => {
            report.add("cluster", "—", Figure::Missing(format!("{e:#}")));
        }
    }
}

/// `/readyz` of `base`: its status and text.
async fn readyz(http: &reqwest::Client, base: &str) -> Option<(u16, String)> {
    let response = http.get(format!("{base}/readyz")).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.unwrap_or_default()))
}

/// Wait until `/readyz` of `base` says `wanted` (a prefix); when it did.
async fn until_ready(http: &reqwest::Client, base: &str, wanted: &str) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + WITHIN;
    loop {
        if let Some((200, text)) = readyz(http, base).await
            && text.starts_with(wanted)
        {
            return Ok(Instant::now());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{base} did not say {wanted:?} in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn addr_of(base: &str) -> anyhow::Result<SocketAddr> {
    Ok(base.trim_start_matches("http://").parse()?)
}

/// The n-th client's own loopback address (the join limits hold per address).
fn source(n: u32) -> Ipv4Addr {
    Ipv4Addr::new(127, 1, (n >> 8) as u8, (n & 0xff) as u8 | 1)
}

/// Read until a chat line with `text`.
async fn until_line(ws: &mut Ws, text: &str) -> anyhow::Result<()> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .context("no chat line in time")?
            .context("closed")??;
        if let Message::Text(raw) = message {
            let v: Value = serde_json::from_str(&raw)?;
            if v["type"] == "chat" && v["text"] == text {
                return Ok(());
            }
        }
    }
}

/// A customer joins by link at `addr`: the connection, its id and resume token, and how
/// long from connecting to `joined`.
async fn join(addr: SocketAddr, from: u32, secret: &str) -> anyhow::Result<(Ws, String, Duration)> {
    let t0 = Instant::now();
    let mut ws = connect_from(addr, source(from), None).await?;
    hello(&mut ws, "customer").await?;
    send(
        &mut ws,
        json!({"type": "join_by_link", "secret": secret, "name": format!("Customer {from}")}),
    )
    .await?;
    let token = recv_type(&mut ws, "resume_token").await?["token"]
        .as_str()
        .context("token")?
        .to_owned();
    recv_type(&mut ws, "joined").await?;
    Ok((ws, token, t0.elapsed()))
}

async fn measure(exe: &Path, sizes: &Sizes) -> anyhow::Result<Figures> {
    let _ = rlimit::increase_nofile_limit(u64::from(sizes.idle_per_server) * 6 + 4096);
    let db = tokio::task::spawn_blocking(postgres::Postgres::start)
        .await?
        .map_err(|e| anyhow::anyhow!("could not start PostgreSQL: {e}"))?;
    let log = server_log("bench-cluster")?;
    let dirs = [
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    ];
    let ports = [
        tandem_tests::SmtpSink::free_port()?,
        tandem_tests::SmtpSink::free_port()?,
        tandem_tests::SmtpSink::free_port()?,
    ];
    let redis = tokio::task::spawn_blocking(redis::Redis::start)
        .await?
        .map_err(|e| anyhow::anyhow!("could not start Redis: {e}"))?;
    let bases = ports.map(|port| format!("http://127.0.0.1:{port}"));
    let postgres = ["--postgres", db.url.as_str(), "--redis", redis.url.as_str()];
    let http = reqwest::Client::new();
    let serving = [
        "--postgres",
        db.url.as_str(),
        "--redis",
        redis.url.as_str(),
        "--metrics-token",
        METRICS_TOKEN,
    ];
    let mut a = ServerProcess::start_with(dirs[0].path(), ports[0], &log, &serving).await?;
    until_ready(&http, &bases[0], "ready\n").await?;
    let _b = ServerProcess::start_with(dirs[1].path(), ports[1], &log, &postgres).await?;
    let _c = ServerProcess::start_with(dirs[2].path(), ports[2], &log, &postgres).await?;
    for base in &bases[1..] {
        until_ready(&http, base, "ready: standby, forwarding").await?;
    }
    let [addr_a, addr_b, _] = [
        addr_of(&bases[0])?,
        addr_of(&bases[1])?,
        addr_of(&bases[2])?,
    ];

    tandem_tests::create_rep_at(&http, &bases[0], "rita", "Rita Rep", "rita-password").await?;
    tandem_tests::admin_call_at(
        &http,
        &bases[0],
        "PUT",
        "/api/admin/settings",
        json!({"max_customers_per_rep": 50, "allow_multiple_sessions": false}),
    )
    .await?;
    // The login through one forwarding server, the start through the other.
    let cookie = log_in(&http, &bases[1], "rita", "rita-password").await?;
    let (number, secret) = start_session(&http, &bases[2], &cookie).await?;
    let mut page = connect_from(addr_a, source(0xfff0), Some(&cookie)).await?;
    hello(&mut page, "console").await?;
    send(&mut page, json!({"type": "open_session", "number": number})).await?;
    recv_type(&mut page, "joined").await?;

    // Sessions spread over the servers: each rep logs in through one server, starts the
    // session through the next, and keeps the console on the first; the customer joins
    // through the third.
    let mut figures = Figures {
        serving_rss_before_mib: a.pid().map_or(0.0, rss_mib_of),
        ..Figures::default()
    };
    let addrs = [addr_a, addr_b, addr_of(&bases[2])?];
    let mut kept = Vec::new();
    let mut secrets = Vec::new();
    for i in 0..sizes.sessions {
        let at = |k: u32| ((i + k) % 3) as usize;
        let name = format!("rep{i}");
        tandem_tests::create_rep_at(&http, &bases[0], &name, &format!("Rep {i}"), "rep-password")
            .await?;
        let from = source(3000 + i);
        let rep = reqwest::Client::builder()
            .local_address(std::net::IpAddr::V4(from))
            .build()?;
        let cookie = log_in(&rep, &bases[at(0)], &name, "rep-password").await?;
        let (number, secret) = start_session(&rep, &bases[at(1)], &cookie).await?;
        let mut console = connect_from(addrs[at(0)], from, Some(&cookie)).await?;
        hello(&mut console, "console").await?;
        send(
            &mut console,
            json!({"type": "open_session", "number": number}),
        )
        .await?;
        recv_type(&mut console, "joined").await?;
        let (customer, _, _) = join(addrs[at(2)], 4000 + i, &secret).await?;
        recv_type(&mut console, "participant_joined").await?;
        figures.sessions += 1;
        kept.push((console, customer));
        secrets.push(secret);
    }

    // Idle connections on every server, each from a load client of its own.
    let mut loads = Vec::new();
    for addr in addrs {
        let (client, held) = start_load(exe, addr, sizes.idle_per_server).await?;
        figures.held += held;
        loads.push(client);
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    figures.serving_rss_mib = a.pid().map_or(0.0, rss_mib_of);

    // Joins, alternately on the serving server and through a forwarding one.
    for i in 0..sizes.joins {
        for (addr, into, offset) in [
            (addr_a, &mut figures.join_one_ms, 0),
            (addr_b, &mut figures.join_across_ms, 1000),
        ] {
            let (mut ws, _, took) = join(addr, i + offset, &secret).await?;
            into.push(took.as_secs_f64() * 1000.0);
            send(&mut ws, json!({"type": "leave"})).await?;
        }
    }

    // A chat line's trip to the rep on A, from a customer on A and from one on B.
    let (mut near, _, _) = join(addr_a, 2000, &secret).await?;
    let (mut far, far_token, _) = join(addr_b, 2001, &secret).await?;
    for i in 0..sizes.lines {
        for (ws, into, from) in [
            (&mut near, &mut figures.line_one_ms, "A"),
            (&mut far, &mut figures.line_across_ms, "B"),
        ] {
            let text = format!("line {i} from {from}");
            let t0 = Instant::now();
            send(ws, json!({"type": "chat", "text": text})).await?;
            until_line(&mut page, &text).await?;
            into.push(t0.elapsed().as_secs_f64() * 1000.0);
            // Within the chat's rate limit (2 lines a second per connection).
            tokio::time::sleep(Duration::from_millis(260)).await;
        }
    }

    // A customer joins every session at once, all on the serving server.
    let writes_before = journal_writes(&http, &bases[0]).await?;
    let t0 = Instant::now();
    let joins = secrets
        .iter()
        .flat_map(|secret| std::iter::repeat_n(secret, sizes.burst_per_session as usize))
        .zip(6000..)
        .map(|(secret, from)| join(addr_a, from, secret));
    let burst = futures_util::future::join_all(joins).await;
    figures.burst_all_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let mut joined = Vec::new();
    for result in burst {
        let (ws, _, took) = result?;
        figures.burst_join_ms.push(took.as_secs_f64() * 1000.0);
        figures.burst_joins += 1;
        joined.push(ws);
    }
    // The last joins' final writes may follow their `joined`: count once it settles.
    let mut writes = journal_writes(&http, &bases[0]).await?;
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = journal_writes(&http, &bases[0]).await?;
        if now == writes {
            break;
        }
        writes = now;
    }
    figures.burst_writes = writes - writes_before;
    drop(joined);

    // The serving server dies; the customer on B comes back as soon as a survivor serves.
    drop(loads);
    let killed = Instant::now();
    a.kill().await?;
    let served = async {
        tokio::select! {
            at = until_ready(&http, &bases[1], "ready\n") => at,
            at = until_ready(&http, &bases[2], "ready\n") => at,
        }
    };
    let back = async {
        let deadline = killed + WITHIN;
        loop {
            let attempt = async {
                let mut ws = connect_from(addr_b, source(2001), None).await?;
                hello(&mut ws, "customer").await?;
                send(&mut ws, json!({"type": "resume", "token": far_token})).await?;
                recv_type(&mut ws, "joined").await?;
                anyhow::Ok(ws)
            };
            match attempt.await {
                Ok(ws) => return anyhow::Ok((Instant::now(), ws)),
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context("the customer never came back"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    };
    let (served, back) = tokio::join!(served, back);
    figures.served_again_ms = (served? - killed).as_secs_f64() * 1000.0;
    figures.back_ms = (back?.0 - killed).as_secs_f64() * 1000.0;
    drop(far);
    drop(near);
    drop(kept);
    Ok(figures)
}

/// The serving server's `/metrics` token.
const METRICS_TOKEN: &str = "bench-cluster-metrics";

/// How many journal writes (transactions) the server at `base` has made so far.
async fn journal_writes(http: &reqwest::Client, base: &str) -> anyhow::Result<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    text.lines()
        .find(|l| {
            l.starts_with("tandem_store_seconds_count{") && l.contains("op=\"live_session_save\"")
        })
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .context("no live_session_save count in /metrics")
}

/// The resident memory of process `pid`, in MiB.
fn rss_mib_of(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}
