"""Client for the Wix REST APIs the portal reads: Events V3, Policies V2, Ticket Definitions V3.

Facts this module relies on (see ../shared/wix-api.md):
- Auth: an API key sent raw in ``Authorization`` with ``wix-site-id``, or an app's
  client-credentials token (4 h, no refresh token) sent raw in ``Authorization``.
- Query responses page with ``metadata`` (policies, ticket definitions) or
  ``pagingMetadata`` (events); both keys are read everywhere. Wix may answer any page with
  fewer items than asked for, so only ``total`` (offset) or the next cursor ends paging.
- 429, 5xx (but 501) and connection errors are retried with exponential backoff and
  full jitter, honouring ``Retry-After``; other 4xx are the caller's mistake and are not.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache

from portal.http import http_request

log = logging.getLogger(__name__)

# 408 and 429 mean "not now", 5xx mean "not us"; 501 (not implemented) never gets better.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# A peer that asks for a longer pause than this is treated as down rather than waited on.
MAX_RETRY_AFTER = 120.0
# In a worker (fail-fast), no single wait is longer than this and calls retry at most twice:
# a longer wait is handed to the job engine, which keeps it in the row's not_before.
FAIL_FAST_WAIT = 2.0
FAIL_FAST_RETRIES = 2
# Refresh an OAuth token this long before Wix says it expires, so a call never carries a dying one.
TOKEN_EXPIRY_MARGIN = 300
# A safety stop against a server that pages forever (repeating cursors, wrong totals).
MAX_PAGES = 10_000

PATH_FAMILIES: dict[str, dict[str, str]] = {
    # https://dev.wix.com/docs/rest/business-solutions/events/policies-v2/introduction
    "current": {
        "events": "/events/v3/events",
        "policies": "/events/v2/policies",
        "ticket_definitions": "/events/v3/ticket-definitions",
    },
    # The older base paths that most Wix curl examples still show.
    "legacy": {
        "events": "/events/v3/events",
        "policies": "/events-policies/v2/policies",
        "ticket_definitions": "/events-ticket-definitions/v3/ticket-definitions",
    },
}


class WixError(Exception):
    """Anything that went wrong talking to Wix. ``code`` is Wix's application error code;
    ``retry_after`` the pause (seconds) Wix asked for, when it asked for one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [f"HTTP {self.status}" if self.status else None, self.code, self.message]
        return ": ".join(p for p in parts if p)


class WixClientError(WixError):
    """A 4xx other than 408/429: retrying the same request cannot succeed."""


class WixAuthError(WixClientError):
    """401/403: wrong key or token, missing ``wix-site-id``, or a missing permission scope."""


class WixNotFound(WixClientError):
    pass


class WixConflict(WixClientError):
    """409: already exists, or the ``revision`` sent does not match."""


class WixRateLimited(WixError):
    """429 still answered after every retry."""


class WixServerError(WixError):
    """5xx still answered after every retry."""


class WixUnavailable(WixError):
    """No answer at all (connection refused, timeout) after every retry."""


class WixMalformedResponse(WixError):
    """Wix answered 2xx with a body that is not the documented shape."""


class WixIncompleteQuery(WixMalformedResponse):
    """Paging ended with fewer items than Wix said there were: the result is not the whole."""


def wix_error_from_response(response: requests.Response) -> WixError:
    """Turn a Wix error body into a typed exception carrying Wix's code and message.

    Wix's format: ``{"message", "details": {"applicationError": {"code", "description"}}}``
    or ``{"details": {"validationError": {"fieldViolations": [...]}}}``; 5xx bodies may be empty.
    """
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    message = ""
    code = None
    if isinstance(body, dict):
        message = str(body.get("message") or "")
        details: dict[str, Any] = body["details"] if isinstance(body.get("details"), dict) else {}
        app_error = details.get("applicationError")
        if isinstance(app_error, dict):
            code = app_error.get("code") or None
            message = message or str(app_error.get("description") or "")
        violations = (details.get("validationError") or {}).get("fieldViolations")
        if isinstance(violations, list) and violations:
            code = code or "VALIDATION_ERROR"
            described = "; ".join(
                f"{v.get('field', '?')}: {v.get('description', v.get('ruleName', 'invalid'))}"
                for v in violations
                if isinstance(v, dict)
            )
            message = f"{message} ({described})" if message else described
    if not message:
        # A JSON body with an empty message says nothing more than the status line does.
        text = "" if isinstance(body, dict) else response.text
        message = (text or response.reason or "no message").strip()[:500]
    if status in (401, 403):
        cls: type[WixError] = WixAuthError
    elif status == 404:
        cls = WixNotFound
    elif status == 409:
        cls = WixConflict
    elif status == 429:
        cls = WixRateLimited
    elif status >= 500:
        cls = WixServerError
    else:
        cls = WixClientError
    return cls(message, status=status, code=code)


def retry_after_seconds(response: requests.Response) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date (RFC 9110 §10.2.3)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class WixAuth:
    """How to authenticate: an API key, or an app's client credentials for one installation."""

    api_key: str = ""
    app_id: str = ""
    app_secret: str = ""
    instance_id: str = ""

    @property
    def is_oauth(self) -> bool:
        return not self.api_key


class WixClient:
    def __init__(
        self,
        *,
        site_id: str,
        auth: WixAuth,
        base_url: str | None = None,
        path_family: str = "current",
        paging: str = "offset",
        page_size: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        backoff_base: float | None = None,
        backoff_cap: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        fail_fast: bool = False,
    ) -> None:
        if path_family not in PATH_FAMILIES:
            raise ValueError(f"Unknown Wix path family {path_family!r}; use one of {sorted(PATH_FAMILIES)}.")
        if paging not in ("offset", "cursor"):
            raise ValueError(f"Unknown paging mode {paging!r}; use 'offset' or 'cursor'.")
        self.site_id = site_id
        self.auth = auth
        self.base_url = (base_url or settings.WIX_API_BASE_URL).rstrip("/")
        self.paths = PATH_FAMILIES[path_family]
        self.paging = paging
        self.page_size = page_size or settings.WIX_PAGE_SIZE
        self.timeout = timeout or settings.HTTP_TIMEOUT
        self.max_retries = settings.WIX_MAX_RETRIES if max_retries is None else max_retries
        self.backoff_base = settings.WIX_BACKOFF_BASE if backoff_base is None else backoff_base
        self.backoff_cap = settings.WIX_BACKOFF_CAP if backoff_cap is None else backoff_cap
        self.sleep = sleep
        # The longest pause this client sleeps through; a longer one raises with retry_after.
        self.max_wait = MAX_RETRY_AFTER
        if fail_fast:
            self.max_retries = min(self.max_retries, FAIL_FAST_RETRIES)
            self.backoff_cap = min(self.backoff_cap, FAIL_FAST_WAIT)
            self.max_wait = FAIL_FAST_WAIT

    # --- Events V3 -------------------------------------------------------------------
    def query_events(self, *, include_drafts: bool = False) -> Iterator[dict[str, Any]]:
        # https://dev.wix.com/docs/rest/business-solutions/events/events-v3/query-events
        extra: dict[str, Any] = {"fields": ["DETAILS"]}
        if include_drafts:
            extra["includeDrafts"] = True
        return self._query(self.paths["events"] + "/query", "events", filter_=None, extra=extra)

    def get_event(self, event_id: str) -> dict[str, Any]:
        # https://dev.wix.com/docs/rest/business-solutions/events/events-v3/get-event
        data = self._request("GET", f"{self.paths['events']}/{event_id}", params={"fields": ["DETAILS"]})
        return self._entity(data, "event")

    # --- Policies V2 -----------------------------------------------------------------
    def query_policies(self, event_id: str) -> Iterator[dict[str, Any]]:
        # https://dev.wix.com/docs/rest/business-solutions/events/policies-v2/query-policies
        return self._query(
            self.paths["policies"] + "/query", "policies", filter_={"eventId": {"$eq": event_id}}
        )

    def get_policy(self, policy_id: str) -> dict[str, Any]:
        # https://dev.wix.com/docs/rest/business-solutions/events/policies-v2/get-policy
        return self._entity(self._request("GET", f"{self.paths['policies']}/{policy_id}"), "policy")

    # --- Ticket Definitions V3 -------------------------------------------------------
    def query_ticket_definitions(self, event_id: str) -> Iterator[dict[str, Any]]:
        # https://dev.wix.com/docs/rest/business-solutions/events/ticket-definitions-v3/query-ticket-definitions
        # `fields` is a sibling of `query`; without SALES_DETAILS the counts are not returned.
        return self._query(
            self.paths["ticket_definitions"] + "/query",
            "ticketDefinitions",
            filter_={"eventId": {"$eq": event_id}},
            extra={"fields": ["SALES_DETAILS"]},
        )

    def get_ticket_definition(self, ticket_definition_id: str) -> dict[str, Any]:
        # https://dev.wix.com/docs/rest/business-solutions/events/ticket-definitions-v3/get-ticket-definition
        data = self._request(
            "GET",
            f"{self.paths['ticket_definitions']}/{ticket_definition_id}",
            params={"fields": ["SALES_DETAILS"]},
        )
        return self._entity(data, "ticketDefinition")

    # --- Email Subscriptions (wix-api.md §4a) ------------------------------------------
    def query_email_subscriptions(self, emails: list[str], *, batch: int = 100) -> Iterator[dict[str, Any]]:
        """The subscriptions Wix holds for these addresses (absent ones Wix has never seen).

        Wix filters only by ``email $in``: it cannot list everyone subscribed, so the caller
        asks about the addresses it has, ``batch`` at a time, each batch paged to its total.
        """
        # https://dev.wix.com/docs/rest/crm/communication/email-subscriptions/query-email-subscriptions
        path = "/email-marketing/v1/email-subscriptions/query"
        for start in range(0, len(emails), batch):
            chunk = emails[start : start + batch]
            offset = 0
            for _ in range(MAX_PAGES):
                data = self._request(
                    "POST",
                    path,
                    json={"filter": {"email": {"$in": chunk}}, "paging": {"limit": batch, "offset": offset}},
                )
                items = data.get("subscriptions") or []
                if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                    raise WixMalformedResponse("query email subscriptions: 'subscriptions' is not a list")
                yield from items
                offset += len(items)
                total = (data.get("metadata") or {}).get("total")
                if not items or not isinstance(total, int) or offset >= total:
                    break

    def upsert_email_subscription(self, *, email: str, status: str) -> dict[str, Any]:
        """Set an address's subscription status (an unsubscribe written back: ``UNSUBSCRIBED``)."""
        # https://dev.wix.com/docs/rest/crm/communication/email-subscriptions/upsert-email-subscription
        data = self._request(
            "POST",
            "/email-marketing/v1/email-subscriptions",
            json={"subscription": {"email": email, "subscriptionStatus": status}},
        )
        subscription = data.get("subscription")
        if not isinstance(subscription, dict):
            raise WixMalformedResponse("upsert email subscription: response has no 'subscription' object")
        return subscription

    # --- paging ----------------------------------------------------------------------
    def _query(
        self,
        path: str,
        items_key: str,
        *,
        filter_: dict[str, Any] | None,
        extra: dict[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every item of a query, page by page, whatever page size Wix chooses to answer with.

        Wix may return fewer items than the limit asked for on any page, so a short page
        never ends paging: offset paging goes on until ``offset`` reaches ``total`` (or, with
        no total, until an empty page); cursor paging until there is no next cursor. When
        Wix's answers contradict each other (a total that says more after an empty page, a
        cursor seen before, fewer items than a total) the query raises
        :class:`WixIncompleteQuery` naming itself, so that a caller never takes a partial
        result for the whole.
        """
        base_query: dict[str, Any] = {"sort": [{"fieldName": "createdDate", "order": "ASC"}]}
        if filter_:
            base_query["filter"] = filter_
        extra = extra or {}
        what = f"query {items_key}" + (f" {json.dumps(filter_, sort_keys=True)}" if filter_ else "")
        fetched = 0
        total: int | None = None
        cursor: str | None = None
        seen_cursors: set[str] = set()
        for _ in range(MAX_PAGES):
            if self.paging == "cursor":
                # With a cursor, Wix wants no filter or sort: the cursor carries them.
                query = (
                    {"cursorPaging": {"limit": self.page_size, "cursor": cursor}}
                    if cursor
                    else {**base_query, "cursorPaging": {"limit": self.page_size}}
                )
            else:
                query = {**base_query, "paging": {"limit": self.page_size, "offset": fetched}}
            data = self._request("POST", path, json={"query": query, **extra})
            items = self._items(data, items_key)
            meta = data.get("metadata") or data.get("pagingMetadata") or {}
            if not isinstance(meta, dict):
                raise WixMalformedResponse(f"{what}: 'metadata' is not an object")
            if isinstance(meta.get("total"), int) and not meta.get("tooManyToCount"):
                total = meta["total"]
            yield from items
            fetched += len(items)
            if self.paging == "cursor":
                cursor = (meta.get("cursors") or {}).get("next") or None
                if not cursor:
                    break
                if cursor in seen_cursors:
                    raise WixIncompleteQuery(f"{what}: Wix returned the same next cursor twice")
                seen_cursors.add(cursor)
            elif total is not None:
                if fetched >= total:
                    break
                if not items:
                    raise WixIncompleteQuery(
                        f"{what}: Wix reported {total} in all but returned an empty page at offset {fetched}"
                    )
            elif not items:
                break  # no total to go by (tooManyToCount): an empty page is the end
        else:
            raise WixIncompleteQuery(f"{what} did not finish after {MAX_PAGES} pages")
        if total is not None and fetched < total:
            raise WixIncompleteQuery(f"{what}: Wix reported {total} in all but returned {fetched}")

    @staticmethod
    def _items(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
        items = data.get(key)
        if items is None:
            # Wix omits an empty list entirely in some responses.
            if any(k in data for k in ("metadata", "pagingMetadata")):
                return []
            raise WixMalformedResponse(f"query response has no '{key}' field")
        if not isinstance(items, list):
            raise WixMalformedResponse(f"query response field '{key}' is not a list")
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
                raise WixMalformedResponse(f"query response '{key}[{index}].id' is missing or not a string")
        return items

    @staticmethod
    def _entity(data: dict[str, Any], key: str) -> dict[str, Any]:
        entity = data.get(key)
        if not isinstance(entity, dict):
            raise WixMalformedResponse(f"response has no '{key}' object")
        if not isinstance(entity.get("id"), str) or not entity["id"]:
            raise WixMalformedResponse(f"response '{key}.id' is missing or not a string")
        return entity

    # --- transport -------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        token = self._oauth_token() if self.auth.is_oauth else self.auth.api_key
        # https://dev.wix.com/docs/rest/articles/getting-started/api-keys: the key goes raw, no "Bearer".
        return {"Authorization": token, "wix-site-id": self.site_id, "Accept": "application/json"}

    def _token_cache_key(self) -> str:
        return f"wix-oauth-token:{self.auth.app_id}:{self.auth.instance_id}"

    def _oauth_token(self) -> str:
        key = self._token_cache_key()
        token = cache.get(key)
        if token:
            return token
        # https://dev.wix.com/docs/rest/app-management/oauth-2/create-access-token (client credentials)
        data = self._send(
            "POST",
            "/oauth2/token",
            headers={"Accept": "application/json"},
            json={
                "grant_type": "client_credentials",
                "client_id": self.auth.app_id,
                "client_secret": self.auth.app_secret,
                "instance_id": self.auth.instance_id,
            },
        )
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise WixMalformedResponse("OAuth token response has no 'access_token'")
        expires_in = data.get("expires_in", 14400)
        ttl = int(expires_in) - TOKEN_EXPIRY_MARGIN if isinstance(expires_in, int | float) else 3600
        cache.set(key, token, timeout=max(ttl, 30))
        return token

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return self._send(method, path, headers=self._headers(), **kwargs)
        except WixAuthError:
            if not self.auth.is_oauth:
                raise
            # A cached token can be revoked before it expires: get a fresh one once.
            cache.delete(self._token_cache_key())
            return self._send(method, path, headers=self._headers(), **kwargs)

    def _backoff(self, attempt: int) -> float:
        # Full jitter (AWS architecture blog, "Exponential Backoff And Jitter").
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * (2**attempt)))  # noqa: S311

    def _send(self, method: str, path: str, *, headers: dict[str, str], **kwargs: Any) -> dict[str, Any]:
        url = self.base_url + path
        last_error: WixError | None = None
        for attempt in range(self.max_retries + 1):
            delay: float | None = None
            try:
                response = http_request(method, url, headers=headers, timeout=self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_error = WixUnavailable(f"{method} {path}: {exc.__class__.__name__}: {exc}")
            else:
                if response.status_code < 300:
                    return self._json(response, method, path)
                error = wix_error_from_response(response)
                if response.status_code not in RETRYABLE_STATUSES:
                    raise error
                last_error = error
                delay = retry_after_seconds(response)
                error.retry_after = delay
                if delay is not None and delay > self.max_wait:
                    raise error
            if attempt == self.max_retries:
                break
            wait = delay if delay is not None else self._backoff(attempt)
            log.warning(
                "Wix %s %s failed (%s); retry %d in %.2fs", method, path, last_error, attempt + 1, wait
            )
            self.sleep(wait)
        assert last_error is not None
        raise last_error

    @staticmethod
    def _json(response: requests.Response, method: str, path: str) -> dict[str, Any]:
        if not response.content:
            return {}
        try:
            data = response.json()
        except ValueError as exc:
            raise WixMalformedResponse(
                f"{method} {path}: response is not JSON", status=response.status_code
            ) from exc
        if not isinstance(data, dict):
            raise WixMalformedResponse(
                f"{method} {path}: response is not a JSON object", status=response.status_code
            )
        return data
