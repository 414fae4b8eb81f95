### Nettkonsollets tekster på norsk bokmål. Samme id-er som en/console.ftl, verken flere
### eller færre (signaling/web/tests/i18n.test.mjs sjekker det). Se docs/i18n.md.

## Topplinjen, på alle sider

language-picker =
    .title = Språk
    .aria-label = Språk
log-out = Logg ut
header-dashboard = Oversikt
header-admin = Administrasjon

## Brukt på flere sider

number-invalid = Et øktnummer har ni sifre, for eksempel 123 456 789.
you-marker = (deg)
back-to-dashboard = Tilbake til oversikten
api-unreachable = Serveren kan ikke nås. Sjekk forbindelsen og prøv igjen.
api-log-in = Logg inn.
api-status = Serveren svarte { $status }.
path-host = direkte
path-srflx = via STUN
path-prflx = direkte
path-relay = via reléserveren
path-nothing = ingenting

## Forbindelsen til økten, i topplinjen (økt- og kundesiden)

connection-connected = Tilkoblet
connection-reconnecting = Forbindelsen ble brutt, kobler til igjen …
connection-disconnected = Frakoblet
connection-disconnected-because = Frakoblet: { $reason }
connection-ended = Økten er avsluttet
connection-lost = forbindelsen ble brutt

## Forsiden (/)

index-title = Tandem fjernstøtte
index-heading = Fjernstøtte
index-customer = Har du fått et øktnummer?
index-customer-link = Bli med i en støtteøkt
index-rep = Støttemedarbeidere:
index-rep-link = logg inn i konsollet

## Innlogging (/login)

login-title = Logg inn · Tandem
login-heading = Innlogging for støttemedarbeidere
login-username = Brukernavn
login-password = Passord
login-submit = Logg inn

## Oversikten (/dashboard)

dashboard-title = Oversikt · Tandem
dashboard-start-heading = Start en økt
dashboard-email = E-post (åpne invitasjonsvinduet når økten starter)
dashboard-start = Start økt
dashboard-assist-heading = Gi støtte → Bistå i en økt
dashboard-assist-number = Øktnummer
dashboard-assist-number-input =
    .placeholder = 123 456 789
dashboard-assist = Bistå i økten
dashboard-webacd-heading = WebACD
dashboard-available = Tilgjengelig for overførte økter
dashboard-agents = Agenter
dashboard-waiting = Ventende økter
dashboard-none = Ingen.
dashboard-sessions-heading = Dine pågående økter
dashboard-session = Økt { $number }
dashboard-session-detail = — { $role ->
        [primary_rep] ansvarlig støttemedarbeider
        [assistant] assistent
        [observer] observatør
       *[other] { $role }
    }, { $customers ->
        [one] { $customers } kunde
       *[other] { $customers } kunder
    }
dashboard-webacd-disconnected = Frakoblet: last inn siden på nytt
dashboard-transfer-offered = { $from } overførte økt { $number } til { $kind ->
        [queue] køen { $queue }
       *[agent] deg
    }.
dashboard-agent-available = tilgjengelig
dashboard-agent-away = borte
dashboard-agent-sessions = { $count ->
        [one] { $count } økt
       *[other] { $count } økter
    }
dashboard-waiting-from = fra { $from } til { $kind ->
        [queue] køen { $queue }
       *[agent] deg
    }
dashboard-accept = Godta
dashboard-offered-elsewhere = tilbudt en annen agent
dashboard-set-available = gjør deg tilgjengelig for å ta den

## Deltakere (økt- og kundesiden)

participants-heading = Deltakere
participants-role = { $role ->
        [primary_rep] Støttemedarbeider
        [assistant] Assistent
        [observer] Observatør
        [customer] Kunde
        [agent] Agent
        [recorder] Opptak
       *[other] { $role }
    }
participants-select =
    .title = Gjør dette til den aktive kunden
# «agent»: Tandem-programmet som deler kundens skjerm; ordet er det samme på norsk.
participants-tag-agent = agent
participants-tag-active = aktiv
participants-tag-waiting = venter
participants-tag-reconnecting = kobler til igjen
participants-tag-in-control = har kontrollen
participants-give-control = Gi kontroll
participants-transfer = Overfør kontrollen over økten
participants-admit = Slipp inn
participants-deny = Avvis

## Meldinger (økt- og kundesiden)

chat-heading = Meldinger
chat-input =
    .placeholder = Skriv en melding
chat-send = Send

## Samtalen (økt- og kundesiden)

call-heading = Samtale
call-none = Ingen samtale.
call-status = Samtale startet av { $starter } · { $count } i samtalen: { $members }
call-member = { $name }{ $muted ->
        [yes] {" "}(lyd av)
       *[no] {""}
    }{ $video ->
        [yes] {" "}(kamera)
       *[no] {""}
    }
call-start = Start samtale
call-join = Delta i samtalen
call-join-video = Delta med kamera
call-mute = Slå av lyden
call-unmute = Slå på lyden
call-leave = Forlat samtalen
call-end = Avslutt samtalen for alle
call-tile-muted = { $name } · lyd av
call-no-microphone = { $video ->
        [yes] Mikrofonen eller kameraet ditt er ikke tilgjengelig: { $error }
       *[no] Mikrofonen din er ikke tilgjengelig: { $error }
    }

## Sikre sider: hvorfor skjermdeling eller en samtale ikke kan starte

secure-needs-https = { $feature ->
        [call] En samtale
       *[screen] Skjermdeling
    } krever en sikker forbindelse (HTTPS), og denne siden ble åpnet over vanlig HTTP på { $host }, så nettleseren tilbyr det ikke. Åpne nettstedet med https://, eller be den som drifter denne Tandem-serveren om å sette opp HTTPS
secure-not-offered = { $feature ->
        [call] En samtale
       *[screen] Skjermdeling
    } støttes ikke av denne nettleseren

## Delte skjermer: teksten under hver video

share-caption = Skjermen til { $name } · { $status }
share-caption-playing = Skjermen til { $name } · { $width }×{ $height } · { $fps } bilder/s
share-caption-playing-relay = Skjermen til { $name } · { $width }×{ $height } · { $fps } bilder/s · via relé
share-connecting = kobler til …
share-connected = tilkoblet
share-reconnecting = kobler til igjen …
share-no-connection = ingen forbindelse: { $why }
share-connection-lost = forbindelsen ble brutt, kobler til igjen: { $why }
share-no-path = fant ingen nettverksvei (prøvd herfra: { $here }; fra den andre siden: { $there }).
share-relay-unreachable = Reléserveren kunne ikke nås herfra eller fra den andre siden.
share-no-relay = Ingen reléserver (TURN) er satt opp.
someone = Noen

## Øktsiden (/session/…), støttemedarbeiderens side

session-title = Økt · Tandem
session-end = Avslutt økten
session-keep-open = La denne siden være åpen: lukker du den eller går bort fra den, avsluttes økten for alle.
session-observer = Du observerer: du ser det som deles og meldingene, men alle kontrollfunksjoner er utilgjengelige til kontrollen over økten blir overført tilbake til deg.
session-number-label = Økt
session-link =
    .aria-label = Lenke for å bli med
session-copy-link = Kopier lenken
session-invite = Inviter …
session-share-screen = Del skjermen
session-stop-share = Slutt å dele
recording-badge = ● Opptak
session-record = Ta opp
session-stop-record = Stopp opptaket
session-recording-started = Denne økten blir tatt opp.
session-recording-stopped = Opptaket stoppet.
session-request-control = Be om kontroll
session-request-share = Be om deling igjen
session-release-control = Gi fra deg kontrollen
session-webacd-transfer = Overfør med WebACD …
session-copied = Kopiert
session-how-to-join = Kunder kan også gå til { $page } og skrive inn { $number }.
session-copied-text = Bli med i støtteøkten min: { $link }
session-copied-text-with-page = Bli med i støtteøkten min: { $link } (eller gå til { $page } og skriv inn { $number })
session-share-failed = Skjermen din kunne ikke deles: { $error }
session-control-mine = Du har kontroll over datamaskinen til { $name }. Flytt, klikk og skriv over videoen.
session-control-mine-waiting = Du har kontroll over datamaskinen til { $name } (venter på skjermen). Flytt, klikk og skriv over videoen.
session-control-other = { $holder } har kontroll over datamaskinen til { $name }.
session-control-other-rep = En støttemedarbeider har kontroll over datamaskinen til { $name }.
session-control-ended = { $reason ->
        [released] Kontrollen ble gitt fra seg.
        [revoked_by_customer] { $name } tok tilbake kontrollen over datamaskinen sin.
        [switched_customer] Kontrollen er avsluttet: en annen kunde ble valgt.
        [participant_left] Kontrollen er avsluttet: støttemedarbeideren som hadde kontrollen, eller kunden forlot økten.
        [session_transferred] Kontrollen er avsluttet: kontrollen over økten ble overført.
       *[other] Kontrollen er avsluttet.
    }
session-control-declined = { $name } ville ikke gi fra seg kontrollen.
session-waiting-to-be-admitted = { $name } venter på å bli sluppet inn.
session-primary-you = Du har nå kontrollen over økten.
session-primary-you-gave = Du overførte kontrollen over økten til { $name }. Du observerer til den blir overført tilbake.
session-primary-you-gave-someone = Du overførte kontrollen over økten til en annen støttemedarbeider. Du observerer til den blir overført tilbake.
session-primary-other = { $name } har nå kontrollen over økten.
session-primary-another = En annen støttemedarbeider har nå kontrollen over økten.
session-share-declined = { $name } ville ikke dele skjermen sin.
session-share-declined-someone = Kunden ville ikke dele skjermen sin.
session-transfer-confirm = Overføre kontrollen over økten til { $name }? Du blir værende som observatør til den blir overført tilbake.
session-transfer-confirm-someone = Overføre kontrollen over økten til denne støttemedarbeideren? Du blir værende som observatør til den blir overført tilbake.
session-transfer-note = Melding fra støttemedarbeideren som overførte denne økten: { $message }
session-accepted = Du tok imot denne overførte økten.
session-ended-title = Økten er avsluttet · Tandem
session-ended = Økten er avsluttet
session-end-confirm = Avslutte økten for alle?
session-mailto-opened = En melding til { $address } ble åpnet i e-postprogrammet ditt.
session-invitation = Invitasjon til { $address } ({ $invitee ->
        [customer] kunde
        [support_rep] støttemedarbeider
       *[other] { $invitee }
    }):
session-invitation-sent = sendt
session-invitation-sending = sender …
session-invitation-failed = mislyktes — { $reason }
session-invitation-retry = Prøv igjen
session-keyboard =
    .aria-label = Tastatur for kundens datamaskin

## Invitasjonsvinduet på øktsiden

invite-heading = Inviter
invite-customer = Kunde
invite-support-rep = Støttemedarbeider
invite-no-mail-before = Denne serveren har ingen e-postserver satt opp, så den kan ikke sende e-posten selv. Send den med ditt eget e-postprogram, eller lukk dette vinduet og bruk
invite-no-mail-after = for å lime inn lenken i en chat.
invite-address = E-postadresse
invite-own = Send med mitt eget e-postprogram
invite-address-invalid = Skriv inn en e-postadresse, for eksempel navn@example.com.
ok = OK
cancel = Avbryt

## Overføringsvinduet (WebACD) på øktsiden

transfer-heading = Overfør økten (WebACD)
transfer-leave-note = Du forlater økten når den er overført; en samtale du startet, avsluttes.
transfer-to-queue = Til køen
transfer-queue =
    .aria-label = Kø
transfer-to-agent = Til agenten
transfer-agent =
    .aria-label = Agent
transfer-message-label = Personlig melding til agenten som tar imot økten (valgfritt)
transfer-counter = / { $max } tegn
transfer-submit = Overfør
transfer-choose-target = Velg en kø eller en agent å overføre til.
transfer-too-long = Meldingen har { $count } tegn; høyst { $max } får plass.
transfer-queue-target = køen { $queue }
transferred-title = Økten er overført · Tandem
transferred-heading = Du overførte økten
transferred-to = Økten gikk til { $target }. Du har forlatt den.
transferred-to-someone = Økten gikk til en annen agent. Du har forlatt den.

## Kundesiden (/join og /j/…)

join-title = Bli med i en støtteøkt · Tandem
join-leave = Forlat økten
join-heading = Bli med i en støtteøkt
join-number = Øktnummer
join-number-input =
    .placeholder = 123 456 789
join-by-link = Støttemedarbeideren din sendte deg denne lenken.
join-name = Navnet ditt
join-submit = Bli med i økten
join-wait-heading = Vent litt
join-wait = Støttemedarbeideren slipper deg inn i økten om litt.
join-connection-lost = Forbindelsen til økten ble brutt.
join-not-admitted = Du ble ikke sluppet inn
join-ended = Økten er avsluttet
join-left = Du forlot økten
join-close-page = Du kan lukke denne siden.

## Administrasjon (/admin)

admin-title = Administrasjon · Tandem
admin-settings-heading = Innstillinger for nettstedet
admin-max-customers = Høyeste antall kunder per støttemedarbeider samtidig
admin-multiple = Støttemedarbeidere kan ha flere økter samtidig
admin-max-file = Største fil sendt til eller fra en kunde (MB; 0: ingen filoverføring)
admin-save = Lagre
admin-saved = Lagret
admin-mail-heading = E-postserver (for invitasjoner på e-post)
admin-mail-host =
    .placeholder = vert, f.eks. smtp.example.com
admin-mail-port =
    .placeholder = portnummer
admin-tls-none = ingen
admin-mail-username =
    .placeholder = brukernavn (valgfritt)
admin-mail-password =
    .placeholder = passord (uendret hvis tomt)
admin-mail-from =
    .placeholder = Kundestøtte <support@example.com>
admin-mail-status = Invitasjoner sendes gjennom { $host }:{ $port }.
admin-mail-status-config = Invitasjoner sendes gjennom { $host }:{ $port } (fra serverkonfigurasjonen; lagrer du her, overstyrer det den).
admin-mail-none = Ingen e-postserver er satt opp: støttemedarbeidere kan fortsatt invitere med sitt eget e-postprogram eller en kopiert lenke.
admin-reps-heading = Støttemedarbeidere
admin-col-username = Brukernavn
admin-col-name = Navn
admin-col-admin = Administrator
admin-col-webacd = WebACD-agent
admin-col-enabled = Aktivert
admin-new-rep-heading = Ny støttemedarbeider
admin-rep-username =
    .placeholder = brukernavn
admin-rep-name =
    .placeholder = visningsnavn
admin-rep-password =
    .placeholder = passord (minst 8 tegn)
admin-rep-webacd = WebACD-agent
admin-rep-admin = Administrator
admin-create = Opprett
admin-queues-heading = WebACD-køer
admin-queue-name =
    .placeholder = navn på køen
admin-add-queue = Legg til kø
admin-no-agents = Ingen WebACD-agenter ennå.
admin-auto-assign = Tildel automatisk (til den tilgjengelige agenten med færrest økter)
admin-delete = Slett
admin-no-queues = Ingen køer ennå.
admin-audit-heading = Revisjonslogg
admin-col-when = Når
admin-col-session = Økt
admin-col-who = Hvem
admin-col-what = Hva
admin-audit-site = (nettsted)
admin-audit-action = { $action ->
        [started] startet
        [joined] ble med
        [waiting] venter
        [admitted] sluppet inn
        [denied] avvist
        [left] forlot økten
        [connection_lost] mistet forbindelsen
        [reconnected] koblet til igjen
        [active_customer] aktiv kunde
        [share_requested] deling forespurt
        [share_declined] deling avslått
        [share_started] deling startet
        [share_stopped] deling stoppet
        [viewer_joined] seer ble med
        [viewer_left] seer forlot
        [control_requested] kontroll forespurt
        [control_granted] kontroll gitt
        [control_declined] kontroll avslått
        [control_ended] kontroll avsluttet
        [control_revoked] kontroll tatt tilbake
        [primary_transferred] ansvar overført
        [webacd_transfer] WebACD-overføring
        [transfer_accepted] overføring godtatt
        [invited] invitert
        [call_started] samtale startet
        [call_joined] ble med i samtalen
        [call_left] forlot samtalen
        [call_ended] samtale avsluttet
        [ended] avsluttet
        [logged_in] logget inn: { $subject }
        [login_refused] innlogging avvist: { $subject }
        [account_created] konto opprettet: { $subject }
        [account_changed] konto endret: { $subject }
        [settings_changed] innstillinger endret
        [mail_changed] e-postinnstillinger endret
        [mail_removed] e-postinnstillinger fjernet
        [queue_created] kø opprettet: { $subject }
        [queue_deleted] kø slettet: { $subject }
        [queue_members_set] kømedlemmer satt: { $subject }
        [queue_changed] kø endret: { $subject }
        [sessions_ended_all] alle økter avsluttet
       *[other] { $label }
    }
admin-chain-intact = Revisjonsloggen er intakt: { $records ->
        [one] { $records } oppføring
       *[other] { $records } oppføringer
    }, kjedehode
admin-chain-empty = ingen ennå (loggen er tom)
admin-chain-full-head = Hele kjedehodet:
admin-chain-note = . Noter det et annet sted av og til: da kan en senere kontroll vise at ingen nyere oppføringer er fjernet.
admin-chain-tampered = Revisjonsloggen er endret:
admin-chain-intact-before = { $records ->
        [one] Oppføringen
       *[other] De { $records } oppføringene
    } før #{ $bad } er { $records ->
        [one] intakt
       *[other] intakte
    }. Kontroller fra serveren med: tandem-signaling audit verify

## Filer til kunden (over agentens forbindelse)
file-send = Send en fil …
file-cancel = Avbryt
file-hashing = Klargjør «{ $file }» …
file-waiting = Venter på at { $name } godtar «{ $file }» …
file-sending = Sender «{ $file }»: { $percent } % · { $rate }/s
file-delivered = Levert «{ $file }» ({ $size }, { $rate }/s), lagret som «{ $saved }» i Nedlastinger.
file-refused-declined = { $name } godtok ikke «{ $file }».
file-refused-too_large = «{ $file }» er større enn dette nettstedet tillater ({ $max }).
file-refused-not_allowed = Bare representanten som styrer, eller hovedrepresentanten, kan sende filer.
file-refused-busy = En annen fil er på vei; send denne etterpå.
file-refused-off = Filoverføring er slått av på dette nettstedet.
file-refused-bad_name = Kundens datamaskin kan ikke lagre en fil med det navnet.
file-failed = «{ $file }» ble ikke levert: { $why }
file-cancelled = Du avbrøt «{ $file }»; ingenting ble lagret.
file-cancelled-by-customer = { $name } avbrøt «{ $file }»; ingenting ble lagret.
file-broke-off = Forbindelsen brøt; «{ $file }» ble ikke levert.
file-paused = Forbindelsen brøt; «{ $file }» fortsetter når den er tilbake …
file-resuming = Forbindelsen er tilbake; fortsetter med «{ $file }» …
file-receive-paused = Forbindelsen brøt; «{ $file }» fra { $name } fortsetter når den er tilbake …
file-receive-resuming = Forbindelsen er tilbake; fortsetter med «{ $file }» …
file-ask-paused = Forbindelsen brøt; { $name } blir spurt igjen når den er tilbake …
file-needs-https = Å sende filer krever konsollen over HTTPS.
file-ask = Be om en fil …
file-requested = Venter på at { $name } velger en fil …
file-receiving = Tar imot «{ $file }»: { $percent } % · { $rate }/s
file-received = Mottok «{ $file }» ({ $size }, { $rate }/s); SHA-256 stemmer.
file-save-received = Lagre «{ $file }»
file-ask-declined = { $name } sendte ingen fil.
file-ask-not_allowed = Bare representanten som styrer, eller hovedrepresentanten, kan be om filer.
file-ask-busy = En fil er allerede på vei fra eller til { $name }; be igjen etterpå.
file-ask-too-large = { $name } valgte «{ $file }», som er større enn dette nettstedet tillater ({ $max }).
file-ask-cancelled = Du avbrøt filen fra { $name }.
file-ask-cancelled-by-customer = { $name } avbrøt sendingen av «{ $file }».
file-ask-broke-off = Forbindelsen brøt; filen fra { $name } kom ikke fram.
file-received-damaged = «{ $file }» kom fram skadet (SHA-256 stemmer ikke) og ble kastet.

clipboard-send = Lim inn på utklippstavlen til { $name }
clipboard-paste-placeholder = Tekst til kundens utklippstavle
clipboard-sending = Sender teksten til { $name }…
clipboard-stored = Teksten ligger på utklippstavlen til { $name }.
clipboard-copied = { $name } kopierte:
clipboard-copy = Kopier
clipboard-copied-here = Kopiert til utklippstavlen din.
clipboard-select-and-copy = Merket: trykk Ctrl+C for å kopiere.
clipboard-refused-not_allowed = Utklippstavlen virker bare mens du styrer datamaskinen til { $name }.
clipboard-refused-too_large = Teksten er lengre enn utklippstavlen sender videre ({ $max }).
clipboard-refused-unavailable = Datamaskinen til { $name } har ingen utklippstavle agenten kan bruke.
clipboard-refused-unreadable = Agenten kunne ikke lese den meldingen.

recordings-heading = Opptak
recordings-none = Ingen opptak.
recordings-col-what = Hva
recordings-col-by = Tatt opp av
recordings-col-length = Lengde
recordings-col-size = Størrelse
recordings-state = { $state ->
        [recording] tas opp nå
        [done] fullført
        [interrupted] avbrutt av en serverstopp
        [failed] mislyktes
       *[other] { $state }
    }
recordings-play = Spill av
recordings-download = Last ned
recordings-delete = Slett
admin-allow-recording = Støttemedarbeidere kan ta opp økter
admin-retention = Behold opptak i (dager; 0: til de slettes)
