//! Capture → encode, on a thread of its own: one capture and one encoder serve every
//! viewer. Encoded frames go out on a broadcast channel; anyone may ask for a keyframe.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tandem_capture::{Capture, Source, X11Capturer};
use tandem_codec::{Converter, EncodedFrame, EncoderSettings, Frame, H264Encoder};
use tokio::sync::broadcast;

/// Controls and counters shared with the running pipeline.
#[derive(Default)]
pub struct Controls {
    pub stop: AtomicBool,
    pub keyframe: AtomicBool,
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
}

pub struct Pipeline {
    pub frames: broadcast::Sender<Arc<EncodedFrame>>,
    pub controls: Arc<Controls>,
    /// Set when capture ends by itself (the window closed), with the reason.
    pub ended: tokio::sync::watch::Receiver<Option<String>>,
}

const FPS: u64 = 30;
/// Keyframes on request at most this often: a burst of PLIs from several viewers, or a
/// viewer that keeps asking, costs one keyframe, not one per request.
const MIN_KEYFRAME_GAP: Duration = Duration::from_millis(500);

impl Pipeline {
    pub fn start(display: Option<String>, source: Source) -> anyhow::Result<Pipeline> {
        let capturer = X11Capturer::new(display.as_deref(), source)?;
        let (frames, _) = broadcast::channel(4);
        let controls = Arc::new(Controls::default());
        let (ended_tx, ended) = tokio::sync::watch::channel(None);
        let out = frames.clone();
        let shared = controls.clone();
        std::thread::Builder::new()
            .name("capture-encode".into())
            .spawn(move || {
                let reason = run(capturer, &out, &shared);
                let _ = ended_tx.send(reason);
            })?;
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

/// The loop: capture at up to 30 fps; an unchanged screen costs a poll and no frame.
/// Returns why it stopped by itself, if it did.
fn run(
    mut capturer: X11Capturer,
    out: &broadcast::Sender<Arc<EncodedFrame>>,
    controls: &Controls,
) -> Option<String> {
    let mut encoder = match H264Encoder::new(EncoderSettings::default()) {
        Ok(e) => e,
        Err(e) => return Some(format!("the encoder could not start: {e}")),
    };
    let mut converter = Converter::new();
    let started = Instant::now();
    let period = Duration::from_millis(1000 / FPS);
    let mut next = Instant::now();
    // The last picture, re-encoded when a keyframe is asked for on an unchanged screen.
    let mut have_picture = false;
    let mut last_forced: Option<Instant> = None;
    while !controls.stop.load(Ordering::Relaxed) {
        let due = last_forced.is_none_or(|at| at.elapsed() >= MIN_KEYFRAME_GAP);
        let keyframe = due && controls.keyframe.swap(false, Ordering::Relaxed);
        if keyframe {
            encoder.request_keyframe();
            last_forced = Some(Instant::now());
        }
        let picture = match capturer.capture() {
            Ok(Capture::Frame(f)) => {
                let frame = Frame {
                    width: f.width,
                    height: f.height,
                    stride: f.stride,
                    bgra: f.bgra,
                };
                match converter.convert(&frame) {
                    Ok(_) => true,
                    Err(e) => return Some(format!("a captured frame could not be converted: {e}")),
                }
            }
            Ok(Capture::Unchanged) => keyframe && have_picture,
            Ok(Capture::Ended(reason)) => return Some(reason.to_owned()),
            Err(e) => return Some(format!("capture failed: {e}")),
        };
        if picture {
            have_picture = true;
            let Some(yuv) = converter.last() else {
                continue;
            };
            let ms = started.elapsed().as_millis() as u64;
            match encoder.encode(yuv, ms) {
                Ok(Some(encoded)) => {
                    controls.frames.fetch_add(1, Ordering::Relaxed);
                    controls
                        .bytes
                        .fetch_add(encoded.data.len() as u64, Ordering::Relaxed);
                    let _ = out.send(Arc::new(encoded)); // no viewers yet is fine
                }
                Ok(None) => {}
                Err(e) => return Some(format!("encoding failed: {e}")),
            }
        }
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    None
}
