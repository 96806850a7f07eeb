from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
import requests
import responses
from django.utils import timezone

from sync.models import (
    EntityType,
    ExternalEndpoint,
    ExternalLink,
    ExternalSystem,
    FieldMapping,
    OutboundWork,
    SyncLog,
)
from sync.services.mirrors import policy_delete_from_wix, policy_upsert_from_wix
from sync.services.push import RETRY, push_enqueue, push_release_stuck, work_execute, work_retry
from tests.conftest import wix_payload

pytestmark = pytest.mark.django_db
TARGET = "https://tickets.test/api"
POLICY = wix_payload("policy__get")["policy"]


@pytest.fixture
def system(monkeypatch: pytest.MonkeyPatch) -> ExternalSystem:
    monkeypatch.setenv("EXTERNAL_TEST_TOKEN", "tok-secret")
    system = ExternalSystem.objects.create(
        name="Tickets", base_url=TARGET, auth_secret_env="EXTERNAL_TEST_TOKEN"
    )
    ExternalEndpoint.objects.create(
        system=system,
        entity_type=EntityType.POLICY,
        create_path="policies",
        update_path="policies/{external_id}",
        delete_path="policies/{external_id}",
        id_path="data.id",
    )
    for order, (source, target) in enumerate([("name", "title"), ("body", "text")]):
        FieldMapping.objects.create(
            system=system,
            entity_type=EntityType.POLICY,
            source_path=source,
            target_field=target,
            order=order,
            required=True,
        )
    return system


def _push_policy(site: object, data: dict | None = None) -> OutboundWork:
    policy_upsert_from_wix(site=site, data=data or POLICY)  # type: ignore[arg-type]
    push_enqueue(site=site, entity_type=EntityType.POLICY, wix_ids=[POLICY["id"]], trigger="webhook")  # type: ignore[arg-type]
    work = OutboundWork.objects.filter(status="pending").get()
    work_execute(work_id=work.pk)
    work.refresh_from_db()
    return work


@responses.activate
def test_first_push_creates_and_links_then_an_unchanged_payload_makes_no_call(
    site: object, system: ExternalSystem
) -> None:
    create = responses.post(f"{TARGET}/policies", status=201, json={"data": {"id": 77}})
    work = _push_policy(site)
    assert (work.status, work.outcome, work.attempts) == ("done", "created", 1)
    body = json.loads(create.calls[0].request.body)
    assert body == {"title": "Refund policy", "text": POLICY["body"]}
    headers = create.calls[0].request.headers
    assert headers["Authorization"] == "Bearer tok-secret"
    assert headers["Idempotency-Key"] == f"wix-portal:{system.pk}:policy:{POLICY['id']}"
    link = ExternalLink.objects.get()
    assert (link.external_id, link.last_pushed_revision) == ("77", 2)
    log = SyncLog.objects.get()
    assert (log.action, log.status, log.http_status, log.trigger) == ("create", "success", 201, "webhook")
    assert (
        log.request_excerpt.startswith(f"POST {TARGET}/policies\n")
        and "tok-secret" not in log.request_excerpt
    )
    assert log.duration_ms is not None and '"id": 77' in log.response_excerpt

    again = _push_policy(site)
    assert (again.status, again.outcome) == ("done", "unchanged")
    assert len(responses.calls) == 1 and SyncLog.objects.count() == 1


@responses.activate
def test_a_create_after_one_whose_outcome_is_unknown_is_followed_by_an_update(
    site: object, system: ExternalSystem, django_capture_on_commit_callbacks: object
) -> None:
    """A worker died during a create (or its answer never came), and the entity changed before
    the work came back: the second create, answered by its Idempotency-Key with the record the
    first one made, may have changed nothing. The link does not claim the new payload is there,
    and an update sends it (seen in the concurrency proof: the target kept the first revision)."""
    create = responses.post(f"{TARGET}/policies", status=201, json={"data": {"id": "ext-1"}})
    update = responses.put(f"{TARGET}/policies/ext-1", json={"data": {"id": "ext-1"}})
    policy_upsert_from_wix(site=site, data=POLICY)  # type: ignore[arg-type]
    push_enqueue(site=site, entity_type=EntityType.POLICY, wix_ids=[POLICY["id"]], trigger="webhook")  # type: ignore[arg-type]
    first = OutboundWork.objects.get()
    SyncLog.objects.create(
        work=first,
        system=system,
        entity_type=EntityType.POLICY,
        wix_id=POLICY["id"],
        action="create",
        status=SyncLog.Status.INTERRUPTED,
    )
    OutboundWork.objects.filter(pk=first.pk).update(status="done", outcome="superseded")
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        work = _push_policy(site, {**POLICY, "revision": "3", "name": "Refunds"})
    assert (work.outcome, create.call_count) == ("created", 1)
    assert ExternalLink.objects.get().last_payload_hash == ""
    follow_up = OutboundWork.objects.get(status="pending")
    assert work_execute(work_id=follow_up.pk) == "updated"
    assert json.loads(update.calls[0].request.body) == {"title": "Refunds", "text": POLICY["body"]}
    assert ExternalLink.objects.get().last_payload_hash != ""


@responses.activate
def test_an_update_never_overwrites_the_link_and_a_tombstone_deletes(
    site: object, system: ExternalSystem
) -> None:
    responses.post(f"{TARGET}/policies", status=201, json={"data": {"id": "ext-1"}})
    update = responses.put(f"{TARGET}/policies/ext-1", json={"data": {"id": "something-else"}})
    delete = responses.delete(f"{TARGET}/policies/ext-1", status=204)
    _push_policy(site)
    work = _push_policy(site, {**POLICY, "revision": "3", "name": "Refunds"})
    assert work.outcome == "updated"
    assert json.loads(update.calls[0].request.body) == {"title": "Refunds", "text": POLICY["body"]}
    link = ExternalLink.objects.get()
    assert (link.external_id, link.last_pushed_revision) == ("ext-1", 3)

    policy_delete_from_wix(site=site, wix_id=POLICY["id"])  # type: ignore[arg-type]
    push_enqueue(site=site, entity_type=EntityType.POLICY, wix_ids=[POLICY["id"]], trigger="webhook")  # type: ignore[arg-type]
    work = OutboundWork.objects.get(status="pending")
    assert work_execute(work_id=work.pk) == "deleted"
    assert delete.call_count == 1
    link.refresh_from_db()
    assert link.deleted_at is not None and link.external_id == "ext-1"
    push_enqueue(site=site, entity_type=EntityType.POLICY, wix_ids=[POLICY["id"]], trigger="resync")  # type: ignore[arg-type]
    assert work_execute(work_id=OutboundWork.objects.get(status="pending").pk) == "unchanged"
    assert delete.call_count == 1


@responses.activate
def test_a_failing_target_is_retried_with_backoff_then_dead_lettered(
    site: object, system: ExternalSystem
) -> None:
    responses.post(f"{TARGET}/policies", status=503, json={"message": "maintenance"})
    work = _push_policy(site)
    assert (work.status, work.last_error) == ("pending", "HTTP 503: maintenance")
    wait = (work.not_before - timezone.now()).total_seconds()
    assert RETRY.intervals[0] * 0.7 <= wait <= RETRY.intervals[0] * 1.3
    assert work_execute(work_id=work.pk) == "not-claimed"  # not due yet
    for _ in RETRY.intervals:
        OutboundWork.objects.filter(pk=work.pk).update(not_before=None)
        outcome = work_execute(work_id=work.pk)
    assert outcome == "gave-up"
    work.refresh_from_db()
    assert (work.status, work.attempts) == ("dead", len(RETRY.intervals) + 1)
    assert SyncLog.objects.filter(status="retryable").count() == len(RETRY.intervals) + 1
    assert not ExternalLink.objects.exists()

    responses.replace(responses.POST, f"{TARGET}/policies", status=201, json={"data": {"id": "ok"}})
    assert work_retry(work_ids=[work.pk]) == 1
    assert work_execute(work_id=work.pk) == "created"
    assert ExternalLink.objects.get().external_id == "ok"


@pytest.mark.parametrize(
    ("response", "retried"),
    [
        ({"status": 400, "json": {"errors": {"title": ["too long"]}}}, False),
        ({"status": 422, "body": "unprocessable"}, False),
        ({"status": 408, "body": ""}, True),
        ({"status": 429, "body": ""}, True),
        ({"body": requests.ConnectionError("refused")}, True),
        ({"body": requests.Timeout("slow")}, True),
    ],
)
@responses.activate
def test_4xx_is_permanent_and_the_rest_is_retried(
    site: object, system: ExternalSystem, response: dict, retried: bool
) -> None:
    responses.post(f"{TARGET}/policies", **response)
    work = _push_policy(site)
    assert work.status == ("pending" if retried else "dead")
    assert work.last_error
    if not retried:
        assert SyncLog.objects.get().status == "permanent"
        assert "too long" in work.last_error or "unprocessable" in work.last_error


@responses.activate
def test_a_2xx_create_without_an_id_is_an_error_not_a_silent_link(
    site: object, system: ExternalSystem
) -> None:
    responses.post(f"{TARGET}/policies", status=201, json={"id": 5})  # id_path is data.id
    work = _push_policy(site)
    assert work.status == "dead" and "without an id at 'data.id'" in work.last_error
    assert not ExternalLink.objects.exists()


@responses.activate
def test_a_mapping_error_is_a_dead_letter_without_a_call(site: object, system: ExternalSystem) -> None:
    FieldMapping.objects.create(
        system=system, entity_type=EntityType.POLICY, source_path="id", target_field="n", transform="integer"
    )
    work = _push_policy(site)
    assert work.status == "dead" and "is not an integer" in work.last_error
    assert len(responses.calls) == 0


def test_a_second_change_joins_the_pending_work(site: object, system: ExternalSystem) -> None:
    for _ in range(3):
        push_enqueue(
            site=site,
            entity_type=EntityType.POLICY,
            wix_ids=[POLICY["id"], POLICY["id"]],  # type: ignore[arg-type]
            trigger="webhook",
        )
    assert OutboundWork.objects.count() == 1


@responses.activate
def test_an_entity_in_flight_is_not_claimed_twice_and_stuck_work_returns(
    site: object, system: ExternalSystem
) -> None:
    policy_upsert_from_wix(site=site, data=POLICY)  # type: ignore[arg-type]
    push_enqueue(site=site, entity_type=EntityType.POLICY, wix_ids=[POLICY["id"]], trigger="webhook")  # type: ignore[arg-type]
    first = OutboundWork.objects.get()
    # A worker claimed it and was killed mid-push.
    OutboundWork.objects.filter(pk=first.pk).update(status="in_flight", claimed_at=timezone.now())
    push_enqueue(site=site, entity_type=EntityType.POLICY, wix_ids=[POLICY["id"]], trigger="webhook")  # type: ignore[arg-type]
    second = OutboundWork.objects.get(status="pending")
    assert work_execute(work_id=second.pk) == "busy"
    assert push_release_stuck() == 0  # not stuck yet
    OutboundWork.objects.filter(pk=first.pk).update(claimed_at=timezone.now() - dt.timedelta(hours=1))
    assert push_release_stuck() == 0
    first.refresh_from_db()  # the pending row pushes the latest state
    assert (first.status, first.outcome) == ("done", "superseded")
    responses.post(f"{TARGET}/policies", status=201, json={"data": {"id": "x"}})
    assert work_execute(work_id=second.pk) == "created"
    assert len(responses.calls) == 1


@responses.activate
def test_a_worker_released_as_stuck_sends_nothing_afterwards(
    site: object, system: ExternalSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker slow enough to be released (another worker took the row and may have sent a
    newer payload) must not send its older one late: its claim no longer matches."""
    from portal import jobs
    from sync.services.push import drain

    policy_upsert_from_wix(site=site, data=POLICY)  # type: ignore[arg-type]
    push_enqueue(site=site, entity_type=EntityType.POLICY, wix_ids=[POLICY["id"]], trigger="webhook")  # type: ignore[arg-type]
    work = OutboundWork.objects.get()
    prepare = drain._prepare

    def slow_prepare(push: object, cache: object) -> None:
        prepare(push, cache)  # type: ignore[arg-type]
        # Meanwhile the sweep found the row claimed for too long, and another worker took it.
        OutboundWork.objects.filter(pk=work.pk).update(claimed_at=timezone.now() - dt.timedelta(hours=1))
        assert push_release_stuck() == 1
        assert jobs.claim(OutboundWork, work.pk)

    monkeypatch.setattr(drain, "_prepare", slow_prepare)
    responses.post(f"{TARGET}/policies", status=201, json={"data": {"id": "x"}})
    assert work_execute(work_id=work.pk) == "claim-lost"
    assert len(responses.calls) == 0 and not SyncLog.objects.exists()
    work.refresh_from_db()
    assert (work.status, work.attempts) == ("in_flight", 2)  # the other worker's claim, untouched


def test_stuck_work_with_nothing_pending_goes_back_to_the_queue(site: object, system: ExternalSystem) -> None:
    push_enqueue(site=site, entity_type=EntityType.POLICY, wix_ids=["p1"], trigger="webhook")  # type: ignore[arg-type]
    OutboundWork.objects.update(status="in_flight", claimed_at=timezone.now() - dt.timedelta(hours=1))
    assert push_release_stuck() == 1
    work = OutboundWork.objects.get()
    assert work.status == "pending" and "stopped answering" in work.last_error


def test_a_missing_secret_is_a_dead_letter_naming_the_variable(
    site: object, system: ExternalSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EXTERNAL_TEST_TOKEN")
    work = _push_policy(site, copy.deepcopy(POLICY))
    assert work.status == "dead" and "EXTERNAL_TEST_TOKEN" in work.last_error


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        (
            {"auth_type": "basic", "auth_username": "portal"},
            "Authorization",
            "Basic cG9ydGFsOnRvay1zZWNyZXQ=",
        ),
        ({"auth_type": "header", "auth_header": "X-Api-Key"}, "X-Api-Key", "tok-secret"),
        ({"auth_type": "none"}, "Authorization", None),
    ],
)
@responses.activate
def test_every_auth_mode_sends_its_header_and_never_logs_the_secret(
    site: object, system: ExternalSystem, auth: dict, header: str, value: str | None
) -> None:
    ExternalSystem.objects.filter(pk=system.pk).update(**auth)
    create = responses.post(f"{TARGET}/policies", status=201, json={"data": {"id": 1}})
    assert _push_policy(site).outcome == "created"
    assert create.calls[0].request.headers.get(header) == value
    assert "tok-secret" not in SyncLog.objects.get().request_excerpt


@responses.activate
def test_the_lag_from_the_change_on_wix_is_kept_and_measured(site: object, system: ExternalSystem) -> None:
    from portal.metrics import PUSH_LAG_SECONDS

    responses.post(f"{TARGET}/policies", status=201, json={"data": {"id": "x"}})
    policy_upsert_from_wix(site=site, data=POLICY)  # type: ignore[arg-type]
    changed = timezone.now() - dt.timedelta(seconds=3)
    later = changed + dt.timedelta(seconds=1)
    push_enqueue(
        site=site, entity_type=EntityType.POLICY, wix_ids=[POLICY["id"]], trigger="webhook", changed_at=later
    )  # type: ignore[arg-type]
    # A second change joins the pending row, which keeps the earliest one.
    push_enqueue(
        site=site,
        entity_type=EntityType.POLICY,
        wix_ids=[POLICY["id"]],
        trigger="webhook",
        changed_at=changed,
    )  # type: ignore[arg-type]
    work = OutboundWork.objects.get()
    assert work.changed_at == changed
    histogram = PUSH_LAG_SECONDS.labels(system.name)
    before = histogram._sum.get()  # type: ignore[attr-defined]
    assert work_execute(work_id=work.pk) == "created"
    assert 3 <= histogram._sum.get() - before < 60  # type: ignore[attr-defined]
