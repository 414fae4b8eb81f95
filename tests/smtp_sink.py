"""A real SMTP server for the tests (aiosmtpd). Every message it accepts is saved, decoded
by Python's email package, as NNNN.json in the given folder.

usage: python3 smtp_sink.py HOST PORT FOLDER   (prints "ready" once it listens)
"""

import email
import email.policy
import json
import os
import signal
import sys

from aiosmtpd.controller import Controller


class Save:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        self.count += 1
        saved = {
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "recipients": envelope.rcpt_tos,
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
        }
        path = os.path.join(self.folder, f"{self.count:04}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(saved, f)
        os.rename(path + ".tmp", path)
        return "250 Message accepted for delivery"


def main():
    host, port, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    controller = Controller(Save(folder), hostname=host, port=port)
    controller.start()
    print("ready", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (controller.stop(), sys.exit(0)))
    signal.pause()


if __name__ == "__main__":
    main()
