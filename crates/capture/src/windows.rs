//! The windows a customer can choose to share: viewable top-level windows with a title.

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{Atom, AtomEnum, ConnectionExt as _, MapState, Window};
use x11rb::rust_connection::RustConnection;

use crate::{CaptureError, WindowInfo};

/// The shareable windows of a display, in stacking order (bottom first).
pub fn windows(display: Option<&str>) -> Result<Vec<WindowInfo>, CaptureError> {
    let (conn, screen) = crate::x11::connect(display)?;
    let root = conn.setup().roots[screen].root;
    list(&conn, root)
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
