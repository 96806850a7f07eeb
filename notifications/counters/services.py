"""Counters rendered once per change, into the ``counters`` cache the endpoint serves from.

The flow: a mirror changes (``sync.services.mirrors.mirror_changed``) → the counters of that
ticket definition (or of that event's definitions) are rendered and written to the cache
with an ETag → the JSON endpoint answers from the cache (no database), an open SSE stream
sees the new ETag at its next look, and a Velo push (a job row) is queued where configured.

A request that finds nothing cached (first request, or expired after
``COUNTER_CACHE_SECONDS``) renders from the database once and fills the cache; an unknown
slug is remembered briefly too, so a flood of bad slugs does not each cost a query.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.db import transaction

from notifications.counters.values import counter_document, counter_value
from notifications.models import TicketCounter
from sync.models import TicketDefinition, WixSite

MISSING_SECONDS = 30


def counter_cache() -> BaseCache:
    return caches["counters"]


def _key(slug: str) -> str:
    return f"counter:{slug}"


# Each web process keeps what it last read for COUNTER_LOCAL_SECONDS (0.2): a burst of
# requests, or many open streams of one counter, costs one cache read per process per that
# time rather than one each. A value rendered in this process is seen here at once.
_local: dict[str, tuple[float, dict[str, Any] | None]] = {}


def _cache_read(slug: str) -> Any:
    now = time.monotonic()
    held = _local.get(slug)
    if held is not None and held[0] > now:
        return held[1]
    entry = counter_cache().get(_key(slug))
    _local[slug] = (now + settings.COUNTER_LOCAL_SECONDS, entry)
    return entry


def _cache_write(slug: str, entry: dict[str, Any], timeout: int) -> None:
    counter_cache().set(_key(slug), entry, timeout=timeout)
    _local[slug] = (time.monotonic() + settings.COUNTER_LOCAL_SECONDS, entry)


def counters_local_forget() -> None:
    """Drop this process's copies (tests)."""
    _local.clear()


def counter_definition(counter: TicketCounter) -> TicketDefinition | None:
    return (
        TicketDefinition.objects.select_related("event")
        .filter(site_id=counter.site_id, wix_id=counter.ticket_definition_wix_id)
        .first()
    )


def counter_render(*, counter: TicketCounter, definition: TicketDefinition | None = None) -> dict[str, Any]:
    """The counter's document now (reads the mirror unless given it)."""
    definition = definition if definition is not None else counter_definition(counter)
    return counter_document(counter=counter, value=counter_value(counter=counter, definition=definition))


def counter_publish(
    *, counter: TicketCounter, definition: TicketDefinition | None = None, announce: bool = True
) -> dict[str, Any]:
    """Render the counter into the cache; returns the cache entry. ``announce``: a change
    (not a cache refill) also queues the Velo push when the value differs."""
    document = counter_render(counter=counter, definition=definition)
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:24] + '"'
    previous = counter_cache().get(_key(counter.slug))
    entry = {"etag": etag, "body": body, "origins": counter.origins, "published_at": time.time()}
    _cache_write(counter.slug, entry, settings.COUNTER_CACHE_SECONDS)
    changed = not isinstance(previous, dict) or previous.get("etag") != etag
    if announce and changed and counter.velo_url:
        from notifications.counters.velo import velo_push_enqueue

        velo_push_enqueue(counter=counter, payload=document)
    return entry


def counter_forget(*, slug: str) -> None:
    """A counter renamed or deleted: its old slug stops serving at once."""
    counter_cache().delete(_key(slug))
    _local.pop(slug, None)


def counter_entry(*, slug: str) -> dict[str, Any] | None:
    """What the endpoint serves for ``slug`` (None: no such counter). Normally one cache read;
    after a miss, one database read that fills the cache."""
    entry = _cache_read(slug)
    if isinstance(entry, dict):
        return None if entry.get("missing") else entry
    counter = TicketCounter.objects.filter(slug=slug).first()
    if counter is None:
        _cache_write(slug, {"missing": True}, MISSING_SECONDS)
        return None
    return counter_publish(counter=counter, announce=False)


def counter_entry_cached(*, slug: str) -> dict[str, Any] | None:
    """The cached entry only (an open SSE stream looks here; it never opens the database)."""
    entry = _cache_read(slug)
    return entry if isinstance(entry, dict) and not entry.get("missing") else None


def counters_publish_for(*, site: WixSite, definition_ids: list[str]) -> int:
    """Render every counter of these ticket definitions; returns how many."""
    counters = list(TicketCounter.objects.filter(site=site, ticket_definition_wix_id__in=definition_ids))
    if not counters:
        return 0
    definitions = {
        d.wix_id: d
        for d in TicketDefinition.objects.select_related("event").filter(
            site=site, wix_id__in=[c.ticket_definition_wix_id for c in counters]
        )
    }
    for counter in counters:
        counter_publish(counter=counter, definition=definitions.get(counter.ticket_definition_wix_id))
    return len(counters)


def counters_on_mirror_changed(
    sender: object, *, site: WixSite, entity_type: str, mirror: Any, outcome: str, **kwargs: Any
) -> None:
    """``mirror_changed`` receiver: quick (database reads and cache writes, no call out) and
    idempotent (rendering twice writes the same entry)."""
    if entity_type == "ticket_definition":
        ids = [mirror.wix_id]
    elif entity_type == "event":
        ids = list(
            TicketDefinition.objects.filter(site=site, event_wix_id=mirror.wix_id).values_list(
                "wix_id", flat=True
            )
        )
    else:
        return
    # Rendered once the writer's transaction has committed (never an uncommitted value in the
    # shared cache). robust: a cache that is down is logged, not raised into the mirror write
    # (already done); the entry expires after COUNTER_CACHE_SECONDS and is rendered afresh.
    transaction.on_commit(lambda: counters_publish_for(site=site, definition_ids=ids), robust=True)


def counter_demo_ensure(*, site: WixSite, ticket_definition_wix_id: str, origins: list[str]) -> TicketCounter:
    """The quick start's counter ``demo`` (created once; staff edits are kept)."""
    counter, _ = TicketCounter.objects.get_or_create(
        slug="demo",
        defaults={
            "site": site,
            "ticket_definition_wix_id": ticket_definition_wix_id,
            "allowed_origins": "\n".join(origins),
        },
    )
    return counter
