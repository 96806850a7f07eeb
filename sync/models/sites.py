from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from portal.models import TimestampedModel
from portal.secrets import SecretName


class WixSite(TimestampedModel):
    """One Wix site the portal mirrors, and how to reach it.

    Secrets are never stored here: ``api_key_env`` and ``app_secret_env`` name environment
    variables that hold them.
    """

    class AuthMethod(models.TextChoices):
        API_KEY = "api_key", "API key"
        OAUTH = "oauth", "App OAuth (client credentials)"

    class PathFamily(models.TextChoices):
        CURRENT = "current", "Current (/events/v2, /events/v3)"
        LEGACY = "legacy", "Legacy (/events-policies/v2, /events-ticket-definitions/v3)"

    class Paging(models.TextChoices):
        OFFSET = "offset", "Offset"
        CURSOR = "cursor", "Cursor"

    name = models.CharField(max_length=120)
    site_id = models.CharField("Wix site id", max_length=64, unique=True)
    instance_id = models.CharField(
        "App instance id",
        max_length=64,
        blank=True,
        help_text="Identifies the site in webhooks (instanceId).",
    )
    auth_method = models.CharField(max_length=16, choices=AuthMethod.choices, default=AuthMethod.API_KEY)
    api_key_env = models.CharField(
        "API key variable",
        max_length=100,
        blank=True,
        validators=[SecretName("WIX_")],
        help_text="Name of the environment variable holding the API key, e.g. WIX_API_KEY.",
    )
    app_id = models.CharField("App id", max_length=64, blank=True)
    app_secret_env = models.CharField(
        "App secret variable", max_length=100, blank=True, validators=[SecretName("WIX_")]
    )
    api_base_url = models.URLField("API base URL", default="https://www.wixapis.com")
    path_family = models.CharField(max_length=16, choices=PathFamily.choices, default=PathFamily.CURRENT)
    paging = models.CharField(max_length=16, choices=Paging.choices, default=Paging.OFFSET)
    webhook_public_keys = models.TextField(
        blank=True,
        help_text="One or more PEM public keys (RS256) from the app dashboard; "
        "several may be active during a rotation.",
    )
    is_active = models.BooleanField(default=True)
    webhooks_rejected = models.PositiveIntegerField(
        default=0, help_text="Deliveries refused (bad signature, unknown key, expired)."
    )
    webhook_last_rejected_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            # Where the site's key is sent, which variable holds it, and which keys sign webhooks.
            ("change_site_endpoint", "Can change a site's API URL, secret variables and webhook keys"),
        ]
        constraints = [
            # Webhooks find their site by instanceId; two sites with one id would be ambiguous.
            models.UniqueConstraint(
                fields=["instance_id"], condition=~models.Q(instance_id=""), name="wixsite_unique_instance_id"
            ),
        ]

    def __str__(self) -> str:
        return self.name  # lists and menus name it; its Wix site id is on its page

    def clean(self) -> None:
        if self.auth_method == self.AuthMethod.API_KEY and not self.api_key_env:
            raise ValidationError({"api_key_env": "An API-key site needs the variable that holds its key."})
        if self.auth_method == self.AuthMethod.OAUTH:
            missing = [f for f in ("app_id", "app_secret_env", "instance_id") if not getattr(self, f)]
            if missing:
                raise ValidationError({f: "Required for app OAuth." for f in missing})
