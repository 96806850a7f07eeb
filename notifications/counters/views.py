"""The public counter: JSON (``/counter/<slug>/``), SSE (``…/events``), the widget and a demo page.

Read-only and anonymous. The JSON is served from the ``counters`` cache: no database read
while the entry is cached, never a database write. CORS headers go only to the counter's
allowed origins; ETag/304 and a short ``max-age`` make polling cheap.

SSE and workers: a stream holds one web worker thread for its length
(``COUNTER_SSE_SECONDS``) but no database connection: the view closes it before streaming,
and the stream looks only at the cache. Under gunicorn's sync workers each open stream takes
a whole worker, so run the counter routes on threaded (``gthread``) or async workers, or set
``COUNTER_SSE_SECONDS=0`` and let the widget poll; the stream ends on its own and the
browser reconnects after ``retry:``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from functools import cache
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.staticfiles import finders
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from notifications.counters.services import counter_entry, counter_entry_cached

HEARTBEAT_SECONDS = 15.0
# The browser reconnects this long after a stream ends (every COUNTER_SSE_SECONDS, on
# purpose): short, since a change in that gap waits for the reconnection. After errors the
# widget gives up on streaming by itself (three failures in a row) and polls.
RECONNECT_MS = 1000
R = TypeVar("R", bound=HttpResponseBase)


def _cors(request: HttpRequest, response: R, origins: list[str]) -> R:
    """Allow the request's Origin only if it is one of the counter's (no wildcard, no credentials)."""
    response["Vary"] = "Origin"
    origin = request.headers.get("Origin", "")
    if origin and origin.rstrip("/").lower() in origins:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Expose-Headers"] = "ETag"
        if request.method == "OPTIONS":
            response["Access-Control-Allow-Methods"] = "GET, OPTIONS"
            response["Access-Control-Allow-Headers"] = "If-None-Match, Cache-Control, Last-Event-ID"
            response["Access-Control-Max-Age"] = "600"
    return response


def _unknown() -> JsonResponse:
    return JsonResponse({"error": "unknown counter"}, status=404)


def _etag_matches(request: HttpRequest, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in request.headers.get("If-None-Match", "").split(",")]
    return etag in tags or "*" in tags


@require_http_methods(["GET", "HEAD", "OPTIONS"])
def counter_json(request: HttpRequest, slug: str) -> HttpResponse:
    entry = counter_entry(slug=slug)
    if entry is None:
        return _unknown()
    if request.method == "OPTIONS":
        return _cors(request, HttpResponse(status=204), entry["origins"])
    if _etag_matches(request, entry["etag"]):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(entry["body"], content_type="application/json")
    response["ETag"] = entry["etag"]
    response["Cache-Control"] = f"public, max-age={settings.COUNTER_MAX_AGE_SECONDS}"
    return _cors(request, response, entry["origins"])


def _event(entry: dict[str, Any]) -> str:
    return f"id: {entry['etag'].strip(chr(34))}\nevent: counter\ndata: {entry['body']}\n\n"


def _stream(slug: str, entry: dict[str, Any], last_seen: str) -> Iterator[str]:
    """Send the value now (unless the client has it), then each new version, until the
    stream's time is up; comments keep proxies from closing an idle stream."""
    yield f"retry: {RECONNECT_MS}\n\n"
    current = entry["etag"].strip('"')
    if current != last_seen:
        yield _event(entry)
    started = last_beat = time.monotonic()
    while time.monotonic() - started < settings.COUNTER_SSE_SECONDS:
        time.sleep(settings.COUNTER_SSE_POLL_SECONDS)
        fresh = counter_entry_cached(slug=slug)
        if fresh is not None and fresh["etag"].strip('"') != current:
            current = fresh["etag"].strip('"')
            last_beat = time.monotonic()
            yield _event(fresh)
        elif time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
            last_beat = time.monotonic()
            yield ": still here\n\n"


@require_http_methods(["GET", "OPTIONS"])
def counter_events(request: HttpRequest, slug: str) -> HttpResponseBase:
    entry = counter_entry(slug=slug)
    if entry is None:
        return _unknown()
    if request.method == "OPTIONS":
        return _cors(request, HttpResponse(status=204), entry["origins"])
    if settings.COUNTER_SSE_SECONDS <= 0:
        return _cors(request, JsonResponse({"error": "streaming is off; poll"}, status=503), entry["origins"])
    # Thousands of open streams must not hold a database connection each: close ours now
    # (the stream reads only the cache). Inside a test's transaction it must stay open.
    if not connection.in_atomic_block:
        connection.close()
    response = StreamingHttpResponse(
        _stream(slug, entry, request.headers.get("Last-Event-ID", "")), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return _cors(request, response, entry["origins"])


@cache
def _widget_source() -> str:
    path = finders.find("notifications/counter.js")
    assert isinstance(path, str), "notifications/static/notifications/counter.js is missing"
    with open(path, encoding="utf-8") as source:
        return source.read()


def counter_widget(request: HttpRequest) -> HttpResponse:
    """The widget script, served by the portal itself so that the embed works whatever serves
    static files (a ``<script>`` needs no CORS)."""
    response = HttpResponse(_widget_source(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    return response


def counter_page(request: HttpRequest, slug: str) -> HttpResponse:
    """A page showing the counter through its embed snippet (what a site owner pastes)."""
    entry = counter_entry(slug=slug)
    if entry is None:
        return _unknown()
    snippet = counter_snippet(request.build_absolute_uri("/").rstrip("/"), slug)
    return render(
        request,
        "notifications/counter_page.html",
        {"slug": slug, "snippet": snippet, "document": json.loads(entry["body"])},
    )


def counter_snippet(base_url: str, slug: str) -> str:
    """The one tag a site owner pastes (or puts in Wix's "Embed HTML" element)."""
    return (
        f'<script src="{base_url}{reverse("counter-widget")}" '
        f'data-counter="{base_url}{reverse("counter-json", args=[slug])}" async></script>'
    )
