//! How fast to send: one encode serves every viewer (R6), so one rate must suit them all.
//!
//! Each viewer's connection estimates its path from the viewer's transport-wide feedback
//! (Google Congestion Control in webrtc-rs, see `peers.rs`). The policy:
//! - the encoder follows the **weakest** connected viewer, with headroom for packet
//!   overhead and retransmissions, down to a floor ([`FLOOR_BPS`]) below which a screen
//!   is not legible; a viewer whose path carries less than the floor is not followed
//!   further (the others would lose their picture for it): it loses packets, recovers
//!   them by NACK, and asks for a keyframe when that cannot help;
//! - as the rate falls, the frame rate falls with it (30, then 15, then 10 frames per
//!   second), so each frame keeps enough bits for text to stay sharp;
//! - with no connected viewer, or no estimate yet, the rate is [`START_BPS`].
//!
//! Set `TANDEM_AGENT_NO_ADAPTATION` to hold [`START_BPS`] and 30 fps whatever the path
//! says (the bench compares the two).

/// Where a connection starts, before any feedback: the rate the agent always used.
pub const START_BPS: u64 = 2_500_000;
/// The lowest rate the encoder is asked for.
pub const FLOOR_BPS: u64 = 150_000;
/// The highest: more does not make a screen better.
pub const CEILING_BPS: u64 = 8_000_000;
/// The share of a path's estimate the encoder may fill; the rest is RTP and SRTP
/// overhead, retransmissions and the input channel.
const HEADROOM: f64 = 0.85;

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
    if std::env::var_os("TANDEM_AGENT_NO_ADAPTATION").is_some() {
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
        _ => 10,
    };
    Target {
        bitrate_bps,
        max_fps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
