//! Double-click launch, against the real server: a download that carries a live agent
//! token is the agent binary with a launch trailer naming this server, the token and the
//! session; without a token the binary is served untouched; a token that is not live gets
//! one plain sentence; agent tokens expire, an expired one is refused at attach with its
//! own code, and the customer's page gets a fresh one before the last expires.

use crate::common;

use std::time::{Duration, Instant};

use common::{Http, TestServer, Ws, customer_by_link, rep_page};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tandem_protocol::launch::{self, Launch};

const MIB: u64 = 1024 * 1024;

/// `len` bytes that look like nothing in particular (and never end in the magic).
fn agent_bytes(prefix: &[u8], len: usize) -> Vec<u8> {
    let mut bytes = prefix.to_vec();
    let mut block: [u8; 32] = Sha256::digest(b"tandem-agent").into();
    while bytes.len() < len {
        bytes.extend_from_slice(&block);
        block = Sha256::digest(block).into();
    }
    bytes.truncate(len);
    bytes
}

struct Scene {
    server: TestServer,
    linux: Vec<u8>,
    windows: Vec<u8>,
    _rep: Http,
    _page: Ws,
    number: String,
    ann: Ws,
    _dir: tempfile::TempDir,
}

/// A server with both agents set up, a session whose rep has it open, and Ann joined by
/// link (her first `agent_token` not read yet).
async fn scene(lifetime: Option<Duration>, linux_len: usize) -> Scene {
    let dir = tempfile::tempdir().expect("dir");
    let linux = agent_bytes(b"\x7fELF", linux_len);
    let windows = agent_bytes(b"MZ\x90\x00", 5000);
    let (linux_path, windows_path) = (dir.path().join("agent"), dir.path().join("agent.exe"));
    std::fs::write(&linux_path, &linux).expect("write");
    std::fs::write(&windows_path, &windows).expect("write");
    let server = TestServer::start_with(|c| {
        c.agent_binary = Some(linux_path);
        c.agent_binary_windows = Some(windows_path);
        if let Some(lifetime) = lifetime {
            c.agent_token_lifetime = lifetime;
        }
    })
    .await;
    let rep = server.rep("rita", false).await;
    let (number, secret) = rep.start_session().await;
    let page = rep_page(&server, &rep, &number).await;
    let (ann, _) = customer_by_link(&server, &secret, "Ann").await;
    Scene {
        server,
        linux,
        windows,
        _rep: rep,
        _page: page,
        number,
        ann,
        _dir: dir,
    }
}

async fn next_token(ws: &mut Ws) -> String {
    ws.recv_type("agent_token").await["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// An agent connection attaching with `token`: its `joined` or its `error`.
async fn attach(server: &TestServer, token: &str) -> (Ws, Value) {
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

fn url(server: &TestServer, path: &str, token: &str) -> String {
    format!("{}{path}?token={token}", server.base)
}

#[tokio::test]
async fn a_download_with_a_live_token_is_the_agent_with_its_launch_trailer() {
    let mut s = scene(None, 300_000).await;
    let token = next_token(&mut s.ann).await;
    let client = reqwest::Client::new();
    let wanted = Launch {
        server: s.server.base.clone(),
        token: token.clone(),
        session: s.number.parse().ok(),
    };

    for (path, binary, name, mime) in [
        (
            "/download/tandem-agent",
            &s.linux,
            format!("tandem-support-{}", s.number),
            "application/octet-stream",
        ),
        (
            "/download/tandem-agent.exe",
            &s.windows,
            format!("tandem-support-{}.exe", s.number),
            "application/vnd.microsoft.portable-executable",
        ),
    ] {
        let response = client
            .get(url(&s.server, path, &token))
            .send()
            .await
            .expect("download");
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(
            headers["content-disposition"],
            format!("attachment; filename=\"{name}\"").as_str()
        );
        assert_eq!(headers["content-type"], mime);
        assert_eq!(
            headers["cache-control"], "no-store",
            "it carries a credential"
        );
        let body = response.bytes().await.expect("body");
        assert_eq!(
            headers["content-length"],
            body.len().to_string().as_str(),
            "{path}: Content-Length is the binary and the trailer"
        );
        assert!(
            body.starts_with(binary),
            "{path}: the binary comes first, whole"
        );
        let trailer = &body[binary.len()..];
        assert_eq!(trailer, launch::encode(&wanted).as_slice(), "{path}");
        let read = launch::decode_tail(&body).expect("a readable trailer");
        assert_eq!(read.as_ref(), Some(&wanted), "{path}");

        // The page may ask with HEAD: the same answer without the body.
        let head = client
            .head(url(&s.server, path, &token))
            .send()
            .await
            .expect("head");
        assert_eq!(head.status(), 200);
        assert_eq!(
            head.headers()["content-length"],
            body.len().to_string().as_str()
        );
        assert!(head.bytes().await.expect("body").is_empty());
    }

    // Downloading does not use the token up: the agent does, when it attaches.
    let (_agent, joined) = attach(&s.server, &token).await;
    assert_eq!(joined["role"], "agent", "{joined}");
    let gone = client
        .get(url(&s.server, "/download/tandem-agent", &token))
        .send()
        .await
        .expect("download");
    assert_eq!(gone.status(), 410, "a used token downloads nothing");
}

/// The download names the server by the request's Host (no `public_url` here): one the
/// agent could not use is the request's fault, a 400 that says so, not a server error;
/// the token is not used up by it.
#[tokio::test]
async fn a_host_the_agent_could_not_use_is_refused_with_400() {
    let mut s = scene(None, 5000).await;
    let token = next_token(&mut s.ann).await;
    let client = reqwest::Client::new();
    let long_host = format!("{}.example.com", "a".repeat(1100));
    let response = client
        .get(url(&s.server, "/download/tandem-agent", &token))
        .header("host", long_host)
        .send()
        .await
        .expect("download");
    assert_eq!(response.status(), 400);
    let text = response.text().await.expect("text");
    assert!(text.contains("Host header"), "{text}");
    let response = client
        .get(url(&s.server, "/download/tandem-agent", &token))
        .send()
        .await
        .expect("download");
    assert_eq!(response.status(), 200, "the token still downloads");
}

#[tokio::test]
async fn without_a_token_the_download_is_the_plain_binary() {
    let mut s = scene(None, 100_000).await;
    let _token = next_token(&mut s.ann).await;
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{}/download/tandem-agent", s.server.base))
        .send()
        .await
        .expect("download");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"tandem-agent\""
    );
    let body = response.bytes().await.expect("body");
    assert_eq!(&body[..], &s.linux[..]);
    assert_eq!(launch::decode_tail(&body).expect("no error"), None);

    // Range and HEAD as before.
    let part = client
        .get(format!("{}/download/tandem-agent.exe", s.server.base))
        .header("range", "bytes=0-1")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), 206);
    assert_eq!(&part.bytes().await.expect("part")[..], b"MZ");
    let head = client
        .head(format!("{}/download/tandem-agent.exe", s.server.base))
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        s.windows.len().to_string().as_str()
    );
}

#[tokio::test]
async fn a_token_that_is_not_live_gets_one_answer_whatever_it_was() {
    let mut s = scene(None, 10_000).await;
    let token = next_token(&mut s.ann).await;
    let client = reqwest::Client::new();
    let ask = |token: String| {
        let client = client.clone();
        let url = url(&s.server, "/download/tandem-agent.exe", &token);
        async move {
            let r = client.get(url).send().await.expect("download");
            let status = r.status().as_u16();
            let kind = r.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .to_owned();
            (status, kind, r.text().await.expect("text"))
        }
    };
    let (status, kind, never) = ask("agt_not-a-real-token".into()).await;
    assert_eq!(status, 410);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(
        never.contains("Open your support session's join page") && never.contains("href=/join>"),
        "{never}"
    );
    assert!(!never.contains("agt_"), "the token is not echoed: {never}");
    for odd in ["", "x", "agt_%00%0a", &"a".repeat(4000)] {
        let (status, _, text) = ask(odd.to_owned()).await;
        assert_eq!((status, &text), (410, &never), "{odd:.20}");
    }
    // Used: the same answer as never issued.
    let (_agent, joined) = attach(&s.server, &token).await;
    assert_eq!(joined["role"], "agent");
    assert_eq!(ask(token).await, (410, kind, never));
}

#[tokio::test]
async fn a_download_with_a_token_is_streamed_not_held_in_memory() {
    const SIZE: usize = 16 * 1024 * 1024;
    const STALLED: usize = 16;
    let mut s = scene(None, SIZE).await;
    let token = next_token(&mut s.ann).await;
    let client = reqwest::Client::new();
    let before = resident_bytes();
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        let r = client
            .get(url(&s.server, "/download/tandem-agent", &token))
            .send()
            .await
            .expect("headers");
        assert_eq!(r.status(), 200);
        stalled.push(r);
    }
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < 100 * MIB,
        "{STALLED} stalled downloads of {} MiB grew the server by {} MiB",
        SIZE as u64 / MIB,
        grown / MIB
    );
    drop(stalled);
}

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

/// With tokens of 3 s (15 minutes in production): the page gets a fresh token half-way
/// through the first one's life; the first still works until its own expiry, then an agent
/// with it is refused with `agent_token_expired` and its download with the sentence; the
/// newest attaches, and after that no more tokens come.
#[tokio::test]
async fn tokens_expire_with_their_own_code_and_the_page_gets_a_fresh_one_first() {
    // Long enough that a loaded machine's delays do not reach it.
    const LIFETIME: Duration = Duration::from_millis(3000);
    let mut s = scene(Some(LIFETIME), 10_000).await;
    let first = next_token(&mut s.ann).await;
    let issued = Instant::now();
    let second = next_token(&mut s.ann).await;
    let renewed_after = issued.elapsed();
    assert_ne!(first, second);
    assert!(
        renewed_after < LIFETIME,
        "the fresh token came {renewed_after:?} after the first, which lives {LIFETIME:?}"
    );
    let client = reqwest::Client::new();
    let download = |token: String| {
        let client = client.clone();
        let url = url(&s.server, "/download/tandem-agent", &token);
        async move { client.get(url).send().await.expect("download").status() }
    };
    // A download started with the first token just before the renewal still works.
    assert_eq!(download(first.clone()).await, 200);

    tokio::time::sleep((LIFETIME + Duration::from_millis(200)).saturating_sub(issued.elapsed()))
        .await;
    let (_, refused) = attach(&s.server, &first).await;
    assert_eq!(refused["code"], "agent_token_expired", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .expect("text")
            .contains("download the agent again"),
        "{refused}"
    );
    assert_eq!(download(first).await, 410);

    // The newest token the page holds attaches.
    let mut newest = second;
    while let Ok(token) =
        tokio::time::timeout(Duration::from_millis(50), next_token(&mut s.ann)).await
    {
        newest = token;
    }
    let (_agent, joined) = attach(&s.server, &newest).await;
    assert_eq!(joined["role"], "agent", "{joined}");
    // With an agent attached, no fresh tokens: nothing is left to hand out.
    let more = tokio::time::timeout(LIFETIME, next_token(&mut s.ann)).await;
    assert!(
        more.is_err(),
        "a token came with the agent attached: {more:?}"
    );
}
