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

use super::pipeline::Out;
use super::{Outbound, OutboundTx, Refusal, Registry, Seat, Site, StoredOffer, rep_info};
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
        let mut site = self.lock_site();
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
        site.webacd.directory = Directory { agents, router };
        Self::reroute(&self.out, &mut site);
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
        let mut site = self.lock_site();
        site.webacd.desks.insert(
            conn.0,
            Desk {
                account: account.clone(),
                available,
                tx: conn.1,
            },
        );
        Self::reroute(&self.out, &mut site);
        Ok(())
    }

    /// A dashboard closed.
    pub fn desk_closed(&self, conn_id: u64) {
        let mut site = self.lock_site();
        if site.webacd.desks.remove(&conn_id).is_some() {
            Self::reroute(&self.out, &mut site);
        }
    }

    /// Refuse a transfer to an agent or queue that does not exist, before the session
    /// hears of it.
    pub(super) fn check_target(site: &Site, target: &TransferTarget) -> Result<(), Refusal> {
        if site.webacd.directory.router.resolve(target).is_some() {
            return Ok(());
        }
        let what = match target {
            TransferTarget::Agent { agent } => format!("there is no WebACD agent {agent:?}"),
            TransferTarget::Queue { queue } => format!("there is no WebACD queue {queue:?}"),
        };
        Err(Refusal::new(ErrorCode::UnknownTarget, what))
    }

    /// The session asked to be offered (its sender has left it): decide whom it goes to
    /// first, telling nobody yet. Returns the offer as the session keeps it; once that is
    /// queued for the journal, [`Self::tell_offered`] tells the agents, so none hears of an
    /// offer a restart would not make again.
    pub(super) fn offer(
        site: &mut Site,
        number: SessionNumber,
        transfer: WebacdTransfer,
    ) -> StoredOffer {
        let route = site.webacd.directory.router.resolve(&transfer.target);
        let mut offer = Offer {
            from: transfer.from_name,
            target: transfer.target,
            route,
            message: transfer.message,
            to: Vec::new(),
        };
        offer.to = Self::whom(site, &offer);
        let kept = StoredOffer {
            from: offer.from.clone(),
            target: offer.target.clone(),
            route,
            message: offer.message.clone(),
            to: offer.to.clone(),
        };
        site.webacd.offers.insert(number, offer);
        kept
    }

    /// Tell the agents a session was just offered to (see [`Self::offer`]), and refresh
    /// every dashboard.
    pub(super) fn tell_offered(out: &Out, site: &Site, number: SessionNumber) {
        if let Some(offer) = site.webacd.offers.get(&number) {
            let offered = Self::offered(number, offer);
            for desk in site.webacd.desks.values() {
                if offer.to.contains(&desk.account.id) {
                    out.send(&desk.tx, Outbound::Message(offered.clone()));
                }
            }
        }
        Self::publish(out, site);
    }

    fn offered(number: SessionNumber, offer: &Offer) -> ServerMessage {
        ServerMessage::TransferOffered {
            number,
            from: offer.from.clone(),
            target: offer.target.clone(),
            message: offer.message.clone(),
        }
    }

    /// Whom `offer` goes to now.
    fn whom(site: &Site, offer: &Offer) -> Vec<i64> {
        match offer.route {
            Some(route) => site.webacd.directory.router.offer_to(
                route,
                &offer.to,
                |account| Self::available(site, account),
                |account| Self::load(site, account),
            ),
            None => Vec::new(),
        }
    }

    /// A waiting session rebuilt after a restart: offered on, to the agents it was offered
    /// to at its last write first.
    pub(super) fn restore_offer(out: &Out, site: &mut Site, number: SessionNumber, offer: Offer) {
        site.webacd.offers.insert(number, offer);
        Self::reroute(out, site);
    }

    /// The session ended or was taken: it waits no more.
    pub(super) fn withdraw(out: &Out, site: &mut Site, number: SessionNumber) {
        if site.webacd.offers.remove(&number).is_some() {
            Self::reroute(out, site);
        }
    }

    /// R10: an agent accepts a session offered to them.
    pub fn accept_transfer(
        &self,
        conn: (u64, OutboundTx),
        account: &Account,
        number: SessionNumber,
        join_key: Option<&str>,
    ) -> Result<Seat, Refusal> {
        let not_offered = || {
            Refusal::new(
                ErrorCode::NoTransferPending,
                format!(
                    "session {number} is not offered to you now; another agent may have taken it"
                ),
            )
        };
        // A session that ended meanwhile is not offered any more either.
        let mut op = self.op_any(number).ok_or_else(not_offered)?;
        // Sent again after its answer was lost: the offer is gone, taken by this very
        // accept, whose place the key brings back.
        let key = join_key.map(crate::clock::hash_secret);
        if let Some(place) = self.keyed_place(&mut op, key.as_deref())? {
            if self.is_suspended() {
                return Err(super::restarting());
            }
            return self.take_place(&mut op, place, Some(account), conn, super::Came::Key);
        }
        let offered = op
            .site()
            .webacd
            .offers
            .get(&number)
            .is_some_and(|o| o.to.contains(&account.id));
        if !offered {
            return Err(not_offered());
        }
        // After the offer is checked: while the server stops, nobody learns which
        // numbers are live.
        if self.is_suspended() {
            return Err(super::restarting());
        }
        let join = Join {
            id: tandem_protocol::ParticipantId(self.next_id()),
            name: account.display_name.clone(),
            kind: JoinKind::TransferReceiver(rep_info(account)),
            rep_load_elsewhere: 0,
        };
        let seat = self.join(&mut op, join, conn, Some(account), key)?;
        let (live, site) = op.parts();
        Self::withdraw(&self.out, site, number);
        if let Some(live) = live {
            live.offer = None;
        }
        // On disk without the offer, or a restart would offer a taken session again.
        self.persist(&mut op);
        Ok(seat)
    }

    /// Live sessions in which this account is the primary rep.
    fn load(site: &Site, account: i64) -> u32 {
        site.loads
            .values()
            .filter(|load| load.primary_account == Some(account))
            .count() as u32
    }

    fn available(site: &Site, account: i64) -> bool {
        site.webacd
            .desks
            .values()
            .any(|d| d.account.id == account && d.available)
    }

    /// Decide who every waiting session is offered to, tell the newly chosen agents, and
    /// refresh every dashboard.
    fn reroute(out: &Out, site: &mut Site) {
        let numbers: Vec<SessionNumber> = site.webacd.offers.keys().copied().collect();
        for number in numbers {
            let Some(offer) = site.webacd.offers.get(&number) else {
                continue;
            };
            let to = Self::whom(site, offer);
            let Some(offer) = site.webacd.offers.get_mut(&number) else {
                continue;
            };
            let newly: Vec<i64> = to
                .iter()
                .copied()
                .filter(|a| !offer.to.contains(a))
                .collect();
            offer.to = to;
            let offered = Self::offered(number, offer);
            for desk in site.webacd.desks.values() {
                if newly.contains(&desk.account.id) {
                    out.send(&desk.tx, Outbound::Message(offered.clone()));
                }
            }
        }
        Self::publish(out, site);
    }

    /// Every dashboard's view: agents, availability, load, and the waiting sessions of the
    /// agent's queues (and those sent to them).
    fn publish(out: &Out, site: &Site) {
        let agents: Vec<WebacdAgent> = site
            .webacd
            .directory
            .agents
            .iter()
            .map(|a| WebacdAgent {
                agent: a.username.clone(),
                name: a.display_name.clone(),
                available: Self::available(site, a.id),
                sessions: Self::load(site, a.id),
            })
            .collect();
        for desk in site.webacd.desks.values() {
            let me = desk.account.id;
            let waiting = site
                .webacd
                .offers
                .iter()
                .filter(|(_, o)| {
                    o.route
                        .is_some_and(|r| site.webacd.directory.router.concerns(r, me))
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
            out.send(&desk.tx, Outbound::Message(state));
        }
    }

    /// Session loads changed (a session started or ended, or its primary rep changed):
    /// dashboards show the new counts.
    pub(super) fn loads_changed(out: &Out, site: &mut Site) {
        if !site.webacd.desks.is_empty() {
            Self::reroute(out, site);
        }
    }
}
