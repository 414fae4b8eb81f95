//! Session recordings: the H.264 an agent already sends, and the call's Opus sound,
//! written to fragmented MP4 as they arrive, without decoding or re-encoding anything.
//!
//! Sans-IO apart from the writer it is given: [`h264`] turns an RTP stream's depacketized
//! NAL units into access units, [`mp4::Mp4Writer`] writes them. A fragment is written
//! every one to two seconds, so a recording cut short by a crash plays up to there.

pub mod h264;
pub mod mp4;

pub use h264::{AccessUnit, Assembler, Sps};
pub use mp4::{Mp4Error, Mp4Writer};
