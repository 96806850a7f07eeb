"""The Wix sandbox: its API speaks Wix's shapes, and a backfill against it runs end to end."""

from __future__ import annotations

import json

import jwt
import pytest
import responses
from django.test import Client

from sync.clients.wix import WixAuth, WixClient, WixNotFound
from sync.models import BackfillRun, Event, Policy, TicketDefinition, WixSite
from sync.sandbox.demo import demo_entities, demo_id, sandbox_seed
from sync.sandbox.models import SandboxFault, SandboxWebhook
from sync.sandbox.services import (
    SANDBOX_INSTANCE_ID,
    SANDBOX_SITE_ID,
    Kind,
    entity_delete,
    entity_update,
    order_place,
    sandbox_key,
    sandbox_webhook_send,
)
from sync.services.backfill import backfill_execute, backfill_start

HEADERS = {"HTTP_AUTHORIZATION": "sandbox-api-key", "HTTP_WIX_SITE_ID": SANDBOX_SITE_ID}


@pytest.fixture
def sandbox_site(live_server: object, settings: object) -> WixSite:
    settings.WIX_BACKOFF_BASE = 0.001  # type: ignore[attr-defined]
    site = sandbox_seed()
    site.api_base_url = f"{live_server.url}/sandbox/wix"  # type: ignore[attr-defined]
    site.save()
    return site


def _backfill(site: WixSite) -> BackfillRun:
    run, _ = backfill_start(site=site, trigger=BackfillRun.Trigger.COMMAND)
    backfill_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def _counts() -> tuple[int, int, int]:
    return Event.objects.count(), Policy.objects.count(), TicketDefinition.objects.count()


@pytest.mark.django_db(transaction=True)
def test_backfill_against_the_sandbox_mirrors_everything_and_a_second_run_reports_zero_changes(
    sandbox_site: WixSite,
) -> None:
    demo = demo_entities(__import__("django.utils.timezone").utils.timezone.now())
    expected = tuple(
        sum(1 for kind, _ in demo if kind == k) for k in (Kind.EVENT, Kind.POLICY, Kind.TICKET_DEFINITION)
    )
    first = _backfill(sandbox_site)
    assert first.status == "succeeded", first.errors
    assert _counts() == expected == (3, 6, 8)
    assert first.created == sum(expected) and first.fetched == sum(expected)
    second = _backfill(sandbox_site)
    assert (second.status, second.created, second.updated, second.unchanged) == (
        "succeeded",
        0,
        0,
        sum(expected),
    )
    seated = TicketDefinition.objects.get(wix_id=demo_id("td:spring-gala:seated"))
    assert (seated.pricing_method, str(seated.price), seated.unsold_count) == ("options", "20.00", 120)
    supporter = TicketDefinition.objects.get(wix_id=demo_id("td:jazz-night:supporter"))
    assert (supporter.pricing_method, supporter.unsold_count) == ("guest", None)
    assert TicketDefinition.objects.get(wix_id=demo_id("td:jazz-night:early")).sale_status == "SALE_SCHEDULED"


def _more_events(count: int, tickets_on_first: int) -> None:
    """Events beyond the demo's three, the first with more ticket definitions than a page holds."""
    from sync.sandbox.services import entity_create

    for n in range(count):
        event = entity_create(
            kind=Kind.EVENT, data={"title": f"Extra {n}", "slug": f"extra-{n}"}, webhooks=False
        )["event"]
        for t in range(tickets_on_first if n == 0 else 1):
            entity_create(
                kind=Kind.TICKET_DEFINITION,
                data={
                    "eventId": event["id"],
                    "name": f"T{t}",
                    "feeType": "FEE_INCLUDED",
                    "pricingMethod": {"fixedPrice": {"value": "5", "currency": "EUR"}},
                },
                webhooks=False,
            )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("paging", "family"), [("offset", "current"), ("cursor", "legacy")])
def test_a_wix_that_answers_short_pages_is_paged_to_the_end(
    sandbox_site: WixSite, settings: object, paging: str, family: str
) -> None:
    settings.SANDBOX_MAX_PAGE_SIZE = 5  # type: ignore[attr-defined]  # whatever limit the portal asks
    _more_events(5, tickets_on_first=7)
    sandbox_site.paging, sandbox_site.path_family = paging, family
    sandbox_site.save()
    first = _backfill(sandbox_site)
    assert first.status == "succeeded", first.errors
    assert _counts() == (8, 6, 8 + 7 + 4)
    assert first.fetched == first.created == 8 + 6 + 19
    second = _backfill(sandbox_site)
    assert (second.status, second.changes, second.unchanged) == ("succeeded", 0, 8 + 6 + 19)


@pytest.mark.django_db(transaction=True)
def test_a_backfill_that_gets_fewer_entities_than_wix_reported_does_not_succeed(
    sandbox_site: WixSite,
) -> None:
    _more_events(1, tickets_on_first=3)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(sandbox_site.api_base_url)
        query = f"{sandbox_site.api_base_url}/events/v3/ticket-definitions/query"
        # Wix says three ticket definitions, then answers an empty page after the first.
        mock.post(query, json={"ticketDefinitions": [], "metadata": {"total": 3, "count": 0}})
        run = _backfill(sandbox_site)
    assert run.status == "partial"
    assert all("reported 3 in all but returned an empty page" in e["error"] for e in run.errors)
    assert "query ticketDefinitions" in run.errors[0]["error"]
    assert TicketDefinition.objects.count() == 0 and not run.steps.filter(status="done").exists()


@pytest.mark.django_db(transaction=True)
def test_a_sandbox_edit_and_a_sale_show_up_in_the_next_backfill(sandbox_site: WixSite) -> None:
    _backfill(sandbox_site)
    entity_update(
        kind=Kind.POLICY,
        wix_id=demo_id("policy:spring-gala:refund"),
        changes={"revision": "1", "name": "Refunds"},
    )
    order_place(event_id=demo_id("event:spring-gala"), quantities={demo_id("td:spring-gala:vip"): 2})
    run = _backfill(sandbox_site)
    assert (run.updated, run.created) == (2, 0)
    policy = Policy.objects.get(wix_id=demo_id("policy:spring-gala:refund"))
    assert (policy.name, policy.revision) == ("Refunds", 2)
    assert TicketDefinition.objects.get(wix_id=demo_id("td:spring-gala:vip")).unsold_count == 3


@pytest.mark.django_db(transaction=True)
def test_sandbox_faults_are_retried_and_a_4xx_is_reported(sandbox_site: WixSite) -> None:
    SandboxFault.objects.create(path_contains="/events/v3/events/query", status=503, remaining=2)
    SandboxFault.objects.create(
        path_contains="/policies/query",
        status=403,
        remaining=1,
        message="Missing permission READ-POLICIES",
        code="PERMISSION_DENIED",
    )
    run = _backfill(sandbox_site)
    assert run.status == "partial" and run.failed == 1
    assert "HTTP 403: PERMISSION_DENIED: Missing permission READ-POLICIES" in run.errors[0]["error"]
    # The refused event is left whole for later: its policies and ticket definitions.
    assert _counts() == (3, 4, 5)
    from sync.services.backfill import backfill_resume

    assert backfill_resume(run=run)
    assert backfill_execute(run_id=run.pk) == "succeeded"
    assert _counts() == (3, 6, 8)


@pytest.mark.django_db(transaction=True)
def test_the_wix_client_reads_the_sandbox_with_every_paging_mode_and_path_family(live_server: object) -> None:
    sandbox_seed()
    base = f"{live_server.url}/sandbox/wix"  # type: ignore[attr-defined]
    event_id = demo_id("event:cinema")
    event_id = demo_id("event:open-air-cinema")
    results = set()
    for paging in ("offset", "cursor"):
        for family in ("current", "legacy"):
            client = WixClient(
                site_id=SANDBOX_SITE_ID,
                auth=WixAuth(api_key="sandbox-api-key"),
                base_url=base,
                page_size=1,
                paging=paging,
                path_family=family,
            )
            results.add(
                (
                    tuple(p["id"] for p in client.query_policies(event_id)),
                    tuple(e["id"] for e in client.query_events()),
                )
            )
    assert len(results) == 1
    policies, events = results.pop()
    assert len(policies) == 3 and len(events) == 3
    oauth = WixClient(
        site_id=SANDBOX_SITE_ID,
        base_url=base,
        auth=WixAuth(app_id="app", app_secret="secret", instance_id=SANDBOX_INSTANCE_ID),
    )
    td = oauth.get_ticket_definition(demo_id("td:open-air-cinema:free"))
    assert td["pricingMethod"]["free"] is True and td["salesDetails"]["unsoldCount"] == 300
    with pytest.raises(WixNotFound):
        oauth.get_policy("no-such-policy")


@pytest.mark.django_db
def test_the_sandbox_speaks_wix_shapes_and_errors(client: Client) -> None:
    sandbox_seed()
    url = "/sandbox/wix/events/v3/ticket-definitions"
    event_id = demo_id("event:spring-gala")
    body = {"query": {"filter": {"eventId": {"$eq": event_id}}, "paging": {"limit": 2}}}
    page = client.post(f"{url}/query", body, content_type="application/json", **HEADERS).json()
    assert page["metadata"] == {"count": 2, "offset": 0, "total": 3, "tooManyToCount": False}
    assert all("salesDetails" not in td for td in page["ticketDefinitions"])  # not asked for
    got = client.get(f"{url}/{demo_id('td:spring-gala:ga')}?fields=SALES_DETAILS", **HEADERS).json()
    assert got["ticketDefinition"]["salesDetails"] == {
        "unsoldCount": 200,
        "soldCount": 0,
        "reservedCount": 0,
        "soldOut": False,
    }
    assert got["ticketDefinition"]["pricingMethod"]["fixedPrice"] == {"value": "25.00", "currency": "EUR"}

    unauthorized = client.post(f"{url}/query", body, content_type="application/json")
    assert unauthorized.status_code == 401
    assert unauthorized.json()["details"]["applicationError"]["code"] == "UNAUTHENTICATED"
    fourth = client.post(
        "/sandbox/wix/events/v2/policies",
        {"policy": {"eventId": demo_id("event:open-air-cinema"), "name": "Fourth", "body": "x"}},
        content_type="application/json",
        **HEADERS,
    )
    assert fourth.status_code == 428
    assert fourth.json()["details"]["applicationError"]["code"] == "POLICIES_LIMIT_REACHED"
    stale = client.patch(
        f"{url}/{demo_id('td:spring-gala:ga')}",
        {"ticketDefinition": {"revision": "7"}},
        content_type="application/json",
        **HEADERS,
    )
    assert stale.status_code == 409
    invalid = client.post(
        url,
        {
            "ticketDefinition": {
                "eventId": event_id,
                "name": "X",
                "feeType": "FREE",
                "pricingMethod": {"fixedPrice": {"value": "1", "currency": "EUR"}},
            }
        },
        content_type="application/json",
        **HEADERS,
    )
    assert invalid.status_code == 400
    assert (
        invalid.json()["details"]["validationError"]["fieldViolations"][0]["field"]
        == "ticketDefinition.feeType"
    )


@pytest.mark.django_db
def test_the_sandbox_is_off_unless_enabled(client: Client, settings: object) -> None:
    settings.PORTAL_SANDBOX = False  # type: ignore[attr-defined]
    response = client.post(
        "/sandbox/wix/events/v3/events/query", {}, content_type="application/json", **HEADERS
    )
    assert response.status_code == 404


@pytest.mark.django_db
@responses.activate
def test_edits_send_webhooks_signed_like_wix(
    settings: object, django_capture_on_commit_callbacks: object
) -> None:
    settings.SANDBOX_WEBHOOK_URL = "https://portal.test/webhooks/wix/"  # type: ignore[attr-defined]
    site = sandbox_seed()
    receiver = responses.post("https://portal.test/webhooks/wix/", status=200)
    policy_id = demo_id("policy:jazz-night:age")
    with django_capture_on_commit_callbacks():  # type: ignore[operator]
        entity_update(kind=Kind.POLICY, wix_id=policy_id, changes={"revision": "1", "body": "<p>18+</p>"})
    hook = SandboxWebhook.objects.get()
    assert sandbox_webhook_send(webhook_id=hook.pk) == "sent"
    assert sandbox_webhook_send(webhook_id=hook.pk) == "duplicate"
    assert receiver.call_count == 1

    token = responses.calls[0].request.body.decode()
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": sandbox_key().kid, "typ": "JWT"}
    claims = jwt.decode(token, site.webhook_public_keys, algorithms=["RS256"])
    assert claims["exp"] > claims["iat"]
    outer = json.loads(claims["data"])
    assert (outer["eventType"], outer["instanceId"]) == ("wix.events.v2.policy_updated", SANDBOX_INSTANCE_ID)
    assert json.loads(outer["identity"])["identityType"] == "WIX_USER"
    envelope = json.loads(outer["data"])
    assert (envelope["entityFqdn"], envelope["slug"], envelope["entityId"]) == (
        "wix.events.v2.policy",
        "updated",
        policy_id,
    )
    entity = envelope["updatedEvent"]["currentEntity"]  # the first delivery: the SDK's object
    assert (entity["revision"], entity["body"]) == ("2", "<p>18+</p>")
    with django_capture_on_commit_callbacks():  # type: ignore[operator]
        entity_update(kind=Kind.POLICY, wix_id=policy_id, changes={"revision": "2", "name": "Age"})
        entity_delete(kind=Kind.POLICY, wix_id=policy_id)
    second, third = SandboxWebhook.objects.order_by("pk")[1:]
    # The next carries the REST schema's JSON string, and a deletion the entity as it was.
    assert json.loads(second.envelope["updatedEvent"]["currentEntityAsJson"])["name"] == "Age"
    assert third.event_type == "wix.events.v2.policy_deleted"
    assert third.envelope["deletedEvent"]["deletedEntity"]["revision"] == "3"
    assert third.envelope["deletedEvent"]["movedToTrash"] is True
    with pytest.raises(jwt.InvalidSignatureError):
        other = (
            __import__("cryptography.hazmat.primitives.asymmetric.rsa", fromlist=["rsa"])
            .generate_private_key(public_exponent=65537, key_size=2048)
            .public_key()
        )
        jwt.decode(token, other, algorithms=["RS256"])


@pytest.mark.django_db
@responses.activate
def test_an_order_sends_order_confirmed_and_lowers_the_unsold_count(settings: object) -> None:
    settings.SANDBOX_WEBHOOK_URL = "https://portal.test/webhooks/wix/"  # type: ignore[attr-defined]
    sandbox_seed()
    responses.post("https://portal.test/webhooks/wix/", status=500, body="down")
    td_id = demo_id("td:spring-gala:vip")
    payload = order_place(event_id=demo_id("event:spring-gala"), quantities={td_id: 2})
    assert [t["ticketDefinitionId"] for t in payload["tickets"]] == [td_id, td_id]
    assert payload["tickets"][0]["price"] == {"value": "120.00", "amount": "120.00", "currency": "EUR"}
    assert payload["invoice"]["items"] == [
        {
            "id": td_id,
            "name": "VIP",
            "quantity": 2,
            "price": payload["tickets"][0]["price"],
            "total": {"value": "240.00", "amount": "240.00", "currency": "EUR"},
        }
    ]
    hook = SandboxWebhook.objects.get()
    assert hook.event_type == "wix.events.ticketing.events.OrderConfirmed"
    assert sandbox_webhook_send(webhook_id=hook.pk) == "failed"
    hook.refresh_from_db()
    assert (hook.response_status, hook.error) == (500, "down")
    from sync.sandbox.services import entity_get

    assert (
        entity_get(kind=Kind.TICKET_DEFINITION, wix_id=td_id, fields=["SALES_DETAILS"])["ticketDefinition"][
            "salesDetails"
        ]["unsoldCount"]
        == 3
    )
    from sync.sandbox.services import SandboxError

    with pytest.raises(SandboxError, match="only 3 tickets left"):
        order_place(event_id=demo_id("event:spring-gala"), quantities={td_id: 4})
