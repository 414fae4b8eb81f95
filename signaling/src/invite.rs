//! Invitation texts (R3): what a customer or another rep receives.

use tandem_protocol::Invitee;
use tandem_session::Invitation;

/// The subject and plain-text body of an invitation.
pub fn text(invitation: &Invitation, base_url: &str, secret: &str) -> (String, String) {
    let number = invitation.session;
    match invitation.invitee {
        Invitee::Customer => (
            format!("{} invites you to a support session", invitation.by_name),
            format!(
                "Hello,\n\n{by} invites you to a remote support session.\n\n\
                 Join with this link:\n{base}/j/{secret}\n\n\
                 Or go to {base}/join and type the session number {number}.\n",
                by = invitation.by_name,
                base = base_url,
            ),
        ),
        Invitee::SupportRep => (
            format!(
                "{} asks you to assist in session {number}",
                invitation.by_name
            ),
            format!(
                "Hello,\n\n{by} asks you to assist in support session {number}.\n\n\
                 Log in at {base}/login, then choose Assist Session and type {number}.\n",
                by = invitation.by_name,
                base = base_url,
            ),
        ),
    }
}

/// A `mailto:` URL that opens the rep's own email program with the invitation filled in.
pub fn mailto(invitation: &Invitation, base_url: &str, secret: &str) -> String {
    let (subject, body) = text(invitation, base_url, secret);
    format!(
        "mailto:{}?subject={}&body={}",
        percent_encode(&invitation.address),
        percent_encode(&subject),
        percent_encode(&body)
    )
}

/// RFC 3986 percent-encoding of everything but unreserved characters (and `@` in
/// addresses, which mail programs expect as is).
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

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_protocol::{ParticipantId, SessionNumber};

    #[test]
    fn a_customer_mailto_carries_the_link_and_the_number() {
        let invitation = Invitation {
            session: SessionNumber::new(123_456_789).expect("number"),
            by: ParticipantId(1),
            by_name: "Rita Rep".into(),
            invitee: Invitee::Customer,
            address: "ann@example.com".into(),
            own_email_program: true,
        };
        let url = mailto(&invitation, "http://127.0.0.1:8080", "s3cret");
        assert!(url.starts_with("mailto:ann@example.com?subject=Rita%20Rep%20invites"));
        assert!(
            url.contains("http%3A%2F%2F127.0.0.1%3A8080%2Fj%2Fs3cret"),
            "{url}"
        );
        assert!(url.contains("123%20456%20789"), "{url}");
        assert!(!url.contains('\n') && !url.contains(' '));
    }
}
