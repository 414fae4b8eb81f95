//! Debian packages assembled here and written by `dpkg-deb`, with Debian's own tools for
//! what a packager computes: `dpkg-shlibdeps` for the shared libraries a binary needs,
//! `strip`, `md5sum`. This replaced cargo-deb, which every CI run had to compile first
//! (about 170 s of CPU) for the one package it checks.
//!
//! What goes into each package is in [`SERVER`] and [`AGENT`]; the maintainer scripts and
//! the systemd unit are files in `signaling/debian/`. The systemd snippets added at each
//! script's `#DEBHELPER#` line are those `dh_installsystemd` writes, so the package behaves
//! as one built by debhelper: enabled on install, started where systemd runs, restarted on
//! upgrade, stopped on removal, its state purged with the package.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};

use crate::system::root;

/// One binary package.
pub struct Spec {
    pub name: &'static str,
    /// The Cargo package whose `description` is the package's synopsis.
    crate_dir: &'static str,
    section: &'static str,
    /// Besides the shared libraries the binaries link (found by `dpkg-shlibdeps`).
    depends: &'static [&'static str],
    extended_description: &'static str,
    /// (source, destination, mode). A source under `target/release/` is taken from the
    /// profile's directory; others are relative to the workspace root. A destination
    /// ending in `/` is a directory the file keeps its name in.
    assets: &'static [(&'static str, &'static str, u32)],
    /// The directory with `postinst`, `prerm`, `postrm` (any of them) and `<name>.service`.
    debian_dir: Option<&'static str>,
    /// Whether a systemd unit `<name>.service` from `debian_dir` is installed, enabled and
    /// started.
    service: bool,
}

const MAINTAINER: &str = "Tandem maintainers <maintainers@tandem.invalid>";
const COPYRIGHT: &str = "Tandem maintainers";

/// The server, its systemd unit, `/etc/tandem/tandem.toml`, the `tandem` system user and
/// `/var/lib/tandem` (signaling/debian/), and the agent customers download from it, so the
/// download always matches the server's protocol version.
pub const SERVER: Spec = Spec {
    name: "tandem-signaling",
    crate_dir: "signaling",
    section: "net",
    depends: &["adduser"],
    extended_description: "Tandem is a self-hosted remote support system. This package runs \
        its signaling server and web console as the systemd service tandem-signaling, as the \
        system user tandem, with its configuration in /etc/tandem/tandem.toml and its \
        database in /var/lib/tandem. It also carries the Linux agent that customers download \
        from the server.",
    assets: &[
        ("target/release/tandem-signaling", "usr/bin/", 0o755),
        (
            "target/release/tandem-agent",
            "usr/share/tandem/tandem-agent",
            0o755,
        ),
        (
            "signaling/debian/tandem.toml",
            "etc/tandem/tandem.toml",
            0o640,
        ),
        (
            "docs/self-hosting.md",
            "usr/share/doc/tandem-signaling/",
            0o644,
        ),
    ],
    debian_dir: Some("signaling/debian"),
    service: true,
};

/// The Linux agent in /usr/bin.
pub const AGENT: Spec = Spec {
    name: "tandem-agent",
    crate_dir: "agent",
    section: "net",
    // What winit opens at run time for the window (dlopen), which no ELF header names.
    depends: crate::AGENT_WINDOW_LIBRARIES,
    extended_description: "The customer side of Tandem, a self-hosted remote support system: \
        joins a support session, asks the customer's consent, then shares their X11 desktop or \
        one window with the support rep over WebRTC and, once allowed, lets the rep control it.",
    assets: &[("target/release/tandem-agent", "usr/bin/", 0o755)],
    debian_dir: None,
    service: false,
};

/// The Debian revision of every package built here.
const REVISION: &str = "1";

/// Build `spec`'s package from the binaries in `profile_dir` (`target/release`,
/// `target/debug`) into `out`; returns the package's path. `fast` compresses little (for
/// a package installed once, here).
pub fn build(spec: &Spec, profile_dir: &Path, out: &Path, fast: bool) -> anyhow::Result<PathBuf> {
    let staging = crate::system::target_dir()
        .join("deb-staging")
        .join(spec.name);
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("could not clear {}", staging.display()))?;
    }
    let tree = staging.join("root");
    let control_dir = tree.join("DEBIAN");
    create_dir(&control_dir)?;

    let mut elves = Vec::new();
    for &(source, destination, mode) in spec.assets {
        let from = match source.strip_prefix("target/release/") {
            Some(binary) => profile_dir.join(binary),
            None => root().join(source),
        };
        ensure!(
            from.is_file(),
            "{} is missing: build it first ({} packages it)",
            from.display(),
            spec.name
        );
        let to = if destination.ends_with('/') {
            let name = from.file_name().context("an asset without a file name")?;
            tree.join(destination).join(name)
        } else {
            tree.join(destination)
        };
        create_dir(
            to.parent()
                .context("an asset's destination has no folder")?,
        )?;
        if is_elf(&from)? {
            // Debug info stays with the build; the package carries what runs.
            crate::system::capture(
                Command::new("strip")
                    .arg("--strip-unneeded")
                    .arg("-o")
                    .arg(&to)
                    .arg(&from),
            )?;
            elves.push(to.clone());
        } else {
            std::fs::copy(&from, &to)
                .with_context(|| format!("could not copy {}", from.display()))?;
        }
        set_mode(&to, mode)?;
    }

    let doc = tree.join("usr/share/doc").join(spec.name);
    create_dir(&doc)?;
    let copyright = format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: {}\nCopyright: {COPYRIGHT}\nLicense: UNLICENSED\n",
        spec.name
    );
    write(&doc.join("copyright"), &copyright, 0o644)?;

    let debian_dir = spec.debian_dir.map(|d| root().join(d));
    if spec.service {
        let dir = debian_dir
            .as_ref()
            .context("a service needs its debian folder")?;
        let unit = dir.join(format!("{}.service", spec.name));
        let units = tree.join("usr/lib/systemd/system");
        create_dir(&units)?;
        let installed = units.join(format!("{}.service", spec.name));
        std::fs::copy(&unit, &installed)
            .with_context(|| format!("could not copy {}", unit.display()))?;
        set_mode(&installed, 0o644)?;
    }

    // Maintainer scripts: the package's own, with the systemd snippets at `#DEBHELPER#`.
    let unit = format!("{}.service", spec.name);
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        let own = match &debian_dir {
            Some(dir) if dir.join(script).is_file() => Some(
                std::fs::read_to_string(dir.join(script))
                    .with_context(|| format!("could not read {script}"))?,
            ),
            _ => None,
        };
        let snippet = if spec.service {
            systemd_snippet(script, &unit)
        } else {
            String::new()
        };
        let text = match own {
            Some(own) => {
                ensure!(
                    snippet.is_empty() || own.contains("#DEBHELPER#"),
                    "{script} of {} has no #DEBHELPER# line for the systemd snippet",
                    spec.name
                );
                own.replace("#DEBHELPER#", snippet.trim_end())
            }
            None if snippet.is_empty() => continue,
            None => format!("#!/bin/sh\nset -e\n{snippet}"),
        };
        write(&control_dir.join(script), &text, 0o755)?;
    }

    // Everything under /etc is a conffile: dpkg keeps an admin's changes on upgrade.
    let files = files_under(&tree)?;
    let conffiles: String = files
        .iter()
        .filter(|f| f.starts_with("etc/"))
        .map(|f| format!("/{f}\n"))
        .collect();
    if !conffiles.is_empty() {
        write(&control_dir.join("conffiles"), &conffiles, 0o644)?;
    }
    let sums = crate::system::capture(Command::new("md5sum").args(&files).current_dir(&tree))?;
    write(&control_dir.join("md5sums"), &format!("{sums}\n"), 0o644)?;

    let version = format!("{}-{REVISION}", env!("CARGO_PKG_VERSION"));
    let architecture = crate::system::capture(Command::new("dpkg").arg("--print-architecture"))?;
    let architecture = architecture.trim();
    let depends = merge_depends(shared_libraries(&staging, &elves)?, spec.depends);
    let installed_kib: u64 = files
        .iter()
        .map(|f| std::fs::metadata(tree.join(f)).map(|m| m.len().div_ceil(1024)))
        .sum::<std::io::Result<u64>>()?;
    let mut control = format!(
        "Package: {}\nVersion: {version}\nArchitecture: {architecture}\nSection: {}\n\
         Priority: optional\nMaintainer: {MAINTAINER}\nInstalled-Size: {installed_kib}\n",
        spec.name, spec.section
    );
    if !depends.is_empty() {
        control.push_str(&format!("Depends: {}\n", depends.join(", ")));
    }
    control.push_str(&format!(
        "Description: {}\n{}",
        synopsis(spec.crate_dir)?,
        wrap_description(spec.extended_description)
    ));
    write(&control_dir.join("control"), &control, 0o644)?;

    create_dir(out)?;
    let deb = out.join(format!("{}_{version}_{architecture}.deb", spec.name));
    let compression: &[&str] = if fast { &["-Zgzip", "-z1"] } else { &["-Zxz"] };
    crate::system::exec(
        Command::new("dpkg-deb")
            .arg("--root-owner-group")
            .args(compression)
            .arg("--build")
            .arg(&tree)
            .arg(&deb),
    )?;
    Ok(deb)
}

/// The `Depends` entries for the shared libraries `binaries` link, as `dpkg-shlibdeps`
/// finds them from the installed libraries' packages.
fn shared_libraries(staging: &Path, binaries: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    if binaries.is_empty() {
        return Ok(Vec::new());
    }
    // dpkg-shlibdeps reads debian/control from its working directory (an empty one does).
    let work = staging.join("shlibdeps");
    create_dir(&work.join("debian"))?;
    write(&work.join("debian/control"), "", 0o644)?;
    let mut command = Command::new("dpkg-shlibdeps");
    command.arg("-O").current_dir(&work);
    for binary in binaries {
        command.arg(format!("-e{}", binary.display()));
    }
    let output = command
        .output()
        .context("dpkg-shlibdeps is missing (Debian package dpkg-dev)")?;
    ensure!(
        output.status.success(),
        "dpkg-shlibdeps failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .unwrap_or("");
    Ok(line
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect())
}

/// The linked libraries' entries, then each declared package they do not already name
/// (`libfontconfig1` is both linked and opened at run time: once, with its version).
fn merge_depends(found: Vec<String>, declared: &[&str]) -> Vec<String> {
    let named = |entry: &str| entry.split([' ', '(']).next().unwrap_or("").to_owned();
    let names: Vec<String> = found.iter().map(|e| named(e)).collect();
    let mut all = found;
    all.extend(
        declared
            .iter()
            .filter(|d| !names.contains(&named(d)))
            .map(|d| (*d).to_owned()),
    );
    all
}

/// The lines `dh_installsystemd` adds to `script` for a unit that is enabled and started.
fn systemd_snippet(script: &str, unit: &str) -> String {
    let text = match script {
        "postinst" => POSTINST_SYSTEMD,
        "prerm" => PRERM_SYSTEMD,
        "postrm" => POSTRM_SYSTEMD,
        _ => return String::new(),
    };
    text.replace("UNIT", unit)
}

const POSTINST_SYSTEMD: &str = r#"# Added by cargo xtask package (as dh_installsystemd does)
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ] ; then
	# This will only remove masks created by d-s-h on package removal.
	deb-systemd-helper unmask 'UNIT' >/dev/null || true
	# was-enabled defaults to true, so new installations run enable.
	if deb-systemd-helper --quiet was-enabled 'UNIT'; then
		deb-systemd-helper enable 'UNIT' >/dev/null || true
	else
		deb-systemd-helper update-state 'UNIT' >/dev/null || true
	fi
fi
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ] ; then
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "$2" ]; then
			_dh_action=restart
		else
			_dh_action=start
		fi
		deb-systemd-invoke $_dh_action 'UNIT' >/dev/null || true
	fi
fi
# End of the added section
"#;

const PRERM_SYSTEMD: &str = r#"# Added by cargo xtask package (as dh_installsystemd does)
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	deb-systemd-invoke stop 'UNIT' >/dev/null || true
fi
# End of the added section
"#;

const POSTRM_SYSTEMD: &str = r#"# Added by cargo xtask package (as dh_installsystemd does)
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = "remove" ]; then
	if [ -x "/usr/bin/deb-systemd-helper" ]; then
		deb-systemd-helper mask 'UNIT' >/dev/null || true
	fi
fi
if [ "$1" = "purge" ]; then
	if [ -x "/usr/bin/deb-systemd-helper" ]; then
		deb-systemd-helper purge 'UNIT' >/dev/null || true
		deb-systemd-helper unmask 'UNIT' >/dev/null || true
	fi
fi
# End of the added section
"#;

/// The `description` line of `<crate_dir>/Cargo.toml`: the package's synopsis.
fn synopsis(crate_dir: &str) -> anyhow::Result<String> {
    let manifest = root().join(crate_dir).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("could not read {}", manifest.display()))?;
    text.lines()
        .find_map(|line| {
            line.strip_prefix("description = \"")
                .and_then(|rest| rest.strip_suffix('"'))
        })
        .map(str::to_owned)
        .with_context(|| format!("{} has no one-line description", manifest.display()))
}

/// A control file's extended description: lines of at most 80 columns, each after a space.
fn wrap_description(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > 78 {
            out.push_str(&format!(" {line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!(" {line}\n"));
    }
    out
}

/// Every regular file under `tree` but `DEBIAN/`, relative to it, sorted.
fn files_under(tree: &Path) -> anyhow::Result<Vec<String>> {
    fn walk(dir: &Path, tree: &Path, out: &mut Vec<String>) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                if path != tree.join("DEBIAN") {
                    walk(&path, tree, out)?;
                }
            } else {
                let relative = path.strip_prefix(tree)?;
                let Some(relative) = relative.to_str() else {
                    bail!("{} is not UTF-8", path.display());
                };
                out.push(relative.to_owned());
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(tree, tree, &mut files)?;
    files.sort();
    Ok(files)
}

fn is_elf(path: &Path) -> anyhow::Result<bool> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    Ok(file.read_exact(&mut magic).is_ok() && magic == *b"\x7fELF")
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    // dpkg-deb wants 0755 folders whatever the umask.
    let mut current = Some(dir);
    while let Some(d) = current {
        if d.file_name().is_none() || !d.starts_with(crate::system::target_dir()) {
            break;
        }
        set_mode(d, 0o755)?;
        current = d.parent();
    }
    Ok(())
}

fn write(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("could not write {}", path.display()))?;
    set_mode(path, mode)
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("could not set the mode of {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_description_wraps_under_80_columns_with_a_leading_space() {
        let wrapped = wrap_description(SERVER.extended_description);
        assert!(wrapped.lines().count() > 2, "{wrapped}");
        for line in wrapped.lines() {
            assert!(line.starts_with(' ') && !line.starts_with("  "), "{line:?}");
            assert!(line.len() <= 80, "{line:?}");
        }
        let words: Vec<&str> = wrapped.split_whitespace().collect();
        let original: Vec<&str> = SERVER.extended_description.split_whitespace().collect();
        assert_eq!(words, original);
    }

    #[test]
    fn a_declared_package_the_libraries_already_name_is_not_repeated() {
        let found = vec![
            "libc6 (>= 2.35)".to_owned(),
            "libfontconfig1 (>= 2.12.6)".to_owned(),
        ];
        assert_eq!(
            merge_depends(found, &["libx11-6", "libfontconfig1", "adduser"]),
            [
                "libc6 (>= 2.35)",
                "libfontconfig1 (>= 2.12.6)",
                "libx11-6",
                "adduser"
            ]
        );
    }

    #[test]
    fn the_service_snippets_name_the_unit_and_only_the_unit() {
        let postinst = systemd_snippet("postinst", "tandem-signaling.service");
        assert!(postinst.contains("deb-systemd-helper enable 'tandem-signaling.service'"));
        assert!(postinst.contains("deb-systemd-invoke $_dh_action 'tandem-signaling.service'"));
        assert!(!postinst.contains("UNIT"));
        assert!(
            systemd_snippet("prerm", "x.service").contains("deb-systemd-invoke stop 'x.service'")
        );
        assert!(systemd_snippet("preinst", "x.service").is_empty());
    }

    #[test]
    fn the_synopses_are_read_from_the_crates() -> anyhow::Result<()> {
        assert!(synopsis("signaling")?.starts_with("Tandem's signaling server"));
        assert!(synopsis("agent")?.starts_with("Tandem's customer agent"));
        Ok(())
    }
}
