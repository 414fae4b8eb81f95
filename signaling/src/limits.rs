//! Rate limits by client address (governor): logins, and joins that guess session numbers
//! or links (C2).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

#[derive(Clone)]
pub struct Limits {
    logins: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    joins: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").finish_non_exhaustive()
    }
}

/// Ten a minute, in a burst of ten: plenty for people, useless for guessing.
const PER_MINUTE: NonZeroU32 = NonZeroU32::new(10).expect("non-zero");

impl Default for Limits {
    fn default() -> Self {
        Self {
            logins: Arc::new(RateLimiter::keyed(Quota::per_minute(PER_MINUTE))),
            joins: Arc::new(RateLimiter::keyed(Quota::per_minute(PER_MINUTE))),
        }
    }
}

impl Limits {
    /// May this address try to log in again?
    pub fn login(&self, ip: IpAddr) -> bool {
        self.logins.check_key(&ip).is_ok()
    }

    /// May this address try a join by number or by link again? Every attempt counts.
    pub fn join(&self, ip: IpAddr) -> bool {
        self.joins.check_key(&ip).is_ok()
    }

    /// Forget addresses that have been quiet, so the tables do not grow forever.
    pub fn prune(&self) {
        self.logins.retain_recent();
        self.joins.retain_recent();
    }
}
