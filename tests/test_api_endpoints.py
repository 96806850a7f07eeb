"""The API's endpoints: what each does (through the same services as the admin), and what
each persona may do with it."""

from __future__ import annotations

import datetime as dt

import pytest
import responses
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from sync.models import (
    BackfillRun,
    Event,
    ExternalSystem,
    OutboundWork,
    Policy,
    SyncLog,
    WebhookDelivery,
    WixSite,
)
from sync.services.mirrors import event_upsert_from_wix, policy_upsert_from_wix
from tests.conftest import rest_target, wix_payload

pytestmark = pytest.mark.django_db

EVENT = wix_payload("event__query")["events"][0]
POLICY = {**wix_payload("policy__get")["policy"], "eventId": EVENT["id"]}


def _client(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return client


@pytest.fixture
def mirrored(site: WixSite) -> Policy:
    event_upsert_from_wix(site=site, data=EVENT)
    policy_upsert_from_wix(site=site, data=POLICY)
    return Policy.objects.get(wix_id=POLICY["id"])


@pytest.fixture
def system() -> ExternalSystem:
    return rest_target(name="Tickets")


def _dead(system: ExternalSystem, site: WixSite, wix_id: str, **fields: object) -> OutboundWork:
    return OutboundWork.objects.create(
        system=system,
        site=site,
        entity_type=fields.pop("entity_type", "policy"),
        wix_id=wix_id,
        trigger="webhook",
        status="dead",
        last_error="HTTP 422: title is required",
        **fields,
    )


def _failed_delivery(site: WixSite | None, wix_event_id: str, entity_id: str = "") -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        site=site,
        wix_event_id=wix_event_id,
        event_type="wix.events.v2.policy_updated",
        entity_id=entity_id,
        raw_body="a.b.c",
        status="failed",
        last_error="Wix unreachable",
    )


def _history(obj: object) -> list[tuple[str, str]]:
    return list(
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(obj),
            object_id=str(obj.pk),  # type: ignore[attr-defined]
        ).values_list("user__username", "change_message")
    )


# --- who may do what ---------------------------------------------------------------------------
READS = ["/api/backfills/", "/api/dead-letters/", "/api/failed-deliveries/", "/api/failed-backfills/"]
READ_EXPECTED = {"anonymous": 401, "staff": 403, "viewer": 200, "operator": 200, "superuser": 200}
WRITE_EXPECTED = {"anonymous": 401, "staff": 403, "viewer": 403}


@pytest.mark.parametrize("path", READS)
def test_each_list_is_read_with_the_view_permission(
    persona: tuple[str, User | None], path: str, site: WixSite
) -> None:
    name, user = persona
    assert _client(user).get(path).status_code == READ_EXPECTED[name], (name, path)


def test_each_action_needs_the_operators_permission_and_does_nothing_otherwise(
    persona: tuple[str, User | None], site: WixSite, mirrored: Policy, system: ExternalSystem
) -> None:
    name, user = persona
    dead = _dead(system, site, "p-dead")
    delivery = _failed_delivery(site, "evt-1")
    client = _client(user)
    answers = {
        "resync": client.post("/api/resyncs/", {"site": site.pk}, format="json").status_code,
        "dry-run": client.post("/api/dry-runs/", {"site": site.pk}, format="json").status_code,
        "retry": client.post("/api/dead-letters/retry/", {"ids": [dead.pk]}, format="json").status_code,
        "replay": client.post(
            "/api/failed-deliveries/replay/", {"ids": [delivery.pk]}, format="json"
        ).status_code,
        "backfill": client.post("/api/backfills/", {"site": site.pk}, format="json").status_code,
    }
    allowed = name in ("operator", "superuser")
    expected = (
        {"resync": 202, "dry-run": 200, "retry": 200, "replay": 200, "backfill": 201}
        if allowed
        else dict.fromkeys(answers, WRITE_EXPECTED[name])
    )
    assert answers == expected, name
    dead.refresh_from_db()
    delivery.refresh_from_db()
    assert (dead.status, delivery.status) == (("pending", "received") if allowed else ("dead", "failed"))
    assert OutboundWork.objects.filter(trigger="resync").exists() == allowed
    assert BackfillRun.objects.exists() == allowed
    assert LogEntry.objects.exists() == allowed


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/schema/", {"anonymous": 401, "staff": 200, "viewer": 200, "operator": 200, "superuser": 200}),
        ("/api/docs/", {"anonymous": 302, "staff": 200, "viewer": 200, "operator": 200, "superuser": 200}),
        ("/api/redoc/", {"anonymous": 302, "staff": 200, "viewer": 200, "operator": 200, "superuser": 200}),
    ],
)
def test_the_schema_and_its_pages_are_for_staff(
    persona: tuple[str, User | None], path: str, expected: dict[str, int]
) -> None:
    name, user = persona
    client = APIClient()
    if user is not None:
        client.force_login(user)
    response = client.get(path)
    assert response.status_code == expected[name], name
    if response.status_code == 302:
        assert response["Location"].startswith("/admin/login/")


def test_the_docs_pages_load_their_files_from_the_portal_not_a_cdn(admin_user: User) -> None:
    client = APIClient()
    client.force_login(admin_user)
    for path, asset in [("/api/docs/", "swagger-ui-bundle.js"), ("/api/redoc/", "redoc.standalone.js")]:
        page = client.get(path).content.decode()
        assert "/static/drf_spectacular_sidecar/" in page and asset in page, path
        assert "cdn." not in page and "unpkg" not in page and "https://" not in page, path


# --- resync and dry run --------------------------------------------------------------------------
def test_a_resync_of_an_event_queues_it_with_its_children_and_is_audited(
    operator: User, site: WixSite, mirrored: Policy, system: ExternalSystem
) -> None:
    other = rest_target(name="Box office")
    response = _client(operator).post(
        "/api/resyncs/",
        {"site": site.pk, "entity_type": "event", "wix_ids": [EVENT["id"]], "systems": [system.pk]},
        format="json",
    )
    # The event (which this system does not keep) and its policy: one push, to the system named.
    assert (response.status_code, response.json()) == (202, {"entities": 2, "queued": 1})
    work = OutboundWork.objects.get()
    assert (work.system, work.entity_type, work.wix_id, work.trigger) == (
        system,
        "policy",
        POLICY["id"],
        "resync",
    )
    assert not OutboundWork.objects.filter(system=other).exists()
    event = Event.objects.get(wix_id=EVENT["id"])
    assert _history(event) == [("operator", "Resynced to Tickets (1 push(es) queued; API).")]


def test_a_resync_of_a_whole_site_goes_to_every_active_system_and_is_audited_on_the_site(
    operator: User, site: WixSite, mirrored: Policy, system: ExternalSystem
) -> None:
    other = rest_target(name="Box office")
    response = _client(operator).post(
        "/api/resyncs/", {"site": site.pk, "entity_type": "policy"}, format="json"
    )
    assert (response.status_code, response.json()) == (202, {"entities": 1, "queued": 2})
    assert set(OutboundWork.objects.values_list("system", flat=True)) == {system.pk, other.pk}
    assert _history(site) == [("operator", "Resynced every policy (2 push(es) queued; API).")]


def test_a_resync_naming_what_the_portal_has_not_mirrored_is_a_400_and_queues_nothing(
    operator: User, site: WixSite, mirrored: Policy, system: ExternalSystem
) -> None:
    client = _client(operator)
    response = client.post(
        "/api/resyncs/",
        {"site": site.pk, "entity_type": "policy", "wix_ids": [POLICY["id"], "nope"]},
        format="json",
    )
    assert response.status_code == 400 and "nope" in response.json()["wix_ids"][0]
    for bad in [
        {"site": 999},
        {"site": site.pk, "entity_type": "order"},
        {"site": site.pk, "systems": [999]},
    ]:
        assert client.post("/api/resyncs/", bad, format="json").status_code == 400, bad
    assert not OutboundWork.objects.exists() and not LogEntry.objects.exists()


@responses.activate  # registers no URL: any call to a system would fail the test
def test_a_dry_run_shows_what_a_push_would_send_and_writes_nothing(
    operator: User, site: WixSite, mirrored: Policy, system: ExternalSystem
) -> None:
    response = _client(operator).post(
        "/api/dry-runs/", {"site": site.pk, "entity_type": "event", "wix_ids": [EVENT["id"]]}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {
        "counts": {"create": 1},
        "rows": [
            {
                "system": system.pk,
                "system_name": "Tickets",
                "site": site.pk,
                "entity_type": "policy",
                "wix_id": POLICY["id"],
                "name": "Refund policy",
                "event_name": EVENT["title"],
                "action": "create",
                "external_id": "",
                "payload": {"title": "Refund policy"},
                "error": "",
            }
        ],
    }
    assert not OutboundWork.objects.exists() and not SyncLog.objects.exists()
    assert not LogEntry.objects.exists() and len(responses.calls) == 0


# --- failures ------------------------------------------------------------------------------------
def test_dead_letters_are_listed_with_wix_names_filtered_and_paginated(
    viewer: User, site: WixSite, mirrored: Policy, system: ExternalSystem
) -> None:
    other_site = WixSite.objects.create(name="Other", site_id="other", instance_id="inst-2")
    other = rest_target(name="Box office")
    old = _dead(system, site, POLICY["id"])
    OutboundWork.objects.filter(pk=old.pk).update(updated_at=timezone.now() - dt.timedelta(days=3))
    new = _dead(system, site, "t-1", entity_type="ticket_definition")
    elsewhere = _dead(other, other_site, "p-2")
    OutboundWork.objects.create(
        system=system, site=site, entity_type="policy", wix_id="ok", trigger="webhook"
    )
    client = _client(viewer)

    def ids(query: str = "") -> list[int]:
        return [row["id"] for row in client.get(f"/api/dead-letters/{query}").json()["results"]]

    assert ids() == [elsewhere.pk, new.pk, old.pk]
    assert ids(f"?site={site.pk}") == [new.pk, old.pk]
    assert ids(f"?system={other.pk}") == [elsewhere.pk]
    assert ids("?entity_type=ticket_definition") == [new.pk]
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()
    assert ids(f"?site={site.pk}&since={since.replace('+', '%2B')}") == [new.pk]
    page = client.get("/api/dead-letters/?limit=1&offset=1").json()
    assert (page["count"], [r["id"] for r in page["results"]]) == (3, [new.pk])
    [row] = client.get(f"/api/dead-letters/?system={system.pk}&entity_type=policy").json()["results"]
    assert {
        k: row[k] for k in ("wix_id", "name", "event_name", "system_name", "last_error", "retried_by")
    } == {
        "wix_id": POLICY["id"],
        "name": "Refund policy",
        "event_name": EVENT["title"],
        "system_name": "Tickets",
        "last_error": "HTTP 422: title is required",
        "retried_by": None,
    }
    assert client.get("/api/dead-letters/?since=yesterday").status_code == 400
    assert client.get("/api/dead-letters/?entity_type=order").status_code == 400


def test_failed_deliveries_and_failed_backfills_are_listed_and_filtered(
    viewer: User, site: WixSite, mirrored: Policy
) -> None:
    other_site = WixSite.objects.create(name="Other", site_id="other", instance_id="inst-2")
    named = _failed_delivery(site, "evt-1", entity_id=POLICY["id"])
    elsewhere = _failed_delivery(other_site, "evt-2")
    WebhookDelivery.objects.create(site=site, wix_event_id="evt-3", raw_body="x", status="processed")
    failed = BackfillRun.objects.create(site=site, trigger="api", status="failed")
    partial = BackfillRun.objects.create(site=other_site, trigger="api", status="partial")
    BackfillRun.objects.create(site=site, trigger="api", status="succeeded")
    client = _client(viewer)
    deliveries = client.get("/api/failed-deliveries/").json()["results"]
    assert [d["id"] for d in deliveries] == [elsewhere.pk, named.pk]
    assert (deliveries[1]["name"], deliveries[1]["last_error"]) == ("Refund policy", "Wix unreachable")
    only = client.get(f"/api/failed-deliveries/?site={site.pk}").json()["results"]
    assert [d["id"] for d in only] == [named.pk]
    later = (timezone.now() + dt.timedelta(minutes=1)).isoformat().replace("+", "%2B")
    assert client.get(f"/api/failed-deliveries/?since={later}").json()["results"] == []
    runs = client.get("/api/failed-backfills/").json()["results"]
    assert [r["id"] for r in runs] == [partial.pk, failed.pk]
    assert [r["id"] for r in client.get(f"/api/failed-backfills/?site={site.pk}").json()["results"]] == [
        failed.pk
    ]


def test_retrying_dead_letters_sends_them_round_again_and_records_who_asked(
    operator: User, site: WixSite, system: ExternalSystem
) -> None:
    dead = _dead(system, site, "p-1", attempts=7)
    done = OutboundWork.objects.create(
        system=system, site=site, entity_type="policy", wix_id="p-2", trigger="webhook", status="done"
    )
    response = _client(operator).post(
        "/api/dead-letters/retry/", {"ids": [dead.pk, done.pk, dead.pk, 123456]}, format="json"
    )
    assert (response.status_code, response.json()) == (200, {"requested": 3, "queued": 1})
    dead.refresh_from_db()
    done.refresh_from_db()
    assert (dead.status, dead.attempts, dead.retried_by, dead.retry_reason) == (
        "pending",
        0,
        operator,
        "staff: API retry",
    )
    assert done.status == "done"
    assert _history(dead) == [("operator", "Retried (staff: API retry).")]
    assert _history(done) == []


def test_replaying_failed_deliveries_queues_them_again_and_records_who_asked(
    operator: User, site: WixSite
) -> None:
    failed = _failed_delivery(site, "evt-1")
    processed = WebhookDelivery.objects.create(
        site=site, wix_event_id="evt-2", raw_body="x", status="processed"
    )
    response = _client(operator).post(
        "/api/failed-deliveries/replay/", {"ids": [failed.pk, processed.pk]}, format="json"
    )
    assert (response.status_code, response.json()) == (200, {"requested": 2, "queued": 1})
    failed.refresh_from_db()
    processed.refresh_from_db()
    assert (failed.status, failed.retried_by, processed.status) == ("received", operator, "processed")
    assert _history(failed) == [("operator", "Replayed (staff: API replay).")]


@pytest.mark.parametrize(
    "body", [{}, {"ids": []}, {"ids": ["x"]}, {"ids": [0]}, {"ids": [2**63]}, {"ids": 5}]
)
def test_retry_and_replay_refuse_a_bad_id_list(operator: User, body: dict) -> None:
    client = _client(operator)
    for path in ["/api/dead-letters/retry/", "/api/failed-deliveries/replay/"]:
        assert client.post(path, body, format="json").status_code == 400, (path, body)
    assert not LogEntry.objects.exists()


def test_the_browsable_api_works_with_an_admin_session_and_its_csrf_check(
    viewer: User, operator: User, site: WixSite, system: ExternalSystem
) -> None:
    dead = _dead(system, site, "p-1")
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(viewer)
    page = browser.get("/api/dead-letters/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert "Dead Letter List" in page.content.decode() and "p-1" in page.content.decode()
    browser.force_login(operator)
    # A session is a browser's: a POST without the CSRF token is refused, and nothing retried.
    refused = browser.post("/api/dead-letters/retry/", {"ids": [dead.pk]}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    dead.refresh_from_db()
    assert dead.status == "dead"


def test_a_path_under_api_that_matches_nothing_is_a_json_404(viewer: User) -> None:
    client = _client(viewer)
    for path in ["/api/backfills/1.5/", "/api/nothing/"]:
        response = client.get(path)
        assert (response.status_code, response.json()) == (404, {"detail": "Not found."}), path
    assert client.get("/nothing/")["Content-Type"].startswith("text/html")


def test_every_request_body_is_json(operator: User, site: WixSite) -> None:
    response = _client(operator).post("/api/backfills/", {"site": site.pk})  # a form, not JSON
    assert response.status_code == 415 and not BackfillRun.objects.exists()
