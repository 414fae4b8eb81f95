//! The recorder (docs/rules.md "Recording"): while a rep records a session, a participant
//! of role `recorder` inside this process views every share like any viewer (each agent's,
//! and a screen a rep shares from the console, which Chromium then sends as H.264), and
//! writes the H.264 it receives to fragmented MP4 as it comes, with no re-encoding
//! (`tandem_record`). One file per share recorded, in `<data dir>/recordings`, with a
//! WebVTT file beside it that holds the chat and who came and went, timed from its start.
//!
//! The call's sound comes from the console of a rep in the call, which mixes what it
//! hears with its own microphone and offers it to the recorder on the `recording` stream;
//! its Opus packets go, unchanged, into every file being written.
//!
//! The recorder speaks the protocol over an in-process channel instead of a socket:
//! `view_share`, then answers each offer and trickles candidates, as a browser does.
//! Files are written on a thread of their own per share, so a slow disk holds up nothing
//! else.

use std::collections::HashMap;
use std::fs::File;
use std::future::Future;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc as std_mpsc};
use std::time::Duration;

use anyhow::Context;
use rtc::interceptor::Registry as Interceptors;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MediaEngine,
};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{RTCIceCandidateInit, RTCIceServer};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tandem_protocol::{
    ClientMessage, IceCandidate, ParticipantId, ParticipantInfo, Role, ServerMessage,
    SessionNumber, ShareId, ShareInfo, ShareSource, StreamRef, Timestamp,
};
use tandem_record::{AccessUnit, Assembler, Mp4Writer};
use tandem_session::{AuditAction, AuditRecord};
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCPeerConnectionIceEvent,
};

use crate::live::{RecorderHost, RecorderStart, Registry, StoreJob};
use crate::outbound::Frame;
use crate::store::{NewRecording, RecordingRecord, Store};

/// Until the first keyframe arrives, ask for one this often.
const KEYFRAME_ASK: Duration = Duration::from_secs(1);
/// The extension the agent marks frames with (docs/protocol.md §4.5).
const PLAYOUT_DELAY_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";
/// Pictures waiting for the writer thread at most; beyond, pictures are skipped to the
/// next keyframe rather than held in memory.
const WRITER_QUEUE: usize = 512;
/// How long a chat line or an event shows in the player's text track.
const CUE_MS: i64 = 5000;
/// Sound packets waiting to be handed to the writers at most (about 5 s of 20 ms ones).
const SOUND_QUEUE: usize = 256;

/// Where recordings go, and what keeps track of them.
#[derive(Clone)]
pub struct Recordings {
    dir: PathBuf,
    store: Arc<dyn Store>,
    /// The store writer's queue, where audit records go in order (`lib.rs`).
    store_jobs: mpsc::UnboundedSender<StoreJob>,
    /// Recording stops while the disk has less than this free (bytes).
    min_free: u64,
}

impl std::fmt::Debug for Recordings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recordings")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Recordings {
    /// Recordings in `dir` (made if missing). Recordings that were going on when the
    /// server last stopped are marked `interrupted`, with the size their file has: they
    /// play up to their last fragment.
    pub async fn open(
        dir: PathBuf,
        store: Arc<dyn Store>,
        store_jobs: mpsc::UnboundedSender<StoreJob>,
    ) -> anyhow::Result<Self> {
        // Not fatal: the server runs without it, and a recording started meanwhile stops
        // at once with the reason for the rep.
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::error!(
                "cannot make the recordings folder {}: {e}; recordings will fail",
                dir.display()
            );
        }
        let recordings = Self {
            dir,
            store,
            store_jobs,
            min_free: crate::config::DEFAULT_RECORDING_MIN_FREE_MB << 20,
        };
        for r in recordings.store.recordings().await? {
            if r.state == "recording" {
                // The file's last write is where it ends: about its length.
                let file = std::fs::metadata(recordings.path(&r)).ok();
                let bytes = file.as_ref().map_or(0, std::fs::Metadata::len);
                let ended = file
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .and_then(|d| i64::try_from(d.as_millis()).ok())
                    .unwrap_or(r.started_at)
                    .max(r.started_at);
                recordings
                    .store
                    .finish_recording(
                        r.id,
                        ended,
                        ended - r.started_at,
                        i64::try_from(bytes).unwrap_or(0),
                        "interrupted",
                    )
                    .await?;
                tracing::warn!(
                    recording = r.id,
                    "a recording was cut off when the server stopped"
                );
            }
        }
        Ok(recordings)
    }

    /// Recordings stop, and do not start, while the disk holding them has less than
    /// `bytes` free.
    #[must_use]
    pub fn keeping_free(self, bytes: u64) -> Self {
        Self {
            min_free: bytes,
            ..self
        }
    }

    /// Why a recording cannot go on for want of disk space, if it cannot.
    fn short_of_space(&self) -> Option<String> {
        short_of_space(&self.dir, self.min_free)
    }

    /// The folder the recordings are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The video file of a recording.
    pub fn path(&self, recording: &RecordingRecord) -> PathBuf {
        self.dir.join(&recording.file)
    }

    /// Its text track (chat and events), WebVTT.
    pub fn events_path(&self, recording: &RecordingRecord) -> PathBuf {
        self.dir.join(format!("{}.vtt", recording.file))
    }

    /// Delete a recording: its files, then its row; the session's audit log says so, and
    /// who did it (`by`, an account; none: the retention ran out).
    pub async fn delete(
        &self,
        recording: &RecordingRecord,
        by: Option<&str>,
    ) -> anyhow::Result<()> {
        for path in [self.path(recording), self.events_path(recording)] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => anyhow::bail!("cannot delete {}: {e}", path.display()),
            }
        }
        self.store.delete_recording(recording.id).await?;
        let session = recording.session.parse().ok().and_then(SessionNumber::new);
        if let Some(session) = session {
            let record = AuditRecord {
                at: Timestamp(u64::try_from(crate::clock::now_millis()).unwrap_or(0)),
                session,
                actor: None,
                action: AuditAction::RecordingDeleted {
                    recording: recording.id,
                    by: by.map(str::to_owned),
                },
            };
            // Behind every record on its way to the store, and tried again while the
            // store refuses; the store writer holds it in the journal's outbox meanwhile.
            if let Err(unsent) = self.store_jobs.send(StoreJob::Audit { record, held: None })
                && let StoreJob::Audit { record, .. } = unsent.0
            {
                self.store.append_audit(&record).await?;
            }
        }
        Ok(())
    }

    /// Delete the finished recordings older than `days` (0: keep everything); returns
    /// how many went.
    pub async fn sweep(&self, days: u32) -> anyhow::Result<usize> {
        if days == 0 {
            return Ok(0);
        }
        let cutoff = crate::clock::now_millis() - i64::from(days) * 86_400_000;
        let mut deleted = 0;
        for r in self.store.recordings().await? {
            if r.state != "recording" && r.started_at < cutoff {
                // One that cannot be deleted now is tried again at the next sweep.
                match self.delete(&r, None).await {
                    Ok(()) => deleted += 1,
                    Err(e) => tracing::error!(recording = r.id, "not deleted: {e:#}"),
                }
            }
        }
        Ok(deleted)
    }
}

impl RecorderHost for Recordings {
    fn start(&self, registry: Arc<Registry>, start: RecorderStart) {
        let recordings = self.clone();
        tokio::spawn(async move {
            let seat = start.seat;
            let conn_id = start.conn_id;
            if let Err(e) = run(&recordings, &registry, start).await {
                tracing::error!(session = %seat.number, "the recorder stopped: {e:#}");
            }
            // Gone on its own (a failure) or removed: either way the session hears that
            // recording stopped; after removal this changes nothing.
            registry.closed(seat, conn_id, true);
        });
    }
}

/// One share being recorded.
struct Recorded {
    pc: Arc<dyn PeerConnection>,
    /// Pictures and notes for the file's writer thread.
    to_writer: std_mpsc::SyncSender<ToWriter>,
    writer: tokio::task::JoinHandle<()>,
    answered: bool,
    pending: Vec<RTCIceCandidateInit>,
}

enum ToWriter {
    /// A picture, and when it came.
    Picture(AccessUnit, std::time::Instant),
    /// An Opus packet of the call's sound, as it came.
    Sound(Arc<SoundPacket>),
    /// A line for the text track, at a wall-clock time (ms since the epoch).
    Note { at: i64, text: String },
    /// The share's connection is closed: complete the files. (Its track's task may
    /// still hold a sender for a while, so the channel's end is not waited for.)
    End,
}

/// An Opus packet of the call's sound: its stream, RTP timestamp and arrival.
struct SoundPacket {
    ssrc: u32,
    rtp: u32,
    arrived: std::time::Instant,
    payload: Vec<u8>,
}

/// The connection the call's sound comes over, from a rep's console.
struct SoundPeer {
    from: ParticipantId,
    pc: Arc<dyn PeerConnection>,
}

/// What the recorder knows of the session.
struct Recorder<'a> {
    recordings: &'a Recordings,
    registry: &'a Registry,
    start: &'a RecorderStart,
    runtime: Arc<dyn webrtc::runtime::Runtime>,
    ice_servers: Vec<RTCIceServer>,
    people: HashMap<ParticipantId, ParticipantInfo>,
    shares: HashMap<ShareId, ShareInfo>,
    recorded: HashMap<ShareId, Recorded>,
    /// A writer that could not write says why here: recording stops.
    trouble: mpsc::UnboundedSender<String>,
    /// The rep who started the recording, told when it cannot go on.
    started_by: Option<ParticipantId>,
    /// Shares asked for with `view_share` and not answered yet.
    asked: std::collections::HashSet<ShareId>,
    signal: mpsc::UnboundedSender<ClientMessage>,
    /// The call's sound, while a console sends it.
    sound: Option<SoundPeer>,
    sounds: mpsc::Sender<SoundPacket>,
}

async fn run(
    recordings: &Recordings,
    registry: &Registry,
    mut start: RecorderStart,
) -> anyhow::Result<()> {
    let runtime = webrtc::runtime::default_runtime()
        .ok_or_else(|| anyhow::anyhow!("no async runtime for WebRTC"))?;
    let mut rx = std::mem::replace(&mut start.rx, crate::outbound::channel().1);
    let (signal, mut signals) = mpsc::unbounded_channel();
    let (trouble, mut troubles) = mpsc::unbounded_channel::<String>();
    let (sounds, mut sound_packets) = mpsc::channel(SOUND_QUEUE);
    let mut recorder = Recorder {
        recordings,
        registry,
        start: &start,
        runtime,
        ice_servers: Vec::new(),
        people: HashMap::new(),
        shares: HashMap::new(),
        recorded: HashMap::new(),
        asked: std::collections::HashSet::new(),
        trouble,
        started_by: None,
        signal,
        sound: None,
        sounds,
    };
    let result = loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Some(Frame::Text(text)) => match tandem_protocol::decode_server(&text) {
                    Ok(ServerMessage::SessionEnded { .. }) => break Ok(()),
                    Ok(message) => {
                        if let Err(e) = recorder.on_message(message).await {
                            tracing::warn!(session = %start.seat.number, "recorder: {e:#}");
                        }
                    }
                    Err(e) => tracing::warn!("recorder: a message it cannot read: {e:?}"),
                },
                Some(Frame::Ping) => {}
                Some(Frame::Close { .. }) | None => break Ok(()),
            },
            Some(message) = signals.recv() => recorder.send(message),
            Some(packet) = sound_packets.recv() => recorder.hand_on(packet),
            Some(reason) = troubles.recv() => {
                // The recorder leaves (everyone sees the recording stop), and the rep who
                // started it hears why.
                if let Some(rep) = recorder.started_by {
                    let text = format!(
                        "The recording stopped: the server could not write it ({reason}). \
                         Tell your administrator."
                    );
                    let rep = crate::live::Seat {
                        number: start.seat.number,
                        participant: rep,
                    };
                    registry.notify(rep, ServerMessage::Notice { text, topic: None });
                }
                break Err(anyhow::anyhow!("could not write the recording: {reason}"));
            }
        }
    };
    recorder.stop_sound().await;
    for (_, recorded) in recorder.recorded.drain() {
        finish(recorded).await;
    }
    result
}

impl Recorder<'_> {
    fn send(&self, message: ClientMessage) {
        if let Err(refusal) = self.registry.command(self.start.seat, message) {
            tracing::debug!(?refusal, "the recorder's message was refused");
        }
    }

    /// Views every share (an agent's, or a screen a rep shares from the console), once
    /// its owner is connected: after a server restart the recorder is back before the
    /// owners, and an owner only hears of a viewer while it is connected.
    fn view_if_recorded(&mut self, share: ShareInfo) {
        let id = share.share;
        self.shares.insert(id, share);
        self.view_ready(id);
    }

    fn view_ready(&mut self, id: ShareId) {
        let Some(share) = self.shares.get(&id) else {
            return;
        };
        // Every share: an agent's, and a screen a rep shares from the console.
        let ready = self
            .people
            .get(&share.owner)
            .is_some_and(|p| p.role != Role::Recorder && p.connected);
        if ready && !self.recorded.contains_key(&id) && !self.asked.contains(&id) {
            self.asked.insert(id);
            self.send(ClientMessage::ViewShare { share: id });
        }
    }

    /// A packet of the call's sound, to every file being written (dropped for a writer
    /// with no room for it now, never waited for).
    fn hand_on(&self, packet: SoundPacket) {
        let packet = Arc::new(packet);
        for recorded in self.recorded.values() {
            let _ = recorded
                .to_writer
                .try_send(ToWriter::Sound(Arc::clone(&packet)));
        }
    }

    async fn stop_sound(&mut self) {
        if let Some(old) = self.sound.take()
            && let Err(e) = old.pc.close().await
        {
            tracing::debug!("closing the call's sound connection: {e}");
        }
    }

    /// A console offers the call's sound: a new connection (any earlier one is closed),
    /// answered at once.
    async fn answer_sound(&mut self, from: ParticipantId, sdp: String) -> anyhow::Result<()> {
        self.stop_sound().await;
        let pc = self.connect_sound(from).await?;
        let answer = answer_or_close(&pc, sdp)
            .await
            .context("could not answer the call's sound")?;
        self.send(ClientMessage::Answer {
            to: from,
            stream: StreamRef::Recording,
            sdp: answer.sdp,
        });
        self.sound = Some(SoundPeer { from, pc });
        Ok(())
    }

    async fn connect_sound(&self, rep: ParticipantId) -> anyhow::Result<Arc<dyn PeerConnection>> {
        let mut media = MediaEngine::default();
        media.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_OPUS.to_owned(),
                    clock_rate: 48_000,
                    channels: 2,
                    sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                    rtcp_feedback: Vec::new(),
                },
                payload_type: 111,
            },
            RtpCodecKind::Audio,
        )?;
        let handler = Arc::new(SoundHandler {
            rep,
            signal: self.signal.clone(),
            sounds: self.sounds.clone(),
            runtime: Arc::clone(&self.runtime),
        });
        self.receiver(media, handler, RtpCodecKind::Audio).await
    }

    /// A receive-only connection for `kind`, its receiver there before the offer
    /// (webrtc-rs raises `on_track` for a transceiver the answerer asked for).
    async fn receiver(
        &self,
        mut media: MediaEngine,
        handler: Arc<dyn PeerConnectionEventHandler>,
        kind: RtpCodecKind,
    ) -> anyhow::Result<Arc<dyn PeerConnection>> {
        let interceptors = register_default_interceptors(Interceptors::new(), &mut media)?;
        let pc = PeerConnectionBuilder::new()
            .with_configuration(
                RTCConfigurationBuilder::new()
                    .with_ice_servers(self.ice_servers.clone())
                    .build(),
            )
            .with_media_engine(media)
            .with_interceptor_registry(interceptors)
            .with_handler(handler)
            .with_runtime(Arc::clone(&self.runtime))
            .with_udp_addrs(host_addresses())
            .build()
            .await?;
        pc.add_transceiver_from_kind(
            kind,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )
        .await?;
        Ok(Arc::new(pc))
    }

    fn note(&self, text: String) {
        let at = crate::clock::now_millis();
        for recorded in self.recorded.values() {
            // A note the writer has no room for now is dropped, never waited for.
            let _ = recorded.to_writer.try_send(ToWriter::Note {
                at,
                text: text.clone(),
            });
        }
    }

    fn name(&self, who: ParticipantId) -> String {
        self.people
            .get(&who)
            .map_or_else(|| format!("participant {who}"), |p| p.name.clone())
    }

    async fn on_message(&mut self, message: ServerMessage) -> anyhow::Result<()> {
        match message {
            ServerMessage::IceServers { ice_servers } => {
                self.ice_servers = ice_servers
                    .into_iter()
                    .map(|s| RTCIceServer {
                        // The recorder runs on the server: UDP STUN and TURN are enough.
                        urls: s
                            .urls
                            .into_iter()
                            .filter(|u| {
                                u.starts_with("stun:")
                                    || (u.starts_with("turn:") && !u.contains("transport=tcp"))
                            })
                            .collect(),
                        username: s.username.unwrap_or_default(),
                        credential: s.credential.unwrap_or_default(),
                    })
                    .filter(|s| !s.urls.is_empty())
                    .collect();
            }
            ServerMessage::Joined(snapshot) => {
                self.started_by = snapshot.recording.map(|r| r.started_by);
                if let Some(reason) = self.recordings.short_of_space() {
                    let _ = self.trouble.send(reason);
                }
                self.people = snapshot
                    .participants
                    .into_iter()
                    .map(|p| (p.id, p))
                    .collect();
                for share in snapshot.shares {
                    self.view_if_recorded(share);
                }
            }
            ServerMessage::ParticipantJoined { participant } => {
                if participant.role != Role::Recorder {
                    self.note(format!("{} joined", participant.name));
                }
                self.people.insert(participant.id, participant);
            }
            ServerMessage::ParticipantUpdated { participant } => {
                let (who, connected) = (participant.id, participant.connected);
                self.people.insert(who, participant);
                if !connected {
                    // Its connection to us is gone too: ask again when it is back.
                    self.asked
                        .retain(|id| self.shares.get(id).is_none_or(|s| s.owner != who));
                }
                let theirs: Vec<ShareId> = self
                    .shares
                    .values()
                    .filter(|s| s.owner == who)
                    .map(|s| s.share)
                    .collect();
                for id in theirs {
                    self.view_ready(id);
                }
            }
            ServerMessage::ParticipantLeft { participant, .. } => {
                self.note(format!("{} left", self.name(participant)));
                self.people.remove(&participant);
                if self.sound.as_ref().is_some_and(|s| s.from == participant) {
                    self.stop_sound().await;
                }
            }
            ServerMessage::Chat { name, text, .. } => self.note(format!("{name}: {text}")),
            ServerMessage::CallState { call } => {
                // The console that sent the call's sound left the call, or it ended.
                let sending = self.sound.as_ref().map(|s| s.from);
                let still = call
                    .iter()
                    .flat_map(|c| &c.members)
                    .any(|m| Some(m.participant) == sending);
                if sending.is_some() && !still {
                    self.stop_sound().await;
                }
            }
            ServerMessage::ControlChanged { control, .. } => match control {
                Some(control) => {
                    self.note(format!("{} has control", self.name(control.holder)));
                }
                None => self.note("Nobody has control".to_owned()),
            },
            ServerMessage::ShareStarted { share } => self.view_if_recorded(share),
            ServerMessage::ShareStopped { share, .. } => {
                self.shares.remove(&share);
                self.asked.remove(&share);
                if let Some(recorded) = self.recorded.remove(&share) {
                    finish(recorded).await;
                }
            }
            ServerMessage::Offer {
                from,
                stream: StreamRef::Share(share),
                sdp,
            } => self.answer(from, share, sdp).await?,
            ServerMessage::Offer {
                from,
                stream: StreamRef::Recording,
                sdp,
            } => self.answer_sound(from, sdp).await?,
            ServerMessage::IceCandidate {
                from,
                stream: StreamRef::Recording,
                candidate,
            } => {
                if let Some(sound) = &self.sound
                    && sound.from == from
                    && !candidate.candidate.is_empty()
                {
                    sound.pc.add_ice_candidate(ice_init(candidate)).await?;
                }
            }
            ServerMessage::IceCandidate {
                stream: StreamRef::Share(share),
                candidate,
                ..
            } => {
                if let Some(recorded) = self.recorded.get_mut(&share)
                    && !candidate.candidate.is_empty()
                {
                    let init = ice_init(candidate);
                    if recorded.answered {
                        recorded.pc.add_ice_candidate(init).await?;
                    } else {
                        recorded.pending.push(init);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The owner's offer for a share (an agent, or a console sharing its screen): a new
    /// connection (an earlier one for the share is closed and its file finished),
    /// answered at once.
    async fn answer(
        &mut self,
        from: ParticipantId,
        share: ShareId,
        sdp: String,
    ) -> anyhow::Result<()> {
        if let Some(recorded) = self.recorded.get_mut(&share)
            && recorded.answered
        {
            // The agent restarts ICE on the same connection: answer on it.
            let answer = answer_offer(&recorded.pc, sdp).await?;
            self.send(ClientMessage::Answer {
                to: from,
                stream: StreamRef::Share(share),
                sdp: answer.sdp,
            });
            return Ok(());
        }
        if let Some(old) = self.recorded.remove(&share) {
            finish(old).await;
        }
        let info = self.shares.get(&share);
        let from_agent = self
            .people
            .get(&from)
            .is_some_and(|p| p.role == Role::Agent);
        let title = match info.map(|s| &s.source) {
            // A screen shared from a console (Chromium's H.264, with no playout-delay).
            _ if !from_agent => format!("{}: screen", self.name(from)),
            Some(ShareSource::Window { title }) => {
                format!("{}: window \"{title}\"", self.name(from))
            }
            Some(ShareSource::Monitor { name }) => format!("{}: monitor {name}", self.name(from)),
            _ => format!("{}: desktop", self.name(from)),
        };
        let (to_writer, pictures) = std_mpsc::sync_channel(WRITER_QUEUE);
        let keyframe_seen = Arc::new(AtomicBool::new(false));
        let writer = spawn_writer(
            self.recordings.clone(),
            NewRecording {
                session: self.start.seat.number.digits(),
                title,
                file: String::new(),
                started_by: self.start.started_by.id,
                started_by_name: self.start.started_by.display_name.clone(),
                started_at: 0,
            },
            pictures,
            Arc::clone(&keyframe_seen),
            self.trouble.clone(),
        )?;
        // Asked for again when the agent comes back, if this fails.
        self.asked.remove(&share);
        let pc = self
            .connect(from, share, to_writer.clone(), keyframe_seen)
            .await?;
        // On failure nothing is left behind: the connection closes, and with it the last
        // sender to the writer thread, which ends without a file.
        let answer = answer_or_close(&pc, sdp)
            .await
            .context("could not answer the offer (a share the recorder can take only as H.264)")?;
        self.send(ClientMessage::Answer {
            to: from,
            stream: StreamRef::Share(share),
            sdp: answer.sdp,
        });
        self.recorded.insert(
            share,
            Recorded {
                pc,
                to_writer,
                writer,
                answered: true,
                pending: Vec::new(),
            },
        );
        Ok(())
    }

    async fn connect(
        &self,
        agent: ParticipantId,
        share: ShareId,
        to_writer: std_mpsc::SyncSender<ToWriter>,
        keyframe_seen: Arc<AtomicBool>,
    ) -> anyhow::Result<Arc<dyn PeerConnection>> {
        let mut media = MediaEngine::default();
        media.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_H264.to_owned(),
                    clock_rate: 90_000,
                    channels: 0,
                    sdp_fmtp_line:
                        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
                            .to_owned(),
                    // Keyframe requests, negotiated as a browser does; no NACK: pictures
                    // after a loss are skipped to the next keyframe instead.
                    rtcp_feedback: vec![
                        RTCPFeedback {
                            typ: "nack".to_owned(),
                            parameter: "pli".to_owned(),
                        },
                        RTCPFeedback {
                            typ: "ccm".to_owned(),
                            parameter: "fir".to_owned(),
                        },
                    ],
                },
                payload_type: 102,
            },
            RtpCodecKind::Video,
        )?;
        // The agent marks every frame with playout-delay 0–0 and writes nothing to a viewer
        // that did not accept the extension.
        media.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: PLAYOUT_DELAY_URI.to_owned(),
            },
            RtpCodecKind::Video,
            None,
        )?;
        let handler = Arc::new(Handler {
            agent,
            share,
            signal: self.signal.clone(),
            to_writer,
            keyframe_seen,
            runtime: Arc::clone(&self.runtime),
        });
        self.receiver(media, handler, RtpCodecKind::Video).await
    }
}

/// Every address of this machine but link-local ones, loopback included (an agent on
/// the server's own machine).
fn host_addresses() -> Vec<String> {
    let mut all: Vec<IpAddr> = rtc::shared::ifaces::ifaces()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| i.addr.map(|a| a.ip()))
        .filter(|ip| match ip {
            IpAddr::V4(v) => !v.is_link_local() && !v.is_unspecified(),
            IpAddr::V6(v) => v.segments()[0] & 0xffc0 != 0xfe80 && !v.is_unspecified(),
        })
        .collect();
    all.sort();
    all.dedup();
    if all.iter().all(IpAddr::is_loopback) {
        tracing::warn!(
            "the recorder found no network address of this machine (is AF_NETLINK allowed?): \
             it can record only agents on this machine, or through a TURN relay"
        );
    }
    if all.is_empty() {
        all.push(IpAddr::from([127, 0, 0, 1]));
    }
    all.into_iter()
        .map(|ip| SocketAddr::new(ip, 0).to_string())
        .collect()
}

/// Apply `sdp`, an offer, to `pc` and answer it.
async fn answer_offer(
    pc: &Arc<dyn PeerConnection>,
    sdp: String,
) -> anyhow::Result<RTCSessionDescription> {
    pc.set_remote_description(RTCSessionDescription::offer(sdp)?)
        .await?;
    let answer = pc.create_answer(None).await?;
    pc.set_local_description(answer.clone()).await?;
    Ok(answer)
}

/// [`answer_offer`] on a new connection, closed if that fails.
async fn answer_or_close(
    pc: &Arc<dyn PeerConnection>,
    sdp: String,
) -> anyhow::Result<RTCSessionDescription> {
    let answered = answer_offer(pc, sdp).await;
    if answered.is_err()
        && let Err(e) = pc.close().await
    {
        tracing::debug!("closing a connection whose answer failed: {e}");
    }
    answered
}

/// A candidate as the protocol carries it, as webrtc-rs takes it.
fn ice_init(candidate: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: candidate.candidate,
        sdp_mid: candidate.sdp_mid,
        sdp_mline_index: candidate.sdp_mline_index,
        username_fragment: None,
        url: None,
    }
}

/// One of our candidates, to the peer at the other end of `stream`.
fn send_candidate(
    signal: &mpsc::UnboundedSender<ClientMessage>,
    to: ParticipantId,
    stream: StreamRef,
    event: &RTCPeerConnectionIceEvent,
) {
    if let Ok(init) = event.candidate.to_json() {
        let _ = signal.send(ClientMessage::IceCandidate {
            to,
            stream,
            candidate: IceCandidate {
                candidate: init.candidate,
                sdp_mid: init.sdp_mid,
                sdp_mline_index: init.sdp_mline_index,
            },
        });
    }
}

/// The call's sound connection: its candidates to the console, its packets to the
/// recorder.
struct SoundHandler {
    rep: ParticipantId,
    signal: mpsc::UnboundedSender<ClientMessage>,
    sounds: mpsc::Sender<SoundPacket>,
    runtime: Arc<dyn webrtc::runtime::Runtime>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for SoundHandler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        send_candidate(&self.signal, self.rep, StreamRef::Recording, &event);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let sounds = self.sounds.clone();
        self.runtime.spawn(Box::pin(async move {
            while let Some(event) = track.poll().await {
                let TrackRemoteEvent::OnRtpPacket(packet) = event else {
                    continue;
                };
                if packet.payload.is_empty() {
                    continue;
                }
                let sound = SoundPacket {
                    ssrc: packet.header.ssrc,
                    rtp: packet.header.timestamp,
                    arrived: std::time::Instant::now(),
                    payload: packet.payload.to_vec(),
                };
                match sounds.try_send(sound) {
                    Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
        }));
    }
}

async fn finish(recorded: Recorded) {
    if let Err(e) = recorded.pc.close().await {
        tracing::debug!("closing a recorded connection: {e}");
    }
    // The writer completes its files, then the row follows.
    let _ = recorded.to_writer.send(ToWriter::End);
    if recorded.writer.await.is_err() {
        tracing::error!("a recording's bookkeeping failed");
    }
}

struct Handler {
    agent: ParticipantId,
    share: ShareId,
    signal: mpsc::UnboundedSender<ClientMessage>,
    to_writer: std_mpsc::SyncSender<ToWriter>,
    keyframe_seen: Arc<AtomicBool>,
    runtime: Arc<dyn webrtc::runtime::Runtime>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        send_candidate(
            &self.signal,
            self.agent,
            StreamRef::Share(self.share),
            &event,
        );
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let Some(&ssrc) = track.ssrcs().await.first() else {
            return;
        };
        // Ask for a keyframe until one came: a recording starts with one.
        let asking = Arc::clone(&track);
        let seen = Arc::clone(&self.keyframe_seen);
        self.runtime.spawn(Box::pin(async move {
            while !seen.load(Ordering::Relaxed) {
                let pli = PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc: ssrc,
                };
                if asking.write_rtcp(vec![Box::new(pli)]).await.is_err() {
                    break;
                }
                tokio::time::sleep(KEYFRAME_ASK).await;
            }
        }));
        let to_writer = self.to_writer.clone();
        self.runtime.spawn(Box::pin(async move {
            let mut depacketizer = H264Packet::default();
            let mut assembler = Assembler::default();
            // Packets in order, or the pictures after a gap are not written: a lost
            // packet would make every picture up to the next keyframe wrong. So after a
            // gap (or a picture the writer could not take) pictures are dropped until a
            // keyframe that starts after it, which is asked for at once.
            let mut expected: Option<u16> = None;
            let mut broken_at: Option<u32> = None;
            let mut asked_at: Option<std::time::Instant> = None;
            while let Some(event) = track.poll().await {
                let TrackRemoteEvent::OnRtpPacket(packet) = event else {
                    continue;
                };
                let seq = packet.header.sequence_number;
                if let Some(e) = expected {
                    let ahead = seq.wrapping_sub(e) as i16;
                    if ahead < 0 {
                        continue; // late or repeated
                    }
                    if ahead > 0 {
                        assembler.reset();
                        depacketizer = H264Packet::default();
                        broken_at = Some(packet.header.timestamp);
                    }
                }
                expected = Some(seq.wrapping_add(1));
                if packet.payload.is_empty() {
                    continue;
                }
                let Ok(annex_b) = depacketizer.depacketize(&packet.payload) else {
                    continue;
                };
                let pictures =
                    assembler.push(packet.header.timestamp, packet.header.marker, &annex_b);
                if assembler.take_dropped() {
                    broken_at = Some(packet.header.timestamp);
                }
                for picture in pictures {
                    if let Some(at) = broken_at {
                        if picture.is_keyframe() && picture.rtp_timestamp != at {
                            broken_at = None;
                        } else {
                            continue;
                        }
                    }
                    let arrived = std::time::Instant::now();
                    match to_writer.try_send(ToWriter::Picture(picture, arrived)) {
                        Ok(()) => {}
                        Err(std_mpsc::TrySendError::Full(ToWriter::Picture(p, _))) => {
                            // The disk is behind: skip to the next keyframe.
                            broken_at = Some(p.rtp_timestamp);
                        }
                        Err(_) => return,
                    }
                }
                if broken_at.is_some() && asked_at.is_none_or(|t| t.elapsed() >= KEYFRAME_ASK) {
                    asked_at = Some(std::time::Instant::now());
                    let pli = PictureLossIndication {
                        sender_ssrc: 0,
                        media_ssrc: ssrc,
                    };
                    if track.write_rtcp(vec![Box::new(pli)]).await.is_err() {
                        return;
                    }
                }
            }
        }));
    }
}

/// What the writer thread reports, for the share's row.
enum Written {
    /// The first keyframe came: the files exist.
    Opened { file: String, started_at: i64 },
    /// The files could not be made or written: recording stops, and why.
    Failed { reason: String },
    /// The files are complete (or the writing failed): how long, how large.
    Finished {
        state: &'static str,
        duration_ms: i64,
        bytes: i64,
    },
}

/// One share's recording: a thread writes the files (it starts them at the first
/// keyframe and completes them when the share's connection is done), and a task keeps
/// the row in step with what it reports. Completes when both are done.
fn spawn_writer(
    recordings: Recordings,
    row: NewRecording,
    pictures: std_mpsc::Receiver<ToWriter>,
    keyframe_seen: Arc<AtomicBool>,
    trouble: mpsc::UnboundedSender<String>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let (report, mut reports) = mpsc::unbounded_channel();
    let dir = recordings.dir.clone();
    let min_free = recordings.min_free;
    let session = row.session.clone();
    std::thread::Builder::new()
        .name("tandem-recorder".into())
        .spawn(move || {
            write_files(&dir, min_free, &session, &pictures, &keyframe_seen, &report);
        })?;
    Ok(tokio::spawn(async move {
        let mut kept: Option<RecordingRecord> = None;
        while let Some(written) = reports.recv().await {
            match written {
                Written::Failed { reason } => {
                    let _ = trouble.send(reason);
                }
                Written::Opened { file, started_at } => {
                    let row = NewRecording {
                        file,
                        started_at,
                        ..row.clone()
                    };
                    let created = with_retries("listing a recording", STORE_RETRY, || {
                        recordings.store.create_recording(&row)
                    })
                    .await;
                    match created {
                        Ok(record) => kept = Some(record),
                        Err(e) => tracing::error!(
                            file = %row.file,
                            "a recording is written but not listed (the database refused): {e}"
                        ),
                    }
                }
                Written::Finished {
                    state,
                    duration_ms,
                    bytes,
                } => {
                    let Some(record) = &kept else { continue };
                    let now = crate::clock::now_millis();
                    let finish = with_retries("noting a recording's end", STORE_RETRY, || {
                        recordings
                            .store
                            .finish_recording(record.id, now, duration_ms, bytes, state)
                    });
                    if let Err(e) = finish.await {
                        tracing::error!(recording = record.id, "could not note its end: {e}");
                    }
                    tracing::info!(
                        recording = record.id,
                        state,
                        duration_ms,
                        bytes,
                        "recording finished"
                    );
                }
            }
        }
    }))
}

/// How often a recording's row is tried before its trouble is only logged.
const STORE_TRIES: u32 = 5;
/// The wait before the second try; it doubles each time.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// `attempt` until it succeeds, at most [`STORE_TRIES`] times, waiting 1, 2, 4… s in
/// between: a database that is away for a moment (a restart, a failover) does not leave
/// a recording unlisted or listed as still going on.
async fn with_retries<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    what: &str,
    mut wait: Duration,
    mut attempt: impl FnMut() -> F,
) -> Result<T, E> {
    let mut tried = 1;
    loop {
        match attempt().await {
            Err(e) if tried < STORE_TRIES => {
                tracing::warn!(
                    "{what} failed (try {tried} of {STORE_TRIES}): {e}; trying again in {} s",
                    wait.as_secs()
                );
                tokio::time::sleep(wait).await;
                wait *= 2;
                tried += 1;
            }
            done => return done,
        }
    }
}

/// The writer thread: files only, never the database.
fn write_files(
    dir: &Path,
    min_free: u64,
    session: &str,
    pictures: &std_mpsc::Receiver<ToWriter>,
    keyframe_seen: &AtomicBool,
    report: &mpsc::UnboundedSender<Written>,
) {
    let mut open: Option<Opened> = None;
    let mut notes: Vec<(i64, String)> = Vec::new();
    // The disk's free space is looked at when the files start and every so often.
    let mut space_checked = std::time::Instant::now();
    let mut short: Option<String> = None;
    let mut failed: Option<tandem_record::Mp4Error> = None;
    while let Ok(item) = pictures.recv() {
        match (item, &mut open) {
            (ToWriter::End, _) => break,
            (ToWriter::Picture(picture, arrived), None) => {
                if !picture.is_keyframe() || picture.parameter_sets().is_none() {
                    continue;
                }
                keyframe_seen.store(true, Ordering::Relaxed);
                if let Some(reason) = short_of_space(dir, min_free) {
                    let _ = report.send(Written::Failed { reason });
                    return;
                }
                match start_files(dir, session, &picture, arrived) {
                    Ok(mut opened) => {
                        for (at, text) in notes.drain(..) {
                            let from = opened.cue_at(at);
                            write_cue(&mut opened.events, from, &text);
                        }
                        let _ = report.send(Written::Opened {
                            file: opened.file.clone(),
                            started_at: opened.started_at,
                        });
                        open = Some(opened);
                    }
                    Err(e) => {
                        tracing::error!("could not start a recording: {e:#}");
                        let _ = report.send(Written::Failed {
                            reason: format!("{e:#}"),
                        });
                        return;
                    }
                }
            }
            (ToWriter::Picture(picture, arrived), Some(opened)) => {
                if space_checked.elapsed() >= SPACE_CHECK_EVERY {
                    space_checked = std::time::Instant::now();
                    short = short_of_space(dir, min_free);
                    if short.is_some() {
                        break; // the file is completed below, as it is
                    }
                }
                opened.last_arrival = arrived;
                if let Err(e) = opened.video.push(&picture) {
                    failed = Some(e);
                    break;
                }
            }
            (ToWriter::Sound(packet), Some(opened)) => {
                // Placed after the last picture by as long as it came after it: sound
                // and pictures stay together whatever the agent's clock does.
                let base = opened.video.last_picture_time();
                let at = match packet.arrived.checked_duration_since(opened.last_arrival) {
                    Some(after) => base + after,
                    None => base.saturating_sub(opened.last_arrival - packet.arrived),
                };
                let pushed = opened
                    .video
                    .push_sound(at, packet.ssrc, packet.rtp, &packet.payload);
                if let Err(e) = pushed {
                    failed = Some(e);
                    break;
                }
            }
            // Before the first picture there is no file to put it in.
            (ToWriter::Sound(_), None) => {}
            (ToWriter::Note { at, text }, None) => notes.push((at, text)),
            (ToWriter::Note { at, text }, Some(opened)) => {
                let from = opened.cue_at(at);
                write_cue(&mut opened.events, from, &text);
            }
        }
    }
    let Some(mut opened) = open else {
        tracing::info!("a recorded share ended before its first keyframe");
        return;
    };
    if let Some(e) = &failed {
        tracing::error!(file = %opened.file, "could not write the recording: {e}");
        let _ = report.send(Written::Failed {
            reason: e.to_string(),
        });
    }
    if let Some(reason) = short {
        tracing::error!(file = %opened.file, "recording stopped: {reason}");
        let _ = report.send(Written::Failed { reason });
    }
    let _ = opened.events.flush();
    let (file, started_at) = (opened.file, opened.started_at);
    let finished = match (failed.is_some(), opened.video.finish()) {
        (false, Ok((_, summary))) => Written::Finished {
            state: "done",
            duration_ms: i64::try_from(summary.duration_ms).unwrap_or(i64::MAX),
            bytes: i64::try_from(summary.bytes).unwrap_or(i64::MAX),
        },
        (_, finished) => {
            if let Err(e) = finished {
                tracing::error!(%file, "could not complete the recording: {e}");
            }
            let bytes = std::fs::metadata(dir.join(&file)).map_or(0, |m| m.len());
            Written::Finished {
                state: "failed",
                duration_ms: crate::clock::now_millis() - started_at,
                bytes: i64::try_from(bytes).unwrap_or(0),
            }
        }
    };
    let _ = report.send(finished);
}

/// A recording's files while they are written.
struct Opened {
    file: String,
    started_at: i64,
    /// When the last picture written came: the sound and the text track's lines are
    /// placed from there.
    last_arrival: std::time::Instant,
    video: Mp4Writer<BufWriter<File>>,
    events: BufWriter<File>,
}

impl Opened {
    /// Where a line that happened at `at` (wall clock, ms since the epoch) goes on the
    /// file's timeline (ms): after the last picture by as long as it came after it, so
    /// that it stays with the pictures across a pause the file shortens.
    fn cue_at(&self, at: i64) -> i64 {
        let picture = i64::try_from(self.video.last_picture_time().as_millis()).unwrap_or(i64::MAX);
        cue_at(picture, wall_millis(self.last_arrival), at)
    }
}

/// A line that happened at `at` goes `at - last_arrival_at` after the last picture, which
/// is at `picture` ms in the file (never before the file's start).
fn cue_at(picture: i64, last_arrival_at: i64, at: i64) -> i64 {
    picture
        .saturating_add(at.saturating_sub(last_arrival_at))
        .max(0)
}

/// An `Instant` that has passed, on the wall clock (ms since the epoch).
fn wall_millis(then: std::time::Instant) -> i64 {
    crate::clock::now_millis() - i64::try_from(then.elapsed().as_millis()).unwrap_or(0)
}

/// The first keyframe: make the files.
fn start_files(
    dir: &Path,
    session: &str,
    first: &AccessUnit,
    arrived: std::time::Instant,
) -> anyhow::Result<Opened> {
    // Unguessable and unique: the name says nothing, the row says everything.
    let file = format!(
        "{session}-{}.mp4",
        crate::clock::secret().get(..16).unwrap_or("x")
    );
    let path = dir.join(&file);
    let video = Mp4Writer::new(BufWriter::new(create(&path)?), first)?;
    let mut events = BufWriter::new(create(&dir.join(format!("{file}.vtt")))?);
    events.write_all(b"WEBVTT\n\n")?;
    Ok(Opened {
        file,
        started_at: crate::clock::now_millis(),
        last_arrival: arrived,
        video,
        events,
    })
}

/// How often a recording looks at the disk's free space.
const SPACE_CHECK_EVERY: Duration = Duration::from_secs(10);

/// Why recording must stop for want of space on the disk holding `dir`, if it must
/// (less than `min_free` bytes free for an unprivileged process). A disk that cannot be
/// asked does not stop it: writing fails with the reason if it is really full.
fn short_of_space(dir: &Path, min_free: u64) -> Option<String> {
    let stat = match rustix::fs::statvfs(dir) {
        Ok(stat) => stat,
        Err(e) => {
            tracing::debug!("cannot ask the free space of {}: {e}", dir.display());
            return None;
        }
    };
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    (free < min_free).then(|| {
        format!(
            "the disk holding the recordings has {} MB free, and recording stops below {} MB",
            free >> 20,
            min_free >> 20
        )
    })
}

/// A new file, never one that exists.
fn create(path: &Path) -> anyhow::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))
}

/// A line of the text track from `from` ms into the file.
fn write_cue(events: &mut BufWriter<File>, from: i64, text: &str) {
    // WebVTT cue text: no blank lines, and `-->` or markup would be read as such.
    let text = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace(['\r', '\n'], " ");
    let cue = format!(
        "{} --> {}\n{text}\n\n",
        vtt_time(from),
        vtt_time(from + CUE_MS)
    );
    if let Err(e) = events
        .write_all(cue.as_bytes())
        .and_then(|()| events.flush())
    {
        tracing::warn!("could not write a recording's text track: {e}");
    }
}

fn vtt_time(ms: i64) -> String {
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    format!("{h:02}:{m:02}:{:02}.{:03}", rest / 1000, rest % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_recordings_row_is_tried_again_while_the_database_refuses_it() {
        let tries = std::cell::Cell::new(0);
        let attempt = || {
            tries.set(tries.get() + 1);
            let n = tries.get();
            async move {
                if n < 3 {
                    Err(format!("refused {n}"))
                } else {
                    Ok(n)
                }
            }
        };
        let got = with_retries("x", Duration::from_millis(1), attempt).await;
        assert_eq!(got, Ok(3), "the third try goes through");
        tries.set(0);
        let never = || {
            tries.set(tries.get() + 1);
            async { Err::<(), _>("refused") }
        };
        let got = with_retries("x", Duration::from_millis(1), never).await;
        assert_eq!(got, Err("refused"));
        assert_eq!(tries.get(), STORE_TRIES, "then it gives up");
    }

    /// The text track keeps with the pictures: a line goes after the last picture by as
    /// long as it came after it, even when the file shortened a pause (a stalled link's
    /// 60 s is 10 s in the file), and never before the start.
    #[test]
    fn a_line_is_placed_after_the_last_picture_by_its_own_delay() {
        // The last picture is 12 s into the file; it came at wall-clock 100 s, after a
        // 60 s stall the file made 10 s of; the line came 1.5 s after it.
        assert_eq!(cue_at(12_000, 100_000, 101_500), 13_500);
        // A line held from before the first picture, at its start or just before.
        assert_eq!(cue_at(0, 100_000, 99_000), 0);
        assert_eq!(cue_at(0, 100_000, 100_000), 0);
    }

    #[test]
    fn text_track_times_and_text_are_webvtt() {
        assert_eq!(vtt_time(0), "00:00:00.000");
        assert_eq!(vtt_time(3_723_004), "01:02:03.004");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.vtt");
        let mut events = BufWriter::new(File::create(&path).expect("create"));
        write_cue(&mut events, 1500, "Ann: <b>a</b> --> b\nc");
        drop(events);
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            "00:00:01.500 --> 00:00:06.500\nAnn: &lt;b&gt;a&lt;/b&gt; --&gt; b c\n\n"
        );
    }
}
