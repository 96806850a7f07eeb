"""What every console list shares: Wix names for rows that hold Wix ids, and status badges."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from sync.selectors.names import EntityName, Key, entity_names

BADGES = {
    # status value → tone (CSS class in portal/console.css)
    "pending": "wait",
    "queued": "wait",
    "received": "wait",
    "listing": "busy",
    "running": "busy",
    "in_flight": "busy",
    "processing": "busy",
    "sending": "busy",
    "done": "ok",
    "success": "ok",
    "succeeded": "ok",
    "processed": "ok",
    "ignored": "quiet",
    "skipped": "quiet",
    "stale": "quiet",
    "malformed": "bad",
    "partial": "warn",
    "retryable": "warn",
    "interrupted": "warn",
    "dead": "bad",
    "failed": "bad",
    "permanent": "bad",
}


def badge(value: str, label: str) -> SafeString:
    return format_html('<span class="badge badge-{}">{}</span>', BADGES.get(value, "quiet"), label)


def entity_cell(name: EntityName | None, wix_id: str) -> SafeString:
    """The Wix name in bold, linked to the entity's page (and its timeline); the UUID beneath."""
    if name is None:
        return format_html(
            '<span class="entity-missing">not mirrored</span><span class="secondary"><code>{}</code></span>',
            wix_id or "-",
        )
    label = format_html("<strong>{}</strong>", name.name)
    if name.url:
        label = format_html('<a href="{}#timeline">{}</a>', name.url, label)
    tomb = format_html(' <span class="badge badge-quiet">deleted on Wix</span>') if name.deleted else ""
    context = f"{name.event} · " if name.event else ""
    kind = f"{name.type_label} · "
    return format_html(
        '{}{}<span class="secondary">{}{}<code>{}</code></span>', label, tomb, kind, context, wix_id
    )


class NamedChangeList(ChangeList):
    """After paging, looks up the Wix names of the page's rows in one query per entity type."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        rows = list(self.result_list)
        key_of = self.model_admin.entity_key  # type: ignore[attr-defined]
        names = entity_names(key_of(row) for row in rows)
        for row in rows:
            site_id, _, wix_id = key_of(row)
            row.entity_name = names.get((site_id, wix_id))
        self.result_list = rows


class EntityNamesMixin:
    """For admins of rows that name a Wix entity by id; list ``entity`` in ``list_display``."""

    def entity_key(self, obj: Any) -> Key:
        return (obj.site_id, obj.entity_type, obj.wix_id)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return NamedChangeList

    def entity_name_of(self, obj: Any) -> EntityName | None:
        """The name found for the list's page, or looked up for one object (its own page)."""
        if hasattr(obj, "entity_name"):
            return obj.entity_name
        site_id, _, wix_id = self.entity_key(obj)
        return entity_names([self.entity_key(obj)]).get((site_id, wix_id))

    @admin.display(description="Entity")
    def entity(self, obj: Any) -> SafeString:
        return entity_cell(self.entity_name_of(obj), self.entity_key(obj)[2])
