//! BGRA to I420. The encoder needs even dimensions and tightly packed rows; captures come
//! with padded strides and any size, so frames are cropped to even and repacked here.
//!
//! A capturer that knows which rows changed since its last frame says so
//! ([`Frame::changed_rows`]): only those rows (widened to whole chroma rows) are converted
//! again, into the picture kept from the frame before. On an office screen, where a few
//! characters change, that is a few rows instead of the whole 1080p picture.

use openh264::formats::{BgraSliceU8, YUVBuffer, YUVSource};

use crate::CodecError;

/// The largest side the encoder is asked to take (Level 5.1 allows 4096 wide).
const MAX_SIDE: u32 = 4096;

/// A captured BGRA frame, borrowed from the capturer.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub width: u32,
    pub height: u32,
    /// Bytes from one row to the next (at least `width * 4`).
    pub stride: usize,
    pub bgra: &'a [u8],
    /// The rows `start..end` are all that may differ from the frame this capturer gave
    /// before; `None`: any row may (a first frame, a new size, a capturer that cannot
    /// tell). Only for the capturer's very next frame after that one.
    pub changed_rows: Option<(u32, u32)>,
}

/// The size the encoder gets for a frame of this size: each side rounded down to even.
pub fn even_size(width: u32, height: u32) -> (u32, u32) {
    (width & !1, height & !1)
}

/// An I420 picture, even-sized and tightly packed: what the encoder takes. A picture
/// converted whole stays in the buffer it was converted into (no copy on the frames of
/// sustained motion); the first frame converted in part copies it into planes of its own,
/// which the frames after it update row by row.
pub enum Picture {
    Whole(YUVBuffer),
    Rows(Planes),
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Picture")
            .field("size", &self.dimensions())
            .field("rows", &matches!(self, Picture::Rows(_)))
            .finish()
    }
}

/// A copy of the pixels (openh264's buffer cannot be cloned: the copy keeps its own).
impl Clone for Picture {
    fn clone(&self) -> Self {
        match self {
            Picture::Whole(buffer) => Picture::Rows(Planes::of(buffer)),
            Picture::Rows(planes) => Picture::Rows(planes.clone()),
        }
    }
}

/// The same pixels, however they are kept.
impl PartialEq for Picture {
    fn eq(&self, other: &Self) -> bool {
        self.dimensions() == other.dimensions()
            && self.y() == other.y()
            && self.u() == other.u()
            && self.v() == other.v()
    }
}

impl Eq for Picture {}

/// Y, then U, then V, updated a band of rows at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planes {
    width: usize,
    height: usize,
    planes: Vec<u8>,
}

impl Planes {
    fn of(picture: &impl YUVSource) -> Self {
        let (width, height) = picture.dimensions();
        let mut planes = Vec::with_capacity(width * height * 3 / 2);
        for plane in [picture.y(), picture.u(), picture.v()] {
            planes.extend_from_slice(plane);
        }
        Self {
            width,
            height,
            planes,
        }
    }

    /// Rows `top..` of the picture become `band` (`top` even, `band` as wide).
    fn write_band(&mut self, top: usize, band: &YUVBuffer) {
        let (w, luma) = (self.width, self.width * self.height);
        let rows = band.dimensions().1;
        self.planes[top * w..(top + rows) * w].copy_from_slice(band.y());
        let (half_w, half_top, half_rows) = (w / 2, top / 2, rows / 2);
        let chroma = |plane: usize| {
            let at = luma + plane * luma / 4 + half_top * half_w;
            at..at + half_rows * half_w
        };
        self.planes[chroma(0)].copy_from_slice(band.u());
        self.planes[chroma(1)].copy_from_slice(band.v());
    }
}

impl YUVSource for Planes {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn strides(&self) -> (usize, usize, usize) {
        (self.width, self.width / 2, self.width / 2)
    }

    fn y(&self) -> &[u8] {
        &self.planes[..self.width * self.height]
    }

    fn u(&self) -> &[u8] {
        let luma = self.width * self.height;
        &self.planes[luma..luma + luma / 4]
    }

    fn v(&self) -> &[u8] {
        let luma = self.width * self.height;
        &self.planes[luma + luma / 4..]
    }
}

impl YUVSource for Picture {
    fn dimensions(&self) -> (usize, usize) {
        match self {
            Picture::Whole(b) => b.dimensions(),
            Picture::Rows(p) => p.dimensions(),
        }
    }

    fn strides(&self) -> (usize, usize, usize) {
        match self {
            Picture::Whole(b) => b.strides(),
            Picture::Rows(p) => p.strides(),
        }
    }

    fn y(&self) -> &[u8] {
        match self {
            Picture::Whole(b) => b.y(),
            Picture::Rows(p) => p.y(),
        }
    }

    fn u(&self) -> &[u8] {
        match self {
            Picture::Whole(b) => b.u(),
            Picture::Rows(p) => p.u(),
        }
    }

    fn v(&self) -> &[u8] {
        match self {
            Picture::Whole(b) => b.v(),
            Picture::Rows(p) => p.v(),
        }
    }
}

/// Converts frames to I420, reusing its buffers across frames of the same size.
#[derive(Default)]
pub struct Converter {
    packed: Vec<u8>,
    /// The band converted last (kept for its allocation while its size repeats).
    band: Option<YUVBuffer>,
    /// A whole picture's buffer no longer shown, for the next whole conversion.
    spare: Option<YUVBuffer>,
    picture: Option<Picture>,
    /// Whether `picture` holds the last frame converted, whole, at full size: only then
    /// can the next frame's changed rows be converted into it alone.
    current: bool,
    /// Halve each side (each output pixel the mean of a 2×2 block): for a path too slow
    /// for the full picture even at the lowest frame rate.
    half: bool,
}

impl std::fmt::Debug for Converter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Converter")
            .field("size", &self.picture.as_ref().map(|p| p.dimensions()))
            .finish()
    }
}

impl Converter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The last picture converted, to encode again (a keyframe on an unchanged screen).
    pub fn last(&self) -> Option<&Picture> {
        self.picture.as_ref()
    }

    /// Whether frames from the next one on are halved in each side. A frame too small to
    /// halve (under 4 × 4) is converted whole.
    pub fn set_half(&mut self, half: bool) {
        if half != self.half {
            self.current = false;
        }
        self.half = half;
    }

    /// The size a frame of this size is converted to, as things are set now.
    pub fn output_size(&self, width: u32, height: u32) -> (u32, u32) {
        let (w, h) = even_size(width, height);
        if self.half && w >= 4 && h >= 4 {
            even_size(w / 2, h / 2)
        } else {
            (w, h)
        }
    }

    /// Convert one frame. The result is even-sized: an odd last row or column is dropped.
    pub fn convert(&mut self, frame: &Frame<'_>) -> Result<&Picture, CodecError> {
        // Whatever happens next, the kept picture no longer follows the capturer's frames
        // unless this conversion completes.
        let continues = std::mem::take(&mut self.current);
        let (width, height) = even_size(frame.width, frame.height);
        if width < 2 || height < 2 {
            return Err(CodecError::TooSmall {
                width: frame.width,
                height: frame.height,
            });
        }
        if frame.width > MAX_SIDE || frame.height > MAX_SIDE {
            return Err(CodecError::TooLarge {
                width: frame.width,
                height: frame.height,
            });
        }
        let row = frame.width as usize * 4;
        if frame.stride < row {
            return Err(CodecError::BadStride {
                width: frame.width,
                stride: frame.stride,
            });
        }
        let needed = frame.stride * (frame.height as usize - 1) + row;
        if frame.bgra.len() < needed {
            return Err(CodecError::ShortBuffer {
                needed,
                got: frame.bgra.len(),
            });
        }
        let (out_w, out_h) = self.output_size(frame.width, frame.height);
        let (w, h) = (out_w as usize, out_h as usize);
        let halved = (out_w, out_h) != (width, height);
        if let Some((start, end)) = frame.changed_rows
            && continues
            && !halved
            && let Some(kept) = self.picture.take_if(|p| p.dimensions() == (w, h))
        {
            // Whole chroma rows: from the even row at or above the first changed one to
            // the even row after the last.
            let top = (start as usize & !1).min(h);
            let bottom = (end as usize).saturating_add(1).min(h) & !1;
            let mut planes = match kept {
                Picture::Rows(planes) => planes,
                Picture::Whole(buffer) => {
                    let planes = Planes::of(&buffer);
                    self.spare = Some(buffer);
                    planes
                }
            };
            if bottom > top {
                let band = band(&mut self.band, w, bottom - top);
                band.read_bgra8(BgraSliceU8::new(
                    packed_rows(frame, &mut self.packed, w, top, bottom),
                    (w, bottom - top),
                ));
                planes.write_band(top, band);
            }
            self.current = true;
            return Ok(self.picture.insert(Picture::Rows(planes)));
        }
        let source = if halved {
            self.packed.resize(w * 4 * h, 0);
            halve(frame, &mut self.packed, w, h);
            &self.packed[..w * 4 * h]
        } else {
            packed_rows(frame, &mut self.packed, w, 0, h)
        };
        let mut buffer = self
            .spare
            .take()
            .filter(|b| b.dimensions() == (w, h))
            .unwrap_or_else(|| YUVBuffer::new(w, h));
        buffer.read_bgra8(BgraSliceU8::new(source, (w, h)));
        if let Some(Picture::Whole(old)) = self.picture.take() {
            self.spare = Some(old);
        }
        self.current = !halved;
        Ok(self.picture.insert(Picture::Whole(buffer)))
    }
}

/// Rows `top..bottom` of a frame, `w` pixels wide, tightly packed: the frame's own bytes
/// where its rows are packed already, else copied into `packed`.
fn packed_rows<'a>(
    frame: &'a Frame<'_>,
    packed: &'a mut Vec<u8>,
    w: usize,
    top: usize,
    bottom: usize,
) -> &'a [u8] {
    let (packed_row, rows) = (w * 4, bottom - top);
    if frame.stride == packed_row {
        return &frame.bgra[top * packed_row..bottom * packed_row];
    }
    packed.resize(packed_row * rows, 0);
    for (y, out) in packed.chunks_exact_mut(packed_row).enumerate() {
        let start = (top + y) * frame.stride;
        out.copy_from_slice(&frame.bgra[start..start + packed_row]);
    }
    &packed[..packed_row * rows]
}

/// The scratch band, `w`×`rows`, reallocated only when its size changes.
fn band(slot: &mut Option<YUVBuffer>, w: usize, rows: usize) -> &mut YUVBuffer {
    if slot.as_ref().is_none_or(|b| b.dimensions() != (w, rows)) {
        *slot = Some(YUVBuffer::new(w, rows));
    }
    slot.get_or_insert_with(|| YUVBuffer::new(w, rows))
}

/// `out` (`w`×`h`, packed BGRA) = `frame` halved: each pixel the rounded mean of the 2×2
/// block above it. The caller checked that the frame holds 2`w`×2`h` pixels.
fn halve(frame: &Frame<'_>, out: &mut [u8], w: usize, h: usize) {
    for (y, row) in out.chunks_exact_mut(w * 4).take(h).enumerate() {
        let top = &frame.bgra[2 * y * frame.stride..];
        let bottom = &frame.bgra[(2 * y + 1) * frame.stride..];
        for (x, pixel) in row.chunks_exact_mut(4).enumerate() {
            let i = 8 * x;
            for (c, value) in pixel.iter_mut().enumerate() {
                let sum = u16::from(top[i + c])
                    + u16::from(top[i + 4 + c])
                    + u16::from(bottom[i + c])
                    + u16::from(bottom[i + 4 + c]);
                *value = ((sum + 2) / 4) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn solid(width: u32, height: u32, stride: usize, bgra: [u8; 4]) -> Vec<u8> {
        let mut data = vec![0u8; stride * height as usize];
        for y in 0..height as usize {
            for x in 0..width as usize {
                data[y * stride + x * 4..y * stride + x * 4 + 4].copy_from_slice(&bgra);
            }
        }
        data
    }

    #[test]
    fn white_and_black_map_to_the_ends_of_luma() {
        let mut c = Converter::new();
        for (bgra, low, high) in [([255, 255, 255, 255], 230, 255), ([0, 0, 0, 255], 0, 20)] {
            let data = solid(16, 16, 64, bgra);
            let frame = Frame {
                width: 16,
                height: 16,
                stride: 64,
                bgra: &data,
                changed_rows: None,
            };
            let yuv = c.convert(&frame).expect("convert");
            let luma = yuv.y()[0];
            assert!((low..=high).contains(&luma), "{bgra:?} gave Y={luma}");
            let (u, v) = (yuv.u()[0], yuv.v()[0]);
            assert!(
                u.abs_diff(128) < 4 && v.abs_diff(128) < 4,
                "grey has no chroma: {u} {v}"
            );
        }
    }

    #[test]
    fn odd_sizes_are_cropped_to_even_and_padded_strides_repacked() {
        let mut c = Converter::new();
        let data = solid(33, 21, 33 * 4 + 12, [0, 0, 255, 255]);
        let frame = Frame {
            width: 33,
            height: 21,
            stride: 33 * 4 + 12,
            bgra: &data,
            changed_rows: None,
        };
        let yuv = c.convert(&frame).expect("convert");
        assert_eq!(yuv.dimensions(), (32, 20));
        assert!(
            yuv.v().iter().all(|&v| v > 200),
            "red has strong V everywhere"
        );
    }

    #[test]
    fn a_halved_frame_has_half_the_sides_and_the_mean_of_each_block() {
        // Columns alternating white and black, with a padded stride: each 2×2 block is
        // half white, so the halved picture is mid grey; the right half is red.
        let (w, h, stride) = (64u32, 32u32, 64 * 4 + 8);
        let mut data = vec![0u8; stride * h as usize];
        for y in 0..h as usize {
            for x in 0..w as usize {
                let px = if x >= 32 {
                    [0, 0, 255, 255]
                } else if x % 2 == 0 {
                    [255, 255, 255, 255]
                } else {
                    [0, 0, 0, 255]
                };
                data[y * stride + x * 4..y * stride + x * 4 + 4].copy_from_slice(&px);
            }
        }
        let frame = Frame {
            width: w,
            height: h,
            stride,
            bgra: &data,
            changed_rows: None,
        };
        let mut c = Converter::new();
        let full_grey_side = c.convert(&frame).expect("whole").y()[0];
        c.set_half(true);
        let yuv = c.convert(&frame).expect("halved");
        assert_eq!(yuv.dimensions(), (32, 16));
        let luma = yuv.y()[0];
        assert!(
            (100..=150).contains(&luma),
            "half white is mid grey: Y={luma}"
        );
        assert!(full_grey_side > 200, "whole, the first column is white");
        let chroma_width = 16;
        assert!(
            yuv.v()[chroma_width - 1] > 200,
            "the right half is still red"
        );
        c.set_half(false);
        assert_eq!(c.convert(&frame).expect("whole").dimensions(), (64, 32));
    }

    /// A padded 64×48 frame of noise.
    fn noise(seed: u32, stride: usize) -> Vec<u8> {
        let mut state = seed | 1;
        (0..stride * 48)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect()
    }

    #[test]
    fn changed_rows_alone_are_converted_into_the_kept_picture_as_a_whole_conversion_would() {
        let stride = 64 * 4 + 8;
        let frame = |bgra, changed_rows| Frame {
            width: 64,
            height: 48,
            stride,
            bgra,
            changed_rows,
        };
        let before = noise(1, stride);
        let mut after = before.clone();
        // Rows 17..=22 change: odd at both ends, so whole chroma rows 16..24 are redone.
        let other = noise(2, stride);
        after[17 * stride..23 * stride].copy_from_slice(&other[17 * stride..23 * stride]);
        let whole = Converter::new()
            .convert(&frame(&after, None))
            .expect("whole")
            .clone();

        let mut c = Converter::new();
        c.convert(&frame(&before, None)).expect("first");
        let part = c.convert(&frame(&after, Some((17, 23)))).expect("rows");
        assert!(
            *part == whole,
            "rows 17..23 again give the whole conversion"
        );
        // And back, from the planes the first partial frame made.
        let undone = c.convert(&frame(&before, Some((17, 23)))).expect("rows");
        let original = Converter::new()
            .convert(&frame(&before, None))
            .expect("whole")
            .clone();
        assert!(
            *undone == original,
            "a second partial frame builds on the first"
        );

        // The rows are trusted: told of the wrong ones, the change is not seen (so the
        // test above did take the short way).
        let mut c = Converter::new();
        c.convert(&frame(&before, None)).expect("first");
        let stale = c.convert(&frame(&after, Some((30, 32)))).expect("rows");
        assert!(
            *stale != whole,
            "rows 30..32 leave rows 17..23 as they were"
        );

        // After a halved frame, or a frame that failed, the kept picture does not follow
        // the capturer: the next frame is converted whole whatever it says.
        for upset in [true, false] {
            let mut c = Converter::new();
            c.convert(&frame(&before, None)).expect("first");
            if upset {
                c.set_half(true);
                c.convert(&frame(&before, None)).expect("halved");
                c.set_half(false);
            } else {
                c.convert(&frame(&before[..10], None))
                    .expect_err("too short");
            }
            let next = c.convert(&frame(&after, Some((30, 32)))).expect("rows");
            assert!(*next == whole, "converted whole (halved before: {upset})");
        }
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        let mut c = Converter::new();
        let data = vec![0u8; 100];
        let cases = [
            (
                Frame {
                    width: 1,
                    height: 10,
                    stride: 4,
                    bgra: &data,
                    changed_rows: None,
                },
                "too small",
            ),
            (
                Frame {
                    width: 10,
                    height: 10,
                    stride: 8,
                    bgra: &data,
                    changed_rows: None,
                },
                "stride",
            ),
            (
                Frame {
                    width: 10,
                    height: 10,
                    stride: 40,
                    bgra: &data,
                    changed_rows: None,
                },
                "needs 400 bytes but has 100",
            ),
            (
                Frame {
                    width: 5000,
                    height: 10,
                    stride: 20000,
                    bgra: &data,
                    changed_rows: None,
                },
                "larger",
            ),
        ];
        for (frame, words) in cases {
            let Err(err) = c.convert(&frame) else {
                panic!("{words}: accepted");
            };
            assert!(err.to_string().contains(words), "{err}");
        }
    }

    proptest! {
        #[test]
        fn any_geometry_is_converted_or_refused(w in 0u32..70, h in 0u32..70, pad in 0usize..9, short in 0usize..3, half in any::<bool>()) {
            let stride = w as usize * 4 + pad;
            let len = (stride * h as usize).saturating_sub(short);
            let data = vec![7u8; len];
            let mut c = Converter::new();
            c.set_half(half);
            let (ow, oh) = c.output_size(w, h);
            match c.convert(&Frame { width: w, height: h, stride, bgra: &data, changed_rows: None }) {
                Ok(yuv) => {
                    prop_assert_eq!(yuv.dimensions(), (ow as usize, oh as usize));
                    if half && w >= 4 && h >= 4 {
                        prop_assert_eq!((ow, oh), (((w & !1) / 2) & !1, ((h & !1) / 2) & !1));
                    } else {
                        prop_assert_eq!((ow, oh), (w & !1, h & !1));
                    }
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}
