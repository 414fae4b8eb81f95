//! A real server on port 0 with a fresh data directory, and small HTTP and WebSocket
//! clients that speak to it the way the console and the agent do.

#![allow(dead_code)]

pub mod postgres;
pub mod redis;

/// A free port on 127.0.0.1 for a server a test starts as a process of its own, which
/// binds it a moment later. Picked at random below the kernel's range of ephemeral ports
/// (`ip_local_port_range`), which every `bind(…:0)` and outgoing connection of the tests
/// running alongside draws from: none of those can take it in that moment. (A port
/// from `bind(…:0)` could be handed to another test's server as soon as it is let go.)
pub fn free_port() -> u16 {
    let lowest_ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let below = 10_000..lowest_ephemeral;
    for _ in 0..1000 {
        let port = if below.is_empty() {
            0
        } else {
            rand::random_range(below.clone())
        };
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port))
            && let Ok(addr) = listener.local_addr()
        {
            return addr.port();
        }
    }
    panic!("no free port on 127.0.0.1");
}

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tandem_signaling::{AppState, Config};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const ADMIN_PASSWORD: &str = "admin-password";
pub const REP_PASSWORD: &str = "rep-password";

pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_tests(dir.path());
        adjust(&mut config);
        let (state, _admin) = tandem_signaling::build(config).await.expect("build");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let served = state.clone();
        tokio::spawn(async move {
            tandem_signaling::run(listener, served, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        Self {
            addr,
            base: format!("http://{addr}"),
            state,
            shutdown: Some(tx),
            _dir: dir,
        }
    }

    pub fn anonymous(&self) -> Http {
        Http::at(&self.base)
    }

    pub async fn login(&self, username: &str, password: &str) -> Http {
        Http::login(&self.base, username, password).await
    }

    pub async fn admin(&self) -> Http {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Create a rep through the admin API and log them in.
    pub async fn rep(&self, username: &str, webacd: bool) -> Http {
        create_rep(&self.base, username, webacd).await
    }

    /// An account's id, from the admin API (logins are rate-limited: reuse `admin`).
    pub async fn account_id(&self, admin: &Http, username: &str) -> i64 {
        let reps: Value = admin
            .get("/api/admin/reps")
            .await
            .json()
            .await
            .expect("reps");
        reps.as_array()
            .and_then(|r| r.iter().find(|a| a["username"] == username))
            .and_then(|a| a["id"].as_i64())
            .expect("the account exists")
    }

    pub async fn set_max_customers(&self, max: u32, multiple: bool) {
        let admin = self.admin().await;
        let response = admin
            .put(
                "/api/admin/settings",
                json!({"max_customers_per_rep": max, "allow_multiple_sessions": multiple}),
            )
            .await;
        assert_eq!(response.status(), 200);
    }

    pub async fn ws(&self, http: Option<&Http>) -> Ws {
        ws_at(&self.addr.to_string(), http).await
    }
}

/// The upgrade request of a WebSocket to `addr` (host:port), with the login's cookie if
/// any.
pub fn ws_request(
    addr: &str,
    http: Option<&Http>,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .expect("request");
    if let Some(cookie) = http.and_then(|h| h.cookie.clone()) {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().expect("header"));
    }
    request
}

/// A WebSocket to the server at `addr` (host:port), with the login's cookie if any.
pub async fn ws_at(addr: &str, http: Option<&Http>) -> Ws {
    let (stream, _) = tokio_tungstenite::connect_async(ws_request(addr, http))
        .await
        .expect("websocket connects");
    Ws { stream }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub struct Http {
    pub base: String,
    pub cookie: Option<String>,
    client: reqwest::Client,
}

/// Create a rep through the admin API of the server at `base` and log them in.
pub async fn create_rep(base: &str, username: &str, webacd: bool) -> Http {
    let admin = Http::login(base, "admin", ADMIN_PASSWORD).await;
    let response = admin
        .post(
            "/api/admin/reps",
            json!({"username": username, "display_name": format!("Rep {username}"),
                   "password": REP_PASSWORD, "is_webacd": webacd}),
        )
        .await;
    assert_eq!(response.status(), 201, "create {username}");
    Http::login(base, username, REP_PASSWORD).await
}

impl Http {
    /// Not logged in, to the server at `base`.
    pub fn at(base: &str) -> Http {
        Http {
            base: base.to_owned(),
            cookie: None,
            client: reqwest::Client::new(),
        }
    }

    /// Logged in as `username`.
    pub async fn login(base: &str, username: &str, password: &str) -> Http {
        Http::login_with(reqwest::Client::new(), base, username, password).await
    }

    /// Logged in as `username`, through `client` (one that trusts a test CA, say).
    pub async fn login_with(
        client: reqwest::Client,
        base: &str,
        username: &str,
        password: &str,
    ) -> Http {
        let mut http = Http {
            base: base.to_owned(),
            cookie: None,
            client,
        };
        let response = http
            .post(
                "/api/login",
                json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(response.status(), 200, "login as {username}");
        let cookie = response
            .headers()
            .get("set-cookie")
            .expect("a login cookie")
            .to_str()
            .expect("ascii")
            .to_owned();
        http.cookie = Some(cookie.split(';').next().expect("pair").to_owned());
        http
    }

    fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(c) => request.header("cookie", c),
            None => request,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.with_cookie(self.client.get(format!("{}{path}", self.base)))
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.with_cookie(self.client.post(format!("{}{path}", self.base)).json(&body))
            .send()
            .await
            .expect("request")
    }

    pub async fn put(&self, path: &str, body: Value) -> reqwest::Response {
        self.with_cookie(self.client.put(format!("{}{path}", self.base)).json(&body))
            .send()
            .await
            .expect("request")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.with_cookie(self.client.delete(format!("{}{path}", self.base)))
            .send()
            .await
            .expect("request")
    }

    pub async fn patch(&self, path: &str, body: Value) -> reqwest::Response {
        self.with_cookie(
            self.client
                .patch(format!("{}{path}", self.base))
                .json(&body),
        )
        .send()
        .await
        .expect("request")
    }

    /// Start a session (R1); returns (number digits, link secret).
    pub async fn start_session(&self) -> (String, String) {
        let response = self
            .post("/api/sessions", json!({"email_invite": false}))
            .await;
        assert_eq!(response.status(), 201, "start session");
        let body: Value = response.json().await.expect("json");
        let link = body["link"].as_str().expect("link");
        let secret = link.rsplit('/').next().expect("secret").to_owned();
        (body["number"].as_str().expect("number").to_owned(), secret)
    }
}

/// A WebSocket to the server: plain, or (in the HTTPS tests) over a TLS stream of the
/// test's own.
pub struct Ws<S = MaybeTlsStream<TcpStream>> {
    pub stream: WebSocketStream<S>,
}

const WAIT: Duration = Duration::from_secs(10);

impl<S: AsyncRead + AsyncWrite + Unpin> Ws<S> {
    pub async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.expect("send");
    }

    /// The next JSON message; panics on close or after the wait.
    pub async fn recv(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("a message in time")
                .expect("the connection is open")
                .expect("a frame");
            match frame {
                Message::Text(text) => return serde_json::from_str(&text).expect("json"),
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Skip messages until one of this type arrives.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let message = self.recv().await;
            if message["type"] == kind {
                return message;
            }
        }
    }

    /// Skip messages until one matches.
    pub async fn recv_until(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let message = self.recv().await;
            if wanted(&message) {
                return message;
            }
        }
    }

    pub async fn hello(&mut self, client: &str) {
        self.send(json!({"type": "hello", "protocol_version": 1, "client": client}))
            .await;
        let welcome = self.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
    }

    /// The close frame the server sends, skipping messages before it.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            match tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("close in time")
            {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                Some(Err(tungstenite::Error::ConnectionClosed)) | None => return None,
                Some(Err(e)) => panic!("error instead of a close: {e}"),
            }
        }
    }

    /// The messages before the server's close frame, and the frame.
    pub async fn until_closed(&mut self) -> (Vec<Value>, Option<CloseFrame>) {
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("close in time")
            {
                Some(Ok(Message::Close(frame))) => return (seen, frame),
                Some(Ok(Message::Text(text))) => {
                    seen.push(serde_json::from_str(&text).expect("json"));
                }
                Some(Ok(_)) => continue,
                Some(Err(tungstenite::Error::ConnectionClosed)) | None => return (seen, None),
                Some(Err(e)) => panic!("error instead of a close: {e}"),
            }
        }
    }

    /// Close the way a browser does when its page is closed (R2).
    pub async fn close_page(mut self) {
        self.stream
            .close(Some(CloseFrame {
                code: tungstenite::protocol::frame::coding::CloseCode::Away,
                reason: "page closed".into(),
            }))
            .await
            .expect("close");
    }

    /// Drop the TCP connection without a close frame: a lost connection (R2).
    pub fn drop_connection(self) {
        drop(self.stream);
    }
}

/// A customer page joined by link, after hello; returns the socket and its participant id.
pub async fn customer_by_link(server: &TestServer, secret: &str, name: &str) -> (Ws, u64) {
    let mut ws = server.ws(None).await;
    ws.hello("customer").await;
    ws.send(json!({"type": "join_by_link", "secret": secret, "name": name}))
        .await;
    let joined = ws.recv_type("joined").await;
    let you = joined["you"].as_u64().expect("id");
    (ws, you)
}

/// The rep's session page, opened after starting the session.
pub async fn rep_page(server: &TestServer, rep: &Http, number: &str) -> Ws {
    let mut ws = server.ws(Some(rep)).await;
    ws.hello("console").await;
    ws.send(json!({"type": "open_session", "number": number}))
        .await;
    let joined = ws.recv_type("joined").await;
    assert_eq!(joined["role"], "primary_rep");
    ws
}

/// Run the real `tandem-signaling` binary with these arguments (and no configuration from
/// the environment); its exit code and everything it printed.
pub async fn run_signaling(args: Vec<std::ffi::OsString>) -> (Option<i32>, String) {
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tandem-signaling"))
            .args(args)
            .env_remove("TANDEM_CONFIG")
            .env_remove("TANDEM_DATA_DIR")
            .output()
            .expect("run tandem-signaling")
    })
    .await
    .expect("join");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

/// A connection to `server` from the loopback address `from` that asks `/healthz` with
/// `headers` (`name: value` lines) and is kept open: the connection and the start of the
/// answer (`HTTP/1.1 200 …` when it was taken, `HTTP/1.1 429 …` when a cap refused it).
pub async fn healthz_kept_open(
    server: std::net::SocketAddr,
    from: std::net::IpAddr,
    headers: &str,
) -> (TcpStream, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::new(from, 0))
        .expect("bind");
    let mut stream = socket.connect(server).await.expect("tcp");
    let request = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = vec![0; 256];
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut answer))
        .await
        .expect("answered in time")
        .expect("read");
    (
        stream,
        String::from_utf8_lossy(&answer[..read]).into_owned(),
    )
}
