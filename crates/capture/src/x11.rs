//! The X11 capturer: the root window or one Composite-redirected window, grabbed into
//! shared memory when Damage says something changed or the cursor moved.
//!
//! It is told of changes rather than looking for them: Damage reports drawing, XInput 2's
//! raw motion reports the pointer moving (a person's or an injected one) and XFixes a new
//! cursor shape, all as events on the X connection. Between changes the capture thread
//! sleeps in `poll(2)` on that connection (`wait_for_change`), so an unchanged screen costs
//! nothing, and a change wakes it at once rather than at the next look.
//!
//! Only the rows that changed are grabbed again: the damage since the last frame is moved
//! into a region (atomically, so nothing drawn meanwhile is lost) whose extent, with where
//! the cursor was drawn and is drawn now, says which rows of the kept picture to refresh.

use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::composite::{ConnectionExt as _, Redirect};
use x11rb::protocol::damage::{self, ConnectionExt as _, ReportLevel};
use x11rb::protocol::randr::{ConnectionExt as _, NotifyMask};
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xfixes::{self, ConnectionExt as _, CursorNotifyMask, GetCursorImageReply};
use x11rb::protocol::xinput::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    ChangeWindowAttributesAux, ConnectionExt as _, Drawable, EventMask, ImageFormat, Pixmap, Window,
};
use x11rb::rust_connection::RustConnection;

use crate::cursor::{self, CursorState, Placed};
use crate::shm::Segment;
use crate::{Area, Capture, CaptureError, Frame, Gone, Source};

/// What an X capturer or locator looks at: the root window, one X window, or one
/// monitor's rectangle of the root window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XSource {
    Desktop,
    Window(Window),
    /// A monitor by its RandR name atom, and its rectangle of the root window.
    Monitor {
        id: u32,
        area: Area,
    },
}

impl XSource {
    pub(crate) fn of(source: Source) -> Result<Self, CaptureError> {
        match source {
            Source::Desktop => Ok(XSource::Desktop),
            Source::Window(id) => u32::try_from(id)
                .map(XSource::Window)
                .map_err(|_| CaptureError::NoSuchWindow(id)),
            Source::Monitor { id, area } => u32::try_from(id)
                .map(|id| XSource::Monitor { id, area })
                .map_err(|_| CaptureError::NoSuchMonitor(area)),
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
    /// Where the damage goes at each frame, to learn which rows changed.
    parts: xfixes::Region,
    /// Damage taken out while looking for news (`wait_for_news`), for the next frame.
    pending: xfixes::Region,
    /// Where the last frame's damage was: the picture's ongoing motion.
    motion: xfixes::Region,
    /// Whether `motion` covers little enough of the picture for news to be told from it
    /// (not after a whole frame, nor over a scrolling page or a video filling much of it).
    motion_known: bool,
    /// When `motion` was taken: older than [`MOTION_FRESH`], nothing moves any more and
    /// any drawing is news (a button hovered, then clicked, is drawn where it was).
    motion_at: Instant,
    /// [`MOTION_FRESH`], unless a test says otherwise.
    motion_fresh: Duration,
    /// A shared monitor's rectangle, in the root's coordinates its damage comes in:
    /// drawing on another monitor is no news for this one.
    bounds: Option<xfixes::Region>,
    /// The damage taken at one look for news.
    probe: xfixes::Region,
    /// The next frame is grabbed whole: the first, after a resize, a new shared memory
    /// segment or a `refresh`.
    whole: bool,
    /// Where the cursor was drawn into the kept picture.
    drawn_cursor: Option<Placed>,
    /// The server reports pointer motion and cursor changes as events (XInput 2.0 and
    /// XFixes); without, the cursor is asked for at every look.
    pointer_events: bool,
    /// The pointer moved or changed shape since it was last asked for.
    pointer_dirty: bool,
    /// The pointer as last asked for: its image is drawn into every frame.
    pointer: Option<GetCursorImageReply>,
    /// When the pointer's place was last checked without an event: a warp
    /// (`XWarpPointer`) moves it without any device's raw motion.
    pointer_checked: Instant,
    cursor: CursorState,
    width: u16,
    height: u16,
    /// The window's Composite pixmap, named again after every resize.
    pixmap: Option<Pixmap>,
    /// The shared window's border: its pixmap holds the border too, and its contents
    /// (and damage) start this far in.
    border: u16,
    shm: Option<Segment>,
    fallback: Vec<u8>,
    ended: Option<Gone>,
    /// For a monitor share: when the monitor was last seen where it was (`None`: look at
    /// the next capture).
    monitor_checked: Option<Instant>,
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
            XSource::Desktop | XSource::Monitor { .. } => root,
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
        let (width, height) = match source {
            XSource::Monitor { id, area } => {
                if !fits(area, geometry.width, geometry.height)
                    || !crate::windows::monitor_still(&conn, root, id, area)?
                {
                    return Err(CaptureError::NoSuchMonitor(area));
                }
                // Told when outputs and monitors change (checked once a second besides).
                conn.randr_select_input(
                    root,
                    NotifyMask::SCREEN_CHANGE | NotifyMask::CRTC_CHANGE | NotifyMask::OUTPUT_CHANGE,
                )?;
                // `fits` checked that both are within the root's u16 size.
                (area.width as u16, area.height as u16)
            }
            _ => (geometry.width, geometry.height),
        };
        let damage = conn.generate_id()?;
        conn.damage_create(damage, watched, ReportLevel::NON_EMPTY)?;
        let [parts, pending, motion, probe] = [(); 4].map(|()| conn.generate_id());
        let (parts, pending, motion, probe) = (parts?, pending?, motion?, probe?);
        for region in [parts, pending, motion, probe] {
            conn.xfixes_create_region(region, &[])?;
        }
        let bounds = match source {
            XSource::Monitor { area, .. } => {
                let bounds = conn.generate_id()?;
                let rectangle = x11rb::protocol::xproto::Rectangle {
                    x: i16::try_from(area.x).unwrap_or(i16::MAX),
                    y: i16::try_from(area.y).unwrap_or(i16::MAX),
                    width,
                    height,
                };
                conn.xfixes_create_region(bounds, &[rectangle])?;
                Some(bounds)
            }
            _ => None,
        };
        let pointer_events = watch_pointer(&conn, root)?;
        let mut capturer = Self {
            conn,
            root,
            source,
            damage,
            dirty: true,
            parts,
            pending,
            motion,
            motion_known: false,
            motion_at: Instant::now(),
            motion_fresh: MOTION_FRESH,
            bounds,
            probe,
            whole: true,
            drawn_cursor: None,
            pointer_events,
            pointer_dirty: true,
            pointer: None,
            pointer_checked: Instant::now(),
            cursor: CursorState::default(),
            width,
            height,
            pixmap: None,
            border: match source {
                XSource::Window(_) => geometry.border_width,
                _ => 0,
            },
            shm: None,
            fallback: Vec::new(),
            ended: None,
            monitor_checked: Some(Instant::now()),
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

    /// Whether the server tells of pointer motion (so `wait_for_change` can sleep until
    /// something happens).
    pub fn event_driven(&self) -> bool {
        self.pointer_events
    }

    /// Sleep until the X server reports a change (drawing, pointer motion, a new cursor, a
    /// resize), or `at_most` has passed.
    pub fn wait_for_change(&mut self, at_most: Duration) -> Result<(), CaptureError> {
        self.poll_events()?;
        if self.dirty || self.pointer_dirty || self.ended.is_some() {
            return Ok(());
        }
        if !self.pointer_events {
            std::thread::sleep(crate::POLL.min(at_most));
            return Ok(());
        }
        self.conn.flush()?;
        wait_readable(self.conn.stream(), at_most);
        Ok(())
    }

    /// Wait, up to `at_most`, for news: drawing outside where the last frame's damage was
    /// (the answer to a click over a screen where a clock or an animation runs), or any
    /// drawing on a still screen. `Some(true)` when it came (or the next frame is whole
    /// anyway), `Some(false)` when the time ran out, `None` when the picture moves over
    /// too much of itself to tell, or was last grabbed whole: the caller looks on its own
    /// schedule.
    pub fn wait_for_news(&mut self, at_most: Duration) -> Result<Option<bool>, CaptureError> {
        if !self.motion_known {
            return Ok(None);
        }
        let deadline = Instant::now() + at_most;
        if self.motion_at.elapsed() > self.motion_fresh {
            self.conn.xfixes_set_region(self.motion, &[])?;
        }
        loop {
            self.poll_events()?;
            if self.whole || self.ended.is_some() {
                return Ok(Some(true));
            }
            // Take what was drawn since the last look (the next frame gets it from
            // `pending`), and keep what lies outside the motion.
            self.conn
                .damage_subtract(self.damage, x11rb::NONE, self.probe)?;
            self.conn
                .xfixes_union_region(self.pending, self.probe, self.pending)?;
            self.conn
                .xfixes_subtract_region(self.probe, self.motion, self.probe)?;
            if let Some(bounds) = self.bounds {
                self.conn
                    .xfixes_intersect_region(self.probe, bounds, self.probe)?;
            }
            let news = self.conn.xfixes_fetch_region(self.probe)?.reply()?.extents;
            if news.width > 0 && news.height > 0 {
                self.dirty = true;
                return Ok(Some(true));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Some(false));
            }
            // The next drawing sends a DamageNotify (the damage is empty again); events
            // the reply above brought in are already read, so look at least every
            // millisecond.
            self.conn.flush()?;
            wait_readable(self.conn.stream(), left.min(NEWS_STEP));
        }
    }

    /// How long the last frame's damage counts as motion (tests on a loaded machine).
    #[doc(hidden)]
    pub fn set_motion_fresh(&mut self, fresh: Duration) {
        self.motion_fresh = fresh;
    }

    /// Hand out the whole picture at the next capture, changed or not.
    pub fn refresh(&mut self) {
        self.dirty = true;
        self.whole = true;
    }

    /// Take a frame if anything changed since the last one.
    pub fn capture(&mut self) -> Result<Capture<'_>, CaptureError> {
        self.poll_events()?;
        if let XSource::Monitor { id, area } = self.source
            && self
                .monitor_checked
                .is_none_or(|at| at.elapsed() >= MONITOR_CHECK)
        {
            self.monitor_checked = Some(Instant::now());
            if !crate::windows::monitor_still(&self.conn, self.root, id, area)? {
                self.ended = Some(Gone::MonitorDisconnected);
            }
        }
        if let Some(reason) = self.ended {
            return Ok(Capture::Ended(reason));
        }
        if self.pointer_events
            && !self.pointer_dirty
            && self.pointer_checked.elapsed() >= WARP_CHECK
        {
            self.pointer_checked = Instant::now();
            let at = self.conn.query_pointer(self.root)?.reply().ok();
            self.pointer_dirty = match (&self.pointer, at) {
                (Some(p), Some(at)) => (p.x, p.y) != (at.root_x, at.root_y),
                _ => true,
            };
        }
        if self.pointer_dirty || !self.pointer_events {
            // Cleared before asking: motion after the request is reported again.
            self.pointer_dirty = false;
            self.pointer = self.conn.xfixes_get_cursor_image()?.reply().ok();
        }
        let cursor = self
            .pointer
            .as_ref()
            .map(CursorState::of)
            .unwrap_or_default();
        if !self.dirty && cursor == self.cursor {
            return Ok(Capture::Unchanged);
        }
        self.dirty = false;
        self.cursor = cursor;
        // Until a frame is handed out, the next one is whole: an error on the way loses
        // the damage taken below.
        let whole = std::mem::replace(&mut self.whole, true);
        // Take the damage before grabbing: whatever changes during the grab is reported
        // again, and what changed before it is in `parts`.
        self.conn
            .damage_subtract(self.damage, x11rb::NONE, self.parts)?;
        // With what looking for news took out since the last frame.
        self.conn
            .xfixes_union_region(self.parts, self.pending, self.parts)?;
        self.conn.xfixes_set_region(self.pending, &[])?;
        let (width, height) = (usize::from(self.width), usize::from(self.height));
        if width == 0 || height == 0 {
            return Ok(Capture::Unchanged);
        }
        let origin = self.origin()?;
        let size = width * 4 * height;
        let whole = whole || self.shm.as_ref().is_none_or(|s| s.size < size);
        let damaged = if whole {
            self.motion_known = false;
            None
        } else {
            let (rows, covered) = self.damaged_rows(height)?;
            // This frame's damage is the motion news is told from until the next.
            self.conn.xfixes_copy_region(self.parts, self.motion)?;
            self.motion_at = Instant::now();
            self.motion_known = covered * MOTION_SHARE <= width * height;
            rows
        };
        let cursor_now = self
            .pointer
            .as_ref()
            .and_then(|p| Placed::of(p, height, origin));
        // The cursor is drawn again, over freshly grabbed rows, where it was and where it
        // is, when it moved or changed (or the window under it moved), and when drawing
        // reached its rows; otherwise its blend in the kept picture stays as it is.
        let redraw = whole
            || cursor_now != self.drawn_cursor
            || overlap(damaged, self.drawn_cursor.map(|c| c.rows));
        let rows = if whole {
            None
        } else {
            let cursor_rows = if redraw {
                union(
                    self.drawn_cursor.map(|c| c.rows),
                    cursor_now.map(|c| c.rows),
                )
            } else {
                None
            };
            match union(damaged, cursor_rows) {
                Some(rows) => Some(rows),
                // Drawing outside the shared monitor, say.
                None => {
                    self.whole = false;
                    return Ok(Capture::Unchanged);
                }
            }
        };
        let drawable = self.drawable();
        let Some(stride) = self.grab(drawable, width, height, rows)? else {
            return Ok(Capture::Ended(match self.source {
                XSource::Monitor { .. } => Gone::MonitorDisconnected,
                _ => Gone::WindowClosedOrMinimized,
            }));
        };
        self.whole = false;
        let pixels = match &mut self.shm {
            Some(segment) => &mut segment.map[..stride * height],
            None => &mut self.fallback[..stride * height],
        };
        if redraw {
            self.drawn_cursor = None;
            if let Some(pointer) = &self.pointer {
                cursor::draw(pointer, pixels, width, height, stride, origin);
                self.drawn_cursor = cursor_now;
            }
        }
        Ok(Capture::Frame(Frame {
            width: u32::from(self.width),
            height: u32::from(self.height),
            stride,
            bgra: pixels,
            changed_rows: rows.map(|(top, bottom)| (top as u32, bottom as u32)),
        }))
    }

    /// The rows of the captured area that the damage taken into `parts` touches, and how
    /// many pixels it covers.
    fn damaged_rows(&self, height: usize) -> Result<(Option<(usize, usize)>, usize), CaptureError> {
        let region = self.conn.xfixes_fetch_region(self.parts)?.reply()?;
        // A region's rectangles do not overlap; a monitor's count only within it.
        let (left, top, right, bottom) = match self.source {
            XSource::Monitor { area, .. } => (
                area.x,
                area.y,
                area.x + i32::from(self.width),
                area.y + i32::from(self.height),
            ),
            _ => (0, 0, i32::MAX, i32::MAX),
        };
        let covered = region
            .rectangles
            .iter()
            .map(|r| {
                let (x0, y0) = (i32::from(r.x).max(left), i32::from(r.y).max(top));
                let x1 = (i32::from(r.x) + i32::from(r.width)).min(right);
                let y1 = (i32::from(r.y) + i32::from(r.height)).min(bottom);
                usize::try_from(x1 - x0).unwrap_or(0) * usize::try_from(y1 - y0).unwrap_or(0)
            })
            .sum();
        let extents = region.extents;
        if extents.width == 0 || extents.height == 0 {
            return Ok((None, covered));
        }
        // The damage is in the watched window's coordinates: the root's for a monitor.
        let top = match self.source {
            XSource::Monitor { area, .. } => i32::from(extents.y) - area.y,
            _ => i32::from(extents.y),
        };
        let clamp = |y: i32| usize::try_from(y.max(0)).unwrap_or(0).min(height);
        let (top, bottom) = (clamp(top), clamp(top + i32::from(extents.height)));
        Ok(((bottom > top).then_some((top, bottom)), covered))
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
            XSource::Monitor { area, .. } => Ok((area.x, area.y)),
            XSource::Window(window) => {
                let at = self
                    .conn
                    .translate_coordinates(window, self.root, 0, 0)?
                    .reply()?;
                Ok((i32::from(at.dst_x), i32::from(at.dst_y)))
            }
        }
    }

    /// Copy the pixels into shared memory (or the fallback buffer): all of them, or only
    /// `rows` into the picture kept there. Returns the stride, or `None` if the drawable
    /// went away.
    fn grab(
        &mut self,
        drawable: Drawable,
        width: usize,
        height: usize,
        rows: Option<(usize, usize)>,
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
        // A monitor is its rectangle of the root window; `fits` keeps it inside.
        let (x, y) = match self.source {
            XSource::Monitor { area, .. } => (
                i16::try_from(area.x).unwrap_or(i16::MAX),
                i16::try_from(area.y).unwrap_or(i16::MAX),
            ),
            XSource::Window(_) => {
                let border = i16::try_from(self.border).unwrap_or(0);
                (border, border)
            }
            XSource::Desktop => (0, 0),
        };
        if let Some(segment) = &self.shm {
            // `rows` lie within the area (`damaged_rows` and `Placed::of` clamp them).
            let (top, bottom) = rows.unwrap_or((0, height));
            let row = |r: usize| u16::try_from(r).unwrap_or(u16::MAX);
            let reply = self
                .conn
                .shm_get_image(
                    drawable,
                    x,
                    y.saturating_add_unsigned(row(top)),
                    w,
                    row(bottom - top),
                    !0,
                    ImageFormat::Z_PIXMAP.into(),
                    segment.id,
                    u32::try_from(top * stride).unwrap_or(0),
                )?
                .reply();
            return Ok(reply.ok().map(|_| stride));
        }
        match self
            .conn
            .get_image(ImageFormat::Z_PIXMAP, drawable, x, y, w, h, !0)?
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
            XSource::Desktop | XSource::Monitor { .. } => self.root,
            XSource::Window(window) => window,
        };
        while let Some(event) = self.conn.poll_for_event()? {
            match event {
                Event::DamageNotify(_) => self.dirty = true,
                Event::XinputRawMotion(_) | Event::XfixesCursorNotify(_) => {
                    self.pointer_dirty = true;
                }
                // A monitor keeps its size; the screen shrinking away from it ends it.
                Event::RandrScreenChangeNotify(_) | Event::RandrNotify(_) => {
                    self.monitor_checked = None;
                }
                Event::ConfigureNotify(e) if e.window == watched => {
                    if let XSource::Monitor { area, .. } = self.source {
                        self.monitor_checked = None;
                        if !fits(area, e.width, e.height) {
                            self.ended = Some(Gone::MonitorDisconnected);
                        }
                    } else if (e.width, e.height, e.border_width)
                        != (self.width, self.height, self.border)
                    {
                        self.border = e.border_width;
                        self.width = e.width;
                        self.height = e.height;
                        self.dirty = true;
                        self.whole = true;
                        if self.name_pixmap().is_err() {
                            self.ended = Some(Gone::WindowLostInResize);
                        }
                    }
                }
                Event::UnmapNotify(e) if e.window == watched => {
                    self.ended = Some(Gone::WindowClosedOrMinimized);
                }
                Event::DestroyNotify(e) if e.window == watched => {
                    self.ended = Some(Gone::WindowClosed);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The last frame's damage counts as ongoing motion news can be told from while it covers
/// at most 1/MOTION_SHARE of the picture: over more (a page scrolled, a video), the answer
/// to a click is likely drawn where the motion is.
const MOTION_SHARE: usize = 4;

/// The last frame's damage is the picture's motion for this long; after, the picture is
/// still and any drawing is news.
const MOTION_FRESH: Duration = Duration::from_millis(100);

/// How long `wait_for_news` sleeps between looks at most.
const NEWS_STEP: Duration = Duration::from_millis(1);

/// How often a shared monitor is looked for again without an event saying it changed.
const MONITOR_CHECK: Duration = Duration::from_secs(1);

/// Whether `area` lies within a screen of `width` × `height`, and is not empty.
pub(crate) fn fits(area: Area, width: u16, height: u16) -> bool {
    // X addresses pixels with 16-bit signed coordinates.
    i16::try_from(area.x).is_ok_and(|x| x >= 0)
        && i16::try_from(area.y).is_ok_and(|y| y >= 0)
        && area.width > 0
        && area.height > 0
        && i64::from(area.x) + i64::from(area.width) <= i64::from(width)
        && i64::from(area.y) + i64::from(area.height) <= i64::from(height)
}

/// How often the pointer's place is checked when no event said it moved: only a warp
/// moves it silently, and a warped pointer is shown this late at most.
const WARP_CHECK: Duration = Duration::from_millis(50);

/// Ask the server to report pointer motion (XInput 2.1 raw motion, from every device, the
/// XTEST one that injected input goes through included) and cursor shape changes (XFixes)
/// on `root`. `false` when the server has no XInput 2.1: the pointer is then asked for.
fn watch_pointer(conn: &RustConnection, root: Window) -> Result<bool, CaptureError> {
    conn.xfixes_select_cursor_input(root, CursorNotifyMask::DISPLAY_CURSOR)?;
    // Raw events reach a client that is not grabbing the device only from XInput 2.1 on,
    // and the server goes by the version the client says it speaks.
    let xi2 = conn
        .xinput_xi_query_version(2, 2)
        .ok()
        .and_then(|cookie| cookie.reply().ok())
        .is_some_and(|v| (v.major_version, v.minor_version) >= (2, 1));
    if !xi2 {
        return Ok(false);
    }
    let motion = xinput::EventMask {
        deviceid: xinput::Device::ALL.into(),
        mask: vec![xinput::XIEventMask::RAW_MOTION],
    };
    Ok(conn
        .xinput_xi_select_events(root, &[motion])?
        .check()
        .is_ok())
}

/// Block until `stream` has something to read or `timeout` passes.
fn wait_readable(stream: &impl std::os::fd::AsRawFd, timeout: Duration) {
    let mut fd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // poll(2) on one descriptor this connection owns, for the length of the call; an
    // interruption or error only ends the wait early, and the caller looks again.
    #[allow(unsafe_code)]
    // SAFETY: `fd` is one valid, initialised pollfd that outlives the call, and nfds is 1.
    unsafe {
        libc::poll(&raw mut fd, 1, ms);
    }
}

impl Drop for X11Capturer {
    fn drop(&mut self) {
        if let Some(segment) = &self.shm {
            segment.detach(&self.conn);
        }
        // Best effort: the server frees everything of ours when the connection closes.
        let _ = self.conn.damage_destroy(self.damage);
        for region in [self.parts, self.pending, self.motion, self.probe]
            .into_iter()
            .chain(self.bounds)
        {
            let _ = self.conn.xfixes_destroy_region(region);
        }
        if let Some(pixmap) = self.pixmap {
            let _ = self.conn.free_pixmap(pixmap);
        }
        let _ = self.conn.flush();
    }
}

/// The rows both spans cover, and those between.
fn union(a: Option<(usize, usize)>, b: Option<(usize, usize)>) -> Option<(usize, usize)> {
    match (a, b) {
        (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
        (one, None) | (None, one) => one,
    }
}

/// Whether two spans of rows share a row.
fn overlap(a: Option<(usize, usize)>, b: Option<(usize, usize)>) -> bool {
    matches!((a, b), (Some((a0, a1)), Some((b0, b1))) if a0 < b1 && b0 < a1)
}
