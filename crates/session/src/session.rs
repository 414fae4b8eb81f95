//! The session itself: its state, the event dispatch, and what every rule shares
//! (who is who, broadcasting, ending). Each rule's logic lives in its own module.

use std::collections::{BTreeMap, BTreeSet};

use tandem_protocol::{
    Admission, CallInfo, CallMember, ClientMessage, ControlInfo, EndReason, ParticipantId,
    ParticipantInfo, Role, ServerMessage, SessionNumber, SessionSnapshot, ShareId, ShareInfo,
    ShareSource, Timestamp, TransferTarget,
};

use crate::audit::{Actor, AuditAction};
use crate::config::{RepInfo, SessionConfig};
use crate::error::SessionError;
use crate::event::{Event, Start, Timer};
use crate::output::{Outbox, Output, WebacdTransfer};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Participant {
    pub name: String,
    pub role: Role,
    pub admission: Admission,
    pub connected: bool,
    /// For reps: their account.
    pub rep: Option<RepInfo>,
    /// For customers: their agent.
    pub agent: Option<ParticipantId>,
    /// For agents: their customer.
    pub customer: Option<ParticipantId>,
    /// For agents: the customer allowed control (C1). Cleared on revoke; a restarted
    /// agent is a new participant and asks again.
    pub control_consent: bool,
}

impl Participant {
    pub fn is_admitted(&self) -> bool {
        self.admission == Admission::Admitted
    }

    /// A rep who may use the controlling features: the primary or an assistant (R9).
    pub fn is_active_rep(&self) -> bool {
        matches!(self.role, Role::PrimaryRep | Role::Assistant)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Share {
    pub owner: ParticipantId,
    pub source: ShareSource,
    pub viewers: BTreeSet<ParticipantId>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PendingControl {
    pub grantee: ParticipantId,
    pub agent: ParticipantId,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CallMedia {
    pub muted: bool,
    pub video: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Call {
    pub started_by: ParticipantId,
    pub members: BTreeMap<ParticipantId, CallMedia>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PendingTransfer {
    pub target: TransferTarget,
    pub message: Option<String>,
    /// Who sent it (for the agents it is offered to); empty in sessions kept before it
    /// was kept.
    #[serde(default)]
    pub from_name: String,
    #[serde(default)]
    pub from_account: String,
}

/// Who receives a broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Audience {
    /// Every admitted participant, agents included (shares, control, who is in the
    /// session: an agent names the people who watch and control to its customer).
    Admitted,
    /// Admitted people: reps and customers, not agents (chat, call).
    People,
    /// Admitted reps only (waiting room, consent answers).
    Reps,
    /// Everyone, waiting customers too (the session's end).
    Everyone,
}

/// One support session: events in, outputs out. See the crate documentation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub(crate) number: SessionNumber,
    pub(crate) config: SessionConfig,
    pub(crate) ended: Option<EndReason>,
    pub(crate) participants: BTreeMap<ParticipantId, Participant>,
    pub(crate) active_customer: Option<ParticipantId>,
    pub(crate) shares: BTreeMap<ShareId, Share>,
    pub(crate) last_share: u64,
    pub(crate) control: Option<ControlInfo>,
    pub(crate) pending_control: Option<PendingControl>,
    pub(crate) call: Option<Call>,
    pub(crate) pending_transfer: Option<PendingTransfer>,
    /// The primary who took a WebACD transfer, and its message (R10): said in every
    /// `joined` to them, so a resume, or the accept sent again after its answer was lost,
    /// still shows it. Kept sessions from before it existed have none.
    #[serde(default)]
    pub(crate) transfer_note: Option<(ParticipantId, String)>,
    /// A rep is recording the session; kept sessions from before it existed have none.
    #[serde(default)]
    pub(crate) recording: Option<tandem_protocol::RecordingInfo>,
    /// The primary's session page has not opened yet and R1's "Email" was ticked.
    pub(crate) invite_dialog_pending: bool,
    /// The latest time seen; audit records never go back in time even if the caller's
    /// clock does (C3).
    pub(crate) clock: Timestamp,
}

impl Session {
    /// Start a session for a rep (R1). The rep's page is expected to connect within the
    /// attach grace period, so a timer is set for it from the start (R2).
    pub fn start(start: Start, now: Timestamp) -> Result<(Session, Vec<Output>), SessionError> {
        let name = crate::names::valid_name(&start.name)?;
        let mut session = Session {
            number: start.number,
            ended: None,
            participants: BTreeMap::new(),
            active_customer: None,
            shares: BTreeMap::new(),
            last_share: 0,
            control: None,
            pending_control: None,
            call: None,
            pending_transfer: None,
            transfer_note: None,
            recording: None,
            invite_dialog_pending: start.email_invite,
            clock: now,
            config: start.config,
        };
        session.participants.insert(
            start.primary,
            Participant {
                name,
                role: Role::PrimaryRep,
                admission: Admission::Admitted,
                connected: false,
                rep: Some(start.rep),
                agent: None,
                customer: None,
                control_consent: false,
            },
        );
        let mut out = Outbox::new(session.number, now);
        let actor = session.actor(start.primary);
        out.audit(
            actor,
            AuditAction::Started {
                primary: start.primary,
            },
        );
        out.push(Output::SetTimer {
            timer: Timer::Reconnect(start.primary),
            at: now.plus_millis(session.config.attach_grace_ms),
        });
        Ok((session, out.into_outputs()))
    }

    /// Apply one event at time `now`. On `Err` nothing changed and nothing is to be done
    /// but telling the sender (the error's `code()` and message are made for that).
    pub fn handle(&mut self, event: Event, now: Timestamp) -> Result<Vec<Output>, SessionError> {
        if self.ended.is_some() {
            return Err(SessionError::Ended);
        }
        let now = now.max(self.clock);
        let mut out = Outbox::new(self.number, now);
        match event {
            Event::Join(join) => self.join(join, &mut out)?,
            Event::Command { from, message } => self.command(from, message, &mut out)?,
            Event::Admit {
                from,
                participant,
                rep_load_elsewhere,
            } => self.admit(from, participant, rep_load_elsewhere, &mut out)?,
            Event::StartRecording { from, recorder } => {
                self.start_recording(from, recorder, &mut out)?
            }
            Event::Connected { who } => self.connected(who, &mut out)?,
            Event::ConnectionLost { who } => self.connection_lost(who, &mut out)?,
            Event::PageClosed { who } => self.leave(who, &mut out)?,
            Event::TimerFired(Timer::Reconnect(who)) => self.reconnect_expired(who, &mut out),
            Event::Terminate { reason, by } => self.terminate(reason, by, &mut out),
        }
        self.clock = now;
        Ok(out.into_outputs())
    }

    fn command(
        &mut self,
        from: ParticipantId,
        message: ClientMessage,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        if message.is_connection_level() {
            return Err(SessionError::NotASessionCommand(message.kind()));
        }
        let sender = self.participant(from)?;
        if !sender.is_admitted() && message != ClientMessage::Leave {
            return Err(SessionError::NotPermitted(
                "you are in the waiting room; a support rep will admit you shortly",
            ));
        }
        match message {
            // The runtime should send `Event::Admit`, which knows the rep's other sessions.
            ClientMessage::Admit { participant } => self.admit(from, participant, 0, out),
            ClientMessage::Deny { participant } => self.deny(from, participant, out),
            ClientMessage::SetActiveCustomer { participant } => {
                self.set_active_customer(from, participant, out)
            }
            ClientMessage::Chat { text } => self.chat(from, text, out),
            ClientMessage::Invite {
                invitee,
                address,
                own_email_program,
                language,
            } => self.invite(from, invitee, address, own_email_program, language, out),
            ClientMessage::RetryInvite { invite, language } => {
                self.retry_invite(from, invite, language, out)
            }
            ClientMessage::RequestShare => self.request_share(from, out),
            ClientMessage::DeclineShare => self.decline_share(from, out),
            ClientMessage::StartShare { source } => self.start_share(from, source, out),
            ClientMessage::StopShare { share } => self.stop_share(from, share, out),
            ClientMessage::ViewShare { share } => self.view_share(from, share, out),
            ClientMessage::StopViewing { share } => self.stop_viewing(from, share, out),
            ClientMessage::Offer { to, stream, sdp } => {
                self.check_relay(from, to, stream)?;
                out.send(to, ServerMessage::Offer { from, stream, sdp });
                Ok(())
            }
            ClientMessage::Answer { to, stream, sdp } => {
                self.check_relay(from, to, stream)?;
                out.send(to, ServerMessage::Answer { from, stream, sdp });
                Ok(())
            }
            ClientMessage::IceCandidate {
                to,
                stream,
                candidate,
            } => {
                self.check_relay(from, to, stream)?;
                let message = ServerMessage::IceCandidate {
                    from,
                    stream,
                    candidate,
                };
                out.send(to, message);
                Ok(())
            }
            ClientMessage::RequestControl => self.give_control(from, from, out),
            ClientMessage::GiveControl { to } => self.give_control(from, to, out),
            ClientMessage::ReleaseControl => self.release_control(from, out),
            ClientMessage::ControlConsent { granted } => self.control_consent(from, granted, out),
            ClientMessage::RevokeControl => self.revoke_control(from, out),
            ClientMessage::FileTransfer {
                peer,
                direction,
                name,
                size,
                sha256,
                outcome,
                saved_as,
            } => {
                let report = crate::files::FileReport {
                    peer,
                    direction,
                    name,
                    size,
                    sha256,
                    outcome,
                    saved_as,
                };
                self.file_transfer(from, report, out)
            }
            ClientMessage::TransferSession { to } => self.transfer_session(from, to, out),
            ClientMessage::WebacdTransfer { target, message } => {
                self.webacd_transfer(from, target, message, out)
            }
            ClientMessage::StartCall => self.start_call(from, out),
            ClientMessage::JoinCall { video } => self.join_call(from, video, out),
            ClientMessage::CallMedia { muted, video } => self.call_media(from, muted, video, out),
            ClientMessage::LeaveCall => self.leave_call(from, out),
            ClientMessage::EndCall => self.end_call(from, out),
            ClientMessage::StopRecording => self.stop_recording(from, out),
            ClientMessage::Leave => self.leave(from, out),
            ClientMessage::EndSession => {
                self.require_primary(from, "only the primary rep can end the session")?;
                self.end(EndReason::EndedByRep, Some(from), out);
                Ok(())
            }
            ClientMessage::Hello { .. }
            | ClientMessage::JoinByLink { .. }
            | ClientMessage::JoinByNumber { .. }
            | ClientMessage::OpenSession { .. }
            | ClientMessage::Assist { .. }
            | ClientMessage::AcceptTransfer { .. }
            | ClientMessage::AttachAgent { .. }
            | ClientMessage::Resume { .. }
            | ClientMessage::Dashboard { .. }
            // The runtime sends `Event::StartRecording`, with the recorder it brings in.
            | ClientMessage::StartRecording => {
                Err(SessionError::NotASessionCommand(message.kind()))
            }
        }
    }

    // --- shared helpers ---

    pub(crate) fn participant(&self, id: ParticipantId) -> Result<&Participant, SessionError> {
        self.participants
            .get(&id)
            .ok_or(SessionError::UnknownParticipant(id))
    }

    pub(crate) fn participant_mut(
        &mut self,
        id: ParticipantId,
    ) -> Result<&mut Participant, SessionError> {
        self.participants
            .get_mut(&id)
            .ok_or(SessionError::UnknownParticipant(id))
    }

    pub(crate) fn require_primary(
        &self,
        id: ParticipantId,
        refusal: &'static str,
    ) -> Result<&Participant, SessionError> {
        let p = self.participant(id)?;
        if p.role == Role::PrimaryRep {
            Ok(p)
        } else {
            Err(SessionError::NotPermitted(refusal))
        }
    }

    /// The primary rep or an assistant: reps who may use the controlling features (R9).
    pub(crate) fn require_active_rep(
        &self,
        id: ParticipantId,
        refusal: &'static str,
    ) -> Result<&Participant, SessionError> {
        let p = self.participant(id)?;
        if p.is_active_rep() {
            Ok(p)
        } else {
            Err(SessionError::NotPermitted(refusal))
        }
    }

    pub(crate) fn actor(&self, id: ParticipantId) -> Option<Actor> {
        self.participants.get(&id).map(|p| Actor {
            participant: id,
            name: p.name.clone(),
            account: p.rep.as_ref().map(|r| r.account.clone()),
        })
    }

    pub(crate) fn info(&self, id: ParticipantId) -> Option<ParticipantInfo> {
        self.participants.get(&id).map(|p| ParticipantInfo {
            id,
            name: p.name.clone(),
            role: p.role,
            admission: p.admission,
            connected: p.connected,
            agent: p.agent,
            customer: p.customer,
        })
    }

    pub(crate) fn broadcast(&self, audience: Audience, message: ServerMessage, out: &mut Outbox) {
        self.broadcast_except(audience, None, message, out);
    }

    pub(crate) fn broadcast_except(
        &self,
        audience: Audience,
        except: Option<ParticipantId>,
        message: ServerMessage,
        out: &mut Outbox,
    ) {
        for (&id, p) in &self.participants {
            let included = match audience {
                Audience::Everyone => true,
                Audience::Admitted => p.is_admitted(),
                Audience::People => p.is_admitted() && p.role != Role::Agent,
                Audience::Reps => p.is_admitted() && p.role.is_rep(),
            };
            if included && Some(id) != except {
                out.send(id, message.clone());
            }
        }
    }

    /// Tell the people in the session that a participant changed: a participant's entry, to those who see them: a customer in the waiting
    /// room only to the reps (C2), as when they came.
    pub(crate) fn announce_update(&self, id: ParticipantId, out: &mut Outbox) {
        let audience = match self.participants.get(&id) {
            Some(p) if p.is_admitted() => Audience::Admitted,
            Some(_) => Audience::Reps,
            None => return,
        };
        if let Some(participant) = self.info(id) {
            self.broadcast(
                audience,
                ServerMessage::ParticipantUpdated { participant },
                out,
            );
        }
    }

    pub(crate) fn call_info(&self) -> Option<CallInfo> {
        self.call.as_ref().map(|call| CallInfo {
            started_by: call.started_by,
            members: call
                .members
                .iter()
                .map(|(&participant, media)| CallMember {
                    participant,
                    muted: media.muted,
                    video: media.video,
                })
                .collect(),
        })
    }

    /// The whole picture for one participant, sent when they join or come back.
    pub fn snapshot(&self, you: ParticipantId) -> Option<SessionSnapshot> {
        let me = self.participants.get(&you)?;
        Some(SessionSnapshot {
            number: self.number,
            you,
            role: me.role,
            participants: self
                .participants
                .keys()
                .filter_map(|&id| self.info(id))
                .filter(|info| me.role.is_rep() || info.admission == Admission::Admitted)
                .collect(),
            active_customer: self.active_customer,
            shares: self.shares(),
            control: self.control.clone(),
            call: self.call_info(),
            open_invite_dialog: false,
            transfer_message: self
                .transfer_note
                .as_ref()
                .filter(|(to, _)| *to == you)
                .map(|(_, message)| message.clone()),
            max_file_bytes: self.config.max_file_bytes,
            recording: self.recording,
            recording_allowed: self.config.recording_allowed,
        })
    }

    /// End the session for everyone.
    pub(crate) fn end(&mut self, reason: EndReason, by: Option<ParticipantId>, out: &mut Outbox) {
        let actor = by.and_then(|id| self.actor(id));
        self.finish(reason, actor, None, out);
    }

    /// Ended from outside the session: by an administrator (their account), or the server.
    fn terminate(&mut self, reason: EndReason, admin: Option<String>, out: &mut Outbox) {
        self.finish(reason, None, admin, out);
    }

    fn finish(
        &mut self,
        reason: EndReason,
        actor: Option<crate::audit::Actor>,
        admin: Option<String>,
        out: &mut Outbox,
    ) {
        self.broadcast(
            Audience::Everyone,
            ServerMessage::SessionEnded {
                reason,
                message: reason.describe().to_owned(),
            },
            out,
        );
        if let Some(recording) = self.recording {
            // The recording ends with the session, by whoever ended it.
            let recorder = recording.recorder;
            out.audit(actor.clone(), AuditAction::RecordingStopped { recorder });
        }
        out.audit(actor, AuditAction::Ended { reason, admin });
        self.ended = Some(reason);
        self.shares.clear();
        self.control = None;
        self.pending_control = None;
        self.call = None;
        self.pending_transfer = None;
        self.recording = None;
        out.push(Output::Ended { reason });
    }

    // --- queries for the runtime ---

    /// Whether `other` is this session, apart from the latest time seen (which moves
    /// with every event, even one that changes nothing else, such as a chat line or a
    /// relayed ICE candidate): what a runtime keeping sessions on disk must write again.
    pub fn same_state(&self, other: &Session) -> bool {
        // Every field but the clock, by name: a new field cannot be forgotten here. No
        // copy is made: this runs for every message the server handles.
        let Session {
            number,
            config,
            ended,
            participants,
            active_customer,
            shares,
            last_share,
            control,
            pending_control,
            call,
            pending_transfer,
            transfer_note,
            recording,
            invite_dialog_pending,
            clock: _,
        } = self;
        *number == other.number
            && *config == other.config
            && *ended == other.ended
            && *participants == other.participants
            && *active_customer == other.active_customer
            && *shares == other.shares
            && *last_share == other.last_share
            && *control == other.control
            && *pending_control == other.pending_control
            && *call == other.call
            && *pending_transfer == other.pending_transfer
            && *transfer_note == other.transfer_note
            && *recording == other.recording
            && *invite_dialog_pending == other.invite_dialog_pending
    }

    pub fn number(&self) -> SessionNumber {
        self.number
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// `Some(reason)` once the session has ended.
    pub fn ended(&self) -> Option<EndReason> {
        self.ended
    }

    pub fn role(&self, id: ParticipantId) -> Option<Role> {
        self.participants.get(&id).map(|p| p.role)
    }

    pub fn primary(&self) -> Option<ParticipantId> {
        self.participants
            .iter()
            .find(|(_, p)| p.role == Role::PrimaryRep)
            .map(|(&id, _)| id)
    }

    pub fn participants(&self) -> Vec<ParticipantInfo> {
        self.participants
            .keys()
            .filter_map(|&id| self.info(id))
            .collect()
    }

    pub fn active_customer(&self) -> Option<ParticipantId> {
        self.active_customer
    }

    pub fn control(&self) -> Option<&ControlInfo> {
        self.control.as_ref()
    }

    /// Admitted customers in this session: the places they take in R4's maximum, and what
    /// a runtime sums over a rep's other sessions for [`crate::Join::rep_load_elsewhere`].
    /// Customers in the waiting room do not count (see [`Session::waiting_count`]).
    pub fn customer_count(&self) -> u32 {
        self.count_customers(Admission::Admitted)
    }

    /// Customers in the waiting room (C2), bounded by [`SessionConfig::max_waiting`].
    pub fn waiting_count(&self) -> u32 {
        self.count_customers(Admission::Waiting)
    }

    fn count_customers(&self, admission: Admission) -> u32 {
        let count = self
            .participants
            .values()
            .filter(|p| p.role == Role::Customer && p.admission == admission)
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// Whether `agent` may inject input sent by `from` (C1, R8, R9): only from the
    /// control holder, only into the agent the customer consented on.
    pub fn may_inject(&self, from: ParticipantId, agent: ParticipantId) -> bool {
        self.control
            .as_ref()
            .is_some_and(|c| c.holder == from && c.agent == agent)
    }

    pub fn shares(&self) -> Vec<ShareInfo> {
        self.shares
            .iter()
            .map(|(&share, s)| ShareInfo {
                share,
                owner: s.owner,
                source: s.source.clone(),
            })
            .collect()
    }

    pub fn call(&self) -> Option<CallInfo> {
        self.call_info()
    }

    pub fn transfer_pending(&self) -> Option<&TransferTarget> {
        self.pending_transfer.as_ref().map(|t| &t.target)
    }

    /// R10: the WebACD transfer the session waits on, as `Output::Transfer` gave it when
    /// it began to wait (so a runtime that lost it can offer it again).
    pub fn waiting_transfer(&self) -> Option<WebacdTransfer> {
        self.pending_transfer.as_ref().map(|t| WebacdTransfer {
            session: self.number,
            from_name: t.from_name.clone(),
            from_account: t.from_account.clone(),
            target: t.target.clone(),
            message: t.message.clone(),
        })
    }

    /// Check the invariants every state must keep. The property tests call this after
    /// every event; a runtime may call it in debug builds.
    pub fn check_invariants(&self) -> Result<(), String> {
        let primaries = self
            .participants
            .values()
            .filter(|p| p.role == Role::PrimaryRep)
            .count();
        if primaries > 1 {
            return Err(format!("{primaries} primary reps"));
        }
        if self.ended.is_none() && primaries == 0 && self.pending_transfer.is_none() {
            return Err("a live session without a primary rep and no transfer pending".into());
        }
        // R4 and C2 are checked with the load elsewhere added, so within one session the
        // counts alone can never pass the caps.
        if self.customer_count() > self.config.max_customers_per_rep {
            return Err(format!(
                "{} admitted customers, more than the maximum of {}",
                self.customer_count(),
                self.config.max_customers_per_rep
            ));
        }
        if self.waiting_count() > self.config.max_waiting {
            return Err(format!(
                "{} customers waiting, more than the cap of {}",
                self.waiting_count(),
                self.config.max_waiting
            ));
        }
        if let Some(c) = &self.control {
            let holder = self.participants.get(&c.holder);
            if !holder.is_some_and(|h| h.is_admitted() && h.is_active_rep()) {
                return Err(format!("control holder {} is not a present rep", c.holder));
            }
            let agent = self
                .participants
                .get(&c.agent)
                .ok_or_else(|| format!("control agent {} is gone", c.agent))?;
            if agent.role != Role::Agent || !agent.control_consent {
                return Err(format!("agent {} did not consent to control", c.agent));
            }
            if agent.customer.is_none() || agent.customer != self.active_customer {
                return Err("control is of a customer who is not the active one".into());
            }
        }
        if let Some(pending) = &self.pending_control {
            if !self.participants.contains_key(&pending.grantee)
                || !self.participants.contains_key(&pending.agent)
            {
                return Err("a control request names someone who left".into());
            }
        }
        if let Some(active) = self.active_customer {
            let p = self
                .participants
                .get(&active)
                .ok_or_else(|| format!("active customer {active} is gone"))?;
            if p.role != Role::Customer || !p.is_admitted() {
                return Err(format!(
                    "active customer {active} is not an admitted customer"
                ));
            }
        }
        for (id, share) in &self.shares {
            if !self.participants.contains_key(&share.owner) {
                return Err(format!("{id} is owned by someone who left"));
            }
            if let Some(v) = share
                .viewers
                .iter()
                .find(|v| !self.participants.contains_key(v))
            {
                return Err(format!("{id} is viewed by {v}, who left"));
            }
        }
        for (id, p) in &self.participants {
            if let Some(agent) = p.agent {
                let linked = self.participants.get(&agent).and_then(|a| a.customer);
                if linked != Some(*id) {
                    return Err(format!("customer {id} and agent {agent} disagree"));
                }
            }
        }
        if let Some(r) = &self.recording {
            let recorder = self.participants.get(&r.recorder).map(|p| p.role);
            if recorder != Some(Role::Recorder) {
                return Err(format!(
                    "recording by {}, who is not a recorder",
                    r.recorder
                ));
            }
        }
        if let Some(call) = &self.call {
            if call.members.is_empty() {
                return Err("a call with no members".into());
            }
            if let Some(m) = call
                .members
                .keys()
                .find(|m| !self.participants.contains_key(m))
            {
                return Err(format!("call member {m} left the session"));
            }
        }
        Ok(())
    }
}
