"""Counters in the console ("daily"): set one up, preview every case, publish it again.

Edits are recorded by the admin itself (History); "Publish now" through ``portal.audit``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from notifications.counters.selectors import TONE
from notifications.counters.services import (
    counter_definition,
    counter_entry_cached,
    counter_forget,
    counter_publish,
)
from notifications.counters.values import STATES, CounterValue, counter_text, counter_value
from notifications.models import CounterPush, TicketCounter
from portal.audit import audit
from sync.models import TicketDefinition

STATE_TONE = TONE


class TicketCounterForm(forms.ModelForm):
    class Meta:
        model = TicketCounter
        fields = [
            "slug",
            "site",
            "ticket_definition_wix_id",
            "option_id",
            "threshold",
            "text_normal",
            "text_low",
            "text_sold_out",
            "text_not_on_sale",
            "text_unavailable",
            "text_from",
            "locale",
            "allowed_origins",
            "velo_url",
            "velo_secret_env",
        ]
        widgets = {"allowed_origins": forms.Textarea(attrs={"rows": 3, "cols": 60})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        definitions = TicketDefinition.objects.filter(deleted_at__isnull=True).select_related("event", "site")
        choices = [("", "---------")]
        options = [("", "All options (“from” the lowest price)")]
        for td in definitions.order_by("event__title", "name"):
            event = td.event.title if td.event else td.event_wix_id
            price = f"{td.price} {td.currency}" if td.price is not None else ""
            choices.append((td.wix_id, f"{event} · {td.name} ({td.get_pricing_method_display()}, {price})"))
            for option in ((td.raw.get("pricingMethod") or {}).get("pricingOptions") or {}).get(
                "optionDetails"
            ) or []:
                if isinstance(option, dict) and option.get("optionId"):
                    label = (
                        f"{td.name} · {option.get('name', '?')} ({(option.get('price') or {}).get('value')})"
                    )
                    options.append((option["optionId"], label))
        current = self.instance.ticket_definition_wix_id if self.instance.pk else ""
        if current and current not in dict(choices):
            choices.append((current, f"{current} (not mirrored yet)"))
        self.fields["ticket_definition_wix_id"] = forms.ChoiceField(
            label="Ticket definition", choices=choices
        )
        if self.instance.option_id and self.instance.option_id not in dict(options):
            options.append((self.instance.option_id, f"{self.instance.option_id} (not on Wix any more)"))
        self.fields["option_id"] = forms.ChoiceField(
            label="Pricing option",
            choices=options,
            required=False,
            help_text=TicketCounter._meta.get_field("option_id").help_text,
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        site, wix_id, option = data.get("site"), data.get("ticket_definition_wix_id"), data.get("option_id")
        if site and wix_id:
            td = TicketDefinition.objects.filter(site=site, wix_id=wix_id).first()
            if td is None and wix_id != self.instance.ticket_definition_wix_id:
                self.add_error("ticket_definition_wix_id", "This site has no such ticket definition.")
            elif option and td is not None:
                ids = [
                    o.get("optionId")
                    for o in ((td.raw.get("pricingMethod") or {}).get("pricingOptions") or {}).get(
                        "optionDetails"
                    )
                    or []
                    if isinstance(o, dict)
                ]
                if option not in ids:
                    self.add_error("option_id", "That option belongs to another ticket definition.")
        return data


def preview_values(counter: TicketCounter, definition: TicketDefinition | None) -> dict[str, CounterValue]:
    """One made-up value per case, at the definition's own price where it is mirrored."""
    live = counter_value(counter=counter, definition=definition)
    price = live.price if live.price is not None else Decimal("20.00")
    base = CounterValue(
        "normal",
        unsold=counter.threshold + 40,
        price=price,
        currency=live.currency or "EUR",
        price_from=live.price_from,
        name=live.name or "Ticket",
    )
    return {
        "normal": base,
        "low": replace(base, state="low", unsold=min(3, counter.threshold) or 1),
        "sold_out": replace(base, state="sold_out", unsold=0),
        "not_on_sale": replace(base, state="not_on_sale"),
        "unavailable": CounterValue("unavailable"),
    }


@admin.register(TicketCounter)
class TicketCounterAdmin(admin.ModelAdmin):
    console_section, console_order = "daily", 80
    form = TicketCounterForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["slug", "definition", "state", "text_now", "threshold", "links"]
    list_select_related = ["site"]
    search_fields = ["slug", "ticket_definition_wix_id"]
    actions = ["publish_now"]
    readonly_fields = ["preview", "links", "embed"]
    fieldsets = [
        (None, {"fields": ["slug", "site", "ticket_definition_wix_id", "option_id", "threshold"]}),
        (
            "Texts ({unsold}, {price} and {name} are filled in)",
            {
                "fields": [
                    "text_normal",
                    "text_low",
                    "text_sold_out",
                    "text_not_on_sale",
                    "text_unavailable",
                    "text_from",
                    "locale",
                ]
            },
        ),
        ("Preview", {"fields": ["preview", "links", "embed"]}),
        ("Where it may be shown", {"fields": ["allowed_origins"]}),
        ("Velo push (optional)", {"fields": ["velo_url", "velo_secret_env"]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: TicketCounter | None = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.has_perm("notifications.change_counter_endpoint"):
            fields += ["velo_url", "velo_secret_env"]
        return fields

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        qs = TicketCounter.objects.values_list("site_id", "ticket_definition_wix_id")
        self._names = {
            (td.site_id, td.wix_id): td
            for td in TicketDefinition.objects.filter(wix_id__in=[w for _, w in qs]).select_related("event")
        }
        return super().changelist_view(request, extra_context)

    @admin.display(description="Ticket definition")
    def definition(self, obj: TicketCounter) -> SafeString:
        td = getattr(self, "_names", {}).get((obj.site_id, obj.ticket_definition_wix_id))
        if td is None:
            return format_html(
                '<span class="entity-missing">not mirrored</span> <code>{}</code>',
                obj.ticket_definition_wix_id,
            )
        return format_html(
            '<strong>{}</strong><span class="secondary">{}</span>',
            td.name,
            td.event.title if td.event else td.event_wix_id,
        )

    def _document(self, obj: TicketCounter) -> dict[str, Any] | None:
        entry = counter_entry_cached(slug=obj.slug)
        return json.loads(entry["body"]) if entry else None

    @admin.display(description="State")
    def state(self, obj: TicketCounter) -> SafeString:
        doc = self._document(obj)
        if doc is None:
            return format_html('<span class="badge badge-quiet">{}</span>', "not served yet")
        return format_html(
            '<span class="badge badge-{}">{}</span>',
            STATE_TONE.get(doc["state"], "quiet"),
            TicketCounter.State(doc["state"]).label,
        )

    @admin.display(description="Shows now")
    def text_now(self, obj: TicketCounter) -> str:
        doc = self._document(obj)
        return doc["text"] if doc else "—"

    @admin.display(description="Links")
    def links(self, obj: TicketCounter) -> SafeString:
        if not obj.pk:
            return format_html("{}", "—")
        return format_html(
            '<a href="{}" target="_blank">counter page</a> · <a href="{}" target="_blank">JSON</a>',
            reverse("counter-page", args=[obj.slug]),
            reverse("counter-json", args=[obj.slug]),
        )

    @admin.display(description="Embed snippet")
    def embed(self, obj: TicketCounter) -> SafeString:
        if not obj.pk:
            return format_html("{}", "Save first.")
        from notifications.counters.views import counter_snippet

        base = getattr(self, "_base_url", "")
        return format_html("<pre>{}</pre>", counter_snippet(base, obj.slug))

    @admin.display(description="Every case")
    def preview(self, obj: TicketCounter) -> SafeString:
        if not obj.pk:
            return format_html("{}", "Save first to preview.")
        definition = counter_definition(obj)
        live = counter_value(counter=obj, definition=definition)
        cases = preview_values(obj, definition)
        rows = format_html_join(
            "",
            '<tr id="preview-{}"><th>{}</th><td><span class="badge badge-{}">{}</span></td><td>{}</td></tr>',
            (
                (
                    state,
                    TicketCounter.State(state).label + (" (now)" if state == live.state else ""),
                    STATE_TONE[state],
                    state,
                    counter_text(counter=obj, value=cases[state]),
                )
                for state in STATES
            ),
        )
        return format_html('<table class="counter-preview">{}</table>', rows)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        self._base_url = request.build_absolute_uri("/").rstrip("/")
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request: HttpRequest, obj: TicketCounter, form: forms.Form, change: bool) -> None:
        previous = TicketCounter.objects.filter(pk=obj.pk).values_list("slug", flat=True).first()
        super().save_model(request, obj, form, change)
        if previous and previous != obj.slug:
            counter_forget(slug=previous)
        transaction.on_commit(lambda: counter_publish(counter=obj))

    def delete_model(self, request: HttpRequest, obj: TicketCounter) -> None:
        slug = obj.slug
        super().delete_model(request, obj)
        counter_forget(slug=slug)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        slugs = list(queryset.values_list("slug", flat=True))
        super().delete_queryset(request, queryset)
        for slug in slugs:
            counter_forget(slug=slug)

    @admin.action(description="Publish now (render again, push to Velo)", permissions=["change"])
    def publish_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        counters = list(queryset)
        for counter in counters:
            counter_publish(counter=counter)
        audit(request.user, counters, "Published again by hand.")
        self.message_user(request, f"Published {len(counters)} counter(s).", messages.SUCCESS)


@admin.register(CounterPush)
class CounterPushAdmin(admin.ModelAdmin):
    """Read-only: what was pushed to Velo, and what failed."""

    console_section, console_order = "internal", 80
    list_display = ["counter", "status", "attempts", "response_status", "last_error", "updated_at"]
    list_filter = ["status"]
    list_select_related = ["counter"]
    readonly_fields = [f.name for f in CounterPush._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
