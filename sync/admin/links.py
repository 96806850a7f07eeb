"""ID links between Wix entities and the records of external systems, and their audited repair."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from portal.admin_utils import ReadOnlyAdmin
from sync.admin.actions import has_resync_permission, resync_actions
from sync.admin.common import EntityNamesMixin
from sync.models import (
    ExternalLink,
    LinkRepair,
)
from sync.services.resync import link_repair, refs_of_links


class LinkRepairInline(admin.TabularInline):
    model = LinkRepair
    extra = 0
    fields = readonly_fields = ("created_at", "user", "old_external_id", "new_external_id", "reason")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RepairForm(forms.Form):
    new_external_id = forms.CharField(max_length=200, label="New external id")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Kept in the audit record.")


_resync_links, _dry_run_links = resync_actions(refs_of_links)


class DriftFilter(admin.SimpleListFilter):
    title = "changed by hand"
    parameter_name = "drift"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.exclude(drift={})
        if self.value() == "no":
            return queryset.filter(drift={})
        return queryset


@admin.register(ExternalLink)
class ExternalLinkAdmin(EntityNamesMixin, ReadOnlyAdmin):
    """The 1-to-1 link of each Wix entity to its record in a system; only a repair changes it."""

    console_section, console_order = "daily", 60
    list_display = [
        "entity",
        "system",
        "external_record",
        "last_pushed_revision",
        "last_pushed_at",
        "drift_fields",
        "repair_link",
    ]
    list_display_links = ["external_record"]
    list_select_related = ["system"]
    list_filter = ["system", "entity_type", DriftFilter, ("deleted_at", admin.EmptyFieldListFilter)]
    readonly_fields = ["entity", "drift_table"]
    fields = [
        "entity",
        "system",
        "external_id",
        "last_pushed_revision",
        "last_pushed_at",
        "deleted_at",
        "drift_table",
        "drift_checked_at",
        "last_payload",
        "external_facts",
    ]

    @admin.display(description="External id", ordering="external_id")
    def external_record(self, obj: ExternalLink) -> str:
        if obj.deleted_at:
            return format_html(
                '{} <span class="badge badge-quiet">deleted in {}</span>', obj.external_id, obj.system
            )
        return obj.external_id

    @admin.display(description="Changed by hand")
    def drift_fields(self, obj: ExternalLink) -> str:
        return ", ".join(sorted(obj.drift)) or "-"

    @admin.display(description="Changed by hand since the last push")
    def drift_table(self, obj: ExternalLink) -> str:
        """Per field: what the portal sent, and what the system holds now (read at reconciliation)."""
        if not obj.drift:
            checked = f" (checked {obj.drift_checked_at:%Y-%m-%d %H:%M})" if obj.drift_checked_at else ""
            return f"Nothing{checked}."
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            (
                (field, _short(v.get("pushed")), _short(v.get("found")))
                for field, v in sorted(obj.drift.items())
            ),
        )
        return format_html(
            "<table><thead><tr><th>Field</th><th>Pushed</th><th>In {} now</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            obj.system,
            rows,
        )

    search_fields = ["wix_id", "external_id"]
    inlines = [LinkRepairInline]
    actions = [_resync_links, _dry_run_links]

    def has_resync_permission(self, request: HttpRequest) -> bool:
        return has_resync_permission(request)

    @admin.display(description="Repair")
    def repair_link(self, obj: ExternalLink) -> str:
        return format_html(
            '<a href="{}">repair…</a>', reverse("admin:sync_externallink_repair", args=[obj.pk])
        )

    def get_urls(self) -> list:
        return [
            path(
                "<int:pk>/repair/",
                self.admin_site.admin_view(self.repair_view),
                name="sync_externallink_repair",
            ),
            *super().get_urls(),
        ]

    def repair_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Two steps: the form, then a confirmation that shows old and new before anything changes."""
        link = get_object_or_404(ExternalLink.objects.select_related("system"), pk=pk)
        if not request.user.has_perm("sync.change_externallink"):
            return HttpResponse("You may not repair links.", status=403)
        form = RepairForm(request.POST or None)
        confirming = False
        if request.method == "POST" and form.is_valid():
            if request.POST.get("confirm") == "yes":
                link_repair(
                    link=link,
                    new_external_id=form.cleaned_data["new_external_id"],
                    reason=form.cleaned_data["reason"],
                    user=request.user,
                )
                self.message_user(
                    request,
                    f"Link repaired: {link.wix_id} now points at {form.cleaned_data['new_external_id']}.",
                    messages.SUCCESS,
                )
                return redirect("admin:sync_externallink_change", link.pk)
            confirming = True
        context = {
            **self.admin_site.each_context(request),
            "title": f"Repair link {link}",
            "link": link,
            "form": form,
            "confirming": confirming,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/sync/externallink/repair.html", context)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 300 else text[:300] + "…"


admin.site.register(
    LinkRepair,
    type(
        "LinkRepairAdmin",
        (ReadOnlyAdmin,),
        {
            "list_display": ["link", "old_external_id", "new_external_id", "user", "created_at"],
            "list_select_related": ["link__system", "user"],
            "console_section": "daily",
            "console_order": 80,
        },
    ),
)
