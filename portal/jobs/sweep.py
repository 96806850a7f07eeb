"""The one scheduled sweep over every kind of job, and the health counts the console shows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django_q.tasks import async_task

from portal.jobs.rows import due, release_stuck
from portal.models import Job
from portal.queue import broker


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
