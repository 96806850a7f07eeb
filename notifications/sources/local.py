"""The local list: subscribers staff keep in the admin (and import from CSV)."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone

from notifications.models import LocalSubscriber
from notifications.sources.base import Subscriber, SubscriberSource, email_normalise
from sync.models import WixSite


class LocalListSource(SubscriberSource):
    label = "Local list"

    def __init__(self, site: WixSite) -> None:
        self.site = site

    def subscribers_for_event(self, *, event_wix_id: str) -> Iterable[Subscriber]:
        # The chosen events are a JSON list; SQLite cannot look inside one, so they are read here.
        rows = LocalSubscriber.objects.filter(site=self.site, unsubscribed=False)
        for email, name, all_events, chosen in rows.values_list(
            "email", "name", "all_events", "event_wix_ids"
        ):
            if all_events or event_wix_id in (chosen or []):
                yield Subscriber(email=email_normalise(email), name=name)

    def opted_out(self) -> Iterable[str]:
        return (
            email_normalise(e)
            for e in LocalSubscriber.objects.filter(site=self.site, unsubscribed=True).values_list(
                "email", flat=True
            )
        )

    def unsubscribe(self, *, email: str) -> bool:
        LocalSubscriber.objects.filter(
            site=self.site, email=email_normalise(email), unsubscribed=False
        ).update(unsubscribed=True, unsubscribed_at=timezone.now(), updated_at=timezone.now())
        return True


def local_sources(site: WixSite) -> list[SubscriberSource]:
    """Every site has its local list (empty until staff fill it)."""
    return [LocalListSource(site)]
