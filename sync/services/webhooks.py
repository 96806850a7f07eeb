"""Wix webhooks in: verify, store, acknowledge; then process once, in revision order.

The request body is a compact JWT signed RS256 with the app's key (../shared/wix-api.md §6).
Its claims hold ``data``, a JSON string with ``eventType``, ``instanceId``, and ``data`` and
``identity`` that are JSON strings again. Verification happens on the raw body before any
parsing; nothing is stored for a delivery that fails it (an attacker's bodies must not
fill the database), but each rejection is counted on the site.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Field
from django.db.models.sql import InsertQuery
from django.utils import timezone

from portal.jobs import wake
from sync.models import WebhookDelivery, WixSite
from sync.services.mirrors import MirrorDataError, mirror_validate, money_value
from sync.services.webhook_limits import site_refused

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
# Wix's payloads nest a dozen levels at most; far deeper is a malformed (or hostile) body,
# refused before anything walks it recursively (json.loads, json.dumps, the mirrors).
MAX_JSON_DEPTH = 64
DRAIN_TASK = "sync.tasks.webhook_drain_task"
_PEM_BLOCK = "-----END PUBLIC KEY-----"


class WebhookRejected(Exception):
    """401: not a JWT, unknown site or key, bad signature, expired."""


class WebhookMalformed(Exception):
    """400: signed correctly, but the payload is not the documented shape."""


@dataclass(frozen=True)
class Decoded:
    event_type: str
    instance_id: str
    data: dict[str, Any]
    identity: dict[str, Any]
    event_id: str
    entity_id: str


@dataclass(frozen=True)
class Received:
    status_code: int
    delivery: WebhookDelivery | None
    duplicate: bool = False
    detail: str = ""


def public_keys(site: WixSite) -> list[str]:
    """Every PEM block in the site's keys field (several during a rotation)."""
    blocks = []
    for chunk in site.webhook_public_keys.split(_PEM_BLOCK):
        chunk = chunk.strip()
        if chunk:
            blocks.append(f"{chunk}\n{_PEM_BLOCK}\n")
    return blocks


def _json_object(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise WebhookMalformed(f"{where} is not valid JSON") from exc
        except RecursionError:
            raise WebhookMalformed(f"{where} nests deeper than {MAX_JSON_DEPTH} levels") from None
    if not isinstance(value, dict):
        raise WebhookMalformed(f"{where} is not a JSON object")
    if _too_deep(value):
        raise WebhookMalformed(f"{where} nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def _too_deep(value: Any) -> bool:
    """Iterative, so that measuring a deep value cannot itself overflow the stack."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _unverified_instance_id(body: bytes) -> str:
    """The token's ``instanceId``, read (not trusted) to find whose keys verify it.

    The payload segment is decoded directly: PyJWT's unverified decode checks the whole
    token character by character in Python, which doubled the cost of every acknowledgement;
    the verified decode that follows checks it all anyway.
    """
    try:
        segment = body.split(b".", 2)[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
        instance_id = json.loads(claims["data"])["instanceId"]
    except Exception as exc:  # anything unreadable before verification is a rejection
        raise WebhookRejected("body is not a Wix webhook JWT") from exc
    if not isinstance(instance_id, str) or not instance_id:
        raise WebhookRejected("body is not a Wix webhook JWT")
    return instance_id


@dataclass(frozen=True)
class _Verifier:
    site: WixSite | None
    keys: tuple[RSAPublicKey, ...]
    until: float


# instanceId → the site and its parsed keys, per process. Parsing an RSA key costs about a
# millisecond; a site's keys change rarely, and a changed key is used within SITE_CACHE_SECONDS.
_verifiers: dict[str, _Verifier] = {}
SITE_CACHE_SECONDS = 10.0


def _verifier(instance_id: str) -> _Verifier:
    cached = _verifiers.get(instance_id)
    if cached is not None and cached.until > time.monotonic():
        return cached
    site = WixSite.objects.filter(instance_id=instance_id, is_active=True).first()
    keys: list[RSAPublicKey] = []
    for pem in public_keys(site) if site is not None else []:
        try:
            key = load_pem_public_key(pem.encode())
        except ValueError:
            log.warning("Site %s has an unreadable webhook public key", site.pk if site else "?")
            continue
        if isinstance(key, RSAPublicKey):
            keys.append(key)
        else:
            log.warning("Site %s has a webhook public key that is not RSA", site.pk if site else "?")
    verifier = _Verifier(site, tuple(keys), time.monotonic() + SITE_CACHE_SECONDS)
    if len(_verifiers) > 1000:  # a flood of made-up instance ids must not grow this forever
        _verifiers.clear()
    _verifiers[instance_id] = verifier
    return verifier


def verifiers_forget() -> None:
    """Forget the cached sites and keys (tests; a site admin change)."""
    _verifiers.clear()


def webhook_verify(body: bytes) -> tuple[WixSite, dict[str, Any]]:
    """Find the site by the token's instanceId, then verify with that site's keys only.

    As Wix's own SDK does, the token needs only its ``data`` claim; ``exp`` and ``iat`` are
    checked when present (a replay without them is still caught by the delivery's unique id).
    Surrounding whitespace (a trailing newline from a proxy) is not part of the token.
    """
    body = body.strip()
    verifier = _verifier(_unverified_instance_id(body))
    site = verifier.site
    if site is None:
        raise WebhookRejected("no active site for this instance")
    leeway = settings.WEBHOOK_LEEWAY_SECONDS
    for key in verifier.keys:
        try:
            claims = jwt.decode(body, key, algorithms=["RS256"], leeway=leeway, options={"require": ["data"]})
        except jwt.InvalidSignatureError:
            continue  # maybe the next key (rotation)
        except jwt.PyJWTError as exc:
            _count_rejection(site)
            raise WebhookRejected(f"token refused: {exc}") from exc
        return site, claims
    _count_rejection(site)
    raise WebhookRejected("signature does not match any of the site's keys")


def _count_rejection(site: WixSite) -> None:
    site_refused(site.pk)  # in the cache: a flood of forgeries writes nothing to the database


def webhook_decode(claims: dict[str, Any]) -> Decoded:
    outer = _json_object(claims.get("data"), "data")
    event_type = outer.get("eventType")
    instance_id = outer.get("instanceId")
    if not isinstance(event_type, str) or not event_type:
        raise WebhookMalformed("data.eventType is missing")
    if not isinstance(instance_id, str) or not instance_id:
        raise WebhookMalformed("data.instanceId is missing")
    data = _json_object(outer.get("data"), "data.data")
    identity = _json_object(outer["identity"], "data.identity") if outer.get("identity") else {}
    if "entityFqdn" in data or "slug" in data:
        event_id, entity_id = data.get("id"), data.get("entityId")
        if not isinstance(event_id, str) or not event_id:
            raise WebhookMalformed("data.data.id (the webhook event id) is missing")
        if not isinstance(entity_id, str) or not entity_id:
            raise WebhookMalformed("data.data.entityId is missing")
    else:
        # Legacy payloads (Order Confirmed) have no envelope id: Wix's own fields identify
        # one event (wix-api.md §4): type, event, order number and time.
        parts = [event_type, data.get("eventId"), data.get("orderNumber"), data.get("timestamp")]
        if not all(isinstance(p, str) and p for p in parts[1:]):
            raise WebhookMalformed("legacy payload needs eventId, orderNumber and timestamp")
        event_id = "legacy:" + hashlib.sha256("|".join(parts).encode()).hexdigest()  # type: ignore[arg-type]
        entity_id = data["orderNumber"]
    return Decoded(event_type, instance_id, data, identity, event_id, entity_id)


def webhook_receive(*, body: bytes) -> Received:
    """Verify, store and queue a delivery. Returns the HTTP status to answer with."""
    try:
        site, claims = webhook_verify(body)
    except WebhookRejected as exc:
        return Received(401, None, detail=str(exc))
    raw = body.decode("utf-8", errors="replace")
    try:
        decoded = webhook_decode(claims)
    except WebhookMalformed as exc:
        # Signed by Wix but unreadable: keep it for staff (bounded by the 1 MB limit).
        delivery, _ = WebhookDelivery.objects.get_or_create(
            site=site,
            wix_event_id="malformed:" + hashlib.sha256(body).hexdigest(),
            defaults={
                "raw_body": raw,
                "status": WebhookDelivery.Status.MALFORMED,
                "last_error": str(exc),
                "payload": claims,
            },
        )
        return Received(400, delivery, detail=str(exc))
    route = webhook_route(decoded.event_type, decoded.data)
    try:
        entity = _check_readable(route, decoded.data)
    except (WebhookMalformed, MirrorDataError) as exc:
        delivery, _ = WebhookDelivery.objects.get_or_create(
            site=site,
            wix_event_id=decoded.event_id,
            defaults={
                "raw_body": raw,
                "status": WebhookDelivery.Status.MALFORMED,
                "last_error": str(exc),
                "event_type": decoded.event_type,
                "entity_id": decoded.entity_id,
                "payload": {"eventType": decoded.event_type, "data": decoded.data},
            },
        )
        return Received(400, delivery, detail=str(exc))
    known = route is not None
    now = timezone.now()
    try:
        _delivery_insert(
            site_id=site.pk,
            wix_event_id=decoded.event_id,
            event_type=decoded.event_type,
            entity_id=decoded.entity_id,
            sequence=_sequence(decoded.data, entity),
            raw_body=raw,
            payload={
                "eventType": decoded.event_type,
                "instanceId": decoded.instance_id,
                "data": decoded.data,
                "identity": decoded.identity,
            },
            status=WebhookDelivery.Status.RECEIVED if known else WebhookDelivery.Status.IGNORED,
            outcome=_ignored_reason(decoded.event_type) if not known else "",
            received_at=now,
            created_at=now,
            updated_at=now,
        )
    except IntegrityError:
        return Received(200, None, duplicate=True)  # Wix delivers at least once
    if known:
        # The row is the job: a drain (woken here, coalesced per process) processes it.
        wake(DRAIN_TASK)
    return Received(200, None)


@functools.cache
def _insert_statement(alias: str) -> tuple[str, tuple[Field, ...]]:
    """The INSERT of one delivery, built once per process by Django's own compiler.

    The acknowledgement stores a row per delivery, thousands a second at peak; building the
    query for each one cost as much as the database's work (0.27 ms against 0.13 ms). Every
    column is written: a new NOT NULL field gets its default.
    """
    meta = WebhookDelivery._meta
    fields = tuple(f for f in meta.concrete_fields if not f.primary_key)
    query = InsertQuery(WebhookDelivery)
    sample = WebhookDelivery(wix_event_id="", raw_body="")
    query.insert_values(fields, [sample])
    ((sql, _params),) = query.get_compiler(using=alias).as_sql()
    return sql, fields


def _delivery_insert(**values: Any) -> None:
    """One INSERT, committed on its own: SQLite's write lock is held for the statement alone
    (a transaction would hold it while Python prepares the values). Inside an outer
    transaction a savepoint keeps a duplicate (IntegrityError) from breaking it."""
    sql, fields = _insert_statement(connection.alias)
    prepared: dict[tuple[int, str], Any] = {}  # the same "now" goes in three columns: adapt it once

    def prep(field: Field, value: Any) -> Any:
        if value is None:
            return None
        key = (id(value), field.get_internal_type())
        if key not in prepared:
            prepared[key] = field.get_db_prep_save(value, connection)
        return prepared[key]

    params = [prep(f, values[f.attname] if f.attname in values else f.get_default()) for f in fields]
    if connection.in_atomic_block:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def _sequence(data: dict[str, Any], entity: dict[str, Any] | None) -> int:
    """Where a delivery stands among its entity's: Wix's ``entityEventSequence``, else the
    carried entity's revision, else 0 (orders, which have no order among themselves)."""
    for value in (data.get("entityEventSequence"), (entity or {}).get("revision")):
        if isinstance(value, str | int) and not isinstance(value, bool):
            try:
                return int(value)
            except ValueError:
                continue
    return 0


# What carries the entity, by slug: the REST schema's JSON-string names and the objects the
# SDK reads (wix-api.md §8a). Real deliveries may carry either, so both are read.
CARRIERS = {
    "created": ("createdEvent", ("entityAsJson", "entity")),
    "updated": ("updatedEvent", ("currentEntityAsJson", "currentEntity")),
    "deleted": ("deletedEvent", ("deletedEntityAsJson", "deletedEntity")),
}
ACTION_CARRIER = ("actionEvent", ("bodyAsJson", "body"))


def _carried(data: dict[str, Any], holder_name: str, keys: tuple[str, ...]) -> dict[str, Any] | None:
    holder = data.get(holder_name)
    if isinstance(holder, dict):
        for key in keys:
            if holder.get(key) is not None:
                return _json_object(holder[key], f"{holder_name}.{key}")
    return None


def carried_entity(data: dict[str, Any]) -> dict[str, Any]:
    """The entity in a created/updated envelope: a JSON string or an object, either name."""
    holder_name, keys = CARRIERS[data["slug"]]
    entity = _carried(data, holder_name, keys)
    if entity is None:
        raise WebhookMalformed(f"{holder_name} carries no entity ({' or '.join(keys)})")
    return entity


def carried_deleted_entity(data: dict[str, Any]) -> dict[str, Any]:
    """The entity as it was when deleted, when Wix sent it (the policy example sends none)."""
    return _carried(data, *CARRIERS["deleted"]) or {}


def carried_action_body(data: dict[str, Any]) -> dict[str, Any]:
    """An action event's body (``sale_started``: ``{ticketDefinition}``; ``sale_period_updated``:
    ``{afterUpdate, ...}``), or an empty dict when Wix sent none."""
    return _carried(data, *ACTION_CARRIER) or {}


def _ignored_reason(event_type: str) -> str:
    return "ignored: not handled" if event_type_is_ignored(event_type) else "ignored: unknown type"


def _check_readable(route: str | None, data: dict[str, Any]) -> dict[str, Any] | None:
    """Refuse now (400) what could never be processed, rather than fail later. Returns the
    entity the delivery carries, if any."""
    if route == "order_confirmed":
        order_ticket_definition_ids(data)
        return None
    if route == "ticket_definition_refresh":
        carried_action_body(data)  # a body that is there must be a JSON object
        return None
    if route is not None and route.endswith("_deleted"):
        return carried_deleted_entity(data)  # one that is there must be a JSON object
    if route is None or not route.endswith(("_created", "_updated")):
        return None
    entity = carried_entity(data)
    mirror_validate(entity_type=route.rsplit("_", 1)[0], data=entity)
    if entity.get("id") != data.get("entityId"):
        raise WebhookMalformed("the carried entity's id differs from entityId")
    return entity


# --- orders (legacy Events v1 payload, wix-api.md §4) -----------------------------------------
def order_ticket_definition_ids(data: dict[str, Any]) -> list[str]:
    """The distinct ticket definitions an order sold, in the order they first appear."""
    tickets = data.get("tickets")
    if not isinstance(tickets, list):
        raise WebhookMalformed("the order's tickets are missing")
    ids = [t.get("ticketDefinitionId") for t in tickets if isinstance(t, dict)]
    return list(dict.fromkeys(i for i in ids if isinstance(i, str) and i))


def order_summary(data: dict[str, Any]) -> str:
    """One line for staff: the order number, tickets per definition and what they cost."""
    tickets = [t for t in data.get("tickets") or [] if isinstance(t, dict)]
    counts = Counter(str(t.get("ticketDefinitionId") or "?") for t in tickets)
    totals: dict[str, Decimal] = {}
    for ticket in tickets:
        try:
            # Order money carries ``value``, or the deprecated ``amount`` (wix-api.md §8a).
            value, currency = money_value(ticket.get("price"), "price", "ticket")
        except MirrorDataError:
            continue
        totals[currency] = totals.get(currency, Decimal(0)) + value
    sold = ", ".join(f"{n} x {td_id}" for td_id, n in counts.items()) or "no tickets"
    paid = " + ".join(f"{amount:.2f} {currency}".strip() for currency, amount in totals.items())
    return f"Order {data.get('orderNumber', '?')} ({data.get('status', '?')}): {sold}" + (
        f"; {paid}" if paid else ""
    )


# --- routing -------------------------------------------------------------------------------
# Order Confirmed as Wix's own SDK names it (@wix/auto_sdk_events_orders), and the spelling an
# earlier reading of the docs guessed, which is still accepted.
ORDER_CONFIRMED_TYPES = frozenset(
    {"wix.events.ticketing.events.OrderConfirmed", "wix.events.v1.order_order-confirmed"}
)
# Types Wix sends that the portal knowingly does not act on (stored as "ignored: not
# handled"); any other unrouted type is stored as "ignored: unknown type" for staff to see.
_EVENT_SIGNALS = ("published", "canceled", "started", "ended", "reminder")
_ORDER_SIGNALS = ("Initiated", "Updated", "Paid", "Deleted")
_RESERVATION_SIGNALS = ("Created", "Updated")
_LEGACY_ORDER_SIGNALS = (
    "order-initiated",
    "order-updated",
    "order-paid",
    "order-deleted",
    "reservation-created",
    "reservation-updated",
)
IGNORED_EVENT_TYPES = frozenset(
    # Events V3 (the SDK's names, and the event_event_* spelling some doc pages print).
    [f"wix.events.v3.event_{name}" for name in _EVENT_SIGNALS]
    + [f"wix.events.v3.event_event_{name}" for name in _EVENT_SIGNALS]
    + [f"wix.events.ticketing.events.Order{name}" for name in _ORDER_SIGNALS]
    + [f"wix.events.ticketing.events.Reservation{name}" for name in _RESERVATION_SIGNALS]
    + [f"wix.events.v1.order_{name}" for name in _LEGACY_ORDER_SIGNALS]
)
_TICKETING_TOPIC = "wix.events.ticketing.events."


def event_type_is_ignored(event_type: str) -> bool:
    """Known and deliberately not acted on: the list above, and any other order or
    reservation event on the ticketing topic (Wix adds siblings there)."""
    if event_type in IGNORED_EVENT_TYPES:
        return True
    name = event_type.removeprefix(_TICKETING_TOPIC)
    return name != event_type and name.startswith(("Order", "Reservation"))


def _entity_kind(fqdn: str) -> str | None:
    if fqdn.endswith(".policy"):
        return "policy"
    if fqdn.endswith("ticket_definition"):
        return "ticket_definition"
    if fqdn.endswith(".event"):  # wix.events.v3.event, or wix.events.events.v3.event in one example
        return "event"
    return None


# Routes other apps add (notifications: Email Subscription Changed) without sync importing
# them: a route name chosen by event type or by the envelope's ``entityFqdn``.
_EXTRA_BY_TYPE: dict[str, str] = {}
_EXTRA_BY_FQDN: dict[str, str] = {}


def extra_route_add(*, route: str, event_types: Iterable[str] = (), entity_fqdns: Iterable[str] = ()) -> None:
    """Route deliveries of these event types (or envelopes naming these ``entityFqdn``) to
    ``route``; ``webhook_handlers.route_register`` is the public way in (it adds the handler)."""
    for event_type in event_types:
        _EXTRA_BY_TYPE[event_type] = route
    for fqdn in entity_fqdns:
        _EXTRA_BY_FQDN[fqdn] = route


def webhook_route(event_type: str, data: dict[str, Any]) -> str | None:
    """The handler name for a delivery, or None for a type the portal ignores."""
    if event_type in ORDER_CONFIRMED_TYPES:
        return "order_confirmed"
    extra = _EXTRA_BY_TYPE.get(event_type) or _EXTRA_BY_FQDN.get(str(data.get("entityFqdn") or ""))
    if extra is not None:
        return extra
    kind = _entity_kind(str(data.get("entityFqdn") or ""))
    slug = data.get("slug")
    if kind is None:
        return None
    if slug in ("created", "updated", "deleted"):
        return f"{kind}_{slug}"
    if kind == "ticket_definition" and slug in ("sale_started", "sale_ended", "sale_period_updated"):
        return "ticket_definition_refresh"
    return None
