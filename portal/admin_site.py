"""The admin site as an operations console: status first, daily work apart from internals.

The home page shows what is broken now (the problems of :mod:`portal.health`, each linking to
the filtered list that explains it), then the panels apps register (:mod:`portal.dashboard`).
Its menu groups pages by what staff do with them rather than by Django app: daily work,
set-up, people and access, internals. A model admin names its group with
``console_section``; otherwise its app decides.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from portal import dashboard, health

SECTIONS = {
    "daily": "Daily work",
    "setup": "Set-up",
    "access": "People and access",
    "internal": "Internals",
}
# Where an app's pages go, and in which order, unless their model admin says otherwise.
APP_SECTIONS = {
    "auth": ("access", 100),
    "axes": ("access", 150),
    "portal": ("access", 50),
    "django_q": ("internal", 100),
    "sandbox": ("internal", 200),
}


class PortalAdminSite(admin.AdminSite):
    site_header = "Events Sync Portal"
    site_title = "Events Sync Portal"
    index_title = "Operations"
    # The portal has no public site: "View site" would lead to a 404.
    site_url = None
    index_template = "admin/portal/console.html"
    # Lists take the whole window (1400 px is enough for every one); the home page is the menu.
    enable_nav_sidebar = False

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        """Pages grouped by section for the home page and the menu; one app's page as Django has it."""
        if app_label is not None:
            return super().get_app_list(request, app_label)
        groups: dict[str, list[tuple[int, dict[str, Any]]]] = {key: [] for key in SECTIONS}
        for app in self._build_app_dict(request).values():
            for model in app["models"]:
                model_admin = self._registry[model["model"]]
                section, order = APP_SECTIONS.get(app["app_label"], ("daily", 100))
                key = getattr(model_admin, "console_section", section)
                groups.setdefault(key, []).append((getattr(model_admin, "console_order", order), model))
        return [
            {
                "name": SECTIONS.get(key, key.title()),
                "app_label": f"section-{key}",
                "app_url": "",  # a section is not an app: its caption links nowhere
                "has_module_perms": True,
                "models": [model for _, model in sorted(entries, key=lambda e: (e[0], e[1]["name"]))],
            }
            for key, entries in groups.items()
            if entries
        ]

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        return super().index(
            request,
            {
                "problems": health.problems(),
                "panels": dashboard.panels_render(request),
                **(extra_context or {}),
            },
        )
