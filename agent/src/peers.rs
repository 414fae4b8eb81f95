//! One WebRTC peer connection per viewer, all fed by the same encoded frames (R6).
//! The agent always offers; a viewer's PLI or FIR asks the encoder for a keyframe.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rtc::interceptor::{
    Attribute, CongestionControlBuilder, Gcc, Interceptor, Packet, Registry, Slot, StreamInfo,
    TaggedPacket, TwccSenderBuilder,
};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::RTCOfferOptions;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MediaEngine};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::sansio::Protocol;
use tandem_protocol::{ClientMessage, IceCandidate, ParticipantId, ShareId, StreamRef};
use tokio::sync::{broadcast, mpsc};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCPeerConnectionState,
    RTCStatsReportEntry, StatsSelector,
};
use webrtc::runtime::Runtime;

use crate::input::Input;
use crate::packets::Packets;
use crate::pipeline::{Controls, Shot};
use crate::rate;
use crate::tunnel::{Transport, Tunnel};

/// With `TANDEM_AGENT_TRACE` set, the agent says when each step of a viewer's connection
/// happens (milliseconds since the Unix epoch), to find where time goes.
pub fn trace(what: &str) {
    if tracing() {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        eprintln!("[trace {ms}] {what}");
    }
}

/// Whether `TANDEM_AGENT_TRACE` is set (read once).
pub fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("TANDEM_AGENT_TRACE").is_some())
}

/// An instant as milliseconds since the Unix epoch, to the microsecond (for the trace:
/// the bench lines it up with the browser's clock on the same machine).
pub fn unix_ms(at: Instant) -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ago = Instant::now().saturating_duration_since(at);
    now.saturating_sub(ago).as_secs_f64() * 1000.0
}

/// The label of the data channel that carries a viewer's mouse and keyboard.
pub const INPUT_CHANNEL: &str = "input";

/// Only `packetization-mode=1` H.264 (Constrained Baseline): the packetizer uses FU-A.
fn h264() -> RTCRtpCodecParameters {
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_H264.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
                .to_owned(),
            rtcp_feedback: vec![
                feedback("nack", ""),
                feedback("nack", "pli"),
                feedback("ccm", "fir"),
            ],
        },
        payload_type: 102,
    }
}

/// How often the agent checks consent on a viewer's selected pair (RFC 7675).
const KEEPALIVE: Duration = Duration::from_millis(500);
/// A connection from whose viewer nothing arrived this long is `disconnected`.
const DISCONNECTED_AFTER: Duration = Duration::from_secs(2);

/// What a viewer's feedback says about its path, for the congestion controller.
#[derive(Debug, Default)]
pub struct PathFeedback {
    /// The bandwidth estimate from the viewer's transport-wide feedback (bit/s; 0: none yet).
    pub estimate_bps: AtomicU64,
    /// When the viewer's last RTCP arrived, in milliseconds since [`clock`]'s start (0:
    /// none yet).
    pub heard_ms: AtomicU64,
}

/// Milliseconds since the first call: a clock an atomic can hold.
fn clock(now: Instant) -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(now.saturating_duration_since(start).as_millis()).unwrap_or(u64::MAX)
}

/// A viewer's feedback (transport-wide, receiver reports: several a second while frames
/// reach it; on a still screen transport-wide feedback after each frame, about once a
/// second, and receiver reports 0.5 to 1.5 s apart) silent this long while
/// frames go to it means its path changed under it: the customer's address changed
/// (another Wi-Fi, a new lease), and its NACKs and keyframe requests went to the old one.
/// Its decoder is then stuck on a frame it lacks, though the new path already carries
/// the picture: it gets a keyframe unasked.
const FEEDBACK_SILENT: Duration = Duration::from_secs(2);
/// At most one such keyframe this often…
const SILENT_KEYFRAME_EVERY: Duration = Duration::from_secs(2);
/// …and none once the silence is this long: by then the connection is broken or
/// restarting (ICE), and keyframes would only cost the other viewers.
const SILENT_KEYFRAMES_FOR: Duration = Duration::from_secs(10);

/// Whether a viewer last heard from at `heard` gets an unasked keyframe at `now`, the
/// last one having gone at `forced`.
fn silent_keyframe(now: Instant, heard: Instant, forced: Option<Instant>) -> bool {
    let silent = now.saturating_duration_since(heard);
    (FEEDBACK_SILENT..=SILENT_KEYFRAMES_FOR).contains(&silent)
        && forced.is_none_or(|at| now.saturating_duration_since(at) >= SILENT_KEYFRAME_EVERY)
}

/// Hands PLI and FIR to the application (without it they stop inside the interceptor
/// chain and a viewer that lost a keyframe never recovers), and reads the bandwidth
/// estimate the congestion controller makes from the viewer's feedback.
#[derive(Default)]
struct KeyframeRequests {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
    feedback: Arc<PathFeedback>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if matches!(msg.message.packet, Packet::Rtcp(_)) {
            self.feedback
                .heard_ms
                .store(clock(Instant::now()).max(1), Ordering::Relaxed);
        }
        if let Some(Attribute::TargetBitrateChanged { bits_per_second }) =
            msg.message.get(&Attribute::TargetBitrateChanged {
                bits_per_second: 0.0,
            })
        {
            self.feedback
                .estimate_bps
                .store(*bits_per_second as u64, Ordering::Relaxed);
        }
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let requests: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| {
                    let any = p.as_any();
                    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
                })
                .cloned()
                .collect();
            if !requests.is_empty() {
                msg.message.packet = Packet::Rtcp(requests);
                msg.message.add(Attribute::DeliverToApplication);
            }
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }
}

impl Interceptor for KeyframeRequests {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// How long a new connection may take before the customer is told it failed and why
/// (it goes on trying: ICE restarts every so often while the viewer stays).
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);
/// A broken connection (Wi-Fi switch, NAT rebinding) that has not come back by itself this
/// long after it broke is restarted (new ICE credentials, fresh candidates, same DTLS).
const RESTART_AFTER: Duration = Duration::from_secs(1);

/// What the agent knows of one viewer's connection, as the customer is told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Connecting,
    /// Up; "relay" when either end of the path is a relay, else the kind of our local
    /// candidate ("host", "srflx", "prflx").
    Connected(Option<String>),
    Reconnecting,
    Failed(String),
}

/// Something that happened to a viewer's connection, for the agent's main loop.
#[derive(Debug)]
pub enum PeerEvent {
    State {
        viewer: ParticipantId,
        attempt: u64,
        state: RTCPeerConnectionState,
    },
    /// The attempt's deadline passed (connect, or restart after a break).
    Deadline { viewer: ParticipantId, attempt: u64 },
    /// Something on the viewer's files channel (files.rs).
    Files {
        viewer: ParticipantId,
        event: ChannelEvent,
    },
    /// Something on the viewer's clipboard channel (clipboard.rs).
    Clipboard {
        viewer: ParticipantId,
        event: ChannelEvent,
    },
}

/// What a viewer's files or clipboard channel did.
pub enum ChannelEvent {
    /// Open: this is where to answer.
    Open(Arc<dyn webrtc::data_channel::DataChannel>),
    Text(String),
    Binary(bytes::BytesMut),
    /// This channel closed (a viewer's newer channel may be open already).
    Closed(Arc<dyn webrtc::data_channel::DataChannel>),
}

/// How a channel's events reach the main loop, by the channel's kind.
type ToEvent = fn(ParticipantId, ChannelEvent) -> PeerEvent;

/// Pass what a data channel does to `send` (false: nobody listens any more), until it
/// closes.
async fn pump(
    channel: Arc<dyn webrtc::data_channel::DataChannel>,
    send: impl Fn(ChannelEvent) -> bool,
) {
    use webrtc::data_channel::DataChannelEvent;
    while let Some(event) = channel.poll().await {
        let more = match event {
            DataChannelEvent::OnOpen => send(ChannelEvent::Open(Arc::clone(&channel))),
            DataChannelEvent::OnMessage(message) if message.is_string => send(ChannelEvent::Text(
                String::from_utf8_lossy(&message.data).into_owned(),
            )),
            DataChannelEvent::OnMessage(message) => send(ChannelEvent::Binary(message.data)),
            DataChannelEvent::OnClose => break,
            _ => true,
        };
        if !more {
            return;
        }
    }
    send(ChannelEvent::Closed(channel));
}

impl std::fmt::Debug for ChannelEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelEvent::Open(_) => f.write_str("Open"),
            ChannelEvent::Text(text) => write!(f, "Text({text:?})"),
            ChannelEvent::Binary(bytes) => write!(f, "Binary({} bytes)", bytes.len()),
            ChannelEvent::Closed(_) => f.write_str("Closed"),
        }
    }
}

/// Our ICE candidates on their way to the viewer. Held back while an offer is being made
/// (the offer must reach the viewer first, or a viewer that drops early candidates never
/// connects), then sent in order; the end of gathering is sent as an empty candidate.
struct Gate {
    to: ParticipantId,
    share: ShareId,
    signal: mpsc::UnboundedSender<ClientMessage>,
    held: Mutex<Option<Vec<IceCandidate>>>,
    /// The kinds of candidate gathered here, for the reason given when nothing connects.
    gathered: Mutex<BTreeSet<String>>,
}

impl Gate {
    fn send(&self, candidate: IceCandidate) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        match held.as_mut() {
            Some(queue) => queue.push(candidate),
            None => {
                let _ = self.signal.send(ClientMessage::IceCandidate {
                    to: self.to,
                    stream: StreamRef::Share(self.share),
                    candidate,
                });
            }
        }
    }

    fn hold(&self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get_or_insert_with(Vec::new);
    }

    fn release(&self) {
        // Under the lock: a candidate gathered meanwhile waits, so none overtakes these.
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        for candidate in held.take().unwrap_or_default() {
            let _ = self.signal.send(ClientMessage::IceCandidate {
                to: self.to,
                stream: StreamRef::Share(self.share),
                candidate,
            });
        }
    }
}

/// Sends our ICE candidates to the viewer through the server, and reports the
/// connection's state to the main loop (and to the frame writer: only a connected
/// viewer can take a keyframe).
struct Trickle {
    viewer: ParticipantId,
    attempt: Arc<AtomicU64>,
    gate: Arc<Gate>,
    connected: tokio::sync::watch::Sender<bool>,
    events: mpsc::UnboundedSender<PeerEvent>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Trickle {
    async fn on_ice_candidate(&self, event: webrtc::peer_connection::RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            if let Some(kind) = candidate_type(&init.candidate) {
                self.gate
                    .gathered
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(kind.to_owned());
            }
            self.gate.send(IceCandidate {
                candidate: init.candidate,
                sdp_mid: init.sdp_mid,
                sdp_mline_index: init.sdp_mline_index,
            });
        }
    }

    async fn on_ice_gathering_state_change(
        &self,
        state: webrtc::peer_connection::RTCIceGatheringState,
    ) {
        if state == webrtc::peer_connection::RTCIceGatheringState::Complete {
            trace(&format!("viewer {}: end of candidates", self.viewer));
            // End of candidates (docs/protocol.md): an empty candidate.
            self.gate.send(IceCandidate {
                candidate: String::new(),
                sdp_mid: Some(String::new()),
                sdp_mline_index: Some(0),
            });
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        trace(&format!("viewer {}: connection {state:?}", self.viewer));
        let _ = self
            .connected
            .send(matches!(state, RTCPeerConnectionState::Connected));
        let _ = self.events.send(PeerEvent::State {
            viewer: self.viewer,
            attempt: self.attempt.load(Ordering::Relaxed),
            state,
        });
    }
}

/// The type in an ICE candidate line (`… typ relay …`).
fn candidate_type(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    while let Some(word) = words.next() {
        if word == "typ" {
            return words.next();
        }
    }
    None
}

struct Viewer {
    name: String,
    pc: Arc<dyn PeerConnection>,
    answered: bool,
    pending: Vec<RTCIceCandidateInit>,
    writer: tokio::task::JoinHandle<()>,
    gate: Arc<Gate>,
    /// Which attempt (first connect, then one per ICE restart) the connection is on.
    attempt: Arc<AtomicU64>,
    link: Link,
    /// The kinds of candidate the viewer sent, for the reason given when nothing connects.
    remote_kinds: BTreeSet<String>,
    feedback: Arc<PathFeedback>,
}

/// The STUN and TURN servers as webrtc-rs can use them: `stun:` without a query (it
/// refuses one), TURN over TCP and TLS through local tunnels (it speaks TURN over UDP only).
async fn usable_ice_servers(
    servers: &[tandem_protocol::IceServer],
    tunnels: &mut Vec<Tunnel>,
) -> Vec<rtc::peer_connection::transport::RTCIceServer> {
    let mut usable = Vec::new();
    for server in servers {
        let mut urls = Vec::new();
        for url in &server.urls {
            match IceUrl::parse(url) {
                Some(IceUrl::Stun { host_port }) => urls.push(format!("stun:{host_port}")),
                Some(IceUrl::Turn {
                    host,
                    port,
                    transport: None,
                }) => urls.push(format!(
                    "turn:{}?transport=udp",
                    join_host_port(&host, port)
                )),
                Some(IceUrl::Turn {
                    host,
                    port,
                    transport: Some(transport),
                }) => match Tunnel::open(host, port, transport).await {
                    Ok(tunnel) => {
                        urls.push(format!("turn:{}?transport=udp", tunnel.local));
                        tunnels.push(tunnel);
                    }
                    Err(e) => crate::text::complain("turn-tcp-unavailable", e, &[]),
                },
                None => trace(&format!("ignoring the ICE server URL {url:?}")),
            }
        }
        if urls.is_empty() {
            continue;
        }
        usable.push(rtc::peer_connection::transport::RTCIceServer {
            urls,
            username: server.username.clone().unwrap_or_default(),
            credential: server.credential.clone().unwrap_or_default(),
        });
    }
    usable
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An ICE server URL (RFC 7064, RFC 7065), as far as the agent needs it.
#[derive(Debug, PartialEq, Eq)]
enum IceUrl {
    Stun {
        host_port: String,
    },
    /// `transport`: `None` for UDP, else the stream the tunnel uses.
    Turn {
        host: String,
        port: u16,
        transport: Option<Transport>,
    },
}

impl IceUrl {
    fn parse(url: &str) -> Option<IceUrl> {
        let (scheme, rest) = url.split_once(':')?;
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let tcp = query
            .split('&')
            .any(|kv| kv.eq_ignore_ascii_case("transport=tcp"));
        let (host, port) = split_host_port(authority)?;
        match scheme.to_ascii_lowercase().as_str() {
            "stun" => Some(IceUrl::Stun {
                host_port: join_host_port(&host, port.unwrap_or(3478)),
            }),
            "turn" => Some(IceUrl::Turn {
                host,
                port: port.unwrap_or(3478),
                transport: tcp.then_some(Transport::Tcp),
            }),
            "turns" => Some(IceUrl::Turn {
                host,
                port: port.unwrap_or(5349),
                transport: Some(Transport::Tls),
            }),
            _ => None,
        }
    }
}

fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            Some((host.to_owned(), Some(port.parse().ok()?)))
        }
        Some(_) => None,
        None if authority.is_empty() => None,
        None => Some((authority.to_owned(), None)),
    }
}

/// Every address to gather host candidates on: each interface's, not loopback or
/// link-local; loopback only when there is nothing else (a machine alone with its server).
fn host_addresses() -> Vec<String> {
    let link_local = |ip: &IpAddr| match ip {
        IpAddr::V4(v) => v.is_link_local(),
        IpAddr::V6(v) => v.segments()[0] & 0xffc0 == 0xfe80,
    };
    let mut all: Vec<IpAddr> = rtc::shared::ifaces::ifaces()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| i.addr.map(|a| a.ip()))
        .filter(|ip| !ip.is_unspecified() && !ip.is_multicast() && !link_local(ip))
        .collect();
    all.sort();
    all.dedup();
    let mut chosen: Vec<IpAddr> = all.iter().copied().filter(|ip| !ip.is_loopback()).collect();
    if chosen.is_empty() {
        chosen = all.into_iter().filter(IpAddr::is_loopback).collect();
    }
    if chosen.is_empty() {
        chosen.push(IpAddr::from([127, 0, 0, 1]));
    }
    chosen
        .into_iter()
        .map(|ip| SocketAddr::new(ip, 0).to_string())
        .collect()
}

/// Every viewer of this agent's share.
pub struct Peers {
    runtime: Arc<dyn Runtime>,
    ice_servers: Vec<rtc::peer_connection::transport::RTCIceServer>,
    /// Whether any TURN server was offered at all (for the reason given on failure).
    have_relay: bool,
    _tunnels: Vec<Tunnel>,
    /// Where host candidates are gathered; the address towards the server comes first.
    host_addresses: Vec<String>,
    signal: mpsc::UnboundedSender<ClientMessage>,
    viewers: HashMap<ParticipantId, Viewer>,
    input: Arc<Input>,
    events_tx: mpsc::UnboundedSender<PeerEvent>,
    events: mpsc::UnboundedReceiver<PeerEvent>,
    /// Numbers every connection attempt to every viewer.
    attempts: Arc<AtomicU64>,
}

impl Peers {
    pub async fn new(
        runtime: Arc<dyn Runtime>,
        ice_servers: &[tandem_protocol::IceServer],
        local_ip: IpAddr,
        signal: mpsc::UnboundedSender<ClientMessage>,
        input: Arc<Input>,
    ) -> Self {
        let mut tunnels = Vec::new();
        let ice_servers = usable_ice_servers(ice_servers, &mut tunnels).await;
        let have_relay = ice_servers
            .iter()
            .any(|s| s.urls.iter().any(|u| u.starts_with("turn")));
        let mut host_addresses = host_addresses();
        let towards_server = SocketAddr::new(local_ip, 0).to_string();
        host_addresses.retain(|a| *a != towards_server);
        // The address towards the server first, loopback included: a viewer on the same
        // machine as the server reaches us there.
        host_addresses.insert(0, towards_server);
        trace(&format!("host candidates on {host_addresses:?}"));
        let (events_tx, events) = mpsc::unbounded_channel();
        Self {
            runtime,
            ice_servers,
            have_relay,
            _tunnels: tunnels,
            host_addresses,
            signal,
            viewers: HashMap::new(),
            input,
            events_tx,
            events,
            attempts: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Each viewer's name and connection, for the customer.
    pub fn links(&self) -> Vec<(String, Link)> {
        let mut links: Vec<(String, Link)> = self
            .viewers
            .values()
            .map(|v| (v.name.clone(), v.link.clone()))
            .collect();
        links.sort_by(|a, b| a.0.cmp(&b.0));
        links
    }

    /// The bitrate and frame rate the encoder should aim for, from every connected
    /// viewer's feedback (`crate::rate` holds the policy).
    pub fn rate_target(&self) -> rate::Target {
        let estimates: Vec<rate::ViewerPath> = self
            .viewers
            .values()
            .filter(|v| matches!(v.link, Link::Connected(_)))
            .map(|v| rate::ViewerPath {
                estimate_bps: v.feedback.estimate_bps.load(Ordering::Relaxed),
            })
            .collect();
        rate::target(&estimates)
    }

    /// The next thing that happened to a viewer's connection.
    pub async fn next_event(&mut self) -> Option<PeerEvent> {
        self.events.recv().await
    }

    /// A new viewer: offer them the share, and feed them every frame from now on,
    /// starting with a keyframe.
    pub async fn add(
        &mut self,
        viewer: ParticipantId,
        name: String,
        share: ShareId,
        frames: &broadcast::Sender<Arc<Shot>>,
        controls: Arc<Controls>,
    ) -> anyhow::Result<()> {
        self.remove(viewer).await;
        let mut media = MediaEngine::default();
        let codec = h264();
        media.register_codec(codec.clone(), RtpCodecKind::Video)?;
        // Playout delay 0–0 on every frame (`crate::packets::PLAYOUT_DELAY_URI`).
        media.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: crate::packets::PLAYOUT_DELAY_URI.to_owned(),
            },
            RtpCodecKind::Video,
            None,
        )?;
        let registry = register_default_interceptors(Registry::new(), &mut media)?;
        let feedback = Arc::new(PathFeedback::default());
        // Transport-wide congestion control: every packet numbered, the viewer's feedback
        // on their arrival turned into a bandwidth estimate (Google Congestion Control),
        // which `KeyframeRequests` hands to the encoder's rate. The encoder's rate keeps the
        // average within the path's; a frame larger than the pacer's bucket (a keyframe)
        // is spread at a little over it (`crate::packets::Pacer`).
        let registry = registry
            .with(Slot::TwccSender, TwccSenderBuilder::new().build())
            .with(
                Slot::CongestionControl,
                CongestionControlBuilder::new(rate::PathEstimator::new(Gcc::new(
                    rate::START_BPS as f64,
                    rate::FLOOR_BPS as f64,
                    rate::CEILING_BPS as f64,
                )))
                .build(),
            )
            .with(
                Slot::from(14_000),
                KeyframeRequests {
                    feedback: Arc::clone(&feedback),
                    ..KeyframeRequests::default()
                },
            );
        let (connected_tx, mut connected) = tokio::sync::watch::channel(false);
        let gate = Arc::new(Gate {
            to: viewer,
            share,
            signal: self.signal.clone(),
            held: Mutex::new(Some(Vec::new())),
            gathered: Mutex::new(BTreeSet::new()),
        });
        // Attempt numbers come from one counter for every connection this agent makes,
        // so nothing about an earlier connection to the same viewer passes for this one.
        let first_attempt = self.attempts.fetch_add(1, Ordering::Relaxed);
        let attempt = Arc::new(AtomicU64::new(first_attempt));
        let handler = Arc::new(Trickle {
            viewer,
            attempt: Arc::clone(&attempt),
            gate: Arc::clone(&gate),
            connected: connected_tx,
            events: self.events_tx.clone(),
        });
        let pc = PeerConnectionBuilder::new()
            .with_configuration(
                RTCConfigurationBuilder::new()
                    .with_ice_servers(self.ice_servers.clone())
                    .build(),
            )
            .with_media_engine(media)
            // A viewer's browser often reaches us before its candidates do, as a
            // peer-reflexive candidate; waiting the default second before accepting it
            // only delays the first frame.
            .with_setting_engine(
                rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder::new()
                    .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
                    .with_srflx_acceptance_min_wait(Some(Duration::from_millis(100)))
                    // A relayed pair is taken after half a second without a better one,
                    // not webrtc-rs's default two: behind symmetric NATs it is the only
                    // path, and the wait is all first-frame delay.
                    .with_relay_acceptance_min_wait(Some(Duration::from_millis(500)))
                    // A consent check every half second, not every two: when the
                    // customer's address changes (another Wi-Fi, a new lease), the first
                    // check from the new address is what lets the viewer find the path
                    // again, so it is the picture's outage. About 200 bytes a second.
                    // Disconnected after 2 s without a packet from the viewer (whose
                    // feedback comes several times a second), not 5: a relayed path
                    // whose allocation belonged to the old address never comes back by
                    // itself, and the restart waits on this.
                    .with_ice_timeouts(Some(DISCONNECTED_AFTER), None, Some(KEEPALIVE))
                    .build(),
            )
            .with_interceptor_registry(registry)
            .with_handler(handler)
            .with_runtime(self.runtime.clone())
            .with_udp_addrs(self.host_addresses.clone())
            .build()
            .await
            .context("could not create a WebRTC connection")?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let ssrc = rand::random::<u32>();
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            format!("tandem-share-{}", share.0),
            format!("tandem-video-{}", share.0),
            "screen".to_owned(),
            RtpCodecKind::Video,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: codec.rtp_codec.clone(),
                ..Default::default()
            }],
        )));
        let sender = pc
            .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
            .await?;
        // Every viewer gets an input channel; only the holder of control gets through the
        // gate (C1, R8), so control can move between viewers without renegotiating.
        let channel = pc
            .create_data_channel(INPUT_CHANNEL, None)
            .await
            .context("could not open the input channel")?;
        let input = Arc::clone(&self.input);
        tokio::spawn(async move {
            use webrtc::data_channel::DataChannelEvent;
            while let Some(event) = channel.poll().await {
                match event {
                    DataChannelEvent::OnMessage(message) => input.receive(viewer, &message.data),
                    DataChannelEvent::OnClose => break,
                    _ => {}
                }
            }
            input.disconnected(viewer);
        });
        // Files (files.rs) and the clipboard's text (clipboard.rs, only ever with the
        // holder of control) go over channels of their own: ordered and reliable, and
        // never in the way of the input channel's small messages.
        let kinds: [(&str, ToEvent); 2] = [
            (crate::files::FILES_CHANNEL, |viewer, event| {
                PeerEvent::Files { viewer, event }
            }),
            (crate::clipboard::CLIPBOARD_CHANNEL, |viewer, event| {
                PeerEvent::Clipboard { viewer, event }
            }),
        ];
        for (label, wrap) in kinds {
            let channel = pc
                .create_data_channel(label, None)
                .await
                .with_context(|| format!("could not open the {label} channel"))?;
            let events = self.events_tx.clone();
            tokio::spawn(pump(channel, move |event| {
                events.send(wrap(viewer, event)).is_ok()
            }));
        }
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer).await?;
        let sdp = pc
            .local_description()
            .await
            .context("no local description")?
            .sdp;
        trace(&format!("viewer {viewer}: offer sent"));
        let _ = self.signal.send(ClientMessage::Offer {
            to: viewer,
            stream: StreamRef::Share(share),
            sdp,
        });
        gate.release();
        self.deadline(viewer, first_attempt, CONNECT_DEADLINE);

        // Keyframe requests from this viewer reach the encoder, but not while a keyframe
        // is still being paced out to it: a browser asks again when no frame completes
        // within about 3 s, which on a slow link is a keyframe still on its way, and
        // every new keyframe would queue behind it and draw the next request.
        let keyframe_leaving = Arc::new(AtomicBool::new(false));
        let leaving = Arc::clone(&keyframe_leaving);
        let requests = Arc::clone(&track);
        let asked = controls.clone();
        tokio::spawn(async move {
            while let Some(event) = requests.poll().await {
                let webrtc::media_stream::track_local::TrackLocalEvent::OnRtcpPacket(packets) =
                    event
                else {
                    continue;
                };
                let wanted = packets.iter().any(|p| {
                    let any = p.as_any();
                    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
                });
                if wanted {
                    asked.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                    if leaving.load(Ordering::Relaxed) {
                        trace(&format!(
                            "viewer {viewer}: keyframe request while one is leaving: not another"
                        ));
                    } else {
                        asked.keyframe.store(true, Ordering::Relaxed);
                    }
                }
            }
        });

        let mut rx = frames.subscribe();
        // For the keyframe-recovery test only: withhold this viewer's first keyframe, so
        // it can recover through PLI alone.
        let mut withhold_keyframe =
            std::env::var_os("TANDEM_AGENT_TEST_DROP_FIRST_KEYFRAME").is_some();
        let mut packets = Packets::new(ssrc, codec.rtp_codec.payloader()?);
        let heard = Arc::clone(&feedback);
        let writer = tokio::spawn(async move {
            let payload_type = codec.payload_type;
            // A new viewer starts with a keyframe once its connection is up (R6); frames
            // before that could not reach it.
            if connected.wait_for(|up| *up).await.is_err() {
                return;
            }
            controls.keyframe.store(true, Ordering::Relaxed);
            // The negotiated payload type is fixed once connected: ask once, not per frame.
            let pt = sender
                .get_parameters()
                .await
                .ok()
                .and_then(|p| p.rtp_parameters.codecs.first().map(|c| c.payload_type))
                .unwrap_or(payload_type);
            let mut started = false;
            // Silence is counted from the connection's start at the earliest.
            let up_at = clock(Instant::now());
            let mut forced: Option<Instant> = None;
            let mut pacer = crate::packets::Pacer::default();
            loop {
                let frame = match rx.recv().await {
                    Ok(frame) => frame,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        controls.keyframe.store(true, Ordering::Relaxed);
                        started = false;
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                // A decoder can only start at a keyframe.
                if !started && !frame.frame.keyframe {
                    controls.keyframe.store(true, Ordering::Relaxed);
                    continue;
                }
                if !started {
                    trace(&format!("viewer {viewer}: first keyframe sent"));
                }
                started = true;
                if std::mem::take(&mut withhold_keyframe) && frame.frame.keyframe {
                    continue;
                }
                let now = Instant::now();
                let heard_ms = heard.heard_ms.load(Ordering::Relaxed).max(up_at);
                let heard_at = now
                    .checked_sub(Duration::from_millis(clock(now).saturating_sub(heard_ms)))
                    .unwrap_or(now);
                if !frame.frame.keyframe && silent_keyframe(now, heard_at, forced) {
                    forced = Some(now);
                    controls.keyframe.store(true, Ordering::Relaxed);
                    trace(&format!(
                        "viewer {viewer}: no feedback for {} ms: a keyframe unasked",
                        clock(now).saturating_sub(heard_ms)
                    ));
                }
                let sent = packets.of(&frame, pt);
                // No packets (the payloader refused the frame) is not written either.
                let mut written = !sent.is_empty();
                let timestamp = sent.first().map_or(0, |p| p.header.timestamp);
                keyframe_leaving.store(frame.frame.keyframe, Ordering::Relaxed);
                for packet in sent {
                    let estimate = heard.estimate_bps.load(Ordering::Relaxed);
                    let bytes = packet.payload.len() + crate::packets::PACKET_OVERHEAD;
                    let wait = pacer.wait(Instant::now(), bytes, estimate);
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    written &= track
                        .write_rtp_with_extensions(packet, &crate::packets::EXTENSIONS)
                        .await
                        .is_ok();
                }
                keyframe_leaving.store(false, Ordering::Relaxed);
                if tracing() {
                    // For the bench's click-to-photon stages: which frame carried which
                    // RTP timestamp, and when it left.
                    trace(&format!(
                        "viewer {viewer}: frame {} rtp {timestamp} sent {:.3}",
                        frame.number,
                        unix_ms(Instant::now()),
                    ));
                }
                if !written {
                    // Not written: start again from a fresh keyframe.
                    started = false;
                    controls.keyframe.store(true, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
        self.viewers.insert(
            viewer,
            Viewer {
                name,
                pc,
                answered: false,
                pending: Vec::new(),
                writer,
                gate,
                attempt,
                link: Link::Connecting,
                remote_kinds: BTreeSet::new(),
                feedback,
            },
        );
        Ok(())
    }

    /// Wake the main loop when this attempt's time is up.
    fn deadline(&self, viewer: ParticipantId, attempt: u64, after: Duration) {
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = events.send(PeerEvent::Deadline { viewer, attempt });
        });
    }

    /// Follow a viewer's connection: say what changed (for the customer's status), and
    /// restart ICE when it broke and did not come back by itself. Returns a sentence for
    /// the customer when there is news.
    pub async fn handle(&mut self, event: PeerEvent) -> Option<String> {
        let (viewer, attempt) = match &event {
            PeerEvent::State {
                viewer, attempt, ..
            }
            | PeerEvent::Deadline { viewer, attempt } => (*viewer, *attempt),
            // The main loop's (files.rs, clipboard.rs).
            PeerEvent::Files { .. } | PeerEvent::Clipboard { .. } => return None,
        };
        let have_relay = self.have_relay;
        let v = self.viewers.get_mut(&viewer)?;
        if attempt != v.attempt.load(Ordering::Relaxed) {
            return None; // about an earlier attempt
        }
        match event {
            PeerEvent::State { state, .. } => match state {
                RTCPeerConnectionState::Connected => {
                    let path = selected_path(v.pc.as_ref()).await;
                    let news = match &path {
                        Some(kind) if kind == "relay" => {
                            format!("{} is connected, through the relay.", v.name)
                        }
                        _ => format!("{} is connected.", v.name),
                    };
                    v.link = Link::Connected(path);
                    Some(news)
                }
                RTCPeerConnectionState::Disconnected => {
                    v.link = Link::Reconnecting;
                    self.deadline(viewer, attempt, RESTART_AFTER);
                    Some(format!(
                        "The connection to {} broke; reconnecting…",
                        self.viewers.get(&viewer)?.name
                    ))
                }
                RTCPeerConnectionState::Failed => self.restart(viewer, have_relay).await,
                _ => None,
            },
            PeerEvent::Files { .. } | PeerEvent::Clipboard { .. } => None,
            PeerEvent::Deadline { .. } => {
                if matches!(v.link, Link::Connected(_)) {
                    return None;
                }
                self.restart(viewer, have_relay).await
            }
        }
    }

    /// ICE again from scratch on the same connection (same DTLS, same stream): new
    /// credentials, fresh candidates both ways.
    async fn restart(&mut self, viewer: ParticipantId, have_relay: bool) -> Option<String> {
        let v = self.viewers.get_mut(&viewer)?;
        let first = matches!(v.link, Link::Connecting);
        let news = if first || matches!(v.link, Link::Failed(_)) {
            let why = why_not(
                &v.gate.gathered.lock().unwrap_or_else(|e| e.into_inner()),
                &v.remote_kinds,
                have_relay,
            );
            let news = format!("{} could not connect: {why} Trying again…", v.name);
            let changed = v.link != Link::Failed(why.clone());
            v.link = Link::Failed(why);
            changed.then_some(news)
        } else {
            v.link = Link::Reconnecting;
            None
        };
        let attempt = self.attempts.fetch_add(1, Ordering::Relaxed);
        v.attempt.store(attempt, Ordering::Relaxed);
        trace(&format!("viewer {viewer}: ICE restart, attempt {attempt}"));
        v.gate.hold();
        let offered = async {
            let offer =
                v.pc.create_offer(Some(RTCOfferOptions { ice_restart: true }))
                    .await?;
            v.pc.set_local_description(offer).await?;
            let sdp =
                v.pc.local_description()
                    .await
                    .context("no local description")?
                    .sdp;
            anyhow::Ok(sdp)
        }
        .await;
        match offered {
            Ok(sdp) => {
                v.answered = false;
                v.pending.clear();
                v.remote_kinds.clear();
                let _ = self.signal.send(ClientMessage::Offer {
                    to: viewer,
                    stream: StreamRef::Share(v.gate.share),
                    sdp,
                });
            }
            Err(e) => {
                crate::text::complain("viewer-reconnect-failed", e, &[("name", v.name.clone())])
            }
        }
        v.gate.release();
        self.deadline(viewer, attempt, CONNECT_DEADLINE);
        news
    }

    pub async fn answer(&mut self, from: ParticipantId, sdp: String) -> anyhow::Result<()> {
        let Some(viewer) = self.viewers.get_mut(&from) else {
            return Ok(());
        };
        trace(&format!("viewer {from}: answer received"));
        viewer
            .pc
            .set_remote_description(RTCSessionDescription::answer(sdp)?)
            .await?;
        viewer.answered = true;
        for candidate in viewer.pending.drain(..) {
            viewer.pc.add_ice_candidate(candidate).await?;
        }
        Ok(())
    }

    pub async fn candidate(&mut self, from: ParticipantId, c: IceCandidate) -> anyhow::Result<()> {
        let Some(viewer) = self.viewers.get_mut(&from) else {
            return Ok(());
        };
        if c.candidate.is_empty() {
            // The viewer's end of candidates: nothing more will come for this attempt.
            return Ok(());
        }
        if let Some(kind) = candidate_type(&c.candidate) {
            viewer.remote_kinds.insert(kind.to_owned());
        }
        let init = RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_mline_index,
            username_fragment: None,
            url: None,
        };
        if viewer.answered {
            viewer.pc.add_ice_candidate(init).await?;
        } else {
            viewer.pending.push(init);
        }
        Ok(())
    }

    pub async fn remove(&mut self, viewer: ParticipantId) {
        if let Some(v) = self.viewers.remove(&viewer) {
            v.writer.abort();
            self.input.disconnected(viewer);
            let _ = v.pc.close().await;
        }
    }

    pub async fn close_all(&mut self) {
        let all: Vec<ParticipantId> = self.viewers.keys().copied().collect();
        for viewer in all {
            self.remove(viewer).await;
        }
    }
}

/// How the connection runs: "relay" when either end of the selected pair is a relay
/// candidate (the viewer's relay carries the media as surely as ours), else the kind of
/// our local candidate ("host", "srflx", "prflx").
async fn selected_path(pc: &dyn PeerConnection) -> Option<String> {
    let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
    let selected = report.transport()?.selected_candidate_pair_id.clone();
    let pair = report.candidate_pairs().find(|p| {
        report.get(&selected).is_some_and(|e| e.id() == p.stats.id) || p.stats.id == selected
    })?;
    let mut local = None;
    let mut remote = None;
    for entry in report.iter() {
        match entry {
            RTCStatsReportEntry::LocalCandidate(c)
                if c.stats.id.ends_with(&pair.local_candidate_id) =>
            {
                local = Some(c.candidate_type.to_string());
            }
            RTCStatsReportEntry::RemoteCandidate(c)
                if c.stats.id.ends_with(&pair.remote_candidate_id) =>
            {
                remote = Some(c.candidate_type.to_string());
            }
            _ => {}
        }
    }
    if remote.as_deref() == Some("relay") {
        return remote;
    }
    local
}

/// Why no path was found, from what each side offered.
pub fn why_not(here: &BTreeSet<String>, there: &BTreeSet<String>, have_relay: bool) -> String {
    let describe = |kinds: &BTreeSet<String>| {
        let mut said: Vec<&str> = Vec::new();
        for kind in kinds {
            let word = match kind.as_str() {
                "host" | "prflx" => "direct",
                "srflx" => "through STUN",
                "relay" => "through the relay",
                _ => continue,
            };
            if !said.contains(&word) {
                said.push(word);
            }
        }
        if said.is_empty() {
            "nothing".to_owned()
        } else {
            said.join(", ")
        }
    };
    let advice = if here.contains("relay") || there.contains("relay") {
        ""
    } else if have_relay {
        " The relay could not be reached from either side."
    } else {
        " No relay (TURN) server is configured."
    };
    format!(
        "no network path was found (tried from here: {}; from the viewer: {}).{advice}",
        describe(here),
        describe(there)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_silent_while_frames_go_to_it_gets_keyframes_unasked_for_a_while() {
        let heard = Instant::now();
        let at = |ms: u64| heard + Duration::from_millis(ms);
        // Feedback 1.5 s ago: a still screen's pace, nothing wrong.
        assert!(!silent_keyframe(at(1500), heard, None));
        // Silent for 2 s: a keyframe, then none for 2 s, then another.
        assert!(silent_keyframe(at(2000), heard, None));
        assert!(!silent_keyframe(at(3000), heard, Some(at(2000))));
        assert!(silent_keyframe(at(4000), heard, Some(at(2000))));
        // Silent past 10 s: the connection is broken, no more.
        assert!(!silent_keyframe(at(10_500), heard, Some(at(7000))));
    }

    #[test]
    fn ice_urls_are_read_as_webrtc_and_the_tunnels_need_them() {
        assert_eq!(
            IceUrl::parse("stun:example.org:3478?transport=udp"),
            Some(IceUrl::Stun {
                host_port: "example.org:3478".into()
            })
        );
        assert_eq!(
            IceUrl::parse("turn:198.18.0.1:3478?transport=tcp"),
            Some(IceUrl::Turn {
                host: "198.18.0.1".into(),
                port: 3478,
                transport: Some(Transport::Tcp)
            })
        );
        assert_eq!(
            IceUrl::parse("turn:[2001:db8::1]?transport=udp"),
            Some(IceUrl::Turn {
                host: "2001:db8::1".into(),
                port: 3478,
                transport: None
            })
        );
        assert_eq!(
            IceUrl::parse("turns:tandem.example.org"),
            Some(IceUrl::Turn {
                host: "tandem.example.org".into(),
                port: 5349,
                transport: Some(Transport::Tls)
            })
        );
        assert_eq!(IceUrl::parse("http://example.org"), None);
        assert_eq!(IceUrl::parse("turn:"), None);
        assert_eq!(IceUrl::parse("turn:host:notaport"), None);
        assert_eq!(
            IceUrl::parse("turn:2001:db8::1"),
            None,
            "IPv6 needs brackets"
        );
    }

    #[test]
    fn candidate_types_are_read_from_the_line() {
        let line = "candidate:1 1 udp 2130706431 10.1.0.2 50000 typ host";
        assert_eq!(candidate_type(line), Some("host"));
        let relay = "candidate:3 1 udp 16777215 198.18.0.1 49152 typ relay raddr 0.0.0.0 rport 0";
        assert_eq!(candidate_type(relay), Some("relay"));
        assert_eq!(candidate_type(""), None);
    }

    #[test]
    fn a_failure_says_what_was_tried() {
        let set = |kinds: &[&str]| kinds.iter().map(|k| (*k).to_owned()).collect();
        let why = why_not(&set(&["host", "srflx"]), &set(&["host"]), false);
        assert!(
            why.contains("tried from here: direct, through STUN"),
            "{why}"
        );
        assert!(why.contains("from the viewer: direct"), "{why}");
        assert!(
            why.contains("No relay (TURN) server is configured"),
            "{why}"
        );
        let why = why_not(&set(&["host"]), &set(&[]), true);
        assert!(why.contains("The relay could not be reached"), "{why}");
        assert!(why.contains("from the viewer: nothing"), "{why}");
    }

    #[test]
    fn the_gate_holds_candidates_until_the_offer_is_out() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let gate = Gate {
            to: ParticipantId(7),
            share: ShareId(1),
            signal: tx,
            held: Mutex::new(Some(Vec::new())),
            gathered: Mutex::new(BTreeSet::new()),
        };
        let c = |n: &str| IceCandidate {
            candidate: n.into(),
            sdp_mid: None,
            sdp_mline_index: Some(0),
        };
        gate.send(c("a"));
        assert!(rx.try_recv().is_err(), "held before the offer");
        // The offer goes out here, then:
        gate.release();
        gate.send(c("b"));
        let got: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .filter_map(|m| match m {
                ClientMessage::IceCandidate { candidate, .. } => Some(candidate.candidate),
                _ => None,
            })
            .collect();
        assert_eq!(got, ["a", "b"], "in order, none lost");
        gate.hold();
        gate.send(c("c"));
        assert!(rx.try_recv().is_err(), "held again for a restart offer");
    }
}
