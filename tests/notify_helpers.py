"""Shared pieces of the notifications tests: mirrors with sale periods, subscribers, and Wix's
Email Subscriptions answered through ``responses``."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import responses

from notifications.models import LocalSubscriber
from sync.models import WixSite
from sync.services.mirrors import event_upsert_from_wix, ticket_definition_upsert_from_wix
from tests.conftest import WIX, wix_payload

EVENT = wix_payload("event__query")["events"][0]  # Spring Gala, 2026-05-02, Europe/Lisbon
TD = wix_payload("ticket_definition__fixed_price")["ticketDefinition"]
EVENT_ID = EVENT["id"]
# Before the fixture's sale start (2026-03-10 08:00 UTC): where scheduling tests begin.
BEFORE = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
START = dt.datetime(2026, 3, 10, 8, 0, tzinfo=dt.UTC)
SUBSCRIPTIONS_QUERY = f"{WIX}/email-marketing/v1/email-subscriptions/query"
UPSERT = f"{WIX}/email-marketing/v1/email-subscriptions"


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def event_mirror(site: WixSite, **changes: Any) -> None:
    event_upsert_from_wix(site=site, data={**copy.deepcopy(EVENT), **changes})


def td_mirror(
    site: WixSite,
    wix_id: str = TD["id"],
    *,
    start: dt.datetime = START,
    end: dt.datetime | None = None,
    revision: int = 4,
    **changes: Any,
) -> None:
    data = copy.deepcopy(TD)
    data.update(id=wix_id, revision=str(revision), saleStatus="SALE_SCHEDULED", **changes)
    data["updatedDate"] = iso(dt.datetime(2026, 3, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=revision))
    data["salePeriod"] = {"startDate": iso(start), "endDate": iso(end or START + dt.timedelta(days=40))}
    ticket_definition_upsert_from_wix(site=site, data=data)


def subscribe(
    site: WixSite, email: str, *, events: list[str] | None = None, **fields: Any
) -> LocalSubscriber:
    return LocalSubscriber.objects.create(
        site=site,
        email=email,
        name=fields.pop("name", email.split("@")[0].title()),
        event_wix_ids=events if events is not None else [EVENT_ID],
        **fields,
    )


def wix_consent(rsps: responses.RequestsMock, statuses: dict[str, tuple[str, str]]) -> list[list[str]]:
    """Answer Query Email Subscriptions from ``{email: (subscriptionStatus, deliverabilityStatus)}``;
    returns the batches of addresses asked about."""
    asked: list[list[str]] = []

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        emails = body["filter"]["email"]["$in"]
        asked.append(emails)
        subs = [
            {"id": f"sub-{e}", "email": e, "subscriptionStatus": s, "deliverabilityStatus": d}
            for e, (s, d) in statuses.items()
            if e in emails
        ]
        meta = {"count": len(subs), "offset": 0, "total": len(subs), "tooManyToCount": False}
        return 200, {}, json.dumps({"subscriptions": subs, "metadata": meta})

    rsps.add_callback(responses.POST, SUBSCRIPTIONS_QUERY, callback=answer, content_type="application/json")
    return asked
