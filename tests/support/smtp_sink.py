"""An SMTP server for the e-mail tests (aiosmtpd): every message it receives becomes
<dir>/<n>.json with its envelope, headers and decoded text and HTML parts.

Usage: python smtp_sink.py <host> <port> <dir> [count]   (writes <dir>/ready once it listens)
With `count` (benchmarks), it only appends a line per message to <dir>/received, so that the
sink is not what limits the rate.
"""
import email
import email.policy
import json
import os
import sys
import time

from aiosmtpd.controller import Controller


class Counter:
    def __init__(self, directory):
        self.log = open(os.path.join(directory, "received"), "a", encoding="utf-8")

    async def handle_DATA(self, server, session, envelope):
        self.log.write(",".join(envelope.rcpt_tos) + "\n")
        self.log.flush()
        return "250 OK"


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = {}
        for part in message.walk():
            if part.get_content_maintype() == "text":
                parts[part.get_content_type()] = part.get_content()
        self.count += 1
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "content_type": message.get_content_type(),
            "headers": {key: str(value) for key, value in message.items()},
            "text": parts.get("text/plain", ""),
            "html": parts.get("text/html", ""),
        }
        temporary = os.path.join(self.directory, f".{self.count}.json")
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.rename(temporary, os.path.join(self.directory, f"{self.count}.json"))
        return "250 OK"


def main():
    host, port, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    handler = Counter(directory) if sys.argv[4:] == ["count"] else Sink(directory)
    controller = Controller(handler, hostname=host, port=port)
    controller.start()
    open(os.path.join(directory, "ready"), "w").close()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
