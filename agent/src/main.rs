//! `tandem-agent`: shares a customer's screen in a Tandem support session.
//!
//! Double-clicked, it reads the session from the end of its own file (the join page's
//! download carries it, see `launch.rs`) and opens a small window; `join`/`attach` name
//! the session on the command line, and `--cli` talks in the terminal instead of a
//! window. It joins as the customer (by link or session number) or attaches its agent
//! connection with the customer's one-time token, asks the customer's consent before
//! anything is captured or controlled (C1), then captures, encodes once, and streams to
//! every viewer over WebRTC (R6).

mod backend;
mod clipboard;
mod consent;
#[cfg(windows)]
mod console;
mod files;
mod flow;
mod front;
mod input;
mod launch;
mod measure;
mod packets;
mod peers;
mod pipeline;
mod rate;
mod sending;
mod signal;
mod text;
mod tunnel;
mod ui;

use std::collections::VecDeque;
use std::net::{IpAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tandem_capture::Source;
use tandem_protocol::{ClientKind, ClientMessage, ErrorCode, ServerMessage, SessionNumber};

use crate::flow::Effect;
use crate::front::{Did, Failure, Front};
use crate::input::Input;
use crate::peers::Peers;
use crate::pipeline::Pipeline;
use crate::signal::Signal;
use crate::text::{Language, Surface, Text};

#[derive(Debug, Parser)]
#[command(
    name = "tandem-agent",
    version,
    about = "Share your screen in a Tandem support session"
)]
struct Cli {
    /// Talk in this terminal instead of opening a window (for scripts and tests).
    #[arg(long, global = true)]
    cli: bool,
    /// Without a command: attach to the session this download came from (double-click).
    #[command(subcommand)]
    command: Option<Command>,
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

/// How this run reaches its session.
#[derive(Debug)]
enum Start {
    Join {
        session: String,
        server: Option<String>,
        name: String,
    },
    Attach {
        server: String,
        token: String,
        /// The session the token is for, when the launch details say (for the join page
        /// an expired download points back to).
        session: Option<SessionNumber>,
    },
    /// Started without a session (no command, no launch details in the file).
    Nothing,
    /// The launch details at the end of this file are unreadable.
    Broken(String),
}

/// What to share and where, from the command line.
#[derive(Debug, Default)]
struct Target {
    window: Option<String>,
    display: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A double-clicked agent's console goes at once, before the window opens.
    #[cfg(windows)]
    let released_console = !cli.cli
        && !matches!(cli.command, Some(Command::MeasureStages { .. }))
        && console::release_if_own();
    let (start, target) = match cli.command {
        Some(Command::MeasureStages { seconds, display }) => {
            return exit(measure::run(display, seconds));
        }
        Some(Command::Join {
            session,
            server,
            name,
            window,
            display,
        }) => (
            Start::Join {
                session,
                server,
                name,
            },
            Target { window, display },
        ),
        Some(Command::Attach {
            server,
            token,
            window,
            display,
        }) => (
            Start::Attach {
                server,
                token,
                session: None,
            },
            Target { window, display },
        ),
        None => {
            let start = match launch::from_own_file() {
                Ok(Some(launch)) => Start::Attach {
                    server: launch.server,
                    token: launch.token,
                    session: launch.session,
                },
                Ok(None) => Start::Nothing,
                Err(e) => Start::Broken(format!("{e:#}")),
            };
            (start, Target::default())
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return exit(Err(anyhow::anyhow!("no async runtime: {e}"))),
    };
    let input = Arc::new(Input::default());
    if !cli.cli {
        let language = Language::from_os(Surface::Window);
        match ui::Window::open(&language, input.shield()) {
            Ok((window, handle, actions)) => {
                let front = Front::window(language, handle, actions);
                let session = runtime.spawn(run(start, target, front, input));
                if let Err(e) = window.run() {
                    eprintln!("tandem-agent: the window failed: {e}");
                }
                // The window is closed: the session, told so, says goodbye and ends.
                let result = runtime.block_on(async {
                    tokio::time::timeout(Duration::from_secs(5), session).await
                });
                return match result {
                    Ok(Ok(result)) => exit(result),
                    Ok(Err(e)) => exit(Err(e.into())),
                    Err(_) => ExitCode::SUCCESS,
                };
            }
            Err(e) => {
                #[cfg(windows)]
                if released_console {
                    console::regain();
                }
                let language = Language::from_os(Surface::Terminal);
                eprintln!("tandem-agent: no window can open here ({e}); using this terminal.");
                let front = Front::terminal(language);
                return exit(runtime.block_on(run(start, target, front, input)));
            }
        }
    }
    let front = Front::terminal(Language::from_os(Surface::Terminal));
    exit(runtime.block_on(run(start, target, front, input)))
}

fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A sentence of the catalogue in the customer's language; anything else as it
            // came (the server's words, the system's).
            let language = Language::from_os(Surface::Terminal);
            let said = match e.downcast_ref::<Failure>() {
                Some(Failure::Said(text)) => language.say(text),
                Some(Failure::Refused {
                    said: Some(text), ..
                }) => language.say(text),
                _ => format!("{e:#}"),
            };
            eprintln!("tandem-agent: {said}");
            ExitCode::FAILURE
        }
    }
}

/// The session, from joining to the end, shown on `front`. Errors before the session
/// starts are shown there too (and returned, for the exit code).
async fn run(
    start: Start,
    target: Target,
    mut front: Front,
    input: Arc<Input>,
) -> anyhow::Result<()> {
    let result = match start {
        Start::Join {
            session,
            server,
            name,
        } => join(session, server, name, target, &mut front, input).await,
        Start::Attach {
            server,
            token,
            session,
        } => {
            let base = server.trim_end_matches('/').to_owned();
            let page = join_page(&base, session);
            share(&base, &page, None, token, target, &mut front, input).await
        }
        Start::Nothing => Err(Failure::Said(Text::new("no-session")).into()),
        Start::Broken(why) => Err(anyhow::anyhow!(why)),
    };
    front.finish(&result);
    result
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
    target: Target,
    front: &mut Front,
    input: Arc<Input>,
) -> anyhow::Result<()> {
    let (base, way) = parse_session(&session, server)?;
    let base = base.trim_end_matches('/').to_owned();
    let page = join_page(
        &base,
        match &way {
            Way::Number(number) => Some(*number),
            Way::Link(_) => None,
        },
    );
    let ws_url = ws_url(&base);
    front.status(
        &Text::new("connecting").arg("server", base.as_str()),
        &Text::new("connecting").arg("server", base.as_str()),
    );
    // The customer's own connection, joined: tried again like the agent's attach while the
    // server cannot take it yet. Every try carries the same join key, so a try the server
    // carried out but whose answer was lost comes back to the place it made.
    let join_key = Some(join_key());
    let join = match way {
        Way::Link(secret) => ClientMessage::JoinByLink {
            secret,
            name: name.clone(),
            join_key,
        },
        Way::Number(number) => ClientMessage::JoinByNumber {
            number,
            name: name.clone(),
            join_key,
        },
    };
    let (mut customer, first) = match until_taken(front, || join_once(&ws_url, &join)).await {
        Ok(joined) => joined,
        Err(Attach::Refused { message, code }) => return Err(join_refused(code, message)),
        Err(Attach::NotYet { why, .. }) => return Err(gave_up(why)),
    };
    let mut first = Some(first);
    let token = loop {
        let message = match first.take() {
            Some(message) => message,
            None => customer.recv().await?,
        };
        match message {
            ServerMessage::Waiting { .. } => front.tell(&Text::new("waiting-room")),
            ServerMessage::AgentToken { token } => break token,
            ServerMessage::Error { code, message, .. } => return Err(join_refused(code, message)),
            ServerMessage::Denied { .. } => {
                return Err(Failure::Said(Text::new("join-denied")).into());
            }
            ServerMessage::SessionEnded { message, .. } => bail!("{message}"),
            _ => {}
        }
    };
    share(&base, &page, Some(customer), token, target, front, input).await
}

/// Between two tries of an attach the server could not take yet.
const ATTACH_RETRY_EVERY: Duration = Duration::from_secs(1);
/// Between two tries when the server said there were too many attempts from here.
const ATTACH_RETRY_LIMITED: Duration = Duration::from_secs(6);
/// The longest one try may take (a path that drops everything answers nothing at all).
const ATTACH_TRY_FOR: Duration = Duration::from_secs(20);

/// A new random `join_key`: 128 bits, in hex.
fn join_key() -> String {
    rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why an attach did not happen.
enum Attach {
    /// The server refused the token (used, unknown or expired) or this agent (a protocol
    /// version it does not speak), with `code`: trying again cannot help.
    Refused { message: String, code: ErrorCode },
    /// The server could not be reached, is restarting, has had too many attempts from
    /// here, or closed the connection before it answered: worth trying again after
    /// `wait` with the same message. It carries the same join key, so a try the server
    /// carried out without its answer reaching us is not carried out twice.
    NotYet { why: anyhow::Error, wait: Duration },
}

impl Attach {
    fn not_yet(why: anyhow::Error) -> Self {
        Attach::NotYet {
            why,
            wait: ATTACH_RETRY_EVERY,
        }
    }

    /// The server's refusal with `code`: final unless it is about the moment.
    fn refused(code: ErrorCode, message: String) -> Self {
        match code {
            ErrorCode::Restarting => Attach::not_yet(anyhow::anyhow!("{message}")),
            ErrorCode::RateLimited => Attach::NotYet {
                why: anyhow::anyhow!("{message}"),
                wait: ATTACH_RETRY_LIMITED,
            },
            _ => Attach::Refused { message, code },
        }
    }
}

/// Connect, attach with `token` and `join_key`, and wait for the join: the agent's
/// connection, and what came up to the join, for the flow. The TURN credentials come with
/// the join, and the viewers' connections need them from the start.
async fn attach(
    ws_url: &str,
    token: &str,
    join_key: &str,
) -> Result<(Signal, VecDeque<flow::Input>), Attach> {
    let mut agent = connect(ws_url, ClientKind::Agent).await?;
    agent.send(ClientMessage::AttachAgent {
        token: token.to_owned(),
        join_key: Some(join_key.to_owned()),
    });
    let mut backlog = VecDeque::new();
    loop {
        let message = agent.recv().await.map_err(Attach::not_yet)?;
        if let ServerMessage::Error { code, message, .. } = message {
            return Err(Attach::refused(code, message));
        }
        let done = matches!(message, ServerMessage::Joined(_));
        backlog.push_back(flow::Input::Server(message));
        if done {
            return Ok((agent, backlog));
        }
    }
}

/// Connect the customer and send `join`: the connection and the server's first answer to
/// it (`waiting`, `joined` or the agent token), or why not. A join cut off before its
/// answer is tried again: its join key brings the next try back to the place this one
/// made, if it made one.
async fn join_once(ws_url: &str, join: &ClientMessage) -> Result<(Signal, ServerMessage), Attach> {
    let mut customer = connect(ws_url, ClientKind::Customer).await?;
    customer.send(join.clone());
    let answer = customer.recv().await.map_err(Attach::not_yet)?;
    match answer {
        ServerMessage::Error { code, message, .. } => Err(Attach::refused(code, message)),
        first => Ok((customer, first)),
    }
}

/// A connection that said hello: a hello the server refuses for good is final.
async fn connect(ws_url: &str, kind: ClientKind) -> Result<Signal, Attach> {
    Signal::connect(ws_url, kind)
        .await
        .map_err(|e| match e.downcast::<signal::HelloRefused>() {
            Ok(refused) => Attach::refused(refused.code, refused.message),
            Err(e) => Attach::not_yet(e),
        })
}

/// Try `attempt` until it is taken or refused for good, each try at most
/// [`ATTACH_TRY_FOR`], saying on `front` that it waits, for up to
/// [`signal::RECONNECT_FOR`]; then the last reason not yet.
async fn until_taken<T, Fut>(
    front: &mut Front,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, Attach>
where
    Fut: std::future::Future<Output = Result<T, Attach>>,
{
    let deadline = tokio::time::Instant::now() + signal::RECONNECT_FOR;
    // The reason last said in the terminal: each new one is said once.
    let mut said = String::new();
    loop {
        let tried = tokio::time::timeout(ATTACH_TRY_FOR, attempt())
            .await
            .unwrap_or_else(|_| {
                Err(Attach::not_yet(anyhow::anyhow!(
                    "no answer within {} s",
                    ATTACH_TRY_FOR.as_secs()
                )))
            });
        match tried {
            Err(Attach::NotYet { why, wait }) if tokio::time::Instant::now() + wait < deadline => {
                let why = why.to_string();
                let waiting = Text::new("server-waiting").arg("why", why.as_str());
                front.status(&waiting, &waiting);
                if why != said {
                    eprintln!("{}", front.say(&waiting));
                    said = why;
                }
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// The catalogue's sentence for an attach the server refused with `code`, where there is
/// one (the server's own words are English).
fn attach_refused(code: ErrorCode) -> Option<Text> {
    match code {
        ErrorCode::AgentTokenExpired => Some(Text::new("download-expired")),
        ErrorCode::SessionNotFound => Some(Text::new("download-used")),
        ErrorCode::UnsupportedVersion => Some(Text::new("agent-unsupported")),
        _ => None,
    }
}

/// The customer's own join refused with `code`: the catalogue's sentence where there is
/// one, else the server's `message`.
fn join_refused(code: ErrorCode, message: String) -> anyhow::Error {
    let said = match code {
        ErrorCode::SessionNotFound => "join-not-found",
        ErrorCode::SessionFull | ErrorCode::SiteLimit => "join-full",
        ErrorCode::UnsupportedVersion => "agent-unsupported",
        _ => return anyhow::anyhow!("{message}"),
    };
    Failure::Said(Text::new(said)).into()
}

/// The end of trying: the server could not take us for the whole time.
fn gave_up(why: anyhow::Error) -> anyhow::Error {
    Failure::Said(
        Text::new("server-unreachable")
            .arg("seconds", signal::RECONNECT_FOR.as_secs() as usize)
            .arg("why", why.to_string()),
    )
    .into()
}

fn ws_url(base: &str) -> String {
    format!(
        "{}/ws",
        base.replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1)
    )
}

/// The page a customer joins from: with the session's number filled in when it is known.
fn join_page(base: &str, session: Option<SessionNumber>) -> String {
    match session {
        Some(number) => format!("{base}/join?number={}", number.digits()),
        None => format!("{base}/join"),
    }
}

/// Attach the agent with the token, ask for consent, and share until told to stop.
/// `customer` is the customer's own connection when this agent joined for them; `page` is
/// where a customer whose token was refused gets a new download.
///
/// This is the driver of [`flow::Agent`]: it turns the customer's window or terminal,
/// the server, capture and the viewers' connections into inputs, and carries out the
/// effects.
async fn share(
    base: &str,
    page: &str,
    customer: Option<Signal>,
    token: String,
    target: Target,
    front: &mut Front,
    input: Arc<Input>,
) -> anyhow::Result<()> {
    let ws_url = ws_url(base);
    let backend = backend::choose(target.display)?;
    let mut source = match &target.window {
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

    if customer.is_none() {
        front.status(
            &Text::new("connecting").arg("server", base),
            &Text::new("connecting").arg("server", base),
        );
    }
    eprintln!(
        "{}",
        front.say(&Text::new("this-computer").arg("system", backend.describe()))
    );
    // The agent's connection, attached to the customer with the one-time token. A server
    // that cannot be reached yet, or is restarting (it refuses with `restarting`, or its
    // connection closes before it answers), is tried again until RECONNECT_FOR passes: a
    // customer who starts the agent during an upgrade is not sent back for a new download.
    // Every try carries the same join key: a try the server took, whose answer was lost,
    // used the token, and the next comes back to the agent's place with the key.
    let join_key = join_key();
    let (mut agent, mut backlog) =
        match until_taken(front, || attach(&ws_url, &token, &join_key)).await {
            Ok(attached) => attached,
            Err(failed) => {
                if let Some(customer) = &customer {
                    customer.send(ClientMessage::Leave);
                }
                return Err(match failed {
                    // A used, unknown or expired token. The join page gives a new one.
                    Attach::Refused { message, code } => Failure::Refused {
                        said: attach_refused(code),
                        message,
                        page: page.to_owned(),
                    }
                    .into(),
                    Attach::NotYet { why, .. } => gave_up(why),
                });
            }
        };
    for input in &backlog {
        if let flow::Input::Server(ServerMessage::Joined(snapshot)) = input {
            let rep = snapshot
                .participants
                .iter()
                .find(|p| p.role == tandem_protocol::Role::PrimaryRep)
                .map(|p| p.name.clone());
            let heading = Text::new("session-heading").arg("number", snapshot.number.to_string());
            match rep {
                Some(rep) => front.status(&heading, &Text::new("your-rep").arg("rep", rep)),
                None => front.status(&heading, &heading),
            }
        }
    }
    let mut flow = flow::Agent::new(target.window.as_deref());

    // Files from the reps (files.rs), within the site's limit as the join said it.
    let max_file_bytes = backlog.iter().find_map(|input| match input {
        flow::Input::Server(ServerMessage::Joined(snapshot)) => Some(snapshot.max_file_bytes),
        _ => None,
    });
    let mut files = files::Files::new(files::downloads(), max_file_bytes.unwrap_or(0));
    let mut file_channels = Channels::new();
    // What the tasks sending the customer's files to reps report (sending.rs).
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel();
    // The clipboard's text, with the holder of control only (clipboard.rs).
    let mut clip = clipboard::System::start();
    let mut clipboard_channels = Channels::new();
    let runtime = webrtc::runtime::default_runtime().context("no async runtime for WebRTC")?;
    let mut peers = Peers::new(
        runtime,
        &agent.ice_servers,
        local_ip_towards(base),
        agent.tx.clone(),
        Arc::clone(&input),
    )
    .await;
    let mut pipeline: Option<Pipeline> = None;
    // Whether the agent's connection to the server is up (the sharing goes on without it).
    let mut link = agent.link.clone();
    // The monitors and windows offered with the last share question (after "whole
    // screen").
    let mut offered: Vec<Offer> = Vec::new();
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
            let asking = flow.asking();
            let next = tokio::select! {
                did = front.next(asking) => match did {
                    Did::Answer { yes, source: choice } => {
                        if yes
                            && flow.question() == Some(&flow::Question::Share)
                            && let Some(choice) = choice
                            && target.window.is_none()
                        {
                            // 0 is the whole screen, then what was offered.
                            let chosen = choice.checked_sub(1).and_then(|i| offered.get(i));
                            let (chosen, shared) = chosen.map_or(
                                (Source::Desktop, flow::Shared::Desktop),
                                Offer::source,
                            );
                            source = chosen;
                            inputs.push_back(flow::Input::ShareWhat(shared));
                        }
                        flow::Input::Answer(yes)
                    }
                    Did::StopSharing => flow::Input::StopSharing,
                    Did::TakeBack => flow::Input::TakeBackControl,
                    Did::CancelFiles => {
                        let outs = files.cancel_incoming();
                        if outs.is_empty() {
                            front.tell(&Text::new("file-nothing-to-cancel"));
                        }
                        inputs.extend(file_effects(outs, &file_channels, &agent, front, &sent_tx).await);
                        front.incoming(files.incoming().as_ref());
                        match inputs.pop_front() {
                            Some(first) => first,
                            None => continue,
                        }
                    }
                    Did::Picked(path) => flow::Input::Picked(path),
                    Did::Leave => flow::Input::Leave,
                },
                Some((viewer, id, sent)) = sent_rx.recv() => {
                    let outs = files.sending(viewer, &id, sent);
                    let mut said = file_effects(outs, &file_channels, &agent, front, &sent_tx).await;
                    front.incoming(files.incoming().as_ref());
                    if said.is_empty() {
                        continue;
                    }
                    let first = said.remove(0);
                    inputs.extend(said);
                    first
                }
                message = agent.recv() => flow::Input::Server(message?),
                reason = ended => flow::Input::CaptureEnded(reason.map(|r| stopped_text(&r))),
                Some(event) = peers.next_event() => match event {
                    peers::PeerEvent::Files { viewer, event } => {
                        let outs = match event {
                            peers::ChannelEvent::Open(channel) => {
                                // A viewer's new connection: whatever went over its old
                                // channel is over (its close may come later, and is then
                                // ignored), so nothing waits on a channel nobody reads.
                                match file_channels.insert(viewer, channel) {
                                    Some(_) => files.gone(viewer),
                                    None => Vec::new(),
                                }
                            }
                            peers::ChannelEvent::Text(text) => {
                                files.text(viewer, &text, flow.may_send_files(viewer))
                            }
                            peers::ChannelEvent::Binary(bytes) => files.data(viewer, &bytes),
                            peers::ChannelEvent::Closed(channel) => {
                                // A viewer's new connection may have opened its channel
                                // before the old one's close came: that one stays.
                                if same_channel(&file_channels, viewer, &channel) {
                                    file_channels.remove(&viewer);
                                    files.gone(viewer)
                                } else {
                                    Vec::new()
                                }
                            }
                        };
                        let mut asked = file_effects(outs, &file_channels, &agent, front, &sent_tx).await;
                        front.incoming(files.incoming().as_ref());
                        if asked.is_empty() {
                            continue;
                        }
                        let first = asked.remove(0);
                        inputs.extend(asked);
                        first
                    }
                    peers::PeerEvent::Clipboard { viewer, event } => {
                        let reply = match event {
                            peers::ChannelEvent::Open(channel) => {
                                clipboard_channels.insert(viewer, channel);
                                None
                            }
                            peers::ChannelEvent::Text(text) => {
                                Some(clipboard::received(viewer, flow.holder(), &text))
                            }
                            peers::ChannelEvent::Binary(_) => {
                                Some(clipboard::Reply::Answer(clipboard::Wire::Refused {
                                    reason: "unreadable".into(),
                                }))
                            }
                            peers::ChannelEvent::Closed(channel) => {
                                if same_channel(&clipboard_channels, viewer, &channel) {
                                    clipboard_channels.remove(&viewer);
                                }
                                None
                            }
                        };
                        match reply {
                            Some(clipboard::Reply::Store(text)) => clip.store(viewer, text),
                            Some(clipboard::Reply::Answer(wire)) => {
                                send_wire(&clipboard_channels, viewer, &wire.to_json()).await;
                            }
                            None => {}
                        }
                        continue;
                    }
                    event => {
                        if let Some(news) = peers.handle(event).await {
                            eprintln!("{news}");
                        }
                        continue;
                    }
                },
                Some(event) = clip.events.recv() => {
                    let (viewer, wire) = match event {
                        // Only to the holder it was copied under, if it still holds
                        // control.
                        clipboard::Event::Copied(holder, text) => {
                            if flow.holder() != Some(holder) {
                                continue;
                            }
                            (holder, clipboard::copied(text))
                        }
                        clipboard::Event::Stored(viewer, true) => (viewer, clipboard::Wire::Stored),
                        clipboard::Event::Stored(viewer, false) => (
                            viewer,
                            clipboard::Wire::Refused {
                                reason: "unavailable".into(),
                            },
                        ),
                    };
                    send_wire(&clipboard_channels, viewer, &wire.to_json()).await;
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
                    // A file cut off with its viewer's connection waits so long for it.
                    let over = files.expire(std::time::Instant::now());
                    if !over.is_empty() {
                        inputs.extend(file_effects(over, &file_channels, &agent, front, &sent_tx).await);
                        front.incoming(files.incoming().as_ref());
                    }
                    if let Some(p) = &pipeline {
                        show_panel(front, &flow, &peers);
                        // Not over a question the customer is reading in the terminal.
                        if !flow.asking() || front.is_window() {
                            last = report(front, &flow, p, &peers, &input, last);
                        }
                    }
                    continue;
                }
                Ok(()) = link.changed() => {
                    let up = *link.borrow_and_update();
                    front.tell(&Text::new(if up { "server-back" } else { "server-lost" }));
                    continue;
                }
                _ = tokio::signal::ctrl_c() => flow::Input::Leave,
                _ = console_closed() => flow::Input::Leave,
            };
            inputs.push_back(next);
        }
        while let Some(next) = inputs.pop_front() {
            if let flow::Input::Server(ServerMessage::Joined(snapshot)) = &next {
                files.set_max_bytes(snapshot.max_file_bytes);
            }
            let was_asking = flow.asking();
            for effect in flow.handle(next) {
                match effect {
                    Effect::Send(message) => agent.send(message),
                    Effect::LeaveAsCustomer => {
                        if let Some(customer) = &customer {
                            customer.send(ClientMessage::Leave);
                        }
                    }
                    Effect::Ask { question, text } => {
                        // Nothing from the rep reaches the computer while the customer
                        // decides (DESIGN §5: injected input never answers a question).
                        input.pause(true);
                        let sources = if question == flow::Question::Share
                            && target.window.is_none()
                            && front.is_window()
                        {
                            offered = offers(backend.as_ref());
                            std::iter::once(front.say(&Text::new("source-desktop")))
                                .chain(offered.iter().map(|o| front.say(&o.text())))
                                .collect()
                        } else {
                            Vec::new()
                        };
                        if let Some(answer) = front.ask(&question, &text, sources) {
                            inputs.push_back(flow::Input::Answer(answer));
                        }
                    }
                    Effect::StartCapture => {
                        let injected = Arc::clone(&input);
                        let activity = Arc::new(move || injected.activity());
                        let started = Pipeline::start(Arc::clone(&backend), source, activity)
                            .map(|p| {
                                pipeline = Some(p);
                                last = (0, 0);
                            })
                            .map_err(|e| format!("{e:#}"));
                        if started.is_ok() {
                            peers::trace("consent given, capture started");
                            front.framed(Some(source));
                        }
                        inputs.push_back(flow::Input::CaptureStarted(started));
                    }
                    Effect::StopCapture => {
                        front.framed(None);
                        if let Some(p) = pipeline.take() {
                            p.stop();
                        }
                        // No connection of this share comes back (a new share has new
                        // ones): its files end now rather than wait for one.
                        let outs: Vec<files::Out> = files
                            .involved()
                            .into_iter()
                            .flat_map(|v| files.left(v))
                            .collect();
                        file_channels.clear();
                        inputs.extend(
                            file_effects(outs, &file_channels, &agent, front, &sent_tx).await,
                        );
                        front.incoming(files.incoming().as_ref());
                        peers.close_all().await;
                        front.not_sharing();
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
                            text::complain("viewer-connect-failed", e, &[]);
                        }
                    }
                    Effect::RemoveViewer(viewer) => {
                        peers.remove(viewer).await;
                        // It left: nothing of its files waits for a new connection.
                        file_channels.remove(&viewer);
                        let outs = files.left(viewer);
                        inputs.extend(
                            file_effects(outs, &file_channels, &agent, front, &sent_tx).await,
                        );
                        front.incoming(files.incoming().as_ref());
                    }
                    Effect::Signal(ServerMessage::Answer { from, sdp, .. }) => {
                        if let Err(e) = peers.answer(from, sdp).await {
                            text::complain("viewer-answer-unusable", e, &[]);
                        }
                    }
                    Effect::Signal(ServerMessage::IceCandidate {
                        from, candidate, ..
                    }) => {
                        if let Err(e) = peers.candidate(from, candidate).await {
                            text::complain("viewer-address-unusable", e, &[]);
                        }
                    }
                    Effect::Signal(_) => {}
                    Effect::OpenControl => {
                        let opened = input
                            .open(Arc::clone(&backend), source)
                            .map_err(|e| format!("{e:#}"));
                        inputs.push_back(flow::Input::ControlOpened(opened));
                    }
                    Effect::SetHolder(holder) => {
                        input.set_holder(holder);
                        // C1: the clipboard is part of control, while it is held.
                        clip.watch(holder);
                        if pipeline.is_some() {
                            show_panel(front, &flow, &peers);
                        }
                    }
                    Effect::FilePicked {
                        viewer,
                        token,
                        path,
                    } => {
                        let outs = files.picked(viewer, token, path);
                        inputs.extend(
                            file_effects(outs, &file_channels, &agent, front, &sent_tx).await,
                        );
                        front.incoming(files.incoming().as_ref());
                    }
                    Effect::FileAnswer { viewer, token, yes } => {
                        let outs = files.answer(viewer, token, yes);
                        inputs.extend(
                            file_effects(outs, &file_channels, &agent, front, &sent_tx).await,
                        );
                        front.incoming(files.incoming().as_ref());
                    }
                    Effect::Tell(sentence) => {
                        front.tell(&sentence);
                        if pipeline.is_some() {
                            show_panel(front, &flow, &peers);
                        }
                    }
                    Effect::End(result) => {
                        front.framed(None);
                        // No key or button stays held down after the agent is gone, and
                        // no half-received file stays on the disk.
                        input.close();
                        let outs = files.abandon();
                        file_effects(outs, &file_channels, &agent, front, &sent_tx).await;
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
            if was_asking && !flow.asking() {
                input.pause(false);
                front.asked(pipeline.is_some());
            }
        }
    }
}

/// Each viewer's open channel of one kind (files, clipboard).
type Channels = std::collections::HashMap<
    tandem_protocol::ParticipantId,
    Arc<dyn webrtc::data_channel::DataChannel>,
>;

/// Whether `channel` is the one open for `viewer`.
fn same_channel(
    channels: &Channels,
    viewer: tandem_protocol::ParticipantId,
    channel: &Arc<dyn webrtc::data_channel::DataChannel>,
) -> bool {
    channels
        .get(&viewer)
        .is_some_and(|open| std::ptr::addr_eq(Arc::as_ptr(open), Arc::as_ptr(channel)))
}

/// Send a JSON message on a viewer's channel, if it is open.
async fn send_wire(channels: &Channels, viewer: tandem_protocol::ParticipantId, json: &str) {
    if let Some(channel) = channels.get(&viewer)
        && let Err(e) = channel.send_text(json).await
    {
        text::complain("viewer-message-lost", e, &[]);
    }
}

/// Carry out what files.rs asks for; questions for the customer (and questions taken
/// back) go to the flow, to be asked in turn with the others.
async fn file_effects(
    outs: Vec<files::Out>,
    channels: &Channels,
    agent: &Signal,
    front: &mut Front,
    sent: &sending::Report,
) -> Vec<flow::Input> {
    let mut inputs = Vec::new();
    for out in outs {
        match out {
            files::Out::Pick { viewer, token } => {
                inputs.push(flow::Input::FileRequested { viewer, token });
            }
            files::Out::Start {
                viewer,
                id,
                path,
                name,
                size,
                stop,
                from,
                sha256,
            } => {
                let transfer = sending::Transfer {
                    viewer,
                    id,
                    path,
                    name,
                    size,
                    stop,
                    resume: sha256.map(|sha256| (from, sha256)),
                };
                match channels.get(&viewer) {
                    Some(channel) => {
                        tokio::spawn(sending::send(Arc::clone(channel), transfer, sent.clone()));
                    }
                    None => {
                        let _ = sent.send((
                            viewer,
                            transfer.id,
                            files::Sent::Failed("the rep's connection is gone".into()),
                        ));
                    }
                }
            }
            files::Out::Send(viewer, wire) => send_wire(channels, viewer, &wire.to_json()).await,
            files::Out::Report(message) => agent.send(message),
            files::Out::Tell(text) => front.tell(&text),
            files::Out::Ask {
                viewer,
                token,
                name,
                size,
            } => inputs.push(flow::Input::FileOffered {
                viewer,
                token,
                name,
                size,
            }),
            files::Out::Withdraw { viewer, token } => {
                inputs.push(flow::Input::FileWithdrawn { viewer, token });
            }
        }
    }
    inputs
}

/// Why the share stopped by itself, in the customer's words.
fn stopped_text(stopped: &pipeline::Stopped) -> Text {
    use tandem_capture::Gone;
    match stopped {
        pipeline::Stopped::Gone(gone) => Text::new(match gone {
            Gone::WindowClosed => "gone-window-closed",
            Gone::WindowClosedOrMinimized => "gone-window-closed-or-minimized",
            Gone::WindowHidden => "gone-window-hidden",
            Gone::WindowLostInResize => "gone-window-resized",
            Gone::MonitorDisconnected => "gone-monitor-disconnected",
        }),
        pipeline::Stopped::Failed(why) => Text::new("capture-error").arg("why", why.as_str()),
    }
}

/// What the customer may choose to share besides the whole screen.
enum Offer {
    Monitor(tandem_capture::MonitorInfo),
    Window(tandem_capture::WindowInfo),
}

impl Offer {
    /// How the choice reads in the list.
    fn text(&self) -> Text {
        match self {
            Offer::Monitor(m) => Text::new("source-monitor")
                .arg("name", m.name.as_str())
                .arg("width", m.area.width.to_string())
                .arg("height", m.area.height.to_string()),
            Offer::Window(w) => Text::new("source-window").arg("title", w.title.as_str()),
        }
    }

    /// What capture takes, and what the session is told.
    fn source(&self) -> (Source, flow::Shared) {
        match self {
            Offer::Monitor(m) => (
                Source::Monitor {
                    id: m.id,
                    area: m.area,
                },
                flow::Shared::Monitor(m.name.clone()),
            ),
            Offer::Window(w) => (Source::Window(w.id), flow::Shared::Window(w.title.clone())),
        }
    }
}

/// The monitors (when there are several: one is the whole screen) and the titled windows,
/// not the agent's own.
fn offers(backend: &dyn backend::Backend) -> Vec<Offer> {
    let monitors = backend.monitors().unwrap_or_default();
    let monitors = if monitors.len() > 1 {
        monitors
    } else {
        Vec::new()
    };
    let windows = backend
        .windows()
        .unwrap_or_default()
        .into_iter()
        .filter(|w| !w.title.trim().is_empty() && !ui::OWN_TITLES.contains(&w.title.as_str()))
        .take(40);
    monitors
        .into_iter()
        .map(Offer::Monitor)
        .chain(windows.map(Offer::Window))
        .collect()
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

/// The window's sharing panel: the badge (shared, or controlled by whom) and who watches.
fn show_panel(front: &Front, flow: &flow::Agent, peers: &Peers) {
    let holder = flow.holder().map(|h| {
        flow.name_of(h)
            .map_or_else(|| flow.rep(), |n| text::Arg::Str(n.to_owned()))
    });
    let badge = match &holder {
        Some(name) => Text::new("badge-controlled").arg("name", name.clone()),
        None => Text::new("badge-sharing").arg("what", flow.what().clone()),
    };
    let watching: Vec<String> = peers
        .links()
        .into_iter()
        .filter(|(_, l)| matches!(l, peers::Link::Connected(_)))
        .map(|(name, _)| name)
        .collect();
    let watching = Text::new("watching")
        .arg("count", watching.len())
        .arg("names", watching.join(", "))
        .arg("recorded", if flow.recording() { "yes" } else { "no" });
    front.panel(&badge, holder.is_some(), &watching);
}

/// The status line while sharing, every two seconds: who watches and how, frames, rate,
/// control and input. Returns the frame and byte counters for the next report.
fn report(
    front: &Front,
    flow: &flow::Agent,
    p: &Pipeline,
    peers: &Peers,
    input: &Input,
    (last_frames, last_bytes): (u64, u64),
) -> (u64, u64) {
    let frames = p.controls.frames.load(Ordering::Relaxed);
    let bytes = p.controls.bytes.load(Ordering::Relaxed);
    let control = match flow.holder() {
        Some(h) => front.say(
            &Text::new("status-control").arg(
                "name",
                flow.name_of(h)
                    .map_or_else(|| flow.rep(), |n| text::Arg::Str(n.to_owned())),
            ),
        ),
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
        Text::new("status-nobody")
    } else {
        let each: Vec<String> = links
            .iter()
            .map(|(name, link)| {
                let id = match link {
                    peers::Link::Connecting => "viewer-connecting",
                    peers::Link::Connected(Some(path)) if path == "relay" => "viewer-relay",
                    peers::Link::Connected(_) => "viewer-watching",
                    peers::Link::Reconnecting => "viewer-reconnecting",
                    peers::Link::Failed(_) => "viewer-failed",
                };
                front.say(&Text::new(id).arg("name", name.as_str()))
            })
            .collect();
        Text::new("status-watching")
            .arg("count", watching)
            .arg("each", each.join(", "))
    };
    let line = Text::new("status-line")
        .arg("what", flow.what().clone())
        .arg("viewers", viewers)
        // A new capture starts its counters at zero.
        .arg(
            "fps",
            format!("{:.0}", frames.saturating_sub(last_frames) as f64 / 2.0),
        )
        .arg(
            "mbps",
            format!(
                "{:.2}",
                bytes.saturating_sub(last_bytes) as f64 * 8.0 / 2.0 / 1_000_000.0
            ),
        )
        .arg(
            "target",
            format!(
                "{:.2}",
                p.controls.target_bps.load(Ordering::Relaxed) as f64 / 1_000_000.0
            ),
        )
        .arg("scaled", {
            let scaled = p.controls.scaled_to.load(Ordering::Relaxed);
            if scaled == 0 {
                String::new()
            } else {
                front.say(
                    &Text::new("status-scaled")
                        .arg("width", (scaled >> 32).to_string())
                        .arg("height", (scaled & 0xffff_ffff).to_string()),
                )
            }
        })
        .arg(
            "keyframes",
            p.controls
                .keyframe_requests
                .load(Ordering::Relaxed)
                .to_string(),
        )
        .arg("control", control)
        .arg("injected", injected.to_string())
        .arg("dropped", input.dropped().to_string());
    eprintln!("{}", front.say(&line));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The server's refusals the customer may meet are said in the customer's language
    /// (the server's own words are English); others keep the server's words.
    #[test]
    fn refusals_are_said_from_the_catalogue_in_each_language() {
        use crate::text::{Language, Surface};
        let said = |e: anyhow::Error| match e.downcast::<Failure>() {
            Ok(Failure::Said(text)) => Some(text),
            _ => None,
        };
        let mut texts: Vec<Text> = [
            ErrorCode::AgentTokenExpired,
            ErrorCode::SessionNotFound,
            ErrorCode::UnsupportedVersion,
        ]
        .into_iter()
        .map(|code| attach_refused(code).expect("a sentence"))
        .collect();
        for code in [
            ErrorCode::SessionNotFound,
            ErrorCode::SessionFull,
            ErrorCode::SiteLimit,
            ErrorCode::UnsupportedVersion,
        ] {
            texts.push(said(join_refused(code, "English".into())).expect("a sentence"));
        }
        texts.push(Text::new("join-denied"));
        for language in ["en", "nb"] {
            let language = Language::for_locale(language, Surface::Terminal);
            for text in &texts {
                let words = language.say(text);
                assert!(
                    words.len() > 30
                        && !words.starts_with("download-")
                        && !words.starts_with("join-"),
                    "{text:?}: {words}"
                );
            }
        }
        assert!(attach_refused(ErrorCode::BadMessage).is_none());
        let other = join_refused(ErrorCode::BadMessage, "the name is too long".into());
        assert_eq!(other.to_string(), "the name is too long");
    }

    #[test]
    fn an_expired_download_points_to_the_join_page_with_its_number() {
        let number = SessionNumber::new(12_345_678).expect("nine digits");
        assert_eq!(
            join_page("https://support.example", Some(number)),
            "https://support.example/join?number=012345678"
        );
        assert_eq!(
            join_page("https://support.example", None),
            "https://support.example/join"
        );
    }
}
