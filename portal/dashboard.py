"""The admin's home page is the operations console: panels that apps register, status first.

This module imports no app. Each app registers its panels when it is ready: a title, a
template, and a function that reads what the template shows for this request (or ``None``
when the user may not see it). The admin site renders them in order; one panel that fails
shows its error in place and the rest of the console still loads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import SafeString

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Panel:
    key: str  # stable: the element id on the page, for tests and links ("panel-systems")
    title: str
    template: str
    context: Callable[[HttpRequest], dict[str, Any] | None]
    order: int = 100
    wide: bool = True  # full width, or half of a row beside the next half panel


@dataclass(frozen=True)
class RenderedPanel:
    panel: Panel
    html: SafeString


_PANELS: dict[str, Panel] = {}


def register(panel: Panel) -> None:
    _PANELS[panel.key] = panel


def panels_render(request: HttpRequest) -> list[RenderedPanel]:
    """Every panel this user may see, rendered, in order."""
    rendered = []
    for panel in sorted(_PANELS.values(), key=lambda p: (p.order, p.key)):
        try:
            context = panel.context(request)
            if context is None:
                continue
            html = render_to_string(panel.template, {"panel": panel, **context}, request=request)
        except Exception as exc:
            log.exception("Dashboard panel %s failed", panel.key)
            html = format_html(
                '<p class="errornote">This panel could not be read: {}.</p>', exc.__class__.__name__
            )
        rendered.append(RenderedPanel(panel, SafeString(html)))
    return rendered
