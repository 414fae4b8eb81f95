//! What the site decides for a session, passed in when it starts.

/// Site settings that bound a session, read from the admin's settings when it starts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionConfig {
    /// The most customers one rep may help at the same time, across all their sessions (R4).
    /// Only admitted customers take a place: a join by link and an admission are checked
    /// against it, a join by number is not (C2).
    pub max_customers_per_rep: u32,
    /// The most customers who may wait in this session's waiting room at once (C2). Joins by
    /// number beyond it are refused, so strangers trying numbers can fill the waiting room
    /// but never the rep's places, and a customer with the join link still gets in.
    pub max_waiting: u32,
    /// How long a lost connection may take to come back before the participant is removed,
    /// or, for the primary rep, before the session ends (R2).
    pub reconnect_grace_ms: u64,
    /// How long the primary rep's session page may take to open after the start (R1, R2).
    pub attach_grace_ms: u64,
    /// The largest file a rep and the customer may send each other, in bytes; 0 turns
    /// file transfer off. Sessions kept from before it existed get the default.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Whether a rep may record the session (the admin's setting; off unless allowed).
    #[serde(default)]
    pub recording_allowed: bool,
}

/// 2 GB, as the site's default setting (2000 MB).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 2_000_000_000;

fn default_max_file_bytes() -> u64 {
    DEFAULT_MAX_FILE_BYTES
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            max_customers_per_rep: 5,
            max_waiting: 10,
            reconnect_grace_ms: 30_000,
            attach_grace_ms: 60_000,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            recording_allowed: false,
        }
    }
}

/// What the server knows about a rep's account, given with every rep who joins.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RepInfo {
    /// The account name, for the audit log.
    pub account: String,
    /// May transfer sessions to WebACD agents and queues (R10).
    pub webacd_agent: bool,
}
