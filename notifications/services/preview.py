"""What staff see before a campaign goes: its email rendered, a test sent to themselves, and
how many it would reach (before Wix's consent check, which is asked only when it sends)."""

from __future__ import annotations

from typing import Any

from django.core.mail import get_connection

from notifications.models import SaleStartCampaign
from notifications.services.consent import candidates_resolve
from notifications.services.emails import (
    Rendered,
    Templates,
    campaign_context,
    message_build,
    sample_context,
    templates_for_site,
    templates_render,
    unsubscribe_url,
)
from notifications.sources.base import SourceError
from portal.audit import audit
from sync.models import WixSite


def campaign_preview(
    *, campaign: SaleStartCampaign | None, templates: Templates, site: WixSite | None = None
) -> Rendered:
    """The email as a recipient named Ana would get it (a sample event without a campaign)."""
    if campaign is None:
        return templates_render(templates, sample_context())
    context = {
        **campaign_context(campaign),
        "name": "Ana",
        "unsubscribe_url": unsubscribe_url(site=campaign.site, email="ana@example.com"),
    }
    return templates_render(templates, context)


def next_campaign(site: WixSite) -> SaleStartCampaign | None:
    return (
        SaleStartCampaign.objects.filter(site=site)
        .order_by("-sale_start")
        .select_related("site", "event")
        .first()
    )


def campaign_send_test(*, campaign: SaleStartCampaign, to: str, by: Any = None) -> None:
    """The real email, to one staff address, outside the ledger (it counts for nobody)."""
    message = message_build(
        campaign=campaign,
        templates=templates_for_site(campaign.site),
        context=campaign_context(campaign),
        email=to,
        name=getattr(by, "first_name", "") or "",
        message_id=f"<sale-start-test.{campaign.pk}.{id(message_build)}@portal>",
    )
    message.subject = f"[Test] {message.subject}"
    with get_connection() as connection:
        connection.send_messages([message])
    audit(by, campaign, f"Sent a test to {to}.")


def campaign_estimate(campaign: SaleStartCampaign) -> int | str:
    """Opted in, minus opted out and suppressed (Wix may leave out more when it sends); or why
    it cannot be counted now (a source that cannot be read must not break the admin's page)."""
    try:
        return len(candidates_resolve(site=campaign.site, event_wix_id=campaign.event_wix_id).recipients)
    except SourceError as exc:
        return f"unknown ({exc})"
