//! Every event from the network is checked before it can reach the desktop: the shape,
//! the ranges, the key code, and the rate. A release (key or button up) is never
//! rate-limited, so a burst can never leave a key held.

use std::str::FromStr;
use std::time::Instant;

use keycode::{KeyMap, KeyMappingCode};

use crate::event::{InputEvent, MouseButton};

/// Events per second a controller may send, sustained.
pub const RATE_PER_SECOND: f64 = 400.0;
/// Events a controller may send at once before the rate applies.
pub const RATE_BURST: f64 = 200.0;
/// The largest wheel turn in one event, in notches.
pub const MAX_WHEEL: i32 = 20;
/// The longest typed text in one event, in characters.
pub const MAX_TEXT: usize = 256;
/// The largest message accepted on the input channel, in bytes.
pub const MAX_MESSAGE: usize = 2048;

/// A checked event, ready for the injection thread.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Move {
        x: f64,
        y: f64,
    },
    Button {
        button: MouseButton,
        down: bool,
        x: f64,
        y: f64,
    },
    Wheel {
        x: f64,
        y: f64,
        dx: i32,
        dy: i32,
    },
    /// A key, as the browser named it, until the platform's injector maps it.
    Key {
        key: Key,
        down: bool,
    },
    Text(String),
}

impl Action {
    /// Releases only make the desktop's state simpler: never refused for rate.
    fn is_release(&self) -> bool {
        matches!(
            self,
            Action::Key { down: false, .. } | Action::Button { down: false, .. }
        )
    }
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Rejected {
    #[error("the input message is too large ({0} bytes; at most {MAX_MESSAGE})")]
    TooLarge(usize),
    #[error("the input message is not a valid event: {0}")]
    Malformed(String),
    #[error("{0} is out of range")]
    OutOfRange(&'static str),
    #[error("unknown key code {0:?}")]
    UnknownCode(String),
    #[error("typed text must be 1 to {MAX_TEXT} characters without control characters")]
    BadText,
    #[error("too many input events; slow down")]
    RateLimited,
}

/// A physical key, named by a browser's `KeyboardEvent.code` (the key's place on the
/// keyboard, not the character it types). Browser codes stay browser codes until the
/// platform's injector asks for its own number: an X keycode or a Windows scan code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The X keycode for the standard evdev keymap X servers use (Xvfb included), 0: none.
    xkb: u16,
    /// The Windows set-1 scan code, 0xE0xx for extended keys, 0: none.
    win: u16,
}

impl Key {
    /// The key of a browser `KeyboardEvent.code`; `None` for codes with no key on either
    /// platform ("Fn", "Unidentified", anything unknown).
    pub fn from_code(code: &str) -> Option<Key> {
        let map = KeyMap::from(KeyMappingCode::from_str(code).ok()?);
        let xkb = if (8..=255).contains(&map.xkb) {
            map.xkb
        } else {
            0
        };
        let win = map.win;
        (xkb != 0 || win != 0).then_some(Key { xkb, win })
    }

    /// The X keycode (8–255), if X has this key.
    pub fn x11_keycode(self) -> Option<u8> {
        u8::try_from(self.xkb).ok().filter(|k| *k >= 8)
    }

    /// Whether this is Alt, Control or the Windows/Super key: with one of them held, a key
    /// can switch windows (Alt+Tab, Super) and so move the keyboard focus.
    pub fn is_modifier(self) -> bool {
        static MODIFIERS: std::sync::OnceLock<Vec<Key>> = std::sync::OnceLock::new();
        MODIFIERS
            .get_or_init(|| {
                [
                    "AltLeft",
                    "AltRight",
                    "ControlLeft",
                    "ControlRight",
                    "MetaLeft",
                    "MetaRight",
                ]
                .iter()
                .filter_map(|code| Key::from_code(code))
                .collect()
            })
            .contains(&self)
    }

    /// The Windows scan code (0xE0xx for extended keys), if Windows has this key.
    pub fn windows_scan_code(self) -> Option<u16> {
        (self.win != 0).then_some(self.win)
    }
}

/// The X keycode of a browser `KeyboardEvent.code`, for the standard evdev keymap that
/// X servers use (Xvfb included). `None` for codes with no X key.
pub fn keycode_for(code: &str) -> Option<u8> {
    Key::from_code(code)?.x11_keycode()
}

/// Checks one controller's events. A token bucket holds the rate.
#[derive(Debug)]
pub struct Validator {
    tokens: f64,
    last: Option<Instant>,
}

impl Default for Validator {
    fn default() -> Self {
        Self::new()
    }
}

impl Validator {
    pub fn new() -> Self {
        Self {
            tokens: RATE_BURST,
            last: None,
        }
    }

    /// Parse and check one message from the input channel.
    pub fn check(&mut self, raw: &[u8], now: Instant) -> Result<Action, Rejected> {
        if raw.len() > MAX_MESSAGE {
            return Err(Rejected::TooLarge(raw.len()));
        }
        let event: InputEvent =
            serde_json::from_slice(raw).map_err(|e| Rejected::Malformed(e.to_string()))?;
        let action = Self::action(event)?;
        if !action.is_release() && !self.take_token(now) {
            return Err(Rejected::RateLimited);
        }
        Ok(action)
    }

    fn take_token(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * RATE_PER_SECOND).min(RATE_BURST);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn action(event: InputEvent) -> Result<Action, Rejected> {
        Ok(match event {
            InputEvent::Move { x, y } => {
                point(x, y)?;
                Action::Move { x, y }
            }
            InputEvent::Button { button, down, x, y } => {
                point(x, y)?;
                Action::Button { button, down, x, y }
            }
            InputEvent::Wheel { x, y, dx, dy } => {
                point(x, y)?;
                // unsigned_abs: i32::MIN has no positive twin (abs() would overflow).
                if dx.unsigned_abs() > MAX_WHEEL.unsigned_abs()
                    || dy.unsigned_abs() > MAX_WHEEL.unsigned_abs()
                {
                    return Err(Rejected::OutOfRange("the wheel turn"));
                }
                Action::Wheel { x, y, dx, dy }
            }
            InputEvent::Key { code, down } => match Key::from_code(&code) {
                Some(key) => Action::Key { key, down },
                None => return Err(Rejected::UnknownCode(code)),
            },
            InputEvent::Text { text } => {
                let n = text.chars().count();
                if n == 0 || n > MAX_TEXT || text.chars().any(char::is_control) {
                    return Err(Rejected::BadText);
                }
                Action::Text(text)
            }
        })
    }
}

fn point(x: f64, y: f64) -> Result<(), Rejected> {
    let inside = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
    if !inside(x) {
        return Err(Rejected::OutOfRange("the pointer's x"));
    }
    if !inside(y) {
        return Err(Rejected::OutOfRange("the pointer's y"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn check(json: &str) -> Result<Action, Rejected> {
        Validator::new().check(json.as_bytes(), Instant::now())
    }

    #[test]
    fn browser_codes_map_to_the_evdev_keycodes_of_x() {
        assert_eq!(keycode_for("KeyA"), Some(38));
        assert_eq!(keycode_for("ShiftLeft"), Some(50));
        assert_eq!(keycode_for("Digit1"), Some(10));
        assert_eq!(keycode_for("Enter"), Some(36));
        assert_eq!(keycode_for("Space"), Some(65));
        assert_eq!(keycode_for("NoSuchKey"), None);
        assert_eq!(keycode_for(""), None);
    }

    #[test]
    fn browser_codes_map_to_the_scan_codes_of_windows() {
        let scan = |code: &str| Key::from_code(code).and_then(Key::windows_scan_code);
        assert_eq!(scan("KeyA"), Some(0x1e));
        assert_eq!(scan("ShiftLeft"), Some(0x2a));
        assert_eq!(scan("Enter"), Some(0x1c));
        // Extended keys carry the 0xE0 prefix.
        assert_eq!(scan("ArrowLeft"), Some(0xe04b));
        assert_eq!(scan("ControlRight"), Some(0xe01d));
        assert_eq!(Key::from_code("Unidentified"), None);
    }

    #[test]
    fn each_kind_of_event_is_understood() {
        assert_eq!(
            check(r#"{"type":"move","x":0.25,"y":1}"#),
            Ok(Action::Move { x: 0.25, y: 1.0 })
        );
        assert_eq!(
            check(r#"{"type":"button","button":"right","down":true,"x":0,"y":0.5}"#),
            Ok(Action::Button {
                button: MouseButton::Right,
                down: true,
                x: 0.0,
                y: 0.5
            })
        );
        assert_eq!(
            check(r#"{"type":"key","code":"KeyA","down":false}"#),
            Ok(Action::Key {
                key: Key::from_code("KeyA").expect("a key"),
                down: false
            })
        );
        assert_eq!(
            check(r#"{"type":"text","text":"é"}"#),
            Ok(Action::Text("é".into()))
        );
    }

    #[test]
    fn bad_events_get_a_reason() {
        assert_eq!(
            check(r#"{"type":"move","x":1.5,"y":0}"#),
            Err(Rejected::OutOfRange("the pointer's x"))
        );
        assert_eq!(
            check(r#"{"type":"key","code":"Launch","down":true}"#),
            Err(Rejected::UnknownCode("Launch".into()))
        );
        assert_eq!(
            check(r#"{"type":"text","text":"a\u0007"}"#),
            Err(Rejected::BadText)
        );
        assert_eq!(
            check(r#"{"type":"wheel","x":0,"y":0,"dx":0,"dy":21}"#),
            Err(Rejected::OutOfRange("the wheel turn"))
        );
        assert!(matches!(
            check(r#"{"type":"teleport"}"#),
            Err(Rejected::Malformed(_))
        ));
        assert!(matches!(check("not json"), Err(Rejected::Malformed(_))));
        let huge = format!(r#"{{"type":"text","text":"{}"}}"#, "x".repeat(MAX_MESSAGE));
        assert!(matches!(check(&huge), Err(Rejected::TooLarge(_))));
    }

    #[test]
    fn a_burst_is_cut_off_but_releases_always_pass() {
        let mut v = Validator::new();
        let now = Instant::now();
        let press = br#"{"type":"key","code":"KeyA","down":true}"#;
        let release = br#"{"type":"key","code":"KeyA","down":false}"#;
        let passed = (0..1000).filter(|_| v.check(press, now).is_ok()).count();
        assert_eq!(passed, RATE_BURST as usize);
        assert_eq!(v.check(press, now), Err(Rejected::RateLimited));
        assert!(v.check(release, now).is_ok(), "a release is never refused");
        // After a quarter second the bucket has refilled by 100 events.
        let later = now + Duration::from_millis(250);
        let passed = (0..1000).filter(|_| v.check(press, later).is_ok()).count();
        assert_eq!(passed, (RATE_PER_SECOND / 4.0) as usize);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_bytes_are_rejected_or_accepted_never_a_panic(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Validator::new().check(&raw, Instant::now());
        }

        #[test]
        fn a_pointer_is_accepted_exactly_inside_the_surface(x in prop_oneof![any::<f64>(), -0.5f64..1.5], y in prop_oneof![any::<f64>(), -0.5f64..1.5]) {
            let event = InputEvent::Move { x, y };
            let raw = serde_json::to_vec(&event);
            // JSON has no NaN or infinity: such values cannot even be sent.
            prop_assume!(raw.is_ok() && x.is_finite() && y.is_finite());
            let raw = raw.unwrap_or_default();
            let got = Validator::new().check(&raw, Instant::now());
            let inside = (0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y);
            prop_assert_eq!(got.is_ok(), inside, "({}, {}) gave {:?}", x, y, got);
            if let (true, Ok(InputEvent::Move { x, y })) = (inside, serde_json::from_slice::<InputEvent>(&raw)) {
                // The point as JSON carries it (the last bit of a float may differ).
                prop_assert_eq!(got, Ok(Action::Move { x, y }));
            }
        }

        #[test]
        fn a_key_code_is_accepted_exactly_when_it_names_a_key(code in prop_oneof![
            "[A-Za-z0-9]{0,12}",
            proptest::sample::select(vec!["KeyQ", "Digit0", "F12", "ArrowLeft", "Backquote", "IntlBackslash", "ControlRight", "Fn", "Unidentified"]).prop_map(String::from),
        ], down in any::<bool>()) {
            let raw = serde_json::to_vec(&InputEvent::Key { code: code.clone(), down }).unwrap_or_default();
            let got = Validator::new().check(&raw, Instant::now());
            match Key::from_code(&code) {
                Some(key) => prop_assert_eq!(got, Ok(Action::Key { key, down })),
                None => prop_assert_eq!(got, Err(Rejected::UnknownCode(code))),
            }
        }

        #[test]
        fn text_is_accepted_exactly_when_printable_and_short(text in "\\PC{0,300}|[\\x00-\\x1f]{1,3}") {
            let raw = serde_json::to_vec(&InputEvent::Text { text: text.clone() }).unwrap_or_default();
            let got = Validator::new().check(&raw, Instant::now());
            let n = text.chars().count();
            let fine = n > 0 && n <= MAX_TEXT && !text.chars().any(char::is_control) && raw.len() <= MAX_MESSAGE;
            prop_assert_eq!(got.is_ok(), fine, "{:?} gave {:?}", text, got);
        }
    }
}
