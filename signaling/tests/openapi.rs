//! The OpenAPI description at `/api/openapi.json` names every route the router registers,
//! with its method, and nothing else.
//!
//! The routes come from the router's own source (`app()` in lib.rs and every router it
//! nests or merges), read the way a person reads it. The reader refuses what it does not
//! understand, and every route it reads is asked of the running server, so it can neither
//! miss a registration silently nor invent one.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use common::TestServer;

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete", "head", "options"];

/// One route as registered: method (lower case) and path as axum spells it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Route {
    method: String,
    path: String,
}

impl Route {
    /// The path as OpenAPI spells it: axum's catch-all `{*rest}` is `{rest}` there.
    fn spec_path(&self) -> String {
        self.path.replace("{*", "{")
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Source text with comments blanked out (strings kept), so a commented-out route is no
/// route and a `//` inside a string stays.
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '/' if chars.peek() == Some(&'/') => {
                for skipped in chars.by_ref() {
                    if skipped == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The text between the bracket at `open` and its partner (exclusive), skipping strings.
fn balanced(text: &str, open: usize) -> &str {
    let bytes = text.as_bytes();
    let (opening, closing) = match bytes[open] {
        b'(' => (b'(', b')'),
        b'{' => (b'{', b'}'),
        other => panic!("not a bracket: {}", other as char),
    };
    let mut depth = 0usize;
    let mut in_string = false;
    let mut i = open;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if b == b'\\' {
                i += 1;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == opening {
            depth += 1;
        } else if b == closing {
            depth -= 1;
            if depth == 0 {
                return &text[open + 1..i];
            }
        }
        i += 1;
    }
    panic!("unbalanced brackets from byte {open}");
}

/// The body of `fn <name>(` in a file.
fn function_body(file: &Path, name: &str) -> String {
    let text = without_comments(
        &std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display())),
    );
    let start = text
        .find(&format!("fn {name}("))
        .unwrap_or_else(|| panic!("no fn {name} in {}", file.display()));
    let brace = start + text[start..].find('{').expect("a body");
    balanced(&text, brace).to_owned()
}

/// The first string literal in a text.
fn first_string(text: &str) -> Option<&str> {
    let start = text.find('"')? + 1;
    let end = start + text[start..].find('"')?;
    Some(&text[start..end])
}

/// `.name(` calls at the top level of a builder chain: (position after the paren, args).
fn calls<'a>(body: &'a str, name: &str) -> Vec<&'a str> {
    let needle = format!(".{name}(");
    body.match_indices(&needle)
        .map(|(at, _)| balanced(body, at + needle.len() - 1))
        .collect()
}

/// The HTTP methods a method router expression names: `get(h)`, `get(h).post(h2)`,
/// `axum::routing::patch(h)`. Anything else (`any`, `on`, a service) is refused, so a
/// route this reader does not understand fails the test instead of vanishing.
fn methods_of(expression: &str, path: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in expression.match_indices('(') {
        let before = &expression[..at];
        let word_start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &before[word_start..];
        // Only calls of a routing function: at the start, after `.` or after `::`.
        let lead = &before[..word_start];
        let routing_position =
            lead.trim_end().is_empty() || lead.ends_with('.') || lead.ends_with("routing::");
        if !routing_position || word.is_empty() {
            continue;
        }
        if METHODS.contains(&word) {
            found.push(word.to_owned());
        } else if ["any", "on", "any_service", "on_service", "get_service"].contains(&word) {
            panic!("route {path}: `{word}(` is not understood by this test; teach it");
        }
    }
    assert!(
        !found.is_empty(),
        "route {path}: no method found in `{expression}`; teach this test"
    );
    found
}

/// The file that holds module `a::b` of this crate.
fn module_file(module: &str) -> PathBuf {
    let relative = module.trim_start_matches("crate::").replace("::", "/");
    let flat = src().join(format!("{relative}.rs"));
    if flat.exists() {
        flat
    } else {
        src().join(relative).join("mod.rs")
    }
}

/// A router function call such as `api::router()`: its file and function name.
fn router_call(expression: &str) -> (PathBuf, String) {
    let call = expression.trim();
    let name_end = call.find('(').unwrap_or_else(|| {
        panic!("`{call}` is not a router function call; teach this test");
    });
    let qualified = &call[..name_end];
    let (module, function) = qualified
        .rsplit_once("::")
        .unwrap_or_else(|| panic!("`{call}`: name the module of nested routers; teach this test"));
    (module_file(module), function.to_owned())
}

/// Every route a router function registers, under `prefix`.
fn routes_of(file: &Path, function: &str, prefix: &str) -> Vec<Route> {
    let body = function_body(file, function);
    // A `.fallback(` answers the paths no route has (`api::router`'s: a JSON 404): it
    // registers no route, so it is left out.
    for unsupported in ["route_service", "nest_service", "fallback_service"] {
        assert!(
            calls(&body, unsupported).is_empty(),
            "{}: `.{unsupported}(` is not understood by this test; teach it",
            file.display()
        );
    }
    let mut routes = Vec::new();
    let registrations = calls(&body, "route");
    for args in &registrations {
        let path = first_string(args).unwrap_or_else(|| panic!("a route without a path: {args}"));
        let handler = &args[args.find(',').expect("route(path, handler)") + 1..];
        for method in methods_of(handler, path) {
            routes.push(Route {
                method,
                path: format!("{prefix}{path}"),
            });
        }
    }
    for args in calls(&body, "nest") {
        let inner_prefix = first_string(args).expect("nest(prefix, router)");
        let (file, function) = router_call(&args[args.find(',').expect("nest(p, r)") + 1..]);
        routes.extend(routes_of(
            &file,
            &function,
            &format!("{prefix}{inner_prefix}"),
        ));
    }
    for args in calls(&body, "merge") {
        let (file, function) = router_call(args);
        routes.extend(routes_of(&file, &function, prefix));
    }
    routes
}

fn registered_routes() -> Vec<Route> {
    let mut routes = routes_of(&src().join("lib.rs"), "app", "");
    routes.sort();
    routes.dedup();
    routes
}

/// The routes the description lacks, and the operations it has that no route registers.
fn compare(spec: &Value, routes: &[Route]) -> (Vec<String>, Vec<String>) {
    let paths = spec["paths"].as_object().expect("a paths object");
    let missing = routes
        .iter()
        .filter(|r| {
            paths
                .get(&r.spec_path())
                .and_then(|p| p.get(&r.method))
                .is_none()
        })
        .map(|r| format!("{} {}", r.method.to_uppercase(), r.path))
        .collect();
    let registered: BTreeSet<(String, String)> = routes
        .iter()
        .map(|r| (r.method.clone(), r.spec_path()))
        .collect();
    let mut stale = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(*method).is_some()
                && !registered.contains(&(method.to_string(), path.clone()))
            {
                stale.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    (missing, stale)
}

async fn served_description(server: &TestServer) -> Value {
    let response = server.anonymous().get("/api/openapi.json").await;
    assert_eq!(response.status(), 200, "served without a login");
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    response.json().await.expect("JSON")
}

/// A concrete URL for a route pattern.
fn sample_url(path: &str) -> String {
    path.replace("{*path}", "style.css")
        .replace("{number}", "123456789")
        .replace("{secret}", "not-a-real-secret")
        .replace("{id}", "999999")
        .replace("{*", "{")
        .replace('{', "x")
        .replace('}', "")
}

#[test]
fn the_source_reader_finds_the_known_routes() {
    let routes = registered_routes();
    for (method, path) in [
        ("post", "/api/login"),
        ("post", "/api/sessions"),
        ("get", "/api/sessions"),
        ("get", "/api/sessions/{number}"),
        ("post", "/api/admin/reps"),
        ("patch", "/api/admin/reps/{id}"),
        ("delete", "/api/admin/queues/{id}"),
        ("put", "/api/admin/mail"),
        ("get", "/api/openapi.json"),
        ("get", "/j/{secret}"),
        ("get", "/ws"),
        ("get", "/download/tandem-agent"),
        ("get", "/download/tandem-agent.exe"),
        ("get", "/assets/{*path}"),
    ] {
        assert!(
            routes.contains(&Route {
                method: method.into(),
                path: path.into()
            }),
            "{method} {path} not read from the source; read: {routes:#?}"
        );
    }
}

#[tokio::test]
async fn every_registered_route_is_described_with_its_method() {
    let server = TestServer::start().await;
    let routes = registered_routes();

    // The reader reads the router that runs. axum answers a method a path does not take
    // with 405, and a path it does not know with 404: so a made-up method must get 405
    // (the path is routed), and the route's own method anything but 405.
    let client = reqwest::Client::new();
    let probe = reqwest::Method::from_bytes(b"TANDEMPROBE").expect("a method");
    for route in &routes {
        let url = format!("{}{}", server.base, sample_url(&route.path));
        let status = client
            .request(probe.clone(), &url)
            .send()
            .await
            .expect("request")
            .status();
        assert_eq!(status, 405, "{route:?}: the router has no such path");
        let method =
            reqwest::Method::from_bytes(route.method.to_uppercase().as_bytes()).expect("a method");
        let mut request = client.request(method, &url);
        if route.method != "get" && route.method != "delete" {
            request = request.json(&serde_json::json!({}));
        }
        let status = request.send().await.expect("request").status();
        assert_ne!(status, 405, "{route:?}: the path does not take this method");
    }
    let unknown = client
        .request(probe.clone(), format!("{}/no/such/route", server.base))
        .send()
        .await
        .expect("request")
        .status();
    assert_eq!(unknown, 404, "the probe tells unknown paths apart");

    let spec = served_description(&server).await;
    let (missing, stale) = compare(&spec, &routes);
    assert!(
        missing.is_empty(),
        "registered but not in /api/openapi.json: {missing:#?}"
    );
    assert!(
        stale.is_empty(),
        "in /api/openapi.json but not registered: {stale:#?}"
    );

    // The comparison catches a removed operation, each one of them: a check that could
    // not fail would prove nothing.
    for route in &routes {
        let mut broken = spec.clone();
        let item = broken["paths"][route.spec_path()]
            .as_object_mut()
            .expect("a path item");
        item.remove(&route.method);
        let (missing, _) = compare(&broken, &routes);
        assert_eq!(
            missing,
            vec![format!("{} {}", route.method.to_uppercase(), route.path)],
            "removing {route:?} from the description must be noticed"
        );
    }
    // And a described operation that no route serves.
    let mut broken = spec.clone();
    broken["paths"]["/api/gone"] = serde_json::json!({"get": {"responses": {}}});
    assert_eq!(
        compare(&broken, &routes).1,
        vec!["GET /api/gone".to_owned()]
    );
}

#[tokio::test]
async fn the_description_names_the_login_cookie_and_the_bodies() {
    let server = TestServer::start().await;
    let spec = served_description(&server).await;
    assert!(
        spec["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
        "{}",
        spec["openapi"]
    );

    let scheme = &spec["components"]["securitySchemes"]["tandem_login"];
    assert_eq!(scheme["type"], "apiKey", "{scheme}");
    assert_eq!(scheme["in"], "cookie", "{scheme}");
    assert_eq!(scheme["name"], "tandem_login", "{scheme}");

    let operation = |method: &str, path: &str| spec["paths"][path][method].clone();
    let needs_login = |op: &Value| {
        op["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("tandem_login").is_some()))
    };
    for route in registered_routes() {
        if !route.path.starts_with("/api/") {
            continue;
        }
        let op = operation(&route.method, &route.spec_path());
        let public =
            ["/api/login", "/api/logout", "/api/openapi.json"].contains(&route.path.as_str());
        assert_eq!(
            needs_login(&op),
            !public,
            "{route:?}: the login cookie requirement"
        );
        if !public {
            assert!(
                op["responses"]["401"].is_object(),
                "{route:?} documents no 401"
            );
        }
        let success = op["responses"]
            .as_object()
            .is_some_and(|r| r.keys().any(|code| code.starts_with('2')));
        assert!(success, "{route:?} documents no success answer");
        let takes_body = ["post", "put", "patch"].contains(&route.method.as_str())
            && route.path != "/api/logout";
        assert_eq!(
            op["requestBody"].is_object(),
            takes_body,
            "{route:?}: request body"
        );
    }

    // The answers a third party builds on, field by field.
    let schemas = &spec["components"]["schemas"];
    let fields = |name: &str| -> BTreeSet<String> {
        schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("schema {name}: {}", schemas[name]))
            .keys()
            .cloned()
            .collect()
    };
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        fields("SessionView"),
        set(&["number", "display", "link", "join_page", "email_configured"])
    );
    assert_eq!(fields("Credentials"), set(&["username", "password"]));
    for name in [
        "Account",
        "SiteSettings",
        "InvitationRecord",
        "Queue",
        "AuditEntry",
        "NewRep",
        "StartRequest",
        "ErrorBody",
    ] {
        assert!(!fields(name).is_empty(), "schema {name}");
    }
    let login = operation("post", "/api/login");
    assert!(
        login["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .is_some_and(|r| r.ends_with("/Credentials")),
        "{login}"
    );
    for code in ["200", "401", "429"] {
        assert!(login["responses"][code].is_object(), "login answer {code}");
    }
    let start = operation("post", "/api/sessions");
    assert!(
        start["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .is_some_and(|r| r.ends_with("/SessionView")),
        "{start}"
    );
    assert!(operation("get", "/ws")["responses"]["101"].is_object());
}
