//! `tandem-agent`: shares a customer's screen in a Tandem support session.
//!
//! It joins as the customer (by link or session number), attaches its agent connection
//! with the one-time token the server gives the customer, asks the customer's consent in
//! the terminal before anything is captured (C1), then captures, encodes once, and streams
//! to every viewer over WebRTC (R6).

mod consent;
mod input;
mod peers;
mod pipeline;
mod rate;
mod signal;
mod tunnel;

use std::collections::HashMap;
use std::net::{IpAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tandem_capture::Source;
use tandem_protocol::{
    ClientKind, ClientMessage, ParticipantId, ServerMessage, SessionNumber, ShareId, ShareSource,
    ShareStopReason,
};

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
async fn share(
    base: &str,
    customer: Option<Signal>,
    token: String,
    window: Option<String>,
    display: Option<String>,
) -> anyhow::Result<()> {
    let ws_url = ws_url(base);
    let source = match &window {
        None => Source::Desktop,
        Some(title) => {
            let found = tandem_capture::windows(display.as_deref())?
                .into_iter()
                .find(|w| w.title.contains(title.as_str()))
                .with_context(|| format!("no open window has {title:?} in its title"))?;
            Source::Window(found.id)
        }
    };

    // The agent's connection, attached to the customer with the one-time token.
    let mut agent = Signal::connect(&ws_url, ClientKind::Agent).await?;
    agent.send(ClientMessage::AttachAgent { token });
    let mut names: HashMap<ParticipantId, String> = HashMap::new();
    let (me, rep, my_customer, active) = loop {
        match agent.recv().await? {
            ServerMessage::Joined(snapshot) => {
                names.extend(snapshot.participants.iter().map(|p| (p.id, p.name.clone())));
                let my_customer = snapshot
                    .participants
                    .iter()
                    .find(|p| p.id == snapshot.you)
                    .and_then(|p| p.customer);
                let rep = snapshot
                    .participants
                    .iter()
                    .find(|p| p.role == tandem_protocol::Role::PrimaryRep)
                    .map(|p| p.name.clone())
                    .unwrap_or_else(|| "the support rep".into());
                eprintln!("Connected to support session {}.", snapshot.number);
                let active = my_customer.is_some() && snapshot.active_customer == my_customer;
                break (snapshot.you, rep, my_customer, active);
            }
            ServerMessage::Error { message, .. } => bail!("{message}"),
            _ => {}
        }
    };

    let what = match &window {
        None => "your whole screen".to_owned(),
        Some(title) => format!("the window \"{title}\""),
    };
    let runtime = webrtc::runtime::default_runtime().context("no async runtime for WebRTC")?;
    let local_ip = local_ip_towards(base);
    let input = Arc::new(Input::default());
    let mut peers = Peers::new(
        runtime,
        &agent.ice_servers,
        local_ip,
        agent.tx.clone(),
        Arc::clone(&input),
    )
    .await;
    let mut pipeline: Option<Pipeline> = None;
    let mut my_share: Option<ShareId> = None;

    let mut terminal = consent::Terminal::start();
    // Only the customer being helped shares (R5): the others wait their turn.
    let mut ask = active;
    if !active {
        eprintln!("{rep} is helping another customer now. You will be asked when it is your turn.");
    }
    // A rep waiting for the customer's answer about control (C1).
    let mut control_asked: Option<String> = None;
    let mut status = tokio::time::interval(Duration::from_secs(2));
    // The encoder's rate follows the viewers' paths this often.
    let mut pace = tokio::time::interval(Duration::from_millis(250));
    let mut last_frames = 0u64;
    let mut last_bytes = 0u64;
    loop {
        if ask {
            ask = false;
            if terminal
                .ask(&format!("{rep} asks to see {what}. Share it?"))
                .await
            {
                match Pipeline::start(display.clone(), source) {
                    Ok(p) => {
                        pipeline = Some(p);
                        let source = match &window {
                            None => ShareSource::Desktop,
                            Some(title) => ShareSource::Window {
                                title: title.clone(),
                            },
                        };
                        peers::trace("consent given, capture started");
                        agent.send(ClientMessage::StartShare { source });
                        eprintln!("Sharing {what}. Press Enter to stop sharing, Ctrl-C to leave.");
                    }
                    Err(e) => eprintln!("Your screen could not be captured: {e:#}"),
                }
            } else {
                agent.send(ClientMessage::DeclineShare);
                eprintln!("Nothing is shared. The support rep can ask again.");
            }
        }
        if let Some(name) = control_asked.take() {
            let allowed = terminal
                .ask(&format!(
                    "{name} asks to control your mouse and keyboard. Allow it?"
                ))
                .await;
            let granted = allowed
                && match input.open(display.clone(), source) {
                    Ok(()) => true,
                    Err(e) => {
                        eprintln!("{e:#}");
                        false
                    }
                };
            agent.send(ClientMessage::ControlConsent { granted });
            if !granted {
                eprintln!("{name} cannot control your computer.");
            }
        }
        let sharing = pipeline.is_some();
        let ended = async {
            match &mut pipeline {
                Some(p) => {
                    let _ = p.ended.changed().await;
                    p.ended.borrow().clone()
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            line = terminal.line() => {
                if line.trim().eq_ignore_ascii_case("r") {
                    // C1: the customer takes control back at any moment; events stop here
                    // at once, before the server has even heard of it.
                    if input.holder().is_some() {
                        input.set_holder(None);
                        agent.send(ClientMessage::RevokeControl);
                        eprintln!("You took back control. Nobody else can use your mouse and keyboard now.");
                    }
                } else if sharing {
                    // C1: the customer stops sharing at any moment.
                    if let Some(share) = my_share.take() {
                        agent.send(ClientMessage::StopShare { share });
                    }
                    if let Some(p) = pipeline.take() { p.stop(); }
                    peers.close_all().await;
                    // Nobody controls what nobody can see.
                    if input.holder().is_some() {
                        input.set_holder(None);
                        agent.send(ClientMessage::RevokeControl);
                    }
                    eprintln!("You stopped sharing. Nothing is captured now.");
                }
            }
            message = agent.recv() => {
                let message = message?;
                match message {
                    ServerMessage::ShareStarted { share } if share.owner == me => my_share = Some(share.share),
                    ServerMessage::ViewerJoined { share, viewer } if Some(share) == my_share => {
                        peers::trace(&format!("viewer {viewer}: joined"));
                        if let Some(p) = &pipeline {
                            let name = names.get(&viewer).cloned().unwrap_or_else(|| format!("viewer {viewer}"));
                            if let Err(e) = peers.add(viewer, name, share, &p.frames, p.controls.clone()).await {
                                eprintln!("A viewer could not connect: {e:#}");
                            }
                        }
                    }
                    ServerMessage::ViewerLeft { viewer, .. } => peers.remove(viewer).await,
                    ServerMessage::Answer { from, sdp, .. } => {
                        if let Err(e) = peers.answer(from, sdp).await {
                            eprintln!("A viewer's answer was unusable: {e:#}");
                        }
                    }
                    ServerMessage::IceCandidate { from, candidate, .. } => {
                        if let Err(e) = peers.candidate(from, candidate).await {
                            eprintln!("A viewer's network address was unusable: {e:#}");
                        }
                    }
                    ServerMessage::ShareStopped { share, reason } if Some(share) == my_share => {
                        my_share = None;
                        if let Some(p) = pipeline.take() { p.stop(); }
                        peers.close_all().await;
                        let why = match reason {
                            ShareStopReason::SwitchedCustomer => "the support rep turned to another customer",
                            ShareStopReason::StoppedByOwner => "you stopped it",
                            ShareStopReason::Replaced => "a new share replaced it",
                            ShareStopReason::OwnerLeft => "this agent left the session",
                        };
                        eprintln!("Sharing stopped: {why}. Nothing is captured now.");
                    }
                    ServerMessage::ActiveCustomer { participant } => {
                        if participant.is_some() && participant == my_customer {
                            if pipeline.is_none() {
                                eprintln!("It is your turn: {rep} is helping you now.");
                                ask = true;
                            }
                        } else if pipeline.is_some() && my_share.is_none() {
                            // Captured but never shared: stop at once.
                            if let Some(p) = pipeline.take() { p.stop(); }
                        }
                    }
                    ServerMessage::Error { message, request: Some(request), .. } if request == "start_share" && pipeline.is_some() && my_share.is_none() => {
                        // The share was refused (not this customer's turn): capture nothing.
                        if let Some(p) = pipeline.take() { p.stop(); }
                        eprintln!("Sharing was refused: {message} Nothing is captured now.");
                    }
                    ServerMessage::ShareRequested { name, .. } if pipeline.is_none() => {
                        eprintln!("{name} asks you to share again.");
                        ask = true;
                    }
                    ServerMessage::ControlRequested { name, .. } => control_asked = Some(name),
                    ServerMessage::ControlChanged { control, .. } => {
                        let holder = control.filter(|c| c.agent == me).map(|c| c.holder);
                        let before = input.holder();
                        input.set_holder(holder);
                        match holder {
                            Some(h) if before != Some(h) => {
                                let name = names.get(&h).map_or("The support rep", String::as_str);
                                eprintln!("{name} now controls your mouse and keyboard. Type r and Enter to take control back.");
                            }
                            None if before.is_some() => eprintln!("Nobody controls your computer now."),
                            _ => {}
                        }
                    }
                    ServerMessage::ParticipantJoined { participant } | ServerMessage::ParticipantUpdated { participant } => {
                        names.insert(participant.id, participant.name);
                    }
                    ServerMessage::SessionEnded { message, .. } => {
                        eprintln!("{message}");
                        break;
                    }
                    _ => {}
                }
            }
            reason = ended => {
                if let Some(reason) = reason {
                    eprintln!("Sharing stopped: {reason}");
                }
                if let Some(share) = my_share.take() {
                    agent.send(ClientMessage::StopShare { share });
                }
                pipeline = None;
                peers.close_all().await;
            }
            Some(event) = peers.next_event() => {
                if let Some(news) = peers.handle(event).await {
                    eprintln!("{news}");
                }
            }
            _ = pace.tick() => {
                if let Some(p) = &pipeline {
                    let target = peers.rate_target();
                    p.controls.target_bps.store(target.bitrate_bps, Ordering::Relaxed);
                    p.controls.max_fps.store(target.max_fps, Ordering::Relaxed);
                }
            }
            _ = status.tick() => {
                if let Some(p) = &pipeline {
                    let frames = p.controls.frames.load(Ordering::Relaxed);
                    let bytes = p.controls.bytes.load(Ordering::Relaxed);
                    let control = match input.holder() {
                        Some(h) => format!(" · controlled by {}", names.get(&h).map_or("the rep", String::as_str)),
                        None => String::new(),
                    };
                    let injected = input.stats().map_or(0, |s| s.injected.load(Ordering::Relaxed));
                    // Each viewer as its connection really is: never counted as watching
                    // while it is still connecting or has failed.
                    let links = peers.links();
                    let watching = links.iter().filter(|(_, l)| matches!(l, peers::Link::Connected(_))).count();
                    let viewers = if links.is_empty() {
                        "nobody watching".to_owned()
                    } else {
                        let each: Vec<String> = links
                            .iter()
                            .map(|(name, link)| match link {
                                peers::Link::Connecting => format!("{name} connecting"),
                                peers::Link::Connected(Some(path)) if path == "relay" => format!("{name} watching through the relay"),
                                peers::Link::Connected(_) => format!("{name} watching"),
                                peers::Link::Reconnecting => format!("{name} reconnecting"),
                                peers::Link::Failed(_) => format!("{name} not connected"),
                            })
                            .collect();
                        format!("{watching} watching ({})", each.join(", "))
                    };
                    eprintln!(
                        "Sharing {what} · {viewers} · {:.0} fps · {:.2} Mbit/s of {:.2} · {} keyframe requests{control} · input {injected} injected, {} dropped",
                        (frames - last_frames) as f64 / 2.0,
                        (bytes - last_bytes) as f64 * 8.0 / 2.0 / 1_000_000.0,
                        p.controls.target_bps.load(Ordering::Relaxed) as f64 / 1_000_000.0,
                        p.controls.keyframe_requests.load(Ordering::Relaxed),
                        input.dropped(),
                    );
                    last_frames = frames;
                    last_bytes = bytes;
                }
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("Stopping.");
                if let Some(share) = my_share.take() {
                    agent.send(ClientMessage::StopShare { share });
                }
                agent.send(ClientMessage::Leave);
                if let Some(customer) = &customer {
                    customer.send(ClientMessage::Leave);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                break;
            }
        }
    }
    if let Some(p) = pipeline {
        p.stop();
    }
    peers.close_all().await;
    Ok(())
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
