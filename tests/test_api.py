from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from knox.models import AuthToken
from rest_framework.test import APIClient

from sync.models import BackfillRun, WixSite

pytestmark = pytest.mark.django_db


def _client(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return client


def test_an_operator_starts_a_backfill_with_a_token(operator: User, site: WixSite) -> None:
    client = _client(operator)
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
    assert run.started_by == operator
    detail = client.get(f"/api/backfills/{run.pk}/").json()
    assert detail["fetched"] == 0 and detail["errors"] == []


# What each persona gets: (list, detail, start).
EXPECTED = {
    "anonymous": (401, 401, 401),
    "staff": (403, 403, 403),
    "viewer": (200, 200, 403),
    "operator": (200, 200, 201),
    "superuser": (200, 200, 201),
}


def test_each_persona_reads_and_starts_only_what_its_role_allows(
    persona: tuple[str, User | None], site: WixSite
) -> None:
    name, user = persona
    run = BackfillRun.objects.create(site=site, trigger="admin", status="succeeded")
    client = _client(user)
    answers = (
        client.get("/api/backfills/").status_code,
        client.get(f"/api/backfills/{run.pk}/").status_code,
        client.post("/api/backfills/", {"site": site.pk}, format="json").status_code,
    )
    assert answers == EXPECTED[name], name
    started = BackfillRun.objects.exclude(pk=run.pk).exists()
    assert started == (answers[2] == 201)


def test_a_token_is_stored_only_as_a_digest_and_a_wrong_or_revoked_one_is_refused(
    operator: User, site: WixSite
) -> None:
    instance, token = AuthToken.objects.create(user=operator)
    stored = [str(v) for v in AuthToken.objects.values_list("digest", "token_key").get()]
    assert all(token not in value for value in stored) and instance.digest != token
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/backfills/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {token[:-1]}x")
    assert client.get("/api/backfills/").status_code == 401
    instance.delete()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/backfills/").status_code == 401


def test_an_unknown_or_inactive_site_is_a_clear_400(operator: User, site: WixSite) -> None:
    site.is_active = False
    site.save()
    response = _client(operator).post("/api/backfills/", {"site": site.pk}, format="json")
    assert response.status_code == 400 and "site" in response.json()
