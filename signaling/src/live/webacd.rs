//! WebACD at the server (R10): agents' dashboards and their availability, the sessions
//! waiting for an agent, and telling agents of offers. Who a waiting session is offered
//! to is decided by `tandem_session::Directory` (by account and queue ids); the session
//! itself (who may transfer, the 345-character message, the sender leaving, the call
//! ending) is `tandem-session`'s too.

use std::collections::{BTreeMap, HashMap};

use tandem_protocol::{
    ErrorCode, ServerMessage, SessionNumber, TransferTarget, WaitingTransfer, WebacdAgent,
};
use tandem_session::{Join, JoinKind, RouteTarget, WebacdTransfer};

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
    /// As the transfer named it (what dashboards show).
    pub(super) target: TransferTarget,
    /// The agent or queue it goes to, looked up once when it began to wait; `None` when
    /// there was none by that name (then it is offered to nobody).
    pub(super) route: Option<RouteTarget>,
    pub(super) message: Option<String>,
    /// Accounts it is offered to now.
    pub(super) to: Vec<i64>,
}

/// The WebACD agents and queues, as the admin set them up.
#[derive(Default)]
pub(super) struct Directory {
    /// For the dashboards' list of agents.
    agents: Vec<Account>,
    /// For routing.
    router: tandem_session::Directory,
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
        let agents: Vec<Account> = accounts
            .into_iter()
            .filter(|a| a.is_webacd && !a.disabled)
            .collect();
        let router = tandem_session::Directory {
            agents: agents
                .iter()
                .map(|a| tandem_session::DirectoryAgent {
                    account: a.id,
                    username: a.username.clone(),
                })
                .collect(),
            queues: queues
                .into_iter()
                .map(|q: Queue| tandem_session::DirectoryQueue {
                    id: q.id,
                    name: q.name,
                    members: q.members,
                    auto_assign: q.auto_assign,
                })
                .collect(),
        };
        inner.webacd.directory = Directory { agents, router };
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
        if inner.webacd.directory.router.resolve(target).is_some() {
            return Ok(());
        }
        let what = match target {
            TransferTarget::Agent { agent } => format!("there is no WebACD agent {agent:?}"),
            TransferTarget::Queue { queue } => format!("there is no WebACD queue {queue:?}"),
        };
        Err(Refusal::new(ErrorCode::UnknownTarget, what))
    }

    /// The session asked to be offered (its sender has left it).
    pub(super) fn offer(inner: &mut Inner, number: SessionNumber, transfer: WebacdTransfer) {
        let route = inner.webacd.directory.router.resolve(&transfer.target);
        inner.webacd.offers.insert(
            number,
            Offer {
                from: transfer.from_name,
                target: transfer.target,
                route,
                message: transfer.message,
                to: Vec::new(),
            },
        );
        Self::reroute(inner);
    }

    /// A waiting session rebuilt after a restart: offered on to the same agents.
    pub(super) fn restore_offer(inner: &mut Inner, number: SessionNumber, offer: Offer) {
        inner.webacd.offers.insert(number, offer);
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
        // On disk without the offer, or a restart would offer a taken session again.
        self.persist(&mut inner, number);
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
            let to = match offer.route {
                Some(route) => inner.webacd.directory.router.offer_to(
                    route,
                    &offer.to,
                    |account| Self::available(inner, account),
                    |account| Self::load(inner, account),
                ),
                None => Vec::new(),
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
                    inner.out.send(&desk.tx, Outbound::Message(offered.clone()));
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
                .filter(|(_, o)| {
                    o.route
                        .is_some_and(|r| inner.webacd.directory.router.concerns(r, me))
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
            inner.out.send(&desk.tx, Outbound::Message(state));
        }
    }

    /// Session loads changed (a session started or ended): dashboards show the new counts.
    pub(super) fn loads_changed(inner: &mut Inner) {
        if !inner.webacd.desks.is_empty() {
            Self::reroute(inner);
        }
    }
}
