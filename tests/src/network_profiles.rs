//! The poor-network profiles the impairment test checks and the bench's network section
//! measures: the customer's access link squeezed and lossy, a rate drop mid-stream, a
//! blackout, each while the agent shares full motion (tests/src/nat_scene.rs, with the
//! bench's `video` content drawn over the pattern). What arrives is read from the rep's
//! Chromium ([`crate::media_stats`]); what the encoder sends, from the agent's status lines.
//!
//! The links are shaped with `tbf` and nftables drop rules (tests/src/netns.rs); the
//! customer's link is a delay line in the test's process (tests/src/delay_line.rs), which
//! adds the 80 ms round trip on kernels without netem (this machine's).

use std::time::{Duration, Instant};

use crate::media_stats::Timeline;
use crate::nat_scene::NatScene;
use crate::netns::{Host, Impairment};

/// How often the rep's decoding is read.
pub const EVERY: Duration = Duration::from_millis(250);

/// The agent's status lines (one every 2 s) printed after `mark` bytes of its output:
/// (Mbit/s sent by the encoder, Mbit/s it aims for).
pub fn sent_rates(output: &str, mark: usize) -> Vec<(f64, f64)> {
    output
        .get(mark..)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once(" fps · ")?;
            let (sent, rest) = rest.split_once(" Mbit/s of ")?;
            let target = rest.split(' ').next()?;
            Some((sent.parse().ok()?, target.parse().ok()?))
        })
        .collect()
}

/// What one profile did to the picture.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The longest time no frame was decoded, from 5 s after the change on (or, for a
    /// blackout, from the first frame after it).
    pub longest_stall: Duration,
    /// Chromium's own count of freezes and their total length (s) over the profile.
    pub freezes: Option<(u64, f64)>,
    /// The encoder's rate (Mbit/s) in the status lines from 5 s after the change on.
    pub sent_mbit: Vec<f64>,
    /// What arrived at the rep (bit/s) from 5 s after the change on.
    pub received_bps: Option<f64>,
    /// Blackout: how long after the link returned frames were decoded again.
    pub recovery: Option<Duration>,
    /// Blackout and renumbering: the states the rep's tile went through (its
    /// `data-connection`, each once per run of it), from the change on.
    pub tile_states: Vec<String>,
}

impl Outcome {
    pub fn mean_sent_mbit(&self) -> Option<f64> {
        (!self.sent_mbit.is_empty())
            .then(|| self.sent_mbit.iter().sum::<f64>() / self.sent_mbit.len() as f64)
    }

    pub fn worst_sent_mbit(&self) -> Option<f64> {
        self.sent_mbit.iter().copied().reduce(f64::max)
    }
}

/// A recording of one scene through several profiles, on one clock.
#[derive(Debug)]
pub struct Run {
    pub timeline: Timeline,
    start: Instant,
}

impl Default for Run {
    fn default() -> Self {
        Self::new()
    }
}

impl Run {
    pub fn new() -> Run {
        Run {
            timeline: Timeline::default(),
            start: Instant::now(),
        }
    }

    pub async fn watch(&mut self, scene: &NatScene, length: Duration) {
        self.timeline
            .extend(&scene.rep, EVERY, length, self.start)
            .await;
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// The link set to `link` (after `before` on the link as it was), then watched for
    /// `length`.
    pub async fn shaped(
        &mut self,
        scene: &NatScene,
        link: Impairment,
        length: Duration,
    ) -> anyhow::Result<Outcome> {
        scene.topology.impair(Host::Cust, link)?;
        let (from, mark) = (self.now(), scene.agent.output().len());
        self.watch(scene, length).await;
        let settled = from + Duration::from_secs(5);
        let sent = sent_rates(&scene.agent.output(), mark);
        Ok(Outcome {
            longest_stall: self.timeline.longest_stall(settled, self.now()),
            freezes: self.timeline.freezes(from, self.now()),
            // Each status line covers the 2 s before it: from the third on, all after 5 s.
            sent_mbit: sent.iter().skip(3).map(|(s, _)| *s).collect(),
            received_bps: self.timeline.bitrate(settled, self.now()),
            recovery: None,
            tile_states: Vec::new(),
        })
    }

    /// Watch for `length`, reading the tile's state at each reading too.
    async fn watch_tile(&mut self, scene: &NatScene, length: Duration, states: &mut Vec<String>) {
        let until = self.now() + length;
        while self.now() < until {
            self.watch(scene, EVERY).await;
            if let Ok(Some(tile)) = crate::nat_scene::tile(&scene.rep).await
                && states.last() != Some(&tile.connection)
            {
                states.push(tile.connection);
            }
        }
    }

    /// The link widened to `link` (after a squeeze), then watched for `length`: its
    /// `recovery` is how long until the rep received `want_bps` over a whole second
    /// again (the rate the content needs), `None` if not within `length`.
    pub async fn widened(
        &mut self,
        scene: &NatScene,
        link: Impairment,
        length: Duration,
        want_bps: f64,
    ) -> anyhow::Result<Outcome> {
        let mut outcome = self.shaped(scene, link, length).await?;
        let from = self.now() - length;
        let second = Duration::from_secs(1);
        let mut at = from;
        while at + second <= self.now() {
            if self
                .timeline
                .bitrate(at, at + second)
                .is_some_and(|bps| bps >= want_bps)
            {
                outcome.recovery = Some(at + second - from);
                break;
            }
            at += EVERY;
        }
        Ok(outcome)
    }

    /// The customer's router renumbered ([`crate::netns::Topology::renumber_customer`]),
    /// then watched for `after`: the longest stall from then on.
    pub async fn renumbered(
        &mut self,
        scene: &NatScene,
        after: Duration,
    ) -> anyhow::Result<Outcome> {
        let from = self.now();
        scene.topology.renumber_customer()?;
        let mut tile_states = Vec::new();
        self.watch_tile(scene, after, &mut tile_states).await;
        Ok(Outcome {
            longest_stall: self.timeline.longest_stall(from, self.now()),
            freezes: self.timeline.freezes(from, self.now()),
            sent_mbit: Vec::new(),
            received_bps: self.timeline.bitrate(from, self.now()),
            recovery: None,
            tile_states,
        })
    }

    /// The link cut for `cut`, then watched for `after`.
    pub async fn blackout(
        &mut self,
        scene: &NatScene,
        cut: Duration,
        after: Duration,
    ) -> anyhow::Result<Outcome> {
        let from = self.now();
        scene.topology.blackout(Host::Cust, true)?;
        let mut tile_states = Vec::new();
        self.watch_tile(scene, cut, &mut tile_states).await;
        scene.topology.blackout(Host::Cust, false)?;
        let back = self.now();
        self.watch_tile(scene, after, &mut tile_states).await;
        let resumed = self.timeline.resumed_after(back);
        Ok(Outcome {
            longest_stall: resumed.map_or(after, |at| self.timeline.longest_stall(at, self.now())),
            freezes: self.timeline.freezes(from, self.now()),
            sent_mbit: Vec::new(),
            received_bps: resumed.and_then(|at| self.timeline.bitrate(at, self.now())),
            recovery: resumed.map(|at| at - back),
            tile_states,
        })
    }
}

/// Full motion on the customer's screen, drawn over the pattern by the bench's content
/// process (`bench` is the tandem-bench binary).
pub fn start_video(
    bench: &std::path::Path,
    scene: &NatScene,
) -> anyhow::Result<std::process::Child> {
    start_content(bench, scene, "video")
}

/// The bench's test content of this kind (`video`, `scroll`, `office`…) on the customer's
/// screen, until killed.
pub fn start_content(
    bench: &std::path::Path,
    scene: &NatScene,
    kind: &str,
) -> anyhow::Result<std::process::Child> {
    use anyhow::Context as _;
    std::process::Command::new(bench)
        .args([
            "content",
            "--display",
            &scene.screen.display,
            "--kind",
            kind,
        ])
        .spawn()
        .with_context(|| format!("could not start the test content {kind:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_status_lines_are_read_for_its_rates() {
        let output = "Sharing your whole screen · 1 watching (Rita Rep watching) · 30 fps · 1.93 Mbit/s of 2.13 · 0 keyframe requests · input 0 injected, 0 dropped\n\
                      Rita Rep is connected.\n\
                      Sharing your whole screen · 1 watching (Rita Rep watching) · 15 fps · 0.80 Mbit/s of 0.85 · 2 keyframe requests · input 0 injected, 0 dropped\n";
        assert_eq!(sent_rates(output, 0), [(1.93, 2.13), (0.80, 0.85)]);
        let mark = output.find("Rita Rep is").expect("mark");
        assert_eq!(sent_rates(output, mark), [(0.80, 0.85)]);
    }
}
