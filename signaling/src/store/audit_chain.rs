//! The audit log's hash chain (C3): how a record's hash is computed, and the walk that
//! checks a whole log. Pure functions over rows; the SQLite store reads and writes them.
//!
//! Each record's `hash` is SHA-256 over a length-prefixed encoding of every stored column
//! (id, session, time, actor, action, details) and `prev_hash`, the hash of the record
//! before it ([`GENESIS`] for the first). Because the id is hashed too, a record moved to
//! another position no longer matches its hash.
//!
//! What the chain cannot show on its own: removing the newest records (the rest is still a
//! valid chain), or a log rewritten from some point on with freshly computed hashes (the hash
//! is not keyed). Both are caught by comparing the chain head with one noted down earlier,
//! which is why the admin page and `tandem-signaling audit verify` show it.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Versions the encoding below, and keeps these hashes apart from any other SHA-256 use.
const DOMAIN: &[u8] = b"tandem audit chain v1\n";

/// One audit record as stored, chain columns included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainRow {
    pub id: i64,
    pub session: String,
    pub at: i64,
    pub actor: Option<String>,
    pub action: String,
    /// The details, exactly as stored (JSON text).
    pub record: String,
    /// `None` until the record is sealed into the chain.
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

impl ChainRow {
    /// The hash this record must have when it follows a record whose hash is `prev_hash`.
    pub fn expected_hash(&self, prev_hash: &str) -> String {
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update(self.id.to_be_bytes());
        field(&mut h, &self.session);
        h.update(self.at.to_be_bytes());
        match &self.actor {
            None => h.update([0]),
            Some(actor) => {
                h.update([1]);
                field(&mut h, actor);
            }
        }
        field(&mut h, &self.action);
        field(&mut h, &self.record);
        field(&mut h, prev_hash);
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Fill in the chain columns for a record that follows `prev_hash`.
    pub fn seal(&mut self, prev_hash: &str) {
        self.hash = Some(self.expected_hash(prev_hash));
        self.prev_hash = Some(prev_hash.to_owned());
    }
}

/// A variable-length field: its length first, so that no two different records encode to
/// the same bytes (`"ab" + "c"` vs `"a" + "bc"`).
fn field(h: &mut Sha256, value: &str) {
    h.update(u64::try_from(value.len()).unwrap_or(u64::MAX).to_be_bytes());
    h.update(value.as_bytes());
}

/// The first thing wrong with a chain, naming the record where it shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChainFault {
    /// The record's content (or its stored hash) does not match its hash: it was edited, or
    /// another record's content was moved into its place.
    Changed { id: i64 },
    /// The record's `prev_hash` is not the hash of the record before it (`after`, or the start
    /// of the log): records in between were removed, the records were reordered, or the
    /// previous record was edited and re-hashed.
    Unlinked { id: i64, after: Option<i64> },
    /// The record has no chain columns although records before it do: it was written
    /// outside the server.
    Unsealed { id: i64 },
}

impl ChainFault {
    /// The record the fault shows at.
    pub fn id(&self) -> i64 {
        match self {
            Self::Changed { id } | Self::Unlinked { id, .. } | Self::Unsealed { id } => *id,
        }
    }
}

impl fmt::Display for ChainFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Changed { id } => write!(
                f,
                "record #{id} was changed: its content does not match its hash"
            ),
            Self::Unlinked { id, after: None } => write!(
                f,
                "record #{id} does not start the chain: records before it were removed, \
                 or the records were reordered"
            ),
            Self::Unlinked {
                id,
                after: Some(before),
            } if before.checked_add(1) == Some(id) => write!(
                f,
                "record #{id} does not follow record #{before}: the records were reordered, \
                 or record #{before} was changed and given a new hash"
            ),
            Self::Unlinked {
                id,
                after: Some(before),
            } => write!(
                f,
                "record #{id} does not follow record #{before}: records between them were \
                 removed, or the records were reordered"
            ),
            Self::Unsealed { id } => write!(
                f,
                "record #{id} is not in the chain: it was added outside the server"
            ),
        }
    }
}

/// The outcome of walking a whole audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainReport {
    /// Every record is where the chain says. `head` is the newest record's hash (`None` for
    /// an empty log): keep it elsewhere to notice later removal of the newest records.
    Intact { records: u64, head: Option<String> },
    /// `fault` is the first problem; `intact_before` records before it checked out.
    Tampered {
        fault: ChainFault,
        intact_before: u64,
    },
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        matches!(self, Self::Intact { .. })
    }
}

impl fmt::Display for ChainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Intact { records, head } => write!(
                f,
                "audit log intact: {records} records, chain head {}",
                head.as_deref().unwrap_or("(none: the log is empty)")
            ),
            Self::Tampered {
                fault,
                intact_before,
            } => write!(
                f,
                "audit log tampered: {fault} ({intact_before} records before it are intact)"
            ),
        }
    }
}

/// Checks records one at a time, in id order, so a large log need not be held in memory.
#[derive(Debug, Default)]
pub struct Verifier {
    /// The last good record's id and hash.
    last: Option<(i64, String)>,
    checked: u64,
    fault: Option<ChainFault>,
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Check the next record (ids ascending). Returns `false` once a fault is found: later
    /// records cannot change the report.
    pub fn push(&mut self, row: &ChainRow) -> bool {
        if self.fault.is_some() {
            return false;
        }
        let expected_prev = self
            .last
            .as_ref()
            .map_or(GENESIS, |(_, hash)| hash.as_str());
        let fault = match (&row.prev_hash, &row.hash) {
            (Some(prev), Some(hash)) => {
                if prev != expected_prev {
                    Some(ChainFault::Unlinked {
                        id: row.id,
                        after: self.last.as_ref().map(|(id, _)| *id),
                    })
                } else if *hash != row.expected_hash(prev) {
                    Some(ChainFault::Changed { id: row.id })
                } else {
                    None
                }
            }
            _ => Some(ChainFault::Unsealed { id: row.id }),
        };
        match fault {
            Some(fault) => {
                self.fault = Some(fault);
                false
            }
            None => {
                self.checked += 1;
                self.last = Some((row.id, row.hash.clone().unwrap_or_default()));
                true
            }
        }
    }

    pub fn report(self) -> ChainReport {
        match self.fault {
            Some(fault) => ChainReport::Tampered {
                fault,
                intact_before: self.checked,
            },
            None => ChainReport::Intact {
                records: self.checked,
                head: self.last.map(|(_, hash)| hash),
            },
        }
    }
}

/// Walk a whole log held in memory (ids ascending).
pub fn verify<'a>(rows: impl IntoIterator<Item = &'a ChainRow>) -> ChainReport {
    let mut verifier = Verifier::new();
    for row in rows {
        if !verifier.push(row) {
            break;
        }
    }
    verifier.report()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, action: &str) -> ChainRow {
        ChainRow {
            id,
            session: "123456789".into(),
            at: 1_700_000_000_000 + id,
            actor: (id % 2 == 0).then(|| format!("Rep {id} (rita)")),
            action: action.into(),
            record: format!(r#"{{"action":"{action}","n":{id}}}"#),
            prev_hash: None,
            hash: None,
        }
    }

    /// Five records, chained the way the store appends them.
    fn chain() -> Vec<ChainRow> {
        let mut prev = GENESIS.to_owned();
        ["started", "joined", "admitted", "chat", "ended"]
            .iter()
            .zip(1..)
            .map(|(action, id)| {
                let mut r = row(id, action);
                r.seal(&prev);
                prev = r.hash.clone().expect("sealed");
                r
            })
            .collect()
    }

    fn fault(rows: &[ChainRow]) -> ChainFault {
        match verify(rows) {
            ChainReport::Tampered { fault, .. } => fault,
            intact => panic!("tampering went unnoticed: {intact}"),
        }
    }

    #[test]
    fn an_untouched_chain_is_intact_and_names_its_head() {
        let rows = chain();
        let report = verify(&rows);
        assert_eq!(
            report,
            ChainReport::Intact {
                records: 5,
                head: rows[4].hash.clone()
            }
        );
        assert!(
            report
                .to_string()
                .contains(rows[4].hash.as_deref().expect("hash"))
        );
    }

    #[test]
    fn an_empty_log_is_intact_without_a_head() {
        assert_eq!(
            verify(&[]),
            ChainReport::Intact {
                records: 0,
                head: None
            }
        );
    }

    #[test]
    fn the_hash_is_hex_sha256_and_depends_on_every_column() {
        let base = row(7, "joined");
        let h = base.expected_hash(GENESIS);
        assert_eq!(h.len(), 64);
        assert!(
            h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let variants = [
            ChainRow {
                id: 8,
                ..base.clone()
            },
            ChainRow {
                session: "123456780".into(),
                ..base.clone()
            },
            ChainRow {
                at: base.at + 1,
                ..base.clone()
            },
            ChainRow {
                actor: Some("Mallory".into()),
                ..base.clone()
            },
            ChainRow {
                action: "left".into(),
                ..base.clone()
            },
            ChainRow {
                record: "{}".into(),
                ..base.clone()
            },
        ];
        for v in &variants {
            assert_ne!(v.expected_hash(GENESIS), h, "{v:?}");
        }
        assert_ne!(base.expected_hash(&"1".repeat(64)), h, "prev_hash counts");
    }

    #[test]
    fn an_empty_actor_and_no_actor_hash_differently() {
        let none = row(1, "x");
        let empty = ChainRow {
            actor: Some(String::new()),
            ..none.clone()
        };
        assert_eq!(none.actor, None);
        assert_ne!(none.expected_hash(GENESIS), empty.expected_hash(GENESIS));
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        let a = ChainRow {
            session: "12".into(),
            action: "3x".into(),
            ..row(1, "x")
        };
        let b = ChainRow {
            session: "123".into(),
            action: "x".into(),
            ..row(1, "x")
        };
        assert_ne!(a.expected_hash(GENESIS), b.expected_hash(GENESIS));
    }

    #[test]
    fn an_edited_record_is_named_as_changed() {
        let mut rows = chain();
        rows[2].record = r#"{"action":"admitted","n":99}"#.into();
        assert_eq!(fault(&rows), ChainFault::Changed { id: 3 });
        let mut rows = chain();
        rows[3].actor = None;
        assert_eq!(fault(&rows), ChainFault::Changed { id: 4 });
    }

    #[test]
    fn an_edited_record_with_a_recomputed_hash_breaks_the_next_link() {
        let mut rows = chain();
        rows[1].action = "left".into();
        let prev = rows[0].hash.clone().expect("hash");
        rows[1].seal(&prev);
        assert_eq!(
            fault(&rows),
            ChainFault::Unlinked {
                id: 3,
                after: Some(2)
            }
        );
    }

    #[test]
    fn a_removed_middle_record_breaks_the_link_of_the_next() {
        let mut rows = chain();
        rows.remove(2);
        let f = fault(&rows);
        assert_eq!(
            f,
            ChainFault::Unlinked {
                id: 4,
                after: Some(2)
            }
        );
        assert!(f.to_string().contains("removed"), "{f}");
    }

    #[test]
    fn removing_the_first_records_is_noticed() {
        let mut rows = chain();
        rows.drain(..2);
        assert_eq!(fault(&rows), ChainFault::Unlinked { id: 3, after: None });
    }

    #[test]
    fn removing_the_newest_records_leaves_a_valid_chain_with_an_older_head() {
        // Documented limit: only a head hash kept elsewhere shows this.
        let rows = chain();
        let full = verify(&rows);
        let truncated = verify(&rows[..3]);
        assert!(truncated.is_intact());
        assert_ne!(full, truncated);
    }

    #[test]
    fn swapped_contents_are_named_at_the_first_swapped_record() {
        let mut rows = chain();
        let (a, b) = (rows[1].clone(), rows[3].clone());
        for (to, from) in [(1, &b), (3, &a)] {
            rows[to] = ChainRow {
                id: rows[to].id,
                prev_hash: rows[to].prev_hash.clone(),
                hash: rows[to].hash.clone(),
                ..from.clone()
            };
        }
        assert_eq!(fault(&rows), ChainFault::Changed { id: 2 });
    }

    #[test]
    fn swapped_whole_records_are_named_at_the_first_swapped_record() {
        let mut rows = chain();
        let (a, b) = (rows[1].clone(), rows[3].clone());
        rows[1] = ChainRow { id: 2, ..b };
        rows[3] = ChainRow { id: 4, ..a };
        let f = fault(&rows);
        assert_eq!(
            f,
            ChainFault::Unlinked {
                id: 2,
                after: Some(1)
            }
        );
        assert!(f.to_string().contains("reordered"), "{f}");
    }

    #[test]
    fn an_unsealed_record_after_sealed_ones_is_named() {
        let mut rows = chain();
        rows[4].hash = None;
        rows[4].prev_hash = None;
        assert_eq!(fault(&rows), ChainFault::Unsealed { id: 5 });
    }

    #[test]
    fn the_report_counts_the_intact_records_before_the_fault() {
        let mut rows = chain();
        rows[3].session = "999999999".into();
        let report = verify(&rows);
        assert_eq!(
            report,
            ChainReport::Tampered {
                fault: ChainFault::Changed { id: 4 },
                intact_before: 3
            }
        );
        assert!(
            report.to_string().contains("record #4 was changed"),
            "{report}"
        );
    }

    #[test]
    fn the_verifier_stops_at_the_first_fault() {
        let mut rows = chain();
        rows[1].record = "{}".into();
        rows[3].record = "{}".into();
        let mut v = Verifier::new();
        assert!(v.push(&rows[0]));
        assert!(!v.push(&rows[1]));
        assert!(!v.push(&rows[2]), "nothing after a fault counts");
        assert_eq!(
            v.report(),
            ChainReport::Tampered {
                fault: ChainFault::Changed { id: 2 },
                intact_before: 1
            }
        );
    }
}
