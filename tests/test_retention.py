"""Retention: old webhook and call bodies go, in batches; rows, failed deliveries and recent bodies stay."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from portal.task_guard import task_allowed
from sync.models import ExternalSystem, OutboundWork, SyncLog, WebhookDelivery, WixSite
from sync.services.retention import retention_prune

pytestmark = pytest.mark.django_db
NOW = timezone.now()
OLD = NOW - dt.timedelta(days=40)


def _delivery(site: WixSite, name: str, status: str, at: dt.datetime) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.create(
        site=site,
        wix_event_id=name,
        event_type="wix.events.v2.policy_updated",
        entity_id="p1",
        raw_body="header.payload.signature",
        payload={"eventType": "wix.events.v2.policy_updated"},
        status=status,
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(received_at=at)
    return delivery


def _call(work: OutboundWork, status: str, at: dt.datetime) -> SyncLog:
    log = SyncLog.objects.create(
        work=work,
        system=work.system,
        entity_type="policy",
        wix_id="p1",
        trigger="webhook",
        action="update",
        status=status,
        http_status=200,
        duration_ms=12,
        request_excerpt='{"name": "Refund policy"}',
        response_excerpt='{"id": "x1"}',
    )
    SyncLog.objects.filter(pk=log.pk).update(created_at=at)
    return log


@pytest.fixture
def work(site: WixSite) -> OutboundWork:
    system = ExternalSystem.objects.create(name="T", base_url="https://t.test", auth_type="none")
    return OutboundWork.objects.create(
        system=system, site=site, entity_type="policy", wix_id="p1", trigger="webhook"
    )


def test_old_bodies_go_in_batches_and_the_summary_rows_stay(site: WixSite, work: OutboundWork) -> None:
    old = [
        _delivery(site, f"old-{n}", status, OLD)
        for n, status in enumerate(["processed", "ignored", "stale", "malformed", "processed"])
    ]
    failed = _delivery(site, "old-failed", "failed", OLD)
    waiting = _delivery(site, "old-waiting", "received", OLD)
    recent = _delivery(site, "recent", "processed", NOW - dt.timedelta(days=2))
    old_calls = [_call(work, "success", OLD) for _ in range(3)]
    sending = _call(work, "sending", OLD)
    recent_call = _call(work, "success", NOW)

    pruned = retention_prune(now=NOW, days=30, batch=2)
    assert (pruned.webhook_bodies, pruned.call_bodies, pruned.finished) == (5, 3, True)
    for delivery in old:
        delivery.refresh_from_db()
        assert (delivery.raw_body, delivery.payload) == ("", None)
        assert (delivery.event_type, delivery.entity_id) == (
            "wix.events.v2.policy_updated",
            "p1",
        )  # the summary
    for kept in (failed, waiting, recent):  # a failed one may be replayed; an open one is still to do
        kept.refresh_from_db()
        assert kept.raw_body and kept.payload
    for log in old_calls:
        log.refresh_from_db()
        assert (log.request_excerpt, log.response_excerpt) == ("", "")
        assert (log.http_status, log.duration_ms, log.status) == (200, 12, "success")
    for kept_call in (sending, recent_call):
        kept_call.refresh_from_db()
        assert kept_call.request_excerpt and kept_call.response_excerpt
    assert WebhookDelivery.objects.count() == 8 and SyncLog.objects.count() == 5  # no row deleted

    again = retention_prune(now=NOW, days=30, batch=2)
    assert (again.webhook_bodies, again.call_bodies) == (0, 0)


def test_finished_ticket_refreshes_are_deleted_when_old_and_open_or_failed_ones_stay(site: WixSite) -> None:
    from sync.models import TicketDefinitionRefresh

    def refresh(wix_id: str, status: str, finished: dt.datetime | None) -> TicketDefinitionRefresh:
        return TicketDefinitionRefresh.objects.create(
            site=site, wix_id=wix_id, status=status, finished_at=finished
        )

    old = [refresh(f"td-{n}", "done", OLD) for n in range(3)]
    kept = [
        refresh("td-recent", "done", NOW),
        refresh("td-failed", "failed", OLD),
        refresh("td-open", "waiting", None),
    ]
    pruned = retention_prune(now=NOW, days=30, batch=2)
    assert pruned.refreshes == 3 and pruned.finished
    assert not TicketDefinitionRefresh.objects.filter(pk__in=[r.pk for r in old]).exists()
    assert set(TicketDefinitionRefresh.objects.values_list("pk", flat=True)) == {r.pk for r in kept}


def test_the_age_is_configurable_and_a_spent_budget_stops_early(site: WixSite, settings: object) -> None:
    _delivery(site, "ten-days", "processed", NOW - dt.timedelta(days=10))
    settings.RETENTION_DAYS = 30  # type: ignore[attr-defined]
    assert retention_prune(now=NOW).webhook_bodies == 0
    stopped = retention_prune(now=NOW, days=7, budget_seconds=0)
    assert (stopped.webhook_bodies, stopped.finished) == (0, False)  # nothing half-done; next run goes on
    settings.RETENTION_DAYS = 7  # type: ignore[attr-defined]
    assert retention_prune(now=NOW).webhook_bodies == 1


def test_the_prune_is_scheduled_daily_as_a_portal_task() -> None:
    schedule = Schedule.objects.get(name="sync: retention")
    assert (schedule.func, schedule.schedule_type, schedule.repeats) == (
        "sync.tasks.retention_prune_task",
        "D",
        -1,
    )
    assert task_allowed(schedule.func)


def test_a_pruned_delivery_says_so_on_its_page(admin_client: Client, site: WixSite) -> None:
    delivery = _delivery(site, "old", "processed", OLD)
    retention_prune(now=NOW, days=30)
    page = admin_client.get(reverse("admin:sync_webhookdelivery_change", args=[delivery.pk])).content.decode()
    assert "Dropped after 30 days (retention)" in page
