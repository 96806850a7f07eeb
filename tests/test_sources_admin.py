"""The subscriber sources in the console: Test connection, secrets never shown, who may
change where a key goes (issue 12, point 1)."""

from __future__ import annotations

import pytest
import responses
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from notifications.models import MailchimpRule, MailchimpSource, RestSource
from sync.models import WixSite
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

API = "https://us6.api.mailchimp.com/3.0"
LIST = "a1b2c3d4e5"
KEY = "0123456789abcdef0123456789abcdef-us6"


@pytest.fixture
def audience(site: WixSite, monkeypatch: pytest.MonkeyPatch) -> MailchimpSource:
    monkeypatch.setenv("MARKETING_MAILCHIMP_API_KEY", KEY)
    config = MailchimpSource.objects.create(
        site=site, name="Spring newsletter", list_id=LIST, api_key_env="MARKETING_MAILCHIMP_API_KEY"
    )
    MailchimpRule.objects.create(source=config, event_wix_id="evt-1", kind="tag", tag="VIP")
    return config


def _form(config: MailchimpSource, **changes: str) -> dict[str, str]:
    rule = config.rules.get()
    form = {
        "site": str(config.site_id),
        "name": config.name,
        "is_active": "on",
        "list_id": config.list_id,
        "write_back_unsubscribes": "on",
        "server_prefix": config.server_prefix,
        "api_key_env": config.api_key_env,
        "rules-TOTAL_FORMS": "1",
        "rules-INITIAL_FORMS": "1",
        "rules-0-id": str(rule.pk),
        "rules-0-source": str(config.pk),
        "rules-0-event_wix_id": rule.event_wix_id,
        "rules-0-kind": rule.kind,
        "rules-0-tag": rule.tag,
        "rules-0-interest_category_id": "",
        "rules-0-interest_id": "",
    }
    return form | changes


def _test_connection(user: User, config: MailchimpSource) -> list[str]:
    url = reverse("admin:notifications_mailchimpsource_changelist")
    response = client_for(user).post(
        url, {"action": "test_connection", "_selected_action": [config.pk]}, follow=True
    )
    return [str(m) for m in response.context["messages"]]


@responses.activate
def test_an_operator_tests_the_connection_and_sees_the_member_count(
    operator: User, audience: MailchimpSource
) -> None:
    responses.get(f"{API}/lists/{LIST}", json={"name": "Spring", "stats": {"member_count": 42}})
    responses.get(
        f"{API}/lists/{LIST}/segments",
        json={"segments": [{"id": 7, "name": "VIP", "member_count": 5}], "total_items": 1},
    )
    responses.get(f"{API}/lists/{LIST}/interest-categories", json={"categories": [], "total_items": 0})
    shown = _test_connection(operator, audience)
    assert any("Audience 'Spring': 42 subscribed" in m for m in shown)
    assert any("Tags: VIP (5)." in m for m in shown)


@responses.activate
def test_a_refused_key_shows_mailchimps_reason(operator: User, audience: MailchimpSource) -> None:
    responses.get(
        f"{API}/lists/{LIST}",
        status=401,
        json={
            "type": "https://mailchimp.com/developer/marketing/docs/errors/",
            "title": "API Key Invalid",
            "status": 401,
            "detail": "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            "instance": "d1f0c1f4-1b5e-4c4b-9d7d-2f1e0a3b4c5d",
        },
    )
    shown = _test_connection(operator, audience)
    assert any("API Key Invalid: Your API key may be invalid" in m and "(HTTP 401)" in m for m in shown)
    assert not any(KEY in m for m in shown)


def test_a_viewer_is_not_offered_the_test(viewer: User, audience: MailchimpSource) -> None:
    page = client_for(viewer).get(reverse("admin:notifications_mailchimpsource_changelist"))
    assert page.status_code == 200 and "test_connection" not in page.content.decode()


def test_the_page_names_the_variable_never_the_key(admin_user: User, audience: MailchimpSource) -> None:
    page = client_for(admin_user).get(
        reverse("admin:notifications_mailchimpsource_change", args=[audience.pk])
    )
    text = page.content.decode()
    assert "MARKETING_MAILCHIMP_API_KEY" in text and KEY not in text and KEY[:12] not in text


def test_only_the_endpoint_permission_changes_where_the_key_goes(
    operator: User, audience: MailchimpSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = reverse("admin:notifications_mailchimpsource_change", args=[audience.pk])
    form = _form(audience, api_key_env="MARKETING_OTHER", server_prefix="us1", list_id="newlist1")
    assert 'name="api_key_env"' not in client_for(operator).get(url).content.decode()
    client_for(operator).post(url, form)
    audience.refresh_from_db()
    # The operator may change the audience, not the key or where it goes.
    assert (audience.list_id, audience.api_key_env, audience.server_prefix) == (
        "newlist1",
        "MARKETING_MAILCHIMP_API_KEY",
        "",
    )
    assert client_for(operator).get(reverse("admin:notifications_mailchimpsource_add")).status_code == 403
    operator.user_permissions.add(Permission.objects.get(codename="change_mailchimp_endpoint"))
    operator = User.objects.get(pk=operator.pk)
    client_for(operator).post(url, form)
    audience.refresh_from_db()
    assert (audience.api_key_env, audience.server_prefix) == ("MARKETING_OTHER", "us1")


def test_a_wix_variable_is_refused_in_the_form(admin_user: User, audience: MailchimpSource) -> None:
    url = reverse("admin:notifications_mailchimpsource_change", args=[audience.pk])
    page = client_for(admin_user).post(url, _form(audience, api_key_env="WIX_TEST_API_KEY"))
    assert page.status_code == 200 and "starts with MARKETING_" in page.content.decode()
    audience.refresh_from_db()
    assert audience.api_key_env == "MARKETING_MAILCHIMP_API_KEY"


@responses.activate
def test_the_rest_test_connection_counts_and_explains(
    operator: User, site: WixSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = RestSource.objects.create(
        site=site, name="CRM", url="https://crm.example.com/subs", auth_kind="none"
    )
    responses.get(
        "https://crm.example.com/subs",
        json=[{"email": "a@example.com", "status": "subscribed"}, {"email": ""}],
    )
    config.status_path = "status"
    config.save()
    response = client_for(operator).post(
        reverse("admin:notifications_restsource_changelist"),
        {"action": "test_connection", "_selected_action": [config.pk]},
        follow=True,
    )
    shown = [str(m) for m in response.context["messages"]]
    assert shown == [
        "REST: CRM: 2 item(s): 1 subscribed, 0 unsubscribed, 1 skipped (item 2: no address at 'email')."
    ]


def test_the_source_pages_load(admin_user: User, audience: MailchimpSource, site: WixSite) -> None:
    rest = RestSource.objects.create(
        site=site, name="CRM", url="https://crm.example.com/subs", auth_kind="none"
    )
    client = client_for(admin_user)
    for name, args in [
        ("admin:notifications_mailchimpsource_changelist", []),
        ("admin:notifications_mailchimpsource_add", []),
        ("admin:notifications_restsource_changelist", []),
        ("admin:notifications_restsource_add", []),
        ("admin:notifications_restsource_change", [rest.pk]),
    ]:
        assert client.get(reverse(name, args=args)).status_code == 200, name


def test_a_rule_shows_its_events_name(admin_user: User, audience: MailchimpSource, site: WixSite) -> None:
    from sync.services.mirrors import event_upsert_from_wix
    from tests.conftest import wix_payload

    event = wix_payload("event__query")["events"][0]
    event_upsert_from_wix(site=site, data=event)
    MailchimpRule.objects.create(source=audience, event_wix_id=event["id"], kind="everyone")
    MailchimpRule.objects.create(source=audience, kind="everyone")
    url = reverse("admin:notifications_mailchimpsource_change", args=[audience.pk])
    text = client_for(admin_user).get(url).content.decode()
    assert event["title"] in text and "All events" in text and "not mirrored (check the id)" in text


def test_a_source_without_its_secret_is_a_health_problem(
    audience: MailchimpSource, site: WixSite, monkeypatch: pytest.MonkeyPatch, admin_user: User
) -> None:
    from portal.health import problems

    RestSource.objects.create(
        site=site, name="Open API", url="https://crm.example.com/subs", auth_kind="none"
    )
    assert [p for p in problems() if p.key == "source_secret_missing"] == []
    monkeypatch.delenv("MARKETING_MAILCHIMP_API_KEY")
    RestSource.objects.create(
        site=site, name="CRM", url="https://crm.example.com/subs", auth_secret_env="MARKETING_CRM_TOKEN"
    )
    found = [p.summary for p in problems() if p.key == "source_secret_missing"]
    assert found == [
        "1 Mailchimp source(s) without their API key variable: Spring newsletter",
        "1 REST source(s) without their secret variable: CRM",
    ]
    health = client_for(admin_user).get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
