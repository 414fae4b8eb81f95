//! Capture → encode, on a thread of its own: one capture and one encoder serve every
//! viewer. Encoded frames go out on a broadcast channel; anyone may ask for a keyframe.
//!
//! Frames are paced for sustained motion only: a change after a quiet spell (a click, a
//! key, a menu opening) goes out the moment it is captured, and the frames right after it
//! come up to `INTERACTIVE_FPS`; once changes keep coming for `BURST`, they are paced at
//! `FPS` (or what the congestion controller allows). While the rep's input is being
//! injected, frames come up to `INTERACTIVE_FPS` even on a screen that never stops moving,
//! and `PRESS_SETTLE` after each press (a click, a key) the screen is looked at whatever
//! the slot: an application usually draws its answer within that, and the answer is sent
//! at once. Looking at the instant of the injection would mostly find the picture before
//! the answer, and (sent) that frame would take the slot the answer then waits for.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tandem_capture::{Capture, Capturer, Gone, Source};
use tandem_codec::{Converter, EncodedFrame, EncoderSettings, Frame, H264Encoder};
use tokio::sync::broadcast;

use crate::backend::Backend;

/// Why capture stopped by itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// The shared window or monitor went away.
    Gone(Gone),
    /// Capture or encoding failed; the words are the lower layer's, for the technically
    /// minded.
    Failed(String),
}

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
    /// Heartbeats sent as the last picture repeated, not encoded again.
    pub repeats: AtomicU64,
    /// The size pictures are sent at when it is not the captured size (halved for a slow
    /// path, `crate::rate::halve`), as `width << 32 | height`; 0 when whole.
    pub scaled_to: AtomicU64,
}

/// One encoded picture and the instant its pixels were taken from the screen: every
/// viewer's RTP timestamp is read off `captured` (`crate::packets`).
#[derive(Debug)]
pub struct Shot {
    pub frame: EncodedFrame,
    pub captured: Instant,
    /// Counts the pipeline's frames from 1 (for the trace).
    pub number: u64,
}

pub struct Pipeline {
    pub frames: broadcast::Sender<Arc<Shot>>,
    pub controls: Arc<Controls>,
    /// Set when capture ends by itself (the window closed), with the reason.
    pub ended: tokio::sync::watch::Receiver<Option<Stopped>>,
}

/// Sustained motion is sent at this rate at most.
const FPS: u64 = 30;
/// Frames right after a quiet spell come this often at most: a click's answer and what
/// follows it are not held back for a 30 fps slot.
const INTERACTIVE_FPS: u64 = 60;
/// Frames less than this apart are one run of motion; a longer gap is a quiet spell.
const QUIET: Duration = Duration::from_millis(100);
/// A run of motion is sent at `INTERACTIVE_FPS` for this long, then paced at `FPS`.
const BURST: Duration = Duration::from_millis(250);
/// The longest an unchanged screen sleeps before looking at keyframe requests, the
/// heartbeat and `stop` again (a capturer told of changes wakes at once for those).
const IDLE_WAKE: Duration = Duration::from_millis(50);
/// For this long after an injected input event, frames come up to `INTERACTIVE_FPS`.
const AFTER_INPUT: Duration = Duration::from_millis(500);
/// A frame slot is waited out in steps of at most this, so input arriving meanwhile
/// shortens it.
const SLOT_STEP: Duration = Duration::from_millis(1);

/// After a press, the screen is looked at this much later, whatever the frame slot (by a
/// capturer that cannot tell news from motion, or over too much motion to tell).
const PRESS_SETTLE: Duration = Duration::from_millis(2);
/// A capturer that tells news (`Capturer::wait_for_news`) is watched for this long after
/// a press, and looked at the moment drawing lands away from the picture's motion: the
/// answer goes out as soon as it is drawn, and frames of the motion alone (a clock) are not
/// encoded in its way meanwhile. About one frame slot at `INTERACTIVE_FPS`.
const ANSWER_WAIT: Duration = Duration::from_millis(16);

/// The input injected so far: the pipeline only watches the counts move.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Injected {
    pub events: u64,
    /// Button or key downs, text, wheel steps.
    pub presses: u64,
    /// When the last of them was injected.
    pub last_press: Option<Instant>,
}

pub type Activity = Arc<dyn Fn() -> Injected + Send + Sync>;
/// An unchanged screen still sends its picture again this often, as a P-frame of a few
/// bytes: a browser that decodes nothing for about three seconds asks for a keyframe, and
/// a 1080p keyframe costs a hundred kilobytes where this costs a dozen bytes.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// After a change the encoder keeps sharpening the still picture it sent at a low
/// quality: while a re-encode of it still costs more than `REFINED_BYTES`, it is
/// re-encoded this often, so the sharpening is over within a second or so of the change
/// instead of riding on each heartbeat for many seconds.
const REFINE: Duration = Duration::from_millis(100);
/// A re-encoded still picture smaller than this is as sharp as it gets.
const REFINED_BYTES: usize = 512;
/// Keyframes on request at most this often: a burst of PLIs from several viewers, or a
/// viewer that keeps asking, costs one keyframe, not one per request.
const MIN_KEYFRAME_GAP: Duration = Duration::from_millis(500);

impl Pipeline {
    /// Start capturing `source`; the capturer is made on the pipeline's own thread (a
    /// Windows device context belongs to the thread that made it), and its error, if any,
    /// is returned here.
    pub fn start(
        backend: Arc<dyn Backend>,
        source: Source,
        activity: Activity,
    ) -> anyhow::Result<Pipeline> {
        // Room for the frames that come while a viewer's pacer spreads a keyframe over a
        // slow link (`crate::packets::Pacer`): one that falls further behind than this
        // starts again from a keyframe.
        let (frames, _) = broadcast::channel(32);
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
                let reason = run(capturer, &out, &shared, &*activity);
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
    /// The last frame sent was large enough that the encoder may still be sharpening.
    refining: bool,
    /// Pictures go out at half size (`crate::rate::halve`).
    half: bool,
    /// The size of the last captured picture.
    captured_size: Option<(u32, u32)>,
}

impl<C: Capturer> Stage<C> {
    fn new(capturer: C) -> Result<Self, Stopped> {
        let encoder = H264Encoder::new(EncoderSettings::default())
            .map_err(|e| Stopped::Failed(format!("the encoder could not start: {e}")))?;
        Ok(Self {
            capturer,
            encoder,
            converter: Converter::new(),
            started: Instant::now(),
            have_picture: false,
            last_forced: None,
            last_sent: Instant::now(),
            skipped: None,
            refining: false,
            half: false,
            captured_size: None,
        })
    }

    /// Capture once; encode and send if the screen changed or a keyframe is due.
    /// `Ok(true)` when a frame was sent; `Err` says why capture ended by itself.
    fn step(
        &mut self,
        out: &broadcast::Sender<Arc<Shot>>,
        controls: &Controls,
    ) -> Result<bool, Stopped> {
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
        // A new size for the rate: the picture goes out again at that size even if the
        // screen is still (a still screen would otherwise keep the old size).
        if let Some((w, h)) = self.captured_size
            && crate::rate::halve(target, w, h, self.half) != self.half
        {
            self.capturer.refresh();
        }
        let captured = Instant::now();
        let picture = match self.capturer.capture() {
            Ok(Capture::Frame(f)) => {
                self.captured_size = Some((f.width, f.height));
                let half = crate::rate::halve(target, f.width, f.height, self.half);
                if half != self.half {
                    // The new size starts with a keyframe (new SPS) by itself.
                    self.half = half;
                    self.converter.set_half(half);
                }
                let (w, h) = self.converter.output_size(f.width, f.height);
                let scaled = if half {
                    u64::from(w) << 32 | u64::from(h)
                } else {
                    0
                };
                controls.scaled_to.store(scaled, Ordering::Relaxed);
                let frame = Frame {
                    width: f.width,
                    height: f.height,
                    stride: f.stride,
                    bgra: f.bgra,
                    changed_rows: f.changed_rows,
                };
                self.converter.convert(&frame).map_err(|e| {
                    Stopped::Failed(format!("a captured frame could not be converted: {e}"))
                })?;
                true
            }
            Ok(Capture::Unchanged) => {
                let retry = self
                    .skipped
                    .is_some_and(|at| at.elapsed() >= Duration::from_millis(1000 / FPS));
                let since = self.last_sent.elapsed();
                let refine = self.refining && since >= REFINE;
                if !(keyframe || retry || refine) && since >= HEARTBEAT && self.have_picture {
                    // Only the heartbeat is due: the same picture in a dozen bytes,
                    // without encoding it again (the encoder says when it cannot).
                    if let Some(again) = self.encoder.repeat() {
                        controls.repeats.fetch_add(1, Ordering::Relaxed);
                        self.send(again, captured, out, controls);
                        return Ok(true);
                    }
                }
                (keyframe || retry || refine || since >= HEARTBEAT) && self.have_picture
            }
            Ok(Capture::Ended(gone)) => return Err(Stopped::Gone(gone)),
            Err(e) => return Err(Stopped::Failed(format!("capture failed: {e}"))),
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
                self.send(encoded, captured, out, controls);
                Ok(true)
            }
            Ok(None) => {
                // Skipped to hold the bitrate (a changed picture always encodes to
                // something otherwise): try again at the next look.
                self.skipped = Some(Instant::now());
                controls.skipped.fetch_add(1, Ordering::Relaxed);
                Ok(false)
            }
            Err(e) => Err(Stopped::Failed(format!("encoding failed: {e}"))),
        }
    }
}

impl<C: Capturer> Stage<C> {
    /// One encoded frame to every viewer.
    fn send(
        &mut self,
        encoded: EncodedFrame,
        captured: Instant,
        out: &broadcast::Sender<Arc<Shot>>,
        controls: &Controls,
    ) {
        self.skipped = None;
        self.refining = encoded.data.len() > REFINED_BYTES;
        self.last_sent = Instant::now();
        controls.frames.fetch_add(1, Ordering::Relaxed);
        controls
            .bytes
            .fetch_add(encoded.data.len() as u64, Ordering::Relaxed);
        let number = controls.frames.load(Ordering::Relaxed);
        if crate::peers::tracing() {
            crate::peers::trace(&format!(
                "frame {number}: captured {:.3} encoded {:.3} {} bytes{}",
                crate::peers::unix_ms(captured),
                crate::peers::unix_ms(Instant::now()),
                encoded.data.len(),
                if encoded.keyframe { " keyframe" } else { "" }
            ));
        }
        let shot = Shot {
            frame: encoded,
            captured,
            number,
        };
        let _ = out.send(Arc::new(shot)); // no viewers yet is fine
    }
}

/// When the next frame may go out: a frame after a quiet spell at once, the frames of a
/// run of motion at `INTERACTIVE_FPS` for its first `BURST`, then at `FPS`; never faster
/// than `max_fps` (the congestion controller's, 0 for none) allows.
#[derive(Debug, Default)]
struct Pace {
    last: Option<Instant>,
    /// When the current run of motion began.
    run: Option<Instant>,
    /// When input was last seen injected.
    input: Option<Instant>,
    /// A press seen at this instant whose answer has not been looked for yet.
    press: Option<Instant>,
}

impl Pace {
    fn input(&mut self, at: Instant) {
        self.input = Some(at);
    }

    fn press(&mut self, at: Instant) {
        self.input = Some(at);
        self.press = Some(at);
    }

    /// The answer to the last press was looked for (by news).
    fn answered(&mut self) {
        self.press = None;
    }

    /// A press whose answer is still to be looked for, and when.
    fn pending_press(&self, now: Instant) -> Option<Instant> {
        self.press
            .filter(|press| now.saturating_duration_since(*press) < AFTER_INPUT)
    }

    fn sent(&mut self, at: Instant) {
        if self.press.is_some_and(|press| at >= press + PRESS_SETTLE) {
            self.press = None;
        }
        let quiet = self
            .last
            .is_none_or(|last| at.saturating_duration_since(last) >= QUIET);
        if quiet {
            self.run = Some(at);
        }
        self.last = Some(at);
    }

    /// How long to wait, at `now`, before the next frame may go out.
    fn wait(&self, now: Instant, max_fps: u64) -> Duration {
        let Some(last) = self.last else {
            return Duration::ZERO;
        };
        if let Some(press) = self.press
            && now.saturating_duration_since(press) < AFTER_INPUT
        {
            // The answer to a press, looked for once it is likely drawn.
            return (press + PRESS_SETTLE).saturating_duration_since(now);
        }
        let since = now.saturating_duration_since(last);
        if since >= QUIET {
            return Duration::ZERO;
        }
        let bursting = self
            .run
            .is_some_and(|run| now.saturating_duration_since(run) < BURST)
            || self
                .input
                .is_some_and(|input| now.saturating_duration_since(input) < AFTER_INPUT);
        let mut fps = if bursting { INTERACTIVE_FPS } else { FPS };
        if max_fps > 0 && max_fps < FPS {
            fps = max_fps.max(1);
        }
        Duration::from_micros(1_000_000 / fps).saturating_sub(since)
    }
}

/// The loop: once the pace allows a frame, look; an unchanged screen waits for the next
/// change (a capturer told of changes sleeps until one comes). Returns why it stopped by
/// itself, if it did.
fn run<C: Capturer>(
    capturer: C,
    out: &broadcast::Sender<Arc<Shot>>,
    controls: &Controls,
    activity: &(dyn Fn() -> Injected + Send + Sync),
) -> Option<Stopped> {
    let mut stage = match Stage::new(capturer) {
        Ok(stage) => stage,
        Err(reason) => return Some(reason),
    };
    let mut pace = Pace::default();
    let mut injected = activity();
    while !controls.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let seen = activity();
        if seen.presses != injected.presses {
            // Counted from the injection, not from this thread noticing it.
            pace.press(seen.last_press.unwrap_or(now).min(now));
        } else if seen.events != injected.events {
            pace.input(now);
        }
        injected = seen;
        if let Some(press) = pace.pending_press(now) {
            let left = (press + ANSWER_WAIT).saturating_duration_since(now);
            match stage.capturer.wait_for_news(left) {
                // Drawn, or time is up: look now, whatever the slot.
                Ok(Some(_)) => {
                    pace.answered();
                    let started = Instant::now();
                    match stage.step(out, controls) {
                        Ok(true) => pace.sent(started),
                        Ok(false) => {}
                        Err(reason) => return Some(reason),
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => return Some(Stopped::Failed(format!("capture failed: {e}"))),
            }
        }
        let wait = pace.wait(now, controls.max_fps.load(Ordering::Relaxed));
        if !wait.is_zero() {
            std::thread::sleep(wait.min(SLOT_STEP));
            continue;
        }
        let started = Instant::now();
        match stage.step(out, controls) {
            Ok(true) => pace.sent(started),
            Ok(false) => {
                if let Err(e) = stage.capturer.wait_for_change(IDLE_WAKE) {
                    return Some(Stopped::Failed(format!("capture failed: {e}")));
                }
            }
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
        broadcast::Sender<Arc<Shot>>,
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
        stage.step(&out, &controls).expect("step");
        settle(&mut stage, &out, &controls);
        let sent = controls.frames.load(Ordering::Relaxed);
        for _ in 0..10 {
            stage.step(&out, &controls).expect("step");
        }
        assert_eq!(
            controls.frames.load(Ordering::Relaxed),
            sent,
            "nothing more"
        );
        assert!(rx.try_recv().expect("the first frame").frame.keyframe);
        while rx.try_recv().is_ok() {} // the sharpening, if any
        stage.capturer.tick();
        stage.step(&out, &controls).expect("step");
        assert_eq!(
            controls.frames.load(Ordering::Relaxed),
            sent + 1,
            "one per change"
        );
        assert!(!rx.try_recv().expect("the change").frame.keyframe);
    }

    /// The size of the picture an encoded keyframe carries, as a decoder sees it.
    fn decoded_size(frame: &EncodedFrame) -> (usize, usize) {
        use openh264::formats::YUVSource;
        let mut decoder = openh264::decoder::Decoder::new().expect("decoder");
        decoder
            .decode(&frame.data)
            .expect("decode")
            .expect("a picture")
            .dimensions()
    }

    #[test]
    fn a_path_too_slow_for_the_whole_picture_gets_it_at_half_size_then_whole_again() {
        let stage = Stage::new(SyntheticScreen::new(1280, 720)).expect("encoder");
        let (mut stage, out, controls) = (stage, broadcast::channel(16).0, Controls::default());
        let mut rx = out.subscribe();
        // 100 kbit/s for 1280×720: under 0.02 bits per pixel even at 10 fps.
        controls.target_bps.store(100_000, Ordering::Relaxed);
        stage.step(&out, &controls).expect("step");
        let first = rx.try_recv().expect("a frame");
        assert!(first.frame.keyframe);
        assert_eq!(decoded_size(&first.frame), (640, 360));
        assert_eq!(
            controls.scaled_to.load(Ordering::Relaxed),
            640 << 32 | 360,
            "the status line can say so"
        );
        // The path recovers: the picture goes out whole again, starting with a keyframe,
        // even on a still screen (no tick: nothing changed on it).
        controls.target_bps.store(2_500_000, Ordering::Relaxed);
        while rx.try_recv().is_ok() {}
        stage.step(&out, &controls).expect("step");
        let whole = rx.try_recv().expect("a frame");
        assert!(whole.frame.keyframe, "a new size starts with a keyframe");
        assert_eq!(decoded_size(&whole.frame), (1280, 720));
        assert_eq!(controls.scaled_to.load(Ordering::Relaxed), 0);
    }

    /// Re-encode the still picture until the encoder has nothing left to sharpen.
    fn settle(
        stage: &mut Stage<SyntheticScreen>,
        out: &broadcast::Sender<Arc<Shot>>,
        controls: &Controls,
    ) {
        for _ in 0..100 {
            if !stage.refining {
                return;
            }
            stage.last_sent = Instant::now() - REFINE;
            stage.step(out, controls).expect("step");
        }
        panic!("the encoder still sharpens a still picture after 100 re-encodes");
    }

    #[test]
    fn a_still_picture_is_sharpened_soon_after_a_change_then_left_alone() {
        let mut stage = Stage::new(SyntheticScreen::detailed(320, 240)).expect("encoder");
        let (out, _) = broadcast::channel(256);
        let controls = Controls::default();
        let mut rx = out.subscribe();
        controls.target_bps.store(50_000, Ordering::Relaxed); // low: the first picture is coarse
        stage.step(&out, &controls).expect("step");
        let first = rx.try_recv().expect("first");
        assert!(
            first.frame.data.len() > REFINED_BYTES,
            "{} bytes",
            first.frame.data.len()
        );
        assert!(stage.refining, "a large frame may still be sharpened");
        // Not before REFINE has passed since it went out.
        stage.last_sent = Instant::now();
        stage.step(&out, &controls).expect("step");
        assert!(rx.try_recv().is_err(), "not at once");
        stage.last_sent = Instant::now() - REFINE;
        stage.step(&out, &controls).expect("step");
        let again = rx.try_recv().expect("the still picture re-encoded");
        assert!(!again.frame.keyframe);
        settle(&mut stage, &out, &controls);
        while let Ok(shot) = rx.try_recv() {
            assert!(!shot.frame.keyframe);
        }
        // Sharp: the still screen is left alone until the heartbeat.
        stage.last_sent = Instant::now() - REFINE;
        stage.step(&out, &controls).expect("step");
        assert!(
            rx.try_recv().is_err(),
            "a sharp still picture is not re-encoded"
        );
    }

    #[test]
    fn an_unchanged_screen_sends_a_heartbeat_of_a_few_bytes_each_second() {
        let (mut stage, out, controls) = stage();
        let mut rx = out.subscribe();
        stage.step(&out, &controls).expect("step");
        settle(&mut stage, &out, &controls);
        while rx.try_recv().is_ok() {}
        stage.last_sent = Instant::now() - HEARTBEAT;
        stage.step(&out, &controls).expect("step");
        let beat = rx.try_recv().expect("a heartbeat");
        assert!(!beat.frame.keyframe, "not a keyframe");
        // The picture repeated by a slice of skipped macroblocks (tandem_codec's
        // `repeat`), not encoded again.
        assert_eq!(controls.repeats.load(Ordering::Relaxed), 1);
        assert!(
            beat.frame.data.len() <= 16,
            "{} bytes",
            beat.frame.data.len()
        );
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
        assert!(rx.try_recv().expect("forced").frame.keyframe);
        // Another request at once waits for the gap; the screen stays silent meanwhile.
        controls.keyframe.store(true, Ordering::Relaxed);
        stage.step(&out, &controls).expect("step");
        assert!(rx.try_recv().is_err(), "rate-limited");
        assert!(controls.keyframe.load(Ordering::Relaxed), "kept for later");
        stage.last_forced = Some(Instant::now() - MIN_KEYFRAME_GAP);
        stage.step(&out, &controls).expect("step");
        assert!(rx.try_recv().expect("after the gap").frame.keyframe);
    }

    #[test]
    fn a_closed_source_ends_the_pipeline_with_the_reason() {
        let (mut stage, out, controls) = stage();
        stage.step(&out, &controls).expect("step");
        stage.capturer.end();
        assert_eq!(
            stage.step(&out, &controls),
            Err(Stopped::Gone(Gone::WindowClosed))
        );
    }

    #[test]
    fn every_frame_carries_the_instant_it_was_captured() {
        let (mut stage, out, controls) = stage();
        let mut rx = out.subscribe();
        let before = Instant::now();
        stage.step(&out, &controls).expect("step");
        let after = Instant::now();
        let shot = rx.try_recv().expect("a frame");
        assert!(before <= shot.captured && shot.captured <= after);
        // A heartbeat of an unchanged picture is stamped when it is looked at again, not
        // when the picture was first taken.
        stage.last_sent = Instant::now() - HEARTBEAT;
        let again = Instant::now();
        stage.step(&out, &controls).expect("step");
        assert!(rx.try_recv().expect("a heartbeat").captured >= again);
    }

    #[test]
    fn a_change_after_a_quiet_spell_goes_out_at_once() {
        let mut pace = Pace::default();
        let t0 = Instant::now();
        assert_eq!(pace.wait(t0, 0), Duration::ZERO, "the first frame");
        pace.sent(t0);
        // A click 2 s later: no slot to wait for.
        let click = t0 + Duration::from_secs(2);
        assert_eq!(pace.wait(click, 0), Duration::ZERO);
    }

    #[test]
    fn the_frames_right_after_a_change_come_at_60_fps_and_sustained_motion_at_30() {
        let mut pace = Pace::default();
        let t0 = Instant::now();
        pace.sent(t0);
        // The answer to a click, then the rest of its drawing 5 ms later: 60 fps.
        let wait = pace.wait(t0 + Duration::from_millis(5), 0);
        assert_eq!(wait, Duration::from_micros(16_666 - 5_000));
        // Motion that keeps coming: after BURST, 30 fps.
        let mut at = t0;
        while at < t0 + BURST {
            at += Duration::from_millis(17);
            pace.sent(at);
        }
        assert_eq!(pace.wait(at, 0), Duration::from_micros(33_333));
        // The congestion controller's lower rate wins, in a burst or not.
        let mut fresh = Pace::default();
        fresh.sent(t0);
        assert_eq!(fresh.wait(t0, 10), Duration::from_millis(100));
        // A quiet spell starts a new burst.
        let later = at + QUIET;
        assert_eq!(pace.wait(later, 0), Duration::ZERO);
        pace.sent(later);
        assert_eq!(pace.wait(later, 0), Duration::from_micros(16_666));
    }

    #[test]
    fn while_input_is_injected_even_a_screen_that_never_stops_moving_gets_60_fps() {
        let mut pace = Pace::default();
        let t0 = Instant::now();
        // A clock that redraws all the time: frames back to back for a second, 30 fps.
        let mut at = t0;
        while at < t0 + Duration::from_secs(1) {
            pace.sent(at);
            at += Duration::from_millis(33);
        }
        pace.sent(at);
        assert_eq!(pace.wait(at, 0), Duration::from_micros(33_333));
        // The rep clicks: the slot shrinks to 60 fps at once, and for AFTER_INPUT.
        pace.input(at);
        assert_eq!(pace.wait(at, 0), Duration::from_micros(16_666));
        // The motion goes on; once AFTER_INPUT has passed, back to 30 fps.
        let later = at + AFTER_INPUT;
        let mut t = at;
        while t + Duration::from_millis(33) < later {
            t += Duration::from_millis(33);
            pace.sent(t);
        }
        let since = later - t;
        assert_eq!(
            pace.wait(later, 0),
            Duration::from_micros(33_333).saturating_sub(since),
            "back to 30 fps"
        );
    }

    #[test]
    fn the_answer_to_a_press_is_looked_for_right_after_it_whatever_the_slot() {
        let mut pace = Pace::default();
        let t0 = Instant::now();
        pace.sent(t0);
        // A click 1 ms after a frame: no waiting for the slot, only for the application
        // to draw its answer.
        let click = t0 + Duration::from_millis(1);
        pace.press(click);
        assert_eq!(pace.wait(click, 0), PRESS_SETTLE);
        let look = click + PRESS_SETTLE;
        assert_eq!(pace.wait(look, 0), Duration::ZERO);
        // Found and sent: the frames after it are paced again (60 fps after input).
        pace.sent(look);
        assert_eq!(pace.wait(look, 0), Duration::from_micros(16_666));
        // Nothing had changed yet at the look: the next change goes out at once.
        let mut slow = Pace::default();
        slow.sent(t0);
        slow.press(click);
        assert_eq!(
            slow.wait(click + Duration::from_millis(9), 0),
            Duration::ZERO
        );
    }

    /// A screen that never stops moving (a clock), whose capturer tells news: it notes
    /// how long each wait for news was allowed, and the news comes at once.
    struct Newsy {
        screen: SyntheticScreen,
        waits: Arc<std::sync::Mutex<Vec<Duration>>>,
    }

    impl Capturer for Newsy {
        fn capture(&mut self) -> Result<tandem_capture::Capture<'_>, tandem_capture::CaptureError> {
            self.screen.tick();
            self.screen.capture()
        }

        fn wait_for_news(
            &mut self,
            at_most: Duration,
        ) -> Result<Option<bool>, tandem_capture::CaptureError> {
            self.waits.lock().expect("waits").push(at_most);
            Ok(Some(true))
        }

        fn refresh(&mut self) {
            self.screen.refresh();
        }
    }

    #[test]
    fn over_a_moving_screen_each_press_is_answered_by_waiting_for_news_once() {
        let waits = Arc::new(std::sync::Mutex::new(Vec::new()));
        let capturer = Newsy {
            screen: SyntheticScreen::new(160, 120),
            waits: Arc::clone(&waits),
        };
        let (out, _) = broadcast::channel(64);
        let mut rx = out.subscribe();
        let controls = Controls::default();
        let presses = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen = Arc::clone(&presses);
        let activity = move || {
            let presses = seen.load(Ordering::Relaxed);
            Injected {
                events: presses,
                presses,
                last_press: (presses > 0).then(Instant::now),
            }
        };
        let waits_now = || waits.lock().expect("waits").clone();
        std::thread::scope(|scope| {
            let pipeline = scope.spawn(|| run(capturer, &out, &controls, &activity));
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut frames = 0;
            while frames < 3 && Instant::now() < deadline {
                if rx.try_recv().is_ok() {
                    frames += 1;
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            assert_eq!(frames, 3, "the moving screen is sent");
            assert!(
                waits_now().is_empty(),
                "no news is looked for without a press"
            );
            for press in 1..=2 {
                presses.store(press, Ordering::Relaxed);
                while waits_now().len() < press as usize && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            // Frames keep flowing after the answers were looked for.
            while rx.try_recv().is_ok() {}
            let resumed = (0..1000).any(|_| {
                std::thread::sleep(Duration::from_millis(5));
                rx.try_recv().is_ok()
            });
            controls.stop.store(true, Ordering::Relaxed);
            assert_eq!(pipeline.join().expect("the pipeline"), None);
            let waits = waits_now();
            assert_eq!(waits.len(), 2, "one wait for news per press: {waits:?}");
            assert!(waits.iter().all(|w| *w <= ANSWER_WAIT), "{waits:?}");
            assert!(resumed, "the motion goes on being sent");
        });
    }
}
