"""The push channel: each notification of a site with a push endpoint is also POSTed there,
once, from the same ledger (a ``Notification`` row per campaign, channel ``push`` and address)."""

from __future__ import annotations

from typing import Any

import requests

from notifications.clients.push import push_post
from notifications.models import Notification, PushEndpoint, SaleStartCampaign
from notifications.services.emails import unsubscribe_url
from portal.secrets import MissingSecret, secret_read

# 408 and 429 mean "not now", 5xx "not us": retried; any other 4xx is final.
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})


class PushTransient(Exception):
    pass


class PushFailed(Exception):
    pass


def push_endpoint_for(campaign: SaleStartCampaign) -> PushEndpoint | None:
    return PushEndpoint.objects.filter(site_id=campaign.site_id, is_active=True).first()


def push_payload(
    notification: Notification, campaign: SaleStartCampaign, context: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": notification.pk,
        "type": "sale_started",
        "campaign": campaign.pk,
        "saleStart": campaign.sale_start.isoformat(),
        "event": {"wixId": campaign.event_wix_id, **context["event"]},
        "tickets": context["tickets"],
        "recipient": {"email": notification.email, "name": notification.name},
        "unsubscribeUrl": unsubscribe_url(site=campaign.site, email=notification.email),
    }


def push_deliver(*, notification: Notification, campaign: SaleStartCampaign, context: dict[str, Any]) -> None:
    """POST one notification; raises ``PushTransient`` (retry) or ``PushFailed`` (final)."""
    endpoint = push_endpoint_for(campaign)
    if endpoint is None:
        raise PushFailed("the site has no active push endpoint")
    try:
        secret = secret_read(endpoint.secret_env, prefix="MARKETING_")
    except MissingSecret as exc:
        raise PushFailed(str(exc)) from exc
    try:
        response = push_post(
            url=endpoint.url,
            secret=secret,
            payload=push_payload(notification, campaign, context),
            idempotency_key=f"sale-start-{notification.pk}",
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise PushTransient(f"{exc.__class__.__name__}: {exc}") from exc
    if response.status_code < 300:
        return
    error = f"HTTP {response.status_code}: {response.text[:200]}"
    if response.status_code in RETRYABLE:
        raise PushTransient(error)
    raise PushFailed(error)
