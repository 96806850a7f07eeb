"""Incidents of an external system: staff hear when it starts failing, when it is paused, and
when it recovers; after ``TARGET_PAUSE_AFTER_FAILURES`` failed calls in a row it is paused.

A failed call is one the target may get over (timeout, refused connection, 408, 429, 5xx);
a 4xx refusal is the entity's problem and already a dead letter. Each step of an incident is
one ``TargetAlert`` row (unique per system, kind and incident start), so however many workers
see the failures, each email goes out once. The emails are jobs of their own: sending never
holds up a push, and an SMTP outage is retried.

A paused system keeps its work: pushes are still queued, but no drain claims them until staff
resume it (``sync.services.push.system_resume``); then the drains take everything that waited.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from portal import jobs
from sync.models import ExternalSystem, TargetAlert

log = logging.getLogger(__name__)

DRAIN_TASK = "sync.tasks.alerts_drain_task"
SEND_RETRY = jobs.RetrySchedule((30, 120, 600, 1800))


def _link(name: str, query: str = "") -> str:
    return f"{settings.PORTAL_BASE_URL}{reverse(name)}{('?' + query) if query else ''}"


def _alert(system: ExternalSystem, kind: str, incident: dt.datetime, subject: str, body: str) -> bool:
    """Queue one email for this step of the incident; False if it was queued already."""
    try:
        with transaction.atomic():
            TargetAlert.objects.create(
                system=system,
                kind=kind,
                incident=incident,
                subject=f"[Events Sync Portal] {subject}",
                body=body,
            )
    except IntegrityError:
        return False
    jobs.wake(DRAIN_TASK)
    return True


def target_failed(*, system: ExternalSystem, error: str) -> None:
    """A call to the system failed in a way it may get over: count it; alert, or pause."""
    now = timezone.now()
    ExternalSystem.objects.filter(pk=system.pk).update(
        failure_streak=F("failure_streak") + 1, failing_since=Coalesce(F("failing_since"), now)
    )
    streak, since = ExternalSystem.objects.values_list("failure_streak", "failing_since").get(pk=system.pk)
    since = since or now  # set just above; a concurrent recovery may have cleared it since
    system.failure_streak, system.failing_since = streak, since
    if streak == 1:
        _alert(
            system,
            TargetAlert.Kind.FAILING,
            since,
            f"{system} is failing",
            f"A call to {system} ({system.base_url}) failed: {error}\n\n"
            "Pushes are retried with backoff; nothing is lost. If it keeps failing, the system is "
            f"paused after {settings.TARGET_PAUSE_AFTER_FAILURES} failures in a row.\n\n"
            f"Its calls: {_link('admin:sync_synclog_changelist', f'system__id__exact={system.pk}')}",
        )
    if streak >= settings.TARGET_PAUSE_AFTER_FAILURES and ExternalSystem.objects.filter(
        pk=system.pk, paused_at__isnull=True
    ).update(paused_at=now):
        system.paused_at = now
        _alert(
            system,
            TargetAlert.Kind.PAUSED,
            since,
            f"{system} is paused after {streak} failures in a row",
            f"{system} failed {streak} calls in a row (the last: {error}), so the portal stopped "
            "sending to it. Pushes keep being queued and wait.\n\n"
            f"Resume it when it is back: {_link('admin:sync_externalsystem_changelist')} (Resume).",
        )


def target_succeeded(*, system: ExternalSystem) -> None:
    """A call went through: an incident, if there was one, is over."""
    if not system.failure_streak and system.failing_since is None:
        return  # the usual case, read from the drain's copy: no query
    now = timezone.now()
    since = ExternalSystem.objects.filter(pk=system.pk).values_list("failing_since", flat=True).first()
    if not ExternalSystem.objects.filter(pk=system.pk, failing_since__isnull=False).update(
        failure_streak=0, failing_since=None
    ):
        ExternalSystem.objects.filter(pk=system.pk).update(failure_streak=0)
        system.failure_streak = 0
        return
    system.failure_streak, system.failing_since = 0, None
    assert since is not None
    minutes = max(1, round((now - since).total_seconds() / 60))
    _alert(
        system,
        TargetAlert.Kind.RECOVERED,
        since,
        f"{system} has recovered",
        f"Calls to {system} go through again, after about {minutes} minute(s) of failures. "
        "Pushes that waited meanwhile are being sent.",
    )


def _recipients() -> list[str]:
    if settings.ALERT_EMAILS:
        return list(settings.ALERT_EMAILS)
    User = get_user_model()
    operators = User.objects.filter(is_active=True).filter(
        Q(is_superuser=True) | Q(groups__name="Sync operators")
    )
    return sorted({email for email in operators.values_list("email", flat=True) if email})


def _send(alert_id: int) -> None:
    alert = TargetAlert.objects.get(pk=alert_id)
    to = _recipients()
    try:
        if to:
            send_mail(alert.subject, alert.body, None, to)
    except Exception as exc:  # the mail server: try again later
        if not jobs.defer(TargetAlert, alert, error=str(exc), schedule=SEND_RETRY):
            jobs.finish(TargetAlert, alert.pk, status=TargetAlert.Status.FAILED, error=str(exc))
        return
    jobs.finish(
        TargetAlert, alert.pk, status=TargetAlert.Status.SENT, sent_to=", ".join(to) or "(no recipient)"
    )


def alerts_drain(*, budget_seconds: float = 60.0, woken_at: float | None = None) -> int:
    return jobs.drain(TargetAlert, _send, budget_seconds=budget_seconds, woken_at=woken_at)
