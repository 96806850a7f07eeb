"""The one way out to HTTP.

Every outbound call gets a default timeout (a hung peer must not hang a worker), no
redirects (a redirect could carry our credentials to another host) and a fixed
User-Agent so that peers can tell us apart in their logs. One ``requests.Session`` per
thread keeps connections alive across calls.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from django.conf import settings

_local = threading.local()


def http_session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.headers["User-Agent"] = settings.HTTP_USER_AGENT
        _local.session = session
    return session


def http_request(method: str, url: str, *, timeout: float | None = None, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("allow_redirects", False)
    return http_session().request(method, url, timeout=timeout or settings.HTTP_TIMEOUT, **kwargs)
