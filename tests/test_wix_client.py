from __future__ import annotations

import json

import pytest
import requests
import responses
from responses import matchers

from sync.clients.wix import (
    WixAuth,
    WixAuthError,
    WixClient,
    WixClientError,
    WixConflict,
    WixIncompleteQuery,
    WixMalformedResponse,
    WixNotFound,
    WixRateLimited,
    WixServerError,
    WixUnavailable,
)
from tests.conftest import SITE_ID, WIX, wix_payload

EVENT_ID = "8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d"


def _policy(n: int) -> dict:
    return {"id": f"p{n}", "revision": "1", "eventId": EVENT_ID, "name": f"Policy {n}", "body": "x"}


@responses.activate
def test_api_key_auth_sends_the_raw_key_and_the_site_id(wix: WixClient) -> None:
    responses.get(
        f"{WIX}/events/v2/policies/p1",
        json=wix_payload("policy__get"),
        match=[matchers.header_matcher({"Authorization": "test-key", "wix-site-id": SITE_ID})],
    )
    policy = wix.get_policy("p1")
    assert policy["name"] == "Refund policy"
    assert responses.calls[0].request.headers["User-Agent"].startswith("events-sync-portal/")


@responses.activate
def test_query_policies_pages_with_offset_until_the_total(wix: WixClient) -> None:
    query = {"filter": {"eventId": {"$eq": EVENT_ID}}, "sort": [{"fieldName": "createdDate", "order": "ASC"}]}
    for offset, items in [(0, [_policy(1), _policy(2)]), (2, [_policy(3)])]:
        responses.post(
            f"{WIX}/events/v2/policies/query",
            json={"policies": items, "metadata": {"count": len(items), "offset": offset, "total": 3}},
            match=[
                matchers.json_params_matcher({"query": {**query, "paging": {"limit": 2, "offset": offset}}})
            ],
        )
    assert [p["id"] for p in wix.query_policies(EVENT_ID)] == ["p1", "p2", "p3"]
    assert len(responses.calls) == 2


@responses.activate
def test_offset_paging_without_a_total_goes_on_until_an_empty_page(wix: WixClient) -> None:
    responses.post(f"{WIX}/events/v2/policies/query", json={"policies": [_policy(1)], "metadata": {}})
    responses.post(f"{WIX}/events/v2/policies/query", json={"policies": [_policy(2)], "metadata": {}})
    responses.post(f"{WIX}/events/v2/policies/query", json={"policies": [], "metadata": {"count": 0}})
    assert len(list(wix.query_policies(EVENT_ID))) == 2
    assert len(responses.calls) == 3


def _capped_pages(items: list[dict], key: str, meta_key: str, cap: int) -> object:
    """A Wix that answers at most ``cap`` items a page, whatever limit it is asked for."""

    def answer(request: object) -> tuple[int, dict, str]:
        paging = json.loads(request.body)["query"]["paging"]  # type: ignore[attr-defined]
        offset = paging["offset"]
        page = items[offset : offset + min(cap, paging["limit"])]
        meta = {"count": len(page), "offset": offset, "total": len(items)}
        return 200, {}, json.dumps({key: page, meta_key: meta})

    return answer


@responses.activate
@pytest.mark.parametrize("family", ["current", "legacy"])
def test_offset_paging_goes_on_past_short_pages_until_the_total(family: str, sleeps: list[float]) -> None:
    client = WixClient(
        site_id=SITE_ID, auth=WixAuth(api_key="k"), base_url=WIX, path_family=family, sleep=sleeps.append
    )
    base = {"current": "/events/v2/policies", "legacy": "/events-policies/v2/policies"}[family]
    policies = [_policy(n) for n in range(1, 9)]
    responses.add_callback(
        responses.POST,
        f"{WIX}{base}/query",
        callback=_capped_pages(policies, "policies", "metadata", cap=5),  # type: ignore[arg-type]
    )
    events = [{"id": f"e{n}", "title": f"E{n}"} for n in range(1, 9)]
    responses.add_callback(
        responses.POST,
        f"{WIX}/events/v3/events/query",
        callback=_capped_pages(events, "events", "pagingMetadata", cap=5),  # type: ignore[arg-type]
    )
    assert [p["id"] for p in client.query_policies(EVENT_ID)] == [f"p{n}" for n in range(1, 9)]
    assert [e["id"] for e in client.query_events()] == [f"e{n}" for n in range(1, 9)]
    offsets = [json.loads(c.request.body)["query"]["paging"]["offset"] for c in responses.calls]
    assert offsets == [0, 5, 0, 5]


@responses.activate
def test_a_total_that_says_more_after_an_empty_page_fails_naming_the_query(wix: WixClient) -> None:
    url = f"{WIX}/events/v3/ticket-definitions/query"
    responses.post(url, json={"ticketDefinitions": [{"id": "t1"}], "metadata": {"total": 3}})
    responses.post(url, json={"ticketDefinitions": [], "metadata": {"total": 3}})
    seen: list[str] = []
    with pytest.raises(WixIncompleteQuery) as error:
        seen.extend(t["id"] for t in wix.query_ticket_definitions(EVENT_ID))
    assert seen == ["t1"]
    message = str(error.value)
    assert "query ticketDefinitions" in message and EVENT_ID in message
    assert "reported 3 in all but returned an empty page at offset 1" in message


@responses.activate
def test_cursor_paging_fails_on_a_repeated_cursor_or_fewer_items_than_the_total(
    sleeps: list[float],
) -> None:
    client = WixClient(
        site_id=SITE_ID, auth=WixAuth(api_key="k"), base_url=WIX, paging="cursor", sleep=sleeps.append
    )
    url = f"{WIX}/events/v2/policies/query"
    responses.post(url, json={"policies": [_policy(1)], "metadata": {"cursors": {"next": "c1"}}})
    responses.post(url, json={"policies": [_policy(2)], "metadata": {"cursors": {"next": "c1"}}})
    with pytest.raises(WixIncompleteQuery, match="same next cursor twice"):
        list(client.query_policies(EVENT_ID))
    responses.reset()
    responses.post(url, json={"policies": [_policy(1)], "metadata": {"total": 2, "cursors": {}}})
    with pytest.raises(WixIncompleteQuery, match="reported 2 in all but returned 1"):
        list(client.query_policies(EVENT_ID))


@responses.activate
def test_cursor_paging_follows_next_and_sends_no_filter_with_a_cursor(sleeps: list[float]) -> None:
    client = WixClient(
        site_id=SITE_ID,
        auth=WixAuth(api_key="k"),
        base_url=WIX,
        page_size=2,
        paging="cursor",
        sleep=sleeps.append,
    )
    url = f"{WIX}/events/v3/ticket-definitions/query"
    first = {
        "ticketDefinitions": [{"id": "t1"}, {"id": "t2"}],
        "metadata": {"count": 2, "cursors": {"next": "c2"}},
    }
    second = {"ticketDefinitions": [{"id": "t3"}], "pagingMetadata": {"count": 1, "cursors": {}}}
    responses.post(
        url,
        json=first,
        match=[
            matchers.json_params_matcher(
                {
                    "query": {
                        "filter": {"eventId": {"$eq": EVENT_ID}},
                        "sort": [{"fieldName": "createdDate", "order": "ASC"}],
                        "cursorPaging": {"limit": 2},
                    },
                    "fields": ["SALES_DETAILS"],
                }
            )
        ],
    )
    responses.post(
        url,
        json=second,
        match=[
            matchers.json_params_matcher(
                {"query": {"cursorPaging": {"limit": 2, "cursor": "c2"}}, "fields": ["SALES_DETAILS"]}
            )
        ],
    )
    assert [t["id"] for t in client.query_ticket_definitions(EVENT_ID)] == ["t1", "t2", "t3"]


@responses.activate
def test_query_events_reads_paging_metadata(wix: WixClient) -> None:
    responses.post(f"{WIX}/events/v3/events/query", json=wix_payload("event__query"))
    events = list(wix.query_events())
    assert [e["title"] for e in events] == ["Spring Gala"]
    assert json.loads(responses.calls[0].request.body)["fields"] == ["DETAILS"]


@responses.activate
def test_legacy_path_family_uses_the_older_base_paths(sleeps: list[float]) -> None:
    client = WixClient(
        site_id=SITE_ID, auth=WixAuth(api_key="k"), base_url=WIX, path_family="legacy", sleep=sleeps.append
    )
    responses.get(
        f"{WIX}/events-ticket-definitions/v3/ticket-definitions/td1",
        json=wix_payload("ticket_definition__fixed_price"),
        match=[matchers.query_param_matcher({"fields": "SALES_DETAILS"})],
    )
    responses.get(f"{WIX}/events-policies/v2/policies/p1", json=wix_payload("policy__get"))
    assert client.get_ticket_definition("td1")["salesDetails"]["unsoldCount"] == 143
    assert client.get_policy("p1")["revision"] == "2"


@responses.activate
def test_429_is_retried_honouring_retry_after(wix: WixClient, sleeps: list[float]) -> None:
    url = f"{WIX}/events/v2/policies/p1"
    responses.get(url, status=429, json={"message": "slow down"}, headers={"Retry-After": "7"})
    responses.get(url, json=wix_payload("policy__get"))
    assert wix.get_policy("p1")["id"]
    assert sleeps == [7.0]
    assert len(responses.calls) == 2


@responses.activate
def test_5xx_and_connection_errors_back_off_exponentially_with_jitter(
    wix: WixClient, sleeps: list[float]
) -> None:
    url = f"{WIX}/events/v2/policies/p1"
    responses.get(url, status=503, body="")
    responses.get(url, body=requests.ConnectionError("refused"))
    responses.get(url, status=500, json={"message": "internal", "details": {}})
    responses.get(url, json=wix_payload("policy__get"))
    assert wix.get_policy("p1")["id"]
    assert len(sleeps) == 3
    # Full jitter: each pause is within [0, base * 2**attempt].
    assert all(0 <= pause <= 0.5 * 2**i for i, pause in enumerate(sleeps))


@responses.activate
def test_retries_give_up_with_a_typed_error(wix: WixClient, sleeps: list[float]) -> None:
    responses.get(f"{WIX}/events/v2/policies/p1", status=503, json={"message": "unavailable", "details": {}})
    with pytest.raises(WixServerError) as info:
        wix.get_policy("p1")
    assert info.value.status == 503 and info.value.message == "unavailable"
    assert len(responses.calls) == 4  # first try + 3 retries
    responses.replace(responses.GET, f"{WIX}/events/v2/policies/p1", body=requests.Timeout("slow"))
    with pytest.raises(WixUnavailable):
        wix.get_policy("p1")
    responses.replace(responses.GET, f"{WIX}/events/v2/policies/p1", status=429, json={"message": "quota"})
    with pytest.raises(WixRateLimited):
        wix.get_policy("p1")


@pytest.mark.parametrize(
    ("status", "body", "error", "code", "message"),
    [
        (
            400,
            {
                "message": "bad",
                "details": {
                    "validationError": {
                        "fieldViolations": [
                            {
                                "field": "query.paging.limit",
                                "description": "must be > 0",
                                "ruleName": "INVALID_ARGUMENT",
                            }
                        ]
                    }
                },
            },
            WixClientError,
            "VALIDATION_ERROR",
            "bad (query.paging.limit: must be > 0)",
        ),
        (
            401,
            {
                "message": "",
                "details": {"applicationError": {"code": "UNAUTHENTICATED", "description": "no key"}},
            },
            WixAuthError,
            "UNAUTHENTICATED",
            "no key",
        ),
        (
            403,
            {"message": "denied", "details": {"applicationError": {"code": "PERMISSION_DENIED"}}},
            WixAuthError,
            "PERMISSION_DENIED",
            "denied",
        ),
        (
            404,
            {"message": "Policy not found", "details": {"applicationError": {"code": "NOT_FOUND"}}},
            WixNotFound,
            "NOT_FOUND",
            "Policy not found",
        ),
        (409, {"message": "revision mismatch", "details": {}}, WixConflict, None, "revision mismatch"),
        (
            428,
            {
                "message": "app missing",
                "details": {"applicationError": {"code": "WIX_EVENTS_APP_NOT_INSTALLED"}},
            },
            WixClientError,
            "WIX_EVENTS_APP_NOT_INSTALLED",
            "app missing",
        ),
    ],
)
@responses.activate
def test_4xx_is_not_retried_and_carries_wix_code_and_message(
    wix: WixClient, sleeps: list[float], status: int, body: dict, error: type, code: str | None, message: str
) -> None:
    responses.get(f"{WIX}/events/v2/policies/p1", status=status, json=body)
    with pytest.raises(error) as info:
        wix.get_policy("p1")
    assert (info.value.status, info.value.code, info.value.message) == (status, code, message)
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_oauth_token_is_fetched_once_and_cached_until_it_expires(sleeps: list[float]) -> None:
    auth = WixAuth(app_id="app-1", app_secret="shh", instance_id="inst-1")
    client = WixClient(site_id=SITE_ID, auth=auth, base_url=WIX, sleep=sleeps.append)
    token = responses.post(
        f"{WIX}/oauth2/token",
        json={"access_token": "tok-1", "token_type": "Bearer", "expires_in": 14400},
        match=[
            matchers.json_params_matcher(
                {
                    "grant_type": "client_credentials",
                    "client_id": "app-1",
                    "client_secret": "shh",
                    "instance_id": "inst-1",
                }
            )
        ],
    )
    get = responses.get(
        f"{WIX}/events/v2/policies/p1",
        json=wix_payload("policy__get"),
        match=[matchers.header_matcher({"Authorization": "tok-1"})],
    )
    client.get_policy("p1")
    WixClient(site_id=SITE_ID, auth=auth, base_url=WIX).get_policy("p1")
    assert token.call_count == 1 and get.call_count == 2


@responses.activate
def test_a_revoked_oauth_token_is_replaced_once(sleeps: list[float]) -> None:
    client = WixClient(
        site_id=SITE_ID,
        auth=WixAuth(app_id="a", app_secret="s", instance_id="i"),
        base_url=WIX,
        sleep=sleeps.append,
    )
    responses.post(f"{WIX}/oauth2/token", json={"access_token": "old", "expires_in": 14400})
    responses.post(f"{WIX}/oauth2/token", json={"access_token": "new", "expires_in": 14400})
    responses.get(
        f"{WIX}/events/v2/policies/p1",
        status=401,
        json={"message": "expired"},
        match=[matchers.header_matcher({"Authorization": "old"})],
    )
    responses.get(
        f"{WIX}/events/v2/policies/p1",
        json=wix_payload("policy__get"),
        match=[matchers.header_matcher({"Authorization": "new"})],
    )
    assert client.get_policy("p1")["id"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"metadata": {}, "policies": "nope"}, "'policies' is not a list"),
        ({"something": []}, "no 'policies' field"),
        ({"policies": [{"name": "no id"}], "metadata": {}}, r"'policies\[0\]\.id' is missing"),
    ],
)
@responses.activate
def test_malformed_query_responses_name_the_field(wix: WixClient, body: dict, message: str) -> None:
    responses.post(f"{WIX}/events/v2/policies/query", json=body)
    with pytest.raises(WixMalformedResponse, match=message):
        list(wix.query_policies(EVENT_ID))


@responses.activate
def test_a_get_without_the_entity_is_malformed(wix: WixClient) -> None:
    responses.get(f"{WIX}/events/v3/ticket-definitions/td1", json={"ticket": {}})
    with pytest.raises(WixMalformedResponse, match="no 'ticketDefinition' object"):
        wix.get_ticket_definition("td1")
    responses.get(f"{WIX}/events/v2/policies/p1", body="<html>oops</html>")
    with pytest.raises(WixMalformedResponse, match="not JSON"):
        wix.get_policy("p1")


@responses.activate
def test_an_empty_page_without_the_items_key_is_an_empty_list(wix: WixClient) -> None:
    responses.post(f"{WIX}/events/v2/policies/query", json={"metadata": {"count": 0, "total": 0}})
    assert list(wix.query_policies(EVENT_ID)) == []
