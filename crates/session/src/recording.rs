//! Recording: a rep starts and stops it where the site allows; everyone, the customer's
//! agent included, sees that the session is being recorded. The recorder is a participant
//! of its own (role `recorder`) that views every share like any viewer, so the recording
//! is the H.264 the agent (or a rep's browser) already sends.

use tandem_protocol::{Admission, ParticipantId, RecordingInfo, Role, ServerMessage};

use crate::audit::AuditAction;
use crate::error::SessionError;
use crate::output::Outbox;
use crate::session::{Audience, Participant, Session};

/// The recorder's name in the participants list.
pub const RECORDER_NAME: &str = "Recording";

impl Session {
    pub(crate) fn start_recording(
        &mut self,
        from: ParticipantId,
        recorder: ParticipantId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        let sender = self.participant(from)?;
        if !sender.is_admitted() {
            return Err(SessionError::NotPermitted(
                "you are in the waiting room; a support rep will admit you shortly",
            ));
        }
        self.require_active_rep(from, "only the primary rep or an assistant can record")?;
        if !self.config.recording_allowed {
            return Err(SessionError::NotPermitted(
                "recording is turned off on this site; an administrator can allow it on the \
                 admin page",
            ));
        }
        if self.recording.is_some() {
            return Err(SessionError::NotPermitted(
                "the session is already being recorded",
            ));
        }
        if self.participants.contains_key(&recorder) {
            return Err(SessionError::DuplicateParticipant(recorder));
        }
        self.participants.insert(
            recorder,
            Participant {
                name: RECORDER_NAME.to_owned(),
                role: Role::Recorder,
                admission: Admission::Admitted,
                connected: true,
                rep: None,
                agent: None,
                customer: None,
                control_consent: false,
            },
        );
        let info = RecordingInfo {
            started_by: from,
            since: out.now,
            recorder,
        };
        self.recording = Some(info);
        if let Some(snapshot) = self.snapshot(recorder) {
            out.send(recorder, ServerMessage::Joined(snapshot));
        }
        if let Some(participant) = self.info(recorder) {
            let joined = ServerMessage::ParticipantJoined { participant };
            self.broadcast_except(Audience::Admitted, Some(recorder), joined, out);
        }
        let state = ServerMessage::RecordingState {
            recording: Some(info),
        };
        self.broadcast_except(Audience::Admitted, Some(recorder), state, out);
        out.audit(self.actor(from), AuditAction::RecordingStarted { recorder });
        Ok(())
    }

    pub(crate) fn stop_recording(
        &mut self,
        from: ParticipantId,
        out: &mut Outbox,
    ) -> Result<(), SessionError> {
        self.require_active_rep(
            from,
            "only the primary rep or an assistant can stop recording",
        )?;
        let recorder = self
            .recording
            .map(|r| r.recorder)
            .ok_or(SessionError::NotPermitted(
                "the session is not being recorded",
            ))?;
        let actor = self.actor(from);
        // Told here, not by `forget_recorder`: the audit names the rep who stopped it.
        self.recording = None;
        self.remove(recorder, tandem_protocol::LeaveReason::Left, out);
        let state = ServerMessage::RecordingState { recording: None };
        self.broadcast(Audience::Admitted, state, out);
        out.audit(actor, AuditAction::RecordingStopped { recorder });
        Ok(())
    }

    /// The recorder left by itself (it could not write): everyone sees that recording
    /// stopped, and the audit says so, by nobody.
    pub(crate) fn forget_recorder(&mut self, who: ParticipantId, out: &mut Outbox) {
        if self.recording.is_some_and(|r| r.recorder == who) {
            self.recording = None;
            let state = ServerMessage::RecordingState { recording: None };
            self.broadcast(Audience::Admitted, state, out);
            out.audit(None, AuditAction::RecordingStopped { recorder: who });
        }
    }

    /// The recording, while there is one.
    pub fn recording(&self) -> Option<RecordingInfo> {
        self.recording
    }
}
