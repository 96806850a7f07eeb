"""Secrets live in the environment, referenced by name from the database.

A row (a Wix site, an external system) stores only the *name* of the variable that holds
its secret, so the admin never shows one and a database dump never leaks one. Names are
restricted to a prefix so that an admin user cannot point a row at ``SECRET_KEY`` or
``DATABASE_URL`` and have the portal send it to a URL of their choosing.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError

from portal.env import env_str

SECRET_NAME_RE = re.compile(r"^(WIX|EXTERNAL|MARKETING)_[A-Z0-9_]+$")


class MissingSecret(Exception):
    pass


def secret_name_validate(name: str) -> None:
    if name and not SECRET_NAME_RE.match(name):
        raise ValidationError(
            "Use the name of an environment variable that starts with WIX_, EXTERNAL_ or MARKETING_ "
            "(upper case, digits and underscores)."
        )


def secret_read(name: str) -> str:
    """Read a secret by variable name (or NAME_FILE); the sandbox's own key comes from settings."""
    secret_name_validate(name)
    value = env_str(name)
    if not value and name in ("WIX_SANDBOX_API_KEY", "EXTERNAL_SANDBOX_TOKEN"):
        value = getattr(settings, name)
    if not value:
        raise MissingSecret(f"The environment variable {name} (or {name}_FILE) is not set.")
    return value
