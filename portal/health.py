"""What is broken now: one list of problems, for the health check, the metrics and the dashboard.

Each app registers checks when it is ready (this module imports no app). A check answers the
problems it sees, each with how many rows it concerns and where in the admin they are listed,
so that the dashboard's banner, ``/healthz`` and ``/metrics`` always agree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    key: str  # stable, for metrics and tests: "dead_letters"
    count: int
    summary: str  # for staff: "3 dead letters"
    url: str = ""  # the admin list that explains it


Check = Callable[[], list[Problem]]
_CHECKS: list[Check] = []


def register(check: Check) -> None:
    if check not in _CHECKS:
        _CHECKS.append(check)


def problems() -> list[Problem]:
    """Every problem the registered checks see now (a check that fails is a problem too)."""
    found: list[Problem] = []
    for check in _CHECKS:
        try:
            found += [p for p in check() if p.count]
        except Exception as exc:
            log.exception("Health check %s failed", getattr(check, "__name__", check))
            found.append(Problem("check_failed", 1, f"A health check failed: {exc.__class__.__name__}"))
    return found
