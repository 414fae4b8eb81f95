//! Random sequences of joins, commands, connection changes and timers, with the session's
//! invariants checked after every step:
//! - at most one primary rep;
//! - the control holder is a present rep, granted control, whose customer consented;
//! - the active customer is present and admitted;
//! - a refused event, and anything after the end, changes nothing;
//! - audit timestamps never go back, even when the caller's clock does;
//! - messages go only to participants of this session;
//! - admitted customers stay within R4's maximum, waiting ones within C2's cap.

mod common;

use std::collections::BTreeSet;

use common::rep_info;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use tandem_protocol::{
    Admission, ClientMessage as C, EndReason, IceCandidate, Invitee, ParticipantId,
    ParticipantInfo, Role, SessionNumber, ShareId, ShareSource, StreamRef, Timestamp,
    TransferTarget,
};
use tandem_session::{
    AuditAction, Event, Join, JoinKind, Output, Session, SessionError, Start, Timer,
};

const PRIMARY: u64 = 1;

/// Participant and share ids are generated as selectors and resolved against the live
/// session when the step runs (see [`Resolver`]): mostly someone present, sometimes a
/// stranger. Purely random ids would rarely reach deep states such as consented control.
fn pid() -> impl Strategy<Value = ParticipantId> {
    (0u64..16).prop_map(ParticipantId)
}

fn share() -> impl Strategy<Value = ShareId> {
    (0u64..8).prop_map(ShareId)
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("hello".to_string()),
        Just("é".repeat(345)),
        Just("é".repeat(346)),
        "[a-z ]{0,20}",
    ]
}

fn stream() -> impl Strategy<Value = StreamRef> {
    prop_oneof![
        2 => share().prop_map(StreamRef::Share),
        2 => Just(StreamRef::Call),
        1 => Just(StreamRef::Recording)
    ]
}

fn command() -> impl Strategy<Value = C> {
    prop_oneof![
        3 => pid().prop_map(|participant| C::Admit { participant }),
        1 => pid().prop_map(|participant| C::Deny { participant }),
        3 => pid().prop_map(|participant| C::SetActiveCustomer { participant }),
        1 => text().prop_map(|text| C::Chat { text }),
        1 => prop_oneof![Just("ann@example.com"), Just("nope"), Just("a@b.c, d@e.f")].prop_map(|a| {
            C::Invite {
                invitee: Invitee::Customer,
                address: a.into(),
                own_email_program: false,
                language: None,
            }
        }),
        1 => Just(C::RequestShare),
        1 => Just(C::DeclineShare),
        3 => prop_oneof![
            Just(ShareSource::Desktop),
            Just(ShareSource::Window {
                title: "Calc".into()
            })
        ]
        .prop_map(|source| C::StartShare { source }),
        1 => share().prop_map(|share| C::StopShare { share }),
        1 => share().prop_map(|share| C::ViewShare { share }),
        1 => share().prop_map(|share| C::StopViewing { share }),
        1 => (pid(), stream()).prop_map(|(to, stream)| C::Offer {
            to,
            stream,
            sdp: "v=0".into()
        }),
        1 => (pid(), stream()).prop_map(|(to, stream)| C::IceCandidate {
            to,
            stream,
            candidate: IceCandidate {
                candidate: "candidate:1".into(),
                sdp_mid: None,
                sdp_mline_index: Some(0)
            }
        }),
        4 => Just(C::RequestControl),
        3 => pid().prop_map(|to| C::GiveControl { to }),
        1 => Just(C::ReleaseControl),
        4 => any::<bool>().prop_map(|granted| C::ControlConsent { granted }),
        1 => Just(C::RevokeControl),
        2 => pid().prop_map(|to| C::TransferSession { to }),
        1 => (text(), any::<bool>()).prop_map(|(message, queue)| C::WebacdTransfer {
            target: if queue {
                TransferTarget::Queue {
                    queue: "Printers".into(),
                }
            } else {
                TransferTarget::Agent {
                    agent: "wes".into(),
                }
            },
            message: Some(message),
        }),
        1 => Just(C::StartCall),
        1 => any::<bool>().prop_map(|video| C::JoinCall { video }),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(muted, video)| C::CallMedia { muted, video }),
        1 => Just(C::LeaveCall),
        1 => Just(C::EndCall),
        1 => Just(C::Leave),
        1 => Just(C::EndSession),
        1 => Just(C::Resume { token: "t".into() }),
    ]
}

fn join_kind() -> impl Strategy<Value = JoinKind> {
    prop_oneof![
        3 => Just(JoinKind::CustomerByLink),
        3 => Just(JoinKind::CustomerByNumber),
        2 => any::<bool>().prop_map(|w| JoinKind::Assistant(rep_info("sam", w))),
        1 => Just(JoinKind::TransferReceiver(rep_info("wes", true))),
        4 => pid().prop_map(|customer| JoinKind::Agent { customer }),
    ]
}

/// Mostly ordinary names; now and then one the session must refuse from a customer: empty,
/// a rep's ("Rita" is the primary's name, and an assistant may join as "Sam"), or one
/// hiding a bidi override.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => Just("Ann".to_string()),
        8 => Just("Bob".to_string()),
        1 => Just(String::new()),
        1 => Just("RITA".to_string()),
        1 => Just("Sam".to_string()),
        1 => Just("Ann\u{202E}".to_string()),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        20 => (pid(), name(), join_kind(), 0u32..3)
            .prop_map(|(id, name, kind, load)| Event::Join(Join {
                id,
                name,
                kind,
                rep_load_elsewhere: load,
            })),
        64 => (pid(), command()).prop_map(|(from, message)| Event::Command { from, message }),
        // How the server admits: with the rep's load elsewhere (R4, C2).
        3 => (pid(), pid(), 0u32..6).prop_map(|(from, participant, rep_load_elsewhere)| Event::Admit {
            from,
            participant,
            rep_load_elsewhere,
        }),
        4 => pid().prop_map(|who| Event::Connected { who }),
        4 => pid().prop_map(|who| Event::ConnectionLost { who }),
        2 => pid().prop_map(|who| Event::PageClosed { who }),
        4 => pid().prop_map(|who| Event::TimerFired(Timer::Reconnect(who))),
        // Rare, so that most sequences go deep before the session ends.
        1 => Just(Event::Terminate {
            reason: EndReason::Terminated,
            by: None
        }),
    ]
}

/// The ids present in a session.
fn present(session: &Session) -> BTreeSet<ParticipantId> {
    session.participants().into_iter().map(|p| p.id).collect()
}

/// Turns generated selectors into ids that mean something in the session right now.
struct Resolver {
    next_new: u64,
}

fn pick(session: &Session, selector: ParticipantId) -> ParticipantId {
    let ids: Vec<ParticipantId> = present(session).into_iter().collect();
    if selector.0 < 14 && !ids.is_empty() {
        ids[selector.0 as usize % ids.len()]
    } else {
        ParticipantId(1_000 + selector.0)
    }
}

/// Like [`pick`], but for low selectors prefer participants that fit the command, so that
/// most sequences are valid enough to go deep; the rest stay random to probe refusals.
fn pick_fitting(
    session: &Session,
    selector: ParticipantId,
    fits: impl Fn(&ParticipantInfo) -> bool,
) -> ParticipantId {
    let fitting: Vec<ParticipantId> = session
        .participants()
        .into_iter()
        .filter(|p| fits(p))
        .map(|p| p.id)
        .collect();
    if selector.0 < 8 && !fitting.is_empty() {
        fitting[selector.0 as usize % fitting.len()]
    } else {
        pick(session, selector)
    }
}

/// Who would normally send this command.
fn likely_sender(session: &Session, message: &C) -> Box<dyn Fn(&ParticipantInfo) -> bool> {
    let active_agent = session
        .active_customer()
        .and_then(|c| session.participants().into_iter().find(|p| p.id == c))
        .and_then(|c| c.agent);
    match message {
        C::ControlConsent { .. } | C::DeclineShare | C::RevokeControl | C::StartShare { .. } => {
            Box::new(move |p| Some(p.id) == active_agent)
        }
        C::Chat { .. } | C::JoinCall { .. } | C::ViewShare { .. } | C::Leave => {
            Box::new(|p| p.role != Role::Agent)
        }
        C::Offer { .. }
        | C::IceCandidate { .. }
        | C::StopShare { .. }
        | C::StopViewing { .. }
        | C::CallMedia { .. }
        | C::LeaveCall => Box::new(|_| true),
        _ => Box::new(|p| p.role == Role::PrimaryRep),
    }
}

fn pick_share(session: &Session, selector: ShareId) -> ShareId {
    let shares = session.shares();
    if selector.0 < 6 && !shares.is_empty() {
        shares[selector.0 as usize % shares.len()].share
    } else {
        ShareId(1_000 + selector.0)
    }
}

fn waiting(p: &ParticipantInfo) -> bool {
    p.admission == Admission::Waiting
}

fn other_rep(p: &ParticipantInfo) -> bool {
    matches!(p.role, Role::Assistant | Role::Observer)
}

impl Resolver {
    fn event(&mut self, session: &Session, event: Event) -> Event {
        let p = |sel| pick(session, sel);
        match event {
            Event::Join(mut join) => {
                join.id = if join.id.0 < 2 {
                    p(join.id) // a duplicate id now and then
                } else {
                    self.next_new += 1;
                    ParticipantId(self.next_new)
                };
                if let JoinKind::Agent { customer } = join.kind {
                    join.kind = JoinKind::Agent {
                        customer: p(customer),
                    };
                }
                Event::Join(join)
            }
            Event::Command { from, message } => Event::Command {
                from: pick_fitting(session, from, likely_sender(session, &message)),
                message: self.message(session, message),
            },
            Event::Admit {
                from,
                participant,
                rep_load_elsewhere,
            } => Event::Admit {
                from: pick_fitting(session, from, |p| p.role == Role::PrimaryRep),
                participant: pick_fitting(session, participant, waiting),
                rep_load_elsewhere,
            },
            Event::Connected { who } => Event::Connected { who: p(who) },
            Event::ConnectionLost { who } => Event::ConnectionLost { who: p(who) },
            Event::PageClosed { who } => Event::PageClosed { who: p(who) },
            Event::TimerFired(Timer::Reconnect(who)) => Event::TimerFired(Timer::Reconnect(p(who))),
            other => other,
        }
    }

    fn message(&self, session: &Session, message: C) -> C {
        let p = |sel| pick(session, sel);
        let s = |sel| pick_share(session, sel);
        let stream = |st| match st {
            StreamRef::Share(sel) => StreamRef::Share(s(sel)),
            other => other,
        };
        match message {
            C::Admit { participant } => C::Admit {
                participant: pick_fitting(session, participant, waiting),
            },
            C::Deny { participant } => C::Deny {
                participant: pick_fitting(session, participant, waiting),
            },
            C::SetActiveCustomer { participant } => C::SetActiveCustomer {
                participant: pick_fitting(session, participant, |p| p.role == Role::Customer),
            },
            C::GiveControl { to } => C::GiveControl {
                to: pick_fitting(session, to, other_rep),
            },
            C::TransferSession { to } => C::TransferSession {
                to: pick_fitting(session, to, other_rep),
            },
            C::StopShare { share } => C::StopShare { share: s(share) },
            C::ViewShare { share } => C::ViewShare { share: s(share) },
            C::StopViewing { share } => C::StopViewing { share: s(share) },
            C::Offer {
                to,
                stream: st,
                sdp,
            } => C::Offer {
                to: p(to),
                stream: stream(st),
                sdp,
            },
            C::IceCandidate {
                to,
                stream: st,
                candidate,
            } => C::IceCandidate {
                to: p(to),
                stream: stream(st),
                candidate,
            },
            other => other,
        }
    }
}

/// How deep one sequence went: the states it reached, read from its audit trail.
#[derive(Debug, Default, Clone, Copy)]
struct Reached {
    control_granted: bool,
    switched: bool,
    primary_transferred: bool,
    webacd_transferred: bool,
    call: bool,
    admitted: bool,
    waiting_room_full: bool,
    admit_refused: bool,
}

impl Reached {
    fn note(&mut self, action: &AuditAction) {
        match action {
            AuditAction::ControlGranted { .. } => self.control_granted = true,
            AuditAction::ActiveCustomer {
                previous: Some(_), ..
            } => self.switched = true,
            AuditAction::PrimaryTransferred { .. } => self.primary_transferred = true,
            AuditAction::WebacdTransfer { .. } => self.webacd_transferred = true,
            AuditAction::CallJoined { .. } => self.call = true,
            AuditAction::Admitted { .. } => self.admitted = true,
            _ => {}
        }
    }

    fn refused(&mut self, error: &SessionError) {
        match error {
            SessionError::WaitingRoomFull { .. } => self.waiting_room_full = true,
            SessionError::AdmitBeyondMaximum { .. } => self.admit_refused = true,
            _ => {}
        }
    }
}

/// A populated session to start from: two customers with agents and an assistant.
fn populated() -> Vec<Event> {
    let join = |id: u64, kind: JoinKind| {
        Event::Join(Join {
            id: ParticipantId(id),
            name: format!("P{id}"),
            kind,
            rep_load_elsewhere: 0,
        })
    };
    vec![
        join(2, JoinKind::CustomerByLink),
        join(3, JoinKind::CustomerByLink),
        join(
            4,
            JoinKind::Agent {
                customer: ParticipantId(2),
            },
        ),
        join(
            5,
            JoinKind::Agent {
                customer: ParticipantId(3),
            },
        ),
        join(6, JoinKind::Assistant(rep_info("sam", true))),
    ]
}

fn run(
    steps: Vec<(i64, Event)>,
    email: bool,
    webacd: bool,
    populate: bool,
) -> Result<Reached, TestCaseError> {
    let mut reached = Reached::default();
    let start = Start {
        number: SessionNumber::new(555_000_111).expect("number"),
        primary: ParticipantId(PRIMARY),
        name: "Rita".into(),
        rep: rep_info("rita", webacd),
        email_invite: email,
        config: tandem_session::SessionConfig {
            max_customers_per_rep: 5,
            max_waiting: 2,
            reconnect_grace_ms: 5_000,
            attach_grace_ms: 10_000,
            ..Default::default()
        },
    };
    let mut now: i64 = 1_000_000;
    let (mut session, _) = Session::start(start, Timestamp(now as u64)).expect("start");
    session
        .handle(
            Event::Connected {
                who: ParticipantId(PRIMARY),
            },
            Timestamp(now as u64),
        )
        .expect("page opens");
    if populate {
        for event in populated() {
            session
                .handle(event, Timestamp(now as u64))
                .expect("populate");
        }
    }
    let mut last_audit = Timestamp(0);
    let mut resolver = Resolver { next_new: 10 };

    for (delta, event) in steps {
        now = (now + delta).max(0);
        let event = resolver.event(&session, event);
        let before = session.clone();
        let described = format!("{event:?}");
        let result = session.handle(event, Timestamp(now as u64));
        if before.ended().is_some() {
            prop_assert_eq!(&result, &Err(SessionError::Ended));
        }
        let outputs = match result {
            Ok(outputs) => outputs,
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                reached.refused(&e);
                prop_assert_eq!(
                    &session,
                    &before,
                    "refused {} changed the session",
                    described
                );
                continue;
            }
        };
        if let Err(broken) = session.check_invariants() {
            return Err(TestCaseError::fail(format!("after {described}: {broken}")));
        }
        // The server stores a live session after every change and rebuilds it from that
        // after a restart: the stored form gives back the very same session.
        let stored = serde_json::to_string(&session)
            .map_err(|e| TestCaseError::fail(format!("after {described}: not stored: {e}")))?;
        let back: Session = serde_json::from_str(&stored)
            .map_err(|e| TestCaseError::fail(format!("after {described}: not read back: {e}")))?;
        prop_assert_eq!(&back, &session, "stored and read back after {}", described);
        let known: BTreeSet<ParticipantId> = present(&before)
            .union(&present(&session))
            .copied()
            .collect();
        for (n, output) in outputs.iter().enumerate() {
            match output {
                Output::Audit(record) => {
                    prop_assert!(
                        record.at >= last_audit,
                        "audit went back in time after {}",
                        described
                    );
                    last_audit = record.at;
                    reached.note(&record.action);
                }
                Output::Send { to, .. } => {
                    prop_assert!(
                        known.contains(to),
                        "{:?} is not in the session ({})",
                        to,
                        described
                    );
                }
                Output::Ended { .. } => {
                    prop_assert_eq!(n, outputs.len() - 1, "Ended is the last output");
                    prop_assert!(session.ended().is_some());
                }
                _ => {}
            }
        }
    }
    Ok(reached)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_command_sequences_keep_the_invariants(
        steps in prop::collection::vec((-3_000i64..20_000, event()), 1..120),
        email in any::<bool>(),
        webacd in any::<bool>(),
        populate in any::<bool>(),
    ) {
        run(steps, email, webacd, populate)?;
    }
}

/// The property above only means something if its sequences reach the states the
/// invariants are about. Sample the same generator and check that they do.
#[test]
fn random_sequences_reach_the_deep_states() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let strategy = (
        prop::collection::vec((-3_000i64..20_000, event()), 1..120),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    );
    let cases = 1000;
    let mut counts = [0u32; 8];
    for _ in 0..cases {
        let (steps, email, webacd, populate) =
            strategy.new_tree(&mut runner).expect("generate").current();
        let r = run(steps, email, webacd, populate).expect("invariants hold");
        for (n, hit) in [
            r.control_granted,
            r.switched,
            r.primary_transferred,
            r.webacd_transferred,
            r.call,
            r.admitted,
            r.waiting_room_full,
            r.admit_refused,
        ]
        .into_iter()
        .enumerate()
        {
            counts[n] += u32::from(hit);
        }
    }
    eprintln!(
        "of {cases} sequences, reached [control granted, switched customer, primary transferred, \
         webacd transfer, call, admitted from the waiting room, waiting room full, admission \
         beyond the maximum refused]: {counts:?}"
    );
    for (n, count) in counts.into_iter().enumerate() {
        assert!(
            count >= cases / 50,
            "state {n} reached in only {count} of {cases} sequences"
        );
    }
}
