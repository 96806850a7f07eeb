from django.db import models


class TimestampedModel(models.Model):
    """Every table says when a row appeared and when it last changed."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
