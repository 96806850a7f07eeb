"""Who did what to which object: the admin's own history (``LogEntry``), for actions too.

Edits made in the admin (a mapping, a link, a system, a counter) are recorded by Django
itself, field by field. Actions are not: starting a backfill, a resync, a replay, a retry, a
resume, a campaign. Their services' callers record them here, so each object's *History* page
in the admin says who did what and when, whether it came from the admin or the API.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.db.models import Model


def audit(user: Any, objects: Model | Iterable[Model], message: str) -> None:
    """Record ``message`` in the history of each object, as done by ``user`` (nobody: no entry)."""
    if not getattr(user, "is_authenticated", False):
        return
    targets = [objects] if isinstance(objects, Model) else list(objects)
    if targets:
        LogEntry.objects.log_actions(user.pk, targets, CHANGE, message)
