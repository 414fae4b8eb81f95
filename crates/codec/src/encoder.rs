//! The H.264 encoder: openh264 tuned for screens and for WebRTC.

use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::{YUVBuffer, YUVSource};

use crate::CodecError;

/// What the encoder aims for; change it while running with [`H264Encoder::configure`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderSettings {
    /// Target bitrate in bits per second.
    pub bitrate_bps: u32,
    /// The most frames per second the stream will carry.
    pub max_fps: f32,
    /// A keyframe at least this often, so a viewer that lost one recovers even without
    /// asking (the PLI path is the fast one).
    pub keyframe_interval_frames: u32,
}

impl Default for EncoderSettings {
    fn default() -> Self {
        Self {
            bitrate_bps: 2_500_000,
            max_fps: 30.0,
            keyframe_interval_frames: 300,
        }
    }
}

/// One encoded picture: an Annex-B access unit (SPS and PPS precede every keyframe). The
/// bytes are shared, not copied, by every viewer that sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    pub data: bytes::Bytes,
    pub keyframe: bool,
}

pub struct H264Encoder {
    settings: EncoderSettings,
    encoder: Encoder,
    force_keyframe: bool,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl H264Encoder {
    pub fn new(settings: EncoderSettings) -> Result<Self, CodecError> {
        Ok(Self {
            settings,
            encoder: build(settings)?,
            force_keyframe: false,
        })
    }

    pub fn settings(&self) -> EncoderSettings {
        self.settings
    }

    /// New bitrate, frame rate or keyframe interval. openh264 takes them at creation, so
    /// the encoder is rebuilt; the next frame is a keyframe with fresh SPS and PPS, which
    /// every decoder follows without a hitch.
    pub fn configure(&mut self, settings: EncoderSettings) -> Result<(), CodecError> {
        if settings == self.settings {
            return Ok(());
        }
        self.encoder = build(settings)?;
        self.settings = settings;
        Ok(())
    }

    /// The next frame will be a keyframe (a new viewer, or a PLI/FIR from one).
    pub fn request_keyframe(&mut self) {
        self.force_keyframe = true;
    }

    /// Encode one picture taken at `timestamp_ms`. `None`: the encoder chose to emit
    /// nothing for it (it does so only when nothing changed).
    pub fn encode(
        &mut self,
        picture: &YUVBuffer,
        timestamp_ms: u64,
    ) -> Result<Option<EncodedFrame>, CodecError> {
        let (w, h) = picture.dimensions();
        if w % 2 != 0 || h % 2 != 0 || w < 2 || h < 2 {
            return Err(CodecError::TooSmall {
                width: w as u32,
                height: h as u32,
            });
        }
        if std::mem::take(&mut self.force_keyframe) {
            self.encoder.force_intra_frame();
        }
        let stream = self
            .encoder
            .encode_at(picture, openh264::Timestamp::from_millis(timestamp_ms))
            .map_err(|e| CodecError::Encoder(e.to_string()))?;
        let keyframe = matches!(stream.frame_type(), FrameType::IDR | FrameType::I);
        if matches!(stream.frame_type(), FrameType::Skip | FrameType::Invalid) {
            return Ok(None);
        }
        let data = stream.to_vec();
        if data.is_empty() {
            return Ok(None);
        }
        Ok(Some(EncodedFrame {
            data: data.into(),
            keyframe,
        }))
    }
}

fn build(s: EncoderSettings) -> Result<Encoder, CodecError> {
    let config = EncoderConfig::new()
        .usage_type(UsageType::ScreenContentRealTime)
        .profile(Profile::Baseline)
        .rate_control_mode(RateControlMode::Bitrate)
        .bitrate(BitRate::from_bps(s.bitrate_bps.max(10_000)))
        .max_frame_rate(FrameRate::from_hz(s.max_fps.clamp(1.0, 120.0)))
        .intra_frame_period(IntraFramePeriod::from_num_frames(
            s.keyframe_interval_frames,
        ))
        .complexity(Complexity::Low)
        // Not available for screen content; saying so keeps openh264 from warning.
        .adaptive_quantization(false)
        .background_detection(false)
        // Dropping frames to hold the bitrate would add latency after a burst of motion;
        // a screen share would rather lower quality for a moment.
        .skip_frames(false);
    Encoder::with_api_config(OpenH264API::from_source(), config)
        .map_err(|e| CodecError::Encoder(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Converter, Frame};
    use openh264::decoder::Decoder;

    /// Four coloured quadrants with a white square whose place moves with `n`.
    pub(super) fn pattern(width: u32, height: u32, n: u32) -> Vec<u8> {
        let (w, h) = (width as usize, height as usize);
        let mut data = vec![0u8; w * h * 4];
        for y in 0..h {
            for x in 0..w {
                let bgra = match (x < w / 2, y < h / 2) {
                    (true, true) => [0, 0, 255, 255],     // red
                    (false, true) => [0, 255, 0, 255],    // green
                    (true, false) => [255, 0, 0, 255],    // blue
                    (false, false) => [0, 255, 255, 255], // yellow
                };
                let square = (x / 16) == (n as usize % (w / 16)) && y < 16;
                let px = if square { [255, 255, 255, 255] } else { bgra };
                data[(y * w + x) * 4..(y * w + x) * 4 + 4].copy_from_slice(&px);
            }
        }
        data
    }

    fn encode_pattern(encoder: &mut H264Encoder, n: u32) -> Option<EncodedFrame> {
        let data = pattern(320, 240, n);
        let mut c = Converter::new();
        let frame = Frame {
            width: 320,
            height: 240,
            stride: 320 * 4,
            bgra: &data,
        };
        let yuv = c.convert(&frame).expect("convert");
        encoder.encode(yuv, u64::from(n) * 33).expect("encode")
    }

    #[test]
    fn decoded_pixels_match_the_pattern_colours() {
        let mut encoder = H264Encoder::new(EncoderSettings::default()).expect("encoder");
        let frame = encode_pattern(&mut encoder, 0).expect("first frame");
        assert!(frame.keyframe, "the first frame is a keyframe");
        assert!(frame.data.starts_with(&[0, 0, 0, 1]), "Annex B start code");
        let mut decoder = Decoder::new().expect("decoder");
        let yuv = decoder
            .decode(&frame.data)
            .expect("decode")
            .expect("a picture");
        let mut rgb = vec![0u8; 320 * 240 * 3];
        yuv.write_rgb8(&mut rgb);
        let at = |x: usize, y: usize| {
            let i = (y * 320 + x) * 3;
            [rgb[i], rgb[i + 1], rgb[i + 2]]
        };
        let near =
            |got: [u8; 3], want: [u8; 3]| got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 40);
        for (x, y, want) in [
            (80, 180, [0, 0, 255]),
            (240, 60, [0, 255, 0]),
            (80, 60, [255, 0, 0]),
            (240, 180, [255, 255, 0]),
        ] {
            assert!(
                near(at(x, y), want),
                "({x},{y}) is {:?}, want {want:?}",
                at(x, y)
            );
        }
    }

    #[test]
    fn keyframes_come_first_on_request_and_after_reconfiguring() {
        let mut encoder = H264Encoder::new(EncoderSettings::default()).expect("encoder");
        let kinds: Vec<bool> = (0..4)
            .filter_map(|n| encode_pattern(&mut encoder, n))
            .map(|f| f.keyframe)
            .collect();
        assert_eq!(kinds, [true, false, false, false]);
        encoder.request_keyframe();
        assert!(encode_pattern(&mut encoder, 4).expect("frame").keyframe);
        assert!(!encode_pattern(&mut encoder, 5).expect("frame").keyframe);
        let mut settings = encoder.settings();
        settings.bitrate_bps = 500_000;
        encoder.configure(settings).expect("reconfigure");
        assert!(encode_pattern(&mut encoder, 6).expect("frame").keyframe);
    }

    #[test]
    fn an_unchanged_screen_costs_almost_nothing() {
        let mut encoder = H264Encoder::new(EncoderSettings::default()).expect("encoder");
        let first = encode_pattern(&mut encoder, 0).expect("first");
        let sizes: Vec<usize> = (0..10)
            .filter_map(|_| encode_pattern(&mut encoder, 0))
            .map(|f| f.data.len())
            .collect();
        assert!(
            sizes.iter().all(|&n| n <= 32),
            "unchanged frames: {sizes:?} bytes"
        );
        assert!(
            first.data.len() > 10 * 32,
            "keyframe: {} bytes",
            first.data.len()
        );
    }

    #[test]
    fn changes_reach_the_decoder_through_predicted_frames() {
        let mut encoder = H264Encoder::new(EncoderSettings::default()).expect("encoder");
        let mut decoder = Decoder::new().expect("decoder");
        let mut converter = Converter::new();
        // Where the white square is, read as the green channel at x = 8, 56, 120 (row 8).
        let mut seen = vec![];
        for (i, n) in [0u32, 0, 3, 7].into_iter().enumerate() {
            let data = pattern(320, 240, n);
            let frame = Frame {
                width: 320,
                height: 240,
                stride: 1280,
                bgra: &data,
            };
            let yuv = converter.convert(&frame).expect("convert");
            let out = encoder
                .encode(yuv, i as u64 * 33)
                .expect("encode")
                .expect("frame");
            assert_eq!(out.keyframe, i == 0);
            let picture = decoder.decode(&out.data).expect("decode").expect("picture");
            let mut rgb = vec![0u8; 320 * 240 * 3];
            picture.write_rgb8(&mut rgb);
            let white = |x: usize| rgb[(8 * 320 + x) * 3 + 1] > 200;
            seen.push((white(8), white(56), white(120)));
        }
        let expected = [
            (true, false, false),
            (true, false, false),
            (false, true, false),
            (false, false, true),
        ];
        assert_eq!(seen, expected);
    }
}
