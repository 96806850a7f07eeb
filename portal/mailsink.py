"""A local SMTP server that keeps what it receives: the quick start's mail sink, and the
end-to-end tests' real server on loopback (aiosmtpd).

Every message is kept in memory (tests read ``messages``) and, with a path, appended to an
mbox file that any mail program opens (``var/mail/sink.mbox``); staff also read it at
``/mail-sink/`` while the quick start runs.
"""

from __future__ import annotations

import email
import email.policy
import logging
import mailbox
import socket
import threading
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

# aiosmtpd logs every SMTP command at INFO: far too much beside the portal's own output.
logging.getLogger("mail.log").setLevel(logging.WARNING)


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sink.keep(bytes(envelope.original_content or envelope.content), list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class MailSink:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, mbox: Path | None = None) -> None:
        self.host, self.port = host, port or free_port(host)
        self.mbox = mbox
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self._lock = threading.Lock()
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port)

    def keep(self, raw: bytes, rcpt_tos: list[str]) -> None:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)
            self.recipients.append(rcpt_tos)
            if self.mbox is not None:
                self.mbox.parent.mkdir(parents=True, exist_ok=True)
                box = mailbox.mbox(self.mbox)
                try:
                    box.add(raw)
                    box.flush()
                finally:
                    box.close()

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def mbox_read(path: Path, *, last: int = 50) -> list[EmailMessage]:
    """The newest messages of an mbox file, newest first."""
    if not path.exists():
        return []
    box = mailbox.mbox(path)
    try:
        raws = [box.get_bytes(key) for key in box.iterkeys()]
    finally:
        box.close()
    return [email.message_from_bytes(raw, policy=email.policy.default) for raw in reversed(raws[-last:])]
