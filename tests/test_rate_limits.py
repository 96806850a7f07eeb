"""Bad input: deep webhooks, floods of refused webhooks, failed logins (issue 10, point 6)."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext

from portal.client import client_address
from sync.models import WebhookDelivery, WixSite
from sync.services.webhook_limits import webhook_rejections_flush
from sync.services.webhooks import MAX_JSON_DEPTH
from tests.test_webhooks import KEY, POLICY, PUBLIC, URL, _key, envelope, post, sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook_site(site: WixSite) -> WixSite:
    site.webhook_public_keys = PUBLIC
    site.save()
    return site


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5000])
@pytest.mark.parametrize("where", ["data", "entity", "identity"])
def test_a_signed_deeply_nested_payload_is_400_and_kept_as_malformed(
    client: Client,
    hook_site: WixSite,
    depth: int,
    where: str,
) -> None:
    data = envelope("updated", POLICY)
    if where == "data":
        text = json.dumps(data)[:-1] + f', "deep": {_nested(depth)}}}'
        body = sign(text, "wix.events.v2.policy_updated")
    elif where == "entity":
        data["updatedEvent"] = {"currentEntityAsJson": json.dumps(POLICY)[:-1] + f', "x": {_nested(depth)}}}'}
        body = sign(data, "wix.events.v2.policy_updated")
    else:  # identity is a JSON string beside data: make it the deep one
        outer = {
            "eventType": "wix.events.v2.policy_updated",
            "instanceId": "inst-1",
            "data": json.dumps(data),
            "identity": _nested(depth),
        }
        now = int(time.time())
        body = jwt.encode(
            {"data": json.dumps(outer), "iat": now, "exp": now + 60}, KEY, algorithm="RS256"
        ).encode()
    response = client.post(URL, body, content_type="text/plain")
    assert response.status_code == 400
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "malformed" and f"deeper than {MAX_JSON_DEPTH} levels" in delivery.last_error


def _forged() -> bytes:
    return sign(envelope("updated", POLICY), "wix.events.v2.policy_updated", key=_key()[0])


@override_settings(WEBHOOK_REJECT_LIMIT=5)
def test_a_flood_of_refused_webhooks_writes_nothing_and_is_cut_off_per_address(
    hook_site: WixSite,
) -> None:
    forged = _forged()
    attacker = Client(REMOTE_ADDR="127.0.0.9")
    with CaptureQueriesContext(connection) as queries:
        codes = [post(attacker, forged) for _ in range(5)] + [post(attacker, b"not a jwt") for _ in range(3)]
    assert codes == [401] * 5 + [429] * 3
    writes = [
        q["sql"]
        for q in queries
        if not q["sql"].lstrip().upper().startswith(("SELECT", "SAVEPOINT", "RELEASE"))
    ]
    assert writes == []
    assert not WebhookDelivery.objects.exists()
    # Another address is not affected; a signed delivery from it is taken as usual.
    assert (
        post(
            Client(REMOTE_ADDR="127.0.0.10"),
            sign(envelope("updated", POLICY), "wix.events.v2.policy_updated"),
        )
        == 200
    )
    # The site's count reaches its row when flushed (by the dispatcher or the site admin).
    hook_site.refresh_from_db()
    assert hook_site.webhooks_rejected == 0
    assert webhook_rejections_flush() == 5
    hook_site.refresh_from_db()
    assert hook_site.webhooks_rejected == 5 and hook_site.webhook_last_rejected_at is not None
    assert webhook_rejections_flush() == 0


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_behind_one_proxy_the_client_is_the_address_the_proxy_saw() -> None:
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 127.0.0.7")
    assert client_address(request) == "127.0.0.7"  # "1.2.3.4" is whatever the client sent
    with override_settings(TRUSTED_PROXY_COUNT=0):
        assert client_address(request) == "127.0.0.2"
    request.META["HTTP_X_FORWARDED_FOR"] = "not-an-address"
    assert client_address(request) == "127.0.0.2"


@override_settings(AXES_FAILURE_LIMIT=3)
def test_failed_admin_logins_lock_the_address_out(admin_user: User) -> None:
    attacker, other = Client(REMOTE_ADDR="127.0.0.20"), Client(REMOTE_ADDR="127.0.0.21")

    def login(client: Client, password: str) -> int:
        return client.post(
            "/admin/login/?next=/admin/", {"username": "boss", "password": password}
        ).status_code

    assert [login(attacker, "wrong") for _ in range(3)] == [200, 200, 429]
    assert login(attacker, "pw-boss-123") == 429  # even the right password, until the lockout ends
    assert login(other, "pw-boss-123") == 302
