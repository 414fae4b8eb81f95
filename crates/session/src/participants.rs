//! Who is in the session: joining (R4, R8, C2), the waiting room, leaving, and the
//! primary rep's page and connection (R2).
//!
//! R4's places and C2's waiting room are counted apart: a customer takes one of the rep's
//! places when they are in the session (joined by link, or admitted), never while they
//! wait. Strangers who try session numbers can fill a waiting room up to its own cap, but
//! cannot lock out the customer who has the link.

use tandem_protocol::{Admission, EndReason, LeaveReason, ParticipantId, Role, ServerMessage};

use crate::audit::AuditAction;
use crate::error::SessionError;
use crate::event::{Join, JoinKind, Timer};
use crate::names::{REP_NAME_TAKEN, name_key, valid_name};
use crate::output::{Outbox, Output};
use crate::session::{Audience, Participant, Session};

impl Session {
    pub(crate) fn join(&mut self, join: Join, out: &mut Outbox) -> Result<(), SessionError> {
        if self.participants.contains_key(&join.id) {
            return Err(SessionError::DuplicateParticipant(join.id));
        }
        let name = valid_name(&join.name)?;
        let by_customer = matches!(
            join.kind,
            JoinKind::CustomerByLink | JoinKind::CustomerByNumber | JoinKind::Agent { .. }
        );
        if by_customer && self.is_a_reps_name(&name) {
            return Err(SessionError::InvalidName(REP_NAME_TAKEN));
        }
        let id = join.id;
        let mut participant = Participant {
            name,
            role: Role::Customer,
            admission: Admission::Admitted,
            connected: true,
            rep: None,
            agent: None,
            customer: None,
            control_consent: false,
        };
        match join.kind {
            JoinKind::CustomerByLink => {
                if self.places_taken(join.rep_load_elsewhere) {
                    let max = self.config.max_customers_per_rep;
                    return Err(SessionError::SessionFull { max });
                }
            }
            JoinKind::CustomerByNumber => {
                // No place is taken yet (R4 applies when the rep admits them), but the
                // waiting room has its own cap so it cannot grow without end (C2).
                let max = self.config.max_waiting;
                if self.waiting_count() >= max {
                    return Err(SessionError::WaitingRoomFull { max });
                }
                participant.admission = Admission::Waiting;
            }
            JoinKind::Assistant(rep) => {
                participant.role = Role::Assistant;
                participant.rep = Some(rep);
            }
            JoinKind::TransferReceiver(rep) => {
                let pending = self
                    .pending_transfer
                    .take()
                    .ok_or(SessionError::NoTransferPending)?;
                self.transfer_note = pending.message.map(|message| (id, message));
                participant.role = Role::PrimaryRep;
                participant.rep = Some(rep);
            }
            JoinKind::Agent { customer } => {
                let c = self.participant(customer)?;
                if c.role != Role::Customer {
                    return Err(SessionError::UnknownParticipant(customer));
                }
                if !c.is_admitted() {
                    return Err(SessionError::NotPermitted(
                        "the customer is still in the waiting room; the agent can attach once \
                         they are admitted",
                    ));
                }
                if c.agent.is_some() {
                    return Err(SessionError::AgentAlreadyAttached);
                }
                participant.role = Role::Agent;
                participant.customer = Some(customer);
            }
        }

        let role = participant.role;
        let admission = participant.admission;
        self.participants.insert(id, participant);
        if let Some(customer) = self.participants.get(&id).and_then(|p| p.customer) {
            if let Some(c) = self.participants.get_mut(&customer) {
                c.agent = Some(id);
            }
        }
        let actor = self.actor(id);
        if admission == Admission::Waiting {
            out.send(
                id,
                ServerMessage::Waiting {
                    number: self.number,
                },
            );
            if let Some(participant) = self.info(id) {
                let joined = ServerMessage::ParticipantJoined { participant };
                self.broadcast(Audience::Reps, joined, out);
            }
            out.audit(actor, AuditAction::Waiting { participant: id });
            return Ok(());
        }

        if let Some(snapshot) = self.snapshot(id) {
            self.send_joined(id, snapshot, out);
        }
        if let Some(participant) = self.info(id) {
            let joined = ServerMessage::ParticipantJoined { participant };
            self.broadcast_except(Audience::Admitted, Some(id), joined, out);
        }
        if let Some(customer) = self.participants.get(&id).and_then(|p| p.customer) {
            self.announce_update(customer, out);
        }
        if role == Role::PrimaryRep {
            out.audit(actor, AuditAction::TransferAccepted { rep: id });
        } else {
            out.audit(
                actor,
                AuditAction::Joined {
                    participant: id,
                    role,
                },
            );
        }
        if role == Role::Customer {
            self.activate_if_none(id, out);
        }
        // R8 as Tandem decides it: any rep of the site may assist, but the primary hears
        // of it at once, by name and account (the audit log has the join too).
        if role == Role::Assistant
            && let Some(primary) = self.primary()
            && let Some(p) = self.participants.get(&id)
        {
            let account = p.rep.as_ref().map_or("", |r| r.account.as_str());
            let text = format!(
                "{} ({account}) joined your session as an assistant.",
                p.name
            );
            out.send(primary, ServerMessage::Notice { text, topic: None });
        }
        Ok(())
    }

    /// R4: the sentence for the primary rep when a customer could not join because the
    /// rep already helps as many customers as the site allows; `None` for any other
    /// refusal. The join itself was refused, so nothing changed: the runtime delivers it.
    pub fn join_refused_notice(
        &self,
        name: &str,
        refusal: &SessionError,
    ) -> Option<(ParticipantId, ServerMessage)> {
        if !matches!(refusal, SessionError::SessionFull { .. }) {
            return None;
        }
        let text = format!(
            "{} tried to join but could not: you are already helping as many customers as \
             this site allows.",
            name.trim()
        );
        Some((self.primary()?, ServerMessage::Notice { text, topic: None }))
    }

    /// Whether every one of the rep's places is taken: the customers admitted here and
    /// `load_elsewhere` in the primary rep's other sessions, against R4's maximum.
    fn places_taken(&self, load_elsewhere: u32) -> bool {
        self.customer_count().saturating_add(load_elsewhere) >= self.config.max_customers_per_rep
    }

    /// Whether `name` would pass for a rep's in this session (see [`name_key`]). Only
    /// names chosen by customers are checked: reps' names come from their accounts.
    fn is_a_reps_name(&self, name: &str) -> bool {
        let key = name_key(name);
        self.participants
            .values()
            .any(|p| p.role.is_rep() && name_key(&p.name) == key)
    }

    /// Let a waiting customer in (C2). This is where they take one of the rep's places
    /// (R4): beyond the maximum the admission is refused and the customer waits on.
    pub(crate) fn admit(
        &mut self,
        from: ParticipantId,
        who: ParticipantId,
        rep_load_elsewhere: u32,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        self.require_active_rep(from, "only a support rep can admit customers")?;
        if self.participant(who)?.admission != Admission::Waiting {
            return Err(SessionError::NotPermitted(
                "that participant is not waiting",
            ));
        }
        if self.places_taken(rep_load_elsewhere) {
            let max = self.config.max_customers_per_rep;
            return Err(SessionError::AdmitBeyondMaximum { max });
        }
        let p = self.participant_mut(who)?;
        p.admission = Admission::Admitted;
        if let Some(snapshot) = self.snapshot(who) {
            self.send_joined(who, snapshot, out);
        }
        self.announce_update(who, out);
        out.audit(self.actor(from), AuditAction::Admitted { participant: who });
        self.activate_if_none(who, out);
        Ok(())
    }

    /// Turn a waiting customer away (C2).
    pub(crate) fn deny(
        &mut self,
        from: ParticipantId,
        who: ParticipantId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        self.require_active_rep(from, "only a support rep can turn customers away")?;
        if self.participant(who)?.admission != Admission::Waiting {
            return Err(SessionError::NotPermitted(
                "that participant is not waiting",
            ));
        }
        out.send(
            who,
            ServerMessage::Denied {
                message: "The support rep did not admit you to this session.".into(),
            },
        );
        out.audit(self.actor(from), AuditAction::Denied { participant: who });
        self.remove(who, LeaveReason::Denied, out);
        Ok(())
    }

    /// Leave on purpose or close the page. For the primary rep this ends the session for
    /// everyone (R2).
    pub(crate) fn leave(
        &mut self,
        who: ParticipantId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        if self.participant(who)?.role == Role::PrimaryRep {
            self.end(EndReason::PrimaryLeft, Some(who), out);
        } else {
            self.remove(who, LeaveReason::Left, out);
        }
        Ok(())
    }

    /// The connection opened (the primary's first time) or came back within the grace
    /// period: send the whole picture.
    pub(crate) fn connected(
        &mut self,
        who: ParticipantId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        let p = self.participant_mut(who)?;
        let was_connected = std::mem::replace(&mut p.connected, true);
        let waiting = p.admission == Admission::Waiting;
        let is_primary = p.role == Role::PrimaryRep;
        if !was_connected {
            out.push(Output::CancelTimer(Timer::Reconnect(who)));
        }
        if waiting {
            out.send(
                who,
                ServerMessage::Waiting {
                    number: self.number,
                },
            );
        } else if let Some(mut snapshot) = self.snapshot(who) {
            if is_primary && self.invite_dialog_pending {
                self.invite_dialog_pending = false;
                snapshot.open_invite_dialog = true;
            }
            self.send_joined(who, snapshot, out);
        }
        if !was_connected {
            self.announce_update(who, out);
            out.audit(
                self.actor(who),
                AuditAction::Reconnected { participant: who },
            );
        }
        Ok(())
    }

    /// `joined` to a participant who is in; a customer without an agent also gets an agent
    /// token (when they join, are admitted, or come back).
    fn send_joined(
        &self,
        who: ParticipantId,
        snapshot: tandem_protocol::SessionSnapshot,
        out: &mut Outbox,
    ) {
        out.send(who, ServerMessage::Joined(snapshot));
        let wants_agent = self
            .participants
            .get(&who)
            .is_some_and(|p| p.role == Role::Customer && p.is_admitted() && p.agent.is_none());
        if wants_agent {
            out.push(Output::AgentTokenWanted { customer: who });
        }
    }

    /// The connection dropped without a goodbye: hold the place for the grace period (R2).
    pub(crate) fn connection_lost(
        &mut self,
        who: ParticipantId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        let grace = self.config.reconnect_grace_ms;
        let p = self.participant_mut(who)?;
        if !std::mem::replace(&mut p.connected, false) {
            return Ok(());
        }
        out.push(Output::SetTimer {
            timer: Timer::Reconnect(who),
            at: out.now.plus_millis(grace),
        });
        self.announce_update(who, out);
        out.audit(
            self.actor(who),
            AuditAction::ConnectionLost { participant: who },
        );
        Ok(())
    }

    /// The grace period ran out. A stale timer (the participant came back or left) does
    /// nothing.
    pub(crate) fn reconnect_expired(&mut self, who: ParticipantId, out: &mut Outbox) {
        let Some(p) = self.participants.get(&who) else {
            return;
        };
        if p.connected {
            return;
        }
        if p.role == Role::PrimaryRep {
            self.end(EndReason::PrimaryConnectionLost, None, out);
        } else {
            self.remove(who, LeaveReason::ConnectionLost, out);
        }
    }

    /// Take a participant out of the session and undo everything that hung on them:
    /// their agent, shares, viewing, control, call, and being the active customer.
    pub(crate) fn remove(&mut self, who: ParticipantId, reason: LeaveReason, out: &mut Outbox) {
        let Some(p) = self.participants.get(&who) else {
            return;
        };
        if let Some(agent) = p.agent {
            self.remove(agent, LeaveReason::CustomerLeft, out);
        }
        let actor = self.actor(who);
        let Some(p) = self.participants.remove(&who) else {
            return;
        };
        if !p.connected {
            out.push(Output::CancelTimer(Timer::Reconnect(who)));
        }
        self.forget_shares_of(who, out);
        self.forget_control_of(who, out);
        self.forget_call_member(who, out);
        self.forget_recorder(who, out);
        if let Some(customer) = p.customer {
            if let Some(c) = self.participants.get_mut(&customer) {
                c.agent = None;
            }
            self.announce_update(customer, out);
        }
        if self.active_customer == Some(who) {
            self.active_customer = None;
            let message = ServerMessage::ActiveCustomer { participant: None };
            self.broadcast(Audience::Admitted, message, out);
        }
        let audience = if p.is_admitted() {
            Audience::Admitted
        } else {
            Audience::Reps
        };
        let left = ServerMessage::ParticipantLeft {
            participant: who,
            reason,
        };
        self.broadcast(audience, left, out);
        out.audit(
            actor,
            AuditAction::Left {
                participant: who,
                reason,
            },
        );
        out.push(Output::Disconnect {
            participant: who,
            reason,
        });
    }
}
