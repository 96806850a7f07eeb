"""Editing sandbox data in the admin behaves like editing it on Wix: revision bump and webhook."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from sync.sandbox.models import (
    SandboxEmailSubscription,
    SandboxEntity,
    SandboxEvent,
    SandboxFault,
    SandboxKey,
    SandboxPolicy,
    SandboxTicketDefinition,
    SandboxTicketingRecord,
    SandboxWebhook,
)
from sync.sandbox.services import SandboxError, entity_create, entity_delete, entity_update, order_place


class EntityForm(forms.ModelForm):
    class Meta:
        model = SandboxEntity
        fields = ["data"]
        widgets = {"data": forms.Textarea(attrs={"rows": 30, "cols": 100, "class": "vLargeTextField"})}


class SandboxEntityAdmin(admin.ModelAdmin):
    kind: str = ""
    form = EntityForm
    list_display = ["__str__", "wix_id", "event_wix_id", "revision", "deleted", "updated_at"]
    search_fields = ["wix_id", "event_wix_id"]
    actions = ["delete_like_wix"]

    @admin.display(description="Revision")
    def revision(self, obj: SandboxEntity) -> str:
        return obj.data.get("revision", "")

    @admin.display(boolean=True)
    def deleted(self, obj: SandboxEntity) -> bool:
        return "_deleted" in obj.data

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(kind=self.kind)

    def save_model(self, request: HttpRequest, obj: SandboxEntity, form: forms.Form, change: bool) -> None:
        data: dict[str, Any] = form.cleaned_data["data"]
        try:
            if change:
                current = SandboxEntity.objects.get(pk=obj.pk).data
                entity_update(
                    kind=self.kind, wix_id=obj.wix_id, changes={**data, "revision": current["revision"]}
                )
            else:
                created = entity_create(kind=self.kind, data=data)
                obj.pk = SandboxEntity.objects.get(wix_id=next(iter(created.values()))["id"]).pk
        except SandboxError as exc:
            self.message_user(request, f"Wix sandbox refused the change: {exc.message}", messages.ERROR)

    def delete_model(self, request: HttpRequest, obj: SandboxEntity) -> None:
        entity_delete(kind=self.kind, wix_id=obj.wix_id)

    @admin.action(description="Delete selected (as Wix would, with a webhook)", permissions=["delete"])
    def delete_like_wix(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset:
            if "_deleted" not in obj.data:
                entity_delete(kind=self.kind, wix_id=obj.wix_id)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class SandboxTicketDefinitionAdmin(SandboxEntityAdmin):
    kind = "ticket_definition"
    actions = ["delete_like_wix", "buy_tickets"]

    @admin.action(description="Buy tickets (one of each, sends Order Confirmed)", permissions=["change"])
    def buy_tickets(self, request: HttpRequest, queryset: QuerySet) -> None:
        """A buyer on the Wix site: the sale lowers the unsold count and Wix sends Order Confirmed."""
        sold = []
        for obj in queryset:
            try:
                order = order_place(event_id=obj.event_wix_id, quantities={obj.wix_id: 1})
            except SandboxError as exc:
                self.message_user(request, f"{obj}: Wix refused the order: {exc.message}", messages.ERROR)
            else:
                sold.append(order["orderNumber"])
        if sold:
            text = f"Placed order(s) {', '.join(sold)}; Order Confirmed is on its way."
            self.message_user(request, text, messages.SUCCESS)


class SandboxWebhookAdmin(admin.ModelAdmin):
    list_display = ["event_type", "entity_id", "status", "response_status", "created_at"]
    list_filter = ["status", "event_type"]
    readonly_fields = ["event_type", "entity_id", "status", "response_status", "error", "pretty_envelope"]
    exclude = ["envelope"]

    @admin.display(description="Envelope")
    def pretty_envelope(self, obj: SandboxWebhook) -> str:
        from django.utils.html import format_html

        return format_html("<pre>{}</pre>", json.dumps(obj.envelope, indent=2))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class SandboxEmailSubscriptionAdmin(admin.ModelAdmin):
    """Changing a status here is a change on Wix: the Email Subscription Changed webhook follows."""

    list_display = ["email", "subscription_status", "deliverability_status", "updated_at"]
    list_filter = ["subscription_status", "deliverability_status"]
    search_fields = ["email"]
    fields = ["email", "subscription_status", "deliverability_status"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        from sync.sandbox.subscriptions import subscription_upsert

        subscription_upsert(
            email=obj.email, status=obj.subscription_status, deliverability=obj.deliverability_status
        )
        obj.pk = SandboxEmailSubscription.objects.get(email=obj.email.strip().lower()).pk


if settings.PORTAL_SANDBOX:
    admin.site.register(SandboxEmailSubscription, SandboxEmailSubscriptionAdmin)
    for proxy, kind in [(SandboxEvent, "event"), (SandboxPolicy, "policy")]:
        admin.site.register(proxy, type(f"{proxy.__name__}Admin", (SandboxEntityAdmin,), {"kind": kind}))
    admin.site.register(SandboxTicketDefinition, SandboxTicketDefinitionAdmin)
    admin.site.register(SandboxWebhook, SandboxWebhookAdmin)
    admin.site.register(
        SandboxTicketingRecord,
        list_display=["__str__", "deleted", "writes", "updated_at"],
        list_filter=["collection", "deleted"],
        search_fields=["record_id"],
    )
    admin.site.register(SandboxFault, list_display=["__str__", "path_contains", "status", "remaining"])
    admin.site.register(
        SandboxKey,
        list_display=["kid", "created_at"],
        readonly_fields=["kid", "public_pem"],
        exclude=["private_pem"],
    )
