# Agentens ord på norsk bokmål. Hver melding i den engelske katalogen må finnes her også;
# `cargo test -p tandem-agent` sjekker det.

## Hva som deles

what-desktop = hele skjermen din
what-window = vinduet «{ $title }»
what-monitor = skjermen { $name }
rep-unknown = kundestøtten
viewer-unknown = seer { $id }

## Tilkobling

this-computer = Denne datamaskinen: { $system }.
connecting = Kobler til { $server } …
server-waiting = Venter på støtteserveren: { $why }. Prøver igjen …
server-unreachable = Støtteserveren kunne ikke ta imot denne agenten på { $seconds } s: { $why }. Åpne støttesiden igjen for å prøve på nytt.
waiting-room = Venter på at kundestøtten slipper deg inn …
connected = Koblet til støtteøkt { $number }.
session-heading = Støtteøkt { $number }
your-rep = Din kontaktperson: { $rep }
waiting-turn = { $rep } hjelper en annen kunde nå. Du blir spurt når det er din tur.
your-turn = Det er din tur: { $rep } hjelper deg nå.
never-mind = Glem det: { $rep } gikk over til en annen kunde. Du blir spurt igjen når det er din tur.
transferring = Økten din overføres til { $kind ->
    [queue] køen «{ $target }»
   *[agent] en annen kontaktperson ({ $target })
}. Vent litt: delingen fortsetter, og den nye kontaktpersonen din er snart hos deg.
new-rep = { $name } er nå kontaktpersonen din.
control-ended-transfer = Økten ble overført til en annen kontaktperson, så ingen styrer datamaskinen din nå.

## Spørsmål (C1)

ask-share = { $rep } ber om å få se { $what }. Vil du dele?
ask-control = { $name } ber om å styre musen og tastaturet ditt, og å sende tekst til og fra utklippstavlen din. Vil du tillate det?
asks-again = { $name } ber deg dele på nytt.
request-changed = Forespørselen er endret: { $name } spør i stedet.
declined = Ingenting deles. Kundestøtten kan spørre igjen.
cannot-control = { $name } kan ikke styre datamaskinen din.
choose-source = Del:
source-desktop = Hele skjermen
source-window = Vindu: { $title }
source-monitor = Skjerm: { $name } ({ $width } × { $height })
prompt-yes-no = [j/N]
button-share = Del
button-allow = Tillat
button-deny = Ikke tillat

## Deling

sharing-started = Deler { $what }. { $surface ->
    [terminal] Trykk Enter for å slutte å dele, Ctrl-C for å gå ut.
   *[window] Klikk «Slutt å dele» når du vil avslutte.
}
capture-failed = Skjermen din kunne ikke tas opp: { $why }
capture-ended = Delingen stoppet: { $why }
gone-window-closed = det delte vinduet ble lukket
gone-window-closed-or-minimized = det delte vinduet ble lukket eller minimert
gone-window-hidden = det delte vinduet ble skjult
gone-window-resized = det delte vinduet forsvant mens det ble endret i størrelse
gone-monitor-disconnected = den delte skjermen ble koblet fra eller flyttet
capture-error = skjermen kunne ikke fanges opp ({ $why })
you-stopped = Du sluttet å dele. Ingenting tas opp nå.
share-stopped = Delingen stoppet: { $reason ->
    [switched] kundestøtten gikk over til en annen kunde
    [owner] du stoppet den
    [replaced] en ny deling erstattet den
   *[left] denne agenten forlot økten
}. Ingenting tas opp nå.
share-refused = Delingen ble avvist: { $message } Ingenting tas opp nå.
now-controls = { $name } styrer nå musen og tastaturet ditt. { $surface ->
    [terminal] Skriv r og trykk Enter for å ta tilbake kontrollen.
   *[window] Klikk «Ta tilbake kontrollen» for å stoppe det.
}
took-back = Du tok tilbake kontrollen. Ingen andre kan bruke musen og tastaturet ditt nå.
nobody-controls = Ingen styrer datamaskinen din nå.
badge-sharing = Du deler { $what }
badge-controlled = { $name } styrer musen og tastaturet ditt
watching = { $count ->
    [0] Ingen ser på ennå.
    [one] 1 person ser på: { $names }.
   *[other] { $count } personer ser på: { $names }.
}{ $recorded ->
    [yes] {" "}● Denne økten blir tatt opp.
   *[no] {""}
}
button-stop = Slutt å dele
button-take-back = Ta tilbake kontrollen

## Statuslinjen i terminalen, hvert annet sekund

status-line = Deler { $what } · { $viewers } · { $fps } bilder/s · { $mbps } Mbit/s av { $target }{ $scaled } · { $keyframes } nøkkelbildeforespørsler{ $control } · inndata { $injected } sendt inn, { $dropped } forkastet
status-control = { " · " }styres av { $name }
status-scaled = { " " }(sendes i { $width }×{ $height }: forbindelsen er treg)
status-nobody = ingen ser på
status-watching = { $count } ser på ({ $each })
viewer-connecting = { $name } kobler til
viewer-relay = { $name } ser på gjennom videresendingen
viewer-watching = { $name } ser på
viewer-reconnecting = { $name } kobler til igjen
viewer-failed = { $name } er ikke tilkoblet

## Slutten

stopping = Avslutter.
ended-heading = Tandem er stoppet
session-ended = { $reason ->
    [rep] Kundestøtten avsluttet økten.
    [left] Kundestøtten lukket økten.
    [lost] Forbindelsen til kundestøtten ble brutt og kom ikke tilbake.
   *[terminated] Økten ble avsluttet av serveren.
}
error-heading = Tandem kunne ikke koble til
download-expired = Denne nedlastingen er utløpt. Åpne støttesiden i nettleseren igjen og last ned Tandem på nytt.
download-used = Denne nedlastingen er allerede brukt, eller støtteøkten er avsluttet. Åpne støttesiden i nettleseren igjen og last ned Tandem på nytt.
agent-unsupported = Denne Tandem-agenten virker ikke med denne støtteserverens versjon. Åpne støttesiden i nettleseren igjen og last ned Tandem på nytt.
join-not-found = Fant ikke støtteøkten: lenken eller nummeret er ikke gyldig lenger, eller økten er avsluttet. Be kontaktpersonen din om en ny lenke.
join-full = Kontaktpersonen kan ikke ta imot flere kunder akkurat nå. Prøv igjen om litt, eller spør kontaktpersonen din.
join-denied = Kontaktpersonen slapp deg ikke inn i økten.
no-session = Tandem ble startet uten en økt. Åpne lenken fra kontaktpersonen din, og last ned Tandem fra den siden.
button-close = Lukk
button-about = Om
about-agent = Tandem-agenten { $version }. Den viser skjermen din bare til dem du tillater, og bare mens du deler den.
button-open-page = Åpne støttesiden

# The agent's connection to the server dropped (a restart, the network) and came back.
server-lost = Mistet forbindelsen til støtteserveren; kobler til igjen … (delingen fortsetter)
server-back = Koblet til støtteserveren igjen.
ask-file = { $rep } vil sende deg filen «{ $file }» ({ $size }). Vil du lagre den i Nedlastinger?
file-saved = Lagret { $path }.
file-failed = Filen «{ $name }» ble ikke lagret: { $why }
file-cancelled = Filen «{ $name }» ble avbrutt; ingenting ble lagret.
file-broke-off = Forbindelsen brøt mens «{ $name }» kom inn; ingenting ble lagret.
file-paused = Forbindelsen brøt mens «{ $name }» kom inn. Den fortsetter hvis brukerstøttens konsoll er tilbake innen ett minutt; ellers lagres ingenting.
file-resumed = Forbindelsen er tilbake: «{ $name }» fortsetter der den stoppet.
file-withdrawn = Støttemedarbeideren trakk tilbake filen «{ $name }»; det er ingenting å svare på.
file-you-cancelled = Du avbrøt filen «{ $name }»; ingenting ble lagret.
file-incoming = Tar imot «{ $name }» ({ $size }): { $percent } %
file-incoming-more = Tar imot «{ $name }» ({ $size }): { $percent } %, og { $more } til
file-incoming-terminal = Tar imot «{ $name }» ({ $size }). Skriv c og trykk Enter for å avbryte.
button-cancel-file = Avbryt
file-nothing-to-cancel = Ingen fil er på vei inn, så det er ingenting å avbryte.
# En støttemedarbeider ber kunden om en fil (kunden velger den; ellers sendes ingenting).
ask-pick = { $rep } ber deg om en fil. Ingenting sendes uten at du velger en: { $surface ->
    [window] slipp den på dette vinduet, eller skriv eller lim inn stien til den.
   *[terminal] skriv eller lim inn stien til den.
}
prompt-path = Stien til filen (bare Enter: send ingenting):
button-send-file = Send
path-placeholder = Stien til filen som skal sendes (eller slipp den her)
file-drop-unasked = Ingenting ble sendt: slipp en fil her bare når brukerstøtten ber deg om en.
file-pick-not-a-file = «{ $path }» er ikke en fil. Velg en annen, eller send ingenting.
file-pick-unreadable = «{ $path }» kan ikke leses ({ $why }). Velg en annen, eller send ingenting.
file-pick-too-large = «{ $path }» er større enn dette nettstedet tillater ({ $max }). Velg en annen, eller send ingenting.
file-outgoing-terminal = Sender «{ $name }» ({ $size }) til støttemedarbeideren. Skriv c og trykk Enter for å avbryte.
file-outgoing = Sender «{ $name }» ({ $size }): { $percent } %
file-sent = «{ $name }» kom helt fram til støttemedarbeideren.
file-send-failed = «{ $name }» kom ikke fram til støttemedarbeideren: { $why }
file-send-cancelled = Støttemedarbeideren avbrøt «{ $name }».
file-send-broke-off = Forbindelsen brøt mens «{ $name }» ble sendt.
file-send-paused = Forbindelsen brøt mens «{ $name }» ble sendt. Den fortsetter hvis brukerstøttens konsoll er tilbake innen ett minutt.
file-send-resumed = Forbindelsen er tilbake: «{ $name }» fortsetter der den stoppet.
file-you-cancelled-sending = Du avbrøt sendingen av «{ $name }».
file-request-withdrawn = { $rep } ber ikke lenger om en fil; det er ingenting å svare på.

# Problemer med én forbindelse, i terminalen (selve feilen kommer fra lagene under og står
# slik de formulerer den).
viewer-connect-failed = En seer fikk ikke koblet til: { $error }
viewer-answer-unusable = Svaret fra en seer kunne ikke brukes: { $error }
viewer-address-unusable = Nettverksadressen til en seer kunne ikke brukes: { $error }
viewer-reconnect-failed = Fikk ikke koblet til { $name } igjen: { $error }
turn-tcp-unavailable = TURN over TCP er ikke tilgjengelig: { $error }
viewer-message-lost = En melding til en som ser på (en fil, utklippstavlen) kom ikke fram: { $error }
file-part-not-removed = Kunne ikke fjerne { $path }: { $error }

## Recording
recording-started = Denne økten blir tatt opp fra nå av: støttesiden tar vare på en video av det du deler, med chatten.
recording-stopped = Opptaket av denne økten stoppet.
