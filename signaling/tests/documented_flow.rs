//! The join and viewer sequence exactly as docs/http-api.md and docs/protocol.md describe
//! it, spoken by a client of its own: raw HTTP and raw JSON over a raw WebSocket, the way
//! a third party writing a viewer or an agent from the documents would. Each step names
//! the section it follows (`http-api §n`, `protocol §n`), so when the server and the
//! documents drift apart the failing step says which text to fix.
//!
//! Only the server itself comes from the shared harness (`TestServer`: port 0, a fresh
//! data directory, the admin password `admin-password`).

use crate::common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use common::TestServer;

/// A generous deadline for each message on a loaded machine; nothing waits for it unless
/// the server is broken.
const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------
// A third party's HTTP client: JSON bodies and the login cookie, nothing else.

struct Http {
    base: String,
    client: reqwest::Client,
    /// `tandem_login=<token>`, as sent back in the `Cookie` header.
    cookie: Option<String>,
}

impl Http {
    fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::new(),
            cookie: None,
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match &self.cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .request(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// http-api §1: `POST /api/login` with a JSON body; the answer sets `tandem_login`.
    async fn log_in(base: &str, username: &str, password: &str) -> Http {
        let mut http = Http::new(base);
        let response = http
            .request(reqwest::Method::POST, "/api/login")
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "http-api §1: login as {username}");
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .expect("http-api §1: the answer sets the login cookie")
            .to_owned();
        let mut parts = set_cookie.split(';').map(str::trim);
        let pair = parts.next().expect("name=value");
        assert!(pair.starts_with("tandem_login="), "{set_cookie}");
        let attributes: Vec<&str> = parts.collect();
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(
                attributes.contains(&attribute),
                "http-api §1: {attribute} in {set_cookie}"
            );
        }
        let account: Value = response.json().await.expect("http-api §1: the account");
        assert_eq!(account["username"], username);
        http.cookie = Some(pair.to_owned());
        http
    }
}

// ---------------------------------------------------------------------------------------
// A third party's WebSocket client: one JSON object per text frame.

struct Client {
    who: &'static str,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// protocol §1: `GET /ws`; a rep's connection carries the login cookie.
    async fn connect(server: &TestServer, who: &'static str, login: Option<&Http>) -> Client {
        let mut request = format!("ws://{}/ws", server.addr)
            .into_client_request()
            .expect("request");
        if let Some(cookie) = login.and_then(|h| h.cookie.as_deref()) {
            request
                .headers_mut()
                .insert("cookie", cookie.parse().expect("header"));
        }
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the WebSocket opens");
        Client { who, ws }
    }

    async fn send(&mut self, message: Value) {
        self.ws
            .send(Message::text(message.to_string()))
            .await
            .expect("send");
    }

    /// The next message, whatever it is.
    async fn next(&mut self) -> Value {
        loop {
            let Ok(next) = tokio::time::timeout(WAIT, self.ws.next()).await else {
                panic!("{}: no message in time", self.who);
            };
            let frame = match next {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => panic!("{}: {e}", self.who),
                None => panic!("{}: the connection ended", self.who),
            };
            match frame {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON");
                    assert!(value.is_object(), "protocol §1: one JSON object: {value}");
                    assert!(value["type"].is_string(), "protocol §1: a type: {value}");
                    return value;
                }
                Message::Close(frame) => panic!("{}: closed: {frame:?}", self.who),
                Message::Binary(_) => panic!("{}: a binary frame", self.who),
                _ => continue,
            }
        }
    }

    /// The next message must be of this type (where the documents fix the order).
    async fn expect(&mut self, kind: &str) -> Value {
        let message = self.next().await;
        assert_eq!(
            message["type"], kind,
            "{}: expected {kind} next, got {message}",
            self.who
        );
        message
    }

    /// Skip to the first message that matches (where the documents fix no order among
    /// what else a participant hears meanwhile).
    async fn until(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let message = self.next().await;
            if wanted(&message) {
                return message;
            }
            assert_ne!(
                message["type"], "error",
                "{}: an error while waiting for {what}",
                self.who
            );
        }
    }

    async fn until_type(&mut self, kind: &str) -> Value {
        self.until(kind, |m| m["type"] == kind).await
    }

    /// The close frame, after any messages before it.
    async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a close in time")
            {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                Some(Err(tungstenite::Error::ConnectionClosed)) | None => return None,
                Some(Err(e)) => panic!("{}: error instead of a close: {e}", self.who),
            }
        }
    }

    /// protocol §4.1: hello, then welcome with the documented fields.
    async fn hello(&mut self, client: &str) -> Value {
        self.send(
            json!({"type": "hello", "protocol_version": 1, "client": client,
                         "software": "documented-flow 1.0"}),
        )
        .await;
        let welcome = self.expect("welcome").await;
        check_welcome(&welcome);
        welcome
    }
}

// ---------------------------------------------------------------------------------------
// What the documents say the values look like.

/// protocol §3.2 `welcome`: protocol_version, server, max_message_bytes, ice_servers?.
fn check_welcome(welcome: &Value) {
    assert_eq!(welcome["protocol_version"], 1, "{welcome}");
    assert!(
        welcome["server"]
            .as_str()
            .is_some_and(|s| s.starts_with("tandem-signaling ")),
        "{welcome}"
    );
    assert_eq!(welcome["max_message_bytes"], 65536, "{welcome}");
    if let Some(servers) = welcome.get("ice_servers") {
        check_ice_servers(servers);
    }
}

/// protocol §3.2: `[{urls: [string], username?, credential?}]`.
fn check_ice_servers(servers: &Value) {
    for server in servers.as_array().expect("ice_servers is an array") {
        let urls = server["urls"].as_array().expect("urls is an array");
        assert!(urls.iter().all(Value::is_string), "{server}");
    }
}

/// protocol §2: a participant as every list and update carries it.
fn check_participant(p: &Value) {
    for field in ["id", "name", "role", "admission", "connected"] {
        assert!(p.get(field).is_some(), "protocol §2: {field} in {p}");
    }
    assert!(p["id"].is_u64() && p["connected"].is_boolean(), "{p}");
}

/// protocol §3.2 `joined`: the whole picture.
fn check_joined(joined: &Value, role: &str) -> u64 {
    for field in [
        "number",
        "you",
        "role",
        "participants",
        "active_customer",
        "shares",
        "control",
        "call",
        "open_invite_dialog",
    ] {
        assert!(
            joined.get(field).is_some(),
            "protocol §3.2: {field} in {joined}"
        );
    }
    assert_eq!(joined["role"], role, "{joined}");
    let you = joined["you"].as_u64().expect("you");
    let participants = joined["participants"].as_array().expect("participants");
    participants.iter().for_each(check_participant);
    assert!(
        participants.iter().any(|p| p["id"] == you),
        "you are in the list: {joined}"
    );
    you
}

/// protocol §2: 9 plain digits.
fn is_session_number(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == 9 && s.bytes().all(|b| b.is_ascii_digit()))
}

fn about(message: &Value, kind: &str, id: u64) -> bool {
    message["type"] == kind && message["participant"]["id"] == id
}

#[tokio::test]
async fn the_documented_join_and_viewer_sequence() {
    let server = TestServer::start().await;

    // --- http-api §1, §2: the admin logs in and creates a rep; the rep logs in.
    let admin = Http::log_in(&server.base, "admin", "admin-password").await;
    let (status, rep_account) = admin
        .post(
            "/api/admin/reps",
            json!({"username": "rita", "display_name": "Rita Rep",
                   "password": "rita-password"}),
        )
        .await;
    assert_eq!(status, 201, "http-api §2: {rep_account}");
    assert_eq!(rep_account["username"], "rita");
    let rep = Http::log_in(&server.base, "rita", "rita-password").await;

    // --- http-api §3: POST /api/sessions and its answer.
    let (status, started) = rep
        .post("/api/sessions", json!({"email_invite": false}))
        .await;
    assert_eq!(status, 201, "http-api §3: {started}");
    assert!(is_session_number(&started["number"]), "{started}");
    let number = started["number"].as_str().expect("number").to_owned();
    let display = format!("{} {} {}", &number[..3], &number[3..6], &number[6..]);
    assert_eq!(started["display"], display.as_str());
    assert!(started["email_configured"].is_boolean(), "{started}");
    assert_eq!(
        started["join_page"],
        format!("{}/join", server.base).as_str()
    );
    let link = started["link"].as_str().expect("link").to_owned();

    // --- http-api §5: the join link is <base>/j/<secret>; the page answers it.
    let secret = link
        .strip_prefix(&format!("{}/j/", server.base))
        .expect("http-api §5: the link is <base>/j/<secret>")
        .to_owned();
    assert!(!secret.is_empty() && !secret.contains('/'), "{link}");
    let page = reqwest::get(&link).await.expect("the join page");
    assert_eq!(page.status(), 200, "http-api §5: /j/<secret> is a page");

    // --- http-api §4: GET /api/sessions/{n} gives the primary rep the same link, and
    // nobody without a login anything.
    let (status, again) = rep.get(&format!("/api/sessions/{number}")).await;
    assert_eq!(status, 200, "http-api §4: {again}");
    assert_eq!(again["link"], link.as_str());
    let (status, _) = Http::new(&server.base)
        .get(&format!("/api/sessions/{number}"))
        .await;
    assert_eq!(status, 401, "http-api §4: a login is needed");

    // --- protocol §4.1, §4.2: the rep's page opens the session.
    let mut console = Client::connect(&server, "rep", Some(&rep)).await;
    console.hello("console").await;
    // protocol §4.1: a second hello gets a second welcome.
    console.hello("console").await;
    console
        .send(json!({"type": "open_session", "number": number}))
        .await;
    // protocol §4.2: resume_token, ice_servers, joined, then participant_updated about
    // yourself (now connected).
    let token = console.expect("resume_token").await;
    assert!(token["token"].is_string(), "{token}");
    check_ice_servers(&console.expect("ice_servers").await["ice_servers"]);
    let joined = console.expect("joined").await;
    let rep_id = check_joined(&joined, "primary_rep");
    assert_eq!(joined["number"], number.as_str());
    assert_eq!(
        joined["open_invite_dialog"], false,
        "\"Email\" was not ticked"
    );
    let me = console.expect("participant_updated").await;
    assert_eq!(me["participant"]["id"], rep_id, "{me}");
    assert_eq!(me["participant"]["connected"], true, "{me}");

    // --- protocol §4.3: a customer joins by link with the secret from the link.
    let mut ann = Client::connect(&server, "Ann", None).await;
    ann.hello("customer").await;
    ann.send(json!({"type": "join_by_link", "secret": secret, "name": "Ann Customer"}))
        .await;
    // resume_token, ice_servers, joined (admitted at once), agent_token, and, as nobody
    // was active, active_customer naming her.
    let ann_resume = ann.expect("resume_token").await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    check_ice_servers(&ann.expect("ice_servers").await["ice_servers"]);
    let joined = ann.expect("joined").await;
    let ann_id = check_joined(&joined, "customer");
    let me = joined["participants"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["id"] == ann_id))
        .expect("Ann in the list");
    assert_eq!(me["admission"], "admitted", "{me}");
    let agent_token = ann.expect("agent_token").await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(ann.expect("active_customer").await["participant"], ann_id);
    // The reps hear of her.
    let heard = console
        .until("Ann's participant_joined", |m| {
            about(m, "participant_joined", ann_id)
        })
        .await;
    check_participant(&heard["participant"]);
    assert_eq!(heard["participant"]["name"], "Ann Customer");
    let active = console.until_type("active_customer").await;
    assert_eq!(active["participant"], ann_id);

    // --- protocol §4.3: a second customer by number (as people type it) waits.
    let mut bob = Client::connect(&server, "Bob", None).await;
    bob.hello("customer").await;
    bob.send(json!({"type": "join_by_number", "number": display, "name": "Bob"}))
        .await;
    bob.expect("resume_token").await;
    let waiting = bob.expect("waiting").await;
    assert_eq!(
        waiting["number"],
        number.as_str(),
        "protocol §2: 9 plain digits"
    );
    let heard = console
        .until("Bob waiting", |m| m["type"] == "participant_joined")
        .await;
    assert_eq!(heard["participant"]["admission"], "waiting", "{heard}");
    let bob_id = heard["participant"]["id"].as_u64().expect("id");
    // protocol §4.3: the rep admits; Bob gets ice_servers then joined.
    console
        .send(json!({"type": "admit", "participant": bob_id}))
        .await;
    check_ice_servers(&bob.expect("ice_servers").await["ice_servers"]);
    assert_eq!(
        check_joined(&bob.expect("joined").await, "customer"),
        bob_id
    );
    let admitted = console
        .until("Bob admitted", |m| about(m, "participant_updated", bob_id))
        .await;
    assert_eq!(admitted["participant"]["admission"], "admitted");
    let admitted = ann
        .until("Bob admitted", |m| about(m, "participant_updated", bob_id))
        .await;
    assert_eq!(admitted["participant"]["admission"], "admitted");

    // --- protocol §4.4: the agent attaches with Ann's agent_token (the real agent needs
    // an X server; this client plays it, as a third party's agent would).
    let mut agent = Client::connect(&server, "agent", None).await;
    agent.hello("agent").await;
    agent
        .send(json!({"type": "attach_agent", "token": agent_token}))
        .await;
    agent.expect("resume_token").await;
    check_ice_servers(&agent.expect("ice_servers").await["ice_servers"]);
    let joined = agent.expect("joined").await;
    let agent_id = check_joined(&joined, "agent");
    // protocol §4.4: everyone hears of the agent, named after its customer, and of Ann's
    // agent — Ann too, about herself: `tandem-agent join` makes two participants.
    let heard = console
        .until("the agent joins", |m| {
            about(m, "participant_joined", agent_id)
        })
        .await;
    assert_eq!(heard["participant"]["role"], "agent");
    assert_eq!(heard["participant"]["customer"], ann_id);
    assert_eq!(heard["participant"]["name"], "Ann Customer's computer");
    let updated = console
        .until("Ann has an agent", |m| {
            about(m, "participant_updated", ann_id)
        })
        .await;
    assert_eq!(updated["participant"]["agent"], agent_id);
    let updated = ann
        .until("Ann has an agent", |m| {
            about(m, "participant_updated", ann_id)
        })
        .await;
    assert_eq!(updated["participant"]["agent"], agent_id);

    // --- protocol §4.4: after the customer's consent, the agent shares its desktop.
    agent
        .send(json!({"type": "start_share", "source": {"kind": "desktop"}}))
        .await;
    let mut share_id = 0;
    for client in [&mut console, &mut ann, &mut bob, &mut agent] {
        let started = client.until_type("share_started").await;
        assert_eq!(started["share"]["owner"], agent_id, "{started}");
        assert_eq!(started["share"]["source"], json!({"kind": "desktop"}));
        share_id = started["share"]["share"].as_u64().expect("share id");
    }
    let stream = json!({"share": share_id});

    // --- protocol §4.5: the rep views; the owner offers, the viewer answers.
    console
        .send(json!({"type": "view_share", "share": share_id}))
        .await;
    let viewer = agent.until_type("viewer_joined").await;
    assert_eq!(
        viewer,
        json!({"type": "viewer_joined", "share": share_id, "viewer": rep_id})
    );
    let offer_sdp =
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=sendrecv\r\n";
    agent
        .send(json!({"type": "offer", "to": rep_id, "stream": stream, "sdp": offer_sdp}))
        .await;
    let offer = console.until_type("offer").await;
    assert_eq!(
        offer,
        json!({"type": "offer", "from": agent_id, "stream": stream, "sdp": offer_sdp})
    );
    console
        .send(json!({"type": "answer", "to": agent_id, "stream": stream, "sdp": "v=0 answer"}))
        .await;
    let answer = agent.until_type("answer").await;
    assert_eq!(
        answer,
        json!({"type": "answer", "from": rep_id, "stream": stream, "sdp": "v=0 answer"})
    );
    // protocol §4.5: candidates both ways; the agent's carry "sdpMid": "".
    let agent_candidate = json!({"candidate": "candidate:1 1 udp 2130706431 192.0.2.7 50000 typ host",
                                 "sdpMid": "", "sdpMLineIndex": 0});
    agent
        .send(
            json!({"type": "ice_candidate", "to": rep_id, "stream": stream,
                     "candidate": agent_candidate}),
        )
        .await;
    let relayed = console.until_type("ice_candidate").await;
    assert_eq!(
        relayed,
        json!({"type": "ice_candidate", "from": agent_id, "stream": stream,
               "candidate": agent_candidate})
    );
    assert_eq!(relayed["candidate"]["sdpMid"], "");
    let viewer_candidate = json!({"candidate": "candidate:2 1 udp 2130706431 192.0.2.8 50001 typ host",
                                  "sdpMid": "0", "sdpMLineIndex": 0});
    console
        .send(
            json!({"type": "ice_candidate", "to": agent_id, "stream": stream,
                     "candidate": viewer_candidate}),
        )
        .await;
    let relayed = agent.until_type("ice_candidate").await;
    assert_eq!(
        relayed,
        json!({"type": "ice_candidate", "from": rep_id, "stream": stream,
               "candidate": viewer_candidate})
    );

    // protocol §4.5: a repeated view_share is a new viewer_joined (the owner makes a new
    // peer connection), and a customer may view too (R6).
    console
        .send(json!({"type": "view_share", "share": share_id}))
        .await;
    let viewer = agent.until_type("viewer_joined").await;
    assert_eq!(viewer["viewer"], rep_id);
    bob.send(json!({"type": "view_share", "share": share_id}))
        .await;
    let viewer = agent.until_type("viewer_joined").await;
    assert_eq!(viewer["viewer"], bob_id);
    // protocol §4.5: negotiation is relayed only between a share's owner and its viewers.
    ann.send(json!({"type": "offer", "to": rep_id, "stream": stream, "sdp": "v=0"}))
        .await;
    let refused = ann.until_type("error").await;
    assert_eq!(refused["code"], "not_permitted", "{refused}");
    assert_eq!(
        refused["request"], "offer",
        "protocol §5: request names the type"
    );

    // --- protocol §4.8: Ann's connection drops and she comes back with her token.
    drop(ann);
    let lost = console
        .until("Ann lost", |m| about(m, "participant_updated", ann_id))
        .await;
    assert_eq!(lost["participant"]["connected"], false, "{lost}");
    let mut ann = Client::connect(&server, "Ann again", None).await;
    ann.hello("customer").await;
    ann.send(json!({"type": "resume", "token": ann_resume}))
        .await;
    ann.expect("resume_token").await;
    check_ice_servers(&ann.expect("ice_servers").await["ice_servers"]);
    assert_eq!(
        check_joined(&ann.expect("joined").await, "customer"),
        ann_id
    );
    let me = ann.expect("participant_updated").await;
    assert_eq!(me["participant"]["id"], ann_id);
    assert_eq!(me["participant"]["connected"], true);
    // protocol §4.8, §5: a resume token works once.
    let mut again = Client::connect(&server, "replay", None).await;
    again.hello("customer").await;
    again
        .send(json!({"type": "resume", "token": ann_resume}))
        .await;
    let refused = again.expect("error").await;
    assert_eq!(refused["code"], "session_not_found");
    assert_eq!(refused["request"], "resume");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("used already")),
        "{refused}"
    );

    // --- protocol §4.2, §3.2: the rep ends the session; everyone hears why, then the
    // connection closes with 1000.
    console.send(json!({"type": "end_session"})).await;
    for client in [&mut ann, &mut bob, &mut agent, &mut console] {
        let ended = client.until_type("session_ended").await;
        assert_eq!(ended["reason"], "ended_by_rep", "{ended}");
        assert!(ended["message"].is_string(), "{ended}");
        let close = client.closed().await;
        if let Some(close) = close {
            assert_eq!(u16::from(close.code), 1000, "{}: {close:?}", client.who);
        }
    }
}

#[tokio::test]
async fn the_documented_errors_of_a_connection() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "probe", None).await;

    // protocol §4.1: anything but hello first gets not_joined.
    client
        .send(json!({"type": "join_by_number", "number": "123456789", "name": "Eve"}))
        .await;
    let refused = client.expect("error").await;
    assert_eq!(refused["code"], "not_joined");
    assert_eq!(refused["request"], "join_by_number");

    // protocol §3.1: `protocol_version` and `client` are required, `software` is not.
    client
        .send(json!({"type": "hello", "protocol_version": 1}))
        .await;
    let refused = client.expect("error").await;
    assert_eq!(refused["code"], "bad_message", "{refused}");
    assert_eq!(
        refused["request"], "hello",
        "protocol §5: request when the type is known"
    );
    // protocol §5: a client kind the server does not know is `bad_message`.
    client
        .send(json!({"type": "hello", "protocol_version": 1, "client": "robot"}))
        .await;
    let refused = client.expect("error").await;
    assert_eq!(refused["code"], "bad_message", "{refused}");
    client
        .send(json!({"type": "hello", "protocol_version": 1, "client": "customer"}))
        .await;
    check_welcome(&client.expect("welcome").await);

    // protocol §5: a known type with a field of the wrong type names the request.
    client
        .send(json!({"type": "admit", "participant": "seven"}))
        .await;
    let refused = client.expect("error").await;
    assert_eq!(refused["code"], "bad_message");
    assert_eq!(refused["request"], "admit");
    // An unknown type does not echo the type back as `request`.
    client.send(json!({"type": "teleport"})).await;
    let refused = client.expect("error").await;
    assert_eq!(refused["code"], "unknown_type");
    assert!(refused.get("request").is_none(), "{refused}");
    // A wrong join link.
    client
        .send(json!({"type": "join_by_link", "secret": "no-such-secret", "name": "Eve"}))
        .await;
    let refused = client.expect("error").await;
    assert_eq!(refused["code"], "session_not_found");

    // protocol §4.1, §1: a version the server does not speak: error, then close 1002.
    let mut old = Client::connect(&server, "old", None).await;
    old.send(json!({"type": "hello", "protocol_version": 2, "client": "agent"}))
        .await;
    let refused = old.expect("error").await;
    assert_eq!(refused["code"], "unsupported_version");
    assert_eq!(refused["request"], "hello");
    let close = old.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1002);
}
