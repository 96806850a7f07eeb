"""Connecting the portal to a pretix: the system row and its default mappings."""

from __future__ import annotations

from django.db import transaction

from sync.clients.pretix import PRETIX_DEFAULT_MAPPINGS
from sync.models import ExternalSystem
from sync.services.mapping import mappings_seed


@transaction.atomic
def pretix_system_ensure(
    *, url: str, organizer: str, token_env: str, name: str = "pretix", currency: str = "EUR"
) -> ExternalSystem:
    """Create (or point again) the pretix system; a new one gets the default mappings."""
    system, _ = ExternalSystem.objects.update_or_create(
        name=name,
        defaults={
            "kind": ExternalSystem.Kind.PRETIX,
            "base_url": url,
            "organizer": organizer,
            "auth_type": ExternalSystem.AuthType.TOKEN,
            "auth_secret_env": token_env,
            "default_currency": currency,
        },
    )
    system.full_clean()
    mappings_seed(system, PRETIX_DEFAULT_MAPPINGS)
    return system
