"""Who may call what: the API asks the permissions the admin asks.

Every endpoint needs a staff user (a token acts as its user). Reading needs the model's view
permission (*Sync viewers*); acting needs the permission of the matching admin action
(*Sync operators*): ``sync.start_backfill``, ``sync.resync``, ``sync.replay_webhook``,
``sync.retry_work``.
"""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

_VIEW = ["%(app_label)s.view_%(model_name)s"]


class ViewPermissions(permissions.DjangoModelPermissions):
    """Reading needs the model's view permission (DRF's default lets any staff user read);
    starting a backfill (the one model that is created through the API) ``sync.start_backfill``."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": _VIEW,
        "HEAD": _VIEW,
        "OPTIONS": _VIEW,
        "POST": ["%(app_label)s.start_backfill"],
    }


class ActionPermission(permissions.BasePermission):
    """An action endpoint: every method needs ``perm`` (set by :func:`needs`)."""

    perm = ""

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(self.perm) and request.user.has_perm(self.perm)


def needs(perm: str) -> type[ActionPermission]:
    return type(f"Needs_{perm.replace('.', '_')}", (ActionPermission,), {"perm": perm})


STAFF = permissions.IsAdminUser
