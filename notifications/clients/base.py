"""The HTTP the subscriber-source clients share: retries with backoff, errors in the peer's words.

Reading a list of subscribers is a run of GETs that must all succeed; a 429 or a 5xx on page
40 of 60 should not throw the first 39 away. So, as the Wix client does, each call is retried
in place: 408, 429, 5xx (but 501) and connection errors, with exponential backoff and full
jitter, or after the pause the peer asked for (``Retry-After``). A peer that asks for a longer
pause than :data:`MAX_RETRY_AFTER` is treated as down: the error says how long it asked for
and the caller (a job) retries later. Any other 4xx is permanent: retrying will not help.

Errors never carry the credential a call sent (a peer may echo it).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from django.conf import settings

from portal.http import http_request
from sync.clients.base import excerpt, header_secrets, secrets_remove
from sync.clients.wix import retry_after_seconds

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Longer pauses than this are not slept through in a worker.
MAX_RETRY_AFTER = 60.0


class SourceClientError(Exception):
    """A call failed. ``permanent``: retrying will not help (401, 403, 404, another 4xx)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        permanent: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.permanent = permanent
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status})" if self.status else self.message


def peer_error_text(response: requests.Response) -> str:
    """The peer's own words: RFC 7807 problem details (``title``: ``detail``, as Mailchimp
    answers), else a message field, else the body, else the reason phrase."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        title, detail = body.get("title"), body.get("detail")
        if isinstance(detail, str) and detail:
            return f"{title}: {detail}" if isinstance(title, str) and title else detail
        for key in ("message", "error", "title", "errors"):
            if body.get(key):
                return excerpt(body[key])
        return excerpt(body)
    return excerpt((response.text or response.reason or "no body").strip())


class RetryingHttp:
    """One source's calls: ``request`` retries transient failures and raises SourceClientError."""

    def __init__(
        self,
        *,
        label: str,
        timeout: float | None = None,
        max_retries: int | None = None,
        backoff_base: float | None = None,
        backoff_cap: float | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.label = label
        self.timeout = timeout or settings.HTTP_TIMEOUT
        self.max_retries = settings.SOURCE_MAX_RETRIES if max_retries is None else max_retries
        self.backoff_base = settings.SOURCE_BACKOFF_BASE if backoff_base is None else backoff_base
        self.backoff_cap = settings.SOURCE_BACKOFF_CAP if backoff_cap is None else backoff_cap
        # Looked up now, not at import: tests replace time.sleep to count the pauses.
        self.sleep = sleep or time.sleep
        self.secrets: set[str] = set()
        self.calls = 0

    def scrub(self, text: str) -> str:
        return secrets_remove(text, self.secrets) if self.secrets else text

    def _backoff(self, attempt: int) -> float:
        # Full jitter (AWS architecture blog, "Exponential Backoff And Jitter").
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * (2**attempt)))  # noqa: S311

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        allow: tuple[int, ...] = (),
    ) -> requests.Response:
        """The answer (status < 300, or in ``allow``); SourceClientError once retries are spent."""
        self.secrets |= header_secrets(dict(headers))
        what = f"{self.label}: {method} {url.split('?')[0]}"
        last: SourceClientError | None = None
        for attempt in range(self.max_retries + 1):
            delay: float | None = None
            self.calls += 1
            try:
                response = http_request(
                    method, url, headers=dict(headers), params=params, json=json, timeout=self.timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = SourceClientError(self.scrub(f"{what}: {exc.__class__.__name__}: {exc}"))
            else:
                if response.status_code < 300 or response.status_code in allow:
                    return response
                message = self.scrub(f"{what}: {peer_error_text(response)}")
                if response.status_code not in RETRYABLE_STATUSES:
                    raise SourceClientError(message, status=response.status_code, permanent=True)
                delay = retry_after_seconds(response)
                last = SourceClientError(message, status=response.status_code, retry_after=delay)
                if delay is not None and delay > MAX_RETRY_AFTER:
                    raise last
            if attempt == self.max_retries:
                break
            wait = delay if delay is not None else self._backoff(attempt)
            log.warning("%s failed (%s); retry %d in %.2fs", what, last, attempt + 1, wait)
            self.sleep(wait)
        assert last is not None
        raise last

    def json(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise SourceClientError(
                f"{self.label}: the answer is not JSON ({excerpt(self.scrub(response.text[:200]))})",
                status=response.status_code,
            ) from None
