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
    /// Customers the primary rep already helps in their other sessions (R4): the sum of
    /// [`Session::customer_count`](crate::Session::customer_count) over them. Only a join
    /// by link is checked against the maximum; a join by number waits without a place.
    pub rep_load_elsewhere: u32,
}

#[derive(Clone, Debug)]
pub enum JoinKind {
    /// By the join link's secret: admitted at once (C2), taking one of the rep's places
    /// (R4), even when the waiting room is full.
    CustomerByLink,
    /// By the session number alone: waits in the waiting room (C2), within its cap
    /// ([`SessionConfig::max_waiting`]) and without taking a place until admitted
    /// ([`Event::Admit`]).
    CustomerByNumber,
    /// A rep who typed the session number under "Assist Session" (R8).
    Assistant(RepInfo),
    /// A WebACD agent taking a session transferred to them or their queue (R10).
    TransferReceiver(RepInfo),
    /// A customer's agent, attached by the one-time token from their join page.
    Agent { customer: ParticipantId },
}

/// The timers a session asks the server to run.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Timer {
    /// The participant's connection is lost; when this fires they are gone (R2).
    Reconnect(ParticipantId),
}

/// Everything that can happen to a session.
#[derive(Clone, Debug)]
pub enum Event {
    Join(Join),
    /// A message from a participant's connection.
    ///
    /// `ClientMessage::Admit` should come as [`Event::Admit`] instead, which carries the
    /// rep's load elsewhere; as a command it is checked as if the rep had no customers in
    /// other sessions.
    Command {
        from: ParticipantId,
        message: ClientMessage,
    },
    /// A rep admits a waiting customer (C2): the runtime's form of `ClientMessage::Admit`,
    /// with what R4's maximum needs. Admission is where a customer who joined by number
    /// takes a place; beyond the maximum it is refused and the customer waits on.
    Admit {
        from: ParticipantId,
        participant: ParticipantId,
        /// As in [`Join::rep_load_elsewhere`].
        rep_load_elsewhere: u32,
    },
    /// A rep starts recording (the runtime's form of `ClientMessage::StartRecording`): the
    /// runtime brings its recorder in as `recorder`, a participant id it drew, whose
    /// connection it has ready so the recorder gets its `joined`.
    StartRecording {
        from: ParticipantId,
        recorder: ParticipantId,
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
        /// The administrator's account, when one did (`None`: the server, e.g.
        /// `tandem-signaling end-sessions`).
        by: Option<String>,
    },
}
