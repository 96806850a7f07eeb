"""The sale-start email's templates, editable per site; checked when saved, not when sent."""

from __future__ import annotations

from django.db import models

from portal.models import TimestampedModel


class EmailTemplate(TimestampedModel):
    """Subject, plain-text and HTML parts (Django template language). Without a row for a site,
    the built-in templates (notifications/templates/notifications/email/) are used."""

    site = models.OneToOneField("sync.WixSite", on_delete=models.CASCADE, related_name="email_template")
    subject = models.CharField(max_length=300)
    text_body = models.TextField("Plain-text part")
    html_body = models.TextField("HTML part")

    class Meta:
        verbose_name = "sale-start email template"

    def __str__(self) -> str:
        return f"Sale-start email of {self.site}"
