//! The launch trailer: what a downloaded agent needs to attach by itself (the server's
//! address and the customer's one-time agent token), appended by the server to the end
//! of the agent binary it serves, and read back by the agent from its own file. Windows
//! PE and Linux ELF loaders ignore bytes after the image, so the binary runs unchanged.
//!
//! The layout, at the very end of the file:
//!
//! ```text
//! … the binary … | payload (JSON, at most 4 KiB) | payload length (u32 LE) | "TANDEM-LAUNCH-v1"
//! ```
//!
//! One format, one module: the server writes with [`encode`], the agent reads with
//! [`read_from_file`]. Besides [`read_from_file`] (a seek and one bounded read) this is
//! pure code; nothing here panics on any input.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::SessionNumber;

/// The last 16 bytes of a binary that carries a trailer. The version is part of it: a
/// future layout gets a new magic, and an agent that does not know it sees no trailer.
pub const MAGIC: [u8; 16] = *b"TANDEM-LAUNCH-v1";

/// The largest payload a trailer may carry. Real ones are about 200 bytes.
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024;

/// The length field and the magic after the payload.
const FOOTER_BYTES: usize = 4 + MAGIC.len();

/// The most a reader needs from the end of a file to find and read a trailer.
pub const MAX_TRAILER_BYTES: usize = MAX_PAYLOAD_BYTES + FOOTER_BYTES;

/// The longest server address and token a trailer may hold.
const MAX_SERVER_CHARS: usize = 1024;
const MAX_TOKEN_CHARS: usize = 256;

/// What the agent needs to attach to its customer without being told on a command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    /// The server's base URL as the customer reached it: `https://support.example.com`
    /// (no trailing slash; the agent adds `/ws`).
    pub server: String,
    /// The one-time agent token (`agt_…`) for `attach_agent`.
    pub token: String,
    /// The session the token belongs to, for the agent to say which one it joins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionNumber>,
}

/// Why a trailer that is there (its magic ends the file) cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("the launch details at the end of this file are cut short ({have} of {need} bytes)")]
    Truncated { have: usize, need: usize },
    #[error(
        "the launch details at the end of this file claim {len} bytes, more than the \
         {MAX_PAYLOAD_BYTES} allowed"
    )]
    TooLarge { len: u64 },
    #[error("the launch details at the end of this file are not readable: {0}")]
    Payload(String),
    #[error("the launch details at the end of this file are not valid: {0}")]
    Invalid(&'static str),
    #[error("could not read the launch details: {0}")]
    Io(#[from] std::io::Error),
}

/// The trailer to append to an agent binary: payload, its length, the magic.
/// A [`Launch`] that [`check`] refuses is the caller's bug; it is encoded anyway (and the
/// reader will refuse it), so the server never fails a download on it.
pub fn encode(launch: &Launch) -> Vec<u8> {
    // Serializing two strings and a number cannot fail.
    let payload = serde_json::to_vec(launch).unwrap_or_default();
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(payload.len() + FOOTER_BYTES);
    out.extend_from_slice(&payload);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&MAGIC);
    out
}

/// Read the trailer from the end of `tail` (the last bytes of a file; at most
/// [`MAX_TRAILER_BYTES`] are needed). `Ok(None)`: the file ends without the magic, so it
/// carries no trailer (a plain download). An error: the magic is there but the rest is
/// cut short, oversized or malformed.
pub fn decode_tail(tail: &[u8]) -> Result<Option<Launch>, LaunchError> {
    if !tail.ends_with(&MAGIC) {
        return Ok(None);
    }
    let before_magic = tail.len() - MAGIC.len();
    let Some(len_at) = before_magic.checked_sub(4) else {
        return Err(LaunchError::Truncated {
            have: tail.len(),
            need: FOOTER_BYTES,
        });
    };
    let mut len = [0u8; 4];
    len.copy_from_slice(&tail[len_at..before_magic]);
    let len = u32::from_le_bytes(len);
    let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
    if len_usize > MAX_PAYLOAD_BYTES {
        return Err(LaunchError::TooLarge { len: len.into() });
    }
    let Some(start) = len_at.checked_sub(len_usize) else {
        return Err(LaunchError::Truncated {
            have: tail.len(),
            need: len_usize + FOOTER_BYTES,
        });
    };
    let launch: Launch = serde_json::from_slice(&tail[start..len_at])
        .map_err(|e| LaunchError::Payload(crate::excerpt(&e.to_string(), 160)))?;
    check(&launch)?;
    Ok(Some(launch))
}

/// What every reader checks before it connects anywhere: an http(s) URL without spaces
/// or control characters, and an agent token.
pub fn check(launch: &Launch) -> Result<(), LaunchError> {
    let server = &launch.server;
    let scheme_ok = ["https://", "http://"]
        .iter()
        .any(|s| server.strip_prefix(s).is_some_and(|host| !host.is_empty()));
    if !scheme_ok {
        return Err(LaunchError::Invalid(
            "the server is not an http:// or https:// address",
        ));
    }
    if server.chars().count() > MAX_SERVER_CHARS
        || server.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(LaunchError::Invalid("the server address is malformed"));
    }
    let token = &launch.token;
    let token_ok = token.starts_with("agt_")
        && token.len() <= MAX_TOKEN_CHARS
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !token_ok {
        return Err(LaunchError::Invalid("the agent token is malformed"));
    }
    Ok(())
}

/// The trailer of the file at `path`, reading only its last [`MAX_TRAILER_BYTES`].
pub fn read_from_file(path: &Path) -> Result<Option<Launch>, LaunchError> {
    let mut file = std::fs::File::open(path)?;
    read_from(&mut file)
}

/// The trailer at the end of anything seekable, reading only its last bytes.
pub fn read_from(reader: &mut (impl Read + Seek)) -> Result<Option<Launch>, LaunchError> {
    let end = reader.seek(SeekFrom::End(0))?;
    let want = end.min(MAX_TRAILER_BYTES as u64);
    reader.seek(SeekFrom::Start(end - want))?;
    let mut tail = Vec::with_capacity(MAX_TRAILER_BYTES);
    reader.take(want).read_to_end(&mut tail)?;
    decode_tail(&tail)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use proptest::prelude::*;

    use super::*;

    fn launch() -> Launch {
        Launch {
            server: "https://support.example.com".into(),
            token: "agt_Zm9vYmFyYmF6cXV4LV9hYmNkZWZnaGlqa2xtbm9w".into(),
            session: SessionNumber::new(123_456_789),
        }
    }

    /// A binary-looking prefix that ends in nothing special.
    fn binary() -> Vec<u8> {
        let mut bytes = b"\x7fELF".to_vec();
        bytes.extend((0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
        bytes
    }

    #[test]
    fn a_trailer_appended_to_a_binary_reads_back() {
        let file = [binary(), encode(&launch())].concat();
        assert_eq!(decode_tail(&file).expect("reads"), Some(launch()));
        let tail = &file[file.len() - MAX_TRAILER_BYTES..];
        assert_eq!(decode_tail(tail).expect("reads"), Some(launch()));
        let read = read_from(&mut Cursor::new(&file)).expect("reads");
        assert_eq!(read, Some(launch()));
    }

    #[test]
    fn the_layout_is_json_then_length_then_magic() {
        let trailer = encode(&launch());
        let (rest, magic) = trailer.split_at(trailer.len() - 16);
        assert_eq!(magic, b"TANDEM-LAUNCH-v1");
        let (json, len) = rest.split_at(rest.len() - 4);
        assert_eq!(
            u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize,
            json.len()
        );
        let value: serde_json::Value = serde_json::from_slice(json).expect("json");
        assert_eq!(value["server"], "https://support.example.com");
        assert_eq!(value["session"], "123456789");
        let without = Launch {
            session: None,
            ..launch()
        };
        let read = decode_tail(&encode(&without)).expect("reads");
        assert_eq!(read, Some(without));
    }

    #[test]
    fn a_plain_binary_has_no_trailer() {
        assert_eq!(decode_tail(&binary()).expect("no error"), None);
        assert_eq!(decode_tail(&[]).expect("no error"), None);
        assert_eq!(decode_tail(b"TANDEM-LAUNCH-v").expect("no error"), None);
        let read = read_from(&mut Cursor::new(Vec::<u8>::new())).expect("empty file");
        assert_eq!(read, None);
        // A later layout's magic is no trailer to this reader, not an error.
        let mut other = encode(&launch());
        let last = other.len() - 1;
        other[last] = b'2';
        assert_eq!(decode_tail(&other).expect("no error"), None);
    }

    #[test]
    fn the_magic_alone_or_with_a_cut_length_is_truncated() {
        let err = decode_tail(&MAGIC).expect_err("no length");
        assert!(matches!(err, LaunchError::Truncated { .. }), "{err}");
        let err = decode_tail(&[&[1, 0][..], &MAGIC].concat()).expect_err("cut length");
        assert!(matches!(err, LaunchError::Truncated { .. }), "{err}");
    }

    #[test]
    fn a_cut_payload_is_truncated() {
        let trailer = encode(&launch());
        let err = decode_tail(&trailer[10..]).expect_err("cut");
        assert!(matches!(err, LaunchError::Truncated { .. }), "{err}");
        assert!(err.to_string().contains("cut short"), "{err}");
    }

    #[test]
    fn an_oversized_length_is_refused_before_reading() {
        for len in [MAX_PAYLOAD_BYTES as u32 + 1, u32::MAX] {
            let tail = [&len.to_le_bytes()[..], &MAGIC].concat();
            let err = decode_tail(&tail).expect_err("too large");
            assert!(matches!(err, LaunchError::TooLarge { .. }), "{err}");
        }
    }

    #[test]
    fn a_malformed_payload_says_so() {
        let payload = b"{\"server\":\"https://x\"";
        let tail = [&payload[..], &(payload.len() as u32).to_le_bytes(), &MAGIC].concat();
        let err = decode_tail(&tail).expect_err("bad json");
        assert!(matches!(err, LaunchError::Payload(_)), "{err}");
    }

    #[test]
    fn a_trailer_naming_no_web_server_or_a_strange_token_is_refused() {
        for bad in [
            Launch {
                server: "file:///etc/passwd".into(),
                ..launch()
            },
            Launch {
                server: "https://".into(),
                ..launch()
            },
            Launch {
                server: "https://evil.example/\n--token".into(),
                ..launch()
            },
            Launch {
                token: "not-a-token".into(),
                ..launch()
            },
            Launch {
                token: "agt_a b".into(),
                ..launch()
            },
        ] {
            let err = decode_tail(&encode(&bad)).expect_err("refused");
            assert!(matches!(err, LaunchError::Invalid(_)), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_file_that_is_not_there_is_an_io_error() {
        let err = read_from_file(Path::new("/nonexistent/tandem-agent")).expect_err("missing");
        assert!(matches!(err, LaunchError::Io(_)), "{err}");
    }

    proptest! {
        /// Any bytes, with or without the magic at the end: an answer, never a panic.
        #[test]
        fn any_tail_is_answered_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..6000),
            magic in any::<bool>(),
        ) {
            let mut tail = bytes;
            if magic {
                tail.extend_from_slice(&MAGIC);
            }
            let _ = decode_tail(&tail);
            let _ = read_from(&mut Cursor::new(&tail));
        }

        /// Any launch the checks accept round-trips, and any cut of it is refused or
        /// absent, never misread.
        #[test]
        fn valid_launches_round_trip_and_cuts_never_misread(
            host in "[a-z0-9.-]{1,40}",
            token in "[A-Za-z0-9_-]{1,60}",
            number in proptest::option::of(0u32..=999_999_999),
            cut in 1usize..200,
        ) {
            let launch = Launch {
                server: format!("https://{host}"),
                token: format!("agt_{token}"),
                session: number.and_then(SessionNumber::new),
            };
            let trailer = encode(&launch);
            prop_assert_eq!(decode_tail(&trailer).ok().flatten(), Some(launch.clone()));
            let cut = cut.min(trailer.len());
            // Cut from the front: the length no longer fits, so it is refused.
            prop_assert!(!matches!(decode_tail(&trailer[cut..]), Ok(Some(_))));
            // Cut from the end: the magic is gone or damaged, so nothing is read.
            let shorter = &trailer[..trailer.len() - cut.min(16)];
            prop_assert!(decode_tail(shorter).ok().flatten().is_none());
        }
    }
}
