//! H.264 as the recorder needs it: NAL units out of Annex B, the picture size from the
//! sequence parameter set, and access units assembled from RTP payloads.

/// NAL unit types the recorder looks at.
pub const NAL_IDR: u8 = 5;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;

/// The NAL units of an Annex B byte stream (start codes of three or four bytes), without
/// their start codes. Empty units are skipped.
pub fn nal_units(annex_b: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= annex_b.len() {
        if annex_b[i] == 0 && annex_b[i + 1] == 0 && annex_b[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units = Vec::with_capacity(starts.len());
    for (n, &start) in starts.iter().enumerate() {
        let mut end = starts.get(n + 1).map_or(annex_b.len(), |&next| next - 3);
        // A four-byte start code leaves a zero before the next three-byte one.
        while end > start && annex_b[end - 1] == 0 && starts.get(n + 1).is_some() {
            end -= 1;
        }
        if end > start {
            units.push(&annex_b[start..end]);
        }
    }
    units
}

/// The type of a NAL unit (its first byte's low five bits).
pub fn nal_type(unit: &[u8]) -> u8 {
    unit.first().map_or(0, |b| b & 0x1f)
}

/// One picture: its NAL units and its RTP timestamp (90 kHz).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessUnit {
    pub rtp_timestamp: u32,
    pub units: Vec<Vec<u8>>,
}

impl AccessUnit {
    /// An IDR picture: where a recording may start and a player may seek to.
    pub fn is_keyframe(&self) -> bool {
        self.units.iter().any(|u| nal_type(u) == NAL_IDR)
    }

    /// The sequence and picture parameter sets it carries, if both are there.
    pub fn parameter_sets(&self) -> Option<(&[u8], &[u8])> {
        let sps = self.units.iter().find(|u| nal_type(u) == NAL_SPS)?;
        let pps = self.units.iter().find(|u| nal_type(u) == NAL_PPS)?;
        Some((sps, pps))
    }

    /// As MP4 stores a sample: each NAL unit after its length in four bytes.
    pub fn to_length_prefixed(&self) -> Vec<u8> {
        let total: usize = self.units.iter().map(|u| u.len() + 4).sum();
        let mut out = Vec::with_capacity(total);
        for unit in &self.units {
            let len = u32::try_from(unit.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(unit);
        }
        out
    }
}

/// The largest picture kept; a sender that never ends one cannot grow it further.
pub const MAX_PICTURE_BYTES: usize = 16 << 20;

/// Gathers the NAL units of consecutive RTP packets into access units: a picture ends
/// with the RTP marker bit, or when a packet with another timestamp arrives.
#[derive(Debug, Default)]
pub struct Assembler {
    current: Option<AccessUnit>,
    bytes: usize,
    dropped: bool,
}

impl Assembler {
    /// One RTP packet's depacketized payload (Annex B; empty while a fragmented unit is
    /// incomplete). Returns the pictures it completed, oldest first.
    pub fn push(&mut self, rtp_timestamp: u32, marker: bool, annex_b: &[u8]) -> Vec<AccessUnit> {
        let mut done = Vec::new();
        if self
            .current
            .as_ref()
            .is_some_and(|c| c.rtp_timestamp != rtp_timestamp)
        {
            done.extend(self.current.take());
        }
        if self.current.is_none() {
            self.bytes = 0;
        }
        let current = self.current.get_or_insert_with(|| AccessUnit {
            rtp_timestamp,
            units: Vec::new(),
        });
        current
            .units
            .extend(nal_units(annex_b).into_iter().map(<[u8]>::to_vec));
        self.bytes += annex_b.len();
        if self.bytes > MAX_PICTURE_BYTES {
            // Too large to be a picture: thrown away, and said so.
            self.current = None;
            self.dropped = true;
            return done;
        }
        if marker {
            done.extend(self.current.take());
        }
        done.retain(|au| !au.units.is_empty());
        done
    }

    /// Whether a picture was thrown away (too large) since the last call.
    pub fn take_dropped(&mut self) -> bool {
        std::mem::take(&mut self.dropped)
    }

    /// Forget the picture in progress (its packets were not all received).
    pub fn reset(&mut self) {
        self.current = None;
        self.bytes = 0;
    }
}

/// What the recording needs from a sequence parameter set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sps {
    pub profile: u8,
    pub compatibility: u8,
    pub level: u8,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("the sequence parameter set could not be read: {0}")]
pub struct SpsError(&'static str);

impl Sps {
    /// Read a sequence parameter set NAL unit (with its one-byte header).
    pub fn parse(unit: &[u8]) -> Result<Sps, SpsError> {
        if nal_type(unit) != NAL_SPS || unit.len() < 4 {
            return Err(SpsError("not a sequence parameter set"));
        }
        let (profile, compatibility, level) = (unit[1], unit[2], unit[3]);
        let rbsp = unescape(&unit[4..]);
        let mut bits = Bits::new(&rbsp);
        bits.ue()?; // seq_parameter_set_id
        if matches!(
            profile,
            100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134
        ) {
            let chroma_format_idc = bits.ue()?;
            if chroma_format_idc == 3 {
                bits.bit()?; // separate_colour_plane_flag
            }
            bits.ue()?; // bit_depth_luma_minus8
            bits.ue()?; // bit_depth_chroma_minus8
            bits.bit()?; // qpprime_y_zero_transform_bypass_flag
            if bits.bit()? == 1 {
                return Err(SpsError("scaling matrices are not supported"));
            }
        }
        bits.ue()?; // log2_max_frame_num_minus4
        match bits.ue()? {
            0 => {
                bits.ue()?; // log2_max_pic_order_cnt_lsb_minus4
            }
            1 => {
                bits.bit()?; // delta_pic_order_always_zero_flag
                bits.se()?; // offset_for_non_ref_pic
                bits.se()?; // offset_for_top_to_bottom_field
                let cycle = bits.ue()?;
                for _ in 0..cycle.min(256) {
                    bits.se()?;
                }
            }
            _ => {}
        }
        bits.ue()?; // max_num_ref_frames
        bits.bit()?; // gaps_in_frame_num_value_allowed_flag
        let width_mbs = bits.ue()? + 1;
        let height_map_units = bits.ue()? + 1;
        let frame_mbs_only = bits.bit()?;
        if frame_mbs_only == 0 {
            bits.bit()?; // mb_adaptive_frame_field_flag
        }
        bits.bit()?; // direct_8x8_inference_flag
        let mut width = width_mbs * 16;
        let mut height = height_map_units * 16 * (2 - frame_mbs_only);
        if bits.bit()? == 1 {
            // Cropping, in 4:2:0 units of two samples (and two lines per field pair).
            let (left, right, top, bottom) = (bits.ue()?, bits.ue()?, bits.ue()?, bits.ue()?);
            let crop_y = 2 * (2 - frame_mbs_only);
            width = width.saturating_sub(2 * (left + right));
            height = height.saturating_sub(crop_y * (top + bottom));
        }
        Ok(Sps {
            profile,
            compatibility,
            level,
            width,
            height,
        })
    }
}

/// Remove emulation prevention bytes (`00 00 03` becomes `00 00`).
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn bit(&mut self) -> Result<u32, SpsError> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or(SpsError("it ends too early"))?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(u32::from(bit))
    }

    /// Unsigned Exp-Golomb.
    fn ue(&mut self) -> Result<u32, SpsError> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(SpsError("a value is out of range"));
            }
        }
        let mut value = 1u64;
        for _ in 0..zeros {
            value = (value << 1) | u64::from(self.bit()?);
        }
        u32::try_from(value - 1).map_err(|_| SpsError("a value is out of range"))
    }

    /// Signed Exp-Golomb.
    fn se(&mut self) -> Result<i64, SpsError> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPSs from x264 (`-profile:v baseline`) for 1280×720, and for 1366×768 (cropped
    /// from 1376×768).
    const SPS_720P: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
        0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x24, 0x80,
    ];
    const SPS_1366: &[u8] = &[
        0x67, 0x42, 0xc0, 0x20, 0xd9, 0x00, 0x56, 0x06, 0x1e, 0x6f, 0x01, 0x10, 0x00, 0x00, 0x03,
        0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x24, 0x80,
    ];

    #[test]
    fn nal_units_are_split_on_three_and_four_byte_start_codes() {
        let stream = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5, 0,
        ];
        let units = nal_units(&stream);
        assert_eq!(
            units,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5, 0][..]]
        );
        assert!(nal_units(&[]).is_empty());
        assert!(nal_units(&[0, 0, 1]).is_empty());
    }

    #[test]
    fn the_picture_size_comes_from_the_sequence_parameter_set() {
        let sps = Sps::parse(SPS_720P).expect("parse");
        assert_eq!((sps.width, sps.height), (1280, 720));
        assert_eq!((sps.profile, sps.level), (0x42, 0x1f));
        let sps = Sps::parse(SPS_1366).expect("parse");
        assert_eq!((sps.width, sps.height), (1366, 768), "cropping applies");
        assert!(Sps::parse(&[0x68, 1, 2, 3]).is_err(), "a PPS is not an SPS");
        assert!(Sps::parse(&SPS_720P[..6]).is_err(), "cut short");
    }

    #[test]
    fn access_units_end_at_the_marker_or_a_new_timestamp() {
        let mut a = Assembler::default();
        assert!(a.push(100, false, &[0, 0, 0, 1, 0x67, 1]).is_empty());
        assert!(a.push(100, false, &[]).is_empty(), "a fragment in progress");
        let done = a.push(100, true, &[0, 0, 0, 1, 0x65, 9]);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].units, vec![vec![0x67, 1], vec![0x65, 9]]);
        assert!(done[0].is_keyframe());
        assert_eq!(
            done[0].to_length_prefixed(),
            vec![0, 0, 0, 2, 0x67, 1, 0, 0, 0, 2, 0x65, 9]
        );

        // A lost marker: the next timestamp ends the picture.
        assert!(a.push(200, false, &[0, 0, 0, 1, 0x41, 7]).is_empty());
        let done = a.push(300, true, &[0, 0, 0, 1, 0x41, 8]);
        assert_eq!(
            done.iter().map(|au| au.rtp_timestamp).collect::<Vec<_>>(),
            vec![200, 300]
        );
        assert!(!done[0].is_keyframe());
    }

    #[test]
    fn a_picture_that_never_ends_is_dropped_at_its_cap() {
        let mut a = Assembler::default();
        let chunk = [&[0u8, 0, 0, 1, 0x41][..], &[7u8; 65_536][..]].concat();
        let mut out = Vec::new();
        for _ in 0..(MAX_PICTURE_BYTES / chunk.len() + 2) {
            out.extend(a.push(9, false, &chunk));
        }
        assert!(out.is_empty());
        assert!(a.take_dropped(), "said so");
        assert!(!a.take_dropped(), "once");
        assert!(a.current.as_ref().is_none_or(|c| c.units.len() < 3));
    }
}
