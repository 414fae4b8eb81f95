//! Where a point of the shared surface is on the screen, for remote input (C1, §5): the
//! agent injects only inside what is shared. For a window share the point must be the
//! window's own visible pixel, not a window covering it.

use std::cell::Cell;
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, Window};
use x11rb::rust_connection::RustConnection;

use crate::Source;
use crate::x11::{XSource, connect};
use crate::{Area, CaptureError};

/// Maps normalised surface coordinates to screen pixels, with its own X connection.
pub struct Locator {
    conn: RustConnection,
    root: Window,
    source: XSource,
    /// For a monitor: when it was last looked for, and whether it was still there.
    monitor_seen: Cell<Option<(Instant, bool)>>,
}

impl std::fmt::Debug for Locator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locator")
            .field("source", &self.source)
            .finish()
    }
}

impl Locator {
    pub fn new(display: Option<&str>, source: Source) -> Result<Self, CaptureError> {
        let source = XSource::of(source)?;
        let (conn, screen) = connect(display)?;
        let root = conn.setup().roots[screen].root;
        Ok(Self {
            conn,
            root,
            source,
            monitor_seen: Cell::new(None),
        })
    }

    /// Whether the shared monitor is still where it was (asked at most every 250 ms: input
    /// comes many times a second).
    fn monitor_still(&self, id: u32, area: crate::Area) -> bool {
        if let Some((at, there)) = self.monitor_seen.get()
            && at.elapsed() < MONITOR_RECHECK
        {
            return there;
        }
        let there = self
            .conn
            .get_geometry(self.root)
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some_and(|screen| crate::x11::fits(area, screen.width, screen.height))
            && crate::windows::monitor_still(&self.conn, self.root, id, area).unwrap_or(false);
        self.monitor_seen.set(Some((Instant::now(), there)));
        there
    }

    /// The screen pixel at (x, y) in 0..=1 of the shared surface (as encoded: even
    /// width and height), or `None` when the point is not the shared surface's own pixel.
    pub fn locate(&self, x: f64, y: f64) -> Option<(i32, i32)> {
        let window = match self.source {
            XSource::Desktop => self.root,
            XSource::Window(id) => id,
            XSource::Monitor { id, area } => {
                return self
                    .monitor_still(id, area)
                    .then(|| area.point(x, y))
                    .flatten();
            }
        };
        let geometry = self.conn.get_geometry(window).ok()?.reply().ok()?;
        let (w, h) = (
            i32::from(geometry.width) & !1,
            i32::from(geometry.height) & !1,
        );
        if w == 0 || h == 0 {
            return None;
        }
        let px = ((x * f64::from(w)) as i32).clamp(0, w - 1);
        let py = ((y * f64::from(h)) as i32).clamp(0, h - 1);
        if window == self.root {
            return Some((px, py));
        }
        let origin = self
            .conn
            .translate_coordinates(window, self.root, 0, 0)
            .ok()?
            .reply()
            .ok()?;
        let (sx, sy) = (i32::from(origin.dst_x) + px, i32::from(origin.dst_y) + py);
        // The top-level window under that point must be the shared window or contain it
        // (a window manager's frame).
        let at = self
            .conn
            .translate_coordinates(
                self.root,
                self.root,
                i16::try_from(sx).ok()?,
                i16::try_from(sy).ok()?,
            )
            .ok()?
            .reply()
            .ok()?;
        let mut w = window;
        loop {
            if w == at.child {
                return Some((sx, sy));
            }
            let tree = self.conn.query_tree(w).ok()?.reply().ok()?;
            if tree.parent == self.root || tree.parent == x11rb::NONE {
                return None;
            }
            w = tree.parent;
        }
    }
}

/// How long a look at the shared monitor holds for input.
const MONITOR_RECHECK: Duration = Duration::from_millis(250);

/// `PointerRoot` as a focus: keys go to the window under the pointer.
const POINTER_ROOT: Window = 1;

/// Where windows' client areas (their content, without a window manager's frame) are on
/// the screen: the agent's own window tells the input shield where it is with this.
pub struct ClientAreas {
    conn: RustConnection,
    root: Window,
}

impl std::fmt::Debug for ClientAreas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAreas").finish_non_exhaustive()
    }
}

impl ClientAreas {
    pub fn new(display: Option<&str>) -> Result<Self, CaptureError> {
        let (conn, screen) = connect(display)?;
        let root = conn.setup().roots[screen].root;
        Ok(Self { conn, root })
    }

    /// The client area of the X window `id` in screen pixels, or `None` when it is gone.
    pub fn of(&self, id: u64) -> Option<Area> {
        let window = u32::try_from(id).ok()?;
        let geometry = self.conn.get_geometry(window).ok()?.reply().ok()?;
        let origin = self
            .conn
            .translate_coordinates(window, self.root, 0, 0)
            .ok()?
            .reply()
            .ok()?;
        Some(Area {
            x: origin.dst_x.into(),
            y: origin.dst_y.into(),
            width: geometry.width.into(),
            height: geometry.height.into(),
        })
    }

    /// `window` and the windows holding it, up to (not including) the root: with a window
    /// manager, the last is its frame.
    fn up(&self, window: Window) -> Vec<Window> {
        let mut chain = vec![window];
        let mut at = window;
        // 32: deeper than any real tree, and a bound on a hostile one.
        for _ in 0..32 {
            match self.conn.query_tree(at).ok().and_then(|c| c.reply().ok()) {
                Some(tree) if tree.parent != self.root && tree.parent != x11rb::NONE => {
                    at = tree.parent;
                    chain.push(at);
                }
                _ => break,
            }
        }
        chain
    }

    /// The window `id` with its window manager's frame: the top-level window holding it
    /// (itself without a window manager), in screen pixels.
    pub fn frame(&self, id: u64) -> Option<Area> {
        let window = u32::try_from(id).ok()?;
        let top = self.up(window).last().copied()?;
        self.of(u64::from(top))
    }

    /// Where `source` is on the screen: the whole screen, the monitor, or the window with
    /// its window manager's frame; `None` when it is gone.
    pub fn shared_area(&self, source: Source) -> Option<Area> {
        match source {
            Source::Desktop => {
                let screen = self.conn.get_geometry(self.root).ok()?.reply().ok()?;
                Some(Area {
                    x: 0,
                    y: 0,
                    width: screen.width.into(),
                    height: screen.height.into(),
                })
            }
            Source::Monitor { area, .. } => Some(area),
            Source::Window(id) => self.frame(id),
        }
    }

    /// Let the pointer pass through the X window `id` to what is under it: its input shape
    /// is made empty (the SHAPE extension). Whether that worked.
    pub fn pass_input_through(&self, id: u64) -> bool {
        use x11rb::protocol::shape;
        let Ok(window) = u32::try_from(id) else {
            return false;
        };
        shape::rectangles(
            &self.conn,
            shape::SO::SET,
            shape::SK::INPUT,
            x11rb::protocol::xproto::ClipOrdering::UNSORTED,
            window,
            0,
            0,
            &[],
        )
        .ok()
        .and_then(|cookie| cookie.check().ok())
        .is_some()
    }

    /// Put the X window `id` above its siblings again: a window the window manager raises
    /// goes over an unmanaged (override-redirect) window, whatever that asked for.
    pub fn raise(&self, id: u64) {
        use x11rb::protocol::xproto::{ConfigureWindowAux, StackMode};
        let Ok(window) = u32::try_from(id) else {
            return;
        };
        let above = ConfigureWindowAux::new().stack_mode(StackMode::ABOVE);
        if self.conn.configure_window(window, &above).is_ok() {
            let _ = self.conn.flush();
        }
    }

    /// Whether the X window `id` has the keyboard focus: the focus is on it, inside it (a
    /// toolkit may focus a child), or on its frame; or, with no window manager to set a
    /// focus (`PointerRoot`), the pointer is over it or its frame.
    pub fn has_focus(&self, id: u64) -> bool {
        let Ok(window) = u32::try_from(id) else {
            return false;
        };
        let Some(focus) = self
            .conn
            .get_input_focus()
            .ok()
            .and_then(|c| c.reply().ok())
            .map(|r| r.focus)
        else {
            return false;
        };
        let holders = self.up(window);
        if focus != POINTER_ROOT {
            return holders.contains(&focus) || self.up(focus).contains(&window);
        }
        // Down from the root along the pointer: the windows it is over.
        let mut under = self.root;
        for _ in 0..32 {
            match self
                .conn
                .query_pointer(under)
                .ok()
                .and_then(|c| c.reply().ok())
            {
                Some(at) if at.child != x11rb::NONE => under = at.child,
                _ => return false,
            }
            if holders.contains(&under) || under == window {
                return true;
            }
        }
        false
    }
}
