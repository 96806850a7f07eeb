"""The optional push of each counter change to the site's Velo HTTP function.

``POST https://<site>/_functions/<name>`` with the counter's JSON; the function checks
``X-Counter-Signature: sha256=<hex>``, the HMAC-SHA256 of ``<X-Counter-Timestamp>.<body>``
under the secret both sides hold (README: the ready-to-paste ``http-functions.js``). A push is
a job row (``CounterPush``): one waiting per counter carries the newest value, retried on
:data:`RETRY` while the site is down; 4xx other than 408/429 is final (staff look).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import requests
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.models import CounterPush, TicketCounter
from portal import jobs
from portal.http import http_request
from portal.secrets import MissingSecret, secret_read

log = logging.getLogger(__name__)

DRAIN_TASK = "notifications.tasks.counter_push_drain_task"
RETRY = jobs.RetrySchedule((5, 30, 120, 600, 1800))
DRAIN_BUDGET_SECONDS = 30.0
SIGNATURE_HEADER = "X-Counter-Signature"
TIMESTAMP_HEADER = "X-Counter-Timestamp"


def velo_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def velo_push_enqueue(*, counter: TicketCounter, payload: dict[str, Any]) -> None:
    """Queue the newest value: replace the waiting push's payload, or add one."""
    waiting = CounterPush.objects.filter(counter=counter, status=CounterPush.Status.WAITING)
    if not waiting.update(payload=payload):
        try:
            with transaction.atomic():
                CounterPush.objects.create(counter=counter, payload=payload)
        except IntegrityError:  # another change queued one meanwhile: carry the newest value
            waiting.update(payload=payload)
    jobs.wake(DRAIN_TASK)


def _finish(pk: int, status: str, *, error: str = "", response_status: int | None = None) -> None:
    jobs.finish(
        CounterPush,
        pk,
        status=status,
        error=error,
        response_status=response_status,
        finished_at=timezone.now(),
    )


def velo_push_execute(push_id: int) -> str:
    """POST one claimed push; returns "sent", "retry-scheduled" or "failed"."""
    push = CounterPush.objects.select_related("counter").get(pk=push_id)
    counter = push.counter
    try:
        secret = secret_read(counter.velo_secret_env, prefix="COUNTER_")
    except MissingSecret as exc:
        _finish(push.pk, CounterPush.Status.FAILED, error=str(exc))
        return "failed"
    if not counter.velo_url:
        _finish(push.pk, CounterPush.Status.FAILED, error="the counter has no Velo URL any more")
        return "failed"
    body = json.dumps(push.payload, separators=(",", ":")).encode()
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: velo_signature(secret=secret, timestamp=stamp, body=body),
    }
    try:
        # Velo HTTP functions: https://dev.wix.com/docs/velo/apis/wix-http-functions/introduction
        response = http_request("POST", counter.velo_url, data=body, headers=headers)
    except requests.RequestException as exc:
        return _retry(push, f"{exc.__class__.__name__}: {exc}")
    if response.ok:
        _finish(push.pk, CounterPush.Status.SENT, response_status=response.status_code)
        return "sent"
    error = f"HTTP {response.status_code}: {response.text[:300]}"
    if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
        _finish(push.pk, CounterPush.Status.FAILED, error=error, response_status=response.status_code)
        return "failed"
    return _retry(push, error, response.status_code)


def _retry(push: CounterPush, error: str, response_status: int | None = None) -> str:
    if jobs.defer(CounterPush, push, error=error, schedule=RETRY, response_status=response_status):
        return "retry-scheduled"
    _finish(push.pk, CounterPush.Status.FAILED, error=error, response_status=response_status)
    return "failed"


def velo_push_drain(*, budget_seconds: float = DRAIN_BUDGET_SECONDS, woken_at: float | None = None) -> int:
    return jobs.drain(
        CounterPush,
        velo_push_execute,
        budget_seconds=budget_seconds,
        order_by=("not_before", "pk"),
        woken_at=woken_at,
    )
