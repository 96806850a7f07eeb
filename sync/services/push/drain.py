"""Running pushes: each claimed row goes prepare (database) → send (HTTP) → complete (database).

The row is a job of ``portal.jobs``: claimed with one conditional update, retried after
``RETRY`` (in the row's ``not_before``), and a dead letter once that is spent or the target
refuses for good (4xx other than 408/429, mapping errors). django-q2 delivers at least once;
the claim makes each push happen once, and the partial unique constraint "one in-flight row
per entity" means two workers never push the same entity at once, so exactly one external
record is created.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from portal import jobs
from portal.audit import audit
from portal.metrics import PUSH_LAG_SECONDS
from portal.secrets import MissingSecret
from sync.clients.base import ExternalError, RecordedHttp
from sync.domain.mapping import MappingError
from sync.models import ExternalSystem, OutboundWork
from sync.services.alerts import target_failed, target_succeeded
from sync.services.push.calls import CallRows, ClaimLost, Desk, calls_interrupted
from sync.services.push.decide import PushCache, PushDecision, push_decide
from sync.services.push.enqueue import DRAIN_TASK, push_enqueue
from sync.services.push.links import push_record

log = logging.getLogger(__name__)

# Seconds to wait before retry n (the n-th entry); after the last one the work is a dead
# letter. About 3.5 hours in all: long enough to ride out a target's deploy or outage,
# short enough that staff hear of a real problem the same day.
RETRY = jobs.RetrySchedule((5, 30, 120, 600, 1800, 3600, 7200))
# A drain stops after this long so that it ends well inside django-q2's timeout.
DRAIN_BUDGET_SECONDS = min(60, settings.Q_CLUSTER["timeout"] // 2)


def claimable() -> Q:
    """Work whose entity no other worker is pushing now, for a system that is not paused
    (claims pass it over until then)."""
    in_flight = OutboundWork.objects.filter(
        status=OutboundWork.Status.IN_FLIGHT,
        system=OuterRef("system"),
        entity_type=OuterRef("entity_type"),
        wix_id=OuterRef("wix_id"),
    )
    return Q(~Exists(in_flight)) & Q(system__paused_at__isnull=True)


@dataclass
class _Push:
    """One claimed unit of work on its way through prepare → send → complete."""

    work: OutboundWork
    rows: CallRows
    decision: PushDecision | None = None
    http: RecordedHttp | None = None
    external_id: str = ""
    error: BaseException | None = field(default=None)

    def scrub(self, text: str) -> str:
        """``text`` without the credentials this push sent (for errors stored on the work)."""
        return self.http.scrub(text) if self.http is not None else text


def _load(work_id: int, cache: PushCache, desk: Desk | None = None) -> _Push:
    work = OutboundWork.objects.get(pk=work_id)
    # A drain pushes to a handful of systems for a handful of sites: read each once.
    work.system, work.site = cache.system(work.system_id), cache.site(work.site_id)
    return _Push(work, CallRows(work, desk.write) if desk is not None else CallRows(work))


def _prepare(push: _Push, cache: PushCache) -> None:
    """Database reads and mapping: what to send."""
    work = push.work
    try:
        cache.adapter(work.system)  # built here, so that sending needs no database
        push.decision = push_decide(
            system=work.system, site=work.site, entity_type=work.entity_type, wix_id=work.wix_id, cache=cache
        )
    except Exception as exc:
        push.error = exc


def _send(push: _Push, cache: PushCache) -> None:
    """HTTP only (no database): may run in a drain's sending thread."""
    work, decision = push.work, push.decision
    assert decision is not None
    adapter = cache.adapter(work.system)
    http = push.http = RecordedHttp(push.rows, timeout=work.system.timeout)
    context = decision.context
    try:
        if decision.action == "delete":
            assert decision.link is not None
            adapter.delete(
                http, entity_type=work.entity_type, external_id=decision.link.external_id, context=context
            )
        elif decision.action == "update":
            assert decision.link is not None and decision.payload is not None
            adapter.update(
                http,
                entity_type=work.entity_type,
                external_id=decision.link.external_id,
                payload=decision.payload,
                context=context,
            )
        else:
            assert decision.payload is not None
            key = f"wix-portal:{work.system_id}:{work.entity_type}:{work.wix_id}"
            push.external_id = adapter.create(
                http,
                entity_type=work.entity_type,
                payload=decision.payload,
                idempotency_key=key,
                context=context,
            )
    except Exception as exc:
        push.error = exc


def _dead(work: OutboundWork, error: str, details: dict | None = None) -> str:
    jobs.finish(
        OutboundWork,
        work.pk,
        status=OutboundWork.Status.DEAD,
        error=error,
        error_details=details or {},
        finished_at=timezone.now(),
    )
    return "gave-up"


def _complete(push: _Push) -> str:
    """Database writes: the attempt rows, the link, and the work's new state, committed together."""
    with transaction.atomic():
        outcome = _record(push)
    if outcome not in ("retry-scheduled", "gave-up", "claim-lost"):
        _recheck(push)
    return outcome


def _record(push: _Push) -> str:
    work = push.work
    if isinstance(push.error, ClaimLost):
        return "claim-lost"  # the row is another worker's now: leave it, and its calls, alone
    error_text = push.scrub(f"{push.error.__class__.__name__}: {push.error}") if push.error else ""
    push.rows.finish(error=error_text)
    try:
        if push.error is not None:
            raise push.error
        assert push.decision is not None
        outcome = (
            push_record(work, push.decision, push.external_id)
            if push.decision.calls
            else push.decision.action
        )
    except (MappingError, MissingSecret) as exc:
        return _dead(work, f"{exc.__class__.__name__}: {exc}")
    except ExternalError as exc:
        error = push.scrub(str(exc))
        if exc.permanent:
            return _dead(work, error, exc.details)
        target_failed(system=work.system, error=error)  # the system may be down: an incident
        if jobs.defer(OutboundWork, work, error=error, schedule=RETRY, error_details=exc.details):
            return "retry-scheduled"
        return _dead(work, error, exc.details)
    except Exception as exc:
        log.error("Push of work %s crashed", work.pk, exc_info=exc)
        return _dead(work, push.scrub(f"{exc.__class__.__name__}: {exc}"))
    now = timezone.now()
    jobs.finish(OutboundWork, work.pk, status=OutboundWork.Status.DONE, outcome=outcome, finished_at=now)
    if push.decision is not None and push.decision.calls:
        target_succeeded(system=work.system)
        if work.changed_at is not None:
            PUSH_LAG_SECONDS.labels(work.system.name).observe((now - work.changed_at).total_seconds())
    return outcome


def _recheck(push: _Push) -> None:
    """A payload built from sibling entities may have been stale when sent: if so, send it again.

    Two workers pushing sibling policies at once each send the list they read; the later
    answer can carry the older list. The list is read again once this push is recorded, and
    a difference queues a push of a sibling, which sends the list as it is now.
    """
    assert push.decision is not None
    work = push.work
    for wix_id in push.decision.context.recheck[:1]:
        fresh = push_decide(system=work.system, site=work.site, entity_type=work.entity_type, wix_id=wix_id)
        if fresh.calls:
            push_enqueue(
                site=work.site,
                entity_type=work.entity_type,
                wix_ids=[wix_id],
                trigger=work.trigger,
                systems=[work.system],
            )


def work_execute(*, work_id: int, cache: PushCache | None = None) -> str:
    """Claim one due pending row and push it. Returns the outcome for django-q2's list."""
    if not jobs.claim(OutboundWork, work_id, also=claimable()):
        busy = OutboundWork.objects.filter(pk=work_id).exclude(claimable()).exists()
        return "busy" if busy else "not-claimed"
    cache = cache or PushCache()
    push = _load(work_id, cache)
    _prepare(push, cache)
    if push.error is None and push.decision is not None and push.decision.calls:
        _send(push, cache)
    return _complete(push)


def push_drain(*, budget_seconds: float | None = None, woken_at: float | None = None) -> str:
    """Push due work until none is left or the time budget is spent (then hand over to another).

    One request is in flight at a time, but the drain overlaps the database work around
    it: while a sending thread waits for the target's answer to push n, this thread
    records push n-1 and claims and prepares push n+1. Each push still goes claim →
    prepare → send → complete in order; only different entities overlap.
    """
    budget = budget_seconds or DRAIN_BUDGET_SECONDS
    deadline = time.monotonic() + budget
    cache = PushCache()
    desk = Desk()
    done = 0
    in_flight: tuple[_Push, Future[None]] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="push-send") as sender:
        try:
            for work_id in jobs.claims(
                OutboundWork, budget_seconds=budget, also=claimable(), woken_at=woken_at
            ):
                push = _load(work_id, cache, desk)
                _prepare(push, cache)
                desk.serve()  # rows the push in flight asked for meanwhile (several calls)
                if push.error is not None or push.decision is None or not push.decision.calls:
                    _complete(push)
                    done += 1
                    continue
                previous, in_flight = in_flight, None
                if previous is not None:
                    desk.serve(until=previous[1])
                    previous[1].result()
                in_flight = (push, sender.submit(_send, push, cache))
                # Its first "sending" row, so the request goes out while we do the rest.
                desk.serve(until=in_flight[1], first=True)
                if previous is not None:
                    _complete(previous[0])  # while this push's request is out
                    done += 1
        finally:
            if in_flight is not None:
                push, future = in_flight
                desk.serve(until=future)
                future.result()
                _complete(push)
                done += 1
    if time.monotonic() < deadline:
        return f"drained {done}"
    jobs.wake_now(DRAIN_TASK)
    return f"drained {done}, continuing"


def push_release_stuck() -> int:
    """Scheduled: work whose worker died waits again (its "sending" calls are marked
    interrupted); where a newer pending row of the entity exists, that row pushes instead."""

    def superseded(work_id: int) -> None:
        calls_interrupted(work_id=work_id)
        OutboundWork.objects.filter(pk=work_id, status=OutboundWork.Status.IN_FLIGHT).update(
            status=OutboundWork.Status.DONE, outcome="superseded", claimed_at=None, finished_at=timezone.now()
        )

    stuck = OutboundWork.objects.filter(
        status=OutboundWork.Status.IN_FLIGHT, claimed_at__lt=timezone.now() - jobs.stuck_after_default()
    ).values_list("pk", flat=True)
    for work_id in stuck:
        calls_interrupted(work_id=work_id)
    return jobs.release_stuck(OutboundWork, on_conflict=superseded)


def work_retry(*, work_ids: list[int], by: object = None, reason: str = "staff retry") -> int:
    """Staff: run dead or waiting work again now, with a fresh retry schedule."""

    def superseded(work_id: int) -> None:
        # The entity already has pending work, which pushes its newest state anyway.
        OutboundWork.objects.filter(pk=work_id).update(outcome="superseded")

    again = jobs.retry(OutboundWork, work_ids, reason=reason, by=by, on_conflict=superseded)
    if again:
        OutboundWork.objects.filter(pk__in=again).update(finished_at=None)
        jobs.wake(DRAIN_TASK)
        audit(by, OutboundWork.objects.filter(pk__in=again), f"Retried ({reason}).")
    return len(again)


def work_retry_dead_since(*, since: object, by: object = None) -> int:
    ids = OutboundWork.objects.filter(status=OutboundWork.Status.DEAD, updated_at__gte=since).values_list(
        "pk", flat=True
    )
    return work_retry(work_ids=list(ids), by=by, reason=f"staff: every dead letter since {since}")


def system_resume(*, system: ExternalSystem, by: object = None) -> bool:
    """Staff: send to a paused system again; the drains take what was queued meanwhile."""
    resumed = bool(
        ExternalSystem.objects.filter(pk=system.pk, paused_at__isnull=False).update(
            paused_at=None, failure_streak=0
        )
    )
    if resumed:
        jobs.wake(DRAIN_TASK, drains=settings.Q_CLUSTER.get("workers", 1))
        audit(by, system, "Resumed: its queued pushes are sent again.")
    return resumed
