"""Who receives a sale-start email: the local list, opt-outs, suppression and Wix's consent."""

from __future__ import annotations

import json

import pytest
import responses

from notifications.models import EmailSuppression, LocalSubscriber, SiteNotificationSettings
from notifications.services.consent import recipients_resolve
from notifications.services.subscribers import subscribers_export, subscribers_import
from notifications.sources.base import SourceBlocked, SourceError, Subscriber, SubscriberSource
from notifications.sources.local import LocalListSource
from sync.models import WebhookDelivery, WixSite
from sync.services.webhook_handlers import webhook_process
from tests.notify_helpers import EVENT_ID, SUBSCRIPTIONS_QUERY, event_mirror, subscribe, wix_consent
from tests.test_webhooks import URL, hook_site, sign  # noqa: F401 - hook_site is a fixture

pytestmark = pytest.mark.django_db
OTHER_EVENT = "00000000-0000-4000-8000-00000000beef"


def test_the_local_list_gives_those_opted_in_for_the_event_or_all_events(site: WixSite) -> None:
    subscribe(site, "ana@example.com")
    subscribe(site, "all@example.com", events=[], all_events=True)
    subscribe(site, "other@example.com", events=[OTHER_EVENT])
    subscribe(site, "gone@example.com", unsubscribed=True)
    source = LocalListSource(site)
    assert sorted(s.email for s in source.subscribers_for_event(event_wix_id=EVENT_ID)) == [
        "all@example.com",
        "ana@example.com",
    ]
    assert list(source.opted_out()) == ["gone@example.com"]
    assert source.unsubscribe(email="ANA@example.com ") is True
    assert LocalSubscriber.objects.get(email="ana@example.com").unsubscribed


@responses.activate
def test_recipients_are_the_opted_in_minus_opted_out_minus_suppressed_then_wix_decides(site: WixSite) -> None:
    for email in ("sub@x.com", "notset@x.com", "unsub@x.com", "bounced@x.com", "spam@x.com", "unknown@x.com"):
        subscribe(site, email)
    subscribe(site, "suppressed@x.com")
    EmailSuppression.objects.create(site=site, email="suppressed@x.com", reason="wix")
    asked = wix_consent(
        responses.mock,
        {
            "sub@x.com": ("SUBSCRIBED", "VALID"),
            "notset@x.com": ("NOT_SET", "NOT_SET"),
            "unsub@x.com": ("UNSUBSCRIBED", "VALID"),
            "bounced@x.com": ("SUBSCRIBED", "BOUNCED"),
            "spam@x.com": ("SUBSCRIBED", "SPAM_COMPLAINT"),
        },
    )
    resolved = recipients_resolve(site=site, event=EVENT_ID)
    assert [r.email for r in resolved.recipients] == ["sub@x.com"]
    assert resolved.excluded == {
        "suppressed": 1,
        "wix:NOT_SET": 2,  # notset and unknown (absent = never seen)
        "wix:UNSUBSCRIBED": 1,
        "wix:BOUNCED": 1,
        "wix:SPAM_COMPLAINT": 1,
    }
    assert "suppressed@x.com" not in asked[0]
    # Staff allow NOT_SET for this site: the never-seen and the NOT_SET address come in.
    SiteNotificationSettings.objects.create(site=site, allow_not_set=True)
    again = recipients_resolve(site=site, event=EVENT_ID)
    assert [r.email for r in again.recipients] == ["notset@x.com", "sub@x.com", "unknown@x.com"]


@responses.activate
def test_wix_is_asked_in_batches_of_email_in(site: WixSite, settings: pytest.FixtureRequest) -> None:
    settings.NOTIFICATIONS_WIX_BATCH = 2  # type: ignore[attr-defined]
    for n in range(5):
        subscribe(site, f"p{n}@x.com")
    asked = wix_consent(responses.mock, {f"p{n}@x.com": ("SUBSCRIBED", "VALID") for n in range(5)})
    assert len(recipients_resolve(site=site, event=EVENT_ID).recipients) == 5
    assert asked == [["p0@x.com", "p1@x.com"], ["p2@x.com", "p3@x.com"], ["p4@x.com"]]
    sent = json.loads(responses.calls[0].request.body)
    assert sent == {
        "filter": {"email": {"$in": ["p0@x.com", "p1@x.com"]}},
        "paging": {"limit": 2, "offset": 0},
    }


@responses.activate
def test_a_wix_401_blocks_with_the_reason_and_a_5xx_is_retried_later(site: WixSite) -> None:
    subscribe(site, "a@x.com")
    responses.add(
        responses.POST,
        SUBSCRIPTIONS_QUERY,
        status=401,
        json={"message": "bad key", "details": {"applicationError": {"code": "UNAUTHENTICATED"}}},
    )
    with pytest.raises(SourceBlocked, match="UNAUTHENTICATED"):
        recipients_resolve(site=site, event=EVENT_ID)
    responses.replace(responses.POST, SUBSCRIPTIONS_QUERY, status=503, json={})
    with pytest.raises(SourceError):
        recipients_resolve(site=site, event=EVENT_ID)


@responses.activate
def test_other_sources_add_people_and_an_opt_out_anywhere_wins(site: WixSite) -> None:
    from notifications.sources import base

    class Fake(SubscriberSource):
        label = "fake"

        def subscribers_for_event(self, *, event_wix_id: str) -> list[Subscriber]:
            return [Subscriber("fake@x.com", "F"), Subscriber("ana@x.com", "A")]

        def opted_out(self) -> list[str]:
            return ["local@x.com"]

    def builder(s: WixSite) -> list[SubscriberSource]:
        return [Fake()]

    subscribe(site, "local@x.com")
    subscribe(site, "ana@x.com")
    base.source_builder_register(builder)
    try:
        wix_consent(
            responses.mock, {e: ("SUBSCRIBED", "VALID") for e in ("fake@x.com", "ana@x.com", "local@x.com")}
        )
        resolved = recipients_resolve(site=site, event=EVENT_ID)
    finally:
        base._BUILDERS.remove(builder)
    assert [r.email for r in resolved.recipients] == ["ana@x.com", "fake@x.com"]
    assert resolved.excluded == {"opted out": 1}


def test_csv_import_keeps_good_rows_and_reports_each_bad_one(site: WixSite) -> None:
    event_mirror(site)
    text = (
        "email,name,events,all_events,unsubscribed,consent_at,consent_source\n"
        "Ana@Example.com,Ana,spring-gala,no,no,2026-01-02T10:00:00Z,box office\n"
        "not-an-address,Bad,spring-gala,no,no,,\n"
        "bruno@example.com,Bruno,,yes,no,,\n"
        "carla@example.com,Carla,no-such-event,no,no,,\n"
        "duarte@example.com,Duarte,,no,no,,\n"
        "ana@example.com,Ana again,,yes,no,,\n"
        "eva@example.com,Eva,,yes,maybe,,\n"
    )
    report = subscribers_import(site=site, text=text)
    assert (report.created, report.updated) == (2, 0)
    assert [line for line, _ in report.errors] == [3, 5, 6, 7, 8]
    assert "not an email address" in report.errors[0][1]
    assert "no event 'no-such-event'" in report.errors[1][1]
    ana = LocalSubscriber.objects.get(email="ana@example.com")
    assert (ana.event_wix_ids, ana.consent_source, ana.consent_at.year) == ([EVENT_ID], "box office", 2026)
    exported = subscribers_export(subscribers=LocalSubscriber.objects.order_by("email"))
    assert exported.splitlines()[0] == "email,name,events,all_events,unsubscribed,consent_at,consent_source"
    # An export imports back unchanged.
    again = subscribers_import(site=site, text=exported)
    assert (again.created, again.updated, again.errors) == (0, 2, [])


def _subscription_changed(
    email: str, status: str, deliverability: str = "VALID", event_id: str = "e1"
) -> bytes:
    subscription = {
        "id": "sub-1",
        "email": email,
        "subscriptionStatus": status,
        "deliverabilityStatus": deliverability,
    }
    envelope = {
        "id": event_id,
        "entityFqdn": "wix.emailsubscriptions.v1.emailsubscription",
        "slug": "changed",
        "entityId": "sub-1",
        "eventTime": "2026-03-01T10:00:00Z",
        "actionEvent": {"bodyAsJson": json.dumps({"subscription": subscription})},
    }
    return sign(envelope, "com.wixpress.emailsubscriptions.v1.EmailSubscriptionChanged")


def test_email_subscription_changed_goes_through_syncs_webhook_path_to_the_suppression_list(
    hook_site: WixSite,  # noqa: F811
) -> None:
    from django.test import Client

    client = Client()
    response = client.post(URL, _subscription_changed("Eva@x.com", "UNSUBSCRIBED"), content_type="text/plain")
    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get(wix_event_id="e1")
    assert delivery.status == "received"  # known: routed, not ignored
    assert webhook_process(delivery_id=delivery.pk) == "suppressed"
    suppression = EmailSuppression.objects.get()
    assert (suppression.email, suppression.reason) == ("eva@x.com", "wix")
    # Subscribed again on Wix: Wix's suppression is lifted; an unsubscribe link's would stay.
    client.post(
        URL, _subscription_changed("eva@x.com", "SUBSCRIBED", event_id="e2"), content_type="text/plain"
    )
    assert webhook_process(delivery_id=WebhookDelivery.objects.get(wix_event_id="e2").pk) == "unsuppressed"
    assert not EmailSuppression.objects.exists()
    EmailSuppression.objects.create(site=hook_site, email="eva@x.com", reason="link")
    client.post(
        URL, _subscription_changed("eva@x.com", "SUBSCRIBED", event_id="e3"), content_type="text/plain"
    )
    assert webhook_process(delivery_id=WebhookDelivery.objects.get(wix_event_id="e3").pk) == "unchanged"
    assert EmailSuppression.objects.filter(reason="link").exists()
    # A bounce suppresses too.
    client.post(
        URL, _subscription_changed("z@x.com", "SUBSCRIBED", "BOUNCED", "e4"), content_type="text/plain"
    )
    webhook_process(delivery_id=WebhookDelivery.objects.get(wix_event_id="e4").pk)
    assert EmailSuppression.objects.get(email="z@x.com").detail == "SUBSCRIBED, BOUNCED"
