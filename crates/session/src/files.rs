//! File transfer (docs/rules.md, "Files"): the file goes peer to peer between a rep's
//! console and the customer's agent; the session only records how each transfer ended,
//! as the agent reports it (C3).

use tandem_protocol::{FileDirection, FileOutcome, ParticipantId, Role};

use crate::audit::AuditAction;
use crate::error::SessionError;
use crate::output::Outbox;
use crate::session::Session;

/// The longest file name recorded, in characters.
pub const MAX_FILE_NAME: usize = 255;

/// What the agent reports about one transfer.
pub(crate) struct FileReport {
    pub peer: ParticipantId,
    pub direction: FileDirection,
    pub name: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub outcome: FileOutcome,
    pub saved_as: Option<String>,
}

impl Session {
    /// Only an agent reports, about a rep of this session, with a name and hash that read
    /// as such; the record names the agent as its actor.
    pub(crate) fn file_transfer(
        &mut self,
        from: ParticipantId,
        report: FileReport,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        if self.participant(from)?.role != Role::Agent {
            return Err(SessionError::NotPermitted(
                "only the customer's agent reports file transfers",
            ));
        }
        // The rep may have left already (a transfer cut by their leaving is reported
        // after the server removed them): only a present participant must be a rep.
        if self
            .participants
            .get(&report.peer)
            .is_some_and(|p| !p.role.is_rep())
            || report.peer == from
        {
            return Err(SessionError::NotPermitted(
                "files go between the customer's agent and a rep",
            ));
        }
        for (what, text) in [
            ("file name", Some(&report.name)),
            ("saved name", report.saved_as.as_ref()),
        ] {
            let Some(text) = text else { continue };
            let len = text.chars().count();
            if len == 0 {
                return Err(SessionError::Empty(what));
            }
            if len > MAX_FILE_NAME {
                return Err(SessionError::TooLong {
                    what,
                    len,
                    max: MAX_FILE_NAME,
                });
            }
            if text.chars().any(char::is_control) {
                return Err(SessionError::InvalidName(
                    "a file name has no control characters",
                ));
            }
        }
        if let Some(hash) = &report.sha256
            && !(hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        {
            return Err(SessionError::NotPermitted(
                "a SHA-256 is 64 lowercase hexadecimal digits",
            ));
        }
        out.audit(
            self.actor(from),
            AuditAction::FileTransfer {
                agent: from,
                peer: report.peer,
                direction: report.direction,
                name: report.name,
                size: report.size,
                sha256: report.sha256,
                outcome: report.outcome,
                saved_as: report.saved_as,
            },
        );
        Ok(())
    }
}
