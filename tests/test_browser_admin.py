"""Admin flows as staff use them, in headless Chromium: the mapping editor and its preview."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from sync.models import ExternalSystem, FieldMapping, TicketDefinition
from sync.sandbox.demo import demo_id
from tests.browser import browser, login  # noqa: F401 - fixture
from tests.conftest import sandbox_mirrored

# Serialized rollback: the roles migration's groups survive the flush between tests.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def staff_session(live_server: object, browser: object) -> object:  # noqa: F811
    sandbox_mirrored()
    # An operator, as staff who edit mappings day to day are (not a superuser).
    operator = User.objects.create_user("staff", "staff@example.com", "a-long-password-1", is_staff=True)
    operator.groups.add(Group.objects.get(name="Sync operators"))
    login(browser, live_server.url, "staff", "a-long-password-1")  # type: ignore[attr-defined]
    return browser


def _new_mapping_row(driver: object) -> str:
    """The empty extra row of the mappings inline: its name prefix."""
    total = int(driver.find_element(By.NAME, "mappings-TOTAL_FORMS").get_attribute("value"))  # type: ignore[attr-defined]
    return f"mappings-{total - 1}"


def test_staff_preview_an_unsaved_mapping_then_save_it(staff_session: object, live_server: object) -> None:
    driver = staff_session
    system = ExternalSystem.objects.get(name="Sandbox ticketing")
    driver.get(f"{live_server.url}/admin/sync/externalsystem/{system.pk}/change/")  # type: ignore[attr-defined]
    row = _new_mapping_row(driver)
    Select(driver.find_element(By.NAME, f"{row}-entity_type")).select_by_value("ticket_definition")  # type: ignore[attr-defined]
    driver.find_element(By.NAME, f"{row}-order").clear()  # type: ignore[attr-defined]
    driver.find_element(By.NAME, f"{row}-order").send_keys("40")  # type: ignore[attr-defined]
    Select(driver.find_element(By.NAME, f"{row}-transform")).select_by_value("template")  # type: ignore[attr-defined]
    driver.find_element(By.NAME, f"{row}-argument").send_keys("{name} / {salesDetails.unsoldCount} left")  # type: ignore[attr-defined]
    driver.find_element(By.NAME, f"{row}-target_field").send_keys("display.label")  # type: ignore[attr-defined]

    ga = TicketDefinition.objects.get(wix_id=demo_id("td:spring-gala:ga"))
    Select(driver.find_element(By.ID, "preview-entity")).select_by_value(f"ticket_definition:{ga.pk}")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "preview-button").click()  # type: ignore[attr-defined]
    output = driver.find_element(By.ID, "preview-output")  # type: ignore[attr-defined]
    WebDriverWait(driver, 10).until(lambda d: output.get_attribute("data-state"))
    assert output.get_attribute("data-state") == "ok"
    assert '"label": "General Admission / 200 left"' in output.text
    assert '"price": "25.00"' in output.text
    assert not FieldMapping.objects.filter(target_field="display.label").exists()  # a preview saves nothing

    driver.find_element(By.NAME, "_save").click()  # type: ignore[attr-defined]
    WebDriverWait(driver, 10).until(lambda d: "changed successfully" in d.page_source)
    assert FieldMapping.objects.get(target_field="display.label").transform == "template"
    # Audit: the system's history says who added which mapping.
    driver.get(f"{live_server.url}/admin/sync/externalsystem/{system.pk}/history/")  # type: ignore[attr-defined]
    history = driver.find_element(By.ID, "change-history").text  # type: ignore[attr-defined]
    assert "staff" in history and "Added field mapping" in history and "display.label" in history


def test_a_broken_mapping_shows_its_error_in_the_preview_and_on_save(
    staff_session: object, live_server: object
) -> None:
    driver = staff_session
    system = ExternalSystem.objects.get(name="Sandbox ticketing")
    driver.get(f"{live_server.url}/admin/sync/externalsystem/{system.pk}/change/")  # type: ignore[attr-defined]
    row = _new_mapping_row(driver)
    Select(driver.find_element(By.NAME, f"{row}-entity_type")).select_by_value("ticket_definition")  # type: ignore[attr-defined]
    driver.find_element(By.NAME, f"{row}-source_path").send_keys("pricingMethod.fixedPrize.value")  # type: ignore[attr-defined]
    Select(driver.find_element(By.NAME, f"{row}-transform")).select_by_value("decimal")  # type: ignore[attr-defined]
    driver.find_element(By.NAME, f"{row}-target_field").send_keys("list_price")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "preview-button").click()  # type: ignore[attr-defined]
    output = driver.find_element(By.ID, "preview-output")  # type: ignore[attr-defined]
    WebDriverWait(driver, 10).until(lambda d: output.get_attribute("data-state"))
    assert output.get_attribute("data-state") == "error"
    assert "Wix has no field 'pricingMethod.fixedPrize.value'" in output.text
    driver.find_element(By.NAME, "_save").click()  # type: ignore[attr-defined]
    assert "Wix has no field" in driver.find_element(By.CSS_SELECTOR, ".errorlist").text  # type: ignore[attr-defined]
    assert not FieldMapping.objects.filter(target_field="list_price").exists()
