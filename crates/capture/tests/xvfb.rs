//! Capture against a real X server: Xvfb, with windows of known colours drawn by a small
//! X client in the test.

#![cfg(all(unix, not(target_os = "macos")))]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tandem_capture::{Area, Capture, Gone, Locator, Source, X11Capturer, monitors, windows};
use x11rb::connection::Connection;
use x11rb::protocol::randr::{ConnectionExt as _, MonitorInfo};
use x11rb::protocol::xproto::{
    AtomEnum, ConfigureWindowAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, MapState,
    PropMode, Rectangle, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// An Xvfb of 320x240, killed on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Self {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "320x240x24",
                "-nolisten",
                "tcp",
                "-br",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb runs (Debian package xvfb; cargo xtask test installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("Xvfb prints its display number");
        Self {
            child,
            display: format!(":{}", line.trim()),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test's own X client: it makes plain coloured windows.
struct Painter {
    conn: RustConnection,
    root: Window,
}

impl Painter {
    fn new(display: &str) -> Self {
        let (conn, screen) = RustConnection::connect(Some(display)).expect("connect");
        let root = conn.setup().roots[screen].root;
        let painter = Self { conn, root };
        // Park the pointer in a corner, away from the pixels the tests read.
        painter
            .conn
            .warp_pointer(x11rb::NONE, root, 0, 0, 0, 0, 318, 238)
            .expect("warp");
        painter.sync();
        painter
    }

    fn window(&self, rgb: u32, x: i16, y: i16, w: u16, h: u16, title: Option<&str>) -> Window {
        let id = self.conn.generate_id().expect("id");
        let aux = CreateWindowAux::new().background_pixel(rgb);
        self.conn
            .create_window(
                0,
                id,
                self.root,
                x,
                y,
                w,
                h,
                0,
                WindowClass::INPUT_OUTPUT,
                0,
                &aux,
            )
            .expect("create");
        if let Some(title) = title {
            self.conn
                .change_property8(
                    PropMode::REPLACE,
                    id,
                    AtomEnum::WM_NAME,
                    AtomEnum::STRING,
                    title.as_bytes(),
                )
                .expect("title");
        }
        self.conn.map_window(id).expect("map");
        self.wait_viewable(id);
        id
    }

    fn wait_viewable(&self, id: Window) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let attrs = self
                .conn
                .get_window_attributes(id)
                .expect("ask")
                .reply()
                .expect("reply");
            if attrs.map_state == MapState::VIEWABLE {
                self.sync();
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("window {id:#x} never became viewable");
    }

    fn configure(&self, id: Window, aux: &ConfigureWindowAux) {
        self.conn.configure_window(id, aux).expect("configure");
        self.sync();
    }

    /// Fill a window with another colour (drawing, as an application's would damage it).
    fn paint(&self, id: Window, rgb: u32) {
        let aux = x11rb::protocol::xproto::ChangeWindowAttributesAux::new().background_pixel(rgb);
        self.conn
            .change_window_attributes(id, &aux)
            .expect("background");
        self.conn.clear_area(false, id, 0, 0, 0, 0).expect("clear");
        self.sync();
    }

    /// Wait until the server has done everything asked so far.
    fn sync(&self) {
        self.conn
            .get_input_focus()
            .expect("sync")
            .reply()
            .expect("reply");
    }
}

fn pixel(frame: &tandem_capture::Frame<'_>, x: usize, y: usize) -> u32 {
    let at = y * frame.stride + x * 4;
    let b = &frame.bgra[at..at + 3];
    u32::from(b[2]) << 16 | u32::from(b[1]) << 8 | u32::from(b[0])
}

/// Capture until a frame comes (Damage events may trail the drawing a little).
fn frame_of(
    capturer: &mut X11Capturer,
    check: impl Fn(&tandem_capture::Frame<'_>) -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Capture::Frame(frame) = capturer.capture().expect("capture") {
            if check(&frame) {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Capture until nothing changes any more (damage from mapping may trail by a frame).
fn settles(capturer: &mut X11Capturer) -> bool {
    (0..50).any(|_| matches!(capturer.capture().expect("capture"), Capture::Unchanged))
}

const RED: u32 = 0xff0000;
const GREEN: u32 = 0x00ff00;
const BLUE: u32 = 0x0000ff;

#[test]
fn the_desktop_is_captured_through_shared_memory_and_an_unchanged_screen_costs_nothing() {
    let x = Xvfb::start();
    let painter = Painter::new(&x.display);
    painter.window(RED, 0, 0, 100, 100, Some("Red"));
    let blue = painter.window(BLUE, 150, 50, 100, 100, None);
    let mut capturer = X11Capturer::new(Some(&x.display), Source::Desktop).expect("capturer");
    assert_eq!(capturer.size(), (320, 240));
    assert!(frame_of(&mut capturer, |f| {
        (f.width, f.height) == (320, 240)
            && pixel(f, 50, 50) == RED
            && pixel(f, 200, 100) == BLUE
            && pixel(f, 300, 10) == 0
    }));
    assert!(
        capturer.uses_shared_memory(),
        "MIT-SHM is used on a local display"
    );

    // Once the last damage is in, nothing changes: no frame, three times over.
    assert!(settles(&mut capturer));
    for _ in 0..3 {
        assert!(matches!(
            capturer.capture().expect("capture"),
            Capture::Unchanged
        ));
    }

    painter.configure(blue, &ConfigureWindowAux::new().x(20).y(120));
    assert!(frame_of(&mut capturer, |f| pixel(f, 50, 150) == BLUE
        && pixel(f, 200, 100) == 0));
}

#[test]
fn a_covered_window_is_captured_with_its_own_pixels_and_resizes_are_followed() {
    let x = Xvfb::start();
    let painter = Painter::new(&x.display);
    let red = painter.window(RED, 20, 20, 120, 100, Some("Invoice"));
    let mut capturer =
        X11Capturer::new(Some(&x.display), Source::Window(red.into())).expect("capturer");
    // Half of the shared window disappears under another one.
    painter.window(GREEN, 80, 40, 150, 120, Some("Cover"));
    assert!(
        frame_of(&mut capturer, |f| {
            (f.width, f.height) == (120, 100)
                && (0..120)
                    .step_by(7)
                    .all(|x| (0..100).step_by(7).all(|y| pixel(f, x, y) == RED))
        }),
        "only the window's own red, none of the green cover"
    );

    painter.configure(red, &ConfigureWindowAux::new().width(160).height(90));
    assert!(frame_of(&mut capturer, |f| (f.width, f.height)
        == (160, 90)
        && pixel(f, 150, 80) == RED));
    assert_eq!(capturer.size(), (160, 90));
}

#[test]
fn a_closed_window_ends_the_capture_with_a_reason() {
    let x = Xvfb::start();
    let painter = Painter::new(&x.display);
    let red = painter.window(RED, 20, 20, 60, 60, Some("Short-lived"));
    let mut capturer =
        X11Capturer::new(Some(&x.display), Source::Window(red.into())).expect("capturer");
    assert!(frame_of(&mut capturer, |f| pixel(f, 10, 10) == RED));
    painter.conn.destroy_window(red).expect("destroy");
    painter.sync();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Capture::Ended(reason) = capturer.capture().expect("capture") {
            assert!(
                matches!(reason, Gone::WindowClosed | Gone::WindowClosedOrMinimized),
                "{reason}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the end of the window was never noticed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_window_list_has_the_titled_viewable_windows_with_their_sizes() {
    let x = Xvfb::start();
    let painter = Painter::new(&x.display);
    painter.window(RED, 0, 0, 100, 80, Some("Spreadsheet – Q3"));
    painter.window(BLUE, 120, 0, 60, 40, None);
    let hidden = painter.conn.generate_id().expect("id");
    painter
        .conn
        .create_window(
            0,
            hidden,
            painter.root,
            0,
            0,
            50,
            50,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &CreateWindowAux::new(),
        )
        .expect("create");
    painter
        .conn
        .change_property8(
            PropMode::REPLACE,
            hidden,
            AtomEnum::WM_NAME,
            AtomEnum::STRING,
            b"Hidden",
        )
        .expect("title");
    painter.sync();
    let list = windows(Some(&x.display)).expect("list");
    let titles: Vec<(&str, u32, u32)> = list
        .iter()
        .map(|w| (w.title.as_str(), w.width, w.height))
        .collect();
    assert_eq!(titles, [("Spreadsheet – Q3", 100, 80)], "{list:?}");
}

#[test]
fn the_cursor_is_drawn_into_the_frame() {
    let x = Xvfb::start();
    let painter = Painter::new(&x.display);
    let white = painter.window(0xffffff, 0, 0, 320, 240, None);
    painter
        .conn
        .warp_pointer(x11rb::NONE, white, 0, 0, 0, 0, 160, 120)
        .expect("warp");
    painter.sync();
    let mut capturer = X11Capturer::new(Some(&x.display), Source::Desktop).expect("capturer");
    assert!(
        frame_of(&mut capturer, |f| {
            let around = (150..170).flat_map(|x| (110..130).map(move |y| (x, y)));
            let marked = around.filter(|&(x, y)| pixel(f, x, y) != 0xffffff).count();
            marked > 10 && pixel(f, 10, 10) == 0xffffff
        }),
        "the pointer shows on the white window"
    );

    // Once the screen settles nothing comes; moving the pointer alone is worth a frame.
    assert!(settles(&mut capturer), "an idle screen gives no frames");
    painter
        .conn
        .warp_pointer(x11rb::NONE, white, 0, 0, 0, 0, 40, 40)
        .expect("warp");
    painter.sync();
    assert!(frame_of(&mut capturer, |f| {
        (30..50)
            .flat_map(|x| (30..50).map(move |y| (x, y)))
            .any(|(x, y)| pixel(f, x, y) != 0xffffff)
            && (150..170).all(|x| pixel(f, x, 120) == 0xffffff)
    }));
}

/// Capture until the screen has settled (three looks without a change), keeping each
/// frame's changed rows and the last frame's pixels.
fn settled_frames(capturer: &mut X11Capturer) -> (Vec<Option<(u32, u32)>>, Vec<u8>) {
    let (mut rows, mut pixels, mut quiet) = (Vec::new(), Vec::new(), 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while quiet < 3 && Instant::now() < deadline {
        match capturer.capture().expect("capture") {
            Capture::Frame(frame) => {
                quiet = 0;
                rows.push(frame.changed_rows);
                pixels = frame.bgra[..frame.stride * frame.height as usize].to_vec();
            }
            _ => quiet += 1,
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(quiet, 3, "the screen settles");
    (rows, pixels)
}

/// What a new capturer sees: the whole picture, grabbed in one piece.
fn whole_picture(display: &str, source: Source) -> Vec<u8> {
    let mut fresh = X11Capturer::new(Some(display), source).expect("capturer");
    match fresh.capture().expect("capture") {
        Capture::Frame(frame) => {
            assert_eq!(frame.changed_rows, None, "a first frame is whole");
            frame.bgra[..frame.stride * frame.height as usize].to_vec()
        }
        other => panic!("a first capture gives a frame, not {other:?}"),
    }
}

#[test]
fn only_the_rows_that_changed_are_grabbed_again_and_the_picture_stays_whole() {
    let x = Xvfb::start();
    let painter = Painter::new(&x.display);
    let white = painter.window(0xffffff, 0, 0, 320, 240, None);
    let mut capturer = X11Capturer::new(Some(&x.display), Source::Desktop).expect("capturer");
    let (rows, _) = settled_frames(&mut capturer);
    assert_eq!(rows.first(), Some(&None), "the first frame is whole");

    // A small window rows 100..120: only rows around it are grabbed and handed on.
    painter.window(RED, 40, 100, 60, 20, None);
    let (rows, pixels) = settled_frames(&mut capturer);
    assert!(!rows.is_empty(), "the new window makes a frame");
    for changed in &rows {
        let (top, bottom) = changed.expect("a change of a few rows is not a whole frame");
        assert!(
            bottom - top <= 40,
            "rows {top}..{bottom} for a window 20 rows high"
        );
    }
    let (top, bottom) = rows
        .iter()
        .flatten()
        .fold((u32::MAX, 0), |(t, b), &(t1, b1)| (t.min(t1), b.max(b1)));
    assert!(
        top <= 100 && bottom >= 120,
        "rows {top}..{bottom} cover the window"
    );
    assert!(
        pixels == whole_picture(&x.display, Source::Desktop),
        "the picture kept and refreshed in part is the one a whole grab gives"
    );

    // The pointer moves across: its old and new rows are grabbed again, so no trace of
    // it is left behind and it is not blended twice.
    painter
        .conn
        .warp_pointer(x11rb::NONE, white, 0, 0, 0, 0, 70, 110)
        .expect("warp");
    painter.sync();
    let (rows, pixels) = settled_frames(&mut capturer);
    assert!(rows.iter().all(Option::is_some), "{rows:?}");
    assert!(
        pixels == whole_picture(&x.display, Source::Desktop),
        "after the pointer moved, the picture is the one a whole grab gives"
    );
}

#[test]
/// The answer to a click over a running clock: drawing where the last frame's damage was is
/// motion, drawing elsewhere is news and ends the wait; what the looks took out of the
/// damage still reaches the next frame; once the motion is old, any drawing is news; over
/// motion covering much of the picture, the capturer says it cannot tell.
fn news_is_drawing_away_from_the_last_frames_motion_and_nothing_it_took_is_lost() {
    let x = Xvfb::start();
    let painter = Painter::new(&x.display);
    painter.window(0xffffff, 0, 0, 320, 240, None);
    let clock = painter.window(RED, 0, 0, 40, 10, None);
    let square = painter.window(BLUE, 140, 100, 40, 40, None);
    let mut capturer = X11Capturer::new(Some(&x.display), Source::Desktop).expect("capturer");
    // The motion stays fresh however slowly this runs (its end is checked last).
    capturer.set_motion_fresh(Duration::from_secs(600));
    settled_frames(&mut capturer);
    capturer.refresh();
    assert!(frame_of(&mut capturer, |f| f.changed_rows.is_none()));
    assert_eq!(
        capturer.wait_for_news(Duration::ZERO).expect("news"),
        None,
        "after a whole frame there is no motion to tell news from"
    );
    // The clock ticks: a frame of its damage alone is the motion.
    painter.paint(clock, GREEN);
    assert!(frame_of(&mut capturer, |f| pixel(f, 20, 5) == GREEN));
    assert_eq!(
        capturer.wait_for_news(Duration::ZERO).expect("news"),
        Some(false),
        "nothing drawn"
    );
    // It ticks again: still no news, for as long as the wait lasts.
    painter.paint(clock, RED);
    assert_eq!(
        capturer
            .wait_for_news(Duration::from_millis(200))
            .expect("news"),
        Some(false),
        "the clock's own ticks are motion"
    );
    // The square is clicked and drawn while the capturer waits: that ends the wait.
    let waited = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            painter.paint(square, GREEN);
        });
        let waited = Instant::now();
        let news = capturer
            .wait_for_news(Duration::from_secs(60))
            .expect("news");
        (news, waited.elapsed())
    });
    assert_eq!(waited.0, Some(true), "the square's drawing is news");
    assert!(
        waited.1 < Duration::from_secs(30),
        "woken by it: {waited:?}"
    );
    // The next frame has both the tick the looks took and the square.
    let seen = std::cell::Cell::new(None);
    assert!(
        frame_of(&mut capturer, |f| {
            seen.set(Some((pixel(f, 20, 5), pixel(f, 160, 120))));
            seen.get() == Some((RED, GREEN))
        }),
        "the clock's tick and the square reach the frame: {:06x?}",
        seen.get()
    );
    // Motion that stopped is no motion: a tick long after the last frame is news.
    painter.paint(clock, GREEN);
    assert!(frame_of(&mut capturer, |f| pixel(f, 20, 5) == GREEN));
    capturer.set_motion_fresh(Duration::from_millis(50));
    std::thread::sleep(Duration::from_millis(100));
    painter.paint(clock, RED);
    assert_eq!(
        capturer
            .wait_for_news(Duration::from_secs(60))
            .expect("news"),
        Some(true),
        "on a still screen any drawing is news"
    );
    assert!(frame_of(&mut capturer, |f| pixel(f, 20, 5) == RED));
    capturer.set_motion_fresh(Duration::from_secs(600));
    // Motion over most of the picture (a page scrolled): news cannot be told from it.
    let page = painter.window(0x808080, 0, 20, 320, 200, None);
    assert!(frame_of(&mut capturer, |f| pixel(f, 100, 150) == 0x808080));
    painter.paint(page, 0x404040);
    assert!(frame_of(&mut capturer, |f| pixel(f, 100, 150) == 0x404040));
    assert_eq!(
        capturer.wait_for_news(Duration::ZERO).expect("news"),
        None,
        "a frame of damage over a large share of the picture is not a base for news"
    );
}

#[test]
/// A window share refreshed in part, in the window's own coordinates. (Xvfb damages the
/// whole window when it moves, so the cursor's new place on a window that moved under a
/// still pointer is not exercised here; `Placed` compares the place, not only the rows.)
fn a_shared_window_refreshed_in_part_after_it_moved_matches_a_whole_grab() {
    let x = Xvfb::start();
    let painter = Painter::new(&x.display);
    let window = painter.window(0xffffff, 20, 20, 200, 150, Some("White"));
    painter
        .conn
        .warp_pointer(x11rb::NONE, painter.root, 0, 0, 0, 0, 120, 60)
        .expect("warp");
    painter.sync();
    let source = Source::Window(window.into());
    let mut capturer = X11Capturer::new(Some(&x.display), source).expect("capturer");
    settled_frames(&mut capturer);

    // The window moves 40 pixels right, the pointer stays: the cursor is now 40 pixels
    // further left on the window, on the same rows. Then something is drawn further down.
    painter.configure(window, &ConfigureWindowAux::new().x(60));
    settled_frames(&mut capturer);
    let gc = painter.conn.generate_id().expect("id");
    painter
        .conn
        .create_gc(gc, window, &CreateGCAux::new().foreground(RED))
        .expect("gc");
    painter
        .conn
        .poly_fill_rectangle(
            window,
            gc,
            &[Rectangle {
                x: 10,
                y: 120,
                width: 50,
                height: 10,
            }],
        )
        .expect("draw");
    painter.sync();
    let (rows, pixels) = settled_frames(&mut capturer);
    assert!(!rows.is_empty(), "the drawing makes a frame");
    let drawn = rows.last().copied().flatten();
    assert!(
        drawn.is_some_and(|(top, bottom)| top <= 120 && bottom >= 130 && bottom - top < 150),
        "the last frame is the drawing's rows alone, not the whole window: {rows:?}"
    );
    assert!(
        pixels == whole_picture(&x.display, source),
        "the picture is the one a whole grab gives: no cursor left where it was"
    );
}

/// §5: input for a window share lands inside the window, and only on its visible pixels.
#[test]
fn remote_input_for_a_window_lands_only_on_its_own_visible_pixels() {
    let x = Xvfb::start();
    let painter = Painter::new(&x.display);
    let red = painter.window(RED, 20, 20, 120, 100, Some("Invoice"));
    let desktop = Locator::new(Some(&x.display), Source::Desktop).expect("locator");
    assert_eq!(desktop.locate(0.0, 0.0), Some((0, 0)));
    assert_eq!(desktop.locate(0.5, 0.25), Some((160, 60)));
    assert_eq!(desktop.locate(1.0, 1.0), Some((319, 239)));

    let window = Locator::new(Some(&x.display), Source::Window(red.into())).expect("locator");
    assert_eq!(window.locate(0.0, 0.0), Some((20, 20)));
    assert_eq!(window.locate(0.25, 0.5), Some((50, 70)));
    // The right half goes under another window: those points reach nothing.
    painter.window(GREEN, 80, 0, 150, 200, Some("Cover"));
    assert_eq!(window.locate(0.25, 0.5), Some((50, 70)));
    assert_eq!(
        window.locate(0.75, 0.5),
        None,
        "a covering window is not the share"
    );
    // A window brought to the front takes its input again; a moved one is followed.
    painter.configure(
        red,
        &ConfigureWindowAux::new().stack_mode(x11rb::protocol::xproto::StackMode::ABOVE),
    );
    assert_eq!(window.locate(0.75, 0.5), Some((110, 70)));
    painter.configure(red, &ConfigureWindowAux::new().x(0).y(130));
    assert_eq!(window.locate(0.25, 0.9), Some((30, 220)));
    painter.conn.destroy_window(red).expect("destroy");
    painter.sync();
    assert_eq!(
        window.locate(0.5, 0.5),
        None,
        "a closed window takes nothing"
    );
}

/// An unchanged screen costs a sleep, not a look every few milliseconds: the capturer
/// sleeps until the X server reports a change, drawing or the pointer moved through
/// XTEST (as the agent's injected input moves it), and that change wakes it at once.
#[test]
fn an_idle_capturer_sleeps_until_drawing_or_the_pointer_wakes_it() {
    let x = Xvfb::start();
    let painter = Painter::new(&x.display);
    painter.window(RED, 0, 0, 100, 100, None);
    let mut capturer = X11Capturer::new(Some(&x.display), Source::Desktop).expect("capturer");
    assert!(
        capturer.event_driven(),
        "Xvfb reports pointer motion (XInput 2)"
    );
    assert!(frame_of(&mut capturer, |f| pixel(f, 50, 50) == RED));
    assert!(settles(&mut capturer));

    // Nothing happens for a second: a handful of wake-ups (each at its time limit), not
    // the 250 looks of a 4 ms poll.
    let second = Instant::now();
    let mut wakes = 0;
    while second.elapsed() < Duration::from_secs(1) {
        capturer
            .wait_for_change(Duration::from_millis(200))
            .expect("wait");
        wakes += 1;
    }
    assert!(wakes <= 10, "{wakes} wake-ups in a still second");
    assert!(matches!(
        capturer.capture().expect("capture"),
        Capture::Unchanged
    ));

    // Drawing from another client wakes it, long before the wait's limit.
    assert!(
        woken_by(&mut capturer, || {
            painter.window(BLUE, 150, 50, 100, 100, None);
        }),
        "woken by the drawing, not by the time limit"
    );
    assert!(frame_of(&mut capturer, |f| pixel(f, 200, 100) == BLUE));
    assert!(settles(&mut capturer));

    // So does the pointer, moved through XTEST by another client (as the agent's injected
    // input moves it; a warp is only noticed by the 50 ms check).
    assert!(
        woken_by(&mut capturer, || {
            use x11rb::protocol::xtest::ConnectionExt as _;
            painter
                .conn
                .xtest_fake_input(
                    x11rb::protocol::xproto::MOTION_NOTIFY_EVENT,
                    0,
                    x11rb::CURRENT_TIME,
                    painter.root,
                    200,
                    200,
                    0,
                )
                .expect("fake motion");
            painter.sync();
        }),
        "woken by the pointer, not by the time limit"
    );
    assert!(
        frame_of(&mut capturer, |_| true),
        "a moved pointer is worth a frame"
    );
}

/// Whether `cause`, done by another thread 300 ms into the capturer's wait of up to a
/// minute, wakes it well before the wait's limit.
fn woken_by(capturer: &mut X11Capturer, cause: impl FnOnce() + Send) -> bool {
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            cause();
        });
        let waited = Instant::now();
        capturer
            .wait_for_change(Duration::from_secs(60))
            .expect("wait");
        waited.elapsed() < Duration::from_secs(30)
    })
}

/// Split the 320×240 screen into two RandR monitors, "LEFT" (primary) and "RIGHT", as a
/// two-monitor desk has them.
fn two_monitors(painter: &Painter) {
    painter
        .conn
        .randr_query_version(1, 5)
        .expect("ask")
        .reply()
        .expect("Xvfb has RandR 1.5");
    for (name, x, primary) in [("RIGHT", 160, false), ("LEFT", 0, true)] {
        let atom = painter
            .conn
            .intern_atom(false, name.as_bytes())
            .expect("atom")
            .reply()
            .expect("reply")
            .atom;
        let monitor = MonitorInfo {
            name: atom,
            primary,
            automatic: false,
            x,
            y: 0,
            width: 160,
            height: 240,
            width_in_millimeters: 42,
            height_in_millimeters: 63,
            outputs: Vec::new(),
        };
        painter
            .conn
            .randr_set_monitor(painter.root, monitor)
            .expect("set monitor");
    }
    painter.sync();
}

#[test]
fn one_monitor_of_two_is_listed_captured_alone_and_takes_input_in_its_own_place() {
    let x = Xvfb::start();
    let painter = Painter::new(&x.display);
    two_monitors(&painter);
    painter.window(RED, 0, 0, 160, 240, None);
    painter.window(BLUE, 160, 0, 160, 240, None);
    // The pointer (drawn into frames) on the other monitor.
    painter
        .conn
        .warp_pointer(x11rb::NONE, painter.root, 0, 0, 0, 0, 80, 120)
        .expect("warp");
    painter.sync();

    let found = monitors(Some(&x.display)).expect("monitors");
    let names: Vec<&str> = found.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["LEFT", "RIGHT"], "the primary first: {found:?}");
    let right = found[1].area;
    assert_eq!(
        right,
        Area {
            x: 160,
            y: 0,
            width: 160,
            height: 240
        }
    );

    let right_id = found[1].id;
    let shared = Source::Monitor {
        id: right_id,
        area: right,
    };
    let mut capturer = X11Capturer::new(Some(&x.display), shared).expect("capturer");
    assert_eq!(capturer.size(), (160, 240));
    assert!(
        frame_of(&mut capturer, |f| {
            (f.width, f.height) == (160, 240)
                && (0..160)
                    .step_by(9)
                    .all(|x| (0..240).step_by(9).all(|y| pixel(f, x, y) == BLUE))
        }),
        "the right monitor's blue only, none of the left one's red"
    );

    // A point of the shared monitor is on the right half of the screen.
    let locator = Locator::new(Some(&x.display), shared).expect("locator");
    assert_eq!(locator.locate(0.0, 0.0), Some((160, 0)));
    assert_eq!(locator.locate(0.5, 0.5), Some((240, 120)));
    assert_eq!(locator.locate(1.0, 1.0), Some((319, 239)));

    // A monitor that is not on this screen is refused with a reason.
    let gone = Area {
        x: 300,
        y: 0,
        width: 160,
        height: 240,
    };
    let gone_source = Source::Monitor {
        id: right_id,
        area: gone,
    };
    let refused =
        X11Capturer::new(Some(&x.display), gone_source).expect_err("a monitor beyond the screen");
    assert!(
        refused
            .to_string()
            .contains("no monitor shows 160×240 at 300,0"),
        "{refused}"
    );
    assert_eq!(
        Locator::new(Some(&x.display), gone_source)
            .expect("locator")
            .locate(0.5, 0.5),
        None
    );
}

#[test]
fn a_shared_monitor_that_is_removed_or_moved_ends_the_share() {
    let x = Xvfb::start();
    let painter = Painter::new(&x.display);
    two_monitors(&painter);
    let found = monitors(Some(&x.display)).expect("monitors");
    let right = found.iter().find(|m| m.name == "RIGHT").expect("RIGHT");
    let shared = Source::Monitor {
        id: right.id,
        area: right.area,
    };
    let mut capturer = X11Capturer::new(Some(&x.display), shared).expect("capturer");
    let locator = Locator::new(Some(&x.display), shared).expect("locator");
    assert!(frame_of(&mut capturer, |f| f.width == 160));
    assert!(locator.locate(0.5, 0.5).is_some());

    // The customer takes the right monitor away: the rectangle is still on the screen,
    // but nothing of it is that monitor any more.
    let atom = painter
        .conn
        .intern_atom(false, b"RIGHT")
        .expect("atom")
        .reply()
        .expect("reply")
        .atom;
    painter
        .conn
        .randr_delete_monitor(painter.root, atom)
        .expect("delete monitor");
    painter.sync();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match capturer.capture().expect("capture") {
            Capture::Ended(gone) => {
                assert_eq!(gone, Gone::MonitorDisconnected);
                break;
            }
            _ => {
                assert!(Instant::now() < deadline, "the removal was never noticed");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while locator.locate(0.5, 0.5).is_some() {
        assert!(
            Instant::now() < deadline,
            "input still goes where the monitor was"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_agents_window_has_the_focus_when_it_its_frame_or_a_child_of_it_has() {
    use x11rb::protocol::xproto::InputFocus;
    let x = Xvfb::start();
    let painter = Painter::new(&x.display);
    // A window manager's frame holding the agent's window, and another application.
    let frame = painter.window(BLUE, 10, 10, 200, 150, None);
    let id = painter.conn.generate_id().expect("id");
    painter
        .conn
        .create_window(
            0,
            id,
            frame,
            4,
            20,
            190,
            120,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &CreateWindowAux::new().background_pixel(RED),
        )
        .expect("create");
    painter.conn.map_window(id).expect("map");
    painter.wait_viewable(id);
    let other = painter.window(GREEN, 220, 10, 90, 90, Some("Other"));
    let areas = tandem_capture::ClientAreas::new(Some(&x.display)).expect("areas");
    let focus = |on: Window| {
        painter
            .conn
            .set_input_focus(InputFocus::PARENT, on, x11rb::CURRENT_TIME)
            .expect("focus");
        painter.sync();
    };
    for (on, expected) in [(id, true), (frame, true), (other, false)] {
        focus(on);
        assert_eq!(areas.has_focus(id.into()), expected, "focus on {on:#x}");
    }
    // The content's place, and the frame's.
    let content = areas.of(id.into()).expect("client area");
    assert_eq!(
        (content.x, content.y, content.width, content.height),
        (14, 30, 190, 120)
    );
    let held = areas.frame(id.into()).expect("frame");
    assert_eq!(
        (held.x, held.y, held.width, held.height),
        (10, 10, 200, 150)
    );
}
