"""The generic REST subscriber source (issue 12, point 1): paging, path extraction, bad items
skipped and counted, blocks and retries."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import responses
from django.core.exceptions import ValidationError
from responses import matchers

from notifications.models import RestSource
from notifications.sources.base import SourceBlocked, SourceError, sources_for_site
from notifications.sources.rest import RestSubscriberSource, rest_connection_test
from sync.models import WixSite

pytestmark = pytest.mark.django_db

CRM = "https://crm.example.com/api/subscribers"
TOKEN = "crm-token-5f2a9c"


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    pauses: list[float] = []
    monkeypatch.setattr("notifications.clients.base.time.sleep", pauses.append)
    return pauses


@pytest.fixture
def crm(site: WixSite, monkeypatch: pytest.MonkeyPatch, slept: list[float]) -> RestSource:
    monkeypatch.setenv("MARKETING_CRM_TOKEN", TOKEN)
    return RestSource.objects.create(
        site=site,
        name="CRM",
        url=CRM,
        auth_kind="bearer",
        auth_secret_env="MARKETING_CRM_TOKEN",
        items_path="$.data.subscribers",
        email_path="contact.email",
        name_path="contact.name",
        status_path="state",
        subscribed_values="active, Subscribed",
        unsubscribed_values="opted_out",
        event_ids_path="events",
        paging="next_link",
        next_path="links.next",
    )


def person(email: Any, state: str = "active", events: Any = "*", name: str = "") -> dict[str, Any]:
    return {"contact": {"email": email, "name": name}, "state": state, "events": events}


def emails(subscribers: Any) -> list[str]:
    return sorted(s.email for s in subscribers)


@responses.activate
def test_next_links_are_followed_and_paths_read(crm: RestSource) -> None:
    first = responses.get(
        CRM,
        json={
            "data": {
                "subscribers": [
                    person("Ann@Example.com", name="Ann Lee"),
                    person("bob@example.com", events=["evt-1", "evt-2"]),
                ]
            },
            "links": {"next": "/api/subscribers?cursor=abc"},
        },
        match=[matchers.query_string_matcher("")],
    )
    second = responses.get(
        CRM,
        json={
            "data": {
                "subscribers": [
                    person("cy@example.com", events="evt-2"),
                    person("gone@example.com", state="opted_out"),
                    person("pending@example.com", state="pending"),
                ]
            },
            "links": {"next": None},
        },
        match=[matchers.query_string_matcher("cursor=abc")],
    )
    built = RestSubscriberSource(crm)

    assert emails(built.subscribers_for_event(event_wix_id="evt-1")) == ["ann@example.com", "bob@example.com"]
    assert emails(built.subscribers_for_event(event_wix_id="evt-2")) == [
        "ann@example.com",
        "bob@example.com",
        "cy@example.com",
    ]
    assert built.opted_out() == ["gone@example.com"]
    assert {s.email: s.name for s in built.subscribers_for_event(event_wix_id="evt-3")} == {
        "ann@example.com": "Ann Lee"
    }
    # One read serves every question.
    assert (first.call_count, second.call_count) == (1, 1)
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


@responses.activate
def test_bad_items_are_skipped_and_counted_not_a_crash(crm: RestSource) -> None:
    responses.get(
        CRM,
        json={
            "data": {
                "subscribers": [
                    person("ok@example.com"),
                    {"contact": {"name": "No address"}, "state": "active"},
                    person("not-an-address"),
                    "just a string",
                    person(None),
                    person(42),
                    person("also-ok@example.com", events=None),
                ]
            }
        },
    )
    built = RestSubscriberSource(crm)
    # An item whose event list is missing is opted in for no event (only "*" means all).
    assert emails(built.subscribers_for_event(event_wix_id="evt-1")) == ["ok@example.com"]
    assert built.skipped == [
        "item 2: no address at 'contact.email'",
        "item 3: 'not-an-address' is not an email address",
        "item 4: not an object",
        "item 5: no address at 'contact.email'",
        "item 6: no address at 'contact.email'",
    ]
    assert built.read().items == 7
    report = rest_connection_test(config=crm)
    assert report.ok and report.lines[0].startswith("7 item(s): 2 subscribed, 0 unsubscribed, 5 skipped")


@responses.activate
def test_offset_paging_goes_to_the_total(crm: RestSource) -> None:
    crm.paging, crm.page_size, crm.total_path, crm.items_path = "offset", 2, "meta.total", "items"
    crm.event_ids_path = ""  # everyone subscribed: all events
    pages = [
        ({"offset": "0", "limit": "2"}, ["a@example.com", "b@example.com"]),
        ({"offset": "2", "limit": "2"}, ["c@example.com"]),  # short, but the total says more
        ({"offset": "3", "limit": "2"}, ["d@example.com"]),
    ]
    for params, addresses in pages:
        responses.get(
            CRM,
            json={"items": [person(a) for a in addresses], "meta": {"total": 4}},
            match=[matchers.query_param_matcher(params)],
        )
    found = RestSubscriberSource(crm).subscribers_for_event(event_wix_id="evt-9")
    assert emails(found) == ["a@example.com", "b@example.com", "c@example.com", "d@example.com"]
    assert len(responses.calls) == 3


@responses.activate
def test_page_paging_without_a_total_stops_at_a_short_page(crm: RestSource) -> None:
    crm.paging, crm.page_size, crm.items_path, crm.event_ids_path = "page", 2, "", ""
    crm.status_path = ""  # everyone listed is subscribed
    responses.get(
        CRM,
        json=[person("a@example.com", state="whatever"), person("b@example.com")],
        match=[matchers.query_param_matcher({"page": "1", "limit": "2"})],
    )
    responses.get(
        CRM, json=[person("c@example.com")], match=[matchers.query_param_matcher({"page": "2", "limit": "2"})]
    )
    found = RestSubscriberSource(crm).subscribers_for_event(event_wix_id="evt-1")
    assert emails(found) == ["a@example.com", "b@example.com", "c@example.com"]
    assert len(responses.calls) == 2


@responses.activate
def test_a_next_link_to_another_host_is_not_followed(crm: RestSource) -> None:
    responses.get(
        CRM,
        json={
            "data": {"subscribers": [person("a@example.com")]},
            "links": {"next": "https://evil.test/steal"},
        },
    )
    stolen = responses.get("https://evil.test/steal", json={})
    with pytest.raises(SourceBlocked, match="another host"):
        RestSubscriberSource(crm).subscribers_for_event(event_wix_id="evt-1")
    assert stolen.call_count == 0


@responses.activate
def test_a_401_blocks_with_the_reason_and_never_shows_the_token(crm: RestSource, slept: list[float]) -> None:
    refused = responses.get(CRM, status=401, json={"message": f"token {TOKEN} revoked"})
    with pytest.raises(SourceBlocked) as raised:
        RestSubscriberSource(crm).opted_out()
    assert str(raised.value).startswith("REST: CRM: ")
    assert "revoked (HTTP 401)" in str(raised.value) and TOKEN not in str(raised.value)
    assert refused.call_count == 1 and slept == []
    report = rest_connection_test(config=crm)
    assert not report.ok and "HTTP 401" in report.lines[0]


@responses.activate
def test_5xx_is_retried_then_read(crm: RestSource, slept: list[float]) -> None:
    responses.get(CRM, status=502, body="Bad gateway")
    responses.get(CRM, json={"data": {"subscribers": [person("a@example.com")]}})
    assert emails(RestSubscriberSource(crm).subscribers_for_event(event_wix_id="x")) == ["a@example.com"]
    assert len(slept) == 1


@responses.activate
def test_5xx_that_goes_on_is_transient(crm: RestSource, settings: Any) -> None:
    settings.SOURCE_MAX_RETRIES = 1
    responses.get(CRM, status=500, body="oops")
    with pytest.raises(SourceError) as raised:
        RestSubscriberSource(crm).opted_out()
    assert not isinstance(raised.value, SourceBlocked) and len(responses.calls) == 2


@responses.activate
def test_no_list_where_staff_said_blocks(crm: RestSource) -> None:
    responses.get(CRM, json={"data": {"people": []}})
    with pytest.raises(SourceBlocked, match=r"no list at '\$\.data\.subscribers'"):
        RestSubscriberSource(crm).opted_out()


@responses.activate
@pytest.mark.parametrize(
    ("kind", "extra", "header", "value"),
    [
        (
            "basic",
            {"auth_username": "portal"},
            "Authorization",
            "Basic " + base64.b64encode(f"portal:{TOKEN}".encode()).decode(),
        ),
        ("header", {"auth_header": "X-Api-Key"}, "X-Api-Key", TOKEN),
    ],
)
def test_each_auth_kind_sends_the_secret_its_way(
    crm: RestSource, kind: str, extra: dict[str, str], header: str, value: str
) -> None:
    crm.auth_kind = kind
    for field, text in extra.items():
        setattr(crm, field, text)
    crm.paging = "none"
    responses.get(CRM, json={"data": {"subscribers": []}})
    RestSubscriberSource(crm).opted_out()
    assert responses.calls[0].request.headers[header] == value


def test_a_source_is_validated(crm: RestSource) -> None:
    crm.auth_secret_env, crm.email_path, crm.next_path = "EXTERNAL_TOKEN", "contact..email", ""
    with pytest.raises(ValidationError) as refused:
        crm.full_clean()
    assert {"auth_secret_env", "email_path", "next_path"} <= set(refused.value.message_dict)


def test_unsubscribe_is_not_written_back(crm: RestSource) -> None:
    assert RestSubscriberSource(crm).unsubscribe(email="a@example.com") is False


def test_the_site_lists_its_active_rest_sources(crm: RestSource, site: WixSite) -> None:
    RestSource.objects.create(site=site, name="Off", url=CRM, auth_kind="none", is_active=False)
    labels = [s.label for s in sources_for_site(site)]
    assert "REST: CRM" in labels and "REST: Off" not in labels
