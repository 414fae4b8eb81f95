//! How fast to send: one encode serves every viewer (R6), so one rate must suit them all.
//!
//! Each viewer's connection estimates its path from the viewer's transport-wide feedback
//! (Google Congestion Control in webrtc-rs, see `peers.rs`), through [`PathEstimator`],
//! which ignores decreases while the share is not using the path. The policy:
//! - the encoder follows the **weakest** connected viewer, with headroom for packet
//!   overhead and retransmissions, down to a floor ([`FLOOR_BPS`]) below which a screen
//!   is not legible; a viewer whose path carries less than the floor is not followed
//!   further (the others would lose their picture for it): it loses packets, recovers
//!   them by NACK, and asks for a keyframe when that cannot help;
//! - as the rate falls, the frame rate falls with it (30, then 15, then 10 frames per
//!   second), so each frame keeps enough bits for text to stay sharp;
//! - when even 10 frames a second leave too few bits for the picture's size (under
//!   [`HALVE_BELOW_BPP`] bits per pixel per frame), the picture is sent at half its width
//!   and height, and whole again once the rate is half as much again above that
//!   ([`WHOLE_ABOVE_BPP`]); viewers scale it back up, and pointer positions are fractions
//!   of the picture, so control is unaffected;
//! - with no connected viewer, or no estimate yet, the rate is [`START_BPS`].
//!
//! Set `TANDEM_AGENT_NO_ADAPTATION` to hold [`START_BPS`] and 30 fps whatever the path
//! says (the bench compares the two).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc::interceptor::{BandwidthEstimator, EstimatorStats, PacketReport};

/// Where a connection starts, before any feedback: the rate the agent always used.
pub const START_BPS: u64 = 2_500_000;
/// The lowest rate the encoder is asked for.
pub const FLOOR_BPS: u64 = 150_000;
/// The highest: more does not make a screen better.
pub const CEILING_BPS: u64 = 8_000_000;
/// The share of a path's estimate the encoder may fill; the rest is RTP and SRTP
/// overhead, retransmissions and the input channel.
const HEADROOM: f64 = 0.85;

/// A path estimate that knows a screen share is usually **application-limited**: on a
/// still or slowly changing screen the agent sends far less than the path carries, and a
/// delay-based estimator (GCC) then backs off to a fraction of that small rate at the
/// first bit of jitter; the next burst of motion would be squeezed into it. So a decrease
/// is followed only when the share was actually using the path (sending at least half the
/// current target over the last second) or packets were lost (10 % or more of a batch);
/// increases are always followed. libwebrtc does the same with its "application limited
/// region" detection.
///
/// GCC climbs back slowly after a cut (8 % a second: half a minute from 300 kbit/s to
/// 2.5 Mbit/s), and a good call climbs back in seconds by probing. Here every frame is a
/// probe: its packets leave in one burst (all of a frame that fits the pacer's bucket,
/// `crate::packets::Pacer`), so how far apart they arrive tells
/// what the path's narrowest link carries ([`train_capacity`]). While nothing is lost and
/// the recent bursts say the path carries at least [`RAMP_EVIDENCE`] times the target,
/// the target climbs by half every [`RAMP_EVERY`] (each climb judged on bursts sent after
/// the one before), up to a [`RAMP_SHARE`] of that capacity; if that was too much, GCC's
/// delay detector brings it down as usual. A shaper that lets whole bursts through at line
/// speed fools the readings, so after a decrease that follows a climb closely, the target
/// climbs no higher than [`AFTER_FALL_SHARE`] of where it fell from, for
/// [`AFTER_FALL_FOR`].
pub struct PathEstimator<E> {
    inner: E,
    target: f64,
    /// (departure, bytes, arrival on the viewer's clock) of the packets reported on over
    /// the last second.
    sent: VecDeque<(Instant, usize, Option<Duration>)>,
    /// The inner estimate at the last report.
    last_inner: f64,
    /// (when reported, capacity in bit/s) of the recent bursts, over [`CAPACITY_WINDOW`].
    capacity: VecDeque<(Instant, f64)>,
    /// When the target last climbed on the bursts' evidence.
    last_ramp: Option<Instant>,
    /// When the target last fell after a climb, and from where.
    fell: Option<(Instant, f64)>,
}

/// Packets that left at most this far apart belong to one burst (one frame).
const TRAIN_GAP: Duration = Duration::from_millis(2);
/// How long a burst's capacity reading counts.
const CAPACITY_WINDOW: Duration = Duration::from_secs(2);
/// Readings needed before the target climbs on them.
const RAMP_READINGS: usize = 3;
/// The path must carry this many times the target for it to climb.
const RAMP_EVIDENCE: f64 = 2.0;
/// The target climbs to at most this share of the bursts' median capacity.
const RAMP_SHARE: f64 = 0.5;
/// One climb of half the target at most this often (doubling in about a second).
const RAMP_EVERY: Duration = Duration::from_millis(500);
/// A climb needs the last second's loss under this.
const RAMP_MAX_LOSS: f64 = 0.02;
/// A decrease this soon after a climb counts as the climb's overshoot.
const OVERSHOOT_WITHIN: Duration = Duration::from_secs(2);
/// After an overshoot, the climb stops below this share of the target it fell from…
const AFTER_FALL_SHARE: f64 = 0.9;
/// …for this long.
const AFTER_FALL_FOR: Duration = Duration::from_secs(10);
/// The finest arrival spacing a reading trusts (transport-wide feedback counts arrival
/// in quarters of a millisecond).
const ARRIVAL_RESOLUTION: Duration = Duration::from_micros(500);

/// What the narrowest link of the path carries, read off one burst of packets sent
/// back to back (in send order): the bytes after the first two over the time between
/// the second's arrival and the last's. The first two are left out because a token
/// bucket lets a little through at line rate before it paces the rest. `None` for a
/// burst too short to tell, or with a packet lost.
fn train_capacity(train: &[(usize, Option<Duration>)]) -> Option<f64> {
    if train.len() < 3 {
        return None;
    }
    let arrivals: Vec<Duration> = train.iter().map(|(_, at)| *at).collect::<Option<_>>()?;
    let tail = &arrivals[1..];
    let (first, last) = (tail.iter().min()?, tail.iter().max()?);
    let spread = last.saturating_sub(*first).max(ARRIVAL_RESOLUTION);
    let bytes: usize = train[2..].iter().map(|(n, _)| n).sum();
    Some(bytes as f64 * 8.0 / spread.as_secs_f64())
}

/// The window over which the sending rate is judged.
const SENT_WINDOW: Duration = Duration::from_secs(1);
/// A decrease stops at this share of the rate the path delivered over that window.
const DELIVERED_SHARE: f64 = 0.85;

impl<E: BandwidthEstimator> PathEstimator<E> {
    pub fn new(inner: E) -> Self {
        let target = inner.target_bitrate();
        Self {
            inner,
            target,
            sent: VecDeque::new(),
            last_inner: target,
            capacity: VecDeque::new(),
            last_ramp: None,
            fell: None,
        }
    }

    /// The share of the packets over the window that never arrived.
    fn loss(&self) -> f64 {
        if self.sent.is_empty() {
            return 0.0;
        }
        let lost = self.sent.iter().filter(|(_, _, at)| at.is_none()).count();
        lost as f64 / self.sent.len() as f64
    }

    /// Read the bursts of a batch of reports (in send order) and keep their capacities.
    fn read_bursts(&mut self, now: Instant, reports: &[PacketReport]) {
        let mut train: Vec<(usize, Option<Duration>)> = Vec::new();
        let mut last_departure: Option<Instant> = None;
        for report in reports {
            let apart = last_departure.map(|d| report.departure.saturating_duration_since(d));
            if apart.is_none_or(|gap| gap > TRAIN_GAP) {
                if let Some(bps) = train_capacity(&train) {
                    self.capacity.push_back((now, bps));
                }
                train.clear();
            }
            last_departure = Some(report.departure);
            train.push((report.size, report.arrival.filter(|_| report.arrived)));
        }
        if let Some(bps) = train_capacity(&train) {
            self.capacity.push_back((now, bps));
        }
        while self
            .capacity
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > CAPACITY_WINDOW)
        {
            self.capacity.pop_front();
        }
    }

    /// The climb on the bursts' evidence (see the type's documentation).
    fn ramp(&mut self, now: Instant) {
        if self.capacity.len() < RAMP_READINGS || self.loss() >= RAMP_MAX_LOSS {
            return;
        }
        if self
            .last_ramp
            .is_some_and(|at| now.saturating_duration_since(at) < RAMP_EVERY)
        {
            return;
        }
        let mut readings: Vec<f64> = self.capacity.iter().map(|(_, bps)| *bps).collect();
        readings.sort_by(f64::total_cmp);
        let median = readings[readings.len() / 2];
        if median < RAMP_EVIDENCE * self.target {
            return;
        }
        let mut next = (self.target * 1.5).min(RAMP_SHARE * median);
        if let Some((at, from)) = self.fell
            && now.saturating_duration_since(at) < AFTER_FALL_FOR
        {
            next = next.min(AFTER_FALL_SHARE * from);
        }
        if next > self.target {
            self.target = next.min(CEILING_BPS as f64);
            self.last_ramp = Some(now);
            // The next climb is judged on bursts sent at the new rate.
            self.capacity.clear();
        }
    }

    /// Bits per second sent over the window (all reported packets, by departure).
    fn sending_rate(&self) -> f64 {
        let (Some(first), Some(last)) = (self.sent.front(), self.sent.back()) else {
            return 0.0;
        };
        let span = last
            .0
            .duration_since(first.0)
            .max(Duration::from_millis(200));
        let bytes: usize = self.sent.iter().map(|(_, n, _)| n).sum();
        bytes as f64 * 8.0 / span.as_secs_f64()
    }

    /// Bits per second delivered over the window, by arrival on the viewer's clock: when a
    /// queue builds, arrivals are spaced by what the path carries, not by what was sent.
    fn delivered_rate(&self) -> f64 {
        let arrivals = self.sent.iter().filter_map(|(_, n, at)| Some(((*at)?, *n)));
        let (mut first, mut last, mut bytes) = (None::<Duration>, None::<Duration>, 0usize);
        for (at, n) in arrivals {
            first = Some(first.map_or(at, |f| f.min(at)));
            last = Some(last.map_or(at, |l| l.max(at)));
            bytes += n;
        }
        let (Some(first), Some(last)) = (first, last) else {
            return 0.0;
        };
        let span = (last.saturating_sub(first)).max(Duration::from_millis(200));
        bytes as f64 * 8.0 / span.as_secs_f64()
    }
}

impl<E: BandwidthEstimator> BandwidthEstimator for PathEstimator<E> {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.inner.on_reports(now, reports);
        if reports.is_empty() {
            return;
        }
        for report in reports {
            let arrival = report.arrival.filter(|_| report.arrived);
            self.sent
                .push_back((report.departure, report.size, arrival));
        }
        if let Some(&(latest, _, _)) = self.sent.back() {
            while self
                .sent
                .front()
                .is_some_and(|(at, _, _)| latest.duration_since(*at) > SENT_WINDOW)
            {
                self.sent.pop_front();
            }
        }
        let lost = reports.iter().filter(|r| !r.arrived).count() as f64 / reports.len() as f64;
        let estimate = self.inner.target_bitrate();
        // Only a falling estimate is a reason to go down: one that climbs back from a
        // back-off, still under our target, is not (following it down would spiral).
        let falling = estimate < self.last_inner;
        self.last_inner = estimate;
        if estimate >= self.target {
            self.target = estimate;
        } else if falling && (lost >= 0.1 || self.sending_rate() >= 0.5 * self.target) {
            // Down, but not below most of what the path delivered over the last second:
            // a full queue's losses make GCC back off far under a link that still carries
            // that much (measured: to the floor under a 1 Mbit/s link).
            let before = self.target;
            self.target = estimate
                .max(DELIVERED_SHARE * self.delivered_rate())
                .min(self.target);
            // A fall soon after a climb says the climb overshot: remember where.
            let overshot = self
                .last_ramp
                .is_some_and(|at| now.saturating_duration_since(at) < OVERSHOOT_WITHIN);
            // GCC backs off in steps: the first one after the climb says where it
            // overshot, the later ones only where the back-off went.
            let first = self
                .fell
                .is_none_or(|(at, _)| self.last_ramp.is_some_and(|climbed| at < climbed));
            if self.target < before && overshot && first {
                self.fell = Some((now, before));
            }
        }
        if falling {
            // GCC saw the path queue or lose: what the bursts said before no longer
            // counts.
            self.capacity.clear();
        } else {
            self.read_bursts(now, reports);
            self.ramp(now);
        }
    }

    fn target_bitrate(&self) -> f64 {
        self.target
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.inner.stats()
    }
}

/// `TANDEM_AGENT_NO_ADAPTATION` is set: read once, not on every frame.
fn adaptation_off() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var_os("TANDEM_AGENT_NO_ADAPTATION").is_some())
}

/// The lowest frame rate the policy goes down to.
pub const MIN_FPS: u64 = 10;
/// Below this many bits per pixel per frame at [`MIN_FPS`], the picture is halved: a
/// 1920×1080 screen under about 415 kbit/s, 1280×720 under about 185 kbit/s (a 640×480
/// one never, above the floor).
pub const HALVE_BELOW_BPP: f64 = 0.02;
/// And whole again above this (1920×1080: about 620 kbit/s), so a rate hovering near
/// the line does not flip the size back and forth (each flip costs a keyframe).
pub const WHOLE_ABOVE_BPP: f64 = 0.03;

/// Whether a `width`×`height` picture goes out at half size at `bitrate_bps` (0: no
/// target yet), given whether it does now.
pub fn halve(bitrate_bps: u64, width: u32, height: u32, halved_now: bool) -> bool {
    if bitrate_bps == 0 || adaptation_off() {
        return false;
    }
    let bpp = bitrate_bps as f64 / (f64::from(width) * f64::from(height) * MIN_FPS as f64);
    if halved_now {
        bpp < WHOLE_ABOVE_BPP
    } else {
        bpp < HALVE_BELOW_BPP
    }
}

/// One connected viewer's path.
#[derive(Debug, Clone, Copy, Default)]
pub struct ViewerPath {
    /// The bandwidth estimate (bit/s); 0 when there is none yet.
    pub estimate_bps: u64,
}

/// What the encoder should aim for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub bitrate_bps: u64,
    pub max_fps: u64,
}

/// The policy above, for the viewers connected now.
pub fn target(paths: &[ViewerPath]) -> Target {
    if adaptation_off() {
        return Target {
            bitrate_bps: START_BPS,
            max_fps: 30,
        };
    }
    let weakest = paths
        .iter()
        .filter(|p| p.estimate_bps > 0)
        .map(|p| p.estimate_bps)
        .min();
    let bitrate_bps = match weakest {
        None => START_BPS,
        Some(bps) => ((bps as f64 * HEADROOM) as u64).clamp(FLOOR_BPS, CEILING_BPS),
    };
    let max_fps = match bitrate_bps {
        1_000_000.. => 30,
        500_000.. => 15,
        _ => MIN_FPS,
    };
    Target {
        bitrate_bps,
        max_fps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An estimator that says what it is told to.
    struct Scripted(f64);

    impl BandwidthEstimator for Scripted {
        fn on_reports(&mut self, _now: Instant, _reports: &[PacketReport]) {}
        fn target_bitrate(&self) -> f64 {
            self.0
        }
    }

    fn reports(
        start: Instant,
        count: usize,
        bytes: usize,
        every: Duration,
        lost: usize,
    ) -> Vec<PacketReport> {
        spaced(start, count, bytes, every, every, lost)
    }

    /// Sent `every` apart, arriving `arriving` apart; the first `lost` never arrive.
    fn spaced(
        start: Instant,
        count: usize,
        bytes: usize,
        every: Duration,
        arriving: Duration,
        lost: usize,
    ) -> Vec<PacketReport> {
        (0..count)
            .map(|i| PacketReport {
                ssrc: 1,
                id: i as u64,
                rtp_sequence_number: i as u16,
                is_twcc: true,
                twcc_sequence_number: i as u16,
                size: bytes,
                arrived: i >= lost,
                departure: start + every * i as u32,
                arrival: Some(arriving * i as u32),
                ecn: Default::default(),
            })
            .collect()
    }

    #[test]
    fn a_still_screen_does_not_drag_the_estimate_down() {
        let mut path = PathEstimator::new(Scripted(2_500_000.0));
        let t0 = Instant::now();
        // A still screen: 10 packets of 200 bytes in a second (16 kbit/s); GCC says 300k.
        path.inner.0 = 300_000.0;
        path.on_reports(t0, &reports(t0, 10, 200, Duration::from_millis(100), 0));
        assert_eq!(
            path.target_bitrate(),
            2_500_000.0,
            "held: the share was not using the path"
        );
        // It rises when the estimate rises.
        path.inner.0 = 3_000_000.0;
        path.on_reports(t0, &reports(t0, 10, 200, Duration::from_millis(100), 0));
        assert_eq!(path.target_bitrate(), 3_000_000.0);
    }

    #[test]
    fn a_busy_share_or_loss_follows_the_estimate_down() {
        let t0 = Instant::now();
        // 2.4 Mbit/s sent (300 packets of 1000 bytes in a second) against a 3 Mbit/s target,
        // arriving at 1 Mbit/s (8 ms apart): a queue builds, nothing lost yet.
        let mut busy = PathEstimator::new(Scripted(3_000_000.0));
        busy.inner.0 = 1_000_000.0;
        let queued = spaced(
            t0,
            300,
            1000,
            Duration::from_micros(3333),
            Duration::from_millis(8),
            0,
        );
        busy.on_reports(t0, &queued);
        assert_eq!(
            busy.target_bitrate(),
            1_000_000.0,
            "network-limited: followed"
        );
        // A still screen, but 20 % of the packets lost (a blackout, a lossy link).
        let mut lossy = PathEstimator::new(Scripted(3_000_000.0));
        lossy.inner.0 = 800_000.0;
        lossy.on_reports(t0, &reports(t0, 10, 200, Duration::from_millis(100), 2));
        assert_eq!(lossy.target_bitrate(), 800_000.0, "loss: followed");
    }

    #[test]
    fn a_decrease_stops_at_most_of_what_the_path_delivered() {
        let t0 = Instant::now();
        // A full 1 Mbit/s link: 1.6 Mbit/s sent, a third lost, the rest arriving 8 ms apart
        // (1 Mbit/s); GCC has backed off to its floor.
        let mut path = PathEstimator::new(Scripted(2_500_000.0));
        path.inner.0 = 150_000.0;
        let full = spaced(
            t0,
            200,
            1000,
            Duration::from_millis(5),
            Duration::from_millis(8),
            67,
        );
        path.on_reports(t0, &full);
        let target = path.target_bitrate();
        assert!(
            (850_000.0..=950_000.0).contains(&target),
            "stopped at 0.85 × delivered, not at the floor: {target}"
        );
        // GCC climbing back from its floor, still under that: held, not followed down.
        path.inner.0 = 200_000.0;
        path.on_reports(t0, &full);
        assert_eq!(
            path.target_bitrate(),
            target,
            "a rising estimate is no decrease"
        );
        // Nothing delivered (a blackout): nothing holds it up.
        let mut cut = PathEstimator::new(Scripted(2_500_000.0));
        cut.inner.0 = 150_000.0;
        cut.on_reports(t0, &reports(t0, 50, 1000, Duration::from_millis(20), 50));
        assert_eq!(cut.target_bitrate(), 150_000.0);
    }

    /// A tenth of a second of frames, each a burst of `packets` packets of 1200 bytes
    /// leaving 10 µs apart and arriving `arriving` apart; one frame in `lose_every` loses
    /// its last packet (0: none lost).
    fn bursts(
        start: Instant,
        tenth: u32,
        frames: usize,
        packets: usize,
        arriving: Duration,
        lose_every: usize,
    ) -> (Instant, Vec<PacketReport>) {
        let at = start + Duration::from_millis(100) * tenth;
        let clock = Duration::from_millis(100) * tenth;
        let mut out = Vec::new();
        for frame in 0..frames {
            let left = at + Duration::from_millis(30) * frame as u32;
            let arrives = clock + Duration::from_millis(30) * frame as u32;
            for i in 0..packets {
                let id = out.len() as u64 + u64::from(tenth) * 1000;
                let lost = lose_every > 0 && frame % lose_every == 0 && i == packets - 1;
                out.push(PacketReport {
                    ssrc: 1,
                    id,
                    rtp_sequence_number: id as u16,
                    is_twcc: true,
                    twcc_sequence_number: id as u16,
                    size: 1200,
                    arrived: !lost,
                    departure: left + Duration::from_micros(10) * i as u32,
                    arrival: Some(arrives + arriving * i as u32),
                    ecn: Default::default(),
                });
            }
        }
        (at + Duration::from_millis(100), out)
    }

    #[test]
    fn after_a_cut_bursts_that_arrive_together_climb_the_target_in_seconds() {
        // GCC stuck where a cut left it; the link is fast again: every frame's packets
        // arrive as they left, together.
        let mut path = PathEstimator::new(Scripted(300_000.0));
        let t0 = Instant::now();
        let mut before = path.target_bitrate();
        for tenth in 0..30 {
            let (now, reports) = bursts(t0, tenth, 3, 4, Duration::from_micros(100), 0);
            path.on_reports(now, &reports);
            let target = path.target_bitrate();
            assert!(
                target <= before * 1.5 + 1.0,
                "one step at a time: {before} → {target}"
            );
            before = target;
        }
        assert!(
            path.target_bitrate() >= 2_500_000.0,
            "back to the start rate within 3 s, not half a minute: {}",
            path.target_bitrate()
        );
        assert!(path.target_bitrate() <= CEILING_BPS as f64);
    }

    #[test]
    fn bursts_paced_by_a_narrow_link_climb_no_further_than_half_of_it() {
        // A 1 Mbit/s link: 1200-byte packets arrive 9.6 ms apart.
        let mut path = PathEstimator::new(Scripted(300_000.0));
        let t0 = Instant::now();
        for tenth in 0..50 {
            let (now, reports) = bursts(t0, tenth, 2, 3, Duration::from_micros(9600), 0);
            path.on_reports(now, &reports);
        }
        let target = path.target_bitrate();
        assert!(
            (480_000.0..=520_000.0).contains(&target),
            "climbed to half the link, no further: {target}"
        );
    }

    #[test]
    fn a_climb_that_overshoots_is_not_repeated_for_a_while() {
        // A shaper that lets whole bursts through at line speed: the readings always say
        // "plenty", whatever the link carries.
        let mut path = PathEstimator::new(Scripted(300_000.0));
        let t0 = Instant::now();
        let mut tenth = 0;
        let mut feed = |path: &mut PathEstimator<Scripted>, tenths: u32| {
            for _ in 0..tenths {
                let (now, reports) = bursts(t0, tenth, 3, 4, Duration::from_micros(100), 0);
                path.on_reports(now, &reports);
                tenth += 1;
            }
        };
        feed(&mut path, 15);
        assert!(path.target_bitrate() >= 1_000_000.0);
        // GCC sees the queue the climb made, and falls.
        path.inner.0 = path.target_bitrate();
        feed(&mut path, 1);
        let climbed = path.target_bitrate();
        path.inner.0 = 0.5 * climbed;
        feed(&mut path, 1);
        let fallen = path.target_bitrate();
        assert!(fallen < climbed, "followed down: {fallen} vs {climbed}");
        // For the next 8 s the bursts' word is taken up to 90 % of where it fell from,
        // and no further.
        feed(&mut path, 80);
        let held = path.target_bitrate();
        assert!(
            (0.85 * climbed..=0.9 * climbed + 1.0).contains(&held),
            "held at 90 % of {climbed} (fell to {fallen}): {held}"
        );
        // Later it may try again.
        feed(&mut path, 40);
        assert!(path.target_bitrate() > climbed);
    }

    #[test]
    fn loss_or_short_bursts_do_not_climb() {
        let t0 = Instant::now();
        // Fast bursts, but one frame in three loses a packet (about 8 %).
        let mut lossy = PathEstimator::new(Scripted(300_000.0));
        // Two packets a frame: too short to read a capacity from.
        let mut short = PathEstimator::new(Scripted(300_000.0));
        for tenth in 0..30 {
            let (now, reports) = bursts(t0, tenth, 3, 4, Duration::from_micros(100), 3);
            lossy.on_reports(now, &reports);
            let (now, reports) = bursts(t0, tenth, 3, 2, Duration::from_micros(100), 0);
            short.on_reports(now, &reports);
        }
        assert_eq!(lossy.target_bitrate(), 300_000.0);
        assert_eq!(short.target_bitrate(), 300_000.0);
    }

    fn path(estimate_bps: u64) -> ViewerPath {
        ViewerPath { estimate_bps }
    }

    #[test]
    fn without_feedback_the_start_rate_holds() {
        assert_eq!(target(&[]).bitrate_bps, START_BPS);
        assert_eq!(target(&[path(0)]).bitrate_bps, START_BPS);
        assert_eq!(target(&[]).max_fps, 30);
    }

    #[test]
    fn r6_one_encode_follows_the_weakest_viewer_with_headroom() {
        let t = target(&[path(6_000_000), path(2_000_000), path(0)]);
        assert_eq!(t.bitrate_bps, 1_700_000);
        assert_eq!(t.max_fps, 30);
    }

    #[test]
    fn a_big_picture_is_halved_only_when_even_ten_frames_a_second_are_too_much() {
        // 1920×1080 at 10 fps: the line is 0.02 × 1920 × 1080 × 10 ≈ 415 kbit/s.
        assert!(!halve(2_500_000, 1920, 1080, false));
        assert!(!halve(450_000, 1920, 1080, false), "above the line");
        assert!(halve(300_000, 1920, 1080, false), "below it");
        // Back to whole only well above the line: no flapping around it.
        assert!(
            halve(450_000, 1920, 1080, true),
            "still halved at 450 kbit/s"
        );
        assert!(halve(600_000, 1920, 1080, true));
        assert!(!halve(650_000, 1920, 1080, true), "whole again");
        // A small picture is never halved above the floor.
        assert!(!halve(FLOOR_BPS, 640, 480, false));
        // No target yet: whole.
        assert!(!halve(0, 3840, 2160, false));
        assert!(!halve(0, 3840, 2160, true));
    }

    #[test]
    fn a_viewer_below_the_floor_is_not_followed_further() {
        let t = target(&[path(5_000_000), path(40_000)]);
        assert_eq!(t.bitrate_bps, FLOOR_BPS);
        assert_eq!(t.max_fps, 10, "fewer frames, each one legible");
    }

    #[test]
    fn the_frame_rate_falls_with_the_rate() {
        assert_eq!(target(&[path(1_000_000)]).max_fps, 15);
        assert_eq!(target(&[path(700_000)]).max_fps, 15);
        assert_eq!(target(&[path(400_000)]).max_fps, 10);
        assert_eq!(target(&[path(50_000_000)]).bitrate_bps, CEILING_BPS);
    }
}
