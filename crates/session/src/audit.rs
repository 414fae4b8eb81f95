//! The audit trail (C3): one record for every change of a session's state.

use serde::{Deserialize, Serialize};
use tandem_protocol::{
    ControlChange, EndReason, FileDirection, FileOutcome, Invitee, LeaveReason, ParticipantId,
    Role, SessionNumber, ShareId, ShareSource, ShareStopReason, Timestamp, TransferTarget,
};

/// One append-only audit entry: who did what, when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: Timestamp,
    pub session: SessionNumber,
    /// Who caused it; `None` when the server or a timer did.
    pub actor: Option<Actor>,
    #[serde(flatten)]
    pub action: AuditAction,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub participant: ParticipantId,
    pub name: String,
    /// The rep's account, for reps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AuditAction {
    Started {
        primary: ParticipantId,
    },
    Joined {
        participant: ParticipantId,
        role: Role,
    },
    Waiting {
        participant: ParticipantId,
    },
    Admitted {
        participant: ParticipantId,
    },
    Denied {
        participant: ParticipantId,
    },
    Left {
        participant: ParticipantId,
        reason: LeaveReason,
    },
    ConnectionLost {
        participant: ParticipantId,
    },
    Reconnected {
        participant: ParticipantId,
    },
    ActiveCustomer {
        customer: ParticipantId,
        previous: Option<ParticipantId>,
    },
    ShareRequested {
        agent: ParticipantId,
    },
    ShareDeclined {
        agent: ParticipantId,
    },
    ShareStarted {
        share: ShareId,
        owner: ParticipantId,
        source: ShareSource,
    },
    ShareStopped {
        share: ShareId,
        reason: ShareStopReason,
    },
    ViewerJoined {
        share: ShareId,
        viewer: ParticipantId,
    },
    ViewerLeft {
        share: ShareId,
        viewer: ParticipantId,
    },
    ControlRequested {
        grantee: ParticipantId,
        agent: ParticipantId,
    },
    ControlGranted {
        holder: ParticipantId,
        agent: ParticipantId,
    },
    ControlDeclined {
        agent: ParticipantId,
    },
    ControlEnded {
        reason: ControlChange,
    },
    ControlRevoked {
        agent: ParticipantId,
    },
    /// A file went between a rep's console and the customer's agent, or failed to.
    FileTransfer {
        agent: ParticipantId,
        peer: ParticipantId,
        direction: FileDirection,
        name: String,
        size: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        outcome: FileOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        saved_as: Option<String>,
    },
    PrimaryTransferred {
        from: ParticipantId,
        to: ParticipantId,
    },
    WebacdTransfer {
        target: TransferTarget,
        message: Option<String>,
    },
    TransferAccepted {
        rep: ParticipantId,
    },
    Invited {
        invitee: Invitee,
        address: String,
        own_email_program: bool,
    },
    CallStarted,
    CallJoined {
        participant: ParticipantId,
    },
    CallLeft {
        participant: ParticipantId,
    },
    CallEnded,
    /// A rep started recording; `recorder` is the participant that records.
    RecordingStarted {
        recorder: ParticipantId,
    },
    RecordingStopped {
        recorder: ParticipantId,
    },
    /// A recording of the session was deleted, after the session or during it: by an
    /// account (`by`, its name), or by the server when the retention ran out (`by` none).
    RecordingDeleted {
        recording: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    Ended {
        reason: EndReason,
        /// The administrator's account that ended it from outside the session.
        #[serde(skip_serializing_if = "Option::is_none")]
        admin: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record read back from its JSON is the record (the server holds records as JSON
    /// until the store has them).
    #[test]
    fn c3_records_read_back_from_json_unchanged() {
        let number: SessionNumber = "123456789".parse().expect("number");
        let records = [
            AuditRecord {
                at: Timestamp(1),
                session: number,
                actor: Some(Actor {
                    participant: ParticipantId(3),
                    name: "Rita".into(),
                    account: Some("rita".into()),
                }),
                action: AuditAction::ControlGranted {
                    holder: ParticipantId(3),
                    agent: ParticipantId(7),
                },
            },
            AuditRecord {
                at: Timestamp(2),
                session: number,
                actor: None,
                action: AuditAction::Ended {
                    reason: EndReason::Terminated,
                    admin: None,
                },
            },
            AuditRecord {
                at: Timestamp(3),
                session: number,
                actor: None,
                action: AuditAction::CallStarted,
            },
        ];
        for record in records {
            let json = serde_json::to_string(&record).expect("json");
            let back: AuditRecord = serde_json::from_str(&json).expect("read back");
            assert_eq!(back, record, "{json}");
        }
    }
}
