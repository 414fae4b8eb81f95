//! The agent's window as a customer uses it: where its buttons are (the agent traces its
//! window's place with `TANDEM_AGENT_TRACE`), clicks from xdotool — synthetic
//! input through XTEST, as a real pointer's would be on Xvfb — and photographs of the
//! display with ImageMagick's `import`.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::AgentProcess;

/// The window's mode and its buttons' centres, in screen pixels, as the agent last
/// traced them: `ui ask at 0,0 480x220 allow 400,190 deny 300,190`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub mode: String,
    /// x, y, width, height.
    pub rect: (i32, i32, u32, u32),
    buttons: HashMap<String, (i32, i32)>,
}

impl Placement {
    /// The centre of a button the mode shows.
    pub fn button(&self, name: &str) -> anyhow::Result<(i32, i32)> {
        self.buttons
            .get(name)
            .copied()
            .with_context(|| format!("the window in mode {} has no {name} button", self.mode))
    }

    fn parse(line: &str) -> Option<Self> {
        let rest = line.split("] ui ").nth(1)?;
        let mut words = rest.split_whitespace();
        let mode = words.next()?.to_owned();
        (words.next()? == "at").then_some(())?;
        let (x, y) = pair(words.next()?)?;
        let (w, h) = words.next()?.split_once('x')?;
        let rect = (x, y, w.parse().ok()?, h.parse().ok()?);
        let mut buttons = HashMap::new();
        while let (Some(name), Some(at)) = (words.next(), words.next()) {
            buttons.insert(name.to_owned(), pair(at)?);
        }
        Some(Self {
            mode,
            rect,
            buttons,
        })
    }
}

fn pair(text: &str) -> Option<(i32, i32)> {
    let (a, b) = text.split_once(',')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The last placement the agent traced.
pub fn latest(agent: &AgentProcess) -> Option<Placement> {
    agent
        .output()
        .lines()
        .rev()
        .find(|l| l.contains("] ui "))
        .and_then(Placement::parse)
}

/// Wait until the window is in `mode` and its layout has settled (the same placement on
/// three looks 300 ms apart: the window may still be resized to its content).
pub async fn wait_mode(agent: &AgentProcess, mode: &str) -> anyhow::Result<Placement> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let mut same = 0;
    let mut last = None;
    loop {
        let now = latest(agent).filter(|p| p.mode == mode);
        match &now {
            Some(placed) if now == last => {
                same += 1;
                if same >= 2 {
                    return Ok(placed.clone());
                }
            }
            _ => same = 0,
        }
        last = now;
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the agent's window never settled in mode {mode}; last: {:?}\n{}",
                latest(agent),
                agent.output()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Wait until the agent's window has the keyboard focus, as it last traced.
pub async fn wait_focused(agent: &AgentProcess) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let output = agent.output();
        if output.rfind("] window focus on") > output.rfind("] window focus off") {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the agent's window never had the focus:\n{output}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn xdotool(display: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = std::process::Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .status()
        .context("could not run xdotool (cargo xtask test installs it)")?;
    anyhow::ensure!(status.success(), "xdotool {args:?} failed: {status}");
    Ok(())
}

/// Choose entry `index` of the share question's list (0: the whole screen): open the list
/// and click the entry (the list opens over the choice, its entries 40 pixels apart), until
/// the agent traces that choice. `photos` gets a photograph of the open list.
pub async fn choose(
    display: &str,
    agent: &AgentProcess,
    asked: &Placement,
    index: i32,
    photo: impl Fn() -> anyhow::Result<PathBuf>,
) -> anyhow::Result<()> {
    let (cx, cy) = asked.button("choice")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while latest(agent).and_then(|p| p.button("chosen").ok()) != Some((index, 0)) {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "entry {index} could not be chosen: {:?}",
            latest(agent)
        );
        click(display, (cx, cy))?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        photo()?;
        click(display, (cx, cy + 40 * index))?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// Where `title` is in the list of the agent's last share question (0: the whole screen),
/// as it traced the list (`window sources Whole screen|…`).
pub fn source_index(agent: &AgentProcess, title: &str) -> anyhow::Result<i32> {
    let output = agent.output();
    let list = output
        .lines()
        .rev()
        .find_map(|l| l.split_once("] window sources "))
        .map(|(_, list)| list.to_owned())
        .with_context(|| format!("the agent traced no list to choose from:\n{output}"))?;
    let index = list
        .split('|')
        .position(|entry| entry == title)
        .with_context(|| format!("{title:?} is not in the list {list:?}"))?;
    Ok(i32::try_from(index)?)
}

/// The rep ends the session (confirming the console's question); the agent's window
/// closes its panel with the sentence saying why.
pub async fn rep_ends_the_session(
    rep: &crate::Browser,
    agent: &mut AgentProcess,
) -> anyhow::Result<()> {
    rep.client
        .execute("window.confirm = () => true", vec![])
        .await?;
    rep.click("#end").await?;
    wait_mode(agent, "ended").await?;
    agent.wait_for("The support rep ended the session").await
}

/// A left click at a screen pixel, as the customer's mouse would.
pub fn click(display: &str, (x, y): (i32, i32)) -> anyhow::Result<()> {
    xdotool(
        display,
        &[
            "mousemove",
            "--sync",
            &x.to_string(),
            &y.to_string(),
            "click",
            "1",
        ],
    )
}

/// What the server offers for download: the agent without its debug info (a debug build is
/// half a gigabyte; a customer gets a release build), written into `dir`.
pub fn offered_agent(dir: &Path) -> anyhow::Result<PathBuf> {
    let offered = dir.join("offered-agent");
    let status = std::process::Command::new("objcopy")
        .arg("--strip-debug")
        .arg(crate::agent_binary()?)
        .arg(&offered)
        .status()
        .context("could not run objcopy (binutils)")?;
    anyhow::ensure!(status.success(), "objcopy failed: {status}");
    Ok(offered)
}

/// A server offering the (stripped) agent for download, with Rita's session open, and
/// where the photographs of the customer's screen go.
#[derive(Debug)]
pub struct Desk {
    pub server: crate::Server,
    pub downloads: tempfile::TempDir,
    pub chrome: crate::Chromedriver,
    /// The session's number, as the audit log files it.
    pub number: String,
    pub link: String,
    pub photos: PathBuf,
}

impl Desk {
    /// The desk, and Rita's browser on her session's page. `max_customers`: the site's
    /// limit of customers per rep, set before the session opens.
    pub async fn open(
        name: &str,
        max_customers: Option<u32>,
    ) -> anyhow::Result<(Desk, crate::Browser)> {
        let downloads = tempfile::tempdir()?;
        let offered = offered_agent(downloads.path())?;
        let server =
            crate::Server::start_with(|config| config.agent_binary = Some(offered)).await?;
        server
            .create_rep("rita", "Rita Rep", "rita-password")
            .await?;
        if let Some(max) = max_customers {
            server.set_limits(max, false).await?;
        }
        let chrome = crate::Chromedriver::start(name).await?;
        let rep = chrome.media_browser("rep").await?;
        rep.log_in(&server.base, "rita", "rita-password").await?;
        let (number, link) = rep.start_session(false).await?;
        let photos = crate::target_dir().join("e2e-artifacts").join(name);
        let desk = Desk {
            server,
            downloads,
            chrome,
            number,
            link,
            photos,
        };
        Ok((desk, rep))
    }

    /// The customer's download from her join page (into `dir`), started on `display` as
    /// a double-click does.
    pub async fn start_agent(
        &self,
        customer: &crate::Browser,
        dir: &Path,
        display: &str,
    ) -> anyhow::Result<AgentProcess> {
        self.start_agent_with(customer, dir, display, &[]).await
    }

    /// The same, with more of the customer's environment (`LANG`, `XDG_DOWNLOAD_DIR`…).
    pub async fn start_agent_with(
        &self,
        customer: &crate::Browser,
        dir: &Path,
        display: &str,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> anyhow::Result<AgentProcess> {
        let file =
            download_from_join_page(customer, &self.server.base, dir, "#agent-download").await?;
        eprintln!("downloaded {}", file.display());
        let mut command = tokio::process::Command::new(&file);
        command.env("DISPLAY", display).envs(env.iter().copied());
        double_click(command)
    }
}

/// Start a downloaded agent as a double-click does: no arguments, in English unless
/// `command` sets `LANG`, tracing its window's places. `command` runs the file (for the
/// Windows agent: through `wine`), with the display set.
pub fn double_click(mut command: tokio::process::Command) -> anyhow::Result<AgentProcess> {
    let has_lang = command
        .as_std()
        .get_envs()
        .any(|(name, value)| name == "LANG" && value.is_some());
    if !has_lang {
        command.env("LANG", "en_US.UTF-8");
    }
    command
        .env("TANDEM_AGENT_TRACE", "1")
        .env_remove("TANDEM_AGENT_LANG");
    AgentProcess::spawn_command(command)
}

/// The labels the agent's window held when it last asked a question, as it traced them
/// (`window labels allow=…|deny=…|…`), by name.
pub fn labels(agent: &AgentProcess) -> Option<Vec<(String, String)>> {
    let output = agent.output();
    let line = output
        .lines()
        .rev()
        .find_map(|l| l.split_once("] window labels "))?
        .1;
    Some(
        line.split('|')
            .filter_map(|pair| pair.split_once('='))
            .map(|(name, text)| (name.to_owned(), text.to_owned()))
            .collect(),
    )
}

/// Download the agent as the customer's browser would: the join page's link `link`
/// (`#agent-download`, or `#agent-download-windows` for the Windows agent).
pub async fn download_from_join_page(
    customer: &crate::Browser,
    base: &str,
    download_dir: &Path,
    link: &str,
) -> anyhow::Result<PathBuf> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let href = loop {
        let href = customer
            .client
            .execute(
                "const a = document.querySelector(arguments[0]);
                 return a ? a.getAttribute('href') : null;",
                vec![serde_json::Value::from(link)],
            )
            .await?;
        if let Some(href) = href.as_str().filter(|h| h.contains("agt_")) {
            break href.to_owned();
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the join page never offered a download carrying the session: {href}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let url = if href.starts_with("http") {
        href
    } else {
        format!("{base}{href}")
    };
    let response = reqwest::get(&url).await?.error_for_status()?;
    let name = response
        .headers()
        .get(reqwest::header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("filename=\"").nth(1))
        .and_then(|v| v.split('"').next())
        .context("the download has no file name")?
        .to_owned();
    anyhow::ensure!(
        !name.contains('/') && name.starts_with("tandem"),
        "unexpected file name {name:?}"
    );
    let file = download_dir.join(&name);
    std::fs::write(&file, response.bytes().await?)?;
    // What the Linux page tells the customer to do: make it executable.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))?;
    Ok(file)
}

/// x, y, width and height on the screen.
pub type Rect = (i32, i32, u32, u32);

/// The frame the agent draws around what is shared, as it last traced it: "shared",
/// "controlled" or "off", and where it is (x, y, width, height; none when off).
pub fn frame(agent: &AgentProcess) -> Option<(String, Option<Rect>)> {
    let output = agent.output();
    let line = output
        .lines()
        .rev()
        .find(|l| l.contains("] screen frame "))?;
    let rest = line.split("] screen frame ").nth(1)?.trim();
    if rest == "off" {
        return Some(("off".into(), None));
    }
    // "shared at 0,0 1280x720"
    let mut words = rest.split_whitespace();
    let state = words.next()?.to_owned();
    let (x, y) = words.nth(1)?.split_once(',')?;
    let (w, h) = words.next()?.split_once('x')?;
    Some((
        state,
        Some((
            x.parse().ok()?,
            y.parse().ok()?,
            w.parse().ok()?,
            h.parse().ok()?,
        )),
    ))
}

/// The frame's colours (agent/ui/agent.slint, the badge's): blue while shared, orange
/// while controlled.
pub const FRAME_SHARED: (u8, u8, u8) = (0x1d, 0x4e, 0xd8);
pub const FRAME_CONTROLLED: (u8, u8, u8) = (0xc2, 0x41, 0x0c);

/// Points on the middle of each side of a frame at `rect`, two pixels in.
pub fn frame_points((x, y, w, h): Rect) -> [(i32, i32); 4] {
    let (w, h) = (i32::try_from(w).unwrap_or(0), i32::try_from(h).unwrap_or(0));
    [
        (x + w / 2, y + 2),
        (x + w / 2, y + h - 3),
        (x + 2, y + h / 2),
        (x + w - 3, y + h / 2),
    ]
}

/// A point on each side of a frame at `rect`, two pixels in, that the agent's own window
/// (`covered`, always on top: the frame passes under it) does not hide: the side's
/// middle, else a point nearer one of its ends. A side the window hides whole has none.
pub fn visible_side_points(rect: Rect, covered: Option<Rect>) -> Vec<(i32, i32)> {
    let hidden = |(x, y): (i32, i32)| {
        covered.is_some_and(|(cx, cy, cw, ch)| {
            let (cw, ch) = (
                i32::try_from(cw).unwrap_or(0),
                i32::try_from(ch).unwrap_or(0),
            );
            x >= cx && x < cx + cw && y >= cy && y < cy + ch
        })
    };
    let (x, y, w, h) = rect;
    let (w, h) = (i32::try_from(w).unwrap_or(0), i32::try_from(h).unwrap_or(0));
    let along = [4, 2, 6, 1, 7]; // eighths of the side, the middle first
    // Top, bottom, left, right: the point `e` eighths along.
    let point = |side: usize, e: i32| match side {
        0 => (x + w * e / 8, y + 2),
        1 => (x + w * e / 8, y + h - 3),
        2 => (x + 2, y + h * e / 8),
        _ => (x + w - 3, y + h * e / 8),
    };
    (0..4)
        .filter_map(|side| along.iter().map(|&e| point(side, e)).find(|&p| !hidden(p)))
        .collect()
}

/// Wait until the agent says its frame is `state` ("shared", "controlled") and the screen
/// shows it: on every side, where the agent's own window does not hide it, the state's
/// colour (at least two sides). Returns where the frame is.
pub async fn wait_frame(agent: &AgentProcess, display: &str, state: &str) -> anyhow::Result<Rect> {
    let colour = if state == "controlled" {
        FRAME_CONTROLLED
    } else {
        FRAME_SHARED
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let mut seen = Vec::new();
        if let Some((now, Some(rect))) = frame(agent)
            && now == state
        {
            let covered = latest(agent).map(|p| p.rect);
            for (x, y) in visible_side_points(rect, covered) {
                seen.push(((x, y), pixel(display, x, y)?));
            }
            if seen.len() >= 2 && seen.iter().all(|(_, c)| *c == colour) {
                return Ok(rect);
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the frame never showed {state}: the agent last said {:?}; the sides' middles \
                 are {seen:?}",
                frame(agent)
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Wait until the agent says its frame is off and none of the sides' middles of where it
/// was (`rect`) shows a frame colour.
pub async fn wait_frame_gone(
    agent: &AgentProcess,
    display: &str,
    rect: Rect,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let mut seen = Vec::new();
        if frame(agent).is_some_and(|(state, _)| state == "off") {
            for (x, y) in frame_points(rect) {
                seen.push(((x, y), pixel(display, x, y)?));
            }
            if seen
                .iter()
                .all(|(_, c)| *c != FRAME_SHARED && *c != FRAME_CONTROLLED)
            {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the frame never went: the agent last said {:?}; the sides' middles are {seen:?}",
                frame(agent)
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The top-level window the pointer is over once moved to (x, y) (0: none, the root), as
/// the X server finds it for input: a window whose input shape is empty is passed over.
pub fn window_under_pointer(display: &str, x: i32, y: i32) -> anyhow::Result<u32> {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::ConnectionExt as _;
    let (conn, screen) = x11rb::connect(Some(display))?;
    let root = conn.setup().roots[screen].root;
    conn.warp_pointer(
        x11rb::NONE,
        root,
        0,
        0,
        0,
        0,
        i16::try_from(x)?,
        i16::try_from(y)?,
    )?
    .check()?;
    Ok(conn.query_pointer(root)?.reply()?.child)
}

/// The colour (red, green, blue) of the screen pixel at (x, y), read from the X server.
pub fn pixel(display: &str, x: i32, y: i32) -> anyhow::Result<(u8, u8, u8)> {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};
    let (conn, screen) = x11rb::connect(Some(display))?;
    let root = conn.setup().roots[screen].root;
    let image = conn
        .get_image(
            ImageFormat::Z_PIXMAP,
            root,
            i16::try_from(x)?,
            i16::try_from(y)?,
            1,
            1,
            u32::MAX,
        )?
        .reply()?;
    // Depth 24 in 32 bits, least significant byte first: blue, green, red.
    match image.data.get(..3) {
        Some([b, g, r]) => Ok((*r, *g, *b)),
        _ => bail!("no pixel at {x},{y}: {} bytes", image.data.len()),
    }
}

/// A photograph of the whole display, `<dir>/<name>.png`.
pub fn photograph(display: &str, dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join(format!("{name}.png"));
    let status = std::process::Command::new("import")
        .args(["-display", display, "-window", "root"])
        .arg(&file)
        .status()
        .context("could not run import (ImageMagick; cargo xtask test installs it)")?;
    anyhow::ensure!(status.success(), "import failed: {status}");
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_and_its_points() {
        assert_eq!(
            frame_points((0, 0, 100, 50)),
            [(50, 2), (50, 47), (2, 25), (97, 25)]
        );
    }

    #[test]
    fn the_sides_are_sampled_where_the_agents_window_does_not_hide_them() {
        let frame = (0, 0, 800, 400);
        assert_eq!(
            visible_side_points(frame, None),
            [(400, 2), (400, 397), (2, 200), (797, 200)]
        );
        // The window over the top-left corner, to (480, 255): the top side is seen right
        // of it, the left side below it.
        assert_eq!(
            visible_side_points(frame, Some((0, 0, 480, 255))),
            [(600, 2), (400, 397), (2, 300), (797, 200)]
        );
        // A window over the whole left side hides it.
        assert_eq!(visible_side_points(frame, Some((0, 0, 10, 400))).len(), 3);
    }

    #[test]
    fn a_traced_placement_parses() {
        let p = Placement::parse(
            "[trace 17] ui ask at 10,20 480x220 allow 400,190 deny 300,190 choice 200,150",
        )
        .expect("parses");
        assert_eq!(p.mode, "ask");
        assert_eq!(p.rect, (10, 20, 480, 220));
        assert_eq!(p.button("allow").ok(), Some((400, 190)));
        assert!(p.button("stop").is_err());
        assert_eq!(Placement::parse("ui nothing"), None);
    }
}

/// A window manager (Openbox) on a test display, as a customer's desktop has one: it
/// decorates, places and focuses the windows it manages, a new window first. Stopped when
/// dropped.
#[derive(Debug)]
pub struct WindowManager {
    child: std::process::Child,
}

impl WindowManager {
    /// Start Openbox on `display` and wait until it manages the screen (it has set
    /// `_NET_SUPPORTING_WM_CHECK` on the root window).
    pub async fn start(display: &str) -> anyhow::Result<Self> {
        let config = tempfile::tempdir()?;
        let child = std::process::Command::new("openbox")
            .args(["--sm-disable"])
            .env("DISPLAY", display)
            // Its own empty configuration directory: Openbox's defaults, whatever the
            // machine's user has.
            .env("XDG_CONFIG_HOME", config.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("could not start openbox (cargo xtask test installs it)")?;
        let manager = Self { child };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let root = std::process::Command::new("xprop")
                .args(["-root", "_NET_SUPPORTING_WM_CHECK"])
                .env("DISPLAY", display)
                .output()
                .context("could not run xprop (x11-utils)")?;
            if String::from_utf8_lossy(&root.stdout).contains("window id") {
                return Ok(manager);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "openbox never took over the display {display}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for WindowManager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The title of the window that has the keyboard focus (empty: none, or the root).
pub fn focused_title(display: &str) -> anyhow::Result<String> {
    let output = std::process::Command::new("xdotool")
        .args(["getwindowfocus", "getwindowname"])
        .env("DISPLAY", display)
        .output()
        .context("could not run xdotool (cargo xtask test installs it)")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The titles of the windows the window manager manages (`_NET_CLIENT_LIST`).
pub fn managed_titles(display: &str) -> anyhow::Result<Vec<String>> {
    let list = std::process::Command::new("xprop")
        .args(["-root", "_NET_CLIENT_LIST"])
        .env("DISPLAY", display)
        .output()
        .context("could not run xprop (x11-utils)")?;
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    let ids = list.split_once('#').map_or("", |(_, ids)| ids);
    let mut titles = Vec::new();
    for id in ids.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        let name = std::process::Command::new("xdotool")
            .args([
                "getwindowname",
                &u32::from_str_radix(id.trim_start_matches("0x"), 16)?.to_string(),
            ])
            .env("DISPLAY", display)
            .output()
            .context("could not run xdotool")?;
        titles.push(String::from_utf8_lossy(&name.stdout).trim().to_owned());
    }
    Ok(titles)
}

/// Wait until the window titled `title` has the focus.
pub async fn wait_focus_on(display: &str, title: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = focused_title(display)?;
        if now == title {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the focus never went to {title:?}; it is on {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Put the window titled `title` at (x, y), `width`×`height`, as the customer's drag
/// would, and raise it to the very top of the stack, over unmanaged windows too, as some
/// window managers raise the window a customer clicks (Openbox keeps it under them).
pub fn cover_with(display: &str, title: &str, (x, y, width, height): Rect) -> anyhow::Result<()> {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::{ConfigureWindowAux, ConnectionExt as _, StackMode};
    let name = format!("^{title}$");
    let (x, y, width, height) = (
        x.to_string(),
        y.to_string(),
        width.to_string(),
        height.to_string(),
    );
    xdotool(
        display,
        &["search", "--name", &name, "windowmove", "--sync", &x, &y],
    )?;
    xdotool(
        display,
        &[
            "search",
            "--name",
            &name,
            "windowsize",
            "--sync",
            &width,
            &height,
        ],
    )?;
    let found = std::process::Command::new("xdotool")
        .args(["search", "--name", &name])
        .env("DISPLAY", display)
        .output()
        .context("could not run xdotool")?;
    let client: u32 = String::from_utf8_lossy(&found.stdout)
        .lines()
        .next()
        .with_context(|| format!("no window titled {title:?}"))?
        .trim()
        .parse()?;
    let (conn, _) = x11rb::connect(Some(display))?;
    // The window manager's frame around the client is what stacks among the root's
    // children.
    let mut top = client;
    loop {
        let tree = conn.query_tree(top)?.reply()?;
        if tree.parent == tree.root || tree.parent == x11rb::NONE {
            break;
        }
        top = tree.parent;
    }
    conn.configure_window(top, &ConfigureWindowAux::new().stack_mode(StackMode::ABOVE))?
        .check()?;
    conn.flush()?;
    Ok(())
}

/// Give the focus to the window titled `title`, as the customer's click on it would
/// (through the window manager: `_NET_ACTIVE_WINDOW`).
pub fn activate(display: &str, title: &str) -> anyhow::Result<()> {
    xdotool(
        display,
        &["search", "--name", &format!("^{title}$"), "windowactivate"],
    )
}
