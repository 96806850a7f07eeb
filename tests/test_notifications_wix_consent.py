"""Wix Email Subscriptions: the client's calls, and the sandbox that serves them and the webhook."""

from __future__ import annotations

import json

import pytest
import responses
from django.test import Client

from sync.clients.wix import WixClient
from sync.sandbox.models import SandboxEmailSubscription, SandboxWebhook
from sync.sandbox.services import SANDBOX_SITE_ID
from sync.sandbox.subscriptions import subscriptions_demo_seed
from tests.conftest import WIX

QUERY = f"{WIX}/email-marketing/v1/email-subscriptions/query"
HEADERS = {"HTTP_AUTHORIZATION": "sandbox-api-key", "HTTP_WIX_SITE_ID": SANDBOX_SITE_ID}


@responses.activate
def test_the_client_pages_each_batch_to_its_total(wix: WixClient) -> None:
    def sub(email: str) -> dict:
        return {"id": email, "email": email, "subscriptionStatus": "SUBSCRIBED"}

    meta = {"total": 3, "tooManyToCount": False}
    responses.add(
        responses.POST, QUERY, json={"subscriptions": [sub("a@x.com"), sub("b@x.com")], "metadata": meta}
    )
    responses.add(responses.POST, QUERY, json={"subscriptions": [sub("c@x.com")], "metadata": meta})
    responses.add(responses.POST, QUERY, json={"metadata": {"total": 0}})  # a batch Wix knows nobody of
    found = list(wix.query_email_subscriptions(["a@x.com", "b@x.com", "c@x.com", "d@x.com"], batch=3))
    assert [s["email"] for s in found] == ["a@x.com", "b@x.com", "c@x.com"]
    bodies = [json.loads(c.request.body) for c in responses.calls]
    assert [b["paging"] for b in bodies] == [
        {"limit": 3, "offset": 0},
        {"limit": 3, "offset": 2},
        {"limit": 3, "offset": 0},
    ]
    assert bodies[2]["filter"] == {"email": {"$in": ["d@x.com"]}}


@responses.activate
def test_the_client_upserts_an_unsubscribe(wix: WixClient) -> None:
    responses.add(
        responses.POST,
        f"{WIX}/email-marketing/v1/email-subscriptions",
        json={"subscription": {"email": "a@x.com", "subscriptionStatus": "UNSUBSCRIBED"}},
    )
    assert wix.upsert_email_subscription(email="a@x.com", status="UNSUBSCRIBED")["subscriptionStatus"] == (
        "UNSUBSCRIBED"
    )
    assert json.loads(responses.calls[0].request.body) == {
        "subscription": {"email": "a@x.com", "subscriptionStatus": "UNSUBSCRIBED"}
    }


@pytest.mark.django_db
def test_the_sandbox_answers_email_in_queries_and_sends_the_changed_webhook(client: Client) -> None:
    subscriptions_demo_seed()
    statuses = {s.subscription_status for s in SandboxEmailSubscription.objects.all()}
    deliverability = {s.deliverability_status for s in SandboxEmailSubscription.objects.all()}
    assert {"SUBSCRIBED", "NOT_SET", "UNSUBSCRIBED"} <= statuses and {
        "BOUNCED",
        "SPAM_COMPLAINT",
    } <= deliverability
    url = "/sandbox/wix/email-marketing/v1/email-subscriptions/query"
    body = {"filter": {"email": {"$in": ["ANA@example.com", "nobody@example.com"]}}, "paging": {"limit": 10}}
    answer = client.post(url, body, content_type="application/json", **HEADERS).json()
    assert [s["email"] for s in answer["subscriptions"]] == ["ana@example.com"]
    assert answer["metadata"]["total"] == 1
    listing = client.post(url, {"filter": {}}, content_type="application/json", **HEADERS)
    assert listing.status_code == 400  # Wix cannot list everyone subscribed
    assert client.post(url, body, content_type="application/json").status_code == 401
    assert not SandboxWebhook.objects.exists()
    upsert = client.post(
        "/sandbox/wix/email-marketing/v1/email-subscriptions",
        {"subscription": {"email": "ana@example.com", "subscriptionStatus": "UNSUBSCRIBED"}},
        content_type="application/json",
        **HEADERS,
    )
    assert upsert.json()["subscription"]["subscriptionStatus"] == "UNSUBSCRIBED"
    hook = SandboxWebhook.objects.get()
    assert hook.event_type == "com.wixpress.emailsubscriptions.v1.EmailSubscriptionChanged"
    assert hook.envelope["entityFqdn"] == "wix.emailsubscriptions.v1.emailsubscription"
    assert hook.envelope["actionEvent"]["body"]["subscription"]["email"] == "ana@example.com"


def test_an_app_cannot_take_over_one_of_syncs_own_routes() -> None:
    from sync.services.webhook_handlers import route_register
    from sync.services.webhooks import webhook_route

    with pytest.raises(ValueError, match="sync's own"):
        route_register(route="policy_updated", handler=lambda site, data: "x", event_types=["x.y"])
    # notifications' route is known by its event type and, whatever the type, by its fqdn.
    assert webhook_route("com.wixpress.emailsubscriptions.v1.EmailSubscriptionChanged", {}) == (
        "email_subscription_changed"
    )
    assert webhook_route("anything", {"entityFqdn": "wix.emailsubscriptions.v1.emailsubscription"}) == (
        "email_subscription_changed"
    )
