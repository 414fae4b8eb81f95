//! Agent tokens: the one-time credentials a customer's page hands its agent, on a command
//! line or built into the downloaded agent (`tandem_protocol::launch`). A token is used
//! once (the registry forgets the customer's tokens when an agent attaches) and lives a
//! short time, because a download carrying it may lie around. While the customer has no
//! agent, their page gets a fresh token half-way through the newest one's life; the ones
//! before stay valid until their own expiry, so a download started just before the
//! renewal, or before the page came back after a lost connection or a restart of the
//! server (each gives the page a fresh token too), still attaches. A download always has
//! at least half a lifetime left when it starts. Only the newest few tokens of a customer
//! are remembered, live or not.
//!
//! The registry keys tokens by their SHA-256 (`clock::hash_secret`), so that neither
//! memory dumps nor the live-session journal, which keeps them across a restart
//! ([`AgentTokens::kept`], [`AgentTokens::restore`]), hold a usable token.
//!
//! No I/O and no clock: the registry passes the time in, and tests step it.

use std::collections::HashMap;
use std::time::Duration;

use tandem_protocol::{ParticipantId, SessionNumber, Timestamp};

use super::Seat;

/// How long an agent token can be used (an agent downloaded with it, or a command copied).
pub const AGENT_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Tokens remembered per customer, newest first: the live ones (two, from the renewals
/// alone; more when the page came back meanwhile) and expired ones, so an agent started
/// from an old download hears that its token expired rather than that it never existed.
/// Older ones are forgotten, live or not: a page that comes back again and again cannot
/// make the server remember more.
const KEPT_PER_CUSTOMER: usize = 8;

/// Why a token does not attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Never issued, already used, forgotten (eight newer ones since), or its customer or
    /// session is gone.
    Unknown,
    /// Issued to a customer still in the session, but its time ran out.
    Expired,
}

#[derive(Debug, Clone, Copy)]
struct Grant {
    seat: Seat,
    issued: Timestamp,
}

/// Every session's agent tokens.
#[derive(Debug)]
pub struct AgentTokens {
    lifetime_ms: u64,
    grants: HashMap<String, Grant>,
}

impl Default for AgentTokens {
    fn default() -> Self {
        Self::new(AGENT_TOKEN_LIFETIME)
    }
}

impl AgentTokens {
    pub fn new(lifetime: Duration) -> Self {
        Self {
            lifetime_ms: u64::try_from(lifetime.as_millis())
                .unwrap_or(u64::MAX)
                .max(2),
            grants: HashMap::new(),
        }
    }

    fn live(&self, grant: &Grant, now: Timestamp) -> bool {
        now.0 < grant.issued.0.saturating_add(self.lifetime_ms)
    }

    /// When a customer whose newest token is this one gets the next.
    fn renewal(&self, grant: &Grant) -> Timestamp {
        Timestamp(grant.issued.0.saturating_add(self.lifetime_ms / 2))
    }

    /// The customer's tokens, newest first.
    fn of(&self, customer: ParticipantId) -> Vec<(&String, &Grant)> {
        let mut theirs: Vec<_> = self
            .grants
            .iter()
            .filter(|(_, g)| g.seat.participant == customer)
            .collect();
        theirs.sort_by_key(|(_, grant)| std::cmp::Reverse(grant.issued.0));
        theirs
    }

    /// A new token for `seat`'s customer. The ones before stay valid until they expire,
    /// but only the newest [`KEPT_PER_CUSTOMER`] are remembered.
    pub fn issue(&mut self, seat: Seat, token: String, now: Timestamp) {
        let drop: Vec<String> = self
            .of(seat.participant)
            .into_iter()
            .skip(KEPT_PER_CUSTOMER - 1)
            .map(|(token, _)| token.clone())
            .collect();
        for token in drop {
            self.grants.remove(&token);
        }
        self.grants.insert(token, Grant { seat, issued: now });
    }

    /// The seat of a live token, for a download; the token stays usable.
    pub fn valid(&self, token: &str, now: Timestamp) -> Option<Seat> {
        self.grants
            .get(token)
            .filter(|grant| self.live(grant, now))
            .map(|grant| grant.seat)
    }

    /// The seat an agent attaching with `token` joins, or why not. The caller forgets
    /// the customer's tokens once the agent is in ([`Self::forget_customer`]).
    pub fn redeem(&self, token: &str, now: Timestamp) -> Result<Seat, Refused> {
        let grant = self.grants.get(token).ok_or(Refused::Unknown)?;
        if self.live(grant, now) {
            Ok(grant.seat)
        } else {
            Err(Refused::Expired)
        }
    }

    /// The customer left, or their agent attached: none of their tokens works any more.
    pub fn forget_customer(&mut self, customer: ParticipantId) {
        self.grants.retain(|_, g| g.seat.participant != customer);
    }

    /// The session ended.
    pub fn forget_session(&mut self, number: SessionNumber) {
        self.grants.retain(|_, g| g.seat.number != number);
    }

    /// This session's customers whose newest token is half-way through its life.
    pub fn due(&self, number: SessionNumber, now: Timestamp) -> Vec<Seat> {
        self.newest_in(number)
            .into_iter()
            .filter(|grant| self.renewal(grant).0 <= now.0)
            .map(|grant| grant.seat)
            .collect()
    }

    /// When the next customer of this session is due a fresh token, if any has tokens.
    pub fn next_renewal(&self, number: SessionNumber) -> Option<Timestamp> {
        self.newest_in(number)
            .iter()
            .map(|grant| self.renewal(grant))
            .min_by_key(|at| at.0)
    }

    /// The newest token of each customer of this session that has any.
    fn newest_in(&self, number: SessionNumber) -> Vec<Grant> {
        let mut newest: HashMap<ParticipantId, Grant> = HashMap::new();
        for grant in self.grants.values().filter(|g| g.seat.number == number) {
            let entry = newest.entry(grant.seat.participant).or_insert(*grant);
            if grant.issued.0 > entry.issued.0 {
                *entry = *grant;
            }
        }
        newest.into_values().collect()
    }

    /// This session's remembered tokens as (key, customer, issued), for the journal.
    pub fn kept(&self, number: SessionNumber) -> Vec<(String, ParticipantId, Timestamp)> {
        let mut kept: Vec<_> = self
            .grants
            .iter()
            .filter(|(_, g)| g.seat.number == number)
            .map(|(key, g)| (key.clone(), g.seat.participant, g.issued))
            .collect();
        kept.sort_by(|a, b| (a.2.0, &a.0).cmp(&(b.2.0, &b.0)));
        kept
    }

    /// A token kept across a restart, as [`Self::kept`] listed it.
    pub fn restore(&mut self, key: String, seat: Seat, issued: Timestamp) {
        self.grants.insert(key, Grant { seat, issued });
    }

    /// How many tokens are remembered (for tests of the bounds).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.grants.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    fn seat(number: u32, participant: u64) -> Seat {
        Seat {
            number: SessionNumber::new(number).expect("number"),
            participant: ParticipantId(participant),
        }
    }

    fn at(minutes: u64) -> Timestamp {
        Timestamp(1_000_000 + minutes * MIN)
    }

    fn tokens() -> AgentTokens {
        AgentTokens::new(Duration::from_secs(15 * 60))
    }

    #[test]
    fn a_token_attaches_within_its_lifetime_and_is_expired_after() {
        let mut t = tokens();
        let ann = seat(123_456_789, 5);
        t.issue(ann, "agt_a".into(), at(0));
        assert_eq!(t.redeem("agt_a", at(14)), Ok(ann));
        assert_eq!(t.valid("agt_a", at(14)), Some(ann));
        assert_eq!(t.redeem("agt_a", at(15)), Err(Refused::Expired));
        assert_eq!(t.valid("agt_a", at(15)), None, "no download with it");
        assert_eq!(t.redeem("agt_nope", at(1)), Err(Refused::Unknown));
    }

    #[test]
    fn the_fresh_token_is_due_half_way_and_the_previous_stays_valid_until_its_expiry() {
        let mut t = tokens();
        let ann = seat(123_456_789, 5);
        let number = ann.number;
        t.issue(ann, "agt_first".into(), at(0));
        assert_eq!(
            t.next_renewal(number),
            Some(Timestamp(at(0).0 + 15 * MIN / 2))
        );
        assert!(t.due(number, Timestamp(at(7).0 + MIN / 2 - 1)).is_empty());
        assert_eq!(t.due(number, Timestamp(at(7).0 + MIN / 2)), vec![ann]);

        t.issue(ann, "agt_second".into(), Timestamp(at(7).0 + MIN / 2));
        assert!(t.due(number, at(8)).is_empty(), "the newest counts");
        // A download started with the first token just before the renewal still works.
        assert_eq!(t.redeem("agt_first", at(14)), Ok(ann));
        assert_eq!(t.redeem("agt_second", at(14)), Ok(ann));
        assert_eq!(t.redeem("agt_first", at(15)), Err(Refused::Expired));
    }

    /// A token downloaded before the page came back (a lost connection, a restart of the
    /// server: each gives the page a fresh token) still attaches until its own expiry;
    /// only the newest few are remembered however often the page comes back.
    #[test]
    fn tokens_issued_in_quick_succession_stay_valid_but_only_the_newest_few_are_kept() {
        let mut t = tokens();
        let ann = seat(123_456_789, 5);
        // The first, its renewal half-way, then the page comes back after a restart.
        t.issue(ann, "agt_first".into(), at(0));
        t.issue(ann, "agt_renewed".into(), Timestamp(at(7).0 + MIN / 2));
        t.issue(ann, "agt_resumed".into(), at(10));
        for token in ["agt_first", "agt_renewed", "agt_resumed"] {
            assert_eq!(t.redeem(token, at(11)), Ok(ann), "{token}");
        }
        assert_eq!(t.redeem("agt_first", at(15)), Err(Refused::Expired));
        // A page that comes back again and again.
        let many: Vec<String> = (0..20).map(|i| format!("agt_{i}")).collect();
        for (i, token) in many.iter().enumerate() {
            t.issue(ann, token.clone(), Timestamp(at(11).0 + i as u64));
        }
        assert_eq!(t.len(), KEPT_PER_CUSTOMER, "bounded");
        assert_eq!(t.redeem("agt_19", at(12)), Ok(ann));
        assert_eq!(t.redeem("agt_12", at(12)), Ok(ann));
        assert_eq!(
            t.redeem("agt_11", at(12)),
            Err(Refused::Unknown),
            "forgotten"
        );
    }

    #[test]
    fn a_customer_keeps_a_bounded_memory_of_expired_tokens() {
        let mut t = tokens();
        let ann = seat(123_456_789, 5);
        // Two hours of renewals every 7.5 minutes.
        for i in 0..16u64 {
            t.issue(
                ann,
                format!("agt_{i}"),
                Timestamp(at(0).0 + i * 15 * MIN / 2),
            );
        }
        assert!(t.len() <= KEPT_PER_CUSTOMER, "{} kept", t.len());
        let now = Timestamp(at(0).0 + 15 * 15 * MIN / 2 + 1);
        assert_eq!(
            t.redeem("agt_12", now),
            Err(Refused::Expired),
            "recent: named"
        );
        assert_eq!(t.redeem("agt_0", now), Err(Refused::Unknown), "long gone");
    }

    #[test]
    fn a_departed_customer_or_ended_session_leaves_nothing() {
        let mut t = tokens();
        let ann = seat(123_456_789, 5);
        let bob = seat(123_456_789, 6);
        let cat = seat(987_654_321, 7);
        t.issue(ann, "agt_ann".into(), at(0));
        t.issue(bob, "agt_bob".into(), at(1));
        t.issue(cat, "agt_cat".into(), at(2));
        t.forget_customer(ann.participant);
        assert_eq!(t.redeem("agt_ann", at(3)), Err(Refused::Unknown));
        assert_eq!(t.due(ann.number, at(60)), vec![bob]);
        t.forget_session(ann.number);
        assert_eq!(t.redeem("agt_bob", at(3)), Err(Refused::Unknown));
        assert_eq!(t.next_renewal(ann.number), None);
        assert_eq!(
            t.redeem("agt_cat", at(3)),
            Ok(cat),
            "another session is untouched"
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn the_earliest_customer_decides_the_next_renewal() {
        let mut t = tokens();
        let ann = seat(123_456_789, 5);
        let bob = seat(123_456_789, 6);
        t.issue(bob, "agt_bob".into(), at(3));
        t.issue(ann, "agt_ann".into(), at(1));
        assert_eq!(
            t.next_renewal(ann.number),
            Some(Timestamp(at(1).0 + 15 * MIN / 2))
        );
        assert_eq!(t.due(ann.number, at(9)), vec![ann]);
    }
}
