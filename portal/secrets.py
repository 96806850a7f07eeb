"""Secrets live in the environment, referenced by name from the database.

A row (a Wix site, an external system) stores only the *name* of the variable that holds
its secret, so the admin never shows one and a database dump never leaks one. Each kind of
row may only name variables of its own prefix (sites ``WIX_``, ticketing systems
``EXTERNAL_``, marketing sources ``MARKETING_``, ticket counters' Velo pushes ``COUNTER_``):
otherwise staff who may edit a ticketing system could name ``WIX_API_KEY`` and have the
portal send the Wix key to a URL of their choosing. The prefix is checked when the row is
saved and again when the secret is read, so a row saved before the rule cannot use another
kind's secret either.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

from portal.env import env_str

SECRET_PREFIXES = ("WIX_", "EXTERNAL_", "MARKETING_", "COUNTER_")
_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]+$")
# The sandbox's own secrets default to values in settings (development and tests only).
_SANDBOX_DEFAULTS = ("WIX_SANDBOX_API_KEY", "EXTERNAL_SANDBOX_TOKEN")


class MissingSecret(Exception):
    pass


def secret_name_check(name: str, *, prefix: str) -> None:
    """Raise ValidationError unless ``name`` is an upper-case variable name starting with ``prefix``."""
    if prefix not in SECRET_PREFIXES:
        raise ValueError(f"{prefix!r} is not a secret prefix")
    if not (name.startswith(prefix) and len(name) > len(prefix) and _NAME_RE.match(name)):
        raise ValidationError(
            f"Use the name of an environment variable that starts with {prefix} "
            "(upper case, digits and underscores).",
            code="secret_prefix",
        )


@deconstructible
class SecretName:
    """Field validator: a variable name of one kind's prefix (blank allowed; ``blank`` decides)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, value: str) -> None:
        if value:
            secret_name_check(value, prefix=self.prefix)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretName) and other.prefix == self.prefix

    def __hash__(self) -> int:
        return hash(self.prefix)


def secret_name_validate(name: str) -> None:
    """Any of the prefixes. Kept because early migrations name it; fields use :class:`SecretName`."""
    if name and not any(name.startswith(p) for p in SECRET_PREFIXES):
        raise ValidationError("Use a variable that starts with WIX_, EXTERNAL_, MARKETING_ or COUNTER_.")


def secret_read(name: str, *, prefix: str) -> str:
    """Read a secret by variable name (or NAME_FILE), refusing a name of another kind's prefix."""
    try:
        secret_name_check(name, prefix=prefix)
    except ValidationError:
        raise MissingSecret(
            f"{name!r} cannot hold this secret: use a variable starting with {prefix}."
        ) from None
    value = env_str(name)
    if not value and name in _SANDBOX_DEFAULTS:
        value = getattr(settings, name)
    if not value:
        raise MissingSecret(f"The environment variable {name} (or {name}_FILE) is not set.")
    return value
