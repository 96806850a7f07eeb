"""Headless Chromium for tests, with the flags this machine needs (loopback only)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

SCREENSHOTS = os.environ.get("SCREENSHOT_DIR", "var/screenshots")


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture
def browser() -> Iterator[object]:
    paths = chromium_paths()
    if paths is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("chromium and chromedriver are required (REQUIRE_BROWSER=1) but not installed")
        pytest.skip("chromium and chromedriver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    profile = tempfile.mkdtemp(prefix="chromium-")
    for flag in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def login(driver: object, base_url: str, username: str, password: str) -> None:
    """Log in through the admin's form, and wait for the logged-in page before going on
    (navigating on before the login answer lands loses the session)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base_url}/admin/login/")  # type: ignore[attr-defined]
    driver.find_element(By.NAME, "username").send_keys(username)  # type: ignore[attr-defined]
    driver.find_element(By.NAME, "password").send_keys(password)  # type: ignore[attr-defined]
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()  # type: ignore[attr-defined]
    WebDriverWait(driver, 10).until(lambda d: "log out" in d.page_source.lower())


def screenshot(driver: object, name: str) -> str:
    """The whole page as a PNG under ``SCREENSHOT_DIR`` (test output; README shows copies)."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")  # type: ignore[attr-defined]
    driver.set_window_size(1400, max(600, min(int(height) + 140, 4000)))  # type: ignore[attr-defined]
    path = os.path.join(SCREENSHOTS, f"{name}.png")
    driver.save_screenshot(path)  # type: ignore[attr-defined]
    driver.set_window_size(1400, 1000)  # type: ignore[attr-defined]
    return path


# Elements that scroll sideways: the page itself, or a box (Django's results table) that would.
OVERFLOWING = """
return [document.documentElement, ...document.querySelectorAll('*')]
  .filter(e => e.scrollWidth > e.clientWidth + 1
    && (e === document.documentElement || ['auto', 'scroll'].includes(getComputedStyle(e).overflowX)))
  .map(e => `${e.tagName.toLowerCase()}#${e.id}.${e.className}: ${e.scrollWidth} > ${e.clientWidth}`)
"""


def sideways_scrolling(driver: object) -> list[str]:
    """What scrolls horizontally in the window as it is now (1400 px wide): should be nothing."""
    return list(driver.execute_script(OVERFLOWING))  # type: ignore[attr-defined]
