//! Every sentence the agent shows, in the customer's language: the flow says *what* to say
//! as a [`Text`] (a Fluent message id and its arguments); the [`Language`] the operating
//! system asks for turns it into words. Catalogues: `agent/locales/<lang>/agent.ftl`, each
//! with every id of the English one (a unit test below holds them to it).

use std::borrow::Cow;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// What to say: a message id and its arguments, rendered later in the customer's language.
#[derive(Clone, Debug, PartialEq)]
pub struct Text {
    pub id: &'static str,
    pub args: Vec<(&'static str, Arg)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Str(String),
    Num(i64),
    /// Another message, rendered first (e.g. "your whole screen" inside a question).
    Text(Box<Text>),
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Str(s)
    }
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Str(s.to_owned())
    }
}

impl From<i64> for Arg {
    fn from(n: i64) -> Self {
        Arg::Num(n)
    }
}

impl From<usize> for Arg {
    fn from(n: usize) -> Self {
        Arg::Num(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<Text> for Arg {
    fn from(t: Text) -> Self {
        Arg::Text(Box::new(t))
    }
}

impl Text {
    pub fn new(id: &'static str) -> Self {
        Self {
            id,
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, name: &'static str, value: impl Into<Arg>) -> Self {
        self.args.push((name, value.into()));
        self
    }
}

/// Where the agent talks to the customer: the words differ ("press Enter" or "click").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    Terminal,
    Window,
}

/// The catalogues shipped, by language tag.
const CATALOGUES: &[(&str, &str)] = &[
    ("en", include_str!("../locales/en/agent.ftl")),
    ("nb", include_str!("../locales/nb/agent.ftl")),
];

/// One language's messages, with English behind it for anything missing.
pub struct Language {
    tag: &'static str,
    bundle: FluentBundle<FluentResource>,
    english: Option<FluentBundle<FluentResource>>,
    surface: Surface,
}

impl std::fmt::Debug for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Language").field("tag", &self.tag).finish()
    }
}

impl Language {
    /// The language the operating system's settings ask for (`LANG`/`LC_*` on Linux, the
    /// user's locale on Windows), else English.
    pub fn from_os(surface: Surface) -> Self {
        let wanted = std::env::var("TANDEM_AGENT_LANG")
            .ok()
            .or_else(sys_locale::get_locale)
            .unwrap_or_default();
        Self::for_locale(&wanted, surface)
    }

    /// The best catalogue for a locale name such as `nb_NO.UTF-8`, `nb-NO`, `no` or `en-US`.
    pub fn for_locale(locale: &str, surface: Surface) -> Self {
        Self::new(pick(locale), surface)
    }

    fn new(tag: &'static str, surface: Surface) -> Self {
        let english = (tag != "en").then(|| bundle("en"));
        Self {
            tag,
            bundle: bundle(tag),
            english,
            surface,
        }
    }

    /// The words for `text`; the id itself if no catalogue has it (never panics).
    pub fn say(&self, text: &Text) -> String {
        let mut args = FluentArgs::new();
        args.set(
            "surface",
            match self.surface {
                Surface::Terminal => "terminal",
                Surface::Window => "window",
            },
        );
        for (name, value) in &text.args {
            let value: FluentValue = match value {
                Arg::Str(s) => s.clone().into(),
                Arg::Num(n) => (*n).into(),
                Arg::Text(inner) => self.say(inner).into(),
            };
            args.set(*name, value);
        }
        for bundle in std::iter::once(&self.bundle).chain(self.english.as_ref()) {
            if let Some(pattern) = bundle.get_message(text.id).and_then(|m| m.value()) {
                let mut errors = Vec::new();
                let words: Cow<str> = bundle.format_pattern(pattern, Some(&args), &mut errors);
                return words.into_owned();
            }
        }
        text.id.to_owned()
    }
}

/// A sentence about a problem on stderr, in the system's language: for the few that
/// lower layers report (one viewer's connection, one file message), where no window or
/// terminal front is at hand. `error` is the lower layer's own wording.
pub fn complain(id: &'static str, error: impl std::fmt::Display, more: &[(&'static str, String)]) {
    let mut text = Text::new(id).arg("error", format!("{error:#}"));
    for (name, value) in more {
        text = text.arg(name, value.clone());
    }
    eprintln!("{}", Language::from_os(Surface::Terminal).say(&text));
}

/// The shipped language for a locale name: Norwegian Bokmål for `nb` and `no` (Nynorsk
/// readers understand Bokmål better than English), else English.
fn pick(locale: &str) -> &'static str {
    let language = locale
        .split(['_', '-', '.', '@'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match language.as_str() {
        "nb" | "no" | "nn" => "nb",
        _ => "en",
    }
}

fn bundle(tag: &'static str) -> FluentBundle<FluentResource> {
    let source = CATALOGUES
        .iter()
        .find(|(t, _)| *t == tag)
        .map_or("", |(_, s)| *s);
    let langid: LanguageIdentifier = tag.parse().unwrap_or_default();
    let mut bundle = FluentBundle::new_concurrent(vec![langid]);
    // No Unicode isolation marks: terminals print them as boxes.
    bundle.set_use_isolating(false);
    // A catalogue with a syntax error still yields its good messages; the test below
    // fails on any error, so a broken catalogue never ships.
    let resource = FluentResource::try_new(source.to_owned()).unwrap_or_else(|(r, _)| r);
    let _ = bundle.add_resource(resource);
    bundle
}

/// English words for tests: what a customer with an English system reads in a terminal.
#[cfg(test)]
pub fn english(text: &Text) -> String {
    Language::new("en", Surface::Terminal).say(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(source: &str) -> Vec<String> {
        let resource = FluentResource::try_new(source.to_owned())
            .unwrap_or_else(|(_, errors)| panic!("catalogue does not parse: {errors:?}"));
        let mut ids: Vec<String> = resource
            .entries()
            .filter_map(|entry| match entry {
                fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                _ => None,
            })
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn every_catalogue_parses_and_has_every_english_message() {
        let english = ids(CATALOGUES[0].1);
        assert!(
            english.len() > 30,
            "the English catalogue has {} messages",
            english.len()
        );
        for (tag, source) in CATALOGUES {
            let ids = ids(source);
            // Fluent keeps the first of two messages with one id: the second would never
            // be said.
            let mut unique = ids.clone();
            unique.dedup();
            assert_eq!(unique, ids, "catalogue {tag} defines an id twice");
            assert_eq!(ids, english, "catalogue {tag} differs from English");
        }
    }

    #[test]
    fn locales_pick_the_shipped_language() {
        assert_eq!(pick("nb_NO.UTF-8"), "nb");
        assert_eq!(pick("nb-NO"), "nb");
        assert_eq!(pick("no"), "nb");
        assert_eq!(pick("nn_NO"), "nb");
        assert_eq!(pick("en_GB.UTF-8"), "en");
        assert_eq!(pick("de-DE"), "en");
        assert_eq!(pick(""), "en");
        assert_eq!(pick("C"), "en");
    }

    #[test]
    fn arguments_and_nested_texts_render_in_each_language() {
        let text = Text::new("ask-share")
            .arg("rep", "Rita Rep")
            .arg("what", Text::new("what-desktop"));
        let en = Language::for_locale("en_US", Surface::Window).say(&text);
        let nb = Language::for_locale("nb_NO.UTF-8", Surface::Window).say(&text);
        assert!(
            en.contains("Rita Rep") && en.contains("your whole screen"),
            "{en}"
        );
        assert!(
            nb.contains("Rita Rep") && nb.contains("hele skjermen"),
            "{nb}"
        );
        assert_ne!(en, nb);
    }

    #[test]
    fn an_unknown_id_renders_as_itself() {
        let language = Language::for_locale("nb", Surface::Terminal);
        assert_eq!(
            language.say(&Text::new("no-such-message")),
            "no-such-message"
        );
    }

    #[test]
    fn the_surface_changes_the_instructions() {
        let text = Text::new("sharing-started").arg("what", Text::new("what-desktop"));
        let terminal = Language::for_locale("en", Surface::Terminal).say(&text);
        let window = Language::for_locale("en", Surface::Window).say(&text);
        assert!(terminal.contains("Enter"), "{terminal}");
        assert!(!window.contains("Enter"), "{window}");
    }
}
