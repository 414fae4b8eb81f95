//! `cargo xtask test`: what CI runs. Formatting, lints with warnings as errors (clippy, in
//! the builds themselves), then every test of the workspace. Test runners print their own
//! summary line.

use anyhow::Context;

use crate::system::{cargo, ensure_packages, exec};

/// Debian packages the tests need: nasm for openh264's fast paths, Xvfb for capture,
/// Debian's Chromium for the browser end-to-end tests, and the bench's peers (ffmpeg,
/// x11vnc, noVNC) for its smoke run.
pub fn run(extra: &[String]) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let result = steps(extra);
    crate::system::print_times();
    print_failed_tests();
    println!(
        "xtask: cargo xtask test took {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    result
}

/// The tests that failed in this run's nextest runs, read from each run's JUnit report.
static FAILED: std::sync::Mutex<Vec<crate::junit::Failure>> = std::sync::Mutex::new(Vec::new());

/// Where nextest writes each run's JUnit report (.config/nextest.toml).
fn junit_report() -> std::path::PathBuf {
    crate::system::target_dir().join("nextest/default/junit.xml")
}

/// Remember the failures of the nextest run that just ended, the flaky ones too. The
/// report is removed before each run: one missing after it means the run wrote none (it
/// failed before running tests), never an older run's read again.
fn read_failed_tests() {
    let report = junit_report();
    match std::fs::read_to_string(&report) {
        Ok(xml) => FAILED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(crate::junit::failures(&xml)),
        Err(e) => println!("xtask: no test report at {}: {e}", report.display()),
    }
}

/// The failed tests again, last, where the end of a log shows them: each with why and the
/// last lines it wrote (its whole output is further up, where nextest printed it).
fn print_failed_tests() {
    let failed = FAILED.lock().unwrap_or_else(|e| e.into_inner());
    if failed.is_empty() {
        return;
    }
    let flaky = failed.iter().filter(|f| f.flaky).count();
    println!(
        "xtask: {} test(s) failed, {flaky} of them only once (flaky: passed on the retry):",
        failed.len()
    );
    for failure in failed.iter() {
        let label = if failure.flaky { "FLAKY" } else { "FAILED" };
        println!("xtask: {label} {} ({})", failure.test, failure.kind);
        for line in failure.why.lines() {
            println!("xtask:   | {line}");
        }
        if !failure.tail.is_empty() {
            println!("xtask:   its last lines on stderr before that:");
            for line in &failure.tail {
                let short: String = line.chars().take(200).collect();
                println!("xtask:   > {short}");
            }
        }
    }
    let names = |flaky: bool| {
        failed
            .iter()
            .filter(|f| f.flaky == flaky)
            .map(|f| f.test.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("xtask: failed: {}", names(false));
    println!("xtask: flaky: {}", names(true));
}

fn steps(extra: &[String]) -> anyhow::Result<()> {
    // Every Debian package of the run in one apt transaction (one download, one unpack,
    // one run of the triggers), in the background while the workspace compiles; what
    // compiling needs is installed first.
    let mut packages: Vec<&str> = crate::bench::PACKAGES.to_vec();
    // Pebble, the ACME test server the signaling server's ACME test orders from.
    packages.push("pebble");
    // PostgreSQL, which the store's tests (signaling/tests/store.rs) and the restart and
    // two-server tests run as a real server of their own in a temporary directory; nginx,
    // the proxy in front of two servers with docs/self-hosting.md's configuration; Redis,
    // through which several servers share their counts (signaling/tests/shared_counts.rs).
    packages.extend(["postgresql", "nginx", "redis-server"]);
    // The network-namespace tests (tests/src/netns.rs): routers' rules, their traffic,
    // kill and sysctl, and an X client that checks the display from inside a namespace;
    // coturn, the external TURN server the NAT tests run beside the embedded one.
    packages.extend(["nftables", "socat", "procps", "x11-utils", "coturn"]);
    // The agent's window: xdotool clicks it as a customer would, ImageMagick's `import`
    // photographs it for target/e2e-artifacts.
    // The libraries winit opens at run time on X11 are the window's only system needs.
    // Openbox: a window manager, as a customer's desktop has, which the frame must not
    // lose the focus to.
    packages.extend(["xdotool", "imagemagick", "openbox"]);
    // xclip copies and pastes in the X session as any program does (the clipboard tests).
    packages.push("xclip");
    packages.extend(crate::AGENT_WINDOW_LIBRARIES);
    // The Windows agent, cross-built, and the Wine its end-to-end tests run it under.
    packages.extend(crate::windows::PACKAGES);
    packages.extend(crate::windows::WINE);
    // The package check's own needs and the .deb's tools (package.rs).
    packages.extend(crate::package_check::PACKAGES);
    packages.extend(crate::package::PACKAGES);
    // The console's JavaScript tests.
    if !has_node() {
        packages.push("nodejs");
    }
    ensure_packages(FOR_THE_BUILD)?;
    let installing = crate::system::install_packages_in_background(
        &packages,
        &crate::system::target_dir().join("apt.log"),
    )?;
    crate::system::ensure_openh264_assembly()?;
    crate::windows::ensure_rust_target(crate::windows::TARGET)?;
    exec(cargo().args(["fmt", "--all", "--check"]))?;
    // `cargo clippy --all-targets -- -D warnings`, for Linux, Windows and the macOS check:
    // every build below lints the workspace's crates as it compiles them.
    crate::system::lint_while_building()?;
    // The seam a macOS agent would plug into stays portable: the platform-neutral crates
    // type-check for macOS (no macOS backend exists yet).
    crate::windows::ensure_rust_target("aarch64-apple-darwin")?;
    exec(cargo().args([
        "check",
        "--target",
        "aarch64-apple-darwin",
        "--package",
        "tandem-protocol",
        "--package",
        "tandem-session",
        "--package",
        "tandem-capture",
        "--package",
        "tandem-input",
    ]))?;
    // Build every target once, the agent binary included: the end-to-end tests run it,
    // and building it inside a test would take minutes on this machine. Linted as it is
    // built (see above): this is `cargo clippy --workspace --all-targets`.
    let built = exec(cargo().args(["build", "--workspace", "--all-targets"]));
    let installed = installing.map_or(Ok(()), |apt| {
        apt.wait()
            .context("could not install the test run's Debian packages")
    });
    all([built, installed])?;
    crate::windows::ensure_toolchain()?;
    // The console's JavaScript against the protocol's golden fixtures.
    exec(std::process::Command::new("node").args(["--test", "signaling/web/tests/"]))?;
    ensure_aiosmtpd()?;
    // The Windows agent and the Wine tests' window, linted as they are built too: the
    // code only Windows compiles (capture, input and the agent's Windows backends).
    let windows = crate::windows::cargo_for_windows(&[
        "build",
        "--package",
        "tandem-agent",
        "--package",
        "tandem-wine-window",
    ])?;
    if has_nextest() {
        // The Windows build is CPU alone, the tests mostly wait (on browsers, networks,
        // timeouts): it builds in the background on the CPU the tests leave idle, and the
        // Wine tests run once it is done. The test runs use nextest's list of the test
        // binaries rather than cargo, which the Windows build locks while it builds.
        let reuse = nextest_reuse()?;
        let logs = crate::system::target_dir();
        let idle = crate::system::Priority::Idle;
        let build = crate::system::spawn(&windows, &logs.join("windows-build.log"), idle)?;
        let nextest = |filter: &str, none: &str| {
            let _ = std::fs::remove_file(junit_report());
            let result = exec(
                cargo()
                    .args(["nextest", "run", "--no-fail-fast", "--no-tests", none])
                    .args(&reuse)
                    .args(["-E", filter])
                    .env("TANDEM_TEST_PREBUILT", "1")
                    .args(extra),
            );
            read_failed_tests();
            result
        };
        let tests = nextest(&format!("not ({WINE_TESTS} | {TIMED_TESTS})"), "pass");
        // The bench's smoke run but its Wine section, while the Windows build finishes (its
        // figures are not for comparison anyway).
        let smoke = crate::bench::smoke(&["--skip", "wine"], "bench-smoke");
        let built = build.wait();
        // With no filter of the caller's, a run of the stall test or the Wine tests that
        // finds none is a mistake (a renamed test or binary), not a pass.
        let none = if extra.is_empty() { "fail" } else { "pass" };
        // The poor-link test holds stalls to a second: it has the machine to itself, after
        // the Windows build. (Beside that build, even at SCHED_IDLE, a stall once took
        // 1.03 s; pausing the build through the test cost its tail the CPU the test leaves.)
        let timed = nextest(TIMED_TESTS, none);
        let wine = built.is_ok().then(|| {
            nextest(WINE_TESTS, none)
                .and_then(|()| crate::bench::smoke(&["--only", "wine"], "bench-smoke-wine"))
        });
        all([tests, timed, smoke, built, wine.unwrap_or(Ok(()))])?;
    } else {
        println!("xtask: cargo-nextest not found; using cargo test");
        let mut windows = windows;
        exec(&mut windows)?;
        exec(
            cargo()
                .args(["test", "--workspace", "--no-fail-fast"])
                .env("TANDEM_TEST_PREBUILT", "1")
                .args(extra),
        )?;
        crate::bench::smoke(&[], "bench-smoke")?;
    }
    // The server's .deb from this debug build: install, run as its user, log in, purge.
    crate::package_check::run()
}

/// Every result, failures all reported: one failure does not hide another.
fn all<const N: usize>(results: [anyhow::Result<()>; N]) -> anyhow::Result<()> {
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(Result::err)
        .map(|e| format!("{e:#}"))
        .collect();
    match failures.as_slice() {
        [] => Ok(()),
        [one] => anyhow::bail!("{one}"),
        many => anyhow::bail!("{} steps failed:\n- {}", many.len(), many.join("\n- ")),
    }
}

/// What compiling the workspace needs from Debian: pkg-config and fontconfig's headers
/// (the agent window's fonts), nasm (openh264's assembly).
const FOR_THE_BUILD: &[&str] = &["pkg-config", "nasm", "libfontconfig-dev"];

/// The tests that run the Windows agent under Wine (tests/tests/wine.rs), as a nextest
/// filterset.
const WINE_TESTS: &str = "binary_id(tandem-tests::e2e) & test(/^wine::/)";

/// The test that holds the picture's stalls on a poor link to a second
/// (tests/tests/impairment.rs), run once no background build is left. The other
/// impairment tests allow seconds, not tens of milliseconds, and run with the rest.
const TIMED_TESTS: &str = "binary_id(tandem-tests::e2e) & \
    test(=impairment::r6_the_picture_adapts_to_a_poor_link_and_comes_back_after_a_blackout)";

/// Arguments for `cargo nextest run` to use the test binaries already built, as nextest
/// lists them, without running cargo to build or list them again.
fn nextest_reuse() -> anyhow::Result<Vec<String>> {
    let dir = crate::system::target_dir().join("nextest-reuse");
    std::fs::create_dir_all(&dir)?;
    let binaries = dir.join("binaries.json");
    let metadata = dir.join("cargo.json");
    let write = |path: &std::path::Path, command: &mut std::process::Command| {
        let shown = format!("{command:?}").replace('"', "");
        println!("xtask: $ {shown} > {}", path.display());
        let output = command
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("could not start {shown}"))?;
        anyhow::ensure!(
            output.status.success(),
            "{shown} failed ({})",
            output.status
        );
        std::fs::write(path, output.stdout).with_context(|| format!("writing {}", path.display()))
    };
    write(
        &binaries,
        cargo().args([
            "nextest",
            "list",
            "--workspace",
            "--list-type",
            "binaries-only",
            "--message-format",
            "json",
        ]),
    )?;
    write(
        &metadata,
        cargo().args(["metadata", "--format-version", "1"]),
    )?;
    Ok(vec![
        "--binaries-metadata".into(),
        binaries.to_string_lossy().into_owned(),
        "--cargo-metadata".into(),
        metadata.to_string_lossy().into_owned(),
    ])
}

/// The invitation tests run a real SMTP server: Python's aiosmtpd, from PyPI (or Debian).
fn ensure_aiosmtpd() -> anyhow::Result<()> {
    let importable = || {
        std::process::Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if importable() {
        return Ok(());
    }
    println!("xtask: installing aiosmtpd for the SMTP tests");
    let pip = exec(
        std::process::Command::new("python3").args(["-m", "pip", "install", "--quiet", "aiosmtpd"]),
    );
    if pip.is_err() || !importable() {
        ensure_packages(&["python3-aiosmtpd"])?;
    }
    if importable() {
        Ok(())
    } else {
        anyhow::bail!("python3 cannot import aiosmtpd even after installing it")
    }
}

fn has_node() -> bool {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}
