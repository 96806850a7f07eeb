"""Thin django-q2 tasks of the notifications app (each calls one service)."""

from __future__ import annotations

from notifications.counters.velo import velo_push_drain


def counter_push_drain_task(woken_at: float | None = None) -> str:
    return f"pushed {velo_push_drain(woken_at=woken_at)}"
