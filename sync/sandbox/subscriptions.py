"""The fake site's Email Subscriptions (wix-api.md §4a): Query by ``email $in``, Upsert, and
the Email Subscription Changed webhook sent on every change, signed like the others."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from sync.sandbox.models import SandboxEmailSubscription
from sync.sandbox.services import SandboxError, _iso, _webhook_queue

EVENT_TYPE = "com.wixpress.emailsubscriptions.v1.EmailSubscriptionChanged"
FQDN = "wix.emailsubscriptions.v1.emailsubscription"
MAX_IN = 100  # the sandbox refuses more addresses per query than the portal asks in a batch

# One demo address per status Wix can report, for the notifications demo (its local list
# holds the same addresses, so only the SUBSCRIBED ones, and NOT_SET where allowed, get mail).
DEMO: list[tuple[str, str, str]] = [
    ("ana@example.com", "SUBSCRIBED", "VALID"),
    ("bruno@example.com", "SUBSCRIBED", "VALID"),
    ("carla@example.com", "NOT_SET", "NOT_SET"),
    ("duarte@example.com", "UNSUBSCRIBED", "VALID"),
    ("eva@example.com", "SUBSCRIBED", "BOUNCED"),
    ("filipe@example.com", "SUBSCRIBED", "SPAM_COMPLAINT"),
    ("helena@example.com", "SUBSCRIBED", "VALID"),  # opted in for the gala only
    ("ines@example.com", "SUBSCRIBED", "VALID"),  # unsubscribed on the portal's own list
]


def _public(row: SandboxEmailSubscription) -> dict[str, Any]:
    return {
        "id": row.wix_id,
        "email": row.email,
        "subscriptionStatus": row.subscription_status,
        "deliverabilityStatus": row.deliverability_status,
        "createdDate": _iso(row.created_at),
        "updatedDate": _iso(row.updated_at),
    }


def subscriptions_query(*, body: dict[str, Any]) -> dict[str, Any]:
    condition = (body.get("filter") or {}).get("email")
    if not isinstance(condition, dict) or not isinstance(condition.get("$in"), list) or len(condition) != 1:
        raise SandboxError(400, "INVALID_ARGUMENT", "Only filter.email.$in is supported", field="filter")
    emails = [str(e).strip().lower() for e in condition["$in"]]
    if len(emails) > MAX_IN:
        raise SandboxError(400, "OUT_OF_RANGE", f"At most {MAX_IN} addresses", field="filter.email")
    paging = body.get("paging") or {}
    limit, offset = int(paging.get("limit") or 100), int(paging.get("offset") or 0)
    rows = list(SandboxEmailSubscription.objects.filter(email__in=emails).order_by("email"))
    page = rows[offset : offset + limit]
    return {
        "subscriptions": [_public(r) for r in page],
        "metadata": {"count": len(page), "offset": offset, "total": len(rows), "tooManyToCount": False},
    }


def subscription_upsert(
    *, email: str, status: str | None = None, deliverability: str | None = None, webhooks: bool = True
) -> dict[str, Any]:
    """Create or change an address's subscription; a change sends Email Subscription Changed."""
    email = email.strip().lower()
    if "@" not in email:
        raise SandboxError(400, "INVALID_ARGUMENT", "email is not an address", field="subscription.email")
    if status is not None and status not in SandboxEmailSubscription.Status.values:
        raise SandboxError(
            400, "INVALID_ARGUMENT", "subscriptionStatus value is required", field="subscriptionStatus"
        )
    with transaction.atomic():
        row, created = SandboxEmailSubscription.objects.select_for_update().get_or_create(
            email=email, defaults={"wix_id": str(uuid.uuid4())}
        )
        before = (row.subscription_status, row.deliverability_status)
        row.subscription_status = status or row.subscription_status
        row.deliverability_status = deliverability or row.deliverability_status
        row.save()
        if webhooks and (created or before != (row.subscription_status, row.deliverability_status)):
            envelope = {
                "id": str(uuid.uuid4()),
                "entityFqdn": FQDN,
                "slug": "changed",
                "entityId": row.wix_id,
                "eventTime": _iso(timezone.now()),
                "actionEvent": {"body": {"subscription": _public(row)}},
            }
            _webhook_queue(EVENT_TYPE, row.wix_id, envelope)
    return {"subscription": _public(row)}


def subscriptions_demo_seed() -> None:
    for email, status, deliverability in DEMO:
        if not SandboxEmailSubscription.objects.filter(email=email).exists():
            subscription_upsert(email=email, status=status, deliverability=deliverability, webhooks=False)


def query_view(request: HttpRequest, body: dict[str, Any]) -> dict[str, Any]:
    return subscriptions_query(body=body)


def upsert_view(request: HttpRequest, body: dict[str, Any]) -> dict[str, Any]:
    if request.method != "POST":
        raise SandboxError(405, "METHOD_NOT_ALLOWED", "Use POST")
    subscription = body.get("subscription")
    if not isinstance(subscription, dict) or not isinstance(subscription.get("email"), str):
        raise SandboxError(400, "INVALID_ARGUMENT", "subscription.email is required", field="subscription")
    return subscription_upsert(email=subscription["email"], status=subscription.get("subscriptionStatus"))
