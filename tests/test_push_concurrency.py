"""Two workers pushing the same entity at the same moment create exactly one external record.

Threads with their own connections race for the row: on PostgreSQL with real
concurrent transactions, on SQLite (a file in WAL mode) with writers queued by its lock.
"""

from __future__ import annotations

import threading
import time

import pytest
import responses
from django.db import connections

from sync.models import EntityType, ExternalLink, ExternalSystem, OutboundWork, SyncLog
from sync.services.mirrors import policy_upsert_from_wix
from sync.services.push import push_enqueue, work_execute
from tests.conftest import rest_target, wix_payload

POLICY = wix_payload("policy__get")["policy"]
pytestmark = pytest.mark.django_db(transaction=True)


def _run_together(count: int, target: callable) -> list[str]:
    barrier = threading.Barrier(count)
    results: list[str] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(target())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@responses.activate
def test_concurrent_workers_create_exactly_one_external_record(site: object) -> None:
    rest_target()
    created = []

    def slow_create(request: object) -> tuple[int, dict, str]:
        time.sleep(0.2)  # the create is in flight while the other workers try
        created.append(1)
        return 201, {}, f'{{"id": "ext-{len(created)}"}}'

    responses.add_callback(responses.POST, "https://t.test/p", callback=slow_create)
    policy_upsert_from_wix(site=site, data=POLICY)  # type: ignore[arg-type]

    # A webhook and a backfill both queue the entity, and four workers race for it.
    push_enqueue(site=site, entity_type=EntityType.POLICY, wix_ids=[POLICY["id"]], trigger="webhook")  # type: ignore[arg-type]
    work = OutboundWork.objects.get()
    results = _run_together(4, lambda: work_execute(work_id=work.pk))
    assert sorted(results).count("created") == 1, results
    push_enqueue(site=site, entity_type=EntityType.POLICY, wix_ids=[POLICY["id"]], trigger="backfill")  # type: ignore[arg-type]
    second = OutboundWork.objects.get(status="pending")
    assert _run_together(4, lambda: work_execute(work_id=second.pk)).count("unchanged") == 1
    assert len(created) == 1
    assert ExternalLink.objects.get().external_id == "ext-1"
    assert SyncLog.objects.count() == 1


@responses.activate
def test_concurrent_enqueues_of_one_entity_make_one_pending_row(site: object) -> None:
    ExternalSystem.objects.create(name="T", base_url="https://t.test", auth_type="none")
    results = _run_together(
        6,
        lambda: str(
            push_enqueue(site=site, entity_type=EntityType.POLICY, wix_ids=[POLICY["id"]], trigger="webhook")
        ),
    )  # type: ignore[arg-type]
    assert sorted(results) == ["0"] * 5 + ["1"]
    assert OutboundWork.objects.count() == 1
