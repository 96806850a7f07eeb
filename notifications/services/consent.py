"""Who receives a sale-start email: every source's opted-in, minus anyone opted out anywhere,
minus the suppression list, then Wix's own Email Subscriptions have the last word.

Wix (wix-api.md §4a) answers only for addresses it is asked about (``email $in``, in
batches): only ``SUBSCRIBED`` is an opt-in (``NOT_SET`` too where staff allow it per site);
``UNSUBSCRIBED``, ``BOUNCED`` and ``SPAM_COMPLAINT`` are never mailed. The Email Subscription
Changed webhook keeps the suppression list in step between sends.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from notifications.models import EmailSuppression, SiteNotificationSettings
from notifications.sources.base import (
    SourceBlocked,
    SourceError,
    Subscriber,
    email_normalise,
    sources_for_site,
)
from sync.clients.wix import WixAuthError, WixClientError, WixError
from sync.models import Event, WixSite
from sync.services.sites import site_wix_client

# Deliverability Wix reports for an address that must never be mailed.
UNDELIVERABLE = frozenset({"BOUNCED", "SPAM_COMPLAINT", "INACTIVE"})
EMAIL_SUBSCRIPTION_CHANGED = "com.wixpress.emailsubscriptions.v1.EmailSubscriptionChanged"
EMAIL_SUBSCRIPTION_FQDN = "wix.emailsubscriptions.v1.emailsubscription"


@dataclass
class Resolved:
    recipients: list[Subscriber]
    excluded: Counter[str] = field(default_factory=Counter)  # why the others were left out


def site_settings(site: WixSite) -> SiteNotificationSettings:
    found = SiteNotificationSettings.objects.filter(site=site).first()
    return found or SiteNotificationSettings(site=site)


def wix_consent_allows(subscription: dict[str, Any] | None, *, allow_not_set: bool) -> str | None:
    """None when Wix lets this address be mailed; otherwise the reason it does not."""
    if subscription is None:
        return None if allow_not_set else "wix:NOT_SET"  # Wix has never seen it
    deliverability = str(subscription.get("deliverabilityStatus") or "")
    if deliverability in UNDELIVERABLE:
        return f"wix:{deliverability}"
    status = str(subscription.get("subscriptionStatus") or "NOT_SET")
    if status == "SUBSCRIBED" or (status == "NOT_SET" and allow_not_set):
        return None
    return f"wix:{status}"


def candidates_resolve(*, site: WixSite, event_wix_id: str) -> Resolved:
    """Sources, opt-outs and suppression, without asking Wix (the admin's estimate uses it)."""
    opted_in: dict[str, Subscriber] = {}
    opted_out: set[str] = set()
    for source in sources_for_site(site):
        for subscriber in source.subscribers_for_event(event_wix_id=event_wix_id):
            opted_in.setdefault(email_normalise(subscriber.email), subscriber)
        opted_out.update(email_normalise(e) for e in source.opted_out())
    suppressed = set(EmailSuppression.objects.filter(site=site).values_list("email", flat=True))
    resolved = Resolved([])
    for email, subscriber in sorted(opted_in.items()):
        if email in opted_out:
            resolved.excluded["opted out"] += 1
        elif email in suppressed:
            resolved.excluded["suppressed"] += 1
        else:
            resolved.recipients.append(Subscriber(email=email, name=subscriber.name))
    return resolved


def recipients_resolve(*, site: WixSite, event: Event | str) -> Resolved:
    """The recipients of a sale-start email for this event.

    Raises ``SourceBlocked`` when a source or Wix refuses us (401/403: staff must act; the
    campaign is blocked with this reason) and ``SourceError`` when one cannot be read now.
    """
    event_wix_id = event if isinstance(event, str) else event.wix_id
    resolved = candidates_resolve(site=site, event_wix_id=event_wix_id)
    if not resolved.recipients:
        return resolved
    allow_not_set = site_settings(site).allow_not_set
    try:
        client = site_wix_client(site, fail_fast=True)
        emails = [s.email for s in resolved.recipients]
        known = {
            email_normalise(str(sub.get("email") or "")): sub
            for sub in client.query_email_subscriptions(emails, batch=settings.NOTIFICATIONS_WIX_BATCH)
        }
    except WixAuthError as exc:
        raise SourceBlocked(f"Wix refused the Email Subscriptions query: {exc}") from exc
    except WixClientError as exc:
        raise SourceBlocked(f"Wix rejected the Email Subscriptions query: {exc}") from exc
    except WixError as exc:
        raise SourceError(f"Wix Email Subscriptions could not be read: {exc}") from exc
    kept = []
    for subscriber in resolved.recipients:
        reason = wix_consent_allows(known.get(subscriber.email), allow_not_set=allow_not_set)
        if reason is None:
            kept.append(subscriber)
        else:
            resolved.excluded[reason] += 1
    resolved.recipients = kept
    return resolved


# --- the Email Subscription Changed webhook -----------------------------------------------
def _carried_subscription(data: dict[str, Any]) -> dict[str, Any] | None:
    """Wix's data carries ``subscription`` (wix-api.md §4a); read it at the top, in an action
    body, or as an updated/created entity, each as an object or a JSON string."""
    from sync.services.webhooks import carried_action_body, carried_entity

    if isinstance(data.get("subscription"), dict):
        return data["subscription"]
    body = carried_action_body(data)
    if isinstance(body.get("subscription"), dict):
        return body["subscription"]
    if data.get("slug") in ("created", "updated"):
        return carried_entity(data)
    return body if "email" in body else None


def suppression_apply_from_wix(site: WixSite, data: dict[str, Any]) -> str:
    """A webhook handler: Wix says an address's consent changed; the suppression list follows
    (added when it may not be mailed, removed when Wix's own suppression is lifted)."""
    from sync.services.webhooks import WebhookMalformed

    subscription = _carried_subscription(data)
    if not subscription or not isinstance(subscription.get("email"), str):
        raise WebhookMalformed("the subscription (with its email) is missing")
    email = email_normalise(subscription["email"])
    status = str(subscription.get("subscriptionStatus") or "NOT_SET")
    deliverability = str(subscription.get("deliverabilityStatus") or "NOT_SET")
    if status == "UNSUBSCRIBED" or deliverability in UNDELIVERABLE:
        row, created = EmailSuppression.objects.get_or_create(
            site=site,
            email=email,
            defaults={"reason": EmailSuppression.Reason.WIX, "detail": f"{status}, {deliverability}"[:200]},
        )
        if not created and row.reason == EmailSuppression.Reason.WIX:
            row.detail = f"{status}, {deliverability}"[:200]
            row.save(update_fields=["detail", "updated_at"])
        # An unsubscribe link's (or staff's) suppression keeps its reason: Wix echoing it back
        # (the portal wrote UNSUBSCRIBED there) must not turn it into one Wix may lift.
        return "suppressed"
    # Subscribed again on Wix: lift only Wix's own suppression (an unsubscribe link stays).
    deleted, _ = EmailSuppression.objects.filter(
        site=site, email=email, reason=EmailSuppression.Reason.WIX
    ).delete()
    return "unsuppressed" if deleted else "unchanged"
