//! A rep's sessions taken together, decided without IO from the live sessions the server
//! holds: whether a rep may start another session (R1, the site's setting
//! `allow_multiple_sessions`), and how many customers a rep already helps in their other
//! sessions, which R4's maximum counts (passed to [`crate::Event::Admit`] and joins).

use tandem_protocol::SessionNumber;

use crate::SessionError;

/// One live session, as far as a rep's limits across sessions need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepSession {
    pub number: SessionNumber,
    /// The account of the session's primary rep, if one is in it.
    pub primary_account: Option<i64>,
    /// Its admitted customers.
    pub customers: u32,
}

/// R1: may the rep with `account` start a session? Unless the site allows several at
/// once, not while they are the primary rep of another live session.
pub fn may_start(
    account: i64,
    allow_multiple: bool,
    live: impl IntoIterator<Item = RepSession>,
) -> Result<(), SessionError> {
    if allow_multiple {
        return Ok(());
    }
    match live
        .into_iter()
        .find(|session| session.primary_account == Some(account))
    {
        Some(running) => Err(SessionError::AlreadyRunning(running.number)),
        None => Ok(()),
    }
}

/// R4: the customers the primary rep of session `number` helps in their other live
/// sessions (0 when the session has no primary rep, or is not among `live`).
pub fn load_elsewhere(number: SessionNumber, live: impl IntoIterator<Item = RepSession>) -> u32 {
    let live: Vec<RepSession> = live.into_iter().collect();
    let account = live
        .iter()
        .find(|session| session.number == number)
        .and_then(|session| session.primary_account);
    let Some(account) = account else {
        return 0;
    };
    live.iter()
        .filter(|session| session.number != number && session.primary_account == Some(account))
        .map(|session| session.customers)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_protocol::ErrorCode;

    fn number(n: u32) -> SessionNumber {
        SessionNumber::new(n).expect("a nine-digit number")
    }

    fn session(n: u32, account: Option<i64>, customers: u32) -> RepSession {
        RepSession {
            number: number(n),
            primary_account: account,
            customers,
        }
    }

    #[test]
    fn r1_a_rep_runs_one_session_at_a_time_unless_the_site_allows_several() {
        let live = [
            session(100_000_001, Some(7), 1),
            session(100_000_002, Some(8), 0),
        ];
        let refused = may_start(7, false, live).expect_err("rep 7 runs 100000001");
        assert_eq!(refused.code(), ErrorCode::SiteLimit);
        assert!(refused.to_string().contains("100 000 001"), "{refused}");
        assert_eq!(may_start(7, true, live), Ok(()));
        assert_eq!(may_start(9, false, live), Ok(()));
        // A session whose primary rep is someone else now (R9) is not theirs.
        assert_eq!(
            may_start(7, false, [session(100_000_001, Some(8), 1)]),
            Ok(())
        );
    }

    #[test]
    fn r4_counts_the_customers_of_the_reps_other_sessions_only() {
        let live = [
            session(100_000_001, Some(7), 2),
            session(100_000_002, Some(7), 3),
            session(100_000_003, Some(8), 5),
            session(100_000_004, None, 4),
        ];
        assert_eq!(load_elsewhere(number(100_000_001), live), 3);
        assert_eq!(load_elsewhere(number(100_000_002), live), 2);
        assert_eq!(load_elsewhere(number(100_000_003), live), 0);
        // No primary rep in the session (away for good, or not known): nothing counted.
        assert_eq!(load_elsewhere(number(100_000_004), live), 0);
        assert_eq!(load_elsewhere(number(100_000_009), live), 0);
    }
}
