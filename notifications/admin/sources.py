"""Subscriber sources in the console's setup section: Mailchimp audiences and REST APIs.

Only the *name* of a secret's variable is ever shown. Where a key goes (Mailchimp's server
prefix, a REST URL, auth) and which variable it comes from are editable only with the
``change_*_endpoint`` permission, as for ticketing systems; operators edit the rest and
test connections.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from notifications.models import MailchimpRule, MailchimpSource, RestSource
from notifications.sources.guard import ConnectionReport
from notifications.sources.mailchimp import mailchimp_connection_test
from notifications.sources.rest import rest_connection_test
from sync.selectors.names import entity_names


class EndpointFieldsMixin:
    """Fields that say where a credential goes are read-only without ``endpoint_permission``."""

    endpoint_fields: list[str] = []
    endpoint_permission = ""

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        if not request.user.has_perm(self.endpoint_permission):
            fields += self.endpoint_fields
        return fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and request.user.has_perm(  # type: ignore[misc]
            self.endpoint_permission
        )


def _report(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    test: Callable[..., ConnectionReport],
) -> None:
    for config in queryset:
        report = test(config=config)
        level = messages.SUCCESS if report.ok else messages.ERROR
        for line in report.lines:
            model_admin.message_user(request, f"{config}: {line}", level)


class MailchimpRuleInline(admin.TabularInline):
    model = MailchimpRule
    extra = 1
    fields = ["event_wix_id", "event", "kind", "tag", "interest_category_id", "interest_id"]
    readonly_fields = ["event"]

    @admin.display(description="Event")
    def event(self, obj: MailchimpRule) -> str:
        """The mirrored event's name, so staff see which event an id is (or that it is unknown)."""
        if obj.pk is None:
            return ""
        if not obj.event_wix_id:
            return "All events"
        name = entity_names([(obj.source.site_id, "event", obj.event_wix_id)]).get(
            (obj.source.site_id, obj.event_wix_id)
        )
        return name.name if name is not None else "not mirrored (check the id)"


@admin.register(MailchimpSource)
class MailchimpSourceAdmin(EndpointFieldsMixin, admin.ModelAdmin):
    console_section, console_order = "setup", 40
    list_display = ["name", "site", "list_id", "api_key_env", "is_active", "rule_count"]
    list_filter = ["is_active", "site"]
    list_select_related = ["site"]
    search_fields = ["name", "list_id"]
    inlines = [MailchimpRuleInline]
    fieldsets = [
        (None, {"fields": ["site", "name", "is_active", "list_id", "write_back_unsubscribes"]}),
        (
            "Connection (the key is read from an environment variable, never stored or shown)",
            {"fields": ["server_prefix", "api_key_env"]},
        ),
    ]
    actions = ["test_connection"]
    endpoint_fields = ["server_prefix", "api_key_env"]
    endpoint_permission = "notifications.change_mailchimp_endpoint"

    @admin.display(description="Rules")
    def rule_count(self, obj: MailchimpSource) -> int:
        return obj.rules.count()

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("rules")

    def has_test_connection_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notifications.test_mailchimp_connection")

    @admin.action(description="Test connection (members, tags, interests)", permissions=["test_connection"])
    def test_connection(self, request: HttpRequest, queryset: QuerySet) -> None:
        _report(self, request, queryset, mailchimp_connection_test)


@admin.register(RestSource)
class RestSourceAdmin(EndpointFieldsMixin, admin.ModelAdmin):
    console_section, console_order = "setup", 41
    list_display = ["name", "site", "url", "paging", "is_active"]
    list_filter = ["is_active", "site", "paging"]
    list_select_related = ["site"]
    search_fields = ["name", "url"]
    formfield_overrides = {RestSource._meta.get_field("url").__class__: {"assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ["site", "name", "is_active"]}),
        (
            "Connection (the secret is read from an environment variable, never stored or shown)",
            {"fields": ["url", "auth_kind", "auth_secret_env", "auth_username", "auth_header"]},
        ),
        (
            "Reading the answers (dotted paths such as data.items or $.profile.email)",
            {
                "fields": [
                    "items_path",
                    "email_path",
                    "name_path",
                    "status_path",
                    "subscribed_values",
                    "unsubscribed_values",
                    "event_ids_path",
                    "all_events_marker",
                ]
            },
        ),
        (
            "Paging",
            {
                "fields": [
                    "paging",
                    "next_path",
                    "offset_param",
                    "limit_param",
                    "page_param",
                    "page_size",
                    "total_path",
                ]
            },
        ),
    ]
    actions = ["test_connection"]
    endpoint_fields = ["url", "auth_kind", "auth_secret_env", "auth_username", "auth_header"]
    endpoint_permission = "notifications.change_rest_endpoint"

    def has_test_connection_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notifications.test_rest_connection")

    @admin.action(
        description="Test connection (read every page, count what was found)", permissions=["test_connection"]
    )
    def test_connection(self, request: HttpRequest, queryset: QuerySet) -> None:
        _report(self, request, queryset, rest_connection_test)
