"""Who is calling: the client address that rate limits count against."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _valid(address: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((address or "").strip()))
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str | None:
    """The socket's address, or with ``TRUSTED_PROXY_COUNT`` proxies in front the address the
    outermost trusted proxy saw; None when there is none (a request made in code).

    Each proxy appends the address it received the request from to X-Forwarded-For, so only the
    last ``TRUSTED_PROXY_COUNT`` entries were written by proxies we run; anything to their left
    is whatever the client chose to send, and trusting it would let one client spread its
    attempts over invented addresses. Anything that is not an IP address is ignored (django-axes
    stores the address in an IP column).
    """
    remote = _valid(request.META.get("REMOTE_ADDR"))
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    if not hops:
        return remote
    return _valid(hops[-count] if len(hops) >= count else hops[0]) or remote
