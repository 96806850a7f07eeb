"""The console panel "Counters and freshness" (``portal.dashboard``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from portal.dashboard import Panel, register


def _counters(request: HttpRequest) -> dict[str, Any] | None:
    if not request.user.has_perm("notifications.view_ticketcounter"):
        return None
    from notifications.counters.selectors import freshness_rows

    return {"rows": freshness_rows()}


register(
    Panel(
        "counters", "Counters and freshness", "admin/notifications/console/counters.html", _counters, order=60
    )
)
