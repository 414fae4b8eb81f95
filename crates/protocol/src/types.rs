//! Data carried inside messages: roles, participant and share descriptions, reasons.

use serde::{Deserialize, Serialize};

use crate::ids::{ParticipantId, SessionNumber, ShareId};

/// What a participant is in a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The rep who runs the session and must keep its page open (R2).
    PrimaryRep,
    /// Another rep who joined by number (R8); may be given control of the desktop.
    Assistant,
    /// A former primary after transferring the session's control (R9): sees and chats,
    /// controls nothing until control is transferred back.
    Observer,
    /// A person being helped (R4, R5).
    Customer,
    /// A customer's downloaded agent: captures, encodes, streams and injects for them.
    Agent,
    /// The server's recorder while a rep records the session: views every share like a
    /// viewer and writes what it receives to disk. Controls, chats and calls nothing.
    Recorder,
}

impl Role {
    /// Reps of any kind: the people on the support side.
    pub fn is_rep(self) -> bool {
        matches!(self, Role::PrimaryRep | Role::Assistant | Role::Observer)
    }
}

/// The session is being recorded: since when, and which rep started it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingInfo {
    pub started_by: ParticipantId,
    pub since: crate::ids::Timestamp,
    /// The recorder's own participant (it views the shares).
    pub recorder: ParticipantId,
}

/// Whether a participant is in the session proper or still waiting to be let in (C2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Admission {
    /// Joined by number alone; waits for a rep to admit them.
    Waiting,
    /// In the session.
    Admitted,
}

/// A participant as the participants panel shows them (R5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    pub id: ParticipantId,
    pub name: String,
    pub role: Role,
    pub admission: Admission,
    /// False while the connection is lost and the grace period runs (R2).
    pub connected: bool,
    /// For a customer: their agent, once it is attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<ParticipantId>,
    /// For an agent: the customer it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<ParticipantId>,
}

/// What is being shared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ShareSource {
    /// A whole desktop (the agent's X display, or the rep's screen).
    Desktop,
    /// One application window, by its title.
    Window { title: String },
    /// One monitor of the agent's desktop, by the system's name for it ("DP-1").
    Monitor { name: String },
}

/// A sharing activity everyone in the session can view (R6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareInfo {
    pub share: ShareId,
    /// The participant whose media it is: an agent or a rep's console.
    pub owner: ParticipantId,
    pub source: ShareSource,
}

/// Which peer-to-peer media stream a WebRTC negotiation message belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamRef {
    /// A share: negotiated between its owner and one viewer. `{"share": 3}`.
    Share(ShareId),
    /// The session's voice and video call: between two call members. `"call"`.
    Call,
    /// The call's sound for the recording: from a rep in the call to the recorder.
    /// `"recording"`.
    Recording,
}

/// An ICE candidate as the browser's `RTCIceCandidate.toJSON()` gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, rename = "sdpMid", skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(
        default,
        rename = "sdpMLineIndex",
        skip_serializing_if = "Option::is_none"
    )]
    pub sdp_mline_index: Option<u16>,
}

/// Who holds control of which customer's desktop (R8, R9, C1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlInfo {
    /// The rep whose mouse and keyboard events the agent injects.
    pub holder: ParticipantId,
    /// The agent that injects them.
    pub agent: ParticipantId,
}

/// Why control changed hands or ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlChange {
    /// The customer consented, or had already consented, and control was granted.
    Granted,
    /// The holder or the primary rep released it.
    Released,
    /// The customer revoked it at the agent (C1).
    RevokedByCustomer,
    /// The rep switched to another customer (R7).
    SwitchedCustomer,
    /// The holder, the agent or the customer left.
    ParticipantLeft,
    /// The session's control was transferred (R9) and the holder lost its controlling role.
    SessionTransferred,
}

/// Why a share stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareStopReason {
    /// Its owner stopped it (for an agent: the customer stopped sharing).
    StoppedByOwner,
    /// The owner started another share in its place.
    Replaced,
    /// The rep switched to another customer: every share ends (R7).
    SwitchedCustomer,
    /// The owner left the session.
    OwnerLeft,
}

/// Why a participant is no longer in the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// Left on purpose, or closed the page.
    Left,
    /// A rep turned them away from the waiting room (C2).
    Denied,
    /// The connection was lost and did not come back within the grace period.
    ConnectionLost,
    /// A WebACD transfer handed the session on; the transferring rep leaves (R10).
    Transferred,
    /// Their customer left, so the agent goes too.
    CustomerLeft,
}

/// Why the whole session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The primary rep pressed "End session".
    EndedByRep,
    /// The primary rep closed the session page or navigated away (R2).
    PrimaryLeft,
    /// The primary rep's connection was lost and did not return in time (R2).
    PrimaryConnectionLost,
    /// An administrator or the server ended it.
    Terminated,
}

impl EndReason {
    /// A sentence a customer can read on the "session ended" screen.
    pub fn describe(self) -> &'static str {
        match self {
            EndReason::EndedByRep => "The support rep ended the session.",
            EndReason::PrimaryLeft => "The support rep closed the session.",
            EndReason::PrimaryConnectionLost => {
                "The support rep's connection was lost and did not come back."
            }
            EndReason::Terminated => "The session was ended by the server.",
        }
    }
}

/// Where a WebACD transfer sends the session (R10).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TransferTarget {
    /// One WebACD agent, by account name.
    Agent { agent: String },
    /// A queue of agents, by name.
    Queue { queue: String },
}

/// A WebACD agent as the dashboards show them (R10).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebacdAgent {
    /// The account name, used as a transfer target.
    pub agent: String,
    pub name: String,
    pub available: bool,
    /// Live sessions in which this agent is the primary rep.
    pub sessions: u32,
}

/// A session transferred to an agent or a queue, waiting to be accepted (R10).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingTransfer {
    pub number: SessionNumber,
    /// The transferring rep's name.
    pub from: String,
    pub target: TransferTarget,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Offered to the receiving dashboard's agent: they may accept it.
    pub for_you: bool,
}

/// Who an invitation is for (R3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invitee {
    Customer,
    SupportRep,
}

/// Where an invitation stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum InviteState {
    /// Handed to the mail server; not yet confirmed.
    Sending,
    /// The mail server accepted it.
    Sent,
    /// It could not be sent; `reason` says why. It can be retried.
    Failed { reason: String },
    /// A prefilled message for the rep's own email program (`mailto:` URL).
    OwnEmailProgram { mailto: String },
}

/// One member of the voice and video call (R11).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallMember {
    pub participant: ParticipantId,
    pub muted: bool,
    pub video: bool,
}

/// The session's call, while there is one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallInfo {
    pub started_by: ParticipantId,
    pub members: Vec<CallMember>,
}

/// A STUN or TURN server for WebRTC, as `RTCIceServer` takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// What kind of program is speaking, sent in `hello`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// The rep's web console.
    Console,
    /// The customer's web page.
    Customer,
    /// The customer's downloaded agent.
    Agent,
}

/// Which way a file went (docs/protocol.md, "File transfer").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileDirection {
    /// From a rep's console to the customer's computer.
    ToCustomer,
    /// From the customer's computer to a rep's console.
    FromCustomer,
}

/// How a file transfer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileOutcome {
    /// Delivered whole, its SHA-256 checked by the receiver.
    Delivered,
    /// The customer said no (or did not pick a file).
    Declined,
    /// Larger than the site's limit; nothing was sent.
    TooLarge,
    /// Cancelled by either side before the end.
    Cancelled,
    /// It broke off (the connection went, the disk was full, the hash did not match);
    /// nothing was kept under the file's name.
    Failed,
}
