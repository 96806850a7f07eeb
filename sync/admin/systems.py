"""External systems: where pushes go, how they authenticate, and the mappings with a live preview."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.urls import path, reverse

from sync.admin.common import badge
from sync.domain.mapping import MappingError, MappingSpec, mapping_apply
from sync.models import (
    Event,
    ExternalEndpoint,
    ExternalSystem,
    FieldMapping,
    Policy,
    TicketDefinition,
)
from sync.services.adapters.pretix import PRETIX_DEFAULT_MAPPINGS
from sync.services.entities import ENTITY_KINDS
from sync.services.mapping import mappings_seed
from sync.services.pretix import (
    pretix_connection_test,
)
from sync.services.push import system_resume

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
    console_section, console_order = "setup", 20
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
            text = f"Paused since {obj.paused_at:%Y-%m-%d %H:%M} ({obj.failure_streak} failures in a row)"
            return badge("failed", text)
        if obj.failing_since:
            return badge(
                "retryable", f"Failing since {obj.failing_since:%H:%M} ({obj.failure_streak} in a row)"
            )
        return badge("done", "OK")

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
