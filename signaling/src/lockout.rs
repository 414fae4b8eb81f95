//! The per-account slow-down for logins: after a few failed logins for one username, each
//! further attempt must wait a delay that doubles with every failure, up to a cap.
//!
//! It keys on the username whether or not such an account exists, so a refusal says nothing
//! about existence. An attempt is counted as a failure *before* the password is checked and
//! forgiven on success, so concurrent guesses cannot slip past the count. The cap keeps an
//! attacker from locking a rep out for long; the per-address limit (`limits.rs`) still applies.
//! Time is passed in, so the schedule is tested without sleeping.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Failures allowed before any delay.
pub const FREE_FAILURES: u32 = 5;
/// The longest an account is ever held back.
pub const MAX_DELAY: Duration = Duration::from_secs(5 * 60);
/// A username quiet this long starts again from nothing (longer than `MAX_DELAY`, so a delay
/// always runs out before it is forgotten).
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Most usernames remembered at once; past it the longest-quiet one is forgotten.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// How long to wait after the latest of `failures` failed logins before the next attempt.
pub fn delay(failures: u32) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    // 2^9 s already exceeds the cap; clamping the exponent keeps the shift in range.
    let exponent = (failures - FREE_FAILURES).min(9);
    Duration::from_secs(1 << exponent).min(MAX_DELAY)
}

/// A username as stored in the table: case-folded like the database's `COLLATE NOCASE`,
/// and hashed so an entry costs the same however long the submitted name was.
type Key = [u8; 32];

fn key(username: &str) -> Key {
    Sha256::digest(username.trim().to_ascii_lowercase().as_bytes()).into()
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

#[derive(Debug)]
struct Table {
    entries: HashMap<Key, Entry>,
    /// The same entries ordered by their latest failure, for forgetting and eviction.
    by_age: BTreeSet<(Instant, Key)>,
    capacity: usize,
}

impl Table {
    fn remove(&mut self, key: &Key) {
        if let Some(entry) = self.entries.remove(key) {
            self.by_age.remove(&(entry.last, *key));
        }
    }

    fn forget_quiet(&mut self, now: Instant) {
        while let Some(&(last, key)) = self.by_age.first() {
            if now.saturating_duration_since(last) < FORGET_AFTER {
                break;
            }
            self.remove(&key);
        }
    }

    fn evict_oldest(&mut self) {
        if let Some(&(_, key)) = self.by_age.first() {
            self.remove(&key);
        }
    }
}

/// Failed logins per username. Cloning shares the table.
#[derive(Debug, Clone)]
pub struct Lockout {
    table: Arc<Mutex<Table>>,
}

impl Default for Lockout {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl Lockout {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            table: Arc::new(Mutex::new(Table {
                entries: HashMap::new(),
                by_age: BTreeSet::new(),
                capacity: capacity.max(1),
            })),
        }
    }

    /// May this username try a password now? If so, the attempt is counted as a failure
    /// until [`Lockout::succeeded`] forgives it; if not, how long until it may. A refused
    /// attempt changes nothing, so hammering does not lengthen the wait.
    pub fn attempt(&self, username: &str, now: Instant) -> Result<(), Duration> {
        let key = key(username);
        let mut table = self.lock();
        table.forget_quiet(now);
        let previous = table.entries.get(&key).copied();
        if let Some(entry) = previous {
            let ready = entry.last + delay(entry.failures);
            if now < ready {
                return Err(ready - now);
            }
            table.by_age.remove(&(entry.last, key));
        } else if table.entries.len() >= table.capacity {
            table.evict_oldest();
        }
        let entry = Entry {
            failures: previous.map_or(0, |e| e.failures).saturating_add(1),
            last: now,
        };
        table.entries.insert(key, entry);
        table.by_age.insert((now, key));
        Ok(())
    }

    /// The password was right and the account may log in: forget its failures.
    pub fn succeeded(&self, username: &str) {
        self.lock().remove(&key(username));
    }

    /// Usernames remembered now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table is consistent after every statement; a panic elsewhere leaves it usable.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How long an address where a rep logged in stays "known" for that rep.
pub const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The login guard: the slow-down per address and username (an IPv6 address by its /64),
/// and the slow-down per username alone — which does not apply from an address where that
/// rep has logged in before, so an attacker who hammers a username elsewhere cannot lock
/// the rep out from their usual place.
#[derive(Debug, Clone, Default)]
pub struct LoginGuard {
    by_user: Lockout,
    by_place: Lockout,
    known: Known,
    refusals: Refusals,
}

/// At most one refused login per account is put in the audit log this often; the others
/// are counted and the count goes with the next one recorded.
pub const RECORD_REFUSALS_EVERY: Duration = Duration::from_secs(10 * 60);

/// Per account (existing ones only, so bounded): when a refusal was last recorded, and how
/// many came since without being recorded.
#[derive(Debug, Clone, Default)]
struct Refusals {
    accounts: Arc<Mutex<HashMap<i64, (Instant, u64)>>>,
}

impl LoginGuard {
    /// May this attempt go ahead? Counted as a failure until [`LoginGuard::succeeded`].
    pub fn attempt(&self, place: &str, username: &str, now: Instant) -> Result<(), Duration> {
        let pair = format!("{place}|{}", username.trim().to_ascii_lowercase());
        self.by_place.attempt(&pair, now)?;
        if self.known.contains(&pair, now) {
            return Ok(());
        }
        self.by_user.attempt(username, now)
    }

    /// A login to `account` was refused after its password was checked: whether to put it
    /// in the audit log, and if so, how many refusals of it were not recorded before it.
    pub fn refusal_to_record(&self, account: i64, now: Instant) -> Option<u64> {
        let mut accounts = self
            .refusals
            .accounts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match accounts.get_mut(&account) {
            Some((last, unrecorded))
                if now.saturating_duration_since(*last) < RECORD_REFUSALS_EVERY =>
            {
                *unrecorded += 1;
                None
            }
            Some(entry) => {
                let before = entry.1;
                *entry = (now, 0);
                Some(before)
            }
            None => {
                accounts.insert(account, (now, 0));
                Some(0)
            }
        }
    }

    /// The password was right: forget the failures, and know this place for this rep.
    pub fn succeeded(&self, place: &str, username: &str, now: Instant) {
        let pair = format!("{place}|{}", username.trim().to_ascii_lowercase());
        self.by_place.succeeded(&pair);
        self.by_user.succeeded(username);
        self.known.insert(&pair, now);
    }
}

/// (place, username) pairs that logged in, bounded.
#[derive(Debug, Clone, Default)]
struct Known {
    seen: Arc<Mutex<HashMap<Key, Instant>>>,
}

impl Known {
    fn contains(&self, pair: &str, now: Instant) -> bool {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.get(&key(pair))
            .is_some_and(|at| now.saturating_duration_since(*at) < KNOWN_FOR)
    }

    fn insert(&self, pair: &str, now: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= DEFAULT_CAPACITY {
            seen.retain(|_, at| now.saturating_duration_since(*at) < KNOWN_FOR);
            if seen.len() >= DEFAULT_CAPACITY {
                // Full of recent logins: forget the oldest tenth.
                let mut ages: Vec<Instant> = seen.values().copied().collect();
                ages.sort();
                let cut = ages[ages.len() / 10];
                seen.retain(|_, at| *at > cut);
            }
        }
        seen.insert(key(pair), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// One refused login per account is audited every 10 minutes; the ones between are
    /// counted into the next, and accounts are counted apart.
    #[test]
    fn refused_logins_are_recorded_once_per_account_in_ten_minutes_with_the_count_between() {
        let guard = LoginGuard::default();
        let t0 = Instant::now();
        assert_eq!(guard.refusal_to_record(1, t0), Some(0));
        for i in 1..=3 {
            assert_eq!(guard.refusal_to_record(1, t0 + i * SECOND), None);
        }
        assert_eq!(
            guard.refusal_to_record(2, t0 + SECOND),
            Some(0),
            "another account"
        );
        let later = t0 + RECORD_REFUSALS_EVERY;
        assert_eq!(guard.refusal_to_record(1, later), Some(3));
        assert_eq!(guard.refusal_to_record(1, later + SECOND), None);
    }

    /// Fail `n` attempts at `now`, all of which must be allowed.
    fn fail(lockout: &Lockout, name: &str, n: u32, now: Instant) {
        for i in 0..n {
            assert_eq!(lockout.attempt(name, now), Ok(()), "attempt {i}");
        }
    }

    #[test]
    fn the_delay_doubles_after_five_failures_up_to_five_minutes() {
        let expected = [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300];
        for (failures, secs) in expected.into_iter().enumerate() {
            let failures = u32::try_from(failures).expect("small");
            assert_eq!(delay(failures), secs * SECOND, "{failures} failures");
        }
        assert_eq!(delay(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn five_failures_are_free_then_the_sixth_waits_a_second() {
        let lockout = Lockout::default();
        let t0 = Instant::now();
        fail(&lockout, "rita", 5, t0);
        assert_eq!(lockout.attempt("rita", t0), Err(SECOND));
        let half = t0 + SECOND / 2;
        assert_eq!(lockout.attempt("rita", half), Err(SECOND / 2));
        assert_eq!(lockout.attempt("rita", t0 + SECOND), Ok(()));
        // Six failures: two seconds from the latest.
        let t1 = t0 + SECOND;
        assert_eq!(lockout.attempt("rita", t1 + SECOND), Err(SECOND));
        assert_eq!(lockout.attempt("rita", t1 + 2 * SECOND), Ok(()));
    }

    #[test]
    fn refused_attempts_do_not_lengthen_the_wait() {
        let lockout = Lockout::default();
        let t0 = Instant::now();
        fail(&lockout, "rita", 5, t0);
        for ms in (0..1000).step_by(10) {
            assert!(
                lockout
                    .attempt("rita", t0 + Duration::from_millis(ms))
                    .is_err()
            );
        }
        assert_eq!(lockout.attempt("rita", t0 + SECOND), Ok(()));
    }

    #[test]
    fn the_wait_never_exceeds_five_minutes() {
        let lockout = Lockout::default();
        let mut now = Instant::now();
        fail(&lockout, "rita", 5, now);
        for _ in 0..30 {
            let wait = lockout.attempt("rita", now).expect_err("held back");
            assert!(wait <= MAX_DELAY, "{wait:?}");
            now += wait;
            assert_eq!(lockout.attempt("rita", now), Ok(()));
        }
        assert_eq!(lockout.attempt("rita", now), Err(MAX_DELAY));
    }

    #[test]
    fn a_success_forgives_the_failures() {
        let lockout = Lockout::default();
        let t0 = Instant::now();
        fail(&lockout, "rita", 5, t0);
        lockout.succeeded("rita");
        fail(&lockout, "rita", 5, t0);
        assert!(lockout.attempt("rita", t0).is_err());
    }

    #[test]
    fn usernames_count_apart_and_case_and_spaces_do_not_matter() {
        let lockout = Lockout::default();
        let t0 = Instant::now();
        fail(&lockout, "rita", 3, t0);
        fail(&lockout, " RITA ", 2, t0);
        assert!(lockout.attempt("Rita", t0).is_err());
        assert_eq!(lockout.attempt("sam", t0), Ok(()));
    }

    #[test]
    fn a_quiet_username_is_forgotten_after_its_delay() {
        let lockout = Lockout::default();
        let t0 = Instant::now();
        fail(&lockout, "rita", 5, t0);
        assert_eq!(lockout.len(), 1);
        let later = t0 + FORGET_AFTER;
        assert_eq!(lockout.attempt("sam", later), Ok(()));
        assert_eq!(lockout.len(), 1, "rita was forgotten, sam remembered");
        fail(&lockout, "rita", 5, later);
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_longest_quiet_first() {
        let lockout = Lockout::with_capacity(3);
        let t0 = Instant::now();
        fail(&lockout, "old", 5, t0);
        for (i, name) in ["b", "c", "d", "e"].into_iter().enumerate() {
            let at = t0 + SECOND * (u32::try_from(i).expect("small") + 1);
            assert_eq!(lockout.attempt(name, at), Ok(()));
            assert!(lockout.len() <= 3);
        }
        // "old" was evicted, so its count starts again.
        fail(&lockout, "old", 5, t0 + 10 * SECOND);
    }

    #[test]
    fn a_rep_logs_in_from_a_known_place_while_their_name_is_hammered_elsewhere() {
        let guard = LoginGuard::default();
        let t0 = Instant::now();
        guard.attempt("home", "rita", t0).expect("first");
        guard.succeeded("home", "rita", t0);
        // An attacker from many places fails over and over.
        let mut held_back = false;
        for i in 0..50 {
            if guard
                .attempt(
                    &format!("attacker-{i}"),
                    "rita",
                    t0 + Duration::from_secs(1),
                )
                .is_err()
            {
                held_back = true;
            }
        }
        assert!(held_back, "the username is slowed down for strangers");
        assert!(
            guard
                .attempt("elsewhere", "rita", t0 + Duration::from_secs(1))
                .is_err(),
            "and for a new place"
        );
        assert!(
            guard
                .attempt("home", "rita", t0 + Duration::from_secs(1))
                .is_ok(),
            "but not at home"
        );
    }

    #[test]
    fn one_place_is_slowed_down_even_for_a_known_rep() {
        let guard = LoginGuard::default();
        let t0 = Instant::now();
        guard.attempt("home", "rita", t0).expect("first");
        guard.succeeded("home", "rita", t0);
        let refused = (0..20)
            .filter(|_| guard.attempt("home", "rita", t0).is_err())
            .count();
        assert!(refused >= 14, "{refused}");
    }
}
