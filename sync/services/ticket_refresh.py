"""Order Confirmed → one coalesced Get Ticket Definition per definition per short window.

A ticket counter must follow sales within seconds, but a burst of orders (a popular
release) must not become one Get per order: each order upserts the one *waiting*
:class:`~sync.models.TicketDefinitionRefresh` of its definition, due
``TICKET_REFRESH_WINDOW_SECONDS`` after the first of them, and the drain makes one Get for
all. A row already running does not take new orders (the unique constraint covers waiting
rows only), so an order confirmed while its Get is in flight gets a Get of its own after it.

Never backwards: two Gets may finish out of order (two workers, a slow answer); the
mirror's guard (:mod:`sync.services.mirrors`) drops an older revision, and at one revision a
lower sold count. Wix failing leaves the mirror as it was (the last good value) and the row
is retried on :data:`RETRY`; a definition Wix no longer has is left to its deletion webhook.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from portal import jobs
from sync.clients.wix import WixClientError, WixError, WixNotFound, WixRateLimited
from sync.models import EntityType, OutboundWork, TicketDefinitionRefresh, WixSite
from sync.services.entities import ENTITY_KINDS
from sync.services.mirrors import MirrorDataError
from sync.services.push import push_enqueue
from sync.services.sites import site_wix_client

log = logging.getLogger(__name__)

DRAIN_TASK = "sync.tasks.ticket_refresh_drain_task"
# Seconds before retry n of a Get that could not reach Wix: short at first (a counter is
# only as fresh as its last good Get), then backing off for an outage.
RETRY = jobs.RetrySchedule((2, 10, 60, 300, 1800))
DRAIN_BUDGET_SECONDS = 30.0


def _window() -> dt.timedelta:
    return dt.timedelta(seconds=settings.TICKET_REFRESH_WINDOW_SECONDS)


def ticket_refresh_request(*, site: WixSite, wix_ids: list[str], now: dt.datetime | None = None) -> int:
    """Ask for a Get of each definition: join its waiting refresh, or start one due after the
    window. Returns how many new refreshes were started (the rest joined one)."""
    now = now or timezone.now()
    started = 0
    for wix_id in dict.fromkeys(wix_ids):
        waiting = TicketDefinitionRefresh.objects.filter(
            site=site, wix_id=wix_id, status=TicketDefinitionRefresh.Status.WAITING
        )
        if waiting.update(orders=F("orders") + 1):
            continue
        try:
            with transaction.atomic():  # a savepoint: a concurrent first order may win the insert
                TicketDefinitionRefresh.objects.create(site=site, wix_id=wix_id, not_before=now + _window())
            started += 1
        except IntegrityError:
            waiting.update(orders=F("orders") + 1)
    jobs.wake(DRAIN_TASK)
    return started


def _finish(pk: int, *, status: str, outcome: str = "", error: str = "") -> None:
    jobs.finish(
        TicketDefinitionRefresh,
        pk,
        status=status,
        error=error,
        outcome=outcome[:64],
        finished_at=timezone.now(),
    )


def ticket_refresh_execute(refresh_id: int) -> str:
    """Work one claimed refresh: Get the definition with its sales details and upsert it."""
    done, dead = TicketDefinitionRefresh.Status.DONE, TicketDefinitionRefresh.Status.FAILED
    row = TicketDefinitionRefresh.objects.select_related("site").get(pk=refresh_id)
    try:
        data = site_wix_client(row.site, fail_fast=True).get_ticket_definition(row.wix_id)
        kind = ENTITY_KINDS[EntityType.TICKET_DEFINITION]
        result = kind.upsert(site=row.site, data=data)
    except WixNotFound:
        _finish(row.pk, status=done, outcome="gone")  # its deletion webhook tombstones it
        return "gone"
    except WixClientError as exc:
        _finish(row.pk, status=dead, error=str(exc))  # Wix refuses (auth, bad id): staff look
        return "failed"
    except WixError as exc:
        wait = exc.retry_after if isinstance(exc, WixRateLimited) else None
        if jobs.defer(TicketDefinitionRefresh, row, error=str(exc), schedule=RETRY, at_least=wait):
            return "retry-scheduled"  # the mirror keeps its last good value meanwhile
        _finish(row.pk, status=dead, error=str(exc))
        return "failed"
    except MirrorDataError as exc:
        _finish(row.pk, status=dead, error=f"MirrorDataError: {exc}")
        return "failed"
    except Exception as exc:
        log.exception("Ticket definition refresh %s crashed", row.pk)
        _finish(row.pk, status=dead, error=f"{exc.__class__.__name__}: {exc}")
        return "failed"
    if result.changed:
        push_enqueue(
            site=row.site,
            entity_type=EntityType.TICKET_DEFINITION,
            wix_ids=[row.wix_id],
            trigger=OutboundWork.Trigger.WEBHOOK,
        )
    _finish(row.pk, status=done, outcome=str(result.outcome))
    return str(result.outcome)


def ticket_refresh_drain(
    *, budget_seconds: float = DRAIN_BUDGET_SECONDS, woken_at: float | None = None
) -> int:
    """Work due refreshes until none is left or the budget is spent; returns how many.

    A wake-up comes with the order, a window before its refresh is due: the drain lingers
    that much longer, so it makes the Get itself rather than leave it to the minute's sweep.
    """
    deadline = time.monotonic() + budget_seconds
    linger = woken_at + settings.TICKET_REFRESH_WINDOW_SECONDS if woken_at is not None else None
    done = jobs.drain(
        TicketDefinitionRefresh,
        ticket_refresh_execute,
        budget_seconds=budget_seconds,
        order_by=("not_before", "pk"),
        woken_at=linger,
    )
    if time.monotonic() >= deadline:
        jobs.wake_now(DRAIN_TASK)
    return done
