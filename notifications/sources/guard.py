"""What the Mailchimp and REST sources share: client errors in the interface's terms, and the
report a connection test gives staff."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from notifications.clients.base import SourceClientError
from notifications.sources.base import SourceBlocked, SourceError

T = TypeVar("T")


def source_guarded(label: str, read: Callable[[], T]) -> T:
    """Run ``read``; a permanent client error (401, 403, another 4xx, a wrong setting) becomes
    :class:`SourceBlocked` (staff must act), any other :class:`SourceError` (retry later).
    The message names the source and keeps the peer's own words."""
    try:
        return read()
    except SourceClientError as exc:
        text = str(exc)
        if not text.startswith(label):
            text = f"{label}: {text}"
        if exc.permanent:
            raise SourceBlocked(text) from exc
        raise SourceError(text) from exc


@dataclass
class ConnectionReport:
    """What "Test connection" shows: ``ok`` False with the reason, or what was found."""

    ok: bool
    lines: list[str] = field(default_factory=list)
