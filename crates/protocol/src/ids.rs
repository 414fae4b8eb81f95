//! Identifiers that appear on the wire: session numbers, participants, shares, time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The number a customer types to find a session (R1): nine digits, shown `123 456 789`.
///
/// On the wire it is a string of nine digits (`"123456789"`); parsing also accepts the
/// grouped form with spaces or dashes, because that is how people copy it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionNumber(u32);

impl SessionNumber {
    /// The largest nine-digit value.
    pub const MAX: u32 = 999_999_999;

    /// A session number from its numeric value, if it has at most nine digits.
    pub fn new(value: u32) -> Option<Self> {
        (value <= Self::MAX).then_some(Self(value))
    }

    pub fn value(self) -> u32 {
        self.0
    }

    /// The nine digits without grouping, as sent on the wire and used in URLs.
    pub fn digits(self) -> String {
        format!("{:09}", self.0)
    }
}

impl fmt::Display for SessionNumber {
    /// The grouped form people read: `123 456 789`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.digits();
        write!(f, "{} {} {}", &d[0..3], &d[3..6], &d[6..9])
    }
}

impl fmt::Debug for SessionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionNumber({})", self)
    }
}

/// Why a text is not a session number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a session number has exactly nine digits (like 123 456 789); got {0:?}")]
pub struct InvalidSessionNumber(pub String);

impl FromStr for SessionNumber {
    type Err = InvalidSessionNumber;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidSessionNumber(s.chars().take(40).collect());
        let mut value: u32 = 0;
        let mut digits = 0;
        for c in s.trim().chars() {
            match c {
                '0'..='9' => {
                    digits += 1;
                    if digits > 9 {
                        return Err(invalid());
                    }
                    value = value * 10 + (c as u32 - '0' as u32);
                }
                ' ' | '-' => {}
                _ => return Err(invalid()),
            }
        }
        if digits == 9 {
            Ok(Self(value))
        } else {
            Err(invalid())
        }
    }
}

impl Serialize for SessionNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.digits())
    }
}

impl<'de> Deserialize<'de> for SessionNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One endpoint in a session: a rep's console, a customer's page, or a customer's agent.
/// Unique within the server for the life of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ParticipantId(pub u64);

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One sharing activity (a desktop or a window) within a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShareId(pub u64);

impl fmt::Display for ShareId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "share {}", self.0)
    }
}

/// Milliseconds since the Unix epoch, as the server's clock saw them.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn plus_millis(self, millis: u64) -> Self {
        Self(self.0.saturating_add(millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_number_is_shown_in_groups_of_three() {
        let n = SessionNumber::new(12_345_678).expect("nine digits");
        assert_eq!(n.to_string(), "012 345 678");
        assert_eq!(n.digits(), "012345678");
    }

    #[test]
    fn session_number_parses_grouped_and_plain_forms() {
        for text in ["123456789", "123 456 789", " 123-456-789 "] {
            let n: SessionNumber = text.parse().expect(text);
            assert_eq!(n.value(), 123_456_789, "{text}");
        }
    }

    #[test]
    fn session_number_rejects_wrong_lengths_and_letters() {
        for text in [
            "",
            "12345678",
            "1234567890",
            "12345678a",
            "１２３４５６７８９",
            "99999999999999999999",
        ] {
            let err = text.parse::<SessionNumber>().expect_err(text);
            assert!(err.to_string().contains("nine digits"), "{err}");
        }
    }

    #[test]
    fn session_number_above_nine_digits_does_not_exist() {
        assert!(SessionNumber::new(1_000_000_000).is_none());
        assert!(SessionNumber::new(SessionNumber::MAX).is_some());
    }
}
