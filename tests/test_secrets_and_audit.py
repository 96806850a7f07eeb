"""Secrets bound to their use (issue 10, point 2), endpoint paths (point 6) and an audit log
that tells the truth after a crash (point 7)."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
import responses
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from sync.models import (
    EntityType,
    ExternalEndpoint,
    ExternalSystem,
    FieldMapping,
    OutboundWork,
    Policy,
    SyncLog,
    WixSite,
)
from sync.services.mirrors import policy_upsert_from_wix
from sync.services.push import push_drain, push_enqueue, push_release_stuck, work_execute
from tests.conftest import client_for, wix_payload

pytestmark = pytest.mark.django_db
TARGET = "https://tickets.test/api"
POLICY = wix_payload("policy__get")["policy"]
TOKEN = "tok-Sup3r/secret+value"


@pytest.fixture
def system(monkeypatch: pytest.MonkeyPatch) -> ExternalSystem:
    monkeypatch.setenv("EXTERNAL_TEST_TOKEN", TOKEN)
    system = ExternalSystem.objects.create(
        name="Tickets", base_url=TARGET, auth_secret_env="EXTERNAL_TEST_TOKEN"
    )
    ExternalEndpoint.objects.create(
        system=system,
        entity_type=EntityType.POLICY,
        create_path="policies",
        update_path="policies/{external_id}",
        delete_path="policies/{external_id}",
        id_path="id",
    )
    FieldMapping.objects.create(
        system=system, entity_type=EntityType.POLICY, source_path="name", target_field="title"
    )
    return system


def _queue(site: WixSite) -> OutboundWork:
    policy_upsert_from_wix(site=site, data=POLICY)
    push_enqueue(site=site, entity_type=EntityType.POLICY, wix_ids=[POLICY["id"]], trigger="webhook")
    return OutboundWork.objects.get(status="pending")


# --- point 2: each kind names only its own prefix ---------------------------------------------
@pytest.mark.parametrize("name", ["WIX_API_KEY", "MARKETING_KEY", "SECRET_KEY", "EXTERNAL_"])
def test_a_system_may_only_name_an_external_variable(system: ExternalSystem, name: str) -> None:
    system.auth_secret_env = name
    with pytest.raises(ValidationError) as refused:
        system.full_clean()
    assert "auth_secret_env" in refused.value.message_dict


@pytest.mark.parametrize("field", ["api_key_env", "app_secret_env"])
def test_a_site_may_only_name_a_wix_variable(site: WixSite, field: str) -> None:
    setattr(site, field, "EXTERNAL_TICKETING_TOKEN")
    with pytest.raises(ValidationError) as refused:
        site.full_clean()
    assert field in refused.value.message_dict


@responses.activate
def test_a_system_saved_with_the_wix_key_never_sends_it(site: WixSite, system: ExternalSystem) -> None:
    # As if saved before the rule (or straight into the database): the read refuses it too.
    ExternalSystem.objects.filter(pk=system.pk).update(auth_secret_env="WIX_TEST_API_KEY")
    work = _queue(site)
    assert work_execute(work_id=work.pk) == "gave-up"
    work.refresh_from_db()
    assert "use a variable starting with EXTERNAL_" in work.last_error
    assert len(responses.calls) == 0


@pytest.mark.parametrize(
    ("auth", "sent"),
    [
        ({"auth_type": "bearer"}, f"Bearer {TOKEN}"),
        ({"auth_type": "header", "auth_header": "X-Api-Key"}, TOKEN),
        ({"auth_type": "basic", "auth_username": "portal"}, None),
    ],
)
@responses.activate
def test_a_target_that_echoes_its_credential_leaves_it_nowhere_staff_can_read(
    site: WixSite, system: ExternalSystem, viewer: User, auth: dict, sent: str | None
) -> None:
    ExternalSystem.objects.filter(pk=system.pk).update(**auth)

    def echo(request: object) -> tuple[int, dict, str]:
        headers = dict(request.headers)  # type: ignore[attr-defined]
        body = {"message": f"bad token {headers}", "echo": {"token": TOKEN, "quoted": json.dumps(TOKEN)}}
        return 400, {}, json.dumps(body)

    responses.add_callback(responses.POST, f"{TARGET}/policies", callback=echo)
    work = _queue(site)
    work_execute(work_id=work.pk)
    work.refresh_from_db()
    log = SyncLog.objects.get()
    if sent:
        assert (
            responses.calls[0].request.headers.get("Authorization" if "Bearer" in sent else "X-Api-Key")
            == sent
        )
    assert work.status == "dead" and "[secret removed]" in work.last_error
    stored = " ".join([log.request_excerpt, log.response_excerpt, log.error, log.note, work.last_error])
    assert TOKEN not in stored and "[secret removed]" in log.response_excerpt
    assert "cG9ydGFs" not in stored  # base64 of "portal:…", the basic credential as sent
    page = (
        client_for(viewer)
        .get(reverse("admin:sync_policy_change", args=[Policy.objects.get().pk]))
        .content.decode()
    )
    assert "[secret removed]" in page  # the timeline shows the call, scrubbed
    assert TOKEN not in page and TOKEN.replace("/", "&#x2F;") not in page
    for url in ("admin:sync_synclog_change", "admin:sync_outboundwork_change"):
        pk = log.pk if "synclog" in url else work.pk
        assert TOKEN not in client_for(viewer).get(reverse(url, args=[pk])).content.decode()


def test_only_the_endpoint_permission_changes_where_a_secret_goes(
    system: ExternalSystem, operator: User
) -> None:
    url = reverse("admin:sync_externalsystem_change", args=[system.pk])
    form = {
        "name": system.name,
        "kind": "generic_rest",
        "is_active": "on",
        "base_url": "http://127.0.0.1:9/steal",
        "timeout": "10",
        "auth_type": "bearer",
        "auth_secret_env": "EXTERNAL_OTHER",
        "auth_username": "",
        "auth_header": "",
        "organizer": "",
        "default_currency": "EUR",
        "drift_action": "report",
        "endpoints-TOTAL_FORMS": "0",
        "endpoints-INITIAL_FORMS": "1",
        "mappings-TOTAL_FORMS": "0",
        "mappings-INITIAL_FORMS": "1",
    }
    page = client_for(operator).get(url).content.decode()
    assert 'name="base_url"' not in page and TARGET in page  # shown, not editable
    client_for(operator).post(url, form)
    system.refresh_from_db()
    assert (system.base_url, system.auth_secret_env) == (TARGET, "EXTERNAL_TEST_TOKEN")
    operator.user_permissions.add(Permission.objects.get(codename="change_system_endpoint"))
    operator = User.objects.get(pk=operator.pk)
    form["base_url"] = "https://tickets.example.com/api"
    client_for(operator).post(url, form)
    system.refresh_from_db()
    assert (system.base_url, system.auth_secret_env) == ("https://tickets.example.com/api", "EXTERNAL_OTHER")
    assert client_for(operator).get(reverse("admin:sync_externalsystem_add")).status_code == 403


# --- point 6: endpoint paths ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "path"),
    [
        ("update_path", "policies/{external_id.__class__.__mro__}"),
        ("update_path", "policies/{wix_id}"),
        ("update_path", "policies/{}"),
        ("create_path", "policies/{external_id}"),
        ("delete_path", "//evil.test/policies/{external_id}"),
        ("delete_path", "policies/ {external_id}"),
    ],
)
def test_an_endpoint_path_may_only_hold_the_external_id(
    system: ExternalSystem, field: str, path: str
) -> None:
    endpoint = system.endpoints.get()
    setattr(endpoint, field, path)
    with pytest.raises(ValidationError) as refused:
        endpoint.full_clean()
    assert field in refused.value.message_dict


@responses.activate
def test_the_external_id_is_url_quoted_and_an_old_bad_path_is_a_dead_letter(
    site: WixSite, system: ExternalSystem
) -> None:
    responses.post(f"{TARGET}/policies", status=201, json={"id": "a/b?c=d#e"})
    update = responses.put(f"{TARGET}/policies/a%2Fb%3Fc%3Dd%23e", status=200, json={})
    work_execute(work_id=_queue(site).pk)
    policy_upsert_from_wix(
        site=site, data={**POLICY, "name": "New", "revision": str(int(POLICY["revision"]) + 1)}
    )
    push_enqueue(site=site, entity_type=EntityType.POLICY, wix_ids=[POLICY["id"]], trigger="webhook")
    work_execute(work_id=OutboundWork.objects.get(status="pending").pk)
    assert update.call_count == 1
    # A path saved before the check (straight into the database) never reaches the target.
    ExternalEndpoint.objects.update(update_path="policies/{external_id.__class__}")
    policy_upsert_from_wix(
        site=site, data={**POLICY, "name": "Newer", "revision": str(int(POLICY["revision"]) + 2)}
    )
    push_enqueue(site=site, entity_type=EntityType.POLICY, wix_ids=[POLICY["id"]], trigger="webhook")
    work = OutboundWork.objects.get(status="pending")
    work_execute(work_id=work.pk)
    work.refresh_from_db()
    assert work.status == "dead" and "Only {external_id} may be used" in work.last_error
    assert update.call_count == 1


# --- point 7: a "sending" row before every request --------------------------------------------
class WorkerKilled(BaseException):
    """Stands for SIGKILL mid-request: nothing after it in the worker runs."""


@responses.activate
def test_a_worker_killed_mid_call_leaves_the_call_in_the_log(site: WixSite, system: ExternalSystem) -> None:
    seen: list[tuple[str, str]] = []

    def die(request: object) -> tuple[int, dict, str]:
        seen.extend(SyncLog.objects.values_list("status", "request_excerpt"))
        raise WorkerKilled

    responses.add_callback(responses.POST, f"{TARGET}/policies", callback=die)
    work = _queue(site)
    with pytest.raises(WorkerKilled):
        work_execute(work_id=work.pk)
    assert len(seen) == 1 and seen[0][0] == "sending" and seen[0][1].startswith(f"POST {TARGET}/policies")
    log = SyncLog.objects.get()
    assert (log.status, log.work_id, log.action) == ("sending", work.pk, "create")
    # The dispatcher returns the work once its worker is presumed dead, and says so on the call.
    OutboundWork.objects.filter(pk=work.pk).update(claimed_at=timezone.now() - dt.timedelta(hours=1))
    assert push_release_stuck() == 1
    log.refresh_from_db()
    assert log.status == "interrupted" and "may or may not have applied it" in log.error
    assert OutboundWork.objects.get(pk=work.pk).status == "pending"


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_a_drain_commits_each_sending_row_before_its_request(site: WixSite, system: ExternalSystem) -> None:
    """The drain sends from its own thread; the row must be visible to another connection
    (committed) by the time the request leaves, and finished after the answer."""
    seen: list[bool] = []

    def create(request: object) -> tuple[int, dict, str]:
        assert threading.current_thread() is not threading.main_thread()
        title = json.loads(request.body)["title"]  # type: ignore[attr-defined]
        try:  # this thread's own connection: sees only what is committed
            sending = SyncLog.objects.filter(status="sending", request_excerpt__contains=title)
            seen.append(sending.exists())
        finally:
            connection.close()
        return 201, {}, json.dumps({"id": f"ext-{title}"})

    responses.add_callback(responses.POST, f"{TARGET}/policies", callback=create)
    policy_upsert_from_wix(site=site, data=POLICY)
    policy_upsert_from_wix(site=site, data={**POLICY, "id": "p-2", "name": "Second policy"})
    push_enqueue(site=site, entity_type=EntityType.POLICY, wix_ids=[POLICY["id"], "p-2"], trigger="webhook")
    push_drain(budget_seconds=10)
    assert seen == [True, True]
    assert sorted(SyncLog.objects.values_list("status", "http_status")) == [("success", 201)] * 2
