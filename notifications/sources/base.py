"""The one interface every subscriber source implements, and the registry that lists a site's.

A source answers two questions for a site: who opted in for an event (subscribed to it or to
all events), and who opted out anywhere. The recipients of a sale-start email are the union of
the first over every source, minus the union of the second, then filtered by Wix's own email
subscription status (the last word on consent). Sources that can be written to take the
unsubscribe back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sync.models import WixSite


def email_normalise(email: str) -> str:
    """Addresses compare case-insensitively and without surrounding blanks."""
    return email.strip().lower()


@dataclass(frozen=True)
class Subscriber:
    email: str  # normalised (email_normalise)
    name: str = ""


class SourceError(Exception):
    """A source could not be read now (network, 429, 5xx): the caller retries later."""


class SourceBlocked(SourceError):
    """A source refuses us (401/403, a wrong key): retrying will not help; staff must act.
    The message is shown in the admin as the reason a campaign is blocked."""


class SubscriberSource(ABC):
    """One configured place subscribers live (the local list, a Mailchimp audience, a REST API)."""

    #: Shown to staff, e.g. "Local list" or "Mailchimp: Spring newsletter".
    label: str

    @abstractmethod
    def subscribers_for_event(self, *, event_wix_id: str) -> Iterable[Subscriber]:
        """Everyone opted in for this event or for all events (not those unsubscribed here)."""

    @abstractmethod
    def opted_out(self) -> Iterable[str]:
        """Normalised addresses unsubscribed in this source (they receive nothing, whatever
        another source says)."""

    def unsubscribe(self, *, email: str) -> bool:
        """Write an unsubscribe back where the source supports it; False where it cannot."""
        return False


SourceBuilder = Callable[["WixSite"], list[SubscriberSource]]
_BUILDERS: list[SourceBuilder] = []


def source_builder_register(builder: SourceBuilder) -> None:
    """Each kind of source registers, in ``AppConfig.ready()``, a function that returns the
    sources configured for a site."""
    if builder not in _BUILDERS:
        _BUILDERS.append(builder)


def sources_for_site(site: WixSite) -> list[SubscriberSource]:
    return [source for builder in _BUILDERS for source in builder(site)]
