from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache, caches
from django.test import Client

from notifications.models import CounterPush, TicketCounter
from sync.clients.wix import WixAuth, WixClient
from sync.models import (
    BackfillRun,
    ExternalEndpoint,
    ExternalLink,
    ExternalSystem,
    LinkRepair,
    OutboundWork,
    ReconciliationRun,
    SyncLog,
    TicketDefinitionRefresh,
    WebhookDelivery,
    WixSite,
)
from sync.sandbox.demo import sandbox_seed
from sync.sandbox.models import SandboxTicketingRecord, SandboxWebhook
from sync.services.mirrors import (
    event_upsert_from_wix,
    policy_upsert_from_wix,
    ticket_definition_upsert_from_wix,
)

FIXTURES = Path(__file__).parent / "fixtures"
WIX = "https://wix.test"
SITE_ID = "0a1b2c3d-0000-4000-8000-000000000001"


def wix_payload(name: str) -> dict[str, Any]:
    """A Wix payload file, named ``<entity>__<variant>.json``."""
    return json.loads((FIXTURES / "wix" / f"{name}.json").read_text())


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Each test starts with no cached values and no per-process memory of wake-ups or
    webhook keys (they would coalesce or serve across tests)."""
    from notifications.counters.services import counters_local_forget
    from portal.jobs import wakes_forget
    from sync.services.webhooks import verifiers_forget

    cache.clear()
    caches["counters"].clear()
    counters_local_forget()
    wakes_forget()
    verifiers_forget()


@pytest.fixture
def sleeps() -> list[float]:
    """Collects the pauses a client would have slept, so retry tests take no time."""
    return []


@pytest.fixture
def wix(sleeps: list[float]) -> WixClient:
    return WixClient(
        site_id=SITE_ID,
        auth=WixAuth(api_key="test-key"),
        base_url=WIX,
        page_size=2,
        sleep=sleeps.append,
        max_retries=3,
    )


@pytest.fixture
def site(db: None, monkeypatch: pytest.MonkeyPatch) -> WixSite:
    monkeypatch.setenv("WIX_TEST_API_KEY", "test-key")
    return WixSite.objects.create(
        name="Test site",
        site_id=SITE_ID,
        instance_id="inst-1",
        api_key_env="WIX_TEST_API_KEY",
        api_base_url=WIX,
    )


# --- personas ---------------------------------------------------------------------------
# Who may do what: anonymous, staff with no permission, the two roles the roles migration
# makes (sync/migrations/0012_roles.py), and a superuser. Permission tests take ``persona``
# (parametrised over all five) or one of the named fixtures.
PERSONAS = ("anonymous", "staff", "viewer", "operator", "superuser")


def _staff(username: str, group: str | None = None) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", f"pw-{username}-123", is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def admin_user(db: None) -> User:
    return User.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")


@pytest.fixture
def staff(db: None) -> User:
    """Staff with no permission at all: may log in, may see nothing."""
    return _staff("staff")


@pytest.fixture
def viewer(db: None) -> User:
    """Sync viewers: read everything but secrets, trigger nothing."""
    return _staff("viewer", "Sync viewers")


@pytest.fixture
def operator(db: None) -> User:
    """Sync operators: edit mappings and links, start backfills, resyncs, replays, tests."""
    return _staff("operator", "Sync operators")


@pytest.fixture
def editor(operator: User) -> User:
    return operator


@pytest.fixture(params=PERSONAS)
def persona(request: pytest.FixtureRequest, db: None) -> tuple[str, User | None]:
    """Each persona in turn, as (name, user); the user is None for anonymous."""
    name = request.param
    fixture = {"superuser": "admin_user"}.get(name, name)
    return name, None if name == "anonymous" else request.getfixturevalue(fixture)


def sandbox_mirrored() -> WixSite:
    """The sandbox site's demo data mirrored (read in-process, no HTTP), as after the quick
    start's backfill; the sandbox ticketing system with its default mappings exists too."""
    from sync.sandbox.services import Kind, entity_query

    site = sandbox_seed()
    for data in entity_query(kind=Kind.EVENT, body={"query": {}})["events"]:
        event_upsert_from_wix(site=site, data=data)
    for data in entity_query(kind=Kind.POLICY, body={"query": {}})["policies"]:
        policy_upsert_from_wix(site=site, data=data)
    for data in entity_query(kind=Kind.TICKET_DEFINITION, body={"query": {}, "fields": ["SALES_DETAILS"]})[
        "ticketDefinitions"
    ]:
        ticket_definition_upsert_from_wix(site=site, data=data)
    return site


def rest_target(
    *,
    name: str = "T",
    base_url: str = "https://t.test",
    path: str = "p",
    mappings: Iterable[tuple[str, str]] = (("name", "title"),),
    **fields: Any,
) -> ExternalSystem:
    """A generic REST system that takes policies: POST ``path``, PUT and DELETE
    ``path/{external_id}``, with text mappings (Wix field, target field)."""
    system = ExternalSystem.objects.create(name=name, base_url=base_url, **{"auth_type": "none", **fields})
    ExternalEndpoint.objects.create(
        system=system,
        entity_type="policy",
        create_path=path,
        update_path=f"{path}/{{external_id}}",
        delete_path=f"{path}/{{external_id}}",
    )
    for source, target in mappings:
        system.mappings.create(entity_type="policy", source_path=source, target_field=target)
    return system


def client_for(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def admin_client(admin_user: User) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def filled(site: WixSite) -> WixSite:
    """One row of every kind the admin shows."""
    sandbox_seed()
    event_upsert_from_wix(site=site, data=wix_payload("event__query")["events"][0])
    policy_upsert_from_wix(site=site, data=wix_payload("policy__get")["policy"])
    ticket_definition_upsert_from_wix(
        site=site, data=wix_payload("ticket_definition__fixed_price")["ticketDefinition"]
    )
    BackfillRun.objects.create(
        site=site, trigger="admin", status="failed", errors=[{"where": "site", "error": "x"}]
    )
    WebhookDelivery.objects.create(
        site=site,
        wix_event_id="evt-1",
        event_type="wix.events.v2.policy_updated",
        raw_body="a.b.c",
        payload={"eventType": "x"},
    )
    SandboxWebhook.objects.create(event_type="wix.events.v2.policy_updated", envelope={"id": "1"})
    system = ExternalSystem.objects.get(name="Sandbox ticketing")
    link = ExternalLink.objects.create(
        system=system, site=site, entity_type="policy", wix_id="p", external_id="e"
    )
    LinkRepair.objects.create(link=link, old_external_id="d", new_external_id="e", reason="test")
    work = OutboundWork.objects.create(
        system=system, site=site, entity_type="policy", wix_id="p", trigger="backfill"
    )
    SyncLog.objects.create(
        work=work, system=system, entity_type="policy", wix_id="p", trigger="backfill", action="create"
    )
    ReconciliationRun.objects.create(site=site, healed=[{"wix_id": "p", "healed": "missed deletion"}])
    SandboxTicketingRecord.objects.create(collection="policies", record_id="e", data={"title": "x"})
    counter = TicketCounter.objects.create(
        site=site,
        slug="filled",
        ticket_definition_wix_id=wix_payload("ticket_definition__fixed_price")["ticketDefinition"]["id"],
    )
    CounterPush.objects.create(counter=counter, payload={"slug": "filled"}, status="failed", last_error="x")
    TicketDefinitionRefresh.objects.create(site=site, wix_id=counter.ticket_definition_wix_id, orders=3)
    return site


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Transactional tests that restore the migrated data (``serialized_rollback``: the browser
    tests, which need the roles the data migrations create) run before the other transactional
    tests. A plain transactional test's flush re-creates content types and permissions under new
    ids (post_migrate), and restoring the serialized rows after that collides with them; run
    first, the restore only meets the rows it was taken from. pytest-django has already put the
    transactional tests last; this stable sort keeps its order otherwise."""

    def restores_first(item: pytest.Item) -> int:
        marker = item.get_closest_marker("django_db")
        return 0 if marker is not None and marker.kwargs.get("serialized_rollback") else 1

    def transactional(item: pytest.Item) -> bool:
        marker = item.get_closest_marker("django_db")
        if marker is not None and marker.kwargs.get("transaction"):
            return True
        return bool({"transactional_db", "live_server"} & set(getattr(item, "fixturenames", ())))

    first = next((i for i, item in enumerate(items) if transactional(item)), None)
    if first is not None:
        items[first:] = sorted(items[first:], key=restores_first)
