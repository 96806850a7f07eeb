"""The only way code queues work.

Work is queued after the surrounding transaction commits: a task that starts before
its row is committed would not find the row (or would act on a row that is then rolled
back).
"""

from __future__ import annotations

import os
from typing import Any

from django.db import transaction
from django_q.brokers import Broker, get_broker
from django_q.tasks import async_task

_BROKER: tuple[int, Broker] | None = None


def broker() -> Broker:
    """One broker per process: django-q2 opens a new one (a new Redis connection) per task
    unless it is given one. A forked child makes its own rather than share the socket."""
    global _BROKER
    if _BROKER is None or _BROKER[0] != os.getpid():
        _BROKER = (os.getpid(), get_broker())
    return _BROKER[1]


def enqueue(func: str, *args: Any, group: str | None = None, **kwargs: Any) -> None:
    options: dict[str, Any] = {"broker": broker()}
    if group:
        options["group"] = group

    def _send() -> None:
        async_task(func, *args, **options, **kwargs)

    transaction.on_commit(_send)
