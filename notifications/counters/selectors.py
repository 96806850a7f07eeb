"""Reads for the console: each counter, what it shows, how old its value is."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.utils import timezone

from notifications.counters.services import counter_entry_cached
from notifications.models import TicketCounter
from sync.models import TicketDefinition, TicketDefinitionRefresh

TONE = {"normal": "ok", "low": "warn", "sold_out": "bad", "not_on_sale": "wait", "unavailable": "quiet"}


def freshness_rows() -> list[dict[str, Any]]:
    """The console panel: each counter, what it shows, how old its value is, pending refreshes."""
    counters = list(TicketCounter.objects.order_by("slug")[:20])
    ids = [c.ticket_definition_wix_id for c in counters]
    definitions = {(d.site_id, d.wix_id): d for d in TicketDefinition.objects.filter(wix_id__in=ids)}
    refreshes: dict[tuple[int, str], list[TicketDefinitionRefresh]] = {}
    for refresh in (
        TicketDefinitionRefresh.objects.filter(wix_id__in=ids).exclude(status="done").order_by("pk")
    ):
        refreshes.setdefault((refresh.site_id, refresh.wix_id), []).append(refresh)
    rows = []
    now = timezone.now()
    for counter in counters:
        entry = counter_entry_cached(slug=counter.slug)
        doc = json.loads(entry["body"]) if entry else None
        td = definitions.get((counter.site_id, counter.ticket_definition_wix_id))
        open_ = refreshes.get((counter.site_id, counter.ticket_definition_wix_id), [])
        rows.append(
            {
                "counter": counter,
                "doc": doc,
                "tone": TONE.get(doc["state"], "quiet") if doc else "quiet",
                "mirror_changed": td.updated_at if td else None,
                "published": dt.datetime.fromtimestamp(entry["published_at"], tz=dt.UTC) if entry else None,
                "refreshing": len(open_),
                "refresh_error": next((r.last_error for r in open_ if r.last_error), ""),
                "now": now,
            }
        )
    return rows
