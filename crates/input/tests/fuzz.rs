//! Fuzzing the input channel's validator as bounded property tests: a smoke run in every
//! `cargo test`, longer on demand (`PROPTEST_CASES=200000 cargo test -p tandem-input --test fuzz`).
//!
//! Inputs mix arbitrary bytes and JSON token soup, the golden fixtures mutated (values
//! replaced by other JSON types, huge numbers, deep nesting, long strings, members removed
//! or added, bytes flipped), and well-formed events with values at the edges of their
//! ranges. Each answer is compared with an independent reading of the documented rules, and
//! sequences of events on a simulated clock check the rate limit: releases always pass, a
//! press at the sustained rate always passes, and a burst never gets more than the bucket.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, FileFailurePersistence, RngAlgorithm, TestRng, TestRunner};
use serde_json::Value;
use tandem_input::{
    Action, InputEvent, Key, MouseButton, RATE_BURST, RATE_PER_SECOND, Rejected, Validator,
};

/// The documented bounds (`validate.rs`): the largest wheel turn in notches, the longest
/// typed text in characters, the largest message in bytes.
const MAX_WHEEL: i64 = 20;
const MAX_TEXT: usize = 256;
const MAX_MESSAGE: usize = 2048;

/// Cases for targets whose cases are `per` times as costly as one message: the smoke run,
/// or `PROPTEST_CASES / per` when that is set, so one setting suits every target. (The
/// `proptest!` targets get `PROPTEST_CASES` itself, or their smoke count.)
fn costly_cases(smoke: u32, per: u32) -> u32 {
    match std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        Some(n) => (n / per).max(1),
        None => smoke,
    }
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: 500,
        // Failures are kept beside this file and replayed first on the next run.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

fn fixtures() -> &'static Vec<Value> {
    static FIXTURES: OnceLock<Vec<Value>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|entry| entry.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        assert_eq!(files.len(), 5, "one fixture per kind of event");
        files
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).expect("fixture text");
                serde_json::from_str(&text).expect("fixture is JSON")
            })
            .collect()
    })
}

// ---------------------------------------------------------------------------------------
// Inputs

/// Key codes that name keys, some that do not, and near misses.
const CODES: &[&str] = &[
    "KeyA",
    "KeyZ",
    "Digit0",
    "ShiftLeft",
    "ControlRight",
    "AltGraph",
    "MetaLeft",
    "Enter",
    "Space",
    "F1",
    "F12",
    "F24",
    "ArrowLeft",
    "NumpadEnter",
    "IntlBackslash",
    "Backquote",
    "Fn",
    "Launch",
    "Unidentified",
    "",
    "keya",
    "KeyA ",
    "Key\u{0}",
];

fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        any::<String>(),
        "\\PC{0,300}",
        "[\\x00-\\x1f\u{7f}\u{85}\u{2028}\u{202e}\u{feff}a]{1,8}",
        (any::<char>(), 0usize..3000).prop_map(|(c, n)| c.to_string().repeat(n)),
        proptest::sample::select(CODES.to_vec()).prop_map(str::to_owned),
    ]
}

/// Raw JSON text put in place of a value, including what `serde_json::Value` cannot hold.
fn raw_value() -> impl Strategy<Value = String> {
    let fixed = [
        "null",
        "true",
        "false",
        "0",
        "-0",
        "1",
        "0.5",
        "-0.0",
        "1.0000000000000002",
        "-1e-300",
        "5e-324",
        "1e999",
        "-1e999",
        "1e-400",
        "20",
        "21",
        "-20",
        "-21",
        "2147483647",
        "2147483648",
        "-2147483648",
        "-2147483649",
        "18446744073709551616",
        "123456789012345678901234567890",
        r#""0.5""#,
        r#""\ud800""#,
        r#""\u0000""#,
        r#""left""#,
        r#""LEFT""#,
        "[]",
        "{}",
        "[0.5,0.5]",
    ];
    prop_oneof![
        6 => proptest::sample::select(fixed.to_vec()).prop_map(str::to_owned),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        2 => any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(|f| f.to_string()),
        3 => odd_string().prop_map(|s| Value::String(s).to_string()),
        1 => (1usize..1000).prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d))),
        1 => (1usize..600).prop_map(|d| format!("{}1{}", r#"{"a":"#.repeat(d), "}".repeat(d))),
    ]
}

#[derive(Clone, Debug)]
enum Mutation {
    /// Put raw JSON text in place of a member's value (or of the whole event).
    Replace(usize, String),
    /// Remove a member.
    Remove(usize),
    /// Add a member.
    Add(String, String),
    /// Change the `type` tag.
    Retag(String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let kinds = [
        "move", "button", "wheel", "key", "text", "Move", "scroll", "",
    ];
    prop_oneof![
        5 => (any::<usize>(), raw_value()).prop_map(|(n, raw)| Mutation::Replace(n, raw)),
        2 => any::<usize>().prop_map(Mutation::Remove),
        2 => (
            prop_oneof![
                proptest::sample::select(vec!["x", "y", "dx", "dy", "down", "button", "code", "text", "type"]).prop_map(str::to_owned),
                "[a-z]{1,8}",
            ],
            raw_value()
        )
            .prop_map(|(k, raw)| Mutation::Add(k, raw)),
        2 => proptest::sample::select(kinds.to_vec()).prop_map(|k| Mutation::Retag(k.to_owned())),
    ]
}

#[derive(Clone, Debug)]
enum ByteEdit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Truncate(usize),
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
        (any::<usize>(), 1usize..8).prop_map(|(i, n)| ByteEdit::Delete(i, n)),
        any::<usize>().prop_map(ByteEdit::Truncate),
    ]
}

fn placeholder(n: usize) -> Value {
    Value::String(format!("\u{0}raw{n}\u{0}"))
}

fn apply(doc: &Value, mutations: &[Mutation], edits: &[ByteEdit]) -> Vec<u8> {
    let mut doc = doc.clone();
    let mut raws: Vec<String> = Vec::new();
    for m in mutations {
        match (m, &mut doc) {
            (Mutation::Replace(n, raw), Value::Object(map)) => {
                // Index `len` stands for the whole event.
                let keys: Vec<String> = map.keys().cloned().collect();
                match keys.get(n % (keys.len() + 1)) {
                    Some(key) => {
                        map.insert(key.clone(), placeholder(raws.len()));
                    }
                    None => doc = placeholder(raws.len()),
                }
                raws.push(raw.clone());
            }
            (Mutation::Remove(n), Value::Object(map)) if !map.is_empty() => {
                let key = map.keys().nth(n % map.len()).cloned().expect("a key");
                map.remove(&key);
            }
            (Mutation::Add(key, raw), Value::Object(map)) => {
                map.insert(key.clone(), placeholder(raws.len()));
                raws.push(raw.clone());
            }
            (Mutation::Retag(kind), Value::Object(map)) => {
                map.insert("type".into(), Value::String(kind.clone()));
            }
            _ => {}
        }
    }
    let mut text = doc.to_string();
    for (n, raw) in raws.iter().enumerate() {
        text = text.replace(&placeholder(n).to_string(), raw);
    }
    let mut bytes = text.into_bytes();
    for edit in edits {
        let len = bytes.len();
        match *edit {
            ByteEdit::Flip(i, bit) if len > 0 => bytes[i % len] ^= 1 << bit,
            ByteEdit::Insert(i, b) => bytes.insert(i % (len + 1), b),
            ByteEdit::Delete(i, n) if len > 0 => {
                let start = i % len;
                bytes.drain(start..(start + n).min(len));
            }
            ByteEdit::Truncate(i) => bytes.truncate(i % (len + 1)),
            _ => {}
        }
    }
    bytes
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(fixtures().clone()),
        proptest::collection::vec(mutation(), 0..4),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => proptest::collection::vec(byte_edit(), 1..4),
        ],
    )
        .prop_map(|(doc, mutations, edits)| apply(&doc, &mutations, &edits))
}

fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    let tokens = [
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"type\"",
        "\"move\"",
        "\"key\"",
        "\"wheel\"",
        "\"x\"",
        "\"y\"",
        "\"dx\"",
        "\"code\"",
        "\"KeyA\"",
        "\"down\"",
        "true",
        "0.5",
        "-2147483648",
        "1e999",
        " ",
    ];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..3000),
        any::<String>().prop_map(String::into_bytes),
        proptest::collection::vec(proptest::sample::select(tokens.to_vec()), 0..40)
            .prop_map(|t| t.concat().into_bytes()),
    ]
}

/// A coordinate: mostly inside the surface, often just outside it, sometimes anything.
fn coordinate() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => 0.0f64..=1.0,
        1 => proptest::sample::select(vec![
            0.0, -0.0, 1.0, 5e-324, -5e-324, 1.0000000000000002, 0.9999999999999999, -1e-300,
            f64::MAX, f64::MIN, f64::MIN_POSITIVE, f64::NAN, f64::INFINITY,
        ]),
        1 => any::<f64>(),
    ]
}

fn notches() -> impl Strategy<Value = i32> {
    prop_oneof![
        3 => -20i32..=20,
        1 => proptest::sample::select(vec![-21, 21, i32::MAX, i32::MIN, i32::MIN + 1]),
        1 => any::<i32>(),
    ]
}

fn button() -> impl Strategy<Value = MouseButton> {
    proptest::sample::select(vec![
        MouseButton::Left,
        MouseButton::Middle,
        MouseButton::Right,
    ])
}

/// Well-formed events with values at the edges.
fn event() -> impl Strategy<Value = InputEvent> {
    prop_oneof![
        (coordinate(), coordinate()).prop_map(|(x, y)| InputEvent::Move { x, y }),
        (button(), any::<bool>(), coordinate(), coordinate())
            .prop_map(|(button, down, x, y)| InputEvent::Button { button, down, x, y }),
        (coordinate(), coordinate(), notches(), notches())
            .prop_map(|(x, y, dx, dy)| InputEvent::Wheel { x, y, dx, dy }),
        (prop_oneof![3 => proptest::sample::select(CODES.to_vec()).prop_map(str::to_owned), 1 => odd_string()], any::<bool>())
            .prop_map(|(code, down)| InputEvent::Key { code, down }),
        odd_string().prop_map(|text| InputEvent::Text { text }),
    ]
}

// ---------------------------------------------------------------------------------------
// The rules, read independently of the validator

/// What a fresh validator must answer: the action, or the kind of refusal.
fn expected(raw: &[u8]) -> Result<Action, &'static str> {
    if raw.len() > MAX_MESSAGE {
        return Err("too large");
    }
    let Ok(event) = serde_json::from_slice::<InputEvent>(raw) else {
        return Err("malformed");
    };
    let inside = |v: f64| (0.0..=1.0).contains(&v);
    let point = |x: f64, y: f64| {
        if inside(x) && inside(y) {
            Ok(())
        } else {
            Err("out of range")
        }
    };
    match event {
        InputEvent::Move { x, y } => point(x, y).map(|()| Action::Move { x, y }),
        InputEvent::Button { button, down, x, y } => {
            point(x, y).map(|()| Action::Button { button, down, x, y })
        }
        InputEvent::Wheel { x, y, dx, dy } => {
            point(x, y)?;
            let turn = |n: i32| (-MAX_WHEEL..=MAX_WHEEL).contains(&i64::from(n));
            if turn(dx) && turn(dy) {
                Ok(Action::Wheel { x, y, dx, dy })
            } else {
                Err("out of range")
            }
        }
        InputEvent::Key { code, down } => Key::from_code(&code)
            .map(|key| Action::Key { key, down })
            .ok_or("unknown code"),
        InputEvent::Text { text } => {
            let n = text.chars().count();
            if (1..=MAX_TEXT).contains(&n) && !text.chars().any(char::is_control) {
                Ok(Action::Text(text))
            } else {
                Err("bad text")
            }
        }
    }
}

fn kind(rejected: &Rejected) -> &'static str {
    match rejected {
        Rejected::TooLarge(_) => "too large",
        Rejected::Malformed(_) => "malformed",
        Rejected::OutOfRange(_) => "out of range",
        Rejected::UnknownCode(_) => "unknown code",
        Rejected::BadText => "bad text",
        Rejected::RateLimited => "rate limited",
    }
}

/// An accepted action stays within the documented bounds, whatever the input was.
fn within_bounds(action: &Action) -> Result<(), TestCaseError> {
    let inside = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
    match action {
        Action::Move { x, y } | Action::Button { x, y, .. } => {
            prop_assert!(inside(*x) && inside(*y), "{action:?}");
        }
        Action::Wheel { x, y, dx, dy } => {
            prop_assert!(inside(*x) && inside(*y), "{action:?}");
            prop_assert!(i64::from(*dx).abs() <= MAX_WHEEL && i64::from(*dy).abs() <= MAX_WHEEL);
        }
        Action::Key { key, .. } => prop_assert!(
            key.x11_keycode().is_some() || key.windows_scan_code().is_some(),
            "{action:?}"
        ),
        Action::Text(text) => {
            let n = text.chars().count();
            prop_assert!((1..=MAX_TEXT).contains(&n) && !text.chars().any(char::is_control));
        }
    }
    Ok(())
}

/// One message to a fresh validator: no panic, the documented answer, a reason when refused.
fn check_one(raw: &[u8]) -> Result<(), TestCaseError> {
    let got = Validator::new().check(raw, Instant::now());
    match (&got, expected(raw)) {
        (Ok(action), Ok(wanted)) => {
            within_bounds(action)?;
            prop_assert_eq!(action, &wanted);
        }
        (Err(rejected), Err(wanted)) => {
            prop_assert_eq!(kind(rejected), wanted, "{}", rejected);
            prop_assert!(!rejected.to_string().trim().is_empty());
            if let Rejected::TooLarge(n) = rejected {
                prop_assert_eq!(*n, raw.len());
            }
        }
        (got, wanted) => prop_assert!(
            false,
            "{:?} gave {:?}, the rules say {:?}",
            String::from_utf8_lossy(raw),
            got,
            wanted
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    fn arbitrary_bytes_get_the_documented_answer(raw in arbitrary_bytes()) {
        check_one(&raw)?;
    }

    #[test]
    fn mutated_fixtures_get_the_documented_answer(raw in mutated()) {
        check_one(&raw)?;
    }

    #[test]
    fn edge_values_get_the_documented_answer(event in event()) {
        // NaN and infinity are written as `null`, which the validator must refuse too.
        let raw = serde_json::to_vec(&event).expect("an event serialises");
        check_one(&raw)?;
    }
}

// ---------------------------------------------------------------------------------------
// Sequences on a simulated clock

/// One step: an event, and the milliseconds since the previous step.
fn steps() -> impl Strategy<Value = Vec<(InputEvent, u64)>> {
    // Mostly valid presses with no time between them, so that most sequences empty the
    // bucket; the odd invalid event and short pauses in between.
    let key = |down: bool| {
        proptest::sample::select(vec!["KeyA", "ShiftLeft", "Space"]).prop_map(move |code| {
            InputEvent::Key {
                code: code.into(),
                down,
            }
        })
    };
    let press = prop_oneof![
        6 => key(true),
        3 => (0.0f64..=1.0, 0.0f64..=1.0).prop_map(|(x, y)| InputEvent::Move { x, y }),
        1 => event(),
    ];
    let release = prop_oneof![
        key(false),
        (button(), coordinate(), coordinate()).prop_map(|(button, x, y)| InputEvent::Button {
            button,
            down: false,
            x,
            y
        }),
    ];
    let gap = prop_oneof![40 => Just(0u64), 6 => 0u64..3, 1 => 3u64..50];
    proptest::collection::vec((prop_oneof![5 => press, 1 => release], gap), 1..800)
}

#[derive(Debug, Default)]
struct Reached {
    rate_limited: usize,
    release_while_empty: usize,
}

fn is_release(action: &Action) -> bool {
    matches!(
        action,
        Action::Key { down: false, .. } | Action::Button { down: false, .. }
    )
}

fn run(steps: &[(InputEvent, u64)]) -> Result<Reached, TestCaseError> {
    let base = Instant::now();
    let mut validator = Validator::new();
    let mut reached = Reached::default();
    let (mut now_ms, mut first_token_ms, mut last_token_ms) = (0u64, None, None::<u64>);
    let mut accepted_presses = 0usize;
    let mut empty = false;
    for (event, gap) in steps {
        now_ms += gap;
        let raw = serde_json::to_vec(event).expect("an event serialises");
        let got = validator.check(&raw, base + Duration::from_millis(now_ms));
        let wanted = expected(&raw);
        match (&got, &wanted) {
            (Ok(action), Ok(rule)) => {
                prop_assert_eq!(action, rule);
                within_bounds(action)?;
            }
            (Err(Rejected::RateLimited), Ok(rule)) => {
                prop_assert!(
                    !is_release(rule),
                    "a release was refused for rate: {:?}",
                    event
                );
            }
            (Err(rejected), Err(rule)) => prop_assert_eq!(kind(rejected), *rule),
            _ => prop_assert!(
                false,
                "{:?} gave {:?}, the rules say {:?}",
                event,
                got,
                wanted
            ),
        }
        let Ok(rule) = wanted else { continue };
        if is_release(&rule) {
            reached.release_while_empty += usize::from(empty);
            continue;
        }
        // A press at the sustained rate (one per 2.5 ms) always finds a token.
        if let Some(last) = last_token_ms {
            if now_ms - last >= 3 {
                prop_assert!(
                    got.is_ok(),
                    "a press {} ms after the last was refused",
                    now_ms - last
                );
            }
        }
        first_token_ms.get_or_insert(now_ms);
        last_token_ms = Some(now_ms);
        empty = got.is_err();
        reached.rate_limited += usize::from(empty);
        accepted_presses += usize::from(got.is_ok());
    }
    if let Some(first) = first_token_ms {
        let span = (now_ms - first) as f64 / 1000.0;
        let most = RATE_BURST + RATE_PER_SECOND * span;
        prop_assert!(
            accepted_presses as f64 <= most + 1e-6,
            "{} presses in {} s, the bucket allows {}",
            accepted_presses,
            span,
            most
        );
    }
    Ok(reached)
}

/// Run a property by hand, for targets whose cases cost more than the others: the
/// `proptest!` macro would let `PROPTEST_CASES` set their count unscaled.
fn check<S>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let mut config = config(cases);
    config.source_file = Some(file!());
    if let Err(e) = TestRunner::new(config).run(&strategy, test) {
        panic!("{e}");
    }
}

#[test]
fn sequences_keep_the_rate_and_never_hold_back_a_release() {
    check(costly_cases(300, 100), steps(), |steps| {
        run(&steps).map(|_| ())
    });
}

/// The caller's clock may go backwards (it should not, but nothing may panic or hold back
/// a release if it does).
#[test]
fn a_clock_that_goes_back_breaks_nothing() {
    let steps = proptest::collection::vec((event(), -1000i64..1000), 1..400);
    check(costly_cases(300, 100), steps, |steps| {
        let base = Instant::now() + Duration::from_secs(10);
        let mut validator = Validator::new();
        for (event, offset) in steps {
            let raw = serde_json::to_vec(&event).expect("an event serialises");
            let at = if offset < 0 {
                base - Duration::from_millis(offset.unsigned_abs())
            } else {
                base + Duration::from_millis(offset.unsigned_abs())
            };
            match (validator.check(&raw, at), expected(&raw)) {
                (Ok(action), Ok(rule)) => prop_assert_eq!(action, rule),
                (Err(Rejected::RateLimited), Ok(rule)) => prop_assert!(!is_release(&rule)),
                (Err(rejected), Err(rule)) => prop_assert_eq!(kind(&rejected), rule),
                (got, wanted) => prop_assert!(
                    false,
                    "{:?} gave {:?}, the rules say {:?}",
                    event,
                    got,
                    wanted
                ),
            }
        }
        Ok(())
    });
}

/// The sequences only test the limit if they reach it: sample the generator and check that
/// many empty the bucket and then send a release.
#[test]
fn sequences_reach_an_empty_bucket() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = steps();
    let n = 100;
    let (mut limited, mut released) = (0, 0);
    for _ in 0..n {
        let steps = strategy.new_tree(&mut runner).expect("generate").current();
        let reached = run(&steps).unwrap_or_else(|e| panic!("{e}"));
        limited += usize::from(reached.rate_limited > 0);
        released += usize::from(reached.release_while_empty > 0);
    }
    eprintln!("of {n} sequences: {limited} hit the rate limit, {released} released while empty");
    assert!(limited >= n / 10, "only {limited} of {n} hit the limit");
    assert!(
        released >= n / 20,
        "only {released} of {n} released while empty"
    );
}

/// The mutations only test the decoder's deep paths if they reach them: every kind of
/// answer must occur among mutated fixtures.
#[test]
fn mutated_fixtures_reach_every_answer() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = prop_oneof![
        mutated(),
        event().prop_map(|e| serde_json::to_vec(&e).expect("serialises"))
    ];
    let n = 3000;
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for _ in 0..n {
        let raw = strategy.new_tree(&mut runner).expect("generate").current();
        let answer = match Validator::new().check(&raw, Instant::now()) {
            Ok(_) => "accepted",
            Err(rejected) => kind(&rejected),
        };
        *counts.entry(answer).or_default() += 1;
    }
    eprintln!("of {n}: {counts:?}");
    for answer in [
        "accepted",
        "too large",
        "malformed",
        "out of range",
        "unknown code",
        "bad text",
    ] {
        let count = counts.get(answer).copied().unwrap_or(0);
        assert!(count >= n / 200, "{answer}: only {count} of {n}");
    }
}

/// Found by the fuzzing above: `dx.abs()` overflows for `i32::MIN`, which panics in a
/// debug build and, in a release build, wraps to a negative number that passes the check.
#[test]
fn a_wheel_turn_of_i32_min_is_refused() {
    let raw = br#"{"type":"wheel","x":0.5,"y":0.5,"dx":-2147483648,"dy":0}"#;
    let got = std::panic::catch_unwind(|| Validator::new().check(raw, Instant::now()));
    assert!(
        matches!(got, Ok(Err(Rejected::OutOfRange(_)))),
        "a wheel turn of i32::MIN must be refused as out of range, got {got:?}"
    );
}
