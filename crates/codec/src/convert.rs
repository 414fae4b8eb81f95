//! BGRA to I420. The encoder needs even dimensions and tightly packed rows; captures come
//! with padded strides and any size, so frames are cropped to even and repacked here.

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
}

/// The size the encoder gets for a frame of this size: each side rounded down to even.
pub fn even_size(width: u32, height: u32) -> (u32, u32) {
    (width & !1, height & !1)
}

/// Converts frames to I420, reusing its buffers across frames of the same size.
#[derive(Default)]
pub struct Converter {
    packed: Vec<u8>,
    yuv: Option<YUVBuffer>,
    /// Halve each side (each output pixel the mean of a 2×2 block): for a path too slow
    /// for the full picture even at the lowest frame rate.
    half: bool,
}

impl std::fmt::Debug for Converter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Converter")
            .field("size", &self.yuv.as_ref().map(|y| y.dimensions()))
            .finish()
    }
}

impl Converter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The last picture converted, to encode again (a keyframe on an unchanged screen).
    pub fn last(&self) -> Option<&YUVBuffer> {
        self.yuv.as_ref()
    }

    /// Whether frames from the next one on are halved in each side. A frame too small to
    /// halve (under 4 × 4) is converted whole.
    pub fn set_half(&mut self, half: bool) {
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
    pub fn convert(&mut self, frame: &Frame<'_>) -> Result<&YUVBuffer, CodecError> {
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
        if (out_w, out_h) != (width, height) {
            let (w, h) = (out_w as usize, out_h as usize);
            self.packed.resize(w * 4 * h, 0);
            halve(frame, &mut self.packed, w, h);
            return Ok(self.read_packed(w, h));
        }
        let (w, h) = (width as usize, height as usize);
        let packed_row = w * 4;
        let source: &[u8] = if frame.stride == packed_row && w == frame.width as usize {
            &frame.bgra[..packed_row * h]
        } else {
            self.packed.resize(packed_row * h, 0);
            for (y, out) in self.packed.chunks_exact_mut(packed_row).enumerate() {
                let start = y * frame.stride;
                out.copy_from_slice(&frame.bgra[start..start + packed_row]);
            }
            &self.packed
        };
        if self
            .yuv
            .as_ref()
            .is_none_or(|yuv| yuv.dimensions() != (w, h))
        {
            self.yuv = Some(YUVBuffer::new(w, h));
        }
        let yuv = self.yuv.get_or_insert_with(|| YUVBuffer::new(w, h));
        yuv.read_bgra8(BgraSliceU8::new(source, (w, h)));
        Ok(yuv)
    }

    /// I420 of the `w`×`h` BGRA picture in `self.packed`.
    fn read_packed(&mut self, w: usize, h: usize) -> &YUVBuffer {
        if self
            .yuv
            .as_ref()
            .is_none_or(|yuv| yuv.dimensions() != (w, h))
        {
            self.yuv = Some(YUVBuffer::new(w, h));
        }
        let yuv = self.yuv.get_or_insert_with(|| YUVBuffer::new(w, h));
        yuv.read_bgra8(BgraSliceU8::new(&self.packed[..w * 4 * h], (w, h)));
        yuv
    }
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
                },
                "too small",
            ),
            (
                Frame {
                    width: 10,
                    height: 10,
                    stride: 8,
                    bgra: &data,
                },
                "stride",
            ),
            (
                Frame {
                    width: 10,
                    height: 10,
                    stride: 40,
                    bgra: &data,
                },
                "needs 400 bytes but has 100",
            ),
            (
                Frame {
                    width: 5000,
                    height: 10,
                    stride: 20000,
                    bgra: &data,
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
            match c.convert(&Frame { width: w, height: h, stride, bgra: &data }) {
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
