from __future__ import annotations

import datetime as dt

import pytest
import responses
from django.utils import timezone
from django_q.models import OrmQ

from sync.models import BackfillRun, BackfillStep, Event, Policy, TicketDefinition, WixSite
from sync.services.backfill import (
    backfill_execute,
    backfill_release_stuck,
    backfill_resume,
    backfill_start,
)
from tests.conftest import WIX, wix_payload

pytestmark = pytest.mark.django_db

EVENT = wix_payload("event__query")["events"][0]
EVENT_ID = EVENT["id"]


@pytest.fixture(autouse=True)
def _fast_backoff(settings: pytest.FixtureRequest) -> None:
    settings.WIX_BACKOFF_BASE = 0.001
    settings.WIX_BACKOFF_CAP = 0.001


def _wix_site_with_one_event(
    policies: list[dict] | None = None, status: int = 200, body: dict | None = None
) -> None:
    responses.post(f"{WIX}/events/v3/events/query", json=wix_payload("event__query"))
    responses.post(
        f"{WIX}/events/v2/policies/query",
        status=status,
        json=body
        if body is not None
        else {
            "policies": policies or [wix_payload("policy__get")["policy"]],
            "metadata": {"count": 1, "total": 1},
        },
    )
    td = wix_payload("ticket_definition__fixed_price")["ticketDefinition"]
    options = wix_payload("ticket_definitions__query_pricing_options")
    responses.post(
        f"{WIX}/events/v3/ticket-definitions/query",
        json={"ticketDefinitions": [td, *options["ticketDefinitions"]], "metadata": {"total": 2}},
    )


def _run(site: WixSite, event_wix_id: str = "") -> BackfillRun:
    run, created = backfill_start(site=site, event_wix_id=event_wix_id, trigger=BackfillRun.Trigger.COMMAND)
    assert created
    backfill_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


@responses.activate
def test_a_backfill_mirrors_everything_and_a_second_run_changes_nothing(site: WixSite) -> None:
    _wix_site_with_one_event()
    first = _run(site)
    assert (first.status, first.fetched, first.created, first.updated, first.unchanged, first.failed) == (
        "succeeded",
        4,
        4,
        0,
        0,
        0,
    )
    done = list(first.steps.filter(status="done").values_list("event_wix_id", flat=True))
    assert done == [EVENT_ID] and first.started_at and first.finished_at
    # The console's per-type progress: what each step read, by entity type.
    assert first.steps.get().fetched_by_type == {"policy": 1, "ticket_definition": 2}
    assert (Event.objects.count(), Policy.objects.count(), TicketDefinition.objects.count()) == (1, 1, 2)
    second = _run(site)
    assert (second.status, second.fetched, second.created, second.updated, second.unchanged) == (
        "succeeded",
        4,
        0,
        0,
        4,
    )


@responses.activate
def test_starting_a_backfill_queues_one_task_and_a_second_start_returns_the_same_run(
    site: WixSite, django_capture_on_commit_callbacks: object
) -> None:
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        run, created = backfill_start(site=site, trigger=BackfillRun.Trigger.ADMIN)
        again, created_again = backfill_start(site=site, trigger=BackfillRun.Trigger.API)
    assert created and not created_again and again.pk == run.pk
    assert BackfillRun.objects.count() == 1


@responses.activate
def test_a_duplicate_delivery_of_the_task_does_nothing(site: WixSite) -> None:
    _wix_site_with_one_event()
    run = _run(site)
    assert backfill_execute(run_id=run.pk) == "duplicate"
    run.refresh_from_db()
    assert run.attempts == 1 and run.fetched == 4


@responses.activate
def test_a_wix_4xx_is_not_retried_and_shows_wix_message_in_the_run(site: WixSite) -> None:
    _wix_site_with_one_event(
        status=403,
        body={
            "message": "Missing permission SCOPE.DC-EVENTS.READ-POLICIES",
            "details": {"applicationError": {"code": "PERMISSION_DENIED", "description": "denied"}},
        },
    )
    run = _run(site)
    assert run.status == "partial" and run.failed == 1
    assert run.errors == [
        {
            "where": f"event {EVENT_ID}",
            "type": "WixAuthError",
            "attempt": 1,
            "error": "HTTP 403: PERMISSION_DENIED: Missing permission SCOPE.DC-EVENTS.READ-POLICIES",
        }
    ]
    policy_calls = [c for c in responses.calls if c.request.url.endswith("/policies/query")]
    assert len(policy_calls) == 1
    assert run.steps.get().status == "failed"  # not done: a resume tries it again


@responses.activate
def test_a_malformed_entity_fails_alone_and_names_the_field(site: WixSite) -> None:
    broken = {**wix_payload("policy__get")["policy"], "id": "broken", "revision": "many"}
    _wix_site_with_one_event(policies=[broken, wix_payload("policy__get")["policy"]])
    run = _run(site)
    assert run.status == "partial" and (run.created, run.failed) == (4, 1)
    assert "policy.revision is not an integer string" in run.errors[0]["error"]
    assert Policy.objects.filter(wix_id="broken").count() == 0


@responses.activate
def test_wix_down_makes_the_run_wait_and_it_finishes_without_staff(site: WixSite) -> None:
    responses.post(
        f"{WIX}/events/v3/events/query", status=503, json={"message": "unavailable", "details": {}}
    )
    run = _run(site)
    # The wait is in the row (the job engine), not in a sleeping worker.
    assert run.status == "queued" and run.not_before > timezone.now() and "HTTP 503" in run.last_error
    responses.reset()
    _wix_site_with_one_event()
    BackfillRun.objects.filter(pk=run.pk).update(not_before=None)  # time passes
    assert backfill_execute(run_id=run.pk) == "succeeded"
    run.refresh_from_db()
    assert (run.status, run.created, run.attempts, run.failed) == ("succeeded", 4, 2, 0)


@responses.activate
def test_wix_down_past_the_retry_schedule_fails_the_run_and_staff_resume_it(site: WixSite) -> None:
    from sync.services.backfill import RUN_RETRY

    responses.post(
        f"{WIX}/events/v3/events/query", status=503, json={"message": "unavailable", "details": {}}
    )
    run, _ = backfill_start(site=site, trigger=BackfillRun.Trigger.COMMAND)
    for _ in range(RUN_RETRY.max_attempts):
        BackfillRun.objects.filter(pk=run.pk).update(not_before=None)
        backfill_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and "HTTP 503" in run.errors[0]["error"]
    responses.reset()
    _wix_site_with_one_event()
    assert backfill_resume(run=run)
    assert backfill_execute(run_id=run.pk) == "succeeded"
    run.refresh_from_db()
    assert (run.status, run.created, run.failed) == ("succeeded", 4, 0)
    assert [e["attempt"] for e in run.errors] == [RUN_RETRY.max_attempts]  # the history stays


@responses.activate
def test_a_resumed_run_skips_the_events_already_done(site: WixSite) -> None:
    _wix_site_with_one_event()
    run, _ = backfill_start(site=site, trigger=BackfillRun.Trigger.ADMIN)
    BackfillRun.objects.filter(pk=run.pk).update(status="failed")
    BackfillStep.objects.create(run=run, event_wix_id=EVENT_ID, status="done")
    run.refresh_from_db()
    assert backfill_resume(run=run)
    backfill_execute(run_id=run.pk)
    assert [c.request.url for c in responses.calls] == [f"{WIX}/events/v3/events/query"]


@responses.activate
def test_a_run_fans_out_one_step_per_event_that_any_worker_takes(site: WixSite) -> None:
    from portal import jobs
    from sync.services.backfill import backfill_drain

    _wix_site_with_one_event()
    run, _ = backfill_start(site=site, trigger=BackfillRun.Trigger.ADMIN)
    assert jobs.claim(BackfillRun, run.pk)
    from sync.services.backfill import _run_claimed

    _run_claimed(run.pk)  # a worker lists the events...
    run.refresh_from_db()
    step = run.steps.get()
    assert (run.status, step.status, step.event_wix_id) == ("running", "queued", EVENT_ID)
    assert backfill_drain(budget_seconds=10).endswith("backfilled 1 event(s)")  # ...another reads them
    run.refresh_from_db()
    assert (run.status, run.fetched, run.created) == ("succeeded", 4, 4)


def test_the_sweep_releases_runs_and_steps_whose_worker_died_and_settles_finished_runs(
    site: WixSite,
) -> None:
    old = timezone.now() - dt.timedelta(hours=1)
    listing, _ = backfill_start(site=site, trigger=BackfillRun.Trigger.ADMIN)
    BackfillRun.objects.filter(pk=listing.pk).update(status="listing", claimed_at=old)
    running = BackfillRun.objects.create(site=site, event_wix_id="e1", trigger="api", status="running")
    stuck = BackfillStep.objects.create(run=running, event_wix_id="e1", status="running", claimed_at=old)
    ended = BackfillRun.objects.create(site=site, event_wix_id="e2", trigger="api", status="running")
    BackfillStep.objects.create(run=ended, event_wix_id="e2", status="done")
    assert backfill_release_stuck() == 2
    assert BackfillRun.objects.get(pk=listing.pk).status == "queued"
    assert BackfillStep.objects.get(pk=stuck.pk).status == "queued"
    assert BackfillRun.objects.get(pk=running.pk).status == "running"  # its step waits again
    assert BackfillRun.objects.get(pk=ended.pk).status == "succeeded"


def test_only_failed_or_died_runs_resume(site: WixSite) -> None:
    run, _ = backfill_start(site=site, trigger=BackfillRun.Trigger.ADMIN)
    assert not backfill_resume(run=run)  # still queued
    BackfillRun.objects.filter(pk=run.pk).update(status="succeeded")
    assert not backfill_resume(run=run)


def test_a_missing_api_key_fails_the_run_with_the_variable_name(
    site: WixSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WIX_TEST_API_KEY")
    run = _run(site)
    assert run.status == "failed" and "WIX_TEST_API_KEY" in run.errors[0]["error"]


def test_queued_work_reaches_the_configured_broker(
    site: WixSite, django_capture_on_commit_callbacks: object
) -> None:
    """Round trip through the real broker (the ORM, or Redis when REDIS_URL is set)."""
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage

    broker = get_broker()
    broker.purge_queue()
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        backfill_start(site=site, trigger=BackfillRun.Trigger.API)
    packages = [SignedPackage.loads(task[1]) for task in broker.dequeue() or []]
    assert [p["func"] for p in packages] == ["sync.tasks.backfill_drain_task"]
    assert isinstance(packages[0]["args"][0], float)  # the wake-up time; the run is a row
    if not settings_has_redis():
        assert OrmQ.objects.count() == 1


def settings_has_redis() -> bool:
    from django.conf import settings

    return bool(settings.REDIS_URL)
