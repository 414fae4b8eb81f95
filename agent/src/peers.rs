//! One WebRTC peer connection per viewer, all fed by the same encoded frames (R6).
//! The agent always offers; a viewer's PLI or FIR asks the encoder for a keyframe.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use rtc::interceptor::{Attribute, Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket};
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MediaEngine};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use tandem_codec::EncodedFrame;
use tandem_protocol::{ClientMessage, IceCandidate, ParticipantId, ShareId, StreamRef};
use tokio::sync::{broadcast, mpsc};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::peer_connection::{PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler};
use webrtc::runtime::Runtime;

use crate::input::Input;
use crate::pipeline::Controls;

/// With `TANDEM_AGENT_TRACE` set, the agent says when each step of a viewer's connection
/// happens (milliseconds since the Unix epoch), to find where time goes.
pub fn trace(what: &str) {
    if std::env::var_os("TANDEM_AGENT_TRACE").is_some() {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        eprintln!("[trace {ms}] {what}");
    }
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

/// Hands PLI and FIR to the application: without it they stop inside the interceptor
/// chain and a viewer that lost a keyframe never recovers.
#[derive(Default)]
struct KeyframeRequests {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
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

/// Sends our ICE candidates to the viewer through the server, and says when the
/// connection is up (only then can a keyframe reach the viewer).
struct Trickle {
    to: ParticipantId,
    share: ShareId,
    signal: mpsc::UnboundedSender<ClientMessage>,
    connected: tokio::sync::watch::Sender<bool>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Trickle {
    async fn on_ice_candidate(&self, event: webrtc::peer_connection::RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.signal.send(ClientMessage::IceCandidate {
                to: self.to,
                stream: StreamRef::Share(self.share),
                candidate: IceCandidate {
                    candidate: init.candidate,
                    sdp_mid: init.sdp_mid,
                    sdp_mline_index: init.sdp_mline_index,
                },
            });
        }
    }

    async fn on_connection_state_change(
        &self,
        state: webrtc::peer_connection::RTCPeerConnectionState,
    ) {
        use webrtc::peer_connection::RTCPeerConnectionState as State;
        trace(&format!("viewer {}: connection {state:?}", self.to));
        let _ = self.connected.send(matches!(state, State::Connected));
    }
}

struct Viewer {
    pc: Arc<dyn PeerConnection>,
    answered: bool,
    pending: Vec<RTCIceCandidateInit>,
    writer: tokio::task::JoinHandle<()>,
}

/// Every viewer of this agent's share.
pub struct Peers {
    runtime: Arc<dyn Runtime>,
    ice_servers: Vec<rtc::peer_connection::transport::RTCIceServer>,
    local_ip: IpAddr,
    signal: mpsc::UnboundedSender<ClientMessage>,
    viewers: HashMap<ParticipantId, Viewer>,
    input: Arc<Input>,
}

impl Peers {
    pub fn new(
        runtime: Arc<dyn Runtime>,
        ice_servers: &[tandem_protocol::IceServer],
        local_ip: IpAddr,
        signal: mpsc::UnboundedSender<ClientMessage>,
        input: Arc<Input>,
    ) -> Self {
        let ice_servers = ice_servers
            .iter()
            .map(|s| rtc::peer_connection::transport::RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone().unwrap_or_default(),
                credential: s.credential.clone().unwrap_or_default(),
            })
            .collect();
        Self {
            runtime,
            ice_servers,
            local_ip,
            signal,
            viewers: HashMap::new(),
            input,
        }
    }

    pub fn count(&self) -> usize {
        self.viewers.len()
    }

    /// A new viewer: offer them the share, and feed them every frame from now on,
    /// starting with a keyframe.
    pub async fn add(
        &mut self,
        viewer: ParticipantId,
        share: ShareId,
        frames: &broadcast::Sender<Arc<EncodedFrame>>,
        controls: Arc<Controls>,
    ) -> anyhow::Result<()> {
        self.remove(viewer).await;
        let mut media = MediaEngine::default();
        let codec = h264();
        media.register_codec(codec.clone(), RtpCodecKind::Video)?;
        let registry = register_default_interceptors(Registry::new(), &mut media)?;
        let registry = registry.with(Slot::from(14_000), KeyframeRequests::default());
        let (connected_tx, mut connected) = tokio::sync::watch::channel(false);
        let handler = Arc::new(Trickle {
            to: viewer,
            share,
            signal: self.signal.clone(),
            connected: connected_tx,
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
                    .build(),
            )
            .with_interceptor_registry(registry)
            .with_handler(handler)
            .with_runtime(self.runtime.clone())
            .with_udp_addrs(vec![format!("{}:0", self.local_ip)])
            .build()
            .await
            .context("could not create a WebRTC connection")?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let ssrc = rand::random::<u32>();
        let track = Arc::new(TrackLocalStaticSample::new(
            Instant::now(),
            MediaStreamTrack::new(
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
            ),
        )?);
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

        // Keyframe requests from this viewer reach the encoder.
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
                    asked.keyframe.store(true, Ordering::Relaxed);
                }
            }
        });

        let mut rx = frames.subscribe();
        // For the keyframe-recovery test only: withhold this viewer's first keyframe, so
        // it can recover through PLI alone.
        let mut withhold_keyframe =
            std::env::var_os("TANDEM_AGENT_TEST_DROP_FIRST_KEYFRAME").is_some();
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
                if !started && !frame.keyframe {
                    controls.keyframe.store(true, Ordering::Relaxed);
                    continue;
                }
                if !started {
                    trace(&format!("viewer {viewer}: first keyframe sent"));
                }
                started = true;
                if std::mem::take(&mut withhold_keyframe) && frame.keyframe {
                    continue;
                }
                let sample = Sample {
                    data: frame.data.clone(), // shared, not copied, per viewer
                    duration: Duration::from_millis(33),
                    ..Sample::new(Instant::now())
                };
                if track
                    .sample_writer(ssrc, pt)
                    .write_sample(&sample)
                    .await
                    .is_err()
                {
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
                pc,
                answered: false,
                pending: Vec::new(),
                writer,
            },
        );
        Ok(())
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
