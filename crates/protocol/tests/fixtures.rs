//! Golden fixtures: every file in `fixtures/client` and `fixtures/server` must read into the
//! message enum and write back to exactly the same JSON. The fixtures are the examples in
//! `docs/protocol.md`, so this keeps the document, the types and the console honest.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tandem_protocol::{decode_client, decode_server, encode};

fn fixtures(direction: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(direction);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "too few {direction} fixtures in {}",
        dir.display()
    );
    files
        .into_iter()
        .map(|p| {
            let stem = p.file_stem().expect("stem").to_string_lossy().into_owned();
            let text = fs::read_to_string(&p).expect("fixture text");
            (stem, text)
        })
        .collect()
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

#[test]
fn client_fixtures_round_trip() {
    for (name, text) in fixtures("client") {
        let message = decode_client(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(message.kind(), name, "file name is the message type");
        assert_eq!(parse(&encode(&message)), parse(&text), "{name} round trip");
    }
}

#[test]
fn server_fixtures_round_trip() {
    for (name, text) in fixtures("server") {
        let message = decode_server(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let written = parse(&encode(&message));
        assert_eq!(
            written["type"],
            Value::String(name.clone()),
            "file name is the type"
        );
        assert_eq!(written, parse(&text), "{name} round trip");
    }
}

#[test]
fn a_client_fixture_is_not_a_server_message() {
    // The two directions are separate contracts: a client cannot send `joined`, and the
    // error names the type it did not know.
    let err = decode_client(r#"{"type":"joined"}"#).expect_err("server-only type");
    assert_eq!(err.code, tandem_protocol::ErrorCode::UnknownType);
    assert!(err.message.contains("joined"));
}
