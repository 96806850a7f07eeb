"""Backfill → push, end to end: the sandbox Wix site into the sandbox ticketing system over HTTP."""

from __future__ import annotations

import pytest

from sync.models import (
    BackfillRun,
    ExternalLink,
    ExternalSystem,
    OutboundWork,
    SyncLog,
    TicketDefinition,
    WixSite,
)
from sync.sandbox.demo import demo_id, sandbox_seed
from sync.sandbox.models import SandboxFault, SandboxTicketingRecord
from sync.services.backfill import backfill_execute, backfill_start
from sync.services.push import push_drain

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sandbox(live_server: object, settings: object) -> WixSite:
    settings.WIX_BACKOFF_BASE = 0.001  # type: ignore[attr-defined]
    site = sandbox_seed()
    WixSite.objects.filter(pk=site.pk).update(api_base_url=f"{live_server.url}/sandbox/wix")  # type: ignore[attr-defined]
    ExternalSystem.objects.update(base_url=f"{live_server.url}/sandbox/ticketing")  # type: ignore[attr-defined]
    site.refresh_from_db()
    return site


def _backfill_and_drain(site: WixSite) -> BackfillRun:
    run, _ = backfill_start(site=site, trigger=BackfillRun.Trigger.COMMAND)
    backfill_execute(run_id=run.pk)
    push_drain(budget_seconds=60)
    run.refresh_from_db()
    return run


def _retry_due_now() -> None:
    """Time passes: every scheduled retry is due."""
    OutboundWork.objects.filter(status="pending").update(not_before=None)


def test_every_policy_and_ticket_definition_reaches_the_ticketing_system_once(sandbox: WixSite) -> None:
    _backfill_and_drain(sandbox)
    records = SandboxTicketingRecord.objects.filter(deleted=False)
    assert records.filter(collection="policies").count() == 6
    assert records.filter(collection="ticket-types").count() == 8
    assert ExternalLink.objects.count() == 14
    seated = SandboxTicketingRecord.objects.get(
        record_id=ExternalLink.objects.get(wix_id=demo_id("td:spring-gala:seated")).external_id
    )
    assert seated.data["options"] == [
        {"name": "Adult", "price": "40.00"},
        {"name": "Child", "price": "20.00"},
    ]
    assert seated.data["capacity"] == 120 and seated.data["active"] is True
    blanket = ExternalLink.objects.get(wix_id=demo_id("td:open-air-cinema:blanket")).external_id
    assert SandboxTicketingRecord.objects.get(record_id=blanket).data["active"] is False
    calls = SyncLog.objects.count()
    assert calls == 14

    second = _backfill_and_drain(sandbox)
    assert second.changes == 0
    assert SyncLog.objects.count() == calls  # a second resync makes no calls
    assert set(OutboundWork.objects.filter(trigger="backfill").values_list("outcome", flat=True)) == {
        "created",
        "unchanged",
    }


def test_an_outage_in_the_middle_ends_with_everything_synced_and_nothing_duplicated(sandbox: WixSite) -> None:
    # The target answers the first few creates, then goes down for a while.
    SandboxFault.objects.create(
        path_contains="/sandbox/ticketing/ticket-types", status=503, remaining=6, message="maintenance"
    )
    SandboxFault.objects.create(path_contains="/sandbox/ticketing/policies", status=502, remaining=3)
    _backfill_and_drain(sandbox)
    assert OutboundWork.objects.filter(status="pending").exists()
    assert SyncLog.objects.filter(status="retryable").count() == 9
    for _ in range(3):
        _retry_due_now()
        push_drain(budget_seconds=60)
    assert not OutboundWork.objects.exclude(status="done").exists()
    assert SandboxTicketingRecord.objects.count() == 14
    assert ExternalLink.objects.count() == 14
    assert set(ExternalLink.objects.values_list("external_id", flat=True)) == set(
        SandboxTicketingRecord.objects.values_list("record_id", flat=True)
    )


def test_a_staff_edited_mapping_changes_what_the_next_resync_sends(sandbox: WixSite) -> None:
    _backfill_and_drain(sandbox)
    system = ExternalSystem.objects.get()
    mapping = system.mappings.get(entity_type="ticket_definition", target_field="name")
    mapping.target_field = "title"
    mapping.full_clean()
    mapping.save()
    _backfill_and_drain(sandbox)
    ga = ExternalLink.objects.get(wix_id=demo_id("td:spring-gala:ga")).external_id
    record = SandboxTicketingRecord.objects.get(record_id=ga)
    assert record.data["title"] == "General Admission" and "name" not in record.data
    assert record.writes == 2
    assert SyncLog.objects.filter(action="update").count() == 8
    assert TicketDefinition.objects.count() == 8


def test_a_sandbox_edit_reaches_the_ticketing_system_through_a_signed_webhook(
    sandbox: WixSite, live_server: object, settings: object
) -> None:
    """The quick start's loop: edit on "Wix" → signed webhook → stored → processed → pushed."""
    from sync.models import WebhookDelivery
    from sync.sandbox.models import SandboxWebhook
    from sync.sandbox.services import Kind, entity_update, sandbox_webhook_send
    from sync.services.webhook_handlers import webhook_process

    settings.SANDBOX_WEBHOOK_URL = f"{live_server.url}/webhooks/wix/"  # type: ignore[attr-defined]
    _backfill_and_drain(sandbox)
    entity_update(
        kind=Kind.TICKET_DEFINITION,
        wix_id=demo_id("td:spring-gala:vip"),
        changes={"revision": "1", "name": "VIP Lounge"},
    )
    hook = SandboxWebhook.objects.get()
    assert sandbox_webhook_send(webhook_id=hook.pk) == "sent"
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.event_type) == ("received", "wix.events.v3.ticket_definition_updated")
    assert webhook_process(delivery_id=delivery.pk) == "updated"
    push_drain(budget_seconds=30)
    record = SandboxTicketingRecord.objects.get(
        record_id=ExternalLink.objects.get(wix_id=demo_id("td:spring-gala:vip")).external_id
    )
    assert record.data["name"] == "VIP Lounge" and record.writes == 2
    assert SyncLog.objects.filter(trigger="webhook", action="update").count() == 1
