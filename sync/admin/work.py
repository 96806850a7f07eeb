"""Outbound work (pushes, dead letters and their fixes) and the log of every call."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from portal.admin_utils import ReadOnlyAdmin
from sync.admin.actions import since_action
from sync.admin.common import EntityNamesMixin, badge
from sync.models import (
    OutboundWork,
    SyncLog,
)
from sync.selectors.names import Key
from sync.services.pretix import (
    SlugFixError,
    pretix_event_adopt,
    pretix_event_slug_use,
    slug_conflict_of,
)
from sync.services.push import work_retry, work_retry_dead_since


class HasErrorFilter(admin.SimpleListFilter):
    title = "has error"
    parameter_name = "has_error"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.exclude(last_error="")
        if self.value() == "no":
            return queryset.filter(last_error="")
        return queryset


class SlugFixForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, help_text="Kept in the audit record."
    )


class OtherSlugForm(SlugFixForm):
    slug = forms.CharField(
        max_length=50, help_text="pretix's short form: letters, digits, dots and dashes (at most 50)."
    )
    field_order = ["slug", "reason"]


class CallInline(admin.TabularInline):
    """Each call this work made: what was sent, what came back."""

    model = SyncLog
    fields = readonly_fields = (
        "created_at",
        "action",
        "status",
        "http_status",
        "duration_ms",
        "error",
        "note",
    )
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name, verbose_name_plural = "call", "calls to the external system"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OutboundWork)
class OutboundWorkAdmin(EntityNamesMixin, ReadOnlyAdmin):
    """Pushes: what waits, what is in flight, what gave up (a dead letter) and why.

    A dead letter's page offers *Retry now* and the fixes the portal knows for its error.
    """

    console_section, console_order = "daily", 10
    list_display = [
        "number",
        "entity",
        "system",
        "trigger",
        "status_badge",
        "attempts",
        "short_error",
        "updated_at",
    ]
    list_display_links = ["number"]
    list_select_related = ["system"]
    list_filter = ["status", "system", "site", "entity_type", "trigger", HasErrorFilter]
    search_fields = ["wix_id"]
    date_hierarchy = "created_at"
    actions = ["retry_now", "retry_dead_since"]
    show_full_result_count = False
    inlines = [CallInline]
    fields = [
        "entity",
        "system",
        "status_badge",
        "outcome",
        "trigger",
        "attempts",
        "not_before",
        "last_error",
        "pretix_slug_fixes",
        "lag",
        "changed_at",
        "created_at",
        "finished_at",
        "retried_by",
        "retry_reason",
    ]
    readonly_fields = ["entity", "status_badge", "pretix_slug_fixes", "lag", "created_at"]
    change_form_template = "admin/sync/outboundwork/change_form.html"

    @admin.display(description="#", ordering="pk")
    def number(self, obj: OutboundWork) -> str:
        return f"#{obj.pk}"

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: OutboundWork) -> str:
        label = obj.get_status_display()
        if obj.outcome:
            label = f"{label}: {obj.outcome}"
        return badge(obj.status, label)

    @admin.display(description="Last error")
    def short_error(self, obj: OutboundWork) -> str:
        if not obj.last_error:
            return "-"
        text = obj.last_error if len(obj.last_error) <= 90 else obj.last_error[:90] + "…"
        return format_html('<span title="{}">{}</span>', obj.last_error, text)

    @admin.display(description="Lag (change on Wix → pushed)")
    def lag(self, obj: OutboundWork) -> str:
        if obj.changed_at is None or obj.finished_at is None:
            return "-"
        return f"{max(0.0, (obj.finished_at - obj.changed_at).total_seconds()):.1f} s"

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        work = self.get_object(request, object_id)
        can_retry = (
            work is not None
            and work.status in (OutboundWork.Status.DEAD, OutboundWork.Status.PENDING)
            and self.has_retry_permission(request)
        )
        return super().change_view(
            request, object_id, form_url, {**(extra_context or {}), "can_retry": can_retry}
        )

    def retry_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The dead letter page's *Retry now* button (POST only, like the action)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_retry_permission(request):
            return HttpResponse("You may not retry outbound work.", status=403)
        work = get_object_or_404(OutboundWork, pk=pk)
        if work_retry(work_ids=[work.pk], by=request.user, reason="staff: Retry now (its page)"):
            self.message_user(request, f"#{work.pk} is queued for another try.", messages.SUCCESS)
        else:
            self.message_user(
                request, f"#{work.pk} is {work.get_status_display().lower()}: nothing to retry."
            )
        return redirect("admin:sync_outboundwork_change", work.pk)

    @admin.display(description="Fix")
    def pretix_slug_fixes(self, obj: OutboundWork) -> str:
        """A dead letter for a pretix slug another event has: staff adopt that event or pick a slug."""
        details = slug_conflict_of(obj)
        if details is None:
            return "-"
        links = []
        if details.get("pretix_event"):
            links.append(
                format_html(
                    '<a class="button" href="{}">Adopt pretix event {}…</a>',
                    reverse("admin:sync_outboundwork_pretix_adopt", args=[obj.pk]),
                    details["slug"],
                )
            )
        links.append(
            format_html(
                '<a class="button" href="{}">Use another slug…</a>',
                reverse("admin:sync_outboundwork_pretix_slug", args=[obj.pk]),
            )
        )
        return format_html(" ".join(["{}"] * len(links)), *links)

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/pretix-adopt/", view(self.pretix_adopt_view), name="sync_outboundwork_pretix_adopt"
            ),
            path("<int:pk>/pretix-slug/", view(self.pretix_slug_view), name="sync_outboundwork_pretix_slug"),
            path("<int:pk>/retry/", view(self.retry_view), name="sync_outboundwork_retry"),
            *super().get_urls(),
        ]

    def pretix_adopt_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._slug_fix(request, pk, adopt=True)

    def pretix_slug_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._slug_fix(request, pk, adopt=False)

    def _slug_fix(self, request: HttpRequest, pk: int, *, adopt: bool) -> HttpResponse:
        """Two steps, as a link repair: the form, then a confirmation naming what will change."""
        work = get_object_or_404(OutboundWork.objects.select_related("system", "site"), pk=pk)
        if not (self.has_retry_permission(request) and request.user.has_perm("sync.change_externallink")):
            return HttpResponse("You may not fix dead letters.", status=403)
        details = slug_conflict_of(work)
        if details is None:
            self.message_user(request, "This work is not dead for a pretix slug conflict.", messages.WARNING)
            return redirect("admin:sync_outboundwork_change", work.pk)
        form = (SlugFixForm if adopt else OtherSlugForm)(request.POST or None)
        confirming = False
        if request.method == "POST" and form.is_valid():
            if request.POST.get("confirm") == "yes":
                try:
                    if adopt:
                        link = pretix_event_adopt(
                            work=work, reason=form.cleaned_data["reason"], user=request.user
                        )
                    else:
                        link = pretix_event_slug_use(
                            work=work,
                            slug=form.cleaned_data["slug"],
                            reason=form.cleaned_data["reason"],
                            user=request.user,
                        )
                except SlugFixError as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                else:
                    self.message_user(
                        request,
                        f"Wix event {link.wix_id} is linked to pretix event {link.external_id}; "
                        "its dead work is queued again.",
                        messages.SUCCESS,
                    )
                    return redirect("admin:sync_outboundwork_change", work.pk)
            else:
                confirming = True
        context = {
            **self.admin_site.each_context(request),
            "title": "Adopt the pretix event" if adopt else "Use another slug",
            "work": work,
            "details": details,
            "adopt": adopt,
            "form": form,
            "confirming": confirming,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/sync/outboundwork/pretix_slug.html", context)

    @admin.action(description="Retry now", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = work_retry(
            work_ids=list(queryset.values_list("pk", flat=True)), by=request.user, reason="staff: Retry now"
        )
        self.message_user(request, f"Queued {count} for another try.", messages.SUCCESS)

    @admin.action(description="Retry all dead letters since …", permissions=["retry"])
    def retry_dead_since(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        return since_action(
            self,
            request,
            action="retry_dead_since",
            title="Retry dead letters since …",
            submit_label="Retry dead letters",
            run=lambda since: work_retry_dead_since(since=since, by=request.user),
            done="Queued {count} dead letter(s) for another try.",
        )

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sync.retry_work")


@admin.register(SyncLog)
class SyncLogAdmin(EntityNamesMixin, ReadOnlyAdmin):
    console_section, console_order = "daily", 70
    list_display = [
        "created_at",
        "entity",
        "system",
        "action",
        "status_badge",
        "http_status",
        "duration_ms",
        "short_error",
    ]
    list_select_related = ["system", "work"]
    list_filter = ["system", "entity_type", "status", "trigger", "action"]
    search_fields = ["wix_id"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    raw_id_fields = ["work"]

    def entity_key(self, obj: SyncLog) -> Key:
        return (obj.work.site_id, obj.entity_type, obj.wix_id)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: SyncLog) -> str:
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="Error or note")
    def short_error(self, obj: SyncLog) -> str:
        text = " — ".join(text for text in (obj.error, obj.note) if text)
        if not text:
            return "-"
        return format_html('<span title="{}">{}</span>', text, text if len(text) <= 90 else text[:90] + "…")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        # Bodies are only read on the detail page.
        return (
            qs.defer("request_excerpt", "response_excerpt")
            if request.resolver_match and (request.resolver_match.url_name or "").endswith("changelist")
            else qs
        )
