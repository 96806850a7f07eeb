"""The operations console for sites, mirrors, backfills and webhook deliveries.

Actions only call services; mirrors and logs are read-only because Wix (or the portal
itself) writes them.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from portal.admin_utils import ReadOnlyAdmin, TombstoneFilter, pretty_json
from sync.admin.actions import has_resync_permission, resync_actions, since_action
from sync.admin.common import EntityNamesMixin, badge
from sync.models import (
    BackfillRun,
    BackfillStep,
    Event,
    Policy,
    ReconciliationRun,
    TicketDefinition,
    WebhookDelivery,
    WixSite,
)
from sync.selectors import entity_timeline
from sync.selectors.names import Key
from sync.services.backfill import backfill_resume, backfill_start
from sync.services.reconcile import reconcile_start
from sync.services.resync import refs_of_events, refs_of_mirrors
from sync.services.webhook_handlers import deliveries_failed_since, webhook_replay
from sync.services.webhook_limits import webhook_rejections_flush
from sync.services.webhooks import order_summary, webhook_route

_resync_events, _dry_run_events = resync_actions(refs_of_events)
_resync_mirrors, _dry_run_mirrors = resync_actions(refs_of_mirrors)


def _report_runs(
    modeladmin: admin.ModelAdmin, request: HttpRequest, results: list[tuple[BackfillRun, bool]]
) -> None:
    started = sum(1 for _, created in results if created)
    running = len(results) - started
    text = f"Queued {started} backfill run(s)."
    if running:
        text += f" {running} already queued or running; not started twice."
    modeladmin.message_user(request, text, messages.SUCCESS)


@admin.register(WixSite)
class WixSiteAdmin(admin.ModelAdmin):
    console_section, console_order = "setup", 10
    list_display = [
        "name",
        "site_id",
        "auth_method",
        "is_active",
        "live_events",
        "last_backfill",
        "webhooks_rejected",
    ]
    list_filter = ["is_active", "auth_method"]
    search_fields = ["name", "site_id", "instance_id"]
    actions = ["backfill_all_events", "reconcile_now"]
    readonly_fields = ["webhooks_rejected", "webhook_last_rejected_at"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ["name", "site_id", "instance_id", "is_active"]}),
        (
            "Authentication (secrets are read from environment variables)",
            {"fields": ["auth_method", "api_key_env", "app_id", "app_secret_env"]},
        ),
        ("API", {"fields": ["api_base_url", "path_family", "paging"]}),
        ("Webhooks", {"fields": ["webhook_public_keys", "webhooks_rejected", "webhook_last_rejected_at"]}),
    ]

    # Where the site's key goes, which variable holds it, and which keys sign its webhooks.
    endpoint_fields = ["api_base_url", "api_key_env", "app_secret_env", "webhook_public_keys"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and request.user.has_perm("sync.change_site_endpoint")

    def get_readonly_fields(self, request: HttpRequest, obj: WixSite | None = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.has_perm("sync.change_site_endpoint"):
            fields += self.endpoint_fields
        return fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(_live_events=Count("events", filter=Q(events__deleted_at__isnull=True), distinct=True))
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        webhook_rejections_flush()  # refusals are counted in the cache; show them up to date
        return super().changelist_view(request, extra_context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        webhook_rejections_flush()
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Events", ordering="_live_events")
    def live_events(self, obj: WixSite) -> int:
        return obj._live_events  # type: ignore[attr-defined]

    @admin.display(description="Last backfill")
    def last_backfill(self, obj: WixSite) -> str:
        run = obj.backfill_runs.order_by("-created_at").first()
        if run is None:
            return "never"
        url = reverse("admin:sync_backfillrun_change", args=[run.pk])
        return format_html('<a href="{}">{} ({})</a>', url, run.get_status_display(), run.created_at.date())

    @admin.action(description="Backfill all events of the selected sites", permissions=["backfill"])
    def backfill_all_events(self, request: HttpRequest, queryset: QuerySet) -> None:
        results = [
            backfill_start(site=site, trigger=BackfillRun.Trigger.ADMIN, user=request.user)
            for site in queryset
        ]
        _report_runs(self, request, results)

    @admin.action(description="Reconcile with Wix now (heal what webhooks missed)", permissions=["backfill"])
    def reconcile_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        runs = [reconcile_start(site=site, by=request.user) for site in queryset]
        self.message_user(request, f"Queued {len(runs)} reconciliation run(s).", messages.SUCCESS)

    def has_backfill_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sync.start_backfill")


class MirrorAdmin(ReadOnlyAdmin):
    console_section = "daily"
    list_select_related = ["site"]
    search_fields = ["wix_id", "name"]
    readonly_fields = ["raw_json"]
    exclude = ["raw"]

    def has_resync_permission(self, request: HttpRequest) -> bool:
        return has_resync_permission(request)

    @admin.display(description="Raw JSON as Wix sent it")
    def raw_json(self, obj: Event | Policy | TicketDefinition) -> str:
        return pretty_json(obj.raw)

    @admin.display(description="Name", ordering="name")
    def name_cell(self, obj: Event | Policy | TicketDefinition) -> str:
        """The Wix name, with the Wix id beneath it for searches and support requests."""
        name = obj.title if isinstance(obj, Event) else obj.name
        return format_html(
            '<strong>{}</strong><span class="secondary"><code>{}</code></span>',
            name or "(no name)",
            obj.wix_id,
        )

    @admin.display(boolean=True, description="Deleted")
    def is_tombstone(self, obj: Event | Policy | TicketDefinition) -> bool:
        return obj.deleted_at is not None


class TimelineMirrorAdmin(MirrorAdmin):
    """A mirror's history on its page: webhooks, pushes with request and response, mirror changes."""

    readonly_fields = ["timeline", "raw_json"]
    actions = [_resync_mirrors, _dry_run_mirrors]

    @admin.display(description="Timeline")
    def timeline(self, obj: Event | Policy | TicketDefinition) -> str:
        return render_to_string("admin/sync/timeline.html", {"entries": entity_timeline(mirror=obj)})


@admin.register(Event)
class EventAdmin(TimelineMirrorAdmin):
    console_order = 50
    list_display = ["name_cell", "site", "status", "start_date", "is_tombstone", "updated_at"]
    list_display_links = ["name_cell"]
    list_filter = ["site", "status", TombstoneFilter]
    search_fields = ["title", "slug", "wix_id"]
    date_hierarchy = "start_date"
    actions = ["backfill_events", _resync_events, _dry_run_events]

    @admin.action(description="Backfill selected events from Wix", permissions=["backfill"])
    def backfill_events(self, request: HttpRequest, queryset: QuerySet) -> None:
        results = [
            backfill_start(
                site=event.site,
                event_wix_id=event.wix_id,
                trigger=BackfillRun.Trigger.ADMIN,
                user=request.user,
            )
            for event in queryset.select_related("site")
        ]
        _report_runs(self, request, results)

    def has_backfill_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sync.start_backfill")


@admin.register(Policy)
class PolicyAdmin(TimelineMirrorAdmin):
    console_order = 51
    list_display = ["name_cell", "event", "revision", "is_tombstone", "wix_updated_date"]
    list_display_links = ["name_cell"]
    list_select_related = ["site", "event"]
    list_filter = ["site", TombstoneFilter]
    search_fields = ["name", "wix_id", "event_wix_id", "event__title"]
    raw_id_fields = ["event"]


@admin.register(TicketDefinition)
class TicketDefinitionAdmin(TimelineMirrorAdmin):
    console_order = 52
    list_display_links = ["name_cell"]
    list_display = [
        "name_cell",
        "event",
        "price_cell",
        "unsold_count",
        "sale_status",
        "sale_start",
        "hidden",
        "is_tombstone",
    ]
    list_select_related = ["site", "event"]
    list_filter = ["site", "pricing_method", "sale_status", "hidden", "sold_out", TombstoneFilter]
    search_fields = ["name", "wix_id", "event_wix_id", "event__title"]
    raw_id_fields = ["event"]

    @admin.display(description="Price", ordering="price")
    def price_cell(self, obj: TicketDefinition) -> str:
        if obj.price is None:
            return obj.get_pricing_method_display() or "-"
        return f"{obj.price} {obj.currency}".strip()


class BackfillStepInline(admin.TabularInline):
    """Each event of the run: whether it is done, what it mirrored, why it failed."""

    model = BackfillStep
    fields = ("event", "status", "attempts", "fetched", "created", "updated", "failed", "last_error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        title = Event.objects.filter(site_id=OuterRef("run__site_id"), wix_id=OuterRef("event_wix_id"))
        return super().get_queryset(request).annotate(event_title=Subquery(title.values("title")[:1]))

    @admin.display(description="Event")
    def event(self, obj: BackfillStep) -> str:
        return format_html(
            '<strong>{}</strong><span class="secondary"><code>{}</code></span>',
            getattr(obj, "event_title", None) or "(not mirrored)",
            obj.event_wix_id,
        )


@admin.register(BackfillRun)
class BackfillRunAdmin(ReadOnlyAdmin):
    console_section, console_order = "daily", 30
    list_display = [
        "number",
        "site",
        "scope",
        "trigger",
        "started_by",
        "status_badge",
        "progress",
        "result",
        "created_at",
        "finished_at",
    ]
    list_display_links = ["number"]
    list_select_related = ["site", "started_by", "event"]
    list_filter = ["status", "trigger", "site"]
    search_fields = ["event_wix_id"]
    actions = ["resume"]
    readonly_fields = ["error_list"]
    exclude = ["errors"]
    inlines = [BackfillStepInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        done = Count(
            "steps", filter=Q(steps__status__in=[BackfillStep.Status.DONE, BackfillStep.Status.FAILED])
        )
        return super().get_queryset(request).annotate(steps_total=Count("steps"), steps_ended=done)

    @admin.display(description="#", ordering="pk")
    def number(self, obj: BackfillRun) -> str:
        return f"#{obj.pk}"

    @admin.display(description="Scope")
    def scope(self, obj: BackfillRun) -> str:
        if not obj.event_wix_id:
            return "all events"
        return format_html(
            '<strong>{}</strong><span class="secondary"><code>{}</code></span>',
            obj.event.title if obj.event else "one event",
            obj.event_wix_id,
        )

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: BackfillRun) -> str:
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="Mirrored")
    def result(self, obj: BackfillRun) -> str:
        text = f"{obj.fetched} read: {obj.created} new, {obj.updated} changed, {obj.unchanged} same"
        if obj.failed:
            return format_html('{}, <span class="badge badge-bad">{} failed</span>', text, obj.failed)
        return text

    @admin.display(description="Events done")
    def progress(self, obj: BackfillRun) -> str:
        total = getattr(obj, "steps_total", 0)
        return f"{getattr(obj, 'steps_ended', 0)} / {total}" if total else "-"

    @admin.display(description="Errors")
    def error_list(self, obj: BackfillRun) -> str:
        return pretty_json(obj.errors)

    @admin.action(description="Resume / restart selected runs (failed or died)", permissions=["backfill"])
    def resume(self, request: HttpRequest, queryset: QuerySet) -> None:
        resumed = sum(1 for run in queryset if backfill_resume(run=run, by=request.user))
        skipped = queryset.count() - resumed
        self.message_user(
            request,
            f"Queued {resumed} run(s) again; {skipped} were not failed or died, or their "
            "scope already has an active run.",
            messages.SUCCESS,
        )

    def has_backfill_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sync.start_backfill")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(EntityNamesMixin, ReadOnlyAdmin):
    console_section, console_order = "daily", 20
    list_display = [
        "received_at",
        "event_type_short",
        "entity",
        "site",
        "status_badge",
        "outcome",
        "attempts",
    ]
    list_display_links = ["received_at"]
    list_select_related = ["site"]
    list_filter = ["status", "site", "event_type"]
    search_fields = ["wix_event_id", "entity_id"]
    date_hierarchy = "received_at"
    readonly_fields = ["entity", "order", "decoded_payload"]
    exclude = ["payload", "raw_body"]
    actions = ["replay_selected", "replay_failed_since"]

    @admin.action(description="Replay selected (failed or stuck)", permissions=["replay"])
    def replay_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = webhook_replay(
            delivery_ids=list(queryset.values_list("pk", flat=True)),
            by=request.user,
            reason="staff: Replay selected",
        )
        self.message_user(
            request, f"Queued {count} deliver(ies) again; processed ones are left alone.", messages.SUCCESS
        )

    @admin.action(description="Replay all failed since …", permissions=["replay"])
    def replay_failed_since(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        return since_action(
            self,
            request,
            action="replay_failed_since",
            title="Replay failed deliveries since …",
            submit_label="Replay",
            run=lambda since: webhook_replay(
                delivery_ids=deliveries_failed_since(since),
                by=request.user,
                reason=f"staff: failed since {since}",
            ),
            done="Queued {count} failed deliver(ies) again.",
        )

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sync.replay_webhook")

    def entity_key(self, obj: WebhookDelivery) -> Key:
        return (obj.site_id or 0, None, obj.entity_id)

    @admin.display(description="Type", ordering="event_type")
    def event_type_short(self, obj: WebhookDelivery) -> str:
        """``OrderConfirmed``, with its full Wix name (``wix.events.ticketing.events.…``) beneath."""
        namespace, _, name = obj.event_type.rpartition(".")
        return format_html('{}<span class="secondary">{}</span>', name or "(none)", namespace)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: WebhookDelivery) -> str:
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="Order")
    def order(self, obj: WebhookDelivery) -> str:
        payload = obj.payload or {}
        if webhook_route(str(payload.get("eventType") or ""), {}) != "order_confirmed":
            return "-"
        return order_summary(payload.get("data") or {})

    @admin.display(description="Decoded payload")
    def decoded_payload(self, obj: WebhookDelivery) -> str:
        if obj.payload is None and not obj.raw_body:
            return f"Dropped after {settings.RETENTION_DAYS} days (retention); this summary stays."
        return pretty_json(obj.payload)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The raw JWT can be large; the list never shows it.
        return super().get_queryset(request).defer("raw_body")


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    console_section, console_order = "daily", 40
    list_display = ["pk", "site", "status", "healed_count", "drift_count", "started_at", "finished_at"]
    list_select_related = ["site"]
    list_filter = ["status", "site"]
    readonly_fields = ["healed_list", "drift_list", "error_list"]
    exclude = ["healed", "errors", "drift"]

    @admin.display(description="Changed by hand")
    def drift_count(self, obj: ReconciliationRun) -> int:
        return len(obj.drift)

    @admin.display(description="Changed by hand in a ticketing system")
    def drift_list(self, obj: ReconciliationRun) -> str:
        return pretty_json(obj.drift)

    @admin.display(description="Healed")
    def healed_list(self, obj: ReconciliationRun) -> str:
        return pretty_json(obj.healed)

    @admin.display(description="Errors")
    def error_list(self, obj: ReconciliationRun) -> str:
        return pretty_json(obj.errors)
