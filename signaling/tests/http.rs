//! HTTP: logins, roles, starting sessions, and the guards on every rep and admin route.

use crate::common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn the_first_start_creates_an_admin_who_can_log_in() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let me: Value = admin.get("/api/me").await.json().await.expect("json");
    assert_eq!(me["username"], "admin");
    assert_eq!(me["is_admin"], true);
}

#[tokio::test]
async fn wrong_passwords_are_refused_and_then_rate_limited() {
    let server = TestServer::start().await;
    let anon = server.anonymous();
    let mut statuses = vec![];
    for _ in 0..12 {
        let r = anon
            .post(
                "/api/login",
                json!({"username": "admin", "password": "wrong"}),
            )
            .await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses[0], 401);
    let body: Value = anon
        .post(
            "/api/login",
            json!({"username": "nobody", "password": "wrong"}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert!(
        body["error"]
            .as_str()
            .expect("message")
            .contains("wait a minute"),
        "{body}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn the_login_cookie_is_httponly_and_samesite_strict() {
    let server = TestServer::start().await;
    let r = server
        .anonymous()
        .post(
            "/api/login",
            json!({"username": "admin", "password": ADMIN_PASSWORD}),
        )
        .await;
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
}

#[tokio::test]
async fn logout_ends_the_login() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    assert_eq!(admin.post("/api/logout", json!({})).await.status(), 204);
    assert_eq!(admin.get("/api/me").await.status(), 401);
}

#[tokio::test]
async fn unauthenticated_calls_to_rep_and_admin_routes_get_401_or_404() {
    let server = TestServer::start().await;
    let anon = server.anonymous();
    let routes = [
        "/api/me",
        "/api/sessions",
        "/api/admin/reps",
        "/api/admin/settings",
        "/api/admin/queues",
        "/api/admin/audit",
        "/dashboard",
        "/admin",
        "/session/123456789",
    ];
    for route in routes {
        let variants = [
            route.to_string(),
            format!("{route}/"),
            format!("/{route}"),
            route.replacen('/', "//", 2),
            route.to_uppercase(),
            route.replace('a', "%61"),
            format!("{route}?x=1"),
        ];
        for path in variants {
            let status = anon.get(&path).await.status().as_u16();
            assert!(status == 401 || status == 404, "{path} answered {status}");
        }
        assert_eq!(anon.get(route).await.status(), 401, "{route}");
    }
    let r = anon
        .post("/api/sessions", json!({"email_invite": false}))
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn reps_are_not_admins() {
    let server = TestServer::start().await;
    let rep = server.rep("rita", false).await;
    assert_eq!(rep.get("/api/admin/reps").await.status(), 403);
    assert_eq!(rep.get("/admin").await.status(), 403);
    assert_eq!(rep.get("/dashboard").await.status(), 200);
}

#[tokio::test]
async fn admin_manages_reps_with_clear_errors() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let cases = [
        (
            json!({"username": "bad name", "display_name": "X", "password": "longenough"}),
            400,
            "username",
        ),
        (
            json!({"username": "ok", "display_name": "X", "password": "short"}),
            400,
            "8 characters",
        ),
        (
            json!({"username": "ok", "display_name": "", "password": "longenough"}),
            400,
            "display name",
        ),
        (
            json!({"username": "admin", "display_name": "X", "password": "longenough"}),
            409,
            "already taken",
        ),
    ];
    for (body, status, words) in cases {
        let r = admin.post("/api/admin/reps", body.clone()).await;
        assert_eq!(r.status(), status, "{body}");
        let err: Value = r.json().await.expect("json");
        assert!(
            err["error"].as_str().expect("error").contains(words),
            "{err}"
        );
    }
    let r = admin
        .post(
            "/api/admin/reps",
            json!({"username": "sam", "display_name": "Sam", "password": "longenough"}),
        )
        .await;
    let sam: Value = r.json().await.expect("json");
    let r = admin
        .patch(
            &format!("/api/admin/reps/{}", sam["id"]),
            json!({"is_webacd": true, "disabled": true}),
        )
        .await;
    let sam: Value = r.json().await.expect("json");
    assert_eq!(
        (sam["is_webacd"].as_bool(), sam["disabled"].as_bool()),
        (Some(true), Some(true))
    );
    let r = server
        .anonymous()
        .post(
            "/api/login",
            json!({"username": "sam", "password": "longenough"}),
        )
        .await;
    // The same answer as a wrong password: a disabled account is no password oracle.
    assert_eq!(r.status(), 401, "a disabled account cannot log in");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body, json!({"error": "wrong username or password"}));
}

/// C3 for the site: every change an administrator makes (accounts, roles, passwords,
/// settings, mail, queues, ending every session) and every login, with who, when and from
/// where, is in the audit log and its hash chain. Passwords never are, and neither are
/// attempts on names that exist nowhere.
#[tokio::test]
async fn administrators_changes_and_logins_are_audited() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let anon = server.anonymous();
    let status = |r: reqwest::Response| r.status().as_u16();
    let r = admin
        .post(
            "/api/admin/reps",
            json!({"username": "sam", "display_name": "Sam", "password": "first-password"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let sam: Value = r.json().await.expect("json");
    let sam = format!("/api/admin/reps/{}", sam["id"]);
    let r = admin
        .patch(
            &sam,
            json!({"is_webacd": true, "password": "second-password"}),
        )
        .await;
    assert_eq!(status(r), 200);
    // A change refused is no change: nothing recorded.
    assert_eq!(
        status(admin.patch(&sam, json!({"password": "short"})).await),
        400
    );
    let login =
        |username: &str, password: &str| json!({"username": username, "password": password});
    // Refused twice, recorded once: a second refusal within 10 minutes is only counted.
    for _ in 0..2 {
        let r = anon
            .post("/api/login", login("sam", "first-password"))
            .await;
        assert_eq!(status(r), 401);
    }
    assert_eq!(
        status(anon.post("/api/login", login("nobody", "whatever-1")).await),
        401
    );
    assert_eq!(
        status(
            anon.post("/api/login", login("sam", "second-password"))
                .await
        ),
        200
    );
    // A disabled account's right password is refused, and recorded as such.
    let r = admin
        .post(
            "/api/admin/reps",
            json!({"username": "dan", "display_name": "Dan", "password": "dans-password"}),
        )
        .await;
    let dan: Value = r.json().await.expect("json");
    let dan = format!("/api/admin/reps/{}", dan["id"]);
    assert_eq!(
        status(admin.patch(&dan, json!({"disabled": true})).await),
        200
    );
    assert_eq!(
        status(anon.post("/api/login", login("dan", "dans-password")).await),
        401
    );
    let r = admin
        .put(
            "/api/admin/settings",
            json!({"max_customers_per_rep": 3, "allow_multiple_sessions": true}),
        )
        .await;
    assert_eq!(status(r), 200);
    let r = admin
        .post("/api/admin/queues", json!({"name": "Billing"}))
        .await;
    assert_eq!(r.status(), 201);
    let queue: Value = r.json().await.expect("json");
    let queue = format!("/api/admin/queues/{}", queue["id"]);
    let sam_id: i64 = sam
        .rsplit('/')
        .next()
        .and_then(|id| id.parse().ok())
        .expect("id");
    let r = admin
        .put(&format!("{queue}/members"), json!({"members": [sam_id]}))
        .await;
    assert_eq!(status(r), 200);
    assert_eq!(
        status(admin.patch(&queue, json!({"auto_assign": true})).await),
        200
    );
    assert_eq!(status(admin.delete(&queue).await), 204);
    assert_eq!(status(admin.delete(&queue).await), 404, "gone already");
    let r = admin
        .put(
            "/api/admin/mail",
            json!({"host": "mail.example.com", "port": 587, "tls": "starttls",
                   "username": "support", "password": "mail-password",
                   "from": "Support <support@example.com>"}),
        )
        .await;
    assert_eq!(status(r), 200);
    assert_eq!(status(admin.delete("/api/admin/mail").await), 204);
    let r = admin
        .post("/api/admin/sessions/end-all", json!({"confirm": true}))
        .await;
    assert_eq!(status(r), 200);

    let entries: Value = admin
        .get("/api/admin/audit?limit=1000")
        .await
        .json()
        .await
        .expect("json");
    let entries = entries.as_array().expect("entries");
    let text = serde_json::to_string(entries).expect("text");
    for secret in ["first-password", "second-password", "mail-password"] {
        assert!(
            !text.contains(secret),
            "a password in the audit log: {text}"
        );
    }
    assert!(
        !text.contains("nobody"),
        "an unknown name is not recorded: {text}"
    );
    // Oldest first, only the site's records.
    let site: Vec<&Value> = entries
        .iter()
        .rev()
        .filter(|e| e["session"] == "")
        .collect();
    // The first start made the admin: by nobody (the server).
    assert_eq!(site[0]["action"], "account_created", "{text}");
    assert_eq!(site[0]["record"]["account"], "admin");
    assert_eq!(site[0]["record"]["is_admin"], true);
    assert!(site[0]["actor"].is_null());
    let site = &site[1..];
    let actions: Vec<&str> = site
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        [
            "logged_in",
            "account_created",
            "account_changed",
            "login_refused",
            "logged_in",
            "account_created",
            "account_changed",
            "login_refused",
            "settings_changed",
            "queue_created",
            "queue_members_set",
            "queue_changed",
            "queue_deleted",
            "mail_changed",
            "mail_removed",
            "sessions_ended_all",
        ],
        "{text}"
    );
    let by_admin = Some("Administrator (admin)");
    assert_eq!(site[0]["actor"].as_str(), by_admin, "the admin's own login");
    assert_eq!(site[0]["record"]["address"], "127.0.0.1");
    for e in &site[1..3] {
        assert_eq!(e["actor"].as_str(), by_admin);
        assert_eq!(e["record"]["account"], "sam");
    }
    assert_eq!(site[2]["record"]["is_webacd"], true);
    assert_eq!(site[2]["record"]["password_set"], true);
    assert!(site[2]["record"].get("is_admin").is_none(), "{}", site[2]);
    assert_eq!(site[3]["record"]["reason"], "wrong_password");
    assert_eq!(site[3]["record"]["account"], "sam");
    assert!(site[3]["actor"].is_null(), "a refused login has no actor");
    assert!(
        site[3]["record"].get("unrecorded_before").is_none(),
        "the first refusal: none before it"
    );
    assert_eq!(site[4]["actor"].as_str(), Some("Sam (sam)"));
    assert_eq!(site[5]["record"]["account"], "dan");
    assert_eq!(site[6]["record"]["disabled"], true);
    assert_eq!(site[7]["record"]["account"], "dan");
    assert_eq!(site[7]["record"]["reason"], "disabled");
    assert_eq!(site[8]["record"]["settings"]["max_customers_per_rep"], 3);
    for e in &site[9..13] {
        assert_eq!(e["record"]["queue"], "Billing", "{e}");
    }
    assert_eq!(site[10]["record"]["members"], json!(["sam"]));
    assert_eq!(site[11]["record"]["auto_assign"], true);
    assert_eq!(site[13]["record"]["settings"]["host"], "mail.example.com");
    assert_eq!(site[13]["record"]["settings"]["has_password"], true);
    assert_eq!(site[15]["record"]["ended"], 0);
    for e in site[5..7].iter().chain(&site[8..]) {
        assert_eq!(e["actor"].as_str(), by_admin, "{e}");
    }
    // In the chain, like every record.
    let chain: Value = admin
        .get("/api/admin/audit/verify")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(chain["intact"], true, "{chain}");
    assert_eq!(
        chain["records"].as_u64(),
        Some(entries.len() as u64),
        "{chain}"
    );
}

#[tokio::test]
async fn a_rep_runs_one_session_unless_the_site_allows_several() {
    let server = TestServer::start().await;
    let rep = server.rep("rita", false).await;
    rep.start_session().await;
    let r = rep
        .post("/api/sessions", json!({"email_invite": true}))
        .await;
    assert_eq!(r.status(), 409);
    let err: Value = r.json().await.expect("json");
    assert!(
        err["error"]
            .as_str()
            .expect("error")
            .contains("already running"),
        "{err}"
    );
    server.set_max_customers(5, true).await;
    rep.start_session().await;
    let sessions: Value = rep.get("/api/sessions").await.json().await.expect("json");
    assert_eq!(sessions.as_array().expect("list").len(), 2);
}

#[tokio::test]
async fn state_changing_requests_from_other_sites_are_refused() {
    let server = TestServer::start().await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/login", server.base))
        .header("origin", "http://evil.example")
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn pages_carry_security_headers_and_assets_are_served() {
    let server = TestServer::start().await;
    let r = server.anonymous().get("/join").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("default-src 'self'")
    );
    let r = server.anonymous().get("/assets/js/ws.js").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("type")
            .contains("javascript")
    );
    assert_eq!(
        server.anonymous().get("/assets/nope.js").await.status(),
        404
    );
}

#[tokio::test]
async fn admin_settings_are_validated() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let r = admin
        .put(
            "/api/admin/settings",
            json!({"max_customers_per_rep": 0, "allow_multiple_sessions": false}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = admin
        .put(
            "/api/admin/settings",
            json!({"max_customers_per_rep": "two"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let r = admin
        .put(
            "/api/admin/settings",
            json!({"max_customers_per_rep": 5, "allow_multiple_sessions": false,
                   "max_file_mb": 100_001}),
        )
        .await;
    assert_eq!(r.status(), 400, "a file limit above 100000 MB is refused");
    // A client that does not know the file limit keeps working: it gets the default.
    let r = admin
        .put(
            "/api/admin/settings",
            json!({"max_customers_per_rep": 5, "allow_multiple_sessions": false}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let saved: serde_json::Value = admin
        .get("/api/admin/settings")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(saved["max_file_mb"], 2000, "{saved}");
}

#[tokio::test]
async fn the_agent_download_serves_the_configured_binary_or_says_it_is_missing() {
    let dir = tempfile::tempdir().expect("dir");
    let binary = dir.path().join("tandem-agent");
    std::fs::write(&binary, b"\x7fELF-agent-bytes").expect("write");
    let server = TestServer::start_with(|c| c.agent_binary = Some(binary.clone())).await;
    let r = server.anonymous().get("/download/tandem-agent").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .contains("tandem-agent")
    );
    assert_eq!(&r.bytes().await.expect("body")[..], b"\x7fELF-agent-bytes");

    let without = TestServer::start().await;
    let r = without.anonymous().get("/download/tandem-agent").await;
    assert_eq!(r.status(), 404);
    assert!(
        r.text()
            .await
            .expect("text")
            .contains("not set up on this server")
    );
    // Only that one path: nothing else can be fetched through it.
    let r = without
        .anonymous()
        .get("/download/..%2F..%2Fetc%2Fpasswd")
        .await;
    assert_eq!(r.status(), 404);
}

/// docs/http-api.md: every error answer under `/api` is JSON, an unknown path and a
/// wrong method too (a client branches on one shape).
#[tokio::test]
async fn an_unknown_api_path_and_a_wrong_method_answer_json() {
    let server = TestServer::start().await;
    let anon = server.anonymous();
    let missing = anon.get("/api/no-such-route").await;
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.expect("a JSON body");
    assert!(body["error"].is_string(), "{body}");
    let wrong = anon.put("/api/login", json!({})).await;
    assert_eq!(wrong.status(), 405);
    let allow = wrong
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(allow.contains("POST"), "Allow: {allow:?}");
    let body: Value = wrong.json().await.expect("a JSON body");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("method")),
        "{body}"
    );
}

/// While the server stops for a restart, starting a session answers 503 with a sentence
/// (docs/http-api.md), and a WebSocket join gets `restarting` (docs/protocol.md §7):
/// nothing was done, and the client may try again once the server is back.
#[tokio::test]
async fn while_the_server_stops_a_start_is_503_and_a_join_is_restarting() {
    let server = TestServer::start().await;
    let rep = server.rep("rita", false).await;
    let (_number, secret) = rep.start_session().await;
    server.state.registry.suspend_all();
    let refused = rep
        .post("/api/sessions", json!({"email_invite": false}))
        .await;
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.expect("json");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("restarting")),
        "{body}"
    );
    let mut ws = server.ws(None).await;
    ws.hello("customer").await;
    ws.send(json!({"type": "join_by_link", "secret": secret, "name": "Ann"}))
        .await;
    let error = ws.recv_type("error").await;
    assert_eq!(error["code"], "restarting", "{error}");
}
