//! The agent's connections to the signaling server: typed protocol messages over a
//! WebSocket, one task per connection so any part of the agent can send.
//!
//! A connection that drops (the server restarted, the network blinked) is opened again
//! and resumed with the newest resume token (R2, protocol §4.2): the session goes on, and
//! the media, which never went through the server, with it. Meanwhile what the agent
//! sends waits and goes out after the resume. Only a close that means "you are done"
//! (1000, 4001, 4003), a refused resume, or a server away longer than
//! [`RECONNECT_FOR`] ends the connection for good.

use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tandem_protocol::{
    ClientKind, ClientMessage, ErrorCode, IceServer, PROTOCOL_VERSION, ServerMessage,
    decode_server, encode,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a lost connection is tried again while the server cannot be reached: a
/// restarted server gives everyone the whole grace period (30 s by default) from its new
/// start, and one that no longer has the place refuses the resume at once.
pub const RECONNECT_FOR: Duration = Duration::from_secs(120);
/// Between two tries.
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// How often the agent pings the server. A connection whose path is gone without a word
/// (the customer's address changed: another Wi-Fi, a new lease) says so only when
/// something is sent on it; the server's pings no longer reach it, so the agent sends its
/// own, and the first one after the change meets a reset.
const PING_EVERY: Duration = Duration::from_secs(2);
/// A connection from which nothing at all arrived for this long is lost, even where
/// nothing resets it (a path that drops everything). Longer than the server's own ping
/// interval (30 s, docs/protocol.md §1), so a quiet session is never taken for one.
const SILENT_FOR: Duration = Duration::from_secs(45);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One WebSocket to the server.
pub struct Signal {
    pub tx: mpsc::UnboundedSender<ClientMessage>,
    rx: mpsc::UnboundedReceiver<ServerMessage>,
    /// The STUN servers of the welcome, then STUN and TURN from `ice_servers` after a join.
    pub ice_servers: Vec<IceServer>,
    /// Whether the connection is up: false while it is being reopened after a loss.
    pub link: tokio::sync::watch::Receiver<bool>,
}

impl Signal {
    /// Connect, say hello, and wait for the welcome.
    pub async fn connect(ws_url: &str, kind: ClientKind) -> anyhow::Result<Signal> {
        let (socket, ice_servers) = open(ws_url, kind).await?;
        let (out_tx, out_rx) = mpsc::unbounded_channel::<ClientMessage>();
        let (in_tx, in_rx) = mpsc::unbounded_channel::<ServerMessage>();
        let (up, link_rx) = tokio::sync::watch::channel(true);
        let link = Link {
            up,
            ws_url: ws_url.to_owned(),
            kind,
            outgoing: out_rx,
            incoming: in_tx,
            token: None,
            unsent: None,
            resuming: false,
        };
        tokio::spawn(link.run(socket));
        Ok(Signal {
            tx: out_tx,
            rx: in_rx,
            ice_servers,
            link: link_rx,
        })
    }

    pub fn send(&self, message: ClientMessage) {
        if self.tx.send(message).is_err() {
            eprintln!("tandem-agent: the connection to the server is closed");
        }
    }

    /// The next message; an error when the connection ended for good. The ICE servers
    /// the server hands out after a join (with this participant's TURN credentials) are
    /// kept here rather than passed on.
    pub async fn recv(&mut self) -> anyhow::Result<ServerMessage> {
        loop {
            let message = self
                .rx
                .recv()
                .await
                .context("the connection to the Tandem server closed")?;
            match message {
                ServerMessage::IceServers { ice_servers } => self.ice_servers = ice_servers,
                other => return Ok(other),
            }
        }
    }
}

/// Open a WebSocket, say hello, and wait for the welcome; its STUN servers.
async fn open(ws_url: &str, kind: ClientKind) -> anyhow::Result<(Socket, Vec<IceServer>)> {
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url)
        .await
        .with_context(|| format!("cannot reach the Tandem server at {ws_url}"))?;
    let hello = ClientMessage::Hello {
        protocol_version: PROTOCOL_VERSION,
        client: kind,
        software: format!("tandem-agent {}", env!("CARGO_PKG_VERSION")),
    };
    socket.send(Message::text(encode(&hello))).await?;
    loop {
        let frame = socket
            .next()
            .await
            .context("the server closed the connection before its welcome")??;
        let Message::Text(text) = frame else {
            continue;
        };
        match decode_server(&text)? {
            ServerMessage::Welcome { ice_servers, .. } => return Ok((socket, ice_servers)),
            ServerMessage::Error { code, message, .. } => {
                return Err(HelloRefused { code, message }.into());
            }
            other => bail!("unexpected first answer from the server: {other:?}"),
        }
    }
}

/// The server answered the hello with an error (e.g. `unsupported_version`: this agent is
/// older or newer than the server speaks).
#[derive(Debug)]
pub struct HelloRefused {
    pub code: ErrorCode,
    pub message: String,
}

impl std::fmt::Display for HelloRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the server refused us: {}", self.message)
    }
}

impl std::error::Error for HelloRefused {}

/// A send that has not gone into the socket this long (the server reads nothing, or the
/// path takes nothing) counts as a lost connection.
const SEND_WAIT: Duration = Duration::from_secs(10);

/// Whether `message` went into the socket within [`SEND_WAIT`].
async fn sent(sink: &mut SplitSink<Socket, Message>, message: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_WAIT, sink.send(message)).await,
        Ok(Ok(()))
    )
}

/// How a connection's pumping ended.
enum Ended {
    /// The agent dropped its `Signal`: nothing more to do.
    Dropped,
    /// The server closed it on purpose, or the agent stopped reading: done.
    Finished,
    /// Lost (no close frame, or "the server is restarting"): try to resume.
    Lost,
}

/// The task behind a `Signal`: pumps messages both ways and resumes a lost connection.
struct Link {
    /// Told when the connection is lost and when it is back.
    up: tokio::sync::watch::Sender<bool>,
    ws_url: String,
    kind: ClientKind,
    outgoing: mpsc::UnboundedReceiver<ClientMessage>,
    incoming: mpsc::UnboundedSender<ServerMessage>,
    /// The newest resume token the server gave.
    token: Option<String>,
    /// A message whose send failed as the connection went: sent first after the resume.
    unsent: Option<ClientMessage>,
    /// A resume was sent and not answered yet.
    resuming: bool,
}

impl Link {
    async fn run(mut self, socket: Socket) {
        let mut socket = socket;
        loop {
            let (mut sink, mut source) = socket.split();
            match self.pump(&mut sink, &mut source).await {
                Ended::Dropped => {
                    let _ = sink.close().await;
                    return;
                }
                Ended::Finished => return,
                Ended::Lost => {}
            }
            let Some(token) = self.token.clone() else {
                return; // not in a session yet: nothing to come back to
            };
            self.up.send_replace(false);
            let Some(back) = self.reconnect(&token).await else {
                eprintln!(
                    "tandem-agent: could not reach the server again within {} s",
                    RECONNECT_FOR.as_secs()
                );
                return;
            };
            // Up again once the server answers the resume with a new token (`pump`).
            self.resuming = true;
            socket = back;
        }
    }

    async fn pump(
        &mut self,
        sink: &mut SplitSink<Socket, Message>,
        source: &mut SplitStream<Socket>,
    ) -> Ended {
        if let Some(message) = self.unsent.take()
            && !sent(sink, Message::text(encode(&message))).await
        {
            self.unsent = Some(message);
            return Ended::Lost;
        }
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heard = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = ping.tick() => {
                    if heard.elapsed() > SILENT_FOR
                        || !sent(sink, Message::Ping(Default::default())).await
                    {
                        return Ended::Lost;
                    }
                }
                out = self.outgoing.recv() => {
                    let Some(message) = out else {
                        return Ended::Dropped;
                    };
                    if !sent(sink, Message::text(encode(&message))).await {
                        self.unsent = Some(message);
                        return Ended::Lost;
                    }
                }
                frame = source.next() => match frame.inspect(|_| heard = tokio::time::Instant::now()) {
                    Some(Ok(Message::Text(text))) => match decode_server(&text) {
                        Ok(ServerMessage::ResumeToken { token }) => {
                            self.token = Some(token);
                            if std::mem::take(&mut self.resuming) {
                                self.up.send_replace(true);
                            }
                        }
                        Ok(ServerMessage::Error { request: Some(request), code, message })
                            if request == "resume" =>
                        {
                            // The place is gone for good; anything else (a server still
                            // starting, a limit) is tried again.
                            if matches!(code, ErrorCode::SessionNotFound | ErrorCode::NotPermitted) {
                                eprintln!("tandem-agent: the session could not be resumed: {message}");
                                return Ended::Finished;
                            }
                            return Ended::Lost;
                        }
                        Ok(message) => {
                            if self.incoming.send(message).is_err() {
                                return Ended::Finished;
                            }
                        }
                        Err(e) => eprintln!("tandem-agent: ignoring a message: {e}"),
                    },
                    Some(Ok(Message::Close(frame))) => {
                        // 1012: the server restarts; anything else was meant.
                        let restarting = frame.as_ref().is_none_or(|f| u16::from(f.code) == 1012);
                        return if restarting { Ended::Lost } else { Ended::Finished };
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return Ended::Lost,
                },
            }
        }
    }

    /// Open a new connection and resume the seat, trying until [`RECONNECT_FOR`] passes.
    async fn reconnect(&mut self, token: &str) -> Option<Socket> {
        let deadline = tokio::time::Instant::now() + RECONNECT_FOR;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(RETRY_EVERY).await;
            let Ok((mut socket, _)) = open(&self.ws_url, self.kind).await else {
                continue;
            };
            let resume = ClientMessage::Resume {
                token: token.to_owned(),
            };
            if socket.send(Message::text(encode(&resume))).await.is_ok() {
                return Some(socket);
            }
        }
        None
    }
}
