"""Health check for load balancers and monitors: database, queue, newest webhook, problems.

``status`` is ``ok``; ``degraded`` while something needs staff (dead letters, failed
deliveries, a stuck backfill, an overdue campaign: ``portal.health``); ``error`` when the
database or the queue cannot be reached (503). A monitor that should page on ``degraded``
too asks ``/healthz?fail_on=degraded`` (503 then).

Anyone may ask whether the portal is healthy; only staff see why. The details name the
database vendor, the broker, queue depth and error texts (which may carry host names),
which tell an outsider more than a load balancer needs.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django_q.brokers import get_broker
from prometheus_client import CONTENT_TYPE_LATEST

from portal.health import problems
from portal.metrics import metrics_text
from sync.models import WebhookDelivery


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "vendor": connection.vendor}


def _queue() -> dict[str, Any]:
    try:
        broker = get_broker()
        if not broker.ping():
            return {"ok": False, "error": "broker does not answer"}
        return {"ok": True, "broker": broker.__class__.__name__, "queued": broker.queue_size()}
    except Exception as exc:
        return {"ok": False, "error": str(exc)}


def _webhooks() -> dict[str, Any]:
    try:
        newest = (
            WebhookDelivery.objects.order_by("-received_at").values_list("received_at", flat=True).first()
        )
    except Exception as exc:
        return {"ok": False, "error": str(exc)}
    age = None if newest is None else round((timezone.now() - newest).total_seconds(), 1)
    # No threshold: a quiet site sends no webhooks; the age is for a monitor to judge.
    return {"ok": True, "newest_age_seconds": age}


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database(), "queue": _queue(), "webhooks": _webhooks()}
    reachable = checks["database"]["ok"] and checks["queue"]["ok"]
    found = problems() if checks["database"]["ok"] else []
    status = "error" if not reachable else "degraded" if found else "ok"
    body: dict[str, Any] = {"status": status}
    if request.user.is_authenticated and request.user.is_staff:
        body["checks"] = checks
        body["problems"] = [asdict(problem) for problem in found]
    failing = status == "error" or (status == "degraded" and request.GET.get("fail_on") == "degraded")
    return JsonResponse(body, status=503 if failing else 200)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition: for staff, or a scraper with ``METRICS_TOKEN`` as a bearer token."""
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    allowed = (request.user.is_authenticated and request.user.is_staff) or (
        bool(token) and secrets.compare_digest(given, token)
    )
    if not allowed:
        return JsonResponse({"detail": "staff or the metrics token only"}, status=401)
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)


def mail_sink(request: HttpRequest) -> HttpResponse:
    """The quick start's mail sink (sandbox only, staff only): the newest messages it received,
    each with its headers, its plain-text part and its HTML part."""
    from django.contrib.admin.views.decorators import staff_member_required

    return staff_member_required(_mail_sink_page)(request)


def _mail_sink_page(request: HttpRequest) -> HttpResponse:
    from django.shortcuts import render

    from portal.mailsink import mbox_read

    messages = []
    for m in mbox_read(settings.MAIL_SINK_MBOX):
        text, html = m.get_body(("plain",)), m.get_body(("html",))
        messages.append(
            {
                "subject": str(m["Subject"] or ""),
                "to": str(m["To"] or ""),
                "date": str(m["Date"] or ""),
                "message_id": str(m["Message-ID"] or ""),
                "unsubscribe": str(m["List-Unsubscribe"] or "").strip().strip("<>"),
                "unsubscribe_post": str(m["List-Unsubscribe-Post"] or ""),
                "text": text.get_content() if text is not None else "",
                "html": html.get_content() if html is not None else "",
            }
        )
    return render(request, "portal/mail_sink.html", {"messages": messages, "mbox": settings.MAIL_SINK_MBOX})
