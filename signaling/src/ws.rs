//! The WebSocket endpoint: it only moves messages between the socket and the registry.
//! Size caps and decoding happen here; every rule is the session's.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tandem_protocol::{
    ClientMessage, ErrorCode, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, ServerMessage, decode_client,
};

use crate::AppState;
use crate::auth::{account_from_headers, same_origin};
use crate::limits::{ConnectionLimits, Verdict};
use crate::live::{Refusal, Seat};
use crate::outbound::{self, Close, Frame, Outbound, OutboundTx};
use crate::store::Account;

/// Frames up to this size are read and refused with a reason; larger ones end the
/// connection at the WebSocket layer.
const HARD_FRAME_LIMIT: usize = 128 * 1024;

/// The WebSocket of docs/protocol.md: one per client, JSON text frames.
#[utoipa::path(
    get,
    path = "/ws",
    tag = "websocket",
    security((), ("tandem_login" = [])),
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket is open; say `hello` \
            within 10 s. A rep's connection carries the login cookie (for `open_session`, \
            `assist`, `accept_transfer`, `dashboard`; an expired one opens the connection \
            without an account); customers and agents need none"),
        (status = 403, description = "An `Origin` header naming another site", content_type = "text/plain"),
        (status = 400, description = "Not a WebSocket upgrade request", content_type = "text/plain"),
        (status = 401, description = "The login cookie's account was disabled or changed \
            while connecting: log in again", body = crate::error::ErrorBody),
        (status = 500, description = "The database failed; the message carries an error id",
            body = crate::error::ErrorBody),
    )
)]
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "WebSocket connections from other sites are refused",
        )
            .into_response();
    }
    let account = match account_from_headers(&state, &headers).await {
        Ok(account) => account,
        Err(e) => return e.into_response(),
    };
    let id = state.registry.next_id();
    let (tx, rx) = outbound::channel();
    if let Some(account) = &account {
        // Register first, then look at the login again: an admin who disables the rep
        // (or changes their role) meanwhile either finds this connection registered and
        // closes it, or has already changed the store, and the second look refuses it.
        state.registry.account_connected(account.id, id, tx.clone());
        let again = account_from_headers(&state, &headers).await.ok().flatten();
        let same = again.as_ref().is_some_and(|a| {
            a.id == account.id && a.is_admin == account.is_admin && a.is_webacd == account.is_webacd
        });
        if !same {
            state.registry.account_disconnected(account.id, id);
            return crate::error::AppError::unauthorized().into_response();
        }
    }
    let unregister = (state.registry.clone(), account.as_ref().map(|a| a.id));
    // Most connections sit idle for the whole session: small buffers (grown as a message
    // needs) keep an idle connection at a few KiB instead of 256 KiB.
    ws.max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .on_failed_upgrade(move |_| {
            if let (registry, Some(account)) = unregister {
                registry.account_disconnected(account, id);
            }
        })
        .on_upgrade(move |socket| connection(socket, state, addr.ip(), account, (id, tx, rx)))
}

struct Connection {
    state: AppState,
    ip: IpAddr,
    account: Option<Account>,
    id: u64,
    tx: OutboundTx,
    said_hello: bool,
    seat: Option<Seat>,
    /// This connection is a WebACD agent's dashboard (R10).
    desk: bool,
    limits: ConnectionLimits,
}

/// What to do after a message.
enum Flow {
    Continue,
    Close,
}

/// The `type` of a message that could not be read, for `error.request`. Only for
/// `bad_message`: a `type` that names no message is `unknown_type` instead, so the type
/// named here is one the protocol has (and short).
fn known_type(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let kind = value.get("type")?.as_str()?;
    Some(tandem_protocol::excerpt(kind, 40))
}

/// A connection must say `hello` within this time.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// The server pings every connection this often; browsers and WebSocket libraries answer.
pub const PING_INTERVAL: Duration = Duration::from_secs(30);
/// A connection from which nothing (not even a pong) arrived for this long is lost.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(100);
/// How long the writer may take to deliver what was queued before a close.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

async fn connection(
    socket: WebSocket,
    state: AppState,
    ip: IpAddr,
    account: Option<Account>,
    (id, tx, mut rx): (u64, OutboundTx, outbound::OutboundRx),
) {
    let (mut sink, mut stream) = socket.split();
    let mut writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            let frame = match frame {
                Frame::Text(text) => Message::Text(Utf8Bytes::from(text)),
                Frame::Ping => Message::Ping(Default::default()),
                Frame::Close { code, reason } => {
                    let close = Message::Close(Some(CloseFrame {
                        code,
                        reason: Utf8Bytes::from(reason),
                    }));
                    if sink.send(close).await.is_err() {
                        tracing::debug!("peer gone before the close frame");
                    }
                    break;
                }
            };
            if sink.send(frame).await.is_err() {
                break;
            }
        }
    });

    let _counted = state.telemetry.websocket_opened();
    let mut conn = Connection {
        state,
        ip,
        account,
        id,
        tx,
        said_hello: false,
        seat: None,
        desk: false,
        limits: ConnectionLimits::default(),
    };
    let ended = conn.tx.clone();
    let hello_deadline = tokio::time::sleep(HELLO_TIMEOUT);
    tokio::pin!(hello_deadline);
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let mut last_heard = tokio::time::Instant::now();
    // A close frame from the client with 1000 or 1001 (or no code) means it left on
    // purpose (page closed or navigated away); anything else is a lost connection (R2).
    // A close of the server's own (a frame too large, too many refusals, another protocol
    // version) ends the participant's place as leaving does.
    let clean = loop {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            () = ended.ended() => break false,
            () = &mut hello_deadline, if !conn.said_hello => {
                conn.close(Close::HelloTimeout);
                break false;
            }
            _ = ping.tick() => {
                if last_heard.elapsed() >= IDLE_TIMEOUT {
                    conn.close(Close::Idle);
                    break false;
                }
                conn.tx.ping();
                continue;
            }
        };
        let Some(frame) = frame else {
            break false;
        };
        last_heard = tokio::time::Instant::now();
        match frame {
            Ok(Message::Text(text)) => {
                if let Flow::Close = conn.text(text.as_str()) {
                    break true;
                }
            }
            Ok(Message::Binary(_)) => {
                if let Flow::Close = conn.refuse_binary() {
                    break true;
                }
            }
            Ok(Message::Close(frame)) => break leaves(frame.as_ref()),
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Err(e) => {
                tracing::debug!("websocket error: {e}");
                break false;
            }
        }
    };
    if let Some(seat) = conn.seat {
        conn.state.registry.closed(seat, conn.id, clean);
    }
    if conn.desk {
        conn.state.registry.desk_closed(conn.id);
    }
    if let Some(account) = &conn.account {
        conn.state
            .registry
            .account_disconnected(account.id, conn.id);
    }
    drop(conn);
    drop(ended);
    // The writer ends once every sender is gone (or after a close frame). A client that
    // does not read could hold it in `send` for ever: give it a moment, then cut.
    if tokio::time::timeout(FLUSH_TIMEOUT, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

impl Connection {
    /// A reply goes out after what the registry decided before it (a refusal after the
    /// effects of the command accepted just before it).
    fn send(&self, message: ServerMessage) {
        if !self
            .state
            .registry
            .reply(&self.tx, Outbound::Message(message))
        {
            tracing::debug!("reply to a closed or full connection dropped");
        }
    }

    fn error(&self, code: ErrorCode, message: impl Into<String>, request: Option<&str>) {
        self.state.telemetry.refused(code);
        // Every reply is short: a client must not be able to make the server say much.
        self.send(ServerMessage::Error {
            code,
            message: message.into(),
            request: request.map(str::to_owned),
        });
    }

    fn close(&self, close: Close) {
        if !self.state.registry.reply(&self.tx, Outbound::Close(close)) {
            tracing::debug!("close on a closed connection");
        }
    }

    /// Apply a rate verdict: true when the message may go on.
    fn admit(&mut self, verdict: Verdict, kind: Option<&str>) -> Result<(), Flow> {
        match verdict {
            Verdict::Allow => Ok(()),
            Verdict::Refuse => {
                self.error(
                    ErrorCode::RateLimited,
                    "you are sending too fast; slow down",
                    kind,
                );
                Err(Flow::Continue)
            }
            Verdict::Close => {
                self.close(Close::TooManyMessages);
                Err(Flow::Close)
            }
        }
    }

    fn refuse_binary(&mut self) -> Flow {
        let verdict = self.limits.message();
        if let Err(flow) = self.admit(verdict, None) {
            return flow;
        }
        self.state.telemetry.message_received("binary");
        self.error(
            ErrorCode::BadMessage,
            "binary frames are not part of the protocol; send JSON text",
            None,
        );
        Flow::Continue
    }

    fn text(&mut self, text: &str) -> Flow {
        let verdict = self.limits.message();
        if let Err(flow) = self.admit(verdict, None) {
            return flow;
        }
        let decoded = decode_client(text);
        let kind = decoded.as_ref().map_or("invalid", ClientMessage::kind);
        self.state.telemetry.message_received(kind);
        let message = match decoded {
            Ok(message) => message,
            Err(e) if e.code == ErrorCode::MessageTooLarge => {
                self.error(e.code, e.message.clone(), None);
                self.close(Close::TooLarge(format!(
                    "message too large: {} bytes, limit {MAX_MESSAGE_BYTES}",
                    text.len()
                )));
                return Flow::Close;
            }
            Err(e) => {
                let request = (e.code == ErrorCode::BadMessage)
                    .then(|| known_type(text))
                    .flatten();
                self.error(e.code, e.message, request.as_deref());
                return Flow::Continue;
            }
        };
        let kind = message.kind();
        if let ClientMessage::Chat { .. } = &message {
            let verdict = self.limits.chat();
            if let Err(flow) = self.admit(verdict, Some(kind)) {
                return flow;
            }
        }
        if let ClientMessage::Hello {
            protocol_version, ..
        } = &message
        {
            return self.hello(*protocol_version);
        }
        if !self.said_hello {
            self.error(
                ErrorCode::NotJoined,
                "send hello first, with the protocol version you speak",
                Some(kind),
            );
            return Flow::Continue;
        }
        let result = if message.is_connection_level() {
            self.join(message)
        } else {
            match self.seat {
                Some(seat) => self.state.registry.command(seat, message),
                None => Err(Refusal::new(
                    ErrorCode::NotJoined,
                    "join a session before sending session commands",
                )),
            }
        };
        if let Err(refusal) = result {
            self.error(refusal.code, refusal.message, Some(kind));
        }
        Flow::Continue
    }

    fn hello(&mut self, version: u32) -> Flow {
        if version != PROTOCOL_VERSION {
            self.error(
                ErrorCode::UnsupportedVersion,
                format!(
                    "protocol version {version} is not supported; this server speaks version \
                     {PROTOCOL_VERSION}. Update your Tandem client"
                ),
                Some("hello"),
            );
            self.close(Close::UnsupportedVersion);
            return Flow::Close;
        }
        self.said_hello = true;
        self.send(ServerMessage::Welcome {
            protocol_version: PROTOCOL_VERSION,
            server: format!("tandem-signaling {}", env!("CARGO_PKG_VERSION")),
            max_message_bytes: MAX_MESSAGE_BYTES,
            ice_servers: self.state.config.ice.public(),
        });
        Flow::Continue
    }

    fn join(&mut self, message: ClientMessage) -> Result<(), Refusal> {
        if let ClientMessage::Dashboard { available } = message {
            if self.seat.is_some() {
                return Err(Refusal::new(
                    ErrorCode::AlreadyJoined,
                    "this connection is in a session; open the dashboard on its own connection",
                ));
            }
            let account = self.rep()?.clone();
            self.state
                .registry
                .desk((self.id, self.tx.clone()), &account, available)?;
            self.desk = true;
            return Ok(());
        }
        if self.desk {
            return Err(Refusal::new(
                ErrorCode::AlreadyJoined,
                "this connection is a dashboard; join sessions on another connection",
            ));
        }
        if self.seat.is_some() {
            return Err(Refusal::new(
                ErrorCode::AlreadyJoined,
                "this connection is already in a session",
            ));
        }
        if let Some(key) = message.join_key() {
            tandem_protocol::check_join_key(key)
                .map_err(|why| Refusal::new(ErrorCode::BadMessage, why))?;
        }
        // Kept apart by the kind of join: a key is no resume token (nor the other way
        // round), and a customer's key cannot bring back an agent's place.
        let key = message
            .join_key()
            .map(|key| format!("{}:{key}", message.kind()));
        let key = key.as_deref();
        let registry = self.state.registry.clone();
        let conn = (self.id, self.tx.clone());
        let seat = match message {
            ClientMessage::JoinByLink { secret, name, .. } => {
                self.state.limits.join_with_secret(self.ip)?;
                registry.join_by_link(conn, &secret, &name, key)?
            }
            ClientMessage::JoinByNumber { number, name, .. } => {
                self.state.limits.join(self.ip)?;
                registry.join_by_number(conn, number, &name, key)?
            }
            ClientMessage::OpenSession { number } => {
                let account = self.rep_attempt()?;
                registry.open_session(conn, &account, number)?
            }
            ClientMessage::Assist { number, .. } => {
                let account = self.rep_attempt()?;
                registry.assist(conn, &account, number, key)?
            }
            ClientMessage::Resume { token } => {
                // Not counted against the address's joins: a resume token has 256 bits
                // and works once, and after a restart everyone behind one office
                // address resumes at the same moment.
                registry.resume(conn, &token, self.account.as_ref())?
            }
            ClientMessage::AcceptTransfer { number, .. } => {
                let account = self.rep_attempt()?;
                registry.accept_transfer(conn, &account, number, key)?
            }
            ClientMessage::AttachAgent { token, .. } => {
                self.state.limits.join(self.ip)?;
                registry.attach_agent(conn, &token, key)?
            }
            _ => {
                return Err(Refusal::new(ErrorCode::BadMessage, "not a join message"));
            }
        };
        self.seat = Some(seat);
        Ok(())
    }

    /// A rep's join by number (assist, open, accept): logged in, and within the limits
    /// for the address, the account and the site.
    fn rep_attempt(&self) -> Result<Account, Refusal> {
        let account = self.rep()?.clone();
        self.state.limits.rep_join(self.ip, account.id)?;
        Ok(account)
    }

    fn rep(&self) -> Result<&Account, Refusal> {
        self.account.as_ref().ok_or_else(|| {
            Refusal::new(
                ErrorCode::NotPermitted,
                "log in as a support rep first (your login may have expired)",
            )
        })
    }
}

/// Whether a client's close frame says it leaves: 1000 (normal) or 1001 (going away, as a
/// browser sends when its page closes), or no code at all (`WebSocket.close()`). Any
/// other code is taken as a lost connection: the participant may come back (R2).
fn leaves(frame: Option<&CloseFrame>) -> bool {
    frame.is_none_or(|frame| matches!(frame.code, 1000 | 1001))
}
