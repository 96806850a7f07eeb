"""django-q2 entry points: thin, take primary keys, call one service, return an outcome."""

from __future__ import annotations

from sync.services.backfill import backfill_execute, backfill_sweep


def backfill_run_task(run_id: int) -> str:
    return backfill_execute(run_id=run_id)


def backfill_sweep_task() -> str:
    counts = backfill_sweep()
    return f"died={counts['died']} requeued={counts['requeued']}"
