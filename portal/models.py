from django.db import models
from knox.models import AuthToken

# How much of a token the admin shows: enough to tell tokens apart, far too little to use.
MASKED_CHARS = 8


class TimestampedModel(models.Model):
    """Every table says when a row appeared and when it last changed."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class ApiToken(AuthToken):
    """An API token as the admin shows it: knox's row (only a SHA-512 digest of the token is
    stored), named by the token's first characters instead of the digest."""

    class Meta:
        proxy = True
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.masked} ({self.user})"

    @property
    def masked(self) -> str:
        return f"{self.token_key[:MASKED_CHARS]}…"
