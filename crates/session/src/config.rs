//! What the site decides for a session, passed in when it starts.

/// Site settings that bound a session, read from the admin's settings when it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// The most customers one rep may help at the same time, across all their sessions (R4).
    pub max_customers_per_rep: u32,
    /// How long a lost connection may take to come back before the participant is removed,
    /// or, for the primary rep, before the session ends (R2).
    pub reconnect_grace_ms: u64,
    /// How long the primary rep's session page may take to open after the start (R1, R2).
    pub attach_grace_ms: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            max_customers_per_rep: 5,
            reconnect_grace_ms: 30_000,
            attach_grace_ms: 60_000,
        }
    }
}

/// What the server knows about a rep's account, given with every rep who joins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepInfo {
    /// The account name, for the audit log.
    pub account: String,
    /// May transfer sessions to WebACD agents and queues (R10).
    pub webacd_agent: bool,
}
