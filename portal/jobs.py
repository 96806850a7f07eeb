"""The one job engine: claim, defer, due, release, retry and drain, for every kind of work.

Every unit of background work (a push, a webhook delivery, a backfill of one event, a
sale-start email, ...) is a row of a model built on :class:`portal.models.Job`. django-q2
only wakes workers up; what is due, who owns it and when it is tried again live in the
row, so they survive a restart and show in the admin (pretix's webhook retries, healthchecks'
``sendalerts``, Saleor's deliveries work the same way).

- **claim**: a worker takes a row with one conditional update (``WAITING`` → ``CLAIMED``,
  ``attempts + 1``); only one worker can win it, so django-q2 delivering a task twice, or
  two drains meeting on one row, does the work once. A drain looks due rows up a batch at a
  time and claims them one by one; a row another drain won is simply passed over.
- **defer**: a failure that may pass is tried again after the kind's :class:`RetrySchedule`
  (data, with jitter from one place); past its end the caller gives up (``DEAD``).
- **release_stuck**: a row claimed longer ago than its limit lost its worker (killed, or
  the machine went away) and waits again.
- **retry**: staff send dead (or stuck) rows round again, recording who and why.
- **drain**: a bounded loop claiming due rows one by one and handing each to the kind's
  handler until none is due or the time budget is spent.
- **wake**: new rows ask for a drain after their transaction commits. Wake-ups are
  coalesced per process (one per :data:`WAKE_WINDOW`), and a woken drain lingers until the
  window after its wake-up has passed, so a row whose wake-up was coalesced away is still
  seen by the drain the first one started: no row waits for the scheduled sweep.

This module imports no app: each kind passes its model and, where it needs them, extra
filters (say, "no other row of the same entity in flight").
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, connection, connections, router, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django_q.tasks import async_task

from portal.models import Job
from portal.queue import broker

J = TypeVar("J", bound=Job)

# Retries are spread by ±20%: rows that failed together (a target went down) do not all come
# back in the same second.
JITTER = 0.2


def jittered(seconds: float, spread: float = JITTER) -> float:
    """The one source of jitter for every retry and wait."""
    return seconds * random.uniform(1 - spread, 1 + spread)  # noqa: S311 - jitter, not security


@dataclass(frozen=True)
class RetrySchedule:
    """Seconds to wait before retry n (the n-th entry); after the last one, give up."""

    intervals: tuple[int, ...]

    def delay(self, attempts: int) -> float | None:
        """The wait after the ``attempts``-th failure, or None when the schedule is spent."""
        if attempts < 1 or attempts > len(self.intervals):
            return None
        return jittered(self.intervals[attempts - 1])

    @property
    def max_attempts(self) -> int:
        return len(self.intervals) + 1


def stuck_after_default() -> dt.timedelta:
    """A claim older than this has lost its worker (``JOBS_STUCK_AFTER_SECONDS``: django-q2's
    task timeout plus a minute, unless set)."""
    return dt.timedelta(seconds=settings.JOBS_STUCK_AFTER_SECONDS)


def due(model: type[Job], *, now: dt.datetime | None = None) -> Q:
    """Waiting rows whose time has come."""
    now = now or timezone.now()
    return Q(status=model.WAITING) & (Q(not_before__isnull=True) | Q(not_before__lte=now))


def claim(
    model: type[Job], pk: int, *, also: Q | None = None, now: dt.datetime | None = None, **fields: Any
) -> bool:
    """Take one row if it is due (and matches ``also``); True if this caller now owns it.

    A unique constraint that forbids two claimed rows of one entity makes a claim fail
    (False) rather than raise: the other worker has it, and this row waits its turn.
    """
    now = now or timezone.now()
    rows = model._default_manager.filter(due(model, now=now), pk=pk)
    if also is not None:
        # ``also`` goes in a subquery, never in this statement's own WHERE: a condition on a
        # related row (a paused system) would make Django write ``WHERE id IN (SELECT ...)``,
        # and PostgreSQL re-checks only the outer WHERE on the row version a concurrent claim
        # left, so two workers both "took" it. The status test stays on the updated row itself.
        rows = rows.filter(pk__in=model._default_manager.filter(also).values("pk"))
    changes = {"status": model.CLAIMED, "claimed_at": now, "attempts": F("attempts") + 1, **fields}
    try:
        if connection.in_atomic_block:
            with transaction.atomic():  # a savepoint: a refused claim must not break the caller's
                taken = rows.update(**changes)
        else:
            taken = rows.update(**changes)  # one statement commits on its own
    except IntegrityError:
        return False
    return taken == 1


def heartbeat(model: type[Job], pk: int) -> bool:
    """A long job says it is still at it, so that it is not released as stuck."""
    return bool(model._default_manager.filter(pk=pk, status=model.CLAIMED).update(claimed_at=timezone.now()))


def defer(
    model: type[Job],
    job: Job,
    *,
    error: str,
    schedule: RetrySchedule,
    at_least: float | None = None,
    **fields: Any,
) -> bool:
    """Hand a failed claimed row back to wait for its next try; False if the schedule is spent
    (the caller then gives up, usually with :func:`finish` and ``DEAD``).

    ``at_least``: a wait the peer asked for (``Retry-After``), honoured when it is longer.
    """
    delay = schedule.delay(job.attempts)
    if delay is None:
        return False
    if at_least is not None:
        delay = max(delay, at_least)
    return wait(model, job.pk, seconds=delay, error=error, **fields)


def wait(model: type[Job], pk: int, *, seconds: float, error: str = "", **fields: Any) -> bool:
    """Release a claimed row to be due again after ``seconds`` (the claim already counted the
    attempt)."""
    return bool(
        model._default_manager.filter(pk=pk, status=model.CLAIMED).update(
            status=model.WAITING,
            claimed_at=None,
            last_error=error,
            not_before=timezone.now() + dt.timedelta(seconds=seconds),
            **fields,
        )
    )


def finish(model: type[Job], pk: int, *, status: str, error: str = "", **fields: Any) -> bool:
    """Record the end of a claimed row: a final status (or ``DEAD`` with its error)."""
    return bool(
        model._default_manager.filter(pk=pk, status=model.CLAIMED).update(
            status=status, claimed_at=None, last_error=error, **fields
        )
    )


class ClaimedUpdate:
    """One UPDATE of chosen fields of a row this worker has claimed, for a loop that writes
    thousands of rows a second (the email drain): the statement is written once from the
    model's fields and run with each row's values. Building the query through the ORM cost
    twice the database's own work per row. Returns False where the row is no longer claimed."""

    def __init__(self, model: type[Job], *, fields: Sequence[str]) -> None:
        self.model = model
        self.names = tuple(fields)
        meta = model._meta
        self.fields = [meta.get_field(name) for name in self.names]
        self.db = router.db_for_write(model)
        quote = connections[self.db].ops.quote_name
        sets = ", ".join(f"{quote(str(getattr(field, 'column', '')))} = %s" for field in self.fields)
        status = quote(str(getattr(meta.get_field("status"), "column", "")))
        # Only the model's own table and column names go into the text; values are parameters.
        self.sql = (
            f"UPDATE {quote(meta.db_table)} SET {sets} "  # noqa: S608
            f"WHERE {quote(str(meta.pk.column))} = %s AND {status} = %s"
        )

    def __call__(self, pk: int, **values: Any) -> bool:
        """Set ``values`` (exactly the ``fields`` given at construction) on claimed row ``pk``."""
        if values.keys() != set(self.names):
            raise TypeError(f"expected values for {self.names}, got {sorted(values)}")
        connection_ = connections[self.db]
        params = [
            field.get_db_prep_save(values[name], connection_)  # type: ignore[union-attr]
            for name, field in zip(self.names, self.fields, strict=True)
        ]
        with connection_.cursor() as cursor:
            cursor.execute(self.sql, [*params, pk, self.model.CLAIMED])
            return cursor.rowcount == 1


def release_stuck(
    model: type[Job],
    *,
    older_than: dt.timedelta | None = None,
    on_conflict: Callable[[int], Any] | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Rows claimed longer ago than ``older_than`` lost their worker: they wait again, due now.

    ``on_conflict(pk)`` settles a row that cannot wait again because a newer row of the same
    entity already waits (a uniqueness constraint says so); without it such a row stays.
    """
    now = now or timezone.now()
    limit = now - (older_than or stuck_after_default())
    stuck = model._default_manager.filter(status=model.CLAIMED, claimed_at__lt=limit)
    released = _each_guarded(
        model,
        list(stuck.values_list("pk", flat=True)),
        Q(status=model.CLAIMED),
        {
            "status": model.WAITING,
            "claimed_at": None,
            "not_before": None,
            "last_error": "released: its worker stopped answering",
        },
        on_conflict,
    )
    return len(released)


def retry(
    model: type[Job],
    pks: Sequence[int],
    *,
    reason: str,
    by: Any = None,
    on_conflict: Callable[[int], Any] | None = None,
) -> list[int]:
    """Staff: send dead (or ``RETRYABLE``) rows round again now, with a fresh schedule.

    Returns the pks that will run again. ``by`` is the user who asked, if any.
    """
    user = by if getattr(by, "is_authenticated", False) else None
    changes = {
        "status": model.WAITING,
        "not_before": None,
        "claimed_at": None,
        "attempts": 0,
        "retried_by": user,
        "retry_reason": reason[:200],
    }
    return _each_guarded(model, pks, Q(status__in=(model.DEAD, *model.RETRYABLE)), changes, on_conflict)


def _each_guarded(
    model: type[Job],
    pks: Sequence[int],
    where: Q,
    changes: dict[str, Any],
    on_conflict: Callable[[int], Any] | None,
) -> list[int]:
    """Update each row still matching ``where`` on its own: a row that a uniqueness rule keeps
    from waiting again (a newer row of its entity waits) goes to ``on_conflict``, not the batch."""
    changed: list[int] = []
    for pk in pks:
        try:
            with transaction.atomic():
                if model._default_manager.filter(where, pk=pk).update(**changes):
                    changed.append(pk)
        except IntegrityError:
            if on_conflict is not None:
                on_conflict(pk)
    return changed


def claims(
    model: type[Job],
    *,
    budget_seconds: float,
    order_by: Sequence[str] = ("pk",),
    also: Q | None = None,
    limit: int | None = None,
    woken_at: float | None = None,
    batch: int = 20,
) -> Iterator[int]:
    """Claimed pks, one at a time, until nothing is due, ``limit`` is reached or the budget
    is spent. The caller must settle each pk it receives (finish, defer or wait).

    Due rows are looked up a batch at a time, in ``order_by`` order (give the kind an index
    that serves it: a partial index of its waiting rows), and each is taken with
    :func:`claim`; a row another drain took meanwhile is passed over. ``woken_at``: when the
    wake-up that started this drain was sent (wall clock); with nothing due, the drain polls
    on until :data:`WAKE_WINDOW` (and a margin for clocks of several machines) after it, for
    rows whose own wake-up was coalesced into this one.
    """
    deadline = time.monotonic() + budget_seconds
    linger_until = (woken_at + WAKE_WINDOW + WAKE_MARGIN) if woken_at is not None else 0.0
    taken = 0
    while time.monotonic() < deadline and (limit is None or taken < limit):
        rows = model._default_manager.filter(due(model))
        if also is not None:
            rows = rows.filter(also)
        candidates = list(rows.order_by(*order_by).values_list("pk", flat=True)[:batch])
        for pk in candidates:
            if time.monotonic() >= deadline or (limit is not None and taken >= limit):
                return
            if claim(model, pk, also=also):
                taken += 1
                yield pk
        if candidates:
            continue  # more may be due (or others took these): look again
        if time.time() >= linger_until:
            return
        time.sleep(LINGER_POLL)


def claim_batch(model: type[Job], pks: Sequence[int], *, now: dt.datetime | None = None) -> list[int]:
    """Take several due rows in one statement; returns the pks this caller now owns, in order.

    The rows share one ``claimed_at`` (the batch's mark): a kind whose worker works them in
    pk order can tell, after a crash, the one row it was at from those it never reached.
    """
    now = now or timezone.now()
    changes = {"status": model.CLAIMED, "claimed_at": now, "attempts": F("attempts") + 1}
    model._default_manager.filter(due(model, now=now), pk__in=pks).update(**changes)
    taken = model._default_manager.filter(pk__in=pks, status=model.CLAIMED, claimed_at=now)
    return sorted(taken.values_list("pk", flat=True))


def unclaim(model: type[Job], pks: Sequence[int]) -> int:
    """Hand claimed rows back untouched (never tried: their claim does not count as an attempt)."""
    return model._default_manager.filter(pk__in=pks, status=model.CLAIMED).update(
        status=model.WAITING, claimed_at=None, attempts=F("attempts") - 1
    )


def claimed_batches(
    model: type[Job],
    *,
    budget_seconds: float,
    order_by: Sequence[str] = ("pk",),
    woken_at: float | None = None,
    batch: int = 50,
) -> Iterator[list[int]]:
    """Like :func:`claims`, a batch at a time (:func:`claim_batch`): for kinds whose rows are
    cheap and many (emails), where one claim per row would cost as much as the work."""
    deadline = time.monotonic() + budget_seconds
    linger_until = (woken_at + WAKE_WINDOW + WAKE_MARGIN) if woken_at is not None else 0.0
    while time.monotonic() < deadline:
        candidates = list(
            model._default_manager.filter(due(model)).order_by(*order_by).values_list("pk", flat=True)[:batch]
        )
        if candidates:
            taken = claim_batch(model, candidates)
            if taken:
                yield taken
            continue
        if time.time() >= linger_until:
            return
        time.sleep(LINGER_POLL)


def drain(
    model: type[Job],
    handle: Callable[[int], Any],
    *,
    budget_seconds: float,
    order_by: Sequence[str] = ("pk",),
    also: Q | None = None,
    limit: int | None = None,
    woken_at: float | None = None,
) -> int:
    """Claim due rows one by one and hand each to ``handle`` (which settles it); returns how many."""
    done = 0
    for pk in claims(
        model, budget_seconds=budget_seconds, order_by=order_by, also=also, limit=limit, woken_at=woken_at
    ):
        handle(pk)
        done += 1
    return done


# --- waking drains up -----------------------------------------------------------------------
# A process sends at most one wake-up per drain task in this many seconds; the drain it starts
# polls until this long after it was sent, so what the skipped wake-ups announced is seen.
WAKE_WINDOW = 0.5
# Clocks of several machines differ a little; a drain lingers this much longer.
WAKE_MARGIN = 0.25
LINGER_POLL = 0.05
_last_wake: dict[str, float] = {}


def wake(task: str, *, drains: int = 1) -> None:
    """Once the current transaction commits, queue ``drains`` runs of ``task`` (a drain task
    taking the wake-up time), unless this process queued one within :data:`WAKE_WINDOW`."""

    def send() -> None:
        now = time.time()
        if now - _last_wake.get(task, 0.0) < WAKE_WINDOW:
            return
        _last_wake[task] = now
        for _ in range(drains):
            async_task(task, now, broker=broker())

    transaction.on_commit(send)


def wake_now(task: str) -> None:
    """Queue one more run of a drain task at once (a drain whose budget ran out hands over)."""
    transaction.on_commit(lambda: async_task(task, broker=broker()))


def wakes_forget() -> None:
    """Forget the wake-ups this process sent (tests, and a process that forked)."""
    _last_wake.clear()


# --- the one scheduled sweep ----------------------------------------------------------------
@dataclass(frozen=True)
class JobKind:
    """A kind of job as the sweep sees it: its rows, the drain task that works them, and how
    rows whose worker died are released (by default :func:`release_stuck`)."""

    model: type[Job]
    drain_task: str
    release: Callable[[], int] | None = None
    drains: int = 1


_KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> None:
    """Each app registers its kinds of job when it is ready (this module imports no app)."""
    _KINDS[kind.model._meta.label] = kind


def kinds() -> list[JobKind]:
    return list(_KINDS.values())


def dispatch() -> dict[str, dict[str, int]]:
    """Scheduled every minute: release what lost its worker, and wake drains where rows are
    due (retries whose time has come, or rows whose wake-up was lost with a broker)."""
    report: dict[str, dict[str, int]] = {}
    for kind in _KINDS.values():
        released = kind.release() if kind.release is not None else release_stuck(kind.model)
        waiting = kind.model._default_manager.filter(due(kind.model)).count()
        for _ in range(min(waiting, kind.drains)):
            async_task(kind.drain_task, broker=broker())
        report[kind.model._meta.label] = {"released": released, "due": waiting}
    return report


# How late a due row may be before the health check calls it overdue: past this, no worker is
# taking work (the cluster is down, or far behind).
OVERDUE_AFTER = dt.timedelta(minutes=5)


def dead_latest(model: type[Job], *, by: Sequence[str]) -> int:
    """How many groups (rows sharing the fields ``by``: one entity, one counter) have a dead row
    that no later row of the group has superseded with anything but another failure: the
    things whose latest attempt gave up and are still wrong now."""
    later = model._default_manager.filter(pk__gt=OuterRef("pk"), **{f: OuterRef(f) for f in by}).exclude(
        status=model.DEAD
    )
    dead = model._default_manager.filter(status=model.DEAD).exclude(Exists(later))
    return dead.values(*by).distinct().count()


def overdue(model: type[Job], *, now: dt.datetime | None = None) -> int:
    """Rows that have been due for longer than :data:`OVERDUE_AFTER` and nobody took."""
    limit = (now or timezone.now()) - OVERDUE_AFTER
    waiting = model._default_manager.filter(status=model.WAITING)
    return waiting.filter(Q(not_before__lt=limit) | Q(not_before__isnull=True, created_at__lt=limit)).count()
