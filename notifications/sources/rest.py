"""A generic REST API as a subscriber source.

One read of the API (every page) serves both questions; the result is kept for the life of
the source object (a campaign's resolution), not longer. Each item is read with the paths
staff set: an address (required and valid, else the item is skipped and counted, never a
crash), a name, a status (compared without case with the subscribed and unsubscribed
values; no status path: everyone listed is subscribed), and the Wix event ids it is
subscribed to (no path: all events; a list, or one id; the all-events marker, ``*`` by
default, means every event). Unsubscribes are not written back: a REST API's write side is
not described, so ``unsubscribe`` says it cannot (False).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from notifications.clients.base import RetryingHttp
from notifications.clients.rest import RestAuth, RestListing, RestSubscriberClient, json_path_get
from notifications.models import RestSource
from notifications.sources.base import (
    SourceBlocked,
    SourceError,
    Subscriber,
    SubscriberSource,
    email_normalise,
)
from notifications.sources.guard import ConnectionReport, source_guarded
from portal.secrets import MissingSecret, secret_read

if TYPE_CHECKING:
    from sync.models import WixSite

ClientFactory = Callable[[RestSource], RestSubscriberClient]
# Skipped items named in a report; the rest are only counted.
SKIPPED_SHOWN = 5


def rest_client_for(config: RestSource) -> RestSubscriberClient:
    """The source's client, with its secret read from the environment now (never stored)."""
    label = f"REST: {config.name}"
    secret = ""
    if config.auth_kind != RestSource.Auth.NONE:
        try:
            secret = secret_read(config.auth_secret_env, prefix="MARKETING_")
        except MissingSecret as exc:
            raise SourceBlocked(f"{label}: {exc}") from None
    listing = RestListing(
        url=config.url,
        items_path=config.items_path,
        paging=config.paging,
        next_path=config.next_path,
        offset_param=config.offset_param,
        limit_param=config.limit_param,
        page_param=config.page_param,
        page_size=max(1, config.page_size),
        total_path=config.total_path,
    )
    auth = RestAuth(
        kind=config.auth_kind, secret=secret, username=config.auth_username, header=config.auth_header
    )
    return RestSubscriberClient(listing=listing, auth=auth, http=RetryingHttp(label=label))


def _values(text: str) -> set[str]:
    return {v.strip().lower() for v in text.split(",") if v.strip()}


@dataclass
class RestEntry:
    subscriber: Subscriber
    status: str  # "subscribed", "unsubscribed" or "other"
    all_events: bool
    event_ids: frozenset[str]


@dataclass
class RestRead:
    """Everyone the API listed, read once; items that could not be used are counted."""

    entries: list[RestEntry] = field(default_factory=list)
    items: int = 0
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        counts = {s: sum(1 for e in self.entries if e.status == s) for s in ("subscribed", "unsubscribed")}
        text = (
            f"{self.items} item(s): {counts['subscribed']} subscribed, {counts['unsubscribed']} "
            f"unsubscribed, {len(self.skipped)} skipped"
        )
        if self.skipped:
            text += " (" + "; ".join(self.skipped[:SKIPPED_SHOWN])
            text += (
                f"; … {len(self.skipped) - SKIPPED_SHOWN} more)" if len(self.skipped) > SKIPPED_SHOWN else ")"
            )
        return text + "."


def rest_entry(
    config: RestSource, item: Any, *, subscribed: set[str], unsubscribed: set[str]
) -> RestEntry | str:
    """One item read with the source's paths, or why it cannot be used."""
    if not isinstance(item, dict):
        return "not an object"
    raw_email = json_path_get(item, config.email_path)
    if not isinstance(raw_email, str) or not raw_email.strip():
        return f"no address at '{config.email_path}'"
    email = email_normalise(raw_email)
    try:
        validate_email(email)
    except ValidationError:
        return f"{raw_email.strip()[:80]!r} is not an email address"
    name = json_path_get(item, config.name_path) if config.name_path else ""
    if config.status_path:
        raw_status = json_path_get(item, config.status_path)
        value = str(raw_status).strip().lower() if isinstance(raw_status, str | int | bool) else ""
        status = "subscribed" if value in subscribed else "unsubscribed" if value in unsubscribed else "other"
    else:
        status = "subscribed"
    all_events, event_ids = True, frozenset[str]()
    if config.event_ids_path:
        raw_ids = json_path_get(item, config.event_ids_path)
        ids = raw_ids if isinstance(raw_ids, list) else [raw_ids] if raw_ids not in (None, "") else []
        event_ids = frozenset(str(i).strip() for i in ids if isinstance(i, str | int) and str(i).strip())
        all_events = bool(config.all_events_marker) and config.all_events_marker in event_ids
    return RestEntry(
        subscriber=Subscriber(email=email, name=str(name).strip() if isinstance(name, str | int) else ""),
        status=status,
        all_events=all_events,
        event_ids=event_ids,
    )


class RestSubscriberSource(SubscriberSource):
    def __init__(self, config: RestSource, *, client_factory: ClientFactory = rest_client_for) -> None:
        self.config = config
        self.label = f"REST: {config.name}"
        self._client_factory = client_factory
        self._read: RestRead | None = None

    def read(self) -> RestRead:
        """Every item of the API, read once per source object."""
        if self._read is None:
            client = self._client_factory(self.config)
            subscribed = _values(self.config.subscribed_values)
            unsubscribed = _values(self.config.unsubscribed_values)

            def fetch() -> RestRead:
                result = RestRead()
                for index, item in enumerate(client.items()):
                    result.items += 1
                    entry = rest_entry(self.config, item, subscribed=subscribed, unsubscribed=unsubscribed)
                    if isinstance(entry, str):
                        result.skipped.append(f"item {index + 1}: {entry}")
                    else:
                        result.entries.append(entry)
                return result

            self._read = source_guarded(self.label, fetch)
        return self._read

    @property
    def skipped(self) -> list[str]:
        """Why items were skipped in the last read (for a report; they are not errors)."""
        return self._read.skipped if self._read is not None else []

    def subscribers_for_event(self, *, event_wix_id: str) -> list[Subscriber]:
        found: dict[str, Subscriber] = {}
        for entry in self.read().entries:
            if entry.status == "subscribed" and (entry.all_events or event_wix_id in entry.event_ids):
                found.setdefault(entry.subscriber.email, entry.subscriber)
        return list(found.values())

    def opted_out(self) -> list[str]:
        return sorted({e.subscriber.email for e in self.read().entries if e.status == "unsubscribed"})


def rest_connection_test(*, config: RestSource) -> ConnectionReport:
    """Read the whole API once and say what was found (skipped items with their reasons)."""
    source = RestSubscriberSource(config)
    try:
        result = source.read()
    except SourceError as exc:
        return ConnectionReport(ok=False, lines=[str(exc)])
    return ConnectionReport(ok=True, lines=[result.summary()])


def rest_sources_for_site(site: WixSite) -> list[SubscriberSource]:
    """The builder registered with ``source_builder_register``: the site's active REST sources."""
    configs: Iterable[RestSource] = RestSource.objects.filter(site=site, is_active=True)
    return [RestSubscriberSource(config) for config in configs]
