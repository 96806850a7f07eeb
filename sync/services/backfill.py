"""Backfill: page through Wix and upsert every event, policy and ticket definition.

A run and each event in it are jobs of ``portal.jobs``:

- a claimed run reads Wix's list of events (or the one event), mirrors each event, queues
  its push, and makes one :class:`BackfillStep` per event;
- drains of steps, on any worker, read each event's policies and ticket definitions and
  mirror them; each step is retried on its own (``STEP_RETRY``), Wix's ``Retry-After``
  included, and one whose worker died is released by the dispatcher, so a run finishes
  without staff. The last step to end settles the run: *succeeded*, or *finished with
  errors* when any entity could not be read or mirrored.

Staff resume a failed or partial run: it lists again (cheap, idempotent) and only what did
not finish is read again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from portal import jobs
from portal.audit import audit
from portal.secrets import MissingSecret
from sync.clients.wix import WixClient, WixClientError, WixError, WixMalformedResponse
from sync.models import BackfillRun, BackfillStep, EntityType, Event, OutboundWork, WixSite
from sync.services.entities import CHILD_KINDS, EVENT
from sync.services.mirrors import MirrorDataError, UpsertOutcome, UpsertResult
from sync.services.push import push_enqueue
from sync.services.sites import site_wix_client

log = logging.getLogger(__name__)

DRAIN_TASK = "sync.tasks.backfill_drain_task"
# A run that cannot list, or a step that cannot read, because Wix is down or busy waits
# this long before its next try; a refusal (4xx) or a broken answer fails it at once.
RUN_RETRY = jobs.RetrySchedule((10, 60, 300, 1800))
STEP_RETRY = jobs.RetrySchedule((10, 60, 300, 1800))
DRAIN_BUDGET_SECONDS = 60.0
# Enough to see what went wrong without letting one broken site grow a row without bound.
MAX_RECORDED_ERRORS = 200
_COUNTERS = ("fetched", "created", "updated", "unchanged", "failed")


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
            jobs.wake(DRAIN_TASK)
            scope_text = f"event {event_wix_id}" if event_wix_id else "all events"
            audit(user, site, f"Started backfill #{run.pk} ({scope_text}, {trigger}).")
    except IntegrityError:
        # Lost a race with another start of the same scope: that run is the answer.
        return BackfillRun.objects.get(**scope, status__in=BackfillRun.ACTIVE_STATUSES), False
    return run, True


def backfill_resume(*, run: BackfillRun, by: Any = None) -> bool:
    """Staff: list a failed or partial run again; its failed events are read again, the
    ones it finished are not."""
    try:
        with transaction.atomic():
            resumed = BackfillRun.objects.filter(pk=run.pk, status__in=BackfillRun.RESUMABLE_STATUSES).update(
                status=BackfillRun.Status.QUEUED,
                finished_at=None,
                failed=0,  # everything not done is tried again, so failures count afresh
                attempts=0,
                not_before=None,
                retried_by=by if getattr(by, "is_authenticated", False) else None,
                retry_reason="staff: resume",
            )
            if resumed:
                failed = list(
                    run.steps.filter(status=BackfillStep.Status.FAILED).values_list("pk", flat=True)
                )
                jobs.retry(BackfillStep, failed, reason="the run was resumed", by=by)
                jobs.wake(DRAIN_TASK)
                audit(by, run, "Resumed.")
    except IntegrityError:
        return False  # another run of the same scope is active
    return bool(resumed)


# --- counting ---------------------------------------------------------------------------------
@dataclass
class _Counts:
    fetched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    by_type: dict[str, int] = field(default_factory=dict)

    def apply(self, where: str, upsert: Any, **kwargs: Any) -> UpsertResult | None:
        self.fetched += 1
        try:
            result: UpsertResult = upsert(**kwargs)
        except MirrorDataError as exc:
            self.error(where, exc)
            return None
        if result.outcome == UpsertOutcome.CREATED:
            self.created += 1
        elif result.outcome == UpsertOutcome.UPDATED:
            self.updated += 1
        else:
            self.unchanged += 1
        return result

    def error(self, where: str, exc: BaseException, attempt: int = 0) -> None:
        self.failed += 1
        if len(self.errors) < MAX_RECORDED_ERRORS:
            self.errors.append(
                {"where": where, "error": str(exc), "type": exc.__class__.__name__, "attempt": attempt}
            )

    def add_to_run(self, run_id: int) -> None:
        """Add these counts to the run (one UPDATE; steps finishing at once cannot lose any)."""
        BackfillRun.objects.filter(pk=run_id).update(
            **{name: F(name) + getattr(self, name) for name in _COUNTERS}
        )


# --- a run: list the events -------------------------------------------------------------------
def _run_list(run: BackfillRun) -> str:
    """Claimed run: mirror its events, queue their pushes, make a step per event."""
    counts = _Counts()
    try:
        client = site_wix_client(run.site, fail_fast=True)
        events: Iterable[dict[str, Any]] = (
            [client.get_event(run.event_wix_id)] if run.event_wix_id else client.query_events()
        )
        listed: list[str] = []
        for data in events:
            if counts.apply(f"event {data.get('id')}", EVENT.upsert, site=run.site, data=data) is not None:
                listed.append(data["id"])
    except (WixClientError, WixMalformedResponse, MissingSecret) as exc:
        # Wix refuses the whole site, answers nonsense, or the key is missing: staff must look.
        counts.error("site" if not run.event_wix_id else f"event {run.event_wix_id}", exc, run.attempts)
        return _run_failed(run, counts, exc)
    except WixError as exc:
        if jobs.defer(BackfillRun, run, error=str(exc), schedule=RUN_RETRY, at_least=exc.retry_after):
            return "retry-scheduled"
        counts.error("site", exc, run.attempts)
        return _run_failed(run, counts, exc)
    push_enqueue(
        site=run.site,
        entity_type=EntityType.EVENT,
        wix_ids=listed,
        trigger=OutboundWork.Trigger.BACKFILL,
        drains=settings.Q_CLUSTER.get("workers", 1),
    )
    BackfillStep.objects.bulk_create(
        [BackfillStep(run=run, event_wix_id=wix_id) for wix_id in dict.fromkeys(listed)],
        ignore_conflicts=True,
    )
    counts.add_to_run(run.pk)
    jobs.finish(
        BackfillRun,
        run.pk,
        status=BackfillRun.Status.RUNNING,
        errors=run.errors + counts.errors,
    )
    # Every worker reads Wix and mirrors (this drain goes on to the steps itself): the pushes
    # queued meanwhile run as workers free up. Mirroring first is faster in all: with SQLite
    # one writer at a time, pushes made during a backfill only wait for its writes.
    extra = settings.Q_CLUSTER.get("workers", 1) - 1
    if extra:
        jobs.wake(DRAIN_TASK, drains=extra)
    _run_settle(run.pk)  # nothing to wait for if the site has no events left to do
    return f"listed {len(listed)} events"


def _run_failed(run: BackfillRun, counts: _Counts, exc: BaseException) -> str:
    counts.add_to_run(run.pk)
    jobs.finish(
        BackfillRun,
        run.pk,
        status=BackfillRun.Status.FAILED,
        error=str(exc),
        errors=run.errors + counts.errors,
        finished_at=timezone.now(),
    )
    return BackfillRun.Status.FAILED


def _run_settle(run_id: int) -> str | None:
    """Once no step of a listed run is open, its result; None while steps remain.

    Each step settles after its own commit, so the last one to end sees every other end.
    """
    with transaction.atomic():
        run = (
            BackfillRun.objects.select_for_update()
            .filter(pk=run_id, status=BackfillRun.Status.RUNNING)
            .first()
        )
        if run is None or run.steps.filter(status__in=[BackfillStep.WAITING, BackfillStep.CLAIMED]).exists():
            return None
        errors = list(run.errors)
        for step in run.steps.exclude(errors=[]).only("errors")[:MAX_RECORDED_ERRORS]:
            errors += step.errors
        dead = run.steps.filter(status=BackfillStep.Status.FAILED).exists()
        run.status = BackfillRun.Status.PARTIAL if dead or run.failed else BackfillRun.Status.SUCCEEDED
        run.errors, run.finished_at = errors[:MAX_RECORDED_ERRORS], timezone.now()
        run.save(update_fields=["status", "errors", "finished_at", "updated_at"])
        return run.status


# --- a step: one event's policies and ticket definitions --------------------------------------
Children = dict[str, list[dict[str, Any]]]


def _fetch_children(client: WixClient, event_id: str) -> Children:
    """Every policy and ticket definition of an event, read from Wix (HTTP only, no database)."""
    return {kind.entity_type: list(kind.query_of_event(client, event_id)) for kind in CHILD_KINDS}  # type: ignore[misc]


def _step_run(step: BackfillStep, children: Future[Children]) -> str:
    """Claimed step: mirror what Wix read for its event, queue the pushes, settle."""
    where = f"event {step.event_wix_id}"
    counts = _Counts()
    try:
        fetched = children.result()
    except (WixClientError, WixMalformedResponse, MissingSecret) as exc:
        # This event's data is refused or broken (fewer entities than Wix said there were
        # included); the others may be fine. Staff see it and may resume the run.
        counts.error(where, exc, step.attempts)
        return _step_end(step, counts, BackfillStep.Status.FAILED, str(exc))
    except WixError as exc:
        if jobs.defer(BackfillStep, step, error=str(exc), schedule=STEP_RETRY, at_least=exc.retry_after):
            return "retry-scheduled"
        counts.error(where, exc, step.attempts)
        return _step_end(step, counts, BackfillStep.Status.FAILED, str(exc))
    parent = Event.objects.filter(site_id=step.run.site_id, wix_id=step.event_wix_id).first()
    mirrored: dict[str, list[str]] = {}
    for kind in CHILD_KINDS:
        count = len(fetched[kind.entity_type])
        if count:
            counts.by_type[kind.entity_type] = count
        for data in fetched[kind.entity_type]:
            label = f"{kind.label.lower()} {data.get('id')}"
            if counts.apply(label, kind.upsert, site=step.run.site, data=data, event=parent) is not None:
                mirrored.setdefault(kind.entity_type, []).append(data["id"])
    # The same push path as webhooks and resyncs; an unchanged payload makes no call.
    for entity_type, wix_ids in mirrored.items():
        push_enqueue(
            site=step.run.site,
            entity_type=entity_type,
            wix_ids=wix_ids,
            trigger=OutboundWork.Trigger.BACKFILL,
            drains=settings.Q_CLUSTER.get("workers", 1),
        )
    return _step_end(step, counts, BackfillStep.Status.DONE)


def _step_end(step: BackfillStep, counts: _Counts, status: str, error: str = "") -> str:
    with transaction.atomic():
        jobs.finish(
            BackfillStep,
            step.pk,
            status=status,
            error=error,
            errors=counts.errors,
            fetched_by_type=counts.by_type,
            **{name: getattr(counts, name) for name in _COUNTERS},
        )
        counts.add_to_run(step.run_id)
    _run_settle(step.run_id)
    return status


class _Prefetch:
    """Reads the next claimed step's children from Wix while this one is mirrored (a thread
    that does HTTP only), so Wix's answer time overlaps the database work."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self.executor = executor
        self.clients: dict[int, WixClient] = {}

    def start(self, step: BackfillStep) -> Future[Children]:
        site = step.run.site
        try:
            if site.pk not in self.clients:
                self.clients[site.pk] = site_wix_client(site, fail_fast=True)
        except MissingSecret as exc:
            failed: Future[Children] = Future()
            failed.set_exception(exc)
            return failed
        return self.executor.submit(_fetch_children, self.clients[site.pk], step.event_wix_id)


def _steps(pks: Iterator[int]) -> Iterator[BackfillStep]:
    for pk in pks:
        yield BackfillStep.objects.select_related("run__site").get(pk=pk)


def _steps_drain(claimed: Iterator[int]) -> int:
    done = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="wix-prefetch") as executor:
        prefetch = _Prefetch(executor)
        steps = _steps(claimed)
        current = next(steps, None)
        children = prefetch.start(current) if current else None
        while current is not None and children is not None:
            following = next(steps, None)  # claimed one ahead, its children read meanwhile
            ahead = prefetch.start(following) if following else None
            try:
                _step_run(current, children)
            except Exception as exc:
                log.exception("Backfill step %s crashed", current.pk)
                counts = _Counts()
                counts.error(f"event {current.event_wix_id}", exc, current.attempts)
                _step_end(current, counts, BackfillStep.Status.FAILED, f"{exc.__class__.__name__}: {exc}")
            done += 1
            current, children = following, ahead
    return done


# --- drains -------------------------------------------------------------------------------------
def _run_claimed(run_id: int) -> str:
    run = BackfillRun.objects.select_related("site").get(pk=run_id)
    BackfillRun.objects.filter(pk=run_id).update(started_at=Coalesce(F("started_at"), timezone.now()))
    try:
        return _run_list(run)
    except Exception as exc:
        log.exception("Backfill %s crashed", run_id)
        counts = _Counts()
        counts.error("backfill", exc, run.attempts)
        return _run_failed(run, counts, exc)


def backfill_drain(*, budget_seconds: float = DRAIN_BUDGET_SECONDS, woken_at: float | None = None) -> str:
    """List due runs, then read due steps (of any run), until nothing is due or the budget
    is spent."""
    runs = jobs.drain(BackfillRun, _run_claimed, budget_seconds=budget_seconds, woken_at=woken_at)
    steps = _steps_drain(
        jobs.claims(BackfillStep, budget_seconds=budget_seconds, order_by=("pk",), woken_at=woken_at)
    )
    if BackfillStep.objects.filter(jobs.due(BackfillStep)).exists():
        jobs.wake_now(DRAIN_TASK)  # the budget ran out with more due: hand over
    return f"listed {runs} run(s), backfilled {steps} event(s)"


def backfill_execute(*, run_id: int) -> str:
    """Run one queued backfill to its end in this process (the command line's ``--wait``, and
    tests): list it, then read its steps. Other workers may take some of its steps meanwhile."""
    if not jobs.claim(BackfillRun, run_id):
        return "duplicate"
    _run_claimed(run_id)
    _steps_drain(jobs.claims(BackfillStep, budget_seconds=3600, order_by=("pk",), also=Q(run_id=run_id)))
    return BackfillRun.objects.values_list("status", flat=True).get(pk=run_id)


def backfill_release_stuck() -> int:
    """Scheduled: runs and steps whose worker died wait again; a listed run whose steps all
    ended (its last step's worker died between the two) is settled."""
    released = jobs.release_stuck(BackfillRun) + jobs.release_stuck(BackfillStep)
    for run_id in BackfillRun.objects.filter(status=BackfillRun.Status.RUNNING).values_list("pk", flat=True):
        _run_settle(run_id)
    return released
