//! Control of the active customer's desktop: the customer's consent (C1), giving it to an
//! assistant (R8), and transferring the session's control between reps (R9).

use tandem_protocol::{ControlChange, ControlInfo, ParticipantId, Role, ServerMessage};

use crate::audit::AuditAction;
use crate::error::SessionError;
use crate::output::Outbox;
use crate::session::{Audience, PendingControl, Session};

impl Session {
    /// The primary rep gives control of the active customer's desktop to itself
    /// (`request_control`) or to an assistant (R8). Without the customer's consent the
    /// agent asks first (C1); once given, consent holds until the customer revokes it.
    pub(crate) fn give_control(
        &mut self,
        from: ParticipantId,
        to: ParticipantId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        self.require_primary(
            from,
            "only the primary rep can request control or give it to an assistant",
        )?;
        let grantee = self.participant(to)?;
        if !grantee.is_active_rep() {
            return Err(SessionError::NotPermitted(match grantee.role {
                Role::Observer => {
                    "a former primary rep cannot be given control until the session's control \
                     is transferred back to them"
                }
                _ => "control can only be given to a support rep in the session",
            }));
        }
        let name = grantee.name.clone();
        let agent = self.active_agent()?;
        if self
            .control
            .as_ref()
            .is_some_and(|c| c.holder == to && c.agent == agent)
        {
            return Ok(());
        }
        if self.participant(agent)?.control_consent {
            self.pending_control = None;
            self.grant(to, agent, out);
        } else {
            self.pending_control = Some(PendingControl { grantee: to, agent });
            out.send(
                agent,
                ServerMessage::ControlRequested {
                    by: to,
                    name: name.clone(),
                },
            );
            let customer = self.active_customer.and_then(|c| self.participants.get(&c));
            let customer = customer.map_or("the customer", |c| c.name.as_str());
            let notice = ServerMessage::Notice {
                text: format!("Waiting for {customer} to allow {name} to take control."),
                topic: Some("control".into()),
            };
            self.broadcast(Audience::Reps, notice, out);
            out.audit(
                self.actor(from),
                AuditAction::ControlRequested { grantee: to, agent },
            );
        }
        Ok(())
    }

    fn grant(&mut self, holder: ParticipantId, agent: ParticipantId, out: &mut Outbox) {
        let control = ControlInfo { holder, agent };
        self.control = Some(control.clone());
        let changed = ServerMessage::ControlChanged {
            control: Some(control),
            reason: ControlChange::Granted,
        };
        self.broadcast(Audience::Admitted, changed, out);
        out.audit(
            self.actor(holder),
            AuditAction::ControlGranted { holder, agent },
        );
    }

    /// The customer's answer at the agent (C1).
    pub(crate) fn control_consent(
        &mut self,
        from: ParticipantId,
        granted: bool,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        let pending = match &self.pending_control {
            Some(p) if p.agent == from => p.clone(),
            _ => return Err(SessionError::NoPendingRequest),
        };
        self.pending_control = None;
        if !granted {
            let declined = ServerMessage::ControlDeclined { agent: from };
            self.broadcast(Audience::Reps, declined, out);
            out.audit(
                self.actor(from),
                AuditAction::ControlDeclined { agent: from },
            );
            return Ok(());
        }
        self.participant_mut(from)?.control_consent = true;
        let still_eligible = self
            .participants
            .get(&pending.grantee)
            .is_some_and(|g| g.is_active_rep())
            && self.active_agent().ok() == Some(from);
        if still_eligible {
            self.grant(pending.grantee, from, out);
        }
        Ok(())
    }

    /// The holder gives control up, or the primary rep takes it away.
    pub(crate) fn release_control(
        &mut self,
        from: ParticipantId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        let is_primary = self.participant(from)?.role == Role::PrimaryRep;
        let is_holder = self.control.as_ref().is_some_and(|c| c.holder == from);
        if !is_primary && !is_holder {
            return Err(SessionError::NotPermitted(
                "only the rep in control or the primary rep can release control",
            ));
        }
        if is_primary {
            self.pending_control = None;
        }
        self.end_control_by(ControlChange::Released, Some(from), out);
        Ok(())
    }

    /// The customer takes control back at the agent, at any moment (C1). Consent is gone:
    /// the next request asks again.
    pub(crate) fn revoke_control(
        &mut self,
        from: ParticipantId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        let p = self.participant(from)?;
        let agent = match p.role {
            Role::Agent => from,
            Role::Customer => p.agent.ok_or(SessionError::NoAgent)?,
            _ => {
                return Err(SessionError::NotPermitted(
                    "only the customer can revoke control",
                ));
            }
        };
        self.participant_mut(agent)?.control_consent = false;
        if self
            .pending_control
            .as_ref()
            .is_some_and(|p| p.agent == agent)
        {
            self.pending_control = None;
        }
        out.audit(self.actor(from), AuditAction::ControlRevoked { agent });
        if self.control.as_ref().is_some_and(|c| c.agent == agent) {
            self.end_control_by(ControlChange::RevokedByCustomer, Some(from), out);
        }
        Ok(())
    }

    pub(crate) fn end_control(&mut self, reason: ControlChange, out: &mut Outbox) {
        self.end_control_by(reason, None, out);
    }

    fn end_control_by(
        &mut self,
        reason: ControlChange,
        by: Option<ParticipantId>,
        out: &mut Outbox,
    ) {
        if self.control.take().is_none() {
            return;
        }
        let changed = ServerMessage::ControlChanged {
            control: None,
            reason,
        };
        self.broadcast(Audience::Admitted, changed, out);
        out.audit(
            by.and_then(|id| self.actor(id)),
            AuditAction::ControlEnded { reason },
        );
    }

    /// A participant left: control they held or gave ends, requests naming them lapse.
    pub(crate) fn forget_control_of(&mut self, who: ParticipantId, out: &mut Outbox) {
        if self
            .pending_control
            .as_ref()
            .is_some_and(|p| p.grantee == who || p.agent == who)
        {
            self.pending_control = None;
        }
        if self
            .control
            .as_ref()
            .is_some_and(|c| c.holder == who || c.agent == who)
        {
            self.end_control(ControlChange::ParticipantLeft, out);
        }
    }

    /// R9: the primary rep makes another rep the primary. The former primary stays as an
    /// observer with every controlling feature unavailable, until the new primary
    /// transfers control back, which it may do at any time with the same command.
    pub(crate) fn transfer_session(
        &mut self,
        from: ParticipantId,
        to: ParticipantId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        self.require_primary(
            from,
            "only the primary rep can transfer the session's control",
        )?;
        let target = self.participant(to)?;
        if to == from || !matches!(target.role, Role::Assistant | Role::Observer) {
            return Err(SessionError::NotPermitted(
                "the session's control can only go to another support rep in the session",
            ));
        }
        if !target.connected {
            return Err(SessionError::NotPermitted(
                "that rep's connection is lost; wait until they are back",
            ));
        }
        self.participant_mut(from)?.role = Role::Observer;
        self.participant_mut(to)?.role = Role::PrimaryRep;
        if self
            .pending_control
            .as_ref()
            .is_some_and(|p| p.grantee == from)
        {
            self.pending_control = None;
        }
        if self.control.as_ref().is_some_and(|c| c.holder == from) {
            self.end_control(ControlChange::SessionTransferred, out);
        }
        self.announce_update(from, out);
        self.announce_update(to, out);
        let changed = ServerMessage::PrimaryChanged {
            primary: to,
            former: from,
        };
        self.broadcast(Audience::Admitted, changed, out);
        out.audit(
            self.actor(from),
            AuditAction::PrimaryTransferred { from, to },
        );
        Ok(())
    }
}
