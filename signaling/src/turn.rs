//! ICE servers for one participant. STUN servers are public; TURN servers get credentials
//! issued to this participant alone, valid for a limited time, in the scheme coturn's
//! `use-auth-secret` (the "TURN REST API") understands: the username is
//! `<expiry unix seconds>:<participant>` and the credential is
//! `base64(HMAC-SHA1(shared secret, username))`. A TURN server holding the same secret
//! checks them without asking this server.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use tandem_protocol::{IceServer, ParticipantId};

/// How TURN servers are authenticated.
#[derive(Clone, PartialEq, Eq)]
pub enum TurnAuth {
    /// No TURN credentials (STUN only, or TURN servers that need none).
    None,
    /// coturn's `use-auth-secret`: per-participant credentials from a shared secret.
    SharedSecret { secret: String, ttl_secs: u64 },
    /// One fixed username and credential for every client (a TURN server without
    /// `use-auth-secret`). Handed out only after a join; prefer a shared secret.
    Static {
        username: String,
        credential: String,
    },
}

impl std::fmt::Debug for TurnAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets into logs.
        match self {
            TurnAuth::None => f.write_str("None"),
            TurnAuth::SharedSecret { ttl_secs, .. } => f
                .debug_struct("SharedSecret")
                .field("ttl_secs", ttl_secs)
                .finish_non_exhaustive(),
            TurnAuth::Static { username, .. } => f
                .debug_struct("Static")
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

/// The configured STUN/TURN URLs and how TURN is authenticated.
#[derive(Debug, Clone)]
pub struct IceConfig {
    pub urls: Vec<String>,
    pub auth: TurnAuth,
}

impl Default for IceConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            auth: TurnAuth::None,
        }
    }
}

fn is_turn(url: &str) -> bool {
    url.starts_with("turn:") || url.starts_with("turns:")
}

impl IceConfig {
    /// What anyone may know: the STUN servers (sent in `welcome`).
    pub fn public(&self) -> Vec<IceServer> {
        self.urls
            .iter()
            .filter(|u| !is_turn(u))
            .map(|u| IceServer {
                urls: vec![u.clone()],
                username: None,
                credential: None,
            })
            .collect()
    }

    /// Every server, with TURN credentials for this participant (sent after a join).
    pub fn for_participant(
        &self,
        participant: ParticipantId,
        now_unix_secs: u64,
    ) -> Vec<IceServer> {
        let mut servers = self.public();
        let turn: Vec<String> = self.urls.iter().filter(|u| is_turn(u)).cloned().collect();
        if turn.is_empty() {
            return servers;
        }
        let (username, credential) = match &self.auth {
            TurnAuth::None => (None, None),
            TurnAuth::Static {
                username,
                credential,
            } => (Some(username.clone()), Some(credential.clone())),
            TurnAuth::SharedSecret { secret, ttl_secs } => {
                let username = format!("{}:p{}", now_unix_secs + ttl_secs, participant.0);
                let credential = shared_secret_credential(secret, &username);
                (Some(username), Some(credential))
            }
        };
        // One entry for every TURN URL: browsers try them in parallel.
        servers.push(IceServer {
            urls: turn,
            username,
            credential,
        });
        servers
    }
}

/// coturn's `use-auth-secret` credential for a username.
pub fn shared_secret_credential(secret: &str, username: &str) -> String {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(auth: TurnAuth) -> IceConfig {
        IceConfig {
            urls: vec![
                "stun:stun.example.com:3478".into(),
                "turn:turn.example.com:3478?transport=udp".into(),
                "turn:turn.example.com:3478?transport=tcp".into(),
            ],
            auth,
        }
    }

    #[test]
    fn the_welcome_names_only_stun() {
        let c = config(TurnAuth::Static {
            username: "u".into(),
            credential: "p".into(),
        });
        let public = c.public();
        assert_eq!(public.len(), 1);
        assert!(public[0].urls[0].starts_with("stun:"));
        assert!(public[0].credential.is_none());
    }

    #[test]
    fn shared_secret_credentials_follow_the_turn_rest_scheme() {
        // The expected value computed outside Rust, with
        // `echo -n "1433895918:p7" | openssl dgst -binary -sha1 -hmac s3cret | base64`.
        let c = config(TurnAuth::SharedSecret {
            secret: "s3cret".into(),
            ttl_secs: 3600,
        });
        let servers = c.for_participant(ParticipantId(7), 1_433_892_318);
        let turn = &servers[1];
        assert_eq!(turn.urls.len(), 2);
        assert_eq!(turn.username.as_deref(), Some("1433895918:p7"));
        assert_eq!(
            turn.credential.as_deref(),
            Some("7AzCBQ1gfYnVgmPh/G9TKOCepEA=")
        );
        let other = c.for_participant(ParticipantId(8), 1_433_892_318);
        assert_ne!(other[1].credential, turn.credential, "per participant");
    }

    #[test]
    fn secrets_never_reach_debug_output() {
        let auth = TurnAuth::SharedSecret {
            secret: "very-secret".into(),
            ttl_secs: 60,
        };
        assert!(!format!("{auth:?}").contains("very-secret"));
    }
}
