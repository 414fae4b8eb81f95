//! A restart does not end sessions (docs/rules.md, "Restarts"): the real `tandem-signaling`
//! binary is killed with SIGKILL, or stopped with SIGTERM, in the middle of a session, and
//! started again on the same port and data directory. Rep, customer and agent come back
//! with their resume tokens to the same session: its people, share and control (C1) as
//! they were, chat going on, and the audit log (C3) complete.

use crate::common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{ADMIN_PASSWORD, Http, Ws, create_rep, free_port, run_signaling, ws_at};
use serde_json::{Value, json};

/// A generous deadline for a loaded machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// The server binary, on a fixed port, with its data in `dir`.
struct Process {
    child: Child,
    port: u16,
}

impl Process {
    async fn start(dir: &Path, port: u16) -> Process {
        Self::start_with(dir, port, &[]).await
    }

    async fn start_with(dir: &Path, port: u16, extra: &[&str]) -> Process {
        let process = Self::spawn(dir, port, extra);
        process
            .answering(&reqwest::Client::new(), &process.base())
            .await;
        process
    }

    fn spawn(dir: &Path, port: u16, extra: &[&str]) -> Process {
        let child = Command::new(env!("CARGO_BIN_EXE_tandem-signaling"))
            .args(extra)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--no-embedded-turn", "--admin-password", ADMIN_PASSWORD])
            .args(["--metrics-token", "metrics-token"])
            .arg("--data-dir")
            .arg(dir)
            .env_remove("TANDEM_CONFIG")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .spawn()
            .expect("start tandem-signaling");
        Process { child, port }
    }

    /// Wait until the server, at `base` through `client`, serves or stands by for another
    /// server (with --postgres, a server waits a moment before it serves).
    async fn answering(&self, client: &reqwest::Client, base: &str) {
        let ready = format!("{base}/readyz");
        let started = tokio::time::Instant::now();
        loop {
            if let Ok(r) = client.get(&ready).send().await {
                let ok = r.status().is_success();
                if ok
                    || r.text()
                        .await
                        .unwrap_or_default()
                        .contains("serves this site")
                {
                    return;
                }
            }
            assert!(started.elapsed() < DEADLINE, "the server never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&mut self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Wait for the process to end; its exit status.
    async fn ended(&mut self) -> std::process::ExitStatus {
        let started = tokio::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(started.elapsed() < DEADLINE, "the server did not stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Where people reach the site: a server, or a proxy in front of several.
trait Site {
    fn port(&self) -> u16;

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }
}

impl Site for Process {
    fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tandem-signaling end-sessions` on this data directory: its exit code and output.
async fn end_sessions(dir: &Path) -> (Option<i32>, String) {
    run_signaling(vec!["end-sessions".into(), "--data-dir".into(), dir.into()]).await
}

/// One participant's connection and its newest resume token.
struct Person {
    ws: Ws,
    token: String,
    id: u64,
}

impl Person {
    /// A new connection that says hello as `kind`, sends `first`, and is `joined`.
    async fn join(addr: &str, http: Option<&Http>, kind: &str, first: Value) -> Person {
        let mut ws = ws_at(addr, http).await;
        ws.hello(kind).await;
        ws.send(first).await;
        let mut person = Person {
            ws,
            token: String::new(),
            id: 0,
        };
        person.id = person.expect("joined").await["you"].as_u64().expect("id");
        person
    }

    /// Read until `wanted`, keeping the newest resume token seen on the way.
    async fn until(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let found = tokio::time::timeout(DEADLINE, async {
            loop {
                let message = self.ws.recv().await;
                if message["type"] == "resume_token" {
                    self.token = message["token"].as_str().expect("token").to_owned();
                }
                if wanted(&message) {
                    return message;
                }
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no {what} in time"))
    }

    async fn expect(&mut self, kind: &str) -> Value {
        self.until(kind, |m| m["type"] == kind).await
    }

    /// Come back to the restarted server with the resume token; the `joined` it gets.
    async fn resume(&mut self, addr: &str, http: Option<&Http>, kind: &str) -> Value {
        self.resume_on(ws_at(addr, http).await, kind).await
    }

    /// Resume on the new connection `ws`; the `joined` it gets.
    async fn resume_on(&mut self, mut ws: Ws, kind: &str) -> Value {
        ws.hello(kind).await;
        ws.send(json!({"type": "resume", "token": self.token}))
            .await;
        self.ws = ws;
        let joined = self
            .until("joined after the restart", |m| {
                m["type"] == "joined" || m["type"] == "error"
            })
            .await;
        assert_eq!(joined["type"], "joined", "{kind} came back: {joined}");
        assert_eq!(joined["you"], self.id, "the same seat");
        joined
    }
}

/// Everyone in: the rep's page, a customer by link, and the customer's agent sharing
/// its desktop, with control granted to the rep (C1) and a chat line each way.
struct Scene {
    rep_http: Http,
    number: String,
    rep: Person,
    ann: Person,
    agent: Person,
    share: u64,
}

async fn scene(process: &impl Site) -> Scene {
    let base = process.base();
    let addr = process.addr();
    let rep_http = create_rep(&base, "rita", false).await;
    let (number, secret) = rep_http.start_session().await;

    let mut rep = Person::join(
        &addr,
        Some(&rep_http),
        "console",
        json!({"type": "open_session", "number": number}),
    )
    .await;
    let mut ann = Person::join(
        &addr,
        None,
        "customer",
        json!({"type": "join_by_link", "secret": secret, "name": "Ann"}),
    )
    .await;
    let agent_token = ann.expect("agent_token").await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let mut agent = Person::join(
        &addr,
        None,
        "agent",
        json!({"type": "attach_agent", "token": agent_token}),
    )
    .await;
    agent
        .ws
        .send(json!({"type": "start_share", "source": {"kind": "desktop"}}))
        .await;
    let started = rep.expect("share_started").await;
    let share = started["share"]["share"].as_u64().expect("share id");
    rep.ws
        .send(json!({"type": "view_share", "share": share}))
        .await;
    agent.expect("viewer_joined").await;

    // C1: the rep asks, the customer allows at the agent.
    grant_control(&mut rep, &mut agent).await;

    rep.ws
        .send(json!({"type": "chat", "text": "before the restart"}))
        .await;
    ann.until("the rep's chat", |m| {
        m["type"] == "chat" && m["text"] == "before the restart"
    })
    .await;
    // Everyone holds their newest resume token by now (each was sent before `joined`).
    for (who, person) in [("rep", &rep), ("ann", &ann), ("agent", &agent)] {
        assert!(!person.token.is_empty(), "{who} has a resume token");
    }
    Scene {
        rep_http,
        number,
        rep,
        ann,
        agent,
        share,
    }
}

/// C1: `rep` asks for control; the customer allows at `agent`; `rep` holds it.
async fn grant_control(rep: &mut Person, agent: &mut Person) {
    rep.ws.send(json!({"type": "request_control"})).await;
    agent.expect("control_requested").await;
    agent
        .ws
        .send(json!({"type": "control_consent", "granted": true}))
        .await;
    let granted = rep
        .until("control granted", |m| {
            m["type"] == "control_changed" && !m["control"].is_null()
        })
        .await;
    assert_eq!(granted["control"]["holder"], rep.id, "{granted}");
}

/// After a restart, everyone comes back to the session as it was.
async fn everyone_comes_back(process: &impl Site, scene: &mut Scene) {
    let addr = process.addr();
    // The same port: the login cookie is still good (the accounts are in the database).
    let joined = scene
        .rep
        .resume(&addr, Some(&scene.rep_http), "console")
        .await;
    assert_eq!(joined["number"], scene.number, "the same session");
    assert_eq!(joined["role"], "primary_rep");
    // C1: control is still the rep's, on the same agent; the share is still there.
    assert_eq!(joined["control"]["holder"], scene.rep.id, "{joined}");
    assert_eq!(joined["control"]["agent"], scene.agent.id, "{joined}");
    let share = &joined["shares"][0];
    assert_eq!(share["share"], scene.share, "{joined}");
    assert_eq!(share["owner"], scene.agent.id, "{joined}");
    let names: Vec<&str> = joined["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(names.contains(&"Ann"), "{names:?}");

    let joined = scene.ann.resume(&addr, None, "customer").await;
    assert_eq!(joined["role"], "customer");
    let joined = scene.agent.resume(&addr, None, "agent").await;
    assert_eq!(joined["role"], "agent");
    assert_eq!(joined["control"]["holder"], scene.rep.id);

    chat_goes_on(scene, "after the restart").await;
}

/// Ann's chat line `text` reaches the rep.
async fn chat_goes_on(scene: &mut Scene, text: &str) {
    scene
        .ann
        .ws
        .send(json!({"type": "chat", "text": text}))
        .await;
    scene
        .rep
        .until(&format!("Ann's chat {text}"), |m| {
            m["type"] == "chat" && m["text"] == text
        })
        .await;
}

/// The session's audit actions, oldest first (C3).
async fn audit_actions(base: &str, number: &str) -> Vec<String> {
    let admin = Http::login(base, "admin", ADMIN_PASSWORD).await;
    let entries: Value = admin
        .get(&format!("/api/admin/audit?session={number}&limit=1000"))
        .await
        .json()
        .await
        .expect("audit");
    let mut actions: Vec<String> = entries
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect();
    actions.reverse();
    actions
}

#[tokio::test]
async fn a_session_carries_on_after_the_server_is_killed_and_started_again() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let mut first = Process::start(dir.path(), port).await;
    let mut scene = scene(&first).await;
    let before = audit_actions(&first.base(), &scene.number).await;
    assert!(before.contains(&"control_granted".to_owned()), "{before:?}");

    first.signal("KILL");
    first.ended().await;
    let second = Process::start(dir.path(), port).await;
    everyone_comes_back(&second, &mut scene).await;

    // C3: nothing from before is lost, and the comings back are recorded after it.
    let after = audit_actions(&second.base(), &scene.number).await;
    assert_eq!(
        after[..before.len()],
        before[..],
        "the audit before the kill is kept"
    );
    let back = after[before.len()..]
        .iter()
        .filter(|a| *a == "reconnected")
        .count();
    assert_eq!(back, 3, "rep, customer and agent reconnected: {after:?}");
    assert!(!after.contains(&"ended".to_owned()), "{after:?}");
    let live: Value = scene
        .rep_http
        .get("/api/sessions")
        .await
        .json()
        .await
        .expect("sessions");
    assert_eq!(
        live[0]["number"], scene.number,
        "the dashboard lists it: {live}"
    );
    // What the synchronous saves cost here (for the notes; not a limit).
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", second.base()))
        .bearer_auth("metrics-token")
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default();
    for line in metrics.lines() {
        if line.starts_with("tandem_store_seconds_") && line.contains("live_session_save") {
            eprintln!("restart: {line}");
        }
    }
}

/// The same with PostgreSQL keeping accounts, history and the audit log (`--postgres`):
/// nothing lands in a SQLite file, the session carries on after SIGKILL, and the audit
/// chain in PostgreSQL verifies with `audit verify --postgres`.
#[tokio::test]
async fn with_postgresql_a_session_carries_on_after_the_server_is_killed() {
    let db = tokio::task::spawn_blocking(common::postgres::Postgres::start)
        .await
        .expect("start task")
        .expect("start PostgreSQL");
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let postgres = ["--postgres", db.url.as_str()];
    let mut first = Process::start_with(dir.path(), port, &postgres).await;
    let mut scene = scene(&first).await;
    let before = audit_actions(&first.base(), &scene.number).await;
    assert!(before.contains(&"control_granted".to_owned()), "{before:?}");
    assert!(
        !dir.path().join("tandem.db").exists(),
        "with --postgres nothing is kept in SQLite"
    );

    first.signal("KILL");
    first.ended().await;
    let second = Process::start_with(dir.path(), port, &postgres).await;
    everyone_comes_back(&second, &mut scene).await;
    let after = audit_actions(&second.base(), &scene.number).await;
    assert_eq!(after[..before.len()], before[..], "{after:?}");
    assert_eq!(
        after[before.len()..]
            .iter()
            .filter(|a| *a == "reconnected")
            .count(),
        3,
        "{after:?}"
    );

    // The records are PostgreSQL's, read around the server.
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit WHERE session = $1")
        .bind(&scene.number)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(
        kept as usize,
        after.len(),
        "every audit record is in PostgreSQL"
    );
    let (code, text) = run_signaling(vec![
        "--postgres".into(),
        db.url.clone().into(),
        "audit".into(),
        "verify".into(),
        "--data-dir".into(),
        dir.path().into(),
    ])
    .await;
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("intact"), "{text}");
    assert!(
        text.contains(&format!("postgres://tandem@127.0.0.1:{}/tandem", db.port)),
        "names the database it checked: {text}"
    );
}

/// A customer who got their agent (the download carries the token) before the server
/// died starts it after the restart: it attaches, once. The token is kept on disk only
/// as a hash.
#[tokio::test]
async fn an_agent_downloaded_before_a_restart_attaches_after_it() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    // Any file serves as the agent binary here: what matters is whether the token opens it.
    let binary = dir.path().join("tandem-agent");
    std::fs::write(&binary, b"not really an agent").expect("binary");
    let binary = binary.to_str().expect("utf-8").to_owned();
    let agent_binary = ["--agent-binary", binary.as_str()];
    let mut first = Process::start_with(dir.path(), port, &agent_binary).await;
    let base = first.base();
    let addr = first.addr();
    let rep_http = create_rep(&base, "rita", false).await;
    let (number, secret) = rep_http.start_session().await;
    let _rep = Person::join(
        &addr,
        Some(&rep_http),
        "console",
        json!({"type": "open_session", "number": number}),
    )
    .await;
    let mut bea = Person::join(
        &addr,
        None,
        "customer",
        json!({"type": "join_by_link", "secret": secret, "name": "Bea"}),
    )
    .await;
    let token = bea.expect("agent_token").await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    // The download works before the restart.
    let download = format!("{base}/download/tandem-agent?token={token}");
    let before = reqwest::get(&download).await.expect("download").status();
    assert_eq!(before, 200);

    first.signal("KILL");
    first.ended().await;
    // The journal and its write-ahead log, where the newest rows are after a kill.
    let mut on_disk = 0;
    for entry in std::fs::read_dir(dir.path()).expect("data dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("live.db") {
            let bytes = std::fs::read(&path).expect("read");
            on_disk += bytes.len();
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "the agent token is not in {name} in clear"
            );
        }
    }
    assert!(on_disk > 0, "the journal is on disk");
    let second = Process::start_with(dir.path(), port, &agent_binary).await;
    let after = reqwest::get(&download).await.expect("download").status();
    assert_eq!(after, 200, "the download still works after the restart");
    let agent = Person::join(
        &second.addr(),
        None,
        "agent",
        json!({"type": "attach_agent", "token": token}),
    )
    .await;
    assert!(agent.id > 0);

    // Used up, also across another restart.
    drop(agent);
    let mut second = second;
    second.signal("KILL");
    second.ended().await;
    let third = Process::start_with(dir.path(), port, &agent_binary).await;
    let gone = reqwest::get(&download).await.expect("download").status();
    assert_eq!(gone, 410, "a used token downloads nothing");
    let mut ws = ws_at(&third.addr(), None).await;
    ws.hello("agent").await;
    ws.send(json!({"type": "attach_agent", "token": token}))
        .await;
    let refused = ws.recv().await;
    assert_eq!(refused["type"], "error", "{refused}");
}

/// C3 across a crash: an audit record is held in live.db before what it records goes out,
/// so one the store could not take yet (here: tandem.db locked by someone else) is not
/// lost when the server is killed; the next start stores it, in order, chain intact.
#[tokio::test]
async fn an_audit_record_the_store_had_not_taken_before_a_kill_is_kept() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let mut first = Process::start(dir.path(), port).await;
    let mut scene = scene(&first).await;
    let before = audit_actions(&first.base(), &scene.number).await;

    // Someone holds the store's file: the server's writes to it wait, then fail.
    let blocker = StoreLock::take(dir.path()).await;
    // An audited change: the rep takes control back (C1).
    scene.rep.ws.send(json!({"type": "release_control"})).await;
    scene
        .rep
        .until("control ended", |m| {
            m["type"] == "control_changed" && m["control"].is_null()
        })
        .await;
    // The record is in the outbox already (it was written before the message went out).
    let held = outbox_rows(&dir.path().join("live.db")).await;
    assert!(held > 0, "the record waits in live.db's outbox");
    first.signal("KILL");
    first.ended().await;
    blocker.release().await;

    let second = Process::start(dir.path(), port).await;
    let after = audit_actions(&second.base(), &scene.number).await;
    assert_eq!(after[..before.len()], before[..], "{after:?}");
    assert_eq!(
        after.get(before.len()).map(String::as_str),
        Some("control_ended"),
        "the held record, stored after the restart: {after:?}"
    );
    let admin = Http::login(&second.base(), "admin", ADMIN_PASSWORD).await;
    let chain: Value = admin
        .get("/api/admin/audit/verify")
        .await
        .json()
        .await
        .expect("verify");
    assert_eq!(chain["intact"], true, "{chain}");
    assert_eq!(
        outbox_rows(&dir.path().join("live.db")).await,
        0,
        "stored, so no longer held"
    );
}

/// C3 across a crash, for the site's own records: a refused login is recorded while the
/// store refuses (tandem.db locked by someone else); the record waits in live.db's outbox,
/// and the server killed meanwhile stores it at its next start.
#[tokio::test]
async fn a_site_audit_record_the_store_had_not_taken_before_a_kill_is_kept() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let mut first = Process::start(dir.path(), port).await;
    let live_db = dir.path().join("live.db");
    let held_before = outbox_rows(&live_db).await;
    let blocker = StoreLock::take(dir.path()).await;
    let refused = reqwest::Client::new()
        .post(format!("{}/api/login", first.base()))
        .json(&json!({"username": "admin", "password": "not the password"}))
        .send()
        .await
        .expect("login");
    assert_eq!(refused.status(), 401);
    let started = tokio::time::Instant::now();
    while outbox_rows(&live_db).await <= held_before {
        assert!(
            started.elapsed() < DEADLINE,
            "the refused login's record never waited in live.db's outbox"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.signal("KILL");
    first.ended().await;
    blocker.release().await;

    let second = Process::start(dir.path(), port).await;
    let admin = Http::login(&second.base(), "admin", ADMIN_PASSWORD).await;
    let refusals = audit_records(&admin, "login_refused").await;
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0]["record"]["reason"], "wrong_password");
    assert_eq!(refusals[0]["session"], "", "a record of the site");
    let chain: Value = admin
        .get("/api/admin/audit/verify")
        .await
        .json()
        .await
        .expect("verify");
    assert_eq!(chain["intact"], true, "{chain}");
    assert_eq!(outbox_rows(&live_db).await, 0, "stored, so no longer held");
}

/// C3 while running: a store that refuses for a while (tandem.db locked by someone else)
/// gets every record once it takes them again, in the order they happened, none lost.
#[tokio::test]
async fn records_wait_in_order_while_the_store_refuses_them() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let first = Process::start(dir.path(), port).await;
    let mut scene = scene(&first).await;
    let before = audit_actions(&first.base(), &scene.number).await;
    let appends_before = audit_appends_tried(&first.base()).await;
    let blocker = StoreLock::take(dir.path()).await;
    // Two audited changes while the store refuses: control ends, then is asked again.
    scene.rep.ws.send(json!({"type": "release_control"})).await;
    scene
        .rep
        .until("control ended", |m| {
            m["type"] == "control_changed" && m["control"].is_null()
        })
        .await;
    // The customer's consent still stands: asking again gives control back at once.
    scene.rep.ws.send(json!({"type": "request_control"})).await;
    scene
        .rep
        .until("control again", |m| {
            m["type"] == "control_changed" && !m["control"].is_null()
        })
        .await;
    // The store has refused at least once (a try ends only by failing while the file
    // is locked, after the store's own 5 s wait) before it is let go.
    let started = tokio::time::Instant::now();
    while audit_appends_tried(&first.base()).await <= appends_before {
        assert!(started.elapsed() < DEADLINE, "the store was never tried");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    blocker.release().await;

    let started = tokio::time::Instant::now();
    let after = loop {
        let after = audit_actions(&first.base(), &scene.number).await;
        if after.len() >= before.len() + 2 {
            break after;
        }
        assert!(started.elapsed() < DEADLINE, "not stored: {after:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(after[..before.len()], before[..], "{after:?}");
    let new = &after[before.len()..];
    assert_eq!(new[0], "control_ended", "the first change first: {after:?}");
    assert!(
        new[1..].contains(&"control_granted".to_owned()),
        "then the second: {after:?}"
    );
}

/// The audit log's records of `action` (the newest 1000 looked at), newest first.
async fn audit_records(admin: &Http, action: &str) -> Vec<Value> {
    let entries: Value = admin
        .get("/api/admin/audit?limit=1000")
        .await
        .json()
        .await
        .expect("audit");
    entries
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

/// Someone else holding the server's tandem.db: its writes wait, then fail.
struct StoreLock(sqlx::SqliteConnection);

impl StoreLock {
    async fn take(dir: &Path) -> StoreLock {
        use sqlx::Connection;
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.join("tandem.db"));
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("connect");
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut conn)
            .await
            .expect("lock the store");
        StoreLock(conn)
    }

    async fn release(mut self) {
        use sqlx::Connection;
        sqlx::query("ROLLBACK")
            .execute(&mut self.0)
            .await
            .expect("unlock");
        self.0.close().await.expect("close");
    }
}

/// How many audit appends the server has tried, failed ones included (its
/// `tandem_store_seconds` histogram counts every call).
async fn audit_appends_tried(base: &str) -> f64 {
    let metrics = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth("metrics-token")
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    metrics
        .lines()
        .find(|l| l.starts_with("tandem_store_seconds_count{") && l.contains("op=\"append_audit\""))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Rows in live.db's audit outbox, read beside the running server.
async fn outbox_rows(path: &Path) -> i64 {
    use sqlx::Connection;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("open live.db");
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_outbox")
        .fetch_one(&mut conn)
        .await
        .expect("count")
}

#[tokio::test]
async fn sigterm_keeps_sessions_and_end_sessions_ends_them_for_good() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let mut first = Process::start(dir.path(), port).await;
    let mut scene = scene(&first).await;

    // The admin's command refuses to touch a running server's sessions.
    let (code, said) = end_sessions(dir.path()).await;
    assert_ne!(code, Some(0), "{said}");
    assert!(said.contains("another tandem-signaling is using"), "{said}");

    // A rep's page that joined no session (as a WebACD dashboard before `dashboard`).
    let mut idle = ws_at(&first.addr(), Some(&scene.rep_http)).await;
    idle.hello("console").await;

    // SIGTERM, as a service manager stops it for an upgrade: every client is told the
    // server restarts (1012) and nobody leaves the session.
    first.signal("TERM");
    let close = scene.ann.ws.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1012, "{close:?}");
    let close = idle
        .closed()
        .await
        .expect("a close frame for the page in no session");
    assert_eq!(u16::from(close.code), 1012, "{close:?}");
    assert!(first.ended().await.success(), "a clean stop");
    let second = Process::start(dir.path(), port).await;
    everyone_comes_back(&second, &mut scene).await;
    let after = audit_actions(&second.base(), &scene.number).await;
    assert!(
        !after.iter().any(|a| a == "left" || a == "ended"),
        "{after:?}"
    );

    // The admin's command ends it for good: the session ends, with its audit record,
    // and nobody can come back.
    drop(second);
    let (code, said) = end_sessions(dir.path()).await;
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("Ended 1 live session"), "{said}");
    let third = Process::start(dir.path(), port).await;
    let mut ws = ws_at(&third.addr(), None).await;
    ws.hello("customer").await;
    ws.send(json!({"type": "resume", "token": scene.ann.token}))
        .await;
    let refused = ws.recv_type("error").await;
    assert_eq!(refused["code"], "session_not_found", "{refused}");
    let after = audit_actions(&third.base(), &scene.number).await;
    assert_eq!(after.last().map(String::as_str), Some("ended"), "{after:?}");
    let live: Value = scene
        .rep_http
        .get("/api/sessions")
        .await
        .json()
        .await
        .expect("sessions");
    assert_eq!(live, json!([]), "nothing live");
}

#[tokio::test]
async fn an_admin_ends_every_live_session_of_a_running_server() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let process = Process::start(dir.path(), port).await;
    let mut scene = scene(&process).await;
    let admin = Http::login(&process.base(), "admin", ADMIN_PASSWORD).await;
    let unconfirmed = admin.post("/api/admin/sessions/end-all", json!({})).await;
    assert_eq!(unconfirmed.status(), 400, "a request must say it means it");
    let unconfirmed = admin
        .post("/api/admin/sessions/end-all", json!({"confirm": false}))
        .await;
    assert_eq!(unconfirmed.status(), 400);
    let response = admin
        .post("/api/admin/sessions/end-all", json!({"confirm": true}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["ended"], 1, "{body}");
    let ended = scene.ann.expect("session_ended").await;
    assert_eq!(ended["reason"], "terminated", "{ended}");
    // The audit says which administrator ended it.
    let entries: Value = admin
        .get(&format!(
            "/api/admin/audit?session={}&limit=5",
            scene.number
        ))
        .await
        .json()
        .await
        .expect("audit");
    let ended = entries
        .as_array()
        .and_then(|e| e.iter().find(|e| e["action"] == "ended"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(ended["record"]["admin"], "admin", "{entries}");
    assert_eq!(ended["record"]["reason"], "terminated", "{ended}");
    // A rep may not.
    let refused = scene
        .rep_http
        .post("/api/admin/sessions/end-all", json!({"confirm": true}))
        .await;
    assert_eq!(refused.status(), 403);
}

/// R2 across a restart: Ann's connection dropped just before the server died, and her
/// grace period ran out while it was away. Nobody could come back then, so she gets the
/// whole grace period again from the new start, and comes back. The agent, whose
/// connection dropped then too, never comes back: its grace period, kept on disk, is set
/// again at the start and takes it out when it runs out, not before and not never.
#[tokio::test]
async fn someone_away_when_the_server_died_gets_the_whole_grace_after_the_restart() {
    const GRACE_SECS: u64 = 5;
    let grace = ["--reconnect-grace", "5"];
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let mut first = Process::start_with(dir.path(), port, &grace).await;
    let mut scene = scene(&first).await;
    let Person { ws, token, id } = scene.ann;
    let agent = scene.agent.id;
    for (who, ws) in [(id, ws), (agent, scene.agent.ws)] {
        ws.drop_connection();
        scene
            .rep
            .until("the connection is lost", |m| {
                m["type"] == "participant_updated"
                    && m["participant"]["id"] == who
                    && m["participant"]["connected"] == false
            })
            .await;
    }
    let lost = tokio::time::Instant::now();
    first.signal("KILL");
    first.ended().await;
    // Her grace period runs out while the server is away.
    tokio::time::sleep_until(lost + Duration::from_secs(GRACE_SECS + 1)).await;
    let starting = tokio::time::Instant::now();
    let second = Process::start_with(dir.path(), port, &grace).await;
    let mut ann = Person {
        ws: ws_at(&second.addr(), None).await,
        token,
        id,
    };
    let joined = ann.resume(&second.addr(), None, "customer").await;
    assert_eq!(joined["role"], "customer");

    // The rep comes back too and sees the agent, which does not, taken out (R2) once the
    // grace period counted from the new start has run out.
    let joined = scene
        .rep
        .resume(&second.addr(), Some(&scene.rep_http), "console")
        .await;
    let present = |joined: &serde_json::Value| {
        joined["participants"]
            .as_array()
            .expect("participants")
            .iter()
            .any(|p| p["id"] == agent)
    };
    assert!(present(&joined), "the agent still has its seat: {joined}");
    let left = scene
        .rep
        .until("the agent taken out", |m| {
            m["type"] == "participant_left" && m["participant"] == agent
        })
        .await;
    assert_eq!(left["reason"], "connection_lost", "{left}");
    let waited = starting.elapsed();
    assert!(
        waited >= Duration::from_secs(GRACE_SECS),
        "taken out {waited:?} after the restart began, before its {GRACE_SECS} s grace"
    );
}

/// protocol.md §4.8: a customer whose join was carried out just before the server was
/// killed, and who never heard the answer, sends the same join with its key to the
/// restarted server and is back in the place it made (the key is in the journal), not in
/// the session twice.
#[tokio::test]
async fn a_join_cut_off_by_a_kill_comes_back_to_its_place_with_its_key_after_the_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let mut first = Process::start(dir.path(), port).await;
    let rep_http = create_rep(&first.base(), "rita", false).await;
    let (number, secret) = rep_http.start_session().await;
    let mut rep = Person::join(
        &first.addr(),
        Some(&rep_http),
        "console",
        json!({"type": "open_session", "number": number}),
    )
    .await;
    let join = json!({"type": "join_by_link", "secret": secret, "name": "Bo",
        "join_key": "0123456789abcdef0123456789abcdef"});
    let mut bo = ws_at(&first.addr(), None).await;
    bo.hello("customer").await;
    bo.send(join.clone()).await;
    let joined = rep
        .until("Bo in", |m| {
            m["type"] == "participant_joined" && m["participant"]["name"] == "Bo"
        })
        .await;
    let bo_id = joined["participant"]["id"].clone();
    first.signal("KILL");
    first.ended().await;
    drop(bo);

    let second = Process::start(dir.path(), port).await;
    rep.resume(&second.addr(), Some(&rep_http), "console").await;
    let mut again = ws_at(&second.addr(), None).await;
    again.hello("customer").await;
    again.send(join).await;
    let answer = again
        .recv_until(|m| m["type"] == "joined" || m["type"] == "error")
        .await;
    assert_eq!(answer["type"], "joined", "{answer}");
    assert_eq!(answer["you"], bo_id, "Bo's own place: {answer}");
    let bos = answer["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter(|p| p["name"] == "Bo")
        .count();
    assert_eq!(bos, 1, "Bo once: {answer}");
}

/// `/readyz` of `process`: its status and text.
async fn readyz(process: &impl Site) -> (u16, String) {
    let response = reqwest::get(format!("{}/readyz", process.base()))
        .await
        .expect("readyz");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// A fresh PostgreSQL, and a data directory and a port for each of two servers.
async fn one_database_two_servers() -> (common::postgres::Postgres, [tempfile::TempDir; 2], [u16; 2])
{
    let db = tokio::task::spawn_blocking(common::postgres::Postgres::start)
        .await
        .expect("start task")
        .expect("start PostgreSQL");
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    (db, dirs, [free_port(), free_port()])
}

/// Wait until `process` says, on `/readyz`, that it stands by for the server on `port`,
/// forwarding everyone there (so it is ready too).
async fn stands_by_for(process: &impl Site, port: u16) {
    let started = tokio::time::Instant::now();
    loop {
        let (status, text) = readyz(process).await;
        if status == 200
            && text.contains("standby")
            && text.contains(&format!(
                "forwarding to 127.0.0.1:{port}, which serves this site"
            ))
        {
            return;
        }
        assert!(
            status == 503 || text.starts_with("ready: standby"),
            "a standby is ready only while it forwards: {status} {text}"
        );
        assert!(
            started.elapsed() < DEADLINE,
            "the standby never named the server that serves: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until `/readyz` of `process` says `ready`, serving itself (not forwarding); how
/// long that took.
async fn ready(process: &impl Site) -> Duration {
    let started = tokio::time::Instant::now();
    loop {
        let (status, text) = readyz(process).await;
        if status == 200 && text == "ready\n" {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the server never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two servers on one PostgreSQL (docs/self-hosting.md, "Several servers"): the first one
/// started serves; the second stands by, forwarding to the one that serves, which it names.
/// When the serving one is killed (SIGKILL), the standby takes the site over from the
/// journal in PostgreSQL and everyone comes back to it with their resume tokens (R2):
/// the same seats, control still the rep's (C1), chat going on, and the audit (C3)
/// complete. The killed one, started again, stands by in turn.
#[tokio::test]
async fn with_two_servers_on_postgresql_the_standby_takes_over_when_the_serving_one_is_killed() {
    let (db, [dir_a, dir_b], [port_a, port_b]) = one_database_two_servers().await;
    let postgres = ["--postgres", db.url.as_str()];
    let mut a = Process::start_with(dir_a.path(), port_a, &postgres).await;
    ready(&a).await;
    let b = Process::start_with(dir_b.path(), port_b, &postgres).await;
    stands_by_for(&b, port_a).await;
    let page = reqwest::get(format!("{}/login", b.base()))
        .await
        .expect("login page");
    assert_eq!(
        page.status(),
        200,
        "the standby forwards to the serving one"
    );

    let mut scene = scene(&a).await;
    let before = audit_actions(&a.base(), &scene.number).await;
    assert!(before.contains(&"control_granted".to_owned()), "{before:?}");

    // Nobody may end the site's sessions from the command line while a server serves.
    let (code, said) = run_signaling(vec![
        "--postgres".into(),
        db.url.clone().into(),
        "end-sessions".into(),
        "--data-dir".into(),
        tempfile::tempdir().expect("dir").path().into(),
    ])
    .await;
    assert_ne!(code, Some(0), "{said}");
    assert!(said.contains("every server of the site stopped"), "{said}");

    a.signal("KILL");
    a.ended().await;
    let took = ready(&b).await;
    eprintln!("failover: the standby was ready {took:?} after the kill");
    everyone_comes_back(&b, &mut scene).await;
    audit_kept(&b, &scene.number, &before, 3, "rep, customer and agent").await;
    for dir in [&dir_a, &dir_b] {
        assert!(
            !dir.path().join("live.db").exists(),
            "the live sessions are in PostgreSQL, not on one server's disk"
        );
    }

    let a = Process::start_with(dir_a.path(), port_a, &postgres).await;
    stands_by_for(&a, port_b).await;
}

/// A server whose lease connection to PostgreSQL is cut can no longer promise that its
/// sessions survive it (the journal goes over that connection), and a standby may take
/// them: it stops as for a restart (1012 to everyone) and exits with a failure, and the
/// standby carries the session on. A change asked for right after the cut never reaches
/// anyone (it could not be written, and the successor does not know it): control is
/// still the rep's everywhere.
#[tokio::test]
async fn a_server_that_loses_the_site_lease_stops_and_the_standby_carries_on() {
    let (db, [dir_a, dir_b], [port_a, port_b]) = one_database_two_servers().await;
    let postgres = ["--postgres", db.url.as_str()];
    let mut a = Process::start_with(dir_a.path(), port_a, &postgres).await;
    ready(&a).await;
    let b = Process::start_with(dir_b.path(), port_b, &postgres).await;
    let mut scene = scene(&a).await;

    // An operator (or a network fault) ends the serving server's lease connection.
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    // Named after the address the site's other servers reach it at (the bind address).
    .bind(format!("tandem-signaling 127.0.0.1:{port_a}"))
    .fetch_all(&pool)
    .await
    .expect("terminate");
    assert_eq!(cut, [true], "one lease connection, named after its server");
    scene.rep.ws.send(json!({"type": "release_control"})).await;

    let (seen, close) = scene.ann.ws.until_closed().await;
    let close = close.expect("a close frame");
    assert_eq!(u16::from(close.code), 1012, "told to reconnect: {close:?}");
    assert!(
        !seen.iter().any(|m| m["type"] == "control_changed"),
        "a change the server could not keep went out: {seen:?}"
    );
    assert!(
        !a.ended().await.success(),
        "a server without its lease fails"
    );
    ready(&b).await;
    everyone_comes_back(&b, &mut scene).await;
}

/// A packet filter that drops every packet to or from one TCP port on the loopback
/// interface: a connection whose far end vanished without a word (no FIN, no RST, no
/// ACK), as when a machine loses power or its network. Removed when dropped.
struct Blackhole {
    table: String,
}

impl Blackhole {
    fn port(port: u16) -> Blackhole {
        let table = format!("tandem_vanish_{port}");
        let rules = format!(
            "table inet {table} {{\n\
             chain input {{ type filter hook input priority -300; \
             iifname \"lo\" tcp sport {port} drop; iifname \"lo\" tcp dport {port} drop; }}\n\
             chain output {{ type filter hook output priority -300; \
             oifname \"lo\" tcp sport {port} drop; oifname \"lo\" tcp dport {port} drop; }}\n}}\n"
        );
        let mut nft = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nft (`cargo xtask test` installs Debian's nftables)");
        std::io::Write::write_all(nft.stdin.as_mut().expect("stdin"), rules.as_bytes())
            .expect("write the rules");
        drop(nft.stdin.take());
        assert!(nft.wait().expect("nft").success(), "nft refused {rules}");
        Blackhole { table }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .status();
    }
}

/// docs/self-hosting.md, "The site lease": a serving server whose machine vanishes without
/// closing its sockets (here: stopped, and every packet of its lease connection dropped)
/// is replaced once PostgreSQL's keepalives on that connection give up on it. The standby
/// then serves, and everyone comes back to it (R2, C1). When the vanished server comes
/// back (the packets flow again, the process goes on), it finds its lease gone and stops
/// without serving anyone: nothing it held goes out (the fence).
#[tokio::test]
async fn a_serving_server_that_vanishes_without_closing_its_sockets_is_replaced() {
    let (db, [dir_a, dir_b], [port_a, port_b]) = one_database_two_servers().await;
    let postgres = ["--postgres", db.url.as_str()];
    let mut a = Process::start_with(dir_a.path(), port_a, &postgres).await;
    ready(&a).await;
    let b = Process::start_with(dir_b.path(), port_b, &postgres).await;
    stands_by_for(&b, port_a).await;
    let mut scene = scene(&a).await;

    // The lease connection's port on the serving server's side.
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    let lease_port: i32 =
        sqlx::query_scalar("SELECT client_port FROM pg_stat_activity WHERE application_name = $1")
            .bind(format!("tandem-signaling 127.0.0.1:{port_a}"))
            .fetch_one(&pool)
            .await
            .expect("the lease connection");
    let blackhole = Blackhole::port(u16::try_from(lease_port).expect("a port"));
    a.signal("STOP");
    let vanished = tokio::time::Instant::now();
    let took = ready(&b).await;
    eprintln!(
        "vanished: the standby was ready {took:?} after the serving server went silent \
         ({:?} in all)",
        vanished.elapsed()
    );
    everyone_comes_back(&b, &mut scene).await;

    // The vanished server comes back: it must not serve.
    drop(blackhole);
    a.signal("CONT");
    assert!(
        !a.ended().await.success(),
        "a server that lost its lease while away fails"
    );
    // And the site goes on, with everyone on the server that took it over.
    chat_goes_on(&mut scene, "after the vanishing").await;
}

/// nginx with the two-server configuration of docs/self-hosting.md, in front of the
/// servers on `ports`, listening on a port of its own.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Site for Nginx {
    fn port(&self) -> u16 {
        self.port
    }
}

impl Nginx {
    async fn start(ports: [u16; 2]) -> Nginx {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/self-hosting.md"
        ))
        .expect("docs/self-hosting.md");
        let block = doc
            .split("<!-- two-servers-nginx -->\n```nginx\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("the nginx configuration in docs/self-hosting.md");
        let port = free_port();
        // The documented file, with this test's addresses and without TLS.
        let site: String = block
            .replace("10.0.0.11:8080", &format!("127.0.0.1:{}", ports[0]))
            .replace("10.0.0.12:8080", &format!("127.0.0.1:{}", ports[1]))
            .replace("listen 443 ssl;", &format!("listen 127.0.0.1:{port};"))
            .lines()
            .filter(|line| !line.trim_start().starts_with("ssl_"))
            .map(|line| format!("{line}\n"))
            .collect();
        assert!(site.contains(&format!("127.0.0.1:{}", ports[1])), "{site}");
        let dir = tempfile::tempdir().expect("dir");
        let d = dir.path().display();
        let conf = format!(
            "worker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n access_log off;\n client_body_temp_path {d}/body;\n\
             proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n{site}}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).expect("write nginx.conf");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start nginx (`cargo xtask test` installs Debian's nginx)");
        let nginx = Nginx {
            child,
            port,
            _dir: dir,
        };
        let started = tokio::time::Instant::now();
        while std::net::TcpStream::connect(nginx.addr()).is_err() {
            assert!(started.elapsed() < DEADLINE, "nginx never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// docs/self-hosting.md "Several servers", as a self-hoster sets it up: two servers on one
/// PostgreSQL behind nginx with the documented configuration. Everyone uses the proxy's
/// address only; the serving server is killed (SIGKILL), and everyone comes back through
/// the same address to the standby, which has taken the site over (R2, C1, C3).
#[tokio::test]
async fn two_servers_behind_the_documented_nginx_config_fail_over_without_anyone_changing_address()
{
    let (db, [dir_a, dir_b], [port_a, port_b]) = one_database_two_servers().await;
    let postgres = ["--postgres", db.url.as_str()];
    // The second server in nginx's list serves, so nginx first passes requests to the
    // standby, which forwards them to the serving one.
    let mut serving = Process::start_with(dir_b.path(), port_b, &postgres).await;
    ready(&serving).await;
    let standby = Process::start_with(dir_a.path(), port_a, &postgres).await;
    stands_by_for(&standby, port_b).await;
    let front = Nginx::start([port_a, port_b]).await;
    for _ in 0..4 {
        let (status, text) = readyz(&front).await;
        assert_eq!(status, 200, "nginx passes over the standby: {text}");
    }

    let mut scene = scene(&front).await;
    let before = audit_actions(&front.base(), &scene.number).await;
    serving.signal("KILL");
    serving.ended().await;
    ready(&front).await;
    everyone_comes_back(&front, &mut scene).await;
    let after = audit_actions(&front.base(), &scene.number).await;
    assert_eq!(after[..before.len()], before[..], "{after:?}");
    assert_eq!(
        after[before.len()..]
            .iter()
            .filter(|a| *a == "reconnected")
            .count(),
        3,
        "{after:?}"
    );
}

/// A WebSocket to `addr` that is taken: while no server serves the site (the serving one
/// was just killed), a forwarding server answers the upgrade with 503; try again.
async fn ws_when_served(addr: &str, http: Option<&Http>, deadline: tokio::time::Instant) -> Ws {
    loop {
        match tokio_tungstenite::connect_async(common::ws_request(addr, http)).await {
            Ok((stream, _)) => return Ws { stream },
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "no server of the site took a WebSocket at {addr} in time: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Person {
    /// Come back at `addr`, retrying the connection until a server serves the site.
    async fn resume_when_served(
        &mut self,
        addr: &str,
        http: Option<&Http>,
        kind: &str,
        deadline: tokio::time::Instant,
    ) -> Value {
        let ws = ws_when_served(addr, http, deadline).await;
        self.resume_on(ws, kind).await
    }
}

/// Several servers on one site (docs/self-hosting.md, "Several servers"): A serves, and B
/// and C, standing by, forward what lands on them to A, so nobody needs to know which
/// one serves. The primary rep is on A, the customers and the agent on B, the assistant on
/// C, and the rules hold across them: a switch of customer ends the share (R7), the
/// assistant joins (R8) and is handed the session (R9), then hands it on by WebACD to an
/// agent on A (R10), who is given control (C1); chat reaches everyone (R11). A is then
/// killed (SIGKILL): B or C takes the site over from PostgreSQL, and within 15 s everyone
/// is back in the session (A's people through C) with the same seats, control and chat,
/// and the audit complete (C3). The servers share one Redis, as the issue's site does.
#[tokio::test]
async fn three_servers_serve_one_site_and_a_survivor_carries_it_on_when_the_serving_one_is_killed()
{
    let (db, [dir_a, dir_b], [port_a, port_b]) = one_database_two_servers().await;
    let redis = tokio::task::spawn_blocking(common::redis::Redis::start)
        .await
        .expect("start task")
        .expect("start Redis");
    let dir_c = tempfile::tempdir().expect("dir");
    let port_c = free_port();
    let postgres = ["--postgres", db.url.as_str(), "--redis", redis.url.as_str()];
    let mut a = Process::start_with(dir_a.path(), port_a, &postgres).await;
    ready(&a).await;
    let b = Process::start_with(dir_b.path(), port_b, &postgres).await;
    let c = Process::start_with(dir_c.path(), port_c, &postgres).await;
    stands_by_for(&b, port_a).await;
    stands_by_for(&c, port_a).await;

    // Logins, the admin API and sessions work through any server.
    let admin = Http::login(&c.base(), "admin", ADMIN_PASSWORD).await;
    let response = admin
        .put(
            "/api/admin/settings",
            json!({"max_customers_per_rep": 2, "allow_multiple_sessions": false}),
        )
        .await;
    assert_eq!(response.status(), 200, "settings through C");
    let rita_http = create_rep(&a.base(), "rita", true).await;
    let sam_http = create_rep(&c.base(), "sam", true).await;
    create_rep(&b.base(), "tom", true).await;
    // Tom's login cookie, from A this time: a login is good on every server.
    let tom_http = Http::login(&a.base(), "tom", common::REP_PASSWORD).await;
    let (number, secret) = rita_http.start_session().await;

    let mut rita = Person::join(
        &a.addr(),
        Some(&rita_http),
        "console",
        json!({"type": "open_session", "number": number}),
    )
    .await;
    let mut ann = Person::join(
        &b.addr(),
        None,
        "customer",
        json!({"type": "join_by_link", "secret": secret, "name": "Ann"}),
    )
    .await;
    let agent_token = ann.expect("agent_token").await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let mut agent = Person::join(
        &b.addr(),
        None,
        "agent",
        json!({"type": "attach_agent", "token": agent_token}),
    )
    .await;
    let mut bob = Person::join(
        &b.addr(),
        None,
        "customer",
        json!({"type": "join_by_link", "secret": secret, "name": "Bob"}),
    )
    .await;
    let ids = [rita.id, ann.id, agent.id, bob.id];
    assert!(
        ids.iter().enumerate().all(|(i, id)| !ids[..i].contains(id)),
        "participant ids are unique: {ids:?}"
    );

    // R7 across servers: the agent on B shares, the rep on A views; the rep switches to
    // Bob, and the agent hears its share stop before the new customer is announced.
    agent
        .ws
        .send(json!({"type": "start_share", "source": {"kind": "desktop"}}))
        .await;
    let share = rita.expect("share_started").await["share"]["share"]
        .as_u64()
        .expect("share id");
    rita.ws
        .send(json!({"type": "view_share", "share": share}))
        .await;
    agent.expect("viewer_joined").await;
    rita.ws
        .send(json!({"type": "set_active_customer", "participant": bob.id}))
        .await;
    let stopped = agent.expect("share_stopped").await;
    assert_eq!(stopped["reason"], "switched_customer", "R7: {stopped}");
    let active = rita.expect("active_customer").await;
    assert_eq!(active["participant"], bob.id, "{active}");
    rita.ws
        .send(json!({"type": "set_active_customer", "participant": ann.id}))
        .await;
    rita.until("Ann active again", |m| {
        m["type"] == "active_customer" && m["participant"] == ann.id
    })
    .await;

    // R8 and R9 across servers: Sam assists from C; Rita on A hands him the session.
    let mut sam = Person::join(
        &c.addr(),
        Some(&sam_http),
        "console",
        json!({"type": "assist", "number": number}),
    )
    .await;
    rita.until("Sam joins", |m| {
        m["type"] == "participant_joined" && m["participant"]["id"] == sam.id
    })
    .await;
    rita.ws
        .send(json!({"type": "transfer_session", "to": sam.id}))
        .await;
    let moved = sam.expect("primary_changed").await;
    assert_eq!(moved["primary"], sam.id, "R9: {moved}");
    assert_eq!(moved["former"], rita.id, "R9: {moved}");

    // R10 across servers: Sam on C transfers by WebACD to Tom, whose dashboard is on A.
    let mut tom_desk = ws_at(&a.addr(), Some(&tom_http)).await;
    tom_desk.hello("console").await;
    tom_desk
        .send(json!({"type": "dashboard", "available": true}))
        .await;
    tom_desk.recv_type("webacd_state").await;
    sam.ws
        .send(
            json!({"type": "webacd_transfer", "target": {"kind": "agent", "agent": "tom"},
                     "message": "Ann's printer, over to you"}),
        )
        .await;
    let offered = tom_desk.recv_type("transfer_offered").await;
    assert_eq!(offered["number"], number.as_str(), "{offered}");
    let mut tom = Person::join(
        &a.addr(),
        Some(&tom_http),
        "console",
        json!({"type": "accept_transfer", "number": number}),
    )
    .await;
    drop(tom_desk);

    // C1: Tom asks; the customer allows at the agent on B.
    grant_control(&mut tom, &mut agent).await;

    // R11: a line from B reaches A and C.
    ann.ws
        .send(json!({"type": "chat", "text": "hello from B"}))
        .await;
    for (who, person) in [("Tom", &mut tom), ("Rita", &mut rita)] {
        person
            .until(&format!("Ann's chat at {who}"), |m| {
                m["type"] == "chat" && m["text"] == "hello from B"
            })
            .await;
    }
    bob.until("Ann's chat at Bob", |m| {
        m["type"] == "chat" && m["text"] == "hello from B"
    })
    .await;
    let before = audit_actions(&c.base(), &number).await;
    for action in [
        "share_started",
        "active_customer",
        "primary_transferred",
        "webacd_transfer",
        "transfer_accepted",
        "control_granted",
    ] {
        assert!(
            before.iter().any(|a| a == action),
            "{action} is audited: {before:?}"
        );
    }

    // A dies. Everyone comes back within 15 s, each through the server they use (A's
    // people through C); B or C serves by then.
    a.signal("KILL");
    let killed = tokio::time::Instant::now();
    a.ended().await;
    let deadline = killed + Duration::from_secs(15);
    let joined = tom
        .resume_when_served(&c.addr(), Some(&tom_http), "console", deadline)
        .await;
    assert_eq!(joined["role"], "primary_rep", "{joined}");
    assert_eq!(joined["control"]["holder"], tom.id, "C1: {joined}");
    assert_eq!(joined["control"]["agent"], agent.id, "C1: {joined}");
    let joined = rita
        .resume_when_served(&c.addr(), Some(&rita_http), "console", deadline)
        .await;
    assert_eq!(joined["role"], "observer", "R9: {joined}");
    for (person, kind) in [
        (&mut ann, "customer"),
        (&mut bob, "customer"),
        (&mut agent, "agent"),
    ] {
        person
            .resume_when_served(&b.addr(), None, kind, deadline)
            .await;
    }
    let took = killed.elapsed();
    eprintln!("three servers: everyone was back {took:?} after the kill");
    assert!(
        took < Duration::from_secs(15),
        "everyone back within 15 s of the kill, not {took:?}"
    );

    // Chat goes on across the survivors, and the audit has all of it.
    tom.ws
        .send(json!({"type": "chat", "text": "still here"}))
        .await;
    ann.until("Tom's chat after the takeover", |m| {
        m["type"] == "chat" && m["text"] == "still here"
    })
    .await;
    audit_kept(&b, &number, &before, 5, "Tom, Rita, Ann, Bob and the agent").await;
}

/// A login through `site` from the loopback address `from`, with `headers` added as a
/// client could: its status.
async fn login_from(site: &impl Site, from: [u8; 4], n: u32, headers: &[(&str, &str)]) -> u16 {
    let mut request = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(from))
        .build()
        .expect("client")
        .post(format!("{}/api/login", site.base()))
        .json(&json!({"username": format!("nobody{n}"), "password": "wrong"}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("login").status().as_u16()
}

/// A standby forwards each client with its own address (docs/self-hosting.md, "Several
/// servers"): the serving server's login limit per address (10 a minute) holds per client
/// behind the standby, and a client that names another address itself, with a guessed
/// key, is still counted as itself. The standby is ready only while the serving server
/// answers: stopped (SIGSTOP), it is not; going on (SIGCONT), it is again.
#[tokio::test]
async fn a_standby_forwards_each_clients_own_address_and_is_ready_only_while_the_serving_one_answers()
 {
    let (db, [dir_a, dir_b], [port_a, port_b]) = one_database_two_servers().await;
    let postgres = ["--postgres", db.url.as_str()];
    let mut a = Process::start_with(dir_a.path(), port_a, &postgres).await;
    ready(&a).await;
    let b = Process::start_with(dir_b.path(), port_b, &postgres).await;
    stands_by_for(&b, port_a).await;

    for n in 0..10 {
        let status = login_from(&b, [127, 0, 9, 5], n, &[]).await;
        assert_eq!(status, 401, "login {n} from 127.0.9.5 through the standby");
    }
    assert_eq!(
        login_from(&b, [127, 0, 9, 5], 10, &[]).await,
        429,
        "the eleventh from 127.0.9.5 in a minute"
    );
    assert_eq!(
        login_from(&b, [127, 0, 9, 6], 11, &[]).await,
        401,
        "127.0.9.6 behind the same standby has its own limit"
    );
    let claims = [
        ("x-tandem-client-address", "127.0.9.6"),
        ("x-tandem-site-key", "a-guess"),
    ];
    assert_eq!(
        login_from(&b, [127, 0, 9, 5], 12, &claims).await,
        429,
        "a client naming another address is still itself"
    );
    assert_eq!(
        login_from(
            &b,
            [127, 0, 9, 7],
            13,
            &[("x-tandem-client-address", "127.0.9.5")]
        )
        .await,
        401,
        "nor can it take another's place"
    );

    a.signal("STOP");
    let started = tokio::time::Instant::now();
    loop {
        let (status, text) = readyz(&b).await;
        if status == 503 {
            assert!(
                text.contains(&format!("cannot forward to 127.0.0.1:{port_a}")),
                "{text}"
            );
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the standby stayed ready while the serving server was stopped: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.signal("CONT");
    stands_by_for(&b, port_a).await;
}

/// A server that takes the site over knows the site's other servers from the start (the
/// former holder kept their addresses in PostgreSQL), so the rush of clients reconnecting
/// through them is not held to the cap on connections per address; another address
/// still is.
#[tokio::test]
async fn a_new_holder_knows_the_sites_servers_before_their_first_forwarded_request() {
    let (db, [dir_a, dir_b], [port_a, port_b]) = one_database_two_servers().await;
    let args = [
        "--postgres",
        db.url.as_str(),
        "--max-connections-per-address",
        "4",
    ];
    let mut a = Process::start_with(dir_a.path(), port_a, &args).await;
    ready(&a).await;
    let b = Process::start_with(dir_b.path(), port_b, &args).await;
    stands_by_for(&b, port_a).await;
    // One request forwarded by B (from 127.0.0.1): A learns that address is a server's.
    let page = reqwest::get(format!("{}/login", b.base()))
        .await
        .expect("login page");
    assert_eq!(page.status(), 200);
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let known: Vec<String> = sqlx::query_scalar("SELECT address FROM site_servers")
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
        if known == ["127.0.0.1"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "A never kept B's address: {known:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    a.signal("KILL");
    a.ended().await;
    ready(&b).await;
    // B serves now; nothing was forwarded to it yet, and still 127.0.0.1 (a site server's
    // address) may hold more connections than the cap of 4.
    let server = b.addr().parse().expect("addr");
    let mut open = vec![];
    for n in 0..8 {
        let (stream, answer) = common::healthz_kept_open(server, [127, 0, 0, 1].into(), "").await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "connection {n} from a site server's address: {answer}"
        );
        open.push(stream);
    }
    // Another address is held to the cap.
    for n in 0..4 {
        let (stream, answer) = common::healthz_kept_open(server, [127, 0, 9, 40].into(), "").await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "connection {n}: {answer}"
        );
        open.push(stream);
    }
    let (_, answer) = common::healthz_kept_open(server, [127, 0, 9, 40].into(), "").await;
    assert!(
        answer.starts_with("HTTP/1.1 429"),
        "the fifth from another address: {answer}"
    );
}

/// C3 after a takeover: the audit at `site` before it (`before`) is all there, then
/// `returns` `reconnected` records (stored after the answers went out: waited for,
/// generously), and the session did not end.
async fn audit_kept(site: &impl Site, number: &str, before: &[String], returns: usize, who: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let after = loop {
        let after = audit_actions(&site.base(), number).await;
        let back = after[before.len().min(after.len())..]
            .iter()
            .filter(|a| *a == "reconnected")
            .count();
        if back >= returns || std::time::Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(after[..before.len()], before[..], "{after:?}");
    assert_eq!(
        after[before.len()..]
            .iter()
            .filter(|a| *a == "reconnected")
            .count(),
        returns,
        "{who} reconnected: {after:?}"
    );
    assert!(!after.contains(&"ended".to_owned()), "{after:?}");
}

/// Large answers, `HEAD` and ranges go through a standby as they are: the agent download
/// (8 MB here) fetched through it is byte for byte the serving server's, `HEAD` gives its
/// length and no body, and a range gives `206` with just those bytes.
#[tokio::test]
async fn a_standby_passes_large_downloads_heads_and_ranges_on_unchanged() {
    use rand::RngCore;
    let (db, [dir_a, dir_b], [port_a, port_b]) = one_database_two_servers().await;
    let mut agent = vec![0u8; 8 * 1024 * 1024];
    rand::rng().fill_bytes(&mut agent);
    let binary = dir_a.path().join("tandem-agent-test");
    std::fs::write(&binary, &agent).expect("write the test agent");
    let binary = binary.to_str().expect("utf-8 path").to_owned();
    let a = Process::start_with(
        dir_a.path(),
        port_a,
        &["--postgres", db.url.as_str(), "--agent-binary", &binary],
    )
    .await;
    ready(&a).await;
    let b = Process::start_with(dir_b.path(), port_b, &["--postgres", db.url.as_str()]).await;
    stands_by_for(&b, port_a).await;
    let url = format!("{}/download/tandem-agent", b.base());
    let http = reqwest::Client::new();

    let whole = http.get(&url).send().await.expect("download");
    assert_eq!(whole.status(), 200);
    let body = whole.bytes().await.expect("body");
    assert!(
        body.len() == agent.len() && body[..] == agent[..],
        "{} bytes, not the serving server's {}",
        body.len(),
        agent.len()
    );

    let head = http.head(&url).send().await.expect("head");
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()),
        Some(agent.len().to_string().as_str())
    );
    assert!(head.bytes().await.expect("no body").is_empty());

    let part = http
        .get(&url)
        .header("range", "bytes=1000000-1000999")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), 206);
    let body = part.bytes().await.expect("body");
    assert_eq!(body[..], agent[1_000_000..1_001_000]);
}

/// Servers that speak HTTPS themselves forward too (docs/self-hosting.md, "Several
/// servers"). Each has a certificate of its own from the site's private CA, whose
/// certificate follows it in the chain file, for the site's name only (`localhost`, as
/// the public URL says; not the address 127.0.0.1 that B reaches A at). B,
/// standing by, is ready only once it has reached A over TLS; it passes a browser's
/// HTTP/2 requests (a login, starting a session) and a WebSocket over TLS on to A. A is
/// then killed, and the rep comes back through B, which serves the session itself.
#[tokio::test]
async fn with_https_on_every_server_a_standby_forwards_over_tls_and_takes_over() {
    let ca = crate::tls::TestCa::new();
    let (db, dirs, [port_a, port_b]) = one_database_two_servers().await;
    let args: Vec<Vec<String>> = dirs
        .iter()
        .map(|dir| {
            let leaf = ca.leaf_for(&["localhost"]);
            let (cert, key) = (dir.path().join("fullchain.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert, format!("{}{}", leaf.cert_pem, ca.cert_pem)).expect("chain");
            std::fs::write(&key, &leaf.key_pem).expect("key");
            [
                "--postgres",
                db.url.as_str(),
                "--public-url",
                "https://localhost",
                "--tls-cert",
                cert.to_str().expect("utf-8"),
                "--tls-key",
                key.to_str().expect("utf-8"),
            ]
            .map(str::to_owned)
            .to_vec()
        })
        .collect();
    let args = |i: usize| args[i].iter().map(String::as_str).collect::<Vec<_>>();
    // Clients reach both at `localhost`, always on 127.0.0.1.
    let client = ca
        .reqwest_builder(false)
        .resolve("localhost", ([127, 0, 0, 1], 0).into())
        .build()
        .expect("client");
    let (base_a, base_b) = (
        format!("https://localhost:{port_a}"),
        format!("https://localhost:{port_b}"),
    );
    let readyz = async |base: &str| {
        let response = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("readyz over HTTPS");
        (response.status(), response.text().await.unwrap_or_default())
    };
    let until_readyz = async |base: &str, wanted: &str| {
        let started = tokio::time::Instant::now();
        loop {
            let (status, text) = readyz(base).await;
            if status == 200 && text == wanted {
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "{base} never said {wanted:?}: {status} {text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };

    let mut a = Process::spawn(dirs[0].path(), port_a, &args(0));
    a.answering(&client, &base_a).await;
    until_readyz(&base_a, "ready\n").await;
    let b = Process::spawn(dirs[1].path(), port_b, &args(1));
    b.answering(&client, &base_b).await;
    // Ready only after B asked A's own /readyz over TLS, checking A's certificate.
    until_readyz(
        &base_b,
        &format!("ready: standby, forwarding to 127.0.0.1:{port_a}, which serves this site\n"),
    )
    .await;

    // A browser's requests over HTTP/2 to B, passed on to A.
    let rep = Http::login_with(client.clone(), &base_b, "admin", ADMIN_PASSWORD).await;
    let me = rep.get("/api/me").await;
    assert_eq!(me.version(), reqwest::Version::HTTP_2);
    assert_eq!(me.status(), 200);
    let response = rep
        .post("/api/sessions", json!({"email_invite": false}))
        .await;
    assert_eq!(response.status(), 201, "a session started through B");
    let session: Value = response.json().await.expect("json");
    let number = session["number"].as_str().expect("number").to_owned();
    assert!(
        session["link"]
            .as_str()
            .is_some_and(|link| link.starts_with("https://localhost/j/")),
        "{session}"
    );

    // The rep's console over a WebSocket on TLS to B, passed on to A.
    let wss = async |port: u16| {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let tls = ca
            .connector(&[b"http/1.1"])
            .connect(
                rustls::pki_types::ServerName::try_from("localhost").expect("name"),
                tcp,
            )
            .await
            .expect("TLS handshake");
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                format!("wss://localhost:{port}/ws"),
            )
            .expect("request");
        request.headers_mut().insert(
            "cookie",
            rep.cookie
                .as_deref()
                .expect("cookie")
                .parse()
                .expect("header"),
        );
        let (stream, _) = tokio_tungstenite::client_async(request, tls)
            .await
            .expect("a WebSocket over TLS");
        Ws { stream }
    };
    let mut console = wss(port_b).await;
    console.hello("console").await;
    console
        .send(json!({"type": "open_session", "number": number}))
        .await;
    // The resume token comes first, then `joined`.
    let token = console.recv_type("resume_token").await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let joined = console.recv_type("joined").await;
    assert_eq!(joined["role"], "primary_rep", "{joined}");
    let you = joined["you"].clone();

    // A dies: B takes the site over, and the rep is back in the session through it.
    a.signal("KILL");
    a.ended().await;
    until_readyz(&base_b, "ready\n").await;
    let mut console = wss(port_b).await;
    console.hello("console").await;
    console
        .send(json!({"type": "resume", "token": token}))
        .await;
    let joined = console.recv_type("joined").await;
    assert_eq!(joined["you"], you, "the same seat: {joined}");
    assert_eq!(joined["role"], "primary_rep", "{joined}");
}

/// A connection from `source` to a server on `port`, with one request on it answered.
struct Held {
    stream: tokio::net::TcpStream,
}

impl Held {
    /// Open a connection from `source` and ask `/healthz` on it: held open if answered
    /// `200`, else the status it was refused with.
    async fn open(source: [u8; 4], port: u16) -> Result<Held, u16> {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(std::net::SocketAddr::from((source, 0)))
            .expect("bind the source address");
        let stream = socket
            .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .expect("connect");
        let mut held = Held { stream };
        match held.ask().await {
            200 => Ok(held),
            status => Err(status),
        }
    }

    /// `GET /healthz` on the connection: the answer's status (0 when it was closed).
    async fn ask(&mut self) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        // A refusal is written before the request is read: the write may find it closed.
        let _ = self.stream.write_all(request).await;
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        let read = async {
            loop {
                if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&answer[..end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .and_then(|n| n.trim().parse().ok())
                        .unwrap_or(0);
                    if answer.len() >= end + 4 + length {
                        return;
                    }
                }
                match self.stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                }
            }
        };
        tokio::time::timeout(DEADLINE, read)
            .await
            .expect("an answer in time");
        String::from_utf8_lossy(&answer)
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or(0)
    }

    /// Still open and counted: it answers again (which also restarts the server's wait
    /// for the next request, so it stays open a while longer).
    async fn still_open(&mut self) {
        assert_eq!(self.ask().await, 200, "a held connection was closed");
    }
}

/// Run `work` while keeping `held` open: each is asked again every 2 s, as the server
/// closes a keep-alive connection that sends no request for `HEADER_READ_TIMEOUT` (10 s),
/// and waiting for a killed server to go stale takes about as long.
async fn keeping_open<T>(held: &mut [Held], work: impl std::future::Future<Output = T>) -> T {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            biased;
            out = &mut work => return out,
            () = tokio::time::sleep(Duration::from_secs(2)) => {
                for one in held.iter_mut() {
                    one.still_open().await;
                }
            }
        }
    }
}

/// A refusal at the cap: `429`, or a reset that came before the answer could be read
/// (the server closes a refused connection at once, and the request the client sent
/// meanwhile, unread, makes the close a reset).
fn refused(status: u16) -> bool {
    status == 429 || status == 0
}

/// Open a connection from `source` to `port` once the site lets it in.
async fn held_once_let_in(source: [u8; 4], port: u16) -> Held {
    let started = tokio::time::Instant::now();
    loop {
        match Held::open(source, port).await {
            Ok(held) => return held,
            Err(status) => assert!(refused(status), "refused for another reason: {status}"),
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the site never let the address in again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// With `--redis` (docs/self-hosting.md, "Several servers"), the cap on connections from
/// one address holds for the site, not once per server: an address with the cap's worth
/// open on the serving server is refused by the standby, and the other way round; other
/// addresses are not; a place freed on one server is free on the others; and the places
/// of a server killed with its connections open are free again once it has not been
/// heard from for a while, or at once when it was the serving one and a standby takes
/// the site over from it. Real servers, PostgreSQL and Redis.
#[tokio::test]
async fn with_redis_the_cap_per_address_holds_across_the_sites_servers() {
    const CLIENT: [u8; 4] = [127, 0, 0, 7];
    const OTHER: [u8; 4] = [127, 0, 0, 8];
    // Not less: the test's own requests and the standby's to the serving server come
    // from 127.0.0.1, and are held to the cap too.
    const CAP: usize = 8;
    let (db, [dir_a, dir_b], [port_a, port_b]) = one_database_two_servers().await;
    let redis = tokio::task::spawn_blocking(common::redis::Redis::start)
        .await
        .expect("start task")
        .expect("start Redis");
    let args = [
        "--postgres",
        db.url.as_str(),
        "--redis",
        redis.url.as_str(),
        "--max-connections-per-address",
        &CAP.to_string(),
    ];
    let mut a = Process::start_with(dir_a.path(), port_a, &args).await;
    ready(&a).await;
    let mut b = Process::start_with(dir_b.path(), port_b, &args).await;
    stands_by_for(&b, port_a).await;

    // The cap's worth on the serving server…
    let mut first = Held::open(CLIENT, port_a).await.expect("first on A");
    let mut rest = Vec::new();
    for _ in 1..CAP {
        rest.push(Held::open(CLIENT, port_a).await.expect("more on A"));
    }
    // …leaves no place on the standby.
    assert!(
        Held::open(CLIENT, port_b).await.is_err_and(refused),
        "the standby holds the cap with the serving server's connections counted"
    );
    let other = Held::open(OTHER, port_b)
        .await
        .expect("another address is not held to this one's count");
    first.still_open().await;
    for held in &mut rest {
        held.still_open().await;
    }

    // A place freed on A is free on B, and B's connection counts on A.
    drop(first);
    let mut on_b = held_once_let_in(CLIENT, port_b).await;
    for held in &mut rest {
        held.still_open().await;
    }
    assert!(
        Held::open(CLIENT, port_a).await.is_err_and(refused),
        "the serving server counts the standby's connection"
    );
    let counted = redis
        .command(&[
            "HGET",
            &format!("tandem:conns:127.0.0.1:{port_b}"),
            "127.0.0.7",
        ])
        .expect("ask Redis");
    assert_eq!(counted, "1", "B's count of the address, in Redis");

    // Each server is scraped for itself: the serving one, and the standby, which stands
    // by and refused the address once. (Asked again while a call to Redis that did not
    // answer in time on a loaded machine leaves `tandem_redis_up 0` for a moment.)
    let refused_from_address = |text: &str| {
        text.lines().any(|line| {
            line.starts_with(
                "tandem_tcp_connections_refused_total{reason=\"too_many_from_address\"}",
            ) && !line.ends_with(" 0")
        })
    };
    keeping_open(
        &mut rest,
        scraped_until(&format!("{}/metrics", a.base()), |text| {
            text.contains("\ntandem_redis_up 1\n")
                && text.contains("\ntandem_site_serving 1\n")
                && refused_from_address(text)
        }),
    )
    .await;
    keeping_open(
        &mut rest,
        scraped_until(&format!("{}/metrics", b.base()), |text| {
            text.contains("\ntandem_redis_up 1\n")
                && text.contains("\ntandem_site_serving 0\n")
                && refused_from_address(text)
        }),
    )
    .await;
    let (status, _) = reqwest::get(format!("{}/metrics", b.base()))
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("scrape");
    assert_eq!(status, 401, "the standby asks for the metrics token too");

    // B dies with its connection open: its place is free once B is stale.
    on_b.still_open().await;
    b.signal("KILL");
    b.ended().await;
    drop(on_b);
    drop(other);
    for held in &mut rest {
        held.still_open().await;
    }
    let back = keeping_open(&mut rest, held_once_let_in(CLIENT, port_a)).await;
    // The cap's worth again, kept open with the rest.
    rest.push(back);
    assert!(
        a.child.try_wait().expect("wait").is_none(),
        "the serving server runs on"
    );

    // The serving server dies with the cap's worth open: the standby that takes the site
    // over forgets it at once (its people are about to reconnect), not once it is stale.
    let mut b = keeping_open(&mut rest, async {
        let b = Process::start_with(dir_b.path(), port_b, &args).await;
        stands_by_for(&b, port_a).await;
        b
    })
    .await;
    for held in &mut rest {
        held.still_open().await;
    }
    a.signal("KILL");
    a.ended().await;
    drop(rest);
    ready(&b).await;
    gone_from_redis(
        &redis,
        port_a,
        "the server that took over never forgot the dead one",
    )
    .await;
    let mut last = held_once_let_in(CLIENT, port_b).await;

    // A server stopped for an upgrade takes its counts out as it goes, not once stale.
    last.still_open().await;
    b.signal("TERM");
    b.ended().await;
    gone_from_redis(&redis, port_b, "the server stopped still counts").await;
    drop((last, redis));
}

/// Wait until the server on `port` is off Redis's list of the site's servers, and its
/// counts are gone, within half the deadline: without a forget or a leave, the list
/// would drop it only after 100 s (ten times the staleness).
async fn gone_from_redis(redis: &common::redis::Redis, port: u16, never: &str) {
    let id = format!("127.0.0.1:{port}");
    let started = tokio::time::Instant::now();
    loop {
        let listed = redis
            .command(&["ZSCORE", "tandem:servers", &id])
            .expect("ask Redis");
        let counts = redis
            .command(&["EXISTS", &format!("tandem:conns:{id}")])
            .expect("ask Redis");
        if listed == "$-1" && counts == ":0" {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE / 2,
            "{never}: {listed:?} {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET url` with the metrics token: its status and text.
async fn scrape(url: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth("metrics-token")
        .send()
        .await
        .expect("scrape");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Scrape `url` (with the metrics token) until its text passes `check`.
async fn scraped_until(url: &str, check: impl Fn(&str) -> bool) -> String {
    let started = tokio::time::Instant::now();
    loop {
        let (status, text) = scrape(url).await;
        if status == 200 && check(&text) {
            return text;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{url} never showed what was expected: {status} {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// With several servers (docs/self-hosting.md, "Metrics"), each is scraped for itself: a
/// standby answers `/metrics` with its own figures (`tandem_site_serving 0`, its
/// connections), on its metrics address from its start, not with the serving server's;
/// once it takes the site over, the same address gives its metrics as the serving one.
#[tokio::test]
async fn a_standby_is_scraped_for_itself_and_keeps_its_metrics_address_when_it_takes_over() {
    let (db, [dir_a, dir_b], [port_a, port_b]) = one_database_two_servers().await;
    let mut a = Process::start_with(dir_a.path(), port_a, &["--postgres", db.url.as_str()]).await;
    ready(&a).await;
    let bind = format!("127.0.0.1:{}", free_port());
    let b = Process::start_with(
        dir_b.path(),
        port_b,
        &["--postgres", db.url.as_str(), "--metrics-bind", &bind],
    )
    .await;
    stands_by_for(&b, port_a).await;

    let (status, text) = scrape(&format!("http://{bind}/metrics")).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\ntandem_site_serving 0\n"), "{text}");
    assert!(text.contains("\ntandem_tcp_connections "), "{text}");
    assert!(
        !text.contains("tandem_live_sessions"),
        "the standby's own, not the serving server's: {text}"
    );
    // With metrics on their own address, the standby's main port does not answer them,
    // nor pass them on to the serving server.
    let (status, _) = scrape(&format!("{}/metrics", b.base())).await;
    assert_eq!(status, 404);
    let (status, _) = reqwest::get(format!("http://{bind}/metrics"))
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("scrape");
    assert_eq!(status, 401, "the token is asked on the metrics address too");
    // The serving server's, on its main port.
    let (status, text) = scrape(&format!("{}/metrics", a.base())).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\ntandem_site_serving 1\n"), "{text}");
    assert!(text.contains("\ntandem_live_sessions "), "{text}");

    // B takes the site over: the same address now gives the serving server's metrics.
    a.signal("KILL");
    a.ended().await;
    ready(&b).await;
    let started = tokio::time::Instant::now();
    loop {
        if let Ok(response) = reqwest::Client::new()
            .get(format!("http://{bind}/metrics"))
            .bearer_auth("metrics-token")
            .send()
            .await
        {
            let text = response.text().await.unwrap_or_default();
            if text.contains("\ntandem_site_serving 1\n")
                && text.contains("\ntandem_live_sessions ")
            {
                break;
            }
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the metrics address never gave the serving server's metrics"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The self-hoster's way back in: `--reset-admin-password` gives `admin` the password of
/// `--admin-password` again at start, and the audit log (C3) has it, by nobody but the
/// server.
#[tokio::test]
async fn a_reset_of_the_admin_password_at_start_works_and_is_audited() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let first = Process::start(dir.path(), port).await;
    let admin = Http::login(&first.base(), "admin", ADMIN_PASSWORD).await;
    let me: Value = admin.get("/api/me").await.json().await.expect("me");
    let path = format!("/api/admin/reps/{}", me["id"]);
    let r = admin
        .patch(&path, json!({"password": "a-forgotten-password"}))
        .await;
    assert_eq!(r.status(), 200);
    drop(first);

    let second = Process::start_with(dir.path(), port, &["--reset-admin-password"]).await;
    let admin = Http::login(&second.base(), "admin", ADMIN_PASSWORD).await;
    let resets = audit_records(&admin, "admin_password_reset").await;
    assert_eq!(resets.len(), 1, "{resets:?}");
    assert_eq!(resets[0]["record"]["account"], "admin");
    assert!(resets[0]["actor"].is_null(), "{}", resets[0]);
    assert_eq!(resets[0]["session"], "");
}
