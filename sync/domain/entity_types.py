"""The Wix entity types the portal mirrors and pushes."""

from django.db import models


class EntityType(models.TextChoices):
    POLICY = "policy", "Policy"
    TICKET_DEFINITION = "ticket_definition", "Ticket definition"
    EVENT = "event", "Event"
