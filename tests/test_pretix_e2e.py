"""The sandbox Wix site into a real pretix, and back out through pretix's API.

Select these alone with ``bash scripts/test.sh -m pretix``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sync.models import (
    BackfillRun,
    ExternalLink,
    ExternalSystem,
    FieldMapping,
    LinkRepair,
    OutboundWork,
    SyncLog,
    WebhookDelivery,
    WixSite,
)
from sync.sandbox.demo import demo_id, sandbox_seed
from sync.sandbox.models import SandboxWebhook
from sync.sandbox.services import Kind, entity_create, entity_delete, entity_update, sandbox_webhook_send
from sync.services.backfill import backfill_execute, backfill_start
from sync.services.pretix import pretix_system_ensure
from sync.services.push import push_drain
from sync.services.webhook_handlers import webhook_process
from tests.browser import browser  # noqa: F401 - fixture
from tests.pretix_server import Pretix, pretix, pretix_server  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pretix, pytest.mark.e2e]

TOKEN_ENV = "EXTERNAL_PRETIX_TOKEN"


@pytest.fixture
def synced(
    pretix: Pretix,  # noqa: F811
    live_server: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[WixSite, ExternalSystem]:
    """The sandbox backfilled into pretix (the generic sandbox ticketing system switched off)."""
    settings.WIX_BACKOFF_BASE = 0.001
    settings.SANDBOX_WEBHOOK_URL = f"{live_server.url}/webhooks/wix/"
    monkeypatch.setenv(TOKEN_ENV, pretix.token)
    site = sandbox_seed()
    WixSite.objects.filter(pk=site.pk).update(api_base_url=f"{live_server.url}/sandbox/wix")
    site.refresh_from_db()
    ExternalSystem.objects.update(is_active=False)
    system = pretix_system_ensure(url=pretix.url, organizer=pretix.organizer, token_env=TOKEN_ENV)
    run, _ = backfill_start(site=site, trigger=BackfillRun.Trigger.COMMAND)
    backfill_execute(run_id=run.pk)
    _drain()
    return site, system


def _drain() -> None:
    push_drain(budget_seconds=120)
    dead = list(OutboundWork.objects.filter(status="dead").values_list("entity_type", "wix_id", "last_error"))
    assert not dead, dead


def _webhooks() -> list[str]:
    """Send what the sandbox queued as signed webhooks, process them, push the result."""
    outcomes = []
    for hook in SandboxWebhook.objects.exclude(status="sent").order_by("pk"):
        assert sandbox_webhook_send(webhook_id=hook.pk) == "sent"
    for delivery in WebhookDelivery.objects.filter(status="received").order_by("pk"):
        outcomes.append(webhook_process(delivery_id=delivery.pk))
    _drain()
    return outcomes


def _event(pretix: Pretix, key: str) -> dict[str, Any]:  # noqa: F811
    slug = ExternalLink.objects.get(entity_type="event", wix_id=demo_id(f"event:{key}")).external_id
    return pretix.get(f"events/{slug}/")


def _item(pretix: Pretix, key: str) -> tuple[dict[str, Any], dict[str, Any]]:  # noqa: F811
    """The pretix item and quota linked to a demo ticket definition, read through pretix's API."""
    slug, item_id, quota_id = ExternalLink.objects.get(wix_id=demo_id(f"td:{key}")).external_id.split("/")
    return pretix.get(f"events/{slug}/items/{item_id}/"), pretix.get(f"events/{slug}/quotas/{quota_id}/")


def _confirm_texts(pretix: Pretix, event_key: str) -> list[str]:  # noqa: F811
    slug = _event(pretix, event_key)["slug"]
    return [text["en"] for text in pretix.get(f"events/{slug}/settings/")["confirm_texts"]]


def test_backfill_builds_events_items_quotas_and_confirm_texts(
    synced: tuple[WixSite, ExternalSystem],
    pretix: Pretix,  # noqa: F811
) -> None:
    events = pretix.results("events/")
    assert sorted(e["slug"] for e in events) == ["jazz-night", "open-air-cinema", "spring-gala"]
    gala = _event(pretix, "spring-gala")
    assert gala["name"] == {"en": "Spring Gala"} and gala["currency"] == "EUR"
    assert gala["meta_data"]["wix_event_id"] == demo_id("event:spring-gala")
    assert gala["location"] == {"en": "Teatro Nacional"} and gala["timezone"] == "Europe/Lisbon"
    assert {"wix_ticket_definition_id", "wix_option_id"} <= gala["item_meta_properties"].keys()

    ga, ga_quota = _item(pretix, "spring-gala:ga")
    assert ga["name"] == {"en": "General Admission"} and ga["default_price"] == "25.00"
    assert ga["description"] == {"en": "Standing area, doors at 19:00."}
    assert ga["active"] is True and ga["admission"] is True and ga["free_price"] is False
    assert ga["meta_data"]["wix_ticket_definition_id"] == demo_id("td:spring-gala:ga")
    assert ga["available_from"] is not None and ga["available_until"] is not None
    assert ga_quota["size"] == 200 and ga_quota["items"] == [ga["id"]]

    seated, seated_quota = _item(pretix, "spring-gala:seated")
    assert [(v["value"]["en"], v["default_price"]) for v in seated["variations"]] == [
        ("Adult", "40.00"),
        ("Child", "20.00"),
    ]
    assert [v["meta_data"]["wix_option_id"] for v in seated["variations"]] == [
        demo_id("opt:gala:adult"),
        demo_id("opt:gala:child"),
    ]
    assert seated["default_price"] == "20.00"
    assert seated_quota["size"] == 120
    assert sorted(seated_quota["variations"]) == sorted(v["id"] for v in seated["variations"])

    supporter, supporter_quota = _item(pretix, "jazz-night:supporter")
    assert supporter["free_price"] is True and supporter["default_price"] == "10.00"
    assert supporter_quota["size"] is None  # no Wix limit: unlimited
    blanket, _ = _item(pretix, "open-air-cinema:blanket")
    assert blanket["active"] is False and blanket["default_price"] == "8.50"
    free, _ = _item(pretix, "open-air-cinema:free")
    assert Decimal(free["default_price"]) == 0

    assert _confirm_texts(pretix, "spring-gala") == [
        "**Refund policy**\n\nFull refund up to 7 days before the event; 50% afterwards.",
        "**Code of conduct**\n\nBe kind. Harassment of any kind is not tolerated.",
    ]
    assert [t.split("\n")[0] for t in _confirm_texts(pretix, "open-air-cinema")] == [
        "**Refund policy**",
        "**Weather**",
        "**Accessibility**",
    ]
    assert ExternalLink.objects.filter(entity_type="event").count() == 3
    assert ExternalLink.objects.filter(entity_type="ticket_definition").count() == 8
    assert ExternalLink.objects.filter(entity_type="policy").count() == 6
    for event in events:
        slug = event["slug"]
        linked = ExternalLink.objects.filter(
            entity_type="ticket_definition", external_id__startswith=f"{slug}/"
        )
        assert len(pretix.results(f"events/{slug}/items/")) == linked.count()
        assert len(pretix.results(f"events/{slug}/quotas/")) == linked.count()

    # A second backfill finds nothing to change and makes no call to pretix.
    calls = SyncLog.objects.count()
    run, _ = backfill_start(site=synced[0], trigger=BackfillRun.Trigger.COMMAND)
    backfill_execute(run_id=run.pk)
    _drain()
    assert SyncLog.objects.count() == calls


def test_webhook_updates_and_deletes_change_the_right_pretix_records(
    synced: tuple[WixSite, ExternalSystem],
    pretix: Pretix,  # noqa: F811
) -> None:
    links_before = dict(ExternalLink.objects.values_list("wix_id", "external_id"))
    entity_update(
        kind=Kind.TICKET_DEFINITION,
        wix_id=demo_id("td:spring-gala:vip"),
        changes={
            "revision": "1",
            "name": "VIP Lounge",
            "initialLimit": 8,
            "pricingMethod": {"fixedPrice": {"value": "150.00", "currency": "EUR"}},
        },
    )
    entity_update(
        kind=Kind.TICKET_DEFINITION,
        wix_id=demo_id("td:spring-gala:seated"),
        changes={
            "revision": "1",
            "pricingMethod": {
                "pricingOptions": {
                    "optionDetails": [
                        {
                            "optionId": demo_id("opt:gala:adult"),
                            "name": "Adult",
                            "price": {"value": "45.00", "currency": "EUR"},
                        },
                        {
                            "optionId": demo_id("opt:gala:senior"),
                            "name": "Senior",
                            "price": {"value": "30.00", "currency": "EUR"},
                        },
                    ]
                }
            },
        },
    )
    entity_update(
        kind=Kind.POLICY,
        wix_id=demo_id("policy:spring-gala:refund"),
        changes={"revision": "1", "body": "<p>No refunds.</p>"},
    )
    entity_delete(kind=Kind.POLICY, wix_id=demo_id("policy:open-air-cinema:weather"))
    entity_delete(kind=Kind.TICKET_DEFINITION, wix_id=demo_id("td:jazz-night:supporter"))
    entity_create(
        kind=Kind.POLICY,
        data={"eventId": demo_id("event:jazz-night"), "name": "Photography", "body": "<p>No flash.</p>"},
    )
    entity_update(
        kind=Kind.EVENT,
        wix_id=demo_id("event:spring-gala"),
        changes={"revision": "1", "title": "Spring Gala 2027"},
    )
    outcomes = _webhooks()
    assert sorted(outcomes) == ["created", "deleted", "deleted", "updated", "updated", "updated", "updated"]
    gala = _event(pretix, "spring-gala")
    assert gala["name"] == {"en": "Spring Gala 2027"} and gala["slug"] == "spring-gala"

    vip, vip_quota = _item(pretix, "spring-gala:vip")
    assert vip["name"] == {"en": "VIP Lounge"} and vip["default_price"] == "150.00"
    assert vip_quota["size"] == 8
    seated, seated_quota = _item(pretix, "spring-gala:seated")
    assert [(v["value"]["en"], v["default_price"]) for v in seated["variations"]] == [
        ("Adult", "45.00"),
        ("Senior", "30.00"),
    ]
    assert sorted(seated_quota["variations"]) == sorted(v["id"] for v in seated["variations"])
    assert _confirm_texts(pretix, "spring-gala") == [
        "**Refund policy**\n\nNo refunds.",
        "**Code of conduct**\n\nBe kind. Harassment of any kind is not tolerated.",
    ]
    assert [t.split("\n")[0] for t in _confirm_texts(pretix, "open-air-cinema")] == [
        "**Refund policy**",
        "**Accessibility**",
    ]
    assert _confirm_texts(pretix, "jazz-night") == [
        "**Age restriction**\n\nGuests must be 16 or older.",
        "**Photography**\n\nNo flash.",
    ]
    slug, item_id, quota_id = links_before[demo_id("td:jazz-night:supporter")].split("/")
    session = pretix.session()
    assert session.get(f"{pretix.api}/events/{slug}/items/{item_id}/", timeout=30).status_code == 404
    assert session.get(f"{pretix.api}/events/{slug}/quotas/{quota_id}/", timeout=30).status_code == 404
    assert ExternalLink.objects.get(wix_id=demo_id("td:jazz-night:supporter")).deleted_at is not None
    # Updates never rewrite a link.
    for wix_id, external_id in links_before.items():
        assert ExternalLink.objects.get(wix_id=wix_id).external_id == external_id


def test_a_record_deleted_in_pretix_is_recreated_and_the_link_repaired_with_a_reason(
    synced: tuple[WixSite, ExternalSystem],
    pretix: Pretix,  # noqa: F811
) -> None:
    old = ExternalLink.objects.get(wix_id=demo_id("td:spring-gala:ga")).external_id
    slug, item_id, _ = old.split("/")
    assert (
        pretix.session().delete(f"{pretix.api}/events/{slug}/items/{item_id}/", timeout=30).status_code == 204
    )
    entity_update(
        kind=Kind.TICKET_DEFINITION,
        wix_id=demo_id("td:spring-gala:ga"),
        changes={"revision": "1", "name": "GA"},
    )
    _webhooks()
    link = ExternalLink.objects.get(wix_id=demo_id("td:spring-gala:ga"))
    assert link.external_id != old
    item, quota = _item(pretix, "spring-gala:ga")
    assert item["name"] == {"en": "GA"} and quota["size"] == 200 and quota["items"] == [item["id"]]
    repair = LinkRepair.objects.get(link=link)
    assert (repair.old_external_id, repair.new_external_id) == (old, link.external_id)
    assert "recreated" in repair.reason and repair.user is None
    assert SyncLog.objects.filter(wix_id=link.wix_id, note__contains="recreated").exists()
    assert OutboundWork.objects.filter(wix_id=link.wix_id, outcome="recreated").count() == 1


def test_pretix_validation_errors_are_dead_letters_and_an_outage_is_retried(
    synced: tuple[WixSite, ExternalSystem],
    pretix: Pretix,  # noqa: F811
) -> None:
    _, system = synced
    FieldMapping.objects.create(
        system=system,
        entity_type="ticket_definition",
        target_field="tax_rule",
        transform="constant",
        argument="999999",
    )
    entity_update(
        kind=Kind.TICKET_DEFINITION, wix_id=demo_id("td:spring-gala:vip"), changes={"revision": "1"}
    )
    _send_and_process()
    push_drain(budget_seconds=60)
    dead = OutboundWork.objects.get(status="dead")
    assert dead.wix_id == demo_id("td:spring-gala:vip")
    assert "tax_rule" in dead.last_error and "999999" in dead.last_error
    FieldMapping.objects.filter(target_field="tax_rule").delete()

    # pretix "down": nothing listens where the system points.
    url = system.base_url
    ExternalSystem.objects.filter(pk=system.pk).update(base_url="http://127.0.0.1:9")
    entity_update(
        kind=Kind.TICKET_DEFINITION,
        wix_id=demo_id("td:jazz-night:early"),
        changes={"revision": "1", "name": "Early"},
    )
    _send_and_process()
    push_drain(budget_seconds=60)
    waiting = OutboundWork.objects.get(wix_id=demo_id("td:jazz-night:early"), status="pending")
    assert waiting.attempts == 1 and "Connection" in waiting.last_error
    ExternalSystem.objects.filter(pk=system.pk).update(base_url=url)
    OutboundWork.objects.filter(status="pending").update(not_before=None)  # time passes
    _drain_ignoring_dead()
    early, _ = _item(pretix, "jazz-night:early")
    assert early["name"] == {"en": "Early"}
    assert len(pretix.results(f"events/{_event(pretix, 'jazz-night')['slug']}/items/")) == 3


def _send_and_process() -> None:
    for hook in SandboxWebhook.objects.exclude(status="sent").order_by("pk"):
        sandbox_webhook_send(webhook_id=hook.pk)
    for delivery in WebhookDelivery.objects.filter(status="received").order_by("pk"):
        webhook_process(delivery_id=delivery.pk)


def _drain_ignoring_dead() -> None:
    push_drain(budget_seconds=60)
    assert not OutboundWork.objects.filter(status="pending").exists()


@pytest.mark.browser
def test_staff_connect_a_pretix_in_the_admin_and_test_the_connection(
    pretix: Pretix,  # noqa: F811
    browser: Any,  # noqa: F811
    live_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.contrib.auth.models import User
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    monkeypatch.setenv(TOKEN_ENV, pretix.token)  # the live server runs in this process
    User.objects.create_superuser("staff", "staff@example.com", "a-long-password-1")
    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("staff")
    browser.find_element(By.NAME, "password").send_keys("a-long-password-1")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda d: "log out" in d.page_source.lower())

    browser.get(f"{live_server.url}/admin/sync/externalsystem/add/")
    browser.find_element(By.NAME, "name").send_keys("Box office")
    Select(browser.find_element(By.NAME, "kind")).select_by_value("pretix")
    browser.find_element(By.NAME, "base_url").send_keys(pretix.url)
    Select(browser.find_element(By.NAME, "auth_type")).select_by_value("token")
    browser.find_element(By.NAME, "auth_secret_env").send_keys(TOKEN_ENV)
    browser.find_element(By.NAME, "organizer").send_keys(pretix.organizer)
    browser.find_element(By.NAME, "_save").click()
    WebDriverWait(browser, 10).until(lambda d: "Default pretix mappings added" in d.page_source)
    system = ExternalSystem.objects.get(name="Box office")
    assert system.mappings.count() == 18

    browser.find_element(By.CSS_SELECTOR, f"input[name=_selected_action][value='{system.pk}']").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("test_connection")
    browser.find_element(By.NAME, "index").click()
    WebDriverWait(browser, 30).until(lambda d: "Create events" in d.page_source)
    successes = [m.text for m in browser.find_elements(By.CSS_SELECTOR, ".messagelist .success")]
    assert "Box office: API token and organizer: Organizer 'demo'." in successes
    assert "Box office: Create events: granted" in successes
    assert not browser.find_elements(By.CSS_SELECTOR, ".messagelist .error")


def test_the_quick_start_connects_the_pretix_named_in_the_environment(
    pretix: Pretix,  # noqa: F811
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from io import StringIO

    from django.core.management import call_command

    settings.PORTAL_SANDBOX = True
    settings.DEBUG = True
    monkeypatch.setenv("PRETIX_URL", pretix.url)
    monkeypatch.setenv("PRETIX_ORGANIZER", pretix.organizer)
    monkeypatch.setenv(TOKEN_ENV, pretix.token)
    out = StringIO()
    call_command("quickstart", "--no-serve", stdout=out)
    system = ExternalSystem.objects.get(kind="pretix")
    assert (system.base_url, system.organizer, system.auth_secret_env) == (pretix.url, "demo", TOKEN_ENV)
    assert "[ok] Create events: granted" in out.getvalue()

    monkeypatch.setenv(TOKEN_ENV, "not-the-token")
    with pytest.raises(Exception, match="pretix is not ready"):
        call_command("pretix_connect", url=pretix.url, organizer="demo", stdout=out)
    assert "[MISSING] API token: pretix rejected the token (401)." in out.getvalue()
