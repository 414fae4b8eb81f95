//! Why the session refused an event. Every refusal maps to a wire error code.

use tandem_protocol::{ErrorCode, ParticipantId, ShareId};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session has ended")]
    Ended,
    #[error("participant {0} is not in this session")]
    UnknownParticipant(ParticipantId),
    #[error("participant {0} is already in this session")]
    DuplicateParticipant(ParticipantId),
    /// The sentence says what the sender may not do and, where it helps, what to do instead.
    #[error("{0}")]
    NotPermitted(&'static str),
    #[error("only WebACD agents can transfer a session to an agent or a queue")]
    NotWebacdAgent,
    #[error(
        "the support rep is already helping {max} customers, the most this site allows; \
         please try again later"
    )]
    SessionFull { max: u32 },
    /// A rep tried to admit a waiting customer beyond R4's maximum; the customer waits on.
    #[error(
        "you are already helping {max} customers, the most this site allows; the customer \
         stays in the waiting room until one of your customers leaves"
    )]
    AdmitBeyondMaximum { max: u32 },
    /// A join by number found the waiting room at its cap (C2).
    #[error("the waiting room of this session is full; ask your support rep for the join link")]
    WaitingRoomFull { max: u32 },
    #[error("{0}")]
    InvalidName(&'static str),
    #[error("{0:?} is not an email address")]
    InvalidAddress(String),
    #[error("the {what} has {len} characters; at most {max} are allowed")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("the {0} is empty")]
    Empty(&'static str),
    #[error("{0} is not a share in this session")]
    UnknownShare(ShareId),
    #[error("no customer is active; select one in the participants panel first")]
    NoActiveCustomer,
    #[error("the active customer has not started the Tandem agent yet")]
    NoAgent,
    #[error("only the active customer can share; the rep is helping someone else")]
    NotActiveCustomer,
    #[error("there is no call to do that in")]
    NoCall,
    #[error("a call is already running; join it instead")]
    CallInProgress,
    #[error("nothing is waiting for the customer's answer")]
    NoPendingRequest,
    #[error("this customer already has an agent attached")]
    AgentAlreadyAttached,
    #[error("the session is being transferred; only the receiving agent can take it")]
    TransferPending,
    #[error("no transfer of this session is waiting")]
    NoTransferPending,
    #[error("`{0}` is handled by the server, not by a session")]
    NotASessionCommand(&'static str),
    /// R1: the site allows one session at a time per rep, and this rep runs one.
    #[error(
        "you are already running session {0}; end it first (this site does not allow several \
         sessions at once)"
    )]
    AlreadyRunning(tandem_protocol::SessionNumber),
}

impl SessionError {
    /// The wire code for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            SessionError::Ended => ErrorCode::SessionEnded,
            SessionError::UnknownParticipant(_) | SessionError::DuplicateParticipant(_) => {
                ErrorCode::UnknownParticipant
            }
            SessionError::NotPermitted(_) => ErrorCode::NotPermitted,
            SessionError::NotWebacdAgent => ErrorCode::NotWebacdAgent,
            SessionError::SessionFull { .. } | SessionError::AdmitBeyondMaximum { .. } => {
                ErrorCode::SessionFull
            }
            // Not `session_full`: that code means the rep has no place left (and the server
            // tells the rep who could not get in); here the rep may well have places, and
            // the refusal comes from the site's cap on the waiting room.
            SessionError::WaitingRoomFull { .. } => ErrorCode::SiteLimit,
            SessionError::InvalidName(_) => ErrorCode::InvalidName,
            SessionError::InvalidAddress(_) => ErrorCode::InvalidAddress,
            SessionError::TooLong { .. } => ErrorCode::TooLong,
            SessionError::Empty(_) => ErrorCode::Empty,
            SessionError::UnknownShare(_) => ErrorCode::UnknownShare,
            SessionError::NoActiveCustomer => ErrorCode::NoActiveCustomer,
            SessionError::NoAgent => ErrorCode::NoAgent,
            SessionError::NotActiveCustomer => ErrorCode::NotActiveCustomer,
            SessionError::NoCall => ErrorCode::NoCall,
            SessionError::CallInProgress => ErrorCode::CallInProgress,
            SessionError::NoPendingRequest => ErrorCode::NoPendingRequest,
            SessionError::AgentAlreadyAttached => ErrorCode::AgentAlreadyAttached,
            SessionError::TransferPending => ErrorCode::TransferPending,
            SessionError::NoTransferPending => ErrorCode::NoTransferPending,
            SessionError::NotASessionCommand(_) => ErrorCode::BadMessage,
            SessionError::AlreadyRunning(_) => ErrorCode::SiteLimit,
        }
    }
}
