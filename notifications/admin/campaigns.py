"""Campaigns (upcoming first, with recipient estimates), their ledger, and the email template."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from notifications.models import EmailTemplate, Notification, SaleStartCampaign
from notifications.services.campaigns import campaign_cancel, campaign_send_now
from notifications.services.emails import Templates, templates_default, templates_for_site, templates_validate
from notifications.services.preview import (
    campaign_estimate,
    campaign_preview,
    campaign_send_test,
    next_campaign,
)
from notifications.services.sending import notifications_resend


def _preview_html(subject: str, text: str, html: str) -> str:
    return format_html(
        '<div class="email-preview"><p><strong>Subject:</strong> {}</p>'
        '<iframe sandbox="" title="HTML part" srcdoc="{}" '
        'style="width:100%;height:420px;border:1px solid #ccc"></iframe>'
        "<details><summary>Plain-text part</summary>"
        '<pre style="white-space:pre-wrap">{}</pre></details></div>',
        subject,
        html,
        text,
    )


@admin.register(SaleStartCampaign)
class SaleStartCampaignAdmin(admin.ModelAdmin):
    console_section, console_order = "daily", 70
    list_display = ["__str__", "sale_start", "status", "tickets", "recipients_cell", "reason"]
    list_filter = ["status", "site"]
    list_select_related = ["site", "event"]
    search_fields = ["event__title", "event_wix_id"]
    ordering = ["-sale_start"]
    actions = ["send_now", "send_test", "cancel"]
    readonly_fields = [
        "site",
        "event",
        "event_wix_id",
        "sale_start",
        "sale_end",
        "ticket_definition_wix_ids",
        "status",
        "blocked_reason",
        "cancelled_reason",
        "released_at",
        "recipients",
        "progress",
        "attempts",
        "not_before",
        "last_error",
        "retried_by",
        "retry_reason",
        "email_preview",
    ]
    exclude = ["claimed_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                sent=Count("notifications", filter=Q(notifications__status=Notification.Status.SENT)),
                failed=Count("notifications", filter=Q(notifications__status=Notification.Status.FAILED)),
            )
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_send_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notifications.send_campaign")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notifications.cancel_campaign")

    @admin.display(description="tickets")
    def tickets(self, obj: SaleStartCampaign) -> int:
        return len(obj.ticket_definition_wix_ids)

    @admin.display(description="recipients")
    def recipients_cell(self, obj: SaleStartCampaign) -> str:
        if obj.status in SaleStartCampaign.OPEN:
            estimate = campaign_estimate(obj)
            return f"about {estimate} (before Wix consent)" if isinstance(estimate, int) else estimate
        if obj.recipients is None:
            return "—"
        return f"{obj.recipients}: {getattr(obj, 'sent', 0)} sent, {getattr(obj, 'failed', 0)} failed"

    @admin.display(description="why")
    def reason(self, obj: SaleStartCampaign) -> str:
        return (
            obj.blocked_reason or obj.cancelled_reason or (obj.last_error if obj.status != "sending" else "")
        )

    @admin.display(description="progress")
    def progress(self, obj: SaleStartCampaign) -> str:
        counts = dict(
            obj.notifications.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
        )
        return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing written yet"

    @admin.display(description="email (as a recipient would get it)")
    def email_preview(self, obj: SaleStartCampaign) -> str:
        rendered = campaign_preview(campaign=obj, templates=templates_for_site(obj.site))
        return _preview_html(rendered.subject, rendered.text, rendered.html)

    @admin.action(description="Send now", permissions=["send"])
    def send_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        n = campaign_send_now(campaign_ids=list(queryset.values_list("pk", flat=True)), by=request.user)
        self.message_user(request, f"{n} campaign(s) will be sent now.", messages.SUCCESS)

    @admin.action(description="Send a test to me", permissions=["send"])
    def send_test(self, request: HttpRequest, queryset: QuerySet) -> None:
        to = getattr(request.user, "email", "")
        if not to:
            self.message_user(request, "Your account has no email address.", messages.ERROR)
            return
        for campaign in queryset.select_related("site", "event")[:5]:
            campaign_send_test(campaign=campaign, to=to, by=request.user)
        self.message_user(request, f"Test sent to {to}.", messages.SUCCESS)

    @admin.action(description="Cancel", permissions=["cancel"])
    def cancel(self, request: HttpRequest, queryset: QuerySet) -> None:
        n = campaign_cancel(campaign_ids=list(queryset.values_list("pk", flat=True)), by=request.user)
        self.message_user(request, f"{n} campaign(s) cancelled.", messages.SUCCESS)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """The ledger: read-only; failed or uncertain rows may be sent again."""

    console_section, console_order = "daily", 71
    list_display = ["email", "campaign", "channel", "status", "attempts", "sent_at", "last_error"]
    list_filter = ["status", "channel"]
    list_select_related = ["campaign__event", "campaign__site"]
    search_fields = ["email", "message_id"]  # a Message-ID from the mail server's log finds its row
    # What happened first; the job engine's bookkeeping after.
    fields = [
        *("campaign", "channel", "email", "name", "status", "last_error"),
        *("message_id", "handed_at", "sent_at", "attempts", "not_before", "claimed_at"),
        *("retried_by", "retry_reason"),
    ]
    raw_id_fields = ["campaign"]
    show_full_result_count = False
    actions = ["send_again"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_send_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notifications.send_campaign")

    @admin.action(description="Send again (failed or uncertain)", permissions=["send"])
    def send_again(self, request: HttpRequest, queryset: QuerySet) -> None:
        n = notifications_resend(
            notification_ids=list(queryset.values_list("pk", flat=True)), by=request.user
        )
        self.message_user(request, f"{n} email(s) will be sent again.", messages.SUCCESS)


class EmailTemplateForm(forms.ModelForm):
    class Meta:
        model = EmailTemplate
        fields = ["site", "subject", "text_body", "html_body"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            defaults = templates_default()
            for part in ("subject", "text_body", "html_body"):
                self.fields[part].initial = getattr(defaults, part)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if all(data.get(p) is not None for p in ("subject", "text_body", "html_body")):
            templates_validate(Templates(data["subject"], data["text_body"], data["html_body"]))
        return data


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    """The template editor: saved only if every part renders; the page shows the email rendered."""

    console_section, console_order = "setup", 40
    form = EmailTemplateForm
    list_display = ["site", "subject", "updated_at"]
    readonly_fields = ["preview"]
    fieldsets = [
        (None, {"fields": ["site", "subject", "text_body", "html_body"]}),
        ("Preview (the latest campaign of the site, or a sample)", {"fields": ["preview"]}),
    ]

    @admin.display(description="rendered")
    def preview(self, obj: EmailTemplate) -> str:
        if not obj.pk:
            return "Save to see the email rendered."
        templates = Templates(obj.subject, obj.text_body, obj.html_body)
        rendered = campaign_preview(campaign=next_campaign(obj.site), templates=templates)
        return _preview_html(rendered.subject, rendered.text, rendered.html)
