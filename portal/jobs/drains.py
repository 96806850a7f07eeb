"""Drains: claimed rows one at a time or a batch at a time until nothing is due or the time
budget is spent, and the wake-ups that start them (coalesced per process)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_q.tasks import async_task

from portal.jobs.rows import claim, due
from portal.models import Job
from portal.queue import broker


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
