"""Deliveries sent concurrently, duplicated and out of order, processed by racing workers."""

from __future__ import annotations

import json
import random
import threading

import pytest
import responses
from django.db import connections
from django.test import Client

from sync.models import OutboundWork, Policy, WebhookDelivery, WixSite
from sync.services.push import push_drain
from sync.services.webhook_handlers import webhook_drain, webhook_process
from tests.conftest import rest_target
from tests.test_webhooks import POLICY, PUBLIC, envelope, sign

pytestmark = pytest.mark.django_db(transaction=True)


def _in_threads(count: int, work: list, target: object) -> list:
    chunks = [work[i::count] for i in range(count)]
    results: list = []
    barrier = threading.Barrier(count)

    def run(chunk: list) -> None:
        try:
            barrier.wait()
            results.extend(target(item) for item in chunk)  # type: ignore[operator]
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@responses.activate
def test_concurrent_shuffled_duplicated_deliveries_end_at_the_newest_revision(site: WixSite) -> None:
    site.webhook_public_keys = PUBLIC
    site.save()
    system = rest_target(mappings=())
    system.mappings.create(
        entity_type="policy", source_path="revision", target_field="rev", transform="integer"
    )
    creates = responses.post("https://t.test/p", json={"id": "ext-1"})
    updates = responses.put("https://t.test/p/ext-1", json={"id": "ext-1"})

    bodies = [
        sign(
            envelope("updated", {**POLICY, "revision": str(r), "name": f"v{r}"}, event_id=f"e{r}"),
            "wix.events.v2.policy_updated",
        )
        for r in range(1, 9)
    ]
    deliveries = bodies * 3
    random.Random(11).shuffle(deliveries)
    statuses = _in_threads(
        4,
        deliveries,
        lambda body: Client().post("/webhooks/wix/", body, content_type="text/plain").status_code,
    )
    assert statuses == [200] * len(deliveries)
    assert WebhookDelivery.objects.count() == 8  # each unique delivery stored once

    # Four drains race (django-q2 may also hand one wake-up out twice): each delivery is
    # claimed once, an entity's deliveries one at a time, in revision order.
    processed = _in_threads(4, [1, 2, 3, 4], lambda _: webhook_drain(budget_seconds=20))
    assert sum(processed) == 8
    assert set(WebhookDelivery.objects.values_list("attempts", flat=True)) == {1}
    assert [
        webhook_process(delivery_id=pk) for pk in WebhookDelivery.objects.values_list("pk", flat=True)
    ] == ["duplicate"] * 8
    _in_threads(3, [1, 2, 3], lambda _: push_drain(budget_seconds=20))
    push_drain(budget_seconds=20)

    assert Policy.objects.get().revision == 8
    assert creates.call_count == 1
    last = json.loads((updates.calls[-1] if updates.call_count else creates.calls[-1]).request.body)
    assert last == {"rev": 8}
    assert not OutboundWork.objects.exclude(status="done").exists()
