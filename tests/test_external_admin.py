from __future__ import annotations

import pytest
import responses
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from sync.models import (
    EntityType,
    Event,
    ExternalLink,
    ExternalSystem,
    FieldMapping,
    LinkRepair,
    OutboundWork,
    SyncLog,
    TicketDefinition,
)
from sync.sandbox.demo import demo_id
from sync.services.mirrors import (
    ticket_definition_upsert_from_wix,
)
from tests.admin_forms import add_inline_row, change_form_data
from tests.conftest import sandbox_mirrored

pytestmark = pytest.mark.django_db


@pytest.fixture
def mirrored() -> ExternalSystem:
    """The sandbox site mirrored (without HTTP) and the sandbox ticketing system with its default mapping."""
    sandbox_mirrored()
    return ExternalSystem.objects.get(name="Sandbox ticketing")


def _change_page(client: Client, system: ExternalSystem) -> tuple[str, dict]:
    url = reverse("admin:sync_externalsystem_change", args=[system.pk])
    response = client.get(url)
    assert response.status_code == 200
    return url, change_form_data(response)


def test_a_mapping_that_cannot_work_is_refused_on_save(
    admin_client: Client, mirrored: ExternalSystem
) -> None:
    url, data = _change_page(admin_client, mirrored)
    data = add_inline_row(
        data,
        "mappings",
        {
            "entity_type": "ticket_definition",
            "order": "20",
            "source_path": "pricingMethod.fixedPrize.value",
            "transform": "decimal",
            "target_field": "list_price",
        },
    )
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "Wix has no field &#x27;pricingMethod.fixedPrize.value&#x27;" in response.content.decode()
    assert not FieldMapping.objects.filter(target_field="list_price").exists()

    data[f"mappings-{int(data['mappings-TOTAL_FORMS']) - 1}-source_path"] = "name"
    response = admin_client.post(url, data)
    assert "Decimal (from Wix&#x27;s money string) cannot apply to name" in response.content.decode()

    data[f"mappings-{int(data['mappings-TOTAL_FORMS']) - 1}-source_path"] = "pricingMethod.fixedPrice.value"
    assert admin_client.post(url, data).status_code == 302
    assert FieldMapping.objects.get(target_field="list_price").transform == "decimal"


def test_the_preview_applies_unsaved_mappings_to_a_mirrored_entity(
    admin_client: Client, mirrored: ExternalSystem
) -> None:
    _, data = _change_page(admin_client, mirrored)
    data = add_inline_row(
        data,
        "mappings",
        {
            "entity_type": "ticket_definition",
            "order": "30",
            "source_path": "",
            "transform": "template",
            "argument": "{name} at {pricingMethod.fixedPrice.value}",
            "target_field": "label",
        },
    )
    td = TicketDefinition.objects.get(wix_id=demo_id("td:spring-gala:ga"))
    data["preview_entity"] = f"ticket_definition:{td.pk}"
    response = admin_client.post(reverse("admin:sync_externalsystem_preview", args=[mirrored.pk]), data)
    assert response.status_code == 200, response.content
    payload = response.json()["payload"]
    assert payload["label"] == "General Admission at 25.00"
    assert (payload["name"], payload["price"], payload["capacity"], payload["active"]) == (
        "General Admission",
        "25.00",
        200,
        True,
    )
    assert not FieldMapping.objects.filter(target_field="label").exists()  # nothing was saved

    data[f"mappings-{int(data['mappings-TOTAL_FORMS']) - 1}-argument"] = "{nmae}"
    bad = admin_client.post(reverse("admin:sync_externalsystem_preview", args=[mirrored.pk]), data)
    assert bad.status_code == 400 and "Unknown Wix field(s)" in bad.json()["errors"][0]


def test_the_system_page_offers_mirrored_entities_for_the_preview(
    admin_client: Client, mirrored: ExternalSystem
) -> None:
    page = admin_client.get(reverse("admin:sync_externalsystem_change", args=[mirrored.pk])).content.decode()
    assert "Ticket definition: General Admission" in page and 'id="preview-button"' in page
    assert "sandbox-ticketing-token" not in page


def test_a_dry_run_lists_what_a_resync_would_do_without_calls(
    admin_client: Client,
    mirrored: ExternalSystem,
) -> None:
    event = Event.objects.get(wix_id=demo_id("event:spring-gala"))
    with responses.RequestsMock() as mocked:  # any HTTP call would fail the test
        response = admin_client.post(
            reverse("admin:sync_event_changelist"),
            {"action": "dry_run_resync", "_selected_action": [event.pk]},
        )
        assert len(mocked.calls) == 0
    page = response.content.decode()
    assert "<strong>5 create</strong>" in page  # 2 policies + 3 ticket definitions
    assert "General Admission" in page
    assert not OutboundWork.objects.exists() and not SyncLog.objects.exists()


def test_resync_selected_queues_work_once(admin_client: Client, mirrored: ExternalSystem) -> None:
    event = Event.objects.get(wix_id=demo_id("event:spring-gala"))
    for _ in range(2):
        admin_client.post(
            reverse("admin:sync_event_changelist"),
            {"action": "resync_selected", "_selected_action": [event.pk]},
        )
    assert OutboundWork.objects.filter(status="pending", trigger="resync").count() == 5


def test_a_link_repair_needs_confirmation_and_leaves_an_audit_record(
    admin_client: Client, admin_user: User, mirrored: ExternalSystem
) -> None:
    site = mirrored.links.model.site.field.related_model.objects.get()
    link = ExternalLink.objects.create(
        system=mirrored,
        site=site,
        entity_type=EntityType.POLICY,
        wix_id=demo_id("policy:jazz-night:age"),
        external_id="old-1",
        last_payload_hash="abc",
    )
    url = reverse("admin:sync_externallink_repair", args=[link.pk])
    first = admin_client.post(url, {"new_external_id": "new-2", "reason": "recreated by hand in the target"})
    assert "Yes, repair the link" in first.content.decode()
    link.refresh_from_db()
    assert link.external_id == "old-1" and not LinkRepair.objects.exists()
    second = admin_client.post(
        url, {"new_external_id": "new-2", "reason": "recreated by hand in the target", "confirm": "yes"}
    )
    assert second.status_code == 302
    link.refresh_from_db()
    assert (link.external_id, link.last_payload_hash) == ("new-2", "")
    repair = LinkRepair.objects.get()
    assert (repair.old_external_id, repair.new_external_id, repair.user) == ("old-1", "new-2", admin_user)


def test_a_viewer_cannot_repair_links(viewer: User, mirrored: ExternalSystem) -> None:
    site = mirrored.links.model.site.field.related_model.objects.get()
    link = ExternalLink.objects.create(
        system=mirrored, site=site, entity_type=EntityType.POLICY, wix_id="p", external_id="x"
    )
    client = Client()
    client.force_login(viewer)
    response = client.post(
        reverse("admin:sync_externallink_repair", args=[link.pk]),
        {"new_external_id": "y", "reason": "r", "confirm": "yes"},
    )
    assert response.status_code == 403
    link.refresh_from_db()
    assert link.external_id == "x"


def test_retry_actions_requeue_dead_letters(admin_client: Client, mirrored: ExternalSystem) -> None:
    site = mirrored.links.model.site.field.related_model.objects.get()
    dead = [
        OutboundWork.objects.create(
            system=mirrored,
            site=site,
            entity_type="policy",
            wix_id=f"p{i}",
            trigger="webhook",
            status="dead",
            attempts=8,
            last_error="HTTP 400: bad",
        )
        for i in range(3)
    ]
    url = reverse("admin:sync_outboundwork_changelist")
    admin_client.post(url, {"action": "retry_now", "_selected_action": [dead[0].pk]})
    dead[0].refresh_from_db()
    assert (dead[0].status, dead[0].attempts) == ("pending", 0)
    form = admin_client.post(url, {"action": "retry_dead_since", "_selected_action": [dead[1].pk]})
    assert 'name="since"' in form.content.decode()
    admin_client.post(
        url, {"action": "retry_dead_since", "_selected_action": [dead[1].pk], "since": "2000-01-01 00:00:00"}
    )
    assert OutboundWork.objects.filter(status="dead").count() == 0


def test_the_timeline_shows_pushes_with_request_and_response(
    admin_client: Client, mirrored: ExternalSystem
) -> None:
    td = TicketDefinition.objects.get(wix_id=demo_id("td:spring-gala:ga"))
    work = OutboundWork.objects.create(
        system=mirrored,
        site=td.site,
        entity_type="ticket_definition",
        wix_id=td.wix_id,
        trigger="backfill",
        status="done",
        outcome="created",
    )
    SyncLog.objects.create(
        work=work,
        system=mirrored,
        entity_type="ticket_definition",
        wix_id=td.wix_id,
        trigger="backfill",
        action="create",
        status="success",
        http_status=201,
        duration_ms=12,
        request_excerpt='POST http://x/ticket-types/\n{"name": "GA"}',
        response_excerpt='{"id": "abc"}',
    )
    page = admin_client.get(reverse("admin:sync_ticketdefinition_change", args=[td.pk])).content.decode()
    assert "Create → Sandbox ticketing: 201 Success (12 ms)" in page
    assert "POST http://x/ticket-types/" in page and "Mirror created (revision 1)" in page
    ticket_definition_upsert_from_wix(site=td.site, data={**td.raw, "revision": "2", "name": "GA"})
    page = admin_client.get(reverse("admin:sync_ticketdefinition_change", args=[td.pk])).content.decode()
    assert "Mirror updated (revision 2)" in page and "changed: name, revision" in page
