"""Processing stored deliveries: one handler per kind, chosen by ``webhook_route``.

Every handler ends in the same mirror upsert (revision guard, tombstones) and the same
push path as a backfill. A stale or post-deletion version is recorded as stale and never
applied. A delivery is a job of ``portal.jobs``: a drain claims them one by one, each
entity's in order (``sequence``) and never two of one entity at once; Wix being unreachable
is retried on ``RETRY``, then the delivery fails visibly for staff to replay.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from portal import jobs
from portal.audit import audit
from sync.clients.wix import WixClientError, WixError, WixNotFound, WixRateLimited
from sync.models import EntityType, OutboundWork, WebhookDelivery, WixSite
from sync.services.entities import ENTITY_KINDS, EntityKind
from sync.services.mirrors import MirrorDataError, UpsertOutcome, UpsertResult
from sync.services.push import push_enqueue
from sync.services.sites import site_wix_client
from sync.services.ticket_refresh import ticket_refresh_request
from sync.services.webhooks import (
    DRAIN_TASK,
    WebhookMalformed,
    carried_deleted_entity,
    carried_entity,
    extra_route_add,
    order_ticket_definition_ids,
    webhook_route,
)

log = logging.getLogger(__name__)

# Seconds before retry n of a delivery whose processing could not reach Wix; Wix itself
# retries for 48 hours, but the delivery is already stored, so this schedule is ours.
RETRY = jobs.RetrySchedule((10, 60, 300, 1800, 3600))
# A drain ends after this long (well inside django-q2's timeout) and hands over.
DRAIN_BUDGET_SECONDS = 30.0


def _after_upsert(
    site: WixSite, entity_type: str, result: UpsertResult, changed_at: dt.datetime | None = None
) -> str:
    """``changed_at``: when the change happened on Wix (the envelope's ``eventTime``), kept on
    the push so that the dashboard and ``/metrics`` can tell how long it took to arrive."""
    if result.outcome in (UpsertOutcome.STALE, UpsertOutcome.TOMBSTONED):
        return "stale"
    if result.changed:
        push_enqueue(
            site=site,
            entity_type=entity_type,
            wix_ids=[result.mirror.wix_id],
            trigger=OutboundWork.Trigger.WEBHOOK,
            changed_at=changed_at,
        )
    return str(result.outcome)


def _event_time(data: dict[str, Any]) -> dt.datetime | None:
    return parse_datetime(data["eventTime"]) if isinstance(data.get("eventTime"), str) else None


def _upsert_handler(kind: EntityKind) -> Callable[[WixSite, dict[str, Any]], str]:
    def handle(site: WixSite, data: dict[str, Any]) -> str:
        result = kind.upsert(site=site, data=carried_entity(data))
        return _after_upsert(site, kind.entity_type, result, _event_time(data))

    return handle


def _delete_handler(kind: EntityKind) -> Callable[[WixSite, dict[str, Any]], str]:
    def handle(site: WixSite, data: dict[str, Any]) -> str:
        when = _event_time(data)
        options: dict[str, Any] = {"site": site, "wix_id": data["entityId"], "deleted_at": when}
        parent = carried_deleted_entity(data).get("eventId")
        if kind.entity_type != EntityType.EVENT and isinstance(parent, str):
            # A tombstone of an entity never mirrored still knows its event.
            options["event_wix_id"] = parent
        return _after_upsert(site, kind.entity_type, kind.delete(**options), when)

    return handle


def _refresh(site: WixSite, ticket_definition_ids: list[str]) -> str:
    """Get each definition with its sales details (the counter's source) and upsert it."""
    client = site_wix_client(site, fail_fast=True)
    outcomes = []
    for td_id in dict.fromkeys(ticket_definition_ids):
        try:
            data = client.get_ticket_definition(td_id)
        except WixNotFound:
            outcomes.append("gone")  # deleted since; its own deletion webhook tombstones it
            continue
        outcomes.append(
            _after_upsert(
                site,
                EntityType.TICKET_DEFINITION,
                ENTITY_KINDS[EntityType.TICKET_DEFINITION].upsert(site=site, data=data),
            )
        )
    return ",".join(outcomes) or "nothing"


def _order_confirmed(site: WixSite, data: dict[str, Any]) -> str:
    """Not a Get per order: the order joins its definitions' coalesced refresh (a burst of
    orders for one definition makes one Get per window, see ``ticket_refresh``)."""
    ids = order_ticket_definition_ids(data)
    ticket_refresh_request(site=site, wix_ids=ids)
    return f"refresh queued ({len(ids)})" if ids else "nothing"


HANDLERS: dict[str, Callable[[WixSite, dict[str, Any]], str]] = {
    # Events matter to systems that keep them (pretix): a renamed or moved event follows.
    **{
        f"{kind.entity_type}_{slug}": _upsert_handler(kind)
        for kind in ENTITY_KINDS.values()
        for slug in ("created", "updated")
    },
    **{f"{kind.entity_type}_deleted": _delete_handler(kind) for kind in ENTITY_KINDS.values()},
    "ticket_definition_refresh": lambda site, data: _refresh(site, [data["entityId"]]),
    "order_confirmed": _order_confirmed,
}


Handler = Callable[[WixSite, dict[str, Any]], str]


def route_register(
    *, route: str, handler: Handler, event_types: Iterable[str] = (), entity_fqdns: Iterable[str] = ()
) -> None:
    """Another app handles a kind of delivery sync does not know (notifications: Wix's Email
    Subscription Changed), registered in its ``AppConfig.ready()`` so that sync never imports
    it. The delivery is stored, ordered and retried like any other; ``handler(site, data)``
    gets the envelope and returns a short outcome. It may raise ``WixError`` to be retried."""
    if route in HANDLERS and HANDLERS[route] is not handler and route not in _REGISTERED:
        raise ValueError(f"route {route!r} is sync's own")
    HANDLERS[route] = handler
    _REGISTERED.add(route)
    extra_route_add(route=route, event_types=event_types, entity_fqdns=entity_fqdns)


_REGISTERED: set[str] = set()


def first_of_its_entity() -> Q:
    """A delivery no earlier delivery of the same entity waits before, and none is being
    processed: an entity's deliveries are applied one at a time, in ``sequence`` order."""
    earlier = WebhookDelivery.objects.filter(
        site=OuterRef("site"), entity_id=OuterRef("entity_id"), status__in=WebhookDelivery.OPEN
    ).filter(
        Q(status=WebhookDelivery.Status.PROCESSING)
        | Q(sequence__lt=OuterRef("sequence"))
        | Q(sequence=OuterRef("sequence"), pk__lt=OuterRef("pk"))
    )
    return Q(~Exists(earlier))


def _handle(delivery: WebhookDelivery) -> str:
    """Run a claimed delivery's handler and settle the row; returns its outcome."""
    assert delivery.site is not None  # only deliveries verified against a site are processed
    payload = delivery.payload or {}
    route = webhook_route(payload.get("eventType", ""), payload.get("data") or {})
    status, error, outcome = WebhookDelivery.Status.PROCESSED, "", ""
    try:
        if route is None:
            # Stored as known but no handler takes it (a replay of a delivery whose data
            # names no entity the portal mirrors): acknowledged, kept, never a crash.
            status, outcome = WebhookDelivery.Status.IGNORED, "no handler for its data"
        else:
            outcome = HANDLERS[route](delivery.site, payload["data"])
        if outcome == "stale":
            status = WebhookDelivery.Status.STALE
    except (WebhookMalformed, MirrorDataError, KeyError) as exc:
        status, error = WebhookDelivery.Status.MALFORMED, f"{exc.__class__.__name__}: {exc}"
    except WixClientError as exc:
        status, error = WebhookDelivery.Status.FAILED, str(exc)  # Wix refuses: staff must look
    except WixError as exc:
        wait = exc.retry_after if isinstance(exc, WixRateLimited) else None
        if jobs.defer(WebhookDelivery, delivery, error=str(exc), schedule=RETRY, at_least=wait):
            return "retry-scheduled"
        status, error = WebhookDelivery.Status.FAILED, str(exc)
    except Exception as exc:
        log.exception("Webhook delivery %s crashed", delivery.pk)
        status, error = WebhookDelivery.Status.FAILED, f"{exc.__class__.__name__}: {exc}"
    jobs.finish(
        WebhookDelivery,
        delivery.pk,
        status=status,
        error=error,
        outcome=outcome[:64],
        processed_at=timezone.now(),
    )
    return outcome or status


def _process_claimed(delivery_id: int) -> str:
    return _handle(WebhookDelivery.objects.select_related("site").get(pk=delivery_id))


def webhook_process(*, delivery_id: int) -> str:
    """Process one delivery if it is due and first of its entity ("duplicate" if another
    worker has it or had it)."""
    if not jobs.claim(WebhookDelivery, delivery_id, also=first_of_its_entity()):
        return "duplicate"
    return _process_claimed(delivery_id)


def webhook_drain(*, budget_seconds: float = DRAIN_BUDGET_SECONDS, woken_at: float | None = None) -> int:
    """Process due deliveries until none is left or the budget is spent; returns how many.

    Deliveries are taken oldest first, but an entity's wait for its earlier ones (see
    :func:`first_of_its_entity`), so the mirror sees each entity's changes in order.
    """
    deadline = time.monotonic() + budget_seconds
    done = jobs.drain(
        WebhookDelivery,
        _process_claimed,
        budget_seconds=budget_seconds,
        order_by=("received_at", "pk"),
        also=first_of_its_entity(),
        woken_at=woken_at,
    )
    if time.monotonic() >= deadline:
        jobs.wake_now(DRAIN_TASK)  # the budget ran out, maybe with more due: hand over
    return done


def webhook_replay(*, delivery_ids: list[int], by: object = None, reason: str = "staff replay") -> int:
    """Staff: process failed (or stuck, or waiting) deliveries again; processed ones are left alone."""
    again = jobs.retry(WebhookDelivery, delivery_ids, reason=reason, by=by)
    if again:
        jobs.wake(DRAIN_TASK)
        audit(by, WebhookDelivery.objects.filter(pk__in=again), f"Replayed ({reason}).")
    return len(again)


def deliveries_failed_since(since: dt.datetime) -> list[int]:
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.FAILED, received_at__gte=since
        ).values_list("pk", flat=True)
    )
