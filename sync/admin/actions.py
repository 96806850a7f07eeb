"""Admin actions shared by events, mirrors and links: resync and its dry run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from portal.admin_utils import pretty_json
from portal.audit import audit
from sync.admin.common import entity_cell
from sync.selectors.names import entity_names
from sync.services.resync import EntityRef, resync, resync_plan

RefsOf = Callable[[Iterable[Any]], list[EntityRef]]


def resync_actions(refs_of: RefsOf) -> tuple[Callable[..., None], Callable[..., TemplateResponse]]:
    """``Resync selected`` and ``Dry-run resync`` for a model whose rows map to entity refs."""

    @admin.action(description="Resync selected to the external systems", permissions=["resync"])
    def resync_selected(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        refs = refs_of(queryset)
        queued = resync(refs=refs)
        audit(request.user, queryset, f"Resynced ({queued} push(es) queued).")
        modeladmin.message_user(
            request,
            f"Queued {queued} push(es) for {len(refs)} entit(ies); unchanged payloads make no call.",
            messages.SUCCESS,
        )

    @admin.action(
        description="Dry-run resync (show what would change, change nothing)", permissions=["resync"]
    )
    def dry_run_resync(
        modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
    ) -> TemplateResponse:
        rows = resync_plan(refs=refs_of(queryset))
        names = entity_names((row.ref.site.pk, row.ref.entity_type, row.ref.wix_id) for row in rows)
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": "Dry-run resync",
            "rows": [
                (
                    row,
                    entity_cell(names.get((row.ref.site.pk, row.ref.wix_id)), row.ref.wix_id),
                    pretty_json(row.payload) if row.payload is not None else "",
                )
                for row in rows
            ],
            "counts": {a: sum(1 for r in rows if r.action == a) for a in sorted({r.action for r in rows})},
            "opts": modeladmin.model._meta,
        }
        return TemplateResponse(request, "admin/sync/dry_run.html", context)

    return resync_selected, dry_run_resync


def has_resync_permission(request: HttpRequest) -> bool:
    return request.user.has_perm("sync.resync")


class RetrySinceForm(forms.Form):
    since = forms.DateTimeField(
        initial=lambda: timezone.now() - dt.timedelta(days=1),
        help_text="Every dead letter from this time on is retried.",
    )


def since_action(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    *,
    action: str,
    title: str,
    submit_label: str,
    run: Callable[[dt.datetime], int],
    done: str,
) -> TemplateResponse | None:
    """An action that asks for a time first, then runs ``run(since)`` (the selection is ignored)."""
    form = RetrySinceForm(request.POST if "since" in request.POST else None)
    if form.is_valid():
        modeladmin.message_user(request, done.format(count=run(form.cleaned_data["since"])), messages.SUCCESS)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "submit_label": submit_label,
        "form": form,
        "opts": modeladmin.model._meta,
        "action": action,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
    }
    return TemplateResponse(request, "admin/sync/action_since_form.html", context)
