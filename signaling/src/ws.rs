//! The WebSocket endpoint: it only moves messages between the socket and the registry.
//! Size caps and decoding happen here; every rule is the session's.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use tandem_protocol::{
    ClientMessage, ErrorCode, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, ServerMessage, decode_client,
    encode,
};
use tokio::sync::mpsc;

use crate::AppState;
use crate::auth::{account_from_headers, same_origin};
use crate::live::{Outbound, OutboundTx, Refusal, Seat};
use crate::store::Account;

/// Frames up to this size are read and refused with a reason; larger ones end the
/// connection at the WebSocket layer.
const HARD_FRAME_LIMIT: usize = 1 << 20;

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
    // Most connections sit idle for the whole session: small buffers (grown as a message
    // needs) keep an idle connection at a few KiB instead of 256 KiB.
    ws.max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .on_upgrade(move |socket| connection(socket, state, addr.ip(), account))
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
}

/// What to do after a message.
enum Flow {
    Continue,
    Close,
}

async fn connection(socket: WebSocket, state: AppState, ip: IpAddr, account: Option<Account>) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Outbound>();
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let frame = match out {
                Outbound::Message(message) => Message::Text(Utf8Bytes::from(encode(&message))),
                Outbound::Close { code, reason } => {
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

    let id = state.registry.next_id();
    let mut conn = Connection {
        state,
        ip,
        account,
        id,
        tx,
        said_hello: false,
        seat: None,
        desk: false,
    };
    // A close frame from the client means it left on purpose (page closed or navigated
    // away); anything else is a lost connection (R2).
    let clean = loop {
        let Some(frame) = stream.next().await else {
            break false;
        };
        match frame {
            Ok(Message::Text(text)) => {
                if let Flow::Close = conn.text(text.as_str()) {
                    break true;
                }
            }
            Ok(Message::Binary(_)) => conn.error(
                ErrorCode::BadMessage,
                "binary frames are not part of the protocol; send JSON text",
                None,
            ),
            Ok(Message::Close(_)) => break true,
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
    drop(conn);
    if writer.await.is_err() {
        tracing::debug!("writer task ended abnormally");
    }
}

impl Connection {
    fn send(&self, message: ServerMessage) {
        if self.tx.send(Outbound::Message(message)).is_err() {
            tracing::debug!("reply to a closed connection dropped");
        }
    }

    fn error(&self, code: ErrorCode, message: impl Into<String>, request: Option<&str>) {
        self.send(ServerMessage::Error {
            code,
            message: message.into(),
            request: request.map(str::to_owned),
        });
    }

    fn close(&self, code: u16, reason: impl Into<String>) {
        let close = Outbound::Close {
            code,
            reason: reason.into(),
        };
        if self.tx.send(close).is_err() {
            tracing::debug!("close on a closed connection");
        }
    }

    fn text(&mut self, text: &str) -> Flow {
        let message = match decode_client(text) {
            Ok(message) => message,
            Err(e) if e.code == ErrorCode::MessageTooLarge => {
                self.error(e.code, e.message.clone(), None);
                self.close(
                    1009,
                    format!(
                        "message too large: {} bytes, limit {MAX_MESSAGE_BYTES}",
                        text.len()
                    ),
                );
                return Flow::Close;
            }
            Err(e) => {
                self.error(e.code, e.message, None);
                return Flow::Continue;
            }
        };
        let kind = message.kind();
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
            self.close(1002, "unsupported protocol version");
            return Flow::Close;
        }
        self.said_hello = true;
        self.send(ServerMessage::Welcome {
            protocol_version: PROTOCOL_VERSION,
            server: format!("tandem-signaling {}", env!("CARGO_PKG_VERSION")),
            max_message_bytes: MAX_MESSAGE_BYTES,
            ice_servers: self.state.config.ice_servers.clone(),
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
        let registry = self.state.registry.clone();
        let conn = (self.id, self.tx.clone());
        let seat = match message {
            ClientMessage::JoinByLink { secret, name } => {
                self.rate_limit()?;
                registry.join_by_link(conn, &secret, &name)?
            }
            ClientMessage::JoinByNumber { number, name } => {
                self.rate_limit()?;
                registry.join_by_number(conn, number, &name)?
            }
            ClientMessage::OpenSession { number } => {
                registry.open_session(conn, self.rep()?, number)?
            }
            ClientMessage::Assist { number } => registry.assist(conn, self.rep()?, number)?,
            ClientMessage::Resume { token } => {
                self.rate_limit()?;
                registry.resume(conn, &token)?
            }
            ClientMessage::AcceptTransfer { number } => {
                registry.accept_transfer(conn, self.rep()?, number)?
            }
            ClientMessage::AttachAgent { token } => {
                self.rate_limit()?;
                registry.attach_agent(conn, &token)?
            }
            _ => {
                return Err(Refusal::new(ErrorCode::BadMessage, "not a join message"));
            }
        };
        self.seat = Some(seat);
        Ok(())
    }

    fn rate_limit(&self) -> Result<(), Refusal> {
        if self.state.limits.join(self.ip) {
            Ok(())
        } else {
            Err(Refusal::new(
                ErrorCode::RateLimited,
                "too many attempts from your address; wait a minute and try again",
            ))
        }
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
