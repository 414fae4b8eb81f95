### The invitation email (signaling/src/mail.rs), in English: the language every other one
### falls back to. nb/email.ftl has exactly the same ids (a unit test in mail.rs checks it).
### Each message is one paragraph; the plain text and the HTML part are built from the same
### messages. Arguments: $by (the inviting rep's name), $link, $page (the join page) and
### $number (the session number as people read it). No markup here: mail.rs adds it.

hello = Hello,

## To a customer

customer-subject = { $by } invites you to a support session
customer-invites = { $by } invites you to a remote support session.
customer-link-intro = Join with this link:
customer-link-button = Join the session
customer-by-number = Or open { $page } and type the session number { $number }.
customer-consent = Nothing on your computer is shared until you agree.

## To another rep, to assist

rep-subject = { $by } asks you to assist in session { $number }
rep-asks = { $by } asks you to assist in support session { $number }.
rep-link-intro = Open this link and log in to join as an assistant:
rep-link-button = Log in and assist
rep-by-number = Or choose Assist Session on your dashboard and type { $number }.
