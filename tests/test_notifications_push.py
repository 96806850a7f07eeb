"""The push channel: each notification POSTed once, HMAC-signed, from the same ledger."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import responses
import time_machine
from django.core import mail

from notifications.models import Notification, PushEndpoint, SaleStartCampaign
from notifications.services.sending import campaigns_drain, notifications_drain
from sync.models import WixSite
from tests.notify_helpers import BEFORE, START, event_mirror, subscribe, td_mirror, wix_consent

pytestmark = pytest.mark.django_db
PUSH = "https://push.example.com/hooks/sale"


@pytest.fixture
def campaign(site: WixSite, monkeypatch: pytest.MonkeyPatch) -> SaleStartCampaign:
    monkeypatch.setenv("MARKETING_PUSH_SECRET", "s3cret")
    PushEndpoint.objects.create(site=site, url=PUSH, secret_env="MARKETING_PUSH_SECRET")
    with time_machine.travel(BEFORE, tick=False):
        event_mirror(site)
        td_mirror(site)
    for email in ("ana@x.com", "bo@x.com"):
        subscribe(site, email)
    return SaleStartCampaign.objects.get()


@responses.activate
def test_each_recipient_is_pushed_once_signed_beside_the_email(
    site: WixSite, campaign: SaleStartCampaign
) -> None:
    wix_consent(responses.mock, {"ana@x.com": ("SUBSCRIBED", "VALID"), "bo@x.com": ("SUBSCRIBED", "VALID")})
    responses.add(responses.POST, PUSH, status=503)
    responses.add(responses.POST, PUSH, status=200)
    responses.add(responses.POST, PUSH, status=200)
    with time_machine.travel(START, tick=False) as traveller:
        campaigns_drain(budget_seconds=1)
        assert sorted(Notification.objects.values_list("channel", flat=True)) == [
            "email",
            "email",
            "push",
            "push",
        ]
        notifications_drain(budget_seconds=1)
        assert len(mail.outbox) == 2  # the emails went on while a push waits to retry
        traveller.shift(600)
        notifications_drain(budget_seconds=1)
    pushes = [c.request for c in responses.calls if c.request.url == PUSH]
    assert len(pushes) == 3  # one 503, retried, then one each
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    request = pushes[-1]
    body = json.loads(request.body)
    assert body["type"] == "sale_started" and body["event"]["title"] == "Spring Gala"
    assert body["tickets"] == [{"name": "General Admission", "price": "25.00 EUR"}]
    stamp, signature = (part.split("=", 1)[1] for part in request.headers["X-Portal-Signature"].split(","))
    expected = hmac.new(b"s3cret", f"{stamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    assert request.headers["Idempotency-Key"] == f"sale-start-{body['id']}"
    # Sent once each: the retried one kept its idempotency key.
    keys = [r.headers["Idempotency-Key"] for r in pushes]
    assert len(set(keys)) == 2 and keys.count(keys[0]) == 2


@responses.activate
def test_a_push_refused_with_a_4xx_fails_for_good(site: WixSite, campaign: SaleStartCampaign) -> None:
    wix_consent(responses.mock, {"ana@x.com": ("SUBSCRIBED", "VALID"), "bo@x.com": ("SUBSCRIBED", "VALID")})
    responses.add(responses.POST, PUSH, status=400, body="bad payload")
    with time_machine.travel(START, tick=False):
        campaigns_drain(budget_seconds=1)
        notifications_drain(budget_seconds=1)
    failed = Notification.objects.filter(channel="push", status="failed")
    assert failed.count() == 2 and failed.first().last_error == "HTTP 400: bad payload"  # type: ignore[union-attr]
    assert Notification.objects.filter(channel="email", status="sent").count() == 2
