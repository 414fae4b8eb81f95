//! A fragmented MP4 writer for an H.264 track and an Opus track (ISO/IEC 14496-12 and
//! -15; Opus in ISOBMFF, opus-codec.org).
//!
//! The file starts with `ftyp` and a `moov` that describes the tracks and holds no
//! samples; then, per fragment, a `moof` + `mdat` pair for the pictures, each fragment
//! starting with a keyframe when one comes within two seconds, and one for the sound up
//! to about the same time. Every fragment is complete when written, so a file whose
//! writer died plays up to its last fragment. [`Mp4Writer::finish`] writes the last one
//! and fills in the durations (`mvhd`, `tkhd`, `mdhd`, `mehd`), which players show.
//!
//! Parameter sets stay in the samples as they came (a changed picture size mid-stream is
//! decoded from them), and the first ones are in the sample description (`avcC`).
//!
//! The sound track is always there and runs the whole length: Opus packets as they came
//! (placed where the caller's arrival time puts them, a stream's packets spaced by their
//! RTP timestamps), and silence packets wherever none came (before a call, between calls,
//! over a gap), so players keep sound and pictures together.

use std::io::{Seek, SeekFrom, Write};

use crate::h264::{AccessUnit, Sps, SpsError};

/// RTP's clock for video, kept as the track's time scale: no rounding.
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// Opus's clock, the sound track's time scale.
pub const AUDIO_TIMESCALE: u32 = 48_000;
/// 20 ms at 48 kHz.
const OPUS_20MS: u64 = 960;
/// A silent Opus packet of 20 ms (CELT, fullband, mono: TOC and one 2-byte frame).
const SILENCE_20MS: [u8; 3] = [0xf8, 0xff, 0xfe];
/// A silent Opus packet of 120 ms: the same frame six times (TOC code 3, constant size).
const SILENCE_120MS: [u8; 14] = [
    0xfb, 0x06, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe,
];
/// A sound packet further than this from where its arrival puts it starts anew from its
/// arrival (a new sender, a sender's clock jump, a long gap).
const AUDIO_REANCHOR: u64 = AUDIO_TIMESCALE as u64 / 2;
/// Sound is written up to this long before the pictures' end, so a packet a little late
/// still finds its place; one later than that is dropped.
const AUDIO_LAG: u64 = AUDIO_TIMESCALE as u64 / 2;
/// The movie's time scale (milliseconds).
const MOVIE_TIMESCALE: u32 = 1000;
/// A fragment is written once it holds this long and a keyframe starts the next...
const FRAGMENT_MIN: u64 = VIDEO_TIMESCALE as u64;
/// ...or once it holds this long, keyframe or not.
const FRAGMENT_MAX: u64 = 2 * VIDEO_TIMESCALE as u64;
/// The last picture's duration when nothing came before it: 1/30 s.
const DEFAULT_DURATION: u32 = VIDEO_TIMESCALE / 30;
/// Pictures further apart than this are a pause (the share was idle), kept as this long:
/// a wrong timestamp cannot make a picture last for hours.
const MAX_SAMPLE_DURATION: u64 = 10 * VIDEO_TIMESCALE as u64;

#[derive(Debug, thiserror::Error)]
pub enum Mp4Error {
    #[error("a recording must start with a keyframe that carries its parameter sets")]
    NoParameterSets,
    #[error(transparent)]
    Sps(#[from] SpsError),
    #[error("could not write the recording: {0}")]
    Io(#[from] std::io::Error),
}

/// What a finished recording holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub duration_ms: u64,
    pub frames: u64,
    /// Opus packets received and written (silence filled in is not counted).
    pub sound_packets: u64,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
}

struct Sample {
    data: Vec<u8>,
    duration: u32,
    keyframe: bool,
}

struct Held {
    dts: u64,
    data: Vec<u8>,
    keyframe: bool,
}

/// Where in the file the durations are, to fill in at the end.
struct Patches {
    mvhd: u64,
    tkhd: u64,
    mdhd: u64,
    mehd: u64,
    audio_tkhd: u64,
    audio_mdhd: u64,
}

/// The sound track: Opus packets placed on its 48 kHz timeline, silence between them.
#[derive(Default)]
struct Sound {
    /// Where the next packet goes: the end of what is written or pending.
    cursor: u64,
    /// The decode time of the first sample not yet in a fragment.
    fragment_start: u64,
    pending: Vec<Sample>,
    /// The stream being received: its SSRC, and an RTP timestamp with its place.
    anchor: Option<(u32, u32, u64)>,
    packets: u64,
}

impl Sound {
    /// Place `packet` (RTP timestamp `rtp` of stream `ssrc`), which arrived at `arrival`
    /// on the timeline. Returns whether it was kept.
    fn push(&mut self, arrival: u64, ssrc: u32, rtp: u32, packet: &[u8]) -> bool {
        let Some(duration) = opus_duration(packet) else {
            return false;
        };
        let by_rtp = self.anchor.and_then(|(anchor_ssrc, anchor_rtp, at)| {
            let step = i64::from(rtp.wrapping_sub(anchor_rtp) as i32);
            (anchor_ssrc == ssrc)
                .then(|| at.checked_add_signed(step))
                .flatten()
        });
        let at = match by_rtp {
            Some(at) if at.abs_diff(arrival) <= AUDIO_REANCHOR => at,
            _ => arrival,
        };
        if at + duration / 2 <= self.cursor {
            return false; // repeated, or late: most of its time is taken already
        }
        self.fill(at);
        // Where it goes (right after the packet before, when that is within 20 ms) is
        // where the next ones are counted from.
        self.anchor = Some((ssrc, rtp, self.cursor));
        self.pending.push(Sample {
            data: packet.to_vec(),
            duration: u32::try_from(duration).unwrap_or(u32::MAX),
            keyframe: true,
        });
        self.cursor += duration;
        self.packets += 1;
        true
    }

    /// Silence up to `until` (to within 20 ms: a packet a little early or late is put
    /// right after the one before).
    fn fill(&mut self, until: u64) {
        while until >= self.cursor + OPUS_20MS {
            let gap = until - self.cursor;
            let (data, duration) = if gap >= 6 * OPUS_20MS {
                (&SILENCE_120MS[..], 6 * OPUS_20MS)
            } else {
                (&SILENCE_20MS[..], OPUS_20MS)
            };
            self.pending.push(Sample {
                data: data.to_vec(),
                duration: duration as u32,
                keyframe: true,
            });
            self.cursor += duration;
        }
    }
}

/// How long an Opus packet lasts, in 48 kHz samples, from its TOC byte (RFC 6716 §3.1);
/// none for what is not an Opus packet (empty, or longer than 120 ms).
pub fn opus_duration(packet: &[u8]) -> Option<u64> {
    let toc = *packet.first()?;
    let config = usize::from(toc >> 3);
    let frame: u64 = match config {
        0..=11 => [480, 960, 1920, 2880][config % 4],
        12..=15 => [480, 960][config % 2],
        _ => [120, 240, 480, 960][config % 4],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u64::from(*packet.get(1)? & 0x3f),
    };
    let total = frame * frames;
    (1..=5760).contains(&total).then_some(total)
}

impl<W: Write + Seek> std::fmt::Debug for Mp4Writer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mp4Writer")
            .field("sps", &self.sps)
            .field("frames", &self.frames)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

pub struct Mp4Writer<W: Write + Seek> {
    out: W,
    sps: Sps,
    patches: Patches,
    /// The first picture's RTP timestamp and the last one's, extended past wraparound.
    last_rtp: u32,
    last_dts: u64,
    held: Option<Held>,
    pending: Vec<Sample>,
    pending_duration: u64,
    /// The decode time of the first picture not yet in a fragment.
    fragment_start: u64,
    last_duration: u32,
    sequence: u32,
    frames: u64,
    bytes: u64,
    sound: Sound,
}

impl<W: Write + Seek> Mp4Writer<W> {
    /// Start a file with its first picture, a keyframe with its parameter sets.
    pub fn new(mut out: W, first: &AccessUnit) -> Result<Self, Mp4Error> {
        let (sps_unit, pps_unit) = first.parameter_sets().ok_or(Mp4Error::NoParameterSets)?;
        if !first.is_keyframe() {
            return Err(Mp4Error::NoParameterSets);
        }
        let sps = Sps::parse(sps_unit)?;
        let start = out.stream_position()?;
        let ftyp = boxed(b"ftyp", |b| {
            b.extend_from_slice(b"isom");
            b.extend_from_slice(&0x200u32.to_be_bytes());
            for brand in [b"isom", b"iso6", b"avc1", b"Opus", b"mp41"] {
                b.extend_from_slice(brand);
            }
        });
        let (moov, offsets) = moov(&sps, sps_unit, pps_unit);
        out.write_all(&ftyp)?;
        out.write_all(&moov)?;
        let moov_at = start + ftyp.len() as u64;
        let patches = Patches {
            mvhd: moov_at + offsets.mvhd,
            tkhd: moov_at + offsets.tkhd,
            mdhd: moov_at + offsets.mdhd,
            mehd: moov_at + offsets.mehd,
            audio_tkhd: moov_at + offsets.audio_tkhd,
            audio_mdhd: moov_at + offsets.audio_mdhd,
        };
        let mut writer = Self {
            out,
            sps,
            patches,
            last_rtp: first.rtp_timestamp,
            last_dts: 0,
            held: None,
            pending: Vec::new(),
            pending_duration: 0,
            fragment_start: 0,
            last_duration: DEFAULT_DURATION,
            sequence: 0,
            frames: 0,
            bytes: (ftyp.len() + moov.len()) as u64,
            sound: Sound::default(),
        };
        writer.held = Some(Held {
            dts: 0,
            data: first.to_length_prefixed(),
            keyframe: true,
        });
        writer.frames = 1;
        Ok(writer)
    }

    /// The picture size of the first keyframe.
    pub fn size(&self) -> (u32, u32) {
        (self.sps.width, self.sps.height)
    }

    /// Add the next picture, in decode order.
    pub fn push(&mut self, picture: &AccessUnit) -> Result<(), Mp4Error> {
        // Extend the 32-bit RTP clock; a picture that goes back in time keeps the last one.
        let step = picture.rtp_timestamp.wrapping_sub(self.last_rtp) as i32;
        self.last_rtp = picture.rtp_timestamp;
        let step = u64::try_from(step).unwrap_or(0).min(MAX_SAMPLE_DURATION);
        let dts = self.last_dts + step.max(1);
        self.last_dts = dts;
        if let Some(held) = self.held.take() {
            let duration = u32::try_from(dts - held.dts).unwrap_or(u32::MAX);
            self.last_duration = duration;
            self.pending_duration += u64::from(duration);
            self.pending.push(Sample {
                data: held.data,
                duration,
                keyframe: held.keyframe,
            });
        }
        let keyframe = picture.is_keyframe();
        if (keyframe && self.pending_duration >= FRAGMENT_MIN)
            || self.pending_duration >= FRAGMENT_MAX
        {
            self.write_fragment()?;
        }
        self.held = Some(Held {
            dts,
            data: picture.to_length_prefixed(),
            keyframe,
        });
        self.frames += 1;
        Ok(())
    }

    /// When the last picture pushed is, on the file's timeline (the first picture is at
    /// zero). The call's sound is placed by it: a packet that arrived `d` after that
    /// picture goes `d` after it, so sound and pictures stay together whatever the
    /// pictures' own clock does.
    pub fn last_picture_time(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.last_dts * 1_000_000 / u64::from(VIDEO_TIMESCALE))
    }

    /// Add an Opus packet of the call's sound: `rtp` is its RTP timestamp in stream
    /// `ssrc`, `at` where its arrival puts it on the file's timeline (see
    /// [`Mp4Writer::last_picture_time`]). Returns whether it was kept: a packet that is
    /// not Opus, or came too late for its place, is not. Sound that piles up while no
    /// picture comes is written every two seconds all the same.
    pub fn push_sound(
        &mut self,
        at: std::time::Duration,
        ssrc: u32,
        rtp: u32,
        packet: &[u8],
    ) -> Result<bool, Mp4Error> {
        let at = u64::try_from(at.as_micros() * u128::from(AUDIO_TIMESCALE) / 1_000_000)
            .unwrap_or(u64::MAX / 2);
        let kept = self.sound.push(at, ssrc, rtp, packet);
        if self.sound.cursor - self.sound.fragment_start >= to_audio(FRAGMENT_MAX) {
            self.write_sound(0)?;
        }
        Ok(kept)
    }

    /// Write what is left and the durations; the file is complete.
    pub fn finish(mut self) -> Result<(W, Summary), Mp4Error> {
        if let Some(held) = self.held.take() {
            self.pending_duration += u64::from(self.last_duration);
            self.pending.push(Sample {
                data: held.data,
                duration: self.last_duration,
                keyframe: held.keyframe,
            });
        }
        self.write_fragment()?;
        // The sound runs to the pictures' end, or a little past with its last packet.
        let track = self.fragment_start;
        self.write_sound(to_audio(track))?;
        let sound = self.sound.fragment_start;
        let movie = (track * u64::from(MOVIE_TIMESCALE) / u64::from(VIDEO_TIMESCALE))
            .max(sound * u64::from(MOVIE_TIMESCALE) / u64::from(AUDIO_TIMESCALE));
        let sound_ms = sound * u64::from(MOVIE_TIMESCALE) / u64::from(AUDIO_TIMESCALE);
        let end = self.out.stream_position()?;
        for (at, value) in [
            (self.patches.mvhd, movie),
            (
                self.patches.tkhd,
                track * u64::from(MOVIE_TIMESCALE) / u64::from(VIDEO_TIMESCALE),
            ),
            (self.patches.mdhd, track),
            (self.patches.mehd, movie),
            (self.patches.audio_tkhd, sound_ms),
            (self.patches.audio_mdhd, sound),
        ] {
            self.out.seek(SeekFrom::Start(at))?;
            self.out
                .write_all(&u32::try_from(value).unwrap_or(u32::MAX).to_be_bytes())?;
        }
        self.out.seek(SeekFrom::Start(end))?;
        self.out.flush()?;
        let summary = Summary {
            duration_ms: movie,
            frames: self.frames,
            sound_packets: self.sound.packets,
            bytes: self.bytes,
            width: self.sps.width,
            height: self.sps.height,
        };
        Ok((self.out, summary))
    }

    /// The pictures pending, then the sound up to a little before their end.
    fn write_fragment(&mut self) -> Result<(), Mp4Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let samples = std::mem::take(&mut self.pending);
        self.write_run(VIDEO_TRACK, self.fragment_start, &samples)?;
        self.fragment_start += self.pending_duration;
        self.pending_duration = 0;
        self.write_sound(to_audio(self.fragment_start).saturating_sub(AUDIO_LAG))
    }

    /// The sound pending, with silence up to `until` at least.
    fn write_sound(&mut self, until: u64) -> Result<(), Mp4Error> {
        self.sound.fill(until);
        if self.sound.pending.is_empty() {
            return Ok(());
        }
        let samples = std::mem::take(&mut self.sound.pending);
        self.write_run(AUDIO_TRACK, self.sound.fragment_start, &samples)?;
        self.sound.fragment_start = self.sound.cursor;
        Ok(())
    }

    /// One `moof` + `mdat` pair: `samples` of `track` from `decode_time`.
    fn write_run(
        &mut self,
        track: u32,
        decode_time: u64,
        samples: &[Sample],
    ) -> Result<(), Mp4Error> {
        self.sequence += 1;
        let moof = moof(self.sequence, track, decode_time, samples);
        let data_len: usize = samples.iter().map(|s| s.data.len()).sum();
        let mdat_len = u32::try_from(8 + data_len).unwrap_or(u32::MAX);
        self.out.write_all(&moof)?;
        self.out.write_all(&mdat_len.to_be_bytes())?;
        self.out.write_all(b"mdat")?;
        for sample in samples {
            self.out.write_all(&sample.data)?;
        }
        self.out.flush()?;
        self.bytes += (moof.len() + 8 + data_len) as u64;
        Ok(())
    }
}

const VIDEO_TRACK: u32 = 1;
const AUDIO_TRACK: u32 = 2;

/// A time on the pictures' 90 kHz clock, on the sound's 48 kHz one.
fn to_audio(video: u64) -> u64 {
    video * u64::from(AUDIO_TIMESCALE) / u64::from(VIDEO_TIMESCALE)
}

/// A box: its size, its type, then what `body` writes.
fn boxed(kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = vec![0, 0, 0, 0];
    b.extend_from_slice(kind);
    body(&mut b);
    let size = u32::try_from(b.len()).unwrap_or(u32::MAX);
    b[..4].copy_from_slice(&size.to_be_bytes());
    b
}

/// A full box: a box starting with its version and flags.
fn full(kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    boxed(kind, |b| {
        b.extend_from_slice(&((u32::from(version) << 24) | flags).to_be_bytes());
        body(b);
    })
}

fn u16s(b: &mut Vec<u8>, values: &[u16]) {
    for v in values {
        b.extend_from_slice(&v.to_be_bytes());
    }
}

fn u32s(b: &mut Vec<u8>, values: &[u32]) {
    for v in values {
        b.extend_from_slice(&v.to_be_bytes());
    }
}

/// The identity transformation of `mvhd` and `tkhd`.
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Offsets of the duration fields inside `moov`.
struct Offsets {
    mvhd: u64,
    tkhd: u64,
    mdhd: u64,
    mehd: u64,
    audio_tkhd: u64,
    audio_mdhd: u64,
}

fn moov(sps: &Sps, sps_unit: &[u8], pps_unit: &[u8]) -> (Vec<u8>, Offsets) {
    let mvhd = full(b"mvhd", 0, 0, |b| {
        u32s(b, &[0, 0, MOVIE_TIMESCALE, 0, 0x0001_0000]);
        u16s(b, &[0x0100, 0]);
        u32s(b, &[0, 0]);
        u32s(b, &MATRIX);
        u32s(b, &[0; 6]);
        u32s(b, &[AUDIO_TRACK + 1]); // next track id
    });
    let tkhd = full(b"tkhd", 0, 0x3, |b| {
        u32s(b, &[0, 0, VIDEO_TRACK, 0, 0, 0, 0]);
        u16s(b, &[0, 0, 0, 0]); // layer, alternate group, volume, reserved
        u32s(b, &MATRIX);
        u32s(b, &[sps.width << 16, sps.height << 16]);
    });
    let mdhd = media_header(VIDEO_TIMESCALE);
    let avcc = boxed(b"avcC", |b| {
        b.extend_from_slice(&[1, sps.profile, sps.compatibility, sps.level, 0xff, 0xe1]);
        u16s(b, &[u16::try_from(sps_unit.len()).unwrap_or(u16::MAX)]);
        b.extend_from_slice(sps_unit);
        b.push(1);
        u16s(b, &[u16::try_from(pps_unit.len()).unwrap_or(u16::MAX)]);
        b.extend_from_slice(pps_unit);
    });
    let avc1 = boxed(b"avc1", |b| {
        b.extend_from_slice(&[0; 6]);
        u16s(b, &[1, 0, 0]); // data reference index, pre-defined, reserved
        u32s(b, &[0, 0, 0]);
        let (w, h) = (
            u16::try_from(sps.width).unwrap_or(u16::MAX),
            u16::try_from(sps.height).unwrap_or(u16::MAX),
        );
        u16s(b, &[w, h]);
        u32s(b, &[0x0048_0000, 0x0048_0000, 0]);
        u16s(b, &[1]); // frame count
        let mut name = [0u8; 32];
        let label = b"Tandem";
        name[0] = label.len() as u8;
        name[1..=label.len()].copy_from_slice(label);
        b.extend_from_slice(&name);
        u16s(b, &[0x0018, 0xffff]);
        b.extend_from_slice(&avcc);
    });
    let stbl = stbl(&avc1);
    let minf = boxed(b"minf", |b| {
        b.extend(full(b"vmhd", 0, 1, |b| u16s(b, &[0, 0, 0, 0])));
        b.extend(dinf());
        b.extend_from_slice(&stbl);
    });
    let trak = trak(&tkhd, &mdhd, b"vide", "Tandem screen share", &minf);
    let (audio_trak, audio_tkhd_len) = audio_trak();
    let mvex = boxed(b"mvex", |b| {
        b.extend(full(b"mehd", 0, 0, |b| u32s(b, &[0])));
        for track in [VIDEO_TRACK, AUDIO_TRACK] {
            b.extend(full(b"trex", 0, 0, |b| u32s(b, &[track, 1, 0, 0, 0])));
        }
    });
    let moov = boxed(b"moov", |b| {
        b.extend_from_slice(&mvhd);
        b.extend_from_slice(&trak);
        b.extend_from_slice(&audio_trak);
        b.extend_from_slice(&mvex);
    });
    // Where each duration field is, from the layout just built: a box's header is 8
    // bytes, a full box's 12; then creation and modification time (and the time scale
    // for mvhd and mdhd, the track id and a reserved word for tkhd). Counted, not
    // searched for: the parameter sets could hold any four bytes.
    let mvhd_at = 8;
    let trak_at = mvhd_at + mvhd.len();
    let tkhd_at = trak_at + 8;
    let mdhd_at = tkhd_at + tkhd.len() + 8;
    let audio_trak_at = trak_at + trak.len();
    let audio_tkhd_at = audio_trak_at + 8;
    let audio_mdhd_at = audio_tkhd_at + audio_tkhd_len + 8;
    let mehd_at = audio_trak_at + audio_trak.len() + 8;
    let field = |at: usize, skip: u64| at as u64 + 12 + skip;
    let offsets = Offsets {
        mvhd: field(mvhd_at, 12),
        tkhd: field(tkhd_at, 16),
        mdhd: field(mdhd_at, 12),
        mehd: field(mehd_at, 0),
        audio_tkhd: field(audio_tkhd_at, 16),
        audio_mdhd: field(audio_mdhd_at, 12),
    };
    debug_assert_eq!(&moov[mdhd_at + 4..mdhd_at + 8], b"mdhd");
    debug_assert_eq!(&moov[audio_tkhd_at + 4..audio_tkhd_at + 8], b"tkhd");
    debug_assert_eq!(&moov[audio_mdhd_at + 4..audio_mdhd_at + 8], b"mdhd");
    debug_assert_eq!(&moov[mehd_at + 4..mehd_at + 8], b"mehd");
    (moov, offsets)
}

/// A data reference to this file.
fn dinf() -> Vec<u8> {
    boxed(b"dinf", |b| {
        b.extend(full(b"dref", 0, 0, |b| {
            u32s(b, &[1]);
            b.extend(full(b"url ", 0, 1, |_| {}));
        }));
    })
}

/// A sample table with one sample description and no samples (they are in fragments).
fn stbl(entry: &[u8]) -> Vec<u8> {
    boxed(b"stbl", |b| {
        b.extend(full(b"stsd", 0, 0, |b| {
            u32s(b, &[1]);
            b.extend_from_slice(entry);
        }));
        b.extend(full(b"stts", 0, 0, |b| u32s(b, &[0])));
        b.extend(full(b"stsc", 0, 0, |b| u32s(b, &[0])));
        b.extend(full(b"stsz", 0, 0, |b| u32s(b, &[0, 0])));
        b.extend(full(b"stco", 0, 0, |b| u32s(b, &[0])));
    })
}

/// The sound track: Opus, mono, 48 kHz. With the length of its `tkhd`.
fn audio_trak() -> (Vec<u8>, usize) {
    let tkhd = full(b"tkhd", 0, 0x3, |b| {
        u32s(b, &[0, 0, AUDIO_TRACK, 0, 0, 0, 0]);
        u16s(b, &[0, 1, 0x0100, 0]); // layer, alternate group, full volume, reserved
        u32s(b, &MATRIX);
        u32s(b, &[0, 0]);
    });

    let dops = boxed(b"dOps", |b| {
        // Version, one channel, no pre-skip, 48 kHz input, no gain, mapping family 0.
        b.extend_from_slice(&[0, 1]);
        u16s(b, &[0]);
        u32s(b, &[AUDIO_TIMESCALE]);
        u16s(b, &[0]);
        b.push(0);
    });
    let opus = boxed(b"Opus", |b| {
        b.extend_from_slice(&[0; 6]);
        u16s(b, &[1]); // data reference index
        u32s(b, &[0, 0]);
        u16s(b, &[1, 16, 0, 0]); // channels, sample size, pre-defined, reserved
        u32s(b, &[AUDIO_TIMESCALE << 16]);
        b.extend_from_slice(&dops);
    });
    let minf = boxed(b"minf", |b| {
        b.extend(full(b"smhd", 0, 0, |b| u16s(b, &[0, 0])));
        b.extend(dinf());
        b.extend(stbl(&opus));
    });
    let mdhd = media_header(AUDIO_TIMESCALE);
    (
        trak(&tkhd, &mdhd, b"soun", "Tandem call", &minf),
        tkhd.len(),
    )
}

/// A track's media header: its time scale, the duration filled in at the end.
fn media_header(timescale: u32) -> Vec<u8> {
    full(b"mdhd", 0, 0, |b| {
        u32s(b, &[0, 0, timescale, 0]);
        u16s(b, &[0x55c4, 0]); // "und"
    })
}

/// A track: its header, then its media (`mdhd` first: the durations' offsets count on
/// it), with a handler of `kind` named `name`.
fn trak(tkhd: &[u8], mdhd: &[u8], kind: &[u8; 4], name: &str, minf: &[u8]) -> Vec<u8> {
    let hdlr = full(b"hdlr", 0, 0, |b| {
        u32s(b, &[0]);
        b.extend_from_slice(kind);
        u32s(b, &[0, 0, 0]);
        b.extend_from_slice(name.as_bytes());
        b.push(0);
    });
    boxed(b"trak", |b| {
        b.extend_from_slice(tkhd);
        b.extend(boxed(b"mdia", |b| {
            b.extend_from_slice(mdhd);
            b.extend_from_slice(&hdlr);
            b.extend_from_slice(minf);
        }));
    })
}

fn moof(sequence: u32, track: u32, decode_time: u64, samples: &[Sample]) -> Vec<u8> {
    let mfhd = full(b"mfhd", 0, 0, |b| u32s(b, &[sequence]));
    let tfhd = full(b"tfhd", 0, 0x02_0000, |b| u32s(b, &[track])); // default-base-is-moof
    let tfdt = full(b"tfdt", 1, 0, |b| {
        b.extend_from_slice(&decode_time.to_be_bytes())
    });
    // data offset, and each sample's duration, size and flags.
    let trun_len = 12 + 8 + 12 * samples.len();
    let moof_len = 8 + mfhd.len() + 8 + tfhd.len() + tfdt.len() + trun_len;
    let trun = full(b"trun", 0, 0x000_701, |b| {
        let count = u32::try_from(samples.len()).unwrap_or(u32::MAX);
        let data_offset = u32::try_from(moof_len + 8).unwrap_or(u32::MAX);
        u32s(b, &[count, data_offset]);
        for s in samples {
            let flags = if s.keyframe { 0x0200_0000 } else { 0x0101_0000 };
            let size = u32::try_from(s.data.len()).unwrap_or(u32::MAX);
            u32s(b, &[s.duration, size, flags]);
        }
    });
    debug_assert_eq!(trun.len(), trun_len);
    let traf = boxed(b"traf", |b| {
        b.extend_from_slice(&tfhd);
        b.extend_from_slice(&tfdt);
        b.extend_from_slice(&trun);
    });
    let moof = boxed(b"moof", |b| {
        b.extend_from_slice(&mfhd);
        b.extend_from_slice(&traf);
    });
    debug_assert_eq!(moof.len(), moof_len);
    moof
}
