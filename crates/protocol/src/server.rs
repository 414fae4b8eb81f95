//! Messages from the server to a client.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ids::{ParticipantId, SessionNumber, ShareId, Timestamp};
use crate::types::{
    CallInfo, ControlChange, ControlInfo, EndReason, IceCandidate, IceServer, InviteState, Invitee,
    LeaveReason, ParticipantInfo, RecordingInfo, Role, ShareInfo, ShareStopReason, StreamRef,
    TransferTarget, WaitingTransfer, WebacdAgent,
};

/// Everything a client needs to draw the session when it (re)joins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSnapshot {
    pub number: SessionNumber,
    /// The receiving connection's own participant.
    pub you: ParticipantId,
    pub role: Role,
    pub participants: Vec<ParticipantInfo>,
    pub active_customer: Option<ParticipantId>,
    pub shares: Vec<ShareInfo>,
    pub control: Option<ControlInfo>,
    pub call: Option<CallInfo>,
    /// R1: the rep ticked "Email" when starting, so the console opens the invite dialog.
    #[serde(default)]
    pub open_invite_dialog: bool,
    /// R10: the personal message of the WebACD transfer this rep accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_message: Option<String>,
    /// The largest file a rep and the customer may send each other, in bytes (the admin's
    /// setting); 0: file transfer is off on this site.
    #[serde(default)]
    pub max_file_bytes: u64,
    /// The session is being recorded (everyone sees it); absent: it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingInfo>,
    /// The site lets reps record sessions (the admin's setting); absent: it does not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recording_allowed: bool,
}

/// Every message the server may send. JSON objects tagged by `type` (snake_case).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Answer to `hello`.
    Welcome {
        protocol_version: u32,
        server: String,
        /// The largest message the server accepts, in bytes.
        max_message_bytes: usize,
        /// STUN servers only: TURN credentials are handed out after a join, in
        /// `ice_servers`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServer>,
    },
    /// After a join (before `joined`), and again on every resume: the STUN and TURN
    /// servers for this participant's peer connections. TURN entries carry short-lived
    /// credentials issued to this participant alone (coturn's `use-auth-secret` scheme).
    IceServers { ice_servers: Vec<IceServer> },
    /// The connection is in the session; the full picture follows.
    Joined(SessionSnapshot),
    /// Keep this to `resume` after a lost connection (R2).
    ResumeToken { token: String },
    /// To a customer: the one-time token their agent attaches with (`attach_agent`). A new
    /// one follows whenever their agent leaves, so a restarted agent can attach again.
    AgentToken { token: String },
    /// Joined by number: waiting for a rep to admit (C2).
    Waiting { number: SessionNumber },
    /// A rep turned the customer away (C2). The connection closes.
    Denied { message: String },
    /// Someone joined (or is waiting, C2).
    ParticipantJoined { participant: ParticipantInfo },
    /// Someone's role, admission, connection or agent changed.
    ParticipantUpdated { participant: ParticipantInfo },
    /// Someone left.
    ParticipantLeft {
        participant: ParticipantId,
        reason: LeaveReason,
    },
    /// The customer being helped changed (R5).
    ActiveCustomer { participant: Option<ParticipantId> },
    /// A chat line (R11).
    Chat {
        from: ParticipantId,
        name: String,
        text: String,
        at: Timestamp,
    },
    /// Sent to the agent: a rep asks the customer to share (C1).
    ShareRequested { by: ParticipantId, name: String },
    /// The customer refused to share (C1).
    ShareDeclined { customer: ParticipantId },
    /// A share began; everyone may view it (R6).
    ShareStarted { share: ShareInfo },
    /// A share ended; close its viewer. Sent to its owner too, who stops capturing (R7).
    ShareStopped {
        share: ShareId,
        reason: ShareStopReason,
    },
    /// Sent to a share's owner: send an `offer` to this viewer.
    ViewerJoined {
        share: ShareId,
        viewer: ParticipantId,
    },
    /// Sent to a share's owner: this viewer is gone; close its peer connection.
    ViewerLeft {
        share: ShareId,
        viewer: ParticipantId,
    },
    /// A relayed WebRTC offer.
    Offer {
        from: ParticipantId,
        stream: StreamRef,
        sdp: String,
    },
    /// A relayed WebRTC answer.
    Answer {
        from: ParticipantId,
        stream: StreamRef,
        sdp: String,
    },
    /// A relayed ICE candidate.
    IceCandidate {
        from: ParticipantId,
        stream: StreamRef,
        candidate: IceCandidate,
    },
    /// Sent to the agent: ask the customer whether this rep may control (C1).
    ControlRequested { by: ParticipantId, name: String },
    /// The customer refused control (C1).
    ControlDeclined { agent: ParticipantId },
    /// Who controls now (`control` null: nobody), and why it changed.
    ControlChanged {
        control: Option<ControlInfo>,
        reason: ControlChange,
    },
    /// The session's primary rep changed (R9).
    PrimaryChanged {
        primary: ParticipantId,
        former: ParticipantId,
    },
    /// The session is being handed to another WebACD agent or queue (R10).
    Transferring { target: TransferTarget },
    /// Sent to a WebACD agent's dashboard: a session is offered to them (R10).
    TransferOffered {
        number: SessionNumber,
        from: String,
        target: TransferTarget,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The WebACD view on an agent's dashboard (R10): whether this agent is available,
    /// every agent's availability and load, and the sessions waiting for an agent.
    WebacdState {
        available: bool,
        agents: Vec<WebacdAgent>,
        waiting: Vec<WaitingTransfer>,
    },
    /// Where an invitation stands (R3).
    InviteStatus {
        invite: u64,
        invitee: Invitee,
        address: String,
        #[serde(flatten)]
        state: InviteState,
    },
    /// Recording started (`recording` set) or stopped (null). To everyone in the session,
    /// agents included: the customer's agent shows it too.
    RecordingState { recording: Option<RecordingInfo> },
    /// The call changed (R11); `call` null: there is none.
    CallState { call: Option<CallInfo> },
    /// Something a person should read that needs no action.
    Notice {
        text: String,
        /// What it is about, when a later message makes it stale: `"control"` (a control
        /// request waiting for the customer), replaced by the next `control_changed` or
        /// `control_declined`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
    },
    /// The session is over for everyone. The connection closes.
    SessionEnded { reason: EndReason, message: String },
    /// A message could not be handled. The connection stays unless the code says it closes.
    Error {
        code: ErrorCode,
        message: String,
        /// The `type` of the message that caused it, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
    },
}

impl ServerMessage {
    /// An error reply.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
            request: None,
        }
    }
}
