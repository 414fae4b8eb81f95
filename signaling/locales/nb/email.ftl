### Invitasjonen på e-post (signaling/src/mail.rs) på norsk bokmål. Samme id-er som
### en/email.ftl, verken flere eller færre (en enhetstest i mail.rs sjekker det).
### Ingen markup her: mail.rs legger den til.

hello = Hei,

## Til en kunde

customer-subject = { $by } inviterer deg til en støtteøkt
customer-invites = { $by } inviterer deg til en fjernstøtteøkt.
customer-link-intro = Bli med via denne lenken:
customer-link-button = Bli med i økten
customer-by-number = Eller åpne { $page } og skriv inn øktnummeret { $number }.
customer-consent = Ingenting på datamaskinen din blir delt før du sier ja til det.

## Til en annen støttemedarbeider, for å bistå

rep-subject = { $by } ber deg bistå i økt { $number }
rep-asks = { $by } ber deg bistå i støtteøkt { $number }.
rep-link-intro = Åpne denne lenken og logg inn for å bli med som assistent:
rep-link-button = Logg inn og bistå
rep-by-number = Eller velg «Bistå i en økt» på oversikten din og skriv inn { $number }.
