//! C3: the audit log's hash chain, against a real server and its database file. A real
//! session writes the records; then someone with access to the file drops the append-only
//! triggers and edits, removes or reorders records, and both the admin API and
//! `tandem-signaling audit verify` name the first record that no longer fits.

use crate::common;

use std::path::PathBuf;

use common::*;
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Row};

/// A server whose audit log holds a real session: started, the rep's and two customers'
/// joins, the end. Returns the server, an admin, and the records' ids in order.
async fn server_with_a_session() -> (TestServer, Http, Vec<i64>) {
    let server = TestServer::start().await;
    let rep = server.rep("rita", false).await;
    let (number, secret) = rep.start_session().await;
    let page = rep_page(&server, &rep, &number).await;
    let (mut ann, _) = customer_by_link(&server, &secret, "Ann").await;
    let (mut bob, _) = customer_by_link(&server, &secret, "Bob").await;
    page.close_page().await;
    for ws in [&mut ann, &mut bob] {
        ws.recv_type("session_ended").await;
    }
    server.state.flush().await;

    let admin = server.admin().await;
    let listed: Vec<Value> = admin
        .get("/api/admin/audit?limit=1000")
        .await
        .json()
        .await
        .expect("audit json");
    let mut ids: Vec<i64> = listed
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect();
    ids.sort_unstable();
    assert!(
        ids.len() >= 5,
        "a session writes several records: {listed:?}"
    );

    let chain = chain_state(&admin).await;
    assert_eq!(chain["intact"], true, "{chain}");
    assert_eq!(chain["records"].as_u64(), u64::try_from(ids.len()).ok());
    let head = chain["head"].as_str().expect("a head");
    assert_eq!(head.len(), 64, "{chain}");
    (server, admin, ids)
}

async fn chain_state(admin: &Http) -> Value {
    let response = admin.get("/api/admin/audit/verify").await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

fn database(server: &TestServer) -> PathBuf {
    server.state.config.data_dir.join("tandem.db")
}

/// A second connection to the database file, as someone with access to it would open, with
/// the append-only triggers dropped.
async fn attacker(server: &TestServer) -> SqliteConnection {
    let mut conn = SqliteConnectOptions::new()
        .filename(database(server))
        .connect()
        .await
        .expect("open the database file");
    sqlx::raw_sql("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
        .execute(&mut conn)
        .await
        .expect("drop the triggers");
    conn
}

/// `tandem-signaling audit verify --data-dir <dir>`, the real binary.
async fn verify_command(server: &TestServer) -> (Option<i32>, String) {
    let dir = server.state.config.data_dir.clone();
    run_signaling(vec![
        "audit".into(),
        "verify".into(),
        "--data-dir".into(),
        dir.into(),
    ])
    .await
}

#[tokio::test]
async fn the_chain_state_is_for_admins_only() {
    let server = TestServer::start().await;
    assert_eq!(
        server
            .anonymous()
            .get("/api/admin/audit/verify")
            .await
            .status(),
        401
    );
    let rep = server.rep("rita", false).await;
    assert_eq!(rep.get("/api/admin/audit/verify").await.status(), 403);
    // No session yet, but the site's own records: the first admin's creation at the
    // first start, the admin's login and Rita's account (made by `rep`), Rita's login, and
    // the admin's login now.
    let state = chain_state(&server.admin().await).await;
    assert_eq!(
        (&state["intact"], &state["records"]),
        (&json!(true), &json!(5)),
        "{state}"
    );
    assert_eq!(state["head"].as_str().map(str::len), Some(64), "{state}");
}

#[tokio::test]
async fn an_edited_record_is_named_as_changed() {
    let (server, admin, ids) = server_with_a_session().await;
    let edited = ids[2];
    let mut file = attacker(&server).await;
    sqlx::query("UPDATE audit SET record = json_set(record, '$.participant', 99) WHERE id = ?")
        .bind(edited)
        .execute(&mut file)
        .await
        .expect("edit the details");

    let chain = chain_state(&admin).await;
    assert_eq!(chain["intact"], false, "{chain}");
    assert_eq!(chain["bad_record"].as_i64(), Some(edited), "{chain}");
    assert_eq!(chain["records"].as_u64(), Some(2), "{chain}");
    let problem = chain["problem"].as_str().expect("problem");
    assert!(
        problem.contains(&format!("record #{edited} was changed")),
        "{problem}"
    );
}

#[tokio::test]
async fn a_removed_middle_record_is_noticed_by_the_api_and_the_command() {
    let (server, admin, ids) = server_with_a_session().await;
    let head = chain_state(&admin).await["head"]
        .as_str()
        .expect("head")
        .to_owned();
    let (code, text) = verify_command(&server).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!("Audit log intact: {} records", ids.len())),
        "{text}"
    );
    assert!(text.contains(&head), "the full head is printed: {text}");

    let (removed, next) = (ids[2], ids[3]);
    let mut file = attacker(&server).await;
    sqlx::query("DELETE FROM audit WHERE id = ?")
        .bind(removed)
        .execute(&mut file)
        .await
        .expect("remove a record");

    let chain = chain_state(&admin).await;
    assert_eq!(chain["intact"], false, "{chain}");
    assert_eq!(chain["bad_record"].as_i64(), Some(next), "{chain}");
    let problem = chain["problem"].as_str().expect("problem");
    assert!(
        problem.contains(&format!(
            "record #{next} does not follow record #{}",
            ids[1]
        )) && problem.contains("removed"),
        "{problem}"
    );

    let (code, text) = verify_command(&server).await;
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("Audit log tampered"), "{text}");
    assert!(
        text.contains(&format!(
            "record #{next} does not follow record #{}",
            ids[1]
        )),
        "{text}"
    );
}

#[tokio::test]
async fn swapped_records_are_named_at_the_first_one_moved() {
    let (server, admin, ids) = server_with_a_session().await;
    let (a, b) = (ids[1], ids[3]);
    let mut file = attacker(&server).await;
    let content = |id: i64| {
        sqlx::query("SELECT session, at, actor, action, record FROM audit WHERE id = ?").bind(id)
    };
    let row_a = content(a).fetch_one(&mut file).await.expect("read a");
    let row_b = content(b).fetch_one(&mut file).await.expect("read b");
    for (target, source) in [(a, &row_b), (b, &row_a)] {
        sqlx::query(
            "UPDATE audit SET session = ?, at = ?, actor = ?, action = ?, record = ? WHERE id = ?",
        )
        .bind(source.get::<String, _>("session"))
        .bind(source.get::<i64, _>("at"))
        .bind(source.get::<Option<String>, _>("actor"))
        .bind(source.get::<String, _>("action"))
        .bind(source.get::<String, _>("record"))
        .bind(target)
        .execute(&mut file)
        .await
        .expect("swap");
    }

    let chain = chain_state(&admin).await;
    assert_eq!(chain["intact"], false, "{chain}");
    assert_eq!(chain["bad_record"].as_i64(), Some(a), "{chain}");
    assert!(
        chain["problem"]
            .as_str()
            .expect("problem")
            .contains(&format!("record #{a} was changed")),
        "{chain}"
    );
    // The listing still shows the log as it is now; nothing else broke.
    assert_eq!(admin.get("/api/admin/audit").await.status(), 200);
}

#[tokio::test]
async fn swapped_whole_rows_chain_columns_included_are_named_as_reordered() {
    let (server, admin, ids) = server_with_a_session().await;
    let (a, b) = (ids[1], ids[2]);
    let mut file = attacker(&server).await;
    // Moving rows by id keeps each one's own hashes: the order is what changed.
    sqlx::raw_sql(&format!(
        "UPDATE audit SET id = -1 WHERE id = {a}; \
         UPDATE audit SET id = {a} WHERE id = {b}; \
         UPDATE audit SET id = {b} WHERE id = -1;"
    ))
    .execute(&mut file)
    .await
    .expect("reorder");

    let chain = chain_state(&admin).await;
    assert_eq!(chain["bad_record"].as_i64(), Some(a), "{chain}");
    let problem = chain["problem"].as_str().expect("problem");
    assert!(
        problem.contains(&format!("record #{a} does not follow record #{}", ids[0]))
            && problem.contains("reordered"),
        "{problem}"
    );
}
