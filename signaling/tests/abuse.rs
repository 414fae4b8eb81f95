//! The server as an attacker meets it (issue "harden the internet-facing server"): each
//! test does what the probe did, from several loopback addresses, checks the refusal, and
//! checks that a real session keeps working meanwhile.

use crate::common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type RawWs = tokio_tungstenite::WebSocketStream<TcpStream>;

fn loopback(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 9, n))
}

async fn tcp_from(server: SocketAddr, from: IpAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(server).await
}

/// A WebSocket from a chosen loopback address, with an optional login cookie.
async fn ws_from(server: &TestServer, from: IpAddr, cookie: Option<&str>) -> RawWs {
    let stream = tcp_from(server.addr, from).await.expect("tcp");
    let mut request = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .expect("request");
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().expect("header"));
    }
    let (ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("upgrade");
    ws
}

async fn send(ws: &mut RawWs, message: Value) {
    ws.send(Message::text(message.to_string()))
        .await
        .expect("send");
}

async fn recv(ws: &mut RawWs) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("frame");
        match frame {
            Message::Text(text) => return serde_json::from_str(&text).expect("json"),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

async fn hello(ws: &mut RawWs, client: &str) {
    send(
        ws,
        json!({"type": "hello", "protocol_version": 1, "client": client}),
    )
    .await;
    assert_eq!(recv(ws).await["type"], "welcome");
}

/// The answer to a join: `waiting`, `joined` or `error` (skipping the resume token).
async fn first_answer(ws: &mut RawWs) -> Value {
    loop {
        let m = recv(ws).await;
        if ["waiting", "joined", "error"].contains(&m["type"].as_str().unwrap_or("")) {
            return m;
        }
    }
}

/// Wait until the server closes this socket; the close code, if it sent a close frame.
async fn closed_within(ws: &mut RawWs, deadline: Duration) -> Option<u16> {
    let until = Instant::now() + deadline;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => panic!("the server did not close the connection within {deadline:?}"),
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => return None,
        }
    }
}

/// A real session that must keep working: Rita's page and Ann by link. Returns a probe
/// that checks a chat round trip.
struct Legit {
    page: Ws,
    ann: Ws,
    number: String,
    secret: String,
    rep: Http,
}

impl Legit {
    async fn start(server: &TestServer) -> Self {
        let rep = server.rep("rita", false).await;
        let (number, secret) = rep.start_session().await;
        let page = rep_page(server, &rep, &number).await;
        let (ann, _) = customer_by_link(server, &secret, "Ann").await;
        Self {
            page,
            ann,
            number,
            secret,
            rep,
        }
    }

    /// Ann's chat line reaches Rita, and Rita's reaches Ann.
    async fn still_works(&mut self, tag: &str) {
        let text = format!("still here {tag}");
        self.ann.send(json!({"type": "chat", "text": text})).await;
        let got = self
            .page
            .recv_until(|m| m["type"] == "chat" && m["text"] == text.as_str())
            .await;
        assert_eq!(got["name"], "Ann");
        let reply = format!("yes {tag}");
        self.page.send(json!({"type": "chat", "text": reply})).await;
        self.ann
            .recv_until(|m| m["type"] == "chat" && m["text"] == reply.as_str())
            .await;
    }
}

/// 1. A flood of messages that provoke replies, from a client that never reads: the
/// server does not echo much, refuses beyond the rate, closes the flooder, and the real
/// session does not notice.
#[tokio::test]
async fn a_flooding_client_that_never_reads_is_cut_off_and_the_session_goes_on() {
    let server = TestServer::start().await;
    let mut legit = Legit::start(&server).await;
    let mut flooder = ws_from(&server, loopback(1), None).await;
    hello(&mut flooder, "customer").await;
    // A long unknown type: each used to be echoed whole in the error.
    let long_type = format!(r#"{{"type":"{}"}}"#, "x".repeat(60_000));
    let mut sent = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if flooder
            .send(Message::text(long_type.clone()))
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "still accepted after {sent} messages"
    );
    assert!(sent < 2_000, "closed after {sent} messages");
    legit.still_works("after the flood").await;
}

/// 1. A chat flood from a joined customer: the rep's console gets a burst and then a
/// steady trickle, not hundreds of thousands of lines.
#[tokio::test]
async fn a_chat_flood_is_rate_limited_per_participant() {
    let server = TestServer::start().await;
    let mut legit = Legit::start(&server).await;
    let (mut mallory, _) = customer_by_link(&server, &legit.secret, "Mallory").await;
    for i in 0..150 {
        mallory
            .send(json!({"type": "chat", "text": format!("spam {i}")}))
            .await;
    }
    // Mallory hears that she is too fast.
    let refused = mallory
        .recv_until(|m| m["type"] == "error" && m["code"] == "rate_limited")
        .await;
    assert_eq!(refused["request"], "chat");
    // Rita got the burst, then nothing more than the steady rate allows.
    legit.still_works("during the flood").await;
    let mut spam_seen = 0;
    let marker = "end of check";
    legit
        .ann
        .send(json!({"type": "chat", "text": marker}))
        .await;
    loop {
        let m = legit.page.recv().await;
        if m["type"] == "chat" && m["text"] == marker {
            break;
        }
        if m["type"] == "chat" && m["name"] == "Mallory" {
            spam_seen += 1;
        }
    }
    assert!(spam_seen < 60, "{spam_seen} spam lines reached the rep");
}

/// 3. Connections: one address cannot hold more than its share, a half-sent request and
/// a WebSocket that never says hello are closed, and others still get in meanwhile.
#[tokio::test]
async fn one_address_cannot_exhaust_connections_and_idle_ones_are_closed() {
    let server = TestServer::start_with(|c| c.max_connections_per_address = 20).await;
    let mut legit = Legit::start(&server).await;
    let hog = loopback(2);
    let mut held = vec![];
    for _ in 0..20 {
        held.push(tcp_from(server.addr, hog).await.expect("connect"));
    }
    // The 21st from the same address is answered 429 and closed.
    let mut extra = tcp_from(server.addr, hog).await.expect("tcp connects");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(20), extra.read_to_string(&mut answer))
        .await
        .expect("answered in time")
        .expect("read");
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    // Another address still loads the login page and joins.
    let page = reqwest::Client::builder()
        .local_address(loopback(3))
        .build()
        .expect("client")
        .get(format!("{}/login", server.base))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    legit.still_works("while one address is full").await;

    // A request whose headers never end is closed (10 s header timeout).
    let mut half = tcp_from(server.addr, loopback(4)).await.expect("tcp");
    half.write_all(b"GET /login HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(40), half.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "a half-sent request stayed open 40 s");

    // A connection that never sends a byte is closed (10 s first-byte limit).
    let mut mute = tcp_from(server.addr, loopback(6)).await.expect("tcp");
    let mut nothing = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(40), mute.read_to_end(&mut nothing)).await;
    assert!(read.is_ok(), "a silent connection stayed open 40 s");

    // A WebSocket that never says hello is closed with 4002.
    let mut silent = ws_from(&server, loopback(5), None).await;
    assert_eq!(
        closed_within(&mut silent, Duration::from_secs(40)).await,
        Some(4002)
    );
    drop(held);
    legit.still_works("after").await;
}

/// 4. Guessing by a logged-in rep: open_session answers alike for a dead number and
/// someone else's live one, and assist/open are rate-limited per account across
/// addresses.
#[tokio::test]
async fn a_rep_cannot_guess_session_numbers_quickly() {
    let server = TestServer::start().await;
    let mut legit = Legit::start(&server).await;
    let mallory = server.rep("mallory", false).await;
    let cookie = mallory.cookie.clone().expect("cookie");
    let mut codes = vec![];
    for i in 0..40u8 {
        // A new address for every few attempts: the account's limit still holds.
        let mut ws = ws_from(&server, loopback(10 + i / 4), Some(&cookie)).await;
        hello(&mut ws, "console").await;
        let kind = if i % 2 == 0 { "assist" } else { "open_session" };
        send(
            &mut ws,
            json!({"type": kind, "number": format!("{}", 500_000_000 + u32::from(i))}),
        )
        .await;
        let answer = recv(&mut ws).await;
        codes.push(answer["code"].as_str().unwrap_or("").to_owned());
    }
    let limited = codes.iter().filter(|c| *c == "rate_limited").count();
    assert!(limited >= 5, "{codes:?}");
    assert!(
        codes[..20].iter().all(|c| c == "session_not_found"),
        "{codes:?}"
    );
    // The live number is refused in the same words as a dead one — by another rep who
    // has not used up their attempts.
    let oscar = server.rep("oscar", false).await;
    let mut ws = server.ws(Some(&oscar)).await;
    ws.hello("console").await;
    ws.send(json!({"type": "open_session", "number": legit.number}))
        .await;
    let live = ws.recv().await;
    ws.send(json!({"type": "open_session", "number": "999999998"}))
        .await;
    let dead = ws.recv().await;
    assert_eq!(live["code"], dead["code"]);
    assert_eq!(
        live["message"].as_str().map(|m| m.len()),
        dead["message"].as_str().map(|m| m.len())
    );
    // The join link goes to the session's own reps only.
    let link = oscar.get(&format!("/api/sessions/{}", legit.number)).await;
    assert_eq!(link.status(), 404);
    legit.still_works("after the guesses").await;
}

/// 4. An assistant is announced to the primary at once.
#[tokio::test]
async fn the_primary_hears_at_once_when_someone_assists() {
    let server = TestServer::start().await;
    let mut legit = Legit::start(&server).await;
    let sam = server.rep("sam", false).await;
    let mut ws = server.ws(Some(&sam)).await;
    ws.hello("console").await;
    ws.send(json!({"type": "assist", "number": legit.number}))
        .await;
    ws.recv_type("joined").await;
    let notice = legit.page.recv_type("notice").await;
    assert!(
        notice["text"]
            .as_str()
            .expect("text")
            .contains("Rep sam (sam) joined your session as an assistant"),
        "{notice}"
    );
}

/// 7. Join guesses from many addresses meet the site-wide limit.
#[tokio::test]
async fn guesses_from_many_addresses_meet_the_site_wide_limit() {
    let server = TestServer::start().await;
    let mut legit = Legit::start(&server).await;
    let mut limited = 0;
    let mut answered = 0;
    for a in 0..48u8 {
        let mut ws = ws_from(&server, IpAddr::V4(Ipv4Addr::new(127, 0, 10, a + 1)), None).await;
        hello(&mut ws, "customer").await;
        for n in 0..10u32 {
            let number = format!("{}", 700_000_000 + u32::from(a) * 100 + n);
            send(
                &mut ws,
                json!({"type": "join_by_number", "number": number, "name": "G"}),
            )
            .await;
        }
        for _ in 0..10 {
            let answer = recv(&mut ws).await;
            answered += 1;
            if answer["code"] == "rate_limited" {
                limited += 1;
            }
        }
    }
    assert_eq!(answered, 480);
    assert!(limited >= 250, "only {limited} of 480 guesses were refused");
    legit.still_works("after the guesses").await;
}

/// 5. Disabling a rep ends their live connections at once, and their resume token does
/// not bring them back; a role change does the same.
#[tokio::test]
async fn disabling_a_rep_ends_their_connections_and_resume_tokens() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let mut legit = Legit::start(&server).await;
    let sam = server.rep("sam", false).await;
    let sam_id = server.account_id(&admin, "sam").await;
    let mut assisting = server.ws(Some(&sam)).await;
    assisting.hello("console").await;
    assisting
        .send(json!({"type": "assist", "number": legit.number}))
        .await;
    let token = assisting.recv_type("resume_token").await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assisting.recv_type("joined").await;
    let mut idle = server.ws(Some(&sam)).await;
    idle.hello("console").await;

    let response = admin
        .patch(
            &format!("/api/admin/reps/{sam_id}"),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let close = assisting.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4003);
    let close = idle.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4003);
    let left = legit
        .page
        .recv_until(|m| m["type"] == "participant_left")
        .await;
    assert!(left["participant"].is_u64());
    // The resume token brings nobody back, with or without a cookie.
    let mut back = server.ws(None).await;
    back.hello("console").await;
    back.send(json!({"type": "resume", "token": token})).await;
    assert_eq!(back.recv().await["type"], "error");
    assert_eq!(sam.get("/api/me").await.status(), 401);
    legit.still_works("after the revocation").await;

    // A role change closes the connections of that rep too.
    let mut rita_idle = server.ws(Some(&legit.rep)).await;
    rita_idle.hello("console").await;
    let rita_id = server.account_id(&admin, "rita").await;
    let response = admin
        .patch(
            &format!("/api/admin/reps/{rita_id}"),
            json!({"is_webacd": true}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let close = rita_idle.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4003);
}

/// 5. A rep's resume token alone does not bring the rep back: the resume needs the
/// rep's own login.
#[tokio::test]
async fn a_reps_resume_token_needs_the_reps_login() {
    let server = TestServer::start().await;
    let rep = server.rep("rita", false).await;
    let (number, _secret) = rep.start_session().await;
    let mut page = server.ws(Some(&rep)).await;
    page.hello("console").await;
    page.send(json!({"type": "open_session", "number": number}))
        .await;
    let token = page.recv_type("resume_token").await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    page.recv_type("joined").await;
    page.drop_connection();
    let mut thief = server.ws(None).await;
    thief.hello("console").await;
    thief.send(json!({"type": "resume", "token": token})).await;
    let refused = thief.recv().await;
    assert_eq!(refused["code"], "not_permitted", "{refused}");
    // Rita herself, logged in, comes back with it.
    let mut back = server.ws(Some(&rep)).await;
    back.hello("console").await;
    back.send(json!({"type": "resume", "token": token})).await;
    assert_eq!(back.recv_type("joined").await["role"], "primary_rep");
}

/// 6. Strangers in the waiting room take no customer place: with a maximum of one
/// customer, five joins by number do not lock out the real customer who has the link;
/// the waiting room has its own cap; admitting beyond the maximum is refused.
#[tokio::test]
async fn strangers_in_the_waiting_room_do_not_lock_out_the_customer_with_the_link() {
    let server = TestServer::start().await;
    server.set_max_customers(1, false).await;
    let rep = server.rep("rita", false).await;
    let (number, secret) = rep.start_session().await;
    let mut page = rep_page(&server, &rep, &number).await;
    let mut strangers = vec![];
    for i in 0..10u8 {
        let mut ws = ws_from(&server, loopback(100 + i), None).await;
        hello(&mut ws, "customer").await;
        send(
            &mut ws,
            json!({"type": "join_by_number", "number": number, "name": format!("Stranger {i}")}),
        )
        .await;
        let answer = first_answer(&mut ws).await;
        assert_eq!(answer["type"], "waiting", "{answer}");
        strangers.push(ws);
    }
    // The waiting room is full now (10 by default).
    let mut one_more = ws_from(&server, loopback(120), None).await;
    hello(&mut one_more, "customer").await;
    send(
        &mut one_more,
        json!({"type": "join_by_number", "number": number, "name": "One more"}),
    )
    .await;
    let full = first_answer(&mut one_more).await;
    assert_eq!(full["type"], "error");
    assert!(
        full["message"]
            .as_str()
            .expect("text")
            .contains("waiting room"),
        "{full}"
    );
    // Ann, with the link, gets in at once.
    let (mut ann, _) = customer_by_link(&server, &secret, "Ann").await;
    ann.send(json!({"type": "chat", "text": "hello"})).await;
    page.recv_until(|m| m["type"] == "chat" && m["text"] == "hello")
        .await;
    // Admitting a stranger now would exceed the maximum of one: refused, stays waiting.
    let mut again = server.ws(Some(&rep)).await;
    again.hello("console").await;
    again
        .send(json!({"type": "open_session", "number": number}))
        .await;
    let snapshot = again.recv_type("joined").await;
    let stranger = snapshot["participants"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "Stranger 0"))
        .expect("the stranger waits")["id"]
        .clone();
    again
        .send(json!({"type": "admit", "participant": stranger}))
        .await;
    let refused = again.recv_type("error").await;
    assert_eq!(refused["code"], "session_full", "{refused}");
}

/// 5. A role change voids the rep's resume tokens: even with their still valid login, the
/// old token does not bring them back (a fresh assist would, with the new role).
#[tokio::test]
async fn a_role_change_voids_the_reps_resume_token_even_with_their_login() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let legit = Legit::start(&server).await;
    let sam = server.rep("sam", false).await;
    let sam_id = server.account_id(&admin, "sam").await;
    let mut assisting = server.ws(Some(&sam)).await;
    assisting.hello("console").await;
    assisting
        .send(json!({"type": "assist", "number": legit.number}))
        .await;
    let token = assisting.recv_type("resume_token").await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assisting.recv_type("joined").await;
    let response = admin
        .patch(
            &format!("/api/admin/reps/{sam_id}"),
            json!({"is_webacd": true}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let close = assisting.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4003);
    // Sam's login still works (a role change is not a disable) ...
    assert_eq!(sam.get("/api/me").await.status(), 200);
    // ... but the old seat's token is gone.
    let mut back = server.ws(Some(&sam)).await;
    back.hello("console").await;
    back.send(json!({"type": "resume", "token": token})).await;
    let refused = back.recv_type("error").await;
    assert_eq!(refused["code"], "session_not_found", "{refused}");
}

/// A login from `from`, naming `claimed` as the client with `key` as a forwarding server
/// of the site would (docs/self-hosting.md, "Several servers"): status and text.
async fn login_forwarded(
    server: &TestServer,
    from: IpAddr,
    claimed: &str,
    key: &str,
    n: u32,
) -> (u16, String) {
    let response = reqwest::Client::builder()
        .local_address(from)
        .build()
        .expect("client")
        .post(format!("{}/api/login", server.base))
        .header("x-tandem-site-key", key)
        .header("x-tandem-client-address", claimed)
        .json(&json!({"username": format!("nobody{n}"), "password": "wrong"}))
        .send()
        .await
        .expect("login");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// What a server of the site forwards counts against the client it names, when it
/// carries the site's key: the login limit per address holds for each client behind the
/// forwarding server, not for all of them at once. Without the key, the naming header is
/// nobody's word, and the request counts against the address it came from.
#[tokio::test]
async fn forwarded_requests_count_against_the_client_named_only_with_the_site_key() {
    let key = "the-site-key-of-this-test-0123456789abcdefgh";
    let server = TestServer::start_with(|c| c.site_key = Some(key.into())).await;
    let forwarder = loopback(20);
    let per_minute = tandem_signaling::limits::defaults::LOGINS_PER_MINUTE;
    for n in 0..per_minute {
        let (status, text) = login_forwarded(&server, forwarder, "10.9.0.1", key, n).await;
        assert_ne!(status, 429, "login {n} of 10.9.0.1: {text}");
    }
    let (status, text) = login_forwarded(&server, forwarder, "10.9.0.1", key, 100).await;
    assert_eq!(status, 429, "10.9.0.1 is over its limit: {text}");
    assert!(text.contains("too many login attempts"), "{text}");
    // Another client behind the same forwarding server is not held back...
    let (status, text) = login_forwarded(&server, forwarder, "10.9.0.2", key, 101).await;
    assert_ne!(status, 429, "10.9.0.2 has its own limit: {text}");
    // ...and a wrong key makes the header count for nothing: this one is the forwarding
    // address's own first login (had the header been believed, it would be refused).
    let (status, text) = login_forwarded(&server, forwarder, "10.9.0.1", "guess", 102).await;
    assert_ne!(status, 429, "a wrong key names nobody: {text}");
}

/// A server of the site (it proved so with the key once) forwards many clients: its
/// connections are not held to the cap per address, while another address still is.
#[tokio::test]
async fn a_forwarding_server_of_the_site_is_not_held_to_the_cap_per_address() {
    let key = "the-site-key-of-this-test-0123456789abcdefgh";
    let server = TestServer::start_with(|c| {
        c.site_key = Some(key.into());
        c.max_connections_per_address = 2;
    })
    .await;
    let held = |from: IpAddr, key: &'static str| {
        let headers = format!("x-tandem-site-key: {key}\r\nx-tandem-client-address: 10.9.0.3\r\n");
        let addr = server.addr;
        async move { healthz_kept_open(addr, from, &headers).await }
    };
    let mut open = vec![];
    for n in 0..4 {
        let (stream, answer) = held(loopback(21), key).await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "connection {n}: {answer}"
        );
        open.push(stream);
    }
    for n in 0..2 {
        let (stream, answer) = held(loopback(22), "guess").await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "connection {n}: {answer}"
        );
        open.push(stream);
    }
    let (_, answer) = held(loopback(22), "guess").await;
    assert!(
        answer.starts_with("HTTP/1.1 429"),
        "the third from an address that is no server of the site: {answer}"
    );
}
