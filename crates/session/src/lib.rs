//! The support session as a pure state machine: the rules R1–R11 and C1–C3 of
//! DESIGN.md, decided in one place for every front end.
//!
//! No I/O and no clock. The runtime feeds [`Event`]s with the time they happened to
//! [`Session::handle`] and carries out the [`Output`]s it gets back: messages to deliver,
//! audit records to append, timers to set, connections to close. A refused event returns a
//! [`SessionError`] and changes nothing.
//!
//! | rule | where |
//! |---|---|
//! | R1 start, R2 page and grace | [`Session::start`], `participants.rs` |
//! | R3 invite | `talk.rs` |
//! | R4 many customers, C2 waiting room | `participants.rs` |
//! | display names (no invisible or bidi characters, no rep's name) | `names.rs` |
//! | R5 active customer, R6 shares, R7 switching | `sharing.rs` |
//! | R8 assist, R9 transfer control, C1 consent | `control.rs` |
//! | R10 WebACD | `webacd.rs` |
//! | R11 chat and call | `talk.rs` |
//! | files (recorded, never carried) | `files.rs` |
//! | C3 audit | `audit.rs`, every handler |

mod audit;
mod config;
mod control;
mod error;
mod event;
mod files;
mod names;
mod output;
mod participants;
mod recording;
pub mod reps;
mod router;
mod session;
mod sharing;
mod talk;
mod webacd;

pub use audit::{Actor, AuditAction, AuditRecord};
pub use config::{DEFAULT_MAX_FILE_BYTES, RepInfo, SessionConfig};
pub use error::SessionError;
pub use event::{Event, Join, JoinKind, Start, Timer};
pub use files::MAX_FILE_NAME;
pub use names::valid_name;
pub use output::{Invitation, Output, WebacdTransfer};
pub use recording::RECORDER_NAME;
pub use router::{Directory, DirectoryAgent, DirectoryQueue, RouteTarget};
pub use session::Session;
