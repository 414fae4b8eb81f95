### The web console's text, in English: the language every other one falls back to.
### Ids are grouped by page (index, login, dashboard, session, join, admin) and by the
### parts several pages share (header, connection, participants, chat, call, shares).
### nb/console.ftl must have exactly the same ids (signaling/web/tests/i18n.test.mjs).
### See docs/i18n.md.

## The header bar, on every page

language-picker =
    .title = Language
    .aria-label = Language
log-out = Log out
header-dashboard = Dashboard
header-admin = Admin

## Said by more than one page

number-invalid = A session number has nine digits, like 123 456 789.
you-marker = (you)
back-to-dashboard = Back to the dashboard
api-unreachable = The server cannot be reached. Check your connection and try again.
api-log-in = Please log in.
api-status = The server answered { $status }.
# The agent's ways to a peer, as listed in `share-no-path`.
path-host = direct
path-srflx = through STUN
path-prflx = direct
path-relay = through the relay
path-nothing = nothing

## The connection to the session, in the header (session and join pages)

connection-connected = Connected
connection-reconnecting = Connection lost, reconnecting…
connection-disconnected = Disconnected
# $reason: the server's reason for closing, in English.
connection-disconnected-because = Disconnected: { $reason }
connection-ended = Session ended
# The reason given when the connection dropped and could not be resumed.
connection-lost = connection lost

## Index page (/)

index-title = Tandem remote support
index-heading = Remote support
index-customer = Were you given a session number?
index-customer-link = Join a support session
index-rep = Support reps:
index-rep-link = log in to the console

## Login page (/login)

login-title = Log in · Tandem
login-heading = Support rep login
login-username = Username
login-password = Password
login-submit = Log in

## Dashboard (/dashboard)

dashboard-title = Dashboard · Tandem
dashboard-start-heading = Start session
dashboard-email = Email (open the invite dialog once the session starts)
dashboard-start = Start session
dashboard-assist-heading = Provide Support → Assist Session
dashboard-assist-number = Session number
dashboard-assist-number-input =
    .placeholder = 123 456 789
dashboard-assist = Assist session
dashboard-webacd-heading = WebACD
dashboard-available = Available for transferred sessions
dashboard-agents = Agents
dashboard-waiting = Waiting sessions
dashboard-none = None.
dashboard-sessions-heading = Your live sessions
dashboard-session = Session { $number }
# $role: primary_rep, assistant or observer; $customers: how many customers are in it.
dashboard-session-detail = — { $role ->
        [primary_rep] primary rep
        [assistant] assistant
        [observer] observer
       *[other] { $role }
    }, { $customers ->
        [one] { $customers } customer
       *[other] { $customers } customers
    }
dashboard-webacd-disconnected = Disconnected: reload the page
# $kind: queue or agent (then it went to the reader).
dashboard-transfer-offered = { $from } transferred session { $number } to { $kind ->
        [queue] the queue { $queue }
       *[agent] you
    }.
dashboard-agent-available = available
dashboard-agent-away = away
dashboard-agent-sessions = { $count } session(s)
dashboard-waiting-from = from { $from } to { $kind ->
        [queue] queue { $queue }
       *[agent] you
    }
dashboard-accept = Accept
dashboard-offered-elsewhere = offered to another agent
dashboard-set-available = set yourself available to take it

## Participants (session and join pages)

participants-heading = Participants
# $role: the participant's role in the session.
participants-role = { $role ->
        [primary_rep] Rep
        [assistant] Assistant
        [observer] Observer
        [customer] Customer
        [agent] Agent
        [recorder] Recorder
       *[other] { $role }
    }
participants-select =
    .title = Make this the active customer
participants-tag-agent = agent
participants-tag-active = active
participants-tag-waiting = waiting
participants-tag-reconnecting = reconnecting
participants-tag-in-control = in control
participants-give-control = Give control
participants-transfer = Transfer session control
participants-admit = Admit
participants-deny = Deny

## Chat (session and join pages)

chat-heading = Chat
chat-input =
    .placeholder = Type a message
chat-send = Send

## The call (session and join pages)

call-heading = Call
call-none = No call.
# $members: the members, each as `call-member`, joined by commas.
call-status = Call started by { $starter } · { $count } in the call: { $members }
call-member = { $name }{ $muted ->
        [yes] {" "}(muted)
       *[no] {""}
    }{ $video ->
        [yes] {" "}(camera)
       *[no] {""}
    }
call-start = Start call
call-join = Join call
call-join-video = Join with camera
call-mute = Mute
call-unmute = Unmute
call-leave = Leave call
call-end = End call for everyone
call-tile-muted = { $name } · muted
# $video: yes when the camera was asked for too; $error: the browser's words.
call-no-microphone = { $video ->
        [yes] Your microphone or camera is not available: { $error }
       *[no] Your microphone is not available: { $error }
    }

## Secure pages: why screen sharing or a call cannot start (session and join pages)

# $feature: screen or call.
secure-needs-https = { $feature ->
        [call] A call
       *[screen] Screen sharing
    } needs a secure (HTTPS) connection, and this page was opened over plain HTTP at { $host }, so the browser does not offer it. Open this site with https://, or ask whoever runs this Tandem server to set up HTTPS
secure-not-offered = { $feature ->
        [call] A call
       *[screen] Screen sharing
    } is not offered by this browser

## Shared screens: the caption under each video (session and join pages)

share-caption = { $name }'s screen · { $status }
share-caption-playing = { $name }'s screen · { $width }×{ $height } · { $fps } fps
share-caption-playing-relay = { $name }'s screen · { $width }×{ $height } · { $fps } fps · via relay
share-connecting = connecting…
share-connected = connected
share-reconnecting = reconnecting…
share-no-connection = no connection: { $why }
share-connection-lost = connection lost, reconnecting: { $why }
# $here and $there: what each side tried, from the path-* messages.
share-no-path = no network path was found (tried from here: { $here }; from the other side: { $there }).
share-relay-unreachable = The relay could not be reached from here or from the other side.
share-no-relay = No relay (TURN) server is configured.
someone = Someone

## Session page (/session/…), the rep's view of a session

session-title = Session · Tandem
session-end = End session
session-keep-open = Keep this page open: closing it or leaving it ends the session for everyone.
session-observer = You are observing: you see the shares and the chat, and every controlling feature is unavailable until the session's control is transferred back to you.
session-number-label = Session
session-link =
    .aria-label = Join link
session-copy-link = Copy link
session-invite = Invite…
session-share-screen = Share my screen
session-stop-share = Stop sharing
recording-badge = ● Recording
session-record = Record
session-stop-record = Stop recording
session-recording-started = This session is being recorded.
session-recording-stopped = The recording stopped.
session-request-control = Request control
session-request-share = Ask to share again
session-release-control = Release control
session-webacd-transfer = Transfer to WebACD…
session-copied = Copied
session-how-to-join = Customers can also go to { $page } and type { $number }.
session-copied-text = Join my support session: { $link }
session-copied-text-with-page = Join my support session: { $link } (or go to { $page } and type { $number })
session-share-failed = Your screen could not be shared: { $error }
session-control-mine = You are in control of { $name }'s computer. Move, click and type over the video.
session-control-mine-waiting = You are in control of { $name }'s computer (waiting for the screen). Move, click and type over the video.
session-control-other = { $holder } is in control of { $name }'s computer.
session-control-other-rep = A rep is in control of { $name }'s computer.
# $reason: why control ended; $name: the customer (for revoked_by_customer).
session-control-ended = { $reason ->
        [released] Control was released.
        [revoked_by_customer] { $name } took back control of their computer.
        [switched_customer] Control ended: another customer was selected.
        [participant_left] Control ended: the rep in control or the customer left.
        [session_transferred] Control ended: the session's control was transferred.
       *[other] Control ended.
    }
session-control-declined = { $name } declined to give control.
session-waiting-to-be-admitted = { $name } is waiting to be admitted.
session-primary-you = You now have the session's control.
session-primary-you-gave = You transferred the session's control to { $name }. You are observing until it is transferred back.
session-primary-you-gave-someone = You transferred the session's control to another rep. You are observing until it is transferred back.
session-primary-other = { $name } now has the session's control.
session-primary-another = Another rep now has the session's control.
session-share-declined = { $name } declined to share their screen.
session-share-declined-someone = The customer declined to share their screen.
session-transfer-confirm = Transfer the session's control to { $name }? You will stay as an observer until it is transferred back.
session-transfer-confirm-someone = Transfer the session's control to this rep? You will stay as an observer until it is transferred back.
session-transfer-note = Message from the rep who transferred this session: { $message }
session-accepted = You accepted this transferred session.
session-ended-title = Session ended · Tandem
session-ended = The session has ended
session-end-confirm = End the session for everyone?
session-mailto-opened = A message to { $address } was opened in your email program.
# $invitee: customer or support_rep.
session-invitation = Invitation to { $address } ({ $invitee ->
        [customer] customer
        [support_rep] support rep
       *[other] { $invitee }
    }):
session-invitation-sent = sent
session-invitation-sending = sending…
# $reason: the server's reason, in English.
session-invitation-failed = failed — { $reason }
session-invitation-retry = Retry
session-keyboard =
    .aria-label = Keyboard for the customer's computer

## The session page's invite dialog

invite-heading = Invite
invite-customer = Customer
invite-support-rep = Support Rep
invite-no-mail-before = This server has no mail server set up, so it cannot send the email itself. Send it with your own email program, or close this and use
invite-no-mail-after = to paste the link into a chat.
invite-address = Email address
invite-own = Send with my own email program
invite-address-invalid = Type an email address, like name@example.com.
ok = OK
cancel = Cancel

## The session page's WebACD transfer dialog

transfer-heading = Transfer the session (WebACD)
transfer-leave-note = You leave the session once it is transferred; a call you started ends.
transfer-to-queue = To the queue
transfer-queue =
    .aria-label = Queue
transfer-to-agent = To the agent
transfer-agent =
    .aria-label = Agent
transfer-message-label = Personal message for the receiving agent (optional)
# After the count of characters typed so far; $max: the most that fit (345).
transfer-counter = / { $max } characters
transfer-submit = Transfer
transfer-choose-target = Choose a queue or an agent to transfer to.
transfer-too-long = The message has { $count } characters; at most { $max } fit.
transfer-queue-target = the queue { $queue }
transferred-title = Session transferred · Tandem
transferred-heading = You transferred the session
transferred-to = The session went to { $target }. You have left it.
transferred-to-someone = The session went to another agent. You have left it.

## Join page (/join and /j/…), the customer's

join-title = Join a support session · Tandem
join-leave = Leave
join-heading = Join a support session
join-number = Session number
join-number-input =
    .placeholder = 123 456 789
join-by-link = Your support rep sent you this link.
join-name = Your name
join-submit = Join session
join-wait-heading = Please wait
join-wait = The support rep will let you into the session shortly.
join-connection-lost = Your connection to the session was lost.
join-not-admitted = You were not admitted
join-ended = The session has ended
join-left = You left the session
join-close-page = You can close this page.

## Admin page (/admin)

admin-title = Admin · Tandem
admin-settings-heading = Site settings
admin-max-customers = Most customers one rep helps at once
admin-multiple = Reps may run several sessions at once
admin-max-file = Largest file sent to or from a customer (MB; 0: no file transfer)
admin-save = Save
admin-saved = Saved
admin-mail-heading = Mail server (for email invitations)
admin-mail-host =
    .placeholder = host, e.g. smtp.example.com
admin-mail-port =
    .placeholder = port
admin-tls-none = none
admin-mail-username =
    .placeholder = username (optional)
admin-mail-password =
    .placeholder = password (unchanged if empty)
admin-mail-from =
    .placeholder = Support <support@example.com>
admin-mail-status = Invitations are sent through { $host }:{ $port }.
admin-mail-status-config = Invitations are sent through { $host }:{ $port } (from the server configuration; saving here overrides it).
admin-mail-none = No mail server is set: reps can still invite with their own email program or a copied link.
admin-reps-heading = Reps
admin-col-username = Username
admin-col-name = Name
admin-col-admin = Admin
admin-col-webacd = WebACD agent
admin-col-enabled = Enabled
admin-new-rep-heading = New rep
admin-rep-username =
    .placeholder = username
admin-rep-name =
    .placeholder = display name
admin-rep-password =
    .placeholder = password (8+)
admin-rep-webacd = WebACD agent
admin-rep-admin = Admin
admin-create = Create
admin-queues-heading = WebACD queues
admin-queue-name =
    .placeholder = queue name
admin-add-queue = Add queue
admin-no-agents = No WebACD agents yet.
admin-auto-assign = Assign automatically (to the available agent with the fewest sessions)
admin-delete = Delete
admin-no-queues = No queues yet.
admin-audit-heading = Audit log
admin-col-when = When
admin-col-session = Session
admin-col-who = Who
admin-col-what = What
# $action: the audit record's action (snake_case); $label: the same with spaces; $subject:
# the account or queue a record of the site is about (may be empty).
admin-audit-site = (site)
admin-audit-action = { $action ->
        [started] started
        [joined] joined
        [waiting] waiting
        [admitted] admitted
        [denied] denied
        [left] left
        [connection_lost] connection lost
        [reconnected] reconnected
        [active_customer] active customer
        [share_requested] share requested
        [share_declined] share declined
        [share_started] share started
        [share_stopped] share stopped
        [viewer_joined] viewer joined
        [viewer_left] viewer left
        [control_requested] control requested
        [control_granted] control granted
        [control_declined] control declined
        [control_ended] control ended
        [control_revoked] control revoked
        [primary_transferred] primary transferred
        [webacd_transfer] webacd transfer
        [transfer_accepted] transfer accepted
        [invited] invited
        [call_started] call started
        [call_joined] call joined
        [call_left] call left
        [call_ended] call ended
        [ended] ended
        [logged_in] logged in: { $subject }
        [login_refused] login refused: { $subject }
        [account_created] account created: { $subject }
        [account_changed] account changed: { $subject }
        [settings_changed] site settings changed
        [mail_changed] mail settings changed
        [mail_removed] mail settings removed
        [queue_created] queue created: { $subject }
        [queue_deleted] queue deleted: { $subject }
        [queue_members_set] queue members set: { $subject }
        [queue_changed] queue changed: { $subject }
        [sessions_ended_all] every session ended
       *[other] { $label }
    }
admin-chain-intact = Audit log intact: { $records ->
        [one] { $records } record
       *[other] { $records } records
    }, chain head
admin-chain-empty = none yet (the log is empty)
admin-chain-full-head = Full head:
admin-chain-note = . Note it down elsewhere now and then: a later check can then show that no newer records were removed.
admin-chain-tampered = Audit log tampered:
admin-chain-intact-before = { $records ->
        [one] The { $records } record
       *[other] The { $records } records
    } before #{ $bad } { $records ->
        [one] is
       *[other] are
    } intact. Check from the server with: tandem-signaling audit verify

## Files to the customer (over the agent's connection)
file-send = Send a file…
file-cancel = Cancel
file-hashing = Preparing “{ $file }”…
file-waiting = Waiting for { $name } to accept “{ $file }”…
file-sending = Sending “{ $file }”: { $percent } % · { $rate }/s
file-delivered = Delivered “{ $file }” ({ $size }, { $rate }/s), saved as “{ $saved }” in Downloads.
file-refused-declined = { $name } did not accept “{ $file }”.
file-refused-too_large = “{ $file }” is larger than this site allows ({ $max }).
file-refused-not_allowed = Only the rep in control, or the primary rep, can send files.
file-refused-busy = Another file is on its way; send this one after it.
file-refused-off = File transfer is turned off on this site.
file-refused-bad_name = The customer's computer cannot save a file of that name.
file-failed = “{ $file }” was not delivered: { $why }
file-cancelled = You cancelled “{ $file }”; nothing was saved.
file-cancelled-by-customer = { $name } cancelled “{ $file }”; nothing was saved.
file-broke-off = The connection broke off; “{ $file }” was not delivered.
file-paused = The connection broke off; “{ $file }” carries on when it is back…
file-resuming = The connection is back; carrying on with “{ $file }”…
file-receive-paused = The connection broke off; “{ $file }” from { $name } carries on when it is back…
file-receive-resuming = The connection is back; carrying on with “{ $file }”…
file-ask-paused = The connection broke off; { $name } is asked again when it is back…
file-needs-https = Sending files needs the console over HTTPS.
file-ask = Ask for a file…
file-requested = Waiting for { $name } to choose a file…
file-receiving = Receiving “{ $file }”: { $percent } % · { $rate }/s
file-received = Received “{ $file }” ({ $size }, { $rate }/s); its SHA-256 matches.
file-save-received = Save “{ $file }”
file-ask-declined = { $name } did not send a file.
file-ask-not_allowed = Only the rep in control, or the primary rep, can ask for files.
file-ask-busy = A file is already on its way from or to { $name }; ask again after it.
file-ask-too-large = { $name } chose “{ $file }”, which is larger than this site allows ({ $max }).
file-ask-cancelled = You cancelled the file from { $name }.
file-ask-cancelled-by-customer = { $name } cancelled sending “{ $file }”.
file-ask-broke-off = The connection broke off; the file from { $name } did not arrive.
file-received-damaged = “{ $file }” arrived damaged (its SHA-256 does not match) and was thrown away.

clipboard-send = Paste to { $name }'s clipboard
clipboard-paste-placeholder = Text for the customer's clipboard
clipboard-sending = Passing the text to { $name }…
clipboard-stored = The text is on { $name }'s clipboard.
clipboard-copied = { $name } copied:
clipboard-copy = Copy
clipboard-copied-here = Copied to your clipboard.
clipboard-select-and-copy = Selected: press Ctrl+C to copy it.
clipboard-refused-not_allowed = The clipboard works only while you control { $name }'s computer.
clipboard-refused-too_large = The text is longer than the clipboard passes on ({ $max }).
clipboard-refused-unavailable = { $name }'s computer has no clipboard the agent can use.
clipboard-refused-unreadable = The agent could not read that message.

recordings-heading = Recordings
recordings-none = No recordings.
recordings-col-what = What
recordings-col-by = Recorded by
recordings-col-length = Length
recordings-col-size = Size
recordings-state = { $state ->
        [recording] recording now
        [done] complete
        [interrupted] cut off by a server stop
        [failed] failed
       *[other] { $state }
    }
recordings-play = Play
recordings-download = Download
recordings-delete = Delete
admin-allow-recording = Reps may record sessions
admin-retention = Keep recordings for (days; 0: until deleted)
