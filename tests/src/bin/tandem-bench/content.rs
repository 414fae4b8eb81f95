//! What the bench shows on Xvfb, drawn by this binary in a process of its own (so its
//! cost is not counted as the agent's): `tandem-bench content --display :N --kind K`.
//!
//! - `office`: a page of text with someone typing ten characters a second;
//! - `scroll`: a page of text scrolling up four pixels a frame;
//! - `video`: ffmpeg's `testsrc2` at 30 fps, full motion;
//! - `clock`: the current time in milliseconds as 36 black or white blocks at the top
//!   left (for glass-to-glass latency), and a square in the middle that turns black or
//!   white on every click (for click-to-photon);
//! - `static`: a page of text that never changes (for the idle figures).

use std::io::Read;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use x11rb::connection::{Connection, RequestConnection as _};
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    ChangeGCAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, EventMask, Gcontext,
    ImageFormat, Rectangle, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;

/// Clock blocks: the low 36 bits of the time in ms (wraps every 795 days), each a 16×16
/// block, from (0, 0) rightwards: 576 pixels, so it fits the smallest screen measured.
pub const CLOCK_BITS: u32 = 36;
pub const CLOCK_BLOCK: u32 = 16;
/// The click square: this size, centred on the screen.
pub const SQUARE: u16 = 120;

const WHITE: u32 = 0xffffff;
const BLACK: u32 = 0x000000;
const INK: u32 = 0x202020;

struct Canvas {
    conn: RustConnection,
    window: Window,
    gc: Gcontext,
    width: u16,
    height: u16,
}

impl Canvas {
    fn open(display: &str) -> anyhow::Result<Self> {
        Self::open_sized(display, None)
    }

    /// A window over the whole screen, or of this size at its top-left corner (above
    /// whatever is there already).
    fn open_sized(display: &str, size: Option<(u16, u16)>) -> anyhow::Result<Self> {
        let (conn, n) = RustConnection::connect(Some(display))
            .with_context(|| format!("cannot open {display}"))?;
        let screen = &conn.setup().roots[n];
        let root = screen.root;
        let (width, height) = size.unwrap_or((screen.width_in_pixels, screen.height_in_pixels));
        let window = conn.generate_id()?;
        conn.create_window(
            0,
            window,
            root,
            0,
            0,
            width,
            height,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &CreateWindowAux::new()
                .background_pixel(WHITE)
                .override_redirect(u32::from(size.is_some())),
        )?;
        conn.map_window(window)?;
        let gc = conn.generate_id()?;
        conn.create_gc(gc, window, &CreateGCAux::new().foreground(INK))?;
        conn.flush()?;
        Ok(Self {
            conn,
            window,
            gc,
            width,
            height,
        })
    }

    fn fill(&self, rgb: u32, rects: &[Rectangle]) -> anyhow::Result<()> {
        self.conn
            .change_gc(self.gc, &ChangeGCAux::new().foreground(rgb))?;
        self.conn.poly_fill_rectangle(self.window, self.gc, rects)?;
        Ok(())
    }

    /// One line of "words": blocks of 8×14 glyphs with gaps, at row `y`.
    fn text_line(&self, y: i16, seed: u32) -> anyhow::Result<()> {
        let mut rects = Vec::new();
        let mut x = 40i16;
        let mut s = seed.wrapping_mul(2_654_435_761) | 1;
        while x < self.width as i16 - 120 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let word = 2 + (s % 9) as i16;
            for _ in 0..word {
                rects.push(Rectangle {
                    x,
                    y,
                    width: 7,
                    height: 12,
                });
                x += 9;
            }
            x += 9;
        }
        self.fill(INK, &rects)
    }

    fn page(&self) -> anyhow::Result<()> {
        let mut y = 40i16;
        let mut n = 0;
        while y < self.height as i16 - 40 {
            self.text_line(y, n)?;
            y += 20;
            n += 1;
        }
        self.conn.flush()?;
        Ok(())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn run(display: &str, kind: &str) -> anyhow::Result<()> {
    if kind == "clock-strip" {
        return clock_strip(display);
    }
    let canvas = Canvas::open(display)?;
    match kind {
        "static" => {
            canvas.page()?;
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        "office" => office(&canvas),
        "scroll" => scroll(&canvas),
        "video" => video(&canvas),
        "clock" => clock(&canvas),
        other => anyhow::bail!("unknown content {other:?}"),
    }
}

/// Only the clock code, in a strip at the top-left corner over whatever else runs (e.g.
/// `video`, which loads the link but carries no clock).
fn clock_strip(display: &str) -> anyhow::Result<()> {
    let c = Canvas::open_sized(
        display,
        Some(((CLOCK_BITS * CLOCK_BLOCK) as u16, CLOCK_BLOCK as u16)),
    )?;
    let mut last = 0u64;
    loop {
        let ms = now_ms();
        if ms != last {
            last = ms;
            draw_clock(&c, ms)?;
            // Stay above a full-screen window mapped later.
            c.conn.configure_window(
                c.window,
                &x11rb::protocol::xproto::ConfigureWindowAux::new()
                    .stack_mode(x11rb::protocol::xproto::StackMode::ABOVE),
            )?;
            c.conn.flush()?;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// The clock code of `ms`: CLOCK_BITS blocks along the window's top, white for a one.
fn draw_clock(c: &Canvas, ms: u64) -> anyhow::Result<()> {
    let block = |bit: u32| Rectangle {
        x: (bit * CLOCK_BLOCK) as i16,
        y: 0,
        width: CLOCK_BLOCK as u16,
        height: CLOCK_BLOCK as u16,
    };
    let (ones, zeros): (Vec<u32>, Vec<u32>) = (0..CLOCK_BITS).partition(|bit| ms >> bit & 1 == 1);
    c.fill(WHITE, &ones.into_iter().map(block).collect::<Vec<_>>())?;
    c.fill(BLACK, &zeros.into_iter().map(block).collect::<Vec<_>>())?;
    Ok(())
}

fn office(c: &Canvas) -> anyhow::Result<()> {
    c.page()?;
    // Typing: a new glyph every 100 ms on a fresh line near the bottom.
    let (mut x, mut y) = (40i16, c.height as i16 - 30);
    c.fill(
        WHITE,
        &[Rectangle {
            x: 0,
            y: y - 4,
            width: c.width,
            height: 24,
        }],
    )?;
    loop {
        c.fill(
            INK,
            &[Rectangle {
                x,
                y,
                width: 7,
                height: 12,
            }],
        )?;
        c.conn.flush()?;
        x += 9;
        if x > c.width as i16 - 60 {
            x = 40;
            c.fill(
                WHITE,
                &[Rectangle {
                    x: 0,
                    y: y - 4,
                    width: c.width,
                    height: 24,
                }],
            )?;
        }
        let _ = &mut y;
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn scroll(c: &Canvas) -> anyhow::Result<()> {
    c.page()?;
    let step = 4i16;
    let mut line = 0u32;
    let mut frame = 0u32;
    let (w, h) = (c.width, c.height as i16);
    loop {
        let started = Instant::now();
        c.conn.copy_area(
            c.window,
            c.window,
            c.gc,
            0,
            step,
            0,
            0,
            w,
            (h - step) as u16,
        )?;
        c.fill(
            WHITE,
            &[Rectangle {
                x: 0,
                y: h - step,
                width: w,
                height: step as u16,
            }],
        )?;
        frame += 1;
        if frame % 5 == 0 {
            line += 1;
            c.text_line(h - 16, line)?;
        }
        c.conn.flush()?;
        std::thread::sleep(Duration::from_millis(33).saturating_sub(started.elapsed()));
    }
}

fn video(c: &Canvas) -> anyhow::Result<()> {
    let (w, h) = (usize::from(c.width), usize::from(c.height));
    let mut ffmpeg = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc2=size={w}x{h}:rate=30"))
        .args(["-f", "rawvideo", "-pix_fmt", "bgr0", "-"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("ffmpeg runs (Debian package ffmpeg; cargo xtask bench installs it)")?;
    let mut out = ffmpeg.stdout.take().context("ffmpeg's output")?;
    let mut frame = vec![0u8; w * h * 4];
    // Strips that fit in one X request.
    let rows = (c.conn.maximum_request_bytes().saturating_sub(64) / (w * 4)).clamp(1, h);
    loop {
        out.read_exact(&mut frame)?;
        for top in (0..h).step_by(rows) {
            let n = rows.min(h - top);
            c.conn.put_image(
                ImageFormat::Z_PIXMAP,
                c.window,
                c.gc,
                w as u16,
                n as u16,
                0,
                top as i16,
                0,
                24,
                &frame[top * w * 4..(top + n) * w * 4],
            )?;
        }
        c.conn.flush()?;
    }
}

fn clock(c: &Canvas) -> anyhow::Result<()> {
    c.page()?;
    let square = c.conn.generate_id()?;
    let (sx, sy) = (
        (c.width / 2 - SQUARE / 2) as i16,
        (c.height / 2 - SQUARE / 2) as i16,
    );
    c.conn.create_window(
        0,
        square,
        c.window,
        sx,
        sy,
        SQUARE,
        SQUARE,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new()
            .background_pixel(BLACK)
            .event_mask(EventMask::BUTTON_PRESS),
    )?;
    c.conn.map_window(square)?;
    c.conn.flush()?;
    let mut dark = true;
    let mut last = 0u64;
    loop {
        while let Some(event) = c.conn.poll_for_event()? {
            if let Event::ButtonPress(_) = event {
                dark = !dark;
                let rgb = if dark { BLACK } else { WHITE };
                c.conn.change_window_attributes(
                    square,
                    &x11rb::protocol::xproto::ChangeWindowAttributesAux::new()
                        .background_pixel(rgb),
                )?;
                c.conn.clear_area(false, square, 0, 0, 0, 0)?;
                c.conn.flush()?;
            }
        }
        let ms = now_ms();
        if ms != last {
            last = ms;
            draw_clock(c, ms)?;
            c.conn.flush()?;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}
