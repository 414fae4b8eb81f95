//! Dropping files on a window as a file manager does: the drag source's side of the X
//! drag-and-drop protocol (XDND, version 5), over its own connection. The target is the
//! window under a point that says it takes drops (`XdndAware`); the files go as a
//! `text/uri-list` of `file://` URIs once the target asks for them.
//!
//! <https://www.freedesktop.org/wiki/Specifications/XDND/>

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ClientMessageEvent, ConnectionExt, CreateWindowAux, EventMask, PropMode,
    SELECTION_NOTIFY_EVENT, SelectionNotifyEvent, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// The protocol's version this source speaks.
const VERSION: u32 = 5;

/// Drop `files` at (x, y) of the screen of `display`, on the window there that takes
/// drops. Returns once the target says it has finished with the drop (it accepted it),
/// or fails with what went wrong (no such window, refused, no answer within 20 s).
pub fn drop_files(display: &str, (x, y): (i32, i32), files: &[&Path]) -> anyhow::Result<()> {
    let (conn, screen) =
        x11rb::connect(Some(display)).with_context(|| format!("cannot open display {display}"))?;
    let root = conn.setup().roots[screen].root;
    let atom = |name: &str| -> anyhow::Result<Atom> {
        Ok(conn.intern_atom(false, name.as_bytes())?.reply()?.atom)
    };
    let [
        aware,
        enter,
        position,
        status,
        drop,
        finished,
        selection,
        uri_list,
        copy,
    ] = [
        "XdndAware",
        "XdndEnter",
        "XdndPosition",
        "XdndStatus",
        "XdndDrop",
        "XdndFinished",
        "XdndSelection",
        "text/uri-list",
        "XdndActionCopy",
    ]
    .map(atom);
    let (aware, enter, position, status, drop, finished, selection, uri_list, copy) = (
        aware?, enter?, position?, status?, drop?, finished?, selection?, uri_list?, copy?,
    );
    let target = drop_target(&conn, root, aware, x, y)?;

    // The source: a window of our own that owns the drag's selection.
    let source = conn.generate_id()?;
    conn.create_window(
        0,
        source,
        root,
        -10,
        -10,
        1,
        1,
        0,
        WindowClass::INPUT_ONLY,
        0,
        &CreateWindowAux::new(),
    )?;
    conn.set_selection_owner(source, selection, x11rb::CURRENT_TIME)?;
    let uris: String = files
        .iter()
        .map(|f| format!("file://{}\r\n", uri_path(f)))
        .collect();

    let send = |kind: Atom, data: [u32; 5]| -> anyhow::Result<()> {
        let event = ClientMessageEvent::new(32, target, kind, data);
        conn.send_event(false, target, EventMask::NO_EVENT, event)?;
        conn.flush()?;
        Ok(())
    };
    send(enter, [source, VERSION << 24, uri_list, 0, 0])?;
    let at = (u32::from(u16::try_from(x)?) << 16) | u32::from(u16::try_from(y)?);
    send(position, [source, 0, at, x11rb::CURRENT_TIME, copy])?;

    // The target answers the position (accepted or not) and asks for the data; only once
    // it has both may the drop come, or it drops nothing.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut accepted, mut served, mut dropped) = (None, false, false);
    loop {
        let Some(event) = conn.poll_for_event()? else {
            ensure!(
                Instant::now() < deadline,
                "window {target:#x} never finished the drop (accepted: {accepted:?}, data \
                 asked for: {served}, dropped: {dropped})"
            );
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        match event {
            Event::ClientMessage(m) if m.type_ == status => {
                let data = m.data.as_data32();
                accepted = Some(data[1] & 1 == 1);
                ensure!(
                    accepted == Some(true),
                    "window {target:#x} refused the drop"
                );
            }
            Event::SelectionRequest(r) if r.selection == selection => {
                let property = if r.target == uri_list {
                    conn.change_property8(
                        PropMode::REPLACE,
                        r.requestor,
                        r.property,
                        uri_list,
                        uris.as_bytes(),
                    )?;
                    served = true;
                    r.property
                } else {
                    AtomEnum::NONE.into()
                };
                let notify = SelectionNotifyEvent {
                    response_type: SELECTION_NOTIFY_EVENT,
                    sequence: 0,
                    time: r.time,
                    requestor: r.requestor,
                    selection: r.selection,
                    target: r.target,
                    property,
                };
                conn.send_event(false, r.requestor, EventMask::NO_EVENT, notify)?;
                conn.flush()?;
            }
            Event::ClientMessage(m) if m.type_ == finished => {
                ensure!(dropped, "window {target:#x} finished before the drop");
                let data = m.data.as_data32();
                ensure!(
                    data[1] & 1 == 1,
                    "window {target:#x} did not take the dropped files"
                );
                return Ok(());
            }
            _ => {}
        }
        if !dropped && accepted == Some(true) && served {
            // Let the target read what it was given before the drop comes.
            conn.sync()?;
            send(drop, [source, 0, x11rb::CURRENT_TIME, 0, 0])?;
            dropped = true;
        }
    }
}

/// The deepest window under (x, y) that takes drops, from the top-level window there
/// down (a window manager's frame holds the application's window).
fn drop_target(
    conn: &RustConnection,
    root: Window,
    aware: Atom,
    x: i32,
    y: i32,
) -> anyhow::Result<Window> {
    let (x, y) = (i16::try_from(x)?, i16::try_from(y)?);
    let mut window = root;
    loop {
        let at = conn.translate_coordinates(root, window, x, y)?.reply()?;
        let Some(child) = Some(at.child).filter(|c| *c != x11rb::NONE) else {
            bail!("no window under {x},{y} takes drops");
        };
        let says = conn
            .get_property(false, child, aware, AtomEnum::ATOM, 0, 1)?
            .reply()?;
        if says.value32().and_then(|mut v| v.next()).is_some() {
            return Ok(child);
        }
        window = child;
    }
}

/// A path as a `file://` URI's path: every byte but the unreserved ones and `/`
/// percent-encoded.
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str()
        .as_bytes()
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_encoded_as_uris() {
        assert_eq!(
            uri_path(Path::new("/tmp/a b/ø%.log")),
            "/tmp/a%20b/%C3%B8%25.log"
        );
    }
}
