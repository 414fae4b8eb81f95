//! The writer's files as ffprobe and ffmpeg read them: an H.264 stream from x264, cut
//! into pictures as the recorder receives them, written to MP4 and decoded again, frame
//! for frame the same pictures.

use std::path::Path;
use std::process::Command;

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
        .args(["-f", "framemd5", "-"])
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
