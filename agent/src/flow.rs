//! What the agent does, as a state machine without IO, like the session crate: inputs are
//! what the server said, what the customer answered or typed, and what capture and
//! control reported; outputs are [`Effect`]s the driver (`main.rs`) carries out — messages
//! to send, questions to ask, capture to start or stop, viewers to connect, sentences to
//! tell the customer. Unit-tested below without a display, a network or a clock.
//!
//! The customer's consent comes first (C1): nothing is captured before a yes to
//! [`Question::Share`], no input is injected before a yes to [`Question::Control`], and the
//! customer stops sharing or takes control back at any moment, before the server has heard
//! of it. Only the customer being helped shares (R5); a switch stops the share (R7).

use std::collections::{HashMap, VecDeque};

use tandem_protocol::{
    ClientMessage, ControlChange, EndReason, ParticipantId, Role, ServerMessage, ShareId,
    ShareSource, ShareStopReason, TransferTarget,
};

use crate::text::{Arg, Text};

/// What the customer is asked, one question at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Question {
    /// May the rep see the screen (or the window)?
    Share,
    /// May this rep (by name) control the mouse and keyboard?
    Control { name: String },
    /// May this viewer's file (its safe name, its size) be saved in Downloads? `token`:
    /// the agent's own number for this offer (files.rs), so an answer never lands on
    /// another offer.
    File {
        viewer: ParticipantId,
        token: u64,
        name: String,
        size: u64,
    },
    /// Which file (if any) goes to this viewer, who asked for one? The answer is a path
    /// ([`Input::Picked`]).
    Pick { viewer: ParticipantId, token: u64 },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Server(ServerMessage),
    /// The customer's answer to the question last asked.
    Answer(bool),
    /// Before a yes to [`Question::Share`]: what the customer chose to share instead of
    /// what the agent was started with.
    ShareWhat(Shared),
    /// Capture started, or why it could not.
    CaptureStarted(Result<(), String>),
    /// Input injection opened, or why it could not.
    ControlOpened(Result<(), String>),
    /// Capture ended by itself (the shared window closed), with why.
    CaptureEnded(Option<Text>),
    /// The customer stops sharing.
    StopSharing,
    /// The customer takes control back.
    TakeBackControl,
    /// The customer leaves (Ctrl-C, the window closed).
    Leave,
    /// A viewer offers a file (files.rs checked who may, and the name and size).
    FileOffered {
        viewer: ParticipantId,
        token: u64,
        name: String,
        size: u64,
    },
    /// A viewer asks for a file (files.rs checked who may).
    FileRequested {
        viewer: ParticipantId,
        token: u64,
    },
    /// The customer's answer to [`Question::Pick`]: the file's path, or none (no).
    Picked(Option<std::path::PathBuf>),
    /// That offer or request is gone (cancelled by the rep, or its connection closed): its
    /// question is not asked, or is taken back.
    FileWithdrawn {
        viewer: ParticipantId,
        token: u64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send on the agent's connection.
    Send(ClientMessage),
    /// Send `leave` on the customer's own connection, if the agent joined for them.
    LeaveAsCustomer,
    /// Ask the customer; the answer comes back as [`Input::Answer`].
    Ask {
        question: Question,
        text: Text,
    },
    /// Start capturing; the result comes back as [`Input::CaptureStarted`].
    StartCapture,
    /// Stop capturing and close every viewer's connection.
    StopCapture,
    /// Offer the stream to a viewer.
    AddViewer {
        viewer: ParticipantId,
        name: String,
        share: ShareId,
    },
    RemoveViewer(ParticipantId),
    /// A viewer's answer or candidate, for its peer connection.
    Signal(ServerMessage),
    /// Open input injection; the result comes back as [`Input::ControlOpened`].
    OpenControl,
    /// Who controls now (none: nobody); input from anyone else is dropped.
    SetHolder(Option<ParticipantId>),
    /// The customer's answer to a file offer (no, too, when the question became moot).
    FileAnswer {
        viewer: ParticipantId,
        token: u64,
        yes: bool,
    },
    /// The customer's pick for a viewer's request (none: no, or the question became moot).
    FilePicked {
        viewer: ParticipantId,
        token: u64,
        path: Option<std::path::PathBuf>,
    },
    /// A sentence for the customer.
    Tell(Text),
    /// The agent's part is over (the session ended, the customer left, or it failed).
    End(Result<(), String>),
}

/// What the customer shares, as the session is told and the customer reads it.
/// A size as people read it: "512 bytes", "1.4 MB" (powers of 1000, as file managers
/// show them).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shared {
    Desktop,
    /// One monitor, by the system's name for it.
    Monitor(String),
    /// One window, by its title.
    Window(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Capture {
    Off,
    Starting,
    On,
}

#[derive(Debug)]
pub struct Agent {
    /// What is shared, for sentences: "your whole screen", "the window \"…\"".
    what: Text,
    source: ShareSource,
    me: Option<ParticipantId>,
    my_customer: Option<ParticipantId>,
    /// The primary rep's name, once known.
    rep: Option<String>,
    /// The primary rep, once known.
    primary: Option<ParticipantId>,
    names: HashMap<ParticipantId, String>,
    capture: Capture,
    share: Option<ShareId>,
    holder: Option<ParticipantId>,
    /// Asked and not answered yet.
    asking: Option<Question>,
    pending: VecDeque<Question>,
    /// The rep whose control request was allowed while injection opens.
    control_for: Option<String>,
    /// A WebACD transfer (R10) is under way: the next primary rep is news.
    transferring: bool,
    /// The session is being recorded: the customer is told, and the panel says so.
    recording: bool,
    effects: Vec<Effect>,
}

impl Agent {
    /// An agent that will share `window` (a title), or the whole screen.
    pub fn new(window: Option<&str>) -> Self {
        let (what, source) = Self::source_of(
            window.map_or(Shared::Desktop, |title| Shared::Window(title.to_owned())),
        );
        Self {
            what,
            source,
            me: None,
            my_customer: None,
            rep: None,
            primary: None,
            names: HashMap::new(),
            capture: Capture::Off,
            share: None,
            holder: None,
            asking: None,
            pending: VecDeque::new(),
            control_for: None,
            transferring: false,
            recording: false,
            effects: Vec::new(),
        }
    }

    fn source_of(shared: Shared) -> (Text, ShareSource) {
        match shared {
            Shared::Desktop => (Text::new("what-desktop"), ShareSource::Desktop),
            Shared::Monitor(name) => (
                Text::new("what-monitor").arg("name", name.as_str()),
                ShareSource::Monitor { name },
            ),
            Shared::Window(title) => (
                Text::new("what-window").arg("title", title.as_str()),
                ShareSource::Window { title },
            ),
        }
    }

    pub fn what(&self) -> &Text {
        &self.what
    }

    /// The primary rep's name, or words for "the support rep" before it is known.
    pub fn rep(&self) -> Arg {
        match &self.rep {
            Some(name) => Arg::Str(name.clone()),
            None => Text::new("rep-unknown").into(),
        }
    }

    /// The question being asked, if any.
    pub fn question(&self) -> Option<&Question> {
        self.asking.as_ref()
    }

    #[cfg(test)]
    fn sharing(&self) -> bool {
        self.capture == Capture::On
    }

    /// Whether the customer's next line answers a question.
    pub fn asking(&self) -> bool {
        self.asking.is_some()
    }

    pub fn holder(&self) -> Option<ParticipantId> {
        self.holder
    }

    /// Whether the session is being recorded.
    pub fn recording(&self) -> bool {
        self.recording
    }

    /// Whether `viewer` may send the customer files: it holds control, or it is the
    /// primary rep.
    pub fn may_send_files(&self, viewer: ParticipantId) -> bool {
        self.holder == Some(viewer) || self.primary == Some(viewer)
    }

    /// A participant's name as the session gave it.
    pub fn name_of(&self, who: ParticipantId) -> Option<&str> {
        self.names.get(&who).map(String::as_str)
    }

    /// One input; the effects to carry out, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Effect> {
        match input {
            Input::Server(message) => self.server(message),
            Input::Answer(yes) => self.answer(yes),
            Input::ShareWhat(shared) => {
                if self.asking == Some(Question::Share) {
                    (self.what, self.source) = Self::source_of(shared);
                }
            }
            Input::CaptureStarted(Ok(())) if self.capture == Capture::Starting => {
                self.capture = Capture::On;
                self.send(ClientMessage::StartShare {
                    source: self.source.clone(),
                });
                self.tell(Text::new("sharing-started").arg("what", self.what.clone()));
            }
            Input::CaptureStarted(Ok(())) => {
                // Not wanted any more (the turn passed meanwhile): capture nothing.
                self.effects.push(Effect::StopCapture);
            }
            Input::CaptureStarted(Err(why)) => {
                self.capture = Capture::Off;
                self.tell(Text::new("capture-failed").arg("why", why));
            }
            Input::ControlOpened(result) => {
                let name = self.control_for.take().map_or_else(|| self.rep(), Arg::Str);
                let granted = match result {
                    Ok(()) => true,
                    Err(why) => {
                        self.tell(Text::new("capture-failed").arg("why", why));
                        false
                    }
                };
                self.send(ClientMessage::ControlConsent { granted });
                if !granted {
                    self.tell(Text::new("cannot-control").arg("name", name));
                }
            }
            Input::CaptureEnded(reason) => {
                if let Some(reason) = reason {
                    self.tell(Text::new("capture-ended").arg("why", reason));
                }
                if let Some(share) = self.share.take() {
                    self.send(ClientMessage::StopShare { share });
                }
                self.stop_capture();
            }
            Input::StopSharing => {
                if self.capture != Capture::Off {
                    self.end_control();
                    if let Some(share) = self.share.take() {
                        self.send(ClientMessage::StopShare { share });
                    }
                    self.stop_capture();
                    self.tell(Text::new("you-stopped"));
                }
            }
            Input::TakeBackControl => {
                if self.holder.is_some() {
                    self.end_control();
                    self.tell(Text::new("took-back"));
                }
            }
            Input::FileOffered {
                viewer,
                token,
                name,
                size,
            } => self.pending.push_back(Question::File {
                viewer,
                token,
                name,
                size,
            }),
            Input::FileRequested { viewer, token } => {
                self.pending.push_back(Question::Pick { viewer, token });
            }
            Input::Picked(path) => match self.asking.take() {
                Some(Question::Pick { viewer, token }) => {
                    self.effects.push(Effect::FilePicked {
                        viewer,
                        token,
                        path,
                    });
                }
                // A path typed for no question, or for another: nothing.
                other => self.asking = other,
            },
            Input::FileWithdrawn { viewer, token } => {
                let this = |q: &Question| matches!(q, Question::File { viewer: v, token: t, .. } | Question::Pick { viewer: v, token: t } if *v == viewer && *t == token);
                self.pending.retain(|q| !this(q));
                match self.asking.take_if(|q| this(q)) {
                    Some(Question::File { name, .. }) => {
                        self.tell(Text::new("file-withdrawn").arg("name", name.as_str()));
                    }
                    Some(Question::Pick { viewer, .. }) => {
                        let rep = self.viewer_name(viewer);
                        self.tell(Text::new("file-request-withdrawn").arg("rep", rep));
                    }
                    _ => {}
                }
            }
            Input::Leave => {
                self.tell(Text::new("stopping"));
                if let Some(share) = self.share.take() {
                    self.send(ClientMessage::StopShare { share });
                }
                self.send(ClientMessage::Leave);
                self.effects.push(Effect::LeaveAsCustomer);
                self.stop_capture();
                self.effects.push(Effect::End(Ok(())));
            }
        }
        self.next_question();
        std::mem::take(&mut self.effects)
    }

    fn server(&mut self, message: ServerMessage) {
        match message {
            ServerMessage::Joined(snapshot) if self.me.is_none() => {
                self.learn(&snapshot);
                self.me = Some(snapshot.you);
                self.my_customer = snapshot
                    .participants
                    .iter()
                    .find(|p| p.id == snapshot.you)
                    .and_then(|p| p.customer);
                self.tell(Text::new("connected").arg("number", snapshot.number.to_string()));
                if self.my_customer.is_some() && snapshot.active_customer == self.my_customer {
                    self.pending.push_back(Question::Share);
                } else {
                    self.tell(Text::new("waiting-turn").arg("rep", self.rep()));
                }
            }
            // Back after a lost connection: who is who may have changed meanwhile.
            ServerMessage::Joined(snapshot) => self.learn(&snapshot),
            ServerMessage::Error { message, .. } if self.me.is_none() => {
                self.effects.push(Effect::LeaveAsCustomer);
                self.effects.push(Effect::End(Err(message)));
            }
            ServerMessage::ShareStarted { share } if Some(share.owner) == self.me => {
                if self.capture == Capture::On {
                    self.share = Some(share.share);
                } else {
                    // Capture stopped before the server confirmed the share (the customer
                    // pressed Enter, the window closed): end it, or it stays open, dead.
                    self.send(ClientMessage::StopShare { share: share.share });
                }
            }
            ServerMessage::ViewerJoined { share, viewer }
                if Some(share) == self.share && self.capture == Capture::On =>
            {
                let name = self
                    .names
                    .get(&viewer)
                    .cloned()
                    .unwrap_or_else(|| format!("viewer {viewer}"));
                self.effects.push(Effect::AddViewer {
                    viewer,
                    name,
                    share,
                });
            }
            ServerMessage::ViewerLeft { viewer, .. } => {
                self.effects.push(Effect::RemoveViewer(viewer));
            }
            message @ (ServerMessage::Answer { .. } | ServerMessage::IceCandidate { .. }) => {
                self.effects.push(Effect::Signal(message));
            }
            ServerMessage::ShareStopped { share, reason } if Some(share) == self.share => {
                self.share = None;
                self.stop_capture();
                let why = match reason {
                    ShareStopReason::SwitchedCustomer => "switched",
                    ShareStopReason::StoppedByOwner => "owner",
                    ShareStopReason::Replaced => "replaced",
                    ShareStopReason::OwnerLeft => "left",
                };
                self.tell(Text::new("share-stopped").arg("reason", why));
            }
            ServerMessage::ActiveCustomer { participant } => {
                if participant.is_some() && participant == self.my_customer {
                    if self.capture == Capture::Off && !self.share_question_open() {
                        self.tell(Text::new("your-turn").arg("rep", self.rep()));
                        self.pending.push_back(Question::Share);
                    }
                } else {
                    // Not this customer's turn: unanswered questions are moot (the server
                    // drops a pending control request on a switch too), and a capture that
                    // was never shared stops at once.
                    for question in self.pending.drain(..).chain(self.asking.clone()) {
                        match question {
                            Question::File { viewer, token, .. } => {
                                self.effects.push(Effect::FileAnswer {
                                    viewer,
                                    token,
                                    yes: false,
                                });
                            }
                            Question::Pick { viewer, token } => {
                                self.effects.push(Effect::FilePicked {
                                    viewer,
                                    token,
                                    path: None,
                                });
                            }
                            _ => {}
                        }
                    }
                    if self.asking.take().is_some() {
                        self.tell(Text::new("never-mind").arg("rep", self.rep()));
                    }
                    if self.capture != Capture::Off && self.share.is_none() {
                        self.stop_capture();
                    }
                }
            }
            ServerMessage::Error {
                message,
                request: Some(request),
                ..
            } if request == "start_share"
                && self.capture != Capture::Off
                && self.share.is_none() =>
            {
                // The share was refused (not this customer's turn): capture nothing.
                self.stop_capture();
                self.tell(Text::new("share-refused").arg("message", message));
            }
            ServerMessage::ShareRequested { name, .. }
                if self.capture == Capture::Off && !self.share_question_open() =>
            {
                self.tell(Text::new("asks-again").arg("name", name));
                self.pending.push_back(Question::Share);
            }
            ServerMessage::ControlRequested { name, .. } => {
                // The consent answers whichever request the server holds now (the newest):
                // an older question about control is replaced, never answered for it.
                self.pending
                    .retain(|q| !matches!(q, Question::Control { .. }));
                if matches!(self.asking, Some(Question::Control { .. })) {
                    self.asking = None;
                    self.tell(Text::new("request-changed").arg("name", name.as_str()));
                }
                self.pending.push_back(Question::Control { name });
            }
            ServerMessage::ControlChanged { control, reason } => {
                let holder = control
                    .filter(|c| Some(c.agent) == self.me)
                    .map(|c| c.holder);
                let before = std::mem::replace(&mut self.holder, holder);
                self.effects.push(Effect::SetHolder(holder));
                match holder {
                    Some(h) if before != Some(h) => {
                        let name = self
                            .names
                            .get(&h)
                            .map_or_else(|| self.rep(), |n| Arg::Str(n.clone()));
                        self.tell(Text::new("now-controls").arg("name", name));
                    }
                    None if before.is_some() && reason == ControlChange::SessionTransferred => {
                        self.tell(Text::new("control-ended-transfer"));
                    }
                    None if before.is_some() => {
                        self.tell(Text::new("nobody-controls"));
                    }
                    _ => {}
                }
            }
            ServerMessage::ParticipantJoined { participant }
            | ServerMessage::ParticipantUpdated { participant } => {
                if participant.role == Role::PrimaryRep {
                    // The rep who took a WebACD transfer (R10) joins as the primary.
                    if self.transferring && self.primary != Some(participant.id) {
                        self.tell(Text::new("new-rep").arg("name", participant.name.as_str()));
                    }
                    self.transferring = false;
                    self.primary = Some(participant.id);
                    self.rep = Some(participant.name.clone());
                } else if self.primary == Some(participant.id) {
                    self.primary = None;
                }
                self.names.insert(participant.id, participant.name);
            }
            ServerMessage::RecordingState { recording } => {
                self.note_recording(recording.is_some());
            }
            ServerMessage::Transferring { target } => {
                // R10: the rep hands the session on and leaves; the sharing goes on for
                // whoever takes it.
                let (kind, name) = match target {
                    TransferTarget::Agent { agent } => ("agent", agent),
                    TransferTarget::Queue { queue } => ("queue", queue),
                };
                self.transferring = true;
                self.tell(
                    Text::new("transferring")
                        .arg("kind", kind)
                        .arg("target", name.as_str()),
                );
            }
            ServerMessage::PrimaryChanged { primary, .. } => {
                // R9: another rep of the session now leads it.
                self.transferring = false;
                self.primary = Some(primary);
                if let Some(name) = self.names.get(&primary).cloned() {
                    self.tell(Text::new("new-rep").arg("name", name.as_str()));
                    self.rep = Some(name);
                }
            }
            ServerMessage::SessionEnded { reason, .. } => {
                let reason = match reason {
                    EndReason::EndedByRep => "rep",
                    EndReason::PrimaryLeft => "left",
                    EndReason::PrimaryConnectionLost => "lost",
                    EndReason::Terminated => "terminated",
                };
                self.tell(Text::new("session-ended").arg("reason", reason));
                self.stop_capture();
                self.effects.push(Effect::End(Ok(())));
            }
            _ => {}
        }
    }

    /// Names and the primary rep, from a join's snapshot.
    fn learn(&mut self, snapshot: &tandem_protocol::SessionSnapshot) {
        self.note_recording(snapshot.recording.is_some());
        self.names
            .extend(snapshot.participants.iter().map(|p| (p.id, p.name.clone())));
        if let Some(rep) = snapshot
            .participants
            .iter()
            .find(|p| p.role == Role::PrimaryRep)
        {
            self.rep = Some(rep.name.clone());
            self.primary = Some(rep.id);
        }
    }

    /// The customer hears when recording starts or stops (and on joining a recorded
    /// session), once per change.
    fn note_recording(&mut self, on: bool) {
        if on != self.recording {
            self.recording = on;
            self.tell(Text::new(if on {
                "recording-started"
            } else {
                "recording-stopped"
            }));
        }
    }

    fn answer(&mut self, yes: bool) {
        let Some(question) = self.asking.take() else {
            return;
        };
        match question {
            Question::Share if yes => {
                if self.capture == Capture::Off {
                    self.capture = Capture::Starting;
                    self.effects.push(Effect::StartCapture);
                }
            }
            Question::Share => {
                self.send(ClientMessage::DeclineShare);
                self.tell(Text::new("declined"));
            }
            Question::Control { name } if yes => {
                self.control_for = Some(name);
                self.effects.push(Effect::OpenControl);
            }
            Question::Control { name } => {
                self.send(ClientMessage::ControlConsent { granted: false });
                self.tell(Text::new("cannot-control").arg("name", name));
            }
            Question::File { viewer, token, .. } => {
                self.effects.push(Effect::FileAnswer { viewer, token, yes });
            }
            // A yes without a path (the window's path field left empty) sends nothing.
            Question::Pick { viewer, token } => {
                self.effects.push(Effect::FilePicked {
                    viewer,
                    token,
                    path: None,
                });
            }
        }
    }

    /// A viewer's name, as the session gave it (else the rep's).
    fn viewer_name(&self, viewer: ParticipantId) -> Arg {
        self.names
            .get(&viewer)
            .map_or_else(|| self.rep(), |n| Arg::Str(n.clone()))
    }

    fn share_question_open(&self) -> bool {
        self.asking == Some(Question::Share) || self.pending.contains(&Question::Share)
    }

    /// Ask the next question once the last one is answered.
    fn next_question(&mut self) {
        if self.asking.is_some() {
            return;
        }
        while let Some(question) = self.pending.pop_front() {
            if question == Question::Share && self.capture != Capture::Off {
                continue;
            }
            let text = match &question {
                Question::Share => Text::new("ask-share")
                    .arg("rep", self.rep())
                    .arg("what", self.what.clone()),
                Question::Control { name } => Text::new("ask-control").arg("name", name.as_str()),
                Question::File {
                    viewer, name, size, ..
                } => Text::new("ask-file")
                    .arg("rep", self.viewer_name(*viewer))
                    .arg("file", name.as_str())
                    .arg("size", human_size(*size)),
                Question::Pick { viewer, .. } => {
                    Text::new("ask-pick").arg("rep", self.viewer_name(*viewer))
                }
            };
            self.asking = Some(question.clone());
            self.effects.push(Effect::Ask { question, text });
            return;
        }
    }

    /// Stop capturing; and nobody controls what nobody can see: input stops here first,
    /// then the server hears of it.
    fn stop_capture(&mut self) {
        self.end_control();
        if self.capture != Capture::Off {
            self.capture = Capture::Off;
            self.effects.push(Effect::StopCapture);
        }
    }

    /// Whoever controls stops here at once, then the server hears of it.
    fn end_control(&mut self) {
        if self.holder.take().is_some() {
            self.effects.push(Effect::SetHolder(None));
            self.send(ClientMessage::RevokeControl);
        }
    }

    fn send(&mut self, message: ClientMessage) {
        self.effects.push(Effect::Send(message));
    }

    fn tell(&mut self, sentence: Text) {
        self.effects.push(Effect::Tell(sentence));
    }
}

#[cfg(test)]
mod tests {
    use crate::text::english;
    use tandem_protocol::{
        Admission, ControlChange, ControlInfo, EndReason, ErrorCode, ParticipantInfo,
        SessionNumber, SessionSnapshot, ShareInfo,
    };

    use super::*;

    const REP: ParticipantId = ParticipantId(1);
    const ANN: ParticipantId = ParticipantId(2);
    const ME: ParticipantId = ParticipantId(3);
    const BOB: ParticipantId = ParticipantId(4);
    const SHARE: ShareId = ShareId(7);

    fn person(id: ParticipantId, name: &str, role: Role) -> ParticipantInfo {
        ParticipantInfo {
            id,
            name: name.into(),
            role,
            admission: Admission::Admitted,
            connected: true,
            agent: (id == ANN).then_some(ME),
            customer: (id == ME).then_some(ANN),
        }
    }

    fn joined(active: Option<ParticipantId>) -> ServerMessage {
        ServerMessage::Joined(SessionSnapshot {
            number: SessionNumber::new(123_456_789).expect("a number"),
            you: ME,
            role: Role::Agent,
            participants: vec![
                person(REP, "Rita Rep", Role::PrimaryRep),
                person(ANN, "Ann", Role::Customer),
                person(ME, "Ann's agent", Role::Agent),
                person(BOB, "Bob", Role::Customer),
            ],
            active_customer: active,
            shares: vec![],
            control: None,
            call: None,
            open_invite_dialog: false,
            transfer_message: None,
            max_file_bytes: 1 << 30,
            recording: None,
            recording_allowed: false,
        })
    }

    fn server(agent: &mut Agent, message: ServerMessage) -> Vec<Effect> {
        agent.handle(Input::Server(message))
    }

    fn sent(effects: &[Effect]) -> Vec<&ClientMessage> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// The question asked, in English words.
    fn asked(effects: &[Effect]) -> Option<String> {
        effects.iter().find_map(|e| match e {
            Effect::Ask { text, .. } => Some(english(text)),
            _ => None,
        })
    }

    fn told(effects: &[Effect]) -> String {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Tell(s) => Some(english(s)),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// Ann's agent, joined while Ann is the active customer, sharing share 7.
    fn sharing() -> Agent {
        let mut agent = Agent::new(None);
        server(&mut agent, joined(Some(ANN)));
        agent.handle(Input::Answer(true));
        agent.handle(Input::CaptureStarted(Ok(())));
        server(
            &mut agent,
            ServerMessage::ShareStarted {
                share: ShareInfo {
                    share: SHARE,
                    owner: ME,
                    source: ShareSource::Desktop,
                },
            },
        );
        assert!(agent.sharing());
        agent
    }

    fn granted_to(agent: &mut Agent, holder: ParticipantId) -> Vec<Effect> {
        server(
            agent,
            ServerMessage::ControlChanged {
                control: Some(ControlInfo { holder, agent: ME }),
                reason: ControlChange::Granted,
            },
        )
    }

    #[test]
    fn c1_nothing_is_captured_before_the_customer_says_yes() {
        let mut agent = Agent::new(None);
        let effects = server(&mut agent, joined(Some(ANN)));
        assert_eq!(
            asked(&effects).as_deref(),
            Some("Rita Rep asks to see your whole screen. Share it?")
        );
        assert!(!effects.contains(&Effect::StartCapture));
        assert!(agent.asking());
        let effects = agent.handle(Input::Answer(true));
        assert_eq!(effects, vec![Effect::StartCapture]);
        // The share is announced only once capture really runs.
        let effects = agent.handle(Input::CaptureStarted(Ok(())));
        assert_eq!(
            sent(&effects),
            [&ClientMessage::StartShare {
                source: ShareSource::Desktop
            }]
        );
        assert!(told(&effects).starts_with("Sharing your whole screen."));
    }

    #[test]
    fn c1_the_customer_may_choose_one_window_instead_when_asked() {
        let mut agent = Agent::new(None);
        server(&mut agent, joined(Some(ANN)));
        // Only while the share question is open does a choice count.
        agent.handle(Input::ShareWhat(Shared::Window("Invoice".into())));
        assert_eq!(
            agent.handle(Input::Answer(true)),
            vec![Effect::StartCapture]
        );
        let effects = agent.handle(Input::CaptureStarted(Ok(())));
        assert_eq!(
            sent(&effects),
            [&ClientMessage::StartShare {
                source: ShareSource::Window {
                    title: "Invoice".into()
                }
            }]
        );
        assert!(told(&effects).starts_with("Sharing the window \"Invoice\"."));

        let mut agent = Agent::new(None);
        agent.handle(Input::ShareWhat(Shared::Window("Too early".into())));
        server(&mut agent, joined(Some(ANN)));
        agent.handle(Input::Answer(true));
        let effects = agent.handle(Input::CaptureStarted(Ok(())));
        assert_eq!(
            sent(&effects),
            [&ClientMessage::StartShare {
                source: ShareSource::Desktop
            }]
        );
    }

    #[test]
    fn c1_the_customer_may_choose_one_monitor_instead_when_asked() {
        let mut agent = Agent::new(None);
        server(&mut agent, joined(Some(ANN)));
        agent.handle(Input::ShareWhat(Shared::Monitor("DP-2".into())));
        agent.handle(Input::Answer(true));
        let effects = agent.handle(Input::CaptureStarted(Ok(())));
        assert_eq!(
            sent(&effects),
            [&ClientMessage::StartShare {
                source: ShareSource::Monitor {
                    name: "DP-2".into()
                }
            }]
        );
        assert!(told(&effects).starts_with("Sharing the monitor DP-2."));
    }

    #[test]
    fn c1_a_no_declines_and_captures_nothing() {
        let mut agent = Agent::new(Some("Invoice"));
        let effects = server(&mut agent, joined(Some(ANN)));
        assert_eq!(
            asked(&effects).as_deref(),
            Some("Rita Rep asks to see the window \"Invoice\". Share it?")
        );
        let effects = agent.handle(Input::Answer(false));
        assert_eq!(sent(&effects), [&ClientMessage::DeclineShare]);
        assert!(!effects.contains(&Effect::StartCapture));
        // The rep asks again: asked again.
        let effects = server(
            &mut agent,
            ServerMessage::ShareRequested {
                by: REP,
                name: "Rita Rep".into(),
            },
        );
        assert!(asked(&effects).is_some_and(|q| q.contains("asks to see")));
    }

    #[test]
    fn a_capture_that_fails_says_why_and_shares_nothing() {
        let mut agent = Agent::new(None);
        server(&mut agent, joined(Some(ANN)));
        agent.handle(Input::Answer(true));
        let effects = agent.handle(Input::CaptureStarted(Err("no display".into())));
        assert!(sent(&effects).is_empty());
        assert_eq!(
            told(&effects),
            "Your screen could not be captured: no display"
        );
        assert!(!agent.sharing());
    }

    #[test]
    fn r5_a_customer_who_is_not_being_helped_waits_for_their_turn() {
        let mut agent = Agent::new(None);
        let effects = server(&mut agent, joined(Some(BOB)));
        assert_eq!(asked(&effects), None);
        assert!(told(&effects).contains("helping another customer now"));
        let effects = server(
            &mut agent,
            ServerMessage::ActiveCustomer {
                participant: Some(ANN),
            },
        );
        assert!(told(&effects).contains("It is your turn"));
        assert!(asked(&effects).is_some());
    }

    #[test]
    fn r7_a_switch_before_the_answer_withdraws_the_question() {
        let mut agent = Agent::new(None);
        server(&mut agent, joined(Some(BOB)));
        server(
            &mut agent,
            ServerMessage::ControlRequested {
                by: REP,
                name: "Rita Rep".into(),
            },
        );
        // Asked about control first; then it is Ann's turn, then Bob's again.
        for active in [ANN, BOB] {
            server(
                &mut agent,
                ServerMessage::ActiveCustomer {
                    participant: Some(active),
                },
            );
        }
        let effects = agent.handle(Input::Answer(false));
        // The share question queued for Ann's turn is gone with it.
        assert_eq!(asked(&effects), None, "{effects:?}");
    }

    #[test]
    fn r7_a_switch_stops_the_share_and_says_why() {
        let mut agent = sharing();
        let effects = server(
            &mut agent,
            ServerMessage::ShareStopped {
                share: SHARE,
                reason: ShareStopReason::SwitchedCustomer,
            },
        );
        assert!(effects.contains(&Effect::StopCapture));
        assert_eq!(
            told(&effects),
            "Sharing stopped: the support rep turned to another customer. Nothing is captured now."
        );
        assert!(!agent.sharing());
        // Viewers joining the old share get nothing.
        let effects = server(
            &mut agent,
            ServerMessage::ViewerJoined {
                share: SHARE,
                viewer: BOB,
            },
        );
        assert!(effects.is_empty(), "{effects:?}");
    }

    #[test]
    fn a_capture_never_shared_stops_when_the_turn_passes() {
        let mut agent = Agent::new(None);
        server(&mut agent, joined(Some(ANN)));
        agent.handle(Input::Answer(true));
        agent.handle(Input::CaptureStarted(Ok(())));
        let effects = server(
            &mut agent,
            ServerMessage::ActiveCustomer {
                participant: Some(BOB),
            },
        );
        assert_eq!(effects, vec![Effect::StopCapture]);
    }

    #[test]
    fn r6_each_viewer_of_this_share_gets_the_stream_by_name() {
        let mut agent = sharing();
        let effects = server(
            &mut agent,
            ServerMessage::ViewerJoined {
                share: SHARE,
                viewer: REP,
            },
        );
        assert_eq!(
            effects,
            vec![Effect::AddViewer {
                viewer: REP,
                name: "Rita Rep".into(),
                share: SHARE
            }]
        );
        let other = server(
            &mut agent,
            ServerMessage::ViewerJoined {
                share: ShareId(99),
                viewer: BOB,
            },
        );
        assert!(other.is_empty(), "another share's viewer: {other:?}");
    }

    #[test]
    fn c1_control_needs_its_own_yes_and_the_customer_takes_it_back_at_once() {
        let mut agent = sharing();
        let effects = server(
            &mut agent,
            ServerMessage::ControlRequested {
                by: REP,
                name: "Rita Rep".into(),
            },
        );
        assert_eq!(
            asked(&effects).as_deref(),
            Some(
                "Rita Rep asks to control your mouse and keyboard, and to pass text to and from your clipboard. Allow it?"
            )
        );
        assert_eq!(agent.handle(Input::Answer(true)), vec![Effect::OpenControl]);
        let effects = agent.handle(Input::ControlOpened(Ok(())));
        assert_eq!(
            sent(&effects),
            [&ClientMessage::ControlConsent { granted: true }]
        );
        let effects = granted_to(&mut agent, REP);
        assert!(effects.contains(&Effect::SetHolder(Some(REP))));
        assert!(told(&effects).starts_with("Rita Rep now controls"));
        // Taking control back stops events here first, then tells the server.
        let effects = agent.handle(Input::TakeBackControl);
        assert_eq!(effects[0], Effect::SetHolder(None));
        assert_eq!(sent(&effects), [&ClientMessage::RevokeControl]);
        assert_eq!(agent.holder(), None);
        // Twice is nothing more.
        assert!(agent.handle(Input::TakeBackControl).is_empty());
    }

    #[test]
    fn c1_control_refused_or_impossible_is_not_granted() {
        let mut agent = sharing();
        let ask = ServerMessage::ControlRequested {
            by: REP,
            name: "Rita Rep".into(),
        };
        server(&mut agent, ask.clone());
        let effects = agent.handle(Input::Answer(false));
        assert_eq!(
            sent(&effects),
            [&ClientMessage::ControlConsent { granted: false }]
        );
        server(&mut agent, ask);
        agent.handle(Input::Answer(true));
        let effects = agent.handle(Input::ControlOpened(Err("no input here".into())));
        assert_eq!(
            sent(&effects),
            [&ClientMessage::ControlConsent { granted: false }]
        );
        assert!(told(&effects).contains("Rita Rep cannot control your computer."));
    }

    #[test]
    fn control_of_another_agent_is_not_ours() {
        let mut agent = sharing();
        let effects = server(
            &mut agent,
            ServerMessage::ControlChanged {
                control: Some(ControlInfo {
                    holder: REP,
                    agent: ParticipantId(40),
                }),
                reason: ControlChange::Granted,
            },
        );
        assert_eq!(effects, vec![Effect::SetHolder(None)]);
    }

    #[test]
    fn c1_stopping_the_share_also_ends_control() {
        let mut agent = sharing();
        granted_to(&mut agent, REP);
        let effects = agent.handle(Input::StopSharing);
        assert_eq!(
            sent(&effects),
            [
                &ClientMessage::RevokeControl,
                &ClientMessage::StopShare { share: SHARE }
            ]
        );
        assert_eq!(effects[0], Effect::SetHolder(None), "input stops first");
        assert!(effects.contains(&Effect::StopCapture));
        assert!(!agent.sharing());
    }

    #[test]
    fn a_share_confirmed_after_capture_stopped_is_ended() {
        let mut agent = Agent::new(None);
        server(&mut agent, joined(Some(ANN)));
        agent.handle(Input::Answer(true));
        agent.handle(Input::CaptureStarted(Ok(())));
        // Enter before the server's confirmation arrives.
        agent.handle(Input::StopSharing);
        let effects = server(
            &mut agent,
            ServerMessage::ShareStarted {
                share: ShareInfo {
                    share: SHARE,
                    owner: ME,
                    source: ShareSource::Desktop,
                },
            },
        );
        assert_eq!(sent(&effects), [&ClientMessage::StopShare { share: SHARE }]);
        // A later share's replacement of it cannot stop the new capture.
        agent.handle(Input::Server(ServerMessage::ShareRequested {
            by: REP,
            name: "Rita Rep".into(),
        }));
        agent.handle(Input::Answer(true));
        agent.handle(Input::CaptureStarted(Ok(())));
        let effects = server(
            &mut agent,
            ServerMessage::ShareStopped {
                share: SHARE,
                reason: ShareStopReason::Replaced,
            },
        );
        assert!(effects.is_empty(), "{effects:?}");
        assert!(agent.sharing());
    }

    #[test]
    fn r7_a_switch_withdraws_the_open_question_too() {
        let mut agent = Agent::new(None);
        let effects = server(&mut agent, joined(Some(ANN)));
        assert!(asked(&effects).is_some());
        let effects = server(
            &mut agent,
            ServerMessage::ActiveCustomer {
                participant: Some(BOB),
            },
        );
        assert!(
            told(&effects).contains("turned to another customer"),
            "{effects:?}"
        );
        // A late yes starts nothing.
        let effects = agent.handle(Input::Answer(true));
        assert!(!effects.contains(&Effect::StartCapture), "{effects:?}");
    }

    #[test]
    fn c1_a_newer_control_request_replaces_the_older_question() {
        let mut agent = sharing();
        let ask = |name: &str| ServerMessage::ControlRequested {
            by: REP,
            name: name.into(),
        };
        server(&mut agent, ask("Rita Rep"));
        let effects = server(&mut agent, ask("Andy Assistant"));
        assert_eq!(
            asked(&effects).as_deref(),
            Some(
                "Andy Assistant asks to control your mouse and keyboard, and to pass text to and from your clipboard. Allow it?"
            ),
            "{effects:?}"
        );
    }

    #[test]
    fn c1_when_the_share_ends_by_itself_control_ends_too() {
        let mut agent = sharing();
        granted_to(&mut agent, REP);
        let effects = agent.handle(Input::CaptureEnded(Some(Text::new("gone-window-closed"))));
        assert!(effects.contains(&Effect::SetHolder(None)), "{effects:?}");
        assert!(sent(&effects).contains(&&ClientMessage::RevokeControl));
    }

    #[test]
    fn a_closed_window_ends_the_share_with_the_reason() {
        let mut agent = sharing();
        let effects = agent.handle(Input::CaptureEnded(Some(Text::new("gone-window-closed"))));
        assert_eq!(sent(&effects), [&ClientMessage::StopShare { share: SHARE }]);
        assert_eq!(
            told(&effects),
            "Sharing stopped: the shared window was closed"
        );
    }

    #[test]
    fn questions_are_asked_one_at_a_time_in_order() {
        let mut agent = Agent::new(None);
        let first = server(&mut agent, joined(Some(ANN)));
        assert!(asked(&first).is_some_and(|q| q.contains("asks to see")));
        let waiting = server(
            &mut agent,
            ServerMessage::ControlRequested {
                by: REP,
                name: "Rita Rep".into(),
            },
        );
        assert_eq!(asked(&waiting), None, "not while another question is open");
        let next = agent.handle(Input::Answer(true));
        assert!(
            asked(&next).is_some_and(|q| q.contains("control")),
            "{next:?}"
        );
    }

    #[test]
    fn the_customer_is_told_when_the_session_is_recorded_and_when_it_stops() {
        let mut agent = sharing();
        assert!(!agent.recording());
        let info = tandem_protocol::RecordingInfo {
            started_by: REP,
            since: tandem_protocol::Timestamp(1),
            recorder: ParticipantId(90),
        };
        let on = ServerMessage::RecordingState {
            recording: Some(info),
        };
        let effects = server(&mut agent, on.clone());
        assert!(told(&effects).contains("being recorded"), "{effects:?}");
        assert!(agent.recording());
        assert!(told(&server(&mut agent, on)).is_empty(), "told once");
        let effects = server(
            &mut agent,
            ServerMessage::RecordingState { recording: None },
        );
        assert!(told(&effects).contains("stopped"), "{effects:?}");
        assert!(!agent.recording());
    }

    #[test]
    fn the_session_ending_stops_everything() {
        let mut agent = sharing();
        let effects = server(
            &mut agent,
            ServerMessage::SessionEnded {
                reason: EndReason::EndedByRep,
                message: "The support session has ended.".into(),
            },
        );
        assert!(effects.contains(&Effect::StopCapture));
        assert_eq!(effects.last(), Some(&Effect::End(Ok(()))));
    }

    #[test]
    fn leaving_stops_the_share_and_leaves_both_connections() {
        let mut agent = sharing();
        let effects = agent.handle(Input::Leave);
        assert_eq!(
            sent(&effects),
            [
                &ClientMessage::StopShare { share: SHARE },
                &ClientMessage::Leave
            ]
        );
        assert!(effects.contains(&Effect::LeaveAsCustomer));
        assert_eq!(effects.last(), Some(&Effect::End(Ok(()))));
    }

    #[test]
    fn a_refused_attach_ends_with_the_servers_reason() {
        let mut agent = Agent::new(None);
        let effects = server(
            &mut agent,
            ServerMessage::Error {
                code: ErrorCode::SessionNotFound,
                message: "This token has expired.".into(),
                request: None,
            },
        );
        assert_eq!(
            effects,
            vec![
                Effect::LeaveAsCustomer,
                Effect::End(Err("This token has expired.".into()))
            ]
        );
    }

    /// docs/rules.md "Files": only the holder of control or the primary rep may send; each
    /// file is a question of its own, answered for that offer only, and taken back when
    /// the offer goes.
    #[test]
    fn a_file_is_asked_about_in_turn_and_its_question_goes_with_its_offer() {
        let mut agent = sharing();
        const BOB_REP: ParticipantId = ParticipantId(9);
        assert!(agent.may_send_files(REP), "the primary rep");
        assert!(
            !agent.may_send_files(BOB_REP),
            "an assistant without control"
        );
        server(
            &mut agent,
            ServerMessage::ControlChanged {
                control: Some(tandem_protocol::ControlInfo {
                    holder: BOB_REP,
                    agent: ME,
                }),
                reason: ControlChange::Granted,
            },
        );
        assert!(agent.may_send_files(BOB_REP), "the holder of control");

        let offered = |token| Input::FileOffered {
            viewer: REP,
            token,
            name: "driver.bin".into(),
            size: 21_000_000,
        };
        let effects = agent.handle(offered(1));
        assert!(asked(&effects).is_some_and(|q| q.contains("driver.bin") && q.contains("21.0 MB")));
        // A second offer waits for the first answer.
        assert!(asked(&agent.handle(offered(2))).is_none());
        // The first is taken back: its question goes, and the second is asked.
        let effects = agent.handle(Input::FileWithdrawn {
            viewer: REP,
            token: 1,
        });
        assert!(told(&effects).contains("driver.bin"), "{}", told(&effects));
        assert!(asked(&effects).is_some(), "the next question");
        let effects = agent.handle(Input::Answer(true));
        assert_eq!(
            effects,
            [Effect::FileAnswer {
                viewer: REP,
                token: 2,
                yes: true
            }]
        );
    }

    #[test]
    fn a_request_for_a_file_is_asked_in_turn_and_answered_with_a_path_or_nothing() {
        let mut agent = sharing();
        let effects = agent.handle(Input::FileRequested {
            viewer: REP,
            token: 7,
        });
        assert!(
            asked(&effects).is_some_and(|q| q.contains("asks you for a file")),
            "{effects:?}"
        );
        // A path answers it.
        let path = std::path::PathBuf::from("/tmp/support.log");
        let effects = agent.handle(Input::Picked(Some(path.clone())));
        assert_eq!(
            effects,
            [Effect::FilePicked {
                viewer: REP,
                token: 7,
                path: Some(path.clone())
            }]
        );
        // With no question open, a path typed is nothing.
        assert!(agent.handle(Input::Picked(Some(path))).is_empty());
        // Asked again (the path was no file) and taken back by the rep.
        agent.handle(Input::FileRequested {
            viewer: REP,
            token: 7,
        });
        let effects = agent.handle(Input::FileWithdrawn {
            viewer: REP,
            token: 7,
        });
        assert!(
            told(&effects).contains("no longer asks"),
            "{}",
            told(&effects)
        );
        // A no (the window's Don't send, a closed terminal) picks nothing.
        agent.handle(Input::FileRequested {
            viewer: REP,
            token: 8,
        });
        assert_eq!(
            agent.handle(Input::Answer(false)),
            [Effect::FilePicked {
                viewer: REP,
                token: 8,
                path: None
            }]
        );
    }

    #[test]
    fn r10_a_transfer_says_where_the_session_goes_and_names_the_rep_who_takes_it() {
        let mut agent = sharing();
        let effects = server(
            &mut agent,
            ServerMessage::Transferring {
                target: TransferTarget::Queue {
                    queue: "Billing".into(),
                },
            },
        );
        assert_eq!(
            told(&effects),
            "Your session is being handed to the queue “Billing”. Please wait: the sharing \
             goes on, and your next support rep will be with you shortly."
        );
        // The transferring rep leaves; the share goes on for whoever takes the session.
        let effects = server(
            &mut agent,
            ServerMessage::ParticipantLeft {
                participant: REP,
                reason: tandem_protocol::LeaveReason::Transferred,
            },
        );
        assert!(!effects.contains(&Effect::StopCapture), "{effects:?}");
        assert!(agent.sharing());
        const VERA: ParticipantId = ParticipantId(9);
        let effects = server(
            &mut agent,
            ServerMessage::ParticipantJoined {
                participant: person(VERA, "Vera Webacd", Role::PrimaryRep),
            },
        );
        assert_eq!(told(&effects), "Vera Webacd is now your support rep.");
        // Her questions carry her name.
        server(
            &mut agent,
            ServerMessage::ShareStopped {
                share: SHARE,
                reason: ShareStopReason::StoppedByOwner,
            },
        );
        let effects = server(
            &mut agent,
            ServerMessage::ShareRequested {
                by: VERA,
                name: "Vera Webacd".into(),
            },
        );
        assert!(told(&effects).contains("Vera Webacd asks you to share again"));
        // A later primary rep who joins is no news: only a transfer announces one.
        let effects = server(
            &mut agent,
            ServerMessage::ParticipantUpdated {
                participant: person(VERA, "Vera W.", Role::PrimaryRep),
            },
        );
        assert_eq!(told(&effects), "");
    }

    #[test]
    fn r9_control_ends_with_a_transfer_of_the_session_and_the_new_primary_is_named() {
        const SAM: ParticipantId = ParticipantId(5);
        let mut agent = sharing();
        server(
            &mut agent,
            ServerMessage::ParticipantJoined {
                participant: person(SAM, "Sam Second", Role::Assistant),
            },
        );
        granted_to(&mut agent, REP);
        let effects = server(
            &mut agent,
            ServerMessage::ControlChanged {
                control: None,
                reason: ControlChange::SessionTransferred,
            },
        );
        assert!(effects.contains(&Effect::SetHolder(None)), "{effects:?}");
        assert_eq!(
            told(&effects),
            "The session was handed to another support rep, so nobody controls your \
             computer now."
        );
        for (id, name, role) in [
            (REP, "Rita Rep", Role::Observer),
            (SAM, "Sam Second", Role::PrimaryRep),
        ] {
            let effects = server(
                &mut agent,
                ServerMessage::ParticipantUpdated {
                    participant: person(id, name, role),
                },
            );
            assert_eq!(told(&effects), "");
        }
        let effects = server(
            &mut agent,
            ServerMessage::PrimaryChanged {
                primary: SAM,
                former: REP,
            },
        );
        assert_eq!(told(&effects), "Sam Second is now your support rep.");
        assert!(agent.sharing());
    }
}
