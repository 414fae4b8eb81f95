//! R10 routing without I/O: who a session waiting for a WebACD agent is offered to.
//!
//! The transfer names its target as the people typed it (an agent's account name, a
//! queue's name). That name is looked up once, when the session starts waiting
//! ([`Directory::resolve`]); from then on the offer follows the account or queue by id:
//! a waiting customer stays with the queue they were sent to, whatever its name becomes,
//! and a queue deleted meanwhile (even if another is made with the same name) offers them
//! to nobody (the rep who sent them is gone; the session waits until an admin ends it).
//!
//! A session sent to an agent is offered to that agent. One sent to a queue is offered to
//! every available member, or, for a queue that distributes automatically, to the
//! available member with the fewest sessions (then the lowest id). An offer stays with the
//! agents it was made to while they are still the target or in the queue: availability
//! decides who is offered a session, not who may take it.

use tandem_protocol::TransferTarget;

/// The WebACD agents and queues, as the admin set them up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    pub agents: Vec<DirectoryAgent>,
    pub queues: Vec<DirectoryQueue>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryAgent {
    pub account: i64,
    pub username: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryQueue {
    pub id: i64,
    pub name: String,
    /// Account ids of its agents.
    pub members: Vec<i64>,
    pub auto_assign: bool,
}

/// Where a waiting session goes, by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RouteTarget {
    Agent(i64),
    Queue(i64),
}

impl Directory {
    /// The agent or queue a transfer names (case-insensitively), or `None` when there is
    /// none by that name.
    pub fn resolve(&self, target: &TransferTarget) -> Option<RouteTarget> {
        match target {
            TransferTarget::Agent { agent } => self
                .agents
                .iter()
                .find(|a| a.username.eq_ignore_ascii_case(agent))
                .map(|a| RouteTarget::Agent(a.account)),
            TransferTarget::Queue { queue } => self
                .queues
                .iter()
                .find(|q| q.name.eq_ignore_ascii_case(queue))
                .map(|q| RouteTarget::Queue(q.id)),
        }
    }

    /// Whether a session sent to `target` is this account's business: they are the agent
    /// (still a WebACD agent), or a member of the queue.
    pub fn concerns(&self, target: RouteTarget, account: i64) -> bool {
        match target {
            RouteTarget::Agent(id) => {
                id == account && self.agents.iter().any(|a| a.account == account)
            }
            RouteTarget::Queue(id) => self.queue(id).is_some_and(|q| q.members.contains(&account)),
        }
    }

    /// Who a session sent to `target` is offered to now, given who it was offered to
    /// `before`, who is `available`, and each agent's `load` (live sessions as primary).
    pub fn offer_to(
        &self,
        target: RouteTarget,
        before: &[i64],
        available: impl Fn(i64) -> bool,
        load: impl Fn(i64) -> u32,
    ) -> Vec<i64> {
        let automatic = matches!(target, RouteTarget::Queue(id)
            if self.queue(id).is_some_and(|q| q.auto_assign));
        let chosen: Vec<i64> = match target {
            RouteTarget::Agent(id) => self
                .agents
                .iter()
                .filter(|a| a.account == id)
                .map(|a| a.account)
                .collect(),
            RouteTarget::Queue(id) => {
                let members: Vec<i64> = self
                    .queue(id)
                    .map(|q| {
                        q.members
                            .iter()
                            .copied()
                            .filter(|m| available(*m))
                            .collect()
                    })
                    .unwrap_or_default();
                if automatic {
                    members
                        .iter()
                        .copied()
                        .min_by_key(|m| (load(*m), *m))
                        .into_iter()
                        .collect()
                } else {
                    members
                }
            }
        };
        let kept: Vec<i64> = before
            .iter()
            .copied()
            .filter(|a| self.concerns(target, *a))
            .collect();
        if automatic && !kept.is_empty() {
            return kept;
        }
        let mut all = kept;
        for account in chosen {
            if !all.contains(&account) {
                all.push(account);
            }
        }
        all
    }

    fn queue(&self, id: i64) -> Option<&DirectoryQueue> {
        self.queues.iter().find(|q| q.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> Directory {
        Directory {
            agents: [(1, "ann"), (2, "bob"), (3, "cid")]
                .into_iter()
                .map(|(account, name)| DirectoryAgent {
                    account,
                    username: name.into(),
                })
                .collect(),
            queues: vec![
                DirectoryQueue {
                    id: 10,
                    name: "Printers".into(),
                    members: vec![1, 2, 3],
                    auto_assign: false,
                },
                DirectoryQueue {
                    id: 11,
                    name: "Billing".into(),
                    members: vec![1, 2, 3],
                    auto_assign: true,
                },
            ],
        }
    }

    fn queue(name: &str) -> TransferTarget {
        TransferTarget::Queue { queue: name.into() }
    }

    #[test]
    fn r10_a_name_is_looked_up_once_then_the_offer_follows_the_id() {
        let mut d = directory();
        assert_eq!(d.resolve(&queue("printers")), Some(RouteTarget::Queue(10)));
        let agent = TransferTarget::Agent {
            agent: "BOB".into(),
        };
        assert_eq!(d.resolve(&agent), Some(RouteTarget::Agent(2)));
        assert_eq!(d.resolve(&queue("Nobody")), None);
        // Should the queue be renamed while a session waits, it is still offered.
        d.queues[0].name = "Printers and scanners".into();
        let to = d.offer_to(RouteTarget::Queue(10), &[], |_| true, |_| 0);
        assert_eq!(to, vec![1, 2, 3]);
        assert_eq!(d.resolve(&queue("Printers")), None, "the old name is gone");
    }

    #[test]
    fn r10_a_queue_offers_to_its_available_members_and_keeps_earlier_offers() {
        let d = directory();
        let to = d.offer_to(RouteTarget::Queue(10), &[], |a| a != 2, |_| 0);
        assert_eq!(to, vec![1, 3]);
        // Ann goes unavailable (to open the session): her offer stays; Bob comes.
        let to = d.offer_to(RouteTarget::Queue(10), &to, |a| a == 2, |_| 0);
        assert_eq!(to, vec![1, 3, 2]);
    }

    #[test]
    fn r10_automatic_distribution_picks_the_least_loaded_and_sticks_to_it() {
        let d = directory();
        let load = |a: i64| match a {
            1 => 3,
            2 => 1,
            _ => 1,
        };
        let to = d.offer_to(RouteTarget::Queue(11), &[], |_| true, load);
        assert_eq!(to, vec![2], "fewest sessions, then the lowest id");
        let to = d.offer_to(RouteTarget::Queue(11), &to, |_| true, |_| 0);
        assert_eq!(to, vec![2], "kept while still a member");
    }

    #[test]
    fn r10_someone_no_longer_the_target_loses_the_offer() {
        let mut d = directory();
        let to = d.offer_to(RouteTarget::Queue(10), &[], |_| true, |_| 0);
        d.queues[0].members.retain(|m| *m != 3);
        let to = d.offer_to(RouteTarget::Queue(10), &to, |_| false, |_| 0);
        assert_eq!(to, vec![1, 2]);
        // An agent who is no longer a WebACD agent is offered nothing.
        d.agents.retain(|a| a.account != 2);
        assert!(
            d.offer_to(RouteTarget::Agent(2), &[2], |_| true, |_| 0)
                .is_empty()
        );
        assert!(!d.concerns(RouteTarget::Agent(2), 2));
    }
}
