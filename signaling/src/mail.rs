//! Sending invitations by email (R3) through the site's SMTP server, with lettre.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tandem_protocol::Invitee;

use crate::store::{InvitationRecord, SmtpSettings, TlsMode};

/// How long one delivery attempt may take before it counts as failed.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// The subject, plain text and HTML of an invitation.
#[derive(Debug)]
pub struct Letter {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What the invitee reads. A customer gets the join link and the way in by number; a rep
/// gets a link that leads through login to Assist Session.
pub fn letter(invitation: &InvitationRecord) -> Letter {
    let number = display_number(&invitation.session);
    let by = &invitation.by_name;
    match invitation.invitee {
        Invitee::Customer => Letter {
            subject: format!("{by} invites you to a support session"),
            text: format!(
                "Hello,\n\n{by} invites you to a remote support session.\n\n\
                 Join with this link:\n{link}\n\n\
                 Or open {page} and type the session number {number}.\n\n\
                 Nothing on your computer is shared until you agree.\n",
                link = invitation.link,
                page = invitation.join_page,
            ),
            html: format!(
                "<p>Hello,</p><p>{by} invites you to a remote support session.</p>\
                 <p><a href=\"{link}\">Join the session</a></p>\
                 <p>Or open <a href=\"{page}\">{page}</a> and type the session number \
                 <strong>{number}</strong>.</p>\
                 <p>Nothing on your computer is shared until you agree.</p>",
                by = escape(by),
                link = escape(&invitation.link),
                page = escape(&invitation.join_page),
            ),
        },
        Invitee::SupportRep => Letter {
            subject: format!("{by} asks you to assist in session {number}"),
            text: format!(
                "Hello,\n\n{by} asks you to assist in support session {number}.\n\n\
                 Open this link and log in to join as an assistant:\n{link}\n\n\
                 Or choose Assist Session on your dashboard and type {number}.\n",
                link = invitation.link,
            ),
            html: format!(
                "<p>Hello,</p><p>{by} asks you to assist in support session \
                 <strong>{number}</strong>.</p>\
                 <p><a href=\"{link}\">Log in and assist</a></p>\
                 <p>Or choose Assist Session on your dashboard and type {number}.</p>",
                by = escape(by),
                link = escape(&invitation.link),
            ),
        },
    }
}

/// Send one invitation. The error is a sentence for the rep's console.
pub async fn send(settings: &SmtpSettings, invitation: &InvitationRecord) -> Result<(), String> {
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
    let letter = letter(invitation);
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
pub fn mailto(invitation: &InvitationRecord) -> String {
    let letter = letter(invitation);
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
        let l = letter(&invitation(Invitee::Customer, "Rita Rep"));
        for part in [&l.text, &l.html] {
            assert!(part.contains("Rita Rep"));
            assert!(part.contains("123 456 789"));
            assert!(part.contains("http://127.0.0.1:8080/j/secret"));
            assert!(part.contains("http://127.0.0.1:8080/join"));
        }
    }

    #[test]
    fn a_mailto_carries_the_same_letter_encoded() {
        let url = mailto(&invitation(Invitee::Customer, "Rita Rep"));
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
        let l = letter(&invitation(Invitee::SupportRep, "<script>x</script>"));
        assert!(!l.html.contains("<script>"));
        assert!(l.html.contains("&lt;script&gt;"));
    }
}
