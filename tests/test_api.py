from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from sync.models import BackfillRun, WixSite

pytestmark = pytest.mark.django_db


def _client(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def test_an_editor_starts_a_backfill_with_a_token(editor: User, site: WixSite) -> None:
    client = _client(editor)
    first = client.post("/api/backfills/", {"site": site.pk, "event_wix_id": "e-1"}, format="json")
    assert first.status_code == 201
    assert (first.json()["status"], first.json()["trigger"], first.json()["event_wix_id"]) == (
        "queued",
        "api",
        "e-1",
    )
    again = client.post("/api/backfills/", {"site": site.pk, "event_wix_id": "e-1"}, format="json")
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    run = BackfillRun.objects.get()
    assert run.started_by == editor
    detail = client.get(f"/api/backfills/{run.pk}/").json()
    assert detail["fetched"] == 0 and detail["errors"] == []


def test_anonymous_and_read_only_users_cannot_start_a_backfill(viewer: User, site: WixSite) -> None:
    assert _client(None).post("/api/backfills/", {"site": site.pk}, format="json").status_code == 401
    assert _client(viewer).post("/api/backfills/", {"site": site.pk}, format="json").status_code == 403
    assert _client(viewer).get("/api/backfills/").status_code == 200
    assert not BackfillRun.objects.exists()


def test_an_unknown_or_inactive_site_is_a_clear_400(editor: User, site: WixSite) -> None:
    site.is_active = False
    site.save()
    response = _client(editor).post("/api/backfills/", {"site": site.pk}, format="json")
    assert response.status_code == 400 and "site" in response.json()
