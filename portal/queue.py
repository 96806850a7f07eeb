"""The only way code queues work.

Work is queued after the surrounding transaction commits: a task that starts before
its row is committed would not find the row (or would act on a row that is then rolled
back).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django_q.tasks import async_task


def enqueue(func: str, *args: Any, group: str | None = None, **kwargs: Any) -> None:
    options: dict[str, Any] = {}
    if group:
        options["group"] = group

    def _send() -> None:
        async_task(func, *args, **options, **kwargs)

    transaction.on_commit(_send)
