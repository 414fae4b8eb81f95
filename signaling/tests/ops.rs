//! Operations: health endpoints, Prometheus metrics during a real session, online
//! backups with the real binary, and a database from the previous release opened by this
//! one.

use crate::common;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use common::{ADMIN_PASSWORD, REP_PASSWORD, TestServer, customer_by_link, rep_page, run_signaling};
use serde_json::{Value, json};
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnectOptions;
use tandem_signaling::config::EmbeddedTurnSettings;
use tandem_signaling::store::{SiteSettings, SmtpSettings, SqliteStore, Store, TlsMode};

const TOKEN: &str = "scrape-me-0123456789";
const DEADLINE: Duration = Duration::from_secs(20);

/// Poll `probe` until it returns `Some`, or panic after the deadline naming `what`.
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn with_token() -> TestServer {
    TestServer::start_with(|config| config.metrics_token = Some(TOKEN.into())).await
}

/// One scrape, as Prometheus does it, parsed into `name{labels}` → value.
async fn scrape(server: &TestServer) -> HashMap<String, f64> {
    let response = reqwest::Client::new()
        .get(format!("{}/metrics", server.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    parse(&response.text().await.expect("text"))
}

fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

fn value(metrics: &HashMap<String, f64>, series: &str) -> f64 {
    metrics.get(series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn health_endpoints_answer_without_a_login() {
    let server = TestServer::start().await;
    let http = server.anonymous();
    let health = http.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.expect("text"), "ok\n");
    let ready = http.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.expect("text"), "ready\n");
    // A load balancer polls often: many probes in a row all pass.
    for _ in 0..50 {
        assert_eq!(http.get("/readyz").await.status(), 200);
    }
}

#[tokio::test]
async fn readyz_says_not_ready_once_the_server_is_stopping() {
    let server = TestServer::start().await;
    let state = server.state.clone();
    // One kept-alive connection, as a load balancer holds: it outlives the listener.
    let client = reqwest::Client::new();
    let url = format!("{}/readyz", server.base);
    let ready = client.get(&url).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.expect("text"), "ready\n");
    drop(server); // asks it to stop
    eventually("the server to stop taking connections", || async {
        state.telemetry.is_draining().then_some(())
    })
    .await;
    let stopping = client
        .get(&url)
        .send()
        .await
        .expect("readyz on the open connection");
    assert_eq!(stopping.status(), 503);
    assert_eq!(
        stopping.text().await.expect("text"),
        "not ready: shutting down\n"
    );
}

#[tokio::test]
async fn metrics_are_hidden_without_a_token_and_refused_with_a_wrong_one() {
    let plain = TestServer::start().await;
    let http = plain.anonymous();
    assert_eq!(http.get("/metrics").await.status(), 404);
    let response = reqwest::Client::new()
        .get(format!("{}/metrics", plain.base))
        .bearer_auth("anything")
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status(),
        404,
        "no token configured: no metrics at all"
    );

    let server = with_token().await;
    let client = reqwest::Client::new();
    let url = format!("{}/metrics", server.base);
    let none = client.get(&url).send().await.expect("request");
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    for wrong in ["wrong", &format!("{TOKEN}x"), &TOKEN[..TOKEN.len() - 1]] {
        let response = client
            .get(&url)
            .bearer_auth(wrong)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401, "{wrong}");
    }
    let cookie_only = server.admin().await.get("/metrics").await;
    assert_eq!(
        cookie_only.status(),
        401,
        "an admin's login is not the token"
    );
    let metrics = scrape(&server).await;
    assert_eq!(value(&metrics, "tandem_live_sessions"), 0.0);
}

#[tokio::test]
async fn a_scrape_during_a_live_session_shows_the_right_counts() {
    let server = with_token().await;
    let rep = server.rep("ann", false).await;
    let (number, secret) = rep.start_session().await;
    let mut page = rep_page(&server, &rep, &number).await;
    let (mut bob, _) = customer_by_link(&server, &secret, "Bob").await;
    let (_carol, _) = customer_by_link(&server, &secret, "Carol").await;
    let mut dave = server.ws(None).await;
    dave.hello("customer").await;
    dave.send(json!({"type": "join_by_number", "number": number, "name": "Dave"}))
        .await;
    dave.recv_type("waiting").await;
    bob.send(json!({"type": "chat", "text": "hello from Bob"}))
        .await;
    let chat = page.recv_type("chat").await;
    assert_eq!(chat["text"], "hello from Bob");
    // A message the protocol does not know, and one that is not JSON at all.
    bob.send(json!({"type": "make_coffee"})).await;
    assert_eq!(bob.recv_type("error").await["code"], "unknown_type");
    bob.send_text("{not json").await;
    assert_eq!(bob.recv_type("error").await["code"], "bad_message");

    let metrics = eventually("the counts of the live session", || async {
        let metrics = scrape(&server).await;
        (value(&metrics, "tandem_participants{role=\"waiting\"}") == 1.0
            && value(
                &metrics,
                r#"tandem_websocket_refusals_total{code="bad_message"}"#,
            ) >= 1.0)
            .then_some(metrics)
    })
    .await;
    let expect = [
        ("tandem_live_sessions", 1.0),
        (r#"tandem_participants{role="primary_rep"}"#, 1.0),
        (r#"tandem_participants{role="customer"}"#, 2.0),
        (r#"tandem_participants{role="waiting"}"#, 1.0),
        (r#"tandem_participants{role="assistant"}"#, 0.0),
        (r#"tandem_participants{role="observer"}"#, 0.0),
        (r#"tandem_participants{role="agent"}"#, 0.0),
        // The rep's page, Bob, Carol and Dave.
        ("tandem_websocket_connections", 4.0),
        (
            r#"tandem_websocket_messages_received_total{type="hello"}"#,
            4.0,
        ),
        (
            r#"tandem_websocket_messages_received_total{type="open_session"}"#,
            1.0,
        ),
        (
            r#"tandem_websocket_messages_received_total{type="join_by_link"}"#,
            2.0,
        ),
        (
            r#"tandem_websocket_messages_received_total{type="join_by_number"}"#,
            1.0,
        ),
        (
            r#"tandem_websocket_messages_received_total{type="chat"}"#,
            1.0,
        ),
        // Both refused messages; the unknown type is not decodable either.
        (
            r#"tandem_websocket_messages_received_total{type="invalid"}"#,
            2.0,
        ),
        (
            r#"tandem_websocket_refusals_total{code="unknown_type"}"#,
            1.0,
        ),
        (
            r#"tandem_websocket_refusals_total{code="bad_message"}"#,
            1.0,
        ),
        (
            r#"tandem_tcp_connections_refused_total{reason="full"}"#,
            0.0,
        ),
        (
            r#"tandem_tcp_connections_refused_total{reason="too_many_from_address"}"#,
            0.0,
        ),
        (r#"tandem_invitations{state="sent"}"#, 0.0),
    ];
    for (series, wanted) in expect {
        assert_eq!(
            metrics.get(series).copied(),
            Some(wanted),
            "{series} in\n{}",
            dump(&metrics)
        );
    }
    let build = format!(
        "tandem_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&metrics, &build), 1.0, "{}", dump(&metrics));
    // Four WebSockets and this scrape, at least.
    assert!(value(&metrics, "tandem_tcp_connections") >= 5.0);
    // The registry's locks: the session's taken for the opening, the three joins and
    // the chat line at least, and held for some time; the site's for the start and the
    // join by link at least; the waits are counted (none needed here).
    let taken = value(
        &metrics,
        r#"tandem_registry_lock_taken_total{lock="session"}"#,
    );
    assert!(taken >= 5.0, "{}", dump(&metrics));
    assert!(
        value(&metrics, r#"tandem_registry_lock_taken_total{lock="site"}"#) >= 2.0,
        "{}",
        dump(&metrics)
    );
    assert!(
        value(
            &metrics,
            r#"tandem_registry_lock_held_microseconds_total{lock="session"}"#
        ) >= 1.0,
        "{}",
        dump(&metrics)
    );
    for kind in ["session", "site"] {
        assert!(
            metrics.contains_key(&format!(
                "tandem_registry_lock_held_microseconds_total{{lock=\"{kind}\"}}"
            )),
            "{}",
            dump(&metrics)
        );
        assert!(
            metrics.contains_key(&format!(
                "tandem_registry_lock_waited_microseconds_total{{lock=\"{kind}\"}}"
            )),
            "{}",
            dump(&metrics)
        );
    }
    // The store's latency: logins and the audit writer are timed, into real buckets.
    server.state.flush().await;
    let metrics = scrape(&server).await;
    for op in ["account_for_login", "create_login", "login", "append_audit"] {
        let count = value(
            &metrics,
            &format!("tandem_store_seconds_count{{op=\"{op}\"}}"),
        );
        assert!(count >= 1.0, "{op}: {}", dump(&metrics));
        let all = value(
            &metrics,
            &format!("tandem_store_seconds_bucket{{op=\"{op}\",le=\"+Inf\"}}"),
        );
        assert_eq!(all, count, "{op}");
    }

    // The session ends when the rep's page closes (R2): the gauges follow, and the lock
    // was taken again for it.
    page.close_page().await;
    eventually("the session to end in the metrics", || async {
        let metrics = scrape(&server).await;
        (value(&metrics, "tandem_live_sessions") == 0.0
            && value(&metrics, r#"tandem_participants{role="customer"}"#) == 0.0
            && value(&metrics, "tandem_websocket_connections") < 4.0
            && value(
                &metrics,
                r#"tandem_registry_lock_taken_total{lock="session"}"#,
            ) > taken)
            .then_some(())
    })
    .await;
}

fn dump(metrics: &HashMap<String, f64>) -> String {
    let mut lines: Vec<String> = metrics.iter().map(|(k, v)| format!("{k} {v}")).collect();
    lines.sort();
    lines.join("\n")
}

/// The embedded TURN service is measured (docs/self-hosting.md, "Metrics"): a customer's
/// relay allocation, made with the credentials its `ice_servers` gave it, shows in the
/// next scrape. A server that runs no TURN service has no such series.
#[tokio::test]
async fn the_embedded_turn_relay_is_measured_while_it_runs() {
    let plain = with_token().await;
    let none: Vec<String> = scrape(&plain)
        .await
        .into_keys()
        .filter(|k| k.starts_with("tandem_turn_"))
        .collect();
    assert!(
        none.is_empty(),
        "TURN series without a TURN service: {none:?}"
    );

    let server = TestServer::start_with(|config| {
        config.metrics_token = Some(TOKEN.into());
        config.embedded_turn = Some(EmbeddedTurnSettings::for_tests());
    })
    .await;
    let metrics = scrape(&server).await;
    for series in [
        "tandem_turn_allocations",
        "tandem_turn_allocations_refused_total",
        r#"tandem_turn_relayed_bytes_total{direction="to_peer"}"#,
        r#"tandem_turn_relayed_bytes_total{direction="to_client"}"#,
        r#"tandem_turn_dropped_packets_total{reason="over_bandwidth"}"#,
        r#"tandem_turn_dropped_packets_total{reason="peer_not_allowed"}"#,
        "tandem_turn_requests_over_rate_total",
    ] {
        assert_eq!(
            metrics.get(series),
            Some(&0.0),
            "{series}: {}",
            dump(&metrics)
        );
    }

    let rep = server.rep("ann", false).await;
    let (_number, secret) = rep.start_session().await;
    let mut ws = server.ws(None).await;
    ws.hello("customer").await;
    ws.send(json!({"type": "join_by_link", "secret": secret, "name": "Bob"}))
        .await;
    let ice = ws.recv_type("ice_servers").await;
    let (server_addr, username, credential) = ice["ice_servers"]
        .as_array()
        .expect("a list")
        .iter()
        .find_map(|entry| {
            let url = entry["urls"]
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .find(|url| url.starts_with("turn:") && !url.contains("transport=tcp"))?;
            let addr = url
                .trim_start_matches("turn:")
                .split('?')
                .next()?
                .to_owned();
            Some((
                addr,
                entry["username"].as_str()?.to_owned(),
                entry["credential"].as_str()?.to_owned(),
            ))
        })
        .unwrap_or_else(|| panic!("no TURN server over UDP given: {ice}"));
    let client = turn::client::Client::new(turn::client::ClientConfig {
        stun_serv_addr: server_addr.clone(),
        turn_serv_addr: server_addr,
        username,
        password: credential,
        realm: "tandem".into(),
        software: String::new(),
        rto_in_ms: 0,
        conn: std::sync::Arc::new(
            tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("bind"),
        ),
        vnet: None,
    })
    .await
    .expect("client");
    client.listen().await.expect("listen");
    let _relay = tokio::time::timeout(DEADLINE, client.allocate())
        .await
        .expect("allocated in time")
        .expect("the customer's credentials get a relay");
    eventually("the allocation in the scrape", || async {
        let metrics = scrape(&server).await;
        (value(&metrics, "tandem_turn_allocations") == 1.0).then_some(())
    })
    .await;
    client.close().await.expect("close");
}

#[tokio::test]
async fn each_server_counts_only_its_own_traffic() {
    let first = with_token().await;
    let second = with_token().await;
    let mut ws = first.ws(None).await;
    ws.hello("customer").await;
    let busy = eventually("the first server's hello", || async {
        let metrics = scrape(&first).await;
        (value(
            &metrics,
            r#"tandem_websocket_messages_received_total{type="hello"}"#,
        ) == 1.0)
            .then_some(metrics)
    })
    .await;
    assert_eq!(value(&busy, "tandem_websocket_connections"), 1.0);
    let quiet = scrape(&second).await;
    assert_eq!(
        value(
            &quiet,
            r#"tandem_websocket_messages_received_total{type="hello"}"#
        ),
        0.0
    );
    assert_eq!(value(&quiet, "tandem_websocket_connections"), 0.0);
}

#[tokio::test]
async fn metrics_on_their_own_address_need_no_token_and_leave_the_main_port() {
    let server = TestServer::start_with(|config| {
        config.metrics_bind = Some("127.0.0.1:0".parse().expect("address"));
    })
    .await;
    // main.rs binds metrics_bind; here the same router is served on a port of our own.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = tandem_signaling::telemetry::metrics_app(server.state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let metrics = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.expect("text");
    assert!(text.contains("tandem_live_sessions 0"), "{text}");
    let other = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(other.status(), 404, "only /metrics there");
    assert_eq!(server.anonymous().get("/metrics").await.status(), 404);
}

/// `tandem-signaling backup <file> --data-dir <dir>`, the real binary.
async fn backup_command(data_dir: &Path, file: &Path) -> (Option<i32>, String) {
    let (data_dir, file) = (data_dir.to_owned(), file.to_owned());
    run_signaling(vec![
        "backup".into(),
        file.into(),
        "--data-dir".into(),
        data_dir.into(),
    ])
    .await
}

#[tokio::test]
async fn a_backup_taken_while_the_server_runs_holds_the_accounts_and_the_audit() {
    let server = TestServer::start().await;
    let rep = server.rep("ann", false).await;
    let (number, secret) = rep.start_session().await;
    let mut page = rep_page(&server, &rep, &number).await;
    let (_bob, _) = customer_by_link(&server, &secret, "Bob").await;
    page.recv_type("participant_joined").await;
    server.state.flush().await;
    let live_audit = server.state.store.audit(None, 1000).await.expect("audit");
    assert!(live_audit.len() >= 2, "{live_audit:?}");

    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("tandem-backup.db");
    let (code, text) = backup_command(&server.state.config.data_dir, &file).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("Backed up"), "{text}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file)
            .expect("backup")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "only its owner reads a backup: {mode:o}");
    }

    // Never over an existing file, not even a backup.
    let before = std::fs::read(&file).expect("read");
    let (code, text) = backup_command(&server.state.config.data_dir, &file).await;
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("exists already"), "{text}");
    assert_eq!(std::fs::read(&file).expect("read"), before);
    // The server went on working meanwhile.
    assert_eq!(server.anonymous().get("/readyz").await.status(), 200);

    let copy = SqliteStore::open(&file).await.expect("open the backup");
    let names: Vec<String> = copy
        .accounts()
        .await
        .expect("accounts")
        .into_iter()
        .map(|a| a.username)
        .collect();
    assert_eq!(names, ["admin", "ann"]);
    let copied = copy.audit(None, 1000).await.expect("audit");
    let ids = |entries: &[tandem_signaling::store::AuditEntry]| -> Vec<(i64, String)> {
        entries.iter().map(|e| (e.id, e.action.clone())).collect()
    };
    assert_eq!(ids(&copied), ids(&live_audit));
    let report = copy.verify_audit_chain().await.expect("verify");
    assert!(report.is_intact(), "{report}");
    let (account, _) = copy
        .account_for_login("ann")
        .await
        .expect("read")
        .expect("ann is in the backup");
    assert_eq!(account.display_name, "Rep ann");

    // A database that is not there is named.
    let missing = tempfile::tempdir().expect("dir");
    let (code, text) = backup_command(missing.path(), &dir.path().join("other.db")).await;
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("there is no database"), "{text}");
    assert!(!dir.path().join("other.db").exists());
}

/// The migrations of the previous release (0.1: before the audit chain).
const PREVIOUS_RELEASE: [&str; 3] = [
    "0001_init.sql",
    "0002_invitations.sql",
    "0003_queue_auto_assign.sql",
];

/// A database as the previous release left it, with data in every table.
async fn previous_release_database(path: &Path) {
    let old = path.with_file_name("previous-migrations");
    std::fs::create_dir(&old).expect("dir");
    let ours = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join("sqlite");
    for name in PREVIOUS_RELEASE {
        std::fs::copy(ours.join(name), old.join(name)).expect("copy a migration");
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = SqlitePool::connect_with(options).await.expect("old db");
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .expect("old migrations")
        .run(&pool)
        .await
        .expect("migrate to 0003");
    let admin_hash = tandem_signaling::auth::hash_password(ADMIN_PASSWORD).expect("hash");
    let rep_hash = tandem_signaling::auth::hash_password(REP_PASSWORD).expect("hash");
    // As that release wrote them: without the file limit.
    let site = json!({"max_customers_per_rep": 7, "allow_multiple_sessions": true}).to_string();
    let smtp = serde_json::to_string(&smtp_settings()).expect("json");
    let record = json!({"at": 1000, "session": "123456789", "action": "session_started"});
    let rows: [(&str, Vec<String>); 8] = [
        (
            "INSERT INTO accounts (id, username, display_name, password_hash, is_admin, \
             is_webacd, disabled, created_at) VALUES \
             (1, 'admin', 'Administrator', ?1, 1, 0, 0, 1), \
             (2, 'ann', 'Ann Agent', ?2, 0, 1, 0, 2), \
             (3, 'old', 'Old Rep', ?2, 0, 0, 1, 3)",
            vec![admin_hash, rep_hash],
        ),
        (
            "INSERT INTO logins (token_hash, account_id, created_at, expires_at) \
             VALUES ('expired-token-hash', 2, 10, 20)",
            vec![],
        ),
        (
            "INSERT INTO settings (key, value) VALUES ('site', ?1), ('smtp', ?2)",
            vec![site, smtp],
        ),
        (
            "INSERT INTO queues (id, name, created_at, auto_assign) VALUES \
             (1, 'Billing', 5, 1), (2, 'Hardware', 6, 0)",
            vec![],
        ),
        (
            "INSERT INTO queue_members (queue_id, account_id) VALUES (1, 2)",
            vec![],
        ),
        (
            "INSERT INTO sessions (number, started_at, started_by, ended_at, end_reason) \
             VALUES ('123456789', 1000, 2, 2000, 'primary_left'), \
             ('987654321', 3000, 2, NULL, NULL)",
            vec![],
        ),
        (
            "INSERT INTO audit (session, at, actor, action, record) VALUES \
             ('123456789', 1000, 'Ann Agent (ann)', 'session_started', ?1), \
             ('123456789', 1500, 'Bob', 'joined', ?1), \
             ('123456789', 2000, NULL, 'session_ended', ?1)",
            vec![record.to_string()],
        ),
        (
            "INSERT INTO invitations (session, invitee, address, by_name, link, join_page, \
             state, reason, created_at, updated_at) VALUES \
             ('123456789', 'customer', 'bob@example.com', 'Ann Agent', 'http://x/j/s', \
              'http://x/join', 'sent', NULL, 1100, 1200), \
             ('123456789', 'support_rep', 'eve@example.com', 'Ann Agent', 'http://x/j/s', \
              'http://x/join', 'failed', 'mailbox unavailable', 1300, 1400)",
            vec![],
        ),
    ];
    for (sql, binds) in rows {
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = query.bind(bind);
        }
        query.execute(&pool).await.expect(sql);
    }
    pool.close().await;
}

fn smtp_settings() -> SmtpSettings {
    SmtpSettings {
        host: "mail.example.com".into(),
        port: 587,
        tls: TlsMode::Starttls,
        username: Some("tandem".into()),
        password: Some("mail-password".into()),
        from: "Support <support@example.com>".into(),
    }
}

#[tokio::test]
async fn a_database_from_the_previous_release_opens_with_its_data_intact() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("tandem.db");
    previous_release_database(&path).await;
    let data_dir = dir.path().to_owned();
    let server = TestServer::start_with(|config| {
        config.data_dir = data_dir;
        config.metrics_token = Some(TOKEN.into());
    })
    .await;
    let store = &server.state.store;

    let accounts: Vec<(String, bool, bool, bool)> = store
        .accounts()
        .await
        .expect("accounts")
        .into_iter()
        .map(|a| (a.username, a.is_admin, a.is_webacd, a.disabled))
        .collect();
    assert_eq!(
        accounts,
        [
            ("admin".into(), true, false, false),
            ("ann".into(), false, true, false),
            ("old".into(), false, false, true),
        ]
    );
    assert_eq!(
        store.settings().await.expect("settings"),
        SiteSettings {
            max_customers_per_rep: 7,
            allow_multiple_sessions: true,
            max_file_mb: 2000,
            allow_recording: false,
            recording_retention_days: 30,
        }
    );
    assert_eq!(
        store.smtp_settings().await.expect("smtp"),
        Some(smtp_settings())
    );
    let queues: Vec<(String, Vec<i64>, bool)> = store
        .queues()
        .await
        .expect("queues")
        .into_iter()
        .map(|q| (q.name, q.members, q.auto_assign))
        .collect();
    assert_eq!(
        queues,
        [
            ("Billing".into(), vec![2], true),
            ("Hardware".into(), vec![], false)
        ]
    );
    let invitations: Vec<(String, String, Option<String>)> = store
        .invitations("123456789")
        .await
        .expect("invitations")
        .into_iter()
        .map(|i| (i.address, i.state, i.reason))
        .collect();
    assert_eq!(
        invitations,
        [
            ("bob@example.com".into(), "sent".into(), None),
            (
                "eve@example.com".into(),
                "failed".into(),
                Some("mailbox unavailable".into())
            ),
        ]
    );
    // The old audit records are kept, in order, and chained by this release (0004).
    let audit = store.audit(None, 100).await.expect("audit");
    let actions: Vec<&str> = audit.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["session_started", "joined", "session_ended"]);
    let report = store.verify_audit_chain().await.expect("verify");
    assert!(report.is_intact(), "{report}");

    // The server works on it: the old admin and rep log in with their passwords, the rep
    // starts a session and opens its page.
    let admin = server.admin().await;
    let reps: Value = admin
        .get("/api/admin/reps")
        .await
        .json()
        .await
        .expect("reps");
    assert_eq!(reps.as_array().map(Vec::len), Some(3), "{reps}");
    let ann = server.login("ann", REP_PASSWORD).await;
    let (number, secret) = ann.start_session().await;
    let mut page = rep_page(&server, &ann, &number).await;
    let (_bob, _) = customer_by_link(&server, &secret, "Bob").await;
    page.recv_type("participant_joined").await;
    server.state.flush().await;
    let report = store.verify_audit_chain().await.expect("verify");
    assert!(report.is_intact(), "{report}");
    assert!(store.audit(None, 100).await.expect("audit").len() > 3);
    let metrics = scrape(&server).await;
    assert_eq!(value(&metrics, r#"tandem_invitations{state="sent"}"#), 1.0);
    assert_eq!(
        value(&metrics, r#"tandem_invitations{state="failed"}"#),
        1.0
    );
    assert_eq!(value(&metrics, "tandem_live_sessions"), 1.0);

    // The session left open when the old server stopped was marked ended at this start.
    let file =
        SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path).read_only(true))
            .await
            .expect("read the file");
    let reason: Option<String> =
        sqlx::query_scalar("SELECT end_reason FROM sessions WHERE number = '987654321'")
            .fetch_one(&file)
            .await
            .expect("row");
    assert_eq!(reason.as_deref(), Some("server_restarted"));
    let old_reason: Option<String> =
        sqlx::query_scalar("SELECT end_reason FROM sessions WHERE number = '123456789'")
            .fetch_one(&file)
            .await
            .expect("row");
    assert_eq!(old_reason.as_deref(), Some("primary_left"));
}

#[tokio::test]
async fn logs_are_json_lines_when_asked() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().expect("dir");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem-signaling"))
        .args([
            "--port",
            "0",
            "--no-embedded-turn",
            "--admin-password",
            ADMIN_PASSWORD,
            "--data-dir",
        ])
        .arg(dir.path())
        .env("TANDEM_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env_remove("TANDEM_CONFIG")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start tandem-signaling");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    // Every log line is one JSON object (the banner for people is not a log line).
    let entry = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.expect("read") {
            if !line.starts_with('{') {
                continue;
            }
            let entry: Value = serde_json::from_str(&line).expect("the log line is JSON");
            assert!(entry["timestamp"].is_string(), "{entry}");
            if entry["fields"]["message"] == "serving" {
                return entry;
            }
        }
        panic!("the server ended without logging that it serves");
    })
    .await
    .expect("a log line in time");
    assert_eq!(entry["level"], "INFO", "{entry}");
    child.kill().await.expect("stop the server");
}

/// Recording does not start while the disk holding the recordings is short of space
/// (docs/self-hosting.md "Recordings", `recording_min_free_mb`): the recorder leaves at
/// once, everyone sees the recording stop, and the rep who started it hears why.
#[tokio::test]
async fn recording_does_not_start_while_the_disk_is_short_of_space() {
    // More free space than any disk has.
    let server = TestServer::start_with(|c| c.recording_min_free = u64::MAX).await;
    let admin = server.admin().await;
    let response = admin
        .put(
            "/api/admin/settings",
            json!({"max_customers_per_rep": 5, "allow_multiple_sessions": false,
                   "allow_recording": true, "recording_retention_days": 30}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let rita = server.rep("rita", false).await;
    let (number, _) = rita.start_session().await;
    let mut rep = rep_page(&server, &rita, &number).await;
    rep.send(json!({"type": "start_recording"})).await;
    let started = rep.recv_type("recording_state").await;
    assert!(started["recording"].is_object(), "{started}");
    let notice = rep
        .recv_until(|m| {
            m["type"] == "notice" && m["text"].as_str().is_some_and(|t| t.contains("MB free"))
        })
        .await;
    assert!(
        notice["text"]
            .as_str()
            .is_some_and(|t| t.contains("The recording stopped")),
        "{notice}"
    );
    let stopped = rep
        .recv_until(|m| m["type"] == "recording_state" && m["recording"].is_null())
        .await;
    assert!(stopped["recording"].is_null());
    let recordings: Value = rita
        .get("/api/recordings")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(recordings, json!([]), "nothing was written");
}
