"""Processing a stored delivery: one handler per kind, chosen by ``webhook_route``.

Every handler ends in the same mirror upsert (revision guard, tombstones) and the same
push path as a backfill. A stale or post-deletion version is recorded as stale and
never applied. Wix being unreachable is retried with backoff, then the delivery fails
visibly for staff to replay.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from portal.queue import enqueue
from sync.clients.wix import WixClientError, WixError, WixNotFound
from sync.models import EntityType, OutboundWork, WebhookDelivery, WixSite
from sync.services.mirrors import (
    MirrorDataError,
    UpsertOutcome,
    UpsertResult,
    event_delete_from_wix,
    event_upsert_from_wix,
    policy_delete_from_wix,
    policy_upsert_from_wix,
    ticket_definition_delete_from_wix,
    ticket_definition_upsert_from_wix,
)
from sync.services.push import push_enqueue
from sync.services.webhooks import (
    PROCESS_TASK,
    WebhookMalformed,
    carried_deleted_entity,
    carried_entity,
    order_ticket_definition_ids,
    webhook_route,
)

log = logging.getLogger(__name__)

# Seconds before retry n of a delivery whose processing could not reach Wix; Wix itself
# retries for 48 hours, but the delivery is already stored, so this schedule is ours.
RETRY_INTERVALS: tuple[int, ...] = (10, 60, 300, 1800, 3600)


def _after_upsert(site: WixSite, entity_type: str, result: UpsertResult) -> str:
    if result.outcome in (UpsertOutcome.STALE, UpsertOutcome.TOMBSTONED):
        return "stale"
    if result.changed:
        push_enqueue(
            site=site,
            entity_type=entity_type,
            wix_ids=[result.mirror.wix_id],
            trigger=OutboundWork.Trigger.WEBHOOK,
        )
    return str(result.outcome)


def _upsert_handler(entity_type: str, upsert: Callable[..., UpsertResult]) -> Callable[..., str]:
    def handle(site: WixSite, data: dict[str, Any]) -> str:
        return _after_upsert(site, entity_type, upsert(site=site, data=carried_entity(data)))

    return handle


def _delete_handler(entity_type: str, delete: Callable[..., UpsertResult]) -> Callable[..., str]:
    def handle(site: WixSite, data: dict[str, Any]) -> str:
        when = parse_datetime(data["eventTime"]) if isinstance(data.get("eventTime"), str) else None
        options: dict[str, Any] = {"site": site, "wix_id": data["entityId"], "deleted_at": when}
        parent = carried_deleted_entity(data).get("eventId")
        if entity_type != EntityType.EVENT and isinstance(parent, str):
            # A tombstone of an entity never mirrored still knows its event.
            options["event_wix_id"] = parent
        return _after_upsert(site, entity_type, delete(**options))

    return handle


def _refresh(site: WixSite, ticket_definition_ids: list[str]) -> str:
    """Get each definition with its sales details (the counter's source) and upsert it."""
    client = site.wix_client()
    outcomes = []
    for td_id in dict.fromkeys(ticket_definition_ids):
        try:
            data = client.get_ticket_definition(td_id)
        except WixNotFound:
            outcomes.append("gone")  # deleted since; its own deletion webhook tombstones it
            continue
        outcomes.append(
            _after_upsert(
                site, EntityType.TICKET_DEFINITION, ticket_definition_upsert_from_wix(site=site, data=data)
            )
        )
    return ",".join(outcomes) or "nothing"


def _order_confirmed(site: WixSite, data: dict[str, Any]) -> str:
    return _refresh(site, order_ticket_definition_ids(data))


HANDLERS: dict[str, Callable[[WixSite, dict[str, Any]], str]] = {
    # Events matter to systems that keep them (pretix): a renamed or moved event follows.
    "event_created": _upsert_handler(EntityType.EVENT, event_upsert_from_wix),
    "event_updated": _upsert_handler(EntityType.EVENT, event_upsert_from_wix),
    "event_deleted": _delete_handler(EntityType.EVENT, event_delete_from_wix),
    "policy_created": _upsert_handler(EntityType.POLICY, policy_upsert_from_wix),
    "policy_updated": _upsert_handler(EntityType.POLICY, policy_upsert_from_wix),
    "policy_deleted": _delete_handler(EntityType.POLICY, policy_delete_from_wix),
    "ticket_definition_created": _upsert_handler(
        EntityType.TICKET_DEFINITION, ticket_definition_upsert_from_wix
    ),
    "ticket_definition_updated": _upsert_handler(
        EntityType.TICKET_DEFINITION, ticket_definition_upsert_from_wix
    ),
    "ticket_definition_deleted": _delete_handler(
        EntityType.TICKET_DEFINITION, ticket_definition_delete_from_wix
    ),
    "ticket_definition_refresh": lambda site, data: _refresh(site, [data["entityId"]]),
    "order_confirmed": _order_confirmed,
}


def webhook_process(*, delivery_id: int) -> str:
    now = timezone.now()
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.RECEIVED)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .update(status=WebhookDelivery.Status.PROCESSING, attempts=F("attempts") + 1, processing_since=now)
    )
    if claimed != 1:
        return "duplicate"
    delivery = WebhookDelivery.objects.select_related("site").get(pk=delivery_id)
    assert delivery.site is not None  # only deliveries verified against a site are processed
    payload = delivery.payload or {}
    handler = HANDLERS[webhook_route(payload.get("eventType", ""), payload.get("data") or {}) or ""]
    status, error, outcome = WebhookDelivery.Status.PROCESSED, "", ""
    try:
        outcome = handler(delivery.site, payload["data"])
        if outcome == "stale":
            status = WebhookDelivery.Status.STALE
    except (WebhookMalformed, MirrorDataError, KeyError) as exc:
        status, error = WebhookDelivery.Status.MALFORMED, f"{exc.__class__.__name__}: {exc}"
    except WixClientError as exc:
        status, error = WebhookDelivery.Status.FAILED, str(exc)  # Wix refuses: staff must look
    except WixError as exc:
        if delivery.attempts <= len(RETRY_INTERVALS):
            delay = RETRY_INTERVALS[delivery.attempts - 1] * random.uniform(0.8, 1.2)  # noqa: S311
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                status=WebhookDelivery.Status.RECEIVED,
                error=str(exc),
                processing_since=None,
                not_before=timezone.now() + dt.timedelta(seconds=delay),
            )
            return "retry-scheduled"
        status, error = WebhookDelivery.Status.FAILED, str(exc)
    except Exception as exc:
        log.exception("Webhook delivery %s crashed", delivery_id)
        status, error = WebhookDelivery.Status.FAILED, f"{exc.__class__.__name__}: {exc}"
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=status, error=error, outcome=outcome[:64], processing_since=None, processed_at=timezone.now()
    )
    return outcome or status


def webhook_drain(*, budget_seconds: float = 30.0, batch: int = 50) -> int:
    """Process due deliveries until none is left or the budget is spent.

    Each delivery also has its own task, but a burst of thousands would wait for the
    queue to hand those out one by one; a task that keeps draining after its own delivery
    processes the burst at the speed of the work itself. Claims keep it exactly once:
    a delivery's own task that comes later finds it done ("duplicate").
    """
    deadline = time.monotonic() + budget_seconds
    done = 0
    while time.monotonic() < deadline:
        ids = list(
            WebhookDelivery.objects.filter(status=WebhookDelivery.Status.RECEIVED)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=timezone.now()))
            .order_by("received_at")
            .values_list("pk", flat=True)[:batch]
        )
        random.shuffle(ids)  # parallel drains rarely collide on a claim
        progressed = False
        for delivery_id in ids:
            if time.monotonic() >= deadline:
                break
            if webhook_process(delivery_id=delivery_id) != "duplicate":
                done += 1
                progressed = True
        if not progressed:
            break
    return done


def webhook_replay(*, delivery_ids: list[int]) -> int:
    """Staff: process failed (or stuck) deliveries again; processed ones are left alone."""
    replayable = [
        WebhookDelivery.Status.FAILED,
        WebhookDelivery.Status.RECEIVED,
        WebhookDelivery.Status.PROCESSING,
    ]
    ids = list(
        WebhookDelivery.objects.filter(pk__in=delivery_ids, status__in=replayable).values_list(
            "pk", flat=True
        )
    )
    WebhookDelivery.objects.filter(pk__in=ids).update(
        status=WebhookDelivery.Status.RECEIVED, not_before=None, processing_since=None, attempts=0
    )
    for delivery_id in ids:
        enqueue(PROCESS_TASK, delivery_id)
    return len(ids)


def webhook_dispatch(*, stuck_after: dt.timedelta) -> int:
    """Scheduled: queue deliveries whose retry is due, and those a killed worker left behind."""
    now = timezone.now()
    WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PROCESSING, processing_since__lt=now - stuck_after
    ).update(status=WebhookDelivery.Status.RECEIVED, processing_since=None)
    due = list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.RECEIVED)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .filter(received_at__lt=now - dt.timedelta(seconds=30))
        .values_list("pk", flat=True)[:1000]
    )
    for delivery_id in due:
        enqueue(PROCESS_TASK, delivery_id)
    return len(due)
