"""django-q2 entry points: thin, each calls one service and returns a short outcome."""

from __future__ import annotations

from notifications.counters.velo import velo_push_drain
from notifications.services.campaigns import campaigns_sweep
from notifications.services.sending import campaigns_drain, notifications_drain


def campaigns_drain_task(woken_at: float | None = None) -> str:
    return f"released {campaigns_drain(woken_at=woken_at)}"


def notifications_drain_task(woken_at: float | None = None) -> str:
    return f"sent {notifications_drain(woken_at=woken_at)}"


def campaigns_sweep_task() -> str:
    changes = campaigns_sweep()
    return ", ".join(f"{k} {v}" for k, v in sorted(changes.items())) or "no change"


def counter_push_drain_task(woken_at: float | None = None) -> str:
    return f"pushed {velo_push_drain(woken_at=woken_at)}"
