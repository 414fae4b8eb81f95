//! A test harness: a session on a simulated clock, with helpers to read its outputs.

#![allow(dead_code)]

use tandem_protocol::{ClientMessage, ParticipantId, ServerMessage, SessionNumber, Timestamp};
use tandem_session::{
    AuditRecord, Event, Join, JoinKind, Output, RepInfo, Session, SessionConfig, SessionError,
    Start,
};

pub const REP: ParticipantId = ParticipantId(1);

pub fn rep_info(account: &str, webacd: bool) -> RepInfo {
    RepInfo {
        account: account.into(),
        webacd_agent: webacd,
    }
}

pub fn config() -> SessionConfig {
    SessionConfig {
        max_customers_per_rep: 3,
        max_waiting: 4,
        reconnect_grace_ms: 10_000,
        attach_grace_ms: 30_000,
        max_file_bytes: 1 << 30,
        recording_allowed: true,
    }
}

#[derive(Clone)]
pub struct Harness {
    pub session: Session,
    pub now: u64,
    /// Every output so far, in order.
    pub log: Vec<Output>,
}

pub type Outcome = Result<Vec<Output>, SessionError>;

impl Harness {
    /// A session whose primary rep (participant 1, a WebACD agent) has its page open.
    pub fn new() -> Self {
        Self::with(config(), true, false)
    }

    pub fn with(config: SessionConfig, webacd: bool, email_invite: bool) -> Self {
        let start = Start {
            number: SessionNumber::new(123_456_789).expect("number"),
            primary: REP,
            name: "Rita Rep".into(),
            rep: rep_info("rita", webacd),
            email_invite,
            config,
        };
        let (session, log) = Session::start(start, Timestamp(1_000)).expect("start");
        let mut h = Self {
            session,
            now: 1_000,
            log,
        };
        h.event(Event::Connected { who: REP }).expect("page opens");
        h
    }

    pub fn advance(&mut self, millis: u64) {
        self.now += millis;
    }

    pub fn event(&mut self, event: Event) -> Outcome {
        let outputs = self.session.handle(event, Timestamp(self.now))?;
        self.log.extend(outputs.iter().cloned());
        self.session
            .check_invariants()
            .unwrap_or_else(|e| panic!("invariant broken: {e}"));
        Ok(outputs)
    }

    pub fn cmd(&mut self, from: u64, message: ClientMessage) -> Outcome {
        self.event(Event::Command {
            from: ParticipantId(from),
            message,
        })
    }

    pub fn join(&mut self, id: u64, name: &str, kind: JoinKind) -> Outcome {
        self.event(Event::Join(Join {
            id: ParticipantId(id),
            name: name.into(),
            kind,
            rep_load_elsewhere: 0,
        }))
    }

    /// A customer joins by link and attaches an agent (id + 100).
    pub fn customer_with_agent(&mut self, id: u64, name: &str) -> ParticipantId {
        self.join(id, name, JoinKind::CustomerByLink)
            .expect("customer joins");
        self.join(
            id + 100,
            &format!("{name}'s laptop"),
            JoinKind::Agent {
                customer: ParticipantId(id),
            },
        )
        .expect("agent attaches");
        ParticipantId(id + 100)
    }

    /// A join carrying the primary rep's load in other sessions (R4).
    pub fn join_loaded(&mut self, id: u64, name: &str, kind: JoinKind, elsewhere: u32) -> Outcome {
        self.event(Event::Join(Join {
            id: ParticipantId(id),
            name: name.into(),
            kind,
            rep_load_elsewhere: elsewhere,
        }))
    }

    /// The primary rep admits a waiting customer, the runtime adding the rep's load
    /// in other sessions (R4, C2).
    pub fn admit(&mut self, who: u64, elsewhere: u32) -> Outcome {
        self.event(Event::Admit {
            from: REP,
            participant: ParticipantId(who),
            rep_load_elsewhere: elsewhere,
        })
    }

    pub fn assistant(&mut self, id: u64, name: &str) {
        self.join(id, name, JoinKind::Assistant(rep_info(name, true)))
            .expect("assistant joins");
    }
}

/// The messages one participant receives in these outputs.
pub fn to(outputs: &[Output], who: u64) -> Vec<ServerMessage> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { to, message } if *to == ParticipantId(who) => Some(message.clone()),
            _ => None,
        })
        .collect()
}

pub fn audits(outputs: &[Output]) -> Vec<AuditRecord> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Audit(record) => Some(record.clone()),
            _ => None,
        })
        .collect()
}

pub fn id(n: u64) -> ParticipantId {
    ParticipantId(n)
}
