### The customer's "share your screen" help on the join page (js/agent-download.js): the
### agent for their system, built for this session, and the terminal way under "Advanced".
### nb/download.ftl must have exactly the same ids (signaling/web/tests/i18n.test.mjs).
### See docs/i18n.md.

download-heading = Share your screen with the support rep
# $system: Linux or Windows.
download-link = Download the Tandem agent for { $system }
download-windows-steps = Download, then open the file (double-click it). It connects to this session by itself and asks you before anything is shared.
download-windows-warning = If Windows says it protected your PC, choose “More info”, then “Run anyway”.
download-linux-steps = Download, then open a terminal and run this command (Linux does not let a downloaded file run until you allow it). The agent connects to this session by itself and asks you before anything is shared.
download-linux-folder = The command expects the file in your Downloads folder. If your browser saved it elsewhere, run the part after the first && in that folder.
download-expired-hint = The download works for a few minutes only. If the agent says it has expired, download it again here.
# $system: Linux or Windows; $file: the agent's file name.
download-not-set-up = The Tandem agent for { $system } is not set up on this server: ask your support rep for { $file }.
# $system: the system not offered first.
download-other-system = Using { $system } instead?
download-advanced = Advanced: start it from a terminal yourself
download-advanced-plain = The agent without this session built in:
download-advanced-linux = Then run this in a terminal on the computer you need help with. It asks you before anything is shared:
download-advanced-windows = Then run this in a Command Prompt on the computer you need help with. It asks you before anything is shared:
