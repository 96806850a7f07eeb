"""The Mailchimp subscriber source (issue 12, point 1): Mailchimp's real paging and problem
details through ``responses``, retries, blocks, narrowing by tag or interest, opt-outs and
the unsubscribe write-back."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
import responses
from django.core.exceptions import ValidationError
from responses import matchers

from notifications.models import MailchimpRule, MailchimpSource
from notifications.sources.base import SourceBlocked, SourceError, sources_for_site
from notifications.sources.mailchimp import MailchimpSubscriberSource, mailchimp_connection_test
from sync.models import WixSite

pytestmark = pytest.mark.django_db

API = "https://us6.api.mailchimp.com/3.0"
LIST = "a1b2c3d4e5"
KEY = "0123456789abcdef0123456789abcdef-us6"
MEMBERS = f"{API}/lists/{LIST}/members"


def member(email: str, status: str = "subscribed", name: str = "") -> dict[str, Any]:
    """A member as Mailchimp answers one (the fields the client asks for, and some it does not)."""
    first, _, last = name.partition(" ")
    return {
        "id": hashlib.md5(email.lower().encode()).hexdigest(),  # noqa: S324 - Mailchimp's id
        "email_address": email,
        "unique_email_id": "882e9bec19",
        "full_name": name,
        "status": status,
        "merge_fields": {"FNAME": first, "LNAME": last},
        "list_id": LIST,
    }


def page(key: str, items: list[dict[str, Any]], total: int) -> dict[str, Any]:
    return {key: items, "list_id": LIST, "total_items": total, "_links": [{"rel": "self", "href": MEMBERS}]}


def problem(status: int, title: str, detail: str) -> dict[str, Any]:
    """Mailchimp's error body (RFC 7807 problem details)."""
    return {
        "type": "https://mailchimp.com/developer/marketing/docs/errors/",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": "3b4dcb40-0b6b-4820-bfaa-41267b3826ea",
    }


def query(**params: Any) -> Any:
    return matchers.query_param_matcher({k: str(v) for k, v in params.items()}, strict_match=False)


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    pauses: list[float] = []
    monkeypatch.setattr("notifications.clients.base.time.sleep", pauses.append)
    return pauses


@pytest.fixture
def audience(site: WixSite, monkeypatch: pytest.MonkeyPatch, slept: list[float]) -> MailchimpSource:
    monkeypatch.setenv("MARKETING_MAILCHIMP_API_KEY", KEY)
    return MailchimpSource.objects.create(
        site=site, name="Spring newsletter", list_id=LIST, api_key_env="MARKETING_MAILCHIMP_API_KEY"
    )


def source(config: MailchimpSource, page_size: int = 1000) -> MailchimpSubscriberSource:
    built = MailchimpSubscriberSource(config)
    built.client.page_size = page_size
    return built


def emails(subscribers: Any) -> list[str]:
    return sorted(s.email for s in subscribers)


@responses.activate
def test_every_subscribed_member_is_read_page_by_page_to_total_items(audience: MailchimpSource) -> None:
    MailchimpRule.objects.create(source=audience, kind="everyone")
    # Mailchimp may answer a page with fewer members than asked for: only total_items ends paging.
    first = responses.get(
        MEMBERS,
        json=page("members", [member("Ann@Example.com", name="Ann Lee"), member("bob@example.com")], 5),
        match=[query(status="subscribed", count=2, offset=0, sort_field="timestamp_signup", sort_dir="ASC")],
    )
    short = responses.get(
        MEMBERS,
        json=page("members", [member("cy@example.com", name="Cy")], 5),
        match=[query(status="subscribed", count=2, offset=2)],
    )
    last = responses.get(
        MEMBERS,
        json=page("members", [member("di@example.com"), member("ed@example.com")], 5),
        match=[query(status="subscribed", count=2, offset=3)],
    )

    found = source(audience, page_size=2).subscribers_for_event(event_wix_id="evt-1")

    assert emails(found) == [
        "ann@example.com",
        "bob@example.com",
        "cy@example.com",
        "di@example.com",
        "ed@example.com",
    ]
    assert {s.email: s.name for s in found}["ann@example.com"] == "Ann Lee"
    assert (first.call_count, short.call_count, last.call_count) == (1, 1, 1)
    auth = responses.calls[0].request.headers["Authorization"]
    assert base64.b64decode(auth.removeprefix("Basic ")).decode().endswith(f":{KEY}")
    assert "members.email_address" in responses.calls[0].request.params["fields"]


@responses.activate
def test_an_empty_page_before_the_total_is_an_error_not_a_short_list(audience: MailchimpSource) -> None:
    MailchimpRule.objects.create(source=audience, kind="everyone")
    responses.get(MEMBERS, json=page("members", [member("a@example.com")], 3), match=[query(offset=0)])
    responses.get(MEMBERS, json=page("members", [], 3), match=[query(offset=1)])
    with pytest.raises(SourceError, match="3 in all but an empty page at offset 1") as raised:
        source(audience, page_size=1).subscribers_for_event(event_wix_id="evt-1")
    assert not isinstance(raised.value, SourceBlocked)


@responses.activate
def test_members_are_narrowed_per_event_by_tag_or_interest(audience: MailchimpSource) -> None:
    MailchimpRule.objects.create(source=audience, event_wix_id="evt-1", kind="tag", tag="Jazz night")
    MailchimpRule.objects.create(
        source=audience, kind="interest", interest_category_id="cat01", interest_id="int07"
    )
    # Tags are static segments, found by name over every page of segments.
    responses.get(
        f"{API}/lists/{LIST}/segments",
        json=page("segments", [{"id": 101, "name": "VIP", "member_count": 3}], 2),
        match=[query(type="static", offset=0)],
    )
    responses.get(
        f"{API}/lists/{LIST}/segments",
        json=page("segments", [{"id": 102, "name": "jazz night", "member_count": 2}], 2),
        match=[query(type="static", offset=1)],
    )
    tagged = responses.get(
        f"{API}/lists/{LIST}/segments/102/members",
        json=page("members", [member("jazz@example.com"), member("left@example.com", "unsubscribed")], 2),
    )
    interested = responses.get(
        MEMBERS,
        json=page("members", [member("all@example.com"), member("JAZZ@example.com")], 2),
        match=[
            query(
                status="subscribed",
                interest_category_id="cat01",
                interest_ids="int07",
                interest_match="any",
            )
        ],
    )
    built = source(audience, page_size=1)
    built.client.page_size = 1000

    assert emails(built.subscribers_for_event(event_wix_id="evt-1")) == [
        "all@example.com",
        "jazz@example.com",
    ]
    # Another event: only the all-events interest, and no tag lookup.
    calls = len(responses.calls)
    assert emails(built.subscribers_for_event(event_wix_id="evt-2")) == [
        "all@example.com",
        "jazz@example.com",
    ]
    assert {c.request.url.split("?")[0] for c in responses.calls[calls:]} == {MEMBERS}
    assert (tagged.call_count, interested.call_count) == (1, 2)


@responses.activate
def test_with_no_rule_nobody_is_opted_in_and_nothing_is_called(audience: MailchimpSource) -> None:
    assert source(audience).subscribers_for_event(event_wix_id="evt-1") == []
    assert len(responses.calls) == 0


@responses.activate
def test_a_tag_that_does_not_exist_blocks_with_the_reason(audience: MailchimpSource) -> None:
    MailchimpRule.objects.create(source=audience, kind="tag", tag="Jaz night")
    responses.get(
        f"{API}/lists/{LIST}/segments", json=page("segments", [{"id": 102, "name": "Jazz night"}], 1)
    )
    with pytest.raises(SourceBlocked, match="no tag named 'Jaz night'"):
        source(audience).subscribers_for_event(event_wix_id="evt-1")


@responses.activate
def test_unsubscribed_and_cleaned_members_are_opted_out(audience: MailchimpSource) -> None:
    responses.get(
        MEMBERS,
        json=page("members", [member("Gone@Example.com", "unsubscribed")], 1),
        match=[query(status="unsubscribed")],
    )
    responses.get(
        MEMBERS,
        json=page("members", [member("bounced@example.com", "cleaned")], 1),
        match=[query(status="cleaned")],
    )
    assert sorted(source(audience).opted_out()) == ["bounced@example.com", "gone@example.com"]


@responses.activate
def test_429_is_retried_after_the_pause_mailchimp_asks_for(
    audience: MailchimpSource, slept: list[float]
) -> None:
    MailchimpRule.objects.create(source=audience, kind="everyone")
    limited = responses.get(
        MEMBERS,
        status=429,
        headers={"Retry-After": "3"},
        content_type="application/problem+json",
        body=json.dumps(
            problem(429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections.")
        ),
    )
    down = responses.get(MEMBERS, status=503, json=problem(503, "Service Unavailable", "Try again."))
    ok = responses.get(MEMBERS, json=page("members", [member("a@example.com")], 1))

    assert emails(source(audience).subscribers_for_event(event_wix_id="evt-1")) == ["a@example.com"]
    assert (limited.call_count, down.call_count, ok.call_count) == (1, 1, 1)
    assert slept[0] == 3.0 and len(slept) == 2  # then a jittered backoff for the 503


@responses.activate
def test_429_that_goes_on_is_a_transient_error_after_the_retries(
    audience: MailchimpSource, slept: list[float], settings: Any
) -> None:
    settings.SOURCE_MAX_RETRIES = 2
    MailchimpRule.objects.create(source=audience, kind="everyone")
    limited = responses.get(MEMBERS, status=429, json=problem(429, "Too Many Requests", "Slow down."))
    with pytest.raises(SourceError) as raised:
        source(audience).subscribers_for_event(event_wix_id="evt-1")
    assert not isinstance(raised.value, SourceBlocked)
    assert "Too Many Requests: Slow down. (HTTP 429)" in str(raised.value)
    assert limited.call_count == 3 and len(slept) == 2


@responses.activate
@pytest.mark.parametrize(
    ("status", "title", "detail"),
    [
        (
            401,
            "API Key Invalid",
            "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
        ),
        (403, "Forbidden", "The API key provided is linked to a different datacenter"),
        (404, "Resource Not Found", "The requested resource could not be found."),
    ],
)
def test_a_refusal_blocks_at_once_with_mailchimps_own_words(
    audience: MailchimpSource, slept: list[float], status: int, title: str, detail: str
) -> None:
    MailchimpRule.objects.create(source=audience, kind="everyone")
    refused = responses.get(
        MEMBERS,
        status=status,
        content_type="application/problem+json",
        body=json.dumps(problem(status, title, detail)),
    )
    with pytest.raises(SourceBlocked) as raised:
        source(audience).subscribers_for_event(event_wix_id="evt-1")
    reason = str(raised.value)
    assert reason.startswith("Mailchimp: Spring newsletter: ")
    assert f"{title}: {detail} (HTTP {status})" in reason
    assert KEY not in reason and refused.call_count == 1 and slept == []


def test_a_missing_key_blocks_without_a_call(
    audience: MailchimpSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MARKETING_MAILCHIMP_API_KEY")
    MailchimpRule.objects.create(source=audience, kind="everyone")
    with pytest.raises(SourceBlocked, match="MARKETING_MAILCHIMP_API_KEY"):
        MailchimpSubscriberSource(audience).subscribers_for_event(event_wix_id="evt-1")


def test_only_a_marketing_variable_may_hold_the_key(audience: MailchimpSource) -> None:
    audience.api_key_env = "WIX_TEST_API_KEY"
    with pytest.raises(ValidationError) as refused:
        audience.full_clean()
    assert "api_key_env" in refused.value.message_dict
    # A row saved before the rule cannot read another kind's secret either.
    MailchimpSource.objects.filter(pk=audience.pk).update(api_key_env="WIX_TEST_API_KEY")
    audience.refresh_from_db()
    with pytest.raises(SourceBlocked, match="MARKETING_"):
        MailchimpSubscriberSource(audience).opted_out()


@responses.activate
def test_the_server_prefix_set_wins_over_the_keys(audience: MailchimpSource) -> None:
    audience.server_prefix = "us19"
    responses.get(f"https://us19.api.mailchimp.com/3.0/lists/{LIST}/members", json=page("members", [], 0))
    assert MailchimpSubscriberSource(audience).opted_out() == []
    assert len(responses.calls) == 2  # unsubscribed, cleaned


@responses.activate
def test_an_unsubscribe_is_written_back_to_the_member_by_subscriber_hash(audience: MailchimpSource) -> None:
    digest = hashlib.md5(b"ann@example.com").hexdigest()  # noqa: S324 - Mailchimp's id
    patched = responses.patch(
        f"{MEMBERS}/{digest}",
        json=member("ann@example.com", "unsubscribed"),
        match=[matchers.json_params_matcher({"status": "unsubscribed"})],
    )
    assert source(audience).unsubscribe(email="  Ann@Example.COM ") is True
    assert patched.call_count == 1
    # Not a member of the audience: nothing to write back.
    responses.patch(
        f"{MEMBERS}/{hashlib.md5(b'who@example.com').hexdigest()}",  # noqa: S324
        status=404,
        json=problem(404, "Resource Not Found", "The requested resource could not be found."),
    )
    assert source(audience).unsubscribe(email="who@example.com") is False


@responses.activate
def test_no_write_back_when_staff_turned_it_off(audience: MailchimpSource) -> None:
    audience.write_back_unsubscribes = False
    assert source(audience).unsubscribe(email="ann@example.com") is False
    assert len(responses.calls) == 0


@responses.activate
def test_a_write_back_refused_blocks(audience: MailchimpSource) -> None:
    responses.patch(
        f"{MEMBERS}/{hashlib.md5(b'ann@example.com').hexdigest()}",  # noqa: S324
        status=401,
        json=problem(401, "API Key Invalid", "Your API key may be invalid."),
    )
    with pytest.raises(SourceBlocked, match="API Key Invalid"):
        source(audience).unsubscribe(email="ann@example.com")


def test_the_site_lists_its_active_audiences(audience: MailchimpSource, site: WixSite) -> None:
    MailchimpSource.objects.create(
        site=site, name="Old list", list_id="ffff", api_key_env="MARKETING_MAILCHIMP_API_KEY", is_active=False
    )
    labels = [s.label for s in sources_for_site(site)]
    assert "Mailchimp: Spring newsletter" in labels and "Mailchimp: Old list" not in labels


@responses.activate
def test_connection_test_reports_counts_tags_and_interests(audience: MailchimpSource) -> None:
    MailchimpRule.objects.create(source=audience, kind="tag", tag="VIP")
    responses.get(
        f"{API}/lists/{LIST}",
        json={
            "id": LIST,
            "name": "Spring",
            "stats": {"member_count": 42, "unsubscribe_count": 3, "cleaned_count": 1},
        },
    )
    responses.get(
        f"{API}/lists/{LIST}/segments",
        json=page("segments", [{"id": 7, "name": "VIP", "member_count": 5}], 1),
    )
    responses.get(
        f"{API}/lists/{LIST}/interest-categories",
        json=page("categories", [{"id": "cat01", "title": "Which nights?"}], 1),
    )
    responses.get(
        f"{API}/lists/{LIST}/interest-categories/cat01/interests",
        json=page("interests", [{"id": "int07", "name": "Jazz", "subscriber_count": "12"}], 1),
    )
    report = mailchimp_connection_test(config=audience)
    assert report.ok
    text = "\n".join(report.lines)
    assert "42 subscribed" in text and "VIP (5)" in text and "Jazz = int07" in text and "cat01" in text


@responses.activate
def test_connection_test_names_a_rule_whose_interest_does_not_exist(audience: MailchimpSource) -> None:
    MailchimpRule.objects.create(
        source=audience, kind="interest", interest_category_id="cat01", interest_id="int99"
    )
    responses.get(f"{API}/lists/{LIST}", json={"id": LIST, "name": "Spring", "stats": {"member_count": 1}})
    responses.get(f"{API}/lists/{LIST}/segments", json=page("segments", [], 0))
    responses.get(
        f"{API}/lists/{LIST}/interest-categories",
        json=page("categories", [{"id": "cat01", "title": "Nights"}], 1),
    )
    responses.get(
        f"{API}/lists/{LIST}/interest-categories/cat01/interests",
        json=page("interests", [{"id": "int07", "name": "Jazz"}], 1),
    )
    report = mailchimp_connection_test(config=audience)
    assert not report.ok
    assert report.lines == [
        "Mailchimp: Spring newsletter: the audience has no interest int99 in category cat01 "
        "(rule: interest int99 → all events)"
    ]
