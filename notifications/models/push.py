"""The push channel: a URL (a push service's) that receives each notification, HMAC-signed."""

from __future__ import annotations

from django.db import models

from portal.models import TimestampedModel
from portal.secrets import SecretName


class PushEndpoint(TimestampedModel):
    """Per site, at most one: each sale-start notification is also POSTed here, once (the same
    ledger as the emails, channel ``push``)."""

    site = models.OneToOneField("sync.WixSite", on_delete=models.CASCADE, related_name="push_endpoint")
    url = models.URLField("URL", help_text="HTTPS endpoint of the push service.")
    secret_env = models.CharField(
        "Signing secret variable",
        max_length=100,
        validators=[SecretName("MARKETING_")],
        help_text="Name of the environment variable holding the HMAC key, e.g. MARKETING_PUSH_SECRET.",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = "push endpoint"

    def __str__(self) -> str:
        return f"Push to {self.url}"
