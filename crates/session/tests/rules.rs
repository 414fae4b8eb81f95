//! The session rules of DESIGN.md §1, one or more tests each, named after the rule.

mod common;

use common::*;
use tandem_protocol::{
    Admission, ClientMessage as C, ControlChange, ControlInfo, EndReason, ErrorCode, Invitee,
    LeaveReason, Role, ServerMessage as S, ShareId, ShareSource, ShareStopReason, StreamRef,
    Timestamp, TransferTarget,
};
use tandem_session::{AuditAction, Event, JoinKind, Output, SessionError, Timer};

fn joined_snapshot(messages: &[S]) -> tandem_protocol::SessionSnapshot {
    messages
        .iter()
        .find_map(|m| match m {
            S::Joined(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a joined snapshot")
}

fn admission(h: &Harness, who: u64) -> Option<Admission> {
    h.session
        .participants()
        .into_iter()
        .find(|p| p.id == id(who))
        .map(|p| p.admission)
}

fn offer(to: u64, share: u64) -> C {
    C::Offer {
        to: id(to),
        stream: StreamRef::Share(ShareId(share)),
        sdp: "v=0".into(),
    }
}

// ---------------------------------------------------------------- R1

#[test]
fn r1_start_gives_the_number_and_the_email_box_opens_the_invite_dialog_once() {
    // (email ticked, dialog opens on the first page load)
    for (email, expected) in [(true, true), (false, false)] {
        let start = Harness::with(config(), true, email);
        let first = joined_snapshot(&to(&start.log, 1));
        assert_eq!(first.number.to_string(), "123 456 789");
        assert_eq!(first.role, Role::PrimaryRep);
        assert_eq!(first.open_invite_dialog, expected, "email={email}");

        // A reconnect does not open the dialog again.
        let mut h = start;
        h.event(Event::ConnectionLost { who: REP }).expect("lost");
        let again = h.event(Event::Connected { who: REP }).expect("back");
        assert!(!joined_snapshot(&to(&again, 1)).open_invite_dialog);
    }
}

#[test]
fn r1_start_is_audited_and_waits_for_the_page_within_the_attach_grace() {
    let h = Harness::new();
    assert!(matches!(
        audits(&h.log)[0].action,
        AuditAction::Started { primary } if primary == REP
    ));
    assert!(h.log.contains(&Output::SetTimer {
        timer: Timer::Reconnect(REP),
        at: Timestamp(1_000 + config().attach_grace_ms),
    }));
    assert!(h.log.contains(&Output::CancelTimer(Timer::Reconnect(REP))));
}

// ---------------------------------------------------------------- R2

#[test]
fn r2_closing_or_leaving_the_session_page_ends_the_session_for_everyone() {
    let close = |h: &mut Harness| h.event(Event::PageClosed { who: REP });
    let leave = |h: &mut Harness| h.cmd(1, C::Leave);
    for end in [close, leave] {
        let mut h = Harness::new();
        h.join(2, "Ann", JoinKind::CustomerByLink).expect("ann");
        h.join(3, "Bob", JoinKind::CustomerByNumber)
            .expect("bob waits");
        let out = end(&mut h).expect("page closes");
        for who in [2, 3] {
            assert!(
                to(&out, who).iter().any(|m| matches!(
                    m,
                    S::SessionEnded { reason: EndReason::PrimaryLeft, message } if !message.is_empty()
                )),
                "participant {who} sees the session end"
            );
        }
        assert!(out.contains(&Output::Ended {
            reason: EndReason::PrimaryLeft
        }));
        assert_eq!(h.session.ended(), Some(EndReason::PrimaryLeft));
    }
}

#[test]
fn r2_a_lost_connection_gets_a_grace_period_then_ends_the_session() {
    let mut h = Harness::new();
    h.join(2, "Ann", JoinKind::CustomerByLink).expect("ann");
    let out = h.event(Event::ConnectionLost { who: REP }).expect("lost");
    let deadline = Timestamp(h.now + config().reconnect_grace_ms);
    assert!(out.contains(&Output::SetTimer {
        timer: Timer::Reconnect(REP),
        at: deadline
    }));
    assert!(to(&out, 2).iter().any(|m| matches!(
        m,
        S::ParticipantUpdated { participant } if participant.id == REP && !participant.connected
    )));

    // Back in time: the timer is cancelled and, if it fires anyway, does nothing.
    h.advance(5_000);
    let back = h.event(Event::Connected { who: REP }).expect("back");
    assert!(back.contains(&Output::CancelTimer(Timer::Reconnect(REP))));
    let stale = h
        .event(Event::TimerFired(Timer::Reconnect(REP)))
        .expect("stale");
    assert!(stale.is_empty());
    assert_eq!(h.session.ended(), None);

    // Not back in time: the session ends for everyone.
    h.event(Event::ConnectionLost { who: REP })
        .expect("lost again");
    h.advance(config().reconnect_grace_ms);
    let out = h
        .event(Event::TimerFired(Timer::Reconnect(REP)))
        .expect("expired");
    assert!(to(&out, 2).iter().any(|m| matches!(
        m,
        S::SessionEnded {
            reason: EndReason::PrimaryConnectionLost,
            ..
        }
    )));
    assert_eq!(h.session.ended(), Some(EndReason::PrimaryConnectionLost));
}

#[test]
fn r2_a_customer_who_closes_the_page_leaves_but_the_session_goes_on() {
    let mut h = Harness::new();
    h.join(2, "Ann", JoinKind::CustomerByLink).expect("ann");
    let out = h.event(Event::PageClosed { who: id(2) }).expect("closed");
    assert!(to(&out, 1).iter().any(|m| matches!(
        m,
        S::ParticipantLeft { participant, reason: LeaveReason::Left } if *participant == id(2)
    )));
    assert_eq!(h.session.ended(), None);
    assert_eq!(h.session.active_customer(), None);
}

#[test]
fn r2_the_primary_page_that_never_opens_ends_the_session() {
    let start = tandem_session::Start {
        number: tandem_protocol::SessionNumber::new(1).expect("number"),
        primary: REP,
        name: "Rita".into(),
        rep: rep_info("rita", false),
        email_invite: false,
        config: config(),
    };
    let (mut session, _) = tandem_session::Session::start(start, Timestamp(0)).expect("start");
    let out = session
        .handle(
            Event::TimerFired(Timer::Reconnect(REP)),
            Timestamp(config().attach_grace_ms),
        )
        .expect("timer");
    assert!(out.contains(&Output::Ended {
        reason: EndReason::PrimaryConnectionLost
    }));
}

// ---------------------------------------------------------------- R3

#[test]
fn r3_invitations_by_email_to_customers_and_reps() {
    let cases: &[(&str, Invitee, bool, Result<(), ErrorCode>)] = &[
        ("ann@example.com", Invitee::Customer, false, Ok(())),
        (
            " sam@support.example.org ",
            Invitee::SupportRep,
            false,
            Ok(()),
        ),
        ("ann@example.com", Invitee::Customer, true, Ok(())),
        ("", Invitee::Customer, false, Err(ErrorCode::InvalidAddress)),
        (
            "ann",
            Invitee::Customer,
            false,
            Err(ErrorCode::InvalidAddress),
        ),
        (
            "ann@localhost",
            Invitee::Customer,
            false,
            Err(ErrorCode::InvalidAddress),
        ),
        (
            "a@b@example.com",
            Invitee::Customer,
            false,
            Err(ErrorCode::InvalidAddress),
        ),
        (
            "ann@example.com, eve@evil.example",
            Invitee::Customer,
            false,
            Err(ErrorCode::InvalidAddress),
        ),
        (
            "ann@example.com\r\nBcc: eve@evil.example",
            Invitee::Customer,
            false,
            Err(ErrorCode::InvalidAddress),
        ),
        (
            "<ann@example.com>",
            Invitee::Customer,
            false,
            Err(ErrorCode::InvalidAddress),
        ),
    ];
    for (address, invitee, own, expected) in cases {
        let mut h = Harness::new();
        let result = h.cmd(
            1,
            C::Invite {
                invitee: *invitee,
                address: (*address).into(),
                own_email_program: *own,
                language: Some("nb".into()),
            },
        );
        match (result, expected) {
            (Ok(out), Ok(())) => {
                let invitation = out
                    .iter()
                    .find_map(|o| match o {
                        Output::Invite(i) => Some(i.clone()),
                        _ => None,
                    })
                    .expect("an invitation to send");
                assert_eq!(invitation.address, address.trim());
                assert_eq!(invitation.invitee, *invitee);
                assert_eq!(invitation.own_email_program, *own);
                assert_eq!(
                    invitation.language.as_deref(),
                    Some("nb"),
                    "passed on to the mail"
                );
                assert_eq!(invitation.by_name, "Rita Rep");
                assert!(
                    audits(&out)
                        .iter()
                        .any(|a| matches!(a.action, AuditAction::Invited { .. }))
                );
            }
            (Err(e), Err(code)) => assert_eq!(e.code(), *code, "{address:?}: {e}"),
            (got, want) => panic!("{address:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn r3_customers_cannot_send_invitations() {
    let mut h = Harness::new();
    h.join(2, "Ann", JoinKind::CustomerByLink).expect("ann");
    let err = h
        .cmd(
            2,
            C::Invite {
                invitee: Invitee::Customer,
                address: "friend@example.com".into(),
                own_email_program: false,
                language: None,
            },
        )
        .expect_err("customer");
    assert_eq!(err.code(), ErrorCode::NotPermitted);
}

// ---------------------------------------------------------------- R4

#[test]
fn r4_several_customers_up_to_the_sites_maximum_then_a_clear_refusal() {
    // (customers in other sessions of the rep, how many may join here)
    for (elsewhere, allowed) in [(0u32, 3u64), (1, 2), (3, 0)] {
        let mut h = Harness::new();
        for n in 0..allowed {
            let who = 10 + n;
            let name = format!("Customer {n}");
            // Every other one joins by number and is admitted: both take a place.
            if n % 2 == 0 {
                h.join_loaded(who, &name, JoinKind::CustomerByLink, elsewhere)
                    .unwrap_or_else(|e| panic!("customer {n} with {elsewhere} elsewhere: {e}"));
            } else {
                h.join_loaded(who, &name, JoinKind::CustomerByNumber, elsewhere)
                    .expect("waits");
                h.admit(who, elsewhere)
                    .unwrap_or_else(|e| panic!("admit {n} with {elsewhere} elsewhere: {e}"));
            }
        }
        assert_eq!(h.session.customer_count(), allowed as u32);
        let before = h.session.clone();
        let err = h
            .join_loaded(99, "One too many", JoinKind::CustomerByLink, elsewhere)
            .expect_err("beyond the maximum");
        assert_eq!(err, SessionError::SessionFull { max: 3 });
        assert_eq!(err.code(), ErrorCode::SessionFull);
        assert!(err.to_string().contains("3 customers"), "{err}");
        assert_eq!(h.session, before, "a refused join changes nothing");
    }
}

#[test]
fn r4_admitting_beyond_the_maximum_is_refused() {
    // (customers in the session by link, customers in the rep's other sessions, admit ok)
    let cases = [
        (0u64, 0u32, true),
        (2, 0, true),
        (3, 0, false),
        (1, 1, true),
        (1, 2, false),
        (0, 3, false),
        (0, 7, false),
    ];
    for (here, elsewhere, ok) in cases {
        let mut h = Harness::new();
        for n in 0..here {
            h.join(10 + n, &format!("Customer {n}"), JoinKind::CustomerByLink)
                .expect("by link");
        }
        h.join_loaded(3, "Bob", JoinKind::CustomerByNumber, elsewhere)
            .expect("bob waits, whatever the load");
        let before = h.session.clone();
        let result = h.admit(3, elsewhere);
        let case = format!("{here} here, {elsewhere} elsewhere");
        if ok {
            let out = result.unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(joined_snapshot(&to(&out, 3)).you, id(3), "{case}");
            assert_eq!(admission(&h, 3), Some(Admission::Admitted), "{case}");
            continue;
        }
        let err = result.expect_err(&case);
        assert_eq!(err, SessionError::AdmitBeyondMaximum { max: 3 }, "{case}");
        assert_eq!(err.code(), ErrorCode::SessionFull, "{case}");
        let message = err.to_string();
        assert!(message.contains("3 customers"), "{case}: {message}");
        assert!(message.contains("waiting room"), "{case}: {message}");
        assert_eq!(
            h.session, before,
            "{case}: a refused admission changes nothing"
        );
        assert_eq!(admission(&h, 3), Some(Admission::Waiting), "{case}");
    }
}

#[test]
fn r4_the_admit_command_without_the_runtimes_load_counts_this_session_only() {
    let mut h = Harness::new();
    for n in 0..3 {
        h.join(10 + n, &format!("Customer {n}"), JoinKind::CustomerByLink)
            .expect("by link");
    }
    h.join(3, "Bob", JoinKind::CustomerByNumber)
        .expect("bob waits");
    let err = h.cmd(1, C::Admit { participant: id(3) }).expect_err("full");
    assert_eq!(err.code(), ErrorCode::SessionFull);
    h.cmd(10, C::Leave).expect("a customer leaves");
    h.cmd(1, C::Admit { participant: id(3) })
        .expect("a place is free again");
    assert_eq!(admission(&h, 3), Some(Admission::Admitted));
}

#[test]
fn r4_assistants_and_agents_do_not_count_against_the_maximum() {
    let mut h = Harness::new();
    h.assistant(5, "Sam");
    h.customer_with_agent(2, "Ann");
    h.customer_with_agent(3, "Bob");
    h.join(4, "Cid", JoinKind::CustomerByLink)
        .expect("third customer");
    assert_eq!(h.session.customer_count(), 3);
}

// ---------------------------------------------------------------- R5

#[test]
fn r5_selecting_a_customer_makes_them_active_for_everyone() {
    let mut h = Harness::new();
    let out = h.join(2, "Ann", JoinKind::CustomerByLink).expect("ann");
    assert!(
        to(&out, 1).contains(&S::ActiveCustomer {
            participant: Some(id(2))
        }),
        "the first customer is active without a click"
    );
    h.join(3, "Bob", JoinKind::CustomerByLink).expect("bob");
    let out = h
        .cmd(1, C::SetActiveCustomer { participant: id(3) })
        .expect("select");
    for who in [1, 2, 3] {
        assert!(to(&out, who).contains(&S::ActiveCustomer {
            participant: Some(id(3))
        }));
    }
    assert_eq!(h.session.active_customer(), Some(id(3)));
}

#[test]
fn r5_only_admitted_customers_can_be_active_and_only_the_primary_selects() {
    let mut h = Harness::new();
    h.join(2, "Ann", JoinKind::CustomerByLink).expect("ann");
    h.join(3, "Bob", JoinKind::CustomerByNumber)
        .expect("bob waits");
    h.assistant(5, "Sam");
    let cases = [
        (1, 3, ErrorCode::UnknownParticipant),  // waiting
        (1, 5, ErrorCode::UnknownParticipant),  // a rep
        (1, 77, ErrorCode::UnknownParticipant), // nobody
        (2, 2, ErrorCode::NotPermitted),        // a customer selecting
        (5, 2, ErrorCode::NotPermitted),        // an assistant selecting
    ];
    for (from, target, code) in cases {
        let err = h
            .cmd(
                from,
                C::SetActiveCustomer {
                    participant: id(target),
                },
            )
            .expect_err("refused");
        assert_eq!(err.code(), code, "{from} selects {target}");
    }
}

// ---------------------------------------------------------------- R6

#[test]
fn r6_a_customer_share_is_seen_by_every_participant() {
    let mut h = Harness::new();
    let agent = h.customer_with_agent(2, "Ann");
    h.join(3, "Bob", JoinKind::CustomerByLink).expect("bob");
    h.assistant(5, "Sam");
    let out = h
        .cmd(
            agent.0,
            C::StartShare {
                source: ShareSource::Desktop,
            },
        )
        .expect("share");
    for who in [1, 2, 3, 5] {
        assert!(
            to(&out, who)
                .iter()
                .any(|m| matches!(m, S::ShareStarted { share } if share.owner == agent)),
            "{who} is told of the share"
        );
    }
    // Bob (another customer) views it: the agent hears of the viewer and negotiates.
    let out = h.cmd(3, C::ViewShare { share: ShareId(1) }).expect("view");
    assert_eq!(
        to(&out, agent.0),
        vec![S::ViewerJoined {
            share: ShareId(1),
            viewer: id(3)
        }]
    );
    let out = h.cmd(agent.0, offer(3, 1)).expect("offer relayed");
    assert!(matches!(&to(&out, 3)[..], [S::Offer { from, .. }] if *from == agent));
    // Negotiation with someone who is not viewing is refused.
    let err = h.cmd(agent.0, offer(5, 1)).expect_err("not a viewer");
    assert_eq!(err.code(), ErrorCode::NotPermitted);
}

#[test]
fn r6_one_monitor_is_shared_by_name_and_a_name_is_at_most_512_characters() {
    for (name, accepted) in [
        ("DP-2".to_owned(), true),
        ("é".repeat(512), true),
        ("é".repeat(513), false),
    ] {
        let mut h = Harness::new();
        let agent = h.customer_with_agent(2, "Ann");
        let source = ShareSource::Monitor { name: name.clone() };
        match h.cmd(
            agent.0,
            C::StartShare {
                source: source.clone(),
            },
        ) {
            Ok(out) => {
                assert!(accepted, "{} characters accepted", name.chars().count());
                assert!(
                    to(&out, 1)
                        .iter()
                        .any(|m| matches!(m, S::ShareStarted { share } if share.source == source)),
                    "the rep is told which monitor"
                );
            }
            Err(e) => {
                assert!(!accepted, "refused: {e}");
                assert_eq!(e.code(), ErrorCode::TooLong);
            }
        }
    }
}

#[test]
fn r6_the_reps_own_share_is_seen_by_customers() {
    let mut h = Harness::new();
    h.join(2, "Ann", JoinKind::CustomerByLink).expect("ann");
    let out = h
        .cmd(
            1,
            C::StartShare {
                source: ShareSource::Window {
                    title: "Guide".into(),
                },
            },
        )
        .expect("rep shares");
    assert!(
        to(&out, 2)
            .iter()
            .any(|m| matches!(m, S::ShareStarted { share } if share.owner == REP))
    );
    h.cmd(2, C::ViewShare { share: ShareId(1) })
        .expect("ann views");
    let out = h
        .cmd(
            2,
            C::Answer {
                to: REP,
                stream: StreamRef::Share(ShareId(1)),
                sdp: "v=0".into(),
            },
        )
        .expect("answer relayed");
    assert!(matches!(&to(&out, 1)[..], [S::Answer { from, .. }] if *from == id(2)));
}

#[test]
fn r6_customers_share_only_through_the_agent_of_the_active_customer() {
    let mut h = Harness::new();
    h.customer_with_agent(2, "Ann");
    let bob_agent = h.customer_with_agent(3, "Bob");
    let cases = [
        (2, ErrorCode::NotPermitted),                // Ann's page, not her agent
        (bob_agent.0, ErrorCode::NotActiveCustomer), // Bob is not the active customer
    ];
    for (from, code) in cases {
        let err = h
            .cmd(
                from,
                C::StartShare {
                    source: ShareSource::Desktop,
                },
            )
            .expect_err("refused");
        assert_eq!(err.code(), code, "sender {from}");
    }
}

// ---------------------------------------------------------------- R7

#[test]
fn r7_switching_customer_ends_every_share_and_closes_every_viewer_at_once() {
    let mut h = Harness::new();
    let ann_agent = h.customer_with_agent(2, "Ann");
    let bob_agent = h.customer_with_agent(3, "Bob");
    h.cmd(
        ann_agent.0,
        C::StartShare {
            source: ShareSource::Desktop,
        },
    )
    .expect("ann shares");
    h.cmd(
        1,
        C::StartShare {
            source: ShareSource::Desktop,
        },
    )
    .expect("rep shares");
    h.cmd(1, C::ViewShare { share: ShareId(1) })
        .expect("rep views ann");
    h.cmd(3, C::ViewShare { share: ShareId(1) })
        .expect("bob views ann");
    h.cmd(2, C::ViewShare { share: ShareId(2) })
        .expect("ann views rep");
    h.cmd(1, C::RequestControl).expect("request");
    h.cmd(ann_agent.0, C::ControlConsent { granted: true })
        .expect("consent");
    assert!(h.session.control().is_some());

    let out = h
        .cmd(1, C::SetActiveCustomer { participant: id(3) })
        .expect("switch");
    // Ann's agent (owner of share 1) stops capturing; every browser closes both tiles.
    for who in [1, 2, 3, ann_agent.0] {
        let got = to(&out, who);
        for share in [1, 2] {
            assert!(
                got.contains(&S::ShareStopped {
                    share: ShareId(share),
                    reason: ShareStopReason::SwitchedCustomer
                }),
                "{who} hears that share {share} stopped"
            );
        }
    }
    assert!(to(&out, ann_agent.0).contains(&S::ControlChanged {
        control: None,
        reason: ControlChange::SwitchedCustomer
    }));
    assert!(h.session.shares().is_empty());
    assert!(h.session.control().is_none());
    // The stop comes before the new active customer is announced.
    let stop = out.iter().position(|o| {
        matches!(
            o,
            Output::Send {
                message: S::ShareStopped { .. },
                ..
            }
        )
    });
    let active = out.iter().position(|o| {
        matches!(
            o,
            Output::Send {
                message: S::ActiveCustomer { .. },
                ..
            }
        )
    });
    assert!(stop < active);
    // Ann's agent may not share any more; Bob's may.
    let err = h
        .cmd(
            ann_agent.0,
            C::StartShare {
                source: ShareSource::Desktop,
            },
        )
        .expect_err("ann");
    assert_eq!(err, SessionError::NotActiveCustomer);
    h.cmd(
        bob_agent.0,
        C::StartShare {
            source: ShareSource::Desktop,
        },
    )
    .expect("bob shares");
}

#[test]
fn r7_selecting_the_same_customer_again_changes_nothing() {
    let mut h = Harness::new();
    let agent = h.customer_with_agent(2, "Ann");
    h.cmd(
        agent.0,
        C::StartShare {
            source: ShareSource::Desktop,
        },
    )
    .expect("share");
    let out = h
        .cmd(1, C::SetActiveCustomer { participant: id(2) })
        .expect("same");
    assert!(out.is_empty());
    assert_eq!(h.session.shares().len(), 1);
}

// ---------------------------------------------------------------- R8

#[test]
fn r8_an_assistant_joins_without_control_and_the_primary_can_give_it() {
    let mut h = Harness::new();
    let agent = h.customer_with_agent(2, "Ann");
    let out = h
        .join(5, "Sam", JoinKind::Assistant(rep_info("sam", false)))
        .expect("assist");
    assert_eq!(joined_snapshot(&to(&out, 5)).role, Role::Assistant);
    assert!(!h.session.may_inject(id(5), agent));

    let err = h.cmd(5, C::RequestControl).expect_err("assistant asks");
    assert_eq!(err.code(), ErrorCode::NotPermitted);

    let out = h.cmd(1, C::GiveControl { to: id(5) }).expect("give");
    assert!(to(&out, agent.0).contains(&S::ControlRequested {
        by: id(5),
        name: "Sam".into()
    }));
    assert!(
        h.session.control().is_none(),
        "not before the customer agrees (C1)"
    );
    let out = h
        .cmd(agent.0, C::ControlConsent { granted: true })
        .expect("consent");
    let control = ControlInfo {
        holder: id(5),
        agent,
    };
    assert!(to(&out, 1).contains(&S::ControlChanged {
        control: Some(control.clone()),
        reason: ControlChange::Granted
    }));
    assert!(h.session.may_inject(id(5), agent));
    assert!(!h.session.may_inject(REP, agent));

    // The primary takes it back without asking the customer again.
    let out = h.cmd(1, C::RequestControl).expect("take back");
    assert!(
        to(&out, agent.0)
            .iter()
            .all(|m| !matches!(m, S::ControlRequested { .. }))
    );
    assert!(h.session.may_inject(REP, agent));
    assert!(!h.session.may_inject(id(5), agent));
}

// ---------------------------------------------------------------- R9

#[test]
fn r9_transfer_control_leaves_the_former_primary_observing_until_it_comes_back() {
    let mut h = Harness::new();
    let agent = h.customer_with_agent(2, "Ann");
    h.assistant(5, "Sam");
    h.cmd(
        agent.0,
        C::StartShare {
            source: ShareSource::Desktop,
        },
    )
    .expect("share");
    h.cmd(1, C::RequestControl).expect("request");
    h.cmd(agent.0, C::ControlConsent { granted: true })
        .expect("consent");

    let out = h
        .cmd(1, C::TransferSession { to: id(5) })
        .expect("transfer");
    assert!(to(&out, 2).contains(&S::PrimaryChanged {
        primary: id(5),
        former: REP
    }));
    assert!(to(&out, 1).contains(&S::ControlChanged {
        control: None,
        reason: ControlChange::SessionTransferred
    }));
    assert_eq!(h.session.role(REP), Some(Role::Observer));
    assert_eq!(h.session.primary(), Some(id(5)));

    // Every controlling feature is unavailable to the former primary...
    let controlling = [
        C::RequestControl,
        C::GiveControl { to: REP },
        C::SetActiveCustomer { participant: id(2) },
        C::StartShare {
            source: ShareSource::Desktop,
        },
        C::TransferSession { to: id(5) },
        C::EndSession,
        C::RequestShare,
        C::Admit { participant: id(2) },
        C::StartCall,
    ];
    for message in controlling {
        let err = h.cmd(1, message.clone()).expect_err("observer");
        assert_eq!(err.code(), ErrorCode::NotPermitted, "{message:?}");
    }
    let err = h
        .cmd(5, C::GiveControl { to: REP })
        .expect_err("observer can't be given control");
    assert_eq!(err.code(), ErrorCode::NotPermitted);
    // ...but it still watches and chats.
    h.cmd(1, C::ViewShare { share: ShareId(1) })
        .expect("observe sharing");
    h.cmd(
        1,
        C::Chat {
            text: "I'm still here".into(),
        },
    )
    .expect("chat");

    // The new primary transfers control back at any time.
    h.cmd(5, C::TransferSession { to: REP }).expect("back");
    assert_eq!(h.session.primary(), Some(REP));
    assert_eq!(h.session.role(id(5)), Some(Role::Observer));
    h.cmd(1, C::RequestControl)
        .expect("control again, consent still holds");
    assert!(h.session.may_inject(REP, agent));
}

#[test]
fn r9_after_a_transfer_the_new_primary_is_the_one_who_must_keep_the_page_open() {
    let mut h = Harness::new();
    h.join(2, "Ann", JoinKind::CustomerByLink).expect("ann");
    h.assistant(5, "Sam");
    h.cmd(1, C::TransferSession { to: id(5) })
        .expect("transfer");
    h.event(Event::PageClosed { who: REP })
        .expect("former primary leaves");
    assert!(h.session.ended().is_none());
    h.event(Event::PageClosed { who: id(5) })
        .expect("new primary leaves");
    assert_eq!(h.session.ended(), Some(EndReason::PrimaryLeft));
}

// ---------------------------------------------------------------- R10

fn transfer(message: Option<String>) -> C {
    C::WebacdTransfer {
        target: TransferTarget::Queue {
            queue: "Printers".into(),
        },
        message,
    }
}

#[test]
fn r10_the_personal_message_is_at_most_345_characters_counted_as_characters() {
    let cases = [
        ("a".repeat(345), true),
        ("a".repeat(346), false),
        ("é".repeat(345), true), // 690 bytes, 345 characters
        ("é".repeat(346), false),
        ("🖨".repeat(345), true), // 4 bytes each
        (String::new(), true),
    ];
    for (message, accepted) in cases {
        let mut h = Harness::new();
        h.join(2, "Ann", JoinKind::CustomerByLink).expect("ann");
        let chars = message.chars().count();
        match h.cmd(1, transfer(Some(message))) {
            Ok(_) => assert!(accepted, "{chars} characters accepted"),
            Err(e) => {
                assert!(!accepted, "{chars} characters refused: {e}");
                assert_eq!(e.code(), ErrorCode::TooLong);
                assert_eq!(
                    e.to_string(),
                    format!("the transfer message has {chars} characters; at most 345 are allowed")
                );
            }
        }
    }
}

#[test]
fn r10_only_webacd_agents_may_transfer() {
    let mut h = Harness::with(config(), false, false);
    h.join(2, "Ann", JoinKind::CustomerByLink).expect("ann");
    let err = h.cmd(1, transfer(None)).expect_err("not an agent");
    assert_eq!(err, SessionError::NotWebacdAgent);
    // A WebACD assistant is not the primary either.
    h.join(5, "Sam", JoinKind::Assistant(rep_info("sam", true)))
        .expect("sam");
    assert_eq!(
        h.cmd(5, transfer(None)).expect_err("assistant").code(),
        ErrorCode::NotPermitted
    );
}

#[test]
fn r10_the_transferring_rep_leaves_and_their_call_ends() {
    let mut h = Harness::new();
    h.join(2, "Ann", JoinKind::CustomerByLink).expect("ann");
    h.cmd(1, C::StartCall).expect("call");
    h.cmd(2, C::JoinCall { video: false })
        .expect("ann joins the call");

    let out = h
        .cmd(1, transfer(Some("Printer E-42".into())))
        .expect("transfer");
    let sent = out
        .iter()
        .find_map(|o| match o {
            Output::Transfer(t) => Some(t.clone()),
            _ => None,
        })
        .expect("transfer output");
    assert_eq!(sent.message.as_deref(), Some("Printer E-42"));
    assert_eq!(sent.from_account, "rita");
    // Kept with the session, so a runtime that lost the output can offer it again.
    assert_eq!(h.session.waiting_transfer(), Some(sent.clone()));
    assert!(out.contains(&Output::Disconnect {
        participant: REP,
        reason: LeaveReason::Transferred
    }));
    let ann = to(&out, 2);
    assert!(
        ann.contains(&S::CallState { call: None }),
        "the call ended for Ann"
    );
    assert!(ann.contains(&S::ParticipantLeft {
        participant: REP,
        reason: LeaveReason::Transferred
    }));
    assert!(ann.iter().any(|m| matches!(m, S::Transferring { .. })));
    assert!(
        h.session.ended().is_none(),
        "the session goes on for the customer"
    );
    assert!(h.session.call().is_none());

    // While it is pending, only a transfer receiver can take the primary's place.
    let out = h
        .join(9, "Wes", JoinKind::TransferReceiver(rep_info("wes", true)))
        .expect("accept");
    let snapshot = joined_snapshot(&to(&out, 9));
    assert_eq!(snapshot.role, Role::PrimaryRep);
    assert_eq!(snapshot.transfer_message.as_deref(), Some("Printer E-42"));
    // Said again whenever Wes comes back (a resume, or his accept sent again with its
    // key after the answer was lost), and to nobody else.
    h.event(Event::ConnectionLost { who: id(9) }).expect("lost");
    let back = h.event(Event::Connected { who: id(9) }).expect("back");
    let snapshot = joined_snapshot(&to(&back, 9));
    assert_eq!(snapshot.transfer_message.as_deref(), Some("Printer E-42"));
    h.event(Event::ConnectionLost { who: id(2) }).expect("lost");
    let back = h.event(Event::Connected { who: id(2) }).expect("back");
    assert_eq!(joined_snapshot(&to(&back, 2)).transfer_message, None);
    let err = h
        .join(
            10,
            "Late",
            JoinKind::TransferReceiver(rep_info("late", true)),
        )
        .expect_err("already taken");
    assert_eq!(err, SessionError::NoTransferPending);
}

// ---------------------------------------------------------------- R11

#[test]
fn r11_chat_reaches_every_person_in_the_session() {
    let mut h = Harness::new();
    let agent = h.customer_with_agent(2, "Ann");
    h.join(3, "Bob", JoinKind::CustomerByNumber)
        .expect("bob waits");
    let out = h
        .cmd(
            2,
            C::Chat {
                text: "Hello ✓".into(),
            },
        )
        .expect("chat");
    for who in [1, 2] {
        assert!(to(&out, who).iter().any(|m| matches!(
            m, S::Chat { from, name, text, .. } if *from == id(2) && name == "Ann" && text == "Hello ✓"
        )));
    }
    assert!(to(&out, agent.0).is_empty(), "agents don't chat");
    assert!(
        to(&out, 3).is_empty(),
        "the waiting room doesn't hear the session"
    );

    let cases = [
        (2, "   ".to_string(), ErrorCode::Empty),
        (2, "x".repeat(2001), ErrorCode::TooLong),
        (3, "let me in".to_string(), ErrorCode::NotPermitted),
    ];
    for (from, text, code) in cases {
        assert_eq!(
            h.cmd(from, C::Chat { text }).expect_err("refused").code(),
            code
        );
    }
}

#[test]
fn r11_voice_call_start_join_mute_leave_and_end() {
    let mut h = Harness::new();
    h.join(2, "Ann", JoinKind::CustomerByLink).expect("ann");
    assert_eq!(
        h.cmd(2, C::StartCall).expect_err("customer").code(),
        ErrorCode::NotPermitted
    );
    h.cmd(1, C::StartCall).expect("start");
    assert_eq!(
        h.cmd(1, C::StartCall).expect_err("twice").code(),
        ErrorCode::CallInProgress
    );
    let out = h.cmd(2, C::JoinCall { video: true }).expect("join");
    let state = to(&out, 1);
    assert!(
        state
            .iter()
            .any(|m| matches!(m, S::CallState { call: Some(c) } if c.members.len() == 2))
    );
    h.cmd(
        2,
        C::CallMedia {
            muted: true,
            video: false,
        },
    )
    .expect("mute");
    let call = h.session.call().expect("call");
    assert!(
        call.members
            .iter()
            .any(|m| m.participant == id(2) && m.muted && !m.video)
    );
    // Media negotiation in the call is between members only.
    let ice = C::IceCandidate {
        to: REP,
        stream: StreamRef::Call,
        candidate: tandem_protocol::IceCandidate {
            candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host".into(),
            sdp_mid: None,
            sdp_mline_index: None,
        },
    };
    h.cmd(2, ice.clone()).expect("relayed");
    h.cmd(2, C::LeaveCall).expect("leave");
    assert_eq!(
        h.cmd(2, ice).expect_err("not in call").code(),
        ErrorCode::NoCall
    );
    assert_eq!(
        h.cmd(2, C::EndCall).expect_err("not the starter").code(),
        ErrorCode::NotPermitted
    );
    let out = h.cmd(1, C::EndCall).expect("end");
    assert!(to(&out, 2).contains(&S::CallState { call: None }));
}

// ---------------------------------------------------------------- C1

#[test]
fn c1_control_needs_the_customers_consent_and_a_refusal_is_shown() {
    let mut h = Harness::new();
    let agent = h.customer_with_agent(2, "Ann");
    assert_eq!(
        h.cmd(agent.0, C::ControlConsent { granted: true })
            .expect_err("nothing asked"),
        SessionError::NoPendingRequest
    );
    let out = h.cmd(1, C::RequestControl).expect("request");
    assert!(to(&out, agent.0).contains(&S::ControlRequested {
        by: REP,
        name: "Rita Rep".into()
    }));
    assert!(!h.session.may_inject(REP, agent));
    let out = h
        .cmd(agent.0, C::ControlConsent { granted: false })
        .expect("declined");
    assert!(to(&out, 1).contains(&S::ControlDeclined { agent }));
    assert!(h.session.control().is_none());
    assert!(!h.session.may_inject(REP, agent));
}

#[test]
fn c1_the_customer_can_revoke_at_any_moment_and_is_asked_again() {
    let mut h = Harness::new();
    let agent = h.customer_with_agent(2, "Ann");
    h.cmd(1, C::RequestControl).expect("request");
    h.cmd(agent.0, C::ControlConsent { granted: true })
        .expect("consent");
    assert!(h.session.may_inject(REP, agent));

    let out = h.cmd(agent.0, C::RevokeControl).expect("revoke");
    assert!(to(&out, 1).contains(&S::ControlChanged {
        control: None,
        reason: ControlChange::RevokedByCustomer
    }));
    assert!(!h.session.may_inject(REP, agent));
    let out = h.cmd(1, C::RequestControl).expect("ask again");
    assert!(
        to(&out, agent.0)
            .iter()
            .any(|m| matches!(m, S::ControlRequested { .. }))
    );
}

#[test]
fn c1_a_restarted_agent_asks_again_and_sharing_waits_for_the_customer() {
    let mut h = Harness::new();
    let agent = h.customer_with_agent(2, "Ann");
    h.cmd(1, C::RequestShare).expect("ask to share");
    let out = h.cmd(agent.0, C::DeclineShare).expect("customer says no");
    assert!(to(&out, 1).contains(&S::ShareDeclined { customer: id(2) }));
    assert!(
        h.session.shares().is_empty(),
        "nothing is shared without consent"
    );

    h.cmd(1, C::RequestControl).expect("request");
    h.cmd(agent.0, C::ControlConsent { granted: true })
        .expect("consent");
    h.event(Event::PageClosed { who: agent })
        .expect("agent stops");
    assert!(h.session.control().is_none());
    h.join(150, "Ann's laptop", JoinKind::Agent { customer: id(2) })
        .expect("restarted");
    let out = h.cmd(1, C::RequestControl).expect("request again");
    assert!(
        to(&out, 150)
            .iter()
            .any(|m| matches!(m, S::ControlRequested { .. }))
    );
    assert!(!h.session.may_inject(REP, id(150)));
}

#[test]
fn c1_input_is_injected_only_from_the_holder_into_the_consenting_agent() {
    let mut h = Harness::new();
    let ann_agent = h.customer_with_agent(2, "Ann");
    h.customer_with_agent(3, "Bob");
    h.assistant(5, "Sam");
    h.cmd(1, C::RequestControl).expect("request");
    h.cmd(ann_agent.0, C::ControlConsent { granted: true })
        .expect("consent");
    let table = [
        (1, 102, true),
        (1, 103, false),
        (5, 102, false),
        (2, 102, false),
        (102, 102, false),
    ];
    for (from, agent, allowed) in table {
        assert_eq!(
            h.session.may_inject(id(from), id(agent)),
            allowed,
            "{from} → {agent}"
        );
    }
}

// ---------------------------------------------------------------- C2

#[test]
fn c2_joining_by_number_waits_until_a_rep_admits_while_a_link_admits_directly() {
    let mut h = Harness::new();
    let out = h.join(2, "Ann", JoinKind::CustomerByLink).expect("link");
    assert_eq!(joined_snapshot(&to(&out, 2)).role, Role::Customer);

    let out = h
        .join(3, "Bob", JoinKind::CustomerByNumber)
        .expect("number");
    assert!(matches!(&to(&out, 3)[..], [S::Waiting { .. }]));
    assert!(
        to(&out, 1)
            .iter()
            .any(|m| matches!(m, S::ParticipantJoined { participant } if participant.id == id(3)))
    );
    assert!(
        to(&out, 2).is_empty(),
        "other customers don't see the waiting room"
    );
    assert_eq!(
        h.cmd(3, C::Chat { text: "hi".into() })
            .expect_err("waiting")
            .code(),
        ErrorCode::NotPermitted
    );
    assert_eq!(
        h.cmd(2, C::Admit { participant: id(3) })
            .expect_err("customer")
            .code(),
        ErrorCode::NotPermitted
    );

    let out = h.cmd(1, C::Admit { participant: id(3) }).expect("admit");
    assert_eq!(joined_snapshot(&to(&out, 3)).you, id(3));
    assert!(
        to(&out, 2)
            .iter()
            .any(|m| matches!(m, S::ParticipantUpdated { participant } if participant.id == id(3)))
    );
    assert_eq!(
        h.cmd(1, C::Admit { participant: id(3) })
            .expect_err("twice")
            .code(),
        ErrorCode::NotPermitted
    );

    h.join(4, "Eve", JoinKind::CustomerByNumber)
        .expect("eve waits");
    let out = h.cmd(1, C::Deny { participant: id(4) }).expect("deny");
    assert!(matches!(&to(&out, 4)[..], [S::Denied { .. }]));
    assert!(out.contains(&Output::Disconnect {
        participant: id(4),
        reason: LeaveReason::Denied
    }));
    assert!(h.session.role(id(4)).is_none());
}

#[test]
fn c2_waiting_customers_do_not_take_a_place() {
    // (strangers waiting, customers in the rep's other sessions, joins by link that fit)
    for (strangers, elsewhere, fit) in [(0u64, 0u32, 3u64), (4, 0, 3), (4, 2, 1), (2, 3, 0)] {
        let case = format!("{strangers} waiting, {elsewhere} elsewhere");
        let mut h = Harness::new();
        for n in 0..strangers {
            h.join_loaded(
                20 + n,
                &format!("Stranger {n}"),
                JoinKind::CustomerByNumber,
                elsewhere,
            )
            .unwrap_or_else(|e| panic!("{case}: stranger {n}: {e}"));
        }
        assert_eq!(h.session.customer_count(), 0, "{case}");
        assert_eq!(h.session.waiting_count(), strangers as u32, "{case}");
        for n in 0..fit {
            h.join_loaded(
                10 + n,
                &format!("Customer {n}"),
                JoinKind::CustomerByLink,
                elsewhere,
            )
            .unwrap_or_else(|e| panic!("{case}: customer {n}: {e}"));
        }
        assert_eq!(h.session.customer_count(), fit as u32, "{case}");
        let err = h
            .join_loaded(99, "One too many", JoinKind::CustomerByLink, elsewhere)
            .expect_err(&case);
        assert_eq!(err.code(), ErrorCode::SessionFull, "{case}");
    }
}

#[test]
fn c2_a_join_by_number_waits_even_when_every_place_is_taken() {
    let mut h = Harness::new();
    for n in 0..3 {
        h.join(10 + n, &format!("Customer {n}"), JoinKind::CustomerByLink)
            .expect("by link");
    }
    let out = h
        .join(3, "Bob", JoinKind::CustomerByNumber)
        .expect("bob may wait for a place");
    assert!(matches!(&to(&out, 3)[..], [S::Waiting { .. }]));
    assert_eq!(
        (h.session.customer_count(), h.session.waiting_count()),
        (3, 1)
    );
}

#[test]
fn c2_the_waiting_room_has_its_own_cap() {
    for cap in [0u32, 1, 4] {
        let mut h = Harness::with(
            tandem_session::SessionConfig {
                max_waiting: cap,
                ..config()
            },
            true,
            false,
        );
        for n in 0..u64::from(cap) {
            h.join(20 + n, &format!("Stranger {n}"), JoinKind::CustomerByNumber)
                .unwrap_or_else(|e| panic!("cap {cap}: stranger {n}: {e}"));
        }
        let before = h.session.clone();
        let err = h
            .join(99, "One more", JoinKind::CustomerByNumber)
            .expect_err("the waiting room is full");
        assert_eq!(err, SessionError::WaitingRoomFull { max: cap }, "cap {cap}");
        assert_eq!(err.code(), ErrorCode::SiteLimit, "cap {cap}");
        let message = err.to_string();
        assert!(
            message.contains("waiting room") && message.contains("join link"),
            "{message}"
        );
        assert_eq!(h.session, before, "a refused join changes nothing");
        if cap == 0 {
            continue;
        }
        // A place in the waiting room frees up when someone leaves it, either way.
        let free: [fn(&mut Harness) -> Outcome; 3] = [
            |h| h.cmd(20, C::Leave),
            |h| {
                h.cmd(
                    1,
                    C::Deny {
                        participant: id(20),
                    },
                )
            },
            |h| h.admit(20, 0),
        ];
        for (way, free) in free.into_iter().enumerate() {
            let mut h = h.clone();
            free(&mut h).unwrap_or_else(|e| panic!("cap {cap}, way {way}: {e}"));
            h.join(99, "One more", JoinKind::CustomerByNumber)
                .unwrap_or_else(|e| panic!("cap {cap}, way {way}: {e}"));
        }
    }
}

#[test]
fn c2_a_link_join_gets_in_when_the_waiting_room_is_full() {
    // (customers in the rep's other sessions, the link join gets in)
    for (elsewhere, gets_in) in [(0u32, true), (2, true), (3, false)] {
        let mut h = Harness::new();
        for n in 0..4 {
            h.join_loaded(
                20 + n,
                &format!("Stranger {n}"),
                JoinKind::CustomerByNumber,
                elsewhere,
            )
            .expect("strangers fill the waiting room");
        }
        assert_eq!(
            h.join(98, "Too late", JoinKind::CustomerByNumber)
                .expect_err("full")
                .code(),
            ErrorCode::SiteLimit
        );
        let result = h.join_loaded(2, "Ann", JoinKind::CustomerByLink, elsewhere);
        if gets_in {
            let out = result.unwrap_or_else(|e| panic!("{elsewhere} elsewhere: {e}"));
            assert_eq!(joined_snapshot(&to(&out, 2)).role, Role::Customer);
            assert_eq!(h.session.active_customer(), Some(id(2)));
        } else {
            // Only R4 can keep her out: the rep has no place left.
            assert_eq!(result.expect_err("no place").code(), ErrorCode::SessionFull);
        }
    }
}

/// C2: the waiting room is the reps' alone, when a waiting customer's connection drops
/// and comes back too: admitted customers and agents never hear of them.
#[test]
fn c2_a_waiting_customers_lost_connection_and_return_reach_the_reps_only() {
    let mut h = Harness::new();
    h.join(2, "Ann", JoinKind::CustomerByLink).expect("ann");
    h.join(3, "Bob", JoinKind::CustomerByNumber)
        .expect("bob waits");
    let about_bob = |messages: Vec<S>| {
        messages.into_iter().any(|m| match m {
            S::ParticipantUpdated { participant } | S::ParticipantJoined { participant } => {
                participant.id == id(3)
            }
            S::ParticipantLeft { participant, .. } => participant == id(3),
            _ => false,
        })
    };
    let out = h.event(Event::ConnectionLost { who: id(3) }).expect("lost");
    assert!(about_bob(to(&out, 1)), "the rep sees Bob's connection lost");
    assert!(!about_bob(to(&out, 2)), "Ann heard of the waiting Bob");
    let out = h.event(Event::Connected { who: id(3) }).expect("back");
    assert!(about_bob(to(&out, 1)), "the rep sees Bob back");
    assert!(!about_bob(to(&out, 2)), "Ann heard of the waiting Bob");
}

#[test]
fn c2_a_waiting_customer_may_still_leave() {
    let mut h = Harness::new();
    h.join(3, "Bob", JoinKind::CustomerByNumber)
        .expect("bob waits");
    let out = h.cmd(3, C::Leave).expect("leave");
    assert!(to(&out, 1).contains(&S::ParticipantLeft {
        participant: id(3),
        reason: LeaveReason::Left
    }));
}

// ---------------------------------------------------------------- C3

#[test]
fn c3_every_state_change_is_audited_with_who_and_when_never_going_back() {
    let mut h = Harness::new();
    let steps: Vec<(Event, &str)> = vec![
        (
            Event::Join(tandem_session::Join {
                id: id(2),
                name: "Ann".into(),
                kind: JoinKind::CustomerByNumber,
                rep_load_elsewhere: 0,
            }),
            "waiting",
        ),
        (
            Event::Command {
                from: REP,
                message: C::Admit { participant: id(2) },
            },
            "admitted",
        ),
        (
            Event::Join(tandem_session::Join {
                id: id(102),
                name: "laptop".into(),
                kind: JoinKind::Agent { customer: id(2) },
                rep_load_elsewhere: 0,
            }),
            "joined",
        ),
        (
            Event::Command {
                from: id(102),
                message: C::StartShare {
                    source: ShareSource::Desktop,
                },
            },
            "share_started",
        ),
        (
            Event::Command {
                from: REP,
                message: C::RequestControl,
            },
            "control_requested",
        ),
        (
            Event::Command {
                from: id(102),
                message: C::ControlConsent { granted: true },
            },
            "control_granted",
        ),
        (
            Event::Command {
                from: id(102),
                message: C::RevokeControl,
            },
            "control_revoked",
        ),
        (
            Event::Command {
                from: REP,
                message: C::StartCall,
            },
            "call_started",
        ),
        (
            Event::Join(tandem_session::Join {
                id: id(5),
                name: "Sam".into(),
                kind: JoinKind::Assistant(rep_info("sam", true)),
                rep_load_elsewhere: 0,
            }),
            "joined",
        ),
        (
            Event::Command {
                from: REP,
                message: C::TransferSession { to: id(5) },
            },
            "primary_transferred",
        ),
        (
            Event::Command {
                from: id(5),
                message: C::EndSession,
            },
            "ended",
        ),
    ];
    let mut times = vec![];
    for (n, (event, action)) in steps.into_iter().enumerate() {
        // The caller's clock jumps around; the audit trail must not.
        h.now = if n % 3 == 2 {
            h.now - 500
        } else {
            h.now + 1_000
        };
        let out = h
            .event(event)
            .unwrap_or_else(|e| panic!("step {n} ({action}): {e}"));
        let records = audits(&out);
        let names: Vec<String> = records
            .iter()
            .map(|r| {
                serde_json::to_value(r).expect("json")["action"]
                    .as_str()
                    .expect("action")
                    .to_owned()
            })
            .collect();
        assert!(
            names.iter().any(|a| a == action),
            "step {n}: wanted {action}, got {names:?}"
        );
        times.extend(records.iter().map(|r| r.at));
    }
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let ended = audits(&h.log).pop().expect("records");
    let actor = ended.actor.expect("who ended it");
    assert_eq!(
        (actor.name.as_str(), actor.account.as_deref()),
        ("Sam", Some("sam"))
    );
}

// ---------------------------------------------------------------- permissions

/// Who may issue which command, by role. Every refusal is a typed error, never a panic.
#[test]
fn permissions_by_role() {
    use ErrorCode::*;
    // Participants: 1 primary, 2 customer (active, agent 102), 3 waiting customer,
    // 5 assistant, 6 observer-to-be (assistant made primary then back).
    let build = || {
        let mut h = Harness::new();
        h.customer_with_agent(2, "Ann");
        h.join(3, "Bob", JoinKind::CustomerByNumber)
            .expect("bob waits");
        h.assistant(5, "Sam");
        h
    };
    let table: Vec<(u64, C, Result<(), ErrorCode>)> = vec![
        (2, C::Admit { participant: id(3) }, Err(NotPermitted)),
        (102, C::Admit { participant: id(3) }, Err(NotPermitted)),
        (5, C::Admit { participant: id(3) }, Ok(())),
        (5, C::Deny { participant: id(3) }, Ok(())),
        (3, C::Admit { participant: id(3) }, Err(NotPermitted)),
        (2, C::EndSession, Err(NotPermitted)),
        (5, C::EndSession, Err(NotPermitted)),
        (2, C::StartCall, Err(NotPermitted)),
        (5, C::StartCall, Ok(())),
        (102, C::Chat { text: "hi".into() }, Err(NotPermitted)),
        (2, C::RequestControl, Err(NotPermitted)),
        (2, C::GiveControl { to: id(5) }, Err(NotPermitted)),
        (1, C::GiveControl { to: id(2) }, Err(NotPermitted)),
        (1, C::GiveControl { to: id(77) }, Err(UnknownParticipant)),
        (2, C::RevokeControl, Ok(())),
        (5, C::RevokeControl, Err(NotPermitted)),
        (2, C::TransferSession { to: id(5) }, Err(NotPermitted)),
        (1, C::TransferSession { to: id(2) }, Err(NotPermitted)),
        (1, C::TransferSession { to: REP }, Err(NotPermitted)),
        (2, C::StopShare { share: ShareId(9) }, Err(UnknownShare)),
        (2, C::ViewShare { share: ShareId(9) }, Err(UnknownShare)),
        (102, C::DeclineShare, Ok(())),
        (2, C::DeclineShare, Err(NotPermitted)),
        (
            1,
            C::Hello {
                protocol_version: 1,
                client: tandem_protocol::ClientKind::Console,
                software: String::new(),
            },
            Err(BadMessage),
        ),
        (77, C::Chat { text: "hi".into() }, Err(UnknownParticipant)),
        (1, C::LeaveCall, Err(NoCall)),
        (1, C::JoinCall { video: false }, Err(NoCall)),
    ];
    for (from, message, expected) in table {
        let mut h = build();
        let before = h.session.clone();
        match (h.cmd(from, message.clone()), expected) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(code)) => {
                assert_eq!(e.code(), code, "{from} {message:?}: {e}");
                assert!(!e.to_string().is_empty());
                assert_eq!(h.session, before, "a refused command changes nothing");
            }
            (got, want) => panic!("{from} {message:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn nothing_happens_after_the_session_ended() {
    let mut h = Harness::new();
    h.join(2, "Ann", JoinKind::CustomerByLink).expect("ann");
    h.cmd(1, C::EndSession).expect("end");
    let frozen = h.session.clone();
    let events = [
        Event::Command {
            from: id(2),
            message: C::Chat {
                text: "hello?".into(),
            },
        },
        Event::Join(tandem_session::Join {
            id: id(9),
            name: "Late".into(),
            kind: JoinKind::CustomerByLink,
            rep_load_elsewhere: 0,
        }),
        Event::Connected { who: REP },
        Event::TimerFired(Timer::Reconnect(id(2))),
        Event::Terminate {
            reason: EndReason::Terminated,
            by: Some("root".into()),
        },
    ];
    for event in events {
        assert_eq!(
            h.session.handle(event, Timestamp(99_999)),
            Err(SessionError::Ended)
        );
    }
    assert_eq!(h.session, frozen);
}

// ---------------------------------------------------------------- names

/// The refusal a customer gets for `name`, or `None` if they are let in.
fn name_refusal(name: &str) -> Option<SessionError> {
    let mut h = Harness::new();
    let before = h.session.clone();
    match h.join(2, name, JoinKind::CustomerByLink) {
        Ok(_) => None,
        Err(e) => {
            assert_eq!(e.code(), ErrorCode::InvalidName, "{name:?}: {e}");
            assert_eq!(
                h.session, before,
                "{name:?}: a refused join changes nothing"
            );
            Some(e)
        }
    }
}

#[test]
fn names_are_checked_when_joining() {
    let cases = [
        ("", "please enter your name"),
        ("   ", "please enter your name"),
        ("\u{3000}\u{a0}\t\n", "please enter your name"),
        ("Ann\u{7}", "control characters"),
        ("Ann\nSmith", "control characters"),
        ("Ann\u{2028}Smith", "line breaks"),
        ("An\u{85}n", "control characters"),
        (&*"x".repeat(65), "at most 64 characters"),
        (&*"é".repeat(65), "at most 64 characters"),
    ];
    for (name, says) in cases {
        let err = name_refusal(name).unwrap_or_else(|| panic!("{name:?} was let in"));
        assert!(err.to_string().contains(says), "{name:?}: {err}");
    }
    assert!(name_refusal(&"é".repeat(64)).is_none(), "64 characters fit");

    let mut h = Harness::new();
    let out = h
        .join(2, "  Ann   Lee \t", JoinKind::CustomerByLink)
        .expect("trimmed");
    assert!(
        to(&out, 1).iter().any(
            |m| matches!(m, S::ParticipantJoined { participant } if participant.name == "Ann Lee")
        ),
        "trimmed, inner whitespace made one space"
    );
}

#[test]
fn names_refuse_bidi_controls() {
    let bidi = [
        '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
    ];
    for c in bidi {
        for name in [format!("Ann{c}"), format!("{c}Ann"), format!("A{c}nn Lee")] {
            let err = name_refusal(&name).unwrap_or_else(|| panic!("{name:?} was let in"));
            assert!(
                err.to_string().contains("direction of text"),
                "{name:?}: {err}"
            );
        }
    }
}

#[test]
fn names_refuse_invisible_characters() {
    let invisible = [
        '\u{200B}',
        '\u{200C}',
        '\u{200D}',
        '\u{2060}',
        '\u{2061}',
        '\u{2062}',
        '\u{2063}',
        '\u{2064}',
        '\u{FEFF}',
        '\u{180E}',
        '\u{00AD}',
        '\u{034F}',
        '\u{FE00}',
        '\u{FE0F}',
        '\u{3164}',
        '\u{115F}',
        '\u{E0041}',
        '\u{E0100}',
    ];
    for c in invisible {
        for name in [
            format!("Ann{c}"),
            format!("{c}Ann"),
            format!("A{c}nn"),
            c.to_string(),
        ] {
            let err = name_refusal(&name).unwrap_or_else(|| panic!("{name:?} was let in"));
            assert!(err.to_string().contains("invisible"), "{name:?}: {err}");
        }
    }
}

#[test]
fn names_refuse_a_reps_name_for_customers_and_agents() {
    // The primary is "Rita Rep"; Sam Support assists; Rita hands over and observes (R9),
    // so every kind of rep is in the session.
    let build = || {
        let mut h = Harness::new();
        h.customer_with_agent(2, "Ann");
        h.assistant(5, "Sam Support");
        h
    };
    let look_alikes = [
        "Rita Rep",
        "rita rep",
        "  RITA   REP ",
        "Rita\u{3000}Rep",
        "Ｒｉｔａ Ｒｅｐ",
        "𝐑𝐢𝐭𝐚 𝐑𝐞𝐩",
        "Rit\u{0430} R\u{0435}\u{0440}",
        "sam support",
        "SAM SUPP\u{041E}RT",
    ];
    for observer in [false, true] {
        for name in look_alikes {
            let ways: [(JoinKind, u64); 3] = [
                (JoinKind::CustomerByLink, 9),
                (JoinKind::CustomerByNumber, 9),
                (JoinKind::Agent { customer: id(3) }, 103),
            ];
            for (kind, who) in ways {
                let mut h = build();
                if observer {
                    h.cmd(1, C::TransferSession { to: id(5) })
                        .expect("rita observes");
                }
                h.join(3, "Bob", JoinKind::CustomerByLink).expect("bob");
                let before = h.session.clone();
                let err = h
                    .join(who, name, kind.clone())
                    .expect_err(&format!("{name:?} as {kind:?}"));
                assert_eq!(err.code(), ErrorCode::InvalidName);
                assert_eq!(
                    err.to_string(),
                    "that name belongs to a support rep in this session; use your own name"
                );
                assert_eq!(h.session, before);
            }
        }
    }

    // Names that only contain a rep's name, and a rep's name once the rep has gone.
    let mut h = build();
    for (n, name) in ["Rita", "Rita Reps", "Rita Rep's computer", "Sam Supporter"]
        .into_iter()
        .enumerate()
    {
        h.join(10 + n as u64, name, JoinKind::CustomerByNumber)
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
    }
    h.cmd(5, C::Leave).expect("sam leaves");
    h.join(9, "Sam Support", JoinKind::CustomerByLink)
        .expect("no rep has that name any more");
}

#[test]
fn names_in_many_scripts_pass() {
    let names = [
        "Ærlig Østby",
        "José",
        "李雷",
        "Ольга",
        "O'Brien-Smith",
        "Ἀριστοτέλης",
        "محمد علي",
        "שרה לוי",
        "Nguyễn Thị Minh Khai",
        "Zoë",
        "ʻIolani",
        "田中 太郎",
        "김민준",
        "Björk Guðmundsdóttir",
        "Renée d'Arc",
        "Dr. A. B. Smith Jr.",
    ];
    for name in names {
        let mut h = Harness::new();
        let out = h
            .join(2, name, JoinKind::CustomerByLink)
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert!(
            to(&out, 1).iter().any(
                |m| matches!(m, S::ParticipantJoined { participant } if participant.name == name)
            ),
            "{name:?} shown as typed"
        );
        // The agent is named after its customer by the server.
        let agent = format!("{name}'s computer");
        h.join(102, &agent, JoinKind::Agent { customer: id(2) })
            .unwrap_or_else(|e| panic!("{agent:?}: {e}"));
        // A rep may have the same name as someone in another script or session.
        h.assistant(5, name);
    }
}

/// C1 and the agent: a customer who is in without an agent gets an agent token right
/// after their `joined` — when joining by link, when admitted from the waiting room, and
/// when coming back after a lost connection — and nobody else does.
#[test]
fn c1_a_customer_in_the_session_without_an_agent_is_given_an_agent_token() {
    let wanted = |outputs: &[Output]| -> Vec<u64> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::AgentTokenWanted { customer } => Some(customer.0),
                _ => None,
            })
            .collect()
    };
    let mut h = Harness::new();
    let joined = h.join(2, "Ann", JoinKind::CustomerByLink).expect("joins");
    assert_eq!(wanted(&joined), vec![2]);
    let at = |outputs: &[Output], f: &dyn Fn(&Output) -> bool| outputs.iter().position(f);
    let sent_joined = at(
        &joined,
        &|o| matches!(o, Output::Send { to, message: S::Joined(_) } if to.0 == 2),
    );
    let token = at(&joined, &|o| matches!(o, Output::AgentTokenWanted { .. }));
    assert_eq!(
        token,
        sent_joined.map(|i| i + 1),
        "right after her `joined`"
    );

    // Waiting by number: nothing yet; admitted: the token.
    let waiting = h.join(3, "Bob", JoinKind::CustomerByNumber).expect("waits");
    assert!(wanted(&waiting).is_empty(), "not while waiting");
    assert_eq!(wanted(&h.admit(3, 0).expect("admitted")), vec![3]);

    // Reps and agents never get one; a customer with an agent does not either.
    h.assistant(4, "Ada");
    let attached = h
        .join(102, "Ann's laptop", JoinKind::Agent { customer: id(2) })
        .expect("agent attaches");
    assert!(wanted(&attached).is_empty());
    h.event(Event::ConnectionLost { who: id(2) }).expect("lost");
    let back = h.event(Event::Connected { who: id(2) }).expect("back");
    assert!(wanted(&back).is_empty(), "Ann has her agent");

    // Bob, without an agent, comes back: a fresh token.
    h.event(Event::ConnectionLost { who: id(3) }).expect("lost");
    let back = h.event(Event::Connected { who: id(3) }).expect("back");
    assert_eq!(wanted(&back), vec![3]);
}

/// R3: a failed invitation is sent again only for a rep of the session (the primary or an
/// assistant); a customer is refused and nothing is sent.
#[test]
fn r3_only_a_rep_of_the_session_resends_an_invitation() {
    let mut h = Harness::new();
    h.join(2, "Ann", JoinKind::CustomerByLink).expect("joins");
    h.assistant(3, "Ada");
    let retry = |language: Option<&str>| C::RetryInvite {
        invite: 7,
        language: language.map(str::to_owned),
    };
    let refused = h.cmd(2, retry(None));
    assert!(
        matches!(refused, Err(SessionError::NotPermitted(_))),
        "{refused:?}"
    );
    for rep in [1, 3] {
        let outputs = h.cmd(rep, retry(Some("nb"))).expect("a rep may");
        assert_eq!(
            outputs,
            vec![Output::RetryInvite {
                by: id(rep),
                invite: 7,
                language: Some("nb".into()),
            }]
        );
    }
}

/// Restarts: the server writes a session to disk only when something worth keeping
/// changed. A chat line moves only the session's clock; a join changes the session.
#[test]
fn restarts_a_chat_line_leaves_nothing_new_to_keep_but_a_join_does() {
    let mut h = Harness::new();
    h.join(2, "Ann", JoinKind::CustomerByLink).expect("joins");
    let before = h.session.clone();
    h.advance(5_000);
    h.cmd(
        2,
        C::Chat {
            text: "hello".into(),
        },
    )
    .expect("chat");
    assert_ne!(h.session, before, "the clock moved");
    assert!(h.session.same_state(&before), "nothing else did");
    h.join(3, "Bob", JoinKind::CustomerByLink).expect("joins");
    assert!(!h.session.same_state(&before), "a join is kept");
}

/// R8: the primary rep hears at once, by name and account, of a rep who joins to assist;
/// R4: of a customer turned away because every place is taken (the refused join changes
/// nothing; the session only words the notice).
#[test]
fn r8_and_r4_the_primary_hears_of_an_assistant_and_of_a_customer_turned_away() {
    let notices = |messages: Vec<S>| -> Vec<String> {
        messages
            .into_iter()
            .filter_map(|m| match m {
                S::Notice { text, .. } => Some(text),
                _ => None,
            })
            .collect()
    };
    let mut h = Harness::new();
    let joined = h
        .join(3, "Ada Assist", JoinKind::Assistant(rep_info("ada", false)))
        .expect("assists");
    assert_eq!(
        notices(to(&joined, 1)),
        vec!["Ada Assist (ada) joined your session as an assistant.".to_owned()]
    );
    assert!(notices(to(&joined, 3)).is_empty(), "only the primary");

    let full = SessionError::SessionFull { max: 1 };
    let (primary, notice) = h
        .session
        .join_refused_notice("  Cid ", &full)
        .expect("a notice");
    assert_eq!(primary, id(1));
    assert_eq!(
        notice,
        S::Notice {
            text: "Cid tried to join but could not: you are already helping as many \
                   customers as this site allows."
                .into(),
            topic: None,
        }
    );
    let other = SessionError::WaitingRoomFull { max: 1 };
    assert!(h.session.join_refused_notice("Cid", &other).is_none());
}

/// docs/rules.md "Files" and C3: the agent records how each transfer ended; nobody else
/// may, and only about a rep of the session, with a name and SHA-256 that read as such.
#[test]
fn files_every_transfer_the_agent_reports_is_audited_and_nothing_else() {
    use tandem_protocol::{FileDirection, FileOutcome};
    let mut h = Harness::new();
    let agent = h.customer_with_agent(2, "Ann");
    let report = |peer: u64, name: &str, sha: Option<&str>| C::FileTransfer {
        peer: id(peer),
        direction: FileDirection::ToCustomer,
        name: name.into(),
        size: 20 << 20,
        sha256: sha.map(str::to_owned),
        outcome: FileOutcome::Delivered,
        saved_as: Some("driver.bin".into()),
    };
    let hash = "a".repeat(64);
    let out = h
        .cmd(agent.0, report(1, "../driver.bin", Some(&hash)))
        .expect("recorded");
    let records = audits(&out);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        records[0].actor.as_ref().map(|a| a.participant),
        Some(agent)
    );
    assert_eq!(
        records[0].action,
        AuditAction::FileTransfer {
            agent,
            peer: REP,
            direction: FileDirection::ToCustomer,
            name: "../driver.bin".into(),
            size: 20 << 20,
            sha256: Some(hash.clone()),
            outcome: FileOutcome::Delivered,
            saved_as: Some("driver.bin".into()),
        }
    );
    assert!(
        to(&out, 1).is_empty() && to(&out, 2).is_empty(),
        "a record only"
    );

    // Not from the customer's page or a rep; not about the customer; no bad names or hashes.
    for (from, message) in [
        (2, report(1, "x", Some(&hash))),
        (1, report(1, "x", Some(&hash))),
        (agent.0, report(2, "x", Some(&hash))),
        (agent.0, report(1, "", Some(&hash))),
        (agent.0, report(1, "a\nb", Some(&hash))),
        (agent.0, report(1, &"x".repeat(256), Some(&hash))),
        (agent.0, report(1, "x", Some(&"A".repeat(64)))),
        (agent.0, report(1, "x", Some("abc"))),
        (agent.0, report(agent.0, "x", None)),
    ] {
        assert!(h.cmd(from, message.clone()).is_err(), "{from}: {message:?}");
    }
    assert_eq!(
        h.log
            .iter()
            .filter(|o| matches!(o, Output::Audit(r) if matches!(r.action, AuditAction::FileTransfer { .. })))
            .count(),
        1,
        "refused reports leave no record"
    );
    // A rep who left mid-transfer: the cut is still recorded.
    assert!(h.cmd(agent.0, report(99, "x", None)).is_ok());
}
