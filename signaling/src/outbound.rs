//! A connection's outbound queue, bounded in messages and in bytes. Messages are encoded
//! when queued, so the bound is on what the server really holds. A client that does not
//! read what it is sent fills its queue and is disconnected (as a lost connection, so a
//! rep still gets the R2 grace period); it is never buffered without limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tandem_protocol::{ServerMessage, encode};
use tokio::sync::{Notify, mpsc};

/// At most this many messages wait for one connection's socket.
pub const MAX_QUEUED_MESSAGES: usize = 1024;
/// At most this many bytes of encoded messages wait for one connection's socket.
pub const MAX_QUEUED_BYTES: usize = 1 << 20;

/// What the server sends on a connection.
#[derive(Debug, Clone)]
pub enum Outbound {
    Message(ServerMessage),
    Close(Close),
}

/// Why the server closes a connection: each has its WebSocket close code and reason
/// (docs/protocol.md §1 lists them), and only these exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Close {
    /// 1000: the participant left or was removed (the reason says why, in the protocol's
    /// words: `left`, `denied`, `connection_lost`, `transferred`, `customer_left`).
    Removed(tandem_protocol::LeaveReason),
    /// 1000: the session ended.
    SessionEnded,
    /// 1002: the client speaks another protocol version.
    UnsupportedVersion,
    /// 1009: a frame over the size limit (the reason gives the sizes).
    TooLarge(String),
    /// 1012: the server is restarting; the session goes on, come back with `resume`.
    Restarting,
    /// 4001: the same participant was opened in another window.
    Replaced,
    /// 4002: no `hello` in time.
    HelloTimeout,
    /// 4003: the account was disabled or its role changed.
    AccountChanged,
    /// 4004: nothing heard for too long.
    Idle,
    /// 4008: far more messages than the rate limits allow.
    TooManyMessages,
}

impl Close {
    pub fn code(&self) -> u16 {
        match self {
            Close::Removed(_) | Close::SessionEnded => 1000,
            Close::UnsupportedVersion => 1002,
            Close::TooLarge(_) => 1009,
            Close::Restarting => 1012,
            Close::Replaced => 4001,
            Close::HelloTimeout => 4002,
            Close::AccountChanged => 4003,
            Close::Idle => 4004,
            Close::TooManyMessages => 4008,
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Close::Removed(why) => serde_json::to_value(why)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "removed".into()),
            Close::SessionEnded => "session ended".into(),
            Close::UnsupportedVersion => "unsupported protocol version".into(),
            Close::TooLarge(what) => what.clone(),
            Close::Restarting => {
                "the server is restarting; reconnecting to the same session".into()
            }
            Close::Replaced => "this session was opened in another window".into(),
            Close::HelloTimeout => "no hello in time".into(),
            Close::AccountChanged => {
                "your account was changed by an administrator; log in again".into()
            }
            Close::Idle => "nothing heard for too long".into(),
            Close::TooManyMessages => "too many messages".into(),
        }
    }
}

/// A frame ready for the socket.
#[derive(Debug)]
pub enum Frame {
    Text(String),
    Ping,
    Close { code: u16, reason: String },
}

#[derive(Debug, Default)]
struct Shared {
    queued_bytes: AtomicUsize,
    /// The connection is to end now: it overflowed, or the server closed it.
    ended: AtomicBool,
    notify: Notify,
}

/// The sending side, cloned into the registry for every participant.
#[derive(Debug, Clone)]
pub struct OutboundTx {
    tx: mpsc::Sender<Frame>,
    shared: Arc<Shared>,
}

/// The receiving side, owned by the connection's writer task.
#[derive(Debug)]
pub struct OutboundRx {
    rx: mpsc::Receiver<Frame>,
    shared: Arc<Shared>,
}

pub fn channel() -> (OutboundTx, OutboundRx) {
    let (tx, rx) = mpsc::channel(MAX_QUEUED_MESSAGES);
    let shared = Arc::new(Shared::default());
    (
        OutboundTx {
            tx,
            shared: shared.clone(),
        },
        OutboundRx { rx, shared },
    )
}

impl OutboundTx {
    /// Queue a message or a close. False when the connection is gone or has fallen too
    /// far behind (it is then being closed, and nothing more is queued).
    pub fn send(&self, out: Outbound) -> bool {
        let frame = match out {
            Outbound::Message(message) => Frame::Text(encode(&message)),
            Outbound::Close(close) => Frame::Close {
                code: close.code(),
                reason: close.reason(),
            },
        };
        self.push(frame)
    }

    /// A keep-alive ping.
    pub fn ping(&self) -> bool {
        self.push(Frame::Ping)
    }

    /// Send a close frame (if the socket still takes one) and end the connection now,
    /// whether or not the client answers.
    pub fn close_now(&self, close: Close) {
        self.send(Outbound::Close(close));
        self.end();
    }

    fn push(&self, frame: Frame) -> bool {
        if self.shared.ended.load(Ordering::Relaxed) {
            return false;
        }
        let size = match &frame {
            Frame::Text(text) => text.len(),
            Frame::Ping | Frame::Close { .. } => 0,
        };
        let queued = self.shared.queued_bytes.fetch_add(size, Ordering::Relaxed) + size;
        if queued > MAX_QUEUED_BYTES {
            self.shared.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            self.overflow();
            return false;
        }
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.queued_bytes.fetch_sub(size, Ordering::Relaxed);
                self.overflow();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.shared.queued_bytes.fetch_sub(size, Ordering::Relaxed);
                false
            }
        }
    }

    fn overflow(&self) {
        if !self.shared.ended.load(Ordering::Relaxed) {
            tracing::info!("a client did not read its messages; disconnecting it");
        }
        self.end();
    }

    fn end(&self) {
        if !self.shared.ended.swap(true, Ordering::Relaxed) {
            self.shared.notify.notify_one();
        }
    }

    /// Completes once this connection is to end: its queue overflowed, or the server
    /// closed it with [`OutboundTx::close_now`].
    pub async fn ended(&self) {
        if self.shared.ended.load(Ordering::Relaxed) {
            return;
        }
        self.shared.notify.notified().await;
    }

    /// Whether the connection ended because its queue overflowed or was closed now.
    pub fn is_ended(&self) -> bool {
        self.shared.ended.load(Ordering::Relaxed)
    }

    /// Bytes waiting to be written (for tests and metrics).
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued_bytes.load(Ordering::Relaxed)
    }
}

impl OutboundRx {
    pub async fn recv(&mut self) -> Option<Frame> {
        let frame = self.rx.recv().await?;
        Some(self.taken(frame))
    }

    /// A frame that has come already, if any (for tests).
    #[cfg(test)]
    pub fn try_recv(&mut self) -> Option<Frame> {
        let frame = self.rx.try_recv().ok()?;
        Some(self.taken(frame))
    }

    /// A frame is taken off the queue: its bytes are not waiting any more.
    fn taken(&self, frame: Frame) -> Frame {
        if let Frame::Text(text) = &frame {
            self.shared
                .queued_bytes
                .fetch_sub(text.len(), Ordering::Relaxed);
        }
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(n: usize) -> Outbound {
        Outbound::Message(ServerMessage::Notice {
            text: "x".repeat(n),
            topic: None,
        })
    }

    #[tokio::test]
    async fn a_reader_that_keeps_up_is_never_cut_off() {
        let (tx, mut rx) = channel();
        for _ in 0..10 * MAX_QUEUED_MESSAGES {
            assert!(tx.send(chat(100)));
            assert!(matches!(rx.recv().await, Some(Frame::Text(_))));
        }
        assert_eq!(tx.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn a_queue_full_of_messages_overflows_and_refuses_more() {
        let (tx, _rx) = channel();
        let mut sent = 0;
        while tx.send(chat(10)) {
            sent += 1;
            assert!(sent <= MAX_QUEUED_MESSAGES, "bounded in messages");
        }
        assert_eq!(sent, MAX_QUEUED_MESSAGES);
        tx.ended().await; // completes at once
        assert!(!tx.send(chat(1)), "nothing more after an overflow");
    }

    #[tokio::test]
    async fn a_queue_is_bounded_in_bytes() {
        let (tx, _rx) = channel();
        let mut sent = 0;
        while tx.send(chat(60_000)) {
            sent += 1;
        }
        assert!(
            sent * 60_000 <= MAX_QUEUED_BYTES,
            "{sent} big messages queued"
        );
        assert!(tx.queued_bytes() <= MAX_QUEUED_BYTES);
        tx.ended().await;
    }
}
