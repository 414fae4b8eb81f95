//! Messages from a client (console, customer page, agent) to the server.

use serde::{Deserialize, Serialize};

use crate::ids::{ParticipantId, SessionNumber, ShareId};
use crate::types::{
    ClientKind, FileDirection, FileOutcome, IceCandidate, Invitee, ShareSource, StreamRef,
    TransferTarget,
};

/// Every message a client may send. JSON objects tagged by `type` (snake_case).
///
/// The first group is about the connection (the server handles them itself); the rest are
/// commands to the session the connection has joined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    // --- connection ---
    /// First message on every connection: the protocol version the client speaks.
    Hello {
        protocol_version: u32,
        client: ClientKind,
        /// Free text such as `tandem-agent 0.1.0`, for logs.
        #[serde(default)]
        software: String,
    },
    /// A customer joins with the secret from a join link: admitted at once (C2).
    JoinByLink {
        secret: String,
        name: String,
        /// See [`check_join_key`](crate::check_join_key): the same join sent again after a lost
        /// connection comes back to the place it made instead of joining twice.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        join_key: Option<String>,
    },
    /// A customer joins by typing the session number: waits to be admitted (C2).
    JoinByNumber {
        number: SessionNumber,
        name: String,
        /// As `join_by_link`'s.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        join_key: Option<String>,
    },
    /// A logged-in rep opens the session they started (R1, R2). Authenticated by cookie.
    OpenSession { number: SessionNumber },
    /// A logged-in rep joins another rep's session as an assistant (R8).
    Assist {
        number: SessionNumber,
        /// As `join_by_link`'s.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        join_key: Option<String>,
    },
    /// A logged-in WebACD agent takes a session transferred to them or their queue (R10).
    AcceptTransfer {
        number: SessionNumber,
        /// As `join_by_link`'s.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        join_key: Option<String>,
    },
    /// An agent attaches to its customer with the one-time token from the join page.
    AttachAgent {
        token: String,
        /// As `join_by_link`'s: an attach sent again after a lost connection with the same
        /// key comes back to the agent's place, though the token is used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        join_key: Option<String>,
    },
    /// Come back after a lost connection, within the grace period (R2).
    Resume { token: String },
    /// A WebACD agent's dashboard: receive the queue view and transfer offers, and say
    /// whether this agent is available for transfers (R10). Sent again to change it.
    Dashboard { available: bool },

    // --- session commands ---
    /// Let a waiting customer in (C2).
    Admit { participant: ParticipantId },
    /// Turn a waiting customer away (C2).
    Deny { participant: ParticipantId },
    /// Make this customer the one being helped (R5). Switching ends every share (R7).
    SetActiveCustomer { participant: ParticipantId },
    /// A chat line to everyone in the session (R11).
    Chat { text: String },
    /// Invite a customer or another rep by email (R3).
    Invite {
        invitee: Invitee,
        address: String,
        /// True: the server returns a prefilled `mailto:` instead of sending mail itself.
        #[serde(default)]
        own_email_program: bool,
        /// The email's language, the inviting console's (`en`, `nb`); absent or unknown:
        /// English.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        language: Option<String>,
    },
    /// Send a failed invitation again (R3). Handled by the server, which keeps invitations.
    RetryInvite {
        invite: u64,
        /// As `invite`'s `language`: the retrying console's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        language: Option<String>,
    },
    /// Ask the active customer's agent to share (the agent asks the customer, C1).
    RequestShare,
    /// The customer refused to share (sent by the agent, C1).
    DeclineShare,
    /// The sender starts sharing (an agent after consent, or a rep's console, R6).
    StartShare { source: ShareSource },
    /// The sender stops one of its shares.
    StopShare { share: ShareId },
    /// The sender wants to watch a share; its owner will send an `offer`.
    ViewShare { share: ShareId },
    /// The sender no longer watches a share.
    StopViewing { share: ShareId },
    /// A WebRTC offer for `to`, relayed by the server.
    Offer {
        to: ParticipantId,
        stream: StreamRef,
        sdp: String,
    },
    /// A WebRTC answer for `to`, relayed by the server.
    Answer {
        to: ParticipantId,
        stream: StreamRef,
        sdp: String,
    },
    /// A trickled ICE candidate for `to`, relayed by the server.
    IceCandidate {
        to: ParticipantId,
        stream: StreamRef,
        candidate: IceCandidate,
    },
    /// The primary rep asks to control the active customer's desktop (C1).
    RequestControl,
    /// The primary rep gives control of the desktop to an assistant (R8).
    GiveControl { to: ParticipantId },
    /// The holder (or the primary rep) ends control.
    ReleaseControl,
    /// The customer's answer to a control request, sent by the agent (C1).
    ControlConsent { granted: bool },
    /// The customer takes control back at the agent (C1).
    RevokeControl,
    /// The agent reports how a file transfer with a rep's console ended, for the audit
    /// log (C3). The file itself goes over the peer connection, never the server.
    FileTransfer {
        /// The participant at the other end (a rep).
        peer: ParticipantId,
        direction: FileDirection,
        /// The file's name as the sender gave it: 1 to 255 characters.
        name: String,
        size: u64,
        /// The SHA-256 of the content, 64 lowercase hex digits (absent when nothing was
        /// offered yet, e.g. the customer declined to pick a file).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        outcome: FileOutcome,
        /// Where the customer's computer saved it (a name in the Downloads folder).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        saved_as: Option<String>,
    },
    /// The primary rep makes another rep the primary (R9); also used to transfer it back.
    TransferSession { to: ParticipantId },
    /// A WebACD agent hands the session to another agent or a queue (R10).
    WebacdTransfer {
        target: TransferTarget,
        /// At most 345 characters.
        #[serde(default)]
        message: Option<String>,
    },
    /// A rep starts the voice call (R11).
    StartCall,
    /// Join the call, with or without camera.
    JoinCall {
        #[serde(default)]
        video: bool,
    },
    /// Mute or unmute, camera on or off.
    CallMedia { muted: bool, video: bool },
    /// Leave the call; the session goes on.
    LeaveCall,
    /// End the call for everyone (its starter or the primary rep).
    EndCall,
    /// A rep (the primary or an assistant) starts recording the session, where the site
    /// allows it; everyone gets `recording_state`.
    StartRecording,
    /// A rep stops the recording.
    StopRecording,
    /// Leave the session. From the primary rep this ends it (R2).
    Leave,
    /// The primary rep ends the session for everyone.
    EndSession,
}

impl ClientMessage {
    /// The `type` tag, for logs and error replies.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Hello { .. } => "hello",
            ClientMessage::JoinByLink { .. } => "join_by_link",
            ClientMessage::JoinByNumber { .. } => "join_by_number",
            ClientMessage::OpenSession { .. } => "open_session",
            ClientMessage::Assist { .. } => "assist",
            ClientMessage::AcceptTransfer { .. } => "accept_transfer",
            ClientMessage::AttachAgent { .. } => "attach_agent",
            ClientMessage::Resume { .. } => "resume",
            ClientMessage::Dashboard { .. } => "dashboard",
            ClientMessage::Admit { .. } => "admit",
            ClientMessage::Deny { .. } => "deny",
            ClientMessage::SetActiveCustomer { .. } => "set_active_customer",
            ClientMessage::Chat { .. } => "chat",
            ClientMessage::Invite { .. } => "invite",
            ClientMessage::RetryInvite { .. } => "retry_invite",
            ClientMessage::RequestShare => "request_share",
            ClientMessage::DeclineShare => "decline_share",
            ClientMessage::StartShare { .. } => "start_share",
            ClientMessage::StopShare { .. } => "stop_share",
            ClientMessage::ViewShare { .. } => "view_share",
            ClientMessage::StopViewing { .. } => "stop_viewing",
            ClientMessage::Offer { .. } => "offer",
            ClientMessage::Answer { .. } => "answer",
            ClientMessage::IceCandidate { .. } => "ice_candidate",
            ClientMessage::RequestControl => "request_control",
            ClientMessage::GiveControl { .. } => "give_control",
            ClientMessage::ReleaseControl => "release_control",
            ClientMessage::ControlConsent { .. } => "control_consent",
            ClientMessage::RevokeControl => "revoke_control",
            ClientMessage::FileTransfer { .. } => "file_transfer",
            ClientMessage::TransferSession { .. } => "transfer_session",
            ClientMessage::WebacdTransfer { .. } => "webacd_transfer",
            ClientMessage::StartCall => "start_call",
            ClientMessage::JoinCall { .. } => "join_call",
            ClientMessage::CallMedia { .. } => "call_media",
            ClientMessage::LeaveCall => "leave_call",
            ClientMessage::EndCall => "end_call",
            ClientMessage::StartRecording => "start_recording",
            ClientMessage::StopRecording => "stop_recording",
            ClientMessage::Leave => "leave",
            ClientMessage::EndSession => "end_session",
        }
    }

    /// The client's own key for a join (`join_by_link`, `join_by_number`, `assist`,
    /// `accept_transfer`, `attach_agent`), if it gave one.
    pub fn join_key(&self) -> Option<&str> {
        match self {
            ClientMessage::JoinByLink { join_key, .. }
            | ClientMessage::JoinByNumber { join_key, .. }
            | ClientMessage::Assist { join_key, .. }
            | ClientMessage::AcceptTransfer { join_key, .. }
            | ClientMessage::AttachAgent { join_key, .. } => join_key.as_deref(),
            _ => None,
        }
    }

    /// True for the messages about the connection itself, which the server handles
    /// before a session exists for the connection.
    pub fn is_connection_level(&self) -> bool {
        matches!(
            self,
            ClientMessage::Hello { .. }
                | ClientMessage::JoinByLink { .. }
                | ClientMessage::JoinByNumber { .. }
                | ClientMessage::OpenSession { .. }
                | ClientMessage::Assist { .. }
                | ClientMessage::AcceptTransfer { .. }
                | ClientMessage::AttachAgent { .. }
                | ClientMessage::Resume { .. }
                | ClientMessage::Dashboard { .. }
        )
    }
}
