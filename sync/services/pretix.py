"""pretix: connecting the portal to one, and the fixes staff choose for what only they can decide."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction

from sync.clients.base import CallList, ExternalError, RecordedHttp
from sync.clients.pretix import ConnectionCheck, pretix_connection_check
from sync.clients.pretix.client import SLUG_TAKEN, PretixClient
from sync.clients.pretix.protocol import SLUG_MAX
from sync.models import EntityType, ExternalLink, ExternalSystem, LinkRepair, OutboundWork
from sync.services.adapters.pretix import PRETIX_DEFAULT_MAPPINGS, pretix_config
from sync.services.mapping import mappings_seed
from sync.services.push import calls_store, push_decide, work_retry

# pretix's own rule for an event's short form (pretix/base/models/event.py, Event.slug).
SLUG_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$")


@transaction.atomic
def pretix_system_ensure(
    *, url: str, organizer: str, token_env: str, name: str = "pretix", currency: str = "EUR"
) -> ExternalSystem:
    """Create (or point again) the pretix system; a new one gets the default mappings."""
    system, _ = ExternalSystem.objects.update_or_create(
        name=name,
        defaults={
            "kind": ExternalSystem.Kind.PRETIX,
            "base_url": url,
            "organizer": organizer,
            "auth_type": ExternalSystem.AuthType.TOKEN,
            "auth_secret_env": token_env,
            "default_currency": currency,
        },
    )
    system.full_clean()
    mappings_seed(system, PRETIX_DEFAULT_MAPPINGS)
    return system


def pretix_connection_test(system: ExternalSystem) -> list[ConnectionCheck]:
    """Check the token, the organizer and each permission the sync needs, changing nothing."""
    return pretix_connection_check(pretix_config(system), timeout=system.timeout)


# --- a slug another pretix event already has --------------------------------------------
class SlugFixError(ValueError):
    """The fix cannot be made (said to staff; nothing was changed in the portal)."""


def slug_conflict_of(work: OutboundWork) -> dict[str, Any] | None:
    """The slug conflict a dead letter reports, if that is why it is dead."""
    details = work.error_details or {}
    if work.status != OutboundWork.Status.DEAD or details.get("kind") != SLUG_TAKEN:
        return None
    return details


def _conflict(work: OutboundWork) -> tuple[dict[str, Any], str]:
    details = slug_conflict_of(work)
    if details is None or work.system.kind != ExternalSystem.Kind.PRETIX:
        raise SlugFixError("This work is not a dead letter for a pretix slug conflict.")
    wix_id = str(details["wix_event_id"])
    if ExternalLink.objects.filter(
        system=work.system, entity_type=EntityType.EVENT, wix_id=wix_id, deleted_at__isnull=True
    ).exists():
        raise SlugFixError(f"Wix event {wix_id} is linked to a pretix event already; retry the work instead.")
    return details, wix_id


def _link_made(
    work: OutboundWork, *, wix_id: str, event: dict[str, Any], reason: str, user: Any
) -> ExternalLink:
    """The event's new link (its payload hash empty: the next push sends the Wix data), with an audit row."""
    slug = str(event["slug"])
    try:
        with transaction.atomic():
            link = ExternalLink.objects.filter(
                system=work.system, entity_type=EntityType.EVENT, wix_id=wix_id
            ).first()
            old = link.external_id if link is not None else ""
            if link is None:
                link = ExternalLink(
                    system=work.system, site=work.site, entity_type=EntityType.EVENT, wix_id=wix_id
                )
            link.external_id, link.deleted_at = slug, None
            link.last_payload_hash, link.last_payload, link.drift = "", None, {}
            link.external_facts = {"currency": event["currency"]} if event.get("currency") else {}
            link.full_clean()
            link.save()
            LinkRepair.objects.create(
                link=link, old_external_id=old, new_external_id=slug, reason=reason, user=user
            )
    except IntegrityError:
        raise SlugFixError(f"pretix event {slug} is linked to another Wix event in the portal.") from None
    return link


def _retry_event_work(work: OutboundWork, wix_id: str, user: Any) -> int:
    """Push again everything that died of this event's slug (the event, its tickets and policies)."""
    dead = OutboundWork.objects.filter(
        system=work.system, status=OutboundWork.Status.DEAD, error_details__wix_event_id=wix_id
    ).values_list("pk", flat=True)
    return work_retry(work_ids=sorted({work.pk, *dead}), by=user, reason="staff fixed the pretix slug")


def _pretix_calls(
    work: OutboundWork, call: Callable[[PretixClient, RecordedHttp], dict[str, Any]]
) -> dict[str, Any]:
    """Make a staff fix's calls to the work's pretix, logged against the dead letter; pretix's
    refusal is said to staff."""
    calls = CallList()
    try:
        return call(
            PretixClient(pretix_config(work.system)), RecordedHttp(calls, timeout=work.system.timeout)
        )
    except ExternalError as exc:
        raise SlugFixError(str(exc)) from exc
    finally:
        calls_store(work=work, records=calls.records)


def pretix_event_adopt(*, work: OutboundWork, reason: str, user: Any) -> ExternalLink:
    """Staff: the pretix event that has the slug becomes the Wix event's (tagged with its Wix id,
    linked, audited), and the dead work is pushed again, updating that event from Wix."""
    details, wix_id = _conflict(work)
    if not details.get("pretix_event"):
        raise SlugFixError(f"No pretix event has slug {details['slug']!r}: choose another slug.")
    event = _pretix_calls(
        work, lambda client, http: client.event_adopt(http, slug=details["slug"], wix_id=wix_id)
    )
    name = details["pretix_event"].get("name") or ""
    link = _link_made(
        work,
        wix_id=wix_id,
        event=event,
        reason=f"Adopted pretix event {event['slug']} ({name!r}), made outside the portal, for Wix event "
        f"{wix_id} whose slug it had. {reason}".strip(),
        user=user,
    )
    _retry_event_work(work, wix_id, user)
    return link


def pretix_event_slug_use(*, work: OutboundWork, slug: str, reason: str, user: Any) -> ExternalLink:
    """Staff: make the Wix event's pretix event under another slug, link it, push the dead work again."""
    details, wix_id = _conflict(work)
    slug = slug.strip()
    if not SLUG_RE.match(slug) or len(slug) > SLUG_MAX:
        raise SlugFixError(
            f"{slug!r} is not a pretix slug: letters, digits, dots and dashes, at most {SLUG_MAX} "
            "characters, starting and ending with a letter or digit."
        )
    decision = push_decide(system=work.system, site=work.site, entity_type=EntityType.EVENT, wix_id=wix_id)
    if decision.payload is None:
        raise SlugFixError(f"Wix event {wix_id} is not mirrored, or deleted: nothing to make in pretix.")
    payload = {**decision.payload, "slug": slug}
    event = _pretix_calls(
        work,
        lambda client, http: client.event_create(
            http, wix_id=wix_id, payload=payload, create_only=decision.context.create_only
        ),
    )
    link = _link_made(
        work,
        wix_id=wix_id,
        event=event,
        reason=f"Staff chose slug {event['slug']}: {details['slug']} is used by another pretix event. "
        f"{reason}".strip(),
        user=user,
    )
    _retry_event_work(work, wix_id, user)
    return link
