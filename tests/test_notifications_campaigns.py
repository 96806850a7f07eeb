"""Campaigns planned from the mirrors, with time travel: scheduled, shared, moved, cancelled."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from notifications.models import SaleStartCampaign
from notifications.services.campaigns import campaign_cancel, campaign_send_now, campaigns_sweep
from sync.models import WixSite
from sync.services.mirrors import ticket_definition_delete_from_wix
from tests.notify_helpers import BEFORE, EVENT_ID, START, event_mirror, td_mirror

pytestmark = pytest.mark.django_db
TD2 = "c0c0c0c0-0000-4000-8000-000000000002"


@pytest.fixture
def before() -> time_machine.Coordinates:
    with time_machine.travel(BEFORE, tick=False) as traveller:
        yield traveller


def test_a_future_sale_start_schedules_one_campaign_that_definitions_starting_together_share(
    site: WixSite, before: time_machine.Coordinates
) -> None:
    event_mirror(site)
    td_mirror(site)
    td_mirror(site, TD2, name="VIP")
    campaign = SaleStartCampaign.objects.get()
    assert (campaign.status, campaign.sale_start, campaign.not_before) == ("scheduled", START, START)
    assert len(campaign.ticket_definition_wix_ids) == 2
    assert campaign.event is not None and campaign.event.title == "Spring Gala"


def test_a_moved_start_reschedules_and_a_split_makes_a_second_campaign(
    site: WixSite, before: time_machine.Coordinates
) -> None:
    event_mirror(site)
    td_mirror(site)
    later = START + dt.timedelta(days=2)
    td_mirror(site, start=later, revision=5)
    campaign = SaleStartCampaign.objects.get()
    assert (campaign.sale_start, campaign.not_before, campaign.status) == (later, later, "scheduled")
    td_mirror(site, TD2, start=START)
    assert sorted(SaleStartCampaign.objects.values_list("sale_start", flat=True)) == [START, later]


def test_deleted_hidden_or_ended_definitions_cancel_their_campaign(
    site: WixSite, before: time_machine.Coordinates
) -> None:
    event_mirror(site)
    td_mirror(site)
    td_mirror(site, TD2)
    ticket_definition_delete_from_wix(site=site, wix_id=TD2, event_wix_id=EVENT_ID)
    campaign = SaleStartCampaign.objects.get()
    assert campaign.status == "scheduled" and len(campaign.ticket_definition_wix_ids) == 1
    td_mirror(site, hidden=True, revision=6)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.cancelled_reason[:20]) == ("cancelled", "its ticket definitio")
    # Visible again: a fresh campaign (the cancelled one stays as it was).
    td_mirror(site, hidden=False, revision=7)
    assert SaleStartCampaign.objects.filter(status="scheduled").count() == 1
    # A canceled event cancels its campaigns.
    event_mirror(site, status="CANCELED", updatedDate="2026-02-22T10:00:00.000Z")
    assert not SaleStartCampaign.objects.filter(status="scheduled").exists()


def test_a_sale_start_in_the_past_schedules_nothing(site: WixSite) -> None:
    with time_machine.travel(START + dt.timedelta(hours=1), tick=False):
        event_mirror(site)
        td_mirror(site)
    assert not SaleStartCampaign.objects.exists()


def test_the_sweep_catches_what_a_signal_missed_and_is_idempotent(
    site: WixSite, before: time_machine.Coordinates
) -> None:
    from sync.services.mirrors import mirror_changed

    receivers = mirror_changed.receivers
    mirror_changed.receivers = []
    try:
        event_mirror(site)
        td_mirror(site)
    finally:
        mirror_changed.receivers = receivers
        mirror_changed.sender_receivers_cache.clear()
    assert not SaleStartCampaign.objects.exists()
    assert campaigns_sweep() == {"created": 1}
    assert campaigns_sweep() == {}
    # Time passes to a day before the start: still scheduled, nothing changes.
    before.move_to(START - dt.timedelta(days=1))
    assert campaigns_sweep() == {}


def test_staff_send_now_and_cancel_are_audited(
    site: WixSite, before: time_machine.Coordinates, admin_user
) -> None:
    from django.contrib.admin.models import LogEntry

    event_mirror(site)
    td_mirror(site)
    campaign = SaleStartCampaign.objects.get()
    assert campaign_send_now(campaign_ids=[campaign.pk], by=admin_user) == 1
    campaign.refresh_from_db()
    assert (campaign.not_before, campaign.retry_reason) == (None, "staff: send now")
    assert campaign_cancel(campaign_ids=[campaign.pk], by=admin_user) == 1
    assert SaleStartCampaign.objects.get().status == "cancelled"
    # The planner does not bring back what staff cancelled (the sweep, a later change).
    assert campaigns_sweep() == {}
    td_mirror(site, revision=9, name="GA")
    assert list(SaleStartCampaign.objects.values_list("status", flat=True)) == ["cancelled"]
    # A moved start is a new sale start: it is announced.
    td_mirror(site, start=START + dt.timedelta(days=1), revision=10)
    assert SaleStartCampaign.objects.filter(status="scheduled").count() == 1
    assert list(LogEntry.objects.values_list("change_message", flat=True).order_by("pk")) == [
        "Send now.",
        "Cancelled (cancelled by staff).",
    ]
