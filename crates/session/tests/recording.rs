//! Recording (docs/rules.md "Recording"): a rep records where the site allows it, and
//! everyone in the session, the customer's agent included, sees it.

mod common;

use common::*;
use tandem_protocol::{
    ClientMessage as C, ErrorCode, LeaveReason, Role, ServerMessage as S, ShareId, ShareSource,
    StreamRef,
};
use tandem_session::{AuditAction, Event, JoinKind, Output};

const RECORDER: u64 = 900;

fn start(h: &mut Harness, from: u64) -> Outcome {
    h.event(Event::StartRecording {
        from: id(from),
        recorder: id(RECORDER),
    })
}

fn recording_states(out: &[Output], who: u64) -> Vec<Option<tandem_protocol::RecordingInfo>> {
    to(out, who)
        .into_iter()
        .filter_map(|m| match m {
            S::RecordingState { recording } => Some(recording),
            _ => None,
        })
        .collect()
}

#[test]
fn recording_a_rep_starts_it_everyone_and_the_agent_see_it_and_the_recorder_views_shares() {
    let mut h = Harness::new();
    let agent = h.customer_with_agent(2, "Ann");
    h.assistant(3, "Sam");
    h.cmd(
        agent.0,
        C::StartShare {
            source: ShareSource::Desktop,
        },
    )
    .expect("share");

    let out = start(&mut h, 3).expect("an assistant starts recording");
    for who in [1, 2, 3, agent.0] {
        let states = recording_states(&out, who);
        assert_eq!(states.len(), 1, "participant {who} hears once: {states:?}");
        let info = states[0].expect("recording");
        assert_eq!((info.started_by, info.recorder), (id(3), id(RECORDER)));
    }
    let joined = to(&out, RECORDER)
        .into_iter()
        .find_map(|m| match m {
            S::Joined(s) => Some(s),
            _ => None,
        })
        .expect("the recorder gets the picture");
    assert_eq!(joined.role, Role::Recorder);
    assert_eq!(joined.shares.len(), 1, "it sees the share to view");
    assert!(audits(&out).iter().any(|r| matches!(
        r.action,
        AuditAction::RecordingStarted { recorder } if recorder == id(RECORDER)
    )));

    // Someone joining later sees it in their snapshot.
    let out = h.join(4, "Bob", JoinKind::CustomerByLink).expect("bob");
    let bob = to(&out, 4)
        .into_iter()
        .find_map(|m| match m {
            S::Joined(s) => Some(s),
            _ => None,
        })
        .expect("joined");
    assert_eq!(bob.recording.map(|r| r.recorder), Some(id(RECORDER)));

    // The recorder views the agent's share like a viewer; it does nothing else.
    let out = h
        .cmd(RECORDER, C::ViewShare { share: ShareId(1) })
        .expect("view");
    assert!(
        to(&out, agent.0)
            .iter()
            .any(|m| matches!(m, S::ViewerJoined { viewer, .. } if *viewer == id(RECORDER)))
    );
    for refused in [
        C::Chat { text: "hi".into() },
        C::RequestControl,
        C::StartCall,
        C::StartShare {
            source: ShareSource::Desktop,
        },
        C::StopRecording,
    ] {
        assert_eq!(
            h.cmd(RECORDER, refused.clone())
                .expect_err("the recorder only watches")
                .code(),
            ErrorCode::NotPermitted,
            "{refused:?}"
        );
    }
    h.session.check_invariants().expect("invariants");
}

#[test]
fn recording_stops_by_a_rep_or_when_the_recorder_fails_and_everyone_hears_it() {
    let mut h = Harness::new();
    let agent = h.customer_with_agent(2, "Ann");
    start(&mut h, 1).expect("start");
    assert_eq!(
        h.cmd(2, C::StopRecording).expect_err("customer").code(),
        ErrorCode::NotPermitted
    );
    let out = h.cmd(1, C::StopRecording).expect("stop");
    for who in [1, 2, agent.0] {
        assert_eq!(recording_states(&out, who), vec![None], "participant {who}");
    }
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Disconnect { participant, reason: LeaveReason::Left } if *participant == id(RECORDER)
    )));
    let stops: Vec<_> = audits(&out)
        .into_iter()
        .filter(|r| matches!(r.action, AuditAction::RecordingStopped { .. }))
        .collect();
    assert_eq!(stops.len(), 1, "audited once: {stops:?}");
    assert_eq!(
        stops[0].actor.as_ref().map(|a| a.participant),
        Some(id(1)),
        "by the rep who stopped it"
    );
    assert_eq!(h.session.recording(), None);
    assert_eq!(
        h.cmd(1, C::StopRecording)
            .expect_err("not recording")
            .code(),
        ErrorCode::NotPermitted
    );

    // A recorder whose connection ends (it could not write) is gone, and so is the state.
    h.event(Event::StartRecording {
        from: id(1),
        recorder: id(RECORDER + 1),
    })
    .expect("again");
    let out = h
        .event(Event::PageClosed {
            who: id(RECORDER + 1),
        })
        .expect("recorder leaves");
    assert_eq!(recording_states(&out, 2), vec![None]);
    assert_eq!(h.session.recording(), None);
    assert!(
        audits(&out).iter().any(|r| r.actor.is_none()
            && matches!(r.action, AuditAction::RecordingStopped { recorder } if recorder == id(RECORDER + 1))),
        "a recorder that failed is audited as stopped, by nobody"
    );
    h.session.check_invariants().expect("invariants");
}

#[test]
fn recording_is_refused_where_the_site_forbids_it_twice_or_to_customers() {
    let mut config = config();
    config.recording_allowed = false;
    let mut h = Harness::with(config, false, false);
    h.join(2, "Ann", JoinKind::CustomerByLink).expect("ann");
    let refused = start(&mut h, 1).expect_err("forbidden");
    assert_eq!(refused.code(), ErrorCode::NotPermitted);
    assert!(refused.to_string().contains("administrator"), "{refused}");
    assert!(
        h.session
            .participants()
            .iter()
            .all(|p| p.role != Role::Recorder),
        "nothing changed"
    );

    let mut h = Harness::new();
    h.join(2, "Ann", JoinKind::CustomerByLink).expect("ann");
    assert_eq!(
        start(&mut h, 2).expect_err("a customer").code(),
        ErrorCode::NotPermitted
    );
    start(&mut h, 1).expect("the rep");
    let twice = h.event(Event::StartRecording {
        from: id(1),
        recorder: id(RECORDER + 1),
    });
    assert_eq!(twice.expect_err("twice").code(), ErrorCode::NotPermitted);
    assert_eq!(
        h.cmd(1, C::StartRecording)
            .expect_err("as a command")
            .code(),
        ErrorCode::BadMessage
    );
}

#[test]
fn recording_ends_with_the_session_and_is_kept_across_a_restart() {
    let mut h = Harness::new();
    h.join(2, "Ann", JoinKind::CustomerByLink).expect("ann");
    start(&mut h, 1).expect("start");
    let kept: tandem_session::Session =
        serde_json::from_str(&serde_json::to_string(&h.session).expect("save")).expect("load");
    assert_eq!(kept.recording(), h.session.recording());
    let out = h.cmd(1, C::EndSession).expect("end");
    assert!(
        to(&out, RECORDER)
            .iter()
            .any(|m| matches!(m, S::SessionEnded { .. }))
    );
    assert_eq!(h.session.recording(), None);
    assert!(
        audits(&out).iter().any(|r| r.actor.as_ref().map(|a| a.participant) == Some(id(1))
            && matches!(r.action, AuditAction::RecordingStopped { recorder } if recorder == id(RECORDER))),
        "the recording's end is audited with the session's, by the rep who ended it"
    );
}

/// The call's sound is recorded from a rep's console (docs/rules.md "Recording"): a rep in
/// the call negotiates the `recording` stream with the recorder, both ways; nobody else
/// may, and not outside the call.
#[test]
fn recording_the_calls_sound_goes_from_a_rep_in_the_call_to_the_recorder_only() {
    let mut h = Harness::new();
    h.customer_with_agent(2, "Ann");
    h.assistant(3, "Sam");
    start(&mut h, 1).expect("start");
    let offer = |to: u64| C::Offer {
        to: id(to),
        stream: StreamRef::Recording,
        sdp: "v=0".into(),
    };
    assert_eq!(
        h.cmd(1, offer(RECORDER)).expect_err("no call yet").code(),
        ErrorCode::NoCall
    );
    h.cmd(1, C::StartCall).expect("call");
    h.cmd(2, C::JoinCall { video: false }).expect("Ann joins");
    let out = h.cmd(1, offer(RECORDER)).expect("the primary in the call");
    assert!(to(&out, RECORDER).iter().any(
        |m| matches!(m, S::Offer { from, stream: StreamRef::Recording, .. } if *from == id(1))
    ));
    let out = h
        .cmd(
            RECORDER,
            C::Answer {
                to: id(1),
                stream: StreamRef::Recording,
                sdp: "v=0".into(),
            },
        )
        .expect("the recorder answers");
    assert_eq!(to(&out, 1).len(), 1);
    for (from, to_whom, code) in [
        (2, RECORDER, ErrorCode::NotPermitted), // a customer in the call
        (3, RECORDER, ErrorCode::NoCall),       // a rep not in the call
        (1, 2, ErrorCode::NotPermitted),        // to someone not the recorder
    ] {
        assert_eq!(
            h.cmd(from, offer(to_whom)).expect_err("refused").code(),
            code,
            "{from} → {to_whom}"
        );
    }
    // An assistant in the call sends it only while the primary rep is not in it.
    h.cmd(3, C::JoinCall { video: false }).expect("Sam joins");
    assert_eq!(
        h.cmd(3, offer(RECORDER))
            .expect_err("the primary sends it")
            .code(),
        ErrorCode::NotPermitted
    );
    h.cmd(1, C::LeaveCall).expect("Rita leaves the call");
    h.cmd(3, offer(RECORDER))
        .expect("the assistant, now the only rep in the call");
    assert_eq!(
        h.cmd(1, offer(RECORDER))
            .expect_err("not in the call")
            .code(),
        ErrorCode::NoCall
    );
    assert_eq!(
        h.cmd(2, offer(RECORDER)).expect_err("a customer").code(),
        ErrorCode::NotPermitted
    );
    assert_eq!(
        h.cmd(
            RECORDER,
            C::Answer {
                to: id(2),
                stream: StreamRef::Recording,
                sdp: "v=0".into(),
            },
        )
        .expect_err("the recorder to a customer")
        .code(),
        ErrorCode::NotPermitted
    );
    h.session.check_invariants().expect("invariants");
}
