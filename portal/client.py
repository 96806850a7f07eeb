"""Who is calling: the client address that rate limits count against."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The socket's address, or with ``TRUSTED_PROXY_COUNT`` proxies in front the address the
    outermost trusted proxy saw.

    Each proxy appends the address it received the request from to X-Forwarded-For, so only the
    last ``TRUSTED_PROXY_COUNT`` entries were written by proxies we run; anything to their left
    is whatever the client chose to send, and trusting it would let one client spread its
    attempts over invented addresses.
    """
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    if len(hops) < count:
        return hops[0] if hops else remote
    return hops[-count]
