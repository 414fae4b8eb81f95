//! The configuration the .deb installs as /etc/tandem/tandem.toml
//! (signaling/debian/tandem.toml): the server takes it as shipped, every setting it shows
//! commented out is a key the server knows, and every key the server knows is shown, so
//! a new setting cannot go unmentioned there.

use std::path::PathBuf;

use tandem_signaling::{Config, Flags};

const SHIPPED: &str = include_str!("../debian/tandem.toml");

fn resolve(text: &str) -> anyhow::Result<Config> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("tandem.toml");
    std::fs::write(&path, text)?;
    Config::resolve(Flags {
        config: Some(path),
        ..Flags::default()
    })
}

/// `key = value` lines that are commented out: `# port = 8080`.
fn commented_settings() -> Vec<(&'static str, &'static str)> {
    SHIPPED
        .lines()
        .filter_map(|line| {
            let setting = line.strip_prefix("# ")?;
            let (key, _) = setting.split_once(" = ")?;
            let is_key = !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            is_key.then_some((key, setting))
        })
        .collect()
}

#[test]
fn the_shipped_file_serves_loopback_from_var_lib_tandem_and_offers_the_packaged_agent() {
    let config = resolve(SHIPPED).expect("the shipped configuration is valid");
    assert_eq!(config.bind.to_string(), "127.0.0.1");
    assert_eq!(config.port, 8080);
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/tandem"));
    assert_eq!(
        config.agent_binary,
        Some(PathBuf::from("/usr/share/tandem/tandem-agent"))
    );
    assert!(config.admin_password.is_none(), "a random one is printed");
}

#[test]
fn every_commented_setting_is_a_key_the_server_knows() {
    let settings = commented_settings();
    assert!(settings.len() >= 15, "found only {settings:?}");
    for (key, setting) in settings {
        // Alone, a setting may be incomplete (smtp_host wants smtp_from); never unknown.
        if let Err(e) = resolve(setting) {
            let e = format!("{e:#}");
            assert!(!e.contains("unknown field"), "{key}: {e}");
        }
    }
}

#[test]
fn every_key_the_server_knows_is_in_the_shipped_file() {
    // serde names every known key when it refuses an unknown one.
    let refused = format!(
        "{:#}",
        resolve("no_such_key = 1\n").expect_err("an unknown key is refused")
    );
    let (_, known) = refused
        .split_once("expected one of")
        .unwrap_or_else(|| panic!("no list of known keys in {refused:?}"));
    let known: Vec<&str> = known.split('`').skip(1).step_by(2).collect();
    assert!(known.contains(&"bind"), "{refused}");
    let shown: Vec<&str> = SHIPPED
        .lines()
        .filter_map(|line| line.trim_start_matches("# ").split_once(" = "))
        .map(|(key, _)| key)
        .collect();
    let missing: Vec<&&str> = known.iter().filter(|key| !shown.contains(key)).collect();
    assert!(
        missing.is_empty(),
        "describe {missing:?} in signaling/debian/tandem.toml (commented out, with its default)"
    );
}
