//! The agent downloads (Linux and Windows), the static files and the login endpoint, against the real server:
//! downloads are streamed from disk, `/assets/` serves only what pages load, and logins are
//! slowed down per account with one answer for every kind of wrong.

use crate::common;

use std::net::IpAddr;

use common::{ADMIN_PASSWORD, REP_PASSWORD, TestServer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const MIB: u64 = 1024 * 1024;

/// This process's resident memory (the server runs inside it).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line");
    kib * 1024
}

/// `len` bytes that no filesystem stores sparsely and no slice of which repeats.
fn agent_bytes(len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len);
    let mut block: [u8; 32] = Sha256::digest(b"tandem-agent").into();
    while bytes.len() < len {
        bytes.extend_from_slice(&block);
        block = Sha256::digest(block).into();
    }
    bytes.truncate(len);
    bytes
}

#[tokio::test]
async fn the_agent_download_is_streamed_not_held_in_memory_per_request() {
    const SIZE: usize = 20 * 1024 * 1024;
    const STALLED: usize = 30;
    let dir = tempfile::tempdir().expect("dir");
    let binary = dir.path().join("tandem-agent");
    let expected_hash = {
        let bytes = agent_bytes(SIZE);
        std::fs::write(&binary, &bytes).expect("write the agent");
        Sha256::digest(&bytes)
    };
    let server = TestServer::start_with(|c| c.agent_binary = Some(binary.clone())).await;
    let url = format!("{}/download/tandem-agent", server.base);
    let client = reqwest::Client::new();

    let before = resident_bytes();
    // Customers whose downloads stall: each request is answered, its body never read.
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        stalled.push(client.get(&url).send().await.expect("headers"));
    }
    let grown = resident_bytes().saturating_sub(before);
    for response in &stalled {
        assert_eq!(response.status(), 200);
        assert_eq!(response.content_length(), Some(SIZE as u64));
    }
    assert!(
        grown < 100 * MIB,
        "{STALLED} stalled downloads of {} MiB grew the server by {} MiB",
        SIZE as u64 / MIB,
        grown / MIB
    );
    drop(stalled);

    let response = client.get(&url).send().await.expect("download");
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-length"], SIZE.to_string().as_str());
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"tandem-agent\""
    );
    let body = response.bytes().await.expect("the whole agent");
    assert_eq!(body.len(), SIZE);
    assert_eq!(Sha256::digest(&body), expected_hash, "the bytes on disk");

    // A broken download resumes where it stopped.
    let response = client
        .get(&url)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .expect("range");
    assert_eq!(response.status(), 206);
    assert_eq!(
        &response.bytes().await.expect("part")[..],
        &body[1000..2000]
    );
}

#[tokio::test]
async fn a_missing_agent_binary_says_the_download_is_not_set_up() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("no-such-agent");
    let server = TestServer::start_with(|c| c.agent_binary = Some(missing)).await;
    let r = server.anonymous().get("/download/tandem-agent").await;
    assert_eq!(r.status(), 404);
    assert!(
        r.text()
            .await
            .expect("text")
            .contains("not set up on this server")
    );
}

#[tokio::test]
async fn the_windows_agent_is_served_as_an_exe_attachment_from_the_configured_path() {
    let dir = tempfile::tempdir().expect("dir");
    let exe = dir.path().join("built-agent.exe");
    let bytes = [b"MZ\x90\x00".as_slice(), &agent_bytes(4096)].concat();
    std::fs::write(&exe, &bytes).expect("write the agent");
    let server = TestServer::start_with(|c| c.agent_binary_windows = Some(exe)).await;
    let url = format!("{}/download/tandem-agent.exe", server.base);
    let client = reqwest::Client::new();

    let response = client.get(&url).send().await.expect("download");
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(
        headers["content-type"],
        "application/vnd.microsoft.portable-executable"
    );
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"tandem-agent.exe\""
    );
    assert_eq!(headers["content-length"], bytes.len().to_string().as_str());
    assert_eq!(&response.bytes().await.expect("body")[..], &bytes[..]);

    // What the join page asks before it offers the link: the answer, and no body.
    let head = client.head(&url).send().await.expect("head");
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        bytes.len().to_string().as_str()
    );
    assert!(head.bytes().await.expect("body").is_empty());

    // The Linux download is its own setting: not set up here.
    let linux = server.anonymous().get("/download/tandem-agent").await;
    assert_eq!(linux.status(), 404);
}

#[tokio::test]
async fn a_windows_agent_not_set_up_or_missing_says_so_to_get_and_head() {
    let dir = tempfile::tempdir().expect("dir");
    let without = TestServer::start().await;
    let missing =
        TestServer::start_with(|c| c.agent_binary_windows = Some(dir.path().join("gone.exe")))
            .await;
    let client = reqwest::Client::new();
    for (which, server) in [("not configured", &without), ("missing", &missing)] {
        let url = format!("{}/download/tandem-agent.exe", server.base);
        let head = client.head(&url).send().await.expect("head");
        assert_eq!(head.status(), 404, "{which}: HEAD");
        let r = client.get(&url).send().await.expect("get");
        assert_eq!(r.status(), 404, "{which}");
        let text = r.text().await.expect("text");
        assert!(
            text.contains("Windows agent download is not set up on this server")
                && text.contains("tandem-agent.exe"),
            "{which}: {text}"
        );
    }
}

/// Markup and the console's tests, as they would be addressed under `/assets/`.
const NOT_ASSETS: &[&str] = &[
    "/assets/dashboard.html",
    "/assets/admin.html",
    "/assets/session.html",
    "/assets/index.html",
    "/assets/login.html",
    "/assets/join.html",
    "/assets/tests/input.test.mjs",
    "/assets/tests/protocol.test.mjs",
    "/assets/tests/login.test.mjs",
    "/assets/tests/agent-download.test.mjs",
    "/assets/js/%2e%2e/dashboard.html",
    "/assets/js/..%2Fdashboard.html",
    "/assets/js/%2e%2e/tests/input.test.mjs",
    "/assets/js/",
    "/assets/",
];

#[tokio::test]
async fn assets_serve_scripts_and_styles_but_no_pages_or_tests_with_or_without_login() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    for (who, http) in [("anonymous", server.anonymous()), ("admin", admin)] {
        for path in NOT_ASSETS {
            let r = http.get(path).await;
            assert_eq!(r.status(), 404, "{who} {path}");
            let body = r.text().await.expect("text");
            assert!(!body.contains('<'), "{who} {path}: {body}");
        }
        // The pages themselves are where they belong, and the admin sees them there.
        let r = http.get("/dashboard").await;
        let expected = if who == "admin" { 200 } else { 401 };
        assert_eq!(r.status(), expected, "{who} /dashboard");
        if who == "admin" {
            assert!(
                r.text()
                    .await
                    .expect("text")
                    .contains("/assets/js/dashboard.js")
            );
        }
    }
    for (path, kind) in [
        ("/assets/js/session.js", "javascript"),
        ("/assets/js/login.js", "javascript"),
        ("/assets/js/agent-download.js", "javascript"),
        ("/assets/style.css", "text/css"),
    ] {
        let r = server.anonymous().get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        let content_type = r.headers()["content-type"].to_str().expect("ascii");
        assert!(content_type.contains(kind), "{path}: {content_type}");
        assert!(!r.text().await.expect("text").is_empty(), "{path}");
    }
}

/// A client whose connections come from 127.0.0.`n`, so the per-address limit sees
/// a different address for each.
fn client_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, n]))
        .build()
        .expect("client")
}

/// A login attempt from 127.0.0.`n`: the status, the JSON body and any Retry-After.
async fn try_login(
    server: &TestServer,
    n: u8,
    username: &str,
    password: &str,
) -> (u16, Value, Option<String>) {
    let response = client_from(n)
        .post(format!("{}/api/login", server.base))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = response.json().await.expect("json");
    (status, body, retry_after)
}

fn is_account_refusal(body: &Value) -> bool {
    body["error"].as_str().is_some_and(|e| {
        e.starts_with("too many failed logins for this account; try again in ")
            && (e.ends_with(" second") || e.ends_with(" seconds"))
    })
}

/// Create an account through the admin API.
async fn create_account(server: &TestServer, username: &str, disabled: bool) {
    let admin = server.admin().await;
    let r = admin
        .post(
            "/api/admin/reps",
            json!({"username": username, "display_name": username, "password": REP_PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 201, "create {username}");
    if disabled {
        let id = server.account_id(&admin, username).await;
        let r = admin
            .patch(&format!("/api/admin/reps/{id}"), json!({"disabled": true}))
            .await;
        assert_eq!(r.status(), 200, "disable {username}");
    }
}

const WRONG: &str = "wrong-password";

#[tokio::test]
async fn wrong_passwords_for_one_account_from_many_addresses_are_slowed_down() {
    let server = TestServer::start().await;
    create_account(&server, "rita", false).await;
    create_account(&server, "sam", false).await;

    // 100 guesses from 20 addresses, 5 each: the per-address limit never triggers.
    let mut answers = Vec::new();
    for i in 0..100u8 {
        answers.push(try_login(&server, 2 + i % 20, "rita", WRONG).await);
    }
    for (i, (status, body, _)) in answers.iter().take(5).enumerate() {
        assert_eq!(*status, 401, "guess {i}: {body}");
    }
    let refused: Vec<_> = answers
        .iter()
        .filter(|(status, ..)| *status == 429)
        .collect();
    assert!(
        refused.len() >= 90,
        "only {} of 100 guesses were refused",
        refused.len()
    );
    for (_, body, retry_after) in &refused {
        assert!(is_account_refusal(body), "{body}");
        let seconds: u64 = retry_after
            .as_deref()
            .and_then(|s| s.parse().ok())
            .expect("Retry-After in seconds");
        assert!((1..=300).contains(&seconds), "{seconds}");
    }
    let checked = answers.iter().filter(|(status, ..)| *status == 401).count();
    assert_eq!(checked + refused.len(), 100, "{answers:?}");

    // Even the right password waits: the slow-down is for the account, not the guess.
    let (status, body, _) = try_login(&server, 30, "rita", REP_PASSWORD).await;
    assert_eq!(status, 429, "{body}");
    assert!(is_account_refusal(&body), "{body}");
    // Another account logs in meanwhile.
    let (status, body, _) = try_login(&server, 31, "sam", REP_PASSWORD).await;
    assert_eq!((status, body["username"].as_str()), (200, Some("sam")));
}

#[tokio::test]
async fn a_name_without_an_account_is_slowed_down_exactly_like_an_account() {
    let server = TestServer::start().await;
    create_account(&server, "rita", false).await;
    let mut existing = Vec::new();
    let mut missing = Vec::new();
    for i in 0..6u8 {
        existing.push(try_login(&server, 40 + i, "rita", WRONG).await.0);
        missing.push(try_login(&server, 50 + i, "nobody", WRONG).await.0);
    }
    assert_eq!(existing, [401, 401, 401, 401, 401, 429]);
    assert_eq!(missing, existing);
}

#[tokio::test]
async fn a_successful_login_forgives_earlier_failures() {
    let server = TestServer::start().await;
    create_account(&server, "rita", false).await;
    for i in 0..4u8 {
        assert_eq!(try_login(&server, 60 + i, "rita", WRONG).await.0, 401);
    }
    assert_eq!(try_login(&server, 64, "rita", REP_PASSWORD).await.0, 200);
    for i in 0..5u8 {
        assert_eq!(try_login(&server, 70 + i, "rita", WRONG).await.0, 401);
    }
    assert_eq!(try_login(&server, 75, "rita", WRONG).await.0, 429);
}

/// A burst of logins beyond the four password checks that run at once (a team starting
/// its day, each rep at their own desk) waits its turn instead of being told the server
/// is busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_logins_waits_its_turn_rather_than_finding_the_server_busy() {
    let server = TestServer::start().await;
    let reps: Vec<String> = (0..10).map(|i| format!("rep{i}")).collect();
    for rep in &reps {
        create_account(&server, rep, false).await;
    }
    let logins = (0..10u8).map(|i| try_login(&server, 90 + i, &reps[usize::from(i)], REP_PASSWORD));
    let answers = futures_util::future::join_all(logins).await;
    let statuses: Vec<u16> = answers.iter().map(|(status, ..)| *status).collect();
    assert_eq!(statuses, [200; 10], "{answers:?}");
}

#[tokio::test]
async fn a_disabled_account_with_its_password_gets_the_answer_of_a_wrong_password() {
    let server = TestServer::start().await;
    create_account(&server, "sam", true).await;
    let right = try_login(&server, 80, "sam", REP_PASSWORD).await;
    let wrong = try_login(&server, 81, "sam", WRONG).await;
    let nobody = try_login(&server, 82, "nobody", WRONG).await;
    assert_eq!(right.0, 401);
    assert_eq!(right.1, json!({"error": "wrong username or password"}));
    assert_eq!(right, wrong);
    assert_eq!(right, nobody);
    // The admin's own login is unaffected by all this.
    let (status, ..) = try_login(&server, 83, "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, 200);
}
