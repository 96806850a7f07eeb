from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
import responses
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from sync.models import BackfillRun, Event, WebhookDelivery, WixSite
from tests.conftest import WIX, wix_payload

pytestmark = pytest.mark.django_db


def test_healthz_tells_anonymous_callers_the_status_only(client: Client, staff: User) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    client.force_login(staff)
    assert set(client.get("/healthz").json()["checks"]) == {"database", "queue", "webhooks"}


def test_healthz_reports_database_queue_and_webhook_age(client: Client, site: WixSite, staff: User) -> None:
    client.force_login(staff)
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] and body["checks"]["queue"]["ok"]
    assert body["checks"]["webhooks"]["newest_age_seconds"] is None
    delivery = WebhookDelivery.objects.create(site=site, wix_event_id="e", raw_body="x")
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        received_at=timezone.now() - dt.timedelta(minutes=2)
    )
    age = client.get("/healthz").json()["checks"]["webhooks"]["newest_age_seconds"]
    assert 119 <= age <= 130


def test_healthz_is_degraded_while_something_needs_staff_and_ok_again_after(
    client: Client, site: WixSite, staff: User
) -> None:
    from sync.models import ExternalSystem, OutboundWork

    system = ExternalSystem.objects.create(name="T", base_url="https://t.test", auth_type="none")
    work = OutboundWork.objects.create(
        system=system, site=site, entity_type="policy", wix_id="p1", trigger="webhook", status="dead"
    )
    late = WebhookDelivery.objects.create(site=site, wix_event_id="late", raw_body="x")
    WebhookDelivery.objects.filter(pk=late.pk).update(created_at=timezone.now() - dt.timedelta(minutes=6))
    assert client.get("/healthz").json() == {"status": "degraded"}  # anonymous: status only
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz?fail_on=degraded").status_code == 503  # for a monitor that pages
    client.force_login(staff)
    problems = {p["key"]: p for p in client.get("/healthz").json()["problems"]}
    assert set(problems) == {"dead_letters", "overdue_webhookdelivery"}
    assert problems["dead_letters"]["count"] == 1
    assert problems["dead_letters"]["url"] == "/admin/sync/outboundwork/?status__exact=dead"
    assert "are the workers running?" in problems["overdue_webhookdelivery"]["summary"]
    OutboundWork.objects.filter(pk=work.pk).update(status="done")
    WebhookDelivery.objects.filter(pk=late.pk).update(status="processed")
    assert client.get("/healthz?fail_on=degraded").json()["status"] == "ok"


def test_healthz_is_503_when_the_queue_is_down(
    client: Client, monkeypatch: pytest.MonkeyPatch, staff: User
) -> None:
    import portal.views

    class DeadBroker:
        def ping(self) -> bool:
            raise ConnectionError("broker unreachable")

    monkeypatch.setattr(portal.views, "get_broker", DeadBroker)
    assert client.get("/healthz").json() == {"status": "error"}
    client.force_login(staff)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["queue"] == {"ok": False, "error": "broker unreachable"}


@responses.activate
def test_backfill_command_runs_now_and_reports_counts(site: WixSite, settings: object) -> None:
    responses.post(f"{WIX}/events/v3/events/query", json=wix_payload("event__query"))
    responses.post(f"{WIX}/events/v2/policies/query", json={"metadata": {"total": 0}})
    responses.post(f"{WIX}/events/v3/ticket-definitions/query", json={"metadata": {"total": 0}})
    out = StringIO()
    call_command("backfill", "--site", site.site_id, "--now", stdout=out)
    assert "succeeded: fetched 1, created 1, updated 0, unchanged 0, failed 0" in out.getvalue()
    assert Event.objects.count() == 1
    assert BackfillRun.objects.get().trigger == "command"


def test_backfill_command_queues_per_event_and_rejects_unknown_sites(site: WixSite) -> None:
    out = StringIO()
    call_command("backfill", "--site", "Test site", "--event", "e1", "--event", "e2", stdout=out)
    assert sorted(BackfillRun.objects.values_list("event_wix_id", flat=True)) == ["e1", "e2"]
    with pytest.raises(CommandError, match="No active site matches 'nope'"):
        call_command("backfill", "--site", "nope")


def test_quickstart_prepares_the_sandbox_without_serving(settings: object) -> None:
    settings.DEBUG = True  # type: ignore[attr-defined]
    out = StringIO()
    call_command("quickstart", "--no-serve", stdout=out)
    assert "login: admin / admin" in out.getvalue()
    site = WixSite.objects.get(name="Sandbox Wix site")
    assert site.backfill_runs.get().trigger == "quickstart"
    call_command("quickstart", "--no-serve", stdout=StringIO())
    assert site.backfill_runs.count() == 1
    # The live ticket counter "demo" on the fixed-price VIP tickets, with its page.
    from notifications.models import TicketCounter
    from sync.sandbox.demo import demo_id

    demo = TicketCounter.objects.get()
    assert (demo.slug, demo.ticket_definition_wix_id) == ("demo", demo_id("td:spring-gala:vip"))
    assert "/counter/demo/page" in out.getvalue()


def test_quickstart_outside_debug_needs_a_password(settings: object, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.DEBUG = False  # type: ignore[attr-defined]
    monkeypatch.delenv("PORTAL_ADMIN_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="PORTAL_ADMIN_PASSWORD"):
        call_command("quickstart", "--no-serve", stdout=StringIO())


def _sample(text: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus text (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_metrics_expose_the_counts_and_latencies_to_staff_or_the_token(
    client: Client, site: WixSite, staff: User, settings: object
) -> None:
    from sync.models import ExternalSystem, OutboundWork

    assert client.get("/metrics").status_code == 401
    system = ExternalSystem.objects.create(name="T", base_url="https://t.test", auth_type="none")
    OutboundWork.objects.create(
        system=system, site=site, entity_type="policy", wix_id="p1", trigger="webhook", status="dead"
    )
    settings.METRICS_TOKEN = "scrape-me"  # type: ignore[attr-defined]
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").content.decode()
    assert _sample(text, "portal_jobs", kind="sync.OutboundWork", status="dead") == 1
    assert _sample(text, "portal_problems", key="dead_letters") == 1
    before = _sample(text, "portal_webhook_ack_seconds_count", status="401")
    client.post("/webhooks/wix/", b"not a jwt", content_type="text/plain")
    client.force_login(staff)
    after = _sample(client.get("/metrics").content.decode(), "portal_webhook_ack_seconds_count", status="401")
    assert after == before + 1
