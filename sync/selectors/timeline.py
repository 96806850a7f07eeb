"""Reads the admin needs that span several tables."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sync.models import MirrorChange, MirrorModel, OutboundWork, SyncLog, WebhookDelivery
from sync.services.mirrors import ENTITY_TYPE_OF

TIMELINE_LIMIT = 50


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    kind: str
    summary: str
    detail: str = ""
    request: str = ""
    response: str = ""


def entity_timeline(*, mirror: MirrorModel) -> list[TimelineEntry]:
    entity_type = ENTITY_TYPE_OF[type(mirror)]
    entries: list[TimelineEntry] = []
    changes = MirrorChange.objects.filter(entity_type=entity_type, wix_id=mirror.wix_id, site=mirror.site)
    for change in changes[:TIMELINE_LIMIT]:
        summary = f"Mirror {change.get_kind_display().lower()} (revision {change.revision or 'none'})"
        detail = f"changed: {', '.join(change.changed_fields)}" if change.changed_fields else ""
        entries.append(TimelineEntry(change.created_at, "mirror", summary, detail))
    for delivery in WebhookDelivery.objects.filter(site=mirror.site, entity_id=mirror.wix_id).defer(
        "raw_body"
    )[:TIMELINE_LIMIT]:
        entries.append(
            TimelineEntry(
                delivery.received_at,
                "webhook",
                f"{delivery.event_type} ({delivery.status})",
                delivery.last_error,
            )
        )
    for work in OutboundWork.objects.filter(
        entity_type=entity_type, wix_id=mirror.wix_id, site=mirror.site
    ).select_related("system", "retried_by")[:TIMELINE_LIMIT]:
        retried = f"Retried by {work.retried_by} ({work.retry_reason})" if work.retried_by else ""
        entries.append(
            TimelineEntry(
                work.created_at,
                "work",
                f"{work.get_trigger_display()} → {work.system}: {work.status} {work.outcome}",
                "\n".join(text for text in (work.last_error, retried) if text),
            )
        )
    logs = SyncLog.objects.filter(entity_type=entity_type, wix_id=mirror.wix_id).select_related("system")
    for log in logs[:TIMELINE_LIMIT]:
        result = f"{log.http_status or 'no answer'} {log.get_status_display()} ({log.duration_ms or 0} ms)"
        summary = f"{log.get_action_display()} → {log.system}: {result}"
        entries.append(
            TimelineEntry(
                log.created_at,
                "push",
                summary,
                "\n".join(text for text in (log.error, log.note) if text),
                log.request_excerpt,
                log.response_excerpt,
            )
        )
    return sorted(entries, key=lambda e: e.at, reverse=True)
