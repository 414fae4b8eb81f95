//! WebACD at the server (R10): agents' dashboards and their availability, the sessions
//! waiting for an agent, and who they are offered to. A session transferred to one agent
//! is offered to that agent; one transferred to a queue is offered to every available
//! member, or, for a queue that distributes automatically, to the available member with
//! the fewest sessions. An offer stays with the agents it was made to: availability
//! decides who is offered a session, not who may take it. The session itself (who may transfer, the 345-character message,
//! the sender leaving, the call ending) is `tandem-session`'s.

use std::collections::{BTreeMap, HashMap};

use tandem_protocol::{
    ErrorCode, ServerMessage, SessionNumber, TransferTarget, WaitingTransfer, WebacdAgent,
};
use tandem_session::{Join, JoinKind, WebacdTransfer};

use super::{Inner, Outbound, OutboundTx, Refusal, Registry, Seat, rep_info};
use crate::store::{Account, Queue};

/// An agent's dashboard connection.
pub(super) struct Desk {
    account: Account,
    available: bool,
    tx: OutboundTx,
}

/// A session waiting for an agent.
pub(super) struct Offer {
    pub(super) from: String,
    pub(super) target: TransferTarget,
    pub(super) message: Option<String>,
    /// Accounts it is offered to now.
    to: Vec<i64>,
}

/// The WebACD agents and queues, as the admin set them up.
#[derive(Default)]
pub(super) struct Directory {
    agents: Vec<Account>,
    queues: Vec<Queue>,
}

#[derive(Default)]
pub(super) struct Webacd {
    desks: HashMap<u64, Desk>,
    pub(super) offers: BTreeMap<SessionNumber, Offer>,
    directory: Directory,
}

impl Registry {
    /// The admin changed reps or queues: route again with the new directory.
    pub fn set_directory(&self, accounts: Vec<Account>, queues: Vec<Queue>) {
        let mut inner = self.lock();
        inner.webacd.directory = Directory {
            agents: accounts
                .into_iter()
                .filter(|a| a.is_webacd && !a.disabled)
                .collect(),
            queues,
        };
        Self::reroute(&mut inner);
    }

    /// A dashboard says whether its agent is available (first message, or a change).
    pub fn desk(
        &self,
        conn: (u64, OutboundTx),
        account: &Account,
        available: bool,
    ) -> Result<(), Refusal> {
        if !account.is_webacd {
            return Err(Refusal::new(
                ErrorCode::NotWebacdAgent,
                "only WebACD agents have the WebACD dashboard; an admin can make you one",
            ));
        }
        let mut inner = self.lock();
        inner.webacd.desks.insert(
            conn.0,
            Desk {
                account: account.clone(),
                available,
                tx: conn.1,
            },
        );
        Self::reroute(&mut inner);
        Ok(())
    }

    /// A dashboard closed.
    pub fn desk_closed(&self, conn_id: u64) {
        let mut inner = self.lock();
        if inner.webacd.desks.remove(&conn_id).is_some() {
            Self::reroute(&mut inner);
        }
    }

    /// Refuse a transfer to an agent or queue that does not exist, before the session
    /// hears of it.
    pub(super) fn check_target(inner: &Inner, target: &TransferTarget) -> Result<(), Refusal> {
        let directory = &inner.webacd.directory;
        match target {
            TransferTarget::Agent { agent } => {
                if !directory
                    .agents
                    .iter()
                    .any(|a| a.username.eq_ignore_ascii_case(agent))
                {
                    return Err(Refusal::new(
                        ErrorCode::UnknownTarget,
                        format!("there is no WebACD agent {agent:?}"),
                    ));
                }
            }
            TransferTarget::Queue { queue } => {
                if !directory
                    .queues
                    .iter()
                    .any(|q| q.name.eq_ignore_ascii_case(queue))
                {
                    return Err(Refusal::new(
                        ErrorCode::UnknownTarget,
                        format!("there is no WebACD queue {queue:?}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The session asked to be offered (its sender has left it).
    pub(super) fn offer(inner: &mut Inner, number: SessionNumber, transfer: WebacdTransfer) {
        inner.webacd.offers.insert(
            number,
            Offer {
                from: transfer.from_name,
                target: transfer.target,
                message: transfer.message,
                to: Vec::new(),
            },
        );
        Self::reroute(inner);
    }

    /// The session ended or was taken: it waits no more.
    pub(super) fn withdraw(inner: &mut Inner, number: SessionNumber) {
        if inner.webacd.offers.remove(&number).is_some() {
            Self::reroute(inner);
        }
    }

    /// R10: an agent accepts a session offered to them.
    pub fn accept_transfer(
        &self,
        conn: (u64, OutboundTx),
        account: &Account,
        number: SessionNumber,
    ) -> Result<Seat, Refusal> {
        let mut inner = self.lock();
        let offered = inner
            .webacd
            .offers
            .get(&number)
            .is_some_and(|o| o.to.contains(&account.id));
        if !offered {
            return Err(Refusal::new(
                ErrorCode::NoTransferPending,
                format!(
                    "session {number} is not offered to you now; another agent may have taken it"
                ),
            ));
        }
        let join = Join {
            id: tandem_protocol::ParticipantId(self.next_id()),
            name: account.display_name.clone(),
            kind: JoinKind::TransferReceiver(rep_info(account)),
            rep_load_elsewhere: 0,
        };
        let seat = self.join(&mut inner, number, join, conn, Some(account))?;
        Self::withdraw(&mut inner, number);
        Ok(seat)
    }

    /// Live sessions in which this account is the primary rep.
    fn load(inner: &Inner, account: i64) -> u32 {
        inner
            .sessions
            .values()
            .filter(|live| live.primary_account() == Some(account))
            .count() as u32
    }

    fn available(inner: &Inner, account: i64) -> bool {
        inner
            .webacd
            .desks
            .values()
            .any(|d| d.account.id == account && d.available)
    }

    /// Decide who every waiting session is offered to, tell the newly chosen agents, and
    /// refresh every dashboard.
    fn reroute(inner: &mut Inner) {
        let numbers: Vec<SessionNumber> = inner.webacd.offers.keys().copied().collect();
        for number in numbers {
            let Some(offer) = inner.webacd.offers.get(&number) else {
                continue;
            };
            let to: Vec<i64> = match &offer.target {
                TransferTarget::Agent { agent } => inner
                    .webacd
                    .directory
                    .agents
                    .iter()
                    .filter(|a| a.username.eq_ignore_ascii_case(agent))
                    .map(|a| a.id)
                    .collect(),
                TransferTarget::Queue { queue } => {
                    let members: Vec<i64> = inner
                        .webacd
                        .directory
                        .queues
                        .iter()
                        .find(|q| q.name.eq_ignore_ascii_case(queue))
                        .map(|q| q.members.clone())
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|m| Self::available(inner, *m))
                        .collect();
                    let automatic = inner
                        .webacd
                        .directory
                        .queues
                        .iter()
                        .any(|q| q.name.eq_ignore_ascii_case(queue) && q.auto_assign);
                    if automatic {
                        // The available member with the fewest sessions (then the lowest id).
                        members
                            .iter()
                            .copied()
                            .min_by_key(|m| (Self::load(inner, *m), *m))
                            .into_iter()
                            .collect()
                    } else {
                        members
                    }
                }
            };
            // An offer stays with the agents it was made to while they are still the target
            // or in the queue: availability decides who is offered a session, not who may
            // take it (leaving the dashboard to open the session must not lose it).
            let Some(before) = inner.webacd.offers.get(&number) else {
                continue;
            };
            let eligible = |account: i64| match &before.target {
                TransferTarget::Agent { agent } => inner
                    .webacd
                    .directory
                    .agents
                    .iter()
                    .any(|a| a.id == account && a.username.eq_ignore_ascii_case(agent)),
                TransferTarget::Queue { queue } => inner
                    .webacd
                    .directory
                    .queues
                    .iter()
                    .any(|q| q.name.eq_ignore_ascii_case(queue) && q.members.contains(&account)),
            };
            let kept: Vec<i64> = before.to.iter().copied().filter(|a| eligible(*a)).collect();
            let automatic = matches!(&before.target, TransferTarget::Queue { queue } if inner
                .webacd
                .directory
                .queues
                .iter()
                .any(|q| q.name.eq_ignore_ascii_case(queue) && q.auto_assign));
            let to: Vec<i64> = if automatic && !kept.is_empty() {
                kept
            } else {
                let mut all = kept;
                for account in to {
                    if !all.contains(&account) {
                        all.push(account);
                    }
                }
                all
            };
            let Some(offer) = inner.webacd.offers.get_mut(&number) else {
                continue;
            };
            let newly: Vec<i64> = to
                .iter()
                .copied()
                .filter(|a| !offer.to.contains(a))
                .collect();
            offer.to = to;
            let offered = ServerMessage::TransferOffered {
                number,
                from: offer.from.clone(),
                target: offer.target.clone(),
                message: offer.message.clone(),
            };
            for desk in inner.webacd.desks.values() {
                if newly.contains(&desk.account.id) {
                    desk.tx.send(Outbound::Message(offered.clone()));
                }
            }
        }
        Self::publish(inner);
    }

    /// Every dashboard's view: agents, availability, load, and the waiting sessions of the
    /// agent's queues (and those sent to them).
    fn publish(inner: &Inner) {
        let agents: Vec<WebacdAgent> = inner
            .webacd
            .directory
            .agents
            .iter()
            .map(|a| WebacdAgent {
                agent: a.username.clone(),
                name: a.display_name.clone(),
                available: Self::available(inner, a.id),
                sessions: Self::load(inner, a.id),
            })
            .collect();
        for desk in inner.webacd.desks.values() {
            let me = desk.account.id;
            let waiting = inner
                .webacd
                .offers
                .iter()
                .filter(|(_, o)| match &o.target {
                    TransferTarget::Agent { agent } => {
                        agent.eq_ignore_ascii_case(&desk.account.username)
                    }
                    TransferTarget::Queue { queue } => inner
                        .webacd
                        .directory
                        .queues
                        .iter()
                        .any(|q| q.name.eq_ignore_ascii_case(queue) && q.members.contains(&me)),
                })
                .map(|(number, o)| WaitingTransfer {
                    number: *number,
                    from: o.from.clone(),
                    target: o.target.clone(),
                    message: o.message.clone(),
                    for_you: o.to.contains(&me),
                })
                .collect();
            let state = ServerMessage::WebacdState {
                available: desk.available,
                agents: agents.clone(),
                waiting,
            };
            desk.tx.send(Outbound::Message(state));
        }
    }

    /// Session loads changed (a session started or ended): dashboards show the new counts.
    pub(super) fn loads_changed(inner: &mut Inner) {
        if !inner.webacd.desks.is_empty() {
            Self::reroute(inner);
        }
    }
}
