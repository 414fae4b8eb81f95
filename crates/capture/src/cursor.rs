//! The pointer, drawn into captured frames (XFixes gives its image and position).

use x11rb::protocol::xfixes::GetCursorImageReply;

/// Where and what the cursor is, to notice when it moved or changed shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CursorState {
    pub x: i16,
    pub y: i16,
    pub serial: u32,
}

impl CursorState {
    pub fn of(reply: &GetCursorImageReply) -> Self {
        Self {
            x: reply.x,
            y: reply.y,
            serial: reply.cursor_serial,
        }
    }
}

/// Where the cursor is drawn into a frame: its top-left corner in the frame, its image,
/// and the rows it covers (`None` from [`Placed::of`] if it is above or below the frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub left: i32,
    pub top: i32,
    pub serial: u32,
    pub rows: (usize, usize),
}

impl Placed {
    /// Where `cursor` goes in a frame `height` rows high whose top-left corner is at
    /// `origin` on the screen.
    pub fn of(cursor: &GetCursorImageReply, height: usize, origin: (i32, i32)) -> Option<Self> {
        let left = i32::from(cursor.x) - i32::from(cursor.xhot) - origin.0;
        let top = i32::from(cursor.y) - i32::from(cursor.yhot) - origin.1;
        let clamp = |y: i32| usize::try_from(y.max(0)).unwrap_or(0).min(height);
        let rows = (clamp(top), clamp(top + i32::from(cursor.height)));
        (rows.1 > rows.0).then_some(Self {
            left,
            top,
            serial: cursor.cursor_serial,
            rows,
        })
    }
}

/// Blend the cursor (premultiplied ARGB) into a BGRA frame whose top-left corner is at
/// (`origin_x`, `origin_y`) on the screen.
pub fn draw(
    cursor: &GetCursorImageReply,
    frame: &mut [u8],
    width: usize,
    height: usize,
    stride: usize,
    origin: (i32, i32),
) {
    let (cw, ch) = (usize::from(cursor.width), usize::from(cursor.height));
    let left = i32::from(cursor.x) - i32::from(cursor.xhot) - origin.0;
    let top = i32::from(cursor.y) - i32::from(cursor.yhot) - origin.1;
    for cy in 0..ch {
        let y = top + cy as i32;
        if y < 0 || y >= height as i32 {
            continue;
        }
        for cx in 0..cw {
            let x = left + cx as i32;
            if x < 0 || x >= width as i32 {
                continue;
            }
            let Some(&argb) = cursor.cursor_image.get(cy * cw + cx) else {
                return;
            };
            let alpha = argb >> 24;
            if alpha == 0 {
                continue;
            }
            let at = y as usize * stride + x as usize * 4;
            let Some(px) = frame.get_mut(at..at + 3) else {
                continue;
            };
            for (channel, shift) in px.iter_mut().zip([0u32, 8, 16]) {
                let src = (argb >> shift) & 0xff;
                let dst = u32::from(*channel);
                *channel = (src + dst * (255 - alpha) / 255).min(255) as u8;
            }
        }
    }
}
