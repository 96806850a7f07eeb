"""Sending a campaign: resolve, write the ledger, then send each row once.

1. The campaign (a job due at its sale start) resolves its recipients and writes one
   ``Notification`` per address in one transaction (unique per campaign, channel and
   address: running this twice writes nothing new). Nothing is sent after the sale ended;
   a campaign found due more than ``NOTIFICATIONS_GRACE_MINUTES`` late waits for staff.
2. Notifications drain over one SMTP connection (Django's email backend, so django-anymail
   works unchanged): each row is claimed, marked *handed over* just before its message goes
   to the server (``notifications.services.delivery``), and marked sent or failed once the
   server answered. An invalid or refused address fails that row only; a connection that
   drops before a message went hands its row back (retried with backoff) and ends the drain:
   nothing lost, nothing doubled. A message whose fate is unknown (the connection dropped, or
   the worker was killed, after it went) leaves its row ``uncertain``, never re-sent by
   itself; rows a dead worker had claimed but not handed over are sent again.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from notifications.models import Notification, SaleStartCampaign
from notifications.services.consent import recipients_resolve
from notifications.services.delivery import ClaimLost, Delivery
from notifications.services.emails import message_id_for
from notifications.services.mime import CampaignEmail
from notifications.services.push import PushFailed, PushTransient, push_deliver, push_endpoint_for
from notifications.sources.base import SourceBlocked, SourceError
from portal import jobs

log = logging.getLogger(__name__)
Status = SaleStartCampaign.Status
CAMPAIGN_DRAIN_TASK = "notifications.tasks.campaigns_drain_task"
SEND_DRAIN_TASK = "notifications.tasks.notifications_drain_task"
# A source or Wix that cannot be read now: tried again after 1, 5, 15 and 60 minutes.
CAMPAIGN_RETRY = jobs.RetrySchedule((60, 300, 900, 3600))
# An SMTP server that drops us or answers 4xx: 30 s … 1 h, then the row fails for staff.
SEND_RETRY = jobs.RetrySchedule((30, 120, 600, 1800, 3600))
DRAIN_BUDGET_SECONDS = 60.0


# --- 1. the campaign ------------------------------------------------------------------------
def campaign_release(*, campaign_id: int, now: dt.datetime | None = None) -> str:
    """Handle a claimed campaign; returns its outcome."""
    campaign = SaleStartCampaign.objects.select_related("site", "event").get(pk=campaign_id)
    now = now or timezone.now()
    staff_decided = bool(campaign.retry_reason)
    if campaign.sale_end is not None and now >= campaign.sale_end:
        jobs.finish(
            SaleStartCampaign, campaign.pk, status=Status.CANCELLED, cancelled_reason="the sale ended"
        )
        return "sale-ended"
    grace = dt.timedelta(minutes=settings.NOTIFICATIONS_GRACE_MINUTES)
    if not staff_decided and now - campaign.sale_start > grace:
        jobs.finish(
            SaleStartCampaign,
            campaign.pk,
            status=Status.MISSED,
            error=f"found due {now - campaign.sale_start} after its sale start (grace {grace}); "
            "send now or cancel",
        )
        return "missed"
    try:
        resolved = recipients_resolve(site=campaign.site, event=campaign.event_wix_id)
    except SourceBlocked as exc:
        jobs.finish(
            SaleStartCampaign, campaign.pk, status=Status.BLOCKED, error=str(exc), blocked_reason=str(exc)
        )
        return "blocked"
    except SourceError as exc:
        if jobs.defer(SaleStartCampaign, campaign, error=str(exc), schedule=CAMPAIGN_RETRY):
            return "retry-scheduled"
        jobs.finish(SaleStartCampaign, campaign.pk, status=Status.FAILED, error=str(exc))
        return "gave-up"
    with transaction.atomic():
        # The ledger before any send: a second release (a duplicate task) adds nobody twice.
        channels = [Notification.Channel.EMAIL]
        if push_endpoint_for(campaign) is not None:
            channels.append(Notification.Channel.PUSH)
        Notification.objects.bulk_create(
            [
                Notification(
                    campaign=campaign,
                    channel=channel,
                    email=s.email,
                    name=s.name[:200],
                    status=Notification.Status.QUEUED,
                )
                for channel in channels
                for s in resolved.recipients
            ],
            ignore_conflicts=True,
            batch_size=1000,
        )
        excluded = ", ".join(f"{n} {why}" for why, n in sorted(resolved.excluded.items()))
        jobs.finish(
            SaleStartCampaign,
            campaign.pk,
            status=Status.SENDING,
            released_at=now,
            recipients=len(resolved.recipients),
            blocked_reason="",
            error=f"left out: {excluded}" if excluded else "",
        )
    if resolved.recipients:
        jobs.wake(SEND_DRAIN_TASK, drains=settings.Q_CLUSTER.get("workers", 1))
    return f"released:{len(resolved.recipients)}"


def campaigns_drain(*, budget_seconds: float = DRAIN_BUDGET_SECONDS, woken_at: float | None = None) -> int:
    return jobs.drain(
        SaleStartCampaign,
        lambda pk: campaign_release(campaign_id=pk),
        budget_seconds=budget_seconds,
        order_by=("not_before", "pk"),
        woken_at=woken_at,
    )


# --- 2. the notifications -------------------------------------------------------------------
def _skip(pk: int, why: str) -> str:
    jobs.finish(Notification, pk, status=Notification.Status.SKIPPED, error=why)
    return "skipped"


def _transient(notification: Notification, error: str) -> str:
    if jobs.defer(Notification, notification, error=error, schedule=SEND_RETRY):
        return "retry-scheduled"
    jobs.finish(Notification, notification.pk, status=Notification.Status.FAILED, error=error)
    return "gave-up"


def notification_prepare(
    *, notification: Notification, drain: Delivery, now: dt.datetime | None = None
) -> tuple[CampaignEmail, str] | str:
    """The message for a claimed row and its Message-ID; or, for a row settled here (skipped,
    invalid, a push), its outcome."""
    campaign = drain.campaigns[notification.campaign_id]
    now = now or timezone.now()
    if campaign.status == Status.CANCELLED:
        return _skip(notification.pk, "the campaign was cancelled")
    if campaign.sale_end is not None and now >= campaign.sale_end:
        return _skip(notification.pk, "the sale ended")
    if drain.is_suppressed(campaign.site_id, notification.email):
        return _skip(notification.pk, "unsubscribed since")
    if notification.channel == Notification.Channel.PUSH:
        return _push(notification, campaign, drain)
    try:
        validate_email(notification.email)
    except ValidationError:
        jobs.finish(Notification, notification.pk, status=Notification.Status.FAILED, error="invalid address")
        return "failed"
    message_id = message_id_for(notification.pk)
    message = drain.messages(campaign).build(
        email=notification.email, name=notification.name, message_id=message_id
    )
    return message, message_id


def notification_settle(*, notification: Notification, error: BaseException, drain: Delivery) -> str:
    """Mark a row the server refused (failed), hand it back to retry, or (the connection broke
    after its message went) leave it uncertain."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(
            f"{code} {reply.decode(errors='replace')}" for code, reply in error.recipients.values()
        )
        jobs.finish(
            Notification, notification.pk, status=Notification.Status.FAILED, error=f"refused: {refused}"
        )
        return "failed"
    if isinstance(error, smtplib.SMTPResponseException):
        reply = error.smtp_error
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        if 500 <= error.smtp_code < 600:
            jobs.finish(
                Notification,
                notification.pk,
                status=Notification.Status.FAILED,
                error=f"SMTP {error.smtp_code}: {text}",
            )
            return "failed"
        drain.close()
        return _transient(notification, f"SMTP {error.smtp_code}: {text}")
    if isinstance(error, smtplib.SMTPException | OSError):
        drain.close()  # the server went away: the next drain opens a fresh connection
        why = f"{error.__class__.__name__}: {error}"
        if drain.handed == notification.pk:
            # No answer after the message went: the server may have taken it. Sent again it
            # could arrive twice, so staff decide (as after a worker's death).
            jobs.finish(
                Notification,
                notification.pk,
                status=Notification.Status.UNCERTAIN,
                error=f"the connection broke after the message went ({why}): it may or may not have arrived",
            )
            return "uncertain"
        return _transient(notification, why)
    raise error


def notification_send(*, notification: Notification, drain: Delivery, now: dt.datetime | None = None) -> str:
    """Send one claimed row over the drain's connection: marked handed over just before its
    message goes (see :func:`notifications_release_stuck`)."""
    prepared = notification_prepare(notification=notification, drain=drain, now=now)
    if isinstance(prepared, str):
        return prepared
    message, message_id = prepared
    try:
        drain.open()
    except Exception as exc:
        return notification_settle(notification=notification, error=exc, drain=drain)
    drain.sending, drain.handed = (notification.pk, message_id, notification.claimed_at), None
    if not drain.at_data and not drain.hand_over(*drain.sending):
        return "claim-lost"
    try:
        drain.connection.send_messages([message])
    except ClaimLost:
        drain.close()  # the server holds this message's MAIL and RCPT: start afresh
        return "claim-lost"
    except Exception as exc:
        return notification_settle(notification=notification, error=exc, drain=drain)
    drain.sent(notification.pk)
    return "sent"


def _push(notification: Notification, campaign: SaleStartCampaign, drain: Delivery) -> str:
    if not drain.hand_over(notification.pk, claim=notification.claimed_at):
        return "claim-lost"
    try:
        push_deliver(notification=notification, campaign=campaign, context=drain.messages(campaign).context)
    except PushTransient as exc:
        return "push-" + _transient(notification, str(exc))  # SMTP is fine: the drain goes on
    except PushFailed as exc:
        jobs.finish(Notification, notification.pk, status=Notification.Status.FAILED, error=str(exc))
        return "failed"
    jobs.finish(Notification, notification.pk, status=Notification.Status.SENT, sent_at=timezone.now())
    return "sent"


# Outcomes that end a drain: the server is down, or went away mid-message.
STOP = ("retry-scheduled", "gave-up", "uncertain")


def notifications_drain(
    *, budget_seconds: float = DRAIN_BUDGET_SECONDS, woken_at: float | None = None
) -> int:
    """Send due notifications over one connection until none is due or the budget is spent.

    Rows are claimed ``NOTIFICATIONS_SEND_BATCH`` at a time and sent one by one in pk order,
    one message in flight at a time. At the first transient failure (the server is down) the
    rest of the batch is handed back untried and the drain stops; the dispatch sweep returns.

    One thread does it all. A sender thread building the next message while the server
    answered was slower: with the message cheap to build, the two threads spent more time
    handing the GIL to each other than they saved (the send benchmark measured both).
    """
    drain = Delivery()
    done = 0
    deadline = time.monotonic() + budget_seconds
    try:
        for batch in jobs.claimed_batches(
            Notification,
            budget_seconds=budget_seconds,
            woken_at=woken_at,
            batch=settings.NOTIFICATIONS_SEND_BATCH,
        ):
            rows = Notification.objects.only(
                "pk", "campaign_id", "channel", "email", "name", "attempts", "claimed_at"
            )
            found = rows.in_bulk(batch)
            drain.load({n.campaign_id for n in found.values()})
            for index, pk in enumerate(batch):
                done += 1
                if notification_send(notification=found[pk], drain=drain) in STOP:
                    jobs.unclaim(Notification, batch[index + 1 :])
                    return done
            drain.flush()
    finally:
        drain.close()
    if time.monotonic() >= deadline:
        jobs.wake_now(SEND_DRAIN_TASK)  # the budget ran out, maybe with more due: hand over
    return done


def notifications_release_stuck(*, older_than: dt.timedelta | None = None) -> int:
    """Rows claimed by a worker that died (claimed together: one ``claimed_at``). It handed
    them to the server in pk order, each only once the server had taken the one before: so of
    the rows it handed over and did not mark, all but the last were sent, and the last may or
    may not have gone out. That one becomes ``uncertain`` for staff to decide (never re-sent by
    itself: nobody is emailed twice). Rows it never handed over did not go: they wait again."""
    now = timezone.now()
    limit = now - (older_than if older_than is not None else jobs.stuck_after_default())
    stuck = Notification.objects.filter(status=Notification.Status.SENDING, claimed_at__lt=limit)
    handed = Q(handed_at__isnull=False, handed_at__gte=F("claimed_at"))
    last: dict[dt.datetime | None, int] = {}
    for pk, claimed_at in stuck.filter(handed).order_by("pk").values_list("pk", "claimed_at"):
        last[claimed_at] = pk
    uncertain = stuck.filter(pk__in=last.values()).update(
        status=Notification.Status.UNCERTAIN,
        claimed_at=None,
        last_error="its worker died after handing it to the mail server, before the answer was "
        "recorded: it may or may not have gone out",
        updated_at=now,
    )
    sent = stuck.filter(handed).update(
        status=Notification.Status.SENT,
        claimed_at=None,
        last_error="",
        sent_at=F("handed_at"),
        updated_at=now,
    )
    again = stuck.update(
        status=Notification.Status.QUEUED,
        claimed_at=None,
        attempts=F("attempts") - 1,
        last_error="released: its worker died before handing it over",
        updated_at=now,
    )
    return uncertain + sent + again


def notifications_resend(*, notification_ids: list[int], by: Any = None) -> int:
    """Staff: send failed or uncertain rows again."""
    again = jobs.retry(Notification, notification_ids, reason="staff: send again", by=by)
    if again:
        jobs.wake(SEND_DRAIN_TASK)
    return len(again)
