//! The agent's connections to the signaling server: typed protocol messages over a
//! WebSocket, one writer task so any part of the agent can send.

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use tandem_protocol::{
    ClientKind, ClientMessage, PROTOCOL_VERSION, ServerMessage, decode_server, encode,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// One WebSocket to the server.
pub struct Signal {
    pub tx: mpsc::UnboundedSender<ClientMessage>,
    rx: mpsc::UnboundedReceiver<ServerMessage>,
    /// The STUN servers of the welcome, then STUN and TURN from `ice_servers` after a join.
    pub ice_servers: Vec<tandem_protocol::IceServer>,
}

impl Signal {
    /// Connect, say hello, and wait for the welcome.
    pub async fn connect(ws_url: &str, kind: ClientKind) -> anyhow::Result<Signal> {
        let (stream, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .with_context(|| format!("cannot reach the Tandem server at {ws_url}"))?;
        let (mut sink, mut source) = stream.split();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ClientMessage>();
        let (in_tx, in_rx) = mpsc::unbounded_channel::<ServerMessage>();
        tokio::spawn(async move {
            while let Some(message) = out_rx.recv().await {
                if sink.send(Message::text(encode(&message))).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        tokio::spawn(async move {
            while let Some(Ok(frame)) = source.next().await {
                if let Message::Text(text) = frame {
                    match decode_server(&text) {
                        Ok(message) => {
                            if in_tx.send(message).is_err() {
                                break;
                            }
                        }
                        Err(e) => eprintln!("tandem-agent: ignoring a message: {e}"),
                    }
                }
            }
        });
        let mut signal = Signal {
            tx: out_tx,
            rx: in_rx,
            ice_servers: Vec::new(),
        };
        signal.send(ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            client: kind,
            software: format!("tandem-agent {}", env!("CARGO_PKG_VERSION")),
        });
        match signal.recv().await? {
            ServerMessage::Welcome { ice_servers, .. } => {
                signal.ice_servers = ice_servers;
                Ok(signal)
            }
            ServerMessage::Error { message, .. } => bail!("the server refused us: {message}"),
            other => bail!("unexpected first answer from the server: {other:?}"),
        }
    }

    pub fn send(&self, message: ClientMessage) {
        if self.tx.send(message).is_err() {
            eprintln!("tandem-agent: the connection to the server is closed");
        }
    }

    /// The next message; an error when the server closed the connection. The ICE servers
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
