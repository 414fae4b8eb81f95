//! The WebSocket protocol against the real server: joins, the waiting room, chat, limits,
//! bad input, and the session's end.

use crate::common;

use common::*;
use serde_json::{Value, json};

async fn started(server: &TestServer) -> (Http, String, String, Ws) {
    let rep = server.rep("rita", false).await;
    let (number, secret) = rep.start_session().await;
    let page = rep_page(server, &rep, &number).await;
    (rep, number, secret, page)
}

#[tokio::test]
async fn hello_negotiates_the_version() {
    let server = TestServer::start().await;
    let mut ws = server.ws(None).await;
    ws.send(json!({"type": "hello", "protocol_version": 99, "client": "agent"}))
        .await;
    let err = ws.recv().await;
    assert_eq!(err["code"], "unsupported_version");
    assert!(
        err["message"]
            .as_str()
            .expect("text")
            .contains("speaks version 1")
    );
    let close = ws.closed().await.expect("close frame");
    assert_eq!(u16::from(close.code), 1002);
}

#[tokio::test]
async fn the_welcome_names_only_stun_and_turn_credentials_come_after_a_join() {
    let server = TestServer::start_with(|c| {
        c.ice = tandem_signaling::turn::IceConfig {
            urls: vec![
                "stun:stun.example.com:3478".into(),
                "turn:turn.example.com:3478".into(),
            ],
            auth: tandem_signaling::turn::TurnAuth::SharedSecret {
                secret: "a-shared-secret-of-coturn".into(),
                ttl_secs: 3600,
            },
        };
    })
    .await;
    let mut ws = server.ws(None).await;
    ws.send(json!({"type": "hello", "protocol_version": 1, "client": "agent"}))
        .await;
    let welcome = ws.recv().await;
    assert_eq!(
        welcome["ice_servers"],
        json!([{"urls": ["stun:stun.example.com:3478"]}]),
        "no TURN credential for someone who only said hello"
    );
    let (_rep, _number, secret, _page) = started(&server).await;
    let mut creds = vec![];
    for name in ["Ann", "Bob"] {
        let mut ws = server.ws(None).await;
        ws.hello("customer").await;
        ws.send(json!({"type": "join_by_link", "secret": secret, "name": name}))
            .await;
        let ice = ws.recv_type("ice_servers").await;
        let turn = &ice["ice_servers"][1];
        assert_eq!(turn["urls"], json!(["turn:turn.example.com:3478"]));
        let username = turn["username"].as_str().expect("username").to_owned();
        let (expiry, who) = username.split_once(':').expect("expiry:participant");
        let expiry: u64 = expiry.parse().expect("unix seconds");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        assert!(
            expiry > now && expiry <= now + 3600 + 5,
            "{expiry} vs {now}"
        );
        assert!(who.starts_with('p'));
        let credential = turn["credential"].as_str().expect("credential");
        assert_eq!(
            credential,
            tandem_signaling::turn::shared_secret_credential(
                "a-shared-secret-of-coturn",
                &username
            )
        );
        ws.recv_type("joined").await;
        creds.push(credential.to_owned());
    }
    assert_ne!(creds[0], creds[1], "each participant has its own");
}

#[tokio::test]
async fn commands_before_hello_or_join_are_refused_and_the_connection_stays() {
    let server = TestServer::start().await;
    let mut ws = server.ws(None).await;
    ws.send(json!({"type": "chat", "text": "hi"})).await;
    assert_eq!(ws.recv().await["code"], "not_joined");
    ws.hello("customer").await;
    ws.send(json!({"type": "chat", "text": "hi"})).await;
    let err = ws.recv().await;
    assert_eq!(
        (err["code"].as_str(), err["request"].as_str()),
        (Some("not_joined"), Some("chat"))
    );
}

#[tokio::test]
async fn malformed_json_gets_an_error_and_the_connection_stays() {
    let server = TestServer::start().await;
    let mut ws = server.ws(None).await;
    ws.hello("customer").await;
    let cases = [
        ("{not json", "bad_message"),
        ("[1,2,3]", "bad_message"),
        (r#"{"text":"no type"}"#, "bad_message"),
        (r#"{"type":"teleport"}"#, "unknown_type"),
        (r#"{"type":"admit","participant":"seven"}"#, "bad_message"),
    ];
    for (text, code) in cases {
        ws.send_text(text).await;
        let err = ws.recv().await;
        assert_eq!(err["type"], "error");
        assert_eq!(err["code"], code, "{text}: {err}");
        assert!(!err["message"].as_str().expect("message").is_empty());
    }
    // Still usable.
    ws.send(json!({"type": "join_by_number", "number": "000000001", "name": "Ann"}))
        .await;
    assert_eq!(ws.recv().await["code"], "session_not_found");
}

#[tokio::test]
async fn frames_over_64_kib_close_the_connection_with_a_reason() {
    let server = TestServer::start().await;
    let mut ws = server.ws(None).await;
    ws.hello("customer").await;
    let text = json!({"type": "chat", "text": "x".repeat(70 * 1024)}).to_string();
    ws.send_text(&text).await;
    let err = ws.recv().await;
    assert_eq!(err["code"], "message_too_large");
    let close = ws.closed().await.expect("close frame");
    assert_eq!(u16::from(close.code), 1009);
    assert!(close.reason.contains("too large"), "{}", close.reason);
}

#[tokio::test]
async fn wrong_session_numbers_get_a_clear_error_and_are_rate_limited() {
    let server = TestServer::start().await;
    let mut ws = server.ws(None).await;
    ws.hello("customer").await;
    let mut codes = vec![];
    for n in 0..12 {
        ws.send(json!({"type": "join_by_number", "number": format!("{:09}", 100 + n), "name": "Guesser"}))
            .await;
        let err = ws.recv().await;
        if n == 0 {
            assert!(
                err["message"]
                    .as_str()
                    .expect("text")
                    .contains("no session has the number"),
                "{err}"
            );
        }
        codes.push(err["code"].as_str().expect("code").to_owned());
    }
    assert_eq!(codes[0], "session_not_found");
    assert_eq!(
        codes.last().map(String::as_str),
        Some("rate_limited"),
        "{codes:?}"
    );
}

#[tokio::test]
async fn a_websocket_from_another_site_is_refused() {
    let server = TestServer::start().await;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().expect("header"));
    let err = tokio_tungstenite::connect_async(request)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("403"), "{err}");
}

#[tokio::test]
async fn only_the_rep_who_started_it_opens_the_session_page() {
    let server = TestServer::start().await;
    let (_rep, number, _secret, _page) = started(&server).await;
    let mut anon = server.ws(None).await;
    anon.hello("console").await;
    anon.send(json!({"type": "open_session", "number": number}))
        .await;
    assert_eq!(anon.recv().await["code"], "not_permitted");
    let other = server.rep("oscar", false).await;
    let mut ws = server.ws(Some(&other)).await;
    ws.hello("console").await;
    ws.send(json!({"type": "open_session", "number": number}))
        .await;
    let err = ws.recv().await;
    // The same answer as for a number no session has: no existence oracle.
    assert_eq!(err["code"], "session_not_found");
    ws.send(json!({"type": "open_session", "number": "123123123"}))
        .await;
    let dead = ws.recv().await;
    assert_eq!(dead["code"], err["code"]);
    assert_eq!(
        dead["message"]
            .as_str()
            .map(|m| m.replace("123 123 123", "N")),
        err["message"].as_str().map(|m| m.replace(
            &format!("{} {} {}", &number[..3], &number[3..6], &number[6..]),
            "N"
        ))
    );
}

/// C2 and R4 over the wire: a link admits, a number waits for admission, chat goes both
/// ways, a customer beyond the maximum is refused with a message (and the rep is told),
/// and closing the rep's page ends the session for everyone (R2). The audit log has it all.
#[tokio::test]
async fn join_admit_chat_limit_and_end() {
    let server = TestServer::start().await;
    server.set_max_customers(2, false).await;
    let (_rep, number, secret, mut page) = started(&server).await;

    let (mut ann, ann_id) = customer_by_link(&server, &secret, "Ann").await;
    let joined = page.recv_type("participant_joined").await;
    assert_eq!(joined["participant"]["name"], "Ann");

    let mut bob = server.ws(None).await;
    bob.hello("customer").await;
    bob.send(json!({"type": "join_by_number", "number": number, "name": "Bob"}))
        .await;
    assert_eq!(bob.recv_type("waiting").await["number"], number.as_str());
    let waiting = page.recv_type("participant_joined").await;
    assert_eq!(waiting["participant"]["admission"], "waiting");
    let bob_id = waiting["participant"]["id"].as_u64().expect("id");
    bob.send(json!({"type": "chat", "text": "let me in"})).await;
    assert_eq!(bob.recv_type("error").await["code"], "not_permitted");

    page.send(json!({"type": "admit", "participant": bob_id}))
        .await;
    let bob_joined = bob.recv_type("joined").await;
    assert_eq!(bob_joined["you"].as_u64(), Some(bob_id));

    page.send(json!({"type": "chat", "text": "Hello from Rita"}))
        .await;
    for ws in [&mut ann, &mut bob] {
        let chat = ws.recv_type("chat").await;
        assert_eq!(
            (chat["text"].as_str(), chat["name"].as_str()),
            (Some("Hello from Rita"), Some("Rep rita"))
        );
    }
    ann.send(json!({"type": "chat", "text": "Hi Rita"})).await;
    let chat = page
        .recv_until(|m| m["type"] == "chat" && m["text"] == "Hi Rita")
        .await;
    assert_eq!(
        (chat["text"].as_str(), chat["from"].as_u64()),
        (Some("Hi Rita"), Some(ann_id))
    );

    let mut carl = server.ws(None).await;
    carl.hello("customer").await;
    carl.send(json!({"type": "join_by_link", "secret": secret, "name": "Carl"}))
        .await;
    let err = carl.recv().await;
    assert_eq!(err["code"], "session_full");
    assert!(
        err["message"]
            .as_str()
            .expect("text")
            .contains("2 customers"),
        "{err}"
    );
    let notice = page.recv_type("notice").await;
    assert!(
        notice["text"].as_str().expect("text").contains("Carl"),
        "{notice}"
    );

    page.close_page().await;
    for ws in [&mut ann, &mut bob] {
        let ended = ws.recv_type("session_ended").await;
        assert_eq!(ended["reason"], "primary_left");
        assert!(
            ws.closed().await.is_some(),
            "the server closes the connection"
        );
    }
    server.state.flush().await;
    let admin = server.admin().await;
    let audit: Vec<Value> = admin
        .get(&format!("/api/admin/audit?session={number}"))
        .await
        .json()
        .await
        .expect("json");
    let actions: Vec<&str> = audit
        .iter()
        .rev()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for expected in ["started", "joined", "waiting", "admitted", "ended"] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    assert_eq!(server.state.registry.live_count(), 0);
}

/// A customer joined by link: the connection, its resume token and its participant id.
async fn join_with_token(server: &TestServer, secret: &str, name: &str) -> (Ws, String, Value) {
    let mut ws = server.ws(None).await;
    ws.hello("customer").await;
    ws.send(json!({"type": "join_by_link", "secret": secret, "name": name}))
        .await;
    let token = ws.recv_type("resume_token").await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let you = ws.recv_type("joined").await["you"].clone();
    (ws, token, you)
}

#[tokio::test]
async fn a_lost_connection_can_resume_within_the_grace_period() {
    let server = TestServer::start().await;
    let (_rep, _number, secret, mut page) = started(&server).await;
    let (ann, token, you) = join_with_token(&server, &secret, "Ann").await;
    ann.drop_connection();
    let is_ann = |m: &Value| m["type"] == "participant_updated" && m["participant"]["id"] == you;
    let lost = page.recv_until(is_ann).await;
    assert_eq!(lost["participant"]["connected"], false);

    let mut back = server.ws(None).await;
    back.hello("customer").await;
    back.send(json!({"type": "resume", "token": token})).await;
    let joined = back.recv_type("joined").await;
    assert_eq!(joined["you"], you);
    let updated = page.recv_until(is_ann).await;
    assert_eq!(updated["participant"]["connected"], true);
    // The token was used up.
    let mut again = server.ws(None).await;
    again.hello("customer").await;
    again.send(json!({"type": "resume", "token": token})).await;
    assert_eq!(again.recv().await["code"], "session_not_found");
}

/// docs/protocol.md §1: a close frame with 1000 or 1001 (or none) is leaving; one with
/// any other code is a lost connection, and the participant may resume (R2).
#[tokio::test]
async fn a_close_with_another_code_than_leaving_keeps_the_place_for_a_resume() {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let server = TestServer::start().await;
    let (_rep, _number, secret, mut page) = started(&server).await;
    let (mut ann, token, you) = join_with_token(&server, &secret, "Ann").await;
    ann.stream
        .close(Some(CloseFrame {
            code: 4000.into(),
            reason: "switching networks".into(),
        }))
        .await
        .expect("close");
    let about_ann = |m: &Value| {
        (m["type"] == "participant_updated" && m["participant"]["id"] == you)
            || (m["type"] == "participant_left" && m["participant"] == you)
    };
    let lost = page.recv_until(about_ann).await;
    assert_eq!(lost["type"], "participant_updated", "{lost}");
    assert_eq!(lost["participant"]["connected"], false, "{lost}");
    let mut back = server.ws(None).await;
    back.hello("customer").await;
    back.send(json!({"type": "resume", "token": token})).await;
    assert_eq!(back.recv_type("joined").await["you"], you);

    // 1000 is leaving: Ann's place goes at once.
    back.stream
        .close(Some(CloseFrame {
            code: 1000.into(),
            reason: "bye".into(),
        }))
        .await
        .expect("close");
    let left = page
        .recv_until(|m: &Value| m["type"] == "participant_left" && m["participant"] == you)
        .await;
    assert_eq!(left["reason"], "left", "{left}");
}

/// Sends `join` on a new connection (logged in as `rep`) and returns it with what answered
/// the join: `joined`, `waiting` or the error.
async fn send_join(server: &TestServer, join: Value, rep: Option<&Http>) -> (Ws, Value) {
    let kind = match join["type"].as_str() {
        Some("assist" | "accept_transfer") => "console",
        Some("attach_agent") => "agent",
        _ => "customer",
    };
    let mut ws = server.ws(rep).await;
    ws.hello(kind).await;
    ws.send(join).await;
    let answer = ws
        .recv_until(|m| ["joined", "waiting", "error"].contains(&m["type"].as_str().unwrap_or("")))
        .await;
    (ws, answer)
}

/// protocol.md §4.8: a join whose connection is lost before its answer, sent again with
/// the same `join_key`, comes back to the place the first one made (R2) instead of putting
/// the person in twice: a customer by link, a customer in the waiting room, an assistant
/// and an agent whose one-time token the first attach used.
#[tokio::test]
async fn a_join_sent_again_with_its_key_comes_back_to_its_place_instead_of_joining_twice() {
    let server = TestServer::start().await;
    let (_rep, number, secret, mut page) = started(&server).await;
    let joined_named = |name: &'static str| {
        move |m: &Value| m["type"] == "participant_joined" && m["participant"]["name"] == name
    };
    let lost = |id: Value| {
        move |m: &Value| {
            m["type"] == "participant_updated"
                && m["participant"]["id"] == id
                && m["participant"]["connected"] == false
        }
    };
    // Ann's join by link is carried out, and her connection goes before she reads a word.
    let ann_key = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1";
    let ann_join =
        json!({"type": "join_by_link", "secret": secret, "name": "Ann", "join_key": ann_key});
    let mut first = server.ws(None).await;
    first.hello("customer").await;
    first.send(ann_join.clone()).await;
    let ann = page.recv_until(joined_named("Ann")).await["participant"]["id"].clone();
    first.drop_connection();
    page.recv_until(lost(ann.clone())).await;
    // The same join again, whose answer is lost too: it took Ann's place, and the key
    // still stands for it.
    let mut second = server.ws(None).await;
    second.hello("customer").await;
    second.send(ann_join.clone()).await;
    let back = |id: Value| {
        move |m: &Value| {
            m["type"] == "participant_updated"
                && m["participant"]["id"] == id
                && m["participant"]["connected"] == true
        }
    };
    page.recv_until(back(ann.clone())).await;
    second.drop_connection();
    page.recv_until(lost(ann.clone())).await;
    // And a third time: Ann's place, not a second Ann.
    let (mut ann_ws, again) = send_join(&server, ann_join.clone(), None).await;
    assert_eq!(again["type"], "joined", "{again}");
    assert_eq!(again["you"], ann, "the same place: {again}");
    let anns = again["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter(|p| p["name"] == "Ann")
        .count();
    assert_eq!(anns, 1, "one Ann: {again}");
    let back = page
        .recv_until(|m| {
            joined_named("Ann")(m)
                || (m["type"] == "participant_updated" && m["participant"]["id"] == ann)
        })
        .await;
    assert_eq!(back["type"], "participant_updated", "no second Ann: {back}");
    assert_eq!(back["participant"]["connected"], true, "{back}");

    // Her agent's attach is carried out and cut off: the token is used, and the same
    // attach with its key comes back to the agent's place.
    let token = ann_ws.recv_type("agent_token").await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let agent_key = "agent-key_0123456789abcdefghij";
    let attach = json!({"type": "attach_agent", "token": token, "join_key": agent_key});
    let mut first = server.ws(None).await;
    first.hello("agent").await;
    first.send(attach.clone()).await;
    let agent = page.recv_until(joined_named("Ann's computer")).await["participant"]["id"].clone();
    first.drop_connection();
    page.recv_until(lost(agent.clone())).await;
    let (_agent_ws, again) = send_join(&server, attach.clone(), None).await;
    assert_eq!(again["type"], "joined", "{again}");
    assert_eq!(again["you"], agent, "{again}");
    // Without the key, the used token is refused as before.
    let (_, refused) = send_join(
        &server,
        json!({"type": "attach_agent", "token": token}),
        None,
    )
    .await;
    assert_eq!(refused["code"], "session_not_found", "{refused}");

    // A customer in the waiting room comes back to the waiting room.
    let bob_join = json!({"type": "join_by_number", "number": number, "name": "Bob", "join_key": "b".repeat(22)});
    let mut first = server.ws(None).await;
    first.hello("customer").await;
    first.send(bob_join.clone()).await;
    let bob = page.recv_until(joined_named("Bob")).await["participant"]["id"].clone();
    first.drop_connection();
    let (_bob_ws, again) = send_join(&server, bob_join.clone(), None).await;
    assert_eq!(again["type"], "waiting", "{again}");
    page.send(json!({"type": "admit", "participant": bob}))
        .await;
    // The rep hears of no second Bob before the admission.
    let admitted = page
        .recv_until(|m| {
            joined_named("Bob")(m)
                || (m["type"] == "participant_updated"
                    && m["participant"]["id"] == bob
                    && m["participant"]["admission"] == "admitted")
        })
        .await;
    assert_eq!(
        admitted["type"], "participant_updated",
        "no second Bob: {admitted}"
    );

    // An assistant: the same key brings Sam back rather than `already_joined`; another
    // rep cannot use his key.
    let sam = server.rep("sam", false).await;
    let sam_join = json!({"type": "assist", "number": number, "join_key": "s".repeat(64)});
    let mut first = server.ws(Some(&sam)).await;
    first.hello("console").await;
    first.send(sam_join.clone()).await;
    let sam_id = page.recv_until(joined_named("Rep sam")).await["participant"]["id"].clone();
    first.drop_connection();
    page.recv_until(lost(sam_id.clone())).await;
    let tom = server.rep("tom", false).await;
    let (_, refused) = send_join(&server, sam_join.clone(), Some(&tom)).await;
    assert_eq!(refused["code"], "not_permitted", "{refused}");
    let (_sam_ws, again) = send_join(&server, sam_join.clone(), Some(&sam)).await;
    assert_eq!(again["you"], sam_id, "{again}");
    assert_eq!(again["role"], "assistant", "{again}");

    // A key that is a place in another session is refused, and so is a key too short to
    // be secret; neither joins.
    let carl_key = "c".repeat(22);
    let (_carl_ws, carl) = send_join(
        &server,
        json!({"type": "join_by_link", "secret": secret, "name": "Carl", "join_key": carl_key}),
        None,
    )
    .await;
    assert_eq!(carl["type"], "joined", "{carl}");
    let other = server.rep("olga", false).await;
    let (_, other_secret) = other.start_session().await;
    let (_, refused) = send_join(&server,
        json!({"type": "join_by_link", "secret": other_secret, "name": "Carl", "join_key": carl_key}),
        None,
    )
    .await;
    assert_eq!(refused["code"], "bad_message", "{refused}");
    let (_, refused) = send_join(
        &server,
        json!({"type": "join_by_link", "secret": secret, "name": "Eve", "join_key": "short"}),
        None,
    )
    .await;
    assert_eq!(refused["code"], "bad_message", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or("")
            .contains("22 to 64"),
        "{refused}"
    );
}

/// protocol.md §4.8: a late copy of a keyed join, read from an older connection after
/// its retry on a newer one got the place, does not take the place from the retry; a key
/// is no resume token.
#[tokio::test]
async fn a_late_copy_of_a_keyed_join_does_not_take_the_place_from_its_retry() {
    let server = TestServer::start().await;
    let (_rep, _number, secret, mut page) = started(&server).await;
    let dan_join = json!({"type": "join_by_link", "secret": secret, "name": "Dan", "join_key": "d".repeat(30)});
    let mut older = server.ws(None).await;
    older.hello("customer").await;
    let (mut newer, joined) = send_join(&server, dan_join.clone(), None).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    older.send(dan_join.clone()).await;
    let late = older.recv_type("error").await;
    assert_eq!(late["code"], "already_joined", "{late}");
    newer
        .send(json!({"type": "chat", "text": "still here"}))
        .await;
    page.recv_until(|m| m["type"] == "chat" && m["text"] == "still here")
        .await;
    // A key is no resume token, and a customer's key cannot attach an agent.
    let mut resume = server.ws(None).await;
    resume.hello("customer").await;
    resume
        .send(json!({"type": "resume", "token": "d".repeat(30)}))
        .await;
    assert_eq!(resume.recv_type("error").await["code"], "session_not_found");
    let (_, attach) = send_join(
        &server,
        json!({"type": "attach_agent", "token": "agt_unknown", "join_key": "d".repeat(30)}),
        None,
    )
    .await;
    assert_eq!(attach["code"], "session_not_found", "{attach}");
}

#[tokio::test]
async fn the_primary_losing_the_connection_ends_the_session_after_the_grace_period() {
    let server = TestServer::start_with(|c| c.reconnect_grace_secs = 1).await;
    let (_rep, _number, secret, page) = started(&server).await;
    let (mut ann, _) = customer_by_link(&server, &secret, "Ann").await;
    page.drop_connection();
    let ended = ann.recv_type("session_ended").await;
    assert_eq!(ended["reason"], "primary_connection_lost");
}

#[tokio::test]
async fn a_rep_assists_by_number() {
    let server = TestServer::start().await;
    let (_rep, number, _secret, mut page) = started(&server).await;
    let sam = server.rep("sam", false).await;
    let mut ws = server.ws(Some(&sam)).await;
    ws.hello("console").await;
    ws.send(json!({"type": "assist", "number": number})).await;
    assert_eq!(ws.recv_type("joined").await["role"], "assistant");
    let joined = page.recv_type("participant_joined").await;
    assert_eq!(joined["participant"]["role"], "assistant");
}

#[tokio::test]
async fn an_email_invitation_without_a_mail_server_fails_with_the_reason_and_is_kept() {
    let server = TestServer::start().await;
    let (rep, number, _secret, mut page) = started(&server).await;
    page.send(json!({"type": "invite", "invitee": "customer", "address": "ann@example.com"}))
        .await;
    let sending = page.recv_type("invite_status").await;
    assert_eq!(sending["state"], "sending", "{sending}");
    let failed = page.recv_type("invite_status").await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["reason"]
            .as_str()
            .expect("reason")
            .contains("no mail server"),
        "{failed}"
    );
    let kept: Vec<Value> = rep
        .get(&format!("/api/sessions/{number}/invitations"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0]["state"].as_str(), kept[0]["address"].as_str()),
        (Some("failed"), Some("ann@example.com"))
    );

    page.send(json!({"type": "invite", "invitee": "customer", "address": "ann@localhost"}))
        .await;
    let err = page.recv_type("error").await;
    assert_eq!(err["code"], "invalid_address");
    assert!(
        err["message"]
            .as_str()
            .expect("text")
            .contains("is not an email address")
    );
}

/// The agent path's server side: an admitted customer gets a one-time token, the agent
/// attaches with it and appears on the customer, the token cannot be used twice, and a
/// restarted agent gets in with the fresh token the customer receives.
#[tokio::test]
async fn an_agent_attaches_once_with_its_customers_token() {
    let server = TestServer::start().await;
    let (_rep, number, secret, mut page) = started(&server).await;
    let mut ann = server.ws(None).await;
    ann.hello("customer").await;
    ann.send(json!({"type": "join_by_link", "secret": secret, "name": "Ann"}))
        .await;
    let ann_id = ann.recv_type("joined").await["you"].clone();
    let token = ann.recv_type("agent_token").await["token"]
        .as_str()
        .expect("token")
        .to_owned();

    let attach = |token: String| {
        let server = &server;
        async move {
            let mut agent = server.ws(None).await;
            agent.hello("agent").await;
            agent
                .send(json!({"type": "attach_agent", "token": token}))
                .await;
            let reply = agent
                .recv_until(|m| m["type"] == "joined" || m["type"] == "error")
                .await;
            (agent, reply)
        }
    };
    let (agent, joined) = attach(token.clone()).await;
    assert_eq!(joined["role"], "agent", "{joined}");
    let agent_id = joined["you"].clone();
    let updated = page
        .recv_until(|m| m["type"] == "participant_updated" && m["participant"]["id"] == ann_id)
        .await;
    assert_eq!(updated["participant"]["agent"], agent_id);

    let (_, again) = attach(token).await;
    assert_eq!(
        again["code"], "session_not_found",
        "a token works once: {again}"
    );

    // The agent stops; Ann's page gets a new token, which works.
    agent.close_page().await;
    let fresh = ann.recv_type("agent_token").await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (_agent, joined) = attach(fresh).await;
    assert_eq!(joined["role"], "agent");

    // A customer in the waiting room gets no token until admitted.
    let mut bob = server.ws(None).await;
    bob.hello("customer").await;
    bob.send(json!({"type": "join_by_number", "number": number, "name": "Bob"}))
        .await;
    bob.recv_type("waiting").await;
    let waiting = page
        .recv_until(|m| m["type"] == "participant_joined" && m["participant"]["name"] == "Bob")
        .await;
    page.send(json!({"type": "admit", "participant": waiting["participant"]["id"]}))
        .await;
    // Messages arrive in order: a token sent while waiting would come before `joined`
    // (and its ICE servers, which are also only for the admitted).
    let ice = bob.recv().await;
    assert_eq!(
        ice["type"], "ice_servers",
        "no token before admission: {ice}"
    );
    let first = bob.recv().await;
    assert_eq!(
        first["type"], "joined",
        "no token before admission: {first}"
    );
    assert_eq!(
        bob.recv().await["type"],
        "agent_token",
        "the token follows the admission"
    );
}

/// R4: with several sessions allowed, the admin's maximum of customers holds across all of
/// one rep's sessions; a join beyond it is refused with a clear message to the customer
/// and a notice to the rep. Another rep's sessions do not count.
#[tokio::test]
async fn r4_the_per_rep_maximum_holds_across_the_reps_sessions() {
    let server = TestServer::start().await;
    server.set_max_customers(2, true).await;
    let rep = server.rep("rita", false).await;
    let (first, first_secret) = rep.start_session().await;
    let (second, second_secret) = rep.start_session().await;
    let mut first_page = rep_page(&server, &rep, &first).await;
    let mut second_page = rep_page(&server, &rep, &second).await;

    let (_ann, _) = customer_by_link(&server, &first_secret, "Ann").await;
    first_page.recv_type("participant_joined").await;
    let (_bob, _) = customer_by_link(&server, &second_secret, "Bob").await;
    second_page.recv_type("participant_joined").await;

    // One customer in each session: the third is one too many for Rita.
    let mut carl = server.ws(None).await;
    carl.hello("customer").await;
    carl.send(json!({"type": "join_by_link", "secret": first_secret, "name": "Carl"}))
        .await;
    let refused = carl.recv().await;
    assert_eq!(refused["code"], "session_full", "{refused}");
    let message = refused["message"].as_str().expect("text");
    assert!(message.contains("2 customers"), "{message}");
    let notice = first_page.recv_type("notice").await;
    assert!(
        notice["text"].as_str().expect("text").contains("Carl"),
        "{notice}"
    );

    // Another rep's session has its own count.
    let other = server.rep("otto", false).await;
    let (otto_number, otto_secret) = other.start_session().await;
    let _otto_page = rep_page(&server, &other, &otto_number).await;
    let (_dana, _) = customer_by_link(&server, &otto_secret, "Dana").await;

    // When Bob leaves Rita's second session, Carl fits in the first.
    second_page.send(json!({"type": "end_session"})).await;
    second_page.recv_type("session_ended").await;
    let (_carl, _) = customer_by_link(&server, &first_secret, "Carl").await;
    let joined = first_page
        .recv_until(|m| m["type"] == "participant_joined" && m["participant"]["name"] == "Carl")
        .await;
    assert_eq!(joined["participant"]["admission"], "admitted");
}

/// The rep's dashboard connection (R10): hello, then `dashboard`.
async fn desk(server: &TestServer, rep: &Http, available: bool) -> Ws {
    let mut ws = server.ws(Some(rep)).await;
    ws.hello("console").await;
    ws.send(json!({"type": "dashboard", "available": available}))
        .await;
    ws
}

/// R10: a WebACD agent transfers to a queue with a personal message of up to 345
/// characters; the queue's available agent is offered the session with the message and
/// takes it; the sender is out of the session and the call the sender started has ended
/// for everyone. 346 characters, a non-agent and an unknown queue are refused.
#[tokio::test]
async fn r10_a_webacd_transfer_to_a_queue_reaches_an_available_agent_with_the_message() {
    let server = TestServer::start().await;
    let rita = server.rep("rita", true).await;
    let sam = server.rep("sam", true).await;
    let nora = server.rep("nora", false).await;
    let admin = server.admin().await;
    let queue: Value = admin
        .post("/api/admin/queues", json!({"name": "Printers"}))
        .await
        .json()
        .await
        .expect("queue");
    let sam_id = server.account_id(&admin, "sam").await;
    let response = admin
        .put(
            &format!("/api/admin/queues/{}/members", queue["id"]),
            json!({"members": [sam_id]}),
        )
        .await;
    assert_eq!(response.status(), 200);

    let (number, secret) = rita.start_session().await;
    let mut page = rep_page(&server, &rita, &number).await;
    let (mut ann, _) = customer_by_link(&server, &secret, "Ann").await;
    page.recv_type("participant_joined").await;
    page.send(json!({"type": "start_call"})).await;
    ann.recv_type("call_state").await;
    ann.send(json!({"type": "join_call", "video": false})).await;
    ann.recv_until(|m| {
        m["type"] == "call_state"
            && m["call"]["members"]
                .as_array()
                .is_some_and(|a| a.len() == 2)
    })
    .await;

    // A non-agent has no WebACD dashboard and cannot transfer.
    let mut nora_desk = desk(&server, &nora, true).await;
    assert_eq!(
        nora_desk.recv_type("error").await["code"],
        "not_webacd_agent"
    );
    let target = json!({"kind": "queue", "queue": "Printers"});
    let nora_session = nora.start_session().await;
    let mut nora_page = rep_page(&server, &nora, &nora_session.0).await;
    nora_page
        .send(json!({"type": "webacd_transfer", "target": target, "message": "x"}))
        .await;
    let refused = nora_page.recv_type("error").await;
    assert_eq!(refused["code"], "not_webacd_agent", "{refused}");
    // Whether an agent or queue exists is not for those who may not transfer: the same
    // refusal names it or not (no probing of agents' names).
    let nowhere = json!({"kind": "agent", "agent": "no-such-agent"});
    nora_page
        .send(json!({"type": "webacd_transfer", "target": nowhere}))
        .await;
    let refused = nora_page.recv_type("error").await;
    assert_eq!(refused["code"], "not_webacd_agent", "{refused}");
    for probe in [target.clone(), nowhere.clone()] {
        ann.send(json!({"type": "webacd_transfer", "target": probe}))
            .await;
        let refused = ann.recv_type("error").await;
        assert_eq!(refused["code"], "not_permitted", "{refused}");
    }

    // Sam is available on his dashboard and sees Rita's load.
    let mut sam_desk = desk(&server, &sam, true).await;
    let state = sam_desk.recv_type("webacd_state").await;
    assert_eq!(state["available"], true);
    let agents = state["agents"].as_array().expect("agents");
    assert!(
        agents
            .iter()
            .any(|a| a["agent"] == "rita" && a["sessions"] == 1),
        "{state}"
    );

    // Too long, or to nowhere: refused with a clear reason, and Rita stays.
    let long = "é".repeat(346);
    page.send(json!({"type": "webacd_transfer", "target": target, "message": long}))
        .await;
    let refused = page.recv_type("error").await;
    assert_eq!(refused["code"], "too_long", "{refused}");
    assert!(
        refused["message"].as_str().expect("text").contains("345"),
        "{refused}"
    );
    page.send(json!({"type": "webacd_transfer", "target": {"kind": "queue", "queue": "Nowhere"}}))
        .await;
    let refused = page.recv_type("error").await;
    assert_eq!(refused["code"], "unknown_target", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .expect("text")
            .contains("Nowhere"),
        "{refused}"
    );

    // Exactly 345 characters go through.
    let message = "é".repeat(345);
    page.send(json!({"type": "webacd_transfer", "target": target, "message": message}))
        .await;
    assert!(
        page.closed().await.is_some(),
        "the sender leaves the session"
    );
    let offered = sam_desk.recv_type("transfer_offered").await;
    assert_eq!(offered["number"], number.as_str());
    assert_eq!(offered["message"], message.as_str());
    assert_eq!(offered["from"], "Rep rita");
    let waiting = sam_desk
        .recv_until(|m| {
            m["type"] == "webacd_state" && m["waiting"].as_array().is_some_and(|w| !w.is_empty())
        })
        .await;
    assert_eq!(waiting["waiting"][0]["for_you"], true, "{waiting}");
    // The call Rita started has ended for Ann.
    ann.recv_until(|m| m["type"] == "call_state" && m["call"].is_null())
        .await;

    // Sam accepts: he is the primary and reads the message.
    let mut sam_page = server.ws(Some(&sam)).await;
    sam_page.hello("console").await;
    sam_page
        .send(json!({"type": "accept_transfer", "number": number}))
        .await;
    let joined = sam_page.recv_type("joined").await;
    assert_eq!(joined["role"], "primary_rep");
    assert_eq!(joined["transfer_message"], message.as_str());
    assert!(
        !joined["participants"]
            .as_array()
            .expect("people")
            .iter()
            .any(|p| p["name"] == "Rep rita"),
        "the sender is out: {joined}"
    );
    // Nobody else can take it now.
    let mut again = server.ws(Some(&sam)).await;
    again.hello("console").await;
    again
        .send(json!({"type": "accept_transfer", "number": number}))
        .await;
    assert_eq!(
        again.recv_type("error").await["code"],
        "no_transfer_pending"
    );

    server.state.flush().await;
    let audit: Vec<Value> = admin
        .get(&format!("/api/admin/audit?session={number}"))
        .await
        .json()
        .await
        .expect("json");
    let actions: Vec<&str> = audit.iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in ["webacd_transfer", "transfer_accepted", "call_ended"] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
}

/// R10, protocol.md §4.8: a WebACD agent's accept goes through and its answer is lost
/// with the connection; the same accept with its `join_key` brings the agent back to the
/// primary's seat it took (the offer is gone by then), and the session does not end for
/// want of its primary.
#[tokio::test]
async fn r10_an_accept_sent_again_with_its_key_comes_back_to_the_primary_seat() {
    let server = TestServer::start().await;
    let rita = server.rep("rita", true).await;
    let sam = server.rep("sam", true).await;
    let (number, secret) = rita.start_session().await;
    let mut page = rep_page(&server, &rita, &number).await;
    let (mut ann, _) = customer_by_link(&server, &secret, "Ann").await;
    page.recv_type("participant_joined").await;
    let mut sam_desk = desk(&server, &sam, true).await;
    sam_desk.recv_type("webacd_state").await;
    page.send(json!({"type": "webacd_transfer", "target": {"kind": "agent", "agent": "sam"}}))
        .await;
    sam_desk.recv_type("transfer_offered").await;

    let accept = json!({"type": "accept_transfer", "number": number, "join_key": "e".repeat(40)});
    let mut first = server.ws(Some(&sam)).await;
    first.hello("console").await;
    first.send(accept.clone()).await;
    let sam_in = ann
        .recv_until(|m| m["type"] == "participant_joined" && m["participant"]["name"] == "Rep sam")
        .await;
    let sam_id = sam_in["participant"]["id"].clone();
    first.drop_connection();
    ann.recv_until(|m| {
        m["type"] == "participant_updated"
            && m["participant"]["id"] == sam_id
            && m["participant"]["connected"] == false
    })
    .await;
    let (_sam_page, again) = send_join(&server, accept, Some(&sam)).await;
    assert_eq!(again["type"], "joined", "{again}");
    assert_eq!(
        again["you"], sam_id,
        "the seat the first accept took: {again}"
    );
    assert_eq!(again["role"], "primary_rep", "{again}");
    let sams = again["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter(|p| p["name"] == "Rep sam")
        .count();
    assert_eq!(sams, 1, "{again}");
}

/// R10: a queue that distributes automatically offers each session to the one available
/// agent with the fewest sessions; an agent who is away gets nothing.
#[tokio::test]
async fn r10_automatic_distribution_picks_the_available_agent_with_the_fewest_sessions() {
    let server = TestServer::start().await;
    server.set_max_customers(5, true).await;
    let rita = server.rep("rita", true).await;
    let sam = server.rep("sam", true).await;
    let tess = server.rep("tess", true).await;
    let uma = server.rep("uma", true).await;
    let admin = server.admin().await;
    let queue: Value = admin
        .post("/api/admin/queues", json!({"name": "Billing"}))
        .await
        .json()
        .await
        .expect("queue");
    let members = json!({"members": [
        server.account_id(&admin, "sam").await,
        server.account_id(&admin, "tess").await,
        server.account_id(&admin, "uma").await,
    ]});
    let path = format!("/api/admin/queues/{}", queue["id"]);
    assert_eq!(
        admin
            .put(&format!("{path}/members"), members)
            .await
            .status(),
        200
    );
    assert_eq!(
        admin
            .patch(&path, json!({"auto_assign": true}))
            .await
            .status(),
        200
    );

    // Sam already runs a session; Tess runs none; Uma runs none but is away.
    let (sam_number, _) = sam.start_session().await;
    let _sam_page = rep_page(&server, &sam, &sam_number).await;
    let mut sam_desk = desk(&server, &sam, true).await;
    let mut tess_desk = desk(&server, &tess, true).await;
    let mut uma_desk = desk(&server, &uma, false).await;

    let (number, _) = rita.start_session().await;
    let mut page = rep_page(&server, &rita, &number).await;
    page.send(json!({"type": "webacd_transfer", "target": {"kind": "queue", "queue": "Billing"}}))
        .await;
    let offered = tess_desk.recv_type("transfer_offered").await;
    assert_eq!(offered["number"], number.as_str());
    let has_it = |m: &Value| {
        m["type"] == "webacd_state"
            && m["waiting"]
                .as_array()
                .is_some_and(|w| w.iter().any(|t| t["number"] == number.as_str()))
    };
    let sam_view = sam_desk.recv_until(has_it).await;
    assert_eq!(sam_view["waiting"][0]["for_you"], false, "{sam_view}");
    let uma_view = uma_desk.recv_until(has_it).await;
    assert_eq!(uma_view["waiting"][0]["for_you"], false, "{uma_view}");
    let tess_view = tess_desk.recv_until(has_it).await;
    assert_eq!(tess_view["waiting"][0]["for_you"], true, "{tess_view}");
}
