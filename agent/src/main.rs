//! `tandem-agent`: shares a customer's screen in a Tandem support session.
//!
//! It joins as the customer (by link or session number), attaches its agent connection
//! with the one-time token the server gives the customer, asks the customer's consent in
//! the terminal before anything is captured (C1), then captures, encodes once, and streams
//! to every viewer over WebRTC (R6).

mod backend;
mod consent;
mod flow;
mod input;
mod measure;
mod peers;
mod pipeline;
mod rate;
mod signal;
mod tunnel;

use std::collections::VecDeque;
use std::net::{IpAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tandem_capture::Source;
use tandem_protocol::{ClientKind, ClientMessage, ServerMessage, SessionNumber};

use crate::flow::Effect;
use crate::input::Input;
use crate::peers::Peers;
use crate::pipeline::Pipeline;
use crate::signal::Signal;

#[derive(Debug, Parser)]
#[command(
    name = "tandem-agent",
    version,
    about = "Share your screen in a Tandem support session"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Join a session by its link or number and share your screen (after you agree).
    Join {
        /// The join link your support rep sent, or the nine-digit session number.
        session: String,
        /// The Tandem server (needed with a session number; a link carries it).
        #[arg(long)]
        server: Option<String>,
        /// Your name, as the support rep will see it.
        #[arg(long)]
        name: String,
        /// Share only the window whose title contains this text.
        #[arg(long)]
        window: Option<String>,
        /// The X display to capture [default: $DISPLAY].
        #[arg(long)]
        display: Option<String>,
    },
    /// Attach to the customer whose join page shows this command, and share after you agree.
    Attach {
        /// The Tandem server, as shown on the join page.
        #[arg(long)]
        server: String,
        /// The one-time token shown on the join page.
        #[arg(long)]
        token: String,
        #[arg(long)]
        window: Option<String>,
        #[arg(long)]
        display: Option<String>,
    },
    /// For the bench: time this agent's capture, convert and encode of the whole desktop
    /// at 30 fps, and print the figures as JSON.
    #[command(hide = true)]
    MeasureStages {
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        #[arg(long)]
        display: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Join {
            session,
            server,
            name,
            window,
            display,
        } => join(session, server, name, window, display).await,
        Command::Attach {
            server,
            token,
            window,
            display,
        } => {
            let base = server.trim_end_matches('/').to_owned();
            share(&base, None, token, window, display).await
        }
        Command::MeasureStages { seconds, display } => {
            tokio::task::spawn_blocking(move || measure::run(display, seconds))
                .await
                .map_err(anyhow::Error::from)
                .and_then(|r| r)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tandem-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

enum Way {
    Link(String),
    Number(SessionNumber),
}

fn parse_session(session: &str, server: Option<String>) -> anyhow::Result<(String, Way)> {
    if let Some((base, secret)) = session.split_once("/j/") {
        let base = server.unwrap_or_else(|| base.to_owned());
        return Ok((base, Way::Link(secret.trim_end_matches('/').to_owned())));
    }
    let number: SessionNumber = session.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let server = server.context("with a session number, say which server: --server https://…")?;
    Ok((server, Way::Number(number)))
}

async fn join(
    session: String,
    server: Option<String>,
    name: String,
    window: Option<String>,
    display: Option<String>,
) -> anyhow::Result<()> {
    let (base, way) = parse_session(&session, server)?;
    let base = base.trim_end_matches('/').to_owned();
    let ws_url = ws_url(&base);
    // The customer's own connection.
    let mut customer = Signal::connect(&ws_url, ClientKind::Customer).await?;
    customer.send(match way {
        Way::Link(secret) => ClientMessage::JoinByLink {
            secret,
            name: name.clone(),
        },
        Way::Number(number) => ClientMessage::JoinByNumber {
            number,
            name: name.clone(),
        },
    });
    let token = loop {
        match customer.recv().await? {
            ServerMessage::Waiting { .. } => {
                eprintln!("Waiting for the support rep to let you in…");
            }
            ServerMessage::AgentToken { token } => break token,
            ServerMessage::Error { message, .. } | ServerMessage::Denied { message } => {
                bail!("{message}")
            }
            ServerMessage::SessionEnded { message, .. } => bail!("{message}"),
            _ => {}
        }
    };
    share(&base, Some(customer), token, window, display).await
}

fn ws_url(base: &str) -> String {
    format!(
        "{}/ws",
        base.replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1)
    )
}

/// Attach the agent with the token, ask for consent, and share until told to stop.
/// `customer` is the customer's own connection when this agent joined for them.
///
/// This is the driver of [`flow::Agent`]: it turns the terminal, the server, capture and
/// the viewers' connections into inputs, and carries out the effects.
async fn share(
    base: &str,
    customer: Option<Signal>,
    token: String,
    window: Option<String>,
    display: Option<String>,
) -> anyhow::Result<()> {
    let ws_url = ws_url(base);
    let backend = backend::choose(display)?;
    let source = match &window {
        None => Source::Desktop,
        Some(title) => {
            let found = backend
                .windows()?
                .into_iter()
                .find(|w| w.title.contains(title.as_str()))
                .with_context(|| format!("no open window has {title:?} in its title"))?;
            Source::Window(found.id)
        }
    };

    // The agent's connection, attached to the customer with the one-time token.
    let mut agent = Signal::connect(&ws_url, ClientKind::Agent).await?;
    agent.send(ClientMessage::AttachAgent { token });
    eprintln!("This computer: {}.", backend.describe());
    let mut flow = flow::Agent::new(window.as_deref());
    // Up to the join: the TURN credentials come with it, and the viewers' connections need
    // them from the start.
    let mut backlog = VecDeque::new();
    loop {
        let message = agent.recv().await?;
        let done = matches!(
            message,
            ServerMessage::Joined(_) | ServerMessage::Error { .. }
        );
        backlog.push_back(flow::Input::Server(message));
        if done {
            break;
        }
    }

    let runtime = webrtc::runtime::default_runtime().context("no async runtime for WebRTC")?;
    let input = Arc::new(Input::default());
    let mut peers = Peers::new(
        runtime,
        &agent.ice_servers,
        local_ip_towards(base),
        agent.tx.clone(),
        Arc::clone(&input),
    )
    .await;
    let mut pipeline: Option<Pipeline> = None;
    let mut terminal = consent::Terminal::start();
    let mut status = tokio::time::interval(Duration::from_secs(2));
    // The encoder's rate follows the viewers' paths this often.
    let mut pace = tokio::time::interval(Duration::from_millis(250));
    let mut last = (0u64, 0u64);
    loop {
        let mut inputs = std::mem::take(&mut backlog);
        if inputs.is_empty() {
            let ended = async {
                match &mut pipeline {
                    Some(p) => {
                        let _ = p.ended.changed().await;
                        p.ended.borrow().clone()
                    }
                    None => std::future::pending().await,
                }
            };
            let next = tokio::select! {
                line = terminal.line() => match line {
                    None => flow::Input::Answer(false),
                    Some(line) if flow.asking() => flow::Input::Answer(consent::yes(&line)),
                    Some(line) if line.trim().eq_ignore_ascii_case("r") => flow::Input::TakeBackControl,
                    Some(_) => flow::Input::StopSharing,
                },
                message = agent.recv() => flow::Input::Server(message?),
                reason = ended => flow::Input::CaptureEnded(reason),
                Some(event) = peers.next_event() => {
                    if let Some(news) = peers.handle(event).await {
                        eprintln!("{news}");
                    }
                    continue;
                }
                _ = pace.tick() => {
                    if let Some(p) = &pipeline {
                        let target = peers.rate_target();
                        p.controls.target_bps.store(target.bitrate_bps, Ordering::Relaxed);
                        p.controls.max_fps.store(target.max_fps, Ordering::Relaxed);
                    }
                    continue;
                }
                _ = status.tick() => {
                    // Not over a question the customer is reading.
                    if let Some(p) = pipeline.as_ref().filter(|_| !flow.asking()) {
                        last = report(&flow, p, &peers, &input, last);
                    }
                    continue;
                }
                _ = tokio::signal::ctrl_c() => flow::Input::Leave,
                _ = console_closed() => flow::Input::Leave,
            };
            inputs.push_back(next);
        }
        while let Some(next) = inputs.pop_front() {
            for effect in flow.handle(next) {
                match effect {
                    Effect::Send(message) => agent.send(message),
                    Effect::LeaveAsCustomer => {
                        if let Some(customer) = &customer {
                            customer.send(ClientMessage::Leave);
                        }
                    }
                    Effect::Ask { text, .. } => {
                        if let Some(answer) = terminal.ask(&text) {
                            inputs.push_back(flow::Input::Answer(answer));
                        }
                    }
                    Effect::StartCapture => {
                        let started = Pipeline::start(Arc::clone(&backend), source)
                            .map(|p| pipeline = Some(p))
                            .map_err(|e| format!("{e:#}"));
                        if started.is_ok() {
                            peers::trace("consent given, capture started");
                        }
                        inputs.push_back(flow::Input::CaptureStarted(started));
                    }
                    Effect::StopCapture => {
                        if let Some(p) = pipeline.take() {
                            p.stop();
                        }
                        peers.close_all().await;
                    }
                    Effect::AddViewer {
                        viewer,
                        name,
                        share,
                    } => {
                        peers::trace(&format!("viewer {viewer}: joined"));
                        if let Some(p) = &pipeline
                            && let Err(e) = peers
                                .add(viewer, name, share, &p.frames, p.controls.clone())
                                .await
                        {
                            eprintln!("A viewer could not connect: {e:#}");
                        }
                    }
                    Effect::RemoveViewer(viewer) => peers.remove(viewer).await,
                    Effect::Signal(ServerMessage::Answer { from, sdp, .. }) => {
                        if let Err(e) = peers.answer(from, sdp).await {
                            eprintln!("A viewer's answer was unusable: {e:#}");
                        }
                    }
                    Effect::Signal(ServerMessage::IceCandidate {
                        from, candidate, ..
                    }) => {
                        if let Err(e) = peers.candidate(from, candidate).await {
                            eprintln!("A viewer's network address was unusable: {e:#}");
                        }
                    }
                    Effect::Signal(_) => {}
                    Effect::OpenControl => {
                        let opened = input
                            .open(Arc::clone(&backend), source)
                            .map_err(|e| format!("{e:#}"));
                        inputs.push_back(flow::Input::ControlOpened(opened));
                    }
                    Effect::SetHolder(holder) => input.set_holder(holder),
                    Effect::Tell(sentence) => eprintln!("{sentence}"),
                    Effect::End(result) => {
                        // No key or button stays held down after the agent is gone.
                        input.close();
                        if let Some(p) = pipeline.take() {
                            p.stop();
                        }
                        peers.close_all().await;
                        // Let the goodbyes leave before the connections drop.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        return result.map_err(|message| anyhow::anyhow!(message));
                    }
                }
            }
        }
    }
}

/// The customer closed the console window the agent runs in (Windows): leave properly,
/// as Ctrl-C does. Never on other systems (their terminals send SIGHUP, which ends it).
async fn console_closed() {
    #[cfg(windows)]
    if let Ok(mut close) = tokio::signal::windows::ctrl_close() {
        close.recv().await;
        return;
    }
    std::future::pending::<()>().await;
}

/// The status line while sharing, every two seconds: who watches and how, frames, rate,
/// control and input. Returns the frame and byte counters for the next report.
fn report(
    flow: &flow::Agent,
    p: &Pipeline,
    peers: &Peers,
    input: &Input,
    (last_frames, last_bytes): (u64, u64),
) -> (u64, u64) {
    let frames = p.controls.frames.load(Ordering::Relaxed);
    let bytes = p.controls.bytes.load(Ordering::Relaxed);
    let control = match flow.holder() {
        Some(h) => format!(" · controlled by {}", flow.name_of(h).unwrap_or("the rep")),
        None => String::new(),
    };
    let injected = input
        .stats()
        .map_or(0, |s| s.injected.load(Ordering::Relaxed));
    // Each viewer as its connection really is: never counted as watching while it is
    // still connecting or has failed.
    let links = peers.links();
    let watching = links
        .iter()
        .filter(|(_, l)| matches!(l, peers::Link::Connected(_)))
        .count();
    let viewers = if links.is_empty() {
        "nobody watching".to_owned()
    } else {
        let each: Vec<String> = links
            .iter()
            .map(|(name, link)| match link {
                peers::Link::Connecting => format!("{name} connecting"),
                peers::Link::Connected(Some(path)) if path == "relay" => {
                    format!("{name} watching through the relay")
                }
                peers::Link::Connected(_) => format!("{name} watching"),
                peers::Link::Reconnecting => format!("{name} reconnecting"),
                peers::Link::Failed(_) => format!("{name} not connected"),
            })
            .collect();
        format!("{watching} watching ({})", each.join(", "))
    };
    eprintln!(
        "Sharing {} · {viewers} · {:.0} fps · {:.2} Mbit/s of {:.2} · {} keyframe requests{control} · input {injected} injected, {} dropped",
        flow.what(),
        (frames - last_frames) as f64 / 2.0,
        (bytes - last_bytes) as f64 * 8.0 / 2.0 / 1_000_000.0,
        p.controls.target_bps.load(Ordering::Relaxed) as f64 / 1_000_000.0,
        p.controls.keyframe_requests.load(Ordering::Relaxed),
        input.dropped(),
    );
    (frames, bytes)
}

/// The address of the interface that reaches the server: the one viewers can reach us on.
fn local_ip_towards(base: &str) -> IpAddr {
    let host = base
        .split("://")
        .nth(1)
        .unwrap_or(base)
        .split('/')
        .next()
        .unwrap_or("127.0.0.1");
    let target = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect(&target).map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}
