"""Backfill: page through Wix and upsert every event, policy and ticket definition.

A run is a row before it is a task. django-q2 delivers at least once, so the task claims
its row with a conditional update and does nothing if another delivery got there first.
Progress is saved after each event: a run that died (its heartbeat went quiet) is marked
by the sweep and, resumed from the admin, skips the events already done.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from portal.queue import enqueue
from portal.secrets import MissingSecret
from sync.clients.wix import WixClient, WixClientError, WixError, WixMalformedResponse
from sync.models import BackfillRun, EntityType, Event, OutboundWork, WixSite
from sync.services.mirrors import (
    MirrorDataError,
    UpsertOutcome,
    UpsertResult,
    event_upsert_from_wix,
    policy_upsert_from_wix,
    ticket_definition_upsert_from_wix,
)
from sync.services.push import push_enqueue

log = logging.getLogger(__name__)

# Enough to see what went wrong without letting one broken site grow a row without bound.
MAX_RECORDED_ERRORS = 200
BACKFILL_TASK = "sync.tasks.backfill_run_task"


def backfill_start(
    *, site: WixSite, event_wix_id: str = "", trigger: str, user: Any = None
) -> tuple[BackfillRun, bool]:
    """Queue a backfill of a site (or one event); returns ``(run, created)``.

    A scope already being backfilled returns the active run instead of a second one.
    """
    scope = {"site": site, "event_wix_id": event_wix_id}
    active = BackfillRun.objects.filter(**scope, status__in=BackfillRun.ACTIVE_STATUSES).first()
    if active:
        return active, False
    try:
        with transaction.atomic():
            run = BackfillRun.objects.create(
                **scope,
                event=Event.objects.filter(site=site, wix_id=event_wix_id).first() if event_wix_id else None,
                trigger=trigger,
                started_by=user if getattr(user, "is_authenticated", False) else None,
            )
            enqueue(BACKFILL_TASK, run.pk, group=f"backfill-site-{site.pk}")
    except IntegrityError:
        # Lost a race with another start of the same scope: that run is the answer.
        return BackfillRun.objects.get(**scope, status__in=BackfillRun.ACTIVE_STATUSES), False
    return run, True


def backfill_resume(*, run: BackfillRun) -> bool:
    """Queue a failed or dead run again; it skips the events it already finished."""
    try:
        with transaction.atomic():
            resumed = BackfillRun.objects.filter(pk=run.pk, status__in=BackfillRun.RESUMABLE_STATUSES).update(
                # Everything not done is tried again, so failures count afresh; the
                # earlier attempts' errors stay in `errors`, tagged with their attempt.
                status=BackfillRun.Status.QUEUED,
                finished_at=None,
                failed=0,
            )
            if resumed:
                enqueue(BACKFILL_TASK, run.pk, group=f"backfill-site-{run.site_id}")
    except IntegrityError:
        return False  # another run of the same scope is active
    return bool(resumed)


def backfill_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Mark runs whose worker went quiet as died; re-queue runs whose task was lost.

    A queued run older than the stale limit has lost its task (a Redis broker that
    restarted keeps nothing); queueing it again is safe because the task claims its row.
    """
    now = now or timezone.now()
    limit = now - dt.timedelta(seconds=settings.BACKFILL_STALE_AFTER)
    died = BackfillRun.objects.filter(status=BackfillRun.Status.RUNNING, heartbeat_at__lt=limit).update(
        status=BackfillRun.Status.DIED, finished_at=now
    )
    requeued = 0
    for run_id in BackfillRun.objects.filter(
        status=BackfillRun.Status.QUEUED, updated_at__lt=limit
    ).values_list("pk", flat=True):
        BackfillRun.objects.filter(pk=run_id).update(updated_at=now)
        enqueue(BACKFILL_TASK, run_id)
        requeued += 1
    return {"died": died, "requeued": requeued}


class _Progress:
    """Counts and errors of one run, written to its row after every event."""

    def __init__(self, run: BackfillRun) -> None:
        self.run = run

    def error(self, where: str, exc: BaseException) -> None:
        self.run.failed += 1
        if len(self.run.errors) < MAX_RECORDED_ERRORS:
            self.run.errors.append(
                {
                    "where": where,
                    "error": str(exc),
                    "type": exc.__class__.__name__,
                    "attempt": self.run.attempts,
                }
            )

    def apply(self, where: str, upsert: Callable[[], UpsertResult]) -> UpsertResult | None:
        self.run.fetched += 1
        try:
            result = upsert()
        except MirrorDataError as exc:
            self.error(where, exc)
            return None
        if result.outcome == UpsertOutcome.CREATED:
            self.run.created += 1
        elif result.outcome == UpsertOutcome.UPDATED:
            self.run.updated += 1
        else:
            self.run.unchanged += 1
        return result

    def save(self, *, event_done: str | None = None) -> None:
        if event_done:
            self.run.done_event_ids.append(event_done)
        self.run.heartbeat_at = timezone.now()
        self.run.save(
            update_fields=[
                "fetched",
                "created",
                "updated",
                "unchanged",
                "failed",
                "errors",
                "done_event_ids",
                "heartbeat_at",
                "updated_at",
            ]
        )


Children = tuple[list[dict[str, Any]], list[dict[str, Any]]]


def _fetch_children(client: WixClient, event_id: str) -> Children:
    """Every policy and ticket definition of an event, read from Wix (no database)."""
    return list(client.query_policies(event_id)), list(client.query_ticket_definitions(event_id))


def _backfill_event(
    site: WixSite, event: dict[str, Any], children: Future[Children], progress: _Progress
) -> bool:
    """Mirror one event and its children, then queue their pushes; False if Wix refused part of it."""
    event_id = event.get("id", "?")
    result = progress.apply(
        f"event {event_id}", functools.partial(event_upsert_from_wix, site=site, data=event)
    )
    parent = result.mirror if result is not None and isinstance(result.mirror, Event) else None
    try:
        policies, ticket_definitions = children.result()
    except (WixClientError, WixMalformedResponse) as exc:
        # This event's data is refused or broken; the others may be fine.
        progress.error(f"event {event_id}", exc)
        return False
    mirrored: dict[str, list[str]] = {EntityType.POLICY: [], EntityType.TICKET_DEFINITION: []}
    for entity_type, items, upsert in [
        (EntityType.POLICY, policies, policy_upsert_from_wix),
        (EntityType.TICKET_DEFINITION, ticket_definitions, ticket_definition_upsert_from_wix),
    ]:
        for data in items:
            where = f"{EntityType(entity_type).label.lower()} {data.get('id')}"
            if (
                progress.apply(where, functools.partial(upsert, site=site, data=data, event=parent))
                is not None
            ):
                mirrored[entity_type].append(data["id"])
    # The same push path as webhooks and resyncs; an unchanged payload makes no call. The
    # event goes first, for systems that keep events (pretix).
    if parent is not None:
        mirrored = {EntityType.EVENT: [parent.wix_id], **mirrored}
    workers = settings.Q_CLUSTER.get("workers", 1)
    for kind, wix_ids in mirrored.items():
        push_enqueue(
            site=site,
            entity_type=kind,
            wix_ids=wix_ids,
            trigger=OutboundWork.Trigger.BACKFILL,
            drains=workers,
        )
    return True


def backfill_execute(*, run_id: int) -> str:
    """Run a queued backfill. Returns a short outcome for django-q2's task list."""
    now = timezone.now()
    claimed = BackfillRun.objects.filter(pk=run_id, status=BackfillRun.Status.QUEUED).update(
        status=BackfillRun.Status.RUNNING,
        started_at=Coalesce(F("started_at"), now),
        heartbeat_at=now,
        attempts=F("attempts") + 1,
    )
    if claimed != 1:
        return "duplicate"
    run = BackfillRun.objects.select_related("site").get(pk=run_id)
    progress = _Progress(run)
    done = set(run.done_event_ids)
    try:
        client = run.site.wix_client()
        events: Iterable[dict[str, Any]] = (
            [client.get_event(run.event_wix_id)] if run.event_wix_id else client.query_events()
        )
        todo = (event for event in events if event["id"] not in done)
        # Wix is read one event ahead in a second thread, so its answer time overlaps the
        # upserts of the event before (the thread does HTTP only, never the database).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="wix-prefetch") as prefetch:
            current = next(todo, None)
            children = prefetch.submit(_fetch_children, client, current["id"]) if current else None
            while current is not None and children is not None:
                following = next(todo, None)
                ahead = prefetch.submit(_fetch_children, client, following["id"]) if following else None
                if _backfill_event(run.site, current, children, progress):
                    done.add(current["id"])
                    progress.save(event_done=current["id"])
                else:
                    progress.save()
                current, children = following, ahead
    except (WixError, MissingSecret) as exc:
        # Wix is down, refuses the whole site, or the key is missing: stop, keep progress.
        progress.error("site" if not run.event_wix_id else f"event {run.event_wix_id}", exc)
        run.status = BackfillRun.Status.FAILED
    except Exception as exc:
        log.exception("Backfill %s crashed", run_id)
        progress.error("backfill", exc)
        run.status = BackfillRun.Status.FAILED
    else:
        run.status = BackfillRun.Status.PARTIAL if run.failed else BackfillRun.Status.SUCCEEDED
    run.finished_at = timezone.now()
    progress.save()
    run.save(update_fields=["status", "finished_at", "updated_at"])
    return run.status
