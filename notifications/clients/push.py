"""The push channel's one call: POST a notification, signed with HMAC-SHA256.

The signature covers the timestamp and the exact body (``X-Portal-Signature: t=<unix>,v1=<hex>``,
the scheme of Stripe's and Standard Webhooks' signatures), so a receiver can refuse a
tampered or replayed body; ``Idempotency-Key`` is the ledger row's, the same on every retry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import requests

from portal.http import http_request


def push_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def push_post(*, url: str, secret: str, payload: dict[str, Any], idempotency_key: str) -> requests.Response:
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    timestamp = int(time.time())
    return http_request(
        "POST",
        url,
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Portal-Signature": push_signature(secret=secret, timestamp=timestamp, body=body),
            "Idempotency-Key": idempotency_key,
        },
    )
