# The agent's words, in English. Every message here must also be in every other catalogue
# (agent/locales/*/agent.ftl); `cargo test -p tandem-agent` checks it.
# $surface is "terminal" (the --cli mode) or "window" (the agent's window).

## What is shared

what-desktop = your whole screen
what-window = the window "{ $title }"
what-monitor = the monitor { $name }
rep-unknown = the support rep
viewer-unknown = viewer { $id }

## Connecting

this-computer = This computer: { $system }.
connecting = Connecting to { $server }…
server-waiting = Waiting for the support server: { $why }. Trying again…
server-unreachable = The support server could not take this agent for { $seconds } s: { $why }. Open the support page again to try once more.
waiting-room = Waiting for the support rep to let you in…
connected = Connected to support session { $number }.
session-heading = Support session { $number }
your-rep = Your support rep: { $rep }
waiting-turn = { $rep } is helping another customer now. You will be asked when it is your turn.
your-turn = It is your turn: { $rep } is helping you now.
never-mind = Never mind: { $rep } turned to another customer. You will be asked again when it is your turn.
transferring = Your session is being handed to { $kind ->
    [queue] the queue “{ $target }”
   *[agent] another support rep ({ $target })
}. Please wait: the sharing goes on, and your next support rep will be with you shortly.
new-rep = { $name } is now your support rep.
control-ended-transfer = The session was handed to another support rep, so nobody controls your computer now.

## Questions (C1)

ask-share = { $rep } asks to see { $what }. Share it?
ask-control = { $name } asks to control your mouse and keyboard, and to pass text to and from your clipboard. Allow it?
asks-again = { $name } asks you to share again.
request-changed = The request changed: { $name } asks instead.
declined = Nothing is shared. The support rep can ask again.
cannot-control = { $name } cannot control your computer.
choose-source = Share:
source-desktop = Whole screen
source-window = Window: { $title }
source-monitor = Monitor: { $name } ({ $width } × { $height })
prompt-yes-no = [y/N]
button-share = Share
button-allow = Allow
button-deny = Don't allow

## Sharing

sharing-started = Sharing { $what }. { $surface ->
    [terminal] Press Enter to stop sharing, Ctrl-C to leave.
   *[window] Click "Stop sharing" to stop at any moment.
}
capture-failed = Your screen could not be captured: { $why }
capture-ended = Sharing stopped: { $why }
gone-window-closed = the shared window was closed
gone-window-closed-or-minimized = the shared window was closed or minimized
gone-window-hidden = the shared window was hidden
gone-window-resized = the shared window went away while it was resized
gone-monitor-disconnected = the shared monitor was disconnected or rearranged
capture-error = the screen could not be captured ({ $why })
you-stopped = You stopped sharing. Nothing is captured now.
share-stopped = Sharing stopped: { $reason ->
    [switched] the support rep turned to another customer
    [owner] you stopped it
    [replaced] a new share replaced it
   *[left] this agent left the session
}. Nothing is captured now.
share-refused = Sharing was refused: { $message } Nothing is captured now.
now-controls = { $name } now controls your mouse and keyboard. { $surface ->
    [terminal] Type r and Enter to take control back.
   *[window] Click "Take back control" to stop it.
}
took-back = You took back control. Nobody else can use your mouse and keyboard now.
nobody-controls = Nobody controls your computer now.
badge-sharing = You are sharing { $what }
badge-controlled = { $name } controls your mouse and keyboard
watching = { $count ->
    [0] Nobody is watching yet.
    [one] 1 person is watching: { $names }.
   *[other] { $count } people are watching: { $names }.
}{ $recorded ->
    [yes] {" "}● This session is being recorded.
   *[no] {""}
}
button-stop = Stop sharing
button-take-back = Take back control

## The status line in the terminal, every two seconds

status-line = Sharing { $what } · { $viewers } · { $fps } fps · { $mbps } Mbit/s of { $target }{ $scaled } · { $keyframes } keyframe requests{ $control } · input { $injected } injected, { $dropped } dropped
status-control = { " · " }controlled by { $name }
status-scaled = { " " }(sent at { $width }×{ $height }: the link is slow)
status-nobody = nobody watching
status-watching = { $count } watching ({ $each })
viewer-connecting = { $name } connecting
viewer-relay = { $name } watching through the relay
viewer-watching = { $name } watching
viewer-reconnecting = { $name } reconnecting
viewer-failed = { $name } not connected

## The end

stopping = Stopping.
ended-heading = Tandem has stopped
session-ended = { $reason ->
    [rep] The support rep ended the session.
    [left] The support rep closed the session.
    [lost] The support rep's connection was lost and did not come back.
   *[terminated] The session was ended by the server.
}
error-heading = Tandem could not connect
download-expired = This download has expired. Open the support page in your browser again and download Tandem anew.
download-used = This download has been used already, or its support session has ended. Open the support page in your browser again and download Tandem anew.
agent-unsupported = This Tandem agent does not work with this support server's version. Open the support page in your browser again and download Tandem anew.
join-not-found = This support session could not be found: the link or number is not valid any more, or the session has ended. Ask your support rep for a new link.
join-full = The support rep cannot take more customers right now. Try again in a little while, or ask your support rep.
join-denied = The support rep did not let you into the session.
no-session = Tandem was started without a session. Open the link your support rep sent you, and download Tandem from that page.
button-close = Close
button-about = About
about-agent = Tandem agent { $version }. It shows your screen only to the people you allow, and only while you share it.
button-open-page = Open the support page

# The agent's connection to the server dropped (a restart, the network) and came back.
server-lost = Lost the connection to the support server; reconnecting… (sharing goes on)
server-back = Reconnected to the support server.
ask-file = { $rep } wants to send you the file “{ $file }” ({ $size }). Save it in your Downloads folder?
file-saved = Saved { $path }.
file-failed = The file “{ $name }” was not saved: { $why }
file-cancelled = The file “{ $name }” was cancelled; nothing was saved.
file-broke-off = The connection broke off while “{ $name }” came in; nothing was saved.
file-paused = The connection broke off while “{ $name }” came in. It carries on if the support rep's console is back within a minute; otherwise nothing is saved.
file-resumed = The connection is back: “{ $name }” carries on where it stopped.
file-withdrawn = The support rep took back the file “{ $name }”; there is nothing to answer.
file-you-cancelled = You cancelled the file “{ $name }”; nothing was saved.
file-incoming = Receiving “{ $name }” ({ $size }): { $percent } %
file-incoming-more = Receiving “{ $name }” ({ $size }): { $percent } %, and { $more } more
file-incoming-terminal = Receiving “{ $name }” ({ $size }). To cancel it, type c and press Enter.
button-cancel-file = Cancel
file-nothing-to-cancel = No file is coming in, so there is nothing to cancel.
# A rep asks the customer for a file (the customer picks it; nothing goes otherwise).
ask-pick = { $rep } asks you for a file. Nothing is sent unless you choose one: { $surface ->
    [window] drop it on this window, or type or paste its path.
   *[terminal] type or paste its path.
}
prompt-path = Path of the file (just Enter: send nothing):
button-send-file = Send
path-placeholder = Path of the file to send (or drop it here)
file-drop-unasked = Nothing was sent: drop a file here only when the support rep asks you for one.
file-pick-not-a-file = “{ $path }” is not a file. Choose another, or send nothing.
file-pick-unreadable = “{ $path }” cannot be read ({ $why }). Choose another, or send nothing.
file-pick-too-large = “{ $path }” is larger than this site allows ({ $max }). Choose another, or send nothing.
file-outgoing-terminal = Sending “{ $name }” ({ $size }) to the support rep. To cancel it, type c and press Enter.
file-outgoing = Sending “{ $name }” ({ $size }): { $percent } %
file-sent = “{ $name }” reached the support rep whole.
file-send-failed = “{ $name }” did not reach the support rep: { $why }
file-send-cancelled = The support rep cancelled “{ $name }”.
file-send-broke-off = The connection broke off while “{ $name }” was sent.
file-send-paused = The connection broke off while “{ $name }” was sent. It carries on if the support rep's console is back within a minute.
file-send-resumed = The connection is back: “{ $name }” carries on where it stopped.
file-you-cancelled-sending = You cancelled sending “{ $name }”.
file-request-withdrawn = { $rep } no longer asks for a file; there is nothing to answer.

# Problems with one connection, on the terminal (the error itself comes from the lower
# layers and stays as they word it).
viewer-connect-failed = A viewer could not connect: { $error }
viewer-answer-unusable = A viewer's answer was unusable: { $error }
viewer-address-unusable = A viewer's network address was unusable: { $error }
viewer-reconnect-failed = Could not reconnect to { $name }: { $error }
turn-tcp-unavailable = TURN over TCP is not available: { $error }
viewer-message-lost = A message to a viewer (a file, the clipboard) did not go out: { $error }
file-part-not-removed = Could not remove { $path }: { $error }

## Recording
recording-started = This session is being recorded from now on: the support side keeps a video of what you share, with the chat.
recording-stopped = The recording of this session stopped.
