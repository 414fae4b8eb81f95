//! Rate limits (governor): logins, joins that could guess a session number, link or token
//! (C2), rep commands that could find someone else's session (assist, open, accept), and
//! the commands of one connection (chat and everything else).
//!
//! Guessing limits key on the client's address — an IPv6 address counts by its /64, which
//! is what one household or host usually holds — on the rep's account where there is
//! one, and on the whole site, so neither many addresses nor many accounts get far.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use tandem_protocol::ErrorCode;

use crate::live::Refusal;

/// The part of an address that limits key on: IPv4 as it is, IPv6 by its /64 prefix
/// (IPv4-mapped IPv6 addresses count as the IPv4 address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrKey {
    V4(u32),
    V6Prefix(u64),
}

impl From<IpAddr> for AddrKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddrKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey::V4(u32::from(v4)),
                None => AddrKey::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// As written where the site's servers share counts: the IPv4 address, or the IPv6 /64.
impl std::fmt::Display for AddrKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddrKey::V4(v4) => write!(f, "{}", std::net::Ipv4Addr::from(*v4)),
            AddrKey::V6Prefix(prefix) => {
                let net = std::net::Ipv6Addr::from(u128::from(*prefix) << 64);
                write!(f, "{net}/64")
            }
        }
    }
}

const fn nz(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => panic!("a quota is never zero"),
    }
}

fn per_minute(burst: u32, per_minute: u32) -> Quota {
    Quota::per_minute(nz(per_minute)).allow_burst(nz(burst))
}

fn per_second(burst: u32, per_second: u32) -> Quota {
    Quota::per_second(nz(per_second)).allow_burst(nz(burst))
}

/// Site-wide rate limits, shared by every connection.
#[derive(Clone)]
pub struct Limits {
    logins: Arc<DefaultKeyedRateLimiter<AddrKey>>,
    logins_site: Arc<DefaultDirectRateLimiter>,
    /// Password hashes computed at once (each takes tens of ms of a core).
    pub hashing: Arc<tokio::sync::Semaphore>,
    /// Customer joins by number or link and agent attaches: per address (a resume is not
    /// counted).
    joins: Arc<DefaultKeyedRateLimiter<AddrKey>>,
    /// The same, for the whole site.
    joins_site: Arc<DefaultDirectRateLimiter>,
    /// Assist, open session and accept transfer: per address, per account, site-wide.
    rep_joins: Arc<DefaultKeyedRateLimiter<AddrKey>>,
    rep_joins_account: Arc<DefaultKeyedRateLimiter<i64>>,
    rep_joins_site: Arc<DefaultDirectRateLimiter>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").finish_non_exhaustive()
    }
}

/// The defaults, documented in docs/security.md.
pub mod defaults {
    /// Logins per address: a burst of 10, then 10 a minute.
    pub const LOGINS_PER_MINUTE: u32 = 10;
    /// Logins for the whole site: a burst of 40, then 10 a second.
    pub const SITE_LOGINS_BURST: u32 = 40;
    pub const SITE_LOGINS_PER_SECOND: u32 = 10;
    /// Password hashes computed at once; a login beyond them waits up to
    /// [`HASHING_WAIT`] for one to end, and is answered 503 if none does.
    pub const HASHING_AT_ONCE: usize = 4;
    pub const HASHING_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
    /// Customer joins and attaches per address: a burst of 10, then 10 a minute.
    pub const JOINS_PER_MINUTE: u32 = 10;
    /// The same for the whole site: a burst of 100, then 20 a second.
    pub const SITE_JOINS_BURST: u32 = 100;
    pub const SITE_JOINS_PER_SECOND: u32 = 20;
    /// Assist, open session and accept transfer per address and per account: a burst of
    /// 30, then 30 a minute.
    pub const REP_JOINS_PER_MINUTE: u32 = 30;
    /// The same for the whole site: a burst of 100, then 20 a second.
    pub const SITE_REP_JOINS_BURST: u32 = 100;
    pub const SITE_REP_JOINS_PER_SECOND: u32 = 20;
    /// Messages of one connection: a burst of 200, then 50 a second.
    pub const MESSAGES_BURST: u32 = 200;
    pub const MESSAGES_PER_SECOND: u32 = 50;
    /// Chat lines of one connection: a burst of 20, then 2 a second.
    pub const CHAT_BURST: u32 = 20;
    pub const CHAT_PER_SECOND: u32 = 2;
    /// A connection whose messages were refused this many times is closed.
    pub const REFUSALS_BEFORE_CLOSE: u32 = 200;
}

impl Default for Limits {
    fn default() -> Self {
        use defaults::*;
        Self {
            logins: Arc::new(RateLimiter::keyed(per_minute(
                LOGINS_PER_MINUTE,
                LOGINS_PER_MINUTE,
            ))),
            logins_site: Arc::new(RateLimiter::direct(per_second(
                SITE_LOGINS_BURST,
                SITE_LOGINS_PER_SECOND,
            ))),
            hashing: Arc::new(tokio::sync::Semaphore::new(HASHING_AT_ONCE)),
            joins: Arc::new(RateLimiter::keyed(per_minute(
                JOINS_PER_MINUTE,
                JOINS_PER_MINUTE,
            ))),
            joins_site: Arc::new(RateLimiter::direct(per_second(
                SITE_JOINS_BURST,
                SITE_JOINS_PER_SECOND,
            ))),
            rep_joins: Arc::new(RateLimiter::keyed(per_minute(
                REP_JOINS_PER_MINUTE,
                REP_JOINS_PER_MINUTE,
            ))),
            rep_joins_account: Arc::new(RateLimiter::keyed(per_minute(
                REP_JOINS_PER_MINUTE,
                REP_JOINS_PER_MINUTE,
            ))),
            rep_joins_site: Arc::new(RateLimiter::direct(per_second(
                SITE_REP_JOINS_BURST,
                SITE_REP_JOINS_PER_SECOND,
            ))),
        }
    }
}

fn too_many() -> Refusal {
    Refusal::new(
        ErrorCode::RateLimited,
        "too many attempts; wait a minute and try again",
    )
}

impl Limits {
    /// May this address try to log in again?
    pub fn login(&self, ip: IpAddr) -> bool {
        self.logins.check_key(&ip.into()).is_ok()
    }

    /// May the site check another password now? Asked only for attempts that would
    /// really hash one (not those the per-account slow-down refuses anyway).
    pub fn login_site(&self) -> bool {
        self.logins_site.check().is_ok()
    }

    /// May this address try a customer join by number or an agent attach? Every attempt
    /// counts, per address and for the whole site.
    pub fn join(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.joins.check_key(&ip.into()).is_err() || self.joins_site.check().is_err() {
            return Err(too_many());
        }
        Ok(())
    }

    /// May this address try a join by link? It carries a 256-bit secret, which no one
    /// guesses: it counts per address only, so a flood elsewhere cannot use up the site's
    /// budget and keep real customers out.
    pub fn join_with_secret(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.joins.check_key(&ip.into()).is_err() {
            return Err(too_many());
        }
        Ok(())
    }

    /// May this rep, from this address, try to assist, open or accept a session by its
    /// number? Every attempt counts.
    pub fn rep_join(&self, ip: IpAddr, account: i64) -> Result<(), Refusal> {
        if self.rep_joins.check_key(&ip.into()).is_err()
            || self.rep_joins_account.check_key(&account).is_err()
            || self.rep_joins_site.check().is_err()
        {
            return Err(too_many());
        }
        Ok(())
    }

    /// Forget addresses and accounts that have been quiet, so the tables do not grow.
    pub fn prune(&self) {
        self.logins.retain_recent();
        self.joins.retain_recent();
        self.rep_joins.retain_recent();
        self.rep_joins_account.retain_recent();
    }
}

/// The message rates of one connection: a burst, then a steady rate, for every message
/// and (stricter) for chat. Refusals are counted; a connection that keeps sending after
/// many of them is closed.
pub struct ConnectionLimits {
    messages: DefaultDirectRateLimiter,
    chat: DefaultDirectRateLimiter,
    refused: u32,
}

impl std::fmt::Debug for ConnectionLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionLimits")
            .field("refused", &self.refused)
            .finish_non_exhaustive()
    }
}

/// What to do with a message after the rate check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refuse it with `rate_limited`.
    Refuse,
    /// Refused too often: close the connection.
    Close,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        use defaults::*;
        Self {
            messages: RateLimiter::direct(per_second(MESSAGES_BURST, MESSAGES_PER_SECOND)),
            chat: RateLimiter::direct(per_second(CHAT_BURST, CHAT_PER_SECOND)),
            refused: 0,
        }
    }
}

impl ConnectionLimits {
    /// Any message, before it is even decoded.
    pub fn message(&mut self) -> Verdict {
        let ok = self.messages.check().is_ok();
        self.verdict(ok)
    }

    /// A chat line.
    pub fn chat(&mut self) -> Verdict {
        let ok = self.chat.check().is_ok();
        self.verdict(ok)
    }

    fn verdict(&mut self, ok: bool) -> Verdict {
        if ok {
            return Verdict::Allow;
        }
        self.refused += 1;
        if self.refused >= defaults::REFUSALS_BEFORE_CLOSE {
            Verdict::Close
        } else {
            Verdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(AddrKey::from(a), AddrKey::from(b));
        assert_ne!(AddrKey::from(a), AddrKey::from(c));
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(
            AddrKey::from(mapped),
            AddrKey::from(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert_ne!(
            AddrKey::from(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            AddrKey::from(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
    }

    #[test]
    fn a_whole_ipv6_64_shares_one_join_budget() {
        let limits = Limits::default();
        for i in 0..defaults::JOINS_PER_MINUTE {
            let ip: IpAddr = format!("2001:db8::{:x}", i + 1).parse().expect("ip");
            assert!(limits.join(ip).is_ok(), "attempt {i}");
        }
        let other_host_same_64: IpAddr = "2001:db8::ffff:1".parse().expect("ip");
        assert!(limits.join(other_host_same_64).is_err());
        let other_64: IpAddr = "2001:db8:0:1::1".parse().expect("ip");
        assert!(limits.join(other_64).is_ok());
    }

    #[test]
    fn rep_joins_are_limited_per_account_across_addresses() {
        let limits = Limits::default();
        for i in 0..defaults::REP_JOINS_PER_MINUTE {
            let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 1, (i % 250) as u8 + 1));
            assert!(limits.rep_join(ip, 7).is_ok(), "attempt {i}");
        }
        let fresh_address = IpAddr::V4(Ipv4Addr::new(127, 0, 2, 1));
        assert!(limits.rep_join(fresh_address, 7).is_err(), "same account");
        assert!(limits.rep_join(fresh_address, 8).is_ok(), "another account");
    }

    #[test]
    fn a_connection_gets_a_burst_then_refusals_then_is_closed() {
        let mut limits = ConnectionLimits::default();
        for _ in 0..defaults::CHAT_BURST {
            assert_eq!(limits.chat(), Verdict::Allow);
        }
        assert_eq!(limits.chat(), Verdict::Refuse);
        let mut verdict = Verdict::Refuse;
        for _ in 0..defaults::REFUSALS_BEFORE_CLOSE {
            verdict = limits.chat();
        }
        assert_eq!(verdict, Verdict::Close);
    }
}
