"""The one push path: backfill, webhook and resync all bring an entity up to date here.

For each active system: no link → create and store the link; link → update (skipped when
the mapped payload is unchanged); tombstone → delete and mark the link.

Work is a row (``OutboundWork``) before it is a request, and every HTTP call leaves a
``SyncLog`` attempt row, written as "sending" before the request goes out and finished
after, so that a worker killed mid-call still leaves the call in the log (the dispatcher
marks it "interrupted" when it returns the work). django-q2 delivers at least once, so a worker claims
a row with a conditional update; the partial unique constraint "one in-flight row per
entity" means two workers can never push the same entity at once, so exactly one
external record is created. Retries follow ``RETRY_INTERVALS`` (kept in the row's
``not_before``, run by a scheduled dispatcher); permanent failures become dead letters.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import queue
import random
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django_q.brokers import Broker, get_broker

from portal.queue import enqueue
from portal.secrets import MissingSecret
from sync.clients.base import CallRecord, ExternalError, LearnedLink, PushContext, RecordedHttp
from sync.clients.generic_rest import GenericRestAdapter
from sync.clients.pretix import PretixAdapter
from sync.models import (
    EntityType,
    Event,
    ExternalLink,
    ExternalSystem,
    FieldMapping,
    LinkRepair,
    MirrorModel,
    OutboundWork,
    Policy,
    SyncLog,
    TicketDefinition,
    WixSite,
)
from sync.services.mapping import MappingError, MappingSpec, mapping_apply, payload_hash

log = logging.getLogger(__name__)

# Seconds to wait before retry n (the n-th entry); after the last one the work is a dead
# letter. About 3.5 hours in all: long enough to ride out a target's deploy or outage,
# short enough that staff hear of a real problem the same day. Jitter is added (±20%).
RETRY_INTERVALS: tuple[int, ...] = (5, 30, 120, 600, 1800, 3600, 7200)
# A row in flight longer than this had its worker killed (django-q2's timeout is shorter).
STUCK_AFTER = dt.timedelta(seconds=settings.Q_CLUSTER["timeout"] + 60)
# A drain stops after this long so that it ends well inside django-q2's timeout.
DRAIN_BUDGET_SECONDS = min(60, settings.Q_CLUSTER["timeout"] // 2)
DRAIN_TASK = "sync.tasks.push_drain_task"

MIRRORS: dict[str, type[MirrorModel]] = {
    EntityType.POLICY: Policy,
    EntityType.TICKET_DEFINITION: TicketDefinition,
    EntityType.EVENT: Event,
}
ADAPTERS: dict[str, Any] = {
    ExternalSystem.Kind.GENERIC_REST: GenericRestAdapter,
    ExternalSystem.Kind.PRETIX: PretixAdapter,
}


class PushOutcome:
    CREATED, UPDATED, DELETED, UNCHANGED, MISSING = "created", "updated", "deleted", "unchanged", "missing"
    RECREATED = "recreated"


def system_handles(system: ExternalSystem, entity_type: str, cache: PushCache | None = None) -> bool:
    """Whether pushes of this entity type go to this system (events only where it keeps them)."""
    adapter = (cache or PushCache()).adapter(system)
    handles = getattr(adapter, "handles", None)
    return handles(entity_type) if handles is not None else entity_type != EntityType.EVENT


# --- enqueue ------------------------------------------------------------------------------
def push_enqueue(
    *,
    site: WixSite,
    entity_type: str,
    wix_ids: Iterable[str],
    trigger: str,
    systems: Iterable[ExternalSystem] | None = None,
    drains: int = 1,
) -> int:
    """Create (or join) pending work per entity and active system; queue drains on commit."""
    systems = list(systems) if systems is not None else list(ExternalSystem.objects.filter(is_active=True))
    cache = PushCache()
    systems = [s for s in systems if system_handles(s, entity_type, cache)]
    ids = list(dict.fromkeys(wix_ids))
    created = 0
    for system in systems:
        existing = set(
            OutboundWork.objects.filter(
                system=system, entity_type=entity_type, wix_id__in=ids, status=OutboundWork.Status.PENDING
            ).values_list("wix_id", flat=True)
        )
        for wix_id in ids:
            if wix_id in existing:
                continue  # a pending row pushes the newest mirror state: join it
            try:
                with transaction.atomic():
                    OutboundWork.objects.create(
                        system=system, site=site, entity_type=entity_type, wix_id=wix_id, trigger=trigger
                    )
                created += 1
            except IntegrityError:
                pass  # created by someone else a moment ago: join it
    if created:
        _drains_start(min(drains, created))
    return created


@functools.lru_cache(maxsize=1)
def _broker() -> Broker:
    """One broker per process: each get_broker() opens a new connection (Redis)."""
    return get_broker()


def _drains_start(wanted: int) -> None:
    """Queue up to ``wanted`` drains, fewer if tasks already wait: a queued drain takes all due work."""
    try:
        waiting = _broker().queue_size() or 0
    except Exception:  # a broker that cannot count still takes tasks
        waiting = 0
    for _ in range(max(0, wanted - waiting)):
        enqueue(DRAIN_TASK)


# --- execute ------------------------------------------------------------------------------
def _row_save(row: SyncLog) -> None:
    row.save()


class _Recorder:
    """Each HTTP call of one push as a SyncLog row: "sending" before the request, finished
    by ``_complete``.

    ``write`` stores the "sending" row and returns only once it is committed. In a drain it
    is the drain's :class:`_Desk`, so that the sending thread never touches the database.
    """

    def __init__(self, work: OutboundWork, write: Callable[[SyncLog], None] = _row_save) -> None:
        self.work = work
        self.write = write
        self.rows: list[tuple[CallRecord, SyncLog]] = []

    def started(self, record: CallRecord) -> None:
        work = self.work
        row = SyncLog(
            work=work,
            system_id=work.system_id,
            entity_type=work.entity_type,
            wix_id=work.wix_id,
            trigger=work.trigger,
            action=record.action,
            request_excerpt=record.request,
            status=SyncLog.Status.SENDING,
        )
        self.write(row)
        self.rows.append((record, row))

    def finished(self, record: CallRecord) -> None:
        pass  # the record is completed in place; _complete writes it to its row


class _Desk:
    """Database writes a drain's sending thread asks for, done by the drain's own thread.

    Before each request the sending thread hands its "sending" row here and waits until the
    drain's thread, which holds the one database connection, has written it. The drain
    serves the desk whenever it waits for the sending thread, and first thing after handing
    it a push, so a request is held up by one INSERT, not by the drain's other work.
    """

    def __init__(self) -> None:
        self._asks: queue.SimpleQueue[tuple[SyncLog, Future[None]] | None] = queue.SimpleQueue()

    def write(self, row: SyncLog) -> None:
        """Sending thread: have ``row`` saved; raises what the save raised (nothing is sent then)."""
        done: Future[None] = Future()
        self._asks.put((row, done))
        done.result()

    def serve(self, until: Future[Any] | None = None, *, first: bool = False) -> None:
        """Drain's thread: write what was asked. With ``until``, keep serving until it is done
        (or, with ``first``, until one row is written)."""
        if until is not None:
            until.add_done_callback(lambda _: self._asks.put(None))  # wakes the wait below
        while True:
            if until is None or until.done():
                try:
                    item = self._asks.get_nowait()
                except queue.Empty:
                    return
            else:
                item = self._asks.get()
            if item is None:
                continue
            row, done = item
            try:
                row.save()
            except Exception as exc:  # the push fails with it (nothing is sent); the drain goes on
                done.set_exception(exc)
                continue
            done.set_result(None)
            if first:
                return


class PushCache:
    """What every push to a system needs (adapter, mappings), read once per drain.

    A drain lasts at most ``DRAIN_BUDGET_SECONDS``, so a mapping edited in the admin takes
    effect with the next drain; without a cache each push would read them again.
    """

    def __init__(self) -> None:
        self._specs: dict[tuple[int, str], list[MappingSpec]] = {}
        self._adapters: dict[int, Any] = {}

    def targets(self, system: ExternalSystem, entity_type: str) -> set[str]:
        return {spec.target_field.split(".")[0].split("[")[0] for spec in self.specs(system, entity_type)}

    def specs(self, system: ExternalSystem, entity_type: str) -> list[MappingSpec]:
        key = (system.pk, entity_type)
        if key not in self._specs:
            mappings = FieldMapping.objects.filter(system=system, entity_type=entity_type).order_by(
                "order", "pk"
            )
            self._specs[key] = [MappingSpec.of(m) for m in mappings]
        return self._specs[key]

    def adapter(self, system: ExternalSystem) -> Any:
        if system.pk not in self._adapters:
            self._adapters[system.pk] = ADAPTERS[system.kind](system)
        return self._adapters[system.pk]


def entity_payload(
    system: ExternalSystem, entity_type: str, raw: dict[str, Any], cache: PushCache | None = None
) -> dict[str, Any]:
    return mapping_apply((cache or PushCache()).specs(system, entity_type), raw)


@dataclass(frozen=True)
class PushDecision:
    """What a push of one entity to one system would do; shared by the push and the dry run."""

    action: str  # "create", "update", "delete", or a PushOutcome for "nothing to do"
    link: ExternalLink | None
    mirror: MirrorModel | None
    payload: dict[str, Any] | None = None
    digest: str = ""
    context: PushContext = field(default_factory=PushContext)

    @property
    def calls(self) -> bool:
        return self.action in ("create", "update", "delete")


def push_decide(
    *, system: ExternalSystem, site: WixSite, entity_type: str, wix_id: str, cache: PushCache | None = None
) -> PushDecision:
    """Raises MappingError when the mapping cannot build a payload for this entity."""
    cache = cache or PushCache()
    mirror = MIRRORS[entity_type].objects.filter(site=site, wix_id=wix_id).first()
    link = ExternalLink.objects.filter(system=system, entity_type=entity_type, wix_id=wix_id).first()
    if mirror is None:
        return PushDecision(PushOutcome.MISSING, link, mirror)
    payload: dict[str, Any] | None = None
    if mirror.is_deleted:
        if link is None or link.deleted_at is not None:
            return PushDecision(PushOutcome.UNCHANGED, link, mirror)
        action = "delete"
    else:
        payload = entity_payload(system, entity_type, mirror.raw, cache)
        action = "create" if link is None else "update"
    context = PushContext()
    plan = getattr(cache.adapter(system), "plan", None)
    if plan is not None:
        # The adapter completes the payload from related entities (pretix: the event, the
        # sibling policies), so the hash below covers what is really sent.
        payload, context = plan(
            entity_type=entity_type,
            mirror=mirror,
            payload=payload,
            payload_of=lambda et, m: entity_payload(system, et, m.raw, cache),
            targets_of=lambda et: cache.targets(system, et),
        )
    digest = payload_hash(payload) if payload is not None else ""
    unchanged = link is not None and (link.deleted_at is not None or link.last_payload_hash == digest)
    if action == "update" and unchanged:
        return PushDecision(PushOutcome.UNCHANGED, link, mirror, payload, digest, context)
    return PushDecision(action, link, mirror, payload, digest, context)


@dataclass
class _Job:
    """One claimed unit of work on its way through prepare → send → complete."""

    work: OutboundWork
    decision: PushDecision | None = None
    recorder: _Recorder = field(init=False)
    http: RecordedHttp | None = None
    external_id: str = ""
    error: BaseException | None = None
    write: Callable[[SyncLog], None] = _row_save

    def __post_init__(self) -> None:
        self.recorder = _Recorder(self.work, self.write)

    def scrub(self, text: str) -> str:
        """``text`` without the credentials this push sent (for errors stored on the work)."""
        return self.http.scrub(text) if self.http is not None else text


def _claim(work_id: int) -> OutboundWork | str:
    now = timezone.now()
    try:
        with transaction.atomic():
            claimed = (
                OutboundWork.objects.filter(pk=work_id, status=OutboundWork.Status.PENDING)
                .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
                .update(status=OutboundWork.Status.IN_FLIGHT, in_flight_since=now, attempts=F("attempts") + 1)
            )
    except IntegrityError:
        return "busy"  # another worker is pushing this entity; the row waits its turn
    if claimed != 1:
        return "not-claimed"
    return OutboundWork.objects.select_related("system", "site").get(pk=work_id)


def _prepare(job: _Job, cache: PushCache) -> None:
    """Database reads and mapping: what to send."""
    work = job.work
    try:
        cache.adapter(work.system)  # built here, so that sending needs no database
        job.decision = push_decide(
            system=work.system, site=work.site, entity_type=work.entity_type, wix_id=work.wix_id, cache=cache
        )
    except Exception as exc:
        job.error = exc


def _send(job: _Job, cache: PushCache) -> None:
    """HTTP only (no database): may run in a drain's sending thread."""
    work, decision = job.work, job.decision
    assert decision is not None
    adapter = cache.adapter(work.system)
    http = job.http = RecordedHttp(job.recorder, timeout=work.system.timeout)
    try:
        context = decision.context
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
            job.external_id = adapter.create(
                http,
                entity_type=work.entity_type,
                payload=decision.payload,
                idempotency_key=key,
                context=context,
            )
    except Exception as exc:
        job.error = exc


def _link_insert(work: OutboundWork, **fields: Any) -> bool:
    """Write a new link of this work's system and site; False if the entity or the record is
    already linked (the unique constraints decide, so racing pushes cannot both win)."""
    try:
        with transaction.atomic():
            ExternalLink.objects.create(system_id=work.system_id, site_id=work.site_id, **fields)
    except IntegrityError:
        return False
    return True


def _learned_store(work: OutboundWork, learned: LearnedLink) -> bool:
    """Store a link the adapter made or replaced on the way; True if it replaced this work's own."""
    now = timezone.now()
    link = ExternalLink.objects.filter(
        system_id=work.system_id, entity_type=learned.entity_type, wix_id=learned.wix_id
    ).first()
    if link is None:
        # Not written if another push linked it a moment ago (to the same record, found by its Wix id).
        _link_insert(
            work,
            entity_type=learned.entity_type,
            wix_id=learned.wix_id,
            external_id=learned.external_id,
            last_payload_hash=learned.payload_hash,
            last_payload=learned.payload if learned.payload_hash else None,
            last_pushed_at=now,
        )
        return False
    if link.external_id == learned.external_id or not learned.reason:
        return False
    # The record was deleted by hand and recreated: the one case a link's id changes
    # without staff, so it leaves the same audit row as a repair.
    LinkRepair.objects.create(
        link=link,
        old_external_id=link.external_id,
        new_external_id=learned.external_id,
        reason=learned.reason,
    )
    ExternalLink.objects.filter(pk=link.pk).update(
        external_id=learned.external_id,
        deleted_at=None,
        last_payload_hash="",
        last_payload=None,
        drift={},
        last_pushed_at=now,
    )
    log.warning("%s", learned.reason)
    return learned.entity_type == work.entity_type and learned.wix_id == work.wix_id


def _record_success(job: _Job) -> str:
    work, decision, now = job.work, job.decision, timezone.now()
    assert decision is not None and decision.mirror is not None
    replaced = False
    for learned in decision.context.learned:
        replaced |= _learned_store(work, learned)
    shared = decision.context.facts.get("shared_link_ids")
    if shared and decision.digest:
        # Entities sent together (pretix: an event's policies, one list) are all up to date.
        ExternalLink.objects.filter(pk__in=shared, deleted_at__isnull=True).update(
            last_payload_hash=decision.digest, last_payload=decision.payload, drift={}, last_pushed_at=now
        )
    try:
        return _record_links(job, replaced, now)
    finally:
        _facts_store(work, decision.context)


def _facts_store(work: OutboundWork, context: PushContext) -> None:
    """What the system decided for its records (pretix: an event's currency), kept on their links."""
    for (entity_type, wix_id), facts in context.learned_facts.items():
        link = ExternalLink.objects.filter(
            system_id=work.system_id, entity_type=entity_type, wix_id=wix_id
        ).first()
        if link is not None and {**link.external_facts, **facts} != link.external_facts:
            ExternalLink.objects.filter(pk=link.pk).update(external_facts={**link.external_facts, **facts})


def _record_links(job: _Job, replaced: bool, now: dt.datetime) -> str:
    work, decision = job.work, job.decision
    assert decision is not None and decision.mirror is not None
    if decision.action == "delete":
        ExternalLink.objects.filter(pk=decision.link.pk).update(deleted_at=now, last_pushed_at=now)  # type: ignore[union-attr]
        return PushOutcome.DELETED
    if decision.action == "update":
        # Only what was pushed changes; the external id is never overwritten here.
        ExternalLink.objects.filter(pk=decision.link.pk).update(  # type: ignore[union-attr]
            last_payload_hash=decision.digest,
            last_payload=decision.payload,
            drift={},  # what pretix has now is what was just sent
            last_pushed_revision=decision.mirror.revision,
            last_pushed_at=now,
        )
        return PushOutcome.RECREATED if replaced else PushOutcome.UPDATED
    pushed = {
        "last_payload_hash": decision.digest,
        "last_payload": decision.payload,
        "drift": {},
        "last_pushed_revision": decision.mirror.revision,
        "last_pushed_at": now,
    }
    entity = {"entity_type": work.entity_type, "wix_id": work.wix_id}
    if _link_insert(work, **entity, external_id=job.external_id, **pushed):
        return PushOutcome.CREATED
    same = ExternalLink.objects.filter(system_id=work.system_id, **entity)
    if same.filter(external_id=job.external_id).exists():
        # Another push linked the same record a moment ago (pretix finds records by Wix id).
        same.update(**pushed)
        return PushOutcome.UPDATED
    raise ExternalError(
        f"Created external record {job.external_id!r}, but that record or this Wix entity is "
        "already linked to another",
        permanent=True,
    )


def calls_store(*, work: OutboundWork, records: list[CallRecord]) -> None:
    """The HTTP calls made for a unit of work, as its SyncLog attempt rows."""
    SyncLog.objects.bulk_create(
        SyncLog(
            work=work,
            system_id=work.system_id,
            entity_type=work.entity_type,
            wix_id=work.wix_id,
            trigger=work.trigger,
            action=r.action,
            http_status=r.http_status,
            duration_ms=r.duration_ms,
            request_excerpt=r.request,
            response_excerpt=r.response,
            error=r.error,
            note=r.note,
            status=SyncLog.Status.SUCCESS
            if r.permanent is None
            else SyncLog.Status.PERMANENT
            if r.permanent
            else SyncLog.Status.RETRYABLE,
        )
        for r in records
    )


_ROW_FIELDS = ["status", "http_status", "duration_ms", "response_excerpt", "error", "note"]


def _rows_finish(job: _Job) -> None:
    """Fill each call's "sending" row with how it ended. A call that raised something other
    than a connection error or timeout never finished its record: it failed with the push's error."""
    rows = []
    for record, row in job.recorder.rows:
        row.http_status, row.duration_ms = record.http_status, record.duration_ms
        row.response_excerpt, row.note = record.response, record.note
        row.error = record.error
        if record.permanent is None and record.http_status is None:
            row.status = SyncLog.Status.PERMANENT
            row.error = job.scrub(f"{job.error.__class__.__name__}: {job.error}") if job.error else ""
        elif record.permanent is None:
            row.status = SyncLog.Status.SUCCESS
        else:
            row.status = SyncLog.Status.PERMANENT if record.permanent else SyncLog.Status.RETRYABLE
        rows.append(row)
    if rows:
        SyncLog.objects.bulk_update(rows, _ROW_FIELDS)


def _complete(job: _Job) -> str:
    """Database writes: the attempt rows, the link, and the work's new state."""
    work = job.work
    _rows_finish(job)
    try:
        if job.error is not None:
            raise job.error
        assert job.decision is not None
        outcome = _record_success(job) if job.decision.calls else job.decision.action
    except (MappingError, MissingSecret) as exc:
        return _finish(work, status=OutboundWork.Status.DEAD, error=f"{exc.__class__.__name__}: {exc}")
    except ExternalError as exc:
        delay = None if exc.permanent else _retry_delay(work.attempts)
        if delay is None:
            return _finish(
                work, status=OutboundWork.Status.DEAD, error=job.scrub(str(exc)), details=exc.details
            )
        OutboundWork.objects.filter(pk=work.pk).update(
            status=OutboundWork.Status.PENDING,
            in_flight_since=None,
            last_error=job.scrub(str(exc)),
            error_details=exc.details,
            not_before=timezone.now() + dt.timedelta(seconds=delay),
        )
        return "retry-scheduled"
    except Exception as exc:
        log.error("Push of work %s crashed", work.pk, exc_info=exc)
        error = job.scrub(f"{exc.__class__.__name__}: {exc}")
        return _finish(work, status=OutboundWork.Status.DEAD, error=error)
    result = _finish(work, status=OutboundWork.Status.DONE, outcome=outcome)
    _recheck(job)
    return result


def _recheck(job: _Job) -> None:
    """A payload built from sibling entities may have been stale when sent: if so, send it again.

    Two workers pushing sibling policies at once each send the list they read; the later
    answer can carry the older list. The list is read again once this push is recorded, and
    a difference queues a push of a sibling, which sends the list as it is now.
    """
    assert job.decision is not None
    work, siblings = job.work, job.decision.context.facts.get("recheck") or []
    for wix_id in siblings[:1]:
        fresh = push_decide(system=work.system, site=work.site, entity_type=work.entity_type, wix_id=wix_id)
        if fresh.calls:
            push_enqueue(
                site=work.site,
                entity_type=work.entity_type,
                wix_ids=[wix_id],
                trigger=work.trigger,
                systems=[work.system],
            )


def _retry_delay(attempts: int) -> float | None:
    if attempts > len(RETRY_INTERVALS):
        return None
    base = RETRY_INTERVALS[attempts - 1]
    return base * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security


def work_execute(*, work_id: int, cache: PushCache | None = None) -> str:
    """Claim one due pending row and push it. Returns the outcome for django-q2's list."""
    claimed = _claim(work_id)
    if isinstance(claimed, str):
        return claimed
    cache = cache or PushCache()
    job = _Job(claimed)
    _prepare(job, cache)
    if job.error is None and job.decision is not None and job.decision.calls:
        _send(job, cache)
    return _complete(job)


def _finish(
    work: OutboundWork, *, status: str, outcome: str = "", error: str = "", details: dict | None = None
) -> str:
    OutboundWork.objects.filter(pk=work.pk).update(
        status=status,
        outcome=outcome,
        last_error=error,
        error_details=details or {},
        in_flight_since=None,
        finished_at=timezone.now(),
    )
    return outcome or ("gave-up" if status == OutboundWork.Status.DEAD else status)


def _due() -> Q:
    return Q(status=OutboundWork.Status.PENDING) & (
        Q(not_before__isnull=True) | Q(not_before__lte=timezone.now())
    )


def push_drain(*, budget_seconds: float | None = None, batch: int = 50) -> str:
    """Push due work until none is left or the time budget is spent (then queue another).

    One request is in flight at a time, but the drain overlaps the database work around
    it: while a sending thread waits for the target's answer to push n, this thread
    records push n-1 and claims and prepares push n+1. Each push still goes claim →
    prepare → send → complete in order; only different entities overlap.
    """
    deadline = time.monotonic() + (budget_seconds or DRAIN_BUDGET_SECONDS)
    cache = PushCache()
    desk = _Desk()
    done = 0
    in_flight: tuple[_Job, Future[None]] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="push-send") as sender:

        def settle() -> None:
            nonlocal in_flight, done
            if in_flight is not None:
                job, future = in_flight
                desk.serve(until=future)
                future.result()
                in_flight = None
                _complete(job)
                done += 1

        try:
            while time.monotonic() < deadline:
                ids = list(
                    OutboundWork.objects.filter(_due())
                    .order_by("created_at")
                    .values_list("pk", flat=True)[:batch]
                )
                # Parallel drains start from different places, so they rarely collide on a claim.
                random.shuffle(ids)
                claimed_any = False
                for work_id in ids:
                    if time.monotonic() >= deadline:
                        break
                    claimed = _claim(work_id)
                    if isinstance(claimed, str):
                        continue
                    claimed_any = True
                    job = _Job(claimed, write=desk.write)
                    _prepare(job, cache)
                    desk.serve()  # rows the push in flight asked for meanwhile (several calls)
                    if job.error is not None or job.decision is None or not job.decision.calls:
                        _complete(job)
                        done += 1
                        continue
                    previous, in_flight = in_flight, None
                    if previous is not None:
                        desk.serve(until=previous[1])
                        previous[1].result()
                    in_flight = (job, sender.submit(_send, job, cache))
                    # Its first "sending" row, so the request goes out while we do the rest.
                    desk.serve(until=in_flight[1], first=True)
                    if previous is not None:
                        _complete(previous[0])  # while this job's request is out
                        done += 1
                if not claimed_any:
                    settle()
                    return f"drained {done}" if not ids else f"drained {done} (rest busy)"
        finally:
            settle()
    enqueue(DRAIN_TASK)
    return f"drained {done}, continuing"


INTERRUPTED_NOTE = (
    "The worker stopped during this call: the target may or may not have applied it. "
    "The work was returned to the queue and is pushed again; a create is safe to repeat (an "
    "Idempotency-Key, or pretix's look-up by Wix id)."
)


def push_dispatch() -> dict[str, int]:
    """Scheduled: return stuck work to the queue and start drains for due work."""
    now = timezone.now()
    returned = superseded = 0
    for work in OutboundWork.objects.filter(
        status=OutboundWork.Status.IN_FLIGHT, in_flight_since__lt=now - STUCK_AFTER
    ):
        # Its calls still "sending" never got an answer the worker lived to record.
        SyncLog.objects.filter(work=work, status=SyncLog.Status.SENDING).update(
            status=SyncLog.Status.INTERRUPTED, error=INTERRUPTED_NOTE
        )
        try:
            with transaction.atomic():
                returned += OutboundWork.objects.filter(
                    pk=work.pk, status=OutboundWork.Status.IN_FLIGHT
                ).update(
                    status=OutboundWork.Status.PENDING,
                    in_flight_since=None,
                    not_before=now,
                    last_error="returned to the queue: its worker stopped answering",
                )
        except IntegrityError:
            # A newer pending row for the entity exists and will push the latest state.
            superseded += OutboundWork.objects.filter(pk=work.pk).update(
                status=OutboundWork.Status.DONE, outcome="superseded", in_flight_since=None, finished_at=now
            )
    due = OutboundWork.objects.filter(_due()).count()
    drains = min(due, settings.Q_CLUSTER.get("workers", 1)) if due else 0
    if drains:
        _drains_start(drains)
    return {"returned": returned, "superseded": superseded, "due": due, "drains": drains}


def work_retry(*, work_ids: Iterable[int]) -> int:
    """Staff: run dead or waiting work again now, with a fresh retry schedule."""
    count = 0
    for work_id in work_ids:
        try:
            with transaction.atomic():
                count += OutboundWork.objects.filter(
                    pk=work_id, status__in=[OutboundWork.Status.DEAD, OutboundWork.Status.PENDING]
                ).update(status=OutboundWork.Status.PENDING, not_before=None, attempts=0, finished_at=None)
        except IntegrityError:
            # The entity already has pending work, which pushes its newest state anyway.
            OutboundWork.objects.filter(pk=work_id).update(outcome="superseded")
    if count:
        enqueue(DRAIN_TASK)
    return count


def work_retry_dead_since(*, since: dt.datetime) -> int:
    ids = OutboundWork.objects.filter(status=OutboundWork.Status.DEAD, updated_at__gte=since).values_list(
        "pk", flat=True
    )
    return work_retry(work_ids=list(ids))
