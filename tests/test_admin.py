from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from sync.models import (
    BackfillRun,
    Event,
    TicketDefinition,
    WebhookDelivery,
    WixSite,
)
from sync.sandbox.demo import demo_id, sandbox_seed
from sync.sandbox.models import SandboxEntity, SandboxWebhook

pytestmark = pytest.mark.django_db


def test_every_admin_page_loads(admin_client: Client, filled: WixSite) -> None:
    assert admin_client.get(reverse("admin:index")).status_code == 200
    checked = 0
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        changelist = admin_client.get(reverse("admin:{}_{}_changelist".format(*info)))
        assert changelist.status_code == 200, info
        add = admin_client.get(reverse("admin:{}_{}_add".format(*info)))
        assert add.status_code == (200 if model_admin.has_add_permission(changelist.wsgi_request) else 403), (
            info
        )
        obj = model_admin.get_queryset(changelist.wsgi_request).first()
        if obj is not None:
            change = admin_client.get(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
            assert change.status_code == 200, info
            checked += 1
    assert checked >= 18


def test_mirror_pages_show_the_raw_json_and_are_read_only(admin_client: Client, filled: WixSite) -> None:
    td = TicketDefinition.objects.get()
    page = admin_client.get(reverse("admin:sync_ticketdefinition_change", args=[td.pk])).content.decode()
    assert "&quot;unsoldCount&quot;: 143" in page
    assert 'name="_save"' not in page
    search = admin_client.get(reverse("admin:sync_ticketdefinition_changelist") + "?q=General")
    assert "General Admission" in search.content.decode()


def test_the_site_page_never_shows_a_secret(admin_client: Client, filled: WixSite) -> None:
    page = admin_client.get(reverse("admin:sync_wixsite_change", args=[filled.pk])).content.decode()
    assert "WIX_TEST_API_KEY" in page and "test-key" not in page


def test_backfill_actions_queue_runs_once(
    admin_client: Client, filled: WixSite, django_capture_on_commit_callbacks: object
) -> None:
    url = reverse("admin:sync_wixsite_changelist")
    for _ in range(2):
        admin_client.post(url, {"action": "backfill_all_events", "_selected_action": [filled.pk]})
    event = Event.objects.get(site=filled)
    admin_client.post(
        reverse("admin:sync_event_changelist"), {"action": "backfill_events", "_selected_action": [event.pk]}
    )
    runs = BackfillRun.objects.filter(status="queued")
    assert sorted(runs.values_list("event_wix_id", "trigger")) == [("", "admin"), (event.wix_id, "admin")]
    assert runs.get(event_wix_id="").started_by.username == "boss"


def test_resume_action_requeues_a_failed_run(admin_client: Client, filled: WixSite) -> None:
    run = BackfillRun.objects.get(status="failed")
    response = admin_client.post(
        reverse("admin:sync_backfillrun_changelist"),
        {"action": "resume", "_selected_action": [run.pk]},
        follow=True,
    )
    assert "Queued 1 run(s) again" in response.content.decode()
    run.refresh_from_db()
    assert run.status == "queued"


def test_a_viewer_sees_but_cannot_start_backfills(viewer: User, filled: WixSite) -> None:
    client = Client()
    client.force_login(viewer)
    url = reverse("admin:sync_wixsite_changelist")
    page = client.get(url).content.decode()
    assert "Test site" in page and "backfill_all_events" not in page
    client.post(url, {"action": "backfill_all_events", "_selected_action": [filled.pk]})
    assert BackfillRun.objects.filter(status="queued").count() == 0


def test_editing_sandbox_data_in_the_admin_bumps_the_revision_and_sends_a_webhook(
    admin_client: Client,
) -> None:
    sandbox_seed()
    entity = SandboxEntity.objects.get(wix_id=demo_id("policy:jazz-night:age"))
    data = {**entity.data, "name": "Age limit"}
    response = admin_client.post(
        reverse("admin:sandbox_sandboxpolicy_change", args=[entity.pk]),
        {"data": __import__("json").dumps(data)},
    )
    assert response.status_code == 302
    entity.refresh_from_db()
    assert (entity.data["name"], entity.data["revision"]) == ("Age limit", "2")
    assert SandboxWebhook.objects.get().event_type == "wix.events.v2.policy_updated"


def test_replay_actions_requeue_failed_deliveries(admin_client: Client, filled: WixSite) -> None:
    failed = WebhookDelivery.objects.create(
        site=filled,
        wix_event_id="evt-f",
        raw_body="x",
        status="failed",
        payload={"eventType": "x", "data": {}},
    )
    url = reverse("admin:sync_webhookdelivery_changelist")
    admin_client.post(url, {"action": "replay_selected", "_selected_action": [failed.pk]})
    failed.refresh_from_db()
    assert failed.status == "received"
    WebhookDelivery.objects.filter(pk=failed.pk).update(status="failed")
    form = admin_client.post(url, {"action": "replay_failed_since", "_selected_action": [failed.pk]})
    assert 'name="since"' in form.content.decode() and "Replay" in form.content.decode()
    admin_client.post(
        url,
        {"action": "replay_failed_since", "_selected_action": [failed.pk], "since": "2000-01-01 00:00:00"},
    )
    assert WebhookDelivery.objects.get(pk=failed.pk).status == "received"
    processed = WebhookDelivery.objects.get(wix_event_id="evt-1")
    WebhookDelivery.objects.filter(pk=processed.pk).update(status="processed")
    admin_client.post(url, {"action": "replay_selected", "_selected_action": [processed.pk]})
    assert WebhookDelivery.objects.get(pk=processed.pk).status == "processed"  # never applied twice
