"""What the fake Wix site does: store entities, answer queries, and send signed webhooks.

Entities are stored and returned in the shapes of ../shared/wix-api.md. Every change a
user makes (admin or the small API) bumps ``revision`` and ``updatedDate`` and sends the
webhook Wix would send, signed with the sandbox's own RSA key.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import uuid
from decimal import Decimal
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.http import http_request
from portal.queue import enqueue
from sync.sandbox.models import SandboxEntity, SandboxFault, SandboxKey, SandboxWebhook

SANDBOX_SITE_ID = "5a9d2c1e-0000-4000-8000-5a9d2c1e0001"
SANDBOX_INSTANCE_ID = "5a9d2c1e-0000-4000-8000-5a9d2c1e0002"
SANDBOX_USER_ID = "5a9d2c1e-0000-4000-8000-5a9d2c1e0003"
MAX_POLICIES_PER_EVENT = 3  # Wix: POLICIES_LIMIT_REACHED on the 4th
MAX_TICKET_DEFINITIONS_PER_EVENT = 100
ORDER_CONFIRMED = "wix.events.ticketing.events.OrderConfirmed"
Kind = SandboxEntity.Kind

FQDN: dict[str, str] = {
    Kind.POLICY: "wix.events.v2.policy",
    Kind.TICKET_DEFINITION: "wix.events.v3.ticket_definition",
    Kind.EVENT: "wix.events.v3.event",
}
ENTITY_KEY: dict[str, str] = {
    Kind.EVENT: "event",
    Kind.POLICY: "policy",
    Kind.TICKET_DEFINITION: "ticketDefinition",
}
LIST_KEY: dict[str, str] = {
    Kind.EVENT: "events",
    Kind.POLICY: "policies",
    Kind.TICKET_DEFINITION: "ticketDefinitions",
}


class SandboxError(Exception):
    """Answered in Wix's error format: ``{"message", "details": {"applicationError": {...}}}``."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def body(self) -> dict[str, Any]:
        if self.field:
            violation = {"field": self.field, "description": self.message, "ruleName": self.code}
            return {"message": self.message, "details": {"validationError": {"fieldViolations": [violation]}}}
        return {
            "message": self.message,
            "details": {"applicationError": {"code": self.code, "description": self.message, "data": {}}},
        }


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- keys and webhooks ---------------------------------------------------------------
def sandbox_key() -> SandboxKey:
    key = SandboxKey.objects.order_by("-created_at").first()
    if key:
        return key
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return SandboxKey.objects.create(kid=uuid.uuid4().hex, private_pem=private_pem, public_pem=public_pem)


def webhook_jwt(*, event_type: str, envelope: dict[str, Any], key: SandboxKey, lifetime: int = 3600) -> str:
    """Sign a delivery as Wix does: claims ``{data, iat, exp}``, ``data`` a JSON string nesting
    ``eventType``, ``instanceId``, the envelope as a JSON string, and the identity."""
    now = int(timezone.now().timestamp())
    data = {
        "eventType": event_type,
        "instanceId": SANDBOX_INSTANCE_ID,
        "data": json.dumps(envelope),
        "identity": json.dumps({"identityType": "WIX_USER", "wixUserId": SANDBOX_USER_ID}),
    }
    claims = {"data": json.dumps(data), "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, _private_key(key.private_pem), algorithm="RS256", headers={"kid": key.kid})


@functools.lru_cache(maxsize=4)
def _private_key(pem: str) -> rsa.RSAPrivateKey:
    """Parsing (and checking) an RSA key costs milliseconds; signing with a parsed one does not."""
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _webhook_queue(event_type: str, entity_id: str, envelope: dict[str, Any]) -> SandboxWebhook:
    hook = SandboxWebhook.objects.create(event_type=event_type, entity_id=entity_id, envelope=envelope)
    enqueue("sync.sandbox.tasks.sandbox_webhook_send_task", hook.pk)
    return hook


def sandbox_webhook_send(*, webhook_id: int) -> str:
    hook = SandboxWebhook.objects.get(pk=webhook_id)
    if hook.status == SandboxWebhook.Status.SENT:
        return "duplicate"
    token = webhook_jwt(event_type=hook.event_type, envelope=hook.envelope, key=sandbox_key())
    try:
        response = http_request(
            "POST", settings.SANDBOX_WEBHOOK_URL, data=token.encode(), headers={"Content-Type": "text/plain"}
        )
    except Exception as exc:  # any transport failure is recorded, not raised
        hook.status, hook.error = SandboxWebhook.Status.FAILED, str(exc)[:2000]
    else:
        hook.response_status = response.status_code
        hook.status = SandboxWebhook.Status.SENT if response.ok else SandboxWebhook.Status.FAILED
        hook.error = "" if response.ok else response.text[:2000]
    hook.save(update_fields=["status", "response_status", "error", "updated_at"])
    return hook.status


def _carrier_style() -> str:
    """``object`` (the SDK's names), ``both`` (the object and the REST schema's ``...AsJson``
    string side by side) or ``json`` (the string alone).

    Wix's own SDK reads only the objects (``createdEvent.entity``, ``actionEvent.body``, …:
    tests/test_wix_sdk_contract.py), so a delivery from Wix carries them; the REST schema
    names the strings (wix-api.md §8a). By default the sandbox alternates between the object
    alone and both forms, so that the portal reads each over the sandbox's life; ``json``
    pins the string alone (a form the SDK cannot read) to try a receiver on it.
    """
    style = settings.SANDBOX_WEBHOOK_CARRIERS
    if style != "alternate":
        return style
    last = SandboxWebhook.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    return "both" if last % 2 else "object"


def _carry(style: str, json_name: str, object_name: str, value: dict[str, Any]) -> dict[str, Any]:
    carried: dict[str, Any] = {}
    if style in ("json", "both"):
        carried[json_name] = json.dumps(value)
    if style in ("object", "both"):
        carried[object_name] = value
    return carried


def _envelope(kind: str, slug: str, entity_id: str, sequence: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "entityFqdn": FQDN[kind],
        "slug": slug,
        "entityId": entity_id,
        "eventTime": _iso(timezone.now()),
        "triggeredByAnonymizeRequest": False,
        "entityEventSequence": sequence,
    }


def _domain_event(kind: str, slug: str, entity: dict[str, Any], entity_id: str) -> None:
    """Created / updated / deleted, with the entity (as it is now, or was when deleted)."""
    envelope = _envelope(kind, slug, entity_id, entity.get("revision", "1"))
    style = _carrier_style()
    public = _public(kind, entity)
    if slug == "created":
        envelope["createdEvent"] = _carry(style, "entityAsJson", "entity", public)
    elif slug == "updated":
        envelope["updatedEvent"] = _carry(style, "currentEntityAsJson", "currentEntity", public)
    else:
        envelope["deletedEvent"] = _carry(style, "deletedEntityAsJson", "deletedEntity", public)
        if kind == Kind.POLICY:
            envelope["deletedEvent"]["movedToTrash"] = True
    _webhook_queue(f"{FQDN[kind]}_{slug}", entity_id, envelope)


def _action_event(kind: str, slug: str, entity: dict[str, Any], body: dict[str, Any]) -> None:
    """An action event (``sale_started``, ``sale_ended``, ``sale_period_updated``): its body in
    ``actionEvent.body`` or, in the REST schema's form, the JSON string ``bodyAsJson``."""
    envelope = _envelope(kind, slug, entity["id"], entity.get("revision", "1"))
    envelope["actionEvent"] = _carry(_carrier_style(), "bodyAsJson", "body", body)
    _webhook_queue(f"{FQDN[kind]}_{slug}", entity["id"], envelope)


# --- faults --------------------------------------------------------------------------
def fault_take(path: str) -> SandboxFault | None:
    """Consume one injected fault matching ``path``, if any."""
    if not SandboxFault.objects.filter(remaining__gt=0).exists():
        return None  # the usual case: no write transaction for a plain read
    with transaction.atomic():
        for fault in SandboxFault.objects.select_for_update().filter(remaining__gt=0).order_by("pk"):
            if fault.path_contains in path:
                SandboxFault.objects.filter(pk=fault.pk).update(remaining=fault.remaining - 1)
                return fault
    return None


# --- reads ---------------------------------------------------------------------------
def _public(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The entity as Wix shows it: without the sandbox's own markers."""
    return {k: v for k, v in data.items() if not k.startswith("_")}


def _strip(kind: str, data: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """What a read returns: sales details only when asked for, and the sale status as of now
    (Wix computes it when read, so it moves when a sale period begins or ends)."""
    data = _public(kind, data)
    if kind != Kind.TICKET_DEFINITION:
        return data
    data["saleStatus"] = _sale_status(data, timezone.now())
    if "SALES_DETAILS" not in fields:
        data.pop("salesDetails", None)
    return data


def _matches(data: dict[str, Any], filter_: dict[str, Any]) -> bool:
    for field, condition in filter_.items():
        value = data.get(field)
        if not isinstance(condition, dict):
            condition = {"$eq": condition}
        for op, expected in condition.items():
            if (op == "$eq" and value != expected) or (op == "$ne" and value == expected):
                return False
            if (op == "$in" and value not in expected) or (op == "$nin" and value in expected):
                return False
            if op not in ("$eq", "$ne", "$in", "$nin"):
                raise SandboxError(
                    400, "INVALID_ARGUMENT", f"Unsupported operator {op}", field=f"filter.{field}"
                )
    return True


def _encode_cursor(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def _decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as exc:
        raise SandboxError(
            400, "INVALID_CURSOR", "Invalid cursor", field="query.cursorPaging.cursor"
        ) from exc
    if not isinstance(state, dict):
        raise SandboxError(400, "INVALID_CURSOR", "Invalid cursor", field="query.cursorPaging.cursor")
    return state


def entity_query(*, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """Query with filter, offset or cursor paging; answers with Wix's paging metadata."""
    query = body.get("query")
    if not isinstance(query, dict):
        raise SandboxError(400, "INVALID_ARGUMENT", "query is required", field="query")
    fields = body.get("fields") or []
    cursor_paging = query.get("cursorPaging")
    if isinstance(cursor_paging, dict) and cursor_paging.get("cursor"):
        state = _decode_cursor(cursor_paging["cursor"])
        filter_, offset = state.get("filter") or {}, int(state.get("offset", 0))
        limit = int(cursor_paging.get("limit") or state.get("limit") or 100)
    else:
        filter_ = query.get("filter") or {}
        paging = cursor_paging if isinstance(cursor_paging, dict) else (query.get("paging") or {})
        limit, offset = int(paging.get("limit") or 100), int(paging.get("offset") or 0)
    if not 0 < limit <= 100:
        raise SandboxError(400, "OUT_OF_RANGE", "limit must be between 1 and 100", field="query.paging.limit")
    entities = SandboxEntity.objects.filter(kind=kind).exclude(data__has_key="_deleted")
    # The filters Wix callers use most go to the database; the rest is checked per row.
    for field, column in (("eventId", "event_wix_id"), ("id", "wix_id")):
        condition = filter_.get(field)
        if isinstance(condition, str):
            entities = entities.filter(**{column: condition})
        elif isinstance(condition, dict) and isinstance(condition.get("$eq"), str):
            entities = entities.filter(**{column: condition["$eq"]})
    rows = [e.data for e in entities.order_by("created_date", "wix_id") if _matches(e.data, filter_)]
    # Wix chooses its own page size: it may answer fewer items than the limit asked for.
    page = [
        _strip(kind, data, fields)
        for data in rows[offset : offset + min(limit, settings.SANDBOX_MAX_PAGE_SIZE)]
    ]
    key = LIST_KEY[kind]
    meta: dict[str, Any] = {"count": len(page), "offset": offset, "tooManyToCount": False}
    if isinstance(cursor_paging, dict):
        more = offset + len(page) < len(rows)
        next_state = {"filter": filter_, "offset": offset + len(page), "limit": limit}
        meta["cursors"] = {"next": _encode_cursor(next_state)} if more else {}
    else:
        meta["total"] = len(rows)
    # Events V3 answer with pagingMetadata; Policies and Ticket Definitions with metadata.
    return {key: page, ("pagingMetadata" if kind == Kind.EVENT else "metadata"): meta}


def entity_get(*, kind: str, wix_id: str, fields: list[str] | None = None) -> dict[str, Any]:
    entity = SandboxEntity.objects.filter(kind=kind, wix_id=wix_id).exclude(data__has_key="_deleted").first()
    if entity is None:
        raise SandboxError(404, "NOT_FOUND", f"{ENTITY_KEY[kind]} {wix_id} not found")
    return {ENTITY_KEY[kind]: _strip(kind, entity.data, fields or [])}


# --- writes --------------------------------------------------------------------------
def _sales_details(data: dict[str, Any], sold: int) -> dict[str, Any]:
    limit = data.get("initialLimit")
    unsold = None if limit is None else max(limit - sold, 0)
    return {"unsoldCount": unsold, "soldCount": sold, "reservedCount": 0, "soldOut": unsold == 0}


def _validate(kind: str, data: dict[str, Any]) -> None:
    key = ENTITY_KEY[kind]
    if kind == Kind.EVENT:
        if not isinstance(data.get("title"), str) or not 1 <= len(data["title"]) <= 120:
            raise SandboxError(
                400, "INVALID_ARGUMENT", "title must be 1-120 characters", field=f"{key}.title"
            )
        return
    if (
        not isinstance(data.get("eventId"), str)
        or not SandboxEntity.objects.filter(kind=Kind.EVENT, wix_id=data["eventId"]).exists()
    ):
        raise SandboxError(400, "INVALID_ARGUMENT", "eventId is required", field=f"{key}.eventId")
    max_name = 40 if kind == Kind.POLICY else 30
    if not isinstance(data.get("name"), str) or not 1 <= len(data["name"]) <= max_name:
        raise SandboxError(
            400, "INVALID_ARGUMENT", f"name must be 1-{max_name} characters", field=f"{key}.name"
        )
    if kind == Kind.POLICY:
        if not isinstance(data.get("body"), str) or not 1 <= len(data["body"]) <= 50_000:
            raise SandboxError(
                400, "INVALID_ARGUMENT", "body must be 1-50000 characters", field="policy.body"
            )
        return
    pricing = data.get("pricingMethod")
    prices = [
        p
        for p in ("fixedPrice", "guestPrice", "pricingOptions")
        if isinstance(pricing, dict) and pricing.get(p)
    ]
    if len(prices) != 1:
        raise SandboxError(
            400,
            "INVALID_ARGUMENT",
            "pricingMethod needs exactly one price",
            field="ticketDefinition.pricingMethod",
        )
    if data.get("feeType") not in ("FEE_INCLUDED", "FEE_ADDED_AT_CHECKOUT", "NO_FEE"):
        # Wix reports an invalid enum as a missing value.
        raise SandboxError(
            400, "INVALID_ARGUMENT", "feeType value is required", field="ticketDefinition.feeType"
        )


def _sale_status(data: dict[str, Any], now: dt.datetime) -> str:
    period = data.get("salePeriod") or {}
    start, end = period.get("startDate"), period.get("endDate")
    if start and dt.datetime.fromisoformat(start.replace("Z", "+00:00")) > now:
        return "SALE_SCHEDULED"
    if end and dt.datetime.fromisoformat(end.replace("Z", "+00:00")) <= now:
        return "SALE_ENDED"
    return "SALE_STARTED"


def _derive(kind: str, data: dict[str, Any], *, sold: int = 0) -> dict[str, Any]:
    """Fill the read-only fields Wix computes."""
    if kind != Kind.TICKET_DEFINITION:
        return data
    pricing = data["pricingMethod"]
    for money in [pricing.get("fixedPrice"), pricing.get("guestPrice")] + [
        o.get("price") for o in (pricing.get("pricingOptions") or {}).get("optionDetails", [])
    ]:
        if isinstance(money, dict) and "value" in money:
            money["value"] = str(Decimal(str(money["value"])).quantize(Decimal("0.01")))
    for option in (pricing.get("pricingOptions") or {}).get("optionDetails", []):
        option.setdefault("optionId", str(uuid.uuid4()))
    pricing["pricingType"] = "DONATION" if pricing.get("guestPrice") else "STANDARD"
    pricing["free"] = bool(pricing.get("fixedPrice")) and Decimal(pricing["fixedPrice"]["value"]) == 0
    data["limited"] = data.get("initialLimit") is not None
    if data["limited"]:
        data["actualLimit"] = data["initialLimit"]
    data.setdefault("hidden", False)
    data["saleStatus"] = _sale_status(data, timezone.now())
    data["salesDetails"] = _sales_details(data, sold)
    data["limitPerCheckout"] = min(50, data["salesDetails"]["unsoldCount"] or 50)
    return data


def entity_create(
    *, kind: str, data: dict[str, Any], webhooks: bool = True, created: dt.datetime | None = None
) -> dict[str, Any]:
    _validate(kind, data)
    if (
        kind == Kind.POLICY
        and SandboxEntity.objects.filter(kind=Kind.POLICY, event_wix_id=data["eventId"])
        .exclude(data__has_key="_deleted")
        .count()
        >= MAX_POLICIES_PER_EVENT
    ):
        raise SandboxError(
            428, "POLICIES_LIMIT_REACHED", "Maximum number of policies for the event has been reached"
        )
    if (
        kind == Kind.TICKET_DEFINITION
        and SandboxEntity.objects.filter(kind=Kind.TICKET_DEFINITION, event_wix_id=data["eventId"]).count()
        >= MAX_TICKET_DEFINITIONS_PER_EVENT
    ):
        raise SandboxError(
            428, "TICKET_DEFINITIONS_LIMIT_REACHED", "Maximum number of ticket definitions reached"
        )
    now = created or timezone.now()
    wix_id = data.get("id") or str(uuid.uuid4())
    entity = {"id": wix_id, "revision": "1", "createdDate": _iso(now), "updatedDate": _iso(now), **data}
    entity["id"] = wix_id
    entity = _derive(kind, entity)
    with transaction.atomic():
        SandboxEntity.objects.create(
            kind=kind, wix_id=wix_id, event_wix_id=entity.get("eventId", ""), created_date=now, data=entity
        )
        if webhooks:
            _domain_event(kind, "created", entity, wix_id)
    return {ENTITY_KEY[kind]: _public(kind, entity)}


def entity_update(
    *, kind: str, wix_id: str, changes: dict[str, Any], webhooks: bool = True
) -> dict[str, Any]:
    """PATCH: ``changes`` must carry the current ``revision`` (409 otherwise), as on Wix."""
    with transaction.atomic():
        row = SandboxEntity.objects.select_for_update().filter(kind=kind, wix_id=wix_id).first()
        if row is None or "_deleted" in row.data:
            raise SandboxError(404, "NOT_FOUND", f"{ENTITY_KEY[kind]} {wix_id} not found")
        if str(changes.get("revision")) != row.data["revision"]:
            raise SandboxError(
                409,
                "REVISION_MISMATCH",
                f"revision {changes.get('revision')!r} does not match {row.data['revision']!r}",
            )
        readonly = {"id", "revision", "createdDate", "updatedDate", "eventId", "salesDetails", "saleStatus"}
        sold = (row.data.get("salesDetails") or {}).get("soldCount", 0)
        allowed = {k: v for k, v in changes.items() if k not in readonly and not k.startswith("_")}
        data = {**row.data, **allowed}
        _validate(kind, data)
        data["revision"] = str(int(row.data["revision"]) + 1)
        data["updatedDate"] = _iso(timezone.now())
        before = row.data.get("salePeriod")
        row.data = _derive(kind, data, sold=sold)
        row.save(update_fields=["data", "updated_at"])
        if webhooks:
            _domain_event(kind, "updated", row.data, wix_id)
            if kind == Kind.TICKET_DEFINITION and row.data.get("salePeriod") != before:
                _action_event(
                    kind, "sale_period_updated", row.data, {"afterUpdate": row.data.get("salePeriod")}
                )
    return {ENTITY_KEY[kind]: _public(kind, row.data)}


def entity_delete(*, kind: str, wix_id: str, webhooks: bool = True) -> None:
    with transaction.atomic():
        row = SandboxEntity.objects.select_for_update().filter(kind=kind, wix_id=wix_id).first()
        if row is None or "_deleted" in row.data:
            raise SandboxError(404, "NOT_FOUND", f"{ENTITY_KEY[kind]} {wix_id} not found")
        # Kept (marked) rather than removed, so that staff can see what the sandbox deleted.
        row.data = {**row.data, "_deleted": _iso(timezone.now())}
        row.save(update_fields=["data", "updated_at"])
        if webhooks:
            _domain_event(kind, "deleted", row.data, wix_id)


def sandbox_sale_transitions(*, now: dt.datetime | None = None) -> int:
    """Send ``sale_started`` / ``sale_ended`` for each ticket definition whose sale period began
    or ended since the last look (scheduled every minute while the sandbox is on).

    The status a definition was last announced in is kept in ``_announcedSaleStatus``; a sale
    that began and ended between two looks sends both, in order.
    """
    now = now or timezone.now()
    sent = 0
    candidates = (
        SandboxEntity.objects.filter(kind=Kind.TICKET_DEFINITION, data__has_key="salePeriod")
        .exclude(data__has_key="_deleted")
        .values_list("pk", flat=True)
    )
    for pk in candidates:
        with transaction.atomic():
            row = SandboxEntity.objects.select_for_update().get(pk=pk)
            status = _sale_status(row.data, now)
            announced = row.data.get("_announcedSaleStatus") or row.data.get("saleStatus")
            if status == announced:
                continue
            row.data = {**row.data, "saleStatus": status, "_announcedSaleStatus": status}
            row.save(update_fields=["data", "updated_at"])
            steps = {"SALE_STARTED": ["sale_started"], "SALE_ENDED": ["sale_started", "sale_ended"]}
            for slug in steps.get(status, []):
                if slug == "sale_started" and announced == "SALE_STARTED":
                    continue
                # Wix's sale started/ended bodies carry the definition without sales details.
                body = {
                    k: v for k, v in _public(Kind.TICKET_DEFINITION, row.data).items() if k != "salesDetails"
                }
                _action_event(Kind.TICKET_DEFINITION, slug, row.data, {"ticketDefinition": body})
                sent += 1
    return sent


def order_place(
    *, event_id: str, quantities: dict[str, int], buyer_email: str = "buyer@example.com"
) -> dict[str, Any]:
    """Sell tickets: lower unsold counts and send Order Confirmed (legacy v1 payload, §4)."""
    if not quantities or any(not isinstance(q, int) or q < 1 for q in quantities.values()):
        raise SandboxError(400, "INVALID_ARGUMENT", "quantities must be positive integers", field="tickets")
    now = timezone.now()
    number = uuid.uuid4().hex[:12].upper()
    tickets: list[dict[str, Any]] = []
    items: list[tuple[str, str, int, dict[str, str]]] = []
    with transaction.atomic():
        for td_id, quantity in quantities.items():
            row = (
                SandboxEntity.objects.select_for_update()
                .filter(kind=Kind.TICKET_DEFINITION, wix_id=td_id, event_wix_id=event_id)
                .exclude(data__has_key="_deleted")
                .first()
            )
            if row is None:
                raise SandboxError(
                    404, "NOT_FOUND", f"ticketDefinition {td_id} not found for event {event_id}"
                )
            details = row.data["salesDetails"]
            if details["unsoldCount"] is not None and details["unsoldCount"] < quantity:
                raise SandboxError(
                    428, "TICKETS_NOT_AVAILABLE", f"only {details['unsoldCount']} tickets left"
                )
            row.data["salesDetails"] = _sales_details(row.data, details["soldCount"] + quantity)
            row.save(update_fields=["data", "updated_at"])
            money = _first_price(row.data)
            # Order money carries `value`; `amount` is the deprecated name (wix-api.md §8a).
            price = {"value": money["value"], "amount": money["value"], "currency": money["currency"]}
            items.append((td_id, row.data.get("name", ""), quantity, price))
            for _ in range(quantity):
                tickets.append(
                    {
                        "ticketNumber": f"{number}{len(tickets) + 1:03d}",
                        "ticketDefinitionId": td_id,
                        "price": price,
                        "email": buyer_email,
                        "confirmed": True,
                        "archived": False,
                    }
                )
        payload = {
            "timestamp": _iso(now),
            "eventId": event_id,
            "orderNumber": number,
            "created": _iso(now),
            "email": buyer_email,
            "status": "PAID",
            "tickets": tickets,
            "invoice": _invoice(items),
        }
        # The name Wix's own SDK gives Order Confirmed (@wix/auto_sdk_events_orders): legacy
        # payload, no domain-event envelope.
        _webhook_queue(ORDER_CONFIRMED, number, payload)
    return payload


def _invoice(items: list[tuple[str, str, int, dict[str, str]]]) -> dict[str, Any]:
    def money(value: Decimal, currency: str) -> dict[str, str]:
        return {"value": f"{value:.2f}", "amount": f"{value:.2f}", "currency": currency}

    currency = items[0][3]["currency"]
    total = sum((Decimal(price["value"]) * quantity for _, _, quantity, price in items), Decimal(0))
    return {
        "items": [
            {
                "id": td_id,
                "name": name,
                "quantity": quantity,
                "price": price,
                "total": money(Decimal(price["value"]) * quantity, price["currency"]),
            }
            for td_id, name, quantity, price in items
        ],
        "subTotal": money(total, currency),
        "total": money(total, currency),
        "grandTotal": money(total, currency),
        "revenue": money(total, currency),
    }


def _first_price(data: dict[str, Any]) -> dict[str, str]:
    pricing = data["pricingMethod"]
    if pricing.get("fixedPrice"):
        return pricing["fixedPrice"]
    if pricing.get("guestPrice"):
        return pricing["guestPrice"]
    return pricing["pricingOptions"]["optionDetails"][0]["price"]
