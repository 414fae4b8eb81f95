//! The H.264 encoder: openh264 tuned for screens and for WebRTC.

use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSource;

use crate::CodecError;
use crate::repeat::Repeater;

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

/// The range [`H264Encoder::set_bitrate`] keeps to: below the floor a screen is not
/// legible at any frame rate; above the ceiling nothing on a screen gains.
pub const MIN_BITRATE_BPS: u32 = 100_000;
pub const MAX_BITRATE_BPS: u32 = 20_000_000;

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
    /// The picture size the encoder was last set up for: openh264 goes back to the
    /// configured bitrate when the size changes, so the live one is applied again.
    dimensions: Option<(usize, usize)>,
    /// A bitrate set while running ([`H264Encoder::set_bitrate`]) but not yet applied.
    rate_pending: bool,
    /// The maximum bitrate the running encoder was last given.
    max_bps: Option<i32>,
    /// The bitrate the encoder was built with, which openh264 returns to on a new size.
    built_bps: u32,
    /// Skip frames between openh264's own ([`H264Encoder::repeat`]).
    repeater: Repeater,
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
            dimensions: None,
            rate_pending: false,
            max_bps: None,
            built_bps: settings.bitrate_bps,
            repeater: Repeater::default(),
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
        self.dimensions = None;
        self.rate_pending = false;
        self.max_bps = None;
        self.built_bps = settings.bitrate_bps;
        self.repeater.reset();
        Ok(())
    }

    /// A new target bitrate, taken by the running encoder from the next frame on: no
    /// keyframe, no new SPS (openh264's `ENCODER_OPTION_BITRATE`). The congestion
    /// controller calls this whenever the path's estimate moves.
    pub fn set_bitrate(&mut self, bps: u32) {
        let bps = bps.clamp(MIN_BITRATE_BPS, MAX_BITRATE_BPS);
        if bps != self.settings.bitrate_bps {
            self.settings.bitrate_bps = bps;
            self.rate_pending = true;
        }
    }

    /// A refused bitrate is no reason to end the share: the encoder keeps the rate it
    /// had (the refusal goes to stderr once per change).
    fn apply_bitrate_or_keep(&mut self) {
        if let Err(e) = self.apply_bitrate() {
            eprintln!("tandem-codec: {e}");
        }
    }

    /// The live target bitrate, for the encoder that exists now.
    fn apply_bitrate(&mut self) -> Result<(), CodecError> {
        use openh264_sys2::{
            ENCODER_OPTION_BITRATE, ENCODER_OPTION_MAX_BITRATE, SBitrateInfo, SPATIAL_LAYER_0,
            SPATIAL_LAYER_ALL,
        };
        let bps = i32::try_from(self.settings.bitrate_bps).unwrap_or(i32::MAX);
        // The maximum first when raising (a target above it is refused), the target
        // first when lowering; both for the one spatial layer and for the whole stream.
        let raising = self.max_bps.is_none_or(|max| bps > max);
        let options = if raising {
            [ENCODER_OPTION_MAX_BITRATE, ENCODER_OPTION_BITRATE]
        } else {
            [ENCODER_OPTION_BITRATE, ENCODER_OPTION_MAX_BITRATE]
        };
        for option in options {
            for layer in [SPATIAL_LAYER_ALL, SPATIAL_LAYER_0] {
                let mut info = SBitrateInfo {
                    iLayer: layer,
                    iBitrate: bps,
                };
                // SAFETY: the encoder is initialised (a frame was encoded at this size, see
                // `encode`), and `SetOption` with these two options reads one
                // `SBitrateInfo` through the pointer, which lives across the call.
                #[allow(unsafe_code)]
                let code = unsafe {
                    self.encoder
                        .raw_api()
                        .set_option(option, (&raw mut info).cast())
                };
                if code != 0 {
                    return Err(CodecError::Encoder(format!(
                        "openh264 refused the bitrate {bps} (option {option}, code {code})"
                    )));
                }
            }
        }
        self.max_bps = Some(bps);
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
        picture: &impl YUVSource,
        timestamp_ms: u64,
    ) -> Result<Option<EncodedFrame>, CodecError> {
        let (w, h) = picture.dimensions();
        if w % 2 != 0 || h % 2 != 0 || w < 2 || h < 2 {
            return Err(CodecError::TooSmall {
                width: w as u32,
                height: h as u32,
            });
        }
        // openh264 sets itself up for a new size at its first frame of that size, with the
        // bitrate it was built with: the live one is applied again right after.
        let first_at_size = self.dimensions != Some((w, h));
        if first_at_size && self.dimensions.is_some() && self.settings.bitrate_bps != self.built_bps
        {
            // A new size (a picture halved for a slow path, a window resized) starts with
            // a keyframe whose size openh264 picks from the bitrate it was built with. On
            // a path that fell from the start's 2.5 Mbit/s to 150 kbit/s that keyframe
            // was 130 kB, seconds of the path's time: built again at the live rate, the
            // keyframe is sized for the path it goes over.
            self.encoder = build(self.settings)?;
            self.built_bps = self.settings.bitrate_bps;
            self.rate_pending = false;
            self.repeater.reset();
        }
        if first_at_size {
            self.max_bps = Some(i32::try_from(self.built_bps).unwrap_or(i32::MAX));
        }
        if std::mem::take(&mut self.force_keyframe) {
            self.encoder.force_intra_frame();
        }
        if !first_at_size && std::mem::take(&mut self.rate_pending) {
            self.apply_bitrate_or_keep();
        }
        let stream = self
            .encoder
            .encode_at(picture, openh264::Timestamp::from_millis(timestamp_ms))
            .map_err(|e| CodecError::Encoder(e.to_string()))?;
        let keyframe = matches!(stream.frame_type(), FrameType::IDR | FrameType::I);
        let skipped = matches!(stream.frame_type(), FrameType::Skip | FrameType::Invalid);
        let data = if skipped {
            Vec::new()
        } else {
            self.repeater.follow(stream.to_vec())
        };
        if first_at_size {
            self.dimensions = Some((w, h));
            if self.rate_pending || self.settings.bitrate_bps != self.built_bps {
                self.rate_pending = false;
                self.apply_bitrate_or_keep();
            }
        }
        if skipped {
            return Ok(None);
        }
        if data.is_empty() {
            return Ok(None);
        }
        Ok(Some(EncodedFrame {
            data: data.into(),
            keyframe,
        }))
    }
}

impl H264Encoder {
    /// The last picture again, for a few bytes and next to no work: a P frame whose
    /// every macroblock is skipped (see `repeat.rs`), for a still screen's heartbeat.
    /// `None` when a keyframe is due or the stream cannot take one: then encode the
    /// picture again.
    pub fn repeat(&mut self) -> Option<EncodedFrame> {
        if self.force_keyframe {
            return None;
        }
        let data = self.repeater.skip_frame()?;
        Some(EncodedFrame {
            data: data.into(),
            keyframe: false,
        })
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
        // openh264 holds the target bitrate only when it may skip frames (without, it
        // says so at start and the rate runs over whatever the path can carry). A skipped
        // frame is encoded again at the next look (see the agent's pipeline).
        .skip_frames(true);
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

    /// A whole picture of `width` × `height` BGRA pixels, rows packed.
    fn whole_frame(bgra: &[u8], width: u32, height: u32) -> Frame<'_> {
        Frame {
            width,
            height,
            stride: width as usize * 4,
            bgra,
            changed_rows: None,
        }
    }

    fn encode_pattern(encoder: &mut H264Encoder, n: u32) -> Option<EncodedFrame> {
        let data = pattern(320, 240, n);
        let mut c = Converter::new();
        let frame = whole_frame(&data, 320, 240);
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

    fn decode_rgb(decoder: &mut Decoder, data: &[u8]) -> Vec<u8> {
        let picture = decoder.decode(data).expect("decode").expect("a picture");
        let (w, h) = picture.dimensions();
        let mut rgb = vec![0u8; w * h * 3];
        picture.write_rgb8(&mut rgb);
        rgb
    }

    #[test]
    fn a_repeat_is_a_few_bytes_that_decode_to_the_same_picture_and_the_stream_goes_on() {
        // The same pictures through a second encoder, without repeats: what the
        // decoder must show.
        let mut plain = H264Encoder::new(EncoderSettings::default()).expect("encoder");
        let mut plain_decoder = Decoder::new().expect("decoder");
        let expected: Vec<Vec<u8>> = [0, 3, 7, 9]
            .into_iter()
            .map(|n| {
                if n == 9 {
                    plain.request_keyframe();
                }
                let frame = encode_pattern(&mut plain, n).expect("frame");
                decode_rgb(&mut plain_decoder, &frame.data)
            })
            .collect();
        // Pictures are compared whole; a failure says how many bytes differ.
        let same = |got: Vec<u8>, want: &[u8], what: &str| {
            let differ = got.iter().zip(want).filter(|(a, b)| a != b).count();
            assert!(
                got.len() == want.len() && differ == 0,
                "{what}: {differ} of {} bytes differ",
                want.len()
            );
        };

        let mut encoder = H264Encoder::new(EncoderSettings::default()).expect("encoder");
        let mut decoder = Decoder::new().expect("decoder");
        assert!(
            encoder.repeat().is_none(),
            "nothing to repeat before a picture"
        );
        let mut stream = Vec::new();
        let mut send = |frame: EncodedFrame, decoder: &mut Decoder| {
            stream.extend_from_slice(&frame.data);
            decode_rgb(decoder, &frame.data)
        };
        let frame = encode_pattern(&mut encoder, 0).expect("frame");
        same(send(frame, &mut decoder), &expected[0], "the keyframe");
        let frame = encode_pattern(&mut encoder, 3).expect("frame");
        same(send(frame, &mut decoder), &expected[1], "a P frame");
        for _ in 0..5 {
            let again = encoder.repeat().expect("a repeat");
            assert!(!again.keyframe);
            assert!(again.data.len() <= 16, "{} bytes", again.data.len());
            same(send(again, &mut decoder), &expected[1], "a repeat");
        }
        // openh264's next frame predicts from the last repeat, renumbered after it.
        let frame = encode_pattern(&mut encoder, 7).expect("frame");
        same(
            send(frame, &mut decoder),
            &expected[2],
            "the frame after repeats",
        );
        // A keyframe due: no repeat; after it, repeats again.
        encoder.request_keyframe();
        assert!(encoder.repeat().is_none());
        let frame = encode_pattern(&mut encoder, 9).expect("frame");
        assert!(frame.keyframe);
        same(send(frame, &mut decoder), &expected[3], "the next keyframe");
        let again = encoder.repeat().expect("a repeat after the keyframe");
        same(send(again, &mut decoder), &expected[3], "a repeat of it");
        // Every reference picture is numbered one past the last, from 0 at each IDR.
        assert_eq!(
            crate::repeat::frame_nums(&stream),
            [0, 1, 2, 3, 4, 5, 6, 7, 0, 1]
        );
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
            let frame = whole_frame(&data, 320, 240);
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

    /// A busy picture: a random texture of 4×4 blocks that scrolls two pixels a frame,
    /// like a page of small text scrolled without pause.
    fn noisy(n: u32) -> Vec<u8> {
        let mut state = 0x9E37_79B9u32;
        let texture: Vec<u8> = (0..640 * 240)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect();
        let shift = (n as usize * 2) % 320;
        let mut data = vec![255u8; 320 * 240 * 4];
        for y in 0..240 {
            for x in 0..320 {
                let v = texture[(y / 4) * 640 + (x + shift) / 4];
                data[(y * 320 + x) * 4..(y * 320 + x) * 4 + 3].copy_from_slice(&[v, v, v]);
            }
        }
        data
    }

    /// Bytes sent for `frames` busy frames at 30 fps, starting at frame `from`.
    fn send_busy(encoder: &mut H264Encoder, from: u32, frames: u32) -> usize {
        let mut converter = Converter::new();
        let mut bytes = 0;
        for n in from..from + frames {
            let data = noisy(n);
            let frame = whole_frame(&data, 320, 240);
            let yuv = converter.convert(&frame).expect("convert");
            if let Some(out) = encoder.encode(yuv, u64::from(n) * 33).expect("encode") {
                bytes += out.data.len();
            }
        }
        bytes
    }

    #[test]
    fn the_bitrate_changes_while_running_without_a_keyframe_and_is_held() {
        let mut encoder = H264Encoder::new(EncoderSettings {
            bitrate_bps: 2_000_000,
            ..EncoderSettings::default()
        })
        .expect("encoder");
        // Three seconds at 2 Mbit/s, then three at 300 kbit/s, then back up.
        let high = send_busy(&mut encoder, 0, 90);
        encoder.set_bitrate(300_000);
        let low = send_busy(&mut encoder, 90, 90);
        encoder.set_bitrate(2_000_000);
        let again = send_busy(&mut encoder, 180, 90);
        let rate = |bytes: usize| bytes as f64 * 8.0 / 3.0;
        // The rate is held: at most 1.5 × the target over three seconds.
        assert!(
            rate(low) <= 450_000.0,
            "at 300 kbit/s it sent {:.0} bit/s",
            rate(low)
        );
        assert!(
            rate(high) <= 3_000_000.0,
            "at 2 Mbit/s it sent {:.0} bit/s",
            rate(high)
        );
        assert!(
            rate(again) > 2.0 * rate(low),
            "raised again, it sent {:.0} bit/s (low: {:.0})",
            rate(again),
            rate(low)
        );
    }

    #[test]
    fn a_new_bitrate_needs_no_keyframe() {
        let mut encoder = H264Encoder::new(EncoderSettings::default()).expect("encoder");
        assert!(encode_pattern(&mut encoder, 0).expect("first").keyframe);
        assert!(!encode_pattern(&mut encoder, 1).expect("frame").keyframe);
        encoder.set_bitrate(400_000);
        assert!(!encode_pattern(&mut encoder, 2).expect("frame").keyframe);
        encoder.set_bitrate(4_000_000);
        assert!(!encode_pattern(&mut encoder, 3).expect("frame").keyframe);
        assert_eq!(encoder.settings().bitrate_bps, 4_000_000);
    }

    #[test]
    fn a_new_picture_size_keeps_the_live_bitrate() {
        let mut encoder = H264Encoder::new(EncoderSettings {
            bitrate_bps: 2_000_000,
            ..EncoderSettings::default()
        })
        .expect("encoder");
        encoder.set_bitrate(300_000);
        // A smaller picture first, then the busy 320×240 one: openh264 sets itself up
        // again for the new size, with the bitrate it was built with unless told again.
        encode_small_black(&mut encoder);
        let bytes = send_busy(&mut encoder, 1, 90);
        let rate = bytes as f64 * 8.0 / 3.0;
        assert!(
            rate <= 450_000.0,
            "after a new size it sent {rate:.0} bit/s"
        );
    }

    /// A black 160×120 picture, at time 0: the size before the one a test changes to.
    fn encode_small_black(encoder: &mut H264Encoder) {
        let small = vec![0u8; 160 * 120 * 4];
        let frame = whole_frame(&small, 160, 120);
        let mut converter = Converter::new();
        let yuv = converter.convert(&frame).expect("convert");
        encoder.encode(yuv, 0).expect("encode");
    }

    /// The first keyframe of the busy 320×240 picture from an encoder built at 2 Mbit/s
    /// that first encoded a 160×120 one, at `live_bps` by the time the size changes.
    fn keyframe_after_a_new_size(live_bps: u32) -> usize {
        let mut encoder = H264Encoder::new(EncoderSettings {
            bitrate_bps: 2_000_000,
            ..EncoderSettings::default()
        })
        .expect("encoder");
        encode_small_black(&mut encoder);
        encoder.set_bitrate(live_bps);
        let data = noisy(1);
        let frame = whole_frame(&data, 320, 240);
        let mut converter = Converter::new();
        let out = encoder
            .encode(converter.convert(&frame).expect("convert"), 33)
            .expect("encode")
            .expect("a frame");
        assert!(out.keyframe, "a new size starts with a keyframe");
        out.data.len()
    }

    #[test]
    fn a_new_picture_size_starts_with_a_keyframe_sized_for_the_live_rate() {
        // R6 on a slow path: the picture is halved after the rate fell from the start's;
        // its first keyframe must not be sized for the start's rate.
        let fell = keyframe_after_a_new_size(150_000);
        let kept = keyframe_after_a_new_size(2_000_000);
        assert!(
            (fell as f64) < 0.8 * kept as f64,
            "at 150 kbit/s the keyframe took {fell} bytes, at 2 Mbit/s {kept}"
        );
    }
}
