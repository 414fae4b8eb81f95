//! What the session reacts to: joins, commands, connection changes and timers.

use tandem_protocol::{ClientMessage, EndReason, ParticipantId, SessionNumber};

use crate::config::{RepInfo, SessionConfig};

/// How a session begins (R1): the server has authenticated the rep and drawn the number.
#[derive(Clone, Debug)]
pub struct Start {
    pub number: SessionNumber,
    /// The participant the rep's session page will connect as.
    pub primary: ParticipantId,
    pub name: String,
    pub rep: RepInfo,
    /// R1's "Email" checkbox: open the invite dialog once the session page opens.
    pub email_invite: bool,
    pub config: SessionConfig,
}

/// A new participant, already authenticated by the server for the way they join.
#[derive(Clone, Debug)]
pub struct Join {
    pub id: ParticipantId,
    pub name: String,
    pub kind: JoinKind,
    /// Customers the primary rep already helps in their other sessions (R4).
    pub rep_load_elsewhere: u32,
}

#[derive(Clone, Debug)]
pub enum JoinKind {
    /// By the join link's secret: admitted at once (C2).
    CustomerByLink,
    /// By the session number alone: waits in the waiting room (C2).
    CustomerByNumber,
    /// A rep who typed the session number under "Assist Session" (R8).
    Assistant(RepInfo),
    /// A WebACD agent taking a session transferred to them or their queue (R10).
    TransferReceiver(RepInfo),
    /// A customer's agent, attached by the one-time token from their join page.
    Agent { customer: ParticipantId },
}

/// The timers a session asks the server to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// The participant's connection is lost; when this fires they are gone (R2).
    Reconnect(ParticipantId),
}

/// Everything that can happen to a session.
#[derive(Clone, Debug)]
pub enum Event {
    Join(Join),
    /// A message from a participant's connection.
    Command {
        from: ParticipantId,
        message: ClientMessage,
    },
    /// The participant's connection opened (the primary's first time) or came back.
    Connected {
        who: ParticipantId,
    },
    /// The connection dropped without a goodbye: a grace period starts (R2).
    ConnectionLost {
        who: ParticipantId,
    },
    /// The page was closed or navigated away: the participant leaves now (R2).
    PageClosed {
        who: ParticipantId,
    },
    /// A timer the session asked for has come due.
    TimerFired(Timer),
    /// An administrator or the server ends the session.
    Terminate {
        reason: EndReason,
    },
}
