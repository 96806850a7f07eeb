"""The console as staff use it, in headless Chromium at 1400 px against a live server.

An operator sees a dead letter in the banner, opens it, retries it and sees the banner clear;
runs a dry run and a resync; replays a failed delivery. A viewer sees the same console but no
secret and no button that changes anything. No page scrolls sideways. Screenshots of the
dashboard and a timeline land in ``SCREENSHOT_DIR`` (default ``var/screenshots``).
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from sync.models import (
    Event,
    ExternalSystem,
    OutboundWork,
    Policy,
    TicketDefinition,
    WebhookDelivery,
    WixSite,
)
from sync.services.push import push_drain
from sync.services.webhook_handlers import webhook_drain
from tests.browser import browser, login, screenshot, sideways_scrolling  # noqa: F401 - fixture
from tests.conftest import sandbox_mirrored

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "a-long-password-1"


@pytest.fixture
def demo(live_server: object, monkeypatch: pytest.MonkeyPatch, settings: object) -> WixSite:
    """The quick start's data: the sandbox site mirrored and pushed to the sandbox ticketing."""
    monkeypatch.setenv("EXTERNAL_SANDBOX_TOKEN", settings.EXTERNAL_SANDBOX_TOKEN)  # type: ignore[attr-defined]
    site = sandbox_mirrored()
    ExternalSystem.objects.filter(name="Sandbox ticketing").update(
        base_url=f"{live_server.url}/sandbox/ticketing"  # type: ignore[attr-defined]
    )
    return site


def _user(username: str, group: str) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def _wait_for(driver: object, text: str) -> None:
    WebDriverWait(driver, 10).until(lambda d: text in d.page_source)


def _changelist_action(driver: object, base: str, page: str, pks: list[int], action: str) -> None:
    driver.get(f"{base}/admin/sync/{page}/")  # type: ignore[attr-defined]
    for pk in pks:
        driver.find_element(By.CSS_SELECTOR, f"input.action-select[value='{pk}']").click()  # type: ignore[attr-defined]
    Select(driver.find_element(By.NAME, "action")).select_by_value(action)  # type: ignore[attr-defined]
    driver.find_element(By.CSS_SELECTOR, "button[name=index]").click()  # type: ignore[attr-defined]


def test_an_operator_retries_a_dead_letter_from_the_banner_and_the_banner_clears(
    browser: object,  # noqa: F811
    live_server: object,
    demo: WixSite,
) -> None:
    driver, base = browser, live_server.url  # type: ignore[attr-defined]
    policy = Policy.objects.order_by("pk").first()
    assert policy is not None
    system = ExternalSystem.objects.get(name="Sandbox ticketing")
    dead = OutboundWork.objects.create(
        system=system,
        site=demo,
        entity_type="policy",
        wix_id=policy.wix_id,
        trigger="webhook",
        status="dead",
        attempts=8,
        last_error="503 Service Unavailable: the box office was down",
    )
    _user("olivia", "Sync operators")
    login(driver, base, "olivia", PASSWORD)

    banner = driver.find_element(By.ID, "status-banner")  # type: ignore[attr-defined]
    assert "Needs attention" in banner.text and "1 dead letter(s)" in banner.text
    assert sideways_scrolling(driver) == []
    screenshot(driver, "console-dashboard-dead-letter")
    banner.find_element(By.PARTIAL_LINK_TEXT, "dead letter").click()

    _wait_for(driver, "Select outbound work")
    rows = driver.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")  # type: ignore[attr-defined]
    assert len(rows) == 1 and policy.name in rows[0].text and "box office was down" in rows[0].text
    rows[0].find_element(By.LINK_TEXT, f"#{dead.pk}").click()

    _wait_for(driver, "Dead letter: this push gave up after 8 attempts")
    entity = driver.find_element(By.CSS_SELECTOR, ".field-entity a")  # type: ignore[attr-defined]
    assert entity.text == policy.name
    screenshot(driver, "console-dead-letter")
    driver.find_element(By.ID, "retry-now").click()  # type: ignore[attr-defined]
    _wait_for(driver, "queued for another try")

    assert push_drain() is not None  # the worker's turn: the box office is up again
    dead.refresh_from_db()
    assert (dead.status, dead.outcome) == ("done", "created")

    driver.get(f"{base}/admin/")  # type: ignore[attr-defined]
    assert "All clear" in driver.find_element(By.ID, "status-banner").text  # type: ignore[attr-defined]
    screenshot(driver, "console-dashboard")

    # The entity's page and its timeline: the retry and its call are there.
    entity_url = f"{base}/admin/sync/policy/{policy.pk}/change/"
    driver.get(entity_url)  # type: ignore[attr-defined]
    timeline = driver.find_element(By.ID, "timeline")  # type: ignore[attr-defined]
    assert "Retried by olivia" in timeline.text
    assert "201" in timeline.text
    screenshot(driver, "console-timeline")


def test_an_operator_runs_a_dry_run_then_a_resync_and_replays_a_failed_delivery(
    browser: object,  # noqa: F811
    live_server: object,
    demo: WixSite,
) -> None:
    driver, base = browser, live_server.url  # type: ignore[attr-defined]
    event = Event.objects.get(title="Spring Gala")
    failed = WebhookDelivery.objects.create(
        site=demo,
        wix_event_id="evt-failed",
        event_type="wix.events.v2.policy_updated",
        raw_body="x.y.z",
        payload={"eventType": "wix.events.v2.policy_updated", "data": {}},
        status="failed",
        last_error="crashed",
    )
    _user("olivia", "Sync operators")
    login(driver, base, "olivia", PASSWORD)

    _changelist_action(driver, base, "event", [event.pk], "dry_run_resync")
    _wait_for(driver, "Nothing was sent")
    table = driver.find_element(By.ID, "dry-run")  # type: ignore[attr-defined]
    gala_tickets = TicketDefinition.objects.filter(event=event).count()
    assert table.text.count("create") >= gala_tickets and "General Admission" in table.text
    assert OutboundWork.objects.count() == 0  # a dry run queues nothing

    _changelist_action(driver, base, "event", [event.pk], "resync_selected")
    _wait_for(driver, "push(es)")
    assert OutboundWork.objects.filter(trigger="resync").count() >= gala_tickets

    driver.get(f"{base}/admin/sync/webhookdelivery/?status__exact=failed")  # type: ignore[attr-defined]
    _changelist_action(driver, base, "webhookdelivery", [failed.pk], "replay_selected")
    _wait_for(driver, "Queued 1 deliver(ies) again")
    failed.refresh_from_db()
    assert failed.status == "received"
    webhook_drain()
    failed.refresh_from_db()
    assert failed.status != "received"  # taken and processed (or refused with a reason), not lost


def test_a_viewer_sees_the_console_but_no_secret_and_cannot_trigger_anything(
    browser: object,  # noqa: F811
    live_server: object,
    demo: WixSite,
    settings: object,
) -> None:
    driver, base = browser, live_server.url  # type: ignore[attr-defined]
    system = ExternalSystem.objects.get(name="Sandbox ticketing")
    dead = OutboundWork.objects.create(
        system=system, site=demo, entity_type="policy", wix_id="p", trigger="webhook", status="dead"
    )
    _user("victor", "Sync viewers")
    login(driver, base, "victor", PASSWORD)
    assert "1 dead letter(s)" in driver.find_element(By.ID, "status-banner").text  # type: ignore[attr-defined]
    assert driver.find_element(By.ID, "panel-systems")  # type: ignore[attr-defined]

    token = settings.EXTERNAL_SANDBOX_TOKEN  # type: ignore[attr-defined]
    for path in [
        f"/admin/sync/externalsystem/{system.pk}/change/",
        f"/admin/sync/wixsite/{demo.pk}/change/",
        "/admin/sync/outboundwork/",
        f"/admin/sync/outboundwork/{dead.pk}/change/",
        "/admin/sync/webhookdelivery/",
        "/admin/sync/event/",
        "/admin/",
    ]:
        driver.get(base + path)  # type: ignore[attr-defined]
        source = driver.page_source  # type: ignore[attr-defined]
        assert token not in source, path
        assert not driver.find_elements(By.NAME, "action"), path  # no action to pick  # type: ignore[attr-defined]
        assert not driver.find_elements(By.NAME, "_save"), path  # nothing to save  # type: ignore[attr-defined]
        assert not driver.find_elements(By.ID, "retry-now"), path  # type: ignore[attr-defined]
    # The buttons' own URLs refuse a viewer too.
    driver.get(f"{base}/admin/sync/outboundwork/{dead.pk}/retry/")  # type: ignore[attr-defined]
    dead.refresh_from_db()
    assert dead.status == "dead"


def test_the_console_and_its_lists_fit_a_1400_px_window(
    browser: object,  # noqa: F811
    live_server: object,
    demo: WixSite,
) -> None:
    driver, base = browser, live_server.url  # type: ignore[attr-defined]
    push_drain()  # nothing queued yet: the demo's pushes come from a resync
    system = ExternalSystem.objects.get(name="Sandbox ticketing")
    for policy in Policy.objects.all():
        OutboundWork.objects.create(
            system=system,
            site=demo,
            entity_type="policy",
            wix_id=policy.wix_id,
            trigger="webhook",
            status="dead",
            last_error="422 Unprocessable Entity: " + "the box office refused this policy's text " * 5,
        )
    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    login(driver, base, "root", PASSWORD)
    wide = []
    for path in [
        "/admin/",
        "/admin/sync/outboundwork/",
        "/admin/sync/webhookdelivery/",
        "/admin/sync/backfillrun/",
        "/admin/sync/event/",
        "/admin/sync/policy/",
        "/admin/sync/ticketdefinition/",
        "/admin/sync/externallink/",
        "/admin/sync/synclog/",
        "/admin/sync/externalsystem/",
        "/admin/sync/wixsite/",
        "/admin/sync/reconciliationrun/",
        "/admin/sync/linkrepair/",
        f"/admin/sync/externalsystem/{system.pk}/change/",
    ]:
        driver.get(base + path)  # type: ignore[attr-defined]
        wide += [f"{path}: {what}" for what in sideways_scrolling(driver)]
    assert wide == []
