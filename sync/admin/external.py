"""Admin for external systems: mappings with a live preview, links and their repair, work and logs."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from portal.admin_utils import ReadOnlyAdmin
from sync.admin.actions import has_resync_permission, resync_actions, since_action
from sync.domain.mapping import MappingError, MappingSpec, mapping_apply
from sync.models import (
    Event,
    ExternalEndpoint,
    ExternalLink,
    ExternalSystem,
    FieldMapping,
    LinkRepair,
    OutboundWork,
    Policy,
    SyncLog,
    TicketDefinition,
)
from sync.services.adapters.pretix import PRETIX_DEFAULT_MAPPINGS
from sync.services.entities import ENTITY_KINDS
from sync.services.mapping import mappings_seed
from sync.services.pretix import (
    SlugFixError,
    pretix_connection_test,
    pretix_event_adopt,
    pretix_event_slug_use,
    slug_conflict_of,
)
from sync.services.push import system_resume, work_retry, work_retry_dead_since
from sync.services.resync import link_repair, refs_of_links

PREVIEW_CHOICES = 40


class EndpointInline(admin.StackedInline):
    model = ExternalEndpoint
    extra = 0
    fields = [
        ("entity_type", "id_path"),
        ("create_method", "create_path"),
        ("update_method", "update_path"),
        ("delete_method", "delete_path"),
    ]


class FieldMappingInline(admin.TabularInline):
    model = FieldMapping
    extra = 1
    fields = ["entity_type", "order", "source_path", "transform", "argument", "target_field", "required"]
    formfield_overrides = {
        FieldMapping._meta.get_field("argument").__class__: {
            "widget": forms.Textarea(attrs={"rows": 1, "cols": 30})
        }
    }


@admin.register(ExternalSystem)
class ExternalSystemAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "base_url", "is_active", "health"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "base_url"]
    inlines = [EndpointInline, FieldMappingInline]
    change_form_template = "admin/sync/externalsystem/change_form.html"
    formfield_overrides = {ExternalSystem._meta.get_field("base_url").__class__: {"assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ["name", "kind", "is_active", "base_url", "timeout"]}),
        ("Incidents", {"fields": ["failure_streak", "failing_since", "paused_at"]}),
        (
            "Authentication (the secret is read from an environment variable, never stored)",
            {"fields": ["auth_type", "auth_secret_env", "auth_username", "auth_header"]},
        ),
        (
            "pretix",
            {
                "fields": ["organizer", "default_currency", "drift_action"],
                "description": "For a pretix system: the base URL is pretix's own (e.g. https://pretix.eu), "
                "the authentication an API token. Saved without mappings, it gets the default ones.",
            },
        ),
    ]
    actions = ["test_connection", "resume"]
    readonly_fields = ["failure_streak", "failing_since", "paused_at"]
    # Where the secret is sent, and which secret.
    endpoint_fields = ["base_url", "auth_secret_env"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and request.user.has_perm("sync.change_system_endpoint")

    @admin.display(description="Health")
    def health(self, obj: ExternalSystem) -> str:
        if obj.paused_at:
            return f"Paused since {obj.paused_at:%Y-%m-%d %H:%M} ({obj.failure_streak} failures in a row)"
        if obj.failing_since:
            return f"Failing since {obj.failing_since:%H:%M} ({obj.failure_streak} in a row)"
        return "OK"

    @admin.action(description="Resume (send what waited)", permissions=["resume"])
    def resume(self, request: HttpRequest, queryset: QuerySet) -> None:
        resumed = [system for system in queryset if system_resume(system=system, by=request.user)]
        self.message_user(
            request, f"Resumed {len(resumed)} system(s); the others were not paused.", messages.SUCCESS
        )

    def has_resume_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sync.resume_system")

    def get_readonly_fields(self, request: HttpRequest, obj: ExternalSystem | None = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.has_perm("sync.change_system_endpoint"):
            fields += self.endpoint_fields
        return fields

    def has_test_connection_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sync.test_connection")

    def get_inlines(
        self, request: HttpRequest, obj: ExternalSystem | None
    ) -> list[type[admin.options.InlineModelAdmin]]:
        """pretix needs no endpoints: the adapter knows its API."""
        if obj is not None and obj.kind == ExternalSystem.Kind.PRETIX:
            return [FieldMappingInline]
        return list(self.inlines)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        system = form.instance
        if system.kind == ExternalSystem.Kind.PRETIX and mappings_seed(system, PRETIX_DEFAULT_MAPPINGS):
            self.message_user(request, "Default pretix mappings added; change them below.", messages.INFO)

    @admin.action(description="Test connection (pretix)", permissions=["test_connection"])
    def test_connection(self, request: HttpRequest, queryset: QuerySet) -> None:
        for system in queryset:
            if system.kind != ExternalSystem.Kind.PRETIX:
                self.message_user(request, f"{system}: only pretix systems can be tested.", messages.WARNING)
                continue
            for check in pretix_connection_test(system):
                level = {True: messages.SUCCESS, False: messages.ERROR, None: messages.WARNING}[check.ok]
                self.message_user(request, f"{system}: {check.label}: {check.detail}", level)

    def get_urls(self) -> list:
        preview = self.admin_site.admin_view(self.preview_view)
        return [
            path("<path:object_id>/preview/", preview, name="sync_externalsystem_preview"),
            path("preview/", preview, name="sync_externalsystem_preview_new"),
            *super().get_urls(),
        ]

    def _preview_context(self, object_id: str | None) -> dict[str, Any]:
        choices = [
            (f"event:{e.pk}", f"Event: {e.title} ({e.wix_id})")
            for e in Event.objects.filter(deleted_at__isnull=True).order_by("-updated_at")[:PREVIEW_CHOICES]
        ]
        choices += [
            (f"policy:{p.pk}", f"Policy: {p.name} ({p.event_wix_id})")
            for p in Policy.objects.filter(deleted_at__isnull=True).order_by("-updated_at")[:PREVIEW_CHOICES]
        ]
        choices += [
            (f"ticket_definition:{t.pk}", f"Ticket definition: {t.name} ({t.event_wix_id})")
            for t in TicketDefinition.objects.filter(deleted_at__isnull=True).order_by("-updated_at")[
                :PREVIEW_CHOICES
            ]
        ]
        url = (
            reverse("admin:sync_externalsystem_preview", args=[object_id])
            if object_id
            else reverse("admin:sync_externalsystem_preview_new")
        )
        return {"preview_choices": choices, "preview_url": url}

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        return super().changeform_view(
            request, object_id, form_url, {**(extra_context or {}), **self._preview_context(object_id)}
        )

    def preview_view(self, request: HttpRequest, object_id: str | None = None) -> HttpResponse:
        """Apply the mappings as they stand in the form (unsaved) to a chosen mirrored entity."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        system = self.get_object(request, object_id) if object_id else ExternalSystem()
        if system is None or not self.has_view_or_change_permission(request, system if object_id else None):
            return JsonResponse({"error": "not found"}, status=404)
        entity_type, _, pk = request.POST.get("preview_entity", "").partition(":")
        kind = ENTITY_KINDS.get(entity_type)
        model = kind.model if kind is not None else None
        mirror = model.objects.filter(pk=pk).first() if model and pk.isdigit() else None
        if mirror is None:
            return JsonResponse({"error": "Choose a mirrored entity."}, status=400)
        inline = next(
            i for i in self.get_inline_instances(request, system) if isinstance(i, FieldMappingInline)
        )
        formset_class = inline.get_formset(request, system)
        formset = formset_class(request.POST, instance=system, prefix=formset_class.get_default_prefix())
        specs: list[tuple[int, MappingSpec]] = []
        errors: list[str] = []
        for index, form in enumerate(formset.forms):
            if not form.has_changed() and form.instance.pk is None:
                continue  # an empty extra row
            if not form.is_valid():
                errors += [
                    f"Row {index + 1}, {field}: {' '.join(map(str, msgs))}"
                    for field, msgs in form.errors.items()
                ]
                continue
            data = form.cleaned_data
            if data.get("DELETE") or data.get("entity_type") != entity_type:
                continue
            specs.append(
                (
                    data["order"],
                    MappingSpec(
                        data["source_path"],
                        data["target_field"],
                        data["transform"],
                        data["argument"],
                        data["required"],
                    ),
                )
            )
        if errors:
            return JsonResponse({"errors": errors}, status=400)
        try:
            payload = mapping_apply([spec for _, spec in sorted(specs, key=lambda s: s[0])], mirror.raw)
        except MappingError as exc:
            return JsonResponse({"errors": [str(exc)]}, status=400)
        return JsonResponse({"entity": str(mirror), "payload": payload})


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
class ExternalLinkAdmin(ReadOnlyAdmin):
    list_display = [
        "wix_id",
        "entity_type",
        "system",
        "external_id",
        "last_pushed_revision",
        "last_pushed_at",
        "deleted_at",
        "drift_fields",
        "repair_link",
    ]
    list_select_related = ["system"]
    list_filter = ["system", "entity_type", DriftFilter, ("deleted_at", admin.EmptyFieldListFilter)]
    readonly_fields = ["drift_table"]

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


@admin.register(OutboundWork)
class OutboundWorkAdmin(ReadOnlyAdmin):
    list_display = [
        "pk",
        "entity_type",
        "wix_id",
        "system",
        "trigger",
        "status",
        "outcome",
        "attempts",
        "not_before",
        "short_error",
        "updated_at",
    ]
    list_select_related = ["system"]
    list_filter = ["status", "system", "entity_type", "trigger", HasErrorFilter]
    search_fields = ["wix_id"]
    date_hierarchy = "created_at"
    actions = ["retry_now", "retry_dead_since"]
    show_full_result_count = False
    readonly_fields = ["pretix_slug_fixes"]

    @admin.display(description="Last error")
    def short_error(self, obj: OutboundWork) -> str:
        return obj.last_error[:120]

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
class SyncLogAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "system",
        "entity_type",
        "wix_id",
        "action",
        "trigger",
        "status",
        "http_status",
        "duration_ms",
        "short_error",
    ]
    list_select_related = ["system"]
    list_filter = ["system", "entity_type", "status", "trigger", "action"]
    search_fields = ["wix_id"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    raw_id_fields = ["work"]

    @admin.display(description="Error or note")
    def short_error(self, obj: SyncLog) -> str:
        return " — ".join(text for text in (obj.error, obj.note) if text)[:160]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        # Bodies are only read on the detail page.
        return (
            qs.defer("request_excerpt", "response_excerpt")
            if request.resolver_match and (request.resolver_match.url_name or "").endswith("changelist")
            else qs
        )


admin.site.register(
    LinkRepair,
    type(
        "LinkRepairAdmin",
        (ReadOnlyAdmin,),
        {
            "list_display": ["link", "old_external_id", "new_external_id", "user", "created_at"],
            "list_select_related": ["link__system", "user"],
        },
    ),
)
