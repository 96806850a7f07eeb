from __future__ import annotations

import copy

import pytest
import responses

from sync.models import OutboundWork, Policy, TicketDefinition, WixSite
from sync.services.mirrors import (
    event_upsert_from_wix,
    policy_upsert_from_wix,
    ticket_definition_upsert_from_wix,
)
from sync.services.reconcile import reconcile_site
from tests.conftest import WIX, rest_target, wix_payload

pytestmark = pytest.mark.django_db
EVENT = wix_payload("event__query")["events"][0]
POLICY = wix_payload("policy__get")["policy"]
TD = wix_payload("ticket_definition__fixed_price")["ticketDefinition"]


@responses.activate
def test_reconciliation_heals_missed_updates_creates_and_deletions_and_pushes_them(site: WixSite) -> None:
    rest_target(mappings=())
    event_upsert_from_wix(site=site, data=EVENT)
    policy_upsert_from_wix(site=site, data=POLICY)  # Wix has a newer revision: a missed update
    gone = {**copy.deepcopy(TD), "id": "td-deleted-on-wix"}
    ticket_definition_upsert_from_wix(site=site, data=gone)  # Wix no longer has it: a missed deletion
    newer = {**POLICY, "revision": "3", "name": "Refunds (new)"}
    renamed = {**EVENT, "title": "Spring Gala (moved)", "updatedDate": "2026-03-01T10:00:00.000Z"}
    responses.get(f"{WIX}/events/v3/events/{EVENT['id']}", json={"event": renamed})
    responses.post(f"{WIX}/events/v2/policies/query", json={"policies": [newer], "metadata": {"total": 1}})
    responses.post(
        f"{WIX}/events/v3/ticket-definitions/query",  # TD: a missed create
        json={"ticketDefinitions": [TD], "metadata": {"total": 1}},
    )

    run = reconcile_site(site=site)
    assert run.status == "succeeded"
    assert sorted((h["wix_id"], h["healed"]) for h in run.healed) == sorted(
        [
            (POLICY["id"], "missed updated"),
            (EVENT["id"], "missed updated"),
            (TD["id"], "missed created"),
            ("td-deleted-on-wix", "missed deletion"),
        ]
    )
    assert Policy.objects.get().name == "Refunds (new)"
    assert TicketDefinition.objects.get(wix_id="td-deleted-on-wix").is_deleted
    queued = set(OutboundWork.objects.values_list("wix_id", "trigger"))
    assert queued == {
        (POLICY["id"], "reconcile"),
        (TD["id"], "reconcile"),
        ("td-deleted-on-wix", "reconcile"),
    }

    again = reconcile_site(site=site)
    assert again.healed == [] and again.status == "succeeded"


@responses.activate
def test_reconciliation_records_wix_errors_per_event(site: WixSite) -> None:
    event_upsert_from_wix(site=site, data=EVENT)
    responses.get(f"{WIX}/events/v3/events/{EVENT['id']}", json={"event": EVENT})
    responses.post(f"{WIX}/events/v2/policies/query", status=403, json={"message": "no permission"})
    run = reconcile_site(site=site)
    assert run.status == "partial"  # finished, with errors
    assert run.errors == [{"event": EVENT["id"], "error": "HTTP 403: no permission"}]


@responses.activate
def test_reconciliation_heals_a_missed_event_deletion_for_systems_that_keep_events(
    site: WixSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sync.models import ExternalLink
    from sync.services.pretix import pretix_system_ensure

    monkeypatch.setenv("EXTERNAL_PRETIX_TOKEN", "tok")
    pretix = pretix_system_ensure(
        url="https://pretix.test", organizer="demo", token_env="EXTERNAL_PRETIX_TOKEN"
    )
    event_upsert_from_wix(site=site, data=EVENT)
    ExternalLink.objects.create(
        system=pretix, site=site, entity_type="event", wix_id=EVENT["id"], external_id="gala"
    )
    responses.get(f"{WIX}/events/v3/events/{EVENT['id']}", status=404, json={"message": "Event not found"})
    run = reconcile_site(site=site)
    assert run.healed == [{"entity_type": "event", "wix_id": EVENT["id"], "healed": "missed deletion"}]
    work = OutboundWork.objects.get()
    assert (work.system, work.entity_type, work.trigger) == (pretix, "event", "reconcile")
