//! What a customer can choose to share: viewable top-level windows with a title, and the
//! monitors RandR (1.5) knows.

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{Atom, AtomEnum, ConnectionExt as _, MapState, Window};
use x11rb::rust_connection::RustConnection;

use x11rb::protocol::randr::ConnectionExt as _;

use crate::{Area, CaptureError, MonitorInfo, WindowInfo};

/// The shareable windows of a display, in stacking order (bottom first).
pub fn windows(display: Option<&str>) -> Result<Vec<WindowInfo>, CaptureError> {
    let (conn, screen) = crate::x11::connect(display)?;
    let root = conn.setup().roots[screen].root;
    list(&conn, root)
}

/// The display's monitors, the primary first; empty when the X server has no RandR 1.5
/// (then only the whole screen can be shared). A monitor that is the whole screen is not
/// listed: it is the whole screen.
pub fn monitors(display: Option<&str>) -> Result<Vec<MonitorInfo>, CaptureError> {
    let (conn, screen) = crate::x11::connect(display)?;
    let setup = &conn.setup().roots[screen];
    let (root, whole) = (setup.root, (setup.width_in_pixels, setup.height_in_pixels));
    let Ok(version) = conn.randr_query_version(1, 5)?.reply() else {
        return Ok(Vec::new());
    };
    if (version.major_version, version.minor_version) < (1, 5) {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for (i, monitor) in conn
        .randr_get_monitors(root, true)?
        .reply()?
        .monitors
        .into_iter()
        .enumerate()
    {
        let area = Area {
            x: monitor.x.into(),
            y: monitor.y.into(),
            width: monitor.width.into(),
            height: monitor.height.into(),
        };
        let everything =
            (monitor.x, monitor.y) == (0, 0) && (monitor.width, monitor.height) == whole;
        // Only what can be captured: inside the screen, not empty.
        if everything || !crate::x11::fits(area, whole.0, whole.1) {
            continue;
        }
        let name = conn
            .get_atom_name(monitor.name)?
            .reply()
            .ok()
            .map(|n| String::from_utf8_lossy(&n.name).into_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("{}", i + 1));
        found.push(MonitorInfo {
            name,
            id: monitor.name.into(),
            area,
            primary: monitor.primary,
        });
    }
    found.sort_by_key(|m| (!m.primary, m.area.x, m.area.y));
    Ok(found)
}

/// Whether the monitor named `id` is still on the screen, where `area` says.
pub(crate) fn monitor_still(
    conn: &RustConnection,
    root: Window,
    id: u32,
    area: Area,
) -> Result<bool, CaptureError> {
    let monitors = conn.randr_get_monitors(root, true)?.reply()?.monitors;
    Ok(monitors.iter().any(|m| {
        m.name == id
            && (
                i32::from(m.x),
                i32::from(m.y),
                u32::from(m.width),
                u32::from(m.height),
            ) == (area.x, area.y, area.width, area.height)
    }))
}

pub(crate) fn list(conn: &RustConnection, root: Window) -> Result<Vec<WindowInfo>, CaptureError> {
    let net_wm_name = atom(conn, b"_NET_WM_NAME")?;
    let utf8 = atom(conn, b"UTF8_STRING")?;
    let mut found = Vec::new();
    // Top-level windows, and their children one level down: a window manager puts each
    // application window inside a frame of its own.
    for top in conn.query_tree(root)?.reply()?.children {
        let mut candidates = vec![top];
        if let Ok(tree) = conn.query_tree(top)?.reply() {
            candidates.extend(tree.children);
        }
        for window in candidates {
            let Ok(attributes) = conn.get_window_attributes(window)?.reply() else {
                continue;
            };
            if attributes.map_state != MapState::VIEWABLE || attributes.override_redirect {
                continue;
            }
            let Some(title) = title(conn, window, net_wm_name, utf8)? else {
                continue;
            };
            let Ok(geometry) = conn.get_geometry(window)?.reply() else {
                continue;
            };
            if geometry.width < 2 || geometry.height < 2 {
                continue;
            }
            found.push(WindowInfo {
                id: window.into(),
                title,
                width: geometry.width.into(),
                height: geometry.height.into(),
            });
        }
    }
    Ok(found)
}

fn atom(conn: &RustConnection, name: &[u8]) -> Result<Atom, CaptureError> {
    Ok(conn.intern_atom(false, name)?.reply()?.atom)
}

fn title(
    conn: &RustConnection,
    window: Window,
    net_wm_name: Atom,
    utf8: Atom,
) -> Result<Option<String>, CaptureError> {
    for (property, kind) in [
        (net_wm_name, utf8),
        (AtomEnum::WM_NAME.into(), AtomEnum::STRING.into()),
    ] {
        let reply = conn
            .get_property(false, window, property, kind, 0, 1024)?
            .reply()?;
        if !reply.value.is_empty() {
            let text = String::from_utf8_lossy(&reply.value).trim().to_owned();
            if !text.is_empty() {
                return Ok(Some(text));
            }
        }
    }
    Ok(None)
}
