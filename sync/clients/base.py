"""The recorded HTTP every ticketing-system client calls through, and what a push carries.

A ticketing client turns "create/update/delete this payload" into the system's HTTP calls
(HTTP only: what to send was decided from the database by the adapter in
``sync.services.adapters``). It makes them through :class:`RecordedHttp`, which hands each
call's record (request, answer, duration) to a recorder that stores it as a ``SyncLog``
attempt row (the unit of work itself was written before any request), and turns failures
into :class:`ExternalError` marked retryable (timeouts, 408, 429, 5xx) or permanent (any
other 4xx).

Every text a record keeps (request, answer, error, note) has the credential that call sent
removed first: a target that echoes its token must not put it where staff who may only
look can read it.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, quote_plus

import requests

from portal.http import http_request

EXCERPT_CHARS = 2000
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
SECRET_REMOVED = "[secret removed]"  # noqa: S105 - what replaces a credential in stored text
# Headers the adapters send that carry no credential; every other header value is one.
_PLAIN_HEADERS = frozenset({"accept", "content-type", "idempotency-key", "user-agent"})
# Shorter strings are not replaced: they would garble ordinary text, and no real credential is this short.
_MIN_SECRET_CHARS = 4


class ExternalError(Exception):
    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        http_status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.http_status = http_status
        # Machine-readable facts the admin offers fixes for (kept on the dead letter).
        self.details = details or {}

    def __str__(self) -> str:
        return f"HTTP {self.http_status}: {self.message}" if self.http_status else self.message


def excerpt(value: Any, clean: Callable[[str], str] | None = None) -> str:
    """At most EXCERPT_CHARS of ``value`` as text; ``clean`` runs before the cut, so that a
    secret straddling it is still removed whole."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if clean is not None:
        text = clean(text)
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + f"… ({len(text)} chars)"


def header_secrets(headers: dict[str, str]) -> set[str]:
    """The credentials in a call's headers, as sent and as the forms a target may echo them in."""
    found: set[str] = set()
    for name, value in headers.items():
        if name.lower() in _PLAIN_HEADERS or not value:
            continue
        found.add(value)
        scheme, _, token = value.partition(" ")
        if token and scheme.lower() in ("bearer", "token", "basic"):
            found.add(token)
            if scheme.lower() == "basic":
                try:
                    pair = base64.b64decode(token, validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    continue
                found |= {pair, pair.partition(":")[2]}
    variants = set()
    for secret in found:
        variants |= {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote_plus(secret)}
    return {v for v in variants if len(v) >= _MIN_SECRET_CHARS}


def secrets_remove(text: str, secrets: Iterable[str]) -> str:
    # Longest first: a token inside "Bearer <token>" goes with its scheme, not leaving "Bearer ".
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, SECRET_REMOVED)
    return text


@dataclass
class CallRecord:
    """What one HTTP call did; the push service stores it as a SyncLog row."""

    action: str
    request: str
    http_status: int | None = None
    response: str = ""
    duration_ms: int | None = None
    error: str = ""
    permanent: bool | None = None
    note: str = ""


class CallRecorder(Protocol):
    """Told of each call before the request goes out (the push path writes its "sending" row
    then) and when it ends."""

    def started(self, record: CallRecord) -> None: ...

    def finished(self, record: CallRecord) -> None: ...


class CallList:
    """A recorder that only keeps the records (calls made outside a push: checks, staff fixes)."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    def started(self, record: CallRecord) -> None:
        pass

    def finished(self, record: CallRecord) -> None:
        self.records.append(record)


class RecordedHttp:
    def __init__(self, recorder: CallRecorder, *, timeout: float) -> None:
        self.recorder = recorder
        self.timeout = timeout
        self.last: CallRecord | None = None
        # Every credential any call through this object sent, for scrubbing later text too.
        self.secrets: set[str] = set()

    def scrub(self, text: str) -> str:
        """``text`` without any credential these calls sent (for errors stored elsewhere)."""
        return secrets_remove(text, self.secrets) if self.secrets and text else text

    def request(
        self,
        action: str,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        allow: tuple[int, ...] = (),
    ) -> requests.Response:
        """Raises ExternalError for an answer of 300 or more, unless its status is in ``allow``."""
        headers = headers or {}
        self.secrets |= header_secrets(headers)
        body = f"\n{excerpt(json_body, self.scrub)}" if json_body else ""
        record = CallRecord(action=action, request=self.scrub(f"{method} {url}") + body)
        self.last = record
        self.recorder.started(record)
        start = time.monotonic()
        try:
            response = http_request(method, url, json=json_body, headers=headers, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            record.duration_ms = int((time.monotonic() - start) * 1000)
            record.error, record.permanent = self.scrub(f"{exc.__class__.__name__}: {exc}"), False
            self.recorder.finished(record)
            raise ExternalError(record.error, permanent=False) from exc
        record.duration_ms = int((time.monotonic() - start) * 1000)
        record.http_status = response.status_code
        record.response = excerpt(response.text, self.scrub)
        if response.status_code >= 300 and response.status_code not in allow:
            record.permanent = response.status_code not in RETRYABLE_STATUSES
            record.error = _error_text(response, self.scrub)
            self.recorder.finished(record)
            raise ExternalError(record.error, permanent=record.permanent, http_status=response.status_code)
        self.recorder.finished(record)
        return response

    def note(self, text: str) -> None:
        """Say on the latest call's log row what the adapter concluded from it."""
        if self.last is not None:
            self.last.note = f"{self.last.note}\n{self.scrub(text)}".strip()


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _error_text(response: requests.Response, clean: Callable[[str], str]) -> str:
    """The target's own words: its message fields when JSON, else the body, else the reason."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "errors"):
            if body.get(key):
                return excerpt(body[key], clean)
        if body and all(_is_messages(v) for v in body.values()):
            # Django REST framework's validation errors (pretix): {"field": ["message", …]}
            return excerpt("; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in body.items()), clean)
        return excerpt(body, clean)
    return excerpt((response.text or response.reason or "no body").strip(), clean)


@dataclass(frozen=True)
class LearnedLink:
    """A link the adapter made or had to change while pushing another entity.

    ``reason`` set means the entity's record was gone and was recreated under a new id: the
    push service replaces the old id and leaves a LinkRepair row giving the reason.
    """

    entity_type: str
    wix_id: str
    external_id: str
    reason: str = ""
    payload_hash: str = ""  # what was sent, when the record was made with its full payload
    payload: dict[str, Any] | None = None


@dataclass
class PushContext:
    """What an adapter's plan read from the database for one push, and what sending learnt.

    The push path reads only the typed fields; ``facts`` belong to the adapter (its plan
    leaves there what its sending needs) and are never read by generic code.
    """

    facts: dict[str, Any] = field(default_factory=dict)
    # Fields sent when the record is created and never on an update (pretix: an event's
    # currency); the dry run shows them with a create.
    create_only: dict[str, Any] = field(default_factory=dict)
    # Links of other entities whose state this push also sends (pretix: sibling policies are
    # one confirm-text list): they are up to date once it succeeds.
    sent_together: list[int] = field(default_factory=list)
    # Wix ids of the same type to plan again after this push: their shared state may have
    # moved while it was in flight.
    recheck: list[str] = field(default_factory=list)
    learned: list[LearnedLink] = field(default_factory=list)
    # (entity type, Wix id) → what the system decided for that record (pretix: an event's
    # currency); stored on its link's ``external_facts``.
    learned_facts: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def learn(
        self,
        entity_type: str,
        wix_id: str,
        external_id: str,
        reason: str = "",
        payload_hash: str = "",
        payload: dict[str, Any] | None = None,
    ) -> None:
        self.learned.append(LearnedLink(str(entity_type), wix_id, external_id, reason, payload_hash, payload))

    def learn_facts(self, entity_type: str, wix_id: str, **facts: Any) -> None:
        self.learned_facts.setdefault((str(entity_type), wix_id), {}).update(facts)
