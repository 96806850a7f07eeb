"""The sync panels of the console's home page (``portal.dashboard``): sites, systems, backfills.

Each panel reads its figures from :mod:`sync.selectors.console` and is shown to staff who may
view the rows it summarises.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from portal.dashboard import Panel, register
from sync.selectors.console import backfills_running, site_figures, system_figures


def _sites(request: HttpRequest) -> dict[str, Any] | None:
    if not request.user.has_perm("sync.view_wixsite"):
        return None
    return {"sites": site_figures(), "now": timezone.now()}


def _systems(request: HttpRequest) -> dict[str, Any] | None:
    if not request.user.has_perm("sync.view_externalsystem"):
        return None
    return {"systems": system_figures()}


def _backfills(request: HttpRequest) -> dict[str, Any] | None:
    if not request.user.has_perm("sync.view_backfillrun"):
        return None
    return {"running": backfills_running()}


# Registered when the admin loads this package, as the model admins are.
register(Panel("sites", "Wix sites", "admin/sync/console/sites.html", _sites, order=10))
register(Panel("systems", "External systems", "admin/sync/console/systems.html", _systems, order=20))
register(
    Panel("backfills", "Backfills", "admin/sync/console/backfills.html", _backfills, order=30, wide=False)
)
