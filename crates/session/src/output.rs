//! What the session asks its runtime to do.

use tandem_protocol::{
    EndReason, Invitee, LeaveReason, ParticipantId, ServerMessage, SessionNumber, Timestamp,
    TransferTarget,
};

use crate::audit::{Actor, AuditAction, AuditRecord};
use crate::event::Timer;

/// One thing for the runtime to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Deliver a message to every connection of one participant.
    Send {
        to: ParticipantId,
        message: ServerMessage,
    },
    /// Append to the audit log (C3).
    Audit(AuditRecord),
    /// Fire `timer` at `at` (replacing an earlier one with the same identity).
    SetTimer {
        timer: Timer,
        at: Timestamp,
    },
    CancelTimer(Timer),
    /// Close this participant's connections: they are no longer in the session.
    Disconnect {
        participant: ParticipantId,
        reason: LeaveReason,
    },
    /// This customer is in and has no agent: give them a one-time agent token (the
    /// runtime makes it, delivers `agent_token` and renews it while they are without
    /// one). Comes right after their `joined`.
    AgentTokenWanted {
        customer: ParticipantId,
    },
    /// Send (or prepare) an email invitation (R3).
    Invite(Invitation),
    /// Send a failed email invitation again (R3), for a rep of the session; the runtime
    /// finds it by id and reports to `by` with `invite_status`.
    RetryInvite {
        by: ParticipantId,
        invite: u64,
        language: Option<String>,
    },
    /// Offer the session to a WebACD agent or queue (R10).
    Transfer(WebacdTransfer),
    /// The session is over; drop it once the messages above are delivered.
    Ended {
        reason: EndReason,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    pub session: SessionNumber,
    pub by: ParticipantId,
    pub by_name: String,
    pub invitee: Invitee,
    pub address: String,
    pub own_email_program: bool,
    /// The email's language as the console named it (the server reads it, R3).
    pub language: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebacdTransfer {
    pub session: SessionNumber,
    pub from_name: String,
    pub from_account: String,
    pub target: TransferTarget,
    pub message: Option<String>,
}

/// Collects a handler's outputs; it holds the event's time so audit records carry it.
#[derive(Debug)]
pub(crate) struct Outbox {
    pub now: Timestamp,
    pub session: SessionNumber,
    outputs: Vec<Output>,
}

impl Outbox {
    pub fn new(session: SessionNumber, now: Timestamp) -> Self {
        Self {
            now,
            session,
            outputs: Vec::new(),
        }
    }

    pub fn send(&mut self, to: ParticipantId, message: ServerMessage) {
        self.outputs.push(Output::Send { to, message });
    }

    pub fn audit(&mut self, actor: Option<Actor>, action: AuditAction) {
        self.outputs.push(Output::Audit(AuditRecord {
            at: self.now,
            session: self.session,
            actor,
            action,
        }));
    }

    pub fn push(&mut self, output: Output) {
        self.outputs.push(output);
    }

    pub fn into_outputs(self) -> Vec<Output> {
        self.outputs
    }
}
