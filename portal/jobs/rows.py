"""One job row's life: due, claimed (one row, or a chosen update of a claimed row), deferred
on a retry schedule, finished, released when its worker died, retried by staff."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, connections, router, transaction
from django.db.models import F, Q
from django.utils import timezone

from portal.models import Job

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
    twice the database's own work per row. Returns False where the row is no longer claimed,
    or (given the claim's ``claimed_at``) no longer by this claim: it was released as stuck and
    another worker took it."""

    def __init__(self, model: type[Job], *, fields: Sequence[str]) -> None:
        self.model = model
        self.names = tuple(fields)
        meta = model._meta
        self.fields = [meta.get_field(name) for name in self.names]
        self.claimed_at = meta.get_field("claimed_at")
        self.db = router.db_for_write(model)
        quote = connections[self.db].ops.quote_name

        def column(name: str) -> str:
            return quote(str(getattr(meta.get_field(name), "column", "")))

        sets = ", ".join(f"{column(name)} = %s" for name in self.names)
        # Only the model's own table and column names go into the text; values are parameters.
        self.sql = (
            f"UPDATE {quote(meta.db_table)} SET {sets} "  # noqa: S608
            f"WHERE {quote(str(meta.pk.column))} = %s AND {column('status')} = %s"
        )
        self.sql_of_claim = f"{self.sql} AND {column('claimed_at')} = %s"

    def __call__(self, pk: int, *, claim: dt.datetime | None = None, **values: Any) -> bool:
        """Set ``values`` (exactly the ``fields`` given at construction) on claimed row ``pk``
        (claimed at ``claim``, when given)."""
        if values.keys() != set(self.names):
            raise TypeError(f"expected values for {self.names}, got {sorted(values)}")
        connection_ = connections[self.db]
        params = [
            field.get_db_prep_save(values[name], connection_)  # type: ignore[union-attr]
            for name, field in zip(self.names, self.fields, strict=True)
        ]
        params += [pk, self.model.CLAIMED]
        if claim is not None:
            params.append(self.claimed_at.get_db_prep_value(claim, connection_))
        with connection_.cursor() as cursor:
            cursor.execute(self.sql if claim is None else self.sql_of_claim, params)
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
