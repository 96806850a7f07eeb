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
    TicketDefinitionRefresh,
    WixSite,
)
from sync.sandbox.demo import demo_id, sandbox_seed
from sync.sandbox.models import SandboxFault, SandboxTicketingRecord
from sync.services.backfill import backfill_execute, backfill_start
from sync.services.push import push_drain
from sync.services.ticket_refresh import ticket_refresh_drain

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


def _send_all_hooks() -> list[str]:
    """Deliver every webhook the sandbox queued, in order; returns their types."""
    from sync.sandbox.models import SandboxWebhook
    from sync.sandbox.services import sandbox_webhook_send

    types = []
    for hook in SandboxWebhook.objects.filter(status="pending").order_by("pk"):
        assert sandbox_webhook_send(webhook_id=hook.pk) == "sent", hook.error
        types.append(hook.event_type)
    return types


def test_an_order_confirmed_sent_by_the_sandbox_lowers_the_mirrored_unsold_count(
    sandbox: WixSite, live_server: object, settings: object
) -> None:
    from sync.models import WebhookDelivery
    from sync.sandbox.services import order_place
    from sync.services.webhook_handlers import webhook_process

    settings.SANDBOX_WEBHOOK_URL = f"{live_server.url}/webhooks/wix/"  # type: ignore[attr-defined]
    _backfill_and_drain(sandbox)
    vip = demo_id("td:spring-gala:vip")
    assert TicketDefinition.objects.get(wix_id=vip).unsold_count == 5
    order_place(event_id=demo_id("event:spring-gala"), quantities={vip: 2})
    assert _send_all_hooks() == ["wix.events.ticketing.events.OrderConfirmed"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "received"  # routed, not "ignored: unknown type"
    assert webhook_process(delivery_id=delivery.pk) == "refresh queued (1)"
    TicketDefinitionRefresh.objects.update(not_before=None)  # its coalescing window has passed
    assert ticket_refresh_drain(budget_seconds=5) == 1
    assert TicketDefinitionRefresh.objects.get().outcome == "updated"
    assert TicketDefinition.objects.get(wix_id=vip).unsold_count == 3


def test_sale_period_changes_and_sale_starts_reach_the_portal_as_action_events(
    sandbox: WixSite, live_server: object, settings: object
) -> None:
    import datetime as dt

    from django.utils import timezone

    from sync.models import WebhookDelivery
    from sync.sandbox.services import Kind, _iso, entity_update, sandbox_sale_transitions
    from sync.services.webhook_handlers import webhook_process

    settings.SANDBOX_WEBHOOK_URL = f"{live_server.url}/webhooks/wix/"  # type: ignore[attr-defined]
    _backfill_and_drain(sandbox)
    early = demo_id("td:jazz-night:early")
    assert TicketDefinition.objects.get(wix_id=early).sale_status == "SALE_SCHEDULED"
    soon = timezone.now() + dt.timedelta(minutes=1)
    period = {"startDate": _iso(soon), "endDate": _iso(soon + dt.timedelta(days=3)), "displayNotOnSale": True}
    entity_update(kind=Kind.TICKET_DEFINITION, wix_id=early, changes={"revision": "1", "salePeriod": period})
    assert sandbox_sale_transitions() == 0  # not started yet
    assert sandbox_sale_transitions(now=soon + dt.timedelta(seconds=1)) == 1
    assert sandbox_sale_transitions(now=soon + dt.timedelta(seconds=2)) == 0  # announced once
    assert _send_all_hooks() == [
        "wix.events.v3.ticket_definition_updated",
        "wix.events.v3.ticket_definition_sale_period_updated",
        "wix.events.v3.ticket_definition_sale_started",
    ]
    outcomes = [webhook_process(delivery_id=d.pk) for d in WebhookDelivery.objects.order_by("pk")]
    assert outcomes[0] == "updated" and WebhookDelivery.objects.filter(status="processed").count() == 3
    mirror = TicketDefinition.objects.get(wix_id=early)
    assert mirror.sale_start == dt.datetime.fromisoformat(period["startDate"].replace("Z", "+00:00"))
