"""The quick start's subscribers: the sandbox's demo addresses on the local list, so that the
demo's sale start emails exactly those Wix lets through (ana and bruno) and nobody else."""

from __future__ import annotations

from django.utils import timezone

from notifications.models import LocalSubscriber
from sync.models import WixSite
from sync.sandbox.demo import demo_id
from sync.sandbox.subscriptions import DEMO


def demo_subscribers_seed(*, site: WixSite) -> int:
    """Idempotent; returns how many it added."""
    added = 0
    for email, _, _ in DEMO:
        name = email.split("@")[0].title()
        gala_only = email.startswith("helena")
        _, created = LocalSubscriber.objects.get_or_create(
            site=site,
            email=email,
            defaults={
                "name": name,
                "all_events": not gala_only,
                "event_wix_ids": [demo_id("event:spring-gala")] if gala_only else [],
                "unsubscribed": email.startswith("ines"),
                "consent_at": timezone.now(),
                "consent_source": "quick start demo",
            },
        )
        added += created
    return added
