"""The local list (with CSV import and export), the suppression list and each site's consent rule."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from notifications.models import EmailSuppression, LocalSubscriber, PushEndpoint, SiteNotificationSettings
from notifications.services.subscribers import subscribers_export, subscribers_import
from portal.audit import audit
from sync.models import WixSite

MAX_CSV_BYTES = 5 * 1024 * 1024


class ImportForm(forms.Form):
    site = forms.ModelChoiceField(queryset=WixSite.objects.all())
    file = forms.FileField(
        help_text="CSV with the columns email, name, events, all_events, unsubscribed, "
        "consent_at, consent_source (events: Wix ids or slugs separated by ';')."
    )


@admin.register(LocalSubscriber)
class LocalSubscriberAdmin(admin.ModelAdmin):
    console_section, console_order = "daily", 72
    list_display = ["email", "name", "site", "all_events", "unsubscribed", "consent_at", "consent_source"]
    list_filter = ["site", "all_events", "unsubscribed"]
    search_fields = ["email", "name"]
    actions = ["export_csv"]
    change_list_template = "admin/notifications/localsubscriber/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="notifications_localsubscriber_import",
            ),
            *super().get_urls(),
        ]

    def save_model(self, request: HttpRequest, obj: LocalSubscriber, form: Any, change: bool) -> None:
        obj.email = obj.email.strip().lower()
        super().save_model(request, obj, form, change)

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request) or not self.has_change_permission(request):
            raise PermissionDenied
        report = None
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > MAX_CSV_BYTES:
                form.add_error("file", "The file is over 5 MB.")
            else:
                text = upload.read().decode("utf-8", errors="replace")
                report = subscribers_import(site=form.cleaned_data["site"], text=text)
                audit(
                    request.user,
                    form.cleaned_data["site"],
                    f"Imported subscribers: {report.created} new, {report.updated} updated, "
                    f"{len(report.errors)} row(s) refused.",
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Import subscribers from CSV",
            "form": form,
            "report": report,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/notifications/localsubscriber/import.html", context)

    @admin.action(description="Export selected as CSV", permissions=["change"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        response = HttpResponse(subscribers_export(subscribers=queryset), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="subscribers.csv"'
        return response


@admin.register(EmailSuppression)
class EmailSuppressionAdmin(admin.ModelAdmin):
    console_section, console_order = "daily", 73
    list_display = ["email", "site", "reason", "detail", "updated_at"]
    list_filter = ["reason", "site"]
    search_fields = ["email"]

    def save_model(self, request: HttpRequest, obj: EmailSuppression, form: Any, change: bool) -> None:
        obj.email = obj.email.strip().lower()
        super().save_model(request, obj, form, change)


@admin.register(SiteNotificationSettings)
class SiteNotificationSettingsAdmin(admin.ModelAdmin):
    console_section, console_order = "setup", 41
    list_display = ["site", "allow_not_set", "from_email", "event_page_base_url"]


@admin.register(PushEndpoint)
class PushEndpointAdmin(admin.ModelAdmin):
    """Where a secret is used: left to superusers (the roles do not grant it)."""

    console_section, console_order = "setup", 42
    list_display = ["site", "url", "secret_env", "is_active"]
