//! What the console sends on the input data channel: one JSON object per message,
//! tagged by `type`. Coordinates are normalised to the shared surface: (0, 0) is its
//! top-left pixel, (1, 1) its bottom-right, whatever size the viewer shows it at.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputEvent {
    /// The pointer moved to (x, y).
    Move { x: f64, y: f64 },
    /// A button went down or up at (x, y).
    Button {
        button: MouseButton,
        down: bool,
        x: f64,
        y: f64,
    },
    /// The wheel turned at (x, y), in notches: `dy` > 0 scrolls down, `dx` > 0 right.
    Wheel { x: f64, y: f64, dx: i32, dy: i32 },
    /// A key went down or up, named by the browser's `KeyboardEvent.code` (the physical
    /// key, such as `KeyA` or `ShiftLeft`), so the customer's layout decides the character.
    Key { code: String, down: bool },
    /// Characters with no physical key on the rep's side (`KeyboardEvent.code` empty),
    /// such as those composed by an input method. Typed as they are.
    Text { text: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MouseButton {
    Left,
    Middle,
    Right,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The golden fixtures (also checked against the console's builders in Node) are
    /// exactly what this crate reads and writes.
    #[test]
    fn every_fixture_round_trips() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("fixtures") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("readable");
            let event: InputEvent =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let kind = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let json = serde_json::to_value(&event).expect("serialises");
            assert_eq!(json["type"], kind, "{}", path.display());
            let original: serde_json::Value = serde_json::from_str(&text).expect("json");
            assert_eq!(json, original, "{}", path.display());
            seen += 1;
        }
        assert_eq!(seen, 5, "one fixture per kind of event");
    }
}
