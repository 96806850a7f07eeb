from typing import Any

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.http import HttpRequest


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from portal.dashboard import Panel, register

        register(
            Panel("recent", "Recent staff actions", "admin/portal/recent.html", recent_actions, 90, False)
        )


class PortalAdminConfig(admin_apps.AdminConfig):
    """Django's admin, with the portal's console as its site (``portal.admin_site``)."""

    default = False  # "portal" in INSTALLED_APPS still means PortalConfig

    default_site = "portal.admin_site.PortalAdminSite"


def recent_actions(request: HttpRequest) -> dict[str, Any]:
    """Who did what lately: everyone's actions for a superuser, one's own for other staff."""
    from django.contrib.admin.models import LogEntry

    entries = LogEntry.objects.select_related("user", "content_type").order_by("-action_time")
    if not request.user.is_superuser:
        entries = entries.filter(user_id=request.user.pk or 0)
    return {"entries": list(entries[:10])}
