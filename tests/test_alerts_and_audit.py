"""Incidents of an external system (alerts, pause, resume) and the audit of who did what."""

from __future__ import annotations

import pytest
import responses
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse

from sync.models import (
    EntityType,
    ExternalSystem,
    OutboundWork,
    TargetAlert,
    WixSite,
)
from sync.services.alerts import alerts_drain
from sync.services.mirrors import policy_upsert_from_wix
from sync.services.push import push_drain, push_enqueue, system_resume, work_execute
from tests.conftest import rest_target, wix_payload

pytestmark = pytest.mark.django_db
TARGET = "https://tickets.test"
POLICY = wix_payload("policy__get")["policy"]


@pytest.fixture
def system(settings: object) -> ExternalSystem:
    settings.TARGET_PAUSE_AFTER_FAILURES = 3  # type: ignore[attr-defined]
    settings.ALERT_EMAILS = ["ops@example.com"]  # type: ignore[attr-defined]
    return rest_target(name="Tickets", base_url=TARGET, path="policies", mappings=[("name", "name")])


def _policies(site: WixSite, count: int) -> list[str]:
    ids = []
    for n in range(count):
        data = {**POLICY, "id": f"p{n}"}
        policy_upsert_from_wix(site=site, data=data)
        ids.append(data["id"])
    push_enqueue(site=site, entity_type=EntityType.POLICY, wix_ids=ids, trigger="webhook")
    return ids


def _fail_once_more() -> None:
    work = OutboundWork.objects.filter(status="pending").order_by("pk").first()
    assert work is not None
    OutboundWork.objects.filter(pk=work.pk).update(not_before=None)
    assert work_execute(work_id=work.pk) == "retry-scheduled"


@responses.activate
def test_an_incident_alerts_once_pauses_the_system_keeps_its_work_and_recovers(
    site: WixSite, system: ExternalSystem, staff: User
) -> None:
    responses.post(f"{TARGET}/policies", status=503, json={"message": "down"})
    _policies(site, 4)
    _fail_once_more()
    system.refresh_from_db()
    assert (system.failure_streak, system.paused_at) == (1, None) and system.failing_since
    assert list(TargetAlert.objects.values_list("kind", flat=True)) == ["failing"]
    _fail_once_more()
    assert TargetAlert.objects.count() == 1  # no storm: one alert per incident step
    _fail_once_more()
    system.refresh_from_db()
    assert system.paused_at is not None  # 3 failures in a row
    assert sorted(TargetAlert.objects.values_list("kind", flat=True)) == ["failing", "paused"]

    # Paused: work keeps being queued, but no drain takes it.
    OutboundWork.objects.filter(status="pending").update(not_before=None)
    push_drain(budget_seconds=2)
    assert len(responses.calls) == 3
    _policies(site, 6)  # two more entities queue meanwhile
    assert OutboundWork.objects.filter(status="pending").count() == 6

    responses.replace(responses.POST, f"{TARGET}/policies", status=201, json={"id": "ok"})
    responses.post(f"{TARGET}/policies", status=201, json={"id": "ok2"})
    assert system_resume(system=system, by=staff)
    responses.replace(responses.POST, f"{TARGET}/policies", status=201, json={"id": "x"})
    OutboundWork.objects.filter(status="pending").update(not_before=None)
    work = OutboundWork.objects.filter(status="pending").order_by("pk").first()
    assert work is not None and work_execute(work_id=work.pk) == "created"
    system.refresh_from_db()
    assert (system.failure_streak, system.failing_since, system.paused_at) == (0, None, None)
    assert sorted(TargetAlert.objects.values_list("kind", flat=True)) == ["failing", "paused", "recovered"]
    assert LogEntry.objects.get(object_id=str(system.pk)).change_message.startswith("Resumed")

    assert alerts_drain(budget_seconds=5) == 3
    subjects = sorted(m.subject for m in mail.outbox)
    assert subjects == [
        "[Events Sync Portal] Tickets has recovered",
        "[Events Sync Portal] Tickets is failing",
        "[Events Sync Portal] Tickets is paused after 3 failures in a row",
    ]
    assert all(m.to == ["ops@example.com"] for m in mail.outbox)
    assert set(TargetAlert.objects.values_list("status", flat=True)) == {"sent"}


def test_an_alert_the_mail_server_refuses_is_tried_again(
    site: WixSite, system: ExternalSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sync.services.alerts import target_failed

    target_failed(system=system, error="HTTP 503")

    def refuse(*args: object, **kwargs: object) -> None:
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("sync.services.alerts.send_mail", refuse)
    assert alerts_drain(budget_seconds=2) == 1
    alert = TargetAlert.objects.get()
    assert (alert.status, alert.attempts) == ("queued", 1) and "smtp down" in alert.last_error
    assert alert.not_before is not None


def test_paused_systems_show_as_a_problem(client: Client, system: ExternalSystem, staff: User) -> None:
    from django.utils import timezone

    ExternalSystem.objects.filter(pk=system.pk).update(paused_at=timezone.now(), failure_streak=3)
    client.force_login(staff)
    keys = [p["key"] for p in client.get("/healthz").json()["problems"]]
    assert keys == ["paused_systems"]


@responses.activate
def test_who_started_or_retried_what_is_in_each_objects_history(
    site: WixSite, system: ExternalSystem, admin_client: Client, admin_user: User
) -> None:
    from sync.models import BackfillRun, Event, WebhookDelivery
    from sync.services.backfill import backfill_start
    from sync.services.push import work_retry
    from sync.services.webhook_handlers import webhook_replay

    run, _ = backfill_start(site=site, trigger=BackfillRun.Trigger.ADMIN, user=admin_user)
    work = OutboundWork.objects.create(
        system=system, site=site, entity_type="policy", wix_id="p1", trigger="webhook", status="dead"
    )
    assert work_retry(work_ids=[work.pk], by=admin_user, reason="staff: Retry now") == 1
    delivery = WebhookDelivery.objects.create(site=site, wix_event_id="e", raw_body="x", status="failed")
    assert webhook_replay(delivery_ids=[delivery.pk], by=admin_user, reason="staff: Replay selected") == 1
    event = Event.objects.create(site=site, wix_id="ev1", title="Gala", raw={"id": "ev1"})
    admin_client.post(
        reverse("admin:sync_event_changelist"), {"action": "resync_selected", "_selected_action": [event.pk]}
    )
    messages = {
        (entry.content_type.model, entry.object_id): entry.change_message
        for entry in LogEntry.objects.filter(user=admin_user)
    }
    assert messages[("wixsite", str(site.pk))] == f"Started backfill #{run.pk} (all events, admin)."
    assert messages[("outboundwork", str(work.pk))] == "Retried (staff: Retry now)."
    assert messages[("webhookdelivery", str(delivery.pk))] == "Replayed (staff: Replay selected)."
    assert messages[("event", str(event.pk))].startswith("Resynced")
    history = admin_client.get(reverse("admin:sync_outboundwork_history", args=[work.pk])).content.decode()
    assert "Retried (staff: Retry now)." in history and admin_user.username in history
