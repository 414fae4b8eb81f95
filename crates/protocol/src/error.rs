//! Error codes: stable, machine-readable, and sent with a human message.

use serde::{Deserialize, Serialize};

/// A stable error code. Clients branch on the code; the message beside it is for people.
/// Codes are never renamed or reused; new ones may be added (clients must treat an
/// unknown code like `internal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The text was not valid JSON, or a field was missing or of the wrong type.
    BadMessage,
    /// The `type` field named no message this side understands.
    UnknownType,
    /// The message was larger than [`crate::MAX_MESSAGE_BYTES`]; the connection closes.
    MessageTooLarge,
    /// The peer speaks a protocol version this side does not.
    UnsupportedVersion,
    /// A session message arrived before `hello` and a join.
    NotJoined,
    /// A join arrived on a connection that already joined.
    AlreadyJoined,
    /// No live session has that number, link or token.
    SessionNotFound,
    /// Too many attempts from this address; wait and try again (C2).
    RateLimited,
    /// The rep already helps as many customers as the site allows (R4).
    SessionFull,
    /// The session has ended.
    SessionEnded,
    /// The sender's role does not allow this (for example a customer admitting someone,
    /// or a former primary using a controlling feature, R9).
    NotPermitted,
    /// Only WebACD agents may do this (R10).
    NotWebacdAgent,
    /// A display name was empty, too long or held control characters.
    InvalidName,
    /// An email address was not one.
    InvalidAddress,
    /// A text was longer than allowed (chat, or the WebACD message's 345 characters).
    TooLong,
    /// A text was empty.
    Empty,
    /// No such participant in this session, or not the kind the command needs.
    UnknownParticipant,
    /// No such share in this session.
    UnknownShare,
    /// The command needs an active customer and there is none (R5).
    NoActiveCustomer,
    /// The active customer has no agent attached, so there is nothing to control.
    NoAgent,
    /// Only the active customer's agent may share (R7).
    NotActiveCustomer,
    /// The command needs a call and there is none, or the sender is not in it.
    NoCall,
    /// A call is already running.
    CallInProgress,
    /// A consent answer came with no request pending.
    NoPendingRequest,
    /// This customer already has an agent attached.
    AgentAlreadyAttached,
    /// The agent token was real but its time ran out (an old download, or a command
    /// copied long ago): open the join page again for a fresh one.
    AgentTokenExpired,
    /// A WebACD transfer is under way; only its receiver may take the session.
    TransferPending,
    /// No WebACD transfer is waiting for this rep.
    NoTransferPending,
    /// A WebACD transfer names an agent or queue that does not exist.
    UnknownTarget,
    /// A site rule refuses this (for example a second session without the privilege, R4).
    SiteLimit,
    /// Something failed on the server; the message says what.
    Internal,
    /// The server is stopping for a restart and did nothing: reconnect and `resume` (or
    /// send it again) once it is back.
    Restarting,
    /// A code this side does not know (a newer peer's): treat it like `internal`.
    #[serde(other)]
    Unknown,
}

/// A message that could not be read, with the code to send back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    pub code: ErrorCode,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    /// A code a newer server sends decodes, as `Unknown` (docs/protocol.md: clients treat
    /// it like `internal`), instead of failing the whole `error` message.
    #[test]
    fn a_code_this_side_does_not_know_decodes_as_unknown() {
        let code: ErrorCode = serde_json::from_str("\"a_code_from_the_future\"").expect("code");
        assert_eq!(code, ErrorCode::Unknown);
        let code: ErrorCode = serde_json::from_str("\"restarting\"").expect("code");
        assert_eq!(code, ErrorCode::Restarting);
        let message: crate::ServerMessage = serde_json::from_str(
            r#"{"type":"error","code":"a_code_from_the_future","message":"hm"}"#,
        )
        .expect("the error message still decodes");
        assert!(
            matches!(
                message,
                crate::ServerMessage::Error {
                    code: ErrorCode::Unknown,
                    ..
                }
            ),
            "{message:?}"
        );
    }
}
