//! Per-stage cost on the content: the agent's own capture → convert → encode loop, run in
//! this process at 30 fps, timed stage by stage; and the peer, ffmpeg's x11grab with
//! libx264 ultrafast/zerolatency, on the same display.

use std::time::{Duration, Instant};

use anyhow::Context;
use tandem_capture::{Capture, Source, X11Capturer};
use tandem_codec::{Converter, EncoderSettings, Frame, H264Encoder};

use crate::report::cpu_seconds_of;

#[derive(Debug, Default)]
pub struct Stages {
    pub capture_ms: Vec<f64>,
    pub convert_ms: Vec<f64>,
    pub encode_ms: Vec<f64>,
    /// Capture, convert and encode of each changed frame, end to end.
    pub total_ms: Vec<f64>,
    pub bytes: u64,
    pub seconds: f64,
    /// CPU per frame interval (1/30 s), ms: the whole loop, idle polls included, and the
    /// encoder's own threads (the whole process: nothing else in it runs meanwhile).
    pub cpu_ms_per_frame: f64,
}

impl Stages {
    pub fn kbit_per_s(&self) -> f64 {
        self.bytes as f64 * 8.0 / 1000.0 / self.seconds
    }
}

pub fn measure(display: &str, seconds: f64, settings: EncoderSettings) -> anyhow::Result<Stages> {
    let mut capturer = X11Capturer::new(Some(display), Source::Desktop)?;
    let mut converter = Converter::new();
    let mut encoder = H264Encoder::new(settings)?;
    let mut out = Stages::default();
    let period = Duration::from_micros(33_333);
    let started = Instant::now();
    let cpu_before = cpu_seconds_of(std::process::id());
    let mut next = started;
    let mut intervals = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        intervals += 1;
        let t0 = Instant::now();
        let converted = match capturer.capture()? {
            Capture::Frame(f) => {
                let t1 = Instant::now();
                out.capture_ms.push(ms(t1 - t0));
                converter.convert(&Frame {
                    width: f.width,
                    height: f.height,
                    stride: f.stride,
                    bgra: f.bgra,
                    changed_rows: f.changed_rows,
                })?;
                out.convert_ms.push(ms(t1.elapsed()));
                true
            }
            Capture::Unchanged => false,
            Capture::Ended(reason) => anyhow::bail!("capture ended: {reason}"),
        };
        if converted {
            let yuv = converter.last().context("a converted picture")?;
            let t2 = Instant::now();
            let encoded = encoder.encode(yuv, started.elapsed().as_millis() as u64)?;
            out.encode_ms.push(ms(t2.elapsed()));
            out.total_ms.push(ms(t0.elapsed()));
            out.bytes += encoded.map_or(0, |e| e.data.len() as u64);
        }
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    out.seconds = started.elapsed().as_secs_f64();
    out.cpu_ms_per_frame =
        (cpu_seconds_of(std::process::id()) - cpu_before) * 1000.0 / intervals as f64;
    Ok(out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// ffmpeg x11grab → libx264 ultrafast zerolatency for `seconds` on the same display.
#[derive(Debug)]
pub struct Peer {
    pub cpu_ms_per_frame: f64,
    pub kbit_per_s: f64,
}

pub fn ffmpeg(display: &str, width: u16, height: u16, seconds: f64) -> anyhow::Result<Peer> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("out.h264");
    let output = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-benchmark", "-f", "x11grab"])
        .args(["-framerate", "30", "-draw_mouse", "1", "-video_size"])
        .arg(format!("{width}x{height}"))
        .args(["-i", display, "-t"])
        .arg(format!("{seconds}"))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args(["-f", "h264", "-y"])
        .arg(&file)
        .output()
        .context("ffmpeg runs (Debian package ffmpeg; cargo xtask bench installs it)")?;
    let log = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(output.status.success(), "ffmpeg failed: {log}");
    let field = |name: &str| -> Option<f64> {
        let at = log.find(&format!("{name}="))? + name.len() + 1;
        log[at..].split('s').next()?.trim().parse().ok()
    };
    let cpu = field("utime").context("ffmpeg's -benchmark line")? + field("stime").unwrap_or(0.0);
    let bytes = std::fs::metadata(&file)?.len();
    let frames = seconds * 30.0;
    Ok(Peer {
        cpu_ms_per_frame: cpu * 1000.0 / frames,
        kbit_per_s: bytes as f64 * 8.0 / 1000.0 / seconds,
    })
}
