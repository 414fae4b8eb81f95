//! The writer's files as ffprobe and ffmpeg read them: an H.264 stream from x264, cut
//! into pictures as the recorder receives them, written to MP4 and decoded again, frame
//! for frame the same pictures.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tandem_record::h264::{nal_type, nal_units};
use tandem_record::{AccessUnit, Mp4Writer};

const FRAMES: usize = 90;

/// `FRAMES` pictures of ffmpeg's test pattern (a frame counter among them) at 30 fps,
/// 320×240, Constrained Baseline with a keyframe every second, as the agent sends it.
fn encode(dir: &Path) -> Vec<u8> {
    let path = dir.join("source.h264");
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc=size=320x240:rate=30")
        .args(["-frames:v", &FRAMES.to_string()])
        .args([
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
        ])
        .args(["-g", "30", "-bf", "0", "-f", "h264"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs (cargo xtask test installs it)");
    assert!(status.success(), "ffmpeg failed to encode");
    std::fs::read(&path).expect("read")
}

/// The stream's pictures: parameter sets and SEI go with the slice that follows them.
fn pictures(stream: &[u8]) -> Vec<AccessUnit> {
    let mut out = Vec::new();
    let mut units = Vec::new();
    for unit in nal_units(stream) {
        units.push(unit.to_vec());
        if matches!(nal_type(unit), 1 | 5) {
            let n = u32::try_from(out.len()).expect("count");
            out.push(AccessUnit {
                // RTP's 90 kHz clock, starting near its wraparound.
                rtp_timestamp: (u32::MAX - 30_000).wrapping_add(n * 3000),
                units: std::mem::take(&mut units),
            });
        }
    }
    out
}

fn ffprobe(path: &Path) -> serde_json::Value {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
        ])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        output.status.success(),
        "ffprobe cannot read {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("json")
}

/// Each decoded frame's MD5, in order.
fn frame_hashes(path: &Path) -> Vec<String> {
    let output = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_owned()))
        .collect()
}

#[test]
fn a_recording_plays_in_ffmpeg_with_every_picture_as_sent_and_its_duration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = encode(dir.path());
    let pictures = pictures(&source);
    assert_eq!(pictures.len(), FRAMES);

    let path = dir.path().join("recording.mp4");
    let file = std::fs::File::create(&path).expect("create");
    let mut writer = Mp4Writer::new(file, &pictures[0]).expect("start");
    assert_eq!(writer.size(), (320, 240));
    for picture in &pictures[1..] {
        writer.push(picture).expect("push");
    }
    let (_, summary) = writer.finish().expect("finish");
    assert_eq!(summary.frames, FRAMES as u64);
    assert_eq!(summary.duration_ms, 3000);
    assert_eq!(summary.bytes, std::fs::metadata(&path).expect("size").len());

    // The durations filled in at the end (ms for the movie, 90 kHz for the track).
    let bytes = std::fs::read(&path).expect("read");
    let field = |kind: &[u8], skip: usize| {
        let at = bytes
            .windows(4)
            .position(|w| w == kind)
            .expect("the box is there");
        let i = at + 8 + skip;
        u32::from_be_bytes(bytes[i..i + 4].try_into().expect("4 bytes"))
    };
    assert_eq!(field(b"mvhd", 12), 3000);
    assert_eq!(field(b"tkhd", 16), 3000);
    assert_eq!(field(b"mdhd", 12), 270_000);
    assert_eq!(field(b"mehd", 0), 3000);

    let probe = ffprobe(&path);
    let stream = &probe["streams"][0];
    assert_eq!(stream["codec_name"], "h264", "{probe}");
    // The sound track is there from the start, silent without a call.
    let sound = &probe["streams"][1];
    assert_eq!(sound["codec_name"], "opus", "{probe}");
    assert_eq!(sound["sample_rate"], "48000", "{probe}");
    assert_eq!(
        (stream["width"].as_u64(), stream["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(stream["nb_read_frames"], FRAMES.to_string(), "{probe}");
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("a duration");
    assert!((duration - 3.0).abs() < 0.05, "duration {duration}");

    // Not re-encoded: the same pictures as decoding the stream itself.
    let original = frame_hashes(&dir.path().join("source.h264"));
    let recorded = frame_hashes(&path);
    assert_eq!(original.len(), FRAMES);
    assert_eq!(recorded, original);
}

#[test]
fn a_recording_whose_writer_died_plays_up_to_its_last_fragment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pictures = pictures(&encode(dir.path()));
    let path = dir.path().join("cut.mp4");
    let file = std::fs::File::create(&path).expect("create");
    let mut writer = Mp4Writer::new(file, &pictures[0]).expect("start");
    for picture in &pictures[1..] {
        writer.push(picture).expect("push");
    }
    drop(writer); // a crash: no finish

    let probe = ffprobe(&path);
    let frames: usize = probe["streams"][0]["nb_read_frames"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .expect("frames");
    // Fragments end where a keyframe comes after a second: the last one is lost.
    assert_eq!(frames, 60, "{probe}");
}

#[test]
fn a_recording_must_start_at_a_keyframe_with_its_parameter_sets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pictures = pictures(&encode(dir.path()));
    let file = std::fs::File::create(dir.path().join("x.mp4")).expect("create");
    let err = Mp4Writer::new(file, &pictures[1]).expect_err("not a keyframe");
    assert!(err.to_string().contains("keyframe"), "{err}");
}

/// Opus packets of `seconds` of a 1 kHz tone, 20 ms each, as a browser sends them
/// (libopus, mono), taken out of the Ogg file ffmpeg writes.
fn tone(dir: &Path, seconds: u32) -> Vec<Vec<u8>> {
    let path = dir.join("tone.opus");
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=1000:duration={seconds}:sample_rate=48000"
        ))
        .args([
            "-ac",
            "1",
            "-c:a",
            "libopus",
            "-frame_duration",
            "20",
            "-f",
            "ogg",
        ])
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg failed to encode the tone");
    let ogg = std::fs::read(&path).expect("read");
    // Ogg pages (RFC 3533): a packet is its segments up to one shorter than 255 bytes.
    let mut packets = Vec::new();
    let mut packet = Vec::new();
    let mut at = 0;
    while at + 27 <= ogg.len() {
        assert_eq!(&ogg[at..at + 4], b"OggS", "an Ogg page at {at}");
        let count = usize::from(ogg[at + 26]);
        let table = &ogg[at + 27..at + 27 + count];
        let mut body = at + 27 + count;
        for &len in table {
            packet.extend_from_slice(&ogg[body..body + usize::from(len)]);
            body += usize::from(len);
            if len < 255 {
                packets.push(std::mem::take(&mut packet));
            }
        }
        at = body;
    }
    // Without the two header packets (OpusHead, OpusTags).
    packets.split_off(2)
}

/// The sound of `path` decoded by ffmpeg, mono 48 kHz: the loudness (RMS) of each 100 ms.
fn loudness(path: &Path) -> Vec<f64> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-map", "0:a", "-ac", "1", "-ar", "48000", "-f", "s16le", "-",
        ])
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "ffmpeg decodes the sound without complaint: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let samples: Vec<f64> = output
        .stdout
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    samples
        .chunks(4800)
        .map(|c| (c.iter().map(|s| s * s).sum::<f64>() / c.len() as f64).sqrt())
        .collect()
}

/// The call's sound goes in its own track, where it came in time: silence before the
/// call's first packet arrives (0.5 s in) and after its last (2.5 s), the tone between,
/// and a packet repeated or far too late for its place is not written twice.
#[test]
fn the_calls_sound_is_written_where_it_came_with_silence_around_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pictures = pictures(&encode(dir.path()));
    let packets = tone(dir.path(), 2);
    // 2 s of 20 ms packets, and one for the encoder's delay.
    assert!((100..=101).contains(&packets.len()), "{}", packets.len());
    let path = dir.path().join("call.mp4");
    let file = std::fs::File::create(&path).expect("create");
    let mut writer = Mp4Writer::new(file, &pictures[0]).expect("start");
    let ssrc = 0x1234_5678;
    let first_rtp = u32::MAX - 20 * 960; // wraps around on the way
    let mut sent = 0;
    for (n, picture) in pictures[1..].iter().enumerate() {
        writer.push(picture).expect("push");
        // The packets that arrived by this picture (1/30 s each), a little jittered.
        let now = Duration::from_millis((n as u64 + 1) * 100 / 3);
        while sent < packets.len() {
            let due = Duration::from_millis(500 + 20 * sent as u64);
            if due > now {
                break;
            }
            let jitter = Duration::from_millis(if sent % 3 == 0 { 15 } else { 0 });
            let rtp = first_rtp.wrapping_add(960 * sent as u32);
            let kept = writer.push_sound(due + jitter, ssrc, rtp, &packets[sent]);
            assert!(kept.expect("written"), "packet {sent}");
            if sent == 50 {
                // Repeated: its time is taken.
                let again = writer.push_sound(due + jitter, ssrc, rtp, &packets[sent]);
                assert!(!again.expect("written"));
            }
            sent += 1;
        }
    }
    assert_eq!(sent, packets.len());
    let not_opus = writer.push_sound(Duration::from_millis(2700), ssrc, 1, &[]);
    assert!(!not_opus.expect("written"), "not Opus");
    let (_, summary) = writer.finish().expect("finish");
    assert_eq!(summary.sound_packets, packets.len() as u64);
    assert_eq!(summary.duration_ms, 3000);

    // The sound track's durations, filled in at the end: to the pictures' end, 3 s.
    let bytes = std::fs::read(&path).expect("read");
    let boxes = |kind: &[u8]| -> Vec<usize> {
        bytes
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == kind)
            .map(|(i, _)| i)
            .collect()
    };
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let (tkhd, mdhd) = (boxes(b"tkhd"), boxes(b"mdhd"));
    assert_eq!((tkhd.len(), mdhd.len()), (2, 2), "a track header each");
    assert_eq!(word(tkhd[1] + 8 + 16), 3000, "the sound's tkhd, ms");
    assert_eq!(word(mdhd[1] + 8 + 12), 144_000, "the sound's mdhd, 48 kHz");

    let probe = ffprobe(&path);
    let sound = &probe["streams"][1];
    assert_eq!(sound["codec_name"], "opus", "{probe}");
    assert_eq!(sound["channels"], 1, "{probe}");
    let loud = loudness(&path);
    assert!(
        (29..=31).contains(&loud.len()),
        "3 s of sound: {}",
        loud.len()
    );
    let quiet = |range: std::ops::Range<usize>| range.clone().all(|i| loud[i] < 0.01);
    let tone = |range: std::ops::Range<usize>| range.clone().all(|i| loud[i] > 0.05);
    assert!(quiet(0..4), "silence before the call: {loud:?}");
    assert!(tone(6..24), "the tone from 0.5 s: {loud:?}");
    assert!(quiet(26..loud.len()), "silence after 2.5 s: {loud:?}");
}

/// Sound that goes on while no picture comes (the shared screen is still, or its
/// connection stalls) is written all the same, every two seconds: a crash keeps it.
#[test]
fn the_calls_sound_is_written_while_no_picture_comes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pictures = pictures(&encode(dir.path()));
    let packets = tone(dir.path(), 3);
    let path = dir.path().join("still.mp4");
    let file = std::fs::File::create(&path).expect("create");
    let mut writer = Mp4Writer::new(file, &pictures[0]).expect("start");
    for (n, packet) in packets.iter().enumerate() {
        let at = Duration::from_millis(20 * n as u64);
        let kept = writer.push_sound(at, 7, 960 * n as u32, packet);
        assert!(kept.expect("written"), "packet {n}");
    }
    drop(writer); // a crash: no finish, and only the first picture
    let loud = loudness(&path);
    assert!(
        loud.len() >= 20 && loud[..20].iter().all(|&rms| rms > 0.05),
        "at least 2 s of the tone kept: {loud:?}"
    );
}
