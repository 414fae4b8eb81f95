//! Fuzzing the decoders as bounded property tests: a smoke run in every `cargo test`, longer
//! on demand (`PROPTEST_CASES=200000 cargo test -p tandem-protocol --test fuzz`).
//!
//! Random bytes alone rarely get past the first `{`, so the inputs mix three sources:
//! arbitrary text and JSON token soup; the golden fixtures mutated (values replaced by other
//! JSON types, huge numbers, deep nesting, long and odd strings, members removed or added,
//! the tag changed, then bytes flipped, inserted or deleted); and well-formed messages with
//! extreme field values. Every input must decode or be refused with a code and a message,
//! and whatever decodes must encode back to the same message.

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, FileFailurePersistence, RngAlgorithm, TestRng, TestRunner};
use serde_json::Value;
use tandem_protocol::{
    ClientKind, ClientMessage, DecodeError, ErrorCode, IceCandidate, Invitee, MAX_MESSAGE_BYTES,
    ParticipantId, SessionNumber, ShareId, ShareSource, StreamRef, TransferTarget, decode_client,
    decode_server, encode,
};

/// Cases per target: `PROPTEST_CASES` when set, else a smoke run that takes a few seconds.
/// (`proptest!` reads the variable itself; the targets run by hand read it here.)
fn cases(smoke: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(smoke)
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // A failing 64 KiB input shrinks slowly; a few hundred steps already make it readable.
        max_shrink_iters: 500,
        // Failures are kept beside this file and replayed first on the next run.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Fixtures

struct Fixtures {
    client: Vec<Value>,
    server: Vec<Value>,
    /// Every message type of both directions, for retagging.
    kinds: Vec<String>,
}

fn load(direction: &str) -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(direction);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("fixture text");
            let stem = p.file_stem().expect("stem").to_string_lossy().into_owned();
            (stem, serde_json::from_str(&text).expect("fixture is JSON"))
        })
        .collect()
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let client = load("client");
        let server = load("server");
        assert!(client.len() >= 20 && server.len() >= 20, "fixtures found");
        let kinds = client
            .iter()
            .chain(&server)
            .map(|(k, _)| k.clone())
            .collect();
        Fixtures {
            client: client.into_iter().map(|(_, v)| v).collect(),
            server: server.into_iter().map(|(_, v)| v).collect(),
            kinds,
        }
    })
}

fn client_kinds() -> Vec<String> {
    load("client").into_iter().map(|(k, _)| k).collect()
}

// ---------------------------------------------------------------------------------------
// Mutations of a JSON document

/// Raw JSON text put in place of a value: it may hold what `serde_json::Value` cannot
/// (numbers past `u64`, `1e999`, a lone surrogate, nesting deeper than the parser allows).
fn raw_value() -> impl Strategy<Value = String> {
    let fixed = [
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
        "65535",
        "65536",
        "999999999",
        "1000000000",
        "4294967295",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775809",
        "123456789012345678901234567890123456789012345678901234567890",
        r#""\ud800""#,
        r#""\u0000""#,
        r#""123456789""#,
        "[]",
        "{}",
        r#"[1,"a",null,{}]"#,
        r#"{"share":1}"#,
        r#"{"share":-1}"#,
        r#""call""#,
        r#"{"kind":"window"}"#,
        r#"{"kind":"window","title":7}"#,
        r#"{"kind":"queue","queue":"Printers"}"#,
        r#"{"kind":"agent"}"#,
        r#"{"candidate":"c","sdpMLineIndex":70000}"#,
    ];
    prop_oneof![
        6 => proptest::sample::select(fixed.to_vec()).prop_map(str::to_owned),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        2 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(|f| f.to_string()),
        4 => odd_string().prop_map(|s| Value::String(s).to_string()),
        1 => (1usize..5000).prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d))),
        1 => (1usize..3000).prop_map(|d| format!("{}1{}", r#"{"a":"#.repeat(d), "}".repeat(d))),
    ]
}

/// Strings that stress a reader: empty, long, multi-byte, control characters, quotes,
/// right-to-left marks, byte order marks, digits that look like session numbers.
fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        any::<String>(),
        "\\PC{0,40}",
        "[\\x00-\\x1f\"\\\\\u{7f}\u{2028}\u{202e}\u{feff}]{1,8}",
        "[0-9 -]{0,14}",
        (any::<char>(), 0usize..70_000).prop_map(|(c, n)| c.to_string().repeat(n)),
        (0usize..70_000).prop_map(|n| "a".repeat(n)),
    ]
}

/// A value of the same JSON type as the one it replaces, at an edge: what a well-formed
/// but hostile peer sends.
fn extreme_like(old: &Value, pick: usize, long: usize) -> String {
    match old {
        Value::Bool(b) => (!b).to_string(),
        Value::Number(_) => [
            "0",
            "1",
            "65535",
            "65536",
            "999999999",
            "1000000000",
            "4294967295",
            "4294967296",
            "9223372036854775807",
            "18446744073709551615",
        ][pick % 10]
            .to_owned(),
        Value::String(_) => {
            let s = match pick % 12 {
                0 => String::new(),
                1 => " ".to_owned(),
                2 => "a".repeat(long),
                3 => "é".repeat(long / 2),
                4 => "\u{1f600}".repeat(long / 4),
                5 => "\u{7}\u{0}\n".to_owned(),
                6 => "\u{202e}evil\u{feff}".to_owned(),
                7 => "\"\\/".to_owned(),
                8 => "123456789".to_owned(),
                9 => "000 000 000".to_owned(),
                10 => "999-999-999".to_owned(),
                _ => "x".repeat(64),
            };
            Value::String(s).to_string()
        }
        Value::Array(_) => ["[]", "[null]", "[[[]]]"][pick % 3].to_owned(),
        Value::Object(_) | Value::Null => ["{}", "null", r#"{"":null}"#][pick % 3].to_owned(),
    }
}

/// A change to a parsed document. Node indices wrap around the document's node count, so
/// every mutation applies to every document, and shrinking moves them towards the root.
#[derive(Clone, Debug)]
enum Mutation {
    /// Put raw JSON text in place of a node.
    Replace(usize, String),
    /// Put an edge value of the same JSON type in place of a node.
    Extreme(usize, usize, usize),
    /// Remove a member or an element.
    Remove(usize),
    /// Add a member (objects) or an element (arrays).
    Add(usize, String, String),
    /// Change the `type` tag to another known type, or to any string.
    Retag(String),
}

fn kind_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(fixtures().kinds.clone()),
        1 => odd_string(),
        1 => "[A-Za-z_]{0,20}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), raw_value()).prop_map(|(n, raw)| Mutation::Replace(n, raw)),
        4 => (any::<usize>(), any::<usize>(), 0usize..70_000)
            .prop_map(|(n, pick, long)| Mutation::Extreme(n, pick, long)),
        2 => any::<usize>().prop_map(Mutation::Remove),
        2 => (any::<usize>(), prop_oneof!["[a-z_]{1,12}".boxed(), odd_string().boxed()], raw_value())
            .prop_map(|(n, key, raw)| Mutation::Add(n, key, raw)),
        2 => kind_name().prop_map(Mutation::Retag),
    ]
}

/// A change to the bytes of the written document.
#[derive(Clone, Debug)]
enum ByteEdit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, bit)| ByteEdit::Flip(i, bit)),
        (
            any::<usize>(),
            prop_oneof![
                any::<u8>(),
                proptest::sample::select(b"{}[]\":,\\0e-.".to_vec())
            ]
        )
            .prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| ByteEdit::Delete(i, n)),
        any::<usize>().prop_map(ByteEdit::Truncate),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| ByteEdit::Duplicate(i, n)),
    ]
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

/// A placeholder string that the final text replaces with raw JSON.
fn placeholder(n: usize) -> Value {
    Value::String(format!("\u{0}raw{n}\u{0}"))
}

fn apply(doc: &Value, mutations: &[Mutation], edits: &[ByteEdit]) -> String {
    let mut doc = doc.clone();
    let mut raws: Vec<String> = Vec::new();
    for m in mutations {
        let nodes = pointers(&doc);
        let at = |n: usize| nodes[n % nodes.len()].clone();
        match m {
            Mutation::Replace(n, raw) => {
                if let Some(node) = doc.pointer_mut(&at(*n)) {
                    *node = placeholder(raws.len());
                    raws.push(raw.clone());
                }
            }
            Mutation::Extreme(n, pick, long) => {
                if let Some(node) = doc.pointer_mut(&at(*n)) {
                    let raw = extreme_like(node, *pick, *long);
                    *node = placeholder(raws.len());
                    raws.push(raw);
                }
            }
            Mutation::Remove(n) => {
                let pointer = at(*n);
                if let Some(cut) = pointer.rfind('/') {
                    let (parent, key) = (&pointer[..cut], &pointer[cut + 1..]);
                    let key = key.replace("~1", "/").replace("~0", "~");
                    match doc.pointer_mut(parent) {
                        Some(Value::Object(map)) => {
                            map.remove(&key);
                        }
                        Some(Value::Array(items)) => {
                            if let Ok(i) = key.parse::<usize>() {
                                if i < items.len() {
                                    items.remove(i);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            Mutation::Add(n, key, raw) => match doc.pointer_mut(&at(*n)) {
                Some(Value::Object(map)) => {
                    map.insert(key.clone(), placeholder(raws.len()));
                    raws.push(raw.clone());
                }
                Some(Value::Array(items)) => {
                    items.push(placeholder(raws.len()));
                    raws.push(raw.clone());
                }
                _ => {}
            },
            Mutation::Retag(kind) => {
                if let Value::Object(map) = &mut doc {
                    map.insert("type".into(), Value::String(kind.clone()));
                }
            }
        }
    }
    let mut text = doc.to_string();
    for (n, raw) in raws.iter().enumerate() {
        text = text.replace(&placeholder(n).to_string(), raw);
    }
    let mut bytes = text.into_bytes();
    for edit in edits {
        let len = bytes.len();
        let at = |i: usize| if len == 0 { 0 } else { i % len };
        match *edit {
            ByteEdit::Flip(i, bit) if len > 0 => bytes[at(i)] ^= 1 << bit,
            ByteEdit::Insert(i, b) => bytes.insert(i % (len + 1), b),
            ByteEdit::Delete(i, n) if len > 0 => {
                let start = at(i);
                bytes.drain(start..(start + n).min(len));
            }
            ByteEdit::Truncate(i) => bytes.truncate(i % (len + 1)),
            ByteEdit::Duplicate(i, n) if len > 0 => {
                let start = at(i);
                let piece = bytes[start..(start + n).min(len)].to_vec();
                bytes.splice(start..start, piece);
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A fixture of one direction, mutated.
fn mutated(server: bool) -> impl Strategy<Value = String> {
    let docs = if server {
        fixtures().server.clone()
    } else {
        fixtures().client.clone()
    };
    (
        proptest::sample::select(docs),
        proptest::collection::vec(mutation(), 0..4),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => proptest::collection::vec(byte_edit(), 1..4),
        ],
    )
        .prop_map(|(doc, mutations, edits)| apply(&doc, &mutations, &edits))
}

/// Arbitrary text: bytes, strings, and soups of JSON tokens and protocol words.
fn arbitrary_text() -> impl Strategy<Value = String> {
    let tokens = [
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"",
        "\\",
        "\"type\"",
        "\"chat\"",
        "\"hello\"",
        "\"text\"",
        "\"number\"",
        "\"participant\"",
        "\"stream\"",
        "\"share\"",
        "\"kind\"",
        "\"window\"",
        "\"to\"",
        "null",
        "true",
        "false",
        "0",
        "-1",
        "1e999",
        "18446744073709551616",
        "\"\\u0000\"",
        "\"\\ud800\"",
        " ",
        "\n",
        "\u{feff}",
    ];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        any::<String>(),
        proptest::collection::vec(proptest::sample::select(tokens.to_vec()), 0..64)
            .prop_map(|t| t.concat()),
        proptest::collection::vec(proptest::sample::select(tokens.to_vec()), 0..64)
            .prop_map(|t| format!("{{\"type\":{}", t.concat())),
    ]
}

// ---------------------------------------------------------------------------------------
// Well-formed client messages with extreme values

fn id() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(u64::MAX), 0u64..10, any::<u64>()]
}

fn pid() -> impl Strategy<Value = ParticipantId> {
    id().prop_map(ParticipantId)
}

fn share() -> impl Strategy<Value = ShareId> {
    id().prop_map(ShareId)
}

fn number() -> impl Strategy<Value = SessionNumber> {
    prop_oneof![Just(0), Just(SessionNumber::MAX), 0..=SessionNumber::MAX]
        .prop_map(|n| SessionNumber::new(n).expect("nine digits at most"))
}

fn stream() -> impl Strategy<Value = StreamRef> {
    prop_oneof![
        share().prop_map(StreamRef::Share),
        Just(StreamRef::Call),
        Just(StreamRef::Recording)
    ]
}

fn target() -> impl Strategy<Value = TransferTarget> {
    prop_oneof![
        odd_string().prop_map(|agent| TransferTarget::Agent { agent }),
        odd_string().prop_map(|queue| TransferTarget::Queue { queue }),
    ]
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    use ClientMessage as C;
    let s = odd_string;
    let kind = proptest::sample::select(vec![
        ClientKind::Console,
        ClientKind::Customer,
        ClientKind::Agent,
    ]);
    let invitee = proptest::sample::select(vec![Invitee::Customer, Invitee::SupportRep]);
    let source = prop_oneof![
        Just(ShareSource::Desktop),
        s().prop_map(|title| ShareSource::Window { title }),
        s().prop_map(|name| ShareSource::Monitor { name })
    ];
    let candidate = (
        s(),
        proptest::option::of(s()),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(|(candidate, sdp_mid, sdp_mline_index)| IceCandidate {
            candidate,
            sdp_mid,
            sdp_mline_index,
        });
    let fixed = vec![
        C::RequestShare,
        C::DeclineShare,
        C::RequestControl,
        C::ReleaseControl,
        C::RevokeControl,
        C::StartCall,
        C::LeaveCall,
        C::EndCall,
        C::Leave,
        C::EndSession,
    ];
    let variants: Vec<BoxedStrategy<C>> = vec![
        (any::<u32>(), kind, s())
            .prop_map(|(protocol_version, client, software)| C::Hello {
                protocol_version,
                client,
                software,
            })
            .boxed(),
        (s(), s(), proptest::option::of(s()))
            .prop_map(|(secret, name, join_key)| C::JoinByLink {
                secret,
                name,
                join_key,
            })
            .boxed(),
        (number(), s(), proptest::option::of(s()))
            .prop_map(|(number, name, join_key)| C::JoinByNumber {
                number,
                name,
                join_key,
            })
            .boxed(),
        number()
            .prop_map(|number| C::OpenSession { number })
            .boxed(),
        (number(), proptest::option::of(s()))
            .prop_map(|(number, join_key)| C::Assist { number, join_key })
            .boxed(),
        (number(), proptest::option::of(s()))
            .prop_map(|(number, join_key)| C::AcceptTransfer { number, join_key })
            .boxed(),
        (s(), proptest::option::of(s()))
            .prop_map(|(token, join_key)| C::AttachAgent { token, join_key })
            .boxed(),
        s().prop_map(|token| C::Resume { token }).boxed(),
        any::<bool>()
            .prop_map(|available| C::Dashboard { available })
            .boxed(),
        pid()
            .prop_map(|participant| C::Admit { participant })
            .boxed(),
        pid()
            .prop_map(|participant| C::Deny { participant })
            .boxed(),
        pid()
            .prop_map(|participant| C::SetActiveCustomer { participant })
            .boxed(),
        s().prop_map(|text| C::Chat { text }).boxed(),
        (invitee, s(), any::<bool>())
            .prop_map(|(invitee, address, own_email_program)| C::Invite {
                invitee,
                address,
                own_email_program,
                language: None,
            })
            .boxed(),
        id().prop_map(|invite| C::RetryInvite {
            invite,
            language: None,
        })
        .boxed(),
        source.prop_map(|source| C::StartShare { source }).boxed(),
        share().prop_map(|share| C::StopShare { share }).boxed(),
        share().prop_map(|share| C::ViewShare { share }).boxed(),
        share().prop_map(|share| C::StopViewing { share }).boxed(),
        (pid(), stream(), s())
            .prop_map(|(to, stream, sdp)| C::Offer { to, stream, sdp })
            .boxed(),
        (pid(), stream(), s())
            .prop_map(|(to, stream, sdp)| C::Answer { to, stream, sdp })
            .boxed(),
        (pid(), stream(), candidate)
            .prop_map(|(to, stream, candidate)| C::IceCandidate {
                to,
                stream,
                candidate,
            })
            .boxed(),
        pid().prop_map(|to| C::GiveControl { to }).boxed(),
        any::<bool>()
            .prop_map(|granted| C::ControlConsent { granted })
            .boxed(),
        pid().prop_map(|to| C::TransferSession { to }).boxed(),
        (target(), proptest::option::of(s()))
            .prop_map(|(target, message)| C::WebacdTransfer { target, message })
            .boxed(),
        any::<bool>()
            .prop_map(|video| C::JoinCall { video })
            .boxed(),
        (any::<bool>(), any::<bool>())
            .prop_map(|(muted, video)| C::CallMedia { muted, video })
            .boxed(),
        proptest::sample::select(fixed).boxed(),
    ];
    proptest::strategy::Union::new(variants)
}

// ---------------------------------------------------------------------------------------
// Properties

/// What every answer of a decoder must satisfy, whatever the input.
fn check_refusal(text: &str, err: &DecodeError) -> Result<(), TestCaseError> {
    prop_assert!(!err.message.trim().is_empty(), "empty message for {text:?}");
    prop_assert!(
        matches!(
            err.code,
            ErrorCode::BadMessage | ErrorCode::UnknownType | ErrorCode::MessageTooLarge
        ),
        "a decoder answered {:?}",
        err.code
    );
    prop_assert_eq!(
        err.code == ErrorCode::MessageTooLarge,
        text.len() > MAX_MESSAGE_BYTES,
        "too large is exactly the texts over the limit ({} bytes): {}",
        text.len(),
        err.message
    );
    Ok(())
}

fn check_client(text: &str) -> Result<(), TestCaseError> {
    match decode_client(text) {
        Ok(message) => {
            prop_assert!(text.len() <= MAX_MESSAGE_BYTES);
            let again = encode(&message);
            if again.len() <= MAX_MESSAGE_BYTES {
                prop_assert_eq!(
                    decode_client(&again),
                    Ok(message),
                    "round trip of {}",
                    again
                );
            }
        }
        Err(err) => check_refusal(text, &err)?,
    }
    Ok(())
}

fn check_server(text: &str) -> Result<(), TestCaseError> {
    match decode_server(text) {
        Ok(message) => {
            prop_assert!(text.len() <= MAX_MESSAGE_BYTES);
            let again = encode(&message);
            if again.len() <= MAX_MESSAGE_BYTES {
                prop_assert_eq!(
                    decode_server(&again),
                    Ok(message),
                    "round trip of {}",
                    again
                );
            }
        }
        Err(err) => check_refusal(text, &err)?,
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(10_000))]

    #[test]
    fn decoders_take_arbitrary_text(text in arbitrary_text()) {
        check_client(&text)?;
        check_server(&text)?;
    }

    #[test]
    fn client_decoder_takes_mutated_fixtures(text in mutated(false)) {
        check_client(&text)?;
    }

    #[test]
    fn server_decoder_takes_mutated_fixtures(text in mutated(true)) {
        check_server(&text)?;
    }
}

proptest! {
    #![proptest_config(config(5000))]

    /// Encoding a valid message and reading it back gives the same message; past the size
    /// limit the reader refuses it as too large instead.
    #[test]
    fn valid_client_messages_round_trip(message in client_message()) {
        let text = encode(&message);
        match decode_client(&text) {
            Ok(read) => prop_assert_eq!(read, message),
            Err(err) => {
                prop_assert_eq!(err.code, ErrorCode::MessageTooLarge, "{}", err.message);
                prop_assert!(text.len() > MAX_MESSAGE_BYTES);
            }
        }
    }
}

/// Inputs of up to 64 KiB whose long parts sit where a decoder might quote them: the type
/// name, a string or number of the wrong type, a member name, a session number.
fn long_input() -> impl Strategy<Value = String> {
    let long = |n: usize| "x".repeat(n);
    prop_oneof![
        (0usize..60_000).prop_map(move |n| format!(r#"{{"type":"{}"}}"#, long(n))),
        (0usize..60_000)
            .prop_map(move |n| format!(r#"{{"type":"admit","participant":"{}"}}"#, long(n))),
        (0usize..60_000).prop_map(move |n| format!(r#"{{"type":"chat","text":{}}}"#, long(n))),
        (0usize..60_000).prop_map(|n| format!(r#"{{"type":"chat","text":{}}}"#, "9".repeat(n))),
        (0usize..60_000).prop_map(move |n| format!(
            r#"{{"type":"join_by_number","number":"{}","name":"a"}}"#,
            long(n)
        )),
        (0usize..60_000).prop_map(move |n| format!(
            r#"{{"type":"hello","protocol_version":1,"client":"{}"}}"#,
            long(n)
        )),
        (0usize..60_000).prop_map(move |n| format!(
            r#"{{"type":"start_share","source":{{"kind":"{}"}}}}"#,
            long(n)
        )),
        (0usize..60_000).prop_map(move |n| format!(r#"{{"{}":1}}"#, long(n))),
        (0usize..60_000)
            .prop_map(move |n| format!(r#"{{"type":"error","code":"{}","message":"m"}}"#, long(n))),
        (0usize..60_000).prop_map(move |n| format!("{}!", long(n))),
        (
            proptest::sample::select(fixtures().client.clone()),
            any::<usize>(),
            0usize..60_000
        )
            .prop_map(|(doc, at, n)| apply(
                &doc,
                &[Mutation::Replace(at, format!("\"{}\"", "é".repeat(n / 2)))],
                &[]
            ))
            .prop_filter("within the size limit", |t| t.len() <= MAX_MESSAGE_BYTES),
    ]
}

proptest! {
    #![proptest_config(config(300))]

    /// An error message quotes at most a short excerpt of what the peer sent, so an error
    /// reply never amplifies (or reflects) a large input.
    #[test]
    fn error_messages_are_short(text in long_input()) {
        for err in [decode_client(&text).err(), decode_server(&text).err()].into_iter().flatten() {
            prop_assert!(
                err.message.len() <= 300,
                "{} bytes of message for {} bytes of input: {}…",
                err.message.len(),
                text.len(),
                err.message.chars().take(120).collect::<String>()
            );
        }
    }
}

/// `unknown_type` means the `type` tag named no client message. An unknown value of some
/// other enum field (a client kind, a share source, a transfer target) is a bad message:
/// the client's type is fine, so telling it otherwise sends its author looking in the
/// wrong place.
#[test]
fn unknown_type_is_only_for_unknown_types() {
    let kinds = client_kinds();
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = mutated(false);
    let mut wrong = Vec::new();
    for _ in 0..cases(3000) {
        let text = strategy.new_tree(&mut runner).expect("generate").current();
        let Err(err) = decode_client(&text) else {
            continue;
        };
        let tag = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned));
        if err.code == ErrorCode::UnknownType && tag.as_ref().is_some_and(|t| kinds.contains(t)) {
            wrong.push(format!("{} -> {}", excerpt(&text), err.message));
        }
    }
    // A hand-written case of each, so the failure is readable.
    for text in [
        r#"{"type":"hello","protocol_version":1,"client":"robot"}"#,
        r#"{"type":"start_share","source":{"kind":"planet"}}"#,
        r#"{"type":"invite","invitee":"cat","address":"a@b.c"}"#,
    ] {
        let err = decode_client(text).expect_err("an unknown enum value");
        if err.code == ErrorCode::UnknownType {
            wrong.push(format!("{text} -> {}", err.message));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} known types reported as unknown, e.g.:\n{}",
        wrong.len(),
        wrong.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
}

fn excerpt(text: &str) -> String {
    text.chars().take(200).collect()
}

/// The mutations above only test the decoder's deep paths if they reach them: sample the
/// same generators and check that a fair share of mutated fixtures still decode, that
/// each way of failing occurs, and that typed values fail for their own reasons.
#[test]
fn mutated_inputs_reach_every_outcome() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = prop_oneof![mutated(false), mutated(true)];
    let n = 2000;
    let (mut decoded, mut syntax, mut malformed, mut unknown, mut large) = (0, 0, 0, 0, 0);
    for _ in 0..n {
        let text = strategy.new_tree(&mut runner).expect("generate").current();
        match (decode_client(&text), decode_server(&text)) {
            (Ok(_), _) | (_, Ok(_)) => decoded += 1,
            (Err(e), _) => match e.code {
                ErrorCode::MessageTooLarge => large += 1,
                ErrorCode::UnknownType => unknown += 1,
                _ if e.message.starts_with("not valid JSON") => syntax += 1,
                _ => malformed += 1,
            },
        }
    }
    eprintln!(
        "of {n}: decoded {decoded}, not JSON {syntax}, malformed {malformed}, \
         unknown type {unknown}, too large {large}"
    );
    for (what, count) in [
        ("decoded", decoded),
        ("not JSON", syntax),
        ("malformed", malformed),
        ("unknown type", unknown),
        ("too large", large),
    ] {
        assert!(count >= n / 100, "{what}: only {count} of {n}");
    }
}
