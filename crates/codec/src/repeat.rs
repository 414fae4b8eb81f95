//! The picture again for a few bytes: a P frame whose every macroblock is skipped.
//!
//! A still screen is sent again once a second so that viewers see it live (docs/protocol.md
//! §4.5). Encoding it again with openh264 costs a whole frame's analysis (for
//! screen content, the reference's block hashes are rebuilt for every new reference). The
//! same picture is one slice header and `mb_skip_run` = every macroblock: a skipped
//! macroblock of a P slice has a zero motion vector when its neighbours do (H.264 §8.4.1.1),
//! so the decoder copies the reference exactly. This module writes such a slice and keeps
//! openh264's stream consistent around it.
//!
//! The skip frame is a reference picture (so any number can follow one another), numbered
//! one past the last reference. openh264 does not know it was sent, so every later slice
//! of openh264's is renumbered by the count of skip frames since the last IDR: `frame_num`
//! is a fixed-width field near the start of the slice header, rewritten in place. With one
//! reference frame (what openh264 uses for real-time screen content), whatever openh264's
//! next frame predicts from is the newest reference, the skip frame, whose pixels are the
//! ones openh264 predicted from. With more than one, or anything this writer does not
//! handle (CABAC, weighted prediction, slice groups, picture order count types 0 and 1,
//! field coding), it declines and the caller encodes the picture again.

/// Enough of a slice's start for its first four header fields.
const HEADER_BYTES: usize = 32;

/// What the slice header needs from the sequence and picture parameter sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Params {
    log2_max_frame_num: u32,
    /// Macroblocks in a picture.
    macroblocks: u32,
    pps_id: u32,
    deblocking_control: bool,
}

/// Follows openh264's access units and writes skip frames between them.
#[derive(Debug, Default)]
pub(crate) struct Repeater {
    /// From the last SPS: `None` when the stream is one this writer cannot follow.
    sps: Option<Sps>,
    pps: Option<Pps>,
    /// Skip frames sent since the last IDR: added to openh264's `frame_num`.
    offset: u32,
    /// `frame_num` of the last reference picture sent, as the decoder saw it.
    last_frame_num: Option<u32>,
    /// `nal_ref_idc` of openh264's last reference slice.
    ref_idc: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sps {
    log2_max_frame_num: u32,
    macroblocks: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pps {
    id: u32,
    deblocking_control: bool,
}

impl Repeater {
    /// Forget the stream: a rebuilt encoder starts again with an IDR.
    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }

    /// Take one access unit of openh264's (Annex B): learn its parameter sets and
    /// renumber its slices after the skip frames sent since the last IDR. Returns the
    /// bytes to send: `unit` itself when nothing needed renumbering.
    pub(crate) fn follow(&mut self, unit: Vec<u8>) -> Vec<u8> {
        let mut renumbered: Option<Vec<u8>> = None;
        let mut copied_to = 0;
        for (start, end) in nal_units(&unit) {
            let nal = &unit[start..end];
            let Some(&header) = nal.first() else {
                continue;
            };
            let kind = header & 0x1F;
            let ref_idc = (header >> 5) & 3;
            match kind {
                7 => self.sps = parse_sps(&unescape(&nal[1..])),
                8 => self.pps = parse_pps(&unescape(&nal[1..])),
                5 => {
                    self.offset = 0;
                    self.last_frame_num = Some(0);
                    self.ref_idc = ref_idc;
                }
                1 => {
                    let Some(sps) = self.sps else {
                        self.last_frame_num = None;
                        continue;
                    };
                    // The header's first bytes say the number; the whole slice is
                    // unescaped only when it must be renumbered (after a repeat).
                    let head = unescape(&nal[1..nal.len().min(HEADER_BYTES)]);
                    let mut rbsp = if frame_num_position(&head)
                        .is_some_and(|at| at + sps.log2_max_frame_num as usize <= head.len() * 8)
                    {
                        head
                    } else {
                        unescape(&nal[1..])
                    };
                    let Some(at) = frame_num_position(&rbsp) else {
                        self.last_frame_num = None;
                        continue;
                    };
                    let bits = sps.log2_max_frame_num;
                    let mask = (1u32 << bits) - 1;
                    let Some(own) = read_bits(&rbsp, at, bits) else {
                        self.last_frame_num = None;
                        continue;
                    };
                    let number = own.wrapping_add(self.offset) & mask;
                    if ref_idc != 0 {
                        self.last_frame_num = Some(number);
                        self.ref_idc = ref_idc;
                    }
                    if number != own {
                        if rbsp.len() < nal.len() - 1 {
                            rbsp = unescape(&nal[1..]);
                        }
                        write_bits(&mut rbsp, at, bits, number);
                        let out = renumbered.get_or_insert_with(|| Vec::with_capacity(unit.len()));
                        out.extend_from_slice(&unit[copied_to..start + 1]);
                        escape_into(&rbsp, out);
                        copied_to = end;
                    }
                }
                _ => {}
            }
        }
        match renumbered {
            Some(mut out) => {
                out.extend_from_slice(&unit[copied_to..]);
                out
            }
            None => unit,
        }
    }

    /// The parameters a skip frame needs now, if this stream allows one.
    pub(crate) fn params(&self) -> Option<Params> {
        let sps = self.sps?;
        let pps = self.pps?;
        self.last_frame_num?;
        Some(Params {
            log2_max_frame_num: sps.log2_max_frame_num,
            macroblocks: sps.macroblocks,
            pps_id: pps.id,
            deblocking_control: pps.deblocking_control,
        })
    }

    /// The skip frame that repeats the last picture (Annex B, one NAL unit), or `None`
    /// when this stream cannot take one (the caller encodes the picture again).
    pub(crate) fn skip_frame(&mut self) -> Option<Vec<u8>> {
        let params = self.params()?;
        let last = self.last_frame_num?;
        let mask = (1u32 << params.log2_max_frame_num) - 1;
        let number = last.wrapping_add(1) & mask;
        let nal = skip_slice(params, number, self.ref_idc.max(1));
        self.offset = self.offset.wrapping_add(1);
        self.last_frame_num = Some(number);
        Some(nal)
    }
}

/// One P slice of a reference picture numbered `frame_num`, every macroblock skipped.
pub(crate) fn skip_slice(params: Params, frame_num: u32, ref_idc: u8) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.ue(0); // first_mb_in_slice
    w.ue(0); // slice_type: P
    w.ue(params.pps_id);
    w.bits(frame_num, params.log2_max_frame_num);
    // Picture order count type 2: nothing. Not IDR: no idr_pic_id.
    w.bit(false); // num_ref_idx_active_override_flag: the PPS's default
    w.bit(false); // ref_pic_list_modification_flag_l0: newest reference first
    w.bit(false); // adaptive_ref_pic_marking_mode_flag: sliding window
    w.se(0); // slice_qp_delta
    if params.deblocking_control {
        w.ue(1); // disable_deblocking_filter_idc: off (nothing to filter anyway)
    }
    w.ue(params.macroblocks); // mb_skip_run: all of them
    w.bit(true); // rbsp_stop_one_bit
    let rbsp = w.finish();
    let mut out = vec![0, 0, 0, 1, (ref_idc & 3) << 5 | 1];
    escape_into(&rbsp, &mut out);
    out
}

/// The NAL units of an Annex B stream, as (first byte after the start code, end).
fn nal_units(stream: &[u8]) -> Vec<(usize, usize)> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            starts.push((i, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units = Vec::with_capacity(starts.len());
    for (n, &(_, payload)) in starts.iter().enumerate() {
        let mut end = starts.get(n + 1).map_or(stream.len(), |&(code, _)| code);
        // A four-byte start code's leading zero belongs to the next unit's start code.
        while end > payload && stream[end - 1] == 0 && n + 1 < starts.len() {
            end -= 1;
        }
        units.push((payload, end));
    }
    units
}

/// The payload without its emulation prevention bytes (00 00 03 → 00 00).
fn unescape(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len());
    let mut zeros = 0;
    for &byte in payload {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        out.push(byte);
    }
    out
}

/// `rbsp` with emulation prevention bytes put in, appended to `out`.
fn escape_into(rbsp: &[u8], out: &mut Vec<u8>) {
    let mut zeros = 0;
    for &byte in rbsp {
        if zeros >= 2 && byte <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        out.push(byte);
    }
}

/// Where `frame_num` starts in a slice's RBSP (after the NAL header): after
/// first_mb_in_slice, slice_type and pic_parameter_set_id.
fn frame_num_position(rbsp: &[u8]) -> Option<usize> {
    let mut r = BitReader::new(rbsp);
    r.ue()?;
    r.ue()?;
    r.ue()?;
    Some(r.at)
}

fn parse_sps(rbsp: &[u8]) -> Option<Sps> {
    let mut r = BitReader::new(rbsp);
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        // High profiles: only 4:2:0 without scaling matrices is followed.
        if r.ue()? != 1 {
            return None;
        }
        r.ue()?;
        r.ue()?;
        r.bit()?;
        if r.bit()? {
            return None;
        }
    }
    let log2_max_frame_num = r.ue()?.checked_add(4)?;
    if !(4..=16).contains(&log2_max_frame_num) {
        return None;
    }
    // Picture order count type 2 only: it follows frame_num, nothing else to keep.
    if r.ue()? != 2 {
        return None;
    }
    // One reference frame: openh264's next frame predicts from the skip frame.
    if r.ue()? != 1 {
        return None;
    }
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width = r.ue()?.checked_add(1)?;
    let height = r.ue()?.checked_add(1)?;
    if !r.bit()? {
        return None; // fields
    }
    Some(Sps {
        log2_max_frame_num,
        macroblocks: width.checked_mul(height)?,
    })
}

fn parse_pps(rbsp: &[u8]) -> Option<Pps> {
    let mut r = BitReader::new(rbsp);
    let id = r.ue()?;
    r.ue()?; // seq_parameter_set_id
    if r.bit()? {
        return None; // CABAC
    }
    r.bit()?; // bottom_field_pic_order_in_frame_present_flag (fields only)
    if r.ue()? != 0 {
        return None; // slice groups
    }
    r.ue()?; // num_ref_idx_l0_default_active_minus1
    r.ue()?; // num_ref_idx_l1_default_active_minus1
    if r.bit()? {
        return None; // weighted prediction
    }
    r.bits(2)?; // weighted_bipred_idc
    r.se()?; // pic_init_qp_minus26
    r.se()?; // pic_init_qs_minus26
    r.se()?; // chroma_qp_index_offset
    let deblocking_control = r.bit()?;
    r.bit()?; // constrained_intra_pred_flag
    if r.bit()? {
        return None; // redundant_pic_cnt_present_flag
    }
    Some(Pps {
        id,
        deblocking_control,
    })
}

fn read_bits(rbsp: &[u8], at: usize, count: u32) -> Option<u32> {
    let mut r = BitReader { data: rbsp, at };
    r.bits(count)
}

fn write_bits(rbsp: &mut [u8], at: usize, count: u32, value: u32) {
    for i in 0..count as usize {
        let bit = (value >> (count as usize - 1 - i)) & 1 == 1;
        let (byte, shift) = ((at + i) / 8, 7 - (at + i) % 8);
        if let Some(b) = rbsp.get_mut(byte) {
            if bit {
                *b |= 1 << shift;
            } else {
                *b &= !(1 << shift);
            }
        }
    }
}

struct BitReader<'a> {
    data: &'a [u8],
    /// The next bit to read.
    at: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    fn bit(&mut self) -> Option<bool> {
        let byte = self.data.get(self.at / 8)?;
        let bit = byte >> (7 - self.at % 8) & 1 == 1;
        self.at += 1;
        Some(bit)
    }

    fn bits(&mut self, count: u32) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..count {
            value = value << 1 | u32::from(self.bit()?);
        }
        Some(value)
    }

    /// Exp-Golomb, unsigned (at most 31 leading zeros).
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        ((1u64 << zeros) - 1 + u64::from(rest)).try_into().ok()
    }

    fn se(&mut self) -> Option<i32> {
        let k = i64::from(self.ue()?);
        let value = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        i32::try_from(value).ok()
    }
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    fn bit(&mut self, one: bool) {
        if self.bits % 8 == 0 {
            self.bytes.push(0);
        }
        if one {
            if let Some(last) = self.bytes.last_mut() {
                *last |= 1 << (7 - self.bits % 8);
            }
        }
        self.bits += 1;
    }

    fn bits(&mut self, value: u32, count: u32) {
        for i in (0..count).rev() {
            self.bit((value >> i) & 1 == 1);
        }
    }

    fn ue(&mut self, value: u32) {
        let coded = u64::from(value) + 1;
        let length = 64 - coded.leading_zeros();
        for _ in 1..length {
            self.bit(false);
        }
        for i in (0..length).rev() {
            self.bit((coded >> i) & 1 == 1);
        }
    }

    fn se(&mut self, value: i32) {
        let mapped = if value > 0 {
            2 * value.unsigned_abs() - 1
        } else {
            2 * value.unsigned_abs()
        };
        self.ue(mapped);
    }

    /// The bytes, the last one padded with zeros.
    fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// The `frame_num` of each slice in an Annex B stream (0 for an IDR), for tests.
#[cfg(test)]
pub(crate) fn frame_nums(stream: &[u8]) -> Vec<u32> {
    let mut bits = None;
    let mut numbers = Vec::new();
    for (start, end) in nal_units(stream) {
        let nal = &stream[start..end];
        let rbsp = unescape(&nal[1..]);
        match nal[0] & 0x1F {
            7 => bits = parse_sps(&rbsp).map(|sps| sps.log2_max_frame_num),
            1 | 5 => {
                let at = frame_num_position(&rbsp).expect("a slice header");
                numbers.push(read_bits(&rbsp, at, bits.expect("an SPS first")).expect("frame_num"));
            }
            _ => {}
        }
    }
    numbers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_reads_what_it_writes() {
        let values = [0u32, 1, 2, 3, 7, 8, 254, 255, 8160, 65_535, u32::MAX - 1];
        let signed = [0i32, 1, -1, 2, -2, 1000, -1000];
        let mut w = BitWriter::default();
        for &v in &values {
            w.ue(v);
        }
        for &v in &signed {
            w.se(v);
        }
        w.bits(0x5A5A, 15);
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        for &v in &values {
            assert_eq!(r.ue(), Some(v));
        }
        for &v in &signed {
            assert_eq!(r.se(), Some(v));
        }
        assert_eq!(r.bits(15), Some(0x5A5A & 0x7FFF));
    }

    #[test]
    fn emulation_prevention_goes_in_and_comes_out() {
        let rbsp = [0u8, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 7];
        let mut escaped = Vec::new();
        escape_into(&rbsp, &mut escaped);
        assert_eq!(
            escaped,
            [0, 0, 3, 0, 0, 3, 1, 0, 0, 3, 2, 0, 0, 3, 3, 0, 0, 4, 7]
        );
        assert_eq!(unescape(&escaped), rbsp);
        // No start code can appear inside an escaped payload.
        assert!(!escaped.windows(3).any(|w| w == [0, 0, 1]));
    }

    #[test]
    fn a_skip_slice_says_what_it_should_bit_for_bit() {
        let params = Params {
            log2_max_frame_num: 15,
            macroblocks: 8160,
            pps_id: 0,
            deblocking_control: true,
        };
        let nal = skip_slice(params, 5, 2);
        assert_eq!(&nal[..5], &[0, 0, 0, 1, 0x41]);
        let rbsp = unescape(&nal[5..]);
        let mut r = BitReader::new(&rbsp);
        assert_eq!(r.ue(), Some(0));
        assert_eq!(r.ue(), Some(0));
        assert_eq!(r.ue(), Some(0));
        assert_eq!(r.bits(15), Some(5));
        assert_eq!(r.bits(3), Some(0));
        assert_eq!(r.se(), Some(0));
        assert_eq!(r.ue(), Some(1));
        assert_eq!(r.ue(), Some(8160));
        assert_eq!(r.bit(), Some(true), "the stop bit");
        assert!(
            r.at.div_ceil(8) == rbsp.len(),
            "nothing after the stop bit's byte"
        );
        assert!(nal.len() < 16, "{} bytes", nal.len());
    }

    #[test]
    fn nal_units_are_found_behind_three_and_four_byte_start_codes() {
        let stream = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5,
        ];
        let units: Vec<&[u8]> = nal_units(&stream)
            .into_iter()
            .map(|(s, e)| &stream[s..e])
            .collect();
        assert_eq!(
            units,
            [&[0x67u8, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5][..]]
        );
    }

    #[test]
    fn garbage_is_declined_not_panicked_on() {
        let mut repeater = Repeater::default();
        for unit in [
            vec![],
            vec![0, 0, 1],
            vec![0, 0, 1, 0x67],
            vec![0, 0, 1, 0x67, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            vec![0, 0, 1, 0x41, 0, 0, 0, 0],
            vec![0, 0, 0, 1, 0x68, 0],
        ] {
            assert_eq!(repeater.follow(unit.clone()), unit);
        }
        assert_eq!(repeater.skip_frame(), None);
    }

    #[test]
    fn frame_num_wraps_at_its_maximum() {
        let mut repeater = Repeater {
            sps: Some(Sps {
                log2_max_frame_num: 4,
                macroblocks: 4,
            }),
            pps: Some(Pps {
                id: 0,
                deblocking_control: false,
            }),
            offset: 3,
            last_frame_num: Some(14),
            ref_idc: 2,
        };
        let numbers: Vec<u32> = (0..3)
            .map(|_| {
                let nal = repeater.skip_frame().expect("a skip frame");
                let rbsp = unescape(&nal[5..]);
                read_bits(&rbsp, frame_num_position(&rbsp).expect("header"), 4).expect("number")
            })
            .collect();
        assert_eq!(numbers, [15, 0, 1]);
        assert_eq!(repeater.offset, 6);
    }
}
