//! Talking: chat, the voice and video call (R11), and invitations (R3).

use tandem_protocol::{CHAT_MAX_CHARS, Invitee, ParticipantId, Role, ServerMessage};

use crate::audit::AuditAction;
use crate::error::SessionError;
use crate::output::{Invitation, Outbox, Output};
use crate::session::{Audience, Call, CallMedia, Session};

/// The longest email address SMTP allows.
const ADDRESS_MAX_CHARS: usize = 254;

/// A plausible single email address. Anything that could smuggle a second recipient or a
/// header into a message (commas, angle brackets, line breaks) is refused.
pub(crate) fn valid_address(address: &str) -> Result<String, SessionError> {
    let address = address.trim();
    let invalid = || SessionError::InvalidAddress(address.chars().take(80).collect());
    if address.is_empty() || address.chars().count() > ADDRESS_MAX_CHARS {
        return Err(invalid());
    }
    if address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || ",;<>()[]\\\"".contains(c))
    {
        return Err(invalid());
    }
    let (local, domain) = address.split_once('@').ok_or_else(invalid)?;
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && domain
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
    if local.is_empty() || !domain_ok {
        return Err(invalid());
    }
    Ok(address.to_owned())
}

impl Session {
    pub(crate) fn chat(
        &mut self,
        from: ParticipantId,
        text: String,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        let sender = self.participant(from)?;
        if matches!(sender.role, Role::Agent | Role::Recorder) {
            return Err(SessionError::NotPermitted("an agent cannot chat"));
        }
        if text.trim().is_empty() {
            return Err(SessionError::Empty("chat message"));
        }
        let len = text.chars().count();
        if len > CHAT_MAX_CHARS {
            return Err(SessionError::TooLong {
                what: "chat message",
                len,
                max: CHAT_MAX_CHARS,
            });
        }
        let chat = ServerMessage::Chat {
            from,
            name: sender.name.clone(),
            text,
            at: out.now,
        };
        self.broadcast(Audience::People, chat, out);
        Ok(())
    }

    /// R3: the server sends the email, or prepares one for the rep's own email program.
    /// R3: a rep of this session (primary or assistant) sends a failed invitation again.
    pub(crate) fn retry_invite(
        &mut self,
        from: ParticipantId,
        invite: u64,
        language: Option<String>,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        self.require_active_rep(
            from,
            "only a support rep of this session can resend its invitations",
        )?;
        out.push(Output::RetryInvite {
            by: from,
            invite,
            language,
        });
        Ok(())
    }

    pub(crate) fn invite(
        &mut self,
        from: ParticipantId,
        invitee: Invitee,
        address: String,
        own_email_program: bool,
        language: Option<String>,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        let rep = self.require_active_rep(from, "only a support rep can send invitations")?;
        let by_name = rep.name.clone();
        let address = valid_address(&address)?;
        out.push(Output::Invite(Invitation {
            session: self.number,
            by: from,
            by_name,
            invitee,
            address: address.clone(),
            own_email_program,
            language,
        }));
        out.audit(
            self.actor(from),
            AuditAction::Invited {
                invitee,
                address,
                own_email_program,
            },
        );
        Ok(())
    }

    pub(crate) fn start_call(
        &mut self,
        from: ParticipantId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        self.require_active_rep(from, "only a support rep can start a call")?;
        if self.call.is_some() {
            return Err(SessionError::CallInProgress);
        }
        let mut call = Call {
            started_by: from,
            members: Default::default(),
        };
        call.members.insert(
            from,
            CallMedia {
                muted: false,
                video: false,
            },
        );
        self.call = Some(call);
        out.audit(self.actor(from), AuditAction::CallStarted);
        self.announce_call(out);
        Ok(())
    }

    pub(crate) fn join_call(
        &mut self,
        from: ParticipantId,
        video: bool,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        if matches!(self.participant(from)?.role, Role::Agent | Role::Recorder) {
            return Err(SessionError::NotPermitted("an agent cannot join the call"));
        }
        let call = self.call.as_mut().ok_or(SessionError::NoCall)?;
        let media = CallMedia {
            muted: false,
            video,
        };
        if call.members.insert(from, media).is_none() {
            out.audit(
                self.actor(from),
                AuditAction::CallJoined { participant: from },
            );
        }
        self.announce_call(out);
        Ok(())
    }

    pub(crate) fn call_media(
        &mut self,
        from: ParticipantId,
        muted: bool,
        video: bool,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        let media = self
            .call
            .as_mut()
            .and_then(|call| call.members.get_mut(&from))
            .ok_or(SessionError::NoCall)?;
        *media = CallMedia { muted, video };
        self.announce_call(out);
        Ok(())
    }

    pub(crate) fn leave_call(
        &mut self,
        from: ParticipantId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        let in_call = self
            .call
            .as_ref()
            .is_some_and(|c| c.members.contains_key(&from));
        if !in_call {
            return Err(SessionError::NoCall);
        }
        self.forget_call_member(from, out);
        Ok(())
    }

    pub(crate) fn end_call(
        &mut self,
        from: ParticipantId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        let call = self.call.as_ref().ok_or(SessionError::NoCall)?;
        let is_primary = self.participant(from)?.role == Role::PrimaryRep;
        if call.started_by != from && !is_primary {
            return Err(SessionError::NotPermitted(
                "only the rep who started the call or the primary rep can end it",
            ));
        }
        self.finish_call(Some(from), out);
        Ok(())
    }

    /// A member leaves the call (or the session). The call ends when its starter leaves
    /// the session (R10) or when nobody is left in it.
    pub(crate) fn forget_call_member(&mut self, who: ParticipantId, out: &mut Outbox) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let was_member = call.members.remove(&who).is_some();
        let starter_gone = call.started_by == who && !self.participants.contains_key(&who);
        if starter_gone || call.members.is_empty() {
            self.finish_call(None, out);
        } else if was_member {
            out.audit(self.actor(who), AuditAction::CallLeft { participant: who });
            self.announce_call(out);
        }
    }

    fn finish_call(&mut self, by: Option<ParticipantId>, out: &mut Outbox) {
        if self.call.take().is_some() {
            out.audit(by.and_then(|id| self.actor(id)), AuditAction::CallEnded);
            self.announce_call(out);
        }
    }

    fn announce_call(&self, out: &mut Outbox) {
        let state = ServerMessage::CallState {
            call: self.call_info(),
        };
        self.broadcast(Audience::People, state, out);
    }
}
