"""The console's "Upcoming sale-start emails" panel."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from notifications.models import SaleStartCampaign
from notifications.services.preview import campaign_estimate
from portal.dashboard import Panel, register

PANEL_ROWS = 8


def _upcoming(request: HttpRequest) -> dict[str, Any] | None:
    if not request.user.has_perm("notifications.view_salestartcampaign"):
        return None
    rows = list(
        SaleStartCampaign.objects.filter(status__in=SaleStartCampaign.OPEN)
        .select_related("site", "event")
        .order_by("sale_start")[:PANEL_ROWS]
    )
    return {"campaigns": [(c, campaign_estimate(c)) for c in rows], "now": timezone.now()}


# Registered when the admin loads this package, as the model admins are.
register(
    Panel(
        "campaigns",
        "Upcoming sale-start emails",
        "admin/notifications/console/campaigns.html",
        _upcoming,
        order=40,
    )
)
