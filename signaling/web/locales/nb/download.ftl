### Kundens hjelp til å dele skjermen på siden for å bli med (js/agent-download.js):
### agenten for systemet deres, laget for denne økten, og terminalveien under «Avansert».
### Må ha nøyaktig de samme id-ene som en/download.ftl. Se docs/i18n.md.

download-heading = Del skjermen med støttemedarbeideren
# $system: Linux eller Windows.
download-link = Last ned Tandem-agenten for { $system }
download-windows-steps = Last ned filen og åpne den (dobbeltklikk på den). Den kobler seg til denne økten av seg selv og spør deg før noe blir delt.
download-windows-warning = Hvis Windows sier at den har beskyttet PC-en, velger du «Mer informasjon» og så «Kjør likevel».
download-linux-steps = Last ned filen, åpne en terminal og kjør denne kommandoen (Linux lar ikke en nedlastet fil kjøre før du har tillatt det). Agenten kobler seg til denne økten av seg selv og spør deg før noe blir delt.
download-linux-folder = Kommandoen forventer filen i mappen for nedlastinger. Hvis nettleseren lagret den et annet sted, kjører du delen etter første && i den mappen.
download-expired-hint = Nedlastingen virker bare i noen minutter. Hvis agenten sier at den er utløpt, laster du den ned på nytt her.
# $system: Linux eller Windows; $file: agentens filnavn.
download-not-set-up = Tandem-agenten for { $system } er ikke satt opp på denne serveren: be støttemedarbeideren din om { $file }.
# $system: systemet som ikke tilbys først.
download-other-system = Bruker du { $system } i stedet?
download-advanced = Avansert: start den selv fra en terminal
download-advanced-plain = Agenten uten denne økten innebygd:
download-advanced-linux = Kjør så dette i en terminal på datamaskinen du trenger hjelp med. Den spør deg før noe blir delt:
download-advanced-windows = Kjør så dette i en ledetekst på datamaskinen du trenger hjelp med. Den spør deg før noe blir delt:
