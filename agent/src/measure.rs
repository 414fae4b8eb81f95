//! `tandem-agent measure-stages` (hidden): this agent's own capture → convert → encode
//! loop on the whole desktop at 30 fps for a while, each stage timed, printed as one JSON
//! line for the bench. It runs the same way on every platform, so the bench can put the
//! Windows agent under Wine beside the Linux agent on the same content.

use std::time::{Duration, Instant};

use anyhow::Context;
use tandem_capture::{Capture, Source};
use tandem_codec::{Converter, EncoderSettings, Frame, H264Encoder};

pub fn run(display: Option<String>, seconds: f64) -> anyhow::Result<()> {
    let backend = crate::backend::choose(display)?;
    let mut capturer = backend.capturer(Source::Desktop)?;
    let mut converter = Converter::new();
    let mut encoder = H264Encoder::new(EncoderSettings::default())?;
    let (mut capture_ms, mut convert_ms, mut encode_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut bytes = 0u64;
    let period = Duration::from_micros(33_333);
    let started = Instant::now();
    let mut next = started;
    while started.elapsed().as_secs_f64() < seconds {
        let t0 = Instant::now();
        let changed = match capturer.capture()? {
            Capture::Frame(f) => {
                let t1 = Instant::now();
                capture_ms.push(ms(t1 - t0));
                converter.convert(&Frame {
                    width: f.width,
                    height: f.height,
                    stride: f.stride,
                    bgra: f.bgra,
                    changed_rows: f.changed_rows,
                })?;
                convert_ms.push(ms(t1.elapsed()));
                true
            }
            Capture::Unchanged => false,
            Capture::Ended(reason) => anyhow::bail!("capture ended: {reason}"),
        };
        if changed {
            let yuv = converter.last().context("a converted picture")?;
            let t2 = Instant::now();
            let encoded = encoder.encode(yuv, started.elapsed().as_millis() as u64)?;
            encode_ms.push(ms(t2.elapsed()));
            bytes += encoded.map_or(0, |e| e.data.len() as u64);
        }
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "backend": backend.describe(),
            "seconds": seconds,
            "capture_ms": capture_ms,
            "convert_ms": convert_ms,
            "encode_ms": encode_ms,
            "kbit_per_s": bytes as f64 * 8.0 / 1000.0 / seconds,
        })
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
