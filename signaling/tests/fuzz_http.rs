//! Fuzzing the JSON API of a real server: mutated and random bodies to every endpoint that
//! takes one. Every answer must be a 2xx or a 4xx (never a 5xx), and the server must still
//! answer afterwards. A smoke run in every `cargo test`; longer on demand:
//! `PROPTEST_CASES=5000 cargo test -p tandem-signaling --test integration fuzz_http`
//! (cases per endpoint). The generator is seeded: a failure prints the seed and the case, and
//! `TANDEM_FUZZ_SEED=<seed>` replays the same run.
//!
//! Bodies mix random bytes and JSON token soup, the endpoint's valid example mutated (values
//! replaced by other JSON types, huge numbers, deep nesting, long and odd strings, members
//! removed or added, bytes flipped), and the valid example with edge values of the right
//! type, so that most requests get past the JSON reader into the handler's own checks.

use crate::common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// Cases per endpoint: `PROPTEST_CASES` when set, else a smoke run.
fn cases(smoke: usize) -> usize {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(smoke)
}

fn seed() -> u64 {
    std::env::var("TANDEM_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x7a4d_e11a_5eed)
}

/// SplitMix64: small, fast and the same on every platform, so a seed replays a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True with this many chances in a hundred.
    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn long_len(&mut self) -> usize {
        *self.pick(&[0, 1, 7, 8, 32, 33, 64, 65, 256, 1024, 1025, 4096, 70_000])
    }
}

// ---------------------------------------------------------------------------------------
// Bodies

/// Strings that stress a handler: empty, blank, long, multi-byte, control characters,
/// quotes, markup, and things that look like names, addresses and numbers.
fn odd_string(rng: &mut Rng) -> String {
    let n = rng.long_len();
    match rng.below(16) {
        0 => String::new(),
        1 => "   ".to_owned(),
        2 => "a".repeat(n),
        3 => "é".repeat(n),
        4 => "\u{1f600}".repeat(n),
        5 => "\u{0}\u{7}\n\t".to_owned(),
        6 => "\u{202e}\u{feff}\u{200b}".to_owned(),
        7 => "\"'\\<script>&amp;".to_owned(),
        8 => "admin".to_owned(),
        9 => "ADMIN ".to_owned(),
        10 => "ann@example.com".to_owned(),
        11 => "Name <name@example.com>".to_owned(),
        12 => "a@b@c".to_owned(),
        13 => "smtp.example.com".to_owned(),
        14 => "123 456 789".to_owned(),
        _ => (0..rng.below(40))
            .map(|_| char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}'))
            .collect(),
    }
}

/// Raw JSON text put in place of a value, including what `serde_json::Value` cannot hold.
fn raw_value(rng: &mut Rng) -> String {
    const FIXED: &[&str] = &[
        "null",
        "true",
        "false",
        "0",
        "-0",
        "-1",
        "1.5",
        "1e999",
        "-1e999",
        "1e-400",
        "100",
        "101",
        "65535",
        "65536",
        "2147483647",
        "4294967295",
        "4294967296",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "123456789012345678901234567890123456789012345678901234567890",
        r#""\ud800""#,
        r#""\u0000""#,
        r#""none""#,
        r#""starttls""#,
        r#""tls""#,
        r#""TLS""#,
        "[]",
        "{}",
        "[1,2,3]",
        "[-1,0,9223372036854775807]",
        r#"[1,"a",null,{}]"#,
    ];
    match rng.below(10) {
        0..=4 => (*rng.pick(FIXED)).to_owned(),
        5 => (rng.next() as i64).to_string(),
        6 | 7 => Value::String(odd_string(rng)).to_string(),
        8 => {
            let d = 1 + rng.below(3000);
            format!("{}{}", "[".repeat(d), "]".repeat(d))
        }
        _ => {
            let d = 1 + rng.below(2000);
            format!("{}1{}", r#"{"a":"#.repeat(d), "}".repeat(d))
        }
    }
}

/// A value of the same JSON type as the one it replaces, at an edge.
fn extreme_like(rng: &mut Rng, old: &Value) -> String {
    match old {
        Value::Bool(b) => (!b).to_string(),
        Value::Number(_) => (*rng.pick(&[
            "0",
            "1",
            "100",
            "101",
            "65535",
            "65536",
            "4294967295",
            "9223372036854775807",
            "-1",
            "-9223372036854775808",
        ]))
        .to_owned(),
        Value::String(_) => Value::String(odd_string(rng)).to_string(),
        Value::Array(_) => {
            let n = rng.below(3000);
            let items: Vec<String> = (0..n).map(|i| (i as i64 - 5).to_string()).collect();
            format!("[{}]", items.join(","))
        }
        Value::Object(_) | Value::Null => (*rng.pick(&["{}", "null", r#"{"":null}"#])).to_owned(),
    }
}

/// JSON pointers to every node, the root first.
fn pointers(value: &Value) -> Vec<String> {
    fn walk(value: &Value, here: String, out: &mut Vec<String>) {
        out.push(here.clone());
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let k = k.replace('~', "~0").replace('/', "~1");
                    walk(v, format!("{here}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, format!("{here}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

fn placeholder(n: usize) -> Value {
    Value::String(format!("\u{0}raw{n}\u{0}"))
}

/// The example with a few changes, written out, then perhaps with a few bytes changed.
fn mutate(rng: &mut Rng, example: &Value, edge_values_only: bool) -> Vec<u8> {
    let mut doc = example.clone();
    let mut raws: Vec<String> = Vec::new();
    let changes = if edge_values_only {
        0
    } else {
        1 + rng.below(3)
    };
    if edge_values_only {
        // The example's shape with about half of its values at an edge of their type.
        for pointer in pointers(&doc).iter().skip(1) {
            if rng.percent(50) {
                if let Some(node) = doc.pointer_mut(pointer) {
                    let raw = extreme_like(rng, node);
                    *node = placeholder(raws.len());
                    raws.push(raw);
                }
            }
        }
    }
    for _ in 0..changes {
        let nodes = pointers(&doc);
        let pointer = rng.pick(&nodes).clone();
        match rng.below(5) {
            0 | 1 => {
                if let Some(node) = doc.pointer_mut(&pointer) {
                    *node = placeholder(raws.len());
                    raws.push(raw_value(rng));
                }
            }
            2 => {
                if let Some(node) = doc.pointer_mut(&pointer) {
                    let raw = extreme_like(rng, node);
                    *node = placeholder(raws.len());
                    raws.push(raw);
                }
            }
            3 => {
                if let Some(cut) = pointer.rfind('/') {
                    let key = pointer[cut + 1..].replace("~1", "/").replace("~0", "~");
                    if let Some(Value::Object(map)) = doc.pointer_mut(&pointer[..cut]) {
                        map.remove(&key);
                    }
                }
            }
            _ => {
                let key = if rng.percent(50) {
                    odd_string(rng)
                } else {
                    (*rng.pick(&["id", "is_admin", "password", "members", "__proto__", ""]))
                        .to_owned()
                };
                match doc.pointer_mut(&pointer) {
                    Some(Value::Object(map)) => {
                        map.insert(key, placeholder(raws.len()));
                        raws.push(raw_value(rng));
                    }
                    Some(Value::Array(items)) => {
                        items.push(placeholder(raws.len()));
                        raws.push(raw_value(rng));
                    }
                    _ => {}
                }
            }
        }
    }
    let mut text = doc.to_string();
    for (n, raw) in raws.iter().enumerate() {
        text = text.replace(&placeholder(n).to_string(), raw);
    }
    let mut bytes = text.into_bytes();
    if !edge_values_only && rng.percent(20) {
        for _ in 0..1 + rng.below(3) {
            let len = bytes.len();
            match rng.below(4) {
                0 if len > 0 => {
                    let i = rng.below(len);
                    bytes[i] ^= 1 << rng.below(8);
                }
                1 => {
                    let i = rng.below(len + 1);
                    let b = *rng.pick(b"{}[]\":,\\0e-.\x00\xff");
                    bytes.insert(i, b);
                }
                2 if len > 0 => {
                    let i = rng.below(len);
                    let end = (i + 1 + rng.below(8)).min(len);
                    bytes.drain(i..end);
                }
                _ => {
                    let i = rng.below(len + 1);
                    bytes.truncate(i);
                }
            }
        }
    }
    bytes
}

fn random_body(rng: &mut Rng) -> Vec<u8> {
    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"",
        "\\",
        "\"username\"",
        "\"password\"",
        "\"name\"",
        "\"members\"",
        "\"port\"",
        "null",
        "true",
        "1",
        "-1",
        "1e999",
        "\"x\"",
        " ",
    ];
    if rng.percent(50) {
        (0..rng.below(600)).map(|_| rng.next() as u8).collect()
    } else {
        (0..rng.below(60))
            .map(|_| *rng.pick(TOKENS))
            .collect::<String>()
            .into_bytes()
    }
}

/// A body for an endpoint with this valid example.
fn body(rng: &mut Rng, example: &Value) -> Vec<u8> {
    match rng.below(10) {
        0 => random_body(rng),
        1..=3 => mutate(rng, example, true),
        _ => mutate(rng, example, false),
    }
}

// ---------------------------------------------------------------------------------------
// Requests

struct Sent {
    status: u16,
    body: String,
    /// Sent again on a new connection after the kept-alive one closed unannounced.
    resent: bool,
}

/// One request as a browser page or a script would send it. With `vary`: mostly JSON,
/// sometimes with another or no content type, with no `Origin`, our own, or (rarely)
/// another site's; without: JSON and no `Origin`.
///
/// When the server answers a request without reading its body (a wrong content type, a
/// bad path), hyper closes the connection after the answer, which does not say so: the
/// next request on that kept-alive connection fails before any answer. Browsers send such
/// a request again on a new connection, and so does this (counted in `Sent::resent`).
async fn send(
    client: &reqwest::Client,
    base: &str,
    cookie: Option<&str>,
    (method, path): (&str, &str),
    body: Vec<u8>,
    vary: Option<&mut Rng>,
) -> Result<Sent, String> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    let mut fixed = Rng(0);
    let (rng, vary) = match vary {
        Some(rng) => (rng, true),
        None => (&mut fixed, false),
    };
    let content_type = match if vary { rng.below(20) } else { 19 } {
        0 => None,
        1 => Some("text/plain"),
        2 => Some("application/json; charset=utf-8"),
        3 => Some("application/x-www-form-urlencoded"),
        _ => Some("application/json"),
    };
    let origin = match if vary { rng.below(20) } else { 19 } {
        0..=5 => Some(base),
        6 => Some("http://evil.example"),
        _ => None,
    };
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a client");
    for (attempt, client) in [client, &fresh].into_iter().enumerate() {
        let mut request = client
            .request(method.clone(), format!("{base}{path}"))
            .body(body.clone())
            .timeout(Duration::from_secs(30));
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                let why = chain(&e);
                let closed = why.contains("connection closed before message completed")
                    || why.contains("Broken pipe")
                    || why.contains("Connection reset");
                if attempt == 0 && closed {
                    continue;
                }
                return Err(format!("no answer: {why}"));
            }
        };
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| format!("no body: {e}"))?;
        return Ok(Sent {
            status,
            body,
            resent: attempt > 0,
        });
    }
    unreachable!("the second attempt returns")
}

/// An error and its causes, which say whether the connection was refused, reset or closed.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let cut: String = text.chars().take(300).collect();
    if cut.len() < text.len() {
        format!("{cut}… ({} bytes)", bytes.len())
    } else {
        cut
    }
}

/// What the fuzzing found: requests answered with a 5xx or not at all, and the longest
/// 4xx bodies (kept short by `error_bodies_are_short`).
#[derive(Default)]
struct Findings {
    failures: Vec<String>,
    long_errors: Vec<(usize, String)>,
    statuses: std::collections::BTreeMap<u16, usize>,
    /// The request before, for failures that depend on what the connection carried last.
    previous: String,
    /// Requests sent again because the server had closed their kept-alive connection.
    resent: usize,
}

impl Findings {
    fn record(&mut self, what: &str, body: &[u8], result: Result<Sent, String>) {
        let previous = std::mem::replace(
            &mut self.previous,
            format!(
                "{what} with {} bytes, answered {}",
                body.len(),
                result.as_ref().map_or(0, |sent| sent.status)
            ),
        );
        match result {
            Ok(sent) => {
                *self.statuses.entry(sent.status).or_default() += 1;
                self.resent += usize::from(sent.resent);
                if !(200..300).contains(&sent.status) && !(400..500).contains(&sent.status) {
                    self.failures.push(format!(
                        "{what}: status {} ({}) for {}",
                        sent.status,
                        excerpt(sent.body.as_bytes()),
                        excerpt(body)
                    ));
                } else if sent.status >= 400 && sent.body.len() > 300 {
                    self.long_errors.push((
                        sent.body.len(),
                        format!(
                            "{what}: {} gave {} bytes: {}",
                            sent.status,
                            sent.body.len(),
                            excerpt(&sent.body.as_bytes()[..sent.body.len().min(120)])
                        ),
                    ));
                }
            }
            Err(e) => self.failures.push(format!(
                "{what}: {e} for {} (the request before: {previous})",
                excerpt(body)
            )),
        }
    }
}

/// One endpoint that takes a JSON body: its method, its paths (those with ids in them
/// vary between real and odd ids), and a valid example.
struct Endpoint {
    method: &'static str,
    paths: Vec<String>,
    example: Value,
}

/// Path segments that are not ids.
const ODD_IDS: &[&str] = &[
    "0",
    "-1",
    "9223372036854775807",
    "9223372036854775808",
    "1e3",
    "abc",
    "%00",
    "%F0%9F%98%80",
    "1%2F2",
];

async fn endpoints(server: &TestServer, admin: &Http) -> Vec<Endpoint> {
    // Reps and queues for the id routes to find.
    for (username, webacd) in [("fuzz-rep", true), ("fuzz-agent", true)] {
        let r = admin
            .post(
                "/api/admin/reps",
                json!({"username": username, "display_name": username,
                       "password": REP_PASSWORD, "is_webacd": webacd}),
            )
            .await;
        assert_eq!(r.status(), 201, "create {username}");
    }
    let rep = server.account_id(admin, "fuzz-rep").await;
    let agent = server.account_id(admin, "fuzz-agent").await;
    let queue: Value = admin
        .post("/api/admin/queues", json!({"name": "Fuzz"}))
        .await
        .json()
        .await
        .expect("queue");
    let queue = queue["id"].as_i64().expect("queue id");
    let with_ids = |template: &str, real: &[i64]| -> Vec<String> {
        real.iter()
            .map(ToString::to_string)
            .chain(ODD_IDS.iter().map(|s| (*s).to_owned()))
            .map(|id| template.replace("{id}", &id))
            .collect()
    };
    vec![
        Endpoint {
            method: "POST",
            paths: vec!["/api/sessions".into()],
            example: json!({"email_invite": false}),
        },
        Endpoint {
            method: "POST",
            paths: vec!["/api/admin/reps".into()],
            example: json!({"username": "ann", "display_name": "Ann Example",
                            "password": "a long password", "is_admin": false, "is_webacd": true}),
        },
        Endpoint {
            method: "PATCH",
            // The rep and the agent, often; the admin itself is left alone so that the
            // fuzzing keeps its login.
            paths: with_ids(
                "/api/admin/reps/{id}",
                &[rep, agent, rep, agent, rep, agent],
            ),
            example: json!({"display_name": "Rep Renamed", "is_admin": false,
                            "is_webacd": true, "disabled": false, "password": "another password"}),
        },
        Endpoint {
            method: "PUT",
            paths: vec!["/api/admin/settings".into()],
            example: json!({"max_customers_per_rep": 5, "allow_multiple_sessions": true}),
        },
        Endpoint {
            method: "PUT",
            paths: vec!["/api/admin/mail".into()],
            example: json!({"host": "smtp.example.com", "port": 587, "tls": "starttls",
                            "username": "mailer", "password": "secret",
                            "from": "Support <support@example.com>"}),
        },
        Endpoint {
            method: "POST",
            paths: vec!["/api/admin/queues".into()],
            example: json!({"name": "Printers"}),
        },
        Endpoint {
            method: "PATCH",
            paths: with_ids("/api/admin/queues/{id}", &[queue, queue, queue, queue]),
            example: json!({"auto_assign": true}),
        },
        Endpoint {
            method: "PUT",
            paths: with_ids(
                "/api/admin/queues/{id}/members",
                &[queue, queue, queue, queue],
            ),
            example: json!({"members": [rep, agent]}),
        },
    ]
}

/// The server still serves: the admin's login still reads its account.
async fn still_answers(admin: &Http) {
    let me = admin.get("/api/me").await;
    assert_eq!(me.status(), 200, "GET /api/me after the fuzzing");
}

fn report(seed: u64, findings: &Findings, elapsed: Duration) {
    eprintln!(
        "seed {seed}: statuses {:?} in {:.1} s; {} 4xx bodies over 300 bytes; {} requests \
         sent again after the server closed their connection unannounced",
        findings.statuses,
        elapsed.as_secs_f64(),
        findings.long_errors.len(),
        findings.resent
    );
    assert!(
        findings.failures.is_empty(),
        "seed {seed} (replay with TANDEM_FUZZ_SEED={seed}): {} requests failed, e.g.:\n{}",
        findings.failures.len(),
        findings
            .failures
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_body_gets_a_2xx_or_4xx() {
    let started = Instant::now();
    let seed = seed();
    let mut rng = Rng(seed);
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let cookie = admin.cookie.clone();
    let endpoints = endpoints(&server, &admin).await;
    let client = reqwest::Client::new();
    let mut findings = Findings::default();
    for endpoint in &endpoints {
        for case in 0..cases(400) {
            let path = rng.pick(&endpoint.paths).clone();
            let body = body(&mut rng, &endpoint.example);
            let result = send(
                &client,
                &server.base,
                cookie.as_deref(),
                (endpoint.method, &path),
                body.clone(),
                Some(&mut rng),
            )
            .await;
            let what = format!("case {case} {} {path}", endpoint.method);
            findings.record(&what, &body, result);
        }
    }
    // A body past the size limit is refused, not read.
    let huge = format!(r#"{{"name":"{}"}}"#, "a".repeat(3 << 20)).into_bytes();
    let result = send(
        &client,
        &server.base,
        cookie.as_deref(),
        ("POST", "/api/admin/queues"),
        huge.clone(),
        None,
    )
    .await;
    findings.record("a 3 MiB body", &huge, result);
    report(seed, &findings, started.elapsed());
    still_answers(&admin).await;
}

/// Logins from several loopback addresses (each has its own rate limit), a few from each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_login_body_gets_a_2xx_or_4xx() {
    let started = Instant::now();
    let seed = seed();
    let mut rng = Rng(seed ^ 0x10_91);
    let server = TestServer::start().await;
    // Logged in before the fuzzing, which may hold the admin's name back for a while.
    let admin = server.admin().await;
    let examples = [
        json!({"username": "admin", "password": ADMIN_PASSWORD}),
        json!({"username": "admin", "password": "wrong password"}),
        json!({"username": "nobody", "password": "anything"}),
    ];
    let per_address = 8;
    let mut findings = Findings::default();
    let mut client = reqwest::Client::new();
    for case in 0..cases(160) {
        if case % per_address == 0 {
            let host = u8::try_from(2 + (case / per_address) % 250).expect("a host byte");
            client = reqwest::Client::builder()
                .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)))
                .build()
                .expect("a client");
        }
        let example = &examples[rng.below(examples.len())];
        let body = body(&mut rng, example);
        let result = send(
            &client,
            &server.base,
            None,
            ("POST", "/api/login"),
            body.clone(),
            Some(&mut rng),
        )
        .await;
        findings.record(&format!("case {case} POST /api/login"), &body, result);
    }
    report(seed, &findings, started.elapsed());
    still_answers(&admin).await;
}

/// An error body quotes at most a short excerpt of the request, however long the request:
/// long strings, numbers and member names, in every field of every endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_are_short() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let cookie = admin.cookie.clone();
    let client = reqwest::Client::new();
    let mut endpoints = endpoints(&server, &admin).await;
    endpoints.push(Endpoint {
        method: "POST",
        paths: vec!["/api/login".into()],
        example: json!({"username": "admin", "password": "wrong password"}),
    });
    let long = "x".repeat(60_000);
    let mut findings = Findings::default();
    for endpoint in &endpoints {
        let path = &endpoint.paths[0];
        let Value::Object(example) = &endpoint.example else {
            panic!("examples are objects");
        };
        for key in example.keys() {
            for (what, value) in [
                ("string", json!(long)),
                ("address", json!(format!("{long}@example.com"))),
                ("array", json!([long])),
                ("member name", json!({ &long: 1 })),
            ] {
                let mut body = example.clone();
                body.insert(key.clone(), value);
                let body = Value::Object(body).to_string().into_bytes();
                let result = send(
                    &client,
                    &server.base,
                    cookie.as_deref(),
                    (endpoint.method, path),
                    body.clone(),
                    None,
                )
                .await;
                findings.record(
                    &format!("{} {path}, {key} a long {what}", endpoint.method),
                    &body,
                    result,
                );
            }
            // A number too long for any integer type, as written.
            let mut body = endpoint.example.to_string();
            body = body.replacen(
                &format!("\"{key}\":"),
                &format!("\"{key}\":{},\"_\":", "9".repeat(60_000)),
                1,
            );
            let body = body.into_bytes();
            let result = send(
                &client,
                &server.base,
                cookie.as_deref(),
                (endpoint.method, path),
                body.clone(),
                None,
            )
            .await;
            findings.record(
                &format!("{} {path}, {key} a long number", endpoint.method),
                &body,
                result,
            );
        }
        let body = format!(r#"{{"{long}":1}}"#).into_bytes();
        let result = send(
            &client,
            &server.base,
            cookie.as_deref(),
            (endpoint.method, path),
            body.clone(),
            None,
        )
        .await;
        findings.record(
            &format!("{} {path}, a long member name", endpoint.method),
            &body,
            result,
        );
    }
    findings.long_errors.sort_by_key(|e| std::cmp::Reverse(e.0));
    assert!(
        findings.long_errors.is_empty(),
        "{} error bodies over 300 bytes:\n{}",
        findings.long_errors.len(),
        findings
            .long_errors
            .iter()
            .take(40)
            .map(|(_, what)| what.clone())
            .collect::<Vec<_>>()
            .join("\n")
    );
    still_answers(&admin).await;
}
