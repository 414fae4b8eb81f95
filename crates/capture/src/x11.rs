//! The X11 capturer: the root window or one Composite-redirected window, grabbed into
//! shared memory when Damage says something changed or the cursor moved.

use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::composite::{ConnectionExt as _, Redirect};
use x11rb::protocol::damage::{self, ConnectionExt as _, ReportLevel};
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xfixes::ConnectionExt as _;
use x11rb::protocol::xproto::{
    ChangeWindowAttributesAux, ConnectionExt as _, Drawable, EventMask, ImageFormat, Pixmap, Window,
};
use x11rb::rust_connection::RustConnection;

use crate::cursor::{self, CursorState};
use crate::shm::Segment;
use crate::{Capture, CaptureError, Frame, Source};

/// What an X capturer or locator looks at: the root window or one X window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XSource {
    Desktop,
    Window(Window),
}

impl XSource {
    pub(crate) fn of(source: Source) -> Result<Self, CaptureError> {
        match source {
            Source::Desktop => Ok(XSource::Desktop),
            Source::Window(id) => u32::try_from(id)
                .map(XSource::Window)
                .map_err(|_| CaptureError::NoSuchWindow(id)),
        }
    }
}

pub(crate) fn connect(display: Option<&str>) -> Result<(RustConnection, usize), CaptureError> {
    RustConnection::connect(display).map_err(|e| CaptureError::Connect {
        display: display
            .map(str::to_owned)
            .or_else(|| std::env::var("DISPLAY").ok())
            .unwrap_or_default(),
        reason: e.to_string(),
    })
}

pub struct X11Capturer {
    conn: RustConnection,
    root: Window,
    source: XSource,
    damage: damage::Damage,
    /// Damage reported since the last frame (or nothing captured yet).
    dirty: bool,
    cursor: CursorState,
    width: u16,
    height: u16,
    /// The window's Composite pixmap, named again after every resize.
    pixmap: Option<Pixmap>,
    shm: Option<Segment>,
    fallback: Vec<u8>,
    ended: Option<&'static str>,
}

impl std::fmt::Debug for X11Capturer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X11Capturer")
            .field("source", &self.source)
            .field("size", &(self.width, self.height))
            .field("shared_memory", &self.shm.is_some())
            .finish_non_exhaustive()
    }
}

impl X11Capturer {
    pub fn new(display: Option<&str>, source: Source) -> Result<Self, CaptureError> {
        let source = XSource::of(source)?;
        let (conn, screen) = connect(display)?;
        let root = conn.setup().roots[screen].root;
        conn.damage_query_version(1, 1)?
            .reply()
            .map_err(|_| CaptureError::MissingExtension("DAMAGE"))?;
        conn.xfixes_query_version(5, 0)?
            .reply()
            .map_err(|_| CaptureError::MissingExtension("XFIXES"))?;
        let watched = match source {
            XSource::Desktop => root,
            XSource::Window(window) => {
                conn.composite_query_version(0, 4)?
                    .reply()
                    .map_err(|_| CaptureError::MissingExtension("Composite"))?;
                conn.get_window_attributes(window)?
                    .reply()
                    .map_err(|_| CaptureError::NoSuchWindow(window.into()))?;
                // Rendered off-screen too, so covering windows do not hide its pixels.
                conn.composite_redirect_window(window, Redirect::AUTOMATIC)?;
                window
            }
        };
        let events = ChangeWindowAttributesAux::new().event_mask(EventMask::STRUCTURE_NOTIFY);
        conn.change_window_attributes(watched, &events)?;
        let geometry = conn
            .get_geometry(watched)?
            .reply()
            .map_err(|_| CaptureError::NoSuchWindow(watched.into()))?;
        let damage = conn.generate_id()?;
        conn.damage_create(damage, watched, ReportLevel::NON_EMPTY)?;
        let mut capturer = Self {
            conn,
            root,
            source,
            damage,
            dirty: true,
            cursor: CursorState::default(),
            width: geometry.width,
            height: geometry.height,
            pixmap: None,
            shm: None,
            fallback: Vec::new(),
            ended: None,
        };
        capturer.name_pixmap()?;
        capturer.conn.flush()?;
        Ok(capturer)
    }

    /// The size of the captured area now.
    pub fn size(&self) -> (u32, u32) {
        (u32::from(self.width), u32::from(self.height))
    }

    /// Whether pixels travel through shared memory (fast) or the socket (fallback).
    pub fn uses_shared_memory(&self) -> bool {
        self.shm.is_some()
    }

    /// Take a frame if anything changed since the last one.
    pub fn capture(&mut self) -> Result<Capture<'_>, CaptureError> {
        self.poll_events()?;
        if let Some(reason) = self.ended {
            return Ok(Capture::Ended(reason));
        }
        let pointer = self.conn.xfixes_get_cursor_image()?.reply().ok();
        let cursor = pointer.as_ref().map(CursorState::of).unwrap_or_default();
        if !self.dirty && cursor == self.cursor {
            return Ok(Capture::Unchanged);
        }
        self.dirty = false;
        self.cursor = cursor;
        // Reset Damage before grabbing: whatever changes during the grab is reported again.
        self.conn
            .damage_subtract(self.damage, x11rb::NONE, x11rb::NONE)?;
        let (width, height) = (usize::from(self.width), usize::from(self.height));
        if width == 0 || height == 0 {
            return Ok(Capture::Unchanged);
        }
        let origin = self.origin()?;
        let drawable = self.drawable();
        let Some(stride) = self.grab(drawable, width, height)? else {
            return Ok(Capture::Ended(
                "the shared window is no longer visible (closed or minimized)",
            ));
        };
        let pixels = match &mut self.shm {
            Some(segment) => &mut segment.map[..stride * height],
            None => &mut self.fallback[..stride * height],
        };
        if let Some(pointer) = &pointer {
            cursor::draw(pointer, pixels, width, height, stride, origin);
        }
        Ok(Capture::Frame(Frame {
            width: u32::from(self.width),
            height: u32::from(self.height),
            stride,
            bgra: pixels,
        }))
    }

    fn drawable(&self) -> Drawable {
        match (self.source, self.pixmap) {
            (XSource::Window(_), Some(pixmap)) => pixmap,
            _ => self.root,
        }
    }

    /// Where the captured area's top-left corner is on the screen (for the cursor).
    fn origin(&self) -> Result<(i32, i32), CaptureError> {
        match self.source {
            XSource::Desktop => Ok((0, 0)),
            XSource::Window(window) => {
                let at = self
                    .conn
                    .translate_coordinates(window, self.root, 0, 0)?
                    .reply()?;
                Ok((i32::from(at.dst_x), i32::from(at.dst_y)))
            }
        }
    }

    /// Copy the pixels into shared memory (or the fallback buffer); returns the stride,
    /// or `None` if the drawable went away.
    fn grab(
        &mut self,
        drawable: Drawable,
        width: usize,
        height: usize,
    ) -> Result<Option<usize>, CaptureError> {
        let stride = width * 4;
        let size = stride * height;
        if self.shm.as_ref().is_none_or(|s| s.size < size) {
            if let Some(old) = self.shm.take() {
                old.detach(&self.conn);
            }
            self.shm = Segment::create(&self.conn, size)?;
        }
        let (w, h) = (self.width, self.height);
        if let Some(segment) = &self.shm {
            let reply = self
                .conn
                .shm_get_image(
                    drawable,
                    0,
                    0,
                    w,
                    h,
                    !0,
                    ImageFormat::Z_PIXMAP.into(),
                    segment.id,
                    0,
                )?
                .reply();
            return Ok(reply.ok().map(|_| stride));
        }
        match self
            .conn
            .get_image(ImageFormat::Z_PIXMAP, drawable, 0, 0, w, h, !0)?
            .reply()
        {
            Ok(image) if image.data.len() >= size => {
                self.fallback = image.data;
                Ok(Some(stride))
            }
            _ => Ok(None),
        }
    }

    /// Name the window's off-screen pixmap (again: a resize replaces it).
    fn name_pixmap(&mut self) -> Result<(), CaptureError> {
        let XSource::Window(window) = self.source else {
            return Ok(());
        };
        if let Some(old) = self.pixmap.take() {
            self.conn.free_pixmap(old)?;
        }
        let pixmap = self.conn.generate_id()?;
        self.conn
            .composite_name_window_pixmap(window, pixmap)?
            .check()
            .map_err(|_| CaptureError::NoSuchWindow(window.into()))?;
        self.pixmap = Some(pixmap);
        Ok(())
    }

    fn poll_events(&mut self) -> Result<(), CaptureError> {
        let watched = match self.source {
            XSource::Desktop => self.root,
            XSource::Window(window) => window,
        };
        while let Some(event) = self.conn.poll_for_event()? {
            match event {
                Event::DamageNotify(_) => self.dirty = true,
                Event::ConfigureNotify(e)
                    if e.window == watched && (e.width, e.height) != (self.width, self.height) =>
                {
                    self.width = e.width;
                    self.height = e.height;
                    self.dirty = true;
                    if self.name_pixmap().is_err() {
                        self.ended = Some("the shared window went away while resizing");
                    }
                }
                Event::UnmapNotify(e) if e.window == watched => {
                    self.ended = Some("the shared window was closed or minimized");
                }
                Event::DestroyNotify(e) if e.window == watched => {
                    self.ended = Some("the shared window was closed");
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Drop for X11Capturer {
    fn drop(&mut self) {
        if let Some(segment) = &self.shm {
            segment.detach(&self.conn);
        }
        // Best effort: the server frees everything of ours when the connection closes.
        let _ = self.conn.damage_destroy(self.damage);
        if let Some(pixmap) = self.pixmap {
            let _ = self.conn.free_pixmap(pixmap);
        }
        let _ = self.conn.flush();
    }
}
