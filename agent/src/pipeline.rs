//! Capture → encode, on a thread of its own: one capture and one encoder serve every
//! viewer. Encoded frames go out on a broadcast channel; anyone may ask for a keyframe.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tandem_capture::{Capture, Capturer, Source};
use tandem_codec::{Converter, EncodedFrame, EncoderSettings, Frame, H264Encoder};
use tokio::sync::broadcast;

use crate::backend::Backend;

/// Controls and counters shared with the running pipeline.
#[derive(Default)]
pub struct Controls {
    pub stop: AtomicBool,
    pub keyframe: AtomicBool,
    /// PLI and FIR received from viewers.
    pub keyframe_requests: AtomicU64,
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    /// The bitrate the viewers' paths carry (bits per second; 0: the encoder's default),
    /// set by the congestion controller (`crate::rate`).
    pub target_bps: AtomicU64,
    /// The most frames per second to send (0: `FPS`): lowered when the rate is too low
    /// for the picture at full frame rate.
    pub max_fps: AtomicU64,
    /// Frames openh264 skipped to hold the bitrate.
    pub skipped: AtomicU64,
}

pub struct Pipeline {
    pub frames: broadcast::Sender<Arc<EncodedFrame>>,
    pub controls: Arc<Controls>,
    /// Set when capture ends by itself (the window closed), with the reason.
    pub ended: tokio::sync::watch::Receiver<Option<String>>,
}

const FPS: u64 = 30;
/// How often an unchanged screen is looked at: a change is sent within this much of
/// happening (not up to a whole frame later), while frames still come at most at `FPS`.
const POLL: Duration = Duration::from_millis(4);
/// An unchanged screen still sends its picture again this often, as a P-frame of a few
/// bytes: a browser that decodes nothing for about three seconds asks for a keyframe, and
/// a 1080p keyframe costs a hundred kilobytes where this costs a dozen bytes.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Keyframes on request at most this often: a burst of PLIs from several viewers, or a
/// viewer that keeps asking, costs one keyframe, not one per request.
const MIN_KEYFRAME_GAP: Duration = Duration::from_millis(500);

impl Pipeline {
    /// Start capturing `source`; the capturer is made on the pipeline's own thread (a
    /// Windows device context belongs to the thread that made it), and its error, if any,
    /// is returned here.
    pub fn start(backend: Arc<dyn Backend>, source: Source) -> anyhow::Result<Pipeline> {
        let (frames, _) = broadcast::channel(4);
        let controls = Arc::new(Controls::default());
        let (ended_tx, ended) = tokio::sync::watch::channel(None);
        let out = frames.clone();
        let shared = controls.clone();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("capture-encode".into())
            .spawn(move || {
                let capturer = match backend.capturer(source) {
                    Ok(capturer) => {
                        let _ = ready_tx.send(Ok(()));
                        capturer
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let reason = run(capturer, &out, &shared);
                let _ = ended_tx.send(reason);
            })?;
        ready
            .recv()
            .map_err(|_| anyhow::anyhow!("the capture thread ended before it started"))??;
        Ok(Pipeline {
            frames,
            controls,
            ended,
        })
    }

    pub fn stop(&self) {
        self.controls.stop.store(true, Ordering::Relaxed);
    }
}

/// One capture and one encoder; `step` does one round of the loop.
struct Stage<C> {
    capturer: C,
    encoder: H264Encoder,
    converter: Converter,
    started: Instant,
    /// There is a picture to re-encode when a keyframe is asked for on an unchanged screen.
    have_picture: bool,
    last_forced: Option<Instant>,
    /// When the last frame went out.
    last_sent: Instant,
    /// The encoder skipped the last picture to hold the bitrate: encode it again a frame
    /// later even if the screen has not changed since, or the change is never sent.
    skipped: Option<Instant>,
}

impl<C: Capturer> Stage<C> {
    fn new(capturer: C) -> Result<Self, String> {
        let encoder = H264Encoder::new(EncoderSettings::default())
            .map_err(|e| format!("the encoder could not start: {e}"))?;
        Ok(Self {
            capturer,
            encoder,
            converter: Converter::new(),
            started: Instant::now(),
            have_picture: false,
            last_forced: None,
            last_sent: Instant::now(),
            skipped: None,
        })
    }

    /// Capture once; encode and send if the screen changed or a keyframe is due.
    /// `Ok(true)` when a frame was sent; `Err` says why capture ended by itself.
    fn step(
        &mut self,
        out: &broadcast::Sender<Arc<EncodedFrame>>,
        controls: &Controls,
    ) -> Result<bool, String> {
        let due = self
            .last_forced
            .is_none_or(|at| at.elapsed() >= MIN_KEYFRAME_GAP);
        let keyframe = due && controls.keyframe.swap(false, Ordering::Relaxed);
        let target = controls.target_bps.load(Ordering::Relaxed);
        if target > 0 {
            self.encoder
                .set_bitrate(u32::try_from(target).unwrap_or(u32::MAX));
        }
        if keyframe {
            self.encoder.request_keyframe();
            self.last_forced = Some(Instant::now());
        }
        let picture = match self.capturer.capture() {
            Ok(Capture::Frame(f)) => {
                let frame = Frame {
                    width: f.width,
                    height: f.height,
                    stride: f.stride,
                    bgra: f.bgra,
                };
                self.converter
                    .convert(&frame)
                    .map_err(|e| format!("a captured frame could not be converted: {e}"))?;
                true
            }
            Ok(Capture::Unchanged) => {
                let retry = self
                    .skipped
                    .is_some_and(|at| at.elapsed() >= Duration::from_millis(1000 / FPS));
                (keyframe || retry || self.last_sent.elapsed() >= HEARTBEAT) && self.have_picture
            }
            Ok(Capture::Ended(reason)) => return Err(reason.to_owned()),
            Err(e) => return Err(format!("capture failed: {e}")),
        };
        if !picture {
            return Ok(false);
        }
        self.have_picture = true;
        let Some(yuv) = self.converter.last() else {
            return Ok(false);
        };
        let ms = self.started.elapsed().as_millis() as u64;
        match self.encoder.encode(yuv, ms) {
            Ok(Some(encoded)) => {
                self.skipped = None;
                self.last_sent = Instant::now();
                controls.frames.fetch_add(1, Ordering::Relaxed);
                controls
                    .bytes
                    .fetch_add(encoded.data.len() as u64, Ordering::Relaxed);
                let _ = out.send(Arc::new(encoded)); // no viewers yet is fine
                Ok(true)
            }
            Ok(None) => {
                // Skipped to hold the bitrate (a changed picture always encodes to
                // something otherwise): try again at the next look.
                self.skipped = Some(Instant::now());
                controls.skipped.fetch_add(1, Ordering::Relaxed);
                Ok(false)
            }
            Err(e) => Err(format!("encoding failed: {e}")),
        }
    }
}

/// The loop: look every `POLL` once a frame period has passed since the last frame, so a
/// change goes out at once and frames come at most at `FPS`; an unchanged screen costs a
/// poll and no frame. Returns why it stopped by itself, if it did.
fn run<C: Capturer>(
    capturer: C,
    out: &broadcast::Sender<Arc<EncodedFrame>>,
    controls: &Controls,
) -> Option<String> {
    let mut stage = match Stage::new(capturer) {
        Ok(stage) => stage,
        Err(reason) => return Some(reason),
    };
    let mut last_frame: Option<Instant> = None;
    while !controls.stop.load(Ordering::Relaxed) {
        let fps = match controls.max_fps.load(Ordering::Relaxed) {
            0 => FPS,
            fps => fps.clamp(1, FPS),
        };
        let period = Duration::from_millis(1000 / fps);
        let wait = last_frame.map_or(Duration::ZERO, |at| period.saturating_sub(at.elapsed()));
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        let started = Instant::now();
        match stage.step(out, controls) {
            Ok(true) => last_frame = Some(started),
            Ok(false) => std::thread::sleep(POLL.max(stage.capturer.idle_poll())),
            Err(reason) => return Some(reason),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_capture::SyntheticScreen;

    fn stage() -> (
        Stage<SyntheticScreen>,
        broadcast::Sender<Arc<EncodedFrame>>,
        Controls,
    ) {
        let stage = Stage::new(SyntheticScreen::new(320, 240)).expect("encoder");
        let (out, _) = broadcast::channel(16);
        (stage, out, Controls::default())
    }

    #[test]
    fn an_unchanged_screen_encodes_nothing() {
        let (mut stage, out, controls) = stage();
        let mut rx = out.subscribe();
        for _ in 0..10 {
            stage.step(&out, &controls).expect("step");
        }
        assert_eq!(controls.frames.load(Ordering::Relaxed), 1, "only the first");
        assert!(rx.try_recv().expect("the first frame").keyframe);
        assert!(rx.try_recv().is_err());
        stage.capturer.tick();
        stage.step(&out, &controls).expect("step");
        stage.step(&out, &controls).expect("step");
        assert_eq!(controls.frames.load(Ordering::Relaxed), 2, "one per change");
        assert!(!rx.try_recv().expect("the change").keyframe);
    }

    #[test]
    fn an_unchanged_screen_sends_a_heartbeat_of_a_few_bytes_each_second() {
        let (mut stage, out, controls) = stage();
        let mut rx = out.subscribe();
        stage.step(&out, &controls).expect("step");
        rx.try_recv().expect("first");
        stage.last_sent = Instant::now() - HEARTBEAT;
        stage.step(&out, &controls).expect("step");
        let beat = rx.try_recv().expect("a heartbeat");
        assert!(!beat.keyframe, "not a keyframe");
        assert!(beat.data.len() <= 64, "{} bytes", beat.data.len());
        stage.step(&out, &controls).expect("step");
        assert!(rx.try_recv().is_err(), "then silence again");
    }

    #[test]
    fn r6_every_viewer_gets_the_same_encoded_frame() {
        let (mut stage, out, controls) = stage();
        let (mut a, mut b) = (out.subscribe(), out.subscribe());
        stage.step(&out, &controls).expect("step");
        let (fa, fb) = (a.try_recv().expect("a"), b.try_recv().expect("b"));
        assert!(
            Arc::ptr_eq(&fa, &fb),
            "encoded once, shared by every viewer"
        );
    }

    #[test]
    fn keyframe_requests_on_a_static_screen_are_answered_and_rate_limited() {
        let (mut stage, out, controls) = stage();
        let mut rx = out.subscribe();
        stage.step(&out, &controls).expect("step");
        rx.try_recv().expect("first");
        // A viewer's PLI on an unchanged screen: the last picture again, as a keyframe.
        controls.keyframe.store(true, Ordering::Relaxed);
        stage.step(&out, &controls).expect("step");
        assert!(rx.try_recv().expect("forced").keyframe);
        // Another request at once waits for the gap; the screen stays silent meanwhile.
        controls.keyframe.store(true, Ordering::Relaxed);
        stage.step(&out, &controls).expect("step");
        assert!(rx.try_recv().is_err(), "rate-limited");
        assert!(controls.keyframe.load(Ordering::Relaxed), "kept for later");
        stage.last_forced = Some(Instant::now() - MIN_KEYFRAME_GAP);
        stage.step(&out, &controls).expect("step");
        assert!(rx.try_recv().expect("after the gap").keyframe);
    }

    #[test]
    fn a_closed_source_ends_the_pipeline_with_the_reason() {
        let (mut stage, out, controls) = stage();
        stage.step(&out, &controls).expect("step");
        stage.capturer.end();
        assert_eq!(
            stage.step(&out, &controls),
            Err("the synthetic window was closed".to_owned())
        );
    }
}
