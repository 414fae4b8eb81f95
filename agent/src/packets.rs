//! One viewer's RTP packets for the encoded frames: H.264 packetized for the wire, each
//! frame stamped with the instant its pixels were captured, on the 90 kHz video clock.
//!
//! webrtc's sample track stamps a frame by adding the previous sample's stated duration
//! to the previous timestamp; the agent used to say 33 ms for every frame, so after a
//! second of still screen the next frame claimed to be 33 ms later, and a receiver's
//! jitter and playout estimates were built on gaps that never happened.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::rtp::extension::HeaderExtension;
use rtc::rtp::extension::playout_delay_extension::PlayoutDelayExtension;
use rtc::rtp::packetizer::{Packetizer, Payloader};
use rtc::rtp::{self, Packet};

use crate::pipeline::Shot;

/// The playout-delay RTP header extension: the sender's word on how long a receiver may
/// hold a frame before showing it, in 10 ms units.
pub const PLAYOUT_DELAY_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/// Every packet says "playout delay 0 to 0", as game streaming does: the browser shows
/// each frame as soon as it is decoded instead of smoothing frames into a cadence (a
/// remote desktop's frames come when the screen changes, not at a rate). Sent only when
/// the viewer's answer accepted the extension.
pub const EXTENSIONS: [HeaderExtension; 1] =
    [HeaderExtension::PlayoutDelay(PlayoutDelayExtension {
        min_delay: 0,
        max_delay: 0,
    })];

/// RTP's clock for video (RFC 6184 §8.2.1).
pub const VIDEO_CLOCK_HZ: u64 = 90_000;

/// Packets of at most this many bytes (RTP header included): below every path's MTU once
/// SRTP, UDP, IP and a TURN relay's headers are added, so no frame is fragmented by IP.
pub const MTU: usize = 1200;

/// A packet's bytes on the wire besides its RTP payload: the RTP header with the
/// playout-delay extension, SRTP's tag, UDP and IP (the pacer counts what the path
/// carries, not only what the packetizer made).
pub const PACKET_OVERHEAD: usize = 12 + 8 + 10 + 8 + 20;

/// Packets go out at most this many times the path's estimate…
const PACE_FACTOR: f64 = 1.25;
/// …once a frame has used up a bucket of this much of that rate…
const PACE_DEPTH: Duration = Duration::from_millis(50);
/// …or of this many bytes at the least (five full packets).
const PACE_MIN_DEPTH: f64 = 5.0 * MTU as f64;

/// Spreads a large frame's packets over time at a little over the path's estimate,
/// instead of sending them back to back.
///
/// A keyframe of text is tens of kilobytes even at half size. Sent at once onto a slow
/// link (300 kbit/s, whose router queues 200 ms: 7.5 kB), most of it is dropped at the
/// bottleneck; the viewer's decoder cannot start, asks for another keyframe, which is
/// dropped the same way, and the picture stays frozen (the half-size impairment test saw
/// 0–2 fps). Paced, the keyframe arrives whole a second or two later.
///
/// A frame that fits the bucket still leaves at once: a click's answer is not held back,
/// and the rate's capacity readings (`crate::rate`) need frames sent back to back.
#[derive(Debug)]
pub struct Pacer {
    /// Bytes that may go now; below zero, the debt the next packet waits for.
    tokens: f64,
    at: Option<Instant>,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            tokens: f64::INFINITY,
            at: None,
        }
    }
}

impl Pacer {
    /// How long to wait before sending a packet of `bytes` (on the wire) at `now`, on a
    /// path estimated to carry `estimate_bps` (0: no estimate yet, nothing is paced).
    /// The packet counts as sent once that wait is over.
    pub fn wait(&mut self, now: Instant, bytes: usize, estimate_bps: u64) -> Duration {
        let last = self.at.replace(now);
        if estimate_bps == 0 {
            self.tokens = f64::INFINITY;
            return Duration::ZERO;
        }
        let rate = estimate_bps as f64 * PACE_FACTOR / 8.0; // bytes a second
        let depth = (rate * PACE_DEPTH.as_secs_f64()).max(PACE_MIN_DEPTH);
        let elapsed = last.map_or(0.0, |at| now.saturating_duration_since(at).as_secs_f64());
        self.tokens = (self.tokens + elapsed * rate).min(depth) - bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

pub struct Packets {
    packetizer: Box<dyn Packetizer>,
    /// The RTP timestamp of `origin`: random, as RFC 3550 §5.1 asks.
    base: u32,
    /// The capture instant of the first frame this viewer was sent.
    origin: Option<Instant>,
    /// For the bench only (`TANDEM_AGENT_TEST_33MS_CLOCK`): every frame 33 ms after the
    /// one before, as the agent stamped them before, to measure what the capture clock
    /// changes in the same run. The ticks stamped so far.
    old_clock: Option<u32>,
}

impl Packets {
    pub fn new(ssrc: u32, payloader: Box<dyn Payloader>) -> Packets {
        let packetizer = rtp::packetizer::new_packetizer(
            Instant::now(),
            MTU,
            0, // set per packet: the negotiated type is known once connected
            ssrc,
            payloader,
            Box::new(rtp::sequence::new_random_sequencer()),
            VIDEO_CLOCK_HZ as u32,
        );
        Packets {
            packetizer: Box::new(packetizer),
            base: rand::random(),
            origin: None,
            old_clock: std::env::var_os("TANDEM_AGENT_TEST_33MS_CLOCK").map(|_| 0),
        }
    }

    /// The RTP timestamp of a frame captured at `captured`: the time since this viewer's
    /// first frame on the 90 kHz clock, from a random start, wrapping as RTP's does.
    pub fn timestamp(&mut self, captured: Instant) -> u32 {
        if let Some(ticks) = &mut self.old_clock {
            let stamped = self.base.wrapping_add(*ticks);
            *ticks = ticks.wrapping_add(33 * 90);
            return stamped;
        }
        let origin = *self.origin.get_or_insert(captured);
        let ticks = captured.saturating_duration_since(origin).as_micros() * 9 / 100;
        self.base.wrapping_add(ticks as u32)
    }

    /// The packets of one frame, with consecutive sequence numbers, the marker bit on the
    /// last, and the frame's capture instant as their timestamp.
    pub fn of(&mut self, shot: &Shot, payload_type: u8) -> Vec<Packet> {
        let timestamp = self.timestamp(shot.captured);
        let data: &Bytes = &shot.frame.data; // shared, not copied, per viewer
        // The sample's own instant would only feed abs-send-time, which is not enabled.
        let mut packets = self
            .packetizer
            .packetize(shot.captured, data, 0)
            .unwrap_or_default();
        for packet in &mut packets {
            packet.header.timestamp = timestamp;
            packet.header.payload_type = payload_type;
        }
        packets
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use tandem_codec::EncodedFrame;

    fn shot(captured: Instant, bytes: usize) -> Shot {
        // An Annex-B access unit: a start code and one NAL of `bytes` bytes.
        let mut data = vec![0, 0, 0, 1, 0x65];
        data.resize(bytes + 4, 0xAB);
        Shot {
            frame: EncodedFrame {
                data: data.into(),
                keyframe: true,
            },
            captured,
            number: 1,
        }
    }

    fn packets() -> Packets {
        Packets::new(
            0x1234,
            Box::<rtc::rtp::codec::h264::H264Payloader>::default(),
        )
    }

    /// Sends `frame` packets of 1200 bytes through `pacer` from `start`, waiting as told;
    /// returns when each left.
    fn pace(pacer: &mut Pacer, start: Instant, frame: usize, estimate_bps: u64) -> Vec<Instant> {
        let mut now = start;
        (0..frame)
            .map(|_| {
                now += pacer.wait(now, 1200, estimate_bps);
                now
            })
            .collect()
    }

    #[test]
    fn a_small_frame_leaves_at_once_and_a_keyframe_at_a_little_over_the_estimate() {
        let mut pacer = Pacer::default();
        let t0 = Instant::now();
        // 300 kbit/s: a frame of four packets goes out back to back (a click's answer,
        // and a burst the rate's capacity readings need).
        let small = pace(&mut pacer, t0, 4, 300_000);
        assert!(small.iter().all(|&at| at == t0), "{small:?}");
        // A second later the bucket is full again; a keyframe of 80 packets (96 kB) is
        // spread at 1.25 × 300 kbit/s = 46.9 kB/s: about 1.9 s after its first packets.
        let t1 = t0 + Duration::from_secs(1);
        let key = pace(&mut pacer, t1, 80, 300_000);
        assert_eq!(key[4], t1, "the bucket's five packets at once");
        assert!(key[5] > t1, "then paced");
        let spread = key[79].duration_since(t1).as_secs_f64();
        let expected = (80.0 - 5.0) * 1200.0 / (300_000.0 * 1.25 / 8.0);
        assert!(
            (spread - expected).abs() < 0.01,
            "{spread} s, not {expected} s"
        );
        // Evenly: no two paced packets closer than a packet's time at that rate.
        let gap = Duration::from_secs_f64(1200.0 / (300_000.0 * 1.25 / 8.0));
        for pair in key[5..].windows(2) {
            assert!(pair[1] - pair[0] + Duration::from_micros(10) >= gap);
        }
    }

    #[test]
    fn without_an_estimate_nothing_waits_and_a_fast_path_keeps_frames_whole() {
        let mut pacer = Pacer::default();
        let t0 = Instant::now();
        assert!(pace(&mut pacer, t0, 100, 0).iter().all(|&at| at == t0));
        // 8 Mbit/s: the bucket holds 50 ms of 10 Mbit/s, 62.5 kB: a 50-packet frame
        // (a big change after a click) is not held back at all.
        let later = t0 + Duration::from_secs(1);
        assert!(
            pace(&mut pacer, later, 50, 8_000_000)
                .iter()
                .all(|&at| at == later)
        );
    }

    #[test]
    fn timestamps_follow_the_capture_clock_across_an_idle_gap() {
        let mut p = packets();
        let t0 = Instant::now();
        let first = p.of(&shot(t0, 100), 102)[0].header.timestamp;
        let close = p.of(&shot(t0 + Duration::from_millis(5), 100), 102)[0]
            .header
            .timestamp;
        // Two seconds of still screen, then a change: the gap is two seconds of clock,
        // not one frame's 33 ms.
        let later = p.of(&shot(t0 + Duration::from_millis(2005), 100), 102)[0]
            .header
            .timestamp;
        assert_eq!(close.wrapping_sub(first), 450, "5 ms at 90 kHz");
        assert_eq!(later.wrapping_sub(first), 180_450, "2.005 s at 90 kHz");
    }

    #[test]
    fn the_clock_wraps_as_rtp_does() {
        let mut p = packets();
        p.base = u32::MAX - 10;
        let t0 = Instant::now();
        assert_eq!(p.timestamp(t0), u32::MAX - 10);
        assert_eq!(p.timestamp(t0 + Duration::from_millis(1)), 79);
    }

    #[test]
    fn a_large_frame_is_split_into_packets_that_fit_the_mtu() {
        let mut p = packets();
        let t0 = Instant::now();
        let sent = p.of(&shot(t0, 10_000), 102);
        assert!(sent.len() >= 9, "{} packets", sent.len());
        for (i, packet) in sent.iter().enumerate() {
            assert!(
                12 + packet.payload.len() <= MTU,
                "a 12-byte header and the payload"
            );
            assert_eq!(packet.header.payload_type, 102);
            assert_eq!(packet.header.timestamp, sent[0].header.timestamp);
            assert_eq!(
                packet.header.marker,
                i == sent.len() - 1,
                "marker on the last"
            );
            assert_eq!(
                packet.header.sequence_number,
                sent[0].header.sequence_number.wrapping_add(i as u16)
            );
        }
        let next = p.of(&shot(t0, 100), 102);
        assert_eq!(
            next[0].header.sequence_number,
            sent[sent.len() - 1].header.sequence_number.wrapping_add(1),
            "no gap between frames"
        );
    }
}
