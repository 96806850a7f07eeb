"""django-q2 entry points: thin, take primary keys, call one service, return an outcome."""

from __future__ import annotations

from sync.services.backfill import backfill_execute, backfill_sweep
from sync.services.push import push_dispatch, push_drain


def backfill_run_task(run_id: int) -> str:
    return backfill_execute(run_id=run_id)


def backfill_sweep_task() -> str:
    counts = backfill_sweep()
    return f"died={counts['died']} requeued={counts['requeued']}"


def push_drain_task() -> str:
    return push_drain()


def push_dispatch_task() -> str:
    counts = push_dispatch()
    return " ".join(f"{key}={value}" for key, value in counts.items())
