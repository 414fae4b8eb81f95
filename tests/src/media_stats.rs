//! What a viewer's Chromium says about the picture it receives, sampled over time: frames
//! decoded, bytes received, freezes (WebRTC `getStats()`, the first tile's inbound video).
//! The impairment tests and the bench's network section read the same timeline.

use std::time::{Duration, Instant};

use crate::Browser;

/// One reading of the first tile's inbound video stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// Since the timeline started.
    pub at: Duration,
    pub frames_decoded: u64,
    pub bytes_received: u64,
    pub freeze_count: u64,
    /// Seconds.
    pub total_freezes_duration: f64,
}

const READ: &str = "
  const v = document.querySelector('figure.tile video');
  const pc = window.tandem && [...window.tandem.shares.peers.values()][0];
  if (!pc) return null;
  return pc.pc.getStats().then((stats) => {
    let r = null;
    stats.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') r = s; });
    if (!r) return null;
    return [r.framesDecoded || 0, r.bytesReceived || 0, r.freezeCount || 0,
            r.totalFreezesDuration || 0];
  });";

/// Readings taken every `every` while something else goes on.
#[derive(Debug, Default, Clone)]
pub struct Timeline {
    pub readings: Vec<Reading>,
}

impl Timeline {
    /// Read the viewer's stats every `every` for `length`.
    pub async fn record(viewer: &Browser, every: Duration, length: Duration) -> Timeline {
        let mut timeline = Timeline::default();
        timeline.extend(viewer, every, length, Instant::now()).await;
        timeline
    }

    /// Go on recording, with times counted from `start`.
    pub async fn extend(
        &mut self,
        viewer: &Browser,
        every: Duration,
        length: Duration,
        start: Instant,
    ) {
        let until = Instant::now() + length;
        while Instant::now() < until {
            if let Ok(Some(reading)) = read(viewer, start.elapsed()).await {
                self.readings.push(reading);
            }
            tokio::time::sleep(every).await;
        }
    }

    /// The received bitrate (bit/s) between two times.
    pub fn bitrate(&self, from: Duration, to: Duration) -> Option<f64> {
        let first = self.readings.iter().find(|r| r.at >= from)?;
        let last = self.readings.iter().rev().find(|r| r.at <= to)?;
        let seconds = (last.at.checked_sub(first.at)?).as_secs_f64();
        (seconds > 0.0).then(|| (last.bytes_received - first.bytes_received) as f64 * 8.0 / seconds)
    }

    /// The longest time between two readings in `from..to` across which no frame was
    /// decoded (a freeze as a person sees it, at the resolution of the readings).
    pub fn longest_stall(&self, from: Duration, to: Duration) -> Duration {
        let mut longest = Duration::ZERO;
        let mut since: Option<Reading> = None;
        for r in self.readings.iter().filter(|r| r.at >= from && r.at <= to) {
            match since {
                Some(s) if r.frames_decoded > s.frames_decoded => {
                    longest = longest.max(r.at - s.at);
                    since = Some(*r);
                }
                Some(s) => longest = longest.max(r.at - s.at),
                None => since = Some(*r),
            }
        }
        longest
    }

    /// The first time at or after `after` when frames were being decoded again.
    pub fn resumed_after(&self, after: Duration) -> Option<Duration> {
        let mut previous: Option<&Reading> = None;
        for r in self.readings.iter().filter(|r| r.at >= after) {
            if let Some(p) = previous
                && r.frames_decoded > p.frames_decoded
            {
                return Some(r.at);
            }
            previous = Some(r);
        }
        None
    }

    /// Chromium's own freeze count and total freeze time between two times.
    pub fn freezes(&self, from: Duration, to: Duration) -> Option<(u64, f64)> {
        let first = self.readings.iter().find(|r| r.at >= from)?;
        let last = self.readings.iter().rev().find(|r| r.at <= to)?;
        Some((
            last.freeze_count.saturating_sub(first.freeze_count),
            last.total_freezes_duration - first.total_freezes_duration,
        ))
    }
}

async fn read(viewer: &Browser, at: Duration) -> anyhow::Result<Option<Reading>> {
    let value = viewer.client.execute(READ, vec![]).await?;
    let Some(list) = value.as_array() else {
        return Ok(None);
    };
    let n = |i: usize| {
        list.get(i)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0)
    };
    Ok(Some(Reading {
        at,
        frames_decoded: n(0) as u64,
        bytes_received: n(1) as u64,
        freeze_count: n(2) as u64,
        total_freezes_duration: n(3),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline(points: &[(u64, u64, u64)]) -> Timeline {
        Timeline {
            readings: points
                .iter()
                .map(|&(ms, frames, bytes)| Reading {
                    at: Duration::from_millis(ms),
                    frames_decoded: frames,
                    bytes_received: bytes,
                    freeze_count: 0,
                    total_freezes_duration: 0.0,
                })
                .collect(),
        }
    }

    #[test]
    fn stalls_bitrates_and_recovery_are_read_off_the_readings() {
        let t = timeline(&[
            (0, 0, 0),
            (500, 10, 125_000),
            (1000, 20, 250_000),
            (1500, 20, 250_000),
            (2000, 20, 250_000),
            (2500, 21, 260_000),
            (3000, 30, 375_000),
        ]);
        assert_eq!(
            t.bitrate(Duration::ZERO, Duration::from_secs(1)),
            Some(2_000_000.0)
        );
        assert_eq!(
            t.longest_stall(Duration::ZERO, Duration::from_secs(3)),
            Duration::from_millis(1500)
        );
        assert_eq!(
            t.resumed_after(Duration::from_millis(1200)),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(
            t.longest_stall(Duration::ZERO, Duration::from_secs(1)),
            Duration::from_millis(500)
        );
    }
}
