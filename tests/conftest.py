from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.test import Client

from sync.clients.wix import WixAuth, WixClient
from sync.models import WixSite

FIXTURES = Path(__file__).parent / "fixtures"
WIX = "https://wix.test"
SITE_ID = "0a1b2c3d-0000-4000-8000-000000000001"


def wix_payload(name: str) -> dict[str, Any]:
    """A Wix payload file, named ``<entity>__<variant>.json``."""
    return json.loads((FIXTURES / "wix" / f"{name}.json").read_text())


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    cache.clear()


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
@pytest.fixture
def admin_user(db: None) -> User:
    return User.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")


@pytest.fixture
def editor(db: None) -> User:
    user = User.objects.create_user("editor", "editor@example.com", "pw-editor-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="sync"))
    return user


@pytest.fixture
def viewer(db: None) -> User:
    """Staff who may look at everything in sync but change nothing."""
    user = User.objects.create_user("viewer", "viewer@example.com", "pw-viewer-123", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="sync", codename__startswith="view_")
    )
    return user


@pytest.fixture
def admin_client(admin_user: User) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client
