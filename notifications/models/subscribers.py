"""Who may be mailed: the local list staff keep, the suppression list, and each site's consent rule."""

from __future__ import annotations

from django.db import models

from portal.models import TimestampedModel


class LocalSubscriber(TimestampedModel):
    """One address on the portal's own list (a ``SubscriberSource``: notifications.sources.local)."""

    site = models.ForeignKey("sync.WixSite", on_delete=models.CASCADE, related_name="local_subscribers")
    email = models.EmailField(help_text="Stored lower-case; addresses compare without case.")
    name = models.CharField(max_length=200, blank=True)
    all_events = models.BooleanField(default=False, help_text="Opted in for every event of the site.")
    event_wix_ids = models.JSONField(
        "Wix event ids", default=list, blank=True, help_text="The events chosen, when not all events."
    )
    unsubscribed = models.BooleanField(default=False)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    consent_at = models.DateTimeField("Consent given at", null=True, blank=True)
    consent_source = models.CharField(
        max_length=200, blank=True, help_text='Where the consent was given, e.g. "box office form".'
    )

    class Meta:
        ordering = ["email"]
        verbose_name = "local subscriber"
        constraints = [
            models.UniqueConstraint(fields=["site", "email"], name="localsubscriber_unique_site_email"),
        ]

    def __str__(self) -> str:
        return self.email


class EmailSuppression(TimestampedModel):
    """An address that receives nothing from this site, whatever a source says: Wix reported it
    unsubscribed, bounced or a spam complaint (Email Subscription Changed), or it used the
    unsubscribe link."""

    class Reason(models.TextChoices):
        WIX = "wix", "Wix consent"
        UNSUBSCRIBE_LINK = "link", "Unsubscribe link"
        STAFF = "staff", "Staff"

    site = models.ForeignKey("sync.WixSite", on_delete=models.CASCADE, related_name="email_suppressions")
    email = models.EmailField()
    reason = models.CharField(max_length=8, choices=Reason.choices)
    detail = models.CharField(max_length=200, blank=True, help_text="Wix's statuses, or which campaign.")

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["site", "email"], name="emailsuppression_unique_site_email"),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_reason_display()})"


class SiteNotificationSettings(TimestampedModel):
    """Per site: whom Wix's consent lets through, and who the emails come from."""

    site = models.OneToOneField(
        "sync.WixSite", on_delete=models.CASCADE, related_name="notification_settings"
    )
    allow_not_set = models.BooleanField(
        "Mail addresses Wix has no consent for (NOT_SET)",
        default=False,
        help_text="Off: only addresses Wix reports SUBSCRIBED are mailed. UNSUBSCRIBED, BOUNCED and "
        "SPAM_COMPLAINT are never mailed.",
    )
    from_email = models.CharField(max_length=200, blank=True, help_text="Empty: NOTIFICATIONS_FROM_EMAIL.")
    event_page_base_url = models.URLField(
        blank=True, help_text="The site's address; an event's page is <this>/event-details/<slug>."
    )

    class Meta:
        verbose_name = "site notification settings"
        verbose_name_plural = "site notification settings"

    def __str__(self) -> str:
        return f"Notifications of {self.site}"
