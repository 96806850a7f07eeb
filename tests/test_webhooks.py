from __future__ import annotations

import json
import random
import time

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.models import (
    OutboundWork,
    Policy,
    TicketDefinition,
    TicketDefinitionRefresh,
    WebhookDelivery,
    WixSite,
)
from sync.services.ticket_refresh import ticket_refresh_drain
from sync.services.webhook_handlers import webhook_process, webhook_replay
from sync.services.webhook_limits import webhook_rejections_flush
from tests.conftest import WIX, rest_target, wix_payload

pytestmark = pytest.mark.django_db
URL = "/webhooks/wix/"
POLICY = wix_payload("policy__get")["policy"]
TD = wix_payload("ticket_definition__fixed_price")["ticketDefinition"]


def _key() -> tuple[rsa.RSAPrivateKey, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


KEY, PUBLIC = _key()
OLD_KEY, OLD_PUBLIC = _key()


@pytest.fixture
def hook_site(site: WixSite) -> WixSite:
    site.webhook_public_keys = OLD_PUBLIC + PUBLIC  # a rotation: both keys active
    site.save()
    return site


def sign(
    data: dict | str,
    event_type: str,
    *,
    key: rsa.RSAPrivateKey = KEY,
    instance: str = "inst-1",
    iat: int | None = None,
    lifetime: int = 3600,
) -> bytes:
    now = int(time.time()) if iat is None else iat
    outer = {
        "eventType": event_type,
        "instanceId": instance,
        "data": data if isinstance(data, str) else json.dumps(data),
        "identity": json.dumps({"identityType": "WIX_USER", "wixUserId": "u1"}),
    }
    return jwt.encode(
        {"data": json.dumps(outer), "iat": now, "exp": now + lifetime},
        key,
        algorithm="RS256",
        headers={"kid": "k1"},
    ).encode()


def envelope(
    slug: str,
    entity: dict | None,
    *,
    fqdn: str = "wix.events.v2.policy",
    event_id: str | None = None,
    as_string: bool = True,
) -> dict:
    data = {
        "id": event_id or f"evt-{random.random()}",
        "entityFqdn": fqdn,
        "slug": slug,
        "entityId": (entity or {}).get("id", POLICY["id"]),
        "eventTime": "2026-03-05T16:40:11.095311Z",
    }
    if slug == "created":
        data["createdEvent"] = {"entityAsJson": json.dumps(entity) if as_string else entity}
    elif slug == "updated":
        data["updatedEvent"] = {"currentEntityAsJson": json.dumps(entity) if as_string else entity}
    elif slug == "deleted":
        data["deletedEvent"] = {"movedToTrash": True}
    return data


def post(client: Client, body: bytes) -> int:
    return client.post(URL, body, content_type="text/plain").status_code


def test_a_signed_update_is_stored_acknowledged_and_processed_once(
    client: Client, hook_site: WixSite, django_capture_on_commit_callbacks: object
) -> None:
    body = sign(envelope("updated", POLICY, event_id="e-1"), "wix.events.v2.policy_updated")
    with django_capture_on_commit_callbacks() as queued:  # type: ignore[operator]
        assert post(client, body) == 200
        assert post(client, body) == 200  # Wix redelivers
    assert len(queued) == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.wix_event_id, delivery.entity_id) == ("received", "e-1", POLICY["id"])
    assert delivery.raw_body == body.decode()
    assert webhook_process(delivery_id=delivery.pk) == "created"
    assert webhook_process(delivery_id=delivery.pk) == "duplicate"
    assert Policy.objects.get().revision == 2
    delivery.refresh_from_db()
    assert delivery.status == "processed"


@pytest.mark.parametrize("as_string", [True, False])
@pytest.mark.parametrize(("slug", "carrier"), [("created", "entity"), ("updated", "currentEntity")])
def test_every_documented_carrier_is_read(
    client: Client, hook_site: WixSite, slug: str, carrier: str, as_string: bool
) -> None:
    data = envelope(slug, POLICY, as_string=as_string)
    holder = "createdEvent" if slug == "created" else "updatedEvent"
    data[holder] = {carrier: json.dumps(POLICY) if as_string else POLICY}  # the SDK's names
    assert post(client, sign(data, f"wix.events.v2.policy_{slug}")) == 200
    assert webhook_process(delivery_id=WebhookDelivery.objects.get().pk) == "created"


@pytest.mark.parametrize(
    "body",
    [
        sign(envelope("updated", POLICY), "wix.events.v2.policy_updated", key=_key()[0]),  # forged
        sign(
            envelope("updated", POLICY), "wix.events.v2.policy_updated", iat=int(time.time()) - 7200
        ),  # expired
        sign(
            envelope("updated", POLICY), "wix.events.v2.policy_updated", instance="someone-else"
        ),  # unknown site
        b"not a jwt",
        b"",
        b"a.b.c",
        jwt.encode({"data": "{}", "iat": 1, "exp": 2}, "s" * 32, algorithm="HS256").encode(),  # alg confusion
    ],
)
def test_forged_expired_or_unreadable_bodies_are_401_and_write_nothing(
    client: Client, hook_site: WixSite, body: bytes
) -> None:
    assert post(client, body) == 401
    assert not WebhookDelivery.objects.exists()


def test_rejections_are_counted_on_the_site(client: Client, hook_site: WixSite) -> None:
    post(client, sign(envelope("updated", POLICY), "x", key=_key()[0]))
    post(client, sign(envelope("updated", POLICY), "x", iat=int(time.time()) - 7200))
    webhook_rejections_flush()  # counted in the cache, added to the row by the dispatcher
    hook_site.refresh_from_db()
    assert hook_site.webhooks_rejected == 2 and hook_site.webhook_last_rejected_at is not None


def test_a_token_within_the_leeway_is_accepted(client: Client, hook_site: WixSite) -> None:
    body = sign(envelope("updated", POLICY), "wix.events.v2.policy_updated", iat=int(time.time()) - 3630)
    assert post(client, body) == 200  # expired 30 s ago; 60 s of leeway


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("not json", "data.data is not valid JSON"),
        ({"entityFqdn": "wix.events.v2.policy", "slug": "updated", "entityId": "p"}, "webhook event id"),
        ({**envelope("updated", POLICY), "updatedEvent": {}}, "carries no entity"),
        ({**envelope("updated", {**POLICY, "revision": "x"})}, "policy.revision is not an integer string"),
        ({"eventId": "e", "orderNumber": "N"}, "legacy payload needs"),
    ],
)
def test_a_signed_but_malformed_payload_is_400_and_recorded(
    client: Client, hook_site: WixSite, data: object, message: str
) -> None:
    response = client.post(URL, sign(data, "wix.events.v2.policy_updated"), content_type="text/plain")
    assert response.status_code == 400
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "malformed" and message in delivery.last_error


def test_an_unknown_event_type_is_stored_and_acknowledged(
    client: Client, hook_site: WixSite, django_capture_on_commit_callbacks: object
) -> None:
    data = {"id": "evt-x", "entityFqdn": "wix.events.v3.event", "slug": "published", "entityId": "ev"}
    with django_capture_on_commit_callbacks() as queued:  # type: ignore[operator]
        assert post(client, sign(data, "wix.events.v3.event_event_published")) == 200
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.outcome) == ("ignored", "ignored: not handled") and queued == []
    data = {**data, "id": "evt-y", "entityFqdn": "wix.something.v9.thing"}
    assert post(client, sign(data, "wix.something.v9.thing_happened")) == 200
    assert WebhookDelivery.objects.get(wix_event_id="evt-y").outcome == "ignored: unknown type"


def test_a_body_over_one_megabyte_is_413(client: Client, hook_site: WixSite) -> None:
    assert post(client, b"x" * (1024 * 1024 + 1)) == 413
    assert not WebhookDelivery.objects.exists()


def test_an_older_revision_is_stale_and_a_deletion_is_final(client: Client, hook_site: WixSite) -> None:
    for body in [
        sign(envelope("updated", {**POLICY, "revision": "3", "name": "v3"}), "wix.events.v2.policy_updated"),
        sign(envelope("updated", {**POLICY, "revision": "2", "name": "v2"}), "wix.events.v2.policy_updated"),
        sign(envelope("deleted", None), "wix.events.v2.policy_deleted"),
        sign(envelope("updated", {**POLICY, "revision": "9", "name": "v9"}), "wix.events.v2.policy_updated"),
    ]:
        assert post(client, body) == 200
        webhook_process(delivery_id=WebhookDelivery.objects.order_by("-pk").first().pk)
    statuses = list(WebhookDelivery.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == ["processed", "stale", "processed", "stale"]
    policy = Policy.objects.get()
    assert policy.is_deleted and policy.name == "v3"


@responses.activate
@pytest.mark.parametrize(
    "event_type",
    # The SDK's name (what real Wix sends), and the spelling the portal accepted before.
    ["wix.events.ticketing.events.OrderConfirmed", "wix.events.v1.order_order-confirmed"],
)
def test_order_confirmed_refreshes_each_ticket_definition_once(
    client: Client, hook_site: WixSite, event_type: str
) -> None:
    order = wix_payload("order_confirmed__two_tickets")
    get = responses.get(
        f"{WIX}/events/v3/ticket-definitions/{TD['id']}",
        json={"ticketDefinition": {**TD, "salesDetails": {**TD["salesDetails"], "unsoldCount": 3}}},
    )
    body = sign(order, event_type)
    assert post(client, body) == 200 and post(client, body) == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.entity_id == order["orderNumber"]
    assert webhook_process(delivery_id=delivery.pk) == "refresh queued (1)"
    assert get.call_count == 0  # the Get is a coalesced refresh, due a short window later
    TicketDefinitionRefresh.objects.update(not_before=None)  # the window has passed
    assert ticket_refresh_drain(budget_seconds=5) == 1
    assert get.call_count == 1
    assert TicketDefinition.objects.get().unsold_count == 3


@responses.activate
def test_wix_down_is_retried_then_failed_and_staff_can_replay(
    client: Client, hook_site: WixSite, settings: object
) -> None:
    settings.WIX_MAX_RETRIES = 0  # type: ignore[attr-defined]
    responses.get(f"{WIX}/events/v3/ticket-definitions/{TD['id']}", status=503, json={"message": "down"})
    data = {
        "id": "evt-s",
        "entityFqdn": "wix.events.v3.ticket_definition",
        "slug": "sale_started",
        "entityId": TD["id"],
        "actionEvent": {},
    }
    assert post(client, sign(data, "wix.events.v3.ticket_definition_sale_started")) == 200
    delivery = WebhookDelivery.objects.get()
    assert webhook_process(delivery_id=delivery.pk) == "retry-scheduled"
    for _ in range(10):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(not_before=None)
        webhook_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and "HTTP 503" in delivery.last_error
    responses.replace(
        responses.GET, f"{WIX}/events/v3/ticket-definitions/{TD['id']}", json={"ticketDefinition": TD}
    )
    assert webhook_replay(delivery_ids=[delivery.pk]) == 1
    assert webhook_process(delivery_id=delivery.pk) == "created"


def test_a_replayed_delivery_whose_data_names_nothing_to_mirror_is_ignored_not_a_crash(
    hook_site: WixSite,
) -> None:
    delivery = WebhookDelivery.objects.create(
        site=hook_site,
        wix_event_id="evt-empty",
        event_type="wix.events.v2.policy_updated",
        raw_body="x.y.z",
        payload={"eventType": "wix.events.v2.policy_updated", "data": {"id": "evt-empty"}},
        status="failed",
    )
    assert webhook_replay(delivery_ids=[delivery.pk]) == 1
    webhook_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.outcome) == ("ignored", "no handler for its data")


@responses.activate
def test_shuffled_and_duplicated_deliveries_end_at_the_newest_revision_pushed_once_each(
    client: Client, hook_site: WixSite
) -> None:
    from sync.services.push import push_drain

    system = rest_target()
    system.mappings.create(
        entity_type="policy", source_path="revision", target_field="rev", transform="integer"
    )
    sent: list[dict] = []

    def record(request: object) -> tuple[int, dict, str]:
        sent.append(json.loads(request.body))  # type: ignore[attr-defined]
        return 200, {}, '{"id": "ext-1"}'

    responses.add_callback(responses.POST, "https://t.test/p", callback=record)
    responses.add_callback(responses.PUT, "https://t.test/p/ext-1", callback=record)
    bodies = [
        sign(
            envelope("updated", {**POLICY, "revision": str(r), "name": f"v{r}"}, event_id=f"e{r}"),
            "wix.events.v2.policy_updated",
        )
        for r in range(1, 7)
    ]
    rng = random.Random(7)
    deliveries = bodies * 2
    rng.shuffle(deliveries)
    for body in deliveries:
        assert post(client, body) == 200
        for delivery in WebhookDelivery.objects.filter(status="received"):
            webhook_process(delivery_id=delivery.pk)
        push_drain(budget_seconds=10)
    assert WebhookDelivery.objects.count() == 6  # duplicates stored once
    assert Policy.objects.get().revision == 6
    assert sent[-1] == {"title": "v6", "rev": 6}
    revisions = [payload["rev"] for payload in sent]
    assert revisions == sorted(set(revisions))  # each change pushed once, never an older one after
    assert not OutboundWork.objects.exclude(status="done").exists()


def _deep(depth: int, brackets: bool) -> bytes:
    """A signed envelope carrying a value nested ``depth`` levels (lists or objects)."""
    nested = "[" * depth + "1" + "]" * depth if brackets else '{"a":' * depth + "1" + "}" * depth
    text = json.dumps(envelope("updated", POLICY, event_id=f"deep-{depth}"))[:-1] + f', "nested": {nested}}}'
    return sign(text, "wix.events.v2.policy_updated")


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(str.encode),
        st.builds(
            lambda parts: ".".join(parts).encode(),
            st.lists(
                st.text(
                    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=", max_size=60
                ),
                min_size=1,
                max_size=4,
            ),
        ),
        st.builds(
            lambda d: sign(d, "wix.events.v2.policy_updated"),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(
                        st.sampled_from(
                            [
                                "id",
                                "entityFqdn",
                                "slug",
                                "entityId",
                                "updatedEvent",
                                "currentEntityAsJson",
                                "eventId",
                                "orderNumber",
                                "timestamp",
                                "tickets",
                            ]
                        ),
                        inner,
                        max_size=5,
                    )
                ),
                max_leaves=12,
            ),
        ),
        # Deep: an envelope carrying a value nested up to 3,000 levels.
        st.builds(_deep, st.integers(min_value=1, max_value=3000), st.booleans()),
        # Wide: thousands of keys or list items beside a valid envelope.
        st.builds(
            lambda width, as_list: sign(
                {
                    **envelope("updated", POLICY, event_id=f"wide-{width}"),
                    "wide": list(range(width)) if as_list else {f"k{i}": i for i in range(width)},
                },
                "wix.events.v2.policy_updated",
            ),
            st.integers(min_value=100, max_value=20000),
            st.booleans(),
        ),
    )
)
@override_settings(WEBHOOK_REJECT_LIMIT=10**9)  # the fuzzer posts from one address
def test_fuzzed_and_forged_bodies_never_cause_a_500(client: Client, hook_site: WixSite, body: bytes) -> None:
    assert post(client, body) in (200, 400, 401, 413)


def test_the_sweep_releases_deliveries_a_killed_worker_left_and_wakes_a_drain_for_due_ones(
    hook_site: WixSite, django_capture_on_commit_callbacks: object
) -> None:
    import datetime as dt

    from django.utils import timezone

    from portal.jobs import dispatch

    old = timezone.now() - dt.timedelta(hours=1)
    stuck = WebhookDelivery.objects.create(
        site=hook_site, wix_event_id="s", raw_body="x", status="processing", claimed_at=old
    )
    due = WebhookDelivery.objects.create(site=hook_site, wix_event_id="d", raw_body="x", not_before=old)
    later = WebhookDelivery.objects.create(
        site=hook_site, wix_event_id="l", raw_body="x", not_before=timezone.now() + dt.timedelta(hours=1)
    )
    from django_q.brokers import get_broker

    broker = get_broker()
    broker.purge_queue()
    report = dispatch()["sync.WebhookDelivery"]
    assert report == {"released": 1, "due": 2}
    assert WebhookDelivery.objects.get(pk=stuck.pk).status == "received"
    assert {due.pk, stuck.pk} == set(
        WebhookDelivery.objects.filter(status="received").exclude(pk=later.pk).values_list("pk", flat=True)
    )
    from django_q.signing import SignedPackage

    queued = [SignedPackage.loads(task[1])["func"] for task in broker.dequeue() or []]
    assert "sync.tasks.webhook_drain_task" in queued


def test_a_drain_processes_due_deliveries_once_each_entity_in_revision_order(
    client: Client, hook_site: WixSite
) -> None:
    import datetime as dt

    from django.utils import timezone

    from sync.services.webhook_handlers import webhook_drain

    for revision in (4, 2, 5, 3):  # arrive out of order
        entity = {**POLICY, "revision": str(revision), "name": f"v{revision}"}
        assert post(client, sign(envelope("updated", entity), "wix.events.v2.policy_updated")) == 200
    other = {**POLICY, "id": "other-policy", "revision": "7"}
    assert post(client, sign(envelope("updated", other), "wix.events.v2.policy_updated")) == 200
    waiting = WebhookDelivery.objects.get(entity_id="other-policy")
    WebhookDelivery.objects.filter(pk=waiting.pk).update(not_before=timezone.now() + dt.timedelta(hours=1))
    assert webhook_drain(budget_seconds=10) == 4
    assert WebhookDelivery.objects.get(pk=waiting.pk).status == "received"  # not due yet
    applied = list(
        WebhookDelivery.objects.filter(entity_id=POLICY["id"])
        .order_by("processed_at")
        .values_list("sequence", flat=True)
    )
    assert applied == [2, 3, 4, 5]  # in revision order, so none was stale
    assert set(WebhookDelivery.objects.filter(entity_id=POLICY["id"]).values_list("status", flat=True)) == {
        "processed"
    }
    assert Policy.objects.get(wix_id=POLICY["id"]).revision == 5
    assert webhook_drain(budget_seconds=1) == 0  # nothing claimed twice
    assert WebhookDelivery.objects.filter(attempts=1).count() == 4


def test_a_delivery_waits_for_an_earlier_one_of_its_entity(client: Client, hook_site: WixSite) -> None:
    for revision in (2, 3):
        entity = {**POLICY, "revision": str(revision)}
        assert post(client, sign(envelope("updated", entity), "wix.events.v2.policy_updated")) == 200
    first, second = WebhookDelivery.objects.order_by("sequence")
    assert webhook_process(delivery_id=second.pk) == "duplicate"  # its entity's earlier one goes first
    assert webhook_process(delivery_id=first.pk) == "created"
    assert webhook_process(delivery_id=second.pk) == "updated"


@pytest.mark.parametrize(
    "event_type",
    [
        "wix.events.ticketing.events.OrderInitiated",
        "wix.events.ticketing.events.OrderPaid",
        "wix.events.ticketing.events.ReservationCreated",
        "wix.events.ticketing.events.OrderRefunded",  # a sibling Wix may add: still an order event
        "wix.events.v1.order_order-paid",
    ],
)
def test_other_order_and_reservation_events_are_known_and_ignored(
    client: Client, hook_site: WixSite, event_type: str
) -> None:
    order = wix_payload("order_confirmed__two_tickets")
    assert post(client, sign(order, event_type)) == 200
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.outcome) == ("ignored", "ignored: not handled")


@pytest.mark.parametrize(
    "name", ["event_published", "event_event_published", "event_canceled", "event_ended"]
)
def test_events_v3_signals_in_either_spelling_are_known_and_ignored(
    client: Client, hook_site: WixSite, name: str
) -> None:
    data = {
        "id": "evt-p",
        "entityFqdn": "wix.events.v3.event",
        "slug": name.rsplit("_", 1)[1],
        "entityId": "e",
    }
    assert post(client, sign(data, f"wix.events.v3.{name}")) == 200
    assert WebhookDelivery.objects.get().outcome == "ignored: not handled"


def test_order_money_reads_value_and_falls_back_to_the_deprecated_amount() -> None:
    from sync.services.webhooks import order_summary

    order = {
        "orderNumber": "N1",
        "status": "PAID",
        "tickets": [
            {"ticketDefinitionId": "td-a", "price": {"value": "25.00", "amount": "99", "currency": "EUR"}},
            {"ticketDefinitionId": "td-a", "price": {"amount": "25.00", "currency": "EUR"}},
            {"ticketDefinitionId": "td-b", "price": {"value": "5.50", "currency": "EUR"}},
        ],
    }
    assert order_summary(order) == "Order N1 (PAID): 2 x td-a, 1 x td-b; 55.50 EUR"


def test_an_order_without_tickets_is_refused_at_once(client: Client, hook_site: WixSite) -> None:
    order = {**wix_payload("order_confirmed__two_tickets"), "tickets": "none"}
    assert post(client, sign(order, "wix.events.ticketing.events.OrderConfirmed")) == 400
    assert "tickets are missing" in WebhookDelivery.objects.get().last_error


def _sign_claims(claims: dict) -> bytes:
    return jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": "k1"}).encode()


def _outer(data: dict, event_type: str) -> str:
    return json.dumps({"eventType": event_type, "instanceId": "inst-1", "data": json.dumps(data)})


def test_a_token_without_exp_or_iat_is_accepted_and_one_with_them_is_checked(
    client: Client, hook_site: WixSite
) -> None:
    data = envelope("updated", POLICY, event_id="no-exp")
    assert post(client, _sign_claims({"data": _outer(data, "wix.events.v2.policy_updated")})) == 200
    assert post(client, _sign_claims({"data": _outer(data, "wix.events.v2.policy_updated")})) == 200
    assert WebhookDelivery.objects.count() == 1  # a replay is still one delivery (its unique id)
    expired = {"data": _outer(envelope("updated", POLICY), "x"), "exp": int(time.time()) - 3600}
    future = {"data": _outer(envelope("updated", POLICY), "x"), "iat": int(time.time()) + 3600}
    assert post(client, _sign_claims(expired)) == 401
    assert post(client, _sign_claims(future)) == 401
    assert post(client, _sign_claims({"iat": int(time.time())})) == 401  # no data claim
    assert WebhookDelivery.objects.count() == 1


def test_a_body_with_surrounding_whitespace_is_verified_on_its_stripped_form(
    client: Client, hook_site: WixSite
) -> None:
    body = sign(envelope("updated", POLICY), "wix.events.v2.policy_updated")
    assert post(client, b"\n  " + body + b"\r\n") == 200
    assert WebhookDelivery.objects.get().status == "received"


@pytest.mark.parametrize("as_string", [True, False])
def test_a_deletion_carrying_the_deleted_entity_tombstones_it_under_its_event(
    client: Client, hook_site: WixSite, as_string: bool
) -> None:
    data = envelope("deleted", POLICY)
    key = "deletedEntityAsJson" if as_string else "deletedEntity"
    data["deletedEvent"] = {key: json.dumps(POLICY) if as_string else POLICY}
    assert post(client, sign(data, "wix.events.v2.policy_deleted")) == 200
    assert webhook_process(delivery_id=WebhookDelivery.objects.get().pk) == "deleted"
    policy = Policy.objects.get()  # never mirrored before: a tombstone that knows its event
    assert policy.is_deleted and policy.event_wix_id == POLICY["eventId"]


@responses.activate
@pytest.mark.parametrize(
    ("slug", "body"),
    [
        ("sale_started", {"body": {"ticketDefinition": TD}}),
        ("sale_ended", {"bodyAsJson": json.dumps({"ticketDefinition": TD})}),
        ("sale_period_updated", {"body": json.dumps({"afterUpdate": TD.get("salePeriod")})}),
    ],
)
def test_ticket_definition_action_events_refresh_it_with_get(
    client: Client, hook_site: WixSite, slug: str, body: dict
) -> None:
    get = responses.get(f"{WIX}/events/v3/ticket-definitions/{TD['id']}", json={"ticketDefinition": TD})
    data = {
        "id": f"evt-{slug}",
        "entityFqdn": "wix.events.v3.ticket_definition",
        "slug": slug,
        "entityId": TD["id"],
        "actionEvent": body,
    }
    assert post(client, sign(data, f"wix.events.v3.ticket_definition_{slug}")) == 200
    assert webhook_process(delivery_id=WebhookDelivery.objects.get().pk) == "created"
    assert get.call_count == 1 and TicketDefinition.objects.get().wix_id == TD["id"]


def test_an_action_event_whose_body_is_not_an_object_is_400(client: Client, hook_site: WixSite) -> None:
    data = {
        "id": "evt-bad",
        "entityFqdn": "wix.events.v3.ticket_definition",
        "slug": "sale_started",
        "entityId": TD["id"],
        "actionEvent": {"bodyAsJson": "[1, 2]"},
    }
    assert post(client, sign(data, "wix.events.v3.ticket_definition_sale_started")) == 400
    assert "actionEvent.bodyAsJson is not a JSON object" in WebhookDelivery.objects.get().last_error
