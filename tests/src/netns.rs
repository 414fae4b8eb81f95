//! A small internet in network namespaces, for tests that need real NATs, firewalls and
//! slow links between the customer, the rep and the server.
//!
//! ```text
//!  this process        srv 198.18.N.1 (the server)       gateway 198.18.N.254
//!  198.18.N.100 ──┐         │                            (a dead end: the wan
//!  (reaches srv   │         │                             has no way out)
//!   only)         └──── wan: a bridge, 198.18.N.0/24 ─────────┘
//!                    ┌──────┘                      └──────┐
//!      nat1: the customer's router        nat2: the rep's router
//!      out 198.18.N.11, lan 10.1.0.1      out 198.18.N.12, lan 10.2.0.1
//!                    │                                    │
//!      cust 10.1.0.2 (default via nat1)   rep 10.2.0.2 (default via nat2)
//! ```
//!
//! With [`Nat::None`] a site has no router: its host sits on the wan with the router's
//! outside address. Each of `wan`, `srv`, `nat1`, `cust`, `nat2` and `rep` is a namespace
//! named `<tag>-<role>`, where the tag (`tdm<pid>-<n>`) is unique to one [`Topology`] of
//! one process; the only interface in the root namespace is the management link, named by
//! the tag itself. Private addresses exist only inside a topology's namespaces, so they
//! are the same in every topology; the wan's /24 is also routed in the root namespace, so
//! each live topology holds its own `N` (see [`Topology::build`]). IPv4 only.
//!
//! A router ([`Nat`]) masquerades its LAN behind its outside address and lets in only
//! what belongs to a flow its LAN started; it answers nothing from outside itself.
//!
//! This process reaches the server through the management link, which the wan's bridge
//! connects to `srv` and to nothing else, so no host gains a path through this process.
//! Any other TCP port inside a namespace is reached through a Unix socket
//! ([`Topology::forward`]): that is how [`crate::Chromedriver::start_in`] drives a
//! Chromium running in `rep` without giving `rep` a second way out.
//!
//! An X server started in the root namespace (e.g. [`crate::PatternDisplay`]) serves
//! every namespace through its socket file `/tmp/.X11-unix/X<n>`: the filesystem is
//! shared, while abstract sockets are per network namespace. x11rb (the agent's X
//! library) only uses the file; libxcb tries the abstract socket, then the file.
//!
//! Impairments ([`Topology::impair`], [`Topology::blackout`], [`Topology::starve`]) act on
//! a host's access link, the wire between its site and the wan, in both directions, never
//! on a LAN.
//!
//! In a test: the server binary runs in `srv` with `--bind` [`Topology::server_ip`], and
//! this process calls it there; the agent runs in `cust` through [`Topology::command`],
//! with `--display` of a display started here; a rep's Chromium comes from
//! [`crate::Chromedriver::start_in`] with `Host::Rep`.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// What stands between a host and the wan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    /// A new external port for every flow (address-and-port-dependent mapping: nftables
    /// `masquerade random,fully-random`), so a reflexive address is useless to anyone but
    /// the server it was learned from.
    Symmetric,
    /// The external port is the host's own port whenever it is free (endpoint-independent
    /// mapping: plain `masquerade`), as most home routers do. Filtering is the same as
    /// [`Nat::Symmetric`]'s: only replies from the exact address and port a flow went to
    /// (a "port-restricted cone").
    PortPreserving,
    /// No router: the host sits on the wan with a public address and no firewall.
    None,
}

/// Which site has what router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopologySpec {
    pub customer: Nat,
    /// The customer's router forwards only TCP outward (UDP is dropped), as a corporate
    /// firewall does. Needs a router.
    pub customer_udp_blocked: bool,
    pub rep: Nat,
    /// The same for the rep's router.
    pub rep_udp_blocked: bool,
    /// The customer's access link is a [`crate::delay_line::DelayLine`] in this process
    /// instead of a veth, so [`Impairment::delay_ms`] works on it without netem.
    pub customer_delay_line: bool,
}

impl Default for TopologySpec {
    fn default() -> Self {
        Self {
            customer: Nat::PortPreserving,
            customer_udp_blocked: false,
            rep: Nat::PortPreserving,
            rep_udp_blocked: false,
            customer_delay_line: false,
        }
    }
}

/// A machine of the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Host {
    /// The server, on the wan.
    Srv,
    /// The customer's machine.
    Cust,
    /// The customer's router (`nat1`); only with a [`Nat`] other than `None`.
    CustRouter,
    /// The rep's machine.
    Rep,
    /// The rep's router (`nat2`); only with a [`Nat`] other than `None`.
    RepRouter,
}

/// What a bad link does, to each direction separately (so `delay_ms` adds twice itself to
/// the round trip).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Impairment {
    /// A bottleneck of this many kilobits per second (a token bucket with a 200 ms queue,
    /// beyond which packets are dropped); `None` for the link's own speed.
    pub rate_kbit: Option<u32>,
    /// Extra one-way delay. Needs netem in the kernel (`CONFIG_NET_SCH_NETEM`), which
    /// some kernels lack (this machine's), or a link that is a delay line
    /// ([`TopologySpec::customer_delay_line`]): [`Topology::impair`] says so instead of
    /// ignoring it.
    pub delay_ms: u32,
    /// The share of IP packets dropped at random, in percent (0 to 100, by 0.01).
    pub loss_pct: f32,
}

impl Impairment {
    fn shapes(&self) -> bool {
        self.rate_kbit.is_some() || self.delay_ms > 0
    }

    fn only_rate(&self) -> bool {
        self.rate_kbit.is_some() && self.delay_ms == 0
    }
}

/// The three access links, one per site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Site {
    Server,
    Customer,
    Rep,
}

impl Site {
    /// The link's port on the wan's bridge.
    fn port(self) -> &'static str {
        match self {
            Site::Server => "srv",
            Site::Customer => "cust",
            Site::Rep => "rep",
        }
    }

    /// The last byte of the site's public address.
    fn public_host_byte(self) -> u8 {
        match self {
            Site::Server => 1,
            Site::Customer => 11,
            Site::Rep => 12,
        }
    }
}

/// How an access link is impaired now.
#[derive(Debug, Default, Clone, Copy)]
struct LinkState {
    impairment: Impairment,
    blackout: bool,
    /// Only packets of at most [`STARVED_MAX_BYTES`] pass.
    starved: bool,
}

/// What a starved link still carries: ICE checks and RTCP, not a video packet.
const STARVED_MAX_BYTES: u32 = 400;

const WAN_GATEWAY: u8 = 254;
/// The customer's router's outside address after [`Topology::renumber_customer`].
const RENUMBERED: u8 = 13;
const MANAGEMENT: u8 = 100;
/// The longest interface name Linux takes.
const IFNAME_MAX: usize = 15;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// One test's network: the namespaces, links and rules of the module's picture, all
/// removed on drop, together with every process still running inside them.
#[derive(Debug)]
pub struct Topology {
    tag: String,
    slot: u8,
    spec: TopologySpec,
    /// Every namespace made so far, in the order made.
    namespaces: Vec<String>,
    management_link: bool,
    links: Mutex<HashMap<Site, LinkState>>,
    /// The customer's access link, when it is a delay line.
    delay_line: Option<crate::delay_line::DelayLine>,
    /// Held while the topology lives: its claim on `198.18.<slot>.0/24` in the root
    /// namespace (see `claim_slot`).
    _slot: UnixListener,
}

impl Topology {
    /// Build the topology. Needs root (CAP_NET_ADMIN and mounting, for `ip netns`),
    /// iproute2, nftables and socat; without them this fails and says what is missing.
    ///
    /// The wan's subnet `198.18.N.0/24` is the only thing shared between topologies (it is
    /// routed in the root namespace): each topology claims its `N` by binding the abstract
    /// Unix socket `tandem-netns-198.18.N`, which the kernel frees when the process ends,
    /// even by a crash. A subnet still routed in the root namespace (left by a run killed
    /// before it could clean up) is skipped, not removed.
    pub fn build(spec: TopologySpec) -> anyhow::Result<Self> {
        ensure_root()?;
        if spec.customer_udp_blocked && spec.customer == Nat::None
            || spec.rep_udp_blocked && spec.rep == Nat::None
        {
            bail!("udp_blocked needs a router: it is the router that drops UDP");
        }
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("tdm{}-{n}", std::process::id());
        if tag.len() > IFNAME_MAX {
            bail!("the tag {tag} is too long for an interface name");
        }
        let (slot, lock) = claim_slot()?;
        let mut topology = Self {
            tag,
            slot,
            spec,
            namespaces: Vec::new(),
            management_link: false,
            links: Mutex::new(HashMap::new()),
            delay_line: None,
            _slot: lock,
        };
        // On an error, dropping `topology` removes whatever was made.
        topology.make()?;
        Ok(topology)
    }

    fn make(&mut self) -> anyhow::Result<()> {
        let wan = self.add_namespace("wan")?;
        let gateway = self.wan_cidr(WAN_GATEWAY);
        ip(&format!("-n {wan} link add br0 type bridge"))?;
        ip(&format!("-n {wan} addr add {gateway} dev br0"))?;
        ip(&format!("-n {wan} link set br0 up"))?;
        let srv = self.add_namespace("srv")?;
        self.attach_to_wan(Site::Server, &srv, "eth0")?;
        self.make_site(Site::Customer, "nat1", "cust", 1)?;
        self.make_site(Site::Rep, "nat2", "rep", 2)?;
        self.make_management_link()
    }

    /// A site: its host on the wan itself, or behind its router on `10.<lan>.0.0/24`.
    fn make_site(&mut self, site: Site, router: &str, host: &str, lan: u8) -> anyhow::Result<()> {
        let nat = self.nat(site);
        if nat == Nat::None {
            let host = self.add_namespace(host)?;
            return self.attach_to_wan(site, &host, "eth0");
        }
        let router = self.add_namespace(router)?;
        self.attach_to_wan(site, &router, "out")?;
        let host = self.add_namespace(host)?;
        ip(&format!(
            "-n {router} link add lan type veth peer name eth0 netns {host}"
        ))?;
        ip(&format!("-n {router} addr add 10.{lan}.0.1/24 dev lan"))?;
        ip(&format!("-n {router} link set lan up"))?;
        ip(&format!("-n {host} addr add 10.{lan}.0.2/24 dev eth0"))?;
        ip(&format!("-n {host} link set eth0 up"))?;
        ip(&format!("-n {host} route add default via 10.{lan}.0.1"))?;
        exec_in(&router, "sysctl -qw net.ipv4.ip_forward=1")?;
        let udp_blocked = match site {
            Site::Customer => self.spec.customer_udp_blocked,
            _ => self.spec.rep_udp_blocked,
        };
        nft_in(&router, &router_rules(nat, udp_blocked))
    }

    /// The wire from `dev` in `namespace` to the wan's bridge, with the site's public
    /// address and the wan's (dead-end) gateway as default route.
    fn attach_to_wan(&mut self, site: Site, namespace: &str, dev: &str) -> anyhow::Result<()> {
        let wan = self.namespace_named("wan");
        let port = site.port();
        let address = self.wan_cidr(site.public_host_byte());
        let gateway = self.wan_ip(WAN_GATEWAY);
        if site == Site::Customer && self.spec.customer_delay_line {
            // Made in the root namespace under names of this topology's slot (claimed, so
            // unique on the machine), then moved to their places and named there.
            let (outer, inner) = (format!("tdl{}o", self.slot), format!("tdl{}i", self.slot));
            self.delay_line = Some(crate::delay_line::DelayLine::start(&outer, &inner)?);
            ip(&format!("link set {outer} netns {wan} name {port}"))?;
            ip(&format!("link set {inner} netns {namespace} name {dev}"))?;
        } else {
            ip(&format!(
                "-n {wan} link add {port} type veth peer name {dev} netns {namespace}"
            ))?;
        }
        ip(&format!("-n {wan} link set {port} master br0 up"))?;
        ip(&format!("-n {namespace} addr add {address} dev {dev}"))?;
        ip(&format!("-n {namespace} link set {dev} up"))?;
        ip(&format!("-n {namespace} route add default via {gateway}"))?;
        Ok(())
    }

    /// This process's link to the server: a veth from the root namespace to the wan's
    /// bridge, whose rules let it talk to `srv` only.
    fn make_management_link(&mut self) -> anyhow::Result<()> {
        let (wan, tag) = (self.namespace_named("wan"), self.tag.clone());
        let address = self.wan_cidr(MANAGEMENT);
        ip(&format!(
            "link add {tag} type veth peer name mgmt netns {wan}"
        ))?;
        self.management_link = true;
        ip(&format!("-n {wan} link set mgmt master br0 up"))?;
        run(
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{tag}.disable_ipv6=1")],
            None,
        )?;
        ip(&format!("addr add {address} dev {tag}"))?;
        ip(&format!("link set {tag} up"))?;
        nft_in(
            &wan,
            "table bridge tandem {\n\
             \tchain forward {\n\
             \t\ttype filter hook forward priority filter; policy accept;\n\
             \t\tiifname \"mgmt\" oifname != \"srv\" drop\n\
             \t\toifname \"mgmt\" iifname != \"srv\" drop\n\
             \t}\n\
             }\n",
        )
    }

    /// A new namespace `<tag>-<role>` with its loopback up and IPv6 off.
    fn add_namespace(&mut self, role: &str) -> anyhow::Result<String> {
        let name = self.namespace_named(role);
        ip(&format!("netns add {name}")).context(
            "could not create a network namespace: these tests need root and a kernel \
             with network namespaces (CI runs them as root)",
        )?;
        self.namespaces.push(name.clone());
        ip(&format!("-n {name} link set lo up"))?;
        // Before any interface exists, so every one is IPv4 only: no link-local IPv6
        // path across the wan that the routers' rules do not see.
        exec_in(
            &name,
            "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
        )?;
        Ok(name)
    }

    fn namespace_named(&self, role: &str) -> String {
        format!("{}-{role}", self.tag)
    }

    fn wan_ip(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.slot, host)
    }

    fn wan_cidr(&self, host: u8) -> String {
        format!("{}/24", self.wan_ip(host))
    }

    /// What makes this topology's names unique: every namespace starts with `<tag>-`, and
    /// the management link in the root namespace is named `<tag>`.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    pub fn spec(&self) -> TopologySpec {
        self.spec
    }

    /// The server's address, on the wan (reachable from every host, and from this
    /// process).
    pub fn server_ip(&self) -> Ipv4Addr {
        self.wan_ip(Site::Server.public_host_byte())
    }

    /// This process's address on the wan (only `srv` can reach it).
    pub fn management_ip(&self) -> Ipv4Addr {
        self.wan_ip(MANAGEMENT)
    }

    /// The wan's subnet, `198.18.N.0/24`.
    pub fn wan_subnet(&self) -> String {
        self.wan_cidr(0)
    }

    /// The host's own address: what a program there binds and sees as its own (a
    /// router's is its outside one).
    ///
    /// # Panics
    /// For a router the topology does not have.
    pub fn address(&self, host: Host) -> Ipv4Addr {
        let site = self.site(host);
        let behind_router = matches!(host, Host::Cust | Host::Rep) && self.nat(site) != Nat::None;
        match (behind_router, site) {
            (true, Site::Customer) => Ipv4Addr::new(10, 1, 0, 2),
            (true, _) => Ipv4Addr::new(10, 2, 0, 2),
            (false, _) => self.public_ip(host),
        }
    }

    /// The address the host's packets have on the wan (its router's, behind one).
    ///
    /// # Panics
    /// For a router the topology does not have.
    pub fn public_ip(&self, host: Host) -> Ipv4Addr {
        self.wan_ip(self.site(host).public_host_byte())
    }

    /// The namespace of `host`, for `ip netns exec` and the like.
    ///
    /// # Panics
    /// For a router the topology does not have.
    pub fn namespace(&self, host: Host) -> String {
        self.site(host);
        self.namespace_named(match host {
            Host::Srv => "srv",
            Host::Cust => "cust",
            Host::CustRouter => "nat1",
            Host::Rep => "rep",
            Host::RepRouter => "nat2",
        })
    }

    /// `program` to run inside `host`'s namespace (through `ip netns exec`, which becomes
    /// the program: the child is the program itself). Killed on drop, as the harness's
    /// other processes are; the topology's drop kills whatever still runs inside anyway.
    ///
    /// # Panics
    /// For a router the topology does not have.
    pub fn command(&self, host: Host, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec"])
            .arg(self.namespace(host))
            .arg(program)
            .kill_on_drop(true);
        command
    }

    /// A TCP port on this process's loopback that leads to `port` on `host`'s loopback,
    /// through a Unix socket (files are shared across namespaces): a way in for this
    /// process alone, which gives `host` no new path to anywhere.
    pub async fn forward(&self, host: Host, port: u16) -> anyhow::Result<PortForward> {
        PortForward::start(self, host, port).await
    }

    /// Impair `host`'s access link (a host behind a router shares it with the router),
    /// replacing what was set on it before. A change of rate alone keeps what is queued;
    /// other changes drop it, as a real change of line would.
    pub fn impair(&self, host: Host, impairment: Impairment) -> anyhow::Result<()> {
        if !(0.0..=100.0).contains(&impairment.loss_pct) {
            bail!("loss_pct must be between 0 and 100");
        }
        if impairment.rate_kbit == Some(0) {
            bail!("rate_kbit must be more than 0 (for no traffic at all, use blackout)");
        }
        let site = self.site(host);
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        let now = links.get(&site).copied().unwrap_or_default();
        let line = self.delay_line.as_ref().filter(|_| site == Site::Customer);
        if let Some(line) = line {
            // The line delays; the queues on its ends only shape.
            line.set_delay(std::time::Duration::from_millis(impairment.delay_ms.into()));
            let (was, next) = (now.impairment, impairment);
            let undelayed = |i: Impairment| Impairment { delay_ms: 0, ..i };
            for (namespace, dev) in self.link_ends(site) {
                reshape(&namespace, dev, &undelayed(was), &undelayed(next))?;
            }
        } else {
            if impairment.delay_ms > 0 && now.impairment.delay_ms == 0 {
                self.ensure_netem()?;
            }
            for (namespace, dev) in self.link_ends(site) {
                reshape(&namespace, dev, &now.impairment, &impairment)?;
            }
        }
        let next = LinkState { impairment, ..now };
        self.filter(site, &next)?;
        links.insert(site, next);
        Ok(())
    }

    /// Back to an unimpaired link (a blackout stays as it is).
    pub fn clear_impairment(&self, host: Host) -> anyhow::Result<()> {
        self.impair(host, Impairment::default())
    }

    /// Give the customer's router a new outside address, `198.18.N.13`, as a switch to
    /// another Wi-Fi or a new lease from the ISP does: the old address goes, and with it
    /// every masquerade mapping (the kernel forgets a flow whose address is gone), so
    /// each flow leaves from a new address and port. Needs a router on the customer's
    /// site; [`Topology::public_ip`] keeps saying the first address.
    pub fn renumber_customer(&self) -> anyhow::Result<Ipv4Addr> {
        if self.spec.customer == Nat::None {
            bail!("renumbering takes the customer's router; this topology has none");
        }
        let router = self.namespace_named("nat1");
        let (old, new) = (Site::Customer.public_host_byte(), RENUMBERED);
        let gateway = self.wan_ip(WAN_GATEWAY);
        // The old one first: deleting a primary address deletes the secondary ones too.
        ip(&format!(
            "-n {router} addr del {} dev out",
            self.wan_cidr(old)
        ))?;
        ip(&format!(
            "-n {router} addr add {} dev out",
            self.wan_cidr(new)
        ))?;
        // Deleting the address took the default route through it.
        ip(&format!("-n {router} route replace default via {gateway}"))?;
        Ok(self.wan_ip(new))
    }

    /// Drop everything on `host`'s access link, both ways, or stop doing so. The link
    /// stays up, so the router keeps its NAT mappings, as across a real outage.
    pub fn blackout(&self, host: Host, on: bool) -> anyhow::Result<()> {
        let site = self.site(host);
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        let now = links.get(&site).copied().unwrap_or_default();
        let next = LinkState {
            blackout: on,
            ..now
        };
        self.filter(site, &next)?;
        links.insert(site, next);
        Ok(())
    }

    /// Let only small packets through `host`'s access link, both ways, or stop doing so:
    /// ICE's checks and RTCP feedback pass, video does not, so a connection stays up that
    /// carries no picture (a path that drops what is large, as a broken MTU does).
    pub fn starve(&self, host: Host, on: bool) -> anyhow::Result<()> {
        let site = self.site(host);
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        let now = links.get(&site).copied().unwrap_or_default();
        let next = LinkState { starved: on, ..now };
        self.filter(site, &next)?;
        links.insert(site, next);
        Ok(())
    }

    /// Loss, starving and blackout: drop rules at the ingress of each end of the link, so each
    /// direction is filtered once. Loss takes IP packets only: a lost ARP exchange would
    /// cut the link for seconds, which a lossy line to an ISP does not. (Taking the link
    /// down for a blackout would make the router forget its masquerade mappings.)
    fn filter(&self, site: Site, state: &LinkState) -> anyhow::Result<()> {
        for (namespace, dev) in self.link_ends(site) {
            let chain = format!("netdev tandem in_{dev}");
            let mut rules = format!(
                "add table netdev tandem\n\
                 add chain {chain} {{ type filter hook ingress device \"{dev}\" \
                 priority filter; policy accept; }}\n\
                 flush chain {chain}\n"
            );
            if state.blackout {
                rules.push_str(&format!("add rule {chain} drop\n"));
            }
            if state.starved {
                rules.push_str(&format!(
                    "add rule {chain} meta protocol ip ip length > {STARVED_MAX_BYTES} drop\n"
                ));
            }
            let per_10000 = (state.impairment.loss_pct * 100.0).round() as u32;
            if per_10000 > 0 {
                rules.push_str(&format!(
                    "add rule {chain} meta protocol ip numgen random mod 10000 < {per_10000} drop\n"
                ));
            }
            nft_in(&namespace, &rules)?;
        }
        Ok(())
    }

    /// Fail before changing anything when the kernel cannot delay packets.
    fn ensure_netem(&self) -> anyhow::Result<()> {
        let wan = self.namespace_named("wan");
        match tc(&format!("-n {wan} qdisc add dev lo root netem delay 1ms")) {
            Ok(_) => tc(&format!("-n {wan} qdisc del dev lo root")).map(drop),
            Err(e) if format!("{e:#}").contains("qdisc kind is unknown") => bail!(
                "this kernel has no netem (CONFIG_NET_SCH_NETEM), so this link cannot be \
                 delayed here (a customer's link built with `customer_delay_line` can); \
                 rate and loss work without it"
            ),
            Err(e) => Err(e),
        }
    }

    /// Both ends of a site's access link: (namespace, interface), the inner end first.
    fn link_ends(&self, site: Site) -> [(String, &'static str); 2] {
        let inner = match (site, self.nat(site)) {
            (Site::Server, _) => ("srv", "eth0"),
            (Site::Customer, Nat::None) => ("cust", "eth0"),
            (Site::Rep, Nat::None) => ("rep", "eth0"),
            (Site::Customer, _) => ("nat1", "out"),
            (Site::Rep, _) => ("nat2", "out"),
        };
        [
            (self.namespace_named(inner.0), inner.1),
            (self.namespace_named("wan"), site.port()),
        ]
    }

    fn nat(&self, site: Site) -> Nat {
        match site {
            Site::Server => Nat::None,
            Site::Customer => self.spec.customer,
            Site::Rep => self.spec.rep,
        }
    }

    fn site(&self, host: Host) -> Site {
        let site = match host {
            Host::Srv => Site::Server,
            Host::Cust | Host::CustRouter => Site::Customer,
            Host::Rep | Host::RepRouter => Site::Rep,
        };
        let router = matches!(host, Host::CustRouter | Host::RepRouter);
        assert!(
            !router || self.nat(site) != Nat::None,
            "{host:?}: this topology has no such router (its site has Nat::None)"
        );
        site
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // The delay line first: its devices would otherwise vanish under it.
        drop(self.delay_line.take());
        // Processes keep a namespace (and its interfaces) alive after its name is gone;
        // whatever runs inside one of ours was started by this test.
        for namespace in &self.namespaces {
            if let Err(e) = kill_everything_in(namespace) {
                eprintln!("netns: could not stop the processes in {namespace}: {e:#}");
            }
        }
        // Deleting one end deletes the pair at once, while a namespace's interfaces may
        // linger after it: the link's route must not outlive the claim on the subnet.
        if self.management_link
            && let Err(e) = ip(&format!("link del {}", self.tag))
        {
            eprintln!("netns: could not remove the link {}: {e:#}", self.tag);
        }
        for namespace in self.namespaces.iter().rev() {
            if let Err(e) = ip(&format!("netns del {namespace}")) {
                eprintln!("netns: could not remove {namespace}: {e:#}");
            }
        }
    }
}

/// The router: masquerade, forward what the LAN starts (TCP only when UDP is blocked)
/// and its replies, and answer nothing from outside itself.
fn router_rules(nat: Nat, udp_blocked: bool) -> String {
    let masquerade = match nat {
        Nat::Symmetric => "masquerade random,fully-random",
        _ => "masquerade",
    };
    let outward = if udp_blocked {
        "meta l4proto tcp accept"
    } else {
        "accept"
    };
    format!(
        "table ip tandem {{\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\toifname \"out\" {masquerade}\n\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy drop;\n\
         \t\tct state established,related accept\n\
         \t\tiifname \"lan\" oifname \"out\" {outward}\n\
         \t}}\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority filter; policy accept;\n\
         \t\tiifname \"out\" ct state established,related accept\n\
         \t\tiifname \"out\" drop\n\
         \t}}\n\
         }}\n"
    )
}

/// Rate and delay on the egress of one end of a link: a token bucket alone, or netem
/// with the token bucket as its child.
fn reshape(namespace: &str, dev: &str, now: &Impairment, next: &Impairment) -> anyhow::Result<()> {
    let at = format!("-n {namespace} qdisc");
    if let (true, true, Some(rate)) = (now.only_rate(), next.only_rate(), next.rate_kbit) {
        // The same kind of queue: changed in place, what is queued stays.
        return tc(&format!("{at} replace dev {dev} root {}", tbf(rate))).map(drop);
    }
    if now.shapes() {
        tc(&format!("{at} del dev {dev} root"))?;
    }
    if next.delay_ms > 0 {
        // netem's own queue holds what is in flight; the token bucket under it, if any,
        // bounds what waits.
        let delay = next.delay_ms;
        tc(&format!(
            "{at} add dev {dev} root handle 1: netem delay {delay}ms limit 10000"
        ))?;
        if let Some(rate) = next.rate_kbit {
            tc(&format!(
                "{at} add dev {dev} parent 1:1 handle 10: {}",
                tbf(rate)
            ))?;
        }
    } else if let Some(rate) = next.rate_kbit {
        tc(&format!("{at} add dev {dev} root {}", tbf(rate)))?;
    }
    Ok(())
}

/// A token bucket: a burst of 10 ms of the rate (two full frames at least) and a 200 ms
/// queue.
fn tbf(rate_kbit: u32) -> String {
    let burst = (u64::from(rate_kbit) * 1000 / 8 / 100).max(2 * 1514);
    format!("tbf rate {rate_kbit}kbit burst {burst} latency 200ms")
}

/// Claim a wan subnet: see [`Topology::build`].
fn claim_slot() -> anyhow::Result<(u8, UnixListener)> {
    // Start from a place of our own, so parallel processes rarely try the same slots.
    let start = std::process::id() as usize;
    for i in 0..256 {
        let slot = ((start + i) % 256) as u8;
        let name = format!("tandem-netns-198.18.{slot}");
        let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        let lock = match UnixListener::bind_addr(&address) {
            Ok(lock) => lock,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(e).context("could not claim a wan subnet"),
        };
        if ip(&format!("-4 route show to exact 198.18.{slot}.0/24"))?
            .trim()
            .is_empty()
        {
            return Ok((slot, lock));
        }
    }
    bail!("every subnet 198.18.N.0/24 is taken (by live topologies or leftovers of killed runs)")
}

fn ensure_root() -> anyhow::Result<()> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .context("no Uid in /proc/self/status")?;
    if euid != "0" {
        bail!(
            "network-namespace tests must run as root (they create namespaces, links and \
             firewall rules); this process runs as uid {euid}. CI runs them as root."
        );
    }
    Ok(())
}

fn kill_everything_in(namespace: &str) -> anyhow::Result<()> {
    let pids = ip(&format!("netns pids {namespace}"))?;
    let pids: Vec<&str> = pids.split_whitespace().collect();
    if pids.is_empty() {
        return Ok(());
    }
    // A process may have ended since it was listed: kill's complaint about that one
    // does not matter, and the others are killed all the same.
    let status = std::process::Command::new("kill")
        .arg("-KILL")
        .args(&pids)
        .stderr(Stdio::null())
        .status()
        .context("could not run kill")?;
    if !status.success() {
        eprintln!("netns: kill of {pids:?} in {namespace}: {status}");
    }
    Ok(())
}

/// `ip <command>`; the command is split at spaces (no name in a topology has one).
fn ip(command: &str) -> anyhow::Result<String> {
    run("ip", &command.split_whitespace().collect::<Vec<_>>(), None)
}

/// `tc <command>`, split the same way.
fn tc(command: &str) -> anyhow::Result<String> {
    run("tc", &command.split_whitespace().collect::<Vec<_>>(), None)
}

/// `command` run inside a namespace, split the same way.
fn exec_in(namespace: &str, command: &str) -> anyhow::Result<String> {
    ip(&format!("netns exec {namespace} {command}"))
}

/// Load nftables rules inside a namespace.
fn nft_in(namespace: &str, rules: &str) -> anyhow::Result<()> {
    run(
        "ip",
        &["netns", "exec", namespace, "nft", "-f", "-"],
        Some(rules),
    )
    .map(drop)
}

/// Run a setup command to its end: its stdout, or an error with its command line and
/// stderr.
fn run(program: &str, args: &[&str], input: Option<&str>) -> anyhow::Result<String> {
    let line = format!("{program} {}", args.join(" "));
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "could not run `{line}`: the network tests need iproute2, nftables, socat \
                 and procps (`cargo xtask test` installs them)"
            )
        })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "`{line}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A way into a namespace's loopback for this process: a TCP listener here, a Unix socket
/// file in between, and socat inside the namespace connecting on to the port. Ends on
/// drop.
#[derive(Debug)]
pub struct PortForward {
    addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
    _socat: Child,
    _dir: tempfile::TempDir,
}

impl PortForward {
    async fn start(topology: &Topology, host: Host, port: u16) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("forward.sock");
        let socat = topology
            .command(host, "socat")
            .arg(format!("UNIX-LISTEN:{},fork", socket.display()))
            .arg(format!("TCP:127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .spawn()
            .context(
                "could not start socat (Debian package socat; cargo xtask test installs it)",
            )?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accept = tokio::spawn(relay(listener, socket));
        Ok(Self {
            addr,
            accept,
            _socat: socat,
            _dir: dir,
        })
    }

    /// Where this process connects (on 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Carry each connection to the listener over to the Unix socket. Until socat listens on
/// it, a connection is closed at once, which a caller polling for readiness sees as "not
/// yet".
async fn relay(listener: tokio::net::TcpListener, socket: PathBuf) {
    loop {
        let mut tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                eprintln!("netns: the forward to {} stopped: {e}", socket.display());
                return;
            }
        };
        let socket = socket.clone();
        tokio::spawn(async move {
            if let Ok(mut unix) = tokio::net::UnixStream::connect(&socket).await {
                // Either side ending, cleanly or not, ends the connection: nothing to report.
                tokio::io::copy_bidirectional(&mut tcp, &mut unix)
                    .await
                    .ok();
            }
        });
    }
}
