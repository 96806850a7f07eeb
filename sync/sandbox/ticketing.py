"""The sandbox's fake ticketing system: a small REST API the generic adapter can target.

``POST /sandbox/ticketing/<collection>/`` creates (201, ``{"id": ...}``; a repeated
``Idempotency-Key`` answers the first record again), ``PUT``/``PATCH .../<id>`` updates,
``DELETE`` deletes (204), ``GET`` reads. Bearer auth; injected faults and an optional
delay (``SANDBOX_TICKETING_DELAY_MS``) let tests and benchmarks play a slow or failing target.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sync.domain.mapping import MappingRow
from sync.models import EntityType, ExternalEndpoint, ExternalSystem
from sync.sandbox.models import SandboxTicketingRecord
from sync.sandbox.services import fault_take
from sync.services.mapping import mappings_seed

TOKEN_ENV = "EXTERNAL_SANDBOX_TOKEN"  # noqa: S105 - the name of a variable, not a secret


def _gate(request: HttpRequest) -> JsonResponse | None:
    if not settings.PORTAL_SANDBOX:
        raise Http404("The sandbox is off.")
    if settings.SANDBOX_TICKETING_DELAY_MS:
        time.sleep(settings.SANDBOX_TICKETING_DELAY_MS / 1000)
    fault = fault_take(request.path)
    if fault is not None:
        response = JsonResponse({"error": fault.message or "Injected fault"}, status=fault.status)
        if fault.retry_after is not None:
            response["Retry-After"] = str(fault.retry_after)
        return response
    given = request.headers.get("Authorization", "")
    if not secrets.compare_digest(given, f"Bearer {settings.EXTERNAL_SANDBOX_TOKEN}"):
        return JsonResponse({"error": "invalid token"}, status=401)
    return None


def _body(request: HttpRequest) -> dict[str, Any] | JsonResponse:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"error": "body is not JSON"}, status=400)
    if not isinstance(body, dict):
        return JsonResponse({"error": "body is not a JSON object"}, status=400)
    if not body.get("name") and not body.get("title"):
        return JsonResponse({"error": "name or title is required", "field": "name"}, status=400)
    return body


@csrf_exempt
def collection_view(request: HttpRequest, collection: str) -> HttpResponse:
    if (refused := _gate(request)) is not None:
        return refused
    if request.method == "GET":
        rows = SandboxTicketingRecord.objects.filter(collection=collection, deleted=False)
        return JsonResponse({"results": [{"id": r.record_id, **r.data} for r in rows]})
    if request.method != "POST":
        return JsonResponse({"error": "use GET or POST"}, status=405)
    body = _body(request)
    if isinstance(body, JsonResponse):
        return body
    key = request.headers.get("Idempotency-Key") or None
    try:
        with transaction.atomic():
            record = SandboxTicketingRecord.objects.create(
                collection=collection, record_id=uuid.uuid4().hex[:12], data=body, idempotency_key=key
            )
    except IntegrityError:
        record = SandboxTicketingRecord.objects.get(idempotency_key=key)
        return JsonResponse({"id": record.record_id, **record.data}, status=200)
    return JsonResponse({"id": record.record_id, **record.data}, status=201)


@csrf_exempt
def record_view(request: HttpRequest, collection: str, record_id: str) -> HttpResponse:
    if (refused := _gate(request)) is not None:
        return refused
    record = SandboxTicketingRecord.objects.filter(
        collection=collection, record_id=record_id, deleted=False
    ).first()
    if record is None:
        return JsonResponse({"error": f"{collection}/{record_id} not found"}, status=404)
    if request.method == "GET":
        return JsonResponse({"id": record.record_id, **record.data})
    if request.method == "DELETE":
        record.deleted = True
        record.save(update_fields=["deleted", "updated_at"])
        return HttpResponse(status=204)
    if request.method not in ("PUT", "PATCH"):
        return JsonResponse({"error": "use GET, PUT, PATCH or DELETE"}, status=405)
    body = _body(request)
    if isinstance(body, JsonResponse):
        return body
    record.data = body if request.method == "PUT" else {**record.data, **body}
    record.writes += 1
    record.save(update_fields=["data", "writes", "updated_at"])
    return JsonResponse({"id": record.record_id, **record.data})


# The default mapping the quick start syncs with; staff change it in the admin.
DEFAULT_MAPPINGS: dict[str, list[MappingRow]] = {
    EntityType.POLICY: [
        ("eventId", "event_ref", "text", "", True),
        ("name", "title", "text", "", True),
        ("body", "text", "text", "", True),
        ("", "source", "constant", '"wix"', False),
    ],
    EntityType.TICKET_DEFINITION: [
        ("eventId", "event_ref", "text", "", True),
        ("name", "name", "text", "", True),
        ("description", "description", "text", "", False),
        ("pricingMethod.fixedPrice.value", "price", "decimal", "", False),
        ("pricingMethod.guestPrice.value", "minimum_price", "decimal", "", False),
        ("pricingMethod.pricingOptions.optionDetails[*].name", "options[*].name", "text", "", False),
        (
            "pricingMethod.pricingOptions.optionDetails[*].price.value",
            "options[*].price",
            "decimal",
            "",
            False,
        ),
        ("initialLimit", "capacity", "integer", "", False),
        ("salePeriod.startDate", "sales.start", "datetime", "", False),
        ("salePeriod.endDate", "sales.end", "datetime", "", False),
        ("hidden", "active", "enum_map", '{"true": false, "false": true}', False),
    ],
}


def rest_system_configure(system: ExternalSystem, collections: dict[str, str]) -> None:
    """Give a generic REST system the sandbox-style endpoints (``<collection>/<id>``) and the
    default mapping."""
    for entity_type, collection in collections.items():
        ExternalEndpoint.objects.create(
            system=system,
            entity_type=entity_type,
            create_path=f"{collection}/",
            update_path=f"{collection}/{{external_id}}",
            delete_path=f"{collection}/{{external_id}}",
        )
    mappings_seed(system, {entity_type: DEFAULT_MAPPINGS[entity_type] for entity_type in collections})


def sandbox_ticketing_ensure() -> ExternalSystem:
    system, created = ExternalSystem.objects.get_or_create(
        name="Sandbox ticketing",
        defaults={
            "base_url": f"{settings.PORTAL_BASE_URL}/sandbox/ticketing",
            "auth_type": ExternalSystem.AuthType.BEARER,
            "auth_secret_env": TOKEN_ENV,
        },
    )
    if created:
        rest_system_configure(
            system, {EntityType.POLICY: "policies", EntityType.TICKET_DEFINITION: "ticket-types"}
        )
    return system
