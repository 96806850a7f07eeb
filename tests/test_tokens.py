"""API tokens are not readable: hashed, shown once, listed masked, revoked by owner or superuser
(issue 10, point 3)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from portal.models import ApiToken
from tests.conftest import client_for

pytestmark = pytest.mark.django_db
ADD = "admin:portal_apitoken_add"
LIST = "admin:portal_apitoken_changelist"


def _create(user: User, for_user: User, days: int = 30) -> str:
    """Create a token in the admin as ``user``; returns the token from the one page that shows it."""
    response = client_for(user).post(reverse(ADD), {"user": for_user.pk, "expires_in_days": days})
    assert response.status_code == 200, response.content.decode()[:500]
    return re.search(r'<code id="api-token"[^>]*>([^<]+)</code>', response.content.decode())[1]  # type: ignore[index]


def _table_text() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM knox_authtoken")
        return repr(cursor.fetchall())


def test_a_token_is_shown_once_stored_as_a_digest_and_works(operator: User) -> None:
    token = _create(operator, operator)
    assert token not in _table_text()
    client = client_for(operator)
    listing = client.get(reverse(LIST)).content.decode()
    stored = ApiToken.objects.get()
    assert stored.masked in listing and token not in listing
    assert token not in client.get(reverse("admin:portal_apitoken_change", args=[stored.pk])).content.decode()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/backfills/").status_code == 200


def test_staff_see_and_make_only_their_own_tokens(operator: User, viewer: User, admin_user: User) -> None:
    boss_token = _create(admin_user, admin_user)
    listing = client_for(viewer).get(reverse(LIST)).content.decode()
    assert ApiToken.objects.get(user=admin_user).masked not in listing and boss_token not in listing
    # A token made for the superuser would act as the superuser.
    response = client_for(operator).post(reverse(ADD), {"user": admin_user.pk, "expires_in_days": 1})
    assert "user" in response.context["adminform"].form.errors
    assert AuthToken.objects.filter(user=admin_user).count() == 1


def test_only_the_owner_or_a_superuser_revokes_a_token(
    operator: User, viewer: User, admin_user: User
) -> None:
    _create(operator, operator)
    token = ApiToken.objects.get(user=operator)
    delete = reverse("admin:portal_apitoken_delete", args=[token.pk])
    assert client_for(viewer).post(delete, {"post": "yes"}).status_code in (302, 403, 404)
    assert AuthToken.objects.filter(user=operator).exists()
    client_for(viewer).post(
        reverse(LIST), {"action": "delete_selected", "_selected_action": [token.pk], "post": "yes"}
    )
    assert AuthToken.objects.filter(user=operator).exists()
    client_for(operator).post(delete, {"post": "yes"})
    assert not AuthToken.objects.filter(user=operator).exists()
    _create(operator, operator)
    client_for(admin_user).post(
        reverse("admin:portal_apitoken_delete", args=[ApiToken.objects.get().pk]), {"post": "yes"}
    )
    assert not AuthToken.objects.exists()


def test_tokens_expire_after_the_days_chosen(operator: User) -> None:
    _create(operator, operator, days=0)
    _create(operator, operator, days=7)
    expiries = sorted(AuthToken.objects.values_list("expiry", flat=True), key=lambda e: e is None)
    assert expiries[0] is not None and expiries[1] is None
