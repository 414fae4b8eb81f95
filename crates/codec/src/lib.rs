//! H.264 encoding for screen shares: BGRA frames in, Annex-B access units out.
//!
//! [`Converter`] turns a captured BGRA frame (any stride, any size) into the even-sized,
//! tightly packed I420 picture the encoder needs, reusing its buffers. [`H264Encoder`] runs
//! openh264 in screen-content real-time mode with bitrate control, Constrained Baseline
//! (what WebRTC's `packetization-mode=1`, `42e01f` expects), keyframes on request and
//! periodically as a safety net.

mod convert;
mod encoder;
mod repeat;

pub use convert::{Converter, Frame, Picture, even_size};
pub use encoder::{EncodedFrame, EncoderSettings, H264Encoder, MAX_BITRATE_BPS, MIN_BITRATE_BPS};

/// What went wrong with a frame or the encoder. No bad input panics.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("a frame of {width}x{height} is too small to encode (at least 2x2)")]
    TooSmall { width: u32, height: u32 },
    #[error("a frame of {width}x{height} is larger than the encoder allows (at most 4096x4096)")]
    TooLarge { width: u32, height: u32 },
    #[error("the stride {stride} is shorter than a row of {width} BGRA pixels")]
    BadStride { width: u32, stride: usize },
    #[error("the frame needs {needed} bytes but has {got}")]
    ShortBuffer { needed: usize, got: usize },
    #[error("the encoder failed: {0}")]
    Encoder(String),
}
