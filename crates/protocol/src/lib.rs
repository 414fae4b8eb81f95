//! Tandem's wire protocol: every message that crosses a wire between the signaling server,
//! the web console and the agent. JSON text frames over one WebSocket per client, tagged
//! by `type`. No I/O here: types, their JSON form, and the checks every reader applies.
//!
//! `docs/protocol.md` describes the protocol for people writing their own client; the
//! golden fixtures in `fixtures/` are the examples it cites and the tests round-trip.

mod client;
mod error;
mod ids;
pub mod launch;
mod server;
mod types;

pub use client::ClientMessage;
pub use error::{DecodeError, ErrorCode};
pub use ids::{InvalidSessionNumber, ParticipantId, SessionNumber, ShareId, Timestamp};
pub use server::{ServerMessage, SessionSnapshot};
pub use types::{
    Admission, CallInfo, CallMember, ClientKind, ControlChange, ControlInfo, EndReason,
    FileDirection, FileOutcome, IceCandidate, IceServer, InviteState, Invitee, LeaveReason,
    ParticipantInfo, RecordingInfo, Role, ShareInfo, ShareSource, ShareStopReason, StreamRef,
    TransferTarget, WaitingTransfer, WebacdAgent,
};

use serde::de::DeserializeOwned;

/// The protocol version this build speaks. Bumped on any change a peer of the previous
/// version could misread; additions of optional fields and new messages do not bump it.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest text frame either side accepts (64 KiB). Larger frames close the connection.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The longest personal message of a WebACD transfer, in characters (R10).
pub const WEBACD_MESSAGE_MAX_CHARS: usize = 345;

/// The longest chat line, in characters.
pub const CHAT_MAX_CHARS: usize = 2000;

/// The longest display name, in characters.
pub const NAME_MAX_CHARS: usize = 64;

/// The shortest `join_key` the server takes: 22 characters of base64url carry 128 bits.
pub const JOIN_KEY_MIN_CHARS: usize = 22;

/// The longest `join_key` the server takes.
pub const JOIN_KEY_MAX_CHARS: usize = 64;

/// Whether `key` can be a join's `join_key`: a secret the client chose at random for this
/// one join, 22 to 64 characters of base64url (`A`–`Z`, `a`–`z`, `0`–`9`, `-`, `_`). A
/// join sent again with the same key after its connection was lost, before any answer,
/// comes back to the place the first one made (as a `resume` would) instead of joining
/// twice. The key works until the place is resumed with a resume token.
pub fn check_join_key(key: &str) -> Result<(), String> {
    let chars = key.chars().count();
    if !(JOIN_KEY_MIN_CHARS..=JOIN_KEY_MAX_CHARS).contains(&chars) {
        return Err(format!(
            "join_key must be {JOIN_KEY_MIN_CHARS} to {JOIN_KEY_MAX_CHARS} characters, not {chars}"
        ));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("join_key may hold only A-Z, a-z, 0-9, - and _".to_owned());
    }
    Ok(())
}

/// Read a client's message, with an error value that says what was wrong.
pub fn decode_client(text: &str) -> Result<ClientMessage, DecodeError> {
    decode(text)
}

/// Read a server's message, with an error value that says what was wrong.
pub fn decode_server(text: &str) -> Result<ServerMessage, DecodeError> {
    decode(text)
}

fn decode<T: DeserializeOwned>(text: &str) -> Result<T, DecodeError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError {
            code: ErrorCode::MessageTooLarge,
            message: format!(
                "message of {} bytes is larger than the limit of {MAX_MESSAGE_BYTES} bytes",
                text.len()
            ),
        });
    }
    serde_json::from_str(text).map_err(|e| classify(text, e))
}

/// Turn serde's error into a code and a sentence naming the problem.
fn classify(text: &str, error: serde_json::Error) -> DecodeError {
    let detail = error.to_string();
    // serde says "unknown variant `x`" for any enum; it is an unknown message type only
    // when `x` is the message's own `type` (not, say, an unknown `client` in a hello).
    let unknown = detail
        .strip_prefix("unknown variant `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(variant, _)| variant.to_owned());
    let kind = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned));
    if unknown.is_some() && unknown == kind {
        let kind = kind.unwrap_or_default();
        return DecodeError {
            code: ErrorCode::UnknownType,
            message: format!("unknown message type {:?}", excerpt(&kind, 40)),
        };
    }
    let message = match error.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            format!("not valid JSON: {}", excerpt(&detail, 160))
        }
        _ if detail.starts_with("missing field `type`") => {
            "a message must be a JSON object with a \"type\" field".to_owned()
        }
        _ => format!("malformed message: {}", excerpt(&detail, 160)),
    };
    DecodeError {
        code: ErrorCode::BadMessage,
        message,
    }
}

/// At most `max` bytes (cut on a character boundary) of a text that came from a peer,
/// marked when cut: an error reply must never echo (and so amplify) what a client sent.
pub fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// Encode any message as the JSON text sent on the wire.
pub fn encode<T: serde::Serialize>(message: &T) -> String {
    // Serializing these types cannot fail: every map key is a string and no
    // Serialize impl here returns an error.
    serde_json::to_string(message).unwrap_or_else(|e| {
        format!(r#"{{"type":"error","code":"internal","message":"encode failed: {e}"}}"#)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_type_is_named_in_the_error() {
        let err = decode_client(r#"{"type":"fly_to_the_moon"}"#).expect_err("unknown");
        assert_eq!(err.code, ErrorCode::UnknownType);
        assert!(err.message.contains("fly_to_the_moon"), "{}", err.message);
    }

    #[test]
    fn errors_echo_only_a_short_excerpt_of_the_input() {
        let long = "x".repeat(60_000);
        for text in [
            format!(r#"{{"type":"{long}"}}"#),
            format!(r#"{{"type":"chat","text":{long}}}"#),
            format!(r#"{{"type":"admit","participant":"{long}"}}"#),
        ] {
            let err = decode_client(&text).expect_err("refused");
            assert!(err.message.len() < 300, "{} bytes", err.message.len());
        }
        assert_eq!(excerpt("åååå", 5), "åå…", "cut by bytes, on a character");
        assert_eq!(excerpt("ab", 2), "ab");
    }

    #[test]
    fn an_unknown_value_of_another_field_is_a_bad_message_not_an_unknown_type() {
        let err = decode_client(r#"{"type":"hello","protocol_version":1,"client":"robot"}"#)
            .expect_err("unknown client");
        assert_eq!(err.code, ErrorCode::BadMessage, "{}", err.message);
        assert!(err.message.contains("robot"), "{}", err.message);
    }

    #[test]
    fn malformed_json_is_bad_message() {
        for text in ["", "{", "[1,2]", "null", "\"hello\"", "{\"type\":"] {
            let err = decode_client(text).expect_err(text);
            assert_eq!(err.code, ErrorCode::BadMessage, "{text}: {}", err.message);
            assert!(!err.message.is_empty());
        }
    }

    #[test]
    fn missing_type_says_so() {
        let err = decode_client(r#"{"text":"hi"}"#).expect_err("no type");
        assert_eq!(err.code, ErrorCode::BadMessage);
        assert!(err.message.contains("\"type\""), "{}", err.message);
    }

    #[test]
    fn wrong_field_type_is_bad_message_naming_the_field() {
        let err = decode_client(r#"{"type":"admit","participant":"seven"}"#).expect_err("bad");
        assert_eq!(err.code, ErrorCode::BadMessage);
        assert!(err.message.contains("malformed"), "{}", err.message);
    }

    #[test]
    fn bad_session_number_is_explained() {
        let err = decode_client(r#"{"type":"join_by_number","number":"12","name":"Ann"}"#)
            .expect_err("short number");
        assert_eq!(err.code, ErrorCode::BadMessage);
        assert!(err.message.contains("nine digits"), "{}", err.message);
    }

    #[test]
    fn oversized_message_is_refused_before_parsing() {
        let text = format!(
            r#"{{"type":"chat","text":"{}"}}"#,
            "a".repeat(MAX_MESSAGE_BYTES)
        );
        let err = decode_client(&text).expect_err("too large");
        assert_eq!(err.code, ErrorCode::MessageTooLarge);
    }

    #[test]
    fn unknown_fields_are_ignored_for_forward_compatibility() {
        let msg = decode_client(r#"{"type":"chat","text":"hi","colour":"red"}"#).expect("ok");
        assert_eq!(msg, ClientMessage::Chat { text: "hi".into() });
    }

    #[test]
    fn the_calls_sound_for_the_recording_is_the_stream_recording() {
        let text = r#"{"type":"offer","to":9,"stream":"recording","sdp":"v=0"}"#;
        let decoded = decode_client(text).expect("decodes");
        assert_eq!(
            decoded,
            ClientMessage::Offer {
                to: ParticipantId(9),
                stream: StreamRef::Recording,
                sdp: "v=0".into(),
            }
        );
        assert_eq!(
            serde_json::to_value(StreamRef::Recording).expect("json"),
            serde_json::json!("recording")
        );
    }

    #[test]
    fn kind_matches_the_wire_tag() {
        let msg = ClientMessage::SetActiveCustomer {
            participant: ParticipantId(4),
        };
        let value: serde_json::Value = serde_json::from_str(&encode(&msg)).expect("json");
        assert_eq!(value["type"], msg.kind());
    }
}
