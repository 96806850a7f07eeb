"""An unsubscribe from a link: suppressed here at once (the next send skips it), and written
back to every source that can take it (the local list, Mailchimp, …) and to Wix."""

from __future__ import annotations

import logging

from notifications.models import EmailSuppression
from notifications.sources.base import SourceError, email_normalise, sources_for_site
from sync.clients.wix import WixError
from sync.models import WixSite
from sync.services.sites import site_wix_client

log = logging.getLogger(__name__)


def unsubscribe_apply(*, site: WixSite, email: str) -> bool:
    """Idempotent; True the first time this address unsubscribes from this site."""
    email = email_normalise(email)
    _, created = EmailSuppression.objects.get_or_create(
        site=site, email=email, defaults={"reason": EmailSuppression.Reason.UNSUBSCRIBE_LINK}
    )
    if not created:
        return False
    for source in sources_for_site(site):
        try:
            source.unsubscribe(email=email)
        except SourceError:  # the suppression already holds; the source is told when it can be
            log.warning("Could not write an unsubscribe back to %s", source.label, exc_info=True)
    try:
        # https://dev.wix.com/docs/rest/crm/communication/email-subscriptions/upsert-email-subscription
        site_wix_client(site, fail_fast=True).upsert_email_subscription(email=email, status="UNSUBSCRIBED")
    except WixError:
        log.warning("Could not write an unsubscribe back to Wix for site %s", site.pk, exc_info=True)
    return True
