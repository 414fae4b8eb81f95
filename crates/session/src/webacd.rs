//! R10: a WebACD agent hands the session to another agent or a queue, and leaves.

use tandem_protocol::{
    LeaveReason, ParticipantId, ServerMessage, TransferTarget, WEBACD_MESSAGE_MAX_CHARS,
};

use crate::audit::AuditAction;
use crate::error::SessionError;
use crate::output::{Outbox, Output, WebacdTransfer};
use crate::session::{Audience, PendingTransfer, Session};

impl Session {
    pub(crate) fn webacd_transfer(
        &mut self,
        from: ParticipantId,
        target: TransferTarget,
        message: Option<String>,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        let rep = self.require_primary(from, "only the primary rep can transfer the session")?;
        let account = match &rep.rep {
            Some(info) if info.webacd_agent => info.account.clone(),
            _ => return Err(SessionError::NotWebacdAgent),
        };
        let from_name = rep.name.clone();
        let target_name = match &target {
            TransferTarget::Agent { agent } => agent,
            TransferTarget::Queue { queue } => queue,
        };
        if target_name.trim().is_empty() {
            return Err(SessionError::Empty("transfer target"));
        }
        // The limit is in characters as people count them, not in bytes: 345 "é" pass.
        let message = message.filter(|m| !m.trim().is_empty());
        if let Some(text) = &message {
            let len = text.chars().count();
            if len > WEBACD_MESSAGE_MAX_CHARS {
                return Err(SessionError::TooLong {
                    what: "transfer message",
                    len,
                    max: WEBACD_MESSAGE_MAX_CHARS,
                });
            }
        }

        self.pending_transfer = Some(PendingTransfer {
            target: target.clone(),
            message: message.clone(),
            from_name: from_name.clone(),
            from_account: account.clone(),
        });
        out.push(Output::Transfer(WebacdTransfer {
            session: self.number,
            from_name,
            from_account: account,
            target: target.clone(),
            message: message.clone(),
        }));
        out.audit(
            self.actor(from),
            AuditAction::WebacdTransfer {
                target: target.clone(),
                message,
            },
        );
        let transferring = ServerMessage::Transferring { target };
        self.broadcast_except(Audience::Admitted, Some(from), transferring, out);
        // Leaving also ends the call the rep started and any control or share they held.
        self.remove(from, LeaveReason::Transferred, out);
        Ok(())
    }
}
