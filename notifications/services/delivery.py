"""One drain's delivery state: its connection to the mail server, the hand-over written just
before each message goes, and the "sent" marks (see ``notifications.services.sending``).

Per email, one statement: the hand-over (its time and Message-ID), written over SMTP after the
message's data and before the line that ends it. The rows the server took are marked sent
together when the batch ends. A row is handed over only once the server took (or refused) the
one before, so after a crash the hand-overs tell what went.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import smtplib
import socket
from collections.abc import Callable
from typing import Any

from django.core.mail import get_connection
from django.db.models import F
from django.utils import timezone

from notifications.models import EmailSuppression, LocalSubscriber, Notification, SaleStartCampaign
from notifications.services.emails import CampaignMessages
from portal import jobs

log = logging.getLogger(__name__)

_LEADING_PERIOD = re.compile(rb"(?m)^\.")


class ClaimLost(Exception):
    """The row about to go is no longer this worker's (it was released as stuck)."""


class Delivery:
    """One drain's state: its connection, the hand-overs and marks, and per campaign its
    messages (templates, context, sender) and suppressions, read once (the campaign itself is
    read again for each batch: a cancel shows)."""

    def __init__(self) -> None:
        self.connection: Any = None
        self.campaigns: dict[int, SaleStartCampaign] = {}
        self.messages_for: dict[int, CampaignMessages] = {}
        self.suppressed: dict[int, set[str]] = {}
        # One statement an email, run thousands of times (precompiled): the hand-over, just
        # before the message goes. "Sent" is written for the rows the server took when the
        # batch ends: a row is handed over only once the server took the one before (or
        # refused it, which is marked at once), so the hand-overs tell which went.
        self.mark_handed = jobs.ClaimedUpdate(Notification, fields=("handed_at", "message_id"))
        self.accepted: list[int] = []
        # The row whose message is going now (its pk, Message-ID and claim), and whether the SMTP
        # connection hands it over itself, before the end of the data (see :meth:`_data`).
        self.sending: tuple[int, str, dt.datetime | None] = (0, "", None)
        self.at_data = False
        self.handed: int | None = None  # the row whose message went, for this send

    def load(self, campaign_ids: set[int]) -> None:
        self.campaigns = SaleStartCampaign.objects.select_related("site", "event").in_bulk(campaign_ids)

    def messages(self, campaign: SaleStartCampaign) -> CampaignMessages:
        if campaign.pk not in self.messages_for:
            self.messages_for[campaign.pk] = CampaignMessages(campaign=campaign)
        return self.messages_for[campaign.pk]

    def is_suppressed(self, site_id: int, email: str) -> bool:
        """Unsubscribed since the ledger was written (read once per drain and site)."""
        if site_id not in self.suppressed:
            self.suppressed[site_id] = set(
                EmailSuppression.objects.filter(site_id=site_id).values_list("email", flat=True)
            ) | set(
                LocalSubscriber.objects.filter(site_id=site_id, unsubscribed=True).values_list(
                    "email", flat=True
                )
            )
        return email in self.suppressed[site_id]

    def hand_over(self, pk: int, message_id: str = "", claim: dt.datetime | None = None) -> bool:
        """Record that row ``pk`` (claimed at ``claim``) goes to the server now. False if it is
        no longer this worker's (released as stuck, maybe taken by another): then it must not
        go."""
        if not self.mark_handed(pk, claim=claim, handed_at=timezone.now(), message_id=message_id):
            return False
        self.handed = pk
        return True

    def sent(self, pk: int) -> None:
        """The server took row ``pk``'s message (marked sent by :meth:`flush`)."""
        self.accepted.append(pk)

    def flush(self) -> None:
        """Mark the rows the server took as sent, in one statement (``sent_at``: when each was
        handed over, a round trip before the server took it)."""
        if self.accepted:
            Notification.objects.filter(pk__in=self.accepted, status=Notification.Status.SENDING).update(
                status=Notification.Status.SENT, claimed_at=None, last_error="", sent_at=F("handed_at")
            )
            self.accepted.clear()

    def open(self) -> None:
        if self.connection is None:
            connection = get_connection()
            connection.open()
            self.connection = connection
            # Django's SMTP backend: the hand-over is written between a message's data and the
            # line that ends it (see :meth:`_data`). Other backends (an ESP's API) hand over
            # before the call.
            smtp = getattr(connection, "connection", None)
            self.at_data = isinstance(smtp, smtplib.SMTP)
            if isinstance(smtp, smtplib.SMTP):
                smtp.data = self._data(smtp)  # type: ignore[method-assign,assignment]
                # The end of the data goes alone: it must not wait for the data's ACK (Nagle).
                # (A socket that is not TCP, a Unix one, has no such option.)
                if smtp.sock is not None:
                    with contextlib.suppress(OSError):
                        smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _data(self, smtp: smtplib.SMTP) -> Callable[[bytes], tuple[int, bytes]]:
        """smtplib's ``data()`` with the hand-over written after the message's data has gone
        and before the line that ends it.

        A server delivers a message only once that line came: a worker killed before it (in
        MAIL, RCPT or the data itself) sent nothing, and as nothing was handed over its row goes
        again. Killed after it, the row was handed over and the server has the message. Lost is
        only the message of a worker killed between sending the hand-over and sending the three
        bytes that end the data (".", a line break): on SQLite an instant, on PostgreSQL the
        commit's wait for the WAL flush (the server commits what it received). Its row is
        uncertain, like the one the server took.
        """

        def data(msg: bytes) -> tuple[int, bytes]:  # sendmail(), its one caller, passes bytes
            smtp.putcmd("data")
            code, reply = smtp.getreply()
            if code != 354:
                raise smtplib.SMTPDataError(code, reply)
            body = _LEADING_PERIOD.sub(b"..", msg)  # RFC 5321 4.5.2, as smtplib does
            smtp.send(body if body.endswith(b"\r\n") else body + b"\r\n")
            try:
                handed = self.hand_over(*self.sending)
            except BaseException:
                smtp.close()  # the server drops a message whose end never came
                raise
            if not handed:
                smtp.close()
                raise ClaimLost(self.sending[0])
            smtp.send(b".\r\n")
            return smtp.getreply()

        return data

    def close(self) -> None:
        self.flush()
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:  # a connection that already broke closes as it can
                log.debug("SMTP connection did not close cleanly", exc_info=True)
            self.connection = None
