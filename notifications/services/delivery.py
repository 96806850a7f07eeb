"""One drain's delivery state: its connection to the mail server, the hand-over written just
before each message goes, and the "sent" marks (see ``notifications.services.sending``).

Per email, one statement: the hand-over (its time and Message-ID). The rows the server took
are marked sent together when the batch ends. A row is handed over only once the server took
(or refused) the one before, so after a crash the hand-overs tell what went.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from typing import Any

from django.core.mail import get_connection
from django.db.models import F
from django.utils import timezone

from notifications.models import EmailSuppression, LocalSubscriber, Notification, SaleStartCampaign
from notifications.services.emails import CampaignMessages
from portal import jobs

log = logging.getLogger(__name__)


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
        # The row whose message is going now (its pk and Message-ID), and whether the SMTP
        # connection hands it over itself as the message data starts (see :meth:`open`).
        self.sending: tuple[int, str] = (0, "")
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

    def hand_over(self, pk: int, message_id: str = "") -> bool:
        """Record that row ``pk`` goes to the server now. False if it is no longer this
        worker's (released as stuck): then it must not go."""
        if not self.mark_handed(pk, handed_at=timezone.now(), message_id=message_id):
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
            # Django's SMTP backend: the hand-over is written as smtplib starts the message
            # data, once the server has answered MAIL and RCPT. A server delivers nothing
            # before the data's end, so a worker killed before that point sent nothing and its
            # row can go again; the window in which a message's fate is unknown shrinks to the
            # data itself. (Other backends, an ESP's API, hand over before the call.)
            smtp = getattr(connection, "connection", None)
            self.at_data = isinstance(smtp, smtplib.SMTP)
            if isinstance(smtp, smtplib.SMTP):
                smtp.data = self._handing_over(smtp.data)  # type: ignore[method-assign,assignment]

    def _handing_over(self, data: Callable[[Any], tuple[int, bytes]]) -> Callable[[Any], tuple[int, bytes]]:
        def data_once_handed_over(msg: Any) -> tuple[int, bytes]:
            if not self.hand_over(*self.sending):
                raise ClaimLost(self.sending[0])
            return data(msg)

        return data_once_handed_over

    def close(self) -> None:
        self.flush()
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:  # a connection that already broke closes as it can
                log.debug("SMTP connection did not close cleanly", exc_info=True)
            self.connection = None
