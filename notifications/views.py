"""The one-click unsubscribe (RFC 8058): no login, no cookie, a signed token in the URL."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from notifications.services.emails import unsubscribe_token_read
from notifications.services.unsubscribe import unsubscribe_apply
from sync.models import WixSite


@csrf_exempt  # mail clients POST without a cookie (RFC 8058); the signed token is the proof
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    read = unsubscribe_token_read(token)
    site = WixSite.objects.filter(pk=read[0]).first() if read else None
    if read is None or site is None:
        return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=400)
    if request.method == "POST":
        unsubscribe_apply(site=site, email=read[1])
        return render(request, "notifications/unsubscribe.html", {"done": True, "email": read[1]})
    return render(request, "notifications/unsubscribe.html", {"email": read[1]})
