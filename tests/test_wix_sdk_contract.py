"""Wix's own SDK as the referee of the sandbox: what the sandbox sends and answers must read, in
Wix's npm packages, as the same events and entities the portal reads.

- Webhooks: a scenario on the sandbox makes it send every kind of webhook it knows to the live
  portal; each body the portal stored goes to the SDK's ``client.webhooks.process`` with the
  sandbox's public key, and the handler the SDK runs (and the event and entity it is given)
  must match what the portal's own decoder made of the same bytes.
- REST: the SDK's Query (page by page) and Get of events, policies and ticket definitions
  (``SALES_DETAILS``) go to the sandbox through a fetch that rewrites Wix's host; what the SDK
  returns must be what a portal backfill mirrored.

Run alone with ``pytest -m wix_sdk``; Node.js and npm are needed (tests/wix_sdk_referee.py).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.utils import timezone

from sync.models import BackfillRun, Event, Policy, TicketDefinition, WebhookDelivery, WixSite
from sync.sandbox.demo import demo_id, sandbox_seed
from sync.sandbox.models import SandboxWebhook
from sync.sandbox.services import (
    SANDBOX_INSTANCE_ID,
    SANDBOX_SITE_ID,
    Kind,
    entity_create,
    entity_delete,
    entity_update,
    order_place,
    sandbox_key,
    sandbox_sale_transitions,
    sandbox_webhook_send,
)
from sync.services.backfill import backfill_execute, backfill_start
from sync.services.webhooks import (
    carried_action_body,
    carried_deleted_entity,
    carried_entity,
    webhook_decode,
    webhook_route,
    webhook_verify,
)
from tests.wix_sdk_referee import Referee, wix_sdk  # noqa: F401 - fixture

pytestmark = [pytest.mark.wix_sdk, pytest.mark.django_db(transaction=True)]

# The SDK module (tests/wix_sdk/referee.mjs) that owns each kind of entity the portal routes.
SDK_MODULE = {
    "event": "events",
    "policy": "policies",
    "ticket_definition": "ticketDefinitions",
    "order": "orders",
}
# The SDK renames these keys at every depth (@wix/sdk-runtime, RESTResponseToSDKResponseRenameMap).
SDK_NAMES = {"_id": "id", "_createdDate": "createdDate", "_updatedDate": "updatedDate"}
MISSING_ID = "00000000-0000-4000-8000-000000000000"
ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


# --- comparing the SDK's view with the portal's -----------------------------------------------
def from_sdk(value: Any) -> Any:
    """The SDK's object with REST names again (``_id`` → ``id``, …)."""
    if isinstance(value, dict):
        return {SDK_NAMES.get(k, k): from_sdk(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_sdk(v) for v in value]
    return value


def canonical(value: Any) -> Any:
    """Date-times as UTC to the millisecond: the SDK turns them into JavaScript Dates, which
    write themselves back as ``…sssZ``; any other difference is a real one."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if isinstance(value, str) and ISO_DATETIME.match(value):
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)
        return when.isoformat(timespec="milliseconds")
    return value


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where two JSON values differ, by path (at most a few, to keep a failure readable)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found: list[str] = []
        for key in sorted(set(expected) | set(actual)):
            where = f"{path}.{key}" if path else key
            if key not in actual:
                found.append(f"{where}: missing in the SDK's view (portal: {expected[key]!r:.80})")
            elif key not in expected:
                found.append(f"{where}: only in the SDK's view ({actual[key]!r:.80})")
            else:
                found += differences(expected[key], actual[key], where)
        return found
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            d
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for d in differences(e, a, f"{path}[{i}]")
        ]
    return (
        [] if expected == actual else [f"{path or '<root>'}: portal {expected!r:.120} != SDK {actual!r:.120}"]
    )


def same(expected: Any, sdk_value: Any) -> list[str]:
    return differences(canonical(expected), canonical(from_sdk(sdk_value)))


def camel(*parts: str) -> str:
    return "".join(word.capitalize() for part in parts for word in part.split("_"))


# --- the sandbox ------------------------------------------------------------------------------
@pytest.fixture
def sandbox(live_server: Any, settings: Any) -> WixSite:
    settings.WIX_BACKOFF_BASE = 0.001
    settings.WIX_PAGE_SIZE = 2  # the portal pages too
    settings.SANDBOX_WEBHOOK_URL = f"{live_server.url}/webhooks/wix/"
    site = sandbox_seed()
    WixSite.objects.filter(pk=site.pk).update(api_base_url=f"{live_server.url}/sandbox/wix")
    site.refresh_from_db()
    return site


def _event_data(title: str, starts_in_days: int) -> dict[str, Any]:
    start = timezone.now() + dt.timedelta(days=starts_in_days)
    return {
        "title": title,
        "slug": title.lower().replace(" ", "-"),
        "status": "UPCOMING",
        "instanceId": SANDBOX_INSTANCE_ID,
        "dateAndTimeSettings": {
            "dateAndTimeTbd": False,
            "startDate": start.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "endDate": (start + dt.timedelta(hours=3))
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "timeZoneId": "Europe/Lisbon",
        },
        "location": {"name": "Cinema São Jorge", "type": "VENUE"},
        "registration": {"initialType": "TICKETING"},
    }


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _revision(kind: str, wix_id: str) -> str:
    from sync.sandbox.models import SandboxEntity

    return str(SandboxEntity.objects.get(kind=kind, wix_id=wix_id).data["revision"])


def _edit(kind: str, wix_id: str, **changes: Any) -> None:
    entity_update(kind=kind, wix_id=wix_id, changes={"revision": _revision(kind, wix_id), **changes})


def _scenario() -> None:
    """What a site's staff and buyers do: every kind of change the sandbox answers with a webhook."""
    now = timezone.now()
    event_id = entity_create(kind=Kind.EVENT, data=_event_data("Late Show", 40))["event"]["id"]
    policy_id = entity_create(
        kind=Kind.POLICY,
        data={"eventId": event_id, "name": "Late entry", "body": "<p>Doors close at 23:00.</p>"},
    )["policy"]["id"]
    td_id = entity_create(
        kind=Kind.TICKET_DEFINITION,
        data={
            "eventId": event_id,
            "name": "Night owl",
            "feeType": "FEE_INCLUDED",
            "initialLimit": 80,
            "pricingMethod": {
                "pricingOptions": {
                    "optionDetails": [
                        {"name": "Adult", "price": {"value": "12", "currency": "EUR"}},
                        {"name": "Student", "price": {"value": "8.5", "currency": "EUR"}},
                    ]
                }
            },
            "salePeriod": {
                "startDate": _iso(now + dt.timedelta(days=1)),
                "endDate": _iso(now + dt.timedelta(days=39)),
            },
        },
    )["ticketDefinition"]["id"]
    # Two edits of each, so that a sandbox that varies its deliveries shows each variant.
    for title in ("Late Show (extended)", "Late Show"):
        _edit(Kind.EVENT, event_id, title=title)
    for body in ("<p>Doors close at 23:30.</p>", "<p>No entry after 23:30.</p>"):
        _edit(Kind.POLICY, policy_id, body=body)
    _edit(Kind.TICKET_DEFINITION, td_id, name="Night owl (late)")
    _edit(
        Kind.TICKET_DEFINITION,
        td_id,
        salePeriod={
            "startDate": _iso(now - dt.timedelta(hours=1)),
            "endDate": _iso(now + dt.timedelta(days=30)),
        },
    )
    # Buyers: Order Confirmed, one order of two kinds of tickets.
    order_place(
        event_id=demo_id("event:spring-gala"),
        quantities={demo_id("td:spring-gala:ga"): 2, demo_id("td:spring-gala:vip"): 1},
    )
    # Time passes: the first sale opens and closes, others close (sale started / ended).
    sandbox_sale_transitions(now=now + dt.timedelta(days=45))
    # Staff clean up: deletions of each kind (the event last, as Wix would).
    entity_delete(kind=Kind.POLICY, wix_id=policy_id)
    entity_delete(kind=Kind.TICKET_DEFINITION, wix_id=td_id)
    entity_delete(kind=Kind.EVENT, wix_id=event_id)


def _deliver_all() -> list[tuple[SandboxWebhook, str]]:
    """Send every queued sandbox webhook to the live portal, in order; each with the exact body
    the portal received (as it stored it)."""
    delivered = []
    for hook in SandboxWebhook.objects.filter(status=SandboxWebhook.Status.PENDING).order_by("pk"):
        before = WebhookDelivery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        outcome = sandbox_webhook_send(webhook_id=hook.pk)
        hook.refresh_from_db()
        assert outcome == "sent", f"the portal refused {hook.event_type}: {hook.response_status} {hook.error}"
        stored = WebhookDelivery.objects.filter(pk__gt=before).get()
        delivered.append((hook, stored.raw_body))
    return delivered


def _carrier_form(data: dict[str, Any]) -> str:
    """How the envelope carries its entity or body: object, json (a string) or both."""
    for holder, names in {
        "createdEvent": ("entity", "entityAsJson"),
        "updatedEvent": ("currentEntity", "currentEntityAsJson"),
        "deletedEvent": ("deletedEntity", "deletedEntityAsJson"),
        "actionEvent": ("body", "bodyAsJson"),
    }.items():
        if holder in data:
            has = [isinstance(data[holder].get(n), str) for n in names if n in data[holder]]
            kinds = {"json" if is_string else "object" for is_string in has}
            return f"{holder}:{'+'.join(sorted(kinds)) or 'none'}"
    return "legacy"


# --- webhooks -------------------------------------------------------------------------------
def test_the_sdk_decodes_every_webhook_the_sandbox_sends_as_the_portal_does(
    wix_sdk: Referee,  # noqa: F811 - fixture
    sandbox: WixSite,
    settings: Any,
) -> None:
    settings.SANDBOX_WEBHOOK_CARRIERS = "alternate"  # the default, whatever the environment says
    _scenario()
    delivered = _deliver_all()
    jwts = [raw for _, raw in delivered]
    # Two controls, so that an agreement below means something. A body whose signature is not
    # the sandbox's: the SDK must refuse it. An entity carried only as the REST schema's JSON
    # string (the sandbox's "json" form): the portal reads it, the SDK's handler gets none.
    header, payload, _ = jwts[0].split(".")
    forged = ".".join([header, payload, jwts[-1].split(".")[2]])
    settings.SANDBOX_WEBHOOK_CARRIERS = "json"
    _edit(Kind.POLICY, demo_id("policy:jazz-night:age"), name="Age limit")
    [(_, json_only)] = _deliver_all()
    answer = wix_sdk.run(
        {
            "mode": "webhooks",
            "appId": "sandbox-app",
            "publicKey": sandbox_key().public_pem,
            "deliveries": [{"key": str(i), "jwt": jwt} for i, jwt in enumerate(jwts)]
            + [{"key": "forged", "jwt": forged}, {"key": "json-only", "jwt": json_only}],
        }
    )
    results = {r["key"]: r for r in answer["results"]}
    assert "error" in results["forged"], "the SDK accepted a body with another token's signature"
    assert "signature" in results["forged"]["error"]["message"].lower(), results["forged"]["error"]
    [control] = results["json-only"]["handlers"]
    assert carried_entity(webhook_decode(webhook_verify(json_only.encode())[1]).data)["name"] == "Age limit"
    assert (control["handler"], control["envelope"].get("entity")) == ("onPolicyUpdated", None)

    problems: list[str] = []
    seen: dict[str, set[str]] = {}
    for index, (hook, raw) in enumerate(delivered):
        _, claims = webhook_verify(raw.encode())
        decoded = webhook_decode(claims)
        assert (decoded.event_type, decoded.entity_id) == (hook.event_type, hook.entity_id)
        route = webhook_route(decoded.event_type, decoded.data)
        form = _carrier_form(decoded.data)
        seen.setdefault(decoded.event_type, set()).add(form)
        where = f"#{index} {decoded.event_type} {decoded.entity_id} ({form})"
        result = results[str(index)]
        if route is None:
            problems.append(f"{where}: the portal does not route this type")
            continue
        kind = next(k for k in SDK_MODULE if route.startswith(k))
        slug = "confirmed" if kind == "order" else str(decoded.data.get("slug"))
        expected_handler = (SDK_MODULE[kind], f"on{camel(kind, slug)}")
        if "error" in result:
            problems.append(f"{where}: the SDK refused it: {result['error']['message']:.200}")
            continue
        ran = [(h["module"], h["handler"]) for h in result["handlers"]]
        if ran != [expected_handler]:
            problems.append(f"{where}: the SDK ran {ran or 'no handler'}, expected {expected_handler}")
            continue
        envelope = result["handlers"][0]["envelope"]
        metadata = from_sdk(envelope.get("metadata") or {})
        if (result["eventType"], result["instanceId"]) != (decoded.event_type, decoded.instance_id):
            problems.append(
                f"{where}: the SDK read type/instance {result['eventType']}/{result['instanceId']}"
            )
        if kind == "order":
            # Legacy payload: the SDK hands the whole of it to the handler as `data`.
            problems += [f"{where}: data.{d}" for d in same(decoded.data, envelope.get("data"))]
            continue
        for field, value in (("id", decoded.event_id), ("entityId", decoded.entity_id), ("slug", slug)):
            if metadata.get(field) != value:
                problems.append(f"{where}: SDK metadata.{field} {metadata.get(field)!r} != portal {value!r}")
        if slug in ("created", "updated"):
            if envelope.get("entity") is None:
                problems.append(
                    f"{where}: the SDK's handler got no entity (it reads createdEvent.entity / "
                    f"updatedEvent.currentEntity; the sandbox sent {form})"
                )
            else:
                problems += [
                    f"{where}: entity.{d}" for d in same(carried_entity(decoded.data), envelope["entity"])
                ]
        elif slug == "deleted":
            # The portal needs only entityId; an entity the sandbox sent must read the same.
            deleted = carried_deleted_entity(decoded.data)
            if deleted and envelope.get("entity") is None:
                problems.append(
                    f"{where}: the SDK's handler got no entity (it reads deletedEvent.deletedEntity; "
                    f"the sandbox sent {form})"
                )
            elif deleted:
                problems += [f"{where}: entity.{d}" for d in same(deleted, envelope["entity"])]
        else:  # an action event: the SDK hands actionEvent.body to the handler as `data`
            body = carried_action_body(decoded.data)
            if envelope.get("data") is None:
                problems.append(
                    f"{where}: the SDK's handler got no data (it reads actionEvent.body; "
                    f"the sandbox sent {form})"
                )
            else:
                problems += [f"{where}: data.{d}" for d in same(body, envelope["data"])]
                td = (body or {}).get("ticketDefinition")
                if td is not None and td.get("id") != decoded.entity_id:
                    problems.append(f"{where}: the body's ticketDefinition.id {td.get('id')} != entityId")

    summary = "\n".join(f"  {t}: {sorted(forms)}" for t, forms in sorted(seen.items()))
    assert not problems, (
        f"{len(problems)} disagreement(s) between the SDK and the portal over {len(delivered)} deliveries:\n"
        + "\n".join(problems)
        + f"\nTypes and carrier forms the sandbox sent:\n{summary}"
    )
    # The scenario makes the sandbox send created/updated/deleted of every kind, the ticket
    # definitions' sale actions and an order: each was checked above, in every form it came in.
    wanted = [
        f"{fqdn}_{slug}"
        for fqdn in ("wix.events.v3.event", "wix.events.v2.policy", "wix.events.v3.ticket_definition")
        for slug in ("created", "updated", "deleted")
    ] + [
        f"wix.events.v3.ticket_definition_{slug}"
        for slug in ("sale_started", "sale_ended", "sale_period_updated")
    ]
    assert not set(wanted) - set(seen), f"the scenario sent none of {set(wanted) - set(seen)}:\n{summary}"
    assert any(webhook_route(t, {}) == "order_confirmed" for t in seen), summary


# --- REST -------------------------------------------------------------------------------------
def _backfill(site: WixSite) -> BackfillRun:
    run, _ = backfill_start(site=site, trigger=BackfillRun.Trigger.COMMAND)
    backfill_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.errors
    return run


def test_the_sdk_reads_the_sandbox_as_the_portal_mirrors_it(
    wix_sdk: Referee,  # noqa: F811 - fixture
    sandbox: WixSite,
    live_server: Any,
    settings: Any,
) -> None:
    # Revisions past 1, sold tickets, a new and a deleted policy: what a Get or Query must show.
    entity_create(
        kind=Kind.POLICY,
        data={"eventId": demo_id("event:spring-gala"), "name": "Dress code", "body": "<p>Black tie.</p>"},
    )
    _edit(Kind.POLICY, demo_id("policy:spring-gala:refund"), name="Refunds")
    _edit(Kind.TICKET_DEFINITION, demo_id("td:jazz-night:standard"), description="Seated, unnumbered.")
    order_place(event_id=demo_id("event:spring-gala"), quantities={demo_id("td:spring-gala:vip"): 3})
    entity_delete(kind=Kind.POLICY, wix_id=demo_id("policy:open-air-cinema:weather"))
    _backfill(sandbox)
    page_size = 2
    answer = wix_sdk.run(
        {
            "mode": "rest",
            "baseUrl": f"{live_server.url}/sandbox/wix",
            "siteId": SANDBOX_SITE_ID,
            "apiKey": settings.WIX_SANDBOX_API_KEY,
            "pageSize": page_size,
            "oauth": {
                "appId": "sandbox-app",
                "appSecret": "sandbox-secret",
                "instanceId": SANDBOX_INSTANCE_ID,
            },
            "missingId": MISSING_ID,
        }
    )
    problems: list[str] = []

    def compare(what: str, mirror: Any, sdk_items: list[Any]) -> None:
        mirrored = list(mirror)
        got = [from_sdk(item) for item in sdk_items]
        if [m.wix_id for m in mirrored] != [g.get("id") for g in got]:
            problems.append(
                f"{what}: SDK ids {[g.get('id') for g in got]} != mirrored {[m.wix_id for m in mirrored]}"
            )
            return
        for row, item in zip(mirrored, sdk_items, strict=True):
            problems.extend(f"{what} {row.wix_id}: {d}" for d in same(row.raw, item))
            sdk_revision = from_sdk(item).get("revision")
            if row.revision is not None and str(row.revision) != sdk_revision:
                problems.append(
                    f"{what} {row.wix_id}: SDK revision {sdk_revision!r} != mirror {row.revision}"
                )

    live = {"deleted_at__isnull": True}
    events = answer["events"]["pages"]
    compare(
        "events",
        Event.objects.filter(**live).order_by("wix_created_date", "wix_id"),
        [e for p in events for e in p],
    )
    for event in Event.objects.filter(**live):
        compare(
            f"policies of {event.title}",
            Policy.objects.filter(event_wix_id=event.wix_id, **live).order_by("wix_created_date", "wix_id"),
            [p for page in answer["policies"][event.wix_id] for p in page],
        )
        compare(
            f"ticket definitions of {event.title}",
            TicketDefinition.objects.filter(event_wix_id=event.wix_id, **live).order_by(
                "wix_created_date", "wix_id"
            ),
            [t for page in answer["ticketDefinitions"][event.wix_id] for t in page],
        )
    for key, model in (("events", Event), ("policies", Policy), ("ticketDefinitions", TicketDefinition)):
        got = answer["get"][key]
        mirrored = {m.wix_id: m for m in model.objects.filter(**live)}
        if set(got) != set(mirrored):
            problems.append(f"Get {key}: the SDK got {sorted(got)} but the portal mirrors {sorted(mirrored)}")
        for wix_id, item in got.items():
            if wix_id in mirrored:
                problems.extend(f"Get {key} {wix_id}: {d}" for d in same(mirrored[wix_id].raw, item))
    assert not problems, "\n".join(problems)

    # Ticket definitions: the sales details came through both Query and Get, with the sale.
    vip = TicketDefinition.objects.get(wix_id=demo_id("td:spring-gala:vip"))
    assert (vip.sold_count, vip.unsold_count) == (3, 2)
    assert answer["get"]["ticketDefinitions"][vip.wix_id]["salesDetails"] == vip.raw["salesDetails"]
    assert all(
        "salesDetails" in td
        for pages in answer["ticketDefinitions"].values()
        for page in pages
        for td in page
    )
    assert (
        answer["oauthGet"]["salesDetails"]
        == TicketDefinition.objects.get(wix_id=answer["oauthGet"]["_id"]).raw["salesDetails"]
    )
    assert answer["missing"]["error"]["status"] == 404, answer["missing"]
    assert Policy.objects.filter(wix_id=demo_id("policy:open-air-cinema:weather")).count() == 0
    assert Policy.objects.get(wix_id=demo_id("policy:spring-gala:refund")).revision == 2

    # Paging happened, each family in its own way: offset for events, cursors for the rest.
    queries = [r for r in answer["requests"] if r["path"].endswith("/query")]
    event_pages = [r["body"]["query"].get("paging", {}) for r in queries if "/events/v3/events" in r["path"]]
    assert [p.get("offset") for p in event_pages] == list(
        range(0, Event.objects.filter(**live).count(), page_size)
    )
    assert all(p.get("limit") == page_size for p in event_pages)
    for family in ("policies", "ticket-definitions"):
        asked = [r["body"]["query"] for r in queries if f"/{family}/" in r["path"]]
        followed = [q for q in asked if q.get("cursorPaging", {}).get("cursor")]
        assert followed, f"the SDK never followed a {family} cursor: {asked}"
        assert all("filter" not in q for q in followed)  # a cursor carries the filter
    assert all(r["status"] == 200 for r in answer["requests"] if MISSING_ID not in r["path"])
    assert {
        r["path"].split("?")[0].rsplit("/", 1)[0] for r in answer["requests"] if r["method"] == "GET"
    } >= {
        "/events-policies/v2/policies",
        "/events-ticket-definitions/v3/ticket-definitions",
        "/events/v3/events",
    }
    assert all(
        "fields=SALES_DETAILS" in r["path"]
        for r in answer["requests"]
        if r["method"] == "GET" and "/ticket-definitions/" in r["path"]
    )
    assert any(r["path"] == "/oauth2/token" for r in answer["requests"])
