//! The active customer (R5), shares everyone can view (R6), switching that ends every
//! share (R7), and the relay of WebRTC negotiation between a share's owner and its viewers.

use std::collections::BTreeSet;

use tandem_protocol::{
    ControlChange, ParticipantId, Role, ServerMessage, ShareId, ShareInfo, ShareSource,
    ShareStopReason, StreamRef,
};

use crate::audit::AuditAction;
use crate::error::SessionError;
use crate::output::Outbox;
use crate::session::{Audience, Session, Share};

/// A window title longer than this is refused rather than shown cut.
const WINDOW_TITLE_MAX_CHARS: usize = 512;

impl Session {
    /// The first customer admitted becomes the active one, so a one-customer session needs
    /// no extra click (R5).
    pub(crate) fn activate_if_none(&mut self, customer: ParticipantId, out: &mut Outbox) {
        if self.active_customer.is_none() {
            self.make_active(customer, None, out);
        }
    }

    fn make_active(
        &mut self,
        customer: ParticipantId,
        by: Option<ParticipantId>,
        out: &mut Outbox,
    ) {
        let previous = self.active_customer.replace(customer);
        let message = ServerMessage::ActiveCustomer {
            participant: Some(customer),
        };
        self.broadcast(Audience::Admitted, message, out);
        out.audit(
            by.and_then(|id| self.actor(id)),
            AuditAction::ActiveCustomer { customer, previous },
        );
    }

    /// R5: select the customer being helped. R7: switching ends every share and control.
    pub(crate) fn set_active_customer(
        &mut self,
        from: ParticipantId,
        customer: ParticipantId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        self.require_primary(from, "only the primary rep chooses the active customer")?;
        let c = self.participant(customer)?;
        if c.role != Role::Customer || !c.is_admitted() {
            return Err(SessionError::UnknownParticipant(customer));
        }
        if self.active_customer == Some(customer) {
            return Ok(());
        }
        if self.active_customer.is_some() {
            self.stop_all_shares(ShareStopReason::SwitchedCustomer, Some(from), out);
            self.end_control(ControlChange::SwitchedCustomer, out);
            self.pending_control = None;
        }
        self.make_active(customer, Some(from), out);
        Ok(())
    }

    /// The active customer's agent, if it is attached.
    pub(crate) fn active_agent(&self) -> Result<ParticipantId, SessionError> {
        let customer = self.active_customer.ok_or(SessionError::NoActiveCustomer)?;
        self.participant(customer)?
            .agent
            .ok_or(SessionError::NoAgent)
    }

    /// Ask the active customer's agent to share; the agent asks the customer (C1).
    pub(crate) fn request_share(
        &mut self,
        from: ParticipantId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        let rep =
            self.require_active_rep(from, "only a support rep can ask a customer to share")?;
        let name = rep.name.clone();
        let agent = self.active_agent()?;
        out.send(agent, ServerMessage::ShareRequested { by: from, name });
        out.audit(self.actor(from), AuditAction::ShareRequested { agent });
        Ok(())
    }

    /// The customer said no at the agent (C1): the reps see "declined".
    pub(crate) fn decline_share(
        &mut self,
        from: ParticipantId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        let agent = self.participant(from)?;
        let customer = match (agent.role, agent.customer) {
            (Role::Agent, Some(customer)) => customer,
            _ => {
                return Err(SessionError::NotPermitted(
                    "only an agent answers for its customer",
                ));
            }
        };
        self.broadcast(
            Audience::Reps,
            ServerMessage::ShareDeclined { customer },
            out,
        );
        out.audit(self.actor(from), AuditAction::ShareDeclined { agent: from });
        Ok(())
    }

    /// R6: an agent (for the active customer, after consent) or a rep starts sharing; every
    /// participant may view it. A participant has one share at a time: a new one replaces it.
    pub(crate) fn start_share(
        &mut self,
        from: ParticipantId,
        source: ShareSource,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        let owner = self.participant(from)?;
        match owner.role {
            Role::Agent => {
                if owner.customer.is_none() || owner.customer != self.active_customer {
                    return Err(SessionError::NotActiveCustomer);
                }
            }
            Role::PrimaryRep | Role::Assistant => {}
            Role::Observer => {
                return Err(SessionError::NotPermitted(
                    "you can share again once control of the session is transferred back to you",
                ));
            }
            Role::Customer => {
                return Err(SessionError::NotPermitted(
                    "customers share their screen through the Tandem agent",
                ));
            }
            Role::Recorder => {
                return Err(SessionError::NotPermitted("the recorder only watches"));
            }
        }
        let named = match &source {
            ShareSource::Window { title } => Some(("window title", title)),
            ShareSource::Monitor { name } => Some(("monitor name", name)),
            ShareSource::Desktop => None,
        };
        if let Some((what, name)) = named {
            let len = name.chars().count();
            if len > WINDOW_TITLE_MAX_CHARS {
                return Err(SessionError::TooLong {
                    what,
                    len,
                    max: WINDOW_TITLE_MAX_CHARS,
                });
            }
        }
        let previous: Vec<ShareId> = self
            .shares
            .iter()
            .filter(|(_, s)| s.owner == from)
            .map(|(&id, _)| id)
            .collect();
        for share in previous {
            self.stop(share, ShareStopReason::Replaced, Some(from), out);
        }
        self.last_share += 1;
        let share = ShareId(self.last_share);
        self.shares.insert(
            share,
            Share {
                owner: from,
                source: source.clone(),
                viewers: BTreeSet::new(),
            },
        );
        let info = ShareInfo {
            share,
            owner: from,
            source: source.clone(),
        };
        self.broadcast(
            Audience::Admitted,
            ServerMessage::ShareStarted { share: info },
            out,
        );
        out.audit(
            self.actor(from),
            AuditAction::ShareStarted {
                share,
                owner: from,
                source,
            },
        );
        Ok(())
    }

    pub(crate) fn stop_share(
        &mut self,
        from: ParticipantId,
        share: ShareId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        let s = self
            .shares
            .get(&share)
            .ok_or(SessionError::UnknownShare(share))?;
        if s.owner != from {
            return Err(SessionError::NotPermitted(
                "only the one sharing can stop a share",
            ));
        }
        self.stop(share, ShareStopReason::StoppedByOwner, Some(from), out);
        Ok(())
    }

    pub(crate) fn view_share(
        &mut self,
        from: ParticipantId,
        share: ShareId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        if self.participant(from)?.role == Role::Agent {
            return Err(SessionError::NotPermitted("an agent does not view shares"));
        }
        let s = self
            .shares
            .get_mut(&share)
            .ok_or(SessionError::UnknownShare(share))?;
        if s.owner == from {
            return Err(SessionError::NotPermitted("you are the one sharing this"));
        }
        // A repeated view gets a new peer connection: the owner closes the old one and
        // offers afresh (new ICE credentials and fingerprint).
        s.viewers.insert(from);
        let owner = s.owner;
        out.send(
            owner,
            ServerMessage::ViewerJoined {
                share,
                viewer: from,
            },
        );
        out.audit(
            self.actor(from),
            AuditAction::ViewerJoined {
                share,
                viewer: from,
            },
        );
        Ok(())
    }

    pub(crate) fn stop_viewing(
        &mut self,
        from: ParticipantId,
        share: ShareId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        let s = self
            .shares
            .get_mut(&share)
            .ok_or(SessionError::UnknownShare(share))?;
        if !s.viewers.remove(&from) {
            return Err(SessionError::NotPermitted("you are not viewing that share"));
        }
        let owner = s.owner;
        out.send(
            owner,
            ServerMessage::ViewerLeft {
                share,
                viewer: from,
            },
        );
        out.audit(
            self.actor(from),
            AuditAction::ViewerLeft {
                share,
                viewer: from,
            },
        );
        Ok(())
    }

    /// WebRTC negotiation flows only between a share's owner and one of its viewers,
    /// between two members of the call, or between a rep in the call and the recorder
    /// (the call's sound): nothing reaches anyone else.
    pub(crate) fn check_relay(
        &self,
        from: ParticipantId,
        to: ParticipantId,
        stream: StreamRef,
    ) -> Result<(), SessionError> {
        let target = self.participant(to)?;
        if to == from || !target.is_admitted() {
            return Err(SessionError::UnknownParticipant(to));
        }
        match stream {
            StreamRef::Share(share) => {
                let s = self
                    .shares
                    .get(&share)
                    .ok_or(SessionError::UnknownShare(share))?;
                let paired = (s.owner == from && s.viewers.contains(&to))
                    || (s.owner == to && s.viewers.contains(&from));
                if !paired {
                    return Err(SessionError::NotPermitted(
                        "negotiation is only between a share's owner and its viewers",
                    ));
                }
            }
            StreamRef::Call => {
                let call = self.call.as_ref().ok_or(SessionError::NoCall)?;
                if !call.members.contains_key(&from) || !call.members.contains_key(&to) {
                    return Err(SessionError::NoCall);
                }
            }
            StreamRef::Recording => {
                // The call's sound, mixed by a rep's console, to the recorder.
                let sender = self.participant(from)?.role;
                let (rep, recorder) = if sender == Role::Recorder {
                    (to, from)
                } else {
                    (from, to)
                };
                let rep_role = self.participant(rep)?.role;
                let paired = self.participant(recorder)?.role == Role::Recorder
                    && matches!(rep_role, Role::PrimaryRep | Role::Assistant);
                if !paired {
                    return Err(SessionError::NotPermitted(
                        "the call's sound goes only from a rep in the call to the recorder",
                    ));
                }
                let call = self.call.as_ref().ok_or(SessionError::NoCall)?;
                if !call.members.contains_key(&rep) {
                    return Err(SessionError::NoCall);
                }
                if self.call_sound_sender() != Some(rep) {
                    return Err(SessionError::NotPermitted(
                        "the call's sound goes to the recorder from the primary rep when in \
                         the call, else from the rep in it with the lowest id",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The rep whose console sends the call's sound to the recorder: the primary rep when
    /// in the call, else the rep (primary or assistant) in it with the lowest id.
    pub(crate) fn call_sound_sender(&self) -> Option<ParticipantId> {
        let call = self.call.as_ref()?;
        let role = |id: &ParticipantId| self.participant(*id).ok().map(|p| p.role);
        call.members
            .keys()
            .find(|id| role(id) == Some(Role::PrimaryRep))
            .or_else(|| {
                call.members
                    .keys()
                    .find(|id| role(id) == Some(Role::Assistant))
            })
            .copied()
    }

    /// R7: every share ends at once; every viewer closes, every owner stops capturing.
    pub(crate) fn stop_all_shares(
        &mut self,
        reason: ShareStopReason,
        by: Option<ParticipantId>,
        out: &mut Outbox,
    ) {
        let all: Vec<ShareId> = self.shares.keys().copied().collect();
        for share in all {
            self.stop(share, reason, by, out);
        }
    }

    /// Drop a participant from every share: the ones they own end, the ones they watch
    /// lose a viewer.
    pub(crate) fn forget_shares_of(&mut self, who: ParticipantId, out: &mut Outbox) {
        let owned: Vec<ShareId> = self
            .shares
            .iter()
            .filter(|(_, s)| s.owner == who)
            .map(|(&id, _)| id)
            .collect();
        for share in owned {
            self.stop(share, ShareStopReason::OwnerLeft, None, out);
        }
        for (&share, s) in self.shares.iter_mut() {
            if s.viewers.remove(&who) {
                out.send(s.owner, ServerMessage::ViewerLeft { share, viewer: who });
            }
        }
    }

    fn stop(
        &mut self,
        share: ShareId,
        reason: ShareStopReason,
        by: Option<ParticipantId>,
        out: &mut Outbox,
    ) {
        if self.shares.remove(&share).is_none() {
            return;
        }
        // The owner is among the admitted and hears it too: that is its cue to stop.
        self.broadcast(
            Audience::Admitted,
            ServerMessage::ShareStopped { share, reason },
            out,
        );
        out.audit(
            by.and_then(|id| self.actor(id)),
            AuditAction::ShareStopped { share, reason },
        );
    }
}
