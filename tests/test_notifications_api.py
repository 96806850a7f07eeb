"""``/api/campaigns/``: list, send now and cancel, with the admin's permissions."""

from __future__ import annotations

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User

from notifications.models import SaleStartCampaign
from sync.models import WixSite
from tests.conftest import client_for
from tests.notify_helpers import BEFORE, event_mirror, td_mirror

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(site: WixSite) -> SaleStartCampaign:
    with time_machine.travel(BEFORE, tick=False):
        event_mirror(site)
        td_mirror(site)
    return SaleStartCampaign.objects.get()


def test_viewers_list_campaigns_but_only_operators_send_or_cancel(
    campaign: SaleStartCampaign, viewer: User, operator: User, staff: User
) -> None:
    assert client_for(None).get("/api/campaigns/").status_code in (401, 403)
    assert client_for(staff).get("/api/campaigns/").status_code == 403
    listed = client_for(viewer).get("/api/campaigns/?status=scheduled").json()
    assert listed["count"] == 1 and listed["results"][0]["event_title"] == "Spring Gala"
    assert client_for(viewer).post(f"/api/campaigns/{campaign.pk}/cancel/").status_code == 403
    assert client_for(viewer).post(f"/api/campaigns/{campaign.pk}/send_now/").status_code == 403
    sent = client_for(operator).post(f"/api/campaigns/{campaign.pk}/send_now/").json()
    assert sent["queued"] is True and sent["status"] == "scheduled"
    cancelled = (
        client_for(operator)
        .post(
            f"/api/campaigns/{campaign.pk}/cancel/",
            {"reason": "event moved"},
            content_type="application/json",
        )
        .json()
    )
    assert (cancelled["cancelled"], cancelled["status"], cancelled["cancelled_reason"]) == (
        True,
        "cancelled",
        "staff: event moved",
    )
    assert list(LogEntry.objects.values_list("change_message", flat=True).order_by("pk")) == [
        "Send now.",
        "Cancelled (event moved).",
    ]
    again = (
        client_for(operator)
        .post(f"/api/campaigns/{campaign.pk}/cancel/", {}, content_type="application/json")
        .json()
    )
    assert again["cancelled"] is False
