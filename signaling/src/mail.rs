//! Sending invitations by email (R3) through the site's SMTP server, with lettre. The words
//! come from Fluent catalogues, `signaling/locales/<lang>/email.ftl`, in the language the
//! inviting rep's console uses (docs/i18n.md).

use std::time::Duration;

use fluent_bundle::{FluentArgs, FluentBundle, FluentResource};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tandem_protocol::Invitee;
use unic_langid::{LanguageIdentifier, langid};

use crate::store::{InvitationRecord, SmtpSettings, TlsMode};

/// How long one delivery attempt may take before it counts as failed.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// The languages an invitation can be written in: the console's. The console says which
/// with the `invite` (and `retry_invite`) message; nothing or anything else is English.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Language {
    #[default]
    English,
    NorwegianBokmal,
}

impl Language {
    /// `en` or `nb`, as the console names them; Norwegian in any form (`no`, `nn`, with a
    /// region) is Bokmål, and anything unknown is English.
    pub fn from_tag(tag: Option<&str>) -> Self {
        let primary = tag
            .unwrap_or_default()
            .split(['-', '_'])
            .next()
            .unwrap_or_default();
        if ["nb", "no", "nn"]
            .iter()
            .any(|n| primary.eq_ignore_ascii_case(n))
        {
            Self::NorwegianBokmal
        } else {
            Self::English
        }
    }

    fn id(self) -> LanguageIdentifier {
        match self {
            Self::English => langid!("en"),
            Self::NorwegianBokmal => langid!("nb"),
        }
    }

    fn catalogue(self) -> &'static str {
        match self {
            Self::English => include_str!("../locales/en/email.ftl"),
            Self::NorwegianBokmal => include_str!("../locales/nb/email.ftl"),
        }
    }
}

/// An invitation's words in one language, with English for any message it lacks.
struct Words {
    bundles: Vec<FluentBundle<FluentResource>>,
}

/// Stand-ins for markup while a paragraph is escaped for HTML: private-use characters that
/// no catalogue or name needs.
const MARK_OPEN: char = '\u{E000}';
const MARK_CLOSE: char = '\u{E001}';

impl Words {
    fn new(language: Language) -> Self {
        let mut languages = vec![language];
        if language != Language::English {
            languages.push(Language::English);
        }
        let bundles = languages
            .into_iter()
            .map(|l| bundle(l.id(), l.catalogue()))
            .collect();
        Self { bundles }
    }

    /// The message `id` as plain text; its id if no catalogue has it (a test keeps them
    /// complete).
    fn text(&self, id: &str, args: &[(&str, &str)]) -> String {
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            fluent_args.set(*name, *value);
        }
        for bundle in &self.bundles {
            let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
                continue;
            };
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
            if errors.is_empty() {
                return text.into_owned();
            }
            tracing::error!(message = id, "email catalogue: {errors:?}");
        }
        tracing::error!(message = id, "email catalogue: no such message");
        id.to_owned()
    }

    /// The message `id` as HTML: its own words escaped, and `args` (markup, already
    /// escaped) put in as they are.
    fn html(&self, id: &str, args: &[(&str, String)]) -> String {
        let marks: Vec<String> = (0..args.len())
            .map(|i| format!("{MARK_OPEN}{i}{MARK_CLOSE}"))
            .collect();
        let marked: Vec<(&str, &str)> = args
            .iter()
            .zip(&marks)
            .map(|((name, _), mark)| (*name, mark.as_str()))
            .collect();
        let mut html = escape(&self.text(id, &marked));
        for ((_, markup), mark) in args.iter().zip(&marks) {
            html = html.replace(mark.as_str(), markup);
        }
        html
    }
}

fn bundle(language: LanguageIdentifier, catalogue: &'static str) -> FluentBundle<FluentResource> {
    let resource =
        FluentResource::try_new(catalogue.to_owned()).unwrap_or_else(|(resource, errors)| {
            tracing::error!("email catalogue {language}: {errors:?}");
            resource
        });
    let mut bundle = FluentBundle::new(vec![language]);
    // Names and links go into the mail as they are, without Unicode isolation marks.
    bundle.set_use_isolating(false);
    if let Err(errors) = bundle.add_resource(resource) {
        tracing::error!("email catalogue: {errors:?}");
    }
    bundle
}

/// The subject, plain text and HTML of an invitation.
#[derive(Debug)]
pub struct Letter {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What the invitee reads, in `language`. A customer gets the join link and the way in by
/// number; a rep gets a link that leads through login to Assist Session.
pub fn letter(invitation: &InvitationRecord, language: Language) -> Letter {
    let words = Words::new(language);
    let number = display_number(&invitation.session);
    let (by, link, page) = (
        invitation.by_name.as_str(),
        invitation.link.as_str(),
        invitation.join_page.as_str(),
    );
    let p = |html: String| format!("<p>{html}</p>");
    let hello = words.text("hello", &[]);
    let link_html = |button: &str| {
        p(format!(
            "<a href=\"{}\">{}</a>",
            escape(link),
            escape(&words.text(button, &[]))
        ))
    };
    match invitation.invitee {
        Invitee::Customer => Letter {
            subject: words.text("customer-subject", &[("by", by)]),
            text: paragraphs(&[
                hello.clone(),
                words.text("customer-invites", &[("by", by)]),
                format!("{}\n{link}", words.text("customer-link-intro", &[])),
                words.text("customer-by-number", &[("page", page), ("number", &number)]),
                words.text("customer-consent", &[]),
            ]),
            html: [
                p(escape(&hello)),
                p(words.html("customer-invites", &[("by", escape(by))])),
                link_html("customer-link-button"),
                p(words.html(
                    "customer-by-number",
                    &[
                        ("page", format!("<a href=\"{0}\">{0}</a>", escape(page))),
                        ("number", format!("<strong>{}</strong>", escape(&number))),
                    ],
                )),
                p(words.html("customer-consent", &[])),
            ]
            .concat(),
        },
        Invitee::SupportRep => Letter {
            subject: words.text("rep-subject", &[("by", by), ("number", &number)]),
            text: paragraphs(&[
                hello.clone(),
                words.text("rep-asks", &[("by", by), ("number", &number)]),
                format!("{}\n{link}", words.text("rep-link-intro", &[])),
                words.text("rep-by-number", &[("number", &number)]),
            ]),
            html: [
                p(escape(&hello)),
                p(words.html(
                    "rep-asks",
                    &[
                        ("by", escape(by)),
                        ("number", format!("<strong>{}</strong>", escape(&number))),
                    ],
                )),
                link_html("rep-link-button"),
                p(words.html("rep-by-number", &[("number", escape(&number))])),
            ]
            .concat(),
        },
    }
}

/// Plain-text paragraphs: a blank line between them, a newline at the end.
fn paragraphs(parts: &[String]) -> String {
    let mut text = parts.join("\n\n");
    text.push('\n');
    text
}

/// Send one invitation. The error is a sentence for the rep's console.
pub async fn send(
    settings: &SmtpSettings,
    invitation: &InvitationRecord,
    language: Language,
) -> Result<(), String> {
    let from: Mailbox = settings.from.parse().map_err(|e| {
        format!(
            "the sender address {:?} in the mail settings is invalid: {e}",
            settings.from
        )
    })?;
    let to: Mailbox = invitation
        .address
        .parse()
        .map_err(|e| format!("{:?} is not an email address: {e}", invitation.address))?;
    let letter = letter(invitation, language);
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(letter.subject)
        .multipart(MultiPart::alternative_plain_html(letter.text, letter.html))
        .map_err(|e| format!("could not compose the message: {e}"))?;

    let builder = match settings.tls {
        TlsMode::None => {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.as_str())
        }
        TlsMode::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
            .map_err(|e| format!("mail server {}: {e}", settings.host))?,
        TlsMode::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)
            .map_err(|e| format!("mail server {}: {e}", settings.host))?,
    };
    let mut builder = builder.port(settings.port).timeout(Some(SEND_TIMEOUT));
    if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    let transport = builder.build();
    let attempt = tokio::time::timeout(SEND_TIMEOUT, transport.send(message)).await;
    match attempt {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(describe(settings, &e)),
        Err(_) => Err(format!(
            "the mail server {}:{} did not answer within {} seconds",
            settings.host,
            settings.port,
            SEND_TIMEOUT.as_secs()
        )),
    }
}

fn describe(settings: &SmtpSettings, error: &lettre::transport::smtp::Error) -> String {
    let server = format!("{}:{}", settings.host, settings.port);
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !detail.contains(&text) {
            detail = format!("{detail}: {text}");
        }
        source = cause.source();
    }
    if error.is_permanent() {
        format!("the mail server {server} refused the message: {detail}")
    } else {
        format!("could not send through the mail server {server}: {detail}")
    }
}

/// A `mailto:` URL that opens the rep's own email program with the same letter.
pub fn mailto(invitation: &InvitationRecord, language: Language) -> String {
    let letter = letter(invitation, language);
    format!(
        "mailto:{}?subject={}&body={}",
        percent_encode(&invitation.address),
        percent_encode(&letter.subject),
        percent_encode(&letter.text)
    )
}

/// RFC 3986 percent-encoding of everything but unreserved characters (and `@`, which mail
/// programs expect as is in the address).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'@' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn display_number(digits: &str) -> String {
    match digits.parse::<tandem_protocol::SessionNumber>() {
        Ok(n) => n.to_string(),
        Err(_) => digits.to_owned(),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invitation(invitee: Invitee, by: &str) -> InvitationRecord {
        InvitationRecord {
            id: 1,
            session: "123456789".into(),
            invitee,
            address: "ann@example.com".into(),
            by_name: by.into(),
            link: "http://127.0.0.1:8080/j/secret".into(),
            join_page: "http://127.0.0.1:8080/join".into(),
            state: "sending".into(),
            reason: None,
        }
    }

    #[test]
    fn a_customer_letter_has_the_rep_the_number_the_link_and_the_website() {
        let l = letter(
            &invitation(Invitee::Customer, "Rita Rep"),
            Language::English,
        );
        for part in [&l.text, &l.html] {
            assert!(part.contains("Rita Rep"));
            assert!(part.contains("123 456 789"));
            assert!(part.contains("http://127.0.0.1:8080/j/secret"));
            assert!(part.contains("http://127.0.0.1:8080/join"));
        }
    }

    #[test]
    fn a_mailto_carries_the_same_letter_encoded() {
        let url = mailto(
            &invitation(Invitee::Customer, "Rita Rep"),
            Language::English,
        );
        assert!(url.starts_with("mailto:ann@example.com?subject=Rita%20Rep%20invites"));
        assert!(
            url.contains("http%3A%2F%2F127.0.0.1%3A8080%2Fj%2Fsecret"),
            "{url}"
        );
        assert!(url.contains("123%20456%20789"), "{url}");
        assert!(!url.contains('\n') && !url.contains(' '));
    }

    #[test]
    fn names_cannot_inject_html() {
        for language in [Language::English, Language::NorwegianBokmal] {
            for invitee in [Invitee::Customer, Invitee::SupportRep] {
                let l = letter(&invitation(invitee, "<script>x</script>"), language);
                assert!(!l.html.contains("<script>"), "{language:?}: {}", l.html);
                assert!(
                    l.html.contains("&lt;script&gt;"),
                    "{language:?}: {}",
                    l.html
                );
            }
        }
    }

    #[test]
    fn the_english_letters_read_as_they_always_have() {
        let l = letter(
            &invitation(Invitee::Customer, "Rita Rep"),
            Language::English,
        );
        assert_eq!(l.subject, "Rita Rep invites you to a support session");
        assert_eq!(
            l.text,
            "Hello,\n\nRita Rep invites you to a remote support session.\n\n\
             Join with this link:\nhttp://127.0.0.1:8080/j/secret\n\n\
             Or open http://127.0.0.1:8080/join and type the session number 123 456 789.\n\n\
             Nothing on your computer is shared until you agree.\n"
        );
        assert_eq!(
            l.html,
            "<p>Hello,</p><p>Rita Rep invites you to a remote support session.</p>\
             <p><a href=\"http://127.0.0.1:8080/j/secret\">Join the session</a></p>\
             <p>Or open <a href=\"http://127.0.0.1:8080/join\">http://127.0.0.1:8080/join</a> \
             and type the session number <strong>123 456 789</strong>.</p>\
             <p>Nothing on your computer is shared until you agree.</p>"
        );
        let rep = letter(
            &invitation(Invitee::SupportRep, "Rita Rep"),
            Language::English,
        );
        assert_eq!(
            rep.subject,
            "Rita Rep asks you to assist in session 123 456 789"
        );
        assert_eq!(
            rep.html,
            "<p>Hello,</p><p>Rita Rep asks you to assist in support session \
             <strong>123 456 789</strong>.</p>\
             <p><a href=\"http://127.0.0.1:8080/j/secret\">Log in and assist</a></p>\
             <p>Or choose Assist Session on your dashboard and type 123 456 789.</p>"
        );
    }

    #[test]
    fn a_norwegian_letter_is_in_norwegian_with_the_same_facts() {
        for invitee in [Invitee::Customer, Invitee::SupportRep] {
            let l = letter(&invitation(invitee, "Rita Rep"), Language::NorwegianBokmal);
            assert!(l.text.starts_with("Hei,\n\n"), "{}", l.text);
            for part in [&l.subject, &l.text, &l.html] {
                assert!(part.contains("Rita Rep"), "{part}");
                assert!(
                    part.contains("123 456 789") || invitee == Invitee::Customer,
                    "{part}"
                );
            }
            for part in [&l.text, &l.html] {
                assert!(part.contains("http://127.0.0.1:8080/j/secret"), "{part}");
            }
        }
        let customer = letter(
            &invitation(Invitee::Customer, "Rita Rep"),
            Language::NorwegianBokmal,
        );
        assert_eq!(customer.subject, "Rita Rep inviterer deg til en støtteøkt");
        assert!(
            customer.html.contains(">Bli med i økten</a>"),
            "{}",
            customer.html
        );
        assert!(
            customer.text.contains("øktnummeret 123 456 789"),
            "{}",
            customer.text
        );
    }

    #[test]
    fn the_console_language_tag_picks_the_letter_language() {
        for (tag, language) in [
            (None, Language::English),
            (Some("en"), Language::English),
            (Some("nb"), Language::NorwegianBokmal),
            (Some("NB-no"), Language::NorwegianBokmal),
            (Some("no"), Language::NorwegianBokmal),
            (Some("nn_NO"), Language::NorwegianBokmal),
            (Some("de"), Language::English),
            (Some(""), Language::English),
            (Some("nbx"), Language::English),
        ] {
            assert_eq!(Language::from_tag(tag), language, "{tag:?}");
        }
    }

    /// Every message id a catalogue declares (a line `id = …`); each must parse.
    fn ids(language: Language) -> Vec<String> {
        let catalogue = language.catalogue();
        if let Err((_, errors)) = FluentResource::try_new(catalogue.to_owned()) {
            panic!("{language:?}: the catalogue does not parse: {errors:?}");
        }
        let bundle = bundle(language.id(), catalogue);
        let mut ids: Vec<String> = catalogue
            .lines()
            .filter(|line| line.starts_with(|c: char| c.is_ascii_alphabetic()))
            .filter_map(|line| line.split_once('=').map(|(id, _)| id.trim().to_owned()))
            .collect();
        for id in &ids {
            assert!(
                bundle.get_message(id).is_some(),
                "{language:?}: {id} did not parse"
            );
        }
        ids.sort();
        ids
    }

    #[test]
    fn every_language_has_exactly_the_english_messages() {
        let english = ids(Language::English);
        assert!(english.len() >= 10, "{english:?}");
        assert_eq!(ids(Language::NorwegianBokmal), english);
    }

    #[test]
    fn a_paragraph_own_words_are_escaped_and_its_markup_kept() {
        let words = Words::new(Language::English);
        let html = words.html(
            "customer-by-number",
            &[
                ("page", "<a href=\"x\">x</a>".into()),
                ("number", "<strong>1 &amp; 2</strong>".into()),
            ],
        );
        assert_eq!(
            html,
            "Or open <a href=\"x\">x</a> and type the session number <strong>1 &amp; 2</strong>."
        );
        assert_eq!(words.text("no-such-message", &[]), "no-such-message");
    }
}
