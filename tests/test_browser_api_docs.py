"""The API's docs page in headless Chromium against a live server: Swagger UI loads from the
portal's own static files (drf-spectacular-sidecar; nothing from a CDN), reads /api/schema/
with the staff session, and runs a request with it ("Try it out")."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from sync.models import ExternalSystem, OutboundWork, WixSite
from tests.browser import browser, login, screenshot  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "a-long-password-1"


def test_swagger_ui_lists_every_operation_and_tries_one_with_the_staff_session(
    browser: object,  # noqa: F811
    live_server: object,
    site: WixSite,
) -> None:
    driver, base = browser, live_server.url  # type: ignore[attr-defined]
    system = ExternalSystem.objects.create(name="Tickets", base_url="https://tickets.test", auth_type="none")
    OutboundWork.objects.create(
        system=system, site=site, entity_type="policy", wix_id="p-1", trigger="webhook", status="dead"
    )
    viewer = User.objects.create_user("vera", "vera@example.com", PASSWORD, is_staff=True)
    viewer.groups.add(Group.objects.get(name="Sync viewers"))
    login(driver, base, "vera", PASSWORD)
    driver.get(f"{base}/api/docs/")  # type: ignore[attr-defined]
    wait = WebDriverWait(driver, 20)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 10)
    paths = {e.text for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}  # type: ignore[attr-defined]
    assert {"/api/dead-letters/", "/api/resyncs/", "/api/failed-deliveries/replay/"} <= {
        p.replace("\u200b", "") for p in paths
    }
    # Nothing came from outside the portal.
    hosts = driver.execute_script(  # type: ignore[attr-defined]
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).host)"
    )
    assert set(hosts) == {base.split("//")[1]}, hosts
    screenshot(driver, "api-docs")
    # Try GET /api/dead-letters/ with the viewer's session: the dead letter comes back.
    block = driver.find_element(By.ID, "operations-failures-api_dead_letters_list")  # type: ignore[attr-defined]
    block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait.until(lambda d: block.find_elements(By.CSS_SELECTOR, ".try-out__btn"))
    block.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    block.find_element(By.CSS_SELECTOR, ".execute").click()
    answer = ".live-responses-table tbody .response-col_status"
    wait.until(lambda d: block.find_elements(By.CSS_SELECTOR, answer))
    status = block.find_element(By.CSS_SELECTOR, answer).text
    assert status.strip().startswith("200"), status
    assert '"wix_id": "p-1"' in block.find_element(By.CSS_SELECTOR, ".live-responses-table").text
    screenshot(driver, "api-docs-try-it-out")
